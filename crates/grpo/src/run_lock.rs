//! One run per run directory at a time: two processes writing one run
//! directory would overwrite each other's checkpoints, metrics and final
//! policy, and both report success.

use crate::TrainError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file inside a run directory (it holds the owner's process id).
pub const LOCK_FILE: &str = ".toolgym.lock";

/// An exclusive lock on a run directory, held until dropped (or the
/// process ends, however it ends: the operating system releases it).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Locks `dir` (created if missing), or fails naming the process that
    /// holds it. Where the file system cannot lock, the run goes on with a
    /// warning.
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io("create", dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| TrainError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => {
                let pid = std::process::id().to_string();
                let _ = file
                    .set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| file.write_all(pid.as_bytes()));
                Ok(Self { _file: file })
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
                Ok(Self { _file: file })
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
}
