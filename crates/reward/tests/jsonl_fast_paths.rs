//! The fast JSONL readers against the general one, in one build: on a
//! seeded hostile corpus, `score_jsonl` (plain records, ground truths read
//! into keys, replies scored from their string literals) writes the same
//! bytes and the same summary as `score_jsonl_with` and `call_truth` (every
//! line parsed into a `serde_json` tree, then scored by the rule), for
//! every call-list rule, on one thread and on a pool.
//!
//! The corpus is what `scripts/bench/score_diff.py` generates to compare
//! two builds: argument strings with quotes, backslashes, surrogate pairs,
//! raw and escaped newlines, `/` and tags; floats of every length, spelt
//! otherwise in some replies; repeated keys; payloads cut off or with a
//! byte inserted; whitespace (a no-break space too) around payloads;
//! ground truths and records written with and without `ensure_ascii`,
//! with Python's separators and compact ones; a few broken records.

use toolgym_reward::jsonl::{call_truth, score_jsonl, score_jsonl_with, JsonlOptions, RunReport};
use toolgym_reward::{rule_by_name, RewardRule};

/// A JSON value whose text this test writes itself (key order, repeated
/// keys, float spellings and escapes as chosen).
#[derive(Clone, Debug)]
enum V {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<V>),
    Obj(Vec<(String, V)>),
}

/// How a value is written: Python's `json.dumps` separators (`, `, `: `)
/// or compact ones, non-ASCII as `\u` escapes or as it stands, and
/// (`html`, as HTML-safe writers do) `<`, `>` and `&` as `\u` escapes,
/// and `/` as `\/` (`slash`): escapes that can spell a tag.
#[derive(Clone, Copy)]
struct Style {
    python: bool,
    ascii: bool,
    html: bool,
    slash: bool,
}

fn write_str(s: &str, style: Style, out: &mut String) {
    let ascii = style.ascii;
    out.push('"');
    for c in s.chars() {
        match c {
            '<' | '>' | '&' if style.html => out.push_str(&format!("\\u{:04x}", c as u32)),
            '/' if style.slash => out.push_str("\\/"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (ascii && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write(v: &V, style: Style, out: &mut String) {
    let (comma, colon) = if style.python {
        (", ", ": ")
    } else {
        (",", ":")
    };
    match v {
        V::Null => out.push_str("null"),
        V::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        V::Int(i) => out.push_str(&i.to_string()),
        // Shortest round trip; `Debug` writes exponents for the very
        // large and small (`1e-7`, `1e22`), as Python's repr does.
        V::Float(f) => out.push_str(&format!("{f:?}")),
        V::Str(s) => write_str(s, style, out),
        V::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                write(item, style, out);
            }
            out.push(']');
        }
        V::Obj(members) => {
            out.push('{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                write_str(k, style, out);
                out.push_str(colon);
                write(item, style, out);
            }
            out.push('}');
        }
    }
}

fn text(v: &V, style: Style) -> String {
    let mut out = String::new();
    write(v, style, &mut out);
    out
}

/// xorshift64: the same corpus on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn style(&mut self) -> Style {
        Style {
            python: self.chance(0.7),
            ascii: self.chance(0.5),
            html: self.chance(0.1),
            slash: self.chance(0.1),
        }
    }
}

const STRINGS: &[&str] = &[
    "a\"b",
    "back\\slash",
    "São Paulo",
    "😀x",
    "line\nbreak",
    "tab\there",
    "a/b",
    "\\\"",
    "\\\\\"",
    "\"",
    "\\",
    "é\\u00e9",
    "\u{2028}",
    "\u{7f}",
    "plain",
    "",
    "\\n",
    "<tool_call>",
    "</tool_call>",
];

fn float(rng: &mut Rng) -> f64 {
    match rng.below(6) {
        // Short decimals of every length and point (the fast path's).
        0 | 1 => {
            let digits = 1 + rng.below(17) as u32;
            let mantissa = rng.next() % 10u64.pow(digits.min(19));
            let sign = if rng.chance(0.3) { -1.0 } else { 1.0 };
            sign * mantissa as f64 / 10f64.powi(rng.below(digits as usize + 1) as i32)
        }
        2 => f64::from_bits(rng.next() >> 2), // anything finite and positive
        3 => rng.next() as f64 / u64::MAX as f64,
        _ => *rng.pick(&[
            1e-7,
            1e22,
            123456789012345.6,
            0.1,
            0.3,
            -0.0,
            5e-324,
            2.5,
            1e16,
        ]),
    }
}

fn value(rng: &mut Rng, depth: usize) -> V {
    let k = rng.below(10);
    if k < 5 || depth > 2 {
        return V::Str(rng.pick(STRINGS).to_string());
    }
    match k {
        5 => V::Int(rng.below(11) as i64 - 5),
        6 => V::List((0..rng.below(4)).map(|_| value(rng, depth + 1)).collect()),
        7 => V::Obj(
            (0..rng.below(4))
                .map(|_| (rng.pick(STRINGS).to_string(), value(rng, depth + 1)))
                .collect(),
        ),
        8 => V::Float(float(rng)),
        _ => rng
            .pick(&[V::Bool(true), V::Null, V::Float(2.5), V::Float(-0.0)])
            .clone(),
    }
}

fn call(rng: &mut Rng) -> V {
    let name = rng.pick(&["f", "g", "é", "a\"b"]).to_string();
    let args = (0..rng.below(5))
        .map(|_| (rng.pick(STRINGS).to_string(), value(rng, 0)))
        .collect();
    V::Obj(vec![
        ("name".into(), V::Str(name)),
        ("arguments".into(), V::Obj(args)),
    ])
}

/// Cuts `s` at a random char boundary.
fn cut(rng: &mut Rng, s: &str) -> String {
    let mut at = rng.below(s.len() + 1);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s[..at].to_string()
}

/// A record; `last` is the ground truth the line before had (as GRPO
/// dumps hold the G completions of a prompt, four lines in ten share the
/// last line's, written alike).
fn line(rng: &mut Rng, i: usize, last: &mut Option<(Vec<V>, Style)>) -> String {
    let (truth, truth_style) = match last.take() {
        Some(shared) if rng.chance(0.4) => shared,
        _ => ((0..rng.below(4)).map(|_| call(rng)).collect(), rng.style()),
    };
    *last = Some((truth.clone(), truth_style));
    let mut calls = truth.clone();
    if rng.chance(0.3) {
        calls.reverse();
    }
    if rng.chance(0.2) {
        if let Some(V::Obj(members)) = calls.first_mut() {
            if let Some((_, V::Obj(args))) = members.get_mut(1) {
                args.push(("x".into(), V::Int(1))); // a repeated key, or a new one
            }
        }
    }
    let mut body = text(&V::List(calls), rng.style());
    if rng.chance(0.1) {
        // The same values spelt otherwise.
        body = body
            .replace(".5", ".50")
            .replace("e-7", "E-7")
            .replace("0.1,", "0.10e0,");
    }
    let r = rng.below(10);
    if r < 3 {
        body = cut(rng, &body);
    } else if r < 4 {
        let head = cut(rng, &body);
        let piece = rng.pick(&[
            " ", "\n", "\t", "\\", "\"", "\u{1}", "\u{a0}", "]", "}", ",", "NaN", "x",
        ]);
        body = format!("{head}{piece}{}", &body[head.len()..]);
    }
    let ws = rng.pick(&["", " ", "\n", " \n\t", "\u{a0}"]);
    let completion = match rng.below(20) {
        0 => format!("<tool_call>{ws}{body}{ws}</tool_call>"),
        // A marker inside a line (the script cuts there, binary does not)
        // and one that heads a turn (both cut there).
        1 => format!("<think>a</think><tool_call>[]</tool_call><|im_start|>assistant<think>t</think>\n<tool_call>{body}</tool_call>"),
        3 => format!("<think>a</think><tool_call>[]</tool_call><|im_end|>\n<|im_start|>assistant\n<think>t</think>\n<tool_call>{body}</tool_call>"),
        2 => format!("<think>t</think><tool_call>{body}</tool_call> and <tool_call>{body}</tool_call>"),
        _ => format!("<think>t</think>\n<tool_call>{ws}{body}{ws}</tool_call>"),
    };
    let mut truth_text = text(&V::List(truth.clone()), truth_style);
    if rng.chance(0.05) {
        truth_text = cut(rng, &truth_text);
    }
    // xLAM's form (the calls as JSON text) mostly; the calls themselves
    // sometimes.
    let ground_truth = if rng.chance(0.8) {
        V::Str(truth_text)
    } else {
        V::List(truth)
    };
    let id = match rng.below(8) {
        0 => V::Str(format!("case-{i}")),
        1 => V::Null,
        _ => V::Int(i as i64),
    };
    let mut fields = vec![
        ("id".to_string(), id),
        ("completion".to_string(), V::Str(completion)),
        ("ground_truth".to_string(), ground_truth),
    ];
    let orders = if rng.chance(0.8) { 1 } else { 3 };
    fields.rotate_left(rng.below(orders));
    let record = text(&V::Obj(fields), rng.style());
    match rng.below(100) {
        0 => cut(rng, &record),
        1 => String::new(),
        _ => record,
    }
}

fn run(
    rule: &dyn RewardRule<[toolgym_reward::Call]>,
    input: &[u8],
    parallel: bool,
    fast: bool,
) -> (Vec<u8>, RunReport) {
    let options = JsonlOptions {
        parallel,
        ..Default::default()
    };
    let mut out = Vec::new();
    let report = if fast {
        score_jsonl(rule, input, &mut out, options)
    } else {
        score_jsonl_with(rule, call_truth, input, &mut out, options)
    }
    .unwrap();
    (out, report)
}

#[test]
fn fast_readers_write_what_the_general_reader_writes() {
    for seed in [
        0x5eed_7001_0c0f_fee5,
        0x0bad_cafe_f00d_0001,
        0x1234_5678_9abc_def1,
    ] {
        let mut rng = Rng(seed);
        let mut last = None;
        let input: String = (0..3000)
            .map(|i| line(&mut rng, i, &mut last) + "\n")
            .collect();
        agree_on(&input);
    }
}

/// Every call-list rule: the fast readers' output and summary, on one
/// thread and on a pool, are the general reader's.
fn agree_on(input: &str) {
    for name in [
        "tool-n1",
        "tool-n1-no-think",
        "tool-n1-fine",
        "tool-n1-fine-names",
        "binary",
        "fine-grained",
    ] {
        let rule = rule_by_name(name).unwrap();
        let (general, general_report) = run(&*rule, input.as_bytes(), false, false);
        for parallel in [false, true] {
            let (fast, report) = run(&*rule, input.as_bytes(), parallel, true);
            if fast != general {
                let (f, g) = (
                    String::from_utf8_lossy(&fast),
                    String::from_utf8_lossy(&general),
                );
                let (at, (a, b)) = f
                    .lines()
                    .zip(g.lines())
                    .enumerate()
                    .find(|(_, (a, b))| a != b)
                    .expect("a differing line");
                panic!(
                    "{name}, parallel {parallel}, output line {at}:\n fast    {a}\n general {b}"
                );
            }
            assert_eq!(
                report.summary.to_string(),
                general_report.summary.to_string(),
                "{name}"
            );
            assert_eq!(report.input_errors, general_report.input_errors, "{name}");
            assert_eq!(report.blank_lines, general_report.blank_lines, "{name}");
        }
        if name == "tool-n1" {
            // The corpus reaches every outcome.
            let summary = general_report.summary.to_string();
            for reason in [
                "ok",
                "format_error",
                "json_error",
                "schema_error",
                "wrong_args",
                "input_error",
            ] {
                assert!(summary.contains(reason), "{reason} missing:\n{summary}");
            }
        }
    }
}
