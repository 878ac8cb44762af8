//! A user-written tool environment: a small in-memory bank with three tools,
//! a seeded task generator and a reward that checks the bank's final state,
//! driven by scripted "model" replies through the API a trainer uses.
//!
//! Run with `cargo run --example custom_env`.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use toolgym_env::env::{run_episode, EpisodeView, FnRule, ReplyFormat};
use toolgym_env::rng::Rng;
use toolgym_env::{ChatMlTemplate, ChatTemplate, Message, MultiTurnConfig, MultiTurnSpec};
use toolgym_env::{Task, ToolError, ToolRegistry, ToolSpec};
use toolgym_reward::{Call, Reason, Verdict};

/// The environment state: balances by account, in dollars.
type Bank = BTreeMap<String, i64>;

fn account(bank: &mut Bank, a: &Value, key: &str) -> Result<i64, ToolError> {
    let name = a[key].as_str().unwrap_or("");
    bank.get(name)
        .copied()
        .ok_or_else(|| ToolError::failed(format!("no account {name:?}")))
}

/// A spec whose parameters are all required.
fn spec(name: &str, description: &str, params: &[(&str, &str)]) -> ToolSpec {
    let mut b = ToolSpec::builder(name, description);
    for (p, t) in params {
        b = b.required(p, t, "");
    }
    b.build()
}

fn tools() -> Result<ToolRegistry<Bank>, toolgym_env::RegistryError> {
    let acct = ("account", "string");
    let mut reg = ToolRegistry::new();
    reg.register_stateful(
        spec("get_balance", "Balance of an account.", &[acct]),
        |a, bank| Ok(json!(account(bank, a, "account")?)),
    )?;
    reg.register_stateful(spec("list_accounts", "Lists accounts.", &[]), |_, bank| {
        Ok(json!(bank.keys().collect::<Vec<_>>()))
    })?;
    let transfer = spec(
        "transfer",
        "Moves money.",
        &[("from", "string"), ("to", "string"), ("amount", "integer")],
    );
    reg.register_stateful(transfer, |a, bank| {
        let (from, to) = (account(bank, a, "from")?, account(bank, a, "to")?);
        let amount = a["amount"].as_i64().unwrap_or(0);
        if amount <= 0 || from < amount {
            return Err(ToolError::failed("insufficient funds"));
        }
        bank.insert(a["from"].as_str().unwrap_or("").into(), from - amount);
        bank.insert(a["to"].as_str().unwrap_or("").into(), to + amount);
        Ok(json!({ "ok": true }))
    })?;
    Ok(reg)
}

/// Seeded tasks: "send N from A to B"; start and expected balances in `meta`.
fn generate(seed: u64) -> Result<Task, toolgym_reward::CallShapeError> {
    let mut rng = Rng::new(seed);
    let names = ["alice", "bob", "carol", "dave"];
    let bank: Bank = names
        .map(|n| (n.into(), rng.range_inclusive(20, 200)))
        .into();
    let (i, j) = (rng.below(4), rng.below(3));
    let (from, to) = (names[i], names[(i + 1 + j) % 4]);
    let amount = rng.range_inclusive(1, bank[from]);
    let mut expected = bank.clone();
    *expected.entry(from.into()).or_default() -= amount;
    *expected.entry(to.into()).or_default() += amount;
    let args = json!({"from": from, "to": to, "amount": amount});
    let truth = vec![Call::new("transfer", args)?];
    let query = Message::user(format!("Send ${amount} from {from} to {to}."));
    let mut task = Task::new(format!("bank-{seed}"), "bank", vec![], vec![query], truth);
    task.meta.insert("balances".into(), json!(bank));
    task.meta.insert("expected".into(), json!(expected));
    Ok(task)
}

fn balances(v: &Value) -> Bank {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Reward: 0.1 per well-formed reply, 1 if the bank ends as expected.
    let state_ok = FnRule::new("balances-match", |v: &EpisodeView<'_, Bank>| {
        if *v.state == balances(&v.task.meta["expected"]) {
            Verdict::ok()
        } else {
            Verdict::fail(Reason::WrongArgs, "final balances differ")
        }
    });
    let config = MultiTurnConfig::empty()
        .max_turns(4)
        .step_rule(0.1, ReplyFormat::default())
        .final_rule(1.0, state_ok);
    let template = Arc::new(ChatMlTemplate::compact());
    let spec = MultiTurnSpec::new(tools()?, template.clone(), config, |t: &Task| {
        balances(&t.meta["balances"])
    });

    for seed in [1, 2] {
        let task = Arc::new(generate(seed)?);
        // Scripted "model": check the payer, transfer (seed 2 sends the wrong
        // amount), then answer without a call.
        let mut transfer = task.ground_truth[0].clone();
        if seed == 2 {
            transfer.arguments.insert("amount".into(), json!(1));
        }
        let payer = json!({"account": transfer.arguments["from"]});
        let check = Call::new("get_balance", payer)?;
        let script = [
            template.render_reply(Some("Check the payer first."), &[check]),
            template.render_reply(Some("Now transfer."), &[transfer]),
            "<think>Done.</think>\nThe transfer is complete.".to_string(),
        ];
        let mut env = spec.env(task.clone());
        let mut turn = 0;
        let episode = run_episode(&mut env, 10, |obs| {
            if turn == 0 {
                println!("--- prompt of {} ---\n{}", task.id, obs.prompt);
            }
            turn += 1;
            script[(turn - 1).min(2)].clone()
        });
        for step in &episode.steps {
            println!("turn {}: reward {:.1}", step.info.turn, step.reward);
            for r in &step.info.results {
                println!("  tool -> {}", r.to_observation());
            }
        }
        let (id, total, end) = (&task.id, episode.total_reward(), episode.end());
        println!(
            "{id}: total {total:.1}, ended {end:?}, bank {:?}\n",
            env.state()
        );
    }
    Ok(())
}
