//! A tiny random Qwen2 with its tokenizer, saved for `--model` tests.

use std::path::{Path, PathBuf};
use toolgym_model::{
    save_pretrained, train_bpe_tokenizer, ModelOptions, Qwen2Config, Qwen2ForCausalLM, RandomInit,
};

/// Saves a 1-layer random model (hidden 32) under `dir/model` and returns
/// its directory.
pub fn save_tiny_model(dir: &Path) -> PathBuf {
    save_tiny_model_padded(dir, 0)
}

/// [`save_tiny_model`] with `padding` more embedding rows than the
/// tokenizer has tokens (as Qwen2.5 pads its vocabulary).
#[allow(dead_code)]
pub fn save_tiny_model_padded(dir: &Path, padding: usize) -> PathBuf {
    let tk = train_bpe_tokenizer(
        &["<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n<think>weather</think><tool_call>[{\"name\": \"f\"}]</tool_call><|im_end|>"; 8],
        400,
        &[],
    )
    .unwrap();
    let mut cfg = Qwen2Config::tiny_default(tk.vocab_size() + padding);
    cfg.hidden_size = 32;
    cfg.intermediate_size = 48;
    cfg.num_hidden_layers = 1;
    cfg.num_attention_heads = 4;
    cfg.num_key_value_heads = 2;
    cfg.head_dim = 8;
    let model =
        Qwen2ForCausalLM::random(&cfg, &RandomInit::peaked(5), &ModelOptions::default()).unwrap();
    let model_dir = dir.join("model");
    save_pretrained(&model_dir, &model, Some(&tk), None, tk.eos_token_ids()).unwrap();
    model_dir
}
