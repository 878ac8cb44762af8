//! Keeping a long run alive when the reader of its output goes away.
//!
//! `toolgym train … 2>&1 | tee run.log`: when `tee` ends (its terminal
//! closed, a Ctrl-C meant for it), every later write into the pipe fails.
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

use std::io;

/// Standard output and error relayed by [`relay_piped_output`]. Dropping
/// it flushes standard output, puts the original descriptors back and
/// waits (up to 2 s) for the relay to pass on what it holds.
#[must_use = "the relay ends when the guard is dropped"]
pub struct RelayGuard {
    #[cfg(unix)]
    relays: Vec<unix::Relay>,
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
/// writes; drop it before the process ends. On other platforms than Unix
/// it does nothing.
pub fn relay_piped_output() -> io::Result<RelayGuard> {
    #[cfg(unix)]
    return unix::relay().map(|relays| RelayGuard { relays });
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
        }
    }
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::fd::RawFd;
    use std::sync::mpsc;
    use std::time::Duration;

    /// One pipe in front of the descriptors `fds`, which all wrote into the
    /// same pipe or socket; `saved` is that original, where the thread
    /// writes.
    pub(super) struct Relay {
        fds: Vec<RawFd>,
        saved: RawFd,
        done: mpsc::Receiver<()>,
        thread: std::thread::JoinHandle<()>,
    }

    fn check(r: libc::c_int) -> io::Result<libc::c_int> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
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

    pub(super) fn relay() -> io::Result<Vec<Relay>> {
        // SAFETY: ignoring a signal has no other effect; a write into a
        // pipe without a reader then fails with EPIPE.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let mut groups: Vec<((libc::dev_t, libc::ino_t), Vec<RawFd>)> = Vec::new();
        for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
            if let Some(id) = piped(fd) {
                match groups.iter_mut().find(|(g, _)| *g == id) {
                    Some((_, fds)) => fds.push(fd),
                    None => groups.push((id, vec![fd])),
                }
            }
        }
        let mut relays = Vec::new();
        for (_, fds) in groups {
            match start(fds) {
                Ok(relay) => relays.push(relay),
                Err(e) => {
                    // Those started are put back by the guard's drop.
                    drop(super::RelayGuard { relays });
                    return Err(e);
                }
            }
        }
        Ok(relays)
    }

    fn start(fds: Vec<RawFd>) -> io::Result<Relay> {
        use std::io::Write;
        let _ = io::stdout().flush();
        let mut ends = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the array it is given.
        check(unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) })?;
        let [read, write] = ends;
        let close_both = || unsafe {
            libc::close(read);
            libc::close(write);
        };
        // SAFETY: duplicating a descriptor of this process.
        let saved = match check(unsafe { libc::fcntl(fds[0], libc::F_DUPFD_CLOEXEC, 3) }) {
            Ok(fd) => fd,
            Err(e) => {
                close_both();
                return Err(e);
            }
        };
        let (tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("toolgym-output".into())
            .spawn(move || {
                pass_on(read, saved);
                let _ = tx.send(());
            });
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                close_both();
                unsafe { libc::close(saved) };
                return Err(e);
            }
        };
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
            done,
            thread,
        })
    }

    /// Copies what arrives on `read` to `saved` until every write end is
    /// closed; after the first failed write (the reader went away) the
    /// rest is read and dropped.
    fn pass_on(read: RawFd, saved: RawFd) {
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
            let mut out = &buf[..n as usize];
            while passing && !out.is_empty() {
                // SAFETY: writes from a slice of the given length.
                let w = unsafe { libc::write(saved, out.as_ptr().cast(), out.len()) };
                if w < 0 {
                    if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                        passing = false;
                    }
                    continue;
                }
                out = &out[w as usize..];
            }
        }
        // SAFETY: the read end is this thread's alone.
        unsafe { libc::close(read) };
    }

    impl Relay {
        /// Puts the original descriptor back and waits up to `limit` for
        /// the relay to pass on what it holds (a child process that still
        /// holds the pipe keeps it open: then the thread is left to end
        /// with it).
        pub(super) fn finish(self, limit: Duration) {
            for &fd in &self.fds {
                // SAFETY: restores the descriptor saved at the start; the
                // pipe's write end held there is closed by it.
                unsafe { libc::dup2(self.saved, fd) };
            }
            if self.done.recv_timeout(limit).is_ok() {
                let _ = self.thread.join();
                // SAFETY: the thread that wrote to it has ended.
                unsafe { libc::close(self.saved) };
            }
        }
    }
}
