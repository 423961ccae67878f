//! A model is exactly one query: `SELECT …` or `WITH … SELECT …`, with at most a trailing `;`.
//! flixops wraps it in its own `CREATE … AS`, so a second statement (`…; DROP TABLE ops.load_history`)
//! would run with flixops' privileges; this finds one by reading the SQL as a lexer does, skipping
//! strings, quoted names, comments and dollar-quoted bodies.

/// A piece of SQL that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A keyword or a name, upper-cased.
    Word(String),
    Open,
    Close,
    Comma,
    Semicolon,
    /// Anything else: literals, operators, quoted names.
    Other,
}

/// Why `sql` is not exactly one SELECT, or None when it is.
pub fn problem(sql: &str) -> Option<String> {
    let tokens = match tokenize(sql) {
        Ok(tokens) => tokens,
        Err(unclosed) => return Some(format!("{unclosed} is never closed")),
    };
    let end = tokens.iter().position(|t| *t == Token::Semicolon).unwrap_or(tokens.len());
    if tokens[end..].iter().skip(1).any(|t| *t != Token::Semicolon) {
        return Some("holds more than one statement (a `;` is followed by more SQL)".into());
    }
    let query = &tokens[..end];
    let first = query.iter().find(|t| **t != Token::Open);
    match first {
        None => Some("is empty".into()),
        Some(Token::Word(w)) if w == "SELECT" => None,
        Some(Token::Word(w)) if w == "WITH" => with_body(query),
        Some(Token::Word(w)) => Some(format!("is a `{w}` statement, not a SELECT")),
        Some(_) => Some("does not start with SELECT or WITH".into()),
    }
}

/// After `WITH name [(columns)] AS [NOT] [MATERIALIZED] (…), …` at the top level, the statement
/// itself must be a SELECT (or a parenthesized one).
fn with_body(query: &[Token]) -> Option<String> {
    const CTE_WORDS: [&str; 3] = ["AS", "NOT", "MATERIALIZED"];
    let (mut depth, mut after_cte, mut main_paren) = (0usize, false, false);
    for token in query.iter().skip_while(|t| **t == Token::Open).skip(1) {
        match token {
            Token::Open => {
                main_paren |= depth == 0 && after_cte;
                depth += 1;
            }
            Token::Close => {
                depth = depth.saturating_sub(1);
                after_cte = depth == 0 && !main_paren;
            }
            Token::Comma if depth == 0 => after_cte = false,
            Token::Word(w) if !main_paren && depth == 0 && after_cte && CTE_WORDS.contains(&w.as_str()) => {
                after_cte = false;
            }
            Token::Word(w) if main_paren || (depth == 0 && after_cte) => {
                return (w != "SELECT").then(|| format!("is a `WITH … {w}` statement, not a WITH … SELECT"));
            }
            _ => {}
        }
    }
    Some("has a WITH clause but no SELECT after it".into())
}

/// The tokens of `sql`, or what was left open (a string, a quoted name, a comment).
fn tokenize(sql: &str) -> Result<Vec<Token>, &'static str> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (token, end) = match (chars[i], chars.get(i + 1).copied()) {
            (c, _) if c.is_whitespace() => (None, i + 1),
            ('-', Some('-')) => (None, chars[i..].iter().position(|c| *c == '\n').map_or(chars.len(), |n| i + n + 1)),
            ('/', Some('*')) => (None, find(&chars, i + 2, &['*', '/']).ok_or("a /* comment")? + 2),
            ('$', Some('$')) => (Some(Token::Other), find(&chars, i + 2, &['$', '$']).ok_or("a $$ string")? + 2),
            ('\'', _) => (Some(Token::Other), skip_quoted(&chars, i, '\'').ok_or("a 'string'")?),
            ('"', _) => (Some(Token::Other), skip_quoted(&chars, i, '"').ok_or("a \"quoted name\"")?),
            ('`', _) => (Some(Token::Other), skip_quoted(&chars, i, '`').ok_or("a `quoted name`")?),
            _ => {
                let (token, end) = plain(&chars, i);
                (Some(token), end)
            }
        };
        tokens.extend(token);
        i = end;
    }
    Ok(tokens)
}

/// An unquoted token starting at `i`, and where it ends.
fn plain(chars: &[char], i: usize) -> (Token, usize) {
    let word = |c: &char| c.is_alphanumeric() || *c == '_';
    match chars[i] {
        '(' => (Token::Open, i + 1),
        ')' => (Token::Close, i + 1),
        ',' => (Token::Comma, i + 1),
        ';' => (Token::Semicolon, i + 1),
        c if word(&c) => {
            let len = chars[i..].iter().take_while(|c| word(c)).count();
            let text: String = chars[i..i + len].iter().collect();
            (Token::Word(text.to_uppercase()), i + len)
        }
        _ => (Token::Other, i + 1),
    }
}

/// The index of `pattern` at or after `from`.
fn find(chars: &[char], from: usize, pattern: &[char]) -> Option<usize> {
    (from..chars.len().saturating_sub(pattern.len() - 1)).find(|&j| chars[j..].starts_with(pattern))
}

/// The index after a quoted run opened at `start`; a doubled quote stands for itself.
fn skip_quoted(chars: &[char], start: usize, quote: char) -> Option<usize> {
    let mut j = start + 1;
    while j < chars.len() {
        if chars[j] == '\\' && quote == '\'' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            if chars.get(j + 1) == Some(&quote) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn one_select_or_with_select_passes() {
        for sql in [
            "SELECT 1",
            "select a, b from t where x = ';' -- a comment; DROP TABLE t\n",
            "SELECT 1;\n  -- trailing comment\n",
            "(SELECT 1) UNION ALL (SELECT 2);",
            "WITH a AS (SELECT 1 AS x), b (y) AS MATERIALIZED (SELECT x FROM a) SELECT * FROM b",
            "WITH RECURSIVE t AS (SELECT 1 UNION ALL SELECT 1 FROM t) SELECT * FROM t",
            "SELECT \"odd;name\", $$body; DROP$$, 'it''s; fine' /* ; */ FROM t",
        ] {
            assert_eq!(problem(sql), None, "{sql}");
        }
    }

    #[test]
    fn anything_else_is_named() {
        let cases = [
            ("SELECT 1; DROP TABLE ops.load_history", "more than one statement"),
            ("SELECT 1;; SELECT 2", "more than one statement"),
            ("DROP TABLE ops.load_history", "a `DROP` statement"),
            ("INSERT INTO t SELECT 1", "a `INSERT` statement"),
            ("WITH a AS (SELECT 1) DELETE FROM t", "`WITH … DELETE`"),
            ("WITH a AS (SELECT 1)", "no SELECT after it"),
            ("  -- nothing\n", "is empty"),
            ("SELECT 'unterminated", "a 'string' is never closed"),
            ("SELECT 1 /* open", "a /* comment is never closed"),
        ];
        for (sql, expected) in cases {
            let found = problem(sql).unwrap_or_default();
            assert!(found.contains(expected), "{sql}: {found}");
        }
    }
}
