//! Fuzzes a user-written multi-turn environment (the bank teller of
//! `examples/bank`: strict schemas, an enum, bounds, a typed handler)
//! driven as a trainer drives it, with arbitrary replies. The first byte
//! picks the task and the reset seed; the rest is replies separated by
//! `\x01`, each taken with `step` or, after a `\x02` prefix, `step_cut`
//! (a reply a length limit cut off).
//!
//! Contracts: nothing panics; while the episode runs each prompt starts
//! with the previous one, then the reply as written (its end token
//! stripped), then the end-of-turn token (what the rollout engine relies
//! on); a step is done exactly when it is terminated or truncated (never
//! both) and says why; rewards are finite; every tool message the model
//! reads back is a JSON object; a step after the end changes nothing.
#![no_main]

#[path = "../../examples/bank/mod.rs"]
#[allow(dead_code)]
mod bank;

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use toolgym_env::env::{EndReason, EnvFactory};
use toolgym_env::{MultiTurnSpec, ToolEnv};

fn spec() -> &'static MultiTurnSpec<bank::Bank> {
    static SPEC: OnceLock<MultiTurnSpec<bank::Bank>> = OnceLock::new();
    SPEC.get_or_init(|| bank::spec(0))
}

fn strip_end_token(reply: &str) -> &str {
    toolgym_reward::END_TOKENS
        .iter()
        .find_map(|t| reply.strip_suffix(t))
        .unwrap_or(reply)
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let spec = spec();
    let task = Arc::new(bank::task(0, u64::from(head & 7)));
    let mut env = spec.make(task);
    let end_of_turn = spec.template.end_of_turn().to_string();
    let mut prompt = env.reset(Some(u64::from(head >> 3))).prompt;
    let mut seen = 0;
    for piece in text.split('\u{1}') {
        let (cut, reply) = match piece.strip_prefix('\u{2}') {
            Some(r) => (true, r),
            None => (false, piece),
        };
        let step = if cut {
            env.step_cut(reply)
        } else {
            env.step(reply)
        };
        assert!(step.reward.is_finite(), "reward {}", step.reward);
        assert!(!(step.terminated && step.truncated));
        assert_eq!(step.done(), step.info.end.is_some(), "{:?}", step.info.end);
        for m in &step.observation.messages[seen.min(step.observation.messages.len())..] {
            if m.role == toolgym_env::Role::Tool {
                let v: serde_json::Value = serde_json::from_str(&m.content)
                    .unwrap_or_else(|e| panic!("tool message not JSON ({e}): {}", m.content));
                assert!(v.is_object(), "{}", m.content);
            }
        }
        seen = step.observation.messages.len();
        if step.done() {
            let again = env.step("<think>x</think>\nmore");
            assert_eq!(again.info.end, Some(EndReason::AlreadyOver));
            assert_eq!(again.reward, 0.0);
            assert_eq!(again.observation.prompt, step.observation.prompt);
            return;
        }
        let expected = format!("{prompt}{}{end_of_turn}", strip_end_token(reply));
        assert!(
            step.observation.prompt.starts_with(&expected),
            "the prompt does not extend the last one with the reply:\nreply {reply:?}\nwant prefix {expected:?}\ngot {:?}",
            step.observation.prompt
        );
        prompt = step.observation.prompt;
    }
});
