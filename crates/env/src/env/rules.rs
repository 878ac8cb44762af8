//! Reward rules for multi-turn episodes: they see the whole episode,
//! including the environment state, not just one completion.

use super::EndReason;
use crate::message::Message;
use crate::registry::ToolResult;
use crate::task::Task;
use std::sync::Arc;
use toolgym_reward::{
    Call, Completion, Diagnostic, Matcher, Reason, RewardRule, Severity, Verdict,
};

/// What an [`EpisodeRule`] sees: the task, the episode state, the
/// conversation, this step's completion, calls and results, and every call
/// made so far.
pub struct EpisodeView<'a, S> {
    /// The task.
    pub task: &'a Task,
    /// The environment state after this step's calls ran.
    pub state: &'a S,
    /// The whole conversation, this step's assistant and tool messages
    /// included.
    pub messages: &'a [Message],
    /// This step's raw completion.
    pub action: &'a str,
    /// This step's calls (`None`: no tool-call block, or unreadable).
    pub calls: Option<&'a [Call]>,
    /// This step's tool results.
    pub results: &'a [ToolResult],
    /// Every call made in the episode so far, in order.
    pub episode_calls: &'a [Call],
    /// 1-based step number.
    pub turn: usize,
    /// Set when the episode ends in this step (final rules see it).
    pub end: Option<EndReason>,
}

/// A rule that scores an episode step (as a step rule) or a whole episode
/// (as a final rule, run once when it ends). Must not panic.
pub trait EpisodeRule<S>: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &str;
    /// Scores the view.
    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict;
}

/// A rule from a closure — the easy way to check environment state.
///
/// ```
/// use toolgym_env::env::{EpisodeRule, FnRule};
/// use toolgym_reward::{Reason, Verdict};
/// let rule = FnRule::new("balance-is-zero", |v: &toolgym_env::env::EpisodeView<'_, i64>| {
///     if *v.state == 0 { Verdict::ok() } else { Verdict::fail(Reason::WrongArgs, "balance left") }
/// });
/// assert_eq!(EpisodeRule::<i64>::name(&rule), "balance-is-zero");
/// ```
pub struct FnRule<F> {
    name: String,
    f: F,
}

impl<F> FnRule<F> {
    /// A named rule.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        Self {
            name: name.into(),
            f,
        }
    }
}

impl<S, F> EpisodeRule<S> for FnRule<F>
where
    F: Fn(&EpisodeView<'_, S>) -> Verdict + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        (self.f)(view)
    }
}

/// Step rule: the reply is well formed. A reply with tool-call blocks must
/// pass the `binary` format (think block first when required, nothing
/// outside the blocks, valid call JSON); a reply without one is an answer
/// and needs only a closed think block first (when required) and no broken
/// tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyFormat {
    /// Whether a `<think>` block is required.
    pub require_think: bool,
}

impl Default for ReplyFormat {
    /// A think block is required (the paper's format).
    fn default() -> Self {
        Self {
            require_think: true,
        }
    }
}

impl<S> EpisodeRule<S> for ReplyFormat {
    fn name(&self) -> &str {
        "reply-format"
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        let c = Completion::parse(view.action);
        let answer = c.tool_call_blocks.is_empty();
        let bad = c.diagnostics.iter().find(|d| match d {
            Diagnostic::MissingThink => self.require_think,
            Diagnostic::MissingToolCall | Diagnostic::TextOutsideBlocks { .. } => !answer,
            d => d.severity() != Severity::Info,
        });
        match bad {
            None => Verdict::ok(),
            Some(d) => {
                let reason = match d.severity() {
                    Severity::Json => Reason::JsonError,
                    Severity::Shape => Reason::SchemaError,
                    _ => Reason::FormatError,
                };
                Verdict::fail(reason, d.to_string())
            }
        }
    }
}

/// Final rule: the calls of the whole episode match the task's ground
/// truth as a multiset.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallsMatch {
    /// How calls compare.
    pub matcher: Matcher,
}

impl<S> EpisodeRule<S> for CallsMatch {
    fn name(&self) -> &str {
        "calls-match"
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        let outcome = self
            .matcher
            .compare(view.episode_calls, &view.task.ground_truth);
        match outcome.reason() {
            Reason::Ok => Verdict::ok(),
            r => Verdict::fail(r, format!("episode calls vs ground truth: {r}")),
        }
    }
}

/// A reward-crate rule applied to this step's completion against the
/// task's ground truth (e.g. the paper's `binary` for the first step).
pub struct StepRule(pub Arc<dyn RewardRule>);

impl<S> EpisodeRule<S> for StepRule {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        self.0.score(view.action, &view.task.ground_truth)
    }
}
