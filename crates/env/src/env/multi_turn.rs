//! Episodes of several turns: calls run through a tool registry, results
//! come back as tool messages, rewards come from pluggable rules.

use super::rules::{CallsMatch, EpisodeRule, EpisodeView};
use super::{EndReason, EnvFactory, Observation, RuleVerdict, Step, StepInfo, ToolEnv};
use crate::json::dumps;
use crate::message::Message;
use crate::registry::{ToolRegistry, ToolResult};
use crate::task::Task;
use crate::template::ChatTemplate;
use crate::tool::ToolSpec;
use serde_json::json;
use std::sync::Arc;
use toolgym_reward::{Call, Completion, Severity, END_TOKENS};

/// What to do when a reply has a tool-call block that cannot be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FormatErrorPolicy {
    /// End the episode (terminated, [`EndReason::FormatError`]).
    #[default]
    End,
    /// Send the parse error back as a tool message and go on.
    Feedback,
}

/// A user-defined end condition: the state and the conversation so far.
pub type EndCondition<S> = Arc<dyn Fn(&S, &[Message]) -> bool + Send + Sync>;

/// A weighted episode rule.
pub type WeightedRule<S> = (f64, Arc<dyn EpisodeRule<S>>);

/// How multi-turn episodes run and are rewarded.
pub struct MultiTurnConfig<S> {
    /// Most model turns per episode; reaching it truncates the episode.
    pub max_turns: usize,
    /// Rules scored after every step, weighted into that step's reward.
    pub step_rules: Vec<WeightedRule<S>>,
    /// Rules scored once when the episode ends, added to the last reward.
    pub final_rules: Vec<WeightedRule<S>>,
    /// Ends the episode (terminated, [`EndReason::Done`]) when true.
    pub end_when: Option<EndCondition<S>>,
    /// What an unreadable tool-call block does.
    pub on_format_error: FormatErrorPolicy,
}

impl<S> Default for MultiTurnConfig<S> {
    /// 8 turns, no step rules, one final rule: the episode's calls match
    /// the task's ground truth ([`CallsMatch`]).
    fn default() -> Self {
        Self {
            max_turns: 8,
            step_rules: Vec::new(),
            final_rules: vec![(1.0, Arc::new(CallsMatch::default()))],
            end_when: None,
            on_format_error: FormatErrorPolicy::End,
        }
    }
}

impl<S> MultiTurnConfig<S> {
    /// Like default, but with no rules at all.
    pub fn empty() -> Self {
        Self {
            final_rules: Vec::new(),
            ..Self::default()
        }
    }

    /// Sets the turn limit.
    pub fn max_turns(mut self, n: usize) -> Self {
        self.max_turns = n.max(1);
        self
    }

    /// Adds a step rule with a weight.
    pub fn step_rule(mut self, weight: f64, rule: impl EpisodeRule<S> + 'static) -> Self {
        self.step_rules.push((weight, Arc::new(rule)));
        self
    }

    /// Adds a final rule with a weight.
    pub fn final_rule(mut self, weight: f64, rule: impl EpisodeRule<S> + 'static) -> Self {
        self.final_rules.push((weight, Arc::new(rule)));
        self
    }

    /// Sets the end condition.
    pub fn end_when(mut self, f: impl Fn(&S, &[Message]) -> bool + Send + Sync + 'static) -> Self {
        self.end_when = Some(Arc::new(f));
        self
    }

    /// Sets the format-error policy.
    pub fn on_format_error(mut self, policy: FormatErrorPolicy) -> Self {
        self.on_format_error = policy;
        self
    }
}

type StateInit<S> = Arc<dyn Fn(&Task) -> S + Send + Sync>;

/// Everything shared by the episodes of an environment family: registry,
/// template, config and how to build the initial state from a task.
/// Cheap to clone; builds a [`MultiTurnEnv`] per rollout.
pub struct MultiTurnSpec<S> {
    /// The tools and their handlers.
    pub registry: Arc<ToolRegistry<S>>,
    /// The prompt template.
    pub template: Arc<dyn ChatTemplate>,
    /// Turn limit, rules, end condition.
    pub config: Arc<MultiTurnConfig<S>>,
    init: StateInit<S>,
}

impl<S> Clone for MultiTurnSpec<S> {
    fn clone(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            template: self.template.clone(),
            config: self.config.clone(),
            init: self.init.clone(),
        }
    }
}

impl<S: Send + 'static> MultiTurnSpec<S> {
    /// A spec; `init` builds each episode's initial state from its task.
    pub fn new(
        registry: ToolRegistry<S>,
        template: Arc<dyn ChatTemplate>,
        config: MultiTurnConfig<S>,
        init: impl Fn(&Task) -> S + Send + Sync + 'static,
    ) -> Self {
        Self {
            registry: Arc::new(registry),
            template,
            config: Arc::new(config),
            init: Arc::new(init),
        }
    }

    /// An environment for one task (call [`ToolEnv::reset`] before use).
    pub fn env(&self, task: Arc<Task>) -> MultiTurnEnv<S> {
        let state = (self.init)(&task);
        MultiTurnEnv {
            messages: task.messages.clone(),
            task,
            spec: self.clone(),
            state,
            episode_calls: Vec::new(),
            turn: 0,
            done: false,
        }
    }
}

impl<S: Send + 'static> EnvFactory for MultiTurnSpec<S> {
    type Env = MultiTurnEnv<S>;
    fn make(&self, task: Arc<Task>) -> MultiTurnEnv<S> {
        self.env(task)
    }
}

/// A multi-turn episode over one task, with its own state `S`.
///
/// Each step appends the model's reply, runs its calls through the
/// registry (invalid calls become error results, never panics) and appends
/// one tool message per result. The episode ends when the model replies
/// without a call ([`EndReason::Answered`]), when the config's end
/// condition holds ([`EndReason::Done`]), on an unreadable reply under
/// [`FormatErrorPolicy::End`], or at the turn limit (truncated).
pub struct MultiTurnEnv<S> {
    task: Arc<Task>,
    spec: MultiTurnSpec<S>,
    state: S,
    messages: Vec<Message>,
    episode_calls: Vec<Call>,
    turn: usize,
    done: bool,
}

impl<S> MultiTurnEnv<S> {
    /// The environment state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The conversation so far.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Every call made so far.
    pub fn episode_calls(&self) -> &[Call] {
        &self.episode_calls
    }

    fn tools(&self) -> Vec<ToolSpec> {
        if self.task.tools.is_empty() {
            self.spec.registry.specs()
        } else {
            self.task.tools.clone()
        }
    }

    fn observation(&self) -> Observation {
        let tools = self.tools();
        Observation {
            prompt: self.spec.template.render_prompt(&tools, &self.messages),
            messages: self.messages.clone(),
            tools,
        }
    }

    fn score(
        &self,
        rules: &[WeightedRule<S>],
        view: &EpisodeView<'_, S>,
        out: &mut Vec<RuleVerdict>,
    ) -> f64 {
        let mut reward = 0.0;
        for (weight, rule) in rules {
            let verdict = rule.score(view);
            reward += weight * verdict.reward;
            out.push(RuleVerdict {
                rule: rule.name().to_string(),
                weight: *weight,
                verdict,
            });
        }
        reward
    }
}

/// The reply without trailing end-of-turn tokens and whitespace.
fn strip_end_tokens(action: &str) -> &str {
    let mut s = action.trim_end();
    while let Some(t) = END_TOKENS.iter().find(|t| s.ends_with(**t)) {
        s = s[..s.len() - t.len()].trim_end();
    }
    s
}

impl<S: Send + 'static> ToolEnv for MultiTurnEnv<S> {
    fn reset(&mut self, _seed: Option<u64>) -> Observation {
        self.state = (self.spec.init)(&self.task);
        self.messages = self.task.messages.clone();
        self.episode_calls.clear();
        self.turn = 0;
        self.done = false;
        self.observation()
    }

    fn step(&mut self, action: &str) -> Step {
        if self.done {
            return Step {
                observation: self.observation(),
                reward: 0.0,
                terminated: true,
                truncated: false,
                info: StepInfo {
                    turn: self.turn + 1,
                    end: Some(EndReason::AlreadyOver),
                    ..StepInfo::default()
                },
            };
        }
        self.turn += 1;
        let parsed = Completion::parse(action);
        let unreadable = parsed
            .diagnostics
            .iter()
            .find(|d| matches!(d.severity(), Severity::Json | Severity::Shape))
            .map(|d| d.to_string());
        let calls = if unreadable.is_some() {
            None
        } else {
            parsed.calls.clone()
        };
        self.messages.push(Message {
            tool_calls: calls.clone(),
            ..Message::assistant(strip_end_tokens(action))
        });

        let mut end = None;
        let mut results: Vec<ToolResult> = Vec::new();
        if let Some(problem) = unreadable {
            match self.spec.config.on_format_error {
                FormatErrorPolicy::End => end = Some(EndReason::FormatError),
                FormatErrorPolicy::Feedback => {
                    let obs = json!({"error": {"kind": "format_error", "message": problem}});
                    self.messages
                        .push(Message::tool("format", dumps(&obs, false)));
                }
            }
        } else {
            match &calls {
                Some(cs) if !cs.is_empty() => {
                    results = self.spec.registry.call_all(cs, &mut self.state);
                    self.episode_calls.extend(cs.iter().cloned());
                    for r in &results {
                        self.messages.push(Message::tool(
                            r.call.name.clone(),
                            dumps(&r.to_observation(), false),
                        ));
                    }
                }
                _ => end = Some(EndReason::Answered),
            }
        }
        if end.is_none() {
            if let Some(f) = &self.spec.config.end_when {
                if f(&self.state, &self.messages) {
                    end = Some(EndReason::Done);
                }
            }
        }
        if end.is_none() && self.turn >= self.spec.config.max_turns {
            end = Some(EndReason::TurnLimit);
        }
        self.done = end.is_some();

        let config = self.spec.config.clone();
        let view = EpisodeView {
            task: &self.task,
            state: &self.state,
            messages: &self.messages,
            action,
            calls: calls.as_deref(),
            results: &results,
            episode_calls: &self.episode_calls,
            turn: self.turn,
            end,
        };
        let mut verdicts = Vec::new();
        let mut reward = self.score(&config.step_rules, &view, &mut verdicts);
        if end.is_some() {
            reward += self.score(&config.final_rules, &view, &mut verdicts);
        }
        Step {
            observation: self.observation(),
            reward,
            terminated: matches!(
                end,
                Some(EndReason::Answered | EndReason::Done | EndReason::FormatError)
            ),
            truncated: end == Some(EndReason::TurnLimit),
            info: StepInfo {
                turn: self.turn,
                verdicts,
                calls,
                results,
                end,
            },
        }
    }

    fn task(&self) -> &Arc<Task> {
        &self.task
    }
}
