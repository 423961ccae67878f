//! Which Snowflake account and credentials to use, found the way the Snowflake CLI finds them, so a
//! user's existing `snow` setup works unchanged. Precedence, highest first:
//! `SNOWFLAKE_CONNECTIONS_<NAME>_<KEY>` variables; the named connection in `connections.toml`
//! (or, when that file has none, `[connections.<name>]` in `config.toml`); generic `SNOWFLAKE_<KEY>`
//! variables. Files live in `$SNOWFLAKE_HOME`, else `~/.snowflake`. The connection is the one named
//! in flixops.toml, else `$SNOWFLAKE_DEFAULT_CONNECTION_NAME`, else `default_connection_name` of
//! `config.toml`, else `default`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Secret;

/// The keys flixops reads from a connection (the Python connector's names).
const KEYS: &[&str] = &[
    "account",
    "user",
    "password",
    "authenticator",
    "private_key_file",
    "private_key_path",
    "private_key_file_pwd",
    "private_key_passphrase",
    "host",
    "port",
    "protocol",
    "role",
    "warehouse",
    "database",
];

/// How flixops signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Key-pair (JWT), the recommended way; the key may be encrypted (PKCS#8).
    KeyPair {
        /// The private key file.
        key_file: PathBuf,
        /// Its passphrase, if it is encrypted.
        passphrase: Option<SecretText>,
    },
    /// User and password: works, but flixops warns (no MFA, easy to leak).
    Password(SecretText),
}

/// A secret that compares for tests but never prints.
#[derive(Clone)]
pub struct SecretText(pub Secret);

impl PartialEq for SecretText {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose() == other.0.expose()
    }
}

impl Eq for SecretText {}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A resolved connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The connection's name.
    pub name: String,
    /// Account identifier (`orgname-account` or a locator).
    pub account: String,
    /// User name.
    pub user: String,
    /// How to sign in.
    pub auth: Auth,
    /// Custom host (private link, proxies, tests); None: `<account>.snowflakecomputing.com`.
    pub host: Option<String>,
    /// Port of `host` (default 443).
    pub port: Option<u16>,
    /// `https` (default) or `http` (only for local test servers).
    pub protocol: Option<String>,
    /// Role, warehouse and database, when the connection sets them.
    pub role: Option<String>,
    /// Default warehouse.
    pub warehouse: Option<String>,
    /// Default database.
    pub database: Option<String>,
    /// Where the values came from, for messages.
    pub source: String,
}

/// Why no usable connection was found; names the files and variables to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// A file exists but is not valid TOML.
    #[error("{path}: invalid TOML: {message}", path = .path.display())]
    Parse { path: PathBuf, message: String },
    /// The named connection is defined nowhere.
    #[error(
        "Snowflake connection `{name}` is not defined in {dir} (connections.toml or config.toml) nor by \
         SNOWFLAKE_* variables; add it with `snow connection add --connection-name {name}`, or set \
         snowflake_connection in flixops.toml to one of: {known}",
        dir = .dir.display()
    )]
    Unknown { name: String, dir: PathBuf, known: String },
    /// A required key is missing.
    #[error("Snowflake connection `{name}` ({origin}): `{key}` is not set; {fix}")]
    Missing { name: String, origin: String, key: &'static str, fix: &'static str },
    /// A key holds a value flixops cannot use.
    #[error("Snowflake connection `{name}` ({origin}): `{key}` = `{value}`: {fix}")]
    Invalid { name: String, origin: String, key: &'static str, value: String, fix: &'static str },
    /// `add` was asked for a name that is already defined.
    #[error("Snowflake connection `{name}` already exists in {path}; pick it, or choose another name", path = .path.display())]
    Exists { name: String, path: PathBuf },
    /// The connections file could not be written.
    #[error("{path}: cannot write", path = .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The connections the Snowflake CLI's files define, and which one is the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defined {
    /// Connection names, in file order.
    pub names: Vec<String>,
    /// The default connection's name (`$SNOWFLAKE_DEFAULT_CONNECTION_NAME`, config.toml, else `default`).
    pub default: String,
    /// The directory the files live in (`$SNOWFLAKE_HOME`, else `~/.snowflake`).
    pub dir: PathBuf,
}

/// The files as read once: where they are, the default name, and the tables that define connections.
struct Files {
    dir: PathBuf,
    default: String,
    /// Connection tables by name (connections.toml, or config.toml's `[connections]` when that file has none).
    defined: toml::Table,
    /// Which file `defined` came from.
    file: &'static str,
}

fn read_files(var: &dyn Fn(&str) -> Option<String>) -> Result<Files, ConnectionError> {
    let dir = home(var);
    let config = read_toml(&dir.join("config.toml"))?;
    let connections_file = read_toml(&dir.join("connections.toml"))?;
    let default = var("SNOWFLAKE_DEFAULT_CONNECTION_NAME")
        .or_else(|| config.get("default_connection_name").and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| "default".to_string());
    // connections.toml, when it defines any connection, replaces config.toml's [connections].
    let (defined, file) = if connections_file.values().any(toml::Value::is_table) {
        (connections_file, "connections.toml")
    } else {
        let table = config.get("connections").and_then(|v| v.as_table()).cloned().unwrap_or_default();
        (table, "config.toml")
    };
    Ok(Files { dir, default, defined, file })
}

/// Lists the connections a user can pick (as `snow connection list` would), without resolving them.
pub fn list_names(var: &dyn Fn(&str) -> Option<String>) -> Result<Defined, ConnectionError> {
    let files = read_files(var)?;
    let names = files.defined.iter().filter(|(_, v)| v.is_table()).map(|(k, _)| k.clone()).collect();
    Ok(Defined { names, default: files.default, dir: files.dir })
}

/// Finds the connection `requested` (None: the default one). `var` reads the environment.
pub fn resolve(requested: Option<&str>, var: &dyn Fn(&str) -> Option<String>) -> Result<Connection, ConnectionError> {
    let Files { dir, default, defined, file } = read_files(var)?;
    let name = requested.map(str::to_string).unwrap_or(default);
    let from_file = defined.get(&name).and_then(|v| v.as_table());
    // An empty variable is unset: CI systems give an unset secret or variable as "" (GitHub Actions'
    // `${{ secrets.X }}`), and an empty passphrase would be tried on an unencrypted key.
    let set = |name: String| var(&name).filter(|v| !v.is_empty());
    let specific = |key: &str| set(format!("SNOWFLAKE_CONNECTIONS_{}_{}", name.to_uppercase(), key.to_uppercase()));
    let generic = |key: &str| set(format!("SNOWFLAKE_{}", key.to_uppercase()));

    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    for key in KEYS {
        let from_toml = from_file.and_then(|t| t.get(*key)).and_then(toml_text);
        if let Some(value) = specific(key).or(from_toml).or_else(|| generic(key)) {
            values.insert(key, value);
        }
    }
    if from_file.is_none() && values.is_empty() {
        let known: Vec<&str> = defined.iter().filter(|(_, v)| v.is_table()).map(|(k, _)| k.as_str()).collect();
        let known = if known.is_empty() { "(none defined)".to_string() } else { known.join(", ") };
        return Err(ConnectionError::Unknown { name, dir, known });
    }
    let source = if from_file.is_some() { format!("{}/{file}", dir.display()) } else { "SNOWFLAKE_* variables".into() };
    build(name, source, values)
}

/// A key-pair connection to add for the user: names and a key file path, never a password or key content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConnection {
    /// The connection's name (`[name]` in connections.toml).
    pub name: String,
    /// Account identifier (`orgname-accountname`).
    pub account: String,
    /// User name.
    pub user: String,
    /// The private key file (PKCS#8 PEM); its passphrase, if any, stays in `SNOWFLAKE_PRIVATE_KEY_FILE_PWD`.
    pub private_key_file: PathBuf,
}

/// Adds `new` where the Snowflake CLI looks first, keeping the file's other content: `[name]` in
/// connections.toml (created 0600 when new), or `[connections.name]` in config.toml when that is
/// where the user's connections are. Returns the file written.
pub fn add(new: &NewConnection, var: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, ConnectionError> {
    let files = read_files(var)?;
    let in_config = files.file == "config.toml" && files.defined.values().any(toml::Value::is_table);
    let path = files.dir.join(if in_config { "config.toml" } else { "connections.toml" });
    if files.defined.get(&new.name).is_some_and(toml::Value::is_table) {
        return Err(ConnectionError::Exists { name: new.name.clone(), path });
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let parse_error = |e: toml_edit::TomlError| ConnectionError::Parse { path: path.clone(), message: e.to_string() };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(parse_error)?;
    let mut table = toml_edit::Table::new();
    table.insert("account", toml_edit::value(&new.account));
    table.insert("user", toml_edit::value(&new.user));
    table.insert("authenticator", toml_edit::value("SNOWFLAKE_JWT"));
    table.insert("private_key_file", toml_edit::value(new.private_key_file.display().to_string()));
    let parent = if in_config { doc.entry("connections").or_insert_with(implicit_table) } else { doc.as_item_mut() };
    let Some(parent) = parent.as_table_like_mut() else {
        let message = "`connections` is not a table".to_string();
        return Err(ConnectionError::Parse { path, message });
    };
    parent.insert(&new.name, toml_edit::Item::Table(table));
    write_private(&path, &doc.to_string()).map_err(|source| ConnectionError::Write { path: path.clone(), source })?;
    Ok(path)
}

fn implicit_table() -> toml_edit::Item {
    let mut table = toml_edit::Table::new();
    table.set_implicit(true);
    toml_edit::Item::Table(table)
}

/// Writes a file that names credentials: a new one (and its directory) readable by the owner only;
/// an existing one keeps the permissions its owner gave it.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if path.exists() {
        return std::fs::write(path, text);
    }
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    create_private_file(path)?.write_all(text.as_bytes())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

fn build(name: String, source: String, mut values: BTreeMap<&str, String>) -> Result<Connection, ConnectionError> {
    let missing = |key, fix| ConnectionError::Missing { name: name.clone(), origin: source.clone(), key, fix };
    let account = values.remove("account").ok_or_else(|| missing("account", "set it to orgname-accountname"))?;
    let user = values.remove("user").ok_or_else(|| missing("user", "set the user flixops signs in as"))?;
    let key_file = values.remove("private_key_file").or_else(|| values.remove("private_key_path"));
    let passphrase = values.remove("private_key_file_pwd").or_else(|| values.remove("private_key_passphrase"));
    let auth = match (key_file, values.remove("password")) {
        (Some(key_file), _) => Auth::KeyPair {
            key_file: PathBuf::from(key_file),
            passphrase: passphrase.map(|p| SecretText(Secret::new(p))),
        },
        (None, Some(password)) => Auth::Password(SecretText(Secret::new(password))),
        (None, None) => {
            return Err(missing(
                "private_key_file",
                "key-pair auth is recommended: set private_key_file (and SNOWFLAKE_PRIVATE_KEY_FILE_PWD if the key \
                 is encrypted); a password also works",
            ));
        }
    };
    let port = match values.remove("port") {
        None => None,
        Some(value) => Some(value.parse::<u16>().map_err(|_| ConnectionError::Invalid {
            name: name.clone(),
            origin: source.clone(),
            key: "port",
            value,
            fix: "use a port number (1-65535)",
        })?),
    };
    let protocol = values.remove("protocol").map(|p| p.to_ascii_lowercase());
    if let Some(p) = protocol.as_deref().filter(|p| !matches!(*p, "https" | "http")) {
        let value = p.to_string();
        return Err(ConnectionError::Invalid { name, origin: source, key: "protocol", value, fix: "use https" });
    }
    let host = values.remove("host");
    if protocol.as_deref() == Some("http") && !host.as_deref().is_some_and(crate::config::is_loopback_host) {
        let value = "http".to_string();
        let fix = "plain http sends the session in clear, so it is allowed only with host = localhost/127.0.0.1 (an \
                   emulator); use https";
        return Err(ConnectionError::Invalid { name, origin: source, key: "protocol", value, fix });
    }
    Ok(Connection {
        name,
        account,
        user,
        auth,
        host,
        port,
        protocol,
        role: values.remove("role"),
        warehouse: values.remove("warehouse"),
        database: values.remove("database"),
        source,
    })
}

/// `$SNOWFLAKE_HOME`, else `~/.snowflake`.
fn home(var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = var("SNOWFLAKE_HOME") {
        return PathBuf::from(dir);
    }
    PathBuf::from(var("HOME").unwrap_or_default()).join(".snowflake")
}

fn read_toml(path: &Path) -> Result<toml::Table, ConnectionError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .parse::<toml::Table>()
            .map_err(|e| ConnectionError::Parse { path: path.to_path_buf(), message: e.to_string() }),
        Err(_) => Ok(toml::Table::new()),
    }
}

fn toml_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn home_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn the_default_connection_of_config_toml_with_a_key_pair() {
        let dir = home_with(&[(
            "config.toml",
            "default_connection_name = \"prod\"\n[connections.prod]\naccount = \"acme-prod\"\nuser = \"FLIXOPS\"\n\
             private_key_file = \"/keys/rsa.p8\"\nwarehouse = \"WH\"\n",
        )]);
        let home = dir.path().display().to_string();
        let var = env(&[("SNOWFLAKE_HOME", &home), ("SNOWFLAKE_PRIVATE_KEY_FILE_PWD", "s3cret")]);
        let c = resolve(None, &var).unwrap();
        assert_eq!((c.name.as_str(), c.account.as_str(), c.warehouse.as_deref()), ("prod", "acme-prod", Some("WH")));
        assert_eq!(
            c.auth,
            Auth::KeyPair {
                key_file: "/keys/rsa.p8".into(),
                passphrase: Some(SecretText(Secret::new("s3cret".into())))
            },
            "the generic variable fills what the file leaves out"
        );
        assert!(!format!("{c:?}").contains("s3cret"), "secrets never print");
    }

    #[test]
    fn connections_toml_wins_and_specific_variables_override_the_file() {
        let dir = home_with(&[
            ("config.toml", "[connections.dev]\naccount = \"from-config\"\nuser = \"u\"\npassword = \"p\"\n"),
            ("connections.toml", "[dev]\naccount = \"from-connections\"\nuser = \"u\"\npassword = \"p\"\n"),
        ]);
        let home = dir.path().display().to_string();
        let var = env(&[("SNOWFLAKE_HOME", &home), ("SNOWFLAKE_ACCOUNT", "generic")]);
        assert_eq!(resolve(Some("dev"), &var).unwrap().account, "from-connections", "a file beats generic variables");
        let var = env(&[("SNOWFLAKE_HOME", &home), ("SNOWFLAKE_CONNECTIONS_DEV_ACCOUNT", "specific")]);
        assert_eq!(resolve(Some("dev"), &var).unwrap().account, "specific");
        assert!(matches!(resolve(Some("dev"), &var).unwrap().auth, Auth::Password(_)));
    }

    #[test]
    fn an_unknown_connection_lists_the_defined_ones_and_missing_keys_say_how_to_fix() {
        let dir = home_with(&[("connections.toml", "[dev]\naccount = \"a\"\n[prod]\naccount = \"b\"\nuser = \"u\"\n")]);
        let home = dir.path().display().to_string();
        let var = env(&[("SNOWFLAKE_HOME", &home)]);
        let err = resolve(Some("qa"), &var).unwrap_err().to_string();
        assert!(err.contains("`qa` is not defined") && err.contains("dev, prod"), "{err}");
        let err = resolve(Some("dev"), &var).unwrap_err().to_string();
        assert!(err.contains("`user` is not set"), "{err}");
        let err = resolve(Some("prod"), &var).unwrap_err().to_string();
        assert!(err.contains("private_key_file") && err.contains("key-pair auth is recommended"), "{err}");
    }

    #[test]
    fn ci_variables_define_a_key_pair_connection_and_empty_ones_are_unset() {
        // What the exported GitHub Actions workflow sets: no connections.toml, the connection's
        // name in the variables, and "" for a secret or variable the repository does not define.
        let dir = home_with(&[]);
        let home = dir.path().display().to_string();
        let var = env(&[
            ("SNOWFLAKE_HOME", &home),
            ("SNOWFLAKE_CONNECTIONS_PROD_ACCOUNT", "acme-prod"),
            ("SNOWFLAKE_CONNECTIONS_PROD_USER", "FLIXOPS"),
            ("SNOWFLAKE_CONNECTIONS_PROD_PRIVATE_KEY_FILE", "/tmp/key.p8"),
            ("SNOWFLAKE_CONNECTIONS_PROD_PRIVATE_KEY_FILE_PWD", ""),
            ("SNOWFLAKE_CONNECTIONS_PROD_ROLE", ""),
        ]);
        let c = resolve(Some("prod"), &var).unwrap();
        assert_eq!(c.auth, Auth::KeyPair { key_file: "/tmp/key.p8".into(), passphrase: None }, "no passphrase");
        assert_eq!((c.account.as_str(), c.role), ("acme-prod", None), "an empty role is no role");
        let var = env(&[("SNOWFLAKE_HOME", &home), ("SNOWFLAKE_CONNECTIONS_PROD_ACCOUNT", "")]);
        let err = resolve(Some("prod"), &var).unwrap_err().to_string();
        assert!(err.contains("`prod` is not defined"), "an empty variable defines nothing: {err}");
    }

    #[test]
    fn variables_alone_define_a_connection_and_broken_toml_names_the_file() {
        let dir = home_with(&[]);
        let home = dir.path().display().to_string();
        let var = env(&[
            ("SNOWFLAKE_HOME", &home),
            ("SNOWFLAKE_ACCOUNT", "a"),
            ("SNOWFLAKE_USER", "u"),
            ("SNOWFLAKE_PASSWORD", "p"),
        ]);
        let c = resolve(None, &var).unwrap();
        assert_eq!((c.name.as_str(), c.source.as_str()), ("default", "SNOWFLAKE_* variables"));
        std::fs::write(dir.path().join("config.toml"), "[connections\n").unwrap();
        let err = resolve(None, &var).unwrap_err().to_string();
        assert!(err.contains("config.toml: invalid TOML"), "{err}");
    }

    #[test]
    fn a_custom_endpoint_is_read_and_a_bad_port_names_the_key() {
        let dir = home_with(&[(
            "connections.toml",
            "[t]\naccount = \"a\"\nuser = \"u\"\npassword = \"p\"\nhost = \"127.0.0.1\"\nport = 8080\nprotocol = \"HTTP\"\n",
        )]);
        let home = dir.path().display().to_string();
        let c = resolve(Some("t"), &env(&[("SNOWFLAKE_HOME", &home)])).unwrap();
        assert_eq!((c.host.as_deref(), c.port, c.protocol.as_deref()), (Some("127.0.0.1"), Some(8080), Some("http")));
        let var = env(&[("SNOWFLAKE_HOME", &home), ("SNOWFLAKE_CONNECTIONS_T_PORT", "eighty")]);
        let err = resolve(Some("t"), &var).unwrap_err().to_string();
        assert!(err.contains("`port` = `eighty`") && err.contains("port number"), "{err}");
        let var = env(&[("SNOWFLAKE_HOME", &home), ("SNOWFLAKE_CONNECTIONS_T_HOST", "acme.snowflakecomputing.com")]);
        let err = resolve(Some("t"), &var).unwrap_err().to_string();
        assert!(err.contains("`protocol` = `http`") && err.contains("only with host = localhost"), "{err}");
    }

    #[test]
    fn list_names_follows_the_file_the_cli_reads_and_the_default_name() {
        let dir =
            home_with(&[("config.toml", "default_connection_name = \"prod\"\n[connections.prod]\naccount = \"a\"\n")]);
        let home = dir.path().display().to_string();
        let var = env(&[("SNOWFLAKE_HOME", &home)]);
        let listed = list_names(&var).unwrap();
        assert_eq!((listed.names, listed.default.as_str()), (vec!["prod".to_string()], "prod"));
        std::fs::write(dir.path().join("connections.toml"), "[dev]\naccount = \"a\"\n[qa]\naccount = \"b\"\n").unwrap();
        let var = env(&[("SNOWFLAKE_HOME", &home), ("SNOWFLAKE_DEFAULT_CONNECTION_NAME", "qa")]);
        let listed = list_names(&var).unwrap();
        assert_eq!((listed.names, listed.default.as_str()), (vec!["dev".to_string(), "qa".to_string()], "qa"));
        let empty = home_with(&[]);
        let var = env(&[("SNOWFLAKE_HOME", &empty.path().display().to_string())]);
        assert_eq!(list_names(&var).unwrap().names, Vec::<String>::new());
    }

    fn new_connection(name: &str) -> NewConnection {
        NewConnection {
            name: name.into(),
            account: "acme-prod".into(),
            user: "FLIXOPS".into(),
            private_key_file: "/keys/rsa.p8".into(),
        }
    }

    #[test]
    fn add_creates_a_private_connections_toml_that_resolves() {
        let dir = home_with(&[]);
        let home = dir.path().join("sub").display().to_string();
        let var = env(&[("SNOWFLAKE_HOME", &home)]);
        let path = add(&new_connection("prod"), &var).unwrap();
        assert_eq!(path, dir.path().join("sub/connections.toml"));
        let c = resolve(Some("prod"), &var).unwrap();
        assert_eq!((c.account.as_str(), c.user.as_str()), ("acme-prod", "FLIXOPS"));
        assert_eq!(c.auth, Auth::KeyPair { key_file: "/keys/rsa.p8".into(), passphrase: None });
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("authenticator = \"SNOWFLAKE_JWT\"") && !text.contains("password"), "{text}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let err = add(&new_connection("prod"), &var).unwrap_err().to_string();
        assert!(err.contains("`prod` already exists"), "{err}");
    }

    #[test]
    fn add_keeps_other_content_and_writes_where_the_connections_are() {
        let config = "# mine\ndefault_connection_name = \"dev\"\n[connections.dev]\naccount = \"a\" # keep\n";
        let dir = home_with(&[("config.toml", config)]);
        let home = dir.path().display().to_string();
        let var = env(&[("SNOWFLAKE_HOME", &home)]);
        let path = add(&new_connection("prod"), &var).unwrap();
        assert_eq!(path, dir.path().join("config.toml"), "connections.toml would hide config.toml's connections");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(config), "{text}");
        assert!(text.contains("[connections.prod]"), "{text}");
        assert_eq!(list_names(&var).unwrap().names, ["dev", "prod"]);
    }
}
