//! # toolgym (Python)
//!
//! The `toolgym` Python package's native module, `toolgym._toolgym`:
//! toolgym's exact Tool-N1 rewards, its tasks and its environments, for
//! Python engines (verl, TRL) and Python teams. Built with maturin
//! (`pip install ./crates/python`); the pure-Python modules
//! (`toolgym.verl`, `toolgym.trl`) and the type stubs live in `python/`.

mod convert;
mod envs;
mod reward;
mod tasks;

use pyo3::prelude::*;

/// The argument conversions every entry point runs, for the fuzz target
/// (`fuzz/fuzz_targets/python_convert.rs`).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    use super::convert::{to_json, CompletionArg, Label};
    use super::reward::PyRule;
    use pyo3::prelude::*;

    /// Each conversion of `obj`, as comparable text: `to_json`,
    /// `CompletionArg::read`, and `Rule("binary").score` with `obj` as the
    /// completion and as the ground truth. An error is `Err(message)`.
    pub fn outcomes(obj: &Bound<'_, PyAny>) -> Vec<Result<String, String>> {
        let py = obj.py();
        let err = |e: PyErr| Err(e.to_string());
        let rule = PyRule::named("binary").expect("a built-in rule");
        let empty = pyo3::types::PyList::empty(py);
        let text = pyo3::types::PyString::new(py, "<think>x</think>");
        vec![
            to_json(obj, Label::Arg("value")).map_or_else(err, |v| Ok(v.to_string())),
            CompletionArg::read(obj, Label::Arg("completion")).map_or_else(err, |c| {
                Ok(match c {
                    CompletionArg::Text(t) => format!("text {t:?}"),
                    CompletionArg::Json(v) => format!("json {v}"),
                    CompletionArg::Bad(why) => format!("bad {why}"),
                })
            }),
            rule.score_value(obj, empty.as_any()).map_or_else(err, Ok),
            rule.score_value(text.as_any(), obj).map_or_else(err, Ok),
        ]
    }
}

/// toolgym's native module (import `toolgym`, not this).
#[pymodule]
fn _toolgym(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<reward::PyVerdict>()?;
    m.add_class::<reward::PyRule>()?;
    m.add_function(wrap_pyfunction!(reward::rules, m)?)?;
    m.add_function(wrap_pyfunction!(reward::chatml_turns, m)?)?;
    m.add_function(wrap_pyfunction!(reward::match_calls, m)?)?;
    m.add_class::<tasks::PyTask>()?;
    m.add_function(wrap_pyfunction!(tasks::load_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::write_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::synthetic_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::load_bfcl, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::templates, m)?)?;
    m.add_class::<envs::PySingleTurnEnv>()?;
    m.add_class::<envs::PyMultiTurnEnv>()?;
    m.add_class::<envs::PyTool>()?;
    m.add_function(wrap_pyfunction!(envs::_tool_of, m)?)?;
    m.add_function(wrap_pyfunction!(envs::_call_blocks, m)?)?;
    m.add_function(wrap_pyfunction!(envs::_escape_markup, m)?)?;
    Ok(())
}
