//! The single-turn path through the rollout engine gives what the trainers
//! gave before the engine existed. The numbers were recorded at commit
//! bfeb5a6 (separate single-turn generation loops) with this same set-up
//! and came out bit for bit until scoring learned to run a prompt shared
//! by a group's rows once (a prefix pass and its continuations, with
//! micro-batches that keep a group together), which changed GRPO's float
//! rounding only.
//!
//! Since the fused CPU kernels (attention softmax, RMSNorm, SwiGLU gate and
//! token log-probs with their own backward passes, `toolgym_model`'s
//! `fused` module), forward values are still the same bits but gradients
//! round differently:
//! - SFT: the losses are still bfeb5a6's bit for bit, the gradient norms
//!   agree with bfeb5a6's to a relative 1e-8 (they differ by ~6e-9: f32
//!   gradients summed in another order), and the pins are the new bits;
//! - GRPO: its 60-step warm start at lr 1e-2 amplifies that rounding into a
//!   different policy (parameters 0.1% apart), so its samples and rewards
//!   differ from bfeb5a6's; the values are pinned at their new bits and the
//!   fused ops are checked against the composed chains in the model crate.
//!   The pins before the fused kernels are kept below for the record.
//!
//! Set-up: the tests' tiny policy, 60 single-turn SFT steps, then two GRPO
//! steps (4 prompts × G = 3, two mini-batches, so π_old ≠ π on the second;
//! clipping and the KL are active) with a deterministic reward that varies
//! within groups.
mod common;

use common::*;
use std::sync::Arc;
use toolgym_grpo::{GrpoTrainer, Policy, SftConfig, SftTrainer};

/// One step's reward, loss, grad norm, KL and clip fraction (f64 bits),
/// then its reason counts.
type StepBits = ([u64; 5], [(&'static str, usize); 2]);

/// Two sums over every parameter (one weighted by position), as f64 bits.
fn checksum(p: &Policy) -> (u64, u64) {
    let (mut s, mut q) = (0.0f64, 0.0f64);
    for (i, (_, v)) in params_of(p).iter().enumerate() {
        for (j, x) in v.iter().enumerate() {
            s += *x as f64 * (1.0 + ((i * 31 + j) % 7) as f64);
            q += (*x as f64) * (*x as f64);
        }
    }
    (s.to_bits(), q.to_bits())
}

fn sft(steps: usize, micro: usize, name: &str) -> SftTrainer {
    let gen = tasks();
    let mut cfg = SftConfig {
        steps,
        batch_size: 8,
        micro_batch_seqs: micro,
        ..SftConfig::default()
    };
    cfg.optim.lr = 1e-2;
    SftTrainer::new(
        policy(&gen),
        factory(),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        cfg,
        run_section(run_dir(name), 0),
    )
    .unwrap()
}

#[test]
fn single_turn_sft_is_unchanged() {
    let mut t = sft(2, 4, "regress-sft");
    let want = [
        (4618161420360482816u64, 4607799579951750008u64),
        (4617899762094440448, 4608288020229005556),
    ];
    // bfeb5a6's gradient norms (its losses are the pinned ones).
    let bfeb5a6 = [4607799579981167004u64, 4608288020256525987];
    for ((loss, grad), old) in want.into_iter().zip(bfeb5a6) {
        let m = t.step().unwrap();
        assert_eq!((m.loss.to_bits(), m.grad_norm.to_bits()), (loss, grad));
        let old = f64::from_bits(old);
        assert!(
            (m.grad_norm - old).abs() <= 1e-8 * old,
            "{} vs {old}",
            m.grad_norm
        );
    }
    assert_eq!(
        checksum(t.policy()),
        (4648826791337255296, 4640910812838873234)
    );
}

#[test]
fn single_turn_grpo_is_unchanged() {
    let gen = tasks();
    let mut warm = sft(60, 8, "regress-warm");
    for _ in 0..60 {
        warm.step().unwrap();
    }
    let mut config = grpo_config(2);
    config.max_response_tokens = 64;
    // Long enough for every prompt (the old trainer left-truncated longer
    // ones, the engine leaves them out).
    config.max_prompt_tokens = 1024;
    let dir = run_dir("regress-grpo");
    let mut t = GrpoTrainer::new(
        warm.into_policy(),
        Arc::new(length_spec()),
        Arc::new(gen.split(toolgym_env::synthetic::Split::Train)),
        vec![],
        config,
        run_section(dir.clone(), 0),
    )
    .unwrap();
    // reward, loss, grad norm, KL, clip fraction (f64 bits), then the reasons.
    let want: [StepBits; 2] = [
        (
            [
                4601928219234751829,
                13820754041572950016,
                4607629745964225620,
                4573151095419350312,
                4584060439372030692,
            ],
            [("ok", 2), ("wrong_args", 10)],
        ),
        (
            [
                4601177619296856747,
                13813817780506132480,
                4602932489940967439,
                4580500368483267868,
                4575253913979107175,
            ],
            [("ok", 2), ("wrong_args", 10)],
        ),
    ];
    // Pinned before the fused kernels (composed backward passes), for the
    // record: step 1 [4602866469157120683, 13805687897996656640,
    // 4611931615322385901, 4569213313434746775, 4574064308356942410] with
    // ok 2 / wrong_args 10; step 2 [4599676419421066581,
    // 13817910132064911360, 4604362337446469686, 4579547749055214868, 0]
    // with ok 1 / wrong_args 11; parameter sums (4641974820464514560,
    // 4649743959815158352). Those matched bfeb5a6's to a relative 1e-5.
    for (bits, reasons) in want {
        let m = t.step().unwrap();
        let got = [
            m.reward_mean.unwrap().to_bits(),
            m.loss.to_bits(),
            m.grad_norm.to_bits(),
            m.kl.unwrap().to_bits(),
            m.clip_fraction.unwrap().to_bits(),
        ];
        assert_eq!(got, bits, "{m:?}");
        let reasons: Vec<(String, usize)> =
            reasons.iter().map(|(r, n)| (r.to_string(), *n)).collect();
        let got: Vec<(String, usize)> = m.reasons.clone().into_iter().collect();
        assert_eq!(got, reasons);
        assert_eq!((m.turns_mean, m.masked_tokens), (Some(1.0), Some(0)));
    }
    let sums = checksum(t.policy());
    assert_eq!(sums, (4641988678549466496, 4649752442899000615));
    std::fs::remove_dir_all(&dir).ok();
}
