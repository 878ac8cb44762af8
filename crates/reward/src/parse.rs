//! Reading a completion: the `<think>` block, the `<tool_call>` blocks and
//! the calls inside them, with typed diagnostics for everything wrong.
//!
//! The parser never panics and runs in time linear in the input: tags are
//! found with substring search, JSON is parsed by `serde_json` (which caps
//! nesting at 128 levels), and nothing is evaluated.

use crate::call::{json_type_name, Call, CallShapeError};
use crate::search::{
    Tag, THINK_CLOSE_TAG, THINK_OPEN_TAG, TOOL_CALL_CLOSE_TAG, TOOL_CALL_OPEN_TAG,
};
use serde_json::{Map, Value};
use std::fmt;

/// The chat marker after which the assistant's reply starts (Qwen ChatML).
pub const ASSISTANT_MARKER: &str = "<|im_start|>assistant";

/// Opening tag of the reasoning block.
pub const THINK_OPEN: &str = "<think>";
/// Closing tag of the reasoning block.
pub const THINK_CLOSE: &str = "</think>";
/// Opening tag of a tool-call block.
pub const TOOL_CALL_OPEN: &str = "<tool_call>";
/// Closing tag of a tool-call block.
pub const TOOL_CALL_CLOSE: &str = "</tool_call>";

/// End-of-turn tokens that may trail a reply without counting as stray text.
pub const END_TOKENS: [&str; 2] = ["<|im_end|>", "<|endoftext|>"];

/// How to read a completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseOptions {
    /// Read only what follows the last [`ASSISTANT_MARKER`] that is a
    /// turn header (when the completion still contains the prompt): one
    /// that starts the text or a line and ends the text or a line, as
    /// ChatML writes it, so that a string argument spelling the marker
    /// (JSON strings hold no raw line end) cuts nothing ([`after_marker`]).
    /// Default: true.
    pub cut_at_assistant_marker: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            cut_at_assistant_marker: true,
        }
    }
}

impl ParseOptions {
    /// How a reply of an episode is read: whole. A reply is the model's
    /// text of one turn and never holds its prompt, so an assistant turn
    /// header the model wrote in it is text like any other (stray text,
    /// where the format allows none); read from the header on, what the
    /// model wrote before it would be ignored.
    pub const REPLY: ParseOptions = ParseOptions {
        cut_at_assistant_marker: false,
    };
}

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing, never a failure (e.g. arguments given as a string).
    Info,
    /// The tag structure is wrong.
    Format,
    /// A payload is not valid JSON.
    Json,
    /// A payload is JSON but not a list of calls.
    Shape,
}

/// One thing the parser noticed. Offsets are byte offsets into the text that
/// was parsed (after the optional cut at the assistant marker).
#[derive(Clone, Debug, PartialEq)]
pub enum Diagnostic {
    /// No `<think>` block.
    MissingThink,
    /// `<think>` opened at `offset` and never closed.
    UnterminatedThink {
        /// Where the opening tag starts.
        offset: usize,
    },
    /// More than one `<think>` block.
    RepeatedThink {
        /// Where the second block starts.
        offset: usize,
    },
    /// A `<think>` block comes after a `<tool_call>` block.
    ThinkAfterToolCall {
        /// Where the late block starts.
        offset: usize,
    },
    /// No `<tool_call>` block at all.
    MissingToolCall,
    /// `<tool_call>` opened at `offset` and never closed.
    UnterminatedToolCall {
        /// Where the opening tag starts.
        offset: usize,
    },
    /// An opening tag inside a block of the same kind.
    NestedTag {
        /// The tag.
        tag: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// A closing tag with no matching opening tag.
    StrayClosingTag {
        /// The tag.
        tag: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// Non-whitespace text outside the blocks.
    TextOutsideBlocks {
        /// Where the text starts.
        offset: usize,
        /// Up to 40 characters of it.
        excerpt: String,
    },
    /// The payload of tool-call block `block` (0-based) is not valid JSON.
    InvalidJson {
        /// Which block.
        block: usize,
        /// serde_json's message.
        message: String,
        /// 1-based line within the payload.
        line: usize,
        /// 1-based column within the payload.
        column: usize,
    },
    /// The payload is valid JSON but not a call list.
    BadCallShape {
        /// Which block.
        block: usize,
        /// What is wrong.
        error: CallShapeError,
    },
    /// The payload was a JSON string holding JSON; it was decoded once more.
    PayloadWasString {
        /// Which block.
        block: usize,
    },
    /// A call's `arguments` was a JSON-encoded string; it was decoded.
    ArgumentsWasString {
        /// Which block.
        block: usize,
        /// Which call within the block.
        call: usize,
    },
}

impl Diagnostic {
    /// How serious it is.
    pub fn severity(&self) -> Severity {
        use Diagnostic::*;
        match self {
            PayloadWasString { .. } | ArgumentsWasString { .. } => Severity::Info,
            InvalidJson { .. } => Severity::Json,
            BadCallShape { .. } => Severity::Shape,
            _ => Severity::Format,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Diagnostic::*;
        match self {
            MissingThink => write!(f, "no <think> block"),
            UnterminatedThink { offset } => write!(f, "<think> at byte {offset} is never closed"),
            RepeatedThink { offset } => write!(f, "second <think> block at byte {offset}"),
            ThinkAfterToolCall { offset } => {
                write!(
                    f,
                    "<think> block at byte {offset} comes after a <tool_call> block"
                )
            }
            MissingToolCall => write!(f, "no <tool_call> block"),
            UnterminatedToolCall { offset } => {
                write!(f, "<tool_call> at byte {offset} is never closed")
            }
            NestedTag { tag, offset } => {
                write!(f, "{tag} nested inside its own block at byte {offset}")
            }
            StrayClosingTag { tag, offset } => write!(f, "{tag} at byte {offset} closes nothing"),
            TextOutsideBlocks { offset, excerpt } => {
                write!(f, "text outside the blocks at byte {offset}: {excerpt:?}")
            }
            InvalidJson {
                block,
                message,
                line,
                column,
            } => write!(
                f,
                "tool_call block {block}: invalid JSON at line {line} column {column}: {message}"
            ),
            BadCallShape { block, error } => write!(f, "tool_call block {block}: {error}"),
            PayloadWasString { block } => {
                write!(
                    f,
                    "tool_call block {block}: payload was a JSON string; decoded it"
                )
            }
            ArgumentsWasString { block, call } => write!(
                f,
                "tool_call block {block}, call {call}: arguments were a JSON string; decoded them"
            ),
        }
    }
}

/// A parsed completion: what was found and what was wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion<'a> {
    /// The text that was parsed (after the optional cut).
    pub text: &'a str,
    /// Contents of the first complete `<think>` block.
    pub think: Option<&'a str>,
    /// Raw payloads of the complete `<tool_call>` blocks, in order.
    pub tool_call_blocks: Vec<&'a str>,
    /// The calls from all blocks that parsed, in order; `None` when there is
    /// no complete `<tool_call>` block.
    pub calls: Option<Vec<Call>>,
    /// Everything noticed, in order of discovery.
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Completion<'a> {
    /// Parses with the default options.
    ///
    /// ```
    /// use toolgym_reward::Completion;
    /// let c = Completion::parse(
    ///     "<think>need weather</think>\n<tool_call>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]</tool_call>",
    /// );
    /// assert_eq!(c.think, Some("need weather"));
    /// assert_eq!(c.calls.as_ref().unwrap()[0].name, "get_weather");
    /// assert!(c.first_error(true, false).is_none());
    /// ```
    pub fn parse(text: &'a str) -> Self {
        Self::parse_with(text, &ParseOptions::default())
    }

    /// Parses with explicit options.
    pub fn parse_with(text: &'a str, options: &ParseOptions) -> Self {
        let text = if options.cut_at_assistant_marker {
            after_marker(text)
        } else {
            text
        };
        let mut c = Completion {
            text,
            think: None,
            tool_call_blocks: Vec::new(),
            calls: None,
            diagnostics: Vec::new(),
        };
        c.scan_structure();
        c.parse_payloads();
        c
    }

    /// The first diagnostic that makes the completion fail, given whether a
    /// think block is required and whether free text outside the blocks is
    /// allowed. Format problems come first, then JSON, then shape.
    pub fn first_error(&self, require_think: bool, allow_text: bool) -> Option<&Diagnostic> {
        let counts = |d: &&Diagnostic| match d {
            Diagnostic::MissingThink => require_think,
            Diagnostic::TextOutsideBlocks { .. } => !allow_text,
            d => d.severity() != Severity::Info,
        };
        let mut worst: Option<&Diagnostic> = None;
        for d in self.diagnostics.iter().filter(counts) {
            // Format before JSON before shape: the earliest stage wins.
            if worst.is_none_or(|w| d.severity() < w.severity()) {
                worst = Some(d);
            }
        }
        worst
    }

    /// Scans the tag structure: which blocks exist, in what order, and any
    /// text outside them.
    fn scan_structure(&mut self) {
        let text = self.text;
        let mut pos = 0; // where to look for the next '<'
                         // Whether stray text was reported (once is enough to fail; a flag,
                         // not a search of the diagnostics, keeps the scan linear).
        let mut text_seen = false;
        let mut run = 0; // start of the text not yet inside a block
        let mut seen_tool_call = false;
        let mut think_blocks = 0usize;
        while let Some(rel) = text[pos..].find('<') {
            let at = pos + rel;
            let rest = &text[at..];
            if rest.starts_with(THINK_OPEN) {
                self.note_text(run, at, &mut text_seen, false);
                think_blocks += 1;
                if think_blocks == 2 {
                    self.diagnostics
                        .push(Diagnostic::RepeatedThink { offset: at });
                }
                if seen_tool_call {
                    self.diagnostics
                        .push(Diagnostic::ThinkAfterToolCall { offset: at });
                }
                let Some(body) = self.block_body(at, &THINK_OPEN_TAG, &THINK_CLOSE_TAG) else {
                    self.diagnostics
                        .push(Diagnostic::UnterminatedThink { offset: at });
                    return;
                };
                if self.think.is_none() {
                    self.think = Some(body);
                }
                pos = at + THINK_OPEN.len() + body.len() + THINK_CLOSE.len();
                run = pos;
            } else if rest.starts_with(TOOL_CALL_OPEN) {
                self.note_text(run, at, &mut text_seen, false);
                seen_tool_call = true;
                let Some(body) = self.block_body(at, &TOOL_CALL_OPEN_TAG, &TOOL_CALL_CLOSE_TAG)
                else {
                    self.diagnostics
                        .push(Diagnostic::UnterminatedToolCall { offset: at });
                    return;
                };
                self.tool_call_blocks.push(body);
                pos = at + TOOL_CALL_OPEN.len() + body.len() + TOOL_CALL_CLOSE.len();
                run = pos;
            } else if let Some(tag) = [THINK_CLOSE, TOOL_CALL_CLOSE]
                .into_iter()
                .find(|t| rest.starts_with(t))
            {
                self.note_text(run, at, &mut text_seen, false);
                self.diagnostics
                    .push(Diagnostic::StrayClosingTag { tag, offset: at });
                pos = at + tag.len();
                run = pos;
            } else {
                pos = at + 1;
            }
        }
        self.note_text(run, text.len(), &mut text_seen, true);
        if think_blocks == 0 {
            self.diagnostics.insert(0, Diagnostic::MissingThink);
        }
        if self.tool_call_blocks.is_empty() {
            self.diagnostics.push(Diagnostic::MissingToolCall);
        }
    }

    /// The body of the block whose `open` tag starts at `at`, up to the first
    /// `close` tag; `None` if never closed. Notes an `open` tag nested inside.
    fn block_body(&mut self, at: usize, open: &Tag, close: &Tag) -> Option<&'a str> {
        let text = self.text;
        let body_start = at + open.len();
        let end = close.find(text, body_start)?;
        let body = &text[body_start..end];
        if let Some(nested) = open.find(body, 0) {
            self.diagnostics.push(Diagnostic::NestedTag {
                tag: open.text(),
                offset: body_start + nested,
            });
        }
        Some(body)
    }

    /// Records non-whitespace text in `start..end`; in the `trailing` run
    /// (after the last block) end-of-turn tokens are no text, elsewhere
    /// they are (nothing after a turn's end belongs to it).
    fn note_text(&mut self, start: usize, end: usize, text_seen: &mut bool, trailing: bool) {
        if start >= end {
            return;
        }
        let mut s = &self.text[start..end];
        let mut offset = start;
        loop {
            let trimmed = s.trim_start();
            offset += s.len() - trimmed.len();
            s = trimmed;
            if !trailing {
                break;
            }
            match END_TOKENS.iter().find(|t| s.starts_with(**t)) {
                Some(t) => {
                    s = &s[t.len()..];
                    offset += t.len();
                }
                None => break,
            }
        }
        if s.trim_end().is_empty() {
            return;
        }
        // Only the first stray text is reported; one is enough to fail.
        if std::mem::replace(text_seen, true) {
            return;
        }
        let excerpt: String = s.chars().take(40).collect();
        self.diagnostics
            .push(Diagnostic::TextOutsideBlocks { offset, excerpt });
    }

    /// Parses each tool-call payload into calls.
    fn parse_payloads(&mut self) {
        if self.tool_call_blocks.is_empty() {
            return;
        }
        let mut all = Vec::new();
        for (block, payload) in self.tool_call_blocks.iter().enumerate() {
            let mut info = Vec::new();
            match parse_payload(payload, &mut info) {
                Ok(calls) => all.extend(calls),
                Err(PayloadError::Json {
                    message,
                    line,
                    column,
                }) => self.diagnostics.push(Diagnostic::InvalidJson {
                    block,
                    message,
                    line,
                    column,
                }),
                Err(PayloadError::Shape(error)) => self
                    .diagnostics
                    .push(Diagnostic::BadCallShape { block, error }),
            }
            for note in info {
                self.diagnostics.push(match note {
                    InfoNote::PayloadWasString => Diagnostic::PayloadWasString { block },
                    InfoNote::ArgumentsWasString(call) => {
                        Diagnostic::ArgumentsWasString { block, call }
                    }
                });
            }
        }
        self.calls = Some(all);
    }
}

/// The text after the last assistant marker that is a turn header (at
/// the start of the text or of a line, and followed by a line end or the
/// end of the text) and the newline after it, or all of it. A marker
/// inside a line, such as one a JSON string argument spells, is text.
///
/// ```
/// use toolgym_reward::after_marker;
/// let transcript = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>x</think>";
/// assert_eq!(after_marker(transcript), "<think>x</think>");
/// let reply = r#"<tool_call>[{"name": "say", "arguments": {"t": "<|im_start|>assistant\nhi"}}]</tool_call>"#;
/// assert_eq!(after_marker(reply), reply);
/// ```
pub fn after_marker(text: &str) -> &str {
    let b = text.as_bytes();
    // A forward scan keeping the last header (as `rfind_marker` keeps the
    // last marker).
    let header = crate::search::marker_positions(text)
        .filter(|&i| {
            let end = i + ASSISTANT_MARKER.len();
            (i == 0 || b[i - 1] == b'\n') && matches!(b.get(end), None | Some(b'\n' | b'\r'))
        })
        .last();
    match header {
        Some(i) => {
            let rest = &text[i + ASSISTANT_MARKER.len()..];
            let rest = rest.strip_prefix('\r').unwrap_or(rest);
            rest.strip_prefix('\n').unwrap_or(rest)
        }
        None => text,
    }
}

/// The text from the last assistant marker on (marker included, as the
/// released script keeps it), or all of it.
pub fn cut_at_marker(text: &str) -> &str {
    match crate::search::rfind_marker(text) {
        Some(i) => &text[i..],
        None => text,
    }
}

/// Notes that are not errors, collected while parsing one payload.
pub(crate) enum InfoNote {
    PayloadWasString,
    ArgumentsWasString(usize),
}

enum PayloadError {
    Json {
        message: String,
        line: usize,
        column: usize,
    },
    Shape(CallShapeError),
}

fn parse_payload(payload: &str, info: &mut Vec<InfoNote>) -> Result<Vec<Call>, PayloadError> {
    let json_err = |e: serde_json::Error| PayloadError::Json {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    };
    let value: Value = serde_json::from_str(payload.trim()).map_err(json_err)?;
    let value = match value {
        Value::String(inner) => {
            info.push(InfoNote::PayloadWasString);
            serde_json::from_str(inner.trim()).map_err(json_err)?
        }
        v => v,
    };
    calls_from_value_noting(value, info).map_err(PayloadError::Shape)
}

/// Reads calls from a JSON value (a list of call objects, one object, or a
/// JSON string encoding either: JSON text, whitespace around it as JSON
/// allows, as Python's `json.loads` reads it).
pub(crate) fn calls_from_value(value: Value) -> Result<Vec<Call>, CallShapeError> {
    let value = match value {
        Value::String(inner) => {
            serde_json::from_str(&inner).map_err(|e| CallShapeError::Json(e.to_string()))?
        }
        v => v,
    };
    calls_from_value_noting(value, &mut Vec::new())
}

fn calls_from_value_noting(
    value: Value,
    info: &mut Vec<InfoNote>,
) -> Result<Vec<Call>, CallShapeError> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::Object(obj) => call_from_object(obj, index, info),
                other => Err(CallShapeError::CallNotObject {
                    index,
                    found: json_type_name(&other),
                }),
            })
            .collect(),
        Value::Object(obj) => Ok(vec![call_from_object(obj, 0, info)?]),
        other => Err(CallShapeError::NotCallList(json_type_name(&other))),
    }
}

fn call_from_object(
    mut obj: Map<String, Value>,
    index: usize,
    info: &mut Vec<InfoNote>,
) -> Result<Call, CallShapeError> {
    let name = match obj.remove("name") {
        Some(Value::String(s)) => s,
        _ => return Err(CallShapeError::MissingName { index }),
    };
    let arguments = match obj.remove("arguments") {
        Some(Value::Object(map)) => map,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s.trim()) {
            Ok(Value::Object(map)) => {
                info.push(InfoNote::ArgumentsWasString(index));
                map
            }
            Ok(other) => return Err(CallShapeError::ArgumentsNotObject(json_type_name(&other))),
            Err(_) => return Err(CallShapeError::ArgumentsNotObject("a string")),
        },
        Some(other) => return Err(CallShapeError::ArgumentsNotObject(json_type_name(&other))),
        None => return Err(CallShapeError::MissingArguments { index }),
    };
    Ok(Call { name, arguments })
}
