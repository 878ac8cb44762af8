//! # toolgym-grpo
//!
//! GRPO (the paper's Eq. 3–4, as in its released verl configuration) and SFT
//! for tool-calling policies:
//!
//! - [`rollout`]: the rollout engine, which drives any `ToolEnv` (single-
//!   or multi-turn) in lockstep and records token-level trajectories with a
//!   train mask;
//! - [`advantage`]: group-relative advantages;
//! - [`loss`]: the clipped surrogate, the k3 KL to the reference, entropy,
//!   token- or sequence-mean aggregation;
//! - [`optim`]: AdamW with savable state, clipping, warm-up and schedules;
//! - [`GrpoTrainer`] / [`SftTrainer`]: the training loops, with atomic
//!   [`checkpoint`]s that resume exactly, [`metrics`] as JSONL and
//!   [`plot`]s of them;
//! - [`config`]: one TOML file whose defaults are the paper's.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod advantage;
mod batching;
pub mod checkpoint;
pub mod config;
mod error;
mod evaluate;
pub mod loss;
pub mod metrics;
pub mod optim;
mod phase;
pub mod pipeline;
pub mod plot;
mod policy;
pub mod prompt_filter;
pub mod rollout;
pub mod run_lock;
mod sft;
mod state;
mod trainer;

pub use advantage::{batch_advantages, batch_advantages_leaving_out, group_advantages};
pub use batching::Sequence;
pub use config::{
    DataSection, GrpoConfig, ModelSection, RunSection, SftConfig, SyntheticSection, TrainConfig,
};
pub use error::TrainError;
pub use evaluate::{evaluate, EvalReport, Sampled};
pub use loss::{
    aggregation_weights, low_var_kl, policy_loss, LossAgg, LossCoefs, LossInputs, LossOutput,
};
pub use metrics::StepMetrics;
pub use optim::{AdamW, GradAccumulator, OptimConfig, Schedule, StepStats, WarmupStyle};
pub use pipeline::{Phases, PipelineReport};
pub use policy::{parse_device, parse_dtype, BuiltinPolicy, Policy};
pub use rollout::{EpisodeReward, RolloutLimits, Trajectory};
pub use sft::SftTrainer;
pub use state::TrainerState;
pub use toolgym_model::runtime::configure_cpu;
pub use trainer::{GrpoTrainer, RunSummary};
