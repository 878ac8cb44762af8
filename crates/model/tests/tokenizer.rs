//! The built-in byte-level BPE tokenizer and the Tokenizer wrapper.

use std::time::Instant;

use toolgym_model::bpe::{BpeOptions, CHATML_SPECIAL_TOKENS, TOOL_TAG_TOKENS};
use toolgym_model::{train_bpe_tokenizer, train_bpe_tokenizer_with, PreTokenizer, Tokenizer};

/// A synthetic ChatML tool-calling corpus.
fn corpus(n: usize) -> Vec<String> {
    let tools = [
        "get_weather",
        "search_flights",
        "convert_currency",
        "lookup_user",
    ];
    let cities = ["Paris", "São Paulo", "東京", "New York", "Zürich"];
    (0..n)
        .map(|i| {
            let tool = tools[i % tools.len()];
            let city = cities[i % cities.len()];
            format!(
                "<|im_start|>system\nYou may call tools.<|im_end|>\n<|im_start|>user\nWhat about {city} on day {i}?<|im_end|>\n\
                 <|im_start|>assistant\n<think>The user asks about {city}; call {tool}.</think>\n\
                 <tool_call>\n{{\"name\": \"{tool}\", \"arguments\": {{\"city\": \"{city}\", \"day\": {i}, \"units\": [\"c\", \"f\"]}}}}\n</tool_call><|im_end|>"
            )
        })
        .collect()
}

#[test]
fn trains_quickly_and_deterministically() {
    let texts = corpus(10_000);
    let t0 = Instant::now();
    let a = train_bpe_tokenizer(&texts, 2048, &[]).unwrap();
    let elapsed = t0.elapsed();
    assert!(elapsed.as_secs_f64() < 20.0, "training took {elapsed:?}");
    let small = &texts[..2000];
    let b = train_bpe_tokenizer(small, 1024, &[]).unwrap();
    let c = train_bpe_tokenizer(small, 1024, &[]).unwrap();
    assert_eq!(b.to_json_string().unwrap(), c.to_json_string().unwrap());
    assert!(
        a.vocab_size() <= 2048 && a.vocab_size() > 300,
        "{}",
        a.vocab_size()
    );
}

#[test]
fn special_tokens_and_round_trips() {
    let tk = train_bpe_tokenizer(&corpus(500), 600, &["<extra>"]).unwrap();
    for (i, t) in CHATML_SPECIAL_TOKENS.iter().enumerate() {
        assert_eq!(tk.token_to_id(t), Some(i as u32), "{t}");
    }
    assert_eq!(tk.eos_token_ids(), &[2]);
    assert_eq!(tk.pad_token_id(), Some(0));
    for t in TOOL_TAG_TOKENS.iter().chain(&["<extra>"]) {
        let ids = tk.encode(t).unwrap();
        assert_eq!(ids.len(), 1, "{t} is one id");
        assert_eq!(tk.decode(&ids, false).unwrap(), *t);
        assert_eq!(tk.id_to_token(ids[0]).as_deref(), Some(*t));
    }
    let samples = [
        corpus(3)[2].clone(),
        "<|im_start|>assistant\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"a  b\\n\\t c\", \"n\": -1.5e3, \"ok\": true, \"x\": null}}\n</tool_call><|im_end|>".to_string(),
        "  leading spaces, trailing \n\n and unseen unicode: ñ, Ω, 🚀 <think></think>".to_string(),
        String::new(),
    ];
    for s in &samples {
        let ids = tk.encode(s).unwrap();
        assert_eq!(&tk.decode(&ids, false).unwrap(), s);
    }
    // skip_special_tokens drops ChatML markers but keeps the tool tags.
    let ids = tk
        .encode("<|im_start|>a<tool_call>b</tool_call><|im_end|>")
        .unwrap();
    assert_eq!(tk.decode(&ids, true).unwrap(), "a<tool_call>b</tool_call>");
    // Saved and reloaded: same ids.
    let tmp = tempfile::tempdir().unwrap();
    tk.save(tmp.path()).unwrap();
    let back = Tokenizer::from_file(tmp.path().join("tokenizer.json")).unwrap();
    assert_eq!(
        back.encode(&samples[1]).unwrap(),
        tk.encode(&samples[1]).unwrap()
    );
    assert_eq!(back.eos_token_ids(), tk.eos_token_ids());
    assert_eq!(back.pad_token_id(), tk.pad_token_id());
}

/// A tokenizer.json's own truncation and padding (transformers saves
/// whatever its last call set) are not applied: transformers applies them
/// only when a call asks. They cut every prompt to `max_length` (the
/// question and the assistant header gone) or padded it, silently.
#[test]
fn a_files_truncation_and_padding_are_not_applied() {
    let tk = train_bpe_tokenizer(&corpus(300), 500, &[]).unwrap();
    let text = &corpus(3)[2];
    let ids = tk.encode(text).unwrap();
    assert!(ids.len() > 8);
    let mut json: serde_json::Value = serde_json::from_str(&tk.to_json_string().unwrap()).unwrap();
    // (A stride past the length: the library's setter refuses it, its
    // reader does not; saving put it back through the setter and failed.)
    json["truncation"] = serde_json::json!({"direction": "Right", "max_length": 4,
        "strategy": "LongestFirst", "stride": 8});
    json["padding"] = serde_json::json!({"strategy": {"Fixed": 64}, "direction": "Right",
        "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "<|endoftext|>"});
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let loaded = Tokenizer::from_file(&path).unwrap();
    assert_eq!(loaded.encode(text).unwrap(), ids);
    assert_eq!(loaded.encode("hi").unwrap(), tk.encode("hi").unwrap());
    // Saved again, the file keeps them (transformers takes them as its
    // defaults: padding side, max length), still not applied here.
    let out = tempfile::tempdir().unwrap();
    loaded.save(out.path()).unwrap();
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("tokenizer.json")).unwrap()).unwrap();
    assert_eq!(saved["truncation"]["max_length"], 4);
    assert_eq!(saved["padding"]["strategy"]["Fixed"], 64);
    let again = Tokenizer::from_file(out.path().join("tokenizer.json")).unwrap();
    assert_eq!(again.encode(text).unwrap(), ids);
}

/// `min_tokens` is a true lower bound of the encoding's length on text
/// built to make tokens long or text shrink (whitespace runs, a corpus's
/// own long words, NFC's Hangul jamo and Kelvin sign, added tokens), and
/// pipelines it cannot bound give none.
#[test]
fn min_tokens_is_a_lower_bound() {
    let tk = train_bpe_tokenizer(&corpus(2000), 2000, &["<extra>"]).unwrap();
    let most = tk
        .max_bytes_per_token()
        .expect("a byte-level BPE is bounded");
    assert!(most >= "<|im_start|>".len(), "{most}");
    let jamo = "\u{1100}\u{1161}\u{11a8}"; // one syllable after NFC
    let pieces = [
        corpus(5).concat(),
        " ".repeat(5000),
        "\n".repeat(3000),
        "get_weather".repeat(400),
        jamo.repeat(700),
        "\u{212a}".repeat(900), // Kelvin sign: K after NFC
        "<|im_start|><|im_end|><tool_call><extra>".repeat(100),
        "São Paulo 東京 🚀 ".repeat(200),
    ];
    for text in pieces.iter().cloned().chain([pieces.concat()]) {
        let n = tk.encode(&text).unwrap().len();
        assert!(
            tk.min_tokens(&text) <= n,
            "{} > {n} for {:?}",
            tk.min_tokens(&text),
            &text[..40]
        );
        assert!(tk.min_tokens(&text) > 0);
    }
    assert_eq!(tk.min_tokens(""), 0);
    // A normaliser that can drop text (lowercasing can shrink it; accents
    // stripped) is not bounded.
    let mut json: serde_json::Value = serde_json::from_str(&tk.to_json_string().unwrap()).unwrap();
    json["normalizer"] = serde_json::json!({"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}]});
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tokenizer.json");
    std::fs::write(&path, json.to_string()).unwrap();
    let stripped = Tokenizer::from_file(&path).unwrap();
    assert_eq!(stripped.max_bytes_per_token(), None);
    assert_eq!(stripped.min_tokens("abc"), 0);
    // Nor one whose added token strips the whitespace beside it (one token
    // for any run of it), nor one whose word symbols carry a prefix or
    // suffix (a symbol missing in that form is dropped).
    let unbounded = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut json: serde_json::Value =
            serde_json::from_str(&tk.to_json_string().unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(&path, json.to_string()).unwrap();
        Tokenizer::from_file(&path).unwrap().max_bytes_per_token()
    };
    assert_eq!(
        unbounded(&|j| j["added_tokens"][0]["rstrip"] = true.into()),
        None
    );
    assert_eq!(
        unbounded(&|j| {
            j["model"]["continuing_subword_prefix"] = "##".into();
            j["model"]["merges"] = serde_json::json!([]);
        }),
        None
    );
    // A prefix its merges do not carry made the tokenizers library panic
    // (an overflow) while loading: an error naming the file instead.
    let mut json: serde_json::Value = serde_json::from_str(&tk.to_json_string().unwrap()).unwrap();
    json["model"]["continuing_subword_prefix"] = "#####".into();
    std::fs::write(&path, json.to_string()).unwrap();
    let e = Tokenizer::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("tokenizer.json"), "{e}");
    assert_eq!(
        unbounded(&|j| j["model"]["end_of_word_suffix"] = "</w>".into()),
        None
    );
    assert!(unbounded(&|j| j["model"]["end_of_word_suffix"] = "".into()).is_some());
}

/// A component the linked tokenizers library does not know (a newer
/// version's, a misspelt type) is named with its type and where it sits,
/// not only serde's "did not match any variant of untagged enum".
#[test]
fn an_unknown_component_is_named_with_its_type() {
    let tk = train_bpe_tokenizer(&corpus(50), 400, &[]).unwrap();
    let json: serde_json::Value = serde_json::from_str(&tk.to_json_string().unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tokenizer.json");
    let error_with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut j = json.clone();
        edit(&mut j);
        std::fs::write(&path, j.to_string()).unwrap();
        Tokenizer::from_file(&path).unwrap_err().to_string()
    };
    let e = error_with(&|j| {
        j["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"}, {"type": "Wordish", "size": 3}]});
    });
    assert!(
        e.contains("tokenizer.json")
            && e.contains("its pre_tokenizer (pretokenizers[1]) cannot be read")
            && e.contains("type \"Wordish\" is not one this build's tokenizers library knows"),
        "{e}"
    );
    let e = error_with(&|j| j["decoder"] = serde_json::json!({"type": "ByteLevl"}));
    assert!(
        e.contains("its decoder cannot be read") && e.contains("type \"ByteLevl\" is not one"),
        "{e}"
    );
    // A known type with contents the library refuses: said so, with the
    // library's reason.
    let e = error_with(&|j| {
        j["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": "yes"}]}]});
    });
    assert!(
        e.contains("its pre_tokenizer (pretokenizers[0].pretokenizers[0]) cannot be read")
            && e.contains("type \"Digits\" is known, its contents are not valid"),
        "{e}"
    );
    // A bad decoder in a file whose model makes the library panic as it
    // reads it (a prefix its merges lack; the library stops at the
    // decoder, written first): the decoder is named, nothing panics.
    let e = error_with(&|j| {
        j["decoder"] = serde_json::json!({"type": "ByteLevl"});
        j["model"]["continuing_subword_prefix"] = "#####".into();
    });
    assert!(e.contains("its decoder cannot be read"), "{e}");
    // A fault that is no component's is the library's own message.
    let e = error_with(&|j| j["added_tokens"] = serde_json::json!("none"));
    assert!(
        e.contains("tokenizer.json") && !e.contains("cannot be read by"),
        "{e}"
    );
}

#[test]
fn options_are_checked() {
    let texts = corpus(10);
    let too_small = BpeOptions {
        vocab_size: 100,
        ..BpeOptions::chatml(100)
    };
    assert!(train_bpe_tokenizer_with(&texts, &too_small).is_err());
    let e = Tokenizer::from_file("/nonexistent/tokenizer.json").unwrap_err();
    assert!(e.to_string().contains("tokenizer.json"), "{e}");
    // A token both special and added is refused, naming it.
    let mut both = BpeOptions::chatml(400);
    both.special_tokens.push("<think>".into());
    let e = train_bpe_tokenizer_with(&texts, &both)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"<think>\" is both a special and an added token"),
        "{e}"
    );
}

/// A tool tag asked for as an extra special token is special, in memory
/// and in the saved file alike (it was special in memory only: decoding
/// with skip_special_tokens dropped it, and kept it once reloaded).
#[test]
fn a_tool_tag_made_special_stays_special_when_saved() {
    let tok = train_bpe_tokenizer(&corpus(10), 400, &["<think>"]).unwrap();
    let id = tok.token_to_id("<think>").unwrap();
    assert_eq!(tok.decode(&[id], true).unwrap(), "");
    let dir = std::env::temp_dir().join(format!("toolgym-tag-special-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    tok.save(&dir).unwrap();
    let again = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    assert_eq!(again.token_to_id("<think>"), Some(id));
    assert_eq!(again.decode(&[id], true).unwrap(), "");
    // The other tags stay plain added tokens.
    let tag = again.token_to_id("<tool_call>").unwrap();
    assert_eq!(again.decode(&[tag], true).unwrap(), "<tool_call>");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn words_apart_gives_a_value_one_token_in_the_query_and_the_call() {
    let texts = corpus(2000);
    let opts = |p| BpeOptions {
        pre_tokenizer: p,
        ..BpeOptions::chatml(1024)
    };
    let query = "What about Paris on day 3?";
    let call = r#"{"city": "Paris", "day": 3}"#;
    let tokens = |t: &Tokenizer, s: &str| -> Vec<String> {
        let ids = t.encode(s).unwrap();
        ids.iter().map(|&i| t.id_to_token(i).unwrap()).collect()
    };
    // Qwen2's split glues the space to the word: ` Paris` in the query,
    // `Paris` in the call.
    let qwen = train_bpe_tokenizer_with(&texts, &opts(PreTokenizer::Qwen2)).unwrap();
    assert!(tokens(&qwen, query).contains(&"ĠParis".to_string()));
    assert!(!tokens(&qwen, call).contains(&"ĠParis".to_string()));
    let apart = train_bpe_tokenizer_with(&texts, &opts(PreTokenizer::WordsApart)).unwrap();
    let (q, c) = (tokens(&apart, query), tokens(&apart, call));
    assert!(q.contains(&"Paris".to_string()), "{q:?}");
    assert!(c.contains(&"Paris".to_string()), "{c:?}");
    assert!(!q
        .iter()
        .chain(&c)
        .any(|t| t.ends_with("Paris") && t != "Paris"));
    // Still lossless, and the saved tokenizer keeps its split.
    for t in corpus(50)
        .iter()
        .map(String::as_str)
        .chain([query, call, "São Paulo  東京\n\t x"])
    {
        let ids = apart.encode(t).unwrap();
        assert_eq!(apart.decode(&ids, false).unwrap(), t);
    }
    let json = apart.to_json_string().unwrap();
    assert!(json.contains(r"\\p{L}+|\\p{N}"), "split regex not saved");
}

#[test]
fn new_refuses_a_config_token_the_vocabulary_lacks() {
    let tk = train_bpe_tokenizer(&corpus(200), 400, &[]).unwrap();
    let inner = || tk.inner().clone();
    // Named tokens are taken; a missing one is refused by key and token,
    // never replaced by another id.
    let named =
        serde_json::json!({"eos_token": {"content": "<|endoftext|>"}, "pad_token": "<|im_end|>"});
    let ok = Tokenizer::new(inner(), Some(named)).unwrap();
    assert_eq!(
        ok.eos_token_ids(),
        &[tk.token_to_id("<|endoftext|>").unwrap()]
    );
    assert_eq!(ok.pad_token_id(), tk.token_to_id("<|im_end|>"));
    for key in ["eos_token", "pad_token"] {
        let Err(e) = Tokenizer::new(inner(), Some(serde_json::json!({key: "<|eot_id|>"}))) else {
            panic!("{key} naming a missing token was taken");
        };
        let e = e.to_string();
        assert!(
            e.contains(&format!(
                "{key} \"<|eot_id|>\" is not a token of the vocabulary"
            )),
            "{e}"
        );
    }
    // A value that names no token is refused too (it was taken as absent,
    // and the Qwen2 conventions stood in); null is absent.
    for bad in [
        serde_json::json!(["<|im_end|>"]),
        serde_json::json!({"text": "x"}),
    ] {
        let Err(e) = Tokenizer::new(inner(), Some(serde_json::json!({"eos_token": bad}))) else {
            panic!("eos_token {bad} was taken");
        };
        let e = e.to_string();
        assert!(e.contains("eos_token is neither a token's text"), "{e}");
    }
    // A config that is no object would lose every setting in silence.
    let Err(e) = Tokenizer::new(inner(), Some(serde_json::json!(["<|im_end|>"]))) else {
        panic!("a list was taken as a config");
    };
    assert!(
        e.to_string()
            .contains("the tokenizer config is not a JSON object"),
        "{e}"
    );
    let null = Tokenizer::new(inner(), Some(serde_json::json!({"pad_token": null}))).unwrap();
    assert_eq!(null.pad_token_id(), tk.pad_token_id());
    // Without a config: the Qwen2 conventions.
    let plain = Tokenizer::new(inner(), None).unwrap();
    assert_eq!(plain.eos_token_ids(), tk.eos_token_ids());
    assert_eq!(plain.pad_token_id(), tk.pad_token_id());
}

#[test]
fn a_text_the_regex_library_gives_up_on_is_an_error_not_a_panic() {
    // Qwen2's split pattern backtracks once per character of a whitespace
    // run without a newline; past ten million the regex library panics
    // (the Python tokenizer too). An env's text like that must fail its
    // episode, not unwind out of the rollout.
    let tk = train_bpe_tokenizer(&corpus(200), 400, &[]).unwrap();
    let spaces = " ".repeat(12_000_000);
    let e = tk.encode(&spaces).unwrap_err().to_string();
    assert!(
        e.contains("the tokenizers library failed on a text of 12000000 bytes"),
        "{e}"
    );
    // The tokenizer still works afterwards.
    assert!(!tk.encode("hello world").unwrap().is_empty());
}
