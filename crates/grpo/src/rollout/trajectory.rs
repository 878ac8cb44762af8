//! What an episode leaves behind: token ids with a train mask, the
//! sampler's log-probs, every step's reward and verdicts, and how it ended.

use std::sync::Arc;
use toolgym_env::{EndReason, StepInfo, Task};
use toolgym_reward::{Reason, Verdict};

/// The most bytes of an env failure's message kept in a trajectory.
const MAX_ERROR_BYTES: usize = 2048;

/// How an episode's reward is made from its steps' rewards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EpisodeReward {
    /// The sum of every step's reward (the default; for a single-turn env,
    /// the one verdict's reward).
    #[default]
    Sum,
    /// The last step's reward only (the end-of-episode judgement).
    Last,
}

/// One step of an episode: its reward and what the env said about it.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutcome {
    /// The step's reward.
    pub reward: f64,
    /// Verdicts, calls, results and end of the step.
    pub info: StepInfo,
}

/// One episode as token ids: the first prompt, then everything after it —
/// the model's replies exactly as sampled (train mask 1) and what the
/// environment added between turns (tool results, the next assistant
/// header; train mask 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    /// The task.
    pub task: Arc<Task>,
    /// The env's name (for logs and errors).
    pub env: String,
    /// The seed the env was reset with (shared by the G episodes of a task).
    pub reset_seed: u64,
    /// The first prompt's ids.
    pub prompt: Vec<u32>,
    /// Tokens cut off the front of the first prompt (only with
    /// `truncate_prompts`; 0 otherwise).
    pub prompt_cut: usize,
    /// Every id after the prompt: model and environment tokens.
    pub tokens: Vec<u32>,
    /// 1 for a model token (trained on), 0 for an environment token.
    pub train_mask: Vec<u8>,
    /// The sampler's temperature-1 log-prob of each model token (0 for
    /// environment tokens, and for replies that were not sampled).
    pub logprobs: Vec<f32>,
    /// The model's replies as text, one per turn (what `step` received).
    pub replies: Vec<String>,
    /// Replies cut at the per-turn token limit.
    pub cut_replies: usize,
    /// Every step the env took, the truncation step included.
    pub steps: Vec<StepOutcome>,
    /// The episode's reward (see [`EpisodeReward`]).
    pub reward: f64,
    /// Why it ended (`None`: the actor had no reply, e.g. a demonstration
    /// that gave up).
    pub end: Option<EndReason>,
    /// What went wrong, when the env failed or the prompt was too long.
    pub error: Option<String>,
    /// Whether the env failure is one the rollout found in what the env
    /// wrote, which no reply provokes: a next prompt that does not extend
    /// the last (a template that rewrites past turns), text that cannot
    /// be tokenised. Such an episode is left out of the update in either
    /// [`crate::config::EnvFailures`] mode.
    pub failure_not_provoked: bool,
    /// Seconds spent inside the env (reset, step, truncate).
    pub env_seconds: f64,
}

impl Trajectory {
    pub(crate) fn new(task: Arc<Task>, reset_seed: u64) -> Self {
        Self {
            task,
            env: String::new(),
            reset_seed,
            prompt: Vec::new(),
            prompt_cut: 0,
            tokens: Vec::new(),
            train_mask: Vec::new(),
            logprobs: Vec::new(),
            replies: Vec::new(),
            cut_replies: 0,
            steps: Vec::new(),
            reward: 0.0,
            end: None,
            error: None,
            failure_not_provoked: false,
            env_seconds: 0.0,
        }
    }

    /// Model turns taken.
    pub fn turns(&self) -> usize {
        self.replies.len()
    }

    /// Tokens the model wrote (trained on).
    pub fn model_tokens(&self) -> usize {
        self.train_mask.iter().filter(|&&m| m == 1).count()
    }

    /// Tokens the environment added (masked out of the loss).
    pub fn env_tokens(&self) -> usize {
        self.train_mask.len() - self.model_tokens()
    }

    /// Prompt plus every later token.
    pub fn len(&self) -> usize {
        self.prompt.len() + self.tokens.len()
    }

    /// Whether the episode has no token at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends the episode as an env failure: `message` (prefixed with the
    /// env and the task) is its error.
    pub(crate) fn fail_env(&mut self, message: impl std::fmt::Display) {
        let mut message = message.to_string();
        if message.len() > MAX_ERROR_BYTES {
            // A panic message of megabytes went into every metrics line
            // and error that quotes it.
            let total = message.len();
            let mut cut = MAX_ERROR_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(&format!("… ({total} bytes in all)"));
        }
        self.error = Some(format!(
            "env {} on task {}: {message}",
            self.env, self.task.id
        ));
        self.end = Some(EndReason::EnvError);
    }

    /// Whether the env failed during the episode.
    pub fn env_failed(&self) -> bool {
        self.end == Some(EndReason::EnvError)
    }

    /// Whether GRPO leaves the episode out of its group's statistics, the
    /// loss and the logged reward: an env failure with `mode` `LeaveOut`;
    /// with `Scored`, one no reply can have provoked (before the first
    /// reply, or [`Trajectory::failure_not_provoked`]).
    pub fn left_out_of_update(&self, mode: crate::config::EnvFailures) -> bool {
        self.env_failed()
            && (mode == crate::config::EnvFailures::LeaveOut
                || self.model_tokens() == 0
                || self.failure_not_provoked)
    }

    /// Whether the episode was not run: its first prompt is over the
    /// prompt limit (`max_prompt_tokens`, or the model's context).
    pub fn prompt_over_limit(&self) -> bool {
        self.end == Some(EndReason::TokenLimit) && self.error.is_some() && self.prompt.is_empty()
    }

    /// The episode as one verdict: its reward, and the reason of its last
    /// step's main verdict (an env failure is `env_error`, a prompt over
    /// the limit `token_limit`). An env that reports no verdict is judged
    /// by its reward: `ok` when positive, else `state_mismatch`, or the
    /// limit that cut the episode short.
    pub fn verdict(&self) -> Verdict {
        if let Some(e) = &self.error {
            let reason = if self.env_failed() {
                Reason::EnvError
            } else {
                Reason::TokenLimit
            };
            return Verdict::new(0.0, reason, e.clone());
        }
        let main = self.steps.last().and_then(|s| s.info.main_verdict());
        match (main, self.end) {
            (Some(v), _) => Verdict::new(self.reward, v.reason, v.detail.clone()),
            (None, Some(EndReason::TurnLimit)) => {
                Verdict::new(self.reward, Reason::TurnLimit, "turn limit")
            }
            (None, Some(EndReason::TokenLimit)) => {
                Verdict::new(self.reward, Reason::TokenLimit, "token limit")
            }
            (None, None) => Verdict::new(self.reward, Reason::InputError, "no reply"),
            (None, Some(_)) if self.reward > 0.0 => Verdict::new(self.reward, Reason::Ok, ""),
            (None, Some(_)) => Verdict::new(self.reward, Reason::StateMismatch, "reward 0"),
        }
    }

    /// Whether the episode succeeded: its [`Trajectory::verdict`] is `ok`.
    pub fn success(&self) -> bool {
        self.verdict().is_ok()
    }

    /// Every verdict of every step (for reason histograms), with the
    /// engine's own failure when there was one; an earlier step's verdict
    /// carried to the last ([`toolgym_env::env::CARRIED_STEP_VERDICT`]) is
    /// counted once, at its own step.
    pub fn all_verdicts(&self) -> Vec<Verdict> {
        let mut out: Vec<Verdict> = self
            .steps
            .iter()
            .flat_map(|s| s.info.verdicts.iter())
            .filter(|v| v.rule != toolgym_env::env::CARRIED_STEP_VERDICT)
            .map(|v| v.verdict.clone())
            .collect();
        if out.is_empty() || self.error.is_some() {
            out.push(self.verdict());
        }
        out
    }

    /// Failed tool calls by kind (`unknown_tool`, `invalid_arguments`,
    /// `tool_error`, `tool_crashed`, `not_executable`).
    pub fn tool_errors(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.steps
            .iter()
            .flat_map(|s| s.info.tool_errors().map(|(_, kind)| kind))
    }

    /// The last reply (empty when there is none).
    pub fn last_reply(&self) -> &str {
        self.replies.last().map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure's message is kept to its first 2 KiB (at a character
    /// boundary), with its length said: a panic message of megabytes went
    /// into every metrics line quoting it.
    #[test]
    fn a_long_failure_message_is_cut() {
        let task = Arc::new(Task::new("t-1", "test", vec![], vec![], vec![]));
        let mut t = Trajectory::new(task, 0);
        t.fail_env(format!("x{}", "é".repeat(100_000)));
        let error = t.error.as_deref().unwrap();
        assert!(error.len() < MAX_ERROR_BYTES + 200, "{}", error.len());
        assert!(error.ends_with("… (200001 bytes in all)"), "{error}");
        assert_eq!(t.end, Some(EndReason::EnvError));
        let mut short = Trajectory::new(
            Arc::new(Task::new("t-2", "test", vec![], vec![], vec![])),
            0,
        );
        short.fail_env("short");
        assert!(short.error.as_deref().unwrap().ends_with(": short"));
    }

    /// An earlier step's failure carried to the last step decides the
    /// episode's verdict, and is counted once in the reason histogram.
    #[test]
    fn a_carried_step_verdict_decides_the_verdict_and_counts_once() {
        use toolgym_env::env::{RuleVerdict, StepInfo, CARRIED_STEP_VERDICT};
        let verdict = |rule: &str, v: Verdict| RuleVerdict {
            rule: rule.into(),
            weight: 1.0,
            verdict: v,
        };
        let bad = Verdict::fail(Reason::FormatError, "text beside the block");
        let step = |verdicts| StepOutcome {
            reward: 0.0,
            info: StepInfo {
                verdicts,
                ..StepInfo::default()
            },
        };
        let mut t = Trajectory::new(Arc::new(Task::new("t", "test", vec![], vec![], vec![])), 0);
        t.end = Some(EndReason::Answered);
        t.steps = vec![
            step(vec![verdict("reply-format", bad.clone())]),
            step(vec![
                verdict("reply-format", Verdict::ok()),
                verdict(CARRIED_STEP_VERDICT, bad.clone()),
                verdict("calls-match", Verdict::ok()),
            ]),
        ];
        assert_eq!(t.verdict().reason, Reason::FormatError);
        let reasons: Vec<Reason> = t.all_verdicts().iter().map(|v| v.reason).collect();
        assert_eq!(reasons, [Reason::FormatError, Reason::Ok, Reason::Ok]);
    }
}
