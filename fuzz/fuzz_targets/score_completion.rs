//! Fuzzes the completion parser and every built-in rule.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run score_completion` (from the repo root).
//! The input's first line, when it is a JSON list of calls, is the ground
//! truth; the rest is the completion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgym_reward::{rule_by_name, Call, Completion, Reason, RULES};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (truth, completion) = match text.split_once('\n') {
        Some((first, rest)) => match Call::list_from_json(first) {
            Ok(calls) => (calls, rest),
            Err(_) => (Vec::new(), text),
        },
        None => (Vec::new(), text),
    };
    let parsed = Completion::parse(completion);
    let _ = parsed.first_error(true, false);
    for (name, _) in RULES {
        let rule = rule_by_name(name).expect("built-in rule");
        let v = rule.score(completion, &truth);
        assert!((0.0..=1.0 + 1e-12).contains(&v.reward), "{name}: {v:?}");
        assert_eq!(
            v.reward >= 1.0 - 1e-12,
            v.reason == Reason::Ok,
            "{name}: {v:?}"
        );
        assert_eq!(
            &v,
            &rule.score(completion, &truth),
            "{name} not deterministic"
        );
    }
});
