//! The `sluice` command: run a broker (`serve`) and talk to one (`topic`,
//! `produce`, `consume`, `group`, `txn`) through the native client, or
//! (`acl`, `user`) through its Kafka listener, which authenticates.
//!
//! Output is for people by default and for scripts with `--format json`.
//! Failures go to standard error with a non-zero exit code: 1 for an error
//! at run time, 2 for a command line clap refused.

mod cli;
mod commands;
mod config;
mod kafka_client;
mod output;
mod runtime;

use std::{io::IsTerminal, process::ExitCode};

use clap::Parser;

use cli::{Cli, Command};

/// Huge blocks reserved rather than refused: a forged count in a request
/// cannot abort the broker (see `sluice_engine::alloc`).
#[global_allocator]
static ALLOCATOR: sluice_engine::alloc::ReservingAllocator =
    sluice_engine::alloc::ReservingAllocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    init_logging(default_level);
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(*args),
        Command::Topic(command) => commands::topic::run(command),
        Command::Produce(args) => commands::produce::run(args),
        Command::Consume(args) => commands::consume::run(args),
        Command::Group(command) => commands::group::run(command),
        Command::Txn(command) => commands::txn::run(command),
        Command::Cluster(command) => commands::cluster::run(command),
        Command::Acl(command) => commands::acl::run(command),
        Command::User(command) => commands::user::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Readable lines on standard error; `RUST_LOG` chooses what is shown.
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
