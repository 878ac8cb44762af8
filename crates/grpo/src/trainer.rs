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
use crate::evaluate::EvalReport;
use crate::metrics::StepMetrics;
use crate::phase::{Phase, PhaseSetup};
use crate::{
    aggregation_weights, policy_loss, GradAccumulator, GrpoConfig, LossCoefs, LossInputs, Policy,
    RunSection, TrainError,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use toolgym_env::rng::Rng as EnvRng;
use toolgym_env::{SingleTurnSpec, Task, TaskSource};
use toolgym_model::candle_core::Tensor;
use toolgym_model::rng::mix_seed;
use toolgym_model::{
    generate, FinishReason, GenerateRequest, GenerationConfig, Qwen2ForCausalLM, SamplingParams,
};
use toolgym_reward::Summary;

/// Most prompts generated in one batch during rollouts.
const GENERATION_BATCH: usize = 64;

/// A GRPO training run.
pub struct GrpoTrainer {
    /// Hyperparameters.
    pub config: GrpoConfig,
    phase: Phase,
    reference: Option<Qwen2ForCausalLM>,
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
        let phase = Phase::open(PhaseSetup {
            name: "grpo",
            policy,
            spec,
            train,
            validation,
            optim: config.optim.clone(),
            run,
            total_steps: config.steps,
            eval_limits: (config.max_prompt_tokens, config.max_response_tokens),
        })?;
        let reference = if config.kl_coef != 0.0 {
            let ref_dir = phase.dir.join("reference");
            if !phase.resumed {
                // Keep the reference on disk so a resumed run penalises the
                // same KL; written to a temporary directory, then renamed.
                let tmp = phase.dir.join(".tmp-reference");
                for d in [&tmp, &ref_dir] {
                    if d.exists() {
                        std::fs::remove_dir_all(d).map_err(|e| TrainError::io("remove", d, e))?;
                    }
                }
                phase.policy.save(&tmp)?;
                std::fs::rename(&tmp, &ref_dir).map_err(|e| TrainError::io("rename", &tmp, e))?;
            }
            let opts = toolgym_model::ModelOptions {
                dtype: phase.policy.model.dtype(),
                device: phase.policy.model.device().clone(),
                trainable: false,
            };
            Some(Qwen2ForCausalLM::load(&ref_dir, &opts)?)
        } else {
            None
        };
        Ok(Self {
            config,
            phase,
            reference,
            baseline: None,
        })
    }

    /// Uses `report` as the validation "before" of [`GrpoTrainer::run`]
    /// instead of computing it (e.g. the SFT warm start's final validation).
    pub fn set_baseline(&mut self, report: EvalReport) {
        self.baseline = Some(report);
    }

    /// The policy being trained.
    pub fn policy(&self) -> &Policy {
        &self.phase.policy
    }

    /// The policy, ending the run.
    pub fn into_policy(self) -> Policy {
        self.phase.policy
    }

    /// Completed steps.
    pub fn step_count(&self) -> usize {
        self.phase.step
    }

    /// The phase directory (`out_dir/grpo`).
    pub fn phase_dir(&self) -> &Path {
        &self.phase.dir
    }

    fn optimizer_steps_total(&self) -> usize {
        let c = &self.config;
        c.steps * c.epochs * (c.prompts_per_step / c.mini_batch_prompts).max(1)
    }

    /// Writes a checkpoint of the current state.
    pub fn save_checkpoint(&self) -> Result<PathBuf, TrainError> {
        self.phase.save_checkpoint()
    }

    /// Greedy validation accuracy on the validation tasks (`run.eval_tasks`
    /// of them, all if 0).
    pub fn validate(&self) -> Result<Option<EvalReport>, TrainError> {
        self.phase.validate()
    }

    /// One GRPO step (rollouts, rewards, updates); returns its metrics (also
    /// appended to `metrics.jsonl`).
    pub fn step(&mut self) -> Result<StepMetrics, TrainError> {
        let start = Instant::now();
        let c = self.config.clone();
        let total_opt_steps = self.optimizer_steps_total();
        let p = &mut self.phase;
        let g = c.group_size;
        let step_seed = mix_seed(p.run.seed, p.step as u64 + 1);

        // 1-2. Tasks and rollouts.
        let tasks = p.sampler.next_batch(c.prompts_per_step);
        if tasks.is_empty() {
            return Err(TrainError::Data("the training source has no tasks".into()));
        }
        let mut truncated_prompts = 0;
        let mut requests = Vec::with_capacity(tasks.len());
        for (i, t) in tasks.iter().enumerate() {
            let (ids, cut) = p
                .policy
                .encode_truncated(&p.spec.prompt(t), c.max_prompt_tokens)?;
            truncated_prompts += usize::from(cut);
            requests.push(GenerateRequest::new(ids, g, mix_seed(step_seed, i as u64)));
        }
        let rollout_model = p.policy.model.detached()?;
        let gen_config = GenerationConfig {
            max_new_tokens: c.max_response_tokens,
            sampling: SamplingParams {
                greedy: false,
                temperature: c.temperature,
                top_p: c.top_p,
                top_k: c.top_k,
            },
            eos_token_ids: p.policy.eos_token_ids.clone(),
            max_batch_size: GENERATION_BATCH * g,
            ..GenerationConfig::default()
        };
        let t_gen = Instant::now();
        let outputs = generate(
            &rollout_model,
            &requests,
            &gen_config,
            Some(&p.policy.tokenizer),
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
        let verdicts = p.spec.score_batch(&items);
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
        let device = p.policy.model.device().clone();
        let (mut loss_sum, mut n_updates) = (0.0, 0usize);
        let (mut kl_tok, mut clip_tok, mut ent_tok, mut tokens) = (0.0, 0.0, 0.0, 0usize);
        let (mut last_lr, mut last_norm) = (
            p.optimizer.config.lr_at(p.optimizer.step, total_opt_steps),
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
                    let out = score_seqs(&p.policy.model, &seqs, &micro, score_t, true)?;
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
                    acc.backward(&l.loss, &p.params)?;
                }
                let s = p.optimizer.step(&p.params, &acc, total_opt_steps)?;
                last_lr = s.lr;
                last_norm = s.grad_norm;
                loss_sum += mb_loss;
                n_updates += 1;
            }
        }
        let update_seconds = t_up.elapsed().as_secs_f64();
        p.step += 1;

        let lens: Vec<usize> = seqs.iter().map(|s| s.completion.len()).collect();
        let generated: usize = lens.iter().sum();
        let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
        let std =
            (rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rewards.len() as f64).sqrt();
        let tok = tokens.max(1) as f64;
        let m = StepMetrics {
            phase: "grpo".into(),
            step: p.step,
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
            val_sampled_accuracy: None,
        };
        Ok(m)
    }

    /// Runs the remaining steps: validation before (unless a baseline was
    /// set), every `run.eval_every` steps and after the last, checkpoints
    /// every `run.save_every` steps and after the last. `on_step` sees each
    /// step's metrics (for progress display).
    pub fn run(&mut self, on_step: impl FnMut(&StepMetrics)) -> Result<RunSummary, TrainError> {
        let before = match self.baseline.take() {
            Some(b) => Some(b),
            None => self.validate()?,
        };
        let mut after = Phase::run_steps(self, |t| &mut t.phase, Self::step, on_step)?;
        if after.is_none() {
            after = self.validate()?;
        }
        Ok(RunSummary {
            before,
            after,
            steps: self.phase.step,
        })
    }
}
