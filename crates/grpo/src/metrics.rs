//! Per-step metrics, one JSON line each in `RUN_DIR/metrics.jsonl`.

use crate::TrainError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// File name of the metrics log inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// What one training step did. Fields that do not apply are absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepMetrics {
    /// `grpo` or `sft`.
    pub phase: String,
    /// 1-based step within the phase.
    pub step: usize,
    /// Mean reward of the rollouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_mean: Option<f64>,
    /// Std of the rollout rewards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_std: Option<f64>,
    /// Share of rollouts with reward 1 (reason ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Rollouts per reward reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, usize>,
    /// Share of groups whose rewards all agree (no learning signal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zero_variance_groups: Option<f64>,
    /// Policy loss (the optimised scalar, averaged over optimiser steps).
    pub loss: f64,
    /// Mean k3 KL to the reference per token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
    /// Share of tokens where the ratio was clipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_fraction: Option<f64>,
    /// Mean per-token entropy of the policy on its rollouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
    /// Mean response length in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_len_mean: Option<f64>,
    /// Longest response in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_len_max: Option<usize>,
    /// Share of responses cut at `max_response_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncation_rate: Option<f64>,
    /// Prompts left-truncated to `max_prompt_tokens` this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_prompts: Option<usize>,
    /// Learning rate of the last optimiser step.
    pub lr: f64,
    /// Gradient norm (before clipping) of the last optimiser step.
    pub grad_norm: f64,
    /// Wall time of the step.
    pub step_seconds: f64,
    /// Time spent generating rollouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_seconds: Option<f64>,
    /// Time spent computing old and reference log-probs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprob_seconds: Option<f64>,
    /// Time spent in forward/backward and optimiser updates.
    pub update_seconds: f64,
    /// Generated tokens per second during rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_tokens_per_s: Option<f64>,
    /// Tokens (prompt + response) per second through training passes.
    pub train_tokens_per_s: f64,
    /// Validation accuracy, when validation ran after this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f64>,
    /// Validation mean reward, when validation ran after this step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_reward: Option<f64>,
    /// Validation accuracy of sampled replies (`run.eval_samples` per task
    /// at `run.eval_temperature`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_sampled_accuracy: Option<f64>,
}

/// Append-only metrics log.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `RUN_DIR/metrics.jsonl` for appending. When resuming, lines of
    /// `phase` past `keep_until_step` (written after the checkpoint the run
    /// resumes from) are dropped first, so the log reads as one run.
    pub fn open(
        run_dir: &Path,
        phase: &str,
        keep_until_step: Option<usize>,
    ) -> Result<Self, TrainError> {
        fs::create_dir_all(run_dir).map_err(|e| TrainError::io("create", run_dir, e))?;
        let path = run_dir.join(METRICS_FILE);
        if let Some(limit) = keep_until_step {
            if path.is_file() {
                let kept: Vec<String> = read_lines(&path)?
                    .into_iter()
                    .filter(|l| !l.trim().is_empty())
                    .filter(|l| match serde_json::from_str::<StepMetrics>(l) {
                        Ok(m) => m.phase != phase || m.step <= limit,
                        Err(_) => true,
                    })
                    .collect();
                let mut text = kept.join("\n");
                if !text.is_empty() {
                    text.push('\n');
                }
                crate::checkpoint::write_atomically(&path, text.as_bytes())?;
            }
        } else if path.is_file() {
            // A fresh run of this phase replaces the phase's old lines.
            let kept: Vec<String> = read_lines(&path)?
                .into_iter()
                .filter(|l| !l.trim().is_empty())
                .filter(|l| {
                    serde_json::from_str::<StepMetrics>(l).map_or(true, |m| m.phase != phase)
                })
                .collect();
            let mut text = kept.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            crate::checkpoint::write_atomically(&path, text.as_bytes())?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io("open", &path, e))?;
        Ok(Self { path, file })
    }

    /// Appends one step.
    pub fn write(&mut self, m: &StepMetrics) -> Result<(), TrainError> {
        let line = serde_json::to_string(m).map_err(|e| TrainError::Data(e.to_string()))?;
        writeln!(self.file, "{line}").map_err(|e| TrainError::io("write", &self.path, e))?;
        self.file
            .flush()
            .map_err(|e| TrainError::io("write", &self.path, e))
    }
}

fn read_lines(path: &Path) -> Result<Vec<String>, TrainError> {
    let f = File::open(path).map_err(|e| TrainError::io("open", path, e))?;
    BufReader::new(f)
        .lines()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrainError::io("read", path, e))
}

/// Reads every metrics line of a run (unparseable lines are reported with
/// their line numbers, not silently skipped).
pub fn read_metrics(run_dir: &Path) -> Result<(Vec<StepMetrics>, Vec<String>), TrainError> {
    let path = run_dir.join(METRICS_FILE);
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in read_lines(&path)?.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(m) => out.push(m),
            Err(e) => bad.push(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    Ok((out, bad))
}
