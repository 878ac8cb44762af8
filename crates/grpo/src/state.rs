//! What a checkpoint must hold beyond the weights so that a resumed run
//! continues exactly as an uninterrupted one: the step, the data position
//! and the seed (every random draw is derived from `(seed, step, index)`),
//! plus the optimiser moments.

use crate::checkpoint;
use crate::{AdamW, Policy, TrainError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use toolgym_model::candle_core::{DType, Tensor};

/// Trainer state saved in `trainer_state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// `sft` or `grpo`.
    pub phase: String,
    /// Completed steps.
    pub step: usize,
    /// Tasks drawn from the training sampler so far.
    pub data_position: u64,
    /// The run's seed.
    pub seed: u64,
    /// Optimiser steps taken (drives the learning-rate schedule).
    pub optimizer_steps: usize,
    /// Optimiser updates applied (Adam's bias correction): fewer than
    /// `optimizer_steps` when a non-finite gradient skipped one, or a
    /// planned step had nothing to train on (`AdamW::pass_step`). Absent
    /// in checkpoints of older builds, which counted every step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer_updates: Option<usize>,
    /// Whether the phase ran to its last step.
    pub finished: bool,
    /// What the env factory saved ([`toolgym_env::env::EnvFactory::checkpoint_state`]);
    /// absent for a stateless factory (and in checkpoints of older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_state: Option<serde_json::Value>,
    /// Which training tasks the run draws from (of a finite source; after
    /// GRPO's first-prompt filter): their count, a hash of their ids in
    /// order and one of their content. Absent for an endless source (and
    /// in checkpoints of older builds, which recorded neither SFT's tasks
    /// nor their content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_tasks: Option<String>,
    /// GRPO steps in a row, up to this one, with no model token to train
    /// on (the run stops after a few; 0, and absent, otherwise).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub empty_steps: usize,
    /// GRPO steps in a row, up to this one, in which envs failed at least
    /// `grpo.stop_at_env_failure_share` of the episodes (the run stops
    /// after a few; 0, and absent, otherwise).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub env_failure_steps: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Saves policy, optimiser and state as one atomic checkpoint under
/// `phase_dir/checkpoints/`.
pub fn save_checkpoint(
    phase_dir: &Path,
    policy: &Policy,
    optimizer: &AdamW,
    state: &TrainerState,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    checkpoint::save(
        phase_dir,
        state.step,
        |dir| policy.save(dir),
        &optimizer.state_tensors(),
        state,
        keep,
    )
}

/// Loads the newest checkpoint of a phase, if any: the policy (as the same
/// dtype/device), the optimiser moments into `optimizer`, and the state.
///
/// Without `latest` (a run killed while naming its first checkpoint), the
/// newest step directory is the newest checkpoint, with a warning.
///
/// What it reads is checked: a missing, truncated or corrupt file, or
/// `latest` naming nothing, is an error naming the file. With `fallback`
/// (`run.resume_fallback`), the newest other checkpoint that loads is used
/// instead, with a warning on stderr: resuming from it is as exact as from
/// the newest (every random draw derives from the seed and the step), it
/// only repeats steps. A checkpoint that loads but does not fit the run
/// (another phase, tensors of other shapes) is always an error: an older
/// one would not fit either.
pub fn load_checkpoint(
    phase_dir: &Path,
    like: &Policy,
    optimizer: &mut AdamW,
    phase: &str,
    fallback: bool,
) -> Result<Option<(Policy, TrainerState)>, TrainError> {
    let (newest, named) = match checkpoint::latest_named(phase_dir)? {
        Some(dir) => (dir, true),
        // Step directories but no `latest` (a run killed between renaming
        // its first checkpoint into place and naming it): a step directory
        // is complete once it has its name, and is checked as it loads.
        None => match checkpoint::all(phase_dir)?.into_iter().next() {
            Some(dir) => (dir, false),
            None => return Ok(None),
        },
    };
    let want = shapes(like);
    let mut resume = |(policy, state, moments): Loaded| {
        let applied = state.optimizer_updates.unwrap_or(state.optimizer_steps);
        optimizer.load_state(moments, state.optimizer_steps, applied);
        Ok(Some((policy, state)))
    };
    let problem = match load_dir(&newest, like, &want, phase) {
        Ok(loaded) => {
            if !named {
                eprintln!(
                    "warning: {} has no `{}` naming a step directory; resuming from its newest \
                     checkpoint, {}",
                    checkpoint::checkpoints_dir(phase_dir).display(),
                    checkpoint::LATEST,
                    newest.display()
                );
            }
            return resume(loaded);
        }
        Err(LoadError::Incompatible(m)) => return Err(TrainError::Checkpoint(m)),
        Err(LoadError::Unloadable(m)) => return Err(unloadable(m)),
        Err(LoadError::Corrupt(m)) => m,
    };
    // The other checkpoints: older ones first, newest first; then later
    // ones (`latest` naming a checkpoint removed since, beside later
    // complete ones), which may hold another branch of the run (one that
    // resumed from an older checkpoint under --force), so only when no
    // older one loads.
    let newest_step = checkpoint::step_of(&newest);
    let (older, later): (Vec<PathBuf>, Vec<PathBuf>) = checkpoint::all(phase_dir)?
        .into_iter()
        .filter(|d| *d != newest)
        .partition(|d| match (checkpoint::step_of(d), newest_step) {
            (Some(a), Some(b)) => a < b,
            _ => true,
        });
    let others: Vec<PathBuf> = older.into_iter().chain(later).collect();
    if !fallback {
        let hint = others
            .first()
            .map(|d| {
                format!(
                    "; set run.resume_fallback=true to resume from {} instead",
                    d.display()
                )
            })
            .unwrap_or_default();
        return Err(TrainError::Checkpoint(format!(
            "cannot resume: {problem}{hint}"
        )));
    }
    let mut failures = Vec::new();
    for dir in &others {
        match load_dir(dir, like, &want, phase) {
            Ok(loaded) => {
                eprintln!(
                    "warning: {problem}; resuming from the checkpoint {} instead",
                    dir.display()
                );
                return resume(loaded);
            }
            Err(LoadError::Incompatible(m)) => return Err(TrainError::Checkpoint(m)),
            Err(LoadError::Unloadable(m)) => return Err(unloadable(m)),
            Err(LoadError::Corrupt(m)) => failures.push(m),
        }
    }
    let others_text = if failures.is_empty() {
        "no other checkpoint exists".to_string()
    } else {
        format!("no other checkpoint loads either ({})", failures.join("; "))
    };
    Err(TrainError::Checkpoint(format!(
        "cannot resume: {problem}; {others_text}"
    )))
}

/// The error of a checkpoint whose files are intact but did not load.
fn unloadable(m: String) -> TrainError {
    TrainError::Checkpoint(format!(
        "cannot resume: {m} (the checkpoint's files are as written, their checksums match: \
         fix the cause and run again)"
    ))
}

/// Why a checkpoint cannot be resumed from.
enum LoadError {
    /// A file is missing, truncated or corrupt: another checkpoint may do.
    Corrupt(String),
    /// It loads but does not fit this run.
    Incompatible(String),
    /// Its files are as they were written (their checksums match), yet it
    /// did not load: the machine's doing (memory, open files), not the
    /// checkpoint's, so no other checkpoint is tried in its place (that
    /// would redo steps without need). A file that cannot be read for its
    /// checksum (a permission) is still taken for damage.
    Unloadable(String),
}

type Loaded = (Policy, TrainerState, HashMap<String, Tensor>);

/// Each parameter's shape, by name (none for a frozen model).
fn shapes(p: &Policy) -> HashMap<String, Vec<usize>> {
    p.model
        .named_vars()
        .map(|vars| {
            vars.into_iter()
                .map(|(n, v)| (n, v.as_tensor().dims().to_vec()))
                .collect()
        })
        .unwrap_or_default()
}

/// Loads one checkpoint directory and checks it against the run's model
/// (`like`, whose parameter shapes are `want`).
fn load_dir(
    dir: &Path,
    like: &Policy,
    want: &HashMap<String, Vec<usize>>,
    phase: &str,
) -> Result<Loaded, LoadError> {
    let state_path = dir.join(checkpoint::STATE_FILE);
    if !dir.exists() {
        return Err(LoadError::Corrupt(format!(
            "{} does not exist (removed since it was named)",
            dir.display()
        )));
    }
    if !state_path.is_file() {
        return Err(LoadError::Corrupt(format!(
            "{} is not a complete checkpoint (no {})",
            dir.display(),
            checkpoint::STATE_FILE
        )));
    }
    // Checked first: files that read as well-formed may still hold
    // changed bytes, and a changed name (a phase, a tensor's) would read
    // as another run's checkpoint, which the fallback does not pass over.
    let checksummed = dir.join(checkpoint::CHECKSUMS_FILE).is_file();
    if !checksummed {
        // Builds that record `optimizer_updates` record checksums too: a
        // checkpoint with the one and not the other lost a file since (a
        // removal cut short), and its other files may be gone as well.
        if let Ok(TrainerState {
            optimizer_updates: Some(_),
            ..
        }) = checkpoint::load_state(dir)
        {
            return Err(LoadError::Corrupt(format!(
                "{} has no {}, which the build that wrote it records: a file was removed since \
                 (an interrupted removal?)",
                dir.display(),
                checkpoint::CHECKSUMS_FILE
            )));
        }
    }
    checkpoint::verify_checksums(dir).map_err(LoadError::Corrupt)?;
    // From here on, a failure with every file's bytes checked is not the
    // checkpoint's.
    let failed = |m: String| {
        if checksummed {
            LoadError::Unloadable(m)
        } else {
            LoadError::Corrupt(m)
        }
    };
    let state: TrainerState = checkpoint::load_state(dir).map_err(|e| failed(e.to_string()))?;
    if state.phase != phase {
        return Err(LoadError::Incompatible(format!(
            "{}: a checkpoint of phase {:?}, not {phase:?}",
            state_path.display(),
            state.phase
        )));
    }
    let device = like.model.device().clone();
    let dtype: DType = like.model.dtype();
    let mut policy = Policy::load(dir, dtype, &device)
        .map_err(|e| failed(format!("{}: the model: {e}", dir.display())))?;
    policy.keep_source_defaults(like);
    let got = shapes(&policy);
    let model_file = dir.join("model.safetensors");
    for (name, dims) in want {
        match got.get(name) {
            Some(d) if d == dims => {}
            Some(d) => {
                return Err(LoadError::Incompatible(format!(
                    "{}: tensor {name} has shape {d:?}, this run's model has {dims:?}",
                    model_file.display()
                )))
            }
            None => {
                return Err(LoadError::Incompatible(format!(
                    "{}: no tensor {name}, which this run's model has",
                    model_file.display()
                )))
            }
        }
    }
    // And none the run's model lacks (more layers, an untied lm_head):
    // said here, of the model file, not later of the optimiser's moments.
    if let Some(extra) = got.keys().filter(|name| !want.contains_key(*name)).min() {
        return Err(LoadError::Incompatible(format!(
            "{}: tensor {extra}, which this run's model does not have",
            model_file.display()
        )));
    }
    let moments = checkpoint::load_optimizer(dir, &device).map_err(|e| failed(e.to_string()))?;
    let optimizer_file = dir.join(checkpoint::OPTIMIZER_FILE);
    for (key, tensor) in &moments {
        let name = key.split_once('.').map(|(_, n)| n).unwrap_or(key);
        let fits = want
            .get(name)
            .is_some_and(|d| d.as_slice() == tensor.dims());
        if !want.is_empty() && !fits {
            return Err(LoadError::Incompatible(format!(
                "{}: optimiser state {key} (shape {:?}) fits no parameter of this run's model",
                optimizer_file.display(),
                tensor.dims()
            )));
        }
    }
    Ok((policy, state, moments))
}

/// Whether a periodic action (validation, checkpoint) is due after `step`:
/// every `every` steps (0 = never periodically) and always after the last.
pub fn due(step: usize, every: usize, last: bool) -> bool {
    last || (every > 0 && step.is_multiple_of(every))
}
