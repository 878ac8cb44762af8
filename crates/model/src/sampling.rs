//! Next-token selection: greedy, temperature, top-k and top-p (nucleus).
//!
//! Order of the filters follows transformers' logits processors: the logits
//! are divided by the temperature, then restricted to the `top_k` largest
//! (ties at the k-th value kept), then to the smallest prefix of the remaining
//! tokens, by decreasing probability, whose mass reaches `top_p` (the token
//! that crosses `top_p` is kept). One uniform draw per sampled token.

use std::cmp::Ordering;

use crate::error::{ModelError, Result};
use crate::rng::Rng;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Always take the most likely token (first index on ties).
    pub greedy: bool,
    /// Softmax temperature (> 0; 0 means greedy).
    pub temperature: f64,
    /// Nucleus mass in (0, 1]; 1 disables the filter.
    pub top_p: f64,
    /// Keep only the k most likely tokens; 0 disables the filter.
    pub top_k: usize,
}

impl Default for SamplingParams {
    /// Plain sampling from the model distribution: temperature 1, no top-k/top-p.
    fn default() -> Self {
        SamplingParams {
            greedy: false,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding.
    pub fn greedy() -> Self {
        SamplingParams {
            greedy: true,
            ..Self::default()
        }
    }

    /// Whether these parameters select the argmax (greedy flag or temperature 0).
    pub fn is_greedy(&self) -> bool {
        self.greedy || self.temperature == 0.0
    }

    /// Rejects negative / non-finite temperatures and `top_p` outside (0, 1].
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(ModelError::input(format!(
                "temperature must be finite and >= 0, got {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ModelError::input(format!(
                "top_p must be in (0, 1], got {}",
                self.top_p
            )));
        }
        Ok(())
    }
}

/// Index of the largest logit (first on ties; NaNs ignored).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best_v = v;
            best = i;
        }
    }
    best as u32
}

/// `log(sum(exp(logits)))`: f32 exponentials of the max-shifted logits,
/// summed in f64 (NaNs ignored).
pub fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return f64::from(max);
    }
    let s: f64 = logits
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| f64::from((v - max).exp()))
        .sum();
    f64::from(max) + s.ln()
}

/// Log-probability of `token` under `softmax(logits)` (temperature 1).
pub fn token_logprob(logits: &[f32], token: u32) -> f32 {
    (f64::from(logits[token as usize]) - log_sum_exp(logits)) as f32
}

/// Descending by weight, ascending by id: a total order, so selection is
/// deterministic.
fn by_weight_desc(a: &(u32, f64), b: &(u32, f64)) -> Ordering {
    b.1.partial_cmp(&a.1)
        .unwrap_or(Ordering::Equal)
        .then(a.0.cmp(&b.0))
}

/// Chooses the next token from one row of logits.
pub fn sample_token(logits: &[f32], params: &SamplingParams, rng: &mut Rng) -> u32 {
    sample_token_by(logits, params, || rng.next_f64())
}

/// [`sample_token`] with the uniform draw in `[0, 1)` supplied by `draw`,
/// which is called at most once (never for greedy selection, a one-token
/// vocabulary or a row with no finite logit).
pub fn sample_token_by(logits: &[f32], params: &SamplingParams, draw: impl FnOnce() -> f64) -> u32 {
    if params.is_greedy() || logits.len() <= 1 {
        return argmax(logits);
    }
    let inv_t = (1.0 / params.temperature) as f32;
    let max = logits[argmax(logits) as usize];
    let mut cands: Vec<(u32, f64)> = Vec::with_capacity(logits.len());
    let threshold = if params.top_k > 0 && params.top_k < logits.len() {
        let mut vals: Vec<f32> = logits
            .iter()
            .map(|&v| if v.is_nan() { f32::NEG_INFINITY } else { v })
            .collect();
        let k = params.top_k - 1;
        let (_, kth, _) =
            vals.select_nth_unstable_by(k, |a, b| b.partial_cmp(a).unwrap_or(Ordering::Equal));
        *kth
    } else {
        f32::NEG_INFINITY
    };
    for (i, &v) in logits.iter().enumerate() {
        if v >= threshold && !v.is_nan() {
            let w = f64::from(((v - max) * inv_t).exp());
            if w > 0.0 {
                cands.push((i as u32, w));
            }
        }
    }
    if cands.is_empty() {
        return argmax(logits);
    }
    let total: f64 = cands.iter().map(|c| c.1).sum();
    let kept: &[(u32, f64)] = if params.top_p < 1.0 {
        let target = params.top_p * total;
        let len = cands.len();
        let mut m = 64.min(len);
        loop {
            if m < len {
                cands.select_nth_unstable_by(m - 1, by_weight_desc);
            }
            cands[..m].sort_unstable_by(by_weight_desc);
            let mut cum = 0.0;
            let mut keep = None;
            for (i, c) in cands[..m].iter().enumerate() {
                if cum >= target {
                    keep = Some(i);
                    break;
                }
                cum += c.1;
            }
            match keep {
                Some(n) => break &cands[..n],
                None if m == len => break &cands[..],
                None => m = (m * 4).min(len),
            }
        }
    } else {
        &cands
    };
    let mass: f64 = kept.iter().map(|c| c.1).sum();
    let mut u = draw() * mass;
    for c in kept {
        if u < c.1 {
            return c.0;
        }
        u -= c.1;
    }
    kept[kept.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprob_is_normalised() {
        let logits = [1.0f32, 2.0, 3.0];
        let total: f64 = (0..3)
            .map(|i| f64::from(token_logprob(&logits, i)).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}
