{{!-- Volume per UTC day: tweets, the share that are retweets, and reach (authors' followers). --}}
SELECT
    CAST(tweet_created_at AS DATE) AS tweet_date,
    COUNT(*) AS tweet_count,
    SUM(CASE WHEN is_retweet THEN 1 ELSE 0 END) AS retweet_count,
    AVG(CASE WHEN is_retweet THEN 1.0 ELSE 0.0 END) AS retweet_share,
    COUNT(DISTINCT user_id) AS user_count,
    SUM(COALESCE(user_followers_count, 0)) AS reach
FROM {{ref "staging.stg_tweets"}}
GROUP BY 1
