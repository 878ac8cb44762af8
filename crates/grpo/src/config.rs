//! Training configuration: one TOML file whose defaults are the paper's
//! hyperparameters (its released verl script: G = 5 at temperature 0.7,
//! ε = 0.2, β = 1e-3 with the low-variance KL, lr 1e-6, entropy 0, 1024
//! prompts per step in mini-batches of 64, responses up to 1024 tokens), so a
//! file states only what differs. Any key can be overridden on the command
//! line as `section.key=value`.

use crate::{LossAgg, OptimConfig, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything a run needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Which model to train.
    pub model: ModelSection,
    /// Which tasks to train and validate on.
    pub data: DataSection,
    /// GRPO hyperparameters.
    pub grpo: GrpoConfig,
    /// SFT hyperparameters.
    pub sft: SftConfig,
    /// Run bookkeeping: output, seeds, checkpoints, validation.
    pub run: RunSection,
}

/// The policy model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// A Hugging Face model directory (config.json, safetensors, tokenizer.json).
    /// Absent: the built-in tiny Qwen2 and tokenizer.
    pub path: Option<PathBuf>,
    /// Weights dtype: f32, bf16 or f16 (also for the built-in model). With
    /// bf16 / f16 the forward and backward passes run in that dtype and the
    /// optimiser keeps f32 master weights and moments.
    pub dtype: String,
    /// cpu or cuda (cuda needs the `cuda` feature).
    pub device: String,
    /// Shape of the built-in tiny model (used when `path` is absent).
    pub builtin: crate::BuiltinPolicy,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            path: None,
            dtype: "f32".into(),
            device: "cpu".into(),
            builtin: crate::BuiltinPolicy::default(),
        }
    }
}

/// The tasks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// Training tasks (JSONL from `toolgym prepare`). Absent: the built-in
    /// synthetic environment.
    pub train: Option<PathBuf>,
    /// Validation tasks (JSONL). Absent: the synthetic validation split, or
    /// none for file-based training.
    pub validation: Option<PathBuf>,
    /// Prompt template: `tool-n1`, `tool-n1-no-think`, `compact`, …
    pub template: String,
    /// The built-in synthetic environment (used when `train` is absent).
    pub synthetic: SyntheticSection,
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            train: None,
            validation: None,
            template: "tool-n1".into(),
            synthetic: SyntheticSection::default(),
        }
    }
}

/// The built-in synthetic environment: a preset and any knob to change
/// (see `toolgym_env::synthetic::SyntheticConfig` for their meaning).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticSection {
    /// `tiny`, `standard` or `hard`.
    pub preset: String,
    /// Tool families to use (empty: the preset's).
    pub families: Option<Vec<String>>,
    /// Distractor tools per task, inclusive range.
    pub distractors: Option<(usize, usize)>,
    /// Share of tasks with several calls.
    pub parallel_share: Option<f64>,
    /// Most calls in a parallel task.
    pub max_parallel: Option<usize>,
    /// Share of tasks where no offered tool fits.
    pub no_call_share: Option<f64>,
    /// Words per vocabulary.
    pub vocab_limit: Option<usize>,
    /// Largest number in queries.
    pub number_max: Option<i64>,
    /// Share of query templates held out for validation.
    pub template_holdout: Option<f64>,
    /// Share of each vocabulary held out for validation.
    pub value_holdout: Option<f64>,
    /// How validation tasks are held out: `both` (template and values),
    /// `either` (one of the two per task) or `tasks` (unseen queries of known
    /// templates and values).
    pub validation_holdout: Option<String>,
    /// Validation tasks drawn from the held-out split.
    pub validation_tasks: usize,
}

impl Default for SyntheticSection {
    fn default() -> Self {
        Self {
            preset: "tiny".into(),
            families: None,
            distractors: None,
            parallel_share: None,
            max_parallel: None,
            no_call_share: None,
            vocab_limit: None,
            number_max: None,
            template_holdout: None,
            value_holdout: None,
            validation_holdout: None,
            validation_tasks: 200,
        }
    }
}

impl SyntheticSection {
    /// The environment's config for `seed`.
    pub fn to_config(
        &self,
        seed: u64,
    ) -> Result<toolgym_env::synthetic::SyntheticConfig, TrainError> {
        use toolgym_env::synthetic::{Holdout, SyntheticConfig};
        let mut c = match self.preset.as_str() {
            "tiny" => SyntheticConfig::tiny(seed),
            "standard" => SyntheticConfig::standard(seed),
            "hard" => SyntheticConfig::hard(seed),
            other => {
                return Err(TrainError::Config(format!(
                    "data.synthetic.preset: unknown preset {other:?} (tiny, standard, hard)"
                )))
            }
        };
        if let Some(v) = &self.families {
            c.families = v.clone();
        }
        c.distractors = self.distractors.unwrap_or(c.distractors);
        c.parallel_share = self.parallel_share.unwrap_or(c.parallel_share);
        c.max_parallel = self.max_parallel.unwrap_or(c.max_parallel);
        c.no_call_share = self.no_call_share.unwrap_or(c.no_call_share);
        if self.vocab_limit.is_some() {
            c.vocab_limit = self.vocab_limit;
        }
        c.number_max = self.number_max.unwrap_or(c.number_max);
        c.template_holdout = self.template_holdout.unwrap_or(c.template_holdout);
        c.value_holdout = self.value_holdout.unwrap_or(c.value_holdout);
        match self.validation_holdout.as_deref() {
            None => {}
            Some("both") => c.validation_holdout = Holdout::Both,
            Some("either") => c.validation_holdout = Holdout::Either,
            Some("tasks") => c.validation_holdout = Holdout::Tasks,
            Some(other) => {
                return Err(TrainError::Config(format!(
                "data.synthetic.validation_holdout: {other:?} is not `both`, `either` or `tasks`"
            )))
            }
        }
        Ok(c)
    }
}

/// GRPO hyperparameters (defaults: the paper's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    /// Optimisation steps (rollout batches) to run.
    pub steps: usize,
    /// G, completions per prompt (paper: 5).
    pub group_size: usize,
    /// Prompts per rollout batch (paper: 1024).
    pub prompts_per_step: usize,
    /// Rollout temperature (paper: 0.7).
    pub temperature: f64,
    /// Nucleus sampling (1 = off).
    pub top_p: f64,
    /// Top-k sampling (0 = off).
    pub top_k: usize,
    /// Longer prompts are left-truncated to this many tokens and counted.
    pub max_prompt_tokens: usize,
    /// Responses stop after this many tokens (counted as truncated).
    pub max_response_tokens: usize,
    /// ε_low of the clipped ratio (paper: 0.2).
    pub clip_low: f64,
    /// ε_high of the clipped ratio (paper: 0.2).
    pub clip_high: f64,
    /// β, KL-to-reference weight with the k3 estimator (paper: 1e-3; 0 skips
    /// the reference model).
    pub kl_coef: f64,
    /// Entropy bonus (paper: 0).
    pub entropy_coef: f64,
    /// Divide group-centred rewards by the group's std (paper: yes).
    pub scale_rewards_by_std: bool,
    /// ε in `(r − mean) / (std + ε)`.
    pub advantage_eps: f64,
    /// Loss aggregation: `token-mean` (paper) or `seq-mean`.
    pub loss_agg: LossAgg,
    /// Optimisation epochs over each rollout batch (paper: 1).
    pub epochs: usize,
    /// Prompts per optimiser step (paper: 64, i.e. 320 sequences).
    pub mini_batch_prompts: usize,
    /// Sequences per forward/backward pass (gradient accumulation).
    pub micro_batch_seqs: usize,
    /// Temperature at which log-probs are scored (verl scores at the rollout
    /// temperature). Absent: `temperature`.
    pub score_temperature: Option<f64>,
    /// Reward rule name (see `toolgym score --list-rules`).
    pub reward_rule: String,
    /// Optimiser.
    pub optim: OptimConfig,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            group_size: 5,
            prompts_per_step: 1024,
            temperature: 0.7,
            top_p: 1.0,
            top_k: 0,
            max_prompt_tokens: 8192,
            max_response_tokens: 1024,
            clip_low: 0.2,
            clip_high: 0.2,
            kl_coef: 1e-3,
            entropy_coef: 0.0,
            scale_rewards_by_std: true,
            advantage_eps: 1e-6,
            loss_agg: LossAgg::TokenMean,
            epochs: 1,
            mini_batch_prompts: 64,
            micro_batch_seqs: 8,
            score_temperature: None,
            reward_rule: "binary".into(),
            optim: OptimConfig::default(),
        }
    }
}

/// SFT hyperparameters (the paper's SFT baselines; warm starts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Examples per optimiser step.
    pub batch_size: usize,
    /// Examples per forward/backward pass.
    pub micro_batch_seqs: usize,
    /// Longer examples are left-truncated (prompt side) to this many tokens.
    pub max_seq_tokens: usize,
    /// Optimiser (SFT default lr 1e-5).
    pub optim: OptimConfig,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            batch_size: 32,
            micro_batch_seqs: 8,
            max_seq_tokens: 4096,
            optim: OptimConfig {
                lr: 1e-5,
                ..OptimConfig::default()
            },
        }
    }
}

/// Output, seeds, checkpoints and validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    /// Run directory (metrics.jsonl, checkpoints/, plots).
    pub out_dir: PathBuf,
    /// Seed of everything random (data order, sampling, initialisation).
    pub seed: u64,
    /// Checkpoint every N steps (0 = only at the end).
    pub save_every: usize,
    /// Checkpoints to keep (0 = all).
    pub keep_checkpoints: usize,
    /// Validate every N steps (0 = only before and after).
    pub eval_every: usize,
    /// Validation tasks to use (0 = all).
    pub eval_tasks: usize,
    /// Besides greedy replies, score this many sampled replies per
    /// validation task (0 = greedy only).
    pub eval_samples: usize,
    /// Temperature of the sampled validation replies.
    pub eval_temperature: f64,
    /// Resume from the latest checkpoint in `out_dir` if there is one.
    pub resume: bool,
    /// Show a progress bar on a terminal.
    pub progress: bool,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            out_dir: PathBuf::from("runs/default"),
            seed: 0,
            save_every: 10,
            keep_checkpoints: 3,
            eval_every: 10,
            eval_tasks: 0,
            eval_samples: 0,
            eval_temperature: 0.7,
            resume: true,
            progress: true,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file, then applies `section.key=value` overrides (values
    /// are TOML literals; bare words are strings).
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self, TrainError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| TrainError::io("read", p, e))?;
                text.parse::<toml::Table>()
                    .map_err(|e| TrainError::Config(format!("{}: {e}", p.display())))?
            }
            None => toml::Table::new(),
        };
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let where_ = path.map_or("the overrides".to_string(), |p| p.display().to_string());
        let cfg: TrainConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e| TrainError::Config(format!("{where_}: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that would make a run meaningless.
    pub fn validate(&self) -> Result<(), TrainError> {
        let g = &self.grpo;
        let bad = |m: String| Err(TrainError::Config(m));
        if g.group_size < 2 {
            return bad(format!(
                "grpo.group_size must be at least 2 (got {})",
                g.group_size
            ));
        }
        if g.prompts_per_step == 0 || g.mini_batch_prompts == 0 || g.micro_batch_seqs == 0 {
            return bad(
                "grpo.prompts_per_step, mini_batch_prompts and micro_batch_seqs must be positive"
                    .into(),
            );
        }
        if !g.prompts_per_step.is_multiple_of(g.mini_batch_prompts) {
            return bad(format!(
                "grpo.prompts_per_step ({}) must be a multiple of grpo.mini_batch_prompts ({})",
                g.prompts_per_step, g.mini_batch_prompts
            ));
        }
        let sampling_ok = g.temperature >= 0.0 && g.top_p > 0.0 && g.top_p <= 1.0;
        if !sampling_ok {
            return bad(format!(
                "grpo.temperature must be ≥ 0 and top_p in (0, 1] (got {}, {})",
                g.temperature, g.top_p
            ));
        }
        if g.clip_low < 0.0 || g.clip_high < 0.0 || g.clip_low >= 1.0 {
            return bad("grpo.clip_low must be in [0, 1) and clip_high ≥ 0".into());
        }
        if g.epochs == 0 || g.max_response_tokens == 0 {
            return bad("grpo.epochs and grpo.max_response_tokens must be positive".into());
        }
        if self.sft.batch_size == 0 || self.sft.micro_batch_seqs == 0 {
            return bad("sft.batch_size and sft.micro_batch_seqs must be positive".into());
        }
        Ok(())
    }
}

/// Sets `a.b.c=value` in a TOML table.
fn apply_override(table: &mut toml::Table, spec: &str) -> Result<(), TrainError> {
    let (key, raw) = spec
        .split_once('=')
        .ok_or_else(|| TrainError::Config(format!("override {spec:?} is not key=value")))?;
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, path) = parts
        .split_last()
        .ok_or_else(|| TrainError::Config(format!("empty key in {spec:?}")))?;
    let mut cur = table;
    for p in path {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| TrainError::Config(format!("{key}: {p} is not a section")))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers() {
        let c = TrainConfig::default();
        assert_eq!(c.grpo.group_size, 5);
        assert_eq!(c.grpo.temperature, 0.7);
        assert_eq!((c.grpo.clip_low, c.grpo.clip_high), (0.2, 0.2));
        assert_eq!(c.grpo.kl_coef, 1e-3);
        assert_eq!(c.grpo.entropy_coef, 0.0);
        assert_eq!(c.grpo.optim.lr, 1e-6);
        assert_eq!(c.grpo.loss_agg, LossAgg::TokenMean);
        assert_eq!(
            (c.grpo.prompts_per_step, c.grpo.mini_batch_prompts),
            (1024, 64)
        );
    }

    #[test]
    fn file_and_overrides() {
        let dir = std::env::temp_dir().join(format!("toolgym-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("c.toml");
        std::fs::write(
            &p,
            "[grpo]\nkl_coef = 0.0\nloss_agg = \"seq-mean\"\n[grpo.optim]\nlr = 3e-4\n",
        )
        .unwrap();
        let c = TrainConfig::load(
            Some(&p),
            &["grpo.group_size=8".into(), "run.out_dir=runs/x".into()],
        )
        .unwrap();
        assert_eq!(c.grpo.kl_coef, 0.0);
        assert_eq!(c.grpo.loss_agg, LossAgg::SeqMean);
        assert_eq!(c.grpo.optim.lr, 3e-4);
        assert_eq!(c.grpo.group_size, 8);
        assert_eq!(c.run.out_dir, PathBuf::from("runs/x"));
        assert_eq!(c.grpo.temperature, 0.7);
        std::fs::write(&p, "[grpo]\nkl_coeff = 0.0\n").unwrap();
        let e = TrainConfig::load(Some(&p), &[]).unwrap_err().to_string();
        assert!(e.contains("kl_coeff"), "{e}");
        let e = TrainConfig::load(None, &["grpo.group_size=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("group_size"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
