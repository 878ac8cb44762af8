//! Fuzzes the Python call-syntax parser (BFCL model outputs, ToolACE
//! assistant turns). Contract: errors carry an offset inside the input; a
//! parsed literal's repr parses back to an equal value (literal → repr →
//! literal); the dataset layer's calls and JSON agree with the raw parse;
//! parsing is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgym_reward::pycall::{self, PyVal};

/// Whether `repr` of the value is a literal: CPython's reprs of `inf`,
/// `nan` and `Ellipsis` are names, not literals, so the round trip cannot
/// hold for them (it does not in CPython either).
fn has_literal_repr(v: &PyVal) -> bool {
    match v {
        PyVal::Float(f) => f.is_finite(),
        PyVal::Complex(re, im) => re.is_finite() && im.is_finite(),
        PyVal::Ellipsis => false,
        PyVal::List(items) | PyVal::Tuple(items) | PyVal::Set(items) => {
            items.iter().all(has_literal_repr)
        }
        PyVal::Dict(items) => items
            .iter()
            .all(|(k, v)| has_literal_repr(k) && has_literal_repr(v)),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match pycall::parse_expression(text) {
        Ok(_) => {}
        Err(e) => assert!(
            e.offset <= text.len(),
            "offset {} > {}",
            e.offset,
            text.len()
        ),
    }
    let calls = pycall::parse_calls(text);
    if let Err(e) = &calls {
        assert!(e.offset <= text.len(), "{e:?}");
    }
    assert_eq!(
        format!("{calls:?}"),
        format!("{:?}", pycall::parse_calls(text))
    );
    match pycall::parse_literal(text) {
        Ok(v) if has_literal_repr(&v) => {
            let repr = v.repr();
            let back = pycall::parse_literal(&repr)
                .unwrap_or_else(|e| panic!("repr {repr:?} of {text:?} does not parse: {e:?}"));
            assert!(back.py_eq(&v), "{text:?} -> {repr:?} -> {back:?}");
        }
        Ok(_) => {}
        Err(e) => assert!(e.offset <= text.len(), "{e:?}"),
    }
    if let Err(e) = toolgym_env::data::pycall::parse_calls(text) {
        assert!(e.offset <= text.len(), "{e:?}");
    }
    if let Err(e) = toolgym_env::data::pycall::parse_literal(text) {
        assert!(e.offset <= text.len(), "{e:?}");
    }
});
