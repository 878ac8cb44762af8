//! Fuzzes API-Bank's reply readers and judge: the first byte picks a sample
//! of the committed level-1 data, the rest is the model's reply, judged in
//! the bracket, Tool-N1 and auto forms (the call runs on fresh databases).
//! Contract: no panic; deterministic; a wrong verdict has an error type; a
//! bracket call read from the reply has a name made of the reply's text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use toolgym_env::data::apibank::{load_samples, parse_bracket, ApiBankSample, Judge, ReplyFormat};

fn samples() -> &'static [ApiBankSample] {
    static S: OnceLock<Vec<ApiBankSample>> = OnceLock::new();
    S.get_or_init(|| {
        let data =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/env/tests/fixtures/apibank/data");
        load_samples(&data, None).expect("the fixture data loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(reply) = std::str::from_utf8(rest) else {
        return;
    };
    if let Some(call) = parse_bracket(reply) {
        assert!(reply.contains(call.name.as_str()), "{call:?}");
    }
    let s = samples();
    let sample = &s[pick as usize % s.len()];
    for format in [ReplyFormat::Bracket, ReplyFormat::ToolN1, ReplyFormat::Auto] {
        let judge = Judge {
            format,
            ..Judge::official()
        };
        let v = judge.judge(sample, Some(reply));
        assert!(v.valid || v.error_type.is_some(), "{v:?}");
        let again = judge.judge(sample, Some(reply));
        assert_eq!(format!("{v:?}"), format!("{again:?}"));
    }
});
