//! ACEBench's decoder: `normal_single_turn_eval` removes every whitespace
//! character from the model's text (`"".join(text.split())`), then
//! `decode_ast` → `ast_parse` reads it as a Python list of calls
//! (`model_inference/utils.py`).

use crate::bfcl::decode::{parse_failure, resolve_call, Dialect};
use crate::bfcl::DecodeError;
use crate::pycall::{parse_expression, ExprKind, PyVal};
use crate::pyjson::is_py_space;

/// `"".join(text.split())`: the text without any character that Python's
/// `str.isspace()` accepts. Strings inside the calls lose their spaces too
/// (`city='New York'` becomes `city='NewYork'`), which the string checks
/// then forgive because they compare standardised text.
pub fn squeeze_whitespace(text: &str) -> String {
    text.chars().filter(|c| !is_py_space(*c)).collect()
}

/// Decodes a completion the way ACEBench's evaluation does, giving
/// `[{name: {param: value}}, …]`:
/// - whitespace is removed everywhere first ([`squeeze_whitespace`]), so
///   `not True` becomes the name `notTrue` and `lambda x: 1` a syntax error;
/// - the text must be a list, tuple or set display (a bare call fails with
///   `AttributeError: 'Call' object has no attribute 'elts'`) whose items
///   are all calls (`AssertionError` otherwise);
/// - values follow `resolve_ast_by_type`: positional arguments dropped,
///   a unary operator on a constant negates it whatever it is (`+3` → -3),
///   names become strings, binary operations are evaluated, a nested call
///   becomes `{name: {...}}` (also without keywords), a subscript its source
///   text, `...` the string `"..."`, tuples stay tuples.
///
/// No fence or prose is stripped: ACEBench decodes the raw `result`.
///
/// ```
/// use toolgym_reward::acebench::decode;
/// let out = decode("[get_weather(city='New York', days=+3, unit=celsius)]").unwrap();
/// assert_eq!(out.repr(), "[{'get_weather': {'city': 'NewYork', 'days': -3, 'unit': 'celsius'}}]");
/// assert_eq!(decode("get_weather(city='Paris')").unwrap_err().exception, "AttributeError");
/// ```
pub fn decode(text: &str) -> Result<PyVal, DecodeError> {
    let reply = crate::bfcl::pyeval::ReplyBudget::open();
    reply.finish(calls(text))
}

/// [`decode`] within its reply's budget.
fn calls(text: &str) -> Result<PyVal, DecodeError> {
    let src = squeeze_whitespace(text);
    let expr = parse_expression(&src).map_err(|e| {
        let offset = e.offset.min(src.len());
        parse_failure(e, offset)
    })?;
    let items = match &expr.kind {
        ExprKind::List(elts) | ExprKind::Tuple(elts) | ExprKind::Set(elts) => elts,
        other => {
            return Err(DecodeError::new(
                "AttributeError",
                format!("'{}' object has no attribute 'elts'", other.ast_class()),
            ))
        }
    };
    let mut calls = Vec::with_capacity(items.len());
    for e in items {
        if !matches!(e.kind, ExprKind::Call { .. }) {
            return Err(DecodeError::new("AssertionError", ""));
        }
        calls.push(resolve_call(e, Dialect::AceBench)?);
    }
    Ok(PyVal::List(calls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywordless_nested_calls_are_empty_calls() {
        let out = decode("[f(a=g(), b=h(1), c=x[0])]").unwrap();
        assert_eq!(
            out.repr(),
            "[{'f': {'a': {'g': {}}, 'b': {'h': {}}, 'c': 'x[0]'}}]"
        );
    }

    #[test]
    fn whitespace_goes_before_parsing() {
        assert_eq!(
            decode("[f(a=not True)]").unwrap().repr(),
            "[{'f': {'a': 'notTrue'}}]"
        );
        assert_eq!(
            decode("[f(a=lambda x: 1)]").unwrap_err().exception,
            "SyntaxError"
        );
        assert_eq!(decode("  \n").unwrap_err().exception, "SyntaxError");
        assert_eq!(
            decode("[f(a=1), 2]").unwrap_err().exception,
            "AssertionError"
        );
    }
}
