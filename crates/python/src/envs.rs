//! `toolgym.SingleTurnEnv`, `toolgym.MultiTurnEnv` and `toolgym.Tool`:
//! toolgym's environments with the Gymnasium shape, `reset(seed=None) ->
//! (observation, info)` and `step(action) -> (observation, reward,
//! terminated, truncated, info)`.

use crate::convert::{self, to_json, to_py, CompletionArg, Label};
use crate::reward::PyRule;
use crate::tasks::{template, PyTask};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::{PyTraverseError, PyVisit};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use toolgym_env::env::EnvFactory;
use toolgym_env::{
    MultiTurnConfig, MultiTurnSpec, Observation, SingleTurnSpec, Step, ToolEnv, ToolError,
    ToolRegistry, ToolResult, ToolSpec,
};
use toolgym_reward::Call;

/// The observation as a dict: `prompt` (text for generation), `messages`
/// and `tools`.
fn observation<'py>(py: Python<'py>, o: &Observation) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("prompt", &o.prompt)?;
    d.set_item(
        "messages",
        to_py(py, &serde_json::to_value(&o.messages).unwrap_or_default())?,
    )?;
    d.set_item(
        "tools",
        to_py(py, &serde_json::to_value(&o.tools).unwrap_or_default())?,
    )?;
    Ok(d)
}

/// The info dict of a step: `turn`, `reason`, `detail`, `end` (why the
/// episode ended, or None), `verdicts` (each rule's), `calls` (read from
/// the reply, or None) and `results` (tool results of the step).
fn info<'py>(py: Python<'py>, step: &Step) -> PyResult<Bound<'py, PyDict>> {
    let i = &step.info;
    let d = PyDict::new(py);
    d.set_item("turn", i.turn)?;
    d.set_item("reason", i.reason().as_str())?;
    d.set_item("detail", i.main_verdict().map(|v| &*v.detail).unwrap_or(""))?;
    d.set_item("end", i.end.map(|e| e.as_str()))?;
    let verdicts: Vec<Value> = i
        .verdicts
        .iter()
        .map(|v| {
            json!({"rule": v.rule, "weight": v.weight, "reward": v.verdict.reward,
                   "reason": v.verdict.reason.as_str(), "detail": v.verdict.detail})
        })
        .collect();
    d.set_item("verdicts", to_py(py, &Value::Array(verdicts))?)?;
    let calls = i
        .calls
        .as_ref()
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .unwrap_or(Value::Null);
    d.set_item("calls", to_py(py, &calls)?)?;
    let results: Vec<Value> = i.results.iter().map(result_json).collect();
    d.set_item("results", to_py(py, &Value::Array(results))?)?;
    Ok(d)
}

/// A tool result as the model reads it, with `ok`.
fn result_json(r: &ToolResult) -> Value {
    let mut v = r.to_observation();
    if let Value::Object(m) = &mut v {
        m.insert("ok".into(), Value::Bool(r.is_ok()));
    }
    v
}

type StepTuple<'py> = (Bound<'py, PyDict>, f64, bool, bool, Bound<'py, PyDict>);

fn step_tuple<'py>(py: Python<'py>, step: &Step) -> PyResult<StepTuple<'py>> {
    Ok((
        observation(py, &step.observation)?,
        step.reward,
        step.terminated,
        step.truncated,
        info(py, step)?,
    ))
}

/// The action text: a string, UTF-8 bytes, or an OpenAI-style assistant
/// message (rendered as the model's text). Unreadable input is a
/// `ValueError`: unlike a reward, an env cannot step on nothing.
fn action_text(action: &Bound<'_, PyAny>) -> PyResult<String> {
    match CompletionArg::read(action, Label::Arg("action"))? {
        CompletionArg::Text(t) => Ok(t),
        CompletionArg::Json(v) => toolgym_reward::completion_text(&v)
            .map(|t| t.into_owned())
            .map_err(|e| PyValueError::new_err(format!("action: {e}"))),
        CompletionArg::Bad(why) => Err(PyValueError::new_err(why)),
    }
}

/// A seed argument: None, or an int that fits in 64 bits.
fn seed_arg(seed: Option<&Bound<'_, PyAny>>) -> PyResult<Option<u64>> {
    match seed {
        None => Ok(None),
        Some(s) if s.is_none() => Ok(None),
        Some(s) => s
            .extract::<u64>()
            .map(Some)
            .map_err(|_| PyValueError::new_err("seed must be None or an int in [0, 2**64)")),
    }
}

/// The paper's setting: one task, one completion, one reward.
///
/// `SingleTurnEnv(task, rule="binary", template="tool-n1")`.
#[pyclass(module = "toolgym", name = "SingleTurnEnv")]
pub struct PySingleTurnEnv {
    env: toolgym_env::SingleTurnEnv,
}

#[pymethods]
impl PySingleTurnEnv {
    #[new]
    #[pyo3(signature = (task, rule = "binary", template = "tool-n1"))]
    fn new(task: PyRef<'_, PyTask>, rule: &str, template: &str) -> PyResult<Self> {
        let rule = PyRule::named(rule)?.calls_rule()?;
        let spec = SingleTurnSpec::new(rule, Arc::new(self::template(template)?));
        Ok(Self {
            env: spec.make(task.inner.clone()),
        })
    }

    /// Starts the episode: `(observation, info)`.
    #[pyo3(signature = (seed = None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let o = self.env.reset(seed_arg(seed)?);
        Ok((observation(py, &o)?, PyDict::new(py)))
    }

    /// Scores the completion: `(observation, reward, terminated, truncated,
    /// info)`. `cut=True` says a length limit cut it off (scored as
    /// written, as verl scores a truncated response).
    #[pyo3(signature = (action, cut = false))]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: &Bound<'py, PyAny>,
        cut: bool,
    ) -> PyResult<StepTuple<'py>> {
        let text = action_text(action)?;
        let step = if cut {
            self.env.step_cut(&text)
        } else {
            self.env.step(&text)
        };
        step_tuple(py, &step)
    }

    /// The reference reply (for SFT), if the env has one.
    fn demonstration(&self) -> Option<String> {
        self.env.demonstration()
    }
}

/// A tool for `MultiTurnEnv` (and `toolgym.trl.environment`): a name, a description, JSON-Schema
/// `parameters`, and a Python `handler` called as `handler(**arguments)`
/// after the arguments pass the schema (checked in Rust). Its return value
/// (anything JSON-like) is the result the model reads; an exception
/// becomes a tool error result (`{"kind": "tool_error", "message": …}`),
/// never a crash. `call(arguments)` runs it alone, as an env would
/// (`toolgym.trl.environment` runs TRL's calls through it).
///
/// Python's garbage collector sees the handler through the tool (and
/// through a `MultiTurnEnv` holding it), so a cycle such as an object
/// whose tools' handlers are its own bound methods is collected.
#[pyclass(frozen, module = "toolgym", name = "Tool")]
pub struct PyTool {
    spec: ToolSpec,
    handler: Handler,
    /// The tool alone, for [`PyTool::call`].
    registry: ToolRegistry<()>,
    interrupt: Interrupt,
}

/// A tool's Python handler: one reference to it, shared by the tool and
/// the registries that run it, so that a garbage-collector traversal
/// visits every reference this object holds, once.
type Handler = Arc<Py<PyAny>>;

impl PyTool {
    /// A tool from a checked spec and a callable handler.
    fn from_parts(spec: ToolSpec, handler: Handler) -> PyResult<Self> {
        let interrupt = Interrupt::default();
        let mut registry = ToolRegistry::new();
        let (run, slot, tool) = (handler.clone(), interrupt.clone(), spec.name.clone());
        registry
            .register_fn(spec.clone(), move |args| {
                call_handler(&run, &tool, args, &slot)
            })
            // The registry's errors name the tool themselves.
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Self {
            spec,
            handler,
            registry,
            interrupt,
        })
    }
}

/// `tools[index]` as a `Tool`: itself, or one made from a dict with a
/// `handler` by [`read_tool`]'s rules and messages (the one reader of
/// tool lists; the Python engine bridges call it).
#[pyfunction]
pub fn _tool_of(item: &Bound<'_, PyAny>, index: usize) -> PyResult<Py<PyTool>> {
    if let Ok(t) = item.cast::<PyTool>() {
        return Ok(t.clone().unbind());
    }
    let (spec, handler) = read_tool(item, index)?;
    Py::new(item.py(), PyTool::from_parts(spec, handler)?)
}

/// `text` (JSON) with the `<` of markup-like sequences (`<|im_end|>`,
/// `<tool_call>`) written `\u003c`, the same string to a JSON reader
/// (`toolgym_env::escape_markup`): how toolgym's envs write a tool
/// message, so a tool's output cannot end a turn or fake a call.
#[pyfunction]
pub fn _escape_markup(text: String) -> String {
    toolgym_env::escape_markup(text)
}

/// Calls (a list of `{"name", "arguments"}` dicts) as Qwen2.5's chat
/// template writes them in a reply: one `<tool_call>` block per call
/// (`toolgym_env::template::call_blocks`).
#[pyfunction]
pub fn _call_blocks(calls: &Bound<'_, PyAny>) -> PyResult<String> {
    let calls = toolgym_reward::Call::list_from_value(to_json(calls, Label::Arg("calls"))?)
        .map_err(|e| PyValueError::new_err(format!("calls: {e}")))?;
    Ok(toolgym_env::template::call_blocks(&calls))
}

#[pymethods]
impl PyTool {
    #[new]
    #[pyo3(signature = (name, description, parameters, handler))]
    fn new(
        name: &str,
        description: &str,
        parameters: &Bound<'_, PyAny>,
        handler: Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        if !handler.is_callable() {
            return Err(PyTypeError::new_err("handler must be callable"));
        }
        let spec = ToolSpec::from_json_strict(&json!({
            "name": name,
            "description": description,
            "parameters": to_json(parameters, Label::Arg("parameters"))?,
        }))
        .map_err(|e| {
            // Most spec errors name the tool already.
            let (text, named) = (e.to_string(), format!("tool {name:?}"));
            PyValueError::new_err(if text.starts_with(&named) {
                text
            } else {
                format!("{named}: {text}")
            })
        })?;
        Self::from_parts(spec, Arc::new(handler.unbind()))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&*self.handler)
    }

    /// Runs the tool on `arguments` (a dict) as an env runs a call: the
    /// arguments are checked against the schema first, and the handler
    /// runs only when they pass. Returns what an env's step reports in
    /// `info["results"]`: `{"name", "result", "ok": True}`, or `{"name",
    /// "error": {"kind", "message", …}, "ok": False}` for invalid
    /// arguments (kind `invalid_arguments`, `problems` lists them) or a
    /// handler that raised (kind `tool_error`).
    /// A handler's `BaseException` that is not an `Exception`
    /// (`KeyboardInterrupt`, `SystemExit`, `asyncio.CancelledError`) is
    /// raised again.
    fn call<'py>(
        &self,
        py: Python<'py>,
        arguments: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Value::Object(arguments) = to_json(arguments, Label::Arg("arguments"))? else {
            return Err(PyTypeError::new_err(format!(
                "arguments must be a dict of argument names to values, not {}",
                convert::type_name(arguments)
            )));
        };
        let call = Call {
            name: self.spec.name.clone(),
            arguments,
        };
        let outcome = self.registry.call(&call, &mut ());
        raise_pending(&self.interrupt)?;
        to_py(py, &result_json(&ToolResult { call, outcome }))
    }

    /// The tool's name.
    #[getter]
    fn name(&self) -> &str {
        &self.spec.name
    }

    /// Pickles as `Tool(name, description, parameters, handler)` (the
    /// handler by pickle's own rules: a module-level function does), so a
    /// TRL environment instance holding tools can go to another process.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(
        Bound<'py, PyAny>,
        (String, String, Bound<'py, PyAny>, Py<PyAny>),
    )> {
        Ok((
            py.get_type::<PyTool>().into_any(),
            (
                self.spec.name.clone(),
                self.spec.description.clone(),
                to_py(py, self.spec.source_parameters())?,
                self.handler.clone_ref(py),
            ),
        ))
    }

    /// The spec in OpenAI form (`{"type": "function", "function": {…}}`).
    fn to_openai<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.spec.to_openai())
    }

    fn __repr__(&self) -> String {
        format!("Tool({:?})", self.spec.name)
    }
}

/// A `Tool`, or a dict `{"name", "description", "parameters", "handler"}`
/// (the spec may also be OpenAI's `{"type": "function", "function": …}`).
fn read_tool(item: &Bound<'_, PyAny>, index: usize) -> PyResult<(ToolSpec, Handler)> {
    if let Ok(t) = item.cast::<PyTool>() {
        let t = t.get();
        return Ok((t.spec.clone(), Arc::new(t.handler.clone_ref(item.py()))));
    }
    let what = Label::Item("tools", index);
    let d = item.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a toolgym.Tool or a dict with a \"handler\", not {}",
            convert::type_name(item)
        ))
    })?;
    let d = d.copy()?;
    let handler = d
        .get_item("handler")?
        .ok_or_else(|| PyValueError::new_err(format!("{what}: no \"handler\"")))?;
    if !handler.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "{what}: handler must be callable"
        )));
    }
    d.del_item("handler")?;
    let spec = ToolSpec::from_json_strict(&to_json(d.as_any(), what)?)
        .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))?;
    Ok((spec, Arc::new(handler.unbind())))
}

/// Where a handler's `BaseException` that is not an `Exception`
/// (`KeyboardInterrupt`, `SystemExit`, `asyncio.CancelledError`) waits to be raised again
/// once the env's step returns: those must stop the program, not become a
/// tool error.
type Interrupt = Arc<Mutex<Option<PyErr>>>;

/// Raises the non-`Exception` `BaseException` a handler left in
/// `interrupt`, if any.
fn raise_pending(interrupt: &Interrupt) -> PyResult<()> {
    let pending = interrupt.lock().unwrap_or_else(|p| p.into_inner()).take();
    pending.map_or(Ok(()), Err)
}

/// Calls a Python handler with the validated arguments. An `Exception` is
/// a tool error the model reads; any other `BaseException` is kept in
/// `interrupt` (and the call fails).
fn call_handler(
    handler: &Py<PyAny>,
    tool: &str,
    args: &Value,
    interrupt: &Interrupt,
) -> Result<Value, ToolError> {
    Python::attach(|py| {
        let kwargs = match to_py(py, args).and_then(|a| Ok(a.cast_into::<PyDict>()?)) {
            Ok(d) => d,
            Err(_) => PyDict::new(py),
        };
        let out = handler.bind(py).call((), Some(&kwargs)).map_err(|e| {
            let text = exception_text(py, &e);
            if e.is_instance_of::<PyException>(py) {
                warn_first_failure(py, tool, &e);
            } else {
                let mut slot = interrupt.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(e);
            }
            ToolError::failed(text)
        })?;
        to_json(&out, Label::Arg(&format!("the result of {tool}"))).map_err(|e| {
            ToolError::failed(format!(
                "the handler returned a value that is not JSON: {e}"
            ))
        })
    })
}

/// Warns (a `UserWarning`, with the traceback) the first time in this
/// process that `tool`'s handler raises an exception of its type: the
/// model reads it as a tool error, so a bug in a handler (a `NameError`, a
/// wrong signature) would otherwise fail every call of the tool without a
/// word to whoever runs the training. Once per tool and exception type.
fn warn_first_failure(py: Python<'_>, tool: &str, e: &PyErr) {
    static SEEN: Mutex<std::collections::BTreeSet<(String, String)>> =
        Mutex::new(std::collections::BTreeSet::new());
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let first = SEEN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((tool.to_string(), kind.clone()));
    if !first {
        return;
    }
    let traceback = py
        .import("traceback")
        .and_then(|m| {
            m.call_method1(
                "format_exception",
                (e.get_type(py), e.value(py), e.traceback(py)),
            )
        })
        .and_then(|lines| PyString::new(py, "").call_method1("join", (lines,)))
        .map(|t| t.to_string())
        .unwrap_or_else(|_| exception_text(py, e));
    // A warnings filter set to "error" turns this into an exception: the
    // call still fails as a tool error, and nothing more is raised.
    let _ = crate::tasks::warn(
        py,
        &format!(
            "the handler of tool {tool:?} raised {kind}; the model reads it as a tool error \
             (said once per tool and exception type: a bug in the handler fails every such \
             call):\n{traceback}"
        ),
    );
}

/// `TypeName: message` of a Python exception.
fn exception_text(py: Python<'_>, e: &PyErr) -> String {
    let name = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    format!("{name}: {}", e.value(py))
}

/// A multi-turn episode with Python tools: the model calls tools, the
/// handlers run, their results come back as tool messages, until the
/// model answers without a call or `max_turns` is reached. The reward at
/// the end is 1 when the episode's calls match the task's ground truth
/// (order-free); with `reward="binary"`, only when every reply is also
/// well formed (the paper's rule over the whole episode: a malformed last
/// reply after the right calls scores 0; a cut-off answer whose think
/// block closed is well formed, as verl scores a truncated response).
///
/// `MultiTurnEnv(task, tools, template="tool-n1-multi-turn", max_turns=8,
/// reward="calls-match")`:
/// `tools` is a list of `Tool`s or dicts with a `handler`. The tools shown
/// to the model are the task's, or these when the task lists none; every
/// tool the task lists must be among them with the same parameters (a
/// `ValueError` otherwise: the model could not run it, or would be
/// checked against another schema than it was shown).
#[pyclass(module = "toolgym", name = "MultiTurnEnv")]
pub struct PyMultiTurnEnv {
    env: toolgym_env::MultiTurnEnv<()>,
    interrupt: Interrupt,
    /// The handlers the env's registry runs (for the garbage collector).
    handlers: Vec<Handler>,
}

#[pymethods]
impl PyMultiTurnEnv {
    #[new]
    #[pyo3(signature = (task, tools, template = "tool-n1-multi-turn", max_turns = 8, reward = "calls-match"))]
    fn new(
        task: PyRef<'_, PyTask>,
        tools: &Bound<'_, PyAny>,
        template: &str,
        max_turns: usize,
        reward: &str,
    ) -> PyResult<Self> {
        // Tools in any iterable (a list, a tuple, a dict's values): one
        // tool, None, text, bytes or a dict (iterated by its keys) is said
        // so, naming the argument.
        if tools.is_none()
            || tools.is_instance_of::<PyString>()
            || tools.is_instance_of::<pyo3::types::PyBytes>()
            || tools.is_instance_of::<PyDict>()
            || tools.is_instance_of::<PyTool>()
        {
            return Err(PyTypeError::new_err(format!(
                "tools must be a list of toolgym.Tool (or of dicts with a handler), not {}",
                tools.get_type().name()?
            )));
        }
        let mut registry: ToolRegistry<()> = ToolRegistry::new();
        let interrupt = Interrupt::default();
        let mut handlers = Vec::new();
        for (i, item) in tools.try_iter()?.enumerate() {
            let (spec, handler) = read_tool(&item?, i)?;
            let name = spec.name.clone();
            let slot = interrupt.clone();
            let run = handler.clone();
            registry
                .register_fn(spec, move |args| call_handler(&run, &name, args, &slot))
                .map_err(|e| PyValueError::new_err(format!("tools[{i}]: {e}")))?;
            handlers.push(handler);
        }
        // Every tool the task shows must run, on the schema it shows.
        for shown in &task.inner.tools {
            match registry.get(&shown.name) {
                None => {
                    return Err(PyValueError::new_err(format!(
                        "the task shows the tool {:?}, which no tool in tools runs (tools: {}); \
                         pass a handler for every tool the task lists",
                        shown.name,
                        registry.names().join(", ")
                    )))
                }
                Some(spec) if spec.parameters != shown.parameters => {
                    return Err(PyValueError::new_err(format!(
                        "tools: {:?} has other parameters than the task's tool of that name; \
                         the model would be shown one schema and checked against another",
                        shown.name
                    )))
                }
                Some(_) => {}
            }
        }
        if max_turns == 0 {
            return Err(PyValueError::new_err("max_turns must be at least 1"));
        }
        let template = self::template(template)?;
        let config = match reward {
            "calls-match" => MultiTurnConfig::default(),
            // The paper's rule over an episode: every reply well formed
            // (its think block as the template asks), and the calls right.
            "binary" => MultiTurnConfig::binary(&template),
            other => {
                return Err(PyValueError::new_err(format!(
                    "reward={other:?}: expected \"calls-match\" (the episode's calls match the \
                     task's) or \"binary\" (every reply well formed too, the paper's rule)"
                )))
            }
        };
        let spec = MultiTurnSpec::new(
            registry,
            Arc::new(template),
            config.max_turns(max_turns),
            |_| (),
        )
        .named("python");
        Ok(Self {
            env: spec.make(task.inner.clone()),
            interrupt,
            handlers,
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.handlers.iter().try_for_each(|h| visit.call(&**h))
    }

    /// Starts (or restarts) the episode: `(observation, info)`.
    #[pyo3(signature = (seed = None))]
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
        seed: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
        let o = self.env.reset(seed_arg(seed)?);
        let info = PyDict::new(py);
        info.set_item("seed", self.env.seed())?;
        Ok((observation(py, &o)?, info))
    }

    /// Takes the model's reply, runs its calls: `(observation, reward,
    /// terminated, truncated, info)`. `cut=True` says a length limit cut
    /// the reply off: the calls it completed run, and where it would have
    /// ended the episode (no call, unreadable calls) the episode is
    /// truncated as `token_limit` instead of answered. A handler's
    /// `BaseException` that is not an `Exception` (`KeyboardInterrupt`,
    /// `SystemExit`, `asyncio.CancelledError`) is raised again here, after
    /// the step.
    #[pyo3(signature = (action, cut = false))]
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        action: &Bound<'py, PyAny>,
        cut: bool,
    ) -> PyResult<StepTuple<'py>> {
        let text = action_text(action)?;
        let step = if cut {
            self.env.step_cut(&text)
        } else {
            self.env.step(&text)
        };
        raise_pending(&self.interrupt)?;
        step_tuple(py, &step)
    }

    /// The conversation so far.
    #[getter]
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(
            py,
            &serde_json::to_value(self.env.messages()).unwrap_or_default(),
        )
    }
}
