//! Scoring JSON Lines files: one record per line in, one verdict per line
//! out, in the same order. A bad line becomes an `input_error` verdict and
//! the run goes on; nothing is dropped.
//!
//! Input line: `{"id"?: any, "completion": string | assistant message |
//! [messages], <truth fields>}` (an OpenAI-style assistant message, with
//! `tool_calls`, or a transcript, is read by [`completion_text`]); the
//! truth is read from the record by a closure ([`score_jsonl_with`]), so
//! any rule's ground-truth type can be streamed:
//! - call lists ([`score_jsonl`], [`call_truth`]): `"ground_truth": [calls]`
//!   (may also be a JSON string holding the list, as in xLAM);
//! - BFCL cases ([`bfcl_truth`]): `"functions"` (or `"function"`),
//!   `"possible_answer"` (or `"ground_truth"`: BFCL's `ground_truth` list of
//!   `{func: {param: [allowed values]}}`), `"category"` (else derived from
//!   the string `id`).
//!
//! Output line: `{"id", "line", "reward", "reason", "detail"?}`.
//!
//! [`score_jsonl_episodes`] reads the same call records, each completion a
//! whole multi-step episode (a transcript, or a ChatML text with its turn
//! headers), and scores it with [`RewardRule::score_episode`].

mod plain;

use crate::bfcl::{BfclExpected, Category};
use crate::{
    completion_text, episode_texts, episode_verdict, scores_episodes, Call, CompletionError,
    NoEpisodes, Reason, RewardRule, Summary, Verdict,
};
use plain::{Escapes, Plain, Scratch, TruthForm};
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Borrow;
use std::io::{self, BufRead, Read, Write};

/// One input record.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRecord {
    /// The record's `id` (null when absent).
    pub id: Value,
    /// The model's raw completion.
    pub completion: String,
    /// The expected calls.
    pub ground_truth: Vec<Call>,
    /// Every other field of the record (for rules that need more, e.g. BFCL's).
    pub extra: Map<String, Value>,
}

/// Why a line is not a usable record.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// The line is not UTF-8.
    #[error("invalid UTF-8 at byte {0} of the line")]
    InvalidUtf8(usize),
    /// The line is not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// The line is JSON but not an object.
    #[error("the record is not a JSON object")]
    NotObject,
    /// A required field is absent.
    #[error("missing field {0:?}")]
    MissingField(&'static str),
    /// A field has the wrong type.
    #[error("field {field:?} must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// `completion` is neither text nor an assistant message (see
    /// [`completion_text`]).
    #[error("bad completion: {0}")]
    Completion(#[from] CompletionError),
    /// `ground_truth` is not a list of calls.
    #[error("bad ground_truth: {0}")]
    GroundTruth(#[from] crate::CallShapeError),
    /// The truth fields do not make a usable ground truth for the rule
    /// (e.g. a BFCL case that cannot be read).
    #[error("bad {field}: {message}")]
    Truth {
        /// The field (or fields) at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A record read with a custom truth type: the id, the completion, the
/// truth, and the fields nobody consumed.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<T> {
    /// The record's `id` (null when absent).
    pub id: Value,
    /// The model's raw completion.
    pub completion: String,
    /// The ground truth, as the reader made it.
    pub truth: T,
    /// Every field the truth reader left in the record.
    pub extra: Map<String, Value>,
}

impl<T> Record<T> {
    /// Parses one line: `id` and `completion` are taken out of the object,
    /// then `truth` reads (and takes) what it needs from the rest. On
    /// error, also returns the `id` if it could be read.
    pub fn parse_with(
        line: &[u8],
        truth: impl FnOnce(&Value, &mut Map<String, Value>) -> Result<T, RecordError>,
    ) -> Result<Record<T>, (Value, RecordError)> {
        let Fields {
            id,
            completion,
            mut rest,
        } = Fields::parse(line, None)?;
        let completion = match completion {
            Value::String(s) => s,
            message => match completion_text(&message) {
                Ok(text) => text.into_owned(),
                Err(e) => return Err((id, RecordError::Completion(e))),
            },
        };
        match truth(&id, &mut rest) {
            Ok(truth) => Ok(Record {
                id,
                completion,
                truth,
                extra: rest,
            }),
            Err(e) => Err((id, e)),
        }
    }
}

/// A record's envelope: its `id` and `completion` taken out of the
/// object, the rest left for the truth reader. The one home of the errors
/// the general record readers ([`Record::parse_with`] and
/// [`score_jsonl_episodes`]) report first: UTF-8, JSON, not an object, no
/// completion.
struct Fields {
    id: Value,
    completion: Value,
    rest: Map<String, Value>,
}

impl Fields {
    /// Reads `line`; `utf8` is the line as text when it was already checked.
    fn parse(line: &[u8], utf8: Option<&str>) -> Result<Fields, (Value, RecordError)> {
        let text = match utf8 {
            Some(text) => text,
            None => std::str::from_utf8(line)
                .map_err(|e| (Value::Null, RecordError::InvalidUtf8(e.valid_up_to())))?,
        };
        let value: Value = serde_json::from_str(text)
            .map_err(|e| (Value::Null, RecordError::Json(why_not_json(text, &e))))?;
        let Value::Object(mut rest) = value else {
            return Err((Value::Null, RecordError::NotObject));
        };
        let id = rest.shift_remove("id").unwrap_or(Value::Null);
        if id.is_f64() {
            if let Some(e) = rounded_integer_id(text, &id) {
                return Err((Value::Null, e));
            }
        }
        match rest.shift_remove("completion") {
            Some(completion) => Ok(Fields {
                id,
                completion,
                rest,
            }),
            None => Err((id, RecordError::MissingField("completion"))),
        }
    }
}

/// An `id` written as an integer that serde reads as a float (past 64
/// bits, or `-0`): echoed in the verdict it would be another number
/// (`1.2345678901234568e22`, `-0.0`), and two ids could become one.
/// Refused, naming it; `None` when the id was written as a float.
fn rounded_integer_id(text: &str, id: &Value) -> Option<RecordError> {
    // Every top-level field as written: a repeated `id` is the last one,
    // as in the `Value` read (a struct would refuse the repetition).
    let fields: std::collections::HashMap<String, &serde_json::value::RawValue> =
        serde_json::from_str(text).ok()?;
    let raw = fields.get("id")?.get();
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(RecordError::Truth {
        field: "id",
        message: format!(
            "the integer {raw} would be written {id} (past 64 bits, or -0: JSON readers keep such \
             numbers as floats); write the id as a string"
        ),
    })
}

/// serde's message for a line that is not JSON, with what it does not
/// say for the two cases it names badly: a byte-order mark inside a file
/// (files joined with `cat`; at a file's start it is skipped), and a lone
/// UTF-16 surrogate escape (serde says "unexpected end of hex escape").
fn why_not_json(text: &str, e: &serde_json::Error) -> String {
    let message = e.to_string();
    if text.starts_with('\u{feff}') {
        return format!(
            "{message} (the line starts with a UTF-8 byte-order mark, U+FEFF: files joined with \
             `cat`? only a file's first line may have one)"
        );
    }
    if message.contains("hex escape") || message.contains("surrogate") {
        return format!(
            "{message} (a \\uD800-\\uDFFF escape not in a high-low pair is a lone UTF-16 \
             surrogate, which is no text)"
        );
    }
    message
}

/// The truth reader of the call-list rules: takes `ground_truth` (a list
/// of calls, or JSON text holding one). Text is read as the released
/// Tool-N1 script reads it ([`Call::list_from_json`]): decoded, and
/// decoded once more when that gives a string.
pub fn call_truth(_id: &Value, record: &mut Map<String, Value>) -> Result<Vec<Call>, RecordError> {
    match record.shift_remove("ground_truth") {
        Some(Value::String(text)) => Call::list_from_json(&text).map_err(RecordError::GroundTruth),
        Some(v) => Call::list_from_value(v).map_err(RecordError::GroundTruth),
        None => Err(RecordError::MissingField("ground_truth")),
    }
}

/// The truth reader of the BFCL rules ([`crate::bfcl::BfclAstRule`]):
/// a [`BfclExpected`] from `functions` (or BFCL's own `function`),
/// `possible_answer` (or `ground_truth`; BFCL's list of
/// `{func: {param: [allowed values]}}`) and `category` (an official name;
/// when absent, derived from the string `id` as BFCL does). The
/// (ir)relevance categories need neither functions nor answers.
///
/// ```
/// use serde_json::{json, Value};
/// use toolgym_reward::jsonl::bfcl_truth;
/// use toolgym_reward::bfcl::Category;
/// let mut rec = json!({"functions": [{"name": "f", "parameters": {"type": "dict",
///     "properties": {"x": {"type": "integer"}}, "required": ["x"]}}],
///     "possible_answer": [{"f": {"x": [1]}}]}).as_object().unwrap().clone();
/// let case = bfcl_truth(&json!("simple_python_7"), &mut rec).unwrap();
/// assert_eq!(case.category, Category::SimplePython);
/// assert!(bfcl_truth(&Value::Null, &mut Default::default()).is_err()); // no category
/// ```
pub fn bfcl_truth(
    id: &Value,
    record: &mut Map<String, Value>,
) -> Result<BfclExpected, RecordError> {
    let id_text = match id {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let category = match record.shift_remove("category") {
        Some(Value::String(name)) => {
            Category::from_name(&name).ok_or_else(|| RecordError::Truth {
                field: "category",
                message: format!(
                    "unknown BFCL category {name:?}; known: {}",
                    Category::ALL.map(Category::as_str).join(", ")
                ),
            })?
        }
        Some(_) => {
            return Err(RecordError::WrongType {
                field: "category",
                expected: "a string",
            })
        }
        None => Category::from_id(&id_text).ok_or_else(|| RecordError::Truth {
            field: "category",
            message: format!(
                "no \"category\" field, and the id {id} does not name a BFCL category"
            ),
        })?,
    };
    // Errors name the field as the record spells it.
    let (functions_field, functions) = match record.shift_remove("functions") {
        Some(f) => ("functions", f),
        None => (
            "function",
            record.shift_remove("function").unwrap_or(Value::Null),
        ),
    };
    let (answer_field, answer) = match record.shift_remove("possible_answer") {
        Some(a) => ("possible_answer", Some(a)),
        None => ("ground_truth", record.shift_remove("ground_truth")),
    };
    if category.has_answers() {
        if functions.is_null() {
            return Err(RecordError::MissingField("functions"));
        }
        let Some(answer) = &answer else {
            return Err(RecordError::MissingField("possible_answer"));
        };
        if !functions.is_array() {
            return Err(RecordError::WrongType {
                field: functions_field,
                expected: "a list of function docs",
            });
        }
        if !answer.is_array() {
            return Err(RecordError::WrongType {
                field: answer_field,
                expected: "a list of possible answers",
            });
        }
    }
    let name = if id_text.is_empty() { "?" } else { &id_text };
    let fields = [functions_field, answer_field];
    BfclExpected::new_named(name, category, &functions, answer.as_ref(), fields).map_err(|e| {
        RecordError::Truth {
            field: if e.in_answer {
                answer_field
            } else {
                functions_field
            },
            message: e.what,
        }
    })
}

impl ScoreRecord {
    /// Parses one line. On error, also returns the `id` if it could be read.
    pub fn parse(line: &[u8]) -> Result<ScoreRecord, (Value, RecordError)> {
        let r = Record::parse_with(line, call_truth)?;
        Ok(ScoreRecord {
            id: r.id,
            completion: r.completion,
            ground_truth: r.truth,
            extra: r.extra,
        })
    }
}

/// One output line: `{"id", "line", "reward", "reason", "detail"?}`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredLine {
    /// The record's id (null when absent or unreadable).
    pub id: Value,
    /// 1-based line number in the input.
    pub line: usize,
    /// The verdict (its fields are written beside `id` and `line`).
    pub verdict: Verdict,
}

/// Written by hand rather than with `#[serde(flatten)]`, which goes
/// through serde's map machinery: the same bytes, a few percent of a
/// `toolgym score` run less.
impl Serialize for ScoredLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let v = &self.verdict;
        let mut st = s.serialize_struct("ScoredLine", 5)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("line", &self.line)?;
        st.serialize_field("reward", &v.reward)?;
        st.serialize_field("reason", &v.reason)?;
        if v.detail.is_empty() {
            st.skip_field("detail")?;
        } else {
            st.serialize_field("detail", &v.detail)?;
        }
        st.end()
    }
}

impl ScoredLine {
    /// Appends the bytes `serde_json::to_writer` writes for the line,
    /// its common fields (an integer id, the line number, a reward of 0
    /// or 1, the reason, a detail needing no escapes) without serde's
    /// machinery.
    fn write_json(&self, out: &mut Vec<u8>) {
        use crate::pyjson::push_decimal;
        out.extend_from_slice(b"{\"id\":");
        match self.id.as_u64().and_then(|n| i64::try_from(n).ok()) {
            Some(n) => push_decimal(n, out),
            None => serde_into(out, &self.id),
        }
        out.extend_from_slice(b",\"line\":");
        match i64::try_from(self.line) {
            Ok(n) => push_decimal(n, out),
            Err(_) => serde_into(out, &self.line),
        }
        out.extend_from_slice(b",\"reward\":");
        let v = &self.verdict;
        match v.reward.to_bits() {
            b if b == 1f64.to_bits() => out.extend_from_slice(b"1.0"),
            b if b == 0f64.to_bits() => out.extend_from_slice(b"0.0"),
            _ => serde_into(out, &v.reward),
        }
        out.extend_from_slice(b",\"reason\":\"");
        out.extend_from_slice(v.reason.as_str().as_bytes());
        out.push(b'"');
        if !v.detail.is_empty() {
            out.extend_from_slice(b",\"detail\":");
            // serde_json escapes control characters, quotes, backslashes.
            if crate::search::special(v.detail.as_bytes(), 0).is_none() {
                out.push(b'"');
                out.extend_from_slice(v.detail.as_bytes());
                out.push(b'"');
            } else {
                serde_into(out, &v.detail);
            }
        }
        out.push(b'}');
    }
}

/// Appends `v` as serde_json writes it.
fn serde_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Ids, numbers and strings always serialise into a Vec.
    serde_json::to_writer(out, v).expect("serde_json writes ids, numbers and strings");
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// Summary over all scored lines (input errors included, as reward 0).
    pub summary: Summary,
    /// Lines that were not usable records.
    pub input_errors: usize,
    /// Blank lines skipped.
    pub blank_lines: usize,
}

/// Options for [`score_jsonl`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonlOptions {
    /// Lines scored per parallel batch (bounds memory on huge files). On
    /// one thread at most [`SERIAL_CHUNK_LINES`] are read at a time.
    pub chunk_lines: usize,
    /// Score in parallel on rayon's current pool (needs the `rayon` feature;
    /// ignored without it).
    pub parallel: bool,
    /// Longest line read (bytes, newline included). A longer line is not
    /// held in memory: it is skipped and scored as an `input_error` naming
    /// its length, so no single line can exhaust memory.
    pub max_line_bytes: usize,
}

/// Lines per chunk when one thread reads and scores: nothing runs while
/// it reads, so a chunk only has to outweigh its own cost, and a small
/// one is still in cache when it is scored (a 4096-line chunk of 1.4 KB
/// lines is not: about 8% slower as a whole process).
pub const SERIAL_CHUNK_LINES: usize = 256;

/// The default [`JsonlOptions::chunk_lines`]: lines per chunk on a pool.
pub const CHUNK_LINES: usize = 4096;

/// The default [`JsonlOptions::max_line_bytes`]: 256 MiB.
pub const MAX_LINE_BYTES: usize = 256 << 20;

/// Most scoring threads a batch scorer lets a caller ask for (the CLI's
/// `--threads`, Python's `threads=`): each is an OS thread started at
/// once, and more threads than cores do not score faster.
pub const MAX_THREADS: usize = 1024;

/// The UTF-8 byte-order mark some editors (and PowerShell) write at the
/// start of a file. It is not JSON: file readers skip it ([`LineReader`]
/// before its first line; [`score_jsonl`] does not, it reads what it is
/// given).
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Whether a line holds JSON whitespace only (space, tab, CR, LF: RFC 8259
/// §2): the one definition of a blank line, skipped and counted by every
/// JSON Lines reader. Anything else, a form feed or a no-break space
/// included, is a line to parse, and to report when it is not a record
/// (`json.loads` rejects it too).
///
/// ```
/// use toolgym_reward::jsonl::is_blank;
/// assert!(is_blank(b"") && is_blank(b" \t\r\n"));
/// assert!(!is_blank(b"\x0c") && !is_blank("\u{a0}".as_bytes()) && !is_blank(b" {}"));
/// ```
pub fn is_blank(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

impl Default for JsonlOptions {
    fn default() -> Self {
        Self {
            chunk_lines: CHUNK_LINES,
            parallel: true,
            max_line_bytes: MAX_LINE_BYTES,
        }
    }
}

/// Scores every line of `input` with `rule`, writing one JSON line per
/// non-blank input line to `output`, in order. Records are read with
/// [`call_truth`].
///
/// Records with exactly the fields `id` (a scalar), `completion` (a
/// string) and `ground_truth` take a fast path (no JSON tree for the
/// record, an unescaped completion borrowed from the line, calls read
/// straight from the text and kept for the next line when its ground
/// truth is the same bytes); every other line goes through
/// [`Record::parse_with`], so verdicts, errors included, are the same
/// either way.
///
/// ```
/// use toolgym_reward::{jsonl, rule_by_name};
/// let input = concat!(
///     r#"{"id": 1, "completion": "<think>x</think><tool_call>[]</tool_call>", "ground_truth": []}"#, "\n",
///     "not json\n",
/// );
/// let mut out = Vec::new();
/// let rule = rule_by_name("binary").unwrap();
/// let report = jsonl::score_jsonl(&*rule, input.as_bytes(), &mut out, Default::default()).unwrap();
/// assert_eq!((report.summary.count, report.input_errors), (2, 1));
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.lines().nth(1).unwrap().contains("input_error"));
/// ```
pub fn score_jsonl(
    rule: &dyn RewardRule<[Call]>,
    input: impl BufRead,
    output: impl Write,
    options: JsonlOptions,
) -> io::Result<RunReport> {
    let general = |line, bytes: &[u8]| score_line(rule, &call_truth, line, bytes);
    // The released script's rules compare canonical keys: its fast path
    // reads ground truths straight into them.
    match rule.as_tool_n1() {
        Some(n1) => run(input, output, options, |line, bytes, utf8, scratch| {
            fast_call_line(line, bytes, utf8, scratch, |record| {
                // Most replies score straight from the line; the rest once
                // decoded.
                if record.escapes != Escapes::Any {
                    let body = &record.line[record.body.clone()];
                    let truth_body = record.truth_literal_body();
                    if let Some(v) =
                        n1.score_in_string(body, record.truth, truth_body, record.predicted)
                    {
                        return v;
                    }
                }
                let truth = record.truth;
                n1.score_canonical(record.completion(), truth)
            })
            .unwrap_or_else(|| general(line, bytes))
        }),
        None => run(input, output, options, |line, bytes, utf8, scratch| {
            fast_call_line(
                line,
                bytes,
                utf8,
                scratch,
                |record: &mut Plain<'_, Vec<Call>>| {
                    let truth = record.truth;
                    rule.score(record.completion(), truth)
                },
            )
            .unwrap_or_else(|| general(line, bytes))
        }),
    }
}

/// [`score_jsonl`] for any rule: `truth` reads the rule's ground truth
/// from each record (after `id` and `completion` are taken out; see
/// [`Record::parse_with`]); its error makes the line an `input_error`.
///
/// ```
/// use toolgym_reward::bfcl::BfclAstRule;
/// use toolgym_reward::jsonl;
/// let input = concat!(
///     r#"{"id": "simple_python_0", "completion": "<tool_call>[{\"name\": \"f\", \"arguments\": {\"x\": 1}}]</tool_call>", "#,
///     r#""functions": [{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}], "#,
///     r#""possible_answer": [{"f": {"x": [1]}}]}"#, "\n",
///     r#"{"id": "irrelevance_3", "completion": "<think>no tool fits</think>"}"#, "\n",
///     r#"{"id": "simple_python_1", "completion": ""}"#, "\n",
/// );
/// let mut out = Vec::new();
/// let rule = BfclAstRule::official();
/// let report = jsonl::score_jsonl_with(&rule, jsonl::bfcl_truth, input.as_bytes(), &mut out, Default::default()).unwrap();
/// assert_eq!((report.summary.count, report.input_errors), (3, 1));
/// assert_eq!(report.summary.accuracy, 2.0 / 3.0);
/// ```
pub fn score_jsonl_with<T, O, F>(
    rule: &dyn RewardRule<T>,
    truth: F,
    input: impl BufRead,
    output: impl Write,
    options: JsonlOptions,
) -> io::Result<RunReport>
where
    T: ?Sized,
    O: Borrow<T>,
    F: Fn(&Value, &mut Map<String, Value>) -> Result<O, RecordError> + Sync,
{
    run(input, output, options, |line, bytes, _, _: &mut ()| {
        score_line(rule, &truth, line, bytes)
    })
}

/// Scores every line of `input` as a multi-step episode
/// ([`RewardRule::score_episode`]): a record is `{"id"?, "completion",
/// "ground_truth"}` as for [`score_jsonl`], its completion the whole
/// episode, read by [`episode_texts`]:
/// - a list of messages (what the model wrote after the prompt, as TRL's
///   tool loop keeps it): every assistant message is a reply, the tool
///   results between them are not scored (an assistant message of the
///   prompt's history passed along would be scored as a reply too);
/// - a ChatML text decoded with its special tokens kept (verl's agent
///   loop): split at its turn headers ([`crate::chatml_replies`]);
/// - one assistant message, or text without turn headers: an episode of
///   one reply, which the built-in rules score as [`RewardRule::score`]
///   scores it.
///
/// The calls of all replies together must match `ground_truth`, order-free.
/// Output lines, errors and the report are [`score_jsonl`]'s; the
/// completion is read before the ground truth, as there. Every line goes
/// through the general reader (a JSON tree per record). A rule without
/// episode semantics (the released script's) is refused before any input
/// is read: an [`io::ErrorKind::InvalidInput`] error holding
/// [`NoEpisodes`].
///
/// ```
/// use serde_json::{json, Value};
/// use toolgym_reward::{jsonl, rule_by_name};
/// let call = |name: &str, args: Value| {
///     format!("<think>next</think><tool_call>[{}]</tool_call>", json!({"name": name, "arguments": args}))
/// };
/// let (find, pay) = (call("find", json!({"q": "ann"})), call("pay", json!({"to": 7})));
/// let truth = json!([{"name": "find", "arguments": {"q": "ann"}}, {"name": "pay", "arguments": {"to": 7}}]);
/// let records = [
///     // A transcript: two replies, a tool result between them.
///     json!([{"role": "assistant", "content": find}, {"role": "tool", "content": "7"},
///            {"role": "assistant", "content": pay}]),
///     // The same episode as verl's agent loop decodes it.
///     json!(format!("{find}<|im_end|>\n<|im_start|>user\n<tool_response>\n7\n</tool_response><|im_end|>\n\
///                    <|im_start|>assistant\n{pay}<|im_end|>")),
///     // One reply that leaves a step out.
///     json!(pay),
/// ];
/// let input: String = records.iter().enumerate()
///     .map(|(i, c)| format!("{}\n", json!({"id": i, "completion": c, "ground_truth": truth})))
///     .collect();
/// let binary = rule_by_name("binary").unwrap();
/// let mut out = Vec::new();
/// jsonl::score_jsonl_episodes(&*binary, input.as_bytes(), &mut out, Default::default()).unwrap();
/// let reasons: Vec<String> = String::from_utf8(out).unwrap().lines()
///     .map(|l| serde_json::from_str::<Value>(l).unwrap()["reason"].as_str().unwrap().into())
///     .collect();
/// assert_eq!(reasons, ["ok", "ok", "missing_call"]);
/// // One reply at a time, no record makes both calls.
/// let mut out = Vec::new();
/// let single = jsonl::score_jsonl(&*binary, input.as_bytes(), &mut out, Default::default()).unwrap();
/// assert_eq!(single.summary.accuracy, 0.0);
/// // The released script's rule scores one reply: refused, nothing written.
/// let tool_n1 = rule_by_name("tool-n1").unwrap();
/// let mut out = Vec::new();
/// let e = jsonl::score_jsonl_episodes(&*tool_n1, input.as_bytes(), &mut out, Default::default()).unwrap_err();
/// assert_eq!((e.kind(), out.len()), (std::io::ErrorKind::InvalidInput, 0));
/// assert!(e.into_inner().unwrap().is::<toolgym_reward::NoEpisodes>());
/// ```
pub fn score_jsonl_episodes(
    rule: &dyn RewardRule<[Call]>,
    input: impl BufRead,
    output: impl Write,
    options: JsonlOptions,
) -> io::Result<RunReport> {
    if !scores_episodes(rule) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            NoEpisodes::new(rule.name()),
        ));
    }
    run(input, output, options, |line, bytes, utf8, _: &mut ()| {
        let (id, verdict) = match Fields::parse(bytes, utf8) {
            Ok(Fields {
                id,
                completion,
                mut rest,
            }) => {
                let verdict = score_episode_record(rule, &id, &completion, &mut rest);
                (id, verdict)
            }
            Err((id, e)) => (id, Err(e)),
        };
        ScoredLine {
            id,
            line,
            verdict: verdict.unwrap_or_else(|e| Verdict::fail(Reason::InputError, e.to_string())),
        }
    })
}

/// One record of [`score_jsonl_episodes`]: its replies, then its ground
/// truth (the order [`Record::parse_with`] reads them in), then the verdict.
fn score_episode_record(
    rule: &dyn RewardRule<[Call]>,
    id: &Value,
    completion: &Value,
    rest: &mut Map<String, Value>,
) -> Result<Verdict, RecordError> {
    let turns = episode_texts(completion)?;
    let truth = call_truth(id, rest)?;
    let replies: Vec<&str> = turns.iter().map(|t| t.as_ref()).collect();
    Ok(episode_verdict(rule, &replies, &truth))
}

/// Lines scored and serialised by one task of a chunk.
const LINES_PER_TASK: usize = 64;

/// The streaming loop: the input is read in blocks straight into one
/// buffer per chunk (no copy or allocation per line), scored and
/// serialised in parallel in sub-chunks, and written in input order.
/// While one chunk is scored, this thread reads the next. Memory is
/// bounded by two chunks: at most `2 * chunk_lines` lines, a read block
/// each, and one chunk's output are held at once.
fn run<S, Sc: Default + Send>(
    mut input: impl Read,
    mut output: impl Write,
    options: JsonlOptions,
    score: S,
) -> io::Result<RunReport>
where
    S: Fn(usize, &[u8], Option<&str>, &mut Sc) -> ScoredLine + Sync,
{
    let mut report = RunReport::default();
    let mut reader = ChunkReader::new(&options);
    if !parallel_pool(options.parallel) {
        reader.chunk_lines = reader.chunk_lines.min(SERIAL_CHUNK_LINES);
    }
    let (mut current, mut next) = (Chunk::default(), Chunk::default());
    let mut serial = Sc::default();
    reader.fill(&mut input, &[], &mut current, &mut report)?;
    while !current.lines.is_empty() {
        let (scored, read) = score_while_reading(
            options.parallel,
            || {
                score_chunk(
                    &score,
                    &current.text[..current.len],
                    &current.lines,
                    options,
                    &mut serial,
                )
            },
            || reader.fill(&mut input, current.tail(), &mut next, &mut report),
        );
        read?;
        for (bytes, verdicts) in scored? {
            output.write_all(&bytes)?;
            report.input_errors += verdicts
                .iter()
                .filter(|(_, reason)| *reason == Reason::InputError)
                .count();
            report.summary.add_rewards(&verdicts);
        }
        std::mem::swap(&mut current, &mut next);
    }
    output.flush()?;
    Ok(report)
}

/// Whether [`score_while_reading`] runs its two jobs at once: `parallel`
/// with the `rayon` feature, on a pool of more than one thread.
fn parallel_pool(parallel: bool) -> bool {
    #[cfg(feature = "rayon")]
    return parallel && rayon::current_num_threads() > 1;
    #[cfg(not(feature = "rayon"))]
    return {
        let _ = parallel;
        false
    };
}

/// When `parallel`, runs `score` on rayon's current pool while this
/// thread runs `read` (the input need not be `Send`); otherwise, or
/// without the `rayon` feature, one after the other.
fn score_while_reading<A: Send, B>(
    parallel: bool,
    score: impl FnOnce() -> A + Send,
    read: impl FnOnce() -> B,
) -> (A, B) {
    #[cfg(feature = "rayon")]
    if parallel {
        let mut scored = None;
        let read = rayon::in_place_scope(|s| {
            s.spawn(|_| scored = Some(score()));
            read()
        });
        return (scored.expect("the scope ran the scoring job"), read);
    }
    let _ = parallel;
    (score(), read())
}

/// Lines read into one buffer.
#[derive(Default)]
struct Chunk {
    /// The buffer: `text[..len]` holds the lines, then `tail` bytes read
    /// past the last one follow (the rest is room for reads, kept
    /// initialised so it is zeroed only when it grows).
    text: Vec<u8>,
    len: usize,
    tail: usize,
    lines: Vec<Line>,
}

impl Chunk {
    /// What was read past the last line: where the next chunk starts.
    fn tail(&self) -> &[u8] {
        &self.text[self.len..self.len + self.tail]
    }
}

/// Bytes asked of the input per read: large enough to pass a `BufReader`
/// of up to this capacity by (no copy through its buffer), small next to
/// a chunk.
const READ_BLOCK: usize = 256 << 10;

/// Fewest bytes asked of the input per read (unless the block is smaller).
const MIN_READ: usize = 16 << 10;

/// Reads the input chunk by chunk, in blocks straight into the chunk's
/// buffer, numbering lines across chunks.
struct ChunkReader {
    lineno: usize,
    chunk_lines: usize,
    max_line_bytes: usize,
    eof: bool,
    /// Most bytes per read.
    block: usize,
    /// Fewest bytes per read (unless `block` is fewer).
    min_read: usize,
    /// Bytes and lines read so far (for the average line's length).
    seen: (usize, usize),
}

impl ChunkReader {
    fn new(options: &JsonlOptions) -> Self {
        ChunkReader {
            lineno: 0,
            chunk_lines: options.chunk_lines.max(1),
            max_line_bytes: options.max_line_bytes,
            eof: false,
            block: READ_BLOCK,
            min_read: MIN_READ,
            seen: (0, 0),
        }
    }

    /// Bytes to ask for when `missing` lines are still wanted: about
    /// what they hold at the average length so far (and a line more), so
    /// that little is read past the chunk's last line (what is, is copied
    /// to the next chunk); a whole block before the first line.
    fn read_size(&self, missing: usize) -> usize {
        let (bytes, lines) = self.seen;
        if lines == 0 {
            return self.block;
        }
        let average = bytes / lines + 1;
        average
            .saturating_mul(missing.saturating_add(1))
            .clamp(self.min_read.min(self.block), self.block)
    }

    /// Replaces `chunk`'s contents with up to `chunk_lines` non-blank
    /// lines (fewer only at the end of the input), starting with `tail`,
    /// the last chunk's [`Chunk::tail`]; counts blank lines. A line longer
    /// than `max_line_bytes` is kept as its length only: its bytes are
    /// dropped as they arrive, so it never fills memory.
    fn fill(
        &mut self,
        input: &mut impl Read,
        tail: &[u8],
        chunk: &mut Chunk,
        report: &mut RunReport,
    ) -> io::Result<()> {
        let Chunk {
            text,
            len,
            tail: read_past,
            lines,
        } = chunk;
        lines.clear();
        *len = 0;
        append(text, len, tail);
        // The line being read starts at `start`; `searched` of its bytes
        // hold no newline; `dropped` of its bytes were over the limit.
        let (mut start, mut searched, mut dropped) = (0, 0, 0);
        while lines.len() < self.chunk_lines {
            if let Some(i) = memchr::memchr(b'\n', &text[start + searched..*len]) {
                let end = start + searched + i + 1;
                self.line(&text[start..end], start, dropped, lines, report);
                (start, searched, dropped) = (end, 0, 0);
                continue;
            }
            searched = *len - start;
            if dropped + searched > self.max_line_bytes {
                // Too long already: keep none of it.
                dropped += searched;
                (*len, searched) = (start, 0);
            }
            if self.eof {
                if *len > start || dropped > 0 {
                    self.line(&text[start..*len], start, dropped, lines, report);
                    start = *len;
                }
                break;
            }
            let want = self.read_size(self.chunk_lines - lines.len());
            let need = *len + want;
            if text.len() < need {
                // Grown by an eighth at least (not doubled): a chunk's
                // buffer stays near its lines' size.
                if text.capacity() < need {
                    text.reserve_exact((need - text.len()).max(*len / 8));
                }
                text.resize(need, 0);
            }
            let n = read_some(input, &mut text[*len..*len + want])?;
            *len += n;
            self.eof = n == 0;
        }
        *read_past = *len - start;
        *len = start;
        Ok(())
    }

    /// Records the line `bytes` (line end included) found at `at`, after
    /// `dropped` bytes of it that were not kept.
    fn line(
        &mut self,
        bytes: &[u8],
        at: usize,
        dropped: usize,
        lines: &mut Vec<Line>,
        report: &mut RunReport,
    ) {
        self.lineno += 1;
        let total = dropped + bytes.len();
        self.seen = (self.seen.0 + total, self.seen.1 + 1);
        let mut end = bytes.len();
        while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        if total > self.max_line_bytes {
            lines.push(Line {
                number: self.lineno,
                bytes: at..at,
                overlong: Some(total),
            });
        } else if is_blank(&bytes[..end]) {
            report.blank_lines += 1;
        } else {
            lines.push(Line {
                number: self.lineno,
                bytes: at..at + end,
                overlong: None,
            });
        }
    }
}

/// Appends `bytes` to the filled part `text[..len]` (the rest of `text`
/// stays initialised).
fn append(text: &mut Vec<u8>, len: &mut usize, bytes: &[u8]) {
    let end = *len + bytes.len();
    if text.len() < end {
        text.resize(end, 0);
    }
    text[*len..end].copy_from_slice(bytes);
    *len = end;
}

/// One `read` into `buf`, retried when interrupted.
fn read_some(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// A line of the current chunk: its number and bytes in the chunk buffer,
/// or its length when it was too long to keep.
struct Line {
    number: usize,
    bytes: std::ops::Range<usize>,
    overlong: Option<usize>,
}

/// Why a line of a JSON Lines input cannot be used as text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Longer than the reader's limit: skipped without being held in
    /// memory.
    #[error("the line is {bytes} bytes, over the limit of {limit}")]
    TooLong {
        /// Its length (newline included).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Not UTF-8.
    #[error("invalid UTF-8 at byte {valid_up_to} of the line")]
    NotUtf8 {
        /// Bytes before the first invalid one.
        valid_up_to: usize,
        /// The line with invalid bytes replaced by U+FFFD (for readers that
        /// accept that).
        lossy: String,
    },
}

/// Reads JSON Lines one line at a time, never holding more than `limit`
/// bytes of a line: the one home of the line limit for every JSON Lines
/// reader (tasks, completions, benchmark data, metrics). A longer line is
/// consumed and reported as [`LineError::TooLong`], so no line can exhaust
/// memory. A [`UTF8_BOM`] before the first line is skipped (one anywhere
/// else is text).
///
/// ```
/// use toolgym_reward::jsonl::{LineError, LineReader};
/// let mut r = LineReader::new(&b"\xEF\xBB\xBF{\"a\": 1}\r\n\n0123456789abcd\n"[..], 3 + 8 + 2);
/// assert_eq!(r.next_line().unwrap().unwrap(), (1, Ok("{\"a\": 1}")));
/// assert_eq!(r.next_line().unwrap().unwrap(), (2, Ok("")));
/// assert_eq!(r.next_line().unwrap().unwrap(), (3, Err(LineError::TooLong { bytes: 15, limit: 13 })));
/// assert!(r.next_line().unwrap().is_none());
/// ```
pub struct LineReader<R> {
    input: R,
    buf: Vec<u8>,
    line: usize,
    limit: usize,
}

impl<R: BufRead> LineReader<R> {
    /// A reader of `input` with lines of at most `limit` bytes (newline
    /// included; [`MAX_LINE_BYTES`] is the project's default).
    pub fn new(input: R, limit: usize) -> Self {
        Self {
            input,
            buf: Vec::new(),
            line: 0,
            limit,
        }
    }

    /// The next line: its 1-based number and its text without the line
    /// end (`\n` or `\r\n`), or why it is unusable; `None` at the end.
    /// Only an I/O error fails.
    #[allow(clippy::type_complexity)]
    pub fn next_line(&mut self) -> io::Result<Option<(usize, Result<&str, LineError>)>> {
        self.buf.clear();
        let (n, overlong) = read_line(&mut self.input, &mut self.buf, self.limit)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if overlong {
            return Ok(Some((
                self.line,
                Err(LineError::TooLong {
                    bytes: n,
                    limit: self.limit,
                }),
            )));
        }
        let mut end = self.buf.len();
        if end > 0 && self.buf[end - 1] == b'\n' {
            end -= 1;
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
        }
        let mut line = &self.buf[..end];
        if self.line == 1 {
            // A byte-order mark before the first line is not data.
            line = line.strip_prefix(UTF8_BOM).unwrap_or(line);
        }
        let text = std::str::from_utf8(line).map_err(|e| LineError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
            lossy: String::from_utf8_lossy(line).into_owned(),
        });
        Ok(Some((self.line, text)))
    }
}

/// Reads one line (newline included) into `text`, keeping at most `limit`
/// bytes: a longer line is consumed without being stored. Returns the
/// bytes consumed (0 at the end) and whether the line was too long.
fn read_line(
    input: &mut impl BufRead,
    text: &mut Vec<u8>,
    limit: usize,
) -> io::Result<(usize, bool)> {
    let start = text.len();
    let (mut total, mut overlong) = (0usize, false);
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (len, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !overlong && total + len > limit {
            overlong = true;
            text.truncate(start);
        }
        if !overlong {
            text.extend_from_slice(&buf[..len]);
        }
        total += len;
        input.consume(len);
        if done {
            break;
        }
    }
    Ok((total, overlong))
}

/// The fast path of [`score_jsonl`]: `None` when the line is not a plain
/// call record (the general reader then scores it, errors included).
fn fast_call_line<T: TruthForm>(
    line: usize,
    bytes: &[u8],
    utf8: Option<&str>,
    scratch: &mut Scratch<T>,
    score: impl Fn(&mut Plain<'_, T>) -> Verdict,
) -> Option<ScoredLine> {
    let text = match utf8 {
        Some(text) => text,
        None => std::str::from_utf8(bytes).ok()?,
    };
    let mut record = plain::read(text, scratch)?;
    let verdict = score(&mut record);
    Some(ScoredLine {
        id: record.id,
        line,
        verdict,
    })
}

/// A truth reader as [`score_jsonl_with`] takes it.
type TruthReader<'a, O> =
    dyn Fn(&Value, &mut Map<String, Value>) -> Result<O, RecordError> + Sync + 'a;

fn score_line<T: ?Sized, O: Borrow<T>>(
    rule: &dyn RewardRule<T>,
    truth: &TruthReader<'_, O>,
    line: usize,
    bytes: &[u8],
) -> ScoredLine {
    match Record::parse_with(bytes, truth) {
        Ok(r) => ScoredLine {
            id: r.id,
            line,
            verdict: rule.score(&r.completion, r.truth.borrow()),
        },
        Err((id, e)) => ScoredLine {
            id,
            line,
            verdict: Verdict::fail(Reason::InputError, e.to_string()),
        },
    }
}

/// One sub-chunk's output lines and each verdict's reward and reason.
type Scored = (Vec<u8>, Vec<(f64, Reason)>);

/// Scores and serialises the lines of a chunk, in order.
/// On one thread the tasks share `serial` (a worker's buffers, and the
/// last ground truth, carry from chunk to chunk); on a pool, buffers are
/// made per piece of work rayon splits off (`map_init`).
fn score_chunk<S, Sc: Default + Send>(
    score: &S,
    text: &[u8],
    lines: &[Line],
    options: JsonlOptions,
    serial: &mut Sc,
) -> io::Result<Vec<Scored>>
where
    S: Fn(usize, &[u8], Option<&str>, &mut Sc) -> ScoredLine + Sync,
{
    let task = |scratch: &mut Sc, sub: &[Line]| -> io::Result<Scored> {
        // Room for a verdict line of about a hundred bytes each.
        let mut bytes = Vec::with_capacity(sub.len() * 128);
        let mut verdicts = Vec::with_capacity(sub.len());
        // One UTF-8 check for the task's lines (the text between them is
        // line ends); a line is then a slice of it.
        let span = sub.first().map_or(0, |l| l.bytes.start)..sub.last().map_or(0, |l| l.bytes.end);
        let valid = simdutf8::basic::from_utf8(&text[span.clone()]).ok();
        for line in sub {
            let s = match line.overlong {
                None => {
                    let bytes = &text[line.bytes.clone()];
                    let (from, to) = (line.bytes.start - span.start, line.bytes.end - span.start);
                    let utf8 = valid.and_then(|v| v.get(from..to));
                    score(line.number, bytes, utf8, scratch)
                }
                Some(len) => ScoredLine {
                    id: Value::Null,
                    line: line.number,
                    verdict: Verdict::fail(
                        Reason::InputError,
                        format!(
                            "the line is {len} bytes, over the limit of {} (max_line_bytes)",
                            options.max_line_bytes
                        ),
                    ),
                },
            };
            s.write_json(&mut bytes);
            bytes.push(b'\n');
            verdicts.push((s.verdict.reward, s.verdict.reason));
        }
        Ok((bytes, verdicts))
    };
    #[cfg(feature = "rayon")]
    if parallel_pool(options.parallel) {
        use rayon::prelude::*;
        return lines
            .par_chunks(LINES_PER_TASK)
            .map_init(Sc::default, task)
            .collect();
    }
    lines
        .chunks(LINES_PER_TASK)
        .map(|sub| task(serial, sub))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule_by_name;
    use serde_json::json;

    /// The output line as `#[serde(flatten)]` writes it.
    #[derive(Serialize)]
    struct Flattened<'a> {
        id: &'a Value,
        line: usize,
        #[serde(flatten)]
        verdict: &'a Verdict,
    }

    #[test]
    fn output_lines_are_the_flattened_bytes() {
        let ids = [
            Value::Null,
            json!(7),
            json!(-1.5),
            json!("a\"é\n"),
            json!({"k": [1]}),
            json!(u64::MAX),
            json!(-3),
            json!(0),
        ];
        let verdicts = [
            Verdict::ok(),
            Verdict::fail(Reason::InputError, "bad \"line\"\u{1}\t\\"),
            Verdict::new(0.2, Reason::FormatError, ""),
            Verdict::new(f64::NAN, Reason::EnvError, "x"),
            Verdict::new(1e-300, Reason::Loop, "ü"),
            Verdict::new(-0.0, Reason::WrongArgs, "calls do not match (wrong_args)"),
            Verdict::new(0.8, Reason::Ok, "\u{7f}\u{2028}/"),
            Verdict::fail(Reason::JsonError, "x"),
        ];
        for (i, id) in ids.iter().enumerate() {
            for verdict in &verdicts {
                let s = ScoredLine {
                    id: id.clone(),
                    line: if i == 5 { usize::MAX } else { i * 1_000_003 },
                    verdict: verdict.clone(),
                };
                let flat = Flattened {
                    id: &s.id,
                    line: s.line,
                    verdict: &s.verdict,
                };
                let bytes = serde_json::to_vec(&flat).unwrap();
                assert_eq!(serde_json::to_vec(&s).unwrap(), bytes);
                let mut written = Vec::new();
                s.write_json(&mut written);
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(bytes).unwrap()
                );
            }
        }
    }

    #[test]
    fn openai_messages_and_transcripts_are_completions() {
        let input = concat!(
            r#"{"id": 1, "completion": {"role": "assistant", "reasoning_content": "r", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]}, "ground_truth": [{"name": "f", "arguments": {"x": 1}}]}"#,
            "\n",
            r#"{"id": 2, "completion": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>r</think><tool_call>[]</tool_call>"}], "ground_truth": []}"#,
            "\n",
            r#"{"id": 3, "completion": {"tool_calls": 5}, "ground_truth": []}"#,
            "\n",
            r#"[7, "<think>x</think><tool_call>[]</tool_call>", []]"#,
            "\n",
        );
        let mut out = Vec::new();
        let rule = rule_by_name("binary").unwrap();
        let report = score_jsonl(&*rule, input.as_bytes(), &mut out, Default::default()).unwrap();
        assert_eq!((report.summary.count, report.input_errors), (4, 2));
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["reason"], "ok");
        assert_eq!(lines[1]["reason"], "ok");
        assert_eq!(
            lines[2]["detail"],
            "bad completion: message field \"tool_calls\" must be a list"
        );
        // A record shaped as an array is not read as one (serde would).
        assert_eq!(lines[3]["detail"], "the record is not a JSON object");
    }

    #[test]
    fn one_thread_keeps_ground_truths_across_chunks_alike() {
        // Groups of lines sharing a ground truth (as text), replies that
        // repeat its calls' texts, reorder them, change one, or break;
        // a bad line between. Every chunk size on one thread gives the
        // same output, and each verdict is the rule's on the line alone.
        // (The first two are as long as each other: only their bytes tell
        // them apart.)
        let truths: [&[&str]; 3] = [
            &[r#"{"name": "g", "arguments": {"k": [1, 2.5]}}"#],
            &[r#"{"name": "g", "arguments": {"k": [1, 3.5]}}"#],
            &[
                r#"{"name": "f", "arguments": {"b": 1, "a": "x\u00e9"}}"#,
                r#"{"name": "g", "arguments": {}}"#,
            ],
        ];
        let changed = r#"{"name": "g", "arguments": {"k": [1, 2.5], "z": 0}}"#;
        let list = |calls: &[&str]| format!("[{}]", calls.join(", "));
        let mut input = String::new();
        let mut expected = Vec::new();
        let rule = rule_by_name("tool-n1").unwrap();
        for (t, calls) in truths.iter().cycle().take(8).enumerate() {
            let truth = list(calls);
            let reversed: Vec<&str> = calls.iter().rev().copied().collect();
            let mut other = calls.to_vec();
            other[0] = changed;
            for reply in [
                list(calls),
                list(&reversed),
                list(&other),
                truth[..20].to_string(),
            ] {
                let completion = format!("<think>r</think><tool_call>{reply}</tool_call>");
                let record = json!({"id": t, "completion": completion, "ground_truth": truth});
                input.push_str(&format!("{record}\n"));
                let truth_calls = Call::list_from_json(&truth).unwrap();
                expected.push(rule.score(&completion, &truth_calls));
            }
            input.push_str("{\"id\": 1, \"completion\": 5}\n");
            expected.push(Verdict::fail(Reason::InputError, ""));
        }
        let mut outputs = Vec::new();
        for chunk_lines in [1, 2, 3, 256] {
            let options = JsonlOptions {
                chunk_lines,
                parallel: false,
                ..Default::default()
            };
            let mut out = Vec::new();
            score_jsonl(&*rule, input.as_bytes(), &mut out, options).unwrap();
            outputs.push(out);
        }
        assert!(outputs.iter().all(|o| *o == outputs[0]));
        let lines: Vec<Value> = String::from_utf8(outputs.remove(0))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), expected.len());
        for (got, want) in lines.iter().zip(&expected) {
            assert_eq!(got["reward"], json!(want.reward), "{got}");
            assert_eq!(got["reason"], json!(want.reason.as_str()), "{got}");
        }
        for reason in [Reason::Ok, Reason::WrongArgs, Reason::JsonError] {
            assert!(expected.iter().any(|v| v.reason == reason), "{reason:?}");
        }
    }

    /// Yields its bytes in reads of the given sizes, in turn.
    struct Pieces<'a> {
        bytes: &'a [u8],
        sizes: &'a [usize],
        turn: usize,
    }

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.turn % self.sizes.len()];
            self.turn += 1;
            let n = size.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    proptest::proptest! {
        /// The block reader finds the lines [`LineReader`] finds (blank
        /// ones counted, long ones reported by length), whatever the read
        /// sizes, block and smallest read sizes, chunk size and line limit.
        #[test]
        fn chunks_hold_the_lines_a_line_reader_reads(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "{}", "x", "\n", "\r\n", "\r", " ", "\t", "é", "0123456789abcdef",
            ]), 0..60),
            sizes in proptest::collection::vec(1usize..40, 1..5),
            block in 1usize..50,
            min_read in 1usize..50,
            chunk_lines in 1usize..5,
            limit in 1usize..40,
        ) {
            let input = parts.concat();
            let mut expected = Vec::new();
            let mut blank = 0;
            let mut lines = LineReader::new(input.as_bytes(), limit);
            while let Some((n, line)) = lines.next_line().unwrap() {
                match line {
                    Ok(text) if is_blank(text.as_bytes()) => blank += 1,
                    Ok(text) => expected.push((n, Ok(text.trim_end_matches('\r').to_string()))),
                    Err(LineError::TooLong { bytes, .. }) => expected.push((n, Err(bytes))),
                    Err(e) => panic!("{e}"),
                }
            }
            let options = JsonlOptions { chunk_lines, max_line_bytes: limit, ..Default::default() };
            let mut reader = ChunkReader { block, min_read, ..ChunkReader::new(&options) };
            let mut input = Pieces { bytes: input.as_bytes(), sizes: &sizes, turn: 0 };
            let (mut got, mut report) = (Vec::new(), RunReport::default());
            // Two chunks in turn, each starting with the other's tail.
            let (mut chunk, mut last) = (Chunk::default(), Chunk::default());
            loop {
                reader.fill(&mut input, last.tail(), &mut chunk, &mut report).unwrap();
                std::mem::swap(&mut chunk, &mut last);
                let chunk = &last;
                if chunk.lines.is_empty() {
                    break;
                }
                proptest::prop_assert!(chunk.lines.len() <= chunk_lines);
                for l in &chunk.lines {
                    let text = &chunk.text[..chunk.len][l.bytes.clone()];
                    got.push((l.number, match l.overlong {
                        Some(bytes) => Err(bytes),
                        None => Ok(String::from_utf8(text.to_vec()).unwrap()),
                    }));
                }
            }
            proptest::prop_assert_eq!(got, expected);
            proptest::prop_assert_eq!(report.blank_lines, blank);
        }
    }

    #[test]
    fn a_byte_order_mark_inside_and_a_lone_surrogate_are_named() {
        let input =
            "{\"id\": 1, \"completion\": \"x\", \"ground_truth\": []}\n\u{feff}{\"id\": 2, \
                     \"completion\": \"x\", \"ground_truth\": []}\n{\"id\": 3, \"completion\": \
                     \"a\\ud83d\", \"ground_truth\": []}\n";
        let mut out = Vec::new();
        let rule = rule_by_name("binary").unwrap();
        score_jsonl(&*rule, input.as_bytes(), &mut out, Default::default()).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let detail = |i: usize| lines[i]["detail"].as_str().unwrap().to_string();
        assert!(detail(1).contains("byte-order mark"), "{}", detail(1));
        assert!(detail(2).contains("lone UTF-16 surrogate"), "{}", detail(2));
    }

    /// An id written as an integer that would be echoed as another number
    /// (past 64 bits, -0) is refused by name; floats and 64-bit integers
    /// are echoed as before.
    #[test]
    fn an_integer_id_a_float_would_change_is_refused() {
        let rec =
            |id: &str| format!("{{\"id\": {id}, \"completion\": \"x\", \"ground_truth\": []}}\n");
        let ids = [
            ("12345678901234567890123", true),
            ("12345678901234567890124", true),
            ("-0", true),
            ("-9223372036854775809", true),
            ("18446744073709551615", false),
            // Repeated: the last one counts, as in the record read.
            ("5, \"id\": 12345678901234567890123", true),
            ("12345678901234567890123, \"id\": 5", false),
            ("1e30", false),
            ("-1.5", false),
            ("7", false),
        ];
        let input: String = ids.iter().map(|(id, _)| rec(id)).collect();
        let rule = rule_by_name("binary").unwrap();
        for parallel in [false, true] {
            let mut out = Vec::new();
            let options = JsonlOptions {
                parallel,
                ..Default::default()
            };
            score_jsonl(&*rule, input.as_bytes(), &mut out, options).unwrap();
            let lines: Vec<Value> = String::from_utf8(out)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            for (line, (id, big)) in lines.iter().zip(ids) {
                let refused = line["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("write the id as a string"));
                assert_eq!(refused, big, "{id}: {line}");
                let last = id.rsplit(' ').next().unwrap(); // the id that counts
                if big {
                    assert_eq!(line["reason"], "input_error");
                    assert!(line["detail"].as_str().unwrap().contains(last), "{line}");
                } else {
                    assert_eq!(
                        line["id"].to_string(),
                        serde_json::from_str::<Value>(last).unwrap().to_string()
                    );
                }
            }
        }
    }

    #[test]
    fn only_json_whitespace_makes_a_line_blank() {
        let ok = r#"{"id": 1, "completion": "<think>r</think><tool_call>[]</tool_call>", "ground_truth": []}"#;
        let input = format!("{ok}\n \t\r\n\n\x0c\n\u{a0}\n{ok}\n");
        let mut out = Vec::new();
        let rule = rule_by_name("tool-n1").unwrap();
        let report = score_jsonl(&*rule, input.as_bytes(), &mut out, Default::default()).unwrap();
        assert_eq!(
            (
                report.summary.count,
                report.input_errors,
                report.blank_lines
            ),
            (4, 2, 2)
        );
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let numbers: Vec<&Value> = lines.iter().map(|l| &l["line"]).collect();
        assert_eq!(numbers, [1, 4, 5, 6]);
        assert_eq!(lines[1]["reason"], "input_error");
        assert_eq!(lines[2]["reason"], "input_error");
    }
}
