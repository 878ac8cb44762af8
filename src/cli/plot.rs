//! `toolgym plot RUN_DIR`: reward, KL, response length and validation
//! accuracy curves (the paper's Figure 6) as a PNG.

use super::{io, CliResult};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PlotCmd {
    /// A run directory holding metrics.jsonl.
    run_dir: PathBuf,
    /// Output PNG (default RUN_DIR/training_curves.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Unreadable metrics lines named one by one before the count.
const SHOWN: usize = 10;

pub fn run(a: PlotCmd) -> CliResult {
    let (path, bad) = toolgym_grpo::plot::plot_run(&a.run_dir, a.out.as_deref())?;
    // The first few by name, then the count: a damaged file does not
    // bury the output under one line per bad line.
    for b in bad.iter().take(SHOWN) {
        eprintln!("skipped metrics line {b}");
    }
    if !bad.is_empty() {
        let more = bad.len().saturating_sub(SHOWN);
        let rest = if more > 0 {
            format!(" ({more} more not shown)")
        } else {
            String::new()
        };
        eprintln!(
            "{} metrics line(s) skipped (not JSON, or no step's metrics){rest}",
            bad.len()
        );
    }
    Ok(io::print_stdout(&format!("{}\n", path.display()))?)
}
