{{!-- Hashtag use per UTC day; tags compare case-insensitively, as on X. --}}
SELECT
    CAST(s.tweet_created_at AS DATE) AS tweet_date,
    LOWER({{cast "h.value" "string"}}) AS hashtag,
    COUNT(*) AS tweet_count,
    COUNT(DISTINCT s.user_id) AS user_count
FROM {{ref "staging.stg_tweets"}} AS s, {{flatten "s.tweet_hashtags" "h"}}
GROUP BY 1, 2
