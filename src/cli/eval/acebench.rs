//! `toolgym eval acebench`: ACEBench's rule-based categories with the
//! official checker and aggregation, on completions from a file or from a
//! local model. The logic lives in `toolgym_env::data::acebench`.

use super::{
    completions_for, generate_completions, load_completions, print_table, write_json, write_lines,
    write_prompts, ModelArgs,
};
use crate::cli::CliResult;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use toolgym_env::data::acebench::{
    load_cases, parse_categories, summarize, AceCase, AceEnvs, AceJudge, AcePrompt,
};
use toolgym_env::template::{template_by_name, ChatMlTemplate, TEMPLATES};
use toolgym_env::{ChatTemplate, Task};
use toolgym_reward::acebench::AceDecoder;

#[derive(Args, Debug)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["model", "completions", "write_prompts"])
))]
pub struct AceArgs {
    /// ACEBench English data: the folder with data_<category>.json and
    /// possible_answer/ (upstream `data_all/data_en`), or a folder above it.
    #[arg(long)]
    data_dir: PathBuf,
    /// Generate with this local Qwen2 model directory (greedy).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Judge these completions: JSON Lines of {"id", "completion"}; `-` =
    /// standard input.
    #[arg(long)]
    completions: Option<PathBuf>,
    /// Only write the prompts, JSON Lines of {"id", "category", "prompt"},
    /// for generation elsewhere; `-` = stdout.
    #[arg(long)]
    write_prompts: Option<PathBuf>,
    /// Categories, comma-separated: names such as normal_atom_bool, or the
    /// groups all, normal, special, atom, single_turn, multi_turn.
    /// Default: every category with a file in --data-dir.
    #[arg(long, value_delimiter = ',')]
    categories: Vec<String>,
    /// Judge only the first N cases of each category.
    #[arg(long)]
    limit: Option<usize>,
    /// Prompt: `official` (ACEBench's own system prompt, answers as
    /// [ApiName(key='value')]) or a toolgym template (the functions as
    /// tools, e.g. tool-n1).
    #[arg(long, default_value = "official")]
    template: String,
    /// How a reply becomes calls: official (ACEBench's decoder) or tool-n1
    /// (<tool_call> JSON). Default: official with the official prompt,
    /// tool-n1 with a template.
    #[arg(long, value_parser = ["official", "tool-n1"])]
    decoder: Option<String>,
    /// Per-case verdicts, JSON Lines {"id", "category", "valid",
    /// "error_type", "error"?}; `-` = stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The scores as JSON (per category and the official columns).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// With --completions: judge only the cases that have a completion
    /// (by default a missing completion counts as a wrong answer).
    #[arg(long)]
    skip_missing: bool,
    #[command(flatten)]
    gen: ModelArgs,
}

/// Runs `toolgym eval acebench`.
pub fn run(a: AceArgs) -> CliResult {
    let prompt = match a.template.as_str() {
        "official" => AcePrompt::Official,
        name => AcePrompt::Template(Arc::new(template_by_name(name).ok_or_else(|| {
            format!(
                "unknown template {name:?}; known: official, {}",
                TEMPLATES.map(|(n, _)| n).join(", ")
            )
        })?)),
    };
    let decoder = match (a.decoder.as_deref(), &prompt) {
        (Some("tool-n1"), _) | (None, AcePrompt::Template(_)) => AceDecoder::ToolN1,
        _ => AceDecoder::Official,
    };
    let judge = AceJudge { decoder };
    let categories = parse_categories(&a.categories)?;
    let mut cases = load_cases(&a.data_dir, &categories, a.limit)?;
    if cases.is_empty() {
        return Err(format!("{}: no cases to judge", a.data_dir.display()).into());
    }
    // The official prompt is two plain ChatML messages.
    let render: Arc<dyn ChatTemplate> = Arc::new(ChatMlTemplate::qwen2_5());
    let envs = AceEnvs::new(&cases, &prompt, judge, render);
    let tasks: Vec<Result<Arc<Task>, String>> = envs.tasks().to_vec();
    if let Some(path) = &a.write_prompts {
        let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        return write_prompts(
            path,
            &ids,
            &tasks,
            (envs.template().as_ref(), &a.template),
            |i| {
                let mut m = serde_json::Map::new();
                m.insert("category".into(), cases[i].category.as_str().into());
                m
            },
        );
    }
    let replies: Vec<Option<String>> = match (&a.model, &a.completions) {
        (_, Some(path)) => {
            let done = load_completions(path, cases.iter().map(|c| c.id.as_str()))?;
            if a.skip_missing {
                cases.retain(|c| done.get(&c.id).is_some());
                if cases.is_empty() {
                    return Err(format!(
                        "{}: no completion for any of the selected cases",
                        path.display()
                    )
                    .into());
                }
            }
            let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
            completions_for(&done, &ids)
        }
        (Some(model), None) => {
            let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
            generate_completions(&a.gen, model, &ids, &tasks, envs.template().as_ref(), &envs)?
        }
        (None, None) => {
            return Err("give --model DIR, --completions FILE or --write-prompts FILE".into())
        }
    };
    let verdicts: Vec<_> = cases
        .iter()
        .zip(&replies)
        .map(|(c, r): (&AceCase, _)| judge.judge(c, r.as_deref()))
        .collect();
    if let Some(path) = &a.out {
        write_lines(path, &verdicts)?;
    }
    let report = summarize(&cases, &verdicts);
    if let Some(path) = &a.summary {
        write_json(path, &report.to_json())?;
    }
    let source = match (&a.model, &a.completions) {
        (_, Some(p)) => format!("completions {}", p.display()),
        (Some(m), None) => format!("model {} (greedy)", m.display()),
        _ => String::new(),
    };
    let decoder_name = match decoder {
        AceDecoder::Official => "official",
        AceDecoder::ToolN1 => "tool-n1",
    };
    let table = format!(
        "ACEBench {} | prompt {} | decoder {decoder_name} | {source}{}\n\n{report}",
        a.data_dir.display(),
        a.template,
        match a.limit {
            Some(n) => format!(" | --limit {n}: partial categories, not comparable"),
            None => String::new(),
        },
    );
    print_table(&table, &[a.out.as_deref(), a.summary.as_deref()]);
    Ok(())
}
