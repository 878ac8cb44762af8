//! `toolgym eval api-bank`: API-Bank's level-1 Call mode with the official
//! semantics (each call executed on fresh databases, the API's own
//! correctness check), on completions from a file or from a local model.
//! The logic lives in `toolgym_env::data::apibank`.

use super::{obtain_replies, report, CaseArgs, Prompted};
use crate::cli::CliResult;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use toolgym_env::data::apibank::{
    apibank_envs, load_samples, summarize, ApiBankSample, ApiBankTemplate, Judge, Network,
    PromptStyle, ReplyFormat,
};
use toolgym_env::template::{template_by_name, TEMPLATES};
use toolgym_env::ChatTemplate;

#[derive(Args, Debug)]
pub struct ApiBankArgs {
    /// API-Bank's folder: holds lv1-lv2-samples/level-1-given-desc/ and
    /// init_database/ (the `api-bank` folder of DAMO-ConvAI).
    #[arg(long)]
    data_dir: PathBuf,
    /// Prompt: `official` (API-Bank's own prompt, calls as
    /// [ApiName(key='value')]) or a toolgym template (the dialogue's APIs
    /// as tools, e.g. tool-n1).
    #[arg(long, default_value = "official")]
    template: String,
    /// How a reply is read: bracket (the official regular expressions),
    /// tool-n1 (<tool_call> JSON) or auto (whichever the reply holds).
    /// Default: bracket with the official prompt, tool-n1 with a template.
    #[arg(long, value_parser = ["bracket", "tool-n1", "auto"])]
    format: Option<String>,
    /// Dictionary and Translate call web services in the original:
    /// `recorded` answers them from the results recorded in the samples
    /// (counted apart in the report), `unavailable` fails them as the
    /// official code does offline.
    #[arg(long, default_value = "recorded", value_parser = ["recorded", "unavailable"])]
    network: String,
    #[command(flatten)]
    cases: CaseArgs,
}

/// Runs `toolgym eval api-bank`.
pub fn run(a: ApiBankArgs) -> CliResult {
    let (style, template): (PromptStyle, Arc<dyn ChatTemplate>) = match a.template.as_str() {
        "official" => (PromptStyle::Official, Arc::new(ApiBankTemplate)),
        name => (
            PromptStyle::ToolN1,
            Arc::new(template_by_name(name).ok_or_else(|| {
                format!(
                    "unknown template {name:?}; known: official, {}",
                    TEMPLATES.map(|(n, _)| n).join(", ")
                )
            })?),
        ),
    };
    let format = match (a.format.as_deref(), style) {
        (Some(name), _) => {
            ReplyFormat::from_name(name).ok_or_else(|| format!("unknown format {name:?}"))?
        }
        (None, PromptStyle::Official) => ReplyFormat::Bracket,
        (None, PromptStyle::ToolN1) => ReplyFormat::ToolN1,
    };
    let network = match a.network.as_str() {
        "unavailable" => Network::Unavailable,
        _ => Network::Recorded,
    };
    let judge = Judge { format, network };
    let samples = load_samples(&a.data_dir, a.cases.limit)?;
    if samples.is_empty() {
        return Err(format!("{}: no samples to judge", a.data_dir.display()).into());
    }
    let envs = Arc::new(apibank_envs(&samples, judge, style, template.clone()));
    let prompted = Prompted {
        ids: samples.iter().map(|s| s.id.as_str()).collect(),
        categories: samples.iter().map(|s| s.file.as_str()).collect(),
        tasks: envs.tasks(),
        template: (template.as_ref(), &a.template),
        envs: envs.clone(),
        data_dir: &a.data_dir,
        reads_tool_n1: format != ReplyFormat::Bracket,
        format_mismatch: match (style, format) {
            (PromptStyle::Official, ReplyFormat::ToolN1) => Some(
                "the official prompt asks for [ApiName(key='value')], which --format bracket (or \
                 auto) reads",
            ),
            (PromptStyle::ToolN1, ReplyFormat::Bracket) => Some(
                "toolgym's template asks for <tool_call> JSON, which --format tool-n1 (or auto) \
                 reads",
            ),
            _ => None,
        },
    };
    let Some(obtained) = obtain_replies(&a.cases, &prompted)? else {
        return Ok(());
    };
    let judged: Vec<ApiBankSample> = obtained.kept.iter().map(|&i| samples[i].clone()).collect();
    let verdicts = judge.judge_all(&judged, |i, _| {
        obtained.replies.get(i).and_then(|r| r.as_deref())
    });
    let summary = summarize(&verdicts);
    let table = format!(
        "API-Bank {} (level-1-given-desc, Call) | prompt {} | format {} | network {} | {}{}\n\n{summary}",
        a.data_dir.display(),
        a.template,
        a.format.as_deref().unwrap_or(match format {
            ReplyFormat::ToolN1 => "tool-n1",
            _ => "bracket",
        }),
        a.network,
        a.cases.source(),
        match a.cases.limit {
            Some(n) => format!(" | --limit {n}: the first {n} samples, not comparable"),
            None => String::new(),
        },
    );
    report(obtained, &verdicts, summary.to_json(), table)
}
