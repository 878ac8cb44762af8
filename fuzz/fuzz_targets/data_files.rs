//! Fuzzes the file-based readers: a BFCL category file with its
//! `possible_answer/` file (the input split at its first NUL byte), and a
//! run's `metrics.jsonl` (the first part). Contract: a BFCL error names a
//! line that exists; every case that loads becomes a task or a clear error,
//! and a task round-trips; the metrics reader accounts for every non-blank
//! line (parsed or reported); the dataset reader (`for_each_record`) gives
//! each record once, in order, with the lines they start on in order and
//! within the file, and reads a valid JSON list's elements as serde_json
//! reads the whole list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use toolgym_env::data::bfcl::{load_file, BfclError};
use toolgym_env::data::for_each_record;
use toolgym_env::Task;
use toolgym_grpo::metrics::read_metrics;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("toolgym-fuzz-data-{}", std::process::id()));
        std::fs::create_dir_all(d.join("possible_answer")).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let (cases, answers) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let d = dir();
    let file = d.join("BFCL_v4_simple_python.json");
    std::fs::write(&file, cases).unwrap();
    std::fs::write(
        d.join("possible_answer/BFCL_v4_simple_python.json"),
        answers,
    )
    .unwrap();
    let lines = |b: &[u8]| b.split(|c| *c == b'\n').count();
    match load_file(&file) {
        Ok(loaded) => {
            for case in &loaded {
                if let Ok(task) = case.to_task() {
                    let line = serde_json::to_string(&task).unwrap();
                    assert_eq!(serde_json::from_str::<Task>(&line).unwrap(), task);
                }
            }
        }
        Err(BfclError::Entry { line, path, .. }) => {
            let n = if path.ends_with("possible_answer/BFCL_v4_simple_python.json") {
                lines(answers)
            } else {
                lines(cases)
            };
            assert!(line >= 1 && line <= n, "line {line} of {n}");
        }
        Err(_) => {}
    }
    let records = d.join("records.json");
    std::fs::write(&records, data).unwrap();
    let mut seen = Vec::new();
    let mut lines_at = Vec::new();
    if let Ok(n) = for_each_record(&records, |i, line, r| {
        seen.push((i, r));
        lines_at.push(line);
    }) {
        assert_eq!(n, seen.len());
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
        // Each record's line is a line of the file, in order.
        let file_lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
        assert!(
            lines_at.iter().all(|&l| l >= 1 && l <= file_lines),
            "{lines_at:?}"
        );
        assert!(lines_at.windows(2).all(|w| w[0] <= w[1]), "{lines_at:?}");
        let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
        if let Ok(list) = serde_json::from_slice::<Vec<serde_json::Value>>(body) {
            // A valid list: every element, as serde_json reads it.
            let got: Vec<serde_json::Value> = seen
                .into_iter()
                .map(|(_, r)| r.expect("an element of a valid list reads"))
                .collect();
            assert_eq!(got, list);
        }
    }
    std::fs::write(d.join("metrics.jsonl"), cases).unwrap();
    if let Ok(text) = std::str::from_utf8(cases) {
        let (ok, bad) = read_metrics(d).unwrap();
        // Blank as the readers define it (`jsonl::is_blank`: JSON
        // whitespace only; `str::trim` also strips a form feed or U+00A0).
        let non_blank = text
            .lines()
            .filter(|l| !toolgym_reward::jsonl::is_blank(l.as_bytes()))
            .count();
        assert_eq!(ok.len() + bad.len(), non_blank);
    }
});
