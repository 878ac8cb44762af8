//! From model text to BFCL's `model_output` form
//! (`[{func_name: {param: value}}, ...]` as a [`PyVal`] list).
//!
//! - [`decode_python_prompt`]: BFCL's prompt-mode decoder
//!   (`default_decode_ast_prompting` → `ast_parse` → `resolve_ast_call` /
//!   `resolve_ast_by_type` in `bfcl_eval/model_handler/utils.py`), quirks
//!   included, on the [`crate::pycall`] parser (nothing is evaluated except
//!   constant arithmetic, see below).
//! - [`decode_tool_n1`]: our Tool-N1 completion format
//!   (`<tool_call>[{"name", "arguments"}]</tool_call>`) through
//!   [`Completion::parse`](crate::Completion::parse), argument key order
//!   kept.

use super::pyeval;
use crate::parse::{Completion, Diagnostic, Severity};
use crate::pycall::{
    parse_expression, DictBuilder, Expr, ExprKind, PyCallError, PyCallErrorKind, PyVal,
};
use crate::pyjson;

/// Decoding failed: what the official decoder would raise (the Python
/// exception class, e.g. `SyntaxError`, `AssertionError`, `TypeError`),
/// and a message. Errors of constructs the official decoder accepts but
/// this one does not (see [`decode_python_prompt`]) have the class
/// `Unsupported`; Tool-N1 format errors have `JSONDecodeError` /
/// `ValueError`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// The Python exception class the official decoder raises.
    pub exception: String,
    /// What went wrong.
    pub message: String,
    /// Byte offset into the decoded text, when known.
    pub offset: Option<usize>,
    /// The official decoder reads this construct where this one stops
    /// (see [`DecodeError::official_decoder_reads`]).
    official_reads: bool,
}

impl DecodeError {
    pub(crate) fn new(exception: &str, message: impl Into<String>) -> Self {
        Self {
            exception: exception.to_string(),
            message: message.into(),
            offset: None,
            official_reads: false,
        }
    }

    /// Class `Unsupported`: a construct the official decoder may read
    /// (or may raise on: arithmetic on names and calls, which it `eval`s).
    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        Self::new("Unsupported", what)
    }

    /// Class `Unsupported`, for a value the official decoder reads where
    /// this one stops (integers past 128 bits, `%` formatting, large
    /// repetitions, complex or set arithmetic, the source text of a
    /// nested call this one cannot write back).
    pub(crate) fn official_reads(what: impl Into<String>) -> Self {
        Self {
            official_reads: true,
            ..Self::unsupported(what)
        }
    }

    /// Whether the official decoder reads the whole reply where this one
    /// stopped, so that it finds the calls this one could not finish: the
    /// only failures were values it reads (the decoder carries on past
    /// them and reports one only when nothing else in the reply fails, as
    /// the official decoder would then raise that instead).
    pub fn official_decoder_reads(&self) -> bool {
        self.official_reads
    }

    /// Whether this decoder stopped at a construct the official one
    /// evaluates, or tries to with Python's `eval` (class `Unsupported`,
    /// [`DecodeError::official_decoder_reads`] included): the official
    /// verdict on the reply may differ.
    pub fn is_unsupported(&self) -> bool {
        self.exception == "Unsupported"
    }
}

/// The note an evaluation report adds when `replies` of its replies hit
/// [`DecodeError::is_unsupported`] (BFCL's and ACEBench's reports).
pub fn decoder_gap_note(replies: usize) -> String {
    let which = match replies {
        1 => "1 reply holds".to_string(),
        n => format!("{n} replies hold"),
    };
    format!(
        "note: {which} a construct the official decoder evaluates and this port's does not (a \
         call, subscript or attribute inside arithmetic, % formatting, an integer past 128 \
         bits): judged as a decoding failure here, possibly otherwise by the official \
         evaluation (decoder_gap in the verdicts)"
    )
}

/// Which decoder turns a completion into `model_output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Decoder {
    /// Tool-N1 `<tool_call>` blocks holding JSON lists of
    /// `{"name", "arguments"}` ([`decode_tool_n1`]).
    #[default]
    ToolN1,
    /// BFCL prompt mode, Python call syntax, the whole text
    /// ([`decode_python_prompt`]).
    Python,
    /// BFCL prompt mode on the text after the last `</think>` (what the
    /// official Qwen3 prompt handler does before decoding).
    PythonAfterThink,
}

/// Decodes `text` with `decoder`.
pub fn decode(text: &str, decoder: Decoder) -> Result<PyVal, DecodeError> {
    match decoder {
        Decoder::ToolN1 => decode_tool_n1(text),
        Decoder::Python => decode_python_prompt(text),
        Decoder::PythonAfterThink => {
            let rest = text.rfind("</think>").map_or(text, |i| &text[i + 8..]);
            decode_python_prompt(rest)
        }
    }
}

/// BFCL's prompt-mode decoder (`default_decode_ast_prompting`, Python
/// return format), reproducing its quirks:
/// - the text is stripped of backticks, newlines and spaces at both ends
///   (not tabs), then wrapped in `[` `]` where missing (so a fence with a
///   language tag fails to parse);
/// - positional arguments are dropped; a repeated keyword keeps its first
///   position and last value; `**x` becomes the key `None`;
/// - a unary operator on a constant negates it, whatever the operator
///   (`+3` → -3, `not True` → -1, `~1` → -1);
/// - names become strings (`x=y` → `"y"`), a call without keywords its
///   source text (`float('nan')`), a call with keywords a nested
///   `{name: {...}}`, a subscript its source text, `...` the string
///   `"..."`; tuples stay tuples;
/// - binary operations are evaluated (`2*3` → 6, `'a'+'b'` → `"ab"`,
///   `1/0` → `ZeroDivisionError`);
/// - sets, attributes, comparisons, conditionals, boolean operators,
///   comprehensions, f-strings, lambdas fail as the official one does.
///
/// Differences (class `Unsupported` where the official decoder succeeds):
/// arithmetic involving calls, subscripts, attributes, comparisons or
/// complex numbers (Python would evaluate them), integers beyond 128 bits,
/// keyword-less nested calls or subscripts containing lambdas /
/// comprehensions / f-strings (Python returns their source text), and the
/// few syntax limits of [`crate::pycall`].
///
/// ```
/// use toolgym_reward::bfcl::decode_python_prompt;
/// use toolgym_reward::pycall::PyVal;
/// let out = decode_python_prompt("```\n[math.factorial(number=+5, x=y)]\n```").unwrap();
/// assert_eq!(out.repr(), "[{'math.factorial': {'number': -5, 'x': 'y'}}]");
/// let err = decode_python_prompt("I cannot help with that.").unwrap_err();
/// assert_eq!(err.exception, "SyntaxError");
/// ```
pub fn decode_python_prompt(text: &str) -> Result<PyVal, DecodeError> {
    let reply = pyeval::ReplyBudget::open();
    reply.finish(python_prompt_calls(text))
}

/// [`decode_python_prompt`] within its reply's budget.
fn python_prompt_calls(text: &str) -> Result<PyVal, DecodeError> {
    let stripped_front = text.trim_start_matches(['`', '\n', ' ']);
    let lead = text.len() - stripped_front.len();
    let t = stripped_front.trim_end_matches(['`', '\n', ' ']);
    let prefix = usize::from(!t.starts_with('['));
    let mut src = String::with_capacity(t.len() + 2);
    if prefix == 1 {
        src.push('[');
    }
    src.push_str(t);
    if !t.ends_with(']') {
        src.push(']');
    }
    let expr = parse_expression(&src).map_err(|e| {
        let offset = (e.offset + lead).saturating_sub(prefix).min(text.len());
        parse_failure(e, offset)
    })?;
    let calls = match &expr.kind {
        ExprKind::Call { .. } => vec![resolve_call(&expr, Dialect::Bfcl)?],
        ExprKind::List(elts) | ExprKind::Tuple(elts) | ExprKind::Set(elts) => {
            let mut out = Vec::with_capacity(elts.len());
            for e in elts {
                if !matches!(e.kind, ExprKind::Call { .. }) {
                    return Err(DecodeError::new("AssertionError", ""));
                }
                out.push(resolve_call(e, Dialect::Bfcl)?);
            }
            out
        }
        other => {
            return Err(DecodeError::new(
                "AttributeError",
                format!("'{}' object has no attribute 'elts'", other.ast_class()),
            ))
        }
    };
    Ok(PyVal::List(calls))
}

/// What `ast.parse` raises for `e`, at byte `offset` of the decoded text.
pub(crate) fn parse_failure(e: PyCallError, offset: usize) -> DecodeError {
    let exception = e.python_exception().unwrap_or("Unsupported");
    let message = match e.kind {
        PyCallErrorKind::Syntax(m) => m,
        other => other.to_string(),
    };
    DecodeError {
        offset: Some(offset),
        ..DecodeError::new(exception, message)
    }
}

/// Whose `resolve_ast_by_type` to follow. BFCL's and ACEBench's copies
/// differ in one place: a keyword-less call used as a value is its source
/// text in BFCL (`float('nan')`) and `{name: {}}` in ACEBench.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `bfcl_eval/model_handler/utils.py`.
    Bfcl,
    /// ACEBench's `model_inference/utils.py`.
    AceBench,
}

/// `resolve_ast_call`: `{dotted.name: {keyword: value}}`.
pub(crate) fn resolve_call(e: &Expr, dialect: Dialect) -> Result<PyVal, DecodeError> {
    let ExprKind::Call { func, keywords, .. } = &e.kind else {
        return Err(DecodeError::new("AssertionError", ""));
    };
    let mut parts = Vec::new();
    let mut f: &Expr = func;
    while let ExprKind::Attribute(value, attr) = &f.kind {
        parts.push(attr.as_str());
        f = value;
    }
    if let ExprKind::Name(n) = &f.kind {
        parts.push(n.as_str());
    }
    parts.reverse();
    let mut args = DictBuilder::default();
    for k in keywords {
        let v = resolve_value(&k.value, dialect)?;
        let key = k.name.clone().map_or(PyVal::None, PyVal::Str);
        args.insert(key, v);
    }
    Ok(PyVal::Dict(vec![(
        PyVal::Str(parts.join(".")),
        args.into_dict(),
    )]))
}

fn unsupported_ast(class: &str) -> DecodeError {
    DecodeError::new(
        "Exception",
        format!("Unsupported AST type: <class 'ast.{class}'>"),
    )
}

/// The source text of `e`; a construct [`Expr::unparse`] cannot write
/// back is one the official decoder writes (`ast.unparse`).
fn unparse(e: &Expr) -> Result<String, DecodeError> {
    e.unparse()
        .map_err(|err| DecodeError::official_reads(err.kind.to_string()))
}

/// `resolve_ast_by_type`.
fn resolve_value(e: &Expr, dialect: Dialect) -> Result<PyVal, DecodeError> {
    let resolve = |x: &Expr| resolve_value(x, dialect);
    Ok(match &e.kind {
        ExprKind::Const {
            value: PyVal::Ellipsis,
            ..
        } => PyVal::Str("...".into()),
        ExprKind::Const { value, .. } => value.clone(),
        ExprKind::Unary(_, operand) => match &operand.kind {
            // `-operand.value`, whatever the operator.
            ExprKind::Const { value, .. } => match value {
                PyVal::Int(i) => PyVal::Int(-*i),
                PyVal::Bool(b) => PyVal::Int(-i128::from(*b)),
                PyVal::Float(f) => PyVal::Float(-*f),
                PyVal::Complex(r, i) => PyVal::Complex(-*r, -*i),
                other => {
                    return Err(DecodeError::new(
                        "TypeError",
                        format!("bad operand type for unary -: '{}'", other.py_type().name()),
                    ))
                }
            },
            // These nodes have a `.value` that is itself a node.
            ExprKind::Attribute(..)
            | ExprKind::Subscript(..)
            | ExprKind::Starred(_)
            | ExprKind::Unsupported("NamedExpr") => {
                return Err(DecodeError::new(
                    "TypeError",
                    format!(
                        "bad operand type for unary -: '{}'",
                        operand.kind.ast_class()
                    ),
                ))
            }
            other => {
                return Err(DecodeError::new(
                    "AttributeError",
                    format!("'{}' object has no attribute 'value'", other.ast_class()),
                ))
            }
        },
        ExprKind::List(items) => PyVal::List(items.iter().map(resolve).collect::<Result<_, _>>()?),
        ExprKind::Tuple(items) => {
            PyVal::Tuple(items.iter().map(resolve).collect::<Result<_, _>>()?)
        }
        ExprKind::Dict(items) => {
            let mut d = DictBuilder::default();
            for (k, v) in items {
                let Some(k) = k else {
                    return Err(DecodeError::new(
                        "Exception",
                        "Unsupported AST type: <class 'NoneType'>",
                    ));
                };
                let key = resolve(k)?;
                let val = resolve(v)?;
                let type_name = key.py_type().name();
                if !d.insert(key, val) {
                    return Err(DecodeError::new(
                        "TypeError",
                        format!("unhashable type: '{type_name}'"),
                    ));
                }
            }
            d.into_dict()
        }
        ExprKind::Binary(..) => pyeval::defer(pyeval::eval(e))?,
        ExprKind::Name(n) => PyVal::Str(n.clone()),
        ExprKind::Call { keywords, .. } => {
            if keywords.is_empty() && dialect == Dialect::Bfcl {
                pyeval::defer(unparse(e).map(PyVal::Str))?
            } else {
                resolve_call(e, dialect)?
            }
        }
        ExprKind::Lambda(body) => {
            return Err(DecodeError::new(
                "TypeError",
                format!("'{}' object is not subscriptable", body.kind.ast_class()),
            ))
        }
        ExprKind::Subscript(value, index) => pyeval::defer(
            unparse(value).and_then(|v| Ok(PyVal::Str(format!("{v}[{}]", unparse(index)?)))),
        )?,
        other => return Err(unsupported_ast(other.ast_class())),
    })
}

fn fatal(d: &Diagnostic) -> bool {
    matches!(d.severity(), Severity::Json | Severity::Shape)
        || matches!(d, Diagnostic::UnterminatedToolCall { .. })
        || matches!(d, Diagnostic::NestedTag { tag, .. } if *tag == crate::TOOL_CALL_OPEN)
        || matches!(d, Diagnostic::StrayClosingTag { tag, .. } if *tag == crate::TOOL_CALL_CLOSE)
}

/// Our Tool-N1 format → `model_output`: every complete `<tool_call>` block
/// is read by [`Completion::parse`](crate::Completion::parse) (a JSON list of
/// `{"name", "arguments"}`, one object, or either encoded as a JSON
/// string; `arguments` may be a JSON-encoded object), and each call
/// becomes `{name: arguments}`. No block → `[]` (no call). Broken JSON, a
/// bad call shape, or an unterminated / nested / stray `<tool_call>` tag
/// is a decode failure. The `<think>` block and text around the blocks
/// are not looked at (BFCL grades calls only). Argument key order is the
/// model's (it decides which error the official checker reports first).
///
/// ```
/// use toolgym_reward::bfcl::decode_tool_n1;
/// let text = "<think>ok</think>\n<tool_call>[{\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": [2]}}]</tool_call>";
/// assert_eq!(decode_tool_n1(text).unwrap().repr(), "[{'f': {'b': 1, 'a': [2]}}]");
/// assert!(decode_tool_n1("<tool_call>[{\"name\": \"f\"</tool_call>").is_err());
/// // Python's values: `-0` and integers past 64 bits are `int`s.
/// let big = "<tool_call>[{\"name\": \"f\", \"arguments\": {\"n\": -0, \"m\": [18446744073709551616]}}]</tool_call>";
/// assert_eq!(decode_tool_n1(big).unwrap().repr(), "[{'f': {'n': 0, 'm': [18446744073709551616]}}]");
/// ```
pub fn decode_tool_n1(text: &str) -> Result<PyVal, DecodeError> {
    let c = Completion::parse(text);
    if let Some(d) = c.diagnostics.iter().find(|d| fatal(d)) {
        let exception = if d.severity() == Severity::Json {
            "JSONDecodeError"
        } else {
            "ValueError"
        };
        return Err(DecodeError::new(exception, d.to_string()));
    }
    let calls = c.calls.unwrap_or_default();
    let from_serde: Vec<(String, PyVal)> = calls
        .iter()
        .map(|call| {
            let args = PyVal::Dict(
                call.arguments
                    .iter()
                    .map(|(k, v)| (PyVal::Str(k.clone()), PyVal::from_json(v)))
                    .collect(),
            );
            (call.name.clone(), args)
        })
        .collect();
    let pairs = match python_calls(&c.tool_call_blocks) {
        Some(python)
            if python.len() == from_serde.len()
                && python
                    .iter()
                    .zip(&from_serde)
                    .all(|(a, b)| a.0 == b.0 && a.1.py_eq(&b.1)) =>
        {
            python
        }
        _ => from_serde,
    };
    Ok(PyVal::List(
        pairs
            .into_iter()
            .map(|(name, args)| PyVal::Dict(vec![(PyVal::Str(name), args)]))
            .collect(),
    ))
}

/// The calls of the blocks re-read with [`pyjson`]: Python's own values,
/// where serde_json reads `-0` and integers past 64 bits as floats (an
/// `int` parameter's type check then fails where Python's passes); `None`
/// if anything does not have the expected shape.
fn python_calls(blocks: &[&str]) -> Option<Vec<(String, PyVal)>> {
    fn call(item: &pyjson::PyValue<'_>) -> Option<(String, PyVal)> {
        let name = match item.get("name")? {
            pyjson::PyValue::Str(s) => String::from_utf8(s.0.to_vec()).ok()?,
            _ => return None,
        };
        let args = match item.get("arguments")? {
            d @ pyjson::PyValue::Dict(_) => PyVal::from_pyjson(d),
            pyjson::PyValue::Str(s) => {
                let inner = String::from_utf8(s.0.to_vec()).ok()?;
                let v = pyjson::loads(inner.trim()).ok()?;
                match v {
                    d @ pyjson::PyValue::Dict(_) => PyVal::from_pyjson(&d),
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some((name, args))
    }
    fn block(v: &pyjson::PyValue<'_>, out: &mut Vec<(String, PyVal)>) -> Option<()> {
        match v {
            pyjson::PyValue::List(items) => {
                for i in items {
                    out.push(call(i)?);
                }
            }
            d @ pyjson::PyValue::Dict(_) => out.push(call(d)?),
            _ => return None,
        }
        Some(())
    }
    let mut out = Vec::new();
    for payload in blocks {
        let v = pyjson::loads(payload.trim()).ok()?;
        if let pyjson::PyValue::Str(s) = &v {
            let inner = String::from_utf8(s.0.to_vec()).ok()?;
            let v2 = pyjson::loads(inner.trim()).ok()?;
            block(&v2, &mut out)?;
        } else {
            block(&v, &mut out)?;
        }
    }
    Some(out)
}
