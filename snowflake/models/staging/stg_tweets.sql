{{!-- One typed row per tweet. At-least-once delivery can store a tweet twice (a retried run, a
      replayed page): keep the latest copy per tweet_id so no count downstream is doubled. The
      row `flixops doctor --canary` loads (query 'flixops:canary') is no tweet: left out. --}}
SELECT
    {{field "tweet_id" "string"}} AS tweet_id,
    {{field "tweet_created_at" "timestamp"}} AS tweet_created_at,
    {{field "tweet_text" "string"}} AS tweet_text,
    {{field "tweet_lang" "string"}} AS tweet_lang,
    {{field "is_retweet" "boolean"}} AS is_retweet,
    {{field "is_reply" "boolean"}} AS is_reply,
    {{field "is_quote" "boolean"}} AS is_quote,
    {{field "replied_to_id" "string"}} AS replied_to_id,
    {{field "quoted_id" "string"}} AS quoted_id,
    {{field "retweeted_id" "string"}} AS retweeted_id,
    {{field "tweet_hashtags" "string_array"}} AS tweet_hashtags,
    {{field "retweet_count" "integer"}} AS retweet_count,
    {{field "reply_count" "integer"}} AS reply_count,
    {{field "like_count" "integer"}} AS like_count,
    {{field "quote_count" "integer"}} AS quote_count,
    {{field "user_id" "string"}} AS user_id,
    {{field "user_username" "string"}} AS user_username,
    {{field "user_location" "string"}} AS user_location,
    {{field "user_followers_count" "integer"}} AS user_followers_count,
    {{field "query" "string"}} AS query,
    {{field "extracted_at" "timestamp"}} AS extracted_at,
    file_name,
    loaded_at
FROM {{source "raw.tweets_raw"}}
WHERE {{field "query" "string"}} IS DISTINCT FROM 'flixops:canary'
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY {{field "tweet_id" "string"}}
    ORDER BY {{field "extracted_at" "timestamp"}} DESC, loaded_at DESC, file_name DESC
) = 1
