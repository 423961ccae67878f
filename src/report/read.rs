//! The report's SELECTs, one per section, each reading models only (never the raw table). They
//! are plain SQL that DuckDB and Snowflake both run; [`Marts`] names the tables and converts
//! timestamps. The period is the `days` UTC days ending at the newest tweet's day, so a report on
//! old data still shows it.

use chrono::NaiveDate;
use serde_json::Value;

use super::{
    Coverage, Day, DayHashtags, HashtagCount, Marts, MultiTweet, PER_DAY, Period, Report, ReportError, Row, Slot, TOP,
    Totals, User,
};

const TWEETS_DAILY: &str = "marts.tweets_daily";
const HASHTAGS_DAILY: &str = "marts.hashtags_daily";
const USER_ACTIVITY: &str = "marts.user_activity_daily";
const USERS_STATS: &str = "marts.users_stats";
const TWEETS_HOURLY: &str = "marts.tweets_hourly";
const MULTI: &str = "marts.multi_hashtag_tweets";
const COVERAGE: &str = "marts.query_coverage";

/// Fills every section of `report` (left empty when the marts hold no tweet).
pub(super) async fn fill(m: &dyn Marts, report: &mut Report) -> Result<(), ReportError> {
    let Some(period) = period(m, report.days).await? else {
        report.coverage = coverage(m).await?;
        return Ok(());
    };
    let within = format!("BETWEEN DATE '{}' AND DATE '{}'", period.first_day, period.last_day);
    let w = within.as_str();
    let (coverage, totals, daily, top_hashtags, hashtags_by_day, top_users, hours, weekdays, multi) = futures::try_join!(
        coverage(m),
        totals(m, w),
        daily(m, w),
        top_hashtags(m, w),
        hashtags_by_day(m, w),
        top_users(m, w),
        slots(m, w, "tweet_hour", hour_label),
        slots(m, w, "tweet_weekday", weekday_label),
        multi_hashtag_tweets(m, w),
    )?;
    report.busiest_hour = busiest(&hours);
    report.busiest_weekday = busiest(&weekdays);
    report.period = Some(period);
    report.coverage = coverage;
    report.totals = totals;
    report.daily = daily;
    report.top_hashtags = top_hashtags;
    report.hashtags_by_day = hashtags_by_day;
    report.top_users = top_users;
    report.hours = hours;
    report.weekdays = weekdays;
    report.multi_hashtag_tweets = multi;
    Ok(())
}

/// Runs `sql` on `models`; a missing table names the model and how to build it.
async fn query(m: &dyn Marts, models: &[&str], sql: &str) -> Result<Vec<Row>, ReportError> {
    m.rows(sql).await.map_err(|e| {
        let named = |model: &&&str| {
            let name = model.rsplit('.').next().unwrap_or(model);
            e.message.to_ascii_lowercase().contains(name)
        };
        let model = models.iter().find(named).or(models.first()).copied().unwrap_or_default().to_string();
        if e.missing {
            let file = model.replace('.', "/");
            return ReportError::MissingModel { model, source_of: m.source(), build: m.build_command(), file };
        }
        ReportError::Query { model, source_of: m.source(), message: e.message, connect: e.connect }
    })
}

/// The `days` days ending at the newest day in `marts.tweets_daily`; None when it is empty.
async fn period(m: &dyn Marts, days: u32) -> Result<Option<Period>, ReportError> {
    let sql = format!("SELECT MAX(tweet_date) AS newest FROM {}", m.table(TWEETS_DAILY)?);
    let rows = query(m, &[TWEETS_DAILY], &sql).await?;
    let Some(newest) = rows.first().map(|r| text(TWEETS_DAILY, r, "newest")).transpose()?.flatten() else {
        return Ok(None);
    };
    let last = NaiveDate::parse_from_str(&newest, "%Y-%m-%d").map_err(|_| ReportError::Value {
        model: TWEETS_DAILY.into(),
        column: "tweet_date".into(),
        value: newest.clone(),
        expected: "a date",
    })?;
    let first = last - chrono::Days::new(u64::from(days.max(1)) - 1);
    Ok(Some(Period { first_day: first.to_string(), last_day: last.to_string() }))
}

async fn coverage(m: &dyn Marts) -> Result<Vec<Coverage>, ReportError> {
    let sql = format!(
        "SELECT query, tweet_count AS tweets, {} AS first_tweet, {} AS newest_tweet, {} AS newest_load \
         FROM {} ORDER BY newest_tweet_at DESC, query",
        m.epoch_seconds("first_tweet_at"),
        m.epoch_seconds("newest_tweet_at"),
        m.epoch_seconds("newest_loaded_at"),
        m.table(COVERAGE)?
    );
    let rows = query(m, &[COVERAGE], &sql).await?;
    rows.iter()
        .map(|r| {
            Ok(Coverage {
                query: text(COVERAGE, r, "query")?.unwrap_or_default(),
                tweets: int(COVERAGE, r, "tweets")?,
                first_tweet_at: instant(COVERAGE, r, "first_tweet")?,
                newest_tweet_at: instant(COVERAGE, r, "newest_tweet")?,
                newest_load_at: instant(COVERAGE, r, "newest_load")?,
            })
        })
        .collect()
}

async fn totals(m: &dyn Marts, within: &str) -> Result<Totals, ReportError> {
    let daily = format!(
        "SELECT SUM(tweet_count) AS tweets, SUM(retweet_count) AS retweets, \
         ROUND(CAST(SUM(retweet_count) AS DOUBLE) / SUM(tweet_count), 4) AS retweet_share \
         FROM {} WHERE tweet_date {within}",
        m.table(TWEETS_DAILY)?
    );
    let users =
        format!("SELECT COUNT(DISTINCT user_id) AS users FROM {} WHERE tweet_date {within}", m.table(USER_ACTIVITY)?);
    let tags = format!(
        "SELECT SUM(tweet_count) AS uses, COUNT(DISTINCT hashtag) AS hashtags FROM {} WHERE tweet_date {within}",
        m.table(HASHTAGS_DAILY)?
    );
    let multi =
        format!("SELECT COUNT(*) AS tweets FROM {} WHERE CAST(tweet_created_at AS DATE) {within}", m.table(MULTI)?);
    let (daily, users, tags, multi) = futures::try_join!(
        one(m, TWEETS_DAILY, &daily),
        one(m, USER_ACTIVITY, &users),
        one(m, HASHTAGS_DAILY, &tags),
        one(m, MULTI, &multi),
    )?;
    Ok(Totals {
        tweets: int(TWEETS_DAILY, &daily, "tweets")?,
        retweets: int(TWEETS_DAILY, &daily, "retweets")?,
        retweet_share: float(TWEETS_DAILY, &daily, "retweet_share")?,
        users: int(USER_ACTIVITY, &users, "users")?,
        hashtag_uses: int(HASHTAGS_DAILY, &tags, "uses")?,
        hashtags: int(HASHTAGS_DAILY, &tags, "hashtags")?,
        multi_hashtag_tweets: int(MULTI, &multi, "tweets")?,
    })
}

/// The single row of an aggregate SELECT.
async fn one(m: &dyn Marts, model: &str, sql: &str) -> Result<Row, ReportError> {
    Ok(query(m, &[model], sql).await?.into_iter().next().unwrap_or_default())
}

async fn daily(m: &dyn Marts, within: &str) -> Result<Vec<Day>, ReportError> {
    let sql = format!(
        "SELECT tweet_date AS day, tweet_count AS tweets, retweet_count AS retweets, \
         ROUND(CAST(retweet_share AS DOUBLE), 4) AS retweet_share, user_count AS users \
         FROM {} WHERE tweet_date {within} ORDER BY tweet_date",
        m.table(TWEETS_DAILY)?
    );
    let rows = query(m, &[TWEETS_DAILY], &sql).await?;
    rows.iter()
        .map(|r| {
            Ok(Day {
                date: text(TWEETS_DAILY, r, "day")?.unwrap_or_default(),
                tweets: int(TWEETS_DAILY, r, "tweets")?,
                retweets: int(TWEETS_DAILY, r, "retweets")?,
                retweet_share: float(TWEETS_DAILY, r, "retweet_share")?,
                users: int(TWEETS_DAILY, r, "users")?,
            })
        })
        .collect()
}

async fn top_hashtags(m: &dyn Marts, within: &str) -> Result<Vec<HashtagCount>, ReportError> {
    let sql = format!(
        "SELECT hashtag, SUM(tweet_count) AS tweets FROM {} WHERE tweet_date {within} \
         GROUP BY hashtag ORDER BY tweets DESC, hashtag LIMIT {TOP}",
        m.table(HASHTAGS_DAILY)?
    );
    let rows = query(m, &[HASHTAGS_DAILY], &sql).await?;
    rows.iter().map(|r| hashtag(r)).collect()
}

fn hashtag(r: &Row) -> Result<HashtagCount, ReportError> {
    Ok(HashtagCount {
        hashtag: text(HASHTAGS_DAILY, r, "hashtag")?.unwrap_or_default(),
        tweets: int(HASHTAGS_DAILY, r, "tweets")?,
    })
}

async fn hashtags_by_day(m: &dyn Marts, within: &str) -> Result<Vec<DayHashtags>, ReportError> {
    let sql = format!(
        "SELECT tweet_date AS day, hashtag, tweet_count AS tweets FROM {} WHERE tweet_date {within} \
         QUALIFY ROW_NUMBER() OVER (PARTITION BY tweet_date ORDER BY tweet_count DESC, hashtag) <= {PER_DAY} \
         ORDER BY tweet_date DESC, tweet_count DESC, hashtag",
        m.table(HASHTAGS_DAILY)?
    );
    let rows = query(m, &[HASHTAGS_DAILY], &sql).await?;
    let mut days: Vec<DayHashtags> = Vec::new();
    for r in &rows {
        let date = text(HASHTAGS_DAILY, r, "day")?.unwrap_or_default();
        if days.last().is_none_or(|d| d.date != date) {
            days.push(DayHashtags { date, hashtags: Vec::new() });
        }
        days.last_mut().expect("pushed above").hashtags.push(hashtag(r)?);
    }
    Ok(days)
}

async fn top_users(m: &dyn Marts, within: &str) -> Result<Vec<User>, ReportError> {
    let sql = format!(
        "SELECT a.user_id AS user_id, MAX(u.user_username) AS username, SUM(a.tweet_count) AS tweets, \
         MAX(u.user_followers_count) AS followers, \
         ROUND(CAST(SUM(a.text_length) AS DOUBLE) / SUM(a.tweet_count), 1) AS avg_length \
         FROM {} AS a LEFT JOIN {} AS u ON u.user_id = a.user_id WHERE a.tweet_date {within} \
         GROUP BY a.user_id ORDER BY tweets DESC, a.user_id LIMIT {TOP}",
        m.table(USER_ACTIVITY)?,
        m.table(USERS_STATS)?
    );
    let rows = query(m, &[USER_ACTIVITY, USERS_STATS], &sql).await?;
    rows.iter()
        .map(|r| {
            Ok(User {
                user_id: text(USER_ACTIVITY, r, "user_id")?.unwrap_or_default(),
                username: text(USERS_STATS, r, "username")?,
                tweets: int(USER_ACTIVITY, r, "tweets")?,
                followers: maybe_int(USERS_STATS, r, "followers")?,
                avg_length: float(USER_ACTIVITY, r, "avg_length")?,
            })
        })
        .collect()
}

/// Tweets per `column` of `marts.tweets_hourly` (hour or weekday) over the period.
async fn slots(m: &dyn Marts, within: &str, column: &str, label: fn(u32) -> String) -> Result<Vec<Slot>, ReportError> {
    let sql = format!(
        "SELECT {column} AS slot, SUM(tweet_count) AS tweets FROM {} WHERE tweet_date {within} \
         GROUP BY {column} ORDER BY {column}",
        m.table(TWEETS_HOURLY)?
    );
    let rows = query(m, &[TWEETS_HOURLY], &sql).await?;
    rows.iter()
        .map(|r| {
            let slot = int(TWEETS_HOURLY, r, "slot")? as u32;
            Ok(Slot { slot, label: label(slot), tweets: int(TWEETS_HOURLY, r, "tweets")? })
        })
        .collect()
}

fn hour_label(hour: u32) -> String {
    format!("{hour:02}:00")
}

fn weekday_label(day: u32) -> String {
    const NAMES: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    NAMES.get(day.wrapping_sub(1) as usize).map_or_else(|| day.to_string(), |n| n.to_string())
}

/// The slot with the most tweets; the first (earliest) of a tie.
fn busiest(slots: &[Slot]) -> Option<Slot> {
    slots
        .iter()
        .fold(None::<&Slot>, |best, s| if best.is_none_or(|b| s.tweets > b.tweets) { Some(s) } else { best })
        .cloned()
}

async fn multi_hashtag_tweets(m: &dyn Marts, within: &str) -> Result<Vec<MultiTweet>, ReportError> {
    let sql = format!(
        "SELECT t.tweet_id AS tweet_id, t.user_id AS user_id, u.user_username AS username, {} AS created, \
         t.hashtag_count AS hashtag_count, t.tweet_hashtags AS hashtags, t.tweet_text AS text \
         FROM {} AS t LEFT JOIN {} AS u ON u.user_id = t.user_id \
         WHERE CAST(t.tweet_created_at AS DATE) {within} \
         ORDER BY t.tweet_created_at DESC, t.tweet_id DESC LIMIT {TOP}",
        m.epoch_seconds("t.tweet_created_at"),
        m.table(MULTI)?,
        m.table(USERS_STATS)?
    );
    let rows = query(m, &[MULTI, USERS_STATS], &sql).await?;
    rows.iter()
        .map(|r| {
            Ok(MultiTweet {
                tweet_id: text(MULTI, r, "tweet_id")?.unwrap_or_default(),
                user_id: text(MULTI, r, "user_id")?.unwrap_or_default(),
                username: text(USERS_STATS, r, "username")?,
                created_at: instant(MULTI, r, "created")?,
                hashtag_count: int(MULTI, r, "hashtag_count")?,
                hashtags: strings(MULTI, r, "hashtags")?,
                text: text(MULTI, r, "text")?.unwrap_or_default(),
            })
        })
        .collect()
}

fn bad(model: &str, column: &str, value: &Value, expected: &'static str) -> ReportError {
    ReportError::Value { model: model.into(), column: column.into(), value: value.to_string(), expected }
}

/// A text column (numbers as their digits); None for NULL.
fn text(model: &str, r: &Row, column: &str) -> Result<Option<String>, ReportError> {
    match r.get(column) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(bad(model, column, other, "text")),
    }
}

/// A list of text: an array, or (Snowflake's ARRAY) its JSON text; NULL is empty.
fn strings(model: &str, r: &Row, column: &str) -> Result<Vec<String>, ReportError> {
    let value = r.get(column).unwrap_or(&Value::Null);
    let parsed = match value {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) => serde_json::from_str::<Value>(s).ok(),
        other => Some(other.clone()),
    };
    let items = parsed
        .as_ref()
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect());
    items.ok_or_else(|| bad(model, column, value, "a list of text"))
}

/// A count; NULL (an aggregate over no rows) is 0.
fn int(model: &str, r: &Row, column: &str) -> Result<u64, ReportError> {
    Ok(maybe_int(model, r, column)?.unwrap_or(0))
}

/// A whole number ≥ 0 (Snowflake sends NUMBER as a number or as its decimal text).
fn maybe_int(model: &str, r: &Row, column: &str) -> Result<Option<u64>, ReportError> {
    let value = r.get(column).unwrap_or(&Value::Null);
    let parsed = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
        }
        Value::String(s) => s
            .parse::<u64>()
            .ok()
            .or_else(|| s.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64)),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| bad(model, column, value, "a whole number"))
}

/// A decimal number; NULL (a share over no tweets) is 0.
fn float(model: &str, r: &Row, column: &str) -> Result<f64, ReportError> {
    let value = r.get(column).unwrap_or(&Value::Null);
    let parsed = match value {
        Value::Null => Some(0.0),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| bad(model, column, value, "a number"))
}

/// Epoch seconds as RFC 3339 UTC; None for NULL.
fn instant(model: &str, r: &Row, column: &str) -> Result<Option<String>, ReportError> {
    let value = r.get(column).unwrap_or(&Value::Null);
    let seconds = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().map(|f| f as i64)),
        _ => None,
    };
    let at = seconds.and_then(|s| chrono::DateTime::from_timestamp(s, 0));
    at.map(|t| Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .ok_or_else(|| bad(model, column, value, "epoch seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_slot_is_the_first_of_a_tie() {
        let s = |slot, tweets| Slot { slot, label: hour_label(slot), tweets };
        assert_eq!(busiest(&[s(3, 5), s(9, 7), s(14, 7)]), Some(s(9, 7)));
        assert_eq!(busiest(&[]), None);
        assert_eq!((weekday_label(1), weekday_label(7)), ("Monday".to_string(), "Sunday".to_string()));
    }

    #[test]
    fn numbers_arrive_as_numbers_or_decimal_text() {
        let row: Row = serde_json::from_str(r#"{"a": 3, "b": "42", "c": "0.6700", "d": null, "e": "x"}"#).unwrap();
        assert_eq!(
            (int("m", &row, "a").unwrap(), int("m", &row, "b").unwrap(), int("m", &row, "d").unwrap()),
            (3, 42, 0)
        );
        assert_eq!(float("m", &row, "c").unwrap(), 0.67);
        let err = int("marts.x", &row, "e").unwrap_err().to_string();
        assert_eq!(err, "marts.x: column `e` holds \"x\", not a whole number");
    }
}
