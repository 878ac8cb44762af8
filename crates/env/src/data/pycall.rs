//! Tool calls written in Python call syntax, as ToolACE's assistant turns
//! are: `[get_weather(city="Paris", days=3), Get Stock Quote(symbols=['A', 'B'])]`.
//!
//! A thin adapter over the reward crate's parser ([`toolgym_reward::pycall`],
//! a real Python tokenizer and parser that never evaluates anything) with
//! the relaxations ToolACE needs ([`CallSyntax::dataset`]): tool names may
//! contain spaces, dashes, slashes (`Get Manager Placeholder Image(...)`),
//! parameter names dots, dashes or Python keywords (`from=...`), and
//! JSON's `true` / `false` / `null` are read as Python's constants.
//!
//! Values map to JSON as Python's `json.dumps` would: tuples and sets
//! become lists, dict keys become strings (`1` → `"1"`, `True` →
//! `"true"`, `None` → `"null"`), bytes become text (lossy UTF-8).
//! Integers beyond 64 bits are errors (serde_json would hold them as
//! floats, no longer the record's value: the step is dropped, not
//! changed, as xLAM's answers are), as are complex numbers, `...` and
//! infinite floats, names, expressions, nested calls, f-strings and
//! positional arguments.
//!
//! ```
//! use toolgym_env::data::pycall::parse_calls;
//! use serde_json::json;
//! let calls = parse_calls(r#"[get_weather(city="Paris, France", days=3), Search News(q='a [b]', tags=("x",), opts={'n': None})]"#).unwrap();
//! assert_eq!(calls[0].name, "get_weather");
//! assert_eq!(calls[0].arguments["city"], "Paris, France");
//! assert_eq!(calls[1].name, "Search News");
//! assert_eq!(calls[1].arguments["tags"], json!(["x"]));
//! assert_eq!(calls[1].arguments["opts"], json!({"n": null}));
//! assert!(parse_calls("[f(x=__import__('os'))]").is_err());
//! ```

use serde_json::Value;
use toolgym_reward::pycall::{self, CallSyntax, NotJson, PyCall, PyVal};
use toolgym_reward::Call;

pub use toolgym_reward::pycall::{PyCallError, PyCallErrorKind};

/// Parses a list of calls: `[f(a=1), g()]`, calls without the brackets
/// (`f(a=1), g()`), or one call. An empty list `[]` gives no calls.
/// Offsets in errors are byte offsets into `text`.
pub fn parse_calls(text: &str) -> Result<Vec<Call>, PyCallError> {
    pycall::parse_calls_with(text, CallSyntax::dataset())?
        .iter()
        .map(to_call)
        .collect()
}

/// Parses one Python literal into JSON (with `true` / `false` / `null`
/// accepted).
///
/// ```
/// use toolgym_env::data::pycall::parse_literal;
/// use serde_json::json;
/// assert_eq!(parse_literal("{'a': (1, 2.5e3), 2: [True, null]}").unwrap(),
///            json!({"a": [1, 2500.0], "2": [true, null]}));
/// assert_eq!(parse_literal(r"'it\'s' ' ok'").unwrap(), json!("it's ok"));
/// assert!(parse_literal("1 + 2").is_err());
/// ```
pub fn parse_literal(text: &str) -> Result<Value, PyCallError> {
    let v = pycall::parse_literal_with(text, CallSyntax::dataset())?;
    let lead = text.len() - text.trim_start().len();
    json_of(&v).map_err(|m| not_json(m, lead))
}

fn not_json(message: String, offset: usize) -> PyCallError {
    PyCallError {
        kind: PyCallErrorKind::NotJson(message),
        offset,
    }
}

/// One parsed call as a [`Call`] (keyword arguments only), values as
/// [`json_of`] writes them.
fn to_call(c: &PyCall) -> Result<Call, PyCallError> {
    c.to_call_with(json_of)
}

/// A value as `json.dumps` writes it, with bytes as text; an integer
/// beyond 64 bits is an error.
fn json_of(v: &PyVal) -> Result<Value, String> {
    v.to_json_with(&|v| match v {
        PyVal::Int(i) if i64::try_from(*i).is_err() && u64::try_from(*i).is_err() => {
            Some(Err(NotJson(crate::data::wide_integer_drop(&i.to_string()))))
        }
        PyVal::Bytes(b) => Some(Ok(Value::String(String::from_utf8_lossy(b).into_owned()))),
        _ => None,
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(text: &str) -> Value {
        let mut calls = parse_calls(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(calls.len(), 1, "{text}");
        Value::Object(calls.remove(0).arguments)
    }

    #[test]
    fn toolace_names_and_constants() {
        let calls = parse_calls(
            "[Get Manager Placeholder Image(sport=\"football\"), GetCompetitions(), math.factorial(number=5)]",
        )
        .unwrap();
        assert_eq!(calls[0].name, "Get Manager Placeholder Image");
        assert_eq!(calls[1].name, "GetCompetitions");
        assert!(calls[1].arguments.is_empty());
        assert_eq!(calls[2].name, "math.factorial");
        assert_eq!(
            args("[get-stock/v2 quote(from='USD', start-date='2024', a.b=true, c=null, d=false)]"),
            json!({"from": "USD", "start-date": "2024", "a.b": true, "c": null, "d": false})
        );
        assert_eq!(parse_calls(" f(x=1) , g() ").unwrap().len(), 2);
        assert_eq!(parse_calls("[]").unwrap(), vec![]);
        // Quotes, brackets and commas inside values do not confuse names.
        assert_eq!(
            args(
                r#"[Company Search(query='fintech, "europe" (x=1)', filters={'region': 'Europe'}, tags=["ai", 'b2b'])]"#
            ),
            json!({"query": "fintech, \"europe\" (x=1)", "filters": {"region": "Europe"}, "tags": ["ai", "b2b"]})
        );
        assert_eq!(
            args(r"[Company Search(query='it\'s \u00e9t\u00e9', limit=None)]"),
            json!({"query": "it's été", "limit": null})
        );
    }

    #[test]
    fn values_as_json_dumps_writes_them() {
        assert_eq!(
            args("f(a={1: 'x', 2.5: 'y', False: 'z', None: 'w', True: 'v'}, b=(1, {2}), c=b'y', d=u'x')"),
            // `True == 1`: as in Python, the later key's value wins.
            json!({"a": {"1": "v", "2.5": "y", "false": "z", "null": "w"}, "b": [1, [2]], "c": "y", "d": "x"})
        );
        assert_eq!(args("f(a=-9223372036854775808)")["a"], json!(i64::MIN));
        assert_eq!(args("f(a=18446744073709551615)")["a"], json!(u64::MAX));
        // Past 64 bits: an error naming the integer, not a float.
        let e = parse_calls("[f(a=123456789012345678901234567890)]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("past 64 bits") && e.contains("123456789012345678901234567890"),
            "{e}"
        );
        assert!(parse_calls("[f(a=18446744073709551616)]").is_err());
    }

    #[test]
    fn errors() {
        for bad in [
            "[f(1)]",
            "[f(x)]",
            "[f(x=1, x=2)]",
            "[f(x=1)",
            "[f(x=1)] trailing",
            "[(x=1)]",
            "[f(x=g(y=1))]",
            "[f(x=1+2)]",
            "[f(x==1)]",
            "",
            "[f(x=os.system('ls'))]",
            "[getExchangeRate(base=CHF, target=USD)]",
            "f(a=1e999)",
            "f(a=1j)",
            "f(a=...)",
            "f(1x=2)",
        ] {
            assert!(parse_calls(bad).is_err(), "{bad}");
        }
        let text = "[f(a='ok'), Get Rate(b=[1, 2, oops])]";
        let e = parse_calls(text).unwrap_err();
        assert_eq!(&text[e.offset..e.offset + 4], "oops");
        let e = parse_literal("  [1, oops]").unwrap_err();
        assert_eq!(e.offset, 6, "{e}");
    }
}
