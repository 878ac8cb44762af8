//! One run per run directory at a time: two processes writing one run
//! directory would overwrite each other's checkpoints, metrics and final
//! policy, and both report success.

use crate::TrainError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a run directory (it holds the owner's process id).
pub const LOCK_FILE: &str = ".toolgym.lock";

/// An exclusive lock on a run directory, held until dropped (or the
/// process ends, however it ends: the operating system releases it).
///
/// A run directory the lock made (with the folders above it that it made)
/// and that holds nothing but the lock file when the lock is dropped is
/// removed: a run refused before it wrote anything (a config error found
/// once the data is read) leaves no empty run directory behind.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    /// The folders `acquire` made, the run directory first.
    made: Vec<PathBuf>,
}

impl RunLock {
    /// Locks `dir` (created if missing), or fails naming the process that
    /// holds it. Where the file system cannot lock, the run goes on with a
    /// warning.
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        let made = crate::checkpoint::create_dirs(dir)?;
        let path = dir.join(LOCK_FILE);
        let open = || {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| TrainError::io("open", &path, e))
        };
        let mut file = open()?;
        let mut locked = file.try_lock();
        // A lock taken on a file that a run ending just then unlinked
        // (its `Drop`) locks a file no one else opens any more: open the
        // one the name now gives and lock that instead.
        for _ in 0..8 {
            if locked.is_err() || still_named(&file, &path) {
                break;
            }
            file = open()?;
            locked = file.try_lock();
        }
        match locked {
            Ok(()) => {
                let pid = std::process::id().to_string();
                let _ = file
                    .set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| file.write_all(pid.as_bytes()));
                Ok(Self { _file: file, made })
            }
            Err(TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = match owner.trim() {
                    "" => String::new(),
                    pid => format!(" (process {pid})"),
                };
                Err(TrainError::Config(format!(
                    "{} is in use by another toolgym run{owner}: two runs in one directory \
                     would overwrite each other; wait for it, or choose another run.out_dir",
                    dir.display()
                )))
            }
            Err(TryLockError::Error(e)) => {
                eprintln!(
                    "warning: cannot lock {} ({e}); nothing stops another run from using this \
                     directory at the same time",
                    path.display()
                );
                Ok(Self { _file: file, made })
            }
        }
    }
}

/// Whether `path` still names the file `file` has open (always, where
/// files cannot be told apart so).
fn still_named(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let Some(dir) = self.made.first() else {
            return;
        };
        let only_the_lock = std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .map(|e| e.map(|e| e.file_name()))
                .all(|name| name.is_ok_and(|n| n == LOCK_FILE))
        });
        if !only_the_lock || std::fs::remove_file(dir.join(LOCK_FILE)).is_err() {
            return;
        }
        // Each folder only while empty (`remove_dir` refuses otherwise).
        for d in &self.made {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_run_directory_is_refused_until_the_first_goes() {
        let dir = std::env::temp_dir().join(format!("toolgym-lock-{}", std::process::id()));
        let first = RunLock::acquire(&dir).unwrap();
        let e = RunLock::acquire(&dir).unwrap_err().to_string();
        assert!(e.contains("in use by another toolgym run"), "{e}");
        assert!(e.contains(&std::process::id().to_string()), "{e}");
        drop(first);
        RunLock::acquire(&dir).unwrap();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_lock_file_unlinked_after_it_was_opened_is_not_the_lock() {
        let dir = std::env::temp_dir().join(format!("toolgym-lock-gone-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(LOCK_FILE);
        let file = File::create(&path).unwrap();
        assert!(still_named(&file, &path));
        // As a run that ends unlinks it while another opens it.
        std::fs::remove_file(&path).unwrap();
        assert!(!still_named(&file, &path));
        File::create(&path).unwrap();
        assert!(!still_named(&file, &path));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_run_directory_the_lock_made_goes_when_nothing_was_written_in_it() {
        let base = std::env::temp_dir().join(format!("toolgym-lock-made-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let dir = base.join("runs").join("a");
        drop(RunLock::acquire(&dir).unwrap());
        assert!(!base.join("runs").exists());
        assert!(base.exists());
        // A run that wrote something keeps its directory, and the lock file.
        let lock = RunLock::acquire(&dir).unwrap();
        std::fs::write(dir.join("metrics.jsonl"), "").unwrap();
        drop(lock);
        assert!(dir.join("metrics.jsonl").exists() && dir.join(LOCK_FILE).exists());
        // A directory that was there before stays, empty or not.
        std::fs::remove_file(dir.join("metrics.jsonl")).unwrap();
        drop(RunLock::acquire(&dir).unwrap());
        assert!(dir.join(LOCK_FILE).exists());
        std::fs::remove_dir_all(&base).ok();
    }
}
