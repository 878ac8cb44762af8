//! Python values as the official code holds them: the JSON of the sample
//! files and databases (read with Python's `json` semantics, object order
//! kept), dict operations with Python's key equality, `str()` rendering, and
//! the JSON form of values for tool results.

use serde_json::{Map, Value};
use toolgym_reward::pycall::{str_repr, PyVal};
use toolgym_reward::pyjson;

/// Parses JSON text as Python's `json.loads` does (dict order kept,
/// duplicate keys: last wins, `NaN`/`Infinity` accepted).
pub(crate) fn loads(text: &str) -> Result<PyVal, String> {
    pyjson::loads(text)
        .map(|v| PyVal::from_pyjson(&v))
        .map_err(|e| e.to_string())
}

/// [`loads`] for a whole file: an error names its line and column as
/// Python's `JSONDecodeError` does (`Expecting value: line 3 column 5
/// (char 40)`), and gives the line.
pub(crate) fn loads_file(text: &str) -> Result<PyVal, (String, Option<usize>)> {
    pyjson::loads(text)
        .map(|v| PyVal::from_pyjson(&v))
        .map_err(|e| match e {
            pyjson::PyJsonError::Decode { pos, msg } => {
                let mut at = pos.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let before = &text[..at];
                let line = before.matches('\n').count() + 1;
                let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                let column = before[line_start..].chars().count() + 1;
                let chars = before.chars().count();
                let message = format!(
                    "{}: {msg}: line {line} column {column} (char {chars})",
                    e.python_exception()
                );
                (message, Some(line))
            }
            other => (other.to_string(), None),
        })
}

/// `repr` of a string (for messages).
pub(crate) fn quoted(s: &str) -> String {
    str_repr(s)
}

/// `d[key]` for a string key (Python dict lookup; `None` when absent or
/// when `d` is not a dict).
pub(crate) fn get<'a>(d: &'a PyVal, key: &str) -> Option<&'a PyVal> {
    d.dict_get(key)
}

/// `d[key]` for writing.
pub(crate) fn get_key_mut<'a>(d: &'a mut PyVal, key: &PyVal) -> Option<&'a mut PyVal> {
    match d {
        PyVal::Dict(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.py_eq(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// `d[key] = value`: replaces in place (keeping the key's position) or
/// appends.
pub(crate) fn set_key(d: &mut PyVal, key: PyVal, value: PyVal) {
    if let PyVal::Dict(entries) = d {
        match entries.iter_mut().find(|(k, _)| k.py_eq(&key)) {
            Some(slot) => slot.1 = value,
            None => entries.push((key, value)),
        }
    }
}

/// `del d[key]` (no-op when absent).
pub(crate) fn del_key(d: &mut PyVal, key: &PyVal) {
    if let PyVal::Dict(entries) = d {
        if let Some(i) = entries.iter().position(|(k, _)| k.py_eq(key)) {
            entries.remove(i);
        }
    }
}

/// `len(d)` of a dict or list (0 otherwise).
pub(crate) fn len(d: &PyVal) -> usize {
    match d {
        PyVal::Dict(e) => e.len(),
        PyVal::List(e) => e.len(),
        _ => 0,
    }
}

/// The keys of a dict, cloned (for iterating while changing it).
pub(crate) fn keys(d: &PyVal) -> Vec<PyVal> {
    match d {
        PyVal::Dict(e) => e.iter().map(|(k, _)| k.clone()).collect(),
        _ => Vec::new(),
    }
}

/// A dict from string keys.
pub(crate) fn dict<const N: usize>(pairs: [(&str, PyVal); N]) -> PyVal {
    PyVal::Dict(
        pairs
            .into_iter()
            .map(|(k, v)| (PyVal::Str(k.to_string()), v))
            .collect(),
    )
}

/// A Python `str`.
pub(crate) fn s(text: &str) -> PyVal {
    PyVal::Str(text.to_string())
}

/// The value as JSON for a tool result: dict keys that are not strings are
/// written as `str()` of the key, non-finite floats as their Python text.
pub(crate) fn to_json(v: &PyVal) -> Value {
    match v {
        PyVal::None => Value::Null,
        PyVal::Bool(b) => Value::Bool(*b),
        PyVal::Int(i) => i64::try_from(*i)
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(i.to_string())),
        PyVal::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(v.py_str())),
        PyVal::Str(s) => Value::String(s.clone()),
        PyVal::List(items) | PyVal::Tuple(items) | PyVal::Set(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        PyVal::Dict(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(k.py_str(), to_json(v));
            }
            Value::Object(m)
        }
        other => Value::String(other.repr()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_dict_semantics() {
        let mut d = loads(r#"{"b": 1, "a": [1.0, "x"], "1": null}"#).unwrap();
        assert_eq!(d.py_str(), "{'b': 1, 'a': [1.0, 'x'], '1': None}");
        set_key(&mut d, PyVal::Int(1), s("int key"));
        set_key(&mut d, s("b"), PyVal::Bool(true));
        assert_eq!(
            d.py_str(),
            "{'b': True, 'a': [1.0, 'x'], '1': None, 1: 'int key'}"
        );
        del_key(&mut d, &s("a"));
        assert_eq!(len(&d), 3);
        assert!(d.dict_get_key(&PyVal::Float(1.0)).is_some());
        assert_eq!(to_json(&d)["1"], Value::String("int key".into()));
        assert_eq!((s("top")).py_str(), "top");
    }
}
