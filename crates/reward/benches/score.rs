//! Throughput of the reward rules on a realistic mixed corpus, single-threaded
//! and on all cores. Compare with the Python script via
//! `scripts/bench/reward_bench.sh`.

#[path = "support/corpus.rs"]
mod corpus;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use toolgym_reward::{par_score_batch, rule_by_name, Call};

const N: usize = 2000;
const SEED: u64 = 7;

fn bench(c: &mut Criterion) {
    let cases = corpus::corpus(N, SEED);
    let truths: Vec<Vec<Call>> = cases
        .iter()
        .map(|c| Call::list_from_value(c.ground_truth.clone()).expect("corpus truth"))
        .collect();
    let items: Vec<(&str, &[Call])> = cases
        .iter()
        .zip(&truths)
        .map(|(c, t)| (c.completion.as_str(), t.as_slice()))
        .collect();
    let mut g = c.benchmark_group("score");
    g.throughput(Throughput::Elements(N as u64));
    for name in ["tool-n1", "binary"] {
        let rule = rule_by_name(name).expect("rule");
        g.bench_function(format!("{name}/single_thread"), |b| {
            b.iter(|| {
                let mut total = 0.0;
                for (c, t) in &items {
                    total += rule.score(black_box(c), t).reward;
                }
                black_box(total)
            })
        });
        g.bench_function(format!("{name}/all_cores"), |b| {
            b.iter(|| black_box(par_score_batch(&*rule, &items)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
