//! One BFCL test case as the checker needs it: category, function docs,
//! possible answer ([`BfclExpected`], the ground-truth type of the BFCL
//! rules).

use crate::pycall::PyVal;
use serde_json::Value;
use std::fmt;

/// The single-turn Python categories the checker handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// `simple_python` (400 cases).
    SimplePython,
    /// `multiple` (200).
    Multiple,
    /// `parallel` (200).
    Parallel,
    /// `parallel_multiple` (200).
    ParallelMultiple,
    /// `live_simple` (258).
    LiveSimple,
    /// `live_multiple` (1053).
    LiveMultiple,
    /// `live_parallel` (16).
    LiveParallel,
    /// `live_parallel_multiple` (24).
    LiveParallelMultiple,
    /// `irrelevance` (240): no call may be made.
    Irrelevance,
    /// `live_irrelevance` (884): no call may be made.
    LiveIrrelevance,
    /// `live_relevance` (16): some call must be made.
    LiveRelevance,
}

/// Which official checker a category goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckerKind {
    /// `simple_function_checker` on the only call.
    Simple,
    /// `multiple_function_checker`.
    Multiple,
    /// `parallel_function_checker_no_order`.
    Parallel,
    /// No call allowed (irrelevance rule).
    Irrelevance,
    /// Some call required (relevance rule).
    Relevance,
}

impl Category {
    /// Every category, in leaderboard order.
    pub const ALL: [Category; 11] = [
        Category::SimplePython,
        Category::Multiple,
        Category::Parallel,
        Category::ParallelMultiple,
        Category::LiveSimple,
        Category::LiveMultiple,
        Category::LiveParallel,
        Category::LiveParallelMultiple,
        Category::Irrelevance,
        Category::LiveIrrelevance,
        Category::LiveRelevance,
    ];

    /// The official name (`simple_python`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::SimplePython => "simple_python",
            Category::Multiple => "multiple",
            Category::Parallel => "parallel",
            Category::ParallelMultiple => "parallel_multiple",
            Category::LiveSimple => "live_simple",
            Category::LiveMultiple => "live_multiple",
            Category::LiveParallel => "live_parallel",
            Category::LiveParallelMultiple => "live_parallel_multiple",
            Category::Irrelevance => "irrelevance",
            Category::LiveIrrelevance => "live_irrelevance",
            Category::LiveRelevance => "live_relevance",
        }
    }

    /// From the official name.
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// From a case id: the part before the last `_` (`live_multiple_23-5-0`
    /// → `live_multiple`), as BFCL derives it.
    pub fn from_id(id: &str) -> Option<Category> {
        Category::from_name(id.rsplit_once('_')?.0)
    }

    /// The checker the official dispatch picks (substring tests on the
    /// name: `parallel`, then `multiple`, else simple; `relevance` /
    /// `irrelevance` go to the relevance runner).
    pub fn checker(self) -> CheckerKind {
        let n = self.as_str();
        if n.contains("irrelevance") {
            CheckerKind::Irrelevance
        } else if n.contains("relevance") {
            CheckerKind::Relevance
        } else if n.contains("parallel") {
            CheckerKind::Parallel
        } else if n.contains("multiple") {
            CheckerKind::Multiple
        } else {
            CheckerKind::Simple
        }
    }

    /// Whether the category has a possible-answer file (the AST ones).
    pub fn has_answers(self) -> bool {
        matches!(
            self.checker(),
            CheckerKind::Simple | CheckerKind::Multiple | CheckerKind::Parallel
        )
    }

    /// Whether it belongs to the live half of the leaderboard.
    pub fn is_live(self) -> bool {
        self.as_str().starts_with("live_")
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parameter type string of BFCL's Python function docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// `string` (checked as `str`).
    String,
    /// `integer` (`int`).
    Integer,
    /// `float` (`float`; an `int` is converted at top level).
    Float,
    /// `boolean` (`bool`).
    Boolean,
    /// `array` (`list`, elements checked against `items`).
    Array,
    /// `tuple` (`list`; a Python tuple is converted).
    Tuple,
    /// `dict` (`dict`).
    Dict,
    /// `any` (checked as `str`!).
    Any,
}

impl ParamType {
    /// From BFCL's type string.
    pub fn from_name(s: &str) -> Option<ParamType> {
        Some(match s {
            "string" => ParamType::String,
            "integer" => ParamType::Integer,
            "float" => ParamType::Float,
            "boolean" => ParamType::Boolean,
            "array" => ParamType::Array,
            "tuple" => ParamType::Tuple,
            "dict" => ParamType::Dict,
            "any" => ParamType::Any,
            _ => return None,
        })
    }

    /// BFCL's type string.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Float => "float",
            ParamType::Boolean => "boolean",
            ParamType::Array => "array",
            ParamType::Tuple => "tuple",
            ParamType::Dict => "dict",
            ParamType::Any => "any",
        }
    }

    /// The Python type the checker compares with (`PYTHON_TYPE_MAPPING`).
    pub fn python(self) -> crate::pycall::PyType {
        use crate::pycall::PyType;
        match self {
            ParamType::String | ParamType::Any => PyType::Str,
            ParamType::Integer => PyType::Int,
            ParamType::Float => PyType::Float,
            ParamType::Boolean => PyType::Bool,
            ParamType::Array | ParamType::Tuple => PyType::List,
            ParamType::Dict => PyType::Dict,
        }
    }

    /// Whether the checker looks at `items` (`array`, `tuple`).
    pub fn is_sequence(self) -> bool {
        matches!(self, ParamType::Array | ParamType::Tuple)
    }
}

/// A parameter's type with its element type, recursively (`items` is
/// required one level deep for `array` / `tuple`; deeper levels are kept
/// when readable, for the strict checker).
#[derive(Clone, Debug, PartialEq)]
pub struct TypeDoc {
    /// The type.
    pub ty: ParamType,
    /// The element type, for sequences.
    pub items: Option<Box<TypeDoc>>,
}

/// One function doc: name, parameter types, required parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionDoc {
    /// The function name as documented (may contain dots).
    pub name: String,
    /// `parameters.properties`, in document order.
    pub params: Vec<(String, TypeDoc)>,
    /// `parameters.required`, in document order.
    pub required: Vec<String>,
}

impl FunctionDoc {
    /// The type of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&TypeDoc> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// One expected call: the function and, per parameter, its allowed values
/// (`""` among them marks the parameter optional).
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedCall {
    /// The function name.
    pub name: String,
    /// Parameter → allowed values, in answer order.
    pub params: Vec<(String, Vec<PyVal>)>,
}

impl ExpectedCall {
    /// The allowed values of `param`.
    pub fn allowed(&self, param: &str) -> Option<&[PyVal]> {
        self.params
            .iter()
            .find(|(n, _)| n == param)
            .map(|(_, v)| v.as_slice())
    }
}

/// The ground truth of the BFCL rules: one test case's category, function
/// docs and possible answer (empty for the (ir)relevance categories).
#[derive(Clone, Debug, PartialEq)]
pub struct BfclExpected {
    /// The case id (`simple_python_16`).
    pub id: String,
    /// The category.
    pub category: Category,
    /// The function docs, in order (the simple checker uses the first).
    pub functions: Vec<FunctionDoc>,
    /// The expected calls (`ground_truth`).
    pub possible_answer: Vec<ExpectedCall>,
}

/// A test case that cannot be read; names the case and the place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("BFCL case {id}: {what}")]
pub struct CaseError {
    /// The case id (or `?`).
    pub id: String,
    /// What is wrong, and where.
    pub what: String,
    /// Whether the fault is in the possible answer (its `ground_truth`),
    /// not in the test entry: which file a loader names.
    pub in_answer: bool,
}

impl BfclExpected {
    /// From a test entry `{"id", "function": [...], ...}` and, for the AST
    /// categories, its possible-answer entry `{"id", "ground_truth": [...]}`.
    /// The category comes from the id.
    ///
    /// ```
    /// use serde_json::json;
    /// use toolgym_reward::bfcl::{BfclExpected, Category};
    /// let entry = json!({"id": "simple_python_0", "function": [{"name": "f",
    ///     "parameters": {"type": "dict", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]});
    /// let answer = json!({"id": "simple_python_0", "ground_truth": [{"f": {"x": [1]}}]});
    /// let case = BfclExpected::from_entry(&entry, Some(&answer)).unwrap();
    /// assert_eq!(case.category, Category::SimplePython);
    /// ```
    pub fn from_entry(entry: &Value, answer: Option<&Value>) -> Result<Self, CaseError> {
        let id = entry
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| CaseError {
                id: "?".into(),
                what: "entry has no string \"id\"".into(),
                in_answer: false,
            })?;
        let category = Category::from_id(id).ok_or_else(|| CaseError {
            id: id.into(),
            what: "the id does not name a supported category".into(),
            in_answer: false,
        })?;
        if let Some(a) = answer {
            let aid = a.get("id").and_then(Value::as_str);
            if aid.is_some_and(|aid| aid != id) {
                return Err(CaseError {
                    id: id.into(),
                    what: format!("possible answer belongs to {:?}", aid.unwrap_or("")),
                    in_answer: true,
                });
            }
        }
        let functions = entry.get("function").unwrap_or(&Value::Null);
        let truth = answer.and_then(|a| a.get("ground_truth"));
        Self::new(id, category, functions, truth)
    }

    /// From the parts: the `function` list and the `ground_truth` list (raw
    /// JSON, as in the BFCL files). The AST categories need both, with
    /// every answered function documented and every type one of BFCL's
    /// (`string integer float boolean array tuple dict any`, sequences with
    /// `items.type`); the (ir)relevance categories need neither.
    pub fn new(
        id: &str,
        category: Category,
        functions: &Value,
        ground_truth: Option<&Value>,
    ) -> Result<Self, CaseError> {
        Self::new_named(
            id,
            category,
            functions,
            ground_truth,
            ["function", "ground_truth"],
        )
    }

    /// [`BfclExpected::new`], its errors naming the two parts `fields`
    /// (the function docs', the possible answer's) as the input spells
    /// them (`toolgym score` records take `functions` and
    /// `possible_answer` too).
    pub(crate) fn new_named(
        id: &str,
        category: Category,
        functions: &Value,
        ground_truth: Option<&Value>,
        [docs_field, answer_field]: [&str; 2],
    ) -> Result<Self, CaseError> {
        let err = |what: String| CaseError {
            id: id.to_string(),
            what,
            in_answer: false,
        };
        // Past the function docs, what is wrong is in the possible answer.
        let answer_err = |what: String| CaseError {
            in_answer: true,
            ..err(what)
        };
        if !category.has_answers() {
            return Ok(Self {
                id: id.into(),
                category,
                functions: Vec::new(),
                possible_answer: Vec::new(),
            });
        }
        let Value::Array(docs) = functions else {
            return Err(err(format!("\"{docs_field}\" is not a list")));
        };
        let functions = docs
            .iter()
            .enumerate()
            .map(|(i, d)| function_doc(d).map_err(|w| err(format!("{docs_field} #{i}: {w}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if functions.is_empty() {
            return Err(err("no function docs".into()));
        }
        let Some(Value::Array(calls)) = ground_truth else {
            return Err(answer_err(format!("no \"{answer_field}\" list")));
        };
        let mut possible_answer = Vec::with_capacity(calls.len());
        for (i, c) in calls.iter().enumerate() {
            let call =
                expected_call(c).map_err(|w| answer_err(format!("{answer_field} #{i}: {w}")))?;
            if category.checker() != CheckerKind::Simple
                && !functions.iter().any(|f| f.name == call.name)
            {
                return Err(answer_err(format!(
                    "{answer_field} #{i}: function {:?} has no doc",
                    call.name
                )));
            }
            possible_answer.push(call);
        }
        if possible_answer.is_empty() {
            return Err(answer_err(format!("empty {answer_field}")));
        }
        Ok(Self {
            id: id.into(),
            category,
            functions,
            possible_answer,
        })
    }

    /// The doc of function `name` (the first with that name).
    pub fn doc(&self, name: &str) -> Option<&FunctionDoc> {
        self.functions.iter().find(|f| f.name == name)
    }
}

fn type_doc(v: &Value, depth: usize, strict: bool) -> Result<Option<TypeDoc>, String> {
    let name = v.get("type").and_then(Value::as_str);
    let Some(ty) = name.and_then(ParamType::from_name) else {
        return if strict {
            Err(format!(
                "unknown type {}",
                v.get("type").unwrap_or(&Value::Null)
            ))
        } else {
            Ok(None)
        };
    };
    let items = if ty.is_sequence() && depth < 32 {
        match v.get("items") {
            Some(items) => type_doc(items, depth + 1, strict && depth == 0)
                .map_err(|e| format!("items: {e}"))?
                .map(Box::new),
            None if strict && depth == 0 => return Err("a sequence without \"items\"".into()),
            None => None,
        }
    } else {
        None
    };
    Ok(Some(TypeDoc { ty, items }))
}

fn function_doc(d: &Value) -> Result<FunctionDoc, String> {
    let name = d
        .get("name")
        .and_then(Value::as_str)
        .ok_or("no string \"name\"")?
        .to_string();
    let params = d.get("parameters").ok_or("no \"parameters\"")?;
    let props = params
        .get("properties")
        .and_then(Value::as_object)
        .ok_or("no \"parameters.properties\" object")?;
    let mut out = Vec::with_capacity(props.len());
    for (p, schema) in props {
        let t = type_doc(schema, 0, true)
            .map_err(|e| format!("{name}: parameter {p:?}: {e}"))?
            .ok_or_else(|| format!("{name}: parameter {p:?}: no type"))?;
        out.push((p.clone(), t));
    }
    let required = match params.get("required") {
        Some(Value::Array(r)) => r
            .iter()
            .map(|x| x.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("{name}: \"required\" holds a non-string"))?,
        _ => return Err(format!("{name}: no \"parameters.required\" list")),
    };
    Ok(FunctionDoc {
        name,
        params: out,
        required,
    })
}

fn expected_call(c: &Value) -> Result<ExpectedCall, String> {
    let obj = c.as_object().ok_or("not an object")?;
    let mut it = obj.iter();
    let (Some((name, params)), None) = (it.next(), it.next()) else {
        return Err("not a single {function: {...}} object".into());
    };
    let params = params
        .as_object()
        .ok_or_else(|| format!("{name}: parameters are not an object"))?;
    let mut out = Vec::with_capacity(params.len());
    for (p, allowed) in params {
        let Value::Array(vals) = allowed else {
            return Err(format!("{name}: allowed values of {p:?} are not a list"));
        };
        out.push((p.clone(), vals.iter().map(PyVal::from_json).collect()));
    }
    Ok(ExpectedCall {
        name: name.clone(),
        params: out,
    })
}
