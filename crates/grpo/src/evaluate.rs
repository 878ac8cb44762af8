//! Validation: greedy replies to held-out tasks, scored by the training rule.

use crate::{Policy, TrainError};
use std::sync::Arc;
use toolgym_env::{SingleTurnSpec, Task};
use toolgym_model::rng::mix_seed;
use toolgym_model::{generate, GenerateRequest, GenerationConfig, SamplingParams};
use toolgym_reward::{Summary, Verdict};

/// Result of a validation pass.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Share of tasks answered with reward 1 by greedy decoding.
    pub accuracy: f64,
    /// Mean reward of the greedy replies.
    pub mean_reward: f64,
    /// Reasons histogram of the greedy replies.
    pub summary: Summary,
    /// With [`Sampled`] settings: the share of sampled replies with reward 1
    /// (pass@1 at that temperature, averaged over the samples).
    pub sampled_accuracy: Option<f64>,
    /// Per-task verdicts of the greedy replies, in task order.
    #[serde(skip)]
    pub verdicts: Vec<Verdict>,
    /// Per-task greedy replies, in task order.
    #[serde(skip)]
    pub replies: Vec<String>,
}

/// Optional sampled evaluation: `samples` replies per task at `temperature`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampled {
    /// Replies per task.
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f64,
    /// Seed of the sampling streams.
    pub seed: u64,
}

/// Generation limits of a validation pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalLimits {
    /// Prompts are left-truncated to this many tokens.
    pub max_prompt_tokens: usize,
    /// Replies stop after this many tokens.
    pub max_new_tokens: usize,
    /// Most prompts generated together.
    pub batch: usize,
}

/// Greedy-decodes a reply to every task and scores it with `spec`'s rule;
/// with `sampled`, also scores that many sampled replies per task.
pub fn evaluate(
    policy: &Policy,
    spec: &SingleTurnSpec,
    tasks: &[Arc<Task>],
    limits: EvalLimits,
    sampled: Option<Sampled>,
) -> Result<EvalReport, TrainError> {
    let model = policy.model.detached()?;
    let mut prompts = Vec::with_capacity(tasks.len());
    for t in tasks {
        prompts.push(
            policy
                .encode_truncated(&spec.prompt(t), limits.max_prompt_tokens)?
                .0,
        );
    }
    let replies_of =
        |sampling: SamplingParams, n: usize, seed: u64| -> Result<Vec<Vec<String>>, TrainError> {
            let config = GenerationConfig {
                max_new_tokens: limits.max_new_tokens,
                sampling,
                eos_token_ids: policy.eos_token_ids.clone(),
                max_batch_size: limits.batch * n,
                ..GenerationConfig::default()
            };
            let mut out = Vec::with_capacity(tasks.len());
            for (c, chunk) in prompts.chunks(limits.batch.max(1)).enumerate() {
                let requests: Vec<GenerateRequest> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, ids)| {
                        GenerateRequest::new(
                            ids.clone(),
                            n,
                            mix_seed(seed, (c * limits.batch + i) as u64),
                        )
                    })
                    .collect();
                for group in generate(&model, &requests, &config, Some(&policy.tokenizer))? {
                    out.push(
                        group
                            .into_iter()
                            .map(|c| c.text.unwrap_or_default())
                            .collect(),
                    );
                }
            }
            Ok(out)
        };
    let replies: Vec<String> = replies_of(SamplingParams::greedy(), 1, 0)?
        .into_iter()
        .map(|g| g.into_iter().next().unwrap_or_default())
        .collect();
    let items: Vec<(Arc<Task>, &str)> = tasks
        .iter()
        .cloned()
        .zip(replies.iter().map(String::as_str))
        .collect();
    let verdicts = spec.score_batch(&items);
    let summary = Summary::of(&verdicts);
    let sampled_accuracy = match sampled {
        Some(s) if s.samples > 0 => {
            let sampling = SamplingParams {
                greedy: false,
                temperature: s.temperature,
                ..SamplingParams::default()
            };
            let groups = replies_of(sampling, s.samples, s.seed)?;
            let items: Vec<(Arc<Task>, &str)> = tasks
                .iter()
                .zip(&groups)
                .flat_map(|(t, g)| g.iter().map(move |r| (t.clone(), r.as_str())))
                .collect();
            Some(Summary::of(&spec.score_batch(&items)).accuracy)
        }
        _ => None,
    };
    Ok(EvalReport {
        accuracy: summary.accuracy,
        mean_reward: summary.mean_reward,
        summary,
        sampled_accuracy,
        verdicts,
        replies,
    })
}
