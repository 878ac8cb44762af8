//! Resource limits of the env crate's readers: a line over
//! `MAX_LINE_BYTES` (256 MiB) is reported by its number and skipped (or an
//! error naming it), never held in memory, and the lines around it are
//! read as usual. One file with an overlong line serves every reader.

use std::io::Write;
use toolgym_env::data::completions::read_completions;
use toolgym_env::data::for_each_record;
use toolgym_env::{read_jsonl, read_jsonl_lenient, Message, Task};
use toolgym_reward::jsonl::MAX_LINE_BYTES;

/// Writes `first`, a line of `MAX_LINE_BYTES + 1` bytes, and `last`.
fn file_with_overlong_line(first: &str, last: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "{first}").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut left = MAX_LINE_BYTES; // + the newline = one byte over
    f.write_all(b"\"").unwrap();
    left -= 1;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    f.write_all(b"\n").unwrap();
    writeln!(f, "{last}").unwrap();
    f.flush().unwrap();
    f
}

#[test]
fn readers_report_a_line_over_the_limit_and_go_on() {
    let task = |id: &str| {
        serde_json::to_string(&Task::new(
            id,
            "t",
            vec![],
            vec![Message::user("hi")],
            vec![],
        ))
        .unwrap()
    };
    let f = file_with_overlong_line(&task("a"), &task("b"));

    let lenient = read_jsonl_lenient(f.path()).unwrap();
    let ids: Vec<&str> = lenient.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(lenient.bad_lines.len(), 1);
    let (line, why) = &lenient.bad_lines[0];
    assert_eq!(*line, 2);
    assert!(why.contains("over the limit of 268435456"), "{why}");
    let err = read_jsonl(f.path()).unwrap_err().to_string();
    assert!(
        err.contains(":2:") && err.contains("over the limit"),
        "{err}"
    );

    let mut records = Vec::new();
    let n = for_each_record(f.path(), |i, _, r| records.push((i, r.is_ok()))).unwrap();
    assert_eq!(n, 3);
    assert_eq!(records, [(0, true), (1, false), (2, true)]);

    let c = file_with_overlong_line(
        r#"{"id": "a", "completion": "x"}"#,
        r#"{"id": "b", "completion": "y"}"#,
    );
    let done = read_completions(std::io::BufReader::new(
        std::fs::File::open(c.path()).unwrap(),
    ))
    .unwrap();
    assert_eq!((done.get("a"), done.get("b")), (Some("x"), Some("y")));
    assert_eq!(done.bad_lines.len(), 1);
    assert_eq!(done.bad_lines[0].line, 2);
    assert!(done.bad_lines[0].message.contains("over the limit"));
}

#[test]
fn a_byte_order_mark_before_the_first_completion_is_skipped() {
    let text = "\u{feff}{\"id\": \"a\", \"completion\": \"x\"}\r\n{\"id\": \"b\", \"completion\": \"y\"}\n";
    let done = read_completions(text.as_bytes()).unwrap();
    assert!(done.bad_lines.is_empty(), "{:?}", done.bad_lines);
    assert_eq!((done.get("a"), done.get("b")), (Some("x"), Some("y")));
}
