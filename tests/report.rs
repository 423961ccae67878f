//! `flixops report` on the local target through the binary: after `run --demo` every number on the
//! page (and in `--output json`) equals the same query on the DuckDB file's marts; the period
//! follows `--days`; empty marts give a page that says so; a missing warehouse or model is a usage
//! error with the fix; and headless Chromium renders the page offline without console errors and
//! with charts of non-zero size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::report_page::{self as page, Key, Page};
use crate::common::{fixture, flixops, output};
use serde_json::Value;

/// What a tagged value must be, from the test's own query on the marts.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    Int(i64),
    /// A share, shown as a percentage with one decimal.
    Share(f64),
    /// A decimal shown with one decimal.
    Dec(f64),
    Text(String),
    /// Hashtags: `#a #b` on the page, a list in JSON.
    Tags(Vec<String>),
    /// Epoch seconds, shown to the minute in UTC.
    Time(i64),
    /// No value (shown as "–", null in JSON).
    Nothing,
}

impl Want {
    fn matches_page(&self, shown: &str) -> bool {
        match self {
            Want::Int(n) => page::number(shown) == Some(*n as f64),
            Want::Share(f) => page::number(shown).is_some_and(|p| (p / 100.0 - f).abs() <= 0.0005),
            Want::Dec(f) => page::number(shown).is_some_and(|p| (p - f).abs() <= 0.05),
            Want::Text(t) => shown == t,
            Want::Tags(tags) => shown == tags.iter().map(|t| format!("#{t}")).collect::<Vec<_>>().join(" "),
            Want::Time(s) => shown == minute(*s),
            Want::Nothing => shown == "–",
        }
    }

    fn matches_json(&self, value: &Value) -> bool {
        match self {
            Want::Int(n) => value.as_i64() == Some(*n),
            Want::Share(f) => value.as_f64().is_some_and(|v| (v - f).abs() < 1e-9),
            Want::Dec(f) => value.as_f64().is_some_and(|v| (v - f).abs() < 0.05 + 1e-9),
            Want::Text(t) => value.as_str() == Some(t.as_str()),
            Want::Tags(tags) => value == &serde_json::json!(tags),
            Want::Time(s) => {
                value.as_str().and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok()).map(|t| t.timestamp())
                    == Some(*s)
            }
            Want::Nothing => value.is_null(),
        }
    }
}

fn minute(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).unwrap().format("%Y-%m-%d %H:%M UTC").to_string()
}

fn key(table: &str, row: impl ToString, name: &str) -> Key {
    (table.to_string(), row.to_string(), name.to_string())
}

/// The warehouse, read-only like the report, so both can have it open.
fn warehouse(dir: &Path) -> duckdb::Connection {
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).unwrap();
    duckdb::Connection::open_with_flags(dir.join(".flixops/warehouse.duckdb"), config).unwrap()
}

/// Every row of `sql`, each column as text (NULL as None).
fn rows(conn: &duckdb::Connection, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = stmt.query([]).unwrap();
    let n = rows.as_ref().unwrap().column_count();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        out.push((0..n).map(|i| row.get::<_, Option<String>>(i).unwrap()).collect());
    }
    out
}

fn int(v: &Option<String>) -> Want {
    v.as_deref().map_or(Want::Nothing, |s| Want::Int(s.parse().unwrap()))
}

fn text(v: &Option<String>) -> Want {
    Want::Text(v.clone().unwrap_or_default())
}

/// The report's numbers over the `days` days ending on the newest tweet's day, queried here
/// independently on the marts of the DuckDB file.
fn expected(conn: &duckdb::Connection, days: u32) -> BTreeMap<Key, Want> {
    let mut want = BTreeMap::new();
    let period = &rows(
        conn,
        &format!(
            "SELECT CAST(CAST(max(tweet_date) - INTERVAL ({}) DAY AS DATE) AS VARCHAR), CAST(max(tweet_date) AS VARCHAR) FROM marts.tweets_daily",
            days - 1
        ),
    )[0];
    let (first, last) = (period[0].clone().unwrap(), period[1].clone().unwrap());
    let within = format!("BETWEEN DATE '{first}' AND DATE '{last}'");
    want.insert(key("period", "period", "days"), Want::Int(days.into()));
    want.insert(key("period", "period", "first_day"), Want::Text(first.clone()));
    want.insert(key("period", "period", "last_day"), Want::Text(last.clone()));

    let totals = &rows(
        conn,
        &format!(
            "SELECT CAST(sum(tweet_count) AS VARCHAR), CAST(sum(retweet_count) AS VARCHAR), CAST(sum(retweet_count) / sum(tweet_count) AS VARCHAR) FROM marts.tweets_daily WHERE tweet_date {within}"
        ),
    )[0];
    let t = |name: &str, w: Want| (key("totals", "period", name), w);
    want.extend([
        t("tweets", int(&totals[0])),
        t("retweets", int(&totals[1])),
        t("retweet_share", Want::Share(round(totals[2].as_deref().unwrap().parse().unwrap(), 4))),
    ]);
    let users = &rows(
        conn,
        &format!(
            "SELECT CAST(count(DISTINCT user_id) AS VARCHAR) FROM marts.user_activity_daily WHERE tweet_date {within}"
        ),
    )[0];
    want.insert(key("totals", "period", "users"), int(&users[0]));
    let tags = &rows(
        conn,
        &format!(
            "SELECT CAST(sum(tweet_count) AS VARCHAR), CAST(count(DISTINCT hashtag) AS VARCHAR) FROM marts.hashtags_daily WHERE tweet_date {within}"
        ),
    )[0];
    want.insert(key("totals", "period", "hashtag_uses"), int(&tags[0]));
    want.insert(key("totals", "period", "hashtags"), int(&tags[1]));
    let multi = &rows(
        conn,
        &format!(
            "SELECT CAST(count(*) AS VARCHAR) FROM marts.multi_hashtag_tweets WHERE CAST(tweet_created_at AS DATE) {within}"
        ),
    )[0];
    want.insert(key("totals", "period", "multi_hashtag_tweets"), int(&multi[0]));

    for r in rows(
        conn,
        &format!(
            "SELECT CAST(tweet_date AS VARCHAR), CAST(tweet_count AS VARCHAR), CAST(retweet_count AS VARCHAR), CAST(retweet_share AS VARCHAR), CAST(user_count AS VARCHAR) FROM marts.tweets_daily WHERE tweet_date {within}"
        ),
    ) {
        let day = r[0].clone().unwrap();
        want.insert(key("daily", &day, "date"), Want::Text(day.clone()));
        want.insert(key("daily", &day, "tweets"), int(&r[1]));
        want.insert(key("daily", &day, "retweets"), int(&r[2]));
        want.insert(
            key("daily", &day, "retweet_share"),
            Want::Share(round(r[3].as_deref().unwrap().parse().unwrap(), 4)),
        );
        want.insert(key("daily", &day, "users"), int(&r[4]));
    }
    for r in rows(
        conn,
        &format!(
            "SELECT hashtag, CAST(sum(tweet_count) AS VARCHAR) AS n FROM marts.hashtags_daily WHERE tweet_date {within} GROUP BY hashtag ORDER BY sum(tweet_count) DESC, hashtag LIMIT 10"
        ),
    ) {
        let tag = r[0].clone().unwrap();
        want.insert(key("top_hashtags", &tag, "hashtag"), Want::Text(tag.clone()));
        want.insert(key("top_hashtags", &tag, "tweets"), int(&r[1]));
    }
    for r in rows(
        conn,
        &format!(
            "SELECT CAST(tweet_date AS VARCHAR), hashtag, CAST(tweet_count AS VARCHAR) FROM marts.hashtags_daily WHERE tweet_date {within} \
         QUALIFY row_number() OVER (PARTITION BY tweet_date ORDER BY tweet_count DESC, hashtag) <= 3"
        ),
    ) {
        let row = format!("{}/{}", r[0].as_deref().unwrap(), r[1].as_deref().unwrap());
        want.insert(key("hashtags_by_day", &row, "date"), text(&r[0]));
        want.insert(key("hashtags_by_day", &row, "hashtag"), text(&r[1]));
        want.insert(key("hashtags_by_day", &row, "tweets"), int(&r[2]));
    }
    for r in rows(
        conn,
        &format!(
            "SELECT a.user_id, any_value(u.user_username), CAST(sum(a.tweet_count) AS VARCHAR), CAST(any_value(u.user_followers_count) AS VARCHAR), \
         CAST(sum(a.text_length) / sum(a.tweet_count) AS VARCHAR) \
         FROM marts.user_activity_daily a LEFT JOIN marts.users_stats u USING (user_id) WHERE a.tweet_date {within} \
         GROUP BY a.user_id ORDER BY sum(a.tweet_count) DESC, a.user_id LIMIT 10"
        ),
    ) {
        let id = r[0].clone().unwrap();
        if r[1].is_some() {
            want.insert(key("top_users", &id, "username"), text(&r[1]));
        }
        want.insert(key("top_users", &id, "user_id"), Want::Text(id.clone()));
        want.insert(key("top_users", &id, "tweets"), int(&r[2]));
        want.insert(key("top_users", &id, "followers"), int(&r[3]));
        want.insert(key("top_users", &id, "avg_length"), Want::Dec(r[4].as_deref().unwrap().parse().unwrap()));
    }
    const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    for (table, column, label) in [
        ("hours", "tweet_hour", &(|s: i64| format!("{s:02}:00")) as &dyn Fn(i64) -> String),
        ("weekdays", "tweet_weekday", &|s: i64| WEEKDAYS[s as usize - 1].to_string()),
    ] {
        let slots = rows(
            conn,
            &format!(
                "SELECT CAST({column} AS VARCHAR), CAST(sum(tweet_count) AS VARCHAR) FROM marts.tweets_hourly WHERE tweet_date {within} GROUP BY {column} ORDER BY sum(tweet_count) DESC, {column}"
            ),
        );
        for (i, r) in slots.iter().enumerate() {
            let slot: i64 = r[0].as_deref().unwrap().parse().unwrap();
            want.insert(key(table, slot, "label"), Want::Text(label(slot)));
            want.insert(key(table, slot, "tweets"), int(&r[1]));
            if i == 0 {
                let which = if table == "hours" { "hour" } else { "weekday" };
                want.insert(key("busiest", which, "label"), Want::Text(label(slot)));
                want.insert(key("busiest", which, "tweets"), int(&r[1]));
            }
        }
    }
    for r in rows(
        conn,
        &format!(
            "SELECT m.tweet_id, u.user_username, m.user_id, CAST(CAST(epoch(m.tweet_created_at) AS BIGINT) AS VARCHAR), CAST(m.hashtag_count AS VARCHAR), \
         array_to_string(m.tweet_hashtags, '\x1f'), m.tweet_text \
         FROM marts.multi_hashtag_tweets m LEFT JOIN marts.users_stats u USING (user_id) WHERE CAST(m.tweet_created_at AS DATE) {within} \
         ORDER BY m.tweet_created_at DESC, m.tweet_id DESC LIMIT 10"
        ),
    ) {
        let id = r[0].clone().unwrap();
        match &r[1] {
            Some(name) => want.insert(key("multi_hashtag_tweets", &id, "username"), Want::Text(name.clone())),
            None => want.insert(key("multi_hashtag_tweets", &id, "user_id"), text(&r[2])),
        };
        want.insert(
            key("multi_hashtag_tweets", &id, "created_at"),
            Want::Time(r[3].as_deref().unwrap().parse().unwrap()),
        );
        want.insert(key("multi_hashtag_tweets", &id, "hashtag_count"), int(&r[4]));
        let tags = r[5].as_deref().unwrap().split('\x1f').map(str::to_string).collect();
        want.insert(key("multi_hashtag_tweets", &id, "hashtags"), Want::Tags(tags));
        want.insert(key("multi_hashtag_tweets", &id, "text"), text(&r[6]));
    }
    want.extend(coverage(conn));
    want
}

/// `marts.query_coverage`, over all time.
fn coverage(conn: &duckdb::Connection) -> BTreeMap<Key, Want> {
    let epoch = |c: &str| format!("CAST(CAST(epoch(CAST({c} AS TIMESTAMP)) AS BIGINT) AS VARCHAR)");
    let mut want = BTreeMap::new();
    for r in rows(
        conn,
        &format!(
            "SELECT query, CAST(tweet_count AS VARCHAR), {}, {}, {} FROM marts.query_coverage",
            epoch("first_tweet_at"),
            epoch("newest_tweet_at"),
            epoch("newest_loaded_at")
        ),
    ) {
        let query = r[0].clone().unwrap();
        want.insert(key("coverage", &query, "query"), Want::Text(query.clone()));
        want.insert(key("coverage", &query, "tweets"), int(&r[1]));
        for (i, name) in [(2, "first_tweet_at"), (3, "newest_tweet_at"), (4, "newest_load_at")] {
            want.insert(key("coverage", &query, name), Want::Time(r[i].as_deref().unwrap().parse().unwrap()));
        }
    }
    want
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// The JSON report's values under the keys the page tags them with.
fn json_cells(r: &Value) -> BTreeMap<Key, Value> {
    let mut out = BTreeMap::new();
    let mut put = |table: &str, row: &str, name: &str, v: &Value| out.insert(key(table, row, name), v.clone());
    let s = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
    if !r["period"].is_null() {
        put("period", "period", "days", &r["days"]);
        put("period", "period", "first_day", &r["period"]["first_day"]);
        put("period", "period", "last_day", &r["period"]["last_day"]);
        for (name, v) in r["totals"].as_object().unwrap() {
            put("totals", "period", name, v);
        }
    }
    for (which, field) in [("hour", "busiest_hour"), ("weekday", "busiest_weekday")] {
        if !r[field].is_null() {
            put("busiest", which, "label", &r[field]["label"]);
            put("busiest", which, "tweets", &r[field]["tweets"]);
        }
    }
    for d in r["daily"].as_array().unwrap() {
        for name in ["tweets", "retweets", "retweet_share", "users"] {
            put("daily", &s(&d["date"]), name, &d[name]);
        }
        put("daily", &s(&d["date"]), "date", &d["date"]);
    }
    for h in r["top_hashtags"].as_array().unwrap() {
        put("top_hashtags", &s(&h["hashtag"]), "hashtag", &h["hashtag"]);
        put("top_hashtags", &s(&h["hashtag"]), "tweets", &h["tweets"]);
    }
    for d in r["hashtags_by_day"].as_array().unwrap() {
        for h in d["hashtags"].as_array().unwrap() {
            let row = format!("{}/{}", s(&d["date"]), s(&h["hashtag"]));
            put("hashtags_by_day", &row, "date", &d["date"]);
            put("hashtags_by_day", &row, "hashtag", &h["hashtag"]);
            put("hashtags_by_day", &row, "tweets", &h["tweets"]);
        }
    }
    for u in r["top_users"].as_array().unwrap() {
        let id = s(&u["user_id"]);
        if !u["username"].is_null() {
            put("top_users", &id, "username", &u["username"]);
        }
        for name in ["user_id", "tweets", "followers", "avg_length"] {
            put("top_users", &id, name, &u[name]);
        }
    }
    for table in ["hours", "weekdays"] {
        for slot in r[table].as_array().unwrap() {
            put(table, &s(&slot["slot"]), "label", &slot["label"]);
            put(table, &s(&slot["slot"]), "tweets", &slot["tweets"]);
        }
    }
    for t in r["multi_hashtag_tweets"].as_array().unwrap() {
        let id = s(&t["tweet_id"]);
        let who = if t["username"].is_null() { "user_id" } else { "username" };
        put("multi_hashtag_tweets", &id, who, &t[who]);
        for name in ["created_at", "hashtag_count", "hashtags", "text"] {
            put("multi_hashtag_tweets", &id, name, &t[name]);
        }
    }
    for c in r["coverage"].as_array().unwrap() {
        let query = s(&c["query"]);
        for name in ["query", "tweets", "first_tweet_at", "newest_tweet_at"] {
            put("coverage", &query, name, &c[name]);
        }
        put("coverage", &query, "newest_load_at", &c["newest_load_at"]);
    }
    out
}

/// Asserts the page shows exactly `want` (besides the report's own metadata), each value as expected,
/// and no number the test does not check.
fn assert_page(page: &Page, want: &BTreeMap<Key, Want>) {
    assert!(
        page.loose_digits.is_empty(),
        "numbers on the page that come from no tagged value: {:?}",
        page.loose_digits
    );
    let shown: BTreeMap<&Key, &String> = page.cells.iter().filter(|(k, _)| k.0 != "meta").collect();
    let missing: Vec<_> = want.keys().filter(|k| !shown.contains_key(k)).collect();
    let extra: Vec<_> = shown.keys().filter(|k| !want.contains_key(**k)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "not on the page: {missing:?}\nnot expected: {extra:?}");
    for (k, w) in want {
        assert!(w.matches_page(&page.cells[k]), "{k:?}: the page shows {:?}, the marts say {w:?}", page.cells[k]);
    }
}

fn assert_json(report: &Value, want: &BTreeMap<Key, Want>) {
    let cells = json_cells(report);
    let missing: Vec<_> = want.keys().filter(|k| !cells.contains_key(*k)).collect();
    let extra: Vec<_> = cells.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "not in the JSON: {missing:?}\nnot expected: {extra:?}");
    for (k, w) in want {
        assert!(w.matches_json(&cells[k]), "{k:?}: the JSON has {}, the marts say {w:?}", cells[k]);
    }
}

fn demo(dir: &Path) -> PathBuf {
    let (code, stdout, stderr) = output(flixops(dir).args(["run", "--demo", "--output", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let run: Value = serde_json::from_str(&stdout).unwrap();
    PathBuf::from(run["report"].as_str().expect("run --demo reports the page it wrote"))
}

#[test]
fn the_demo_report_shows_exactly_the_numbers_of_the_marts() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo(dir.path());
    assert_eq!(path, dir.path().join(".flixops/report.html"), "beside the warehouse");
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--demo"]));
    assert_eq!(code, 0);
    assert!(stderr.contains(&format!("report     {}", path.display())), "the human output names the page: {stderr}");

    let html = std::fs::read_to_string(&path).unwrap();
    let page = page::parse(&html);
    let conn = warehouse(dir.path());
    let want = expected(&conn, 30);
    assert_page(&page, &want);
    assert_eq!(page.cells[&key("meta", "report", "target")], "local");
    assert_eq!(page.charts, 4, "tweets per day, top hashtags, hours, weekdays");
    // The recording: 100 tweets on one UTC day, 67 of them retweets.
    assert_eq!(want[&key("totals", "period", "tweets")], Want::Int(100));
    assert_eq!(page.cells[&key("totals", "period", "retweet_share")], "67.0%");
    for forbidden in ["<script", "<link", "<img", "<iframe", "<object", " src=", " href=", "@import"] {
        assert!(!html.contains(forbidden), "the page is self-contained, yet holds {forbidden}");
    }

    // --output json prints the same numbers, and writes the page where --out says.
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["report", "-o", "json", "--out", "again.html"]));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_json(&report, &want);
    assert_eq!(report["path"], "again.html");
    assert_page(&page::parse(&std::fs::read_to_string(dir.path().join("again.html")).unwrap()), &want);
}

#[test]
fn the_period_follows_days_and_ends_on_the_newest_tweet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    demo(dir.path());
    // One tweet on 2021-05-18, 127 days before the demo's 2021-09-22.
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--replay"]).arg(fixture("two_tweets.jsonl")));
    assert_eq!(code, 0, "{stderr}");
    let conn = warehouse(dir.path());
    for days in [30, 200] {
        let out = format!("r{days}.html");
        let (code, stdout, stderr) =
            output(flixops(dir.path()).args(["report", "-o", "json", "--days", &days.to_string(), "--out", &out]));
        assert_eq!(code, 0, "{stderr}");
        let want = expected(&conn, days);
        assert_json(&serde_json::from_str(&stdout).unwrap(), &want);
        assert_page(&page::parse(&std::fs::read_to_string(dir.path().join(&out)).unwrap()), &want);
        let tweets = if days == 30 { 100 } else { 101 };
        assert_eq!(want[&key("totals", "period", "tweets")], Want::Int(tweets), "{days} days");
    }
    let (code, _, stderr) = output(flixops(dir.path()).args(["report", "--days", "0"]));
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn empty_marts_give_a_page_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).arg("transform"));
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["report", "-o", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["period"].is_null() && report["daily"] == serde_json::json!([]), "{report:#}");
    let page = page::parse(&std::fs::read_to_string(dir.path().join("report.html")).unwrap());
    assert!(page.empty, "the page says the marts are empty");
    assert_eq!(page.charts, 0);
    assert!(page.cells.keys().all(|k| k.0 == "meta"), "no numbers: {:?}", page.cells);
    let (code, _, stderr) = output(flixops(dir.path()).arg("report"));
    assert_eq!(code, 0);
    assert!(stderr.contains("hold no tweet yet"), "{stderr}");
}

#[test]
fn a_missing_warehouse_or_model_is_a_usage_error_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"demo\"\n[env.dev]\ntarget = \"local\"\n")
        .unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).arg("report"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no warehouse at") && stderr.contains("run `flixops run`"), "{stderr}");
    assert!(!dir.path().join(".flixops/warehouse.duckdb").exists(), "the report created no warehouse");

    // A project with its own models/ from before the report's models existed.
    for (path, text) in flixops::models::DEFAULT_MODELS.iter().filter(|(p, _)| !p.contains("tweets_hourly")) {
        let target = dir.path().join("models").join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
    let (code, _, stderr) = output(flixops(dir.path()).args(["run", "--demo"]));
    assert_eq!(code, 0, "the run itself succeeds: {stderr}");
    assert!(stderr.contains("report was not written") && stderr.contains("marts.tweets_hourly"), "{stderr}");
    let (code, _, stderr) = output(flixops(dir.path()).arg("report"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("marts.tweets_hourly does not exist")
            && stderr.contains("flixops transform")
            && stderr.contains("models/marts/tweets_hourly.sql"),
        "{stderr}"
    );
}

#[test]
fn open_hands_the_page_to_the_desktop_browser() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let opener = bin.join("xdg-open");
    std::fs::write(&opener, format!("#!/bin/sh\necho \"$1\" > {}\n", dir.path().join("opened").display())).unwrap();
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (code, _, stderr) = output(flixops(dir.path()).args(["report", "--open"]).env("PATH", &bin));
    assert_eq!(code, 0, "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.path().join("opened").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let opened = std::fs::read_to_string(dir.path().join("opened")).unwrap();
    assert_eq!(opened.trim(), "report.html");
}

/// Chromium from Debian's package (scripts/test.sh installs it), or $FLIXOPS_CHROMIUM.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FLIXOPS_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `page` with the network off (every host unresolvable, a proxy that
/// refuses), returning (stdout, stderr); killed after 60 s. Its output goes to files: it writes
/// more than a pipe holds while the test waits.
fn headless(chromium: &Path, profile: &Path, page: &Path, extra: &[&str]) -> (String, String) {
    let (out_path, err_path) = (profile.with_extension("stdout"), profile.with_extension("stderr"));
    let mut child = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args([
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
        ])
        .args(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--window-size=1280,2400"])
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    (read(&out_path), read(&err_path))
}

/// What the page printed to the console (Chromium logs each message as `…:CONSOLE…] "…"`).
fn console(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// A copy of `page` with a check that writes, once loaded, each SVG's rendered size and every
/// resource the page requested into `<body data-check>`, for `--dump-dom`.
fn with_check(page: &Path, copy: &Path) {
    const CHECK: &str = "<script>window.addEventListener('load',()=>{const svgs=[...document.querySelectorAll('svg')]\
        .map(e=>{const r=e.getBoundingClientRect();return [r.width,r.height]});document.body.setAttribute('data-check',\
        JSON.stringify({svgs,resources:performance.getEntriesByType('resource').map(e=>e.name)}));});</script>";
    let html = std::fs::read_to_string(page).unwrap();
    // The page's own policy forbids scripts; the harness copy drops it to run its check.
    let html = html.replace("<meta http-equiv=\"Content-Security-Policy\"", "<meta name=\"csp-removed-for-the-check\"");
    std::fs::write(copy, html.replace("</body>", &format!("{CHECK}</body>"))).unwrap();
}

fn checked(dom: &str) -> Value {
    let start = dom.find("data-check=\"").expect("the check ran and wrote its result") + 12;
    let raw = &dom[start..start + dom[start..].find('"').unwrap()];
    serde_json::from_str(&raw.replace("&quot;", "\"").replace("&amp;", "&")).unwrap()
}

#[test]
fn chromium_renders_the_page_offline_without_console_errors_and_with_sized_charts() {
    let Some(chromium) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium (scripts/test.sh does)");
        eprintln!("\n*** SKIPPED: no chromium on this machine; scripts/test.sh installs Debian's `chromium` ***\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = demo(dir.path());
    let profile = dir.path().join("profile");

    // The real page: a screenshot, and nothing on the console.
    let shot = dir.path().join("report.png");
    let (_, stderr) = headless(&chromium, &profile, &page, &[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}); chromium said:\n{stderr}"));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (width, height) =
        (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((width, height), (1280, 2400), "the screenshot is the window");
    assert_eq!(console(&stderr), Vec::<&str>::new(), "console output of the report");

    // The harness copy: every chart has a size, and nothing was requested.
    let copy = dir.path().join(".flixops/report-check.html");
    with_check(&page, &copy);
    let (dom, stderr) = headless(&chromium, &profile, &copy, &["--dump-dom"]);
    let check = checked(&dom);
    let svgs = check["svgs"].as_array().unwrap();
    assert_eq!(svgs.len(), 4, "{check}");
    for size in svgs {
        assert!(
            size[0].as_f64().unwrap() > 100.0 && size[1].as_f64().unwrap() > 50.0,
            "a chart drawn too small: {check}"
        );
    }
    assert_eq!(check["resources"], serde_json::json!([]), "the page requested nothing");
    assert_eq!(console(&stderr), Vec::<&str>::new());

    // The same checks catch a page that fetches and throws.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><img src=\"https://example.com/x.png\"/><svg width=\"0\" height=\"0\"></svg>\
        <script>throw new Error('boom')</script></body></html>",
    )
    .unwrap();
    let (_, stderr) = headless(&chromium, &profile, &bad, &[]);
    assert!(console(&stderr).iter().any(|l| l.contains("Uncaught Error: boom")), "{stderr}");
    let bad_copy = dir.path().join("bad-check.html");
    with_check(&bad, &bad_copy);
    let check = checked(&headless(&chromium, &profile, &bad_copy, &["--dump-dom"]).0);
    assert_eq!(check["resources"], serde_json::json!(["https://example.com/x.png"]));
    assert_eq!(check["svgs"], serde_json::json!([[0, 0]]));
}
