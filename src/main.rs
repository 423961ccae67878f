//! The `flixops` binary: parses arguments, resolves config, calls the library, prints, and maps
//! errors to the exit codes documented under `--help`.

mod cli;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use flixops::Error;
use flixops::config::{Config, ConfigError, EnvConfig};
use flixops::output::{Format, Output};
use flixops::pipeline::{self, Input};

use cli::{Cli, Command, ExportKind, OutputArg, SecretsCommand};
use flixops::deploy;
use flixops::plan::{render_notes, render_plan};
use std::io::IsTerminal;

/// jemalloc: extraction allocates and frees page-sized buffers on several threads at once, where
/// glibc's malloc cost about 10% more time (bench/extract.sh, side by side) at about the same RSS.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    if flixops::extract::lambda::is_lambda() {
        return serve_lambda();
    }
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    let output = Output { format: if cli.global.output == OutputArg::Json { Format::Json } else { Format::Human } };
    // `plan --detailed-exitcode` reserves 2 for "changes", so every error there exits 1, as in terraform.
    let detailed = matches!(&cli.command, Command::Plan(args) if args.detailed_exitcode);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    match runtime.block_on(dispatch(cli, output)) {
        Ok(code) => code,
        Err(error) if detailed => {
            report(&error);
            ExitCode::FAILURE
        }
        Err(error) => report(&error),
    }
}

fn serve_lambda() -> ExitCode {
    init_tracing(0);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    match runtime.block_on(flixops::extract::lambda::serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "flixops=info",
        1 => "flixops=debug",
        _ => "flixops=trace,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}

/// Prints the error chain once and picks the exit code.
fn report(error: &Error) -> ExitCode {
    eprintln!("error: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !error.to_string().contains(&text) {
            eprintln!("  caused by: {text}");
        }
        source = cause.source();
    }
    ExitCode::from(exit_code(error))
}

/// 0 ok, 1 failure, 2 usage (arguments, flixops.toml, --env), 3 cannot connect, 4 X usage cap.
fn exit_code(error: &Error) -> u8 {
    if error.is_usage() {
        2
    } else if error.is_connect() {
        3
    } else if error.is_capped() {
        4
    } else {
        1
    }
}

async fn dispatch(cli: Cli, output: Output) -> Result<ExitCode, Error> {
    let global = &cli.global;
    match cli.command {
        Command::Extract(args) => {
            let mut config = match (&args.to, load_config(global.config.as_deref())) {
                (_, Ok(config)) => config,
                (Some(_), Err(ConfigError::NotFound { .. })) if global.config.is_none() => {
                    Config::local_default(&cwd())
                }
                (_, Err(e)) => return Err(e.into()),
            };
            config.extract.query = args.query.unwrap_or(config.extract.query);
            config.extract.max_pages = args.max_pages.or(config.extract.max_pages);
            let env = config.env(global.env.as_deref())?.clone();
            let input = args.replay.map(Input::Replay).unwrap_or(Input::Api);
            let report = pipeline::extract(&config, &env, &input, args.to).await?;
            print(output, &report, |w| report.write_human(w))
        }
        Command::Backfill(args) => {
            use flixops::extract::backfill::Request;
            let (config, env) = config_and_env(global)?;
            let request =
                Request { since: args.since, until: args.until, max_posts: args.max_posts, abandon: args.abandon };
            let prepared = pipeline::backfill(&config, &env, &request).await?;
            if args.dry_run {
                return print(output, &prepared.quote, |w| prepared.quote.write_human(w));
            }
            if output.format == Format::Human {
                prepared.quote.write_human(&mut std::io::stderr().lock()).ok();
            }
            if !args.yes && !std::io::stdin().is_terminal() {
                let why = "nothing bought: stdin is not a terminal, so there is no one to ask; pass --yes to buy the quoted posts, or --dry-run to only quote";
                return Err(Error::Usage(why.into()));
            }
            if !args.yes {
                approve()?;
            }
            let report = prepared.run().await?;
            print(output, &report, |w| report.write_human(w))
        }
        Command::Run(args) => {
            let config = match load_config(global.config.as_deref()) {
                Ok(config) => config,
                Err(ConfigError::NotFound { .. }) if args.demo && global.config.is_none() => {
                    Config::local_default(&cwd())
                }
                Err(e) => return Err(e.into()),
            };
            let env = config.env(global.env.as_deref())?.clone();
            let input = match (args.demo, args.replay) {
                (true, _) => Input::Demo,
                (false, Some(path)) => Input::Replay(path),
                (false, None) => Input::Api,
            };
            let report = pipeline::run_local(&config, &env, &input).await?;
            print(output, &report, |w| {
                let e = &report.extract;
                writeln!(w, "extract    {} tweets in {} page(s) → {}", e.tweets, e.pages, e.location)?;
                if let Some(reason) = &e.partial {
                    writeln!(w, "  partial: resumes next run ({reason})")?;
                }
                warnings(w, &e.warnings)?;
                transform_lines(w, &report.transform)?;
                writeln!(w, "\nquery it:  duckdb {}", warehouse_path(&env).display())
            })
        }
        Command::Transform => {
            let config = load_config(global.config.as_deref())?;
            let env = config.env(global.env.as_deref())?.clone();
            let report = pipeline::transform_local(&config, &env)?;
            print(output, &report, |w| transform_lines(w, &report))
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "flixops", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => {
            let (config, env) = config_and_env(global)?;
            let prepared = deploy::prepare(&config, &env, args.stack.artifact.as_deref(), &[]).await?;
            let plan = &prepared.plan;
            let code = print(output, plan, |w| render_plan(w, plan, "plan"))?;
            if args.detailed_exitcode && !plan.is_empty() {
                return Ok(ExitCode::from(2));
            }
            Ok(code)
        }
        Command::Deploy(args) => {
            let (config, env) = config_and_env(global)?;
            let prepared = deploy::prepare(&config, &env, args.stack.artifact.as_deref(), &[]).await?;
            if output.format == Format::Human {
                let mut err = std::io::stderr().lock();
                render_plan(&mut err, &prepared.plan, "deploy").ok();
            }
            if !prepared.plan.is_empty() && !args.yes {
                approve()?;
            }
            let report = prepared.apply().await?;
            print(output, &report, |w| {
                let p = &report.plan;
                writeln!(
                    w,
                    "Apply complete! Resources: {} added, {} changed, {} destroyed ({} write calls).",
                    p.add,
                    p.change,
                    p.destroy,
                    report.write_calls.len()
                )?;
                render_notes(w, &report.applied.notes, "Warning")?;
                report.notes.iter().try_for_each(|note| writeln!(w, "note: {note}"))
            })
        }
        Command::Secrets(SecretsCommand::Set) => {
            let (config, env) = config_and_env(global)?;
            let token = read_token()?;
            let version = deploy::set_token(&config, &env, &token).await?;
            print(output, &serde_json::json!({ "version_id": version }), |w| {
                writeln!(
                    w,
                    "stored a new version of the X bearer token ({version}); the extractor uses it on its next run"
                )
            })
        }
        Command::Init(args) => {
            let options = init_options(global, args)?;
            let report = flixops::init::run(&options, &|key| std::env::var(key).ok()).await?;
            print(output, &report, |w| report.write_human(w))
        }
        Command::Destroy(args) => {
            let (config, env) = config_and_env(global)?;
            let prepared = deploy::prepare_destroy_all(&config, &env, args.purge_data).await?;
            let kept = prepared.kept();
            if output.format == Format::Human {
                let mut err = std::io::stderr().lock();
                render_plan(&mut err, &prepared.plan, "destroy").ok();
                for address in &kept {
                    writeln!(err, "  kept: {address} and its data (pass --purge-data to delete them too)").ok();
                }
            }
            if !prepared.plan.is_empty() && !args.yes {
                approve()?;
            }
            let report = prepared.destroy().await?;
            print(output, &report, |w| {
                writeln!(w, "Destroy complete! Resources: {} destroyed.", report.applied.applied.len())
            })
        }
        Command::Doctor(args) => {
            let (config, env) = config_and_env(global)?;
            let skip = flixops::doctor::Skip { token: args.skip.contains(&cli::SkipArg::Token) };
            let mut options = flixops::doctor::Options::new(args.stack.artifact.as_deref(), skip);
            options.canary = args.canary.then_some(args.canary_timeout);
            options.limit = flixops::timeouts::Timeouts::from_process_env()?.check;
            let report = flixops::doctor::run(&config, &env, &options).await;
            let code = print(output, &report, |w| doctor_lines(w, &report))?;
            Ok(if report.failed(args.strict) { ExitCode::FAILURE } else { code })
        }
        Command::Logs(args) => {
            let (config, env) = config_and_env(global)?;
            let request = flixops::logs::Request { since: args.since, errors: args.errors };
            let logs = flixops::logs::open(&config, &env, request).await?;
            print_logs(output, logs, args.follow).await
        }
        Command::Export(args) => export(global, output, args).await,
    }
}

async fn export(global: &cli::Global, output: Output, args: cli::ExportArgs) -> Result<ExitCode, Error> {
    use flixops::export;
    if let ExportKind::Terraform = args.what {
        let written = export::write_files(&args.dir, &export::terraform_files(), args.force)?;
        let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        return print(output, &paths, |w| {
            paths.iter().try_for_each(|p| writeln!(w, "wrote {p}"))?;
            writeln!(w, "next: see {}/README.md (terraform init && terraform apply)", args.dir.display())
        });
    }
    let (config, env) = config_and_env(global)?;
    if let ExportKind::Airflow = args.what {
        return emit(&export::airflow(&config, &env)?);
    }
    let cloud = deploy::cloud_target(&env)?;
    let region_hint = || Error::Usage(format!("set `region` under [env.{}] in {}", env.name, config.path.display()));
    match args.what {
        ExportKind::GithubActions => {
            let region = cloud.region.clone().ok_or_else(region_hint)?;
            emit(&export::github_actions(&env, &region, &args.branch, args.install.as_deref())?)
        }
        _ => {
            let (account, region) = match (&args.account_id, &cloud.region) {
                (Some(id), Some(region)) => (valid_account(id)?, region.clone()),
                _ => {
                    let session = flixops::aws::Session::connect(
                        &env.name,
                        cloud.aws_profile.as_deref(),
                        cloud.region.as_deref(),
                        &[],
                    )
                    .await?;
                    let account = args.account_id.as_deref().map(valid_account).transpose()?;
                    (account.unwrap_or(session.account_id), session.region)
                }
            };
            let scope = flixops::aws::stack::Scope::of(&config, &env, cloud, &account, &region);
            let value = if let ExportKind::IamPolicy = args.what {
                serde_json::from_str(&scope.deployer_policy(args.read_only)).unwrap_or_default()
            } else {
                let principal = "arn:aws:iam::<snowflake-account>:user/<from DESC INTEGRATION>";
                let docs = scope.policies(principal).into_iter();
                serde_json::Value::Object(
                    docs.map(|(k, v)| (k, serde_json::from_str(&v).unwrap_or_default())).collect(),
                )
            };
            emit(&(serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"))
        }
    }
}

fn valid_account(id: &str) -> Result<String, Error> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id.to_string())
    } else {
        Err(Error::Usage(format!("--account-id `{id}`: an AWS account id is 12 digits")))
    }
}

/// Writes an exported artifact to stdout (a closed pipe is not an error).
fn emit(text: &str) -> Result<ExitCode, Error> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: writing output: {e}");
            Ok(ExitCode::FAILURE)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The log lines are the command's result: on stdout, one per entry (JSON: one document, or one
/// object per line with --follow, which polls every 2 s until interrupted).
async fn print_logs(output: Output, mut logs: flixops::logs::Logs, follow: bool) -> Result<ExitCode, Error> {
    let json = output.format == Format::Json;
    let mut all = Vec::new();
    loop {
        let entries = logs.next().await?;
        let mut out = std::io::stdout().lock();
        let written = entries.iter().try_for_each(|entry| match (json, follow) {
            (true, true) => writeln!(out, "{}", serde_json::to_string(entry).unwrap_or_default()),
            (true, false) => Ok(()),
            (false, _) => writeln!(out, "{}", entry.line()),
        });
        if let Err(e) = written.and_then(|_| out.flush()) {
            return Ok(if e.kind() == std::io::ErrorKind::BrokenPipe { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        drop(out);
        if !follow {
            all.extend(entries);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    if json {
        let document = serde_json::json!({ "source": logs.source(), "events": all });
        return print(output, &document, |_| Ok(()));
    }
    if all.is_empty() {
        eprintln!("no entries in {} for that time (widen --since)", logs.source());
    }
    Ok(ExitCode::SUCCESS)
}

fn doctor_lines(w: &mut dyn Write, report: &flixops::doctor::Report) -> std::io::Result<()> {
    use flixops::doctor::Status;
    for check in &report.checks {
        let mark = match check.status {
            Status::Ok => "[✓]",
            Status::Warn => "[!]",
            Status::Fail => "[✗]",
        };
        writeln!(w, "{mark} {:<36} {}", check.name, check.detail)?;
        if let Some(fix) = &check.fix {
            writeln!(w, "    fix: {fix}")?;
        }
    }
    let count = |s: Status| report.checks.iter().filter(|c| c.status == s).count();
    writeln!(w, "\n{} ok, {} warning(s), {} failure(s)", count(Status::Ok), count(Status::Warn), count(Status::Fail))
}

fn config_and_env(global: &cli::Global) -> Result<(Config, EnvConfig), Error> {
    let config = load_config(global.config.as_deref())?;
    let env = config.env(global.env.as_deref())?.clone();
    Ok((config, env))
}

/// Asks like terraform: only `yes` applies; without a terminal, `--yes` is required.
fn approve() -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::NotApproved(
            "not applied: stdin is not a terminal, so there is no one to ask; pass --yes to apply without asking"
                .into(),
        ));
    }
    eprint!("\nDo you want to perform these actions? Only 'yes' will be accepted to approve.\n  Enter a value: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).ok();
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::NotApproved("Apply cancelled; nothing was changed.".into()))
    }
}

/// The token from stdin: hidden prompt on a terminal, else the whole of stdin.
fn read_token() -> Result<flixops::config::Secret, Error> {
    let text = if std::io::stdin().is_terminal() {
        dialoguer::Password::new().with_prompt("X API bearer token").interact().unwrap_or_default()
    } else {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).ok();
        text
    };
    Ok(flixops::config::Secret::new(text.trim().to_string()))
}

/// Resolves `init`'s flags: the project directory and file (`--dir`, else `--config`'s directory, else
/// the working directory) and the preset answers.
fn init_options(global: &cli::Global, args: cli::InitArgs) -> Result<flixops::init::Options, Error> {
    use flixops::init::{Ci, Options, Preset, TargetKind, TokenSource};
    let absolute = |p: PathBuf| (if p.is_absolute() { p } else { cwd().join(p) }).components().collect::<PathBuf>();
    let config = global.config.clone().map(absolute);
    let dir = match (args.dir.map(absolute), &config) {
        (Some(dir), Some(file)) if file.parent() != Some(dir.as_path()) => {
            return Err(Error::Usage(
                "--config names a file outside --dir, but models/ must sit beside the project file; pass one of them"
                    .into(),
            ));
        }
        (Some(dir), _) => dir,
        (None, Some(file)) => file.parent().map(Path::to_path_buf).unwrap_or_else(cwd),
        (None, None) => cwd(),
    };
    let config_file = config.unwrap_or_else(|| dir.join(flixops::config::FILE_NAME));
    let token = match (args.token_env, args.token_secret_arn) {
        (Some(name), _) => Some(TokenSource::Env(name)),
        (None, Some(arn)) => Some(TokenSource::SecretArn(arn)),
        (None, None) => None,
    };
    let preset = Preset {
        project: args.project,
        env: global.env.clone(),
        target: args.target.map(|t| match t {
            cli::InitTarget::Local => TargetKind::Local,
            cli::InitTarget::AwsSnowflake => TargetKind::AwsSnowflake,
        }),
        aws_profile: args.aws_profile,
        region: args.region,
        bucket: args.bucket,
        snowflake_connection: args.snowflake_connection,
        snowflake_account: args.snowflake_account,
        snowflake_user: args.snowflake_user,
        snowflake_private_key_file: args.snowflake_private_key_file,
        database: args.database,
        snowflake_warehouse: args.snowflake_warehouse,
        target_lag: args.target_lag,
        token,
        query: args.query,
        schedule: args.schedule,
        ci: args.ci.map(|c| match c {
            cli::InitCi::None => Ci::None,
            cli::InitCi::GithubActions => Ci::GithubActions,
        }),
    };
    let (interactive, force, validate) = (!args.no_interactive, args.force, !args.no_validate);
    Ok(Options { dir, config_file, interactive, force, validate, preset })
}

fn cwd() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    let path = path.map(Path::to_path_buf).unwrap_or_else(|| cwd().join(flixops::config::FILE_NAME));
    let path = if path.is_absolute() { path } else { cwd().join(path) };
    Config::load(&path)
}

fn warehouse_path(env: &EnvConfig) -> PathBuf {
    match &env.target {
        flixops::config::Target::Local(local) => local.warehouse.clone(),
        flixops::config::Target::AwsSnowflake(_) => PathBuf::new(),
    }
}

fn print<T: serde::Serialize>(
    output: Output,
    value: &T,
    human: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<ExitCode, Error> {
    match output.emit(value, human) {
        // A closed pipe (`flixops … | head`) is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: writing output: {e}");
            Ok(ExitCode::FAILURE)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn warnings(w: &mut dyn Write, list: &[String]) -> std::io::Result<()> {
    list.iter().try_for_each(|note| writeln!(w, "  warning: {note}"))
}

fn transform_lines(w: &mut dyn Write, report: &pipeline::TransformReport) -> std::io::Result<()> {
    let load = &report.load;
    writeln!(
        w,
        "load       {} new file(s), {} rows ({} already loaded)",
        load.files_loaded, load.rows_loaded, load.files_skipped
    )?;
    for m in &report.models {
        let change = match m.change {
            flixops::models::local::ModelChange::Created => "created",
            flixops::models::local::ModelChange::Changed => "changed, rebuilt",
            flixops::models::local::ModelChange::Refreshed => "refreshed",
        };
        writeln!(w, "transform  {:<28} {:>7} rows  {change}", m.model, m.rows)?;
    }
    Ok(())
}
