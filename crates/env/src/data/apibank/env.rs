//! API-Bank as toolgym environments.
//!
//! * [`ApiBankEnvs`]: one single-turn episode per sample, its prompt
//!   rendered by a template, its reply judged by [`Judge`] (reward 1 when
//!   correct) — what generation for `toolgym eval api-bank --model` runs
//!   through (`toolgym_grpo::evaluate` with this factory).
//! * [`registry`] / [`training_spec`]: the 49 APIs as executable tools over
//!   an [`ApiBankState`] (a fresh copy of the databases per episode), in a
//!   [`MultiTurnSpec`] whose reward is the official verdict on the
//!   episode's first call — for training with `run_episode` or the GRPO
//!   trainer.

use super::super::reply_env::ReplyEnvs;
use super::apis::{self, Output};
use super::judge::{run_call, ApiBankVerdict, CallOutcome, Judge};
use super::parse::{from_tool_call, json_argument};
use super::prompt::{tool_n1_task, PromptStyle};
use super::samples::ApiBankSample;
use super::value;
use super::world::{ApiBankData, ApiBankState};
use super::Network;
use crate::env::{EpisodeView, FnRule, MultiTurnConfig, MultiTurnSpec};
use crate::registry::ToolRegistry;
use crate::task::Task;
use crate::template::ChatTemplate;
use crate::tool::ToolError;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use toolgym_reward::{Reason, Verdict};

/// The reward verdict of an API-Bank verdict.
pub fn reward_verdict(v: &ApiBankVerdict) -> Verdict {
    if v.valid {
        return Verdict::ok();
    }
    let kind = v.error_type.as_deref().unwrap_or("");
    let reason = match kind {
        "no_completion" | "no_api_call" => Reason::MissingCall,
        "unreadable_tool_call" => Reason::JsonError,
        "call_count" if v.error.as_deref().is_some_and(|e| e.ends_with(" 0")) => {
            Reason::MissingCall
        }
        "call_count" => Reason::ExtraCall,
        "api_name_mismatch" => Reason::WrongName,
        _ => Reason::WrongArgs,
    };
    let detail = match &v.error {
        Some(e) => format!("{kind}: {e}"),
        None => kind.to_string(),
    };
    Verdict::fail(reason, detail)
}

/// API-Bank samples as single-turn environments, for generating (and
/// judging) through the rollout engine that trains.
pub type ApiBankEnvs = ReplyEnvs<ApiBankSample>;

/// [`ApiBankEnvs`] for `samples`, prompted in `style` and rendered by
/// `template` ([`super::ApiBankTemplate`] for the official style, a
/// Tool-N1 template for the other); a reply's reward is [`reward_verdict`]
/// of `judge`'s verdict.
///
/// ```no_run
/// use std::path::Path;
/// use std::sync::Arc;
/// use toolgym_env::data::apibank::{apibank_envs, load_samples, ApiBankTemplate, Judge, PromptStyle};
/// use toolgym_env::env::EnvFactory;
/// use toolgym_env::ToolEnv;
/// let samples = load_samples(Path::new("api-bank"), None).unwrap();
/// let envs = apibank_envs(&samples, Judge::official(), PromptStyle::Official, Arc::new(ApiBankTemplate));
/// let task = envs.tasks()[0].clone().unwrap();
/// let mut env = envs.make(task);
/// let prompt = env.reset(None).prompt;
/// let step = env.step(&samples[0].expected_reply());
/// assert!(prompt.ends_with("<|im_start|>assistant\n") && step.terminated);
/// ```
pub fn apibank_envs(
    samples: &[ApiBankSample],
    judge: Judge,
    style: PromptStyle,
    template: Arc<dyn ChatTemplate>,
) -> ApiBankEnvs {
    ReplyEnvs::new(
        "api-bank",
        samples.iter().map(|s| (s.id.clone(), s.clone())).collect(),
        samples
            .iter()
            .map(|s| Ok(Arc::new(style.task(s))))
            .collect(),
        template,
        Arc::new(move |sample: &ApiBankSample, reply: &str| {
            reward_verdict(&judge.judge(sample, Some(reply)))
        }),
    )
}

/// The 49 APIs as tools over an episode's [`ApiBankState`]: each handler
/// turns the JSON arguments into the strings the official parser would
/// give ([`json_argument`]), converts and runs the call like
/// `ToolManager.api_call`, and returns the result's `output` as JSON, or
/// the exception as a tool error.
pub fn registry(network: Network) -> ToolRegistry<ApiBankState> {
    let mut reg = ToolRegistry::new();
    for api in apis::APIS.iter() {
        let handler = move |args: &Value, state: &mut ApiBankState| -> Result<Value, ToolError> {
            let params: Vec<(String, String)> = args
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), json_argument(v)))
                        .collect()
                })
                .unwrap_or_default();
            match run_call(api, &params, state, network) {
                CallOutcome::Returned(r) => match (r.exception, r.output) {
                    (Some(e), _) => Err(ToolError::failed(e)),
                    (None, Output::Value(v)) => Ok(value::to_json(&v)),
                    (None, Output::ExceptionObject(m)) => Ok(Value::String(m)),
                },
                CallOutcome::Rejected(e) => Err(ToolError::failed(e.to_string())),
                CallOutcome::Raised(e) => Err(ToolError::failed(e.to_string())),
            }
        };
        // The specs are built from the catalog and always valid.
        if let Err(e) = reg.register_stateful(api.tool_spec(), handler) {
            debug_assert!(false, "API-Bank tool {}: {e}", api.name);
        }
    }
    reg
}

/// The final rule of [`training_spec`]: the official verdict on the
/// episode's first call (judged on a fresh state, as the benchmark does),
/// for the sample whose id is the task's.
pub fn first_call_rule(
    samples: &[ApiBankSample],
    judge: Judge,
) -> FnRule<impl Fn(&EpisodeView<'_, ApiBankState>) -> Verdict + Send + Sync> {
    let by_id: HashMap<String, Arc<ApiBankSample>> = samples
        .iter()
        .map(|s| (s.id.clone(), Arc::new(s.clone())))
        .collect();
    FnRule::new("api-bank-call", move |v: &EpisodeView<'_, ApiBankState>| {
        let Some(sample) = by_id.get(&v.task.id) else {
            return Verdict::fail(
                Reason::InputError,
                format!("no API-Bank sample with id {:?}", v.task.id),
            );
        };
        let Some(call) = v.episode_calls.first() else {
            return Verdict::fail(Reason::MissingCall, "the episode made no call");
        };
        match judge.judge_call(sample, &from_tool_call(call)) {
            Ok(_) => Verdict::ok(),
            Err((kind, detail, _)) => reward_verdict(&ApiBankVerdict {
                id: sample.id.clone(),
                file: sample.file.clone(),
                sample_index: sample.index,
                api_name: sample.api_name.clone(),
                valid: false,
                error_type: Some(kind.into()),
                error: Some(detail),
                model_output: None,
                result: None,
                level1_file: sample.in_level1_file(),
                never_passes: sample.never_passes.is_some(),
                offline_substitute: false,
            }),
        }
    })
}

/// A trainable environment over `samples`: the tools of [`registry`], one
/// turn by default (the episode ends once a call has run), reward =
/// [`first_call_rule`]. Build tasks with [`tool_n1_task`] (also returned
/// here, one per sample). Every episode starts from a fresh copy of the
/// databases; a longer episode (raise `max_turns`) keeps its state across
/// calls, as one `ToolManager` would.
///
/// ```no_run
/// use std::path::Path;
/// use std::sync::Arc;
/// use toolgym_env::data::apibank::{load_samples, training_spec, Network};
/// use toolgym_env::env::run_episode;
/// use toolgym_env::{ChatMlTemplate, ChatTemplate, ToolEnv};
/// let samples = load_samples(Path::new("api-bank"), None).unwrap();
/// let (spec, tasks) = training_spec(&samples, Arc::new(ChatMlTemplate::tool_n1()), Network::Recorded);
/// let target = spec.template.target(&tasks[0]);
/// let mut env = spec.env(tasks[0].clone());
/// let episode = run_episode(&mut env, 4, |_| target.clone());
/// println!("reward {}", episode.total_reward());
/// ```
pub fn training_spec(
    samples: &[ApiBankSample],
    template: Arc<dyn ChatTemplate>,
    network: Network,
) -> (MultiTurnSpec<ApiBankState>, Vec<Arc<Task>>) {
    let data = samples
        .first()
        .map(|s| s.data.clone())
        .unwrap_or_else(|| Arc::new(ApiBankData::empty()));
    let judge = Judge {
        network,
        ..Judge::tool_n1()
    };
    let config = MultiTurnConfig::empty()
        .max_turns(1)
        .end_when(|state: &ApiBankState, _| state.calls() >= 1)
        .final_rule(1.0, first_call_rule(samples, judge));
    let spec = MultiTurnSpec::new(registry(network), template, config, move |_task| {
        data.fresh_state()
    })
    .named("api-bank");
    let tasks = samples.iter().map(|s| Arc::new(tool_n1_task(s))).collect();
    (spec, tasks)
}
