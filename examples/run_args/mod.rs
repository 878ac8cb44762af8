//! Command-line options shared by the training examples (`train_qwen`,
//! `train_custom_env`): seed, overrides and run directory.

use clap::Args;
use std::path::Path;
use std::path::PathBuf;
use toolgym::grpo::{TrainConfig, TrainError};

/// Seed, config overrides and run directory of a training example.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Seed of everything: the environment and its held-out tasks, the
    /// built-in model's initialisation, task order and sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Overrides, e.g. `--set grpo.steps=10`.
    #[arg(long = "set")]
    pub overrides: Vec<String>,
    /// Run directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start over instead of resuming from checkpoints in the run directory
    /// (`run.resume=false`: each phase replaces the earlier run's
    /// checkpoints and metrics as it starts; nothing else is removed).
    #[arg(long)]
    pub fresh: bool,
    /// Resume even though the run directory was started with other settings.
    #[arg(long)]
    pub force: bool,
}

impl RunArgs {
    /// The run directory: `--out`, else `default`.
    pub fn out_dir(&self, default: impl Into<PathBuf>) -> PathBuf {
        self.out.clone().unwrap_or_else(|| default.into())
    }

    /// The overrides that go after the example's own settings: the seed
    /// (`run.seed`, and `model.builtin.seed` when the model is the built-in
    /// one), the run directory, `--fresh`, `--force`, then the user's
    /// `--set`s, which may override the example's settings but may not set
    /// one key twice, nor a key a flag sets (`--seed` sets `run.seed`
    /// always, and `model.builtin.seed` for the built-in model; `--out`,
    /// `--fresh` and `--force` theirs when given).
    pub fn overrides(&self, out: &Path, builtin_model: bool) -> Result<Vec<String>, TrainError> {
        TrainConfig::check_distinct_overrides(&self.overrides)?;
        let mut flags = vec![("--seed", "run.seed")];
        for (given, flag, key) in [
            (builtin_model, "--seed", "model.builtin.seed"),
            (self.out.is_some(), "--out", "run.out_dir"),
            (self.fresh, "--fresh", "run.resume"),
            (self.force, "--force", "run.force"),
        ] {
            if given {
                flags.push((flag, key));
            }
        }
        TrainConfig::check_flags_not_overridden(&flags, &self.overrides)?;
        let mut o = vec![format!("run.seed={}", self.seed)];
        if builtin_model {
            o.push(format!("model.builtin.seed={}", self.seed));
        }
        o.push(format!("run.out_dir={:?}", out.display().to_string()));
        if self.fresh {
            o.push("run.resume=false".into());
        }
        if self.force {
            o.push("run.force=true".into());
        }
        o.extend(self.overrides.iter().cloned());
        Ok(o)
    }
}
