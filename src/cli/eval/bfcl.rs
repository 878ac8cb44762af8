//! `toolgym eval bfcl`: BFCL's single-turn categories with the official
//! semantics, on completions from a file or from a local model.
//!
//! The logic lives in `toolgym_env::data::bfcl_eval` (loading, judging,
//! aggregating, the table); this module parses flags, runs the model when
//! asked to, and reports.

use super::{obtain_replies, report, CaseArgs, Prompted};
use crate::cli::CliResult;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use toolgym_env::data::bfcl_eval::{
    bfcl_envs, load_cases, parse_categories, summarize, unread_entries, EvalCase, Judge,
    DEFAULT_CATEGORIES,
};
use toolgym_env::template::{template_by_name, ChatMlTemplate, TEMPLATES};
use toolgym_reward::bfcl::{Decoder, BFCL_RULES};

#[derive(Args, Debug)]
pub struct BfclArgs {
    /// BFCL data folder: BFCL_v4_<category>.json and possible_answer/
    /// (the `bfcl_eval/data` folder of the bfcl-eval package).
    #[arg(long)]
    data_dir: PathBuf,
    /// Categories, comma-separated (`all` = the ten defaults). Default:
    /// every Python AST and irrelevance category present in --data-dir.
    #[arg(long, value_delimiter = ',')]
    categories: Vec<String>,
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
    /// With --model or --write-prompts: prompt template (default
    /// tool-n1). Completions from a file were prompted elsewhere: refused
    /// with --completions.
    #[arg(long, value_parser = crate::cli::templates())]
    template: Option<String>,
    #[command(flatten)]
    cases: CaseArgs,
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
    let cases = load_cases(&a.data_dir, &categories, a.cases.limit)?;
    for (path, why) in unread_entries(&a.data_dir) {
        eprintln!("warning: {}: not read: {why}", path.display());
    }
    if cases.is_empty() {
        return Err(format!("{}: no cases to judge", a.data_dir.display()).into());
    }
    if categories.is_empty() {
        // The default categories that have no file here are not judged:
        // say so, or a partial download passes for the whole benchmark
        // (the official overall counts a missing category as 0).
        let absent: Vec<&str> = DEFAULT_CATEGORIES
            .iter()
            .filter(|c| !cases.iter().any(|case| case.category() == **c))
            .map(|c| c.as_str())
            .collect();
        if !absent.is_empty() {
            eprintln!(
                "note: {}: no data file for {} of the {} default categories, not judged (the \
                 all rows cover only those judged): {}",
                a.data_dir.display(),
                absent.len(),
                DEFAULT_CATEGORIES.len(),
                absent.join(", ")
            );
        }
    }
    if let (Some(t), Some(_)) = (&a.template, &a.cases.completions) {
        return Err(format!(
            "--template {t} is for --model and --write-prompts: completions from a file were \
             prompted elsewhere, and the template changes nothing in how they are judged"
        )
        .into());
    }
    let template_name = a.template.as_deref().unwrap_or("tool-n1");
    let template = Arc::new(template(template_name)?);
    let envs = Arc::new(bfcl_envs(&cases, judge, template.clone()));
    let prompted = Prompted {
        ids: cases.iter().map(EvalCase::id).collect(),
        categories: cases.iter().map(|c| c.category().as_str()).collect(),
        tasks: envs.tasks(),
        template: (template.as_ref(), template_name),
        envs: envs.clone(),
        data_dir: &a.data_dir,
        reads_tool_n1: judge.decoder == Decoder::ToolN1,
        // Every template asks for <tool_call> JSON.
        format_mismatch: (judge.decoder != Decoder::ToolN1).then_some(
            "toolgym's templates ask for <tool_call> JSON, which --rule bfcl-ast reads (or \
             --decoder tool-n1); judge replies in Python syntax from a file with --completions",
        ),
    };
    let Some(obtained) = obtain_replies(&a.cases, &prompted)? else {
        return Ok(());
    };
    let cases: Vec<EvalCase> = obtained.kept.iter().map(|&i| cases[i].clone()).collect();
    let verdicts = judge.judge_all(&cases, |i, _| {
        obtained.replies.get(i).and_then(|s| s.as_deref())
    });
    let summary = summarize(&verdicts);
    let table = format!(
        "BFCL {} | rule {} | decoder {} | {}{}\n\n{summary}",
        a.data_dir.display(),
        a.rule,
        decoder_name(judge.decoder),
        a.cases.source(),
        a.cases.limit_note(),
    );
    report(obtained, &verdicts, summary.to_json(), table)
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
