//! `toolgym prepare`: xLAM / ToolACE files to train/validation task JSONL.

use super::CliResult;
use clap::Args;
use std::path::PathBuf;
use toolgym_env::prepare::{prepare, PrepareOptions};

#[derive(Args, Debug)]
pub struct PrepareCmd {
    /// xLAM function-calling-60k JSON file(s).
    #[arg(long)]
    xlam: Vec<PathBuf>,
    /// ToolACE JSON file(s). One input (xLAM or ToolACE) may be `-`,
    /// standard input.
    #[arg(long)]
    toolace: Vec<PathBuf>,
    /// Output directory (train.jsonl, validation.jsonl, report).
    #[arg(long)]
    out: PathBuf,
    /// Share held out for validation.
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f64,
    /// Share of eligible tasks copied as irrelevance (no-call) tasks.
    #[arg(long, default_value_t = 0.0)]
    irrelevance_rate: f64,
    /// Seed of the split and the augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: PrepareCmd) -> CliResult {
    let stdin_inputs = a
        .xlam
        .iter()
        .chain(&a.toolace)
        .filter(|p| p.as_os_str() == "-")
        .count();
    if stdin_inputs > 1 {
        return Err("only one input can be `-` (standard input)".into());
    }
    let mut opts = PrepareOptions::new(a.out);
    opts.xlam = a.xlam;
    opts.toolace = a.toolace;
    opts.val_fraction = a.val_fraction;
    opts.irrelevance_rate = a.irrelevance_rate;
    opts.seed = a.seed;
    let report = prepare(&opts)?;
    print!("{report}");
    Ok(())
}
