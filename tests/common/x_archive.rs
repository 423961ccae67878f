//! An X API full-archive mock (docs.x.com/x-api/posts/search/quickstart/full-archive-search and
//! the counts reference): `/2/tweets/search/all` answers newest first, up to 500 a page
//! (`max_results` 10..=500), within `start_time` (inclusive) and `end_time` (exclusive), below
//! `until_id`; `next_token` is tied to one request's bounds; an `end_time` less than 10 s ago is
//! refused. `/2/tweets/counts/all` answers posts per UTC day (`granularity=day`), 31 days a page.
//! It records every tweet it served, so a test can tell a tweet bought twice from one bought once.

use super::x_api::bad_request;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Days a counts page holds (docs: `granularity=day` pages after 31 buckets).
const COUNT_DAYS_PER_PAGE: usize = 31;

/// The archive: tweets by id, each with its time; clone it to keep a handle while it serves.
#[derive(Clone, Default)]
pub struct Archive {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    tweets: BTreeMap<u64, (DateTime<Utc>, Value)>,
    /// Token → (the request's bounds, the oldest id already served).
    cursors: HashMap<String, (Bounds, u64)>,
    served: Vec<String>,
    searches: usize,
    counts: usize,
    /// Search requests after the first `.0` are answered after `.1`.
    slow: Option<(usize, Duration)>,
    /// Search requests after the first `.0` get a 429 whose window resets at `.1` (Unix seconds).
    limited: Option<(usize, u64)>,
}

type Bounds = (Option<String>, Option<String>, Option<u64>);

/// Parses an RFC 3339 time as a test writes it.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

impl Archive {
    /// `n` contract-complete tweets with ids from `first_id` up, one every `step` from `start`.
    pub fn spread(first_id: u64, n: u64, start: DateTime<Utc>, step: Duration) -> Self {
        let archive = Self::default();
        let mut state = archive.state.lock().unwrap();
        for i in 0..n {
            let time = start + chrono::Duration::from_std(step * i as u32).unwrap();
            let mut tweet = super::x_api::tweet(first_id + i);
            tweet["created_at"] = json!(time.format("%Y-%m-%dT%H:%M:%S.000Z").to_string());
            state.tweets.insert(first_id + i, (time, tweet));
        }
        drop(state);
        archive
    }

    /// Ids of every tweet served, in order, repeats included.
    pub fn served(&self) -> Vec<String> {
        self.state.lock().unwrap().served.clone()
    }

    /// Search requests answered (counts requests not included).
    pub fn searches(&self) -> usize {
        self.state.lock().unwrap().searches
    }

    /// Counts requests answered.
    pub fn counts(&self) -> usize {
        self.state.lock().unwrap().counts
    }

    /// Ids of the tweets in `[start, end)`.
    pub fn ids_between(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.tweets.iter().filter(|(_, (t, _))| *t >= start && *t < end).map(|(id, _)| id.to_string()).collect()
    }

    /// Answers search requests after the first `after` only after `delay`.
    pub fn slow_after(&self, after: usize, delay: Duration) {
        self.state.lock().unwrap().slow = Some((after, delay));
    }

    /// Answers search requests after the first `after` with 429 Too Many Requests, as X does when
    /// the 15-minute window is used up: `x-rate-limit-remaining: 0` and the window's reset time.
    pub fn rate_limit_after(&self, after: usize, reset: u64) {
        self.state.lock().unwrap().limited = Some((after, reset));
    }

    /// Lifts the rate limit.
    pub fn unlimited(&self) {
        self.state.lock().unwrap().limited = None;
    }

    /// Answers at full speed again.
    pub fn fast(&self) {
        self.state.lock().unwrap().slow = None;
    }

    /// Mounts the search and counts endpoints on `server`.
    pub async fn mount(&self, server: &MockServer) {
        Mock::given(path("/2/tweets/search/all")).respond_with(Search(self.clone())).mount(server).await;
        Mock::given(path("/2/tweets/counts/all")).respond_with(Counts(self.clone())).mount(server).await;
    }

    /// A mock server serving this archive.
    pub async fn serve(&self) -> MockServer {
        let server = MockServer::start().await;
        self.mount(&server).await;
        server
    }
}

/// `start_time` and `end_time` as X checks them.
fn range(params: &HashMap<String, String>) -> Result<(DateTime<Utc>, DateTime<Utc>), ResponseTemplate> {
    let time = |key: &str| params.get(key).map(|v| DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)));
    let start = match time("start_time") {
        Some(Ok(t)) => t,
        None => Utc::now() - chrono::Duration::days(30),
        Some(Err(_)) => return Err(bad_request("Invalid 'start_time'")),
    };
    let end = match time("end_time") {
        Some(Ok(t)) => t,
        None => Utc::now() - chrono::Duration::seconds(30),
        Some(Err(_)) => return Err(bad_request("Invalid 'end_time'")),
    };
    if end > Utc::now() - chrono::Duration::seconds(10) {
        return Err(bad_request(
            "Invalid 'end_time':'end_time' must be a minimum of 10 seconds prior to the request time.",
        ));
    }
    if start >= end {
        return Err(bad_request("Invalid 'start_time':'start_time' must be before 'end_time'"));
    }
    Ok((start, end))
}

struct Search(Archive);

impl Respond for Search {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let params: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let (start, end) = match range(&params) {
            Ok(r) => r,
            Err(e) => return e,
        };
        let size: usize = params.get("max_results").and_then(|v| v.parse().ok()).unwrap_or(10);
        if !(10..=500).contains(&size) {
            return bad_request("The `max_results` query parameter value is not between 10 and 500");
        }
        let until = params.get("until_id").and_then(|v| v.parse::<u64>().ok());
        let bounds: Bounds = (params.get("start_time").cloned(), params.get("end_time").cloned(), until);
        let mut state = self.0.state.lock().unwrap();
        state.searches += 1;
        if let Some((_, reset)) = state.limited.filter(|(after, _)| state.searches > *after) {
            return ResponseTemplate::new(429)
                .insert_header("x-rate-limit-limit", "300")
                .insert_header("x-rate-limit-remaining", "0")
                .insert_header("x-rate-limit-reset", reset.to_string().as_str())
                .set_body_json(json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}));
        }
        let below = match params.get("next_token") {
            None => until,
            Some(token) => match state.cursors.get(token) {
                Some((b, oldest)) if *b == bounds => Some(*oldest),
                Some(_) => return bad_request("The `next_token` belongs to a request with other parameters"),
                None => return bad_request("The `next_token` query parameter value is invalid"),
            },
        };
        let matching: Vec<u64> = state
            .tweets
            .iter()
            .rev()
            .filter(|(id, (t, _))| *t >= start && *t < end && below.is_none_or(|b| **id < b))
            .map(|(id, _)| *id)
            .collect();
        let page: Vec<u64> = matching.iter().take(size).copied().collect();
        let data: Vec<Value> = page.iter().map(|id| state.tweets[id].1.clone()).collect();
        state.served.extend(page.iter().map(u64::to_string));
        let mut next_token = None;
        if let Some(oldest) = page.last().filter(|_| matching.len() > size) {
            let token = format!("arch-{oldest}");
            state.cursors.insert(token.clone(), (bounds, *oldest));
            next_token = Some(token);
        }
        let body = super::x_api::search_body(data, &page, next_token);
        let delay = state.slow.filter(|(after, _)| state.searches > *after).map(|(_, d)| d);
        // The full-archive limits, as the recorded 200 (search_all_200_with_headers.json) sends them.
        let response = ResponseTemplate::new(200)
            .set_body_json(body)
            .insert_header("x-rate-limit-limit", "300")
            .insert_header("x-rate-limit-remaining", "290");
        match delay {
            Some(delay) => response.set_delay(delay),
            None => response,
        }
    }
}

struct Counts(Archive);

impl Respond for Counts {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let params: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let (start, end) = match range(&params) {
            Ok(r) => r,
            Err(e) => return e,
        };
        if params.get("granularity").map(String::as_str) != Some("day") {
            return bad_request("this mock answers granularity=day only");
        }
        let mut state = self.0.state.lock().unwrap();
        state.counts += 1;
        let mut buckets = Vec::new();
        let mut from = start;
        while from < end {
            let midnight = (from.date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap().and_utc();
            let to = midnight.min(end);
            let n = state.tweets.values().filter(|(t, _)| *t >= from && *t < to).count();
            buckets.push((from, to, n));
            from = to;
        }
        let skip: usize = params.get("next_token").and_then(|t| t.strip_prefix("days-")?.parse().ok()).unwrap_or(0);
        let page: Vec<_> = buckets.iter().skip(skip).take(COUNT_DAYS_PER_PAGE).collect();
        let fmt = |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S.000Z").to_string();
        let data: Vec<Value> =
            page.iter().map(|(f, t, n)| json!({"start": fmt(f), "end": fmt(t), "tweet_count": n})).collect();
        let total: usize = page.iter().map(|(_, _, n)| n).sum();
        let mut meta = json!({"total_tweet_count": total});
        if buckets.len() > skip + COUNT_DAYS_PER_PAGE {
            meta["next_token"] = json!(format!("days-{}", skip + COUNT_DAYS_PER_PAGE));
        }
        ResponseTemplate::new(200).set_body_json(json!({"data": data, "meta": meta}))
    }
}
