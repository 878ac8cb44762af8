//! The GRPO trainer: episodes in groups through the rollout engine,
//! environment rewards, group-relative advantages, clipped-ratio updates
//! with a KL penalty to a frozen reference, on the model's tokens only.
//!
//! One [`GrpoTrainer::step`]:
//! 1. draw `prompts_per_step` tasks (seeded, resumable sampler);
//! 2. run G episodes per task in environments from the factory, all in
//!    lockstep ([`crate::rollout`]): one batched `generate` per turn, env
//!    steps on worker threads; the G episodes of a task are reset with the
//!    same seed, and sampling seeds derive from the run seed, the step and
//!    the task's index;
//! 3. each episode's reward is its steps' rewards (`episode_reward`);
//! 4. advantages `(r − mean) / (std + ε)` within each group;
//! 5. log-probs of the reference (β > 0) and of the rollout policy (only when
//!    several optimiser steps share one rollout batch; otherwise π_old = π
//!    and the ratio is exactly 1 at the single update), on every token;
//! 6. for each epoch, for each mini-batch of `mini_batch_prompts` groups:
//!    accumulate the gradient of the loss over micro-batches, clip, AdamW.
//!    Environment tokens (train mask 0) take no part in the loss, the KL,
//!    the entropy or any token-mean denominator.

use crate::advantage::batch_advantages_leaving_out;
use crate::batching::{
    logprobs_of, micro_batches, micro_workers, padded, run_micro_batches, score_seqs, Entropy,
    Sequence,
};
use crate::config::{EnvFailures, OverlongPrompts};
use crate::evaluate::EvalReport;
use crate::metrics::{EpisodeStats, StepMetrics};
use crate::optim::WarmupStyle;
use crate::phase::{count_streak, Phase, PhaseSetup, Streak, STEPS_IN_A_ROW_STOP};
use crate::prompt_filter::{drop_overlong, drop_overlong_validation, report_dropped};
use crate::rollout::{run_episodes, EpisodeGroup, Sampler, Trajectory};
use crate::{
    aggregation_weights, policy_loss, GradAccumulator, GrpoConfig, LossCoefs, LossInputs, Policy,
    RunSection, TrainError,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use toolgym_env::env::DynEnvFactory;
use toolgym_env::rng::Rng as EnvRng;
use toolgym_env::{Task, TaskSource};
use toolgym_model::candle_core::Tensor;
use toolgym_model::device_memory::{device_memory, gigabytes, reset_peaks};
use toolgym_model::rng::mix_seed;
use toolgym_model::{Qwen2ForCausalLM, SamplingParams};

/// Most prompts generated in one batch during rollouts.
const GENERATION_BATCH: usize = 64;

/// A GRPO training run.
pub struct GrpoTrainer {
    /// Hyperparameters.
    pub config: GrpoConfig,
    phase: Phase,
    reference: Option<Qwen2ForCausalLM>,
    baseline: Option<EvalReport>,
    /// Tasks left out as over `max_prompt_tokens`, by source, for the
    /// first step's metrics.
    dropped: BTreeMap<String, usize>,
    /// Validation tasks left out alike, for the first step's metrics.
    dropped_validation: BTreeMap<String, usize>,
}

/// What [`GrpoTrainer::run`] returns.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// Validation before the first step of this invocation (None without
    /// validation tasks, or with `run.val_before_train` off).
    pub before: Option<EvalReport>,
    /// Validation after the last step.
    pub after: Option<EvalReport>,
    /// Steps completed in total.
    pub steps: usize,
}

impl GrpoTrainer {
    /// Sets up a run in `run.out_dir/grpo`: episodes of the environments
    /// `factory` makes (a [`toolgym_env::SingleTurnSpec`], a
    /// [`toolgym_env::MultiTurnSpec`] or any [`toolgym_env::env::EnvFactory`])
    /// on tasks from `train`, validated on `validation`. The reference model
    /// is a frozen copy of `policy` (saved once, so a resumed run keeps the
    /// same one). With `run.resume` and a checkpoint there, training
    /// continues from it.
    ///
    /// A finite `train` source is filtered first: tasks whose first prompt
    /// is over `max_prompt_tokens` are left out, counted per source on
    /// stderr and in the first step's metrics (`dropped_overlong`) — unless
    /// `overlong_prompts = "truncate-left"` was chosen. Validation tasks
    /// over the limit are left out alike (`dropped_overlong_validation`),
    /// as verl filters its validation set.
    pub fn new(
        policy: Policy,
        factory: Arc<dyn DynEnvFactory>,
        train: Arc<dyn TaskSource>,
        validation: Vec<Arc<Task>>,
        config: GrpoConfig,
        run: RunSection,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let mut dropped = BTreeMap::new();
        let mut train_tasks = None;
        // The prompt limit that applies: the setting, or the model's context.
        let limit = crate::rollout::limit_named(
            "grpo.max_prompt_tokens",
            config.max_prompt_tokens,
            policy.token_space().max_context,
        );
        let train: Arc<dyn TaskSource> = match train.len() {
            Some(n) if config.overlong_prompts == OverlongPrompts::Drop => {
                let (kept, d) =
                    drop_overlong(&policy, &factory, train.as_ref(), &config.rollout_limits());
                report_dropped("grpo", "training", n, &limit, &d);
                if kept.size() == 0 {
                    let over = d.values().sum::<usize>();
                    return Err(TrainError::Data(if over == n {
                        format!(
                            "every one of the {n} training tasks has a first prompt over {limit}"
                        )
                    } else {
                        // The rest the source failed to give (said on stderr).
                        format!(
                            "no training task is left: the source failed to give {} of its {n} \
                             tasks (the first failure is on stderr), and {over} have a first \
                             prompt over {limit}",
                            n - over
                        )
                    }));
                }
                dropped = d;
                train_tasks = Some(crate::phase::train_tasks_of(kept.tasks()));
                Arc::new(kept)
            }
            Some(_) => {
                eprintln!(
                    "grpo: warning: first prompts over {limit} lose their first tokens \
                     (overlong_prompts = \"truncate-left\"): the model may not see the tools of \
                     those tasks"
                );
                train_tasks = crate::phase::train_tasks_of_source(train.as_ref());
                train
            }
            None => train,
        };
        // Validation drops them too (verl filters its validation set alike).
        let (validation, mut dropped_validation) = drop_overlong_validation(
            &policy,
            &factory,
            &validation,
            &config,
            "grpo",
            run.eval_tasks,
        )?;
        let total_steps = config.total_steps(train.len())?;
        let phase = Phase::open(PhaseSetup {
            name: "grpo",
            policy,
            factory,
            train,
            validation,
            optim: config.optim.clone(),
            run,
            total_steps,
            eval_limits: config.rollout_limits(),
            train_tasks,
            env_failures: match config.env_failures {
                EnvFailures::LeaveOut => crate::phase::LEFT_OUT.into(),
                EnvFailures::Scored => format!(
                    "scored grpo.env_failure_reward = {} and trained on, but for those no reply \
                     provoked (before a first reply, a prompt that does not extend the last, env \
                     text that cannot be tokenised), left out",
                    config.env_failure_reward
                ),
            },
            env_timeout: config.rollout_limits().env_timeout,
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
                // Checksummed and fsynced as a checkpoint is: a resumed
                // run reads it again, and changed bytes would change the
                // penalty silently.
                crate::checkpoint::seal(&tmp)?;
                std::fs::rename(&tmp, &ref_dir).map_err(|e| TrainError::io("rename", &tmp, e))?;
                crate::checkpoint::sync_parent(&ref_dir)?;
            }
            crate::checkpoint::verify_checksums(&ref_dir).map_err(|m| {
                TrainError::Checkpoint(format!("the KL reference model of the GRPO phase: {m}"))
            })?;
            let opts = toolgym_model::ModelOptions {
                dtype: phase.policy.model.dtype(),
                device: phase.policy.model.device().clone(),
                trainable: false,
            };
            Some(scoring_view(&Qwen2ForCausalLM::load(&ref_dir, &opts)?))
        } else {
            None
        };
        // A resumed run's first step logged the drops already (said on
        // stderr again): counted twice, a sum over the log would not be the
        // uninterrupted run's.
        if phase.resumed {
            dropped.clear();
            dropped_validation.clear();
        }
        Ok(Self {
            config,
            phase,
            reference,
            baseline: None,
            dropped,
            dropped_validation,
        })
    }

    /// Uses `report` as the validation "before" of [`GrpoTrainer::run`]
    /// instead of computing it (e.g. the SFT warm start's final
    /// validation), when it is of the tasks this trainer validates
    /// ([`EvalReport::task_ids`]); of other tasks (a prompt-length check
    /// that kept other tasks, a curriculum that moved which first prompts
    /// fit), `run` says so and validates as without one.
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
        // Saturating: a count past usize is a schedule that never ends.
        self.phase
            .total_steps
            .saturating_mul(optimizer_steps_per_step(&self.config))
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
    /// appended to `metrics.jsonl` by [`GrpoTrainer::run`]).
    pub fn step(&mut self) -> Result<StepMetrics, TrainError> {
        let start = Instant::now();
        let c = self.config.clone();
        let total_opt_steps = self.optimizer_steps_total();
        let p = &mut self.phase;
        p.start_step();
        let g = c.group_size;
        let step_seed = mix_seed(p.run.seed, p.step as u64 + 1);
        let left_out = |e: &Trajectory| e.left_out_of_update(c.env_failures);
        reset_peaks(p.policy.model.device());

        // 1-3. Tasks, episodes, rewards: one rollout round, or with dynamic
        // sampling as many as it takes (up to `max_sampling_rounds`) to
        // collect `prompts_per_step` groups whose rewards differ.
        // No repetition penalty: verl's rollouts (vLLM) apply none.
        let sampling = SamplingParams {
            greedy: false,
            temperature: c.temperature,
            top_p: c.top_p,
            top_k: c.top_k,
            repetition_penalty: 1.0,
        };
        let rounds = if c.dynamic_sampling {
            c.max_sampling_rounds.max(1)
        } else {
            1
        };
        let t_gen = Instant::now();
        let mut tasks: Vec<Arc<Task>> = Vec::new();
        // Every episode generated, and whether its group is kept.
        let mut generated: Vec<Trajectory> = Vec::new();
        let mut kept: Vec<bool> = Vec::new();
        let mut generated_groups = 0usize;
        let mut zero_var = 0usize;
        let mut rounds_run = 0usize;
        for round in 0..rounds {
            if round > 0 && tasks.len() >= c.prompts_per_step {
                break;
            }
            let batch = p.sampler.next_batch(c.prompts_per_step);
            if batch.is_empty() {
                if round == 0 {
                    return Err(p.no_tasks());
                }
                break;
            }
            // Round 0 keeps the seeds of a run without dynamic sampling.
            let round_seed = if round == 0 {
                step_seed
            } else {
                mix_seed(step_seed, 0x726f_756e_6400 + round as u64)
            };
            let groups: Vec<EpisodeGroup> = batch
                .iter()
                .enumerate()
                .map(|(i, t)| EpisodeGroup {
                    task: t.clone(),
                    n: g,
                    reset_seed: mix_seed(mix_seed(round_seed, 0x7265_7365_7400), i as u64),
                    sample_seed: mix_seed(round_seed, i as u64),
                })
                .collect();
            let mut actor = Sampler::new(
                &p.policy.model,
                &p.policy.tokenizer,
                &p.policy.eos_token_ids,
                sampling.clone(),
                c.max_response_tokens,
                GENERATION_BATCH * g,
            )?
            .with_sampling_place(c.sampling_place);
            let rolled = run_episodes(
                &p.factory,
                &groups,
                &mut actor,
                p.policy.token_space(),
                &c.rollout_limits(),
            )?;
            rounds_run += 1;
            for (task, mut group) in batch.into_iter().zip(rolled) {
                generated_groups += 1;
                // Failures scored (`env_failures = "scored"`) get the
                // failure reward in place of the rollout's 0.
                for e in group.iter_mut().filter(|e| e.env_failed() && !left_out(e)) {
                    e.reward = c.env_failure_reward;
                }
                // Env failures left out say nothing of the policy: the
                // group's signal is in the episodes that ran.
                let ran: Vec<f64> = group
                    .iter()
                    .filter(|e| !left_out(e))
                    .map(|e| e.reward)
                    .collect();
                let flat = ran.len() < 2 || ran.iter().all(|r| (r - ran[0]).abs() < 1e-12);
                zero_var += usize::from(flat);
                let keep = !c.dynamic_sampling || (!flat && tasks.len() < c.prompts_per_step);
                if keep {
                    tasks.push(task);
                }
                kept.extend(std::iter::repeat_n(keep, group.len()));
                generated.extend(group);
            }
        }
        let rollout_seconds = t_gen.elapsed().as_secs_f64();
        // Metrics describe every episode generated; the update sees the kept
        // groups.
        let stats = EpisodeStats::leaving_out(&generated, left_out);
        let env_broken = stats.env_failures > 0
            && stats.env_failures as f64 >= c.stop_at_env_failure_share * generated.len() as f64;
        // Model tokens to train on: those of the episodes the update keeps.
        let trainable_tokens: usize = generated
            .iter()
            .filter(|e| !left_out(e))
            .map(Trajectory::model_tokens)
            .sum();
        let empty = trainable_tokens == 0 && stats.skipped + stats.truncated > 0;
        // Each count goes on over a step the other condition made useless
        // (alternating failed and empty steps are no run either).
        let failing = count_streak(&mut p.env_failure_steps, env_broken, empty, p.total_steps);
        let emptiness = count_streak(&mut p.empty_steps, empty, env_broken, p.total_steps);
        let stop_after = STEPS_IN_A_ROW_STOP.min(p.total_steps);
        if env_broken {
            // What failed is said once per step by the phase (the first
            // message); the run goes on unless the env looks broken.
            let why = format!(
                "step {}: {} of {} episodes failed in their env, at least \
                 grpo.stop_at_env_failure_share = {} of them",
                p.step + 1,
                stats.env_failures,
                generated.len(),
                c.stop_at_env_failure_share,
            );
            if let Streak::Stop(before) = failing {
                let first = stats.env_error.as_deref().unwrap_or("?");
                return Err(TrainError::Env(format!(
                    "{why}{before} (a broken env or template; raise it above 1 to go on \
                     regardless); the first: {first}"
                )));
            }
            eprintln!("warning: {why} (the run stops after {stop_after} such steps in a row)");
        }
        if empty {
            // Nothing to train on: every episode left out for its prompt's
            // length, cut before a reply, or a failure left out. The step
            // makes no update.
            let limit = crate::rollout::limit_named(
                "grpo.max_prompt_tokens",
                c.max_prompt_tokens,
                p.policy.token_space().max_context,
            );
            let why = format!(
                "step {}: none of its {} episodes has a model token to train on ({} left out \
                 as over {limit}, {} cut by the token budget)",
                p.step + 1,
                generated.len(),
                stats.skipped,
                stats.truncated
            );
            let fix = "raise grpo.max_prompt_tokens / grpo.max_episode_tokens / \
                       grpo.max_response_tokens, or use a model of a longer context";
            if let Streak::Stop(before) = emptiness {
                return Err(TrainError::Config(format!("{why}{before}: {fix}")));
            }
            eprintln!(
                "warning: {why}: no update this step (the run stops after {stop_after} such \
                 steps in a row; {fix})"
            );
        }
        // The policy's rewards: an env failure's 0 is the env's (counted
        // in env_failures), not the policy's, unless failures are scored.
        let all_rewards: Vec<f64> = generated
            .iter()
            .filter(|e| !left_out(e))
            .map(|e| e.reward)
            .collect();
        let episodes: Vec<Trajectory> = generated
            .into_iter()
            .zip(kept)
            .filter_map(|(e, keep)| keep.then_some(e))
            .collect();
        let rewards: Vec<f64> = episodes.iter().map(|e| e.reward).collect();
        let failed: Vec<bool> = episodes.iter().map(left_out).collect();
        let seqs: Vec<Sequence> = episodes
            .into_iter()
            .map(|e| Sequence {
                prompt: e.prompt,
                completion: e.tokens,
                mask: e.train_mask,
            })
            .collect();
        // Episodes without a model token (a prompt over the limit) count in
        // their group's advantages but are not scored. An env failure left
        // out is neither: the env's bug is not the policy's doing, so its
        // episode is left out of its group's statistics and of the loss
        // (with `env_failures = scored` it is an episode like another).
        let trainable: Vec<usize> = (0..seqs.len())
            .filter(|&i| !failed[i] && !seqs[i].prompt.is_empty() && seqs[i].model_tokens() > 0)
            .collect();

        // 4. Advantages.
        let advantages = batch_advantages_leaving_out(
            &rewards,
            &failed,
            g,
            c.scale_rewards_by_std,
            c.advantage_eps,
        );

        // 5. Old and reference log-probs.
        let t_lp = Instant::now();
        let score_t = c.score_temperature.unwrap_or(if c.temperature > 0.0 {
            c.temperature
        } else {
            1.0
        });
        let mini_batches = tasks.len().div_ceil(c.mini_batch_prompts);
        let single_update = c.epochs == 1 && mini_batches == 1;
        let old = if single_update {
            None
        } else {
            Some(logprobs_of(
                &scoring_view(&p.policy.model.detached()?),
                &seqs,
                &trainable,
                c.micro_batch_seqs,
                score_t,
            )?)
        };
        let reference = match &self.reference {
            Some(r) => Some(logprobs_of(
                r,
                &seqs,
                &trainable,
                c.micro_batch_seqs,
                score_t,
            )?),
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
        let mut skipped_updates = 0usize;
        let (mut forward_secs, mut backward_secs) = (0.0, 0.0);
        // The entropy is a metric unless a bonus puts it in the loss.
        let entropy = if c.entropy_coef != 0.0 {
            Entropy::Differentiable
        } else {
            Entropy::Metric
        };
        let is_trainable: Vec<bool> = {
            let mut v = vec![false; seqs.len()];
            trainable.iter().for_each(|&i| v[i] = true);
            v
        };
        let groups: Vec<usize> = (0..tasks.len()).collect();
        for epoch in 0..c.epochs {
            let mut order = groups.clone();
            EnvRng::new(mix_seed(step_seed, 0x65706f63 + epoch as u64)).shuffle(&mut order);
            for mb_groups in order.chunks(c.mini_batch_prompts) {
                let mb: Vec<usize> = mb_groups
                    .iter()
                    .flat_map(|&p| p * g..p * g + g)
                    .filter(|&i| is_trainable[i])
                    .collect();
                if mb.is_empty() {
                    // No update; the schedule still counts the step.
                    p.optimizer.pass_step();
                    continue;
                }
                let mb_tokens: usize = mb.iter().map(|&i| seqs[i].model_tokens()).sum();
                let mut acc = GradAccumulator::default();
                let mut mb_loss = 0.0;
                let micros = micro_batches(&mb, &seqs, c.micro_batch_seqs);
                let model = &p.policy.model;
                let work = |micro: &[usize]| -> Result<_, TrainError> {
                    let t_forward = Instant::now();
                    let out = score_seqs(model, &seqs, micro, score_t, entropy)?;
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
                    let forward = t_forward.elapsed().as_secs_f64();
                    let t_backward = Instant::now();
                    let grads = l.loss.backward()?;
                    Ok((l, grads, [forward, t_backward.elapsed().as_secs_f64()]))
                };
                run_micro_batches(
                    &micros,
                    micro_workers(&device),
                    work,
                    |micro, (l, grads, secs)| {
                        forward_secs += secs[0];
                        backward_secs += secs[1];
                        mb_loss += l.loss.to_scalar::<f32>()? as f64;
                        kl_tok += l.kl * l.tokens as f64;
                        clip_tok += l.clip_fraction * l.tokens as f64;
                        ent_tok += l.entropy * l.tokens as f64;
                        tokens += l.tokens;
                        trained_tokens += micro.iter().map(|&i| seqs[i].len()).sum::<usize>();
                        acc.add(&grads, &p.params)?;
                        Ok(())
                    },
                )?;
                // The released verl's scheduler steps once per rollout
                // step; otherwise the schedule counts optimiser steps.
                let s = if c.optim.warmup_style == WarmupStyle::Verl {
                    let at = (p.step, p.total_steps);
                    p.optimizer.step_scheduled_at(&p.params, &acc, at)?
                } else {
                    p.optimizer.step(&p.params, &acc, total_opt_steps)?
                };
                skipped_updates += usize::from(!s.applied);
                last_lr = s.lr;
                last_norm = s.grad_norm;
                loss_sum += mb_loss;
                n_updates += 1;
            }
        }
        // Dynamic sampling that kept fewer groups than a step holds (or
        // none), or a finite source's short last batch, ran fewer
        // mini-batches than the schedule plans per step: it counts them
        // still, so a warm-up or a cosine ends where the plan puts it.
        for _ in (c.epochs * mini_batches)..optimizer_steps_per_step(&c) {
            p.optimizer.pass_step();
        }
        let update_seconds = t_up.elapsed().as_secs_f64();
        p.step += 1;

        let (mean, std) = if all_rewards.is_empty() {
            (None, None) // every episode's env failed: no reward of the policy's
        } else {
            let ran = all_rewards.len() as f64;
            let mean = all_rewards.iter().sum::<f64>() / ran;
            let var = all_rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / ran;
            (Some(mean), Some(var.sqrt()))
        };
        let tok = tokens.max(1) as f64;
        // A step with no update (every group without signal, every episode
        // failed) has no loss statistics: null, not a 0 that reads as a
        // collapsed entropy or a perfect fit.
        let updated = n_updates > 0;
        let mut m = StepMetrics {
            phase: "grpo".into(),
            step: p.step,
            reward_mean: mean,
            reward_std: std,
            zero_variance_groups: Some(zero_var as f64 / generated_groups.max(1) as f64),
            sampling_rounds: c.dynamic_sampling.then_some(rounds_run),
            kept_groups: c.dynamic_sampling.then_some(tasks.len()),
            loss: if updated {
                loss_sum / n_updates as f64
            } else {
                f64::NAN
            },
            kl: self
                .reference
                .as_ref()
                .filter(|_| updated)
                .map(|_| kl_tok / tok),
            clip_fraction: updated.then_some(clip_tok / tok),
            entropy: updated.then_some(ent_tok / tok),
            lr: if updated { last_lr } else { f64::NAN },
            grad_norm: if updated { last_norm } else { f64::NAN },
            skipped_updates: Some(skipped_updates),
            step_seconds: start.elapsed().as_secs_f64(),
            rollout_seconds: Some(rollout_seconds),
            logprob_seconds: Some(logprob_seconds),
            update_seconds,
            update_forward_seconds: Some(forward_secs),
            update_backward_seconds: Some(backward_secs),
            rollout_tokens_per_s: Some(stats.model_tokens as f64 / rollout_seconds.max(1e-9)),
            train_tokens_per_s: trained_tokens as f64 / update_seconds.max(1e-9),
            ..StepMetrics::default()
        };
        stats.fill(&mut m);
        if let Some(mem) = device_memory(&device) {
            m.device_mem_used_gb = Some(gigabytes(mem.used));
            m.device_mem_peak_gb = Some(gigabytes(mem.used_peak));
            m.device_mem_reserved_gb = Some(gigabytes(mem.reserved));
        }
        m.dropped_overlong = std::mem::take(&mut self.dropped);
        m.dropped_overlong_validation = std::mem::take(&mut self.dropped_validation);
        self.phase.report_source_skips(&mut m);
        Ok(m)
    }

    /// Runs the remaining steps: validation before (unless a baseline was
    /// set, or `run.val_before_train` is off), every `run.eval_every`
    /// steps and after the last, checkpoints every `run.save_every` steps
    /// and after the last. `on_step` sees each step's metrics (for
    /// progress display).
    pub fn run(&mut self, on_step: impl FnMut(&StepMetrics)) -> Result<RunSummary, TrainError> {
        let baseline = self.baseline.take().filter(|b| {
            let ours = self.phase.validation_tasks();
            let same = b
                .task_ids
                .iter()
                .map(String::as_str)
                .eq(ours.iter().map(|t| t.id.as_str()));
            if !same {
                let instead = if self.phase.run.val_before_train {
                    "validating them here instead"
                } else {
                    "no \"before\" (run.val_before_train = false)"
                };
                eprintln!(
                    "grpo: the validation given as \"before\" was measured on {} tasks that are \
                     not the {} GRPO validates on, so the two would not compare: {instead}",
                    b.task_ids.len(),
                    ours.len()
                );
            }
            same
        });
        let validated_here = baseline.is_none();
        let before = match baseline {
            Some(b) => Some(b),
            None if self.phase.run.val_before_train => self.validate()?,
            None => None,
        };
        if let (Some(b), 0) = (&before, self.phase.step) {
            self.phase
                .metrics
                .write(&StepMetrics::validation_only("grpo", 0, b))?;
        }
        let first = self.phase.step;
        let ran = Phase::run_steps(self, |t| &mut t.phase, Self::step, on_step).and_then(|after| {
            match after {
                Some(a) => Ok(Some(a)),
                // A finished run started again: no step ran, the policy
                // is the one just validated (here, not a baseline given).
                None if self.phase.step == first && validated_here && before.is_some() => {
                    Ok(before.clone())
                }
                None => self.validate(),
            }
        });
        // The last episodes' envs are dropped on worker threads:
        // their clean-up gets its time before the program may end (after
        // an error too).
        if let Some(limit) = self.config.rollout_limits().env_timeout {
            crate::rollout::wait_for_env_drops(limit);
        }
        let after = ran?;
        Ok(RunSummary {
            before,
            after,
            steps: self.phase.step,
        })
    }
}

/// The optimiser steps the schedule plans per GRPO step: one per
/// mini-batch of a full batch, per epoch.
fn optimizer_steps_per_step(c: &GrpoConfig) -> usize {
    c.epochs
        .saturating_mul(c.prompts_per_step.div_ceil(c.mini_batch_prompts).max(1))
}

/// `model` as a step scores against the trainable policy with it (the
/// old policy, the KL reference): in half precision off the CPU computing
/// with the training ops, so an unchanged policy's ratio is exactly 1 and
/// an unchanged reference's KL 0 (candle's fused kernels there may round
/// otherwise); on the CPU, and in f32 and f64, with the faster inference
/// kernels, which give the same values on the CPU in half precision and
/// agree to float rounding in f32 and f64. See
/// [`Qwen2ForCausalLM::with_training_ops`].
fn scoring_view(model: &Qwen2ForCausalLM) -> Qwen2ForCausalLM {
    use toolgym_model::candle_core::DType;
    let half = matches!(model.dtype(), DType::BF16 | DType::F16);
    if half && !model.device().is_cpu() {
        model.with_training_ops()
    } else {
        model.clone()
    }
}

#[cfg(test)]
mod tests {
    use crate::phase::{count_streak, Streak};

    /// Steps as (condition held, the other condition held); what the last
    /// one makes of a run of `total` steps.
    fn after(steps: &[(bool, bool)], total: usize) -> (usize, &'static str) {
        let mut count = 0;
        let mut last = "clear";
        for &(holds, other) in steps {
            last = match count_streak(&mut count, holds, other, total) {
                Streak::Clear => "clear",
                Streak::Warn => "warn",
                Streak::Stop(_) => "stop",
            };
        }
        (count, last)
    }

    #[test]
    fn three_useless_steps_in_a_row_stop_a_run_whichever_made_them_useless() {
        let (held, other, fine) = ((true, false), (false, true), (false, false));
        assert_eq!(after(&[held, held], 10), (2, "warn"));
        assert_eq!(after(&[held, held, held], 10), (3, "stop"));
        // A good step starts the count over.
        assert_eq!(after(&[held, held, fine, held], 10), (1, "warn"));
        // A step the other condition made useless leaves it as it was.
        assert_eq!(after(&[held, other, held], 10), (2, "warn"));
        assert_eq!(after(&[held, other, held, other, held], 10), (3, "stop"));
        // A run shorter than three steps stops when every step held.
        assert_eq!(after(&[held], 1), (1, "stop"));
        assert_eq!(after(&[held, held], 2), (2, "stop"));
        assert_eq!(after(&[held, fine], 2), (0, "clear"));
    }
}
