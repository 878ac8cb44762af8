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

mod multi_turn;
mod rules;
mod single_turn;

pub use multi_turn::{FormatErrorPolicy, MultiTurnConfig, MultiTurnEnv, MultiTurnSpec};
pub use rules::{CallsMatch, EpisodeRule, EpisodeView, FnRule, ReplyFormat, StepRule};
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
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The conversation so far (the task's context plus the episode's turns).
    pub messages: Vec<Message>,
    /// The tools available.
    pub tools: Vec<ToolSpec>,
    /// The prompt text for generation, rendered by the env's template.
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
    /// `step` was called after the episode had ended.
    AlreadyOver,
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
    /// The first failing verdict, else the first verdict (the "reason" of
    /// the step for logs).
    pub fn main_verdict(&self) -> Option<&Verdict> {
        self.verdicts
            .iter()
            .map(|v| &v.verdict)
            .find(|v| !v.is_ok())
            .or_else(|| self.verdicts.first().map(|v| &v.verdict))
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

impl Step {
    /// Whether the episode is over.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A tool-calling environment. `Send`, so rollouts can run on worker
/// threads; build one per rollout from its task.
pub trait ToolEnv: Send {
    /// Starts (or restarts) the episode. Per-task environments ignore the
    /// seed; [`SampledEnv`] uses it to draw a task.
    fn reset(&mut self, seed: Option<u64>) -> Observation;

    /// Takes the model's raw completion. Never panics; after the end it
    /// returns a terminal step with no reward.
    fn step(&mut self, action: &str) -> Step;

    /// The current task.
    fn task(&self) -> &Arc<Task>;
}

impl<E: ToolEnv + ?Sized> ToolEnv for Box<E> {
    fn reset(&mut self, seed: Option<u64>) -> Observation {
        (**self).reset(seed)
    }
    fn step(&mut self, action: &str) -> Step {
        (**self).step(action)
    }
    fn task(&self) -> &Arc<Task> {
        (**self).task()
    }
}

/// Builds an environment for a task; what a trainer holds to make one env
/// per rollout.
pub trait EnvFactory: Send + Sync {
    /// The environment type.
    type Env: ToolEnv;

    /// A fresh environment for `task` (not yet reset).
    fn make(&self, task: Arc<Task>) -> Self::Env;
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

/// Runs one episode: reset, then `policy(observation)` → completion →
/// step, until the episode ends or `max_steps` steps were taken.
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
    mut policy: impl FnMut(&Observation) -> String,
) -> Episode {
    let first = env.reset(None);
    let mut obs = first.clone();
    let mut steps = Vec::new();
    for _ in 0..max_steps {
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
            None => unreachable_step(),
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
}

fn unreachable_step() -> Step {
    Step {
        observation: Observation {
            messages: vec![],
            tools: vec![],
            prompt: String::new(),
        },
        reward: 0.0,
        terminated: true,
        truncated: false,
        info: StepInfo {
            end: Some(EndReason::AlreadyOver),
            ..StepInfo::default()
        },
    }
}
