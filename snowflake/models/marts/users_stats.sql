{{!-- One row per author: the profile as last seen (latest extraction), and their activity. --}}
SELECT
    user_id,
    MAX_BY(user_username, extracted_at) AS user_username,
    MAX_BY(user_location, extracted_at) AS user_location,
    MAX_BY(user_followers_count, extracted_at) AS user_followers_count,
    COUNT(*) AS tweet_count,
    AVG(LENGTH(tweet_text)) AS avg_tweet_length
FROM {{ref "staging.stg_tweets"}}
GROUP BY user_id
