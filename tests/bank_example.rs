//! The bank example's reward (`examples/bank/mod.rs`, the env the
//! `custom_env` and `train_custom_env` examples use): the reference solver
//! earns it, and policies that game a careless reward do not.

#[allow(dead_code)]
#[path = "../examples/bank/mod.rs"]
mod bank;

use std::sync::Arc;
use toolgym_env::env::{run_episode_seeded, EnvFactory};
use toolgym_env::{Task, TaskSource, ToolEnv};

/// The env's solver plays `task`; its episode's reward.
fn solved(shortcut_percent: usize, task: &Arc<Task>, seed: u64) -> f64 {
    let mut env = bank::spec(shortcut_percent).make(task.clone());
    env.reset(Some(seed));
    let mut reward = 0.0;
    while let Some(reply) = env.demonstration() {
        let step = env.step(&reply);
        reward += step.reward;
        if step.done() {
            break;
        }
    }
    reward
}

#[test]
fn the_solver_earns_the_reward_and_gaming_it_does_not() {
    let tasks = bank::tasks(3);
    let (mut empty, mut close) = (0, 0);
    for i in 0..20 {
        let task = tasks.get(i).unwrap();
        let kind = task.meta["kind"].as_str().unwrap().to_string();
        assert_eq!(solved(0, &task, i), 1.0, "{kind} {i}");
        if kind == "empty" {
            empty += 1;
            // Closing instead of emptying, the hurried teller's habit.
            assert_eq!(solved(100, &task, i), 0.0, "hurried {i}");
            // Emptying, then closing as well.
            let mut env = bank::spec(0).make(task.clone());
            let ep = run_episode_seeded(&mut env, Some(i), 8, bank::empty_then_close(&task));
            let calls: Vec<&str> = ep
                .steps
                .iter()
                .flat_map(|s| s.info.results.iter().map(|r| r.call.name.as_str()))
                .collect();
            assert_eq!(calls, ["find_account", "withdraw_all", "close_account"]);
            assert_eq!(ep.total_reward(), 0.0, "empty then close {i}");
        } else {
            close += 1;
            assert_eq!(solved(100, &task, i), 1.0, "close {i}");
        }
    }
    assert!(empty > 0 && close > 0, "{empty} {close}");
}
