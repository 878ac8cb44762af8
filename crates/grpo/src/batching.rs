//! Packing sequences into micro-batches and scoring them.

use crate::TrainError;
use toolgym_model::candle_core::{Device, Tensor};
use toolgym_model::{score, Qwen2ForCausalLM, ScoreOptions, ScoreOutput};

/// A prompt and what follows it, as token ids, with a per-token train
/// mask: 1 for the model's tokens (trained on), 0 for tokens the
/// environment added between turns. The policy loss, the KL, the entropy
/// and every token-mean denominator count only masked-in tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// Every id after the prompt (the end-of-turn token included when
    /// generated).
    pub completion: Vec<u32>,
    /// One entry per completion id: 1 = model token, 0 = environment token.
    pub mask: Vec<u8>,
}

impl Sequence {
    /// A single reply: every completion token is the model's.
    pub fn reply(prompt: Vec<u32>, completion: Vec<u32>) -> Self {
        let mask = vec![1; completion.len()];
        Self {
            prompt,
            completion,
            mask,
        }
    }

    /// The number of model tokens.
    pub fn model_tokens(&self) -> usize {
        self.mask.iter().filter(|&&m| m == 1).count()
    }

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

/// What [`score_seqs`] computes besides log-probs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entropy {
    /// No entropy.
    Skip,
    /// Entropy as a metric (no gradient graph).
    Metric,
    /// Differentiable entropy (an entropy bonus is in the loss).
    Differentiable,
}

/// Scores the completions of `seqs[idx]` with `model` (differentiable when
/// the model is trainable). The output's `mask` is the train mask (0 on
/// environment tokens and padding), and log-probs and entropies are zeroed
/// where it is 0.
pub fn score_seqs(
    model: &Qwen2ForCausalLM,
    seqs: &[Sequence],
    idx: &[usize],
    temperature: f64,
    entropy: Entropy,
) -> Result<ScoreOutput, TrainError> {
    let prompts: Vec<&[u32]> = idx.iter().map(|&i| seqs[i].prompt.as_slice()).collect();
    let completions: Vec<&[u32]> = idx.iter().map(|&i| seqs[i].completion.as_slice()).collect();
    let mut out = score(
        model,
        &prompts,
        &completions,
        &ScoreOptions {
            temperature,
            entropy: entropy != Entropy::Skip,
            entropy_grad: entropy == Entropy::Differentiable,
        },
    )?;
    if idx.iter().any(|&i| seqs[i].mask.contains(&0)) {
        let width = out.mask.dims()[1];
        let rows: Vec<Vec<f32>> = idx
            .iter()
            .map(|&i| seqs[i].mask.iter().map(|&m| f32::from(m)).collect())
            .collect();
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let train = padded(&refs, width, out.mask.device())?.to_dtype(out.mask.dtype())?;
        out.logprobs = (&out.logprobs * &train)?;
        out.entropies = match out.entropies {
            Some(e) => Some((e * &train)?),
            None => None,
        };
        out.mask = train;
    }
    Ok(out)
}

/// Per-sequence log-probs of the completions of `seqs[indices]` (no
/// autograd), micro-batched; 0 on environment tokens, and an empty row for
/// every sequence not in `indices`.
pub fn logprobs_of(
    model: &Qwen2ForCausalLM,
    seqs: &[Sequence],
    indices: &[usize],
    micro: usize,
    temperature: f64,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut out = vec![Vec::new(); seqs.len()];
    for mb in micro_batches(indices, seqs, micro) {
        let s = score_seqs(model, seqs, &mb, temperature, Entropy::Skip)?;
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
