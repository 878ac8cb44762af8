//! `toolgym eval acebench`: ACEBench's rule-based categories with the
//! official checker and aggregation, on completions from a file or from a
//! local model. The logic lives in `toolgym_env::data::acebench`.

use super::{obtain_replies, report, CaseArgs, Judged, Prompted};
use crate::cli::CliResult;
use clap::Args;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use toolgym_env::data::acebench::{
    ace_envs, load_cases, parse_categories, summarize, AceCase, AceJudge, AcePrompt, OFFICIAL_CRASH,
};
use toolgym_env::template::{template_by_name, ChatMlTemplate, TEMPLATES};
use toolgym_env::ChatTemplate;
use toolgym_reward::acebench::{conversation_of, AceCategory, AceDecoder};

#[derive(Args, Debug)]
pub struct AceArgs {
    /// ACEBench English data: the folder with data_<category>.json and
    /// possible_answer/ (upstream `data_all/data_en`), or a folder above it.
    #[arg(long)]
    data_dir: PathBuf,
    /// Categories, comma-separated: names such as normal_atom_bool, or the
    /// groups all, normal, special, atom, single_turn, multi_turn.
    /// Default: every category with a file in --data-dir.
    #[arg(long, value_delimiter = ',')]
    categories: Vec<String>,
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
    #[command(flatten)]
    cases: CaseArgs,
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
    let cases = load_cases(&a.data_dir, &categories, a.cases.limit)?;
    if cases.is_empty() {
        return Err(format!("{}: no cases to judge", a.data_dir.display()).into());
    }
    if categories.is_empty() {
        // Every category with a file is judged: say which have none (their
        // columns read N/A), or a partial download passes for the whole.
        let absent: Vec<&str> = AceCategory::ALL
            .iter()
            .filter(|c| !cases.iter().any(|case| case.category == **c))
            .map(|c| c.as_str())
            .collect();
        if !absent.is_empty() {
            eprintln!(
                "note: {}: no data file for {} of the {} categories, not judged (N/A in the \
                 table): {}",
                a.data_dir.display(),
                absent.len(),
                AceCategory::ALL.len(),
                absent.join(", ")
            );
        }
    }
    // The official prompt is two plain ChatML messages.
    let render: Arc<dyn ChatTemplate> = Arc::new(ChatMlTemplate::qwen2_5());
    let envs = Arc::new(ace_envs(&cases, &prompt, judge, render));
    let prompted = Prompted {
        ids: cases.iter().map(|c| c.id.as_str()).collect(),
        categories: cases.iter().map(|c| c.category.as_str()).collect(),
        tasks: envs.tasks(),
        template: (envs.template().as_ref(), &a.template),
        envs: envs.clone(),
        data_dir: &a.data_dir,
        reads_tool_n1: decoder == AceDecoder::ToolN1,
        format_mismatch: match (&prompt, decoder) {
            (AcePrompt::Template(_), AceDecoder::Official) => {
                Some("toolgym's templates ask for <tool_call> JSON, which --decoder tool-n1 reads")
            }
            (AcePrompt::Official, AceDecoder::ToolN1) => Some(
                "the official prompt asks for [func(key=value)], which --decoder official reads",
            ),
            _ => None,
        },
    };
    let Some(mut obtained) = obtain_replies(&a.cases, &prompted)? else {
        return Ok(());
    };
    whole_conversations_only(&mut obtained, &cases)?;
    let cases: Vec<&AceCase> = obtained.kept.iter().map(|&i| &cases[i]).collect();
    let verdicts: Vec<_> = cases
        .iter()
        .zip(&obtained.replies)
        .map(|(c, r)| judge.judge(c, r.as_deref()))
        .collect();
    // Cases the official evaluation itself fails on (a data problem: its
    // run stops there) are counted wrong, and said.
    let crashed: Vec<usize> = (0..verdicts.len())
        .filter(|&i| verdicts[i].error_type.as_deref() == Some(OFFICIAL_CRASH))
        .collect();
    if let Some(&first) = crashed.first() {
        eprintln!(
            "warning: {} case(s) on which the official evaluation itself fails (a data problem; \
             the official run stops at the first), counted wrong: the first is {} ({}): {}",
            crashed.len(),
            cases[first].id,
            cases[first].category.as_str(),
            verdicts[first].error
        );
    }
    let summary = summarize(&cases, &verdicts);
    let decoder_name = match decoder {
        AceDecoder::Official => "official",
        AceDecoder::ToolN1 => "tool-n1",
    };
    let table = format!(
        "ACEBench {} | prompt {} | decoder {decoder_name} | {}{}\n\n{summary}",
        a.data_dir.display(),
        a.template,
        a.cases.source(),
        a.cases.limit_note(),
    );
    report(obtained, &verdicts, summary.to_json(), table)
}

/// With `--skip-missing`, a multi-turn conversation that lost a turn is
/// left out whole: a conversation counts as solved only when every turn
/// is, so judging the turns that are there would overstate it. None left
/// is an error (every answered turn was in a broken conversation), not an
/// empty table.
fn whole_conversations_only(judged: &mut Judged, cases: &[AceCase]) -> CliResult {
    let conversation = |c: &AceCase| {
        c.category
            .is_multi_turn()
            .then(|| (c.category, conversation_of(&c.id).to_string()))
    };
    let kept: HashSet<usize> = judged.kept.iter().copied().collect();
    let missing_a_turn: HashSet<_> = (0..cases.len())
        .filter(|i| !kept.contains(i))
        .filter_map(|i| conversation(&cases[i]))
        .collect();
    // Those with a turn to judge (one with no completion at all is simply
    // missing, as the first note counts it).
    let broken: HashSet<_> = judged
        .kept
        .iter()
        .filter_map(|&i| conversation(&cases[i]))
        .filter(|k| missing_a_turn.contains(k))
        .collect();
    if broken.is_empty() {
        return Ok(());
    }
    let before = judged.kept.len();
    let (kept, replies): (Vec<usize>, Vec<Option<String>>) = judged
        .kept
        .iter()
        .copied()
        .zip(judged.replies.drain(..))
        .filter(|(i, _)| conversation(&cases[*i]).is_none_or(|k| !broken.contains(&k)))
        .unzip();
    if kept.is_empty() {
        return Err(format!(
            "--skip-missing: every case with a completion is a turn of a multi-turn \
             conversation with a turn missing ({} conversation(s)): nothing to judge",
            broken.len()
        )
        .into());
    }
    // In place of the first note, whose count of cases judged this changes.
    let note = format!(
        "--skip-missing: {} of {} case(s) judged, {} without a completion left out, and {} \
         turn(s) of {} multi-turn conversation(s) with a turn missing left out whole: partial \
         scores, not comparable",
        kept.len(),
        cases.len(),
        cases.len() - before,
        before - kept.len(),
        broken.len()
    );
    eprintln!("warning: {note}");
    judged.kept = kept;
    judged.replies = replies;
    judged.partial = Some(note);
    Ok(())
}
