//! An X API recent-search mock with the real cursor semantics (docs.x.com, "Paginate" and the
//! search/recent reference): results newest first; `since_id` and `until_id` are exclusive bounds;
//! `next_token` is tied to a position in one query and only valid with that query's bounds; the
//! last page has no `next_token`. It records every tweet it served, so a test can tell a tweet
//! fetched twice (paid twice) from one fetched once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The tweets the API knows, and what it served; clone it to keep a handle while it serves.
#[derive(Clone, Default)]
pub struct Timeline {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// By id; served newest first.
    tweets: BTreeMap<u64, Value>,
    /// Token → (since_id, until_id, the oldest id already served).
    cursors: HashMap<String, (Option<u64>, Option<u64>, u64)>,
    served: Vec<String>,
    requests: usize,
    /// Requests after the first `.0` are answered after `.1`.
    slow: Option<(usize, Duration)>,
    /// Every page hands back this same cursor (a broken API).
    stuck_token: bool,
}

/// A contract-complete tweet: an id, its text with a hashtag, a time and an author.
pub fn tweet(id: u64) -> Value {
    json!({
        "id": id.to_string(),
        "text": format!("tweet {id} #flix"),
        "created_at": "2026-11-28T10:00:00.000Z",
        "author_id": "42",
        "edit_history_tweet_ids": [id.to_string()],
        "entities": {"hashtags": [{"start": 12, "end": 17, "tag": "flix"}]},
    })
}

impl Timeline {
    /// A timeline of contract-complete tweets with these ids.
    pub fn of(ids: impl IntoIterator<Item = u64>) -> Self {
        let timeline = Self::default();
        timeline.add(ids.into_iter().map(tweet));
        timeline
    }

    /// New tweets arrive (ids must be larger than every earlier one to be "new").
    pub fn add(&self, tweets: impl IntoIterator<Item = Value>) {
        let mut state = self.state.lock().unwrap();
        for t in tweets {
            let id = t["id"].as_str().unwrap().parse().unwrap();
            state.tweets.insert(id, t);
        }
    }

    /// Answers requests after the first `after` only after `delay`.
    pub fn slow_after(&self, after: usize, delay: Duration) {
        self.state.lock().unwrap().slow = Some((after, delay));
    }

    /// Answers at full speed again.
    pub fn fast(&self) {
        self.state.lock().unwrap().slow = None;
    }

    /// Makes every page carry the same `next_token`.
    pub fn stuck_token(&self, stuck: bool) {
        self.state.lock().unwrap().stuck_token = stuck;
    }

    /// Ids of every tweet served, in order, repeats included.
    pub fn served(&self) -> Vec<String> {
        self.state.lock().unwrap().served.clone()
    }

    /// Search requests answered.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// A mock server serving this timeline at `/2/tweets/search/recent`.
    pub async fn serve(&self) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::path("/2/tweets/search/recent"))
            .respond_with(self.clone())
            .mount(&server)
            .await;
        server
    }
}

/// A search response body as X sends it: `data`, the author in `includes`, and `meta` with the id
/// range and the cursor when more pages follow; an empty result is `meta` alone.
pub fn search_body(data: Vec<Value>, page: &[u64], next_token: Option<String>) -> Value {
    let mut meta = json!({"result_count": page.len()});
    if let (Some(newest), Some(oldest)) = (page.first(), page.last()) {
        meta["newest_id"] = json!(newest.to_string());
        meta["oldest_id"] = json!(oldest.to_string());
    }
    if let Some(token) = next_token {
        meta["next_token"] = json!(token);
    }
    match data.is_empty() {
        true => json!({ "meta": meta }),
        false => json!({
            "data": data,
            "includes": {"users": [{"id": "42", "username": "flixfan", "public_metrics": {"followers_count": 7}}]},
            "meta": meta,
        }),
    }
}

/// A 400 problem body as X sends it for an invalid parameter.
pub fn bad_request(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({
        "errors": [{"message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }))
}

impl Respond for Timeline {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let params: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let id = |key: &str| params.get(key).and_then(|v| v.parse::<u64>().ok());
        let (since, until) = (id("since_id"), id("until_id"));
        let size: usize = params.get("max_results").and_then(|v| v.parse().ok()).unwrap_or(10);
        if !(10..=100).contains(&size) {
            return bad_request("The `max_results` query parameter value is not between 10 and 100");
        }
        let mut state = self.state.lock().unwrap();
        state.requests += 1;
        let below = match params.get("next_token") {
            None => until,
            Some(token) => match state.cursors.get(token) {
                Some((s, u, oldest)) if (*s, *u) == (since, until) => Some(*oldest),
                Some(_) => return bad_request("The `next_token` belongs to a request with other parameters"),
                None => return bad_request("The `next_token` query parameter value is invalid"),
            },
        };
        let matching: Vec<u64> = state
            .tweets
            .keys()
            .rev()
            .copied()
            .filter(|id| since.is_none_or(|s| *id > s) && below.is_none_or(|b| *id < b))
            .collect();
        let page: Vec<u64> = matching.iter().take(size).copied().collect();
        let data: Vec<Value> = page.iter().map(|id| state.tweets[id].clone()).collect();
        state.served.extend(page.iter().map(u64::to_string));
        let mut next_token = None;
        if let Some(oldest) = page.last().filter(|_| matching.len() > size) {
            let token = if state.stuck_token { "stuck".to_string() } else { format!("tok-{oldest}") };
            state.cursors.insert(token.clone(), (since, until, *oldest));
            next_token = Some(token);
        }
        let body = search_body(data, &page, next_token);
        let delay = state.slow.filter(|(after, _)| state.requests > *after).map(|(_, d)| d);
        let response = ResponseTemplate::new(200).set_body_json(body);
        match delay {
            Some(delay) => response.set_delay(delay),
            None => response,
        }
    }
}
