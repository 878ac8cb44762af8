//! `toolgym score`'s reading limits from the command line: a line over
//! `--max-line-bytes` is an `input_error` naming its length and the limit,
//! the lines around it are scored, and `--chunk-lines` changes batches,
//! not verdicts.

#[path = "support/cli.rs"]
mod cli;
use cli::{fails_naming, json_lines, text, toolgym};

fn record(id: usize, think: &str) -> String {
    format!(
        "{{\"id\": {id}, \"completion\": \"<think>{think}</think><tool_call>[{{\\\"name\\\": \\\"f\\\", \\\"arguments\\\": {{}}}}]</tool_call>\", \"ground_truth\": [{{\"name\": \"f\", \"arguments\": {{}}}}]}}\n"
    )
}

#[test]
fn lines_over_the_limit_are_input_errors_and_chunks_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let long = record(2, &"x".repeat(500));
    let input_text = [record(1, "a"), long.clone(), record(3, "b")].concat();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, &input_text).unwrap();
    let run = |extra: &[&str], out: &str| {
        let output = dir.path().join(out);
        let mut args = vec!["score", "--rule", "tool-n1", "--input"];
        args.push(input.to_str().unwrap());
        args.extend(["--output", output.to_str().unwrap()]);
        args.extend(extra);
        let o = toolgym(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        (json_lines(&output), text(&o.stderr))
    };

    let (all, _) = run(&[], "all.jsonl");
    assert!(all.iter().all(|v| v["reward"] == 1.0), "{all:?}");

    let (limited, err) = run(&["--max-line-bytes", "200"], "limited.jsonl");
    assert_eq!(limited.len(), 3);
    assert_eq!(limited[0]["reward"], 1.0);
    assert_eq!(limited[2]["reward"], 1.0);
    assert_eq!(limited[1]["line"], 2);
    assert_eq!(limited[1]["reason"], "input_error");
    let detail = limited[1]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("{} bytes", long.len())) && detail.contains("200"),
        "{detail}"
    );
    assert!(err.contains("1 line(s) were not usable records"), "{err}");

    for threads in ["1", "2"] {
        let (chunked, _) = run(
            &["--chunk-lines", "1", "--threads", threads],
            "chunked.jsonl",
        );
        assert_eq!(chunked, all, "{threads} thread(s)");
    }

    // A file without one usable record is an error (the verdicts are
    // still written, each saying why).
    let wrong = dir.path().join("wrong.jsonl");
    std::fs::write(&wrong, "{\"text\": \"a\"}\n[1, 2]\n").unwrap();
    let wrong_out = dir.path().join("wrong-out.jsonl");
    // Each rule's error names the fields its records hold.
    for (rule, fields) in [
        ("binary", "`completion` and `ground_truth`"),
        (
            "bfcl-ast",
            "`completion`, `functions` and `possible_answer`",
        ),
    ] {
        let o = toolgym(&[
            "score",
            "--rule",
            rule,
            "--input",
            wrong.to_str().unwrap(),
            "--output",
            wrong_out.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        let err = text(&o.stderr);
        assert!(err.contains("none of the 2 line(s)"), "{err}");
        assert!(err.contains("in the output says why"), "{err}");
        assert!(err.contains(fields), "{rule}: {err}");
    }
    let verdicts = json_lines(&wrong_out);
    assert_eq!(verdicts.len(), 2);
    assert!(verdicts.iter().all(|v| v["reason"] == "input_error"));

    fails_naming(
        &[
            "score",
            "--max-line-bytes",
            "0",
            "--input",
            input.to_str().unwrap(),
        ],
        "--max-line-bytes",
    );
}

#[test]
fn the_input_is_never_the_output_and_a_byte_order_mark_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let body = [record(1, "a"), record(2, "b")].concat();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, &body).unwrap();
    let path = input.to_str().unwrap();
    // The same file, by name or through a link: refused, the input kept.
    fails_naming(&["score", "--input", path, "--output", path], "would erase");
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    fails_naming(
        &["score", "--input", path, "--output", link.to_str().unwrap()],
        "would erase",
    );
    assert_eq!(std::fs::read_to_string(&input).unwrap(), body);
    // A directory is named as such.
    fails_naming(
        &["score", "--input", dir.path().to_str().unwrap()],
        "is a directory",
    );
    // A UTF-8 byte-order mark before the first record is not an error.
    let bom = dir.path().join("bom.jsonl");
    std::fs::write(&bom, [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat()).unwrap();
    let out = dir.path().join("out.jsonl");
    let o = toolgym(&[
        "score",
        "--rule",
        "tool-n1",
        "--input",
        bom.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|v| v["reward"] == 1.0), "{lines:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_stdout_is_an_error_not_a_panic() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_toolgym"))
        .args(["score", "--list-rules"])
        .stdout(full)
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write to stdout") && !err.contains("panicked"),
        "{err}"
    );
}
