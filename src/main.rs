//! The `toolgym` command line: thin wrappers over the library crates.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_broken_pipes();
    toolgym_grpo::configure_cpu();
    let args = cli::Cli::parse_args();
    // A training run goes on when the reader of its log goes away
    // (`2>&1 | tee run.log`, and tee ends): its products are files.
    let relay = match args.writes_a_log() {
        true => toolgym::output::relay_piped_output()
            .map_err(|e| {
                eprintln!("warning: output not relayed ({e}); a closed log pipe ends the run")
            })
            .ok(),
        false => None,
    };
    let code = match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    drop(relay);
    code
}

/// `toolgym score … | head` ends quietly: the default SIGPIPE action
/// (Rust ignores the signal, so every write would fail with an error, and
/// `print!` would panic) ends the process when the reader goes away.
/// `toolgym train` relays its output instead ([`toolgym::output`]).
fn quiet_broken_pipes() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any thread starts;
    // restoring a signal's default action has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
