//! `score --rule bfcl-*` through the library: [`jsonl::score_jsonl_with`]
//! with [`jsonl::bfcl_truth`] on records built from the official fixtures
//! (every decoded model output of `verdicts.jsonl` written as a Tool-N1
//! completion, argument order kept, with the case's functions and possible
//! answer), plus bad records.

#[path = "support/bfcl_calls.rs"]
mod bfcl_calls;
#[path = "bfcl_common.rs"]
mod bfcl_common;

use bfcl_calls::call_texts;
use bfcl_common::{lines, DIR};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use toolgym_reward::bfcl::{BfclAstRule, Category};
use toolgym_reward::jsonl::{
    bfcl_truth, call_truth, score_jsonl_with, JsonlOptions, Record, RecordError,
};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::{rule_by_name, Reason};

/// `(functions, possible answer)` of every case, by id.
fn case_parts() -> HashMap<String, (Value, Option<Value>)> {
    let mut out = HashMap::new();
    for cat in bfcl_common::CATEGORIES {
        let answers: HashMap<String, Value> =
            std::fs::read_to_string(format!("{DIR}/possible_answer/BFCL_v4_{cat}.json"))
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let v: Value = serde_json::from_str(l).unwrap();
                    (
                        v["id"].as_str().unwrap().to_string(),
                        v["ground_truth"].clone(),
                    )
                })
                .collect();
        for l in lines(&format!("BFCL_v4_{cat}.json")) {
            let e: Value = serde_json::from_str(&l).unwrap();
            let id = e["id"].as_str().unwrap().to_string();
            let answer = answers.get(&id).cloned();
            out.insert(id, (e["function"].clone(), answer));
        }
    }
    out
}

/// A Tool-N1 completion of a `model_output`, when it is expressible.
fn completion(model_output: &PyVal) -> Option<String> {
    let calls = call_texts(model_output)?;
    Some(format!(
        "<think>x</think><tool_call>[{}]</tool_call>",
        calls.join(", ")
    ))
}

#[test]
fn bfcl_records_score_with_the_official_verdicts() {
    let parts = case_parts();
    let mut input = String::new();
    let mut want: Vec<(bool, Option<String>)> = Vec::new();
    for (n, l) in bfcl_common::verdict_lines().iter().enumerate() {
        let v: Value = serde_json::from_str(l).unwrap();
        if v["underscore_to_dot"] != json!(false) {
            continue;
        }
        let ordered = bfcl_common::ordered_json(l);
        let Some(text) = ordered.dict_get("model_output").and_then(completion) else {
            continue;
        };
        let id = v["id"].as_str().unwrap();
        let (functions, answer) = &parts[id];
        // Alternate the accepted spellings: category given or from the id,
        // `functions` or BFCL's `function`, `possible_answer` or
        // `ground_truth`.
        let mut rec = Map::new();
        rec.insert("id".into(), json!(id));
        rec.insert("completion".into(), json!(text));
        if n % 2 == 0 {
            rec.insert("category".into(), v["category"].clone());
        }
        let (f_key, a_key) = if n % 3 == 0 {
            ("function", "ground_truth")
        } else {
            ("functions", "possible_answer")
        };
        rec.insert(f_key.into(), functions.clone());
        if let Some(a) = answer {
            rec.insert(a_key.into(), a.clone());
        }
        input.push_str(&Value::Object(rec).to_string());
        input.push('\n');
        want.push((
            v["valid"].as_bool().unwrap(),
            v["error_type"].as_str().map(String::from),
        ));
    }
    assert!(want.len() > 2000, "{}", want.len());
    let mut out = Vec::new();
    let rule = BfclAstRule::official();
    let report = score_jsonl_with(
        &rule,
        bfcl_truth,
        input.as_bytes(),
        &mut out,
        JsonlOptions::default(),
    )
    .unwrap();
    assert_eq!(report.summary.count, want.len());
    assert_eq!(report.input_errors, 0);
    let scored: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, (s, (valid, error_type))) in scored.iter().zip(&want).enumerate() {
        assert_eq!(s["line"], json!(i + 1));
        assert_eq!(s["reward"] == json!(1.0), *valid, "{s}");
        if let Some(t) = error_type {
            let detail = s["detail"].as_str().unwrap();
            assert!(detail.starts_with(&format!("{t}:")), "{t} vs {detail}");
        }
    }
    let valid = want.iter().filter(|w| w.0).count();
    assert_eq!(report.summary.accuracy, valid as f64 / want.len() as f64);
}

#[test]
fn bad_bfcl_records_are_input_errors_and_the_run_goes_on() {
    let doc = json!([{"name": "f", "parameters": {"type": "dict",
        "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]);
    let ok = "<tool_call>[{\"name\": \"f\", \"arguments\": {\"x\": 1}}]</tool_call>";
    let input = [
        json!({"id": "simple_python_1", "completion": ok, "functions": doc, "possible_answer": [{"f": {"x": [1]}}]}),
        json!({"id": "simple_python_2", "completion": ok, "functions": doc}),
        json!({"id": "simple_python_3", "completion": ok, "possible_answer": [{"f": {"x": [1]}}]}),
        json!({"id": "x", "completion": ok, "category": "simple_java", "functions": doc, "possible_answer": []}),
        json!({"id": 5, "completion": ok, "functions": doc, "possible_answer": [{"f": {"x": [1]}}]}),
        json!({"id": 6, "completion": ok, "category": 3}),
        json!({"id": "multiple_7", "completion": ok, "functions": doc, "possible_answer": [{"g": {"x": [1]}}]}),
        json!({"id": "live_irrelevance_8", "completion": "no call"}),
        json!({"id": "simple_python_9", "functions": doc, "possible_answer": [{"f": {"x": [1]}}]}),
    ]
    .iter()
    .map(Value::to_string)
    .chain(["{not json".to_string(), "   ".to_string(), "[1]".to_string()])
    .collect::<Vec<_>>()
    .join("\n");
    let mut out = Vec::new();
    let report = score_jsonl_with(
        &BfclAstRule::strict(),
        bfcl_truth,
        input.as_bytes(),
        &mut out,
        JsonlOptions {
            chunk_lines: 2,
            parallel: false,
            ..Default::default()
        },
    )
    .unwrap();
    let scored: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reasons: Vec<&str> = scored
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "ok",
            "input_error",
            "input_error",
            "input_error",
            "input_error",
            "input_error",
            "input_error",
            "ok",
            "input_error",
            "input_error",
            "input_error"
        ]
    );
    let detail = |i: usize| scored[i]["detail"].as_str().unwrap().to_string();
    assert_eq!(detail(1), "missing field \"possible_answer\"");
    assert_eq!(detail(2), "missing field \"functions\"");
    assert!(detail(3).contains("unknown BFCL category \"simple_java\""));
    assert!(
        detail(4).contains("the id 5 does not name a BFCL category"),
        "{}",
        detail(4)
    );
    assert_eq!(detail(5), "field \"category\" must be a string");
    assert!(
        detail(6).contains("function \"g\" has no doc"),
        "{}",
        detail(6)
    );
    assert_eq!(detail(8), "missing field \"completion\"");
    assert!(detail(9).starts_with("not JSON"));
    assert_eq!(
        scored[10]["line"], 12,
        "blank line 11 skipped, numbering kept"
    );
    assert_eq!(scored[4]["id"], 5);
    assert_eq!(
        (
            report.summary.count,
            report.input_errors,
            report.blank_lines
        ),
        (11, 9, 1)
    );
}

#[test]
fn record_parsing_is_generic_over_the_truth() {
    let line = br#"{"id": "a", "completion": "c", "ground_truth": [], "extra": 1}"#;
    let r = Record::parse_with(line, call_truth).unwrap();
    assert_eq!(
        (r.id, r.completion.as_str(), r.truth.len()),
        (json!("a"), "c", 0)
    );
    assert_eq!(r.extra["extra"], 1);
    let r = Record::parse_with(line, |id, rec| {
        rec.remove("extra")
            .and_then(|v| v.as_u64())
            .map(|n| format!("{id}:{n}"))
            .ok_or(RecordError::MissingField("extra"))
    })
    .unwrap();
    assert_eq!(r.truth, "\"a\":1");
    let (id, e) = Record::parse_with(br#"{"id": 3, "completion": "c"}"#, call_truth).unwrap_err();
    assert_eq!(
        (id, e),
        (json!(3), RecordError::MissingField("ground_truth"))
    );
    // The call-list rules go through the same loop.
    let mut out = Vec::new();
    let rule = rule_by_name("binary").unwrap();
    let r = score_jsonl_with(
        &*rule,
        call_truth,
        &b"{\"completion\": \"<think>x</think><tool_call>[]</tool_call>\", \"ground_truth\": []}\n"
            [..],
        &mut out,
        JsonlOptions::default(),
    )
    .unwrap();
    assert_eq!(r.summary.reasons.get(&Reason::Ok), Some(&1));
    assert_eq!(
        Category::from_id("live_multiple_3-1-0"),
        Some(Category::LiveMultiple)
    );
}

/// A BFCL record's errors name the field at fault as the record spells it
/// (`functions`/`possible_answer`, or BFCL's own `function`/`ground_truth`),
/// where they named BFCL's fields for a record that had the others.
#[test]
fn bfcl_record_errors_name_the_field_as_written() {
    let doc = json!([{"name": "f", "parameters": {"type": "dict",
        "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]);
    let error = |record: Value| {
        let line = record.to_string();
        match Record::parse_with(line.as_bytes(), bfcl_truth) {
            Err((_, e)) => e.to_string(),
            Ok(_) => panic!("{line} was read"),
        }
    };
    let id = "simple_python_1";
    let cases = [
        (
            json!({"id": id, "completion": "", "functions": "notalist", "possible_answer": []}),
            "\"functions\"",
        ),
        (
            json!({"id": id, "completion": "", "functions": doc, "possible_answer": "x"}),
            "\"possible_answer\"",
        ),
        (
            json!({"id": id, "completion": "", "function": "notalist", "ground_truth": []}),
            "\"function\"",
        ),
        (
            json!({"id": id, "completion": "", "function": doc, "ground_truth": "x"}),
            "\"ground_truth\"",
        ),
        (
            json!({"id": id, "completion": "", "functions": doc, "possible_answer": [{"f": 1}]}),
            "possible_answer",
        ),
        (
            json!({"id": id, "completion": "", "functions": [1], "possible_answer": []}),
            "functions",
        ),
    ];
    for (record, field) in cases {
        let e = error(record.clone());
        assert!(e.contains(field), "{record}: {e}");
        assert!(!e.contains("functions/possible_answer"), "{record}: {e}");
    }
    // The message's own text too, not only the field it is filed under
    // (it said `ground_truth #0` of a `possible_answer` record).
    for (record, want, not) in [
        (
            json!({"id": id, "completion": "", "functions": doc, "possible_answer": [{"f": 1}]}),
            "possible_answer #0",
            "ground_truth",
        ),
        (
            json!({"id": id, "completion": "", "functions": doc, "possible_answer": []}),
            "empty possible_answer",
            "ground_truth",
        ),
        (
            json!({"id": id, "completion": "", "functions": [1], "possible_answer": []}),
            "functions #0",
            "function #",
        ),
        (
            json!({"id": "multiple_1", "completion": "", "function": doc, "ground_truth": [{"g": {"x": [1]}}]}),
            "ground_truth #0: function \"g\" has no doc",
            "possible_answer",
        ),
    ] {
        let e = error(record.clone());
        assert!(e.contains(want) && !e.contains(not), "{record}: {e}");
    }
}
