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

pub fn run(a: PlotCmd) -> CliResult {
    let (path, bad) = toolgym_grpo::plot::plot_run(&a.run_dir, a.out.as_deref())?;
    for b in &bad {
        eprintln!("skipped unreadable metrics line {b}");
    }
    Ok(io::print_stdout(&format!("{}\n", path.display()))?)
}
