//! The paper's binary rule, its ablations and the parser behind them.

use serde_json::json;
use toolgym_reward::{
    rule_by_name, AllOf, BinaryRule, Call, Completion, Diagnostic, FineGrainedRule, FormatPolicy,
    Matcher, Reason, RewardRule, Severity, WeightedSum,
};

fn call(name: &str, args: serde_json::Value) -> Call {
    Call::new(name, args).unwrap()
}

fn weather() -> Vec<Call> {
    vec![call("get_weather", json!({"city": "Paris", "days": 3}))]
}

fn reply(payload: &str) -> String {
    format!("<think>The user wants the weather.</think>\n<tool_call>\n{payload}\n</tool_call>")
}

fn score(rule: &str, completion: &str, truth: &[Call]) -> (f64, Reason) {
    let v = rule_by_name(rule).unwrap().score(completion, truth);
    (v.reward, v.reason)
}

#[test]
fn accepts_every_payload_form() {
    let truth = weather();
    for payload in [
        r#"[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]"#,
        r#"{"name": "get_weather", "arguments": {"days": 3, "city": "Paris"}}"#,
        r#""[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}]""#,
        r#"[{"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 3}"}]"#,
        r#"[{"arguments": {"city": "Paris", "days": 3}, "name": "get_weather", "id": "x"}]"#,
    ] {
        assert_eq!(
            score("binary", &reply(payload), &truth),
            (1.0, Reason::Ok),
            "{payload}"
        );
    }
    // Qwen2.5 / Hermes native form: one block per call.
    let truth = vec![call("a", json!({})), call("b", json!({"x": [1, 2]}))];
    let native = "<think>two calls</think>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"x\": [1, 2]}}\n</tool_call>\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call><|im_end|>";
    assert_eq!(score("binary", native, &truth), (1.0, Reason::Ok));
}

#[test]
fn cuts_at_the_last_assistant_marker() {
    let prompt = "<|im_start|>system\n<think>x</think><tool_call>[]</tool_call><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n";
    let full = format!(
        "{prompt}<|im_start|>assistant\n{}",
        reply(r#"[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]"#)
    );
    assert_eq!(score("binary", &full, &weather()), (1.0, Reason::Ok));
    // Without the cut, the prompt's blocks are stray text.
    let rule = BinaryRule {
        format: FormatPolicy {
            parse: toolgym_reward::ParseOptions {
                cut_at_assistant_marker: false,
            },
            ..FormatPolicy::default()
        },
        ..BinaryRule::default()
    };
    assert_eq!(rule.score(&full, &weather()).reason, Reason::FormatError);
    // A marker a string argument spells is not a turn: nothing is cut.
    let said = vec![call("say", json!({"t": "<|im_start|>assistant\nhi"}))];
    let own = reply(r#"[{"name": "say", "arguments": {"t": "<|im_start|>assistant\nhi"}}]"#);
    for text in [own.clone(), format!("{prompt}<|im_start|>assistant\n{own}")] {
        assert_eq!(score("binary", &text, &said), (1.0, Reason::Ok), "{text}");
    }
}

#[test]
fn format_errors_are_named() {
    let truth = weather();
    let good = r#"[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]"#;
    type Check = fn(&Diagnostic) -> bool;
    let cases: Vec<(String, Check)> = vec![
        (format!("<tool_call>{good}</tool_call>"), |d| {
            matches!(d, Diagnostic::MissingThink)
        }),
        (format!("<think>a<tool_call>{good}</tool_call>"), |d| {
            matches!(d, Diagnostic::UnterminatedThink { .. })
        }),
        (format!("<think>a</think><tool_call>{good}"), |d| {
            matches!(d, Diagnostic::UnterminatedToolCall { .. })
        }),
        (
            format!("<think>a</think><think>b</think><tool_call>{good}</tool_call>"),
            |d| matches!(d, Diagnostic::RepeatedThink { .. }),
        ),
        // An end-of-turn token before a block is text: nothing after a
        // turn's end belongs to it (at the end it is no text).
        (
            format!("<think>a</think><|im_end|><tool_call>{good}</tool_call>"),
            |d| matches!(d, Diagnostic::TextOutsideBlocks { .. }),
        ),
        (
            format!("<|endoftext|><think>a</think><tool_call>{good}</tool_call>"),
            |d| matches!(d, Diagnostic::TextOutsideBlocks { .. }),
        ),
        (
            format!("<think>a <think> b</think><tool_call>{good}</tool_call>"),
            |d| matches!(d, Diagnostic::NestedTag { .. }),
        ),
        (
            format!("<tool_call>{good}</tool_call><think>late</think>"),
            |d| {
                matches!(
                    d,
                    Diagnostic::ThinkAfterToolCall { .. } | Diagnostic::MissingThink
                )
            },
        ),
        (
            format!("<think>a</think>Sure! <tool_call>{good}</tool_call>"),
            |d| matches!(d, Diagnostic::TextOutsideBlocks { .. }),
        ),
        (
            format!("<think>a</think></think><tool_call>{good}</tool_call>"),
            |d| matches!(d, Diagnostic::StrayClosingTag { .. }),
        ),
        ("<think>a</think> I don't know.".to_string(), |d| {
            matches!(
                d,
                Diagnostic::MissingToolCall | Diagnostic::TextOutsideBlocks { .. }
            )
        }),
    ];
    for (text, expected) in cases {
        let v = BinaryRule::default().score(&text, &truth);
        assert_eq!((v.reward, v.reason), (0.0, Reason::FormatError), "{text}");
        let c = Completion::parse(&text);
        let d = c.first_error(true, false).expect("an error");
        assert!(expected(d), "{text}: {d:?}");
        assert!(!v.detail.is_empty());
    }
}

#[test]
fn payload_errors_are_json_or_schema() {
    let truth = weather();
    for (payload, reason) in [
        (
            r#"[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}"#,
            Reason::JsonError,
        ),
        ("", Reason::JsonError),
        (
            r#"[{"name": "x", "arguments": {"v": NaN}}]"#,
            Reason::JsonError,
        ),
        ("5", Reason::SchemaError),
        (r#"[1, 2]"#, Reason::SchemaError),
        (r#"[{"arguments": {}}]"#, Reason::SchemaError),
        (r#"[{"name": "get_weather"}]"#, Reason::SchemaError),
        (
            r#"[{"name": "get_weather", "arguments": [1]}]"#,
            Reason::SchemaError,
        ),
        (
            r#"[{"name": "get_weather", "arguments": "not json"}]"#,
            Reason::SchemaError,
        ),
        (r#""\"\"""#, Reason::SchemaError),
    ] {
        assert_eq!(
            score("binary", &reply(payload), &truth),
            (0.0, reason),
            "{payload}"
        );
    }
    let c = Completion::parse("<think>a</think><tool_call>\n[1,\n 2</tool_call>");
    let Some(Diagnostic::InvalidJson { line, .. }) = c.first_error(true, false) else {
        panic!("{:?}", c.diagnostics)
    };
    assert_eq!(*line, 2);
}

#[test]
fn matching_is_an_order_free_multiset() {
    let truth = vec![
        call("f", json!({"a": 1, "b": {"x": [1, 2], "y": null}})),
        call("f", json!({"a": 2})),
        call("g", json!({})),
    ];
    let ok = r#"[{"name": "g", "arguments": {}}, {"name": "f", "arguments": {"a": 2}}, {"name": "f", "arguments": {"b": {"y": null, "x": [1, 2]}, "a": 1}}]"#;
    assert_eq!(score("binary", &reply(ok), &truth), (1.0, Reason::Ok));
    let cases = [
        (
            r#"[{"name": "g", "arguments": {}}, {"name": "f", "arguments": {"a": 2}}]"#,
            Reason::MissingCall,
        ),
        (
            r#"[{"name": "g", "arguments": {}}, {"name": "g", "arguments": {}}, {"name": "f", "arguments": {"a": 2}}, {"name": "f", "arguments": {"a": 1}}]"#,
            Reason::ExtraCall,
        ),
        (
            r#"[{"name": "g", "arguments": {}}, {"name": "f", "arguments": {"a": 2}}, {"name": "f", "arguments": {"a": 1, "b": {"x": [2, 1], "y": null}}}]"#,
            Reason::WrongArgs,
        ),
        (
            r#"[{"name": "g", "arguments": {}}, {"name": "f", "arguments": {"a": 2}}, {"name": "f", "arguments": {"a": 1.0, "b": {"x": [1, 2], "y": null}}}]"#,
            Reason::WrongArgs,
        ),
        (
            r#"[{"name": "g", "arguments": {}}, {"name": "g", "arguments": {"a": 2}}, {"name": "f", "arguments": {"a": 1}}]"#,
            Reason::WrongName,
        ),
        // Same multiset of names but counts matter: f,f,g vs f,g,g.
        (
            r#"[{"name": "f", "arguments": {"a": 2}}, {"name": "g", "arguments": {}}, {"name": "g", "arguments": {}}]"#,
            Reason::WrongName,
        ),
    ];
    for (payload, reason) in cases {
        assert_eq!(
            score("binary", &reply(payload), &truth),
            (0.0, reason),
            "{payload}"
        );
    }
}

#[test]
fn numbers_exact_or_tolerant() {
    let truth = vec![call("f", json!({"x": 1, "y": 0.5, "z": true}))];
    let as_float = reply(r#"[{"name": "f", "arguments": {"x": 1.0, "y": 0.5, "z": true}}]"#);
    let bool_as_int = reply(r#"[{"name": "f", "arguments": {"x": 1, "y": 0.5, "z": 1}}]"#);
    let close = reply(r#"[{"name": "f", "arguments": {"x": 1, "y": 0.5000001, "z": true}}]"#);
    assert_eq!(score("binary", &as_float, &truth).0, 0.0);
    assert_eq!(score("binary-tolerant", &as_float, &truth).0, 1.0);
    assert_eq!(score("binary-tolerant", &bool_as_int, &truth).0, 0.0);
    assert_eq!(score("binary-tolerant", &close, &truth).0, 0.0);
    let loose = BinaryRule {
        matcher: Matcher::tolerant(0.0, 1e-3),
        ..BinaryRule::default()
    };
    assert_eq!(loose.score(&close, &truth).reward, 1.0);
    // An integer and a float compare exactly, as in Python: 2^53 + 1 is
    // not the float 2^53 (which it rounds to as an f64), 2^53 is; so
    // equality stays transitive (2^53 + 1 = 2^53 would hold through the
    // float, 2^53 + 1 = 2^53 as integers does not).
    let big = |x: &str| reply(&format!(r#"[{{"name": "f", "arguments": {{"x": {x}}}}}]"#));
    let truth_int = vec![call("f", json!({"x": 9007199254740993u64}))];
    let truth_float = vec![call("f", json!({"x": 9007199254740992.0}))];
    assert_eq!(
        score("binary-tolerant", &big("9007199254740992.0"), &truth_int).0,
        0.0
    );
    assert_eq!(
        score("binary-tolerant", &big("9007199254740993"), &truth_float).0,
        0.0
    );
    assert_eq!(
        score("binary-tolerant", &big("9007199254740992"), &truth_float).0,
        1.0
    );
    // u64::MAX is not the float 2^64 it rounds to; i64::MIN is -2^63.
    let two_64 = vec![call("f", json!({"x": 18446744073709551616.0}))];
    let u64_max = big("18446744073709551615");
    assert_eq!(score("binary-tolerant", &u64_max, &two_64).0, 0.0);
    let min = vec![call("f", json!({"x": -9223372036854775808.0}))];
    let i64_min = big("-9223372036854775808");
    assert_eq!(score("binary-tolerant", &i64_min, &min).0, 1.0);
    assert_eq!(
        score(
            "binary-tolerant",
            &big("-3"),
            &[call("f", json!({"x": -3.0}))]
        )
        .0,
        1.0
    );
    // -0 is the integer 0; -0.0 equals 0.0 as a number.
    let zero = vec![call("f", json!({"x": 0, "y": 0.0}))];
    let neg = reply(r#"[{"name": "f", "arguments": {"x": -0, "y": -0.0}}]"#);
    assert_eq!(score("binary", &neg, &zero).0, 1.0);
    // All zeros are one, so neither call order nor the number of calls
    // (greedy pairing up to 32, sorted keys past it) changes a match.
    let zeros = |xs: &[&str]| {
        let calls: Vec<String> = xs
            .iter()
            .map(|x| format!(r#"{{"name": "f", "arguments": {{"a": {x}}}}}"#))
            .collect();
        format!("[{}]", calls.join(", "))
    };
    let truth = Call::list_from_json(&zeros(&["0", "0.0"])).unwrap();
    for order in [["-0.0", "0"], ["0", "-0.0"], ["0.0", "0"], ["-0", "-0.0"]] {
        assert_eq!(
            score("binary", &reply(&zeros(&order)), &truth).0,
            1.0,
            "{order:?}"
        );
    }
    for n in [32, 33] {
        let truth = Call::list_from_json(&zeros(&vec!["-0"; n])).unwrap();
        for x in ["0", "0.0", "-0.0"] {
            assert_eq!(
                score("binary", &reply(&zeros(&vec![x; n])), &truth).0,
                1.0,
                "{n} {x}"
            );
        }
    }
    // Tolerant matching finds a perfect assignment even when greedy would not.
    let truth = vec![call("f", json!({"x": 1.0})), call("f", json!({"x": 1.15}))];
    let pred = reply(
        r#"[{"name": "f", "arguments": {"x": 1.1}}, {"name": "f", "arguments": {"x": 0.95}}]"#,
    );
    let tol = BinaryRule {
        matcher: Matcher::tolerant(0.1, 0.0),
        ..BinaryRule::default()
    };
    assert_eq!(tol.score(&pred, &truth).reward, 1.0);
}

#[test]
fn no_call_expected() {
    let think = "<think>No tool fits.</think>";
    assert_eq!(
        score(
            "binary",
            &format!("{think}\n<tool_call>[]</tool_call>"),
            &[]
        ),
        (1.0, Reason::Ok)
    );
    assert_eq!(
        score("binary", &format!("{think}\nI cannot help."), &[]).1,
        Reason::FormatError
    );
    assert_eq!(
        score("binary", &reply(r#"[{"name": "f", "arguments": {}}]"#), &[]),
        (0.0, Reason::ExtraCall)
    );
    let lenient = BinaryRule {
        format: FormatPolicy {
            no_call_without_block: true,
            ..FormatPolicy::default()
        },
        ..BinaryRule::default()
    };
    assert_eq!(
        lenient
            .score(&format!("{think}\nI cannot help."), &[])
            .reward,
        1.0
    );
    assert_eq!(
        lenient.score("I cannot help.", &[]).reason,
        Reason::FormatError
    );
    assert_eq!(
        lenient
            .score(&format!("{think}\nI cannot help."), &weather())
            .reason,
        Reason::FormatError
    );
}

#[test]
fn ablations_give_partial_credit() {
    let truth = weather();
    let right = r#"[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]"#;
    let wrong_args = r#"[{"name": "get_weather", "arguments": {"city": "Rome", "days": 3}}]"#;
    let no_think = format!("<tool_call>{right}</tool_call>");
    assert_eq!(
        score("binary-no-think", &no_think, &truth),
        (1.0, Reason::Ok)
    );
    assert_eq!(
        score("binary-no-think", &reply(right), &truth),
        (1.0, Reason::Ok)
    );
    let approx = |r: &str, c: &str| score(r, c, &truth).0;
    assert!((approx("fine-grained", &reply(right)) - 1.0).abs() < 1e-12);
    assert!((approx("fine-grained", &reply(wrong_args)) - 0.2).abs() < 1e-12);
    assert!((approx("fine-grained", &no_think) - 0.8).abs() < 1e-12);
    assert!((approx("fine-grained-names", &reply(wrong_args)) - 0.4).abs() < 1e-12);
    assert!(
        (approx(
            "fine-grained-names",
            "<think>x</think><tool_call>[1]</tool_call>"
        ) - 0.2)
            .abs()
            < 1e-12
    );
    let v = FineGrainedRule::format_and_names().score(&reply(wrong_args), &truth);
    assert_eq!(v.reason, Reason::WrongArgs);
}

#[test]
fn combinators_compose() {
    let truth = weather();
    let right = reply(r#"[{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}]"#);
    struct Short;
    impl RewardRule for Short {
        fn name(&self) -> &str {
            "short"
        }
        fn score(&self, c: &str, _: &[Call]) -> toolgym_reward::Verdict {
            if c.len() < 60 {
                toolgym_reward::Verdict::ok()
            } else {
                toolgym_reward::Verdict::fail(Reason::FormatError, "too long")
            }
        }
    }
    let all = AllOf::new(
        "strict-short",
        vec![Box::new(BinaryRule::default()), Box::new(Short)],
    );
    let v = all.score(&right, &truth);
    assert_eq!((v.reward, v.reason), (0.0, Reason::FormatError));
    assert!(v.detail.starts_with("short:"));
    let sum = WeightedSum::new(
        "mix",
        vec![
            (0.7, Box::new(BinaryRule::default()) as Box<dyn RewardRule>),
            (0.3, Box::new(Short)),
        ],
    );
    let v = sum.score(&right, &truth);
    assert!((v.reward - 0.7).abs() < 1e-12);
    assert_eq!(v.reason, Reason::FormatError);
    // A term of weight 0 takes no part, not even a NaN reward or its reason.
    struct Nan;
    impl RewardRule for Nan {
        fn name(&self) -> &str {
            "nan"
        }
        fn score(&self, _: &str, _: &[Call]) -> toolgym_reward::Verdict {
            toolgym_reward::Verdict::new(f64::NAN, Reason::FormatError, "not a number")
        }
    }
    let sum = WeightedSum::new(
        "logged",
        vec![
            (1.0, Box::new(BinaryRule::default()) as Box<dyn RewardRule>),
            (0.0, Box::new(Nan)),
        ],
    );
    let v = sum.score(&right, &truth);
    assert_eq!((v.reward, v.reason), (1.0, Reason::Ok));
}

#[test]
fn diagnostics_carry_info_notes() {
    let text =
        reply(r#"[{"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 3}"}]"#);
    let c = Completion::parse(&text);
    assert!(c
        .diagnostics
        .iter()
        .any(|d| matches!(d, Diagnostic::ArgumentsWasString { block: 0, call: 0 })));
    assert!(c.diagnostics.iter().all(|d| d.severity() == Severity::Info));
}

#[test]
fn hostile_inputs_do_not_panic_or_hang() {
    let truth = weather();
    let rules: Vec<_> = toolgym_reward::RULES
        .iter()
        .map(|(n, _)| rule_by_name(n).unwrap())
        .collect();
    let deep = format!(
        "<think>x</think><tool_call>{}{}</tool_call>",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let deep_obj = format!(
        "<think>x</think><tool_call>{}</tool_call>",
        "{\"a\":".repeat(50_000)
    );
    let many_opens = "<tool_call>".repeat(200_000);
    let many_thinks = "<think>".repeat(200_000);
    let big_num = format!(
        "<think>x</think><tool_call>[{{\"name\":\"f\",\"arguments\":{{\"x\":{}}}}}]</tool_call>",
        "9".repeat(200_000)
    );
    let dup_keys = format!(
        "<think>x</think><tool_call>[{{\"name\":\"f\",\"arguments\":{{{}}}}}]</tool_call>",
        (0..50_000)
            .map(|i| format!("\"k{}\":{i}", i % 7))
            .collect::<Vec<_>>()
            .join(",")
    );
    let many_calls = format!(
        "<think>x</think><tool_call>[{}]</tool_call>",
        vec![r#"{"name":"get_weather","arguments":{"city":"Paris","days":3}}"#; 100_000].join(",")
    );
    let huge = format!(
        "<think>{}</think><tool_call>[]</tool_call>",
        "a<b ".repeat(25_000_000)
    );
    // Stray closing tags, then stray text: each text run was checked
    // against every diagnostic before it (80k of each took 10 s).
    let strays = format!(
        "{}{}",
        "</think>".repeat(150_000),
        "x</think>".repeat(150_000)
    );
    for text in [
        strays,
        deep,
        deep_obj,
        many_opens,
        many_thinks,
        big_num,
        dup_keys,
        many_calls,
        huge,
    ] {
        let start = std::time::Instant::now();
        for rule in &rules {
            let v = rule.score(&text, &truth);
            assert!(v.reward.is_finite());
        }
        // Generous bound: this guards against quadratic blow-ups, not speed.
        assert!(
            start.elapsed().as_secs() < 60,
            "took {:?} on a {} byte input",
            start.elapsed(),
            text.len()
        );
    }
    let many_truth = vec![call("get_weather", json!({"city": "Paris", "days": 3})); 100_000];
    let pred = format!(
        "<think>x</think><tool_call>[{}]</tool_call>",
        vec![r#"{"name":"get_weather","arguments":{"days":3,"city":"Paris"}}"#; 100_000].join(",")
    );
    assert_eq!(score("binary", &pred, &many_truth).0, 1.0);
    assert_eq!(score("tool-n1", &pred, &many_truth).0, 1.0);
}

/// Arguments nested deep, with two keys swapped at every level: equal as
/// maps. Each value pair is compared once: comparing the part walked in
/// step again after the swap doubled the work at every level (2^60 here).
#[test]
fn keys_reordered_at_every_level_of_deep_arguments_compare_once() {
    fn nested(depth: usize, swapped: bool, leaf: i64) -> serde_json::Value {
        let mut v = json!(leaf);
        for _ in 0..depth {
            v = if swapped {
                json!({"a": v, "c": 1, "b": 1})
            } else {
                json!({"a": v, "b": 1, "c": 1})
            };
        }
        v
    }
    let matcher = toolgym_reward::Matcher::EXACT;
    let truth = call("f", nested(60, false, 1));
    assert!(matcher.calls_equal(&call("f", nested(60, true, 1)), &truth));
    assert!(!matcher.calls_equal(&call("f", nested(60, true, 2)), &truth));
    let tolerant = toolgym_reward::Matcher::tolerant(0.5, 0.0);
    assert!(tolerant.calls_equal(&call("f", nested(60, true, 1)), &truth));
}

/// Turn headers without a line end, one after another: the text is one
/// turn without a role, found in one pass (each header once searched for
/// its line end to the text's end: quadratic in the text's length).
#[test]
fn many_turn_headers_without_a_line_end_read_in_one_pass() {
    let text = "<|im_end|><|im_start|>".repeat(200_000);
    let turns = toolgym_reward::chatml_turns(&text);
    assert_eq!(turns.len(), 1);
    assert_eq!((turns[0].role, turns[0].text.len()), (None, text.len()));
    // Roles end at their line end; `\r\n` too; a role must not be empty.
    let text = "x<|im_end|><|im_start|>user\r\nhi<|im_end|><|im_start|>\nno<|im_end|>\n<|im_start|>assistant_2\nok";
    let turns = toolgym_reward::chatml_turns(text);
    let roles: Vec<_> = turns.iter().map(|t| (t.role, t.text)).collect();
    assert_eq!(
        roles,
        [
            (None, "x<|im_end|>"),
            (Some("user"), "hi<|im_end|><|im_start|>\nno<|im_end|>\n"),
            (Some("assistant_2"), "ok")
        ]
    );
}
