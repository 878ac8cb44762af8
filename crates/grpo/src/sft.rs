//! Supervised fine-tuning: cross-entropy on the assistant reply only (the
//! prompt is masked), for the paper's SFT baselines and for warm-starting
//! small models before GRPO.

use crate::batching::{micro_batches, score_seqs, Sequence};
use crate::evaluate::{evaluate, EvalReport};
use crate::metrics::{MetricsLog, StepMetrics};
use crate::state::{due, load_checkpoint, save_checkpoint, TrainerState};
use crate::{AdamW, GradAccumulator, Policy, RunSection, SftConfig, TrainError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use toolgym_env::{Sampler, SingleTurnSpec, Task, TaskSource};
use toolgym_model::candle_core::Var;
use toolgym_model::rng::mix_seed;

/// An SFT run in `run.out_dir/sft`.
pub struct SftTrainer {
    /// Hyperparameters.
    pub config: SftConfig,
    /// Run settings.
    pub run: RunSection,
    /// The policy being trained.
    pub policy: Policy,
    params: Vec<(String, Var)>,
    optimizer: AdamW,
    spec: SingleTurnSpec,
    sampler: Sampler,
    validation: Vec<Arc<Task>>,
    step: usize,
    phase_dir: PathBuf,
    metrics: MetricsLog,
    /// Validation settings: prompt and reply token limits.
    pub eval_limits: (usize, usize),
}

impl SftTrainer {
    /// Sets up an SFT run; resumes from `out_dir/sft` when `run.resume` and a
    /// checkpoint exists.
    pub fn new(
        policy: Policy,
        spec: SingleTurnSpec,
        train: Arc<dyn TaskSource>,
        validation: Vec<Arc<Task>>,
        config: SftConfig,
        run: RunSection,
    ) -> Result<Self, TrainError> {
        let phase_dir = run.out_dir.join("sft");
        let mut optimizer = AdamW::new(config.optim.clone());
        let mut sampler = Sampler::new(train, mix_seed(run.seed, 0x736674));
        let mut policy = policy;
        let mut step = 0;
        if run.resume {
            if let Some((p, state)) = load_checkpoint(&phase_dir, &policy, &mut optimizer)? {
                policy = p;
                step = state.step;
                sampler.set_position(state.data_position);
            }
        }
        let params = policy.model.named_vars()?;
        let metrics = MetricsLog::open(&run.out_dir, "sft", (step > 0).then_some(step))?;
        Ok(Self {
            eval_limits: (config.max_seq_tokens, 256),
            config,
            run,
            policy,
            params,
            optimizer,
            spec,
            sampler,
            validation,
            step,
            phase_dir,
            metrics,
        })
    }

    /// Completed steps.
    pub fn step_count(&self) -> usize {
        self.step
    }

    fn state(&self) -> TrainerState {
        TrainerState {
            phase: "sft".into(),
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

    /// Greedy validation accuracy.
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
            self.eval_limits.0,
            self.eval_limits.1,
            64,
        )
        .map(Some)
    }

    /// One optimiser step on `batch_size` examples.
    pub fn step(&mut self) -> Result<StepMetrics, TrainError> {
        let start = Instant::now();
        let tasks = self.sampler.next_batch(self.config.batch_size);
        if tasks.is_empty() {
            return Err(TrainError::Data("the training source has no tasks".into()));
        }
        let mut seqs = Vec::with_capacity(tasks.len());
        let mut truncated = 0;
        for t in &tasks {
            let target = self.policy.tokenizer.encode(&self.spec.target(t))?;
            let budget = self
                .config
                .max_seq_tokens
                .saturating_sub(target.len())
                .max(1);
            let (prompt, cut) = self.policy.encode_truncated(&self.spec.prompt(t), budget)?;
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
            let out = score_seqs(&self.policy.model, &seqs, &micro, 1.0, false)?;
            // Token-mean cross-entropy over the whole batch.
            let loss = (out.logprobs.sum_all()? * (-1.0 / total_tokens.max(1) as f64))?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            acc.backward(&loss, &self.params)?;
        }
        let s = self.optimizer.step(&self.params, &acc, self.config.steps)?;
        self.step += 1;
        let seconds = start.elapsed().as_secs_f64();
        let lens: Vec<usize> = seqs.iter().map(|s| s.completion.len()).collect();
        Ok(StepMetrics {
            phase: "sft".into(),
            step: self.step,
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

    /// Runs the remaining steps with periodic validation and checkpoints.
    pub fn run(
        &mut self,
        mut on_step: impl FnMut(&StepMetrics),
    ) -> Result<Option<EvalReport>, TrainError> {
        let mut last_eval = None;
        while self.step < self.config.steps {
            let mut m = self.step()?;
            let last = self.step >= self.config.steps;
            if due(self.step, self.run.eval_every, last) {
                if let Some(r) = self.validate()? {
                    m.val_accuracy = Some(r.accuracy);
                    m.val_reward = Some(r.mean_reward);
                    last_eval = Some(r);
                }
            }
            self.metrics.write(&m)?;
            on_step(&m);
            if due(self.step, self.run.save_every, last) {
                self.save_checkpoint()?;
            }
        }
        Ok(last_eval)
    }
}
