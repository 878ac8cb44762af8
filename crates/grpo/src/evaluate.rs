//! Validation: greedy replies to held-out tasks, scored by the training rule.

use crate::{Policy, TrainError};
use std::sync::Arc;
use toolgym_env::{SingleTurnSpec, Task};
use toolgym_model::{generate, GenerateRequest, GenerationConfig, SamplingParams};
use toolgym_reward::{Summary, Verdict};

/// Result of a validation pass.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EvalReport {
    /// Share of tasks answered with reward 1.
    pub accuracy: f64,
    /// Mean reward.
    pub mean_reward: f64,
    /// Reasons histogram.
    pub summary: Summary,
    /// Per-task verdicts, in task order.
    #[serde(skip)]
    pub verdicts: Vec<Verdict>,
    /// Per-task replies, in task order.
    #[serde(skip)]
    pub replies: Vec<String>,
}

/// Greedy-decodes a reply to every task (at most `max_new_tokens` each,
/// `batch` prompts at a time) and scores it with `spec`'s rule.
pub fn evaluate(
    policy: &Policy,
    spec: &SingleTurnSpec,
    tasks: &[Arc<Task>],
    max_prompt_tokens: usize,
    max_new_tokens: usize,
    batch: usize,
) -> Result<EvalReport, TrainError> {
    let model = policy.model.detached()?;
    let config = GenerationConfig {
        max_new_tokens,
        sampling: SamplingParams::greedy(),
        eos_token_ids: policy.eos_token_ids.clone(),
        max_batch_size: batch,
        ..GenerationConfig::default()
    };
    let mut requests = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (ids, _) = policy.encode_truncated(&spec.prompt(t), max_prompt_tokens)?;
        requests.push(GenerateRequest::new(ids, 1, 0));
    }
    let mut replies = Vec::with_capacity(tasks.len());
    for chunk in requests.chunks(batch.max(1)) {
        for out in generate(&model, chunk, &config, Some(&policy.tokenizer))? {
            let c = out.into_iter().next();
            replies.push(c.and_then(|c| c.text).unwrap_or_default());
        }
    }
    let items: Vec<(Arc<Task>, &str)> = tasks
        .iter()
        .cloned()
        .zip(replies.iter().map(String::as_str))
        .collect();
    let verdicts = spec.score_batch(&items);
    let summary = Summary::of(&verdicts);
    Ok(EvalReport {
        accuracy: summary.accuracy,
        mean_reward: summary.mean_reward,
        summary,
        verdicts,
        replies,
    })
}
