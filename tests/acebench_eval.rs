//! `toolgym eval acebench` end to end on the official excerpt of the reward
//! crate's fixtures (`crates/reward/tests/fixtures/acebench/`, written by
//! `scripts/fixtures/acebench_verdicts.py` with ACEBench's own evaluation,
//! `data_en/` laid out as ACEBench's data folder): the replies of
//! `aggregate.json` are judged, and every verdict and column is compared
//! with the official numbers.

use serde_json::{json, Value};
use std::path::Path;

#[path = "support/cli.rs"]
mod cli;
use cli::{fails_naming, json_lines, text, toolgym};

#[path = "support/tiny_model.rs"]
mod tiny_model;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/reward/tests/fixtures/acebench"
);

#[test]
fn eval_acebench_judges_completions_with_the_official_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let data = Path::new(FIXTURES);
    let agg: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURES).join("aggregate.json")).unwrap(),
    )
    .unwrap();
    let completions = dir.path().join("c.jsonl");
    let mut lines = String::new();
    for (id, reply) in agg["replies"].as_object().unwrap() {
        lines.push_str(&json!({"id": id, "completion": reply}).to_string());
        lines.push('\n');
    }
    lines.push_str("not json\n");
    std::fs::write(&completions, lines).unwrap();
    let (out, summary) = (dir.path().join("v.jsonl"), dir.path().join("s.json"));
    let o = toolgym(&[
        "eval",
        "acebench",
        "--data-dir",
        data.to_str().unwrap(),
        "--completions",
        completions.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("1 bad line(s) skipped"),
        "{}",
        text(&o.stderr)
    );
    let table = text(&o.stdout);
    assert!(table.contains("normal_summary"), "{table}");
    let verdicts = json_lines(&out);
    assert_eq!(verdicts.len(), agg["replies"].as_object().unwrap().len());
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    for (cat, header) in agg["categories"].as_object().unwrap() {
        let ours = &s["categories"][cat];
        assert_eq!(ours["accuracy"], header["accuracy"], "{cat}");
        assert_eq!(ours["correct"], header["correct_count"], "{cat}");
        let valid = verdicts
            .iter()
            .filter(|v| v["category"] == json!(cat) && v["valid"] == json!(true))
            .count();
        assert_eq!(json!(valid), header["correct_count"], "{cat}");
    }
    let t = &agg["table"];
    for (ours, official) in [
        ("atom", "atom"),
        ("single_turn", "single_turn"),
        ("multi_turn", "multiple_turn"),
        ("normal_summary", "normal_summary"),
        ("special_summary", "special_summary"),
        ("summary", "Summary"),
    ] {
        assert_eq!(s[ours].as_f64(), t[official].as_f64(), "{ours}");
    }
}

#[test]
fn eval_acebench_selects_categories_skips_missing_and_writes_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let data = FIXTURES;
    // One completion only: --skip-missing judges that case alone.
    let completions = dir.path().join("c.jsonl");
    std::fs::write(
        &completions,
        "{\"id\": \"special_irrelevant_0\", \"completion\": \"[\\\"Due to the limitations of the function, I cannot solve this problem.\\\"]\"}\n",
    )
    .unwrap();
    let out = dir.path().join("v.jsonl");
    let o = toolgym(&[
        "eval",
        "acebench",
        "--data-dir",
        data,
        "--completions",
        completions.to_str().unwrap(),
        "--categories",
        "special",
        "--skip-missing",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v = json_lines(&out);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["valid"], json!(true));
    // Without --skip-missing the other cases count as wrong.
    let o = toolgym(&[
        "eval",
        "acebench",
        "--data-dir",
        data,
        "--completions",
        completions.to_str().unwrap(),
        "--categories",
        "special_irrelevant",
        "--limit",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--summary",
        dir.path().join("s3.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("2 case(s) have no completion"),
        "{}",
        text(&o.stderr)
    );
    // A completion given as a chat message is read back as Tool-N1 text,
    // which the official decoder does not read: said, not silent.
    let messages = dir.path().join("m.jsonl");
    // Judges one case whose completion is the message `m`: its stderr.
    let judge_message = |m: &str| {
        std::fs::write(
            &messages,
            format!("{{\"id\": \"special_irrelevant_0\", \"completion\": {m}}}\n"),
        )
        .unwrap();
        let o = toolgym(&[
            "eval",
            "acebench",
            "--data-dir",
            data,
            "--completions",
            messages.to_str().unwrap(),
            "--categories",
            "special_irrelevant",
            "--limit",
            "1",
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stderr)
    };
    let e = judge_message(r#"{"role": "assistant", "content": "x", "reasoning_content": "r"}"#);
    assert!(e.contains("1 completion(s) are chat messages"), "{e}");
    // A message of text alone is its text: no warning (it said such
    // completions scored 0, and they were judged as written).
    let e = judge_message(r#"{"role": "assistant", "content": "x"}"#);
    assert!(!e.contains("chat messages"), "{e}");
    let v = json_lines(&out);
    assert_eq!(v[1]["error_type"], json!("toolgym:no_completion"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s3.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["categories"]["special_irrelevant"]["no_completion"],
        json!(2)
    );
    // The summary says what was run, and the limit in a key of its own.
    let run = summary["run"].as_str().unwrap();
    assert!(
        run.starts_with("ACEBench ") && run.contains("--limit 3"),
        "{run}"
    );
    assert_eq!(summary["limit"], json!(3));

    // Official prompts: the ACEBench system prompt, functions as a repr.
    let prompts = dir.path().join("p.jsonl");
    let o = toolgym(&[
        "eval",
        "acebench",
        "--data-dir",
        data,
        "--categories",
        "normal_preference,special_incomplete",
        "--limit",
        "1",
        "--write-prompts",
        prompts.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let p = json_lines(&prompts);
    assert_eq!(p.len(), 2);
    let first = p[0]["prompt"].as_str().unwrap();
    assert!(
        first.starts_with(
            "<|im_start|>system\nYou are an AI assistant, and your role is called assistant."
        ),
        "{first}"
    );
    assert!(
        first.contains("Character Profile:\n") && first.contains("[{'name': '"),
        "{first}"
    );
    assert!(
        first.contains("<|im_start|>user\nConversation history 1..t:\nuser: "),
        "{first}"
    );
    assert!(p[1]["prompt"]
        .as_str()
        .unwrap()
        .contains("Missing necessary parameters (key1, key2, ...)"));
    // A toolgym template: the functions become tools.
    let o = toolgym(&[
        "eval",
        "acebench",
        "--data-dir",
        data,
        "--categories",
        "normal_atom_bool",
        "--limit",
        "1",
        "--template",
        "tool-n1",
        "--write-prompts",
        prompts.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let p = json_lines(&prompts);
    assert!(
        p[0]["prompt"].as_str().unwrap().contains("<tools>"),
        "{}",
        p[0]["prompt"]
    );
}

/// Run over every category, a data folder missing some category files
/// says which (their columns read N/A): a partial download passed for the
/// whole benchmark. Named categories say nothing (a missing one is an error).
#[test]
fn eval_acebench_names_categories_without_a_data_file() {
    let (dir, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data = dir.path().join("data_en");
    std::fs::create_dir_all(data.join("possible_answer")).unwrap();
    let from = Path::new(FIXTURES).join("data_en");
    for name in ["data_normal_atom_bool.json", "data_special_incomplete.json"] {
        for sub in ["", "possible_answer"] {
            std::fs::copy(from.join(sub).join(name), data.join(sub).join(name)).unwrap();
        }
    }
    let prompts = out.path().join("p.jsonl");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "acebench",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.extend(["--limit", "1", "--write-prompts", prompts.to_str().unwrap()]);
        let o = toolgym(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stderr)
    };
    let stderr = run(&[]);
    assert!(
        stderr
            .contains("no data file for 13 of the 15 categories, not judged (N/A in the table): "),
        "{stderr}"
    );
    assert!(stderr.contains("normal_atom_enum"), "{stderr}");
    assert!(!stderr.contains("special_incomplete,"), "{stderr}");
    assert!(!run(&["--categories", "normal_atom_bool"]).contains("no data file"));
}

#[test]
fn eval_acebench_reports_bad_inputs_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let fails = |data: &str, extra: &[&str], needle: &str| {
        let mut args = vec!["eval", "acebench", "--data-dir", data, "--completions", "-"];
        args.extend(extra);
        fails_naming(&args, needle);
    };
    fails(dir.path().to_str().unwrap(), &[], "no data_<category>.json");
    let data = FIXTURES;
    fails(
        data,
        &["--categories", "agent_multi_step"],
        "unknown ACEBench category \"agent_multi_step\"",
    );
    fails(data, &["--template", "nope"], "unknown template \"nope\"");
}

#[test]
fn eval_acebench_generates_with_a_local_model() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = tiny_model::save_tiny_model(dir.path());
    let (out, saved) = (dir.path().join("v.jsonl"), dir.path().join("c.jsonl"));
    let args = |extra: &[&str]| {
        let mut a = vec![
            "eval",
            "acebench",
            "--data-dir",
            FIXTURES,
            "--categories",
            "normal_atom_enum,special_irrelevant",
            "--limit",
            "1",
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| toolgym(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // A prompt and a decoder of two formats: every reply would score 0.
    for (template, decoder, said) in [
        ("official", "tool-n1", "which --decoder official reads"),
        ("tool-n1", "official", "which --decoder tool-n1 reads"),
    ] {
        let o = run(args(&[
            "--model",
            model_dir.to_str().unwrap(),
            "--template",
            template,
            "--decoder",
            decoder,
        ]));
        assert!(!o.status.success());
        let e = text(&o.stderr);
        assert!(
            e.contains("another format than the judge reads") && e.contains(said),
            "{e}"
        );
    }
    let o = run(args(&[
        "--model",
        model_dir.to_str().unwrap(),
        "--max-new-tokens",
        "4",
        "--batch-size",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--save-completions",
        saved.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("(greedy)"));
    let verdicts = json_lines(&out);
    assert_eq!(verdicts.len(), 2);
    // A random model answers nothing right.
    assert!(verdicts.iter().all(|v| v["valid"] == json!(false)));
    assert_eq!(json_lines(&saved).len(), 2);
    // The saved completions judge the same way.
    let again = dir.path().join("again.jsonl");
    let o = run(args(&[
        "--completions",
        saved.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(json_lines(&again), verdicts);
}

#[test]
fn skip_missing_leaves_a_conversation_with_a_missing_turn_out_whole() {
    // A conversation counts as solved only when every turn is: judging the
    // turns that are there would overstate it.
    let dir = tempfile::tempdir().unwrap();
    let agg: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURES).join("aggregate.json")).unwrap(),
    )
    .unwrap();
    let completions = dir.path().join("c.jsonl");
    let mut lines = String::new();
    for (id, reply) in agg["replies"].as_object().unwrap() {
        if id.starts_with("normal_multi_turn_user_switch")
            && id != "normal_multi_turn_user_switch_6_0"
        {
            lines.push_str(&json!({"id": id, "completion": reply}).to_string());
            lines.push('\n');
        }
    }
    std::fs::write(&completions, lines).unwrap();
    let out = dir.path().join("v.jsonl");
    // The switch category's completions in `file`, missing ones skipped.
    let judge = |file: &Path, more: &[&str]| {
        let mut args = vec![
            "eval",
            "acebench",
            "--data-dir",
            FIXTURES,
            "--completions",
            file.to_str().unwrap(),
            "--categories",
            "normal_multi_turn_user_switch",
            "--skip-missing",
        ];
        args.extend(more);
        toolgym(&args)
    };
    let o = judge(&completions, &["--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ids: Vec<String> = json_lines(&out)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 18, "{ids:?}");
    assert!(!ids
        .iter()
        .any(|id| id.starts_with("normal_multi_turn_user_switch_6_")));
    let err = text(&o.stderr);
    assert!(
        err.contains("18 of 20 case(s) judged, 1 without a completion left out, and 1 turn(s) of 1 multi-turn conversation(s) with a turn missing left out whole"),
        "{err}"
    );
    assert!(text(&o.stdout).contains("left out whole"));
    // Completions only of the broken conversation: nothing to judge is an
    // error, not an empty table.
    let only = dir.path().join("only.jsonl");
    let reply = &agg["replies"]["normal_multi_turn_user_switch_6_1"];
    std::fs::write(
        &only,
        format!(
            "{}\n",
            json!({"id": "normal_multi_turn_user_switch_6_1", "completion": reply})
        ),
    )
    .unwrap();
    let o = judge(&only, &[]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("nothing to judge"),
        "{}",
        text(&o.stderr)
    );
}

/// A case on which the official evaluation itself fails (a parameter of
/// a type it does not know) is counted wrong and said on stderr, naming
/// the case: it was counted wrong in silence.
#[test]
fn eval_acebench_says_which_cases_the_official_evaluation_fails_on() {
    let (dir, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data = dir.path().join("data_en");
    std::fs::create_dir_all(data.join("possible_answer")).unwrap();
    let from = Path::new(FIXTURES).join("data_en");
    let name = "data_normal_atom_bool.json";
    let answers = std::fs::read_to_string(from.join("possible_answer").join(name)).unwrap();
    let answer = answers.lines().next().unwrap();
    std::fs::write(
        data.join("possible_answer").join(name),
        format!("{answer}\n"),
    )
    .unwrap();
    // Every parameter of the first case's functions gets an unknown type.
    fn retype(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if m.get("type").is_some_and(Value::is_string) {
                    m.insert("type".into(), json!("strng"));
                }
                m.values_mut().for_each(retype);
            }
            Value::Array(items) => items.iter_mut().for_each(retype),
            _ => {}
        }
    }
    let text_of = std::fs::read_to_string(from.join(name)).unwrap();
    let mut first: Value = serde_json::from_str(text_of.lines().next().unwrap()).unwrap();
    retype(&mut first["function"]);
    std::fs::write(data.join(name), format!("{first}\n")).unwrap();
    let agg: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURES).join("aggregate.json")).unwrap(),
    )
    .unwrap();
    let id = first["id"].as_str().unwrap();
    let completions = out.path().join("c.jsonl");
    let line = json!({"id": id, "completion": agg["replies"][id]});
    std::fs::write(&completions, format!("{line}\n")).unwrap();
    let o = toolgym(&[
        "eval",
        "acebench",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--completions",
        completions.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("1 case(s) on which the official evaluation itself fails")
            && stderr.contains(&format!("the first is {id} (normal_atom_bool)")),
        "{stderr}"
    );
}
