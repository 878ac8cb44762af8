//! Scoring JSON Lines files: one record per line in, one verdict per line
//! out, in the same order. A bad line becomes an `input_error` verdict and
//! the run goes on; nothing is dropped.
//!
//! Input line: `{"id"?: any, "completion": string, "ground_truth": [calls]}`
//! (`ground_truth` may also be a JSON string holding the list, as in xLAM).
//! Output line: `{"id", "line", "reward", "reason", "detail"?}`.

use crate::{Call, Reason, RewardRule, Summary, Verdict};
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::{self, BufRead, Write};

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
    /// `ground_truth` is not a list of calls.
    #[error("bad ground_truth: {0}")]
    GroundTruth(#[from] crate::CallShapeError),
}

impl ScoreRecord {
    /// Parses one line. On error, also returns the `id` if it could be read.
    pub fn parse(line: &[u8]) -> Result<ScoreRecord, (Value, RecordError)> {
        let text = std::str::from_utf8(line)
            .map_err(|e| (Value::Null, RecordError::InvalidUtf8(e.valid_up_to())))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|e| (Value::Null, RecordError::Json(e.to_string())))?;
        let Value::Object(mut obj) = value else {
            return Err((Value::Null, RecordError::NotObject));
        };
        let id = obj.remove("id").unwrap_or(Value::Null);
        let fail = |e| Err((id.clone(), e));
        let completion = match obj.remove("completion") {
            Some(Value::String(s)) => s,
            Some(_) => {
                return fail(RecordError::WrongType {
                    field: "completion",
                    expected: "a string",
                })
            }
            None => return fail(RecordError::MissingField("completion")),
        };
        let ground_truth = match obj.remove("ground_truth") {
            Some(v) => match Call::list_from_value(v) {
                Ok(calls) => calls,
                Err(e) => return fail(RecordError::GroundTruth(e)),
            },
            None => return fail(RecordError::MissingField("ground_truth")),
        };
        Ok(ScoreRecord {
            id,
            completion,
            ground_truth,
            extra: obj,
        })
    }
}

/// One output line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoredLine {
    /// The record's id (null when absent or unreadable).
    pub id: Value,
    /// 1-based line number in the input.
    pub line: usize,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
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
    /// Lines scored per parallel batch (bounds memory on huge files).
    pub chunk_lines: usize,
    /// Score in parallel on rayon's current pool (needs the `rayon` feature;
    /// ignored without it).
    pub parallel: bool,
}

impl Default for JsonlOptions {
    fn default() -> Self {
        Self {
            chunk_lines: 4096,
            parallel: true,
        }
    }
}

/// Scores every line of `input` with `rule`, writing one JSON line per
/// non-blank input line to `output`, in order.
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
    mut input: impl BufRead,
    mut output: impl Write,
    options: JsonlOptions,
) -> io::Result<RunReport> {
    let mut report = RunReport::default();
    let mut lineno = 0usize;
    let mut chunk: Vec<(usize, Vec<u8>)> = Vec::with_capacity(options.chunk_lines);
    loop {
        let mut buf = Vec::new();
        let n = input.read_until(b'\n', &mut buf)?;
        if n > 0 {
            lineno += 1;
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                report.blank_lines += 1;
            } else {
                chunk.push((lineno, buf));
            }
        }
        if chunk.len() >= options.chunk_lines.max(1) || (n == 0 && !chunk.is_empty()) {
            let scored = score_chunk(rule, &chunk, options.parallel);
            for s in &scored {
                serde_json::to_writer(&mut output, s)?;
                output.write_all(b"\n")?;
                if s.verdict.reason == Reason::InputError {
                    report.input_errors += 1;
                }
                report.summary.add(&s.verdict);
            }
            chunk.clear();
        }
        if n == 0 {
            break;
        }
    }
    output.flush()?;
    Ok(report)
}

fn score_line(rule: &dyn RewardRule<[Call]>, line: usize, bytes: &[u8]) -> ScoredLine {
    match ScoreRecord::parse(bytes) {
        Ok(r) => ScoredLine {
            id: r.id,
            line,
            verdict: rule.score(&r.completion, &r.ground_truth),
        },
        Err((id, e)) => ScoredLine {
            id,
            line,
            verdict: Verdict::fail(Reason::InputError, e.to_string()),
        },
    }
}

fn score_chunk(
    rule: &dyn RewardRule<[Call]>,
    chunk: &[(usize, Vec<u8>)],
    parallel: bool,
) -> Vec<ScoredLine> {
    #[cfg(feature = "rayon")]
    if parallel {
        use rayon::prelude::*;
        return chunk
            .par_iter()
            .map(|(n, b)| score_line(rule, *n, b))
            .collect();
    }
    let _ = parallel;
    chunk.iter().map(|(n, b)| score_line(rule, *n, b)).collect()
}
