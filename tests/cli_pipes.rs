//! Shell conventions of the CLI: a closed pipe ends `toolgym score`
//! quietly (`toolgym score … | head`), and `-` reads standard input.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn line(i: usize) -> String {
    format!(
        "{{\"id\": {i}, \"completion\": \"<think>x</think><tool_call>[{{\\\"name\\\": \\\"f\\\", \\\"arguments\\\": {{}}}}]</tool_call>\", \"ground_truth\": [{{\"name\": \"f\", \"arguments\": {{}}}}]}}\n"
    )
}

#[test]
fn score_ends_quietly_when_its_reader_goes_away() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_toolgym"))
        .args(["score", "--rule", "binary", "--threads", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..200_000 {
            if stdin.write_all(line(i).as_bytes()).is_err() {
                break;
            }
        }
    });
    // Read one verdict, then close the pipe, as `head -1` does.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("reward"), "{first}");
    drop(out);
    let status = child.wait().unwrap();
    feeder.join().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
    assert!(!status.success() || err.is_empty(), "{status:?} {err}");
}
