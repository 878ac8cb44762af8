//! JSON text as Python's `json.dumps` writes it.
//!
//! The Tool-N1 scripts build prompts with `json.dumps(...)`, whose output
//! differs from `serde_json::to_string`: items are separated by `", "` and
//! keys by `": "`, floats are written as Python's `repr` (`1e-05`, `1e+16`,
//! `3.0`), and by default every non-ASCII character is escaped as `\uXXXX`.
//! [`dumps`] reproduces that so rendered prompts match the released pipeline.
//!
//! Object keys come out in the order they were written in (this workspace
//! turns on `serde_json`'s `preserve_order`), as a Python dict built by
//! `json.loads` keeps them: a tool's parameters read from a dataset are
//! written back in the dataset's order.

use serde_json::Value;
use std::fmt::Write as _;

/// Writes `value` like Python's `json.dumps(value, ensure_ascii=ensure_ascii)`.
///
/// ```
/// use serde_json::json;
/// let v = json!({"b": [1, 2.5, 1e-5], "a": "é"});
/// assert_eq!(toolgym_env::json::dumps(&v, true), r#"{"b": [1, 2.5, 1e-05], "a": "\u00e9"}"#);
/// assert_eq!(toolgym_env::json::dumps(&v, false), r#"{"b": [1, 2.5, 1e-05], "a": "é"}"#);
/// ```
pub fn dumps(value: &Value, ensure_ascii: bool) -> String {
    let mut out = String::new();
    write_value(&mut out, value, ensure_ascii);
    out
}

fn write_value(out: &mut String, value: &Value, ascii: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&py_float_repr(n.as_f64().unwrap_or(0.0)));
            } else {
                let _ = write!(out, "{n}");
            }
        }
        Value::String(s) => write_string(out, s, ascii),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item, ascii);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k, ascii);
                out.push_str(": ");
                write_value(out, v, ascii);
            }
            out.push('}');
        }
    }
}

/// Writes a JSON string literal with Python's escaping rules.
pub fn write_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !(' '..='~').contains(&c) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Python's `json.dumps` writes it: `repr` for finite values
/// (shortest round-tripping digits, positional when the decimal exponent is
/// in `-4..16`, otherwise scientific with a signed, at least two-digit
/// exponent; [`toolgym_reward::pycall::float_repr`] is the one
/// implementation), `NaN` / `Infinity` / `-Infinity` otherwise.
///
/// ```
/// use toolgym_env::json::py_float_repr;
/// assert_eq!(py_float_repr(3.0), "3.0");
/// assert_eq!(py_float_repr(0.0001), "0.0001");
/// assert_eq!(py_float_repr(0.00001), "1e-05");
/// assert_eq!(py_float_repr(1e16), "1e+16");
/// assert_eq!(py_float_repr(123456789012345.6), "123456789012345.6");
/// assert_eq!(py_float_repr(-2.5e-7), "-2.5e-07");
/// ```
pub fn py_float_repr(x: f64) -> String {
    if !x.is_finite() {
        // Not representable in serde_json values; Python writes these words.
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    toolgym_reward::pycall::float_repr(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_like_python() {
        for (x, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1.2345e16, "1.2345e+16"),
            (1e100, "1e+100"),
            (0.1, "0.1"),
            (5e-324, "5e-324"),
            (0.000123, "0.000123"),
        ] {
            assert_eq!(py_float_repr(x), want, "{x}");
        }
    }

    #[test]
    fn escapes_like_python() {
        let v = json!("a\"b\\c\nd\u{1}\u{7f}😀");
        assert_eq!(dumps(&v, true), r#""a\"b\\c\nd\u0001\u007f\ud83d\ude00""#);
        assert_eq!(dumps(&v, false), "\"a\\\"b\\\\c\\nd\\u0001\u{7f}😀\"");
    }

    #[test]
    fn separators() {
        let v = json!([{"name": "f", "arguments": {}}, null, true]);
        assert_eq!(
            dumps(&v, true),
            r#"[{"name": "f", "arguments": {}}, null, true]"#
        );
    }

    #[test]
    fn keys_keep_the_order_they_were_read_in() {
        let v: Value =
            serde_json::from_str(r#"{"z": 1, "a": {"y": 2, "b": 3}, "m": null}"#).unwrap();
        assert_eq!(
            dumps(&v, true),
            r#"{"z": 1, "a": {"y": 2, "b": 3}, "m": null}"#
        );
    }
}
