//! Fuzzes the fast readers of `toolgym score` against the general ones on
//! arbitrary bytes. Contracts: ground-truth keys read in one pass
//! (`CanonicalCalls`, from text and from inside a string literal) equal
//! the keys of the calls the general reader reads; `tool-n1` scoring a
//! JSONL input by keys (replies scored from their literals) writes the
//! same bytes as scoring it through `Call`s.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgym_reward::{jsonl, rule_by_name, Call, CanonicalCalls, RewardRule, Verdict};

/// The rule without its `as_tool_n1` hook: `score_jsonl` then reads
/// ground truths into `Call`s and scores the decoded replies.
struct CallsOnly(Box<dyn RewardRule>);

impl RewardRule for CallsOnly {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn score(&self, completion: &str, truth: &[Call]) -> Verdict {
        self.0.score(completion, truth)
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(keys) = CanonicalCalls::from_json(text) {
            let calls = Call::list_from_json(text).expect("the general reader reads it");
            assert_eq!(keys, CanonicalCalls::from_calls(&calls));
        }
        if let Some(body) = text.strip_prefix('"') {
            let mut keys = CanonicalCalls::default();
            if let Some(len) = keys.read_json_in_string(body) {
                let inner: String =
                    serde_json::from_str(&text[..1 + len]).expect("a JSON string literal");
                let calls =
                    Call::list_from_json(inner.trim()).expect("the general reader reads it");
                assert_eq!(keys, CanonicalCalls::from_calls(&calls));
            }
        }
    }
    let options = jsonl::JsonlOptions {
        chunk_lines: 3,
        parallel: false,
        ..Default::default()
    };
    for name in ["tool-n1", "tool-n1-fine-names"] {
        let (mut by_keys, mut by_calls) = (Vec::new(), Vec::new());
        let rule = rule_by_name(name).unwrap();
        jsonl::score_jsonl(&*rule, data, &mut by_keys, options).unwrap();
        let calls_only = CallsOnly(rule_by_name(name).unwrap());
        jsonl::score_jsonl(&calls_only, data, &mut by_calls, options).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&by_keys),
            String::from_utf8_lossy(&by_calls)
        );
    }
});
