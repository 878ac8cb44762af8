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
    args.seed = 4;
    args.top_k = 20;
    args.top_p = 0.9;
    args.temperature = 0.8;
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
    args.temperature = 0.7;
    args.seed = 11;
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
