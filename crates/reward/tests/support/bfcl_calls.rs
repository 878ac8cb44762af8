//! BFCL `model_output`s written back as Tool-N1 call JSON, argument order
//! kept (it decides which error the checker reports first). Shared by the
//! reward crate's `bfcl_jsonl` test and the root `bfcl_eval` test through
//! `#[path]`.

use toolgym_reward::pycall::PyVal;

/// JSON text of a value, dict keys in their order.
pub fn json_text(v: &PyVal) -> String {
    match v {
        PyVal::None => "null".into(),
        PyVal::Bool(b) => b.to_string(),
        PyVal::Int(i) => i.to_string(),
        PyVal::Float(f) => serde_json::to_string(f).unwrap(),
        PyVal::Str(s) => serde_json::to_string(s).unwrap(),
        PyVal::List(items) | PyVal::Tuple(items) => {
            let items: Vec<String> = items.iter().map(json_text).collect();
            format!("[{}]", items.join(", "))
        }
        PyVal::Dict(entries) => {
            let items: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", json_text(k), json_text(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        other => panic!("not JSON: {other:?}"),
    }
}

/// `{"name": …, "arguments": {…}}` for each call of a BFCL `model_output`
/// (`[{func: {param: value}}]`), or `None` when Tool-N1's format cannot
/// express it (e.g. parameters that are not an object).
pub fn call_texts(model_output: &PyVal) -> Option<Vec<String>> {
    let PyVal::List(items) = model_output else {
        return None;
    };
    let mut calls = Vec::new();
    for c in items {
        let PyVal::Dict(entries) = c else { return None };
        let [(PyVal::Str(name), args @ PyVal::Dict(_))] = entries.as_slice() else {
            return None;
        };
        calls.push(format!(
            "{{\"name\": {}, \"arguments\": {}}}",
            serde_json::to_string(name).unwrap(),
            json_text(args)
        ));
    }
    Some(calls)
}
