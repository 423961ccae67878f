//! The Snowflake side. This build has the connection lookup (shared with the Snowflake CLI's
//! files); the client, the resources and the models on Snowflake come with the Snowflake issue.

pub mod connection;
