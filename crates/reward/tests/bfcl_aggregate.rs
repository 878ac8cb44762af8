//! The official leaderboard formulas, against `aggregate.json` (numbers
//! produced by bfcl-eval's `generate_leaderboard_csv`).

use serde_json::Value;
use std::collections::BTreeMap;
use toolgym_reward::bfcl::{leaderboard, python_only, CategoryScore, Metric};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bfcl/aggregate.json"
);

fn check_section(name: &str, want: &Value, formatted: &Value, got: &[(&str, Metric)]) {
    let want = want.as_object().expect("section is an object");
    assert_eq!(want.len(), got.len(), "{name}: column count");
    for (col, m) in got {
        let w = &want[*col];
        match w {
            Value::String(s) if s == "N/A" => {
                assert_eq!(m.display, None, "{name} / {col}: want N/A, got {m:?}")
            }
            other => {
                let v = other
                    .as_f64()
                    .unwrap_or_else(|| panic!("{name} / {col}: {other}"));
                let shown = m
                    .display
                    .unwrap_or_else(|| panic!("{name} / {col}: got N/A"));
                assert!(
                    (shown - v).abs() < 1e-12,
                    "{name} / {col}: want {v}, got {shown}"
                );
            }
        }
        assert_eq!(
            formatted[*col].as_str(),
            Some(m.formatted().as_str()),
            "{name} / {col}: formatted"
        );
    }
}

#[test]
fn leaderboard_matches_the_official_numbers() {
    let text = std::fs::read_to_string(PATH).expect("aggregate.json");
    let fixture: Value = serde_json::from_str(&text).expect("aggregate.json is JSON");
    let scenarios = fixture["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), 5);
    for s in scenarios {
        let name = s["name"].as_str().unwrap_or("?");
        let mut scores = BTreeMap::new();
        for (cat, v) in s["input"].as_object().expect("input") {
            scores.insert(
                cat.clone(),
                CategoryScore {
                    accuracy: v["accuracy"].as_f64().expect("accuracy"),
                    total_count: v["total_count"].as_u64().expect("count") as usize,
                },
            );
        }
        let lb = leaderboard(&scores);
        let f = &s["formatted"];
        check_section(name, &s["non_live"], &f["non_live"], &lb.non_live_columns());
        check_section(name, &s["live"], &f["live"], &lb.live_columns());
        check_section(name, &s["overall"], &f["overall"], &lb.overall_columns());
        // The numeric non-live overall is always shown, even with parts missing.
        assert!(lb.non_live_overall.display.is_some(), "{name}");
    }
}

#[test]
fn python_only_view_is_not_divided_by_three() {
    let mut scores = BTreeMap::new();
    for c in ["simple_python", "multiple", "parallel", "parallel_multiple"] {
        scores.insert(c.to_string(), CategoryScore::from_counts(10, 10));
    }
    let official = leaderboard(&scores);
    let py = python_only(&scores);
    assert!((official.non_live_overall.value - 5.0 / 6.0).abs() < 1e-12);
    assert_eq!(py.non_live.display, Some(1.0));
    assert_eq!(py.live.display, None, "live categories missing");
    assert_eq!(CategoryScore::from_counts(0, 0).accuracy, 0.0);
}
