//! What a rule says about one completion: a reward and why.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Why a completion got its reward. Every [`Verdict`] carries one, so a
/// training log can say why rewards are 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Format right and calls match the ground truth.
    Ok,
    /// The `<think>` / `<tool_call>` structure is wrong (missing, unterminated,
    /// out of order, repeated, or text where none is allowed).
    FormatError,
    /// A `<tool_call>` payload is not valid JSON.
    JsonError,
    /// The payload is JSON but not a list of `{"name", "arguments"}` objects.
    SchemaError,
    /// Same number of calls, but some name is not in the ground truth.
    WrongName,
    /// The right tool names, but some arguments differ.
    WrongArgs,
    /// Fewer calls than the ground truth has.
    MissingCall,
    /// More calls than the ground truth has (including any call where none
    /// was expected).
    ExtraCall,
    /// The input record itself is unusable (CLI / batch input), not the
    /// model's fault.
    InputError,
    /// Episodes: a tool call failed (unknown tool, arguments that break the
    /// tool's schema, or the handler refused or crashed).
    ToolError,
    /// Episodes: the turn limit ended the episode before the model finished.
    TurnLimit,
    /// Episodes: the token budget (a reply's or the episode's) ran out.
    TokenLimit,
    /// Episodes: the environment's state is not what the task asked for.
    StateMismatch,
    /// Episodes: the model repeated itself (the same calls turn after turn).
    Loop,
    /// Episodes: the environment itself failed (returned an error or
    /// panicked); not the model's fault.
    EnvError,
}

impl Reason {
    /// Every reason, in a fixed order (for histograms).
    pub const ALL: [Reason; 15] = [
        Reason::Ok,
        Reason::FormatError,
        Reason::JsonError,
        Reason::SchemaError,
        Reason::WrongName,
        Reason::WrongArgs,
        Reason::MissingCall,
        Reason::ExtraCall,
        Reason::InputError,
        Reason::ToolError,
        Reason::TurnLimit,
        Reason::TokenLimit,
        Reason::StateMismatch,
        Reason::Loop,
        Reason::EnvError,
    ];

    /// The snake_case code used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::FormatError => "format_error",
            Reason::JsonError => "json_error",
            Reason::SchemaError => "schema_error",
            Reason::WrongName => "wrong_name",
            Reason::WrongArgs => "wrong_args",
            Reason::MissingCall => "missing_call",
            Reason::ExtraCall => "extra_call",
            Reason::InputError => "input_error",
            Reason::ToolError => "tool_error",
            Reason::TurnLimit => "turn_limit",
            Reason::TokenLimit => "token_limit",
            Reason::StateMismatch => "state_mismatch",
            Reason::Loop => "loop",
            Reason::EnvError => "env_error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's judgement of one completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The scalar reward (1/0 for the binary rules; partial for ablations).
    pub reward: f64,
    /// The main reason for the reward.
    pub reason: Reason,
    /// A short human-readable explanation (empty when `reason` is `ok`).
    /// Borrowed when it is a fixed text, so that scoring a line whose
    /// explanation needs no formatting allocates nothing.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub detail: Cow<'static, str>,
}

impl Verdict {
    /// Reward 1, reason `ok`.
    pub fn ok() -> Self {
        Self::new(1.0, Reason::Ok, "")
    }

    /// Reward 0 for `reason`, with an explanation.
    pub fn fail(reason: Reason, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(0.0, reason, detail)
    }

    /// Any reward with a reason and explanation.
    pub fn new(reward: f64, reason: Reason, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            reward,
            reason,
            detail: detail.into(),
        }
    }

    /// True when the reason is `ok`.
    pub fn is_ok(&self) -> bool {
        self.reason == Reason::Ok
    }
}
