//! Writes the benchmark corpus as JSONL (`{"completion", "ground_truth"}`),
//! the input of `scripts/bench/tooln1_python_bench.py`, so the Python
//! baseline scores exactly what `cargo bench --bench score` scores.
//!
//! `cargo run -p toolgym-reward --example bench_corpus -- [N] [SEED] > corpus.jsonl`

#[path = "../benches/support/corpus.rs"]
mod corpus;

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let n = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(7);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for c in corpus::corpus(n, seed) {
        let line = serde_json::json!({"completion": c.completion, "ground_truth": c.ground_truth});
        writeln!(out, "{line}").expect("write to stdout");
    }
}
