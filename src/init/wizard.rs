//! The questions, in the order a newcomer thinks of them; each is skipped when a flag answered it
//! and defaults to the existing flixops.toml's value on a re-run. Live checks (STS for the AWS
//! profile, the Snowflake connection) let a person pick again or continue with a warning; without
//! a person, a failed check is an error.

use std::path::{Path, PathBuf};

use super::ask::{Ask, Check, Question};
use super::{Ci, InitError, Options, TargetKind, TokenSource, Vars};
use crate::config::{AwsSnowflakeTarget, Config, EnvConfig, Secret, SecretRef, Target, rules};
use crate::snowflake::connection::{self, Auth, Connection, Defined, NewConnection, SecretText};

/// Everything the files are made from.
#[derive(Debug, Clone)]
pub(crate) struct Answers {
    /// `[project] name`.
    pub project: String,
    /// The environment written.
    pub env: String,
    /// Its target.
    pub target: TargetKind,
    /// The cloud settings (aws-snowflake only).
    pub cloud: Option<Cloud>,
    /// Where the X token is read from.
    pub token: TokenSource,
    /// `extract.query`.
    pub query: String,
    /// `extract.schedule` (None: leave the file's value, or the default).
    pub schedule: Option<String>,
    /// The CI workflow to write.
    pub ci: Ci,
    /// A Snowflake connection to add to the user's connections file.
    pub new_connection: Option<NewConnection>,
    /// Problems the user chose to fix later.
    pub warnings: Vec<String>,
}

/// The aws-snowflake settings of the environment.
#[derive(Debug, Clone)]
pub(crate) struct Cloud {
    /// AWS region.
    pub region: String,
    /// AWS profile (None: the default credential chain).
    pub aws_profile: Option<String>,
    /// Data bucket.
    pub bucket: String,
    /// Snowflake connection name (None: the user's default connection).
    pub snowflake_connection: Option<String>,
    /// Snowflake database.
    pub database: String,
    /// Snowflake warehouse.
    pub warehouse: String,
    /// TARGET_LAG of the dynamic tables.
    pub target_lag: String,
}

/// Asks every question (or takes its preset), running the live checks `options.validate` asks for.
pub(crate) async fn gather(
    options: &Options,
    seed: Option<&Config>,
    var: Vars<'_>,
    ask: &mut dyn Ask,
) -> Result<Answers, InitError> {
    let preset = &options.preset;
    let project_default = seed.map(|c| c.project.clone()).unwrap_or_else(|| project_name_from(&options.dir));
    let q = Question { prompt: "Project name (a-z, 0-9 and -)", flag: "--project" };
    let project = answer(ask, preset.project.as_deref(), q, Some(&project_default), &rules::project_name)?;
    let seed_env = seed.and_then(|c| c.env(None).ok());
    let target = match preset.target {
        Some(target) => target,
        None => pick_target(ask, seed_env)?,
    };
    if target == TargetKind::Local && preset.ci == Some(Ci::GithubActions) {
        return Err(InitError::Usage(
            "--ci github-actions: the workflow plans and deploys an aws-snowflake environment; use --target \
             aws-snowflake, or leave --ci out for the local target"
                .into(),
        ));
    }
    let env_default = match seed_env.filter(|e| e.target.kind() == target.name()) {
        Some(env) => env.name.clone(),
        None if target == TargetKind::Local => "dev".into(),
        None => "prod".into(),
    };
    let q = Question { prompt: "Environment name", flag: "--env" };
    let env = answer(ask, preset.env.as_deref(), q, Some(&env_default), &rules::env_name)?;
    let existing = seed.and_then(|c| c.envs.get(&env));
    let mut answers = Answers {
        project,
        env,
        target,
        cloud: None,
        token: TokenSource::Env(String::new()),
        query: String::new(),
        schedule: None,
        ci: Ci::None,
        new_connection: None,
        warnings: Vec::new(),
    };
    if target == TargetKind::AwsSnowflake {
        let existing = existing.and_then(cloud_of);
        let (cloud, new_connection) = cloud(options, existing, &mut answers, var, ask).await?;
        answers.cloud = Some(cloud);
        answers.new_connection = new_connection;
    }
    answers.token = token(options, seed, target, var, ask, &mut answers.warnings)?;
    let query_default = seed.map(|c| c.extract.query.as_str()).unwrap_or("flixbus");
    let q = Question { prompt: "X recent-search query", flag: "--query" };
    answers.query = answer(ask, preset.query.as_deref(), q, Some(query_default), &check_query)?;
    answers.schedule = schedule(options, seed, target, ask)?;
    answers.ci = ci(options, target, ask)?;
    Ok(answers)
}

/// A preset value (checked, the error naming its flag), else the question.
fn answer(
    ask: &mut dyn Ask,
    preset: Option<&str>,
    q: Question,
    default: Option<&str>,
    check: Check,
) -> Result<String, InitError> {
    match preset {
        Some(value) => {
            check(value).map_err(|message| InitError::Invalid { flag: q.flag, message })?;
            Ok(value.to_string())
        }
        None => ask.text(&q, default, check),
    }
}

fn pick_target(ask: &mut dyn Ask, seed_env: Option<&EnvConfig>) -> Result<TargetKind, InitError> {
    let items = [
        "local: a directory lake and DuckDB on this machine, no accounts needed".to_string(),
        "aws-snowflake: S3, Lambda and Snowflake".to_string(),
    ];
    let default = usize::from(seed_env.is_some_and(|e| matches!(e.target, Target::AwsSnowflake(_))));
    let q = Question { prompt: "Where should the pipeline run?", flag: "--target" };
    Ok(if ask.select(&q, &items, default)? == 0 { TargetKind::Local } else { TargetKind::AwsSnowflake })
}

fn cloud_of(env: &EnvConfig) -> Option<&AwsSnowflakeTarget> {
    match &env.target {
        Target::AwsSnowflake(cloud) => Some(cloud),
        Target::Local(_) => None,
    }
}

/// The aws-snowflake questions: AWS identity, bucket, Snowflake connection, database, warehouse.
async fn cloud(
    options: &Options,
    existing: Option<&AwsSnowflakeTarget>,
    answers: &mut Answers,
    var: Vars<'_>,
    ask: &mut dyn Ask,
) -> Result<(Cloud, Option<NewConnection>), InitError> {
    let preset = &options.preset;
    let (aws_profile, region, session) =
        aws_identity(options, existing, &answers.env, var, ask, &mut answers.warnings).await?;
    let bucket_default =
        existing.map(|c| c.bucket.clone()).unwrap_or_else(|| format!("{}-{}-tweets", answers.project, answers.env));
    let bucket =
        bucket(ask, preset.bucket.as_deref(), &bucket_default, session.as_ref(), &mut answers.warnings).await?;
    let (snowflake_connection, new_connection, resolved) =
        snowflake(options, existing, &answers.project, var, ask, &mut answers.warnings).await?;
    let from = |pick: fn(&Connection) -> Option<&String>| resolved.as_ref().and_then(pick).cloned();
    let database_default = existing
        .map(|c| c.database.clone())
        .or_else(|| from(|c| c.database.as_ref()))
        .unwrap_or_else(|| answers.project.replace('-', "_").to_uppercase());
    let q = Question { prompt: "Snowflake database", flag: "--database" };
    let database = answer(ask, preset.database.as_deref(), q, Some(&database_default), &rules::identifier)?;
    let warehouse_default = existing
        .map(|c| c.warehouse.clone())
        .or_else(|| from(|c| c.warehouse.as_ref()))
        .unwrap_or_else(|| "COMPUTE_WH".into());
    let q = Question { prompt: "Snowflake warehouse for the models", flag: "--snowflake-warehouse" };
    let warehouse =
        answer(ask, preset.snowflake_warehouse.as_deref(), q, Some(&warehouse_default), &rules::identifier)?;
    let target_lag = match &preset.target_lag {
        Some(lag) => rules::target_lag(lag)
            .map(|()| lag.clone())
            .map_err(|message| InitError::Invalid { flag: "--target-lag", message })?,
        None => existing.map(|c| c.target_lag.clone()).unwrap_or_else(|| "1 hour".into()),
    };
    let cloud = Cloud { region, aws_profile, bucket, snowflake_connection, database, warehouse, target_lag };
    Ok((cloud, new_connection))
}

/// The AWS profile and region, checked with STS; a person may pick again or continue.
async fn aws_identity(
    options: &Options,
    existing: Option<&AwsSnowflakeTarget>,
    env: &str,
    var: Vars<'_>,
    ask: &mut dyn Ask,
    warnings: &mut Vec<String>,
) -> Result<(Option<String>, String, Option<crate::aws::Session>), InitError> {
    let profiles = crate::aws::profiles::list().await.unwrap_or_else(|e| {
        warnings.push(format!("the AWS profiles could not be read: {e}"));
        Vec::new()
    });
    let (mut preset_profile, mut preset_region) = (options.preset.aws_profile.clone(), options.preset.region.clone());
    loop {
        let profile = match preset_profile.take() {
            Some(name) => Some(name),
            None => pick_profile(ask, &profiles, existing, var)?,
        };
        let of_profile = profiles.iter().find(|p| Some(&p.name) == profile.as_ref()).and_then(|p| p.region.clone());
        let region_default = existing
            .and_then(|c| c.region.clone())
            .or(of_profile)
            .or_else(|| var("AWS_REGION"))
            .or_else(|| var("AWS_DEFAULT_REGION"));
        let q = Question { prompt: "AWS region", flag: "--region" };
        let region = answer(ask, preset_region.take().as_deref(), q, region_default.as_deref(), &rules::region)?;
        if !options.validate {
            return Ok((profile, region, None));
        }
        ask.say("checking the AWS credentials (STS GetCallerIdentity)…");
        match crate::aws::Session::connect(env, profile.as_deref(), Some(region.as_str()), &[]).await {
            Ok(session) => {
                ask.say(&format!("✓ AWS account {} in {}", session.account_id, session.region));
                return Ok((profile, region, Some(session)));
            }
            Err(e) if !ask.interactive() => return Err(InitError::Aws(e)),
            Err(e) => {
                if !pick_again(ask, &e.to_string())? {
                    warnings.push(format!("the AWS credentials were not accepted: {e}"));
                    return Ok((profile, region, None));
                }
            }
        }
    }
}

/// The bucket's name, checked live when the AWS identity was: S3 names are global, so a name
/// another account holds would only fail at the first deploy.
async fn bucket(
    ask: &mut dyn Ask,
    mut preset: Option<&str>,
    default: &str,
    session: Option<&crate::aws::Session>,
    warnings: &mut Vec<String>,
) -> Result<String, InitError> {
    loop {
        let q = Question { prompt: "S3 bucket for the raw tweets (deploy creates it)", flag: "--bucket" };
        let bucket = answer(ask, preset.take(), q, Some(default), &rules::bucket_name)?;
        let Some(session) = session else { return Ok(bucket) };
        let found = session.clients.s3.head_bucket().bucket(&bucket).send().await;
        let status = match &found {
            Ok(_) => 200,
            Err(e) => e.raw_response().map_or(0, |r| r.status().as_u16()),
        };
        let problem = match status {
            404 => {
                ask.say(&format!("✓ bucket {bucket} is free: deploy creates it"));
                return Ok(bucket);
            }
            200 => {
                ask.say(&format!("✓ bucket {bucket} is in this account: deploy adopts it and sets its protections"));
                return Ok(bucket);
            }
            301 | 403 => format!(
                "bucket {bucket} exists but not for these credentials (another account holds it, or another \
                 region): S3 names are global, pick another"
            ),
            _ => {
                let why = found.err().map(|e| crate::aws::error_message(&e)).unwrap_or_default();
                warnings.push(format!("bucket {bucket} could not be checked: {why}"));
                return Ok(bucket);
            }
        };
        if !ask.interactive() {
            return Err(InitError::Invalid { flag: "--bucket", message: problem });
        }
        ask.say(&format!("✗ {problem}"));
    }
}

const DEFAULT_CHAIN: &str = "none: the default credential chain (environment variables, SSO, instance role)";

fn pick_profile(
    ask: &mut dyn Ask,
    profiles: &[crate::aws::profiles::Profile],
    existing: Option<&AwsSnowflakeTarget>,
    var: Vars<'_>,
) -> Result<Option<String>, InitError> {
    let mut items: Vec<String> = profiles
        .iter()
        .map(|p| match &p.region {
            Some(region) => format!("{} ({region})", p.name),
            None => p.name.clone(),
        })
        .collect();
    items.push(DEFAULT_CHAIN.into());
    let wanted = existing.and_then(|c| c.aws_profile.clone()).or_else(|| var("AWS_PROFILE"));
    let default = wanted.and_then(|w| profiles.iter().position(|p| p.name == w)).unwrap_or(0);
    let q = Question { prompt: "AWS profile (from ~/.aws)", flag: "--aws-profile" };
    let pick = ask.select(&q, &items, default)?;
    Ok(profiles.get(pick).map(|p| p.name.clone()))
}

/// Asks what to do after a failed live check: true to pick again, false to continue.
fn pick_again(ask: &mut dyn Ask, problem: &str) -> Result<bool, InitError> {
    ask.say(&format!("✗ {problem}"));
    let items = ["pick again".to_string(), "continue anyway (fix it before deploying)".to_string()];
    let q = Question { prompt: "The check failed. What now?", flag: "--no-validate" };
    Ok(ask.select(&q, &items, 0)? == 0)
}

/// What the user picked for Snowflake.
enum Pick {
    Existing(String),
    Create(Option<String>),
    Nothing,
}

/// The chosen connection's name, a connection to create, and the resolved connection (for defaults).
type SnowflakeChoice = (Option<String>, Option<NewConnection>, Option<Connection>);

/// Picks an existing Snowflake connection or describes a new one, checked by
/// [`validate_snowflake_connection`]; a person may pick again or continue.
async fn snowflake(
    options: &Options,
    existing: Option<&AwsSnowflakeTarget>,
    project: &str,
    var: Vars<'_>,
    ask: &mut dyn Ask,
    warnings: &mut Vec<String>,
) -> Result<SnowflakeChoice, InitError> {
    let preset = &options.preset;
    let mut preset_name = preset.snowflake_connection.clone();
    let mut create_preset = preset.snowflake_account.is_some();
    loop {
        let defined = connection::list_names(var).unwrap_or_else(|e| {
            warnings.push(format!("the Snowflake connections could not be read: {e}"));
            Defined { names: Vec::new(), default: "default".into(), dir: PathBuf::new() }
        });
        let pick = match (preset_name.take(), std::mem::take(&mut create_preset)) {
            (name, true) => Pick::Create(name),
            (Some(name), false) => Pick::Existing(name),
            (None, false) => pick_connection(options, ask, &defined, existing)?,
        };
        let (name, new, resolved) = match pick {
            Pick::Nothing => {
                warnings.push(format!(
                    "no Snowflake connection is defined in {}: add one (`snow connection add`, or init --snowflake-account …) \
                     and set snowflake_connection before deploying",
                    defined.dir.display()
                ));
                return Ok((None, None, None));
            }
            Pick::Existing(name) => {
                let resolved = connection::resolve(Some(&name), var).map_err(|e| e.to_string());
                (name, None, resolved)
            }
            Pick::Create(name) => {
                let new = describe_connection(options, ask, name, &defined, project)?;
                let resolved = Ok(as_connection(&new, var));
                (new.name.clone(), Some(new), resolved)
            }
        };
        if !options.validate {
            return Ok((Some(name), new, resolved.ok()));
        }
        let checked = match resolved.and_then(|c| validate_snowflake_connection(&c).map(|()| c)) {
            // A connection being created has a key Snowflake does not know yet: no sign-in.
            Ok(c) if new.is_none() => sign_in(&c).await.map(|()| c),
            other => other,
        };
        match checked {
            Ok(c) => {
                ask.say(&format!(
                    "✓ Snowflake connection `{name}`: account {}, user {}, {}",
                    c.account,
                    c.user,
                    auth_of(&c)
                ));
                return Ok((Some(name), new, Some(c)));
            }
            Err(problem) if !ask.interactive() => return Err(InitError::Snowflake(problem)),
            Err(problem) => {
                if !pick_again(ask, &problem)? {
                    warnings.push(format!("Snowflake connection `{name}`: {problem}"));
                    return Ok((Some(name), new, None));
                }
            }
        }
    }
}

const CREATE: &str = "create a new connection (key pair)";

fn pick_connection(
    options: &Options,
    ask: &mut dyn Ask,
    defined: &Defined,
    existing: Option<&AwsSnowflakeTarget>,
) -> Result<Pick, InitError> {
    if defined.names.is_empty() && !ask.interactive() {
        if options.validate {
            return Err(InitError::Snowflake(format!(
                "none is defined in {}; pass --snowflake-connection NAME, or create one with --snowflake-account, \
                 --snowflake-user and --snowflake-private-key-file",
                defined.dir.display()
            )));
        }
        return Ok(Pick::Nothing);
    }
    let mut items = defined.names.clone();
    items.push(CREATE.into());
    let wanted = existing.and_then(|c| c.snowflake_connection.clone()).unwrap_or_else(|| defined.default.clone());
    let default = defined.names.iter().position(|n| *n == wanted).unwrap_or(0);
    let q = Question { prompt: "Snowflake connection (from connections.toml)", flag: "--snowflake-connection" };
    let pick = ask.select(&q, &items, default)?;
    Ok(match defined.names.get(pick) {
        Some(name) => Pick::Existing(name.clone()),
        None => Pick::Create(None),
    })
}

/// Asks for a new key-pair connection: name, account, user and key file (never the key or a password).
fn describe_connection(
    options: &Options,
    ask: &mut dyn Ask,
    name: Option<String>,
    defined: &Defined,
    project: &str,
) -> Result<NewConnection, InitError> {
    let preset = &options.preset;
    let taken = |s: &str| match defined.names.iter().any(|n| n == s) {
        true => Err(format!("`{s}` already exists; pick it instead, or choose another name")),
        false => check_connection_name(s),
    };
    let q = Question { prompt: "Name of the new Snowflake connection", flag: "--snowflake-connection" };
    let name = answer(ask, name.as_deref(), q, Some(project), &taken)?;
    let q = Question { prompt: "Snowflake account identifier (orgname-accountname)", flag: "--snowflake-account" };
    let account = answer(ask, preset.snowflake_account.as_deref(), q, None, &check_account)?;
    let q = Question { prompt: "Snowflake user flixops signs in as", flag: "--snowflake-user" };
    let user = answer(ask, preset.snowflake_user.as_deref(), q, None, &check_user)?;
    ask.say(
        "auth method: key pair (authenticator = SNOWFLAKE_JWT); the key file's path is stored, never the key, and \
         an encrypted key's passphrase stays in SNOWFLAKE_PRIVATE_KEY_FILE_PWD",
    );
    let validate = options.validate;
    let key_check = move |s: &str| match validate {
        // The passphrase of an encrypted key is checked with the whole connection, after this prompt.
        true => check_key_file(&absolute(s), true),
        false => non_empty(s),
    };
    let q = Question { prompt: "Private key file (PKCS#8 PEM, e.g. rsa_key.p8)", flag: "--snowflake-private-key-file" };
    let preset_key = preset.snowflake_private_key_file.as_ref().map(|p| p.display().to_string());
    let key = answer(ask, preset_key.as_deref(), q, None, &key_check)?;
    Ok(NewConnection { name, account, user, private_key_file: absolute(&key) })
}

/// The connection a new entry will resolve to, for the same checks an existing one gets.
fn as_connection(new: &NewConnection, var: Vars<'_>) -> Connection {
    let specific = format!("SNOWFLAKE_CONNECTIONS_{}_PRIVATE_KEY_FILE_PWD", new.name.to_uppercase());
    let passphrase = var(&specific).or_else(|| var("SNOWFLAKE_PRIVATE_KEY_FILE_PWD"));
    Connection {
        name: new.name.clone(),
        account: new.account.clone(),
        user: new.user.clone(),
        auth: Auth::KeyPair {
            key_file: new.private_key_file.clone(),
            passphrase: passphrase.map(|p| SecretText(Secret::new(p))),
        },
        host: None,
        port: None,
        protocol: None,
        role: None,
        warehouse: None,
        database: None,
        source: "a new connection".into(),
    }
}

fn auth_of(c: &Connection) -> String {
    match &c.auth {
        Auth::KeyPair { key_file, .. } => format!("key pair {}", key_file.display()),
        Auth::Password(_) => "password".into(),
    }
}

/// Signs in with an existing connection, as deploy will (30 s at most).
async fn sign_in(c: &Connection) -> Result<(), String> {
    let attempt = tokio::time::timeout(std::time::Duration::from_secs(30), crate::snowflake::Client::connect(c));
    match attempt.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("Snowflake connection `{}`: no answer within 30 s", c.name)),
    }
}

/// Checks that a Snowflake connection is usable before signing in: it names an account and a
/// user, and it signs in with a password or with a key pair whose key file is a readable PEM
/// private key (an encrypted key also needs its passphrase in the environment). The wizard then
/// signs in with an existing connection ([`sign_in`]).
pub fn validate_snowflake_connection(c: &Connection) -> Result<(), String> {
    if c.account.trim().is_empty() {
        return Err(format!("`{}` ({}): `account` is empty", c.name, c.source));
    }
    if c.user.trim().is_empty() {
        return Err(format!("`{}` ({}): `user` is empty", c.name, c.source));
    }
    match &c.auth {
        Auth::Password(_) => Ok(()),
        Auth::KeyPair { key_file, passphrase } => check_key_file(&expand_home(key_file), passphrase.is_some()),
    }
}

/// A readable PEM private key; an encrypted one only with a passphrase.
fn check_key_file(path: &Path, has_passphrase: bool) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("private key file {}: cannot read it ({e})", path.display()))?;
    if !text.contains("PRIVATE KEY-----") {
        return Err(format!(
            "private key file {}: not a PEM private key; make one with `openssl genrsa 2048 | openssl pkcs8 -topk8 \
             -nocrypt -out rsa_key.p8` and register its public key with ALTER USER … SET RSA_PUBLIC_KEY",
            path.display()
        ));
    }
    if text.contains("BEGIN ENCRYPTED PRIVATE KEY") && !has_passphrase {
        return Err(format!(
            "private key file {} is encrypted: export SNOWFLAKE_PRIVATE_KEY_FILE_PWD with its passphrase",
            path.display()
        ));
    }
    Ok(())
}

fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// A typed path as stored: `~` expanded, relative paths made absolute against the working directory.
fn absolute(typed: &str) -> PathBuf {
    let path = expand_home(Path::new(typed.trim()));
    if path.is_absolute() { path } else { std::env::current_dir().unwrap_or_default().join(path) }
}

/// Where the X token is read from; the value itself is never read here.
fn token(
    options: &Options,
    seed: Option<&Config>,
    target: TargetKind,
    var: Vars<'_>,
    ask: &mut dyn Ask,
    warnings: &mut Vec<String>,
) -> Result<TokenSource, InitError> {
    let existing = seed.map(|c| &c.extract.bearer_token);
    let source = match &options.preset.token {
        Some(TokenSource::Env(name)) => {
            TokenSource::Env(answer(ask, Some(name.as_str()), env_question(), None, &rules::env_var_name)?)
        }
        Some(TokenSource::SecretArn(arn)) => {
            TokenSource::SecretArn(answer(ask, Some(arn.as_str()), arn_question(), None, &check_arn)?)
        }
        None => ask_token(ask, existing)?,
    };
    match &source {
        TokenSource::Env(name) if target == TargetKind::Local && var(name.as_str()).is_none() => {
            warnings.push(format!(
                "{name} is not set in this shell: export it before `flixops run` (init never reads or stores its value)"
            ))
        }
        TokenSource::SecretArn(_) if target == TargetKind::AwsSnowflake => ask.say(
            "the Lambda reads the token from the secret `flixops deploy` creates: after deploying, store it with \
             `flixops secrets set`",
        ),
        TokenSource::SecretArn(_) => ask.say("store the token in that secret yourself; init never handles its value"),
        _ => {}
    }
    Ok(source)
}

fn env_question() -> Question<'static> {
    Question { prompt: "Environment variable holding the token", flag: "--token-env" }
}

fn arn_question() -> Question<'static> {
    Question { prompt: "Secrets Manager secret ARN holding the token", flag: "--token-secret-arn" }
}

fn ask_token(ask: &mut dyn Ask, existing: Option<&SecretRef>) -> Result<TokenSource, InitError> {
    let items = [
        "an environment variable (the value is never written anywhere)".to_string(),
        "an AWS Secrets Manager secret".to_string(),
    ];
    let (default, env_default, arn_default) = match existing {
        Some(SecretRef::SecretsManager(arn)) => (1, "X_BEARER_TOKEN".to_string(), Some(arn.clone())),
        Some(SecretRef::Env(name)) => (0, name.clone(), None),
        None => (0, "X_BEARER_TOKEN".to_string(), None),
    };
    let q = Question { prompt: "Where is the X API bearer token?", flag: "--token-env or --token-secret-arn" };
    Ok(match ask.select(&q, &items, default)? {
        0 => TokenSource::Env(ask.text(&env_question(), Some(&env_default), &rules::env_var_name)?),
        _ => TokenSource::SecretArn(ask.text(&arn_question(), arn_default.as_deref(), &check_arn)?),
    })
}

/// The schedule: asked for the cloud target; locally only a flag changes it.
fn schedule(
    options: &Options,
    seed: Option<&Config>,
    target: TargetKind,
    ask: &mut dyn Ask,
) -> Result<Option<String>, InitError> {
    let preset = options.preset.schedule.as_deref();
    let q = Question { prompt: "Extraction schedule (EventBridge rate(…) or cron(…))", flag: "--schedule" };
    match (target, preset) {
        (TargetKind::Local, None) => Ok(None),
        (TargetKind::Local, Some(_)) => answer(ask, preset, q, None, &rules::schedule).map(Some),
        (TargetKind::AwsSnowflake, _) => {
            let default = seed.map(|c| c.extract.schedule.as_str()).unwrap_or("rate(1 hour)");
            answer(ask, preset, q, Some(default), &rules::schedule).map(Some)
        }
    }
}

fn ci(options: &Options, target: TargetKind, ask: &mut dyn Ask) -> Result<Ci, InitError> {
    if let Some(ci) = options.preset.ci {
        return Ok(ci);
    }
    if target == TargetKind::Local {
        return Ok(Ci::None);
    }
    let items = [
        "none".to_string(),
        "GitHub Actions: plan on pull requests, deploy + doctor on main (.github/workflows/flixops.yml)".to_string(),
    ];
    let q = Question { prompt: "CI workflow", flag: "--ci" };
    Ok(if ask.select(&q, &items, 0)? == 0 { Ci::None } else { Ci::GithubActions })
}

/// A project name from the directory's name, or `flixops-project` when it cannot be one.
pub(crate) fn project_name_from(dir: &Path) -> String {
    let raw = dir.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let mapped: String =
        raw.chars().map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' }).collect();
    let trimmed = mapped.trim_start_matches(|c: char| !c.is_ascii_lowercase()).trim_end_matches('-');
    let name: String = trimmed.chars().take(40).collect::<String>().trim_end_matches('-').to_string();
    if crate::config::is_project_name(&name) { name } else { "flixops-project".into() }
}

fn rule(ok: bool, message: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(message.to_string()) }
}

fn non_empty(s: &str) -> Result<(), String> {
    rule(!s.trim().is_empty(), "an answer is needed")
}

fn check_arn(s: &str) -> Result<(), String> {
    rule(
        s.starts_with("arn:aws:secretsmanager:") && s.len() > 30,
        "a Secrets Manager ARN starts with arn:aws:secretsmanager:",
    )
}

fn check_query(s: &str) -> Result<(), String> {
    rule(!s.trim().is_empty() && s.chars().count() <= 512, "the query must be 1-512 characters")
}

fn check_connection_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    rule(ok, "use letters, digits, _ and -")
}

fn check_account(s: &str) -> Result<(), String> {
    let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    rule(ok, "an account identifier looks like myorg-myaccount")
}

fn check_user(s: &str) -> Result<(), String> {
    rule(
        !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"'),
        "a user name has no spaces or quotes",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_come_from_the_directory() {
        assert_eq!(project_name_from(Path::new("/x/Acme Tweets")), "acme-tweets");
        assert_eq!(project_name_from(Path::new("/x/2024_data")), "data");
        assert_eq!(project_name_from(Path::new("/")), "flixops-project");
    }

    #[test]
    fn answers_are_checked_like_the_config_checks_them() {
        assert!(check_arn("arn:aws:secretsmanager:eu-west-1:123456789012:secret:x").is_ok());
        let arn = Err("a Secrets Manager ARN starts with arn:aws:secretsmanager:".to_string());
        assert_eq!(check_arn("AAAA-not-an-arn"), arn);
    }

    fn connection(auth: Auth) -> Connection {
        Connection {
            name: "prod".into(),
            account: "acme-prod".into(),
            user: "FLIXOPS".into(),
            auth,
            host: None,
            port: None,
            protocol: None,
            role: None,
            warehouse: None,
            database: None,
            source: "test".into(),
        }
    }

    #[test]
    fn a_connection_needs_a_readable_key_and_a_passphrase_for_an_encrypted_one() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("rsa_key.p8");
        let key_pair = |passphrase: Option<&str>| Auth::KeyPair {
            key_file: key.clone(),
            passphrase: passphrase.map(|p| SecretText(Secret::new(p.into()))),
        };
        let err = validate_snowflake_connection(&connection(key_pair(None))).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n").unwrap();
        assert_eq!(validate_snowflake_connection(&connection(key_pair(None))), Ok(()));
        std::fs::write(&key, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----END ENCRYPTED PRIVATE KEY-----\n")
            .unwrap();
        let err = validate_snowflake_connection(&connection(key_pair(None))).unwrap_err();
        assert!(err.contains("SNOWFLAKE_PRIVATE_KEY_FILE_PWD"), "{err}");
        assert_eq!(validate_snowflake_connection(&connection(key_pair(Some("pw")))), Ok(()));
        std::fs::write(&key, "not a key").unwrap();
        assert!(validate_snowflake_connection(&connection(key_pair(None))).unwrap_err().contains("not a PEM"));
        let mut no_user = connection(key_pair(Some("pw")));
        no_user.user = " ".into();
        assert!(validate_snowflake_connection(&no_user).unwrap_err().contains("`user` is empty"));
    }
}
