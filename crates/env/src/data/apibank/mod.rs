//! API-Bank level-1 "Call" evaluation with the official semantics, and the
//! benchmark's 49 APIs as executable toolgym tools.
//!
//! API-Bank (Li et al., EMNLP 2023) scores whether a model, given a
//! dialogue and the descriptions of some APIs, makes the API call that
//! comes next. The official evaluator (`evaluator.py`, `tool_manager.py`,
//! `api_call_extraction.py`, `apis/*.py` of the benchmark) is re-implemented
//! here, quirks included (see `docs/api_bank.md` for the list):
//!
//! 1. [`load_samples`]: every dialogue of `lv1-lv2-samples/level-1-given-desc`
//!    cut into samples as the official loop cuts them (399 Call samples,
//!    duplicates included), with the databases of `init_database`.
//! 2. Prompts: [`prompt_messages`] / [`official_task`] (the official prompt;
//!    render with [`ApiBankTemplate`]) or [`tool_n1_task`] (the file's APIs
//!    as tools, for Tool-N1 templates).
//! 3. [`Judge::judge`]: read the call (the official regular expressions,
//!    [`parse_bracket`], or a Tool-N1 `<tool_call>`, [`parse_tool_n1`]),
//!    require the expected API, run it on a fresh copy of the databases,
//!    and apply the API's own correctness check to its result and the
//!    recorded one: an [`ApiBankVerdict`].
//! 4. [`summarize`]: the official accuracy (correct / samples over all
//!    files), per-API counts, and the samples to read with care
//!    ([`ApiBankReport`], printed as a table).
//!
//! For training, [`registry`] and [`training_spec`] run the APIs as tools
//! over an [`ApiBankState`] in a [`crate::MultiTurnSpec`]; [`ApiBankEnvs`]
//! is the single-turn factory generation runs through.
//!
//! ```no_run
//! use std::path::Path;
//! use toolgym_env::data::apibank::{load_samples, summarize, Judge};
//! let samples = load_samples(Path::new("/data/api-bank"), None)?;
//! let judge = Judge::official();
//! let verdicts = judge.judge_all(&samples, |_, s| Some(if s.api_name == "GetToday" { "[GetToday()]" } else { "no call" }));
//! println!("{}", summarize(&verdicts));
//! # Ok::<(), toolgym_env::data::apibank::ApiBankError>(())
//! ```

mod apis;
mod env;
mod judge;
mod parse;
mod prompt;
mod pytime;
mod report;
mod samples;
pub mod semantics;
mod value;
mod world;

pub use env::{
    apibank_envs, first_call_rule, registry, reward_verdict, training_spec, ApiBankEnvs,
};
pub use judge::{ApiBankVerdict, Judge, ReplyFormat, NO_COMPLETION};
pub use parse::{
    bracket_call, find_call, from_tool_call, json_argument, parse_bracket, parse_params,
    parse_tool_n1, ParsedCall, ToolCallProblem,
};
pub use prompt::{
    api_description, api_descriptions, history_call_line, official_task, prompt_messages,
    system_prompt, tool_n1_task, tool_specs, ApiBankTemplate, PromptStyle, API_CALL_PROMPT,
    THIS_YEAR,
};
pub use report::{summarize, ApiBankReport, ApiCount, Count};
pub use samples::{
    load_samples, load_samples_from, ApiBankSample, Turn, DATABASE_DIR, SAMPLES_DIR,
};
pub use world::{ApiBankData, ApiBankState, DATABASES};

use std::path::PathBuf;

/// The names of the 49 APIs the level-1 samples call, in name order.
pub fn api_names() -> impl Iterator<Item = &'static str> {
    apis::APIS.iter().map(|a| a.name)
}

/// What stands in for the web services Dictionary and Translate call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// Answer from the results recorded in the sample files (matched on the
    /// normalised request); anything else fails. A deviation from the
    /// official code, which calls the live services; samples judged this
    /// way are counted separately ([`ApiBankReport::offline_substitute`]).
    #[default]
    Recorded,
    /// No network: every Dictionary and Translate call fails, as the
    /// official code does offline.
    Unavailable,
}

/// Why API-Bank data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ApiBankError {
    /// A folder or file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A folder the benchmark needs is missing.
    #[error("{0}: no such folder (give the API-Bank root, which holds lv1-lv2-samples/level-1-given-desc and init_database)")]
    MissingDir(PathBuf),
    /// A database file is not JSON.
    #[error("{path}: not JSON: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The line, when known.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A dialogue line cannot be read (the official loop would stop there).
    #[error("{path}:{line}: {message}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An entry named like a dialogue file is not a file.
    #[error("{0}: not a file (a directory or a dangling link), so its dialogues cannot be read")]
    NotAFile(PathBuf),
    /// The folder has no `.jsonl` file.
    #[error("{0}: no .jsonl dialogue files")]
    NoSamples(PathBuf),
}
