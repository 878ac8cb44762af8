//! What SFT and GRPO runs share: the policy and its optimiser, the task
//! sampler, validation, checkpoints, resumption and the metrics log.

use crate::evaluate::{evaluate, EvalReport, Sampled};
use crate::metrics::{MetricsLog, StepMetrics};
use crate::rollout::RolloutLimits;
use crate::state::{due, load_checkpoint, save_checkpoint, TrainerState};
use crate::{AdamW, OptimConfig, Policy, RunSection, TrainError};
use std::path::PathBuf;
use std::sync::Arc;
use toolgym_env::env::DynEnvFactory;
use toolgym_env::{Sampler, Task, TaskSource};
use toolgym_model::candle_core::Var;
use toolgym_model::rng::mix_seed;

/// Most prompts generated together during validation.
pub(crate) const EVAL_BATCH: usize = 64;

/// One training phase (`sft` or `grpo`) in `run.out_dir/<phase>`.
pub(crate) struct Phase {
    /// `sft` or `grpo`.
    pub name: &'static str,
    /// Run settings.
    pub run: RunSection,
    /// The policy being trained.
    pub policy: Policy,
    /// Its trainable parameters.
    pub params: Vec<(String, Var)>,
    /// The optimiser.
    pub optimizer: AdamW,
    /// Makes one environment per episode.
    pub factory: Arc<dyn DynEnvFactory>,
    /// Training tasks, seeded and resumable.
    pub sampler: Sampler,
    /// Held-out tasks.
    pub validation: Vec<Arc<Task>>,
    /// Completed steps.
    pub step: usize,
    /// Steps the phase runs for.
    pub total_steps: usize,
    /// `run.out_dir/<name>`.
    pub dir: PathBuf,
    /// `run.out_dir/metrics.jsonl`.
    pub metrics: MetricsLog,
    /// Limits of validation episodes.
    pub eval_limits: RolloutLimits,
    /// Whether the phase continues from a checkpoint.
    pub resumed: bool,
    /// [`TrainerState::train_tasks`], when the trainer chose the tasks.
    pub train_tasks: Option<String>,
    /// What the update makes of an episode its env failed, for the
    /// step's stderr line ([`PhaseSetup::env_failures`]).
    pub env_failures: String,
    /// GRPO steps in a row, up to the last, with no model token to train
    /// on ([`TrainerState::empty_steps`]; carried across a resume).
    pub empty_steps: usize,
    /// Steps in a row, up to the last, in which envs failed too many
    /// episodes (GRPO's share, or every episode in SFT;
    /// [`TrainerState::env_failure_steps`]; carried across a resume).
    pub env_failure_steps: usize,
    /// [`PhaseSetup::env_timeout`].
    pub env_timeout: Option<std::time::Duration>,
}

/// [`Phase::env_failures`] where failed episodes are left out.
pub(crate) const LEFT_OUT: &str = "left out of the update";

/// Runs one of the env factory's state hooks, `f` on `factory`, timed as
/// an env call ([`timed`](crate::rollout::timed): with `timeout`, a hook
/// still running then is left on its worker thread); its error, panic or
/// time-out is a [`TrainError::Env`] naming the hook (a checkpoint without
/// the state, or a resume without it, would not continue the run exactly;
/// a hook that hangs hung the run at every validation and checkpoint).
fn factory_hook<T: Send + 'static>(
    hook: &str,
    factory: &Arc<dyn DynEnvFactory>,
    timeout: Option<std::time::Duration>,
    f: impl FnOnce(&dyn DynEnvFactory) -> Result<T, String> + Send + 'static,
) -> Result<T, TrainError> {
    let failed = |why: String| {
        TrainError::Env(format!(
            "the env factory's {hook} failed: {why} (the run's checkpoints hold the factory's \
             state so that a resumed run continues exactly, and validation leaves it as it \
             found it)"
        ))
    };
    let factory = factory.clone();
    match crate::rollout::timed(timeout, move || f(factory.as_ref())) {
        Ok(result) => result.map_err(failed),
        Err(failure) => Err(failed(failure.describe("it"))),
    }
}

/// The factory's state for a checkpoint. `Some(null)` is refused: written
/// as null, it would read back as no state, and a resumed run would never
/// restore it.
fn savable_state(f: &dyn DynEnvFactory) -> Result<Option<serde_json::Value>, String> {
    match f.checkpoint_state()? {
        Some(serde_json::Value::Null) => Err("it returned Some(null): a state must be a JSON \
                                              value other than null (Ok(None) says the factory \
                                              has none)"
            .into()),
        state => Ok(state),
    }
}

/// Runs `episodes` (validation, the built-in tokenizer's corpus: episodes
/// outside training order) and gives the env factory back the state it
/// had before ([`EnvFactory::checkpoint_state`]), restored only where
/// they moved it: a factory that saves state but never restores (the
/// default `restore_state`) runs as before as long as they leave its
/// state alone. `what` names them in a hook's error.
///
/// [`EnvFactory::checkpoint_state`]: toolgym_env::env::EnvFactory::checkpoint_state
pub(crate) fn keeping_factory_state<T>(
    factory: &Arc<dyn DynEnvFactory>,
    timeout: Option<std::time::Duration>,
    what: &str,
    episodes: impl FnOnce() -> T,
) -> Result<T, TrainError> {
    let hook = |name: &str| format!("{name} (around {what})");
    let snapshot = |f: &dyn DynEnvFactory| f.checkpoint_state();
    // Earlier episodes' envs still being dropped move the state before the
    // snapshot, and these episodes' envs before the second one, not after.
    let before = settled_state(&hook("checkpoint_state"), factory, timeout, snapshot)?;
    let out = episodes();
    if let Some(state) = before {
        let after = settled_state(&hook("checkpoint_state"), factory, timeout, snapshot)?;
        if after.as_ref() != Some(&state) {
            factory_hook(&hook("restore_state"), factory, timeout, move |f| {
                f.restore_state(&state)
            })?;
        }
    }
    Ok(out)
}

/// Waits (with `timeout`, up to it) for the envs the rollouts left to
/// drop on worker threads ([`crate::rollout::wait_for_env_drops`]), before
/// the factory's state is read: an env's `Drop` may move it (a curriculum
/// counting ended episodes, a pool taking its env back). Drops that hang
/// are waited for until their own time limit, once: after it they are
/// counted as stuck and no longer waited for (a wait of over a second is
/// said on stderr). Calls given up on after the limit can still move the
/// state later. Without a limit, envs are dropped in place, and nothing is
/// pending. Returns whether any drop was pending.
fn settle_env_drops(timeout: Option<std::time::Duration>) -> bool {
    let Some(limit) = timeout else {
        return false;
    };
    let pending = crate::rollout::env_drops_running();
    if pending == 0 {
        return false;
    }
    let started = std::time::Instant::now();
    let left = crate::rollout::wait_for_env_drops(limit);
    let waited = started.elapsed();
    if waited >= std::time::Duration::from_secs(1) {
        eprintln!(
            "waited {:.1} s for {pending} env Drop(s) still running before reading the env \
             factory's state; {left} still running",
            waited.as_secs_f64()
        );
    }
    true
}

/// The factory's state, read once the envs still being dropped are gone
/// ([`settle_env_drops`]); a stateless factory (`None`) waits for nothing.
fn settled_state<T: PartialEq + Send + 'static>(
    hook: &str,
    factory: &Arc<dyn DynEnvFactory>,
    timeout: Option<std::time::Duration>,
    read: impl Fn(&dyn DynEnvFactory) -> Result<Option<T>, String> + Send + Copy + 'static,
) -> Result<Option<T>, TrainError> {
    let state = factory_hook(hook, factory, timeout, read)?;
    if state.is_some() && settle_env_drops(timeout) {
        return factory_hook(hook, factory, timeout, read);
    }
    Ok(state)
}

/// Refuses to resume from a checkpoint of a run with another seed (unless
/// `force`): every draw derives from the seed and the step, so the
/// resumed run would not go on as that run would have. (`toolgym train`
/// also compares the whole recorded config; this holds for any caller.)
fn check_seed(saved: &TrainerState, seed: u64, force: bool) -> Result<(), TrainError> {
    if saved.seed == seed {
        return Ok(());
    }
    let why = format!(
        "{}: the checkpoint's run has seed {} and this one {seed}: every draw derives from the \
         seed, so resuming would not go on as that run would have",
        saved.phase, saved.seed
    );
    let advice = format!("Set run.seed={}, start a new run directory", saved.seed);
    refuse_unless_forced(why, &advice, force)
}

/// The end of a resume check that found a mismatch, `why`: with `force`,
/// a warning and on; else an error with `advice` (what to do instead),
/// and `--force` named.
fn refuse_unless_forced(why: String, advice: &str, force: bool) -> Result<(), TrainError> {
    if force {
        eprintln!("warning: {why}; resuming anyway (run.force)");
        return Ok(());
    }
    Err(TrainError::Checkpoint(format!(
        "{why}. {advice}, or pass --force (run.force=true) to resume anyway"
    )))
}

/// Refuses to resume from a checkpoint whose run drew from other training
/// tasks than this one (unless `force`): the data position would index
/// another list, and the run would not go on as it would have.
fn check_train_tasks(
    saved: &TrainerState,
    now: Option<&str>,
    force: bool,
) -> Result<(), TrainError> {
    // A checkpoint of an older build records nothing: nothing to compare.
    let Some(then) = saved.train_tasks.as_deref() else {
        return Ok(());
    };
    let now = now.unwrap_or("every task of the source, unfiltered");
    // A checkpoint of a build that recorded no content: its count and ids.
    let same_ids = || {
        now.strip_prefix(then)
            .is_some_and(|r| r.starts_with(", content "))
    };
    if then == now || same_ids() {
        return Ok(());
    }
    let why = format!(
        "{}: the checkpoint's run drew from other training tasks ({then}) than this one \
         ({now}): the training data changed, or the first-prompt filter kept other tasks (an \
         env that failed or did not return within grpo.env_timeout_s while it measured, a \
         first prompt that depends on state, another max_prompt_tokens or tokenizer, another \
         overlong_prompts), the task source failed to give other tasks, or the checkpoint was \
         written by a toolgym build that sorted JSON object keys (before 2026-12-07: its task \
         hash wrote them sorted); resuming would not go on as that run would have",
        saved.phase
    );
    refuse_unless_forced(why, "Start a new run directory", force)
}

/// The [`TrainerState::train_tasks`] of a list of tasks: their count, a
/// hash of their ids in order and one of the tasks as task files hold them
/// (JSON object keys in the order they were read in, which the prompts
/// keep too).
pub(crate) fn train_tasks_of(tasks: &[Arc<Task>]) -> String {
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    // Each task as a task file holds it: an edited ground truth, tool or
    // message is another run's data.
    let mut content = toolgym_env::rng::Fnv1a::default();
    for t in tasks {
        // Writing into a hash cannot fail, and a task always serialises.
        let _ = serde_json::to_writer(&mut content, t.as_ref());
        content.update(b"\n");
    }
    format!(
        "{} tasks, ids {:016x}, content {:016x}",
        tasks.len(),
        toolgym_env::rng::fnv1a(&ids.join("\n")),
        content.finish()
    )
}

/// [`train_tasks_of`] every task of a finite source; `None` for an
/// endless one (a generator: its tasks follow from its settings, which
/// the recorded config holds).
pub(crate) fn train_tasks_of_source(source: &dyn TaskSource) -> Option<String> {
    let n = source.len()?;
    // A task the source fails to give is not trained on: not part of
    // what the run trains on either (the sampler skips it too).
    let (mut failed, mut first) = (0, None);
    let tasks: Vec<Arc<Task>> = (0..n as u64)
        .filter_map(|i| match toolgym_env::try_get(source, i) {
            Ok(task) => task,
            Err(failure) => {
                failed += 1;
                first.get_or_insert(failure);
                None
            }
        })
        .collect();
    if let Some(first) = first {
        eprintln!(
            "warning: the training source failed to give {failed} of its {n} tasks (skipped \
             when drawn); the first: {first}"
        );
    }
    Some(train_tasks_of(&tasks))
}

/// What a phase is built from.
pub(crate) struct PhaseSetup {
    pub name: &'static str,
    pub policy: Policy,
    pub factory: Arc<dyn DynEnvFactory>,
    pub train: Arc<dyn TaskSource>,
    pub validation: Vec<Arc<Task>>,
    pub optim: OptimConfig,
    pub run: RunSection,
    pub total_steps: usize,
    pub eval_limits: RolloutLimits,
    /// [`TrainerState::train_tasks`] of `train`, when the trainer chose
    /// its tasks (a resume from a checkpoint that chose others is refused,
    /// unless `run.force`).
    pub train_tasks: Option<String>,
    /// What the update makes of an episode its env failed ("left out of
    /// the update", or how GRPO's `env_failures = "scored"` scores it).
    pub env_failures: String,
    /// The phase's own env time limit (`env_timeout_s`), for the env
    /// factory's state hooks.
    pub env_timeout: Option<std::time::Duration>,
}

impl Phase {
    /// Opens the phase; with `run.resume` and a checkpoint in its directory,
    /// continues from it (policy, optimiser, step and data position).
    pub fn open(s: PhaseSetup) -> Result<Self, TrainError> {
        if cfg!(panic = "abort") {
            // Env panics are caught at the rollout's boundary only when
            // they unwind.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                eprintln!(
                    "warning: this program is built with panic = \"abort\": a panic in env or \
                     tool code ends the process, not only its episode (build with the default \
                     panic = \"unwind\" to train against envs that may panic)"
                )
            });
        }
        if s.policy.model.dtype() == toolgym_model::candle_core::DType::F16 {
            return Err(crate::config::f16_refused(&format!(
                "{}: the policy is in f16",
                s.name
            )));
        }
        let dir = s.run.out_dir.join(s.name);
        let mut optimizer = AdamW::new(s.optim);
        let stream = toolgym_env::rng::fnv1a(s.name);
        let mut sampler = Sampler::new(s.train, mix_seed(s.run.seed, stream));
        let mut policy = s.policy;
        let mut step = 0;
        let mut resumed = false;
        let (mut empty_steps, mut env_failure_steps) = (0, 0);
        if s.run.resume {
            let fallback = s.run.resume_fallback;
            if let Some((p, state)) =
                load_checkpoint(&dir, &policy, &mut optimizer, s.name, fallback)?
            {
                check_train_tasks(&state, s.train_tasks.as_deref(), s.run.force)?;
                check_seed(&state, s.run.seed, s.run.force)?;
                if let Some(env_state) = state.env_state.clone() {
                    factory_hook("restore_state", &s.factory, s.env_timeout, move |f| {
                        f.restore_state(&env_state)
                    })?;
                }
                policy = p;
                step = state.step;
                sampler.set_position(state.data_position);
                empty_steps = state.empty_steps;
                env_failure_steps = state.env_failure_steps;
                resumed = true;
                // Said, so a re-run that picks up where one stopped (or
                // finds it finished) is not taken for a new run.
                eprintln!(
                    "{}: resuming after step {step} of {} (checkpoints in {})",
                    s.name,
                    s.total_steps,
                    crate::checkpoint::checkpoints_dir(&dir).display()
                );
            }
        }
        // With `run.resume`, step directories were resumed from (or refused
        // by name) above; they are removed only when starting over.
        if !s.run.resume && crate::checkpoint::exists(&dir) {
            // Starting over: checkpoints an earlier run left here would
            // outnumber this run's and be kept in their place (and a
            // `latest` of its would name one of them).
            eprintln!(
                "{}: starting over: removing the earlier run's checkpoints in {}",
                s.name,
                crate::checkpoint::checkpoints_dir(&dir).display()
            );
            crate::checkpoint::remove_all(&dir)?;
        }
        let params = policy.model.named_vars()?;
        let metrics = MetricsLog::open(&s.run.out_dir, s.name, resumed.then_some(step))?;
        Ok(Self {
            name: s.name,
            run: s.run,
            policy,
            params,
            optimizer,
            factory: s.factory,
            sampler,
            validation: s.validation,
            step,
            total_steps: s.total_steps,
            dir,
            metrics,
            eval_limits: s.eval_limits,
            resumed,
            train_tasks: s.train_tasks,
            env_failures: s.env_failures,
            empty_steps,
            env_failure_steps,
            env_timeout: s.env_timeout,
        })
    }

    /// Forgets skipped tasks counted before the step (by a step that
    /// ended in an error): they are not this step's. The sampler skips
    /// tasks its source fails to give, later draws taking their place, and
    /// counts them until the step's metrics take the count
    /// ([`Phase::report_source_skips`]).
    pub fn start_step(&mut self) {
        self.sampler.take_failures();
    }

    /// The error for a step the sampler found no task for.
    pub fn no_tasks(&self) -> TrainError {
        match self.sampler.failures() {
            None => TrainError::Data("the training source has no tasks".into()),
            Some(skipped) => TrainError::Data(format!(
                "the training source failed to give every task drawn for {} step {} ({} \
                 failures); the first: {}",
                self.name,
                self.step + 1,
                skipped.count,
                skipped.first
            )),
        }
    }

    /// Moves the step's skipped-task count into its metrics.
    pub fn report_source_skips(&mut self, m: &mut StepMetrics) {
        let skipped = self.sampler.take_failures();
        m.source_failures = skipped.as_ref().map(|s| s.count);
        m.source_error = skipped.map(|s| s.first.to_string());
    }

    /// The state a checkpoint records (the env factory's included).
    pub fn state(&self) -> Result<TrainerState, TrainError> {
        let env_state = settled_state(
            "checkpoint_state",
            &self.factory,
            self.env_timeout,
            savable_state,
        )?;
        Ok(TrainerState {
            phase: self.name.into(),
            step: self.step,
            data_position: self.sampler.position(),
            seed: self.run.seed,
            optimizer_steps: self.optimizer.step,
            optimizer_updates: Some(self.optimizer.applied),
            finished: self.step >= self.total_steps,
            env_state,
            train_tasks: self.train_tasks.clone(),
            empty_steps: self.empty_steps,
            env_failure_steps: self.env_failure_steps,
        })
    }

    /// Writes a checkpoint of the current state.
    pub fn save_checkpoint(&self) -> Result<PathBuf, TrainError> {
        self.metrics.sync()?;
        save_checkpoint(
            &self.dir,
            &self.policy,
            &self.optimizer,
            &self.state()?,
            self.run.keep_checkpoints,
        )
    }

    /// The tasks [`Phase::validate`] runs: the first `run.eval_tasks`
    /// validation tasks (all if 0).
    pub fn validation_tasks(&self) -> &[Arc<Task>] {
        let n = match self.run.eval_tasks {
            0 => self.validation.len(),
            n => n.min(self.validation.len()),
        };
        &self.validation[..n]
    }

    /// Greedy validation episodes on `run.eval_tasks` validation tasks (all
    /// if 0). Validation measures and leaves the env factory's state as it
    /// found it ([`EnvFactory::checkpoint_state`] before and after,
    /// `restore_state` when they differ): a curriculum that counts ended
    /// episodes follows training only, and a resumed run, which validates
    /// again at its start, goes on as the uninterrupted run does.
    ///
    /// [`EnvFactory::checkpoint_state`]: toolgym_env::env::EnvFactory::checkpoint_state
    pub fn validate(&self) -> Result<Option<EvalReport>, TrainError> {
        let tasks = self.validation_tasks();
        if tasks.is_empty() {
            return Ok(None);
        }
        let sampled = (self.run.eval_samples > 0).then(|| Sampled {
            samples: self.run.eval_samples,
            temperature: self.run.eval_temperature,
            seed: mix_seed(self.run.seed, 0x0076_616c),
        });
        let report = keeping_factory_state(&self.factory, self.env_timeout, "validation", || {
            evaluate(
                &self.policy,
                &self.factory,
                tasks,
                &self.eval_limits,
                EVAL_BATCH,
                sampled,
            )
        })??;
        Ok(Some(report))
    }

    /// Runs `step` until the phase is complete: validation every
    /// `run.eval_every` steps and after the last, a checkpoint every
    /// `run.save_every` steps and after the last, one metrics line per step.
    /// Returns the validation after the last step, if any ran.
    pub fn run_steps<T>(
        trainer: &mut T,
        phase: impl Fn(&mut T) -> &mut Phase,
        step: impl Fn(&mut T) -> Result<StepMetrics, TrainError>,
        mut on_step: impl FnMut(&StepMetrics),
    ) -> Result<Option<EvalReport>, TrainError> {
        let mut last_eval = None;
        while phase(trainer).step < phase(trainer).total_steps {
            let mut m = step(trainer)?;
            let p = phase(trainer);
            let last = p.step >= p.total_steps;
            if due(p.step, p.run.eval_every, last) {
                if let Some(r) = p.validate()? {
                    m.set_validation(&r);
                    if last {
                        last_eval = Some(r);
                    }
                }
            }
            p.metrics.write(&m)?;
            if let (Some(n @ 1..), Some(first)) = (m.env_failures, &m.env_error) {
                // The run goes on; what failed is said once per step.
                eprintln!(
                    "{}: step {}: {n} episode(s) ended by an env failure ({}); the first: {first}",
                    m.phase, m.step, p.env_failures
                );
            }
            if let (Some(n), Some(first)) = (m.source_failures, &m.source_error) {
                eprintln!(
                    "{}: step {}: the training source failed to give {n} task(s), skipped \
                     (later draws took their place); the first: {first}",
                    m.phase, m.step
                );
            }
            if let (Some(n), Some(first)) = (m.env_drop_panics, &m.env_drop_panic) {
                eprintln!(
                    "{}: step {}: {n} env Drop(s) panicked (caught; the episodes were over, but \
                     their clean-up may not have run); the first: {first}",
                    m.phase, m.step
                );
            }
            if let Some(n) = m.env_calls_stuck {
                eprintln!(
                    "{}: step {}: {n} env call(s) that ran past env_timeout are still running \
                     (each holds a thread and its env)",
                    m.phase, m.step
                );
            }
            on_step(&m);
            if due(p.step, p.run.save_every, last) {
                p.save_checkpoint()?;
            }
            // The step's checkpoint, when due, is written first; a run that
            // is over ends as it is.
            if !last {
                too_many_stuck_calls(&m)?;
            }
        }
        Ok(last_eval)
    }
}

/// Steps in a row after which a condition that makes a step useless stops
/// the run: no model token to train on (every episode left out for its
/// prompt's length, or cut before a reply), or envs failing at least
/// `grpo.stop_at_env_failure_share` of the episodes (in SFT, every
/// demonstration). One such step can be
/// bad luck (a source that generates its tasks, a step of one prompt, a
/// service that is down for a minute); three say the limits or the model
/// do not fit the tasks, or the env is broken.
pub(crate) const STEPS_IN_A_ROW_STOP: usize = 3;

/// What a step makes of a run-stopping condition ([`count_streak`]).
pub(crate) enum Streak {
    /// It did not hold: the count is back at 0.
    Clear,
    /// It held, fewer steps in a row than stop the run.
    Warn,
    /// It held on [`STEPS_IN_A_ROW_STOP`] steps in a row, or on every step
    /// of a shorter run; with what the message adds about the steps
    /// before this one.
    Stop(String),
}

/// Counts this step in `count` (steps in a row, up to this one, where the
/// condition held; a step on which only the `other` condition held leaves
/// it as it was) and says what it makes of the run.
pub(crate) fn count_streak(
    count: &mut usize,
    holds: bool,
    other: bool,
    total_steps: usize,
) -> Streak {
    *count = match (holds, other) {
        (true, _) => *count + 1,
        (false, true) => *count,
        (false, false) => 0,
    };
    if !holds {
        Streak::Clear
    } else if *count >= STEPS_IN_A_ROW_STOP.min(total_steps) {
        Streak::Stop(match *count - 1 {
            0 => String::new(),
            n => format!(", and so had the {n} step(s) before it"),
        })
    } else {
        Streak::Warn
    }
}

/// Stops a run once [`MAX_STUCK_ENV_CALLS`] env calls are still running
/// past their time limit after a step: each holds a thread and its env for
/// good, and an env that hangs in some of its episodes would go on until
/// the process ran out of threads or memory.
fn too_many_stuck_calls(m: &StepMetrics) -> Result<(), TrainError> {
    match m.env_calls_stuck {
        Some(n @ MAX_STUCK_ENV_CALLS..) => Err(TrainError::Env(format!(
            "{} step {}: {n} env calls ran past env_timeout and are still running (the run \
             stops at {MAX_STUCK_ENV_CALLS}): the env hangs; each stuck call holds a thread and \
             its env",
            m.phase, m.step
        ))),
        _ => Ok(()),
    }
}

/// Env calls still running past their time limit ([`StepMetrics::env_calls_stuck`])
/// at which a run stops.
pub(crate) const MAX_STUCK_ENV_CALLS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(train_tasks: Option<&str>) -> TrainerState {
        TrainerState {
            phase: "grpo".into(),
            step: 1,
            data_position: 2,
            seed: 0,
            optimizer_steps: 1,
            optimizer_updates: None,
            finished: false,
            env_state: None,
            train_tasks: train_tasks.map(str::to_string),
            empty_steps: 0,
            env_failure_steps: 0,
        }
    }

    #[test]
    fn a_checkpoint_of_an_earlier_build_is_compared_by_count_and_ids() {
        let now = "6 tasks, ids 00000000000000aa, content 00000000000000bb";
        for then in [None, Some(now), Some("6 tasks, ids 00000000000000aa")] {
            assert!(
                check_train_tasks(&saved(then), Some(now), false).is_ok(),
                "{then:?}"
            );
        }
        for then in [
            "6 tasks, ids 00000000000000ab",
            "6 tasks, ids 00000000000000aa, content 00000000000000bc",
            "6 tasks, ids 00000000000000a",
        ] {
            let e = check_train_tasks(&saved(Some(then)), Some(now), false).unwrap_err();
            assert!(
                e.to_string().contains("drew from other training tasks"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_run_stops_when_too_many_env_calls_are_stuck() {
        let at = |n: Option<usize>| StepMetrics {
            phase: "grpo".into(),
            step: 4,
            env_calls_stuck: n,
            ..StepMetrics::default()
        };
        assert!(super::too_many_stuck_calls(&at(None)).is_ok());
        assert!(super::too_many_stuck_calls(&at(Some(MAX_STUCK_ENV_CALLS - 1))).is_ok());
        let e = super::too_many_stuck_calls(&at(Some(MAX_STUCK_ENV_CALLS)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("grpo step 4: 256 env calls ran past env_timeout"),
            "{e}"
        );
    }

    #[test]
    fn a_checkpoint_of_another_seed_is_refused_unless_forced() {
        assert!(check_seed(&saved(None), 0, false).is_ok());
        let e = check_seed(&saved(None), 7, false).unwrap_err().to_string();
        assert!(
            e.contains("seed 0 and this one 7") && e.contains("run.seed=0"),
            "{e}"
        );
        assert!(check_seed(&saved(None), 7, true).is_ok());
    }
}
