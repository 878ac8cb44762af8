//! Python objects ⇄ JSON values, with the argument name and the path of
//! the offending element in every error.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Names an argument, or one item of a sequence argument, in error
/// messages; formatted only when an error is raised (batch calls read
/// 100k items).
#[derive(Clone, Copy, Debug)]
pub enum Label<'a> {
    /// A whole argument (`ground_truth`).
    Arg(&'a str),
    /// Item `i` of an argument (`completions[3]`).
    Item(&'a str, usize),
}

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Arg(name) => f.write_str(name),
            Label::Item(name, i) => write!(f, "{name}[{i}]"),
        }
    }
}

/// Deepest nesting accepted (serde_json's own limit, so a value read from
/// Python and the same value read from JSON text behave alike).
pub const MAX_DEPTH: usize = 128;

/// A Python value (dict / list / tuple / str / int / float / bool / None)
/// as JSON. `what` names the argument in errors (`ground_truth`, …).
pub fn to_json(obj: &Bound<'_, PyAny>, what: Label<'_>) -> PyResult<Value> {
    let mut path = what.to_string();
    convert(obj, &mut path, 0)
}

fn convert(obj: &Bound<'_, PyAny>, path: &mut String, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "{path}: nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        if let Ok(v) = i.extract::<i64>() {
            return Ok(Value::from(v));
        }
        if let Ok(v) = i.extract::<u64>() {
            return Ok(Value::from(v));
        }
        // Beyond 64 bits: a float, as serde_json reads such a literal.
        let v: f64 = i
            .extract()
            .map_err(|_| PyValueError::new_err(format!("{path}: integer too large for JSON")))?;
        return finite(v, path);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return finite(f.value(), path);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(text(s, path)?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "{path}: dict keys must be str, not {}",
                    type_name(&k)
                )));
            };
            let key = text(key, path)?;
            let len = path.len();
            path.push_str(&format!("[{key:?}]"));
            let value = convert(&v, path, depth + 1)?;
            path.truncate(len);
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Some(plain) = numpy_plain(obj)? {
        // numpy scalars and arrays (what pandas and parquet readers give)
        // as the Python values they hold.
        return convert(&plain, path, depth + 1);
    } else {
        return Err(PyTypeError::new_err(format!(
            "{path}: {} is not JSON (expected dict, list, tuple, str, int, float, bool or None)",
            type_name(obj)
        )));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let len = path.len();
        path.push_str(&format!("[{i}]"));
        out.push(convert(item, path, depth + 1)?);
        path.truncate(len);
    }
    Ok(Value::Array(out))
}

/// A numpy scalar or array (`numpy.int64`, `numpy.bool_`, `ndarray`, …)
/// as plain Python values (`tolist()`), or `None` for anything else.
fn numpy_plain<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let module = obj.get_type().module()?;
    let from_numpy = module
        .to_cow()
        .is_ok_and(|m| m == "numpy" || m.starts_with("numpy."));
    if !(from_numpy && obj.hasattr("tolist")?) {
        return Ok(None);
    }
    // Floats narrower than 64 bits (float32 from a parquet column) are read
    // as their shortest text, the value the data was written with: widened
    // by `tolist()`, 0.1 would be 0.10000000149011612 and match no reply.
    let narrow_float = obj.getattr("dtype").is_ok_and(|d| {
        d.getattr("kind").is_ok_and(|k| k.to_string() == "f")
            && d.getattr("itemsize")
                .is_ok_and(|n| n.extract::<usize>().is_ok_and(|n| n < 8))
    });
    if narrow_float {
        let wide = obj
            .call_method1("astype", ("str",))?
            .call_method1("astype", ("float64",))?;
        return Ok(Some(wide.call_method0("tolist")?));
    }
    let plain = obj.call_method0("tolist")?;
    // `tolist()` of a type with no Python equivalent (`longdouble`,
    // `clongdouble`) gives the numpy scalar back: not JSON.
    Ok((!plain.get_type().is(obj.get_type())).then_some(plain))
}

fn finite(v: f64, path: &str) -> PyResult<Value> {
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| PyValueError::new_err(format!("{path}: {v} is not a JSON number")))
}

fn text(s: &Bound<'_, PyString>, path: &str) -> PyResult<String> {
    s.to_cow().map(|t| t.into_owned()).map_err(|e| {
        PyValueError::new_err(format!(
            "{path}: the string is not valid Unicode text ({e})"
        ))
    })
}

/// The type name of a Python object, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .fully_qualified_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A JSON value as a Python object.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A completion as given from Python, read under the GIL and scored
/// without it.
pub enum CompletionArg {
    /// Text.
    Text(String),
    /// An assistant message or a transcript (rendered by
    /// `toolgym_reward::completion_text`).
    Json(Value),
    /// Unusable input (not UTF-8, lone surrogates, not JSON): scored as an
    /// `input_error` verdict with this explanation.
    Bad(String),
}

impl CompletionArg {
    /// Reads `str`, `bytes` (UTF-8), a message `dict` or a `list` / `tuple`
    /// of messages. Other types are a `TypeError` naming `what`; contents that
    /// cannot be read become [`CompletionArg::Bad`].
    pub fn read(obj: &Bound<'_, PyAny>, what: Label<'_>) -> PyResult<Self> {
        if let Ok(s) = obj.cast::<PyString>() {
            // (`to_cow`: the abi3 API for Python 3.9 has no borrowed UTF-8
            // view, so the text is copied once.)
            return Ok(match s.to_cow() {
                Ok(t) => CompletionArg::Text(t.into_owned()),
                Err(_) => CompletionArg::Bad(format!(
                    "{what}: the string is not valid Unicode text (lone surrogates)"
                )),
            });
        }
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(match std::str::from_utf8(b.as_bytes()) {
                Ok(t) => CompletionArg::Text(t.to_owned()),
                Err(e) => {
                    CompletionArg::Bad(format!("{what}: invalid UTF-8 at byte {}", e.valid_up_to()))
                }
            });
        }
        if obj.cast::<PyDict>().is_ok()
            || obj.cast::<PyList>().is_ok()
            || obj.cast::<PyTuple>().is_ok()
        {
            return Ok(match to_json(obj, what) {
                Ok(v) => CompletionArg::Json(v),
                Err(e) => CompletionArg::Bad(e.to_string()),
            });
        }
        Err(PyTypeError::new_err(format!(
            "{what} must be str, bytes, an assistant message dict or a list of messages, not {}",
            type_name(obj)
        )))
    }
}
