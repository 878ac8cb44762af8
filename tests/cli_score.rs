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
    // No record at all (empty, or blank lines only) is no run: an error,
    // not a mean reward of 0, and an earlier output is kept.
    let blank = dir.path().join("blank.jsonl");
    for body in ["", "\n\n"] {
        std::fs::write(&blank, body).unwrap();
        fails_naming(
            &[
                "score",
                "--input",
                blank.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ],
            "holds no record to score",
        );
        assert_eq!(json_lines(&out).len(), 2, "the earlier output is kept");
    }
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

/// `--episode`: a transcript's assistant messages (and a ChatML response's
/// assistant turns) are one episode whose calls together must match;
/// without it only the last reply is read. Rules without episodes are
/// refused before the output is made.
#[test]
fn episode_mode_scores_every_reply_of_a_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let call = |name: &str, arg: &str| {
        format!(
            "<think>step</think><tool_call>[{{\"name\": \"{name}\", \"arguments\": {{\"x\": \"{arg}\"}}}}]</tool_call>"
        )
    };
    let (first, second) = (call("find", "ann"), call("pay", "7"));
    let answer = "<think>done</think>Paid.";
    let truth = serde_json::json!([
        {"name": "find", "arguments": {"x": "ann"}},
        {"name": "pay", "arguments": {"x": "7"}},
    ]);
    let transcript = serde_json::json!([
        {"role": "user", "content": "Pay Ann."},
        {"role": "assistant", "content": first},
        {"role": "tool", "content": "7"},
        {"role": "assistant", "content": second},
        {"role": "tool", "content": "ok"},
        {"role": "assistant", "content": answer},
    ]);
    let chatml = format!(
        "{first}<|im_end|>\n<|im_start|>user\n<tool_response>\n7\n</tool_response><|im_end|>\n\
         <|im_start|>assistant\n{second}<|im_end|>"
    );
    let body: String = [
        serde_json::json!({"id": "transcript", "completion": transcript, "ground_truth": truth}),
        serde_json::json!({"id": "chatml", "completion": chatml, "ground_truth": truth}),
        serde_json::json!({"id": "short", "completion": [{"role": "assistant", "content": first}], "ground_truth": truth}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect();
    let input = dir.path().join("episodes.jsonl");
    std::fs::write(&input, body).unwrap();
    let out = dir.path().join("out.jsonl");
    let run_with_stderr = |args: &[&str]| {
        let mut all = vec!["score", "--input", input.to_str().unwrap()];
        all.extend(["--output", out.to_str().unwrap()]);
        all.extend(args);
        let o = toolgym(&all);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        (json_lines(&out), text(&o.stderr))
    };
    let run = |args: &[&str]| run_with_stderr(args).0;
    let (lines, err) = run_with_stderr(&["--episode"]);
    assert!(
        err.contains("scored 3 completions") && err.contains("--episode: each completion"),
        "{err}"
    );
    let ids: Vec<_> = lines.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["transcript", "chatml", "short"]);
    for threads in ["1", "2"] {
        let lines = run(&["--episode", "--threads", threads]);
        let got: Vec<_> = lines
            .iter()
            .map(|v| (v["reward"].clone(), v["reason"].clone()))
            .collect();
        assert_eq!(
            got,
            [
                (1.0.into(), "ok".into()),
                (1.0.into(), "ok".into()),
                (0.0.into(), "missing_call".into())
            ],
            "{lines:?}"
        );
    }
    // Fine-grained gives the short episode partial credit.
    let fine = run(&["--episode", "--rule", "fine-grained"]);
    let partial = fine[2]["reward"].as_f64().unwrap();
    assert!(partial > 0.0 && partial < 1.0, "{fine:?}");
    // One reply at a time, the transcript is its answer and ChatML its
    // last turn: neither makes both calls.
    let single = run(&[]);
    assert!(single.iter().all(|v| v["reward"] == 0.0), "{single:?}");

    std::fs::remove_file(&out).unwrap();
    for rule in ["tool-n1", "bfcl-ast"] {
        fails_naming(
            &[
                "score",
                "--episode",
                "--rule",
                rule,
                "--input",
                input.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ],
            &format!("--episode: rule \"{rule}\" scores one reply, not an episode"),
        );
        assert!(!out.exists());
    }

    // Read from stdin, as in a pipe.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_toolgym"))
        .args(["score", "--episode"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let body = std::fs::read(&input).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &body).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let piped: Vec<f64> = text(&o.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["reward"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(piped, [1.0, 1.0, 0.0]);

    // Not one usable episode: an error that says what a record holds.
    let wrong = dir.path().join("wrong.jsonl");
    std::fs::write(
        &wrong,
        "{\"completion\": [{\"role\": \"model\", \"content\": \"x\"}], \"ground_truth\": []}\n",
    )
    .unwrap();
    fails_naming(
        &[
            "score",
            "--episode",
            "--input",
            wrong.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
        "a list of messages with at least one assistant message",
    );
    let verdicts = json_lines(&out);
    assert!(
        verdicts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("no assistant message"),
        "{verdicts:?}"
    );
}

/// The rule options on the command line (as in Python's `Rule(..., **options)`):
/// an episode that rightly makes no call is right with
/// `--no-call-without-block true`; the released script's and BFCL's rules
/// take none, and a bad tolerance is named.
#[test]
fn rule_options_apply_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"id": 1, "completion": [{"role": "assistant", "content": "<think>no tool fits</think>I cannot do that."}], "ground_truth": []}"#,
            "\n",
            r#"{"id": 2, "completion": "<tool_call>[{\"name\": \"f\", \"arguments\": {\"x\": 1.0000001}}]</tool_call>", "ground_truth": [{"name": "f", "arguments": {"x": 1}}]}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let rewards = |args: &[&str]| -> Vec<f64> {
        let mut all = vec!["score", "--input", input.to_str().unwrap()];
        all.extend(["--output", out.to_str().unwrap()]);
        all.extend(args);
        let o = toolgym(&all);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        json_lines(&out)
            .iter()
            .map(|v| v["reward"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(rewards(&["--episode"]), [0.0, 0.0]);
    assert_eq!(
        rewards(&["--episode", "--no-call-without-block", "true"]),
        [1.0, 0.0]
    );
    // No think block and a near number: both options needed.
    assert_eq!(
        rewards(&["--think", "false", "--abs-tol", "1e-6"]),
        [0.0, 1.0]
    );
    assert_eq!(rewards(&["--think", "false"]), [0.0, 0.0]);
    let path = input.to_str().unwrap();
    for (rule, says) in [
        ("tool-n1", "takes no options"),
        ("bfcl-ast", "takes no options"),
    ] {
        fails_naming(
            &["score", "--rule", rule, "--think", "false", "--input", path],
            says,
        );
    }
    fails_naming(
        &["score", "--abs-tol", "-1", "--input", path],
        "abs_tol must be a finite number >= 0",
    );
}

/// Odd command lines get errors naming the flag: more threads than the
/// cap, an output through a link to a pipe is written through.
#[test]
fn thread_counts_are_capped_and_links_to_pipes_are_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, record(1, "a")).unwrap();
    let i = input.to_str().unwrap();
    fails_naming(
        &["score", "--input", i, "--output", "-", "--threads", "5000"],
        "--threads must be at most 1024",
    );
    // A negative count is the flag's value, refused by its parser (clap
    // said "unexpected argument '-1' found"), here and in other commands.
    fails_naming(
        &["score", "--input", i, "--threads", "-1"],
        "invalid value '-1' for '--threads <THREADS>'",
    );
    fails_naming(
        &[
            "eval",
            "bfcl",
            "--data-dir",
            i,
            "--completions",
            i,
            "--limit",
            "-3",
        ],
        "invalid value '-3' for '--limit",
    );
    // /dev/stdout of a process whose stdout is a pipe: a link to
    // `pipe:[N]`, which no path names.
    let o = toolgym(&["score", "--input", i, "--output", "/dev/stdout"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("\"reward\":1.0"),
        "{}",
        text(&o.stdout)
    );
}
