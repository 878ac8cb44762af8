//! Packing sequences into micro-batches and scoring them.

use crate::TrainError;
use toolgym_model::candle_core::{Device, Tensor};
use toolgym_model::{score, Qwen2ForCausalLM, ScoreOptions, ScoreOutput};

/// A prompt and one completion of it, as token ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// Completion ids (the end-of-turn token included when generated).
    pub completion: Vec<u32>,
}

impl Sequence {
    /// Prompt plus completion length.
    pub fn len(&self) -> usize {
        self.prompt.len() + self.completion.len()
    }

    /// Whether both parts are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits `indices` into micro-batches of at most `size`, after sorting them
/// by sequence length so that each micro-batch pads little. Gradients are
/// summed over micro-batches, so the grouping does not change the result.
pub fn micro_batches(indices: &[usize], seqs: &[Sequence], size: usize) -> Vec<Vec<usize>> {
    let mut sorted = indices.to_vec();
    sorted.sort_by_key(|&i| (seqs[i].len(), i));
    sorted.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}

/// Scores the completions of `seqs[idx]` with `model` (differentiable when
/// the model is trainable).
pub fn score_seqs(
    model: &Qwen2ForCausalLM,
    seqs: &[Sequence],
    idx: &[usize],
    temperature: f64,
    entropy: bool,
) -> Result<ScoreOutput, TrainError> {
    let prompts: Vec<&[u32]> = idx.iter().map(|&i| seqs[i].prompt.as_slice()).collect();
    let completions: Vec<&[u32]> = idx.iter().map(|&i| seqs[i].completion.as_slice()).collect();
    Ok(score(
        model,
        &prompts,
        &completions,
        &ScoreOptions {
            temperature,
            entropy,
        },
    )?)
}

/// Per-sequence log-probs of every completion (no autograd), micro-batched.
pub fn logprobs_of(
    model: &Qwen2ForCausalLM,
    seqs: &[Sequence],
    micro: usize,
    temperature: f64,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let all: Vec<usize> = (0..seqs.len()).collect();
    let mut out = vec![Vec::new(); seqs.len()];
    for mb in micro_batches(&all, seqs, micro) {
        let s = score_seqs(model, seqs, &mb, temperature, false)?;
        let rows = s.logprobs.to_vec2::<f32>()?;
        for (row, &i) in rows.into_iter().zip(&mb) {
            out[i] = row[..seqs[i].completion.len()].to_vec();
        }
    }
    Ok(out)
}

/// Stacks per-sequence values into a zero-padded `[B, width]` tensor.
pub fn padded(rows: &[&[f32]], width: usize, device: &Device) -> Result<Tensor, TrainError> {
    let mut data = Vec::with_capacity(rows.len() * width);
    for r in rows {
        data.extend_from_slice(&r[..r.len().min(width)]);
        data.extend(std::iter::repeat_n(0.0, width.saturating_sub(r.len())));
    }
    Ok(Tensor::from_vec(data, (rows.len(), width), device)?)
}
