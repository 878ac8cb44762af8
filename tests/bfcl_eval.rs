//! `toolgym eval bfcl` and `toolgym score --rule bfcl-*` end to end, on the
//! official BFCL excerpt of the reward crate's fixtures
//! (`crates/reward/tests/fixtures/bfcl/`): completions are built from model
//! outputs whose official verdicts are known (`verdicts.jsonl`, produced by
//! bfcl-eval's own checker), so every per-case verdict and every aggregate
//! is checked against independent numbers.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson;

#[path = "support/cli.rs"]
mod cli;
use cli::{fails_naming, json_lines, text, toolgym};

#[path = "support/tiny_model.rs"]
mod tiny_model;

#[path = "../crates/reward/tests/support/bfcl_calls.rs"]
mod bfcl_calls;
use bfcl_calls::call_texts;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/reward/tests/fixtures/bfcl"
);

const CATEGORIES: [&str; 10] = [
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "irrelevance",
    "live_irrelevance",
];

/// Case ids per category, in file order.
fn case_ids() -> BTreeMap<&'static str, Vec<String>> {
    CATEGORIES
        .iter()
        .map(|c| {
            let ids = json_lines(&Path::new(DATA).join(format!("BFCL_v4_{c}.json")))
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect();
            (*c, ids)
        })
        .collect()
}

/// A Tool-N1 completion making the calls of a BFCL `model_output`, or
/// `None` when Tool-N1's format cannot express it.
fn tool_n1_completion(model_output: &PyVal) -> Option<String> {
    let calls = call_texts(model_output)?;
    Some(if calls.is_empty() {
        "<think>No function fits the request.</think>".to_string()
    } else {
        format!(
            "<think>I will call the functions.</think>\n<tool_call>\n[{}]\n</tool_call>",
            calls.join(", ")
        )
    })
}

/// The test's pick per case: (completion, official valid, official
/// error_type).
type Pick = (String, bool, Option<String>);

/// For each case, one model output of `verdicts.jsonl` with its official
/// verdict (prompt-mode setting): a valid one for two cases out of three,
/// an invalid one for the third (when the fixture has such outputs).
fn picks() -> HashMap<String, Pick> {
    let lines = std::fs::read_to_string(Path::new(DATA).join("verdicts.jsonl")).unwrap();
    let mut by_id: HashMap<String, Vec<(Value, String)>> = HashMap::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let ordered = PyVal::from_pyjson(&pyjson::loads(line).unwrap());
        let completion = ordered
            .dict_get("model_output")
            .and_then(tool_n1_completion);
        if let (Some(c), false) = (completion, v["underscore_to_dot"] == json!(true)) {
            by_id
                .entry(v["id"].as_str().unwrap().to_string())
                .or_default()
                .push((v, c));
        }
    }
    let mut out = HashMap::new();
    for ids in case_ids().values() {
        for (k, id) in ids.iter().enumerate() {
            let Some(entries) = by_id.get(id) else {
                continue;
            };
            let want_valid = k % 3 != 2;
            let chosen = entries
                .iter()
                .find(|(e, _)| e["valid"] == json!(want_valid))
                .or_else(|| entries.first());
            if let Some((e, c)) = chosen {
                out.insert(
                    id.clone(),
                    (
                        c.clone(),
                        e["valid"].as_bool().unwrap(),
                        e["error_type"].as_str().map(String::from),
                    ),
                );
            }
        }
    }
    out
}

struct Fixture {
    dir: tempfile::TempDir,
    picks: HashMap<String, Pick>,
    /// The case left without a completion.
    missing: String,
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Writes `completions.jsonl`: every picked case but one, plus an unknown
/// id and three bad lines.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut picks = picks();
    let missing = "simple_python_27".to_string();
    assert!(picks.contains_key(&missing));
    let mut lines = vec![
        "this is not json".to_string(),
        r#"{"id": "multiple_4"}"#.to_string(),
    ];
    let mut ids: Vec<&String> = picks.keys().filter(|id| **id != missing).collect();
    ids.sort();
    for id in ids {
        lines.push(json!({"id": id, "completion": picks[id].0}).to_string());
    }
    lines.push(String::new());
    lines.push(json!({"id": "simple_python_99999", "completion": "x"}).to_string());
    lines.push(r#"{"id": 7, "completion": "x"}"#.to_string());
    std::fs::write(dir.path().join("completions.jsonl"), lines.join("\n")).unwrap();
    // The missing case counts as invalid.
    if let Some(p) = picks.get_mut(&missing) {
        p.1 = false;
        p.2 = Some("toolgym:no_completion".into());
    }
    Fixture {
        dir,
        picks,
        missing,
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn eval_bfcl_judges_completions_with_the_official_verdicts_and_aggregates() {
    let fx = fixture();
    let (out, summary) = (fx.path("verdicts.jsonl"), fx.path("summary.json"));
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--completions",
        fx.path("completions.jsonl").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{stderr}");

    // Bad lines are reported with their numbers, and skipped.
    assert!(stderr.contains("skipped line 1: not JSON"), "{stderr}");
    assert!(
        stderr.contains("skipped line 2: multiple_4: no \"completion\""),
        "{stderr}"
    );
    assert!(stderr.contains("\"id\" is not a string"), "{stderr}");
    assert!(stderr.contains("3 bad line(s) skipped"), "{stderr}");
    assert!(stderr.contains("simple_python_99999 (line"), "{stderr}");
    // multiple_4's bad line 2 is followed by its good line: a repeat,
    // named with both lines.
    assert!(fx.picks.contains_key("multiple_4"));
    assert!(
        stderr.contains("1 id(s) given more than once (the last line wins): multiple_4 (lines 2, "),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "1 case(s) have no completion and count as wrong: {}",
            fx.missing
        )),
        "{stderr}"
    );

    // Every case judged, with the official verdict.
    let verdicts = json_lines(&out);
    let ids = case_ids();
    assert_eq!(verdicts.len(), ids.values().map(Vec::len).sum::<usize>());
    let mut checked = 0;
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut n_valid, mut n_invalid) = (0, 0);
    for v in &verdicts {
        let id = v["id"].as_str().unwrap();
        let cat = v["category"].as_str().unwrap();
        let valid = v["valid"].as_bool().unwrap();
        let e = counts.entry(cat.to_string()).or_default();
        e.0 += 1;
        e.1 += usize::from(valid);
        let Some((_, want_valid, want_type)) = fx.picks.get(id) else {
            // No usable model output in the fixture: no completion.
            assert_eq!(v["error_type"], "toolgym:no_completion", "{id}");
            continue;
        };
        assert_eq!(valid, *want_valid, "{id}: {v}");
        assert_eq!(v["error_type"].as_str(), want_type.as_deref(), "{id}: {v}");
        if valid {
            n_valid += 1;
            assert!(v.get("error").is_none(), "{v}");
        } else {
            n_invalid += 1;
            assert!(!v["error"].as_array().unwrap().is_empty(), "{v}");
        }
        checked += 1;
    }
    assert!(checked >= 270, "{checked}");
    assert!(
        n_valid > 150 && n_invalid > 60,
        "{n_valid} valid, {n_invalid} invalid"
    );
    let first = &verdicts[0];
    assert_eq!(first["category"], "simple_python");
    assert!(
        first["model_output"].as_str().unwrap().starts_with("[{'"),
        "{first}"
    );

    // Aggregates, from the counts with the leaderboard's formulas.
    let acc = |c: &str| {
        let (n, ok) = counts[c];
        ok as f64 / n as f64
    };
    let non_live = mean(&[
        acc("simple_python") / 3.0,
        acc("multiple"),
        acc("parallel"),
        acc("parallel_multiple"),
    ]);
    let live_cats = [
        "live_simple",
        "live_multiple",
        "live_parallel",
        "live_parallel_multiple",
    ];
    let live_n: usize = live_cats.iter().map(|c| counts[*c].0).sum();
    let live_ok: usize = live_cats.iter().map(|c| counts[*c].1).sum();
    let live = live_ok as f64 / live_n as f64;
    let irrelevance = mean(&[acc("irrelevance"), acc("live_irrelevance")]);
    let overall = 0.1 * (non_live + live + irrelevance);
    let py_non_live = mean(&[
        acc("simple_python"),
        acc("multiple"),
        acc("parallel"),
        acc("parallel_multiple"),
    ]);

    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    for c in CATEGORIES {
        assert_eq!(s["categories"][c]["cases"], json!(counts[c].0), "{c}");
        assert_eq!(s["categories"][c]["valid"], json!(counts[c].1), "{c}");
    }
    assert_eq!(s["categories"]["simple_python"]["no_completion"], 1);
    let value = |section: &str, col: &str| s[section][col]["value"].as_f64().unwrap();
    assert!(close(value("non_live", "Non-Live Overall Acc"), non_live));
    assert!(
        s["non_live"]["AST Summary"]["display"].is_null(),
        "Java/JS missing: N/A"
    );
    assert!(close(
        value("non_live", "Python Simple AST"),
        acc("simple_python")
    ));
    assert!(close(value("live", "Live Overall Acc"), live));
    assert!(close(value("live", "AST Summary"), live));
    assert!(close(
        value("overall", "Irrelevance Detection"),
        irrelevance
    ));
    assert!(close(value("overall", "Overall Acc"), overall));
    assert!(close(
        value("python_only", "Non-Live AST (simple = Python only)"),
        py_non_live
    ));
    assert!(close(
        value("python_only", "Summary (mean of the three)"),
        mean(&[py_non_live, live, irrelevance])
    ));

    // The table.
    let pct = |v: f64| format!("{:.2}%", v * 100.0);
    let row = format!(
        "{:<24} {:>6} {:>6} {:>9}",
        "simple_python",
        counts["simple_python"].0,
        counts["simple_python"].1,
        pct(acc("simple_python"))
    );
    assert!(stdout.contains(&row), "{row:?}\n{stdout}");
    for (name, v) in [("Non-Live Overall Acc", non_live), ("Overall Acc", overall)] {
        let line = format!("  {name:<38} {:>9}\n", pct(v));
        assert!(stdout.contains(&line), "{line:?}\n{stdout}");
    }
    assert!(
        stdout.contains("Python-only view (NOT the official formula"),
        "{stdout}"
    );
}

#[test]
fn eval_bfcl_selects_categories_limits_and_skips_missing() {
    let fx = fixture();
    let out = fx.path("v.jsonl");
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--completions",
        fx.path("completions.jsonl").to_str().unwrap(),
        "--categories",
        "simple_python,irrelevance",
        "--limit",
        "3",
        "--skip-missing",
        "--rule",
        "bfcl-ast-strict",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let verdicts = json_lines(&out);
    let ids: Vec<&str> = verdicts.iter().map(|v| v["id"].as_str().unwrap()).collect();
    // simple_python_27 (the 2nd case) has no completion and is skipped.
    let cases = case_ids();
    let mut want: Vec<&str> = cases["simple_python"][..3]
        .iter()
        .chain(&cases["irrelevance"][..3])
        .map(String::as_str)
        .filter(|id| *id != fx.missing)
        .collect();
    want.sort_by_key(|id| !id.starts_with("simple"));
    assert_eq!(ids, want);
    let stdout = text(&o.stdout);
    assert!(stdout.contains("--limit 3: partial categories"), "{stdout}");
    assert!(!stdout.contains("\nmultiple "), "{stdout}");
    // The case left out is said, in the table and on stderr.
    assert!(
        stdout.contains("--skip-missing: 5 of 6 case(s) judged"),
        "{stdout}"
    );
    assert!(text(&o.stderr).contains("partial scores"));
}

#[test]
fn eval_bfcl_reports_bad_inputs_clearly() {
    let fx = fixture();
    let completions = fx.path("completions.jsonl");
    let c = completions.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["eval", "bfcl", "--completions", c];
        all.extend_from_slice(args);
        let o = toolgym(&all);
        assert!(!o.status.success(), "{args:?} should fail");
        text(&o.stderr)
    };
    let e = run(&["--data-dir", DATA, "--categories", "simple_java"]);
    assert!(
        e.contains("unknown BFCL category \"simple_java\"") && e.contains("live_multiple"),
        "{e}"
    );
    // A model-only flag beside --completions did nothing, silently.
    for flag in [
        ["--device", "cuda:7"],
        ["--dtype", "bf16"],
        ["--batch-size", "99"],
        ["--max-new-tokens", "9"],
    ] {
        let e = run(&["--data-dir", DATA, flag[0], flag[1]]);
        assert!(e.contains("--model"), "{flag:?}: {e}");
    }
    let e = run(&["--data-dir", DATA, "--rule", "binary"]);
    assert!(
        e.contains("invalid value 'binary' for '--rule <RULE>'") && e.contains("bfcl-ast-strict"),
        "{e}"
    );
    let e = run(&["--data-dir", DATA, "--decoder", "xml"]);
    assert!(
        e.contains("invalid value 'xml' for '--decoder") && e.contains("possible values"),
        "{e}"
    );
    // Flags of another source are refused, not ignored (clap's `requires`
    // takes any member of the source group).
    let saved = fx.path("saved.jsonl");
    let e = run(&[
        "--data-dir",
        DATA,
        "--save-completions",
        saved.to_str().unwrap(),
    ]);
    assert!(e.contains("--save-completions needs --model"), "{e}");
    assert!(!saved.exists());
    fails_naming(
        &[
            "eval",
            "bfcl",
            "--data-dir",
            DATA,
            "--model",
            "/nonexistent",
            "--skip-missing",
        ],
        "--skip-missing needs --completions",
    );

    // A data folder with one possible answer missing, and no live_simple.
    let data = fx.path("data");
    std::fs::create_dir_all(data.join("possible_answer")).unwrap();
    let name = "BFCL_v4_simple_python.json";
    std::fs::copy(Path::new(DATA).join(name), data.join(name)).unwrap();
    let answers =
        std::fs::read_to_string(Path::new(DATA).join("possible_answer").join(name)).unwrap();
    let kept: Vec<&str> = answers
        .lines()
        .filter(|l| !l.contains("\"simple_python_50\""))
        .collect();
    std::fs::write(data.join("possible_answer").join(name), kept.join("\n")).unwrap();
    let d = data.to_str().unwrap();
    let e = run(&["--data-dir", d]);
    assert!(
        e.contains(
            "possible_answer/BFCL_v4_simple_python.json: case simple_python_50: no possible answer"
        ),
        "{e}"
    );
    // A possible answer the checker cannot read is named with its own
    // file and line; a bad test entry with the category file's.
    let broken: Vec<String> = answers
        .lines()
        .map(|l| match l.contains("\"simple_python_27\"") {
            true => r#"{"id": "simple_python_27", "ground_truth": {"x": 1}}"#.to_string(),
            false => l.to_string(),
        })
        .collect();
    std::fs::write(data.join("possible_answer").join(name), broken.join("\n")).unwrap();
    let e = run(&["--data-dir", d]);
    assert!(
        e.contains(
            "possible_answer/BFCL_v4_simple_python.json:2: case simple_python_27: no \"ground_truth\" list"
        ),
        "{e}"
    );
    std::fs::write(data.join("possible_answer").join(name), &answers).unwrap();
    let questions = std::fs::read_to_string(data.join(name)).unwrap();
    let bad_doc: Vec<String> = questions
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["id"] == "simple_python_16" {
                v["function"] = json!("not a list");
            }
            v.to_string()
        })
        .collect();
    std::fs::write(data.join(name), bad_doc.join("\n")).unwrap();
    let e = run(&["--data-dir", d]);
    assert!(
        e.contains(
            "/BFCL_v4_simple_python.json:1: case simple_python_16: \"function\" is not a list"
        ) && !e.contains("possible_answer"),
        "{e}"
    );
    std::fs::copy(Path::new(DATA).join(name), data.join(name)).unwrap();
    let e = run(&["--data-dir", d, "--categories", "live_simple"]);
    assert!(e.contains("no BFCL_v<N>_live_simple.json"), "{e}");
    let e = run(&["--data-dir", fx.path("nowhere").to_str().unwrap()]);
    assert!(e.contains("nowhere"), "{e}");
    // The verdicts may not overwrite the completions they judge; an
    // output that cannot be created fails before anything is judged.
    let before = std::fs::read(&completions).unwrap();
    let e = run(&["--data-dir", DATA, "--out", c]);
    assert!(e.contains("would erase"), "{e}");
    assert_eq!(std::fs::read(&completions).unwrap(), before);
    let e = run(&["--data-dir", DATA, "--summary", "/nonexistent-dir/s.json"]);
    assert!(e.contains("cannot create /nonexistent-dir/s.json"), "{e}");
    // Outputs may not overwrite each other (two spellings of a new file)
    // or the benchmark's data.
    let new = fx.path("new.json");
    let dotted = format!("{}/./new.json", new.parent().unwrap().display());
    let e = run(&[
        "--data-dir",
        DATA,
        "--out",
        new.to_str().unwrap(),
        "--summary",
        &dotted,
    ]);
    assert!(e.contains("--out and --summary are the same file"), "{e}");
    let inside = format!("{DATA}/prompts.jsonl");
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--write-prompts",
        &inside,
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("inside the benchmark's data directory"),
        "{}",
        text(&o.stderr)
    );
    assert!(!Path::new(&inside).exists());
    // Nor a file the data directory links to (a Hugging Face cache's
    // snapshot is made of links): it was overwritten with verdicts.
    #[cfg(unix)]
    {
        let linked = fx.path("linked-data");
        std::fs::create_dir_all(&linked).unwrap();
        let real = fx.path("real_simple_python.json");
        std::fs::copy(format!("{DATA}/BFCL_v4_simple_python.json"), &real).unwrap();
        std::os::unix::fs::symlink(&real, linked.join("BFCL_v4_simple_python.json")).unwrap();
        let write_prompts = |to: &str| {
            let data = linked.to_str().unwrap();
            toolgym(&["eval", "bfcl", "--data-dir", data, "--write-prompts", to])
        };
        // Without its answers first: the file is named as what is missing
        // (it said the case had no answer).
        let e = text(&write_prompts("-").stderr);
        assert!(e.contains("no possible-answer file here"), "{e}");
        std::fs::create_dir_all(linked.join("possible_answer")).unwrap();
        std::fs::copy(
            format!("{DATA}/possible_answer/BFCL_v4_simple_python.json"),
            linked.join("possible_answer/BFCL_v4_simple_python.json"),
        )
        .unwrap();
        // A new file in a directory the data links to is no data.
        let work = fx.path("work");
        std::fs::create_dir_all(&work).unwrap();
        std::os::unix::fs::symlink(&work, linked.join("extra")).unwrap();
        let o = write_prompts(work.join("p.jsonl").to_str().unwrap());
        assert!(o.status.success(), "{}", text(&o.stderr));
        let before = std::fs::read(&real).unwrap();
        let o = write_prompts(real.to_str().unwrap());
        assert!(!o.status.success());
        let e = text(&o.stderr);
        assert!(
            e.contains("is a file of the benchmark's data (its") && e.contains("links to it"),
            "{e}"
        );
        assert_eq!(std::fs::read(&real).unwrap(), before);
    }
    // A JSON list where JSON Lines are wanted: an error (its last element,
    // with no comma after it, reads as a line: the rest would be judged
    // missing), the per-line warnings capped (a pretty-printed list gave
    // one per line).
    let list = fx.path("list.json");
    let entries: Vec<String> = (0..30)
        .map(|i| format!("  {{\"id\": \"simple_python_{i}\", \"completion\": \"x\"}}"))
        .collect();
    std::fs::write(&list, format!("[\n{}\n]\n", entries.join(",\n"))).unwrap();
    // Judging `completions` fails; what it says.
    let refused = |completions: &std::path::Path| {
        let o = toolgym(&[
            "eval",
            "bfcl",
            "--data-dir",
            DATA,
            "--completions",
            completions.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        text(&o.stderr)
    };
    let e = refused(&list);
    assert!(
        e.contains("error: ") && e.contains("not a JSON list") && e.contains("(11 not shown)"),
        "{e}"
    );
    assert_eq!(e.matches(": skipped line").count(), 20, "{e}");
    // So is one after a byte-order mark.
    let text_of_list = std::fs::read(&list).unwrap();
    std::fs::write(&list, [&b"\xEF\xBB\xBF"[..], &text_of_list].concat()).unwrap();
    let e = refused(&list);
    assert!(e.contains("not a JSON list"), "{e}");
    // And one on standard input (it was scored: one usable line, the rest
    // judged missing).
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_toolgym"))
        .args(["eval", "bfcl", "--data-dir", DATA, "--completions", "-"])
        .stdin(std::fs::File::open(&list).unwrap())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("not a JSON list"),
        "{}",
        text(&o.stderr)
    );
    // A file with no completion for any case is an error, not a score of 0.
    let prompts = fx.path("prompts-by-mistake.jsonl");
    std::fs::write(&prompts, "{\"id\": \"x\", \"prompt\": \"p\"}\n").unwrap();
    let e = refused(&prompts);
    assert!(
        e.contains("no completion for any of the selected cases"),
        "{e}"
    );
    // A run that fails after its outputs were opened leaves what was there
    // before (an output gets its name only when it is complete).
    let out = fx.path("kept.jsonl");
    std::fs::write(&out, "earlier\n").unwrap();
    let missing = fx.path("no-such-completions.jsonl");
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--completions",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("no-such-completions.jsonl"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "earlier\n");
    let left: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(left.is_empty(), "a temporary was left: {left:?}");
    // Neither --model nor --completions (nor --write-prompts): clap names
    // the choice.
    let e = toolgym(&["eval", "bfcl", "--data-dir", DATA]);
    let e = text(&e.stderr);
    assert!(
        e.contains("--model <MODEL>|--completions <COMPLETIONS>|--write-prompts"),
        "{e}"
    );
}

#[test]
fn score_with_a_bfcl_rule_reads_bfcl_records() {
    let dir = tempfile::tempdir().unwrap();
    let entry: Value = serde_json::from_str(
        std::fs::read_to_string(Path::new(DATA).join("BFCL_v4_simple_python.json"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let answer: Value = serde_json::from_str(
        std::fs::read_to_string(Path::new(DATA).join("possible_answer/BFCL_v4_simple_python.json"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let id = entry["id"].as_str().unwrap();
    let fx = picks();
    let (good, valid, _) = &fx[id];
    assert!(valid, "the first case's pick is a right answer");
    let record = |completion: &str| {
        json!({"id": id, "completion": completion, "functions": entry["function"],
               "possible_answer": answer["ground_truth"]})
        .to_string()
    };
    let lines = [
        record(good),
        record("<think>hm</think>"),
        json!({"id": "irrelevance_1", "completion": "<think>No tool fits.</think>"}).to_string(),
        json!({"completion": "x", "category": "simple_java", "functions": [], "possible_answer": []}).to_string(),
        json!({"id": id, "completion": "x", "functions": entry["function"]}).to_string(),
        "{broken".to_string(),
    ];
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let output = dir.path().join("out.jsonl");
    let o = toolgym(&[
        "score",
        "--rule",
        "bfcl-ast",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = json_lines(&output);
    let rewards: Vec<f64> = out.iter().map(|v| v["reward"].as_f64().unwrap()).collect();
    assert_eq!(rewards, [1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    let reasons: Vec<&str> = out.iter().map(|v| v["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        [
            "ok",
            "missing_call",
            "ok",
            "input_error",
            "input_error",
            "input_error"
        ]
    );
    assert!(out[1]["detail"]
        .as_str()
        .unwrap()
        .starts_with("simple_function_checker:wrong_count"));
    assert!(out[3]["detail"]
        .as_str()
        .unwrap()
        .contains("unknown BFCL category \"simple_java\""));
    assert_eq!(out[4]["detail"], "missing field \"possible_answer\"");
    assert_eq!(out[5]["line"], 6);
    let stderr = text(&o.stderr);
    assert!(stderr.contains("scored 6 completions"), "{stderr}");
    assert!(
        stderr.contains("3 line(s) were not usable records"),
        "{stderr}"
    );

    // The rule list names the BFCL rules; an unknown bfcl-* rule fails.
    let o = toolgym(&["score", "--list-rules"]);
    assert!(text(&o.stdout).contains("bfcl-ast-python-strict"));
    fails_naming(
        &[
            "score",
            "--rule",
            "bfcl-nope",
            "--input",
            input.to_str().unwrap(),
        ],
        "bfcl-ast",
    );
}

#[test]
fn eval_bfcl_generates_with_a_local_model() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = tiny_model::save_tiny_model(dir.path());
    // --save-completions is opened with the other outputs: a path that
    // cannot be written fails before the model loads (a missing model is
    // not what is said), and a run refused before its first completion
    // leaves no empty file behind.
    let gone = dir.path().join("no-such-dir/c.jsonl");
    let missing_model = dir.path().join("no-model");
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--model",
        missing_model.to_str().unwrap(),
        "--save-completions",
        gone.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(e.contains("no-such-dir") && !e.contains("no-model"), "{e}");
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--model",
        model_dir.to_str().unwrap(),
        "--decoder",
        "python",
        "--save-completions",
        dir.path().join("c0.jsonl").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".unfinished-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Every template asks for <tool_call> JSON: a Python-syntax decoder
    // would score every reply 0 (and irrelevance near 100%). Prompts
    // written for another program's model, to be judged with the same
    // flags, are refused alike, and no file is written.
    let prompts = dir.path().join("mismatched-prompts.jsonl");
    for flags in [["--decoder", "python"], ["--rule", "bfcl-ast-python"]] {
        for (source, path, said) in [
            ("--model", &model_dir, "which --rule bfcl-ast reads"),
            (
                "--write-prompts",
                &prompts,
                "--write-prompts writes prompts to be judged",
            ),
        ] {
            let o = toolgym(&[
                "eval",
                "bfcl",
                "--data-dir",
                DATA,
                source,
                path.to_str().unwrap(),
                flags[0],
                flags[1],
            ]);
            assert!(!o.status.success());
            let e = text(&o.stderr);
            assert!(
                e.contains("ask for replies in another format than the judge reads")
                    && e.contains(said),
                "{e}"
            );
        }
        assert!(!prompts.exists());
    }
    let (out, saved) = (dir.path().join("v.jsonl"), dir.path().join("c.jsonl"));
    // An earlier file of that name is replaced only when the new one is
    // whole (written under a temporary name until then).
    std::fs::write(&saved, "{\"id\": \"earlier\"}\n").unwrap();
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--model",
        model_dir.to_str().unwrap(),
        "--categories",
        "simple_python,irrelevance",
        "--limit",
        "2",
        "--max-new-tokens",
        "4",
        "--batch-size",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--save-completions",
        saved.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let verdicts = json_lines(&out);
    assert_eq!(verdicts.len(), 4);
    // A random model makes no valid call: the simple cases fail.
    assert!(verdicts[..2].iter().all(|v| v["valid"] == json!(false)));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.contains(".partial-") || name.contains(".unfinished-")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let saved = json_lines(&saved);
    assert_eq!(saved.len(), 4);
    assert!(saved.iter().all(|c| c["completion"].is_string()));
    assert!(text(&o.stdout).contains("(greedy)"));

    // The saved completions judge the same way.
    let again = dir.path().join("again.jsonl");
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--completions",
        dir.path().join("c.jsonl").to_str().unwrap(),
        "--categories",
        "simple_python,irrelevance",
        "--limit",
        "2",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(json_lines(&again), verdicts);

    // Settings that leave no room, or ask for absurd batches, are refused
    // by name (they used to judge every case wrong, or panic).
    let m = model_dir.to_str().unwrap();
    let base = [
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--model",
        m,
        "--limit",
        "1",
    ];
    for (flag, value, said) in [
        (
            "--max-new-tokens",
            "100000",
            "--max-new-tokens 100000 leaves no room",
        ),
        (
            "--batch-size",
            "4611686018427387904",
            "--batch-size must be from 1 to 4096",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        fails_naming(&args, said);
    }
    // Room for 8 prompt tokens: no case (one per category) fits, and no
    // completion at all is an error, not a score of 0.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("config.json")).unwrap())
            .unwrap();
    let room = (config["max_position_embeddings"].as_u64().unwrap() - 8).to_string();
    let mut args = base.to_vec();
    args.extend(["--max-new-tokens", &room]);
    fails_naming(&args, "none of the 10 case(s) could be generated");
}

#[test]
fn eval_bfcl_writes_tool_n1_prompts_for_external_generation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prompts.jsonl");
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        DATA,
        "--categories",
        "multiple,live_irrelevance",
        "--limit",
        "2",
        "--write-prompts",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("wrote 4 prompt(s) (tool-n1 template)"));
    let prompts = json_lines(&path);
    let ids = case_ids();
    let want: Vec<&str> = ids["multiple"][..2]
        .iter()
        .chain(&ids["live_irrelevance"][..2])
        .map(String::as_str)
        .collect();
    let got: Vec<&str> = prompts.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(got, want);
    for p in &prompts {
        let t = p["prompt"].as_str().unwrap();
        assert!(t.starts_with("<|im_start|>system\n"), "{t}");
        assert!(t.contains("<tools>\n{\"type\": \"function\""), "{t}");
        assert!(t.ends_with("<|im_end|>\n<|im_start|>assistant\n"), "{t}");
    }
    assert_eq!(prompts[0]["category"], "multiple");
}

/// A data folder with some of the default categories (a partial
/// download): the ones without a file are named, not left out in silence.
#[test]
fn eval_bfcl_names_the_default_categories_it_has_no_file_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::path::Path::new(DATA);
    std::fs::create_dir(dir.path().join("possible_answer")).unwrap();
    for f in [
        "BFCL_v4_simple_python.json",
        "possible_answer/BFCL_v4_simple_python.json",
        "BFCL_v4_irrelevance.json",
    ] {
        std::fs::copy(data.join(f), dir.path().join(f)).unwrap();
    }
    let completions = dir.path().join("c.jsonl");
    std::fs::write(
        &completions,
        "{\"id\": \"simple_python_16\", \"completion\": \"x\"}\n",
    )
    .unwrap();
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--completions",
        completions.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let e = text(&o.stderr);
    assert!(
        e.contains("no data file for 8 of the 10 default categories")
            && e.contains("multiple, parallel")
            && !e.contains("simple_python,"),
        "{e}"
    );
    // A template changes nothing for completions prompted elsewhere.
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--completions",
        completions.to_str().unwrap(),
        "--template",
        "compact",
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("--template compact is for --model and --write-prompts"),
        "{e}"
    );
    // Two files of one category and version: which is read would follow
    // the directory's order.
    std::fs::copy(
        data.join("BFCL_v4_simple_python.json"),
        dir.path().join("BFCL_v4_simple_python.jsonl"),
    )
    .unwrap();
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--completions",
        completions.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("is category simple_python of the same BFCL version"),
        "{e}"
    );
}
