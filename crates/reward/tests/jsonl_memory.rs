//! `score_jsonl` streams: scoring far more input than it may hold keeps the
//! heap bounded by one chunk, and a line over `max_line_bytes` is skipped,
//! not held. A counting global allocator measures the peak
//! of live heap bytes while 256 MB of records flow from a generating reader
//! to a discarding writer.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, BufReader, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use toolgym_reward::{jsonl, rule_by_name};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters are global: one measuring test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Yields `total` bytes of JSONL records, one line at a time, never holding
/// more than one line.
struct Records {
    line: Vec<u8>,
    pos: usize,
    left: usize,
}

impl Read for Records {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        if self.pos == self.line.len() {
            self.pos = 0;
        }
        let n = buf.len().min(self.line.len() - self.pos).min(self.left);
        buf[..n].copy_from_slice(&self.line[self.pos..self.pos + n]);
        self.pos += n;
        self.left -= n;
        Ok(n)
    }
}

/// Counts and discards the output.
struct Sink(usize);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_256_mb_input_streams_in_bounded_memory() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let think = "x".repeat(900);
    let line = format!(
        "{{\"id\": 1, \"completion\": \"<think>{think}</think><tool_call>[{{\\\"name\\\": \\\"f\\\", \\\"arguments\\\": {{\\\"a\\\": 1}}}}]</tool_call>\", \"ground_truth\": [{{\"name\": \"f\", \"arguments\": {{\"a\": 1}}}}]}}\n"
    );
    let total = 256 << 20;
    let lines = total / line.len();
    let input = BufReader::with_capacity(
        1 << 16,
        Records {
            pos: 0,
            left: lines * line.len(),
            line: line.into_bytes(),
        },
    );
    let rule = rule_by_name("binary").unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut sink = Sink(0);
    let options = jsonl::JsonlOptions {
        chunk_lines: 4096,
        parallel: false,
        ..Default::default()
    };
    let report = jsonl::score_jsonl(&*rule, input, &mut sink, options).unwrap();
    assert_eq!(report.summary.count, lines);
    assert_eq!(report.summary.accuracy, 1.0);
    assert!(sink.0 > lines * 30);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    // Two chunks of 4096 ~1 KB lines (one scored, one read) and one
    // chunk's output: a few MB, whatever the input size (256 MB here).
    assert!(
        peak < 16 << 20,
        "peak heap {peak} bytes while streaming {total} bytes"
    );
}

#[test]
fn a_line_over_the_limit_is_an_input_error_not_held_in_memory() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // 300 MB without a newline, then a normal record.
    let long = Records {
        line: vec![b'x'; 1 << 20],
        pos: 0,
        left: 300 << 20,
    };
    let tail = io::Cursor::new(
        b"\n{\"id\": 2, \"completion\": \"<think>t</think><tool_call>[]</tool_call>\", \"ground_truth\": []}\n"
            .to_vec(),
    );
    let input = BufReader::with_capacity(1 << 16, long.chain(tail));
    let rule = rule_by_name("binary").unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut out = Vec::new();
    let options = jsonl::JsonlOptions {
        parallel: false,
        max_line_bytes: 1 << 20,
        ..Default::default()
    };
    let report = jsonl::score_jsonl(&*rule, input, &mut out, options).unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert!(peak < 8 << 20, "peak heap {peak} bytes");
    assert_eq!((report.summary.count, report.input_errors), (2, 1));
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("the line is 314572801 bytes, over the limit of 1048576"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("\"reason\":\"ok\""), "{}", lines[1]);
}
