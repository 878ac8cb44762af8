//! Inputs the fuzz targets (`fuzz/fuzz_targets/`) found, kept as tests of
//! the contract they broke.

use toolgym_reward::pycall::{parse_literal, PyVal};
use toolgym_reward::{completion_text, jsonl, rule_by_name, Call, Reason};

/// `pycall`: a literal's repr parses back to an equal value. `-3J` is
/// `Complex(-0.0, -3.0)`, whose repr `(-0-3j)` is the `real - imaginary`
/// form that `ast.literal_eval` reads and the parser once refused.
#[test]
fn pycall_complex_repr_round_trips() {
    for text in ["-3J", "(1-2j)", "-1.5e3+0j", "[1j, -2j, (3+4j)]"] {
        let v = parse_literal(text).unwrap();
        let back = parse_literal(&v.repr()).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        assert!(back.py_eq(&v), "{text} -> {} -> {back:?}", v.repr());
    }
}

/// `pycall`: `...` is a literal (Ellipsis) whose repr, `Ellipsis`, is a
/// name, as in CPython; the target skips the round trip for it.
#[test]
fn pycall_ellipsis_is_a_literal_without_a_literal_repr() {
    let v = parse_literal("...\n").unwrap();
    assert_eq!(v, PyVal::Ellipsis);
    assert!(parse_literal(&v.repr()).is_err());
}

/// `completion_message`: a message whose calls are well formed renders to
/// text in which `binary-no-think` finds exactly those calls. A key holding
/// `<tool_call>` once opened a nested block in the rendered text.
#[test]
fn completion_message_tags_inside_arguments_stay_inside() {
    let input = r#"{"role": "assistant", "tool_calls": [{"name": "g", "arguments": {"a   yyyyyyyy\\\\\\\\<|<<<[re<<tool_call>'h(o>>ent</toc~l_alolwwwwwwwwwwww<<i |<|[all><<too/<|<[//": [1, {"b": "assistant", "tool_calls":null}]}}]}"#;
    let message: serde_json::Value = serde_json::from_str(input).unwrap();
    let call = &message["tool_calls"][0];
    let truth = vec![Call::new(call["name"].as_str().unwrap(), call["arguments"].clone()).unwrap()];
    let text = completion_text(&message).unwrap();
    let v = rule_by_name("binary-no-think")
        .unwrap()
        .score(&text, &truth);
    assert_eq!(v.reason, Reason::Ok, "{text}: {v:?}");
}

/// `jsonl_readers`, 2026-12-05: its harness counted a line of form feeds
/// as blank. The readers score it (an input error: `json.loads` refuses
/// it), as `jsonl::is_blank` defines blank; this input, the one it
/// stopped on, keeps that contract.
#[test]
fn jsonl_form_feed_lines_are_scored_not_skipped() {
    let data = b"\x0c \x0c\n m}\n\x00";
    let rule = rule_by_name("binary").unwrap();
    let options = jsonl::JsonlOptions {
        chunk_lines: 3,
        parallel: false,
        ..Default::default()
    };
    let mut out = Vec::new();
    let report = jsonl::score_jsonl(&*rule, &data[..], &mut out, options).unwrap();
    assert_eq!(
        (
            report.summary.count,
            report.input_errors,
            report.blank_lines
        ),
        (3, 3, 0)
    );
    let text = String::from_utf8(out).unwrap();
    let numbers: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["line"].clone())
        .collect();
    assert_eq!(numbers, [1, 2, 3], "{text}");
}

/// `fast_readers`, 2026-12-05: a reply's payload `{}` (a whole object, not
/// a call) at the end of the payload was taken for a cut-off text (a JSON
/// error) by the fast path; the general reader, as the script, calls it a
/// schema error. Both readers agree now.
#[test]
fn tool_n1_payload_of_a_whole_non_call_object_is_a_schema_error() {
    let input = [
        r#"{"id": 1, "completion": "<think>t</think>\n<tool_call>\n{}</tool_call>", "ground_truth": "[]"}"#,
        r#"{"id": 2, "completion": "<think>t</think><tool_call>{\n}</tool_call>", "ground_truth": "[]"}"#,
        r#"{"id": 3, "completion": "<think>t</think><tool_call>{\"name\": \"f\"}</tool_call>", "ground_truth": [{"name": "f", "arguments": {}}]}"#,
        r#"{"id": 4, "completion": "<think>t</think><tool_call>{\"name\": \"f\"</tool_call>", "ground_truth": "[]"}"#,
    ]
    .join("\n");
    let rule = rule_by_name("tool-n1").unwrap();
    let options = jsonl::JsonlOptions {
        parallel: false,
        ..Default::default()
    };
    let (mut fast, mut general) = (Vec::new(), Vec::new());
    jsonl::score_jsonl(&*rule, input.as_bytes(), &mut fast, options).unwrap();
    jsonl::score_jsonl_with(
        &*rule,
        jsonl::call_truth,
        input.as_bytes(),
        &mut general,
        options,
    )
    .unwrap();
    let (fast, general) = (
        String::from_utf8(fast).unwrap(),
        String::from_utf8(general).unwrap(),
    );
    assert_eq!(fast, general);
    let reasons: Vec<serde_json::Value> = fast
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        ["schema_error", "schema_error", "schema_error", "json_error"]
    );
}
