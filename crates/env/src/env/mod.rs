//! The environment API: Gymnasium-shaped, for chat and tool calls.
//!
//! An environment is built for one [`Task`] (cheaply: a few `Arc` clones,
//! so build one per rollout). [`ToolEnv::reset`] gives the first
//! [`Observation`] — the conversation, the tools and the rendered prompt —
//! and [`ToolEnv::step`] takes the model's raw completion and returns a
//! [`Step`]: the next observation, the reward, whether the episode
//! terminated or was truncated, and an [`StepInfo`] that says why.
//!
//! * [`SingleTurnEnv`]: one completion, scored by a reward rule against the
//!   task's ground truth (the paper's setting).
//! * [`MultiTurnEnv`]: calls run through a [`crate::ToolRegistry`], results
//!   come back as tool messages, until the model answers without a call,
//!   a user-defined end, or the turn limit.
//! * [`SampledEnv`]: draws a new task from a [`TaskSource`] on each reset.
//!
//! A trainer drives any [`ToolEnv`] the same way (toolgym-grpo's rollout
//! engine): it builds one env per episode with an [`EnvFactory`], resets
//! the G episodes of a task with the same seed, feeds each reply to
//! [`ToolEnv::step`] until the episode is done, and ends episodes that hit
//! its own turn or token limits with [`ToolEnv::truncate`], which gives the
//! reward of a cut-short episode. [`ToolEnv::demonstration`] lets an env
//! offer reference replies for supervised warm starts.
//!
//! The guide `docs/multi_turn.md` walks through writing one.

mod compose;
mod multi_turn;
mod rules;
mod single_turn;

pub use compose::{AllOf, Gate, WeightedSum};
pub use multi_turn::{
    Action, FormatErrorPolicy, MultiTurnConfig, MultiTurnEnv, MultiTurnSpec, StepRewards,
    CARRIED_STEP_VERDICT,
};
pub use rules::{
    CallsMatch, EpisodeReward, EpisodeRule, EpisodeView, EveryReply, Finished, FnRule, NoLoop,
    NoToolErrors, ReplyFormat, StepRecord, StepRule,
};
pub use single_turn::{SingleTurnEnv, SingleTurnSpec};

use crate::message::Message;
use crate::registry::ToolResult;
use crate::rng::mix;
use crate::source::TaskSource;
use crate::task::Task;
use crate::tool::ToolSpec;
use std::sync::Arc;
use toolgym_reward::{Call, Reason, Verdict};

/// What the model sees before it acts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// The conversation so far (the task's context plus the episode's turns).
    pub messages: Vec<Message>,
    /// The tools available.
    pub tools: Vec<ToolSpec>,
    /// The prompt text for generation, rendered by the env's template: it
    /// ends where the model's next reply starts. Once the episode is over
    /// it is the finished transcript instead, without a generation header.
    ///
    /// Between turns each prompt extends the previous one: it starts with
    /// the previous prompt, then the reply exactly as the model wrote it,
    /// then the end-of-turn token; what follows (tool results, the next
    /// assistant header) is what a trainer appends as environment tokens.
    pub prompt: String,
}

/// Why an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A single-turn episode's one completion was scored.
    Scored,
    /// The model replied without calling a tool.
    Answered,
    /// The environment's own end condition held.
    Done,
    /// The reply could not be read (invalid tool-call JSON) and the policy
    /// ends the episode.
    FormatError,
    /// The turn limit was reached (the episode is truncated).
    TurnLimit,
    /// The token budget ran out: a trainer's episode budget, or a reply cut
    /// at its length limit (the episode is truncated).
    TokenLimit,
    /// The environment failed (returned an error or panicked, or says so
    /// itself); the episode is over and judged `env_error` with reward 0
    /// (a trainer leaves it out of the update, or scores it as configured).
    EnvError,
    /// `step` was called after the episode had ended.
    AlreadyOver,
}

impl EndReason {
    /// The snake_case code used in logs and metrics (`answered`,
    /// `turn_limit`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Scored => "scored",
            EndReason::Answered => "answered",
            EndReason::Done => "done",
            EndReason::FormatError => "format_error",
            EndReason::TurnLimit => "turn_limit",
            EndReason::TokenLimit => "token_limit",
            EndReason::EnvError => "env_error",
            EndReason::AlreadyOver => "already_over",
        }
    }

    /// Whether the episode was cut short rather than ending on its own.
    pub fn is_truncation(self) -> bool {
        matches!(self, EndReason::TurnLimit | EndReason::TokenLimit)
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule's verdict in a step, with its weight in the reward.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleVerdict {
    /// The rule's name.
    pub rule: String,
    /// Its weight in the reward.
    pub weight: f64,
    /// What it said.
    pub verdict: Verdict,
}

/// Why a step got its reward, and what happened in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepInfo {
    /// 1-based number of this step in the episode.
    pub turn: usize,
    /// Each rule's verdict (step rules, then final rules at the end).
    pub verdicts: Vec<RuleVerdict>,
    /// The calls read from the completion (`None`: no tool-call block, or
    /// unreadable).
    pub calls: Option<Vec<Call>>,
    /// The tool results of this step (multi-turn).
    pub results: Vec<ToolResult>,
    /// Set when the episode ended in this step.
    pub end: Option<EndReason>,
}

impl StepInfo {
    /// The "reason" of the step for logs: the first failing verdict of a
    /// rule that counts (non-zero weight), else the first verdict that
    /// counts. Rules of weight 0 (kept for logging) decide only when no
    /// rule counts.
    pub fn main_verdict(&self) -> Option<&Verdict> {
        let any_counts = self.verdicts.iter().any(|v| v.weight != 0.0);
        let mut considered = self
            .verdicts
            .iter()
            .filter(move |v| !any_counts || v.weight != 0.0);
        considered
            .clone()
            .find(|v| !v.verdict.is_ok())
            .or_else(|| considered.next())
            .map(|v| &v.verdict)
    }

    /// The calls of this step that failed, with the error kind
    /// (`unknown_tool`, `invalid_arguments`, `tool_error`, …).
    pub fn tool_errors(&self) -> impl Iterator<Item = (&Call, &'static str)> {
        self.results
            .iter()
            .filter_map(|r| r.outcome.as_ref().err().map(|e| (&r.call, e.kind())))
    }

    /// The reason of [`StepInfo::main_verdict`] (`ok` when there is none).
    pub fn reason(&self) -> Reason {
        self.main_verdict().map(|v| v.reason).unwrap_or(Reason::Ok)
    }
}

/// The result of [`ToolEnv::step`].
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// What the model sees next.
    pub observation: Observation,
    /// The reward of this step (final rewards included in the last step).
    pub reward: f64,
    /// The episode reached a terminal state.
    pub terminated: bool,
    /// The episode was cut short (turn limit).
    pub truncated: bool,
    /// Why, and what happened.
    pub info: StepInfo,
}

/// The reply without one trailing end-of-turn token (whitespace is kept:
/// the next prompt must extend the previous one with the reply as written).
pub(crate) fn strip_end_token(action: &str) -> &str {
    toolgym_reward::END_TOKENS
        .iter()
        .find_map(|t| action.strip_suffix(t))
        .unwrap_or(action)
}

impl Step {
    /// What `step` returns when called after the episode ended: reward 0,
    /// terminated, end reason [`EndReason::AlreadyOver`], at model turn
    /// `turn`, with the unchanged `observation`.
    pub fn already_over(observation: Observation, turn: usize) -> Self {
        Step {
            observation,
            reward: 0.0,
            terminated: true,
            truncated: false,
            info: StepInfo {
                turn,
                end: Some(EndReason::AlreadyOver),
                ..StepInfo::default()
            },
        }
    }

    /// The one step of a single-turn episode: `verdict` of rule `rule`
    /// (weight 1) is the reward, the episode ends with
    /// [`EndReason::Scored`], `calls` are the reply's parsed calls (None
    /// when it had no parsable call list).
    pub fn scored(
        observation: Observation,
        rule: impl Into<String>,
        verdict: Verdict,
        calls: Option<Vec<Call>>,
    ) -> Self {
        Step {
            observation,
            reward: verdict.reward,
            terminated: true,
            truncated: false,
            info: StepInfo {
                turn: 1,
                verdicts: vec![RuleVerdict {
                    rule: rule.into(),
                    weight: 1.0,
                    verdict,
                }],
                calls,
                results: Vec::new(),
                end: Some(EndReason::Scored),
            },
        }
    }

    /// Whether the episode is over.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A tool-calling environment. `Send`, so rollouts can run on worker
/// threads; build one per rollout from its task.
///
/// Only `reset`, `step` and `task` are required. A trainer also calls
/// [`ToolEnv::step_cut`] for a reply a length limit cut off,
/// [`ToolEnv::truncate`] when its own turn or token limit cuts an episode
/// short, and [`ToolEnv::demonstration`] for supervised warm starts.
/// A trainer catches panics of every method (and of `Drop`) at this
/// boundary, and gives `reset`, `step`, `step_cut`, `truncate` and
/// `demonstration` (and the [`EnvFactory`]'s `make`, with the env's
/// `name`) a time limit (`Drop` is not waited for): the
/// episode then ends with [`EndReason::EnvError`] (as it does when the env
/// reports that reason itself) and training goes on. By default such an
/// episode is left out of the update; toolgym-grpo's `env_failures =
/// "scored"` scores it `env_failure_reward` instead.
pub trait ToolEnv: Send {
    /// Starts (or restarts) the episode. The G episodes of a task that a
    /// trainer compares are reset with the same seed, so an env with
    /// randomness of its own should draw it from the seed (`None`: a seed
    /// derived from the task). [`SampledEnv`] uses it to draw a task.
    fn reset(&mut self, seed: Option<u64>) -> Observation;

    /// Takes the model's raw completion (the reply as generated, without
    /// the end-of-turn token; a trailing end-of-turn token is ignored).
    /// After the end it returns a terminal step with no reward.
    fn step(&mut self, action: &str) -> Step;

    /// Takes a reply that a length limit cut off (the model's per-reply
    /// limit or the trainer's episode budget: no end-of-turn token). The
    /// default steps it as written, as verl scores a truncated response
    /// (a single-turn scorer finds its missing closing tag).
    /// [`MultiTurnEnv`] reads it, runs the calls it completed, and ends the
    /// episode as [`EndReason::TokenLimit`] where the reply would have
    /// ended it as an answer without a call or as a tool-call block the
    /// limit cut open: a cut-off answer is not a finished one. A block the
    /// model closed and wrote unreadably is its own error, judged as in
    /// `step` (a format error under `FormatErrorPolicy::End`), unless a
    /// later block is cut open too: then nothing runs and the episode ends
    /// as [`EndReason::TokenLimit`]. Override it
    /// where a cut reply must be judged otherwise.
    fn step_cut(&mut self, action: &str) -> Step {
        self.step(action)
    }

    /// The current task.
    fn task(&self) -> &Arc<Task>;

    /// A short name for logs and errors (default: the type's name).
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Ends the episode from outside: a trainer's turn or token limit
    /// ([`EndReason::TurnLimit`] / [`EndReason::TokenLimit`]) cut it short
    /// before the env ended it. The returned step (`truncated`, with
    /// `info.end` set to `reason`) carries the reward of the truncated
    /// episode, e.g. the env's final rules. The default gives reward 0.
    fn truncate(&mut self, reason: EndReason) -> Step {
        Step {
            observation: Observation::default(),
            reward: 0.0,
            terminated: false,
            truncated: true,
            info: StepInfo {
                end: Some(reason),
                ..StepInfo::default()
            },
        }
    }

    /// The reply a reference solver would give now, end-of-turn token
    /// included (an SFT target), or `None` when the env has no solver or
    /// the episode is over. Stepping with it and asking again gives a whole
    /// demonstration episode.
    fn demonstration(&self) -> Option<String> {
        None
    }
}

impl<E: ToolEnv + ?Sized> ToolEnv for Box<E> {
    fn reset(&mut self, seed: Option<u64>) -> Observation {
        (**self).reset(seed)
    }
    fn step(&mut self, action: &str) -> Step {
        (**self).step(action)
    }
    fn step_cut(&mut self, action: &str) -> Step {
        (**self).step_cut(action)
    }
    fn task(&self) -> &Arc<Task> {
        (**self).task()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn truncate(&mut self, reason: EndReason) -> Step {
        (**self).truncate(reason)
    }
    fn demonstration(&self) -> Option<String> {
        (**self).demonstration()
    }
}

/// Builds an environment for a task; what a trainer holds to make one env
/// per episode. [`SingleTurnSpec`] and [`MultiTurnSpec`] are factories, and
/// so is any `Fn(Arc<Task>) -> E` closure.
pub trait EnvFactory: Send + Sync {
    /// The environment type.
    type Env: ToolEnv + 'static;

    /// A fresh environment for `task` (not yet reset).
    fn make(&self, task: Arc<Task>) -> Self::Env;

    /// State of the factory that later episodes depend on (a curriculum's
    /// level, counters its envs update through shared state), saved with
    /// every training checkpoint so that a resumed run continues exactly.
    /// The trainers also take it before and after each validation, and
    /// restore it when validation moved it. `Ok(None)`, the default, is a
    /// stateless factory. An error stops the run where it was asked,
    /// naming it: a checkpoint without the state would resume another run;
    /// so does a panic, or a call still running after the trainer's env
    /// time limit (`env_timeout_s`: the hooks are timed as env calls are).
    fn checkpoint_state(&self) -> Result<Option<serde_json::Value>, String> {
        Ok(None)
    }

    /// Restores what [`EnvFactory::checkpoint_state`] saved: when a run
    /// resumes from a checkpoint holding it, before any episode of the
    /// resumed run, and mid-run after a validation that changed the state
    /// (so it may be called more than once in a live run). An error, a
    /// panic or a time-out stops the run, naming it.
    fn restore_state(&self, state: &serde_json::Value) -> Result<(), String> {
        let _ = state;
        Err(NO_STATE.into())
    }
}

impl<E: ToolEnv + 'static, F: Fn(Arc<Task>) -> E + Send + Sync> EnvFactory for F {
    type Env = E;
    fn make(&self, task: Arc<Task>) -> E {
        self(task)
    }
}

/// The object-safe form of [`EnvFactory`], for holding any factory behind
/// an `Arc<dyn DynEnvFactory>` (every `EnvFactory` is one).
pub trait DynEnvFactory: Send + Sync {
    /// A fresh, boxed environment for `task` (not yet reset).
    fn make_env(&self, task: Arc<Task>) -> Box<dyn ToolEnv>;

    /// [`EnvFactory::checkpoint_state`] (default: stateless).
    fn checkpoint_state(&self) -> Result<Option<serde_json::Value>, String> {
        Ok(None)
    }

    /// [`EnvFactory::restore_state`] (default: refuses any state).
    fn restore_state(&self, state: &serde_json::Value) -> Result<(), String> {
        let _ = state;
        Err(NO_STATE.into())
    }
}

/// Why a stateless factory refuses a checkpoint's state.
const NO_STATE: &str = "this factory keeps no state (EnvFactory::restore_state is not \
                        implemented), but the checkpoint holds some";

impl<F: EnvFactory> DynEnvFactory for F {
    fn make_env(&self, task: Arc<Task>) -> Box<dyn ToolEnv> {
        Box::new(self.make(task))
    }
    fn checkpoint_state(&self) -> Result<Option<serde_json::Value>, String> {
        EnvFactory::checkpoint_state(self)
    }
    fn restore_state(&self, state: &serde_json::Value) -> Result<(), String> {
        EnvFactory::restore_state(self, state)
    }
}

/// A finished episode.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    /// The first observation.
    pub first: Observation,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Episode {
    /// The sum of the steps' rewards.
    pub fn total_reward(&self) -> f64 {
        self.steps.iter().map(|s| s.reward).sum()
    }

    /// Why it ended.
    pub fn end(&self) -> Option<EndReason> {
        self.steps.last().and_then(|s| s.info.end)
    }
}

/// Runs one episode: reset (with no seed), then `policy(observation)` →
/// completion → step, until the episode ends. When `max_steps` steps were
/// taken first, the episode is ended with [`ToolEnv::truncate`]
/// ([`EndReason::TurnLimit`]), whose step is the last one (so a
/// multi-turn env's final rules still run). See [`run_episode_seeded`].
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use toolgym_env::env::{run_episode, SingleTurnSpec};
/// use toolgym_env::{ChatTemplate, Message, Task, ToolSpec};
/// use toolgym_reward::Call;
///
/// let task = Arc::new(Task::new("t", "demo",
///     vec![ToolSpec::builder("ping", "Pings.").build()],
///     vec![Message::user("ping please")],
///     vec![Call::new("ping", json!({})).unwrap()]));
/// let spec = SingleTurnSpec::tool_n1();
/// let reply = spec.template.target(&task);   // the canonical right answer
/// let mut env = spec.env(task);
/// let ep = run_episode(&mut env, 10, |_obs| reply.clone());
/// assert_eq!(ep.total_reward(), 1.0);
/// ```
pub fn run_episode(
    env: &mut dyn ToolEnv,
    max_steps: usize,
    policy: impl FnMut(&Observation) -> String,
) -> Episode {
    run_episode_seeded(env, None, max_steps, policy)
}

/// [`run_episode`] with a reset seed.
pub fn run_episode_seeded(
    env: &mut dyn ToolEnv,
    seed: Option<u64>,
    max_steps: usize,
    mut policy: impl FnMut(&Observation) -> String,
) -> Episode {
    let first = env.reset(seed);
    let mut obs = first.clone();
    let mut steps = Vec::new();
    loop {
        if steps.len() >= max_steps {
            steps.push(env.truncate(EndReason::TurnLimit));
            break;
        }
        let action = policy(&obs);
        let step = env.step(&action);
        obs = step.observation.clone();
        let done = step.done();
        steps.push(step);
        if done {
            break;
        }
    }
    Episode { first, steps }
}

/// A Gym-style environment over a task source: each [`ToolEnv::reset`]
/// draws a task (by seed, or the next one) and builds a fresh inner env.
///
/// ```
/// use std::sync::Arc;
/// use toolgym_env::env::{SampledEnv, SingleTurnSpec, ToolEnv};
/// use toolgym_env::synthetic::{SyntheticConfig, SyntheticTasks, Split};
/// let source = Arc::new(SyntheticTasks::new(SyntheticConfig::tiny(1)).unwrap().split(Split::Train));
/// let mut env = SampledEnv::new(source, SingleTurnSpec::compact());
/// let a = env.reset(Some(5));
/// let b = env.reset(Some(5));
/// assert_eq!(a, b);
/// assert!(a.prompt.ends_with("<|im_start|>assistant\n"));
/// ```
pub struct SampledEnv<F: EnvFactory> {
    source: Arc<dyn TaskSource>,
    factory: F,
    inner: Option<F::Env>,
    draws: u64,
}

impl<F: EnvFactory> SampledEnv<F> {
    /// An env drawing from `source`, building inner envs with `factory`.
    pub fn new(source: Arc<dyn TaskSource>, factory: F) -> Self {
        Self {
            source,
            factory,
            inner: None,
            draws: 0,
        }
    }

    fn draw(&mut self, seed: Option<u64>) -> Arc<Task> {
        let key = seed.unwrap_or_else(|| {
            self.draws += 1;
            mix(0x5eed, self.draws)
        });
        let index = match self.source.len() {
            Some(n) if n > 0 => mix(key, 1) % n as u64,
            _ => mix(key, 1),
        };
        self.source
            .get(index)
            .unwrap_or_else(|| Arc::new(Task::new("empty", "none", vec![], vec![], vec![])))
    }
}

impl<F: EnvFactory> ToolEnv for SampledEnv<F>
where
    F::Env: ToolEnv,
{
    fn reset(&mut self, seed: Option<u64>) -> Observation {
        let task = self.draw(seed);
        let mut env = self.factory.make(task);
        let obs = env.reset(seed);
        self.inner = Some(env);
        obs
    }

    fn step(&mut self, action: &str) -> Step {
        if self.inner.is_none() {
            self.reset(None);
        }
        match self.inner.as_mut() {
            Some(env) => env.step(action),
            None => Step::already_over(Observation::default(), 0),
        }
    }

    fn step_cut(&mut self, action: &str) -> Step {
        match self.inner.as_mut() {
            Some(env) => env.step_cut(action),
            None => Step::already_over(Observation::default(), 0),
        }
    }

    fn task(&self) -> &Arc<Task> {
        static EMPTY: std::sync::OnceLock<Arc<Task>> = std::sync::OnceLock::new();
        match &self.inner {
            Some(env) => env.task(),
            None => {
                EMPTY.get_or_init(|| Arc::new(Task::new("empty", "none", vec![], vec![], vec![])))
            }
        }
    }

    fn name(&self) -> &str {
        match &self.inner {
            Some(env) => env.name(),
            None => "SampledEnv",
        }
    }

    fn truncate(&mut self, reason: EndReason) -> Step {
        match self.inner.as_mut() {
            Some(env) => env.truncate(reason),
            None => Step::already_over(Observation::default(), 0),
        }
    }

    fn demonstration(&self) -> Option<String> {
        self.inner.as_ref().and_then(|env| env.demonstration())
    }
}
