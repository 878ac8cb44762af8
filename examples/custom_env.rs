//! A user-written multi-turn environment (`examples/bank/mod.rs`: a bank
//! teller whose account ids are drawn at every reset), driven through the
//! API a trainer uses: its reference solver plays tasks of both kinds,
//! then policies that try to game the reward show that they earn nothing.
//!
//! Run with `cargo run --example custom_env`; train against the same
//! environment with `cargo run --release --example train_custom_env`.

mod bank;

use toolgym_env::env::{run_episode_seeded, EnvFactory};
use toolgym_env::{TaskSource, ToolEnv};

fn main() {
    let spec = bank::spec(0);
    let tasks = bank::tasks(7);

    // The exact reference solver (no hurried shortcuts) plays three tasks:
    // withdraw all of frank's money, close erin's account, withdraw all of
    // erin's (another account id: ids are drawn at every reset).
    for index in [0, 1, 6] {
        let task = tasks.get(index).expect("a generator always has a task");
        let mut env = spec.make(task.clone());
        println!(
            "--- prompt of {} ---\n{}",
            task.id,
            env.reset(Some(index)).prompt
        );
        while let Some(reply) = env.demonstration() {
            let step = env.step(&reply);
            println!("turn {}: {reply}", step.info.turn);
            for r in &step.info.results {
                println!("  tool -> {}", r.to_observation());
            }
            if step.done() {
                let (end, reason) = (step.info.end, step.info.reason());
                println!(
                    "reward {:.1}, ended {end:?}, reason {reason}\n",
                    step.reward
                );
            }
        }
    }

    // Policies that try to game the reward.
    let cheats: [(&str, &[&str]); 3] = [
        ("answer at once", &["<think>Nothing to do.</think>\nDone."]),
        (
            "guess the id",
            &["<think>Guess.</think>\n<tool_call>\n[{\"name\": \"withdraw\", \"arguments\": {\"account_id\": 1, \"amount\": 10}}]\n</tool_call>"],
        ),
        (
            "call an unknown tool",
            &["<think>Hm.</think>\n<tool_call>\n[{\"name\": \"steal\", \"arguments\": {}}]\n</tool_call>"],
        ),
    ];
    let task = tasks.get(0).expect("a task");
    for (what, script) in cheats {
        let mut env = spec.make(task.clone());
        let mut turn = 0;
        let ep = run_episode_seeded(&mut env, Some(0), 8, |_| {
            turn += 1;
            script
                .get(turn - 1)
                .unwrap_or(&"<think>Done.</think>\nDone.")
                .to_string()
        });
        let reason = ep.steps.last().map(|s| s.info.reason());
        println!("{what:<22} reward {:.1}  ({reason:?})", ep.total_reward());
    }

    // The job's call made, then more: emptying an account, then closing
    // it (the customer wanted it kept).
    let empty = (0..)
        .filter_map(|i| tasks.get(i))
        .find(|t| t.meta["kind"] == "empty")
        .expect("a task to empty an account");
    let mut env = spec.make(empty.clone());
    let ep = run_episode_seeded(&mut env, Some(0), 8, bank::empty_then_close(&empty));
    let reason = ep.steps.last().map(|s| s.info.reason());
    println!(
        "{:<22} reward {:.1}  ({reason:?})",
        "empty, then close",
        ep.total_reward()
    );
}
