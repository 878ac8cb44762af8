//! The single-turn path through the rollout engine gives what the trainers
//! gave before the engine existed. The numbers were recorded at commit
//! bfeb5a6 (separate single-turn generation loops) with this same set-up
//! and came out bit for bit until scoring learned to run a prompt shared
//! by a group's rows once (a prefix pass and its continuations, with
//! micro-batches that keep a group together). That changes float rounding
//! only: the GRPO numbers are now pinned bit for bit at their new values,
//! and checked against bfeb5a6's to a relative 1e-5 (rewards, reasons and
//! clip fractions are still exactly bfeb5a6's). SFT, whose prompts are
//! distinct, is still bit for bit bfeb5a6's.
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
        (4618161420360482816u64, 4607799579981167004u64),
        (4617899762094440448, 4608288020256525987),
    ];
    for (loss, grad) in want {
        let m = t.step().unwrap();
        assert_eq!((m.loss.to_bits(), m.grad_norm.to_bits()), (loss, grad));
    }
    assert_eq!(
        checksum(t.policy()),
        (4648826791541262080, 4640910812840342110)
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
                4602866469157120683,
                13805687897996656640,
                4611931615322385901,
                4569213313434746775,
                4574064308356942410,
            ],
            [("ok", 2), ("wrong_args", 10)],
        ),
        (
            [
                4599676419421066581,
                13817910132064911360,
                4604362337446469686,
                4579547749055214868,
                0,
            ],
            [("ok", 1), ("wrong_args", 11)],
        ),
    ];
    // The same at bfeb5a6, before prompts were shared.
    let bfeb5a6: [[u64; 5]; 2] = [
        [
            4602866469157120683,
            13805687896386043904,
            4611931616107798528,
            4569213322273264683,
            4574064308356942410,
        ],
        [
            4599676419421066581,
            13817910129883873280,
            4604362337311754669,
            4579547747274148517,
            0,
        ],
    ];
    for ((bits, reasons), old) in want.into_iter().zip(bfeb5a6) {
        let m = t.step().unwrap();
        let got = [
            m.reward_mean.unwrap().to_bits(),
            m.loss.to_bits(),
            m.grad_norm.to_bits(),
            m.kl.unwrap().to_bits(),
            m.clip_fraction.unwrap().to_bits(),
        ];
        assert_eq!(got, bits, "{m:?}");
        for (k, (g, o)) in got.iter().zip(old).enumerate() {
            let (g, o) = (f64::from_bits(*g), f64::from_bits(o));
            let exact = k == 0 || k == 4;
            let close = (g - o).abs() <= 1e-5 * o.abs();
            assert!(
                if exact { g == o } else { close },
                "value {k}: {g} vs bfeb5a6's {o}"
            );
        }
        let reasons: Vec<(String, usize)> =
            reasons.iter().map(|(r, n)| (r.to_string(), *n)).collect();
        let got: Vec<(String, usize)> = m.reasons.clone().into_iter().collect();
        assert_eq!(got, reasons);
        assert_eq!((m.turns_mean, m.masked_tokens), (Some(1.0), Some(0)));
    }
    let sums = checksum(t.policy());
    assert_eq!(sums, (4641974820464514560, 4649743959815158352));
    let old = (
        f64::from_bits(4641974823162158976),
        f64::from_bits(4649743959857550116),
    );
    let rel = |a: u64, b: f64| (f64::from_bits(a) - b).abs() / b.abs();
    assert!(rel(sums.0, old.0) < 1e-6 && rel(sums.1, old.1) < 1e-6);
    std::fs::remove_dir_all(&dir).ok();
}
