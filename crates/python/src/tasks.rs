//! `toolgym.Task`, the task loaders and the prompt templates.

use crate::convert::{to_json, to_py, Label};
use pyo3::exceptions::{PyIOError, PyUserWarning, PyValueError};
use pyo3::prelude::*;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use toolgym_env::synthetic::{Split, SyntheticConfig, SyntheticTasks};
use toolgym_env::template::{template_by_name, TEMPLATES};
use toolgym_env::{ChatMlTemplate, ChatTemplate, Message, Role, Task, ToolSpec};
use toolgym_reward::Call;

/// One task: `id`, `source`, candidate `tools` (JSON Schema), the
/// conversation `messages` before the reply, the `ground_truth` calls, and
/// `meta`. The JSONL form is `toolgym prepare`'s.
///
/// Build one with `Task(messages, ground_truth=None, tools=None,
/// id="task", source="python")`, or `Task.from_dict(d)` /
/// `Task.from_json(line)`.
#[pyclass(frozen, module = "toolgym", name = "Task")]
#[derive(Clone)]
pub struct PyTask {
    pub(crate) inner: Arc<Task>,
}

impl PyTask {
    fn field<'py>(&self, py: Python<'py>, value: Value) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &value)
    }
}

/// A template by name, or a `ValueError` listing the names.
pub fn template(name: &str) -> PyResult<ChatMlTemplate> {
    template_by_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown template {name:?}; known: {}",
            TEMPLATES.map(|(n, _)| n).join(", ")
        ))
    })
}

/// `Task(messages=…)`: a user's text, or a list of message dicts, each
/// read on its own (an error names `messages[i]`). OpenAI's form is read
/// too: `content: None`, and `tool_calls` as `{"type": "function",
/// "function": {"name", "arguments": <JSON text>}}`.
fn messages_from(value: Value) -> PyResult<Vec<Message>> {
    let items = match value {
        Value::String(text) => return Ok(vec![Message::user(text)]),
        Value::Array(items) => items,
        _ => {
            return Err(PyValueError::new_err(
                "messages: expected a str or a list of message dicts",
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, mut m) in items.into_iter().enumerate() {
        let bad = |what: String| PyValueError::new_err(format!("messages[{i}]{what}"));
        if let Value::Object(obj) = &mut m {
            if obj.get("content") == Some(&Value::Null) {
                obj.insert("content".into(), Value::String(String::new()));
            }
            match obj.shift_remove("tool_calls") {
                None | Some(Value::Null) => {}
                Some(Value::Array(calls)) => {
                    let mut read = Vec::with_capacity(calls.len());
                    for (j, call) in calls.into_iter().enumerate() {
                        let body = match call {
                            Value::Object(mut c) if c.contains_key("function") => {
                                c.shift_remove("function").unwrap_or_default()
                            }
                            other => other,
                        };
                        let mut one = Call::list_from_value(Value::Array(vec![body]))
                            .map_err(|e| bad(format!(".tool_calls[{j}]: {e}")))?;
                        read.push(one.remove(0));
                    }
                    let calls = serde_json::to_value(read).map_err(|e| bad(format!(": {e}")))?;
                    obj.insert("tool_calls".into(), calls);
                }
                Some(_) => return Err(bad(".tool_calls: expected a list of calls".into())),
            }
        }
        out.push(serde_json::from_value(m).map_err(|e| bad(format!(": {e}")))?);
    }
    Ok(out)
}

fn json_err(what: &str) -> impl Fn(serde_json::Error) -> PyErr + '_ {
    move |e| PyValueError::new_err(format!("{what}: {e}"))
}

impl PyTask {
    /// A task read from a record, refused where `load_tasks` would skip its
    /// line (tools that repeat a name): else `write_tasks` would write a
    /// line that reads back as nothing.
    fn checked(task: Task) -> PyResult<Self> {
        task.check_tools().map_err(PyValueError::new_err)?;
        Ok(Self {
            inner: Arc::new(task),
        })
    }
}

#[pymethods]
impl PyTask {
    #[new]
    #[pyo3(signature = (messages, ground_truth = None, tools = None, id = "task", source = "python"))]
    fn new(
        messages: &Bound<'_, PyAny>,
        ground_truth: Option<&Bound<'_, PyAny>>,
        tools: Option<&Bound<'_, PyAny>>,
        id: &str,
        source: &str,
    ) -> PyResult<Self> {
        let messages = messages_from(to_json(messages, Label::Arg("messages"))?)?;
        let ground_truth = match ground_truth {
            None => Vec::new(),
            Some(g) => Call::list_from_value(to_json(g, Label::Arg("ground_truth"))?)
                .map_err(|e| PyValueError::new_err(format!("ground_truth: {e}")))?,
        };
        let tools = match tools {
            None => Vec::new(),
            Some(t) => ToolSpec::list_from_json(&to_json(t, Label::Arg("tools"))?)
                .map_err(|e| PyValueError::new_err(format!("tools: {e}")))?,
        };
        // As a task read back is checked: a ground truth calling a tool the
        // task does not offer would be written, then skipped when read (or
        // refused when unpickled in a worker process).
        Self::checked(Task::new(id, source, tools, messages, ground_truth))
    }

    /// A task from its dict form (a parsed `toolgym prepare` line).
    #[staticmethod]
    fn from_dict(d: &Bound<'_, PyAny>) -> PyResult<Self> {
        let task: Task =
            serde_json::from_value(to_json(d, Label::Arg("task"))?).map_err(json_err("task"))?;
        Self::checked(task)
    }

    /// A task from one JSONL line.
    #[staticmethod]
    fn from_json(line: &str) -> PyResult<Self> {
        Self::checked(serde_json::from_str(line).map_err(json_err("task"))?)
    }

    /// The task id.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }

    /// Where it came from (`xlam`, `toolace`, `bfcl`, `synthetic`, …).
    #[getter]
    fn source(&self) -> &str {
        &self.inner.source
    }

    /// The candidate tools, as `{"name", "description", "parameters"}` dicts.
    #[getter]
    fn tools<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(
            py,
            serde_json::to_value(&self.inner.tools).unwrap_or_default(),
        )
    }

    /// The conversation before the reply, as `{"role", "content", …}` dicts.
    #[getter]
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(
            py,
            serde_json::to_value(&self.inner.messages).unwrap_or_default(),
        )
    }

    /// The expected calls, as `{"name", "arguments"}` dicts.
    #[getter]
    fn ground_truth<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(
            py,
            serde_json::to_value(&self.inner.ground_truth).unwrap_or_default(),
        )
    }

    /// The expected calls as JSON text (what the reward functions read).
    fn ground_truth_json(&self) -> String {
        serde_json::to_string(&self.inner.ground_truth).unwrap_or_default()
    }

    /// Everything else the dataset recorded (BFCL category, …).
    #[getter]
    fn meta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, Value::Object(self.inner.meta.clone()))
    }

    /// The last user message, if any.
    #[getter]
    fn query(&self) -> Option<&str> {
        self.inner.query()
    }

    /// The task as a dict (the JSONL form).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.field(py, serde_json::to_value(&*self.inner).unwrap_or_default())
    }

    /// The task as one JSONL line.
    fn to_json(&self) -> String {
        serde_json::to_string(&*self.inner).unwrap_or_default()
    }

    /// The prompt text for generation, rendered by `template`.
    #[pyo3(signature = (template = "tool-n1"))]
    fn prompt(&self, template: &str) -> PyResult<String> {
        Ok(self::template(template)?.prompt(&self.inner))
    }

    /// The prompt as chat messages (`{"role", "content"}` only): a system
    /// message carrying the template's instructions and the tools, then the
    /// task's conversation (earlier assistant calls rendered in the
    /// template's reply format).
    /// A Qwen2.5 chat template renders them (without `tools=`) to
    /// `prompt(template)` for plain-text conversations: what verl's and
    /// TRL's datasets hold.
    #[pyo3(signature = (template = "tool-n1"))]
    fn chat<'py>(&self, py: Python<'py>, template: &str) -> PyResult<Bound<'py, PyAny>> {
        let t = self::template(template)?;
        let messages: Vec<Value> = t
            .chat_messages(&self.inner.tools, &self.inner.messages)
            .into_iter()
            .map(|m| {
                let content = match m.role {
                    Role::Assistant => t.assistant_text(&m),
                    _ => m.content,
                };
                serde_json::json!({"role": m.role.as_str(), "content": content})
            })
            .collect();
        self.field(py, Value::Array(messages))
    }

    /// The reference reply (think block and calls) without the end token.
    #[pyo3(signature = (template = "tool-n1"))]
    fn target(&self, template: &str) -> PyResult<String> {
        let t = self::template(template)?;
        let mut out = t.target(&self.inner);
        if let Some(stripped) = out.strip_suffix(t.end_of_turn()) {
            out.truncate(stripped.len());
        }
        Ok(out)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyTask>()
            .is_ok_and(|o| *o.get().inner == *self.inner)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let from_json = py.get_type::<PyTask>().getattr("from_json")?;
        Ok((from_json, (self.to_json(),)))
    }

    fn __repr__(&self) -> String {
        format!(
            "Task(id={:?}, source={:?}, tools={}, calls={})",
            self.inner.id,
            self.inner.source,
            self.inner.tools.len(),
            self.inner.ground_truth.len()
        )
    }
}

/// Emits a Python warning.
pub(crate) fn warn(py: Python<'_>, message: &str) -> PyResult<()> {
    let warning = py.get_type::<PyUserWarning>();
    PyErr::warn(
        py,
        &warning,
        // A NUL (from a task id, say) cannot be in a C string: shown escaped.
        &std::ffi::CString::new(message.replace('\0', "\\0")).unwrap_or_default(),
        1,
    )
}

/// Reads tasks from a JSONL file (`toolgym prepare` output). A bad line is
/// skipped and counted, and one warning names the count and the first bad
/// line; with `strict=True` it raises `ValueError` instead.
#[pyfunction]
#[pyo3(signature = (path, strict = false))]
pub fn load_tasks(py: Python<'_>, path: PathBuf, strict: bool) -> PyResult<Vec<PyTask>> {
    let file =
        toolgym_env::read_jsonl_lenient(&path).map_err(|e| PyIOError::new_err(e.to_string()))?;
    if let Some((line, why)) = file.bad_lines.first() {
        let first = format!("{}:{line}: {why}", path.display());
        if strict {
            return Err(PyValueError::new_err(first));
        }
        warn(
            py,
            &format!(
                "skipped {} bad line(s) of {}; first: {first}",
                file.bad_lines.len(),
                file.lines
            ),
        )?;
    }
    Ok(file
        .tasks
        .into_iter()
        .map(|t| PyTask { inner: Arc::new(t) })
        .collect())
}

/// Writes tasks as JSONL (the form `load_tasks` and `toolgym train`
/// read); returns the count.
#[pyfunction]
pub fn write_tasks(tasks: Vec<PyRef<'_, PyTask>>, path: PathBuf) -> PyResult<usize> {
    let items: Vec<&Task> = tasks.iter().map(|t| &*t.inner).collect();
    toolgym_env::write_jsonl(&path, items.iter().copied())
        .map_err(|e| PyIOError::new_err(e.to_string()))?;
    Ok(items.len())
}

/// Tasks of the built-in synthetic environment (the demo's): the first
/// `n` distinct tasks of a split (`"train"` or `"validation"`, whose
/// templates and values are held out), for a `seed` and a `difficulty`
/// (`"tiny"`, `"standard"` or `"hard"`). Deterministic.
#[pyfunction]
#[pyo3(signature = (n = 100, split = "train", seed = 0, difficulty = "standard"))]
pub fn synthetic_tasks(
    n: usize,
    split: &str,
    seed: u64,
    difficulty: &str,
) -> PyResult<Vec<PyTask>> {
    const MOST: usize = 1_000_000;
    if n > MOST {
        return Err(PyValueError::new_err(format!(
            "n must be at most {MOST} (got {n})"
        )));
    }
    let split = match split {
        "train" => Split::Train,
        "validation" | "val" => Split::Validation,
        other => {
            return Err(PyValueError::new_err(format!(
                "split must be \"train\" or \"validation\", not {other:?}"
            )))
        }
    };
    let config = match difficulty {
        "tiny" => SyntheticConfig::tiny(seed),
        "standard" => SyntheticConfig::standard(seed),
        "hard" => SyntheticConfig::hard(seed),
        other => {
            return Err(PyValueError::new_err(format!(
                "difficulty must be \"tiny\", \"standard\" or \"hard\", not {other:?}"
            )))
        }
    };
    let tasks = SyntheticTasks::new(config).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(tasks
        .dataset(split, n)
        .tasks()
        .iter()
        .map(|t| PyTask { inner: t.clone() })
        .collect())
}

/// BFCL cases as tasks, from one `BFCL_v*_<category>.json` file (answers
/// from `possible_answer/` beside it) or a folder of them. Cases that
/// cannot become tasks are skipped with one warning giving the count.
#[pyfunction]
pub fn load_bfcl(py: Python<'_>, path: PathBuf) -> PyResult<Vec<PyTask>> {
    use toolgym_env::data::bfcl;
    let cases = if path.is_dir() {
        bfcl::load_dir(&path)
    } else {
        bfcl::load_file(&path)
    }
    .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let mut tasks = Vec::with_capacity(cases.len());
    let mut bad = Vec::new();
    for case in &cases {
        match case.to_task() {
            Ok(t) => tasks.push(PyTask { inner: Arc::new(t) }),
            Err(e) => bad.push(e.to_string()),
        }
    }
    if let Some(first) = bad.first() {
        warn(
            py,
            &format!(
                "skipped {} of {} BFCL case(s); first: {first}",
                bad.len(),
                cases.len()
            ),
        )?;
    }
    Ok(tasks)
}

/// The prompt templates: `(name, description)` pairs.
#[pyfunction]
pub fn templates() -> Vec<(&'static str, &'static str)> {
    TEMPLATES.to_vec()
}
