//! xLAM, ToolACE and BFCL conversion on fixture files in the real formats,
//! and the whole `prepare` pipeline with its counts.

use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toolgym_env::data::bfcl;
use toolgym_env::data::toolace::{self, ToolAceOptions};
use toolgym_env::data::{xlam, DropReason};
use toolgym_env::{prepare, read_jsonl, PrepareOptions, Role, SingleTurnSpec};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reasons(dropped: &[toolgym_env::data::Dropped]) -> BTreeMap<DropReason, usize> {
    let mut m = BTreeMap::new();
    for d in dropped {
        *m.entry(d.reason).or_insert(0) += 1;
    }
    m
}

#[test]
fn xlam_records_become_tasks_and_bad_ones_are_reported() {
    let loaded = xlam::load(&fixture("xlam_sample.json")).unwrap();
    assert_eq!(loaded.raw_records, 9);
    let ids: Vec<&str> = loaded.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["xlam-0", "xlam-8", "xlam-1234", "xlam-2001"]);
    // A UTF-8 byte-order mark in front changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let bom = dir.path().join("bom.json");
    let text = std::fs::read(fixture("xlam_sample.json")).unwrap();
    std::fs::write(&bom, [b"\xEF\xBB\xBF".as_slice(), &text].concat()).unwrap();
    let with_bom = xlam::load(&bom).unwrap();
    assert_eq!(with_bom.tasks, loaded.tasks);
    assert_eq!(with_bom.raw_records, 9);
    assert_eq!(
        reasons(&loaded.dropped),
        BTreeMap::from([
            (DropReason::BadRecord, 2),
            (DropReason::BadTools, 1),
            (DropReason::BadAnswers, 1),
            (DropReason::UnknownTool, 1),
        ])
    );
    let unknown = loaded
        .dropped
        .iter()
        .find(|d| d.reason == DropReason::UnknownTool)
        .unwrap();
    assert_eq!((unknown.index, unknown.id.as_deref()), (4, Some("3001")));
    assert!(
        unknown.detail.contains("get_stock_quote"),
        "{}",
        unknown.detail
    );
    let not_object = loaded.dropped.iter().find(|d| d.index == 7).unwrap();
    assert_eq!(not_object.reason, DropReason::BadRecord);

    // Parallel calls to the same tool, and xLAM types normalised.
    let t0 = &loaded.tasks[0];
    assert_eq!(t0.ground_truth.len(), 2);
    assert_eq!(t0.messages.len(), 1);
    let t8 = &loaded.tasks[1];
    let peak = &t8.tools[0];
    assert_eq!(peak.parameters["properties"]["nums"]["type"], "array");
    assert_eq!(
        peak.parameters["properties"]["nums"]["items"]["type"],
        "integer"
    );
    assert_eq!(peak.parameters["required"], json!(["nums"]));
    assert_eq!(
        peak.original_parameters.as_ref().unwrap()["nums"]["type"],
        "List[int]"
    );
    // Parameters with a default are optional.
    assert!(t8.tools[1].parameters.get("required").is_none());
    let fr = &loaded.tasks[3];
    assert_eq!(fr.query(), Some("Quelle est la météo à Montréal ?"));
    let props = &fr.tools[0].parameters["properties"];
    assert_eq!(props["units"]["type"], "string");
    assert_eq!(props["hours"]["anyOf"][1]["type"], "null");
    assert_eq!(fr.tools[0].parameters["required"], json!(["city"]));
}

#[test]
fn xlam_ground_truth_passes_its_own_schemas() {
    let loaded = xlam::load(&fixture("xlam_sample.json")).unwrap();
    for task in &loaded.tasks {
        let mut reg: toolgym_env::ToolRegistry = toolgym_env::ToolRegistry::new();
        for t in &task.tools {
            reg.register_spec(t.clone()).unwrap();
        }
        for call in &task.ground_truth {
            reg.validate(call)
                .unwrap_or_else(|e| panic!("{}: {e}", task.id));
        }
    }
}

#[test]
fn toolace_dialogues_split_into_one_task_per_call() {
    let loaded = toolace::load(&fixture("toolace_sample.json"), ToolAceOptions::default()).unwrap();
    assert_eq!(loaded.raw_records, 6);
    let ids: Vec<&str> = loaded.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "toolace-0-1",
            "toolace-0-5",
            "toolace-1-1",
            "toolace-1-5",
            "toolace-2-7"
        ]
    );
    let multi: Vec<bool> = loaded.tasks.iter().map(|t| t.is_multi_turn()).collect();
    assert_eq!(multi, [false, true, false, true, true]);
    assert_eq!(
        reasons(&loaded.dropped),
        BTreeMap::from([
            (DropReason::BadRecord, 1),
            (DropReason::NoTools, 1),
            (DropReason::CallParseError, 1),
            (DropReason::UnknownTool, 1),
            (DropReason::EmptyCallList, 1),
            (DropReason::BadConversation, 1),
        ])
    );
    let parse = loaded
        .dropped
        .iter()
        .find(|d| d.reason == DropReason::CallParseError)
        .unwrap();
    assert_eq!((parse.index, parse.turn), (2, Some(3)));
    assert!(parse.detail.contains("CHF"), "{}", parse.detail);

    // Context: ToolACE's own system text, then the turns before the call.
    let t = &loaded.tasks[1];
    assert_eq!(t.messages[0].role, Role::System);
    assert!(t.messages[0]
        .content
        .ends_with("JSON format that you can invoke:\n"));
    let roles: Vec<Role> = t.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Assistant,
            Role::User
        ]
    );
    assert_eq!(
        t.messages[2].tool_calls.as_ref().unwrap()[0].name,
        "GetCompetitions"
    );
    assert_eq!(t.ground_truth[0].name, "Get Manager Placeholder Image");
    assert_eq!(t.ground_truth[0].arguments["sport"], "football");
    // "dict" parameters normalised, spaces in tool names kept.
    assert_eq!(t.tools[1].parameters["type"], "object");

    // Tricky Python syntax: quotes, commas, dicts, lists, floats, None, escapes.
    let c = &loaded.tasks[2].ground_truth;
    assert_eq!(c[0].name, "Company Search");
    assert_eq!(c[0].arguments["query"], "fintech, \"europe\"");
    assert_eq!(
        c[0].arguments["filters"],
        json!({"region": "Europe", "size": "large"})
    );
    assert_eq!(c[0].arguments["min_score"], json!(0.75));
    assert_eq!(c[0].arguments["tags"], json!(["ai", "b2b"]));
    assert_eq!(
        c[1].arguments,
        json!({"base": "USD", "target": "EUR"})
            .as_object()
            .unwrap()
            .clone()
    );
    let later = &loaded.tasks[3].ground_truth;
    assert_eq!(later[1].arguments["query"], "it's été");
    assert_eq!(later[1].arguments["limit"], json!(null));
    // Human/gpt/observation roles map to user/assistant/tool.
    assert_eq!(loaded.tasks[3].messages[3].role, Role::Tool);
}

#[test]
fn toolace_no_call_option_adds_no_call_tasks() {
    let opts = ToolAceOptions {
        no_call_tasks: true,
    };
    let loaded = toolace::load(&fixture("toolace_sample.json"), opts).unwrap();
    let no_call: Vec<&str> = loaded
        .tasks
        .iter()
        .filter(|t| t.expects_no_call())
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(no_call, ["toolace-0-3", "toolace-0-7", "toolace-1-3"]);
}

#[test]
fn prepare_writes_splits_and_counts_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = PrepareOptions::new(dir.path().join("out"));
    opts.add("xlam", fixture("xlam_sample.json")).unwrap();
    opts.add("toolace", fixture("toolace_sample.json")).unwrap();
    opts.val_fraction = 0.3;
    opts.irrelevance_rate = 0.5;
    opts.seed = 3;
    let report = prepare(&opts).unwrap();

    let x = &report.sources[0];
    assert_eq!(
        (
            x.source.as_str(),
            x.raw_records,
            x.kept_records,
            x.single_turn,
            x.multi_turn
        ),
        ("xlam", 9, 4, 4, 0)
    );
    assert_eq!(x.dropped_total(), 5);
    let t = &report.sources[1];
    assert_eq!(
        (
            t.source.as_str(),
            t.raw_records,
            t.kept_records,
            t.single_turn,
            t.multi_turn
        ),
        ("toolace", 6, 3, 2, 3)
    );
    assert_eq!(t.dropped_total(), 6);
    // Eligible: single-turn tasks with a tool left after removing the called
    // ones: xlam-1234, xlam-2001, toolace-0-1.
    assert_eq!(
        (report.irrelevance_eligible, report.irrelevance_added),
        (3, 1)
    );
    assert_eq!(report.train + report.validation, 4 + 5 + 1);

    let train = read_jsonl(dir.path().join("out/train.jsonl")).unwrap();
    let val = read_jsonl(dir.path().join("out/validation.jsonl")).unwrap();
    assert_eq!((train.len(), val.len()), (report.train, report.validation));
    assert!(!val.is_empty());
    // The steps of one dialogue stay on one side.
    for v in &val {
        if let Some(rest) = v.id.strip_prefix("toolace-") {
            let record = rest.split('-').next().unwrap();
            assert!(!train
                .iter()
                .any(|t| t.id.starts_with(&format!("toolace-{record}-"))));
        }
    }
    let aug: Vec<_> = train
        .iter()
        .chain(&val)
        .filter(|t| t.meta.contains_key("augmented"))
        .collect();
    assert_eq!(aug.len(), 1);
    assert!(aug[0].ground_truth.is_empty());
    assert!(!aug[0].tools.is_empty());

    let dropped = std::fs::read_to_string(dir.path().join("out/dropped.jsonl")).unwrap();
    assert_eq!(dropped.lines().count(), 11);
    let report_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    assert_eq!(report_json["sources"][0]["dropped"]["unknown_tool"], 1);

    let table = report.to_string();
    for needle in [
        "xlam",
        "toolace",
        "total",
        "unknown_tool",
        "call_parse_error",
        "record #4 (line 26) of ",
        "xlam_sample.json (id 3001)",
        "train.jsonl",
    ] {
        assert!(table.contains(needle), "{needle} missing from:\n{table}");
    }

    // Same seed, same result; the canonical reply of every task scores 1.
    let again = toolgym_env::prepare::prepare_in_memory(&opts).unwrap();
    assert_eq!(again.train, train);
    let spec = SingleTurnSpec::tool_n1();
    for task in train.iter().chain(&val) {
        assert_eq!(
            spec.score(task, &spec.target(task)).reward,
            1.0,
            "{}",
            task.id
        );
    }
}

#[test]
fn prepare_rejects_bad_options_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let opts = PrepareOptions::new(dir.path());
    assert!(matches!(
        prepare(&opts),
        Err(toolgym_env::PrepareError::NoInput)
    ));
    let mut bad = PrepareOptions::new(dir.path());
    bad.add("xlam", fixture("xlam_sample.json")).unwrap();
    bad.val_fraction = 1.5;
    assert!(matches!(
        prepare(&bad),
        Err(toolgym_env::PrepareError::Option { .. })
    ));
    let mut missing = PrepareOptions::new(dir.path());
    missing.add("xlam", dir.path().join("nope.json")).unwrap();
    let e = prepare(&missing).unwrap_err().to_string();
    assert!(e.contains("nope.json"), "{e}");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "[{\"id\": 1}, {oops").unwrap();
    let mut b = PrepareOptions::new(dir.path());
    b.add("toolace", broken).unwrap();
    let e = prepare(&b).unwrap_err().to_string();
    assert!(e.contains("broken.json") && e.contains("line 1"), "{e}");
    let e = b.add("glaive", "g.json").unwrap_err().to_string();
    assert!(e.contains("glaive") && e.contains("xlam, toolace"), "{e}");
    // `--input xlam=`: named, not ": No such file or directory".
    let mut empty = PrepareOptions::new(dir.path());
    empty.add("xlam", "").unwrap();
    let e = prepare(&empty).unwrap_err().to_string();
    assert!(e.contains("the xlam input has no file name"), "{e}");
}

#[test]
fn jsonl_input_reports_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    let good = json!({"id": 5, "query": "q", "tools": "[{\"name\": \"f\", \"description\": \"\", \"parameters\": {}}]", "answers": "[{\"name\": \"f\", \"arguments\": {}}]"});
    std::fs::write(&path, format!("{good}\n\n{{not json\n{good}\n")).unwrap();
    let loaded = xlam::load(&path).unwrap();
    assert_eq!(loaded.raw_records, 3);
    assert_eq!(loaded.tasks.len(), 2);
    assert_eq!(loaded.dropped[0].index, 2);
    assert!(loaded.dropped[0].detail.starts_with("line 3"));
}

/// The BFCL excerpts another helper generated for the reward crate, in the
/// official layout (read-only here).
fn bfcl_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../reward/tests/fixtures/bfcl")
}

#[test]
fn bfcl_cases_load_with_answers_and_convert_to_tasks() {
    let dir = bfcl_fixtures();
    if !dir.is_dir() {
        eprintln!("skipping: {} not present", dir.display());
        return;
    }
    let cases = bfcl::load_dir(&dir).unwrap();
    assert!(cases.len() >= 100, "{}", cases.len());
    let spec = SingleTurnSpec::tool_n1();
    let mut by_category: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        *by_category.entry(case.category.as_str()).or_default() += 1;
        assert!(case.functions.is_array(), "{}", case.id);
        if case.is_irrelevance() {
            assert!(case.possible_answer.is_none());
        } else {
            assert!(case.possible_answer.is_some(), "{} has no answer", case.id);
        }
        let task = case.to_task().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(task.meta["bfcl_category"], json!(case.category));
        assert_eq!(task.expects_no_call(), case.is_irrelevance());
        assert_eq!(task.tools.len(), case.functions.as_array().unwrap().len());
        for t in &task.tools {
            assert_ne!(t.parameters["type"], "dict");
        }
        // The canonical answer is consistent with its own format.
        assert_eq!(
            spec.score(&task, &spec.target(&task)).reward,
            1.0,
            "{}",
            task.id
        );
    }
    assert!(by_category.contains_key("simple_python") && by_category.contains_key("irrelevance"));

    let simple = cases.iter().find(|c| c.id == "simple_python_16").unwrap();
    let task = simple.to_task().unwrap();
    assert_eq!(task.ground_truth[0].name, "calculus.derivative");
    // ["2x**2", ...] → first value; ["x", ""] → "x"; [1] → 1.
    assert_eq!(
        serde_json::Value::Object(task.ground_truth[0].arguments.clone()),
        json!({"function": "2x**2", "value": 1, "function_variable": "x"})
    );
}

/// A folder entry named like a category file that is not a regular file
/// (a dangling link, a directory) is an error naming it, not a category
/// missing without a word.
#[cfg(unix)]
#[test]
fn bfcl_folder_entries_that_are_no_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let case = "{\"id\": \"a\", \"question\": [[{\"role\": \"user\", \"content\": \"q\"}]], \"function\": []}\n";
    std::fs::write(dir.path().join("BFCL_v4_simple_python.json"), case).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a category").unwrap();
    // A folder with no category file is the wrong folder.
    let empty = tempfile::tempdir().unwrap();
    let e = bfcl::load_dir(empty.path()).unwrap_err().to_string();
    assert!(e.contains("no BFCL_v<N>_<category>.json file in it"), "{e}");
    assert_eq!(bfcl::load_dir(dir.path()).unwrap().len(), 1);
    let link = dir.path().join("BFCL_v4_simple_java.json");
    std::os::unix::fs::symlink(dir.path().join("gone.json"), &link).unwrap();
    let e = bfcl::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("BFCL_v4_simple_java.json") && e.contains("not a regular file"),
        "{e}"
    );
    std::fs::remove_file(&link).unwrap();
    std::fs::create_dir(&link).unwrap();
    assert!(bfcl::load_dir(dir.path()).is_err());
}

#[test]
fn bfcl_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("BFCL_v4_simple_python.json");
    std::fs::write(&path, "{\"id\": \"a\", \"question\": [[{\"role\": \"user\", \"content\": \"q\"}]], \"function\": []}\n{\"question\": []}\n").unwrap();
    let e = bfcl::load_file(&path).unwrap_err().to_string();
    assert!(e.contains("BFCL_v4_simple_python.json:2"), "{e}");
    assert!(bfcl::load_file(&dir.path().join("other.json")).is_err());
    std::fs::write(&path, "{\"id\": \"a\", \"question\": [[{\"role\": \"user\", \"content\": \"q\"}], [{\"role\": \"user\", \"content\": \"r\"}]], \"function\": []}\n").unwrap();
    let cases = bfcl::load_file(&path).unwrap();
    let e = cases[0].to_task().unwrap_err().to_string();
    assert!(
        e.contains("multi-turn") && e.contains("BFCL_v4_simple_python.json:1: BFCL case a:"),
        "{e}"
    );
    // An id given twice, in the questions or in the answers, is named
    // with both lines (not judged against whichever came last).
    let case = |id: &str| {
        format!("{{\"id\": \"{id}\", \"question\": [[{{\"role\": \"user\", \"content\": \"q\"}}]], \"function\": []}}\n")
    };
    std::fs::write(&path, [case("a"), case("b"), case("a")].concat()).unwrap();
    let e = bfcl::load_file(&path).unwrap_err().to_string();
    assert!(e.contains(":3") && e.contains("repeats line 1"), "{e}");
    std::fs::write(&path, [case("a"), case("b")].concat()).unwrap();
    std::fs::create_dir(dir.path().join("possible_answer")).unwrap();
    let answer = |id: &str| format!("{{\"id\": \"{id}\", \"ground_truth\": []}}\n");
    std::fs::write(
        dir.path()
            .join("possible_answer")
            .join("BFCL_v4_simple_python.json"),
        [answer("b"), answer("b")].concat(),
    )
    .unwrap();
    let e = bfcl::load_file(&path).unwrap_err().to_string();
    assert!(
        e.contains("possible_answer") && e.contains("repeats line 1"),
        "{e}"
    );
    // A possible answer no task can be made of is named with its own file
    // and line.
    std::fs::write(
        dir.path()
            .join("possible_answer")
            .join("BFCL_v4_simple_python.json"),
        [
            answer("a"),
            "{\"id\": \"b\", \"ground_truth\": [{\"f\": {\"x\": []}}]}\n".to_string(),
        ]
        .concat(),
    )
    .unwrap();
    let cases = bfcl::load_file(&path).unwrap();
    let e = cases[1].to_task().unwrap_err().to_string();
    assert!(
        e.contains("possible_answer/BFCL_v4_simple_python.json:2: BFCL case b:"),
        "{e}"
    );
    // Answers left without their question (a category file cut short) are
    // refused, naming the first of them, not scored as a complete category.
    let answers = dir
        .path()
        .join("possible_answer")
        .join("BFCL_v4_simple_python.json");
    std::fs::write(
        &answers,
        [answer("a"), answer("c"), answer("b"), answer("d")].concat(),
    )
    .unwrap();
    let e = bfcl::load_file(&path).unwrap_err().to_string();
    assert!(
        e.contains("possible_answer/BFCL_v4_simple_python.json:2")
            && e.contains("id \"c\" has no question")
            && e.contains("(2 answer(s) have none)"),
        "{e}"
    );
    std::fs::write(&answers, [answer("b"), answer("a")].concat()).unwrap();
    assert_eq!(bfcl::load_file(&path).unwrap().len(), 2);
}

#[test]
fn bfcl_cases_without_a_usable_answer_can_still_be_prompted() {
    let dir = tempfile::tempdir().unwrap();
    let q = r#"[[{"role": "user", "content": "q"}]]"#;
    let f = r#"[{"name": "f", "description": "", "parameters": {"type": "dict", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]}}]"#;
    // A relevance case has no possible answer: any call is right.
    std::fs::write(
        dir.path().join("BFCL_v4_live_relevance.json"),
        format!("{{\"id\": \"live_relevance_0-0-0\", \"question\": {q}, \"function\": {f}}}\n"),
    )
    .unwrap();
    let relevance = bfcl::load_dir(dir.path()).unwrap().remove(0);
    assert!(relevance
        .to_task()
        .unwrap_err()
        .to_string()
        .contains("no possible answer"));
    let task = relevance.to_prompt_task().unwrap();
    assert!(task.ground_truth.is_empty() && task.tools.len() == 1);
    // A parameter with no allowed value (BFCL's live_simple_106-63-0): no
    // answer passes, so no training task, but a prompt.
    std::fs::create_dir(dir.path().join("possible_answer")).unwrap();
    std::fs::write(
        dir.path().join("BFCL_v4_live_simple.json"),
        format!("{{\"id\": \"live_simple_0-0-0\", \"question\": {q}, \"function\": {f}}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("possible_answer/BFCL_v4_live_simple.json"),
        r#"{"id": "live_simple_0-0-0", "ground_truth": [{"f": {"a": ["x"], "b": []}}]}"#
            .to_string()
            + "\n",
    )
    .unwrap();
    let cases = bfcl::load_dir(dir.path()).unwrap();
    let simple = cases.iter().find(|c| c.id == "live_simple_0-0-0").unwrap();
    let e = simple.to_task().unwrap_err().to_string();
    assert!(e.contains("\"b\" has no list of allowed values"), "{e}");
    let task = simple.to_prompt_task().unwrap();
    assert!(task.ground_truth.is_empty() && task.tools.len() == 1);
}

/// A user's own format joins `prepare` through the [`TrainingSource`]
/// trait alone: its tasks are counted, grouped and split like the built-in
/// ones, and its report row comes after the built-in sources.
#[test]
fn prepare_takes_a_user_source() {
    use std::sync::Arc;
    use toolgym_env::data::sources::TrainingSource;
    use toolgym_env::data::{DataError, Loaded};
    use toolgym_env::{Message, Task};
    /// One task per non-empty line: `<query>`, no tools, no call.
    struct Lines;
    impl TrainingSource for Lines {
        fn name(&self) -> &'static str {
            "lines"
        }
        fn description(&self) -> &'static str {
            "one query per line"
        }
        fn load(&self, path: &std::path::Path) -> Result<Loaded, DataError> {
            let text = std::fs::read_to_string(path).map_err(|e| DataError::Io {
                path: path.to_path_buf(),
                source: e,
            })?;
            let mut out = Loaded::default();
            for (i, line) in text.lines().filter(|l| !l.is_empty()).enumerate() {
                out.raw_records += 1;
                out.tasks.push(Task::new(
                    format!("lines-{i}"),
                    "lines",
                    vec![],
                    vec![Message::user(line)],
                    vec![],
                ));
            }
            Ok(out)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("q.txt");
    std::fs::write(&input, "a\nb\nc\n").unwrap();
    let mut opts = PrepareOptions::new(dir.path().join("out"));
    opts.add_source(Arc::new(Lines), &input);
    opts.add("xlam", fixture("xlam_sample.json")).unwrap();
    let report = prepare(&opts).unwrap();
    let names: Vec<&str> = report.sources.iter().map(|s| s.source.as_str()).collect();
    assert_eq!(names, ["xlam", "lines"]);
    assert_eq!(report.sources[1].raw_records, 3);
    assert_eq!(report.sources[1].single_turn, 3);
}

/// An xLAM record (tools and answers as JSON text, as the dataset has
/// them) with `id`.
fn xlam_record(id: serde_json::Value, query: &str) -> serde_json::Value {
    json!({
        "id": id,
        "query": query,
        "tools": "[{\"name\": \"f\", \"description\": \"\", \"parameters\": {\"x\": {\"type\": \"int\"}}}]",
        "answers": "[{\"name\": \"f\", \"arguments\": {\"x\": 1}}]",
    })
}

#[test]
fn prepare_keeps_the_users_files_and_reads_around_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let good: Vec<String> = (0..4)
        .map(|i| xlam_record(json!(i), &format!("q{i}")).to_string())
        .collect();

    // A JSON list with a NaN record (Python's json.dump writes one) and a
    // lone surrogate: those two are dropped by number, the rest read.
    let list = dir.path().join("list.json");
    let bad_nan = r#"{"id": 9, "score": NaN}"#;
    let bad_surrogate = r#"{"id": 10, "query": "\ud800"}"#;
    std::fs::write(
        &list,
        format!(
            "[{}, {bad_nan}, {},\n {bad_surrogate}, {}]",
            good[0], good[1], good[2]
        ),
    )
    .unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!((loaded.raw_records, loaded.tasks.len()), (5, 3));
    assert_eq!(loaded.dropped[0].index, 1);
    assert!(loaded.dropped[0].detail.starts_with("record 1 (line 1)"));
    assert!(loaded.dropped[1].detail.starts_with("record 3 (line 2)"));
    // Cut off inside a record: the ones before it are read.
    std::fs::write(
        &list,
        format!("[{}, {}, {{\"id\": 7, \"qu", good[0], good[1]),
    )
    .unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!((loaded.raw_records, loaded.tasks.len()), (3, 2));
    assert!(
        loaded.dropped[0].detail.contains("cut-off"),
        "{:?}",
        loaded.dropped
    );

    // A pretty-printed list (json.dump(indent=2)) with a fault between
    // records does not lose the rest of the file: a record written
    // without the comma before it is dropped, named; a record holding an
    // unescaped quote is dropped and the list read on from the next one.
    let records: Vec<serde_json::Value> = (0..8)
        .map(|i| xlam_record(json!(i), &format!("q{i}")))
        .collect();
    let pretty_list = serde_json::to_string_pretty(&records).unwrap();
    let mut blocks: Vec<String> = pretty_list
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split("\n  },\n")
        .map(str::to_string)
        .collect();
    assert_eq!(blocks.len(), 8);
    blocks[5] = blocks[5].replace("\"q5\"", "\"q\"5\"");
    let mut text = String::from("[");
    for (i, b) in blocks.iter().enumerate() {
        text.push_str(b);
        if i < 7 {
            // No comma after record 1.
            text.push_str(if i == 1 { "\n  }\n" } else { "\n  },\n" });
        }
    }
    text.push(']');
    std::fs::write(&list, &text).unwrap();
    let loaded = xlam::load(&list).unwrap();
    let dropped: Vec<(usize, &str)> = loaded
        .dropped
        .iter()
        .map(|d| (d.index, d.detail.as_str()))
        .collect();
    assert_eq!(
        (loaded.raw_records, loaded.tasks.len()),
        (8, 6),
        "{dropped:?}"
    );
    assert_eq!(dropped[0].0, 2);
    assert!(
        dropped[0]
            .1
            .contains("no `,` between it and the record before"),
        "{dropped:?}"
    );
    assert_eq!(dropped[1].0, 5);
    assert!(
        dropped[1].1.contains("the list is read on from line"),
        "{dropped:?}"
    );
    // `indent=0` (nested objects start lines too): a bad record with a
    // nested object costs itself only, as before.
    let nan = "{\n\"id\": 9,\n\"x\": NaN,\n\"tools\": [\n{\n\"name\": \"u\"\n}\n]\n}";
    std::fs::write(
        &list,
        format!("[\n{},\n{nan},\n{},\n{}\n]", good[0], good[1], good[2]),
    )
    .unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!(
        (loaded.raw_records, loaded.tasks.len()),
        (4, 3),
        "{:?}",
        loaded.dropped
    );
    // A list of one record per line at column 0 (JSON Lines in brackets):
    // a record with an unescaped quote is dropped and the list is read on
    // from the next line.
    let mut lines: Vec<String> = (0..10)
        .map(|i| xlam_record(json!(i), &format!("q{i}")).to_string())
        .collect();
    lines[3] = lines[3].replace("\"q3\"", "\"q\"3\"");
    std::fs::write(&list, format!("[\n{}\n]", lines.join(",\n"))).unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!(
        (loaded.raw_records, loaded.tasks.len()),
        (10, 9),
        "{:?}",
        loaded.dropped
    );
    assert!(
        loaded.dropped[0].detail.contains("read on from line 6"),
        "{:?}",
        loaded.dropped
    );
    // The first record broken so (no layout seen yet): the records after
    // it cannot be told apart, so the file is refused, naming the record
    // (dropping the rest as one record lost nine uncounted).
    let mut first_bad = lines.clone();
    first_bad[0] = first_bad[0].replace("\"q0\"", "\"q\"0\"");
    first_bad[3] = lines[3].replace("\"q\"3\"", "\"q3\"");
    let refused = |text: &str| {
        std::fs::write(&list, text).unwrap();
        match xlam::load(&list) {
            Err(e @ toolgym_env::data::DataError::ListUnreadable { .. }) => e.to_string(),
            Err(e) => panic!("{text:?}: another error: {e}"),
            Ok(l) => panic!("{text:?} was read: {:?}", l.dropped),
        }
    };
    for end in ["", "\n"] {
        let e = refused(&format!("[\n{}\n]{end}", first_bad.join(",\n")));
        // A trailing newline is no line more.
        assert!(
            e.contains("record 0 (line 2)")
                && e.contains("the 10 line(s) after it may hold records")
                && e.contains("nothing was read"),
            "{e}"
        );
    }
    // A one-line list (json.dumps without indent) so broken: refused,
    // with the record's column and the size of what follows; not called
    // cut off.
    let text = format!("[{}]", lines.join(", "));
    let at = text.find(lines[3].as_str()).unwrap();
    let e = refused(&text);
    assert!(
        e.contains(&format!("record 3 (line 1, column {})", at + 1))
            && e.contains(&format!("({} bytes, to the list's end)", text.len() - at))
            && !e.contains("cut-off"),
        "{e}"
    );
    // The broken record the list's last, on a line of its own or after
    // another, indented or not: nothing follows it, so it alone is
    // dropped; the list closes, so nothing was cut off.
    for indent in ["", "  "] {
        for text in [
            format!("[{},\n{indent}{}]", lines[0], lines[3]),
            format!("[{}, {}]", lines[0], lines[3]),
        ] {
            std::fs::write(&list, &text).unwrap();
            let loaded = xlam::load(&list).unwrap();
            assert_eq!((loaded.raw_records, loaded.tasks.len()), (2, 1), "{text:?}");
            let detail = &loaded.dropped[0].detail;
            assert!(
                detail.contains("an unescaped quote?")
                    && detail.contains("nothing after it can be a record")
                    && !detail.contains("cut-off"),
                "{indent:?}: {detail}"
            );
        }
    }
    // An indented list cut off inside its last record is a cut-off file.
    let mut cut = pretty_list.clone();
    cut.truncate(pretty_list.len() - 40);
    std::fs::write(&list, &cut).unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert!(
        loaded
            .dropped
            .last()
            .unwrap()
            .detail
            .contains("a cut-off file?"),
        "{:?}",
        loaded.dropped
    );
    // A comma before the closing bracket: no record is missing.
    std::fs::write(&list, format!("[{}, {},\n]\n", good[0], good[1])).unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!(
        (loaded.raw_records, loaded.tasks.len()),
        (2, 2),
        "{:?}",
        loaded.dropped
    );
    // Lists written one after another (`cat a.json b.json`, an empty one
    // among them) are read as one, records numbered on; a fault in the
    // second is named by its record number and line.
    std::fs::write(
        &list,
        format!(
            "[\n{},\n{}\n]\n[\n]\n[\n{},\n{{\"id\": 1, \"query\": NaN}},\n{}\n]\n",
            good[0], good[1], good[2], good[3]
        ),
    )
    .unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!(
        (loaded.raw_records, loaded.tasks.len()),
        (5, 4),
        "{:?}",
        loaded.dropped
    );
    assert_eq!(loaded.dropped.len(), 1);
    assert_eq!(loaded.dropped[0].index, 3);
    assert!(
        loaded.dropped[0].detail.starts_with("record 3 (line 9)"),
        "{:?}",
        loaded.dropped
    );
    // Lists on one line each (`json.dump` without an indent), one after
    // another on a line or on lines of their own.
    for text in [
        format!("[{}, {}][{}]", good[0], good[1], good[2]),
        format!("[{}, {}]\n[{}]\n", good[0], good[1], good[2]),
    ] {
        std::fs::write(&list, &text).unwrap();
        let loaded = xlam::load(&list).unwrap();
        assert_eq!(
            (loaded.raw_records, loaded.tasks.len()),
            (3, 3),
            "{text:?}: {:?}",
            loaded.dropped
        );
    }
    // Other text after the closing bracket is one dropped record naming
    // its line, whether the list is empty or not, after a trailing comma
    // or a missing one; whitespace after it is nothing.
    let cases = [
        ("[\n]\ngarbage".to_string(), 0, 3),
        ("[\n]\n]".to_string(), 0, 3),
        (format!("[\n]\n[\n{}\n]\n}}", good[0]), 1, 6),
        (format!("[\n{},\n]\nx", good[0]), 1, 4),
        (
            format!("[\n{},\n{}\n]\n\n  trailing", good[0], good[1]),
            2,
            6,
        ),
        (format!("[\n{}\n{}\n] junk", good[0], good[1]), 1, 4),
    ];
    for (text, kept, line) in cases {
        std::fs::write(&list, &text).unwrap();
        let loaded = xlam::load(&list).unwrap();
        let details: Vec<&str> = loaded.dropped.iter().map(|d| d.detail.as_str()).collect();
        assert_eq!(loaded.tasks.len(), kept, "{text:?}: {details:?}");
        let last = details.last().copied().unwrap_or_default();
        assert!(
            last.contains(&format!("line {line}: text after the end of the list"))
                && !details
                    .iter()
                    .any(|d| d.contains("no value before the comma")),
            "{text:?}: {details:?}"
        );
    }
    std::fs::write(&list, "[\n]\n \n").unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!((loaded.raw_records, loaded.dropped.len()), (0, 0));
    // A broken last record with another list after it (`cat a.json
    // b.json`), or a broken record written without the comma before it,
    // may be followed by records: refused, where the records after it
    // went uncounted (or a cut-off file was blamed).
    // The same where the file does not end in `]` (text after the list,
    // not a cut-off file), and after stray text that a record follows.
    for text in [
        format!("[{}, {}]\n[{}]\n", good[0], lines[3], good[1]),
        format!("[{} {}, {}]", good[0], lines[3], good[1]),
        format!(
            "[\n{},\n{}, {}, {}]\n{}\n",
            good[0], good[1], lines[3], good[2], good[3]
        ),
        format!("[\n{}}} {}\n]\n", good[0], good[1]),
    ] {
        std::fs::write(&list, &text).unwrap();
        let e = xlam::load(&list).unwrap_err().to_string();
        assert!(
            e.contains("may hold records that cannot be told apart")
                || e.contains("no later record start can be told apart"),
            "{text:?}: {e}"
        );
    }
    // Stray text after the last record that cannot be a record (a `}`
    // too many) is one dropped record; the records before it are read.
    let text = format!("[\n{},\n{}}}\n]\n", good[0], good[1]);
    std::fs::write(&list, &text).unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!(
        (loaded.raw_records, loaded.tasks.len()),
        (3, 2),
        "{:?}",
        loaded.dropped
    );
    assert!(
        loaded.dropped[0]
            .detail
            .contains("expected `,` or `]` after record 1"),
        "{:?}",
        loaded.dropped
    );
    // Text after the list that may hold records (JSON Lines appended to a
    // list) is refused: dropped as one record, its records went uncounted.
    let text = format!("[\n{}\n]\n{}\n{}\n", good[0], good[1], good[2]);
    std::fs::write(&list, &text).unwrap();
    let e = xlam::load(&list).unwrap_err().to_string();
    assert!(
        e.contains(
            "line 4: text after the end of the list (closed on line 3), which may hold records"
        ),
        "{e}"
    );
    // A second list with its own byte-order mark (`cat a.json b.json`) is
    // read on.
    let text = format!("[{}]\n\u{feff}[{}, {}]\n", good[0], good[1], good[2]);
    std::fs::write(&list, &text).unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!(
        (loaded.raw_records, loaded.tasks.len()),
        (3, 3),
        "{:?}",
        loaded.dropped
    );
    // On one line, a record without its comma is dropped all the same.
    std::fs::write(
        &list,
        format!("[{}, {} {}, {}]", good[0], good[1], good[2], good[3]),
    )
    .unwrap();
    let loaded = xlam::load(&list).unwrap();
    assert_eq!((loaded.raw_records, loaded.tasks.len()), (4, 3));
    assert_eq!(loaded.dropped[0].index, 2);

    // JSON Lines whose first line opens a list and breaks off: that line
    // alone is dropped, not the file read as a list with every record
    // after it missing its comma.
    let broken_first = dir.path().join("broken-first.jsonl");
    std::fs::write(
        &broken_first,
        format!("[oops\n{}\n{}\n\n{}\n", good[0], good[1], good[2]),
    )
    .unwrap();
    let loaded = xlam::load(&broken_first).unwrap();
    assert_eq!(
        (loaded.raw_records, loaded.tasks.len(), loaded.dropped.len()),
        (4, 3, 1),
        "{:?}",
        loaded.dropped
    );
    assert!(
        loaded.dropped[0].detail.starts_with("line 1:"),
        "{:?}",
        loaded.dropped
    );

    // JSON Lines whose first line is a list; a line that is not UTF-8.
    let lines = dir.path().join("lines.jsonl");
    let mut bytes = format!("[1, 2]\n{}\n", good[0]).into_bytes();
    bytes.extend_from_slice(b"{\"id\": \"x\xff\"}\n");
    bytes.extend_from_slice(format!("{}\n", good[1]).as_bytes());
    std::fs::write(&lines, bytes).unwrap();
    let loaded = xlam::load(&lines).unwrap();
    assert_eq!((loaded.raw_records, loaded.tasks.len()), (4, 2));
    assert!(
        loaded.dropped[1].detail.contains("UTF-8"),
        "{:?}",
        loaded.dropped
    );
    // One object over several lines is not records.
    let pretty = dir.path().join("pretty.json");
    std::fs::write(&pretty, "{\n  \"data\": [1, 2]\n}\n").unwrap();
    let e = xlam::load(&pretty).unwrap_err().to_string();
    assert!(e.contains("one JSON object over several lines"), "{e}");

    // Two records with one id: both kept, the second renamed and counted.
    let twice = dir.path().join("twice.jsonl");
    std::fs::write(
        &twice,
        format!(
            "{}\n{}\n{}\n",
            xlam_record(json!("ok"), "a"),
            xlam_record(json!("ok"), "b"),
            good[3]
        ),
    )
    .unwrap();
    let mut opts = PrepareOptions::new(&out);
    opts.add("xlam", &twice).unwrap();
    opts.add("xlam", &lines).unwrap();
    let report = prepare(&opts).unwrap();
    let x = &report.sources[0];
    assert_eq!((x.kept_records, x.renamed_ids), (5, 1));
    assert!(report.to_string().contains("renamed ID~N"));
    let all: Vec<String> = ["train.jsonl", "validation.jsonl"]
        .iter()
        .flat_map(|f| read_jsonl(out.join(f)).unwrap())
        .map(|t| t.id)
        .collect();
    assert!(all.contains(&"xlam-ok".to_string()) && all.contains(&"xlam-ok~2".to_string()));
    // Drops say which file they are in.
    let dropped = std::fs::read_to_string(out.join("dropped.jsonl")).unwrap();
    assert!(dropped.contains("lines.jsonl"), "{dropped}");

    // The same file twice, or an input among the outputs: refused, and
    // nothing is written.
    let before = std::fs::read(out.join("train.jsonl")).unwrap();
    let mut opts = PrepareOptions::new(&out);
    opts.add("xlam", &twice).unwrap();
    opts.add("xlam", dir.path().join(".").join("twice.jsonl"))
        .unwrap();
    let e = prepare(&opts).unwrap_err().to_string();
    assert!(e.contains("given twice"), "{e}");
    let mut opts = PrepareOptions::new(&out);
    opts.add("xlam", out.join("train.jsonl")).unwrap();
    let e = prepare(&opts).unwrap_err().to_string();
    assert!(e.contains("is the output"), "{e}");
    assert_eq!(std::fs::read(out.join("train.jsonl")).unwrap(), before);
    // A run that keeps nothing writes nothing: the earlier files stay.
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "[]").unwrap();
    let mut opts = PrepareOptions::new(&out);
    opts.add("xlam", &empty).unwrap();
    let e = prepare(&opts).unwrap_err().to_string();
    assert!(e.contains("no task was kept"), "{e}");
    assert_eq!(std::fs::read(out.join("train.jsonl")).unwrap(), before);
    let temporaries = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("partial")
        })
        .count();
    assert_eq!(temporaries, 0);
}

#[test]
fn prepare_refuses_runs_that_would_mislead_and_writes_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let write = |name: &str, records: &[serde_json::Value]| {
        let path = dir.path().join(name);
        let text: String = records.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(&path, text).unwrap();
        path
    };
    // Ids stay unique past renames and irrelevance copies (a record
    // offering a tool it does not call can have one); an empty query is a
    // bad record.
    let two_tools = |id: &str, query: &str| {
        let mut r = xlam_record(json!(id), query);
        r["tools"] = json!(
            "[{\"name\": \"f\", \"description\": \"\", \"parameters\": {}}, {\"name\": \"g\", \"description\": \"\", \"parameters\": {}}]"
        );
        r
    };
    let ids = write(
        "ids.jsonl",
        &[
            xlam_record(json!("a"), "q"),
            xlam_record(json!("a"), "q"),
            xlam_record(json!("a~2"), "q"),
            two_tools("5", "q"),
            two_tools("5-irrelevant", "q"),
            xlam_record(json!("e"), " "),
        ],
    );
    let mut opts = PrepareOptions::new(&out);
    opts.add("xlam", &ids).unwrap();
    opts.irrelevance_rate = 1.0;
    opts.val_fraction = 0.0;
    let p = toolgym_env::prepare::prepare_in_memory(&opts).unwrap();
    let all: Vec<&str> = p.train.iter().map(|t| t.id.as_str()).collect();
    let unique: std::collections::BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "{all:?}");
    assert!(all.contains(&"xlam-5-irrelevant~2"), "{all:?}");
    assert_eq!(p.dropped.len(), 1);
    assert!(p.dropped[0].detail.contains("\"query\" is empty"));
    prepare(&opts).unwrap();
    let before = std::fs::read(out.join("train.jsonl")).unwrap();

    // A file of another source next to a good one: refused by name.
    let copy = dir.path().join("copy.jsonl");
    std::fs::copy(&ids, &copy).unwrap();
    let mut opts = PrepareOptions::new(&out);
    opts.add("xlam", &ids).unwrap();
    opts.add("toolace", &copy).unwrap();
    let e = prepare(&opts).unwrap_err().to_string();
    assert!(
        e.contains("copy.jsonl gave no task as a toolace file"),
        "{e}"
    );
    // Every task in validation: refused.
    let mut opts = PrepareOptions::new(&out);
    opts.add("xlam", &ids).unwrap();
    opts.val_fraction = 1.0;
    let e = prepare(&opts).unwrap_err().to_string();
    assert!(e.contains("leaves no training task"), "{e}");
    // An output that cannot be written: none of the set is replaced.
    std::fs::remove_file(out.join("validation.jsonl")).unwrap();
    std::fs::create_dir(out.join("validation.jsonl")).unwrap();
    let one = write("one.jsonl", &[xlam_record(json!("z"), "q")]);
    let mut opts = PrepareOptions::new(&out);
    opts.add("xlam", &one).unwrap();
    let e = prepare(&opts).unwrap_err().to_string();
    assert!(
        e.contains("validation.jsonl") && e.contains("a directory"),
        "{e}"
    );
    assert_eq!(std::fs::read(out.join("train.jsonl")).unwrap(), before);
}

#[test]
fn an_xlam_integer_past_64_bits_is_dropped_not_turned_into_a_float() {
    let mut record = xlam_record(json!(1), "q");
    record["answers"] =
        json!("[{\"name\": \"f\", \"arguments\": {\"x\": 12345678901234567890123}}]");
    let d = xlam::convert_record(0, &record).unwrap_err();
    assert_eq!(d.reason, DropReason::BadAnswers);
    assert!(
        d.detail.contains("12345678901234567890123, past 64 bits"),
        "{}",
        d.detail
    );
    // In a string, or within u64 / i64, it is kept as written.
    for x in [
        "\"12345678901234567890123\"",
        "18446744073709551615",
        "-9223372036854775808",
    ] {
        record["answers"] = json!(format!(
            "[{{\"name\": \"f\", \"arguments\": {{\"x\": {x}}}}}]"
        ));
        let task = xlam::convert_record(0, &record).unwrap();
        let written = serde_json::to_string(&task.ground_truth[0].arguments["x"]).unwrap();
        assert_eq!(written, x);
    }
    // In an `arguments` string, or a list given as a string within the
    // field's string, too: each is JSON text decoded on the way.
    for answers in [
        json!("[{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 12345678901234567890123}\"}]"),
        json!([{"name": "f", "arguments": "{\"x\": 12345678901234567890123}"}]),
        json!(
            json!("[{\"name\": \"f\", \"arguments\": {\"x\": 12345678901234567890123}}]")
                .to_string()
        ),
    ] {
        record["answers"] = answers.clone();
        let d = xlam::convert_record(0, &record).unwrap_err();
        assert_eq!(d.reason, DropReason::BadAnswers, "{answers}");
        assert!(
            d.detail.contains("12345678901234567890123, past 64 bits"),
            "{answers}: {}",
            d.detail
        );
    }
    record["answers"] = json!([{"name": "f", "arguments": "{\"x\": 12}"}]);
    let task = xlam::convert_record(0, &record).unwrap();
    assert_eq!(task.ground_truth[0].arguments["x"], json!(12));
    // In the tools' text too (an enum or default).
    let mut record = xlam_record(json!(1), "q");
    record["tools"] = json!("[{\"name\": \"f\", \"description\": \"\", \"parameters\": {\"x\": {\"type\": \"int\", \"default\": 18446744073709551616}}}]");
    let d = xlam::convert_record(0, &record).unwrap_err();
    assert_eq!(d.reason, DropReason::BadTools);
    assert!(
        d.detail.contains("18446744073709551616, past 64 bits"),
        "{}",
        d.detail
    );
}

/// Answers and tools written as JSON in the record (not as text) are read
/// with the record: an integer past 64 bits there drops the record, named,
/// in JSON Lines and in a JSON list alike (it became a float, kept).
#[test]
fn an_inline_integer_past_64_bits_drops_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let tools = json!([{"name": "f", "description": "", "parameters": {"x": {"type": "int"}}}]);
    let record = |x: &str| {
        format!(
            "{{\"id\": 1, \"query\": \"q\", \"tools\": {tools}, \"answers\": [{{\"name\": \"f\", \"arguments\": {{\"x\": {x}}}}}]}}"
        )
    };
    let (wide, fits) = (record("123456789012345678901"), record("12"));
    for (name, text) in [
        ("x.jsonl", format!("{fits}\n{wide}\n")),
        ("x.json", format!("[\n{fits},\n{wide}\n]\n")),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let loaded = xlam::load(&path).unwrap();
        assert_eq!((loaded.raw_records, loaded.tasks.len()), (2, 1), "{name}");
        assert_eq!(loaded.tasks[0].ground_truth[0].arguments["x"], json!(12));
        let d = &loaded.dropped[0];
        assert_eq!(d.index, 1);
        assert!(
            d.detail
                .contains("the integer 123456789012345678901, past 64 bits"),
            "{name}: {}",
            d.detail
        );
    }
}

/// `-0` is read by serde as the float -0.0 (Python's `json` reads the
/// integer 0): an argument of `-0` would be written back as `-0.0`, and a
/// record id `-0` named the task `xlam--0.0`. Dropped, named, as a wide
/// integer is; `-0.0` (a float already) and `0` are kept.
#[test]
fn an_integer_minus_zero_drops_its_record_not_turned_into_a_float() {
    let mut record = xlam_record(json!(1), "q");
    record["answers"] = json!("[{\"name\": \"f\", \"arguments\": {\"x\": -0}}]");
    let d = xlam::convert_record(0, &record).unwrap_err();
    assert_eq!(d.reason, DropReason::BadAnswers);
    assert!(
        d.detail
            .contains("the integer -0: it would become the float -0.0"),
        "{}",
        d.detail
    );
    for (x, written) in [("-0.0", "-0.0"), ("0", "0")] {
        record["answers"] = json!(format!(
            "[{{\"name\": \"f\", \"arguments\": {{\"x\": {x}}}}}]"
        ));
        let task = xlam::convert_record(0, &record).unwrap();
        let got = serde_json::to_string(&task.ground_truth[0].arguments["x"]).unwrap();
        assert_eq!(got, written);
    }
    // As a record's id, in a file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonl");
    let good = serde_json::to_string(&xlam_record(json!(0), "q")).unwrap();
    std::fs::write(
        &path,
        format!("{good}\n{}\n", good.replace("\"id\":0", "\"id\":-0")),
    )
    .unwrap();
    let loaded = xlam::load(&path).unwrap();
    assert_eq!((loaded.raw_records, loaded.tasks.len()), (2, 1));
    assert_eq!(loaded.tasks[0].id, "xlam-0");
    assert!(
        loaded.dropped[0].detail.contains("the integer -0"),
        "{}",
        loaded.dropped[0].detail
    );
}

#[test]
fn a_call_nested_past_the_task_readers_limit_is_dropped_as_unreadable() {
    let deep = format!("[f(x={}1{})]", "[".repeat(130), "]".repeat(130));
    let record = json!({
        "system": "Here is a list of functions in JSON format that you can invoke:\n[{\"name\": \"f\", \"description\": \"d\", \"parameters\": {\"type\": \"dict\", \"properties\": {}}}]",
        "conversations": [
            {"from": "user", "value": "hi"},
            {"from": "assistant", "value": deep},
            {"from": "user", "value": "again"},
            {"from": "assistant", "value": "[f(x=1)]"},
        ],
    });
    let c = toolace::convert_record(0, &record, ToolAceOptions::default());
    // The deep step, and the step after it (its context holds the deep
    // call): neither would read back.
    assert!(c.tasks.is_empty(), "{:?}", c.tasks);
    assert_eq!(
        reasons(&c.dropped),
        BTreeMap::from([(DropReason::Unreadable, 2)])
    );
    assert!(
        c.dropped[0].detail.contains("recursion limit"),
        "{:?}",
        c.dropped
    );
}

#[test]
fn a_toolace_dialogue_without_a_call_is_counted() {
    let record = json!({
        "system": "Here is a list of functions in JSON format that you can invoke:\n[{\"name\": \"f\", \"description\": \"d\", \"parameters\": {\"type\": \"dict\", \"properties\": {}}}]",
        "conversations": [
            {"from": "user", "value": "hi"},
            {"from": "assistant", "value": "Let me look. [f()]"},
        ],
    });
    let c = toolace::convert_record(0, &record, ToolAceOptions::default());
    assert!(c.tasks.is_empty());
    assert_eq!(
        reasons(&c.dropped),
        BTreeMap::from([(DropReason::NoCall, 1)])
    );
}

/// A ToolACE system prompt offering one tool, `f`, of no parameters.
const F_SYSTEM: &str = "Here is a list of functions in JSON format that you can invoke:\n[{\"name\": \"f\", \"description\": \"d\", \"parameters\": {\"type\": \"dict\", \"properties\": {}}}]";

#[test]
fn a_toolace_turn_that_cannot_be_read_drops_it_and_what_follows_only() {
    let system = F_SYSTEM;
    let record = json!({
        "system": system,
        "conversations": [
            {"from": "user", "value": "hi"},
            {"from": "assistant", "value": "[f(x=1)]"},
            {"from": "narrator", "value": "meanwhile"},
            {"from": "assistant", "value": "[f(x=2)]"},
        ],
    });
    let c = toolace::convert_record(0, &record, ToolAceOptions::default());
    let ids: Vec<&str> = c.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["toolace-0-1"]);
    assert_eq!(c.dropped.len(), 1, "{:?}", c.dropped);
    let d = &c.dropped[0];
    assert_eq!((d.reason, d.turn), (DropReason::BadConversation, Some(2)));
    assert!(
        d.detail.contains("unknown speaker \"narrator\"")
            && d.detail.contains("the 1 after it give no task"),
        "{}",
        d.detail
    );

    // A tool marker followed by no list is "no tools", even where a `[`
    // comes later (the format line's).
    let record = json!({
        "system": "Here is a list of functions in JSON format that you can invoke:\n. \nPut it in the format of [func1(params_name=params_value)]",
        "conversations": [{"from": "user", "value": "hi"}, {"from": "assistant", "value": "[f()]"}],
    });
    let c = toolace::convert_record(0, &record, ToolAceOptions::default());
    assert_eq!(
        reasons(&c.dropped),
        BTreeMap::from([(DropReason::NoTools, 1)])
    );
}

/// A `function_call` speaker written with spaces around it is read as
/// one (JSON calls), as its role is: it was read as an assistant turn in
/// Python call syntax and dropped as a parse error.
#[test]
fn a_toolace_function_call_speaker_with_spaces_is_read_as_json() {
    let system = F_SYSTEM;
    let record = json!({
        "system": system,
        "conversations": [
            {"from": "user", "value": "hi"},
            {"from": " Function_Call ", "value": "[{\"name\": \"f\", \"arguments\": {}}]"},
        ],
    });
    let c = toolace::convert_record(0, &record, ToolAceOptions::default());
    assert_eq!(c.tasks.len(), 1, "{:?}", c.dropped);
    assert_eq!(c.tasks[0].ground_truth[0].name, "f");
}

/// A ToolACE call with an integer past 64 bits drops its step, named,
/// as xLAM's answers are dropped: read as a float it would no longer be
/// the record's value. Python call syntax and JSON function calls alike.
#[test]
fn a_toolace_integer_past_64_bits_drops_its_step_not_turned_into_a_float() {
    let system = F_SYSTEM;
    let record = json!({
        "system": system,
        "conversations": [
            {"from": "user", "value": "hi"},
            {"from": "assistant", "value": "[f(order=123456789012345678901)]"},
            {"from": "tool", "value": "[]"},
            {"from": "assistant", "value": "[f(order=12)]"},
        ],
    });
    let c = toolace::convert_record(0, &record, ToolAceOptions::default());
    let ids: Vec<&str> = c.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["toolace-0-3"], "{:?}", c.dropped);
    assert_eq!(c.dropped.len(), 1, "{:?}", c.dropped);
    assert_eq!(c.dropped[0].reason, DropReason::CallParseError);
    assert!(
        c.dropped[0].detail.contains("past 64 bits")
            && c.dropped[0].detail.contains("123456789012345678901"),
        "{}",
        c.dropped[0].detail
    );
    let record = json!({
        "system": system,
        "conversations": [
            {"from": "user", "value": "hi"},
            {"from": "function_call", "value": "{\"name\": \"f\", \"arguments\": {\"order\": 123456789012345678901}}"},
        ],
    });
    let c = toolace::convert_record(0, &record, ToolAceOptions::default());
    assert!(c.tasks.is_empty(), "{:?}", c.tasks);
    // In a function call's `arguments` string too.
    let nested = json!({
        "system": system,
        "conversations": [
            {"from": "user", "value": "hi"},
            {"from": "function_call", "value": "[{\"name\": \"f\", \"arguments\": \"{\\\"order\\\": 123456789012345678901}\"}]"},
        ],
    });
    let c = toolace::convert_record(0, &nested, ToolAceOptions::default());
    assert!(c.tasks.is_empty(), "{:?}", c.tasks);
    assert!(
        c.dropped[0]
            .detail
            .contains("123456789012345678901, past 64 bits"),
        "{:?}",
        c.dropped
    );
    // In the system prompt's tool list (an enum), the whole record goes:
    // its tools would not be the record's.
    let wide_tools = system.replace(
        "\"properties\": {}",
        "\"properties\": {\"n\": {\"type\": \"integer\", \"enum\": [18446744073709551616]}}",
    );
    let record2 = json!({"system": wide_tools, "conversations": [{"from": "user", "value": "hi"}, {"from": "assistant", "value": "[f(n=1)]"}]});
    let c2 = toolace::convert_record(0, &record2, ToolAceOptions::default());
    assert!(c2.tasks.is_empty(), "{:?}", c2.tasks);
    assert_eq!(c2.dropped[0].reason, DropReason::BadTools);
    assert!(
        c2.dropped[0]
            .detail
            .contains("tool list: the integer 18446744073709551616, past 64 bits"),
        "{:?}",
        c2.dropped
    );
    assert!(
        c.dropped[0].detail.contains("past 64 bits"),
        "{:?}",
        c.dropped
    );
}

#[test]
fn an_xlam_record_with_no_answer_is_dropped_as_an_empty_call_list() {
    let mut record = xlam_record(json!(3), "q");
    record["answers"] = json!("[]");
    let d = xlam::convert_record(0, &record).unwrap_err();
    assert_eq!(d.reason, DropReason::EmptyCallList);
    assert!(d.detail.contains("empty call list"), "{}", d.detail);
}

/// A ToolACE record with one tool `f(x: string)`, the system prompt's
/// lines ending in `newline`.
fn toolace_record(newline: &str, user: &str, call: &str) -> serde_json::Value {
    let tools = r#"[{"name": "f", "description": "d", "parameters": {"type": "dict", "properties": {"x": {"type": "string"}}, "required": []}}]"#;
    let system = [
        "You are an expert in composing functions.",
        "Here is a list of functions in JSON format that you can invoke:",
        &format!("{tools}. "),
        "Should you decide to return the function call(s). ",
        "NO other text MUST be included. ",
        "",
    ]
    .join(newline);
    json!({"system": system, "conversations": [
        {"from": "user", "value": user}, {"from": "assistant", "value": call}]})
}

#[test]
fn toolace_calls_keep_unicode_and_need_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toolace.json");
    let records = json!([
        // Escaped surrogate pairs (json.dumps writes emoji so) are the
        // emoji; a lone surrogate is dropped by name, not made U+FFFD.
        toolace_record("\n", "Say it", r#"[f(x="\ud83d\ude00")]"#),
        toolace_record("\n", "Say it", r#"[f(x='\ud800')]"#),
        // CRLF line ends: the line break after the marker stays.
        toolace_record("\r\n", "Say it", "[f(x='1')]"),
        // A blank user turn is no request (as xLAM's empty query).
        toolace_record("\n", " ", "[f(x='1')]"),
    ]);
    std::fs::write(&path, records.to_string()).unwrap();
    let loaded = toolace::load(&path, ToolAceOptions::default()).unwrap();
    let ids: Vec<&str> = loaded.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["toolace-0-1", "toolace-2-1"]);
    assert_eq!(loaded.tasks[0].ground_truth[0].arguments["x"], json!("😀"));
    let system = &loaded.tasks[1].messages[0].content;
    assert!(system.ends_with("that you can invoke:\r\n"), "{system:?}");
    let drops: Vec<(DropReason, &str)> = loaded
        .dropped
        .iter()
        .map(|d| (d.reason, d.detail.as_str()))
        .collect();
    assert_eq!(drops.len(), 2, "{drops:?}");
    assert_eq!(drops[0].0, DropReason::CallParseError);
    assert!(
        drops[0]
            .1
            .starts_with("a lone surrogate \\ud800 is not Unicode text"),
        "{drops:?}"
    );
    assert_eq!(drops[1].0, DropReason::BadConversation);
    assert!(drops[1].1.contains("user turn with a request"), "{drops:?}");
}

/// The printed summary shows each example's detail on one line, cut
/// visibly (dropped.jsonl keeps it whole): a number cut short would say
/// another line.
#[test]
fn the_summary_cuts_long_details_visibly_on_one_line() {
    let drop = |detail: String| toolgym_env::data::Dropped {
        source: "xlam".into(),
        index: 7,
        id: None,
        turn: None,
        reason: DropReason::BadRecord,
        detail,
        file: None,
        line: None,
    };
    let long = format!("{} read on from line 120008", "x".repeat(150));
    let report = toolgym_env::prepare::PrepareReport {
        sources: vec![toolgym_env::prepare::SourceCounts {
            source: "xlam".into(),
            dropped: BTreeMap::from([(DropReason::BadRecord, 2)]),
            ..Default::default()
        }],
        examples: vec![drop(long.clone()), drop("a\ncall\r\nexcerpt".into())],
        ..Default::default()
    };
    let table = report.to_string();
    let examples: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("e.g. record"))
        .collect();
    assert_eq!(examples.len(), 2, "{table}");
    let shown = examples[0].split(": ").nth(1).unwrap();
    assert_eq!(shown.chars().count(), 161, "{shown}");
    assert!(shown.ends_with('…') && long.starts_with(shown.trim_end_matches('…')));
    assert!(examples[1].ends_with("a call  excerpt"), "{}", examples[1]);
}
