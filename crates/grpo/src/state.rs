//! What a checkpoint must hold beyond the weights so that a resumed run
//! continues exactly as an uninterrupted one: the step, the data position
//! and the seed (every random draw is derived from `(seed, step, index)`),
//! plus the optimiser moments.

use crate::checkpoint;
use crate::{AdamW, Policy, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toolgym_model::candle_core::DType;

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
    /// Whether the phase ran to its last step.
    pub finished: bool,
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
pub fn load_checkpoint(
    phase_dir: &Path,
    like: &Policy,
    optimizer: &mut AdamW,
) -> Result<Option<(Policy, TrainerState)>, TrainError> {
    let Some(dir) = checkpoint::latest(phase_dir)? else {
        return Ok(None);
    };
    let state: TrainerState = checkpoint::load_state(&dir)?;
    let device = like.model.device().clone();
    let dtype: DType = like.model.dtype();
    let policy = Policy::load(&dir, dtype, &device)?;
    let moments = checkpoint::load_optimizer(&dir, &device)?;
    optimizer.load_state(moments, state.optimizer_steps);
    Ok(Some((policy, state)))
}

/// Whether a periodic action (validation, checkpoint) is due after `step`:
/// every `every` steps (0 = never periodically) and always after the last.
pub fn due(step: usize, every: usize, last: bool) -> bool {
    last || (every > 0 && step.is_multiple_of(every))
}
