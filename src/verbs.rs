//! One function per verb: resolve its inputs, call the library, print its report. Verbs that ask
//! before changing anything ask here, on the terminal.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use flixops::Error;
use flixops::deploy;
use flixops::output::{Format, Render};
use flixops::pipeline::{self, Input};

use crate::args::{Missing, Resolved};
use crate::cli::{self, ExportKind};

pub async fn extract(args: &Resolved, cli: cli::ExtractArgs) -> Result<ExitCode, Error> {
    let missing = if cli.to.is_some() { Missing::LocalDefaults } else { Missing::Fail };
    let (mut config, env) = args.project(missing)?;
    config.extract.query = cli.query.unwrap_or(config.extract.query);
    config.extract.max_pages = cli.max_pages.or(config.extract.max_pages);
    let input = cli.replay.map(Input::Replay).unwrap_or(Input::Api);
    args.print(&pipeline::extract(&config, &env, &input, cli.to).await?)
}

pub async fn backfill(args: &Resolved, cli: cli::BackfillArgs) -> Result<ExitCode, Error> {
    use flixops::extract::backfill::Request;
    let (config, env) = args.project(Missing::Fail)?;
    let request = Request { since: cli.since, until: cli.until, max_posts: cli.max_posts, abandon: cli.abandon };
    let prepared = pipeline::backfill(&config, &env, &request).await?;
    if cli.dry_run {
        return args.print(&prepared.quote);
    }
    if args.output.format == Format::Human && !(args.output.quiet && cli.yes) {
        prepared.quote.write_human(&mut std::io::stderr().lock()).ok();
    }
    if !cli.yes && !std::io::stdin().is_terminal() {
        let why = "nothing bought: stdin is not a terminal, so there is no one to ask; pass --yes to buy the quoted posts, or --dry-run to only quote";
        return Err(Error::Usage(why.into()));
    }
    if !cli.yes {
        approve()?;
    }
    args.print(&prepared.run().await?)
}

pub async fn run(args: &Resolved, cli: cli::RunArgs) -> Result<ExitCode, Error> {
    let (config, env) = args.project(if cli.demo { Missing::LocalDefaults } else { Missing::Fail })?;
    let input = match (cli.demo, cli.replay) {
        (true, _) => Input::Demo,
        (false, Some(path)) => Input::Replay(path),
        (false, None) => Input::Api,
    };
    args.print(&flixops::local::pipeline::run(&config, &env, &input).await?)
}

pub fn transform(args: &Resolved) -> Result<ExitCode, Error> {
    let (config, env) = args.project(Missing::Fail)?;
    args.print(&flixops::local::pipeline::transform(&config, &env)?)
}

/// Without flixops.toml, the project `run --demo` made here.
pub async fn report(args: &Resolved, cli: cli::ReportArgs) -> Result<ExitCode, Error> {
    let (_, env) = args.project(Missing::LocalDefaults)?;
    let options = flixops::report::Options { days: cli.days, out: cli.out };
    let written = flixops::report::generate(&env, &options).await?;
    if let Some(e) = cli.open.then(|| flixops::report::open_in_browser(&written.path).err()).flatten() {
        eprintln!("warning: could not open a browser ({e}); open {} yourself", written.path.display());
    }
    args.print(&written)
}

pub fn compile(args: &Resolved, cli: cli::CompileArgs) -> Result<ExitCode, Error> {
    let (config, env) = args.project(Missing::LocalDefaults)?;
    args.print(&flixops::models::compile(&config, &env, &cli.models)?)
}

pub async fn plan(args: &Resolved, cli: cli::PlanArgs) -> Result<ExitCode, Error> {
    let (config, env) = args.project(Missing::Fail)?;
    let prepared = deploy::prepare(&config, &env, cli.stack.artifact.as_deref(), &[]).await?;
    if let Some(path) = &cli.out {
        prepared.save(&config, &env)?.write(path)?;
    }
    let code = args.print(&flixops::plan::Shown { saved_to: cli.out.as_deref(), ..prepared.shown("plan") })?;
    if cli.detailed_exitcode && !prepared.plan.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(code)
}

/// Without a plan file: plan, show, ask, apply. With one: read it, plan again for its environment,
/// refuse if anything moved since it was made, then apply without asking (it was reviewed).
pub async fn deploy(args: &Resolved, cli: cli::DeployArgs) -> Result<ExitCode, Error> {
    use flixops::plan::saved::{PlanFileError, SavedPlan};
    let saved = cli.plan.as_deref().map(SavedPlan::read).transpose()?;
    let env_name = match (&saved, args.env_flag(), cli.plan.as_deref()) {
        (Some(saved), Some(asked), Some(path)) if asked != saved.env => {
            let (planned, asked) = (saved.env.clone(), asked.to_string());
            return Err(PlanFileError::OtherEnv { path: path.to_path_buf(), planned, asked }.into());
        }
        (Some(saved), _, _) => Some(saved.env.as_str()),
        (None, flag, _) => flag,
    };
    let (config, env) = args.project_in(Missing::Fail, env_name)?;
    let artifact = cli.stack.artifact.as_deref();
    let prepared = match &saved {
        Some(saved) => deploy::prepare_saved(&config, &env, artifact, saved).await?,
        None => deploy::prepare(&config, &env, artifact, &[]).await?,
    };
    if let (Some(saved), Some(path)) = (&saved, &cli.plan) {
        prepared.check_saved(saved, path, &config, &env)?;
    }
    confirm(args, &prepared, "deploy", cli.yes || saved.is_some())?;
    args.print(&prepared.apply().await?)
}

pub async fn destroy(args: &Resolved, cli: cli::DestroyArgs) -> Result<ExitCode, Error> {
    let (config, env) = args.project(Missing::Fail)?;
    let prepared = deploy::prepare_destroy_all(&config, &env, cli.purge_data).await?;
    confirm(args, &prepared, "destroy", cli.yes)?;
    args.print(&prepared.destroy().await?)
}

pub async fn set_secret(args: &Resolved) -> Result<ExitCode, Error> {
    let (config, env) = args.project(Missing::Fail)?;
    let version = deploy::set_token(&config, &env, &read_token()).await?;
    args.print_with(&serde_json::json!({ "version_id": version }), false, |w| {
        writeln!(w, "stored a new version of the X bearer token ({version}); the extractor uses it on its next run")
    })
}

pub async fn init(args: &Resolved, cli: cli::InitArgs) -> Result<ExitCode, Error> {
    let options = args.init_options(cli)?;
    args.print(&flixops::init::run(&options, &|key| std::env::var(key).ok()).await?)
}

pub async fn doctor(args: &Resolved, cli: cli::DoctorArgs) -> Result<ExitCode, Error> {
    let (config, env) = args.project(Missing::Fail)?;
    let skip = flixops::doctor::Skip { token: cli.skip.contains(&cli::SkipArg::Token) };
    let mut options = flixops::doctor::Options::new(cli.stack.artifact.as_deref(), skip);
    options.canary = cli.canary.then_some(cli.canary_timeout);
    options.limit = flixops::timeouts::Timeouts::from_process_env()?.check;
    let report = flixops::doctor::run(&config, &env, &options).await;
    let code = args.print(&report)?;
    Ok(if report.failed(cli.strict) { ExitCode::FAILURE } else { code })
}

/// The log lines are the command's result: on stdout, one per entry. JSON: one document, or with
/// --follow one object per line; --follow polls every 2 s until interrupted.
pub async fn logs(args: &Resolved, cli: cli::LogsArgs) -> Result<ExitCode, Error> {
    let (config, env) = args.project(Missing::Fail)?;
    let request = flixops::logs::Request { since: cli.since, errors: cli.errors };
    let mut logs = flixops::logs::open(&config, &env, request).await?;
    let json = args.output.format == Format::Json;
    let mut all = Vec::new();
    loop {
        let entries = logs.next().await?;
        let mut out = std::io::stdout().lock();
        let written = entries.iter().try_for_each(|entry| match (json, cli.follow) {
            (true, true) => writeln!(out, "{}", serde_json::to_string(entry).unwrap_or_default()),
            (true, false) => Ok(()),
            (false, _) => writeln!(out, "{}", entry.line()),
        });
        if let Err(e) = written.and_then(|_| out.flush()) {
            let closed = e.kind() == std::io::ErrorKind::BrokenPipe;
            return Ok(if closed { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        drop(out);
        if !cli.follow {
            all.extend(entries);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    if json {
        return args.print_with(&serde_json::json!({ "source": logs.source(), "events": all }), true, |_| Ok(()));
    }
    if all.is_empty() && !args.output.quiet {
        eprintln!("no entries in {} for that time (widen --since)", logs.source());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn export(args: &Resolved, cli: cli::ExportArgs) -> Result<ExitCode, Error> {
    use flixops::export::{self, Document};
    let what = match cli.what {
        ExportKind::Terraform => {
            let written = export::write_files(&cli.dir, &export::terraform_files(), cli.force)?;
            let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            return args.print_with(&paths, false, |w| {
                paths.iter().try_for_each(|p| writeln!(w, "wrote {p}"))?;
                writeln!(w, "next: see {}/README.md (terraform init && terraform apply)", cli.dir.display())
            });
        }
        ExportKind::Airflow => Document::Airflow,
        ExportKind::GithubActions => {
            Document::GithubActions { branch: cli.branch, from_source: cli.from_source, install: cli.install }
        }
        ExportKind::IamPolicy => Document::IamPolicy { read_only: cli.read_only },
        ExportKind::Policies => Document::Policies,
    };
    let (config, env) = args.project(Missing::Fail)?;
    Ok(emit(&export::document(&config, &env, &what, cli.account_id.as_deref()).await?))
}

/// Writes an exported document to stdout (a closed pipe is not an error).
fn emit(text: &str) -> ExitCode {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: writing output: {e}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

/// Shows the plan on stdout (as `terraform apply` does before asking) and, when it changes
/// something, asks unless `--yes`. With `--output json` the final report holds the plan.
fn confirm(args: &Resolved, prepared: &deploy::Prepared, verb: &str, yes: bool) -> Result<(), Error> {
    if args.output.format == Format::Human {
        args.print(&prepared.shown(verb))?;
    }
    if prepared.plan.is_empty() || yes { Ok(()) } else { approve() }
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
fn read_token() -> flixops::config::Secret {
    let text = if std::io::stdin().is_terminal() {
        dialoguer::Password::new().with_prompt("X API bearer token").interact().unwrap_or_default()
    } else {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).ok();
        text
    };
    flixops::config::Secret::new(text.trim().to_string())
}
