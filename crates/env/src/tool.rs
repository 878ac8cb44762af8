//! Tools: their specs (name, description, JSON-Schema parameters), the
//! errors a call can produce, and the [`Tool`] trait for handlers.

use crate::schema::{self, empty_object_schema, SchemaError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// What a model is told about a tool: its name, what it does, and the JSON
/// Schema of its arguments object.
///
/// Reads both the OpenAI form `{"type": "function", "function": {...}}` and
/// the bare form `{"name", "description", "parameters"}` (xLAM, ToolACE,
/// BFCL) with [`ToolSpec::from_json`], normalising non-standard parameter
/// forms (see [`crate::schema`]); writes either with
/// [`ToolSpec::to_openai`] / [`ToolSpec::to_bare`].
///
/// ```
/// use toolgym_env::ToolSpec;
/// use serde_json::json;
/// let spec = ToolSpec::builder("get_weather", "Weather forecast for a city.")
///     .required("city", "string", "City name.")
///     .optional("days", "integer", "Days ahead.")
///     .build();
/// assert_eq!(spec.parameters["required"], json!(["city"]));
///
/// let openai = spec.to_openai();
/// assert_eq!(openai["type"], "function");
/// assert_eq!(ToolSpec::from_json(&openai).unwrap(), spec);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredToolSpec")]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments object.
    #[serde(default = "empty_object_schema")]
    pub parameters: Value,
    /// The parameters exactly as the source gave them, when normalisation
    /// changed them (xLAM's per-parameter map, BFCL's `"dict"` types).
    /// Templates that must reproduce a dataset's prompt render these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_parameters: Option<Value>,
}

/// A spec as a task file holds it. Read into a [`ToolSpec`] with its
/// parameters normalised, as [`ToolSpec::from_json`] reads data (the
/// original kept when it changed, or as the file kept it): a hand-written
/// task file with xLAM's per-parameter form or BFCL's types is then
/// checked against the JSON Schema they mean, not against a map that JSON
/// Schema would read as allowing anything.
#[derive(Deserialize)]
struct StoredToolSpec {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "empty_object_schema")]
    parameters: Value,
    #[serde(default)]
    original_parameters: Option<Value>,
}

impl TryFrom<StoredToolSpec> for ToolSpec {
    type Error = String;

    fn try_from(s: StoredToolSpec) -> Result<Self, String> {
        let StoredToolSpec {
            name,
            description,
            parameters,
            original_parameters,
        } = s;
        // Normalising is idempotent: what toolgym wrote reads back as it
        // is, and parameters edited by hand beside a kept original are
        // normalised too.
        let normalized =
            schema::normalize_parameters(&parameters).map_err(|e| format!("tool {name:?}: {e}"))?;
        let original = original_parameters.or_else(|| normalized.original(parameters));
        Ok(Self {
            name,
            description,
            parameters: normalized.schema,
            original_parameters: original,
        })
    }
}

/// Why a JSON value is not a tool spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The value is not an object.
    #[error("a tool spec must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// A list of specs is not a JSON list.
    #[error("the tools must be a JSON list of specs, found {0}")]
    NotAList(&'static str),
    /// One spec of a list is wrong.
    #[error("tool {index} of the list: {source}")]
    InList {
        /// Its 0-based place in the list.
        index: usize,
        /// What is wrong with it.
        source: Box<SpecError>,
    },
    /// Two specs of one list share a name, so a call could not say which
    /// of them it means.
    #[error("tool {again} of the list repeats the name {name:?} of tool {first}")]
    RepeatedName {
        /// The name.
        name: String,
        /// 0-based place of its first spec.
        first: usize,
        /// 0-based place of the spec that repeats it.
        again: usize,
    },
    /// No non-empty string `name`.
    #[error("tool spec has no string \"name\"")]
    MissingName,
    /// `description` is present but not a string.
    #[error("tool {0:?}: \"description\" is not a string")]
    BadDescription(String),
    /// The parameters cannot be read as a schema.
    #[error("tool {name:?}: {source}")]
    Parameters {
        /// The tool.
        name: String,
        /// What is wrong.
        source: SchemaError,
    },
}

impl ToolSpec {
    /// A spec from parts; `parameters` is used as given (it should be a JSON
    /// Schema for an object; see [`ToolSpec::from_json`] to normalise).
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            parameters,
            original_parameters: None,
        }
    }

    /// Starts a spec with no parameters; add them with the builder's methods.
    pub fn builder(name: impl Into<String>, description: impl Into<String>) -> ToolSpecBuilder {
        ToolSpecBuilder {
            spec: Self::new(name, description, empty_object_schema()),
            required: Vec::new(),
        }
    }

    /// Reads a spec in the OpenAI (`{"type": "function", "function": {...}}`)
    /// or bare form, normalising the parameters to JSON Schema and keeping
    /// the original in [`ToolSpec::original_parameters`] if it changed.
    ///
    /// ```
    /// use toolgym_env::ToolSpec;
    /// use serde_json::json;
    /// let xlam = json!({"name": "find_peak", "description": "Finds a peak.",
    ///                   "parameters": {"nums": {"description": "Numbers.", "type": "List[int]"}}});
    /// let spec = ToolSpec::from_json(&xlam).unwrap();
    /// assert_eq!(spec.parameters["properties"]["nums"]["type"], "array");
    /// assert_eq!(spec.original_parameters.as_ref(), Some(&xlam["parameters"]));
    /// ```
    pub fn from_json(value: &Value) -> Result<Self, SpecError> {
        Self::read(value, schema::normalize_parameters)
    }

    /// [`ToolSpec::from_json`] for a tool written by hand (a Python
    /// `Tool`): the parameters are normalised by
    /// [`schema::normalize_parameters_strict`], which refuses what the
    /// lenient reading of data drops (a non-list `required`, an unknown
    /// type name, a negative `minLength`…) instead of loosening the tool's
    /// checks.
    ///
    /// ```
    /// use toolgym_env::ToolSpec;
    /// use serde_json::json;
    /// let typo = json!({"name": "f", "parameters": {"type": "object",
    ///                   "properties": {"x": {"type": "string"}}, "required": "x"}});
    /// assert!(ToolSpec::from_json(&typo).is_ok()); // x silently optional
    /// let e = ToolSpec::from_json_strict(&typo).unwrap_err().to_string();
    /// assert!(e.contains("/required: not a list of property names"), "{e}");
    /// ```
    pub fn from_json_strict(value: &Value) -> Result<Self, SpecError> {
        Self::read(value, schema::normalize_parameters_strict)
    }

    fn read(
        value: &Value,
        normalize: fn(&Value) -> Result<schema::Normalized, SchemaError>,
    ) -> Result<Self, SpecError> {
        let obj =
            value
                .as_object()
                .ok_or(SpecError::NotAnObject(toolgym_reward::json_type_name(
                    value,
                )))?;
        let obj = match obj.get("function") {
            Some(Value::Object(f)) if obj.get("type").is_none_or(|t| t == "function") => f,
            _ => obj,
        };
        let name = match obj.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => return Err(SpecError::MissingName),
        };
        let description = match obj.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(SpecError::BadDescription(name)),
        };
        let raw = obj.get("parameters").cloned().unwrap_or(Value::Null);
        let normalized = normalize(&raw).map_err(|source| SpecError::Parameters {
            name: name.clone(),
            source,
        })?;
        Ok(Self {
            name,
            description,
            original_parameters: normalized.original(raw),
            parameters: normalized.schema,
        })
    }

    /// Reads a list of specs (a JSON array in either form). Names must be
    /// unique within the list: a call names the tool it means.
    pub fn list_from_json(value: &Value) -> Result<Vec<Self>, SpecError> {
        match value {
            Value::Array(items) => {
                let specs = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        Self::from_json(item).map_err(|e| SpecError::InList {
                            index,
                            source: Box::new(e),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Self::check_unique(&specs)?;
                Ok(specs)
            }
            other => Err(SpecError::NotAList(toolgym_reward::json_type_name(other))),
        }
    }

    /// [`SpecError::RepeatedName`] for the first spec of `specs` whose name
    /// an earlier one has: a call could not say which of them it means.
    pub fn check_unique(specs: &[ToolSpec]) -> Result<(), SpecError> {
        let mut seen = std::collections::HashMap::with_capacity(specs.len());
        for (again, spec) in specs.iter().enumerate() {
            if let Some(&first) = seen.get(spec.name.as_str()) {
                return Err(SpecError::RepeatedName {
                    name: spec.name.clone(),
                    first,
                    again,
                });
            }
            seen.insert(spec.name.as_str(), again);
        }
        Ok(())
    }

    /// The bare form `{"name", "description", "parameters"}` (normalised
    /// parameters).
    pub fn to_bare(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        })
    }

    /// The OpenAI form `{"type": "function", "function": {...}}`.
    pub fn to_openai(&self) -> Value {
        json!({"type": "function", "function": self.to_bare()})
    }

    /// The parameters as the source gave them (the original when kept,
    /// else the normalised schema).
    pub fn source_parameters(&self) -> &Value {
        self.original_parameters
            .as_ref()
            .unwrap_or(&self.parameters)
    }

    /// Names of the declared parameters, in schema order, each with whether
    /// it is required.
    pub fn parameter_names(&self) -> Vec<(String, bool)> {
        let required: Vec<&str> = self
            .parameters
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        self.parameters
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| {
                p.keys()
                    .map(|k| (k.clone(), required.contains(&k.as_str())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Builds a [`ToolSpec`] parameter by parameter.
#[derive(Clone, Debug)]
pub struct ToolSpecBuilder {
    spec: ToolSpec,
    required: Vec<Value>,
}

impl ToolSpecBuilder {
    /// Adds a required parameter of a JSON Schema type (`"string"`,
    /// `"integer"`, `"number"`, `"boolean"`, `"array"`, `"object"`).
    pub fn required(self, name: &str, json_type: &str, description: &str) -> Self {
        self.param(name, param_schema(json_type, description), true)
    }

    /// Adds an optional parameter.
    pub fn optional(self, name: &str, json_type: &str, description: &str) -> Self {
        self.param(name, param_schema(json_type, description), false)
    }

    /// Adds a required string parameter that takes one of `values`.
    pub fn required_enum(self, name: &str, values: &[&str], description: &str) -> Self {
        self.param(name, enum_schema(values, description), true)
    }

    /// Adds an optional string parameter that takes one of `values`.
    pub fn optional_enum(self, name: &str, values: &[&str], description: &str) -> Self {
        self.param(name, enum_schema(values, description), false)
    }

    /// Bounds a numeric parameter added before: `minimum` and/or `maximum`
    /// (inclusive). Integral bounds are written as integers.
    ///
    /// # Panics
    ///
    /// When no parameter `name` was added before: a misspelt name would
    /// otherwise leave the parameter unbounded without a word (a mistake
    /// in the code that builds the spec, not in any input).
    ///
    /// ```
    /// use serde_json::json;
    /// use toolgym_env::ToolSpec;
    /// let spec = ToolSpec::builder("reserve", "Reserves items.")
    ///     .required("quantity", "integer", "How many.")
    ///     .bounds("quantity", Some(1.0), Some(99.0))
    ///     .required_enum("unit", &["box", "piece"], "")
    ///     .strict()
    ///     .build();
    /// assert_eq!(spec.parameters["properties"]["quantity"]["minimum"], json!(1));
    /// assert_eq!(spec.parameters["additionalProperties"], json!(false));
    /// assert_eq!(spec.parameters["properties"]["unit"]["enum"], json!(["box", "piece"]));
    /// ```
    #[track_caller]
    pub fn bounds(mut self, name: &str, minimum: Option<f64>, maximum: Option<f64>) -> Self {
        let prop = self
            .spec
            .parameters
            .get_mut("properties")
            .and_then(|p| p.get_mut(name))
            .and_then(Value::as_object_mut);
        let Some(prop) = prop else {
            panic!(
                "ToolSpecBuilder::bounds: tool {:?} has no parameter {name:?} (add it before bounding it)",
                self.spec.name
            );
        };
        for (key, bound) in [("minimum", minimum), ("maximum", maximum)] {
            if let Some(b) = bound {
                prop.insert(key.into(), number(b));
            }
        }
        self
    }

    /// Rejects arguments the schema does not declare
    /// (`"additionalProperties": false`): a made-up key becomes an
    /// `invalid_arguments` error instead of passing silently.
    pub fn strict(mut self) -> Self {
        if let Some(p) = self.spec.parameters.as_object_mut() {
            p.insert("additionalProperties".into(), Value::Bool(false));
        }
        self
    }

    /// Adds a parameter with a full schema (enums, arrays, …).
    pub fn param(mut self, name: &str, schema: Value, required: bool) -> Self {
        if let Some(props) = self
            .spec
            .parameters
            .get_mut("properties")
            .and_then(Value::as_object_mut)
        {
            props.insert(name.to_string(), schema);
        }
        if required {
            self.required.push(Value::String(name.to_string()));
        }
        self
    }

    /// The finished spec.
    pub fn build(mut self) -> ToolSpec {
        if !self.required.is_empty() {
            if let Some(p) = self.spec.parameters.as_object_mut() {
                p.insert("required".into(), Value::Array(self.required));
            }
        }
        self.spec
    }
}

fn enum_schema(values: &[&str], description: &str) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!("string"));
    m.insert("enum".into(), json!(values));
    if !description.is_empty() {
        m.insert("description".into(), json!(description));
    }
    Value::Object(m)
}

/// An integral float as a JSON integer, else as a float.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

fn param_schema(json_type: &str, description: &str) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(json_type));
    if !description.is_empty() {
        m.insert("description".into(), json!(description));
    }
    Value::Object(m)
}

/// One problem with a call's arguments, at a JSON pointer into them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgumentProblem {
    /// JSON pointer into the arguments (`""` for the object itself,
    /// `"/days"` for a field).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Most characters of one argument problem's message or path in a tool
/// message ([`ToolError::to_observation`]); longer ones end in `…`.
pub const PROBLEM_CHARS: usize = 300;

/// Most argument problems listed in a tool message; the rest are counted
/// (`more_problems`).
pub const PROBLEMS_SHOWN: usize = 20;

/// `text` cut to at most `max` characters (the last one `…` when cut).
fn cut_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text[at..].chars().count() > 1 => format!("{}…", &text[..at]),
        _ => text.to_string(),
    }
}

/// Why a tool call produced no result. Every variant becomes a structured
/// observation for the model ([`ToolError::to_observation`]); none panics.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// No tool of that name is registered.
    #[error("unknown tool {name:?}; available: {}", available.join(", "))]
    UnknownTool {
        /// The name called.
        name: String,
        /// The registered names.
        available: Vec<String>,
    },
    /// The arguments do not satisfy the tool's schema.
    #[error("invalid arguments for {tool}: {}", problems.iter().map(|p| format!("{} {}", if p.path.is_empty() { "(root)" } else { &p.path }, p.message)).collect::<Vec<_>>().join("; "))]
    InvalidArguments {
        /// The tool.
        tool: String,
        /// What is wrong, one entry per violation.
        problems: Vec<ArgumentProblem>,
    },
    /// The handler refused or failed (e.g. "insufficient funds").
    #[error("{message}")]
    Failed {
        /// What went wrong, for the model.
        message: String,
        /// Optional structured detail.
        data: Option<Value>,
    },
    /// The handler panicked; the panic was caught.
    #[error("tool {tool} crashed: {message}")]
    Panicked {
        /// The tool.
        tool: String,
        /// The panic message.
        message: String,
    },
    /// The tool is known but has no handler: a spec-only registration, or
    /// a tool the task shows that the env did not register.
    #[error("tool {0} cannot be executed here")]
    NotExecutable(String),
}

impl ToolError {
    /// A handler failure with a message.
    ///
    /// ```
    /// use toolgym_env::ToolError;
    /// let e = ToolError::failed("insufficient funds");
    /// assert_eq!(e.to_string(), "insufficient funds");
    /// assert_eq!(e.to_observation()["error"]["kind"], "tool_error");
    /// ```
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError::Failed {
            message: message.into(),
            data: None,
        }
    }

    /// A short machine-readable kind: `unknown_tool`, `invalid_arguments`,
    /// `tool_error`, `tool_crashed`, `not_executable`.
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::UnknownTool { .. } => "unknown_tool",
            ToolError::InvalidArguments { .. } => "invalid_arguments",
            ToolError::Failed { .. } => "tool_error",
            ToolError::Panicked { .. } => "tool_crashed",
            ToolError::NotExecutable(_) => "not_executable",
        }
    }

    /// The error as the JSON a model sees in the tool message:
    /// `{"error": {"kind": ..., "message": ..., ...details}}`. The problems
    /// of invalid arguments are listed once, under `problems` (the message
    /// names the tool): the first [`PROBLEMS_SHOWN`], the rest counted in
    /// `more_problems`, each path and message cut at [`PROBLEM_CHARS`]
    /// characters: a schema message quotes the offending value and a path
    /// the keys, which the model wrote and may have made long or many, and
    /// the context should not hold them whole.
    pub fn to_observation(&self) -> Value {
        let mut e = Map::new();
        e.insert("kind".into(), json!(self.kind()));
        let message = match self {
            ToolError::InvalidArguments { tool, problems } => format!(
                "invalid arguments for {tool}: {} problem(s), listed in problems",
                problems.len()
            ),
            other => other.to_string(),
        };
        e.insert("message".into(), json!(message));
        match self {
            ToolError::UnknownTool { available, .. } => {
                e.insert("available_tools".into(), json!(available));
            }
            ToolError::InvalidArguments { problems, .. } => {
                let cut: Vec<Value> = problems
                    .iter()
                    .take(PROBLEMS_SHOWN)
                    .map(|p| {
                        json!({"path": cut_chars(&p.path, PROBLEM_CHARS),
                               "message": cut_chars(&p.message, PROBLEM_CHARS)})
                    })
                    .collect();
                e.insert("problems".into(), Value::Array(cut));
                if problems.len() > PROBLEMS_SHOWN {
                    e.insert(
                        "more_problems".into(),
                        json!(problems.len() - PROBLEMS_SHOWN),
                    );
                }
            }
            ToolError::Failed { data: Some(d), .. } => {
                e.insert("data".into(), d.clone());
            }
            _ => {}
        }
        json!({ "error": Value::Object(e) })
    }
}

/// A tool with a handler, for [`crate::ToolRegistry`]. `S` is the
/// per-episode environment state the handler may read and change (`()` for
/// stateless tools). Plain closures work too: see
/// [`crate::ToolRegistry::register_fn`] and
/// [`crate::ToolRegistry::register_stateful`].
///
/// ```
/// use serde_json::{json, Value};
/// use toolgym_env::{Tool, ToolError, ToolRegistry, ToolSpec};
///
/// struct Add;
/// impl Tool for Add {
///     fn spec(&self) -> ToolSpec {
///         ToolSpec::builder("add", "Adds two integers.")
///             .required("a", "integer", "").required("b", "integer", "").build()
///     }
///     fn call(&self, args: &Value, _state: &mut ()) -> Result<Value, ToolError> {
///         let a = args["a"].as_i64().unwrap_or(0);
///         let b = args["b"].as_i64().unwrap_or(0);
///         a.checked_add(b).map(Value::from).ok_or_else(|| ToolError::failed("overflow"))
///     }
/// }
/// let mut reg = ToolRegistry::new();
/// reg.register(Add).unwrap();
/// let call = toolgym_reward::Call::new("add", json!({"a": 2, "b": 3})).unwrap();
/// assert_eq!(reg.call(&call, &mut ()).unwrap(), json!(5));
/// ```
pub trait Tool<S = ()>: Send + Sync {
    /// The tool's spec (read once, at registration).
    fn spec(&self) -> ToolSpec;

    /// Runs the tool on arguments that already passed schema validation.
    fn call(&self, arguments: &Value, state: &mut S) -> Result<Value, ToolError>;
}
