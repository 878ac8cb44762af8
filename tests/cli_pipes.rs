//! Shell conventions of the CLI: a closed pipe ends `toolgym score`
//! quietly (`toolgym score … | head`), `-` reads standard input,
//! `--output /dev/stdout` writes through the shell's stdout (a log it
//! appends to is not replaced).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn line(i: usize) -> String {
    format!(
        "{{\"id\": {i}, \"completion\": \"<think>x</think><tool_call>[{{\\\"name\\\": \\\"f\\\", \\\"arguments\\\": {{}}}}]</tool_call>\", \"ground_truth\": [{{\"name\": \"f\", \"arguments\": {{}}}}]}}\n"
    )
}

#[test]
fn score_ends_quietly_when_its_reader_goes_away() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_toolgym"))
        .args(["score", "--rule", "binary", "--threads", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..200_000 {
            if stdin.write_all(line(i).as_bytes()).is_err() {
                break;
            }
        }
    });
    // Read one verdict, then close the pipe, as `head -1` does.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("reward"), "{first}");
    drop(out);
    let status = child.wait().unwrap();
    feeder.join().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
    assert!(!status.success() || err.is_empty(), "{status:?} {err}");
}

/// Runs `script` with `sh -c`, `$0` the toolgym binary and `$1`… `args`.
fn sh(script: &str, args: &[&std::path::Path]) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_toolgym"))
        .args(args)
        .output()
        .unwrap()
}

/// `--output /dev/stdout` with stdout sent to a file the shell appends to
/// (`>> log`, a batch system's log): the verdicts follow what the log held;
/// the file is not replaced (which unlinked the shell's log, rc 0).
#[test]
#[cfg(target_os = "linux")]
fn score_to_dev_stdout_appends_to_the_shells_file() {
    let dir = std::env::temp_dir().join(format!("toolgym-cli-devstdout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, log) = (dir.join("in.jsonl"), dir.join("log.txt"));
    std::fs::write(&input, line(1) + &line(2)).unwrap();
    std::fs::write(&log, "precious\n").unwrap();
    for output in ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
        let append = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_toolgym"))
            .args(["score", "--rule", "binary", "--output", output, "--input"])
            .arg(&input)
            .stdout(append)
            .output()
            .unwrap();
        assert!(out.status.success(), "{output}: {out:?}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("precious\n"), "{text}");
    // Another descriptor, opened by the shell with `>` (no append), and
    // written by the shell after the command: written through the same
    // descriptor, so the shell's line follows the verdicts.
    let fd3_file = dir.join("fd3.txt");
    let out = sh(
        "{ \"$0\" score --rule binary --input \"$1\" --output /dev/fd/3; echo AFTER >&3; } 3>\"$2\"",
        &[&input, &fd3_file],
    );
    assert!(out.status.success(), "{out:?}");
    let fd3 = std::fs::read_to_string(&fd3_file).unwrap();
    assert!(
        fd3.ends_with("}\nAFTER\n") && fd3.lines().count() == 3,
        "{fd3}"
    );
    // stdin's own file as the output (`< f --output /dev/fd/0`): refused,
    // where verdicts fed back into the input would never end.
    let out = sh(
        "\"$0\" score --rule binary --input - --output /dev/fd/0 < \"$1\"",
        &[&input],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is the input"),
        "{err}"
    );
    // A descriptor open for reading only, refused before any work (it
    // failed at the first write, after the scoring).
    let out = sh(
        "\"$0\" score --rule binary --input \"$1\" --output /dev/fd/0 < /dev/null",
        &[&input],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("for reading only"),
        "{err}"
    );
    // A read-only stdout took every verdict as written (Rust's stdout
    // counts a failed write as done): refused, for `-` and its paths.
    for output in ["-", "/dev/stdout"] {
        let out = sh(
            &format!("\"$0\" score --rule binary --input \"$1\" --output {output} 1< /dev/null"),
            &[&input],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("reading only"),
            "{output}: {err}"
        );
    }
    assert_eq!(text.matches("\"reward\"").count(), 6, "{text}");
    assert!(!std::fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("partial")));
    std::fs::remove_dir_all(&dir).ok();
}

/// The child half of `a_training_log_outlives_its_reader`: relays its
/// output, writes lines for `TOOLGYM_RELAY_SECONDS`, then "done N", and
/// records N in `TOOLGYM_RELAY_MARKER` once the relay is put away (a
/// process whose writes failed would have panicked before). It starts as
/// `toolgym` does, with the default SIGPIPE action (a test binary ignores
/// the signal): the relay must ignore it itself, and put it back after.
#[cfg(unix)]
#[test]
fn relay_child() {
    let Some(marker) = std::env::var_os("TOOLGYM_RELAY_MARKER") else {
        return;
    };
    // SAFETY: sets a signal's action, before any relay or thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let seconds: f64 = std::env::var("TOOLGYM_RELAY_SECONDS")
        .unwrap()
        .parse()
        .unwrap();
    let guard = toolgym::output::relay_piped_output().unwrap();
    // `2>&1` into one pipe: one relay, lines in the order written.
    assert_eq!(guard.relays(), 1);
    // On a line of its own: libtest's "test relay_child ... " has none.
    println!("\nstart");
    let start = std::time::Instant::now();
    let mut n = 0;
    // A burst of lines at once, when asked for.
    let burst: usize = std::env::var("TOOLGYM_RELAY_BURST").map_or(0, |b| b.parse().unwrap());
    for _ in 0..burst {
        eprintln!("line {n}");
        println!("out {n}");
        n += 1;
    }
    while start.elapsed().as_secs_f64() < seconds {
        eprintln!("line {n}");
        println!("out {n}");
        n += 1;
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    println!("done {n}");
    drop(guard);
    // The action found is back (reading it sets it: set it back again).
    // SAFETY: as above; the relay's thread has ended.
    let after = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let marked = match after == libc::SIG_DFL {
        true => n.to_string(),
        false => "the SIGPIPE action was not put back".to_string(),
    };
    std::fs::write(marker, marked).unwrap();
    // libtest's own report would go to the closed pipe.
    std::process::exit(0);
}

/// Runs `relay_child` with stdout and stderr into one pipe; `read` gets
/// the pipe's reader. Returns the child's status and its marker.
#[cfg(unix)]
fn relayed_child(
    seconds: f64,
    burst: usize,
    read: impl FnOnce(BufReader<std::io::PipeReader>),
) -> (std::process::ExitStatus, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["relay_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("TOOLGYM_RELAY_MARKER", &marker)
        .env("TOOLGYM_RELAY_SECONDS", seconds.to_string())
        .env("TOOLGYM_RELAY_BURST", burst.to_string())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    read(BufReader::new(reader));
    let status = child.wait().unwrap();
    (status, std::fs::read_to_string(&marker).ok())
}

/// `toolgym train … 2>&1 | tee log` with tee gone: the run's later log
/// lines are dropped and it goes on to its end (it used to die at the
/// next line, with SIGPIPE or a panic in `eprintln!`). While the reader
/// stays, every line reaches it, in order, the last ones included.
#[cfg(unix)]
#[test]
fn a_training_log_outlives_its_reader() {
    let (status, marker) = relayed_child(1.0, 0, |mut out| {
        let mut line = String::new();
        while !line.starts_with("line ") {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "no line came");
        }
        // The reader goes away, as a killed tee does.
    });
    assert!(status.success(), "{status:?}");
    let marker = marker.expect("the child ran to its end");
    let written: usize = marker.parse().expect(&marker);
    assert!(written > 10, "{written}");

    // A reader that stays, and one that is slow: about 126 KB written at
    // once (past the log's 64 KB pipe, within it and the relay's own pipe
    // and buffer, so the run reaches its end with the relay still
    // writing) and not read for 3 s, longer than the relay waits for a
    // pipe's end: every line still arrives.
    for (burst, wait) in [(0, 0), (6_000, 3)] {
        let mut lines = Vec::new();
        let (status, marker) = relayed_child(0.2, burst, |out| {
            std::thread::sleep(std::time::Duration::from_secs(wait));
            lines = out.lines().map(Result::unwrap).collect();
        });
        check_every_line(status, marker, &lines);
    }
}

/// Every line `relay_child` wrote, in order, after its "start".
#[cfg(unix)]
fn check_every_line(status: std::process::ExitStatus, marker: Option<String>, lines: &[String]) {
    assert!(status.success(), "{status:?}");
    let marker = marker.expect("the child ran to its end");
    let n: usize = marker.parse().expect(&marker);
    let start = lines.iter().position(|l| l == "start").expect("start");
    let ours = &lines[start + 1..];
    let mut want: Vec<String> = (0..n)
        .flat_map(|i| [format!("line {i}"), format!("out {i}")])
        .collect();
    want.push(format!("done {n}"));
    let first_difference = ours.iter().zip(&want).position(|(a, b)| a != b);
    assert_eq!(
        (ours.len(), first_difference),
        (want.len(), None),
        "{:?}",
        first_difference.map(|i| (&ours[i], &want[i]))
    );
}
