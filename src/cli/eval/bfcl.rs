//! `toolgym eval bfcl`: BFCL's single-turn categories with the official
//! semantics, on completions from a file or from a local model.
//!
//! The logic lives in `toolgym_env::data::bfcl_eval` (loading, judging,
//! aggregating, the table); this module parses flags, runs the model when
//! asked to, and reports.

use super::{
    completions_for, generate_completions, load_completions, print_table, write_json, write_lines,
    write_prompts, ModelArgs,
};
use crate::cli::CliResult;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use toolgym_env::data::bfcl_eval::{
    load_cases, parse_categories, summarize, BfclEnvs, EvalCase, Judge,
};
use toolgym_env::template::{template_by_name, ChatMlTemplate, TEMPLATES};
use toolgym_env::Task;
use toolgym_reward::bfcl::{Decoder, BFCL_RULES};

#[derive(Args, Debug)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["model", "completions", "write_prompts"])
))]
pub struct BfclArgs {
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
    #[arg(long, default_value = "tool-n1", value_parser = crate::cli::templates())]
    template: String,
    #[command(flatten)]
    gen: ModelArgs,
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

/// Runs `toolgym eval bfcl`.
pub fn run(a: BfclArgs) -> CliResult {
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
    let categories = parse_categories(&a.categories)?;
    let mut cases = load_cases(&a.data_dir, &categories, a.limit)?;
    if cases.is_empty() {
        return Err(format!("{}: no cases to judge", a.data_dir.display()).into());
    }

    let template = Arc::new(template(&a.template)?);
    let envs = BfclEnvs::new(&cases, judge, template.clone());
    let tasks: Vec<Result<Arc<Task>, String>> = envs
        .tasks()
        .iter()
        .map(|t| t.as_ref().map(Arc::clone).map_err(|e| e.to_string()))
        .collect();
    if let Some(path) = &a.write_prompts {
        let ids: Vec<&str> = cases.iter().map(EvalCase::id).collect();
        return write_prompts(path, &ids, &tasks, (template.as_ref(), &a.template), |i| {
            let mut m = serde_json::Map::new();
            m.insert("category".into(), cases[i].category().as_str().into());
            m
        });
    }
    let completions: Vec<Option<String>> = match (&a.model, &a.completions) {
        (_, Some(path)) => {
            let done = load_completions(path, cases.iter().map(EvalCase::id))?;
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
            let ids: Vec<&str> = cases.iter().map(EvalCase::id).collect();
            completions_for(&done, &ids)
        }
        (Some(model), None) => {
            let ids: Vec<&str> = cases.iter().map(EvalCase::id).collect();
            generate_completions(&a.gen, model, &ids, &tasks, template.as_ref(), &envs)?
        }
        (None, None) => {
            return Err("give --model DIR, --completions FILE or --write-prompts FILE".into())
        }
    };

    let verdicts = judge.judge_all(&cases, |i, _| completions.get(i).and_then(|s| s.as_deref()));
    if let Some(path) = &a.out {
        write_lines(path, &verdicts)?;
    }
    let report = summarize(&verdicts);
    if let Some(path) = &a.summary {
        write_json(path, &report.to_json())?;
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
    print_table(&table, &[a.out.as_deref(), a.summary.as_deref()]);
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
