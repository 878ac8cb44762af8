//! Benchmark cases as single-turn environments: the one home of "render a
//! case's prompt, score one reply" (a trailing end-of-turn token is
//! removed before judging), which the rollout engine needs to
//! generate a benchmark's completions with a local model
//! (`toolgym eval … --model`). Each benchmark supplies its tasks and a
//! judge; [`ReplyEnvs`] does the rest.
//!
//! ```
//! use std::sync::Arc;
//! use toolgym_env::data::reply_env::ReplyEnvs;
//! use toolgym_env::env::EnvFactory;
//! use toolgym_env::{ChatMlTemplate, Message, Task, ToolEnv};
//! use toolgym_reward::Verdict;
//! let task = Arc::new(Task::new("c1", "bench", vec![], vec![Message::user("Say ok.")], vec![]));
//! let envs = ReplyEnvs::new(
//!     "bench",
//!     vec![("c1".to_string(), "ok")],
//!     vec![Ok(task.clone())],
//!     Arc::new(ChatMlTemplate::qwen2_5()),
//!     Arc::new(|want: &&str, reply: &str| if reply == *want { Verdict::ok() } else { Verdict::fail(toolgym_reward::Reason::WrongArgs, "no") }),
//! );
//! let mut env = envs.make(task);
//! env.reset(None);
//! assert_eq!(env.step("ok").reward, 1.0);
//! ```

use crate::env::{EnvFactory, Observation, Step, ToolEnv};
use crate::task::Task;
use crate::template::ChatTemplate;
use std::collections::HashMap;
use std::sync::Arc;
use toolgym_reward::{Reason, Verdict};

/// How a benchmark scores one reply to one of its cases.
pub type ReplyJudge<C> = Arc<dyn Fn(&C, &str) -> Verdict + Send + Sync>;

/// A benchmark's cases as single-turn environments (one per task, made by
/// [`EnvFactory::make`]).
pub struct ReplyEnvs<C> {
    name: &'static str,
    cases: HashMap<String, Arc<C>>,
    tasks: Vec<Result<Arc<Task>, String>>,
    template: Arc<dyn ChatTemplate>,
    judge: ReplyJudge<C>,
}

impl<C> ReplyEnvs<C> {
    /// Environments named `name` for `cases` (by task id) and their
    /// `tasks` (in case order; an error for a case that cannot be
    /// prompted), rendered with `template` and scored by `judge`.
    pub fn new(
        name: &'static str,
        cases: Vec<(String, C)>,
        tasks: Vec<Result<Arc<Task>, String>>,
        template: Arc<dyn ChatTemplate>,
        judge: ReplyJudge<C>,
    ) -> Self {
        Self {
            name,
            cases: cases.into_iter().map(|(id, c)| (id, Arc::new(c))).collect(),
            tasks,
            template,
            judge,
        }
    }

    /// One task per case, in case order (an error for a case that cannot
    /// be prompted).
    pub fn tasks(&self) -> &[Result<Arc<Task>, String>] {
        &self.tasks
    }

    /// The template the tasks are rendered with.
    pub fn template(&self) -> &Arc<dyn ChatTemplate> {
        &self.template
    }
}

impl<C: Send + Sync + 'static> EnvFactory for ReplyEnvs<C> {
    type Env = ReplyEnv<C>;

    fn make(&self, task: Arc<Task>) -> ReplyEnv<C> {
        ReplyEnv {
            name: self.name,
            case: self.cases.get(&task.id).cloned(),
            task,
            template: self.template.clone(),
            judge: self.judge.clone(),
            done: false,
        }
    }
}

/// One case as a single-turn environment (see [`ReplyEnvs`]).
pub struct ReplyEnv<C> {
    name: &'static str,
    task: Arc<Task>,
    case: Option<Arc<C>>,
    template: Arc<dyn ChatTemplate>,
    judge: ReplyJudge<C>,
    done: bool,
}

impl<C> ReplyEnv<C> {
    fn observation(&self) -> Observation {
        Observation {
            messages: self.task.messages.clone(),
            tools: self.task.tools.clone(),
            prompt: self.template.prompt(&self.task),
        }
    }
}

impl<C: Send + Sync + 'static> ToolEnv for ReplyEnv<C> {
    fn reset(&mut self, _seed: Option<u64>) -> Observation {
        self.done = false;
        self.observation()
    }

    fn step(&mut self, action: &str) -> Step {
        if std::mem::replace(&mut self.done, true) {
            return Step::already_over(self.observation(), 2);
        }
        let reply = crate::env::strip_end_token(action);
        let verdict = match &self.case {
            Some(case) => (self.judge)(case, reply),
            None => Verdict::fail(
                Reason::InputError,
                format!("no {} case with id {:?}", self.name, self.task.id),
            ),
        };
        Step::scored(self.observation(), self.name, verdict, None)
    }

    fn task(&self) -> &Arc<Task> {
        &self.task
    }

    fn name(&self) -> &str {
        self.name
    }

    /// The task's reference reply (its ground truth in the template's
    /// format), for SFT from episodes.
    fn demonstration(&self) -> Option<String> {
        (!self.done).then(|| self.template.target(&self.task))
    }
}
