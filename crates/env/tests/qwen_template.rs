//! `ChatMlTemplate::qwen2_5()` renders exactly what Qwen2.5-Instruct's own
//! chat template renders (through transformers' Jinja settings), on the
//! committed renderings of `scripts/fixtures/qwen_template_fixtures.py`.

use serde_json::Value;
use toolgym_env::{ChatMlTemplate, ChatTemplate, Message, Role, ToolSpec};
use toolgym_reward::Call;

fn message(m: &Value) -> Message {
    let role = Role::parse(m["role"].as_str().unwrap()).unwrap();
    let content = m["content"].as_str().unwrap_or("").to_string();
    match (role, m.get("tool_calls")) {
        (Role::Assistant, Some(calls)) => {
            let calls = calls
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let f = &c["function"];
                    Call::new(f["name"].as_str().unwrap(), f["arguments"].clone()).unwrap()
                })
                .collect();
            Message::assistant_calls(content, calls)
        }
        (Role::Tool, _) => Message::tool(m["name"].as_str().unwrap_or(""), content),
        _ => Message::new(role, content),
    }
}

#[test]
fn renders_like_the_official_chat_template() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/qwen2_5_template.json"
    );
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(cases.len(), 14);
    let template = ChatMlTemplate::qwen2_5();
    for case in &cases {
        let tools: Vec<ToolSpec> = ToolSpec::list_from_json(&case["tools"]).unwrap();
        let messages: Vec<Message> = case["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(message)
            .collect();
        let text = if case["add_generation_prompt"].as_bool().unwrap() {
            template.render_prompt(&tools, &messages)
        } else {
            template.render_transcript(&tools, &messages)
        };
        assert_eq!(text, case["text"].as_str().unwrap(), "{}", case["case"]);
    }
}

#[test]
fn replies_are_one_block_per_call() {
    let t = ChatMlTemplate::qwen2_5();
    let calls = [
        Call::new("f", serde_json::json!({"a": 1})).unwrap(),
        Call::new("g", serde_json::json!({})).unwrap(),
    ];
    assert_eq!(
        t.render_reply(Some("ignored"), &calls),
        "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"g\", \"arguments\": {}}\n</tool_call>"
    );
    assert_eq!(t.render_reply(Some("No tool fits."), &[]), "No tool fits.");
    // The reward parser reads the format.
    let reply = t.render_reply(None, &calls);
    let c = toolgym_reward::Completion::parse(&reply);
    assert_eq!(c.calls.unwrap().len(), 2);
}
