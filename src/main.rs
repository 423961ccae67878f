//! The `flixops` binary: parses arguments, resolves config, calls the library, prints, and maps
//! errors to the exit codes documented under `--help`.

mod args;
mod cli;
mod verbs;

use std::process::ExitCode;

use std::io::Write;

use clap::{CommandFactory, Parser};
use flixops::Error;
use flixops::output::Format;

use args::Resolved;
use cli::{Cli, Command, SecretsCommand};

/// jemalloc: extraction allocates and frees page-sized buffers on several threads at once, where
/// glibc's malloc cost about 10% more time (bench/extract.sh, side by side) at about the same RSS.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    if flixops::extract::lambda::is_lambda() {
        return serve_lambda();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    init_tracing(cli.global.verbose, cli.global.quiet, flixops::output::stderr_color());
    let args = Resolved::new(&cli.global);
    // `plan --detailed-exitcode` reserves 2 for "changes", so every error there exits 1, as in terraform.
    let detailed = matches!(&cli.command, Command::Plan(args) if args.detailed_exitcode);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    match runtime.block_on(dispatch(cli.command, &args)) {
        Ok(code) => code,
        Err(error) => {
            let code = if detailed { 1 } else { exit_code(&error) };
            report(&error, code, args.output.format);
            ExitCode::from(code)
        }
    }
}

fn serve_lambda() -> ExitCode {
    init_tracing(0, false, false);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    match runtime.block_on(flixops::extract::lambda::serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs on stderr: `-q` errors only, default info, `-v` debug (each resource read and written,
/// each model's SQL), `-vv` trace; `RUST_LOG` overrides. Coloured as `color` says (NO_COLOR,
/// CLICOLOR_FORCE, a terminal).
fn init_tracing(verbose: u8, quiet: bool, color: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "flixops=error",
        (false, 0) => "flixops=info",
        (false, 1) => "flixops=debug",
        _ => "flixops=trace,info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .without_time()
        .init();
}

/// 0 ok, 1 failure, 2 usage or a missing input (arguments, flixops.toml, --env, the X token's
/// variable, a --replay file, a model), 3 cannot connect, 4 X usage cap: the table under `--help`
/// and in the README.
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

/// What to do about a failure the error itself has no fix for, by its exit code.
fn class_fix(code: u8) -> &'static str {
    match code {
        2 => "correct the command line or flixops.toml as the message says (`flixops help` lists the flags)",
        3 => "check the network, the credentials and the endpoint named in the message, then run it again",
        4 => "wait until the X API usage cap resets (see the X developer console), then run it again",
        _ => "fix the cause named in the message, then run the command again",
    }
}

/// Prints the error chain once on stderr and, with `--output json`, one JSON document on stdout.
fn report(error: &Error, code: u8, format: Format) {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(&format!("\n  caused by: {text}"));
        }
        source = cause.source();
    }
    eprintln!("error: {message}");
    if format == Format::Json {
        let fix = error.fix().unwrap_or_else(|| class_fix(code).to_string());
        print_json_error(error.kind(), &message, &fix, code);
    }
}

/// A failure as `--output json` prints it: `{"error": {"kind", "message", "fix", "exit_code"}}`.
#[derive(serde::Serialize)]
struct JsonError<'a> {
    error: JsonErrorBody<'a>,
}

#[derive(serde::Serialize)]
struct JsonErrorBody<'a> {
    kind: &'a str,
    message: &'a str,
    fix: &'a str,
    exit_code: u8,
}

/// One JSON document on stdout for a failure.
fn print_json_error(kind: &str, message: &str, fix: &str, exit_code: u8) {
    let document = JsonError { error: JsonErrorBody { kind, message, fix, exit_code } };
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, &document).map(|()| writeln!(out));
}

/// A command line clap rejects: its message on stderr (and, asked for JSON, on stdout too), exit 2;
/// `--help` and `--version` print and exit 0.
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) || !error.use_stderr() {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let _ = error.print();
    if wants_json(std::env::args().skip(1)) {
        let message = error.render().to_string();
        let message = message.trim().trim_start_matches("error: ");
        print_json_error("usage", message, "see `flixops help` or `flixops <command> --help` for the flags", 2);
    }
    ExitCode::from(2)
}

/// True when the raw arguments ask for `--output json` (`-o json`, `-ojson`, `--output=json`).
fn wants_json(args: impl Iterator<Item = String>) -> bool {
    let args: Vec<String> = args.collect();
    args.iter().enumerate().any(|(i, a)| {
        let next_is_json = args.get(i + 1).is_some_and(|n| n == "json");
        ((a == "-o" || a == "--output") && next_is_json) || a == "-ojson" || a == "--output=json"
    })
}

/// The dispatch table: a verb is one arm.
async fn dispatch(command: Command, args: &Resolved) -> Result<ExitCode, Error> {
    match command {
        Command::Init(cli) => verbs::init(args, cli).await,
        Command::Plan(cli) => verbs::plan(args, cli).await,
        Command::Deploy(cli) => verbs::deploy(args, cli).await,
        Command::Doctor(cli) => verbs::doctor(args, cli).await,
        Command::Logs(cli) => verbs::logs(args, cli).await,
        Command::Extract(cli) => verbs::extract(args, cli).await,
        Command::Backfill(cli) => verbs::backfill(args, cli).await,
        Command::Run(cli) => verbs::run(args, cli).await,
        Command::Transform => verbs::transform(args),
        Command::Compile(cli) => verbs::compile(args, cli),
        Command::Report(cli) => verbs::report(args, cli).await,
        Command::Destroy(cli) => verbs::destroy(args, cli).await,
        Command::Secrets(SecretsCommand::Set) => verbs::set_secret(args).await,
        Command::Export(cli) => verbs::export(args, cli).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "flixops", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
