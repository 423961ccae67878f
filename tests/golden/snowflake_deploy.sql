CREATE FILE FORMAT IF NOT EXISTS "PROJECT"."RAW"."PARQUET_FORMAT" TYPE = PARQUET USE_LOGICAL_TYPE = TRUE;

CREATE STORAGE INTEGRATION IF NOT EXISTS "PROJECT_PROD_LAKE" TYPE = EXTERNAL_STAGE STORAGE_PROVIDER = 'S3' STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/project-prod-snowflake' STORAGE_AWS_EXTERNAL_ID = 'flixops-RANDOM' ENABLED = TRUE STORAGE_ALLOWED_LOCATIONS = ('s3://project-prod-tweets/flixops/tweets/');

CREATE STAGE IF NOT EXISTS "PROJECT"."RAW"."TWEETS_STAGE" URL = 's3://project-prod-tweets/flixops/tweets/' STORAGE_INTEGRATION = "PROJECT_PROD_LAKE" FILE_FORMAT = (FORMAT_NAME = 'PROJECT.RAW.PARQUET_FORMAT');

CREATE PIPE IF NOT EXISTS "PROJECT"."RAW"."TWEETS_PIPE" AUTO_INGEST = TRUE AS COPY INTO "PROJECT"."RAW"."TWEETS_RAW" (RECORD, FILE_NAME, FILE_ROW_NUMBER, FILE_LAST_MODIFIED, LOADED_AT) FROM (SELECT $1, METADATA$FILENAME, METADATA$FILE_ROW_NUMBER, METADATA$FILE_LAST_MODIFIED, METADATA$START_SCAN_TIME FROM @"PROJECT"."RAW"."TWEETS_STAGE") FILE_FORMAT = (FORMAT_NAME = 'PROJECT.RAW.PARQUET_FORMAT');

CREATE OR REPLACE DYNAMIC TABLE "PROJECT"."STAGING"."STG_TWEETS"
  TARGET_LAG = '1 hours'
  WAREHOUSE = "TRANSFORM_WH"
AS
SELECT
    record:"tweet_id"::STRING AS tweet_id,
    CONVERT_TIMEZONE('UTC', record:"tweet_created_at"::TIMESTAMP_LTZ)::TIMESTAMP_NTZ AS tweet_created_at,
    record:"tweet_text"::STRING AS tweet_text,
    record:"tweet_lang"::STRING AS tweet_lang,
    record:"is_retweet"::BOOLEAN AS is_retweet,
    record:"is_reply"::BOOLEAN AS is_reply,
    record:"is_quote"::BOOLEAN AS is_quote,
    record:"replied_to_id"::STRING AS replied_to_id,
    record:"quoted_id"::STRING AS quoted_id,
    record:"retweeted_id"::STRING AS retweeted_id,
    record:"tweet_hashtags"::ARRAY AS tweet_hashtags,
    record:"retweet_count"::NUMBER AS retweet_count,
    record:"reply_count"::NUMBER AS reply_count,
    record:"like_count"::NUMBER AS like_count,
    record:"quote_count"::NUMBER AS quote_count,
    record:"user_id"::STRING AS user_id,
    record:"user_username"::STRING AS user_username,
    record:"user_location"::STRING AS user_location,
    record:"user_followers_count"::NUMBER AS user_followers_count,
    record:"query"::STRING AS query,
    CONVERT_TIMEZONE('UTC', record:"extracted_at"::TIMESTAMP_LTZ)::TIMESTAMP_NTZ AS extracted_at,
    file_name,
    loaded_at
FROM "PROJECT"."RAW"."TWEETS_RAW"
WHERE record:"query"::STRING IS DISTINCT FROM 'flixops:canary'
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY record:"tweet_id"::STRING
    ORDER BY CONVERT_TIMEZONE('UTC', record:"extracted_at"::TIMESTAMP_LTZ)::TIMESTAMP_NTZ DESC, loaded_at DESC, file_name DESC
) = 1;

CREATE OR REPLACE DYNAMIC TABLE "PROJECT"."MARTS"."HASHTAGS_DAILY"
  TARGET_LAG = '1 hours'
  WAREHOUSE = "TRANSFORM_WH"
AS
SELECT
    CAST(s.tweet_created_at AS DATE) AS tweet_date,
    LOWER(h.value::STRING) AS hashtag,
    COUNT(*) AS tweet_count,
    COUNT(DISTINCT s.user_id) AS user_count
FROM "PROJECT"."STAGING"."STG_TWEETS" AS s, LATERAL FLATTEN(input => s.tweet_hashtags) AS h
GROUP BY 1, 2;

CREATE OR REPLACE DYNAMIC TABLE "PROJECT"."MARTS"."MULTI_HASHTAG_TWEETS"
  TARGET_LAG = '1 hours'
  WAREHOUSE = "TRANSFORM_WH"
AS
SELECT
    tweet_id,
    user_id,
    tweet_created_at,
    tweet_text,
    tweet_hashtags,
    ARRAY_SIZE(tweet_hashtags) AS hashtag_count
FROM "PROJECT"."STAGING"."STG_TWEETS"
WHERE ARRAY_SIZE(tweet_hashtags) >= 3;

CREATE OR REPLACE DYNAMIC TABLE "PROJECT"."MARTS"."QUERY_COVERAGE"
  TARGET_LAG = '1 hours'
  WAREHOUSE = "TRANSFORM_WH"
AS
SELECT
    query,
    COUNT(*) AS tweet_count,
    MIN(tweet_created_at) AS first_tweet_at,
    MAX(tweet_created_at) AS newest_tweet_at,
    MAX(extracted_at) AS newest_extracted_at,
    MAX(loaded_at) AS newest_loaded_at
FROM "PROJECT"."STAGING"."STG_TWEETS"
GROUP BY query;

CREATE OR REPLACE DYNAMIC TABLE "PROJECT"."MARTS"."TWEETS_DAILY"
  TARGET_LAG = '1 hours'
  WAREHOUSE = "TRANSFORM_WH"
AS
SELECT
    CAST(tweet_created_at AS DATE) AS tweet_date,
    COUNT(*) AS tweet_count,
    SUM(CASE WHEN is_retweet THEN 1 ELSE 0 END) AS retweet_count,
    AVG(CASE WHEN is_retweet THEN 1.0 ELSE 0.0 END) AS retweet_share,
    COUNT(DISTINCT user_id) AS user_count,
    SUM(COALESCE(user_followers_count, 0)) AS reach
FROM "PROJECT"."STAGING"."STG_TWEETS"
GROUP BY 1;

CREATE OR REPLACE DYNAMIC TABLE "PROJECT"."MARTS"."TWEETS_HOURLY"
  TARGET_LAG = '1 hours'
  WAREHOUSE = "TRANSFORM_WH"
AS
SELECT
    CAST(tweet_created_at AS DATE) AS tweet_date,
    EXTRACT(HOUR FROM tweet_created_at) AS tweet_hour,
    DAYOFWEEKISO(tweet_created_at) AS tweet_weekday,
    COUNT(*) AS tweet_count
FROM "PROJECT"."STAGING"."STG_TWEETS"
GROUP BY 1, 2, 3;

CREATE OR REPLACE DYNAMIC TABLE "PROJECT"."MARTS"."USER_ACTIVITY_DAILY"
  TARGET_LAG = '1 hours'
  WAREHOUSE = "TRANSFORM_WH"
AS
SELECT
    user_id,
    CAST(tweet_created_at AS DATE) AS tweet_date,
    COUNT(*) AS tweet_count,
    SUM(LENGTH(tweet_text)) AS text_length
FROM "PROJECT"."STAGING"."STG_TWEETS"
GROUP BY 1, 2;

CREATE OR REPLACE DYNAMIC TABLE "PROJECT"."MARTS"."USER_TOP_HASHTAGS"
  TARGET_LAG = '1 hours'
  WAREHOUSE = "TRANSFORM_WH"
AS
WITH uses AS (
    SELECT
        s.user_id,
        LOWER(h.value::STRING) AS hashtag,
        COUNT(*) AS tweet_count
    FROM "PROJECT"."STAGING"."STG_TWEETS" AS s, LATERAL FLATTEN(input => s.tweet_hashtags) AS h
    GROUP BY 1, 2
)
SELECT
    user_id,
    hashtag,
    tweet_count,
    ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY tweet_count DESC, hashtag) AS hashtag_rank
FROM uses
QUALIFY ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY tweet_count DESC, hashtag) <= 3;

CREATE OR REPLACE DYNAMIC TABLE "PROJECT"."MARTS"."USERS_STATS"
  TARGET_LAG = '1 hours'
  WAREHOUSE = "TRANSFORM_WH"
AS
SELECT
    user_id,
    MAX_BY(user_username, extracted_at) AS user_username,
    MAX_BY(user_location, extracted_at) AS user_location,
    MAX_BY(user_followers_count, extracted_at) AS user_followers_count,
    COUNT(*) AS tweet_count,
    AVG(LENGTH(tweet_text)) AS avg_tweet_length
FROM "PROJECT"."STAGING"."STG_TWEETS"
GROUP BY user_id;

ALTER FILE FORMAT "PROJECT"."RAW"."PARQUET_FORMAT" SET USE_LOGICAL_TYPE = TRUE;

ALTER STORAGE INTEGRATION "PROJECT_PROD_LAKE" SET STORAGE_AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/project-prod-snowflake' STORAGE_AWS_EXTERNAL_ID = 'flixops-RANDOM';

ALTER STAGE "PROJECT"."RAW"."TWEETS_STAGE" SET URL = 's3://project-prod-tweets/flixops/tweets/' STORAGE_INTEGRATION = "PROJECT_PROD_LAKE";

CREATE OR REPLACE PIPE "PROJECT"."RAW"."TWEETS_PIPE" AUTO_INGEST = TRUE COMMENT = 'flixops: replaced, refresh pending MODIFIED_AFTER 2024-01-01T00:00:00+00:00' AS COPY INTO "PROJECT"."RAW"."TWEETS_RAW" (RECORD, FILE_NAME, FILE_ROW_NUMBER, FILE_LAST_MODIFIED, LOADED_AT) FROM (SELECT $1, METADATA$FILENAME, METADATA$FILE_ROW_NUMBER, METADATA$FILE_LAST_MODIFIED, METADATA$START_SCAN_TIME FROM @"PROJECT"."RAW"."TWEETS_STAGE") FILE_FORMAT = (FORMAT_NAME = 'PROJECT.RAW.PARQUET_FORMAT');

ALTER PIPE "PROJECT"."RAW"."TWEETS_PIPE" SET PIPE_EXECUTION_PAUSED = TRUE;

ALTER PIPE "PROJECT"."RAW"."TWEETS_PIPE" REFRESH MODIFIED_AFTER = '2024-01-01T00:00:00+00:00';

ALTER PIPE "PROJECT"."RAW"."TWEETS_PIPE" UNSET COMMENT;

ALTER PIPE "PROJECT"."RAW"."TWEETS_PIPE" SET PIPE_EXECUTION_PAUSED = FALSE;

SELECT SYSTEM$PIPE_FORCE_RESUME('PROJECT.RAW.TWEETS_PIPE', 'staleness_check_override');
