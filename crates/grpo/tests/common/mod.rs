//! Shared set-up for the trainer tests: a tiny policy, tiny tasks, and two
//! multi-turn environments (a hand-written one and an SDK one).

#![allow(dead_code)]

use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use toolgym_env::env::{Action, AllOf, DynEnvFactory, EpisodeView, Finished, FnRule, NoToolErrors};
use toolgym_env::synthetic::{Split, SyntheticConfig, SyntheticTasks};
use toolgym_env::{
    ChatMlTemplate, ChatTemplate, Dataset, EndReason, Message, MultiTurnConfig, MultiTurnSpec,
    Observation, SingleTurnSpec, Step, StepInfo, Task, ToolEnv, ToolError, ToolRegistry, ToolSpec,
};
use toolgym_grpo::{BuiltinPolicy, GrpoConfig, Policy, RunSection};
use toolgym_model::candle_core::{DType, Device};
use toolgym_reward::{Call, Reason, Verdict};

/// The synthetic tasks of the tiny preset.
pub fn tasks() -> SyntheticTasks {
    SyntheticTasks::new(SyntheticConfig::tiny(3)).unwrap()
}

/// The compact template with the `binary` rule.
pub fn spec() -> SingleTurnSpec {
    SingleTurnSpec::compact()
}

/// `f` shared, as trainers and the rollout engine hold a factory.
pub fn shared(f: impl DynEnvFactory + 'static) -> Arc<dyn DynEnvFactory> {
    Arc::new(f)
}

/// [`spec`] as the trainers hold it.
pub fn factory() -> Arc<dyn DynEnvFactory> {
    Arc::new(spec())
}

/// A very small built-in policy (fast to train in tests), in f32.
pub fn policy(gen: &SyntheticTasks) -> Policy {
    policy_in(gen, DType::F32)
}

/// The same policy with its weights held in `dtype`.
pub fn policy_in(gen: &SyntheticTasks, dtype: DType) -> Policy {
    builtin_policy(gen, &builtin_spec(), dtype)
}

/// The shape of the tests' built-in policy.
pub fn builtin_spec() -> BuiltinPolicy {
    BuiltinPolicy {
        vocab_size: 320,
        hidden_size: 32,
        intermediate_size: 64,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        // Wider than hidden_size / heads: every built-in model had 32 when
        // the pinned numbers were recorded.
        head_dim: Some(32),
        seed: 5,
        padded_vocab_size: 0,
        // Hugging Face's scheme, as when the pinned numbers were recorded.
        init_std: Some(0.02),
        pre_tokenizer: toolgym_model::PreTokenizer::Qwen2,
    }
}

/// A built-in policy of shape `b` with a tokenizer trained on the tasks.
pub fn builtin_policy(gen: &SyntheticTasks, b: &BuiltinPolicy, dtype: DType) -> Policy {
    let corpus = gen.tokenizer_corpus(spec().template.as_ref(), 300);
    Policy::builtin(&corpus, b, dtype, &Device::Cpu).unwrap()
}

/// A few validation tasks.
pub fn validation(gen: &SyntheticTasks) -> Vec<Arc<Task>> {
    gen.dataset(Split::Validation, 4).tasks().to_vec()
}

/// A small GRPO config: 4 prompts × G=3, two mini-batches (so π_old ≠ π on
/// the second), short replies.
pub fn grpo_config(steps: usize) -> GrpoConfig {
    let mut c = GrpoConfig {
        steps: Some(steps),
        group_size: 3,
        prompts_per_step: 4,
        mini_batch_prompts: 2,
        micro_batch_seqs: 4,
        max_response_tokens: 12,
        max_prompt_tokens: 256,
        temperature: 1.0,
        ..GrpoConfig::default()
    };
    c.optim.lr = 1e-3;
    c
}

/// A fresh temporary run directory.
pub fn run_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("toolgym-grpo-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Run settings for tests: no progress, no validation in between.
pub fn run_section(dir: PathBuf, save_every: usize) -> RunSection {
    RunSection {
        out_dir: dir,
        seed: 11,
        save_every,
        keep_checkpoints: 0,
        eval_every: 0,
        val_before_train: true,
        eval_tasks: 2,
        eval_samples: 2,
        eval_temperature: 1.0,
        resume: true,
        progress: false,
        force: false,
        resume_fallback: false,
    }
}

/// Every parameter's values, by name.
pub fn params_of(p: &Policy) -> Vec<(String, Vec<f32>)> {
    p.model
        .named_tensors()
        .into_iter()
        .map(|(n, t)| {
            let t = t.flatten_all().unwrap().to_dtype(DType::F32).unwrap();
            (n, t.to_vec1::<f32>().unwrap())
        })
        .collect()
}

/// A hand-written multi-turn [`ToolEnv`] (no SDK helpers): the user says
/// "go", then "more N" after each reply, for `turns` turns; the reward,
/// paid at the end, depends on the replies' lengths (varied and
/// deterministic). It panics in `step` when a reply contains `panic_on`,
/// sleeps for an hour in `step` when `hangs` (in `reset` when
/// `reset_hangs`), and pays `final_reward` instead when that is set.
pub struct EchoEnv {
    pub task: Arc<Task>,
    pub turns: usize,
    pub panic_on: Option<&'static str>,
    pub hangs: bool,
    pub reset_hangs: bool,
    /// `name` never returns.
    pub name_hangs: bool,
    /// `step` does some work on rayon's global pool.
    pub parallel_step: bool,
    pub final_reward: Option<f64>,
    /// Ends the episode after the first reply the Gymnasium way, without
    /// an end reason: `(terminated, truncated)`.
    pub gym_end: Option<(bool, bool)>,
    /// The end reason it reports (at its last turn and from `truncate`)
    /// instead of `done` / the trainer's, with reward 1: `EnvError` for an
    /// env whose backend failed.
    pub end_as: Option<EndReason>,
    /// What `demonstration` says (`None`: no reference solver).
    pub demo: Option<String>,
    /// `demonstration` never returns.
    pub demo_hangs: bool,
    /// `demonstration` panics.
    pub demo_panics: bool,
    /// `Drop` never returns.
    pub drop_hangs: bool,
    /// `step` takes 100 ms, counting the steps running at once here:
    /// (now, most so far).
    pub in_flight: Option<
        Arc<(
            std::sync::atomic::AtomicUsize,
            std::sync::atomic::AtomicUsize,
        )>,
    >,
    messages: Vec<Message>,
    taken: usize,
    total: usize,
}

impl EchoEnv {
    pub fn new(task: Arc<Task>, turns: usize) -> Self {
        Self {
            messages: task.messages.clone(),
            task,
            turns,
            panic_on: None,
            hangs: false,
            reset_hangs: false,
            name_hangs: false,
            parallel_step: false,
            final_reward: None,
            gym_end: None,
            end_as: None,
            demo: None,
            demo_hangs: false,
            demo_panics: false,
            drop_hangs: false,
            in_flight: None,
            taken: 0,
            total: 0,
        }
    }

    fn observation(&self, done: bool) -> Observation {
        let t = ChatMlTemplate::compact_multi_turn();
        Observation {
            prompt: if done {
                t.render_transcript(&[], &self.messages)
            } else {
                t.render_prompt(&[], &self.messages)
            },
            messages: self.messages.clone(),
            tools: vec![],
        }
    }
}

impl ToolEnv for EchoEnv {
    fn reset(&mut self, _seed: Option<u64>) -> Observation {
        if self.reset_hangs {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        self.messages = self.task.messages.clone();
        self.taken = 0;
        self.total = 0;
        self.observation(false)
    }

    fn step(&mut self, action: &str) -> Step {
        if let Some(p) = self.panic_on {
            if action.contains(p) {
                panic!("echo env cannot take {p:?}");
            }
        }
        if self.hangs {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        if let Some(counts) = &self.in_flight {
            use std::sync::atomic::Ordering::SeqCst;
            let now = counts.0.fetch_add(1, SeqCst) + 1;
            counts.1.fetch_max(now, SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(100));
            counts.0.fetch_sub(1, SeqCst);
        }
        if self.parallel_step {
            use rayon::prelude::*;
            let n: u64 = (0..10_000u64).into_par_iter().map(|i| i % 7).sum();
            assert!(n > 0);
        }
        self.taken += 1;
        self.total += action.len();
        self.messages.push(Message::assistant(action));
        if let Some((terminated, truncated)) = self.gym_end {
            return Step {
                observation: self.observation(true),
                reward: 0.5,
                terminated,
                truncated,
                info: StepInfo {
                    turn: self.taken,
                    ..StepInfo::default()
                },
            };
        }
        let done = self.taken >= self.turns;
        if !done {
            self.messages
                .push(Message::user(format!("more {}", self.taken)));
        }
        let reward = if done && self.end_as.is_some() {
            1.0
        } else if done {
            self.final_reward.unwrap_or((self.total % 5) as f64 / 4.0)
        } else {
            0.0
        };
        Step {
            observation: self.observation(done),
            reward,
            terminated: done,
            truncated: false,
            info: StepInfo {
                turn: self.taken,
                end: done.then_some(self.end_as.unwrap_or(EndReason::Done)),
                ..StepInfo::default()
            },
        }
    }

    fn truncate(&mut self, reason: EndReason) -> Step {
        Step {
            observation: Observation::default(),
            reward: if self.end_as.is_some() { 1.0 } else { 0.0 },
            terminated: false,
            truncated: true,
            info: StepInfo {
                turn: self.taken,
                end: Some(self.end_as.unwrap_or(reason)),
                ..StepInfo::default()
            },
        }
    }

    fn task(&self) -> &Arc<Task> {
        &self.task
    }

    fn name(&self) -> &str {
        if self.name_hangs {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        "echo"
    }

    fn demonstration(&self) -> Option<String> {
        if self.demo_hangs {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        assert!(!self.demo_panics, "the echo env's solver is broken");
        self.demo.clone()
    }
}

impl Drop for EchoEnv {
    fn drop(&mut self) {
        if self.drop_hangs {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Tasks for [`EchoEnv`]: "go N".
pub fn echo_tasks(n: usize) -> Arc<Dataset> {
    let tasks = (0..n)
        .map(|i| {
            Task::new(
                format!("echo-{i}"),
                "test",
                vec![],
                vec![Message::user(format!("go {i}"))],
                vec![],
            )
        })
        .collect();
    Arc::new(Dataset::new("echo", tasks))
}

/// A vault world: `find_vault(name)` reveals a code drawn from the reset
/// seed, `open_vault(code)` opens it; success needs both, with no failed
/// call, then an answer. A reference solver plays it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vaults {
    pub codes: BTreeMap<String, i64>,
    pub opened: Vec<String>,
}

pub fn vault_spec() -> MultiTurnSpec<Vaults> {
    let mut reg: ToolRegistry<Vaults> = ToolRegistry::new();
    reg.register_stateful(
        ToolSpec::builder("find_vault", "The code of a vault.")
            .required("name", "string", "")
            .strict()
            .build(),
        |a, s| {
            let name = a["name"].as_str().unwrap_or("");
            s.codes
                .get(name)
                .map(|c| json!({ "code": c }))
                .ok_or_else(|| ToolError::failed("no such vault"))
        },
    )
    .unwrap();
    reg.register_stateful(
        ToolSpec::builder("open_vault", "Opens a vault.")
            .required("name", "string", "")
            .required("code", "integer", "")
            .strict()
            .build(),
        |a, s| {
            let name = a["name"].as_str().unwrap_or("").to_string();
            if s.codes.get(&name) == a["code"].as_i64().as_ref() {
                s.opened.push(name);
                Ok(json!({ "opened": true }))
            } else {
                Err(ToolError::failed("wrong code"))
            }
        },
    )
    .unwrap();
    let opened = FnRule::new("opened", |v: &EpisodeView<'_, Vaults>| {
        let want = v.task.meta["vault"].as_str().unwrap_or("");
        if v.state.opened.iter().any(|o| o == want) {
            Verdict::ok()
        } else {
            Verdict::fail(Reason::StateMismatch, "the vault is closed")
        }
    });
    let reward = AllOf::new("vault")
        .with(Finished)
        .with(NoToolErrors::strict())
        .with(opened);
    MultiTurnSpec::seeded(
        reg,
        Arc::new(ChatMlTemplate::compact_multi_turn()),
        MultiTurnConfig::empty()
            .max_turns(6)
            .final_rule(1.0, reward),
        |task, seed| {
            let name = task.meta["vault"].as_str().unwrap_or("").to_string();
            Vaults {
                codes: [(name, 100 + (seed % 900) as i64)].into(),
                opened: vec![],
            }
        },
    )
    .named("vaults")
    .with_solver(|v: &EpisodeView<'_, Vaults>| {
        let name = v.task.meta["vault"].as_str()?.to_string();
        match v.results_of("find_vault").next() {
            None => Some(Action::call(
                "Find the code.",
                vec![Call::new("find_vault", json!({ "name": name })).ok()?],
            )),
            Some(r) if v.state.opened.is_empty() => Some(Action::call(
                "Open it.",
                vec![Call::new("open_vault", json!({"name": name, "code": r["code"]})).ok()?],
            )),
            Some(_) => Some(Action::answer("Done.", "Opened.")),
        }
    })
}

/// Tasks for [`vault_spec`]: "Open vault X".
pub fn vault_tasks(n: usize) -> Arc<Dataset> {
    let names = ["red", "blue", "green", "gold"];
    let tasks = (0..n)
        .map(|i| {
            let name = names[i % names.len()];
            let mut t = Task::new(
                format!("vault-{i}"),
                "test",
                vec![],
                vec![Message::user(format!("Open the {name} vault."))],
                vec![],
            );
            t.meta.insert("vault".into(), json!(name));
            t
        })
        .collect();
    Arc::new(Dataset::new("vaults", tasks))
}

/// Reward from the reply's length: varied within groups, deterministic.
pub struct LengthRule;

impl toolgym_reward::RewardRule for LengthRule {
    fn name(&self) -> &str {
        "length"
    }
    fn score(&self, completion: &str, _truth: &[Call]) -> Verdict {
        let r = (completion.len() % 5) as f64 / 4.0;
        let reason = if r == 1.0 {
            Reason::Ok
        } else {
            Reason::WrongArgs
        };
        Verdict::new(r, reason, "")
    }
}

/// The compact template scored by [`LengthRule`].
pub fn length_spec() -> SingleTurnSpec {
    SingleTurnSpec::new(Arc::new(LengthRule), spec().template)
}
