//! Pinned prompt and reply texts.
//!
//! The Tool-N1 golden files under `tests/fixtures/prompts/` were checked
//! against a Python reproduction of the released pipeline
//! (`construct_prompt` of `verl/examples/data_preprocess/toolcall_preprocess.py`
//! rendered with Qwen2.5's Jinja chat template), with a ToolACE tool's
//! top-level keys other than name, description and parameters (its
//! `"required": null`) left out, as toolgym lists tools (`template.rs`'s
//! known differences): byte-identical under that. Their tool lines keep
//! the dataset's key order, as `json.dumps` of the loaded tools does
//! (checked again with Python's `json.dumps` on 2026-12-07, and below
//! against the dataset's own text).

use serde_json::json;
use std::path::{Path, PathBuf};
use toolgym_env::data::{toolace, xlam};
use toolgym_env::template::{template_by_name, TEMPLATES};
use toolgym_env::{ChatMlTemplate, ChatTemplate, Message, Task, ToolSpec};
use toolgym_reward::{rule_by_name, Call};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn golden(name: &str) -> String {
    std::fs::read_to_string(fixture(&format!("prompts/{name}"))).unwrap()
}

#[test]
fn tool_n1_prompt_of_an_xlam_task_is_pinned() {
    let tasks = xlam::load(&fixture("xlam_sample.json")).unwrap().tasks;
    let task = &tasks[1];
    assert_eq!(task.id, "xlam-8");
    assert_eq!(
        ChatMlTemplate::tool_n1().prompt(task),
        golden("tool_n1_xlam_8.txt")
    );
    assert_eq!(
        ChatMlTemplate::tool_n1_no_reasoning().prompt(task),
        golden("tool_n1_no_think_xlam_8.txt")
    );
}

/// The released pipeline lists each tool as `json.dumps({"type":
/// "function", "function": tool})` of the dataset's loaded tools: xLAM's
/// `tools` text is written by `json.dumps` too, so the lines hold its
/// tools byte for byte, keys in the dataset's order.
#[test]
fn tool_n1_tool_lines_keep_the_datasets_text() {
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("xlam_sample.json")).unwrap())
            .unwrap();
    let tasks = xlam::load(&fixture("xlam_sample.json")).unwrap().tasks;
    let mut checked = 0;
    for task in &tasks {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| format!("xlam-{}", r["id"]) == task.id)
            .unwrap();
        let prompt = ChatMlTemplate::tool_n1().prompt(task);
        let listed = prompt.split("<tools>\n").nth(1).unwrap();
        let listed = listed.split("\n</tools>").next().unwrap();
        let tools: Vec<&str> = listed
            .lines()
            .map(|l| {
                l.strip_prefix(r#"{"type": "function", "function": "#)
                    .and_then(|l| l.strip_suffix('}'))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            format!("[{}]", tools.join(", ")),
            row["tools"].as_str().unwrap(),
            "{}",
            task.id
        );
        checked += 1;
    }
    assert_eq!(checked, tasks.len());
    assert!(checked >= 2);
}

#[test]
fn tool_n1_prompt_of_a_multi_turn_toolace_task_is_pinned() {
    let tasks = toolace::load(&fixture("toolace_sample.json"), Default::default())
        .unwrap()
        .tasks;
    let task = &tasks[1];
    assert_eq!(task.id, "toolace-0-5");
    assert_eq!(
        ChatMlTemplate::tool_n1().prompt(task),
        golden("tool_n1_toolace_0_5.txt")
    );
}

fn demo_task() -> Task {
    let tools = vec![
        ToolSpec::builder("get_weather", "Weather forecast for a city.")
            .required("city", "string", "")
            .optional("days", "integer", "")
            .build(),
        ToolSpec::builder("add", "Adds two integers.")
            .required("a", "integer", "")
            .required("b", "integer", "")
            .build(),
    ];
    Task::new(
        "demo",
        "test",
        tools,
        vec![Message::user("Weather in Oslo for 2 days?")],
        vec![Call::new("get_weather", json!({"city": "Oslo", "days": 2})).unwrap()],
    )
}

#[test]
fn tool_n1_prompt_with_json_schema_tools_is_pinned() {
    let p = ChatMlTemplate::tool_n1().prompt(&demo_task());
    let tools = "<tools>\n\
{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather forecast for a city.\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"days\": {\"type\": \"integer\"}}, \"required\": [\"city\"]}}}\n\
{\"type\": \"function\", \"function\": {\"name\": \"add\", \"description\": \"Adds two integers.\", \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"integer\"}}, \"required\": [\"a\", \"b\"]}}}\n\
</tools>";
    assert!(p.contains(tools), "{p}");
    assert!(p.starts_with("<|im_start|>system\nYou are an expert in composing functions."));
    assert!(p.ends_with("correct. \n<|im_end|>\n<|im_start|>user\nWeather in Oslo for 2 days?<|im_end|>\n<|im_start|>assistant\n"));
}

#[test]
fn compact_prompts_are_pinned() {
    let task = demo_task();
    assert_eq!(
        ChatMlTemplate::compact().prompt(&task),
        "<|im_start|>system\nYou can call tools.\n<tools>\n\
get_weather(city: string, days?: integer) - Weather forecast for a city.\n\
add(a: integer, b: integer) - Adds two integers.\n</tools>\n\
Reply <think>why</think> then <tool_call>[{\"name\": ..., \"arguments\": {...}}]</tool_call>. Use [] if no tool fits.\n<|im_end|>\n\
<|im_start|>user\nWeather in Oslo for 2 days?<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        ChatMlTemplate::compact_no_reasoning().prompt(&task),
        "<|im_start|>system\nYou can call tools.\n<tools>\n\
get_weather(city: string, days?: integer) - Weather forecast for a city.\n\
add(a: integer, b: integer) - Adds two integers.\n</tools>\n\
Reply <tool_call>[{\"name\": ..., \"arguments\": {...}}]</tool_call>. Use [] if no tool fits.\n<|im_end|>\n\
<|im_start|>user\nWeather in Oslo for 2 days?<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn sft_targets_are_pinned_and_accepted_by_the_matching_rule() {
    let mut task = demo_task();
    let think = ChatMlTemplate::tool_n1();
    assert_eq!(
        think.target(&task),
        "<think>I need to call get_weather.</think>\n<tool_call>\n[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 2}}]\n</tool_call><|im_end|>"
    );
    let no_think = ChatMlTemplate::tool_n1_no_reasoning();
    assert_eq!(
        no_think.target(&task),
        "<tool_call>\n[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 2}}]\n</tool_call><|im_end|>"
    );
    let binary = rule_by_name("binary").unwrap();
    let binary_no_think = rule_by_name("binary-no-think").unwrap();
    let tool_n1 = rule_by_name("tool-n1").unwrap();
    assert_eq!(
        binary
            .score(&think.target(&task), &task.ground_truth)
            .reward,
        1.0
    );
    assert_eq!(
        tool_n1
            .score(&think.target(&task), &task.ground_truth)
            .reward,
        1.0
    );
    assert_eq!(
        binary_no_think
            .score(&no_think.target(&task), &task.ground_truth)
            .reward,
        1.0
    );
    assert_eq!(
        binary
            .score(&no_think.target(&task), &task.ground_truth)
            .reward,
        0.0
    );

    // No call expected: an empty list, accepted by binary.
    task.ground_truth.clear();
    task.reasoning = Some("Nothing fits.".into());
    let t = think.target(&task);
    assert_eq!(
        t,
        "<think>Nothing fits.</think>\n<tool_call>\n[]\n</tool_call><|im_end|>"
    );
    assert_eq!(binary.score(&t, &[]).reward, 1.0);

    // Non-ASCII arguments stay readable in replies; tools are escaped as in
    // Python's json.dumps.
    task.ground_truth = vec![Call::new("get_weather", json!({"city": "Zürich"})).unwrap()];
    task.tools[0].description = "Météo.".into();
    assert!(think.target(&task).contains("\"Zürich\""));
    assert!(think.prompt(&task).contains("M\\u00e9t\\u00e9o."));
    assert_eq!(
        binary
            .score(&think.target(&task), &task.ground_truth)
            .reward,
        1.0
    );
}

#[test]
fn templates_by_name() {
    for (name, _) in TEMPLATES {
        let t = template_by_name(name).unwrap();
        assert_eq!(t.name(), name);
        let plain = name.ends_with("no-think") || name == "qwen2.5";
        assert_eq!(t.uses_reasoning(), !plain);
    }
}
