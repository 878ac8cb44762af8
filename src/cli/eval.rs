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
use toolgym_env::data::bfcl_eval::{
    load_cases, parse_categories, prompt, read_completions_file, summarize, EvalCase, Judge,
};
use toolgym_env::template::{template_by_name, ChatMlTemplate, TEMPLATES};
use toolgym_model::cli::{parse_device, parse_dtype};
use toolgym_model::{
    generate, load_pretrained, GenerateRequest, GenerationConfig, ModelOptions, SamplingParams,
};
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
    /// Judge these completions: JSON Lines of {"id", "completion"}.
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
    #[arg(long, default_value = "bfcl-ast")]
    rule: String,
    /// Decoder, overriding the rule's: tool-n1 (<tool_call> JSON), python
    /// (BFCL prompt-mode Python call syntax), python-after-think (the same
    /// after the last </think>).
    #[arg(long)]
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
    /// With --model or --write-prompts: prompt template (tool-n1,
    /// tool-n1-no-think, compact, compact-no-think).
    #[arg(long, default_value = "tool-n1")]
    template: String,
    /// With --model: most tokens generated per case.
    #[arg(long, default_value_t = 1024)]
    max_new_tokens: usize,
    /// With --model: prompts decoded together.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// With --model: weights dtype (f32, bf16, f16).
    #[arg(long, default_value = "f32")]
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
            let done = read_completions_file(path)?;
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
        (Some(model), None) => generate_completions(&a, model, &cases)?,
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
/// (`None` for a case that could not be prompted).
fn generate_completions(
    a: &BfclArgs,
    model_dir: &Path,
    cases: &[EvalCase],
) -> CliResult<Vec<Option<String>>> {
    let template = template(&a.template)?;
    let opts = ModelOptions {
        dtype: parse_dtype(&a.dtype)?,
        device: parse_device(&a.device)?,
        trainable: false,
    };
    let pre = load_pretrained(model_dir, &opts)?;
    let tokenizer = pre.tokenizer.as_ref().ok_or_else(|| {
        format!(
            "{}: no tokenizer.json (needed to encode the prompts)",
            model_dir.display()
        )
    })?;
    let max_pos = pre.model.config().max_position_embeddings;
    let mut requests: Vec<(usize, Vec<u32>)> = Vec::with_capacity(cases.len());
    let mut unusable = 0;
    for (i, c) in cases.iter().enumerate() {
        let text = match prompt(&c.case, &template) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("warning: {}: cannot build the prompt: {e}", c.id());
                unusable += 1;
                continue;
            }
        };
        let ids = tokenizer.encode(&text)?;
        if ids.is_empty() || ids.len() + a.max_new_tokens > max_pos {
            eprintln!(
                "warning: {}: {} prompt tokens + --max-new-tokens {} exceed the model's {max_pos} positions",
                c.id(),
                ids.len(),
                a.max_new_tokens
            );
            unusable += 1;
            continue;
        }
        requests.push((i, ids));
    }
    if unusable > 0 {
        eprintln!("warning: {unusable} case(s) not generated count as wrong");
    }
    // Longest first: similar lengths share a batch (less padding), and an
    // out-of-memory batch shows up at once.
    requests.sort_by(|x, y| y.1.len().cmp(&x.1.len()).then(x.0.cmp(&y.0)));
    let config = GenerationConfig {
        max_new_tokens: a.max_new_tokens,
        sampling: SamplingParams::greedy(),
        eos_token_ids: pre.eos_token_ids.clone(),
        max_batch_size: a.batch_size,
        ..GenerationConfig::default()
    };
    let bar = indicatif::ProgressBar::new(requests.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("generating [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut out: Vec<Option<String>> = vec![None; cases.len()];
    let mut saved = match &a.save_completions {
        Some(p) => Some(io::open_output(p)?),
        None => None,
    };
    for chunk in requests.chunks(a.batch_size) {
        let batch: Vec<GenerateRequest> = chunk
            .iter()
            .map(|(_, ids)| GenerateRequest::new(ids.clone(), 1, 0))
            .collect();
        let done = generate(&pre.model, &batch, &config, Some(tokenizer))?;
        for ((i, _), completions) in chunk.iter().zip(done) {
            let text = completions
                .into_iter()
                .next()
                .and_then(|c| c.text)
                .unwrap_or_default();
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
    if let Some(mut w) = saved {
        w.flush()?;
    }
    Ok(out)
}
