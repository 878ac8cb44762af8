//! The `toolgym` command line: thin wrappers over the library crates.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    toolgym_grpo::configure_cpu();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
