//! Opening inputs and outputs named on the command line (`-` = stdio), and
//! writing to stdout without panicking when it cannot be written.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::Path;
use toolgym_env::output::{open_descriptor, resolved, same_path, AtomicFile};
use toolgym_reward::jsonl::UTF8_BOM;

/// A buffered reader over a file, or stdin for `-` (`flag` names the
/// option that gives a file instead, for the note said when stdin is a
/// terminal). A UTF-8 byte-order mark at the start is skipped (it is not
/// JSON, and says nothing more than "UTF-8").
pub fn open_input(path: &Path, flag: &str) -> io::Result<Box<dyn BufRead>> {
    let mut reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        let stdin = io::stdin();
        if stdin.is_terminal() {
            // `toolgym score` with no --input would otherwise wait silently.
            eprintln!(
                "reading JSON Lines from standard input (the terminal; Ctrl-D ends it); \
                 {flag} FILE reads a file"
            );
        }
        Box::new(BufReader::new(stdin.lock()))
    } else {
        let cannot =
            |e: io::Error| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display()));
        let f = File::open(path).map_err(cannot)?;
        if f.metadata().map_err(cannot)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot read {}: it is a directory", path.display()),
            ));
        }
        Box::new(BufReader::with_capacity(64 << 10, f))
    };
    let start = reader
        .fill_buf()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    if start.starts_with(UTF8_BOM) {
        reader.consume(UTF8_BOM.len());
    }
    Ok(reader)
}

/// Where a command writes: stdout for `-`, otherwise a file that gets its
/// name only when [`Output::finish`] is called ([`AtomicFile`]): a command
/// that fails or is killed half-way leaves no half-written file, and an
/// earlier file of that name is kept.
pub enum Output {
    /// Standard output.
    Stdout(BufWriter<io::StdoutLock<'static>>),
    /// A file.
    File(AtomicFile),
}

impl Output {
    /// Flushes, and gives a file its name.
    pub fn finish(self) -> io::Result<()> {
        match self {
            Output::Stdout(mut w) => w.flush().map_err(on_stdout),
            Output::File(f) => f.finish(),
        }
    }
}

/// A failed write to stdout, said as such (the OS error alone, "No space
/// left on device", does not say where).
fn on_stdout(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot write to standard output: {e}"))
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf).map_err(on_stdout),
            Output::File(f) => f.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.write_all(buf).map_err(on_stdout),
            Output::File(f) => f.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush().map_err(on_stdout),
            Output::File(f) => f.flush(),
        }
    }
}

/// An output whose every line is worth keeping even when the command
/// stops half-way (completions saved as they are generated): stdout for
/// `-`, otherwise an [`AtomicFile`] whose temporary, `NAME.unfinished-PID`,
/// is kept when the command fails (said on stderr, with where) or is
/// killed, so an earlier file of the name is not cut to nothing by a run
/// that then fails, and what was made is not lost; later runs say such
/// files are there and leave them. Devices, pipes and descriptor paths are
/// written through, links followed, as [`AtomicFile`] does.
pub struct InPlace {
    out: Option<Output>,
    /// Whether anything was written (a run that fails before its first
    /// line keeps no empty file).
    written: bool,
}

impl InPlace {
    /// Opens `path` as described on [`InPlace`]; a path that cannot be
    /// written (a directory) is an error now, not after the work.
    pub fn create(path: &Path) -> io::Result<Self> {
        let out = if is_stdout(path) {
            open_output(path)?
        } else {
            for earlier in AtomicFile::unfinished_beside(path) {
                eprintln!(
                    "note: {} is what an earlier run that did not finish had written; it is kept \
                     (remove it when done with it)",
                    earlier.display()
                );
            }
            Output::File(AtomicFile::create_keeping_unfinished(path)?)
        };
        Ok(InPlace {
            out: Some(out),
            written: false,
        })
    }

    /// Writes out what is buffered and gives a file its name.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.take().map_or(Ok(()), Output::finish)
    }

    fn out(&mut self) -> &mut Output {
        self.out
            .as_mut()
            .expect("an InPlace is not written after finish")
    }
}

impl Drop for InPlace {
    fn drop(&mut self) {
        if let Some(Output::File(f)) = self.out.take() {
            if let Some(tmp) = f.temporary().map(Path::to_path_buf) {
                drop(f);
                if self.written {
                    eprintln!("note: what was written so far is kept in {}", tmp.display());
                } else {
                    let _ = std::fs::remove_file(tmp);
                }
            }
        }
    }
}

impl Write for InPlace {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written |= !buf.is_empty();
        self.out().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.written |= !buf.is_empty();
        self.out().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out().flush()
    }
}

/// Opens an output named on the command line ([`Output`]). `/dev/stdout`
/// (and `/dev/fd/1`…) is stdout itself, written through its descriptor
/// as `-` is: with stdout sent to a file, what the shell writes before and
/// after this command (`{ echo a; toolgym …; echo b; } > log`) keeps its
/// place. Another descriptor's path (`/dev/stderr`, `/dev/fd/3`) is written
/// through that descriptor ([`AtomicFile`]).
pub fn open_output(path: &Path) -> io::Result<Output> {
    if is_stdout(path) {
        stdout_writable()?;
        Ok(Output::Stdout(BufWriter::new(io::stdout().lock())))
    } else {
        AtomicFile::create(path).map(Output::File)
    }
}

/// Refuses a stdout open for reading only (`1< f`): Rust's stdout takes
/// its failed writes as done, and the output would be lost with success.
fn stdout_writable() -> io::Result<()> {
    toolgym_env::output::writable_descriptor(1)
        .map(drop)
        .map_err(|e| io::Error::new(e.kind(), format!("standard output: {e}")))
}

/// `-`, or a path naming this process's standard output
/// ([`open_descriptor`]).
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-" || open_descriptor(path) == Some(1)
}

/// Refuses an `output` that is the same file as one of `inputs` (also
/// through a link): creating it would erase the input before it is read,
/// and writing through its descriptor (`/dev/fd/0`) would feed the output
/// back in. An input `-` is stdin's file where that is a regular file
/// (`< f`); an output `-` and files that do not exist yet are never the
/// same.
pub fn check_not_an_input(output: &Path, inputs: &[&Path]) -> io::Result<()> {
    if output.as_os_str() == "-" {
        return Ok(());
    }
    let same = |input: &Path| {
        if input.as_os_str() == "-" {
            let stdin = Path::new("/dev/stdin");
            std::fs::metadata(stdin).is_ok_and(|m| m.is_file()) && same_path(output, stdin)
        } else {
            same_path(output, input)
        }
    };
    match inputs.iter().find(|input| same(input)) {
        Some(input) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the output {} is the input {}: writing it would erase what is to be read; \
                 choose another output",
                output.display(),
                input.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses outputs that would overwrite each other or the benchmark's own
/// data (`data_dir`): each `(flag, path)` must name its own file, outside
/// `data_dir`. `-` (stdout) may be named once.
pub fn check_outputs(outputs: &[(&str, &Path)], data_dir: &Path) -> io::Result<()> {
    let refuse = |m: String| Err(io::Error::new(io::ErrorKind::InvalidInput, m));
    let data = std::fs::canonicalize(data_dir).ok();
    for (i, (flag, path)) in outputs.iter().enumerate() {
        if is_stdout(path) {
            if let Some((other, _)) = outputs[..i].iter().find(|(_, p)| is_stdout(p)) {
                return refuse(format!(
                    "{other} and {flag} both write to stdout (-): give one of them a file"
                ));
            }
            continue;
        }
        if let Some((other, _)) = outputs[..i].iter().find(|(_, p)| same_path(p, path)) {
            return refuse(format!(
                "{other} and {flag} are the same file ({}): give each its own",
                path.display()
            ));
        }
        if let (Some(data), Some(full)) = (&data, resolved(path)) {
            if full.starts_with(data) {
                return refuse(format!(
                    "{flag} {} is inside the benchmark's data directory {}: writing there \
                     could replace its data; choose another place",
                    path.display(),
                    data.display()
                ));
            }
            if let Some(link) = linked_from(data, &full) {
                return refuse(format!(
                    "{flag} {} is a file of the benchmark's data (its {} links to it): \
                     writing there would replace its data; choose another place",
                    path.display(),
                    link.display()
                ));
            }
        }
    }
    Ok(())
}

/// The entry under `data` (a link, or under a linked directory, as a
/// Hugging Face cache's snapshots are made) that resolves to `target`
/// outside it, if any; a few levels deep.
fn linked_from(data: &Path, target: &Path) -> Option<std::path::PathBuf> {
    fn walk(dir: &Path, target: &Path, depth: usize) -> Option<std::path::PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            let Ok(real) = std::fs::canonicalize(&path) else {
                continue; // a dangling link
            };
            // The file itself, or an existing file under a directory the
            // data links to (a new file there is no data).
            if real == target || (real.is_dir() && target.starts_with(&real) && target.is_file()) {
                return Some(path);
            }
            let followed = entry.file_type().is_ok_and(|t| t.is_symlink());
            if depth > 0 && real.is_dir() && !followed {
                if let Some(found) = walk(&path, target, depth - 1) {
                    return Some(found);
                }
            }
        }
        None
    }
    walk(data, target, 3)
}

/// Writes `text` to stdout: an error (not a panic, as `print!` has) when
/// stdout cannot be written.
pub fn print_stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write to stdout: {e}")))
}
