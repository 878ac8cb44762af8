//! Property tests: reordering calls or object keys never changes a reward,
//! scoring is deterministic, the reason agrees with the reward, and no
//! input panics.

use proptest::prelude::*;
use serde_json::{Map, Value};
use toolgym_reward::{rule_by_name, Call, Completion, Reason, RULES};

/// JSON values without floats that serialise ambiguously.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-zA-Z0-9 ,\\[\\]{}\"'<>é😀]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn call() -> impl Strategy<Value = Call> {
    (
        prop::sample::select(vec!["get_weather", "add", "search", "convert"]),
        prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..4),
    )
        .prop_map(|(name, args)| Call {
            name: name.to_string(),
            arguments: args.into_iter().collect::<Map<_, _>>(),
        })
}

/// Writes JSON with object keys in an order decided by `seed`.
fn write_shuffled(v: &Value, seed: &mut u64, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            // Fisher-Yates with a tiny LCG driven by the seed.
            for i in (1..keys.len()).rev() {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                keys.swap(i, (*seed >> 33) as usize % (i + 1));
            }
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push_str(": ");
                write_shuffled(&m[k], seed, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_shuffled(x, seed, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `calls` in an order decided by `seed`.
fn permuted(calls: &[Call], seed: u64) -> Vec<Call> {
    let mut out = calls.to_vec();
    let mut s = seed;
    for i in (1..out.len()).rev() {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
        out.swap(i, (s >> 33) as usize % (i + 1));
    }
    out
}

fn render(calls: &[Call], seed: u64) -> String {
    let list = Value::Array(
        calls
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect(),
    );
    let mut s = String::new();
    write_shuffled(&list, &mut seed.clone(), &mut s);
    format!("<think>reasoning</think>\n<tool_call>\n{s}\n</tool_call>")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn reordering_never_changes_the_reward(
        truth in prop::collection::vec(call(), 0..4),
        predicted in prop::collection::vec(call(), 0..4),
        use_truth in any::<bool>(),
        perm_seed in any::<u64>(),
        key_seed_a in any::<u64>(),
        key_seed_b in any::<u64>(),
    ) {
        let base = if use_truth { truth.clone() } else { predicted };
        let shuffled = permuted(&base, perm_seed);
        let a = render(&base, key_seed_a);
        let b = render(&shuffled, key_seed_b);
        for (name, _) in RULES {
            let rule = rule_by_name(name).unwrap();
            let va = rule.score(&a, &truth);
            let vb = rule.score(&b, &truth);
            prop_assert_eq!(va.reward, vb.reward, "{} on\n{}\nvs\n{}", name, a, b);
            if use_truth {
                prop_assert_eq!(va.reward, 1.0, "{}: the truth itself must score 1: {}", name, a);
            }
        }
    }

    /// Above `matcher::GREEDY_LIMIT` calls exact matching compares sorted
    /// canonical keys: key order must not reach them.
    #[test]
    fn reordering_keys_never_changes_the_reward_of_many_calls(
        truth in prop::collection::vec(call(), 33..40),
        perm_seed in any::<u64>(),
        key_seed in any::<u64>(),
    ) {
        let shuffled = permuted(&truth, perm_seed);
        // The truth's maps in another insertion order.
        let list = render(&truth, key_seed);
        let list = list["<think>reasoning</think>\n<tool_call>\n".len()..]
            .trim_end_matches("\n</tool_call>");
        let reordered = Call::list_from_json(list).unwrap();
        let text = render(&shuffled, key_seed ^ 1);
        for (name, _) in RULES {
            let rule = rule_by_name(name).unwrap();
            prop_assert_eq!(rule.score(&text, &truth).reward, 1.0, "{}", name);
            prop_assert_eq!(rule.score(&text, &reordered).reward, 1.0, "{}", name);
        }
    }

    #[test]
    fn scoring_is_deterministic_and_reasons_agree(
        text in "(<think>|</think>|<tool_call>|</tool_call>|\\[|\\]|\\{|\\}|\"name\"|\"arguments\"|: |, |\"add\"|1|\\s|[a-z]){0,40}",
        truth in prop::collection::vec(call(), 0..3),
    ) {
        for (name, _) in RULES {
            let rule = rule_by_name(name).unwrap();
            let v1 = rule.score(&text, &truth);
            let v2 = rule.score(&text, &truth);
            prop_assert_eq!(&v1, &v2);
            prop_assert!((0.0..=1.0 + 1e-12).contains(&v1.reward));
            // Full reward iff the reason is ok.
            prop_assert_eq!(v1.reward >= 1.0 - 1e-12, v1.reason == Reason::Ok, "{}: {:?}", name, v1);
        }
    }

    #[test]
    fn parser_never_panics(text in any::<String>()) {
        let c = Completion::parse(&text);
        let _ = c.first_error(true, false);
        for (name, _) in RULES {
            let _ = rule_by_name(name).unwrap().score(&text, &[]);
        }
    }
}
