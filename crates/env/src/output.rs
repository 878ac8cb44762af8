//! Output files written whole or not at all, and telling whether two
//! paths name one file ([`same_path`]).
//!
//! [`AtomicFile`] writes under a temporary name beside the file asked for
//! and renames it into place when [`AtomicFile::finish`] is called. A run
//! that fails or is killed half-way leaves no half-written file under the
//! name a user (or the next program in a pipeline) reads, and a file of
//! that name from an earlier run is kept until the new one is complete.
//!
//! ```
//! use std::io::Write;
//! use toolgym_env::output::AtomicFile;
//!
//! let path = std::env::temp_dir().join(format!("toolgym-doc-{}.jsonl", std::process::id()));
//! let mut out = AtomicFile::create(&path).unwrap();
//! out.write_all(b"{\"id\": 1}\n").unwrap();
//! assert!(!path.exists(), "nothing under the name until it is finished");
//! out.finish().unwrap();
//! assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\": 1}\n");
//! # std::fs::remove_file(&path).unwrap();
//! ```

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// What follows a file's name in the temporary of
/// [`AtomicFile::create_keeping_unfinished`], before the process id.
const UNFINISHED: &str = ".unfinished-";

/// A buffered file written under a temporary name (`.NAME.partial-PID`
/// in the same directory) and renamed to its name by
/// [`finish`](AtomicFile::finish); dropped unfinished, the temporary is
/// removed.
///
/// Where the name is not a regular file already (a device such as
/// `/dev/null`, a pipe), it is written in place: such a file cannot be
/// replaced. A symbolic link to a regular file is followed, and the file
/// it names replaced; one to a pipe or a device (`/dev/stdout` in a
/// pipeline, a shell's `>(…)`) is written through; one that names no file
/// is an error. A path that names one of the process's open descriptors
/// (`/dev/stdout`, `/dev/fd/N`, [`open_descriptor`]; Linux) is written
/// through a duplicate of that descriptor ([`duplicate`]), at its position,
/// even where that is a regular file (the log a shell sent stdout to is not
/// replaced). A name ending in a separator (`results/`) is refused at once,
/// and a file replaced keeps its permissions.
///
/// A killed run cannot remove its temporary; the next one that writes the
/// same name removes those whose process is gone and whose lock no one
/// holds (on Linux, where `/proc` tells; each writer locks its temporary
/// until it has its name).
pub struct AtomicFile {
    writer: Option<BufWriter<File>>,
    /// The file's name (a link followed).
    dest: PathBuf,
    /// The temporary it is written under (`None`: written in place, or
    /// renamed already).
    tmp: Option<PathBuf>,
    /// Dropped unfinished, the temporary is kept
    /// ([`AtomicFile::create_keeping_unfinished`]).
    keep: bool,
}

impl AtomicFile {
    /// Starts writing `path`. The error names the path.
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::open(path, false)
    }

    /// [`AtomicFile::create`] for lines worth keeping when a long run stops
    /// half-way (completions saved as they are generated): the temporary
    /// is a visible `NAME.unfinished-PID` beside it, kept when the file is
    /// dropped unfinished or the process is killed, and never swept by a
    /// later run (see [`AtomicFile::unfinished_beside`]); an earlier file
    /// of the name stays as it was either way.
    pub fn create_keeping_unfinished(path: &Path) -> io::Result<Self> {
        Self::open(path, true)
    }

    /// The `NAME.unfinished-PID` files of earlier runs beside `path`
    /// ([`AtomicFile::create_keeping_unfinished`]), sorted: what runs that
    /// did not finish had written (one a running process still writes,
    /// which holds its lock, is not listed).
    pub fn unfinished_beside(path: &Path) -> Vec<PathBuf> {
        let (Some(name), dir) = (path.file_name(), path.parent()) else {
            return Vec::new();
        };
        let dir = match dir {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut prefix = name.to_os_string();
        prefix.push(UNFINISHED);
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .as_encoded_bytes()
                    .starts_with(prefix.as_encoded_bytes())
            })
            .map(|e| e.path())
            // One a running process still writes holds its lock: not an
            // earlier run's. A lock held only for a moment (a child being
            // started holds a copy of its writer's descriptor until it
            // execs) is asked for again.
            .filter(|p| {
                (0..5).any(|attempt| {
                    if attempt > 0 {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    File::open(p).is_ok_and(|f| f.try_lock().is_ok())
                })
            })
            .collect();
        found.sort();
        found
    }

    fn open(path: &Path, keep: bool) -> io::Result<Self> {
        let cannot = |e: io::Error| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        };
        if path
            .as_os_str()
            .to_string_lossy()
            .ends_with(std::path::is_separator)
        {
            // `results/` would be written as a file `results` (its
            // temporary is), and fail only at the rename, after the work.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot create {}: it names a directory (it ends in a separator); give a \
                     file name",
                    path.display()
                ),
            ));
        }
        if let Some(n) = open_descriptor(path) {
            // `/dev/stdout` where the shell sent stdout to a file, `>>` or
            // a `{ …; } > log` group: replacing that file would unlink
            // what the shell writes to, and opening it again would write
            // at a position of its own (over what the shell writes next).
            // Written through the descriptor itself.
            let file = duplicate(n).map_err(cannot)?;
            return Ok(Self {
                writer: Some(BufWriter::with_capacity(1 << 20, file)),
                dest: path.to_path_buf(),
                tmp: None,
                keep: false,
            });
        }
        let dest = match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => match fs::metadata(path) {
                // A pipe or a device (`/dev/stdout` -> `pipe:[N]`, which
                // no path names): written through the link, in place.
                Ok(target) if !target.is_file() => path.to_path_buf(),
                _ => fs::canonicalize(path).map_err(cannot)?,
            },
            _ => path.to_path_buf(),
        };
        let in_place = fs::metadata(&dest).is_ok_and(|m| !m.is_file());
        let name = dest.file_name().filter(|_| !in_place);
        let Some(name) = name else {
            let file = File::create(&dest).map_err(cannot)?;
            return Ok(Self {
                writer: Some(BufWriter::with_capacity(1 << 20, file)),
                dest,
                tmp: None,
                keep: false,
            });
        };
        let tmp_name = if keep {
            let mut prefix = name.to_os_string();
            prefix.push(UNFINISHED);
            prefix
        } else {
            let mut prefix = std::ffi::OsString::from(".");
            prefix.push(name);
            prefix.push(".partial-");
            remove_orphans(&dest, &prefix);
            prefix
        };
        let mut tmp_name = tmp_name;
        tmp_name.push(std::process::id().to_string());
        let (tmp, file) = if keep {
            // A kept file of an earlier run may carry this process id (a
            // container's main process is PID 1 every run): never opened
            // again, a new name is taken beside it (`-PID.1`, `-PID.2`…).
            let mut n = 0u32;
            loop {
                let mut name = tmp_name.clone();
                if n > 0 {
                    name.push(format!(".{n}"));
                }
                let tmp = dest.with_file_name(name);
                match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                {
                    Ok(file) => break (tmp, file),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
                    Err(e) => return Err(cannot(e)),
                }
            }
        } else {
            let tmp = dest.with_file_name(tmp_name);
            let file = File::create(&tmp).map_err(cannot)?;
            (tmp, file)
        };
        // A file replaced keeps its permissions (a private one stays
        // private). Best effort, as a copy would be.
        if let Ok(m) = fs::metadata(&dest) {
            let _ = file.set_permissions(m.permissions());
        }
        // Held until the file has its name: a sweep by another run
        // ([`remove_orphans`]) leaves a locked temporary alone. Where the
        // file system has no locks, nothing is swept.
        let _ = file.lock();
        Ok(Self {
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            dest,
            tmp: Some(tmp),
            keep,
        })
    }

    /// The temporary the file is written under, until it has its name
    /// (`None` for a file written in place).
    pub fn temporary(&self) -> Option<&Path> {
        self.tmp.as_deref()
    }

    /// Flushes the file and gives it its name. The error names the path.
    pub fn finish(mut self) -> io::Result<()> {
        let writer = self.writer.take().expect("an AtomicFile is finished once");
        let result = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| match &self.tmp {
                // Renamed while still open (and locked), then closed.
                Some(tmp) => fs::rename(tmp, &self.dest).map(|()| drop(file)),
                None => Ok(()),
            });
        if result.is_ok() {
            self.tmp = None;
        }
        result.map_err(|e| self.named(e))
    }

    /// `e`, saying which file it is about.
    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", self.dest.display()),
        )
    }

    fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer
            .as_mut()
            .expect("an AtomicFile is not written after finish")
    }
}

/// Errors name the file being written.
impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.writer().write(buf);
        r.map_err(|e| self.named(e))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let r = self.writer().write_all(buf);
        r.map_err(|e| self.named(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.writer().flush();
        r.map_err(|e| self.named(e))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Unfinished (an error, a panic): the partial file goes, unless
        // it is to be kept (flushed then).
        if let Some(tmp) = self.tmp.take() {
            drop(self.writer.take());
            if !self.keep {
                let _ = fs::remove_file(tmp);
            }
        }
    }
}

/// The number of this process's open file descriptor that `path` names
/// (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`, links to them), if it
/// names one. Such a path to a regular file (stdout sent to a log) reopens
/// that file: it is to be written through, never replaced. Linux only,
/// where `/proc` tells; `None` elsewhere.
pub fn open_descriptor(path: &Path) -> Option<u32> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let own = fs::canonicalize("/proc/self").ok()?;
    let mut p = path.to_path_buf();
    // A few links at most (`/dev/stdout` -> `/proc/self/fd/1` -> the file).
    for _ in 0..8 {
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let number = p.file_name()?.to_str().and_then(|n| n.parse::<u32>().ok());
        if let (Some(n), Ok(dir)) = (number, fs::canonicalize(&parent)) {
            // `/proc/PID/fd` (`self` resolved), or a thread's
            // `/proc/PID/task/TID/fd`.
            let fd_dir = dir.file_name().is_some_and(|d| d == "fd")
                && (dir.parent() == Some(own.as_path())
                    || dir.parent().and_then(Path::parent) == Some(own.join("task").as_path()));
            // A closed descriptor's entry is gone: not a descriptor path
            // then (what it names cannot be created either).
            if fd_dir && fs::symlink_metadata(&p).is_ok() {
                return Some(n);
            }
        }
        let target = fs::read_link(&p).ok()?;
        p = parent.join(target);
    }
    None
}

/// A file of this process's own for its descriptor `n` (a duplicate): it
/// writes where writes to `n` go, at the same position, with its flags
/// (`O_APPEND` for `>>`). Only a descriptor this process was given (by
/// the shell: `3>file`, stdout, stderr) and that is open for writing is
/// taken: one it opened itself (every descriptor Rust opens is
/// close-on-exec, which no inherited one can be) is some file of its own
/// (`--out`'s temporary, an input), and a read-only one (`< f`) would
/// fail at the first write, after the work. Both are refused here, at
/// once.
#[cfg(unix)]
#[allow(unsafe_code)]
pub fn duplicate(n: u32) -> io::Result<File> {
    use std::os::fd::{AsFd, BorrowedFd, RawFd};
    // The flags `/proc/self/fdinfo` shows are the kernel's open flags,
    // whose O_CLOEXEC differs by architecture (alpha, parisc, sparc).
    let cloexec = libc::O_CLOEXEC as u32;
    if writable_descriptor(n)? & cloexec != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "descriptor {n} was opened by this process itself (close-on-exec), not handed to \
                 it: name the file it is open on instead"
            ),
        ));
    }
    let owned = match n {
        0 => io::stdin().as_fd().try_clone_to_owned(),
        1 => io::stdout().as_fd().try_clone_to_owned(),
        2 => io::stderr().as_fd().try_clone_to_owned(),
        _ => {
            let raw = RawFd::try_from(n)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "no such descriptor"))?;
            // SAFETY: `n` is open (its `/proc` entry was just read) and was
            // inherited (not close-on-exec), so no `File` or other owner in
            // this process holds it, and nothing here closes it; it is
            // borrowed only for the duplication, whose result this `File`
            // owns. (A library host closing an inherited descriptor on
            // another thread in between would race as opening
            // `/proc/self/fd/N` by its path would.)
            let fd = unsafe { BorrowedFd::borrow_raw(raw) };
            fd.try_clone_to_owned()
        }
    }?;
    Ok(File::from(owned))
}

/// Checks that descriptor `n` is open for writing (a read-only one, `< f`
/// or `1< f`, would fail at the first write, after the work, or for stdout
/// drop the bytes: Rust's stdout takes a failed write as done); returns its
/// open flags. On Linux, where `/proc/self/fdinfo` tells; elsewhere
/// nothing is checked.
#[cfg(unix)]
pub fn writable_descriptor(n: u32) -> io::Result<u32> {
    if !cfg!(target_os = "linux") {
        return Ok(0);
    }
    let Some(flags) = descriptor_flags(n) else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("descriptor {n} is not open"),
        ));
    };
    const O_ACCMODE: u32 = 0o3;
    const O_RDONLY: u32 = 0o0;
    if flags & O_ACCMODE == O_RDONLY {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("descriptor {n} is open for reading only: it cannot be written"),
        ));
    }
    Ok(flags)
}

/// [`writable_descriptor`] off Unix: nothing is checked.
#[cfg(not(unix))]
pub fn writable_descriptor(_n: u32) -> io::Result<u32> {
    Ok(0)
}

/// The `flags:` of `/proc/self/fdinfo/N` (octal: the open flags, access
/// mode and close-on-exec among them); `None` when `n` is not open.
#[cfg(unix)]
fn descriptor_flags(n: u32) -> Option<u32> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{n}")).ok()?;
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
    u32::from_str_radix(flags.trim(), 8).ok()
}

/// [`duplicate`] off Unix: no descriptor paths are found there.
#[cfg(not(unix))]
pub fn duplicate(n: u32) -> io::Result<File> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("descriptor {n}: not supported here"),
    ))
}

/// Whether two paths name the same file (also through a link, or as
/// two spellings of a file that does not exist yet: `new.json` and
/// `./new.json`); `-` (stdio) names none.
pub fn same_path(a: &Path, b: &Path) -> bool {
    if a.as_os_str() == "-" || b.as_os_str() == "-" {
        return false;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => same_file(&a, &b),
        _ => matches!((resolved(a), resolved(b)), (Some(a), Some(b)) if a == b),
    }
}

/// The absolute path `p` names, links resolved; for a file that does not
/// exist yet, its directory's resolved path and its name. `None` when
/// neither resolves.
pub fn resolved(p: &Path) -> Option<PathBuf> {
    if let Ok(full) = std::fs::canonicalize(p) {
        return Some(full);
    }
    let name = p.file_name()?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::canonicalize(dir).ok().map(|d| d.join(name))
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    false
}

/// Removes the temporaries (`prefix` then a process id) beside `dest`
/// that killed runs left: on Linux only, where `/proc/PID` tells that the
/// process that wrote one is gone, and only when no one holds the lock
/// every writer takes on its temporary (a run on another host, or in
/// another PID namespace, sharing the directory still holds its own);
/// where locks are not supported, nothing is removed. Quietly, as a
/// clean-up.
fn remove_orphans(dest: &Path, prefix: &std::ffi::OsStr) {
    if !cfg!(target_os = "linux") || !Path::new("/proc/self").exists() {
        return;
    }
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (Ok(entries), Some(prefix)) = (fs::read_dir(dir), prefix.to_str()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let gone = pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
        });
        if !gone || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        // Removed while its lock is held here, so a writer cannot take it
        // in between; a writer's rename into place needs no lock.
        if let Ok(file) = File::open(entry.path()) {
            if file.try_lock().is_ok() {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A killed run's temporary is removed by the next run that writes
    /// the same name, when its process is gone; a live one's is kept.
    #[test]
    #[cfg(target_os = "linux")]
    fn the_temporaries_of_killed_runs_are_removed_by_the_next_one() {
        let d = dir("orphans");
        let dest = d.join("v.jsonl");
        // No process has the largest pid Linux allows plus one.
        let orphan = d.join(".v.jsonl.partial-4194305");
        let live = d.join(format!(".v.jsonl.partial-{}", std::process::id()));
        let other = d.join(".w.jsonl.partial-4194305");
        let held = d.join(".v.jsonl.partial-4194306");
        for f in [&orphan, &other, &held] {
            fs::write(f, "half").unwrap();
        }
        // A writer elsewhere (another host or PID namespace) holds its lock.
        let holder = File::open(&held).unwrap();
        holder.lock().unwrap();
        let mut out = AtomicFile::create(&dest).unwrap();
        assert!(!orphan.exists(), "the orphan is removed");
        assert!(held.exists(), "a locked temporary is left alone");
        drop(holder);
        assert!(other.exists(), "another name's temporary is left alone");
        assert!(live.exists(), "this run's own temporary is there");
        out.write_all(b"x").unwrap();
        out.finish().unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "x");
        fs::remove_dir_all(&d).ok();
    }

    /// A link to a pipe (`/dev/stdout` in a pipeline) is written through,
    /// not resolved to a name that does not exist.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_link_to_a_pipe_is_written_through() {
        let d = dir("fifo");
        let fifo = d.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return; // no mkfifo on this machine
        }
        let link = d.join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
        };
        let mut out = AtomicFile::create(&link).unwrap();
        out.write_all(b"through").unwrap();
        out.finish().unwrap();
        assert_eq!(reader.join().unwrap(), "through");
        fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_name_ending_in_a_separator_is_refused_before_any_work() {
        let d = dir("slash");
        let e = AtomicFile::create(&d.join("results/")).err().unwrap();
        assert!(e.to_string().contains("names a directory"), "{e}");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0, "nothing written");
    }

    /// A file replaced keeps its mode: a private output stays private.
    #[test]
    #[cfg(unix)]
    fn a_replaced_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("mode");
        let path = d.join("v.jsonl");
        fs::write(&path, "old\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let mut out = AtomicFile::create(&path).unwrap();
        out.write_all(b"new\n").unwrap();
        out.finish().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    /// Paths naming descriptors are found (`/proc/self/fd/N`, `/dev/fd/N`,
    /// links to them, `/dev/stdout`), but only a descriptor the process
    /// was given is written through: one it opened itself (close-on-exec,
    /// as every `File` here) is refused at once, and so is a closed one's.
    /// Writing through an inherited descriptor, sharing its position, is
    /// tested from a shell (`tests/cli_pipes.rs`).
    #[test]
    #[cfg(target_os = "linux")]
    fn descriptor_paths_are_found_and_only_inherited_ones_taken() {
        use std::os::fd::AsRawFd;
        let d = dir("descriptor");
        let log = d.join("log.txt");
        let held = File::create(&log).unwrap();
        let n = held.as_raw_fd();
        let link = d.join("out-link");
        std::os::unix::fs::symlink(format!("/proc/self/fd/{n}"), &link).unwrap();
        for path in [
            PathBuf::from(format!("/proc/self/fd/{n}")),
            PathBuf::from(format!("/dev/fd/{n}")),
            link.clone(),
        ] {
            assert_eq!(open_descriptor(&path), Some(n as u32), "{}", path.display());
        }
        assert_eq!(open_descriptor(Path::new("/dev/stdout")), Some(1));
        assert_eq!(open_descriptor(&log), None);
        assert_eq!(open_descriptor(&d.join("missing")), None);
        // This process's own file (an input, another output's temporary).
        let e = AtomicFile::create(&link).err().unwrap();
        assert!(
            e.to_string().contains("opened by this process itself"),
            "{e}"
        );
        assert_eq!(fs::read_dir(&d).unwrap().count(), 2, "nothing written");
        drop(held);
        // A closed descriptor's path names nothing.
        let closed = PathBuf::from(format!("/proc/self/fd/{n}"));
        assert_eq!(open_descriptor(&closed), None);
        assert!(AtomicFile::create(&closed).is_err());
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("toolgym-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn an_unfinished_file_leaves_the_earlier_one_and_no_temporary() {
        let d = dir("unfinished");
        let path = d.join("out.jsonl");
        fs::write(&path, "earlier\n").unwrap();
        {
            let mut out = AtomicFile::create(&path).unwrap();
            out.write_all(b"half of the new").unwrap();
            out.flush().unwrap();
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "earlier\n");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "a temporary was left");
        let mut out = AtomicFile::create(&path).unwrap();
        out.write_all(b"new\n").unwrap();
        out.finish().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    /// What a generation that stops half-way wrote is kept beside the name,
    /// visible, and neither the next such run nor any other writer of the
    /// name removes it (the sweep took it, with the completions in it).
    #[test]
    fn a_kept_unfinished_file_survives_later_runs() {
        let d = dir("kept");
        let path = d.join("saved.jsonl");
        fs::write(&path, "earlier\n").unwrap();
        // As a killed run leaves it: another process's id.
        let killed = d.join("saved.jsonl.unfinished-4194305");
        fs::write(&killed, "made before the kill\n").unwrap();
        {
            let mut out = AtomicFile::create_keeping_unfinished(&path).unwrap();
            out.write_all(b"half\n").unwrap();
        }
        let own = d.join(format!("saved.jsonl.unfinished-{}", std::process::id()));
        assert_eq!(fs::read_to_string(&own).unwrap(), "half\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "earlier\n");
        let mut both = [own.clone(), killed.clone()];
        both.sort();
        assert_eq!(AtomicFile::unfinished_beside(&path), both);
        fs::remove_file(&own).unwrap();
        // Plain writers of the name and a finished kept run leave it too.
        AtomicFile::create(&path).unwrap().finish().unwrap();
        let mut out = AtomicFile::create_keeping_unfinished(&path).unwrap();
        out.write_all(b"new\n").unwrap();
        out.finish().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(
            fs::read_to_string(&killed).unwrap(),
            "made before the kill\n"
        );
        assert_eq!(AtomicFile::unfinished_beside(&path), [killed]);
        // A kept file of this very process id (a container's PID 1 every
        // run) is not opened again: the new one takes a name beside it.
        fs::write(&own, "an earlier run of this pid\n").unwrap();
        {
            let mut out = AtomicFile::create_keeping_unfinished(&path).unwrap();
            out.write_all(b"this run\n").unwrap();
            let beside =
                own.with_file_name(format!("saved.jsonl.unfinished-{}.1", std::process::id()));
            assert_eq!(out.temporary(), Some(beside.as_path()));
        }
        assert_eq!(
            fs::read_to_string(&own).unwrap(),
            "an earlier run of this pid\n"
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn links_are_followed_and_devices_written_in_place() {
        let d = dir("links");
        let target = d.join("target.jsonl");
        fs::write(&target, "old").unwrap();
        let link = d.join("link.jsonl");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&target, &link).unwrap();
            let mut out = AtomicFile::create(&link).unwrap();
            out.write_all(b"through the link").unwrap();
            out.finish().unwrap();
            assert!(fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
            assert_eq!(fs::read_to_string(&target).unwrap(), "through the link");
            let mut null = AtomicFile::create(Path::new("/dev/null")).unwrap();
            null.write_all(b"gone").unwrap();
            null.finish().unwrap();
            assert!(!fs::metadata("/dev/null").unwrap().is_file());
        }
        let _ = link;
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_missing_directory_is_named() {
        let path = std::env::temp_dir().join("toolgym-no-such-dir/x/out.jsonl");
        let e = AtomicFile::create(&path).err().unwrap().to_string();
        assert!(
            e.contains("cannot create") && e.contains("out.jsonl"),
            "{e}"
        );
    }
}
