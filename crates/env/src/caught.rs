//! Panics of user code (env methods, tool handlers) caught at the
//! boundary: each fails only its call or episode, and the run goes on.
//!
//! Rust's panic hook prints every panic before it is caught, with a
//! backtrace under `RUST_BACKTRACE=1`: an env that panics on one seed in
//! three printed thousands of them in one run. [`catch_quietly`] lets the
//! first caught panic of the process print as usual (its backtrace is what
//! a user debugging the env needs), says that later ones are not printed,
//! and keeps the rest quiet; what failed is still reported by the caller
//! (the trainer says the first failure of each step). Panics outside
//! these calls print as before: the hook wraps whatever hook was set.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`catch_quietly`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Whether a caught panic has been printed in this process.
static SHOWN: AtomicBool = AtomicBool::new(false);

/// Runs `f`, catching a panic (as `catch_unwind`); a caught panic is
/// printed by the panic hook only if it is the first of the process.
///
/// ```
/// let r = toolgym_env::catch_quietly(|| -> u32 { panic!("a bug in my env") });
/// assert_eq!(toolgym_env::panic_message(&r.unwrap_err()), "a bug in my env");
/// assert_eq!(toolgym_env::catch_quietly(|| 2 + 2).unwrap(), 4);
/// ```
pub fn catch_quietly<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let caught = CATCHING.with(Cell::get);
            if !caught {
                previous(info);
            } else if !SHOWN.swap(true, Ordering::Relaxed) {
                previous(info);
                eprintln!(
                    "toolgym: that panic was caught (it fails only its call or episode); later \
                     panics in env and tool code are caught without being printed"
                );
            }
        }));
    });
    let was = CATCHING.with(|c| c.replace(true));
    let out = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    out
}

/// The message of a caught panic (`catch_unwind`'s payload), or
/// `(no message)` when it carries none.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}
