//! Per-step metrics, one JSON line each in `RUN_DIR/metrics.jsonl`.

use crate::evaluate::EvalReport;
use crate::rollout::Trajectory;
use crate::TrainError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use toolgym_env::EndReason;
use toolgym_reward::jsonl::{is_blank, LineReader, MAX_LINE_BYTES};

/// File name of the metrics log inside a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// What one training step did. Fields that do not apply are absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepMetrics {
    /// `grpo` or `sft`.
    pub phase: String,
    /// 1-based step within the phase; step 0 is a validation-only line (the
    /// held-out accuracy before the phase's first step).
    pub step: usize,
    /// Mean reward of the rollouts whose env did not fail (an env failure
    /// scores 0 but says nothing of the policy: it is counted in
    /// `env_failures` instead; none when every episode failed). With
    /// `grpo.env_failures = "scored"`, the failures after a reply are
    /// counted here too, at `grpo.env_failure_reward`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_mean: Option<f64>,
    /// Std of the same rewards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_std: Option<f64>,
    /// Share of rollouts whose verdict is `ok`, of those whose env did not
    /// fail (and, with `grpo.env_failures = "scored"`, the failures after
    /// a reply, as unsolved). An env that reports verdicts decides `ok`;
    /// one that reports none (a hand-written `ToolEnv` paying rewards
    /// alone) is `ok` on any positive reward, so partial credit counts as
    /// solved there ([`crate::rollout::Trajectory::verdict`]). None when
    /// every episode failed in its env.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Verdicts per reason: every rule verdict of every step of every
    /// rollout (weight-0 rules kept for logging included, passing ones
    /// too), or an episode's own verdict where it has none or failed in
    /// its env. A single-turn rollout with one rule gives one; validation's
    /// summary counts each episode once instead.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reasons: BTreeMap<String, usize>,
    /// Share of groups whose rewards all agree (no learning signal), over
    /// every group generated in the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zero_variance_groups: Option<f64>,
    /// With dynamic sampling: rollout rounds the step ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_rounds: Option<usize>,
    /// With dynamic sampling: groups kept for the update (those whose
    /// rewards differ, at most `prompts_per_step`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_groups: Option<usize>,
    /// Policy loss (the optimised scalar, averaged over optimiser steps).
    #[serde(deserialize_with = "nan_if_null")]
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
    /// Mean model tokens per episode (the reply, for single-turn tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_len_mean: Option<f64>,
    /// Most model tokens in an episode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_len_max: Option<usize>,
    /// Share of replies cut at `max_response_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncation_rate: Option<f64>,
    /// Episodes not run because their first prompt was over
    /// `max_prompt_tokens` (SFT: examples left out as over
    /// `max_seq_tokens`, or without a complete demonstration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_episodes: Option<usize>,
    /// First prompts cut to `max_prompt_tokens` (only with
    /// `grpo.overlong_prompts = "truncate-left"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_prompts: Option<usize>,
    /// Tasks of the training file left out before the phase started, their
    /// first prompt being over `max_prompt_tokens`, by source (written on
    /// the phase's first step).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped_overlong: BTreeMap<String, usize>,
    /// Validation tasks left out alike (validated on the rest, as verl's
    /// `filter_overlong_prompts` filters its validation set), by source
    /// (written on the phase's first step).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dropped_overlong_validation: BTreeMap<String, usize>,
    /// Mean model turns per episode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turns_mean: Option<f64>,
    /// Most model turns in an episode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turns_max: Option<usize>,
    /// Episodes per end reason (`scored`, `answered`, `turn_limit`,
    /// `token_limit`, `env_error`, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub end_reasons: BTreeMap<String, usize>,
    /// Episodes cut short by the turn limit or the token budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_episodes: Option<usize>,
    /// Failed tool calls by kind (`unknown_tool`, `invalid_arguments`,
    /// `tool_error`, `tool_crashed`, `not_executable`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tool_errors: BTreeMap<String, usize>,
    /// Episodes whose environment failed (panicked, timed out, gave a
    /// non-finite reward or an observation that does not extend the last
    /// one). They get reward 0 and are left out of their group's
    /// advantages and of the loss (unless `grpo.env_failures = "scored"`:
    /// those that failed after a reply get `grpo.env_failure_reward` and
    /// are trained on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_failures: Option<usize>,
    /// The first env failure's message this step (env, task, what).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_error: Option<String>,
    /// Env calls given up on after `env_timeout` that are still running
    /// on their threads, in the whole process (each holds a thread and
    /// its env; [`crate::rollout::stuck_env_calls`]). Written when not 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_calls_stuck: Option<usize>,
    /// Env `Drop`s that panicked since the previous metrics line (caught:
    /// their episodes were over; [`crate::rollout::take_env_drop_panics`]).
    /// Written when not 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_drop_panics: Option<usize>,
    /// The first of those panics' message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_drop_panic: Option<String>,
    /// Training tasks the task source failed to give this step (its `get`
    /// panicked, or gave no task inside its length): each was skipped and
    /// a later draw took its place. Written when not 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_failures: Option<usize>,
    /// The first such failure (source, index, message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_error: Option<String>,
    /// Seconds spent inside environments (summed over worker threads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_seconds: Option<f64>,
    /// Model tokens generated in the step (the loss covers them, except
    /// those of failed episodes and of groups dynamic sampling dropped,
    /// which it leaves out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trained_tokens: Option<usize>,
    /// Environment tokens of the step's episodes (masked out of the loss).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_tokens: Option<usize>,
    /// Learning rate of the last optimiser step.
    #[serde(deserialize_with = "nan_if_null")]
    pub lr: f64,
    /// Gradient norm (before clipping) of the last optimiser step.
    #[serde(deserialize_with = "nan_if_null")]
    pub grad_norm: f64,
    /// Optimiser steps skipped because the gradient was not finite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_updates: Option<usize>,
    /// Wall time of the step.
    #[serde(deserialize_with = "nan_if_null")]
    pub step_seconds: f64,
    /// Time spent generating rollouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_seconds: Option<f64>,
    /// Time spent computing old and reference log-probs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprob_seconds: Option<f64>,
    /// Time spent in forward/backward and optimiser updates.
    #[serde(deserialize_with = "nan_if_null")]
    pub update_seconds: f64,
    /// Of `update_seconds`, host time in the micro-batches' forward passes
    /// and losses, summed over micro-batches (more than the wall time when
    /// the CPU runs micro-batches side by side). On an accelerator work is
    /// queued, so this is launch time: close to `update_seconds`, the
    /// step is bound by the host; small, by the device (the wait is then
    /// in the rest of the update, where losses are read back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_forward_seconds: Option<f64>,
    /// Of `update_seconds`, host time in the backward passes, summed as
    /// `update_forward_seconds` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_backward_seconds: Option<f64>,
    /// On a CUDA device: GB (10^9 bytes) held by live tensors at the end
    /// of the step (see [`toolgym_model::device_memory`]). Growing from
    /// step to step, it is a leak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_mem_used_gb: Option<f64>,
    /// On a CUDA device: the most GB live tensors held during the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_mem_peak_gb: Option<f64>,
    /// On a CUDA device: GB the memory pool held from the device at the end
    /// of the step (what `nvidia-smi` shows, less the context).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_mem_reserved_gb: Option<f64>,
    /// Generated tokens per second during rollout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_tokens_per_s: Option<f64>,
    /// Tokens (prompt + response) per second through training passes.
    #[serde(deserialize_with = "nan_if_null")]
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
    /// Validation episodes (greedy and sampled) that an env failure ended,
    /// when any did: they count as wrong in the accuracies above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_env_failures: Option<usize>,
    /// Validation tasks whose first prompt was over the prompt limit when
    /// run (not run: wrong in the accuracies), when any were: those past
    /// the filter of `dropped_overlong_validation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_over_limit: Option<usize>,
    /// Greedy validation accuracy per task source, when the validation
    /// tasks come from more than one (in the manner of verl's
    /// `val/test_score/{data_source}`, which is the mean reward).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub val_accuracy_by_source: BTreeMap<String, f64>,
}

impl StepMetrics {
    /// A validation-only line: `phase` at `step` (0 = before its first step).
    /// No update ran, so the loss, learning rate, gradient norm, step and
    /// update times and training throughput are NaN (`null` in
    /// `metrics.jsonl`), not 0.
    pub fn validation_only(phase: &str, step: usize, report: &EvalReport) -> Self {
        let mut m = StepMetrics {
            phase: phase.to_string(),
            step,
            loss: f64::NAN,
            lr: f64::NAN,
            grad_norm: f64::NAN,
            step_seconds: f64::NAN,
            update_seconds: f64::NAN,
            train_tokens_per_s: f64::NAN,
            ..Default::default()
        };
        m.set_validation(report);
        m
    }

    /// Records `report` as the validation that ran after this step.
    pub fn set_validation(&mut self, report: &EvalReport) {
        self.val_accuracy = Some(report.accuracy);
        self.val_reward = Some(report.mean_reward);
        self.val_sampled_accuracy = report.sampled_accuracy;
        self.val_env_failures = (report.env_failures > 0).then_some(report.env_failures);
        self.val_over_limit = (report.over_limit > 0).then_some(report.over_limit);
        self.val_accuracy_by_source = if report.accuracy_by_source.len() > 1 {
            report.accuracy_by_source.clone()
        } else {
            BTreeMap::new()
        };
    }

    /// Whether the line is a training step (not a validation-only line).
    pub fn is_step(&self) -> bool {
        self.step > 0
    }
}

/// What a batch of episodes did, for the metrics of the step.
pub(crate) struct EpisodeStats {
    /// `None` when every episode was left out (no episode ran: a step
    /// whose envs all failed), not an accuracy of 0.
    pub accuracy: Option<f64>,
    pub reasons: BTreeMap<String, usize>,
    pub end_reasons: BTreeMap<String, usize>,
    pub tool_errors: BTreeMap<String, usize>,
    pub turns_mean: f64,
    pub turns_max: usize,
    pub env_failures: usize,
    pub env_error: Option<String>,
    pub env_seconds: f64,
    pub model_tokens: usize,
    pub env_tokens: usize,
    pub truncated: usize,
    pub skipped: usize,
    pub prompts_cut: usize,
    pub len_mean: f64,
    pub len_max: usize,
    pub cut_rate: f64,
}

impl EpisodeStats {
    /// The statistics of `episodes`. Reasons count every step's verdicts;
    /// `accuracy` is over the episodes whose env did not fail.
    pub fn of(episodes: &[Trajectory]) -> Self {
        Self::leaving_out(episodes, Trajectory::env_failed)
    }

    /// [`EpisodeStats::of`] with `accuracy` over the episodes `left_out`
    /// does not leave out (GRPO's `env_failures = "scored"` counts the
    /// failures it scores as unsolved).
    pub fn leaving_out(episodes: &[Trajectory], left_out: impl Fn(&Trajectory) -> bool) -> Self {
        let n = episodes.len().max(1) as f64;
        let ran = episodes.iter().filter(|e| !left_out(e)).count();
        let mut reasons = BTreeMap::new();
        let mut end_reasons = BTreeMap::new();
        let mut tool_errors = BTreeMap::new();
        let mut ok = 0;
        for e in episodes {
            for v in e.all_verdicts() {
                *reasons.entry(v.reason.as_str().to_string()).or_default() += 1;
            }
            let end = e.end.map_or("stopped", EndReason::as_str);
            *end_reasons.entry(end.to_string()).or_default() += 1;
            for kind in e.tool_errors() {
                *tool_errors.entry(kind.to_string()).or_default() += 1;
            }
            ok += usize::from(e.success());
        }
        let replies: usize = episodes.iter().map(Trajectory::turns).sum();
        let model_tokens: usize = episodes.iter().map(Trajectory::model_tokens).sum();
        Self {
            accuracy: (ran > 0).then(|| ok as f64 / ran as f64),
            reasons,
            end_reasons,
            tool_errors,
            turns_mean: replies as f64 / n,
            turns_max: episodes.iter().map(Trajectory::turns).max().unwrap_or(0),
            env_failures: episodes.iter().filter(|e| e.env_failed()).count(),
            env_error: episodes
                .iter()
                .filter(|e| e.env_failed())
                .find_map(|e| e.error.clone()),
            env_seconds: episodes.iter().map(|e| e.env_seconds).sum(),
            model_tokens,
            env_tokens: episodes.iter().map(Trajectory::env_tokens).sum(),
            truncated: episodes
                .iter()
                .filter(|e| e.end.is_some_and(EndReason::is_truncation) && e.error.is_none())
                .count(),
            skipped: episodes
                .iter()
                .filter(|e| e.error.is_some() && !e.env_failed())
                .count(),
            prompts_cut: episodes.iter().filter(|e| e.prompt_cut > 0).count(),
            len_mean: model_tokens as f64 / n,
            len_max: episodes
                .iter()
                .map(Trajectory::model_tokens)
                .max()
                .unwrap_or(0),
            cut_rate: episodes.iter().map(|e| e.cut_replies).sum::<usize>() as f64
                / replies.max(1) as f64,
        }
    }

    /// Writes how the envs fared into a step's metrics: end reasons,
    /// failures (and the first's message), calls still stuck, env time.
    pub fn fill_env(&mut self, m: &mut StepMetrics) {
        m.end_reasons = std::mem::take(&mut self.end_reasons);
        m.env_failures = Some(self.env_failures);
        m.env_error = self.env_error.take();
        m.env_calls_stuck = Some(crate::rollout::stuck_env_calls()).filter(|&n| n > 0);
        let (drop_panics, first) = crate::rollout::take_env_drop_panics();
        m.env_drop_panics = Some(drop_panics).filter(|&n| n > 0);
        m.env_drop_panic = first;
        m.env_seconds = Some(self.env_seconds);
    }

    /// Writes them into a step's metrics.
    pub fn fill(mut self, m: &mut StepMetrics) {
        self.fill_env(m);
        m.accuracy = self.accuracy;
        m.reasons = self.reasons;
        m.tool_errors = self.tool_errors;
        m.turns_mean = Some(self.turns_mean);
        m.turns_max = Some(self.turns_max);
        m.trained_tokens = Some(self.model_tokens);
        m.masked_tokens = Some(self.env_tokens);
        m.truncated_episodes = Some(self.truncated);
        m.skipped_episodes = Some(self.skipped);
        m.truncated_prompts = Some(self.prompts_cut);
        m.response_len_mean = Some(self.len_mean);
        m.response_len_max = Some(self.len_max);
        m.truncation_rate = Some(self.cut_rate);
    }
}

/// An `f64` field that JSON wrote as `null` (serde_json writes NaN and
/// infinities so) reads back as NaN, so that such a line still parses.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Append-only metrics log.
pub struct MetricsLog {
    path: PathBuf,
}

/// Drops from `RUN_DIR/metrics.jsonl` the lines of `phase` past
/// `keep_until_step` (all of them with `None`: the phase starts over), and
/// a last line a kill cut short; other phases' lines, and lines that are
/// no metrics line (a note, another tool's), stay as they are. The file
/// is rewritten (a new one renamed over it) only when a line goes.
pub(crate) fn forget_phase_lines(
    run_dir: &Path,
    phase: &str,
    keep_until_step: Option<usize>,
) -> Result<(), TrainError> {
    let path = run_dir.join(METRICS_FILE);
    if !path.is_file() {
        return Ok(());
    }
    // A last line without its newline that is no metrics line is one
    // a kill cut short.
    let bytes = fs::read(&path).map_err(|e| TrainError::io("read", &path, e))?;
    let torn_end = !bytes.is_empty() && !bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len() - 1;
    let mut text = Vec::with_capacity(bytes.len());
    for (i, line) in lines.into_iter().enumerate() {
        if is_blank(line) {
            continue;
        }
        let keep = match serde_json::from_slice::<StepMetrics>(line) {
            Ok(m) => m.phase != phase || keep_until_step.is_some_and(|limit| m.step <= limit),
            Err(_) => !(torn_end && i == last),
        };
        if keep {
            text.extend_from_slice(line);
            text.push(b'\n');
        }
    }
    // Nothing to drop: the file is left as it is, so a `tail -f` on it
    // keeps following it. A link to it stays a link either way: the new
    // file replaces the one it names.
    if text != bytes {
        let link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        let file = match link {
            true => fs::canonicalize(&path).map_err(|e| TrainError::io("resolve", &path, e))?,
            false => path,
        };
        crate::checkpoint::write_atomically(&file, &text)?;
    }
    Ok(())
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
        forget_phase_lines(run_dir, phase, keep_until_step)?;
        let log = Self { path };
        log.append()?; // an unwritable file is said now, not at the first step
        Ok(log)
    }

    /// The file, opened for appending. Opened per write, not kept: the
    /// file is rewritten by renaming a new one over it (another phase's
    /// lines dropped when a run starts over), and a kept handle would go
    /// on writing into the replaced file, whose lines were then lost.
    fn append(&self) -> Result<File, TrainError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| TrainError::io("open", &self.path, e))
    }

    /// Appends one step.
    pub fn write(&mut self, m: &StepMetrics) -> Result<(), TrainError> {
        let line = serde_json::to_string(m).map_err(|e| TrainError::Data(e.to_string()))?;
        writeln!(self.append()?, "{line}").map_err(|e| TrainError::io("write", &self.path, e))
    }

    /// Puts the lines written so far on disk (before a checkpoint is
    /// committed: a power cut then cannot leave the checkpoint without the
    /// lines of the steps it holds).
    pub fn sync(&self) -> Result<(), TrainError> {
        let file = self.append()?;
        // A device or a pipe the log was linked to has nothing to sync
        // (and refuses it).
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Ok(());
        }
        file.sync_data()
            .map_err(|e| TrainError::io("sync", &self.path, e))
    }
}

/// The lines of a metrics file: text, or why a line is unusable (not
/// UTF-8, or over [`MAX_LINE_BYTES`], which is never held in memory).
fn read_lines(path: &Path) -> Result<Vec<Result<String, String>>, TrainError> {
    let f = File::open(path).map_err(|e| TrainError::io("open", path, e))?;
    let mut reader = LineReader::new(BufReader::new(f), MAX_LINE_BYTES);
    let mut out = Vec::new();
    while let Some((_, text)) = reader
        .next_line()
        .map_err(|e| TrainError::io("read", path, e))?
    {
        out.push(text.map(String::from).map_err(|e| e.to_string()));
    }
    Ok(out)
}

/// Reads every metrics line of a run: lines that do not parse, and JSON
/// objects that are no step's metrics (no `grpo` or `sft` phase), are
/// reported with their line numbers, not silently skipped.
pub fn read_metrics(run_dir: &Path) -> Result<(Vec<StepMetrics>, Vec<String>), TrainError> {
    let path = run_dir.join(METRICS_FILE);
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in read_lines(&path)?.iter().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(why) => {
                bad.push(format!("{}:{}: {why}", path.display(), i + 1));
                continue;
            }
        };
        if is_blank(line.as_bytes()) {
            continue;
        }
        match serde_json::from_str::<StepMetrics>(line) {
            Ok(m) if m.phase == "grpo" || m.phase == "sft" => out.push(m),
            // Every field has a default, so any JSON object reads: one of
            // no known phase (`{}`, another tool's line) is not a step.
            Ok(m) => bad.push(format!(
                "{}:{}: not a step's metrics (phase {:?}, expected \"grpo\" or \"sft\")",
                path.display(),
                i + 1,
                m.phase
            )),
            Err(e) => bad.push(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    Ok((out, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_numbers_read_back_torn_lines_go_on_resume_and_others_stay() {
        let dir = std::env::temp_dir().join(format!("toolgym-metrics-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut log = MetricsLog::open(&dir, "grpo", None).unwrap();
        for step in 1..=3 {
            let m = StepMetrics {
                phase: "grpo".into(),
                step,
                loss: if step == 2 { f64::NAN } else { 0.5 },
                ..StepMetrics::default()
            };
            log.write(&m).unwrap();
        }
        drop(log);
        // NaN was written as null; it reads back as NaN.
        let (read, bad) = read_metrics(&dir).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(read.len(), 3);
        assert!(read[1].loss.is_nan());
        // A kill cut the last line short; resuming from step 2 keeps 1 and
        // 2, and a line that is no metrics line (a user's note) in the
        // middle stays as it was.
        let path = dir.join(METRICS_FILE);
        let mut text = fs::read_to_string(&path).unwrap();
        text.insert_str(0, "# my note\n{}\n{\"note\": \"hello\"}\n");
        text.push_str("{\"phase\": \"grpo\", \"st");
        fs::write(&path, text).unwrap();
        MetricsLog::open(&dir, "grpo", Some(2)).unwrap();
        let (read, bad) = read_metrics(&dir).unwrap();
        // The note and the two objects of no phase are reported, not read
        // as steps.
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(
            bad[1].ends_with(":2: not a step's metrics (phase \"\", expected \"grpo\" or \"sft\")"),
            "{bad:?}"
        );
        assert_eq!(read.iter().map(|m| m.step).collect::<Vec<_>>(), [1, 2]);
        assert!(fs::read_to_string(&path)
            .unwrap()
            .starts_with("# my note\n{}\n"));
        fs::remove_dir_all(&dir).ok();
    }

    #[cfg(unix)]
    #[test]
    fn opening_a_log_with_nothing_to_drop_leaves_the_file_in_place() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("toolgym-metrics-keep-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // The run's log is a link to a file elsewhere (a shared log
        // directory); a `tail -f` follows the file's inode.
        let target = dir.join("elsewhere.jsonl");
        let mut log = MetricsLog::open(&dir, "sft", None).unwrap();
        let step = |phase: &str, step| StepMetrics {
            phase: phase.into(),
            step,
            ..StepMetrics::default()
        };
        log.write(&step("sft", 1)).unwrap();
        log.write(&step("sft", 2)).unwrap();
        drop(log);
        fs::rename(dir.join(METRICS_FILE), &target).unwrap();
        std::os::unix::fs::symlink(&target, dir.join(METRICS_FILE)).unwrap();
        let inode = fs::metadata(&target).unwrap().ino();
        // Resuming after the last step written, then opening the next
        // phase, drops nothing: the link and the file stay, and the new
        // lines go into that file.
        MetricsLog::open(&dir, "sft", Some(2)).unwrap();
        let mut log = MetricsLog::open(&dir, "grpo", None).unwrap();
        log.write(&step("grpo", 1)).unwrap();
        let link = fs::symlink_metadata(dir.join(METRICS_FILE)).unwrap();
        assert!(link.file_type().is_symlink());
        assert_eq!(fs::metadata(&target).unwrap().ino(), inode);
        let (read, bad) = read_metrics(&dir).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(read.len(), 3);
        // A step past the checkpoint does go: the file is rewritten then.
        MetricsLog::open(&dir, "sft", Some(1)).unwrap();
        let link = fs::symlink_metadata(dir.join(METRICS_FILE)).unwrap();
        assert!(link.file_type().is_symlink());
        let (read, _) = read_metrics(&dir).unwrap();
        assert_eq!(
            read.iter()
                .map(|m| (m.phase.as_str(), m.step))
                .collect::<Vec<_>>(),
            [("sft", 1), ("grpo", 1)]
        );
        fs::remove_dir_all(&dir).ok();
    }
}
