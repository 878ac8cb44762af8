//! Training configuration: one TOML file whose defaults are the paper's
//! setup, so a file states only what differs. Any key can be overridden on
//! the command line as `section.key=value`.
//!
//! The GRPO defaults come from the paper's Table 6 (appendix B) and its
//! released training scripts (`qwen_rl.sh`, which sets the variables read by
//! `verl/examples/agent/qwen.sh`, over the `ppo_trainer.yaml` of the verl
//! copy shipped with it): G = 5 at temperature 0.7, ε = 0.2, β = 1e-3 with
//! the low-variance (k3) KL, lr 1e-6 constant, entropy 0, 1024 prompts per
//! step in mini-batches of 256 (verl's default: the script sets none),
//! prompts up to 4096 tokens (longer ones dropped), responses up to 8192,
//! 7 epochs over the data. Each field's documentation names its source; the
//! few deliberate differences say why.

use crate::metrics::METRICS_FILE;
use crate::rollout::{EpisodeReward, RolloutLimits};
use crate::{LossAgg, OptimConfig, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use toolgym_model::SamplingPlace;

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
    /// Weights dtype: f32 or bf16 (also for the built-in model). With bf16
    /// the forward and backward passes run in that dtype and the optimiser
    /// keeps f32 master weights and moments. f16 is refused: training in it
    /// needs loss scaling, which toolgym does not do.
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
    /// Tool families to use (absent: the preset's; an empty list: all of
    /// them).
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

/// What GRPO makes of an episode that failed in its env (a panic, a
/// time-out, a non-finite reward, a prompt that does not extend the last).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvFailures {
    /// Left out: not in its group's statistics nor in the loss
    /// (advantage 0), nor in the logged reward. Right when failures are
    /// the env's own bugs, which say nothing of the policy.
    #[default]
    LeaveOut,
    /// Scored `grpo.env_failure_reward` (default 0) with the episodes
    /// that ran and trained on like them (the model tokens up to the
    /// failure): a reply that makes the env fail (a tool that hangs or
    /// panics on the arguments the model chose) is pushed down. Right
    /// when the failures are the policy's doing; the failure reward
    /// should be at or below the env's lowest reward (else a failure
    /// beats a wrong answer). A failure no reply provokes is left out all
    /// the same: one before the first reply (making or resetting the
    /// env), a next prompt that does not extend the last (a template
    /// that rewrites past turns), env text that cannot be tokenised
    /// ([`crate::Trajectory::left_out_of_update`]). Written `scored`;
    /// `zero-reward`, its first name, is read as `scored`.
    #[serde(alias = "zero-reward")]
    Scored,
}

/// What happens to a first prompt longer than `max_prompt_tokens`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverlongPrompts {
    /// Left out: a finite task file is filtered when training starts (a
    /// count per source is printed and recorded in the first metrics line),
    /// and any prompt still over the limit at rollout is not run and is
    /// counted (`skipped_episodes`). Validation tasks are filtered alike
    /// (`dropped_overlong_validation`; SFT's validation too, as its last
    /// one is GRPO's "before"). The released verl does this, with no
    /// setting (its `RLHFDataset` drops prompts over `max_prompt_length`,
    /// truncation `'error'`, on both sets).
    #[default]
    Drop,
    /// Kept, with their first tokens cut off (so the system prompt and the
    /// tool list go first); counted and warned about. Only as an explicit
    /// choice: the model then never sees the tools of those tasks.
    TruncateLeft,
}

/// GRPO hyperparameters (defaults: the paper's; sources in each field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    /// Optimisation steps (rollout batches) to run. Absent: as many as
    /// `data_epochs` passes over a finite task file take,
    /// `ceil(data_epochs × tasks / prompts_per_step)`; a generator (an
    /// unbounded source) needs it set.
    pub steps: Option<usize>,
    /// Passes over the training tasks when `steps` is absent (paper: 7,
    /// Table 6 and `EPOCH=7` in `qwen_rl.sh`).
    pub data_epochs: usize,
    /// G, completions per prompt (paper: 5, Table 6; `rollout.n=5` in
    /// `qwen.sh`).
    pub group_size: usize,
    /// Prompts per rollout batch (paper: 1024, Table 6; `BA_SIZE=1024`).
    pub prompts_per_step: usize,
    /// Rollout temperature (paper: 0.7, Table 6; `TEMPERATURE=0.7`).
    pub temperature: f64,
    /// Nucleus sampling (1 = off; verl's default).
    pub top_p: f64,
    /// Top-k sampling (0 = off; verl's default -1 means the same).
    pub top_k: usize,
    /// Where rollout tokens are chosen: `auto` (default: on the device on
    /// an accelerator, on the host on the CPU), `host` (the CPU's sampler
    /// everywhere, so a GPU run draws the tokens a CPU run would, up to
    /// the logits' rounding) or `device` (see
    /// `toolgym_model::device_sampling`).
    pub sampling_place: SamplingPlace,
    /// Longest first prompt in tokens (paper: 4096, Table 6;
    /// `MAX_PROMPT_LEN=4096`); see `overlong_prompts` for longer ones.
    pub max_prompt_tokens: usize,
    /// What happens to longer first prompts: `drop` (default, as the
    /// released verl config) or `truncate-left` (explicit opt-in).
    pub overlong_prompts: OverlongPrompts,
    /// Each reply stops after this many tokens, counted as truncated
    /// (paper: 8192, Table 6; `MAX_RES=8192`). The pipeline's validation
    /// runs under GRPO's limits in both phases (this one, the prompt and
    /// episode limits), so that accuracy before and after GRPO compares:
    /// an SFT phase's validation replies stop here too.
    pub max_response_tokens: usize,
    /// Most model turns per episode (multi-turn environments); an episode
    /// still running then is truncated and gets the reward the env gives a
    /// truncated episode. Single-turn tasks take one.
    pub max_turns: usize,
    /// Most tokens per episode: the prompt plus every turn, environment
    /// tokens included; an episode that runs out is truncated likewise.
    /// Default 12288: the paper's `max_prompt_tokens + max_response_tokens`
    /// (4096 + 8192), a fixed number, not recomputed when those two are
    /// overridden: raise it with them. It must exceed `max_prompt_tokens`
    /// (checked when the config is read), or be 0: no limit but the
    /// model's context.
    pub max_episode_tokens: usize,
    /// An episode's reward: `sum` of its steps' rewards, or the `last`
    /// step's.
    pub episode_reward: EpisodeReward,
    /// Seconds a call into an env (`make` with `name`, `reset`, `step`, `truncate`) may take before its
    /// episode fails as an env error and the run goes on without it (the
    /// call is left running on its worker thread); 0: no limit, calls run
    /// in place. Default 600.
    pub env_timeout_s: f64,
    /// With a time limit (`env_timeout_s` > 0), how many episodes' env
    /// calls run at once; 0 (the default): one per compute thread. Raise
    /// it for envs that wait on I/O (an HTTP API, a sandbox), lower it to
    /// spare a rate-limited service; envs that compute should stay near
    /// the core count (a call's time limit runs from its start). At most
    /// 4096. SFT's is `sft.env_concurrency`.
    pub env_concurrency: usize,
    /// The run stops with an error when at least this share of a step's
    /// episodes failed in their env on three steps in a row (or on every
    /// step of a shorter run): a broken env or template fails them all,
    /// and a run that went on would train on nothing. A step of its own
    /// (a service down for a minute) gets a warning on stderr and the run
    /// goes on. Default 1: only when every episode failed; above 1: never.
    pub stop_at_env_failure_share: f64,
    /// Episodes that failed in their env: `leave-out` (default; the env's
    /// bug says nothing of the policy) or `scored` (scored
    /// `env_failure_reward` and trained on, for failures a reply
    /// provokes). See [`EnvFailures`].
    pub env_failures: EnvFailures,
    /// The reward of an episode that failed in its env after a reply,
    /// with `env_failures = "scored"` (default 0; at or below the env's
    /// lowest reward, e.g. -1 for an env that gives -1 to a wrong
    /// answer). Finite, at most 1e12 in magnitude; only with `scored`.
    pub env_failure_reward: f64,
    /// ε_low of the clipped ratio (paper: 0.2, Table 6; verl's
    /// `clip_ratio: 0.2`).
    pub clip_low: f64,
    /// ε_high of the clipped ratio (paper: 0.2, as ε_low).
    pub clip_high: f64,
    /// β, KL-to-reference weight with the k3 estimator (paper: 1e-3, Table
    /// 6; `KL_COE=0.001`, `kl_loss_type=low_var_kl`; 0 skips the reference
    /// model).
    pub kl_coef: f64,
    /// Entropy bonus (paper: 0; `ENTROPY=0`).
    pub entropy_coef: f64,
    /// Divide group-centred rewards by the group's std (GRPO as in verl's
    /// `compute_grpo_outcome_advantage`: yes).
    pub scale_rewards_by_std: bool,
    /// Dynamic sampling (DAPO; verl's `algorithm.filter_groups`): groups
    /// whose G rewards are all equal carry no policy gradient, so they are
    /// dropped and more prompts are drawn, up to `max_sampling_rounds`
    /// rollout rounds, until `prompts_per_step` groups with signal are
    /// collected (fewer if the rounds run out). Paper: off.
    pub dynamic_sampling: bool,
    /// With `dynamic_sampling`: rollout rounds per step at most, each of
    /// `prompts_per_step` new prompts (verl's `max_num_gen_batches`).
    pub max_sampling_rounds: usize,
    /// ε in `(r − mean) / (std + ε)` (verl: 1e-6).
    pub advantage_eps: f64,
    /// Loss aggregation: `token-mean` over the mini-batch (default),
    /// `seq-mean`, or `verl-micro-token-mean`, the released verl's (see
    /// [`LossAgg`] for the difference).
    pub loss_agg: LossAgg,
    /// Optimisation epochs over each rollout batch (verl's `ppo_epochs: 1`).
    pub epochs: usize,
    /// Prompts per optimiser step: 256 (verl's default
    /// `ppo_mini_batch_size: 256`, which the released script does not
    /// change), i.e. 1280 sequences and 4 updates per 1024-prompt step. Need
    /// not divide `prompts_per_step`: a last, smaller mini-batch still uses
    /// the rollout policy as π_old.
    pub mini_batch_prompts: usize,
    /// Sequences per forward/backward pass (gradient accumulation). A
    /// prompt's G sequences go to the same micro-batch where they fit, so
    /// that the prompt runs once. On the CPU one micro-batch per rayon
    /// thread runs at a time, so peak activation memory is that many
    /// micro-batches'.
    pub micro_batch_seqs: usize,
    /// Temperature at which log-probs are scored (verl scores at the rollout
    /// temperature). Absent: `temperature`.
    pub score_temperature: Option<f64>,
    /// Reward rule name (see `toolgym score --list-rules`). Default
    /// `binary`: the paper's rule as §4.3 states it (one think block, then
    /// the calls, matched order-free), which the released script
    /// (`compute_score_v0`, reproduced as `tool-n1`) loosens: it reads
    /// only the last call block and finds the think tags anywhere, which a
    /// policy can exploit. `tool-n1` trains on the script's reward exactly;
    /// the differences are tabulated in the `toolgym-reward` crate docs.
    pub reward_rule: String,
    /// Optimiser.
    pub optim: OptimConfig,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            steps: None,
            data_epochs: 7,
            group_size: 5,
            prompts_per_step: 1024,
            temperature: 0.7,
            top_p: 1.0,
            top_k: 0,
            sampling_place: SamplingPlace::Auto,
            max_prompt_tokens: 4096,
            overlong_prompts: OverlongPrompts::Drop,
            max_response_tokens: 8192,
            max_turns: 8,
            max_episode_tokens: 12288,
            episode_reward: EpisodeReward::Sum,
            env_timeout_s: 600.0,
            env_concurrency: crate::rollout::ENV_CONCURRENCY,
            stop_at_env_failure_share: 1.0,
            env_failures: EnvFailures::LeaveOut,
            env_failure_reward: 0.0,
            clip_low: 0.2,
            clip_high: 0.2,
            kl_coef: 1e-3,
            entropy_coef: 0.0,
            scale_rewards_by_std: true,
            dynamic_sampling: false,
            max_sampling_rounds: 4,
            advantage_eps: 1e-6,
            loss_agg: LossAgg::TokenMean,
            epochs: 1,
            mini_batch_prompts: 256,
            micro_batch_seqs: 8,
            score_temperature: None,
            reward_rule: "binary".into(),
            optim: OptimConfig::default(),
        }
    }
}

impl GrpoConfig {
    /// The limits of this config's rollouts.
    pub fn rollout_limits(&self) -> RolloutLimits {
        RolloutLimits {
            max_prompt_tokens: self.max_prompt_tokens,
            truncate_prompts: self.overlong_prompts == OverlongPrompts::TruncateLeft,
            max_response_tokens: self.max_response_tokens,
            max_turns: self.max_turns,
            max_episode_tokens: self.max_episode_tokens,
            reward: self.episode_reward,
            env_timeout: env_timeout(self.env_timeout_s),
            env_concurrency: self.env_concurrency,
        }
    }

    /// The steps to run on a source of `tasks` tasks (`None`: unbounded):
    /// `steps`, or `ceil(data_epochs × tasks / prompts_per_step)`.
    pub fn total_steps(&self, tasks: Option<usize>) -> Result<usize, TrainError> {
        match (self.steps, tasks) {
            (Some(s), _) => Ok(s),
            (None, Some(n)) => match self.data_epochs.checked_mul(n) {
                Some(episodes) => Ok(episodes.div_ceil(self.prompts_per_step.max(1))),
                None => Err(TrainError::Config(format!(
                    "grpo.data_epochs = {} over {n} tasks is more prompts than can be counted",
                    self.data_epochs
                ))),
            },
            (None, None) => Err(TrainError::Config(
                "grpo.steps must be set when the training tasks come from a generator \
                 (grpo.data_epochs needs a finite task file)"
                    .into(),
            )),
        }
    }

    /// Checks values that would make a run meaningless.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        check_env_timeout("grpo.env_timeout_s", self.env_timeout_s)?;
        let share = self.stop_at_env_failure_share;
        number(
            "grpo.stop_at_env_failure_share",
            share,
            share > 0.0,
            "above 0 (above 1 never stops)",
        )?;
        let failure = self.env_failure_reward;
        number(
            "grpo.env_failure_reward",
            failure,
            failure.is_finite() && failure.abs() <= 1e12,
            "finite and at most 1e12 in magnitude",
        )?;
        if failure != 0.0 && self.env_failures == EnvFailures::LeaveOut {
            return bad(format!(
                "grpo.env_failure_reward = {failure} is only used with grpo.env_failures = \
                 \"scored\"; with \"leave-out\" (the default) failures are not scored"
            ));
        }
        if self.group_size < 2 {
            return bad(format!(
                "grpo.group_size must be at least 2 (got {})",
                self.group_size
            ));
        }
        if self.dynamic_sampling && self.max_sampling_rounds == 0 {
            return Err(TrainError::Config(
                "grpo.max_sampling_rounds must be at least 1 with grpo.dynamic_sampling".into(),
            ));
        }
        if self.prompts_per_step == 0 || self.mini_batch_prompts == 0 || self.micro_batch_seqs == 0
        {
            return bad(
                "grpo.prompts_per_step, mini_batch_prompts and micro_batch_seqs must be positive"
                    .into(),
            );
        }
        let sampling_ok = self.temperature >= 0.0 && self.top_p > 0.0 && self.top_p <= 1.0;
        if !sampling_ok {
            return bad(format!(
                "grpo.temperature must be ≥ 0 and top_p in (0, 1] (got {}, {})",
                self.temperature, self.top_p
            ));
        }
        // Greedy sampling gives the G replies of a prompt as one: no group
        // has a reward spread, and no step trains (a temperature near 0
        // also overflows the scaled logits).
        if self.temperature < 1e-3 || self.top_k == 1 {
            return bad(format!(
                "grpo.temperature = {} with top_k = {} samples (nearly) greedily: the {} \
                 replies of a prompt would be the same and GRPO would learn nothing; use a \
                 temperature of at least 0.001 (the paper: 0.7) and top_k 0 or above 1",
                self.temperature, self.top_k, self.group_size
            ));
        }
        let clip_high = self.clip_high;
        number(
            "grpo.clip_low",
            self.clip_low,
            (0.0..1.0).contains(&self.clip_low),
            "in [0, 1)",
        )?;
        number(
            "grpo.clip_high",
            clip_high,
            clip_high >= 0.0 && clip_high.is_finite(),
            "≥ 0 and finite",
        )?;
        number(
            "grpo.temperature",
            self.temperature,
            self.temperature.is_finite(),
            "finite",
        )?;
        number(
            "grpo.kl_coef",
            self.kl_coef,
            self.kl_coef >= 0.0 && self.kl_coef.is_finite(),
            "≥ 0",
        )?;
        number(
            "grpo.entropy_coef",
            self.entropy_coef,
            self.entropy_coef.is_finite(),
            "finite",
        )?;
        let eps = self.advantage_eps;
        // 0 with the std scaling would divide a group of equal rewards'
        // 0 by 0 (or rounding noise by rounding noise): NaN advantages,
        // every update skipped, no step trained.
        number(
            "grpo.advantage_eps",
            eps,
            eps.is_finite() && (eps > 0.0 || (eps == 0.0 && !self.scale_rewards_by_std)),
            "> 0 (≥ 0 with grpo.scale_rewards_by_std = false)",
        )?;
        if let Some(t) = self.score_temperature {
            number("grpo.score_temperature", t, t > 0.0 && t.is_finite(), "> 0")?;
        }
        self.optim.validate("grpo.optim")?;
        if self.epochs == 0 || self.max_response_tokens == 0 || self.max_turns == 0 {
            return bad(
                "grpo.epochs, grpo.max_response_tokens and grpo.max_turns must be positive".into(),
            );
        }
        if self.max_prompt_tokens == 0 || self.data_epochs == 0 {
            return bad("grpo.max_prompt_tokens and grpo.data_epochs must be positive".into());
        }
        // Far beyond any run, and small enough that the step and optimizer
        // step counts made from them cannot overflow.
        for (key, value, most) in [
            ("grpo.steps", self.steps.unwrap_or(0), MAX_STEPS),
            ("grpo.epochs", self.epochs, MAX_EPOCHS),
            ("grpo.data_epochs", self.data_epochs, MAX_EPOCHS),
            ("grpo.group_size", self.group_size, MAX_GROUP),
            ("grpo.prompts_per_step", self.prompts_per_step, MAX_BATCH),
            (
                "grpo.mini_batch_prompts",
                self.mini_batch_prompts,
                MAX_BATCH,
            ),
            ("grpo.micro_batch_seqs", self.micro_batch_seqs, MAX_BATCH),
        ] {
            count_at_most(key, value, most)?;
        }
        check_env_concurrency("grpo.env_concurrency", self.env_concurrency)?;
        if self.max_episode_tokens != 0 && self.max_episode_tokens <= self.max_prompt_tokens {
            // A first prompt of the longest length kept would leave the
            // model no token: its episode would end before it began.
            return bad(format!(
                "grpo.max_episode_tokens ({}) must exceed grpo.max_prompt_tokens ({}), or be 0 \
                 (no limit but the model's context): the default, 12288, is not raised with \
                 max_prompt_tokens; max_prompt_tokens + max_response_tokens would be {}",
                self.max_episode_tokens,
                self.max_prompt_tokens,
                self.max_prompt_tokens
                    .saturating_add(self.max_response_tokens)
            ));
        }
        Ok(())
    }
}

/// SFT hyperparameters (SFT baselines, warm starts). The defaults suit
/// the built-in demo, not the paper's SFT baseline, whose released script
/// (`qwen_sft.sh`, LLaMA-Factory) trains Qwen2.5-7B-Instruct at lr 2e-5
/// for 20 epochs, 4 sequences per device with 8 accumulation steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Examples per optimiser step.
    pub batch_size: usize,
    /// Examples per forward/backward pass. On the CPU one micro-batch per
    /// rayon thread runs at a time; for the built-in model small ones are
    /// fastest (README, "SFT step against TRL").
    pub micro_batch_seqs: usize,
    /// Most tokens per example (prompt plus demonstration, every turn of a
    /// multi-turn one); longer examples are left out and counted.
    pub max_seq_tokens: usize,
    /// Most turns of a demonstration episode.
    pub max_turns: usize,
    /// Seconds an env call may take (as `grpo.env_timeout_s`); 0: no
    /// limit. Default 600.
    pub env_timeout_s: f64,
    /// Demonstration episodes whose env calls run at once, with a time
    /// limit (as `grpo.env_concurrency`); 0 (the default): one per compute
    /// thread.
    pub env_concurrency: usize,
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
            max_turns: 8,
            env_timeout_s: 600.0,
            env_concurrency: crate::rollout::ENV_CONCURRENCY,
            optim: OptimConfig {
                lr: 1e-5,
                ..OptimConfig::default()
            },
        }
    }
}

impl SftConfig {
    /// The env-call limit of its rollouts.
    pub fn env_timeout(&self) -> Option<std::time::Duration> {
        env_timeout(self.env_timeout_s)
    }

    /// Checks values that would make a run meaningless.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.batch_size == 0
            || self.micro_batch_seqs == 0
            || self.max_turns == 0
            || self.max_seq_tokens == 0
        {
            return Err(TrainError::Config(
                "sft.batch_size, sft.micro_batch_seqs, sft.max_turns and sft.max_seq_tokens must \
                 be positive"
                    .into(),
            ));
        }
        count_at_most("sft.batch_size", self.batch_size, MAX_BATCH)?;
        count_at_most("sft.micro_batch_seqs", self.micro_batch_seqs, MAX_BATCH)?;
        self.optim.validate("sft.optim")?;
        check_env_concurrency("sft.env_concurrency", self.env_concurrency)?;
        check_env_timeout("sft.env_timeout_s", self.env_timeout_s)
    }
}

/// Output, seeds, checkpoints and validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    /// Run directory: `config.toml` (this config, recorded), `metrics.jsonl`,
    /// `sft/checkpoints/` and `grpo/checkpoints/`, `grpo/reference/` (the
    /// KL reference), `final/` (the trained policy), and the plots
    /// `toolgym plot` writes.
    pub out_dir: PathBuf,
    /// Seed of everything random (data order, sampling, initialisation).
    pub seed: u64,
    /// Checkpoint every N steps (0 = only at the end).
    pub save_every: usize,
    /// Checkpoints to keep (0 = all).
    pub keep_checkpoints: usize,
    /// Validate every N steps (0 = only before and after; see
    /// `val_before_train` for the "before").
    pub eval_every: usize,
    /// Validate GRPO's policy before its first step (the "before" of the
    /// report and the step-0 metrics line), and again when a run resumes.
    /// The paper's script sets verl's `val_before_train=False`; skipping
    /// it saves the time of one validation and changes no update (unless
    /// the env factory keeps state that validation episodes change). When
    /// SFT ran in the same invocation (`toolgym train all`), its last
    /// validation is the "before" at no cost, whatever this says.
    pub val_before_train: bool,
    /// Validation tasks to use (0 = all).
    pub eval_tasks: usize,
    /// Besides greedy replies, score this many sampled replies per
    /// validation task (0 = greedy only).
    pub eval_samples: usize,
    /// Temperature of the sampled validation replies.
    pub eval_temperature: f64,
    /// Resume from the latest checkpoint in `out_dir` if there is one.
    pub resume: bool,
    /// When the latest checkpoint cannot be read (truncated, corrupt,
    /// `latest` naming nothing), resume from the newest older one that
    /// loads instead of stopping with the error.
    pub resume_fallback: bool,
    /// Show a progress bar on a terminal.
    pub progress: bool,
    /// Resume even when the run directory's recorded config differs from
    /// this one in more than run bookkeeping, or the checkpoint's run drew
    /// from other training tasks (`--force`; the task mismatch is warned
    /// about on stderr).
    pub force: bool,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            out_dir: PathBuf::from("runs/default"),
            seed: 0,
            save_every: 10,
            keep_checkpoints: 3,
            eval_every: 10,
            val_before_train: true,
            eval_tasks: 0,
            eval_samples: 0,
            eval_temperature: 0.7,
            resume: true,
            resume_fallback: false,
            progress: true,
            force: false,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file, then applies `section.key=value` overrides (values
    /// are TOML literals; bare words are strings).
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self, TrainError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| TrainError::io("read", p, e))?;
                Self::parse(&text, &p.display().to_string(), overrides)
            }
            None => Self::parse("", "the overrides", overrides),
        }
    }

    /// Parses TOML text (`origin` names it in errors), then applies the
    /// overrides, as [`TrainConfig::load`] does.
    ///
    /// ```
    /// use toolgym_grpo::TrainConfig;
    /// let c = TrainConfig::parse("[grpo]\ngroup_size = 4", "inline", &["run.seed=3".into()]).unwrap();
    /// assert_eq!((c.grpo.group_size, c.run.seed), (4, 3));
    /// assert!(TrainConfig::parse("[grpo]\ngroup_size = -1", "inline", &[]).unwrap_err().to_string().contains("inline"));
    /// ```
    pub fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self, TrainError> {
        let cfg: TrainConfig = if overrides.is_empty() {
            // Read from the text itself, an error names its line and
            // column (a table read first would have lost them).
            toml::from_str(text).map_err(|e| TrainError::Config(format!("{origin}: {e}")))?
        } else {
            let mut table = text
                .parse::<toml::Table>()
                .map_err(|e| TrainError::Config(format!("{origin}: {e}")))?;
            for o in overrides {
                apply_override(&mut table, o)?;
            }
            // After overrides, an error may be theirs: say so.
            let whence = format!("{origin} with --set {}", overrides.join(" --set "));
            toml::Value::Table(table)
                .try_into()
                .map_err(|e| TrainError::Config(format!("{whence}: {e}")))?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuses a user's overrides that set one key twice (a slip: the
    /// last would win silently). [`TrainConfig::parse`] lets a later
    /// override win, so a program can put the user's after its own.
    ///
    /// ```
    /// use toolgym_grpo::TrainConfig;
    /// assert!(TrainConfig::check_distinct_overrides(&["run.seed=1".into(), "grpo.steps=2".into()]).is_ok());
    /// let e = TrainConfig::check_distinct_overrides(&["run.seed=1".into(), " run.seed =2".into()]);
    /// assert!(e.unwrap_err().to_string().contains(r#"--set "run.seed=1" and --set " run.seed =2""#));
    /// ```
    pub fn check_distinct_overrides(overrides: &[String]) -> Result<(), TrainError> {
        for (i, o) in overrides.iter().enumerate() {
            let Some(k) = override_key(o) else { continue };
            if let Some(first) = overrides[..i].iter().find(|p| override_key(p) == Some(k)) {
                return Err(TrainError::Config(format!(
                    "--set {first:?} and --set {o:?} set the same key: give it once"
                )));
            }
        }
        Ok(())
    }

    /// Refuses a user's override of a key that a command-line flag the
    /// user gave sets too (`flags`: the flag and its key), such as
    /// `--force` with `--set run.force=false`: one of the two would win
    /// silently.
    ///
    /// ```
    /// use toolgym_grpo::TrainConfig;
    /// let given = [("--force", "run.force")];
    /// assert!(TrainConfig::check_flags_not_overridden(&given, &["run.seed=1".into()]).is_ok());
    /// let e = TrainConfig::check_flags_not_overridden(&given, &["run.force=false".into()]);
    /// assert!(e.unwrap_err().to_string().contains(r#"--force and --set "run.force=false" both set run.force"#));
    /// ```
    pub fn check_flags_not_overridden(
        flags: &[(&str, &str)],
        overrides: &[String],
    ) -> Result<(), TrainError> {
        for o in overrides {
            let Some(k) = override_key(o) else { continue };
            if let Some((flag, key)) = flags.iter().find(|(_, key)| *key == k) {
                return Err(TrainError::Config(format!(
                    "{flag} and --set {o:?} both set {key}: give one"
                )));
            }
        }
        Ok(())
    }

    /// Checks values that would make a run meaningless.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.run.out_dir.as_os_str().is_empty() {
            return Err(TrainError::Config(
                "run.out_dir is empty: name the run directory (\".\" for this one)".into(),
            ));
        }
        let t = self.run.eval_temperature;
        number("run.eval_temperature", t, t >= 0.0 && t.is_finite(), "≥ 0")?;
        // Counts past these ask for buffers no machine has: refused here
        // rather than a capacity overflow or an allocation failure later.
        count_at_most("run.eval_samples", self.run.eval_samples, MAX_GROUP)?;
        if let Some(model) = &self.model.path {
            self.check_model_outside_run(model)?;
        }
        if self.run.eval_samples > 0 && t == 0.0 {
            return Err(TrainError::Config(format!(
                "run.eval_samples = {} with run.eval_temperature = 0: each sampled reply would \
                 be the greedy one; set a temperature (the paper's 0.7) or eval_samples = 0",
                self.run.eval_samples
            )));
        }
        if let Some(std) = self.model.builtin.init_std {
            number(
                "model.builtin.init_std",
                std,
                std > 0.0 && std.is_finite(),
                "> 0 and finite",
            )?;
        }
        // Read here (not opened: that is for the run), so a misspelt
        // device is refused before the data is read.
        toolgym_model::cli::device_ordinal(&self.model.device)
            .map_err(|e| TrainError::Config(format!("model.device: {e}")))?;
        if self.model.path.is_none() {
            self.model.builtin.check_shape()?;
        }
        if crate::parse_dtype(&self.model.dtype)? == toolgym_model::candle_core::DType::F16 {
            // Refused here too, before a model is loaded for nothing.
            return Err(f16_refused(&format!(
                "model.dtype = {:?}",
                self.model.dtype
            )));
        }
        self.grpo.validate()?;
        self.sft.validate()
    }
}

impl TrainConfig {
    /// Sections set away from their defaults that this config's run does
    /// not read, each said as a line for a warning: `data.synthetic` with
    /// a task file, `model.builtin` with a model directory,
    /// `grpo.max_sampling_rounds` without dynamic sampling.
    pub fn unused_settings(&self) -> Vec<String> {
        let mut unused = Vec::new();
        if self.data.train.is_some() && self.data.synthetic != SyntheticSection::default() {
            unused.push(
                "data.synthetic is set but not used: the tasks come from data.train".to_string(),
            );
        }
        if self.model.path.is_some() && self.model.builtin != crate::BuiltinPolicy::default() {
            unused.push(
                "model.builtin is set but not used: the model comes from model.path".to_string(),
            );
        }
        if !self.grpo.dynamic_sampling
            && self.grpo.max_sampling_rounds != GrpoConfig::default().max_sampling_rounds
        {
            unused.push(
                "grpo.max_sampling_rounds is set but not used: grpo.dynamic_sampling is off"
                    .to_string(),
            );
        }
        unused
    }

    /// The settings a caller's own [`crate::pipeline::TaskSetup`] takes
    /// the place of, where this config sets them (`data.*`, read only to
    /// build the config's own tasks and envs, and `grpo.reward_rule`, the
    /// reward of those envs), each said as a line for a warning: with
    /// [`crate::pipeline::run_with`] the setup's factory decides the
    /// tasks, the prompt template and the reward.
    ///
    /// ```
    /// use toolgym_grpo::TrainConfig;
    /// assert!(TrainConfig::default().settings_a_task_setup_replaces().is_empty());
    /// let cfg = TrainConfig::parse("[grpo]\nreward_rule = \"fine-grained\"", "my.toml", &[]).unwrap();
    /// assert!(cfg.settings_a_task_setup_replaces()[0].starts_with("grpo.reward_rule is set but not used"));
    /// ```
    pub fn settings_a_task_setup_replaces(&self) -> Vec<String> {
        let data = DataSection::default();
        let set = [
            ("data.train", self.data.train.is_some()),
            ("data.validation", self.data.validation.is_some()),
            ("data.template", self.data.template != data.template),
            ("data.synthetic", self.data.synthetic != data.synthetic),
            (
                "grpo.reward_rule",
                self.grpo.reward_rule != GrpoConfig::default().reward_rule,
            ),
        ];
        set.into_iter()
            .filter(|(_, set)| *set)
            .map(|(key, _)| {
                format!(
                    "{key} is set but not used: the environments and tasks given to run_with \
                     decide the tasks, their prompt template and the reward"
                )
            })
            .collect()
    }

    /// Refuses a `model.path` inside what the run writes and rewrites in
    /// `run.out_dir` (its `final` policy, its phases' checkpoints): the
    /// model the run starts from would be replaced or pruned under it, and
    /// a later resume would read another model.
    fn check_model_outside_run(&self, model: &std::path::Path) -> Result<(), TrainError> {
        // Both as the file system resolves them (`..`, links, a `final`
        // that is a link): a model that does not exist is refused when it
        // is loaded, and nothing exists under a part that does not.
        let Ok(model_real) = std::fs::canonicalize(model) else {
            return Ok(());
        };
        for part in ["final", "sft", "grpo"] {
            let written = self.run.out_dir.join(part);
            let Ok(written_real) = std::fs::canonicalize(&written) else {
                continue;
            };
            if model_real.starts_with(&written_real) {
                return Err(TrainError::Config(format!(
                    "model.path {} is inside {}, which this run writes (its final policy, its \
                     checkpoints): the model would be replaced or pruned under the run; copy it \
                     out, or use another run.out_dir",
                    model.display(),
                    written.display()
                )));
            }
        }
        Ok(())
    }
}

/// Why training in f16 is refused (`what` says where it was asked for):
/// toolgym does no loss scaling, and at a paper-scale mini-batch (a token
/// weighs 1/384k) f16 gradients of the logits underflow, the k3 term's to
/// exactly 0 at β = 1e-3. The config and every trainer's phase say it.
pub(crate) fn f16_refused(what: &str) -> TrainError {
    TrainError::Config(format!(
        "{what}: f16 training needs loss scaling, which toolgym does not do (small gradients \
         underflow to 0); train in bf16 (as the paper did) or f32"
    ))
}

/// Keys that may change between invocations of one run: where it writes,
/// how often it checkpoints and validates, how it reports, how long it
/// waits for an env.
pub const BOOKKEEPING_KEYS: [&str; 16] = [
    "run.out_dir",
    "run.resume",
    "run.resume_fallback",
    "run.progress",
    "run.force",
    "run.save_every",
    "run.keep_checkpoints",
    "run.eval_every",
    "run.val_before_train",
    "run.eval_tasks",
    "run.eval_samples",
    "run.eval_temperature",
    "grpo.env_timeout_s",
    "grpo.env_concurrency",
    "sft.env_timeout_s",
    "sft.env_concurrency",
];

/// `env_timeout_s` as a rollout's limit (0, or a value no `Duration`
/// holds: none).
fn env_timeout(seconds: f64) -> Option<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
}

/// Refuses a count past `most`, naming `key`: step counts whose products
/// would overflow, or buffers no machine holds (refused here rather than a
/// capacity overflow or an allocation failure later).
fn count_at_most(key: &str, value: usize, most: usize) -> Result<(), TrainError> {
    if value > most {
        return Err(TrainError::Config(format!(
            "{key} must be at most {most} (got {value})"
        )));
    }
    Ok(())
}

/// The most samples per prompt (`grpo.group_size`, `run.eval_samples`).
const MAX_GROUP: usize = 1 << 16;
/// The most prompts or sequences in a batch.
const MAX_BATCH: usize = 1 << 24;
/// The most `grpo.steps` a config may ask for.
const MAX_STEPS: usize = 1_000_000_000;
/// The most `grpo.epochs` and `grpo.data_epochs` a config may ask for.
const MAX_EPOCHS: usize = 1_000_000;

/// `Ok` when `ok`, else an error naming `key`, what it must be and what it
/// is (NaN and infinities fail every range).
pub(crate) fn number(key: &str, value: f64, ok: bool, must_be: &str) -> Result<(), TrainError> {
    if ok {
        Ok(())
    } else {
        Err(TrainError::Config(format!(
            "{key} must be {must_be} (got {value})"
        )))
    }
}

/// Checks an `env_timeout_s` value: 0, or a time from a millisecond to
/// 1e9 seconds.
fn check_env_timeout(key: &str, seconds: f64) -> Result<(), TrainError> {
    let ok = seconds == 0.0 || (1e-3..=1e9).contains(&seconds);
    number(
        key,
        seconds,
        ok,
        "0 (no limit) or between 0.001 and 1e9 seconds",
    )
}

/// Checks an `env_concurrency` value: 0 (one per compute thread) up to
/// [`crate::rollout::MAX_ENV_CONCURRENCY`].
fn check_env_concurrency(key: &str, n: usize) -> Result<(), TrainError> {
    let most = crate::rollout::MAX_ENV_CONCURRENCY;
    if n > most {
        return Err(TrainError::Config(format!(
            "{key} ({n}) must be at most {most} (0: one per compute thread)"
        )));
    }
    Ok(())
}

/// The file a run directory records its resolved config in.
pub const CONFIG_FILE: &str = "config.toml";
/// The first line of a recorded config: how a run directory's
/// `config.toml` is told from a user's own file.
pub const RECORD_HEADER: &str =
    "# The resolved config of this run, recorded by toolgym (resume checks against it).\n";

impl TrainConfig {
    /// The config as TOML, every key resolved (defaults included).
    pub fn to_toml(&self) -> Result<String, TrainError> {
        toml::to_string(self).map_err(|e| TrainError::Config(format!("writing the config: {e}")))
    }

    /// The keys (dotted paths) whose values differ from `other`, run
    /// bookkeeping left out.
    pub fn differing_keys(&self, other: &TrainConfig) -> Result<Vec<String>, TrainError> {
        let as_table = |c: &TrainConfig| {
            toml::Table::try_from(c).map_err(|e| TrainError::Config(e.to_string()))
        };
        let (a, b) = (as_table(self)?, as_table(other)?);
        let mut out = Vec::new();
        diff_tables("", &a, &b, &mut out);
        out.retain(|k| !BOOKKEEPING_KEYS.contains(&k.as_str()));
        Ok(out)
    }

    /// Refuses to go on training a phase (`continuing`: its checkpoints are
    /// resumed) in a run directory that holds no recorded config, unless
    /// `run.force`: the settings its checkpoints were trained with cannot
    /// be checked, and the run went on silently at any (another learning
    /// rate, another seed). A phase that starts there from another's
    /// result (GRPO from a finished SFT phase copied in) is not refused.
    pub fn check_record_exists(&self, continuing: bool) -> Result<(), TrainError> {
        let path = self.run.out_dir.join(CONFIG_FILE);
        if !continuing || !self.run.resume || self.run.force || path.exists() {
            return Ok(());
        }
        Err(TrainError::Config(format!(
            "{} holds checkpoints but no recorded config ({} is missing): the settings they \
             were trained with cannot be checked against these; put the run's config.toml \
             back, or pass --force to resume with these settings",
            self.run.out_dir.display(),
            path.display()
        )))
    }

    /// Records the config in `run.out_dir/config.toml`; when the run
    /// resumes (`resuming`) and one is recorded, refuses to go on if they
    /// differ in anything but run bookkeeping (unless `run.force`), naming
    /// the keys.
    pub fn record(&self, resuming: bool) -> Result<(), TrainError> {
        self.check_recorded(resuming)?;
        self.write_record()
    }

    /// The check of [`TrainConfig::record`] alone: when resuming, the
    /// recorded config must not differ (but in bookkeeping) unless
    /// `run.force`.
    pub fn check_recorded(&self, resuming: bool) -> Result<(), TrainError> {
        self.check_recorded_for(resuming, &[])
    }

    /// [`TrainConfig::check_recorded`], the keys under the sections
    /// `free` (such as `"grpo."`) left out: those of a phase that has not
    /// run in the directory (GRPO that starts from a finished SFT phase;
    /// SFT in a run that went to GRPO straight from the model) cannot
    /// have changed what is recorded there.
    pub fn check_recorded_for(&self, resuming: bool, free: &[&str]) -> Result<(), TrainError> {
        let dir = &self.run.out_dir;
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if resuming && path.is_file() => return Err(TrainError::io("read", &path, e)),
            Err(_) => return Ok(()),
        };
        // A run records its config there: a file that is not such a record
        // (no header, and no run has written metrics beside it) is the
        // user's own, and is not replaced.
        let a_run = text.starts_with(RECORD_HEADER) || dir.join(METRICS_FILE).is_file();
        if !a_run && !self.run.force {
            return Err(TrainError::Config(format!(
                "{} is not a run's recorded config (toolgym writes the resolved config of a run \
                 there): keep your own config elsewhere, choose another run.out_dir, or pass \
                 --force to replace it",
                path.display()
            )));
        }
        if resuming {
            let recorded: TrainConfig = match toml::from_str(&text) {
                Ok(r) => r,
                // A record that does not parse (a newer version's) is
                // replaced under --force.
                Err(_) if self.run.force => return Ok(()),
                Err(e) => {
                    return Err(TrainError::Config(format!(
                        "{}: {e} (pass --force to replace it)",
                        path.display()
                    )))
                }
            };
            let mut differ = self.differing_keys(&recorded)?;
            differ.retain(|k| !free.iter().any(|section| k.starts_with(section)));
            if !differ.is_empty() && !self.run.force {
                return Err(TrainError::Config(format!(
                    "{} holds a run with a different config ({}); resume with the same \
                     settings, start a new run directory (run.out_dir; --out in the examples), \
                     start over in this one (run.resume=false; --fresh in the examples), or \
                     resume it with these settings anyway (--force, run.force=true)",
                    dir.display(),
                    differ.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Writes the config to `run.out_dir/config.toml` (atomically), after
    /// [`RECORD_HEADER`] ([`TrainConfig::check_recorded`] has refused to
    /// replace a user's own file there).
    pub fn write_record(&self) -> Result<(), TrainError> {
        let dir = &self.run.out_dir;
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io("create", dir, e))?;
        let path = dir.join(CONFIG_FILE);
        let text = format!("{RECORD_HEADER}{}", self.to_toml()?);
        crate::checkpoint::write_atomically(&path, text.as_bytes())
    }
}

fn diff_tables(prefix: &str, a: &toml::Table, b: &toml::Table, out: &mut Vec<String>) {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (a.get(k), b.get(k)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                diff_tables(&path, x, y, out)
            }
            (x, y) if x != y => out.push(path),
            _ => {}
        }
    }
}

/// The key an override `key=value` sets, trimmed (`None` without `=`).
fn override_key(spec: &str) -> Option<&str> {
    spec.split_once('=').map(|(k, _)| k.trim())
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
    fn a_config_files_errors_name_the_line() {
        let text = "[grpo]\ngroup_size = 4\n\nkl_coeff = 0.1\n";
        let e = TrainConfig::parse(text, "c.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml") && e.contains("line 4") && e.contains("kl_coeff"),
            "{e}"
        );
        let e = TrainConfig::parse("[run]\nseed = \"x\"\n", "c.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("seed"), "{e}");
        // With overrides the error may be theirs: said so.
        let e = TrainConfig::parse(text, "c.toml", &["run.seed=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("with --set run.seed=1"), "{e}");
    }

    #[test]
    fn recorded_configs_are_told_from_users_and_grpo_keys_are_free_before_grpo() {
        let dir = std::env::temp_dir().join(format!("toolgym-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = TrainConfig::default();
        cfg.run.out_dir = dir.clone();
        // A user's own config.toml in a directory no run has used: kept.
        let mine = "# my settings\n[grpo]\nkl_coef = 0.0\n";
        std::fs::write(dir.join(CONFIG_FILE), mine).unwrap();
        let e = cfg.check_recorded(false).unwrap_err().to_string();
        assert!(e.contains("is not a run's recorded config"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap(),
            mine
        );
        // A record: GRPO's own keys may change until GRPO has started.
        cfg.write_record().unwrap();
        let mut changed = cfg.clone();
        changed.grpo.kl_coef = 0.0;
        changed.check_recorded_for(true, &["grpo."]).unwrap();
        let e = changed
            .check_recorded_for(true, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("grpo.kl_coef"), "{e}");
        changed.sft.optim.lr = 1.0;
        let e = changed
            .check_recorded_for(true, &["grpo."])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sft.optim.lr") && !e.contains("grpo.kl_coef"),
            "{e}"
        );
        // SFT's keys are free where no SFT phase ran.
        changed
            .check_recorded_for(true, &["grpo.", "sft."])
            .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        // A later override wins (programs put the user's after their own).
        let c = TrainConfig::parse("", "inline", &["run.seed=1".into(), "run.seed=2".into()]);
        assert_eq!(c.unwrap().run.seed, 2);
        // Errors after --set name the overrides, not only the file.
        let e = TrainConfig::parse("", "ok.toml", &["grpo.kl_coeff=0".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ok.toml with --set grpo.kl_coeff=0"), "{e}");
        let e = TrainConfig::parse("", "x", &["run.out_dir=\"\"".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.out_dir is empty"), "{e}");
    }

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
            (1024, 256)
        );
        assert_eq!(
            (c.grpo.max_prompt_tokens, c.grpo.max_response_tokens),
            (4096, 8192)
        );
        assert_eq!(c.grpo.max_episode_tokens, 4096 + 8192);
        assert_eq!(c.grpo.overlong_prompts, OverlongPrompts::Drop);
        assert_eq!((c.grpo.steps, c.grpo.data_epochs), (None, 7));
        assert_eq!(c.grpo.optim.schedule, crate::Schedule::Constant);
        // 7 epochs of xLAM + ToolACE as the paper prepared them (Table 1's
        // 60k + 12.6k single-step tasks, before filtering) in 1024-prompt
        // steps; a generator needs explicit steps.
        assert_eq!(c.grpo.total_steps(Some(1024)).unwrap(), 7);
        assert_eq!(c.grpo.total_steps(Some(1025)).unwrap(), 8);
        assert!(c.grpo.total_steps(None).is_err());
    }

    #[test]
    fn a_resumed_run_with_another_config_is_refused() {
        let dir = std::env::temp_dir().join(format!("toolgym-rec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = format!("run.out_dir={:?}", dir.display().to_string());
        let cfg = TrainConfig::load(None, std::slice::from_ref(&out)).unwrap();
        cfg.record(false).unwrap();
        assert!(dir.join(CONFIG_FILE).is_file());
        // Bookkeeping may change.
        let more = TrainConfig::load(None, &[out.clone(), "run.eval_every=3".into()]).unwrap();
        more.record(true).unwrap();
        // Anything else may not, and the error names the keys.
        let other = TrainConfig::load(
            None,
            &[out.clone(), "grpo.kl_coef=0.0".into(), "run.seed=4".into()],
        )
        .unwrap();
        let e = other.record(true).unwrap_err().to_string();
        assert!(e.contains("grpo.kl_coef") && e.contains("run.seed"), "{e}");
        assert!(!e.contains("eval_every"), "{e}");
        // A phase that goes on where the record is gone: refused, unless
        // forced (the message in one line).
        std::fs::remove_file(dir.join(CONFIG_FILE)).unwrap();
        let e = other.check_record_exists(true).unwrap_err().to_string();
        assert!(
            e.contains("no recorded config") && e.contains("--force"),
            "{e}"
        );
        assert!(!e.contains("  "), "{e}");
        other.check_record_exists(false).unwrap();
        more.record(false).unwrap();
        // Unless forced; a fresh run simply records.
        let forced = TrainConfig::load(
            None,
            &[out, "grpo.kl_coef=0.0".into(), "run.force=true".into()],
        )
        .unwrap();
        forced.record(true).unwrap();
        other.record(false).unwrap();
        std::fs::remove_dir_all(&dir).ok();
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

    #[test]
    fn failures_are_scored_by_either_name_at_their_reward() {
        for name in ["scored", "zero-reward"] {
            let c = TrainConfig::load(
                None,
                &[
                    format!("grpo.env_failures=\"{name}\""),
                    "grpo.env_failure_reward=-1.0".into(),
                ],
            )
            .unwrap();
            assert_eq!(c.grpo.env_failures, EnvFailures::Scored);
            assert_eq!(c.grpo.env_failure_reward, -1.0);
        }
        let e = TrainConfig::load(
            None,
            &[
                "grpo.env_failures=\"scored\"".into(),
                "grpo.env_failure_reward=1e13".into(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("grpo.env_failure_reward"), "{e}");
        let e = TrainConfig::load(None, &["grpo.env_failure_reward=-1.0".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"scored\""), "{e}");
    }

    #[test]
    fn numbers_that_make_no_sense_are_refused_by_name() {
        for (set, key) in [
            ("grpo.optim.lr=nan", "grpo.optim.lr"),
            ("grpo.optim.lr=-1.0", "grpo.optim.lr"),
            ("grpo.optim.lr=inf", "grpo.optim.lr"),
            ("grpo.optim.beta1=1.0", "grpo.optim.beta1"),
            ("grpo.optim.beta2=1.5", "grpo.optim.beta2"),
            ("grpo.optim.eps=0.0", "grpo.optim.eps"),
            ("grpo.optim.min_lr_ratio=5.0", "grpo.optim.min_lr_ratio"),
            ("sft.optim.weight_decay=-0.1", "sft.optim.weight_decay"),
            ("grpo.kl_coef=-1.0", "grpo.kl_coef"),
            ("grpo.kl_coef=nan", "grpo.kl_coef"),
            ("grpo.entropy_coef=nan", "grpo.entropy_coef"),
            ("grpo.clip_low=nan", "grpo.clip_low"),
            ("grpo.clip_high=inf", "grpo.clip_high"),
            ("grpo.advantage_eps=-1.0", "grpo.advantage_eps"),
            ("grpo.advantage_eps=0.0", "grpo.advantage_eps"),
            ("model.dtype=\"f16\"", "f16 training needs loss scaling"),
            (
                "model.device=\"cdua\"",
                "model.device: unknown device `cdua`",
            ),
            (
                "model.builtin.kv_heads=5",
                "model.builtin: heads (6) must be a multiple of kv_heads (5)",
            ),
            (
                "model.builtin.layers=0",
                "model.builtin: layers must be positive",
            ),
            ("grpo.score_temperature=0.0", "grpo.score_temperature"),
            ("grpo.temperature=inf", "grpo.temperature"),
            ("run.eval_temperature=-1.0", "run.eval_temperature"),
            ("grpo.env_timeout_s=1e-12", "grpo.env_timeout_s"),
            (
                "grpo.stop_at_env_failure_share=0.0",
                "grpo.stop_at_env_failure_share",
            ),
            // The default episode budget left below a raised prompt limit.
            ("grpo.max_prompt_tokens=16384", "grpo.max_episode_tokens"),
            ("grpo.env_concurrency=100000", "grpo.env_concurrency"),
            ("sft.env_concurrency=100000", "sft.env_concurrency"),
            ("grpo.env_failure_reward=nan", "grpo.env_failure_reward"),
            // Counts whose products would overflow the step counts.
            ("grpo.steps=2000000000", "grpo.steps"),
            ("grpo.epochs=10000000", "grpo.epochs"),
            ("grpo.data_epochs=4611686018427387904", "grpo.data_epochs"),
            // Set while failures are left out: it would do nothing.
            ("grpo.env_failure_reward=-1.0", "grpo.env_failure_reward"),
            // Greedy GRPO: every group's replies the same, no signal.
            ("grpo.temperature=0.0", "learn nothing"),
            ("grpo.temperature=1e-40", "learn nothing"),
            ("grpo.top_k=1", "learn nothing"),
            // Weights scaled by 1 - lr·wd ≤ 0 each step.
            ("sft.optim.weight_decay=2e6", "lr × weight_decay < 1"),
            ("sft.max_seq_tokens=0", "sft.max_seq_tokens"),
            ("model.builtin.init_std=0.0", "model.builtin.init_std"),
            ("model.builtin.init_std=nan", "model.builtin.init_std"),
            // Buffers no machine holds (a capacity overflow, later).
            (
                "grpo.group_size=1000000",
                "grpo.group_size must be at most 65536 (got 1000000)",
            ),
            ("sft.batch_size=1000000000", "sft.batch_size"),
            ("run.eval_samples=100000", "run.eval_samples"),
        ] {
            let e = TrainConfig::load(None, &[set.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
        // The edges that are meaningful pass.
        for set in [
            "grpo.optim.lr=0.0",
            "grpo.kl_coef=0.0",
            "grpo.env_timeout_s=0.0",
            "grpo.entropy_coef=-0.01",
            "grpo.max_episode_tokens=0",
            "grpo.env_concurrency=0",
            "grpo.temperature=0.001",
            "grpo.top_k=2",
            "run.eval_temperature=0.0",
            // Heads that do not divide the width: a run of a built-in model
            // from before 2026-12-06 (32-wide heads) resumes with it; a
            // fresh build refuses it (Policy::builtin).
            "model.builtin.hidden_size=100",
        ] {
            TrainConfig::load(None, &[set.into()]).unwrap_or_else(|e| panic!("{set}: {e}"));
        }
        // A model inside what the run rewrites (its final policy, its
        // checkpoints) is refused, through `..` and links too; elsewhere in
        // the run directory it is not.
        let root =
            std::env::temp_dir().join(format!("toolgym-model-in-run-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in [
            "x/final",
            "x/grpo/checkpoints/step-00000002",
            "x/sft",
            "x/base",
            "xfinal",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("x/final"), root.join("elsewhere")).unwrap();
        let mut cases = vec![
            ("x/final", true),
            ("x/grpo/checkpoints/step-00000002", true),
            ("x/base/../sft", true),
            ("x/base", false),
            ("xfinal", false),
        ];
        if cfg!(unix) {
            cases.push(("elsewhere", true));
        }
        for (model, refused) in cases {
            let set = [
                format!("model.path={:?}", root.join(model).display().to_string()),
                format!("run.out_dir={:?}", root.join("x").display().to_string()),
            ];
            match TrainConfig::load(None, &set) {
                Err(e) => assert!(
                    refused && e.to_string().contains("which this run writes"),
                    "{model}: {e}"
                ),
                Ok(_) => assert!(!refused, "{model} was taken"),
            }
        }
        std::fs::remove_dir_all(&root).ok();
        // Settings of a section the run does not read are said.
        let cfg = TrainConfig::load(
            None,
            &[
                "data.train=\"t.jsonl\"".into(),
                "data.synthetic.preset=\"hard\"".into(),
                "grpo.max_sampling_rounds=9".into(),
            ],
        )
        .unwrap();
        let unused = cfg.unused_settings();
        assert!(
            unused.len() == 2
                && unused[0].starts_with("data.synthetic is set")
                && unused[1].starts_with("grpo.max_sampling_rounds"),
            "{unused:?}"
        );
        assert!(TrainConfig::default().unused_settings().is_empty());
        // Sampled validation at temperature 0 would repeat the greedy one.
        let e = TrainConfig::load(
            None,
            &[
                "run.eval_samples=4".into(),
                "run.eval_temperature=0.0".into(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("run.eval_samples = 4"), "{e}");
    }

    #[test]
    fn the_rollout_sampling_place_is_chosen_by_name() {
        assert_eq!(
            TrainConfig::load(None, &[]).unwrap().grpo.sampling_place,
            SamplingPlace::Auto
        );
        let c = TrainConfig::load(None, &["grpo.sampling_place=\"host\"".into()]).unwrap();
        assert_eq!(c.grpo.sampling_place, SamplingPlace::Host);
        let e = TrainConfig::load(None, &["grpo.sampling_place=\"gpu\"".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("gpu"), "{e}");
    }

    #[test]
    fn the_builtin_pre_tokenizer_is_chosen_by_name() {
        let c = TrainConfig::load(
            None,
            &["model.builtin.pre_tokenizer=\"words-apart\"".into()],
        )
        .unwrap();
        assert_eq!(
            c.model.builtin.pre_tokenizer,
            toolgym_model::PreTokenizer::WordsApart
        );
        let c = TrainConfig::load(None, &[]).unwrap();
        assert_eq!(
            c.model.builtin.pre_tokenizer,
            toolgym_model::PreTokenizer::Qwen2
        );
        let e = TrainConfig::load(None, &["model.builtin.pre_tokenizer=\"words\"".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("words"), "{e}");
    }
}
