//! Ground truths in the form the released script compares them: one
//! Counter key per call, `(name, json.dumps(arguments, sort_keys=True))`,
//! as bytes ([`key_of`]). Batch scorers read them straight from JSON text
//! ([`CanonicalCalls::from_json`]: one pass, no JSON tree), the rule
//! builds them from [`Call`]s otherwise.

use crate::pyjson::{self, push_run, PyInt, PyValue};
use crate::search::{special, special_short};
use crate::Call;

/// Ground-truth calls as the released script compares them: each call's
/// Counter key, as the same bytes a predicted call's key is written in.
/// Built once per ground truth, then compared byte for byte.
///
/// ```
/// use toolgym_reward::{CanonicalCalls, Call, RewardRule, ToolN1Rule};
/// let calls = Call::list_from_json(r#"[{"name": "f", "arguments": {"b": 1, "a": [2.5]}}]"#).unwrap();
/// let truth = CanonicalCalls::from_calls(&calls);
/// assert_eq!(CanonicalCalls::from_json(r#"[{"arguments": {"a": [2.5], "b": 1}, "name": "f"}]"#), Some(truth.clone()));
/// let reply = r#"<think>x</think><tool_call>[{"name": "f", "arguments": {"a": [2.5], "b": 1}}]</tool_call>"#;
/// assert_eq!(ToolN1Rule::V0.score_canonical(reply, &truth), ToolN1Rule::V0.score(reply, &calls));
/// ```
#[derive(Clone, Debug, Default)]
pub struct CanonicalCalls {
    /// The keys, one after another.
    bytes: Vec<u8>,
    /// Per call: where its name key ends and where its whole key ends.
    ends: Vec<(usize, usize)>,
    /// Each call's text as it stood in a literal's body (from its `{` to
    /// its `}`), one after another, when read by
    /// [`CanonicalCalls::read_json_in_string`]: a reply's call written
    /// with the same bytes has the same key ([`CanonicalCalls::known_call`]).
    /// Empty otherwise; no part of the value.
    sources: Vec<u8>,
    /// Where each call's text ends in `sources`.
    source_ends: Vec<usize>,
    /// Buffers kept for the next read (no part of the value).
    work: Work,
}

impl PartialEq for CanonicalCalls {
    fn eq(&self, other: &Self) -> bool {
        (&self.bytes, &self.ends) == (&other.bytes, &other.ends)
    }
}

impl Eq for CanonicalCalls {}

/// What [`CanonicalCalls::read_escaped_piece`] made of a piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Piece {
    /// Read: the calls are in `self`.
    Read,
    /// Valid JSON up to where the piece ends too soon: not JSON for
    /// Python's `json` either (a `JSONDecodeError`).
    CutOff,
    /// Left to the general reader.
    Declined,
}

/// A reader's buffers, kept from one ground truth to the next.
#[derive(Clone, Debug, Default)]
struct Work {
    /// Whether the last read failed at the end of its text.
    stopped_at_end: bool,
    /// The members of the objects being read, innermost last.
    members: Vec<Member>,
    /// Room to lay out an object's sorted members.
    sorted: Vec<u8>,
    /// A call object's members.
    call: Vec<u8>,
}

/// Deepest ground truth [`CanonicalCalls::from_json`] reads (deeper ones
/// are left to the general reader, whose limit is serde_json's).
const MAX_DEPTH: usize = 64;

impl CanonicalCalls {
    /// The keys of `calls`.
    pub fn from_calls(calls: &[Call]) -> Self {
        let mut out = Self::default();
        for c in calls {
            out.start_call(c.name.as_bytes());
            pyjson::canonical(&PyValue::from_serde_map(&c.arguments), &mut out.bytes);
            out.end_call();
        }
        out
    }

    /// The keys of the calls in JSON text, as [`Call::list_from_json`]
    /// reads it (a list of `{"name": string, "arguments": object}`
    /// objects, or one; other fields ignored; the last of repeated keys
    /// wins), or `None` when it might read the text differently or
    /// refuse it: not that shape (arguments as a string included), bad
    /// JSON, or anything where Python's `json` and serde_json disagree
    /// (`NaN`/`Infinity`, integers beyond `i64`, floats that overflow,
    /// lone surrogates, the integer `-0`, nesting over 64 levels).
    pub fn from_json(text: &str) -> Option<Self> {
        let mut calls = Self::default();
        calls.read_json(text).then_some(calls)
    }

    /// [`CanonicalCalls::from_json`] into `self`, reusing its buffers;
    /// `false` (and no calls) where that returns `None`.
    pub fn read_json(&mut self, text: &str) -> bool {
        let b = text.as_bytes();
        let whole = self
            .read_json_prefix(text)
            .is_some_and(|end| skip_ws(b, end) == b.len());
        if !whole {
            self.clear();
        }
        whole
    }

    /// [`CanonicalCalls::read_json`] for the JSON value at the start of
    /// `text` (after JSON whitespace): where it ends, or `None`.
    pub fn read_json_prefix(&mut self, text: &str) -> Option<usize> {
        self.read_with::<false>(text, false, None, |r| Some(r.pos))
    }

    /// [`CanonicalCalls::read_json`] of the text a JSON string literal
    /// holds, read from the literal's `body` (what follows its opening
    /// quote) as it stands, without decoding it (xLAM's ground truths are
    /// such strings): where the literal ends (after its closing quote), or
    /// `None` (and no calls), also where it holds a `\u` escape outside the
    /// text's own escapes (decode it and use `read_json` then). The
    /// text's escapes (`\\u00e9`, `\\\"` in the literal) are read.
    /// JSON whitespace around the text is skipped, as
    /// [`Call::list_from_json`] (and Python's `json.loads`) skip it.
    pub fn read_json_in_string(&mut self, body: &str) -> Option<usize> {
        self.read_with::<true>(body, true, None, |r| {
            r.skip_ws();
            (r.s.get(r.pos) == Some(&b'"')).then_some(r.pos + 1)
        })
    }

    /// [`CanonicalCalls::read_json_in_string`] of a whole piece of a
    /// literal's body (its whitespace trimmed). A call written with the
    /// same bytes as one of `known`'s (read from a literal's body too) is
    /// given that call's key without being read again.
    pub(super) fn read_escaped_piece(&mut self, piece: &str, known: &CanonicalCalls) -> Piece {
        let mut at_end = false;
        // Only a literal's calls have texts to repeat.
        let known = Some(known).filter(|k| !k.source_ends.is_empty());
        let read = self.read_with::<true>(piece, false, known, |r| {
            r.skip_ws();
            (r.pos == r.s.len()).then_some(r.pos)
        });
        if read.is_none() {
            // Stopped by the end of the text, not by a byte it declined:
            // what came before was valid JSON, so the text is a cut-off
            // prefix of some, which Python's `json` refuses too.
            at_end = self.work.stopped_at_end;
        }
        match (read, at_end) {
            (Some(_), _) => Piece::Read,
            (None, true) => Piece::CutOff,
            (None, false) => Piece::Declined,
        }
    }

    /// Reads the calls at the start of `text` (after whitespace): a
    /// literal's body when `IN` (see [`Reader`]), each call's text kept
    /// when `keep_sources`, `known`'s calls' texts tried first; `end`
    /// checks what follows and gives the length read. No calls unless it
    /// succeeds.
    fn read_with<const IN: bool>(
        &mut self,
        text: &str,
        keep_sources: bool,
        known: Option<&CanonicalCalls>,
        end: impl FnOnce(&mut Reader<'_, '_, IN>) -> Option<usize>,
    ) -> Option<usize> {
        self.clear();
        let mut work = std::mem::take(&mut self.work);
        work.members.clear(); // what a failed read left
        let mut r = Reader::<IN> {
            s: text.as_bytes(),
            pos: 0,
            work: &mut work,
            keep_sources,
            known,
        };
        r.skip_ws();
        let read = r.calls(self).and_then(|()| end(&mut r));
        work.stopped_at_end = read.is_none() && r.pos >= r.s.len();
        self.work = work;
        if read.is_none() {
            self.clear();
        }
        read
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.sources.clear();
        self.source_ends.clear();
    }

    /// Appends call `j` of `other` (its key).
    fn push_call_of(&mut self, other: &CanonicalCalls, j: usize) {
        let start = self.bytes.len();
        let (from, (name_end, end)) = (other.start(j), other.ends[j]);
        self.bytes.extend_from_slice(&other.bytes[from..end]);
        self.ends
            .push((start + name_end - from, start + end - from));
    }

    /// The call of these whose text `text` starts with (trying call
    /// `hint` first), and that text's length. Beyond
    /// [`crate::GREEDY_LIMIT`] calls only `hint` is tried, so a long
    /// reply costs a bounded number of compares per call.
    pub(super) fn known_call(&self, text: &[u8], hint: usize) -> Option<(usize, usize)> {
        let n = self.source_ends.len();
        let tries = if n > crate::GREEDY_LIMIT { 1 } else { n };
        (0..tries)
            .map(|i| (hint + i) % n)
            .find(|&j| text.starts_with(self.source(j)))
            .map(|j| (j, self.source(j).len()))
    }

    /// Whether the payload text `piece` is, whitespace aside, the text
    /// these calls were read from: `literal_body`, a ground truth's
    /// literal body read by [`CanonicalCalls::read_json_in_string`] (with
    /// at least one call). Then reading `piece` as a reply gives these
    /// calls' keys in this order (the same bytes, read the same way, each
    /// call copied), so a caller may skip the read.
    pub(super) fn is_read_from(&self, literal_body: &str, piece: &str) -> bool {
        !self.source_ends.is_empty()
            && trim_in_string(piece.as_bytes()) == trim_in_string(literal_body.as_bytes())
    }

    /// Call `j`'s text (see `sources`), as [`CanonicalCalls::key`] is
    /// its key.
    fn source(&self, j: usize) -> &[u8] {
        let from = j.checked_sub(1).map_or(0, |p| self.source_ends[p]);
        &self.sources[from..self.source_ends[j]]
    }

    fn start_call(&mut self, name: &[u8]) {
        pyjson::push_canonical_str(name, &mut self.bytes);
        let name_end = self.bytes.len();
        self.ends.push((name_end, name_end));
    }

    fn end_call(&mut self) {
        if let Some(last) = self.ends.last_mut() {
            last.1 = self.bytes.len();
        }
    }

    /// How many calls.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no calls.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn start(&self, j: usize) -> usize {
        j.checked_sub(1).map_or(0, |p| self.ends[p].1)
    }

    /// Call `j`'s key with its arguments.
    pub(super) fn key(&self, j: usize) -> &[u8] {
        &self.bytes[self.start(j)..self.ends[j].1]
    }

    /// Call `j`'s key without its arguments.
    pub(super) fn name_key(&self, j: usize) -> &[u8] {
        &self.bytes[self.start(j)..self.ends[j].0]
    }
}

/// A byte string equal for two (name, arguments) pairs exactly when the
/// script's Counter keys are equal (for str names; other names get a key no
/// str name can have). The name's part ends where its own bytes say (a
/// str's length comes first; other values are self-delimiting), so no
/// name, whatever bytes it holds (`\u0000` included), can run on into
/// the arguments' part.
pub(super) fn key_of(name: &PyValue<'_>, args: Option<&PyValue<'_>>) -> Vec<u8> {
    let mut out = Vec::new();
    match name {
        PyValue::Str(s) => pyjson::push_canonical_str(&s.0, &mut out),
        other => {
            out.push(b'x');
            pyjson::canonical(other, &mut out);
        }
    }
    if let Some(a) = args {
        pyjson::canonical(a, &mut out);
    }
    out
}

/// A literal body's text without the whitespace a reader of it skips at
/// either end (spaces, and `\n`, `\t`, `\r` escapes: a trailing letter
/// only when an odd run of backslashes escapes it).
fn trim_in_string(b: &[u8]) -> &[u8] {
    let from = skip_ws_in_string(b, 0);
    let mut to = b.len();
    while to > from {
        if b[to - 1] == b' ' {
            to -= 1;
            continue;
        }
        let escaped = matches!(b[to - 1], b'n' | b't' | b'r')
            && b[from..to - 1]
                .iter()
                .rev()
                .take_while(|&&c| c == b'\\')
                .count()
                % 2
                == 1;
        if !escaped {
            break;
        }
        to -= 2;
    }
    &b[from..to]
}

/// The first byte at or after `p` of a literal's body that is not
/// whitespace of the text it holds: a space, or a `\n`, `\t` or `\r`
/// escape (most tokens follow one space or none: one byte decides).
#[inline(always)]
fn skip_ws_in_string(b: &[u8], mut p: usize) -> usize {
    loop {
        match b.get(p) {
            Some(b' ') => p += 1,
            Some(b'\\') if matches!(b.get(p + 1), Some(b'n' | b't' | b'r')) => p += 2,
            _ => return p,
        }
    }
}

/// The first byte at or after `p` that is not JSON whitespace.
fn skip_ws(b: &[u8], mut p: usize) -> usize {
    while matches!(b.get(p), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        p += 1;
    }
    p
}

/// Most members an object may have for [`Reader::object`] to sort them
/// by insertion.
const SMALL_OBJECT: usize = 12;

/// `a < b` for short byte strings, without a `memcmp` call.
#[inline]
fn less(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// One pass over JSON text, writing [`pyjson::canonical`]'s bytes for each
/// value without building it. Every method returns `None` on anything the
/// general reader might read differently (see
/// [`CanonicalCalls::from_json`]).
///
/// With `IN`, the text is the body of a JSON string, read as it stands:
/// `\"` is a quote, `\n`, `\t` and `\r` are whitespace, and any other
/// escape (or a bare quote or control character) stops the reader. (A
/// parameter, not a field: each mode's reader is compiled on its own.)
struct Reader<'t, 'w, const IN: bool> {
    s: &'t [u8],
    pos: usize,
    work: &'w mut Work,
    /// Whether each call's text is copied to the calls' `sources`.
    keep_sources: bool,
    /// Calls read before (with their texts) that a call here may repeat.
    known: Option<&'t CanonicalCalls>,
}

/// An object member being read: where its decoded key is in the output
/// buffer, and where the whole member (key length, key, canonical value).
#[derive(Clone, Copy, Debug)]
struct Member {
    key: (usize, usize),
    whole: (usize, usize),
}

/// What a call object's `name` or `arguments` member held last.
enum Field {
    Missing,
    Bad,
    /// A range of the scratch buffer.
    At(usize, usize),
}

impl<const IN: bool> Reader<'_, '_, IN> {
    /// Moves past whitespace.
    #[inline(always)]
    fn skip_ws(&mut self) {
        self.pos = if IN {
            skip_ws_in_string(self.s, self.pos)
        } else {
            skip_ws(self.s, self.pos)
        };
    }

    /// Whether a string literal starts here.
    #[inline(always)]
    fn at_quote(&self) -> bool {
        if IN {
            self.s.get(self.pos..self.pos + 2) == Some(b"\\\"")
        } else {
            self.s.get(self.pos) == Some(&b'"')
        }
    }

    /// A list of call objects or one call object, into `out`.
    fn calls(&mut self, out: &mut CanonicalCalls) -> Option<()> {
        match self.s.get(self.pos)? {
            b'[' => {
                self.pos += 1;
                if self.list_next(true)? {
                    let mut i = 0;
                    loop {
                        self.call_at(out, i)?;
                        i += 1;
                        if !self.list_next(false)? {
                            break;
                        }
                    }
                }
                Some(())
            }
            b'{' => self.call_at(out, 0),
            _ => None,
        }
    }

    /// Call `i` of the list: the key of a known call with the same text
    /// (the same bytes read the same way), else read; its text kept when
    /// asked.
    fn call_at(&mut self, out: &mut CanonicalCalls, i: usize) -> Option<()> {
        let start = self.pos;
        match self
            .known
            .and_then(|k| Some((k, k.known_call(&self.s[start..], i)?)))
        {
            Some((known, (j, len))) => {
                out.push_call_of(known, j);
                self.pos += len;
            }
            None => self.call(out)?,
        }
        if self.keep_sources {
            out.sources.extend_from_slice(&self.s[start..self.pos]);
            out.source_ends.push(out.sources.len());
        }
        Some(())
    }

    /// After `[` (`first`) or an element: whether another element follows
    /// (positioned at it), or the list ended (positioned after `]`).
    fn list_next(&mut self, first: bool) -> Option<bool> {
        self.skip_ws();
        match *self.s.get(self.pos)? {
            b']' => {
                self.pos += 1;
                Some(false)
            }
            b',' if !first => {
                self.pos += 1;
                self.skip_ws();
                Some(true)
            }
            _ if first => Some(true),
            _ => None,
        }
    }

    /// After `{` (`first`) or a member: the next key, decoded into `out`,
    /// with the reader at its value; `None` inside the `Option` when the
    /// object ended.
    fn object_next(&mut self, first: bool, out: &mut Vec<u8>) -> Option<Option<(usize, usize)>> {
        self.skip_ws();
        match *self.s.get(self.pos)? {
            b'}' => {
                self.pos += 1;
                return Some(None);
            }
            b',' if !first => {
                self.pos += 1;
                self.skip_ws();
            }
            _ if first => {}
            _ => return None,
        }
        let start = out.len();
        // Keys are plain strings: read here without the call into
        // `string_into` (1% of all instructions when it was not).
        match self.plain_string() {
            Some((from, to)) => push_run(out, self.s, from, to),
            None => self.string_into(out)?,
        }
        self.skip_ws();
        if self.s.get(self.pos) != Some(&b':') {
            return None;
        }
        self.pos += 1;
        self.skip_ws();
        Some(Some((start, out.len())))
    }

    /// A call object at `{`: its name and arguments go to `calls`.
    fn call(&mut self, calls: &mut CanonicalCalls) -> Option<()> {
        if self.s.get(self.pos) != Some(&b'{') {
            return None;
        }
        self.pos += 1;
        let (pos, len, ends) = (self.pos, calls.bytes.len(), calls.ends.len());
        if self.name_then_arguments(calls).is_some() {
            return Some(());
        }
        // Any other object: members into scratch, then name and arguments.
        self.pos = pos;
        calls.bytes.truncate(len);
        calls.ends.truncate(ends);
        let mut scratch = std::mem::take(&mut self.work.call);
        scratch.clear();
        let read = self.call_members(&mut scratch);
        match read {
            Some(Some(((n0, n1), (a0, a1)))) => {
                calls.start_call(&scratch[n0..n1]);
                calls.bytes.extend_from_slice(&scratch[a0..a1]);
                calls.end_call();
            }
            // A whole object, not a call: declined here, at its `{`, not
            // where the text ends (a reply `{}` is the script's schema
            // error, not a payload cut off).
            Some(None) => self.pos = pos - 1,
            None => {}
        }
        self.work.call = scratch;
        read.flatten().map(|_| ())
    }

    /// The usual call object after its `{`: `"name"` with a string, then
    /// `"arguments"` with an object, and nothing else, written straight
    /// into `calls`. `None` on anything else (left to the caller to read
    /// again from the start).
    fn name_then_arguments(&mut self, calls: &mut CanonicalCalls) -> Option<()> {
        self.skip_ws();
        if !self.at_key(b"name") || !self.at_quote() {
            return None;
        }
        self.string_value(&mut calls.bytes)?;
        let name_end = calls.bytes.len();
        self.skip_ws();
        if self.s.get(self.pos) != Some(&b',') {
            return None;
        }
        self.pos += 1;
        self.skip_ws();
        if !self.at_key(b"arguments") || self.s.get(self.pos) != Some(&b'{') {
            return None;
        }
        self.value(&mut calls.bytes, 1)?;
        self.skip_ws();
        if self.s.get(self.pos) != Some(&b'}') {
            return None;
        }
        self.pos += 1;
        calls.ends.push((name_end, calls.bytes.len()));
        Some(())
    }

    /// Whether the key `key` (written without escapes) and its colon come
    /// next; moves past them and the whitespace after if so (and may have
    /// moved if not: the caller reads again from where it started).
    #[inline]
    fn at_key<const N: usize>(&mut self, key: &[u8; N]) -> bool {
        let quote: &[u8] = if IN { b"\\\"" } else { b"\"" };
        let (at, q) = (self.pos, quote.len());
        // Byte by byte: the lengths are known here, and a `memcmp` call
        // for a few bytes costs more than the compare.
        let same = |from: usize, want: &[u8]| {
            self.s
                .get(from..from + want.len())
                .is_some_and(|have| have.iter().zip(want).all(|(a, b)| a == b))
        };
        if !(same(at, quote) && same(at + q, key) && same(at + q + N, quote)) {
            return false;
        }
        self.pos = at + 2 * q + N;
        self.skip_ws();
        if self.s.get(self.pos) != Some(&b':') {
            return false;
        }
        self.pos += 1;
        self.skip_ws();
        true
    }

    /// A call object's members after its `{`, into `scratch`: where its
    /// (last) name and arguments are; `Some(None)` for a whole object
    /// without a string name and object arguments.
    #[allow(clippy::type_complexity)]
    fn call_members(
        &mut self,
        scratch: &mut Vec<u8>,
    ) -> Option<Option<((usize, usize), (usize, usize))>> {
        let (mut name, mut args) = (Field::Missing, Field::Missing);
        let mut first = true;
        while let Some((k0, k1)) = self.object_next(first, scratch)? {
            first = false;
            let is_name = &scratch[k0..k1] == b"name";
            let is_args = &scratch[k0..k1] == b"arguments";
            let v0 = scratch.len();
            let string = self.at_quote();
            let object = self.s.get(self.pos) == Some(&b'{');
            if is_name && string {
                self.string_into(scratch)?;
            } else {
                self.value(scratch, 1)?;
            }
            let field = if (is_name && string) || (is_args && object) {
                Field::At(v0, scratch.len())
            } else {
                Field::Bad
            };
            if is_name {
                name = field;
            } else if is_args {
                args = field;
            }
        }
        Some(match (name, args) {
            (Field::At(n0, n1), Field::At(a0, a1)) => Some(((n0, n1), (a0, a1))),
            _ => None,
        })
    }

    /// Appends the canonical bytes of the value at the reader: plain
    /// strings and integers (most values) here, without a call; the rest
    /// by [`Reader::value`].
    #[inline(always)]
    fn element(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if let Some((from, to)) = self.plain_string() {
            out.push(b's');
            out.extend_from_slice(&((to - from) as u64).to_le_bytes());
            push_run(out, self.s, from, to);
            return Some(());
        }
        if let Some(len) = self
            .s
            .get(self.pos)
            .filter(|c| matches!(c, b'-' | b'0'..=b'9'))
            .and_then(|_| pyjson::plain_int(&self.s[self.pos..]))
        {
            // Its canonical bytes are its text.
            out.push(b'i');
            push_run(out, self.s, self.pos, self.pos + len);
            out.push(b';');
            self.pos += len;
            return Some(());
        }
        self.value(out, depth)
    }

    /// Appends the canonical bytes of the value at the reader.
    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        match *self.s.get(self.pos)? {
            b'"' | b'\\' => self.string_value(out)?,
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                out.push(b'[');
                let len_at = out.len();
                out.extend_from_slice(&[0; 8]);
                let mut n = 0u64;
                if self.list_next(true)? {
                    loop {
                        self.element(out, depth + 1)?;
                        n += 1;
                        if !self.list_next(false)? {
                            break;
                        }
                    }
                }
                out[len_at..len_at + 8].copy_from_slice(&n.to_le_bytes());
            }
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                self.object(out, depth)?;
            }
            b't' => self.literal(b"true", b"T", out)?,
            b'f' => self.literal(b"false", b"F", out)?,
            b'n' => self.literal(b"null", b"n", out)?,
            b'-' | b'0'..=b'9' => {
                if let Some((v, len)) = pyjson::plain_float(&self.s[self.pos..]) {
                    // A plain fraction: `canonical`'s bytes for its value.
                    out.push(b'f');
                    out.extend_from_slice(&v.to_bits().to_le_bytes());
                    self.pos += len;
                    return Some(());
                }
                // Python's number grammar and values, from pyjson.
                let (v, len) = pyjson::number_prefix(&self.s[self.pos..]).ok()?;
                let finite = match &v {
                    PyValue::Int(PyInt::Small(0)) => self.s[self.pos] != b'-',
                    PyValue::Int(PyInt::Small(_)) => true,
                    PyValue::Float(f) => f.is_finite(),
                    _ => false,
                };
                if !finite {
                    return None;
                }
                pyjson::canonical(&v, out);
                self.pos += len;
            }
            _ => return None,
        }
        Some(())
    }

    /// An object after its `{`: `{`, the member count, then the members
    /// (key length, key, value) sorted by key, the last of repeated keys
    /// kept. Members are written as they are read; only when their keys
    /// were not already in strictly increasing order are they laid out
    /// again.
    fn object(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        let start = out.len();
        out.push(b'{');
        out.extend_from_slice(&[0; 8]);
        let base = self.work.members.len();
        let (mut first, mut in_order) = (true, true);
        loop {
            let m0 = out.len();
            out.extend_from_slice(&[0; 8]);
            let Some((k0, k1)) = self.object_next(first, out)? else {
                out.truncate(m0);
                break;
            };
            first = false;
            out[m0..m0 + 8].copy_from_slice(&((k1 - k0) as u64).to_le_bytes());
            self.element(out, depth + 1)?;
            if let Some(prev) = self.work.members[base..].last() {
                in_order &= less(&out[prev.key.0..prev.key.1], &out[k0..k1]);
            }
            self.work.members.push(Member {
                key: (k0, k1),
                whole: (m0, out.len()),
            });
        }
        let Work {
            members, sorted, ..
        } = &mut *self.work;
        let members = &mut members[base..];
        if in_order {
            let n = members.len() as u64;
            out[start + 1..start + 9].copy_from_slice(&n.to_le_bytes());
            self.work.members.truncate(base);
            return Some(());
        }
        // Stable: of repeated keys, the last read sorts last.
        let key = |m: &Member| &out[m.key.0..m.key.1];
        if members.len() <= SMALL_OBJECT {
            // Insertion: a few compares, no sort machinery.
            for i in 1..members.len() {
                let mut j = i;
                while j > 0 && less(key(&members[j]), key(&members[j - 1])) {
                    members.swap(j, j - 1);
                    j -= 1;
                }
            }
        } else {
            members.sort_by(|a, b| key(a).cmp(key(b)));
        }
        sorted.clear();
        sorted.push(b'{');
        sorted.extend_from_slice(&[0; 8]);
        let mut n = 0u64;
        for (i, m) in members.iter().enumerate() {
            let key = &out[m.key.0..m.key.1];
            if members
                .get(i + 1)
                .is_some_and(|next| out[next.key.0..next.key.1] == *key)
            {
                continue; // a later value for the same key wins
            }
            n += 1;
            sorted.extend_from_slice(&out[m.whole.0..m.whole.1]);
        }
        sorted[1..9].copy_from_slice(&n.to_le_bytes());
        self.work.members.truncate(base);
        out.truncate(start);
        out.extend_from_slice(&self.work.sorted);
        Some(())
    }

    fn literal(&mut self, text: &[u8], canonical: &[u8], out: &mut Vec<u8>) -> Option<()> {
        if !self.s[self.pos..].starts_with(text) {
            return None;
        }
        self.pos += text.len();
        out.extend_from_slice(canonical);
        Some(())
    }

    /// Where the text of the string at the reader is, when it has no
    /// escapes of its own (most strings): the string is its text then,
    /// and the reader moves past it. `None` (and no move) otherwise:
    /// [`Reader::string_into`] reads it.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<(usize, usize)> {
        let q = if IN { 2 } else { 1 };
        if !self.at_quote() {
            return None;
        }
        let body = self.pos + q;
        let end = special_short(self.s, body)?;
        let closes = if IN {
            self.s.get(end..end + 2) == Some(b"\\\"")
        } else {
            self.s[end] == b'"'
        };
        if !closes {
            return None;
        }
        self.pos = end + q;
        Some((body, end))
    }

    /// Appends the canonical bytes of the string at the reader
    /// ([`pyjson::push_canonical_str`]'s; its length filled in once it is
    /// decoded): a string value, or a call's name in its key.
    fn string_value(&mut self, out: &mut Vec<u8>) -> Option<()> {
        out.extend_from_slice(&[b's', 0, 0, 0, 0, 0, 0, 0, 0]);
        let len_at = out.len() - 8;
        self.string_into(out)?;
        let len = (out.len() - len_at - 8) as u64;
        out[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
        Some(())
    }

    /// Appends the decoded bytes of the string at the reader (at its
    /// quote) and moves past it; `None` if they are not UTF-8 (a lone
    /// surrogate).
    fn string_into(&mut self, out: &mut Vec<u8>) -> Option<()> {
        if let Some((from, to)) = self.plain_string() {
            push_run(out, self.s, from, to);
            return Some(());
        }
        if !self.at_quote() {
            return None;
        }
        let body = self.pos + if IN { 2 } else { 1 };
        if special_short(self.s, body).is_none() {
            self.pos = self.s.len(); // unterminated
            return None;
        }
        if IN {
            return self.escaped_in_string(out);
        }
        // Escapes (or a control character): Python's decoding, from pyjson.
        let (s, len) = pyjson::string_prefix(&self.s[self.pos..]).ok()?;
        std::str::from_utf8(&s.0).ok()?;
        out.extend_from_slice(&s.0);
        self.pos += len;
        Some(())
    }

    /// A string with escapes of its own inside a literal's body (at its
    /// `\"`), decoded as Python's `json` decodes the text the literal
    /// holds, in one walk: the literal's escapes (`\"`, `\\`, `\/`) and
    /// the string's own (`\\n`, `\\u00e9` and the like in the body) at
    /// once. `None` on a `\u` of the literal (the text may be anything
    /// then), a control character, a lone surrogate or anything invalid.
    fn escaped_in_string(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = out.len();
        let read = self.decode_in_string(out);
        if read.is_none() {
            out.truncate(start);
            if runs_out(self.s, self.pos + 2) {
                self.pos = self.s.len(); // unterminated
            }
        }
        read
    }

    /// [`Reader::escaped_in_string`]'s walk; may leave part of the
    /// string in `out` when it fails.
    fn decode_in_string(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let s = self.s;
        let mut p = self.pos + 2;
        loop {
            // A plain run, then the byte that ends it.
            let to = special(s, p).unwrap_or(s.len());
            out.extend_from_slice(&s[p..to]);
            p = to;
            let Some(&c) = s.get(p) else {
                self.pos = s.len(); // unterminated
                return None;
            };
            if c != b'\\' {
                return None; // a bare quote or a control character
            }
            match *s.get(p + 1)? {
                b'"' => {
                    self.pos = p + 2; // the closing quote
                    return Some(());
                }
                b'/' => {
                    out.push(b'/');
                    p += 2;
                }
                b'\\' => {
                    // The text's own escape: its letter, itself written
                    // plain or escaped in the literal.
                    let (escape, len) = literal_byte(s, p + 2)?;
                    p += 2 + len;
                    match escape {
                        b'"' | b'\\' | b'/' => out.push(escape),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = hex4(s, p)?;
                            p += 4;
                            if (0xD800..0xDC00).contains(&cp) {
                                // Only a low surrogate's escape makes it a
                                // pair; a lone one is not UTF-8.
                                let low = s
                                    .get(p..p + 3)
                                    .filter(|u| *u == b"\\\\u")
                                    .and_then(|_| hex4(s, p + 3))
                                    .filter(|lo| (0xDC00..0xE000).contains(lo))?;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                                p += 7;
                            }
                            let c = char::from_u32(cp)?; // a lone low surrogate
                            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        _ => return None,
                    }
                }
                // `\n`, `\t`... put a control character in the text's
                // string; `\u` may be anything.
                _ => return None,
            }
        }
    }
}

/// Whether the string whose text starts at `p` in a literal's body runs
/// past the body's end: its characters, the literal's escapes undone
/// (any of `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`), reach the
/// end without a quote that closes it (one not escaped by a backslash of
/// the text) and without a byte no literal holds there (another escape,
/// a bare quote, a control character). A string cut off so is a cut-off
/// text, not one the reader declines (see [`CanonicalCalls::read_escaped_piece`]).
fn runs_out(s: &[u8], mut p: usize) -> bool {
    let mut backslashes = 0usize;
    loop {
        let Some(&c) = s.get(p) else {
            return true;
        };
        let byte = match c {
            b'\\' => match s.get(p + 1) {
                Some(&e @ (b'"' | b'\\' | b'/')) => e,
                Some(b'b' | b'f' | b'n' | b'r' | b't') => 0,
                _ => return false,
            },
            b'"' | 0..=0x1f => return false,
            _ => c,
        };
        p += if c == b'\\' { 2 } else { 1 };
        match byte {
            b'\\' => backslashes += 1,
            b'"' if backslashes.is_multiple_of(2) => return false,
            _ => backslashes = 0,
        }
    }
}

/// The byte of the text a literal's body holds at `p`, and how many bytes
/// of the body spell it: itself, or `\"`, `\\`, `\/` (`None` for any
/// other escape, a bare quote or the end of the body).
fn literal_byte(s: &[u8], p: usize) -> Option<(u8, usize)> {
    match *s.get(p)? {
        b'\\' => match *s.get(p + 1)? {
            c @ (b'"' | b'\\' | b'/') => Some((c, 2)),
            _ => None,
        },
        b'"' => None,
        c => Some((c, 1)),
    }
}

/// Four hex digits at `p` (as Python's `json` reads a `\u` escape's).
fn hex4(s: &[u8], p: usize) -> Option<u32> {
    s.get(p..p + 4)?
        .iter()
        .try_fold(0, |v, &d| Some(v * 16 + char::from(d).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyjson::PyStr;

    /// The reference reader: Python's `json` into a tree, then its keys.
    fn via_tree(text: &str) -> Option<CanonicalCalls> {
        let value = pyjson::loads(text).ok()?;
        let minus_zero = memchr::memmem::find_iter(text.as_bytes(), b"-0").any(|at| {
            !matches!(
                text.as_bytes().get(at + 2),
                Some(b'0'..=b'9' | b'.' | b'e' | b'E')
            )
        });
        if minus_zero || !serde_reads_alike(&value, 0) {
            return None;
        }
        let items = match &value {
            PyValue::List(items) => items.as_slice(),
            PyValue::Dict(_) => std::slice::from_ref(&value),
            _ => return None,
        };
        let mut out = CanonicalCalls::default();
        for item in items {
            let (Some(PyValue::Str(name)), Some(args @ PyValue::Dict(_))) =
                (item.get("name"), item.get("arguments"))
            else {
                return None;
            };
            out.start_call(&name.0);
            pyjson::canonical(args, &mut out.bytes);
            out.end_call();
        }
        Some(out)
    }

    /// Finite floats, small integers, UTF-8 strings, bounded depth.
    fn serde_reads_alike(v: &PyValue<'_>, depth: usize) -> bool {
        let utf8 = |s: &PyStr<'_>| std::str::from_utf8(&s.0).is_ok();
        match v {
            PyValue::None | PyValue::Bool(_) | PyValue::Int(PyInt::Small(_)) => true,
            PyValue::Int(PyInt::Big(_)) => false,
            PyValue::Float(f) => f.is_finite(),
            PyValue::Str(s) => utf8(s),
            PyValue::List(items) => {
                depth < MAX_DEPTH && items.iter().all(|x| serde_reads_alike(x, depth + 1))
            }
            PyValue::Dict(items) => {
                depth < MAX_DEPTH
                    && items
                        .iter()
                        .all(|(k, x)| utf8(k) && serde_reads_alike(x, depth + 1))
            }
        }
    }

    #[test]
    fn reads_what_the_tree_reads() {
        let agree = [
            r#"[]"#,
            r#" [ ] "#,
            r#"{"name": "f", "arguments": {}}"#,
            r#"[{"name": "f", "arguments": {"b": [1, 2.5, -3, 1e2, true, false, null], "a": {"y": "é", "x": ""}}, "extra": [1, {"z": 0}]}]"#,
            r#"[{"name": "f", "arguments": {"k": 1, "k": 2}}, {"arguments": {}, "name": "g", "name": "h"}]"#,
            // Name then arguments, then more: the usual shape's reading
            // starts over on the general one.
            r#"[{"name": "f", "arguments": {"a": 1}, "name": "g"}, {"name" : "f","arguments":{"a": 1}, "arguments": {"b": 2}}]"#,
            r#"{"name": "f", "arguments": {"a": 1}, "x": [1, {"name": 2}]}"#,
            r#"[{"n\u0061me": "f\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "arguments": {"\u006b": "2024-05-01"}}]"#,
            r#"[{"name": "f", "arguments": {"x": -0.0, "y": 0, "z": -10, "w": 1E-400}}]"#,
        ];
        for text in agree {
            let fast = CanonicalCalls::from_json(text);
            assert!(fast.is_some(), "declined: {text}");
            assert_eq!(fast, via_tree(text), "{text}");
        }
        let declined = [
            "",
            "[",
            "[,]",
            "[1]",
            "[{}]",
            r#""[]""#,
            r#"[{"name": "f", "arguments": {}},]"#,
            r#"[{"name": "f", "arguments": {}} {"name": "g", "arguments": {}}]"#,
            r#"[{"name": "f", "arguments": "{}"}]"#,
            r#"[{"name": "f", "arguments": [1]}]"#,
            r#"[{"name": 1, "arguments": {}}]"#,
            r#"[{"name": "f", "arguments": {}, "name": null}]"#,
            r#"[{"name": "f", "arguments": {}, "name": 1}]"#,
            r#"[{"name": "f", "arguments": {"x": -0}}]"#,
            r#"[{"name": "f", "arguments": {"x": NaN}}]"#,
            r#"[{"name": "f", "arguments": {"x": -Infinity}}]"#,
            r#"[{"name": "f", "arguments": {"x": 1e400}}]"#,
            r#"[{"name": "f", "arguments": {"x": 9223372036854775808}}]"#,
            r#"[{"name": "f", "arguments": {"x": "\ud800"}}]"#,
            r#"[{"name": "f", "arguments": {"\udc00": 1}}]"#,
            r#"[{"name": "f", "arguments": {"x": 01}}]"#,
            r#"[{"name": "f", "arguments": {"x": tru}}]"#,
            "[{\"name\": \"f\", \"arguments\": {\"x\": \"a\tb\"}}]",
            r#"[{"name": "f", "arguments": {"x": 1}} x"#,
        ];
        for text in declined {
            assert_eq!(CanonicalCalls::from_json(text), None, "{text}");
        }
        let deep = |n: usize| {
            format!(
                r#"[{{"name": "f", "arguments": {{"a": {}{}}}}}]"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(CanonicalCalls::from_json(&deep(60)).is_some());
        assert!(CanonicalCalls::from_json(&deep(70)).is_none());
    }

    /// Reads the literal at the start of `literal` as it stands; checks
    /// that what it read is what decoding it and reading the text gives.
    fn read_literal(literal: &str) -> Option<CanonicalCalls> {
        let mut calls = CanonicalCalls::default();
        let len = calls.read_json_in_string(literal.strip_prefix('"')?)?;
        let decoded: String = serde_json::from_str(&literal[..1 + len])
            .unwrap_or_else(|e| panic!("{literal}: read a literal serde refuses: {e}"));
        assert_eq!(
            Some(&calls),
            CanonicalCalls::from_json(&decoded).as_ref(),
            "{literal}"
        );
        Some(calls)
    }

    /// The whitespace a literal's reader skips, and only that, is trimmed
    /// at either end: spaces and `\n`, `\t`, `\r` escapes, not an escaped
    /// backslash followed by a letter.
    #[test]
    fn literal_whitespace_is_trimmed_as_the_reader_skips_it() {
        for (text, trimmed) in [
            ("", ""),
            ("  ", ""),
            (r"\n[1]\t ", "[1]"),
            (r" \r\n [1] \n\n", "[1]"),
            (r"[1]\\n", r"[1]\\n"),
            (r"[1]\\\n", r"[1]\\"),
            (r"\\n[1]", r"\\n[1]"),
            (r"n", "n"),
            (r"\n", ""),
            (r"\x", r"\x"),
        ] {
            assert_eq!(
                trim_in_string(text.as_bytes()),
                trimmed.as_bytes(),
                "{text}"
            );
        }
        // A payload that is the literal's text, whitespace aside, is known
        // to be it; any other is not, nor is anything for a truth read
        // otherwise (no texts kept).
        let body = r#" [{\"name\": \"f\", \"arguments\": {\"a\": 1}}]\n"#;
        let mut truth = CanonicalCalls::default();
        truth.read_json_in_string(&format!("{body}\"")).unwrap();
        assert!(truth.is_read_from(
            body,
            r#"\n[{\"name\": \"f\", \"arguments\": {\"a\": 1}}]  "#
        ));
        assert!(!truth.is_read_from(body, r#"[{\"name\": \"f\", \"arguments\": {\"a\": 2}}]"#));
        assert!(!truth.is_read_from(body, r#"[{\"name\": \"f\",  \"arguments\": {\"a\": 1}}]"#));
        let plain = CanonicalCalls::from_json(r#"[{"name": "f", "arguments": {"a": 1}}]"#).unwrap();
        assert!(!plain.is_read_from(body, body));
    }

    /// A reply's payload that is a whole object but not a call is the
    /// script's schema error: declined (read by the general reader), not
    /// taken for a cut-off text, even where it ends the piece (found by the
    /// `fast_readers` fuzz target, 2026-12-05).
    #[test]
    fn a_whole_object_that_is_not_a_call_is_not_cut_off() {
        let read = |piece: &str| {
            CanonicalCalls::default().read_escaped_piece(piece, &CanonicalCalls::default())
        };
        for piece in [
            "{}",
            "{\\n}",
            "{\\\"name\\\": 1}",
            "{\\\"name\\\": \\\"f\\\"}",
            "{\\\"x\\\": [1], \\\"arguments\\\": {}}",
        ] {
            assert_eq!(read(piece), Piece::Declined, "{piece}");
        }
        for piece in [
            "{",
            "{\\\"name\\\": \\\"f\\\"",
            "[{\\\"name\\\": \\\"f\\\", \\\"arguments\\\": {}}",
        ] {
            assert_eq!(read(piece), Piece::CutOff, "{piece}");
        }
    }

    #[test]
    fn reads_string_literals_as_they_stand() {
        let read = [
            r#""[]""#,
            r#"" \n[{\"name\": \"f\", \"arguments\": {\"k\": [1, \"é\"]}}]\r\t " tail"#,
            r#""[{\"name\": \"f\", \"arguments\": {\"k\": \"\\u00e9\"}}]""#,
            r#""[{\"name\": \"f\", \"arguments\": {\"k\": \"a\\\"b\"}}]""#,
            r#""[{\"name\": \"f\\\\\", \"arguments\": {\"\\ud83d\\ude00\\n\": \"\\/\"}}]""#,
        ];
        for literal in read {
            assert!(read_literal(literal).is_some(), "{literal}");
        }
        let declined = [
            r#""[{\"name\": \"f\", \"arguments\": {\"k\": \"\u00e9\"}}]""#,
            r#""[{\"name\": \"f\", \"arguments\": {\"k\": \"\\ud800\"}}]""#,
            r#""[{\"name\": \"f\", \"arguments\": {\"k\": \"a\nb\"}}]""#,
            r#""[{\"name\": \"f\", \"arguments\": {\"k\": \"\\x\"}}]""#,
            r#""[{\"name\": \"f\", \"arguments\": {}}]\u00a0""#,
            r#""\/[]""#,
            r#""[]"#,
            r#""["]""#,
            "\"[\t]\"",
        ];
        for literal in declined {
            assert_eq!(read_literal(literal), None, "{literal}");
        }
    }

    /// The body of the JSON string `literal` cut at `cut` (modulo its
    /// length, on a character boundary), with the text it decodes to;
    /// `None` where the piece is no valid string body.
    fn cut_body(literal: &str, cut: usize) -> Option<(&str, String)> {
        let body = &literal[1..literal.len() - 1];
        let piece = &body[..body.floor_char_boundary(cut % (body.len() + 1))];
        let decoded = serde_json::from_str::<String>(&format!("\"{piece}\"")).ok()?;
        Some((piece, decoded))
    }

    /// What reading a piece of a literal's body may give: a cut-off text
    /// only where Python's `json` refuses the decoded text too, and keys
    /// only the tree's for it (declining is always allowed).
    fn check_piece(
        piece: &str,
        decoded: &str,
        read: Piece,
        calls: &CanonicalCalls,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        match read {
            Piece::CutOff => proptest::prop_assert!(
                matches!(
                    pyjson::loads(pyjson::py_strip(decoded)),
                    Err(pyjson::PyJsonError::Decode { .. })
                ),
                "{}",
                piece
            ),
            Piece::Read => {
                proptest::prop_assert_eq!(Some(calls.clone()), via_tree(decoded), "{}", piece)
            }
            Piece::Declined => {}
        }
        Ok(())
    }

    proptest::proptest! {
        /// Strings with escapes of their own, every kind and some invalid
        /// ones, in a literal's body (`/` sometimes escaped there too):
        /// decoded in one walk to the keys the tree reads, or declined
        /// where it refuses them; cut off anywhere, a piece taken for cut
        /// off is one Python's `json` refuses too.
        #[test]
        fn escaped_strings_in_literals_read_as_the_tree_reads(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "é", "/", "\\\"", "\\\\", "\\/", "\\n", "\\t", "\\b", "\\f",
                "\\r", "\\u00e9", "\\u00E9", "\\u0000", "\\ud83d\\ude00", "\\ud800",
                "\\udc00", "\\ud83d\\u0041", "\\ud83d\\uzz00", "\\u12", "\\x",
                "\\uZZZZ", "\\ud83d",
            ]), 0..6),
            in_key: bool,
            escape_slashes: bool,
            cut in 0usize..200,
        ) {
            let string = parts.concat();
            let text = if in_key {
                format!(r#"[{{"name": "f", "arguments": {{"{string}": 1}}}}]"#)
            } else {
                format!(r#"[{{"name": "f{string}", "arguments": {{"k": "{string}"}}}}]"#)
            };
            let mut literal = serde_json::to_string(&text).unwrap();
            if escape_slashes {
                literal = literal.replace('/', "\\/");
            }
            let mut calls = CanonicalCalls::default();
            let read = calls
                .read_json_in_string(&literal[1..])
                .map(|_| calls.clone());
            proptest::prop_assert_eq!(&read, &via_tree(&text), "{}", literal);
            if let Some((piece, decoded)) = cut_body(&literal, cut) {
                let read = calls.read_escaped_piece(piece, &CanonicalCalls::default());
                check_piece(piece, &decoded, read, &calls)?;
            }
        }

        /// Random ground truths and their one-byte mutations: whatever the
        /// one-pass reader reads, the tree reads to the same keys; valid
        /// ones it does not decline.
        #[test]
        fn agrees_with_the_tree(
            names in proptest::collection::vec("[a-zé\"\\\\]{1,4}", 0..4),
            keys in proptest::collection::vec("[abk\"é]{0,3}", 0..5),
            values in proptest::collection::vec(proptest::sample::select(vec![
                "1", "-2", "0", "2.5", "-0.0", "1e3", "true", "null", "\"x\"", "\"\\u00e9\"",
                "[]", "[1, [2]]", "{}", "{\"b\": 1, \"a\": 2}", "{\"a\": 1, \"a\": 2}",
            ]), 0..5),
            single: bool,
            cut in 0usize..300,
            byte in proptest::sample::select(b"[]{}\",:\\ 0-.eEnt\x01".to_vec()),
            insert: bool,
        ) {
            let args: Vec<String> = keys
                .iter()
                .zip(values.iter().cycle())
                .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).unwrap()))
                .collect();
            let calls: Vec<String> = names
                .iter()
                .map(|n| format!(
                    r#"{{"name": {}, "arguments": {{{}}}}}"#,
                    serde_json::to_string(n).unwrap(),
                    args.join(", ")
                ))
                .collect();
            let text = if single && calls.len() == 1 {
                calls[0].clone()
            } else {
                format!("[{}]", calls.join(", "))
            };
            let fast = CanonicalCalls::from_json(&text);
            proptest::prop_assert!(fast.is_some(), "declined {}", text);
            proptest::prop_assert_eq!(&fast, &via_tree(&text), "{}", text);
            // The same text as a JSON string literal, read as it stands,
            // and the literal mutated.
            let literal = serde_json::to_string(&format!(" \n{text}\t")).unwrap();
            let in_string = read_literal(&literal);
            proptest::prop_assert_eq!(&in_string, &Some(fast.clone().unwrap()), "{}", literal);
            // Cut off: a piece read to its end before failing is one
            // Python's `json` refuses as well.
            if let Some((piece, decoded)) = cut_body(&literal, cut) {
                let mut calls = CanonicalCalls::default();
                let read = calls.read_escaped_piece(piece, &CanonicalCalls::default());
                // Given the ground truth's call texts, a reply's calls
                // with the same bytes are copied, to the same keys.
                let truth = in_string.as_ref().unwrap();
                let mut copied = CanonicalCalls::default();
                proptest::prop_assert_eq!(
                    copied.read_escaped_piece(piece, truth), read, "{}", piece
                );
                proptest::prop_assert_eq!(&copied, &calls, "{}", piece);
                check_piece(piece, &decoded, read, &calls)?;
            }
            // The calls in reverse order: each copied from the truth's
            // text, to the keys a read gives.
            let reversed: Vec<String> = calls.iter().rev().cloned().collect();
            let reply = serde_json::to_string(&format!("[{}]", reversed.join(", "))).unwrap();
            let body = &reply[1..reply.len() - 1];
            let (mut read, mut copied) = (CanonicalCalls::default(), CanonicalCalls::default());
            proptest::prop_assert_eq!(
                read.read_escaped_piece(body, &CanonicalCalls::default()),
                copied.read_escaped_piece(body, in_string.as_ref().unwrap())
            );
            proptest::prop_assert_eq!(&read, &copied, "{}", body);
            let mut bytes = literal.clone().into_bytes();
            let at = cut % bytes.len();
            if insert {
                bytes.insert(at, byte);
            } else {
                bytes.remove(at);
            }
            if let Ok(mutated) = String::from_utf8(bytes) {
                read_literal(&mutated);
            }
            let mut bytes = text.into_bytes();
            let at = cut % bytes.len();
            if insert {
                bytes.insert(at, byte);
            } else {
                bytes.remove(at);
            }
            if let Ok(mutated) = String::from_utf8(bytes) {
                if let Some(fast) = CanonicalCalls::from_json(&mutated) {
                    proptest::prop_assert_eq!(Some(fast), via_tree(&mutated), "{}", mutated);
                }
            }
        }
    }
}
