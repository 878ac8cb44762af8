//! `toolgym prepare` from the command line: a run on the xLAM sample
//! writes its split and report, and odd settings are refused by name.

// Only part of the shared helpers is used here.
#[allow(dead_code)]
#[path = "support/cli.rs"]
mod cli;
use cli::{fails_naming, text, toolgym};

const XLAM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/env/tests/fixtures/xlam_sample.json"
);

#[test]
fn prepare_writes_a_split_and_refuses_odd_settings_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let o = toolgym(&["prepare", "--xlam", XLAM, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let train = std::fs::read_to_string(out.join("train.jsonl")).unwrap();
    let validation = std::fs::read_to_string(out.join("validation.jsonl")).unwrap();
    // The sample's four good records, split between the two files.
    assert_eq!(train.lines().count() + validation.lines().count(), 4);
    // A negative share reaches the check that names it (clap took `-0.1`
    // for a flag); `-` is no directory.
    fails_naming(
        &[
            "prepare",
            "--xlam",
            XLAM,
            "--out",
            out.to_str().unwrap(),
            "--val-fraction",
            "-0.1",
        ],
        "val_fraction",
    );
    fails_naming(
        &["prepare", "--xlam", XLAM, "--out", "-"],
        "--out is a directory",
    );
    assert!(!std::path::Path::new("-").exists());
}
