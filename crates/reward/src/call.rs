//! A tool call: a function name and its JSON arguments.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One tool call, as predicted by a model or given as ground truth.
///
/// Serialises as `{"name": "...", "arguments": {...}}`, the form used in the
/// Tool-N1 prompt and in xLAM / ToolACE ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The tool's name.
    pub name: String,
    /// The arguments, a JSON object (key order is irrelevant for matching).
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

impl Call {
    /// A call from a name and a JSON value that must be an object (or null,
    /// read as no arguments).
    ///
    /// ```
    /// use toolgym_reward::Call;
    /// let c = Call::new("get_weather", serde_json::json!({"city": "Paris"})).unwrap();
    /// assert_eq!(c.arguments["city"], "Paris");
    /// assert!(Call::new("f", serde_json::json!([1])).is_err());
    /// ```
    pub fn new(name: impl Into<String>, arguments: Value) -> Result<Self, CallShapeError> {
        let arguments = match arguments {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => return Err(CallShapeError::ArgumentsNotObject(json_type_name(&other))),
        };
        Ok(Self {
            name: name.into(),
            arguments,
        })
    }

    /// Reads a list of calls from JSON text: a list of `{"name","arguments"}`
    /// objects, a single such object, or a JSON string encoding either.
    /// `arguments` given as a JSON-encoded string is decoded.
    pub fn list_from_json(text: &str) -> Result<Vec<Call>, CallShapeError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| CallShapeError::Json(e.to_string()))?;
        Self::list_from_value(value)
    }

    /// Like [`Call::list_from_json`] but from an already parsed value.
    pub fn list_from_value(value: Value) -> Result<Vec<Call>, CallShapeError> {
        crate::parse::calls_from_value(value)
    }
}

/// Why a JSON value is not a call or a list of calls.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallShapeError {
    /// The text is not valid JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The value is neither an object nor a list of objects.
    #[error("expected a call object or a list of call objects, found {0}")]
    NotCallList(&'static str),
    /// A list element is not an object.
    #[error("call #{index} is {found}, not an object")]
    CallNotObject {
        /// Position in the list.
        index: usize,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A call object has no string `name`.
    #[error("call #{index} has no string \"name\"")]
    MissingName {
        /// Position in the list.
        index: usize,
    },
    /// A call object has no `arguments` field.
    #[error("call #{index} has no \"arguments\"")]
    MissingArguments {
        /// Position in the list.
        index: usize,
    },
    /// `arguments` is not an object (nor a JSON string encoding one).
    #[error("arguments are {0}, not an object")]
    ArgumentsNotObject(&'static str),
}

/// The JSON type of a value, as a word for error messages.
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
