//! The Snowflake session flixops runs its statements in (snowflake-connector-rs), and the log of
//! every statement sent, so `deploy` can report (and tests can prove) what it changed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use snowflake_connector_rs::{
    AuthConfig, Client as SfClient, ClientConfig, EndpointConfig, ErrorKind, KeyPairConfig, QueryConfig, Session,
    SessionConfig, Statement,
};

use super::connection::{Auth, Connection};
use crate::timeouts::{OPERATION_VAR, STATEMENT_VAR, Timeouts};

/// One result row, keyed by column name as Snowflake labels it.
pub type Row = Map<String, Value>;

/// A Snowflake failure, with the statement kind and the fix where flixops knows it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SnowflakeError {
    /// Login failed or the account was unreachable.
    #[error("cannot connect to Snowflake (connection `{connection}`, {source_of}): {message}\n  fix: {fix}")]
    Connect { connection: String, source_of: String, message: String, fix: String },
    /// Snowflake refused a statement.
    #[error("Snowflake refused `{statement}`: {message}")]
    Query { statement: String, code: Option<String>, message: String, connect: bool },
}

impl SnowflakeError {
    /// The object named in the statement does not exist (Snowflake's 002003).
    pub fn is_missing(&self) -> bool {
        match self {
            SnowflakeError::Query { code, message, .. } => {
                code.as_deref() == Some("002003") || message.contains("does not exist")
            }
            SnowflakeError::Connect { .. } => false,
        }
    }

    /// Snowflake's own message, without the statement it refused.
    pub fn message(&self) -> String {
        match self {
            SnowflakeError::Query { message, .. } => message.clone(),
            SnowflakeError::Connect { .. } => self.to_string(),
        }
    }

    /// The session or network failed rather than the statement (exit code 3).
    pub fn is_connect(&self) -> bool {
        matches!(self, SnowflakeError::Connect { .. } | SnowflakeError::Query { connect: true, .. })
    }
}

/// A signed-in session plus the statement log; cheap to clone and share between resources.
#[derive(Clone)]
pub struct Client {
    session: Arc<Session>,
    log: Arc<Mutex<Vec<String>>>,
    statement_timeout: Duration,
}

impl Client {
    /// Signs in with `conn` and the default [`Timeouts`].
    pub async fn connect(conn: &Connection) -> Result<Self, SnowflakeError> {
        Self::connect_within(conn, &Timeouts::default()).await
    }

    /// Signs in with `conn`, giving up after `timeouts.operation`; each statement then waits at
    /// most `timeouts.statement`. A password sign-in works but is warned about.
    pub async fn connect_within(conn: &Connection, timeouts: &Timeouts) -> Result<Self, SnowflakeError> {
        let failed = |message: String, fix: String| SnowflakeError::Connect {
            connection: conn.name.clone(),
            source_of: conn.source.clone(),
            message,
            fix,
        };
        let auth = auth_config(conn).map_err(|(m, f)| failed(m, f))?;
        let config = client_config(conn, auth, timeouts.statement).map_err(|(m, f)| failed(m, f))?;
        let client = SfClient::new(config).map_err(|e| failed(chain(&e), fix_for(conn, &e)))?;
        let session = tokio::time::timeout(timeouts.operation, client.create_session()).await.map_err(|_| {
            let message = format!("no answer to the sign-in within {} s", timeouts.operation.as_secs());
            failed(message, format!("check the account or host; if Snowflake is only slow, raise {OPERATION_VAR}"))
        })?;
        let session = session.map_err(|e| failed(chain(&e), fix_for(conn, &e)))?;
        Ok(Self { session: Arc::new(session), log: Arc::default(), statement_timeout: timeouts.statement })
    }

    /// Runs a statement whose result is not needed (DDL, DML).
    pub async fn execute(&self, sql: &str) -> Result<(), SnowflakeError> {
        self.query(sql).await.map(drop)
    }

    /// Runs a statement and returns every row.
    pub async fn query(&self, sql: &str) -> Result<Vec<Row>, SnowflakeError> {
        self.query_with(sql, &[]).await
    }

    /// Runs a statement with `?` placeholders bound to `binds` (values never spliced into SQL).
    pub async fn query_with(&self, sql: &str, binds: &[&str]) -> Result<Vec<Row>, SnowflakeError> {
        self.log.lock().expect("statement log").push(sql.to_string());
        tracing::debug!(target: "flixops::snowflake", "{sql}");
        let failed = |e: snowflake_connector_rs::Error| SnowflakeError::Query {
            statement: summary(sql),
            code: e.snowflake_code().map(str::to_string),
            message: e.snowflake_message().map(str::to_string).unwrap_or_else(|| chain(&e)),
            connect: matches!(e.kind(), ErrorKind::Network | ErrorKind::Auth | ErrorKind::SessionExpired),
        };
        let run = async {
            let cursor = if binds.is_empty() {
                self.session.query(sql.to_string()).await
            } else {
                let statement =
                    binds.iter().fold(Statement::new_positional(sql.to_string()), |s, value| s.bind(value.to_string()));
                self.session.query(statement).await
            };
            cursor?.collect::<Vec<snowflake_connector_rs::DynamicRow>>().await
        };
        let rows = match tokio::time::timeout(self.statement_timeout, run).await {
            Ok(rows) => rows.map_err(failed)?,
            Err(_) => return Err(self.timed_out(sql)),
        };
        rows.into_iter()
            .map(|row| {
                row.into_json_object().map_err(|e| SnowflakeError::Query {
                    statement: summary(sql),
                    code: None,
                    message: e.to_string(),
                    connect: false,
                })
            })
            .collect()
    }

    fn timed_out(&self, sql: &str) -> SnowflakeError {
        SnowflakeError::Query {
            statement: summary(sql),
            code: None,
            message: format!(
                "no answer within {} s; if the statement is only slow, raise {STATEMENT_VAR}",
                self.statement_timeout.as_secs()
            ),
            connect: true,
        }
    }

    /// Every statement sent so far, in order.
    pub fn statements(&self) -> Vec<String> {
        self.log.lock().expect("statement log").clone()
    }

    /// The statements that could change something (not SHOW, DESC, SELECT or LIST).
    pub fn writes(&self) -> Vec<String> {
        self.statements().into_iter().filter(|s| !is_read(s)).collect()
    }
}

/// System functions that change state although they are called with SELECT.
const WRITING_FUNCTIONS: &[&str] = &["SYSTEM$PIPE_FORCE_RESUME"];

/// A read-only statement: what `plan` and `doctor` limit themselves to. EXPLAIN only compiles.
pub fn is_read(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    let writes = WRITING_FUNCTIONS.iter().any(|f| sql.to_ascii_uppercase().contains(f));
    !writes && matches!(first.as_str(), "SHOW" | "DESC" | "DESCRIBE" | "SELECT" | "LIST" | "LS" | "WITH" | "EXPLAIN")
}

/// The statement's first words, for messages (never its literals).
fn summary(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(4).collect();
    let mut text = words.join(" ");
    if sql.split_whitespace().count() > 4 {
        text.push_str(" …");
    }
    text
}

/// The error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn fix_for(conn: &Connection, e: &snowflake_connector_rs::Error) -> String {
    match e.kind() {
        ErrorKind::Auth => format!(
            "check `user` and the key (or password) of connection `{}` in {}; for key-pair auth the public key must be \
             set on the user (ALTER USER … SET RSA_PUBLIC_KEY)",
            conn.name, conn.source
        ),
        ErrorKind::Network | ErrorKind::Timeout => format!(
            "check `account` (orgname-accountname) and `host` of connection `{}` in {}, and that this machine reaches it",
            conn.name, conn.source
        ),
        _ => format!("check connection `{}` in {}", conn.name, conn.source),
    }
}

type Failure = (String, String);

fn auth_config(conn: &Connection) -> Result<AuthConfig, Failure> {
    match &conn.auth {
        Auth::KeyPair { key_file, passphrase } => {
            let pem = std::fs::read_to_string(key_file).map_err(|e| {
                let message = format!("cannot read the private key {}: {e}", key_file.display());
                (message, format!("set private_key_file of connection `{}` to a readable PKCS#8 PEM file", conn.name))
            })?;
            let key = match passphrase {
                Some(p) => KeyPairConfig::from_encrypted_pem(pem, p.0.expose().as_bytes().to_vec()),
                None => KeyPairConfig::from_pem(pem),
            };
            Ok(AuthConfig::key_pair(key))
        }
        Auth::Password(password) => {
            tracing::warn!(
                "Snowflake connection `{}` signs in with a password; key-pair auth (private_key_file) is recommended",
                conn.name
            );
            Ok(AuthConfig::password(password.0.expose()))
        }
    }
}

/// The session time zone of everything flixops runs: timestamps it reads or writes never shift
/// with an account's or user's default zone (TIMEZONE, a session parameter:
/// https://docs.snowflake.com/en/sql-reference/parameters#timezone).
pub const SESSION_TIMEZONE: &str = "UTC";

fn client_config(conn: &Connection, auth: AuthConfig, statement_timeout: Duration) -> Result<ClientConfig, Failure> {
    let mut session = SessionConfig::new().with_session_parameter("TIMEZONE", SESSION_TIMEZONE.into());
    if let Some(role) = &conn.role {
        session = session.with_role(role);
    }
    if let Some(warehouse) = &conn.warehouse {
        session = session.with_warehouse(warehouse);
    }
    let query = QueryConfig::new().with_query_response_timeout(statement_timeout);
    let mut config = ClientConfig::new(&conn.user, &conn.account, auth).with_session(session).with_query(query);
    if let Some(host) = &conn.host {
        let protocol = conn.protocol.as_deref().unwrap_or("https");
        let port = conn.port.unwrap_or(if protocol == "http" { 80 } else { 443 });
        let url = url::Url::parse(&format!("{protocol}://{host}:{port}/"))
            .map_err(|e| (format!("host `{host}`: {e}"), format!("fix `host` of connection `{}`", conn.name)))?;
        config = config.with_endpoint(EndpointConfig::custom_base_url(url));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_told_from_writes() {
        for read in
            ["SHOW PIPES LIKE 'X'", "desc storage integration \"X\"", "SELECT 1", "  LIST @s", "EXPLAIN SELECT 1"]
        {
            assert!(is_read(read), "{read}");
        }
        for write in [
            "CREATE TABLE x (a INT)",
            "ALTER PIPE p REFRESH",
            "MERGE INTO t",
            "DROP STAGE s",
            "SELECT SYSTEM$PIPE_FORCE_RESUME('D.S.P', 'staleness_check_override')",
        ] {
            assert!(!is_read(write), "{write}");
        }
    }

    #[test]
    fn messages_show_the_statement_kind_not_its_literals() {
        assert_eq!(
            summary("CREATE STORAGE INTEGRATION \"X\" TYPE = EXTERNAL_STAGE"),
            "CREATE STORAGE INTEGRATION \"X\" …"
        );
    }
}
