//! `toolgym generate` logic.

mod common;

use common::*;
use toolgym_model::cli::{generate, parse_device, parse_dtype, parse_prompt_ids, GenerateArgs};
use toolgym_model::{
    save_pretrained, train_bpe_tokenizer, ModelOptions, Qwen2ForCausalLM, RandomInit, SamplingPlace,
};

#[test]
fn generates_from_ids_and_text() {
    // Fixture without tokenizer: ids in, no text out.
    let mut args = GenerateArgs::new(fixture_dir("qwen2_tiny_tied"));
    args.prompt_ids = Some(parse_prompt_ids("1, 2,3").unwrap());
    args.max_new_tokens = 5;
    args.greedy = true;
    args.json = true;
    let out = generate(&args).unwrap();
    assert_eq!(out.token_ids.len(), 5);
    let json: serde_json::Value = serde_json::from_str(&out.render(true).unwrap()).unwrap();
    assert_eq!(json["finish_reason"], "length");
    assert!(json.get("text").is_none());
    assert_eq!(json["token_ids"].as_array().unwrap().len(), 5);
    assert_eq!(json["logprobs"].as_array().unwrap().len(), 5);
    assert_eq!(out.render(false).unwrap().split(',').count(), 5);
    // Text prompt without tokenizer: a clear error.
    args.prompt_ids = None;
    args.prompt = Some("hi".into());
    let e = generate(&args).unwrap_err();
    assert!(e.to_string().contains("tokenizer.json"), "{e}");

    // A directory with a tokenizer.
    let tk =
        train_bpe_tokenizer(&["<|im_start|>user\nhello world<|im_end|>"; 4], 300, &[]).unwrap();
    let mut cfg = small_config(true);
    cfg.vocab_size = tk.vocab_size();
    let m =
        Qwen2ForCausalLM::random(&cfg, &RandomInit::peaked(3), &ModelOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    save_pretrained(tmp.path(), &m, Some(&tk), None, tk.eos_token_ids()).unwrap();
    let mut args = GenerateArgs::new(tmp.path());
    args.prompt = Some("<|im_start|>user\nhello".into());
    args.max_new_tokens = 6;
    args.seed = Some(4);
    args.top_k = Some(20);
    args.top_p = Some(0.9);
    args.temperature = Some(0.8);
    let a = generate(&args).unwrap();
    let b = generate(&args).unwrap();
    assert_eq!(a, b, "seeded");
    let json: serde_json::Value = serde_json::from_str(&a.render(true).unwrap()).unwrap();
    assert!(json["text"].is_string());
    assert_eq!(a.render(false).unwrap(), a.text.clone().unwrap());
    args.prompt_ids = Some(vec![1]);
    assert!(generate(&args).is_err(), "both prompt kinds");
}

/// `--sampling-place device` on the CPU draws what the host sampler draws.
#[test]
fn sampling_place_is_passed_through() {
    let mut args = GenerateArgs::new(fixture_dir("qwen2_tiny_untied"));
    args.prompt_ids = Some(vec![3, 1, 4, 1, 5]);
    args.max_new_tokens = 8;
    args.temperature = Some(0.7);
    args.seed = Some(11);
    args.sampling_place = SamplingPlace::Host;
    let host = generate(&args).unwrap();
    args.sampling_place = SamplingPlace::Device;
    let device = generate(&args).unwrap();
    assert_eq!(host.token_ids, device.token_ids);
    assert!(max_abs_diff(&host.logprobs, &device.logprobs) < 1e-4);
    assert_eq!(
        "device".parse::<SamplingPlace>().unwrap(),
        SamplingPlace::Device
    );
}

/// With no sampling flag, `generate` samples as transformers' `generate()`
/// would for the directory: its generation_config.json's `do_sample`,
/// temperature, top-p and top-k, else transformers' defaults (greedy). A
/// flag given samples, the settings not given from the file; settings
/// the sampler does not apply are listed; a bad value names the file.
#[test]
fn sampling_defaults_are_the_models_generation_config() {
    let tmp = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(
            fixture_dir("qwen2_tiny_untied").join(file),
            tmp.path().join(file),
        )
        .unwrap();
    }
    let gen_file = tmp.path().join("generation_config.json");
    let run = |gen: Option<serde_json::Value>, edit: &dyn Fn(&mut GenerateArgs)| {
        match &gen {
            Some(g) => std::fs::write(&gen_file, g.to_string()).unwrap(),
            None => std::fs::remove_file(&gen_file).unwrap_or(()),
        }
        let mut args = GenerateArgs::new(tmp.path());
        args.prompt_ids = Some(vec![3, 1, 4, 1, 5]);
        args.max_new_tokens = 12;
        edit(&mut args);
        generate(&args)
    };
    let greedy = run(None, &|a| a.greedy = true).unwrap();
    // No file, or one without do_sample: greedy, as transformers decodes.
    let plain = run(None, &|_| {}).unwrap();
    assert!(plain.sampling.greedy && plain.unapplied.is_empty());
    assert_eq!(plain.token_ids, greedy.token_ids);
    // The file's repetition penalty applies to greedy decoding too, as
    // the flag gives it; a setting not applied is named.
    let no_sample = serde_json::json!({"temperature": 0.7, "repetition_penalty": 1.1,
                                       "no_repeat_ngram_size": 2});
    let o = run(Some(no_sample.clone()), &|_| {}).unwrap();
    let flagged = run(None, &|a| a.repetition_penalty = Some(1.1)).unwrap();
    assert!(o.sampling.greedy && o.sampling.repetition_penalty == 1.1);
    assert_eq!(o.token_ids, flagged.token_ids);
    assert_eq!(o.unapplied, ["no_repeat_ngram_size 2"]);
    let off = run(Some(no_sample.clone()), &|a| {
        a.repetition_penalty = Some(1.0)
    })
    .unwrap();
    assert_eq!(off.token_ids, greedy.token_ids);
    let strong = run(None, &|a| a.repetition_penalty = Some(5.0)).unwrap();
    assert_ne!(
        strong.token_ids, greedy.token_ids,
        "a strong penalty changes greedy decoding"
    );
    let e = run(None, &|a| a.repetition_penalty = Some(0.0)).unwrap_err();
    assert!(e.to_string().contains("repetition_penalty"), "{e}");
    // Qwen2.5-Instruct's settings: sampled with them, at seed 0.
    let qwen = serde_json::json!({"do_sample": true, "temperature": 0.7, "top_p": 0.8,
                                  "top_k": 20, "repetition_penalty": 1.05, "min_p": null});
    let from_file = run(Some(qwen.clone()), &|_| {}).unwrap();
    let explicit = run(None, &|a| {
        (a.temperature, a.top_p, a.top_k) = (Some(0.7), Some(0.8), Some(20));
        a.repetition_penalty = Some(1.05);
    })
    .unwrap();
    assert_eq!(from_file.token_ids, explicit.token_ids);
    assert_eq!(
        (
            from_file.sampling.temperature,
            from_file.sampling.top_p,
            from_file.sampling.top_k,
            from_file.sampling.repetition_penalty
        ),
        (0.7, 0.8, 20, 1.05)
    );
    assert!(from_file.unapplied.is_empty(), "{:?}", from_file.unapplied);
    // A flag overrides its setting only; --greedy overrides do_sample, and
    // a sampling-only filter is then not listed.
    let hot = run(Some(qwen.clone()), &|a| a.temperature = Some(1.5)).unwrap();
    assert_eq!((hot.sampling.temperature, hot.sampling.top_k), (1.5, 20));
    let mut with_min_p = qwen.clone();
    with_min_p["min_p"] = serde_json::json!(0.05);
    let o = run(Some(with_min_p.clone()), &|_| {}).unwrap();
    assert_eq!(o.unapplied, ["min_p 0.05"]);
    let o = run(Some(with_min_p), &|a| a.greedy = true).unwrap();
    let greedy_penalised = run(None, &|a| {
        a.greedy = true;
        a.repetition_penalty = Some(1.05);
    })
    .unwrap();
    assert_eq!(o.token_ids, greedy_penalised.token_ids);
    assert!(o.unapplied.is_empty(), "{:?}", o.unapplied);
    // --greedy reads none of the file's sampling values, which may then
    // be ones a sampler refuses; other settings are named, empty ones not.
    let odd = serde_json::json!({"do_sample": true, "top_k": -1, "suppress_tokens": [7],
                                 "bad_words_ids": [], "min_new_tokens": 0});
    let o = run(Some(odd), &|a| a.greedy = true).unwrap();
    assert_eq!(o.token_ids, greedy.token_ids);
    assert_eq!(o.unapplied, ["suppress_tokens [7]"]);
    // It reads the file's repetition penalty, unless the flag gives one.
    let bad_penalty = serde_json::json!({"repetition_penalty": "high"});
    let e = run(Some(bad_penalty.clone()), &|a| a.greedy = true).unwrap_err();
    assert!(e.to_string().contains("repetition_penalty \"high\""), "{e}");
    let o = run(Some(bad_penalty), &|a| {
        a.greedy = true;
        a.repetition_penalty = Some(1.0);
    })
    .unwrap();
    assert_eq!(o.token_ids, greedy.token_ids);
    // A seed alone samples, with the file's settings (transformers' top_k
    // 50 where the file has none).
    let seeded = run(Some(no_sample), &|a| a.seed = Some(3)).unwrap();
    assert!(!seeded.sampling.greedy);
    assert_eq!(
        (
            seeded.sampling.temperature,
            seeded.sampling.top_k,
            seeded.sampling.repetition_penalty
        ),
        (0.7, 50, 1.1)
    );
    // Values of the wrong type or range name the file and the key.
    for (bad, key) in [
        (serde_json::json!({"do_sample": "yes"}), "do_sample \"yes\""),
        (
            serde_json::json!({"temperature": "hot"}),
            "temperature \"hot\"",
        ),
        (serde_json::json!({"top_k": 2.5}), "top_k 2.5"),
        (serde_json::json!({"top_p": 0}), "top_p must be in (0, 1]"),
        (
            serde_json::json!({"do_sample": true, "temperature": 0}),
            "temperature 0 with do_sample true",
        ),
        (
            serde_json::json!({"repetition_penalty": -1}),
            "repetition_penalty -1 must be a number above 0",
        ),
    ] {
        let e = run(Some(bad), &|_| {}).unwrap_err().to_string();
        assert!(
            e.contains("generation_config.json") && e.contains(key),
            "{e}"
        );
    }
}

#[test]
fn parses_flags() {
    assert!(parse_prompt_ids("1,x").is_err());
    // An empty item may be an id left out: said, not skipped.
    for bad in ["1,,2", "1,2,", ""] {
        let e = parse_prompt_ids(bad).unwrap_err().to_string();
        assert!(e.contains("is empty"), "{bad}: {e}");
    }
    assert_eq!(parse_dtype("bf16").unwrap(), candle_core::DType::BF16);
    assert!(parse_dtype("int8").is_err());
    assert!(parse_device("cpu").unwrap().is_cpu());
    assert!(parse_device("tpu").is_err());
    #[cfg(not(feature = "cuda"))]
    assert!(parse_device("cuda")
        .unwrap_err()
        .to_string()
        .contains("--features cuda"));
}

/// Flag values that are wrong whatever the model are refused before it
/// loads: a directory that holds no model shows the flag's error, not the
/// load's.
#[test]
fn bad_flags_are_refused_before_the_model_loads() {
    let nowhere = std::env::temp_dir().join("toolgym-no-model-here");
    let with = |edit: &dyn Fn(&mut GenerateArgs)| {
        let mut args = GenerateArgs::new(&nowhere);
        args.prompt_ids = Some(vec![1, 2]);
        edit(&mut args);
        generate(&args).unwrap_err().to_string()
    };
    type Edit<'a> = &'a dyn Fn(&mut GenerateArgs);
    let cases: [(Edit, &str); 5] = [
        (
            &|a| a.temperature = Some(-1.0),
            "temperature must be finite",
        ),
        (&|a| a.top_p = Some(2.0), "top_p must be in (0, 1]"),
        (&|a| a.repetition_penalty = Some(0.0), "repetition_penalty"),
        (&|a| a.prompt = Some("hi".into()), "not both"),
        (
            &|a| a.prompt_ids = None,
            "give --prompt TEXT or --prompt-ids",
        ),
    ];
    for (edit, want) in cases {
        let e = with(edit);
        assert!(
            e.contains(want) && !e.contains("toolgym-no-model-here"),
            "{e}"
        );
    }
    // Good flags reach the load, which names the directory.
    assert!(with(&|_| {}).contains("toolgym-no-model-here"));
}
