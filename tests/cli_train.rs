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

/// `--force` with `--set run.force=…` is refused, both named; a run
/// refused before it wrote anything leaves no run directory behind.
#[test]
fn a_flag_and_an_override_of_its_key_are_refused_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs").join("r");
    let run_dir = format!("run.out_dir={:?}", out.display().to_string());
    let o = Command::new(env!("CARGO_BIN_EXE_toolgym"))
        .args([
            "train",
            "grpo",
            "--force",
            "--set",
            "run.force=false",
            "--set",
        ])
        .arg(&run_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(
        stderr.contains(r#"--force and --set "run.force=false" both set run.force"#),
        "{stderr}"
    );
    // A config the data makes wrong (no task file here) fails after the
    // run directory was locked: the directory the lock made goes again.
    let o = Command::new(env!("CARGO_BIN_EXE_toolgym"))
        .current_dir(dir.path())
        .args(["train", "grpo", "--set"])
        .arg(&run_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(!dir.path().join("runs").exists(), "{stderr}");
}
