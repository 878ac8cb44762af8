//! Fuzzes a model directory's `config.json` (`Qwen2Config::from_json_str`),
//! which a few bytes of a downloaded or hand-edited directory control.
//! Contract: a config that loads names its tensors with element counts
//! that do not overflow (a config of absurd sizes is refused before
//! anything is sized from it), writes JSON that loads back to the same
//! config (writing adds `model_type` and `architectures` where absent, as
//! transformers needs them), and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgym_model::qwen2::expected_tensors;
use toolgym_model::Qwen2Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = Qwen2Config::from_json_str(text) else {
        return;
    };
    let total = expected_tensors(&cfg)
        .iter()
        .try_fold(0usize, |sum, (_, shape)| {
            let n = shape.iter().try_fold(1usize, |p, &d| p.checked_mul(d))?;
            sum.checked_add(n)
        });
    assert!(total.is_some(), "parameter count overflows: {text}");
    let written = cfg.to_json_string().expect("a loaded config writes");
    let back = Qwen2Config::from_json_str(&written).unwrap_or_else(|e| panic!("{written}\n{e}"));
    assert_eq!(expected_tensors(&back), expected_tensors(&cfg));
    // The rest round-trips too: writing adds only what transformers needs
    // to load the file (`model_type`, `architectures`) where it was absent.
    let mut added = back.clone();
    added.extra.retain(|k, _| !cfg.extra.contains_key(k));
    assert!(
        added
            .extra
            .keys()
            .all(|k| k == "model_type" || k == "architectures"),
        "{text}\n{written}"
    );
    let mut kept = back.clone();
    kept.extra.retain(|k, _| cfg.extra.contains_key(k));
    assert_eq!(kept, cfg, "{text}\n{written}");
});
