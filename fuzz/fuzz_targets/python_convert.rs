//! Fuzzes the Python bindings' argument conversion with an embedded
//! interpreter: the input bytes are a small program that builds one Python
//! value (None, bools, ints up to 128 bits, floats with NaN / inf, str,
//! bytes, lists, tuples, dicts with any keys, sets, complex numbers, type
//! objects) nested up to 200 levels, which is then converted as every entry
//! point converts it (`to_json`, a completion, `Rule.score` with the value as
//! completion and as ground truth). Contract: no panic; an error names the
//! argument; the same value converts the same way twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PyList, PyString, PyTuple};

/// Builds a value from `data`, consuming it.
fn build<'py>(py: Python<'py>, data: &mut &[u8], depth: usize) -> Bound<'py, PyAny> {
    let Some((&op, rest)) = data.split_first() else {
        return py.None().into_bound(py);
    };
    *data = rest;
    let mut take = |n: usize| -> Vec<u8> {
        let k = n.min(data.len());
        let (a, b) = data.split_at(k);
        *data = b;
        a.to_vec()
    };
    let leaf = depth >= 200;
    match op % 13 {
        0 => py.None().into_bound(py),
        1 => (op & 0x10 != 0)
            .into_pyobject(py)
            .unwrap()
            .to_owned()
            .into_any(),
        2 => i64::from(take(1).first().copied().unwrap_or(0) as i8)
            .into_pyobject(py)
            .unwrap()
            .into_any(),
        3 => {
            let mut b = [0u8; 16];
            let t = take(16);
            b[..t.len()].copy_from_slice(&t);
            i128::from_le_bytes(b).into_pyobject(py).unwrap().into_any()
        }
        4 => {
            let mut b = [0u8; 8];
            let t = take(8);
            b[..t.len()].copy_from_slice(&t);
            f64::from_le_bytes(b).into_pyobject(py).unwrap().into_any()
        }
        5 => {
            let n = take(1).first().copied().unwrap_or(0) as usize % 32;
            PyString::new(py, &String::from_utf8_lossy(&take(n))).into_any()
        }
        6 => {
            let n = take(1).first().copied().unwrap_or(0) as usize % 32;
            PyBytes::new(py, &take(n)).into_any()
        }
        7 | 8 | 9 | 10 if !leaf => {
            let n = take(1).first().copied().unwrap_or(0) as usize % 6;
            let items: Vec<Bound<'py, PyAny>> =
                (0..n).map(|_| build(py, data, depth + 1)).collect();
            match op % 13 {
                7 => PyList::new(py, items).unwrap().into_any(),
                8 => PyTuple::new(py, items).unwrap().into_any(),
                9 => {
                    let d = PyDict::new(py);
                    for pair in items.chunks(2) {
                        let v = pair
                            .get(1)
                            .cloned()
                            .unwrap_or_else(|| py.None().into_bound(py));
                        let _ = d.set_item(&pair[0], v); // unhashable keys are skipped
                    }
                    d.into_any()
                }
                _ => match PyFrozenSet::new(py, &items) {
                    Ok(s) => s.into_any(),
                    Err(_) => PyList::new(py, items).unwrap().into_any(),
                },
            }
        }
        11 => py.eval(c"1+2j", None, None).unwrap(),
        12 => py.get_type::<PyDict>().into_any(),
        _ => PyString::new(
            py,
            "<tool_call>[{\"name\": \"f\", \"arguments\": {}}]</tool_call>",
        )
        .into_any(),
    }
}

fuzz_target!(|data: &[u8]| {
    Python::attach(|py| {
        let mut input = data;
        let value = build(py, &mut input, 0);
        let first = _toolgym::fuzzing::outcomes(&value);
        for (i, o) in first.iter().enumerate() {
            if let Err(message) = o {
                let names = ["value", "completion", "completion", "ground_truth"];
                assert!(message.contains(names[i]), "{i}: {message}");
            }
        }
        assert_eq!(first, _toolgym::fuzzing::outcomes(&value));
    });
});
