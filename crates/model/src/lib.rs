//! # toolgym-model
//!
//! Qwen2 / Qwen2.5 causal language models on candle, built for GRPO training
//! of tool-calling policies (Tool-N1):
//!
//! * [`qwen2`]: the architecture, laid out like its Hugging Face checkpoint;
//! * [`checkpoint`]: load / save Hugging Face model directories;
//! * [`mod@generate`]: batched sampling with KV cache, per-request seeds, stop
//!   conditions and temperature-1 log-probs (rollouts);
//! * [`scoring`]: differentiable log-probs and entropies of given completions
//!   (policy) or no-grad ones (reference model);
//! * [`params`]: random initialisation, named trainable `Var`s, frozen copies;
//! * [`tokenizer`], [`bpe`]: tokenizer wrapper and a built-in byte-level BPE;
//! * [`cli`]: the logic of `toolgym generate`;
//! * [`runtime`]: process-wide CPU settings for binaries (threads, allocator);
//! * [`device_memory`]: what a CUDA device's memory pool holds (for metrics).

#![warn(missing_docs)]

pub mod batch;
pub mod bpe;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod device_memory;
pub mod device_sampling;
pub mod error;
mod fused;
pub mod generate;
pub mod kv_cache;
pub mod params;
pub mod qwen2;
pub mod rng;
pub mod runtime;
pub mod sampling;
pub mod scoring;
mod stop_strings;
pub mod tokenizer;

pub use batch::TokenBatch;
pub use bpe::{train_bpe_tokenizer, train_bpe_tokenizer_with, BpeOptions, PreTokenizer};
pub use checkpoint::{load_pretrained, save_pretrained, Pretrained};
pub use config::Qwen2Config;
pub use device_sampling::SamplingPlace;
pub use error::{ModelError, Result};
pub use generate::{
    generate, Completion, FinishReason, GenerateRequest, GenerationConfig, StopCause,
};
pub use kv_cache::KvCache;
pub use params::{ModelOptions, RandomInit};
pub use qwen2::{PrefixKv, Qwen2ForCausalLM};
pub use rng::Rng;
pub use sampling::SamplingParams;
pub use scoring::{distinct_prompts, score, ScoreOptions, ScoreOutput};
pub use tokenizer::Tokenizer;

/// Re-exported so dependents use the same candle as this crate.
pub use candle_core;
/// Re-exported so dependents use the same candle-nn as this crate.
pub use candle_nn;
