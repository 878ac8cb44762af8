//! Finite-difference check of the GRPO loss's gradient through a tiny Qwen2
//! model (f64), covering the clipped surrogate on both sides of the clip, the
//! k3 KL term, token-mean aggregation and padding.

use toolgym_grpo::{aggregation_weights, policy_loss, LossAgg, LossCoefs, LossInputs};
use toolgym_model::candle_core::{DType, Device, Tensor, Var};
use toolgym_model::{score, ModelOptions, Qwen2Config, Qwen2ForCausalLM, RandomInit, ScoreOptions};

fn tiny() -> Qwen2ForCausalLM {
    // Heads wider than hidden / heads (config.json's `head_dim`).
    let mut cfg = Qwen2Config::with_dims(40, 16, 24, 2, (4, 2), 10000.0, true);
    cfg.head_dim = 32;
    let opts = ModelOptions {
        dtype: DType::F64,
        device: Device::Cpu,
        trainable: true,
    };
    Qwen2ForCausalLM::random(&cfg, &RandomInit::peaked(7), &opts).unwrap()
}

#[test]
fn policy_loss_gradient_matches_finite_differences() {
    let model = tiny();
    let prompts: Vec<Vec<u32>> = vec![vec![3, 9, 4], vec![7, 1, 2, 8, 5], vec![11, 6]];
    let completions: Vec<Vec<u32>> = vec![vec![5, 12, 30, 2], vec![8, 2], vec![33, 17, 21]];
    let opts = ScoreOptions {
        temperature: 0.7,
        entropy: true,
        entropy_grad: true,
    };
    let base = score(&model, &prompts, &completions, &opts).unwrap();
    let lp = base
        .logprobs
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec2::<f64>()
        .unwrap();
    // Old log-probs: most tokens inside the clip range, some far outside
    // (clipped branch, zero surrogate gradient); reference log-probs nearby.
    let shift_old = [
        [0.05, -0.4, 0.02, 0.3],
        [-0.03, 0.5, 0.0, 0.0],
        [0.01, -0.02, -0.6, 0.0],
    ];
    let shift_ref = [
        [0.3, -0.2, 0.1, 0.25],
        [-0.15, 0.2, 0.0, 0.0],
        [0.05, -0.3, 0.2, 0.0],
    ];
    let make = |shift: &[[f64; 4]; 3]| {
        let rows: Vec<f32> = (0..3)
            .flat_map(|b| (0..4).map(move |j| (b, j)))
            .map(|(b, j)| {
                if j < lp[b].len() {
                    (lp[b][j] + shift[b][j]) as f32
                } else {
                    0.0
                }
            })
            .collect();
        Tensor::from_vec(rows, (3, 4), &Device::Cpu).unwrap()
    };
    let old = make(&shift_old);
    let reference = make(&shift_ref);
    let adv = Tensor::new(&[1.0f32, -0.5, 0.7], &Device::Cpu).unwrap();
    let coefs = LossCoefs {
        clip_low: 0.2,
        clip_high: 0.28,
        kl_coef: 0.1,
        entropy_coef: 0.01,
    };
    let loss_of = |m: &Qwen2ForCausalLM| -> Tensor {
        let s = score(m, &prompts, &completions, &opts).unwrap();
        let tokens: usize = completions.iter().map(Vec::len).sum();
        let w = aggregation_weights(&s.mask, LossAgg::TokenMean, tokens, 3).unwrap();
        let out = policy_loss(
            &LossInputs {
                logprobs: &s.logprobs.to_dtype(DType::F64).unwrap(),
                old_logprobs: &old.to_dtype(DType::F64).unwrap(),
                ref_logprobs: Some(&reference.to_dtype(DType::F64).unwrap()),
                entropies: s
                    .entropies
                    .as_ref()
                    .map(|e| e.to_dtype(DType::F64).unwrap())
                    .as_ref(),
                advantages: &adv,
                mask: &s.mask.to_dtype(DType::F64).unwrap(),
            },
            &coefs,
            &w.to_dtype(DType::F64).unwrap(),
        )
        .unwrap();
        out.loss
    };
    let vars = model.named_vars().unwrap();
    let grads = loss_of(&model).backward().unwrap();
    let h = 1e-5;
    let mut checked = 0;
    for (name, var) in &vars {
        let Some(g) = grads.get(var.as_tensor()) else {
            panic!("no gradient for {name}")
        };
        let g = g
            .to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let n = g.len();
        for &k in &[0, n / 3, n - 1] {
            let fd = finite_difference(&model, var, k, h, &loss_of);
            let tol = 1e-6 + 1e-4 * fd.abs().max(g[k].abs());
            assert!(
                (fd - g[k]).abs() <= tol,
                "{name}[{k}]: autograd {} vs finite difference {fd}",
                g[k]
            );
            checked += 1;
        }
    }
    assert!(checked >= 3 * 10, "checked {checked} entries");
}

fn finite_difference(
    model: &Qwen2ForCausalLM,
    var: &Var,
    k: usize,
    h: f64,
    loss_of: &dyn Fn(&Qwen2ForCausalLM) -> Tensor,
) -> f64 {
    let shape = var.as_tensor().shape().clone();
    let orig = var
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let eval = |delta: f64| {
        let mut v = orig.clone();
        v[k] += delta;
        var.set(&Tensor::from_vec(v, shape.clone(), &Device::Cpu).unwrap())
            .unwrap();
        loss_of(model).to_scalar::<f64>().unwrap()
    };
    let up = eval(h);
    let down = eval(-h);
    var.set(&Tensor::from_vec(orig, shape.clone(), &Device::Cpu).unwrap())
        .unwrap();
    (up - down) / (2.0 * h)
}
