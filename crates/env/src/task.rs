//! The task format every source produces: candidate tools, the
//! conversation so far, and the ground-truth calls of the next reply.

use crate::message::{Message, Role};
use crate::tool::ToolSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use toolgym_reward::jsonl::{is_blank, LineReader, MAX_LINE_BYTES};
use toolgym_reward::Call;

/// One single-step tool-calling task.
///
/// Serialised as one JSON object per line (JSONL):
/// `{"id", "source", "tools", "messages", "ground_truth"}` plus the optional
/// `reasoning` and `meta`. `messages` is the context before the reply to
/// predict (no system prompt unless the dataset had its own; the chat
/// template adds the tool instructions). An empty `ground_truth` means the
/// right reply calls no tool.
///
/// ```
/// use serde_json::json;
/// use toolgym_env::{Message, Task, ToolSpec};
/// use toolgym_reward::Call;
/// let task = Task::new(
///     "demo-1", "demo",
///     vec![ToolSpec::builder("add", "Adds.").required("a", "integer", "").required("b", "integer", "").build()],
///     vec![Message::user("What is 2 plus 3?")],
///     vec![Call::new("add", json!({"a": 2, "b": 3})).unwrap()],
/// );
/// let line = serde_json::to_string(&task).unwrap();
/// let back: Task = serde_json::from_str(&line).unwrap();
/// assert_eq!(back, task);
/// assert_eq!(task.query(), Some("What is 2 plus 3?"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// Unique id (e.g. `xlam-17`, `toolace-305-2`, `synthetic-train-9`).
    pub id: String,
    /// Where it came from (`xlam`, `toolace`, `bfcl`, `synthetic`, …).
    pub source: String,
    /// The candidate tools offered to the model.
    pub tools: Vec<ToolSpec>,
    /// The conversation before the reply to predict.
    pub messages: Vec<Message>,
    /// The calls the reply must make (empty: no call).
    pub ground_truth: Vec<Call>,
    /// A reference reasoning text for the SFT target's think block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Anything else (BFCL category, augmentation marks, …).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
}

impl Task {
    /// `Ok` when no two of the task's tools share a name (a call could not
    /// say which it means) and, when it lists tools, its ground truth
    /// calls only them (a model shown these tools could never make the
    /// call; data preparation drops such a record as `unknown_tool`); else
    /// what a task file reader reports for its line, naming the task.
    pub fn check_tools(&self) -> Result<(), String> {
        ToolSpec::check_unique(&self.tools).map_err(|e| format!("task {}: {e}", self.id))?;
        let listed = |c: &&Call| self.tools.iter().any(|t| t.name == c.name);
        match self.ground_truth.iter().find(|c| !listed(c)) {
            Some(c) if !self.tools.is_empty() => Err(format!(
                "task {}: its ground truth calls {:?}, which is not among its tools",
                self.id, c.name
            )),
            _ => Ok(()),
        }
    }

    /// A task without reasoning or meta.
    pub fn new(
        id: impl Into<String>,
        source: impl Into<String>,
        tools: Vec<ToolSpec>,
        messages: Vec<Message>,
        ground_truth: Vec<Call>,
    ) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            tools,
            messages,
            ground_truth,
            reasoning: None,
            meta: Map::new(),
        }
    }

    /// The last user message, if any.
    pub fn query(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
    }

    /// Whether the context holds more than one user/assistant/tool message
    /// (the paper's "multi-turn" ToolACE tasks).
    pub fn is_multi_turn(&self) -> bool {
        self.messages
            .iter()
            .filter(|m| m.role != Role::System)
            .count()
            > 1
    }

    /// Whether the right reply calls no tool.
    pub fn expects_no_call(&self) -> bool {
        self.ground_truth.is_empty()
    }

    /// The spec of a candidate tool.
    pub fn tool(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// Ground-truth calls naming a tool that is not a candidate.
    pub fn unknown_calls(&self) -> Vec<&Call> {
        self.ground_truth
            .iter()
            .filter(|c| self.tool(&c.name).is_none())
            .collect()
    }
}

/// Reading or writing a task file failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskIoError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a task.
    #[error("{path}:{line}: not a task: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// serde's message.
        message: String,
    },
}

/// The tasks of a JSONL file and the lines that are not tasks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskFile {
    /// The tasks, in file order.
    pub tasks: Vec<Task>,
    /// `(1-based line, why)` of every line that is not a task (not JSON,
    /// not a task object, not UTF-8, or over
    /// [`MAX_LINE_BYTES`](toolgym_reward::jsonl::MAX_LINE_BYTES), which is
    /// never held in memory).
    pub bad_lines: Vec<(usize, String)>,
    /// Lines read, blank ones included.
    pub lines: usize,
}

/// Reads a JSONL task file, keeping going past bad lines (listed in
/// [`TaskFile::bad_lines`]; blank lines and a leading UTF-8 byte-order
/// mark skipped, by [`LineReader`]). Only an I/O error fails.
/// The one reader of task files: [`read_jsonl`] and the Python package's
/// `load_tasks` build on it.
pub fn read_jsonl_lenient(path: impl AsRef<Path>) -> Result<TaskFile, TaskIoError> {
    let path = path.as_ref();
    let io = |source| TaskIoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = LineReader::new(
        BufReader::new(File::open(path).map_err(io)?),
        MAX_LINE_BYTES,
    );
    let mut out = TaskFile::default();
    while let Some((line, text)) = reader.next_line().map_err(io)? {
        out.lines = line;
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                out.bad_lines.push((line, e.to_string()));
                continue;
            }
        };
        if is_blank(text.as_bytes()) {
            continue;
        }
        match serde_json::from_str::<Task>(text) {
            Ok(task) => match task.check_tools() {
                Ok(()) => out.tasks.push(task),
                Err(e) => out.bad_lines.push((line, e)),
            },
            Err(e) => out.bad_lines.push((line, e.to_string())),
        }
    }
    Ok(out)
}

/// Reads tasks from a JSONL file (blank lines skipped). Fails on a bad
/// line, naming the first ([`read_jsonl_lenient`] keeps going instead).
pub fn read_jsonl(path: impl AsRef<Path>) -> Result<Vec<Task>, TaskIoError> {
    let path = path.as_ref();
    let file = read_jsonl_lenient(path)?;
    match file.bad_lines.into_iter().next() {
        Some((line, message)) => Err(TaskIoError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        }),
        None => Ok(file.tasks),
    }
}

/// Writes tasks as JSONL, one per line. The file gets its name only once
/// complete ([`crate::output::AtomicFile`]).
pub fn write_jsonl<'a>(
    path: impl AsRef<Path>,
    tasks: impl IntoIterator<Item = &'a Task>,
) -> Result<usize, TaskIoError> {
    let path = path.as_ref();
    let io = |source| TaskIoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut w = crate::output::AtomicFile::create(path).map_err(io)?;
    let mut n = 0;
    for task in tasks {
        serde_json::to_writer(&mut w, task).map_err(|e| io(e.into()))?;
        w.write_all(b"\n").map_err(io)?;
        n += 1;
    }
    w.finish().map_err(io)?;
    Ok(n)
}
