//! Fuzzes the reading of a tool's parameter schema (every dialect: JSON
//! Schema, BFCL's, xLAM's per-parameter map, Python annotations), the
//! lenient reading of data and the strict one of hand-written tools, and
//! the registry that compiles the result and validates arguments with it.
//!
//! Contracts: nothing panics; the lenient reading is a fixed point (what
//! it writes reads back unchanged, leniently and strictly: nothing left to
//! drop); the strict reading, where it succeeds, equals the lenient one;
//! a registered tool validates arguments (here the schema itself and an
//! empty object) without panicking, deterministically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use toolgym_env::schema::{normalize_parameters, normalize_parameters_strict};
use toolgym_env::{ToolRegistry, ToolSpec};
use toolgym_reward::Call;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(lenient) = normalize_parameters(&params) else {
        assert!(normalize_parameters_strict(&params).is_err());
        return;
    };
    let again = normalize_parameters(&lenient.schema).expect("its own output reads");
    assert_eq!(again.schema, lenient.schema, "not a fixed point: {params}");
    let strict_again = normalize_parameters_strict(&lenient.schema)
        .unwrap_or_else(|e| panic!("{params}: its output is refused strictly: {e}"));
    assert_eq!(strict_again.schema, lenient.schema);
    if let Ok(strict) = normalize_parameters_strict(&params) {
        assert_eq!(strict.schema, lenient.schema, "{params}");
    }
    let tool = json!({"name": "f", "description": "", "parameters": params});
    let Ok(spec) = ToolSpec::from_json(&tool) else {
        return;
    };
    let mut reg: ToolRegistry = ToolRegistry::new();
    if reg.register_spec(spec).is_err() {
        return;
    }
    for args in [json!({}), params.clone()] {
        if let Ok(call) = Call::new("f", args) {
            let first = reg.validate(&call).is_ok();
            assert_eq!(reg.validate(&call).is_ok(), first);
        }
    }
});
