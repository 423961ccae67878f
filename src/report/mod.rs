//! `flixops report`: one self-contained HTML page of the marts (inline CSS and SVG charts drawn
//! by plotters, no script, nothing fetched), and the same numbers as JSON. Every number is read
//! from a model through [`Marts`], which each target implements: DuckDB in `local/report.rs`,
//! Snowflake in `snowflake/report.rs`. The SELECTs over the marts are shared (`read.rs`).

mod chart;
mod read;
pub mod render;

use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::config::{EnvConfig, Target};

/// One result row, keyed by lower-case column name.
pub type Row = serde_json::Map<String, Value>;

/// A warehouse's marts, as the report reads them. The SQL is shared; each target supplies names,
/// one timestamp conversion and a way to run a SELECT.
pub trait Marts: Send + Sync {
    /// Where the numbers come from, for the page (the DuckDB file, the Snowflake database).
    fn source(&self) -> String;
    /// The command that builds the models on this target, for the fix of a missing one.
    fn build_command(&self) -> &'static str;
    /// Model `schema.name` as this warehouse names it in SQL.
    fn table(&self, model: &str) -> Result<String, ReportError>;
    /// SQL for timestamp `expr` (UTC) as whole seconds since the Unix epoch.
    fn epoch_seconds(&self, expr: &str) -> String;
    /// Runs one read-only SELECT.
    fn rows<'a>(&'a self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Row>, QueryError>>;
}

/// A SELECT that failed, as a target reports it.
#[derive(Debug, Clone)]
pub struct QueryError {
    /// The warehouse's message.
    pub message: String,
    /// A table or view it reads does not exist.
    pub missing: bool,
    /// The session or network failed rather than the statement.
    pub connect: bool,
}

/// Why no report was written, naming the warehouse, model or file and the way out.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The local warehouse file does not exist yet.
    #[error("no warehouse at {path}: nothing has been loaded yet; run `flixops run` (or `flixops run --demo`) first", path = .path.display())]
    NoWarehouse { path: PathBuf },
    /// A model the report reads is not in the warehouse.
    #[error(
        "{model} does not exist in {source_of}: run `{build}` to build it (a project with its own models/ folder needs \
         models/{file}.sql: copy the default from flixops' snowflake/models/{file}.sql)"
    )]
    MissingModel { model: String, source_of: String, build: &'static str, file: String },
    /// A SELECT on a model failed.
    #[error("reading {model} from {source_of}: {message}")]
    Query { model: String, source_of: String, message: String, connect: bool },
    /// A model holds a value the report cannot read (a project's own model with other types).
    #[error("{model}: column `{column}` holds {value}, not {expected}")]
    Value { model: String, column: String, value: String, expected: &'static str },
    /// The page or a chart could not be drawn.
    #[error("drawing the report ({what}): {message}")]
    Draw { what: &'static str, message: String },
    /// The page could not be written.
    #[error("cannot write the report to {path}: {source}; check that the directory exists and is writable", path = .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ReportError {
    /// Missing input the user provides first (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, ReportError::NoWarehouse { .. } | ReportError::MissingModel { .. })
    }

    /// The warehouse could not be reached (exit code 3).
    pub fn is_connect(&self) -> bool {
        matches!(self, ReportError::Query { connect: true, .. })
    }
}

/// The period and limits of a report.
#[derive(Debug, Clone)]
pub struct Options {
    /// Days covered, ending at the newest tweet's UTC day.
    pub days: u32,
    /// Where the page is written.
    pub out: PathBuf,
}

/// Every number on the page; `--output json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The environment (`--env`).
    pub environment: String,
    /// `local` or `aws-snowflake`.
    pub target: String,
    /// The warehouse the marts were read from.
    pub source: String,
    /// When the report was made (RFC 3339, UTC).
    pub generated_at: String,
    /// The period asked for, in days.
    pub days: u32,
    /// The days covered; None when the marts hold no tweet.
    pub period: Option<Period>,
    /// What the data covers per search query, over all time: tweets and freshness.
    pub coverage: Vec<Coverage>,
    /// Totals over the period.
    pub totals: Totals,
    /// Tweets per day, oldest first.
    pub daily: Vec<Day>,
    /// The most used hashtags over the period.
    pub top_hashtags: Vec<HashtagCount>,
    /// Each day's most used hashtags, newest day first.
    pub hashtags_by_day: Vec<DayHashtags>,
    /// The most active authors over the period.
    pub top_users: Vec<User>,
    /// Tweets per UTC hour of the day (hours without tweets are absent).
    pub hours: Vec<Slot>,
    /// Tweets per ISO weekday, 1 Monday … 7 Sunday (days without tweets are absent).
    pub weekdays: Vec<Slot>,
    /// The hour with the most tweets (the earliest of a tie).
    pub busiest_hour: Option<Slot>,
    /// The weekday with the most tweets (the earliest of a tie).
    pub busiest_weekday: Option<Slot>,
    /// The newest tweets with three or more hashtags.
    pub multi_hashtag_tweets: Vec<MultiTweet>,
}

/// The UTC days a report covers, both included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// First day, YYYY-MM-DD.
    pub first_day: String,
    /// Last day: the newest tweet's.
    pub last_day: String,
}

/// One search query's data (`marts.query_coverage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// The search query.
    pub query: String,
    /// Tweets stored for it.
    pub tweets: u64,
    /// Its oldest tweet (RFC 3339, UTC).
    pub first_tweet_at: Option<String>,
    /// Its newest tweet.
    pub newest_tweet_at: Option<String>,
    /// When its newest tweets were loaded into the warehouse.
    pub newest_load_at: Option<String>,
}

/// Totals over the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Tweets (`marts.tweets_daily`).
    pub tweets: u64,
    /// Of which retweets.
    pub retweets: u64,
    /// Retweets / tweets, rounded to 4 decimals.
    pub retweet_share: f64,
    /// Distinct authors (`marts.user_activity_daily`).
    pub users: u64,
    /// Hashtag uses (`marts.hashtags_daily`).
    pub hashtag_uses: u64,
    /// Distinct hashtags.
    pub hashtags: u64,
    /// Tweets with three or more hashtags (`marts.multi_hashtag_tweets`).
    pub multi_hashtag_tweets: u64,
}

/// One day of `marts.tweets_daily`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day {
    /// YYYY-MM-DD (UTC).
    pub date: String,
    /// Tweets.
    pub tweets: u64,
    /// Retweets.
    pub retweets: u64,
    /// Retweets / tweets, rounded to 4 decimals.
    pub retweet_share: f64,
    /// Distinct authors that day.
    pub users: u64,
}

/// A hashtag and its uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashtagCount {
    /// Lower case, without `#`.
    pub hashtag: String,
    /// Tweets carrying it.
    pub tweets: u64,
}

/// One day's top hashtags (`marts.hashtags_daily`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayHashtags {
    /// YYYY-MM-DD (UTC).
    pub date: String,
    /// At most three, most used first.
    pub hashtags: Vec<HashtagCount>,
}

/// An author's activity over the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// X user id.
    pub user_id: String,
    /// @handle as last seen.
    pub username: Option<String>,
    /// Tweets in the period.
    pub tweets: u64,
    /// Followers as last seen.
    pub followers: Option<u64>,
    /// Average text length in the period, rounded to 1 decimal.
    pub avg_length: f64,
}

/// Tweets in one hour of the day or one weekday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Hour 0–23, or ISO weekday 1–7.
    pub slot: u32,
    /// "14:00" or "Wednesday".
    pub label: String,
    /// Tweets.
    pub tweets: u64,
}

/// A tweet with three or more hashtags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiTweet {
    /// Tweet id.
    pub tweet_id: String,
    /// Author id.
    pub user_id: String,
    /// @handle as last seen.
    pub username: Option<String>,
    /// When it was posted (RFC 3339, UTC).
    pub created_at: Option<String>,
    /// How many hashtags.
    pub hashtag_count: u64,
    /// The hashtags as written.
    pub hashtags: Vec<String>,
    /// The full text.
    pub text: String,
}

/// A written report: where, and its numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// The page.
    pub path: PathBuf,
    /// Its numbers.
    #[serde(flatten)]
    pub report: Report,
}

/// How many rows the ranked sections show.
const TOP: usize = 10;
/// Hashtags shown per day.
const PER_DAY: usize = 3;

/// Reads the environment's marts and writes the page to `options.out`.
pub async fn generate(env: &EnvConfig, options: &Options) -> Result<Written, Error> {
    let marts: Box<dyn Marts> = match &env.target {
        Target::Local(local) => crate::local::report::marts(&local.warehouse)?,
        Target::AwsSnowflake(cloud) => {
            let client = crate::deploy::connect_snowflake(cloud).await?;
            Box::new(crate::snowflake::report::SnowflakeMarts::new(client, &cloud.database)?)
        }
    };
    let report = build(marts.as_ref(), &env.name, env.target.kind(), options.days).await?;
    write(&report, &options.out)?;
    Ok(Written { path: options.out.clone(), report })
}

/// Reads every number of a report from `marts`.
pub async fn build(marts: &dyn Marts, environment: &str, target: &str, days: u32) -> Result<Report, ReportError> {
    let generated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut report = Report {
        environment: environment.to_string(),
        target: target.to_string(),
        source: marts.source(),
        generated_at,
        days,
        period: None,
        coverage: Vec::new(),
        totals: Totals::default(),
        daily: Vec::new(),
        top_hashtags: Vec::new(),
        hashtags_by_day: Vec::new(),
        top_users: Vec::new(),
        hours: Vec::new(),
        weekdays: Vec::new(),
        busiest_hour: None,
        busiest_weekday: None,
        multi_hashtag_tweets: Vec::new(),
    };
    read::fill(marts, &mut report).await?;
    Ok(report)
}

/// Renders the page and writes it.
pub fn write(report: &Report, path: &Path) -> Result<(), ReportError> {
    let page = html(report)?;
    std::fs::write(path, page).map_err(|source| ReportError::Write { path: path.to_path_buf(), source })
}

/// The page: the handlebars template `templates/report/report.html.hbs` with the numbers
/// formatted and the charts inline.
pub fn html(report: &Report) -> Result<String, ReportError> {
    let charts = chart::all(report)?;
    let context = json!({ "r": view(report), "charts": charts });
    crate::templates::render_html("report/report", &context)
        .map_err(|e| ReportError::Draw { what: "templates/report/report.html.hbs", message: e.to_string() })
}

/// The numbers as the page shows them (thousands separated, shares in percent).
fn view(r: &Report) -> Value {
    let day = |d: &Day| {
        json!({ "date": d.date, "tweets": count(d.tweets), "retweets": count(d.retweets),
                "share": percent(d.retweet_share), "users": count(d.users) })
    };
    let tag = |h: &HashtagCount| json!({ "hashtag": h.hashtag, "tweets": count(h.tweets) });
    let slot = |s: &Slot| json!({ "slot": s.slot, "label": s.label, "tweets": count(s.tweets) });
    json!({
        "environment": r.environment,
        "target": r.target,
        "source": r.source,
        "generated_at": r.generated_at,
        "days": r.days,
        "period": r.period,
        "coverage": r.coverage.iter().map(|c| json!({
            "query": c.query, "tweets": count(c.tweets),
            "first": time(&c.first_tweet_at), "newest": time(&c.newest_tweet_at), "load": time(&c.newest_load_at),
        })).collect::<Vec<_>>(),
        "totals": {
            "tweets": count(r.totals.tweets), "retweets": count(r.totals.retweets),
            "share": percent(r.totals.retweet_share), "users": count(r.totals.users),
            "hashtag_uses": count(r.totals.hashtag_uses), "hashtags": count(r.totals.hashtags),
            "multi": count(r.totals.multi_hashtag_tweets),
        },
        "daily": r.daily.iter().map(day).collect::<Vec<_>>(),
        "top_hashtags": r.top_hashtags.iter().map(tag).collect::<Vec<_>>(),
        "hashtags_by_day": r.hashtags_by_day.iter().map(|d| json!({
            "date": d.date, "hashtags": d.hashtags.iter().map(tag).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "top_users": r.top_users.iter().map(|u| json!({
            "user_id": u.user_id, "username": u.username, "tweets": count(u.tweets),
            "followers": u.followers.map(count), "avg_length": format!("{:.1}", u.avg_length),
        })).collect::<Vec<_>>(),
        "hours": r.hours.iter().map(slot).collect::<Vec<_>>(),
        "weekdays": r.weekdays.iter().map(slot).collect::<Vec<_>>(),
        "busiest_hour": r.busiest_hour.as_ref().map(slot),
        "busiest_weekday": r.busiest_weekday.as_ref().map(slot),
        "multi": r.multi_hashtag_tweets.iter().map(|t| json!({
            "tweet_id": t.tweet_id, "user_id": t.user_id, "username": t.username,
            "created_at": time(&t.created_at), "hashtag_count": count(t.hashtag_count),
            "hashtags": t.hashtags.iter().map(|h| format!("#{h}")).collect::<Vec<_>>().join(" "), "text": t.text,
        })).collect::<Vec<_>>(),
    })
}

/// 12345 → "12,345".
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 0.6712 → "67.1%".
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// "2021-09-22T16:37:29Z" → "2021-09-22 16:37 UTC"; a missing time reads "–".
fn time(at: &Option<String>) -> String {
    let parsed = at.as_deref().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    parsed.map_or_else(|| "–".to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// Opens the page in the desktop's browser (`xdg-open`, `open` on macOS, `start` on Windows),
/// without waiting for it.
pub fn open_in_browser(path: &Path) -> std::io::Result<()> {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    command.arg(path).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_shares_read_as_people_write_them() {
        assert_eq!(
            (count(0), count(999), count(1000), count(1234567)),
            ("0".into(), "999".into(), "1,000".into(), "1,234,567".into())
        );
        assert_eq!(percent(0.6712), "67.1%");
        assert_eq!(time(&Some("2021-09-22T16:37:29Z".into())), "2021-09-22 16:37 UTC");
        assert_eq!(time(&None), "–");
    }
}
