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
/// is an error.
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
}

impl AtomicFile {
    /// Starts writing `path`. The error names the path.
    pub fn create(path: &Path) -> io::Result<Self> {
        let cannot = |e: io::Error| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        };
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
            });
        };
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".partial-");
        remove_orphans(&dest, &prefix);
        let mut tmp_name = prefix;
        tmp_name.push(std::process::id().to_string());
        let tmp = dest.with_file_name(tmp_name);
        let file = File::create(&tmp).map_err(cannot)?;
        // Held until the file has its name: a sweep by another run
        // ([`remove_orphans`]) leaves a locked temporary alone. Where the
        // file system has no locks, nothing is swept.
        let _ = file.lock();
        Ok(Self {
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            dest,
            tmp: Some(tmp),
        })
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
        // Unfinished (an error, a panic): the partial file goes.
        if let Some(tmp) = self.tmp.take() {
            drop(self.writer.take());
            let _ = fs::remove_file(tmp);
        }
    }
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
