{{!-- Per author and UTC day: tweets and their summed text length, so any period's activity and
      average length add up from whole days. --}}
SELECT
    user_id,
    CAST(tweet_created_at AS DATE) AS tweet_date,
    COUNT(*) AS tweet_count,
    SUM(LENGTH(tweet_text)) AS text_length
FROM {{ref "staging.stg_tweets"}}
GROUP BY 1, 2
