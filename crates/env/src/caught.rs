//! Panics of user code (env methods, tool handlers, task sources) caught
//! at the boundary: each fails only its call, episode or task, and the run
//! goes on.
//!
//! Rust's panic hook prints every panic before it is caught, with a
//! backtrace under `RUST_BACKTRACE=1`: an env that panics on one seed in
//! three printed thousands of them in one run. [`catch_quietly`] lets the
//! first caught panic of the process print as usual (its backtrace is what
//! a user debugging the env needs), gives the next few a line each, and
//! then only counts; what failed is still reported by the caller (the
//! trainer says the first failure of each step). Panics outside these
//! calls print as before: the hook wraps whatever hook was set first.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`catch_quietly`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// Whether a panic is unwinding inside this thread's [`catch_quietly`]:
    /// a second one then (a `Drop` panicking during the unwind) aborts
    /// the process, and is printed in full.
    static UNWINDING: Cell<bool> = const { Cell::new(false) };
}

/// Panics caught by [`catch_quietly`] in this process.
static CAUGHT: AtomicUsize = AtomicUsize::new(0);

/// Caught panics after the first that get a line of their own.
const LINES: usize = 20;

/// Runs `f`, catching a panic (as `catch_unwind`). The first caught panic
/// of the process is printed by the panic hook as usual (with its
/// backtrace under `RUST_BACKTRACE=1`); the next 20 get one line
/// each (where, and the message), and later ones only a count at 100,
/// 1,000, 10,000…
///
/// ```
/// let r = toolgym_env::catch_quietly(|| -> u32 { panic!("a bug in my env") });
/// assert_eq!(toolgym_env::panic_message(&r.unwrap_err()), "a bug in my env");
/// assert_eq!(toolgym_env::catch_quietly(|| 2 + 2).unwrap(), 4);
/// ```
pub fn catch_quietly<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    static HOOK: Once = Once::new();
    if std::thread::panicking() {
        // Called while this thread unwinds (from a `Drop`): installing the
        // hook would panic (`take_hook`) and poison it for good.
        return catch_unwind(AssertUnwindSafe(f));
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(Cell::get) || UNWINDING.with(|u| u.replace(true)) {
                previous(info);
                return;
            }
            let n = CAUGHT.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 {
                previous(info);
                eprintln!(
                    "toolgym: that panic was caught (it fails only its call, episode or task); \
                     later panics caught in env, tool and task-source code print one line each, \
                     the first {LINES}"
                );
            } else if n <= LINES + 1 {
                let place = info
                    .location()
                    .map(|l| format!(" at {l}"))
                    .unwrap_or_default();
                let message = payload_message(info.payload());
                eprintln!("toolgym: caught panic {n}{place}: {message}");
            } else if n >= 100 && 10usize.pow(n.ilog10()) == n {
                eprintln!("toolgym: {n} panics caught in env, tool and task-source code so far");
            }
        }));
    });
    let was = CATCHING.with(|c| c.replace(true));
    let was_unwinding = UNWINDING.with(|u| u.replace(false));
    let out = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    UNWINDING.with(|u| u.set(was_unwinding));
    out
}

/// The message of a caught panic (`catch_unwind`'s payload), or
/// `(no message)` when it carries none.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    payload_message(panic.as_ref())
}

/// [`panic_message`] of a payload that is then dropped, a panic in its
/// `Drop` caught (`std::panic::panic_any` can throw a value whose `Drop`
/// panics; dropped outside `catch_unwind`, it would unwind through the
/// caller, out of a training run). A payload that panics again is leaked.
pub fn take_panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    let message = panic_message(&panic);
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(panic))) {
        std::mem::forget(again);
    }
    message
}

/// [`panic_message`] of a payload as the panic hook sees it.
fn payload_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}
