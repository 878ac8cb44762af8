//! Fuzzes the JSONL readers on arbitrary bytes: `toolgym score`'s records
//! (call rules, as single replies and as episodes, and BFCL's), BFCL
//! completion files and task lines.
//! Contract: one verdict line per non-blank input line, in order, each
//! valid JSON; counts add up; a task line that parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgym_env::data::bfcl_eval::read_completions;
use toolgym_env::Task;
use toolgym_reward::bfcl::BfclAstRule;
use toolgym_reward::{jsonl, rule_by_name};

fn non_blank_lines(data: &[u8]) -> usize {
    data.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(i, l)| {
            // The last piece after a final newline is not a line.
            !(l.is_empty() && *i == data.split(|b| *b == b'\n').count() - 1)
        })
        // The readers' one definition of blank: JSON whitespace only (a
        // form feed is not; `u8::is_ascii_whitespace` says it is).
        .filter(|(_, l)| !jsonl::is_blank(l))
        .count()
}

/// The verdict lines a scorer wrote, each of which must be JSON.
fn verdict_lines(out: &[u8]) -> Vec<serde_json::Value> {
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("verdict lines are JSON"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let want = non_blank_lines(data);
    let options = jsonl::JsonlOptions {
        chunk_lines: 3,
        parallel: false,
        ..Default::default()
    };
    let rule = rule_by_name("binary").unwrap();
    let mut out = Vec::new();
    let report = jsonl::score_jsonl(&*rule, data, &mut out, options).unwrap();
    let lines = verdict_lines(&out);
    assert_eq!(lines.len(), want);
    assert_eq!(report.summary.count, want);
    let numbers: Vec<u64> = lines.iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");

    // The same records read as episodes: the same lines, ids and line
    // numbers; every line that is not a record one reply at a time is not
    // one as an episode either (an episode reads every assistant message).
    let mut episodes = Vec::new();
    let report = jsonl::score_jsonl_episodes(&*rule, data, &mut episodes, options).unwrap();
    assert_eq!(report.summary.count, want);
    let episode_lines = verdict_lines(&episodes);
    assert_eq!(episode_lines.len(), want);
    for (one, episode) in lines.iter().zip(&episode_lines) {
        assert_eq!(
            (&one["id"], &one["line"]),
            (&episode["id"], &episode["line"])
        );
        if one["reason"] == "input_error" {
            assert_eq!(episode["reason"], "input_error", "{one} {episode}");
        }
    }

    let mut out = Vec::new();
    let bfcl = BfclAstRule::official();
    let report =
        jsonl::score_jsonl_with(&bfcl, jsonl::bfcl_truth, data, &mut out, options).unwrap();
    assert_eq!(report.summary.count, want);

    let c = read_completions(data).unwrap();
    assert!(c.by_id.len() + c.bad_lines.len() <= want + c.blank_lines);

    for line in data.split(|b| *b == b'\n') {
        if let Ok(task) = serde_json::from_slice::<Task>(line) {
            let again: Task = serde_json::from_str(&serde_json::to_string(&task).unwrap()).unwrap();
            assert_eq!(again, task);
        }
    }
});
