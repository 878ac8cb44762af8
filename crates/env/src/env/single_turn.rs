//! The paper's setting: one completion per task, scored by a reward rule
//! against the ground-truth calls.

use super::{EnvFactory, Observation, Step, ToolEnv};
use crate::message::Message;
use crate::task::Task;
use crate::template::{ChatMlTemplate, ChatTemplate};
use rayon::prelude::*;
use std::sync::Arc;
use toolgym_reward::{BinaryRule, Completion, ParseOptions, RewardRule, Verdict};

/// How single-turn episodes are rendered and scored: a reward rule and a
/// chat template. Cheap to clone; builds a [`SingleTurnEnv`] per task, and
/// scores completions directly (G completions of one task in parallel with
/// [`SingleTurnSpec::score_group`]).
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use toolgym_env::{ChatTemplate, Message, SingleTurnSpec, Task, ToolSpec};
/// use toolgym_reward::{Call, Reason};
///
/// let task = Task::new("t", "demo",
///     vec![ToolSpec::builder("add", "Adds.").required("a", "integer", "").required("b", "integer", "").build()],
///     vec![Message::user("2 plus 3?")],
///     vec![Call::new("add", json!({"a": 2, "b": 3})).unwrap()]);
/// let spec = SingleTurnSpec::tool_n1();
/// let good = spec.target(&task);
/// assert_eq!(good, "<think>I need to call add.</think>\n<tool_call>\n[{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 3}}]\n</tool_call><|im_end|>");
/// let bad = "<think>hm</think><tool_call>[{\"name\": \"add\", \"arguments\": {\"a\": 3, \"b\": 3}}]</tool_call>".to_string();
/// let v = spec.score_group(&task, &[good, bad]);
/// assert_eq!((v[0].reward, v[1].reason), (1.0, Reason::WrongArgs));
/// ```
#[derive(Clone)]
pub struct SingleTurnSpec {
    /// The reward rule.
    pub rule: Arc<dyn RewardRule>,
    /// The prompt template.
    pub template: Arc<dyn ChatTemplate>,
}

impl SingleTurnSpec {
    /// A spec from a rule and a template.
    pub fn new(rule: Arc<dyn RewardRule>, template: Arc<dyn ChatTemplate>) -> Self {
        Self { rule, template }
    }

    /// A template with the matching paper rule: `binary` when its replies
    /// think, `binary-no-think` otherwise.
    pub fn for_template(template: ChatMlTemplate) -> Self {
        let rule: Arc<dyn RewardRule> = if template.uses_reasoning() {
            Arc::new(BinaryRule::default())
        } else {
            Arc::new(BinaryRule::without_think())
        };
        Self::new(rule, Arc::new(template))
    }

    /// The paper: Tool-N1 prompt, `binary` reward.
    pub fn tool_n1() -> Self {
        Self::for_template(ChatMlTemplate::tool_n1())
    }

    /// The compact prompt for tiny models, `binary` reward.
    pub fn compact() -> Self {
        Self::for_template(ChatMlTemplate::compact())
    }

    /// An environment for one task.
    pub fn env(&self, task: Arc<Task>) -> SingleTurnEnv {
        SingleTurnEnv {
            task,
            spec: self.clone(),
            reply: None,
        }
    }

    /// The prompt of a task.
    pub fn prompt(&self, task: &Task) -> String {
        self.template.prompt(task)
    }

    /// The SFT target of a task (canonical reply + end-of-turn token).
    pub fn target(&self, task: &Task) -> String {
        self.template.target(task)
    }

    /// Scores one reply to a task (the model's text alone, as a rollout
    /// gives it: [`toolgym_reward::reply_verdict`], which reads it whole
    /// where the rule has episode semantics).
    pub fn score(&self, task: &Task, completion: &str) -> Verdict {
        toolgym_reward::reply_verdict(&*self.rule, completion, &task.ground_truth)
    }

    /// Scores completions of one task in parallel (rayon); verdicts in input
    /// order.
    pub fn score_group<S: AsRef<str> + Sync>(
        &self,
        task: &Task,
        completions: &[S],
    ) -> Vec<Verdict> {
        completions
            .par_iter()
            .map(|c| self.score(task, c.as_ref()))
            .collect()
    }

    /// Scores `(task, completion)` pairs in parallel; verdicts in input order.
    pub fn score_batch<S: AsRef<str> + Sync>(&self, items: &[(Arc<Task>, S)]) -> Vec<Verdict> {
        items
            .par_iter()
            .map(|(t, c)| self.score(t, c.as_ref()))
            .collect()
    }
}

impl EnvFactory for SingleTurnSpec {
    type Env = SingleTurnEnv;
    fn make(&self, task: Arc<Task>) -> SingleTurnEnv {
        self.env(task)
    }
}

/// One task, one completion, one reward. `Clone + Send + Sync`.
///
/// Its demonstration is the task's canonical reply
/// ([`ChatTemplate::target`](crate::ChatTemplate::target)).
#[derive(Clone)]
pub struct SingleTurnEnv {
    task: Arc<Task>,
    spec: SingleTurnSpec,
    /// The scored reply, once the episode is over.
    reply: Option<String>,
}

impl SingleTurnEnv {
    /// The current observation (the first one until a reply is scored,
    /// then the transcript with the reply).
    pub fn observation(&self) -> Observation {
        match &self.reply {
            None => Observation {
                messages: self.task.messages.clone(),
                tools: self.task.tools.clone(),
                prompt: self.spec.prompt(&self.task),
            },
            Some(reply) => {
                let mut messages = self.task.messages.clone();
                messages.push(Message::assistant(reply.clone()));
                Observation {
                    prompt: self
                        .spec
                        .template
                        .render_transcript(&self.task.tools, &messages),
                    messages,
                    tools: self.task.tools.clone(),
                }
            }
        }
    }
}

impl ToolEnv for SingleTurnEnv {
    fn reset(&mut self, _seed: Option<u64>) -> Observation {
        self.reply = None;
        self.observation()
    }

    fn step(&mut self, action: &str) -> Step {
        let turn = 1;
        if self.reply.is_some() {
            return Step::already_over(self.observation(), turn + 1);
        }
        let verdict = self.spec.score(&self.task, action);
        let calls = Completion::parse_with(action, &ParseOptions::REPLY).calls;
        self.reply = Some(super::strip_end_token(action).to_string());
        Step::scored(self.observation(), self.spec.rule.name(), verdict, calls)
    }

    fn task(&self) -> &Arc<Task> {
        &self.task
    }

    fn name(&self) -> &str {
        "single-turn"
    }

    fn demonstration(&self) -> Option<String> {
        self.reply.is_none().then(|| self.spec.target(&self.task))
    }
}
