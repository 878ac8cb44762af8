//! From a [`TrainConfig`] to a trained policy: build the policy (a Hugging
//! Face directory or the built-in tiny model), the environments and tasks
//! (JSONL files or the built-in synthetic environment with the configured
//! template and reward rule — or any environment of your own through
//! [`run_with`]), then run SFT and/or GRPO, resuming whatever a previous
//! invocation left.

use crate::rollout::{call_env, drop_quietly, make_env, CallFailure};
use crate::{
    parse_device, parse_dtype, EvalReport, GrpoTrainer, Policy, SftTrainer, StepMetrics,
    TrainConfig, TrainError,
};
use std::sync::Arc;
use std::time::Duration;
use toolgym_env::env::DynEnvFactory;
use toolgym_env::synthetic::{Split, SyntheticTasks};
use toolgym_env::template::{template_by_name, TEMPLATES};
use toolgym_env::{Dataset, SingleTurnSpec, Task, TaskSource, ToolEnv};
use toolgym_reward::rule_by_name;

/// Which phases to run, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phases {
    /// Supervised fine-tuning only.
    Sft,
    /// GRPO only.
    Grpo,
    /// SFT warm start, then GRPO from its result.
    SftThenGrpo,
}

/// Validation accuracies along the way.
#[derive(Clone, Debug, Default)]
pub struct PipelineReport {
    /// After SFT.
    pub after_sft: Option<EvalReport>,
    /// Before GRPO (the warm-started policy) — or, when GRPO resumed from
    /// a checkpoint, the resumed policy (see `grpo_resumed_at`). `None`
    /// without validation tasks, or with `run.val_before_train` off and
    /// no SFT run in this invocation.
    pub before_grpo: Option<EvalReport>,
    /// The GRPO step this invocation resumed from (0: it started GRPO).
    pub grpo_resumed_at: usize,
    /// After GRPO.
    pub after_grpo: Option<EvalReport>,
}

impl PipelineReport {
    /// How to label `before_grpo`: `before GRPO`, or `at resume (GRPO step
    /// N)` when this invocation resumed GRPO from a checkpoint.
    pub fn before_grpo_label(&self) -> String {
        match self.grpo_resumed_at {
            0 => "before GRPO".into(),
            n => format!("at resume (GRPO step {n})"),
        }
    }
}

/// What a run trains on: environments, training and validation tasks, and
/// the text a built-in tokenizer is trained on.
pub struct TaskSetup {
    /// Makes one environment per episode.
    pub factory: Arc<dyn DynEnvFactory>,
    /// Where training tasks come from.
    pub train: Arc<dyn TaskSource>,
    /// Held-out tasks.
    pub validation: Vec<Arc<Task>>,
    /// Texts for the built-in model's tokenizer (`None`: transcripts of
    /// demonstration episodes of the first training tasks, see
    /// [`demonstration_corpus`]).
    pub tokenizer_corpus: Option<Vec<String>>,
}

/// Builds tasks and environments from the config's `data` section and
/// reward rule: single-turn episodes with the configured template and rule,
/// on JSONL task files or the built-in synthetic environment.
pub fn task_setup(cfg: &TrainConfig) -> Result<TaskSetup, TrainError> {
    let template = template_by_name(&cfg.data.template).ok_or_else(|| {
        let known: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
        TrainError::Config(format!(
            "data.template: unknown template {:?} ({})",
            cfg.data.template,
            known.join(", ")
        ))
    })?;
    let rule = rule_by_name(&cfg.grpo.reward_rule)
        .map_err(|e| TrainError::Config(format!("grpo.reward_rule: {e}")))?;
    let spec = SingleTurnSpec::new(Arc::from(rule), Arc::new(template));
    Ok(match &cfg.data.train {
        Some(path) => {
            let train = read_task_file(path)?;
            if train.size() == 0 {
                return Err(TrainError::Data(format!("{} has no tasks", path.display())));
            }
            let validation = match &cfg.data.validation {
                Some(v) => validation_tasks(v, read_task_file(v)?),
                None => Vec::new(),
            };
            TaskSetup {
                factory: Arc::new(spec),
                train: Arc::new(train),
                validation,
                tokenizer_corpus: None,
            }
        }
        None => {
            let gen = SyntheticTasks::new(cfg.data.synthetic.to_config(cfg.run.seed)?)
                .map_err(|e| TrainError::Config(format!("data.synthetic: {e}")))?;
            let validation = match &cfg.data.validation {
                Some(v) => validation_tasks(v, read_task_file(v)?),
                None => {
                    let n = cfg.data.synthetic.validation_tasks;
                    if n == 0 {
                        eprintln!(
                            "warning: data.synthetic.validation_tasks = 0: the run is not \
                             validated"
                        );
                    }
                    gen.dataset(Split::Validation, n).tasks().to_vec()
                }
            };
            TaskSetup {
                // Only the built-in model trains a tokenizer.
                tokenizer_corpus: cfg
                    .model
                    .path
                    .is_none()
                    .then(|| gen.tokenizer_corpus(spec.template.as_ref(), 4000)),
                factory: Arc::new(spec),
                train: Arc::new(gen.split(Split::Train)),
                validation,
            }
        }
    })
}

/// A task file for training or validation: a line that is not a task is
/// skipped, and the count with the first few lines and why is said on
/// stderr (one bad line in a 60k-line file does not stop a run; the rest
/// of the file is read). A file with bad lines and no task at all is an
/// error (the wrong file, not an empty one). The dataset is named after
/// the file.
fn read_task_file(path: &std::path::Path) -> Result<Dataset, TrainError> {
    const SHOWN: usize = 3;
    let file =
        toolgym_env::read_jsonl_lenient(path).map_err(|e| TrainError::Data(e.to_string()))?;
    if !file.bad_lines.is_empty() && file.tasks.is_empty() {
        let (line, why) = &file.bad_lines[0];
        return Err(TrainError::Data(format!(
            "{}: none of its {} non-blank line(s) is a task (line {line}: {why})",
            path.display(),
            file.bad_lines.len()
        )));
    }
    if !file.bad_lines.is_empty() {
        let shown: Vec<String> = file
            .bad_lines
            .iter()
            .take(SHOWN)
            .map(|(line, why)| format!("line {line}: {why}"))
            .collect();
        let more = file.bad_lines.len().saturating_sub(SHOWN);
        eprintln!(
            "warning: {}: {} of {} line(s) are not tasks and were skipped ({}{})",
            path.display(),
            file.bad_lines.len(),
            file.lines,
            shown.join("; "),
            if more > 0 {
                format!("; {more} more")
            } else {
                String::new()
            }
        );
    }
    Ok(Dataset::named_after(path, file.tasks))
}

/// The tasks of the validation file `path`, said on stderr when there are
/// none (`prepare --val-fraction 0` writes an empty one): the run then
/// reports no validation accuracy.
fn validation_tasks(path: &std::path::Path, data: Dataset) -> Vec<Arc<Task>> {
    if data.size() == 0 {
        eprintln!(
            "warning: data.validation {} has no tasks: the run is not validated",
            path.display()
        );
    }
    data.tasks().to_vec()
}

/// Transcripts of demonstration episodes of the first `n` tasks of
/// `source` (each env reset with its task's index as seed, then stepped
/// with its own demonstrations, at most 64 turns), or their first prompts
/// when an env has none: the text a built-in tokenizer learns from.
///
/// Each call into an env is made as the rollout makes it (caught, and
/// with `timeout` timed: making the env, `reset`, `demonstration`, `step`,
/// its `Drop`). A task whose env panics, or that the source fails to give
/// ([`toolgym_env::try_get`]), is left out; at a time-out the
/// corpus ends there (each later task could wait as long). Both are said
/// on stderr.
pub fn demonstration_corpus(
    factory: &Arc<dyn DynEnvFactory>,
    source: &dyn TaskSource,
    n: usize,
    timeout: Option<Duration>,
) -> Vec<String> {
    let mut corpus = Vec::new();
    let (mut failed, mut first_failure) = (0, None);
    for i in 0..n as u64 {
        let task = match toolgym_env::try_get(source, i) {
            Ok(Some(task)) => task,
            Ok(None) => break,
            Err(failure) => {
                failed += 1;
                first_failure.get_or_insert_with(|| failure.to_string());
                continue;
            }
        };
        let what = format!("a call in the demonstration episode of task {}", task.id);
        match corpus_episode(factory, task, i, timeout) {
            Ok(text) => corpus.push(text),
            Err(failure @ CallFailure::TimedOut(_)) => {
                eprintln!(
                    "{}; the built-in tokenizer learns from the {} episode(s) before it",
                    failure.describe(&what),
                    corpus.len()
                );
                break;
            }
            Err(failure) => {
                failed += 1;
                first_failure.get_or_insert_with(|| failure.describe(&what));
            }
        }
    }
    if let Some(first) = first_failure {
        eprintln!(
            "{failed} task(s) left out of the built-in tokenizer's corpus, their env or the \
             task source failed; the first: {first}"
        );
    }
    corpus
}

/// One episode of [`demonstration_corpus`]: its last prompt.
fn corpus_episode(
    factory: &Arc<dyn DynEnvFactory>,
    task: Arc<Task>,
    seed: u64,
    timeout: Option<Duration>,
) -> Result<String, CallFailure> {
    let mut held = HeldEnv {
        env: Some(make_env(factory, task, timeout)?),
        timeout,
    };
    let transcript = (|| {
        let mut text = held.call(move |e| e.reset(Some(seed)).prompt)?;
        for _ in 0..64 {
            let Some(reply) = held.call(|e| e.demonstration())? else {
                break;
            };
            let step = held.call(move |e| e.step(&reply))?;
            let done = step.done();
            text = step.observation.prompt;
            if done {
                break;
            }
        }
        Ok(text)
    })();
    let dropped = held.env.take().is_none_or(|env| drop_quietly(env, timeout));
    if !dropped {
        return Err(CallFailure::TimedOut(timeout.unwrap_or_default()));
    }
    transcript
}

/// An env handed to each call ([`call_env`]) and taken back: `None` once
/// a call was given up on (the env went with it).
struct HeldEnv {
    env: Option<Box<dyn ToolEnv>>,
    timeout: Option<Duration>,
}

impl HeldEnv {
    fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut dyn ToolEnv) -> T + Send + 'static,
    ) -> Result<T, CallFailure> {
        let env = self
            .env
            .take()
            .expect("no call after one that was given up on");
        let (back, answer) = call_env(env, self.timeout, f);
        self.env = back;
        answer
    }
}

/// Builds the policy: the configured model directory, or the built-in tiny
/// Qwen2 whose tokenizer is trained on the setup's corpus.
pub fn build_policy(cfg: &TrainConfig, setup: &TaskSetup) -> Result<Policy, TrainError> {
    let builtin = &cfg.model.builtin;
    let device = parse_device(&cfg.model.device)?;
    let dtype = parse_dtype(&cfg.model.dtype)?;
    match &cfg.model.path {
        Some(dir) => Policy::load(dir, dtype, &device),
        None => {
            let corpus = match &setup.tokenizer_corpus {
                Some(c) => c.clone(),
                None => {
                    // No limit when either phase has none (a run that must
                    // repeat bit for bit); else the longer of the two.
                    let timeout = cfg
                        .grpo
                        .rollout_limits()
                        .env_timeout
                        .zip(cfg.sft.env_timeout())
                        .map(|(a, b)| a.max(b));
                    // Episodes outside training order: the factory's state
                    // (a curriculum's level, say) is given back as it was.
                    crate::phase::keeping_factory_state(
                        &setup.factory,
                        timeout,
                        "the built-in tokenizer's corpus",
                        || {
                            demonstration_corpus(
                                &setup.factory,
                                setup.train.as_ref(),
                                4000,
                                timeout,
                            )
                        },
                    )?
                }
            };
            if corpus.is_empty() {
                return Err(TrainError::Data(
                    "no text to train the built-in tokenizer on: the training source has no \
                     tasks, or every env failed (see above)"
                        .into(),
                ));
            }
            Policy::builtin(&corpus, builtin, dtype, &device)
        }
    }
}

/// Saves the run's final model as `out/final`, whole or not at all: it
/// is written beside it and swapped in by renames (a full disk or a kill
/// while it is written leaves the earlier `final/` as it was; the
/// half-written copy is replaced by the next save, and an earlier model a
/// kill left between the renames is put back first). A `final` that is a
/// symbolic link (to a shared folder, say) is swapped where it points.
fn save_final(policy: &Policy, out: &std::path::Path) -> Result<(), TrainError> {
    let mut dir = out.join("final");
    if dir.is_symlink() {
        dir = std::fs::canonicalize(&dir).map_err(|e| TrainError::io("resolve", &dir, e))?;
    }
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("final");
    let (tmp, old) = (
        dir.with_file_name(format!(".{name}.tmp")),
        dir.with_file_name(format!(".{name}.old")),
    );
    if !dir.exists() && old.exists() {
        std::fs::rename(&old, &dir).map_err(|e| TrainError::io("rename", &old, e))?;
    }
    for leftover in [&tmp, &old] {
        if leftover.exists() {
            std::fs::remove_dir_all(leftover).map_err(|e| TrainError::io("remove", leftover, e))?;
        }
    }
    policy.save(&tmp)?;
    // Durable before it is swapped in, as a checkpoint is.
    crate::checkpoint::sync_files(&tmp)?;
    if dir.exists() {
        std::fs::rename(&dir, &old).map_err(|e| TrainError::io("rename", &dir, e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| TrainError::io("rename", &tmp, e))?;
    crate::checkpoint::sync_parent(&dir)?;
    // The new model is in place: a copy that will not go is said, and
    // goes at the next save.
    if old.exists() {
        if let Err(e) = std::fs::remove_dir_all(&old) {
            eprintln!(
                "warning: could not remove the earlier final model {}: {e}",
                old.display()
            );
        }
    }
    Ok(())
}

/// Starting SFT over (`run.resume = false`) in a directory where GRPO
/// started from the earlier SFT result: that GRPO phase (its directory and
/// its metrics lines) goes once the new
/// SFT phase has opened (and removed the earlier SFT checkpoints), else a
/// later run stopped before its own GRPO would resume it on top of the new
/// SFT.
fn drop_grpo_built_on_old_sft(cfg: &TrainConfig) -> Result<(), TrainError> {
    let root = cfg.run.out_dir.join("grpo");
    if root.is_dir() {
        eprintln!(
            "sft: starting over: removing the GRPO phase that started from the earlier run's SFT \
             result ({}: its checkpoints, KL reference and metrics lines)",
            root.display()
        );
        std::fs::remove_dir_all(&root).map_err(|e| TrainError::io("remove", &root, e))?;
        crate::metrics::forget_phase_lines(&cfg.run.out_dir, "grpo", None)?;
    }
    Ok(())
}

/// The built-in model of a run being resumed, as its newest readable
/// checkpoint (GRPO's, else SFT's) holds it, tokenizer included; `None`
/// for a model directory (`model.path`), a fresh run, or no readable
/// checkpoint. Not rebuilt: its tokenizer was trained on a corpus of env
/// episodes, which costs those episodes again and may come out otherwise
/// (an env that timed out then, replies that depend on the clock), and a
/// rebuilt model of another vocabulary would refuse the run's own
/// checkpoints. The phase still loads and checks its checkpoint itself.
fn resumed_builtin(cfg: &TrainConfig, resuming: bool) -> Result<Option<Policy>, TrainError> {
    if cfg.model.path.is_some() || !resuming {
        return Ok(None);
    }
    let device = parse_device(&cfg.model.device)?;
    let dtype = parse_dtype(&cfg.model.dtype)?;
    for phase in ["grpo", "sft"] {
        let dir = cfg.run.out_dir.join(phase);
        let mut candidates = crate::checkpoint::all(&dir)?; // newest first
        if let Some(named) = crate::checkpoint::latest_named(&dir)? {
            candidates.insert(0, named);
        }
        // Checked as the phase checks it: a tokenizer whose bytes changed
        // may still parse, and would filter the tasks otherwise than the
        // checkpoint the phase then resumes from.
        if let Some(policy) = candidates.iter().find_map(|c| {
            crate::checkpoint::verify_checksums(c).ok()?;
            Policy::load(c, dtype, &device).ok()
        }) {
            // A checkpoint of another shape than `model.builtin` says (a
            // changed config resumed with --force, another run's phase
            // left in the directory) is not taken: the model built from
            // the config then refuses it by shape, as before.
            return Ok(fits_builtin(policy.model.config(), &cfg.model.builtin).then_some(policy));
        }
    }
    Ok(None)
}

/// Whether a checkpointed model has the shape `b` describes (its
/// vocabulary is the tokenizer's, at least `padded_vocab_size`). Without a
/// `head_dim`, `hidden_size / heads`, or 32: every built-in model had
/// 32-wide heads before 2026-12-06, and its runs resume.
fn fits_builtin(c: &toolgym_model::Qwen2Config, b: &crate::BuiltinPolicy) -> bool {
    let head_dim = c.head_dim == b.head_width() || (b.head_dim.is_none() && c.head_dim == 32);
    head_dim
        && (c.hidden_size, c.intermediate_size, c.num_hidden_layers)
            == (b.hidden_size, b.intermediate_size, b.layers)
        && (c.num_attention_heads, c.num_key_value_heads) == (b.heads, b.kv_heads)
        && c.vocab_size >= b.padded_vocab_size
}

/// Runs the phases on the config's tasks ([`task_setup`]); `on_step` sees
/// every step's metrics.
pub fn run(
    cfg: &TrainConfig,
    phases: Phases,
    on_step: impl FnMut(&StepMetrics),
) -> Result<PipelineReport, TrainError> {
    for unused in cfg.unused_settings() {
        eprintln!("warning: {unused}");
    }
    run_phases(cfg, task_setup(cfg)?, phases, on_step)
}

/// Runs the phases on any environments and tasks: SFT on their
/// demonstrations, then GRPO, resuming whatever a previous invocation left
/// in `run.out_dir`; the final policy goes to `run.out_dir/final`. The
/// resolved config is recorded in `run.out_dir/config.toml` once the first
/// phase has opened, and a resumed run whose config differs in more than
/// bookkeeping is refused before anything is done (see
/// [`TrainConfig::check_recorded`]).
///
/// The setup decides the tasks, their prompt template and the reward:
/// the config's `data.*` and `grpo.reward_rule`, which [`run`] builds its
/// own setup from, are not read, and a warning names each one set
/// ([`TrainConfig::settings_a_task_setup_replaces`]).
pub fn run_with(
    cfg: &TrainConfig,
    setup: TaskSetup,
    phases: Phases,
    on_step: impl FnMut(&StepMetrics),
) -> Result<PipelineReport, TrainError> {
    for unused in cfg.settings_a_task_setup_replaces() {
        eprintln!("warning: {unused}");
    }
    run_phases(cfg, setup, phases, on_step)
}

/// The file in `RUN_DIR/grpo/` that says what the GRPO phase begun
/// there started from ([`START_MODEL`] or [`START_SFT`]).
fn grpo_start_file(cfg: &TrainConfig) -> std::path::PathBuf {
    cfg.run.out_dir.join("grpo").join("started_from")
}

/// GRPO began from the configured model.
const START_MODEL: &str = "model";
/// GRPO began from the SFT phase's result.
const START_SFT: &str = "sft";

/// What the GRPO phase begun in the run directory started from, if it
/// says ([`grpo_start_file`]).
fn grpo_start_of(cfg: &TrainConfig) -> Option<String> {
    std::fs::read_to_string(grpo_start_file(cfg))
        .ok()
        .map(|s| s.trim().to_string())
}

/// [`run_with`] without its warning ([`run`] builds the setup from the
/// config).
fn run_phases(
    cfg: &TrainConfig,
    setup: TaskSetup,
    phases: Phases,
    mut on_step: impl FnMut(&StepMetrics),
) -> Result<PipelineReport, TrainError> {
    cfg.validate()?;
    // One run per directory at a time, held to the end of the run.
    let _lock = crate::run_lock::RunLock::acquire(&cfg.run.out_dir)?;
    // GRPO has started here, and this run goes on from it (a run that
    // starts over, `run.resume = false`, redoes every phase).
    let grpo_started = cfg.run.resume && crate::checkpoint::exists(&cfg.run.out_dir.join("grpo"));
    // A phase of no steps would save the policy it started from (for SFT
    // on the built-in model, random weights) as the run's final one. (SFT
    // does not run again once GRPO has started from it.)
    let runs_sft = phases == Phases::Sft || (phases == Phases::SftThenGrpo && !grpo_started);
    let runs_grpo = matches!(phases, Phases::Grpo | Phases::SftThenGrpo);
    if runs_sft && cfg.sft.steps == 0 {
        return Err(TrainError::Config(
            "sft.steps is 0: the SFT phase would train nothing (run `train grpo` to skip it)"
                .into(),
        ));
    }
    if runs_grpo && cfg.grpo.steps == Some(0) {
        return Err(TrainError::Config(
            "grpo.steps is 0: the GRPO phase would train nothing (run `train sft` to skip it)"
                .into(),
        ));
    }
    let sft_started = crate::checkpoint::exists(&cfg.run.out_dir.join("sft"));
    // A GRPO phase begun here from the configured model (run.resume=false
    // beside a finished SFT phase) that stopped before its first
    // checkpoint goes on as it began, not from the SFT result.
    let began_from_model = phases == Phases::Grpo
        && !grpo_started
        && sft_started
        && cfg.run.resume
        && grpo_start_of(cfg).as_deref() == Some(START_MODEL);
    if began_from_model {
        eprintln!(
            "grpo: the GRPO phase begun in {} from the configured model (run.resume=false) \
             stopped before its first checkpoint: starting it again from that model, not from \
             the SFT phase (remove that directory to start GRPO from the SFT result)",
            cfg.run.out_dir.join("grpo").display()
        );
    }
    if phases == Phases::Sft && grpo_started {
        let what = match sft_started {
            true => "a GRPO phase that started from its SFT result: SFT is done there",
            false => "a GRPO phase that started from the model itself (no SFT phase ran there)",
        };
        return Err(TrainError::Config(format!(
            "{} holds {what} (start over with run.resume=false, or use another run directory)",
            cfg.run.out_dir.display()
        )));
    }
    let resuming = cfg.run.resume && (grpo_started || sft_started);
    // Until GRPO has started, its own settings may change: they cannot
    // have changed the SFT phase recorded here; nor can SFT's where no SFT
    // phase ran (GRPO straight from the model).
    let free: &[&str] = match (grpo_started, sft_started) {
        (false, _) => &["grpo."],
        (true, false) => &["sft."],
        (true, true) => &[],
    };
    // A phase to train that has checkpoints here goes on from them.
    cfg.check_record_exists((runs_sft && sft_started) || (runs_grpo && grpo_started))?;
    cfg.check_recorded_for(resuming, free)?;
    let mut phase_steps = Vec::new();
    if runs_sft {
        phase_steps.push(("sft", cfg.sft.steps, &cfg.sft.optim));
    }
    if matches!(phases, Phases::Grpo | Phases::SftThenGrpo) {
        // Before any work: a GRPO phase needs a step count.
        let steps = cfg.grpo.total_steps(setup.train.len())?;
        let g = &cfg.grpo;
        // Warm-up counts optimiser steps, or rollout steps in verl's style.
        let counted = match g.optim.warmup_style {
            crate::WarmupStyle::Verl => steps,
            crate::WarmupStyle::Linear => steps
                .saturating_mul(g.epochs)
                .saturating_mul(g.prompts_per_step.div_ceil(g.mini_batch_prompts.max(1))),
        };
        phase_steps.push(("grpo", counted, &g.optim));
    }
    for (phase, steps, optim) in phase_steps {
        // Linear warm-up's step k of n runs at lr·(k+1)/n: the last of n
        // steps reaches lr; verl's style, k/n, does not.
        let reached = match optim.warmup_style {
            crate::WarmupStyle::Linear => optim.warmup_steps <= steps,
            crate::WarmupStyle::Verl => optim.warmup_steps < steps,
        };
        if !reached && optim.warmup_steps > 0 {
            eprintln!(
                "warning: {phase}.optim.warmup_steps = {} is more than the {steps} steps the \
                 phase's warm-up counts at most: the learning rate never reaches \
                 {phase}.optim.lr",
                optim.warmup_steps
            );
        }
    }
    let mut policy = match resumed_builtin(cfg, resuming && !began_from_model)? {
        Some(p) => p,
        None => build_policy(cfg, &setup)?,
    };
    let mut report = PipelineReport::default();
    // The config is recorded once the first phase has opened (and loaded
    // its checkpoint when resuming): a resume that fails, `--force` or not,
    // leaves the recorded config as it was.
    let mut recorded = false;
    let open_sft = |policy| {
        SftTrainer::new(
            policy,
            setup.factory.clone(),
            setup.train.clone(),
            setup.validation.clone(),
            cfg.sft.clone(),
            cfg.run.clone(),
        )
    };
    if matches!(phases, Phases::Sft | Phases::SftThenGrpo) && !grpo_started {
        // SFT validates with GRPO's limits, and its last validation is
        // GRPO's "before": on the tasks GRPO validates on.
        let (validation, _) = crate::prompt_filter::drop_overlong_validation(
            &policy,
            &setup.factory,
            &setup.validation,
            &cfg.grpo,
            "sft",
            cfg.run.eval_tasks,
        )?;
        let mut sft = SftTrainer::new(
            policy,
            setup.factory.clone(),
            setup.train.clone(),
            validation,
            cfg.sft.clone(),
            cfg.run.clone(),
        )?;
        if !cfg.run.resume {
            drop_grpo_built_on_old_sft(cfg)?;
        }
        cfg.write_record()?;
        recorded = true;
        sft.set_eval_limits(cfg.grpo.rollout_limits());
        report.after_sft = sft.run(&mut on_step)?;
        if report.after_sft.is_none() {
            report.after_sft = sft.validate()?;
        }
        policy = sft.into_policy();
    }
    if phases == Phases::Grpo && sft_started && !cfg.run.resume {
        eprintln!(
            "grpo: starting over from the configured model (run.resume=false): the SFT phase in \
             {} is not used (leave run.resume on to start GRPO from it)",
            cfg.run.out_dir.join("sft").display()
        );
    }
    let from_sft = phases == Phases::SftThenGrpo
        || (phases == Phases::Grpo && sft_started && cfg.run.resume && !began_from_model);
    if phases == Phases::Grpo && !grpo_started && from_sft {
        // `train sft` then `train grpo` in one run directory: GRPO starts
        // from the SFT result, as `train all` would, not from scratch.
        let sft = open_sft(policy).map_err(|e| {
            TrainError::Checkpoint(format!(
                "loading the finished SFT phase to start GRPO from it: {e}"
            ))
        })?;
        if sft.step_count() < cfg.sft.steps {
            return Err(TrainError::Config(format!(
                "{} holds an unfinished SFT phase (step {} of {}): finish it (toolgym train sft) \
                 before GRPO starts from it, or start GRPO over from the base model \
                 (run.resume=false)",
                cfg.run.out_dir.display(),
                sft.step_count(),
                cfg.sft.steps
            )));
        }
        eprintln!(
            "grpo: starting from the SFT phase's final checkpoint (step {}) in {}",
            sft.step_count(),
            cfg.run.out_dir.join("sft").display()
        );
        cfg.write_record()?;
        recorded = true;
        policy = sft.into_policy();
    }
    if matches!(phases, Phases::Grpo | Phases::SftThenGrpo) {
        let mut grpo = GrpoTrainer::new(
            policy,
            setup.factory.clone(),
            setup.train.clone(),
            setup.validation.clone(),
            cfg.grpo.clone(),
            cfg.run.clone(),
        )?;
        if !recorded {
            cfg.write_record()?;
        }
        if grpo.step_count() == 0 {
            // What this GRPO phase starts from, for a run that stops
            // before its first checkpoint and is run again: said where a
            // finished SFT phase was there to start from and was not used
            // (run.resume=false); otherwise a marker of an earlier run goes
            // (an SFT phase run since is to be started from).
            let start = match (from_sft, sft_started) {
                (true, _) => Some(START_SFT),
                (false, true) => Some(START_MODEL),
                (false, false) => None,
            };
            let file = grpo_start_file(cfg);
            match start {
                Some(start) => {
                    if let Some(dir) = file.parent() {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| TrainError::io("create", dir, e))?;
                    }
                    crate::checkpoint::write_atomically(&file, start.as_bytes())?;
                }
                None => match std::fs::remove_file(&file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(TrainError::io("remove", &file, e))
                    }
                    _ => {}
                },
            }
        }
        report.grpo_resumed_at = grpo.step_count();
        if let Some(r) = &report.after_sft {
            if grpo.step_count() == 0 {
                grpo.set_baseline(r.clone());
            }
        }
        let summary = grpo.run(&mut on_step)?;
        report.before_grpo = summary.before;
        report.after_grpo = summary.after;
        save_final(grpo.policy(), &cfg.run.out_dir)?;
    } else {
        save_final(&policy, &cfg.run.out_dir)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use toolgym_env::{Message, Task};

    #[test]
    fn a_task_file_skips_lines_that_are_not_tasks_and_reads_on() {
        let path = std::env::temp_dir().join(format!(
            "toolgym-pipeline-tasks-{}.jsonl",
            std::process::id()
        ));
        let task = |id: &str| {
            serde_json::to_string(&Task::new(
                id,
                "t",
                vec![],
                vec![Message::user("q")],
                vec![],
            ))
            .unwrap()
        };
        let body = [
            task("a"),
            "not json".into(),
            String::new(),
            task("b"),
            "{\"id\": 3}".into(),
        ]
        .join("\n");
        std::fs::write(&path, body).unwrap();
        let data = super::read_task_file(&path).unwrap();
        let ids: Vec<&str> = data.tasks().iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        // Bad lines and no task: the wrong file, an error.
        std::fs::write(&path, "[{\"id\": 1},\n{\"id\": 2}]\n").unwrap();
        let e = super::read_task_file(&path).err().unwrap().to_string();
        std::fs::remove_file(&path).ok();
        assert!(
            e.contains("none of its 2 non-blank line(s) is a task"),
            "{e}"
        );
    }
}
