//! Public tool-calling datasets as tasks: xLAM function-calling-60k and
//! ToolACE for training ([`xlam`], [`toolace`], behind the
//! [`sources::TrainingSource`] trait), the benchmarks with their official
//! semantics — BFCL ([`bfcl`], [`bfcl_eval`]), ACEBench ([`acebench`]) and
//! API-Bank ([`apibank`], whose 49 APIs are also executable tools) — with
//! what they share ([`completions`], [`reply_env`]), and the Python call
//! syntax they need ([`pycall`]).
//!
//! Converters never panic and never drop anything silently: a record or a
//! step that cannot become a task yields a [`DropReason`] and a detail,
//! which [`crate::prepare()`] counts and writes out.

pub mod acebench;
pub mod apibank;
pub mod bfcl;
pub mod bfcl_eval;
pub mod completions;
pub mod pycall;
pub mod reply_env;
pub mod sources;
pub mod toolace;
pub mod xlam;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use toolgym_reward::jsonl::{is_blank, LineReader, MAX_LINE_BYTES, UTF8_BOM};
use toolgym_reward::Call;

/// Why a record (or one step of it) did not become a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The record is not an object or lacks a required field (or has it
    /// with the wrong type), is not valid JSON, or holds an integer past
    /// 64 bits (which would be read as a float).
    BadRecord,
    /// The candidate tools cannot be read (invalid JSON, a spec without a
    /// name, unreadable parameters, an integer past 64 bits in their text).
    BadTools,
    /// The record offers no candidate tool.
    NoTools,
    /// The ground-truth answers cannot be read (xLAM `answers`).
    BadAnswers,
    /// An assistant call turn is not valid call syntax.
    CallParseError,
    /// A call names a tool that is not among the candidates.
    UnknownTool,
    /// An assistant call turn holds an empty call list.
    EmptyCallList,
    /// The conversation is unusable (an unknown role, a turn without text,
    /// a call before any user turn).
    BadConversation,
    /// A dialogue none of whose assistant turns is a tool call (text
    /// turns only): it gives no task.
    NoCall,
    /// The task made of it would not read back from a task file (its
    /// values nest deeper than the task reader's limit, say): dropped
    /// here rather than written for training to refuse.
    Unreadable,
}

impl DropReason {
    /// Every reason, in a fixed order (for tables).
    pub const ALL: [DropReason; 10] = [
        DropReason::BadRecord,
        DropReason::BadTools,
        DropReason::NoTools,
        DropReason::BadAnswers,
        DropReason::CallParseError,
        DropReason::UnknownTool,
        DropReason::EmptyCallList,
        DropReason::BadConversation,
        DropReason::NoCall,
        DropReason::Unreadable,
    ];

    /// The snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::BadRecord => "bad_record",
            DropReason::BadTools => "bad_tools",
            DropReason::NoTools => "no_tools",
            DropReason::BadAnswers => "bad_answers",
            DropReason::CallParseError => "call_parse_error",
            DropReason::UnknownTool => "unknown_tool",
            DropReason::EmptyCallList => "empty_call_list",
            DropReason::BadConversation => "bad_conversation",
            DropReason::NoCall => "no_call",
            DropReason::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that was dropped, and where it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// The dataset (`xlam`, `toolace`, …).
    pub source: String,
    /// 0-based index of the record in its file: its element index in a
    /// JSON list, its line number minus 1 in JSON Lines (blank lines
    /// counted, so `record #2` of a report is line 3).
    pub index: usize,
    /// The record's own id, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// For a dropped step of a conversation: the 0-based turn index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<usize>,
    /// Why.
    pub reason: DropReason,
    /// Details (the parser's message, the unknown tool's name, …).
    pub detail: String,
    /// The file it is in (set by [`crate::prepare()`], which reads several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The 1-based line the record starts on (set by the loaders; where a
    /// fault between records of a list was found, that line): a record of
    /// a JSON list is found by its index alone otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// A dataset file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_DATASET_BYTES`].
    #[error("{path}: {bytes} bytes, over the limit of {limit} for a dataset file (split it)")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (at least; standard input is read up to the limit).
        bytes: u64,
        /// [`MAX_DATASET_BYTES`].
        limit: u64,
    },
    /// The file is not a JSON list (or JSON Lines) of records.
    #[error("{path}: not a JSON list of records: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's message (with line and column).
        message: String,
    },
    /// A fault in a JSON list after which its records cannot be told
    /// apart (an unclosed string in a list written on one line, records
    /// in text after the list): dropping the rest as one record would
    /// lose records uncounted, so the file is refused.
    #[error("{path}: {message}")]
    ListUnreadable {
        /// The file.
        path: PathBuf,
        /// Which record or line, what is wrong, and what to do.
        message: String,
    },
}

/// Why [`read_strict_lines`] stopped.
pub(crate) enum StrictLinesError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// A line is unusable: not UTF-8, over [`MAX_LINE_BYTES`], or refused by
    /// the parser.
    Line {
        /// 1-based line number.
        line: usize,
        /// Why.
        message: String,
    },
}

/// Every non-blank line of a JSON Lines file, parsed by `parse`, with its
/// number; the first unusable line stops the read (for benchmark data,
/// where a case left out would make the figures incomparable). Lines are
/// read through [`LineReader`], so none is held over [`MAX_LINE_BYTES`].
pub(crate) fn read_strict_lines<T>(
    path: &Path,
    mut parse: impl FnMut(&str) -> Result<T, String>,
) -> Result<Vec<(usize, T)>, StrictLinesError> {
    let file = std::fs::File::open(path).map_err(StrictLinesError::Io)?;
    let mut reader = LineReader::new(std::io::BufReader::new(file), MAX_LINE_BYTES);
    let mut out = Vec::new();
    while let Some((line, text)) = reader.next_line().map_err(StrictLinesError::Io)? {
        let bad = |message: String| StrictLinesError::Line { line, message };
        let text = text.map_err(|e| bad(e.to_string()))?;
        if is_blank(text.as_bytes()) {
            continue;
        }
        out.push((line, parse(text).map_err(bad)?));
    }
    Ok(out)
}

/// The largest dataset file [`for_each_record`] reads (8 GiB): the file is
/// held in memory (a JSON list needs it), so a larger one is refused with
/// [`DataError::TooLarge`] instead of exhausting memory.
pub const MAX_DATASET_BYTES: u64 = 8 << 30;

/// Calls `f(index, record)` for every record of a dataset file (`-`:
/// standard input): a JSON list (each element read on its own: one that is
/// not valid JSON, `NaN` or a lone surrogate say, comes as `Err(message)`
/// naming its index and line, and the others are read) or JSON Lines (a
/// line that is not JSON, not UTF-8, or longer than [`MAX_LINE_BYTES`],
/// comes as `Err(message)`; blank lines are skipped but keep their index).
/// `f` gets each record's index, the line it starts on (where a fault
/// between records is found, that line) and the record.
/// A file whose first line is a list followed by more lines is JSON Lines.
/// Returns the number of records. A file over [`MAX_DATASET_BYTES`], or one
/// JSON object over several lines (not records), is an error; so is a
/// JSON list with a fault after which its records cannot be told apart
/// ([`DataError::ListUnreadable`]; `f` has had the records before it).
pub fn for_each_record(
    path: &Path,
    mut f: impl FnMut(usize, usize, Result<Value, String>),
) -> Result<usize, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |bytes| DataError::TooLarge {
        path: path.to_path_buf(),
        bytes,
        limit: MAX_DATASET_BYTES,
    };
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        let stdin = std::io::stdin().lock();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(stdin, MAX_DATASET_BYTES + 1),
            &mut bytes,
        )
        .map_err(io_err)?;
    } else {
        let file = std::fs::File::open(path).map_err(io_err)?;
        let size = file.metadata().map_err(io_err)?.len();
        if size > MAX_DATASET_BYTES {
            return Err(too_large(size));
        }
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_DATASET_BYTES + 1),
            &mut bytes,
        )
        .map_err(io_err)?;
    }
    if bytes.len() as u64 > MAX_DATASET_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    // A UTF-8 byte-order mark (some editors and PowerShell write one) is
    // not JSON: skipped.
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(&bytes);
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if let Some(start) = first {
        let json_err = |message: String| DataError::Json {
            path: path.to_path_buf(),
            message,
        };
        let unreadable = |message: String| DataError::ListUnreadable {
            path: path.to_path_buf(),
            message,
        };
        match scan_value(bytes, start) {
            // A JSON list (not JSON Lines whose first record is a list):
            // each element read on its own, so one bad record is dropped
            // and counted, not the whole file.
            Scanned::Ends(end)
                if bytes[start] == b'['
                    && (is_blank(&bytes[end..])
                        || bytes[start..end].contains(&b'\n')
                        || next_is_list(&bytes[end..])) =>
            {
                return for_each_element(bytes, start, &mut f).map_err(unreadable);
            }
            Scanned::Open if bytes[start] == b'[' && !json_lines_follow(bytes, start) => {
                return for_each_element(bytes, start, &mut f).map_err(unreadable);
            }
            // One value over several lines: a pretty-printed object, not
            // records.
            Scanned::Ends(end)
                if bytes[start] == b'{'
                    && is_blank(&bytes[end..])
                    && bytes[start..end].contains(&b'\n')
                    && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes[start..end])
                        .is_ok() =>
            {
                return Err(json_err(
                    "the file is one JSON object over several lines, not records: give a JSON \
                     list of records or JSON Lines (one record per line)"
                        .into(),
                ));
            }
            _ => {}
        }
    }
    let mut reader = LineReader::new(bytes, MAX_LINE_BYTES);
    let mut n = 0;
    while let Some((line, text)) = reader.next_line().map_err(io_err)? {
        let i = line - 1;
        let text = match text {
            Ok(t) => t,
            // Not UTF-8 (the record would be changed to be read): dropped
            // and counted, like any line that is not a record.
            Err(e) => {
                n += 1;
                f(i, line, Err(format!("line {line}: {e}")));
                continue;
            }
        };
        if is_blank(text.as_bytes()) {
            continue;
        }
        n += 1;
        f(
            i,
            line,
            read_record(text.as_bytes()).map_err(|e| format!("line {line}: {e}")),
        );
    }
    Ok(n)
}

/// Whether the first thing in `rest` but whitespace opens a list: a list
/// written after a list on one line (`json.dump` without an indent, then
/// another: `[…][…]` or `[…]\n[…]`).
fn next_is_list(rest: &[u8]) -> bool {
    next_list(rest).is_some()
}

/// Where in `rest` a list opens (`[`) after whitespace, and a byte-order
/// mark before it (a file of its own: `cat a.json b.json`), if one does.
fn next_list(rest: &[u8]) -> Option<usize> {
    let mut at = after_space(rest)?;
    if rest[at..].starts_with(UTF8_BOM) {
        at += UTF8_BOM.len();
        at += after_space(&rest[at..])?;
    }
    (rest[at] == b'[').then_some(at)
}

/// The position of the first byte of `rest` that is not JSON whitespace.
fn after_space(rest: &[u8]) -> Option<usize> {
    rest.iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Whether the lines after the one holding `bytes[start]` are JSON Lines:
/// the next two non-blank lines are each a whole JSON object. A list's
/// records are separated by commas, so two such lines in a row are not
/// records of a list, and a first line that opens a list without closing
/// it is then one broken record of JSON Lines, not the start of a list.
fn json_lines_follow(bytes: &[u8], start: usize) -> bool {
    let Some(end) = bytes[start..].iter().position(|&b| b == b'\n') else {
        return false;
    };
    let whole_object = |line: &[u8]| {
        line.first() == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
    };
    let mut lines = bytes[start + end + 1..]
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|l| !l.is_empty());
    matches!((lines.next(), lines.next()), (Some(a), Some(b)) if whole_object(a) && whole_object(b))
}

/// How far a JSON value starting at some byte goes.
enum Scanned {
    /// It ends just before this byte (its brackets balance).
    Ends(usize),
    /// The text ends inside it.
    Open,
}

/// Where the JSON value starting at `bytes[start]` ends, by its brackets
/// and strings alone (not validated: a parser reads it afterwards).
fn scan_value(bytes: &[u8], start: usize) -> Scanned {
    match scan_until(bytes, start, bytes.len(), false) {
        ScanStop::Value(scanned) => scanned,
        ScanStop::LineEndInString => unreachable!("not asked to stop there"),
    }
}

/// How a scan of `bytes[start..end]` stopped.
enum ScanStop {
    /// As [`scan_value`] over those bytes, except that a value not closed
    /// before an `end` short of the text's is [`Scanned::Open`].
    Value(Scanned),
    /// A line ends inside a string: no JSON value holds that.
    LineEndInString,
}

/// [`scan_value`] of `bytes[start..end]`, stopping at a line end inside a
/// string when `stop_at_line_end_in_string`.
fn scan_until(
    bytes: &[u8],
    start: usize,
    end: usize,
    stop_at_line_end_in_string: bool,
) -> ScanStop {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes[..end].iter().enumerate().skip(start) {
        #[cfg(test)]
        tests::SCANNED.with(|n| n.set(n.get() + 1));
        if in_string {
            match b {
                b'\n' if stop_at_line_end_in_string => return ScanStop::LineEndInString,
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        let ends = match b {
            b'"' => {
                in_string = true;
                None
            }
            b'[' | b'{' => {
                depth += 1;
                None
            }
            // It closes a list around this value.
            b']' | b'}' if depth == 0 => Some(i),
            b']' | b'}' => {
                depth -= 1;
                (depth == 0).then_some(i + 1)
            }
            _ if depth == 0 && i > start && (b.is_ascii_whitespace() || b == b',') => Some(i),
            _ => None,
        };
        if let Some(end) = ends {
            return ScanStop::Value(Scanned::Ends(end));
        }
    }
    ScanStop::Value(if end == bytes.len() && depth == 0 && !in_string {
        Scanned::Ends(end)
    } else {
        Scanned::Open
    })
}

/// How far the record at `bytes[at]` of a list goes ([`scan_value`]),
/// without scanning the rest of the file for a record that cannot be
/// JSON: where a line ends inside one of its strings and a next record
/// start can be told apart ([`next_record_start`]), the record is
/// [`Record::Broken`] unless it closes before that start. Scanning on to
/// where the quotes and brackets happen to balance (often the file's end,
/// for an unescaped quote) gave the same outcome, the record dropped and
/// the list read on from that start, at the cost of the rest of the file
/// per broken record.
fn scan_record(bytes: &[u8], at: usize, one_per_line: bool) -> Record {
    let next = || next_record_start(bytes, at, one_per_line);
    match scan_until(bytes, at, bytes.len(), true) {
        ScanStop::Value(Scanned::Ends(end)) => return Record::Ends(end),
        ScanStop::Value(Scanned::Open) => return Record::Broken(next()),
        ScanStop::LineEndInString => {}
    }
    let Some(next) = next() else {
        return match scan_value(bytes, at) {
            Scanned::Ends(end) => Record::Ends(end),
            Scanned::Open => Record::Broken(None),
        };
    };
    match scan_until(bytes, at, next, false) {
        ScanStop::Value(Scanned::Ends(end)) => Record::Ends(end),
        _ => Record::Broken(Some(next)),
    }
}

/// How far a list's record goes ([`scan_record`]).
enum Record {
    /// It ends just before this byte (its brackets balance).
    Ends(usize),
    /// It does not close (the text ends inside it), or cannot be JSON and
    /// does not close before the next record's start: that start, where
    /// one can be told apart ([`next_record_start`]).
    Broken(Option<usize>),
}

/// Where reading a list stopped.
enum ListEnd {
    /// The file's records are read: this many in all.
    Count(usize),
    /// A fault after which the list's records cannot be told apart: the
    /// file is refused with this message (records may follow it).
    Unreadable(String),
    /// The list closed and another starts at this byte (`[`): lists
    /// written one after another (`cat a.json b.json`), read on with the
    /// records numbered on from `index`.
    Another { open: usize, index: usize },
}

/// How a list of `index` records (counted from the file's first list)
/// that closes at `bytes[close]` (`]`) ends: the file's end, or another
/// list that starts after it ([`ListEnd::Another`], a byte-order mark
/// before it passed over). Other text after the bracket (junk, a stray
/// `]`) is one more record, dropped and named by the line it starts on:
/// nothing after the list is read, and that is said; text that may hold
/// records (a `{`) refuses the file ([`ListEnd::Unreadable`]).
fn close_list(
    bytes: &[u8],
    close: usize,
    index: usize,
    line_of: &mut impl FnMut(usize) -> usize,
    f: &mut impl FnMut(usize, usize, Result<Value, String>),
) -> ListEnd {
    let after = close + 1;
    if let Some(open) = next_list(&bytes[after..]) {
        return ListEnd::Another {
            open: after + open,
            index,
        };
    }
    let Some(junk) = after_space(&bytes[after..]) else {
        return ListEnd::Count(index);
    };
    // Line numbers are asked for in order (`line_of` counts on).
    let closed = line_of(close);
    let here = line_of(after + junk);
    if bytes[after + junk..].contains(&b'{') {
        // Records may be in it (JSON Lines after a list): not one record
        // dropped, but a file to fix.
        return ListEnd::Unreadable(format!(
            "line {here}: text after the end of the list (closed on line {closed}), which may \
             hold records (it has a `{{`): fix the file (one list, lists one after another, \
             or JSON Lines); nothing was read from it"
        ));
    }
    f(
        index,
        here,
        Err(format!(
            "line {here}: text after the end of the list (closed on line {closed}); it is not \
             read"
        )),
    );
    ListEnd::Count(index + 1)
}

/// Calls `f` for each element of the JSON list at `bytes[open]` (`[`),
/// each parsed on its own: an element that is not valid JSON (`NaN`, a
/// lone surrogate, a cut-off end) comes as `Err` naming its index and line,
/// and the others are read. Returns the number of elements.
///
/// A fault between records does not take the rest of the file with it: a
/// record written without the `,` before it is dropped (named) and the
/// list read on after it; a record whose brackets or strings do not close
/// (an unescaped quote) is dropped and, in a list written one record per
/// indented block (`json.dump(indent=…)`) or one per line, the list is
/// read on from the next record's first line ([`next_record_start`]).
/// Where no next record can be told apart (a list on one line, or
/// `indent=0`) and text follows the broken record, the file is refused
/// (`Err`, naming the record and its line): the records in that text
/// would be lost uncounted. Text after the list that may hold records (a
/// `{`) is refused too; other text there (a stray bracket) is one
/// dropped record.
///
/// Lists written one after another (`cat a.json b.json`, a byte-order
/// mark before one included) are read as one, their records numbered on.
fn for_each_element(
    bytes: &[u8],
    mut open: usize,
    f: &mut impl FnMut(usize, usize, Result<Value, String>),
) -> Result<usize, String> {
    let mut first = 0;
    // Line numbers counted on from the last position asked for, across
    // the lists (positions only move forward).
    let mut counted = (0, 1);
    loop {
        match read_list(bytes, open, first, &mut counted, f) {
            ListEnd::Count(n) => return Ok(n),
            ListEnd::Unreadable(message) => return Err(message),
            ListEnd::Another { open: next, index } => (open, first) = (next, index),
        }
    }
}

/// [`for_each_element`] of one list, its records numbered from `first`;
/// `counted` is how far lines were counted (a byte position and the line
/// it is on), carried from list to list.
fn read_list(
    bytes: &[u8],
    open: usize,
    first: usize,
    counted: &mut (usize, usize),
    f: &mut impl FnMut(usize, usize, Result<Value, String>),
) -> ListEnd {
    let mut at = open + 1;
    let (counted_to, lines) = counted;
    let mut line_of = |at: usize| {
        if at < *counted_to {
            (*counted_to, *lines) = (0, 1);
        }
        *lines += bytes[*counted_to..at]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        *counted_to = at;
        *lines
    };
    let skip_space = |at: &mut usize| {
        while bytes.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    };
    skip_space(&mut at);
    if bytes.get(at) == Some(&b']') {
        return close_list(bytes, at, first, &mut line_of, f);
    }
    let mut index = first;
    // Whether the last record read was written on one line (a list of
    // JSON Lines-like rows): then a broken record at a line start is
    // followed by the next line that starts as records do.
    let mut one_per_line = false;
    loop {
        skip_space(&mut at);
        let start_line = line_of(at);
        let end = match bytes.get(at) {
            // A comma before the closing bracket (as JavaScript and Python
            // allow): no record is missing, none is counted.
            Some(b']') if index > first => return close_list(bytes, at, index, &mut line_of, f),
            None => {
                f(index, start_line, Err(format!("record {index} (line {start_line}): the list ends here, unclosed (a cut-off file?)")));
                return ListEnd::Count(index + 1);
            }
            Some(b',' | b']') => at,
            Some(_) => match scan_record(bytes, at, one_per_line) {
                Record::Ends(end) => end,
                // No later record start to read on from.
                Record::Broken(None) => {
                    return rest_of_broken_record(bytes, at, index, start_line, f)
                }
                Record::Broken(Some(next)) => {
                    f(
                        index,
                        start_line,
                        Err(format!(
                        "record {index} (line {start_line}): a string, list or object in it is \
                         not closed (an unescaped quote?); the list is read on from line {}",
                        line_of(next)
                    )),
                    );
                    (index, at) = (index + 1, next);
                    continue;
                }
            },
        };
        let element = &bytes[at..end];
        let parsed = if element.is_empty() {
            Err(format!(
                "record {index} (line {start_line}): no value before the comma"
            ))
        } else {
            read_record(element).map_err(|e| format!("record {index} (line {start_line}): {e}"))
        };
        if let Err(e) = &parsed {
            // An unclosed string makes the scan end past the next records.
            if let Some(next) = next_record_start(bytes, at, one_per_line).filter(|&n| n < end) {
                f(
                    index,
                    start_line,
                    Err(format!(
                        "{e}; the list is read on from line {} (an unescaped quote?)",
                        line_of(next)
                    )),
                );
                (index, at) = (index + 1, next);
                continue;
            }
        }
        if parsed.is_ok() {
            one_per_line = !element.contains(&b'\n');
        }
        f(index, start_line, parsed);
        index += 1;
        let record = at;
        at = end;
        skip_space(&mut at);
        match bytes.get(at) {
            Some(b',') => at += 1,
            Some(b']') => return close_list(bytes, at, index, &mut line_of, f),
            None => {
                let here = line_of(at);
                f(
                    index,
                    here,
                    Err(format!(
                        "line {here}: the list is not closed (a cut-off file?)"
                    )),
                );
                return ListEnd::Count(index + 1);
            }
            Some(b'{' | b'[') => {
                // The next record, written without the `,` before it:
                // dropped, named; the list goes on after it.
                let here = line_of(at);
                let next_end = match scan_value(bytes, at) {
                    Scanned::Ends(e) => e,
                    // Itself broken: what follows it, as for any record
                    // that does not close.
                    Scanned::Open => return rest_of_broken_record(bytes, at, index, here, f),
                };
                f(
                    index,
                    here,
                    Err(format!(
                        "record {index} (line {here}): no `,` between it and the record \
                         before (not read)"
                    )),
                );
                (index, at) = (index + 1, next_end);
                skip_space(&mut at);
                match bytes.get(at) {
                    Some(b',') => at += 1,
                    Some(b']') => return close_list(bytes, at, index, &mut line_of, f),
                    _ => {}
                }
            }
            Some(_) => match next_record_start(bytes, record, one_per_line).filter(|&n| n > at) {
                Some(next) => {
                    let here = line_of(at);
                    f(
                        index,
                        here,
                        Err(format!(
                            "line {here}: expected `,` or `]` after record {}; the list is read \
                             on from line {}",
                            index - 1,
                            line_of(next)
                        )),
                    );
                    (index, at) = (index + 1, next);
                }
                None => {
                    // Something after a value other than `,` or `]`, and
                    // no next record to read on from: dropped as one when
                    // no bracket follows it (`}}]`: no record can), refused
                    // when one does.
                    let here = line_of(at);
                    let what = format!(
                        "line {here}: expected `,` or `]` after record {}",
                        index - 1
                    );
                    if !bytes[at..].iter().any(|b| matches!(b, b'{' | b'[')) {
                        f(
                            index,
                            here,
                            Err(format!("{what} (the rest of the list is not read)")),
                        );
                        return ListEnd::Count(index + 1);
                    }
                    return ListEnd::Unreadable(format!(
                        "{what}, and no later record start can be told apart: fix the file; \
                         nothing was read from it"
                    ));
                }
            },
        }
    }
}

/// What a record at `bytes[at]` that does not close costs when no next
/// record start can be told apart (`start_line`: its line): a cut-off
/// file, or a list's last record, is that record alone, dropped and
/// named; where records may follow it, the file is refused
/// ([`ListEnd::Unreadable`]), naming the record and how much follows.
fn rest_of_broken_record(
    bytes: &[u8],
    at: usize,
    index: usize,
    start_line: usize,
    f: &mut impl FnMut(usize, usize, Result<Value, String>),
) -> ListEnd {
    // A list that closes at the end was not cut off: something in the
    // record is open. Either way it costs itself alone only where nothing
    // after it can be a record; otherwise (a file that does not end in
    // `]` may have text after the list, not be cut off) it is refused.
    let closed = bytes.trim_ascii_end().ends_with(b"]");
    let open = if closed {
        "a string, list or object in it is not closed (an unescaped quote?)"
    } else {
        "it does not close before the file ends (a cut-off file, or an unescaped quote?)"
    };
    if !another_may_follow(&bytes[at + 1..]) {
        let why = if closed {
            format!("{open} (nothing after it can be a record: the list's last)")
        } else {
            "the file ends inside it (a cut-off file?)".into()
        };
        f(
            index,
            start_line,
            Err(format!("record {index} (line {start_line}): {why}")),
        );
        return ListEnd::Count(index + 1);
    }
    let fix = "fix the record, or write the file as JSON Lines or with json.dump(indent=2), \
               where a broken record costs itself alone; nothing was read from it";
    // Lines that start after the record's first one.
    let after = bytes[at..bytes.len().saturating_sub(1)]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    ListEnd::Unreadable(if after == 0 {
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        format!(
            "record {index} (line {start_line}, column {}): {open}, and what follows it on its \
             line ({} bytes, to the {} end) may hold records that cannot be told apart: {fix}",
            at - line_start + 1,
            bytes.len() - at,
            if closed { "list's" } else { "file's" }
        )
    } else {
        format!(
            "record {index} (line {start_line}): {open}, and the {after} line(s) after it may \
             hold records that cannot be told apart: {fix}"
        )
    })
}

/// Whether `rest`, the text after a broken record's opening bracket, may
/// hold another record: somewhere a `,` then an
/// opening bracket, or a `]` then one (another list, `cat a.json
/// b.json`), whitespace between. Without either, nothing after it can be
/// a record of the list (with one, the broken record's own nested values
/// may be what was found, so `true` proves nothing).
fn another_may_follow(rest: &[u8]) -> bool {
    rest.iter().enumerate().any(|(i, &b)| {
        matches!(b, b',' | b']')
            && after_space(&rest[i + 1..]).is_some_and(|j| matches!(rest[i + 1 + j], b'{' | b'['))
    })
}

/// Where the record after the broken one at `at` starts, in a list written
/// one record per indented block (as `json.dump(indent=2)` writes it): the
/// first later line that holds the indentation `at`'s line holds before
/// it, then the same opening bracket. At column 0 only when records are
/// written `one_per_line` (the last one read was): then the very next
/// line, when it starts with the bracket. `None` when the record does not start its line
/// (a list on one line), starts it at column 0 otherwise (`indent=0`,
/// where nested objects start lines as records do), or no such line
/// follows. (JSON strings hold no raw line end, so a line start is always
/// outside one; lines inside a record are indented deeper.)
fn next_record_start(bytes: &[u8], at: usize, one_per_line: bool) -> Option<usize> {
    let line_start = bytes[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let indent = &bytes[line_start..at];
    if (indent.is_empty() && !one_per_line) || !indent.iter().all(|&b| b == b' ' || b == b'\t') {
        return None;
    }
    let opener = *bytes.get(at)?;
    if indent.is_empty() {
        // One record per line: the next one is on the next line, or
        // there is none to tell apart (a record that itself runs over
        // lines is not one of those).
        let next = at + bytes[at..].iter().position(|&b| b == b'\n')? + 1;
        return (bytes.get(next) == Some(&opener)).then_some(next);
    }
    let mut from = at;
    while let Some(i) = bytes[from..].iter().position(|&b| b == b'\n') {
        let start = from + i + 1;
        let rest = &bytes[start..];
        if rest.starts_with(indent) && rest.get(indent.len()) == Some(&opener) {
            return Some(start + indent.len());
        }
        from = start;
    }
    None
}

/// Checks that `task` reads back from its JSON line as a task file's
/// reader reads it ([`crate::task::read_jsonl`]): a converter can build
/// values the reader refuses (nested past serde_json's limit of 128
/// levels). The reader's message otherwise.
pub(crate) fn reads_back(task: &crate::Task) -> Result<(), String> {
    let line = serde_json::to_string(task).map_err(|e| e.to_string())?;
    serde_json::from_str::<crate::Task>(&line)
        .map(drop)
        .map_err(|e| format!("the task would not read back from a task file: {e}"))
}

/// A string field of a record, or a description of what is wrong.
pub(crate) fn str_field<'a>(record: &'a Value, field: &str) -> Result<&'a str, String> {
    match record.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "field {field:?} is {}, not a string",
            toolgym_reward::json_type_name(other)
        )),
        None => Err(format!("missing field {field:?}")),
    }
}

/// A field that holds JSON either directly or as a JSON-encoded string
/// (xLAM stores `tools` and `answers` as strings).
pub(crate) fn json_field(record: &Value, field: &str) -> Result<Value, String> {
    match record.get(field) {
        Some(Value::String(s)) => {
            let value = serde_json::from_str(s)
                .map_err(|e| format!("field {field:?} is not valid JSON: {e}"))?;
            exactly_read(s.as_bytes(), &value).map_err(|e| format!("field {field:?}: {e}"))?;
            Ok(value)
        }
        Some(v) => Ok(v.clone()),
        None => Err(format!("missing field {field:?}")),
    }
}

/// `Ok` when `value`, parsed from the JSON text `text`, holds what the
/// text says: else the [`wide_integer_drop`] of an integer literal past 64
/// bits, which serde_json read as a float. (Only the text of a value
/// holding a float is searched.)
pub(crate) fn exactly_read(text: &[u8], value: &Value) -> Result<(), String> {
    fn has_float(v: &Value) -> bool {
        match v {
            Value::Number(n) => n.is_f64(),
            Value::Array(items) => items.iter().any(has_float),
            Value::Object(m) => m.values().any(has_float),
            _ => false,
        }
    }
    if !has_float(value) {
        return Ok(());
    }
    // `value` parsed from it: the text is UTF-8.
    match wide_integer(std::str::from_utf8(text).unwrap_or_default()) {
        Some(n) => Err(wide_integer_drop(n)),
        None => Ok(()),
    }
}

/// Calls read from `answers` ([`Call::list_from_value`]), refused where a
/// JSON text it decodes on the way (the list given as a string, an
/// `arguments` string) holds an integer past 64 bits: the record's own
/// text was checked by [`exactly_read`], which cannot see into strings.
pub(crate) fn calls_exactly_read(answers: Value) -> Result<Vec<Call>, String> {
    fn check(v: &Value) -> Result<(), String> {
        let text_ok = |s: &str| wide_integer(s).map_or(Ok(()), |n| Err(wide_integer_drop(n)));
        match v {
            Value::String(s) => {
                text_ok(s)?;
                // Its own calls' `arguments` strings, a level further in.
                serde_json::from_str::<Value>(s).map_or(Ok(()), |inner| match inner {
                    Value::String(_) => Ok(()),
                    inner => check(&inner),
                })
            }
            Value::Array(items) => items.iter().try_for_each(check),
            Value::Object(call) => match call.get("arguments") {
                Some(Value::String(a)) => text_ok(a),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
    check(&answers)?;
    Call::list_from_value(answers).map_err(|e| e.to_string())
}

/// A record's JSON text parsed, refused where serde_json would change it
/// ([`exactly_read`]).
fn read_record(text: &[u8]) -> Result<Value, String> {
    let value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    exactly_read(text, &value)?;
    Ok(value)
}

/// Why a record or step holding the integer `n` (past 64 bits, see
/// [`wide_integer`]) is dropped: one wording for every reader.
pub(crate) fn wide_integer_drop(n: &str) -> String {
    if n == "-0" {
        return "the integer -0: it would become the float -0.0 (dropped, not changed)".into();
    }
    format!("the integer {n}, past 64 bits: it would become a float (dropped, not changed)")
}

/// The first integer literal of the JSON text `s` (outside its strings)
/// that fits neither `i64` nor `u64`, or `-0`: serde_json reads such a
/// literal as a float (`-0` as `-0.0`, where Python reads the integer 0),
/// so a value read from `s` would differ from the record's.
pub(crate) fn wide_integer(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                i += 1;
            }
            let token = &s[start..i];
            // `-?[0-9]+` only (a lone `-`, as in `-Infinity`, or `1-2`
            // is no integer literal).
            let digits = token.strip_prefix('-').unwrap_or(token);
            let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
            let wide = token.parse::<i64>().is_err() && token.parse::<u64>().is_err();
            if integer && (wide || token == "-0") {
                return Some(token);
            }
            continue;
        }
        i += 1;
    }
    None
}

/// The record's `id` as text, when it has one.
pub(crate) fn record_id(record: &Value) -> Option<String> {
    match record.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What a converter made of a file: the tasks, everything dropped, and the
/// number of raw records read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    /// Records in the file.
    pub raw_records: usize,
    /// The tasks, in file order.
    pub tasks: Vec<crate::Task>,
    /// Everything dropped, in file order.
    pub dropped: Vec<Dropped>,
}

#[cfg(test)]
mod tests {
    use super::wide_integer;

    thread_local! {
        /// Bytes visited by record scans on this thread.
        pub(super) static SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn a_broken_record_that_closes_before_the_next_record_start_is_that_record_alone() {
        // A line ends inside the first record's string, and its brackets
        // close on the next line, before the next record start that can
        // be told apart (line 4): the record after it on that line is read.
        let text = "[\n  {\"a\": \"x\ny\"}, {\"c\": 2},\n  {\"b\": 1}\n]\n";
        let (mut read, mut dropped) = (Vec::new(), Vec::new());
        let count = super::for_each_element(text.as_bytes(), 0, &mut |i, line, r| match r {
            Ok(v) => read.push((i, line, v)),
            Err(e) => dropped.push((i, line, e)),
        })
        .unwrap();
        assert_eq!(count, 3);
        assert_eq!(
            read,
            [
                (1, 3, serde_json::json!({"c": 2})),
                (2, 4, serde_json::json!({"b": 1}))
            ]
        );
        assert_eq!(dropped.len(), 1);
        assert_eq!((dropped[0].0, dropped[0].1), (0, 2), "{}", dropped[0].2);
        assert!(
            dropped[0].2.contains("control character"),
            "{}",
            dropped[0].2
        );
    }

    #[test]
    fn a_broken_record_costs_a_scan_of_itself_not_of_the_rest_of_the_file() {
        // json.dump(indent=2) of 2,000 xLAM-like records, one in ten with
        // an unescaped quote: an odd number of quotes, so the scan's idea
        // of what is inside a string is flipped after it, and the
        // brackets in the JSON text of `tools` count as the record's own.
        let records: Vec<String> = (0..2000)
            .map(|i| {
                let q = if i % 10 == 1 { "say \"hi" } else { "say hi" };
                format!(
                    "  {{\n    \"id\": {i},\n    \"query\": \"{q} {i}\",\n    \"tools\": \
                     \"[{{\\\"name\\\": \\\"f\\\"}}]\"\n  }}"
                )
            })
            .collect();
        let text = format!("[\n{}\n]\n", records.join(",\n"));
        let bytes = text.as_bytes();
        SCANNED.with(|n| n.set(0));
        let (mut read, mut dropped) = (Vec::new(), Vec::new());
        let count = super::for_each_element(bytes, 0, &mut |i, line, r| match r {
            Ok(v) => read.push((i, v["id"].as_u64().unwrap())),
            Err(e) => dropped.push((i, line, e)),
        })
        .unwrap();
        assert_eq!(count, 2000);
        // Every good record read, with its own index; every broken one
        // dropped, named by its line, the list read on from the next.
        let good: Vec<(usize, u64)> = (0..2000)
            .filter(|i| i % 10 != 1)
            .map(|i| (i, i as u64))
            .collect();
        assert_eq!(read, good);
        assert_eq!(dropped.len(), 200);
        for (k, (i, line, e)) in dropped.iter().enumerate() {
            assert_eq!(*i, 10 * k + 1);
            assert_eq!(*line, 2 + 5 * i, "{e}");
            let goes_on = format!("read on from line {}", line + 5);
            assert!(e.contains("not closed") && e.contains(&goes_on), "{e}");
        }
        // Each byte scanned about once: scanning each broken record on to
        // where the quotes happen to balance visited the rest of the file
        // per broken record (hundreds of times the file).
        let scanned = SCANNED.with(|n| n.get());
        assert!(
            scanned < 3 * bytes.len(),
            "{scanned} bytes scanned for a file of {}",
            bytes.len()
        );
    }

    #[test]
    fn wide_integers_are_integer_literals_past_64_bits_outside_strings() {
        assert_eq!(
            wide_integer("[1, 123456789012345678901]"),
            Some("123456789012345678901")
        );
        assert_eq!(
            wide_integer("[-18446744073709551616]"),
            Some("-18446744073709551616")
        );
        for fits in [
            "[18446744073709551615, -9223372036854775808]",
            "[1e30, 1.5]",
            "[\"123456789012345678901\"]",
        ] {
            assert_eq!(wide_integer(fits), None, "{fits}");
        }
        // A lone minus (`-Infinity`, `1-2` in free text) is no integer.
        assert_eq!(wide_integer("[-Infinity, 1-2]"), None);
        // serde reads `-0` as the float -0.0 too; `-0.0` is one already.
        assert_eq!(wide_integer("[0, -0.0, -0e1, -0]"), Some("-0"));
    }
}
