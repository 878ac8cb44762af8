//! Tool specs in their different forms, and registry validation errors as
//! the model sees them.

use serde_json::{json, Value};
use toolgym_env::{RegistryError, Tool, ToolError, ToolRegistry, ToolResult, ToolSpec};
use toolgym_reward::Call;

fn call(name: &str, args: Value) -> Call {
    Call::new(name, args).unwrap()
}

#[test]
fn specs_read_openai_bare_bfcl_and_xlam_forms() {
    let bare = json!({"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}});
    let openai = json!({"type": "function", "function": bare.clone()});
    let a = ToolSpec::from_json(&bare).unwrap();
    let b = ToolSpec::from_json(&openai).unwrap();
    assert_eq!(a, b);
    assert!(a.original_parameters.is_none());
    assert_eq!(a.to_openai(), openai);
    assert_eq!(a.to_bare(), bare);
    // Serde form (task files) round-trips, original kept.
    let xlam = ToolSpec::from_json(&json!({"name": "g", "description": "", "parameters": {"n": {"type": "int", "description": "N."}}})).unwrap();
    let back: ToolSpec = serde_json::from_str(&serde_json::to_string(&xlam).unwrap()).unwrap();
    assert_eq!(back, xlam);
    assert_eq!(xlam.source_parameters()["n"]["type"], "int");

    let bfcl = ToolSpec::from_json(&json!({"name": "math.hypot", "description": "Hypotenuse.", "parameters": {
        "type": "dict", "properties": {"x": {"type": "float"}, "y": {"type": "float"}, "z": {"type": "any"}, "pt": {"type": "tuple", "items": {"type": "integer"}}},
        "required": ["x", "y"]}})).unwrap();
    let mut reg: ToolRegistry = ToolRegistry::new();
    reg.register_spec(bfcl).unwrap();
    assert!(reg
        .validate(&call(
            "math.hypot",
            json!({"x": 3, "y": 4.5, "z": [1], "pt": [1, 2]})
        ))
        .is_ok());
    assert!(reg
        .validate(&call("math.hypot", json!({"x": "3", "y": 4})))
        .is_err());

    for bad in [
        json!(3),
        json!({"description": "no name"}),
        json!({"name": "f", "description": 5}),
        json!({"name": "f", "parameters": [1]}),
    ] {
        assert!(ToolSpec::from_json(&bad).is_err(), "{bad}");
    }
}

#[test]
fn invalid_calls_become_structured_observations() {
    let mut reg: ToolRegistry = ToolRegistry::new();
    let spec = ToolSpec::builder("transfer", "Moves money.")
        .required("amount", "integer", "Cents.")
        .param(
            "currency",
            json!({"type": "string", "enum": ["USD", "EUR"]}),
            true,
        )
        .build();
    reg.register_fn(spec, |a| Ok(json!({"moved": a["amount"]})))
        .unwrap();

    let r = ToolResult {
        call: call(
            "transfer",
            json!({"amount": "ten", "currency": "GBP", "extra": 1}),
        ),
        outcome: reg.call(
            &call(
                "transfer",
                json!({"amount": "ten", "currency": "GBP", "extra": 1}),
            ),
            &mut (),
        ),
    };
    let obs = r.to_observation();
    assert_eq!(obs["name"], "transfer");
    assert_eq!(obs["error"]["kind"], "invalid_arguments");
    let paths: Vec<&str> = obs["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/amount") && paths.contains(&"/currency"),
        "{paths:?}"
    );

    // The problems are listed once (the message counts them), and a long
    // value the model wrote is not quoted whole in the model's context.
    let message = obs["error"]["message"].as_str().unwrap();
    assert!(!message.contains("/amount"), "{message}");
    let long = "é".repeat(5000);
    let e = reg
        .call(
            &call("transfer", json!({"amount": long, "currency": "EUR"})),
            &mut (),
        )
        .unwrap_err();
    let text = toolgym_env::json::dumps(&e.to_observation(), false);
    assert!(text.chars().count() < 1000, "{}", text.chars().count());
    let first = e.to_observation()["error"]["problems"][0]["message"].clone();
    let first = first.as_str().unwrap();
    assert_eq!(first.chars().count(), toolgym_env::PROBLEM_CHARS);
    assert!(first.ends_with('…'), "{first}");
    // The Rust error keeps every problem whole.
    assert!(e.to_string().contains(&long));

    let unknown = reg.call(&call("transfr", json!({})), &mut ()).unwrap_err();
    assert_eq!(
        unknown.to_observation()["error"]["available_tools"],
        json!(["transfer"])
    );
    assert!(unknown.to_string().contains("transfr"));

    let ok = reg
        .call(
            &call("transfer", json!({"amount": 5, "currency": "EUR"})),
            &mut (),
        )
        .unwrap();
    assert_eq!(ok, json!({"moved": 5}));
}

struct Counter;

impl Tool<u32> for Counter {
    fn spec(&self) -> ToolSpec {
        ToolSpec::builder("tick", "Counts.")
            .optional("by", "integer", "")
            .build()
    }
    fn call(&self, args: &Value, state: &mut u32) -> Result<Value, ToolError> {
        let by = args.get("by").and_then(Value::as_u64).unwrap_or(1) as u32;
        *state = state
            .checked_add(by)
            .ok_or_else(|| ToolError::failed("overflow"))?;
        Ok(json!(*state))
    }
}

#[test]
fn tool_trait_with_state_and_duplicates() {
    let mut reg = ToolRegistry::<u32>::new();
    reg.register(Counter).unwrap();
    assert!(matches!(reg.register(Counter), Err(RegistryError::Duplicate(n)) if n == "tick"));
    let mut state = u32::MAX - 1;
    assert_eq!(
        reg.call(&call("tick", json!({})), &mut state).unwrap(),
        json!(u32::MAX)
    );
    let e = reg.call(&call("tick", json!({})), &mut state).unwrap_err();
    assert_eq!(e, ToolError::failed("overflow"));
    assert_eq!(reg.names(), ["tick"]);
    assert!(reg.get("tick").is_some());
}

#[test]
fn registry_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ToolRegistry<Vec<u8>>>();
    check::<toolgym_env::SingleTurnEnv>();
    check::<toolgym_env::SingleTurnSpec>();
    check::<toolgym_env::MultiTurnSpec<Vec<u8>>>();
    fn send<T: Send>() {}
    send::<toolgym_env::MultiTurnEnv<Vec<u8>>>();
}

/// A list offering two tools under one name is refused, naming both
/// places; a call could not say which one it means.
#[test]
fn a_tool_list_with_a_repeated_name_is_refused() {
    let spec = |name: &str| json!({"name": name, "parameters": {}});
    let list = json!([spec("a"), spec("b"), {"type": "function", "function": spec("a")}]);
    let e = ToolSpec::list_from_json(&list).unwrap_err();
    assert!(
        matches!(&e, toolgym_env::SpecError::RepeatedName { name, first: 0, again: 2 } if name == "a"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "tool 2 of the list repeats the name \"a\" of tool 0"
    );
    let names: Vec<String> = ToolSpec::list_from_json(&json!([spec("a"), spec("b")]))
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
}

/// A task file's task that offers two tools under one name is a bad line,
/// named and skipped; the other tasks are read.
#[test]
fn a_task_file_task_with_a_repeated_tool_name_is_a_bad_line() {
    let spec = |name: &str| ToolSpec::builder(name, "").build();
    let task = |id: &str, tools: Vec<ToolSpec>| {
        let t = toolgym_env::Task::new(
            id,
            "t",
            tools,
            vec![toolgym_env::Message::user("hi")],
            vec![],
        );
        serde_json::to_string(&t).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.jsonl");
    // The file of `lines` read back: the ids read, and the bad lines.
    let read_back = |lines: &[String]| {
        std::fs::write(&path, lines.join("\n")).unwrap();
        let file = toolgym_env::read_jsonl_lenient(&path).unwrap();
        let ids: Vec<String> = file.tasks.iter().map(|t| t.id.clone()).collect();
        (ids, file.bad_lines)
    };
    let lines = [
        task("a", vec![spec("f"), spec("g")]),
        task("b", vec![spec("f"), spec("g"), spec("f")]),
        task("c", vec![spec("f")]),
    ];
    let (ids, bad_lines) = read_back(&lines);
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(
        bad_lines,
        [(
            2,
            "task b: tool 2 of the list repeats the name \"f\" of tool 0".to_string()
        )]
    );
    // A UTF-8 byte-order mark before the first line (some editors write
    // one) is not a bad line 1; one anywhere else is data.
    std::fs::write(&path, format!("\u{feff}{}\n\u{feff}{}", lines[0], lines[2])).unwrap();
    let file = toolgym_env::read_jsonl_lenient(&path).unwrap();
    let ids: Vec<&str> = file.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a"]);
    assert_eq!(file.bad_lines.len(), 1);
    assert_eq!(file.bad_lines[0].0, 2);

    // A ground truth calling a tool the task does not list is a bad line
    // too (no model shown those tools could make the call); a task that
    // lists no tools is left to its env.
    let with_truth = |id: &str, tools: Vec<ToolSpec>, call: &str| {
        let mut t = toolgym_env::Task::new(
            id,
            "t",
            tools,
            vec![toolgym_env::Message::user("hi")],
            vec![],
        );
        t.ground_truth = vec![toolgym_reward::Call::new(call, serde_json::json!({})).unwrap()];
        serde_json::to_string(&t).unwrap()
    };
    let lines = [
        with_truth("a", vec![spec("f")], "f"),
        with_truth("b", vec![spec("f")], "g"),
        with_truth("c", vec![], "g"),
    ];
    let (ids, bad_lines) = read_back(&lines);
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(
        bad_lines,
        [(
            2,
            "task b: its ground truth calls \"g\", which is not among its tools".to_string()
        )]
    );
}

/// A typed handler gets what the schema let through: `30.0` is an
/// integer to JSON Schema, so an `i64` field reads it as 30; a value the
/// schema allows but the type does not is an invalid argument named by
/// its path, as schema problems are.
#[test]
fn typed_handlers_read_whole_floats_as_integers_and_name_the_field_they_refuse() {
    #[derive(serde::Deserialize)]
    struct Pay {
        amount: i64,
        #[allow(dead_code)]
        memo: Memo,
    }
    #[derive(serde::Deserialize)]
    struct Memo {
        #[allow(dead_code)]
        lines: Vec<u8>,
    }
    let spec = ToolSpec::from_json(&json!({
        "name": "pay",
        "description": "Pays.",
        "parameters": {
            "type": "object",
            "properties": {
                "amount": {"type": "integer"},
                "memo": {"type": "object", "properties": {"lines": {"type": "array", "items": {"type": "integer"}}}},
            },
            "required": ["amount", "memo"],
        },
    }))
    .unwrap();
    let mut reg: ToolRegistry<i64> = ToolRegistry::new();
    reg.register_typed(spec, |p: Pay, total: &mut i64| {
        *total += p.amount;
        Ok(json!(*total))
    })
    .unwrap();
    let mut total = 0;
    let ok = call("pay", json!({"amount": 30.0, "memo": {"lines": [1.0, 2]}}));
    assert_eq!(reg.call(&ok, &mut total).unwrap(), json!(30));
    // 300 is an integer to the schema, too big for a u8.
    let big = call("pay", json!({"amount": 1, "memo": {"lines": [1, 300]}}));
    match reg.call(&big, &mut total).unwrap_err() {
        ToolError::InvalidArguments { problems, .. } => {
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].path, "/memo/lines/1", "{problems:?}");
            assert!(problems[0].message.contains("300"), "{problems:?}");
        }
        other => panic!("{other:?}"),
    }
    // Floats that are not whole stay floats (and the schema refuses 2.5).
    let half = call("pay", json!({"amount": 2.5, "memo": {"lines": []}}));
    assert_eq!(
        reg.call(&half, &mut total).unwrap_err().kind(),
        "invalid_arguments"
    );
    assert_eq!(total, 30);
    // Past i64 but within u64, a whole float reads as a u64; past u64 it
    // stays a float, which an integer field refuses by path.
    #[derive(serde::Deserialize)]
    struct Big {
        n: u64,
    }
    let big = ToolSpec::builder("big", "")
        .required("n", "integer", "")
        .build();
    let mut reg: ToolRegistry<()> = ToolRegistry::new();
    reg.register_typed(big, |b: Big, _: &mut ()| Ok(json!(b.n)))
        .unwrap();
    assert_eq!(
        reg.call(&call("big", json!({"n": 1e19})), &mut ()).unwrap(),
        json!(10_000_000_000_000_000_000u64)
    );
    match reg
        .call(&call("big", json!({"n": 1e20})), &mut ())
        .unwrap_err()
    {
        ToolError::InvalidArguments { problems, .. } => assert_eq!(problems[0].path, "/n"),
        other => panic!("{other:?}"),
    }
    // A raw handler gets the arguments as the model wrote them.
    let echo = ToolSpec::builder("echo", "")
        .required("n", "integer", "")
        .build();
    let mut raw: ToolRegistry<()> = ToolRegistry::new();
    raw.register_fn(echo, |a| Ok(a["n"].clone())).unwrap();
    assert_eq!(
        raw.call(&call("echo", json!({"n": 30.0})), &mut ())
            .unwrap(),
        json!(30.0)
    );
}

/// Bounding a parameter that was never added is a mistake in the code
/// that builds the spec: said at once, not left unbounded.
#[test]
#[should_panic(expected = "has no parameter \"amout\"")]
fn bounds_on_a_parameter_never_added_is_refused() {
    let _ = ToolSpec::builder("pay", "Pays.")
        .required("amount", "integer", "")
        .bounds("amout", Some(1.0), None);
}

/// Many problems are listed up to PROBLEMS_SHOWN and the rest counted;
/// a path made of a long key the model wrote is cut too.
#[test]
fn many_argument_problems_are_counted_past_the_first_few() {
    let spec = ToolSpec::from_json(&json!({
        "name": "sum", "description": "Adds.",
        "parameters": {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "integer"}}},
                       "required": ["xs"], "patternProperties": {"^k": {"type": "integer"}}},
    }))
    .unwrap();
    let mut reg: ToolRegistry = ToolRegistry::new();
    reg.register_fn(spec, |_| Ok(json!(0))).unwrap();
    let strings: Vec<String> = (0..30).map(|i| format!("s{i}")).collect();
    let long_key = format!("k{}", "y".repeat(1000));
    let e = reg
        .call(
            &call("sum", json!({"xs": strings, long_key.clone(): "x"})),
            &mut (),
        )
        .unwrap_err();
    let obs = e.to_observation();
    let problems = obs["error"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), toolgym_env::PROBLEMS_SHOWN);
    assert_eq!(
        obs["error"]["more_problems"],
        31 - toolgym_env::PROBLEMS_SHOWN
    );
    // The path of a long key is cut as messages are.
    let e = reg
        .call(&call("sum", json!({"xs": [1], long_key: "x"})), &mut ())
        .unwrap_err();
    let obs = e.to_observation();
    let path = obs["error"]["problems"][0]["path"].as_str().unwrap();
    assert_eq!(path.chars().count(), toolgym_env::PROBLEM_CHARS, "{path}");
    assert!(path.ends_with('…'));
}

/// A hand-written task file's tools in xLAM's or BFCL's form are read as
/// data is read (normalised, the original kept for prompts): the model is
/// checked against the JSON Schema they mean. A task file written by
/// toolgym (normalised, with its original beside) reads back unchanged.
#[test]
fn task_file_tools_are_normalised_on_load() {
    let line = serde_json::json!({
        "id": "t", "source": "hand",
        "messages": [{"role": "user", "content": "sum 1 and 2"}],
        "tools": [{"name": "add", "description": "Adds.",
                   "parameters": {"a": {"type": "int"}, "b": {"type": "int, optional"}}}],
        "ground_truth": [{"name": "add", "arguments": {"a": 1, "b": 2}}]
    });
    let task: toolgym_env::Task = serde_json::from_value(line.clone()).unwrap();
    let spec = &task.tools[0];
    assert_eq!(
        spec.parameters,
        serde_json::json!({"type": "object", "required": ["a"],
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}})
    );
    assert_eq!(
        spec.original_parameters.as_ref(),
        Some(&line["tools"][0]["parameters"])
    );
    // Written and read again: the same task.
    let again: toolgym_env::Task =
        serde_json::from_str(&serde_json::to_string(&task).unwrap()).unwrap();
    assert_eq!(again, task);
    // Parameters edited by hand beside a kept original are normalised too.
    let mut edited = serde_json::to_value(&task).unwrap();
    edited["tools"][0]["parameters"] = serde_json::json!({"a": {"type": "int"}});
    let edited: toolgym_env::Task = serde_json::from_value(edited).unwrap();
    assert_eq!(
        edited.tools[0].parameters["properties"]["a"],
        serde_json::json!({"type": "integer"})
    );
    assert_eq!(
        edited.tools[0].original_parameters,
        spec.original_parameters
    );
    // A JSON Schema needs nothing: no original is kept.
    let plain: ToolSpec = serde_json::from_value(serde_json::json!({"name": "f",
        "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}))
    .unwrap();
    assert!(plain.original_parameters.is_none());
    // Parameters that are no schema at all are a bad line, named.
    let e = serde_json::from_value::<ToolSpec>(serde_json::json!({"name": "f", "parameters": 3}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tool \"f\"") && e.contains("parameters must be a JSON object"),
        "{e}"
    );
}

/// Schemas a differential against Python's `jsonschema` found read
/// otherwise: a root without `type` or `properties` (pydantic's `$ref`
/// root, `additionalProperties`, `anyOf`, `required` alone) was taken for
/// xLAM's parameter map (its keywords became parameters); a draft-07
/// tuple was validated inverted (rewritten to 2020-12's `prefixItems`, the
/// declared draft then read `items` as every element's schema); a root
/// `type` list holding `object` was refused; an annotation given as null
/// was refused. Each now agrees with `jsonschema`'s verdicts.
#[test]
fn schemas_read_as_jsonschema_reads_them() {
    let verdicts = |params: Value, cases: &[(Value, bool)]| {
        for strict in [true, false] {
            let tool = json!({"name": "f", "description": "", "parameters": params});
            let spec = if strict {
                ToolSpec::from_json_strict(&tool)
            } else {
                ToolSpec::from_json(&tool)
            }
            .unwrap_or_else(|e| panic!("{params}: {e}"));
            let mut reg: ToolRegistry = ToolRegistry::new();
            reg.register_spec(spec)
                .unwrap_or_else(|e| panic!("{params}: {e}"));
            for (args, ok) in cases {
                let got = reg.validate(&call("f", args.clone()));
                assert_eq!(got.is_ok(), *ok, "{params} with {args}: {got:?}");
            }
        }
    };
    verdicts(
        json!({"additionalProperties": {"type": "integer"}}),
        &[
            (json!({"a": 1}), true),
            (json!({"a": "x"}), false),
            (json!({}), true),
        ],
    );
    verdicts(
        json!({"$ref": "#/$defs/A", "$defs": {"A": {"type": "object",
            "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}),
        &[
            (json!({"n": 1}), true),
            (json!({}), false),
            (json!({"n": "1"}), false),
        ],
    );
    verdicts(
        json!({"required": ["a"]}),
        &[(json!({"a": 0}), true), (json!({}), false)],
    );
    verdicts(
        json!({"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}),
        &[(json!({"b": 0}), true), (json!({"c": 0}), false)],
    );
    let draft7 = |a: Value| {
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"a": a}})
    };
    verdicts(
        draft7(json!({"type": "array", "items": [{"type": "integer"}]})),
        &[(json!({"a": [1, "x"]}), true), (json!({"a": ["x"]}), false)],
    );
    verdicts(
        draft7(json!({"type": "array", "items": [{"type": "integer"}],
            "additionalItems": {"type": "string"}})),
        &[
            (json!({"a": [1, "x"]}), true),
            (json!({"a": ["x"]}), false),
            (json!({"a": [1, 2]}), false),
        ],
    );
    verdicts(
        json!({"type": ["object", "null"], "required": ["a"]}),
        &[(json!({"a": 1}), true), (json!({}), false)],
    );
    verdicts(
        json!({"type": "object", "title": null, "description": null,
            "properties": {"a": {"type": "string", "format": null, "description": null}}}),
        &[(json!({"a": "x"}), true), (json!({"a": 1}), false)],
    );
    // A tuple under a nested draft-07 `$schema` too.
    verdicts(
        json!({"type": "object", "properties": {"a": {"$schema": "http://json-schema.org/draft-07/schema#",
            "type": "array", "items": [{"type": "integer"}], "additionalItems": false}}}),
        &[
            (json!({"a": [1]}), true),
            (json!({"a": ["s"]}), false),
            (json!({"a": [1, 2]}), false),
        ],
    );
    // An xLAM map is still read as the parameters it lists, a parameter's
    // entry with its description (here ones named like keywords).
    let xlam = json!({"not": {"type": "str", "description": "A flag."},
        "required": {"type": "int", "description": "N."},
        "definitions": {"type": "int", "description": "How many.", "default": 3}});
    let spec =
        ToolSpec::from_json(&json!({"name": "g", "description": "", "parameters": xlam})).unwrap();
    assert_eq!(spec.parameters["properties"]["required"]["type"], "integer");
    assert_eq!(spec.parameters["properties"]["not"]["type"], "string");
    assert_eq!(
        spec.parameters["properties"]["definitions"]["type"],
        "integer"
    );
}
