//! The policy being trained: a Qwen2 model with trainable weights, its
//! tokenizer and its stop ids.

use crate::rollout::TokenSpace;
use crate::TrainError;
use std::path::Path;
use toolgym_model::candle_core::{DType, Device};
use toolgym_model::{
    load_pretrained, save_pretrained, train_bpe_tokenizer_with, BpeOptions, ModelOptions,
    PreTokenizer, Qwen2Config, Qwen2ForCausalLM, RandomInit, Tokenizer,
};

/// A trainable policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The model (weights are `Var`s).
    pub model: Qwen2ForCausalLM,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Ids that end a reply (`<|im_end|>`, `<|endoftext|>`, …).
    pub eos_token_ids: Vec<u32>,
    /// Padding id.
    pub pad_token_id: u32,
    /// The model directory's `generation_config.json` (sampling defaults
    /// such as Qwen2.5-Instruct's temperature 0.7, top-p 0.8), saved with
    /// the policy with its eos and pad ids set to the policy's; `None`
    /// for the built-in model or a directory without one.
    pub generation_config: Option<serde_json::Value>,
}

/// Settings of the built-in tiny policy.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuiltinPolicy {
    /// Tokenizer vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Width of each attention head. Absent: `hidden_size / heads` (which
    /// must then divide), as in Hugging Face's Qwen2; set, it is written
    /// into `config.json` as `head_dim`.
    pub head_dim: Option<usize>,
    /// Initialisation seed.
    pub seed: u64,
    /// Rows of the embedding / LM head when larger than the tokenizer's
    /// vocabulary (0 = the tokenizer's size). Qwen2.5 pads its 151,665
    /// tokens to 151,936; setting that here gives a built-in model whose
    /// LM head costs what a real Qwen2.5's does, for timing runs.
    pub padded_vocab_size: usize,
    /// Standard deviation of the random weights. Absent:
    /// `1/sqrt(hidden_size)`. Hugging Face's `initializer_range` of 0.02 is
    /// tuned for widths in the thousands; at the built-in widths (128–256)
    /// it makes attention logits tiny and attention learns slowly, so a
    /// tiny model trained from scratch learns to copy argument values from
    /// its context after a seed-dependent delay, if at all within a short
    /// run (measured: a 40-name copy task at 2% after 240 SFT steps with
    /// 0.02, 100% after 120 with 0.09). Set 0.02 for the Hugging Face
    /// scheme.
    pub init_std: Option<f64>,
    /// How the tokenizer splits text before BPE: `"qwen2"` (Qwen2's regex)
    /// or `"words-apart"` (letter runs apart from a preceding space or
    /// quote, so a value in a query and in a call's JSON is the same token).
    pub pre_tokenizer: PreTokenizer,
}

impl BuiltinPolicy {
    /// The width of each attention head: `head_dim`, else
    /// `hidden_size / heads`.
    pub fn head_width(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.heads.max(1))
    }

    /// The model's config for a tokenizer of `vocab` ids (eos ids left to
    /// the caller).
    fn qwen2_config(&self, vocab: usize) -> Qwen2Config {
        let mut cfg = Qwen2Config::tiny_default(vocab);
        cfg.hidden_size = self.hidden_size;
        cfg.intermediate_size = self.intermediate_size;
        cfg.num_hidden_layers = self.layers;
        cfg.num_attention_heads = self.heads;
        cfg.num_key_value_heads = self.kv_heads;
        cfg.head_dim = self.head_width();
        cfg.max_position_embeddings = 4096;
        cfg.initializer_range = self
            .init_std
            .unwrap_or(1.0 / (self.hidden_size.max(1) as f64).sqrt());
        cfg
    }

    /// Checks what any built-in shape must hold (the config's validation
    /// calls this, so a bad shape is refused before the data is read and
    /// the tokenizer trained), naming `model.builtin`'s keys. The head
    /// width a fresh model derives from `hidden_size / heads` is checked
    /// by [`BuiltinPolicy::check`] when one is built: runs of built-in
    /// models from before 2026-12-06 (32-wide heads whatever the width)
    /// resume with shapes it refuses.
    pub fn check_shape(&self) -> Result<(), TrainError> {
        if self.heads == 0 {
            return Err(TrainError::Config(
                "model.builtin.heads must be at least 1".into(),
            ));
        }
        let mut cfg = self.qwen2_config(self.vocab_size.max(self.padded_vocab_size));
        // Any even width: the derived one is the fresh build's to check.
        cfg.head_dim = self.head_dim.unwrap_or(2);
        builtin_error(cfg.validate())
    }

    /// [`BuiltinPolicy::check_shape`], and the head width derived from
    /// `hidden_size / heads` (a model about to be built from this shape).
    pub fn check(&self) -> Result<(), TrainError> {
        self.check_shape()?;
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.heads) {
            // Each head reads hidden_size / heads of the width, as in
            // Hugging Face's Qwen2 config.
            return Err(TrainError::Config(format!(
                "model.builtin.heads ({}) must divide model.builtin.hidden_size ({}), or set \
                 model.builtin.head_dim",
                self.heads, self.hidden_size
            )));
        }
        let vocab = self.vocab_size.max(self.padded_vocab_size);
        builtin_error(self.qwen2_config(vocab).validate())
    }
}

/// A model config's refusal in `model.builtin`'s terms.
fn builtin_error(checked: toolgym_model::Result<()>) -> Result<(), TrainError> {
    checked.map_err(|e| {
        let text = match e {
            toolgym_model::ModelError::InvalidConfig { reason, .. } => reason,
            other => other.to_string(),
        };
        // The model's key names, as model.builtin spells them.
        let text = text
            .replace("num_hidden_layers", "layers")
            .replace("num_attention_heads", "heads")
            .replace("num_key_value_heads", "kv_heads");
        TrainError::Config(format!("model.builtin: {text}"))
    })
}

impl Default for BuiltinPolicy {
    fn default() -> Self {
        Self {
            vocab_size: 1024,
            hidden_size: 192,
            intermediate_size: 512,
            layers: 4,
            heads: 6,
            kv_heads: 2,
            head_dim: None,
            seed: 0,
            padded_vocab_size: 0,
            init_std: None,
            pre_tokenizer: PreTokenizer::Qwen2,
        }
    }
}

/// Parses `f32` / `bf16` / `f16`.
pub fn parse_dtype(s: &str) -> Result<DType, TrainError> {
    toolgym_model::cli::parse_dtype(s).map_err(TrainError::from)
}

/// Parses `cpu` / `cuda` / `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device, TrainError> {
    toolgym_model::cli::parse_device(s).map_err(TrainError::from)
}

impl Policy {
    /// Loads a Hugging Face model directory as a trainable policy.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self, TrainError> {
        Self::load_with(dir, dtype, device, true)
    }

    /// Loads a Hugging Face model directory for generation only (frozen
    /// weights, no optimiser state), e.g. for evaluation.
    pub fn load_frozen(dir: &Path, dtype: DType, device: &Device) -> Result<Self, TrainError> {
        Self::load_with(dir, dtype, device, false)
    }

    fn load_with(
        dir: &Path,
        dtype: DType,
        device: &Device,
        trainable: bool,
    ) -> Result<Self, TrainError> {
        let opts = ModelOptions {
            dtype,
            device: device.clone(),
            trainable,
        };
        let p = load_pretrained(dir, &opts)?;
        let tokenizer = p.tokenizer.ok_or_else(|| {
            TrainError::Config(format!(
                "{} has no tokenizer.json; a policy (to train, or to generate with) needs one",
                dir.display()
            ))
        })?;
        let mut eos = p.eos_token_ids;
        for id in tokenizer.eos_token_ids() {
            if !eos.contains(id) {
                eos.push(*id);
            }
        }
        if eos.is_empty() {
            return Err(TrainError::Config(format!(
                "{}: no eos token id found",
                dir.display()
            )));
        }
        // The ChatML templates end a turn with <|im_end|>. A base (not
        // Instruct) checkpoint names <|endoftext|> alone: its replies then
        // run on past the turn's end, to the token limit.
        static SAID: std::sync::Once = std::sync::Once::new();
        if let Some(im_end) = tokenizer.token_to_id("<|im_end|>") {
            if !eos.contains(&im_end) && !SAID.is_completed() {
                SAID.call_once(|| {});
                eprintln!(
                    "warning: {}: <|im_end|> (id {im_end}) is not an end-of-sequence id of this \
                     model (those are {eos:?}; a base, not Instruct, checkpoint?): replies will \
                     not stop at the end of a ChatML turn",
                    dir.display()
                );
            }
        }
        Ok(Self {
            model: p.model,
            tokenizer,
            eos_token_ids: eos,
            pad_token_id: p.pad_token_id,
            generation_config: p.generation_config,
        })
    }

    /// The built-in tiny Qwen2 with a byte-level BPE tokenizer trained on
    /// `corpus` (deterministic: same corpus and settings, same policy). The
    /// weights are drawn in f32 and then held in `dtype`.
    pub fn builtin<S: AsRef<str>>(
        corpus: &[S],
        b: &BuiltinPolicy,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let opts = BpeOptions {
            pre_tokenizer: b.pre_tokenizer,
            ..BpeOptions::chatml(b.vocab_size)
        };
        b.check()?;
        let tokenizer = train_bpe_tokenizer_with(corpus, &opts)?;
        let vocab = tokenizer.vocab_size().max(b.padded_vocab_size);
        let mut cfg = b.qwen2_config(vocab);
        cfg.eos_token_id = tokenizer.eos_token_ids().to_vec();
        let opts = ModelOptions {
            dtype,
            device: device.clone(),
            trainable: true,
        };
        let model = Qwen2ForCausalLM::random(&cfg, &RandomInit::hf(&cfg, b.seed), &opts)?;
        let mut eos = tokenizer.eos_token_ids().to_vec();
        if let Some(end) = tokenizer.token_to_id("<|endoftext|>") {
            if !eos.contains(&end) {
                eos.push(end);
            }
        }
        let pad_token_id = tokenizer.pad_token_id().unwrap_or(0);
        Ok(Self {
            model,
            tokenizer,
            eos_token_ids: eos,
            pad_token_id,
            generation_config: None,
        })
    }

    /// Saves in Hugging Face layout (config.json, model.safetensors,
    /// tokenizer files, generation_config.json).
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        // The source's sampling defaults stay; the ids are the ones the
        // policy generated (and was trained) with.
        // (The built-in model has no source: its file holds the ids alone.)
        let mut g = match &self.generation_config {
            Some(serde_json::Value::Object(g)) => g.clone(),
            _ => serde_json::Map::new(),
        };
        g.insert("eos_token_id".into(), self.eos_token_ids.clone().into());
        g.insert("pad_token_id".into(), self.pad_token_id.into());
        save_pretrained(
            dir,
            &self.model,
            Some(&self.tokenizer),
            Some(&serde_json::Value::Object(g)),
            &self.eos_token_ids,
        )?;
        Ok(())
    }

    /// Fills what this policy's saved files lack of `source`'s (the run's
    /// configured model): the sampling defaults of `generation_config.json`
    /// and the chat template file. A checkpoint written before checkpoints
    /// kept them holds a generation config of its eos and pad ids alone
    /// and no `chat_template.jinja`, so a model saved from it would sample
    /// downstream at temperature 1 and could not be prompted by
    /// `apply_chat_template`. What the policy has stays as it is.
    pub fn keep_source_defaults(&mut self, source: &Policy) {
        if let Some(serde_json::Value::Object(from)) = &source.generation_config {
            let mut g = match self.generation_config.take() {
                Some(serde_json::Value::Object(g)) => g,
                _ => serde_json::Map::new(),
            };
            for (k, v) in from {
                g.entry(k.clone()).or_insert_with(|| v.clone());
            }
            self.generation_config = Some(serde_json::Value::Object(g));
        }
        if self.tokenizer.chat_template_file().is_none() {
            let template = source.tokenizer.chat_template_file().map(str::to_string);
            self.tokenizer.set_chat_template_file(template);
        }
    }

    /// What the rollout engine needs of the policy's token side: tokenizer,
    /// end-of-turn ids, context length and vocabulary size.
    pub fn token_space(&self) -> TokenSpace<'_> {
        TokenSpace {
            tokenizer: &self.tokenizer,
            eos_token_ids: &self.eos_token_ids,
            max_context: self.model.config().max_position_embeddings,
            vocab_size: self.model.config().vocab_size,
        }
    }
}
