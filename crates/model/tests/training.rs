//! Trainable parameters: Vars, gradients through scoring, frozen copies, init.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use toolgym_model::qwen2::expected_tensors;
use toolgym_model::{score, ModelError, Qwen2ForCausalLM, RandomInit, ScoreOptions, TokenBatch};

#[test]
fn gradients_reach_every_var_through_scoring() {
    for tied in [true, false] {
        let policy = small_model(tied, true, 21);
        let vars = policy.named_vars().unwrap();
        let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        let expected: Vec<String> = expected_tensors(policy.config())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, expected, "stable HF-named order");
        let prompts = vec![vec![1u32, 2, 3, 4], vec![9u32]];
        let comps = vec![vec![5u32, 6], vec![7u32, 8, 10]];
        let opts = ScoreOptions {
            temperature: 0.8,
            entropy: true,
            entropy_grad: true,
        };
        let out = score(&policy, &prompts, &comps, &opts).unwrap();
        assert!(out.logprobs.track_op());
        let loss =
            (out.logprobs.sum_all().unwrap() + out.entropies.unwrap().sum_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        for (name, var) in &vars {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("tied {tied}: no gradient for {name}"));
            assert_eq!(g.dims(), var.dims());
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "tied {tied}: gradient of {name} is {norm}"
            );
        }
    }
}

#[test]
fn gradient_matches_finite_difference() {
    let policy = small_model(false, true, 22);
    let prompts = vec![vec![3u32, 1, 4]];
    let comps = vec![vec![1u32, 5, 9]];
    let loss_of = |m: &Qwen2ForCausalLM| -> Tensor {
        score(m, &prompts, &comps, &ScoreOptions::default())
            .unwrap()
            .logprobs
            .sum_all()
            .unwrap()
    };
    let loss = loss_of(&policy);
    let grads = loss.backward().unwrap();
    let (name, var) = policy
        .named_vars()
        .unwrap()
        .into_iter()
        .find(|(n, _)| n.ends_with("layers.1.self_attn.k_proj.bias"))
        .unwrap();
    let g = flat(grads.get(var.as_tensor()).unwrap());
    let i = g
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .unwrap()
        .0;
    let eps = 1e-2f32;
    let base = flat(var.as_tensor());
    let eval = |delta: f32| -> f32 {
        let mut v = base.clone();
        v[i] += delta;
        var.set(&Tensor::from_vec(v, var.dims(), var.device()).unwrap())
            .unwrap();
        loss_of(&policy).to_scalar::<f32>().unwrap()
    };
    let fd = (eval(eps) - eval(-eps)) / (2.0 * eps);
    eval(0.0);
    assert!(
        (fd - g[i]).abs() < 2e-2 * g[i].abs().max(1.0),
        "{name}[{i}]: fd {fd} vs grad {}",
        g[i]
    );
}

#[test]
fn frozen_copy_detached_view_and_var_updates() {
    let policy = small_model(true, true, 23);
    let frozen = policy.frozen_copy().unwrap();
    let view = policy.detached().unwrap();
    assert!(!frozen.is_trainable() && !view.is_trainable());
    assert!(matches!(frozen.named_vars(), Err(ModelError::NotTrainable)));
    let batch = TokenBatch::single(&[1, 2, 3]).unwrap();
    let before = flat(&frozen.forward(&batch, None).unwrap());
    let out = view.forward(&batch, None).unwrap();
    assert!(!out.track_op(), "a detached view builds no graph");
    assert_eq!(flat(&out), before);
    let (_, emb) = policy.named_vars().unwrap().into_iter().next().unwrap();
    emb.set(&(emb.as_tensor().detach() * 1.5).unwrap()).unwrap();
    assert_eq!(
        flat(&frozen.forward(&batch, None).unwrap()),
        before,
        "frozen copy owns its storage"
    );
    let after_view = flat(&view.forward(&batch, None).unwrap());
    let after_policy = flat(&policy.forward(&batch, None).unwrap());
    assert!(
        max_abs_diff(&after_view, &before) > 1e-3,
        "the view sees Var updates"
    );
    assert!(max_abs_diff(&after_view, &after_policy) < 1e-5);
    // A trainable deep copy is independent too.
    let copy = policy.trainable_copy().unwrap();
    let (_, e2) = copy.named_vars().unwrap().into_iter().next().unwrap();
    e2.set(&e2.as_tensor().zeros_like().unwrap()).unwrap();
    assert_eq!(flat(&policy.forward(&batch, None).unwrap()), after_policy);
    // Generating from the trainable policy (internally detached) equals
    // generating from its frozen copy.
    let frozen_now = policy.frozen_copy().unwrap();
    let cfg = toolgym_model::GenerationConfig {
        max_new_tokens: 5,
        ..Default::default()
    };
    let req = [toolgym_model::GenerateRequest::new(vec![3, 1, 4], 2, 7)];
    let a = toolgym_model::generate(&policy, &req, &cfg, None).unwrap();
    let b = toolgym_model::generate(&frozen_now, &req, &cfg, None).unwrap();
    for (x, y) in a[0].iter().zip(&b[0]) {
        assert_eq!(x.token_ids, y.token_ids);
    }
    // Frozen scoring builds no graph.
    let s = score(
        &frozen,
        &[vec![1u32]],
        &[vec![2u32]],
        &ScoreOptions::default(),
    )
    .unwrap();
    assert!(!s.logprobs.track_op());
}

#[test]
fn random_init_is_deterministic() {
    let cfg = small_config(false);
    let opts = options(false);
    let a = Qwen2ForCausalLM::random(&cfg, &RandomInit::peaked(7), &opts).unwrap();
    let b = Qwen2ForCausalLM::random(&cfg, &RandomInit::peaked(7), &opts).unwrap();
    let c = Qwen2ForCausalLM::random(&cfg, &RandomInit::peaked(8), &opts).unwrap();
    for (((na, ta), (_, tb)), (_, tc)) in a
        .named_tensors()
        .iter()
        .zip(b.named_tensors())
        .zip(c.named_tensors())
    {
        assert_eq!(flat(ta), flat(&tb), "{na}");
        assert_ne!(flat(ta), flat(&tc), "{na}");
    }
    // The HF scheme: N(0, 0.02) weights, zero biases, unit norms.
    let hf = Qwen2ForCausalLM::random(&cfg, &RandomInit::hf(&cfg, 1), &opts).unwrap();
    for (name, t) in hf.named_tensors() {
        let v = flat(&t);
        if name.ends_with("norm.weight") {
            assert!(v.iter().all(|&x| x == 1.0));
        } else if name.ends_with(".bias") {
            assert!(v.iter().all(|&x| x == 0.0));
        } else {
            let std = (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
            assert!((std - 0.02).abs() < 0.003, "{name}: std {std}");
        }
    }
    assert_eq!(hf.num_parameters(), cfg.num_parameters());
}

#[test]
fn tiny_default_is_a_few_million_parameters() {
    let cfg = toolgym_model::Qwen2Config::tiny_default(2048);
    let n = cfg.num_parameters();
    assert!((2_000_000..6_000_000).contains(&n), "{n}");
    let m = Qwen2ForCausalLM::random(&cfg, &RandomInit::hf(&cfg, 0), &options(false)).unwrap();
    let out = m
        .forward(&TokenBatch::single(&[1, 2, 3]).unwrap(), None)
        .unwrap();
    assert_eq!(out.dims(), &[1, 3, 2048]);
    assert_eq!(out.dtype(), DType::F32);
}

/// Scores `rows` (prompt, completion) one at a time, so that no prompt is
/// shared: the reference for the shared-prompt path.
fn score_each(
    m: &Qwen2ForCausalLM,
    rows: &[(Vec<u32>, Vec<u32>)],
    opts: &ScoreOptions,
    width: usize,
) -> (Tensor, Tensor) {
    let (mut lp, mut ent) = (Vec::new(), Vec::new());
    let zeros = || Tensor::zeros((1, width), DType::F32, &test_device()).unwrap();
    for (p, c) in rows {
        if c.is_empty() {
            lp.push(zeros());
            ent.push(zeros());
            continue;
        }
        let out = score(m, &[p], &[c], opts).unwrap();
        let pad = |t: &Tensor| {
            Tensor::cat(&[t, &zeros().narrow(1, 0, width - c.len()).unwrap()], 1).unwrap()
        };
        lp.push(pad(&out.logprobs));
        ent.push(pad(out.entropies.as_ref().unwrap()));
    }
    (Tensor::cat(&lp, 0).unwrap(), Tensor::cat(&ent, 0).unwrap())
}

#[test]
fn shared_prompts_score_and_differentiate_like_separate_rows() {
    let policy = small_model(false, true, 24);
    // Three rows on one prompt, two on another, two on a one-token prompt
    // (an empty prefix row), one alone; completions of mixed lengths, one
    // empty.
    let a = vec![1u32, 2, 3, 4, 5];
    let b = vec![7u32, 8];
    let rows: Vec<(Vec<u32>, Vec<u32>)> = vec![
        (a.clone(), vec![6, 7, 8]),
        (b.clone(), vec![9]),
        (a.clone(), vec![6, 2]),
        (vec![9], vec![3, 3, 3, 3]),
        (vec![4, 4, 4], vec![1, 2]),
        (a.clone(), vec![]),
        (b.clone(), vec![5, 6, 7, 8, 9]),
        (vec![9], vec![2]),
    ];
    let opts = ScoreOptions {
        temperature: 0.7,
        entropy: true,
        entropy_grad: true,
    };
    let prompts: Vec<&[u32]> = rows.iter().map(|r| r.0.as_slice()).collect();
    let comps: Vec<&[u32]> = rows.iter().map(|r| r.1.as_slice()).collect();
    let shared = score(&policy, &prompts, &comps, &opts).unwrap();
    let width = shared.logprobs.dim(1).unwrap();
    let (lp_each, ent_each) = score_each(&policy, &rows, &opts, width);
    let d = max_abs_diff(&flat(&shared.logprobs), &flat(&lp_each));
    assert!(d < 1e-5, "log-probs differ by {d}");
    let d = max_abs_diff(&flat(shared.entropies.as_ref().unwrap()), &flat(&ent_each));
    assert!(d < 1e-5, "entropies differ by {d}");
    assert!(
        flat(&shared.logprobs).iter().any(|&x| x < -0.5),
        "not trivial"
    );

    // Gradients of one weighted loss, both ways.
    let w = Tensor::from_vec(
        (0..rows.len() * width)
            .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
            .collect::<Vec<_>>(),
        (rows.len(), width),
        &test_device(),
    )
    .unwrap();
    let loss = |lp: &Tensor, ent: &Tensor| {
        ((lp * &w).unwrap().sum_all().unwrap() + (ent * &w).unwrap().sum_all().unwrap() * 0.3)
            .unwrap()
    };
    let g_shared = loss(&shared.logprobs, shared.entropies.as_ref().unwrap())
        .backward()
        .unwrap();
    let g_each = loss(&lp_each, &ent_each).backward().unwrap();
    for (name, var) in policy.named_vars().unwrap() {
        let (x, y) = (
            flat(g_shared.get(var.as_tensor()).unwrap()),
            flat(g_each.get(var.as_tensor()).unwrap()),
        );
        let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = max_abs_diff(&x, &y);
        assert!(
            scale > 0.0 && d <= 1e-4 * scale.max(1.0),
            "{name}: gradients differ by {d} (scale {scale})"
        );
    }
}

#[test]
fn continuation_batches_are_checked() {
    let model = small_model(true, false, 25);
    let prefix = model
        .forward_prefix(&TokenBatch::left_padded(&[vec![1u32, 2, 3], vec![4]], 0).unwrap())
        .unwrap();
    assert_eq!((prefix.batch_size(), prefix.len()), (2, 3));
    let cont = TokenBatch::new(vec![5, 6, 7, 8], 2, 2, vec![0, 0]).unwrap();
    let h = model.forward_hidden_after(&cont, &prefix, &[1, 1]).unwrap();
    assert_eq!(h.dims()[..2], [2, 2]);
    let err = |r: toolgym_model::Result<Tensor>| r.unwrap_err().to_string();
    assert!(err(model.forward_hidden_after(&cont, &prefix, &[0, 2])).contains("prefix index 2"));
    assert!(err(model.forward_hidden_after(&cont, &prefix, &[0])).contains("1 prefix indices"));
    let padded = TokenBatch::new(vec![0, 6, 7, 8], 2, 2, vec![1, 0]).unwrap();
    assert!(err(model.forward_hidden_after(&padded, &prefix, &[0, 1])).contains("left-padded"));
    let other = small_model(true, false, 26);
    let mut cfg = other.config().clone();
    cfg.num_hidden_layers += 1;
    let deeper = Qwen2ForCausalLM::random(&cfg, &RandomInit::hf(&cfg, 1), &options(false)).unwrap();
    assert!(err(deeper.forward_hidden_after(&cont, &prefix, &[0, 1])).contains("another model"));
}
