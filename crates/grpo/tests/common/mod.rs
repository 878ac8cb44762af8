//! Shared set-up for the trainer tests: a tiny policy and tiny tasks.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use toolgym_env::synthetic::{Split, SyntheticConfig, SyntheticTasks};
use toolgym_env::{SingleTurnSpec, Task};
use toolgym_grpo::{BuiltinPolicy, GrpoConfig, Policy, RunSection};
use toolgym_model::candle_core::{DType, Device};

/// The synthetic tasks of the tiny preset.
pub fn tasks() -> SyntheticTasks {
    SyntheticTasks::new(SyntheticConfig::tiny(3)).unwrap()
}

/// The compact template with the `binary` rule.
pub fn spec() -> SingleTurnSpec {
    SingleTurnSpec::compact()
}

/// A very small built-in policy (fast to train in tests), in f32.
pub fn policy(gen: &SyntheticTasks) -> Policy {
    policy_in(gen, DType::F32)
}

/// The same policy with its weights held in `dtype`.
pub fn policy_in(gen: &SyntheticTasks, dtype: DType) -> Policy {
    builtin_policy(gen, &builtin_spec(), dtype)
}

/// The shape of the tests' built-in policy.
pub fn builtin_spec() -> BuiltinPolicy {
    BuiltinPolicy {
        vocab_size: 320,
        hidden_size: 32,
        intermediate_size: 64,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        seed: 5,
        padded_vocab_size: 0,
    }
}

/// A built-in policy of shape `b` with a tokenizer trained on the tasks.
pub fn builtin_policy(gen: &SyntheticTasks, b: &BuiltinPolicy, dtype: DType) -> Policy {
    let corpus = gen.tokenizer_corpus(spec().template.as_ref(), 300);
    Policy::builtin(&corpus, b, dtype, &Device::Cpu).unwrap()
}

/// A few validation tasks.
pub fn validation(gen: &SyntheticTasks) -> Vec<Arc<Task>> {
    gen.dataset(Split::Validation, 4).tasks().to_vec()
}

/// A small GRPO config: 4 prompts × G=3, two mini-batches (so π_old ≠ π on
/// the second), short replies.
pub fn grpo_config(steps: usize) -> GrpoConfig {
    let mut c = GrpoConfig {
        steps,
        group_size: 3,
        prompts_per_step: 4,
        mini_batch_prompts: 2,
        micro_batch_seqs: 4,
        max_response_tokens: 12,
        max_prompt_tokens: 256,
        temperature: 1.0,
        ..GrpoConfig::default()
    };
    c.optim.lr = 1e-3;
    c
}

/// A fresh temporary run directory.
pub fn run_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("toolgym-grpo-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Run settings for tests: no progress, no validation in between.
pub fn run_section(dir: PathBuf, save_every: usize) -> RunSection {
    RunSection {
        out_dir: dir,
        seed: 11,
        save_every,
        keep_checkpoints: 0,
        eval_every: 0,
        eval_tasks: 2,
        eval_samples: 2,
        eval_temperature: 1.0,
        resume: true,
        progress: false,
    }
}

/// Every parameter's values, by name.
pub fn params_of(p: &Policy) -> Vec<(String, Vec<f32>)> {
    p.model
        .named_tensors()
        .into_iter()
        .map(|(n, t)| {
            let t = t.flatten_all().unwrap().to_dtype(DType::F32).unwrap();
            (n, t.to_vec1::<f32>().unwrap())
        })
        .collect()
}
