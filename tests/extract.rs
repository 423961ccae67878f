//! The extractor against a local X API mock serving the real recordings, plus synthetic failures.

use crate::common;
use std::path::Path;
use std::time::Duration;

use crate::common::{fixture, page, parquet_files, read_batches, strings};
use flixops::config::{Config, Secret};
use flixops::extract::api::XClient;
use flixops::extract::checkpoint::{self, Checkpoint};
use flixops::extract::lease;
use flixops::extract::replay::Replay;
use flixops::extract::sink::{Sink, Stored};
use flixops::extract::{self, ExtractError, Job, Report, Source};
use serde_json::Value;
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SEARCH: &str = "/2/tweets/search/recent";

fn config_text(base: &str) -> String {
    format!(
        "[project]\nname = \"t\"\n[extract]\napi_base_url = \"{base}\"\nbearer_token = {{ env = \"FLIXOPS_TEST_TOKEN\" }}\n\
         time_budget_secs = 20\n[extract.retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 40\n[env.dev]\ntarget = \"local\"\n"
    )
}

fn client(server: &MockServer) -> Source {
    let config = Config::parse(&config_text(&server.uri()), Path::new("/tmp/flixops.toml")).unwrap();
    Source::Api(XClient::new(&config.extract, Secret::new("test-token".into())).unwrap())
}

fn job() -> Job {
    Job {
        query: "flixbus".into(),
        prefix: "p".into(),
        max_pages: None,
        time_budget: Duration::from_secs(20),
        page_size: 100,
        max_posts_per_run: None,
        max_posts_per_month: None,
    }
}

async fn run(server: &MockServer, sink: &Sink) -> Result<Report, ExtractError> {
    extract::run(&job(), &mut client(server), sink).await
}

fn next_token(name: &str) -> String {
    let v: Value = serde_json::from_str(&page(name)).unwrap();
    v["meta"]["next_token"].as_str().unwrap().to_string()
}

/// Serves brexit (with its next_token) then two_tweets (last page); checks the contract's query.
async fn two_page_api() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SEARCH))
        .and(query_param_is_missing("next_token"))
        .and(header("authorization", "Bearer test-token"))
        .and(query_param("query", "flixbus"))
        .and(query_param("max_results", "100"))
        .and(query_param("expansions", "author_id,referenced_tweets.id"))
        .and(query_param(
            "tweet.fields",
            "created_at,author_id,entities,referenced_tweets,lang,public_metrics,note_tweet",
        ))
        .and(query_param("user.fields", "location,public_metrics,username"))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("brexit.jsonl")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SEARCH))
        .and(query_param("next_token", next_token("brexit.jsonl")))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("two_tweets.jsonl")))
        .mount(&server)
        .await;
    server
}

fn lake_batches(dir: &Path) -> Vec<arrow::array::RecordBatch> {
    parquet_files(dir).into_iter().flat_map(|f| read_batches(std::fs::read(f).unwrap())).collect()
}

async fn stored_checkpoint(sink: &Sink) -> Option<Checkpoint> {
    checkpoint::read(sink, "p/_state/extract.json").await.unwrap().map(|(c, _)| c)
}

#[tokio::test]
async fn every_page_becomes_one_file_with_the_contract_columns() {
    let server = two_page_api().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let report = run(&server, &sink).await.unwrap();
    assert_eq!((report.pages, report.tweets), (2, 101));

    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 2);
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let name = files[0].strip_prefix(dir.path()).unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("p/tweets/dt={date}/{}-0001", report.run_id)), "{name}");

    let batches = lake_batches(dir.path());
    let columns: Vec<_> = batches[0].schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(
        columns,
        [
            "tweet_id",
            "tweet_created_at",
            "tweet_text",
            "tweet_lang",
            "is_retweet",
            "is_reply",
            "is_quote",
            "replied_to_id",
            "quoted_id",
            "retweeted_id",
            "tweet_hashtags",
            "retweet_count",
            "reply_count",
            "like_count",
            "quote_count",
            "user_id",
            "user_username",
            "user_location",
            "user_followers_count",
            "query",
            "extracted_at",
        ]
    );

    // Independent computation from the recording.
    let brexit: Value = serde_json::from_str(&page("brexit.jsonl")).unwrap();
    let tweets = brexit["data"].as_array().unwrap();
    let users = brexit["includes"]["users"].as_array().unwrap();
    let retweets = tweets
        .iter()
        .filter(|t| t["referenced_tweets"].as_array().is_some_and(|r| r.iter().any(|r| r["type"] == "retweeted")))
        .count();
    assert_eq!(retweets, 67);
    assert_eq!(users.iter().filter(|u| u.get("location").is_none()).count(), 45);
    let no_location = tweets
        .iter()
        .filter(|t| users.iter().find(|u| u["id"] == t["author_id"]).is_none_or(|u| u.get("location").is_none()))
        .count();

    let first = &batches[0];
    use arrow::array::{Array, AsArray};
    let is_retweet = first.column_by_name("is_retweet").unwrap().as_boolean();
    assert_eq!(is_retweet.true_count(), 67);
    assert_eq!(first.column_by_name("user_location").unwrap().null_count(), no_location);
    let ids = strings(&batches[..1], "tweet_id");
    let expected_ids: Vec<_> = tweets.iter().map(|t| t["id"].as_str().map(str::to_string)).collect();
    assert_eq!(ids, expected_ids);
    let tags = strings(&batches[1..], "query");
    assert_eq!(tags, [Some("flixbus".to_string())]);
    let hashtags = batches[1].column_by_name("tweet_hashtags").unwrap().as_list::<i32>().value(0);
    assert_eq!(hashtags.as_string::<i32>().value(0), "POIUYTREWQ", "tags come without #");

    let cp = stored_checkpoint(&sink).await.unwrap();
    assert_eq!(cp.since_id.as_deref(), Some("1440716895355764743"), "the newest id of the run");
    let last = cp.last_run.unwrap();
    assert_eq!((last.pages, last.tweets, last.posts, last.partial), (2, 101, 101, None));
    assert_eq!(cp.window, None, "the window is finished");

    use parquet::file::reader::{FileReader, SerializedFileReader};
    for file in files {
        let reader = SerializedFileReader::new(bytes::Bytes::from(std::fs::read(&file).unwrap())).unwrap();
        let metadata = reader.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
        let version = metadata.iter().find(|kv| kv.key == "flixops.schema_version").and_then(|kv| kv.value.clone());
        assert_eq!(version.as_deref(), Some("2"), "{} names its contract version", file.display());
    }
}

/// Replays one recorded page into a directory and returns the rows stored, and the run's report.
async fn replayed(name: &str) -> (Vec<arrow::array::RecordBatch>, Report) {
    let dir = tempfile::tempdir().unwrap();
    let mut source = Source::Replay(Replay::open(&fixture(name)).unwrap());
    let report = extract::run(&job(), &mut source, &Sink::Dir(dir.path().to_path_buf())).await.unwrap();
    (lake_batches(dir.path()), report)
}

#[tokio::test]
async fn a_retweet_stores_its_originals_whole_text_and_hashtags_unescaped() {
    let (batches, _) = replayed("brexit.jsonl").await;
    let recorded: Value = serde_json::from_str(&page("brexit.jsonl")).unwrap();
    let tweets = recorded["data"].as_array().unwrap();
    let expected: Vec<(String, Vec<String>)> = tweets.iter().map(|t| common::contract_text(&recorded, t)).collect();
    // The recording shows the defects: cut-off `RT @…` texts, fewer hashtags, escaped `&amp;`.
    let recorded_tags: usize = tweets.iter().map(|t| t["entities"]["hashtags"].as_array().map_or(0, Vec::len)).sum();
    let stored_tags: usize = expected.iter().map(|(_, tags)| tags.len()).sum();
    assert!(stored_tags > recorded_tags, "originals carry the hashtags the cut-off retweets lost");

    let texts: Vec<String> = strings(&batches, "tweet_text").into_iter().map(Option::unwrap).collect();
    assert_eq!(texts, expected.iter().map(|(text, _)| text.clone()).collect::<Vec<_>>());
    assert_eq!(common::hashtags(&batches), expected.iter().map(|(_, tags)| tags.clone()).collect::<Vec<_>>());
    assert!(texts.iter().all(|t| !t.starts_with("RT @") && !t.contains("&amp;")), "no `RT @` prefix, no `&amp;`");
    let retweeted: Vec<Option<String>> = tweets
        .iter()
        .map(|t| {
            let refs = t["referenced_tweets"].as_array();
            let r = refs.and_then(|refs| refs.iter().find(|r| r["type"] == "retweeted"));
            r.map(|r| r["id"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(strings(&batches, "retweeted_id"), retweeted);
    let authors: Vec<_> = tweets.iter().map(|t| t["author_id"].as_str().map(str::to_string)).collect();
    assert_eq!(strings(&batches, "user_id"), authors, "a retweet's author is the retweeter");
}

#[tokio::test]
async fn long_posts_store_their_note_tweet_and_a_reply_that_quotes_keeps_both_ids() {
    let (batches, report) = replayed("note_tweet.jsonl").await;
    let recorded: Value = serde_json::from_str(&page("note_tweet.jsonl")).unwrap();
    let tweets = recorded["data"].as_array().unwrap();
    let by_id = |id: &str| tweets.iter().position(|t| t["id"] == id).unwrap();
    let texts = strings(&batches, "tweet_text");
    let tags = common::hashtags(&batches);
    for (i, tweet) in tweets.iter().enumerate() {
        let (text, hashtags) = common::contract_text(&recorded, tweet);
        assert_eq!((texts[i].as_deref(), &tags[i]), (Some(text.as_str()), &hashtags), "tweet {}", tweet["id"]);
    }

    let long = by_id("1900000000000000004");
    let whole = tweets[long]["note_tweet"]["text"].as_str().unwrap();
    assert!(whole.chars().count() > 280 && texts[long].as_ref().unwrap().chars().count() > 280);
    assert!(texts[long].as_ref().unwrap().contains("the code for < is &lt; (yes"), "`&amp;lt;` is decoded once");
    assert_eq!(tags[long], ["FlixBus", "Berlin", "Munich", "nightbus"], "hashtags past the cut are kept");

    let retweet = by_id("1900000000000000003");
    let original = &recorded["includes"]["tweets"][0];
    assert_eq!(tweets[retweet]["referenced_tweets"][0]["id"], original["id"]);
    assert!(texts[retweet].as_ref().unwrap().ends_with("Full spreadsheet in the replies. #travel #budgettravel"));
    assert_eq!(
        strings(&batches, "user_id")[retweet].as_deref(),
        Some("502"),
        "the retweeter, not the original's author"
    );

    let reply = by_id("1900000000000000002");
    let refs = &tweets[reply]["referenced_tweets"];
    assert_eq!(refs[0]["type"], "quoted", "the API lists the quote first");
    assert_eq!(strings(&batches, "quoted_id")[reply].as_deref(), refs[0]["id"].as_str());
    assert_eq!(strings(&batches, "replied_to_id")[reply].as_deref(), refs[1]["id"].as_str());
    assert_eq!(strings(&batches, "retweeted_id")[reply], None);
    use arrow::array::AsArray;
    let flag = |column: &str| batches[0].column_by_name(column).unwrap().as_boolean().value(reply);
    assert!(flag("is_reply") && flag("is_quote") && !flag("is_retweet"));

    let orphan = by_id("1900000000000000001");
    assert_eq!(
        texts[orphan].as_deref(),
        Some("RT @deleted_user: #Gone before it could be expanded & now the original is missing…"),
        "a retweet whose original is missing keeps its own text"
    );
    assert_eq!(tags[orphan], ["Gone"]);
    assert!(report.warnings.iter().any(|w| w.contains("Could not find tweet")), "{:?}", report.warnings);
}

#[test]
fn a_tweet_the_contract_cannot_hold_is_rejected_and_the_rest_of_its_page_kept() {
    use flixops::extract::tweet::{Page, Rejected};
    let mut recorded: Value = serde_json::from_str(&page("brexit.jsonl")).unwrap();
    let tweets = recorded["data"].as_array_mut().unwrap();
    tweets[3].as_object_mut().unwrap().remove("created_at");
    tweets[10].as_object_mut().unwrap().remove("author_id");
    tweets[42]["created_at"] = "22/09/2021".into();
    let bad = [3, 10, 42].map(|i| tweets[i]["id"].as_str().unwrap().to_string());
    let kept: Vec<Option<String>> =
        tweets.iter().map(|t| t["id"].as_str().unwrap().to_string()).filter(|id| !bad.contains(id)).map(Some).collect();
    let body = serde_json::to_vec(&recorded).unwrap();
    let page: Page = sonic_rs::from_slice(&body).unwrap();
    let (batch, rejected) = page.to_batch("q", 0);
    assert_eq!(strings(std::slice::from_ref(&batch), "tweet_id"), kept);
    let [a, b, c] = bad;
    let expected = [
        Rejected {
            index: 3,
            reason: format!("tweet {a} has no `created_at`; request tweet.fields=created_at"),
            tweet_id: a,
            missing: Some("created_at"),
        },
        Rejected {
            index: 10,
            reason: format!("tweet {b} has no `author_id`; request tweet.fields=author_id"),
            tweet_id: b,
            missing: Some("author_id"),
        },
        Rejected {
            index: 42,
            reason: format!("tweet {c}: created_at `22/09/2021` is not an RFC 3339 timestamp"),
            tweet_id: c,
            missing: None,
        },
    ];
    assert_eq!(rejected, expected);
}

#[tokio::test]
async fn the_next_run_asks_only_for_newer_tweets_and_an_empty_answer_moves_nothing() {
    let server = two_page_api().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let first = run(&server, &sink).await.unwrap();

    server.reset().await;
    Mock::given(method("GET"))
        .and(path(SEARCH))
        .and(query_param("since_id", "1440716895355764743"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"meta":{"result_count":0}}"#))
        .expect(1)
        .mount(&server)
        .await;
    let report = run(&server, &sink).await.unwrap();
    assert_eq!(report.pages, 0);
    assert_eq!(parquet_files(dir.path()).len(), 2, "an empty result writes no file");
    let state = stored_checkpoint(&sink).await.unwrap();
    assert_eq!(state.since_id.as_deref(), Some("1440716895355764743"), "since_id unchanged");
    let last = state.last_run.unwrap();
    assert_ne!(last.run_id, first.run_id, "the run is recorded: it ran and found nothing new");
    assert_eq!((last.tweets, last.posts), (0, 0));
}

#[tokio::test]
async fn a_checkpoint_older_than_the_search_window_falls_back_to_the_whole_window() {
    let server = MockServer::start().await;
    let too_old = r#"{"errors":[{"parameters":{"since_id":["1"]},"message":"Invalid 'since_id':'1'. 'since_id' must be a tweet id created after 2026-11-17T00:00Z. Please use a 'since_id' that is larger than 1990271234567890432"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}"#;
    Mock::given(query_param("since_id", "1"))
        .respond_with(ResponseTemplate::new(400).set_body_string(too_old))
        .mount(&server)
        .await;
    Mock::given(query_param_is_missing("since_id"))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("two_tweets.jsonl")))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let old = Checkpoint { since_id: Some("1".into()), ..Checkpoint::empty("flixbus") };
    checkpoint::write(&sink, "p/_state/extract.json", &old, None).await.unwrap();
    let report = run(&server, &sink).await.unwrap();
    assert_eq!(report.tweets, 1);
    assert!(report.warnings.iter().any(|w| w.contains("older than the 7-day search window")), "{:?}", report.warnings);
    assert_eq!(stored_checkpoint(&sink).await.unwrap().since_id.as_deref(), Some("1394735776701816833"));
}

#[tokio::test]
async fn partial_errors_on_a_200_are_warnings_and_rows_are_kept() {
    let mut body: Value = serde_json::from_str(&page("two_tweets.jsonl")).unwrap();
    body["errors"] = serde_json::json!([{"detail": "Could not find user with ids: [42].", "title": "Not Found Error", "resource_type": "user"}]);
    let server = MockServer::start().await;
    Mock::given(path(SEARCH)).respond_with(ResponseTemplate::new(200).set_body_json(body)).mount(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let report = run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap();
    assert_eq!(report.tweets, 1);
    assert!(report.warnings.iter().any(|w| w.contains("Could not find user with ids: [42].")), "{:?}", report.warnings);
}

#[tokio::test]
async fn server_errors_and_truncated_bodies_are_retried() {
    let server = MockServer::start().await;
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let full = page("two_tweets.jsonl");
    let truncated = full[..full.len() / 2].to_string();
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(200).set_body_string(truncated))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(200).set_body_string(full))
        .with_priority(3)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let report = run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap();
    assert_eq!(report.tweets, 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 3, "503, truncated, then the page");
}

#[tokio::test]
async fn persistent_server_errors_stop_after_the_bounded_attempts() {
    let server = MockServer::start().await;
    Mock::given(path(SEARCH)).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap_err();
    assert!(err.to_string().contains("failed 3 times in a row"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let state = stored_checkpoint(&Sink::Dir(dir.path().to_path_buf())).await.unwrap();
    assert_eq!(state.since_id, None, "nothing stored, nothing moved");
    let failed = state.last_run.unwrap().partial.unwrap();
    assert!(
        failed.starts_with("stopped by an error: the X API failed 3 times"),
        "doctor sees the failed run: {failed}"
    );
}

#[tokio::test]
async fn a_rate_limit_that_resets_within_the_budget_is_waited_out() {
    let server = MockServer::start().await;
    let reset = (chrono::Utc::now().timestamp() + 1).to_string();
    let limited = ResponseTemplate::new(429)
        .insert_header("x-rate-limit-reset", reset.as_str())
        .set_body_string(r#"{"title":"Too Many Requests"}"#);
    Mock::given(path(SEARCH)).respond_with(limited).up_to_n_times(1).with_priority(1).mount(&server).await;
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("two_tweets.jsonl")))
        .with_priority(2)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let report = run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap();
    assert_eq!(report.tweets, 1);
}

#[tokio::test]
async fn a_rate_limit_beyond_the_budget_is_a_partial_run_that_the_next_one_resumes() {
    let server = MockServer::start().await;
    Mock::given(query_param_is_missing("next_token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("brexit.jsonl")))
        .mount(&server)
        .await;
    let reset = (chrono::Utc::now().timestamp() + 3600).to_string();
    Mock::given(query_param("next_token", next_token("brexit.jsonl")))
        .respond_with(ResponseTemplate::new(429).insert_header("x-rate-limit-reset", reset.as_str()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let report = run(&server, &sink).await.unwrap();
    assert_eq!(report.status, extract::Status::Partial);
    assert!(report.partial.as_deref().is_some_and(|p| p.starts_with("rate limited by the X API until")), "{report:?}");
    assert_eq!(parquet_files(dir.path()).len(), 1, "the fetched page is stored");
    let state = stored_checkpoint(&sink).await.unwrap();
    let brexit: Value = serde_json::from_str(&page("brexit.jsonl")).unwrap();
    let window = state.window.expect("the window stays open");
    assert_eq!(Some(window.until_id.as_str()), brexit["meta"]["oldest_id"].as_str(), "resumes below the page");
    assert_eq!(Some(window.newest_id.as_str()), brexit["meta"]["newest_id"].as_str());
    assert_eq!(state.since_id, None, "since_id does not move past tweets that are not stored");
}

#[tokio::test]
async fn unauthorized_fails_fast_with_the_problem_detail() {
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("search_all_401.json")).unwrap()).unwrap();
    let server = MockServer::start().await;
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(401).set_body_json(&recorded["body"]))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap_err();
    assert!(
        err.to_string().contains("refused the request (401 Unauthorized): Unauthorized; the bearer token is wrong"),
        "{err}"
    );
    assert!(err.is_connect(), "credentials problems exit 3");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "no retry on 401");
    assert!(!err.to_string().contains("test-token"), "the token never appears in messages");
}

#[tokio::test]
async fn a_bad_request_fails_fast_with_the_api_message() {
    let recorded: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("search_all_400.json")).unwrap()).unwrap();
    let server = MockServer::start().await;
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(400).set_body_json(&recorded["body"]))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap_err();
    assert!(err.to_string().contains("'start_time' must be before 'end_time'"), "{err}");
    assert!(!err.is_connect());
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_page_without_the_contract_fields_is_refused_by_name() {
    let server = MockServer::start().await;
    let minimal = r#"{"data":[{"edit_history_tweet_ids":["1"],"id":"1","text":"hi"}],"meta":{"result_count":1}}"#;
    Mock::given(path(SEARCH)).respond_with(ResponseTemplate::new(200).set_body_string(minimal)).mount(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap_err();
    assert!(err.to_string().contains("page 1: tweet 1 has no `created_at`; request tweet.fields=created_at"), "{err}");
}

#[tokio::test]
async fn replay_reads_jsonl_json_and_directories_ignoring_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("rec");
    std::fs::create_dir(&recording).unwrap();
    std::fs::write(recording.join("a.jsonl"), format!("{}\n\n{}\n", page("brexit.jsonl"), page("two_tweets.jsonl")))
        .unwrap();
    std::fs::write(recording.join("b.json"), page("mentions_tweet.jsonl")).unwrap();
    let lake = dir.path().join("lake");
    let mut source = Source::Replay(Replay::open(&recording).unwrap());
    let report = extract::run(&job(), &mut source, &Sink::Dir(lake.clone())).await.unwrap();
    assert_eq!((report.pages, report.tweets), (3, 102));
    assert!(!lake.join("p/_state/extract.json").exists(), "replay never touches the checkpoint");

    std::fs::write(recording.join("c.jsonl"), "{\"data\": [\n").unwrap();
    let mut source = Source::Replay(Replay::open(&recording).unwrap());
    let err = extract::run(&job(), &mut source, &Sink::Dir(lake)).await.unwrap_err();
    assert!(err.to_string().contains("c.jsonl:1: not an X API search page"), "{err}");
}

/// A JSONL recording of `pages` copies of the `two_tweets` page (one tweet in `data`), the `bad`-th line not JSON.
fn recording(dir: &Path, pages: u32, bad: Option<u32>) -> std::path::PathBuf {
    let lines: Vec<String> = (1..=pages)
        .map(|n| if Some(n) == bad { "{\"data\": [".to_string() } else { page("two_tweets.jsonl") })
        .collect();
    let path = dir.join(format!("rec-{pages}-{bad:?}.jsonl"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[tokio::test]
async fn replay_workers_report_every_page_in_order_and_stop_at_the_first_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().join("lake"));
    let mut source = Source::Replay(Replay::open(&recording(dir.path(), 40, None)).unwrap());
    let report = extract::run(&job(), &mut source, &sink).await.unwrap();
    assert_eq!((report.pages, report.tweets), (40, 40));
    let numbers: Vec<String> = (1..=40).map(|n| format!("{}-{n:04}.parquet", report.run_id)).collect();
    let names: Vec<&str> = report.files.iter().map(|f| f.rsplit('/').next().unwrap()).collect();
    assert_eq!(names, numbers, "files are reported in page order");
    assert_eq!(parquet_files(&dir.path().join("lake")).len(), 40);

    let limited = Job { max_pages: Some(5), ..job() };
    let mut source = Source::Replay(Replay::open(&recording(dir.path(), 40, None)).unwrap());
    let report = extract::run(&limited, &mut source, &sink).await.unwrap();
    assert_eq!(report.pages, 5, "--max-pages stops the workers");

    let bad = recording(dir.path(), 40, Some(17));
    let mut source = Source::Replay(Replay::open(&bad).unwrap());
    let err = extract::run(&job(), &mut source, &sink).await.unwrap_err().to_string();
    assert!(err.contains(&format!("{}:17: not an X API search page", bad.display())), "{err}");
    assert!(err.contains("stored 16 page(s)"), "the pages before the bad one are reported: {err}");
}

#[tokio::test]
async fn replay_workers_store_into_s3() {
    let (client, bucket) = common::moto_bucket("replay").await;
    let dir = tempfile::tempdir().unwrap();
    let mut source = Source::Replay(Replay::open(&recording(dir.path(), 6, None)).unwrap());
    let report =
        extract::run(&job(), &mut source, &Sink::S3 { client: client.clone(), bucket: bucket.clone() }).await.unwrap();
    let keys = common::s3_keys(&client, &bucket, "p/tweets/").await;
    assert_eq!(keys, report.files);
    assert_eq!(keys.len(), 6);
}

/// A run holds the checkpoint's version; a write over a version someone else replaced is refused,
/// on S3 (`If-Match`) and on disk alike, and the newer state stays.
async fn a_stale_writer_is_refused(sink: &Sink) {
    let key = "p/_state/extract.json";
    let at = |id: &str| Checkpoint { since_id: Some(id.into()), ..Checkpoint::empty("q") };
    let held = checkpoint::write(sink, key, &at("100"), None).await.unwrap();
    checkpoint::write(sink, key, &at("300"), Some(&held)).await.unwrap();
    let stale = checkpoint::write(sink, key, &at("200"), Some(&held)).await.unwrap_err();
    assert!(matches!(stale, ExtractError::CheckpointMoved { .. }), "{}: {stale}", sink.location());
    assert!(stale.to_string().contains("was changed by someone else during this run"), "{stale}");
    let (stored, _) = checkpoint::read(sink, key).await.unwrap().unwrap();
    assert_eq!(stored.since_id.as_deref(), Some("300"), "{}", sink.location());
}

#[tokio::test]
async fn a_stale_checkpoint_writer_is_refused_on_s3_and_disk() {
    let dir = tempfile::tempdir().unwrap();
    a_stale_writer_is_refused(&Sink::Dir(dir.path().to_path_buf())).await;
    let (client, bucket) = common::moto_bucket("checkpoint").await;
    a_stale_writer_is_refused(&Sink::S3 { client, bucket }).await;
}

/// Ten runs start at once: exactly one gets the lease, the others are told who holds it.
async fn one_lease_holder(sink: &Sink) {
    let ttl = Duration::from_secs(60);
    let ids: Vec<String> = (0..10).map(|i| format!("run-{i}")).collect();
    let attempts = ids.iter().map(|id| lease::acquire(sink, "p", id, ttl));
    let results = futures::future::join_all(attempts).await;
    let (held, refused): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(held.len(), 1, "{}: exactly one run holds the lease", sink.location());
    for e in refused.into_iter().map(Result::unwrap_err) {
        assert!(matches!(e, ExtractError::LeaseHeld { .. }), "{e}");
    }
    lease::release(sink, held.into_iter().next().unwrap().unwrap()).await;
    let again = lease::acquire(sink, "p", "after", ttl).await;
    assert!(again.is_ok(), "a released lease is free: {:?}", again.err());
}

#[tokio::test]
async fn the_run_lease_has_one_holder_at_a_time_on_s3_and_disk() {
    let dir = tempfile::tempdir().unwrap();
    one_lease_holder(&Sink::Dir(dir.path().to_path_buf())).await;
    let (client, bucket) = common::moto_bucket("lease").await;
    one_lease_holder(&Sink::S3 { client, bucket }).await;
}

#[tokio::test]
async fn the_s3_sink_creates_once_and_stores_the_run() {
    let (client, bucket) = common::moto_bucket("lake").await;
    let sink = Sink::S3 { client: client.clone(), bucket: bucket.clone() };
    assert_eq!(sink.put_new("x/a.parquet", b"one".to_vec()).await.unwrap(), Stored::Created);
    assert_eq!(sink.put_new("x/a.parquet", b"two".to_vec()).await.unwrap(), Stored::AlreadyThere);
    assert_eq!(sink.get("x/a.parquet").await.unwrap().unwrap().body, b"one", "If-None-Match kept the first write");

    let server = two_page_api().await;
    let report = run(&server, &sink).await.unwrap();
    let keys = common::s3_keys(&client, &bucket, "p/").await;
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(
        keys[3],
        "p/tweets/dt=".to_string()
            + &chrono::Utc::now().format("%Y-%m-%d").to_string()
            + "/"
            + &report.run_id
            + "-0002.parquet"
    );
    assert_eq!(keys[..2], ["p/_state/extract.json", "p/_state/lease.json"]);
    let body = sink.get(&keys[2]).await.unwrap().unwrap().body;
    assert_eq!(read_batches(body).iter().map(|b| b.num_rows()).sum::<usize>(), 100);
}

#[tokio::test]
async fn a_timed_out_request_is_retried() {
    let server = MockServer::start().await;
    let slow = ResponseTemplate::new(200).set_body_string(page("two_tweets.jsonl")).set_delay(Duration::from_secs(5));
    Mock::given(path(SEARCH)).respond_with(slow).up_to_n_times(1).with_priority(1).mount(&server).await;
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("two_tweets.jsonl")))
        .with_priority(2)
        .mount(&server)
        .await;
    let text = config_text(&server.uri())
        .replace("time_budget_secs = 20\n", "time_budget_secs = 20\nrequest_timeout_secs = 1\n");
    let config = Config::parse(&text, Path::new("/tmp/flixops.toml")).unwrap();
    let mut source = Source::Api(XClient::new(&config.extract, Secret::new("test-token".into())).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let report = extract::run(&job(), &mut source, &Sink::Dir(dir.path().to_path_buf())).await.unwrap();
    assert_eq!(report.tweets, 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "the timed-out request was sent again");
}

#[tokio::test]
async fn the_recorded_lookup_page_joins_its_author_and_marks_the_retweet() {
    let server = MockServer::start().await;
    Mock::given(path(SEARCH))
        .respond_with(ResponseTemplate::new(200).set_body_string(page("mentions_tweet.jsonl")))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap();
    let recorded: Value = serde_json::from_str(&page("mentions_tweet.jsonl")).unwrap();
    let tweet = &recorded["data"][0];
    let author =
        recorded["includes"]["users"].as_array().unwrap().iter().find(|u| u["id"] == tweet["author_id"]).unwrap();
    let batches = lake_batches(dir.path());
    assert_eq!(strings(&batches, "user_username"), [author["username"].as_str().map(str::to_string)]);
    let original_id = &tweet["referenced_tweets"][0]["id"];
    assert_eq!(strings(&batches, "retweeted_id"), [original_id.as_str().map(str::to_string)]);
    let original = recorded["includes"]["tweets"].as_array().unwrap().iter().find(|t| &t["id"] == original_id).unwrap();
    assert_ne!(recorded["includes"]["tweets"][0]["id"], *original_id, "the original is not the first included tweet");
    assert_eq!(strings(&batches, "tweet_text"), [original["text"].as_str().map(str::to_string)]);
    use arrow::array::AsArray;
    assert!(batches[0].column_by_name("is_retweet").unwrap().as_boolean().value(0));
}

// --- Windows, deadlines, caps and rejects, against a mock with X's cursor semantics ---------

fn paged_client(server: &MockServer) -> Source {
    let text = config_text(&server.uri()).replace("[extract]\n", "[extract]\nmax_results = 10\n");
    let config = Config::parse(&text, Path::new("/tmp/flixops.toml")).unwrap();
    Source::Api(XClient::new(&config.extract, Secret::new("test-token".into())).unwrap())
}

fn paged_job() -> Job {
    Job { page_size: 10, ..job() }
}

/// Runs until a run ends complete (at most `max_runs`), returning the reports.
async fn runs_until_complete(job: &Job, server: &MockServer, sink: &Sink, max_runs: usize) -> Vec<Report> {
    let mut reports = Vec::new();
    for _ in 0..max_runs {
        let report = extract::run(job, &mut paged_client(server), sink).await.unwrap();
        let done = report.status == extract::Status::Complete;
        reports.push(report);
        if done {
            return reports;
        }
    }
    panic!("not complete after {max_runs} runs: {reports:#?}");
}

fn stored_ids(dir: &Path) -> std::collections::BTreeSet<String> {
    strings(&lake_batches(dir), "tweet_id").into_iter().flatten().collect()
}

fn ids(range: std::ops::Range<u64>) -> std::collections::BTreeSet<String> {
    range.map(|id| id.to_string()).collect()
}

#[tokio::test]
async fn a_page_cap_loses_no_tweet_and_buys_none_twice() {
    let timeline = common::x_api::Timeline::of(1000..1025);
    let server = timeline.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let job = Job { max_pages: Some(1), ..paged_job() };

    let first = extract::run(&job, &mut paged_client(&server), &sink).await.unwrap();
    assert_eq!((first.status, first.partial.as_deref()), (extract::Status::Partial, Some("max_pages = 1 reached")));
    let open = stored_checkpoint(&sink).await.unwrap().window.expect("the first run leaves its window open");
    assert_eq!((open.until_id.as_str(), open.newest_id.as_str()), ("1015", "1024"));

    runs_until_complete(&job, &server, &sink, 6).await;
    assert_eq!(stored_ids(dir.path()), ids(1000..1025), "every tweet of the window is in the lake");
    assert_eq!(timeline.served().len(), 25, "no tweet was fetched (and paid for) twice");
    assert_eq!(stored_checkpoint(&sink).await.unwrap().since_id.as_deref(), Some("1024"));

    timeline.add((2000..2007).map(common::x_api::tweet));
    runs_until_complete(&job, &server, &sink, 6).await;
    let mut all = ids(1000..1025);
    all.extend(ids(2000..2007));
    assert_eq!(stored_ids(dir.path()), all, "the 7 new tweets too");
    assert_eq!(timeline.served().len(), 32, "still none twice");
}

#[tokio::test]
async fn a_run_out_of_time_stops_between_pages_and_the_next_one_finishes() {
    let timeline = common::x_api::Timeline::of(1000..1025);
    timeline.slow_after(0, Duration::from_millis(1200));
    let server = timeline.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let job = Job { time_budget: Duration::from_secs(3), ..paged_job() };
    let started = std::time::Instant::now();
    let first = extract::run(&job, &mut paged_client(&server), &sink).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "the budget holds: {:?}", started.elapsed());
    assert_eq!((first.status, first.partial.as_deref()), (extract::Status::Partial, Some("time budget used up")));
    assert!(first.pages >= 1 && first.pages < 3, "{first:?}");
    timeline.fast();
    runs_until_complete(&job, &server, &sink, 3).await;
    assert_eq!(stored_ids(dir.path()), ids(1000..1025));
}

#[tokio::test]
async fn a_repeating_cursor_stops_the_run_by_name_and_keeps_its_progress() {
    let timeline = common::x_api::Timeline::of(1000..1035);
    timeline.stuck_token(true);
    let server = timeline.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let err = extract::run(&paged_job(), &mut paged_client(&server), &sink).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("page 2: the X API repeated the pagination cursor `stuck`"), "{message}");
    assert!(message.contains("stored 2 page(s)") && message.contains("the next run resumes after them"), "{message}");
    let state = stored_checkpoint(&sink).await.unwrap();
    assert_eq!(state.window.map(|w| w.until_id).as_deref(), Some("1015"), "progress up to page 2 is kept");
    timeline.stuck_token(false);
    runs_until_complete(&paged_job(), &server, &sink, 3).await;
    assert_eq!(stored_ids(dir.path()), ids(1000..1035));
}

#[tokio::test]
async fn a_tweet_the_contract_cannot_hold_goes_to_rejects_and_its_page_is_stored() {
    let timeline = common::x_api::Timeline::of(1000..1012);
    let mut bad = common::x_api::tweet(1005);
    bad.as_object_mut().unwrap().remove("created_at");
    timeline.add([bad]);
    let server = timeline.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let reports = runs_until_complete(&paged_job(), &server, &sink, 1).await;
    assert_eq!(reports[0].rejects, 1);
    let mut expected = ids(1000..1012);
    expected.remove("1005");
    assert_eq!(stored_ids(dir.path()), expected, "the page's other tweets are stored");
    let rejects: Vec<_> = reports[0].files.iter().filter(|f| f.contains("/_rejects/dt=")).collect();
    assert_eq!(rejects.len(), 1, "{:?}", reports[0].files);
    let text = std::fs::read_to_string(dir.path().join(rejects[0])).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["tweet_id"], "1005");
    assert!(line["reason"].as_str().unwrap().contains("has no `created_at`"), "{line}");
    assert_eq!(line["tweet"]["text"], "tweet 1005 #flix", "the tweet is kept as the API sent it");
    assert_eq!(stored_checkpoint(&sink).await.unwrap().since_id.as_deref(), Some("1011"), "the pipeline moves on");
}

#[tokio::test]
async fn a_run_cap_stops_at_a_page_boundary_and_the_next_runs_resume() {
    let timeline = common::x_api::Timeline::of(1000..1025);
    let server = timeline.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let job = Job { max_posts_per_run: Some(15), ..paged_job() };
    let reports = runs_until_complete(&job, &server, &sink, 5).await;
    assert_eq!(reports[0].partial.as_deref(), Some("max_posts_per_run = 15 reached: 10 posts read"));
    assert!(reports.iter().all(|r| r.posts <= 15), "no run reads past its cap");
    assert_eq!(stored_ids(dir.path()), ids(1000..1025));
    assert_eq!(timeline.served().len(), 25);
    let month = stored_checkpoint(&sink).await.unwrap().month;
    assert_eq!(month.posts, 25, "the month's counter holds every post read");
}

#[tokio::test]
async fn the_monthly_cap_stops_runs_before_any_request_and_a_new_month_starts_from_zero() {
    let timeline = common::x_api::Timeline::of(1000..1025);
    let server = timeline.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let key = "p/_state/extract.json";
    let this_month = chrono::Utc::now().format("%Y-%m").to_string();
    let usage =
        |month: &str, posts| checkpoint::MonthUsage { month: month.into(), posts, runs: 3, ..Default::default() };
    let capped = Checkpoint { month: usage(&this_month, 95), ..Checkpoint::empty("flixbus") };
    checkpoint::write(&sink, key, &capped, None).await.unwrap();
    let job = Job { max_posts_per_month: Some(100), ..paged_job() };

    let stopped = extract::run(&job, &mut paged_client(&server), &sink).await.unwrap();
    let reason = "max_posts_per_month = 100 reached: 95 posts read this month";
    assert_eq!((stopped.status, stopped.partial.as_deref()), (extract::Status::Partial, Some(reason)));
    assert_eq!(timeline.requests(), 0, "nothing is bought past the cap");

    let (_, version) = checkpoint::read(&sink, key).await.unwrap().unwrap();
    let last_month = Checkpoint { month: usage("2026-01", 100), ..Checkpoint::empty("flixbus") };
    checkpoint::write(&sink, key, &last_month, Some(&version)).await.unwrap();
    let reports = runs_until_complete(&job, &server, &sink, 3).await;
    assert_eq!(reports[0].month_posts, Some(25), "the counter restarted this month: {:?}", reports[0]);
    assert_eq!(stored_checkpoint(&sink).await.unwrap().month.month, this_month);
}

// --- The X API's documented refusals (docs.x.com/x-api/fundamentals/response-codes-and-errors) ---

/// A usage cap answers 429 like a rate limit, but its problem type says waiting will not help,
/// and `x-rate-limit-remaining` can still be high.
#[tokio::test]
async fn a_usage_cap_fails_at_once_instead_of_waiting_for_the_rate_limit() {
    let server = MockServer::start().await;
    let capped = serde_json::json!({
        "title": "UsageCapExceeded",
        "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped",
    });
    let reset = (chrono::Utc::now().timestamp() + 2).to_string();
    Mock::given(path(SEARCH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-rate-limit-remaining", "447")
                .insert_header("x-rate-limit-reset", reset.as_str())
                .set_body_json(capped),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let err = run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "no wait for the reset: {:?}", started.elapsed());
    assert!(err.is_capped() && !err.is_connect(), "{err}");
    assert!(err.to_string().contains("usage cap is reached (Usage cap exceeded: Monthly product cap)"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "a cap is not retried");
}

#[tokio::test]
async fn depleted_credits_name_the_fix_and_count_as_refused_credentials() {
    let server = MockServer::start().await;
    let depleted = serde_json::json!({
        "title": "CreditsDepleted",
        "detail": "Your enrolled account does not have any credits to fulfill this request.",
        "type": "https://api.twitter.com/2/problems/credits-depleted",
    });
    Mock::given(path(SEARCH)).respond_with(ResponseTemplate::new(402).set_body_json(depleted)).mount(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let err = run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap_err();
    assert!(err.is_connect(), "exit 3, as for refused credentials: {err}");
    let message = err.to_string();
    assert!(
        message.contains("credits are used up") && message.contains("buy credits or raise the spending limit"),
        "{message}"
    );
}

/// Only the documented stale-`since_id` message drops the checkpoint; another 400 that mentions
/// `since_id` (a malformed id) is an error and keeps it.
#[tokio::test]
async fn only_the_stale_since_id_message_falls_back_to_the_whole_window() {
    let server = MockServer::start().await;
    let malformed = r#"{"errors":[{"parameters":{"since_id":["abc"]},"message":"The `since_id` query parameter value [abc] is not valid"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}"#;
    Mock::given(path(SEARCH)).respond_with(ResponseTemplate::new(400).set_body_string(malformed)).mount(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::Dir(dir.path().to_path_buf());
    let old = Checkpoint { since_id: Some("abc".into()), ..Checkpoint::empty("flixbus") };
    checkpoint::write(&sink, "p/_state/extract.json", &old, None).await.unwrap();
    let err = run(&server, &sink).await.unwrap_err();
    assert!(err.to_string().contains("is not valid"), "{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "no second request without since_id");
    assert_eq!(stored_checkpoint(&sink).await.unwrap().since_id.as_deref(), Some("abc"), "the checkpoint is kept");
}

/// `tweet_hashtags` is the parquet spec's standard LIST, three levels with the standard names
/// (`<list> (LIST) { repeated group list { element } }`), so readers that do not apply the spec's
/// backward-compatibility rules for other names (Snowflake's among those the issue names) read a
/// list of strings: https://github.com/apache/parquet-format/blob/master/LogicalTypes.md#lists
#[tokio::test]
async fn hashtags_are_written_as_the_standard_three_level_parquet_list() {
    use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let server = two_page_api().await;
    let dir = tempfile::tempdir().unwrap();
    run(&server, &Sink::Dir(dir.path().to_path_buf())).await.unwrap();
    let file = std::fs::File::open(&parquet_files(dir.path())[0]).unwrap();
    let reader = SerializedFileReader::new(file).unwrap();
    let root = reader.metadata().file_metadata().schema();
    let hashtags = root.get_fields().iter().find(|f| f.name() == "tweet_hashtags").unwrap();
    assert!(hashtags.is_group());
    assert_eq!(hashtags.get_basic_info().logical_type_ref(), Some(&LogicalType::List));
    let [list] = hashtags.get_fields() else { panic!("one repeated group: {hashtags:?}") };
    assert_eq!((list.name(), list.get_basic_info().repetition()), ("list", Repetition::REPEATED), "{list:?}");
    assert!(list.is_group());
    let [element] = list.get_fields() else { panic!("one element: {list:?}") };
    assert_eq!(element.name(), "element", "the spec's element name, not arrow's `item`");
    assert!(element.is_primitive());
    assert_eq!(element.get_physical_type(), PhysicalType::BYTE_ARRAY);
    assert_eq!(element.get_basic_info().logical_type_ref(), Some(&LogicalType::String));
    // Arrow still reads it back as the list of tags.
    let batches = lake_batches(dir.path());
    assert!(batches[0].column_by_name("tweet_hashtags").is_some());
}

/// The recorded page in the vocabulary of X's production OpenAPI spec (v2.167): `referenced_posts`,
/// `repost_count`, `note_post`, `includes.posts`.
fn in_post_vocabulary(value: Value) -> Value {
    let rename = |key: &str, inside_includes: bool| match key {
        "referenced_tweets" => "referenced_posts".to_string(),
        "retweet_count" => "repost_count".to_string(),
        "note_tweet" => "note_post".to_string(),
        "tweets" if inside_includes => "posts".to_string(),
        other => other.to_string(),
    };
    fn walk(value: Value, parent: &str, rename: &dyn Fn(&str, bool) -> String) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter().map(|(k, v)| (rename(&k, parent == "includes"), walk(v, &k, rename))).collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| walk(v, parent, rename)).collect()),
            other => other,
        }
    }
    walk(value, "", &rename)
}

/// Both vocabularies give byte-for-byte the same rows: a switch of the API's names neither breaks
/// parsing nor leaves `is_retweet` false and the counts null.
#[test]
fn a_page_in_the_post_vocabulary_gives_the_same_rows_and_parquet_bytes() {
    use flixops::extract::tweet::Page;
    for name in ["brexit.jsonl", "note_tweet.jsonl"] {
        let old: Value = serde_json::from_str(&page(name)).unwrap();
        let new = serde_json::to_vec(&in_post_vocabulary(old.clone())).unwrap();
        let text = String::from_utf8_lossy(&new);
        for key in ["\"referenced_tweets\":", "\"retweet_count\":", "\"note_tweet\":", "\"tweets\":"] {
            assert!(!text.contains(key), "{name}: key {key} left in the renamed page");
        }
        let old = serde_json::to_vec(&old).unwrap();
        let (a, rejected_a) = sonic_rs::from_slice::<Page>(&old).unwrap().to_batch("q", 7);
        let (b, rejected_b) = sonic_rs::from_slice::<Page>(&new).unwrap().to_batch("q", 7);
        assert!(rejected_a.is_empty() && rejected_b.is_empty());
        assert_eq!(a, b, "{name}: the same rows");
        let encode = |batch| flixops::extract::parquet::encode(batch).unwrap();
        assert_eq!(encode(&a), encode(&b), "{name}: the same parquet bytes");
        use arrow::array::{Array, AsArray};
        if name == "brexit.jsonl" {
            assert_eq!(b.column_by_name("is_retweet").unwrap().as_boolean().true_count(), 67);
            assert_eq!(b.column_by_name("retweet_count").unwrap().null_count(), 0, "repost_count is read");
        }
    }
}

/// `extract.vocabulary = "post"` asks with the new names: `post.fields`, `referenced_posts.id`, `note_post`.
#[tokio::test]
async fn the_post_vocabulary_names_the_request_parameters() {
    let server = MockServer::start().await;
    let renamed = in_post_vocabulary(serde_json::from_str(&page("brexit.jsonl")).unwrap());
    Mock::given(path(SEARCH))
        .and(query_param("expansions", "author_id,referenced_posts.id"))
        .and(query_param("post.fields", "created_at,author_id,entities,referenced_posts,lang,public_metrics,note_post"))
        .and(query_param_is_missing("tweet.fields"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&renamed))
        .mount(&server)
        .await;
    let text = config_text(&server.uri()).replace("[extract]\n", "[extract]\nvocabulary = \"post\"\n");
    let config = Config::parse(&text, Path::new("/tmp/flixops.toml")).unwrap();
    let mut source = Source::Api(XClient::new(&config.extract, Secret::new("test-token".into())).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut job = job();
    job.max_pages = Some(1);
    let report = extract::run(&job, &mut source, &Sink::Dir(dir.path().to_path_buf())).await.unwrap();
    assert_eq!(report.tweets, 100, "{report:?}");
}

/// S3's answers to racing conditional writes, which moto gives only when the launcher is told to
/// (`/_flixops/s3-conflict`): a 409 `ConditionalRequestConflict` is retried (the SDK does not), past
/// the retries it is a conflict; an `If-Match` on a key that vanished answers 404 `NoSuchKey`, also
/// a conflict, not a storage failure. https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-requests.html
#[tokio::test]
async fn racing_conditional_writes_on_s3_are_retried_or_reported_as_conflicts() {
    let (client, bucket) = common::moto_bucket("races").await;
    let sink = Sink::S3 { client, bucket: bucket.clone() };
    let key = "p/_state/extract.json";
    let arm = |times: u32| {
        let url = format!("{}/_flixops/s3-conflict?bucket={bucket}&key={key}&times={times}", common::moto().endpoint);
        async move { assert!(reqwest::Client::new().post(url).send().await.unwrap().status().is_success()) }
    };
    let state = Checkpoint::empty("q");
    arm(2).await;
    let version = checkpoint::write(&sink, key, &state, None).await.expect("two 409s, then the write goes through");
    arm(5).await;
    let err = checkpoint::write(&sink, key, &state, Some(&version)).await.unwrap_err();
    assert!(matches!(err, ExtractError::CheckpointMoved { .. }), "409 past the retries: {err}");
    let vanished = checkpoint::write(&sink, "p/_state/gone.json", &state, Some("\"0123abcd\"")).await.unwrap_err();
    assert!(matches!(vanished, ExtractError::CheckpointMoved { .. }), "404 NoSuchKey to If-Match: {vanished}");
    assert!(checkpoint::read(&sink, key).await.unwrap().is_some(), "the first write is there");
}
