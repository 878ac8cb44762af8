//! # Python call syntax, parsed (never evaluated)
//!
//! Models prompted in the BFCL / ToolACE style answer with Python call
//! syntax: `[get_weather(city="Paris", days=3), math.factorial(number=5)]`.
//! This module is a real tokenizer and recursive-descent parser for the
//! expression subset of Python 3.11 that such answers use, producing an
//! [`Expr`] tree with byte offsets. Nothing is ever evaluated.
//!
//! Two layers:
//! - [`parse_calls`] / [`parse_call`] / [`parse_literal`]: the strict,
//!   general API (used for ToolACE assistant turns). Argument values must
//!   be literals — strings (single, double, triple quotes, escapes,
//!   prefixes `r` `b` `u`), numbers (ints, floats, exponents, `0x` / `0o` /
//!   `0b`, underscores, imaginary), `True` / `False` / `None`, lists,
//!   tuples, dicts, sets, and a sign before a number. Keyword arguments
//!   and positional arguments are both reported ([`PyCall`]).
//! - [`parse_expression`]: the whole tree, for callers with their own
//!   rules (the BFCL-compatible decoder in [`crate::bfcl`] reproduces the
//!   official decoder's quirks on top of it).
//!
//! What is parsed: names, attribute chains, calls (positional, keyword,
//! `*args`, `**kwargs`), subscripts and slices, all literals and displays,
//! unary / binary / comparison / boolean operators with Python's
//! precedence, conditional expressions, implicit string concatenation,
//! comments, line continuations and newlines inside brackets. Lambdas,
//! comprehensions, generator expressions, f-strings, `:=` and `await` are
//! recognised and skipped as [`ExprKind::Unsupported`] / [`ExprKind::Lambda`]
//! nodes (f-string and lambda-parameter insides are not checked).
//! `yield` is an error here.
//!
//! Limits (documented differences from CPython):
//! - nesting deeper than [`MAX_DEPTH`] brackets or operators is an error
//!   (CPython's tokenizer stops at 200 brackets too), so no input can
//!   overflow the stack;
//! - integers must fit in `i128` ([`PyCallErrorKind::IntTooLarge`]);
//! - `\N{...}` escapes are unsupported (no Unicode name table);
//!   surrogates from `\uD800`-style escapes become U+FFFD (with
//!   [`CallSyntax::unicode_text`], a pair of such escapes in one literal is
//!   the character they encode and a lone one is an error);
//! - identifiers are Unicode letters, digits, `_` and common combining
//!   marks, without NFKC normalisation.
//!
//! Every function returns an error with a byte offset instead of panicking.
//!
//! ```
//! use toolgym_reward::pycall::{parse_calls, PyVal};
//! let calls = parse_calls("[get_weather(city='Paris', days=3), math.factorial(5)]").unwrap();
//! assert_eq!(calls[0].name, "get_weather");
//! assert_eq!(calls[0].args[1], ("days".to_string(), PyVal::Int(3)));
//! assert_eq!(calls[1].name, "math.factorial");
//! assert_eq!(calls[1].positional, vec![PyVal::Int(5)]);
//! assert!(parse_calls("[f(x=open('/etc/passwd'))]").is_err()); // not a literal
//! ```

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// Deepest nesting of brackets (and of operators inside one expression:
/// each link of an operator, call, subscript or attribute chain counts as
/// one level) the parser accepts. Python's parser stops at 200 nested
/// brackets too, but takes chains of up to about 3,000 links; longer ones
/// are refused here so that no input can overflow a thread's stack.
pub const MAX_DEPTH: usize = 200;

// ---------------------------------------------------------------------------
// values
// ---------------------------------------------------------------------------

/// A Python value built from literals: what a keyword argument holds.
///
/// Dicts keep their insertion order (and may have non-string keys); tuples
/// and sets are kept apart from lists. The derived `PartialEq` is
/// structural (`Int(1) != Float(1.0)`); use [`PyVal::py_eq`] for Python's
/// `==`.
#[derive(Clone, Debug, PartialEq)]
pub enum PyVal {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// `int` (limited to `i128`).
    Int(i128),
    /// `float`.
    Float(f64),
    /// `complex` (real, imaginary).
    Complex(f64, f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `list`.
    List(Vec<PyVal>),
    /// `tuple`.
    Tuple(Vec<PyVal>),
    /// `set` (no duplicates, in first-seen order).
    Set(Vec<PyVal>),
    /// `dict` (unique keys, in first-insertion order).
    Dict(Vec<(PyVal, PyVal)>),
    /// `...` (`Ellipsis`).
    Ellipsis,
}

/// Python's built-in types, as `type(x).__name__` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PyType {
    /// `NoneType`.
    NoneType,
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `float`.
    Float,
    /// `complex`.
    Complex,
    /// `str`.
    Str,
    /// `bytes`.
    Bytes,
    /// `list`.
    List,
    /// `tuple`.
    Tuple,
    /// `set`.
    Set,
    /// `dict`.
    Dict,
    /// `ellipsis`.
    Ellipsis,
}

impl PyType {
    /// The name Python prints (`type(x).__name__`).
    pub fn name(self) -> &'static str {
        match self {
            PyType::NoneType => "NoneType",
            PyType::Bool => "bool",
            PyType::Int => "int",
            PyType::Float => "float",
            PyType::Complex => "complex",
            PyType::Str => "str",
            PyType::Bytes => "bytes",
            PyType::List => "list",
            PyType::Tuple => "tuple",
            PyType::Set => "set",
            PyType::Dict => "dict",
            PyType::Ellipsis => "ellipsis",
        }
    }
}

/// A number, for Python's cross-type numeric equality.
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
    Complex(f64, f64),
}

/// `i == f` with Python's exact int/float comparison.
pub(crate) fn int_float_eq(i: i128, f: f64) -> bool {
    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0; // 2^127
    f.is_finite() && f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) && f as i128 == i
}

fn num_eq(a: Num, b: Num) -> bool {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x == y,
        (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => int_float_eq(i, f),
        (Num::Float(x), Num::Float(y)) => x == y,
        (Num::Complex(r1, i1), Num::Complex(r2, i2)) => r1 == r2 && i1 == i2,
        (Num::Complex(r, im), other) | (other, Num::Complex(r, im)) => {
            im == 0.0 && num_eq(Num::Float(r), other)
        }
    }
}

impl PyVal {
    /// `type(self)`.
    pub fn py_type(&self) -> PyType {
        match self {
            PyVal::None => PyType::NoneType,
            PyVal::Bool(_) => PyType::Bool,
            PyVal::Int(_) => PyType::Int,
            PyVal::Float(_) => PyType::Float,
            PyVal::Complex(..) => PyType::Complex,
            PyVal::Str(_) => PyType::Str,
            PyVal::Bytes(_) => PyType::Bytes,
            PyVal::List(_) => PyType::List,
            PyVal::Tuple(_) => PyType::Tuple,
            PyVal::Set(_) => PyType::Set,
            PyVal::Dict(_) => PyType::Dict,
            PyVal::Ellipsis => PyType::Ellipsis,
        }
    }

    /// The string inside a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyVal::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of string key `key` of a `Dict`.
    pub fn dict_get(&self, key: &str) -> Option<&PyVal> {
        match self {
            PyVal::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_num(&self) -> Option<Num> {
        match *self {
            PyVal::Bool(b) => Some(Num::Int(i128::from(b))),
            PyVal::Int(i) => Some(Num::Int(i)),
            PyVal::Float(f) => Some(Num::Float(f)),
            PyVal::Complex(r, i) => Some(Num::Complex(r, i)),
            _ => None,
        }
    }

    /// Python's `str(self)`: a `str` is itself, anything else its
    /// [`PyVal::repr`].
    pub fn py_str(&self) -> String {
        match self {
            PyVal::Str(s) => s.clone(),
            other => other.repr(),
        }
    }

    /// The value of key `key` of a `Dict`, keys compared with Python's `==`
    /// (what hashing and equality give for hashable keys).
    pub fn dict_get_key(&self, key: &PyVal) -> Option<&PyVal> {
        match self {
            PyVal::Dict(entries) => entries.iter().find(|(k, _)| k.py_eq(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Python's `self == other`: numbers compare by value across `bool`,
    /// `int`, `float` and `complex` (`True == 1 == 1.0`); a list never
    /// equals a tuple; dicts and sets ignore order; NaN equals nothing.
    pub fn py_eq(&self, other: &PyVal) -> bool {
        use PyVal as V;
        match (self, other) {
            (V::None, V::None) | (V::Ellipsis, V::Ellipsis) => true,
            (V::Str(a), V::Str(b)) => a == b,
            (V::Bytes(a), V::Bytes(b)) => a == b,
            (V::List(a), V::List(b)) | (V::Tuple(a), V::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y))
            }
            (V::Set(a), V::Set(b)) => {
                a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| x.py_eq(y)))
            }
            (V::Dict(a), V::Dict(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .find(|(k2, _)| k.py_eq(k2))
                            .is_some_and(|(_, v2)| v.py_eq(v2))
                    })
            }
            _ => match (self.as_num(), other.as_num()) {
                (Some(a), Some(b)) => num_eq(a, b),
                _ => false,
            },
        }
    }

    /// Python's `self in values` (`==` against each).
    pub fn py_in(&self, values: &[PyVal]) -> bool {
        values.iter().any(|v| self.py_eq(v))
    }

    /// Whether Python could hash it (use it as a dict key or set member).
    pub fn is_hashable(&self) -> bool {
        match self {
            PyVal::List(_) | PyVal::Set(_) | PyVal::Dict(_) => false,
            PyVal::Tuple(items) => items.iter().all(PyVal::is_hashable),
            _ => true,
        }
    }

    /// Python's `bool(self)`.
    pub fn truthy(&self) -> bool {
        match self {
            PyVal::None => false,
            PyVal::Bool(b) => *b,
            PyVal::Int(i) => *i != 0,
            PyVal::Float(f) => *f != 0.0,
            PyVal::Complex(r, i) => *r != 0.0 || *i != 0.0,
            PyVal::Str(s) => !s.is_empty(),
            PyVal::Bytes(b) => !b.is_empty(),
            PyVal::List(v) | PyVal::Tuple(v) | PyVal::Set(v) => !v.is_empty(),
            PyVal::Dict(d) => !d.is_empty(),
            PyVal::Ellipsis => true,
        }
    }

    /// Python's `repr(self)`. Printability of non-ASCII characters follows
    /// `str.isprintable` for the common cases (controls, format and
    /// separator characters are escaped).
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.repr_into(&mut out);
        out
    }

    fn repr_into(&self, out: &mut String) {
        match self {
            PyVal::None => out.push_str("None"),
            PyVal::Bool(true) => out.push_str("True"),
            PyVal::Bool(false) => out.push_str("False"),
            PyVal::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyVal::Float(f) => out.push_str(&float_repr(*f)),
            PyVal::Complex(r, i) => out.push_str(&complex_repr(*r, *i)),
            PyVal::Str(s) => str_repr_into(s, out),
            PyVal::Bytes(b) => bytes_repr_into(b, out),
            PyVal::List(items) => seq_repr(items, "[", "]", false, out),
            PyVal::Tuple(items) => seq_repr(items, "(", ")", items.len() == 1, out),
            PyVal::Set(items) if items.is_empty() => out.push_str("set()"),
            PyVal::Set(items) => seq_repr(items, "{", "}", false, out),
            PyVal::Dict(entries) => {
                out.push('{');
                for (n, (k, v)) in entries.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    k.repr_into(out);
                    out.push_str(": ");
                    v.repr_into(out);
                }
                out.push('}');
            }
            PyVal::Ellipsis => out.push_str("Ellipsis"),
        }
    }

    /// A JSON value: tuples and sets become arrays; dict keys that are
    /// `str`, `int`, `float`, `bool` or `None` become strings as
    /// `json.dumps` writes them; everything else (bytes, complex, `...`,
    /// non-finite floats, other keys) is an error.
    pub fn to_json(&self) -> Result<Value, NotJson> {
        self.to_json_with(&|_| None)
    }

    /// [`PyVal::to_json`] with a hook: `leaf` sees every value first (the
    /// containers' elements included) and may convert it itself, e.g. to
    /// accept bytes or big integers that `to_json` refuses; `None` falls
    /// back to the standard conversion.
    pub fn to_json_with(
        &self,
        leaf: &dyn Fn(&PyVal) -> Option<Result<Value, NotJson>>,
    ) -> Result<Value, NotJson> {
        if let Some(converted) = leaf(self) {
            return converted;
        }
        Ok(match self {
            PyVal::None => Value::Null,
            PyVal::Bool(b) => Value::Bool(*b),
            PyVal::Int(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    Value::from(v)
                } else if let Ok(v) = u64::try_from(*i) {
                    Value::from(v)
                } else {
                    return Err(NotJson(format!("integer {i} beyond 64 bits")));
                }
            }
            PyVal::Float(f) => Number::from_f64(*f)
                .map(Value::Number)
                .ok_or_else(|| NotJson(format!("non-finite float {}", float_repr(*f))))?,
            PyVal::Str(s) => Value::String(s.clone()),
            PyVal::List(items) | PyVal::Tuple(items) | PyVal::Set(items) => Value::Array(
                items
                    .iter()
                    .map(|v| v.to_json_with(leaf))
                    .collect::<Result<_, _>>()?,
            ),
            PyVal::Dict(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    let key = match k {
                        PyVal::Str(s) => s.clone(),
                        PyVal::Int(i) => i.to_string(),
                        PyVal::Float(f) if f.is_finite() => float_repr(*f),
                        PyVal::Bool(true) => "true".into(),
                        PyVal::Bool(false) => "false".into(),
                        PyVal::None => "null".into(),
                        other => {
                            return Err(NotJson(format!(
                                "dict key of type {}",
                                other.py_type().name()
                            )))
                        }
                    };
                    map.insert(key, v.to_json_with(leaf)?);
                }
                Value::Object(map)
            }
            other => return Err(NotJson(format!("a {}", other.py_type().name()))),
        })
    }

    /// From a JSON value (`5` is an `int`, `5.0` a `float`; object keys in
    /// the map's order: the order they were read in).
    pub fn from_json(v: &Value) -> PyVal {
        match v {
            Value::Null => PyVal::None,
            Value::Bool(b) => PyVal::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    PyVal::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    PyVal::Int(i128::from(u))
                } else {
                    PyVal::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => PyVal::Str(s.clone()),
            Value::Array(items) => PyVal::List(items.iter().map(PyVal::from_json).collect()),
            Value::Object(map) => PyVal::Dict(
                map.iter()
                    .map(|(k, v)| (PyVal::Str(k.clone()), PyVal::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// From a value read by [`crate::pyjson`] (Python `json` semantics,
    /// object key order kept). Integers beyond `i128` become floats; lone
    /// surrogates become U+FFFD.
    pub fn from_pyjson(v: &crate::pyjson::PyValue<'_>) -> PyVal {
        use crate::pyjson::{PyInt, PyValue as J};
        let s = |p: &crate::pyjson::PyStr<'_>| String::from_utf8_lossy(&p.0).into_owned();
        match v {
            J::None => PyVal::None,
            J::Bool(b) => PyVal::Bool(*b),
            J::Int(PyInt::Small(i)) => PyVal::Int(i128::from(*i)),
            J::Int(PyInt::Big(text)) => match text.parse::<i128>() {
                Ok(i) => PyVal::Int(i),
                Err(_) => PyVal::Float(text.parse::<f64>().unwrap_or(f64::NAN)),
            },
            J::Float(f) => PyVal::Float(*f),
            J::Str(p) => PyVal::Str(s(p)),
            J::List(items) => PyVal::List(items.iter().map(PyVal::from_pyjson).collect()),
            J::Dict(entries) => PyVal::Dict(
                entries
                    .iter()
                    .map(|(k, v)| (PyVal::Str(s(k)), PyVal::from_pyjson(v)))
                    .collect(),
            ),
        }
    }
}

/// A value that JSON cannot hold (see [`PyVal::to_json`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not representable as JSON: {0}")]
pub struct NotJson(pub String);

fn seq_repr(items: &[PyVal], open: &str, close: &str, trailing_comma: bool, out: &mut String) {
    out.push_str(open);
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        item.repr_into(out);
    }
    if trailing_comma {
        out.push(',');
    }
    out.push_str(close);
}

/// Python's `str.isprintable` for one character (approximate outside the
/// common ranges: unassigned code points count as printable).
fn is_printable(c: char) -> bool {
    let u = c as u32;
    !(c.is_control()
        || matches!(u,
            0xA0 | 0xAD | 0x1680 | 0x180E | 0x3000 | 0xFEFF | 0x061C | 0x06DD | 0x070F
            | 0x0600..=0x0605
            | 0x2000..=0x200F
            | 0x2028..=0x202F
            | 0x205F..=0x2064
            | 0x2066..=0x206F
            | 0xFFF9..=0xFFFB
            | 0xE000..=0xF8FF
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xF0000..=0x10FFFF))
}

/// Python's `repr` of a `str`.
pub fn str_repr(s: &str) -> String {
    let mut out = String::new();
    str_repr_into(s, &mut out);
    out
}

fn str_repr_into(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x7F || is_printable(c) => out.push(c),
            c if (c as u32) <= 0xFF => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push(quote);
}

fn bytes_repr_into(b: &[u8], out: &mut String) {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    out.push('b');
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            0x20..=0x7E => out.push(c as char),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push(quote as char);
}

/// Python's `repr` of a `float` (`1e+16`, `1e-05`, `0.0001`, `2.5`, `inf`).
pub fn float_repr(f: f64) -> String {
    format_float(f, true)
}

fn complex_repr(re: f64, im: f64) -> String {
    let imag = format!("{}j", format_float(im, false));
    if re == 0.0 && re.is_sign_positive() {
        imag
    } else {
        let sign = if im.is_sign_negative() && !im.is_nan() {
            ""
        } else {
            "+"
        };
        format!("({}{sign}{imag})", format_float(re, false))
    }
}

/// Python's shortest round-trip float formatting (`repr`), with `.0`
/// added to integral values when `add_dot_zero`.
fn format_float(f: f64, add_dot_zero: bool) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Shortest round-trip digits and exponent from Rust's `{:e}`.
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let decpt = exp + 1; // value = 0.DIGITS * 10^decpt
    let n = digits.len() as i32;
    let body = if !(-4 < decpt && decpt <= 16) {
        let (first, rest) = digits.split_at(1);
        let mut s = first.to_string();
        if !rest.is_empty() {
            s.push('.');
            s.push_str(rest);
        }
        let e = decpt - 1;
        let _ = write!(s, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
        s
    } else if decpt <= 0 {
        format!("0.{}{}", "0".repeat((-decpt) as usize), digits)
    } else if decpt >= n {
        let mut s = format!("{}{}", digits, "0".repeat((decpt - n) as usize));
        if add_dot_zero {
            s.push_str(".0");
        }
        s
    } else {
        let (a, b) = digits.split_at(decpt as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
}

/// Builds a dict or set with Python's key semantics (equal keys —
/// `1`, `1.0`, `True` — collapse; the first key object stays, the last
/// value wins), in near-linear time.
#[derive(Default)]
pub(crate) struct DictBuilder {
    entries: Vec<(PyVal, PyVal)>,
    index: HashMap<HashKey, usize>,
}

#[derive(Hash, PartialEq, Eq)]
enum HashKey {
    Str(String),
    Bytes(Vec<u8>),
    Int(i128),
    Float(u64),
    None,
    Ellipsis,
}

fn hash_key(k: &PyVal) -> Option<HashKey> {
    Some(match k {
        PyVal::Str(s) => HashKey::Str(s.clone()),
        PyVal::Bytes(b) => HashKey::Bytes(b.clone()),
        PyVal::Bool(b) => HashKey::Int(i128::from(*b)),
        PyVal::Int(i) => HashKey::Int(*i),
        PyVal::Float(f) if int_float_eq(*f as i128, *f) => HashKey::Int(*f as i128),
        PyVal::Float(f) if f.is_nan() => return None,
        PyVal::Float(f) => HashKey::Float((*f + 0.0).to_bits()),
        PyVal::None => HashKey::None,
        PyVal::Ellipsis => HashKey::Ellipsis,
        _ => return None,
    })
}

impl DictBuilder {
    /// Inserts `k: v`; `false` if `k` is unhashable (nothing inserted).
    pub(crate) fn insert(&mut self, k: PyVal, v: PyVal) -> bool {
        if !k.is_hashable() {
            return false;
        }
        let existing = match hash_key(&k) {
            Some(h) => match self.index.get(&h) {
                Some(&i) => Some(i),
                None => {
                    self.index.insert(h, self.entries.len());
                    None
                }
            },
            None => self.entries.iter().position(|(e, _)| e.py_eq(&k)),
        };
        match existing {
            Some(i) => self.entries[i].1 = v,
            None => self.entries.push((k, v)),
        }
        true
    }

    pub(crate) fn into_dict(self) -> PyVal {
        PyVal::Dict(self.entries)
    }

    pub(crate) fn into_set(self) -> PyVal {
        PyVal::Set(self.entries.into_iter().map(|(k, _)| k).collect())
    }
}

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/// Why a text could not be parsed (or converted); `offset` is a byte offset
/// into the text given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct PyCallError {
    /// What went wrong.
    pub kind: PyCallErrorKind,
    /// Where (byte offset into the parsed text).
    pub offset: usize,
}

/// The kinds of [`PyCallError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PyCallErrorKind {
    /// Not valid Python (the message follows CPython's where practical).
    #[error("syntax error: {0}")]
    Syntax(String),
    /// Leading whitespace on the first line (CPython: `IndentationError`).
    #[error("unexpected indent")]
    Indent,
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Valid Python that this parser does not handle (see the module docs).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An integer literal beyond `i128`.
    #[error("integer literal does not fit in 128 bits")]
    IntTooLarge,
    /// The text (or an element) is not a function call with a dotted name.
    #[error("not a function call: {0}")]
    NotACall(String),
    /// An argument value is not a literal.
    #[error("argument value is not a literal: {0}")]
    NotALiteral(String),
    /// The same keyword argument twice in one call.
    #[error("keyword argument {0:?} repeated")]
    DuplicateKeyword(String),
    /// `*args` / `**kwargs` in a call.
    #[error("argument unpacking (*args / **kwargs) is not supported")]
    Unpacking,
    /// A value JSON cannot hold, or positional arguments where only named
    /// ones can be represented.
    #[error("{0}")]
    NotJson(String),
}

impl PyCallError {
    fn new(kind: PyCallErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    fn syntax(msg: impl Into<String>, offset: usize) -> Self {
        Self::new(PyCallErrorKind::Syntax(msg.into()), offset)
    }

    /// The exception CPython's `ast.parse` raises for this error, when it
    /// raises one (`SyntaxError`, `IndentationError`); `None` for errors
    /// that CPython would not raise at parse time.
    pub fn python_exception(&self) -> Option<&'static str> {
        match self.kind {
            PyCallErrorKind::Syntax(_) | PyCallErrorKind::TooDeep => Some("SyntaxError"),
            PyCallErrorKind::Indent => Some("IndentationError"),
            _ => None,
        }
    }
}

type PResult<T> = Result<T, PyCallError>;

// ---------------------------------------------------------------------------
// tokens
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum StrKind {
    Str,
    Bytes,
    FString,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Int(i128),
    BigInt,
    Float(f64),
    Imag(f64),
    Str {
        kind: StrKind,
        text: String,
        bytes: Vec<u8>,
        u_prefix: bool,
    },
    Op(&'static str),
    Newline,
    End,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    start: usize,
}

const KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

fn is_keyword(s: &str) -> bool {
    KEYWORDS.contains(&s)
}

const OPERATORS: [&str; 47] = [
    "**=", "//=", ">>=", "<<=", "...", "->", ":=", "**", "//", "<<", ">>", "<=", ">=", "==", "!=",
    "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "@=", "+", "-", "*", "/", "%", "@", "&", "|",
    "^", "~", "<", ">", "(", ")", "[", "]", "{", "}", ",", ":", ".", ";", "=",
];

fn is_id_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

/// Combining marks common in identifiers of Indic / Thai / accented text.
fn is_mark(c: char) -> bool {
    let u = c as u32;
    matches!(u,
        0x0300..=0x036F | 0x0483..=0x0487 | 0x0591..=0x05BD | 0x0610..=0x061A
        | 0x064B..=0x065F | 0x0670 | 0x06D6..=0x06DC | 0x06DF..=0x06E4 | 0x0E31 | 0x0E34..=0x0E3A
        | 0x0E47..=0x0E4E | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
        || ((0x0900..=0x0DFF).contains(&u) && !matches!(u, 0x0964 | 0x0965 | 0x0970))
}

fn is_id_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric() || is_mark(c)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    stack: Vec<(char, usize)>,
    tokens: Vec<Token>,
    /// The first capability gap met (reported only if the text has no
    /// syntax error, as CPython would report that one).
    deferred: Option<PyCallError>,
    /// [`CallSyntax::unicode_text`].
    unicode_text: bool,
}

fn lex(src: &str, unicode_text: bool) -> PResult<(Vec<Token>, Option<PyCallError>)> {
    if let Some(i) = src.find('\0') {
        return Err(PyCallError::syntax(
            "source code string cannot contain null bytes",
            i,
        ));
    }
    let mut lx = Lexer {
        src,
        pos: 0,
        stack: Vec::new(),
        tokens: Vec::new(),
        deferred: None,
        unicode_text,
    };
    lx.run()?;
    Ok((lx.tokens, lx.deferred))
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.tokens.push(Token { tok, start });
    }

    fn run(&mut self) -> PResult<()> {
        let bytes = self.src.as_bytes();
        let mut line_start = true;
        loop {
            let ws_start = self.pos;
            while matches!(bytes.get(self.pos), Some(b' ' | b'\t' | 0x0C)) {
                self.pos += 1;
            }
            let Some(c) = self.peek() else { break };
            match c {
                '#' => {
                    while !matches!(self.peek(), None | Some('\n' | '\r')) {
                        self.pos += self.peek().map_or(1, char::len_utf8);
                    }
                    continue;
                }
                '\n' | '\r' => {
                    self.pos += 1;
                    if c == '\r' && self.peek() == Some('\n') {
                        self.pos += 1;
                    }
                    if self.stack.is_empty() {
                        if !line_start {
                            self.push(Tok::Newline, self.pos - 1);
                        }
                        line_start = true;
                    }
                    continue;
                }
                '\\' => {
                    let start = self.pos;
                    self.pos += 1;
                    match self.peek() {
                        Some('\n') => self.pos += 1,
                        Some('\r') => {
                            self.pos += 1;
                            if self.peek() == Some('\n') {
                                self.pos += 1;
                            }
                        }
                        _ => {
                            return Err(PyCallError::syntax(
                                "unexpected character after line continuation character",
                                start,
                            ))
                        }
                    }
                    continue;
                }
                _ => {}
            }
            if line_start && self.stack.is_empty() && self.pos > ws_start {
                return Err(PyCallError::new(PyCallErrorKind::Indent, ws_start));
            }
            line_start = false;
            let start = self.pos;
            if is_id_start(c) {
                while self.peek().is_some_and(is_id_continue) {
                    self.pos += self.peek().map_or(1, char::len_utf8);
                }
                let word = &self.src[start..self.pos];
                if matches!(self.peek(), Some('\'' | '"')) && is_string_prefix(word) {
                    self.string(word, start)?;
                } else {
                    self.push(Tok::Name(word.to_string()), start);
                }
            } else if c.is_ascii_digit()
                || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()))
            {
                let tok = self.number()?;
                self.push(tok, start);
            } else if c == '\'' || c == '"' {
                self.string("", start)?;
            } else if let Some(op) = OPERATORS
                .iter()
                .find(|op| self.src[self.pos..].starts_with(**op))
            {
                self.pos += op.len();
                self.bracket(op, start)?;
                self.push(Tok::Op(op), start);
            } else if c.is_ascii_graphic() {
                return Err(PyCallError::syntax("invalid syntax", start));
            } else {
                return Err(PyCallError::syntax(
                    format!("invalid character '{c}' (U+{:04X})", c as u32),
                    start,
                ));
            }
        }
        if let Some(&(open, at)) = self.stack.last() {
            return Err(PyCallError::syntax(
                format!("'{open}' was never closed"),
                at,
            ));
        }
        let end = self.src.len();
        self.push(Tok::End, end);
        Ok(())
    }

    fn bracket(&mut self, op: &str, at: usize) -> PResult<()> {
        let c = op.chars().next().unwrap_or(' ');
        match c {
            '(' | '[' | '{' if op.len() == 1 => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(PyCallError::new(PyCallErrorKind::TooDeep, at));
                }
                self.stack.push((c, at));
            }
            ')' | ']' | '}' => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match self.stack.pop() {
                    None => return Err(PyCallError::syntax(format!("unmatched '{c}'"), at)),
                    Some((open, _)) if open != want => {
                        return Err(PyCallError::syntax(
                            format!(
                            "closing parenthesis '{c}' does not match opening parenthesis '{open}'"
                        ),
                            at,
                        ))
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Digits of one radix with single underscores between them.
    fn digits(&mut self, radix: u32) -> PResult<String> {
        let mut out = String::new();
        loop {
            match self.peek() {
                Some(d) if d.is_digit(radix) => {
                    out.push(d);
                    self.pos += 1;
                }
                Some('_') if !out.is_empty() || radix != 10 => {
                    if self.peek_at(1).is_some_and(|d| d.is_digit(radix)) {
                        self.pos += 1;
                    } else {
                        return Err(PyCallError::syntax(
                            format!("invalid {} literal", radix_name(radix)),
                            self.pos,
                        ));
                    }
                }
                _ => return Ok(out),
            }
        }
    }

    fn number(&mut self) -> PResult<Tok> {
        let start = self.pos;
        let rest = &self.src.as_bytes()[self.pos..];
        if rest.len() >= 2 && rest[0] == b'0' {
            let radix = match rest[1] {
                b'x' | b'X' => 16,
                b'o' | b'O' => 8,
                b'b' | b'B' => 2,
                _ => 0,
            };
            if radix != 0 {
                self.pos += 2;
                let digits = self.digits(radix)?;
                if digits.is_empty() {
                    return Err(PyCallError::syntax(
                        format!("invalid {} literal", radix_name(radix)),
                        start,
                    ));
                }
                self.end_of_number(radix)?;
                return Ok(
                    match u128::from_str_radix(&digits, radix)
                        .ok()
                        .and_then(|u| i128::try_from(u).ok())
                    {
                        Some(i) => Tok::Int(i),
                        None => Tok::BigInt,
                    },
                );
            }
        }
        let int_part = self.digits(10)?;
        let mut text = int_part.clone();
        let mut is_float = false;
        if self.peek() == Some('.') {
            is_float = true;
            self.pos += 1;
            text.push('.');
            text.push_str(&self.digits(10)?);
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = matches!(self.peek_at(1), Some('+' | '-'));
            let digit_at = if sign { 2 } else { 1 };
            if self.peek_at(digit_at).is_some_and(|d| d.is_ascii_digit()) {
                is_float = true;
                text.push('e');
                if sign {
                    text.push(self.peek_at(1).unwrap_or('+'));
                }
                self.pos += digit_at;
                text.push_str(&self.digits(10)?);
            }
        }
        if matches!(self.peek(), Some('j' | 'J')) {
            self.pos += 1;
            self.end_of_number(10)?;
            return Ok(Tok::Imag(text.parse::<f64>().unwrap_or(f64::NAN)));
        }
        self.end_of_number(10)?;
        if is_float {
            return Ok(Tok::Float(text.parse::<f64>().unwrap_or(f64::NAN)));
        }
        if int_part.starts_with('0') && int_part.bytes().any(|b| b != b'0') {
            return Err(PyCallError::syntax(
                "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal integers",
                start,
            ));
        }
        Ok(match int_part.parse::<i128>() {
            Ok(i) => Tok::Int(i),
            Err(_) => Tok::BigInt,
        })
    }

    /// A number directly followed by a name is an error, except before a
    /// keyword (`1if x else 2` is accepted by CPython 3.11).
    fn end_of_number(&self, radix: u32) -> PResult<()> {
        if let Some(c) = self.peek() {
            if is_id_continue(c) {
                let rest = &self.src[self.pos..];
                let ok = ["and", "else", "for", "if", "in", "is", "not", "or"]
                    .iter()
                    .any(|k| rest.starts_with(k));
                if !ok {
                    return Err(PyCallError::syntax(
                        format!("invalid {} literal", radix_name(radix)),
                        self.pos,
                    ));
                }
            }
        }
        Ok(())
    }

    fn string(&mut self, prefix: &str, start: usize) -> PResult<()> {
        let lower = prefix.to_ascii_lowercase();
        let raw = lower.contains('r');
        let kind = if lower.contains('b') {
            StrKind::Bytes
        } else if lower.contains('f') {
            StrKind::FString
        } else {
            StrKind::Str
        };
        let q = self.peek().unwrap_or('\'');
        let triple = self.src[self.pos..].starts_with(if q == '"' { "\"\"\"" } else { "'''" });
        self.pos += if triple { 3 } else { 1 };
        let mut text = String::new();
        let mut bytes = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(PyCallError::syntax(
                    if triple {
                        "unterminated triple-quoted string literal"
                    } else {
                        "unterminated string literal"
                    },
                    start,
                ));
            };
            let here = self.pos;
            if c == q && (!triple || self.src[self.pos..].starts_with(&q.to_string().repeat(3))) {
                self.pos += if triple { 3 } else { 1 };
                break;
            }
            if !triple && (c == '\n' || c == '\r') {
                return Err(PyCallError::syntax("unterminated string literal", start));
            }
            self.pos += c.len_utf8();
            if kind == StrKind::Bytes && !c.is_ascii() {
                return Err(PyCallError::syntax(
                    "bytes can only contain ASCII literal characters",
                    here,
                ));
            }
            if c != '\\' {
                text.push(c);
                bytes.push(c as u8);
                continue;
            }
            // A backslash: the next character never ends the string.
            let Some(n) = self.peek() else { continue };
            if raw || kind == StrKind::FString {
                self.pos += n.len_utf8();
                text.push('\\');
                text.push(n);
                bytes.push(b'\\');
                bytes.push(n as u8);
                continue;
            }
            self.escape(n, kind == StrKind::Bytes, here, &mut text, &mut bytes)?;
        }
        self.push(
            Tok::Str {
                kind,
                text,
                bytes,
                u_prefix: lower == "u",
            },
            start,
        );
        Ok(())
    }

    /// The low surrogate a `\uXXXX` or `\UXXXXXXXX` escape right at
    /// `self.pos` holds, consumed; `None` (nothing consumed) otherwise.
    fn low_surrogate(&mut self) -> Option<u32> {
        let rest = &self.src[self.pos..];
        let len = match rest.get(..2)? {
            "\\u" => 4,
            "\\U" => 8,
            _ => return None,
        };
        let digits = rest.get(2..2 + len)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let v = u32::from_str_radix(digits, 16).ok()?;
        (0xDC00..0xE000).contains(&v).then(|| {
            self.pos += 2 + len;
            v
        })
    }

    /// One escape sequence; `self.pos` is just after the backslash.
    fn escape(
        &mut self,
        n: char,
        is_bytes: bool,
        at: usize,
        text: &mut String,
        bytes: &mut Vec<u8>,
    ) -> PResult<()> {
        self.pos += n.len_utf8();
        let simple = match n {
            '\n' => Some(None),
            '\r' => {
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
                Some(None)
            }
            '\\' | '\'' | '"' => Some(Some(n)),
            'a' => Some(Some('\x07')),
            'b' => Some(Some('\x08')),
            'f' => Some(Some('\x0c')),
            'n' => Some(Some('\n')),
            'r' => Some(Some('\r')),
            't' => Some(Some('\t')),
            'v' => Some(Some('\x0b')),
            _ => None,
        };
        if let Some(c) = simple {
            if let Some(c) = c {
                text.push(c);
                bytes.push(c as u8);
            }
            return Ok(());
        }
        let hex = |lx: &mut Self, len: usize, what: &str| -> PResult<u32> {
            let s = lx.src.get(lx.pos..lx.pos + len).unwrap_or("");
            if s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit()) {
                lx.pos += len;
                Ok(u32::from_str_radix(s, 16).unwrap_or(0))
            } else {
                Err(PyCallError::syntax(format!("truncated {what} escape"), at))
            }
        };
        match n {
            '0'..='7' => {
                let mut v = n.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                text.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
                bytes.push((v & 0xFF) as u8);
            }
            'x' => {
                let v = hex(self, 2, "\\xXX")?;
                text.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
                bytes.push(v as u8);
            }
            'u' | 'U' if !is_bytes => {
                let (len, what) = if n == 'u' {
                    (4, "\\uXXXX")
                } else {
                    (8, "\\UXXXXXXXX")
                };
                let v = hex(self, len, what)?;
                if v > 0x10FFFF {
                    return Err(PyCallError::syntax("illegal Unicode character", at));
                }
                if self.unicode_text && (0xD800..0xE000).contains(&v) {
                    // A pair of escapes is one character (as `json.dumps`
                    // then `json.loads` of the value give it); a lone
                    // surrogate is no Unicode text.
                    let low = if v < 0xDC00 {
                        self.low_surrogate()
                    } else {
                        None
                    };
                    let Some(low) = low else {
                        return Err(PyCallError::new(
                            PyCallErrorKind::NotJson(format!(
                                "a lone surrogate \\u{v:04x} is not Unicode text"
                            )),
                            at,
                        ));
                    };
                    let joined = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
                    text.push(char::from_u32(joined).unwrap_or('\u{FFFD}'));
                    return Ok(());
                }
                text.push(char::from_u32(v).unwrap_or('\u{FFFD}'));
            }
            'N' if !is_bytes => {
                // No Unicode name table: skip `{...}` and defer the error.
                if self.peek() == Some('{') {
                    while !matches!(self.peek(), None | Some('}' | '\n' | '\'' | '"')) {
                        self.pos += self.peek().map_or(1, char::len_utf8);
                    }
                    if self.peek() == Some('}') {
                        self.pos += 1;
                    }
                }
                text.push('\u{FFFD}');
                self.deferred.get_or_insert(PyCallError::new(
                    PyCallErrorKind::Unsupported("\\N{...} escape".into()),
                    at,
                ));
            }
            other => {
                // Unknown escapes keep the backslash (a warning in CPython).
                text.push('\\');
                text.push(other);
                bytes.push(b'\\');
                bytes.push(other as u8);
            }
        }
        Ok(())
    }
}

fn radix_name(radix: u32) -> &'static str {
    match radix {
        16 => "hexadecimal",
        8 => "octal",
        2 => "binary",
        _ => "decimal",
    }
}

fn is_string_prefix(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "r" | "u" | "b" | "f" | "br" | "rb" | "fr" | "rf"
    )
}

// ---------------------------------------------------------------------------
// syntax tree
// ---------------------------------------------------------------------------

/// A parsed expression and where it starts (byte offset).
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Byte offset of its first token.
    pub offset: usize,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `+x`.
    Pos,
    /// `~x`.
    Invert,
    /// `not x`.
    Not,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `@`.
    MatMul,
    /// `/`.
    Div,
    /// `//`.
    FloorDiv,
    /// `%`.
    Mod,
    /// `**`.
    Pow,
    /// `<<`.
    LShift,
    /// `>>`.
    RShift,
    /// `&`.
    BitAnd,
    /// `|`.
    BitOr,
    /// `^`.
    BitXor,
}

impl BinOp {
    /// The operator's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::MatMul => "@",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::LShift => "<<",
            BinOp::RShift => ">>",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
        }
    }

    fn from_symbol(s: &str) -> Option<(BinOp, u8)> {
        Some(match s {
            "|" => (BinOp::BitOr, 1),
            "^" => (BinOp::BitXor, 2),
            "&" => (BinOp::BitAnd, 3),
            "<<" => (BinOp::LShift, 4),
            ">>" => (BinOp::RShift, 4),
            "+" => (BinOp::Add, 5),
            "-" => (BinOp::Sub, 5),
            "*" => (BinOp::Mul, 6),
            "@" => (BinOp::MatMul, 6),
            "/" => (BinOp::Div, 6),
            "//" => (BinOp::FloorDiv, 6),
            "%" => (BinOp::Mod, 6),
            _ => return None,
        })
    }

    fn prec(self) -> Prec {
        match self {
            BinOp::BitOr => Prec::BOR,
            BinOp::BitXor => Prec::BXOR,
            BinOp::BitAnd => Prec::BAND,
            BinOp::LShift | BinOp::RShift => Prec::SHIFT,
            BinOp::Add | BinOp::Sub => Prec::ARITH,
            BinOp::Pow => Prec::POWER,
            _ => Prec::TERM,
        }
    }
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`.
    Eq,
    /// `!=`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    LtE,
    /// `>`.
    Gt,
    /// `>=`.
    GtE,
    /// `in`.
    In,
    /// `not in`.
    NotIn,
    /// `is`.
    Is,
    /// `is not`.
    IsNot,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::NotEq => "!=",
            CmpOp::Lt => "<",
            CmpOp::LtE => "<=",
            CmpOp::Gt => ">",
            CmpOp::GtE => ">=",
            CmpOp::In => "in",
            CmpOp::NotIn => "not in",
            CmpOp::Is => "is",
            CmpOp::IsNot => "is not",
        }
    }
}

/// A keyword argument (`name=value`), or `**value` when `name` is `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct Keyword {
    /// The parameter name; `None` for `**value`.
    pub name: Option<String>,
    /// The value.
    pub value: Expr,
    /// Byte offset of the keyword.
    pub offset: usize,
}

/// The kinds of [`Expr`] (named after CPython's `ast` classes).
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A literal constant (`None`, bools, numbers, strings, bytes, `...`);
    /// `u_prefix` records a `u'...'` string (for [`Expr::unparse`]).
    Const {
        /// The value.
        value: PyVal,
        /// Written with a `u` prefix.
        u_prefix: bool,
    },
    /// An identifier.
    Name(String),
    /// `value.attr`.
    Attribute(Box<Expr>, String),
    /// `func(args, keywords)`.
    Call {
        /// The callee.
        func: Box<Expr>,
        /// Positional arguments (`*x` as [`ExprKind::Starred`]).
        args: Vec<Expr>,
        /// Keyword arguments, in order (repeats kept).
        keywords: Vec<Keyword>,
    },
    /// `value[index]`.
    Subscript(Box<Expr>, Box<Expr>),
    /// `lower:upper:step` inside a subscript.
    Slice(Option<Box<Expr>>, Option<Box<Expr>>, Option<Box<Expr>>),
    /// `[...]`.
    List(Vec<Expr>),
    /// `(...)` or a bare `a, b`.
    Tuple(Vec<Expr>),
    /// `{a, b}`.
    Set(Vec<Expr>),
    /// `{k: v}`; a `None` key is `**v`.
    Dict(Vec<(Option<Expr>, Expr)>),
    /// `*value`.
    Starred(Box<Expr>),
    /// A unary operation.
    Unary(UnaryOp, Box<Expr>),
    /// A binary operation.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `left op1 x op2 y ...`.
    Compare(Box<Expr>, Vec<(CmpOp, Expr)>),
    /// `a and b and ...` (`true`) or `a or b or ...` (`false`).
    BoolOp(bool, Vec<Expr>),
    /// `body if test else orelse`.
    IfExp {
        /// The condition.
        test: Box<Expr>,
        /// Value when true.
        body: Box<Expr>,
        /// Value when false.
        orelse: Box<Expr>,
    },
    /// `lambda ...: body` (the parameters are skipped, not kept).
    Lambda(Box<Expr>),
    /// A construct skipped without a tree, named by its CPython class:
    /// `ListComp`, `SetComp`, `DictComp`, `GeneratorExp`, `JoinedStr`
    /// (f-string), `NamedExpr` (`:=`), `Await`.
    Unsupported(&'static str),
}

impl ExprKind {
    /// The CPython `ast` class name of this node.
    pub fn ast_class(&self) -> &'static str {
        match self {
            ExprKind::Const { .. } => "Constant",
            ExprKind::Name(_) => "Name",
            ExprKind::Attribute(..) => "Attribute",
            ExprKind::Call { .. } => "Call",
            ExprKind::Subscript(..) => "Subscript",
            ExprKind::Slice(..) => "Slice",
            ExprKind::List(_) => "List",
            ExprKind::Tuple(_) => "Tuple",
            ExprKind::Set(_) => "Set",
            ExprKind::Dict(_) => "Dict",
            ExprKind::Starred(_) => "Starred",
            ExprKind::Unary(..) => "UnaryOp",
            ExprKind::Binary(..) => "BinOp",
            ExprKind::Compare(..) => "Compare",
            ExprKind::BoolOp(..) => "BoolOp",
            ExprKind::IfExp { .. } => "IfExp",
            ExprKind::Lambda(_) => "Lambda",
            ExprKind::Unsupported(name) => name,
        }
    }
}

// ---------------------------------------------------------------------------
// parser
// ---------------------------------------------------------------------------

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
    deferred: Option<PyCallError>,
}

fn boxed(e: Expr) -> Box<Expr> {
    Box::new(e)
}

impl Parser {
    fn tok(&self) -> &Tok {
        self.toks.get(self.i).map_or(&Tok::End, |t| &t.tok)
    }

    fn tok_at(&self, n: usize) -> &Tok {
        self.toks.get(self.i + n).map_or(&Tok::End, |t| &t.tok)
    }

    fn offset(&self) -> usize {
        self.toks
            .get(self.i)
            .or(self.toks.last())
            .map_or(0, |t| t.start)
    }

    fn bump(&mut self) {
        if self.i < self.toks.len() {
            self.i += 1;
        }
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.tok(), Tok::Op(o) if *o == op)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.tok(), Tok::Name(n) if n == kw)
    }

    fn err<T>(&self, msg: &str) -> PResult<T> {
        Err(PyCallError::syntax(msg, self.offset()))
    }

    fn expect_op(&mut self, op: &str) -> PResult<()> {
        if self.is_op(op) {
            self.bump();
            Ok(())
        } else {
            self.err(&format!("invalid syntax (expected '{op}')"))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PyCallError::new(PyCallErrorKind::TooDeep, self.offset()));
        }
        Ok(())
    }

    fn mk(kind: ExprKind, offset: usize) -> Expr {
        Expr { kind, offset }
    }

    fn skip_newlines(&mut self) {
        while matches!(self.tok(), Tok::Newline) {
            self.bump();
        }
    }

    /// `expression`: lambda, or disjunction with an optional `if ... else`.
    fn expression(&mut self) -> PResult<Expr> {
        self.enter()?;
        let start = self.offset();
        let e = if self.is_kw("lambda") {
            self.lambda()?
        } else {
            let body = self.disjunction()?;
            if self.is_kw("if") {
                self.bump();
                let test = self.disjunction()?;
                if !self.is_kw("else") {
                    return self.err("expected 'else' after 'if' expression");
                }
                self.bump();
                let orelse = self.expression()?;
                Self::mk(
                    ExprKind::IfExp {
                        test: boxed(test),
                        body: boxed(body),
                        orelse: boxed(orelse),
                    },
                    start,
                )
            } else {
                body
            }
        };
        self.depth -= 1;
        Ok(e)
    }

    fn lambda(&mut self) -> PResult<Expr> {
        let start = self.offset();
        self.bump();
        let mut depth = 0usize;
        loop {
            match self.tok() {
                Tok::End => return self.err("invalid syntax"),
                Tok::Op(":") if depth == 0 => break,
                Tok::Op("(" | "[" | "{") => depth += 1,
                Tok::Op(")" | "]" | "}") => {
                    if depth == 0 {
                        return self.err("invalid syntax");
                    }
                    depth -= 1;
                }
                _ => {}
            }
            self.bump();
        }
        self.bump();
        let body = self.expression()?;
        Ok(Self::mk(ExprKind::Lambda(boxed(body)), start))
    }

    fn bool_chain(&mut self, kw: &str, and: bool) -> PResult<Expr> {
        let start = self.offset();
        let first = if and {
            self.inversion()?
        } else {
            self.bool_chain("and", true)?
        };
        if !self.is_kw(kw) {
            return Ok(first);
        }
        let mut values = vec![first];
        while self.is_kw(kw) {
            self.bump();
            values.push(if and {
                self.inversion()?
            } else {
                self.bool_chain("and", true)?
            });
        }
        Ok(Self::mk(ExprKind::BoolOp(and, values), start))
    }

    fn disjunction(&mut self) -> PResult<Expr> {
        self.bool_chain("or", false)
    }

    fn inversion(&mut self) -> PResult<Expr> {
        if self.is_kw("not") {
            let start = self.offset();
            self.bump();
            self.enter()?;
            let operand = self.inversion()?;
            self.depth -= 1;
            return Ok(Self::mk(
                ExprKind::Unary(UnaryOp::Not, boxed(operand)),
                start,
            ));
        }
        self.comparison()
    }

    fn cmp_op(&self) -> Option<(CmpOp, usize)> {
        Some(match self.tok() {
            Tok::Op("==") => (CmpOp::Eq, 1),
            Tok::Op("!=") => (CmpOp::NotEq, 1),
            Tok::Op("<") => (CmpOp::Lt, 1),
            Tok::Op("<=") => (CmpOp::LtE, 1),
            Tok::Op(">") => (CmpOp::Gt, 1),
            Tok::Op(">=") => (CmpOp::GtE, 1),
            Tok::Name(n) if n == "in" => (CmpOp::In, 1),
            Tok::Name(n) if n == "not" && matches!(self.tok_at(1), Tok::Name(m) if m == "in") => {
                (CmpOp::NotIn, 2)
            }
            Tok::Name(n) if n == "is" => {
                if matches!(self.tok_at(1), Tok::Name(m) if m == "not") {
                    (CmpOp::IsNot, 2)
                } else {
                    (CmpOp::Is, 1)
                }
            }
            _ => return None,
        })
    }

    fn comparison(&mut self) -> PResult<Expr> {
        let start = self.offset();
        let left = self.binary(1)?;
        let mut ops = Vec::new();
        while let Some((op, n)) = self.cmp_op() {
            for _ in 0..n {
                self.bump();
            }
            ops.push((op, self.binary(1)?));
        }
        if ops.is_empty() {
            Ok(left)
        } else {
            Ok(Self::mk(ExprKind::Compare(boxed(left), ops), start))
        }
    }

    fn binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let start = self.offset();
        let mut left = self.factor()?;
        // Each operator nests the tree one level deeper on the left: a
        // chain counts against MAX_DEPTH like brackets do (trees are
        // walked and dropped recursively).
        let mut links = 0;
        while let Some((op, prec)) = match self.tok() {
            Tok::Op(sym) => BinOp::from_symbol(sym).filter(|(_, p)| *p >= min_prec),
            _ => None,
        } {
            self.bump();
            self.enter()?;
            links += 1;
            let right = self.binary(prec + 1)?;
            left = Self::mk(ExprKind::Binary(op, boxed(left), boxed(right)), start);
        }
        self.depth -= links;
        Ok(left)
    }

    fn factor(&mut self) -> PResult<Expr> {
        let op = match self.tok() {
            Tok::Op("-") => UnaryOp::Neg,
            Tok::Op("+") => UnaryOp::Pos,
            Tok::Op("~") => UnaryOp::Invert,
            _ => return self.power(),
        };
        let start = self.offset();
        self.bump();
        self.enter()?;
        let operand = self.factor()?;
        self.depth -= 1;
        Ok(Self::mk(ExprKind::Unary(op, boxed(operand)), start))
    }

    fn power(&mut self) -> PResult<Expr> {
        let start = self.offset();
        if self.is_kw("await") {
            self.bump();
            self.enter()?;
            self.primary()?;
            self.depth -= 1;
            return Ok(Self::mk(ExprKind::Unsupported("Await"), start));
        }
        let base = self.primary()?;
        if self.is_op("**") {
            self.bump();
            self.enter()?;
            let exp = self.factor()?;
            self.depth -= 1;
            return Ok(Self::mk(
                ExprKind::Binary(BinOp::Pow, boxed(base), boxed(exp)),
                start,
            ));
        }
        Ok(base)
    }

    fn primary(&mut self) -> PResult<Expr> {
        let start = self.offset();
        let mut e = self.atom()?;
        // Attribute, call and subscript chains nest on the left: each link
        // after the first counts against MAX_DEPTH (see `binary`).
        let (mut links, mut entered) = (0, 0);
        loop {
            if self.is_op(".") || self.is_op("(") || self.is_op("[") {
                if links > 0 {
                    self.enter()?;
                    entered += 1;
                }
                links += 1;
            }
            if self.is_op(".") {
                self.bump();
                match self.tok().clone() {
                    Tok::Name(n) if !is_keyword(&n) => {
                        self.bump();
                        e = Self::mk(ExprKind::Attribute(boxed(e), n), start);
                    }
                    _ => return self.err("invalid syntax"),
                }
            } else if self.is_op("(") {
                self.bump();
                let (args, keywords) = self.call_args()?;
                e = Self::mk(
                    ExprKind::Call {
                        func: boxed(e),
                        args,
                        keywords,
                    },
                    start,
                );
            } else if self.is_op("[") {
                self.bump();
                let index = self.subscript()?;
                e = Self::mk(ExprKind::Subscript(boxed(e), boxed(index)), start);
            } else {
                self.depth -= entered;
                return Ok(e);
            }
        }
    }

    /// Parses a comprehension's `for ... in ... [if ...]` clauses (the
    /// element is already parsed) and returns the node, kept without a
    /// tree as [`ExprKind::Unsupported`]`(class)`.
    fn comprehension(&mut self, class: &'static str, start: usize) -> PResult<Expr> {
        while self.is_kw("for") || self.is_kw("async") {
            if self.is_kw("async") {
                self.bump();
            }
            if !self.is_kw("for") {
                return self.err("invalid syntax");
            }
            self.bump();
            // Targets: a comma-separated list of (starred) primaries.
            loop {
                if self.is_op("*") {
                    self.bump();
                }
                self.binary(1)?;
                if self.is_op(",") && !matches!(self.tok_at(1), Tok::Name(n) if n == "in") {
                    self.bump();
                } else {
                    if self.is_op(",") {
                        self.bump();
                    }
                    break;
                }
            }
            if !self.is_kw("in") {
                return self.err("invalid syntax");
            }
            self.bump();
            self.disjunction()?;
            while self.is_kw("if") {
                self.bump();
                self.disjunction()?;
            }
        }
        Ok(Self::mk(ExprKind::Unsupported(class), start))
    }

    fn named_expression(&mut self) -> PResult<Expr> {
        if let Tok::Name(n) = self.tok() {
            if !is_keyword(n) && matches!(self.tok_at(1), Tok::Op(":=")) {
                let start = self.offset();
                self.bump();
                self.bump();
                self.expression()?;
                return Ok(Self::mk(ExprKind::Unsupported("NamedExpr"), start));
            }
        }
        self.expression()
    }

    fn star_named_expression(&mut self) -> PResult<Expr> {
        if self.is_op("*") {
            let start = self.offset();
            self.bump();
            let value = self.binary(1)?;
            return Ok(Self::mk(ExprKind::Starred(boxed(value)), start));
        }
        self.named_expression()
    }

    fn call_args(&mut self) -> PResult<(Vec<Expr>, Vec<Keyword>)> {
        let mut args = Vec::new();
        let mut keywords: Vec<Keyword> = Vec::new();
        let mut seen_kw = false;
        let mut seen_dstar = false;
        while !self.is_op(")") {
            let start = self.offset();
            if self.is_op("*") {
                self.bump();
                if seen_dstar {
                    return self
                        .err("iterable argument unpacking follows keyword argument unpacking");
                }
                let value = self.expression()?;
                args.push(Self::mk(ExprKind::Starred(boxed(value)), start));
            } else if self.is_op("**") {
                self.bump();
                let value = self.expression()?;
                keywords.push(Keyword {
                    name: None,
                    value,
                    offset: start,
                });
                seen_dstar = true;
            } else if let (Tok::Name(n), Tok::Op("=")) = (self.tok(), self.tok_at(1)) {
                let name = n.clone();
                if is_keyword(&name) {
                    return if matches!(name.as_str(), "True" | "False" | "None") {
                        self.err(&format!("cannot assign to {name}"))
                    } else {
                        self.err("invalid syntax")
                    };
                }
                self.bump();
                self.bump();
                let value = self.expression()?;
                keywords.push(Keyword {
                    name: Some(name),
                    value,
                    offset: start,
                });
                seen_kw = true;
            } else {
                let mut e = self.named_expression()?;
                if self.is_kw("for") || self.is_kw("async") {
                    e = self.comprehension("GeneratorExp", start)?;
                }
                if seen_dstar {
                    return Err(PyCallError::syntax(
                        "positional argument follows keyword argument unpacking",
                        start,
                    ));
                }
                if seen_kw {
                    return Err(PyCallError::syntax(
                        "positional argument follows keyword argument",
                        start,
                    ));
                }
                args.push(e);
            }
            if self.is_op(",") {
                self.bump();
            } else if !self.is_op(")") {
                return self.err("invalid syntax. Perhaps you forgot a comma?");
            }
        }
        self.bump();
        Ok((args, keywords))
    }

    fn slice(&mut self) -> PResult<Expr> {
        let start = self.offset();
        let stop = |p: &Self| p.is_op(",") || p.is_op("]");
        let lower = if self.is_op(":") {
            None
        } else {
            let e = self.star_named_expression()?;
            if !self.is_op(":") {
                return Ok(e);
            }
            Some(boxed(e))
        };
        self.expect_op(":")?;
        let upper = if self.is_op(":") || stop(self) {
            None
        } else {
            Some(boxed(self.expression()?))
        };
        let mut step = None;
        if self.is_op(":") {
            self.bump();
            if !stop(self) {
                step = Some(boxed(self.expression()?));
            }
        }
        Ok(Self::mk(ExprKind::Slice(lower, upper, step), start))
    }

    fn subscript(&mut self) -> PResult<Expr> {
        let start = self.offset();
        if self.is_op("]") {
            return self.err("invalid syntax");
        }
        let mut items = vec![self.slice()?];
        let mut comma = false;
        while self.is_op(",") {
            comma = true;
            self.bump();
            if self.is_op("]") {
                break;
            }
            items.push(self.slice()?);
        }
        self.expect_op("]")?;
        if !comma && items.len() == 1 {
            Ok(items
                .pop()
                .unwrap_or_else(|| Self::mk(ExprKind::Tuple(vec![]), start)))
        } else {
            Ok(Self::mk(ExprKind::Tuple(items), start))
        }
    }

    /// Elements after the first, up to `close` (consumed).
    fn rest_of_display(&mut self, mut items: Vec<Expr>, close: &str) -> PResult<Vec<Expr>> {
        while self.is_op(",") {
            self.bump();
            if self.is_op(close) {
                break;
            }
            items.push(self.star_named_expression()?);
        }
        self.expect_op(close)?;
        Ok(items)
    }

    fn atom(&mut self) -> PResult<Expr> {
        let start = self.offset();
        let tok = self.tok().clone();
        let c = |value| ExprKind::Const {
            value,
            u_prefix: false,
        };
        let kind = match tok {
            Tok::Name(n) => {
                self.bump();
                match n.as_str() {
                    "True" => c(PyVal::Bool(true)),
                    "False" => c(PyVal::Bool(false)),
                    "None" => c(PyVal::None),
                    "yield" => {
                        return Err(PyCallError::new(PyCallErrorKind::Unsupported(n), start))
                    }
                    w if is_keyword(w) => return Err(PyCallError::syntax("invalid syntax", start)),
                    _ => ExprKind::Name(n),
                }
            }
            Tok::Int(i) => {
                self.bump();
                c(PyVal::Int(i))
            }
            Tok::BigInt => {
                self.bump();
                self.deferred
                    .get_or_insert(PyCallError::new(PyCallErrorKind::IntTooLarge, start));
                c(PyVal::Int(0))
            }
            Tok::Float(f) => {
                self.bump();
                c(PyVal::Float(f))
            }
            Tok::Imag(f) => {
                self.bump();
                c(PyVal::Complex(0.0, f))
            }
            Tok::Str { .. } => return self.strings(),
            Tok::Op("...") => {
                self.bump();
                c(PyVal::Ellipsis)
            }
            Tok::Op("(") => {
                self.bump();
                if self.is_op(")") {
                    self.bump();
                    return Ok(Self::mk(ExprKind::Tuple(vec![]), start));
                }
                let first = self.star_named_expression()?;
                if self.is_kw("for") || self.is_kw("async") {
                    let e = self.comprehension("GeneratorExp", start)?;
                    self.expect_op(")")?;
                    return Ok(e);
                }
                if self.is_op(")") {
                    self.bump();
                    if matches!(first.kind, ExprKind::Starred(_)) {
                        return Err(PyCallError::syntax(
                            "cannot use starred expression here",
                            first.offset,
                        ));
                    }
                    return Ok(first);
                }
                if !self.is_op(",") {
                    return self.err("invalid syntax. Perhaps you forgot a comma?");
                }
                ExprKind::Tuple(self.rest_of_display(vec![first], ")")?)
            }
            Tok::Op("[") => {
                self.bump();
                if self.is_op("]") {
                    self.bump();
                    return Ok(Self::mk(ExprKind::List(vec![]), start));
                }
                let first = self.star_named_expression()?;
                if self.is_kw("for") || self.is_kw("async") {
                    let e = self.comprehension("ListComp", start)?;
                    self.expect_op("]")?;
                    return Ok(e);
                }
                if !self.is_op(",") && !self.is_op("]") {
                    return self.err("invalid syntax. Perhaps you forgot a comma?");
                }
                ExprKind::List(self.rest_of_display(vec![first], "]")?)
            }
            Tok::Op("{") => {
                self.bump();
                return self.brace(start);
            }
            _ => return self.err("invalid syntax"),
        };
        Ok(Self::mk(kind, start))
    }

    fn brace(&mut self, start: usize) -> PResult<Expr> {
        if self.is_op("}") {
            self.bump();
            return Ok(Self::mk(ExprKind::Dict(vec![]), start));
        }
        let dict_item = |p: &mut Self| -> PResult<(Option<Expr>, Expr)> {
            if p.is_op("**") {
                p.bump();
                return Ok((None, p.binary(1)?));
            }
            let k = p.expression()?;
            p.expect_op(":")?;
            Ok((Some(k), p.expression()?))
        };
        // The first item decides: `**x` or `key: value` make a dict.
        let first = if self.is_op("**") {
            None
        } else {
            let e = self.star_named_expression()?;
            if !self.is_op(":") {
                Some(e)
            } else {
                if matches!(
                    e.kind,
                    ExprKind::Starred(_) | ExprKind::Unsupported("NamedExpr")
                ) {
                    return Err(PyCallError::syntax("invalid syntax", e.offset));
                }
                self.bump();
                let v = self.expression()?;
                if self.is_kw("for") || self.is_kw("async") {
                    let c = self.comprehension("DictComp", start)?;
                    self.expect_op("}")?;
                    return Ok(c);
                }
                return self.rest_of_dict(vec![(Some(e), v)], start);
            }
        };
        let Some(first) = first else {
            let item = dict_item(self)?;
            return self.rest_of_dict(vec![item], start);
        };
        if self.is_kw("for") || self.is_kw("async") {
            let e = self.comprehension("SetComp", start)?;
            self.expect_op("}")?;
            return Ok(e);
        }
        if !self.is_op(",") && !self.is_op("}") {
            return self.err("invalid syntax. Perhaps you forgot a comma?");
        }
        let items = self.rest_of_display(vec![first], "}")?;
        Ok(Self::mk(ExprKind::Set(items), start))
    }

    fn rest_of_dict(
        &mut self,
        mut items: Vec<(Option<Expr>, Expr)>,
        start: usize,
    ) -> PResult<Expr> {
        while self.is_op(",") {
            self.bump();
            if self.is_op("}") {
                break;
            }
            if self.is_op("**") {
                self.bump();
                items.push((None, self.binary(1)?));
            } else {
                let k = self.expression()?;
                self.expect_op(":")?;
                items.push((Some(k), self.expression()?));
            }
        }
        self.expect_op("}")?;
        Ok(Self::mk(ExprKind::Dict(items), start))
    }

    /// Adjacent string literals, concatenated.
    fn strings(&mut self) -> PResult<Expr> {
        let start = self.offset();
        let mut any_f = false;
        let mut any_bytes = false;
        let mut any_str = false;
        let mut text = String::new();
        let mut bytes = Vec::new();
        let mut first_u = None;
        while let Tok::Str {
            kind,
            text: t,
            bytes: b,
            u_prefix,
        } = self.tok()
        {
            first_u.get_or_insert(*u_prefix);
            match kind {
                StrKind::FString => any_f = true,
                StrKind::Bytes => any_bytes = true,
                StrKind::Str => any_str = true,
            }
            text.push_str(t);
            bytes.extend_from_slice(b);
            self.bump();
        }
        if any_bytes && (any_str || any_f) {
            return Err(PyCallError::syntax(
                "cannot mix bytes and nonbytes literals",
                start,
            ));
        }
        let kind = if any_f {
            ExprKind::Unsupported("JoinedStr")
        } else if any_bytes {
            ExprKind::Const {
                value: PyVal::Bytes(bytes),
                u_prefix: false,
            }
        } else {
            ExprKind::Const {
                value: PyVal::Str(text),
                u_prefix: first_u.unwrap_or(false),
            }
        };
        Ok(Self::mk(kind, start))
    }
}

/// Parses one Python expression in `eval` mode (a bare `a, b` is a tuple;
/// trailing newlines and comments are fine; leading whitespace is an
/// indentation error, as in CPython).
///
/// ```
/// use toolgym_reward::pycall::{parse_expression, ExprKind};
/// let e = parse_expression("[f(x=1), g()]").unwrap();
/// assert!(matches!(e.kind, ExprKind::List(ref items) if items.len() == 2));
/// assert!(parse_expression("[f(x=1)").is_err());
/// ```
pub fn parse_expression(src: &str) -> Result<Expr, PyCallError> {
    parse_expression_in(src, false)
}

/// [`parse_expression`], with [`CallSyntax::unicode_text`] when
/// `unicode_text`.
fn parse_expression_in(src: &str, unicode_text: bool) -> Result<Expr, PyCallError> {
    let (toks, lex_deferred) = lex(src, unicode_text)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
        deferred: None,
    };
    p.skip_newlines();
    if matches!(p.tok(), Tok::End) {
        return p.err("invalid syntax (empty expression)");
    }
    let start = p.offset();
    let first = p.star_named_expression()?;
    let e = if p.is_op(",") {
        let mut items = vec![first];
        while p.is_op(",") {
            p.bump();
            if matches!(p.tok(), Tok::Newline | Tok::End) {
                break;
            }
            items.push(p.star_named_expression()?);
        }
        Parser::mk(ExprKind::Tuple(items), start)
    } else {
        first
    };
    p.skip_newlines();
    if !matches!(p.tok(), Tok::End) {
        return p.err("invalid syntax");
    }
    // Capability gaps last: a syntax error anywhere wins, as in CPython.
    match lex_deferred.or(p.deferred) {
        Some(gap) => Err(gap),
        None => Ok(e),
    }
}

// ---------------------------------------------------------------------------
// unparse (CPython's ast.unparse)
// ---------------------------------------------------------------------------

/// Operator precedence levels of CPython's `ast._Precedence`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Prec(u8);

impl Prec {
    const TUPLE: Prec = Prec(2);
    const TEST: Prec = Prec(4);
    const OR: Prec = Prec(5);
    const AND: Prec = Prec(6);
    const NOT: Prec = Prec(7);
    const CMP: Prec = Prec(8);
    const EXPR: Prec = Prec(9);
    const BOR: Prec = Prec(9);
    const BXOR: Prec = Prec(10);
    const BAND: Prec = Prec(11);
    const SHIFT: Prec = Prec(12);
    const ARITH: Prec = Prec(13);
    const TERM: Prec = Prec(14);
    const FACTOR: Prec = Prec(15);
    const POWER: Prec = Prec(16);
    const ATOM: Prec = Prec(18);

    fn next(self) -> Prec {
        Prec(self.0 + 1)
    }
}

impl Expr {
    /// CPython's `ast.unparse(node)` of this node: normalised spacing,
    /// `repr` quoting, minimal parentheses. Fails on nodes kept without a
    /// tree ([`ExprKind::Lambda`], [`ExprKind::Unsupported`]).
    ///
    /// ```
    /// use toolgym_reward::pycall::parse_expression;
    /// let e = parse_expression("g( 1,'it\\'s' , k = (1+2)*3 )").unwrap();
    /// assert_eq!(e.unparse().unwrap(), "g(1, \"it's\", k=(1 + 2) * 3)");
    /// ```
    pub fn unparse(&self) -> Result<String, PyCallError> {
        let mut out = String::new();
        self.unparse_into(&mut out, Prec::TEST)?;
        Ok(out)
    }

    fn unparse_into(&self, out: &mut String, ctx: Prec) -> PResult<()> {
        let paren = |out: &mut String, need: bool, open: bool| {
            if need {
                out.push(if open { '(' } else { ')' });
            }
        };
        match &self.kind {
            ExprKind::Const { value, u_prefix } => {
                if *u_prefix {
                    out.push('u');
                }
                match value {
                    PyVal::Float(f) => out.push_str(&inf_fix(&float_repr(*f))),
                    PyVal::Complex(r, i) => out.push_str(&inf_fix(&complex_repr(*r, *i))),
                    PyVal::Ellipsis => out.push_str("..."),
                    v => v.repr_into(out),
                }
            }
            ExprKind::Name(n) => out.push_str(n),
            ExprKind::Attribute(value, attr) => {
                value.unparse_into(out, Prec::ATOM)?;
                if matches!(
                    value.kind,
                    ExprKind::Const {
                        value: PyVal::Int(_),
                        ..
                    }
                ) {
                    out.push(' ');
                }
                out.push('.');
                out.push_str(attr);
            }
            ExprKind::Call {
                func,
                args,
                keywords,
            } => {
                func.unparse_into(out, Prec::ATOM)?;
                out.push('(');
                let mut first = true;
                for a in args {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    a.unparse_into(out, Prec::TEST)?;
                }
                for k in keywords {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    match &k.name {
                        Some(n) => {
                            out.push_str(n);
                            out.push('=');
                            k.value.unparse_into(out, Prec::TEST)?;
                        }
                        None => {
                            out.push_str("**");
                            k.value.unparse_into(out, Prec::TEST)?;
                        }
                    }
                }
                out.push(')');
            }
            ExprKind::Subscript(value, index) => {
                value.unparse_into(out, Prec::ATOM)?;
                out.push('[');
                match &index.kind {
                    ExprKind::Tuple(items) if !items.is_empty() => {
                        items_view(items, out)?;
                    }
                    _ => index.unparse_into(out, Prec::TEST)?,
                }
                out.push(']');
            }
            ExprKind::Slice(lower, upper, step) => {
                if let Some(l) = lower {
                    l.unparse_into(out, Prec::TEST)?;
                }
                out.push(':');
                if let Some(u) = upper {
                    u.unparse_into(out, Prec::TEST)?;
                }
                if let Some(s) = step {
                    out.push(':');
                    s.unparse_into(out, Prec::TEST)?;
                }
            }
            ExprKind::List(items) => {
                out.push('[');
                join(items, out)?;
                out.push(']');
            }
            ExprKind::Tuple(items) => {
                let need = items.is_empty() || ctx > Prec::TUPLE;
                paren(out, need, true);
                items_view(items, out)?;
                paren(out, need, false);
            }
            ExprKind::Set(items) => {
                out.push('{');
                join(items, out)?;
                out.push('}');
            }
            ExprKind::Dict(items) => {
                out.push('{');
                for (n, (k, v)) in items.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    match k {
                        Some(k) => {
                            k.unparse_into(out, Prec::TEST)?;
                            out.push_str(": ");
                            v.unparse_into(out, Prec::TEST)?;
                        }
                        None => {
                            out.push_str("**");
                            v.unparse_into(out, Prec::EXPR)?;
                        }
                    }
                }
                out.push('}');
            }
            ExprKind::Starred(value) => {
                out.push('*');
                value.unparse_into(out, Prec::EXPR)?;
            }
            ExprKind::Unary(op, operand) => {
                let (sym, prec) = match op {
                    UnaryOp::Neg => ("-", Prec::FACTOR),
                    UnaryOp::Pos => ("+", Prec::FACTOR),
                    UnaryOp::Invert => ("~", Prec::FACTOR),
                    UnaryOp::Not => ("not ", Prec::NOT),
                };
                let need = ctx > prec;
                paren(out, need, true);
                out.push_str(sym);
                operand.unparse_into(out, prec)?;
                paren(out, need, false);
            }
            ExprKind::Binary(op, left, right) => {
                let prec = op.prec();
                let need = ctx > prec;
                let (lp, rp) = if *op == BinOp::Pow {
                    (prec.next(), prec)
                } else {
                    (prec, prec.next())
                };
                paren(out, need, true);
                left.unparse_into(out, lp)?;
                out.push(' ');
                out.push_str(op.symbol());
                out.push(' ');
                right.unparse_into(out, rp)?;
                paren(out, need, false);
            }
            ExprKind::Compare(left, ops) => {
                let need = ctx > Prec::CMP;
                paren(out, need, true);
                left.unparse_into(out, Prec::CMP.next())?;
                for (op, e) in ops {
                    out.push(' ');
                    out.push_str(op.symbol());
                    out.push(' ');
                    e.unparse_into(out, Prec::CMP.next())?;
                }
                paren(out, need, false);
            }
            ExprKind::BoolOp(and, values) => {
                let mut prec = if *and { Prec::AND } else { Prec::OR };
                let need = ctx > prec;
                paren(out, need, true);
                for (n, v) in values.iter().enumerate() {
                    if n > 0 {
                        out.push_str(if *and { " and " } else { " or " });
                    }
                    prec = prec.next();
                    v.unparse_into(out, prec)?;
                }
                paren(out, need, false);
            }
            ExprKind::IfExp { test, body, orelse } => {
                let need = ctx > Prec::TEST;
                paren(out, need, true);
                body.unparse_into(out, Prec::TEST.next())?;
                out.push_str(" if ");
                test.unparse_into(out, Prec::TEST.next())?;
                out.push_str(" else ");
                orelse.unparse_into(out, Prec::TEST)?;
                paren(out, need, false);
            }
            ExprKind::Lambda(_) | ExprKind::Unsupported(_) => {
                return Err(PyCallError::new(
                    PyCallErrorKind::Unsupported(format!(
                        "cannot unparse {}",
                        self.kind.ast_class()
                    )),
                    self.offset,
                ))
            }
        }
        Ok(())
    }
}

/// CPython writes infinities in source as `1e309`.
fn inf_fix(s: &str) -> String {
    s.replace("inf", "1e309").replace("nan", "(1e309-1e309)")
}

fn join(items: &[Expr], out: &mut String) -> PResult<()> {
    for (n, e) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        e.unparse_into(out, Prec::TEST)?;
    }
    Ok(())
}

fn items_view(items: &[Expr], out: &mut String) -> PResult<()> {
    join(items, out)?;
    if items.len() == 1 {
        out.push(',');
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// the general call API
// ---------------------------------------------------------------------------

/// One call read by [`parse_calls`]: its dotted name, keyword arguments in
/// order, and positional arguments (reported, never dropped).
#[derive(Clone, Debug, PartialEq)]
pub struct PyCall {
    /// The callee, e.g. `get_weather` or `math.factorial`.
    pub name: String,
    /// Keyword arguments, in source order.
    pub args: Vec<(String, PyVal)>,
    /// Positional arguments, in source order.
    pub positional: Vec<PyVal>,
    /// Byte offset of the call in the parsed text.
    pub offset: usize,
}

impl PyCall {
    /// As a [`crate::Call`] (`{"name", "arguments"}`), values converted with
    /// [`PyVal::to_json`]. Positional arguments cannot be named and make
    /// this fail.
    ///
    /// ```
    /// use toolgym_reward::pycall::parse_call;
    /// let c = parse_call("get_weather(city='Paris', days=(1, 2))").unwrap().to_call().unwrap();
    /// assert_eq!(c.arguments["days"], serde_json::json!([1, 2]));
    /// ```
    pub fn to_call(&self) -> Result<crate::Call, PyCallError> {
        self.to_call_with(|v| v.to_json().map_err(|e| e.to_string()))
    }

    /// As [`PyCall::to_call`], with each argument value converted by
    /// `convert` (its error message is reported with the argument's name).
    pub fn to_call_with(
        &self,
        convert: impl Fn(&PyVal) -> Result<Value, String>,
    ) -> Result<crate::Call, PyCallError> {
        let not_json = |m: String| PyCallError::new(PyCallErrorKind::NotJson(m), self.offset);
        if !self.positional.is_empty() {
            return Err(not_json(format!(
                "call {} has {} positional argument(s), which cannot be named",
                self.name,
                self.positional.len()
            )));
        }
        let mut arguments = Map::new();
        for (k, v) in &self.args {
            let v =
                convert(v).map_err(|e| not_json(format!("argument {k} of {}: {e}", self.name)))?;
            arguments.insert(k.clone(), v);
        }
        Ok(crate::Call {
            name: self.name.clone(),
            arguments,
        })
    }
}

/// The dotted name of a callee (`a.b.c`), if it is one.
pub fn dotted_name(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Name(n) => Some(n.clone()),
        ExprKind::Attribute(value, attr) => {
            let mut s = dotted_name(value)?;
            s.push('.');
            s.push_str(attr);
            Some(s)
        }
        _ => None,
    }
}

impl Expr {
    /// The literal value of this node, as Python's `ast.literal_eval`
    /// reads it: constants, list / tuple / set / dict displays, and `+` /
    /// `-` before a number. Anything else is
    /// [`PyCallErrorKind::NotALiteral`].
    pub fn to_literal(&self) -> Result<PyVal, PyCallError> {
        self.literal(false)
    }

    /// [`Expr::to_literal`], optionally reading the names `true`, `false`
    /// and `null` as `True`, `False` and `None` (JSON constants).
    fn literal(&self, json_constants: bool) -> Result<PyVal, PyCallError> {
        let lits = |items: &[Expr]| lits(items, json_constants);
        let not_lit = |e: &Expr, what: &str| {
            Err(PyCallError::new(
                PyCallErrorKind::NotALiteral(what.to_string()),
                e.offset,
            ))
        };
        let unhashable = |e: &Expr, v: &PyVal| {
            PyCallError::new(
                PyCallErrorKind::NotALiteral(format!("unhashable {} as key", v.py_type().name())),
                e.offset,
            )
        };
        match &self.kind {
            ExprKind::Const { value, .. } => Ok(value.clone()),
            ExprKind::List(items) => Ok(PyVal::List(lits(items)?)),
            ExprKind::Tuple(items) => Ok(PyVal::Tuple(lits(items)?)),
            ExprKind::Set(items) => {
                let mut b = DictBuilder::default();
                for (e, v) in items.iter().zip(lits(items)?) {
                    if !b.insert(v.clone(), PyVal::None) {
                        return Err(unhashable(e, &v));
                    }
                }
                Ok(b.into_set())
            }
            ExprKind::Dict(items) => {
                let mut b = DictBuilder::default();
                for (k, v) in items {
                    let Some(k) = k else {
                        return not_lit(v, "** unpacking in a dict");
                    };
                    let kv = k.literal(json_constants)?;
                    let vv = v.literal(json_constants)?;
                    if !b.insert(kv.clone(), vv) {
                        return Err(unhashable(k, &kv));
                    }
                }
                Ok(b.into_dict())
            }
            ExprKind::Unary(op @ (UnaryOp::Neg | UnaryOp::Pos), operand) => {
                match (&operand.kind, op) {
                    (
                        ExprKind::Const {
                            value: PyVal::Int(i),
                            ..
                        },
                        UnaryOp::Neg,
                    ) => Ok(PyVal::Int(-*i)),
                    (
                        ExprKind::Const {
                            value: PyVal::Float(f),
                            ..
                        },
                        UnaryOp::Neg,
                    ) => Ok(PyVal::Float(-*f)),
                    (
                        ExprKind::Const {
                            value: PyVal::Complex(r, i),
                            ..
                        },
                        UnaryOp::Neg,
                    ) => Ok(PyVal::Complex(-*r, -*i)),
                    (
                        ExprKind::Const {
                            value: v @ (PyVal::Int(_) | PyVal::Float(_) | PyVal::Complex(..)),
                            ..
                        },
                        UnaryOp::Pos,
                    ) => Ok(v.clone()),
                    _ => not_lit(self, "a sign before a non-number"),
                }
            }
            ExprKind::Name(n)
                if json_constants && matches!(n.as_str(), "true" | "false" | "null") =>
            {
                Ok(match n.as_str() {
                    "true" => PyVal::Bool(true),
                    "false" => PyVal::Bool(false),
                    _ => PyVal::None,
                })
            }
            // `ast.literal_eval` also reads `real ± imaginary` (how Python
            // writes complex numbers: repr(-3j) is "(-0-3j)").
            ExprKind::Binary(op @ (BinOp::Add | BinOp::Sub), left, right) => {
                let real = match (&left.kind, left.literal(json_constants)) {
                    (ExprKind::Const { .. } | ExprKind::Unary(..), Ok(PyVal::Int(i))) => i as f64,
                    (ExprKind::Const { .. } | ExprKind::Unary(..), Ok(PyVal::Float(f))) => f,
                    _ => return not_lit(self, "a BinOp expression"),
                };
                let ExprKind::Const {
                    value: PyVal::Complex(re, im),
                    ..
                } = &right.kind
                else {
                    return not_lit(self, "a BinOp expression");
                };
                // int/float ± complex: the real side becomes complex(real, 0).
                Ok(match op {
                    BinOp::Add => PyVal::Complex(real + re, 0.0 + im),
                    _ => PyVal::Complex(real - re, 0.0 - im),
                })
            }
            ExprKind::Name(n) => not_lit(self, &format!("the name {n}")),
            other => not_lit(self, &format!("a {} expression", other.ast_class())),
        }
    }
}

fn lits(items: &[Expr], json_constants: bool) -> PResult<Vec<PyVal>> {
    items.iter().map(|e| e.literal(json_constants)).collect()
}

/// How [`call_of`] reads a call: JSON constants, and the original text of
/// names replaced by placeholders (by byte offset).
#[derive(Default)]
struct CallReading<'a> {
    json_constants: bool,
    names: HashMap<usize, &'a str>,
}

fn call_of(e: &Expr, how: &CallReading<'_>) -> PResult<PyCall> {
    let ExprKind::Call {
        func,
        args,
        keywords,
    } = &e.kind
    else {
        return Err(PyCallError::new(
            PyCallErrorKind::NotACall(format!("found a {} expression", e.kind.ast_class())),
            e.offset,
        ));
    };
    let name = match how.names.get(&func.offset) {
        Some(original) if matches!(func.kind, ExprKind::Name(_)) => Some(original.to_string()),
        _ => dotted_name(func),
    };
    let name = name.ok_or_else(|| {
        PyCallError::new(
            PyCallErrorKind::NotACall(format!(
                "the callee is a {} expression, not a dotted name",
                func.kind.ast_class()
            )),
            func.offset,
        )
    })?;
    let mut positional = Vec::with_capacity(args.len());
    for a in args {
        if matches!(a.kind, ExprKind::Starred(_)) {
            return Err(PyCallError::new(PyCallErrorKind::Unpacking, a.offset));
        }
        positional.push(a.literal(how.json_constants)?);
    }
    let mut named: Vec<(String, PyVal)> = Vec::with_capacity(keywords.len());
    for k in keywords {
        let Some(n) = &k.name else {
            return Err(PyCallError::new(PyCallErrorKind::Unpacking, k.offset));
        };
        let n = how.names.get(&k.offset).copied().unwrap_or(n);
        if named.iter().any(|(m, _)| m == n) {
            return Err(PyCallError::new(
                PyCallErrorKind::DuplicateKeyword(n.to_string()),
                k.offset,
            ));
        }
        named.push((n.to_string(), k.value.literal(how.json_constants)?));
    }
    Ok(PyCall {
        name,
        args: named,
        positional,
        offset: e.offset,
    })
}

/// Parses a list of calls: `[f(a=1), g.h(2)]`, a tuple or bare sequence
/// `f(a=1), g()`, one call `f(a=1)`, or `[]`. Surrounding whitespace is
/// ignored. Argument values must be literals ([`Expr::to_literal`]);
/// repeated keywords and `*` / `**` unpacking are errors.
pub fn parse_calls(text: &str) -> Result<Vec<PyCall>, PyCallError> {
    parse_calls_with(text, CallSyntax::python())
}

/// Relaxations of Python syntax for data sets whose calls are written "in
/// Python call syntax" without being Python (ToolACE's assistant turns:
/// `[Get Stock Quote(symbol="A", from="2024-01-01")]`). See
/// [`parse_calls_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallSyntax {
    /// Free-form names, kept as written (trimmed): a callee in the call
    /// list may be any text up to its `(` without brackets, braces,
    /// quotes, `,`, `=` or newlines (`Get Stock Quote(...)`,
    /// `get-weather(...)`, `v1/search(...)`); a keyword may be any run of
    /// letters, digits and `_ . - $ @` that does not start with a digit or
    /// `-`, Python keywords included (`start-date=...`, `from=...`).
    pub free_names: bool,
    /// The names `true`, `false` and `null` in values read as `True`,
    /// `False` and `None`.
    pub json_constants: bool,
    /// Strings are Unicode text, as JSON holds them: a `\uD83D\uDE00`
    /// pair of surrogate escapes in one literal is one character (what
    /// `json.dumps` then `json.loads` of the value give, so a data set's
    /// call keeps its emoji), and any other surrogate, halves of a pair in
    /// two literals joined by juxtaposition included, is an error
    /// ([`PyCallErrorKind::NotJson`]). Off, a surrogate reads as U+FFFD
    /// (Python's string would hold it as it is).
    pub unicode_text: bool,
}

impl CallSyntax {
    /// Python's own syntax (what [`parse_calls`] accepts).
    pub const fn python() -> Self {
        Self {
            free_names: false,
            json_constants: false,
            unicode_text: false,
        }
    }

    /// Every relaxation on: the syntax of ToolACE-style data sets.
    pub const fn dataset() -> Self {
        Self {
            free_names: true,
            json_constants: true,
            unicode_text: true,
        }
    }
}

/// [`parse_calls`] with the relaxations of `syntax`. Error offsets are
/// byte offsets into `text`, as with [`parse_calls`].
///
/// ```
/// use toolgym_reward::pycall::{parse_calls, parse_calls_with, CallSyntax, PyVal};
/// let text = "[Get Stock Quote(symbol='A', from=true), get-news(max-items=3)]";
/// assert!(parse_calls(text).is_err());
/// let calls = parse_calls_with(text, CallSyntax::dataset()).unwrap();
/// assert_eq!(calls[0].name, "Get Stock Quote");
/// assert_eq!(calls[0].args[1], ("from".to_string(), PyVal::Bool(true)));
/// assert_eq!(calls[1].name, "get-news");
/// assert_eq!(calls[1].args[0].0, "max-items");
/// ```
pub fn parse_calls_with(text: &str, syntax: CallSyntax) -> Result<Vec<PyCall>, PyCallError> {
    let trimmed = text.trim_start();
    let lead = text.len() - trimmed.len();
    let shift = |mut e: PyCallError| {
        e.offset += lead;
        e
    };
    let src = trimmed.trim_end();
    let mut how = CallReading {
        json_constants: syntax.json_constants,
        names: HashMap::new(),
    };
    let spans = if syntax.free_names {
        free_name_spans(src)
    } else {
        Vec::new()
    };
    let mut placeheld = String::with_capacity(src.len());
    let mut last = 0;
    for &(start, end) in &spans {
        placeheld.push_str(&src[last..start]);
        placeheld.extend(std::iter::repeat_n('_', end - start));
        how.names.insert(start, &src[start..end]);
        last = end;
    }
    placeheld.push_str(&src[last..]);
    let e = parse_expression_in(&placeheld, syntax.unicode_text).map_err(shift)?;
    let calls = match &e.kind {
        ExprKind::Call { .. } => vec![call_of(&e, &how)],
        ExprKind::List(items) | ExprKind::Tuple(items) => {
            items.iter().map(|c| call_of(c, &how)).collect()
        }
        other => {
            return Err(shift(PyCallError::new(
                PyCallErrorKind::NotACall(format!(
                    "expected a call or a list of calls, found a {} expression",
                    other.ast_class()
                )),
                e.offset,
            )))
        }
    };
    calls
        .into_iter()
        .map(|c| {
            c.map(|mut c| {
                c.offset += lead;
                c
            })
            .map_err(shift)
        })
        .collect()
}

/// Whether `s` is a Python identifier that is not a keyword.
fn is_plain_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_id_start) && chars.all(is_id_continue) && !is_keyword(s)
}

/// The byte spans of the names in a call list that Python cannot read
/// (see [`CallSyntax::free_names`]): callees that are not dotted names,
/// keywords that are not identifiers. Strings, brackets and comments are
/// skipped the way Python's tokenizer does, so a span never starts inside
/// a value. Each span is replaced by a same-length placeholder identifier
/// (`___`) before parsing, which keeps every error offset right.
fn free_name_spans(src: &str) -> Vec<(usize, usize)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Frame {
        /// The brackets of the call list.
        Calls,
        /// The parentheses of one call's arguments.
        Args,
        /// Anything else.
        Other,
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Expect {
        Nothing,
        Callee,
        Keyword,
    }
    let b = src.as_bytes();
    let listed = b.first() == Some(&b'[');
    let mut stack: Vec<Frame> = Vec::new();
    let mut spans = Vec::new();
    let mut expect = if listed {
        Expect::Nothing
    } else {
        Expect::Callee
    };
    let mut i = 0;
    while i < b.len() {
        if expect != Expect::Nothing {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let start = i;
            if expect == Expect::Callee {
                let mut j = i;
                while j < b.len() && !b"()[]{},=\"'\n".contains(&b[j]) {
                    j += 1;
                }
                if b.get(j) == Some(&b'(') {
                    let name = src[start..j].trim_end();
                    let dotted = name.split('.').all(is_plain_identifier);
                    if !name.is_empty() && !dotted {
                        spans.push((start, start + name.len()));
                    }
                    i = j;
                }
            } else {
                let mut j = i;
                while j < b.len()
                    && (b[j].is_ascii_alphanumeric() || b"_.-$@".contains(&b[j]) || b[j] >= 0x80)
                {
                    j += 1;
                }
                let mut k = j;
                while k < b.len() && matches!(b[k], b' ' | b'\t') {
                    k += 1;
                }
                let assigns = b.get(k) == Some(&b'=') && b.get(k + 1) != Some(&b'=');
                let starts_well = j > start && !b[start].is_ascii_digit() && b[start] != b'-';
                if assigns && starts_well && !is_plain_identifier(&src[start..j]) {
                    spans.push((start, j));
                }
                i = j;
            }
            expect = Expect::Nothing;
            continue;
        }
        let level = stack.last().copied();
        let at_calls = level == Some(Frame::Calls) || (level.is_none() && !listed);
        match b[i] {
            q @ (b'"' | b'\'') => {
                let triple = b.get(i..i + 3) == Some(&[q; 3][..]);
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if b[i] == b'\\' {
                        i += 2;
                    } else if b[i] == q && (!triple || b.get(i..i + 3) == Some(&[q; 3][..])) {
                        i += if triple { 3 } else { 1 };
                        break;
                    } else if b[i] == b'\n' && !triple {
                        break;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'[' if listed && i == 0 => {
                stack.push(Frame::Calls);
                expect = Expect::Callee;
            }
            b'(' if at_calls => {
                stack.push(Frame::Args);
                expect = Expect::Keyword;
            }
            b'(' | b'[' | b'{' => stack.push(Frame::Other),
            b')' | b']' | b'}' => {
                stack.pop();
            }
            b',' if at_calls => expect = Expect::Callee,
            b',' if level == Some(Frame::Args) => expect = Expect::Keyword,
            _ => {}
        }
        i += 1;
    }
    spans
}

/// Parses exactly one call (see [`parse_calls`]).
pub fn parse_call(text: &str) -> Result<PyCall, PyCallError> {
    let mut calls = parse_calls(text)?;
    if calls.len() != 1 {
        return Err(PyCallError::new(
            PyCallErrorKind::NotACall(format!("expected one call, found {}", calls.len())),
            0,
        ));
    }
    calls
        .pop()
        .ok_or_else(|| PyCallError::new(PyCallErrorKind::NotACall("expected one call".into()), 0))
}

/// Parses one literal value (`{'a': [1, 2.5, None]}`), surrounding
/// whitespace ignored.
///
/// ```
/// use toolgym_reward::pycall::{parse_literal, PyVal};
/// assert_eq!(parse_literal(" -2.5e3 ").unwrap(), PyVal::Float(-2500.0));
/// assert_eq!(parse_literal("'''a\nb'''").unwrap(), PyVal::Str("a\nb".into()));
/// ```
pub fn parse_literal(text: &str) -> Result<PyVal, PyCallError> {
    parse_literal_with(text, CallSyntax::python())
}

/// [`parse_literal`] with the value relaxations of `syntax`
/// ([`CallSyntax::json_constants`]).
///
/// ```
/// use toolgym_reward::pycall::{parse_literal_with, CallSyntax, PyVal};
/// let v = parse_literal_with("[true, null]", CallSyntax::dataset()).unwrap();
/// assert_eq!(v, PyVal::List(vec![PyVal::Bool(true), PyVal::None]));
/// ```
pub fn parse_literal_with(text: &str, syntax: CallSyntax) -> Result<PyVal, PyCallError> {
    let trimmed = text.trim_start();
    let lead = text.len() - trimmed.len();
    parse_expression_in(trimmed.trim_end(), syntax.unicode_text)
        .and_then(|e| e.literal(syntax.json_constants))
        .map_err(|mut e| {
            e.offset += lead;
            e
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> PyVal {
        parse_literal(s).unwrap()
    }

    #[test]
    fn literals() {
        assert_eq!(lit("1_000"), PyVal::Int(1000));
        assert_eq!(lit("0x1F"), PyVal::Int(31));
        assert_eq!(lit("0o17"), PyVal::Int(15));
        assert_eq!(lit("0b101"), PyVal::Int(5));
        assert_eq!(lit("1e3"), PyVal::Float(1000.0));
        assert_eq!(lit(".5"), PyVal::Float(0.5));
        assert_eq!(lit("5."), PyVal::Float(5.0));
        assert_eq!(lit("-3"), PyVal::Int(-3));
        assert_eq!(lit("+3"), PyVal::Int(3));
        assert_eq!(lit("2j"), PyVal::Complex(0.0, 2.0));
        // Complex numbers as Python writes them (found by fuzzing: repr(-3J)).
        assert_eq!(lit("(-0-3j)"), PyVal::Complex(0.0, -3.0));
        assert_eq!(lit("1.5+2j"), PyVal::Complex(1.5, 2.0));
        assert!(lit("(-0-3j)").py_eq(&lit("-3J")));
        assert!(parse_literal("1+2").is_err());
        assert!(parse_literal("2j+1").is_err());
        assert!(parse_literal("True+1j").is_err());
        assert_eq!(lit("'a' \"b\" '''c'''"), PyVal::Str("abc".into()));
        assert_eq!(lit(r"'\x41\u00e9\n\t\\'"), PyVal::Str("Aé\n\t\\".into()));
        assert_eq!(lit(r"r'\n'"), PyVal::Str("\\n".into()));
        assert_eq!(lit(r"b'\x00a'"), PyVal::Bytes(vec![0, b'a']));
        assert_eq!(lit("(1,)"), PyVal::Tuple(vec![PyVal::Int(1)]));
        assert_eq!(lit("()"), PyVal::Tuple(vec![]));
        assert_eq!(lit("{1, 1.0, True}"), PyVal::Set(vec![PyVal::Int(1)]));
        assert_eq!(
            lit("{'a': 1, 'a': 2, 'b': None}"),
            PyVal::Dict(vec![
                (PyVal::Str("a".into()), PyVal::Int(2)),
                (PyVal::Str("b".into()), PyVal::None)
            ])
        );
        assert_eq!(
            lit("[1, # c\n 2,\n]"),
            PyVal::List(vec![PyVal::Int(1), PyVal::Int(2)])
        );
        assert_eq!(lit("..."), PyVal::Ellipsis);
    }

    #[test]
    fn errors_have_offsets() {
        let e = parse_literal("[1, 2").unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(matches!(e.kind, PyCallErrorKind::Syntax(ref m) if m.contains("never closed")));
        let e = parse_calls("[f(a=1), g(b=x)]").unwrap_err();
        assert_eq!(e.offset, 13);
        assert!(matches!(e.kind, PyCallErrorKind::NotALiteral(_)));
        let e = parse_calls("[f(a=1, a=2)]").unwrap_err();
        assert!(matches!(e.kind, PyCallErrorKind::DuplicateKeyword(_)));
        for bad in [
            "'abc",
            "0777",
            "1__0",
            "f(x=1, 2)",
            "f(**k, x)",
            "f(from=1)",
            "f(True=1)",
            "[1, 2)",
            "1)",
            "'\\xZZ'",
            "b'é'",
            "b'a' 'b'",
            "\u{a0}1",
            " 1",
            "f(x=1)\ng()",
            "$",
            "1abc",
        ] {
            assert!(parse_expression(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(matches!(
            parse_literal(&deep).unwrap_err().kind,
            PyCallErrorKind::TooDeep
        ));
        let neg = "-".repeat(10_000) + "1";
        assert!(matches!(
            parse_literal(&neg).unwrap_err().kind,
            PyCallErrorKind::TooDeep
        ));
        let nots = "not ".repeat(10_000) + "1";
        assert!(parse_expression(&nots).is_err());
        let pow = "2**".repeat(10_000) + "1";
        assert!(parse_expression(&pow).is_err());
        let ok = "[".repeat(100) + &"]".repeat(100);
        assert!(parse_literal(&ok).is_ok());
        // Chains nest on the left without brackets: each link counts.
        for chain in [
            "1".to_string() + &"+1".repeat(50_000),
            "y".to_string() + &"[0]".repeat(50_000),
            "g".to_string() + &"()".repeat(50_000),
            "a".to_string() + &".b".repeat(50_000),
        ] {
            let call = format!("[f(x={chain})]");
            let e = parse_calls(&call).unwrap_err();
            assert!(matches!(e.kind, PyCallErrorKind::TooDeep), "{e}");
        }
        // A short chain parses (and is then no literal, as in Python).
        let e = parse_calls(&format!("[f(x=1{})]", "+1".repeat(150))).unwrap_err();
        assert!(matches!(e.kind, PyCallErrorKind::NotALiteral(_)), "{e}");
        let nested_calls = "f(x=".repeat(150) + "1" + &")".repeat(150);
        assert!(parse_expression(&nested_calls).is_ok());
    }

    #[test]
    fn calls() {
        let c = parse_calls(" [a.b.c(1, x='y,)]', z=[{'k': (1, 2)}]), g()] ").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "a.b.c");
        assert_eq!(c[0].positional, vec![PyVal::Int(1)]);
        assert_eq!(c[0].args[0].1, PyVal::Str("y,)]".into()));
        assert_eq!(c[0].offset, 2);
        assert_eq!(c[1].name, "g");
        assert!(parse_calls("[]").unwrap().is_empty());
        assert_eq!(parse_calls("f(a=1), g(b=2)").unwrap().len(), 2);
        assert!(parse_calls("[1, 2]").is_err());
        assert!(parse_calls("f()()").is_err());
        assert!(parse_calls("f(*a)").is_err());
    }

    #[test]
    fn repr_and_unparse() {
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1e15), "1000000000000000.0");
        assert_eq!(float_repr(1e-5), "1e-05");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(1.5e-7), "1.5e-07");
        assert_eq!(float_repr(-0.0), "-0.0");
        assert_eq!(float_repr(123456789012345680.0), "1.2345678901234568e+17");
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("\u{a0}é\u{1}"), "'\\xa0é\\x01'");
        assert_eq!(lit("{'a': (1,), 'b': {1}}").repr(), "{'a': (1,), 'b': {1}}");
        for (src, want) in [
            ("g( 1,2 )", "g(1, 2)"),
            ("g(-2**2)", "g(-2 ** 2)"),
            ("g((-2)**2)", "g((-2) ** 2)"),
            ("g(a if b else c)", "g(a if b else c)"),
            ("g(a and (b or c))", "g(a and (b or c))"),
            ("g(*a, **k)", "g(*a, **k)"),
            ("g({1: 2, **k})", "g({1: 2, **k})"),
            ("g(a[1:2, ::3])", "g(a[1:2, ::3])"),
            ("g(a[1,])", "g(a[1,])"),
            ("g(1e16, 1e-5, 2j, 1.5)", "g(1e+16, 1e-05, 2j, 1.5)"),
            ("g(u\"x\")", "g(u'x')"),
            ("g((1,))", "g((1,))"),
            ("g(1 .real)", "g(1 .real)"),
            ("g(--1)", "g(--1)"),
            (
                "g(not a, a < b <= c, x not in y)",
                "g(not a, a < b <= c, x not in y)",
            ),
            ("g(1e400)", "g(1e309)"),
        ] {
            assert_eq!(
                parse_expression(src).unwrap().unparse().unwrap(),
                want,
                "{src}"
            );
        }
    }

    #[test]
    fn py_eq_semantics() {
        assert!(PyVal::Bool(true).py_eq(&PyVal::Int(1)));
        assert!(PyVal::Int(1).py_eq(&PyVal::Float(1.0)));
        assert!(!PyVal::Float(f64::NAN).py_eq(&PyVal::Float(f64::NAN)));
        assert!(!PyVal::List(vec![]).py_eq(&PyVal::Tuple(vec![])));
        assert!(lit("{'a': 1, 'b': 2}").py_eq(&lit("{'b': 2.0, 'a': True}")));
    }
}
