{{!-- Tweets per UTC day and hour, with the ISO weekday (1 Monday … 7 Sunday): when people post. --}}
SELECT
    CAST(tweet_created_at AS DATE) AS tweet_date,
    EXTRACT(HOUR FROM tweet_created_at) AS tweet_hour,
    {{iso_weekday "tweet_created_at"}} AS tweet_weekday,
    COUNT(*) AS tweet_count
FROM {{ref "staging.stg_tweets"}}
GROUP BY 1, 2, 3
