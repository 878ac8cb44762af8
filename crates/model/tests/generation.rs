//! Generation: batching invariance, seeds, filters, stop conditions, log-probs.

mod common;

use common::*;
use toolgym_model::sampling::{sample_token, token_logprob};
use toolgym_model::{
    generate, score, train_bpe_tokenizer, Completion, FinishReason, GenerateRequest,
    GenerationConfig, Qwen2ForCausalLM, RandomInit, Rng, SamplingParams, SamplingPlace,
    ScoreOptions, StopCause,
};

/// Same tokens, text and finish; log-probs equal up to float rounding of
/// differently shaped batches.
fn assert_same(a: &[Completion], b: &[Completion], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.token_ids, y.token_ids, "{what}");
        assert_eq!(x.text, y.text, "{what}");
        assert_eq!(x.finish_reason, y.finish_reason, "{what}");
        assert_eq!(x.stop_cause, y.stop_cause, "{what}");
        let d = max_abs_diff(&x.logprobs, &y.logprobs);
        assert!(d < 1e-4, "{what}: logprob diff {d}");
    }
}

fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![5, 17, 33, 2, 90, 41, 7],
        vec![11, 3],
        vec![60, 61, 62, 63, 1],
        vec![42],
    ]
}

fn cfg(max_new: usize, sampling: SamplingParams) -> GenerationConfig {
    GenerationConfig {
        max_new_tokens: max_new,
        sampling,
        ..GenerationConfig::default()
    }
}

#[test]
fn batched_greedy_equals_unbatched() {
    for tied in [true, false] {
        let model = small_model(tied, false, 3);
        let mut c = cfg(12, SamplingParams::greedy());
        // An eos that some rows hit early exercises stopping and compaction.
        let probe = generate(
            &model,
            &[GenerateRequest::new(prompts()[0].clone(), 1, 0)],
            &c,
            None,
        )
        .unwrap();
        c.eos_token_ids = vec![probe[0][0].token_ids[4]];
        let reqs: Vec<_> = prompts()
            .into_iter()
            .map(|p| GenerateRequest::new(p, 2, 9))
            .collect();
        let batched = generate(&model, &reqs, &c, None).unwrap();
        for (i, r) in reqs.iter().enumerate() {
            let alone = generate(&model, std::slice::from_ref(r), &c, None).unwrap();
            assert_same(&batched[i], &alone[0], &format!("tied {tied}, prompt {i}"));
            // Greedy samples of one prompt are identical.
            assert_eq!(batched[i][0].token_ids, batched[i][1].token_ids);
        }
        assert!(batched
            .iter()
            .flatten()
            .any(|c| c.finish_reason == FinishReason::Stop));
    }
}

#[test]
fn seeded_sampling_is_reproducible_and_batch_independent() {
    let model = small_model(false, false, 4);
    let sampling = SamplingParams {
        temperature: 0.9,
        top_p: 0.95,
        top_k: 40,
        greedy: false,
        repetition_penalty: 1.0,
    };
    let c = cfg(10, sampling);
    let target = GenerateRequest::new(prompts()[2].clone(), 3, 1234);
    let alone = generate(&model, std::slice::from_ref(&target), &c, None).unwrap();
    let again = generate(&model, std::slice::from_ref(&target), &c, None).unwrap();
    assert_eq!(alone, again);
    let mut mixed: Vec<_> = prompts()
        .into_iter()
        .enumerate()
        .map(|(i, p)| GenerateRequest::new(p, 1 + i % 2, 77 + i as u64))
        .collect();
    mixed.insert(1, target.clone());
    let together = generate(&model, &mixed, &c, None).unwrap();
    assert_same(&together[1], &alone[0], "target inside a mixed batch");
    // Chunked into small batches: still the same.
    let chunked = generate(
        &model,
        &mixed,
        &GenerationConfig {
            max_batch_size: 3,
            ..c.clone()
        },
        None,
    )
    .unwrap();
    for (a, b) in chunked.iter().zip(&together) {
        assert_same(a, b, "chunked batches");
    }
    // Samples of one request differ from each other, and other seeds differ.
    let s = &alone[0];
    assert!(s[0].token_ids != s[1].token_ids || s[1].token_ids != s[2].token_ids);
    let other = generate(
        &model,
        &[GenerateRequest::new(target.prompt_ids.clone(), 3, 99)],
        &c,
        None,
    )
    .unwrap();
    assert_ne!(other[0], alone[0]);
}

/// Tokens chosen on the device (`toolgym_model::device_sampling`) are the
/// host sampler's, draw for draw, for greedy selection and for temperature
/// sampling: with several samples per prompt sharing a prefill, rows
/// finishing early at an eos, and finished rows compacted away.
#[test]
fn device_sampling_agrees_with_host_sampling() {
    let model = small_model(false, false, 5);
    let reqs: Vec<_> = prompts()
        .into_iter()
        .enumerate()
        .map(|(i, p)| GenerateRequest::new(p, 1 + i % 3, 500 + i as u64))
        .collect();
    for sampling in [
        SamplingParams::greedy(),
        SamplingParams {
            temperature: 0.7,
            ..SamplingParams::default()
        },
        SamplingParams::default(),
    ] {
        let mut c = cfg(16, sampling.clone());
        c.sampling_place = SamplingPlace::Host;
        let probe = generate(&model, &reqs, &c, None).unwrap();
        c.eos_token_ids = vec![probe[0][0].token_ids[3]];
        let host = generate(&model, &reqs, &c, None).unwrap();
        c.sampling_place = SamplingPlace::Device;
        let device = generate(&model, &reqs, &c, None).unwrap();
        for (i, (h, d)) in host.iter().zip(&device).enumerate() {
            assert_same(h, d, &format!("{sampling:?}, request {i}"));
        }
        assert!(host
            .iter()
            .flatten()
            .any(|c| c.finish_reason == FinishReason::Stop));
    }
}

#[test]
fn generation_logprobs_equal_scoring_logprobs() {
    for tied in [true, false] {
        let model = small_model(tied, false, 5);
        let policy = small_model(tied, true, 5);
        let sampling = SamplingParams {
            temperature: 0.7,
            ..SamplingParams::default()
        };
        let reqs: Vec<_> = prompts()
            .into_iter()
            .map(|p| GenerateRequest::new(p, 2, 3))
            .collect();
        let out = generate(&model, &reqs, &cfg(9, sampling), None).unwrap();
        let mut ps = Vec::new();
        let mut cs = Vec::new();
        for (r, comps) in reqs.iter().zip(&out) {
            for c in comps {
                ps.push(r.prompt_ids.clone());
                cs.push(c.token_ids.clone());
            }
        }
        let gen_lp: Vec<Vec<f32>> = out.iter().flatten().map(|c| c.logprobs.clone()).collect();
        for m in [&model, &policy] {
            let s = score(m, &ps, &cs, &ScoreOptions::default()).unwrap();
            let lp = s.logprobs.to_vec2::<f32>().unwrap();
            for (row, g) in lp.iter().zip(&gen_lp) {
                let d = max_abs_diff(&row[..g.len()], g);
                assert!(d < 1e-4, "tied {tied}: diff {d}");
            }
        }
    }
}

#[test]
fn top_k_one_and_tiny_top_p_are_greedy() {
    let model = small_model(true, false, 6);
    let reqs: Vec<_> = prompts()
        .into_iter()
        .map(|p| GenerateRequest::new(p, 1, 5))
        .collect();
    let greedy = generate(&model, &reqs, &cfg(8, SamplingParams::greedy()), None).unwrap();
    for s in [
        SamplingParams {
            top_k: 1,
            ..SamplingParams::default()
        },
        SamplingParams {
            top_p: 1e-6,
            ..SamplingParams::default()
        },
        SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
    ] {
        let out = generate(&model, &reqs, &cfg(8, s.clone()), None).unwrap();
        for (a, b) in out.iter().zip(&greedy) {
            assert_eq!(a[0].token_ids, b[0].token_ids, "{s:?}");
        }
    }
}

#[test]
fn top_k_and_top_p_restrict_the_support() {
    // p = [0.5, 0.3, 0.15, 0.05]
    let logits: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
    let mut rng = Rng::new(1);
    let mut counts = [0usize; 4];
    let n = 20000;
    for _ in 0..n {
        counts[sample_token(&logits, &SamplingParams::default(), &mut rng) as usize] += 1;
    }
    for (c, p) in counts.iter().zip([0.5, 0.3, 0.15, 0.05]) {
        assert!((*c as f64 / n as f64 - p).abs() < 0.015, "{counts:?}");
    }
    let top_k2 = SamplingParams {
        top_k: 2,
        ..SamplingParams::default()
    };
    let mut counts = [0usize; 4];
    for _ in 0..n {
        counts[sample_token(&logits, &top_k2, &mut rng) as usize] += 1;
    }
    assert_eq!(counts[2] + counts[3], 0);
    assert!(
        (counts[0] as f64 / n as f64 - 0.625).abs() < 0.015,
        "{counts:?}"
    );
    // top_p 0.7: 0.5 < 0.7 so token 1 is kept; 0.8 >= 0.7 so token 2 is not.
    let top_p = SamplingParams {
        top_p: 0.7,
        ..SamplingParams::default()
    };
    let mut counts = [0usize; 4];
    for _ in 0..n {
        counts[sample_token(&logits, &top_p, &mut rng) as usize] += 1;
    }
    assert_eq!(counts[2] + counts[3], 0, "{counts:?}");
    assert!(counts[1] > 0);
    // top_p 0.85 keeps three tokens.
    let top_p = SamplingParams {
        top_p: 0.85,
        ..SamplingParams::default()
    };
    let seen: std::collections::BTreeSet<u32> = (0..2000)
        .map(|_| sample_token(&logits, &top_p, &mut rng))
        .collect();
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    // Temperature sharpens: T = 0.5 squares the odds.
    let cold = SamplingParams {
        temperature: 0.5,
        ..SamplingParams::default()
    };
    let hits = (0..n)
        .filter(|_| sample_token(&logits, &cold, &mut rng) == 0)
        .count();
    let z: f64 = [0.5f64, 0.3, 0.15, 0.05].iter().map(|p| p * p).sum();
    assert!((hits as f64 / n as f64 - 0.25 / z).abs() < 0.015);
    // A large vocabulary exercises the partial-sort path of top-p.
    let big: Vec<f32> = (0..5000).map(|i| -((i % 997) as f32) * 0.01).collect();
    let p = SamplingParams {
        top_p: 0.5,
        ..SamplingParams::default()
    };
    for _ in 0..200 {
        let t = sample_token(&big, &p, &mut rng);
        assert!(token_logprob(&big, t) > -9.0);
    }
}

#[test]
fn sampled_tokens_respect_top_k_in_generation() {
    let model = small_model(true, false, 8);
    let s = SamplingParams {
        top_k: 3,
        temperature: 1.5,
        ..SamplingParams::default()
    };
    let p = prompts()[0].clone();
    let out = generate(
        &model,
        &[GenerateRequest::new(p.clone(), 4, 2)],
        &cfg(6, s),
        None,
    )
    .unwrap();
    for c in &out[0] {
        let mut ctx = p.clone();
        for &t in &c.token_ids {
            let batch = toolgym_model::TokenBatch::single(&ctx).unwrap();
            let logits = model
                .forward_last(&batch, None)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let row = &logits[0];
            let better = row.iter().filter(|&&v| v > row[t as usize]).count();
            assert!(better < 3, "token {t} has rank {better}");
            ctx.push(t);
        }
    }
}

#[test]
fn max_new_tokens_and_eos_finish_reasons() {
    let model = small_model(false, false, 9);
    let p = prompts()[1].clone();
    let free = generate(
        &model,
        &[GenerateRequest::new(p.clone(), 1, 0)],
        &cfg(6, SamplingParams::greedy()),
        None,
    )
    .unwrap();
    let c = &free[0][0];
    assert_eq!(c.token_ids.len(), 6);
    assert_eq!(c.logprobs.len(), 6);
    assert_eq!(c.finish_reason, FinishReason::Length);
    assert!(c.logprobs.iter().all(|&l| l <= 0.0 && l.is_finite()));
    let eos = c.token_ids[2];
    let first = c.token_ids.iter().position(|&t| t == eos).unwrap();
    let stopped = generate(
        &model,
        &[GenerateRequest::new(p.clone(), 1, 0)],
        &GenerationConfig {
            eos_token_ids: vec![eos],
            ..cfg(6, SamplingParams::greedy())
        },
        None,
    )
    .unwrap();
    let s = &stopped[0][0];
    assert_eq!(s.token_ids, c.token_ids[..=first].to_vec());
    assert_eq!(s.finish_reason, FinishReason::Stop);
    assert_eq!(s.stop_cause, Some(StopCause::Eos(eos)));
    let none = generate(
        &model,
        &[GenerateRequest::new(p, 2, 0)],
        &cfg(0, SamplingParams::greedy()),
        None,
    )
    .unwrap();
    assert!(none[0]
        .iter()
        .all(|c| c.token_ids.is_empty() && c.finish_reason == FinishReason::Length));
}

#[test]
fn stop_strings_cut_the_text_before_the_match() {
    let corpus: Vec<String> = (0..200)
        .map(|i| format!("<|im_start|>user\nlook up item {i} please<|im_end|>\n<|im_start|>assistant\n<tool_call>{{\"name\": \"find\", \"arguments\": {{\"id\": {i}}}}}</tool_call><|im_end|>"))
        .collect();
    let tk = train_bpe_tokenizer(&corpus, 400, &[]).unwrap();
    let mut c = small_config(true);
    c.vocab_size = tk.vocab_size();
    let model = Qwen2ForCausalLM::random(&c, &RandomInit::peaked(11), &options(false)).unwrap();
    let prompt = tk.encode("<|im_start|>user\nhello").unwrap();
    let base = cfg(24, SamplingParams::greedy());
    let free = generate(
        &model,
        &[GenerateRequest::new(prompt.clone(), 1, 0)],
        &base,
        Some(&tk),
    )
    .unwrap();
    let full = free[0][0].text.clone().unwrap();
    assert_eq!(full, tk.decode(&free[0][0].token_ids, false).unwrap());
    // Pick a stop string in the middle of the free-running text.
    let chars: Vec<char> = full.chars().collect();
    assert!(chars.len() >= 6, "text too short: {full:?}");
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let pos = full.find(&stop).unwrap();
    for include in [false, true] {
        let cfg2 = GenerationConfig {
            stop_strings: vec!["never-appears".into(), stop.clone()],
            include_stop_str_in_output: include,
            ..base.clone()
        };
        let out = generate(
            &model,
            &[GenerateRequest::new(prompt.clone(), 1, 0)],
            &cfg2,
            Some(&tk),
        )
        .unwrap();
        let c = &out[0][0];
        assert_eq!(c.finish_reason, FinishReason::Stop);
        assert_eq!(c.stop_cause, Some(StopCause::StopString(stop.clone())));
        let want = if include {
            &full[..pos + stop.len()]
        } else {
            &full[..pos]
        };
        assert_eq!(c.text.as_deref(), Some(want));
        // Tokens: the shortest prefix of the free run whose text holds the stop string.
        let n = c.token_ids.len();
        assert_eq!(c.token_ids, free[0][0].token_ids[..n].to_vec());
        assert!(tk.decode(&c.token_ids, false).unwrap().contains(&stop));
        assert!(!tk
            .decode(&c.token_ids[..n - 1], false)
            .unwrap()
            .contains(&stop));
    }
    // Stop strings without a tokenizer are rejected.
    let cfg3 = GenerationConfig {
        stop_strings: vec!["x".into()],
        ..base
    };
    assert!(generate(&model, &[GenerateRequest::new(prompt, 1, 0)], &cfg3, None).is_err());
}

#[test]
fn bad_requests_are_rejected() {
    let model = small_model(true, false, 1);
    let c = cfg(4, SamplingParams::default());
    let vocab = model.config().vocab_size as u32;
    for req in [
        GenerateRequest::new(vec![], 1, 0),
        GenerateRequest::new(vec![1], 0, 0),
        GenerateRequest::new(vec![vocab], 1, 0),
    ] {
        let e = generate(&model, &[req], &c, None).unwrap_err();
        assert!(e.to_string().contains("invalid input"), "{e}");
    }
    let too_long = GenerationConfig {
        max_new_tokens: model.config().max_position_embeddings,
        ..c.clone()
    };
    let e = generate(
        &model,
        &[GenerateRequest::new(vec![1], 1, 0)],
        &too_long,
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("max_position_embeddings"), "{e}");
    let bad = GenerationConfig {
        sampling: SamplingParams {
            top_p: 0.0,
            ..SamplingParams::default()
        },
        ..c
    };
    assert!(generate(&model, &[GenerateRequest::new(vec![1], 1, 0)], &bad, None).is_err());
}

#[test]
fn per_request_token_limits() {
    let model = small_model(false, false, 6);
    let sampling = SamplingParams {
        temperature: 1.0,
        ..SamplingParams::default()
    };
    let c = cfg(10, sampling);
    let full: Vec<_> = prompts()
        .into_iter()
        .map(|p| GenerateRequest::new(p, 2, 3))
        .collect();
    let limits = [3, 0, 10, 25];
    let limited: Vec<_> = full
        .iter()
        .zip(limits)
        .map(|(r, l)| r.clone().with_max_new_tokens(l))
        .collect();
    let a = generate(&model, &full, &c, None).unwrap();
    let b = generate(&model, &limited, &c, None).unwrap();
    for ((x, y), l) in a.iter().zip(&b).zip(limits) {
        for (x, y) in x.iter().zip(y) {
            // A limit above the config's is the config's.
            let l = l.min(10);
            assert_eq!(y.token_ids.len(), l.min(x.token_ids.len()));
            // Sampling streams are per request: a limited completion is a
            // prefix of the unlimited one.
            assert_eq!(y.token_ids[..], x.token_ids[..y.token_ids.len()]);
            if y.token_ids.len() == l {
                assert_eq!(y.finish_reason, FinishReason::Length);
            }
        }
    }
}

/// `model` with its tensor `name` replaced by `edit` of it.
fn edited(
    model: &Qwen2ForCausalLM,
    name: &str,
    edit: impl Fn(candle_core::Tensor) -> candle_core::Tensor,
) -> Qwen2ForCausalLM {
    let tensors = model
        .named_tensors()
        .into_iter()
        .map(|(n, t)| if n == name { (n, edit(t)) } else { (n, t) })
        .collect();
    Qwen2ForCausalLM::from_tensors(model.config(), tensors, &options(false)).unwrap()
}

/// A model whose logits are not numbers fails generation, on either
/// sampler and greedy or not, instead of returning token 0 as a completion.
#[test]
fn logits_that_are_not_numbers_fail_generation() {
    let model = small_model(false, false, 5);
    let nan = edited(&model, "model.norm.weight", |t| (t * f64::NAN).unwrap());
    let reqs: Vec<_> = prompts()
        .into_iter()
        .map(|p| GenerateRequest::new(p, 2, 9))
        .collect();
    // One logit that is not a number among finite ones (token 93's output
    // row NaN, a token no prompt holds): the sampler could pass over it,
    // but the row's log-probabilities are unknown, so the call fails too.
    let one_nan_logit = edited(&model, "lm_head.weight", |t| {
        let mut rows = t.to_vec2::<f32>().unwrap();
        rows[93].fill(f32::NAN);
        candle_core::Tensor::new(rows, t.device()).unwrap()
    });
    for sampling in [SamplingParams::greedy(), SamplingParams::default()] {
        for place in [SamplingPlace::Host, SamplingPlace::Device] {
            let mut c = cfg(6, sampling.clone());
            c.sampling_place = place;
            assert!(generate(&model, &reqs, &c, None).is_ok());
            for broken in [&nan, &one_nan_logit] {
                let e = generate(broken, &reqs, &c, None).unwrap_err();
                assert!(
                    matches!(
                        e,
                        toolgym_model::ModelError::NonFiniteLogits {
                            request: 0,
                            step: 0
                        }
                    ),
                    "{sampling:?} {place:?}: {e}"
                );
                assert!(e.to_string().contains("logits are not finite"), "{e}");
            }
        }
    }
    // Only prompts holding token 95 (its embedding row NaN) fail; with two
    // rows a batch, the third request, in the second batch, is named as
    // the third of the call.
    let one_bad = edited(&model, "model.embed_tokens.weight", |t| {
        let mut rows = t.to_vec2::<f32>().unwrap();
        rows[95].fill(f32::NAN);
        candle_core::Tensor::new(rows, t.device()).unwrap()
    });
    let reqs: Vec<_> = [vec![1u32, 2, 3], vec![4, 5, 6], vec![7, 95, 8]]
        .into_iter()
        .map(|p| GenerateRequest::new(p, 1, 3))
        .collect();
    let mut c = cfg(4, SamplingParams::greedy());
    c.max_batch_size = 2;
    assert!(generate(&one_bad, &reqs[..2], &c, None).is_ok());
    let e = generate(&one_bad, &reqs, &c, None).unwrap_err();
    assert!(
        matches!(
            e,
            toolgym_model::ModelError::NonFiniteLogits {
                request: 2,
                step: 0
            }
        ),
        "{e}"
    );
}
