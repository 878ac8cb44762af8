//! Subcommands, one module each; each parses flags and calls the crates.

mod eval;
mod generate;
mod io;
mod plot;
mod prepare;
mod score;
mod train;

use clap::{Parser, Subcommand};

/// Train and check tool-calling language models with rule-based RL (Tool-N1).
#[derive(Parser, Debug)]
#[command(name = "toolgym", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The process's arguments, parsed. A negative number after any flag
    /// is that flag's value, so the flag's own parser refuses it by name
    /// ("invalid value '-1' for '--threads <THREADS>'") where clap said
    /// "unexpected argument '-1' found".
    pub fn parse_args() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        fn negative_values(cmd: clap::Command) -> clap::Command {
            cmd.mut_args(|a| match a.get_action().takes_values() {
                true => a.allow_negative_numbers(true),
                false => a,
            })
            .mut_subcommands(negative_values)
        }
        let matches = negative_values(Self::command()).get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// Whether the command's output is a log beside what it writes to
    /// files (a training run): it should outlive the log's reader
    /// ([`toolgym::output`]).
    pub fn writes_a_log(&self) -> bool {
        matches!(self.command, Command::Train(_))
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Score completions (JSONL in, JSONL out) with a reward rule.
    Score(score::ScoreArgs),
    /// Turn xLAM / ToolACE files into train/validation task JSONL.
    Prepare(prepare::PrepareCmd),
    /// Generate from a local Qwen2 model directory.
    Generate(generate::GenerateCmd),
    /// Train with GRPO or SFT from a TOML config.
    Train(train::TrainCmd),
    /// Plot a run's training curves to a PNG.
    Plot(plot::PlotCmd),
    /// Evaluate on a benchmark with its official semantics (BFCL, ACEBench, API-Bank).
    Eval(eval::EvalCmd),
}

/// `--dtype` values, with the aliases `parse_dtype` accepts (use with
/// `ignore_case = true`: `parse_dtype` ignores case too).
pub fn dtypes() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("f32").alias("float32"),
        PossibleValue::new("bf16").alias("bfloat16"),
        PossibleValue::new("f16").aliases(["float16", "half"]),
    ])
}

/// `--template` values: the built-in templates.
pub fn templates() -> clap::builder::PossibleValuesParser {
    let names =
        toolgym_env::template::TEMPLATES.map(|(n, d)| clap::builder::PossibleValue::new(n).help(d));
    clap::builder::PossibleValuesParser::new(names)
}

/// A count that must be at least 1 (`--max-new-tokens`, `--max-line-bytes`,
/// `--chunk-lines`): clap names the flag in the error.
pub fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A boxed error with context, printed by `main`.
pub type CliResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Score(a) => score::run(a),
        Command::Prepare(a) => prepare::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Train(a) => train::run(a),
        Command::Plot(a) => plot::run(a),
        Command::Eval(a) => eval::run(a),
    }
}
