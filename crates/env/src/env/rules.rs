//! Reward rules for multi-turn episodes: they see the whole episode,
//! including the environment state, not just one completion.

use super::EndReason;
use crate::message::Message;
use crate::registry::ToolResult;
use crate::task::Task;
use crate::tool::ToolError;
use serde_json::Value;
use std::sync::Arc;
use toolgym_reward::{
    is_payload_fault, Call, Completion, FormatPolicy, Matcher, ParseOptions, Reason, RewardRule,
    Severity, Verdict,
};

/// One step of an episode, as rules and solvers see it: the reply, the
/// calls read from it and what running them gave, failures included.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    /// 1-based step number.
    pub turn: usize,
    /// The reply as the model wrote it.
    pub action: String,
    /// The calls read from the reply (`None`: no tool-call block, or an
    /// unreadable one).
    pub calls: Option<Vec<Call>>,
    /// One result per call, in order. Calls to unknown tools and calls
    /// whose arguments break the tool's schema are here too, as errors:
    /// they never reach a handler (or the state).
    pub results: Vec<ToolResult>,
    /// Why the tool-call block could not be read, when it could not.
    pub format_error: Option<String>,
}

impl StepRecord {
    /// The failed calls of this step.
    pub fn tool_errors(&self) -> impl Iterator<Item = &ToolResult> {
        self.results.iter().filter(|r| !r.is_ok())
    }

    /// The reply called no tool (an answer).
    pub fn is_answer(&self) -> bool {
        self.format_error.is_none() && self.calls.as_ref().is_none_or(Vec::is_empty)
    }
}

/// What an [`EpisodeRule`] (and a reference solver) sees: the task, the
/// reset seed, the episode state, the conversation and every step so far.
///
/// As a step rule it runs after each step (that step is the last of
/// `steps`); as a final rule, once when the episode ends (`end` is set).
pub struct EpisodeView<'a, S> {
    /// The task.
    pub task: &'a Task,
    /// The seed the episode was reset with.
    pub seed: u64,
    /// The environment state after this step's calls ran.
    pub state: &'a S,
    /// The whole conversation, this step's assistant and tool messages
    /// included.
    pub messages: &'a [Message],
    /// Every step of the episode so far, in order.
    pub steps: &'a [StepRecord],
    /// Every call made in the episode so far, in order (failed ones
    /// included).
    pub episode_calls: &'a [Call],
    /// Set when the episode ends in this step (final rules see it).
    pub end: Option<EndReason>,
}

impl<S> EpisodeView<'_, S> {
    /// The number of steps so far.
    pub fn turn(&self) -> usize {
        self.steps.len()
    }

    /// The latest step.
    pub fn last(&self) -> Option<&StepRecord> {
        self.steps.last()
    }

    /// The latest step's reply (`""` before the first step).
    pub fn action(&self) -> &str {
        self.last().map_or("", |s| s.action.as_str())
    }

    /// The latest step's calls.
    pub fn calls(&self) -> Option<&[Call]> {
        self.last().and_then(|s| s.calls.as_deref())
    }

    /// The latest step's results.
    pub fn results(&self) -> &[ToolResult] {
        self.last().map_or(&[], |s| s.results.as_slice())
    }

    /// Every result of the episode, with its step number.
    pub fn all_results(&self) -> impl Iterator<Item = (usize, &ToolResult)> {
        self.steps
            .iter()
            .flat_map(|s| s.results.iter().map(move |r| (s.turn, r)))
    }

    /// Every failed call of the episode, with its step number.
    pub fn tool_errors(&self) -> impl Iterator<Item = (usize, &ToolResult)> {
        self.all_results().filter(|(_, r)| !r.is_ok())
    }

    /// The successful results of calls to `tool`, in order.
    pub fn results_of<'b>(&'b self, tool: &'b str) -> impl Iterator<Item = &'b Value> + 'b {
        self.all_results()
            .filter(move |(_, r)| r.call.name == tool)
            .filter_map(|(_, r)| r.outcome.as_ref().ok())
    }
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
        self.check(view.action())
    }
}

impl ReplyFormat {
    /// The format `template`'s prompts ask for: the think block required
    /// only where the template asks for one
    /// ([`crate::ChatTemplate::uses_reasoning`]; `ChatMlTemplate::qwen2_5()`
    /// does not).
    ///
    /// ```
    /// use toolgym_env::{env::ReplyFormat, ChatMlTemplate};
    /// assert!(ReplyFormat::for_template(&ChatMlTemplate::compact_multi_turn()).require_think);
    /// assert!(!ReplyFormat::for_template(&ChatMlTemplate::qwen2_5()).require_think);
    /// ```
    pub fn for_template(template: &dyn crate::ChatTemplate) -> Self {
        Self {
            require_think: template.uses_reasoning(),
        }
    }

    /// Checks one reply.
    pub fn check(&self, reply: &str) -> Verdict {
        // Read whole, as the reward crate reads a reply of an episode.
        let c = Completion::parse_with(reply, &ParseOptions::REPLY);
        let answer = c.tool_call_blocks.is_empty();
        // What breaks a reply is the reward crate's rule for a reply of an
        // episode (`EpisodeJudgement`), so the same replies fail; the first
        // fault in the order found is reported (the episode verdict reports
        // format faults before payload faults).
        let policy = FormatPolicy {
            require_think: self.require_think,
            ..FormatPolicy::default()
        };
        let bad = c
            .diagnostics
            .iter()
            .find(|d| policy.is_format_fault(d, answer) || is_payload_fault(d));
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
        self.matcher
            .compare(view.episode_calls, &view.task.ground_truth)
            .verdict("episode calls")
    }
}

/// A reward-crate rule applied to this step's reply against the task's
/// ground truth (e.g. the paper's `binary` for the first step), the reply
/// read as a reply ([`toolgym_reward::reply_verdict`]).
pub struct StepRule(pub Arc<dyn RewardRule>);

impl<S> EpisodeRule<S> for StepRule {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        toolgym_reward::reply_verdict(&*self.0, view.action(), &view.task.ground_truth)
    }
}

/// Final rule: a reward-crate rule scores the episode's replies as one
/// ([`RewardRule::score_episode`]) against the task's ground truth: the
/// reward TRL's `turn="all"` and verl's `episode=True` give the same
/// replies, the rule's options and partial credit included (`binary` with
/// `think=false`, `fine-grained`). A rule without episode semantics (the
/// released script's) gives an `input_error` verdict: pick a `binary` or
/// `fine-grained` rule.
pub struct EpisodeReward(pub Arc<dyn RewardRule>);

impl<S> EpisodeRule<S> for EpisodeReward {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        let turns: Vec<&str> = view.steps.iter().map(|s| s.action.as_str()).collect();
        toolgym_reward::episode_verdict(&*self.0, &turns, &view.task.ground_truth)
    }
}

/// Final rule: every reply of the episode passes [`ReplyFormat`] (the first
/// that does not decides the verdict). Use it instead of a per-step format
/// reward, which would pay a policy for padding episodes with turns.
///
/// `EveryReply::default()` requires the think block (the paper's format);
/// [`EveryReply::for_template`] asks what the prompts ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EveryReply(pub ReplyFormat);

impl EveryReply {
    /// Every reply in the format `template`'s prompts ask for
    /// ([`ReplyFormat::for_template`]).
    pub fn for_template(template: &dyn crate::ChatTemplate) -> Self {
        Self(ReplyFormat::for_template(template))
    }
}

impl<S> EpisodeRule<S> for EveryReply {
    fn name(&self) -> &str {
        "every-reply-format"
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        for step in view.steps {
            let v = self.0.check(&step.action);
            if !v.is_ok() {
                return Verdict::fail(v.reason, format!("turn {}: {}", step.turn, v.detail));
            }
        }
        Verdict::ok()
    }
}

/// Final rule: no call of the episode failed. Unknown tools and arguments
/// that break a schema always count; handler refusals (`tool_error`, e.g.
/// "insufficient funds") count unless [`NoToolErrors::allow_refusals`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoToolErrors {
    /// Let handler refusals (`ToolError::Failed`) pass: the model may try
    /// an action the environment turns down, as long as it asked properly.
    pub allow_refusals: bool,
}

impl NoToolErrors {
    /// Every failed call counts.
    pub fn strict() -> Self {
        Self::default()
    }

    /// Handler refusals pass; unknown tools, invalid arguments and crashes
    /// still fail.
    pub fn allowing_refusals() -> Self {
        Self {
            allow_refusals: true,
        }
    }
}

impl<S> EpisodeRule<S> for NoToolErrors {
    fn name(&self) -> &str {
        "no-tool-errors"
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        let bad = view.tool_errors().find(|(_, r)| {
            !(self.allow_refusals && matches!(r.outcome, Err(ToolError::Failed { .. })))
        });
        match bad {
            None => Verdict::ok(),
            Some((turn, r)) => {
                let e = r.outcome.as_ref().err().map(|e| (e.kind(), e.to_string()));
                let (kind, message) = e.unwrap_or(("tool_error", String::new()));
                Verdict::fail(
                    Reason::ToolError,
                    format!("turn {turn}: {} {kind}: {message}", r.call.name),
                )
            }
        }
    }
}

/// Final rule: the episode ended on its own ([`EndReason::Answered`] or
/// [`EndReason::Done`]), not at a turn or token limit, not on an
/// unreadable reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Finished;

impl<S> EpisodeRule<S> for Finished {
    fn name(&self) -> &str {
        "finished"
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        match view.end {
            Some(EndReason::Answered | EndReason::Done | EndReason::Scored) => Verdict::ok(),
            Some(EndReason::TurnLimit) => {
                Verdict::fail(Reason::TurnLimit, "the turn limit ended the episode")
            }
            Some(EndReason::TokenLimit) => {
                Verdict::fail(Reason::TokenLimit, "the token budget ended the episode")
            }
            Some(EndReason::FormatError) => {
                Verdict::fail(Reason::FormatError, "an unreadable reply ended the episode")
            }
            Some(EndReason::EnvError) => Verdict::fail(Reason::EnvError, "the environment failed"),
            Some(EndReason::AlreadyOver) | None => {
                Verdict::fail(Reason::TurnLimit, "the episode has not ended")
            }
        }
    }
}

/// Step or final rule: the model did not repeat the same calls in more
/// than `max_repeats` consecutive steps (a lookup loop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoLoop {
    /// Most consecutive steps with identical calls that pass.
    pub max_repeats: usize,
}

impl Default for NoLoop {
    /// The same calls twice in a row pass; a third time is a loop.
    fn default() -> Self {
        Self { max_repeats: 2 }
    }
}

impl<S> EpisodeRule<S> for NoLoop {
    fn name(&self) -> &str {
        "no-loop"
    }

    fn score(&self, view: &EpisodeView<'_, S>) -> Verdict {
        let mut run = 0;
        let mut prev: Option<&Vec<Call>> = None;
        for step in view.steps {
            match (&step.calls, prev) {
                (Some(c), Some(p)) if !c.is_empty() && c == p => run += 1,
                _ => run = 1,
            }
            if run > self.max_repeats {
                return Verdict::fail(
                    Reason::Loop,
                    format!("turn {}: the same calls {run} times in a row", step.turn),
                );
            }
            prev = step.calls.as_ref();
        }
        Verdict::ok()
    }
}
