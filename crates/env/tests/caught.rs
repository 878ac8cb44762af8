//! Panics of env and tool code caught at the boundary: the first of the
//! process prints in full, the next ones a line each (an env that panics
//! on some seeds printed thousands of backtraces in one run); other panics
//! print as before.

use std::process::Command;

#[test]
fn caught_panics_print_in_full_once_then_a_line_each() {
    if std::env::var_os("TOOLGYM_CAUGHT_CHILD").is_some() {
        for i in 0..5 {
            let r = toolgym_env::catch_quietly(|| -> u32 { panic!("env bug {i}") });
            assert_eq!(
                toolgym_env::panic_message(&r.unwrap_err()),
                format!("env bug {i}")
            );
        }
        // Nested: the inner catch is the outer one's business, and the
        // outer region keeps working after it.
        let outer = toolgym_env::catch_quietly(|| {
            let inner = toolgym_env::catch_quietly(|| -> u32 { panic!("inner bug") });
            assert!(inner.is_err());
            panic!("outer bug")
        });
        assert!(outer.is_err());
        // Not caught by toolgym: printed by the hook that was there before.
        let outside = std::thread::spawn(|| panic!("a panic of the user's own")).join();
        assert!(outside.is_err());
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "caught_panics_print_in_full_once_then_a_line_each",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TOOLGYM_CAUGHT_CHILD", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The default hook's form ("panicked at"), for the first caught panic
    // and the user's own only.
    assert_eq!(err.matches("panicked at").count(), 2, "{err}");
    assert!(
        err.contains("env bug 0") && err.contains("print one line each"),
        "{err}"
    );
    for (n, what) in [
        (2, "env bug 1"),
        (5, "env bug 4"),
        (6, "inner bug"),
        (7, "outer bug"),
    ] {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("toolgym: caught panic {n} at ")))
            .unwrap_or_else(|| panic!("no line for panic {n}: {err}"));
        assert!(line.ends_with(what), "{line}");
    }
    assert!(err.contains("a panic of the user's own"), "{err}");
}

/// A tool whose handler throws a value whose `Drop` panics (`panic_any`)
/// is a tool error like any panic: dropping the payload does not unwind
/// out of the registry (it would have, out of a training run).
#[test]
fn a_panic_payload_that_panics_when_dropped_stays_caught() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the payload's drop");
        }
    }
    let r = toolgym_env::catch_quietly(|| -> u32 { std::panic::panic_any(Bomb) });
    assert_eq!(
        toolgym_env::take_panic_message(r.unwrap_err()),
        "(no message)"
    );
    let r = toolgym_env::catch_quietly(|| -> u32 { panic!("plain") });
    assert_eq!(toolgym_env::take_panic_message(r.unwrap_err()), "plain");
}
