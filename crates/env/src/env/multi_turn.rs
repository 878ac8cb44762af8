//! Episodes of several turns: calls run through a tool registry, results
//! come back as tool messages, rewards come from pluggable rules.

use super::rules::{CallsMatch, EpisodeRule, EpisodeView, StepRecord};
use super::{
    strip_end_token, EndReason, EnvFactory, Observation, RuleVerdict, Step, StepInfo, ToolEnv,
};
use crate::message::Message;
use crate::registry::{ToolRegistry, ToolResult};
use crate::rng::fnv1a;
use crate::task::Task;
use crate::template::{tool_message_text, ChatTemplate};
use crate::tool::ToolSpec;
use serde_json::json;
use std::sync::Arc;
use std::sync::OnceLock;
use toolgym_reward::Verdict;
use toolgym_reward::{
    Call, Completion, Diagnostic, ParseOptions, Severity, TOOL_CALL_CLOSE, TOOL_CALL_OPEN,
};

/// What to do when a reply has a tool-call block that cannot be read
/// (invalid JSON, not a call list) or tool-call tags that make no block
/// (a `<tool_call>` never closed or nested in another, a stray
/// `</tool_call>`): a reply that tried to call, not an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FormatErrorPolicy {
    /// End the episode (terminated, [`EndReason::FormatError`]).
    #[default]
    End,
    /// Send the parse error back as a tool message and go on.
    Feedback,
}

/// How the step rules' rewards reach the episode's reward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StepRewards {
    /// Their mean over the episode's steps is paid once, at the end (the
    /// default). Intermediate steps have reward 0 (their verdicts are still
    /// logged). Padding cannot lift an episode whose steps all score the
    /// most above that most, but after a weak step, more turns that score
    /// well raise the mean (`[0, 1]` gives 0.5, `[0, 1, 1, 1, 1]` 0.8): a
    /// policy can dilute an early failure with extra turns. Use
    /// [`StepRewards::MinAtEnd`] where that must not pay.
    #[default]
    MeanAtEnd,
    /// Their lowest over the episode's steps is paid once, at the end: an
    /// episode is as good as its worst step, so no number of extra turns
    /// earns more (nor dilutes a failure).
    MinAtEnd,
    /// Each step is paid its own step-rule reward at once (dense rewards).
    /// A policy can then earn more by padding the episode with turns.
    EveryStep,
}

/// A user-defined end condition: the state and the conversation so far.
pub type EndCondition<S> = Arc<dyn Fn(&S, &[Message]) -> bool + Send + Sync>;

/// A weighted episode rule.
pub type WeightedRule<S> = (f64, Arc<dyn EpisodeRule<S>>);

/// How multi-turn episodes run and are rewarded.
pub struct MultiTurnConfig<S> {
    /// Most model turns per episode; reaching it truncates the episode.
    pub max_turns: usize,
    /// Rules scored after every step, weighted (see `step_rewards` for how
    /// they are paid).
    pub step_rules: Vec<WeightedRule<S>>,
    /// How step-rule rewards are paid.
    pub step_rewards: StepRewards,
    /// Rules scored once when the episode ends (on its own or truncated),
    /// weighted and added to the last step's reward.
    pub final_rules: Vec<WeightedRule<S>>,
    /// Ends the episode (terminated, [`EndReason::Done`]) when true.
    pub end_when: Option<EndCondition<S>>,
    /// What an unreadable tool-call block does.
    pub on_format_error: FormatErrorPolicy,
}

/// What makes a reply's calls unreadable ([`FormatErrorPolicy`]), in the
/// parser's order. Problems with `<think>` or with text around the blocks
/// are left to the rules, but for a `<think>` never closed before a
/// `<tool_call>` tag: the parser reads no block after it, so the reply
/// tried to call (it is not an answer). Not in a reply a length limit
/// `cut`: its think is open because of the cut.
fn call_block_faults<'p>(parsed: &'p Completion<'_>, cut: bool) -> Vec<&'p Diagnostic> {
    parsed
        .diagnostics
        .iter()
        .filter(|d| match d {
            Diagnostic::UnterminatedToolCall { .. } => true,
            // Offsets are into the parsed text (after any turn header).
            Diagnostic::UnterminatedThink { offset } => {
                !cut && parsed
                    .text
                    .get(*offset..)
                    .is_some_and(|r| r.contains(TOOL_CALL_OPEN))
            }
            Diagnostic::NestedTag { tag, .. } | Diagnostic::StrayClosingTag { tag, .. } => {
                [TOOL_CALL_OPEN, TOOL_CALL_CLOSE].contains(tag)
            }
            _ => matches!(d.severity(), Severity::Json | Severity::Shape),
        })
        .collect()
}

/// The rule name of the verdict that carries an earlier step's failed
/// step rule to the last step, when step rewards are paid at the end
/// ([`StepRewards::MinAtEnd`], [`StepRewards::MeanAtEnd`]): a copy of that
/// step's verdict, for the episode's reason (a reason histogram over every
/// step's verdicts skips it, having counted the original).
pub const CARRIED_STEP_VERDICT: &str = "step-rules";

impl<S> Default for MultiTurnConfig<S> {
    /// 8 turns, no step rules, one final rule: the episode's calls match
    /// the task's ground truth ([`CallsMatch`]). It judges the outcome
    /// only: an episode whose last reply was malformed (`format_error`) or
    /// cut off (`token_limit`) after the right calls ran is paid 1. For the
    /// paper's rule over an episode (every reply well formed and the calls
    /// right) use [`MultiTurnConfig::binary`] (a malformed reply then
    /// scores 0; a cut-off answer whose think block closed is well formed
    /// under it too).
    fn default() -> Self {
        Self {
            max_turns: 8,
            step_rules: Vec::new(),
            step_rewards: StepRewards::default(),
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

    /// The paper's rule over an episode, one final rule (`binary`): every
    /// reply well formed ([`super::EveryReply`], a think block first when
    /// `template` uses one) and the episode's calls right ([`CallsMatch`]).
    ///
    /// ```
    /// use toolgym_env::{ChatMlTemplate, MultiTurnConfig};
    /// let config: MultiTurnConfig<()> = MultiTurnConfig::binary(&ChatMlTemplate::tool_n1_multi_turn());
    /// ```
    pub fn binary(template: &dyn ChatTemplate) -> Self
    where
        S: 'static,
    {
        Self::empty().final_rule(
            1.0,
            super::AllOf::new("binary")
                .with(super::EveryReply::for_template(template))
                .with(CallsMatch::default()),
        )
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

    /// Sets how step rules are paid.
    pub fn step_rewards(mut self, mode: StepRewards) -> Self {
        self.step_rewards = mode;
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

/// A reference solver's reply, rendered by the env's template into a
/// demonstration ([`ToolEnv::demonstration`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Call tools, with a reasoning text for the think block.
    Call {
        /// The think block's text.
        think: String,
        /// The calls.
        calls: Vec<Call>,
    },
    /// Answer without a call (ends the episode).
    Answer {
        /// The think block's text.
        think: String,
        /// The answer.
        text: String,
    },
}

impl Action {
    /// Calls with a reasoning text.
    pub fn call(think: impl Into<String>, calls: Vec<Call>) -> Self {
        Action::Call {
            think: think.into(),
            calls,
        }
    }

    /// An answer with a reasoning text.
    pub fn answer(think: impl Into<String>, text: impl Into<String>) -> Self {
        Action::Answer {
            think: think.into(),
            text: text.into(),
        }
    }
}

type StateInit<S> = Arc<dyn Fn(&Task, u64) -> S + Send + Sync>;
type Solver<S> = Arc<dyn Fn(&EpisodeView<'_, S>) -> Option<Action> + Send + Sync>;

/// Everything shared by the episodes of an environment family: registry,
/// template, config, how to build the initial state from a task and a
/// seed, and optionally a reference solver. Cheap to clone; builds a
/// [`MultiTurnEnv`] per episode (it is an [`EnvFactory`]).
pub struct MultiTurnSpec<S> {
    /// The tools and their handlers.
    pub registry: Arc<ToolRegistry<S>>,
    /// The prompt template.
    pub template: Arc<dyn ChatTemplate>,
    /// Turn limit, rules, end condition.
    pub config: Arc<MultiTurnConfig<S>>,
    name: Arc<str>,
    init: StateInit<S>,
    solver: Option<Solver<S>>,
}

impl<S> Clone for MultiTurnSpec<S> {
    fn clone(&self) -> Self {
        Self {
            registry: self.registry.clone(),
            template: self.template.clone(),
            config: self.config.clone(),
            name: self.name.clone(),
            init: self.init.clone(),
            solver: self.solver.clone(),
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
        Self::seeded(registry, template, config, move |task, _| init(task))
    }

    /// A spec whose initial state also depends on the reset seed (an
    /// environment with randomness of its own: the G episodes of a task
    /// share the seed, so they start from the same state).
    pub fn seeded(
        registry: ToolRegistry<S>,
        template: Arc<dyn ChatTemplate>,
        config: MultiTurnConfig<S>,
        init: impl Fn(&Task, u64) -> S + Send + Sync + 'static,
    ) -> Self {
        Self {
            registry: Arc::new(registry),
            template,
            config: Arc::new(config),
            name: Arc::from("multi-turn"),
            init: Arc::new(init),
            solver: None,
        }
    }

    /// Names the environment (in logs and errors).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Arc::from(name);
        self
    }

    /// Adds a reference solver: given the episode so far (no steps at the
    /// start), the action it would take, or `None` to give up. Its replies
    /// are the env's demonstrations, for SFT warm starts.
    pub fn with_solver(
        mut self,
        solver: impl Fn(&EpisodeView<'_, S>) -> Option<Action> + Send + Sync + 'static,
    ) -> Self {
        self.solver = Some(Arc::new(solver));
        self
    }

    /// An environment for one task (call [`ToolEnv::reset`] before use).
    /// Its state is built by `reset` (with the reset's seed), or on first
    /// use without one: `init` runs once per episode.
    pub fn env(&self, task: Arc<Task>) -> MultiTurnEnv<S> {
        let seed = default_seed(&task);
        MultiTurnEnv {
            messages: task.messages.clone(),
            task,
            spec: self.clone(),
            seed,
            state: OnceLock::new(),
            steps: Vec::new(),
            episode_calls: Vec::new(),
            step_scores: Vec::new(),
            step_failure: None,
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

/// The seed of a reset without one: a hash of the task id.
fn default_seed(task: &Task) -> u64 {
    fnv1a(&task.id)
}

/// A multi-turn episode over one task, with its own state `S`.
///
/// Each step appends the model's reply (exactly as written, so that each
/// prompt extends the previous one), runs its calls through the registry
/// (invalid calls become error results, never panics) and appends one tool
/// message per result, whose content is the result's JSON:
/// `{"name": tool, "result": value}` or `{"name": tool, "error": {"kind",
/// "message", …}}` (see [`ToolResult::to_observation`]). The episode ends
/// when the model replies without a call ([`EndReason::Answered`]), when the
/// config's end condition holds ([`EndReason::Done`]), on an unreadable
/// reply under [`FormatErrorPolicy::End`], at the turn limit (truncated),
/// or when a trainer truncates it ([`ToolEnv::truncate`]); the final rules
/// run in every case.
///
/// The tools shown are the task's own (`Task.tools`), or the registry's
/// when the task lists none; only the tools shown can be called (another
/// is an `unknown_tool` error naming the shown ones). A `<think>` left
/// open before a `<tool_call>` tag is an unreadable reply (the parser
/// reads no block after it), not an answer.
pub struct MultiTurnEnv<S> {
    task: Arc<Task>,
    spec: MultiTurnSpec<S>,
    seed: u64,
    /// Built by `reset`, or on first use before one (see `state`).
    state: OnceLock<S>,
    messages: Vec<Message>,
    steps: Vec<StepRecord>,
    episode_calls: Vec<Call>,
    /// Weighted step-rule reward of each step (for the rewards paid at the
    /// end: [`StepRewards::MeanAtEnd`], [`StepRewards::MinAtEnd`]).
    step_scores: Vec<f64>,
    /// The first step whose step rules failed (its turn and the failing
    /// verdict), for the verdict of an episode whose step rewards are paid
    /// at the end.
    step_failure: Option<(usize, Verdict)>,
    done: bool,
}

impl<S> MultiTurnEnv<S> {
    /// The environment state (built from the task's default seed if the
    /// env has not been reset).
    pub fn state(&self) -> &S {
        self.state
            .get_or_init(|| (self.spec.init)(&self.task, self.seed))
    }

    fn state_mut(&mut self) -> &mut S {
        if self.state.get().is_none() {
            let built = (self.spec.init)(&self.task, self.seed);
            let _ = self.state.set(built);
        }
        self.state.get_mut().expect("the state was just built")
    }

    /// The conversation so far.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Every call made so far.
    pub fn episode_calls(&self) -> &[Call] {
        &self.episode_calls
    }

    /// Every step so far.
    pub fn steps(&self) -> &[StepRecord] {
        &self.steps
    }

    /// The seed of the last reset.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn tools(&self) -> Vec<ToolSpec> {
        if self.task.tools.is_empty() {
            self.spec.registry.specs()
        } else {
            self.task.tools.clone()
        }
    }

    /// The names of the tools the task shows, when it lists them (else the
    /// registry's are shown): only those may be called.
    fn shown_names(&self) -> Option<Vec<String>> {
        (!self.task.tools.is_empty())
            .then(|| self.task.tools.iter().map(|t| t.name.clone()).collect())
    }

    fn observation(&self) -> Observation {
        let tools = self.tools();
        let template = &self.spec.template;
        Observation {
            prompt: if self.done {
                template.render_transcript(&tools, &self.messages)
            } else {
                template.render_prompt(&tools, &self.messages)
            },
            messages: self.messages.clone(),
            tools,
        }
    }

    fn view(&self, end: Option<EndReason>) -> EpisodeView<'_, S> {
        EpisodeView {
            task: &self.task,
            seed: self.seed,
            state: self.state(),
            messages: &self.messages,
            steps: &self.steps,
            episode_calls: &self.episode_calls,
            end,
        }
    }

    fn score(
        &self,
        rules: &[WeightedRule<S>],
        end: Option<EndReason>,
        out: &mut Vec<RuleVerdict>,
    ) -> f64 {
        let view = self.view(end);
        let mut reward = 0.0;
        for (weight, rule) in rules {
            let verdict = rule.score(&view);
            // A weight-0 rule is kept for logging: its reward, even a NaN
            // one, takes no part in the sum.
            if *weight != 0.0 {
                reward += weight * verdict.reward;
            }
            out.push(RuleVerdict {
                rule: rule.name().to_string(),
                weight: *weight,
                verdict,
            });
        }
        reward
    }

    /// The end-of-episode reward: the step rules' mean (when paid at the
    /// end) plus the final rules. `turn`: the step being taken, whose
    /// step-rule verdicts are in `verdicts` already (`None` when
    /// truncating after the last step).
    fn finish(
        &mut self,
        end: EndReason,
        turn: Option<usize>,
        verdicts: &mut Vec<RuleVerdict>,
    ) -> f64 {
        self.done = true;
        let config = self.spec.config.clone();
        let mut reward = 0.0;
        if !self.step_scores.is_empty() {
            let scores = &self.step_scores;
            let paid = match config.step_rewards {
                StepRewards::MeanAtEnd => scores.iter().sum::<f64>() / scores.len() as f64,
                // NaN (a rule's bug) passes on, as the mean passes it, to
                // be refused as a non-finite reward; `f64::min` drops it.
                StepRewards::MinAtEnd if scores.iter().any(|s| s.is_nan()) => f64::NAN,
                StepRewards::MinAtEnd => scores.iter().copied().fold(f64::INFINITY, f64::min),
                StepRewards::EveryStep => 0.0,
            };
            reward += paid;
            // An earlier step's failed step rule is part of this reward:
            // the episode's verdict says so (it reads this step's).
            let weight: f64 = config.step_rules.iter().map(|(w, _)| w.abs()).sum();
            let paid_here = config.step_rewards != StepRewards::EveryStep;
            if let Some((failed, v)) = self.step_failure.as_ref().filter(|_| paid_here) {
                if Some(*failed) != turn && weight != 0.0 {
                    verdicts.push(RuleVerdict {
                        rule: CARRIED_STEP_VERDICT.into(),
                        weight,
                        verdict: Verdict::new(
                            paid,
                            v.reason,
                            format!("turn {failed}: {}", v.detail),
                        ),
                    });
                }
            }
        }
        reward + self.score(&config.final_rules, Some(end), verdicts)
    }

    fn over(&self) -> Step {
        Step::already_over(self.observation(), self.steps.len() + 1)
    }

    /// One turn: `cut` when a length limit cut the reply off, which then
    /// ends the episode as [`EndReason::TokenLimit`] wherever it would
    /// have ended it (see [`ToolEnv::step_cut`]).
    fn take(&mut self, action: &str, cut: bool) -> Step {
        if self.done {
            return self.over();
        }
        let turn = self.steps.len() + 1;
        let reply = strip_end_token(action);
        let parsed = Completion::parse_with(reply, &ParseOptions::REPLY);
        // A call block a length limit cut off (opened, not closed) is not
        // the model's format error: the blocks it completed before run
        // when they are sound, and the episode ends at the limit.
        let cut_in_block = cut && reply.rfind(TOOL_CALL_OPEN) > reply.rfind(TOOL_CALL_CLOSE);
        let faults = call_block_faults(&parsed, cut);
        let only_the_cut = cut_in_block
            && faults
                .iter()
                .all(|d| matches!(d, Diagnostic::UnterminatedToolCall { .. }));
        let format_error = match faults.first() {
            Some(d) if !only_the_cut => Some(d.to_string()),
            _ => None,
        };
        let calls = if format_error.is_some() {
            None
        } else {
            parsed.calls.clone()
        };
        self.messages.push(Message {
            tool_calls: calls.clone(),
            ..Message::assistant(reply)
        });

        let config = self.spec.config.clone();
        let mut end = None;
        let mut results: Vec<ToolResult> = Vec::new();
        if let Some(problem) = &format_error {
            match config.on_format_error {
                // Cut in a block after an unsound one: nothing runs.
                _ if cut_in_block => end = Some(EndReason::TokenLimit),
                FormatErrorPolicy::End => end = Some(EndReason::FormatError),
                FormatErrorPolicy::Feedback => {
                    let obs = json!({"error": {"kind": "format_error", "message": problem}});
                    self.messages
                        .push(Message::tool("format", tool_message_text(&obs)));
                }
            }
        } else {
            match &calls {
                Some(cs) if !cs.is_empty() => {
                    let registry = self.spec.registry.clone();
                    let shown = self.shown_names();
                    results = registry.call_all_among(cs, self.state_mut(), shown.as_deref());
                    self.episode_calls.extend(cs.iter().cloned());
                    for r in &results {
                        self.messages.push(Message::tool(
                            r.call.name.clone(),
                            tool_message_text(&r.to_observation()),
                        ));
                    }
                    if cut_in_block {
                        end = Some(EndReason::TokenLimit);
                    }
                }
                _ if cut => end = Some(EndReason::TokenLimit),
                _ => end = Some(EndReason::Answered),
            }
        }
        if end.is_none() {
            if let Some(f) = &config.end_when {
                if f(self.state(), &self.messages) {
                    end = Some(EndReason::Done);
                }
            }
        }
        if end.is_none() && turn >= config.max_turns {
            end = Some(EndReason::TurnLimit);
        }
        self.steps.push(StepRecord {
            turn,
            action: reply.to_string(),
            calls: calls.clone(),
            results: results.clone(),
            format_error,
        });

        let mut verdicts = Vec::new();
        let step_reward = self.score(&config.step_rules, end, &mut verdicts);
        if self.step_failure.is_none() {
            let failed = verdicts
                .iter()
                .find(|v| v.weight != 0.0 && !v.verdict.is_ok());
            self.step_failure = failed.map(|v| (turn, v.verdict.clone()));
        }
        let mut reward = match config.step_rewards {
            StepRewards::EveryStep => step_reward,
            StepRewards::MeanAtEnd | StepRewards::MinAtEnd => {
                self.step_scores.push(step_reward);
                0.0
            }
        };
        if let Some(e) = end {
            reward += self.finish(e, Some(turn), &mut verdicts);
        }
        Step {
            observation: self.observation(),
            reward,
            terminated: end.is_some_and(|e| !e.is_truncation()),
            truncated: end.is_some_and(EndReason::is_truncation),
            info: StepInfo {
                turn,
                verdicts,
                calls,
                results,
                end,
            },
        }
    }
}

impl<S: Send + 'static> ToolEnv for MultiTurnEnv<S> {
    fn reset(&mut self, seed: Option<u64>) -> Observation {
        self.seed = seed.unwrap_or_else(|| default_seed(&self.task));
        self.state = OnceLock::from((self.spec.init)(&self.task, self.seed));
        self.messages = self.task.messages.clone();
        self.steps.clear();
        self.episode_calls.clear();
        self.step_scores.clear();
        self.step_failure = None;
        self.done = false;
        self.observation()
    }

    fn step(&mut self, action: &str) -> Step {
        self.take(action, false)
    }

    fn step_cut(&mut self, action: &str) -> Step {
        self.take(action, true)
    }

    fn task(&self) -> &Arc<Task> {
        &self.task
    }

    fn name(&self) -> &str {
        &self.spec.name
    }

    fn truncate(&mut self, reason: EndReason) -> Step {
        if self.done {
            return self.over();
        }
        let mut verdicts = Vec::new();
        let reward = self.finish(reason, None, &mut verdicts);
        Step {
            observation: self.observation(),
            reward,
            terminated: !reason.is_truncation(),
            truncated: reason.is_truncation(),
            info: StepInfo {
                turn: self.steps.len() + 1,
                verdicts,
                end: Some(reason),
                ..StepInfo::default()
            },
        }
    }

    fn demonstration(&self) -> Option<String> {
        if self.done {
            return None;
        }
        let solver = self.spec.solver.as_ref()?;
        let template = &self.spec.template;
        let mut reply = match solver(&self.view(None))? {
            Action::Call { think, calls } => template.render_reply(Some(&think), &calls),
            Action::Answer { think, text } => template.render_answer(Some(&think), &text),
        };
        reply.push_str(template.end_of_turn());
        Some(reply)
    }
}
