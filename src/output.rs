//! Keeping a long run alive when the reader of its output goes away.
//!
//! `toolgym train … 2>&1 | tee run.log`: when `tee` ends on its own (it is
//! killed, a log shipper restarts, the disk it writes fills), every later
//! write into the pipe fails.
//! With the default `SIGPIPE` action the next log line kills the run;
//! with the signal ignored (Rust's default) `eprintln!` panics on the
//! failed write instead. Either way hours of training since the last
//! checkpoint are lost to a log reader.
//!
//! [`relay_piped_output`] puts a pipe of its own in front of standard
//! output and standard error where they are pipes or sockets: a thread
//! named `toolgym-output` copies what the process writes to the original
//! reader, and once that reader is gone it drops the rest. The process's
//! writes always succeed, so the run goes on; what it records in its run
//! directory (metrics, checkpoints) is unaffected. Files and terminals are
//! written as before (nothing is relayed).
//!
//! What it does not cover: a Ctrl-C in the terminal, or the terminal
//! closing, signals the whole pipeline (toolgym too, unless it runs under
//! `nohup`, `setsid` or tmux). And output still in the relay when the
//! process dies without unwinding (an abort, a kill) is lost with it: the
//! last lines before such a crash may not reach the log.

use std::io;

/// Standard output and error relayed by [`relay_piped_output`]. Dropping
/// it flushes standard output, puts the original descriptors back, waits
/// for the relay to pass on what it holds (as long as the reader takes it;
/// 2 s for the end of the pipe when another process still holds it), and
/// puts back the `SIGPIPE` action it found.
#[must_use = "the relay ends when the guard is dropped"]
pub struct RelayGuard {
    #[cfg(unix)]
    relays: Vec<unix::Relay>,
    /// The `SIGPIPE` action before, put back on drop.
    #[cfg(unix)]
    sigpipe: libc::sighandler_t,
}

impl RelayGuard {
    /// How many relays run: one per distinct pipe behind standard output
    /// and error (`2>&1` into one pipe makes one).
    pub fn relays(&self) -> usize {
        #[cfg(unix)]
        return self.relays.len();
        #[cfg(not(unix))]
        0
    }
}

/// Relays standard output and standard error, where they are pipes or
/// sockets, through a thread that drops what it cannot pass on (see the
/// module docs), and ignores `SIGPIPE` so that the relay sees a closed
/// reader as an error, not a signal. Keep the guard alive while the run
/// writes; drop it before the process ends. Call it once per process (a
/// second relay would sit in front of the first). On other platforms than
/// Unix it does nothing.
///
/// ```no_run
/// // A training program that should outlive the reader of its log.
/// let relay = toolgym::output::relay_piped_output()
///     .map_err(|e| eprintln!("warning: output not relayed ({e})"))
///     .ok();
/// eprintln!("step 1 …"); // never fails, whoever reads the pipe
/// drop(relay); // passes on what is left before the process ends
/// ```
pub fn relay_piped_output() -> io::Result<RelayGuard> {
    #[cfg(unix)]
    return unix::relay();
    #[cfg(not(unix))]
    Ok(RelayGuard {})
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::io::Write;
            let _ = io::stdout().flush();
            for relay in self.relays.drain(..) {
                relay.finish(std::time::Duration::from_secs(2));
            }
            // SAFETY: puts back the action found at the start.
            unsafe {
                libc::signal(libc::SIGPIPE, self.sigpipe);
            }
        }
    }
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::fd::{IntoRawFd, RawFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    /// One pipe in front of the descriptors `fds`, which all wrote into the
    /// same pipe or socket; `saved` is that original, where the thread
    /// writes.
    pub(super) struct Relay {
        fds: Vec<RawFd>,
        saved: RawFd,
        /// Whether the thread is passing bytes on (in a write to `saved`),
        /// as opposed to waiting for more.
        writing: Arc<AtomicBool>,
        done: mpsc::Receiver<()>,
        thread: std::thread::JoinHandle<()>,
    }

    /// The identity of what `fd` writes into, when it is a pipe or socket.
    fn piped(fd: RawFd) -> Option<(libc::dev_t, libc::ino_t)> {
        // SAFETY: fstat writes into the struct it is given; a zeroed stat
        // is a valid value of it.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return None;
        }
        let kind = st.st_mode & libc::S_IFMT;
        (kind == libc::S_IFIFO || kind == libc::S_IFSOCK).then_some((st.st_dev, st.st_ino))
    }

    pub(super) fn relay() -> io::Result<super::RelayGuard> {
        // SAFETY: ignoring a signal has no other effect; a write into a
        // pipe without a reader then fails with EPIPE.
        let sigpipe = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let mut guard = super::RelayGuard {
            relays: Vec::new(),
            sigpipe,
        };
        let mut groups: Vec<((libc::dev_t, libc::ino_t), Vec<RawFd>)> = Vec::new();
        for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            if let Some(id) = piped(fd) {
                match groups.iter_mut().find(|(g, _)| *g == id) {
                    Some((_, fds)) => fds.push(fd),
                    None => groups.push((id, vec![fd])),
                }
            }
        }
        for (_, fds) in groups {
            // On an error, those started are put back by the guard's drop.
            guard.relays.push(start(fds)?);
        }
        Ok(guard)
    }

    fn start(fds: Vec<RawFd>) -> io::Result<Relay> {
        use std::io::Write;
        let _ = io::stdout().flush();
        // Both ends close on exec; the standard descriptors made from the
        // write end below do not (dup2 clears the flag), as before.
        let (read, write) = io::pipe()?;
        // SAFETY: duplicating a descriptor of this process.
        let saved = unsafe { libc::fcntl(fds[0], libc::F_DUPFD_CLOEXEC, 3) };
        if saved < 0 {
            return Err(io::Error::last_os_error());
        }
        let read = read.into_raw_fd();
        let (tx, done) = mpsc::channel();
        let writing = Arc::new(AtomicBool::new(false));
        let flag = writing.clone();
        let thread = std::thread::Builder::new()
            .name("toolgym-output".into())
            .spawn(move || {
                pass_on(read, saved, &flag);
                let _ = tx.send(());
            });
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                // SAFETY: neither is used elsewhere; the thread never ran.
                unsafe {
                    libc::close(read);
                    libc::close(saved);
                }
                return Err(e);
            }
        };
        let write = write.into_raw_fd();
        for &fd in &fds {
            // SAFETY: replaces a standard descriptor by the pipe's write
            // end (dup2 is atomic: a write in another thread goes to one
            // or the other).
            unsafe { libc::dup2(write, fd) };
        }
        // SAFETY: the standard descriptors hold the write end now.
        unsafe { libc::close(write) };
        Ok(Relay {
            fds,
            saved,
            writing,
            done,
            thread,
        })
    }

    /// Writes all of `out` to `fd`: `false` once the reader is gone (or
    /// the descriptor fails otherwise). A descriptor left non-blocking by
    /// whoever opened it is waited on, not taken for gone.
    fn write_all(fd: RawFd, mut out: &[u8]) -> bool {
        while !out.is_empty() {
            // SAFETY: writes from a slice of the given length.
            let w = unsafe { libc::write(fd, out.as_ptr().cast(), out.len()) };
            if w >= 0 {
                out = &out[w as usize..];
                continue;
            }
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    let mut p = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: polls one descriptor of this process.
                    unsafe { libc::poll(&mut p, 1, -1) };
                }
                _ => return false,
            }
        }
        true
    }

    /// Copies what arrives on `read` to `saved` until every write end is
    /// closed; after the first failed write (the reader went away) the
    /// rest is read and dropped.
    fn pass_on(read: RawFd, saved: RawFd, writing: &AtomicBool) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut passing = true;
        loop {
            // SAFETY: reads into a buffer of the given length.
            let n = unsafe { libc::read(read, buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 {
                break;
            }
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            if passing {
                writing.store(true, Ordering::Release);
                passing = write_all(saved, &buf[..n as usize]);
                writing.store(false, Ordering::Release);
            }
        }
        // SAFETY: the read end is this thread's alone.
        unsafe { libc::close(read) };
    }

    impl Relay {
        /// Puts the original descriptor back and waits for the relay to
        /// pass on what it holds: as long as the reader takes it (a slow
        /// reader gets it all, as it would have without the relay), and up
        /// to `limit` of waiting for the pipe's end (a child process that
        /// still holds the pipe keeps it open: then the thread is left to
        /// end with it).
        pub(super) fn finish(self, limit: Duration) {
            for &fd in &self.fds {
                // SAFETY: restores the descriptor saved at the start; the
                // pipe's write end held there is closed by it.
                unsafe { libc::dup2(self.saved, fd) };
            }
            let mut idle_since = Instant::now();
            loop {
                match self.done.recv_timeout(Duration::from_millis(50)) {
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                        let _ = self.thread.join();
                        // SAFETY: the thread that wrote to it has ended.
                        unsafe { libc::close(self.saved) };
                        return;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if self.writing.load(Ordering::Acquire) {
                            idle_since = Instant::now();
                        } else if idle_since.elapsed() >= limit {
                            return;
                        }
                    }
                }
            }
        }
    }
}
