//! Multi-step episodes scored as one (`RewardRule::score_episode`): the
//! replies of an agent that calls, reads the results, calls again and
//! answers, against the calls of the whole episode.

use serde_json::{json, Value};
use toolgym_reward::{
    episode_texts, rule_by_name, rule_with_options, AllOf, BinaryRule, Call, CompletionError,
    Reason, RewardRule, RuleOptions, Verdict, WeightedSum, RULES,
};

fn calls(reply: &[(&str, Value)]) -> String {
    let list: Vec<Value> = reply
        .iter()
        .map(|(n, a)| json!({"name": n, "arguments": a}))
        .collect();
    format!(
        "<think>next step</think>\n<tool_call>\n{}\n</tool_call>",
        serde_json::to_string(&list).unwrap()
    )
}

fn find() -> (&'static str, Value) {
    ("find_account", json!({"owner": "Ann Lee"}))
}

fn withdraw() -> (&'static str, Value) {
    ("withdraw", json!({"account": 7, "amount": 40.5}))
}

fn truth() -> Vec<Call> {
    [find(), withdraw()]
        .into_iter()
        .map(|(n, a)| Call::new(n, a).unwrap())
        .collect()
}

const ANSWER: &str = "<think>both done</think>\nI withdrew 40.5 from Ann Lee's account.";

fn score(rule: &str, turns: &[&str]) -> Verdict {
    rule_by_name(rule)
        .unwrap()
        .score_episode(turns, &truth())
        .unwrap_or_else(|| panic!("{rule} scores no episodes"))
}

#[test]
fn an_episode_whose_replies_make_the_calls_then_answer_scores_1() {
    let (a, b) = (calls(&[find()]), calls(&[withdraw()]));
    for turns in [
        vec![a.as_str(), b.as_str(), ANSWER],
        // Order-free across replies, as within one.
        vec![b.as_str(), a.as_str(), ANSWER],
        // Both calls in one reply, then the answer.
        vec![&calls(&[find(), withdraw()]), ANSWER],
    ] {
        let v = score("binary", &turns);
        assert_eq!((v.reward, v.reason), (1.0, Reason::Ok), "{turns:?}: {v:?}");
        assert_eq!(score("fine-grained", &turns).reward, 1.0);
    }
    // Cut off before an answer (TRL's last tool round): the calls count.
    assert_eq!(score("binary", &[&a, &b]).reward, 1.0);
}

#[test]
fn wrong_calls_over_the_episode_are_named() {
    let (a, b) = (calls(&[find()]), calls(&[withdraw()]));
    let other_amount = calls(&[("withdraw", json!({"account": 7, "amount": 40}))]);
    let deposit = calls(&[("deposit", withdraw().1)]);
    let cases = [
        (vec![a.as_str(), ANSWER], Reason::MissingCall),
        (
            vec![a.as_str(), b.as_str(), a.as_str(), ANSWER],
            Reason::ExtraCall,
        ),
        (
            vec![a.as_str(), other_amount.as_str(), ANSWER],
            Reason::WrongArgs,
        ),
        (
            vec![a.as_str(), deposit.as_str(), ANSWER],
            Reason::WrongName,
        ),
    ];
    for (turns, reason) in cases {
        let v = score("binary", &turns);
        assert_eq!((v.reward, v.reason), (0.0, reason), "{turns:?}: {v:?}");
        assert!(v.detail.starts_with("the episode's calls: "), "{v:?}");
    }
    // Partial credit for the format, and for the names.
    let wrong_args = [
        a.as_str(),
        &calls(&[("withdraw", json!({"account": 7, "amount": 4}))]),
        ANSWER,
    ];
    assert!((score("fine-grained", &wrong_args).reward - 0.2).abs() < 1e-12);
    assert!((score("fine-grained-names", &wrong_args).reward - 0.4).abs() < 1e-12);
}

#[test]
fn every_reply_is_held_to_the_format_and_the_fault_names_its_reply() {
    let (a, b) = (calls(&[find()]), calls(&[withdraw()]));
    let no_think_answer = "I withdrew it.";
    let chatty_call = format!("Let me check.\n{a}");
    let broken = "<think>x</think><tool_call>[{\"name\": \"withdraw\", </tool_call>";
    let unclosed = "<think>x</think><tool_call>[{\"name\": \"withdraw\"}]";
    // (replies, reason, detail, fine-grained reward: 0.2 for the format of
    // every reply, 0.8 for the calls of all of them).
    let cases: [(Vec<&str>, Reason, &str, f64); 6] = [
        // Only the last reply may answer without a call.
        (
            vec![ANSWER, a.as_str(), b.as_str()],
            Reason::FormatError,
            "reply 1 of 3: ",
            0.8,
        ),
        (
            vec![a.as_str(), b.as_str(), no_think_answer],
            Reason::FormatError,
            "reply 3 of 3: no <think> block",
            0.8,
        ),
        (
            vec![chatty_call.as_str(), b.as_str(), ANSWER],
            Reason::FormatError,
            "reply 1 of 3: ",
            0.8,
        ),
        // An unreadable block: the format holds, the calls cannot be read.
        (
            vec![a.as_str(), broken, ANSWER],
            Reason::JsonError,
            "reply 2 of 3: ",
            0.2,
        ),
        // An unclosed block is no block: withdraw is not made.
        (
            vec![a.as_str(), unclosed],
            Reason::FormatError,
            "reply 2 of 2: ",
            0.0,
        ),
        (
            vec![a.as_str(), b.as_str(), "<think>done</think> </think>"],
            Reason::FormatError,
            "reply 3 of 3: ",
            0.8,
        ),
    ];
    for (turns, reason, detail, fine) in cases {
        let v = score("binary", &turns);
        assert_eq!((v.reward, v.reason), (0.0, reason), "{turns:?}: {v:?}");
        assert!(v.detail.starts_with(detail), "{turns:?}: {v:?}");
        let got = score("fine-grained", &turns).reward;
        assert!((got - fine).abs() < 1e-12, "{turns:?}: {got}");
    }
    // The rule's options apply to every reply.
    let relaxed = |think, free_text| {
        let options = RuleOptions {
            think: Some(think),
            free_text: Some(free_text),
            ..Default::default()
        };
        rule_with_options("binary", &options).unwrap()
    };
    let turns = [a.as_str(), b.as_str(), no_think_answer];
    assert_eq!(
        relaxed(false, false)
            .score_episode(&turns, &truth())
            .unwrap()
            .reward,
        1.0
    );
    let turns = [chatty_call.as_str(), b.as_str(), ANSWER];
    assert_eq!(
        relaxed(true, true)
            .score_episode(&turns, &truth())
            .unwrap()
            .reward,
        1.0
    );
    let no_think = [a.replace("<think>next step</think>\n", ""), b.clone()];
    let no_think: Vec<&str> = no_think.iter().map(String::as_str).collect();
    assert_eq!(score("binary", &no_think).reason, Reason::FormatError);
    assert_eq!(score("binary-no-think", &no_think).reward, 1.0);
}

/// An episode of one reply is that reply, scored as `score` scores it:
/// the "no call" replies and their options included; an episode of none is
/// the empty reply.
#[test]
fn an_episode_of_one_reply_is_scored_as_the_reply() {
    let replies = [
        calls(&[find(), withdraw()]),
        calls(&[find()]),
        "<think>nothing to call</think>\n<tool_call>[]</tool_call>".to_string(),
        "<think>nothing to call</think>\nNo tool fits.".to_string(),
        "No tool fits.".to_string(),
        "<think>x</think><tool_call>[{]</tool_call>".to_string(),
        String::new(),
    ];
    let truths = [truth(), vec![]];
    for (name, _) in RULES.iter().filter(|(n, _)| !n.starts_with("tool-n1")) {
        for options in [
            RuleOptions::default(),
            RuleOptions {
                no_call_without_block: Some(true),
                free_text: Some(true),
                ..Default::default()
            },
        ] {
            let rule = rule_with_options(name, &options).unwrap();
            // No reply at all is the empty reply.
            for truth in &truths {
                assert_eq!(
                    rule.score_episode(&[], truth),
                    Some(rule.score("", truth)),
                    "{name} {options:?}"
                );
            }
            for reply in &replies {
                for truth in &truths {
                    assert_eq!(
                        rule.score_episode(&[reply], truth),
                        Some(rule.score(reply, truth)),
                        "{name} {options:?} {reply:?}"
                    );
                }
            }
        }
    }
}

/// A lone answer in words where no call is due: a "no call" reply, right
/// only with `no_call_without_block` (the envs take it as an answer).
#[test]
fn a_lone_answer_is_a_no_call_reply() {
    let answer = ["<think>nothing fits</think>\nNo tool can do that."];
    let strict = rule_by_name("binary").unwrap();
    assert_eq!(
        strict.score_episode(&answer, &[]).unwrap().reason,
        Reason::FormatError
    );
    let options = RuleOptions {
        no_call_without_block: Some(true),
        ..Default::default()
    };
    let lenient = rule_with_options("binary", &options).unwrap();
    assert_eq!(lenient.score_episode(&answer, &[]).unwrap().reward, 1.0);
    // Not where a call is due.
    assert_eq!(
        lenient.score_episode(&answer, &truth()).unwrap().reward,
        0.0
    );
}

#[test]
fn rules_without_episodes_say_so_and_combinators_follow_their_rules() {
    let turns = [calls(&[find()]), calls(&[withdraw()])];
    let turns: Vec<&str> = turns.iter().map(String::as_str).collect();
    for name in [
        "tool-n1",
        "tool-n1-no-think",
        "tool-n1-fine",
        "tool-n1-fine-names",
    ] {
        assert!(
            rule_by_name(name)
                .unwrap()
                .score_episode(&turns, &truth())
                .is_none(),
            "{name}"
        );
    }
    let all = AllOf::<[Call]>::new(
        "both",
        vec![
            Box::new(BinaryRule::default()),
            Box::new(BinaryRule::without_think()),
        ],
    );
    assert_eq!(all.score_episode(&turns, &truth()).unwrap().reward, 1.0);
    let with_script = AllOf::<[Call]>::new(
        "with-script",
        vec![
            Box::new(BinaryRule::default()),
            rule_by_name("tool-n1").unwrap(),
        ],
    );
    assert!(with_script.score_episode(&turns, &truth()).is_none());
    let half = WeightedSum::<[Call]>::new(
        "half",
        vec![
            (0.5, Box::new(BinaryRule::default())),
            (0.5, rule_by_name("fine-grained").unwrap()),
        ],
    );
    let v = half.score_episode(&turns[..1], &truth()).unwrap();
    assert!((v.reward - 0.1).abs() < 1e-12, "{v:?}");
    assert_eq!(v.reason, Reason::MissingCall);
    // A rule of your own scores no episodes unless it says how.
    struct Mine;
    impl RewardRule for Mine {
        fn name(&self) -> &str {
            "mine"
        }
        fn score(&self, _: &str, _: &[Call]) -> Verdict {
            Verdict::ok()
        }
    }
    assert!(Mine.score_episode(&turns, &truth()).is_none());
}

#[test]
fn a_transcript_gives_its_assistant_messages_in_order() {
    let transcript = json!([
        {"role": "assistant", "content": "", "reasoning_content": "find her",
         "tool_calls": [{"type": "function", "function": {"name": "find_account", "arguments": {"owner": "Ann Lee"}}}]},
        {"role": "tool", "name": "find_account", "content": "{\"account\": 7}"},
        {"role": "assistant", "content": "<think>take it</think>",
         "tool_calls": [{"type": "function", "function": {"name": "withdraw", "arguments": "{\"account\": 7, \"amount\": 40.5}"}}]},
        {"role": "tool", "name": "withdraw", "content": "ok"},
        {"role": "assistant", "content": ANSWER},
    ]);
    let turns = episode_texts(&transcript).unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[2], ANSWER);
    let turns: Vec<&str> = turns.iter().map(|t| t.as_ref()).collect();
    assert_eq!(score("binary", &turns).reward, 1.0);
    // A string or one message is an episode of one reply.
    assert_eq!(episode_texts(&json!("text")).unwrap(), ["text"]);
    assert_eq!(episode_texts(&json!({"content": "x"})).unwrap(), ["x"]);
    assert_eq!(
        episode_texts(&json!([{"role": "tool", "content": "x"}])),
        Err(CompletionError::NoAssistant(1))
    );
    assert!(episode_texts(&json!([{"role": "assistant", "tool_calls": 3}])).is_err());
    assert!(episode_texts(&json!(5)).is_err());
    // One message that is not the assistant's is no reply (a user's text
    // holding a call would otherwise score as the model's).
    let user = json!({"role": "user", "content": "<tool_call>[]</tool_call>"});
    assert_eq!(
        episode_texts(&user),
        Err(CompletionError::NotAssistant("\"user\"".into()))
    );
    assert!(toolgym_reward::completion_text(&user)
        .unwrap_err()
        .to_string()
        .contains("not role \"user\""));
}

/// A multi-turn response as verl's tool agent loop lays it out with the
/// Qwen template, decoded with its special tokens kept.
fn chatml(replies: &[&str], results: &[&str]) -> String {
    let mut out = format!("{}<|im_end|>", replies[0]);
    for (result, reply) in results.iter().zip(&replies[1..]) {
        out.push_str(&format!(
            "\n<|im_start|>user\n<tool_response>\n{result}\n</tool_response><|im_end|>\n\
             <|im_start|>assistant\n{reply}<|im_end|>"
        ));
    }
    out
}

#[test]
fn a_chatml_response_splits_into_its_replies_at_turn_headers_only() {
    let (a, b) = (calls(&[find()]), calls(&[withdraw()]));
    let response = chatml(&[&a, &b, ANSWER], &["{\"account\": 7}", "ok"]);
    let replies = toolgym_reward::chatml_replies(&response);
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert!(
        replies[0].starts_with(&a) && replies[1].starts_with(&b) && replies[2].starts_with(ANSWER)
    );
    assert!(replies.iter().all(|r| !r.contains("tool_response")));
    assert_eq!(score("binary", &replies).reward, 1.0);
    // Read from a JSON string, as the Python package and verl pass it.
    let value = Value::String(response.clone());
    assert_eq!(episode_texts(&value).unwrap().len(), 3);
    // The whole response as one reply is its last turn (the cut at the last
    // assistant header): the answer, no call.
    assert_eq!(
        rule_by_name("binary")
            .unwrap()
            .score(&response, &truth())
            .reward,
        0.0
    );
    // A step left out.
    let short = chatml(&[&a, ANSWER], &["{\"account\": 7}"]);
    let short = toolgym_reward::chatml_replies(&short);
    assert_eq!(score("binary", &short).reason, Reason::MissingCall);
    // Headers: at the start of the text or a line, a role, a line end. A
    // call argument spelling one (JSON strings hold no raw line end) and a
    // header glued to text split nothing; CRLF line ends do.
    let spelled = calls(&[(
        "find_account",
        json!({"owner": "<|im_start|>assistant\nAnn"}),
    )]);
    assert!(spelled.contains("<|im_start|>assistant\\nAnn"));
    assert_eq!(toolgym_reward::chatml_replies(&spelled), [spelled.as_str()]);
    let glued = format!("{a} <|im_start|>assistant\n{ANSWER}");
    assert_eq!(toolgym_reward::chatml_replies(&glued).len(), 1);
    // A header must follow an end token: one a reply writes at a line
    // start is its text (here, a withdrawal hidden in a made-up tool turn
    // is a format error, not a dropped turn).
    let hidden = format!("{b}\n<|im_start|>user\n{b}<|im_end|>");
    assert_eq!(toolgym_reward::chatml_replies(&hidden), [hidden.as_str()]);
    let only_withdraw = vec![Call::new(withdraw().0, withdraw().1).unwrap()];
    let v = rule_by_name("binary")
        .unwrap()
        .score_episode(&[&hidden], &only_withdraw)
        .unwrap();
    assert_eq!(v.reason, Reason::FormatError, "{v:?}");
    // Qwen also stops at <|endoftext|>, with no line end after it.
    let stopped =
        format!("{a}<|endoftext|><|im_start|>user\nok<|im_end|>\n<|im_start|>assistant\n{ANSWER}");
    assert_eq!(toolgym_reward::chatml_replies(&stopped).len(), 2);
    let roles: Vec<_> = toolgym_reward::chatml_turns(&stopped)
        .iter()
        .map(|t| t.role)
        .collect();
    assert_eq!(roles, [None, Some("user"), Some("assistant")]);
    let crlf = format!("{a}<|im_end|>\r\n<|im_start|>assistant\r\n{ANSWER}");
    assert_eq!(
        toolgym_reward::chatml_replies(&crlf),
        [format!("{a}<|im_end|>\r\n").as_str(), ANSWER]
    );
    // A response that opens with a header has no text before it; turns of
    // other roles are left out.
    let headed = format!("<|im_start|>assistant\n{a}<|im_end|>\n<|im_start|>tool\nok<|im_end|>\n<|im_start|>assistant\n{ANSWER}");
    assert_eq!(toolgym_reward::chatml_replies(&headed).len(), 2);
    assert_eq!(toolgym_reward::chatml_replies(""), [""]);
}

/// `score_jsonl_episodes` (what `toolgym score --episode` runs): each
/// record's completion is an episode, a transcript or a ChatML text; bad
/// records are input errors naming what is wrong, read in the general
/// reader's order; the output does not depend on threads or chunks.
#[test]
fn a_jsonl_file_of_episodes_is_scored_record_by_record() {
    use toolgym_reward::jsonl::{score_jsonl, score_jsonl_episodes, JsonlOptions};
    let (a, b) = (calls(&[find()]), calls(&[withdraw()]));
    let message = |content: &str| json!({"role": "assistant", "content": content});
    let tool = |content: &str| json!({"role": "tool", "content": content});
    let transcript = |replies: &[&str]| {
        let mut messages = Vec::new();
        for (i, r) in replies.iter().enumerate() {
            if i > 0 {
                messages.push(tool("ok"));
            }
            messages.push(message(r));
        }
        Value::Array(messages)
    };
    let truth_text = serde_json::to_string(&json!([
        {"name": find().0, "arguments": find().1},
        {"name": withdraw().0, "arguments": withdraw().1},
    ]))
    .unwrap();
    // (completion, reward, reason, what the detail says).
    let ok = (1.0, "ok", "");
    let cases = [
        (transcript(&[&a, &b, ANSWER]), ok),
        // Cut off after its calls (TRL's last tool round).
        (transcript(&[&b, &a]), ok),
        (
            transcript(&[&a, ANSWER]),
            (0.0, "missing_call", "the episode's calls: fewer calls"),
        ),
        (
            transcript(&[ANSWER, &a, &b]),
            (0.0, "format_error", "reply 1 of 3: "),
        ),
        (
            Value::String(chatml(&[&a, &b, ANSWER], &["{\"account\": 7}", "ok"])),
            ok,
        ),
        (
            Value::String(chatml(&[&a, ANSWER], &["{\"account\": 7}"])),
            (0.0, "missing_call", "the episode's calls: "),
        ),
        (Value::String(calls(&[find(), withdraw()])), ok),
        (message(&calls(&[find(), withdraw()])), ok),
        // A ChatML text with no assistant turn: no reply, no credit.
        (
            Value::String("<|im_start|>user\nhi<|im_end|>".into()),
            (0.0, "format_error", "no <think> block"),
        ),
    ];
    let mut lines: Vec<String> = Vec::new();
    for (i, (completion, _)) in cases.iter().enumerate() {
        // Ground truths as a list and as xLAM's JSON text.
        let truth_field = if i % 2 == 0 {
            serde_json::from_str::<Value>(&truth_text).unwrap()
        } else {
            Value::String(truth_text.clone())
        };
        lines.push(
            json!({"id": i, "completion": completion, "ground_truth": truth_field}).to_string(),
        );
    }
    // Records that are not usable: each says what is wrong; the completion
    // is read before the ground truth.
    let bad = [
        (
            json!({"id": "no-assistant", "completion": [tool("x")]}),
            "no assistant message",
        ),
        (
            json!({"id": "no-truth", "completion": transcript(&[&a])}),
            "missing field \"ground_truth\"",
        ),
        (
            json!({"id": "bad-truth", "completion": a, "ground_truth": [{"name": 3}]}),
            "bad ground_truth",
        ),
        (
            json!({"id": "no-completion", "ground_truth": []}),
            "missing field \"completion\"",
        ),
    ];
    for (line, _) in &bad {
        lines.push(line.to_string());
    }
    lines.push("{\"id\": 3, \"completion\": [".into());
    let input = lines.join("\n") + "\n";

    let binary = rule_by_name("binary").unwrap();
    let run = |parallel: bool, chunk_lines: usize| {
        let options = JsonlOptions {
            parallel,
            chunk_lines,
            ..Default::default()
        };
        let mut out = Vec::new();
        let report = score_jsonl_episodes(&*binary, input.as_bytes(), &mut out, options).unwrap();
        (String::from_utf8(out).unwrap(), report)
    };
    let (out, report) = run(false, 256);
    let got: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), cases.len() + bad.len() + 1);
    for (i, (line, (_, (reward, reason, detail)))) in got.iter().zip(&cases).enumerate() {
        assert_eq!((&line["id"], &line["line"]), (&json!(i), &json!(i + 1)));
        assert_eq!(line["reward"], *reward, "{line}");
        assert_eq!(line["reason"], *reason, "{line}");
        let says = line["detail"].as_str().unwrap_or("");
        assert!(says.starts_with(detail), "{line}");
    }
    for (line, (record, says)) in got[cases.len()..].iter().zip(&bad) {
        assert_eq!(line["id"], record["id"]);
        assert_eq!(line["reason"], "input_error", "{line}");
        assert!(line["detail"].as_str().unwrap().contains(says), "{line}");
    }
    let last = got.last().unwrap();
    assert_eq!(
        (&last["id"], &last["reason"]),
        (&Value::Null, &json!("input_error"))
    );
    assert!(
        last["detail"].as_str().unwrap().starts_with("not JSON"),
        "{last}"
    );
    assert_eq!((report.summary.count, report.input_errors), (14, 5));
    assert_eq!(report.summary.accuracy, 5.0 / 14.0);
    for (parallel, chunk_lines) in [(true, 1), (true, 4096), (false, 1)] {
        assert_eq!(run(parallel, chunk_lines), (out.clone(), report.clone()));
    }
    // The same records scored one reply at a time: only the replies that
    // make both calls at once are right.
    let options = JsonlOptions::default();
    let single = score_jsonl(&*binary, input.as_bytes(), Vec::new(), options).unwrap();
    assert_eq!(single.summary.accuracy, 2.0 / 14.0);

    // Fine-grained: partial credit per episode, none for no reply.
    let fine = rule_by_name("fine-grained").unwrap();
    let mut out = Vec::new();
    score_jsonl_episodes(&*fine, input.as_bytes(), &mut out, options).unwrap();
    let fine: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(fine[2]["reason"], "missing_call");
    assert!(fine[2]["reward"].as_f64().unwrap() > 0.0, "{}", fine[2]);
    assert_eq!(fine[8]["reward"], 0.0, "{}", fine[8]);

    // The released script's rule has no episodes: refused before reading.
    let tool_n1 = rule_by_name("tool-n1").unwrap();
    let e = score_jsonl_episodes(&*tool_n1, input.as_bytes(), Vec::new(), options).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(
        e.into_inner()
            .unwrap()
            .downcast::<toolgym_reward::NoEpisodes>()
            .unwrap()
            .rule,
        "tool-n1"
    );
}
