//! Fuzzes the BFCL decoders (Tool-N1 blocks, Python prompt mode, after
//! `</think>`) and the AST checker's output checks. Contract: a decode
//! error's offset lies inside the input; decoding is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgym_reward::bfcl::{decode, is_empty_output, is_function_calling_format, Decoder};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for decoder in [Decoder::ToolN1, Decoder::Python, Decoder::PythonAfterThink] {
        let first = decode(text, decoder);
        match &first {
            Ok(v) => {
                let _ = is_function_calling_format(v);
                let _ = is_empty_output(v);
            }
            Err(e) => {
                if let Some(offset) = e.offset {
                    assert!(offset <= text.len(), "{decoder:?}: {e:?}");
                }
                assert!(!e.exception.is_empty(), "{decoder:?}: {e:?}");
            }
        }
        assert_eq!(format!("{first:?}"), format!("{:?}", decode(text, decoder)));
    }
});
