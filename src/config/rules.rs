//! The one set of rules for what flixops.toml, `init`'s answers and the exports accept: names,
//! regions, schedules and lags. Each check returns the rule as its error, which the config loader
//! puts beside the line and field, and the wizard shows inside its prompt.

use super::schedule::Schedule;

pub(crate) fn rule(ok: bool, message: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(message.to_string()) }
}

/// `[project] name`: used in every derived AWS name.
pub fn project_name(s: &str) -> Result<(), String> {
    rule(is_project_name(s), "use 1-40 of a-z, 0-9 and -, starting with a letter")
}

/// `[env.NAME]`.
pub fn env_name(s: &str) -> Result<(), String> {
    rule(is_env_name(s), "use a-z, 0-9, - and _, starting with a letter")
}

/// An S3 bucket name (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>).
pub fn bucket_name(s: &str) -> Result<(), String> {
    rule(is_bucket_name(s), "S3 bucket names are 3-63 of a-z, 0-9, . and -, starting and ending with a letter or digit")
}

/// A Snowflake identifier written unquoted (database, warehouse).
pub fn identifier(s: &str) -> Result<(), String> {
    rule(is_identifier(s), "use a Snowflake identifier: letters, digits, _ and $, starting with a letter or _")
}

/// An environment variable's name.
pub fn env_var_name(s: &str) -> Result<(), String> {
    rule(is_env_var_name(s), "use a variable name: letters, digits and _, not starting with a digit")
}

/// An AWS region code: `eu-west-1`, `us-gov-west-1`, `ap-southeast-5`: lowercase letters and
/// digits in at least three parts, the last a number.
pub fn region(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
    rule(ok, "an AWS region looks like eu-west-1 (`aws ec2 describe-regions` lists them)")
}

/// An EventBridge Scheduler recurring expression, with every field's range checked.
pub fn schedule(s: &str) -> Result<(), String> {
    Schedule::parse(s).map(drop)
}

/// Snowflake's TARGET_LAG: `N seconds|minutes|hours|days` (singular too) or `DOWNSTREAM`.
pub fn target_lag(s: &str) -> Result<(), String> {
    let mut parts = s.split_whitespace();
    let ok = match (parts.next(), parts.next(), parts.next()) {
        (Some(word), None, None) => word.eq_ignore_ascii_case("downstream"),
        (Some(n), Some(unit), None) => {
            n.parse::<u32>().is_ok_and(|n| n > 0)
                && ["second", "minute", "hour", "day"].contains(&unit.to_lowercase().trim_end_matches('s'))
        }
        _ => false,
    };
    rule(ok, "use a duration such as \"1 hour\" or \"15 minutes\" (seconds, minutes, hours, days), or \"DOWNSTREAM\"")
}

/// A data age for `[env.NAME.freshness]`: `N minutes|hours|days` (singular too), as minutes.
pub fn age_minutes(s: &str) -> Result<i64, String> {
    let mut parts = s.split_whitespace();
    let minutes = match (parts.next().map(str::parse::<i64>), parts.next(), parts.next()) {
        (Some(Ok(n)), Some(unit), None) if n > 0 => match unit.to_lowercase().trim_end_matches('s') {
            "minute" => Some(n),
            "hour" => Some(n * 60),
            "day" => Some(n * 24 * 60),
            _ => None,
        },
        _ => None,
    };
    minutes.ok_or_else(|| "use an age such as \"4 hours\", \"30 minutes\" or \"2 days\"".to_string())
}

pub(crate) fn is_project_name(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 40
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub(crate) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub(crate) fn is_bucket_name(s: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&s.len())
        && edge_ok(s.chars().next())
        && edge_ok(s.chars().last())
        && !s.contains("..")
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

pub(crate) fn is_env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_lags_and_names() {
        for ok in ["eu-west-1", "us-gov-west-1", "ap-southeast-5", "us-isob-east-1"] {
            assert_eq!(region(ok), Ok(()), "{ok}");
        }
        for bad in ["eu-west", "EU-WEST-1", "eu-west-x", "1u-west-1", "eu--1", ""] {
            assert!(region(bad).unwrap_err().contains("looks like eu-west-1"), "{bad}");
        }
        assert!(target_lag("1 hour").is_ok() && target_lag("DOWNSTREAM").is_ok());
        assert!(target_lag("soon").unwrap_err().contains("\"1 hour\""));
        assert!(project_name("acme-tweets").is_ok() && project_name("Acme").is_err());
        assert!(bucket_name("acme-prod").is_ok() && bucket_name("Acme_Prod").is_err());
    }
}
