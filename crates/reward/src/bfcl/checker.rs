//! BFCL's AST checker (`bfcl_eval/eval_checker/ast_eval/ast_checker.py`,
//! bfcl-eval 2026.3.23) for the Python categories, re-implemented on
//! [`PyVal`] with Python's semantics — and, behind [`CheckOptions`], the
//! fixes of the `bfcl-ast-strict` variant.

use super::case::{BfclExpected, CheckerKind, ExpectedCall, FunctionDoc, ParamType, TypeDoc};
use super::decode::DecodeError;
use crate::pycall::{PyType, PyVal};
use crate::Reason;
use std::borrow::Cow;
use std::fmt;

/// How to check. [`CheckOptions::official`] reproduces the official
/// checker, quirks included; [`CheckOptions::strict`] turns every fix on.
/// Each flag names one quirk that the strict variant fixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// The official `underscore_to_dot` model setting (FC models of OpenAI,
    /// Anthropic, Google, …): a documented name `a.b` must be called
    /// `a_b`. Off for prompt-mode models (the name must match exactly).
    pub underscore_to_dot: bool,
    /// Parallel categories: accept when *some* one-to-one assignment of
    /// model calls to expected calls passes (maximum bipartite matching).
    /// Official: greedy first fit — expected call `i` takes the first
    /// unused model call that passes and never gives it back, so a correct
    /// answer can fail when two expected calls accept the same model call.
    pub optimal_matching: bool,
    /// Type checks at every depth against the schema's `items`, with an
    /// `int` accepted wherever a `float` is expected. Official: only the
    /// elements of a top-level array are checked, one level deep, and an
    /// `int` passes for a `float` only at top level (`[1, 2]` for an
    /// array of floats is `type_error:nested`).
    pub deep_types: bool,
    /// Standardise strings (drop ` ,./-_*^`, lowercase, `'` → `"`) at every
    /// depth on both sides. Official: only top-level strings, top-level
    /// list elements and top-level dict values (a string inside a nested
    /// list, or inside a list inside a dict, must match exactly).
    pub deep_standardize: bool,
    /// Treat the optional marker `""` as an allowed value too (official:
    /// `""` passes for an optional string parameter, `[]` for an optional
    /// array, and so does any string that standardises to `""`). When
    /// off, `""` only means "may be omitted" (unless the schema requires
    /// the parameter, where it can only be a value).
    pub empty_marker_is_value: bool,
    /// `bool` equals only `bool`. Official: Python `==`, so `True` matches
    /// an allowed `1` wherever no type check guards (dict values, list
    /// elements, "variable" answers).
    pub strict_bool: bool,
    /// A tuple passes wherever a list does (only Python-syntax outputs
    /// have tuples). Official: a tuple is converted for `tuple` params but
    /// fails the type check of an `array` param.
    pub tuple_as_list: bool,
}

impl CheckOptions {
    /// The official checker, quirks included.
    pub const fn official() -> Self {
        Self {
            underscore_to_dot: false,
            optimal_matching: false,
            deep_types: false,
            deep_standardize: false,
            empty_marker_is_value: true,
            strict_bool: false,
            tuple_as_list: false,
        }
    }

    /// Every quirk fixed (`bfcl-ast-strict`).
    pub const fn strict() -> Self {
        Self {
            underscore_to_dot: false,
            optimal_matching: true,
            deep_types: true,
            deep_standardize: true,
            empty_marker_is_value: false,
            strict_bool: true,
            tuple_as_list: true,
        }
    }

    /// The same options with `underscore_to_dot` set.
    pub const fn with_underscore_to_dot(mut self, on: bool) -> Self {
        self.underscore_to_dot = on;
        self
    }
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self::official()
    }
}

/// The official `error_type` strings (plus one for inputs on which the
/// official checker would raise instead of answering).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// `ast_decoder:decoder_failed`.
    DecoderFailed,
    /// `ast_decoder:decoder_wrong_output_format`.
    DecoderWrongOutputFormat,
    /// `simple_function_checker:wrong_count`.
    SimpleWrongCount,
    /// `multiple_function_checker:wrong_count`.
    MultipleWrongCount,
    /// `parallel_function_checker_no_order:wrong_count`.
    ParallelWrongCount,
    /// `parallel_function_checker_no_order:cannot_find_match`.
    ParallelCannotFindMatch,
    /// `simple_function_checker:wrong_func_name`.
    WrongFuncName,
    /// `simple_function_checker:missing_required`.
    MissingRequired,
    /// `simple_function_checker:unexpected_param`.
    UnexpectedParam,
    /// `simple_function_checker:missing_optional`.
    MissingOptional,
    /// `type_error:simple`.
    TypeErrorSimple,
    /// `type_error:nested`.
    TypeErrorNested,
    /// `value_error:string`.
    ValueErrorString,
    /// `value_error:list/tuple`.
    ValueErrorListTuple,
    /// `value_error:dict_key`.
    ValueErrorDictKey,
    /// `value_error:dict_value`.
    ValueErrorDictValue,
    /// `dict_checker:unclear`.
    DictCheckerUnclear,
    /// `value_error:list_dict_count`.
    ValueErrorListDictCount,
    /// `list_dict_checker:unclear`.
    ListDictCheckerUnclear,
    /// `value_error:others`.
    ValueErrorOthers,
    /// `irrelevance_error:decoder_success`.
    IrrelevanceDecoderSuccess,
    /// `relevance_error:decoder_failed`.
    RelevanceDecoderFailed,
    /// `toolgym:checker_exception`: the official checker would raise
    /// (malformed possible answer, e.g. a non-list where a list is
    /// expected); counted as invalid.
    CheckerException,
}

impl ErrorType {
    /// The official string.
    pub fn as_str(self) -> &'static str {
        use ErrorType::*;
        match self {
            DecoderFailed => "ast_decoder:decoder_failed",
            DecoderWrongOutputFormat => "ast_decoder:decoder_wrong_output_format",
            SimpleWrongCount => "simple_function_checker:wrong_count",
            MultipleWrongCount => "multiple_function_checker:wrong_count",
            ParallelWrongCount => "parallel_function_checker_no_order:wrong_count",
            ParallelCannotFindMatch => "parallel_function_checker_no_order:cannot_find_match",
            WrongFuncName => "simple_function_checker:wrong_func_name",
            MissingRequired => "simple_function_checker:missing_required",
            UnexpectedParam => "simple_function_checker:unexpected_param",
            MissingOptional => "simple_function_checker:missing_optional",
            TypeErrorSimple => "type_error:simple",
            TypeErrorNested => "type_error:nested",
            ValueErrorString => "value_error:string",
            ValueErrorListTuple => "value_error:list/tuple",
            ValueErrorDictKey => "value_error:dict_key",
            ValueErrorDictValue => "value_error:dict_value",
            DictCheckerUnclear => "dict_checker:unclear",
            ValueErrorListDictCount => "value_error:list_dict_count",
            ListDictCheckerUnclear => "list_dict_checker:unclear",
            ValueErrorOthers => "value_error:others",
            IrrelevanceDecoderSuccess => "irrelevance_error:decoder_success",
            RelevanceDecoderFailed => "relevance_error:decoder_failed",
            CheckerException => "toolgym:checker_exception",
        }
    }

    /// The [`Reason`] a reward verdict reports for it (wrong counts are
    /// refined into missing / extra calls by [`check`]).
    pub fn reason(self) -> Reason {
        use ErrorType::*;
        match self {
            DecoderFailed => Reason::JsonError,
            DecoderWrongOutputFormat => Reason::SchemaError,
            SimpleWrongCount | MultipleWrongCount | ParallelWrongCount => Reason::MissingCall,
            WrongFuncName => Reason::WrongName,
            IrrelevanceDecoderSuccess => Reason::ExtraCall,
            RelevanceDecoderFailed => Reason::MissingCall,
            CheckerException => Reason::InputError,
            _ => Reason::WrongArgs,
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one model call failed one expected call (parallel categories).
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateError {
    /// The model call's index.
    pub model_index: usize,
    /// Its `sub_error_type`.
    pub error_type: ErrorType,
    /// Its `sub_error`.
    pub error: Vec<String>,
}

/// The official verdict on one entry: `valid`, and for an invalid one the
/// `error_type` and `error` messages (for `cannot_find_match`, the
/// per-candidate errors are in `candidates`), plus the [`Reason`] a reward
/// reports.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// Whether the entry counts as correct.
    pub valid: bool,
    /// The official error type (`None` when valid).
    pub error_type: Option<ErrorType>,
    /// The official messages (empty when valid).
    pub error: Vec<String>,
    /// Parallel categories: why each remaining model call failed the
    /// expected call that could not be matched.
    pub candidates: Vec<CandidateError>,
    /// The reward reason.
    pub reason: Reason,
}

impl CheckOutcome {
    fn ok() -> Self {
        Self {
            valid: true,
            error_type: None,
            error: Vec::new(),
            candidates: Vec::new(),
            reason: Reason::Ok,
        }
    }

    fn fail(f: Fail) -> Self {
        Self {
            valid: false,
            reason: f.error_type.reason(),
            error_type: Some(f.error_type),
            error: f.error,
            candidates: f.candidates,
        }
    }

    /// `error_type: first message` (empty when valid), for a verdict's
    /// detail.
    pub fn detail(&self) -> String {
        match self.error_type {
            None => String::new(),
            Some(t) => match self.error.first() {
                Some(m) => format!("{t}: {m}"),
                None => t.to_string(),
            },
        }
    }
}

#[derive(Clone, Debug)]
struct Fail {
    error_type: ErrorType,
    error: Vec<String>,
    candidates: Vec<CandidateError>,
}

fn fail<T>(error_type: ErrorType, msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        error_type,
        error: vec![msg.into()],
        candidates: Vec::new(),
    })
}

fn crash<T>(what: &str) -> Result<T, Fail> {
    fail(ErrorType::CheckerException, what)
}

type Check = Result<(), Fail>;

fn list_repr(items: &[PyVal]) -> String {
    PyVal::List(items.to_vec()).repr()
}

/// BFCL's `standardize_string`: removes ` ,./-_*^`, lowercases (full
/// Unicode lowercase, like Python's `str.lower`), then `'` → `"`.
///
/// ```
/// use toolgym_reward::bfcl::standardize_string;
/// assert_eq!(standardize_string("New York, NY"), "newyorkny");
/// assert_eq!(standardize_string("It's"), "it\"s");
/// assert_eq!(standardize_string("a\tb!"), "a\tb!");
/// ```
pub fn standardize_string(s: &str) -> String {
    let kept: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | ',' | '.' | '/' | '-' | '_' | '*' | '^'))
        .collect();
    kept.to_lowercase().replace('\'', "\"")
}

/// Strings standardised at every depth (dict keys kept).
fn standardize_deep(v: &PyVal) -> PyVal {
    match v {
        PyVal::Str(s) => PyVal::Str(standardize_string(s)),
        PyVal::List(items) => PyVal::List(items.iter().map(standardize_deep).collect()),
        PyVal::Tuple(items) => PyVal::Tuple(items.iter().map(standardize_deep).collect()),
        PyVal::Set(items) => PyVal::Set(items.iter().map(standardize_deep).collect()),
        PyVal::Dict(e) => PyVal::Dict(
            e.iter()
                .map(|(k, v)| (k.clone(), standardize_deep(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_marker(v: &PyVal) -> bool {
    matches!(v, PyVal::Str(s) if s.is_empty())
}

struct Ctx<'a> {
    o: &'a CheckOptions,
}

impl Ctx<'_> {
    /// `a == b` under the options.
    fn eq(&self, a: &PyVal, b: &PyVal) -> bool {
        if !self.o.strict_bool && !self.o.tuple_as_list {
            return a.py_eq(b);
        }
        strict_eq(a, b, self.o.tuple_as_list)
    }

    fn contains(&self, values: &[PyVal], v: &PyVal) -> bool {
        values.iter().any(|x| self.eq(v, x))
    }

    /// A top-level string (or list element / dict value) standardised.
    fn std_top(&self, v: &PyVal) -> PyVal {
        match v {
            PyVal::Str(s) => PyVal::Str(standardize_string(s)),
            other if self.o.deep_standardize => standardize_deep(other),
            other => other.clone(),
        }
    }
}

/// `==` with `bool` distinct from numbers, and lists equal to tuples when
/// `tuple_as_list`.
fn strict_eq(a: &PyVal, b: &PyVal, tuple_as_list: bool) -> bool {
    use PyVal as V;
    let seq = |x: &[PyVal], y: &[PyVal]| {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| strict_eq(p, q, tuple_as_list))
    };
    match (a, b) {
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Bool(_), _) | (_, V::Bool(_)) => false,
        (V::List(x), V::List(y)) | (V::Tuple(x), V::Tuple(y)) => seq(x, y),
        (V::List(x), V::Tuple(y)) | (V::Tuple(x), V::List(y)) if tuple_as_list => seq(x, y),
        (V::Dict(x), V::Dict(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(k2, _)| k.py_eq(k2))
                        .is_some_and(|(_, v2)| strict_eq(v, v2, tuple_as_list))
                })
        }
        _ => a.py_eq(b),
    }
}

/// BFCL's `get_possible_answer_type`: the type of the first allowed value
/// that is not `""`.
fn answer_type(allowed: &[PyVal]) -> Option<PyType> {
    allowed.iter().find(|v| !is_marker(v)).map(PyVal::py_type)
}

/// Iterates a Python sequence as the checker does with `range(len(x))`:
/// a list's elements, a string's characters; anything else would raise.
fn as_seq(v: &PyVal) -> Option<Cow<'_, [PyVal]>> {
    match v {
        PyVal::List(items) | PyVal::Tuple(items) => Some(Cow::Borrowed(items)),
        // The checker indexes `x[i]` for `i in range(len(x))`: an empty
        // dict or set passes (no index is taken), another raises.
        PyVal::Dict(entries) if entries.is_empty() => Some(Cow::Borrowed(&[])),
        PyVal::Set(items) if items.is_empty() => Some(Cow::Borrowed(&[])),
        PyVal::Str(s) => Some(Cow::Owned(
            s.chars().map(|c| PyVal::Str(c.to_string())).collect(),
        )),
        _ => None,
    }
}

/// Python's `len(x)`, where it has one.
fn py_len(v: &PyVal) -> Option<usize> {
    match v {
        PyVal::List(items) | PyVal::Tuple(items) | PyVal::Set(items) => Some(items.len()),
        PyVal::Dict(entries) => Some(entries.len()),
        PyVal::Str(s) => Some(s.chars().count()),
        PyVal::Bytes(b) => Some(b.len()),
        _ => None,
    }
}

/// Python's `"" in x` for a list, tuple or set (element), a dict (key) or
/// a string (substring).
fn has_marker(v: &PyVal) -> Option<bool> {
    match v {
        PyVal::List(items) | PyVal::Tuple(items) | PyVal::Set(items) => {
            Some(items.iter().any(is_marker))
        }
        PyVal::Dict(entries) => Some(entries.iter().any(|(k, _)| is_marker(k))),
        PyVal::Str(_) => Some(true),
        _ => None,
    }
}

impl Ctx<'_> {
    fn conforms(&self, v: &PyVal, td: &TypeDoc) -> bool {
        let t = v.py_type();
        let want = td.ty.python();
        let type_ok = t == want
            || (want == PyType::Float && t == PyType::Int)
            || (want == PyType::List && t == PyType::Tuple && self.o.tuple_as_list);
        if !type_ok {
            return false;
        }
        match (&td.items, v) {
            (Some(items), PyVal::List(elems) | PyVal::Tuple(elems)) if td.ty.is_sequence() => {
                elems.iter().all(|e| self.conforms(e, items))
            }
            _ => true,
        }
    }

    /// BFCL's `type_checker`; `Ok(is_variable)`.
    fn type_check(
        &self,
        param: &str,
        value: &PyVal,
        allowed: &[PyVal],
        td: &TypeDoc,
    ) -> Result<bool, Fail> {
        let expected = td.ty.python();
        let nested = if td.ty.is_sequence() {
            td.items.as_deref()
        } else {
            None
        };
        let pa_type = answer_type(allowed);
        let is_variable = pa_type.is_some_and(|t| t != expected);
        let vt = value.py_type();
        let mut nested_failed = false;
        if vt == expected {
            let Some(items) = nested else {
                return Ok(is_variable);
            };
            let elems: &[PyVal] = match value {
                PyVal::List(e) => e,
                _ => &[],
            };
            for item in allowed {
                let mut ok = true;
                if let PyVal::List(allowed_elems) = item {
                    let elem_type = answer_type(allowed_elems);
                    for v in elems {
                        let fine = if self.o.deep_types {
                            self.conforms(v, items)
                        } else {
                            v.py_type() == items.ty.python()
                        };
                        // "Variable" elements: the allowed list's element type
                        // differs from the schema's and the value has it. (When
                        // the two types agree this adds nothing to `fine` in the
                        // official check; in the deep check it must not bypass
                        // the inner levels.)
                        let variable =
                            elem_type.is_some_and(|t| t == v.py_type() && t != items.ty.python());
                        if !fine && !variable {
                            ok = false;
                            break;
                        }
                    }
                }
                if ok {
                    return Ok(is_variable);
                }
            }
            nested_failed = true;
        }
        if pa_type.is_some_and(|t| t == vt) {
            if nested_failed {
                return fail(
                    ErrorType::TypeErrorNested,
                    format!(
                        "Nested type checking failed for parameter {}. Expected outer type {} with inner type {}. Parameter value: {}.",
                        crate::pycall::str_repr(param),
                        td.ty.as_str(),
                        nested.map_or("None", |n| py_class(n.ty)),
                        value.repr()
                    ),
                );
            }
            return Ok(true);
        }
        fail(
            ErrorType::TypeErrorSimple,
            format!(
                "Incorrect type for parameter {}. Expected type {}, got {}. Parameter value: {}.",
                crate::pycall::str_repr(param),
                td.ty.as_str(),
                vt.name(),
                value.repr()
            ),
        )
    }

    fn string_check(
        &self,
        param: &str,
        value: &str,
        allowed: &[PyVal],
        marker_is_value: bool,
    ) -> Check {
        let v = standardize_string(value);
        let ok = allowed.iter().any(|a| match a {
            PyVal::Str(s) if s.is_empty() && !marker_is_value => false,
            PyVal::Str(s) => standardize_string(s) == v,
            _ => false,
        });
        if ok {
            return Ok(());
        }
        fail(
            ErrorType::ValueErrorString,
            format!(
                "Invalid value for parameter {}: {}. Expected one of {}. Case insensitive.",
                crate::pycall::str_repr(param),
                crate::pycall::str_repr(value),
                list_repr(allowed)
            ),
        )
    }

    fn list_check(
        &self,
        param: &str,
        value: &PyVal,
        allowed: &[PyVal],
        marker_is_value: bool,
    ) -> Check {
        let elems: &[PyVal] = match value {
            PyVal::List(e) | PyVal::Tuple(e) => e,
            _ => return crash("list_checker on a non-list"),
        };
        let model = PyVal::List(elems.iter().map(|e| self.std_top(e)).collect());
        let mut candidates = Vec::with_capacity(allowed.len());
        for a in allowed {
            if is_marker(a) && !marker_is_value {
                continue;
            }
            let Some(seq) = as_seq(a) else {
                return crash("list_checker: an allowed value cannot be indexed (Python raises)");
            };
            candidates.push(PyVal::List(seq.iter().map(|e| self.std_top(e)).collect()));
        }
        if self.contains(&candidates, &model) {
            return Ok(());
        }
        fail(
            ErrorType::ValueErrorListTuple,
            format!(
                "Invalid value for parameter {}: {}. Expected one of {}.",
                crate::pycall::str_repr(param),
                value.repr(),
                list_repr(allowed)
            ),
        )
    }

    fn dict_check(&self, value: &PyVal, allowed: &[PyVal]) -> Check {
        let mut result = Fail {
            error_type: ErrorType::DictCheckerUnclear,
            error: Vec::new(),
            candidates: Vec::new(),
        };
        for a in allowed {
            if is_marker(a) {
                continue;
            }
            result = Fail {
                error_type: ErrorType::DictCheckerUnclear,
                error: Vec::new(),
                candidates: Vec::new(),
            };
            let PyVal::Dict(answer) = a else {
                return crash("dict_checker: an allowed value is not a dict");
            };
            let PyVal::Dict(model) = value else {
                return crash("dict_checker on a non-dict");
            };
            let mut ok = true;
            for (k, v) in model {
                let Some((_, vals)) = answer.iter().find(|(ak, _)| ak.py_eq(k)) else {
                    result
                        .error
                        .push(format!("Unexpected dict key parameter: '{}'.", k.py_str()));
                    result.error_type = ErrorType::ValueErrorDictKey;
                    ok = false;
                    break;
                };
                let std_v = self.std_top(v);
                let Some(seq) = as_seq(vals) else {
                    return crash("dict_checker: allowed values cannot be indexed (Python raises)");
                };
                let std_vals: Vec<PyVal> = seq
                    .iter()
                    .filter(|x| self.o.empty_marker_is_value || !is_marker(x))
                    .map(|x| self.std_top(x))
                    .collect();
                if !self.contains(&std_vals, &std_v) {
                    result.error.push(format!(
                        "Invalid value for parameter {}: {}. Expected one of {}.",
                        k.repr(),
                        v.repr(),
                        list_repr(&std_vals)
                    ));
                    result.error_type = ErrorType::ValueErrorDictValue;
                    ok = false;
                    break;
                }
            }
            for (k, vals) in answer {
                if !model.iter().any(|(mk, _)| mk.py_eq(k)) {
                    let Some(optional) = has_marker(vals) else {
                        return crash("dict_checker: `\"\" in` allowed values raises in Python");
                    };
                    if !optional {
                        result
                            .error
                            .push(format!("Missing dict key parameter: '{}'.", k.py_str()));
                        result.error_type = ErrorType::ValueErrorDictKey;
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return Ok(());
            }
        }
        Err(result)
    }

    fn list_dict_check(&self, value: &PyVal, allowed: &[PyVal], marker_is_value: bool) -> Check {
        let model: &[PyVal] = match value {
            PyVal::List(e) | PyVal::Tuple(e) => e,
            _ => return crash("list_dict_checker on a non-list"),
        };
        let mut result: Check = Err(Fail {
            error_type: ErrorType::ListDictCheckerUnclear,
            error: Vec::new(),
            candidates: Vec::new(),
        });
        for a in allowed {
            if is_marker(a) && !marker_is_value {
                continue;
            }
            // `len()` first, and a value of another length is passed over;
            // only one of the model's length is indexed.
            let Some(len) = py_len(a) else {
                return crash("list_dict_checker: an allowed value has no len()");
            };
            if len != model.len() {
                result = fail(
                    ErrorType::ValueErrorListDictCount,
                    "Wrong number of dictionaries in the list.",
                );
                continue;
            }
            let seq: &[PyVal] = match a {
                PyVal::List(items) | PyVal::Tuple(items) => items,
                _ if model.is_empty() => &[],
                _ => {
                    return crash(
                        "list_dict_checker: an allowed value is not a list (Python raises)",
                    )
                }
            };
            let mut ok = true;
            for (m, want) in model.iter().zip(seq.iter()) {
                result = self.dict_check(m, std::slice::from_ref(want));
                if result.is_err() {
                    ok = false;
                    break;
                }
            }
            if ok {
                return Ok(());
            }
        }
        result
    }

    /// BFCL's `simple_function_checker` for one model call dict.
    fn simple(&self, doc: &FunctionDoc, call: &PyVal, answer: &ExpectedCall) -> Check {
        let name = if self.o.underscore_to_dot && doc.name.contains('.') {
            doc.name.replace('.', "_")
        } else {
            doc.name.clone()
        };
        let params = match call {
            PyVal::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(name.as_str()))
                .map(|(_, v)| v),
            _ => None,
        };
        let Some(params) = params else {
            return fail(
                ErrorType::WrongFuncName,
                format!(
                    "Function name {} not found in model output.",
                    crate::pycall::str_repr(&name)
                ),
            );
        };
        let PyVal::Dict(params) = params else {
            return crash("model parameters are not a dict");
        };
        let has = |p: &str| params.iter().any(|(k, _)| k.as_str() == Some(p));
        for p in &doc.required {
            if !has(p) {
                return fail(
                    ErrorType::MissingRequired,
                    format!(
                        "Missing required parameter: {}.",
                        crate::pycall::str_repr(p)
                    ),
                );
            }
        }
        for (key, value) in params {
            let found = key
                .as_str()
                .and_then(|k| Some((k, doc.param(k)?, answer.allowed(k)?)));
            let Some((p, td, allowed)) = found else {
                return fail(
                    ErrorType::UnexpectedParam,
                    format!("Unexpected parameter: {}.", key.repr()),
                );
            };
            let mut value = Cow::Borrowed(value);
            if let PyVal::Tuple(items) = value.as_ref() {
                if td.ty == ParamType::Tuple || (self.o.tuple_as_list && td.ty == ParamType::Array)
                {
                    value = Cow::Owned(PyVal::List(items.clone()));
                }
            }
            if let (ParamType::Float, PyVal::Int(i)) = (td.ty, value.as_ref()) {
                value = Cow::Owned(PyVal::Float(*i as f64));
            }
            let value = value.as_ref();
            let is_variable = self.type_check(p, value, allowed, td)?;
            let marker_is_value =
                self.o.empty_marker_is_value || doc.required.iter().any(|r| r == p);
            if !is_variable {
                let items_dict = td.ty.is_sequence()
                    && td.items.as_ref().is_some_and(|i| i.ty == ParamType::Dict);
                match td.ty.python() {
                    PyType::Dict => {
                        self.dict_check(value, allowed)?;
                        continue;
                    }
                    PyType::List if items_dict => {
                        self.list_dict_check(value, allowed, marker_is_value)?;
                        continue;
                    }
                    PyType::Str => {
                        let s = value.as_str().unwrap_or_default();
                        self.string_check(p, s, allowed, marker_is_value)?;
                        continue;
                    }
                    PyType::List => {
                        self.list_check(p, value, allowed, marker_is_value)?;
                        continue;
                    }
                    _ => {}
                }
            }
            let candidates: Cow<'_, [PyVal]> = if marker_is_value {
                Cow::Borrowed(allowed)
            } else {
                Cow::Owned(allowed.iter().filter(|a| !is_marker(a)).cloned().collect())
            };
            if !self.contains(&candidates, value) {
                return fail(
                    ErrorType::ValueErrorOthers,
                    format!(
                        "Invalid value for parameter {}: {}. Expected one of {}.",
                        crate::pycall::str_repr(p),
                        value.repr(),
                        list_repr(allowed)
                    ),
                );
            }
        }
        for (p, allowed) in &answer.params {
            if !has(p) && !allowed.iter().any(is_marker) {
                return fail(
                    ErrorType::MissingOptional,
                    format!(
                        "Optional parameter {} not provided and not marked as optional.",
                        crate::pycall::str_repr(p)
                    ),
                );
            }
        }
        Ok(())
    }

    fn parallel(&self, case: &BfclExpected, outputs: &[PyVal]) -> Check {
        let answers = &case.possible_answer;
        if outputs.len() != answers.len() {
            return fail(ErrorType::ParallelWrongCount, "Wrong number of functions.");
        }
        let docs: Vec<&FunctionDoc> = answers
            .iter()
            .map(|a| case.doc(&a.name))
            .collect::<Option<_>>()
            .ok_or_else(|| Fail {
                error_type: ErrorType::CheckerException,
                error: vec!["an expected function has no doc".into()],
                candidates: Vec::new(),
            })?;
        if self.o.optimal_matching
            && perfect_matching(answers.len(), |i, j| {
                self.simple(docs[i], &outputs[j], &answers[i]).is_ok()
            })
        {
            return Ok(());
        }
        let mut matched: Vec<usize> = Vec::new();
        for (i, answer) in answers.iter().enumerate() {
            let mut candidates = Vec::new();
            let mut found = false;
            for (j, out) in outputs.iter().enumerate() {
                if matched.contains(&j) {
                    continue;
                }
                match self.simple(docs[i], out, answer) {
                    Ok(()) => {
                        matched.push(j);
                        found = true;
                        break;
                    }
                    Err(f) => candidates.push(CandidateError {
                        model_index: j,
                        error_type: f.error_type,
                        error: f.error,
                    }),
                }
            }
            if !found {
                let considered: Vec<String> = (0..outputs.len())
                    .filter(|j| !matched.contains(j))
                    .map(|j| j.to_string())
                    .collect();
                let mut error = vec![format!(
                    "Could not find a matching function among index [{}] of model output for index {i} of possible answers.",
                    considered.join(", ")
                )];
                error.extend(candidates.iter().map(|c| {
                    format!(
                        "Model Result Index {}: {}: {}",
                        c.model_index,
                        c.error_type,
                        c.error.join(" ")
                    )
                }));
                return Err(Fail {
                    error_type: ErrorType::ParallelCannotFindMatch,
                    error,
                    candidates,
                });
            }
        }
        Ok(())
    }
}

/// Whether an `n`×`n` bipartite graph given by `ok(i, j)` has a perfect
/// matching (Kuhn's augmenting paths; `ok` is evaluated once per pair).
fn perfect_matching(n: usize, ok: impl Fn(usize, usize) -> bool) -> bool {
    let adj: Vec<Vec<bool>> = (0..n).map(|i| (0..n).map(|j| ok(i, j)).collect()).collect();
    let mut owner: Vec<Option<usize>> = vec![None; n];
    fn augment(
        i: usize,
        adj: &[Vec<bool>],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for j in 0..adj.len() {
            if adj[i][j] && !seen[j] {
                seen[j] = true;
                if owner[j].is_none_or(|k| augment(k, adj, seen, owner)) {
                    owner[j] = Some(i);
                    return true;
                }
            }
        }
        false
    }
    (0..n).all(|i| augment(i, &adj, &mut vec![false; n], &mut owner))
}

fn py_class(t: ParamType) -> &'static str {
    match t.python() {
        PyType::Str => "<class 'str'>",
        PyType::Int => "<class 'int'>",
        PyType::Float => "<class 'float'>",
        PyType::Bool => "<class 'bool'>",
        PyType::List => "<class 'list'>",
        _ => "<class 'dict'>",
    }
}

/// BFCL's `is_function_calling_format_output`: a list of single-key dicts
/// whose value is a dict (`[]` passes).
pub fn is_function_calling_format(decoded: &PyVal) -> bool {
    let PyVal::List(items) = decoded else {
        return false;
    };
    items
        .iter()
        .all(|i| matches!(i, PyVal::Dict(e) if e.len() == 1 && matches!(e[0].1, PyVal::Dict(_))))
}

/// BFCL's `is_empty_output`: not in call format, `[]`, or `[{}]`.
pub fn is_empty_output(decoded: &PyVal) -> bool {
    if !is_function_calling_format(decoded) {
        return true;
    }
    match decoded {
        PyVal::List(items) => {
            items.is_empty()
                || (items.len() == 1 && matches!(&items[0], PyVal::Dict(e) if e.is_empty()))
        }
        _ => true,
    }
}

/// The official verdict for one entry, given what the decoder produced
/// (`Err` when decoding raised): the AST pipeline (decode → output format
/// → `ast_checker`) for the AST categories, the relevance rules for the
/// others.
///
/// ```
/// use serde_json::json;
/// use toolgym_reward::bfcl::{check, BfclExpected, CheckOptions};
/// use toolgym_reward::pycall::PyVal;
/// let entry = json!({"id": "simple_python_0", "function": [{"name": "f",
///     "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]});
/// let answer = json!({"id": "simple_python_0", "ground_truth": [{"f": {"city": ["New York"]}}]});
/// let case = BfclExpected::from_entry(&entry, Some(&answer)).unwrap();
/// let out = PyVal::from_json(&json!([{"f": {"city": "new york"}}]));
/// assert!(check(&case, Ok(&out), &CheckOptions::official()).valid);
/// let out = PyVal::from_json(&json!([{"f": {"city": "Boston"}}]));
/// let v = check(&case, Ok(&out), &CheckOptions::official());
/// assert_eq!(v.error_type.unwrap().as_str(), "value_error:string");
/// ```
pub fn check(
    case: &BfclExpected,
    decoded: Result<&PyVal, &DecodeError>,
    options: &CheckOptions,
) -> CheckOutcome {
    let kind = case.category.checker();
    match kind {
        CheckerKind::Irrelevance | CheckerKind::Relevance => {
            // A reply this decoder cannot finish but the official one
            // reads (`%` formatting, integers past 128 bits, …) holds a
            // call there.
            let contains_call = match decoded {
                Ok(d) => !is_empty_output(d),
                Err(e) => e.official_decoder_reads(),
            };
            if kind == CheckerKind::Irrelevance && contains_call {
                return CheckOutcome::fail(Fail {
                    error_type: ErrorType::IrrelevanceDecoderSuccess,
                    error: vec!["Valid syntax. Successfully decode AST when it should not.".into()],
                    candidates: Vec::new(),
                });
            }
            if kind == CheckerKind::Relevance && !contains_call {
                let why = decoded.err().map(|e| e.to_string()).unwrap_or_default();
                return CheckOutcome::fail(Fail {
                    error_type: ErrorType::RelevanceDecoderFailed,
                    error: vec![format!(
                        "Invalid syntax. Failed to decode AST when it should have. {why}"
                    )],
                    candidates: Vec::new(),
                });
            }
            return CheckOutcome::ok();
        }
        _ => {}
    }
    let decoded = match decoded {
        Ok(d) => d,
        Err(e) => {
            return CheckOutcome::fail(Fail {
                error_type: ErrorType::DecoderFailed,
                error: vec![format!("Invalid syntax. Failed to decode AST. {e}")],
                candidates: Vec::new(),
            })
        }
    };
    let outputs = match decoded {
        PyVal::List(items) if is_function_calling_format(decoded) => items,
        _ => {
            return CheckOutcome::fail(Fail {
                error_type: ErrorType::DecoderWrongOutputFormat,
                error: vec!["Did not output in the specified format. Note: the model_result is wrapped in a string to ensure json serializability.".into()],
                candidates: Vec::new(),
            })
        }
    };
    let ctx = Ctx { o: options };
    let answers = &case.possible_answer;
    let result = match kind {
        CheckerKind::Parallel => ctx.parallel(case, outputs),
        CheckerKind::Simple | CheckerKind::Multiple => {
            // Simple: `len(model_output) != 1`, then the FIRST doc whatever
            // the answer's name. Multiple: `len != len(answers)` (always 1
            // in the data), then the doc of the answer's function. Both
            // check only the first call against the first answer.
            let (count_error, want, doc) = if kind == CheckerKind::Simple {
                (ErrorType::SimpleWrongCount, 1, case.functions.first())
            } else {
                (
                    ErrorType::MultipleWrongCount,
                    answers.len(),
                    answers.first().and_then(|a| case.doc(&a.name)),
                )
            };
            if outputs.len() != want {
                fail(count_error, "Wrong number of functions.")
            } else {
                match (doc, answers.first(), outputs.first()) {
                    (Some(doc), Some(a), Some(out)) => ctx.simple(doc, out, a),
                    _ => crash("no function doc for the expected call"),
                }
            }
        }
        CheckerKind::Irrelevance | CheckerKind::Relevance => Ok(()),
    };
    match result {
        Ok(()) => CheckOutcome::ok(),
        Err(f) => {
            let mut out = CheckOutcome::fail(f);
            match out.error_type {
                Some(
                    ErrorType::SimpleWrongCount
                    | ErrorType::MultipleWrongCount
                    | ErrorType::ParallelWrongCount,
                ) => {
                    let want = if kind == CheckerKind::Simple {
                        1
                    } else {
                        answers.len()
                    };
                    out.reason = if outputs.len() > want {
                        Reason::ExtraCall
                    } else {
                        Reason::MissingCall
                    };
                }
                Some(ErrorType::ParallelCannotFindMatch) => {
                    let all_names = !out.candidates.is_empty()
                        && out
                            .candidates
                            .iter()
                            .all(|c| c.error_type == ErrorType::WrongFuncName);
                    out.reason = if all_names {
                        Reason::WrongName
                    } else {
                        Reason::WrongArgs
                    };
                }
                _ => {}
            }
            out
        }
    }
}
