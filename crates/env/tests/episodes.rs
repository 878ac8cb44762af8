//! Multi-turn episodes as an environment author meets them: rules that see
//! the whole episode, composed rewards that cannot be gamed, honest reason
//! codes, seeds, schemas, typed handlers, solvers and prompts that extend.

use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use toolgym_env::env::{
    run_episode, run_episode_seeded, Action, AllOf, EpisodeView, EveryReply, Finished, FnRule,
    Gate, NoLoop, NoToolErrors, ReplyFormat, StepRewards, WeightedSum,
};
use toolgym_env::{
    ChatMlTemplate, ChatTemplate, EndReason, Message, MultiTurnConfig, MultiTurnSpec, Task,
    ToolEnv, ToolError, ToolRegistry, ToolSpec,
};
use toolgym_reward::{Call, Reason, Verdict};

/// An inventory: item ids by name, stock by id.
#[derive(Clone, Debug, Default, PartialEq)]
struct Store {
    ids: BTreeMap<String, i64>,
    stock: BTreeMap<i64, i64>,
}

#[derive(Deserialize)]
struct Reserve {
    item_id: i64,
    quantity: i64,
}

fn registry() -> ToolRegistry<Store> {
    let mut reg = ToolRegistry::new();
    let lookup = ToolSpec::builder("lookup", "The id of an item.")
        .required("name", "string", "Item name.")
        .strict()
        .build();
    reg.register_stateful(lookup, |a, s: &mut Store| {
        let name = a["name"].as_str().unwrap_or("");
        s.ids
            .get(name)
            .map(|id| json!({ "item_id": id }))
            .ok_or_else(|| ToolError::failed(format!("no item {name:?}")))
    })
    .unwrap();
    let reserve = ToolSpec::builder("reserve", "Reserves items.")
        .required("item_id", "integer", "")
        .required("quantity", "integer", "")
        .bounds("quantity", Some(1.0), None)
        .strict()
        .build();
    reg.register_typed(reserve, |r: Reserve, s: &mut Store| {
        let left = s.stock.get(&r.item_id).copied();
        match left {
            None => Err(ToolError::failed("unknown item id")),
            Some(n) if n < r.quantity => Err(ToolError::failed("not enough stock")),
            Some(n) => {
                s.stock.insert(r.item_id, n - r.quantity);
                Ok(json!({ "left": n - r.quantity }))
            }
        }
    })
    .unwrap();
    reg
}

/// The store of a task: item ids drawn from the seed.
fn store(task: &Task, seed: u64) -> Store {
    let id = 100 + (seed % 900) as i64;
    let stock = task.meta["stock"].as_i64().unwrap_or(0);
    Store {
        ids: [("lamp".to_string(), id)].into(),
        stock: [(id, stock)].into(),
    }
}

/// "Reserve `want` lamps" with `stock` in store.
fn task(want: i64, stock: i64) -> Arc<Task> {
    let mut t = Task::new(
        format!("lamps-{want}-{stock}"),
        "test",
        vec![],
        vec![Message::user(format!("Reserve {want} lamps."))],
        vec![],
    );
    t.meta.insert("want".into(), json!(want));
    t.meta.insert("stock".into(), json!(stock));
    Arc::new(t)
}

fn want(v: &EpisodeView<'_, Store>) -> i64 {
    v.task.meta["want"].as_i64().unwrap_or(0)
}

/// The stock left is what the task implies: reserved when possible,
/// untouched otherwise.
fn state_rule() -> impl toolgym_env::env::EpisodeRule<Store> {
    FnRule::new("stock-as-expected", |v: &EpisodeView<'_, Store>| {
        let stock = v.task.meta["stock"].as_i64().unwrap_or(0);
        let expected = if want(v) <= stock {
            stock - want(v)
        } else {
            stock
        };
        let left: i64 = v.state.stock.values().sum();
        if left == expected {
            Verdict::ok()
        } else {
            Verdict::fail(
                Reason::StateMismatch,
                format!("{left} left, expected {expected}"),
            )
        }
    })
}

/// The reservation was asked for with the looked-up id and the right
/// quantity (granted or refused): the evidence that the agent did the job.
fn asked_rule() -> impl toolgym_env::env::EpisodeRule<Store> {
    FnRule::new("asked-to-reserve", |v: &EpisodeView<'_, Store>| {
        let id = v.results_of("lookup").next().map(|r| r["item_id"].clone());
        let asked = v.episode_calls.iter().any(|c| {
            c.name == "reserve"
                && Some(&c.arguments["item_id"]) == id.as_ref()
                && c.arguments["quantity"] == json!(want(v))
        });
        if asked {
            Verdict::ok()
        } else {
            Verdict::fail(Reason::MissingCall, "no reservation with the looked-up id")
        }
    })
}

/// A reward that leaves nothing to game: state, evidence, a clean finish.
fn strict_reward() -> AllOf<Store> {
    AllOf::new("strict")
        .with(Finished)
        .with(EveryReply(ReplyFormat::default()))
        .with(NoToolErrors::allowing_refusals())
        .with(NoLoop::default())
        .with(asked_rule())
        .with(state_rule())
}

fn spec(config: MultiTurnConfig<Store>) -> MultiTurnSpec<Store> {
    MultiTurnSpec::seeded(
        registry(),
        Arc::new(ChatMlTemplate::compact_multi_turn()),
        config,
        store,
    )
    .named("store")
}

fn call(name: &str, args: Value) -> String {
    let c = Call::new(name, args).unwrap();
    ChatMlTemplate::compact().render_reply(Some("step"), &[c])
}

const DONE: &str = "<think>done</think>\nDone.";

/// Plays `script` (the item id is filled in from the lookup result).
fn play(spec: &MultiTurnSpec<Store>, t: Arc<Task>, script: &[&str]) -> (f64, Vec<Reason>) {
    let (ep, _) = play_recorded(spec, t, script);
    let reasons = ep.steps.iter().map(|s| s.info.reason()).collect();
    (ep.total_reward(), reasons)
}

/// Plays `script` (then `DONE`), filling in the item id from the lookup
/// result: the episode and the replies the env was given.
fn play_recorded(
    spec: &MultiTurnSpec<Store>,
    t: Arc<Task>,
    script: &[&str],
) -> (toolgym_env::env::Episode, Vec<String>) {
    let mut env = spec.env(t);
    let mut replies = Vec::new();
    let ep = run_episode_seeded(&mut env, Some(42), 8, |obs| {
        let id = obs
            .messages
            .iter()
            .rev()
            .find_map(|m| {
                serde_json::from_str::<Value>(&m.content).ok()?["result"]["item_id"].as_i64()
            })
            .unwrap_or(0);
        let reply = script
            .get(replies.len())
            .copied()
            .unwrap_or(DONE)
            .replace("ID", &id.to_string());
        replies.push(reply.clone());
        reply
    });
    (ep, replies)
}

#[test]
fn final_rules_see_every_step_including_rejected_calls() {
    let seen = FnRule::new("count", |v: &EpisodeView<'_, Store>| {
        let errors: Vec<(usize, &str)> = v
            .tool_errors()
            .map(|(turn, r)| (turn, r.outcome.as_ref().unwrap_err().kind()))
            .collect();
        assert_eq!(
            errors,
            [
                (1, "unknown_tool"),
                (1, "invalid_arguments"),
                (2, "tool_error")
            ]
        );
        assert_eq!(v.steps.len(), 3);
        assert_eq!(v.episode_calls.len(), 3);
        assert!(v.steps[2].is_answer());
        Verdict::ok()
    });
    let spec = spec(MultiTurnConfig::empty().final_rule(1.0, seen));
    let first = format!(
        "<think>x</think>\n<tool_call>\n{}\n</tool_call>",
        json!([{"name": "steal", "arguments": {}}, {"name": "lookup", "arguments": {"name": "lamp", "color": "red"}}])
    );
    let second = call("reserve", json!({"item_id": 1, "quantity": 2}));
    let (reward, _) = play(&spec, task(2, 5), &[&first, &second]);
    assert_eq!(reward, 1.0);
}

/// A reply is read whole: a turn header inside it (`<|im_start|>assistant`,
/// which a model can write) is text. The calls on either side of it run
/// (the transcript holds them), and the reward judges the whole reply:
/// here stray text beside a call, a format error. Read from the header on,
/// as a completion that holds its prompt is, what came before it was
/// ignored: the text, or a call that then never ran.
#[test]
fn a_turn_header_inside_a_reply_is_read_as_text() {
    let strict = spec(MultiTurnConfig::empty().final_rule(1.0, strict_reward()));
    let lookup = call("lookup", json!({"name": "lamp"}));
    let reserve = call("reserve", json!({"item_id": "ID", "quantity": 2})).replace("\"ID\"", "ID");
    let (reward, _) = play(&strict, task(2, 5), &[&lookup, &reserve]);
    assert_eq!(reward, 1.0);
    let hidden = format!("Sure.\n<|im_start|>assistant\n{lookup}");
    let (ep, _) = play_recorded(&strict, task(2, 5), &[&hidden, &reserve]);
    let last = &ep.steps.last().unwrap().info;
    assert_eq!(
        (ep.total_reward(), last.reason()),
        (0.0, Reason::FormatError),
        "{last:?}"
    );
    let before = format!("{lookup}\n<|im_start|>assistant\n<think>done</think>\nDone.");
    let (ep, _) = play_recorded(&strict, task(2, 5), &[&before]);
    let first = &ep.steps[0].info;
    assert_eq!(
        first.results.len(),
        1,
        "the call before the header ran: {first:?}"
    );
    assert_eq!(first.end, None, "{first:?}");
}

#[test]
fn all_of_makes_a_state_reward_non_gameable() {
    let strict = spec(MultiTurnConfig::empty().final_rule(1.0, strict_reward()));
    let state_only = spec(MultiTurnConfig::empty().final_rule(1.0, state_rule()));
    let lookup = call("lookup", json!({"name": "lamp"}));
    let reserve = call("reserve", json!({"item_id": "ID", "quantity": 9})).replace("\"ID\"", "ID");
    // Nine lamps, five in stock: the right outcome leaves the stock alone.
    let over = || task(9, 5);
    let cheats: [(&str, Vec<&str>, Reason); 4] = [
        ("answer at once", vec![DONE], Reason::MissingCall),
        (
            "unknown tool",
            vec!["<think>x</think>\n<tool_call>\n[{\"name\": \"nope\", \"arguments\": {}}]\n</tool_call>"],
            Reason::ToolError,
        ),
        (
            "broken JSON",
            vec!["<think>x</think>\n<tool_call>\n[{\"name\": \"lookup\",\n</tool_call>"],
            Reason::FormatError,
        ),
        (
            "loop",
            vec![lookup.as_str(), lookup.as_str(), lookup.as_str(), lookup.as_str()],
            Reason::Loop,
        ),
    ];
    for (what, script, reason) in cheats {
        let (gamed, _) = play(&state_only, over(), &script);
        assert_eq!(gamed, 1.0, "{what}: a state-only reward is gamed");
        let (reward, reasons) = play(&strict, over(), &script);
        assert_eq!((reward, *reasons.last().unwrap()), (0.0, reason), "{what}");
    }
    // The honest episode: look up, ask, get refused, say so.
    let (reward, reasons) = play(&strict, over(), &[&lookup, &reserve]);
    assert_eq!((reward, *reasons.last().unwrap()), (1.0, Reason::Ok));
    // And when the stock suffices, the reservation must go through.
    let reserve3 = reserve.replace("9", "3");
    let (reward, _) = play(&strict, task(3, 5), &[&lookup, &reserve3]);
    assert_eq!(reward, 1.0);
    let (reward, reasons) = play(&strict, task(3, 5), &[&lookup, DONE]);
    assert_eq!(
        (reward, *reasons.last().unwrap()),
        (0.0, Reason::MissingCall)
    );
}

#[test]
fn weighted_sum_and_gate_compose() {
    let partial = WeightedSum::new("partial")
        .with(0.5, asked_rule())
        .with(0.5, state_rule());
    let gated = Gate::new(
        NoToolErrors::strict(),
        WeightedSum::new("p").with(1.0, state_rule()),
    );
    let spec = spec(
        MultiTurnConfig::empty()
            .final_rule(1.0, partial)
            .final_rule(1.0, gated),
    );
    // Answering at once: the state is right (0.5), the evidence is not;
    // the gate passes (no errors) and pays the state (1.0).
    let mut env = spec.env(task(9, 5));
    env.reset(Some(1));
    let s = env.step(DONE);
    assert!((s.reward - 1.5).abs() < 1e-12, "{}", s.reward);
    assert_eq!(s.info.reason(), Reason::MissingCall);
    // An unknown tool closes the gate.
    let mut env = spec.env(task(9, 5));
    env.reset(Some(1));
    env.step(&call("nope", json!({})));
    let s = env.step(DONE);
    assert!((s.reward - 0.5).abs() < 1e-12, "{}", s.reward);
    assert_eq!(s.info.verdicts[1].verdict.reason, Reason::ToolError);
}

#[test]
fn episode_outcomes_have_their_own_reason_codes() {
    let spec = spec(
        MultiTurnConfig::empty()
            .max_turns(3)
            .final_rule(1.0, strict_reward()),
    );
    let lookup = call("lookup", json!({"name": "lamp"}));
    // Three lookups hit the turn limit first.
    let (_, reasons) = play(&spec, task(1, 5), &[&lookup, &lookup, &lookup]);
    assert_eq!(reasons.last(), Some(&Reason::TurnLimit));
    // A trainer's token budget.
    let mut env = spec.env(task(1, 5));
    env.reset(None);
    env.step(&lookup);
    let s = env.truncate(EndReason::TokenLimit);
    assert!(s.truncated && !s.terminated);
    assert_eq!(
        (s.info.end, s.info.reason()),
        (Some(EndReason::TokenLimit), Reason::TokenLimit)
    );
    assert_eq!(
        env.truncate(EndReason::TokenLimit).info.end,
        Some(EndReason::AlreadyOver)
    );
}

#[test]
fn run_episode_shorter_than_the_turn_limit_still_runs_final_rules() {
    let spec = spec(
        MultiTurnConfig::empty()
            .max_turns(8)
            .final_rule(1.0, state_rule()),
    );
    let mut env = spec.env(task(9, 5));
    let lookup = call("lookup", json!({"name": "lamp"}));
    let ep = run_episode(&mut env, 2, |_| lookup.clone());
    assert_eq!(ep.steps.len(), 3, "two steps, then the truncation step");
    assert_eq!(ep.end(), Some(EndReason::TurnLimit));
    // The state is untouched, which is right for nine lamps out of five.
    assert_eq!(ep.total_reward(), 1.0);
    assert_eq!(ep.steps[2].info.verdicts[0].rule, "stock-as-expected");
}

#[test]
fn zero_weight_rules_only_log() {
    let spec = spec(
        MultiTurnConfig::empty()
            .final_rule(
                0.0,
                FnRule::new("log-only", |_: &EpisodeView<'_, Store>| {
                    Verdict::fail(Reason::WrongName, "just logging")
                }),
            )
            .final_rule(1.0, state_rule()),
    );
    let mut env = spec.env(task(9, 5));
    env.reset(None);
    let s = env.step(DONE);
    assert_eq!((s.reward, s.info.reason()), (1.0, Reason::Ok));
}

#[test]
fn step_rewards_do_not_pay_for_padding_turns() {
    let lookup = call("lookup", json!({"name": "lamp"}));
    let total = |mode: StepRewards, pad: usize| {
        let spec = spec(
            MultiTurnConfig::empty()
                .step_rule(0.1, ReplyFormat::default())
                .step_rewards(mode),
        );
        let script: Vec<&str> = std::iter::repeat_n(lookup.as_str(), pad).collect();
        play(&spec, task(9, 5), &script).0
    };
    assert!((total(StepRewards::MeanAtEnd, 1) - total(StepRewards::MeanAtEnd, 5)).abs() < 1e-12);
    assert!((total(StepRewards::MinAtEnd, 1) - total(StepRewards::MinAtEnd, 5)).abs() < 1e-12);
    assert!(total(StepRewards::EveryStep, 5) > total(StepRewards::EveryStep, 1) + 0.3);
}

/// After a weak step, the mean pays for good turns that follow it (a
/// failure diluted); the minimum does not.
#[test]
fn the_minimum_of_the_steps_does_not_pay_for_diluting_a_weak_step() {
    let lookup = call("lookup", json!({"name": "lamp"}));
    let total = |mode: StepRewards, pad: usize| {
        let spec = spec(
            MultiTurnConfig::empty()
                .step_rule(1.0, ReplyFormat::default())
                .step_rewards(mode),
        );
        // A call with text beside its block: it runs, and fails the format.
        let weak = format!("{lookup}\nand some text");
        let mut script = vec![weak.as_str()];
        script.extend(std::iter::repeat_n(lookup.as_str(), pad));
        play(&spec, task(9, 8), &script).0
    };
    let (short, padded) = (
        total(StepRewards::MeanAtEnd, 1),
        total(StepRewards::MeanAtEnd, 5),
    );
    assert!(padded > short + 0.1, "mean: {short} then {padded}");
    assert_eq!(total(StepRewards::MinAtEnd, 1), 0.0);
    assert_eq!(total(StepRewards::MinAtEnd, 5), 0.0);
}

/// Step rewards paid at the end carry an earlier step's failure: the
/// episode's reason (its last step's) names it, so success and accuracy
/// do not count an episode the reward marked down (only the last step's
/// rules decided them).
#[test]
fn a_failed_earlier_step_decides_the_episodes_reason_when_paid_at_the_end() {
    let lookup = call("lookup", json!({"name": "lamp"}));
    let weak = format!("{lookup}\nand some text");
    let last_reason = |mode: StepRewards, script: &[&str]| {
        let spec = spec(
            MultiTurnConfig::empty()
                .step_rule(1.0, ReplyFormat::default())
                .step_rewards(mode),
        );
        let (ep, _) = play_recorded(&spec, task(9, 8), script);
        let last = ep.steps.last().unwrap();
        let v = last.info.main_verdict().unwrap().clone();
        (ep.total_reward(), v.reason, v.detail)
    };
    for mode in [StepRewards::MinAtEnd, StepRewards::MeanAtEnd] {
        let (reward, reason, detail) = last_reason(mode, &[weak.as_str(), lookup.as_str()]);
        assert!(reward < 1.0, "{mode:?}: {reward}");
        assert_eq!(reason, Reason::FormatError, "{mode:?}");
        assert!(detail.starts_with("turn 1: "), "{mode:?}: {detail}");
        // Every step well formed: ok.
        let (reward, reason, _) = last_reason(mode, &[lookup.as_str(), lookup.as_str()]);
        assert_eq!((reward, reason), (1.0, Reason::Ok), "{mode:?}");
    }
    // Paid at each step, each step's own verdict says it.
    let (_, reason, _) = last_reason(StepRewards::EveryStep, &[weak.as_str(), lookup.as_str()]);
    assert_eq!(reason, Reason::Ok);
}

#[test]
fn the_last_observation_is_a_transcript() {
    let spec = spec(MultiTurnConfig::empty());
    let mut env = spec.env(task(1, 5));
    let first = env.reset(None);
    assert!(first.prompt.ends_with("<|im_start|>assistant\n"));
    let s = env.step(DONE);
    assert!(s.done());
    assert!(
        s.observation.prompt.ends_with("Done.<|im_end|>\n"),
        "{}",
        s.observation.prompt
    );
    assert!(!s.observation.prompt.ends_with("assistant\n"));
}

/// The property a token-level trainer relies on: each prompt is the
/// previous prompt, the reply exactly as written, the end-of-turn token,
/// then what the environment adds.
#[test]
fn prompts_extend_with_the_reply_as_written() {
    let lookup = call("lookup", json!({"name": "lamp"}));
    let replies = [
        format!("{lookup} \n"),
        "<think>x</think>\n<tool_call>\n[{\"name\": \"reserve\", \"arguments\": {\"item_id\": 0}}]\n</tool_call>\t".to_string(),
        "<think>x</think>\n<tool_call>\n[{\"name\": \"lookup\",\n</tool_call>".to_string(),
        "  <think>done</think>\nDone.  ".to_string(),
    ];
    for template in [
        ChatMlTemplate::tool_n1_multi_turn(),
        ChatMlTemplate::compact_multi_turn(),
        ChatMlTemplate::tool_n1(),
        ChatMlTemplate::qwen2_5(),
    ] {
        let spec = MultiTurnSpec::seeded(
            registry(),
            Arc::new(template.clone()),
            MultiTurnConfig::empty()
                .max_turns(10)
                .on_format_error(toolgym_env::env::FormatErrorPolicy::Feedback),
            store,
        );
        let mut env = spec.env(task(1, 5));
        let mut prompt = env.reset(Some(3)).prompt;
        for (i, r) in replies.iter().enumerate() {
            // With or without the end token, the reply is kept as written.
            let action = if i % 2 == 0 {
                format!("{r}<|im_end|>")
            } else {
                r.clone()
            };
            let s = env.step(&action);
            let next = s.observation.prompt;
            let expected = format!("{prompt}{r}<|im_end|>");
            assert!(
                next.starts_with(&expected),
                "{}: turn {i}\n{next:?}\ndoes not start with\n{expected:?}",
                template.name
            );
            prompt = next;
        }
    }
}

#[test]
fn seeds_reach_the_state_and_the_rules() {
    let saw_seed = FnRule::new("seed", |v: &EpisodeView<'_, Store>| {
        Verdict::new(v.seed as f64, Reason::Ok, "")
    });
    let spec = spec(MultiTurnConfig::empty().final_rule(1.0, saw_seed));
    let t = task(1, 5);
    let mut a = spec.env(t.clone());
    let mut b = spec.env(t.clone());
    a.reset(Some(7));
    b.reset(Some(7));
    assert_eq!(a.state(), b.state());
    b.reset(Some(8));
    assert_ne!(a.state(), b.state());
    assert_eq!(a.step(DONE).reward, 7.0);
    // No seed: one derived from the task, the same every time.
    a.reset(None);
    b.reset(None);
    assert_eq!(a.state(), b.state());
    assert_eq!(a.seed(), b.seed());
}

#[test]
fn an_episode_builds_its_state_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static BUILT: AtomicUsize = AtomicUsize::new(0);
    let spec = MultiTurnSpec::seeded(
        registry(),
        Arc::new(ChatMlTemplate::compact_multi_turn()),
        MultiTurnConfig::empty(),
        |task, seed| {
            BUILT.fetch_add(1, Ordering::SeqCst);
            store(task, seed)
        },
    );
    let t = task(1, 5);
    // Made, then reset with the trainer's seed: one build, with that seed.
    let mut env = spec.env(t.clone());
    assert_eq!(BUILT.load(Ordering::SeqCst), 0);
    env.reset(Some(7));
    assert_eq!(BUILT.load(Ordering::SeqCst), 1);
    assert_eq!(env.state(), &store(&t, 7));
    env.step(DONE);
    assert_eq!(BUILT.load(Ordering::SeqCst), 1);
    // Used without a reset: built on first use, from the task's seed.
    let fresh = spec.env(t.clone());
    let mut reset = spec.env(t.clone());
    reset.reset(None);
    assert_eq!(fresh.state(), reset.state());
    assert_eq!(BUILT.load(Ordering::SeqCst), 3);
}

#[test]
fn strict_schemas_bounds_and_typed_handlers_reject_bad_arguments() {
    let reg = registry();
    let mut s = store(&task(1, 5), 0);
    let bad = [json!({"name": "lamp", "colour": "red"}), json!({"name": 3})];
    for args in bad {
        let e = reg.call(&Call::new("lookup", args.clone()).unwrap(), &mut s);
        assert_eq!(e.unwrap_err().kind(), "invalid_arguments", "{args}");
    }
    let zero = Call::new("reserve", json!({"item_id": 100, "quantity": 0})).unwrap();
    assert_eq!(
        reg.call(&zero, &mut s).unwrap_err().kind(),
        "invalid_arguments"
    );
    let ok = Call::new("reserve", json!({"item_id": 100, "quantity": 2})).unwrap();
    assert_eq!(reg.call(&ok, &mut s).unwrap(), json!({"left": 3}));
}

#[test]
fn a_solver_demonstrates_whole_episodes() {
    let spec = spec(MultiTurnConfig::empty().final_rule(1.0, strict_reward())).with_solver(
        |v: &EpisodeView<'_, Store>| {
            let want = want(v);
            match v.results_of("lookup").next() {
                None => Some(Action::call(
                    "Find the lamp's id.",
                    vec![Call::new("lookup", json!({"name": "lamp"})).ok()?],
                )),
                Some(r) if !v.episode_calls.iter().any(|c| c.name == "reserve") => {
                    Some(Action::call(
                        "Reserve them.",
                        vec![Call::new(
                            "reserve",
                            json!({"item_id": r["item_id"], "quantity": want}),
                        )
                        .ok()?],
                    ))
                }
                Some(_) => Some(Action::answer("Reserved or refused.", "Done.")),
            }
        },
    );
    for (w, stock) in [(3, 5), (9, 5)] {
        let mut env = spec.env(task(w, stock));
        env.reset(Some(w as u64));
        let mut last = None;
        let mut turns = 0;
        while let Some(reply) = env.demonstration() {
            assert!(reply.ends_with("<|im_end|>"));
            last = Some(env.step(&reply));
            turns += 1;
        }
        let last = last.unwrap();
        assert_eq!((turns, last.reward), (3, 1.0), "{w} of {stock}");
        assert_eq!(last.info.end, Some(EndReason::Answered));
    }
}

/// An episode scored by the multi-turn env (every reply well formed, the
/// episode's calls match the ground truth) and the same replies scored by
/// the reward crate's `score_episode` (what TRL's `turn="all"` uses) agree;
/// so does the env rule that wraps it (`EpisodeReward`), partial credit
/// included.
#[test]
fn the_env_and_the_reward_crates_episode_scoring_agree() {
    use toolgym_env::env::{CallsMatch, EpisodeReward};
    use toolgym_reward::{rule_by_name, RewardRule};
    let config = MultiTurnConfig::empty().final_rule(
        1.0,
        AllOf::new("calls-and-format")
            .with(EveryReply(ReplyFormat::default()))
            .with(CallsMatch::default()),
    );
    let spec = spec(config);
    let wrapped = |name: &str| {
        let rule = Arc::from(rule_by_name(name).unwrap());
        self::spec(MultiTurnConfig::empty().final_rule(1.0, EpisodeReward(rule)))
    };
    let (binary_spec, fine_spec) = (wrapped("binary"), wrapped("fine-grained"));
    let lamp = || json!({"name": "lamp"});
    // The item id the store draws for seed 42 (see `store`).
    let reserve = |id: i64| json!({"item_id": id, "quantity": 2});
    let truth = vec![
        Call::new("lookup", lamp()).unwrap(),
        Call::new("reserve", reserve(142)).unwrap(),
    ];
    let lookup = call("lookup", lamp());
    let reserve_id =
        call("reserve", json!({"item_id": "ID", "quantity": 2})).replace("\"ID\"", "ID");
    let both =
        ChatMlTemplate::compact().render_reply(Some("both"), &[truth[1].clone(), truth[0].clone()]);
    let scripts: Vec<(&str, Vec<String>, f64)> = vec![
        (
            "look up, reserve, answer",
            vec![lookup.clone(), reserve_id.clone(), DONE.into()],
            1.0,
        ),
        ("both calls in one reply", vec![both, DONE.into()], 1.0),
        (
            "a turn header inside a reply",
            vec![
                format!("Sure.\n<|im_start|>assistant\n{lookup}"),
                reserve_id.clone(),
                DONE.into(),
            ],
            0.0,
        ),
        ("a step left out", vec![lookup.clone(), DONE.into()], 0.0),
        (
            "an answer without think",
            vec![lookup.clone(), reserve_id.clone(), "Done.".into()],
            0.0,
        ),
        (
            "text beside a call",
            vec![format!("Sure. {lookup}"), reserve_id.clone(), DONE.into()],
            0.0,
        ),
        (
            "a broken block",
            vec!["<think>x</think><tool_call>[{\"name\": </tool_call>".into()],
            0.0,
        ),
        (
            "a wrong quantity",
            vec![lookup.clone(), reserve_id.replace("2}", "3}"), DONE.into()],
            0.0,
        ),
    ];
    let binary = rule_by_name("binary").unwrap();
    let fine = rule_by_name("fine-grained").unwrap();
    let mut partial = 0;
    for (what, script, expected) in scripts {
        let mut t = (*task(2, 5)).clone();
        t.ground_truth = truth.clone();
        let t = Arc::new(t);
        let script: Vec<&str> = script.iter().map(String::as_str).collect();
        let (ep, replies) = play_recorded(&spec, t.clone(), &script);
        let turns: Vec<&str> = replies.iter().map(String::as_str).collect();
        let scored = binary.score_episode(&turns, &truth).unwrap();
        assert_eq!(
            ep.total_reward(),
            expected,
            "{what}: env {:?}",
            ep.steps.last().map(|s| &s.info)
        );
        assert_eq!(scored.reward, expected, "{what}: {scored:?}");
        let (wrapped_ep, same) = play_recorded(&binary_spec, t.clone(), &script);
        assert_eq!(
            (wrapped_ep.total_reward(), &same),
            (expected, &replies),
            "{what}"
        );
        let (fine_ep, _) = play_recorded(&fine_spec, t, &script);
        let fine_scored = fine.score_episode(&turns, &truth).unwrap().reward;
        assert_eq!(fine_ep.total_reward(), fine_scored, "{what}");
        partial += usize::from(fine_scored > 0.0 && fine_scored < 1.0);
    }
    assert!(partial > 0, "no script earned partial credit");
    // A rule without episode semantics says so in the verdict.
    let script_rule = Arc::from(rule_by_name("tool-n1").unwrap());
    let spec = self::spec(MultiTurnConfig::empty().final_rule(1.0, EpisodeReward(script_rule)));
    let (ep, _) = play_recorded(&spec, task(2, 5), &[]);
    let last = &ep.steps.last().unwrap().info;
    assert_eq!(
        (ep.total_reward(), last.reason()),
        (0.0, Reason::InputError),
        "{last:?}"
    );
}
