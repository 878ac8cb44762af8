//! Training against your own environment: the built-in tiny Qwen2, from
//! scratch and with nothing downloaded, learns the multi-turn bank of
//! `examples/bank/mod.rs` — an SFT warm start on the environment's
//! reference solutions, then GRPO — and prints held-out task success
//! before and after GRPO. The solutions come from a hurried teller who
//! closes the account instead of emptying it in 60% of the
//! withdraw-everything tasks (`--shortcut-percent`); SFT learns the habit,
//! and the environment's reward is what GRPO unlearns it from.
//!
//! ```text
//! cargo run --release --example train_custom_env                # seed 0
//! cargo run --release --example train_custom_env -- --seed 1 --fresh
//! cargo run --release --example train_custom_env -- --shortcut-percent 0 --fresh
//! cargo run --release --example train_custom_env -- --show-failures 5   # what still fails
//! ```

mod bank;
mod run_args;

use clap::Parser;
use run_args::RunArgs;
use std::sync::Arc;
use std::time::Instant;
use toolgym::grpo::pipeline::{self, Phases, TaskSetup};
use toolgym::grpo::{EvalReport, StepMetrics, TrainConfig, Trajectory};

#[derive(Parser, Debug)]
#[command(about = "SFT + GRPO of the built-in tiny model against the multi-turn bank environment")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    /// Share (in %) of the withdraw-everything demonstrations in which the
    /// teller closes the account instead of emptying it with `withdraw_all`
    /// (0: every demonstration is exact). Not recorded with the run: resume
    /// with the same value.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u8).range(0..=100))]
    shortcut_percent: u8,
    /// Print this many failing held-out episodes after GRPO, turn by turn.
    #[arg(long, default_value_t = 0)]
    show_failures: usize,
}

/// What differs from the paper's settings for a tiny model trained from
/// scratch on a 2-core CPU.
const SETTINGS: &[&str] = &[
    "model.builtin.hidden_size=128",
    "model.builtin.intermediate_size=384",
    "model.builtin.heads=4",
    "sft.steps=180",
    "sft.batch_size=16",
    "sft.micro_batch_seqs=16",
    "sft.max_seq_tokens=1024",
    "sft.optim.lr=3e-3",
    "sft.optim.warmup_steps=10",
    "sft.optim.schedule=\"cosine\"",
    "sft.optim.min_lr_ratio=0.1",
    // GRPO samples at T = 1.0 so that the teller's two habits are both
    // tried, and refills groups whose five episodes all scored the same
    // (no signal) with up to two more rounds of rollouts: rollouts are
    // cheap next to the update.
    "grpo.steps=40",
    "grpo.temperature=1.0",
    "grpo.dynamic_sampling=true",
    "grpo.max_sampling_rounds=3",
    "grpo.prompts_per_step=8",
    "grpo.mini_batch_prompts=8",
    "grpo.micro_batch_seqs=20",
    "grpo.max_response_tokens=64",
    "grpo.max_prompt_tokens=512",
    "grpo.max_turns=6",
    "grpo.max_episode_tokens=1024",
    "grpo.optim.lr=3e-4",
    "run.eval_every=0",
    "run.save_every=10",
];

/// Held-out tasks: a stream no training run draws from.
const VALIDATION_STREAM: u64 = 999_999;
const VALIDATION_TASKS: u64 = 100;

fn main() {
    toolgym::grpo::configure_cpu();
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let seed = args.run.seed;
    let out = args
        .run
        .out_dir(format!("runs/train_custom_env/seed-{seed}"));
    let mut overrides: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
    overrides.extend(args.run.overrides(&out, true)?);
    let cfg = TrainConfig::load(None, &overrides)?;

    // The environment, its training stream and held-out tasks: that is all
    // the trainer needs.
    let setup = TaskSetup {
        factory: Arc::new(bank::spec(usize::from(args.shortcut_percent))),
        train: Arc::new(bank::tasks(seed)),
        validation: (0..VALIDATION_TASKS)
            .map(|i| Arc::new(bank::task(VALIDATION_STREAM, i)))
            .collect(),
        tokenizer_corpus: None,
    };
    let start = Instant::now();
    println!("run directory: {}", out.display());
    let report = pipeline::run_with(&cfg, setup, Phases::SftThenGrpo, print_step)?;
    let show = |name: &str, r: &Option<EvalReport>| {
        if let Some(r) = r {
            println!(
                "  {name:<26} success {:.3}  mean reward {:.3}  turns {:.2}  ({} tasks)",
                r.accuracy, r.mean_reward, r.turns_mean, r.summary.count
            );
        }
    };
    println!("\nheld-out bank tasks (greedy episodes):");
    show(&report.before_grpo_label(), &report.before_grpo);
    show("after GRPO", &report.after_grpo);
    if let Some(r) = &report.after_grpo {
        let reasons: Vec<String> = r
            .summary
            .reasons
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!("  reasons after GRPO: {}", reasons.join(", "));
        for ep in r
            .episodes
            .iter()
            .filter(|e| !e.success())
            .take(args.show_failures)
        {
            print_episode(ep);
        }
    }
    println!("total time {:.1}s", start.elapsed().as_secs_f64());
    Ok(())
}

/// One episode, turn by turn: the query, each reply, the tool results it
/// got, and the verdict.
fn print_episode(ep: &Trajectory) {
    let query = ep.task.messages.last().map_or("", |m| m.content.as_str());
    let v = ep.verdict();
    println!(
        "\n--- {}: {query}  [{}: {}]",
        ep.task.id, v.reason, v.detail
    );
    for (reply, step) in ep.replies.iter().zip(&ep.steps) {
        println!("  model: {}", reply.replace('\n', " "));
        for r in &step.info.results {
            println!("  tool:  {}", r.to_observation());
        }
    }
}

fn print_step(m: &StepMetrics) {
    match m.reward_mean {
        Some(r) => println!(
            "[grpo {:>3}] reward {r:.3}  turns {:.2}  tool errors {}  env {:.2}s  {:.1}s",
            m.step,
            m.turns_mean.unwrap_or(0.0),
            m.tool_errors.values().sum::<usize>(),
            m.env_seconds.unwrap_or(0.0),
            m.step_seconds
        ),
        None if m.step.is_multiple_of(20) => println!(
            "[sft  {:>3}] loss {:.4}  {:.1}s",
            m.step, m.loss, m.step_seconds
        ),
        None => {}
    }
}
