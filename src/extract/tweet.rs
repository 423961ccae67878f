//! One X API v2 search page, borrowed from its bytes, turned into the data contract's rows.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, ListBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

/// A search response body. Unknown keys (`__twarc`, …) are ignored. X's production OpenAPI spec
/// (v2.167, August 2026) renames tweets to posts (`includes.posts`, `referenced_posts`,
/// `note_post`, `repost_count`) while the prose docs and today's responses keep the tweet names:
/// both are read, so a switch neither breaks parsing nor silently empties columns.
#[derive(Debug, Deserialize)]
pub struct Page<'a> {
    #[serde(default, borrow)]
    pub data: Vec<Tweet<'a>>,
    #[serde(default, borrow)]
    pub includes: Includes<'a>,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
    #[serde(default, borrow)]
    pub meta: Meta<'a>,
}

/// `meta`: pagination and id range.
#[derive(Debug, Default, Deserialize)]
pub struct Meta<'a> {
    #[serde(borrow)]
    pub next_token: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub newest_id: Option<Cow<'a, str>>,
    pub result_count: Option<u64>,
}

/// `includes`: the authors, and the originals of retweets (requested with `referenced_tweets.id`).
#[derive(Debug, Default, Deserialize)]
pub struct Includes<'a> {
    #[serde(default, borrow)]
    pub users: Vec<User<'a>>,
    #[serde(default, borrow, alias = "posts")]
    pub tweets: Vec<Original<'a>>,
}

/// A tweet as requested with the contract's `tweet.fields`.
#[derive(Debug, Deserialize)]
pub struct Tweet<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    #[serde(borrow)]
    pub created_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub author_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub lang: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub entities: Option<Entities<'a>>,
    #[serde(default, borrow, alias = "note_post")]
    pub note_tweet: Option<NoteTweet<'a>>,
    #[serde(default, borrow, alias = "referenced_posts")]
    pub referenced_tweets: Vec<Reference<'a>>,
    pub public_metrics: Option<TweetMetrics>,
}

/// A referenced tweet from `includes.tweets`: only what a retweet takes from its original.
#[derive(Debug, Deserialize)]
pub struct Original<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    #[serde(default, borrow)]
    pub entities: Option<Entities<'a>>,
    #[serde(default, borrow, alias = "note_post")]
    pub note_tweet: Option<NoteTweet<'a>>,
}

/// `note_tweet`: the whole text of a post longer than 280 characters, which `text` cuts off.
#[derive(Debug, Deserialize)]
pub struct NoteTweet<'a> {
    #[serde(borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub entities: Option<Entities<'a>>,
}

/// `entities`: hashtags only.
#[derive(Debug, Default, Deserialize)]
pub struct Entities<'a> {
    #[serde(default, borrow)]
    pub hashtags: Vec<Hashtag<'a>>,
}

/// One hashtag; `tag` comes without `#`.
#[derive(Debug, Deserialize)]
pub struct Hashtag<'a> {
    #[serde(borrow)]
    pub tag: Cow<'a, str>,
}

/// A referenced tweet: `retweeted`, `replied_to` or `quoted`.
#[derive(Debug, Deserialize)]
pub struct Reference<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub id: Cow<'a, str>,
}

/// Engagement counts; any may be absent.
#[derive(Debug, Deserialize)]
pub struct TweetMetrics {
    #[serde(alias = "repost_count")]
    pub retweet_count: Option<i64>,
    pub reply_count: Option<i64>,
    pub like_count: Option<i64>,
    pub quote_count: Option<i64>,
}

/// An included user; `location` is absent (not empty) when unset.
#[derive(Debug, Deserialize)]
pub struct User<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub username: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub location: Option<Cow<'a, str>>,
    pub public_metrics: Option<UserMetrics>,
}

/// Follower counts.
#[derive(Debug, Deserialize)]
pub struct UserMetrics {
    pub followers_count: Option<i64>,
}

/// Why one tweet cannot become a row, naming the tweet and the field.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// A field the contract needs is absent (the request lacked a field or expansion).
    #[error("tweet {tweet_id} has no `{field}`; request tweet.fields={field}")]
    Missing { tweet_id: String, field: &'static str },
    /// `created_at` is not RFC 3339.
    #[error("tweet {tweet_id}: created_at `{value}` is not an RFC 3339 timestamp")]
    BadTimestamp { tweet_id: String, value: String },
}

/// A tweet the contract cannot hold, and why; it goes to `_rejects/` instead of stalling its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The tweet's position in the page's `data[]`.
    pub index: usize,
    /// The tweet's `id`.
    pub tweet_id: String,
    /// What is missing or malformed, and the request field that brings it.
    pub reason: String,
    /// The contract field the tweet lacks, when that is the reason: when every tweet of a page
    /// lacks the same one, the request lacks it.
    pub missing: Option<&'static str>,
}

/// The version of the parquet columns below, written into every file's key-value metadata.
pub const SCHEMA_VERSION: &str = "2";

/// The parquet schema of the data contract, in column order.
pub fn schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let hashtags = DataType::List(Arc::new(Field::new("element", DataType::Utf8, false)));
    Arc::new(Schema::new(vec![
        Field::new("tweet_id", DataType::Utf8, false),
        Field::new("tweet_created_at", ts(), false),
        Field::new("tweet_text", DataType::Utf8, false),
        Field::new("tweet_lang", DataType::Utf8, true),
        Field::new("is_retweet", DataType::Boolean, false),
        Field::new("is_reply", DataType::Boolean, false),
        Field::new("is_quote", DataType::Boolean, false),
        Field::new("replied_to_id", DataType::Utf8, true),
        Field::new("quoted_id", DataType::Utf8, true),
        Field::new("retweeted_id", DataType::Utf8, true),
        Field::new("tweet_hashtags", hashtags, false),
        Field::new("retweet_count", DataType::Int64, true),
        Field::new("reply_count", DataType::Int64, true),
        Field::new("like_count", DataType::Int64, true),
        Field::new("quote_count", DataType::Int64, true),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("user_username", DataType::Utf8, true),
        Field::new("user_location", DataType::Utf8, true),
        Field::new("user_followers_count", DataType::Int64, true),
        Field::new("query", DataType::Utf8, false),
        Field::new("extracted_at", ts(), false),
    ]))
}

/// The ids a tweet refers to, one per kind (the last listed wins, as in the Python baseline).
#[derive(Default)]
struct Refs<'p> {
    replied_to: Option<&'p str>,
    quoted: Option<&'p str>,
    retweeted: Option<&'p str>,
}

impl<'p> Refs<'p> {
    fn of(tweet: &'p Tweet) -> Self {
        let mut refs = Refs::default();
        for r in &tweet.referenced_tweets {
            let slot = match &*r.kind {
                "replied_to" => &mut refs.replied_to,
                "quoted" => &mut refs.quoted,
                "retweeted" | "reposted" => &mut refs.retweeted,
                _ => continue,
            };
            *slot = Some(&*r.id);
        }
        refs
    }
}

/// The text a row stores and the hashtags found in it.
struct FullText<'p> {
    text: &'p str,
    hashtags: &'p [Hashtag<'p>],
}

/// A long post's `note_tweet` text and hashtags when present, else the (≤ 280 characters) ones.
fn full_text<'p>(text: &'p str, note: Option<&'p NoteTweet>, entities: Option<&'p Entities>) -> FullText<'p> {
    let text = note.and_then(|n| n.text.as_deref()).unwrap_or(text);
    let entities = note.and_then(|n| n.entities.as_ref()).or(entities);
    FullText { text, hashtags: entities.map(|e| e.hashtags.as_slice()).unwrap_or_default() }
}

/// The entities X escapes in text, and what they stand for.
const ESCAPED: [(&str, char); 3] = [("&amp;", '&'), ("&lt;", '<'), ("&gt;", '>')];

/// Undoes X's escaping of `&`, `<` and `>` in one left-to-right pass, so `&amp;lt;` becomes `&lt;`
/// (each entity decoded once); borrows the text when it holds no `&`.
fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (entity, decoded) = ESCAPED.into_iter().find(|(e, _)| rest.starts_with(*e)).unwrap_or(("&", '&'));
        out.push(decoded);
        rest = &rest[entity.len()..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Everything one row is made of, looked up before anything is appended.
struct Row<'p> {
    tweet: &'p Tweet<'p>,
    refs: Refs<'p>,
    full: FullText<'p>,
    author: Option<&'p User<'p>>,
}

/// Column builders for one page.
struct Columns {
    tweet_id: StringBuilder,
    created_at: TimestampMicrosecondBuilder,
    text: StringBuilder,
    lang: StringBuilder,
    is_retweet: BooleanBuilder,
    is_reply: BooleanBuilder,
    is_quote: BooleanBuilder,
    replied_to: StringBuilder,
    quoted: StringBuilder,
    retweeted: StringBuilder,
    hashtags: ListBuilder<StringBuilder>,
    counts: [Int64Builder; 4],
    user_id: StringBuilder,
    username: StringBuilder,
    location: StringBuilder,
    followers: Int64Builder,
    query: StringBuilder,
    extracted_at: TimestampMicrosecondBuilder,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        let strings = || StringBuilder::with_capacity(n, n * 16);
        let item = Arc::new(Field::new("element", DataType::Utf8, false));
        Self {
            tweet_id: strings(),
            created_at: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            text: StringBuilder::with_capacity(n, n * 160),
            lang: strings(),
            is_retweet: BooleanBuilder::with_capacity(n),
            is_reply: BooleanBuilder::with_capacity(n),
            is_quote: BooleanBuilder::with_capacity(n),
            replied_to: strings(),
            quoted: strings(),
            retweeted: strings(),
            hashtags: ListBuilder::new(StringBuilder::new()).with_field(item),
            counts: std::array::from_fn(|_| Int64Builder::with_capacity(n)),
            user_id: strings(),
            username: strings(),
            location: strings(),
            followers: Int64Builder::with_capacity(n),
            query: strings(),
            extracted_at: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
        }
    }

    /// Appends one row, or nothing when the tweet lacks what the contract needs.
    fn push(&mut self, row: &Row, query: &str, extracted_at: i64) -> Result<(), RowError> {
        let t = row.tweet;
        let missing = |field| RowError::Missing { tweet_id: t.id.to_string(), field };
        let created = t.created_at.as_deref().ok_or_else(|| missing("created_at"))?;
        let user_id = t.author_id.as_deref().ok_or_else(|| missing("author_id"))?;
        let created = chrono::DateTime::parse_from_rfc3339(created)
            .map_err(|_| RowError::BadTimestamp { tweet_id: t.id.to_string(), value: created.to_string() })?;
        self.tweet_id.append_value(&t.id);
        self.created_at.append_value(created.timestamp_micros());
        self.text.append_value(unescape(row.full.text));
        self.lang.append_option(t.lang.as_deref());
        self.push_refs(&row.refs);
        for tag in row.full.hashtags {
            self.hashtags.values().append_value(&tag.tag);
        }
        self.hashtags.append(true);
        self.push_metrics(t.public_metrics.as_ref());
        self.user_id.append_value(user_id);
        let author = row.author;
        self.username.append_option(author.and_then(|u| u.username.as_deref()));
        self.location.append_option(author.and_then(|u| u.location.as_deref()));
        self.followers.append_option(author.and_then(|u| u.public_metrics.as_ref()?.followers_count));
        self.query.append_value(query);
        self.extracted_at.append_value(extracted_at);
        Ok(())
    }

    fn push_refs(&mut self, refs: &Refs) {
        self.is_retweet.append_value(refs.retweeted.is_some());
        self.is_reply.append_value(refs.replied_to.is_some());
        self.is_quote.append_value(refs.quoted.is_some());
        self.replied_to.append_option(refs.replied_to);
        self.quoted.append_option(refs.quoted);
        self.retweeted.append_option(refs.retweeted);
    }

    fn push_metrics(&mut self, m: Option<&TweetMetrics>) {
        let metrics = [
            m.and_then(|m| m.retweet_count),
            m.and_then(|m| m.reply_count),
            m.and_then(|m| m.like_count),
            m.and_then(|m| m.quote_count),
        ];
        for (builder, value) in self.counts.iter_mut().zip(metrics) {
            builder.append_option(value);
        }
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        let [c0, c1, c2, c3] = &mut self.counts;
        vec![
            Arc::new(self.tweet_id.finish()),
            Arc::new(self.created_at.finish()),
            Arc::new(self.text.finish()),
            Arc::new(self.lang.finish()),
            Arc::new(self.is_retweet.finish()),
            Arc::new(self.is_reply.finish()),
            Arc::new(self.is_quote.finish()),
            Arc::new(self.replied_to.finish()),
            Arc::new(self.quoted.finish()),
            Arc::new(self.retweeted.finish()),
            Arc::new(self.hashtags.finish()),
            Arc::new(c0.finish()),
            Arc::new(c1.finish()),
            Arc::new(c2.finish()),
            Arc::new(c3.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.username.finish()),
            Arc::new(self.location.finish()),
            Arc::new(self.followers.finish()),
            Arc::new(self.query.finish()),
            Arc::new(self.extracted_at.finish()),
        ]
    }
}

impl Page<'_> {
    /// Rows of the contract, one per tweet in `data[]`: authors joined from `includes.users`, a
    /// retweet's full text and hashtags from its original in `includes.tweets`. A tweet that cannot
    /// be a row is returned as rejected and the others are kept.
    pub fn to_batch(&self, query: &str, extracted_at_micros: i64) -> (RecordBatch, Vec<Rejected>) {
        let users: HashMap<&str, &User> = self.includes.users.iter().map(|u| (&*u.id, u)).collect();
        let originals: HashMap<&str, &Original> = self.includes.tweets.iter().map(|o| (&*o.id, o)).collect();
        let mut columns = Columns::with_capacity(self.data.len());
        let mut rejected = Vec::new();
        for (index, tweet) in self.data.iter().enumerate() {
            let refs = Refs::of(tweet);
            let full = match refs.retweeted.and_then(|id| originals.get(id)) {
                Some(o) => full_text(&o.text, o.note_tweet.as_ref(), o.entities.as_ref()),
                None => full_text(&tweet.text, tweet.note_tweet.as_ref(), tweet.entities.as_ref()),
            };
            let author = tweet.author_id.as_deref().and_then(|id| users.get(id).copied());
            let row = Row { tweet, refs, full, author };
            if let Err(e) = columns.push(&row, query, extracted_at_micros) {
                let missing = match &e {
                    RowError::Missing { field, .. } => Some(*field),
                    RowError::BadTimestamp { .. } => None,
                };
                rejected.push(Rejected { index, tweet_id: tweet.id.to_string(), reason: e.to_string(), missing });
            }
        }
        (RecordBatch::try_new(schema(), columns.finish()).expect("columns match the contract schema"), rejected)
    }

    /// The largest tweet id on the page (ids are decimal u64 and grow with time).
    pub fn newest_id(&self) -> Option<u64> {
        let from_meta = self.meta.newest_id.as_deref().and_then(|id| id.parse().ok());
        let from_data = self.data.iter().filter_map(|t| t.id.parse::<u64>().ok()).max();
        from_meta.max(from_data)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;

    #[test]
    fn an_author_missing_from_includes_gives_nulls_not_an_error() {
        let body = r#"{"data":[{"id":"7","text":"hello #a #b","created_at":"2026-11-24T10:00:00.000Z","author_id":"99",
            "entities":{"hashtags":[{"start":6,"end":8,"tag":"a"},{"start":9,"end":11,"tag":"b"}]},
            "referenced_tweets":[{"type":"replied_to","id":"5"}]}],
            "includes":{"users":[{"id":"1","username":"other"}]},"meta":{"result_count":1}}"#;
        let page: Page = serde_json::from_str(body).unwrap();
        let (batch, rejected) = page.to_batch("q", 0);
        assert!(rejected.is_empty());
        for column in ["user_username", "user_location", "user_followers_count", "retweet_count", "tweet_lang"] {
            assert!(batch.column_by_name(column).unwrap().is_null(0), "{column} should be null");
        }
        assert_eq!(batch.column_by_name("user_id").unwrap().as_string::<i32>().value(0), "99");
        assert!(batch.column_by_name("is_reply").unwrap().as_boolean().value(0));
        assert!(!batch.column_by_name("is_retweet").unwrap().as_boolean().value(0));
        assert_eq!(batch.column_by_name("replied_to_id").unwrap().as_string::<i32>().value(0), "5");
        assert!(batch.column_by_name("quoted_id").unwrap().is_null(0));
        let tags = batch.column_by_name("tweet_hashtags").unwrap().as_list::<i32>().value(0);
        assert_eq!(tags.as_string::<i32>().iter().flatten().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(page.newest_id(), Some(7));
    }

    #[test]
    fn a_bad_timestamp_rejects_that_tweet_only() {
        let body = r#"{"data":[{"id":"7","text":"x","created_at":"yesterday","author_id":"1"},
            {"id":"8","text":"y","created_at":"2026-11-24T10:00:00Z","author_id":"1"}]}"#;
        let page: Page = serde_json::from_str(body).unwrap();
        let (batch, rejected) = page.to_batch("q", 0);
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column_by_name("tweet_id").unwrap().as_string::<i32>().value(0), "8");
        let reason = "tweet 7: created_at `yesterday` is not an RFC 3339 timestamp".to_string();
        assert_eq!(rejected, [Rejected { index: 0, tweet_id: "7".into(), reason, missing: None }]);
    }

    #[test]
    fn only_the_three_entities_x_escapes_are_decoded_each_once() {
        assert_eq!(unescape("a &amp; b &lt;3 &gt;_&lt;"), "a & b <3 >_<");
        assert_eq!(unescape("&amp;lt; is how you write &lt;"), "&lt; is how you write <");
        assert_eq!(unescape("&quot;R&D&#39; &amp"), "&quot;R&D&#39; &amp", "others stay as written");
        assert!(matches!(unescape("no ampersand"), Cow::Borrowed(_)), "plain text is not copied");
        assert_eq!(unescape("ends with &"), "ends with &");
    }
}
