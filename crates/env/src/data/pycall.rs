//! A parser for tool calls written in Python call syntax, as ToolACE's
//! assistant turns and BFCL's answers are:
//! `[get_weather(city="Paris", days=3), Get Stock Quote(symbols=['A', 'B'])]`.
//!
//! It is a real parser, never an evaluator: keyword arguments whose values
//! are Python literals — strings (single, double or triple quotes, `r`/`u`/`b`
//! prefixes, all escapes, adjacent literals concatenated), numbers (signs,
//! `_` separators, hex/octal/binary, exponents), `True`/`False`/`None` (and
//! JSON's `true`/`false`/`null`), lists, tuples, sets and dicts, nested to
//! any reasonable depth. Anything else (names, expressions, nested calls,
//! f-strings) is an error with a byte offset.
//!
//! Values map to JSON as Python's `json.dumps` would: tuples and sets
//! become lists, dict keys become strings (`1` → `"1"`, `True` → `"true"`,
//! `None` → `"null"`). Integers beyond 64 bits become floats (serde_json's
//! number model); infinite floats are errors. Tool names may contain
//! spaces, dots, dashes and slashes (ToolACE has `Get Manager Placeholder
//! Image(...)`); parameter names may contain dots and dashes.
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

use serde_json::{Map, Number, Value};
use std::fmt;
use toolgym_reward::Call;

/// Deepest nesting of lists/dicts/tuples accepted.
pub const MAX_DEPTH: usize = 100;

/// Where and why parsing failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyCallError {
    /// Byte offset into the input.
    pub offset: usize,
    /// What was expected or found.
    pub message: String,
}

impl fmt::Display for PyCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for PyCallError {}

/// Parses a list of calls: `[f(a=1), g()]`, or calls without the brackets
/// (`f(a=1), g()`). An empty list `[]` gives no calls.
pub fn parse_calls(text: &str) -> Result<Vec<Call>, PyCallError> {
    let mut p = Parser::new(text);
    p.ws();
    let calls = if p.peek() == Some(b'[') {
        p.pos += 1;
        let calls = p.sequence(b']', Parser::call)?;
        p.expect(b']')?;
        calls
    } else {
        let mut calls = vec![p.call()?];
        p.ws();
        while p.eat(b',') {
            p.ws();
            if p.at_end() {
                break;
            }
            calls.push(p.call()?);
            p.ws();
        }
        calls
    };
    p.ws();
    if !p.at_end() {
        return Err(p.error("unexpected text after the calls"));
    }
    Ok(calls)
}

/// Parses one call: `name(key=value, ...)`.
pub fn parse_call(text: &str) -> Result<Call, PyCallError> {
    let mut p = Parser::new(text);
    p.ws();
    let call = p.call()?;
    p.ws();
    if !p.at_end() {
        return Err(p.error("unexpected text after the call"));
    }
    Ok(call)
}

/// Parses one Python literal into JSON.
///
/// ```
/// use toolgym_env::data::pycall::parse_literal;
/// use serde_json::json;
/// assert_eq!(parse_literal("{'a': (1, 2.5e3), 2: [True, None]}").unwrap(),
///            json!({"a": [1, 2500.0], "2": [true, null]}));
/// assert_eq!(parse_literal(r"'it\'s' ' ok'").unwrap(), json!("it's ok"));
/// assert!(parse_literal("1 + 2").is_err());
/// ```
pub fn parse_literal(text: &str) -> Result<Value, PyCallError> {
    let mut p = Parser::new(text);
    p.ws();
    let v = p.value()?;
    p.ws();
    if !p.at_end() {
        return Err(p.error("unexpected text after the value"));
    }
    Ok(v)
}

struct Parser<'a> {
    src: &'a str,
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Self {
            src,
            s: src.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    fn error(&self, message: impl Into<String>) -> PyCallError {
        PyCallError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() {
                self.pos += 1;
            } else if c == b'\\' && matches!(self.s.get(self.pos + 1), Some(b'\n')) {
                // Explicit line continuation.
                self.pos += 2;
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), PyCallError> {
        self.ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(format!("expected {:?}, found {}", c as char, self.found())))
        }
    }

    fn found(&self) -> String {
        match self.src.get(self.pos..).and_then(|r| r.chars().next()) {
            Some(c) => format!("{c:?}"),
            None => "the end".to_string(),
        }
    }

    /// Comma-separated items up to (not including) `close`, trailing comma
    /// allowed.
    fn sequence<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<T, PyCallError>,
    ) -> Result<Vec<T>, PyCallError> {
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(close) {
                return Ok(out);
            }
            out.push(item(self)?);
            self.ws();
            if !self.eat(b',') {
                return Ok(out);
            }
        }
    }

    fn call(&mut self) -> Result<Call, PyCallError> {
        self.ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == b'(' {
                break;
            }
            if matches!(
                c,
                b')' | b'[' | b']' | b'{' | b'}' | b',' | b'=' | b'"' | b'\'' | b'\n'
            ) {
                return Err(self.error(format!("unexpected {:?} in a function name", c as char)));
            }
            self.pos += 1;
        }
        let name = self.src[start..self.pos].trim();
        if name.is_empty() {
            return Err(self.error("expected a function name"));
        }
        if !self.eat(b'(') {
            return Err(self.error("expected '(' after the function name"));
        }
        let mut arguments = Map::new();
        let args = self.sequence(b')', Parser::keyword_argument)?;
        for (offset, key, value) in args {
            if arguments.insert(key.clone(), value).is_some() {
                return Err(PyCallError {
                    offset,
                    message: format!("keyword argument {key:?} repeated"),
                });
            }
        }
        self.expect(b')')?;
        Ok(Call {
            name: name.to_string(),
            arguments,
        })
    }

    fn keyword_argument(&mut self) -> Result<(usize, String, Value), PyCallError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric()
                || matches!(c, b'_' | b'.' | b'-' | b'$' | b'@')
                || c >= 0x80
            {
                self.pos += 1;
            } else {
                break;
            }
        }
        let key = &self.src[start..self.pos];
        self.ws();
        if key.is_empty() || self.peek() != Some(b'=') || self.s.get(self.pos + 1) == Some(&b'=') {
            self.pos = start;
            return Err(self.error(
                "expected a keyword argument name=value (positional arguments are not supported)",
            ));
        }
        if key.as_bytes()[0].is_ascii_digit() || key.starts_with('-') {
            self.pos = start;
            return Err(self.error(format!("{key:?} is not a parameter name")));
        }
        self.pos += 1;
        self.ws();
        let value = self.value()?;
        Ok((start, key.to_string(), value))
    }

    fn value(&mut self) -> Result<Value, PyCallError> {
        self.ws();
        let Some(c) = self.peek() else {
            return Err(self.error("expected a value, found the end"));
        };
        match c {
            b'[' => self.nested(b']', |p| Ok(Value::Array(p.sequence(b']', Parser::value)?))),
            b'(' => self.tuple(),
            b'{' => self.brace(),
            b'"' | b'\'' => self.strings(),
            b'-' | b'+' | b'.' | b'0'..=b'9' => self.number(),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.pos += 1;
                }
                let word = &self.src[start..self.pos];
                let is_string_prefix = matches!(
                    word.to_ascii_lowercase().as_str(),
                    "r" | "u" | "b" | "br" | "rb"
                ) && matches!(self.peek(), Some(b'"' | b'\''));
                if is_string_prefix {
                    self.pos = start;
                    return self.strings();
                }
                match word {
                    "True" | "true" => Ok(Value::Bool(true)),
                    "False" | "false" => Ok(Value::Bool(false)),
                    "None" | "null" => Ok(Value::Null),
                    _ => {
                        self.pos = start;
                        Err(self.error(format!(
                            "{word:?} is not a literal (names and expressions are not evaluated)"
                        )))
                    }
                }
            }
            _ => Err(self.error(format!("expected a value, found {}", self.found()))),
        }
    }

    fn nested(
        &mut self,
        close: u8,
        body: impl FnOnce(&mut Self) -> Result<Value, PyCallError>,
    ) -> Result<Value, PyCallError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.pos += 1;
        let v = body(self)?;
        self.expect(close)?;
        self.depth -= 1;
        Ok(v)
    }

    /// `()` → `[]`, `(x)` → `x`, `(x,)` / `(x, y)` → list.
    fn tuple(&mut self) -> Result<Value, PyCallError> {
        self.nested(b')', |p| {
            p.ws();
            if p.peek() == Some(b')') {
                return Ok(Value::Array(Vec::new()));
            }
            let first = p.value()?;
            p.ws();
            if !p.eat(b',') {
                return Ok(first);
            }
            let mut items = vec![first];
            items.extend(p.sequence(b')', Parser::value)?);
            Ok(Value::Array(items))
        })
    }

    /// `{}` → `{}`, `{k: v, ...}` → object, `{a, b}` → list (a set).
    fn brace(&mut self) -> Result<Value, PyCallError> {
        self.nested(b'}', |p| {
            p.ws();
            if p.peek() == Some(b'}') {
                return Ok(Value::Object(Map::new()));
            }
            let first = p.value()?;
            p.ws();
            if !p.eat(b':') {
                let mut items = vec![first];
                if p.eat(b',') {
                    items.extend(p.sequence(b'}', Parser::value)?);
                }
                return Ok(Value::Array(items));
            }
            let mut map = Map::new();
            let mut key = first;
            loop {
                p.ws();
                let value = p.value()?;
                map.insert(dict_key(&key).map_err(|m| p.error(m))?, value);
                p.ws();
                if !p.eat(b',') {
                    break;
                }
                p.ws();
                if p.peek() == Some(b'}') {
                    break;
                }
                key = p.value()?;
                p.expect(b':')?;
            }
            Ok(Value::Object(map))
        })
    }

    /// One or more adjacent string literals, concatenated.
    fn strings(&mut self) -> Result<Value, PyCallError> {
        let mut out = self.string()?;
        loop {
            let save = self.pos;
            self.ws();
            let next_is_string = match self.peek() {
                Some(b'"' | b'\'') => true,
                Some(c) if c.is_ascii_alphabetic() => {
                    let mut i = self.pos;
                    while i < self.s.len() && self.s[i].is_ascii_alphabetic() && i - self.pos < 2 {
                        i += 1;
                    }
                    matches!(self.s.get(i), Some(b'"' | b'\''))
                        && matches!(
                            self.src[self.pos..i].to_ascii_lowercase().as_str(),
                            "r" | "u" | "b" | "br" | "rb"
                        )
                }
                _ => false,
            };
            if !next_is_string {
                self.pos = save;
                return Ok(Value::String(out));
            }
            out.push_str(&self.string()?);
        }
    }

    fn string(&mut self) -> Result<String, PyCallError> {
        let mut raw = false;
        while let Some(c) = self.peek() {
            match c {
                b'r' | b'R' => raw = true,
                b'u' | b'U' | b'b' | b'B' => {}
                _ => break,
            }
            self.pos += 1;
        }
        let start = self.pos;
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return Err(self.error("expected a string")),
        };
        let triple = self.s.get(self.pos..self.pos + 3) == Some(&[quote; 3][..]);
        self.pos += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let Some(c) = self.src[self.pos..].chars().next() else {
                self.pos = start;
                return Err(self.error("unterminated string"));
            };
            if c as u32 == quote as u32 {
                if !triple {
                    self.pos += 1;
                    return Ok(out);
                }
                if self.s.get(self.pos..self.pos + 3) == Some(&[quote; 3][..]) {
                    self.pos += 3;
                    return Ok(out);
                }
            }
            if c == '\n' && !triple {
                return Err(self.error("newline inside a single-quoted string"));
            }
            if c == '\\' {
                if raw {
                    // A raw string keeps the backslash, and the escaped
                    // quote does not end the string.
                    out.push('\\');
                    self.pos += 1;
                    if let Some(n) = self.src[self.pos..].chars().next() {
                        out.push(n);
                        self.pos += n.len_utf8();
                    }
                    continue;
                }
                self.pos += 1;
                self.escape(&mut out)?;
                continue;
            }
            out.push(c);
            self.pos += c.len_utf8();
        }
    }

    /// Reads the escape after a backslash into `out`.
    fn escape(&mut self, out: &mut String) -> Result<(), PyCallError> {
        let Some(c) = self.src[self.pos..].chars().next() else {
            return Err(self.error("unterminated string"));
        };
        self.pos += c.len_utf8();
        match c {
            '\n' => {}
            '\\' => out.push('\\'),
            '\'' => out.push('\''),
            '"' => out.push('"'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' => out.push('\u{08}'),
            'f' => out.push('\u{0c}'),
            'v' => out.push('\u{0b}'),
            'a' => out.push('\u{07}'),
            '0'..='7' => {
                let mut code = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            code = code * 8 + (d - b'0') as u32;
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            'x' => out.push(self.hex_char(2)?),
            'u' => {
                let code = self.hex(4)?;
                if (0xD800..0xDC00).contains(&code)
                    && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                {
                    let save = self.pos;
                    self.pos += 2;
                    let low = self.hex(4)?;
                    if (0xDC00..0xE000).contains(&low) {
                        let combined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        out.push(char::from_u32(combined).unwrap_or('\u{fffd}'));
                        return Ok(());
                    }
                    self.pos = save;
                }
                out.push(
                    char::from_u32(code)
                        .ok_or_else(|| self.error(format!("lone surrogate \\u{code:04x}")))?,
                );
            }
            'U' => out.push(self.hex_char(8)?),
            'N' => return Err(self.error("\\N{...} escapes are not supported")),
            other => {
                // Python keeps unknown escapes as written.
                out.push('\\');
                out.push(other);
            }
        }
        Ok(())
    }

    fn hex(&mut self, n: usize) -> Result<u32, PyCallError> {
        let digits = self
            .src
            .get(self.pos..self.pos + n)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error(format!("expected {n} hex digits")))?;
        self.pos += n;
        u32::from_str_radix(digits, 16).map_err(|e| self.error(e.to_string()))
    }

    fn hex_char(&mut self, n: usize) -> Result<char, PyCallError> {
        let code = self.hex(n)?;
        char::from_u32(code).ok_or_else(|| self.error(format!("invalid code point {code:#x}")))
    }

    fn number(&mut self) -> Result<Value, PyCallError> {
        let start = self.pos;
        let mut negative = false;
        while let Some(c @ (b'-' | b'+')) = self.peek() {
            negative ^= c == b'-';
            self.pos += 1;
            self.ws();
        }
        let body_start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.'))
            || (matches!(self.peek(), Some(b'+' | b'-'))
                && matches!(self.s.get(self.pos.wrapping_sub(1)), Some(b'e' | b'E'))
                && !self.src[body_start..self.pos].starts_with("0x")
                && !self.src[body_start..self.pos].starts_with("0X"))
        {
            self.pos += 1;
        }
        let text = &self.src[body_start..self.pos];
        let bad = |p: &Self| PyCallError {
            offset: start,
            message: format!("{:?} is not a number", &p.src[start..p.pos]),
        };
        if text.is_empty() || text.starts_with('_') || text.ends_with('_') || text.contains("__") {
            return Err(bad(self));
        }
        let clean: String = text.chars().filter(|&c| c != '_').collect();
        let lower = clean.to_ascii_lowercase();
        let radix = match lower.get(..2) {
            Some("0x") => Some(16),
            Some("0o") => Some(8),
            Some("0b") => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            let magnitude = u128::from_str_radix(&lower[2..], radix).map_err(|_| bad(self))?;
            return int_value(magnitude, negative).ok_or_else(|| bad(self));
        }
        let is_float = lower.contains(['.', 'e']);
        if !is_float {
            // Python 3 rejects leading zeros in non-zero decimal integers.
            if lower.len() > 1 && lower.starts_with('0') && lower.bytes().any(|b| b != b'0') {
                return Err(bad(self));
            }
            if !lower.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(self));
            }
            return match lower.parse::<u128>() {
                Ok(m) => int_value(m, negative).ok_or_else(|| bad(self)),
                Err(_) => float_value(&lower, negative).ok_or_else(|| bad(self)),
            };
        }
        let valid = lower
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
            && lower.bytes().any(|b| b.is_ascii_digit());
        if !valid {
            return Err(bad(self));
        }
        float_value(&lower, negative).ok_or_else(|| bad(self))
    }
}

fn int_value(magnitude: u128, negative: bool) -> Option<Value> {
    if negative {
        if magnitude <= i64::MAX as u128 + 1 {
            return Some(Value::Number(Number::from(
                (magnitude as i128).wrapping_neg() as i64,
            )));
        }
    } else if let Ok(u) = u64::try_from(magnitude) {
        return Some(Value::Number(Number::from(u)));
    }
    let f = magnitude as f64;
    Number::from_f64(if negative { -f } else { f }).map(Value::Number)
}

fn float_value(text: &str, negative: bool) -> Option<Value> {
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    Number::from_f64(if negative { -f } else { f }).map(Value::Number)
}

/// A dict key as `json.dumps` writes it.
fn dict_key(key: &Value) -> Result<String, String> {
    match key {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok("null".to_string()),
        Value::Number(n) if n.is_f64() => Ok(crate::json::py_float_repr(n.as_f64().unwrap_or(0.0))),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err("a dict key must be a string, number, boolean or None".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(text: &str) -> Value {
        let call = parse_call(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        Value::Object(call.arguments)
    }

    #[test]
    fn tricky_strings() {
        assert_eq!(args(r#"f(a="x, y) [z]")"#), json!({"a": "x, y) [z]"}));
        assert_eq!(
            args(r#"f(a='say "hi"', b="it's")"#),
            json!({"a": "say \"hi\"", "b": "it's"})
        );
        assert_eq!(
            args(r#"f(a='\n\t\\\'\x41\u00e9\U0001F600')"#),
            json!({"a": "\n\t\\'Aé😀"})
        );
        assert_eq!(
            args(r#"f(a=r'C:\new\path')"#),
            json!({"a": "C:\\new\\path"})
        );
        assert_eq!(
            args(
                r#"f(a='''multi
line''')"#
            ),
            json!({"a": "multi\nline"})
        );
        assert_eq!(args(r#"f(a="ab" 'cd')"#), json!({"a": "abcd"}));
        assert_eq!(args(r#"f(a='\d+\.')"#), json!({"a": "\\d+\\."}));
        assert_eq!(args(r#"f(a='\ud83d\ude00')"#), json!({"a": "😀"}));
        assert_eq!(args(r#"f(a='日本')"#), json!({"a": "日本"}));
        assert_eq!(args(r#"f(a=u'x', b=b'y')"#), json!({"a": "x", "b": "y"}));
        assert!(parse_call(r#"f(a="unterminated)"#).is_err());
        assert!(parse_call("f(a='line\nbreak')").is_err());
        assert!(parse_call(r#"f(a='\ud83d')"#).is_err());
        assert!(parse_call(r#"f(a=f'{x}')"#).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(
            args("f(a=3, b=-2.5, c=1e3, d=1_000, e=0x1F, f=-0o17, g=0b101, h=.5, i=5., j=+7, k=-1E-2)"),
            json!({"a": 3, "b": -2.5, "c": 1000.0, "d": 1000, "e": 31, "f": -15, "g": 5, "h": 0.5, "i": 5.0, "j": 7, "k": -0.01})
        );
        assert_eq!(args("f(a=-9223372036854775808)")["a"], json!(i64::MIN));
        assert_eq!(args("f(a=18446744073709551615)")["a"], json!(u64::MAX));
        assert!(args("f(a=123456789012345678901234567890)")["a"].is_f64());
        for bad in [
            "f(a=1e999)",
            "f(a=01)",
            "f(a=1__0)",
            "f(a=1.2.3)",
            "f(a=0xZZ)",
            "f(a=1j)",
            "f(a=-)",
        ] {
            assert!(parse_call(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn containers() {
        assert_eq!(
            args("f(a=[1, [2, (3,)], {'k': {'n': None}}], b=(), c=(1), d={1, 2}, e={}, f=[1,2,],)"),
            json!({"a": [1, [2, [3]], {"k": {"n": null}}], "b": [], "c": 1, "d": [1, 2], "e": {}, "f": [1, 2]})
        );
        assert_eq!(
            args("f(a={1: 'x', 2.5: 'y', True: 'z', None: 'w'})"),
            json!({"a": {"1": "x", "2.5": "y", "true": "z", "null": "w"}})
        );
        assert_eq!(args("f(a={'k': 1, 'k': 2})"), json!({"a": {"k": 2}}));
        assert!(parse_call("f(a={[1]: 2})").is_err());
        let deep = format!("f(a={}{})", "[".repeat(500), "]".repeat(500));
        assert!(parse_call(&deep).unwrap_err().message.contains("nested"));
    }

    #[test]
    fn call_lists() {
        let calls =
            parse_calls("[Get Manager Placeholder Image(sport=\"football\"), GetCompetitions()]")
                .unwrap();
        assert_eq!(calls[0].name, "Get Manager Placeholder Image");
        assert_eq!(calls[1].name, "GetCompetitions");
        assert!(calls[1].arguments.is_empty());
        assert_eq!(parse_calls("[]").unwrap(), vec![]);
        assert_eq!(parse_calls(" f(x=1) , g() ").unwrap().len(), 2);
        assert_eq!(
            parse_calls("[math.factorial(number=5)]").unwrap()[0].name,
            "math.factorial"
        );
        assert_eq!(
            parse_calls("[f(x=True, y=None, z=false)]").unwrap()[0].arguments["z"],
            json!(false)
        );
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
        ] {
            assert!(parse_calls(bad).is_err(), "{bad}");
        }
        let e = parse_calls("[f(x=1), g(y=bad)]").unwrap_err();
        assert_eq!(e.offset, 13);
    }
}
