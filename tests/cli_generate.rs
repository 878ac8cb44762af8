//! `toolgym generate` on a model whose weights are not numbers: an error,
//! not a completion that reads as a normal stop; and no tokens to generate
//! is refused.

// Only part of the shared helpers is used here.
#[allow(dead_code)]
#[path = "support/cli.rs"]
mod cli;
#[path = "support/tiny_model.rs"]
mod tiny_model;
use cli::{text, toolgym};
use toolgym_model::candle_core::{safetensors, Device, Tensor};

#[test]
fn nan_weights_are_an_error_not_a_completion() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model::save_tiny_model(dir.path());
    let m = model.to_str().unwrap();
    let generate = |tokens: &str| {
        toolgym(&[
            "generate",
            "--model",
            m,
            "--prompt",
            "hi",
            "--max-new-tokens",
            tokens,
        ])
    };
    let o = generate("3");
    assert!(o.status.success(), "{}", text(&o.stderr));
    // A sampling setting beside --greedy did nothing, silently: refused.
    for (flag, value) in [("--temperature", "5"), ("--seed", "9"), ("--top-k", "5")] {
        let o = toolgym(&[
            "generate", "--model", m, "--prompt", "hi", "--greedy", flag, value,
        ]);
        assert!(!o.status.success(), "{flag}");
        assert!(
            text(&o.stderr).contains("cannot be used with"),
            "{flag}: {}",
            text(&o.stderr)
        );
    }
    // No tokens to generate is refused, naming the flag (it printed an
    // empty completion), here and in eval.
    let o = generate("0");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--max-new-tokens <MAX_NEW_TOKENS>")
            && text(&o.stderr).contains("must be at least 1"),
        "{}",
        text(&o.stderr)
    );
    let o = toolgym(&[
        "eval",
        "bfcl",
        "--data-dir",
        ".",
        "--model",
        m,
        "--max-new-tokens",
        "0",
    ]);
    assert!(
        !o.status.success() && text(&o.stderr).contains("must be at least 1"),
        "{}",
        text(&o.stderr)
    );
    let file = model.join("model.safetensors");
    let mut tensors = safetensors::load(&file, &Device::Cpu).unwrap();
    let norm = tensors.get("model.norm.weight").unwrap();
    let nan = Tensor::full(f32::NAN, norm.dims(), &Device::Cpu)
        .unwrap()
        .to_dtype(norm.dtype())
        .unwrap();
    tensors.insert("model.norm.weight".into(), nan);
    safetensors::save(&tensors, &file).unwrap();
    for mode in ["--temperature", "--greedy"] {
        let mut args = vec!["generate", "--model", m, "--prompt", "hi", "--json", mode];
        if mode == "--temperature" {
            args.push("1");
        }
        let o = toolgym(&args);
        assert!(!o.status.success(), "{}", text(&o.stdout));
        assert!(
            text(&o.stderr).contains("logits are not finite"),
            "{}",
            text(&o.stderr)
        );
    }
}

/// Ids past the tokenizer's vocabulary (a padded embedding) have no text:
/// said on stderr, where the text left them out silently.
#[test]
fn ids_without_a_token_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model::save_tiny_model_padded(dir.path(), 300);
    let o = toolgym(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "hi",
        "--max-new-tokens",
        "40",
        "--temperature",
        "5",
        "--seed",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let vocab = toolgym_model::Tokenizer::from_file(model.join("tokenizer.json"))
        .unwrap()
        .vocab_size() as u64;
    let past = out["token_ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|id| id.as_u64().unwrap() >= vocab)
        .count();
    assert!(past > 0, "{out}");
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("{past} of the ")) && err.contains("no token of the tokenizer"),
        "{err}"
    );
}

/// Sampling follows the model's generation_config.json, as transformers'
/// `generate()` does; what the sampler does not apply is said on stderr.
#[test]
fn the_models_sampling_settings_are_used_and_the_rest_said() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model::save_tiny_model(dir.path());
    let m = model.to_str().unwrap();
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--model",
            m,
            "--prompt",
            "hi",
            "--max-new-tokens",
            "8",
            "--json",
        ];
        args.extend_from_slice(extra);
        let o = toolgym(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let out: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (out["token_ids"].clone(), text(&o.stderr))
    };
    let gen = serde_json::json!({"do_sample": true, "temperature": 3.0, "top_k": 0,
                                 "repetition_penalty": 1.05, "no_repeat_ngram_size": 3});
    std::fs::write(model.join("generation_config.json"), gen.to_string()).unwrap();
    let (from_file, err) = generate(&[]);
    assert!(
        err.contains("generation_config.json sets no_repeat_ngram_size 3"),
        "{err}"
    );
    assert!(!err.contains("repetition_penalty"), "applied: {err}");
    let (explicit, _) = generate(&[
        "--temperature",
        "3",
        "--top-k",
        "0",
        "--seed",
        "0",
        "--repetition-penalty",
        "1.05",
    ]);
    assert_eq!(from_file, explicit);
    let (greedy, err) = generate(&["--greedy"]);
    assert_ne!(from_file, greedy, "hot sampling and greedy differ");
    assert!(err.contains("no_repeat_ngram_size"), "{err}");
    // Sampling asked to stay on the device names each setting that keeps
    // it on the host (top-k and top-p too, not only the penalty).
    let (_, err) = generate(&[
        "--sampling-place",
        "device",
        "--top-k",
        "20",
        "--top-p",
        "0.8",
    ]);
    assert!(
        err.contains("tokens were chosen on the host")
            && err.contains("repetition penalty 1.05 (--repetition-penalty 1)")
            && err.contains("top-k 20 (--top-k 0)")
            && err.contains("top-p 0.8 (--top-p 1)"),
        "{err}"
    );
    let (_, err) = generate(&["--sampling-place", "device", "--repetition-penalty", "1"]);
    assert!(!err.contains("chosen on the host"), "{err}");
}

/// Prompt errors are said in the command's terms (they read "request 0:
/// empty prompt" and "max_new_tokens … exceed").
#[test]
fn prompt_errors_name_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model::save_tiny_model(dir.path());
    let m = model.to_str().unwrap();
    let o = toolgym(&["generate", "--model", m, "--prompt", ""]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--prompt gives no token"),
        "{}",
        text(&o.stderr)
    );
    let o = toolgym(&[
        "generate",
        "--model",
        m,
        "--prompt",
        "hi",
        "--max-new-tokens",
        "100000000",
    ]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("--prompt is") && e.contains("lower --max-new-tokens"),
        "{e}"
    );
}
