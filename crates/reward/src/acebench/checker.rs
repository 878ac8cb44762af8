//! ACEBench's checker for the normal single-turn categories
//! (`model_eval/checker.py`: `normal_checker`, `simple_function_checker`,
//! `type_checker`, `dict_checker`, `list_dict_checker`, `list_checker`,
//! `string_checker`, and the helpers of `model_eval/utils.py`),
//! re-implemented on [`PyVal`] with Python's semantics and the quirks of
//! the original (listed in the [module docs](super)).

use crate::bfcl::standardize_string;
use crate::pycall::{PyType, PyVal};
use std::fmt;

/// The official verdict on one case: `valid`, and for a wrong answer the
/// `error_type` and `error` text the official score files carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AceOutcome {
    /// The answer is correct.
    pub valid: bool,
    /// The official error type (empty when valid), e.g. `type_error`,
    /// `value_error:string`, `addition_args`, `wrong_output_format`.
    pub error_type: String,
    /// What is wrong, as the official message words it.
    pub error: String,
    /// The reply holds a construct the official decoder evaluates (or
    /// tries to, with Python's `eval`) and this port's decoder does not:
    /// calls, subscripts or attributes inside arithmetic (`int('3')+0`),
    /// `%` formatting, integers past 128 bits. Judged
    /// `wrong_output_format` here; the official verdict may differ.
    pub decoder_gap: bool,
}

impl AceOutcome {
    pub(crate) fn ok() -> Self {
        Self {
            valid: true,
            error_type: String::new(),
            error: String::new(),
            decoder_gap: false,
        }
    }

    pub(crate) fn fail(error_type: &str, error: impl Into<String>) -> Self {
        Self {
            valid: false,
            error_type: error_type.to_string(),
            error: error.into(),
            decoder_gap: false,
        }
    }
}

/// Where the official evaluation itself raises (and stops the whole run):
/// a function description without `parameters` / `required` / `type`, an
/// unknown type name, an answer that cannot be iterated. Only the data
/// can cause it, never the model's output alone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the official checker raises {exception}: {message}")]
pub struct OfficialCrash {
    /// The Python exception class.
    pub exception: &'static str,
    /// Its message.
    pub message: String,
}

fn crash(exception: &'static str, message: impl Into<String>) -> OfficialCrash {
    OfficialCrash {
        exception,
        message: message.into(),
    }
}

type Checked<T = AceOutcome> = Result<T, OfficialCrash>;

/// `PYTHON_TYPE_MAPPING`: the Python class a schema type name maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Str,
    Int,
    Float,
    Bool,
    List,
    Dict,
    /// `"enum": enumerate` — no value ever has this type.
    Enumerate,
}

impl Class {
    fn of_schema(name: &str) -> Option<Class> {
        Some(match name {
            "string" | "any" => Class::Str,
            "integer" | "int" | "number" => Class::Int,
            "float" => Class::Float,
            "boolean" => Class::Bool,
            "array" | "tuple" | "list" | "objectArray" | "list(string)" | "list(enum)" => {
                Class::List
            }
            "dict" | "object" => Class::Dict,
            "enum" => Class::Enumerate,
            _ => return None,
        })
    }

    fn py_type(self) -> Option<PyType> {
        Some(match self {
            Class::Str => PyType::Str,
            Class::Int => PyType::Int,
            Class::Float => PyType::Float,
            Class::Bool => PyType::Bool,
            Class::List => PyType::List,
            Class::Dict => PyType::Dict,
            Class::Enumerate => return None,
        })
    }

    /// `type(v) == cls` (exact: a `bool` is not an `int`).
    fn is_type_of(self, v: &PyVal) -> bool {
        self.py_type() == Some(v.py_type())
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.py_type() {
            Some(t) => write!(f, "<class '{}'>", t.name()),
            None => f.write_str("<class 'enumerate'>"),
        }
    }
}

/// `PYTHON_NESTED_TYPE_CHECK_LIST`.
const NESTED_TYPES: [&str; 6] = [
    "array",
    "tuple",
    "list(string)",
    "list(enum)",
    "object",
    "objectArray",
];

/// `d[key]` for a string key, raising as Python would.
fn index<'a>(d: &'a PyVal, key: &str) -> Checked<&'a PyVal> {
    match d {
        PyVal::Dict(_) => d
            .dict_get(key)
            .ok_or_else(|| crash("KeyError", format!("'{key}'"))),
        other => Err(crash(
            "TypeError",
            format!(
                "'{}' object is not subscriptable by '{key}'",
                other.py_type().name()
            ),
        )),
    }
}

/// `key in d` for a dict `d` (keys compare with `==`).
fn dict_has(d: &PyVal, key: &PyVal) -> Checked<bool> {
    match d {
        PyVal::Dict(entries) => Ok(entries.iter().any(|(k, _)| k.py_eq(key))),
        other => Err(crash(
            "TypeError",
            format!(
                "argument of type '{}' is not iterable",
                other.py_type().name()
            ),
        )),
    }
}

/// `len(v)`.
fn py_len(v: &PyVal) -> Checked<usize> {
    Ok(match v {
        PyVal::Str(s) => s.chars().count(),
        PyVal::Bytes(b) => b.len(),
        PyVal::List(x) | PyVal::Tuple(x) | PyVal::Set(x) => x.len(),
        PyVal::Dict(d) => d.len(),
        other => {
            return Err(crash(
                "TypeError",
                format!("object of type '{}' has no len()", other.py_type().name()),
            ))
        }
    })
}

/// `list(iter(v))`: characters of a string, items of a sequence, keys of
/// a dict.
fn py_iter(v: &PyVal) -> Checked<Vec<PyVal>> {
    Ok(match v {
        PyVal::Str(s) => s.chars().map(|c| PyVal::Str(c.to_string())).collect(),
        PyVal::Bytes(b) => b.iter().map(|x| PyVal::Int(i128::from(*x))).collect(),
        PyVal::List(x) | PyVal::Tuple(x) | PyVal::Set(x) => x.clone(),
        PyVal::Dict(d) => d.iter().map(|(k, _)| k.clone()).collect(),
        other => {
            return Err(crash(
                "TypeError",
                format!("'{}' object is not iterable", other.py_type().name()),
            ))
        }
    })
}

/// `[x[i] for i in range(len(x))]`: like [`py_iter`], but a non-empty
/// dict raises (`x[0]` is a key lookup).
fn py_items(v: &PyVal) -> Checked<Vec<PyVal>> {
    match v {
        PyVal::Dict(d) if !d.is_empty() => Err(crash("KeyError", "0")),
        PyVal::Set(_) => Err(crash("TypeError", "'set' object is not subscriptable")),
        other => py_iter(other),
    }
}

/// `"true"` → `True`, `"false"` → `False` (what the checker does to a
/// model value before type checks and inside dicts).
fn unquote_bool(v: &PyVal) -> PyVal {
    match v.as_str() {
        Some("true") => PyVal::Bool(true),
        Some("false") => PyVal::Bool(false),
        _ => v.clone(),
    }
}

/// `get_possible_answer_type`: `type(answer)`, or `None` for `""`.
fn answer_type(answer: &PyVal) -> Option<PyType> {
    (answer.as_str() != Some("")).then(|| answer.py_type())
}

struct TypeCheck {
    valid: bool,
    is_variable: bool,
    error: String,
}

/// `type_checker`.
fn type_checker(
    param: &str,
    value: &PyVal,
    answer: &PyVal,
    expected_description: &str,
    expected: Class,
    nested: Option<Class>,
    func_name: &str,
) -> Checked<TypeCheck> {
    let mut is_variable = false;
    let answer_ty = answer_type(answer);
    if answer_ty.is_some() && answer_ty != expected.py_type() {
        is_variable = true;
    }
    let value = unquote_bool(value);
    let mut result = TypeCheck {
        valid: true,
        is_variable: false,
        error: String::new(),
    };
    if expected.is_type_of(&value) {
        let Some(nested) = nested else {
            result.is_variable = is_variable;
            return Ok(result);
        };
        for item in py_iter(answer)? {
            let mut flag = true;
            if matches!(item, PyVal::List(_)) {
                for value_item in py_iter(&value)? {
                    let inner = type_checker(
                        param,
                        &value_item,
                        &item,
                        &nested.to_string(),
                        nested,
                        None,
                        func_name,
                    )?;
                    if !inner.valid {
                        flag = false;
                        break;
                    }
                }
            }
            if flag {
                return Ok(TypeCheck {
                    valid: true,
                    is_variable,
                    error: String::new(),
                });
            }
        }
        result.valid = false;
        result.error = format!(
            "Nested type checking failed for parameter {}. Expected outer type {expected_description} with inner type {nested}. Parameter value: {}.",
            PyVal::Str(param.to_string()).repr(),
            value.repr()
        );
    }
    if let Some(t) = answer_type(answer) {
        if value.py_type() == t || answer.py_eq(&value) {
            result.is_variable = true;
            return Ok(result);
        }
    }
    result.valid = false;
    result.error = format!(
        "wrong type for parameter ({param}) of api ({func_name}):[excepted: {expected}, real: <class '{}'>]",
        value.py_type().name()
    );
    Ok(result)
}

/// `string_checker` (normal categories: the standardised answer must be a
/// substring of the standardised value).
fn string_checker(param: &str, value: &str, answer: &PyVal, func_name: &str) -> Checked {
    let Some(answer_text) = answer.as_str() else {
        return Err(crash(
            "TypeError",
            "expected string or bytes-like object in standardize_string",
        ));
    };
    if !standardize_string(value).contains(&standardize_string(answer_text)) {
        return Ok(AceOutcome::fail(
            "value_error:string",
            format!(
                "wrong value for parameter ({param}) of api ({func_name}): [excepted: {answer_text}, real: [{value}]]"
            ),
        ));
    }
    Ok(AceOutcome::ok())
}

/// Strings of a list standardised, other items kept.
fn standardize_items(items: Vec<PyVal>) -> Vec<PyVal> {
    items
        .into_iter()
        .map(|v| match v {
            PyVal::Str(s) => PyVal::Str(standardize_string(&s)),
            other => other,
        })
        .collect()
}

/// `list_checker`: equal after standardising string items, in order.
fn list_checker(param: &str, value: &PyVal, answer: &PyVal, func_name: &str) -> Checked {
    let got = standardize_items(py_iter(value)?);
    let want = standardize_items(py_items(answer)?);
    if !PyVal::List(got).py_eq(&PyVal::List(want)) {
        return Ok(AceOutcome::fail(
            "value_error:list/tuple",
            format!(
                "wrong value for parameter ({}) of api ({func_name}): [expected {}, real: [{}]]",
                PyVal::Str(param.to_string()).repr(),
                answer.py_str(),
                value.repr()
            ),
        ));
    }
    Ok(AceOutcome::ok())
}

/// `dict_checker`: same key count, every model key expected, nested dicts
/// recursively, other values by *substring* of `str()` after
/// standardising strings.
fn dict_checker(param: &str, value: &PyVal, answer: &PyVal, func_name: &str) -> Checked {
    let wrong = |kind: &str| {
        AceOutcome::fail(
            kind,
            format!(
                "wrong value for parameter ({param}) of api ({func_name}): [excepted: {}, real: [{}]]",
                answer.py_str(),
                value.py_str()
            ),
        )
    };
    let PyVal::Dict(entries) = value else {
        return Ok(wrong("value_error"));
    };
    let PyVal::Dict(answer_entries) = answer else {
        return Err(crash(
            "AttributeError",
            format!(
                "'{}' object has no attribute 'keys'",
                answer.py_type().name()
            ),
        ));
    };
    if entries.len() != answer_entries.len() {
        return Ok(wrong("value_error"));
    }
    let mut result = AceOutcome::ok();
    for (key, v) in entries {
        let v = unquote_bool(v);
        let Some(expected) = answer.dict_get_key(key) else {
            return Ok(wrong("value_error"));
        };
        if let PyVal::Dict(_) = expected {
            result = dict_checker(param, &v, expected, func_name)?;
            if !result.valid {
                return Ok(result);
            }
        } else {
            let got = match &v {
                PyVal::Str(s) => PyVal::Str(standardize_string(s)),
                other => other.clone(),
            };
            let want = match expected {
                PyVal::Str(s) => PyVal::Str(standardize_string(s)),
                other => other.clone(),
            };
            if !got.py_str().contains(&want.py_str()) {
                return Ok(wrong("value_error"));
            }
        }
    }
    Ok(result)
}

/// `list_dict_checker`: same length, then [`dict_checker`] item by item.
fn list_dict_checker(param: &str, value: &PyVal, answer: &PyVal, func_name: &str) -> Checked {
    let items = py_iter(value)?;
    if items.len() != py_len(answer)? {
        return Ok(AceOutcome::fail(
            "value_error:list_dict_count",
            format!(
                "wrong value for parameter ({param}) of api ({func_name}): [excepted: {}, real: [{}]]",
                answer.py_str(),
                value.py_str()
            ),
        ));
    }
    let answers = py_items(answer)?;
    let mut result = AceOutcome::ok();
    for (v, a) in items.iter().zip(&answers) {
        result = dict_checker(param, v, a, func_name)?;
        if !result.valid {
            return Ok(result);
        }
    }
    Ok(result)
}

/// The first (only) `(key, value)` of a one-entry dict.
fn first_entry(d: &PyVal) -> Checked<(&PyVal, &PyVal)> {
    match d {
        PyVal::Dict(entries) if !entries.is_empty() => Ok((&entries[0].0, &entries[0].1)),
        _ => Err(crash("IndexError", "list index out of range")),
    }
}

fn is_empty_dict(v: &PyVal) -> bool {
    v.py_eq(&PyVal::Dict(Vec::new()))
}

/// `simple_function_checker`: one model call `{name: params}` against one
/// expected call `{name: params}` with the function's description.
fn simple_function_checker(description: &PyVal, call: &PyVal, expected: &PyVal) -> Checked {
    let (_, answer) = first_entry(expected)?;
    let (_, model_params) = first_entry(call)?;
    let parameters = index(description, "parameters")?;
    let wrong_param = || AceOutcome::fail("wrong_param", "");
    if is_empty_dict(model_params) && is_empty_dict(parameters) {
        return Ok(AceOutcome::ok());
    } else if is_empty_dict(model_params) || is_empty_dict(parameters) {
        return Ok(wrong_param());
    }
    let properties = index(parameters, "properties")?;
    if answer.py_eq(properties) {
        return Ok(AceOutcome::ok());
    } else if is_empty_dict(answer) {
        return Ok(wrong_param());
    }
    let name_value = index(description, "name")?;
    let func_name = name_value.py_str();
    if !dict_has(call, name_value)? {
        let (got, _) = first_entry(call)?;
        return Ok(AceOutcome::fail(
            "wrong_function_name",
            format!("expected {func_name}, real {}", got.py_str()),
        ));
    }
    let model_params = call.dict_get_key(name_value).unwrap_or(model_params);
    for required in py_iter(index(parameters, "required")?)? {
        if !dict_has(model_params, &required)? {
            return Ok(AceOutcome::fail(
                "lack_args",
                format!("lack required_params: {}", required.py_str()),
            ));
        }
    }
    let PyVal::Dict(params) = model_params else {
        return Err(crash("AttributeError", "model parameters are not a dict"));
    };
    for (key, value) in params {
        if !dict_has(properties, key)? || !dict_has(answer, key)? {
            return Ok(AceOutcome::fail(
                "addition_args",
                format!("addition params: {}", key.py_str()),
            ));
        }
        let param = key.py_str();
        let details = properties.dict_get_key(key).unwrap_or(&PyVal::None);
        let expected_answer = answer.dict_get_key(key).unwrap_or(&PyVal::None);
        let type_value = index(details, "type")?;
        let Some(type_name) = type_value.as_str() else {
            return Err(crash(
                "TypeError",
                format!("unhashable type name {}", type_value.repr()),
            ));
        };
        let expected = Class::of_schema(type_name)
            .ok_or_else(|| crash("KeyError", format!("'{type_name}'")))?;
        let mut nested = None;
        if NESTED_TYPES.contains(&type_name) {
            let item_type = details
                .dict_get("items")
                .and_then(|items| items.dict_get("type"));
            let nested_name = match item_type {
                Some(PyVal::Str(s)) => s.clone(),
                Some(other) => {
                    return Err(crash(
                        "TypeError",
                        format!("unhashable type {}", other.repr()),
                    ))
                }
                // `["items"]["type"]` raised: the fallback by type name.
                None if type_name.contains("string") => "string".into(),
                None if type_name.contains("enum") => "enum".into(),
                None => "dict".into(),
            };
            nested = Some(
                Class::of_schema(&nested_name)
                    .ok_or_else(|| crash("KeyError", format!("'{nested_name}'")))?,
            );
        }
        let mut value = value.clone();
        if let PyVal::Tuple(items) = &value {
            if type_name == "tuple" {
                value = PyVal::List(items.clone());
            }
        }
        if let PyVal::Int(i) = value {
            if type_name == "float" {
                value = PyVal::Float(i as f64);
            }
        }
        let checked = type_checker(
            &param,
            &value,
            expected_answer,
            type_name,
            expected,
            nested,
            &func_name,
        )?;
        if !checked.valid {
            return Ok(AceOutcome::fail("type_error", checked.error));
        }
        if checked.is_variable {
            continue;
        }
        let outcome = match (expected, nested) {
            (Class::Dict, _) => dict_checker(&param, &value, expected_answer, &func_name)?,
            (Class::List, Some(Class::Dict)) => {
                if type_name == "objectArray" {
                    // The official code calls `dict_checker` with three of
                    // its four arguments here and raises.
                    if py_iter(&value)?.len() != py_len(expected_answer)? {
                        AceOutcome::fail(
                            "value_error:dict_items",
                            "Wrong number of parameters for dictionary.",
                        )
                    } else {
                        return Err(crash(
                            "TypeError",
                            "dict_checker() missing 1 required positional argument: 'func_name'",
                        ));
                    }
                } else {
                    list_dict_checker(&param, &value, expected_answer, &func_name)?
                }
            }
            (Class::Str, _) => match &value {
                PyVal::Str(s) => string_checker(&param, s, expected_answer, &func_name)?,
                _ => AceOutcome::ok(),
            },
            (Class::List, _) => list_checker(&param, &value, expected_answer, &func_name)?,
            _ => AceOutcome::ok(),
        };
        if !outcome.valid {
            return Ok(outcome);
        }
    }
    Ok(AceOutcome::ok())
}

/// `re.sub(r'_\d+$', '', key)`: `get_weather_2` → `get_weather`.
fn strip_index_suffix(key: &str) -> &str {
    let digits = key.len() - key.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let head = &key[..key.len() - digits];
    match head.strip_suffix('_') {
        Some(name) if digits > 0 => name,
        _ => key,
    }
}

/// `find_description`: the first function whose name is a *substring* of
/// `name` (the answer's key, index suffix included).
fn find_description<'a>(functions: &'a PyVal, name: &str) -> Checked<Option<&'a PyVal>> {
    match functions {
        PyVal::List(items) => {
            for f in items {
                let n = index(f, "name")?;
                match n.as_str() {
                    Some(n) if name.contains(n) => return Ok(Some(f)),
                    Some(_) => {}
                    None => {
                        return Err(crash(
                            "TypeError",
                            "'in <string>' requires string as left operand",
                        ))
                    }
                }
            }
            Ok(None)
        }
        other => Ok(Some(other)),
    }
}

/// `normal_checker`: the model's calls (`[{name: params}, …]`, as
/// [`decode`](super::decode) gives them) against one possible answer
/// (`{name: params}` with `_N` suffixes on repeated names) and the case's
/// function descriptions.
///
/// ```
/// use toolgym_reward::acebench::{decode, normal_checker};
/// use toolgym_reward::pycall::PyVal;
/// let functions = PyVal::from_json(&serde_json::json!([{"name": "get_weather",
///     "parameters": {"type": "object", "properties": {"city": {"type": "string"},
///     "days": {"type": "integer"}}, "required": ["city"]}}]));
/// let answer = PyVal::from_json(&serde_json::json!({"get_weather": {"city": "New York", "days": 3}}));
/// let out = decode("[get_weather(city='new york', days=30)]").unwrap();
/// // Strings compare standardised; integers are only type-checked (a quirk).
/// assert!(normal_checker(&functions, &out, &answer).unwrap().valid);
/// let out = decode("[get_weather(city='Paris')]").unwrap();
/// assert_eq!(normal_checker(&functions, &out, &answer).unwrap().error_type, "value_error:string");
/// ```
pub fn normal_checker(functions: &PyVal, output: &PyVal, answer: &PyVal) -> Checked {
    let PyVal::List(calls) = output else {
        return Ok(AceOutcome::fail(
            "wrong_output_format",
            "The output format does not meet the specified requirements.",
        ));
    };
    let PyVal::Dict(expected) = answer else {
        return Err(crash(
            "AttributeError",
            format!(
                "'{}' object has no attribute 'items'",
                answer.py_type().name()
            ),
        ));
    };
    if calls.len() != expected.len() {
        return Ok(AceOutcome::fail(
            "wrong functions number",
            "The number of functions does not match the answer.",
        ));
    }
    let mut answers: Vec<(String, String, &PyVal)> = Vec::with_capacity(expected.len());
    for (k, v) in expected {
        let Some(key) = k.as_str() else {
            return Err(crash("TypeError", "expected string or bytes-like object"));
        };
        answers.push((key.to_string(), strip_index_suffix(key).to_string(), v));
    }
    // `sum_key_list`: names in first-seen order with counts.
    let mut output_counts: Vec<(PyVal, usize)> = Vec::new();
    for call in calls {
        let PyVal::Dict(entries) = call else {
            return Ok(AceOutcome::fail(
                "wrong_output_format",
                "The output format does not meet the specified requirements.",
            ));
        };
        for (k, _) in entries {
            match output_counts.iter_mut().find(|(n, _)| n.py_eq(k)) {
                Some((_, c)) => *c += 1,
                None => output_counts.push((k.clone(), 1)),
            }
        }
    }
    let mut answer_counts: Vec<(String, usize)> = Vec::new();
    for (_, name, _) in &answers {
        match answer_counts.iter_mut().find(|(n, _)| n == name) {
            Some((_, c)) => *c += 1,
            None => answer_counts.push((name.clone(), 1)),
        }
    }
    let count_of = |name: &PyVal| {
        answer_counts
            .iter()
            .find(|(n, _)| name.as_str() == Some(n.as_str()))
            .map(|(_, c)| *c)
    };
    for (name, _) in &output_counts {
        if count_of(name).is_none() {
            return Ok(AceOutcome::fail(
                "function_mismatch",
                format!(
                    "extra function detected: {} is not in the ground truth",
                    name.py_str()
                ),
            ));
        }
    }
    for (name, _) in &answer_counts {
        if !output_counts
            .iter()
            .any(|(n, _)| n.as_str() == Some(name.as_str()))
        {
            return Ok(AceOutcome::fail(
                "function_mismatch",
                format!("extra function detected: {name} is not in the ground truth"),
            ));
        }
    }
    for (name, count) in &output_counts {
        let want = count_of(name).unwrap_or(0);
        if want != *count {
            return Ok(AceOutcome::fail(
                "function_mismatch",
                format!(
                    "incorrect count for function {}: [expected: {want}, actual: {count}]",
                    name.py_str()
                ),
            ));
        }
    }
    let mut result = AceOutcome::ok();
    for (key, name, params) in &answers {
        let description = find_description(functions, key)?;
        let expected_call = PyVal::Dict(vec![(PyVal::Str(name.clone()), (*params).clone())]);
        for call in calls {
            let (call_name, _) = first_entry(call)?;
            if call_name.as_str() == Some(name.as_str()) {
                let Some(description) = description else {
                    return Err(crash("TypeError", "'NoneType' object is not subscriptable"));
                };
                result = simple_function_checker(description, call, &expected_call)?;
                if result.valid {
                    break;
                }
            } else {
                result = AceOutcome::fail("simple_function_checker:unclear", "wrong_function");
            }
        }
        if !result.valid {
            return Ok(result);
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_suffixes() {
        assert_eq!(strip_index_suffix("f_1"), "f");
        assert_eq!(strip_index_suffix("f_1_12"), "f_1");
        assert_eq!(strip_index_suffix("f1"), "f1");
        assert_eq!(strip_index_suffix("f_"), "f_");
        assert_eq!(strip_index_suffix("_3"), "");
    }
}
