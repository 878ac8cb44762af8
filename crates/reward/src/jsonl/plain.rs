//! The fast reader of plain call records: `{"id"?, "completion": string,
//! "ground_truth": calls or JSON text}` and nothing else, read straight
//! from the line's bytes. No JSON tree is built for the record, a
//! completion without escapes is borrowed from the line, an escaped one is
//! decoded into a buffer reused from line to line, and the ground truth is
//! deserialised straight into [`Call`]s, or kept from the line before when
//! its bytes are the same (the G completions of a prompt).
//!
//! The reader only accepts what the general reader
//! ([`super::Record::parse_with`] with [`super::call_truth`]) reads to the
//! same record: anything else (another field, a repeated key, a message as
//! completion, an escaped key, a structured id, a lone surrogate, a ground
//! truth the typed reader refuses, any JSON error) returns `None`, and the
//! general reader then scores the line, errors included. So the verdicts
//! are the same either way; `tests::agrees_with_the_general_reader` and
//! the crate's `jsonl_plain` test check that on hostile lines.

use crate::Call;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;
use std::ops::Range;

/// Buffers reused from line to line by one worker, and the last ground
/// truth read.
#[derive(Default)]
pub(super) struct Scratch {
    /// The decoded completion, when it had escapes.
    completion: String,
    /// The decoded ground-truth text, when it was a JSON string.
    truth_text: String,
    /// The last ground truth's JSON value, as it stood in its line.
    truth_raw: Vec<u8>,
    /// The calls read from it.
    truth: Vec<Call>,
}

/// Where a plain record's completion text is.
enum Text {
    /// Borrowed from the line (it had no escapes).
    Line(Range<usize>),
    /// Decoded into [`Scratch::completion`].
    Scratch,
}

/// A plain record: its id, completion and ground truth.
pub(super) struct Plain<'a> {
    /// The record's `id` (null when absent).
    pub id: Value,
    /// The completion text.
    pub completion: &'a str,
    /// The expected calls.
    pub truth: &'a [Call],
}

/// Reads `line` as a plain call record, or `None` when the general reader
/// must (see the module docs).
pub(super) fn read<'a>(line: &'a str, scratch: &'a mut Scratch) -> Option<Plain<'a>> {
    let b = line.as_bytes();
    let mut p = skip_ws(b, 0);
    if b.get(p) != Some(&b'{') {
        return None;
    }
    p = skip_ws(b, p + 1);
    let (mut id, mut completion, mut has_truth) = (None, None, false);
    loop {
        // A key without escapes.
        if b.get(p) != Some(&b'"') {
            return None;
        }
        let key_end = p + 1 + memchr::memchr2(b'"', b'\\', &b[p + 1..])?;
        if b[key_end] != b'"' {
            return None;
        }
        let key = &b[p + 1..key_end];
        p = skip_ws(b, key_end + 1);
        if b.get(p) != Some(&b':') {
            return None;
        }
        p = skip_ws(b, p + 1);
        p = match key {
            b"id" if id.is_none() => {
                let (value, end) = scalar(line, p)?;
                id = Some(value);
                end
            }
            b"completion" if completion.is_none() => {
                if b.get(p) != Some(&b'"') {
                    return None; // a message or a transcript
                }
                let (end, escaped) = string(line, p + 1, &mut scratch.completion)?;
                completion = Some(if escaped {
                    Text::Scratch
                } else {
                    Text::Line(p + 1..end - 1)
                });
                end
            }
            b"ground_truth" if !has_truth => {
                has_truth = true;
                cached_truth(line, p, scratch)?
            }
            _ => return None,
        };
        p = skip_ws(b, p);
        match b.get(p) {
            Some(b',') => p = skip_ws(b, p + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    if skip_ws(b, p + 1) != b.len() {
        return None;
    }
    let completion = match completion? {
        Text::Line(r) => &line[r],
        Text::Scratch => scratch.completion.as_str(),
    };
    if !has_truth {
        return None;
    }
    Some(Plain {
        id: id.unwrap_or(Value::Null),
        completion,
        truth: &scratch.truth,
    })
}

/// The first byte at or after `p` that is not JSON whitespace.
fn skip_ws(b: &[u8], mut p: usize) -> usize {
    while matches!(b.get(p), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        p += 1;
    }
    p
}

/// A scalar id at `p` (null, a boolean, a number, a string) and the
/// position after it; `None` for an object or a list.
fn scalar(line: &str, p: usize) -> Option<(Value, usize)> {
    let b = line.as_bytes();
    let literal = |text: &str, value: Value| {
        b[p..]
            .starts_with(text.as_bytes())
            .then_some((value, p + text.len()))
    };
    match *b.get(p)? {
        b'n' => literal("null", Value::Null),
        b't' => literal("true", Value::Bool(true)),
        b'f' => literal("false", Value::Bool(false)),
        b'"' => {
            let mut text = String::new();
            let (end, escaped) = string(line, p + 1, &mut text)?;
            if !escaped {
                text.push_str(&line[p + 1..end - 1]);
            }
            Some((Value::String(text), end))
        }
        b'-' | b'0'..=b'9' => {
            let len = b[p..]
                .iter()
                .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(b.len() - p);
            // serde reads the number as the general reader does.
            let value = serde_json::from_str(&line[p..p + len]).ok()?;
            Some((value, p + len))
        }
        _ => None,
    }
}

/// Reads a JSON string body starting at `start` (after the opening quote).
/// Returns the position after the closing quote and whether it had
/// escapes; only then is the decoded text in `out` (cleared first).
/// `None` on anything serde might read differently or refuse: a control
/// character, a bad escape, a surrogate that is not a valid pair, no end.
fn string(line: &str, start: usize, out: &mut String) -> Option<(usize, bool)> {
    let b = line.as_bytes();
    // Up to the first quote or backslash, the run is long and plain: a
    // SIMD search, then a check for control characters.
    let first = start + memchr::memchr2(b'"', b'\\', &b[start..])?;
    if b[start..first]
        .iter()
        .fold(0u8, |m, &c| m | u8::from(c < 0x20))
        != 0
    {
        return None;
    }
    let (mut i, mut seg, mut escaped) = (first, start, false);
    loop {
        match b[i] {
            b'"' => {
                if escaped {
                    out.push_str(&line[seg..i]);
                }
                return Some((i + 1, escaped));
            }
            b'\\' => {}
            _ => return None, // a control character
        }
        if !escaped {
            out.clear();
            escaped = true;
        }
        out.push_str(&line[seg..i]);
        let (c, len) = escape(b, i)?;
        out.push(c);
        seg = i + len;
        // Escaped text has short runs between escapes: a word-at-a-time
        // scan beats a SIMD search's set-up there.
        i = special(b, seg)?;
    }
}

/// The character of the escape at `i` (a backslash) and its length.
fn escape(b: &[u8], i: usize) -> Option<(char, usize)> {
    Some(match *b.get(i + 1)? {
        b'"' => ('"', 2),
        b'\\' => ('\\', 2),
        b'/' => ('/', 2),
        b'b' => ('\u{8}', 2),
        b'f' => ('\u{c}', 2),
        b'n' => ('\n', 2),
        b'r' => ('\r', 2),
        b't' => ('\t', 2),
        b'u' => {
            let hi = hex4(b, i + 2)?;
            match hi {
                0xD800..=0xDBFF => {
                    if b.get(i + 6..i + 8)? != b"\\u" {
                        return None;
                    }
                    let lo = hex4(b, i + 8)?;
                    if !(0xDC00..=0xDFFF).contains(&lo) {
                        return None;
                    }
                    let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    (char::from_u32(code)?, 12)
                }
                0xDC00..=0xDFFF => return None,
                _ => (char::from_u32(hi)?, 6),
            }
        }
        _ => return None,
    })
}

/// The first quote, backslash or control character at or after `p`,
/// eight bytes at a time.
fn special(b: &[u8], mut p: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    while let Some(word) = b.get(p..p + 8) {
        let x = u64::from_le_bytes(word.try_into().ok()?);
        // The lowest flagged byte of each test is exact (higher ones may
        // be borrows), so the lowest of all three is the first hit.
        let hits = (zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if hits != 0 {
            return Some(p + hits.trailing_zeros() as usize / 8);
        }
        p += 8;
    }
    b[p..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| p + i)
}

/// Four hex digits at `p`.
fn hex4(b: &[u8], p: usize) -> Option<u32> {
    let digits = b.get(p..p + 4)?;
    digits.iter().try_fold(0u32, |n, &d| {
        let v = (d as char).to_digit(16)?;
        Some(n * 16 + v)
    })
}

/// Reads the ground truth at `p` into `scratch.truth` and returns the
/// position after it. The G completions of a prompt usually sit on
/// consecutive lines with the same ground truth: when the line holds the
/// last one's exact bytes at `p`, its calls are kept. (A string, list or
/// object ends with its last byte, so those bytes are the whole value.)
fn cached_truth(line: &str, p: usize, scratch: &mut Scratch) -> Option<usize> {
    let rest = &line.as_bytes()[p..];
    if !scratch.truth_raw.is_empty() && rest.starts_with(&scratch.truth_raw) {
        return Some(p + scratch.truth_raw.len());
    }
    scratch.truth_raw.clear();
    let (calls, end) = ground_truth(line, p, &mut scratch.truth_text)?;
    scratch.truth = calls;
    scratch
        .truth_raw
        .extend_from_slice(&line.as_bytes()[p..end]);
    Some(end)
}

/// The ground truth at `p`: a JSON string holding the calls (xLAM's
/// form), a list of calls or one call. Returns the calls and the position
/// after the value.
fn ground_truth(line: &str, p: usize, text: &mut String) -> Option<(Vec<Call>, usize)> {
    match *line.as_bytes().get(p)? {
        b'"' => {
            let (end, escaped) = string(line, p + 1, text)?;
            let inner = if escaped {
                &text[..]
            } else {
                &line[p + 1..end - 1]
            };
            // As `Call::list_from_value` reads a string: trimmed, then JSON.
            let calls = serde_json::from_str::<Calls>(inner.trim()).ok()?;
            Some((calls.0, end))
        }
        b'[' | b'{' => {
            let mut stream = serde_json::Deserializer::from_str(&line[p..]).into_iter::<Calls>();
            let calls = stream.next()?.ok()?;
            let end = p + stream.byte_offset();
            // serde's nesting limit (127 levels) counted the record's own
            // braces in the general reader, not in this fresh parse.
            if nests_deeper_than(&line.as_bytes()[p..end], SERDE_MAX_DEPTH - 1) {
                return None;
            }
            Some((calls.0, end))
        }
        _ => None,
    }
}

/// The most levels of lists and objects serde_json reads in one document.
const SERDE_MAX_DEPTH: usize = 127;

/// Whether the JSON value `b` nests lists and objects more than `limit`
/// levels deep (brackets inside strings do not count).
fn nests_deeper_than(b: &[u8], limit: usize) -> bool {
    // Each level takes two bytes.
    if b.len() <= 2 * limit {
        return false;
    }
    let (mut depth, mut i) = (0usize, 0);
    while i < b.len() {
        match b[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => {
                // Skip the string, escapes included.
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Calls deserialised without a JSON tree for the call objects: a list
/// of call objects or one call object, each with a string `name` and an
/// object `arguments` (other fields are read and dropped). Anything else,
/// a repeated `name` or `arguments` included, is an error, so that only
/// what [`Call::list_from_value`] reads to the same calls gets through.
struct Calls(Vec<Call>);

impl<'de> Deserialize<'de> for Calls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CallsVisitor)
    }
}

struct CallsVisitor;

impl<'de> Visitor<'de> for CallsVisitor {
    type Value = Calls;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a call object or a list of them")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Calls, A::Error> {
        let mut calls = Vec::with_capacity(seq.size_hint().unwrap_or(1));
        while let Some(call) = seq.next_element::<OneCall>()? {
            calls.push(call.0);
        }
        Ok(Calls(calls))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Calls, A::Error> {
        Ok(Calls(vec![CallVisitor.visit_map(map)?.0]))
    }
}

/// One call object (only an object: serde would read a struct from a list
/// too, which the general reader refuses).
struct OneCall(Call);

impl<'de> Deserialize<'de> for OneCall {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CallVisitor)
    }
}

struct CallVisitor;

impl<'de> Visitor<'de> for CallVisitor {
    type Value = OneCall;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a call object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OneCall, A::Error> {
        let (mut name, mut arguments) = (None::<String>, None::<Map<String, Value>>);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "name" if name.is_none() => name = Some(map.next_value()?),
                "arguments" if arguments.is_none() => arguments = Some(map.next_value()?),
                "name" | "arguments" => return Err(de::Error::custom("repeated key")),
                // Read as the general reader reads it (it must be valid).
                _ => drop(map.next_value::<Value>()?),
            }
        }
        match (name, arguments) {
            (Some(name), Some(arguments)) => Ok(OneCall(Call { name, arguments })),
            _ => Err(de::Error::custom("a call needs name and arguments")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonl::{call_truth, Record};

    /// The plain reader either declines or reads what the general reader
    /// reads, with whatever `scratch` holds from earlier lines.
    fn check(line: &str, scratch: &mut Scratch) -> bool {
        let general = Record::parse_with(line.as_bytes(), call_truth);
        match read(line, scratch) {
            None => false,
            Some(plain) => {
                let r = general.unwrap_or_else(|e| panic!("{line}: general reader refused: {e:?}"));
                assert!(r.extra.is_empty(), "{line}");
                assert_eq!(
                    (&plain.id, plain.completion, plain.truth),
                    (&r.id, r.completion.as_str(), &r.truth[..]),
                    "{line}"
                );
                true
            }
        }
    }

    #[test]
    fn agrees_with_the_general_reader() {
        let read_plainly = [
            r#"{"id": 0, "completion": "<think>x</think>", "ground_truth": "[]"}"#,
            r#" {"completion":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00","ground_truth":[{"name":"f","arguments":{"x":1,"x":2}}]} "#,
            r#"{"ground_truth": {"name": "f", "arguments": {}, "extra": [1, {"a": null}]}, "completion": "", "id": "s\u00e9"}"#,
            r#"{"id": -1.5e3, "completion": "x", "ground_truth": " \n [{\"name\": \"f\", \"arguments\": {\"q\": \"a\\\"b\"}}] "}"#,
            r#"{"id": 12345678901234567890, "completion": "x", "ground_truth": []}"#,
            r#"{"id": true, "completion": "x", "ground_truth": "\u005b\u005d"}"#,
            r#"{"id": null, "completion": "x", "ground_truth": []}"#,
        ];
        // One scratch throughout: a line may meet the last one's truth.
        let mut scratch = Scratch::default();
        for line in read_plainly.iter().chain(&read_plainly) {
            assert!(check(line, &mut scratch), "declined: {line}");
        }
        let declined = [
            r#"{"id": 1, "completion": "x", "ground_truth": [], "extra": 1}"#,
            r#"{"id": 1, "id": 2, "completion": "x", "ground_truth": []}"#,
            r#"{"completion": "x", "completion": "y", "ground_truth": []}"#,
            r#"{"completion": {"role": "assistant", "content": "x"}, "ground_truth": []}"#,
            r#"{"id": [1], "completion": "x", "ground_truth": []}"#,
            r#"{"id": 01, "completion": "x", "ground_truth": []}"#,
            r#"{"id": nul, "completion": "x", "ground_truth": []}"#,
            r#"{"i\u0064": 1, "completion": "x", "ground_truth": []}"#,
            "{\"completion\": \"a\tb\", \"ground_truth\": []}",
            r#"{"completion": "\ud800", "ground_truth": []}"#,
            r#"{"completion": "\udc00\ud800", "ground_truth": []}"#,
            r#"{"completion": "\x", "ground_truth": []}"#,
            r#"{"completion": "\u12", "ground_truth": []}"#,
            r#"{"completion": "x", "ground_truth": [["f", {}]]}"#,
            r#"{"completion": "x", "ground_truth": [{"name": "f"}]}"#,
            r#"{"completion": "x", "ground_truth": [{"name": "f", "arguments": "{}"}]}"#,
            r#"{"completion": "x", "ground_truth": [{"name": "f", "name": "g", "arguments": {}}]}"#,
            r#"{"completion": "x", "ground_truth": [{"name": 1, "arguments": {}}]}"#,
            r#"{"completion": "x", "ground_truth": "\"[]\""}"#,
            r#"{"completion": "x", "ground_truth": 5}"#,
            r#"{"completion": "x", "ground_truth": [] }x"#,
            r#"{"completion": "x", "ground_truth": [}"#,
            r#"{"completion": "x"}"#,
            r#"{"ground_truth": []}"#,
            r#"{"completion": "x", "ground_truth": [],}"#,
            r#"{"completion": "x" "ground_truth": []}"#,
            r#"{"completion": "x", "ground_truth": [{"name": "f", "arguments": {}, "z": "\ud800"}]}"#,
            r#"[7, "x", []]"#,
            "",
            "{",
        ];
        // The general reader's nesting limit counts the record's braces.
        let nested = |levels: usize| {
            format!(
                r#"{{"completion": "x", "ground_truth": {{"name": "f", "arguments": {{"a": {}{}}}}}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        assert!(check(&nested(124), &mut scratch));
        assert!(!check(&nested(125), &mut scratch));
        assert!(Record::parse_with(nested(125).as_bytes(), call_truth).is_err());
        for line in declined {
            check(r#"{"completion": "x", "ground_truth": []}"#, &mut scratch);
            assert!(!check(line, &mut scratch), "read plainly: {line}");
        }
    }

    /// JSON text of `s` with every non-ASCII character (and some ASCII
    /// ones) written as `\u` escapes, as Python's `json.dumps` does.
    fn ascii_json(s: &str, every: usize) -> String {
        let mut out = String::from("\"");
        for (i, c) in s.chars().enumerate() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || !c.is_ascii() || i % every == 0 => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    proptest::proptest! {
        #[test]
        fn random_records_and_their_mutations_agree(
            id in proptest::sample::select(vec!["null", "7", "-0", "1.5e2", "\"a\\u00e9\"", "true", "[1]"]),
            text in "[a-z <>/\"\\\\\n\té😀]{0,40}",
            name in "[a-zé\"]{1,6}",
            value in "[a-z\"\\\\ü]{0,8}",
            every in 1usize..9,
            truth_as_text: bool,
            order in 0usize..6,
            cut in 0usize..400,
            byte: u8,
        ) {
            let calls = serde_json::json!([{"name": name, "arguments": {"k": value, "n": [1, 2.5]}}]);
            let truth = if truth_as_text {
                ascii_json(&calls.to_string(), every)
            } else {
                calls.to_string()
            };
            let mut fields = [
                format!("\"id\": {id}"),
                format!("\"completion\":{}", ascii_json(&text, every)),
                format!("\"ground_truth\" : {truth}"),
            ];
            fields.rotate_left(order % 3);
            if order >= 3 {
                fields.swap(0, 1);
            }
            let line = format!("{{{}}}", fields.join(", "));
            // Every well-formed record with a scalar id is read plainly.
            let mut scratch = Scratch::default();
            proptest::prop_assert_eq!(check(&line, &mut scratch), id != "[1]");
            // A mutated one is read plainly only when that is right.
            let mut bytes = line.into_bytes();
            let at = cut % bytes.len();
            if byte % 2 == 0 {
                bytes.remove(at);
            } else {
                bytes.insert(at, byte);
            }
            // (With the original's truth in the scratch: a mutation after
            // it must not be hidden by the cache.)
            if let Ok(mutated) = String::from_utf8(bytes) {
                check(&mutated, &mut scratch);
                check(&mutated, &mut Scratch::default());
            }
        }
    }
}
