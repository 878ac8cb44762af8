//! `toolgym score`: score completions from JSONL with a reward rule.

use super::{io, CliResult};
use clap::Args;
use std::path::PathBuf;
use toolgym_reward::{jsonl, rule_by_name, RULES};

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Reward rule (binary, binary-no-think, binary-tolerant, fine-grained,
    /// fine-grained-names, tool-n1, tool-n1-no-think, tool-n1-fine,
    /// tool-n1-fine-names).
    #[arg(long, default_value = "binary")]
    rule: String,
    /// Input JSONL: {"id"?, "completion", "ground_truth": [calls]} per line; `-` = stdin.
    #[arg(long, default_value = "-")]
    input: PathBuf,
    /// Output JSONL: {"id", "line", "reward", "reason", "detail"?} per line; `-` = stdout.
    #[arg(long, default_value = "-")]
    output: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// List the rules and exit.
    #[arg(long)]
    list_rules: bool,
}

pub fn run(a: ScoreArgs) -> CliResult {
    if a.list_rules {
        for (name, about) in RULES {
            println!("{name:<20} {about}");
        }
        return Ok(());
    }
    let rule = rule_by_name(&a.rule)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()?;
    // stdin/stdout locks are not Send: open them on the pool's thread.
    let report = pool.install(|| -> CliResult<jsonl::RunReport> {
        let input = io::open_input(&a.input)?;
        let output = io::open_output(&a.output)?;
        Ok(jsonl::score_jsonl(
            &*rule,
            input,
            output,
            jsonl::JsonlOptions::default(),
        )?)
    })?;
    eprint!("{}", report.summary);
    if report.input_errors > 0 {
        eprintln!(
            "{} line(s) were not usable records (reason input_error in the output)",
            report.input_errors
        );
    }
    if report.blank_lines > 0 {
        eprintln!("{} blank line(s) skipped", report.blank_lines);
    }
    Ok(())
}
