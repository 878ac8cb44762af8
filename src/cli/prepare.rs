//! `toolgym prepare`: training data files (xLAM, ToolACE, or any
//! registered source) to train/validation task JSONL.

use super::{io, CliResult};
use clap::Args;
use std::path::PathBuf;
use toolgym_env::data::sources::SOURCES;
use toolgym_env::prepare::{prepare, PrepareOptions};

/// `--input`'s help: the syntax and the registered sources.
fn input_help() -> String {
    let list: Vec<String> = SOURCES
        .iter()
        .map(|s| format!("{} ({})", s.name(), s.description()))
        .collect();
    format!(
        "An input file as SOURCE=FILE (repeatable; FILE may be `-`, standard input, for one input). Sources: {}",
        list.join("; ")
    )
}

#[derive(Args, Debug)]
pub struct PrepareCmd {
    #[arg(long, value_name = "SOURCE=FILE", help = input_help())]
    input: Vec<String>,
    /// Shorthand for --input xlam=FILE. Files are read in this order:
    /// every --xlam, every --toolace, then every --input (the order of
    /// tasks, and so the seeded split, follows it).
    #[arg(long)]
    xlam: Vec<PathBuf>,
    /// Shorthand for --input toolace=FILE (read after the --xlam files,
    /// before the --input ones).
    #[arg(long)]
    toolace: Vec<PathBuf>,
    /// Output directory (train.jsonl, validation.jsonl, report).
    #[arg(long)]
    out: PathBuf,
    /// Share held out for validation.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    val_fraction: f64,
    /// Share of eligible tasks copied as irrelevance (no-call) tasks.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    irrelevance_rate: f64,
    /// Seed of the split and the augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: PrepareCmd) -> CliResult {
    if a.out.as_os_str() == "-" {
        return Err(
            "--out is a directory (train.jsonl, validation.jsonl, report): `-` is not one".into(),
        );
    }
    let mut opts = PrepareOptions::new(a.out);
    for p in a.xlam {
        opts.add("xlam", p)?;
    }
    for p in a.toolace {
        opts.add("toolace", p)?;
    }
    for spec in &a.input {
        let (source, path) = spec
            .split_once('=')
            .ok_or_else(|| format!("--input {spec:?}: expected SOURCE=FILE"))?;
        opts.add(source, path)?;
    }
    let stdin_inputs = opts
        .inputs
        .iter()
        .filter(|i| i.path.as_os_str() == "-")
        .count();
    if stdin_inputs > 1 {
        return Err("only one input can be `-` (standard input)".into());
    }
    opts.val_fraction = a.val_fraction;
    opts.irrelevance_rate = a.irrelevance_rate;
    opts.seed = a.seed;
    // A run that keeps no task writes nothing (and says why).
    let report = prepare(&opts)?;
    io::print_stdout(&report.to_string())?;
    Ok(())
}
