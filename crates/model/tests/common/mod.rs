//! Shared helpers of the integration tests.
//!
//! The parity, generation and training tests run on the device named by
//! `TOOLGYM_TEST_DEVICE` (`cpu` when unset; `cuda` needs a `--features cuda`
//! build). docs/gpu.md shows how to run them on a lent GPU machine.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde_json::Value;
use toolgym_model::checkpoint::read_safetensors;
use toolgym_model::{ModelOptions, Qwen2Config, Qwen2ForCausalLM, RandomInit};

pub const VARIANTS: [&str; 2] = ["qwen2_tiny_tied", "qwen2_tiny_untied"];

/// The device the tests run on: `TOOLGYM_TEST_DEVICE` (default cpu).
pub fn test_device() -> Device {
    let name = std::env::var("TOOLGYM_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    toolgym_model::cli::parse_device(&name).expect("TOOLGYM_TEST_DEVICE")
}

/// f32 model options on the test device.
pub fn options(trainable: bool) -> ModelOptions {
    ModelOptions {
        trainable,
        device: test_device(),
        ..ModelOptions::default()
    }
}

/// The crate directory: `CARGO_MANIFEST_DIR` at run time when set (a test
/// binary copied to another machine runs from a checkout elsewhere), else
/// where it was built.
fn crate_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

pub fn fixture_dir(variant: &str) -> PathBuf {
    crate_dir().join("tests/fixtures").join(variant)
}

pub struct Fixture {
    pub model: Qwen2ForCausalLM,
    pub json: Value,
    pub tensors: HashMap<String, Tensor>,
}

pub fn fixture(variant: &str, trainable: bool) -> Fixture {
    let dir = fixture_dir(variant);
    let model = Qwen2ForCausalLM::load(&dir, &options(trainable)).expect("load fixture");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let tensors = read_safetensors(&dir.join("reference.safetensors")).unwrap();
    Fixture {
        model,
        json,
        tensors,
    }
}

pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

pub fn id_lists(v: &Value) -> Vec<Vec<u32>> {
    v.as_array().unwrap().iter().map(ids).collect()
}

pub fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(candle_core::DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A small random model with peaked distributions (for tests without fixtures).
pub fn small_config(tied: bool) -> Qwen2Config {
    Qwen2Config::with_dims(96, 48, 64, 2, (6, 2), 10000.0, tied)
}

pub fn small_model(tied: bool, trainable: bool, seed: u64) -> Qwen2ForCausalLM {
    Qwen2ForCausalLM::random(
        &small_config(tied),
        &RandomInit::peaked(seed),
        &options(trainable),
    )
    .unwrap()
}
