//! Normalising the parameter schemas found in the wild to JSON Schema.
//!
//! Tool definitions come in three shapes:
//!
//! * **JSON Schema** (OpenAI, Qwen, the synthetic environment):
//!   `{"type": "object", "properties": {...}, "required": [...]}`.
//! * **BFCL / ToolACE**: the same, but with Python type names:
//!   `"type": "dict"` for objects, `"float"` for numbers, `"tuple"` for
//!   arrays, `"any"` for anything. Unrecognised names are read as Python
//!   annotations (below).
//! * **xLAM**: no wrapper, one entry per parameter with a Python annotation
//!   as its type: `{"nums": {"description": "...", "type": "List[int]",
//!   "default": ...}}`.
//!
//! [`normalize_parameters`] maps all three to JSON Schema (draft 2020-12):
//!
//! | source type | JSON Schema |
//! |---|---|
//! | `dict`, `Dict[K, V]`, `Mapping[..]` | `{"type": "object"}` (`additionalProperties` from `V`) |
//! | `str`, `String` | `{"type": "string"}` |
//! | `int` | `{"type": "integer"}` |
//! | `float`, `double`, `complex`-free numbers | `{"type": "number"}` |
//! | `bool`, `Boolean` | `{"type": "boolean"}` |
//! | `list`, `List[X]`, `Sequence[X]`, `Iterable[X]`, `set`, `Set[X]` | `{"type": "array", "items": X}` |
//! | `tuple`, `Tuple[X, ...]` | `{"type": "array"}` (`prefixItems` when typed) |
//! | `Union[A, B]`, `A \| B`, `A or B` | `{"anyOf": [A, B]}` |
//! | `Optional[X]` | `{"anyOf": [X, {"type": "null"}]}` |
//! | `None`, `NoneType` | `{"type": "null"}` |
//! | `any`, `Any`, `object`, `Callable`, anything unknown | `{}` (any value) |
//!
//! For xLAM, a parameter is required unless its type ends in `, optional`
//! (or says `Optional[...]`) or it has a `default`. Elsewhere `required`
//! lists are kept; malformed keywords (`"required": null`, a non-list
//! `enum`, a non-object `properties`) are dropped, and a list-valued
//! `items` becomes `prefixItems`.
//!
//! The original is never lost: [`crate::ToolSpec::original_parameters`] keeps
//! it whenever normalisation changed anything.

use serde_json::{json, Map, Value};

/// Why a parameters value cannot be read as a schema at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The parameters are not a JSON object (nor null).
    #[error("parameters must be a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// Keywords [`normalize_parameters`] would drop or read as "any value"
    /// (a type name it does not know, a non-list `required`, a negative
    /// `minLength`…), each as `/json/pointer: what`. Only
    /// [`normalize_parameters_strict`] refuses them: data in the wild is
    /// read leniently, tools written by hand are not.
    #[error("the parameters are not a well-formed schema: {}", .0.join("; "))]
    Malformed(Vec<String>),
}

/// The result of [`normalize_parameters`].
#[derive(Clone, Debug, PartialEq)]
pub struct Normalized {
    /// The JSON Schema of the arguments object.
    pub schema: Value,
    /// Whether it differs from the input (so the original is worth keeping).
    pub changed: bool,
}

impl Normalized {
    /// What a spec keeps of the parameters `raw` it was normalised from:
    /// them, when normalisation changed them (a template that must
    /// reproduce a dataset's prompt renders these), else nothing; never
    /// an absent (`null`) one.
    pub fn original(&self, raw: Value) -> Option<Value> {
        (self.changed && !raw.is_null()).then_some(raw)
    }
}

/// An empty object schema: a tool without parameters.
pub fn empty_object_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

/// Normalises a tool's `parameters` (JSON Schema, BFCL/ToolACE or xLAM
/// form) to a JSON Schema for the arguments object.
///
/// ```
/// use serde_json::json;
/// use toolgym_env::schema::normalize_parameters;
/// let xlam = json!({"nums": {"description": "The list.", "type": "List[int]"},
///                   "k": {"description": "How many.", "type": "int, optional", "default": 1}});
/// let n = normalize_parameters(&xlam).unwrap();
/// assert!(n.changed);
/// assert_eq!(n.schema["properties"]["nums"]["items"]["type"], "integer");
/// assert_eq!(n.schema["required"], json!(["nums"]));
///
/// let bfcl = json!({"type": "dict", "properties": {"x": {"type": "float"}}, "required": ["x"]});
/// let n = normalize_parameters(&bfcl).unwrap();
/// assert_eq!(n.schema["type"], "object");
/// assert_eq!(n.schema["properties"]["x"]["type"], "number");
/// ```
pub fn normalize_parameters(params: &Value) -> Result<Normalized, SchemaError> {
    normalize_noting(params, &mut Vec::new())
}

/// [`normalize_parameters`] for parameters written by hand (a Python
/// `Tool`): the same dialects are read (BFCL's `"dict"`, xLAM's map,
/// draft-07 tuples), but a keyword it would drop, or a type it would read
/// as "any value", is refused ([`SchemaError::Malformed`], every one
/// listed by its JSON pointer) instead of loosening the tool's checks
/// silently: `"required": "x"` would make `x` optional, `"type": "strng"`
/// would take anything.
///
/// ```
/// use serde_json::json;
/// use toolgym_env::schema::normalize_parameters_strict;
/// let typo = json!({"type": "object", "properties": {"x": {"type": "strng"}}, "required": "x"});
/// let e = normalize_parameters_strict(&typo).unwrap_err().to_string();
/// assert!(e.contains("/properties/x/type") && e.contains("/required"), "{e}");
/// let bfcl = json!({"type": "dict", "properties": {"x": {"type": "float"}}, "required": ["x"]});
/// assert!(normalize_parameters_strict(&bfcl).is_ok());
/// ```
pub fn normalize_parameters_strict(params: &Value) -> Result<Normalized, SchemaError> {
    let mut notes = Vec::new();
    let normalized = normalize_noting(params, &mut notes)?;
    if notes.is_empty() {
        Ok(normalized)
    } else {
        Err(SchemaError::Malformed(notes))
    }
}

/// [`normalize_parameters`], noting in `notes` what it drops or reads as
/// "any value".
fn normalize_noting(params: &Value, notes: &mut Vec<String>) -> Result<Normalized, SchemaError> {
    let schema = match params {
        Value::Null => empty_object_schema(),
        Value::Object(map) if looks_like_json_schema(map) => {
            let mut s = normalize_at(params, &mut String::new(), notes);
            if let Value::Object(m) = &mut s {
                // An arguments schema must describe an object.
                if !m.contains_key("type") && !m.contains_key("anyOf") {
                    m.insert("type".into(), json!("object"));
                }
            }
            s
        }
        Value::Object(map) => xlam_parameters(map, notes),
        other => {
            return Err(SchemaError::NotAnObject(toolgym_reward::json_type_name(
                other,
            )))
        }
    };
    let changed = &schema != params;
    Ok(Normalized { schema, changed })
}

/// Notes that the value at JSON pointer `at` + `/key` is `what`.
fn note(notes: &mut Vec<String>, at: &str, key: &str, what: impl std::fmt::Display) {
    notes.push(format!("{at}/{}: {what}", pointer_token(key)));
}

/// `key` as a JSON pointer reference token (`~` → `~0`, `/` → `~1`).
fn pointer_token(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains(['~', '/']) {
        key.replace('~', "~0").replace('/', "~1").into()
    } else {
        key.into()
    }
}

/// The draft toolgym validates arguments with, whatever a schema declares.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Whether an object is a JSON Schema rather than xLAM's per-parameter map:
/// it has an object `type` (an arguments schema describes an object:
/// `"object"`, BFCL's `"dict"`, or a list holding one), `properties`
/// whose entries are all schemas (objects or booleans), or a keyword only
/// a schema has ([`schema_keyword`]: `$ref`, `required`, `anyOf`,
/// `additionalProperties`…; such a root was read as parameters named
/// after its keywords). So an xLAM map with a parameter named `type`
/// (`{"type": "str", "query": "str"}`) or `properties`
/// (`{"properties": {"type": "str", "description": …}}`) is read as the
/// parameters it lists.
fn looks_like_json_schema(map: &Map<String, Value>) -> bool {
    let is_object_type = |t: &Value| t.as_str().and_then(simple_type) == Some("object");
    let typed = match map.get("type") {
        Some(t @ Value::String(_)) => is_object_type(t),
        Some(Value::Array(ts)) => ts.iter().any(is_object_type),
        _ => false,
    };
    let has_props = matches!(map.get("properties"),
        Some(Value::Object(p)) if p.values().all(|v| v.is_object() || v.is_boolean()));
    typed || has_props || map.iter().any(|(k, v)| schema_keyword(k, v))
}

/// Whether `key: value` at a schema's root is a JSON Schema keyword no
/// xLAM parameter map holds: a `$` name (no Python parameter has one), a
/// list where a schema has one (`required`, `anyOf`…), a count, a map of
/// schemas, or a subschema without the `description` every xLAM
/// parameter entry has.
fn schema_keyword(key: &str, value: &Value) -> bool {
    if key.starts_with('$') {
        return true;
    }
    match key {
        "required" | "anyOf" | "oneOf" | "allOf" => value.is_array(),
        "minProperties" | "maxProperties" => value.is_number(),
        // A map of schemas (an xLAM entry maps to text and numbers: a
        // parameter named `definitions` stays a parameter).
        "patternProperties" | "dependentSchemas" | "definitions" => value
            .as_object()
            .is_some_and(|m| m.values().all(|v| v.is_object() || v.is_boolean())),
        "dependentRequired" => value
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_array)),
        "additionalProperties"
        | "unevaluatedProperties"
        | "propertyNames"
        | "not"
        | "if"
        | "then"
        | "else" => {
            value.is_boolean()
                || value
                    .as_object()
                    .is_some_and(|o| !o.contains_key("description"))
        }
        _ => false,
    }
}

fn xlam_parameters(map: &Map<String, Value>, notes: &mut Vec<String>) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, entry) in map {
        let mut at = format!("/{}", pointer_token(name));
        // Type names are data's own here (`pd.DataFrame`): read, not
        // judged, even strictly (a tool copied from a task's list).
        let (schema, optional) = match entry {
            Value::Object(e) => {
                let type_text = match e.get("type") {
                    None => "",
                    Some(Value::String(t)) => t,
                    Some(other) => {
                        let found = toolgym_reward::json_type_name(other);
                        note(
                            notes,
                            &at,
                            "type",
                            format_args!("{found} is not a type name"),
                        );
                        ""
                    }
                };
                let (mut schema, optional) = python_annotation(type_text);
                // The entry's other keywords (`items`, `enum`, `default`…)
                // are read as JSON Schema is: a nested BFCL `"dict"` or
                // `"float"` becomes what it means.
                let rest: Map<String, Value> = e
                    .iter()
                    .filter(|(k, _)| *k != "type")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if let (Value::Object(s), Value::Object(rest)) = (
                    &mut schema,
                    normalize_at(&Value::Object(rest), &mut at, notes),
                ) {
                    s.extend(rest);
                }
                (schema, optional || e.contains_key("default"))
            }
            // A bare type string as the entry.
            Value::String(t) => python_annotation(t),
            other => {
                let found = toolgym_reward::json_type_name(other);
                notes.push(format!("{at}: {found} is not a parameter"));
                (json!({}), true)
            }
        };
        if !optional {
            required.push(Value::String(name.clone()));
        }
        properties.insert(name.clone(), schema);
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    Value::Object(out)
}

/// Normalises one (sub)schema in the JSON-Schema-like forms.
pub fn normalize_schema(s: &Value) -> Value {
    normalize_at(s, &mut String::new(), &mut Vec::new())
}

/// [`normalize_schema`] of the subschema at JSON pointer `at`, noting in
/// `notes` each keyword it drops or reads as "any value".
fn normalize_at(s: &Value, at: &mut String, notes: &mut Vec<String>) -> Value {
    let map = match s {
        Value::Bool(_) => return s.clone(),
        Value::Object(m) => m,
        other => {
            let found = toolgym_reward::json_type_name(other);
            notes.push(format!("{at}: {found} is not a schema"));
            return json!({});
        }
    };
    let mut out = Map::new();
    for (k, v) in map {
        let found = toolgym_reward::json_type_name(v);
        let noted = notes.len();
        match k.as_str() {
            // What this writes is 2020-12's vocabulary (a list of `items`
            // became `prefixItems`): a (sub)schema that declared an older
            // draft is validated as 2020-12 too, or the tuples it wrote
            // would be read inverted (2020-12's `items` as the older
            // draft's every-element schema).
            "$schema" if v.is_string() => {
                out.insert(k.clone(), json!(DRAFT_2020_12));
            }
            "type" => match v {
                Value::String(t) => {
                    if !merge_type(&mut out, t) {
                        note(notes, at, k, format_args!("{t:?} is not a type name"));
                    }
                }
                Value::Array(ts) => {
                    let names: Vec<Value> = ts
                        .iter()
                        .filter_map(Value::as_str)
                        .filter_map(simple_type)
                        .map(|t| Value::String(t.to_string()))
                        .collect();
                    if !names.is_empty() && names.len() == ts.len() {
                        out.insert("type".into(), Value::Array(names));
                    } else {
                        note(notes, at, k, "not a non-empty list of type names");
                    }
                }
                _ => note(notes, at, k, format_args!("{found} is not a type name")),
            },
            "properties" | "patternProperties" | "$defs" | "definitions" => {
                if let Value::Object(props) = v {
                    let len = at.len();
                    at.push('/');
                    at.push_str(k);
                    let props = props
                        .iter()
                        .map(|(name, p)| (name.clone(), sub_at(p, at, name, None, notes)))
                        .collect();
                    at.truncate(len);
                    out.insert(k.clone(), Value::Object(props));
                } else {
                    note(
                        notes,
                        at,
                        k,
                        format_args!("{found}, not an object of schemas"),
                    );
                }
            }
            "items" => match v {
                Value::Array(list) => {
                    let items = list
                        .iter()
                        .enumerate()
                        .map(|(i, item)| sub_at(item, at, k, Some(i), notes))
                        .collect();
                    out.insert("prefixItems".into(), Value::Array(items));
                }
                Value::Object(_) | Value::Bool(_) => {
                    out.insert(k.clone(), sub_at(v, at, k, None, notes));
                }
                _ => note(notes, at, k, format_args!("{found} is not a schema")),
            },
            // Beside a list of `items` (a tuple, now `prefixItems`),
            // `additionalItems` says what may follow: 2020-12's `items`.
            "additionalItems" if map.get("items").is_some_and(Value::is_array) => {
                if v.is_object() || v.is_boolean() {
                    out.insert("items".into(), sub_at(v, at, k, None, notes));
                } else {
                    note(notes, at, k, format_args!("{found} is not a schema"));
                }
            }
            "additionalProperties" | "additionalItems" | "not" | "contains" => {
                if v.is_object() || v.is_boolean() {
                    out.insert(k.clone(), sub_at(v, at, k, None, notes));
                } else {
                    note(notes, at, k, format_args!("{found} is not a schema"));
                }
            }
            "prefixItems" | "anyOf" | "oneOf" | "allOf" => match v {
                Value::Array(list) if !list.is_empty() => {
                    let list = list
                        .iter()
                        .enumerate()
                        .map(|(i, item)| sub_at(item, at, k, Some(i), notes))
                        .collect();
                    out.insert(k.clone(), Value::Array(list));
                }
                _ => note(notes, at, k, "not a non-empty list of schemas"),
            },
            "required" => {
                if v.as_array().is_some_and(|l| l.iter().all(Value::is_string)) {
                    out.insert(k.clone(), v.clone());
                } else {
                    note(notes, at, k, "not a list of property names");
                }
            }
            "enum" => {
                if v.is_array() {
                    out.insert(k.clone(), v.clone());
                } else {
                    note(notes, at, k, format_args!("{found}, not a list of values"));
                }
            }
            "$ref" => {
                // Local references only; remote ones cannot be resolved
                // offline and would fail to compile.
                if v.as_str().is_some_and(|r| r.starts_with('#')) {
                    out.insert(k.clone(), v.clone());
                } else {
                    note(notes, at, k, "not a local reference (\"#...\")");
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
                if v.is_number() {
                    out.insert(k.clone(), v.clone());
                } else {
                    note(notes, at, k, format_args!("{found} is not a number"));
                }
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
            | "maxProperties" => {
                // `10.0` is a count too (JSON Schema's integers are
                // mathematical), written as `10`.
                let integral = v
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && (0.0..9.0e15).contains(f))
                    .map(|f| f as u64);
                if let Some(n) = v.as_u64().or(integral) {
                    out.insert(k.clone(), n.into());
                } else {
                    note(
                        notes,
                        at,
                        k,
                        format_args!("{v} is not a count (an integer >= 0)"),
                    );
                }
            }
            "pattern" => {
                if v.is_string() {
                    out.insert(k.clone(), v.clone());
                } else {
                    note(notes, at, k, format_args!("{found} is not a pattern"));
                }
            }
            // An annotation given as null is not given (the validator
            // refuses a null where its metaschema wants a string).
            _ if v.is_null() && NULL_MEANS_ABSENT.contains(&k.as_str()) => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
        // A keyword given as null is not given: dropping it loses nothing.
        if v.is_null() {
            notes.truncate(noted);
        }
    }
    Value::Object(out)
}

/// Keywords copied as they are, but for `null`, which means "not given"
/// (`const: null` and `default: null` are values, and stay).
const NULL_MEANS_ABSENT: [&str; 12] = [
    "title",
    "description",
    "format",
    "$comment",
    "examples",
    "uniqueItems",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentMediaType",
    "contentEncoding",
    "contentSchema",
];

/// [`normalize_at`] of the subschema under `key` (and `index` within a
/// list) of the schema at `at`.
fn sub_at(
    v: &Value,
    at: &mut String,
    key: &str,
    index: Option<usize>,
    notes: &mut Vec<String>,
) -> Value {
    let len = at.len();
    at.push('/');
    at.push_str(&pointer_token(key));
    if let Some(i) = index {
        at.push_str(&format!("/{i}"));
    }
    let out = normalize_at(v, at, notes);
    at.truncate(len);
    out
}

/// Puts the JSON Schema reading of type name `t` into `out`; false when
/// it reads as nothing (an unknown name: any value).
fn merge_type(out: &mut Map<String, Value>, t: &str) -> bool {
    if let Some(simple) = simple_type(t) {
        out.insert("type".into(), json!(simple));
        return true;
    }
    if is_any(t) {
        return true;
    }
    // A Python annotation such as "List[int]" or "str, optional".
    let (schema, _, understood) = read_annotation(t);
    if let Value::Object(m) = schema {
        for (k, v) in m {
            out.entry(k).or_insert(v);
        }
    }
    understood
}

/// The JSON Schema type for a plain type name, if it is one.
fn simple_type(t: &str) -> Option<&'static str> {
    Some(match t.trim().to_ascii_lowercase().as_str() {
        "object" | "dict" | "dictionary" | "map" | "mapping" | "hashmap" => "object",
        "string" | "str" | "text" | "char" | "date" | "datetime" | "time" => "string",
        "integer" | "int" | "long" | "short" | "int32" | "int64" => "integer",
        "number" | "float" | "double" | "decimal" | "real" => "number",
        "boolean" | "bool" => "boolean",
        "array" | "list" | "tuple" | "set" | "arraylist" | "hashset" => "array",
        "null" | "none" | "nonetype" => "null",
        _ => return None,
    })
}

fn is_any(t: &str) -> bool {
    matches!(
        t.trim().to_ascii_lowercase().as_str(),
        "any" | "" | "callable" | "function" | "typing.any"
    )
}

/// Reads a Python type annotation as JSON Schema; the flag says whether it
/// marks the parameter optional (`", optional"` or `Optional[...]`).
///
/// ```
/// use toolgym_env::schema::python_annotation;
/// use serde_json::json;
/// assert_eq!(python_annotation("List[str]").0, json!({"type": "array", "items": {"type": "string"}}));
/// assert_eq!(python_annotation("float, optional"), (json!({"type": "number"}), true));
/// assert_eq!(python_annotation("Dict[str, int]").0,
///            json!({"type": "object", "additionalProperties": {"type": "integer"}}));
/// assert_eq!(python_annotation("weird<type>").0, json!({}));
/// ```
pub fn python_annotation(text: &str) -> (Value, bool) {
    let (schema, optional, _) = read_annotation(text);
    (schema, optional)
}

/// [`python_annotation`], and whether every name in it was understood
/// (`Optional[Any]` is; `pd.DataFrame`, `strng` or text that does not
/// parse is not, and reads as any value).
fn read_annotation(text: &str) -> (Value, bool, bool) {
    let mut t = text.trim();
    let mut optional = false;
    let lower = t.to_ascii_lowercase();
    for suffix in [", optional", ",optional", " optional", "(optional)"] {
        if lower.ends_with(suffix) {
            t = t[..t.len() - suffix.len()].trim_end();
            optional = true;
            break;
        }
    }
    let mut p = AnnotationParser {
        s: t.as_bytes(),
        pos: 0,
        depth: 0,
        none_at_top: false,
        unknown: false,
    };
    let parsed = p.union();
    let (schema, none, understood) = match parsed {
        Some(s) if p.at_end() => (s, p.none_at_top, !p.unknown),
        _ => (json!({}), false, false),
    };
    (schema, optional || none, understood)
}

/// A tiny recursive-descent reader of Python annotations: names,
/// subscripts `[..]`, unions with `|` or ` or `, `Literal[...]` values.
struct AnnotationParser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
    /// Whether the annotation itself admits `None` (`Optional[X]`,
    /// `X | None`, `Union[X, None]`): the parameter is optional. Read
    /// here, not from the schema, where `Optional[Any]` is just `{}`.
    none_at_top: bool,
    /// Whether a name was not understood (read as any value).
    unknown: bool,
}

impl AnnotationParser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.s.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, w: &str) -> bool {
        self.skip_ws();
        let end = self.pos + w.len();
        let boundary = self.s.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
        if end <= self.s.len() && &self.s[self.pos..end] == w.as_bytes() && boundary {
            self.pos = end;
            true
        } else {
            false
        }
    }

    fn union(&mut self) -> Option<Value> {
        let first = self.term()?;
        let mut alts = vec![first];
        while self.eat(b'|') || self.eat_word("or") {
            alts.push(self.term()?);
        }
        self.note_none(alts.len() > 1 && alts.contains(&json!({"type": "null"})));
        Some(any_of(alts))
    }

    /// Notes that the annotation itself admits `None` (`none_at_top`)
    /// when `admits_none` holds of a type read at the top level.
    fn note_none(&mut self, admits_none: bool) {
        if self.depth == 0 && admits_none {
            self.none_at_top = true;
        }
    }

    /// The values of `Literal[...]` after its `[`, through its `]`:
    /// quoted strings, numbers, `True`, `False`, `None`; `None` (the
    /// whole annotation unread) on anything else.
    fn literal_values(&mut self) -> Option<Vec<Value>> {
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            let c = *self.s.get(self.pos)?;
            let value = if c == b'\'' || c == b'"' {
                let start = self.pos + 1;
                let len = self.s[start..].iter().position(|&b| b == c || b == b'\\')?;
                if self.s[start + len] != c {
                    return None; // an escape: left unread
                }
                self.pos = start + len + 1;
                Value::String(
                    std::str::from_utf8(&self.s[start..start + len])
                        .ok()?
                        .to_string(),
                )
            } else {
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.' | b'_')
                }) {
                    self.pos += 1;
                }
                match std::str::from_utf8(&self.s[start..self.pos]).ok()? {
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    "None" => Value::Null,
                    n => serde_json::from_str::<serde_json::Number>(n)
                        .ok()
                        .map(Value::Number)?,
                }
            };
            values.push(value);
            if self.eat(b']') {
                return Some(values);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn term(&mut self) -> Option<Value> {
        self.depth += 1;
        if self.depth > 32 {
            return None;
        }
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || matches!(self.s[self.pos], b'_' | b'.'))
        {
            self.pos += 1;
        }
        let name = std::str::from_utf8(&self.s[start..self.pos])
            .ok()?
            .to_string();
        if name.is_empty() {
            return None;
        }
        let mut args = Vec::new();
        let mut ellipsis = false;
        let is_literal = name
            .rsplit('.')
            .next()
            .is_some_and(|b| b.eq_ignore_ascii_case("literal"));
        if is_literal && self.eat(b'[') {
            let values = self.literal_values()?;
            self.depth -= 1;
            self.note_none(values.contains(&Value::Null));
            return Some(json!({ "enum": values }));
        }
        if self.eat(b'[') && !self.eat(b']') {
            loop {
                // `Callable[[int], str]` has a list as an argument.
                if self.eat(b'[') {
                    while !self.eat(b']') {
                        self.union()?;
                        self.eat(b',');
                    }
                    args.push(json!({}));
                } else if self.eat(b'.') {
                    while self.eat(b'.') {}
                    ellipsis = true;
                } else {
                    args.push(self.union()?);
                }
                if self.eat(b']') {
                    break;
                }
                if !self.eat(b',') {
                    return None;
                }
            }
        }
        self.depth -= 1;
        let base = name
            .rsplit('.')
            .next()
            .unwrap_or(&name)
            .to_ascii_lowercase();
        let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| json!({}));
        Some(match base.as_str() {
            "list" | "sequence" | "iterable" | "set" | "frozenset" | "array" | "collection" => {
                let items = arg(0);
                if items == json!({}) {
                    json!({"type": "array"})
                } else {
                    json!({"type": "array", "items": items})
                }
            }
            "tuple" if ellipsis && args.len() == 1 => json!({"type": "array", "items": arg(0)}),
            "tuple" => {
                if args.is_empty() || args.iter().all(|a| a == &json!({})) {
                    json!({"type": "array"})
                } else {
                    json!({"type": "array", "prefixItems": args})
                }
            }
            "dict" | "mapping" | "object" if !args.is_empty() => {
                let values = arg(1);
                if values == json!({}) {
                    json!({"type": "object"})
                } else {
                    json!({"type": "object", "additionalProperties": values})
                }
            }
            "union" => {
                self.note_none(args.contains(&json!({"type": "null"})));
                any_of(args)
            }
            "optional" => {
                self.note_none(true);
                any_of(vec![arg(0), json!({"type": "null"})])
            }
            "literal" => json!({}),
            _ => match simple_type(&base) {
                Some(t) => json!({ "type": t }),
                None => {
                    self.unknown |= !is_any(&base);
                    json!({})
                }
            },
        })
    }
}

/// `anyOf` of the alternatives, flattened to one schema when possible.
fn any_of(mut alts: Vec<Value>) -> Value {
    if alts.len() == 1 {
        return alts.pop().unwrap_or_else(|| json!({}));
    }
    if alts.iter().any(|a| a == &json!({})) {
        return json!({});
    }
    json!({ "anyOf": alts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations() {
        let cases = [
            ("str", json!({"type": "string"})),
            ("int", json!({"type": "integer"})),
            (
                "List[int]",
                json!({"type": "array", "items": {"type": "integer"}}),
            ),
            (
                "List[List[float]]",
                json!({"type": "array", "items": {"type": "array", "items": {"type": "number"}}}),
            ),
            (
                "Tuple[int, int]",
                json!({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "integer"}]}),
            ),
            (
                "Union[int, float]",
                json!({"anyOf": [{"type": "integer"}, {"type": "number"}]}),
            ),
            (
                "int | None",
                json!({"anyOf": [{"type": "integer"}, {"type": "null"}]}),
            ),
            ("Dict[str, Any]", json!({"type": "object"})),
            ("Callable[[int], int]", json!({})),
            (
                "Tuple[int, ...]",
                json!({"type": "array", "items": {"type": "integer"}}),
            ),
            (
                "typing.List[str]",
                json!({"type": "array", "items": {"type": "string"}}),
            ),
            (
                "List[Union[int, float]]",
                json!({"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "number"}]}}),
            ),
            ("[[[[", json!({})),
            ("", json!({})),
        ];
        for (text, want) in cases {
            assert_eq!(python_annotation(text).0, want, "{text}");
        }
        assert!(python_annotation("Optional[str]").1);
        assert!(python_annotation("str, optional").1);
        assert!(!python_annotation("str").1);
        // Optional whatever the inner type reads as (`{}` for Any).
        for text in [
            "Optional[Any]",
            "Optional[Callable]",
            "Optional[SomeClass]",
            "Any | None",
            "Union[Any, None]",
        ] {
            assert!(python_annotation(text).1, "{text}");
        }
        // A None nested deeper does not make the parameter optional.
        assert!(!python_annotation("List[Optional[int]]").1);
        // Literal values are read, quotes included, not left to fail the type.
        assert_eq!(
            python_annotation("Literal['a', \"b\", 3]"),
            (json!({"enum": ["a", "b", 3]}), false)
        );
        assert_eq!(
            python_annotation("List[Literal['x']]").0,
            json!({"type": "array", "items": {"enum": ["x"]}})
        );
        assert!(python_annotation("Optional[Literal['a']]").1);
        assert!(python_annotation("Literal['a', None]").1);
        assert_eq!(python_annotation("Literal['a\\'b']").0, json!({}));
        // Deep nesting never overflows.
        let deep = "List[".repeat(10_000);
        assert_eq!(python_annotation(&deep).0, json!({}));
    }

    #[test]
    fn bfcl_types() {
        let p = json!({"type": "dict", "properties": {
            "t": {"type": "tuple", "items": {"type": "integer"}},
            "a": {"type": "any"},
            "d": {"type": "dict", "properties": {"f": {"type": "float"}}},
            "l": {"type": "array", "items": [{"type": "string"}]}
        }, "required": ["t"]});
        let n = normalize_parameters(&p).unwrap().schema;
        assert_eq!(n["type"], "object");
        assert_eq!(
            n["properties"]["t"],
            json!({"type": "array", "items": {"type": "integer"}})
        );
        assert_eq!(n["properties"]["a"], json!({}));
        assert_eq!(n["properties"]["d"]["properties"]["f"]["type"], "number");
        assert_eq!(n["properties"]["l"]["prefixItems"][0]["type"], "string");
        assert_eq!(n["required"], json!(["t"]));
    }

    #[test]
    fn an_xlam_entrys_other_keywords_are_read_as_json_schema() {
        let p = json!({"rows": {"type": "List[dict]", "description": "Rows.",
            "items": {"type": "dict", "properties": {"w": {"type": "float"}}}, "default": []}});
        let n = normalize_parameters(&p).unwrap().schema;
        assert_eq!(
            n["properties"]["rows"],
            json!({"type": "array", "description": "Rows.", "default": [],
                   "items": {"type": "object", "properties": {"w": {"type": "number"}}}})
        );
        // Strictly, a malformed keyword there is named.
        let bad = json!({"n": {"type": "int", "minimum": "3"}});
        let SchemaError::Malformed(notes) = normalize_parameters_strict(&bad).unwrap_err() else {
            panic!("not Malformed");
        };
        assert_eq!(notes, ["/n/minimum: a string is not a number"]);
    }

    #[test]
    fn xlam_maps_with_parameters_named_like_schema_keywords() {
        // A parameter named `properties`, and one named `type`: xLAM maps.
        let p = json!({"properties": {"description": "Fields", "type": "str"}, "id": {"description": "Id", "type": "int"}});
        let n = normalize_parameters(&p).unwrap().schema;
        assert_eq!(n["properties"]["properties"]["type"], "string");
        assert_eq!(n["properties"]["id"]["type"], "integer");
        // In the order the map lists them.
        assert_eq!(n["required"], json!(["properties", "id"]));
        let n = normalize_parameters(&json!({"type": "str", "query": "str"}))
            .unwrap()
            .schema;
        assert_eq!(n["properties"]["type"], json!({"type": "string"}));
        assert_eq!(n["properties"]["query"], json!({"type": "string"}));
        // Object schemas, BFCL's dict included, are still schemas.
        for (p, want) in [
            (json!({"type": "dict", "properties": {}}), json!("object")),
            (
                json!({"properties": {"a": {"type": "string"}}}),
                json!("object"),
            ),
            (json!({"type": ["object"]}), json!(["object"])),
        ] {
            assert_eq!(
                normalize_parameters(&p).unwrap().schema["type"],
                want,
                "{p}"
            );
        }
    }

    #[test]
    fn a_tuple_keeps_its_additional_items_rule() {
        let p = json!({"type": "object", "properties": {"pair": {
            "type": "array", "items": [{"type": "number"}, {"type": "number"}], "additionalItems": false}}});
        let n = normalize_parameters(&p).unwrap().schema;
        assert_eq!(
            n["properties"]["pair"],
            json!({"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "items": false})
        );
        let v = jsonschema::validator_for(&n).unwrap();
        assert!(v.is_valid(&json!({"pair": [1, 2]})));
        assert!(!v.is_valid(&json!({"pair": [1, 2, 3]})));
    }

    #[test]
    fn json_schema_is_unchanged() {
        let p = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
        let n = normalize_parameters(&p).unwrap();
        assert!(!n.changed);
        assert_eq!(n.schema, p);
    }

    #[test]
    fn malformed_keywords_are_dropped() {
        let p = json!({"type": "dict", "properties": {}, "required": null, "enum": 3});
        let n = normalize_parameters(&p).unwrap().schema;
        assert_eq!(n, json!({"type": "object", "properties": {}}));
        assert!(normalize_parameters(&json!([1])).is_err());
        assert_eq!(
            normalize_parameters(&Value::Null).unwrap().schema,
            empty_object_schema()
        );
        assert_eq!(
            normalize_parameters(&json!({})).unwrap().schema,
            empty_object_schema()
        );
    }

    #[test]
    fn strict_reading_refuses_what_lenient_reading_drops() {
        let p = json!({"type": "object", "required": "x", "properties": {
            "x": {"type": "strng"},
            "a/b": {"type": "string", "minLength": -1, "pattern": 5, "maximum": "3"},
            "list": {"type": "array", "items": "string", "prefixItems": []},
            "either": {"anyOf": [], "type": ["string", "text?"]},
            "remote": {"$ref": "http://example.com/s.json"},
            "bare": "string",
            "obj": {"type": "object", "properties": [], "additionalProperties": 1, "enum": 2}
        }});
        let SchemaError::Malformed(notes) = normalize_parameters_strict(&p).unwrap_err() else {
            panic!("not Malformed");
        };
        let expected = [
            "/properties/a~1b/maximum: a string is not a number",
            "/properties/a~1b/minLength: -1 is not a count (an integer >= 0)",
            "/properties/a~1b/pattern: a number is not a pattern",
            "/properties/bare: a string is not a schema",
            "/properties/either/anyOf: not a non-empty list of schemas",
            "/properties/either/type: not a non-empty list of type names",
            "/properties/list/items: a string is not a schema",
            "/properties/list/prefixItems: not a non-empty list of schemas",
            "/properties/obj/additionalProperties: a number is not a schema",
            "/properties/obj/enum: a number, not a list of values",
            "/properties/obj/properties: a list, not an object of schemas",
            "/properties/remote/$ref: not a local reference (\"#...\")",
            "/properties/x/type: \"strng\" is not a type name",
            "/required: not a list of property names",
        ];
        let mut sorted = notes.clone();
        sorted.sort();
        assert_eq!(sorted, expected);
        // What the lenient reading gives is unchanged by the notes.
        let lenient = normalize_parameters(&p).unwrap().schema;
        assert_eq!(lenient["properties"]["x"], json!({}));
        assert!(lenient.get("required").is_none());

        // Dialects it reads in full pass: BFCL types, Python annotations,
        // draft-07 tuples, xLAM maps, `any`.
        for ok in [
            json!({"type": "dict", "properties": {"x": {"type": "float"}, "y": {"type": "any"}}}),
            json!({"type": "object", "properties": {"t": {"type": "array", "items": [{"type": "integer"}],
                   "additionalItems": false}, "l": {"type": "List[int]"}}}),
            json!({"nums": {"type": "List[int]", "description": "Numbers."}, "k": "int, optional"}),
            json!({"type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}, "$defs": {"n": {"type": "integer"}}}),
            Value::Null,
        ] {
            assert_eq!(
                normalize_parameters_strict(&ok),
                normalize_parameters(&ok),
                "{ok}"
            );
        }
        // xLAM maps are data's own form: their annotations are read, not
        // judged (`pd.DataFrame`); a non-parameter is named.
        let xlam = json!({"a": {"type": "pd.DataFrame"}, "b": 3, "c": {"type": 5}});
        let SchemaError::Malformed(mut notes) = normalize_parameters_strict(&xlam).unwrap_err()
        else {
            panic!("not Malformed");
        };
        notes.sort();
        assert_eq!(
            notes,
            [
                "/b: a number is not a parameter",
                "/c/type: a number is not a type name"
            ]
        );
        // Annotations that read as any value on purpose are understood;
        // a keyword given as null is not given; a count may be written as
        // an integral float.
        let p = json!({"type": "object", "required": null, "properties": {
            "a": {"type": "Optional[Any]"}, "b": {"type": "Any | None"},
            "c": {"type": "Union[Any, None]"}, "d": {"type": "Any, optional"},
            "e": {"type": "string", "maxLength": 10.0, "pattern": null},
            "f": {"type": "pd.DataFrame"}}});
        let SchemaError::Malformed(notes) = normalize_parameters_strict(&p).unwrap_err() else {
            panic!("not Malformed");
        };
        assert_eq!(
            notes,
            ["/properties/f/type: \"pd.DataFrame\" is not a type name"]
        );
        let n = normalize_parameters(&p).unwrap().schema;
        assert_eq!(
            n["properties"]["e"],
            json!({"type": "string", "maxLength": 10})
        );
    }
}
