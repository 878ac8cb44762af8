//! The built-in synthetic environment: determinism, held-out splits,
//! knobs, and consistency with the reward and the tool registry.

use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use toolgym_env::synthetic::{self, ConfigError, Split, SyntheticConfig, SyntheticTasks};
use toolgym_env::{
    ChatMlTemplate, ChatTemplate, MultiTurnConfig, MultiTurnSpec, Sampler, SingleTurnSpec,
    TaskSource, ToolEnv,
};

fn gen(config: SyntheticConfig) -> SyntheticTasks {
    SyntheticTasks::new(config).unwrap()
}

#[test]
fn same_seed_same_tasks_other_seed_other_tasks() {
    let a = gen(SyntheticConfig::tiny(1));
    let b = gen(SyntheticConfig::tiny(1));
    let c = gen(SyntheticConfig::tiny(2));
    for i in 0..200 {
        assert_eq!(a.task(Split::Train, i), b.task(Split::Train, i));
        assert_eq!(a.task(Split::Validation, i), b.task(Split::Validation, i));
    }
    let differ = (0..50)
        .filter(|&i| a.task(Split::Train, i) != c.task(Split::Train, i))
        .count();
    assert!(differ > 40);
    let mut s1 = Sampler::new(Arc::new(a.split(Split::Train)), 5);
    let mut s2 = Sampler::new(Arc::new(b.split(Split::Train)), 5);
    assert_eq!(s1.next_batch(16), s2.next_batch(16));
}

/// The argument values of a task, as JSON texts.
fn values(t: &toolgym_env::Task) -> Vec<String> {
    t.ground_truth
        .iter()
        .flat_map(|c| c.arguments.values().map(|v| v.to_string()))
        .collect()
}

#[test]
fn validation_is_held_out_by_template_and_by_value() {
    for config in [
        SyntheticConfig::tiny(3),
        SyntheticConfig::standard(4),
        SyntheticConfig::hard(5),
    ] {
        let g = gen(config);
        let train_templates = g.templates(Split::Train);
        let val_templates = g.templates(Split::Validation);
        for (tool, val) in &val_templates {
            assert!(!val.is_empty(), "{tool} has no held-out template");
            assert!(!train_templates[tool].is_empty());
            for t in val {
                assert!(!train_templates[tool].contains(t));
            }
        }
        let held: HashSet<String> = g
            .held_out_values()
            .values()
            .flatten()
            .map(Value::to_string)
            .collect();
        let train_vals: HashSet<String> = g
            .train_values()
            .values()
            .flatten()
            .map(Value::to_string)
            .collect();
        let train = g.dataset(Split::Train, 2000);
        let val = g.dataset(Split::Validation, 300);
        let train_queries: HashSet<&str> = train.tasks().iter().filter_map(|t| t.query()).collect();
        for t in train.tasks() {
            for v in values(t) {
                assert!(
                    !held.contains(&v) || train_vals.contains(&v),
                    "held-out {v} in train task {}",
                    t.id
                );
            }
        }
        let mut with_calls = 0;
        for t in val.tasks() {
            assert!(
                !train_queries.contains(t.query().unwrap()),
                "{:?} also in train",
                t.query()
            );
            for v in values(t) {
                with_calls += 1;
                assert!(
                    held.contains(&v),
                    "validation value {v} of {} is not held out",
                    t.id
                );
            }
        }
        assert!(with_calls > 100);
    }
}

#[test]
fn mix_of_single_parallel_and_no_call_tasks_follows_the_knobs() {
    let mut config = SyntheticConfig::standard(9);
    config.parallel_share = 0.3;
    config.no_call_share = 0.2;
    config.distractors = (2, 2);
    let g = gen(config);
    let n = 2000;
    let (mut none, mut parallel) = (0, 0);
    for i in 0..n {
        let t = g.task(Split::Train, i);
        let called: HashSet<&str> = t.ground_truth.iter().map(|c| c.name.as_str()).collect();
        let offered: Vec<&str> = t.tools.iter().map(|s| s.name.as_str()).collect();
        assert!(called.iter().all(|c| offered.contains(c)), "{}", t.id);
        match t.ground_truth.len() {
            0 => {
                none += 1;
                assert_eq!(offered.len(), 2);
            }
            1 => assert_eq!(offered.len(), 3),
            _ => {
                parallel += 1;
                assert_eq!(offered.len(), called.len() + 2);
            }
        }
        let unique: HashSet<&str> = offered.iter().copied().collect();
        assert_eq!(unique.len(), offered.len());
    }
    let share = |k: usize| k as f64 / n as f64;
    assert!((share(none) - 0.2).abs() < 0.04, "{none}");
    assert!((share(parallel) - 0.3).abs() < 0.04, "{parallel}");

    let mut tiny = SyntheticConfig::tiny(0);
    tiny.families = vec!["arithmetic".into()];
    tiny.no_call_share = 0.0;
    tiny.parallel_share = 0.0;
    let g = gen(tiny);
    for i in 0..100 {
        let t = g.task(Split::Train, i);
        assert!(["add", "multiply"].contains(&t.ground_truth[0].name.as_str()));
        for v in values(&t) {
            let n: i64 = v.parse().unwrap();
            assert!((1..=20).contains(&n));
        }
    }
}

#[test]
fn bad_configs_are_rejected() {
    let mut c = SyntheticConfig::tiny(0);
    c.families = vec!["astrology".into()];
    assert!(matches!(
        SyntheticTasks::new(c),
        Err(ConfigError::UnknownFamily { .. })
    ));
    let mut c = SyntheticConfig::tiny(0);
    c.parallel_share = 0.7;
    c.no_call_share = 0.7;
    assert!(SyntheticTasks::new(c).is_err());
    let mut c = SyntheticConfig::tiny(0);
    c.distractors = (3, 1);
    assert!(SyntheticTasks::new(c).is_err());
    let mut c = SyntheticConfig::tiny(0);
    c.number_max = 1;
    assert!(SyntheticTasks::new(c).is_err());
    // max_parallel 0 or 1 was widened to 2 without a word; a huge one
    // asked for tasks of millions of calls.
    for max_parallel in [0, 1, 65] {
        let mut c = SyntheticConfig::tiny(0);
        assert!(c.parallel_share > 0.0);
        c.max_parallel = max_parallel;
        assert!(
            matches!(SyntheticTasks::new(c), Err(ConfigError::MaxParallel(n)) if n == max_parallel)
        );
    }
    let mut c = SyntheticConfig::tiny(0);
    (c.parallel_share, c.max_parallel) = (0.0, 0);
    assert!(SyntheticTasks::new(c).is_ok(), "no parallel task asked for");
    // Refused, not capped: numbers past the listed range never appeared,
    // and a vocabulary of fewer than 2 words was widened to 2.
    let mut c = SyntheticConfig::tiny(0);
    c.number_max = synthetic::MAX_NUMBER + 1;
    let e = SyntheticTasks::new(c).err().unwrap().to_string();
    assert_eq!(e, "number_max must be from 4 to 100000, got 100001");
    let mut c = SyntheticConfig::tiny(0);
    c.number_max = synthetic::MAX_NUMBER;
    assert!(SyntheticTasks::new(c).is_ok());
    for n in [0, 1] {
        let mut c = SyntheticConfig::tiny(0);
        c.vocab_limit = Some(n);
        let e = SyntheticTasks::new(c).err().unwrap().to_string();
        assert_eq!(e, format!("vocab_limit must be at least 2, got {n}"));
    }
}

#[test]
fn canonical_replies_score_one_and_calls_are_valid() {
    let registry = synthetic::registry();
    for config in [SyntheticConfig::tiny(11), SyntheticConfig::hard(12)] {
        let g = gen(config);
        for template in [
            ChatMlTemplate::compact(),
            ChatMlTemplate::tool_n1(),
            ChatMlTemplate::compact_no_reasoning(),
        ] {
            let spec = SingleTurnSpec::for_template(template);
            for split in [Split::Train, Split::Validation] {
                for i in 0..100 {
                    let t = g.task(split, i);
                    assert_eq!(spec.score(&t, &spec.target(&t)).reward, 1.0, "{}", t.id);
                    for c in &t.ground_truth {
                        registry
                            .validate(c)
                            .unwrap_or_else(|e| panic!("{}: {e}", t.id));
                    }
                }
            }
        }
    }
}

#[test]
fn prompts_stay_short_for_the_tiny_demo() {
    let g = gen(SyntheticConfig::tiny(0));
    let t = ChatMlTemplate::compact();
    let lens: Vec<usize> = (0..200)
        .map(|i| t.prompt(&g.task(Split::Train, i)).len())
        .collect();
    let mean = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
    assert!(mean < 450.0, "mean prompt length {mean}");
    let corpus = g.tokenizer_corpus(&t, 50);
    assert_eq!(corpus.len(), 50);
    assert!(corpus
        .iter()
        .all(|s| s.ends_with("<|im_end|>") && s.contains("<|im_start|>assistant\n<think>")));
}

#[test]
fn synthetic_tools_execute_in_multi_turn_episodes() {
    let g = gen(SyntheticConfig::standard(1));
    let spec = MultiTurnSpec::new(
        synthetic::registry(),
        Arc::new(ChatMlTemplate::compact()),
        MultiTurnConfig::default().max_turns(3),
        |_| synthetic::SyntheticState::default(),
    );
    let template = ChatMlTemplate::compact();
    let mut seen_ok = 0;
    for i in 0..60 {
        let task = g.split(Split::Train).get(i).unwrap();
        let mut env = spec.env(task.clone());
        env.reset(None);
        let step = env.step(&template.target(&task));
        if task.ground_truth.is_empty() {
            // `[]` is an answer without a call: the episode ends, calls match.
            assert!(step.terminated);
            assert_eq!(step.reward, 1.0);
            continue;
        }
        for r in &step.info.results {
            if r.is_ok() {
                seen_ok += 1;
            } else {
                // Only impossible unit conversions fail.
                assert_eq!(r.call.name, "convert_units", "{:?}", r.outcome);
            }
        }
        let done = env.step("<think>done</think>All set.");
        assert_eq!(done.reward, 1.0, "{}", task.id);
    }
    assert!(seen_ok > 30);
}

#[test]
fn integer_arguments_written_as_whole_floats_are_read_as_integers() {
    // JSON Schema's "integer" takes 2.0: the schema check passes it, so the
    // handlers must read it as 2 (they read 0 before, with no error).
    let registry = synthetic::registry();
    let mut state = synthetic::SyntheticState::default();
    let mut call = |name: &str, args: Value| {
        let call = toolgym_reward::Call {
            name: name.into(),
            arguments: args.as_object().unwrap().clone(),
        };
        registry.call(&call, &mut state)
    };
    use serde_json::json;
    assert_eq!(call("add", json!({"a": 2.0, "b": 3})).unwrap(), json!(5));
    assert_eq!(
        call("multiply", json!({"a": 4.0, "b": -2.0})).unwrap(),
        json!(-8)
    );
    let reminder = call("set_reminder", json!({"minutes": 30.0, "text": "tea"}));
    assert_eq!(reminder.unwrap()["in_minutes"], json!(30));
    let weather = call("get_weather", json!({"city": "Oslo", "days": 3.0})).unwrap();
    assert_eq!(weather["temperatures_c"].as_array().unwrap().len(), 3);
    // A whole number past 64 bits is an integer to the schema, not to the tool.
    let far = call("add", json!({"a": 1e30, "b": 1}))
        .unwrap_err()
        .to_string();
    assert!(far.contains("a = 1e+30 is not a 64-bit integer"), "{far}");
}
