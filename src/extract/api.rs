//! X API v2 recent search: one request per page, bounded retries, rate-limit waits within budget.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;

use crate::config::{ExtractConfig, RetryPolicy, Secret};

/// Why a page could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A 4xx other than 429: retrying cannot help.
    #[error("the X API refused the request ({status} {title}): {detail}{hint}")]
    Rejected { status: u16, title: String, detail: String, hint: &'static str },
    /// 429 and the reset lies beyond the run's time budget.
    #[error("the X API rate limit is exhausted until {reset}; that is past this run's time budget")]
    RateLimited { reset: String },
    /// 429 whose problem `type` ends `/problems/usage-capped`: the app's usage cap is reached, and
    /// waiting for the rate-limit window does not help (x-rate-limit-remaining can still be high).
    #[error(
        "the X API usage cap is reached ({detail}); no request succeeds until the cap resets with the next billing cycle: check usage in the X developer console, or ask X for a higher cap"
    )]
    UsageCapped { detail: String },
    /// 402 whose problem `type` ends `/problems/credits-depleted`: pay-per-use credits are used up.
    #[error(
        "the X API credits are used up ({detail}); buy credits or raise the spending limit in the X developer console, then run again"
    )]
    CreditsDepleted { detail: String },
    /// The run's deadline came before (or during) the request.
    #[error("the run's time budget ran out before the X API answered")]
    OutOfTime,
    /// `since_id` or `until_id` lies before the 7-day search window (a 400 whose message reads
    /// "'since_id' must be a tweet id created after …").
    #[error("the X API refused {param}: {message}")]
    OutsideWindow { param: &'static str, message: String },
    /// 5xx, timeouts or broken bodies on every attempt.
    #[error("the X API failed {attempts} times in a row; last: {last}")]
    Unavailable { attempts: u32, last: String },
    /// The API could not be reached at all.
    #[error("cannot reach the X API at {url}: {message}; check the network or extract.api_base_url")]
    Connect { url: String, message: String },
}

impl ApiError {
    /// True for failures a user fixes in credentials or connectivity (exit code 3).
    pub fn is_connect(&self) -> bool {
        matches!(self, ApiError::Connect { .. } | ApiError::CreditsDepleted { .. })
            || matches!(self, ApiError::Rejected { status: 401 | 403, .. })
    }

    /// True when X's usage cap refuses every request until it resets (exit code 4).
    pub fn is_capped(&self) -> bool {
        matches!(self, ApiError::UsageCapped { .. })
    }
}

/// A client bound to one query's parameters and token.
pub struct XClient {
    http: reqwest::Client,
    base: String,
    url: String,
    params: Vec<(&'static str, String)>,
    token: Secret,
    timeout: Duration,
    retry: RetryPolicy,
}

/// One page to ask for: the window's bounds, the cursor and the page size.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Only tweets newer than this id (the window's floor).
    pub since_id: Option<String>,
    /// Only tweets older than this id (how far down an open window got).
    pub until_id: Option<String>,
    /// The cursor of the previous page in this run.
    pub next_token: Option<String>,
    /// Tweets per page (10..=100); None: `extract.max_results`.
    pub max_results: Option<u32>,
}

/// A list of field or expansion names, comma-separated, in the configured vocabulary.
fn words(config: &ExtractConfig, names: &[String]) -> String {
    names.iter().map(|n| config.vocabulary.word(n)).collect::<Vec<_>>().join(",")
}

/// X's count of the posts a project read (`data` of `GET /2/usage/tweets`); X sends the numbers
/// as strings or as numbers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Posts read by the whole project (every app in it) this billing cycle.
    pub project_usage: u64,
    /// The project's monthly post cap.
    pub project_cap: Option<u64>,
    /// Days until the cap resets.
    pub cap_reset_day: Option<u64>,
}

impl Usage {
    fn parse(body: &[u8]) -> Option<Self> {
        let json: serde_json::Value = serde_json::from_slice(body).ok()?;
        let number = |key: &str| {
            let v = &json["data"][key];
            v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        };
        Some(Self {
            project_usage: number("project_usage")?,
            project_cap: number("project_cap"),
            cap_reset_day: number("cap_reset_day"),
        })
    }
}

/// What one request came to.
enum Attempt {
    Page(Bytes),
    Retry(String),
    WaitUntil(u64),
}

impl XClient {
    /// Builds a client for `config`'s query and fields.
    pub fn new(config: &ExtractConfig, token: Secret) -> Result<Self, ApiError> {
        let base = config.api_base_url.trim_end_matches('/').to_string();
        let url = format!("{base}/2/tweets/search/recent");
        let timeout = Duration::from_secs(config.request_timeout_secs);
        let http = reqwest::Client::builder()
            .user_agent(concat!("flixops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Connect { url: url.clone(), message: e.to_string() })?;
        let params = vec![
            ("query", config.query.clone()),
            ("max_results", config.max_results.to_string()),
            ("expansions", words(config, &config.expansions)),
            (config.vocabulary.fields_param(), words(config, &config.tweet_fields)),
            ("user.fields", config.user_fields.join(",")),
        ];
        Ok(Self { http, base, url, params, token, timeout, retry: config.retry })
    }

    /// Fetches one page (a complete JSON body), retrying transient failures until `deadline`;
    /// no request outlives the deadline.
    pub async fn page(&self, request: &PageRequest, deadline: Instant) -> Result<Bytes, ApiError> {
        let mut params = self.params.clone();
        if let Some(size) = request.max_results {
            params.retain(|(k, _)| *k != "max_results");
            params.push(("max_results", size.to_string()));
        }
        params.extend(request.since_id.as_ref().map(|id| ("since_id", id.clone())));
        params.extend(request.until_id.as_ref().map(|id| ("until_id", id.clone())));
        params.extend(request.next_token.as_ref().map(|t| ("next_token", t.clone())));
        self.fetch(&self.url, &params, deadline).await
    }

    /// X's own count of the posts this project read in its billing cycle (`GET /2/usage/tweets`;
    /// docs.x.com/x-api/usage/tweets). Not billed.
    pub async fn usage(&self, deadline: Instant) -> Result<Usage, ApiError> {
        let url = format!("{}/2/usage/tweets", self.base);
        let body = self.fetch(&url, &[], deadline).await?;
        Usage::parse(&body).ok_or_else(|| ApiError::Unavailable {
            attempts: 1,
            last: format!(
                "{url} answered without data.project_usage: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        })
    }

    /// One GET with bounded retries and rate-limit waits, never past `deadline`.
    async fn fetch(&self, url: &str, params: &[(&'static str, String)], deadline: Instant) -> Result<Bytes, ApiError> {
        let mut failures = 0;
        loop {
            let last = match self.attempt(url, params, deadline).await? {
                Attempt::Page(body) => return Ok(body),
                Attempt::Retry(last) => last,
                Attempt::WaitUntil(reset) => {
                    let wait = Duration::from_secs(reset.saturating_sub(now_epoch()) + 1);
                    if Instant::now() + wait >= deadline {
                        return Err(ApiError::RateLimited { reset: epoch_to_rfc3339(reset) });
                    }
                    tracing::warn!("rate limited by the X API; waiting {}s for the window to reset", wait.as_secs());
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            failures += 1;
            if failures >= self.retry.max_attempts {
                return Err(ApiError::Unavailable { attempts: failures, last });
            }
            let delay = backoff(&self.retry, failures);
            if Instant::now() + delay >= deadline {
                return Err(ApiError::OutOfTime);
            }
            tracing::warn!(
                "X API: {last}; retry {failures}/{} in {} ms",
                self.retry.max_attempts - 1,
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        url: &str,
        params: &[(&'static str, String)],
        deadline: Instant,
    ) -> Result<Attempt, ApiError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ApiError::OutOfTime);
        }
        let get = self.http.get(url).query(params).bearer_auth(self.token.expose());
        let sent = get.timeout(self.timeout.min(left)).send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() && Instant::now() >= deadline => return Err(ApiError::OutOfTime),
            Err(e) if e.is_timeout() => return Ok(Attempt::Retry("request timed out".into())),
            Err(e) if e.is_connect() => {
                return Err(ApiError::Connect { url: url.to_string(), message: error_chain(&e) });
            }
            Err(e) => return Ok(Attempt::Retry(error_chain(&e))),
        };
        let status = response.status();
        let reset = header_u64(&response, "x-rate-limit-reset");
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) if e.is_timeout() && Instant::now() >= deadline => return Err(ApiError::OutOfTime),
            Err(e) => return Ok(Attempt::Retry(format!("{status}: body cut off: {}", error_chain(&e)))),
        };
        classify(status, reset, body)
    }
}

/// One full-archive page to ask for: the range, how far down a resumed backfill got, the cursor.
#[derive(Debug, Clone, Default)]
pub struct ArchiveRequest {
    /// Oldest time, inclusive (RFC 3339, UTC).
    pub start_time: String,
    /// Newest time, exclusive (RFC 3339, UTC).
    pub end_time: String,
    /// Only tweets older than this id (the oldest a backfill stored so far).
    pub until_id: Option<String>,
    /// The cursor of the previous page in this run.
    pub next_token: Option<String>,
    /// Tweets per page (10..=500).
    pub max_results: u32,
}

/// Posts a query matched in one day (`data[]` of `GET /2/tweets/counts/all`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayCount {
    /// The bucket's start (RFC 3339).
    pub start: String,
    /// The bucket's end (RFC 3339).
    pub end: String,
    /// Posts the query matched in it.
    pub tweet_count: u64,
}

/// Full-archive search and counts (docs.x.com/x-api/posts/search/quickstart/full-archive-search,
/// docs.x.com/x-api/posts/counts): the same query, fields and token as recent search.
impl XClient {
    /// Fetches one full-archive page (`GET /2/tweets/search/all`), retrying like [`XClient::page`].
    pub async fn archive_page(&self, request: &ArchiveRequest, deadline: Instant) -> Result<Bytes, ApiError> {
        let url = format!("{}/2/tweets/search/all", self.base);
        let mut params: Vec<_> = self.params.iter().filter(|(k, _)| *k != "max_results").cloned().collect();
        params.push(("max_results", request.max_results.to_string()));
        params.push(("start_time", request.start_time.clone()));
        params.push(("end_time", request.end_time.clone()));
        params.extend(request.until_id.as_ref().map(|id| ("until_id", id.clone())));
        params.extend(request.next_token.as_ref().map(|t| ("next_token", t.clone())));
        self.fetch(&url, &params, deadline).await
    }

    /// Posts per day the query matches in `[start, end)` (`GET /2/tweets/counts/all`, following
    /// `next_token`, 31 days a page). Counts are not billed as posts read.
    pub async fn counts(&self, start: &str, end: &str, deadline: Instant) -> Result<Vec<DayCount>, ApiError> {
        let url = format!("{}/2/tweets/counts/all", self.base);
        let query = self.params.iter().find(|(k, _)| *k == "query").cloned();
        let mut days = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params: Vec<_> = query.iter().cloned().collect();
            params.push(("start_time", start.to_string()));
            params.push(("end_time", end.to_string()));
            params.push(("granularity", "day".to_string()));
            params.extend(token.take().map(|t| ("next_token", t)));
            let body = self.fetch(&url, &params, deadline).await?;
            let page: CountsPage = serde_json::from_slice(&body).map_err(|e| ApiError::Unavailable {
                attempts: 1,
                last: format!("{url} answered with something that is not a counts page: {e}"),
            })?;
            days.extend(page.data);
            match page.meta.and_then(|m| m.next_token) {
                Some(next) => token = Some(next),
                None => return Ok(days),
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct CountsPage {
    #[serde(default)]
    data: Vec<DayCount>,
    meta: Option<CountsMeta>,
}

#[derive(serde::Deserialize)]
struct CountsMeta {
    next_token: Option<String>,
}

fn classify(status: StatusCode, reset: Option<u64>, body: Bytes) -> Result<Attempt, ApiError> {
    if status.is_success() {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
            Ok(_) => Ok(Attempt::Page(body)),
            Err(e) => Ok(Attempt::Retry(format!("{status} with an incomplete JSON body ({e})"))),
        };
    }
    // docs.x.com/x-api/fundamentals/response-codes-and-errors: a 429 is a rate limit *or* a usage
    // cap, told apart by the problem type; a 402 credits-depleted means no credits are left.
    match problem_type(&body).as_deref() {
        Some(t) if status == StatusCode::TOO_MANY_REQUESTS && t.ends_with("/problems/usage-capped") => {
            return Err(ApiError::UsageCapped { detail: problem_detail(&body) });
        }
        Some(t) if status == StatusCode::PAYMENT_REQUIRED && t.ends_with("/problems/credits-depleted") => {
            return Err(ApiError::CreditsDepleted { detail: problem_detail(&body) });
        }
        _ => {}
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Ok(match reset {
            Some(reset) => Attempt::WaitUntil(reset),
            None => Attempt::Retry("429 Too Many Requests without x-rate-limit-reset".into()),
        });
    }
    if status.is_server_error() {
        return Ok(Attempt::Retry(format!("{status}")));
    }
    Err(rejected(status, &body))
}

/// The RFC 7807 `type` of a problem body, if it is one.
fn problem_type(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json.get("type")?.as_str().map(str::to_string)
}

/// `detail`, else `title`, of a problem body.
fn problem_detail(body: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_string);
    text("detail").or_else(|| text("title")).unwrap_or_else(|| "no detail given".into())
}

/// The problem detail of a 4xx body (`title`, `detail`, `errors[].message`).
fn rejected(status: StatusCode, body: &[u8]) -> ApiError {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let title = text("title").unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let mut detail =
        text("detail").unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let messages: Vec<_> =
        json["errors"].as_array().into_iter().flatten().filter_map(|e| e["message"].as_str()).collect();
    if !messages.is_empty() {
        detail = format!("{detail} ({})", messages.join("; "));
    }
    // docs.x.com, search: "'since_id' must be a tweet id created after <time>. Please use a
    // 'since_id' that is larger than <id>" (likewise until_id); any other 400 stays an error.
    for param in ["since_id", "until_id"] {
        let stale = format!("'{param}' must be a tweet id created after");
        if let Some(message) = messages.iter().find(|m| m.contains(&stale)) {
            return ApiError::OutsideWindow { param, message: message.to_string() };
        }
    }
    let hint = match status.as_u16() {
        401 => "; the bearer token is wrong or revoked: set a valid one (see extract.bearer_token)",
        403 => "; this token's app lacks access to recent search: check its project and access level",
        _ => "",
    };
    ApiError::Rejected { status: status.as_u16(), title, detail, hint }
}

/// Exponential delay doubled per failure, capped, with full-range jitter in [d/2, d].
fn backoff(policy: &RetryPolicy, failures: u32) -> Duration {
    let exp = policy.base_delay_ms.saturating_mul(1u64 << failures.saturating_sub(1).min(20));
    let capped = exp.min(policy.max_delay_ms);
    Duration::from_millis(capped / 2 + fastrand::u64(0..=capped / 2))
}

fn header_u64(response: &reqwest::Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

fn now_epoch() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn epoch_to_rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0).map(|t| t.to_rfc3339()).unwrap_or_else(|| secs.to_string())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stays_bounded() {
        let policy = RetryPolicy { max_attempts: 10, base_delay_ms: 100, max_delay_ms: 1000 };
        for failures in 1..10 {
            let d = backoff(&policy, failures).as_millis() as u64;
            let full = (100u64 << (failures - 1)).min(1000);
            assert!(d >= full / 2 && d <= full, "failure {failures}: {d} ms outside [{}, {full}]", full / 2);
        }
    }

    #[test]
    fn usage_reads_the_documented_body_with_numbers_as_strings_or_numbers() {
        // docs.x.com/x-api/usage/tweets, "Getting started"
        let documented = br#"{"data":{"cap_reset_day":10,"project_cap":"5000000000","project_id":"1369785403853424","project_usage":"43435"}}"#;
        let usage = Usage::parse(documented).unwrap();
        assert_eq!(usage, Usage { project_usage: 43435, project_cap: Some(5_000_000_000), cap_reset_day: Some(10) });
        let numbers = br#"{"data":{"project_usage":7,"project_cap":10000000}}"#;
        assert_eq!(Usage::parse(numbers).unwrap().project_usage, 7);
        assert_eq!(Usage::parse(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn problem_detail_of_the_recorded_400_is_shown() {
        let recorded: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/x-api/search_all_400.json")).unwrap();
        let body = serde_json::to_vec(&recorded["body"]).unwrap();
        let message = rejected(StatusCode::BAD_REQUEST, &body).to_string();
        assert!(message.contains("400 Invalid Request"), "{message}");
        assert!(message.contains("'start_time' must be before 'end_time'"), "{message}");
    }
}
