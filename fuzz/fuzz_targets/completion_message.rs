//! Fuzzes the reading of OpenAI-style assistant messages and transcripts
//! (`completion_text`). Contract: never a panic; a message whose
//! `tool_calls` are well formed (a string name, object arguments, given as
//! an object or as JSON text) and that has no content renders to text in
//! which `binary-no-think` finds exactly those calls; deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use toolgym_reward::{completion_text, rule_by_name, Call, Reason};

/// The calls of a message with no content, when every call is well formed.
fn calls_of(message: &Value) -> Option<Vec<Call>> {
    let m = message.as_object()?;
    if m.keys().any(|k| k != "role" && k != "tool_calls") {
        return None;
    }
    let mut out = Vec::new();
    for c in m.get("tool_calls")?.as_array()? {
        let body = c.get("function").unwrap_or(c);
        let name = body.get("name")?.as_str()?;
        let args = match body.get("arguments")? {
            Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
            v => v.clone(),
        };
        out.push(Call::new(name, args).ok()?);
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let text = completion_text(&value);
    assert_eq!(
        format!("{text:?}"),
        format!("{:?}", completion_text(&value))
    );
    let Ok(text) = text else {
        return;
    };
    let rule = rule_by_name("binary-no-think").unwrap();
    let v = rule.score(&text, &[]);
    assert!((0.0..=1.0).contains(&v.reward));
    if let Some(calls) = calls_of(&value).filter(|c| !c.is_empty()) {
        let v = rule.score(&text, &calls);
        assert_eq!(v.reason, Reason::Ok, "{text:?}: {v:?}");
    }
});
