//! Running the `toolgym` binary and reading what it wrote, for the CLI
//! tests.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Runs `toolgym args…` to completion.
pub fn toolgym(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_toolgym"))
        .args(args)
        .output()
        .expect("run toolgym")
}

/// Bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON values of a JSON Lines file (blank lines skipped).
pub fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs `toolgym args…`, which must fail with an error that names
/// `needle` on stderr.
pub fn fails_naming(args: &[&str], needle: &str) {
    let o = toolgym(args);
    let err = text(&o.stderr);
    assert!(!o.status.success(), "{args:?} succeeded: {err}");
    assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
}
