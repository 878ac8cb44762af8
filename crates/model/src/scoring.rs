//! Log-probabilities and entropies of given completions, for training.
//!
//! Layout: prompts are left-padded and completions right-padded, so every
//! completion starts at the same slot; position ids count from each row's
//! first real token. Rows that share a prompt (the G completions of a GRPO
//! group) run it once: a prefix pass over the distinct prompts, then the
//! completions as its continuations (see
//! [`Qwen2ForCausalLM::forward_hidden_after`]); the log-probs, entropies
//! and gradients are those of scoring every row after its own copy of the
//! prompt, up to float rounding. With a trainable model the outputs are
//! differentiable with respect to its `Var`s; with a frozen one (reference
//! model) no graph is built.

use std::collections::HashMap;

use candle_core::{DType, Tensor, D};

use crate::batch::TokenBatch;
use crate::error::{ModelError, Result};
use crate::fused;
use crate::qwen2::Qwen2ForCausalLM;

/// Settings of [`score`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOptions {
    /// Logits are divided by this before the softmax (verl scores at the
    /// rollout temperature; use 1.0 to match generation's log-probs).
    pub temperature: f64,
    /// Also compute the entropy of each next-token distribution (costs one
    /// more `[batch, tokens, vocab]` tensor).
    pub entropy: bool,
    /// Make the entropy differentiable (for an entropy bonus). Without it
    /// the entropy is computed from detached log-probs: a metric that
    /// builds no gradient graph, and keeps no `[batch, tokens, vocab]`
    /// tensor alive for the backward pass.
    pub entropy_grad: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            temperature: 1.0,
            entropy: false,
            entropy_grad: false,
        }
    }
}

/// Output of [`score`]; every tensor is `[batch, max_completion_len]`, f32 (f64 for f64 models).
#[derive(Debug, Clone)]
pub struct ScoreOutput {
    /// `log p(completion[j] | prompt, completion[..j])`; 0 on padding.
    pub logprobs: Tensor,
    /// Entropy of each next-token distribution (0 on padding), if requested.
    pub entropies: Option<Tensor>,
    /// 1 for real completion tokens, 0 for padding.
    pub mask: Tensor,
    /// Number of real tokens of each completion.
    pub completion_lens: Vec<usize>,
}

/// Differentiable log-softmax over the last dimension (the max shift is a
/// constant for autograd).
pub fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

/// Scores `completions[i]` given `prompts[i]`.
///
/// Prompts must be non-empty; completions may be empty (fully masked row)
/// but not all of them.
pub fn score<P: AsRef<[u32]>, C: AsRef<[u32]>>(
    model: &Qwen2ForCausalLM,
    prompts: &[P],
    completions: &[C],
    opts: &ScoreOptions,
) -> Result<ScoreOutput> {
    if prompts.len() != completions.len() {
        return Err(ModelError::input(format!(
            "{} prompts for {} completions",
            prompts.len(),
            completions.len()
        )));
    }
    if prompts.is_empty() {
        return Err(ModelError::input("nothing to score"));
    }
    if !(opts.temperature.is_finite() && opts.temperature > 0.0) {
        return Err(ModelError::input(format!(
            "scoring temperature must be positive, got {}",
            opts.temperature
        )));
    }
    if let Some(i) = prompts.iter().position(|p| p.as_ref().is_empty()) {
        return Err(ModelError::input(format!("prompt {i} is empty")));
    }
    let p_len = prompts.iter().map(|p| p.as_ref().len()).max().unwrap_or(0);
    let c_len = completions
        .iter()
        .map(|c| c.as_ref().len())
        .max()
        .unwrap_or(0);
    if c_len == 0 {
        return Err(ModelError::input("every completion is empty"));
    }
    let hidden = match shared_prompts(prompts) {
        Some((distinct, prompt_of_row)) => {
            hidden_shared(model, &distinct, &prompt_of_row, completions, c_len)?
        }
        None => hidden_each(model, prompts, completions, p_len, c_len)?,
    };
    let b = prompts.len();
    let dev = model.device().clone();
    let mut targets = Vec::with_capacity(b * c_len);
    let mut mask = Vec::with_capacity(b * c_len);
    for c in completions {
        let c = c.as_ref();
        targets.extend_from_slice(c);
        targets.extend(std::iter::repeat_n(0u32, c_len - c.len()));
        mask.extend((0..c_len).map(|j| if j < c.len() { 1f32 } else { 0f32 }));
    }
    // Softmax in f32 (f64 models stay in f64, e.g. for gradient checks).
    let compute = if model.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let mut logits = model.logits_from_hidden(&hidden)?.to_dtype(compute)?;
    if opts.temperature != 1.0 {
        logits = (logits / opts.temperature)?;
    }
    let mask_t = Tensor::from_vec(mask, (b, c_len), &dev)?.to_dtype(compute)?;
    // On the CPU the fused op gives the targets' log-probs without building
    // the full log-softmax; that is built only when the entropy needs it
    // (detached unless the entropy is differentiable), or off the CPU.
    let fused_targets = fused::fits(&logits) && !opts.entropy_grad;
    let logp = if fused_targets {
        None
    } else {
        Some(log_softmax_last(&logits)?)
    };
    let logprobs = match &logp {
        Some(lp) => {
            let targets = Tensor::from_vec(targets, (b, c_len, 1), &dev)?;
            lp.gather(&targets, D::Minus1)?.squeeze(D::Minus1)?
        }
        None => {
            let vocab = logits.dim(D::Minus1)?;
            fused::token_logprobs(&logits.reshape((b * c_len, vocab))?, targets)?
                .reshape((b, c_len))?
        }
    };
    let logprobs = (logprobs * &mask_t)?;
    let entropies = if opts.entropy {
        let lp = match logp {
            Some(lp) if opts.entropy_grad => lp,
            Some(lp) => lp.detach(),
            None => log_softmax_last(&logits.detach())?,
        };
        let ent = (lp.exp()? * &lp)?.sum(D::Minus1)?.neg()?;
        Some((ent * &mask_t)?)
    } else {
        None
    };
    Ok(ScoreOutput {
        logprobs,
        entropies,
        mask: mask_t,
        completion_lens: completions.iter().map(|c| c.as_ref().len()).collect(),
    })
}

/// The distinct prompts of `prompts`, in order of first use, and each
/// row's index among them (rows with equal ids share an index).
pub fn distinct_prompts<P: AsRef<[u32]>>(prompts: &[P]) -> (Vec<&[u32]>, Vec<usize>) {
    let mut index: HashMap<&[u32], usize> = HashMap::with_capacity(prompts.len());
    let mut distinct = Vec::new();
    let prompt_of_row: Vec<usize> = prompts
        .iter()
        .map(|p| {
            *index.entry(p.as_ref()).or_insert_with(|| {
                distinct.push(p.as_ref());
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, prompt_of_row)
}

/// [`distinct_prompts`] when some rows share a prompt (the G completions of
/// a GRPO group); `None` when every prompt is distinct, or when every
/// prompt is a single token (the prefix pass would be empty).
fn shared_prompts<P: AsRef<[u32]>>(prompts: &[P]) -> Option<(Vec<&[u32]>, Vec<usize>)> {
    let (distinct, prompt_of_row) = distinct_prompts(prompts);
    let shared = distinct.len() < prompts.len() && distinct.iter().any(|p| p.len() > 1);
    shared.then_some((distinct, prompt_of_row))
}

/// Hidden states `[b, c_len, hidden]` of the slots that predict each
/// completion token, with every row run after its own left-padded prompt:
/// slot `p_len - 1 + j` predicts completion token `j`.
fn hidden_each<P: AsRef<[u32]>, C: AsRef<[u32]>>(
    model: &Qwen2ForCausalLM,
    prompts: &[P],
    completions: &[C],
    p_len: usize,
    c_len: usize,
) -> Result<Tensor> {
    let (b, t) = (prompts.len(), p_len + c_len);
    let mut ids = Vec::with_capacity(b * t);
    let mut pad_left = Vec::with_capacity(b);
    for (p, c) in prompts.iter().zip(completions) {
        let (p, c) = (p.as_ref(), c.as_ref());
        pad_left.push(p_len - p.len());
        ids.extend(std::iter::repeat_n(0u32, p_len - p.len()));
        ids.extend_from_slice(p);
        ids.extend_from_slice(c);
        ids.extend(std::iter::repeat_n(0u32, c_len - c.len()));
    }
    let batch = TokenBatch::new(ids, b, t, pad_left)?;
    let hidden = model.forward_hidden(&batch, None)?;
    Ok(hidden.narrow(1, p_len - 1, c_len)?.contiguous()?)
}

/// Hidden states `[b, c_len, hidden]` as [`hidden_each`] gives them, with
/// each distinct prompt run once: a prefix pass over every prompt but its
/// last token, then one continuation row per completion (the prompt's last
/// token, then the completion, right-padded), so that slot `j` predicts
/// completion token `j`. Gradients of the rows sharing a prompt meet in its
/// prefix pass.
fn hidden_shared<C: AsRef<[u32]>>(
    model: &Qwen2ForCausalLM,
    distinct: &[&[u32]],
    prompt_of_row: &[usize],
    completions: &[C],
    c_len: usize,
) -> Result<Tensor> {
    let len = distinct.iter().map(|p| p.len() - 1).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(distinct.len() * len);
    let mut pad_left = Vec::with_capacity(distinct.len());
    for p in distinct {
        let body = &p[..p.len() - 1];
        pad_left.push(len - body.len());
        ids.extend(std::iter::repeat_n(0u32, len - body.len()));
        ids.extend_from_slice(body);
    }
    let prefix = model.forward_prefix(&TokenBatch::new(ids, distinct.len(), len, pad_left)?)?;
    let (b, t) = (prompt_of_row.len(), 1 + c_len);
    let mut ids = Vec::with_capacity(b * t);
    for (&p, c) in prompt_of_row.iter().zip(completions) {
        let c = c.as_ref();
        ids.push(distinct[p][distinct[p].len() - 1]);
        ids.extend_from_slice(c);
        ids.extend(std::iter::repeat_n(0u32, c_len - c.len()));
    }
    let batch = TokenBatch::new(ids, b, t, vec![0; b])?;
    let hidden = model.forward_hidden_after(&batch, &prefix, prompt_of_row)?;
    Ok(hidden.narrow(1, 0, c_len)?.contiguous()?)
}
