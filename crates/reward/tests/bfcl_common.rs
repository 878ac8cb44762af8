//! Fixture loading shared by the `bfcl_*` tests (included by them with
//! `#[path]`; as a test target of its own it has no tests).
#![allow(dead_code)]

use std::collections::HashMap;
use toolgym_reward::bfcl::BfclExpected;
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson;

/// The fixture folder.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bfcl");

/// The 10 categories of the fixtures.
pub const CATEGORIES: [&str; 10] = [
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

fn json_lines(path: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

/// Every fixture case by id.
pub fn load_cases() -> HashMap<String, BfclExpected> {
    let mut out = HashMap::new();
    for cat in CATEGORIES {
        let entries = json_lines(&format!("{DIR}/BFCL_v4_{cat}.json"));
        let answer_path = format!("{DIR}/possible_answer/BFCL_v4_{cat}.json");
        let answers = if std::path::Path::new(&answer_path).exists() {
            json_lines(&answer_path)
        } else {
            Vec::new()
        };
        for (i, e) in entries.iter().enumerate() {
            let case = BfclExpected::from_entry(e, answers.get(i))
                .unwrap_or_else(|err| panic!("{cat} line {}: {err}", i + 1));
            out.insert(case.id.clone(), case);
        }
    }
    out
}

/// The lines of `verdicts.jsonl`.
pub fn verdict_lines() -> Vec<String> {
    lines("verdicts.jsonl")
}

/// The non-empty lines of a fixture file.
pub fn lines(name: &str) -> Vec<String> {
    let path = format!("{DIR}/{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

/// A JSON line read with object key order kept.
pub fn ordered_json(line: &str) -> PyVal {
    PyVal::from_pyjson(&pyjson::loads(line).unwrap_or_else(|e| panic!("{e:?}: {line}")))
}
