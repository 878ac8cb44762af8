//! The ToolACE adapter over the reward crate's Python call-syntax parser
//! (`toolgym_env::data::pycall`): round trips of random values written in
//! random Python styles, free-form ToolACE names, and no panics on
//! arbitrary input.

use proptest::prelude::*;
use serde_json::{Map, Value};
use toolgym_env::data::pycall::{parse_calls, parse_literal};
use toolgym_reward::Call;

/// A JSON value that Python literals can express exactly.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "[ -~\\n\\té日😀]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_ ,:'\"]{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Writes a value as a Python literal, choosing among equivalent styles.
fn python(v: &Value, style: u64) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) if n.is_f64() => format!("{:?}", n.as_f64().unwrap()),
        Value::Number(n) => n.to_string(),
        Value::String(s) => python_str(s, style),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, x)| python(x, style.rotate_left(i as u32 + 1)))
                .collect();
            // A list, or a tuple (not for one element: `(x)` is not a tuple).
            if style % 3 == 1 && items.len() != 1 {
                format!("({})", parts.join(", "))
            } else if style % 5 == 2 && !items.is_empty() {
                format!("[{},]", parts.join(","))
            } else {
                format!("[{}]", parts.join(", "))
            }
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .enumerate()
                .map(|(i, (k, x))| {
                    format!(
                        "{}: {}",
                        python_str(k, style ^ i as u64),
                        python(x, style.rotate_left(3))
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn python_str(s: &str, style: u64) -> String {
    let quote = if style.is_multiple_of(2) { '\'' } else { '"' };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str(if style % 7 == 3 { "\\x09" } else { "\\t" }),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            'é' if style % 4 == 1 => out.push_str("\\u00e9"),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn literals_round_trip(v in value(), style in any::<u64>()) {
        let text = python(&v, style);
        let parsed = parse_literal(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed, v, "{}", text);
    }

    #[test]
    fn calls_round_trip(
        names in prop::collection::vec("[A-Za-z][A-Za-z0-9_. ]{0,10}[A-Za-z0-9]", 1..4),
        args in prop::collection::vec(prop::collection::btree_map("[a-z][a-z0-9_]{0,6}", value(), 0..4), 1..4),
        style in any::<u64>(),
    ) {
        let calls: Vec<Call> = names.iter().zip(&args).map(|(n, a)| Call {
            name: n.trim().to_string(),
            arguments: a.clone().into_iter().collect(),
        }).collect();
        let text = format!("[{}]", calls.iter().map(|c| {
            let a: Vec<String> = c.arguments.iter().map(|(k, v)| format!("{k}={}", python(v, style))).collect();
            format!("{}({})", c.name, a.join(", "))
        }).collect::<Vec<_>>().join(", "));
        let parsed = parse_calls(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(parsed, calls);
    }

    #[test]
    fn never_panics(s in "\\PC{0,80}") {
        let _ = parse_calls(&s);
        let _ = parse_literal(&s);
    }

    #[test]
    fn never_panics_on_near_misses(s in "[\\[\\]\\(\\)\\{\\}'\"\\\\a-z0-9=,.:_ \\-+eEx]{0,60}") {
        let _ = parse_calls(&s);
        let _ = parse_literal(&s);
    }
}

#[test]
fn error_offsets_point_at_the_problem() {
    let text = "[f(a='ok'), g(b=[1, 2, oops])]";
    let e = parse_calls(text).unwrap_err();
    assert_eq!(&text[e.offset..e.offset + 4], "oops");
    let e = parse_calls("[f(a='never closed)]").unwrap_err();
    assert_eq!(e.offset, 5);
    assert!(e.to_string().contains("unterminated string"), "{e}");
    // A free-form name does not shift offsets.
    let text = "[Get Stock Quote(symbol='A'), get-news(n=[1, oops])]";
    let e = parse_calls(text).unwrap_err();
    assert_eq!(&text[e.offset..e.offset + 4], "oops");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_literal(&deep).is_err());
    let dicts = format!("{}1{}", "{'a': ".repeat(50_000), "}".repeat(50_000));
    assert!(parse_literal(&dicts).is_err());
}
