//! The [`ToolRegistry`]: tool specs with compiled validators and handlers.

use crate::caught::{catch_quietly, take_panic_message};
use crate::tool::{ArgumentProblem, Tool, ToolError, ToolSpec};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use toolgym_reward::Call;

/// Why a tool could not be registered.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// A tool with this name is already registered.
    #[error("duplicate tool name {0:?}")]
    Duplicate(String),
    /// The name is empty.
    #[error("tool name is empty")]
    EmptyName,
    /// The parameters are not a valid JSON Schema.
    #[error("tool {name:?}: invalid parameter schema: {message}")]
    InvalidSchema {
        /// The tool.
        name: String,
        /// The compiler's message.
        message: String,
    },
    /// The parameters schema does not describe an object.
    #[error("tool {name:?}: parameters must be an object schema, found {found}")]
    NotObjectSchema {
        /// The tool.
        name: String,
        /// What was found.
        found: String,
    },
}

type Handler<S> = Arc<dyn Fn(&Value, &mut S) -> Result<Value, ToolError> + Send + Sync>;

struct Entry<S> {
    spec: ToolSpec,
    validator: jsonschema::Validator,
    handler: Option<Handler<S>>,
}

/// The result of running one call through a registry: what the model sees
/// in the tool message.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    /// The call as made.
    pub call: Call,
    /// The handler's value, or why there is none.
    pub outcome: Result<Value, ToolError>,
}

impl ToolResult {
    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The observation JSON: `{"name": ..., "result": ...}` or
    /// `{"name": ..., "error": {...}}`.
    pub fn to_observation(&self) -> Value {
        match &self.outcome {
            Ok(v) => json!({"name": self.call.name, "result": v}),
            Err(e) => {
                let mut obs = e.to_observation();
                if let Some(m) = obs.as_object_mut() {
                    m.insert("name".into(), json!(self.call.name));
                }
                obs
            }
        }
    }
}

/// Tool specs with their compiled argument validators and handlers.
///
/// `S` is the per-episode state handlers may change (`()` for none). The
/// registry itself is immutable once built and `Send + Sync`: share it in
/// an `Arc` between parallel rollouts, each with its own state.
///
/// Every call is validated against the tool's schema (compiled once, at
/// registration) before its handler runs; an unknown tool, invalid
/// arguments, a handler error or even a handler panic come back as a
/// [`ToolError`], never as a panic.
///
/// ```
/// use serde_json::json;
/// use toolgym_env::{ToolError, ToolRegistry, ToolSpec};
/// use toolgym_reward::Call;
///
/// let mut reg = ToolRegistry::new();
/// let spec = ToolSpec::builder("get_weather", "Weather for a city.")
///     .required("city", "string", "City.").build();
/// reg.register_fn(spec, |args| Ok(json!({"city": args["city"], "sky": "sunny"}))).unwrap();
///
/// let ok = Call::new("get_weather", json!({"city": "Paris"})).unwrap();
/// assert_eq!(reg.call(&ok, &mut ()).unwrap()["sky"], "sunny");
///
/// let bad = Call::new("get_weather", json!({"city": 3})).unwrap();
/// assert!(matches!(reg.call(&bad, &mut ()), Err(ToolError::InvalidArguments { .. })));
/// let unknown = Call::new("get_time", json!({})).unwrap();
/// assert_eq!(reg.call(&unknown, &mut ()).unwrap_err().kind(), "unknown_tool");
/// ```
pub struct ToolRegistry<S = ()> {
    entries: Vec<Entry<S>>,
    by_name: HashMap<String, usize>,
}

impl<S> Default for ToolRegistry<S> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<S> std::fmt::Debug for ToolRegistry<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.names())
            .finish()
    }
}

impl<S: 'static> ToolRegistry<S> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a [`Tool`].
    pub fn register(&mut self, tool: impl Tool<S> + 'static) -> Result<&mut Self, RegistryError> {
        let spec = tool.spec();
        let tool = Arc::new(tool);
        self.insert(
            spec,
            Some(Arc::new(move |args: &Value, state: &mut S| {
                tool.call(args, state)
            })),
        )
    }

    /// Registers a stateless closure `Fn(&Value) -> Result<Value, ToolError>`
    /// (it receives the arguments object).
    pub fn register_fn<F>(&mut self, spec: ToolSpec, f: F) -> Result<&mut Self, RegistryError>
    where
        F: Fn(&Value) -> Result<Value, ToolError> + Send + Sync + 'static,
    {
        self.insert(spec, Some(Arc::new(move |args: &Value, _: &mut S| f(args))))
    }

    /// Registers a closure that reads and changes the episode state.
    pub fn register_stateful<F>(&mut self, spec: ToolSpec, f: F) -> Result<&mut Self, RegistryError>
    where
        F: Fn(&Value, &mut S) -> Result<Value, ToolError> + Send + Sync + 'static,
    {
        self.insert(spec, Some(Arc::new(f)))
    }

    /// Registers a closure that takes typed arguments: after schema
    /// validation the arguments object is deserialised into `A` (a serde
    /// struct), so the handler reads fields instead of picking a JSON value
    /// apart. A whole-number float (`30.0`, an `"integer"` to JSON Schema)
    /// is read as that integer. A value the schema accepts but `A` does
    /// not (a number out of a field's range) becomes
    /// [`ToolError::InvalidArguments`] with the value's path
    /// (`/memo/lines/1`), as schema problems have theirs.
    ///
    /// ```
    /// use serde::Deserialize;
    /// use serde_json::json;
    /// use toolgym_env::{ToolError, ToolRegistry, ToolSpec};
    /// use toolgym_reward::Call;
    ///
    /// #[derive(Deserialize)]
    /// struct Deposit { account: String, amount: i64 }
    ///
    /// let mut reg: ToolRegistry<i64> = ToolRegistry::new();
    /// let spec = ToolSpec::builder("deposit", "Adds money.")
    ///     .required("account", "string", "").required("amount", "integer", "").build();
    /// reg.register_typed(spec, |a: Deposit, total: &mut i64| {
    ///     *total += a.amount;
    ///     Ok(json!({"account": a.account, "total": *total}))
    /// }).unwrap();
    /// let mut total = 10;
    /// let call = Call::new("deposit", json!({"account": "x", "amount": 5})).unwrap();
    /// assert_eq!(reg.call(&call, &mut total).unwrap()["total"], 15);
    /// ```
    pub fn register_typed<A, F>(&mut self, spec: ToolSpec, f: F) -> Result<&mut Self, RegistryError>
    where
        A: serde::de::DeserializeOwned,
        F: Fn(A, &mut S) -> Result<Value, ToolError> + Send + Sync + 'static,
    {
        let tool = spec.name.clone();
        self.register_stateful(spec, move |args, state| {
            // JSON Schema's "integer" takes `30.0`: an integer field reads 30.
            let args = whole_floats_as_integers(args.clone());
            let typed = serde_path_to_error::deserialize(&args).map_err(|e| {
                ToolError::InvalidArguments {
                    tool: tool.clone(),
                    problems: vec![ArgumentProblem {
                        path: json_pointer(e.path()),
                        message: e.inner().to_string(),
                    }],
                }
            })?;
            f(typed, state)
        })
    }

    /// Registers a spec without a handler: calls are validated, and running
    /// one gives [`ToolError::NotExecutable`].
    pub fn register_spec(&mut self, spec: ToolSpec) -> Result<&mut Self, RegistryError> {
        self.insert(spec, None)
    }

    fn insert(
        &mut self,
        spec: ToolSpec,
        handler: Option<Handler<S>>,
    ) -> Result<&mut Self, RegistryError> {
        if spec.name.trim().is_empty() {
            return Err(RegistryError::EmptyName);
        }
        if self.by_name.contains_key(&spec.name) {
            return Err(RegistryError::Duplicate(spec.name));
        }
        match spec.parameters.get("type") {
            None => {}
            Some(Value::String(t)) if t == "object" => {}
            // `["object", "null"]`: arguments are an object all the same.
            Some(Value::Array(ts)) if ts.iter().any(|t| t == "object") => {}
            Some(other) => {
                return Err(RegistryError::NotObjectSchema {
                    name: spec.name.clone(),
                    found: other.to_string(),
                })
            }
        }
        let validator = jsonschema::validator_for(&spec.parameters).map_err(|e| {
            // Where in the schema: the message alone does not say.
            let at = e.instance_path().to_string();
            RegistryError::InvalidSchema {
                name: spec.name.clone(),
                message: if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                },
            }
        })?;
        self.by_name.insert(spec.name.clone(), self.entries.len());
        self.entries.push(Entry {
            spec,
            validator,
            handler,
        });
        Ok(self)
    }
}

impl<S> ToolRegistry<S> {
    /// The registered specs, in registration order.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.entries.iter().map(|e| e.spec.clone()).collect()
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.spec.name.clone()).collect()
    }

    /// The spec of a tool.
    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.by_name.get(name).map(|&i| &self.entries[i].spec)
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no tool is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks a call against the registry: the tool exists and the arguments
    /// satisfy its schema. Every violation is listed.
    pub fn validate(&self, call: &Call) -> Result<(), ToolError> {
        let args = Value::Object(call.arguments.clone());
        self.validate_value(&call.name, &args).map(|_| ())
    }

    fn validate_value(&self, name: &str, args: &Value) -> Result<&Entry<S>, ToolError> {
        let Some(&i) = self.by_name.get(name) else {
            return Err(ToolError::UnknownTool {
                name: name.to_string(),
                available: self.names(),
            });
        };
        let entry = &self.entries[i];
        if entry.validator.is_valid(args) {
            return Ok(entry);
        }
        let problems = entry
            .validator
            .iter_errors(args)
            .map(|e| ArgumentProblem {
                path: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect();
        Err(ToolError::InvalidArguments {
            tool: name.to_string(),
            problems,
        })
    }

    /// Validates and runs a call with the episode state. A handler panic is
    /// caught and reported as [`ToolError::Panicked`] (the state may then be
    /// partly updated). The arguments reach a raw handler as the model
    /// wrote them: JSON Schema's `"integer"` takes `30.0`, which
    /// `as_i64` does not read (`as_f64` does); a typed handler
    /// ([`ToolRegistry::register_typed`]) reads it as 30.
    pub fn call(&self, call: &Call, state: &mut S) -> Result<Value, ToolError> {
        let args = Value::Object(call.arguments.clone());
        let entry = self.validate_value(&call.name, &args)?;
        let Some(handler) = &entry.handler else {
            return Err(ToolError::NotExecutable(call.name.clone()));
        };
        match catch_quietly(|| handler(&args, state)) {
            Ok(result) => result,
            Err(panic) => Err(ToolError::Panicked {
                tool: call.name.clone(),
                message: take_panic_message(panic),
            }),
        }
    }

    /// Runs calls in order, each one's result recorded (errors included).
    pub fn call_all(&self, calls: &[Call], state: &mut S) -> Vec<ToolResult> {
        self.call_all_among(calls, state, None)
    }

    /// [`ToolRegistry::call_all`] where only the tools named in `shown`
    /// may be called (the tools a task shows the model, when it lists
    /// them): a call to another is [`ToolError::UnknownTool`] listing
    /// `shown`, so a tool the model was not shown neither runs nor is
    /// named to it; a call to a shown tool that is not registered is
    /// [`ToolError::NotExecutable`]. `None`: every registered tool.
    pub fn call_all_among(
        &self,
        calls: &[Call],
        state: &mut S,
        shown: Option<&[String]>,
    ) -> Vec<ToolResult> {
        calls
            .iter()
            .map(|c| ToolResult {
                call: c.clone(),
                outcome: match shown {
                    Some(names) if !names.contains(&c.name) => Err(ToolError::UnknownTool {
                        name: c.name.clone(),
                        available: names.to_vec(),
                    }),
                    // Shown but not registered (the env's own mistake: no
                    // handler for a tool its task lists): the model called
                    // a tool it was shown, which cannot run here.
                    Some(_) => self.call(c, state).map_err(|e| match e {
                        ToolError::UnknownTool { name, .. } => ToolError::NotExecutable(name),
                        other => other,
                    }),
                    None => self.call(c, state),
                },
            })
            .collect()
    }
}

/// `v` with every float that is a whole number within `i64` or `u64`
/// written as that integer: JSON Schema counts `30.0` as an `"integer"`,
/// so a validated call may hold one where a typed handler's integer field
/// wants an integer (a field of type `f64` reads the integer all the
/// same). Other values are kept.
fn whole_floats_as_integers(v: Value) -> Value {
    // The range tests are exact: the bounds are powers of two.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) => Value::from(f as i64),
            Some(f) if f.fract() == 0.0 && (TWO_63..2.0 * TWO_63).contains(&f) => {
                Value::from(f as u64)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => items.into_iter().map(whole_floats_as_integers).collect(),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, whole_floats_as_integers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A `serde_path_to_error` path as a JSON pointer (`/accounts/0/id`), the
/// form [`ArgumentProblem::path`] has for schema problems; `""` for the
/// arguments object itself.
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        out.push('/');
        match segment {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => out.push_str(variant),
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> ToolSpec {
        ToolSpec::builder("get_weather", "Weather.")
            .required("city", "string", "")
            .optional("days", "integer", "")
            .build()
    }

    #[test]
    fn duplicates_and_bad_schemas_are_rejected() {
        let mut r: ToolRegistry = ToolRegistry::new();
        r.register_spec(weather()).unwrap();
        assert_eq!(
            r.register_spec(weather()).unwrap_err(),
            RegistryError::Duplicate("get_weather".into())
        );
        let bad = ToolSpec::new(
            "x",
            "",
            json!({"type": "object", "properties": {"a": {"type": 5}}}),
        );
        match r.register_spec(bad) {
            // The message says where in the schema.
            Err(RegistryError::InvalidSchema { message, .. }) => {
                assert!(message.starts_with("at /properties/a/type: "), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let arr = ToolSpec::new("y", "", json!({"type": "array"}));
        assert!(matches!(
            r.register_spec(arr),
            Err(RegistryError::NotObjectSchema { .. })
        ));
        assert!(matches!(
            r.register_spec(ToolSpec::new(" ", "", json!({}))),
            Err(RegistryError::EmptyName)
        ));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn every_violation_is_listed() {
        let mut r: ToolRegistry = ToolRegistry::new();
        r.register_spec(weather()).unwrap();
        let call = Call::new("get_weather", json!({"days": "three"})).unwrap();
        let ToolError::InvalidArguments { tool, problems } = r.validate(&call).unwrap_err() else {
            panic!("expected invalid arguments")
        };
        assert_eq!(tool, "get_weather");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.path == "/days"));
        assert!(problems
            .iter()
            .any(|p| p.path.is_empty() && p.message.contains("city")));
        let run = r.call(
            &Call::new("get_weather", json!({"city": "Oslo"})).unwrap(),
            &mut (),
        );
        assert_eq!(
            run.unwrap_err(),
            ToolError::NotExecutable("get_weather".into())
        );
    }

    #[test]
    fn only_shown_tools_run_and_a_shown_tool_without_a_handler_says_so() {
        let mut r: ToolRegistry<()> = ToolRegistry::new();
        r.register_fn(weather(), |_| Ok(json!("sunny"))).unwrap();
        r.register_fn(ToolSpec::builder("secret", "").build(), |_| Ok(json!(1)))
            .unwrap();
        let shown = ["get_weather".to_string(), "translate".to_string()];
        let calls = [
            Call::new("get_weather", json!({"city": "Paris"})).unwrap(),
            Call::new("secret", json!({})).unwrap(),
            Call::new("translate", json!({})).unwrap(),
        ];
        let results = r.call_all_among(&calls, &mut (), Some(&shown));
        assert_eq!(results[0].outcome, Ok(json!("sunny")));
        // Registered but not shown: unknown, and only the shown tools are named.
        assert_eq!(
            results[1].outcome,
            Err(ToolError::UnknownTool {
                name: "secret".into(),
                available: shown.to_vec()
            })
        );
        // Shown but not registered: it cannot run here (not "unknown", which
        // would contradict the list the model was shown).
        assert_eq!(
            results[2].outcome,
            Err(ToolError::NotExecutable("translate".into()))
        );
    }

    #[test]
    fn panics_are_caught_and_state_is_threaded() {
        let mut r: ToolRegistry<Vec<i64>> = ToolRegistry::new();
        r.register_stateful(
            ToolSpec::builder("push", "")
                .required("x", "integer", "")
                .build(),
            |a, s| {
                s.push(a["x"].as_i64().unwrap_or(0));
                Ok(json!(s.len()))
            },
        )
        .unwrap();
        r.register_fn(ToolSpec::builder("boom", "").build(), |_| panic!("kaboom"))
            .unwrap();
        let mut state = Vec::new();
        let calls = vec![
            Call::new("push", json!({"x": 4})).unwrap(),
            Call::new("boom", json!({})).unwrap(),
            Call::new("push", json!({"x": 5})).unwrap(),
        ];
        // (The caught panic still prints its message through the default hook.)
        let results = r.call_all(&calls, &mut state);
        assert_eq!(state, vec![4, 5]);
        assert_eq!(
            results[0].to_observation(),
            json!({"name": "push", "result": 1})
        );
        assert_eq!(
            results[1].outcome.as_ref().unwrap_err().kind(),
            "tool_crashed"
        );
        assert_eq!(
            results[1].to_observation()["error"]["message"],
            "tool boom crashed: kaboom"
        );
    }
}
