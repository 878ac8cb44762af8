//! # toolgym
//!
//! Train and check tool-calling language models with rule-based
//! reinforcement learning, as in *Nemotron-Research-Tool-N1*
//! (arXiv 2505.00024). This facade re-exports the member crates:
//!
//! - [`reward`]: parse a completion and score it (the Tool-N1 rule and its
//!   ablations, bit-exact with the released script).
//! - [`env`](mod@crate::env): tools, tasks, prompts, datasets and gym-like environments.
//! - [`model`]: Qwen2 / Qwen2.5 in candle — load, sample, score, save.
//! - [`grpo`]: GRPO and SFT trainers.
//!
//! The `toolgym` binary (`src/main.rs`) is a thin CLI over these crates.

#![warn(missing_docs)]

pub mod output;

pub use toolgym_env as env;
pub use toolgym_grpo as grpo;
pub use toolgym_model as model;
pub use toolgym_reward as reward;
