{{!-- Tweets that carry three or more hashtags: often campaigns or spam. --}}
SELECT
    tweet_id,
    user_id,
    tweet_created_at,
    tweet_text,
    tweet_hashtags,
    {{array_size "tweet_hashtags"}} AS hashtag_count
FROM {{ref "staging.stg_tweets"}}
WHERE {{array_size "tweet_hashtags"}} >= 3
