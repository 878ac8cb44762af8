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

/// toolgym's native module (import `toolgym`, not this).
#[pymodule]
fn _toolgym(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<reward::PyVerdict>()?;
    m.add_class::<reward::PyRule>()?;
    m.add_function(wrap_pyfunction!(reward::rules, m)?)?;
    m.add_class::<tasks::PyTask>()?;
    m.add_function(wrap_pyfunction!(tasks::load_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::write_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::synthetic_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::load_bfcl, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::templates, m)?)?;
    m.add_class::<envs::PySingleTurnEnv>()?;
    m.add_class::<envs::PyMultiTurnEnv>()?;
    m.add_class::<envs::PyTool>()?;
    Ok(())
}
