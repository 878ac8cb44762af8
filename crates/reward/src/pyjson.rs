//! JSON with the semantics of Python's `json` module, for the `tool-n1`
//! rules that must agree bit for bit with the released Python reward script.
//!
//! Where Python's `json` and RFC 8259 (serde_json) disagree, this module
//! follows Python:
//! - `NaN`, `Infinity` and `-Infinity` are accepted; `1e400` overflows to
//!   infinity.
//! - Integers have arbitrary precision (kept as their decimal text beyond
//!   `i64`); `-0` is the integer 0; more than [`MAX_INT_DIGITS`] digits is an
//!   error (Python raises `ValueError`).
//! - `\uD800`-style lone surrogates in strings are kept (stored as WTF-8).
//! - Duplicate object keys: the last value wins.
//! - Nesting deeper than [`MAX_DEPTH`] is an error (Python raises
//!   `RecursionError`; the exact depth depends on the caller's stack, so any
//!   such input scores 0 either way: no ground truth can be that deep).
//!
//! The parser is iterative (no recursion on the Rust stack) and linear-time,
//! so no input can overflow the stack or hang it.

use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Nesting depth beyond which parsing fails like Python's `RecursionError`.
pub const MAX_DEPTH: usize = 990;

/// Most digits an integer literal may have (Python 3.11's
/// `sys.get_int_max_str_digits()` default); beyond it Python raises
/// `ValueError`.
pub const MAX_INT_DIGITS: usize = 4300;

/// A string as Python holds it: any sequence of code points, including lone
/// surrogates, stored as WTF-8 bytes (borrowed from the input when it has no
/// escapes). Equal strings have equal bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PyStr<'a>(pub Cow<'a, [u8]>);

impl PyStr<'_> {
    /// Number of code points (Python's `len`).
    pub fn char_len(&self) -> usize {
        // Every code point starts with a non-continuation byte, in WTF-8 too.
        self.0.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
    }
}

/// A Python integer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PyInt {
    /// Fits in `i64`.
    Small(i64),
    /// Outside `i64`: the canonical decimal text (no leading zeros).
    Big(Box<str>),
}

/// A value as Python's `json.loads` returns it.
#[derive(Clone, Debug)]
pub enum PyValue<'a> {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// `int`.
    Int(PyInt),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(PyStr<'a>),
    /// `list`.
    List(Vec<PyValue<'a>>),
    /// `dict` with unique keys in first-insertion order.
    Dict(Vec<(PyStr<'a>, PyValue<'a>)>),
}

/// Why Python's `json.loads` would not return a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PyJsonError {
    /// `json.JSONDecodeError` at byte `pos`.
    Decode {
        /// Byte offset.
        pos: usize,
        /// Python's message.
        msg: &'static str,
    },
    /// `RecursionError`: nesting deeper than [`MAX_DEPTH`].
    Recursion,
    /// `ValueError`: an integer with more than [`MAX_INT_DIGITS`] digits.
    IntTooLong,
}

/// As Python would say it (`Expecting value at byte 0`), with the class.
impl std::fmt::Display for PyJsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PyJsonError::Decode { pos, msg } => {
                write!(f, "{}: {msg} at byte {pos}", self.python_exception())
            }
            PyJsonError::Recursion => write!(
                f,
                "{}: nesting deeper than {MAX_DEPTH} levels",
                self.python_exception()
            ),
            PyJsonError::IntTooLong => write!(
                f,
                "{}: an integer of more than {MAX_INT_DIGITS} digits",
                self.python_exception()
            ),
        }
    }
}

impl std::error::Error for PyJsonError {}

impl PyJsonError {
    /// The Python exception class this corresponds to.
    pub fn python_exception(&self) -> &'static str {
        match self {
            PyJsonError::Decode { .. } => "JSONDecodeError",
            PyJsonError::Recursion => "RecursionError",
            PyJsonError::IntTooLong => "ValueError",
        }
    }
}

impl<'a> PyValue<'a> {
    /// Equality of `json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)`:
    /// types must agree (`1` ≠ `1.0`, `True` ≠ `1`), `NaN` equals `NaN`,
    /// `-0.0` differs from `0.0`, dict key order is ignored, list order kept.
    pub fn dumps_eq(&self, other: &PyValue<'_>) -> bool {
        use PyValue::*;
        match (self, other) {
            (None, None) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits(),
            (Str(a), Str(b)) => a == b,
            (List(a), List(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.dumps_eq(y)),
            (Dict(a), Dict(b)) => dict_dumps_eq(a, b),
            _ => false,
        }
    }

    /// Whether Python could hash it (lists and dicts cannot).
    pub fn is_hashable(&self) -> bool {
        !matches!(self, PyValue::List(_) | PyValue::Dict(_))
    }

    /// The dict entry for `key`, if this is a dict.
    pub fn get(&self, key: &str) -> Option<&PyValue<'a>> {
        match self {
            PyValue::Dict(items) => items
                .iter()
                .find(|(k, _)| *k.0 == *key.as_bytes())
                .map(|(_, v)| v),
            _ => Option::None,
        }
    }

    /// Converts a serde_json value (ground truth) into Python's view of it.
    /// Integers beyond 64 bits have already become floats in serde_json.
    pub fn from_serde(v: &'a Value) -> PyValue<'a> {
        match v {
            Value::Null => PyValue::None,
            Value::Bool(b) => PyValue::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    PyValue::Int(PyInt::Small(i))
                } else if let Some(u) = n.as_u64() {
                    PyValue::Int(PyInt::Big(u.to_string().into()))
                } else {
                    PyValue::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => PyValue::Str(PyStr(Cow::Borrowed(s.as_bytes()))),
            Value::Array(a) => PyValue::List(a.iter().map(PyValue::from_serde).collect()),
            Value::Object(o) => PyValue::from_serde_map(o),
        }
    }

    /// Converts a serde_json object into a Python dict.
    pub fn from_serde_map(o: &'a serde_json::Map<String, Value>) -> PyValue<'a> {
        PyValue::Dict(
            o.iter()
                .map(|(k, v)| (PyStr(Cow::Borrowed(k.as_bytes())), PyValue::from_serde(v)))
                .collect(),
        )
    }

    /// [`PyValue::dumps_eq`] against a serde_json value read as
    /// [`PyValue::from_serde`] would, without converting it.
    pub fn dumps_eq_serde(&self, v: &Value) -> bool {
        match (self, v) {
            (PyValue::None, Value::Null) => true,
            (PyValue::Bool(a), Value::Bool(b)) => a == b,
            (PyValue::Int(i), Value::Number(n)) => match (i, n.as_i64(), n.as_u64()) {
                (PyInt::Small(a), Some(b), _) => *a == b,
                (PyInt::Big(a), None, Some(b)) => a.parse::<u64>() == Ok(b),
                _ => false,
            },
            (PyValue::Float(a), Value::Number(n)) => {
                n.is_f64() && n.as_f64().is_some_and(|b| a.to_bits() == b.to_bits())
            }
            (PyValue::Str(a), Value::String(b)) => *a.0 == *b.as_bytes(),
            (PyValue::List(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.dumps_eq_serde(y))
            }
            (PyValue::Dict(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, x)| {
                        std::str::from_utf8(&k.0)
                            .ok()
                            .and_then(|k| b.get(k))
                            .is_some_and(|y| x.dumps_eq_serde(y))
                    })
            }
            _ => false,
        }
    }
}

/// Appends [`canonical`]'s bytes for a str of UTF-8 bytes `s`: `s`, its
/// length (eight bytes, little endian), the bytes. Self-delimiting, so a
/// call's key may put one before the arguments' bytes.
pub(crate) fn push_canonical_str(s: &[u8], out: &mut Vec<u8>) {
    out.push(b's');
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

/// Appends a canonical encoding of `v`: two values get the same bytes
/// exactly when [`PyValue::dumps_eq`] holds (keys sorted, NaN unified).
pub fn canonical(v: &PyValue<'_>, out: &mut Vec<u8>) {
    fn str_into(s: &PyStr<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(&(s.0.len() as u64).to_le_bytes());
        out.extend_from_slice(&s.0);
    }
    match v {
        PyValue::None => out.push(b'n'),
        PyValue::Bool(b) => out.extend_from_slice(if *b { b"T" } else { b"F" }),
        PyValue::Int(PyInt::Small(i)) => {
            out.push(b'i');
            push_decimal(*i, out);
            out.push(b';');
        }
        PyValue::Int(PyInt::Big(s)) => {
            out.push(b'i');
            out.extend_from_slice(s.as_bytes());
            out.push(b';');
        }
        PyValue::Float(f) => {
            out.push(b'f');
            let bits = if f.is_nan() {
                f64::NAN.to_bits()
            } else {
                f.to_bits()
            };
            out.extend_from_slice(&bits.to_le_bytes());
        }
        PyValue::Str(s) => push_canonical_str(&s.0, out),
        PyValue::List(items) => {
            out.push(b'[');
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                canonical(it, out);
            }
        }
        PyValue::Dict(items) => {
            out.push(b'{');
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            let by_key = |a: &usize, b: &usize| items[*a].0 .0.cmp(&items[*b].0 .0);
            let mut write = |order: &[usize]| {
                for &i in order {
                    str_into(&items[i].0, out);
                    canonical(&items[i].1, out);
                }
            };
            // Small dicts (nearly all) sort on the stack.
            const SMALL: usize = 16;
            if items.len() <= SMALL {
                let mut order = [0usize; SMALL];
                let order = &mut order[..items.len()];
                order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                order.sort_unstable_by(by_key);
                write(order);
            } else {
                let mut order: Vec<usize> = (0..items.len()).collect();
                order.sort_unstable_by(by_key);
                write(&order);
            }
        }
    }
}

/// How many ASCII digits `s` holds from `at` on, counting at most `cap`
/// (0 when `at` is past its end). Sixteen bytes are looked at together
/// (SIMD) where the text has them: a number's length then costs no
/// branch per digit, nor the mispredicted exit of a loop over them.
#[inline]
pub(crate) fn digit_run(s: &[u8], at: usize, cap: usize) -> usize {
    use wide::u8x16;
    let Some(rest) = s.get(at..) else {
        return 0;
    };
    if let Some(block) = rest.first_chunk::<16>() {
        let v = u8x16::from(*block);
        let digit = v.max(u8x16::splat(b'0')).simd_eq(v) & v.min(u8x16::splat(b'9')).simd_eq(v);
        let run = (!digit.to_bitmask() | 1 << 16).trailing_zeros() as usize;
        if run < 16 || cap <= 16 {
            return run.min(cap);
        }
    }
    rest.iter()
        .take(cap)
        .take_while(|c| c.is_ascii_digit())
        .count()
}

/// The length of the integer that `s` starts with when it is one whose
/// text is its canonical decimal: `0` or `-?[1-9][0-9]*` of at most 18
/// digits (an `i64`), not followed by a fraction or an exponent. `None`
/// otherwise (`-0`, a float, a long or malformed number).
#[inline]
pub(crate) fn plain_int(s: &[u8]) -> Option<usize> {
    let sign = usize::from(s.first() == Some(&b'-'));
    let digits = digit_run(s, sign, 19);
    let len = sign + digits;
    let ok = matches!(digits, 1..=18)
        && (s[sign] != b'0' || (digits == 1 && sign == 0))
        && !matches!(s.get(len), Some(b'.' | b'e' | b'E' | b'0'..=b'9'));
    ok.then_some(len)
}

/// The value and length of the number that `s` starts with when it is a
/// plain decimal fraction: `-?(0|[1-9][0-9]*)\.[0-9]+` of at most 15
/// digits, not followed by an exponent or more digits (Python's `json`
/// reads it as [`short_decimal`] does). `None` otherwise.
#[inline]
pub(crate) fn plain_float(s: &[u8]) -> Option<(f64, usize)> {
    let digits_from = |at: usize| digit_run(s, at, 16);
    let sign = usize::from(s.first() == Some(&b'-'));
    let whole = digits_from(sign);
    if whole == 0 || (s[sign] == b'0' && whole > 1) || s.get(sign + whole) != Some(&b'.') {
        return None;
    }
    let fraction = digits_from(sign + whole + 1);
    let len = sign + whole + 1 + fraction;
    if fraction == 0
        || whole + fraction > 15
        || matches!(s.get(len), Some(b'.' | b'e' | b'E' | b'0'..=b'9'))
    {
        return None;
    }
    Some((short_decimal(&s[..len])?, len))
}

/// Appends `i` in decimal, as `i.to_string()` writes it (two digits at
/// a time, by `itoa`).
pub(crate) fn push_decimal(i: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
}

/// Appends `src[from..to]`. Runs here are short: one that fits is
/// copied as a fixed 16-byte move (the excess cut off again), which
/// beats a `memcpy` call.
#[inline]
pub(crate) fn push_run(out: &mut Vec<u8>, src: &[u8], from: usize, to: usize) {
    let len = to - from;
    if len <= 16 {
        if let Some(word) = src[from..].first_chunk::<16>() {
            let at = out.len();
            out.extend_from_slice(word);
            out.truncate(at + len);
            return;
        }
    }
    out.extend_from_slice(&src[from..to]);
}

fn dict_dumps_eq(a: &[(PyStr<'_>, PyValue<'_>)], b: &[(PyStr<'_>, PyValue<'_>)]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        return a
            .iter()
            .all(|(k, v)| b.iter().any(|(k2, v2)| k == k2 && v.dumps_eq(v2)));
    }
    let index: HashMap<&[u8], &PyValue<'_>> = b.iter().map(|(k, v)| (&*k.0, v)).collect();
    a.iter()
        .all(|(k, v)| index.get(&*k.0).is_some_and(|w| v.dumps_eq(w)))
}

/// Python's `str.isspace()` for one character (what `str.strip()` removes).
pub fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{0B}'
            | '\u{0C}'
            | '\r'
            | '\u{1C}'..='\u{1F}'
            | ' '
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// Python's `str.strip()` with no arguments.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `json.loads(s)` for a `str` given as UTF-8.
pub fn loads(s: &str) -> Result<PyValue<'_>, PyJsonError> {
    loads_bytes(s.as_bytes())
}

/// `json.loads` over WTF-8 bytes (a Python string that may hold lone
/// surrogates, e.g. one decoded from a JSON string literal).
pub fn loads_bytes(s: &[u8]) -> Result<PyValue<'_>, PyJsonError> {
    let mut p = Parser { s, pos: 0 };
    p.skip_ws();
    let v = p.value()?;
    p.skip_ws();
    if p.pos != s.len() {
        return Err(p.err("Extra data"));
    }
    Ok(v)
}

/// `json.JSONDecoder().raw_decode(s)` after leading JSON whitespace: the
/// first value in `s` and the byte offset where it ends (what follows is
/// not looked at).
pub fn loads_prefix(s: &[u8]) -> Result<(PyValue<'_>, usize), PyJsonError> {
    let mut p = Parser { s, pos: 0 };
    p.skip_ws();
    let v = p.value()?;
    Ok((v, p.pos))
}

/// The number at the start of `s`, as `json.loads` reads it, and where
/// it ends; for readers that walk JSON themselves.
pub(crate) fn number_prefix(s: &[u8]) -> Result<(PyValue<'_>, usize), PyJsonError> {
    let mut p = Parser { s, pos: 0 };
    let v = p.number()?;
    Ok((v, p.pos))
}

/// Powers of ten a double holds exactly.
const EXACT_POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The value of a JSON number with a fraction and no exponent (`text`,
/// as the grammar matched it) of at most 15 digits, without a general
/// parse: its digits are an integer a double holds exactly and so is the
/// power of ten, so their quotient is one correctly rounded division,
/// the double nearest the decimal (Clinger's fast path), which is what
/// `str::parse` and Python's `float` give. `None` for any other text.
fn short_decimal(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // Fifteen digits and the point at most: the integer is below 2^53.
    if digits.len() > 16 {
        return None;
    }
    let (mut mantissa, mut fraction) = (0u64, None);
    for (k, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(c - b'0'),
            b'.' if fraction.is_none() => fraction = Some(digits.len() - k - 1),
            _ => return None,
        }
    }
    let value = mantissa as f64 / EXACT_POW10[fraction?];
    Some(if negative { -value } else { value })
}

/// The string literal at the start of `s` (at its quote), decoded as
/// `json.loads` decodes it, and where it ends.
pub(crate) fn string_prefix(s: &[u8]) -> Result<(PyStr<'_>, usize), PyJsonError> {
    let mut p = Parser { s, pos: 0 };
    let v = p.string()?;
    Ok((v, p.pos))
}

/// A container being filled while parsing.
enum Frame<'a> {
    List(Vec<PyValue<'a>>),
    Dict {
        items: Vec<(PyStr<'a>, PyValue<'a>)>,
        /// Index of keys, built once the dict grows large.
        index: Option<HashMap<PyStr<'a>, usize>>,
        key: PyStr<'a>,
    },
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, msg: &'static str) -> PyJsonError {
        PyJsonError::Decode { pos: self.pos, msg }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    /// Parses one value (iteratively, with an explicit stack of containers).
    fn value(&mut self) -> Result<PyValue<'a>, PyJsonError> {
        // Room for typical nesting up front: growing this stack means
        // realloc, which takes glibc's arena lock and stopped parallel
        // scoring from scaling (measured: 2 threads no faster than 1).
        let mut stack: Vec<Frame<'a>> = Vec::with_capacity(16);
        'value: loop {
            // Parse a scalar, or open a container and continue with its first
            // element.
            let mut v = match self.s.get(self.pos) {
                Some(b'{') | Some(b'[') => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(PyJsonError::Recursion);
                    }
                    let is_dict = self.s[self.pos] == b'{';
                    self.pos += 1;
                    self.skip_ws();
                    if is_dict {
                        if self.s.get(self.pos) == Some(&b'}') {
                            self.pos += 1;
                            PyValue::Dict(Vec::new())
                        } else {
                            let key = self.key()?;
                            stack.push(Frame::Dict {
                                items: Vec::new(),
                                index: None,
                                key,
                            });
                            continue 'value;
                        }
                    } else if self.s.get(self.pos) == Some(&b']') {
                        self.pos += 1;
                        PyValue::List(Vec::new())
                    } else {
                        stack.push(Frame::List(Vec::new()));
                        continue 'value;
                    }
                }
                Some(b'"') => PyValue::Str(self.string()?),
                Some(b'n') if self.eat(b"null") => PyValue::None,
                Some(b't') if self.eat(b"true") => PyValue::Bool(true),
                Some(b'f') if self.eat(b"false") => PyValue::Bool(false),
                Some(b'N') if self.eat(b"NaN") => PyValue::Float(f64::NAN),
                Some(b'I') if self.eat(b"Infinity") => PyValue::Float(f64::INFINITY),
                Some(b'-') if self.s[self.pos..].starts_with(b"-Infinity") => {
                    self.pos += 9;
                    PyValue::Float(f64::NEG_INFINITY)
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.err("Expecting value")),
            };
            // Hand the value to its container; close containers that end here.
            loop {
                let Some(top) = stack.last_mut() else {
                    return Ok(v);
                };
                self.skip_ws();
                match top {
                    Frame::List(items) => {
                        items.push(v);
                        match self.s.get(self.pos) {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                continue 'value;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                let Some(Frame::List(items)) = stack.pop() else {
                                    unreachable!("top of stack is a list")
                                };
                                v = PyValue::List(items);
                            }
                            _ => return Err(self.err("Expecting ',' delimiter")),
                        }
                    }
                    Frame::Dict { items, index, key } => {
                        let key = std::mem::replace(key, PyStr(Cow::Borrowed(&[])));
                        insert_last_wins(items, index, key, v);
                        match self.s.get(self.pos) {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                let next = self.key()?;
                                if let Some(Frame::Dict { key, .. }) = stack.last_mut() {
                                    *key = next;
                                }
                                continue 'value;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                let Some(Frame::Dict { items, .. }) = stack.pop() else {
                                    unreachable!("top of stack is a dict")
                                };
                                v = PyValue::Dict(items);
                            }
                            _ => return Err(self.err("Expecting ',' delimiter")),
                        }
                    }
                }
            }
        }
    }

    /// A dict key and the `:` after it; leaves `pos` at the value.
    fn key(&mut self) -> Result<PyStr<'a>, PyJsonError> {
        if self.s.get(self.pos) != Some(&b'"') {
            return Err(self.err("Expecting property name enclosed in double quotes"));
        }
        let k = self.string()?;
        self.skip_ws();
        if self.s.get(self.pos) != Some(&b':') {
            return Err(self.err("Expecting ':' delimiter"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(k)
    }

    /// A string literal starting at the opening quote (strict mode: raw
    /// control characters are errors).
    fn string(&mut self) -> Result<PyStr<'a>, PyJsonError> {
        self.pos += 1;
        let s = self.s;
        // Fast path: no escapes, so borrow the bytes.
        let start = self.pos;
        let mut i = start;
        while let Some(&b) = s.get(i) {
            if b == b'"' {
                self.pos = i + 1;
                return Ok(PyStr(Cow::Borrowed(&s[start..i])));
            }
            if b == b'\\' || b < 0x20 {
                break;
            }
            i += 1;
        }
        let mut out: Vec<u8> = Vec::with_capacity(i - start + 16);
        loop {
            let start = self.pos;
            while let Some(&b) = self.s.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.extend_from_slice(&self.s[start..self.pos]);
            match self.s.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(PyStr(Cow::Owned(out)));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(self.err("Unterminated string starting at"));
                    };
                    self.pos += 1;
                    let simple = match e {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(0x08),
                        b'f' => Some(0x0C),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'u' => None,
                        _ => return Err(self.err("Invalid \\escape")),
                    };
                    if let Some(b) = simple {
                        out.push(b);
                        continue;
                    }
                    let mut cp = self.hex4()?;
                    if (0xD800..0xDC00).contains(&cp) && self.s[self.pos..].starts_with(b"\\u") {
                        let save = self.pos;
                        self.pos += 2;
                        match self.hex4() {
                            Ok(lo) if (0xDC00..0xE000).contains(&lo) => {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            _ => self.pos = save,
                        }
                    }
                    push_wtf8(&mut out, cp);
                }
                Some(_) => return Err(self.err("Invalid control character at")),
                None => return Err(self.err("Unterminated string starting at")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, PyJsonError> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("Invalid \\uXXXX escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let x = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.err("Invalid \\uXXXX escape"))?;
            v = v * 16 + x;
        }
        self.pos += 4;
        Ok(v)
    }

    /// A number, following CPython's `_match_number_unicode`.
    fn number(&mut self) -> Result<PyValue<'a>, PyJsonError> {
        let s = self.s;
        let start = self.pos;
        let mut i = start;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        match s.get(i) {
            Some(b'1'..=b'9') => {
                i += 1;
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            Some(b'0') => i += 1,
            _ => return Err(self.err("Expecting value")),
        }
        let int_end = i;
        let mut is_float = false;
        if s.get(i) == Some(&b'.') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
            is_float = true;
            i += 2;
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if let Some(b'e' | b'E') = s.get(i) {
            let mut j = i + 1;
            if let Some(b'+' | b'-') = s.get(j) {
                j += 1;
            }
            let digits_start = j;
            while s.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            if j > digits_start {
                is_float = true;
                i = j;
            }
        }
        self.pos = i;
        // The matched text is ASCII by construction.
        let text = std::str::from_utf8(&s[start..i]).unwrap_or("0");
        if is_float {
            let value =
                short_decimal(&s[start..i]).unwrap_or_else(|| text.parse().unwrap_or(f64::NAN));
            return Ok(PyValue::Float(value));
        }
        debug_assert_eq!(int_end, i);
        let digits = text.trim_start_matches('-').len();
        if digits > MAX_INT_DIGITS {
            return Err(PyJsonError::IntTooLong);
        }
        Ok(PyValue::Int(match text.parse::<i64>() {
            Ok(v) => PyInt::Small(v),
            Err(_) => PyInt::Big(text.into()),
        }))
    }
}

/// Python's `d[key] = value`: a repeated key keeps its first position and
/// takes the last value.
fn insert_last_wins<'a>(
    items: &mut Vec<(PyStr<'a>, PyValue<'a>)>,
    index: &mut Option<HashMap<PyStr<'a>, usize>>,
    key: PyStr<'a>,
    value: PyValue<'a>,
) {
    const INDEX_FROM: usize = 16;
    if index.is_none() && items.len() >= INDEX_FROM {
        *index = Some(
            items
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect(),
        );
    }
    let found = match index {
        Some(map) => map.get(&key).copied(),
        None => items.iter().position(|(k, _)| *k == key),
    };
    match found {
        Some(i) => items[i].1 = value,
        None => {
            if let Some(map) = index {
                map.insert(key.clone(), items.len());
            }
            items.push((key, value));
        }
    }
}

/// Appends code point `cp` (possibly a lone surrogate) as WTF-8.
fn push_wtf8(out: &mut Vec<u8>, cp: u32) {
    match cp {
        0..=0x7F => out.push(cp as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3F) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> PyValue<'_> {
        loads(s).unwrap_or_else(|e| panic!("{s:?}: {e:?}"))
    }

    #[test]
    fn errors_read_as_python_says_them() {
        assert_eq!(
            loads("x").unwrap_err().to_string(),
            "JSONDecodeError: Expecting value at byte 0"
        );
    }

    /// Digit runs counted sixteen bytes at a time are the runs counted
    /// one by one: every start, caps either side of sixteen, runs longer
    /// than a block, bytes next to '0'..'9' and past ASCII.
    #[test]
    fn digit_runs_are_counted_digit_by_digit() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            // Mostly digits, with the bytes either side of '0'..'9' too.
            let text: Vec<u8> = (0..len)
                .map(|k| match (seed >> (k % 50)) % 16 {
                    0 => b'/',
                    1 => b':',
                    2 => b'.',
                    3 => 0xb0,
                    d => b'0' + (d % 10) as u8,
                })
                .collect();
            for at in 0..=len + 1 {
                for cap in [1, 15, 16, 17, 19, 64] {
                    let want = text.get(at..).map_or(0, |r| {
                        r.iter()
                            .take(cap)
                            .take_while(|c| c.is_ascii_digit())
                            .count()
                    });
                    assert_eq!(digit_run(&text, at, cap), want, "{text:?} {at} {cap}");
                }
            }
        }
    }

    /// Short decimals take the fast path and give the bits a full parse
    /// gives: every length up to the limit and past it, every place of
    /// the point, signs, zeros, and the halfway-looking cases.
    #[test]
    fn short_decimals_are_what_a_full_parse_reads() {
        let mut texts: Vec<String> = [
            "0.0",
            "-0.0",
            "0.1",
            "0.3",
            "-1.5",
            "53.59",
            "9007199254740.993",
            "123456789012.345",
            "0.000000000000001",
            "999999999999999.9",
            "1.7976931348623157",
            "2.2250738585072014",
            "1234567890123456.7",
            "0.1234567890123456",
        ]
        .map(String::from)
        .into();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let digits = (seed % 18 + 2) as usize;
            let mut text: String = (0..digits)
                .map(|k| char::from(b'0' + ((seed >> (k * 3 % 60)) % 10) as u8))
                .collect();
            let point = 1 + (seed >> 40) as usize % (digits - 1);
            text.insert(point, '.');
            if seed >> 63 == 1 {
                text.insert(0, '-');
            }
            texts.push(text);
        }
        let mut fast = 0;
        for text in &texts {
            let parsed: f64 = text.parse().unwrap();
            if let Some(v) = short_decimal(text.as_bytes()) {
                fast += 1;
                assert_eq!(v.to_bits(), parsed.to_bits(), "{text}");
            }
            let (value, len) = number_prefix(text.as_bytes()).unwrap();
            if len == text.len() {
                assert!(
                    matches!(value, PyValue::Float(f) if f.to_bits() == parsed.to_bits()),
                    "{text}"
                );
            }
        }
        assert!(fast > texts.len() / 2, "{fast} of {}", texts.len());
        // The reader's plain fractions are what the grammar reads, where
        // it takes them: whatever follows.
        for text in &texts {
            for tail in ["", ",", "]", "}", " ", "e5", "E-1", ".5", "5", "x"] {
                let whole = format!("{text}{tail}");
                if let Some((v, len)) = plain_float(whole.as_bytes()) {
                    let (value, grammar_len) = number_prefix(whole.as_bytes()).unwrap();
                    assert_eq!(len, grammar_len, "{whole}");
                    assert!(
                        matches!(value, PyValue::Float(f) if f.to_bits() == v.to_bits()),
                        "{whole}"
                    );
                    assert!(!matches!(tail, "e5" | "E-1" | ".5"), "{whole}");
                }
            }
        }
        for text in [
            "-", "", "1", "-1", "1.", "01.5", "-01.5", ".5", "-.5", "1.5e3", "00.0",
        ] {
            assert_eq!(plain_float(text.as_bytes()), None, "{text}");
        }
        assert_eq!(plain_float(b"-0.0,"), Some((-0.0, 4)));
        assert_eq!(plain_float(b"0.25]"), Some((0.25, 4)));
        assert_eq!(short_decimal(b"1e5"), None);
        assert_eq!(short_decimal(b"15"), None);
        assert_eq!(short_decimal(b"1234567890123456.7"), None);
    }

    #[test]
    fn decimals_are_to_string() {
        for i in [0, 1, -1, 9, 10, -10, 123_456_789, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_decimal(i, &mut out);
            assert_eq!(out, i.to_string().as_bytes());
        }
    }

    #[test]
    fn scalars_follow_python() {
        assert!(matches!(ok("-0"), PyValue::Int(PyInt::Small(0))));
        assert!(matches!(ok("-0.0"), PyValue::Float(f) if f == 0.0 && f.is_sign_negative()));
        assert!(matches!(ok("1e400"), PyValue::Float(f) if f == f64::INFINITY));
        assert!(matches!(ok(" NaN "), PyValue::Float(f) if f.is_nan()));
        assert!(matches!(ok("-Infinity"), PyValue::Float(f) if f == f64::NEG_INFINITY));
        assert!(
            matches!(ok("123456789012345678901234567890"), PyValue::Int(PyInt::Big(ref s)) if &**s == "123456789012345678901234567890")
        );
        assert!(!ok("1").dumps_eq(&ok("1.0")));
        assert!(!ok("true").dumps_eq(&ok("1")));
        assert!(ok("NaN").dumps_eq(&ok("NaN")));
        assert!(!ok("0.0").dumps_eq(&ok("-0.0")));
        assert!(ok("1e2").dumps_eq(&ok("100.0")));
    }

    #[test]
    fn errors_follow_python() {
        for bad in [
            "",
            "1.",
            "01",
            "[1,]",
            "{\"a\" 1}",
            "\"\\x\"",
            "\"a\nb\"",
            "[1] x",
            "\u{feff}1",
            "nul",
        ] {
            assert!(
                matches!(loads(bad), Err(PyJsonError::Decode { .. })),
                "{bad:?}"
            );
        }
        let long = "9".repeat(MAX_INT_DIGITS + 1);
        assert_eq!(loads(&long).unwrap_err(), PyJsonError::IntTooLong);
        assert!(loads(&"9".repeat(MAX_INT_DIGITS)).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(loads(&deep).unwrap_err(), PyJsonError::Recursion);
        let deep_ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(loads(&deep_ok).is_ok());
        // A million levels must neither overflow the stack nor be slow.
        let very = "[".repeat(1_000_000);
        assert_eq!(loads(&very).unwrap_err(), PyJsonError::Recursion);
    }

    #[test]
    fn strings_and_dicts() {
        let v = ok(r#"{"a": 1, "b": 2, "a": 3}"#);
        let PyValue::Dict(items) = &v else { panic!() };
        assert_eq!(items.len(), 2);
        assert!(matches!(items[0].1, PyValue::Int(PyInt::Small(3))));
        assert!(ok(r#""\u00e9""#).dumps_eq(&ok("\"é\"")));
        assert!(ok(r#""\ud83d\ude00""#).dumps_eq(&ok("\"😀\"")));
        let PyValue::Str(lone) = ok(r#""\ud800x""#) else {
            panic!()
        };
        assert_eq!(&*lone.0, &[0xED, 0xA0, 0x80, b'x'][..]);
        assert_eq!(lone.char_len(), 2);
        assert!(
            ok(r#"{"x": [1, {"y": 2, "z": 3}]}"#).dumps_eq(&ok(r#"{"x": [1, {"z": 3, "y": 2}]}"#))
        );
        assert!(!ok("[1, 2]").dumps_eq(&ok("[2, 1]")));
    }

    #[test]
    fn strip_matches_python_isspace() {
        assert_eq!(py_strip("\u{1c}\u{a0} x \u{3000}\u{85}"), "x");
        assert_eq!(py_strip("\u{200b}x"), "\u{200b}x");
        assert_eq!(py_strip("\u{feff}x"), "\u{feff}x");
    }
}
