//! # toolgym-env
//!
//! The SDK for tool-calling environments of *Nemotron-Research-Tool-N1*
//! (arXiv 2505.00024): define tools, turn datasets into tasks, render
//! prompts, and run Gymnasium-shaped episodes whose rewards come from
//! [`toolgym_reward`] rules.
//!
//! * **Tools** — [`ToolSpec`] (name, description, JSON-Schema parameters;
//!   OpenAI and bare forms; xLAM / BFCL schemas normalised, see
//!   [`schema`]), the [`ToolRegistry`] of specs, compiled validators and
//!   handlers ([`Tool`] or plain closures), structured [`ToolError`]s.
//! * **Tasks** — [`Task`] `{id, source, tools, messages, ground_truth}` in
//!   JSONL; [`TaskSource`] for datasets ([`Dataset`]) and generators
//!   ([`Generator`]), a seeded resumable [`Sampler`].
//! * **Prompts** — [`ChatTemplate`]; [`ChatMlTemplate::tool_n1`] is the
//!   Tool-N1 Qwen2.5 prompt, with its no-reasoning ablation and a compact
//!   variant for tiny models.
//! * **Environments** — [`env::ToolEnv`] (`reset` / `step`, plus
//!   `truncate` and `demonstration` for trainers), [`SingleTurnEnv`] (the
//!   paper's setting), [`MultiTurnEnv`] (tools executed, seeded state,
//!   rules over the whole episode that compose, a reference solver),
//!   [`env::SampledEnv`]; an [`env::EnvFactory`] makes one per episode, and
//!   toolgym-grpo trains against any of them (guide: `docs/multi_turn.md`).
//! * **Data** — xLAM, ToolACE (with a real parser for Python call syntax,
//!   [`data::pycall`]) and BFCL loaders, and [`prepare()`], the paper's
//!   preprocessing pipeline with Table-1 counts.
//! * **Synthetic** — [`synthetic`], a seeded built-in environment with
//!   tunable difficulty and held-out validation templates and values.
//!
//! ## The trainer's loop in a few lines
//! ```
//! use std::sync::Arc;
//! use toolgym_env::synthetic::{Split, SyntheticConfig, SyntheticTasks};
//! use toolgym_env::{Sampler, SingleTurnSpec};
//!
//! let tasks = SyntheticTasks::new(SyntheticConfig::tiny(0)).unwrap();
//! let spec = SingleTurnSpec::compact();                  // template + `binary` rule
//! let mut sampler = Sampler::new(Arc::new(tasks.split(Split::Train)), 1);
//! for task in sampler.next_batch(2) {
//!     let prompt = spec.prompt(&task);                   // feed to the model
//!     let completions = vec![spec.target(&task), "<think>?</think>".to_string()]; // G samples
//!     let verdicts = spec.score_group(&task, &completions);
//!     assert!(prompt.ends_with("<|im_start|>assistant\n"));
//!     assert_eq!(verdicts[0].reward, 1.0);
//!     assert_eq!(verdicts[1].reward, 0.0);
//! }
//! ```

#![warn(missing_docs)]
// One exception, `output::duplicate`: writing through a descriptor a
// path names (`/dev/fd/3`) needs a duplicate of it, which only a raw
// descriptor gives.
#![deny(unsafe_code)]

mod caught;
pub mod data;
pub mod env;
pub mod json;
mod message;
pub mod output;
pub mod prepare;
mod registry;
pub mod rng;
pub mod schema;
mod source;
pub mod synthetic;
mod task;
pub mod template;
mod tool;

pub use caught::{catch_quietly, panic_message, take_panic_message};
pub use env::{
    EndReason, Episode, MultiTurnConfig, MultiTurnEnv, MultiTurnSpec, Observation, SingleTurnEnv,
    SingleTurnSpec, Step, StepInfo, ToolEnv,
};
pub use message::{Message, Role};
pub use prepare::{prepare, PrepareError, PrepareOptions, PrepareReport};
pub use registry::{RegistryError, ToolRegistry, ToolResult};
pub use source::{try_get, Dataset, Generator, Sampler, SkippedTasks, SourceFailure, TaskSource};
pub use task::{read_jsonl, read_jsonl_lenient, write_jsonl, Task, TaskFile, TaskIoError};
pub use template::{
    escape_markup, tool_message_text, CallFormat, ChatMlTemplate, ChatTemplate, ToolFormat,
};
pub use tool::{
    ArgumentProblem, SpecError, Tool, ToolError, ToolSpec, ToolSpecBuilder, PROBLEMS_SHOWN,
    PROBLEM_CHARS,
};
