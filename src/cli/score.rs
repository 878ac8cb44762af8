//! `toolgym score`: score completions from JSONL with a reward rule.

use super::{io, CliResult};
use clap::Args;
use std::path::PathBuf;
use toolgym_reward::bfcl::{bfcl_rule_by_name, BfclExpected, BFCL_RULES};
use toolgym_reward::{
    jsonl, rule_with_options, scores_episodes, Call, NoEpisodes, RewardRule, RuleOptions, RULES,
};

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Reward rule (binary, binary-no-think, binary-tolerant, fine-grained,
    /// fine-grained-names, tool-n1, tool-n1-no-think, tool-n1-fine,
    /// tool-n1-fine-names; BFCL's checker: bfcl-ast, bfcl-ast-strict,
    /// bfcl-ast-python, bfcl-ast-python-strict).
    #[arg(long, default_value = "binary", value_parser = rule_names())]
    rule: String,
    /// Input JSONL; `-` = stdin. Per line {"id"?, "completion",
    /// "ground_truth": [calls]}; for the bfcl-* rules {"id"?, "completion",
    /// "functions": [docs], "possible_answer": [BFCL ground_truth],
    /// "category"? (else from the id)}. A completion may also be an
    /// OpenAI-style assistant message {"content", "reasoning_content"?,
    /// "tool_calls"} or a list of messages (the last assistant one; with
    /// `--episode`, every assistant one).
    #[arg(long, default_value = "-")]
    input: PathBuf,
    /// Output JSONL: {"id", "line", "reward", "reason", "detail"?} per line; `-` = stdout.
    #[arg(long, default_value = "-")]
    output: PathBuf,
    /// Longest input line kept, in bytes (newline included). A longer
    /// line is skipped as it is read, without being held in memory, and
    /// scored as an `input_error` naming its length.
    #[arg(long, default_value_t = jsonl::MAX_LINE_BYTES, value_parser = super::at_least_one)]
    max_line_bytes: usize,
    /// Lines read and scored per batch on several threads (one thread
    /// reads at most 256 at a time). Memory holds two batches, so lower
    /// it for huge lines on a small machine.
    #[arg(long, default_value_t = jsonl::CHUNK_LINES, value_parser = super::at_least_one)]
    chunk_lines: usize,
    /// Score each completion as a multi-step episode: every assistant
    /// message of a list of messages, or every assistant turn of a ChatML
    /// text decoded with its special tokens kept (as verl's agent loop
    /// writes it), is one reply, and the calls of all replies together
    /// must match `ground_truth`, order-free. Pass what the model wrote
    /// after the prompt: an assistant message of the prompt's history would
    /// be scored as a reply too. The binary and fine-grained families only.
    #[arg(long)]
    episode: bool,
    /// Rule option (binary and fine-grained families): require the
    /// `<think>` block (`true`/`false`; default: the rule's own).
    #[arg(long, value_name = "BOOL")]
    think: Option<bool>,
    /// Rule option: allow free text outside the blocks.
    #[arg(long, value_name = "BOOL")]
    free_text: Option<bool>,
    /// Rule option: a reply without any tool-call block is "no call"
    /// (right where no call is due; with `--episode`, an episode that
    /// rightly makes no call).
    #[arg(long, value_name = "BOOL")]
    no_call_without_block: Option<bool>,
    /// Rule option: compare numbers with this absolute tolerance.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    abs_tol: Option<f64>,
    /// Rule option: compare numbers with this relative tolerance.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    rel_tol: Option<f64>,
    /// Worker threads (default: all cores; at most 1024).
    #[arg(long)]
    threads: Option<usize>,
    /// List the rules and exit.
    #[arg(long)]
    list_rules: bool,
}

/// A rule and the ground-truth type its records carry.
enum Rule {
    /// Call-list rules (`ground_truth`).
    Calls(Box<dyn RewardRule<[Call]>>),
    /// BFCL's checker (`functions`, `possible_answer`, `category`).
    Bfcl(Box<dyn RewardRule<BfclExpected>>),
}

pub fn run(a: ScoreArgs) -> CliResult {
    if a.list_rules {
        let list: String = RULES
            .iter()
            .chain(BFCL_RULES.iter())
            .map(|(name, about)| format!("{name:<24} {about}\n"))
            .collect();
        return Ok(io::print_stdout(&list)?);
    }
    // Unknown names, and options a rule does not take, fail here,
    // before any input is read.
    let options = RuleOptions {
        think: a.think,
        free_text: a.free_text,
        no_call_without_block: a.no_call_without_block,
        abs_tol: a.abs_tol,
        rel_tol: a.rel_tol,
    };
    let rule = if a.rule.starts_with("bfcl-") {
        if !options.is_empty() {
            return Err(format!(
                "rule {:?} takes no options (BFCL's checker is reproduced as it is)",
                a.rule
            )
            .into());
        }
        Rule::Bfcl(bfcl_rule_by_name(&a.rule)?)
    } else {
        Rule::Calls(rule_with_options(&a.rule, &options)?)
    };
    // Refused before any input is read or output created.
    if a.episode && !matches!(&rule, Rule::Calls(r) if scores_episodes(&**r)) {
        return Err(format!("--episode: {}", NoEpisodes::new(&a.rule)).into());
    }
    io::check_not_an_input(&a.output, &[&a.input])?;
    if let Some(t) = a.threads.filter(|&t| t > jsonl::MAX_THREADS) {
        return Err(format!("--threads must be at most {} (got {t})", jsonl::MAX_THREADS).into());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()?;
    // stdin/stdout locks are not Send: open them on the pool's thread.
    let report = pool.install(|| -> CliResult<jsonl::RunReport> {
        let input = io::open_input(&a.input, "--input")?;
        let mut output = io::open_output(&a.output)?;
        let options = jsonl::JsonlOptions {
            max_line_bytes: a.max_line_bytes,
            chunk_lines: a.chunk_lines,
            ..Default::default()
        };
        let report = match &rule {
            Rule::Bfcl(r) => {
                jsonl::score_jsonl_with(&**r, jsonl::bfcl_truth, input, &mut output, options)?
            }
            Rule::Calls(r) if a.episode => {
                jsonl::score_jsonl_episodes(&**r, input, &mut output, options)?
            }
            Rule::Calls(r) => jsonl::score_jsonl(&**r, input, &mut output, options)?,
        };
        if report.summary.count == 0 {
            // An empty input (or only blank lines, or a closed stdin): no
            // record to score is no run, not a mean reward of 0; the
            // output is not written (an earlier file of its name stays).
            let input = match a.input.as_os_str() == "-" {
                true => "standard input".to_string(),
                false => a.input.display().to_string(),
            };
            let blank = match report.blank_lines {
                0 => String::new(),
                n => format!(" (only {n} blank line(s))"),
            };
            return Err(format!("{input} holds no record to score{blank}").into());
        }
        output.finish()?;
        Ok(report)
    })?;
    eprint!("{}", report.summary);
    if a.episode {
        eprintln!("(--episode: each completion was scored as one multi-step episode)");
    }
    if report.input_errors > 0 {
        eprintln!(
            "{} line(s) were not usable records (reason input_error in the output)",
            report.input_errors
        );
    }
    if report.blank_lines > 0 {
        eprintln!("{} blank line(s) skipped", report.blank_lines);
    }
    if report.input_errors > 0 && report.input_errors == report.summary.count {
        // Not one record: the wrong file or the wrong fields, not a run
        // whose rewards are all 0.
        let fields = match rule {
            Rule::Bfcl(_) => "`completion`, `functions` and `possible_answer` (or `ground_truth`)",
            Rule::Calls(_) if a.episode => {
                "`completion` (a list of messages with at least one assistant message, a \
                 ChatML text or an assistant message) and `ground_truth`"
            }
            Rule::Calls(_) => "`completion` and `ground_truth`",
        };
        return Err(format!(
            "none of the {} line(s) of {} is a usable record (each line's detail in the \
             output says why; a record holds {fields})",
            report.input_errors,
            a.input.display()
        )
        .into());
    }
    Ok(())
}

/// `--rule` values: the reward rules and the BFCL ones.
fn rule_names() -> clap::builder::PossibleValuesParser {
    let rules = toolgym_reward::RULES
        .iter()
        .chain(toolgym_reward::bfcl::BFCL_RULES.iter())
        .map(|(n, d)| clap::builder::PossibleValue::new(*n).help(*d));
    clap::builder::PossibleValuesParser::new(rules)
}
