//! Fuzzes ACEBench's decoder and checker: the first line of the input is a
//! case (`{"function", "ground_truth"}` JSON, key order kept) or empty for a
//! built-in one, the rest the model's reply; judged as a normal category
//! (all of them share one code path) and as each special one.
//! Contract: judging never panics and is deterministic; a decode error's
//! offset lies inside the whitespace-free text; a reply the official
//! decoder reads is a list of one-entry dicts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgym_reward::acebench::{decode, judge, squeeze_whitespace, AceCategory, AceDecoder};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson;

const BUILT_IN: &str = r#"{"function": [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "object"}}, "c": {"type": "integer"}, "d": {"type": "object"}}, "required": ["a"]}}], "ground_truth": {"f": {"a": "x y", "b": [{"k": "v"}], "c": 1, "d": {"e": [1, "z"]}}}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (head, reply) = text.split_once('\n').unwrap_or(("", text));
    let case = if head.trim().is_empty() {
        BUILT_IN
    } else {
        head
    };
    let Ok(case) = pyjson::loads(case) else {
        return;
    };
    let case = PyVal::from_pyjson(&case);
    let functions = case.dict_get("function").cloned().unwrap_or(PyVal::None);
    let answer = case
        .dict_get("ground_truth")
        .cloned()
        .unwrap_or(PyVal::None);
    match decode(reply) {
        Ok(PyVal::List(calls)) => {
            for c in &calls {
                assert!(matches!(c, PyVal::Dict(e) if e.len() == 1), "{c:?}");
            }
        }
        Ok(other) => panic!("not a list: {other:?}"),
        Err(e) => {
            if let Some(offset) = e.offset {
                assert!(offset <= squeeze_whitespace(reply).len(), "{e:?}");
            }
        }
    }
    for category in [
        AceCategory::ParallelFunction,
        AceCategory::Incomplete,
        AceCategory::ErrorParam,
        AceCategory::Irrelevant,
    ] {
        for decoder in [AceDecoder::Official, AceDecoder::ToolN1] {
            let first = judge(category, &functions, &answer, reply, decoder);
            let again = judge(category, &functions, &answer, reply, decoder);
            assert_eq!(first, again);
        }
    }
});
