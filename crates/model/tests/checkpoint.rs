//! Loading and saving Hugging Face directories, and their error messages.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor};
use common::*;
use toolgym_model::checkpoint::read_safetensors;
use toolgym_model::{
    load_pretrained, save_pretrained, train_bpe_tokenizer, ModelError, ModelOptions, Qwen2Config,
    Qwen2ForCausalLM, TokenBatch,
};

fn logits(m: &Qwen2ForCausalLM) -> Vec<f32> {
    let b = TokenBatch::left_padded(&[vec![1u32, 2, 3, 4, 5], vec![7, 8]], 0).unwrap();
    flat(&m.forward(&b, None).unwrap())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn write_st(path: &Path, tensors: &HashMap<String, Tensor>) {
    candle_core::safetensors::save(tensors, path).unwrap();
}

#[test]
fn save_then_load_gives_identical_logits() {
    for v in VARIANTS {
        let f = fixture(v, true);
        let tmp = tempfile::tempdir().unwrap();
        f.model.save(tmp.path()).unwrap();
        // On the fixture's device: logits are compared bit for bit.
        let back = Qwen2ForCausalLM::load(tmp.path(), &options(true)).unwrap();
        assert!(logits(&back) == logits(&f.model), "{v}: logits changed");
        assert_eq!(
            back.config().tie_word_embeddings,
            f.model.config().tie_word_embeddings
        );
        let saved = read_safetensors(&tmp.path().join("model.safetensors")).unwrap();
        assert_eq!(
            saved.contains_key("lm_head.weight"),
            !f.model.config().tie_word_embeddings
        );
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(tmp.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(cfg["rope_parameters"]["rope_theta"], cfg["rope_theta"]);
        assert_eq!(cfg["model_type"], "qwen2");
    }
}

#[test]
fn bf16_weights_load_and_run() {
    let f = fixture("qwen2_tiny_untied", false);
    let opts = ModelOptions {
        dtype: DType::BF16,
        ..options(false)
    };
    let m = Qwen2ForCausalLM::load(fixture_dir("qwen2_tiny_untied"), &opts).unwrap();
    let d = max_abs_diff(&logits(&m), &logits(&f.model));
    assert!(d < 0.5, "bf16 vs f32 logits differ by {d}");
    // Scoring and generation log-probs come out in f32 whatever the dtype.
    let s =
        toolgym_model::score(&m, &[vec![1u32, 2]], &[vec![3u32, 4]], &Default::default()).unwrap();
    assert_eq!(s.logprobs.dtype(), DType::F32);
}

#[test]
fn f16_weights_load_and_run() {
    let f = fixture("qwen2_tiny_tied", false);
    let opts = ModelOptions {
        dtype: DType::F16,
        ..options(false)
    };
    let m16 = Qwen2ForCausalLM::load(fixture_dir("qwen2_tiny_tied"), &opts).unwrap();
    let d = max_abs_diff(&logits(&m16), &logits(&f.model));
    assert!(d < 0.1, "f16 vs f32 logits differ by {d}");
    let tmp = tempfile::tempdir().unwrap();
    m16.save(tmp.path()).unwrap();
    let saved = read_safetensors(&tmp.path().join("model.safetensors")).unwrap();
    assert_eq!(saved["model.norm.weight"].dtype(), DType::F16);
    let back = Qwen2ForCausalLM::load(tmp.path(), &opts).unwrap();
    assert!(logits(&back) == logits(&m16));
}

#[test]
fn sharded_checkpoints_load() {
    let dir = fixture_dir("qwen2_tiny_untied");
    let all = read_safetensors(&dir.join("model.safetensors")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("config.json"), tmp.path().join("config.json")).unwrap();
    let mut shards = [HashMap::new(), HashMap::new()];
    let mut map = serde_json::Map::new();
    for (i, (name, t)) in all.into_iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i % 2 + 1);
        map.insert(name.clone(), file.into());
        shards[i % 2].insert(name, t);
    }
    for (i, s) in shards.iter().enumerate() {
        write_st(
            &tmp.path()
                .join(format!("model-0000{}-of-00002.safetensors", i + 1)),
            s,
        );
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map.clone()});
    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let m = Qwen2ForCausalLM::load(tmp.path(), &options(false)).unwrap();
    let f = fixture("qwen2_tiny_untied", false);
    assert!(logits(&m) == logits(&f.model));

    // Shards must hold what the index says: a tensor also in the other
    // shard (which copy would win?) or missing from its own is refused,
    // naming the shard and the tensor.
    let (name, t) = shards[1]
        .iter()
        .next()
        .map(|(n, t)| (n.clone(), t.clone()))
        .unwrap();
    let first = tmp.path().join("model-00001-of-00002.safetensors");
    let mut doubled = shards[0].clone();
    doubled.insert(name.clone(), t);
    write_st(&first, &doubled);
    let e = Qwen2ForCausalLM::load(tmp.path(), &options(false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model-00001-of-00002.safetensors")
            && e.contains(&format!("holds tensor `{name}`"))
            && e.contains("in \"model-00002-of-00002.safetensors\""),
        "{e}"
    );
    let mut short = shards[0].clone();
    let gone = short.keys().next().unwrap().clone();
    short.remove(&gone);
    write_st(&first, &short);
    let e = Qwen2ForCausalLM::load(tmp.path(), &options(false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model-00001-of-00002.safetensors")
            && e.contains(&format!("has no tensor `{gone}`")),
        "{e}"
    );
    // A tensor the index does not list is taken from the one shard that
    // holds it (transformers allows it); held by both, it is refused.
    write_st(&first, &shards[0]);
    let mut unlisted = map.clone();
    unlisted.remove(&name);
    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        serde_json::json!({"weight_map": unlisted}).to_string(),
    )
    .unwrap();
    let m = Qwen2ForCausalLM::load(tmp.path(), &options(false)).unwrap();
    assert!(logits(&m) == logits(&f.model));
    write_st(&first, &doubled);
    let e = Qwen2ForCausalLM::load(tmp.path(), &options(false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("holds tensor `{name}`")) && e.contains("another shard holds it too"),
        "{e}"
    );
}

#[test]
fn errors_name_the_missing_file_tensor_and_shapes() {
    let src = fixture_dir("qwen2_tiny_untied");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("m");
    let opts = ModelOptions::default();

    // Missing directory / config / weights.
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(matches!(e, ModelError::MissingFile { .. }), "{e}");
    std::fs::create_dir_all(&d).unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(e.to_string().contains("config.json"), "{e}");
    std::fs::copy(src.join("config.json"), d.join("config.json")).unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(e.to_string().contains("model.safetensors"), "{e}");

    // Missing tensor.
    let mut all = read_safetensors(&src.join("model.safetensors")).unwrap();
    let bias = "model.layers.1.self_attn.v_proj.bias";
    let kept = all.remove(bias).unwrap();
    write_st(&d.join("model.safetensors"), &all);
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(
        matches!(&e, ModelError::MissingTensor { name, .. } if name == bias),
        "{e}"
    );
    assert!(e.to_string().contains(bias));

    // A missing output layer under an untied config names the setting.
    all.insert(bias.to_string(), kept.clone());
    let head = all.remove("lm_head.weight").unwrap();
    write_st(&d.join("model.safetensors"), &all);
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err().to_string();
    assert!(
        e.contains("`lm_head.weight`") && e.contains("tie_word_embeddings false"),
        "{e}"
    );
    all.insert("lm_head.weight".into(), head);

    // Shape mismatch: both shapes in the message.
    all.insert(bias.to_string(), kept);
    let w = "model.layers.0.mlp.up_proj.weight";
    all.insert(
        w.to_string(),
        Tensor::zeros((96, 63), DType::F32, &candle_core::Device::Cpu).unwrap(),
    );
    write_st(&d.join("model.safetensors"), &all);
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(w) && msg.contains("[96, 63]") && msg.contains("[96, 64]"),
        "{msg}"
    );

    // Corrupt weights file.
    std::fs::write(d.join("model.safetensors"), b"not a safetensors file").unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(matches!(e, ModelError::Safetensors { .. }), "{e}");
    // An empty file (it cannot be mapped) and a file cut short (the
    // mapped read) are refused by name, not a crash.
    std::fs::write(d.join("model.safetensors"), b"").unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(
        matches!(e, ModelError::Safetensors { .. }) && e.to_string().contains("model.safetensors"),
        "{e}"
    );
    let whole = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(d.join("model.safetensors"), &whole[..whole.len() - 7]).unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(matches!(e, ModelError::Safetensors { .. }), "{e}");
    // Weights given as a directory: an I/O error naming it.
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    std::fs::create_dir(d.join("model.safetensors")).unwrap();
    let e = read_safetensors(&d.join("model.safetensors")).unwrap_err();
    assert!(e.to_string().contains("model.safetensors"), "{e}");
    std::fs::remove_dir(d.join("model.safetensors")).unwrap();
    // A Git LFS pointer (a clone without `git lfs pull`) says so.
    std::fs::write(
        d.join("model.safetensors"),
        "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 988097824\n",
    )
    .unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err().to_string();
    assert!(
        e.contains("Git LFS pointer") && e.contains("model.safetensors"),
        "{e}"
    );

    // Invalid and inconsistent configs.
    std::fs::write(d.join("config.json"), "{ nope").unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(e.to_string().contains("config.json"), "{e}");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["num_key_value_heads"] = 3.into();
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(e.to_string().contains("num_key_value_heads"), "{e}");

    // Sharded index pointing at a missing shard.
    copy_dir(&src, &d);
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    std::fs::write(
        d.join("model.safetensors.index.json"),
        r#"{"weight_map": {"model.norm.weight": "shard-1.safetensors"}}"#,
    )
    .unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(e.to_string().contains("shard-1.safetensors"), "{e}");
    // An entry that names no file is refused by its tensor (it was left out).
    std::fs::write(
        d.join("model.safetensors.index.json"),
        r#"{"weight_map": {"model.norm.weight": 3}}"#,
    )
    .unwrap();
    let e = Qwen2ForCausalLM::load(&d, &opts).unwrap_err();
    assert!(
        e.to_string()
            .contains("weight_map[\"model.norm.weight\"] is not a file name (got 3)"),
        "{e}"
    );
}

/// Weights config.json would leave unused, a config of another
/// architecture, token ids past the vocabulary and a file given as the
/// directory are refused by name; harmless extras load.
#[test]
fn a_config_that_does_not_match_its_weights_is_refused() {
    let src = fixture_dir("qwen2_tiny_tied");
    let tmp = tempfile::tempdir().unwrap();
    let opts = ModelOptions::default();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let weights = read_safetensors(&src.join("model.safetensors")).unwrap();
    let variant =
        |name: &str, edit: &dyn Fn(&mut serde_json::Value, &mut HashMap<String, Tensor>)| {
            let d = tmp.path().join(name);
            copy_dir(&src, &d);
            let (mut c, mut w) = (config.clone(), weights.clone());
            edit(&mut c, &mut w);
            std::fs::write(d.join("config.json"), c.to_string()).unwrap();
            write_st(&d.join("model.safetensors"), &w);
            d
        };
    let refused = |d: &Path| Qwen2ForCausalLM::load(d, &opts).unwrap_err().to_string();

    // Fewer layers in the config than in the weights: a truncated model.
    let d = variant("fewer_layers", &|c, _| c["num_hidden_layers"] = 2.into());
    let e = refused(&d);
    assert!(
        e.contains("`model.layers.2.input_layernorm.weight`")
            && e.contains("num_hidden_layers is 2 but the weights hold 3 layers")
            && e.contains("config.json"),
        "{e}"
    );

    // A tied config with a head of its own that differs from the embedding.
    let d = variant("tied_other_head", &|_, w| {
        let embed = &w["model.embed_tokens.weight"];
        w.insert("lm_head.weight".into(), (embed + 1.0).unwrap());
    });
    let e = refused(&d);
    assert!(
        e.contains("`lm_head.weight`") && e.contains("tie_word_embeddings"),
        "{e}"
    );

    // Tensors of another architecture.
    let d = variant("other_tensors", &|_, w| {
        let norm = w["model.norm.weight"].clone();
        w.insert(
            "model.layers.0.self_attn.q_norm.weight".into(),
            norm.clone(),
        );
        w.insert("score.weight".into(), norm);
    });
    let e = refused(&d);
    assert!(
        e.starts_with("invalid config") && e.contains("2 tensor(s)"),
        "{e}"
    );
    assert!(e.contains("`score.weight`") && e.contains("q_norm"), "{e}");

    // Harmless extras: the tied head equal to the embedding, rotary buffers.
    let d = variant("harmless", &|_, w| {
        let embed = w["model.embed_tokens.weight"].clone();
        w.insert("lm_head.weight".into(), embed);
        let inv = Tensor::ones(8, DType::F32, &candle_core::Device::Cpu).unwrap();
        w.insert("model.layers.0.self_attn.rotary_emb.inv_freq".into(), inv);
    });
    let loaded = Qwen2ForCausalLM::load(&d, &opts).unwrap();
    let f = fixture("qwen2_tiny_tied", false);
    assert!(logits(&loaded) == logits(&f.model));

    // Another architecture's config, and token ids the model cannot emit.
    let d = variant("llama", &|c, _| c["model_type"] = "llama".into());
    assert!(refused(&d).contains("model_type \"llama\" is not supported"));
    let d = variant("eos", &|c, _| {
        c["eos_token_id"] = serde_json::json!([3, 256])
    });
    let e = refused(&d);
    assert!(
        e.contains("eos_token_id 256") && e.contains("vocab_size is 256"),
        "{e}"
    );
    let d = variant("generation_eos", &|_, _| {});
    let gen = d.join("generation_config.json");
    for (value, shown) in [("999", "eos_token_id 999"), ("\"2\"", "eos_token_id \"2\"")] {
        std::fs::write(&gen, format!("{{\"eos_token_id\": [1, {value}]}}")).unwrap();
        let e = load_pretrained(&d, &opts).unwrap_err().to_string();
        assert!(
            e.contains(shown) && e.contains("generation_config.json"),
            "{e}"
        );
    }
    std::fs::write(&gen, r#"{"eos_token_id": 5, "pad_token_id": null}"#).unwrap();
    let pre = load_pretrained(&d, &opts).unwrap();
    assert_eq!((pre.eos_token_ids, pre.pad_token_id), (vec![5], 0));
    // A file that is no JSON object would lose its settings in silence.
    std::fs::write(&gen, "[5]").unwrap();
    let e = load_pretrained(&d, &opts).unwrap_err().to_string();
    assert!(
        e.contains("generation_config.json") && e.contains("not a JSON object"),
        "{e}"
    );
    std::fs::remove_file(&gen).unwrap();

    // A file where the directory belongs; a checkpoint's `latest` names its directory.
    let latest = tmp.path().join("latest");
    std::fs::write(&latest, "harmless\n").unwrap();
    let e = refused(&latest);
    assert!(e.contains("is a file, not a model directory"), "{e}");
    assert!(
        e.contains(&format!(
            "it names {}",
            tmp.path().join("harmless").display()
        )),
        "{e}"
    );
    std::fs::write(&latest, "no-such-step").unwrap();
    assert!(!refused(&latest).contains("it names"));
}

#[test]
fn config_reads_transformers_4_and_5_layouts() {
    let v4 = r#"{"architectures":["Qwen2ForCausalLM"],"bos_token_id":151643,"eos_token_id":[151645,151643],
        "hidden_act":"silu","hidden_size":896,"initializer_range":0.02,"intermediate_size":4864,
        "max_position_embeddings":32768,"max_window_layers":21,"model_type":"qwen2","num_attention_heads":14,
        "num_hidden_layers":24,"num_key_value_heads":2,"rms_norm_eps":1e-06,"rope_theta":1000000.0,
        "sliding_window":32768,"tie_word_embeddings":true,"torch_dtype":"bfloat16","use_cache":true,
        "use_sliding_window":false,"vocab_size":151936}"#;
    let c = Qwen2Config::from_json_str(v4).unwrap();
    let mut reference = Qwen2Config::qwen2_5_0_5b();
    reference.eos_token_id = vec![151645, 151643];
    assert_eq!(c.rope_theta, 1e6);
    assert_eq!(c.head_dim, 64);
    assert_eq!(c.eos_token_id, vec![151645, 151643]);
    assert_eq!(c.num_parameters(), reference.num_parameters());
    assert_eq!(c.num_parameters(), 494_032_768);
    // Round trip keeps unknown keys.
    let back = Qwen2Config::from_json_str(&c.to_json_string().unwrap()).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.extra["max_window_layers"], 21);
    let v5 = std::fs::read_to_string(fixture_dir("qwen2_tiny_untied").join("config.json")).unwrap();
    let c5 = Qwen2Config::from_json_str(&v5).unwrap();
    assert_eq!(c5.rope_theta, 1e6);
    assert_eq!(c5.rms_norm_eps, 1e-5);
    for bad in [
        v4.replace("\"silu\"", "\"gelu\""),
        v4.replace(
            "\"use_sliding_window\":false",
            "\"use_sliding_window\":true",
        ),
        v4.replace(
            "\"rope_theta\":1000000.0",
            "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4.0}",
        ),
    ] {
        assert!(Qwen2Config::from_json_str(&bad).is_err());
    }
    // A rotary setting that is not plainly the default is refused naming
    // it, not read as the default: a scaling without a type, a bare name,
    // a theta that is no number or that disagrees with the top level's,
    // one that is inf in f32; so is a context of 0 positions.
    let with = |key: &str, value: &str| {
        let mut v: serde_json::Value = serde_json::from_str(v4).unwrap();
        v[key] = serde_json::from_str(value).unwrap();
        Qwen2Config::from_json_str(&v.to_string()).map_err(|e| e.to_string())
    };
    for (key, value, said) in [
        ("rope_scaling", "{\"factor\": 4.0}", "rope_scaling"),
        ("rope_scaling", "\"yarn\"", "rope_scaling"),
        (
            "rope_parameters",
            "{\"rope_theta\": \"1e6\"}",
            "is not a number",
        ),
        ("rope_parameters", "{\"rope_theta\": 10000.0}", "differ"),
        ("rope_theta", "1e39", "at most f32::MAX"),
        (
            "max_position_embeddings",
            "0",
            "max_position_embeddings must be positive",
        ),
        // A head width derived from sizes that do not divide names them.
        (
            "hidden_size",
            "900",
            "hidden_size (900) is not a multiple of num_attention_heads (14)",
        ),
    ] {
        let e = with(key, value).unwrap_err();
        assert!(e.contains(said), "{key} = {value}: {e}");
    }
    for (key, value) in [
        ("rope_scaling", "null"),
        ("rope_scaling", "{\"rope_type\": \"default\"}"),
        (
            "rope_parameters",
            "{\"rope_theta\": 1000000.0, \"rope_type\": \"default\"}",
        ),
        ("rope_parameters", "{\"rope_theta\": 1000000.0}"),
    ] {
        assert_eq!(with(key, value).unwrap().rope_theta, 1e6, "{key} = {value}");
    }
}

#[test]
fn save_pretrained_round_trips_tokenizer_and_eos() {
    let texts = [
        "<|im_start|>user\nhi there<|im_end|>\n",
        "<tool_call>{\"name\": \"x\"}</tool_call>",
    ];
    let tk = train_bpe_tokenizer(&texts, 300, &[]).unwrap();
    let mut cfg = small_config(true);
    cfg.vocab_size = tk.vocab_size();
    let model = Qwen2ForCausalLM::random(
        &cfg,
        &toolgym_model::RandomInit::peaked(1),
        &ModelOptions::default(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    save_pretrained(tmp.path(), &model, Some(&tk), None, tk.eos_token_ids()).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        assert!(tmp.path().join(f).is_file(), "{f}");
    }
    // The weights are readable as every other file is (safetensors writes
    // through a 0600 temporary file), and no probe is left behind.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            let m = std::fs::metadata(tmp.path().join(f)).unwrap();
            m.permissions().mode() & 0o777
        };
        assert_eq!(mode("model.safetensors"), mode("config.json"));
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 5);
    }
    let pre = load_pretrained(tmp.path(), &ModelOptions::default()).unwrap();
    let tk2 = pre.tokenizer.unwrap();
    assert_eq!(
        pre.eos_token_ids,
        vec![tk.token_to_id("<|im_end|>").unwrap()]
    );
    assert_eq!(pre.pad_token_id, tk.token_to_id("<|endoftext|>").unwrap());
    assert_eq!(tk2.encode(texts[1]).unwrap(), tk.encode(texts[1]).unwrap());
    assert!(logits(&pre.model) == logits(&model));
    // Fixture directories have no tokenizer.
    let pre = load_pretrained(fixture_dir("qwen2_tiny_tied"), &ModelOptions::default()).unwrap();
    assert!(pre.tokenizer.is_none());

    // Another model's tokenizer (ids past the embedding rows) is refused at
    // load, naming both files, not at the first prompt.
    let other = tempfile::tempdir().unwrap();
    copy_dir(&fixture_dir("qwen2_tiny_tied"), other.path());
    tk.save(other.path()).unwrap();
    let e = load_pretrained(other.path(), &ModelOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tokenizer.json") && e.contains("vocab_size 256") && e.contains("config.json"),
        "{e}"
    );

    // tokenizer_config.json naming an eos or pad token the vocabulary lacks
    // is refused (it used to fall back to <|im_end|> / <|endoftext|>).
    for key in ["eos_token", "pad_token"] {
        let path = tmp.path().join("tokenizer_config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let kept = config.clone();
        config[key] = "<|eot_id|>".into();
        std::fs::write(&path, config.to_string()).unwrap();
        let e = load_pretrained(tmp.path(), &ModelOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tokenizer_config.json")
                && e.contains(&format!("{key} \"<|eot_id|>\" is not a token")),
            "{e}"
        );
        std::fs::write(&path, kept.to_string()).unwrap();
    }
}
