//! Snowflake identifiers and literals. Every name flixops puts into SQL passes through here, so no
//! statement is built from unchecked text.

use std::fmt;

/// A validated identifier, stored as Snowflake resolves an unquoted one (upper case).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident(String);

/// A name that cannot be a Snowflake identifier.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{0}` is not a Snowflake identifier: use letters, digits, _ and $, starting with a letter or _ (at most 255)")]
pub struct BadIdent(pub String);

impl Ident {
    /// Checks `name` the way Snowflake reads an unquoted identifier and upper-cases it.
    pub fn new(name: &str) -> Result<Self, BadIdent> {
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if first_ok && rest_ok && name.len() <= 255 {
            Ok(Self(name.to_ascii_uppercase()))
        } else {
            Err(BadIdent(name.to_string()))
        }
    }

    /// The resolved (upper-case) name, as SHOW commands list it.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    /// Always quoted: the stored form is already the resolved one, and quoting keeps keywords safe.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// `"DB"."SCHEMA"."NAME"`: an object in a schema.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Qualified {
    /// Database.
    pub database: Ident,
    /// Schema.
    pub schema: Ident,
    /// Object.
    pub name: Ident,
}

impl Qualified {
    /// Joins three validated parts.
    pub fn new(database: &Ident, schema: &Ident, name: &Ident) -> Self {
        Self { database: database.clone(), schema: schema.clone(), name: name.clone() }
    }

    /// `"DB"."SCHEMA"`, for `IN SCHEMA` clauses.
    pub fn schema_path(&self) -> String {
        format!("{}.{}", self.database, self.schema)
    }

    /// `DB.SCHEMA.NAME`, as a string argument names an object in the docs
    /// (`SYSTEM$PIPE_STATUS('<db>.<schema>.<pipe_name>')`, `FORMAT_NAME = 'file_format_name'`,
    /// `TABLE_NAME => '<string>'`): every part resolves unquoted to itself, so no inner quotes.
    pub fn plain(&self) -> String {
        format!("{}.{}.{}", self.database.name(), self.schema.name(), self.name.name())
    }
}

impl fmt::Display for Qualified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.database, self.schema, self.name)
    }
}

/// A single-quoted string literal; quotes and backslashes are escaped.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A `SHOW … LIKE` pattern for `name`. `_` still matches any character there, so callers keep only
/// the rows whose `name` is equal.
pub fn like(name: &Ident) -> String {
    literal(name.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked_and_resolved_upper_case() {
        assert_eq!(Ident::new("acme_tweets").unwrap().to_string(), "\"ACME_TWEETS\"");
        for bad in ["", "1abc", "a-b", "a\"b", "a b", "x;drop"] {
            let err = Ident::new(bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("`{bad}` is not a Snowflake identifier: use letters")), "{err}");
        }
    }

    #[test]
    fn a_string_argument_names_the_object_without_inner_quotes() {
        let part = |n: &str| Ident::new(n).unwrap();
        let pipe = Qualified::new(&part("acme"), &part("raw"), &part("tweets_pipe"));
        assert_eq!(literal(&pipe.plain()), "'ACME.RAW.TWEETS_PIPE'");
        assert_eq!(pipe.to_string(), "\"ACME\".\"RAW\".\"TWEETS_PIPE\"");
    }

    #[test]
    fn literals_escape_quotes() {
        assert_eq!(literal("it's"), "'it\\'s'");
        assert_eq!(literal("a\\'b"), "'a\\\\\\'b'");
    }
}
