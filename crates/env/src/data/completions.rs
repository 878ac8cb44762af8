//! Model completions to judge, from any generator (vLLM, an API, another
//! toolgym run): JSON Lines of `{"id", "completion"}`, shared by every
//! `toolgym eval` benchmark.
//!
//! ```
//! use toolgym_env::data::completions::read_completions;
//! let done = read_completions(&b"{\"id\": \"a\", \"completion\": \"[f(x=1)]\"}\nnot json\n"[..]).unwrap();
//! assert_eq!(done.get("a"), Some("[f(x=1)]"));
//! assert_eq!(done.bad_lines.len(), 1);
//! assert_eq!(done.unknown_ids(["b"]), vec![(1, "a".to_string())]);
//! ```

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use toolgym_reward::jsonl::{is_blank, LineReader, MAX_LINE_BYTES};

/// A line of a completions file that was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The completions of a `{"id", "completion"}` JSON Lines file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Completions {
    /// Completion by case id (a repeated id: the last line wins; a bad
    /// last line leaves the id without one).
    pub by_id: HashMap<String, String>,
    /// The line of each id.
    pub line_of: HashMap<String, usize>,
    /// Lines that were skipped, with why.
    pub bad_lines: Vec<BadLine>,
    /// Ids given more than once (each listed once, in order of repeat).
    pub repeated_ids: Vec<String>,
    /// The lines of each id in [`Completions::repeated_ids`], in order
    /// (the last one is the line that counts).
    pub repeated_lines: HashMap<String, Vec<usize>>,
    /// Blank lines skipped.
    pub blank_lines: usize,
    /// Completions given as chat messages whose `tool_calls` or
    /// `reasoning_content` were written into the text as Tool-N1 blocks
    /// ([`toolgym_reward::completion_text`]); a message of text alone is
    /// its text, and is not counted.
    pub messages: usize,
}

impl Completions {
    /// Notes that `id`, last read on line `earlier`, is given again on
    /// line `line`.
    fn repeated(&mut self, id: String, earlier: usize, line: usize) {
        match self.repeated_lines.get_mut(&id) {
            Some(lines) => lines.push(line),
            None => {
                self.repeated_lines.insert(id.clone(), vec![earlier, line]);
                self.repeated_ids.push(id);
            }
        }
    }

    /// The completion of `id`.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(String::as_str)
    }

    /// Ids that are not among `known` (the judged cases), with their line,
    /// sorted by line.
    pub fn unknown_ids<'a>(
        &self,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(usize, String)> {
        let known: HashSet<&str> = known.into_iter().collect();
        let mut out: Vec<(usize, String)> = self
            .by_id
            .keys()
            .filter(|id| !known.contains(id.as_str()))
            .map(|id| (self.line_of.get(id).copied().unwrap_or(0), id.clone()))
            .collect();
        out.sort();
        out
    }
}

/// Reads `{"id": string, "completion": string | assistant message}` lines
/// (other fields are ignored; a message is read by
/// [`toolgym_reward::completion_text`]). A line that is not such an object is recorded in
/// [`Completions::bad_lines`] with its number and skipped, as is a line
/// over [`MAX_LINE_BYTES`] (256 MiB, never held in memory); only an I/O
/// error fails. A UTF-8 byte-order mark at the start is skipped.
pub fn read_completions(input: impl BufRead) -> io::Result<Completions> {
    let mut out = Completions::default();
    // The last line of each id read, a bad line naming it too.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut reader = LineReader::new(input, MAX_LINE_BYTES);
    while let Some((line, text)) = reader.next_line()? {
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                out.bad_lines.push(BadLine {
                    line,
                    message: e.to_string(),
                });
                continue;
            }
        };
        if is_blank(text.as_bytes()) {
            out.blank_lines += 1;
            continue;
        }
        match completion_line(text) {
            Ok((id, completion, message)) => {
                out.messages += usize::from(message);
                out.by_id.insert(id.clone(), completion);
                out.line_of.insert(id.clone(), line);
                if let Some(earlier) = seen.insert(id.clone(), line) {
                    out.repeated(id, earlier, line);
                }
            }
            Err((id, message)) => {
                // The last line of an id wins, a bad one too: the id then
                // has no completion (an earlier line's is not used
                // silently in its place).
                if let Some(id) = id {
                    out.by_id.remove(&id);
                    out.line_of.remove(&id);
                    if let Some(earlier) = seen.insert(id.clone(), line) {
                        out.repeated(id, earlier, line);
                    }
                }
                out.bad_lines.push(BadLine { line, message })
            }
        }
    }
    Ok(out)
}

/// The id, the completion's text, and whether it was a chat message; or
/// why not, with the id when it was read.
#[allow(clippy::type_complexity)]
fn completion_line(text: &str) -> Result<(String, String, bool), (Option<String>, String)> {
    let v: Value = serde_json::from_str(text).map_err(|e| (None, format!("not JSON: {e}")))?;
    let Value::Object(mut obj) = v else {
        return Err((None, "not a JSON object".into()));
    };
    let id = match obj.shift_remove("id") {
        Some(Value::String(s)) => s,
        Some(_) => return Err((None, "\"id\" is not a string".into())),
        None => return Err((None, "no \"id\"".into())),
    };
    match obj.shift_remove("completion") {
        Some(Value::String(s)) => Ok((id, s, false)),
        // An OpenAI-style assistant message (or a transcript), read as the
        // model's text.
        Some(message) => match toolgym_reward::completion_text(&message) {
            Ok(t) => Ok((id, t.into_owned(), has_tool_n1_parts(&message))),
            Err(e) => {
                let message = format!("{id}: \"completion\": {e}");
                Err((Some(id), message))
            }
        },
        None => {
            let message = format!("{id}: no \"completion\"");
            Err((Some(id), message))
        }
    }
}

/// Whether a message, or any message of a list, has parts written into
/// its text as Tool-N1 blocks: a non-empty `tool_calls` or
/// `reasoning_content`.
fn has_tool_n1_parts(v: &Value) -> bool {
    match v {
        Value::Array(list) => list.iter().any(has_tool_n1_parts),
        Value::Object(m) => {
            let calls = m.get("tool_calls").and_then(Value::as_array);
            let reasoning = m.get("reasoning_content").and_then(Value::as_str);
            calls.is_some_and(|c| !c.is_empty()) || reasoning.is_some_and(|r| !r.is_empty())
        }
        _ => false,
    }
}

/// A completions file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct CompletionsError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    pub source: io::Error,
}

/// Reads a completions file ([`read_completions`]).
pub fn read_completions_file(path: &Path) -> Result<Completions, CompletionsError> {
    let io_err = |source| CompletionsError {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    read_completions(io::BufReader::new(file)).map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id first given on a bad line and then on a good one is a repeat
    /// too (the good line counts).
    #[test]
    fn an_id_on_a_bad_line_then_a_good_one_is_repeated() {
        let text = [
            r#"{"id": "a", "completion": 1}"#,
            r#"{"id": "a", "completion": "good"}"#,
        ]
        .join("\n");
        let done = read_completions(text.as_bytes()).unwrap();
        assert_eq!(done.get("a"), Some("good"));
        assert_eq!(done.repeated_ids, ["a"]);
        assert_eq!(done.repeated_lines["a"], [1, 2]);
    }

    /// The last line of an id wins, a bad one too: the id is left without
    /// a completion (counted missing), not given an earlier line's.
    #[test]
    fn a_bad_last_line_of_an_id_leaves_it_without_a_completion() {
        let text = [
            r#"{"id": "a", "completion": "first"}"#,
            r#"{"id": "b", "completion": "kept"}"#,
            r#"{"id": "a", "completion": null}"#,
            r#"{"id": "c", "completion": "old"}"#,
            r#"{"id": "c", "completion": 7}"#,
            r#"{"id": "c", "completion": "new"}"#,
        ]
        .join("\n");
        let done = read_completions(text.as_bytes()).unwrap();
        assert_eq!(done.get("a"), None);
        assert_eq!(done.get("b"), Some("kept"));
        assert_eq!(done.get("c"), Some("new"));
        assert_eq!(done.line_of.get("c"), Some(&6));
        assert_eq!(done.repeated_ids, ["a", "c"]);
        assert_eq!(done.repeated_lines["a"], [1, 3]);
        assert_eq!(done.repeated_lines["c"], [4, 5, 6]);
        let bad: Vec<usize> = done.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(bad, [3, 5]);
    }
}
