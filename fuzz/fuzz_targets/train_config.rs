//! Fuzzes the training config: TOML text plus `--set key=value` overrides
//! (lines starting with `@`), and the checkpoint's `trainer_state.json`.
//! Contract: a config that loads writes TOML that loads back to the same
//! config; a trainer state that parses round-trips; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgym_grpo::{TrainConfig, TrainerState};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut toml = String::new();
    let mut overrides = Vec::new();
    for line in text.lines() {
        match line.strip_prefix('@') {
            Some(o) => overrides.push(o.to_string()),
            None => {
                toml.push_str(line);
                toml.push('\n');
            }
        }
    }
    if let Ok(cfg) = TrainConfig::parse(&toml, "fuzz", &overrides) {
        let written = cfg.to_toml().expect("a loaded config writes");
        let back = TrainConfig::parse(&written, "written", &[])
            .unwrap_or_else(|e| panic!("{written}\n{e}"));
        assert_eq!(back, cfg);
    }
    if let Ok(state) = serde_json::from_str::<TrainerState>(text) {
        let again: TrainerState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(again, state);
    }
});
