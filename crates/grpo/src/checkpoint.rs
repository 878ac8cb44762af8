//! Checkpoints: the policy in Hugging Face layout, the optimiser state and
//! the trainer state (step, data position, seeds), written atomically.
//!
//! Layout under a phase's directory (`RUN_DIR/sft/`, `RUN_DIR/grpo/`;
//! the run directory itself holds `config.toml`, `metrics.jsonl`, the
//! lock, `final/` and, for GRPO, `grpo/reference/`, the KL reference):
//! ```text
//! checkpoints/
//!   step-00000020/        model files (config.json, model.safetensors, tokenizer.json, …)
//!     optimizer.safetensors
//!     trainer_state.json
//!     checksums.json
//!   latest                "step-00000020" (replaced by rename)
//! ```
//! A checkpoint is written to `.tmp-step-…`, its files fsynced, renamed into
//! place and the directory fsynced before `latest` is switched (also by
//! rename, then fsync), so a run killed at any moment, or a machine losing
//! power, leaves `latest` naming a complete checkpoint. Leftover `.tmp-*`
//! directories are removed when the next checkpoint is written.
//!
//! Loading checks what it reads (`state::load_checkpoint`, used when a trainer resumes): a
//! truncated or corrupt file, or `latest` naming nothing, is an error naming
//! the file; with `run.resume_fallback` the run resumes from the newest
//! other checkpoint that loads instead. Without `latest` (a run killed
//! between renaming its first checkpoint into place and naming it), the
//! newest step directory is resumed from.

use crate::TrainError;
use candle_core::{Device, Tensor};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the file inside `checkpoints/` naming the newest checkpoint.
pub const LATEST: &str = "latest";
/// Optimiser moments inside a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Trainer state inside a checkpoint.
pub const STATE_FILE: &str = "trainer_state.json";
/// File of a checkpoint that records every other file's CRC-32, so that
/// bytes changed after writing (a disk error, a stray write) are found
/// when it is loaded, not trained on.
pub const CHECKSUMS_FILE: &str = "checksums.json";

/// The `checkpoints/` directory of a run.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// Directory name of the checkpoint after `step` steps.
pub fn step_dir_name(step: usize) -> String {
    format!("step-{step:08}")
}

/// The step of a checkpoint directory named by [`step_dir_name`].
pub fn step_of(dir: &Path) -> Option<usize> {
    dir.file_name()?
        .to_str()?
        .strip_prefix("step-")?
        .parse()
        .ok()
}

/// Writes a checkpoint atomically. `write_model` fills the directory with the
/// model files; then the optimiser tensors and the state are added.
/// Keeps the newest `keep` checkpoints (0 = all). Returns its directory.
pub fn save<S: Serialize>(
    run_dir: &Path,
    step: usize,
    write_model: impl FnOnce(&Path) -> Result<(), TrainError>,
    optimizer: &HashMap<String, Tensor>,
    state: &S,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    let root = checkpoints_dir(run_dir);
    let made = create_dirs(&root)?;
    // The entries of the folders just made, in their parents: without
    // them a power cut may lose the first checkpoint's path whole.
    for dir in &made {
        sync_parent(dir)?;
    }
    remove_temporaries(&root)?;
    let name = step_dir_name(step);
    let tmp = root.join(format!(".tmp-{name}"));
    if tmp.exists() {
        // A leftover of this very name could not be removed: writing into
        // it would mix its files with this checkpoint's.
        return Err(TrainError::Checkpoint(format!(
            "{} is left over from an earlier save and could not be removed; remove it",
            tmp.display()
        )));
    }
    write_model(&tmp)?;
    let opt_path = tmp.join(OPTIMIZER_FILE);
    toolgym_model::checkpoint::write_safetensors(&opt_path, optimizer)?;
    let state_text = serde_json::to_string_pretty(state)
        .map_err(|e| TrainError::Checkpoint(format!("{STATE_FILE}: {e}")))?;
    let mut sums = checksums(&tmp)?;
    sums.insert(STATE_FILE.into(), crc_hex(state_text.as_bytes()));
    write_json(&tmp.join(CHECKSUMS_FILE), &sums)?;
    write_atomically(&tmp.join(STATE_FILE), state_text.as_bytes())?;
    sync_files(&tmp)?;
    let dest = root.join(&name);
    if dest.exists() {
        // A checkpoint of this step already (saved again after a run's
        // last step, or right after resuming): possibly the one `latest`
        // names, so never removed before the new one is in its place.
        replace_dir(&tmp, &dest)?;
    } else {
        fs::rename(&tmp, &dest).map_err(|e| TrainError::io("rename", &tmp, e))?;
    }
    sync_dir(&root)?;
    write_atomically(&root.join(LATEST), name.as_bytes())?;
    if keep > 0 {
        // The new checkpoint is committed: an old one that will not go
        // (a file the run may not delete) is said, not a reason to stop.
        if let Err(e) = prune(&root, step, keep) {
            eprintln!("checkpoints: could not remove an old checkpoint ({e}); tried again at the next save");
        }
    }
    Ok(dest)
}

/// Puts the directory `new` where the directory `dest` is. On Linux the
/// two swap names in one rename (`renameat2` with `RENAME_EXCHANGE`), so
/// a crash at any point leaves a whole directory under `dest`, the old or
/// the new; the old one, then under `new`'s temporary name, is removed
/// (or by the next save, which removes temporaries). Elsewhere, or on a
/// filesystem without the exchange, `dest` is removed first.
fn replace_dir(new: &Path, dest: &Path) -> Result<(), TrainError> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        if renameat_with(CWD, new, CWD, dest, RenameFlags::EXCHANGE).is_ok() {
            sync_parent(dest)?;
            // The new checkpoint is in place: an old one that will not go
            // (busy files on NFS) is said, and the next save removes it.
            if let Err(e) = fs::remove_dir_all(new) {
                eprintln!(
                    "checkpoints: could not remove the replaced {} ({e}); removed at the next \
                     save",
                    new.display()
                );
            }
            return Ok(());
        }
    }
    fs::remove_dir_all(dest).map_err(|e| TrainError::io("remove", dest, e))?;
    fs::rename(new, dest).map_err(|e| TrainError::io("rename", new, e))
}

/// Makes a model directory written outside a checkpoint (the GRPO phase's
/// KL reference) as checkable and durable as one: its files' CRC-32s in
/// `checksums.json` ([`verify_checksums`] checks them when it is read
/// again), every file fsynced. The caller renames it into place, then
/// fsyncs the parent ([`sync_parent`]).
pub fn seal(dir: &Path) -> Result<(), TrainError> {
    write_json(&dir.join(CHECKSUMS_FILE), &checksums(dir)?)?;
    sync_files(dir)
}

/// Creates `dir` and the folders above it that are missing; returns the
/// folders it made, `dir` first.
pub(crate) fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let made = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    fs::create_dir_all(dir).map_err(|e| TrainError::io("create", dir, e))?;
    Ok(made)
}

/// Makes a rename into `path`'s directory durable (fsync of the
/// directory; Unix only).
pub fn sync_parent(path: &Path) -> Result<(), TrainError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// The CRC-32 of each file in `dir` (the checksum file itself and the state
/// file, written after it, aside), by name.
fn checksums(dir: &Path) -> Result<std::collections::BTreeMap<String, String>, TrainError> {
    let mut out = std::collections::BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(|e| TrainError::io("list", dir, e))? {
        let path = entry.map_err(|e| TrainError::io("list", dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !path.is_file() || name == CHECKSUMS_FILE || name == STATE_FILE {
            continue;
        }
        out.insert(name.to_string(), crc_of(&path)?);
    }
    Ok(out)
}

fn crc_of(path: &Path) -> Result<String, TrainError> {
    use std::io::Read;
    let mut f = fs::File::open(path).map_err(|e| TrainError::io("open", path, e))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| TrainError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:08x}", h.finalize()))
}

fn crc_hex(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

/// Checks a checkpoint's files against its recorded checksums; the error
/// names the file. One without `checksums.json` (written before
/// checksums were recorded, or the file removed since) passes with a
/// warning naming it: its files go unchecked.
pub fn verify_checksums(dir: &Path) -> Result<(), String> {
    let path = dir.join(CHECKSUMS_FILE);
    if !path.is_file() {
        // Said once per directory (a resume reads a checkpoint twice).
        static SAID: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
        let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
        if !said.iter().any(|d| d == dir) {
            said.push(dir.to_path_buf());
            eprintln!(
                "warning: {} has no {CHECKSUMS_FILE} (written before toolgym recorded checksums, \
                 or the file was removed): its files are not checked for changed bytes",
                dir.display()
            );
        }
        return Ok(());
    }
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let recorded: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (name, want) in &recorded {
        // A checkpoint's own files only: a name with a separator (`../x`,
        // an absolute path) is no file of it.
        let plain = Path::new(name)
            .file_name()
            .is_some_and(|f| f == name.as_str());
        if !plain || name == ".." {
            return Err(format!(
                "{}: names {name:?}, which is no file of the checkpoint",
                path.display()
            ));
        }
        let file = dir.join(name);
        let got = crc_of(&file).map_err(|e| e.to_string())?;
        if &got != want {
            return Err(format!(
                "{}: its bytes changed after the checkpoint was written (CRC-32 {got}, recorded \
                 {want})",
                file.display()
            ));
        }
    }
    Ok(())
}

/// The newest complete checkpoint of a run, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    match latest_named(run_dir)? {
        Some(dir) if !dir.join(STATE_FILE).is_file() => Err(TrainError::Checkpoint(format!(
            "{} names {}, which is not a complete checkpoint",
            checkpoints_dir(run_dir).join(LATEST).display(),
            dir.display()
        ))),
        named => Ok(named),
    }
}

/// Whether the run has a checkpoint: a `latest` pointer or a step
/// directory (one was completed, even if it cannot be read now).
pub fn exists(run_dir: &Path) -> bool {
    checkpoints_dir(run_dir).join(LATEST).is_file()
        || all(run_dir).is_ok_and(|dirs| !dirs.is_empty())
}

/// The checkpoint directory `latest` names (whether or not it is
/// complete), if `latest` exists.
pub fn latest_named(run_dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    let path = checkpoints_dir(run_dir).join(LATEST);
    match fs::read_to_string(&path) {
        // Only a step directory's own name (`step-00000042`): anything
        // else (empty, garbage, `../other`, an absolute path) names no
        // checkpoint of this run, and is taken as no `latest` at all (the
        // newest step directory is then resumed from, checked as it loads)
        // rather than a path to load from elsewhere.
        Ok(name) => Ok(step_of(Path::new(name.trim()))
            .filter(|&step| step_dir_name(step) == name.trim())
            .map(|_| checkpoints_dir(run_dir).join(name.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TrainError::io("read", &path, e)),
    }
}

/// The checkpoint directories of a run (named by [`step_dir_name`]),
/// newest step first. A directory of another name (a copy named
/// `step-best`) is none: it sorted after every step by name, and was
/// taken for the newest.
pub fn all(run_dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let root = checkpoints_dir(run_dir);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut steps = step_dirs(&root)?;
    steps.reverse();
    Ok(steps.into_iter().map(|(_, dir)| dir).collect())
}

/// Reads the trainer state of a checkpoint.
pub fn load_state<S: DeserializeOwned>(dir: &Path) -> Result<S, TrainError> {
    let path = dir.join(STATE_FILE);
    let text = fs::read_to_string(&path).map_err(|e| TrainError::io("read", &path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}

/// Reads the optimiser tensors of a checkpoint.
pub fn load_optimizer(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>, TrainError> {
    let path = dir.join(OPTIMIZER_FILE);
    candle_core::safetensors::load(&path, device)
        .map_err(|e| TrainError::Candle(format!("reading {}: {e}", path.display())))
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<S: Serialize>(path: &Path, value: &S) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))?;
    write_atomically(path, text.as_bytes())
}

/// Writes a file by writing a sibling temporary, fsyncing and renaming it.
/// A temporary that could not be written whole (a full disk) is removed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp-write");
    let written = File::create(&tmp)
        .map_err(|e| TrainError::io("create", &tmp, e))
        .and_then(|mut f| {
            f.write_all(bytes)
                .map_err(|e| TrainError::io("write", &tmp, e))?;
            f.sync_all().map_err(|e| TrainError::io("sync", &tmp, e))
        })
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| TrainError::io("rename", &tmp, e)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_parent(path)
}

/// Makes a directory's entries (renames into it) durable: fsync of the
/// directory itself. Unix only; elsewhere renames are left to the OS.
fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| TrainError::io("sync", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Fsyncs every file in `dir`, and `dir` itself (its entries; the
/// entry naming `dir` is its parent's: see [`sync_parent`] after renaming
/// it into place).
pub fn sync_files(dir: &Path) -> Result<(), TrainError> {
    for entry in fs::read_dir(dir).map_err(|e| TrainError::io("list", dir, e))? {
        let path = entry.map_err(|e| TrainError::io("list", dir, e))?.path();
        if path.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| TrainError::io("sync", &path, e))?;
        }
    }
    // The directory's own entries too: the files' names survive a power
    // cut once it is renamed into place.
    sync_dir(dir)
}

/// Removes a run's checkpoints (for a run that starts over): its step
/// directories, `latest` and leftover temporaries. Directories of other
/// names (a copy named `step-best`) stay, as rotation leaves them.
pub fn remove_all(run_dir: &Path) -> Result<(), TrainError> {
    let root = checkpoints_dir(run_dir);
    if !root.is_dir() {
        return Ok(());
    }
    remove_temporaries(&root)?;
    // Each step directory, oldest first, is renamed to a temporary before
    // its files go: a removal cut short (a kill, a full disk) leaves whole
    // checkpoints and temporaries, never a step directory with some of its
    // files, which a later resume would take for a checkpoint. `latest`
    // goes last, as before.
    for (step, dir) in step_dirs(&root)? {
        // A name no leftover holds (one that would not go, busy files on
        // NFS, stays until a later save removes it).
        let going = (0..)
            .map(|n| root.join(format!(".tmp-removing-{}-{n}", step_dir_name(step))))
            .find(|p| !p.exists())
            .expect("an unbounded range");
        fs::rename(&dir, &going).map_err(|e| TrainError::io("rename", &dir, e))?;
        fs::remove_dir_all(&going).map_err(|e| TrainError::io("remove", &going, e))?;
    }
    let latest = root.join(LATEST);
    if latest.exists() {
        fs::remove_file(&latest).map_err(|e| TrainError::io("remove", &latest, e))?;
    }
    Ok(())
}

fn remove_temporaries(root: &Path) -> Result<(), TrainError> {
    for entry in fs::read_dir(root).map_err(|e| TrainError::io("list", root, e))? {
        let path = entry.map_err(|e| TrainError::io("list", root, e))?.path();
        let is_tmp = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(".tmp-"));
        if is_tmp && path.is_dir() {
            // One that will not go (busy files on NFS) is said, not a
            // reason to stop: `save` refuses only a temporary it needs.
            if let Err(e) = fs::remove_dir_all(&path) {
                eprintln!(
                    "checkpoints: could not remove the leftover {} ({e}); tried again at the \
                     next save",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// The step directories under `root` (named by [`step_dir_name`]) with
/// their steps, oldest first.
fn step_dirs(root: &Path) -> Result<Vec<(usize, PathBuf)>, TrainError> {
    let mut steps: Vec<(usize, PathBuf)> = fs::read_dir(root)
        .map_err(|e| TrainError::io("list", root, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter_map(|p| {
            let step = step_of(&p)?;
            let own = p.file_name().is_some_and(|n| *n == *step_dir_name(step));
            own.then_some((step, p))
        })
        .collect();
    steps.sort();
    Ok(steps)
}

/// Rotation after the checkpoint of `step` was written and named
/// `latest`: it stays, with the newest `keep - 1` checkpoints before it;
/// older ones go. Directories of later steps (left by a run that resumed
/// from an older checkpoint, written over as this one reaches them) and
/// of other names are not touched. Rotating by sorted names removed the
/// checkpoint just written and named whenever a later or oddly named
/// directory sat beside it, leaving `latest` naming nothing.
fn prune(root: &Path, step: usize, keep: usize) -> Result<(), TrainError> {
    let before: Vec<PathBuf> = step_dirs(root)?
        .into_iter()
        .filter(|&(s, _)| s < step)
        .map(|(_, dir)| dir)
        .collect();
    let excess = before.len().saturating_sub(keep.saturating_sub(1));
    for old in &before[..excess] {
        fs::remove_dir_all(old).map_err(|e| TrainError::io("remove", old, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the checkpoint of `step` in `run` with nothing but its state.
    fn save_step(run: &Path, step: usize, keep: usize) {
        let write = |dir: &Path| {
            fs::create_dir_all(dir).map_err(|e| TrainError::io("create", dir, e))?;
            fs::write(dir.join("model.safetensors"), b"x")
                .map_err(|e| TrainError::io("write", dir, e))
        };
        save(
            run,
            step,
            write,
            &HashMap::new(),
            &serde_json::json!({"step": step}),
            keep,
        )
        .unwrap();
    }

    fn names(run: &Path) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(checkpoints_dir(run))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != LATEST)
            .collect();
        out.sort();
        out
    }

    /// A start-over removes every step directory, `latest` and leftovers
    /// (one of a removal cut short among them), and leaves other
    /// directories.
    #[test]
    fn removing_all_removes_leftovers_and_leaves_other_names() {
        let run = std::env::temp_dir().join(format!("toolgym-remove-all-{}", std::process::id()));
        let _ = fs::remove_dir_all(&run);
        for step in 1..=3 {
            save_step(&run, step, 0);
        }
        let root = checkpoints_dir(&run);
        fs::create_dir(root.join("step-best")).unwrap();
        fs::create_dir(root.join(".tmp-removing-step-00000009")).unwrap();
        fs::write(
            root.join(".tmp-removing-step-00000009/model.safetensors"),
            b"x",
        )
        .unwrap();
        remove_all(&run).unwrap();
        assert_eq!(names(&run), ["step-best"]);
        assert!(!root.join(LATEST).exists());
        assert_eq!(latest(&run).unwrap(), None);
        fs::remove_dir_all(&run).unwrap();
    }

    /// A write that fails leaves the file as it was and no temporary
    /// beside it (here the rename fails: the path is a directory with a
    /// file in it).
    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("toolgym-failed-write-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("state.json");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"kept").unwrap();
        let err = write_atomically(&target, b"{}").unwrap_err().to_string();
        assert!(err.contains("rename"), "{err}");
        let mut left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, ["state.json"]);
        assert_eq!(fs::read(target.join("inside")).unwrap(), b"kept");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A checkpoint saved again at its step (after a run's last step, or
    /// right after resuming) replaces the one there, which `latest` may
    /// name: swapped in one rename on Linux (never a moment with no
    /// directory under the name), and no temporary is left.
    #[test]
    fn saving_a_step_again_replaces_its_checkpoint() {
        let dir = std::env::temp_dir().join(format!("toolgym-save-again-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let run = dir.as_path();
        save_step(run, 1, 1);
        let state = |v: u32| serde_json::json!({"step": 1, "v": v});
        let write = |d: &Path| {
            fs::create_dir_all(d).map_err(|e| TrainError::io("create", d, e))?;
            fs::write(d.join("model.safetensors"), b"y").map_err(|e| TrainError::io("write", d, e))
        };
        save(run, 1, write, &HashMap::new(), &state(2), 1).unwrap();
        assert_eq!(names(run), ["step-00000001"]);
        let step = latest(run).unwrap().unwrap();
        assert_eq!(load_state::<serde_json::Value>(&step).unwrap(), state(2));
        assert_eq!(fs::read(step.join("model.safetensors")).unwrap(), b"y");
        verify_checksums(&step).unwrap();
        // replace_dir itself (the exchange on Linux, else remove and
        // rename; the end state is the same): the new directory under the
        // name, the old one gone.
        let (a, b) = (dir.join("a"), dir.join("b"));
        for (d, f) in [(&a, "from-a"), (&b, "from-b")] {
            fs::create_dir(d).unwrap();
            fs::write(d.join(f), b"").unwrap();
        }
        replace_dir(&a, &b).unwrap();
        assert!(!a.exists() && b.join("from-a").is_file() && !b.join("from-b").exists());
        fs::remove_dir_all(&dir).ok();
    }

    /// Rotation keeps the checkpoint just written and named, with the
    /// newest `keep - 1` before it; later steps (a run resumed from an
    /// older checkpoint) and other names are left. By sorted names it
    /// removed the one just written beside either, leaving `latest`
    /// naming nothing.
    #[test]
    fn rotation_never_removes_the_checkpoint_just_written() {
        let dir = std::env::temp_dir().join(format!("toolgym-rotation-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let run = dir.as_path();
        for step in [1, 2, 4] {
            save_step(run, step, 0);
        }
        fs::create_dir(checkpoints_dir(run).join("step-best")).unwrap();
        save_step(run, 3, 1);
        assert_eq!(names(run), ["step-00000003", "step-00000004", "step-best"]);
        assert_eq!(
            latest(run).unwrap(),
            Some(checkpoints_dir(run).join("step-00000003"))
        );
        save_step(run, 4, 2);
        assert_eq!(names(run), ["step-00000003", "step-00000004", "step-best"]);
        save_step(run, 5, 2);
        assert_eq!(names(run), ["step-00000004", "step-00000005", "step-best"]);
        // `all` lists step directories only, by step, newest first.
        let all = all(run).unwrap();
        let steps: Vec<_> = all.iter().map(|d| step_of(d).unwrap()).collect();
        assert_eq!(steps, [5, 4]);
        fs::remove_dir_all(&dir).ok();
    }
}
