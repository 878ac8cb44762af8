//! The released Tool-N1 reward script, reproduced bit for bit.
//!
//! `compute_score_v0` in `verl/verl/utils/reward_score/toolcall.py` of
//! NVlabs/Tool-N1 is, by inference, the reward the paper trained with:
//! the release does not ship the dispatcher that picks it (verl's
//! `_default_compute_score`), and `v0` is the file's one binary variant
//! that requires the think tags, as the paper's §4.3 rule does; `v2`,
//! `v3` and `v4` in the same file are the Table 4 ablations. [`ToolN1Rule`] replays their
//! logic on Python semantics ([`crate::pyjson`]):
//!
//! 1. Cut the text at the last `<|im_start|>assistant` (if present).
//! 2. Take the **last** non-overlapping `<tool_call>(.*?)</tool_call>` match,
//!    `str.strip()` it (Python's notion of whitespace) and `json.loads` it;
//!    a decode error means "no result".
//! 3. A `str` result is `json.loads`-ed once more; a `dict` is wrapped in a
//!    list.
//! 4. Think = both substrings `<think>` and `</think>` occur anywhere in the
//!    cut text (order and nesting are not checked).
//! 5. Every item must be a dict with keys `name` and `arguments`.
//! 6. Counter of `(name, json.dumps(arguments, sort_keys=True))` must equal
//!    the ground truth's; an empty result equals an empty ground truth.
//!
//! Where the script raises (a number or bool as payload reaches
//! `for item in result`; `json.loads` hits `RecursionError` or an integer
//! over 4300 digits), training would crash; here the score is 0 and the
//! verdict's detail names the exception.
//!
//! The ground truth comes as [`Call`]s ([`RewardRule::score`]: compared
//! with each predicted call as it stands, no allocation) or as
//! [`CanonicalCalls`] ([`ToolN1Rule::score_canonical`]: compared by key;
//! batch scorers read those straight from JSON text, and score most
//! replies from their JSON string literal without decoding them).

mod truth;

pub use truth::CanonicalCalls;
use truth::{key_of, Piece};

use crate::parse::{ASSISTANT_MARKER, THINK_CLOSE, THINK_OPEN, TOOL_CALL_CLOSE, TOOL_CALL_OPEN};
use crate::pyjson::{self, py_strip, PyJsonError, PyStr, PyValue};
use crate::{Call, MatchOutcome, Reason, RewardRule, Verdict};
use serde_json::{Map, Value};

/// Which function of the released script to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptVariant {
    /// `compute_score_v0`: the paper's reward (think substrings + exact match).
    V0,
    /// `compute_score_v2`: no think requirement (Table 4, "w/o reasoning").
    V2,
    /// `compute_score_v3`: 0.2 for think + 0.8 for an exact match.
    V3,
    /// `compute_score_v4`: as v3, or 0.2 + 0.2 when only the names match.
    V4,
}

/// The released script as a [`RewardRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToolN1Rule {
    /// Which function of the script.
    pub variant: ScriptVariant,
}

impl ToolN1Rule {
    /// `compute_score_v0`, the paper's reward.
    pub const V0: ToolN1Rule = ToolN1Rule {
        variant: ScriptVariant::V0,
    };
}

/// Why the script has no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NoResult {
    /// No `<tool_call>…</tool_call>` match.
    NoBlock,
    /// `json.JSONDecodeError` (or `null`): the script's `None`.
    Decode,
    /// `json.loads` raised something else: the script crashes.
    Raises(&'static str),
}

/// What the script found, up to `validate_result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// No usable result.
    Nothing(NoResult),
    /// `validate_format` returned 0.
    BadFormat,
    /// `validate_format` raised `TypeError` (payload a number or bool).
    Raises,
    /// `validate_result` returned 0, 1 or 2, with the closest outcome.
    Level(u8, MatchOutcome),
}

/// Runs the script's extraction and validation on `solution_str`; returns
/// whether think tags are present and what was found.
fn evaluate(solution_str: &str, truth: Truth<'_>) -> (bool, Found) {
    let (think, block) = scan(solution_str);
    let Some(content) = block else {
        return (think, Found::Nothing(NoResult::NoBlock));
    };
    let first = match decode(pyjson::loads(py_strip(content))) {
        Ok(v) => v,
        Err(e) => return (think, Found::Nothing(e)),
    };
    // A str result is decoded once more (it borrows from `first`).
    let second;
    let result = match &first {
        PyValue::Str(s) => match decode(pyjson::loads_bytes(&s.0)) {
            Ok(v) => {
                second = v;
                &second
            }
            Err(e) => return (think, Found::Nothing(e)),
        },
        v => v,
    };
    (think, validate(result, truth))
}

/// The ground truth in either form.
#[derive(Clone, Copy)]
enum Truth<'t> {
    /// Compared with each predicted call as it stands (no allocation).
    Calls(&'t [Call]),
    /// Compared by key.
    Canonical(&'t CanonicalCalls),
}

impl Truth<'_> {
    fn len(self) -> usize {
        match self {
            Truth::Calls(c) => c.len(),
            Truth::Canonical(c) => c.len(),
        }
    }
}

/// `validate_format` then `validate_result`; a lone dict counts as `[dict]`.
fn validate(result: &PyValue<'_>, truth: Truth<'_>) -> Found {
    let items: &[PyValue<'_>] = match result {
        PyValue::List(items) => items,
        PyValue::Dict(_) => std::slice::from_ref(result),
        // Iterating a str yields 1-char strs, never dicts: only "" passes.
        PyValue::Str(s) if s.0.is_empty() => &[],
        PyValue::Str(_) => return Found::BadFormat,
        // `for item in 5` raises TypeError.
        _ => return Found::Raises,
    };
    let well_formed = items.iter().all(|it| {
        matches!(it, PyValue::Dict(_)) && it.get("name").is_some() && it.get("arguments").is_some()
    });
    if !well_formed {
        return Found::BadFormat;
    }
    let level = validate_result(items, truth);
    Found::Level(level, outcome(items.len(), truth.len(), level))
}

fn decode(r: Result<PyValue<'_>, PyJsonError>) -> Result<PyValue<'_>, NoResult> {
    match r {
        Ok(PyValue::None) | Err(PyJsonError::Decode { .. }) => Err(NoResult::Decode),
        Ok(v) => Ok(v),
        Err(e) => Err(NoResult::Raises(e.python_exception())),
    }
}

/// Steps 1, 2 and 4 in one pass over the text's `<`s (every tag starts
/// with one): whether `<think>` and `</think>` both occur after the last
/// assistant marker, and the content of the last non-overlapping
/// `<tool_call>(.*?)</tool_call>` match there, as Python's `re.finditer`
/// finds them.
fn scan(s: &str) -> (bool, Option<&str>) {
    let b = s.as_bytes();
    let (mut think_open, mut think_close) = (false, false);
    // Lazy matching as the search goes: an open takes the first close
    // after it, and the next match starts after that close (no tag holds
    // a `<` inside, so every later `<` is past the open tag).
    let (mut last, mut open) = (None, None);
    for at in memchr::memchr_iter(b'<', b) {
        let rest = &b[at..];
        if rest.starts_with(ASSISTANT_MARKER.as_bytes()) {
            // Everything before the last marker is cut off.
            (think_open, think_close, last, open) = (false, false, None, None);
        } else if rest.starts_with(THINK_OPEN.as_bytes()) {
            think_open = true;
        } else if rest.starts_with(THINK_CLOSE.as_bytes()) {
            think_close = true;
        } else if rest.starts_with(TOOL_CALL_OPEN.as_bytes()) {
            open = open.or(Some(at + TOOL_CALL_OPEN.len()));
        } else if rest.starts_with(TOOL_CALL_CLOSE.as_bytes()) {
            if let Some(body) = open.take() {
                last = Some(&s[body..at]);
            }
        }
    }
    (think_open && think_close, last)
}

/// `validate_result`: 2 = Counters of (name, dumps(arguments)) equal,
/// 1 = Counters of names equal, 0 = otherwise (or a name is unhashable).
fn validate_result(items: &[PyValue<'_>], truth: Truth<'_>) -> u8 {
    let n = items.len();
    if n == 0 || truth.len() == 0 {
        return if n == truth.len() { 2 } else { 0 };
    }
    let name = |i: usize| items[i].get("name").unwrap_or(&PyValue::None);
    let args = |i: usize| items[i].get("arguments").unwrap_or(&PyValue::None);
    if (0..n).any(|i| !name(i).is_hashable()) {
        return 0; // Counter raises TypeError; the script returns 0.
    }
    if n != truth.len() {
        return 0;
    }
    let key = |i: usize, with_args: bool| key_of(name(i), with_args.then(|| args(i)));
    // Whether the Counters agree, with or without the arguments.
    let same = |with_args: bool| match truth {
        Truth::Calls(calls) => {
            // Ground-truth names are strings; a str key equals only an
            // equal str (Python compares numbers across int/float/bool,
            // never with str).
            let eq = |i: usize, c: &Call| {
                matches!(name(i), PyValue::Str(s) if *s.0 == *c.name.as_bytes())
                    && (!with_args || dict_eq_map(args(i), &c.arguments))
            };
            let truth_key = |j: usize| {
                let t = &calls[j];
                let args = PyValue::from_serde_map(&t.arguments);
                key_of(
                    &PyValue::Str(PyStr(t.name.as_bytes().into())),
                    with_args.then_some(&args),
                )
            };
            multiset_eq(n, |i, j| eq(i, &calls[j]), |i| key(i, with_args), truth_key)
        }
        Truth::Canonical(t) => {
            let keys: Vec<Vec<u8>> = (0..n).map(|i| key(i, with_args)).collect();
            let truth_key = |j: usize| if with_args { t.key(j) } else { t.name_key(j) };
            same_keys(n, |i| &keys[i], truth_key)
        }
    };
    if same(true) {
        2
    } else {
        u8::from(same(false))
    }
}

/// Whether two lists of `n` keys are equal as multisets.
fn same_keys<'k>(
    n: usize,
    key_a: impl Fn(usize) -> &'k [u8],
    key_b: impl Fn(usize) -> &'k [u8],
) -> bool {
    multiset_eq(
        n,
        |i, j| key_a(i) == key_b(j),
        |i| key_a(i).to_vec(),
        |j| key_b(j).to_vec(),
    )
}

/// `dumps_eq` between predicted arguments and a ground-truth object.
fn dict_eq_map(a: &PyValue<'_>, b: &Map<String, Value>) -> bool {
    let PyValue::Dict(items) = a else {
        return false;
    };
    items.len() == b.len()
        && items.iter().all(|(k, x)| {
            std::str::from_utf8(&k.0)
                .ok()
                .and_then(|k| b.get(k))
                .is_some_and(|y| x.dumps_eq_serde(y))
        })
}

/// Whether two lists of `n` items are equal as multisets under an
/// equivalence `eq`: greedily for short lists, by sorting canonical keys for
/// long ones (so the cost stays `O(n log n)` on hostile inputs).
fn multiset_eq(
    n: usize,
    eq: impl Fn(usize, usize) -> bool,
    key_a: impl Fn(usize) -> Vec<u8>,
    key_b: impl Fn(usize) -> Vec<u8>,
) -> bool {
    if n > crate::GREEDY_LIMIT {
        let mut a: Vec<Vec<u8>> = (0..n).map(key_a).collect();
        let mut b: Vec<Vec<u8>> = (0..n).map(key_b).collect();
        a.sort_unstable();
        b.sort_unstable();
        return a == b;
    }
    let mut used = [false; crate::GREEDY_LIMIT];
    (0..n).all(|i| match (0..n).find(|&j| !used[j] && eq(i, j)) {
        Some(j) => {
            used[j] = true;
            true
        }
        None => false,
    })
}

/// The closest [`MatchOutcome`], for the reason code.
fn outcome(predicted: usize, expected: usize, level: u8) -> MatchOutcome {
    use std::cmp::Ordering::*;
    match (predicted.cmp(&expected), level) {
        (Less, _) => MatchOutcome::Missing,
        (Greater, _) => MatchOutcome::Extra,
        (Equal, 2) => MatchOutcome::Match,
        (Equal, 1) => MatchOutcome::WrongArgs,
        (Equal, _) => MatchOutcome::WrongName,
    }
}

impl RewardRule for ToolN1Rule {
    fn name(&self) -> &str {
        match self.variant {
            ScriptVariant::V0 => "tool-n1",
            ScriptVariant::V2 => "tool-n1-no-think",
            ScriptVariant::V3 => "tool-n1-fine",
            ScriptVariant::V4 => "tool-n1-fine-names",
        }
    }

    fn score(&self, completion: &str, truth: &[Call]) -> Verdict {
        self.score_truth(completion, Truth::Calls(truth))
    }

    fn as_tool_n1(&self) -> Option<ToolN1Rule> {
        Some(*self)
    }
}

impl ToolN1Rule {
    /// [`RewardRule::score`] against a ground truth already in canonical
    /// form (what batch scorers read straight from JSON text).
    pub fn score_canonical(&self, completion: &str, truth: &CanonicalCalls) -> Verdict {
        self.score_truth(completion, Truth::Canonical(truth))
    }

    /// [`ToolN1Rule::score_canonical`] of the completion that a JSON
    /// string literal holds, read from the literal's `body` (between its
    /// quotes) as it stands, without decoding it; `predicted` is room for
    /// the reply's calls. `None` where the body must be decoded first: a
    /// payload the one-pass reader leaves to Python's `json` (an error, an
    /// unusual value or shape, an escape other than `\"`, `\n`, `\t`,
    /// `\r` in it). The body must hold no `\u` or `\/` escape (they
    /// could spell a tag; every other escape decodes to a character no tag
    /// holds, so the tags are where they are in the decoded text).
    /// `truth_body`, where given, is the literal body `truth` was read
    /// from: a payload that repeats it is scored without being read.
    pub(crate) fn score_in_string(
        &self,
        body: &str,
        truth: &CanonicalCalls,
        truth_body: Option<&str>,
        predicted: &mut CanonicalCalls,
    ) -> Option<Verdict> {
        let (think, block) = scan(body);
        let found = match block {
            None => Found::Nothing(NoResult::NoBlock),
            Some(content) if truth_body.is_some_and(|t| truth.is_read_from(t, content)) => {
                // The ground truth's own text: its calls, keys equal.
                let n = truth.len();
                Found::Level(2, outcome(n, n, 2))
            }
            Some(content) => match predicted.read_escaped_piece(content, truth) {
                Piece::Declined => return None,
                Piece::CutOff => Found::Nothing(NoResult::Decode),
                Piece::Read => {
                    // Every call has a str name and dict arguments.
                    let n = predicted.len();
                    let level = if n == 0 || truth.is_empty() || n != truth.len() {
                        u8::from(n == truth.len()) * 2
                    } else if same_keys(n, |i| predicted.key(i), |j| truth.key(j)) {
                        2
                    } else {
                        u8::from(same_keys(
                            n,
                            |i| predicted.name_key(i),
                            |j| truth.name_key(j),
                        ))
                    };
                    Found::Level(level, outcome(n, truth.len(), level))
                }
            },
        };
        Some(self.verdict(think, found))
    }

    fn score_truth(&self, completion: &str, truth: Truth<'_>) -> Verdict {
        let (think, found) = evaluate(completion, truth);
        self.verdict(think, found)
    }

    /// The script's score for what it found.
    fn verdict(&self, think: bool, found: Found) -> Verdict {
        use ScriptVariant::*;
        // Exceptions from json.loads happen before any check.
        if let Found::Nothing(NoResult::Raises(exc)) = found {
            return Verdict::fail(
                Reason::JsonError,
                format!("the released script raises {exc} in json.loads here; scored 0"),
            );
        }
        let no_think = "no <think> and </think> in the reply";
        let has_result = !matches!(found, Found::Nothing(_));
        if self.variant == V0 && has_result && !think {
            return Verdict::fail(Reason::FormatError, no_think);
        }
        // v3/v4 keep their 0.2 for think whatever else goes wrong.
        let base = if matches!(self.variant, V3 | V4) && think {
            0.2
        } else {
            0.0
        };
        let partial = |reason: Reason, detail: &'static str| Verdict::new(base, reason, detail);
        match found {
            Found::Nothing(NoResult::NoBlock) => {
                partial(Reason::FormatError, "no <tool_call>...</tool_call> block")
            }
            Found::Nothing(_) => partial(
                Reason::JsonError,
                "last <tool_call> payload is not JSON (or is null)",
            ),
            Found::Raises => Verdict::fail(
                Reason::SchemaError,
                "payload is a number or bool: the released script raises TypeError here; scored 0",
            ),
            Found::BadFormat => partial(
                Reason::SchemaError,
                "payload is not a list of objects with \"name\" and \"arguments\"",
            ),
            Found::Level(2, _) => match self.variant {
                V0 | V2 => Verdict::ok(),
                _ if think => Verdict::new(base + 0.8, Reason::Ok, ""),
                _ => Verdict::new(0.8, Reason::FormatError, no_think),
            },
            Found::Level(level, outcome) => {
                let names = if self.variant == V4 && level == 1 {
                    0.2
                } else {
                    0.0
                };
                let reason = outcome.reason();
                Verdict::new(base + names, reason, mismatch_detail(reason))
            }
        }
    }
}

/// "calls do not match (REASON)": a fixed text for the reasons a
/// mismatch has (no allocation per line).
fn mismatch_detail(reason: Reason) -> std::borrow::Cow<'static, str> {
    match reason {
        Reason::MissingCall => "calls do not match (missing_call)".into(),
        Reason::ExtraCall => "calls do not match (extra_call)".into(),
        Reason::WrongName => "calls do not match (wrong_name)".into(),
        Reason::WrongArgs => "calls do not match (wrong_args)".into(),
        other => format!("calls do not match ({other})").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARIANTS: [ScriptVariant; 4] = [
        ScriptVariant::V0,
        ScriptVariant::V2,
        ScriptVariant::V3,
        ScriptVariant::V4,
    ];

    /// The calls in `text`, read from its JSON string literal (so their
    /// texts are kept).
    fn from_literal(text: &str) -> Option<CanonicalCalls> {
        let literal = serde_json::to_string(text).unwrap();
        let mut calls = CanonicalCalls::default();
        calls.read_json_in_string(&literal[1..])?;
        Some(calls)
    }

    #[test]
    fn mismatch_details_name_their_reason() {
        for reason in Reason::ALL {
            let detail = mismatch_detail(reason);
            assert_eq!(detail, format!("calls do not match ({reason})"));
            let fixed = matches!(
                reason,
                Reason::MissingCall | Reason::ExtraCall | Reason::WrongName | Reason::WrongArgs
            );
            assert_eq!(
                matches!(detail, std::borrow::Cow::Borrowed(_)),
                fixed,
                "{reason}"
            );
        }
    }

    #[test]
    fn calls_repeating_the_truths_texts_are_copied_alike() {
        let truth = r#"[{"name": "f", "arguments": {"b": [1, 2.5], "a": "x\u00e9"}}, {"name": "g", "arguments": {}}]"#;
        let known = from_literal(truth).unwrap();
        assert_eq!(known, CanonicalCalls::from_json(truth).unwrap());
        let f = r#"{\"name\": \"f\", \"arguments\": {\"b\": [1, 2.5], \"a\": \"x\\u00e9\"}}"#;
        let g = r#"{\"name\": \"g\", \"arguments\": {}}"#;
        assert_eq!(
            known.known_call(format!("{g}, ").as_bytes(), 0),
            Some((1, g.len()))
        );
        assert_eq!(known.known_call(f.as_bytes(), 1), Some((0, f.len())));
        assert_eq!(known.known_call(&f.as_bytes()[..f.len() - 1], 0), None);
        // Read again as plain JSON: no texts kept, nothing copied.
        let mut plain = known.clone();
        assert!(plain.read_json(truth));
        assert_eq!(plain, known);
        assert_eq!(plain.known_call(g.as_bytes(), 0), None);
        // Shuffled, repeated, reformatted, renamed, cut off: each scored
        // as the decoded reply is.
        for payload in [
            r#"[{"name": "g", "arguments": {}}, {"name": "f", "arguments": {"b": [1, 2.5], "a": "x\u00e9"}}]"#,
            r#"[{"name": "g", "arguments": {}}, {"name": "g", "arguments": {}}]"#,
            r#"[{"name": "g", "arguments": {}}, {"name": "f", "arguments": {"a": "x\u00e9", "b": [1, 2.5]}}]"#,
            r#"[{"name": "g", "arguments": {}}, {"name": "h", "arguments": {"b": [1, 2.5], "a": "x\u00e9"}}]"#,
            r#"[{"name": "g", "arguments": {}}, {"name": "f", "arguments": {"b": [1, 2.5], "a": "x\u00e9"}"#,
            r#"{"name": "g", "arguments": {}}"#,
        ] {
            let reply = format!("<think>x</think><tool_call>{payload}</tool_call>");
            assert!(scores_alike_in_string(&reply, &known), "{payload}");
        }
    }

    /// Scores `completion` from its JSON string literal's body (when the
    /// body qualifies) and checks the verdict is the decoded text's;
    /// returns whether it scored from the body.
    fn scores_alike_in_string(completion: &str, truth: &CanonicalCalls) -> bool {
        let literal = serde_json::to_string(completion).unwrap();
        let body = &literal[1..literal.len() - 1];
        // The literal's own escapes (in `\\u`, a backslash is escaped).
        let b = body.as_bytes();
        let mut i = 0;
        while let Some(at) = memchr::memchr(b'\\', &b[i..]) {
            if matches!(b[i + at + 1], b'u' | b'/') {
                return false;
            }
            i += at + 2;
        }
        let mut predicted = CanonicalCalls::default();
        let mut read = false;
        for variant in VARIANTS {
            let rule = ToolN1Rule { variant };
            if let Some(v) = rule.score_in_string(body, truth, None, &mut predicted) {
                assert_eq!(
                    v,
                    rule.score_canonical(completion, truth),
                    "{variant:?} {body}"
                );
                read = true;
            }
        }
        read
    }

    #[test]
    fn replies_score_alike_from_their_literals() {
        let fixture = include_str!("../../tests/fixtures/tooln1_parity.jsonl");
        let mut read = 0;
        for line in fixture.lines() {
            let Ok(case) = serde_json::from_str::<serde_json::Value>(line) else {
                continue; // a raw lone surrogate
            };
            let (Some(completion), Some(truth)) =
                (case["completion"].as_str(), case["ground_truth"].as_str())
            else {
                continue;
            };
            let Ok(calls) = Call::list_from_json(truth) else {
                continue;
            };
            read += usize::from(scores_alike_in_string(
                completion,
                &CanonicalCalls::from_calls(&calls),
            ));
            // The ground truth read from its own literal keeps its calls'
            // texts: replies repeating them are scored alike too.
            if let Some(truth) = from_literal(truth) {
                scores_alike_in_string(completion, &truth);
            }
        }
        assert!(read > 300, "only {read} replies scored from their literals");
    }

    #[test]
    fn escaped_and_cut_off_replies_score_alike_from_their_literals() {
        // Strings with escapes of their own (`\u00e9`, a surrogate pair,
        // `\"`, `\\`, `\n`), and every prefix of the payload: a cut-off one
        // is the script's JSON error without decoding the literal.
        let payload = r#"[{"name": "f", "arguments": {"q": "a\"b\\c\u00e9\ud83d\ude00\n\t\/", "n": [1, {"k": null}]}}, {"name": "g\u00e9", "arguments": {}}]"#;
        let truth = CanonicalCalls::from_json(payload).unwrap();
        let other = CanonicalCalls::from_json(r#"{"name": "f", "arguments": {"q": 1}}"#).unwrap();
        // Read from its literal: a prefix holding its first call whole has
        // that call copied.
        let same_text = from_literal(payload).unwrap();
        assert_eq!(same_text, truth);
        let mut read = 0;
        for cut in 0..=payload.len() {
            let reply = format!(
                "<think>x</think><tool_call>\n{}\n</tool_call>",
                &payload[..cut]
            );
            let mut all = true;
            for t in [&truth, &other, &same_text] {
                all &= scores_alike_in_string(&reply, t);
            }
            let literal = serde_json::to_string(&reply).unwrap();
            let mut predicted = CanonicalCalls::default();
            let body = &literal[1..literal.len() - 1];
            let v = ToolN1Rule::V0.score_in_string(body, &truth, None, &mut predicted);
            let expected = if cut == payload.len() {
                Reason::Ok
            } else {
                Reason::JsonError
            };
            if let Some(v) = v {
                assert_eq!(v.reason, expected, "{reply}");
            }
            read += usize::from(all);
        }
        // Only prefixes cut inside `null` (the general reader decides
        // those) are declined.
        assert_eq!(
            read,
            payload.len() + 1 - 3,
            "of {} prefixes",
            payload.len() + 1
        );
        // A string cut inside its escape, and a raw newline in a string:
        // still the script's verdicts (read or declined).
        for reply in [
            r#"<think></think><tool_call>[{"name": "f\</tool_call>"#,
            "<think></think><tool_call>[{\"name\": \"f\nx\", \"arguments\": {}}]</tool_call>",
            r#"<think></think><tool_call>[{"name": "f\u00", "arguments": {}}]</tool_call>"#,
        ] {
            scores_alike_in_string(reply, &truth);
        }
    }

    proptest::proptest! {
        #[test]
        fn random_replies_score_alike_from_their_literals(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "<think>", "</think>", "<tool_call>", "</tool_call>", "<|im_start|>assistant",
                    "[", "]", "{", "}", ",", ":", " ", "\n", "\t", "\u{c}", "\"", "\\", "é",
                    "\"name\"", "\"arguments\"", "\"f\"", "\"g\"", "1", "-0", "2.5", "null",
                    "[{\"name\": \"f\", \"arguments\": {\"a\": 1}}]",
                    "\"\\u00e9\"", "\"\\\"\"", "\"\\\\\"", "\"\\n\"", "\\u",
                    "{\"name\": \"g\", \"arguments\": {}}",
                ]),
                0..24,
            ),
            truth in proptest::sample::select(vec![
                "[]", "[{\"name\": \"f\", \"arguments\": {\"a\": 1}}]",
                "[{\"name\": \"g\", \"arguments\": {}}, {\"name\": \"f\", \"arguments\": {\"a\": 1}}]",
            ]),
        ) {
            let truth = CanonicalCalls::from_json(truth).unwrap();
            let reply = pieces.concat();
            scores_alike_in_string(&reply, &truth);
            // A well-formed reply is always read from its literal.
            let good = format!(
                "<think>x</think>\n<tool_call>\n[{{\"name\": \"f\", \"arguments\": {{\"a\": 1}}}}]\n</tool_call>{}",
                pieces.concat().replace(['<', '\\', '\u{c}'], "")
            );
            proptest::prop_assert!(scores_alike_in_string(&good, &truth), "{}", good);
        }
    }

    /// The script's steps 1, 2 and 4 as it writes them: cut at the last
    /// marker, substring checks, `re.finditer` for the blocks.
    fn reference(s: &str) -> (bool, Option<&str>) {
        let out = s.rfind(ASSISTANT_MARKER).map_or(s, |i| &s[i..]);
        let think = out.contains(THINK_OPEN) && out.contains(THINK_CLOSE);
        let (mut pos, mut last) = (0, None);
        while let Some(open) = out[pos..].find(TOOL_CALL_OPEN).map(|i| pos + i) {
            let body = open + TOOL_CALL_OPEN.len();
            let Some(close) = out[body..].find(TOOL_CALL_CLOSE).map(|i| body + i) else {
                break;
            };
            last = Some(&out[body..close]);
            pos = close + TOOL_CALL_CLOSE.len();
        }
        (think, last)
    }

    proptest::proptest! {
        #[test]
        fn one_pass_scan_is_the_scripts_search(pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                "<think>", "</think>", "<tool_call>", "</tool_call>", "<|im_start|>assistant",
                "<|im_start|>", "<tool_", "</tool_call", "<", ">", "x", "é", "[1]", " ",
            ]),
            0..24,
        )) {
            let s = pieces.concat();
            proptest::prop_assert_eq!(scan(&s), reference(&s));
        }
    }
}
