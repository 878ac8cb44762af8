//! The Berkeley Function-Calling Leaderboard test files, for evaluation.
//!
//! A category file `BFCL_v4_<category>.json` is JSON Lines of
//! `{"id", "question": [[{"role", "content"}, ...], ...], "function": [...]}`;
//! its answers, when the category has any, are in
//! `possible_answer/BFCL_v4_<category>.json`:
//! `{"id", "ground_truth": [{"func": {"param": [allowed values...]}}, ...]}`,
//! where `""` among the allowed values means the parameter may be omitted.
//!
//! [`load_file`] / [`load_dir`] return [`BfclCase`]s with the raw JSON kept
//! for BFCL's own checker; [`BfclCase::to_task`] makes a [`Task`] with
//! normalised tools and one canonical ground truth (the first allowed value
//! of each parameter; a parameter whose first allowed value is `""` is
//! omitted). The canonical answer is one of the accepted ones, so the
//! paper's exact-match reward on it is stricter than BFCL's checker; the
//! full possible answer rides along in `meta.bfcl_possible_answer`.

use super::{read_strict_lines, StrictLinesError};
use crate::message::{Message, Role};
use crate::task::Task;
use crate::tool::ToolSpec;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use toolgym_reward::Call;

/// The `source` of BFCL tasks.
pub const SOURCE: &str = "bfcl";

/// One BFCL test case.
#[derive(Clone, Debug, PartialEq)]
pub struct BfclCase {
    /// The case id (`simple_python_16`, `live_simple_5-3-1`, …).
    pub id: String,
    /// The category, from the file name (`simple_python`, `irrelevance`, …).
    pub category: String,
    /// The `function` list as in the file (`Null` when absent, as in the
    /// multi-turn categories).
    pub functions: Value,
    /// The question: one list of messages per user turn.
    pub question: Vec<Vec<Message>>,
    /// The `ground_truth` of the matching possible-answer entry, raw.
    pub possible_answer: Option<Value>,
    /// The whole test entry, raw.
    pub raw: Value,
    /// Its category file.
    pub path: PathBuf,
    /// The entry's line in its category file (1-based).
    pub line: usize,
    /// The possible answer's line in `possible_answer/` (1-based), when it
    /// has one.
    pub answer_line: Option<usize>,
}

/// Reading a BFCL file or converting a case failed.
#[derive(Debug, thiserror::Error)]
pub enum BfclError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a usable entry.
    #[error("{path}:{line}: {message}")]
    Entry {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file name is not `BFCL_v<N>_<category>.json`.
    #[error("{0}: not a BFCL_v<N>_<category>.json file name")]
    FileName(PathBuf),
    /// A case cannot become a task.
    #[error("{}:{line}: BFCL case {id}: {message}", path.display())]
    Convert {
        /// The file at fault: the category file, or its possible answers.
        path: PathBuf,
        /// Its line (1-based).
        line: usize,
        /// The case.
        id: String,
        /// Why.
        message: String,
    },
}

/// The category of a BFCL file name: `BFCL_v4_simple_python.json` →
/// `simple_python`.
///
/// ```
/// use std::path::Path;
/// use toolgym_env::data::bfcl::category_of;
/// assert_eq!(category_of(Path::new("data/BFCL_v4_live_simple.json")).as_deref(), Some("live_simple"));
/// assert_eq!(category_of(Path::new("other.json")), None);
/// ```
pub fn category_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".json")
        .or_else(|| name.strip_suffix(".jsonl"))?;
    let rest = stem.strip_prefix("BFCL_v")?;
    let (version, category) = rest.split_once('_')?;
    (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) && !category.is_empty())
        .then(|| category.to_string())
}

/// The JSON lines of a BFCL file with their numbers. A line that is not
/// JSON, not UTF-8, or over [`MAX_LINE_BYTES`](toolgym_reward::jsonl::MAX_LINE_BYTES)
/// (never held in memory) is an error naming it.
fn read_lines(path: &Path) -> Result<Vec<(usize, Value)>, BfclError> {
    read_strict_lines(path, |text| {
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
    })
    .map_err(|e| match e {
        StrictLinesError::Io(source) => BfclError::Io {
            path: path.to_path_buf(),
            source,
        },
        StrictLinesError::Line { line, message } => BfclError::Entry {
            path: path.to_path_buf(),
            line,
            message,
        },
    })
}

/// Where the possible answers of category file `path` are:
/// `possible_answer/<same name>` in its folder.
pub fn answer_path(path: &Path) -> PathBuf {
    path.parent()
        .unwrap_or(Path::new("."))
        .join("possible_answer")
        .join(path.file_name().unwrap_or_default())
}

/// Loads one category file and, if present, its answers from
/// `possible_answer/<same name>` in the same folder.
pub fn load_file(path: &Path) -> Result<Vec<BfclCase>, BfclError> {
    let category = category_of(path).ok_or_else(|| BfclError::FileName(path.to_path_buf()))?;
    let answer_path = answer_path(path);
    // Each id once per file: a repeated one would be judged against
    // whichever line came last.
    let mut answers: HashMap<String, (usize, Value)> = HashMap::new();
    if answer_path.is_file() {
        for (line, entry) in read_lines(&answer_path)? {
            let entry_err = |message: &str| BfclError::Entry {
                path: answer_path.clone(),
                line,
                message: message.to_string(),
            };
            let id = entry
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| entry_err("no string \"id\""))?;
            let truth = entry
                .get("ground_truth")
                .ok_or_else(|| entry_err("no \"ground_truth\""))?;
            if let Some((first, _)) = answers.insert(id.to_string(), (line, truth.clone())) {
                return Err(entry_err(&format!("id {id:?} repeats line {first}")));
            }
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut cases = Vec::new();
    for (line, entry) in read_lines(path)? {
        let entry_err = |message: String| BfclError::Entry {
            path: path.to_path_buf(),
            line,
            message,
        };
        let id = entry
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| entry_err("no string \"id\"".into()))?
            .to_string();
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(entry_err(format!("id {id:?} repeats line {first}")));
        }
        let question = read_question(entry.get("question")).map_err(entry_err)?;
        let answer = answers.remove(&id);
        cases.push(BfclCase {
            path: path.to_path_buf(),
            answer_line: answer.as_ref().map(|(line, _)| *line),
            possible_answer: answer.map(|(_, truth)| truth),
            line,
            id,
            category: category.clone(),
            functions: entry.get("function").cloned().unwrap_or(Value::Null),
            question,
            raw: entry,
        });
    }
    // An answer without its question: the category file is cut short or
    // is another version's (the official checker refuses unequal counts),
    // and its cases would be scored as if complete.
    if let Some((id, (line, _))) = answers.iter().min_by_key(|(_, (line, _))| *line) {
        return Err(BfclError::Entry {
            path: answer_path,
            line: *line,
            message: format!(
                "id {id:?} has no question in {} ({} answer(s) have none)",
                path.display(),
                answers.len()
            ),
        });
    }
    Ok(cases)
}

/// Loads every `BFCL_v<N>_<category>.json` file of a folder (sorted by
/// name), each with its possible answers. A folder entry that cannot be
/// read, or one named like a category file that is not a regular file (a
/// directory, a dangling link), is an error naming it: its cases would be
/// missing without a word. So is a folder with no category file.
pub fn load_dir(dir: &Path) -> Result<Vec<BfclCase>, BfclError> {
    let io = |source| BfclError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if category_of(&path).is_none() {
            continue;
        }
        if !path.is_file() {
            return Err(BfclError::Io {
                source: std::io::Error::other(
                    "named like a BFCL category file, but not a regular file (a directory or a \
                     dangling link)",
                ),
                path,
            });
        }
        files.push(path);
    }
    if files.is_empty() {
        // The wrong folder, not a benchmark of no cases.
        return Err(BfclError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no BFCL_v<N>_<category>.json file in it",
            ),
        });
    }
    files.sort();
    let mut cases = Vec::new();
    for f in files {
        cases.extend(load_file(&f)?);
    }
    Ok(cases)
}

fn read_question(q: Option<&Value>) -> Result<Vec<Vec<Message>>, String> {
    let turns = q.and_then(Value::as_array).ok_or("no \"question\" list")?;
    turns
        .iter()
        .enumerate()
        .map(|(t, turn)| {
            // Some categories hold a single message where a list is expected.
            let msgs: Vec<&Value> = match turn {
                Value::Array(ms) => ms.iter().collect(),
                m @ Value::Object(_) => vec![m],
                _ => return Err(format!("question turn {t} is not a list of messages")),
            };
            msgs.into_iter()
                .map(|m| {
                    let role = m.get("role").and_then(Value::as_str).and_then(Role::parse);
                    let content = m.get("content").and_then(Value::as_str);
                    match (role, content) {
                        (Some(r), Some(c)) => Ok(Message::new(r, c)),
                        _ => Err(format!(
                            "question turn {t}: a message without a known role and string content"
                        )),
                    }
                })
                .collect()
        })
        .collect()
}

impl BfclCase {
    /// Whether the right answer is to call nothing (the irrelevance
    /// categories).
    pub fn is_irrelevance(&self) -> bool {
        self.category.contains("irrelevance")
    }

    /// The case as a single-step [`Task`]: the first question turn, the
    /// normalised tools, the canonical ground truth (see the module docs).
    /// Multi-turn cases and cases without an answer (other than the
    /// irrelevance categories) are refused.
    pub fn to_task(&self) -> Result<Task, BfclError> {
        self.task_with(false)
    }

    /// The case as a task to prompt with, judged by BFCL's checker and not
    /// by the task's ground truth: as [`BfclCase::to_task`], but a case
    /// without a possible answer (the relevance categories: any call is
    /// right) or with one no call passes (an empty list of allowed values)
    /// is a task too, with no ground truth.
    pub fn to_prompt_task(&self) -> Result<Task, BfclError> {
        self.task_with(true)
    }

    fn task_with(&self, for_prompt: bool) -> Result<Task, BfclError> {
        let err = |message: String| BfclError::Convert {
            path: self.path.clone(),
            line: self.line,
            id: self.id.clone(),
            message,
        };
        // What is wrong with the possible answer is in its own file.
        let answer_err = |message: String| match self.answer_line {
            Some(line) => BfclError::Convert {
                path: answer_path(&self.path),
                line,
                id: self.id.clone(),
                message,
            },
            None => err(message),
        };
        if self.question.len() != 1 {
            return Err(err(format!(
                "{} question turns; multi-turn cases need BFCL's executor",
                self.question.len()
            )));
        }
        let tools = ToolSpec::list_from_json(&self.functions)
            .map_err(|e| err(format!("functions: {e}")))?;
        let ground_truth = match (&self.possible_answer, self.is_irrelevance()) {
            (Some(answer), _) => match canonical_calls(answer) {
                Ok(calls) => calls,
                // A prompt needs no answer (BFCL's checker judges the reply).
                Err(_) if for_prompt => Vec::new(),
                Err(e) => return Err(answer_err(e)),
            },
            (None, irrelevance) if irrelevance || for_prompt => Vec::new(),
            (None, _) => return Err(err("no possible answer".into())),
        };
        let mut task = Task::new(
            self.id.clone(),
            SOURCE,
            tools,
            self.question[0].clone(),
            ground_truth,
        );
        task.meta
            .insert("bfcl_category".into(), json!(self.category));
        if let Some(answer) = &self.possible_answer {
            task.meta
                .insert("bfcl_possible_answer".into(), answer.clone());
        }
        Ok(task)
    }
}

/// One canonical call list from a BFCL `ground_truth`: for each parameter
/// the first allowed value, omitted when that is `""`; nested dicts of
/// allowed values are resolved the same way. A parameter with no allowed
/// value (`[]`: BFCL's data has such cases, which no answer passes) is an
/// error.
///
/// ```
/// use serde_json::json;
/// use toolgym_env::data::bfcl::canonical_calls;
/// let gt = json!([{"get_weather": {"location": ["London, UK", "London, England"], "unit": ["", "celsius"]}}]);
/// let calls = canonical_calls(&gt).unwrap();
/// assert_eq!(calls[0].name, "get_weather");
/// assert_eq!(serde_json::Value::Object(calls[0].arguments.clone()), json!({"location": "London, UK"}));
/// ```
pub fn canonical_calls(ground_truth: &Value) -> Result<Vec<Call>, String> {
    let list = ground_truth
        .as_array()
        .ok_or("ground_truth is not a list")?;
    let mut calls = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let obj = item
            .as_object()
            .filter(|o| o.len() == 1)
            .ok_or_else(|| format!("ground_truth item {i} is not a one-key object"))?;
        for (name, params) in obj {
            let params = params
                .as_object()
                .ok_or_else(|| format!("ground_truth item {i}: parameters are not an object"))?;
            calls.push(Call {
                name: name.clone(),
                arguments: canonical_params(params)
                    .map_err(|e| format!("ground_truth item {i}: {e}"))?,
            });
        }
    }
    Ok(calls)
}

fn canonical_params(params: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (k, options) in params {
        let first = options
            .as_array()
            .and_then(|o| o.first())
            .ok_or_else(|| format!("parameter {k:?} has no list of allowed values"))?;
        if first == &json!("") {
            continue;
        }
        let value = match first {
            Value::Object(nested) if nested.values().all(Value::is_array) && !nested.is_empty() => {
                Value::Object(canonical_params(nested)?)
            }
            v => v.clone(),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}
