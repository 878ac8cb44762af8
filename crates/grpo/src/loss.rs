//! The GRPO objective (the paper's Eq. 3, verl's `compute_policy_loss` and
//! `kl_penalty`): a clipped surrogate on the ratio π/π_old, a KL penalty to
//! the frozen reference with the low-variance k3 estimator, and an optional
//! entropy bonus, aggregated over tokens.

use candle_core::{DType, Result, Tensor, D};
use serde::{Deserialize, Serialize};

/// How per-token losses are averaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LossAgg {
    /// Mean over every model token of the mini-batch (the default): each
    /// token weighs `1 / tokens of the mini-batch`, however the mini-batch
    /// is split into micro-batches, so gradient accumulation gives exactly
    /// the mini-batch's gradient.
    #[default]
    TokenMean,
    /// Mean over sequences of each sequence's token mean (`seq-mean-token-mean`).
    SeqMean,
    /// The released verl's per-micro-batch weighting: a token mean per
    /// micro-batch, times the micro-batch's share of the mini-batch's
    /// sequences. A token then weighs `(seqs in its micro-batch / seqs in
    /// the mini-batch) / tokens in its micro-batch`, which depends on how
    /// the mini-batch was split. toolgym's micro-batches hold a fixed
    /// number of sequences, sorted by length with each group kept
    /// together, so tokens of short sequences weigh more: two micro-batches
    /// of two sequences, one with 10 tokens per sequence and one with 2,
    /// weigh a short-sequence token 5× a long-sequence one, where
    /// `token-mean` weighs them equally (the unit test
    /// `verl_micro_weighting` pins these numbers). This is verl's weighting
    /// for micro-batches of a fixed sequence count (`use_dynamic_bsz=False`),
    /// not the paper's run: its script set `use_dynamic_bsz=True`, where
    /// verl splits each GPU's share of a mini-batch into micro-batches of
    /// balanced token counts (`ppo_max_token_len_per_gpu=30720`): short
    /// replies weigh more there too, though less so (a simulation of verl
    /// 0.9.1's partitioning at the paper's settings put a sequence's token
    /// weight between 0.6x and 1.8x its `token-mean` weight, where this
    /// option's reaches 3x or more); `token-mean` is the default.
    VerlMicroTokenMean,
}

/// Coefficients of the objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossCoefs {
    /// Lower clip: ratio ≥ 1 - `clip_low` (paper: 0.2).
    pub clip_low: f64,
    /// Upper clip: ratio ≤ 1 + `clip_high` (paper: 0.2; DAPO raises it).
    pub clip_high: f64,
    /// β, the KL-to-reference weight (paper: 1e-3; 0 skips the reference).
    pub kl_coef: f64,
    /// Entropy bonus weight (paper: 0).
    pub entropy_coef: f64,
}

/// One micro-batch of scored completions.
pub struct LossInputs<'a> {
    /// log π(token) under the current policy, `[B, T]`, differentiable.
    pub logprobs: &'a Tensor,
    /// log π_old(token) from rollout time, `[B, T]`.
    pub old_logprobs: &'a Tensor,
    /// log π_ref(token), `[B, T]`; `None` when β = 0.
    pub ref_logprobs: Option<&'a Tensor>,
    /// Per-token entropies of the policy, `[B, T]`, if computed.
    pub entropies: Option<&'a Tensor>,
    /// One advantage per sequence, `[B]`.
    pub advantages: &'a Tensor,
    /// 1 for real completion tokens, 0 for padding, `[B, T]`.
    pub mask: &'a Tensor,
}

/// The loss and what to log about it.
pub struct LossOutput {
    /// The scalar to differentiate.
    pub loss: Tensor,
    /// The clipped surrogate part (aggregated).
    pub pg_loss: f64,
    /// Mean k3 KL to the reference per token (0 without a reference).
    pub kl: f64,
    /// Share of tokens where the clipped branch was taken.
    pub clip_fraction: f64,
    /// Mean policy entropy per token (0 if not computed).
    pub entropy: f64,
    /// Mean of `old_logprob - logprob` per token (how far the policy moved).
    pub approx_kl_old: f64,
    /// Real tokens in this micro-batch.
    pub tokens: usize,
}

/// Per-token aggregation weights `[B, T]` for one micro-batch, normalised by
/// the whole mini-batch so that gradients accumulated over micro-batches equal
/// the mini-batch loss's gradient exactly.
///
/// `minibatch_tokens` / `minibatch_seqs`: totals over the mini-batch.
pub fn aggregation_weights(
    mask: &Tensor,
    agg: LossAgg,
    minibatch_tokens: usize,
    minibatch_seqs: usize,
) -> Result<Tensor> {
    match agg {
        LossAgg::TokenMean => mask.affine(1.0 / minibatch_tokens.max(1) as f64, 0.0),
        LossAgg::VerlMicroTokenMean => {
            let micro_tokens = mask.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let share = mask.dims()[0] as f64 / minibatch_seqs.max(1) as f64;
            mask.affine(share / micro_tokens.max(1.0), 0.0)
        }
        LossAgg::SeqMean => {
            let lens = mask.sum_keepdim(D::Minus1)?.clamp(1.0, f64::INFINITY)?;
            mask.broadcast_div(&lens)?
                .affine(1.0 / minibatch_seqs.max(1) as f64, 0.0)
        }
    }
}

/// verl's `low_var_kl` (Schulman's k3): with `d = ref - logp`,
/// `exp(d) - d - 1`, clamped to [-10, 10]. Unbiased for KL(π‖π_ref), always ≥ 0.
/// `d` is clamped to ±20 first, as verl 0.9 does (the released verl does
/// not): past ~88, `exp(d)` is inf in f32, and the outer clamp's zero
/// gradient times inf made the update NaN. Within ±20 nothing changes (the
/// outer clamp already holds k3 at 10 from d ≈ 2.6).
pub fn low_var_kl(logprobs: &Tensor, ref_logprobs: &Tensor) -> Result<Tensor> {
    let d = (ref_logprobs - logprobs)?.clamp(-20.0, 20.0)?;
    let k3 = ((d.exp()? - &d)? - 1.0)?;
    k3.clamp(-10.0, 10.0)
}

/// The GRPO loss of one micro-batch: `pg + β·kl − c_ent·entropy`, each term
/// aggregated with `weights` (see [`aggregation_weights`]).
///
/// Per token: `ratio = exp(logp − old)` (log-ratio clamped to ±20, as later
/// verl versions do; the released one does not clamp, and overflows to inf
/// on a large enough log-ratio),
/// `pg = max(−A·ratio, −A·clip(ratio, 1−ε_low, 1+ε_high))`.
pub fn policy_loss(
    inp: &LossInputs<'_>,
    coefs: &LossCoefs,
    weights: &Tensor,
) -> Result<LossOutput> {
    let adv = inp
        .advantages
        .to_dtype(inp.logprobs.dtype())?
        .unsqueeze(1)?;
    let log_ratio = (inp.logprobs - inp.old_logprobs)?.clamp(-20.0, 20.0)?;
    let ratio = log_ratio.exp()?;
    let neg_adv = adv.neg()?;
    let pg1 = ratio.broadcast_mul(&neg_adv)?;
    let clipped = ratio.clamp(1.0 - coefs.clip_low, 1.0 + coefs.clip_high)?;
    let pg2 = clipped.broadcast_mul(&neg_adv)?;
    let pg = pg1.maximum(&pg2)?;
    let weighted = |t: &Tensor| (t * weights)?.sum_all();
    let pg_loss = weighted(&pg)?;
    let mut loss = pg_loss.clone();

    let mask_vals = flat(inp.mask)?;
    let tokens = mask_vals.iter().filter(|&&m| m > 0.0).count();
    let token_mean = |t: &Tensor| -> Result<f64> {
        let v = flat(t)?;
        Ok(v.iter()
            .zip(&mask_vals)
            .map(|(x, m)| (x * m) as f64)
            .sum::<f64>()
            / tokens.max(1) as f64)
    };

    let mut kl = 0.0;
    if let Some(r) = inp.ref_logprobs {
        if coefs.kl_coef != 0.0 {
            let k3 = low_var_kl(inp.logprobs, r)?;
            loss = (loss + (weighted(&k3)? * coefs.kl_coef)?)?;
            kl = token_mean(&k3)?;
        }
    }
    let mut entropy = 0.0;
    if let Some(e) = inp.entropies {
        entropy = token_mean(e)?;
        if coefs.entropy_coef != 0.0 {
            loss = (loss - (weighted(e)? * coefs.entropy_coef)?)?;
        }
    }
    let clip_fraction = {
        let (a, b) = (flat(&pg1)?, flat(&pg2)?);
        let n = a
            .iter()
            .zip(&b)
            .zip(&mask_vals)
            .filter(|((x, y), m)| **m > 0.0 && y > x)
            .count();
        n as f64 / tokens.max(1) as f64
    };
    let approx_kl_old = token_mean(&(inp.old_logprobs - inp.logprobs)?)?;
    Ok(LossOutput {
        pg_loss: pg_loss.to_dtype(DType::F64)?.to_scalar::<f64>()?,
        loss,
        kl,
        clip_fraction,
        entropy,
        approx_kl_old,
        tokens,
    })
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    t.detach()
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t(v: &[f32], shape: (usize, usize)) -> Tensor {
        Tensor::from_slice(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn k3_matches_hand_values() {
        let lp = t(&[-1.0, -2.0], (1, 2));
        let rf = t(&[-1.5, -2.0], (1, 2));
        let k = low_var_kl(&lp, &rf).unwrap().to_vec2::<f32>().unwrap();
        let d: f64 = -0.5;
        assert!((k[0][0] as f64 - (d.exp() - d - 1.0)).abs() < 1e-6);
        assert_eq!(k[0][1], 0.0);
        // Clamped at 10.
        let k = low_var_kl(&t(&[-30.0], (1, 1)), &t(&[0.0], (1, 1))).unwrap();
        assert_eq!(k.to_vec2::<f32>().unwrap()[0][0], 10.0);
    }

    #[test]
    fn clipped_surrogate_and_kl_match_hand_computation() {
        // Two sequences, three slots; the second has one padding slot.
        let logp = Var::from_tensor(&t(&[-1.0, -0.5, -2.0, -0.2, -1.0, 0.0], (2, 3))).unwrap();
        let old = t(&[-1.2, -0.5, -1.0, -0.5, -1.0, 0.0], (2, 3));
        let rf = t(&[-1.1, -0.6, -2.0, -0.3, -1.0, 0.0], (2, 3));
        let mask = t(&[1.0, 1.0, 1.0, 1.0, 1.0, 0.0], (2, 3));
        let adv = Tensor::from_slice(&[1.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let coefs = LossCoefs {
            clip_low: 0.2,
            clip_high: 0.2,
            kl_coef: 0.1,
            entropy_coef: 0.0,
        };
        let w = aggregation_weights(&mask, LossAgg::TokenMean, 5, 2).unwrap();
        let out = policy_loss(
            &LossInputs {
                logprobs: logp.as_tensor(),
                old_logprobs: &old,
                ref_logprobs: Some(&rf),
                entropies: None,
                advantages: &adv,
                mask: &mask,
            },
            &coefs,
            &w,
        )
        .unwrap();
        // Hand computation in f64.
        let lp: [[f64; 3]; 2] = [[-1.0, -0.5, -2.0], [-0.2, -1.0, 0.0]];
        let ol: [[f64; 3]; 2] = [[-1.2, -0.5, -1.0], [-0.5, -1.0, 0.0]];
        let rv = [[-1.1, -0.6, -2.0], [-0.3, -1.0, 0.0]];
        let a: [f64; 2] = [1.0, -2.0];
        let (mut pg, mut kl, mut clipped) = (0.0, 0.0, 0);
        let mut grads = [[0.0f64; 3]; 2];
        for b in 0..2 {
            for j in 0..3 {
                if b == 1 && j == 2 {
                    continue;
                }
                let ratio: f64 = (lp[b][j] - ol[b][j]).exp();
                let p1 = -a[b] * ratio;
                let p2 = -a[b] * ratio.clamp(0.8, 1.2);
                pg += p1.max(p2);
                if p2 > p1 {
                    clipped += 1;
                }
                let d: f64 = rv[b][j] - lp[b][j];
                kl += d.exp() - d - 1.0;
                // d/dlogp of the per-token loss.
                let dpg = if p1 >= p2 { -a[b] * ratio } else { 0.0 };
                let dkl = -d.exp() + 1.0;
                grads[b][j] = (dpg + 0.1 * dkl) / 5.0;
            }
        }
        let want = (pg + 0.1 * kl) / 5.0;
        let got = out.loss.to_scalar::<f32>().unwrap() as f64;
        assert!((got - want).abs() < 1e-5, "loss {got} vs {want}");
        assert!((out.kl - kl / 5.0).abs() < 1e-6);
        assert!((out.clip_fraction - clipped as f64 / 5.0).abs() < 1e-12);
        assert_eq!(out.tokens, 5);
        let g = out.loss.backward().unwrap();
        let g = g.get(logp.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        for b in 0..2 {
            for j in 0..3 {
                assert!(
                    (g[b][j] as f64 - grads[b][j]).abs() < 1e-5,
                    "grad[{b}][{j}] {} vs {}",
                    g[b][j],
                    grads[b][j]
                );
            }
        }
    }

    #[test]
    fn verl_micro_weighting() {
        // Micro-batch A: two sequences of 10 tokens; B: two of 2 tokens.
        let long = Tensor::ones((2, 10), DType::F32, &Device::Cpu).unwrap();
        let short = Tensor::ones((2, 2), DType::F32, &Device::Cpu).unwrap();
        let at = |t: &Tensor, agg| {
            let w = aggregation_weights(t, agg, 24, 4).unwrap();
            w.to_vec2::<f32>().unwrap()[0][0] as f64
        };
        let (a, b) = (
            at(&long, LossAgg::TokenMean),
            at(&short, LossAgg::TokenMean),
        );
        assert!((a - 1.0 / 24.0).abs() < 1e-7 && (b - 1.0 / 24.0).abs() < 1e-7);
        let (a, b) = (
            at(&long, LossAgg::VerlMicroTokenMean),
            at(&short, LossAgg::VerlMicroTokenMean),
        );
        assert!((a - 1.0 / 40.0).abs() < 1e-7, "{a}");
        assert!((b - 1.0 / 8.0).abs() < 1e-7, "{b}");
        // Both sum to 1 over the mini-batch.
        assert!((20.0 * (1.0 / 40.0) + 4.0 * (1.0 / 8.0) - 1.0f64).abs() < 1e-12);
    }

    #[test]
    fn seq_mean_weights() {
        let mask = t(&[1.0, 1.0, 0.0, 1.0, 0.0, 0.0], (2, 3));
        let w = aggregation_weights(&mask, LossAgg::SeqMean, 3, 2)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(w, vec![vec![0.25, 0.25, 0.0], vec![0.5, 0.0, 0.0]]);
        let w = aggregation_weights(&mask, LossAgg::TokenMean, 3, 2)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!((w[0][0] - 1.0 / 3.0).abs() < 1e-7 && w[0][2] == 0.0);
    }
}
