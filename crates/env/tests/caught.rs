//! Panics of env and tool code caught at the boundary print once per
//! process, not once per panic (an env that panics on some seeds printed
//! thousands of backtraces in one run); other panics print as before.

use std::process::Command;

#[test]
fn only_the_first_caught_panic_is_printed() {
    if std::env::var_os("TOOLGYM_CAUGHT_CHILD").is_some() {
        for i in 0..5 {
            let r = toolgym_env::catch_quietly(|| -> () { panic!("env bug {i}") });
            assert_eq!(
                toolgym_env::panic_message(&r.unwrap_err()),
                format!("env bug {i}")
            );
        }
        // Not caught by toolgym: printed by the hook that was there before.
        let outside = std::thread::spawn(|| panic!("a panic of the user's own")).join();
        assert!(outside.is_err());
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "only_the_first_caught_panic_is_printed",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TOOLGYM_CAUGHT_CHILD", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("env bug 0"), "{err}");
    assert!(
        err.contains("later panics in env and tool code are caught without being printed"),
        "{err}"
    );
    for i in 1..5 {
        assert!(!err.contains(&format!("env bug {i}")), "{err}");
    }
    assert!(err.contains("a panic of the user's own"), "{err}");
}
