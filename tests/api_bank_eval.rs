//! `toolgym eval api-bank` end to end on the env crate's API-Bank fixtures
//! (`crates/env/tests/fixtures/apibank/`: the level-1 samples and databases,
//! and `verdicts.jsonl`, replies judged by the official `tool_manager.py`
//! offline, written by `scripts/fixtures/apibank_verdicts.py`).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;

#[path = "support/cli.rs"]
mod cli;
use cli::{fails_naming, json_lines, text, toolgym};

#[path = "support/tiny_model.rs"]
mod tiny_model;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/env/tests/fixtures/apibank"
);

/// The official verdict of each fixture reply of `form` (`b` bracket, `t`
/// Tool-N1) and `variant`, by sample id: (reply, correct).
fn official(form: &str, variant: &str) -> HashMap<String, (String, bool)> {
    json_lines(&Path::new(FIXTURES).join("verdicts.jsonl"))
        .into_iter()
        .filter(|v| v["f"] == json!(form) && v["t"] == json!(variant))
        .map(|v| {
            let id = v["id"].as_str().unwrap().to_string();
            (
                id,
                (v["r"].as_str().unwrap().to_string(), v["k"] == json!("ok")),
            )
        })
        .collect()
}

fn judge(replies: &HashMap<String, (String, bool)>, extra: &[&str]) -> (Vec<Value>, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let completions = dir.path().join("c.jsonl");
    let lines: Vec<String> = replies
        .iter()
        .map(|(id, (r, _))| json!({"id": id, "completion": r}).to_string())
        .collect();
    std::fs::write(&completions, lines.join("\n") + "\n").unwrap();
    let (out, summary) = (dir.path().join("v.jsonl"), dir.path().join("s.json"));
    let data = Path::new(FIXTURES).join("data");
    let mut args = vec![
        "eval",
        "api-bank",
        "--data-dir",
        data.to_str().unwrap(),
        "--completions",
        completions.to_str().unwrap(),
        "--skip-missing",
        "--network",
        "unavailable",
        "--out",
        out.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = toolgym(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    (json_lines(&out), s, text(&o.stdout))
}

#[test]
fn eval_api_bank_agrees_with_the_official_verdicts() {
    for (form, variant, extra) in [
        ("b", "gt", &[][..]),
        ("t", "gt_json", &["--format", "tool-n1"][..]),
    ] {
        let replies = official(form, variant);
        assert!(replies.len() > 300, "{form} {variant}: {}", replies.len());
        let (verdicts, _, table) = judge(&replies, extra);
        assert_eq!(verdicts.len(), replies.len());
        for v in &verdicts {
            let id = v["id"].as_str().unwrap();
            assert_eq!(v["valid"], json!(replies[id].1), "{form} {id}: {v}");
        }
        assert!(table.contains("all (official accuracy)"), "{table}");
    }
}

#[test]
fn eval_api_bank_writes_prompts_and_reports_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(FIXTURES).join("data");
    let prompts = dir.path().join("p.jsonl");
    let o = toolgym(&[
        "eval",
        "api-bank",
        "--data-dir",
        data.to_str().unwrap(),
        "--limit",
        "3",
        "--write-prompts",
        prompts.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let p = json_lines(&prompts);
    assert_eq!(p.len(), 3);
    let first = p[0]["prompt"].as_str().unwrap();
    assert!(
        first.contains("[ApiName(key1='value1', key2='value2', ...)]"),
        "{first}"
    );
    assert!(first.ends_with("<|im_start|>assistant\n"), "{first}");
    // The category is the sample's dialogue file, not the API it must
    // call (that would hand the answer to the generator).
    let category = p[0]["category"].as_str().unwrap();
    assert!(category.contains("-level-"), "{category}");
    let o = toolgym(&[
        "eval",
        "api-bank",
        "--data-dir",
        data.to_str().unwrap(),
        "--limit",
        "1",
        "--template",
        "tool-n1",
        "--write-prompts",
        prompts.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(json_lines(&prompts)[0]["prompt"]
        .as_str()
        .unwrap()
        .contains("<tools>"));

    let fails = |data: &str, extra: &[&str], needle: &str| {
        let mut args = vec!["eval", "api-bank", "--data-dir", data, "--completions", "-"];
        args.extend(extra);
        fails_naming(&args, needle);
    };
    let empty = dir.path().to_str().unwrap();
    fails(empty, &[], empty);
    fails(
        data.to_str().unwrap(),
        &["--template", "nope"],
        "unknown template \"nope\"",
    );
}

#[test]
fn eval_api_bank_generates_with_a_local_model() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = tiny_model::save_tiny_model(dir.path());
    let data = Path::new(FIXTURES).join("data");
    let (out, saved) = (dir.path().join("v.jsonl"), dir.path().join("c.jsonl"));
    let o = toolgym(&[
        "eval",
        "api-bank",
        "--data-dir",
        data.to_str().unwrap(),
        "--limit",
        "2",
        "--model",
        model_dir.to_str().unwrap(),
        "--max-new-tokens",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--save-completions",
        saved.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("(greedy)"));
    let verdicts = json_lines(&out);
    assert_eq!(verdicts.len(), 2);
    assert!(verdicts.iter().all(|v| v["valid"] == json!(false)));
    assert_eq!(json_lines(&saved).len(), 2);
    // The official prompt with the Tool-N1 reader: every reply would
    // score 0.
    let o = toolgym(&[
        "eval",
        "api-bank",
        "--data-dir",
        data.to_str().unwrap(),
        "--model",
        model_dir.to_str().unwrap(),
        "--format",
        "tool-n1",
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("which --format bracket (or auto) reads"), "{e}");
}
