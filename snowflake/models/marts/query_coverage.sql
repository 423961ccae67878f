{{!-- What the data covers, per search query: tweets, the oldest and newest tweet, and the newest
      extraction and load (how fresh the marts are). --}}
SELECT
    query,
    COUNT(*) AS tweet_count,
    MIN(tweet_created_at) AS first_tweet_at,
    MAX(tweet_created_at) AS newest_tweet_at,
    MAX(extracted_at) AS newest_extracted_at,
    MAX(loaded_at) AS newest_loaded_at
FROM {{ref "staging.stg_tweets"}}
GROUP BY query
