//! Writes model directories for the transformers cross-check of
//! `scripts/fixtures/qwen2_parity.py --check-saved DIR...`.
//!
//! ```text
//! cargo run -p toolgym-model --release --example save_for_hf_check -- /tmp/rust_saved
//! ```
//!
//! Creates `DIR/tied` and `DIR/untied`: a randomly initialised Qwen2 (large
//! weights, random biases and norms) with the built-in BPE tokenizer, saved
//! with [`save_pretrained`], plus `rust_reference.json` (input ids, a text and
//! its ids) and `rust_reference.safetensors` (this crate's logits for the ids).

use std::collections::HashMap;
use std::path::PathBuf;

use toolgym_model::{
    save_pretrained, train_bpe_tokenizer, ModelOptions, Qwen2Config, Qwen2ForCausalLM, RandomInit,
    TokenBatch,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: save_for_hf_check DIR")?,
    );
    let corpus: Vec<String> = (0..300)
        .map(|i| {
            format!(
                "<|im_start|>user\nWeather in city {i}?<|im_end|>\n<|im_start|>assistant\n<think>call it</think>\n\
                 <tool_call>\n{{\"name\": \"get_weather\", \"arguments\": {{\"city\": \"c{i}\"}}}}\n</tool_call><|im_end|>"
            )
        })
        .collect();
    let tk = train_bpe_tokenizer(&corpus, 512, &[])?;
    let text = "<|im_start|>assistant\n<think>ok</think><tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1}}</tool_call><|im_end|>";
    let text_ids = tk.encode(text)?;
    for (name, tied) in [("tied", true), ("untied", false)] {
        let mut cfg = Qwen2Config::tiny_default(tk.vocab_size());
        cfg.hidden_size = 64;
        cfg.head_dim = 16;
        cfg.num_attention_heads = 4;
        cfg.num_key_value_heads = 2;
        cfg.intermediate_size = 96;
        cfg.num_hidden_layers = 2;
        cfg.tie_word_embeddings = tied;
        let model =
            Qwen2ForCausalLM::random(&cfg, &RandomInit::peaked(42), &ModelOptions::default())?;
        let dir = out.join(name);
        save_pretrained(&dir, &model, Some(&tk), None, tk.eos_token_ids())?;
        let ids: Vec<u32> = text_ids.clone();
        let logits = model
            .forward(&TokenBatch::single(&ids)?, None)?
            .squeeze(0)?;
        let tensors = HashMap::from([("logits".to_string(), logits)]);
        candle_core::safetensors::save(&tensors, dir.join("rust_reference.safetensors"))?;
        let reference = serde_json::json!({"input_ids": ids, "text": text, "text_ids": text_ids});
        std::fs::write(dir.join("rust_reference.json"), reference.to_string())?;
        println!("wrote {}", dir.display());
    }
    Ok(())
}
