//! `toolgym train`'s command line, before any training starts.

use std::process::Command;

/// A key given twice with `--set` is refused, both named, before a run
/// directory is made; a later `--set` of another key is fine.
#[test]
fn the_same_override_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_toolgym"))
        .args(["train", "grpo", "--set", "run.seed=1", "--set"])
        .arg(format!("run.out_dir={:?}", out.display().to_string()))
        .args(["--set", "run.seed=2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"--set "run.seed=1" and --set "run.seed=2" set the same key"#),
        "{stderr}"
    );
    assert!(!out.exists());
}
