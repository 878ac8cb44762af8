//! The GRPO trainer: rollouts in groups, rule-based rewards, group-relative
//! advantages, clipped-ratio updates with a KL penalty to a frozen reference.
//!
//! One [`GrpoTrainer::step`]:
//! 1. draw `prompts_per_step` tasks (seeded, resumable sampler) and render
//!    their prompts (left-truncated to `max_prompt_tokens`);
//! 2. sample G completions per prompt from the current policy (seed derived
//!    from the run seed, the step and the prompt's index);
//! 3. score every completion with the environment's rule (in parallel);
//! 4. advantages `(r − mean) / (std + ε)` within each group;
//! 5. log-probs of the reference (β > 0) and of the rollout policy (only when
//!    several optimiser steps share one rollout batch; otherwise π_old = π
//!    and the ratio is exactly 1 at the single update);
//! 6. for each epoch, for each mini-batch of `mini_batch_prompts` groups:
//!    accumulate the gradient of the loss over micro-batches, clip, AdamW.

use crate::advantage::batch_advantages;
use crate::batching::{logprobs_of, micro_batches, padded, score_seqs, Sequence};
use crate::evaluate::{evaluate, EvalReport};
use crate::metrics::{MetricsLog, StepMetrics};
use crate::state::{due, load_checkpoint, save_checkpoint, TrainerState};
use crate::{
    aggregation_weights, policy_loss, AdamW, GradAccumulator, GrpoConfig, LossCoefs, LossInputs,
    Policy, RunSection, TrainError,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use toolgym_env::rng::Rng as EnvRng;
use toolgym_env::{Sampler, SingleTurnSpec, Task, TaskSource};
use toolgym_model::candle_core::{Tensor, Var};
use toolgym_model::rng::mix_seed;
use toolgym_model::{
    generate, FinishReason, GenerateRequest, GenerationConfig, Qwen2ForCausalLM, SamplingParams,
};
use toolgym_reward::Summary;

/// Most prompts generated in one batch during rollouts and validation.
const GENERATION_BATCH: usize = 64;

/// A GRPO training run.
pub struct GrpoTrainer {
    /// Hyperparameters.
    pub config: GrpoConfig,
    /// Run settings.
    pub run: RunSection,
    /// The policy being trained.
    pub policy: Policy,
    reference: Option<Qwen2ForCausalLM>,
    params: Vec<(String, Var)>,
    optimizer: AdamW,
    spec: SingleTurnSpec,
    sampler: Sampler,
    validation: Vec<Arc<Task>>,
    step: usize,
    phase_dir: PathBuf,
    metrics: MetricsLog,
    baseline: Option<EvalReport>,
}

/// What [`GrpoTrainer::run`] returns.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Validation before the first step of this invocation (None without
    /// validation tasks).
    pub before: Option<EvalReport>,
    /// Validation after the last step.
    pub after: Option<EvalReport>,
    /// Steps completed in total.
    pub steps: usize,
}

impl GrpoTrainer {
    /// Sets up a run in `run.out_dir/grpo`. The reference model is a frozen
    /// copy of `policy` (saved once, so a resumed run keeps the same one).
    /// With `run.resume` and a checkpoint there, training continues from it.
    pub fn new(
        policy: Policy,
        spec: SingleTurnSpec,
        train: Arc<dyn TaskSource>,
        validation: Vec<Arc<Task>>,
        config: GrpoConfig,
        run: RunSection,
    ) -> Result<Self, TrainError> {
        let phase_dir = run.out_dir.join("grpo");
        let mut optimizer = AdamW::new(config.optim.clone());
        let mut sampler = Sampler::new(train, mix_seed(run.seed, 0x6772_706f));
        let mut step = 0;
        let mut policy = policy;
        let resumed = if run.resume {
            load_checkpoint(&phase_dir, &policy, &mut optimizer)?
        } else {
            None
        };
        let ref_dir = phase_dir.join("reference");
        if let Some((p, state)) = resumed {
            policy = p;
            step = state.step;
            sampler.set_position(state.data_position);
        } else if config.kl_coef != 0.0 {
            // Keep the reference on disk so a resumed run penalises the same KL.
            let tmp = phase_dir.join(".tmp-reference");
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io("remove", &tmp, e))?;
            }
            policy.save(&tmp)?;
            if ref_dir.exists() {
                std::fs::remove_dir_all(&ref_dir)
                    .map_err(|e| TrainError::io("remove", &ref_dir, e))?;
            }
            std::fs::rename(&tmp, &ref_dir).map_err(|e| TrainError::io("rename", &tmp, e))?;
        }
        let reference = if config.kl_coef != 0.0 {
            let dtype = policy.model.dtype();
            let device = policy.model.device().clone();
            let opts = toolgym_model::ModelOptions {
                dtype,
                device,
                trainable: false,
            };
            Some(Qwen2ForCausalLM::load(&ref_dir, &opts)?)
        } else {
            None
        };
        let params = policy.model.named_vars()?;
        let metrics = MetricsLog::open(&run.out_dir, "grpo", (step > 0).then_some(step))?;
        Ok(Self {
            config,
            run,
            policy,
            reference,
            params,
            optimizer,
            spec,
            sampler,
            validation,
            step,
            phase_dir,
            metrics,
            baseline: None,
        })
    }

    /// Uses `report` as the validation "before" of [`GrpoTrainer::run`]
    /// instead of computing it (e.g. the SFT warm start's final validation).
    pub fn set_baseline(&mut self, report: EvalReport) {
        self.baseline = Some(report);
    }

    /// Completed steps.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The phase directory (`out_dir/grpo`).
    pub fn phase_dir(&self) -> &Path {
        &self.phase_dir
    }

    fn optimizer_steps_total(&self) -> usize {
        let c = &self.config;
        c.steps * c.epochs * (c.prompts_per_step / c.mini_batch_prompts).max(1)
    }

    fn state(&self) -> TrainerState {
        TrainerState {
            phase: "grpo".into(),
            step: self.step,
            data_position: self.sampler.position(),
            seed: self.run.seed,
            optimizer_steps: self.optimizer.step,
            finished: self.step >= self.config.steps,
        }
    }

    /// Writes a checkpoint of the current state.
    pub fn save_checkpoint(&self) -> Result<PathBuf, TrainError> {
        save_checkpoint(
            &self.phase_dir,
            &self.policy,
            &self.optimizer,
            &self.state(),
            self.run.keep_checkpoints,
        )
    }

    /// Greedy validation accuracy on the validation tasks (`run.eval_tasks`
    /// of them, all if 0).
    pub fn validate(&self) -> Result<Option<EvalReport>, TrainError> {
        if self.validation.is_empty() {
            return Ok(None);
        }
        let n = match self.run.eval_tasks {
            0 => self.validation.len(),
            n => n.min(self.validation.len()),
        };
        evaluate(
            &self.policy,
            &self.spec,
            &self.validation[..n],
            self.config.max_prompt_tokens,
            self.config.max_response_tokens,
            GENERATION_BATCH,
        )
        .map(Some)
    }

    /// One GRPO step (rollouts, rewards, updates); returns its metrics (also
    /// appended to `metrics.jsonl`).
    pub fn step(&mut self) -> Result<StepMetrics, TrainError> {
        let start = Instant::now();
        let c = self.config.clone();
        let g = c.group_size;
        let step_seed = mix_seed(self.run.seed, self.step as u64 + 1);

        // 1-2. Tasks and rollouts.
        let tasks = self.sampler.next_batch(c.prompts_per_step);
        if tasks.is_empty() {
            return Err(TrainError::Data("the training source has no tasks".into()));
        }
        let mut truncated_prompts = 0;
        let mut requests = Vec::with_capacity(tasks.len());
        for (i, t) in tasks.iter().enumerate() {
            let (ids, cut) = self
                .policy
                .encode_truncated(&self.spec.prompt(t), c.max_prompt_tokens)?;
            truncated_prompts += usize::from(cut);
            requests.push(GenerateRequest::new(ids, g, mix_seed(step_seed, i as u64)));
        }
        let rollout_model = self.policy.model.detached()?;
        let gen_config = GenerationConfig {
            max_new_tokens: c.max_response_tokens,
            sampling: SamplingParams {
                greedy: false,
                temperature: c.temperature,
                top_p: c.top_p,
                top_k: c.top_k,
            },
            eos_token_ids: self.policy.eos_token_ids.clone(),
            max_batch_size: GENERATION_BATCH * g,
            ..GenerationConfig::default()
        };
        let t_gen = Instant::now();
        let outputs = generate(
            &rollout_model,
            &requests,
            &gen_config,
            Some(&self.policy.tokenizer),
        )?;
        let rollout_seconds = t_gen.elapsed().as_secs_f64();

        // 3. Rewards.
        let mut seqs = Vec::with_capacity(tasks.len() * g);
        let mut items: Vec<(Arc<Task>, String)> = Vec::with_capacity(tasks.len() * g);
        let mut truncated = 0;
        for ((task, req), outs) in tasks.iter().zip(&requests).zip(outputs) {
            for o in outs {
                truncated += usize::from(o.finish_reason == FinishReason::Length);
                items.push((task.clone(), o.text.clone().unwrap_or_default()));
                seqs.push(Sequence {
                    prompt: req.prompt_ids.clone(),
                    completion: o.token_ids,
                });
            }
        }
        let verdicts = self.spec.score_batch(&items);
        let rewards: Vec<f64> = verdicts.iter().map(|v| v.reward).collect();
        let summary = Summary::of(&verdicts);

        // 4. Advantages.
        let advantages = batch_advantages(&rewards, g, c.scale_rewards_by_std, c.advantage_eps);
        let zero_var = rewards
            .chunks(g)
            .filter(|grp| grp.iter().all(|r| (r - grp[0]).abs() < 1e-12))
            .count();

        // 5. Old and reference log-probs.
        let t_lp = Instant::now();
        let score_t = c.score_temperature.unwrap_or(if c.temperature > 0.0 {
            c.temperature
        } else {
            1.0
        });
        let mini_batches = (tasks.len() / c.mini_batch_prompts).max(1);
        let single_update = c.epochs == 1 && mini_batches == 1;
        let old = if single_update {
            None
        } else {
            Some(logprobs_of(
                &rollout_model,
                &seqs,
                c.micro_batch_seqs,
                score_t,
            )?)
        };
        let reference = match &self.reference {
            Some(r) => Some(logprobs_of(r, &seqs, c.micro_batch_seqs, score_t)?),
            None => None,
        };
        let logprob_seconds = t_lp.elapsed().as_secs_f64();

        // 6. Updates.
        let t_up = Instant::now();
        let coefs = LossCoefs {
            clip_low: c.clip_low,
            clip_high: c.clip_high,
            kl_coef: c.kl_coef,
            entropy_coef: c.entropy_coef,
        };
        let device = self.policy.model.device().clone();
        let total_opt_steps = self.optimizer_steps_total();
        let (mut loss_sum, mut n_updates) = (0.0, 0usize);
        let (mut kl_tok, mut clip_tok, mut ent_tok, mut tokens) = (0.0, 0.0, 0.0, 0usize);
        let (mut last_lr, mut last_norm) = (
            self.optimizer
                .config
                .lr_at(self.optimizer.step, total_opt_steps),
            0.0,
        );
        let mut trained_tokens = 0usize;
        let groups: Vec<usize> = (0..tasks.len()).collect();
        for epoch in 0..c.epochs {
            let mut order = groups.clone();
            EnvRng::new(mix_seed(step_seed, 0x65706f63 + epoch as u64)).shuffle(&mut order);
            for mb_groups in order.chunks(c.mini_batch_prompts) {
                let mb: Vec<usize> = mb_groups.iter().flat_map(|&p| p * g..p * g + g).collect();
                let mb_tokens: usize = mb.iter().map(|&i| seqs[i].completion.len()).sum();
                let mut acc = GradAccumulator::default();
                let mut mb_loss = 0.0;
                for micro in micro_batches(&mb, &seqs, c.micro_batch_seqs) {
                    let out = score_seqs(&self.policy.model, &seqs, &micro, score_t, true)?;
                    let width = out.mask.dims()[1];
                    let old_t = match &old {
                        Some(o) => padded(
                            &micro.iter().map(|&i| o[i].as_slice()).collect::<Vec<_>>(),
                            width,
                            &device,
                        )?,
                        None => out.logprobs.detach(),
                    };
                    let ref_t = match &reference {
                        Some(r) => Some(padded(
                            &micro.iter().map(|&i| r[i].as_slice()).collect::<Vec<_>>(),
                            width,
                            &device,
                        )?),
                        None => None,
                    };
                    let adv: Vec<f32> = micro.iter().map(|&i| advantages[i] as f32).collect();
                    let adv_t = Tensor::from_vec(adv, micro.len(), &device)?;
                    let weights = aggregation_weights(&out.mask, c.loss_agg, mb_tokens, mb.len())?;
                    let l = policy_loss(
                        &LossInputs {
                            logprobs: &out.logprobs,
                            old_logprobs: &old_t,
                            ref_logprobs: ref_t.as_ref(),
                            entropies: out.entropies.as_ref(),
                            advantages: &adv_t,
                            mask: &out.mask,
                        },
                        &coefs,
                        &weights,
                    )?;
                    mb_loss += l.loss.to_scalar::<f32>()? as f64;
                    kl_tok += l.kl * l.tokens as f64;
                    clip_tok += l.clip_fraction * l.tokens as f64;
                    ent_tok += l.entropy * l.tokens as f64;
                    tokens += l.tokens;
                    trained_tokens += micro.iter().map(|&i| seqs[i].len()).sum::<usize>();
                    acc.backward(&l.loss, &self.params)?;
                }
                let s = self.optimizer.step(&self.params, &acc, total_opt_steps)?;
                last_lr = s.lr;
                last_norm = s.grad_norm;
                loss_sum += mb_loss;
                n_updates += 1;
            }
        }
        let update_seconds = t_up.elapsed().as_secs_f64();
        self.step += 1;

        let lens: Vec<usize> = seqs.iter().map(|s| s.completion.len()).collect();
        let generated: usize = lens.iter().sum();
        let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
        let std =
            (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rewards.len() as f64).sqrt();
        let tok = tokens.max(1) as f64;
        let m = StepMetrics {
            phase: "grpo".into(),
            step: self.step,
            reward_mean: Some(mean),
            reward_std: Some(std),
            accuracy: Some(summary.accuracy),
            reasons: summary
                .reasons
                .iter()
                .map(|(r, n)| (r.as_str().to_string(), *n))
                .collect(),
            zero_variance_groups: Some(zero_var as f64 / tasks.len() as f64),
            loss: loss_sum / n_updates.max(1) as f64,
            kl: self.reference.as_ref().map(|_| kl_tok / tok),
            clip_fraction: Some(clip_tok / tok),
            entropy: Some(ent_tok / tok),
            response_len_mean: Some(generated as f64 / lens.len() as f64),
            response_len_max: lens.iter().copied().max(),
            truncation_rate: Some(truncated as f64 / lens.len() as f64),
            truncated_prompts: Some(truncated_prompts),
            lr: last_lr,
            grad_norm: last_norm,
            step_seconds: start.elapsed().as_secs_f64(),
            rollout_seconds: Some(rollout_seconds),
            logprob_seconds: Some(logprob_seconds),
            update_seconds,
            rollout_tokens_per_s: Some(generated as f64 / rollout_seconds.max(1e-9)),
            train_tokens_per_s: trained_tokens as f64 / update_seconds.max(1e-9),
            val_accuracy: None,
            val_reward: None,
        };
        Ok(m)
    }

    /// Runs the remaining steps: validation before (when starting fresh) and
    /// every `run.eval_every` steps and at the end, checkpoints every
    /// `run.save_every` steps and at the end. `on_step` sees each step's
    /// metrics (for progress display).
    pub fn run(&mut self, mut on_step: impl FnMut(&StepMetrics)) -> Result<RunSummary, TrainError> {
        let before = match self.baseline.take() {
            Some(b) => Some(b),
            None => self.validate()?,
        };
        let mut after = None;
        while self.step < self.config.steps {
            let mut m = self.step()?;
            let last = self.step >= self.config.steps;
            if due(self.step, self.run.eval_every, last) {
                if let Some(r) = self.validate()? {
                    m.val_accuracy = Some(r.accuracy);
                    m.val_reward = Some(r.mean_reward);
                    if last {
                        after = Some(r);
                    }
                }
            }
            self.metrics.write(&m)?;
            on_step(&m);
            if due(self.step, self.run.save_every, last) {
                self.save_checkpoint()?;
            }
        }
        if after.is_none() {
            after = self.validate()?;
        }
        Ok(RunSummary {
            before,
            after,
            steps: self.step,
        })
    }
}
