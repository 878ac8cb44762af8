//! Supervised fine-tuning: cross-entropy on the assistant reply only (the
//! prompt is masked), for the paper's SFT baselines and for warm-starting
//! small models before GRPO.

use crate::batching::{micro_batches, score_seqs, Sequence};
use crate::evaluate::EvalReport;
use crate::metrics::StepMetrics;
use crate::phase::{Phase, PhaseSetup};
use crate::{GradAccumulator, Policy, RunSection, SftConfig, TrainError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use toolgym_env::{SingleTurnSpec, Task, TaskSource};

/// An SFT run in `run.out_dir/sft`.
pub struct SftTrainer {
    /// Hyperparameters.
    pub config: SftConfig,
    phase: Phase,
}

impl SftTrainer {
    /// Sets up an SFT run; resumes from `out_dir/sft` when `run.resume` and a
    /// checkpoint exists. Validation replies are limited to 256 tokens (see
    /// [`SftTrainer::set_eval_limits`]).
    pub fn new(
        policy: Policy,
        spec: SingleTurnSpec,
        train: Arc<dyn TaskSource>,
        validation: Vec<Arc<Task>>,
        config: SftConfig,
        run: RunSection,
    ) -> Result<Self, TrainError> {
        let phase = Phase::open(PhaseSetup {
            name: "sft",
            policy,
            spec,
            train,
            validation,
            optim: config.optim.clone(),
            run,
            total_steps: config.steps,
            eval_limits: (config.max_seq_tokens, 256),
        })?;
        Ok(Self { config, phase })
    }

    /// Sets the prompt and reply token limits of validation.
    pub fn set_eval_limits(&mut self, max_prompt_tokens: usize, max_reply_tokens: usize) {
        self.phase.eval_limits = (max_prompt_tokens, max_reply_tokens);
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

    /// One optimiser step on `batch_size` examples.
    pub fn step(&mut self) -> Result<StepMetrics, TrainError> {
        let start = Instant::now();
        let p = &mut self.phase;
        let tasks = p.sampler.next_batch(self.config.batch_size);
        if tasks.is_empty() {
            return Err(TrainError::Data("the training source has no tasks".into()));
        }
        let mut seqs = Vec::with_capacity(tasks.len());
        let mut truncated = 0;
        for t in &tasks {
            let target = p.policy.tokenizer.encode(&p.spec.target(t))?;
            let budget = self
                .config
                .max_seq_tokens
                .saturating_sub(target.len())
                .max(1);
            let (prompt, cut) = p.policy.encode_truncated(&p.spec.prompt(t), budget)?;
            truncated += usize::from(cut);
            seqs.push(Sequence {
                prompt,
                completion: target,
            });
        }
        let all: Vec<usize> = (0..seqs.len()).collect();
        let total_tokens: usize = seqs.iter().map(|s| s.completion.len()).sum();
        let mut acc = GradAccumulator::default();
        let mut loss_sum = 0.0;
        for micro in micro_batches(&all, &seqs, self.config.micro_batch_seqs) {
            let out = score_seqs(&p.policy.model, &seqs, &micro, 1.0, false)?;
            // Token-mean cross-entropy over the whole batch.
            let loss = (out.logprobs.sum_all()? * (-1.0 / total_tokens.max(1) as f64))?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            acc.backward(&loss, &p.params)?;
        }
        let s = p.optimizer.step(&p.params, &acc, self.config.steps)?;
        p.step += 1;
        let seconds = start.elapsed().as_secs_f64();
        let lens: Vec<usize> = seqs.iter().map(|s| s.completion.len()).collect();
        Ok(StepMetrics {
            phase: "sft".into(),
            step: p.step,
            loss: loss_sum,
            lr: s.lr,
            grad_norm: s.grad_norm,
            step_seconds: seconds,
            update_seconds: seconds,
            train_tokens_per_s: seqs.iter().map(Sequence::len).sum::<usize>() as f64
                / seconds.max(1e-9),
            response_len_mean: Some(lens.iter().sum::<usize>() as f64 / lens.len() as f64),
            response_len_max: lens.iter().copied().max(),
            truncated_prompts: Some(truncated),
            ..StepMetrics::default()
        })
    }

    /// Runs the remaining steps with periodic validation and checkpoints;
    /// returns the validation after the last step.
    pub fn run(
        &mut self,
        on_step: impl FnMut(&StepMetrics),
    ) -> Result<Option<EvalReport>, TrainError> {
        Phase::run_steps(self, |t| &mut t.phase, Self::step, on_step)
    }
}
