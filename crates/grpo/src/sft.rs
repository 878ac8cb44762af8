//! Supervised fine-tuning on demonstration episodes: cross-entropy on the
//! model's turns only (the prompt and everything the environment adds are
//! masked), for the paper's SFT baselines and for warm-starting small
//! models before GRPO.
//!
//! A demonstration is an episode whose replies come from the env's
//! reference solver ([`toolgym_env::ToolEnv::demonstration`]), run through
//! the rollout engine, tools executed: for a single-turn task, the prompt
//! and the canonical reply; for a multi-turn env with a solver, every turn.

use crate::batching::{
    micro_batches, micro_workers, run_micro_batches, score_seqs, Entropy, Sequence,
};
use crate::evaluate::EvalReport;
use crate::metrics::StepMetrics;
use crate::phase::{count_streak, Phase, PhaseSetup, Streak, STEPS_IN_A_ROW_STOP};
use crate::rollout::{run_episodes, Demonstrator, EpisodeGroup, EpisodeReward, RolloutLimits};
use crate::{GradAccumulator, Policy, RunSection, SftConfig, TrainError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use toolgym_env::env::DynEnvFactory;
use toolgym_env::{Task, TaskSource};
use toolgym_model::rng::mix_seed;

/// An SFT run in `run.out_dir/sft`.
pub struct SftTrainer {
    /// Hyperparameters.
    pub config: SftConfig,
    phase: Phase,
}

impl SftTrainer {
    /// Sets up an SFT run on demonstrations of the environments `factory`
    /// makes, for tasks from `train`; resumes from `out_dir/sft` when
    /// `run.resume` and a checkpoint exists. Validation replies are limited
    /// to 256 tokens (see [`SftTrainer::set_eval_limits`]).
    pub fn new(
        policy: Policy,
        factory: Arc<dyn DynEnvFactory>,
        train: Arc<dyn TaskSource>,
        validation: Vec<Arc<Task>>,
        config: SftConfig,
        run: RunSection,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let eval_limits = RolloutLimits {
            max_prompt_tokens: config.max_seq_tokens,
            truncate_prompts: false,
            max_response_tokens: 256,
            max_turns: config.max_turns,
            max_episode_tokens: 0,
            reward: EpisodeReward::Sum,
            env_timeout: config.env_timeout(),
            env_concurrency: config.env_concurrency,
        };
        let train_tasks = crate::phase::train_tasks_of_source(train.as_ref());
        let phase = Phase::open(PhaseSetup {
            name: "sft",
            policy,
            factory,
            train,
            validation,
            optim: config.optim.clone(),
            run,
            total_steps: config.steps,
            eval_limits,
            train_tasks,
            env_failures: crate::phase::LEFT_OUT.into(),
            env_timeout: config.env_timeout(),
        })?;
        Ok(Self { config, phase })
    }

    /// Sets the limits of validation episodes.
    pub fn set_eval_limits(&mut self, limits: RolloutLimits) {
        self.phase.eval_limits = limits;
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

    /// Writes a checkpoint of the current state.
    pub fn save_checkpoint(&self) -> Result<PathBuf, TrainError> {
        self.phase.save_checkpoint()
    }

    /// Greedy validation accuracy.
    pub fn validate(&self) -> Result<Option<EvalReport>, TrainError> {
        self.phase.validate()
    }

    /// One optimiser step on `batch_size` demonstration episodes. Examples
    /// over `max_seq_tokens`, and tasks whose env has no complete
    /// demonstration, are left out and counted (`skipped_episodes`). A
    /// step left with no demonstration to train on (every episode failed
    /// in its env, or none is complete within the limits) makes no update
    /// (a warning; three such steps in a row stop the run, with the
    /// reason).
    pub fn step(&mut self) -> Result<StepMetrics, TrainError> {
        let start = Instant::now();
        let p = &mut self.phase;
        let c = &self.config;
        p.start_step();
        let tasks = p.sampler.next_batch(c.batch_size);
        if tasks.is_empty() {
            return Err(p.no_tasks());
        }
        let step_seed = mix_seed(p.run.seed, 0x0073_6674_0000 + p.step as u64);
        let groups: Vec<EpisodeGroup> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| EpisodeGroup {
                task: t.clone(),
                n: 1,
                reset_seed: mix_seed(step_seed, i as u64),
                sample_seed: 0,
            })
            .collect();
        let limits = RolloutLimits {
            max_prompt_tokens: c.max_seq_tokens,
            truncate_prompts: false,
            max_response_tokens: c.max_seq_tokens,
            max_turns: c.max_turns,
            max_episode_tokens: c.max_seq_tokens,
            reward: EpisodeReward::Sum,
            env_timeout: c.env_timeout(),
            env_concurrency: c.env_concurrency,
        };
        let mut actor = Demonstrator::new(&p.policy.tokenizer, &p.policy.eos_token_ids);
        let episodes = run_episodes(
            &p.factory,
            &groups,
            &mut actor,
            p.policy.token_space(),
            &limits,
        )?;
        let most = c.max_seq_tokens.min(p.policy.token_space().max_context);
        let complete = |e: &crate::rollout::Trajectory| trainable_demonstration(e, most);
        let episodes: Vec<_> = episodes.into_iter().flatten().collect();
        let ran = episodes.len();
        // Episodes whose env gave no first reply (run, not failed in their
        // env nor left out for their prompt's length): no reference solver.
        let undemonstrated = episodes
            .iter()
            .filter(|e| e.replies.is_empty() && !e.env_failed() && !e.prompt_over_limit())
            .count();
        let mut stats = crate::metrics::EpisodeStats::of(&episodes);
        let (mut seqs, mut skipped, mut solved) = (Vec::new(), 0, 0);
        for e in episodes {
            if complete(&e) {
                solved += usize::from(e.success());
                seqs.push(Sequence {
                    prompt: e.prompt,
                    completion: e.tokens,
                    mask: e.train_mask,
                });
            } else {
                skipped += 1;
            }
        }
        if seqs.is_empty() && undemonstrated == ran && ran > 0 {
            return Err(TrainError::Data(format!(
                "sft step {}: the environment gave no demonstration for any of {} tasks \
                 (ToolEnv::demonstration returned None at the first turn: a MultiTurnSpec \
                 without with_solver, or an env without a reference solver); SFT trains on \
                 demonstrations: give the env a solver, or train GRPO alone (`toolgym train \
                 grpo`, Phases::Grpo)",
                p.step + 1,
                tasks.len()
            )));
        }
        // A step with no demonstration to train on makes no update, with a
        // warning; three such steps in a row (or every step of a shorter
        // run) stop the run, as in GRPO: a service down for a minute, or
        // a small batch whose demonstrations timed out or ran over
        // sft.max_seq_tokens, is no reason to end it (resumed, the same
        // step would fail again). Each count goes on over a step the other
        // made useless, as GRPO's do.
        let env_failed = ran > 0 && stats.env_failures == ran;
        let empty = seqs.is_empty() && !env_failed;
        let failing = count_streak(&mut p.env_failure_steps, env_failed, empty, p.total_steps);
        let emptiness = count_streak(&mut p.empty_steps, empty, env_failed, p.total_steps);
        if env_failed || empty {
            let (why, streak) = if env_failed {
                let why = format!(
                    "sft step {}: no demonstration to train on, {} of {} episodes failed in \
                     their env (the first: {})",
                    p.step + 1,
                    stats.env_failures,
                    tasks.len(),
                    stats.env_error.as_deref().unwrap_or("?")
                );
                (why, failing)
            } else {
                let failures = match &stats.env_error {
                    Some(first) => format!(
                        "; {} ended by an env failure, the first: {first}",
                        stats.env_failures
                    ),
                    None => String::new(),
                };
                let failures = match undemonstrated {
                    0 => failures,
                    n => format!("{failures}; {n} had no demonstration (no reference solver)"),
                };
                let limit = crate::rollout::limit_named(
                    "sft.max_seq_tokens",
                    c.max_seq_tokens,
                    p.policy.token_space().max_context,
                );
                let why = format!(
                    "sft step {}: none of {} tasks has a complete demonstration within {limit} \
                     and sft.max_turns = {}{failures}",
                    p.step + 1,
                    tasks.len(),
                    c.max_turns
                );
                (why, emptiness)
            };
            if let Streak::Stop(before) = streak {
                return Err(if env_failed {
                    TrainError::Env(format!("{why}{before}"))
                } else {
                    TrainError::Data(format!("{why}{before}"))
                });
            }
            eprintln!(
                "warning: {why}: no update this step (the run stops after {} such steps in a row)",
                STEPS_IN_A_ROW_STOP.min(p.total_steps)
            );
            p.step += 1;
            // The schedule still counts the step (see `AdamW::pass_step`).
            p.optimizer.pass_step();
            // No loss statistics (null, not a 0 that reads as a perfect
            // fit), as a GRPO step with no update.
            let mut m = StepMetrics {
                phase: "sft".into(),
                step: p.step,
                loss: f64::NAN,
                lr: f64::NAN,
                grad_norm: f64::NAN,
                update_seconds: f64::NAN,
                train_tokens_per_s: f64::NAN,
                skipped_updates: Some(0),
                step_seconds: start.elapsed().as_secs_f64(),
                skipped_episodes: Some(skipped),
                trained_tokens: Some(0),
                ..StepMetrics::default()
            };
            stats.fill_env(&mut m);
            p.report_source_skips(&mut m);
            return Ok(m);
        }
        let all: Vec<usize> = (0..seqs.len()).collect();
        let total_tokens: usize = seqs.iter().map(Sequence::model_tokens).sum();
        let mut acc = GradAccumulator::default();
        let mut loss_sum = 0.0;
        let model = &p.policy.model;
        let micros = micro_batches(&all, &seqs, c.micro_batch_seqs);
        let work = |micro: &[usize]| -> Result<_, TrainError> {
            let out = score_seqs(model, &seqs, micro, 1.0, Entropy::Skip)?;
            // Token-mean cross-entropy over the model tokens of the batch.
            let loss = (out.logprobs.sum_all()? * (-1.0 / total_tokens.max(1) as f64))?;
            let grads = loss.backward()?;
            Ok((loss, grads))
        };
        run_micro_batches(
            &micros,
            micro_workers(model.device()),
            work,
            |_, (loss, grads)| {
                loss_sum += loss.to_scalar::<f32>()? as f64;
                acc.add(&grads, &p.params)?;
                Ok(())
            },
        )?;
        let s = p.optimizer.step(&p.params, &acc, c.steps)?;
        p.step += 1;
        let seconds = start.elapsed().as_secs_f64();
        let lens: Vec<usize> = seqs.iter().map(Sequence::model_tokens).collect();
        let mut m = StepMetrics {
            phase: "sft".into(),
            step: p.step,
            loss: loss_sum,
            accuracy: Some(solved as f64 / seqs.len() as f64),
            lr: s.lr,
            skipped_updates: Some(usize::from(!s.applied)),
            grad_norm: s.grad_norm,
            step_seconds: seconds,
            update_seconds: seconds,
            train_tokens_per_s: seqs.iter().map(Sequence::len).sum::<usize>() as f64
                / seconds.max(1e-9),
            response_len_mean: Some(lens.iter().sum::<usize>() as f64 / lens.len() as f64),
            response_len_max: lens.iter().copied().max(),
            skipped_episodes: Some(skipped),
            trained_tokens: Some(total_tokens),
            masked_tokens: Some(
                seqs.iter().map(|s| s.completion.len()).sum::<usize>() - total_tokens,
            ),
            ..StepMetrics::default()
        };
        // Env failures (a demonstration, step or reset that panicked or
        // ran past sft.env_timeout_s) are said in the step's metrics.
        stats.fill_env(&mut m);
        p.report_source_skips(&mut m);
        Ok(m)
    }

    /// Runs the remaining steps with periodic validation and checkpoints;
    /// returns the validation after the last step.
    pub fn run(
        &mut self,
        on_step: impl FnMut(&StepMetrics),
    ) -> Result<Option<EvalReport>, TrainError> {
        let after = Phase::run_steps(self, |t| &mut t.phase, Self::step, on_step);
        // As GRPO's `run`: the last envs' clean-up gets its time.
        if let Some(limit) = self.config.env_timeout() {
            crate::rollout::wait_for_env_drops(limit);
        }
        after
    }
}

/// Whether SFT trains on a demonstration episode: it ended on its own (no
/// env failure, no limit), has model tokens, and holds at most `most`
/// tokens: `sft.max_seq_tokens`, or the model's context where that is
/// less. The rollout keeps env text within the context, but a
/// demonstration is written, not sampled within a budget: a last reply
/// can run past the positions the model has, where training would have
/// RoPE extrapolate and nothing would say so.
fn trainable_demonstration(e: &crate::rollout::Trajectory, most: usize) -> bool {
    e.error.is_none()
        && e.end.is_some_and(|end| !end.is_truncation())
        && e.model_tokens() > 0
        && e.len() <= most
}
