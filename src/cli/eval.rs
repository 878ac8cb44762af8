//! `toolgym eval bfcl`: BFCL's single-turn categories with the official
//! semantics, on completions from a file or from a local model.
//!
//! The logic lives in `toolgym_env::data::bfcl_eval` (loading, judging,
//! aggregating, the table); this module parses flags, runs the model when
//! asked to, and reports.

use super::{io, CliResult};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toolgym_env::data::bfcl_eval::{
    load_cases, parse_categories, prompt, read_completions, read_completions_file, summarize,
    BfclEnvs, EvalCase, Judge,
};
use toolgym_env::template::{template_by_name, ChatMlTemplate, TEMPLATES};
use toolgym_env::{ChatTemplate, Task};
use toolgym_grpo::{evaluate, parse_device, parse_dtype, EpisodeReward, Policy, RolloutLimits};
use toolgym_reward::bfcl::{Decoder, BFCL_RULES};

#[derive(Args, Debug)]
pub struct EvalCmd {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Berkeley Function-Calling Leaderboard (single-turn Python AST and
    /// irrelevance categories) with the official checker and aggregates.
    Bfcl(BfclArgs),
}

#[derive(Args, Debug)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["model", "completions", "write_prompts"])
))]
struct BfclArgs {
    /// BFCL data folder: BFCL_v4_<category>.json and possible_answer/
    /// (the `bfcl_eval/data` folder of the bfcl-eval package).
    #[arg(long)]
    data_dir: PathBuf,
    /// Generate with this local Qwen2 model directory (greedy).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Judge these completions: JSON Lines of {"id", "completion"}; `-` =
    /// standard input.
    #[arg(long)]
    completions: Option<PathBuf>,
    /// Only write the prompts, JSON Lines of {"id", "category", "prompt"}
    /// rendered with --template, for generation elsewhere (vLLM, …); `-` =
    /// stdout.
    #[arg(long)]
    write_prompts: Option<PathBuf>,
    /// Categories, comma-separated (`all` = the ten defaults). Default:
    /// every Python AST and irrelevance category present in --data-dir.
    #[arg(long, value_delimiter = ',')]
    categories: Vec<String>,
    /// Judge only the first N cases of each category.
    #[arg(long)]
    limit: Option<usize>,
    /// Checker: bfcl-ast (official, quirks included), bfcl-ast-strict
    /// (quirks fixed: not comparable with the leaderboard), or their
    /// Python-syntax forms bfcl-ast-python, bfcl-ast-python-strict.
    #[arg(long, default_value = "bfcl-ast", value_parser = clap::builder::PossibleValuesParser::new(BFCL_RULES.map(|(n, _)| n)))]
    rule: String,
    /// Decoder, overriding the rule's: tool-n1 (<tool_call> JSON), python
    /// (BFCL prompt-mode Python call syntax), python-after-think (the same
    /// after the last </think>).
    #[arg(long, value_parser = ["tool-n1", "python", "python-after-think"])]
    decoder: Option<String>,
    /// Function names with dots must be called with `_` (the official
    /// setting of OpenAI-style FC models); off for prompt-mode models.
    #[arg(long)]
    underscore_to_dot: bool,
    /// Per-case verdicts, JSON Lines {"id", "category", "valid",
    /// "error_type", "error"?, "model_output"?}; `-` = stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The aggregates as JSON (per category, leaderboard columns,
    /// Python-only view).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// With --completions: judge only the cases that have a completion
    /// (by default a missing completion counts as a wrong answer).
    #[arg(long)]
    skip_missing: bool,
    /// With --model or --write-prompts: prompt template.
    #[arg(long, default_value = "tool-n1", value_parser = super::templates())]
    template: String,
    /// With --model: most tokens generated per case.
    #[arg(long, default_value_t = 1024)]
    max_new_tokens: usize,
    /// With --model: prompts decoded together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// With --model: weights dtype.
    #[arg(long, default_value = "f32", value_parser = super::dtypes(), ignore_case = true)]
    dtype: String,
    /// With --model: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// With --model: also write the generated {"id", "completion"} lines
    /// here (judge them again later with --completions).
    #[arg(long)]
    save_completions: Option<PathBuf>,
}

pub fn run(a: EvalCmd) -> CliResult {
    match a.bench {
        Bench::Bfcl(b) => bfcl(b),
    }
}

fn decoder_by_name(name: &str) -> CliResult<Decoder> {
    Ok(match name {
        "tool-n1" => Decoder::ToolN1,
        "python" => Decoder::Python,
        "python-after-think" => Decoder::PythonAfterThink,
        other => {
            return Err(format!(
                "unknown decoder {other:?}; known: tool-n1, python, python-after-think"
            )
            .into())
        }
    })
}

fn decoder_name(d: Decoder) -> &'static str {
    match d {
        Decoder::ToolN1 => "tool-n1",
        Decoder::Python => "python",
        Decoder::PythonAfterThink => "python-after-think",
    }
}

fn bfcl(a: BfclArgs) -> CliResult {
    let mut judge = Judge::by_rule(&a.rule).ok_or_else(|| {
        format!(
            "unknown rule {:?}; known: {}",
            a.rule,
            BFCL_RULES.map(|(n, _)| n).join(", ")
        )
    })?;
    if let Some(d) = &a.decoder {
        judge.decoder = decoder_by_name(d)?;
    }
    judge.options.underscore_to_dot = a.underscore_to_dot;
    if a.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    let categories = parse_categories(&a.categories)?;
    let mut cases = load_cases(&a.data_dir, &categories, a.limit)?;
    if cases.is_empty() {
        return Err(format!("{}: no cases to judge", a.data_dir.display()).into());
    }

    if let Some(path) = &a.write_prompts {
        return write_prompts(&a, path, &cases);
    }
    let completions: Vec<Option<String>> = match (&a.model, &a.completions) {
        (_, Some(path)) => {
            let done = if path.as_os_str() == "-" {
                read_completions(std::io::stdin().lock())?
            } else {
                read_completions_file(path)?
            };
            for bad in &done.bad_lines {
                eprintln!("warning: {}: skipped {bad}", path.display());
            }
            if !done.bad_lines.is_empty() {
                eprintln!(
                    "warning: {}: {} bad line(s) skipped",
                    path.display(),
                    done.bad_lines.len()
                );
            }
            if !done.repeated_ids.is_empty() {
                eprintln!(
                    "warning: {}: {} id(s) given more than once (the last line wins): {}",
                    path.display(),
                    done.repeated_ids.len(),
                    preview(done.repeated_ids.iter().map(String::as_str))
                );
            }
            let unknown = done.unknown_ids(&cases);
            if !unknown.is_empty() {
                eprintln!(
                    "warning: {}: {} completion(s) for ids not among the judged cases (ignored): {}",
                    path.display(),
                    unknown.len(),
                    preview(unknown.iter().map(|(line, id)| format!("{id} (line {line})")))
                );
            }
            if a.skip_missing {
                cases.retain(|c| done.get(c.id()).is_some());
                if cases.is_empty() {
                    return Err(format!(
                        "{}: no completion for any of the selected cases",
                        path.display()
                    )
                    .into());
                }
            }
            let missing: Vec<&str> = cases
                .iter()
                .map(EvalCase::id)
                .filter(|id| done.get(id).is_none())
                .collect();
            if !missing.is_empty() {
                eprintln!(
                    "warning: {} case(s) have no completion and count as wrong: {}",
                    missing.len(),
                    preview(missing.iter().copied())
                );
            }
            cases
                .iter()
                .map(|c| done.get(c.id()).map(String::from))
                .collect()
        }
        (Some(model), None) => generate_completions(&a, model, &cases, judge)?,
        (None, None) => {
            return Err("give --model DIR, --completions FILE or --write-prompts FILE".into())
        }
    };

    let verdicts = judge.judge_all(&cases, |i, _| completions.get(i).and_then(|s| s.as_deref()));
    if let Some(path) = &a.out {
        let mut out = io::open_output(path)?;
        for v in &verdicts {
            serde_json::to_writer(&mut out, v)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let report = summarize(&verdicts);
    if let Some(path) = &a.summary {
        let mut out = io::open_output(path)?;
        serde_json::to_writer_pretty(&mut out, &report.to_json())?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    let source = match (&a.model, &a.completions) {
        (_, Some(p)) => format!("completions {}", p.display()),
        (Some(m), None) => format!("model {} (greedy)", m.display()),
        _ => String::new(),
    };
    let table = format!(
        "BFCL {} | rule {} | decoder {} | {source}{}\n\n{report}",
        a.data_dir.display(),
        a.rule,
        decoder_name(judge.decoder),
        match a.limit {
            Some(n) => format!(" | --limit {n}: partial categories, not comparable"),
            None => String::new(),
        },
    );
    // With `--out -` the verdicts own stdout: the table goes to stderr.
    if a.out.as_deref() == Some(Path::new("-")) || a.summary.as_deref() == Some(Path::new("-")) {
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    Ok(())
}

fn template(name: &str) -> CliResult<ChatMlTemplate> {
    template_by_name(name).ok_or_else(|| {
        format!(
            "unknown template {name:?}; known: {}",
            TEMPLATES.map(|(n, _)| n).join(", ")
        )
        .into()
    })
}

/// `--write-prompts`: one `{"id", "category", "prompt"}` line per case.
fn write_prompts(a: &BfclArgs, path: &Path, cases: &[EvalCase]) -> CliResult {
    let template = template(&a.template)?;
    let mut out = io::open_output(path)?;
    for c in cases {
        let text = prompt(&c.case, &template).map_err(|e| format!("{}: {e}", c.id()))?;
        let line =
            serde_json::json!({"id": c.id(), "category": c.category().as_str(), "prompt": text});
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!(
        "wrote {} prompt(s) ({} template) to {}",
        cases.len(),
        a.template,
        path.display()
    );
    Ok(())
}

/// The first few items, then `… (N more)`.
fn preview<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let mut shown = Vec::new();
    let mut more = 0;
    for item in items {
        if shown.len() < 5 {
            shown.push(item.as_ref().to_string());
        } else {
            more += 1;
        }
    }
    let mut s = shown.join(", ");
    if more > 0 {
        s.push_str(&format!(", … ({more} more)"));
    }
    s
}

/// Greedy completions of every case with a local model, in case order
/// (`None` for a case that could not be prompted or whose prompt does not
/// fit), generated through the rollout engine with BFCL cases as
/// environments.
fn generate_completions(
    a: &BfclArgs,
    model_dir: &Path,
    cases: &[EvalCase],
    judge: Judge,
) -> CliResult<Vec<Option<String>>> {
    let template = Arc::new(template(&a.template)?);
    let envs = Arc::new(BfclEnvs::new(cases, judge, template.clone()));
    let policy = Policy::load_frozen(model_dir, parse_dtype(&a.dtype)?, &parse_device(&a.device)?)?;
    let max_pos = policy.model.config().max_position_embeddings;
    let limits = RolloutLimits {
        max_prompt_tokens: max_pos.saturating_sub(a.max_new_tokens),
        truncate_prompts: false,
        max_response_tokens: a.max_new_tokens,
        max_turns: 1,
        max_episode_tokens: 0,
        reward: EpisodeReward::Sum,
    };
    let mut todo: Vec<(usize, usize, Arc<Task>)> = Vec::with_capacity(cases.len());
    let mut unusable = 0;
    for (i, task) in envs.tasks().iter().enumerate() {
        match task {
            Ok(t) => {
                let len = policy.tokenizer.encode(&template.prompt(t))?.len();
                todo.push((i, len, t.clone()));
            }
            Err(e) => {
                eprintln!("warning: {}: cannot build the prompt: {e}", cases[i].id());
                unusable += 1;
            }
        }
    }
    // Longest first: similar lengths share a batch (less padding), and an
    // out-of-memory batch shows up at once.
    todo.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let bar = indicatif::ProgressBar::new(todo.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("generating [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut out: Vec<Option<String>> = vec![None; cases.len()];
    let mut saved = match &a.save_completions {
        Some(p) => Some(io::open_output(p)?),
        None => None,
    };
    for chunk in todo.chunks(a.batch_size * 4) {
        let tasks: Vec<Arc<Task>> = chunk.iter().map(|(_, _, t)| t.clone()).collect();
        let report = evaluate(&policy, envs.as_ref(), &tasks, &limits, a.batch_size, None)?;
        for ((i, _, _), episode) in chunk.iter().zip(&report.episodes) {
            if let Some(e) = &episode.error {
                eprintln!("warning: {}: {e}", cases[*i].id());
                unusable += 1;
                continue;
            }
            let text = episode.last_reply().to_string();
            if let Some(w) = saved.as_mut() {
                serde_json::to_writer(
                    &mut *w,
                    &serde_json::json!({"id": cases[*i].id(), "completion": text}),
                )?;
                w.write_all(b"\n")?;
            }
            out[*i] = Some(text);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if unusable > 0 {
        eprintln!("warning: {unusable} case(s) not generated count as wrong");
    }
    if let Some(mut w) = saved {
        w.flush()?;
    }
    Ok(out)
}
