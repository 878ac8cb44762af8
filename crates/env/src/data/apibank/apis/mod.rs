//! The APIs themselves: each one's `call` (run on an episode's
//! [`ApiBankState`]) and `check_api_call_correctness`, ported from the
//! official `apis/*.py` with their quirks, plus the type conversion of
//! `ToolManager.api_call`.
//!
//! Families: [`account`], [`schedule`] (agenda, alarm, reminder),
//! [`meeting`], [`hospital`], [`health`], [`home`], [`calculator`],
//! [`lookup`] (the stored-data lookups and the rest), [`search`]
//! (SearchEngine's BM25 ranking), [`network`] (Dictionary and Translate,
//! which need the network in the original).

pub(crate) mod account;
pub(crate) mod calculator;
mod catalog;
pub(crate) mod health;
pub(crate) mod home;
pub(crate) mod hospital;
pub(crate) mod lookup;
pub(crate) mod meeting;
pub(crate) mod network;
pub(crate) mod schedule;
pub(crate) mod search;
pub(crate) mod tokenize;

use super::value::{self, get};
use super::world::ApiBankState;
use super::Network;
use crate::tool::ToolSpec;
use serde_json::{json, Map, Value};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson::py_strip;

pub(crate) use catalog::APIS;

/// The declared type of an input parameter (`input_parameters[k]['type']`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ParamType {
    /// `str`: passed as given.
    Str,
    /// `int`: the text must be digits (`str.isdigit`), then `int()`.
    Int,
    /// `bool`: `value == 'True'`.
    Bool,
    /// `list`: passed as given (a string).
    List,
    /// `list(str)`: passed as given (a string).
    ListStr,
}

impl ParamType {
    /// The type's name in the API description.
    pub(crate) fn python_name(self) -> &'static str {
        match self {
            ParamType::Str => "str",
            ParamType::Int => "int",
            ParamType::Bool => "bool",
            ParamType::List => "list",
            ParamType::ListStr => "list(str)",
        }
    }
}

/// One input parameter.
#[derive(Debug)]
pub(crate) struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub description: &'static str,
    /// Whether Python's `call` has no default for it (a missing one is a
    /// `TypeError`).
    pub required: bool,
}

/// An API as `ToolManager` describes it.
#[derive(Debug)]
pub(crate) struct ApiInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub inputs: &'static [Param],
    /// `(name, type, description)`.
    pub outputs: &'static [(&'static str, &'static str, &'static str)],
}

impl ApiInfo {
    /// The input parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&'static Param> {
        self.inputs.iter().find(|p| p.name == name)
    }

    /// `ToolManager.get_api_description(name)`: `json.dumps` of
    /// `{"name", "description", "input_parameters", "output_parameters"}`.
    pub(crate) fn description_line(&self) -> String {
        use crate::json::write_string;
        let mut out = String::from("{\"name\": ");
        write_string(&mut out, self.name, true);
        out.push_str(", \"description\": ");
        write_string(&mut out, self.description, true);
        out.push_str(", \"input_parameters\": {");
        for (i, p) in self.inputs.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_string(&mut out, p.name, true);
            out.push_str(": {\"type\": ");
            write_string(&mut out, p.ty.python_name(), true);
            out.push_str(", \"description\": ");
            write_string(&mut out, p.description, true);
            out.push('}');
        }
        out.push_str("}, \"output_parameters\": {");
        for (i, (name, ty, desc)) in self.outputs.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            write_string(&mut out, name, true);
            out.push_str(": {\"type\": ");
            write_string(&mut out, ty, true);
            out.push_str(", \"description\": ");
            write_string(&mut out, desc, true);
            out.push('}');
        }
        out.push_str("}}");
        out
    }

    /// The API as a toolgym tool: a JSON Schema with each parameter's JSON
    /// type (`str` → string, `int` → integer, `bool` → boolean, `list` →
    /// array, `list(str)` → array of strings), the parameters Python's
    /// `call` requires, and no other keys (`ToolManager` rejects unknown
    /// names). The original `input_parameters` are kept as
    /// [`ToolSpec::original_parameters`].
    pub(crate) fn tool_spec(&self) -> ToolSpec {
        let mut props = Map::new();
        let mut original = Map::new();
        let mut required = Vec::new();
        for p in self.inputs {
            let schema = match p.ty {
                ParamType::Str => json!({"type": "string", "description": p.description}),
                ParamType::Int => json!({"type": "integer", "description": p.description}),
                ParamType::Bool => json!({"type": "boolean", "description": p.description}),
                ParamType::List => json!({"type": "array", "description": p.description}),
                ParamType::ListStr => {
                    json!({"type": "array", "items": {"type": "string"}, "description": p.description})
                }
            };
            props.insert(p.name.to_string(), schema);
            original.insert(
                p.name.to_string(),
                json!({"type": p.ty.python_name(), "description": p.description}),
            );
            if p.required {
                required.push(Value::String(p.name.to_string()));
            }
        }
        let mut schema =
            json!({"type": "object", "properties": props, "additionalProperties": false});
        if !required.is_empty() {
            schema["required"] = Value::Array(required);
        }
        ToolSpec {
            original_parameters: Some(Value::Object(original)),
            ..ToolSpec::new(self.name, self.description, schema)
        }
    }
}

/// The catalog entry of an API.
pub(crate) fn info(name: &str) -> Option<&'static ApiInfo> {
    APIS.iter().find(|a| a.name == name)
}

/// Why `ToolManager.api_call` rejected the parameters before calling the
/// API (an `AssertionError`, or `int()` failing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// `invalid parameter name. parameter: …`.
    Name(String),
    /// `invalid parameter type. parameter: …` (an `int` that is not digits).
    Type(String, String),
    /// Characters `isdigit` accepts but `int` cannot read (`'²'`, `'①'`):
    /// Python raises `ValueError` in the call.
    NonAsciiDigits(String, String),
    /// A required argument is missing (`TypeError` from `call`).
    Missing(String),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Name(k) => write!(f, "invalid parameter name. parameter: {k}"),
            Rejected::Type(k, v) => write!(f, "invalid parameter type. parameter: {v} (for {k})"),
            Rejected::NonAsciiDigits(k, v) => write!(
                f,
                "invalid literal for int() with base 10: {v:?} (parameter {k}: digits int() \
                 cannot read)"
            ),
            Rejected::Missing(k) => write!(f, "call() missing 1 required argument: '{k}'"),
        }
    }
}

/// The converted keyword arguments of a call, in the order given.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Args(pub Vec<(String, PyVal)>);

impl Args {
    pub(crate) fn get(&self, name: &str) -> Option<&PyVal> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// The value of a parameter, `None` when not given.
    pub(crate) fn value(&self, name: &str) -> PyVal {
        self.get(name).cloned().unwrap_or(PyVal::None)
    }

    /// A `str` parameter's text (the conversion keeps `str` values as
    /// strings, so anything else is an error Python would also raise on).
    pub(crate) fn text(&self, name: &str) -> Result<&str, String> {
        match self.get(name) {
            Some(PyVal::Str(s)) => Ok(s),
            Some(other) => Err(format!(
                "'{}' object has no attribute 'strip'",
                other.py_type().name()
            )),
            None => Err(format!("missing argument '{name}'")),
        }
    }

    /// `{p: value for every formal parameter}` (defaults `None`).
    pub(crate) fn input(&self, api: &ApiInfo) -> PyVal {
        PyVal::Dict(
            api.inputs
                .iter()
                .map(|p| (PyVal::Str(p.name.to_string()), self.value(p.name)))
                .collect(),
        )
    }

    /// `{first: value, **kwargs}` for the APIs that take `**kwargs`.
    pub(crate) fn input_kwargs(&self, first: &str) -> PyVal {
        let mut entries = vec![(PyVal::Str(first.to_string()), self.value(first))];
        entries.extend(
            self.0
                .iter()
                .filter(|(k, _)| k != first)
                .map(|(k, v)| (PyVal::Str(k.clone()), v.clone())),
        );
        PyVal::Dict(entries)
    }
}

/// `ToolManager.api_call`'s checks and conversion of the parsed (string)
/// parameters, then the missing-argument check of Python's `call`.
pub(crate) fn convert(api: &ApiInfo, params: &[(String, String)]) -> Result<Args, Rejected> {
    let mut out = Vec::with_capacity(params.len());
    for (k, v) in params {
        let p = api.param(k).ok_or_else(|| Rejected::Name(k.clone()))?;
        let value = match p.ty {
            ParamType::Int => int_value(k, v)?,
            ParamType::Bool => PyVal::Bool(v == "True"),
            ParamType::Str | ParamType::List | ParamType::ListStr => PyVal::Str(v.clone()),
        };
        out.push((k.clone(), value));
    }
    if let Some(p) = api
        .inputs
        .iter()
        .find(|p| p.required && !out.iter().any(|(k, _)| k == p.name))
    {
        return Err(Rejected::Missing(p.name.to_string()));
    }
    Ok(Args(out))
}

/// `assert v.isdigit(); int(v)`: digits of any script Python's `int`
/// reads (Unicode decimal digits, category Nd: `'１'`, `'١'`, mixed
/// scripts too). Other characters `isdigit` accepts (`'²'`, `'①'`) make
/// `int` raise: refused (the call fails, as there). Beyond `i128` the value
/// becomes a float: it is then only compared with small recorded numbers
/// or with `2` / `1` (BookHotel), where a float of that size behaves like
/// the big integer.
fn int_value(key: &str, v: &str) -> Result<PyVal, Rejected> {
    if v.is_empty() {
        return Err(Rejected::Type(key.into(), v.into()));
    }
    let ascii: Option<String> = v
        .chars()
        .map(|c| decimal_digit(c).map(|d| char::from(b'0' + d)))
        .collect();
    if let Some(digits) = ascii {
        return Ok(match digits.parse::<i128>() {
            Ok(i) => PyVal::Int(i),
            Err(_) => PyVal::Float(digits.parse::<f64>().unwrap_or(f64::INFINITY)),
        });
    }
    if v.chars()
        .all(|c| decimal_digit(c).is_some() || other_digit(c))
    {
        return Err(Rejected::NonAsciiDigits(key.into(), v.into()));
    }
    Err(Rejected::Type(key.into(), v.into()))
}

/// The zero of each run of ten Unicode decimal digits (category Nd,
/// Unicode 14, as CPython 3.11 has it), in order.
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The characters besides decimal digits whose `isdigit()` is true in
/// CPython 3.11 (Numeric_Type=Digit: superscripts, circled digits…),
/// as inclusive ranges. `'½'` or `'Ⅻ'` are numeric but no digits there.
const OTHER_DIGITS: [(u32, u32); 20] = [
    (0xB2, 0xB3),
    (0xB9, 0xB9),
    (0x1369, 0x1371),
    (0x19DA, 0x19DA),
    (0x2070, 0x2070),
    (0x2074, 0x2079),
    (0x2080, 0x2089),
    (0x2460, 0x2468),
    (0x2474, 0x247C),
    (0x2488, 0x2490),
    (0x24EA, 0x24EA),
    (0x24F5, 0x24FD),
    (0x24FF, 0x24FF),
    (0x2776, 0x277E),
    (0x2780, 0x2788),
    (0x278A, 0x2792),
    (0x10A40, 0x10A43),
    (0x10E60, 0x10E68),
    (0x11052, 0x1105A),
    (0x1F100, 0x1F10A),
];

/// Whether Python's `isdigit()` holds for `c` but it is no decimal digit
/// (`int` cannot read it).
fn other_digit(c: char) -> bool {
    let c = c as u32;
    OTHER_DIGITS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// A Unicode decimal digit's value (what Python's `int` reads it as).
fn decimal_digit(c: char) -> Option<u8> {
    let c = c as u32;
    let i = DECIMAL_ZEROS.partition_point(|&z| z <= c).checked_sub(1)?;
    let d = c - DECIMAL_ZEROS[i];
    (d < 10).then_some(d as u8)
}

/// What `call` returned as `output`: a value, or (ModifyAgenda,
/// QueryMeeting) an `Exception` object, which equals nothing.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Output {
    Value(PyVal),
    ExceptionObject(String),
}

impl Output {
    /// `output == other`.
    pub(crate) fn eq(&self, other: &PyVal) -> bool {
        match self {
            Output::Value(v) => v.py_eq(other),
            Output::ExceptionObject(_) => false,
        }
    }

    /// `str(output)`.
    pub(crate) fn text(&self) -> String {
        match self {
            Output::Value(v) => v.py_str(),
            Output::ExceptionObject(m) => m.clone(),
        }
    }

    pub(crate) fn is_none(&self) -> bool {
        matches!(self, Output::Value(PyVal::None))
    }
}

/// The dict `call` returns.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiResult {
    /// `result['api_name']`, absent for DeleteAccount, ForgotPassword and
    /// RegisterUser.
    pub api_name: Option<&'static str>,
    pub input: PyVal,
    pub output: Output,
    pub exception: Option<String>,
}

impl ApiResult {
    pub(crate) fn new(
        api_name: Option<&'static str>,
        input: PyVal,
        outcome: Result<Output, String>,
    ) -> Self {
        match outcome {
            Ok(output) => Self {
                api_name,
                input,
                output,
                exception: None,
            },
            Err(e) => Self {
                api_name,
                input,
                output: Output::Value(PyVal::None),
                exception: Some(e),
            },
        }
    }

    /// `result['input'][key]`.
    pub(crate) fn input(&self, key: &str) -> Result<&PyVal, Crash> {
        field(&self.input, key, "response['input']")
    }

    /// `response['exception'] == groundtruth['exception']`.
    pub(crate) fn exception_eq(&self, gt: &PyVal) -> Result<bool, Crash> {
        let g = gt_field(gt, "exception")?;
        Ok(match (&self.exception, g) {
            (None, PyVal::None) => true,
            (Some(a), PyVal::Str(b)) => a == b,
            _ => false,
        })
    }

    /// `response['output'] == groundtruth['output']`.
    pub(crate) fn output_eq(&self, gt: &PyVal) -> Result<bool, Crash> {
        Ok(self.output.eq(gt_field(gt, "output")?))
    }

    /// `response['input'] == groundtruth['input']`.
    pub(crate) fn input_eq(&self, gt: &PyVal) -> Result<bool, Crash> {
        Ok(self.input.py_eq(gt_field(gt, "input")?))
    }

    /// The check shared by most APIs: input, output and exception equal.
    pub(crate) fn exact(&self, gt: &PyVal) -> Result<bool, Crash> {
        Ok(self.input_eq(gt)? && self.output_eq(gt)? && self.exception_eq(gt)?)
    }

    /// `response['api_name'] == groundtruth['api_name']`.
    pub(crate) fn api_name_eq(&self, gt: &PyVal) -> Result<bool, Crash> {
        let mine = self
            .api_name
            .ok_or_else(|| Crash::KeyError("response['api_name']".into()))?;
        Ok(gt_field(gt, "api_name")?.py_eq(&PyVal::Str(mine.into())))
    }
}

/// What happened inside a `check_api_call_correctness` that did not return
/// a boolean.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Crash {
    /// A `KeyError`: `evaluator.py` catches it, the sample is wrong.
    KeyError(String),
    /// `assert response['api_name'] == groundtruth['api_name'], "The API
    /// name is not correct."`: caught by the main loop, the sample is wrong.
    ApiNameAssertion,
    /// Any other exception: the official run would stop here; counted as
    /// wrong.
    Other(String),
}

impl std::fmt::Display for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Crash::KeyError(k) => write!(f, "KeyError: {k}"),
            Crash::ApiNameAssertion => f.write_str("AssertionError: The API name is not correct."),
            Crash::Other(m) => f.write_str(m),
        }
    }
}

/// `d[key]` of a dict value (KeyError when missing, TypeError when `d`
/// is not a dict).
pub(crate) fn field<'a>(d: &'a PyVal, key: &str, what: &str) -> Result<&'a PyVal, Crash> {
    match d {
        PyVal::Dict(_) => get(d, key).ok_or_else(|| Crash::KeyError(format!("{what}[{key:?}]"))),
        other => Err(Crash::Other(format!(
            "TypeError: '{}' object is not subscriptable ({what})",
            other.py_type().name()
        ))),
    }
}

/// `groundtruth[key]`.
pub(crate) fn gt_field<'a>(gt: &'a PyVal, key: &str) -> Result<&'a PyVal, Crash> {
    field(gt, key, "groundtruth")
}

/// `groundtruth['input'][key]`.
pub(crate) fn gt_input<'a>(gt: &'a PyVal, key: &str) -> Result<&'a PyVal, Crash> {
    field(gt_field(gt, "input")?, key, "groundtruth['input']")
}

/// A value's text for a string method (`AttributeError` otherwise).
pub(crate) fn text_of(v: &PyVal) -> Result<&str, Crash> {
    match v {
        PyVal::Str(s) => Ok(s),
        other => Err(Crash::Other(format!(
            "AttributeError: '{}' object has no attribute 'strip'",
            other.py_type().name()
        ))),
    }
}

/// `v.strip()`.
pub(crate) fn strip(v: &PyVal) -> Result<String, Crash> {
    Ok(py_strip(text_of(v)?).to_string())
}

/// Python's `str.lower()`.
pub(crate) fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// Python's `str.upper()`.
pub(crate) fn upper(s: &str) -> String {
    s.to_uppercase()
}

/// The content checks: Jaccard similarity of the sets of `split(" ")`
/// words, satisfied when strictly above 0.5.
pub(crate) fn jaccard(a: &str, b: &str, lowercase: bool) -> bool {
    let (a, b) = if lowercase {
        (lower(a), lower(b))
    } else {
        (a.to_string(), b.to_string())
    };
    let sa: std::collections::HashSet<&str> = a.split(' ').collect();
    let sb: std::collections::HashSet<&str> = b.split(' ').collect();
    let inter = sa.intersection(&sb).count();
    let union = sa.union(&sb).count();
    union > 0 && (inter as f64) / (union as f64) > 0.5
}

/// An exception that escaped `call` (so `ToolManager.api_call` raised and
/// `evaluator.py` counted the sample wrong).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Raised {
    /// An exception Python raises out of `call`.
    Error(String),
    /// The official Calculator loops forever on this formula (the run would
    /// hang); counted as wrong.
    Hang(String),
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raised::Error(m) => f.write_str(m),
            Raised::Hang(m) => write!(f, "the official Calculator never returns: {m}"),
        }
    }
}

/// What an API needs while it runs.
pub(crate) struct Ctx<'a> {
    pub state: &'a mut ApiBankState,
    pub network: Network,
}

/// Runs `api` with converted arguments on the episode state.
pub(crate) fn call(
    api: &'static ApiInfo,
    args: &Args,
    cx: &mut Ctx<'_>,
) -> Result<ApiResult, Raised> {
    let n = api.name;
    match n {
        "GetUserToken" | "DeleteAccount" | "ModifyPassword" | "RegisterUser" | "ForgotPassword"
        | "OpenBankAccount" | "QueryBalance" => account::call(api, args, cx),
        "AddAgenda" | "ModifyAgenda" | "QueryAgenda" | "DeleteAgenda" | "AddAlarm"
        | "DeleteAlarm" | "ModifyAlarm" | "QueryAlarm" | "AddReminder" | "ModifyReminder"
        | "QueryReminder" | "DeleteReminder" => schedule::call(api, args, cx),
        "AddMeeting" | "ModifyMeeting" | "QueryMeeting" | "DeleteMeeting" => {
            meeting::call(api, args, cx)
        }
        "AppointmentRegistration"
        | "CancelRegistration"
        | "ModifyRegistration"
        | "QueryRegistration" => hospital::call(api, args, cx),
        "RecordHealthData" | "QueryHealthData" | "SymptomSearch" | "EmergencyKnowledge" => {
            health::call(api, args, cx)
        }
        "QueryScene" | "DeleteScene" | "TimedSwitch" | "CancelTimedSwitch" => {
            home::call(api, args, cx)
        }
        "Calculator" => calculator::call(api, args),
        "Dictionary" | "Translate" => network::call(api, args, cx),
        "SearchEngine" => search::call(api, args, cx),
        _ => lookup::call(api, args, cx),
    }
}

/// Runs `api`'s `check_api_call_correctness(result, groundtruth)`.
pub(crate) fn check(api: &'static ApiInfo, resp: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    match api.name {
        "GetUserToken" | "DeleteAccount" | "ModifyPassword" | "RegisterUser" | "ForgotPassword"
        | "OpenBankAccount" | "QueryBalance" => account::check(api, resp, gt),
        "AddAgenda" | "ModifyAgenda" | "QueryAgenda" | "DeleteAgenda" | "AddAlarm"
        | "DeleteAlarm" | "ModifyAlarm" | "QueryAlarm" | "AddReminder" | "ModifyReminder"
        | "QueryReminder" | "DeleteReminder" => schedule::check(api, resp, gt),
        "AddMeeting" | "ModifyMeeting" | "QueryMeeting" | "DeleteMeeting" => {
            meeting::check(api, resp, gt)
        }
        "AppointmentRegistration"
        | "CancelRegistration"
        | "ModifyRegistration"
        | "QueryRegistration" => hospital::check(api, resp, gt),
        "RecordHealthData" | "QueryHealthData" | "SymptomSearch" | "EmergencyKnowledge" => {
            health::check(api, resp, gt)
        }
        "QueryScene" | "DeleteScene" | "TimedSwitch" | "CancelTimedSwitch" => {
            home::check(api, resp, gt)
        }
        "Calculator" => calculator::check(resp, gt),
        "Dictionary" | "Translate" => network::check(api, resp, gt),
        "SearchEngine" => search::check(resp, gt),
        _ => lookup::check(api, resp, gt),
    }
}

/// CheckToken: the first user (in `Account.json` order) whose token is
/// exactly `token`.
pub(crate) fn check_token(state: &ApiBankState, token: &PyVal) -> Result<String, String> {
    if let PyVal::Dict(users) = state.table("Account") {
        for (name, row) in users {
            let t = get(row, "token").ok_or_else(|| "KeyError: 'token'".to_string())?;
            if t.py_eq(token) {
                return Ok(name.py_str());
            }
        }
    }
    Err("The token is invalid.".into())
}

/// Python's `int(text)` for dict keys (`max(int(i) for i in keys)`).
/// The id a new row of `table` gets, as the Add APIs compute it:
/// `max(int(key) for key in table) + 1`, or 0 for an empty table (a key
/// that is not an integer raises, as `int()` does).
pub(crate) fn next_id(state: &ApiBankState, table: &str) -> Result<i128, String> {
    let keys = value::keys(state.table(table));
    let mut max: Option<i128> = None;
    for k in &keys {
        let n = py_int(k).ok_or_else(|| format!("invalid literal for int(): {}", k.py_str()))?;
        max = Some(max.map_or(n, |m| m.max(n)));
    }
    Ok(max.map_or(0, |m| m + 1))
}

pub(crate) fn py_int(v: &PyVal) -> Option<i128> {
    match v {
        PyVal::Int(i) => Some(*i),
        PyVal::Bool(b) => Some(i128::from(*b)),
        PyVal::Str(s) => {
            let t = py_strip(s);
            let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse::<i128>().ok()
        }
        _ => None,
    }
}

/// A number as `f64` for comparisons (`adult_count > 2`).
pub(crate) fn as_number(v: &PyVal) -> Option<f64> {
    match v {
        PyVal::Int(i) => Some(*i as f64),
        PyVal::Bool(b) => Some(f64::from(u8::from(*b))),
        PyVal::Float(f) => Some(*f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_like_tool_manager() {
        let hotel = info("BookHotel").unwrap();
        let p = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ok = convert(
            hotel,
            &p(&[
                ("hotel_name", "Hilton"),
                ("check_in_time", "2023-01-01"),
                ("check_out_time", "2023-01-02"),
                ("room_count", "01"),
                ("adult_count", "2"),
                ("child_count", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(ok.get("room_count"), Some(&PyVal::Int(1)));
        assert!(matches!(
            convert(hotel, &p(&[("room_count", "one")])),
            Err(Rejected::Type(..))
        ));
        // Decimal digits of any script are read as Python's int reads
        // them (fullwidth, Arabic-Indic, mixed); other digits refused.
        for (written, value) in [("٣", 3), ("１２", 12), ("1٢", 12), ("𝟗", 9)] {
            let args = convert(
                hotel,
                &p(&[
                    ("hotel_name", "Hilton"),
                    ("check_in_time", "2023-01-01"),
                    ("check_out_time", "2023-01-02"),
                    ("room_count", written),
                    ("adult_count", "2"),
                    ("child_count", "0"),
                ]),
            )
            .unwrap();
            assert_eq!(
                args.get("room_count"),
                Some(&PyVal::Int(value)),
                "{written}"
            );
        }
        for other in ["²", "①", "1²"] {
            assert!(matches!(
                convert(hotel, &p(&[("room_count", other)])),
                Err(Rejected::NonAsciiDigits(..))
            ));
        }
        // Numeric, but `isdigit()` is false: Python's type check refuses.
        for numeric in ["½", "Ⅻ"] {
            assert!(matches!(
                convert(hotel, &p(&[("room_count", numeric)])),
                Err(Rejected::Type(..))
            ));
        }
        assert!(matches!(
            convert(hotel, &p(&[("x", "1")])),
            Err(Rejected::Name(_))
        ));
        assert!(matches!(
            convert(hotel, &p(&[("hotel_name", "H")])),
            Err(Rejected::Missing(_))
        ));
        let switch = info("TimedSwitch").unwrap();
        let a = convert(switch, &p(&[("name", "x"), ("time", "t"), ("on", "true")])).unwrap();
        assert_eq!(a.get("on"), Some(&PyVal::Bool(false)));
        assert!(!jaccard("a b c", "a b d", false));
        assert!(jaccard("a b c d", "a b c", false));
        assert!(jaccard("Call Mom", "call mom", true));
    }
}
