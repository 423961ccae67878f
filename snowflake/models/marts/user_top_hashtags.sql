{{!-- Each author's three most used hashtags (ties broken alphabetically). --}}
WITH uses AS (
    SELECT
        s.user_id,
        LOWER({{cast "h.value" "string"}}) AS hashtag,
        COUNT(*) AS tweet_count
    FROM {{ref "staging.stg_tweets"}} AS s, {{flatten "s.tweet_hashtags" "h"}}
    GROUP BY 1, 2
)
SELECT
    user_id,
    hashtag,
    tweet_count,
    ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY tweet_count DESC, hashtag) AS hashtag_rank
FROM uses
QUALIFY ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY tweet_count DESC, hashtag) <= 3
