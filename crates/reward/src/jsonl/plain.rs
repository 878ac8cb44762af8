//! The fast reader of plain call records: `{"id"?, "completion": string,
//! "ground_truth": calls or JSON text}` and nothing else, read straight
//! from the line's bytes. No JSON tree is built for the record; the
//! completion's literal is checked and left in the line (decoded into a
//! buffer reused from line to line only when a rule needs the text); the
//! ground truth is read straight into its [`TruthForm`] ([`Call`]s, or
//! the released script's keys, [`CanonicalCalls`], read inside a string
//! literal as it stands where it can), or kept from the line before when
//! its bytes are the same (the G completions of a prompt).
//!
//! The reader only accepts what the general reader
//! ([`super::Record::parse_with`] with [`super::call_truth`]) reads to the
//! same record: anything else (another field, a repeated key, a message as
//! completion, an escaped key, a structured id, a lone surrogate, a ground
//! truth the typed reader refuses, any JSON error) returns `None`, and the
//! general reader then scores the line, errors included. So the verdicts
//! are the same either way; `tests::agrees_with_the_general_reader` and
//! `tests::random_records_and_their_mutations_agree` check that on
//! hostile lines, for both forms of ground truth.

use crate::pyjson;
use crate::search::special;
use crate::{Call, CanonicalCalls};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;
use std::ops::Range;

/// Buffers reused from line to line by one worker, and the last ground
/// truth read, in form `T`.
#[derive(Default)]
pub(super) struct Scratch<T> {
    /// The decoded completion, when it had escapes.
    completion: String,
    /// The decoded ground-truth text, when it was a JSON string.
    truth_text: String,
    /// The last ground truth's JSON value, as it stood in its line.
    truth_raw: Vec<u8>,
    /// The calls read from it.
    truth: T,
    /// A reply's calls, by key (for the released script's rules).
    predicted: CanonicalCalls,
}

/// A form a fast reader keeps ground truths in: [`Call`]s for any rule,
/// [`CanonicalCalls`] for the released script's. Either reader fails
/// where the general reader might read the ground truth differently or
/// refuse it, and may then leave anything in `self`.
pub(super) trait TruthForm: Default {
    /// Reads the decoded text of a ground truth given as a JSON string.
    fn read_text(&mut self, text: &str) -> Option<()>;
    /// Reads the list or object that `rest` starts with; returns its
    /// length.
    fn read_value(&mut self, rest: &str) -> Option<usize>;
    /// Reads a ground truth given as a JSON string straight from the
    /// literal's `body` (after its opening quote), without decoding it;
    /// returns the literal's length from there. `None` where the literal
    /// must be decoded for [`TruthForm::read_text`] (the default).
    fn read_in_string(&mut self, body: &str) -> Option<usize> {
        let _ = body;
        None
    }
}

impl TruthForm for Vec<Call> {
    fn read_text(&mut self, text: &str) -> Option<()> {
        // As `Call::list_from_json` reads text: JSON, whitespace as JSON
        // has it (a string holding calls is left to it).
        *self = serde_json::from_str::<Calls>(text).ok()?.0;
        Some(())
    }

    fn read_value(&mut self, rest: &str) -> Option<usize> {
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Calls>();
        let calls = stream.next()?.ok()?;
        let end = stream.byte_offset();
        // serde's nesting limit (127 levels) counted the record's own
        // braces in the general reader, not in this fresh parse.
        if nests_deeper_than(&rest.as_bytes()[..end], SERDE_MAX_DEPTH - 1) {
            return None;
        }
        *self = calls.0;
        Some(end)
    }
}

impl TruthForm for CanonicalCalls {
    fn read_text(&mut self, text: &str) -> Option<()> {
        self.read_json(text).then_some(())
    }

    fn read_value(&mut self, rest: &str) -> Option<usize> {
        // Its nesting limit is well within serde's, record included.
        self.read_json_prefix(rest)
    }

    fn read_in_string(&mut self, body: &str) -> Option<usize> {
        self.read_json_in_string(body)
    }
}

/// What escapes a string literal's body holds (in increasing order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Escapes {
    /// None: the body is the text.
    None,
    /// No `\u` or `\/` (no escape spells a tag's character).
    NoUnicode,
    /// Any.
    Any,
}

/// A plain record: its id, completion and ground truth.
pub(super) struct Plain<'a, T> {
    /// The record's `id` (null when absent).
    pub id: Value,
    /// The line.
    pub line: &'a str,
    /// Where the completion literal's body is in it (between its quotes;
    /// valid JSON string content).
    pub body: Range<usize>,
    /// What escapes `body` holds.
    pub escapes: Escapes,
    /// The expected calls.
    pub truth: &'a T,
    /// Room for a reply's calls, kept from line to line.
    pub predicted: &'a mut CanonicalCalls,
    /// Where the ground truth's JSON value is in the line.
    pub truth_at: Range<usize>,
    /// Room to decode the completion into.
    decoded: &'a mut String,
}

impl<'a, T> Plain<'a, T> {
    /// The ground truth's literal body (between its quotes, as it stands),
    /// when it was given as a JSON string.
    pub fn truth_literal_body(&self) -> Option<&'a str> {
        let at = self.truth_at.clone();
        (self.line.as_bytes().get(at.start) == Some(&b'"'))
            .then(|| &self.line[at.start + 1..at.end - 1])
    }

    /// The completion text (decoded if it has escapes).
    pub fn completion(&mut self) -> &str {
        if self.escapes != Escapes::None {
            // The body was checked as `string` checks it: this succeeds.
            if let Some((_, true)) = string(self.line, self.body.start, self.decoded) {
                return self.decoded;
            }
        }
        &self.line[self.body.clone()]
    }
}

/// A plain record's keys, each with its closing quote.
const KEYS: [&[u8]; 3] = [b"id\"", b"completion\"", b"ground_truth\""];

/// Reads `line` as a plain call record, or `None` when the general reader
/// must (see the module docs).
pub(super) fn read<'a, T: TruthForm>(
    line: &'a str,
    scratch: &'a mut Scratch<T>,
) -> Option<Plain<'a, T>> {
    let Scratch {
        completion: decoded,
        truth_text,
        truth_raw,
        truth,
        predicted,
    } = scratch;
    let b = line.as_bytes();
    let mut p = skip_ws(b, 0);
    if b.get(p) != Some(&b'{') {
        return None;
    }
    p = skip_ws(b, p + 1);
    let (mut id, mut completion, mut truth_at) = (None, None, None);
    loop {
        // A key without escapes.
        if b.get(p) != Some(&b'"') {
            return None;
        }
        // A usual key by its first letter and one compare; others by a
        // byte loop (keys are short: it beats a SIMD search's set-up).
        let usual = match b.get(p + 1) {
            Some(b'i') => Some(KEYS[0]),
            Some(b'c') => Some(KEYS[1]),
            Some(b'g') => Some(KEYS[2]),
            _ => None,
        };
        let key_end = match usual.filter(|k| b[p + 1..].starts_with(k)) {
            Some(k) => p + k.len(),
            None => p + 1 + b[p + 1..].iter().position(|&c| c == b'"' || c == b'\\')?,
        };
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
                let (end, escapes) = check_string(b, p + 1)?;
                completion = Some((p + 1..end - 1, escapes));
                end
            }
            b"ground_truth" if truth_at.is_none() => {
                let end = cached_truth(line, p, truth_text, truth_raw, truth)?;
                truth_at = Some(p..end);
                end
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
    let (body, escapes) = completion?;
    let truth_at = truth_at?;
    Some(Plain {
        id: id.unwrap_or(Value::Null),
        line,
        body,
        escapes,
        truth,
        predicted,
        truth_at,
        decoded,
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
            if let Some(len) = pyjson::plain_int(&b[p..]) {
                // An `i64` written as its canonical decimal (18 digits at
                // most: no overflow): the value serde reads, without serde.
                let negative = b[p] == b'-';
                let digits = &b[p + usize::from(negative)..p + len];
                let n = digits
                    .iter()
                    .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
                let n = if negative { -n } else { n };
                return Some((Value::from(n), p + len));
            }
            let len = b[p..]
                .iter()
                .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(b.len() - p);
            // serde reads the number as the general reader does.
            let value: Value = serde_json::from_str(&line[p..p + len]).ok()?;
            if value.is_f64() && !line[p..p + len].contains(['.', 'e', 'E']) {
                // An integer past 64 bits (or -0), which a float would
                // change: the general reader refuses it, by name.
                return None;
            }
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
    if has_control(&b[start..first]) {
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
        if let Some(b'"' | b'\\' | b'/') = b.get(i + 1) {
            // The escaped character is itself: it starts the next run.
            seg = i + 1;
            i = special(b, i + 2)?;
            continue;
        }
        let (c, len) = escape(b, i)?;
        out.push(c);
        seg = i + len;
        // Escaped text has short runs between escapes: a word-at-a-time
        // scan beats a SIMD search's set-up there.
        i = special(b, seg)?;
    }
}

/// Checks the JSON string body starting at `start` (after the opening
/// quote) as [`string`] does, without decoding it: the position after the
/// closing quote and what escapes it holds.
fn check_string(b: &[u8], start: usize) -> Option<(usize, Escapes)> {
    // Up to the first quote or backslash the run is long and plain: a
    // SIMD search, then a check for control characters.
    let first = start + memchr::memchr2(b'"', b'\\', &b[start..])?;
    if has_control(&b[start..first]) {
        return None;
    }
    // Escaped text follows: 64 bytes at a time, by bitmasks.
    let (mut p, mut escapes) = (first, Escapes::None);
    let (mut carry, mut skip_to) = (0u64, 0usize);
    while let Some(block) = b.get(p..p + 64) {
        let Classes {
            quotes,
            backslashes,
            controls,
        } = Classes::of(block);
        let escaped = escaped_bytes(backslashes, &mut carry);
        let ends = quotes & !escaped;
        // The bytes before the closing quote (all, if none here).
        let inside = (ends & ends.wrapping_neg()).wrapping_sub(1);
        if controls & inside != 0 {
            return None; // a control character, escaped or not
        }
        if escaped & inside != 0 {
            escapes = escapes.max(Escapes::NoUnicode);
        }
        // Escapes other than `\"` and `\\`: checked one by one.
        let mut rare = escaped & inside & !(quotes | backslashes);
        while rare != 0 {
            let at = p + rare.trailing_zeros() as usize;
            rare &= rare - 1;
            if at < skip_to {
                continue; // the low half of a surrogate pair
            }
            let (_, len) = escape(b, at - 1)?;
            if matches!(b[at], b'u' | b'/') {
                escapes = Escapes::Any;
            }
            skip_to = at - 1 + len;
        }
        if ends != 0 {
            return Some((p + ends.trailing_zeros() as usize + 1, escapes));
        }
        p += 64;
    }
    // The last bytes one special at a time (from the backslash when the
    // block's last one escapes the next byte).
    let i = if skip_to > p {
        special(b, skip_to)? // past a surrogate pair read in the block
    } else if carry != 0 {
        p - 1
    } else {
        special(b, p)?
    };
    check_escapes_from(b, i, escapes)
}

/// The rest of [`check_string`] one special byte at a time, from `i` (a
/// quote, backslash or control character), with the `escapes` seen so
/// far.
fn check_escapes_from(b: &[u8], mut i: usize, mut escapes: Escapes) -> Option<(usize, Escapes)> {
    loop {
        match b[i] {
            b'"' => return Some((i + 1, escapes)),
            b'\\' => {}
            _ => return None, // a control character
        }
        let len = match b.get(i + 1) {
            Some(b'"' | b'\\' | b'n' | b't' | b'r' | b'b' | b'f') => 2,
            _ => escape(b, i)?.1,
        };
        escapes = match (escapes, b[i + 1]) {
            (_, b'u' | b'/') | (Escapes::Any, _) => Escapes::Any,
            _ => Escapes::NoUnicode,
        };
        i = special(b, i + len)?;
    }
}

/// Whether `run` holds a control character (a byte below 0x20): the
/// least byte, sixty-four at a time in four lanes (one `min` per sixteen
/// bytes, where an or of comparisons takes three).
fn has_control(run: &[u8]) -> bool {
    use wide::u8x16;
    let lane = |c: &[u8]| u8x16::from(*c.first_chunk::<16>().expect("16 bytes"));
    let mut blocks = run.chunks_exact(64);
    let mut least = [u8x16::splat(0xff); 4];
    for block in &mut blocks {
        for (m, c) in least.iter_mut().zip(block.chunks_exact(16)) {
            *m = m.min(lane(c));
        }
    }
    let least = least[0].min(least[1]).min(least[2].min(least[3]));
    least.to_array().into_iter().any(|c| c < 0x20) || blocks.remainder().iter().any(|&c| c < 0x20)
}

/// Where a 64-byte block holds quotes, backslashes and control
/// characters: bit `i` for byte `i`.
struct Classes {
    quotes: u64,
    backslashes: u64,
    controls: u64,
}

impl Classes {
    /// Sixteen bytes at a time (SSE2 on x86-64, NEON on aarch64) of a
    /// 64-byte block.
    #[inline]
    fn of(block: &[u8]) -> Self {
        use wide::u8x16;
        let (quote, backslash, space) =
            (u8x16::splat(b'"'), u8x16::splat(b'\\'), u8x16::splat(0x1f));
        let mut out = Self {
            quotes: 0,
            backslashes: 0,
            controls: 0,
        };
        let lanes: [u8x16; 4] = std::array::from_fn(|i| {
            u8x16::from(*block[16 * i..].first_chunk::<16>().expect("16 bytes"))
        });
        for (i, &v) in lanes.iter().enumerate() {
            let shift = 16 * i;
            out.quotes |= u64::from(v.simd_eq(quote).to_bitmask()) << shift;
            out.backslashes |= u64::from(v.simd_eq(backslash).to_bitmask()) << shift;
        }
        // Control characters are rare: their mask only when the least
        // byte is one.
        let least = lanes[0].min(lanes[1]).min(lanes[2].min(lanes[3]));
        if least.min(space).simd_eq(least).to_bitmask() != 0 {
            for (i, &v) in lanes.iter().enumerate() {
                out.controls |= u64::from(v.min(space).simd_eq(v).to_bitmask()) << (16 * i);
            }
        }
        out
    }
}

/// The bytes a backslash escapes, given a block's backslashes: the byte
/// after each odd-length run's last backslash. `carry` says whether the
/// block's first byte is escaped (from the block before) and is set for
/// the next block.
#[inline]
fn escaped_bytes(backslashes: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    // A backslash escaped by the block before starts no run.
    let backslashes = backslashes & !*carry;
    let follows = (backslashes << 1) | *carry;
    // Runs starting on odd bits, then the carry of adding each run to its
    // start shows where odd-length runs end.
    let odd_starts = backslashes & !EVEN & !follows;
    let (sum, overflow) = odd_starts.overflowing_add(backslashes);
    *carry = u64::from(overflow);
    (EVEN ^ (sum << 1)) & follows
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
fn cached_truth<T: TruthForm>(
    line: &str,
    p: usize,
    text: &mut String,
    raw: &mut Vec<u8>,
    truth: &mut T,
) -> Option<usize> {
    let rest = &line.as_bytes()[p..];
    if !raw.is_empty() && rest.starts_with(raw) {
        return Some(p + raw.len());
    }
    raw.clear();
    let end = ground_truth(line, p, text, truth)?;
    raw.extend_from_slice(&line.as_bytes()[p..end]);
    Some(end)
}

/// Reads the ground truth at `p` into `truth`: a JSON string holding the
/// calls (xLAM's form), a list of calls or one call. Returns the position
/// after the value.
fn ground_truth<T: TruthForm>(
    line: &str,
    p: usize,
    text: &mut String,
    truth: &mut T,
) -> Option<usize> {
    match *line.as_bytes().get(p)? {
        b'"' => {
            if let Some(len) = truth.read_in_string(&line[p + 1..]) {
                return Some(p + 1 + len);
            }
            let (end, escaped) = string(line, p + 1, text)?;
            let inner = if escaped {
                &text[..]
            } else {
                &line[p + 1..end - 1]
            };
            truth.read_text(inner)?;
            Some(end)
        }
        b'[' | b'{' => Some(p + truth.read_value(&line[p..])?),
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

    /// Scratch for both forms of ground truth, kept across lines.
    #[derive(Default)]
    struct Scratches {
        calls: Scratch<Vec<Call>>,
        canonical: Scratch<CanonicalCalls>,
    }

    /// Each plain reader (ground truth as calls, and canonical) either
    /// declines or reads what the general reader reads, with whatever the
    /// scratch holds from earlier lines. Returns whether each read it.
    fn check_forms(line: &str, scratch: &mut Scratches) -> (bool, bool) {
        let general = Record::parse_with(line.as_bytes(), call_truth);
        let accepted = || {
            let r = general
                .as_ref()
                .unwrap_or_else(|e| panic!("{line}: general reader refused: {e:?}"));
            assert!(r.extra.is_empty(), "{line}");
            r
        };
        let calls = read(line, &mut scratch.calls).map(|mut plain| {
            let r = accepted();
            let body = &plain.line[plain.body.clone()];
            let escapes = match (
                body.contains('\\'),
                body.contains("\\u") || body.contains("\\/"),
            ) {
                (false, _) => Escapes::None,
                (true, false) => Escapes::NoUnicode,
                (true, true) => Escapes::Any,
            };
            // (An escaped backslash before a `u` or `/` counts too: a
            // harmless overstatement the reader may make or not.)
            assert!(
                plain.escapes == escapes || plain.escapes == Escapes::NoUnicode,
                "{line}"
            );
            let truth = plain.truth;
            assert_eq!(
                (&plain.id.clone(), plain.completion(), &truth[..]),
                (&r.id, r.completion.as_str(), &r.truth[..]),
                "{line}"
            );
        });
        let canonical = read(line, &mut scratch.canonical).map(|mut plain| {
            let r = accepted();
            let truth = plain.truth;
            assert_eq!(
                (&plain.id.clone(), plain.completion(), truth),
                (
                    &r.id,
                    r.completion.as_str(),
                    &CanonicalCalls::from_calls(&r.truth)
                ),
                "{line}"
            );
        });
        (calls.is_some(), canonical.is_some())
    }

    /// [`check_forms`]: whether the calls form read it plainly.
    fn check(line: &str, scratch: &mut Scratches) -> bool {
        check_forms(line, scratch).0
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
            r#"{"completion": "x", "ground_truth": "[{\"name\": \"f\", \"arguments\": {\"a\": 1E-400, \"b\": -0.0, \"c\": [1.5e300, -7]}}]"}"#,
        ];
        // One scratch throughout: a line may meet the last one's truth.
        let mut scratch = Scratches::default();
        for line in read_plainly.iter().chain(&read_plainly) {
            assert_eq!(
                check_forms(line, &mut scratch),
                (true, true),
                "declined: {line}"
            );
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
        // (The canonical form stops at 64 levels.)
        assert_eq!(check_forms(&nested(124), &mut scratch), (true, false));
        assert_eq!(check_forms(&nested(50), &mut scratch), (true, true));
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
            // Every well-formed record with a scalar id is read plainly,
            // but for an integer id a float would change (-0, refused by
            // the general reader).
            let mut scratch = Scratches::default();
            let plain = id != "[1]" && id != "-0";
            proptest::prop_assert_eq!(check_forms(&line, &mut scratch), (plain, plain));
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
                check_forms(&mutated, &mut scratch);
                check_forms(&mutated, &mut Scratches::default());
            }
        }
    }

    /// Every position of runs of every length up to a few blocks, in each
    /// lane and in the remainder: the least-byte search flags exactly the
    /// bytes below 0x20, and a block's control mask has exactly their
    /// bits.
    #[test]
    fn control_characters_are_found_wherever_they_are() {
        for len in 0..200 {
            let run = vec![b'a'; len];
            assert!(!has_control(&run), "{len}");
            for at in 0..len {
                for (byte, control) in [
                    (0x00, true),
                    (0x0a, true),
                    (0x1f, true),
                    (0x20, false),
                    (0x7f, false),
                    (0x80, false),
                    (0xff, false),
                ] {
                    let mut run = run.clone();
                    run[at] = byte;
                    assert_eq!(has_control(&run), control, "{len} {at} {byte:#x}");
                    if len == 64 {
                        let want = if control { 1u64 << at } else { 0 };
                        assert_eq!(Classes::of(&run).controls, want, "{at} {byte:#x}");
                    }
                }
            }
        }
    }

    /// The escaped bytes of a backslash mask, one byte at a time.
    fn escaped_one_by_one(backslashes: &[bool]) -> Vec<bool> {
        let mut out = vec![false; backslashes.len()];
        let mut i = 0;
        while i < backslashes.len() {
            if backslashes[i] && i + 1 < backslashes.len() {
                out[i + 1] = true;
                i += 2;
            } else {
                i += 1;
            }
        }
        out
    }

    /// [`check_string`] as it was before it read 64-byte blocks: one
    /// special byte at a time from the start (the reference for the block
    /// reader).
    fn check_string_by_escapes(b: &[u8], start: usize) -> Option<(usize, Escapes)> {
        check_escapes_from(b, special(b, start)?, Escapes::None)
    }

    proptest::proptest! {
        /// Backslash runs of any length, across blocks: the bitmask finds
        /// the bytes a one-by-one reading finds escaped.
        #[test]
        fn escaped_bytes_are_the_escaped_bytes(bits in proptest::collection::vec(
            proptest::sample::select(vec![false, false, true]), 0..400,
        )) {
            let expected = escaped_one_by_one(&bits);
            let mut carry = 0u64;
            for (block, want) in bits.chunks(64).zip(expected.chunks(64)) {
                let mask = block
                    .iter()
                    .enumerate()
                    .fold(0u64, |m, (i, &bit)| m | (u64::from(bit) << i));
                let got = escaped_bytes(mask, &mut carry);
                for (i, &w) in want.iter().enumerate() {
                    proptest::prop_assert_eq!(got >> i & 1 == 1, w, "bit {}", i);
                }
            }
        }

        /// Literals of escapes (valid, invalid, surrogate pairs split
        /// anywhere across blocks), quotes and control characters: the
        /// block reader ends and classifies each as the one-by-one reader
        /// does.
        #[test]
        fn block_check_is_the_one_by_one_check(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "a", "é", "the user wants ", "\\\"", "\\\\", "\\n", "\\t", "\\/", "\\u00e9",
                "\\ud83d\\ude00", "\\ud800", "\\udc00x", "\\x", "\\u12", "\\", "\"", "\u{1}",
                "\\\\\\\"", "\\\\\\\\",
            ]), 0..60),
            shift in 0usize..70,
        ) {
            let text = format!("{{\"c\": \"{}{}\"}}", "x".repeat(shift), pieces.concat());
            let b = text.as_bytes();
            proptest::prop_assert_eq!(
                check_string(b, 7),
                check_string_by_escapes(b, 7),
                "{}", text
            );
        }
    }
}
