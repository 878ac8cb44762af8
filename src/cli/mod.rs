//! Subcommands, one module each; each parses flags and calls the crates.

mod io;
mod score;

use clap::{Parser, Subcommand};

/// Train and check tool-calling language models with rule-based RL (Tool-N1).
#[derive(Parser, Debug)]
#[command(name = "toolgym", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Score completions (JSONL in, JSONL out) with a reward rule.
    Score(score::ScoreArgs),
}

/// A boxed error with context, printed by `main`.
pub type CliResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Score(a) => score::run(a),
    }
}
