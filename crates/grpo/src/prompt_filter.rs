//! Leaving out tasks whose first prompt is over the limit before training
//! starts, as the released verl config does (`filter_overlong_prompts`):
//! never cut silently, counted per source.

use crate::rollout::{call_env, drop_quietly, in_env_pool, make_env, CallFailure, RolloutLimits};
use crate::Policy;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use toolgym_env::env::DynEnvFactory;
use toolgym_env::{try_get, Dataset, SourceFailure, TaskSource};

/// The tasks of a finite `source` whose first prompt (the env's reset
/// observation, tokenised by `policy`) fits in `limits.max_prompt_tokens`,
/// and the number left out per task source (`Task::source`). Env calls
/// run as in a rollout with `limits` (`env_timeout`, `env_concurrency`).
/// A task the source fails to give (its `get` panics) is left out, said
/// on stderr. A task whose env panics when made or reset, or does not
/// return within `env_timeout`, is kept:
/// the rollout engine reports that failure itself. After the first such
/// time-out, the remaining tasks are kept without being measured.
///
/// The first prompt is measured from a reset with seed 0. Training resets
/// with other seeds, so an env whose first prompt's length depends on the
/// seed can still give a longer one at run time; the rollout engine then
/// does not run that episode (an empty trajectory judged `token_limit`,
/// counted in `skipped_episodes`).
pub fn drop_overlong(
    policy: &Policy,
    factory: &Arc<dyn DynEnvFactory>,
    source: &dyn TaskSource,
    limits: &RolloutLimits,
) -> (Dataset, BTreeMap<String, usize>) {
    let gave_up = AtomicBool::new(false);
    drop_overlong_of(
        policy, factory, source, limits, "grpo", "training", &gave_up,
    )
}

/// The tasks kept, and the number left out per source.
pub type Kept = (Vec<Arc<toolgym_env::Task>>, BTreeMap<String, usize>);

/// [`drop_overlong`] for validation tasks under `config`'s limits, as
/// verl's `filter_overlong_prompts` filters its validation set too (with
/// `overlong_prompts = "truncate-left"` every task is kept): the tasks
/// that fit, in their order (so `run.eval_tasks` takes the first of those),
/// and the number left out per source. Without it a task over the limit
/// is validated as a wrong answer (its episode is not run), and accuracy
/// reads lower than verl's by the share of such tasks.
///
/// With `wanted` > 0 (`run.eval_tasks`) tasks are measured in order only
/// until that many fit: the rest are kept unmeasured (never validated),
/// and the counts are of the tasks measured (after an env time-out no
/// more are), said on stderr. The envs made to measure
/// leave the factory's state as it was (as validation does: a curriculum
/// does not move). Each first prompt is measured from a reset with seed 0,
/// as for training tasks; validation episodes reset with their own seeds,
/// so an env whose first prompt's length depends on the seed can still
/// give a longer one (that episode is then not run and counts as wrong).
/// `phase` names the phase in what is said on stderr.
pub fn drop_overlong_validation(
    policy: &Policy,
    factory: &Arc<dyn DynEnvFactory>,
    validation: &[Arc<toolgym_env::Task>],
    config: &crate::GrpoConfig,
    phase: &str,
    wanted: usize,
) -> Result<Kept, crate::TrainError> {
    if config.overlong_prompts == crate::config::OverlongPrompts::TruncateLeft {
        return Ok((validation.to_vec(), BTreeMap::new()));
    }
    let limits = &config.rollout_limits();
    let measure = || {
        let (mut kept, mut dropped) = (Vec::new(), BTreeMap::<String, usize>::new());
        let mut next = 0;
        // One time-out ends the measuring (each chunk would wait as long).
        let gave_up = AtomicBool::new(false);
        while next < validation.len()
            && (wanted == 0 || kept.len() < wanted)
            && !gave_up.load(Ordering::Relaxed)
        {
            let room = validation.len() - next;
            let take = if wanted == 0 {
                room
            } else {
                (wanted - kept.len()).min(room)
            };
            let chunk = Dataset::from_shared("validation", validation[next..next + take].to_vec());
            next += take;
            let (k, d) = drop_overlong_of(
                policy,
                factory,
                &chunk,
                limits,
                phase,
                "validation",
                &gave_up,
            );
            kept.extend(k.tasks().iter().cloned());
            for (source, n) in d {
                *dropped.entry(source).or_default() += n;
            }
        }
        kept.extend(validation[next..].iter().cloned());
        (kept, dropped, next)
    };
    if validation.is_empty() {
        return Ok((Vec::new(), BTreeMap::new()));
    }
    let (kept, dropped, measured) = crate::phase::keeping_factory_state(
        factory,
        limits.env_timeout,
        "the validation prompts' length check",
        measure,
    )?;
    let limit = crate::rollout::limit_named(
        "grpo.max_prompt_tokens",
        limits.max_prompt_tokens,
        policy.token_space().max_context,
    );
    report_dropped(phase, "validation", measured, &limit, &dropped);
    Ok((kept, dropped))
}

/// Says on stderr how many of the `total` `what` tasks measured (training,
/// validation) `phase` left out as over `limit` (the limit that applies,
/// named), by source; nothing when none.
pub fn report_dropped(
    phase: &str,
    what: &str,
    total: usize,
    limit: &str,
    dropped: &BTreeMap<String, usize>,
) {
    if dropped.is_empty() {
        return;
    }
    let counts: Vec<String> = dropped.iter().map(|(s, k)| format!("{s} {k}")).collect();
    eprintln!(
        "{phase}: left out {} of {total} {what} tasks whose first prompt is over {limit} ({})",
        dropped.values().sum::<usize>(),
        counts.join(", ")
    );
}

fn drop_overlong_of(
    policy: &Policy,
    factory: &Arc<dyn DynEnvFactory>,
    source: &dyn TaskSource,
    limits: &RolloutLimits,
    phase: &str,
    what: &str,
    gave_up: &AtomicBool,
) -> (Dataset, BTreeMap<String, usize>) {
    let max_context = policy.token_space().max_context;
    let max_tokens = crate::rollout::prompt_limit(limits.max_prompt_tokens, max_context);
    let env_timeout = limits.env_timeout;
    let n = source.len().unwrap_or(0) as u64;
    let judge = |task: Arc<toolgym_env::Task>| {
        // A reset that fails (or does not return in time) keeps the task.
        // After one time-out (of the env's `make`, `reset` or `Drop`) the
        // rest are kept unmeasured: each would wait as long.
        if gave_up.load(Ordering::Relaxed) {
            return (task, true);
        }
        let mut dropped = true;
        let prompt = make_env(factory, task.clone(), env_timeout).and_then(|env| {
            let (env, prompt) = call_env(env, env_timeout, |e| e.reset(Some(0)).prompt);
            if let Some(env) = env {
                dropped = drop_quietly(env, env_timeout);
            }
            prompt
        });
        // A `Drop` that hangs is a time-out like the others.
        let timed_out = !dropped || matches!(prompt, Err(CallFailure::TimedOut(_)));
        if timed_out && !gave_up.swap(true, Ordering::Relaxed) {
            eprintln!(
                "{phase}: making, resetting or dropping an env did not return within the env \
                 timeout while measuring first prompts (task {}); the remaining tasks are kept \
                 unmeasured",
                task.id
            );
        }
        // Over the limit by its length alone: dropped without tokenising.
        let fits = prompt.map_or(true, |p| {
            policy.tokenizer.min_tokens(&p) <= max_tokens
                && policy
                    .tokenizer
                    .encode(&p)
                    .map_or(true, |ids| ids.len() <= max_tokens)
        });
        (task, fits)
    };
    let fetched: Vec<Result<Arc<toolgym_env::Task>, SourceFailure>> = in_env_pool(limits, || {
        (0..n)
            .into_par_iter()
            .filter_map(|i| try_get(source, i).transpose())
            .collect()
    });
    let (tasks, failures): (Vec<_>, Vec<_>) = fetched.into_iter().partition(Result::is_ok);
    if let Some(Err(first)) = failures.first() {
        eprintln!(
            "{phase}: left out {} {what} task(s) the source failed to give; the first: {first}",
            failures.len()
        );
    }
    let judged: Vec<(Arc<toolgym_env::Task>, bool)> = in_env_pool(limits, || {
        tasks.into_par_iter().flatten().map(judge).collect()
    });
    let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
    let mut kept = Vec::with_capacity(judged.len());
    for (task, fits) in judged {
        if fits {
            kept.push(task);
        } else {
            *dropped.entry(task.source.clone()).or_default() += 1;
        }
    }
    (Dataset::from_shared(source.name(), kept), dropped)
}
