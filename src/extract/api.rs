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
        matches!(self, ApiError::Connect { .. }) || matches!(self, ApiError::Rejected { status: 401 | 403, .. })
    }
}

/// A client bound to one query's parameters and token.
pub struct XClient {
    http: reqwest::Client,
    url: String,
    params: Vec<(&'static str, String)>,
    token: Secret,
    retry: RetryPolicy,
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
        let url = format!("{}/2/tweets/search/recent", config.api_base_url.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .user_agent(concat!("flixops/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .build()
            .map_err(|e| ApiError::Connect { url: url.clone(), message: e.to_string() })?;
        let params = vec![
            ("query", config.query.clone()),
            ("max_results", config.max_results.to_string()),
            ("expansions", config.expansions.join(",")),
            ("tweet.fields", config.tweet_fields.join(",")),
            ("user.fields", config.user_fields.join(",")),
        ];
        Ok(Self { http, url, params, token, retry: config.retry })
    }

    /// Fetches one page (a complete JSON body), retrying transient failures until `deadline`.
    pub async fn page(
        &self,
        since_id: Option<&str>,
        next_token: Option<&str>,
        deadline: Instant,
    ) -> Result<Bytes, ApiError> {
        let mut failures = 0;
        loop {
            let last = match self.attempt(since_id, next_token).await? {
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
            if failures >= self.retry.max_attempts || Instant::now() >= deadline {
                return Err(ApiError::Unavailable { attempts: failures, last });
            }
            let delay = backoff(&self.retry, failures);
            tracing::warn!(
                "X API: {last}; retry {failures}/{} in {} ms",
                self.retry.max_attempts - 1,
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, since_id: Option<&str>, next_token: Option<&str>) -> Result<Attempt, ApiError> {
        let mut params = self.params.clone();
        params.extend(since_id.map(|id| ("since_id", id.to_string())));
        params.extend(next_token.map(|t| ("next_token", t.to_string())));
        let sent = self.http.get(&self.url).query(&params).bearer_auth(self.token.expose()).send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Ok(Attempt::Retry("request timed out".into())),
            Err(e) if e.is_connect() => {
                return Err(ApiError::Connect { url: self.url.clone(), message: error_chain(&e) });
            }
            Err(e) => return Ok(Attempt::Retry(error_chain(&e))),
        };
        let status = response.status();
        let reset = header_u64(&response, "x-rate-limit-reset");
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return Ok(Attempt::Retry(format!("{status}: body cut off: {}", error_chain(&e)))),
        };
        classify(status, reset, body)
    }
}

fn classify(status: StatusCode, reset: Option<u64>, body: Bytes) -> Result<Attempt, ApiError> {
    if status.is_success() {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
            Ok(_) => Ok(Attempt::Page(body)),
            Err(e) => Ok(Attempt::Retry(format!("{status} with an incomplete JSON body ({e})"))),
        };
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
    fn problem_detail_of_the_recorded_400_is_shown() {
        let recorded: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/x-api/search_all_400.json")).unwrap();
        let body = serde_json::to_vec(&recorded["body"]).unwrap();
        let message = rejected(StatusCode::BAD_REQUEST, &body).to_string();
        assert!(message.contains("400 Invalid Request"), "{message}");
        assert!(message.contains("'start_time' must be before 'end_time'"), "{message}");
    }
}
