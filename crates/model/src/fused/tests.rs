//! Each fused op against the candle chain it replaces: the same forward
//! bits in f32 and f64, and the same gradients (to rounding) for a random
//! linear read-out of the result.

use candle_core::{DType, Device, Tensor, Var, D};

use crate::rng::Rng;
use crate::scoring::log_softmax_last;

/// A `Var` of `shape` with values uniform in `[-2, 2)`, in `dtype`.
fn var(seed: u64, shape: &[usize], dtype: DType) -> Var {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.next_f64() * 4.0 - 2.0).collect();
    let t = Tensor::from_vec(v, shape, &Device::Cpu).unwrap();
    Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn bits(t: &Tensor) -> Vec<u64> {
    flat(t).into_iter().map(f64::to_bits).collect()
}

/// Checks `fused` against `composed` on `inputs`: forward bit for bit, and
/// the gradients of `Σ out ⊙ r` (random `r`) of every input to `tol`
/// relative to the largest gradient.
fn check(inputs: &[&Var], fused: impl Fn() -> Tensor, composed: impl Fn() -> Tensor, tol: f64) {
    let (y, want) = (fused(), composed());
    assert_eq!(y.dims(), want.dims());
    assert_eq!(bits(&y), bits(&want), "forward values differ");
    let r = var(99, y.dims(), y.dtype());
    let grads = |out: &Tensor| {
        (out * r.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    };
    let (g, g_want) = (grads(&y), grads(&want));
    for (i, x) in inputs.iter().enumerate() {
        let (a, b) = (flat(g.get(x).unwrap()), flat(g_want.get(x).unwrap()));
        let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
        for (j, (a, b)) in a.iter().zip(&b).enumerate() {
            assert!(
                (a - b).abs() <= tol * scale,
                "input {i}, element {j}: {a} vs {b}"
            );
        }
    }
}

fn softmax_composed(x: &Tensor) -> Tensor {
    let max = x.max_keepdim(D::Minus1).unwrap().detach();
    let e = x.broadcast_sub(&max).unwrap().exp().unwrap();
    e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap()
}

/// A causal mask `[mask_batch, 1, 1, query, key]` with left padding `pad[b]`.
fn mask(pad: &[usize], query: usize, key: usize, dtype: DType) -> Tensor {
    let mut m = vec![];
    for &p in pad {
        for i in 0..query {
            let q = key - query + i;
            m.extend((0..key).map(|j| {
                if (j <= q && j >= p) || j == q {
                    0.0
                } else {
                    f64::NEG_INFINITY
                }
            }));
        }
    }
    Tensor::from_vec(m, (pad.len(), 1, 1, query, key), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

const TOL: [(DType, f64); 2] = [(DType::F32, 1e-5), (DType::F64, 1e-13)];

#[test]
fn attention_softmax_matches_the_composed_chain() {
    let (b, kv, rep, t, s) = (2, 2, 3, 4, 6);
    let scale = 0.37;
    for (dtype, tol) in TOL {
        let x = var(1, &[b, kv, rep * t, s], dtype);
        for m in [
            None,
            Some(mask(&[0], t, s, dtype)),
            Some(mask(&[1, 3], t, s, dtype)),
        ] {
            let fused = || super::attention_softmax(x.as_tensor(), m.as_ref(), scale).unwrap();
            let composed = || {
                let y = (x.as_tensor() * scale).unwrap();
                let y = match &m {
                    Some(m) => y
                        .reshape((b, kv, rep, t, s))
                        .unwrap()
                        .broadcast_add(m)
                        .unwrap()
                        .reshape((b, kv, rep * t, s))
                        .unwrap(),
                    None => y,
                };
                softmax_composed(&y)
            };
            check(&[&x], fused, composed, tol);
        }
    }
}

#[test]
fn rms_norm_matches_the_composed_chain() {
    let eps = 1e-6;
    for (dtype, tol) in TOL {
        let (x, w) = (var(2, &[2, 5, 16], dtype), var(3, &[16], dtype));
        let fused = || super::rms_norm(x.as_tensor(), w.as_tensor(), eps).unwrap();
        let composed = || {
            let x = x.as_tensor();
            let var = x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
            let normed = x
                .broadcast_div(&(var + eps).unwrap().sqrt().unwrap())
                .unwrap();
            normed.broadcast_mul(w.as_tensor()).unwrap()
        };
        check(&[&x, &w], fused, composed, tol);
    }
}

#[test]
fn silu_mul_matches_the_composed_chain() {
    for (dtype, tol) in TOL {
        // More elements than one parallel chunk.
        let (a, b) = (var(4, &[3, 5000], dtype), var(5, &[3, 5000], dtype));
        let fused = || super::silu_mul(a.as_tensor(), b.as_tensor()).unwrap();
        let composed = || (a.as_tensor().silu().unwrap() * b.as_tensor()).unwrap();
        check(&[&a, &b], fused, composed, tol);
    }
}

/// The chain `token_logprobs` replaces: log-softmax, then gather.
fn token_logprobs_composed(x: &Tensor, targets: &[u32]) -> Tensor {
    let t = Tensor::from_vec(targets.to_vec(), (targets.len(), 1), &Device::Cpu).unwrap();
    let lp = log_softmax_last(x).unwrap();
    lp.gather(&t, D::Minus1)
        .unwrap()
        .squeeze(D::Minus1)
        .unwrap()
}

#[test]
fn token_logprobs_match_the_composed_chain() {
    let targets = vec![3u32, 0, 10, 7, 7];
    for (dtype, tol) in TOL {
        let x = var(6, &[5, 11], dtype);
        let fused = || super::token_logprobs(x.as_tensor(), targets.clone()).unwrap();
        let composed = || token_logprobs_composed(x.as_tensor(), &targets);
        check(&[&x], fused, composed, tol);
    }
}

#[test]
fn token_logprobs_leave_rows_without_gradient_at_zero() {
    let x = var(7, &[3, 9], DType::F32);
    let y = super::token_logprobs(x.as_tensor(), vec![1, 2, 3]).unwrap();
    let keep = Tensor::new(&[1f32, 0.0, 1.0], &Device::Cpu).unwrap();
    let g = (y * keep).unwrap().sum_all().unwrap().backward().unwrap();
    let g: Vec<Vec<f32>> = g.get(&x).unwrap().to_vec2().unwrap();
    assert!(g[1].iter().all(|&v| v == 0.0));
    assert!(g[0].iter().any(|&v| v != 0.0) && g[2].iter().any(|&v| v != 0.0));
    // Each row's gradient of a log-probability sums to zero.
    for row in [&g[0], &g[2]] {
        assert!(row.iter().sum::<f32>().abs() < 1e-6);
    }
}

#[test]
fn token_logprobs_give_nan_gradients_where_the_chain_does() {
    // Rows: finite with a gradient, finite without, a NaN logit without, a
    // +inf logit without. The chain's `0 · NaN` makes the last two NaN, so
    // a diverged model must not come back with clean zeros there.
    let mut v: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    v[9] = f32::NAN;
    v[14] = f32::INFINITY;
    let x = Var::from_tensor(&Tensor::from_vec(v, (4, 4), &Device::Cpu).unwrap()).unwrap();
    let targets = vec![0u32, 1, 2, 3];
    let keep = Tensor::new(&[1f32, 0.0, 0.0, 0.0], &Device::Cpu).unwrap();
    let grad_of = |y: Tensor| -> Vec<Vec<f32>> {
        let g = (y * &keep).unwrap().sum_all().unwrap().backward().unwrap();
        g.get(&x).unwrap().to_vec2().unwrap()
    };
    let fused = grad_of(super::token_logprobs(x.as_tensor(), targets.clone()).unwrap());
    let chain = grad_of(token_logprobs_composed(x.as_tensor(), &targets));
    for (r, (a, b)) in fused.iter().zip(&chain).enumerate() {
        let nan = |row: &[f32]| row.iter().map(|v| v.is_nan()).collect::<Vec<_>>();
        assert_eq!(nan(a), nan(b), "row {r}: {a:?} vs {b:?}");
    }
    assert!(fused[1].iter().all(|&v| v == 0.0));
    assert!(fused[2].iter().chain(&fused[3]).all(|v| v.is_nan()));
}

#[test]
fn bad_shapes_and_targets_are_errors_naming_the_op() {
    let x = var(8, &[2, 4], DType::F32);
    let err = super::token_logprobs(x.as_tensor(), vec![1, 4]).unwrap_err();
    assert!(
        err.to_string()
            .contains("target 4 of row 1 is outside the vocabulary of 4"),
        "{err}"
    );
    let err = super::token_logprobs(x.as_tensor(), vec![1]).unwrap_err();
    assert!(err.to_string().contains("1 targets for 2 rows"), "{err}");
    let s = var(9, &[2, 2, 3, 4], DType::F32);
    let m = mask(&[0, 0, 0], 3, 4, DType::F32);
    let err = super::attention_softmax(s.as_tensor(), Some(&m), 1.0).unwrap_err();
    assert!(err.to_string().contains("attention-softmax: mask"), "{err}");
    // Masks whose row counts divide but whose axes are not
    // `[batch|1, 1, .., query, key]`: without a batch axis (its query
    // length equal to the batch), and with kv heads of their own.
    let s = var(11, &[3, 2, 6, 4], DType::F32);
    let no_batch = Tensor::zeros((3, 4), DType::F32, &Device::Cpu).unwrap();
    let per_head = Tensor::zeros((3, 2, 3, 4), DType::F32, &Device::Cpu).unwrap();
    for m in [no_batch, per_head] {
        let err = super::attention_softmax(s.as_tensor(), Some(&m), 1.0).unwrap_err();
        assert!(err.to_string().contains("does not fit scores"), "{err}");
    }
    let w = var(10, &[3], DType::F32);
    let err = super::rms_norm(x.as_tensor(), w.as_tensor(), 1e-6).unwrap_err();
    assert!(err.to_string().contains("rms-norm: weight [3]"), "{err}");
    let i = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
    let err = super::silu_mul(&i, &i).unwrap_err();
    assert!(
        err.to_string().contains("silu-mul: U32 is not supported"),
        "{err}"
    );
}
