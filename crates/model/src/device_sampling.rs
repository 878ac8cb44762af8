//! Next-token selection on the model's device, so that a decode step copies
//! a few numbers per row to the host instead of the whole row of logits.
//!
//! The host sampler ([`crate::sampling`]) needs every logit of a row: at
//! Qwen2.5's 151,936-token vocabulary that is 0.6 MB per row and step, and
//! its `exp` passes cost ~1.6 ms of host time per row. On an H200
//! (2026-12-04, 0.5B shape, bf16, batch 32) the copy and the host work
//! took longer than the forward pass itself. This module reduces each row
//! on the device and walks the same inverse CDF with the same one uniform
//! per token:
//!
//! * **Greedy**: the device takes the argmax and the row's
//!   temperature-1 log-sum-exp; the host gets two numbers per row.
//! * **Temperature sampling** (no top-k, top-p 1: the paper's rollout
//!   settings): the device computes the weights `exp((x - max) / T)` and
//!   their sums over blocks of [`BLOCK`] tokens. The host draws `u`, finds
//!   the block where `u · total` falls, and a second copy brings that
//!   block's weights and logits, where the walk ends. Two small copies per
//!   step: `rows × (vocab / 128)` block sums, then `rows × 2 × 128` values.
//!
//! The distribution is the host sampler's; sums are f32 on the device
//! (f64 on the host), so a draw within rounding distance of a boundary
//! between two tokens, or an exact tie under greedy selection, may resolve
//! to the neighbouring token, and log-probs agree to ~1e-6. A row whose
//! logits are not all finite (NaN, ±inf) is left to the host sampler (the
//! caller copies that row), which knows how to treat them. Top-k and
//! top-p < 1 need a sort of the row, so they stay on the host, as does a
//! repetition penalty (it needs each row's sequence).

use candle_core::{DType, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::sampling::SamplingParams;

/// Tokens per block of the two-level inverse-CDF walk.
pub const BLOCK: usize = 128;

/// Where [`crate::generate()`] chooses the next token. Written `auto`,
/// `host` or `device` in configs and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplingPlace {
    /// On the model's device when it is an accelerator and [`reducible`]
    /// allows; on the host otherwise (bit for bit the host sampler).
    #[default]
    Auto,
    /// Always on the host, from full rows of logits.
    Host,
    /// On the model's device whenever [`reducible`] allows, the CPU
    /// included (there it checks this module against the host sampler).
    Device,
}

impl std::str::FromStr for SamplingPlace {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(SamplingPlace::Auto),
            "host" => Ok(SamplingPlace::Host),
            "device" => Ok(SamplingPlace::Device),
            _ => Err(ModelError::input(format!(
                "unknown sampling place `{s}` (expected auto, host or device)"
            ))),
        }
    }
}

impl SamplingPlace {
    /// Whether tokens are chosen on `device` under `params`.
    pub fn on_device(self, device: &candle_core::Device, params: &SamplingParams) -> bool {
        match self {
            SamplingPlace::Auto => !device.is_cpu() && reducible(params),
            SamplingPlace::Host => false,
            SamplingPlace::Device => reducible(params),
        }
    }
}

/// Whether [`pick_tokens`] can serve `params`: greedy selection, or
/// temperature sampling without top-k and top-p filters, and no
/// repetition penalty (which needs each row's sequence: the host applies
/// it).
pub fn reducible(params: &SamplingParams) -> bool {
    params.repetition_penalty == 1.0
        && (params.is_greedy() || (params.top_k == 0 && params.top_p >= 1.0))
}

/// One row's chosen token and its temperature-1 log-probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    /// The chosen token id.
    pub token: u32,
    /// `log softmax(logits)[token]` at temperature 1.
    pub logprob: f32,
}

/// Chooses a token for each of `rows` (indices into the first dimension
/// of `logits`, `[n, vocab]`, any float dtype, any device). `uniforms[i]`
/// in `[0, 1)` is row `i`'s draw; it is ignored under greedy selection.
/// `params` must be [`reducible`].
///
/// Returns `None` for a row whose logits are not all finite: the host
/// sampler decides those (see the module documentation).
pub fn pick_tokens(
    logits: &Tensor,
    rows: &[usize],
    params: &SamplingParams,
    uniforms: &[f64],
) -> Result<Vec<Option<Pick>>> {
    debug_assert!(reducible(params));
    debug_assert_eq!(rows.len(), uniforms.len());
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (n, vocab) = logits.dims2()?;
    let device = logits.device();
    let x = if rows.len() == n && rows.iter().enumerate().all(|(i, &r)| i == r) {
        logits.to_dtype(DType::F32)?
    } else {
        let ids: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let ids = Tensor::from_vec(ids, rows.len(), device)?;
        logits.index_select(&ids, 0)?.to_dtype(DType::F32)?
    };
    let m = x.max_keepdim(D::Minus1)?;
    let shifted = x.broadcast_sub(&m)?;
    let e = shifted.exp()?;
    // The temperature-1 log-sum-exp, the log-probs' denominator.
    let lse = e.sum_keepdim(D::Minus1)?.log()?.add(&m)?;
    if params.is_greedy() || vocab <= 1 {
        let arg = x
            .argmax_keepdim(D::Minus1)?
            .flatten_all()?
            .to_vec1::<u32>()?;
        let m = m.flatten_all()?.to_vec1::<f32>()?;
        let lse = lse.flatten_all()?.to_vec1::<f32>()?;
        return Ok((0..rows.len())
            .map(|i| {
                lse[i].is_finite().then(|| Pick {
                    token: arg[i],
                    logprob: (f64::from(m[i]) - f64::from(lse[i])) as f32,
                })
            })
            .collect());
    }
    let w = if params.temperature == 1.0 {
        e
    } else {
        shifted.affine(1.0 / params.temperature, 0.0)?.exp()?
    };
    let blocks = vocab.div_ceil(BLOCK);
    let pad = blocks * BLOCK - vocab;
    let (w, x) = if pad > 0 {
        (w.pad_with_zeros(1, 0, pad)?, x.pad_with_zeros(1, 0, pad)?)
    } else {
        (w, x)
    };
    let r = rows.len();
    let block_sums = w
        .reshape((r, blocks, BLOCK))?
        .sum(2)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let lse = lse.flatten_all()?.to_vec1::<f32>()?;
    // First level: the block where each row's draw falls.
    let mut chosen: Vec<Option<(usize, f64)>> = Vec::with_capacity(r);
    for i in 0..r {
        let sums = &block_sums[i * blocks..(i + 1) * blocks];
        let total: f64 = sums.iter().map(|&s| f64::from(s)).sum();
        chosen.push(
            (lse[i].is_finite() && total.is_finite() && total > 0.0)
                .then(|| walk(sums, uniforms[i] * total)),
        );
    }
    // Second level: those blocks' weights and logits.
    let flat: Vec<u32> = chosen
        .iter()
        .enumerate()
        .map(|(i, c)| (i * blocks + c.map_or(0, |(b, _)| b)) as u32)
        .collect();
    let flat = Tensor::from_vec(flat, r, device)?;
    let take = |t: &Tensor| -> Result<Vec<f32>> {
        Ok(t.reshape((r * blocks, BLOCK))?
            .index_select(&flat, 0)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    let (wb, xb) = (take(&w)?, take(&x)?);
    Ok(chosen
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (block, rest) = (*c)?;
            let weights = &wb[i * BLOCK..(i + 1) * BLOCK];
            let (j, _) = walk(weights, rest);
            let token = block * BLOCK + j;
            (token < vocab).then(|| Pick {
                token: token as u32,
                logprob: (f64::from(xb[i * BLOCK + j]) - f64::from(lse[i])) as f32,
            })
        })
        .collect())
}

/// The first index whose weight `target` falls in, walking the cumulative
/// sum, and what is left of `target` there. Past the end (by rounding),
/// the last index with a positive weight.
fn walk(weights: &[f32], mut target: f64) -> (usize, f64) {
    let mut last = 0;
    for (i, &w) in weights.iter().enumerate() {
        let w = f64::from(w);
        if w > 0.0 {
            if target < w {
                return (i, target);
            }
            target -= w;
            last = i;
        }
    }
    let w = f64::from(weights[last]);
    (last, (w * (1.0 - f64::EPSILON)).max(0.0))
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::rng::Rng;
    use crate::sampling::{argmax, sample_token_by, token_logprob};

    /// Logits with a Qwen-like spread: a few large values over a flat tail.
    fn random_logits(rows: usize, vocab: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        (0..rows * vocab)
            .map(|_| {
                let v = (rng.next_f64() * 8.0 - 4.0) as f32;
                if rng.next_f64() < 0.01 {
                    v + 8.0
                } else {
                    v
                }
            })
            .collect()
    }

    fn tensor(values: &[f32], rows: usize, vocab: usize) -> Tensor {
        Tensor::from_slice(values, (rows, vocab), &Device::Cpu).unwrap()
    }

    #[test]
    fn greedy_matches_the_host() {
        let (rows, vocab) = (7, 1000);
        let l = random_logits(rows, vocab, 1);
        let all: Vec<usize> = (0..rows).collect();
        let picks = pick_tokens(
            &tensor(&l, rows, vocab),
            &all,
            &SamplingParams::greedy(),
            &[0.0; 7],
        )
        .unwrap();
        for (i, p) in picks.iter().enumerate() {
            let row = &l[i * vocab..(i + 1) * vocab];
            let p = p.expect("finite row");
            assert_eq!(p.token, argmax(row));
            assert!((p.logprob - token_logprob(row, p.token)).abs() < 1e-5);
        }
    }

    #[test]
    fn sampling_matches_the_host_sampler_draw_for_draw() {
        // A vocabulary that is not a multiple of BLOCK exercises padding.
        let (rows, vocab) = (64, 3 * BLOCK + 45);
        let l = random_logits(rows, vocab, 2);
        let t = tensor(&l, rows, vocab);
        let mut draws = Rng::new(3);
        for temperature in [0.7, 1.0, 1.3] {
            let params = SamplingParams {
                temperature,
                ..SamplingParams::default()
            };
            // Rows in a shuffled order, some twice: `rows` indexes `logits`.
            let order: Vec<usize> = (0..rows).map(|i| (i * 37 + 5) % rows).collect();
            let u: Vec<f64> = order.iter().map(|_| draws.next_f64()).collect();
            let picks = pick_tokens(&t, &order, &params, &u).unwrap();
            for ((&r, &u), p) in order.iter().zip(&u).zip(&picks) {
                let row = &l[r * vocab..(r + 1) * vocab];
                let p = p.expect("finite row");
                assert_eq!(p.token, sample_token_by(row, &params, || u), "row {r}");
                assert!((p.logprob - token_logprob(row, p.token)).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn draws_at_the_ends_pick_real_tokens() {
        // Weight only on the first and the last real token; the rest of the
        // last block is padding.
        let vocab = 2 * BLOCK + 3;
        let mut l = vec![f32::NEG_INFINITY; vocab];
        l[0] = 0.0;
        l[vocab - 1] = 0.0;
        let params = SamplingParams::default();
        let picks = pick_tokens(
            &tensor(&l, 1, vocab),
            &[0, 0],
            &params,
            &[0.0, 1.0 - f64::EPSILON],
        )
        .unwrap();
        assert_eq!(picks[0].unwrap().token, 0);
        assert_eq!(picks[1].unwrap().token, vocab as u32 - 1);
        assert!((picks[1].unwrap().logprob - (0.5f32).ln()).abs() < 1e-6);
    }

    #[test]
    fn rows_that_are_not_finite_go_back_to_the_host() {
        let vocab = 300;
        let mut l = random_logits(4, vocab, 4);
        l[3] = f32::NAN;
        l[vocab + 7] = f32::INFINITY;
        l[2 * vocab..3 * vocab].fill(f32::NEG_INFINITY);
        let t = tensor(&l, 4, vocab);
        for params in [SamplingParams::greedy(), SamplingParams::default()] {
            let picks = pick_tokens(&t, &[0, 1, 2, 3], &params, &[0.5; 4]).unwrap();
            assert!(picks[..3].iter().all(Option::is_none), "{params:?}");
            assert!(picks[3].is_some());
        }
    }

    #[test]
    fn only_plain_temperature_sampling_is_reducible() {
        assert!(reducible(&SamplingParams::greedy()));
        assert!(reducible(&SamplingParams::default()));
        let top_p = SamplingParams {
            top_p: 0.9,
            ..SamplingParams::default()
        };
        let top_k = SamplingParams {
            top_k: 50,
            ..SamplingParams::default()
        };
        assert!(!reducible(&top_p) && !reducible(&top_k));
        assert!(reducible(&SamplingParams {
            top_k: 50,
            ..SamplingParams::greedy()
        }));
        let cpu = Device::Cpu;
        assert!(!SamplingPlace::Auto.on_device(&cpu, &SamplingParams::default()));
        assert!(SamplingPlace::Device.on_device(&cpu, &SamplingParams::default()));
        assert!(!SamplingPlace::Device.on_device(&cpu, &top_p));
        // A repetition penalty needs each row's sequence: the host's.
        let penalised = SamplingParams {
            repetition_penalty: 1.05,
            ..SamplingParams::greedy()
        };
        assert!(!reducible(&penalised));
        assert!(!SamplingPlace::Device.on_device(&cpu, &penalised));
    }

    #[test]
    fn places_parse_by_name() {
        assert_eq!(
            "auto".parse::<SamplingPlace>().unwrap(),
            SamplingPlace::Auto
        );
        assert_eq!(
            "Host".parse::<SamplingPlace>().unwrap(),
            SamplingPlace::Host
        );
        assert_eq!(
            "device".parse::<SamplingPlace>().unwrap(),
            SamplingPlace::Device
        );
        let err = "gpu".parse::<SamplingPlace>().unwrap_err().to_string();
        assert!(
            err.contains("`gpu`") && err.contains("auto, host or device"),
            "{err}"
        );
        let json: SamplingPlace = serde_json::from_str("\"device\"").unwrap();
        assert_eq!(json, SamplingPlace::Device);
        assert_eq!(
            serde_json::to_string(&SamplingPlace::Host).unwrap(),
            "\"host\""
        );
    }
}
