//! A user-written multi-turn tool environment, in plain SDK code: a bank
//! teller whose account ids (and balances) are drawn at every reset, so no
//! task can be solved in one turn — the model must look the account up
//! before it can act on it. Shared by `custom_env` (scripted episodes) and
//! `train_custom_env` (SFT + GRPO against it).

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use toolgym_env::env::{Action, AllOf, EpisodeView, EveryReply, Finished, FnRule, NoToolErrors};
use toolgym_env::rng::{mix, Rng};
use toolgym_env::{ChatMlTemplate, Generator, Message, MultiTurnConfig, MultiTurnSpec, Task};
use toolgym_env::{ToolError, ToolRegistry, ToolSpec};
use toolgym_reward::{Call, Reason, Verdict};

/// The customers; each has one account.
pub const OWNERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

/// Account ids are code words, dealt out afresh at every reset.
pub const CODES: [&str; 9] = [
    "cedar", "maple", "birch", "aspen", "rowan", "hazel", "alder", "larch", "willow",
];

/// The state of one episode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bank {
    /// Account id of each owner.
    pub ids: BTreeMap<String, String>,
    /// Balance of each open account, by id.
    pub balances: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
struct Withdrawal {
    account_id: String,
    amount: i64,
}

fn tools() -> ToolRegistry<Bank> {
    let mut reg = ToolRegistry::new();
    let by_id = |name: &str, what: &str| {
        ToolSpec::builder(name, what)
            .required("account_id", "string", "")
            .strict()
            .build()
    };
    let find = ToolSpec::builder("find_account", "The account id of a customer.")
        .required_enum("owner", &OWNERS, "")
        .strict()
        .build();
    reg.register_stateful(find, |a, bank: &mut Bank| {
        let id = bank.ids.get(a["owner"].as_str().unwrap_or(""));
        Ok(json!({ "account_id": id.ok_or_else(|| ToolError::failed("no such customer"))? }))
    })
    .expect("valid tool");
    let no_account = || ToolError::failed("no such account");
    let balance = by_id("get_balance", "The balance of an account.");
    reg.register_stateful(balance, move |a, bank| {
        let b = bank.balances.get(a["account_id"].as_str().unwrap_or(""));
        Ok(json!({ "balance": b.ok_or_else(no_account)? }))
    })
    .expect("valid tool");
    let close = by_id(
        "close_account",
        "Closes an account, paying out its balance.",
    );
    reg.register_stateful(close, move |a, bank| {
        let paid = bank.balances.remove(a["account_id"].as_str().unwrap_or(""));
        Ok(json!({ "paid_out": paid.ok_or_else(no_account)? }))
    })
    .expect("valid tool");
    let withdraw = ToolSpec::builder("withdraw", "Pays out cash from an account.")
        .required("account_id", "string", "")
        .required("amount", "integer", "")
        .bounds("amount", Some(1.0), None)
        .strict()
        .build();
    reg.register_typed(withdraw, move |w: Withdrawal, bank: &mut Bank| {
        let have = bank
            .balances
            .get_mut(&w.account_id)
            .ok_or_else(no_account)?;
        if *have < w.amount {
            return Err(ToolError::failed("insufficient funds"));
        }
        *have -= w.amount;
        Ok(json!({ "ok": true }))
    })
    .expect("valid tool");
    let withdraw_all = by_id(
        "withdraw_all",
        "Pays out the whole balance; the account stays open.",
    );
    reg.register_stateful(withdraw_all, move |a, bank| {
        let have = bank
            .balances
            .get_mut(a["account_id"].as_str().unwrap_or(""))
            .ok_or_else(no_account)?;
        Ok(json!({ "paid_out": std::mem::take(have) }))
    })
    .expect("valid tool");
    reg
}

/// A task asks to `close` an account, or to `empty` it (`withdraw_all`,
/// keeping the account). `get_balance` and `withdraw` (an amount) are
/// there too; no task needs them.
fn request(task: &Task) -> (String, String) {
    let field = |k: &str| task.meta[k].as_str().unwrap_or("").to_string();
    (field("owner"), field("kind"))
}

/// A new bank for an episode: ids and balances ($10 to $90, in tens)
/// drawn from the seed.
fn open(_task: &Task, seed: u64) -> Bank {
    let mut rng = Rng::new(seed);
    let mut codes = CODES;
    rng.shuffle(&mut codes);
    let mut bank = Bank::default();
    for (owner, id) in OWNERS.iter().zip(codes) {
        bank.ids.insert(owner.to_string(), id.to_string());
        bank.balances
            .insert(id.to_string(), 10 * rng.range_inclusive(1, 9));
    }
    bank
}

/// The call that does the job, in the ids and balances of `bank` (the
/// episode's initial state, rebuilt from its seed).
fn wanted(task: &Task, bank: &Bank) -> Option<Call> {
    let (owner, kind) = request(task);
    let id = bank.ids.get(&owner)?;
    match kind.as_str() {
        "close" => Call::new("close_account", json!({ "account_id": id })).ok(),
        _ => Call::new("withdraw_all", json!({ "account_id": id })).ok(),
    }
}

/// The reward: all of a clean finish, well-formed replies, no call the
/// bank could not read, the job's call made with the looked-up id, and the
/// right final state: the account closed, or emptied and still open.
/// Answering at once, guessing an id, sending broken calls, or closing an
/// account that was to be emptied (even after emptying it) earns nothing.
fn reward(template: &ChatMlTemplate) -> AllOf<Bank> {
    let done = FnRule::new("job-done", |v: &EpisodeView<'_, Bank>| {
        let initial = open(v.task, v.seed);
        let want = wanted(v.task, &initial);
        if want.as_ref().is_some_and(|w| v.episode_calls.contains(w)) {
            let (owner, kind) = request(v.task);
            let left = initial.ids.get(&owner).map(|id| v.state.balances.get(id));
            let right_end = match kind.as_str() {
                "close" => left == Some(None),
                _ => left == Some(Some(&0)),
            };
            let others = initial
                .balances
                .iter()
                .filter(|(id, _)| Some(*id) != initial.ids.get(&owner))
                .all(|(id, b)| v.state.balances.get(id) == Some(b));
            if right_end && others {
                Verdict::ok()
            } else {
                Verdict::fail(Reason::StateMismatch, "wrong balances")
            }
        } else {
            Verdict::fail(Reason::MissingCall, format!("no call {want:?}"))
        }
    });
    AllOf::new("bank")
        .with(Finished)
        .with(EveryReply::for_template(template))
        .with(NoToolErrors::strict())
        .with(done)
}

/// The reference solver: find the account, act on it, then report. A
/// hurried teller (`shortcut_percent` of the `empty` episodes, drawn from
/// the episode's seed) closes the account instead of emptying it: the
/// money is paid out too, but the customer asked to withdraw it, not to
/// lose the account, so the episode fails.
fn solver(shortcut_percent: usize) -> impl Fn(&EpisodeView<'_, Bank>) -> Option<Action> {
    move |v| {
        let (owner, kind) = request(v.task);
        let call = |name: &str, args: Value| Call::new(name, args).ok();
        if v.all_results()
            .any(|(_, r)| ["close_account", "withdraw_all"].contains(&r.call.name.as_str()))
        {
            return Some(Action::answer("The request is done.", "Done."));
        }
        let Some(found) = v.results_of("find_account").next() else {
            let find = call("find_account", json!({ "owner": owner }))?;
            return Some(Action::call(format!("Find {owner}'s account."), vec![find]));
        };
        let id = found["account_id"].as_str()?;
        let hurried = Rng::new(mix(v.seed, 0x5107)).below(100) < shortcut_percent;
        let act = if kind == "close" || hurried {
            "close_account"
        } else {
            "withdraw_all"
        };
        let act = call(act, json!({ "account_id": id }))?;
        Some(Action::call("Found the account.", vec![act]))
    }
}

/// The environment: tools, the multi-turn prompt, the reward, and the
/// reference solver, hurried in `shortcut_percent` of the `empty` episodes
/// (0: always exact).
pub fn spec(shortcut_percent: usize) -> MultiTurnSpec<Bank> {
    let template = Arc::new(ChatMlTemplate::compact_multi_turn());
    let config = MultiTurnConfig::empty()
        .max_turns(6)
        .final_rule(1.0, reward(&template));
    MultiTurnSpec::seeded(tools(), template, config, open)
        .named("bank")
        .with_solver(solver(shortcut_percent))
}

/// Task `index` of the stream `seed`: close a customer's account, or
/// withdraw all of its money.
pub fn task(seed: u64, index: u64) -> Task {
    let mut rng = Rng::new(mix(seed, index));
    let owner = OWNERS[rng.below(OWNERS.len())];
    let (kind, query) = match rng.below(2) {
        0 => ("close", format!("Close {owner}'s account.")),
        _ => ("empty", format!("Withdraw all of {owner}'s money.")),
    };
    let mut t = Task::new(
        format!("bank-{seed}-{index}"),
        "bank",
        vec![],
        vec![Message::user(query)],
        vec![],
    );
    t.meta.insert("owner".into(), json!(owner));
    t.meta.insert("kind".into(), json!(kind));
    t
}

/// The endless task stream `seed`.
pub fn tasks(seed: u64) -> Generator<impl Fn(u64) -> Task + Send + Sync> {
    Generator::new("bank", move |i| task(seed, i))
}

/// A policy that games a careless reward: it finds the account, empties
/// it as asked, then closes it too. (The reward checks the account is
/// still open.) Used by `custom_env` and the bank test, not by training.
#[allow(dead_code)]
pub fn empty_then_close(task: &Task) -> impl FnMut(&toolgym_env::Observation) -> String {
    let owner = request(task).0;
    let mut turn = 0;
    move |obs| {
        turn += 1;
        // The id, from the last tool result (the find_account call's).
        let id = obs
            .messages
            .iter()
            .rev()
            .find_map(|m| CODES.iter().find(|c| m.content.contains(*c)))
            .copied()
            .unwrap_or("");
        let call = |name: &str, args: Value| {
            format!(
                "<think>{name}.</think>\n<tool_call>\n[{}]\n</tool_call>",
                json!({ "name": name, "arguments": args })
            )
        };
        match turn {
            1 => call("find_account", json!({ "owner": owner })),
            2 => call("withdraw_all", json!({ "account_id": id })),
            3 => call("close_account", json!({ "account_id": id })),
            _ => "<think>Done.</think>\nDone.".into(),
        }
    }
}
