//! The `flixops` binary: parses arguments, resolves config, calls the library, prints, and maps
//! errors to the exit codes documented under `--help`.

mod args;
mod cli;
mod verbs;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use flixops::Error;

use args::Resolved;
use cli::{Cli, Command, SecretsCommand};

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
    let args = Resolved::new(&cli.global);
    // `plan --detailed-exitcode` reserves 2 for "changes", so every error there exits 1, as in terraform.
    let detailed = matches!(&cli.command, Command::Plan(args) if args.detailed_exitcode);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime starts");
    match runtime.block_on(dispatch(cli.command, &args)) {
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

/// The dispatch table: a verb is one arm.
async fn dispatch(command: Command, args: &Resolved) -> Result<ExitCode, Error> {
    match command {
        Command::Init(cli) => verbs::init(args, cli).await,
        Command::Plan(cli) => verbs::plan(args, cli).await,
        Command::Deploy(cli) => verbs::deploy(args, cli).await,
        Command::Doctor(cli) => verbs::doctor(args, cli).await,
        Command::Extract(cli) => verbs::extract(args, cli).await,
        Command::Backfill(cli) => verbs::backfill(args, cli).await,
        Command::Run(cli) => verbs::run(args, cli).await,
        Command::Transform => verbs::transform(args),
        Command::Destroy(cli) => verbs::destroy(args, cli).await,
        Command::Secrets(SecretsCommand::Set) => verbs::set_secret(args).await,
        Command::Export(cli) => verbs::export(args, cli).await,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "flixops", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
