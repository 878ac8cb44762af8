//! Fuzzes the fast readers of `toolgym score` against the general ones on
//! arbitrary bytes. Contracts: ground-truth keys read in one pass
//! (`CanonicalCalls`, from text and from inside a string literal) equal
//! the keys of the calls the general reader reads; `toolgym score`'s fast
//! paths (by keys for `tool-n1`, replies scored from their literals; the
//! plain record scanner with `Call`s for `binary`) write the same bytes
//! as the general reader alone, and `tool-n1` by keys the same as through
//! `Call`s.
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
                let calls = Call::list_from_json(&inner).expect("the general reader reads it");
                assert_eq!(keys, CanonicalCalls::from_calls(&calls));
            }
        }
    }
    let options = jsonl::JsonlOptions {
        chunk_lines: 3,
        parallel: false,
        ..Default::default()
    };
    for name in ["tool-n1", "tool-n1-fine-names", "binary"] {
        let rule = rule_by_name(name).unwrap();
        // The fast path: keys for the released script's rules, the plain
        // scanner with `Call`s for the others.
        let mut fast = Vec::new();
        jsonl::score_jsonl(&*rule, data, &mut fast, options).unwrap();
        let fast = String::from_utf8_lossy(&fast);
        // The general reader alone (a JSON tree per record).
        let mut general = Vec::new();
        jsonl::score_jsonl_with(&*rule, jsonl::call_truth, data, &mut general, options).unwrap();
        assert_eq!(
            fast,
            String::from_utf8_lossy(&general),
            "{name}: fast vs general"
        );
        if rule.as_tool_n1().is_some() {
            let mut by_calls = Vec::new();
            let calls_only = CallsOnly(rule_by_name(name).unwrap());
            jsonl::score_jsonl(&calls_only, data, &mut by_calls, options).unwrap();
            assert_eq!(
                fast,
                String::from_utf8_lossy(&by_calls),
                "{name}: keys vs calls"
            );
        }
    }
});
