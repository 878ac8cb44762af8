//! Parameters: random initialisation, trainable `Var`s, frozen and detached copies.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use crate::config::Qwen2Config;
use crate::error::{ModelError, Result};
use crate::qwen2::{expected_tensors, Qwen2ForCausalLM};
use crate::rng::{fnv1a, mix_seed, Rng};

/// Where the weights live and whether they are trained.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// dtype of the weights: f32, bf16 or f16 (attention softmax, RMSNorm
    /// statistics, log-softmax and sampling always run in f32). The CPU
    /// benchmarks of this crate use f32.
    pub dtype: DType,
    /// Device of the weights.
    pub device: Device,
    /// `true`: weights are `Var`s and the differentiable code path is used;
    /// `false`: plain tensors and fused inference kernels.
    pub trainable: bool,
}

impl Default for ModelOptions {
    /// f32 on the CPU, frozen.
    fn default() -> Self {
        ModelOptions {
            dtype: DType::F32,
            device: Device::Cpu,
            trainable: false,
        }
    }
}

/// Random initialisation scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomInit {
    /// Seed; the same seed and config always give the same weights.
    pub seed: u64,
    /// Standard deviation of the embedding and projection weights.
    pub std: f64,
    /// Standard deviation of the q/k/v biases (0: zeros, as transformers does).
    pub bias_std: f64,
    /// Norm weights are `1 + norm_std * N(0, 1)` (0: ones, as transformers does).
    pub norm_std: f64,
}

impl RandomInit {
    /// Transformers' scheme: `N(0, initializer_range)` weights, zero biases,
    /// unit norm weights.
    pub fn hf(config: &Qwen2Config, seed: u64) -> Self {
        RandomInit {
            seed,
            std: config.initializer_range,
            bias_std: 0.0,
            norm_std: 0.0,
        }
    }

    /// Large weights, random biases and norm weights: peaked, far from uniform
    /// next-token distributions, which make equality tests meaningful.
    pub fn peaked(seed: u64) -> Self {
        RandomInit {
            seed,
            std: 0.2,
            bias_std: 0.2,
            norm_std: 0.3,
        }
    }
}

/// Values per independently seeded block (thread-count independent results).
const INIT_BLOCK: usize = 1 << 16;

fn random_values(name: &str, n: usize, init: &RandomInit) -> Vec<f32> {
    let (scale, offset) = if name.ends_with("norm.weight") {
        (init.norm_std, 1.0)
    } else if name.ends_with(".bias") {
        (init.bias_std, 0.0)
    } else {
        (init.std, 0.0)
    };
    let mut out = vec![offset as f32; n];
    if scale == 0.0 {
        return out;
    }
    let tensor_seed = mix_seed(init.seed, fnv1a(name));
    out.par_chunks_mut(INIT_BLOCK)
        .enumerate()
        .for_each(|(block, chunk)| {
            let mut rng = Rng::with_stream(tensor_seed, block as u64);
            for pair in chunk.chunks_mut(2) {
                let (a, b) = rng.next_normal_pair();
                pair[0] = (offset + scale * a) as f32;
                if let Some(v) = pair.get_mut(1) {
                    *v = (offset + scale * b) as f32;
                }
            }
        });
    out
}

/// Checks that `tensors` holds every tensor `config` needs with the right shape.
pub fn validate_tensors(
    config: &Qwen2Config,
    tensors: &HashMap<String, Tensor>,
    location: &str,
) -> Result<()> {
    for (name, shape) in expected_tensors(config) {
        match tensors.get(&name) {
            None => {
                // An untied config over tied weights (`tie_word_embeddings`
                // left out: false) says which setting to look at.
                let location = match name.as_str() {
                    "lm_head.weight" if !config.tie_word_embeddings => format!(
                        "{location} (config.json has tie_word_embeddings false; a model whose \
                         output layer is its embedding sets it true)"
                    ),
                    _ => location.to_string(),
                };
                return Err(ModelError::MissingTensor { name, location });
            }
            Some(t) if t.dims() != shape.as_slice() => {
                return Err(ModelError::ShapeMismatch {
                    name,
                    expected: shape,
                    found: t.dims().to_vec(),
                    location: location.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

impl Qwen2ForCausalLM {
    /// A randomly initialised model; deterministic in `(config, init)`.
    pub fn random(config: &Qwen2Config, init: &RandomInit, opts: &ModelOptions) -> Result<Self> {
        config.validate()?;
        let specs = expected_tensors(config);
        let tensors: Vec<(String, Vec<f32>, Vec<usize>)> = specs
            .into_iter()
            .map(|(name, shape)| {
                let vals = random_values(&name, shape.iter().product(), init);
                (name, vals, shape)
            })
            .collect();
        let mut map = HashMap::with_capacity(tensors.len());
        for (name, vals, shape) in tensors {
            let t = Tensor::from_vec(vals, shape, &Device::Cpu)?;
            map.insert(name, t);
        }
        Self::from_tensors(config, map, opts)
    }

    /// Builds a model from named tensors (HF names; any dtype/device — they
    /// are converted). Extra tensors are ignored; missing or misshapen ones
    /// are reported by name.
    pub fn from_tensors(
        config: &Qwen2Config,
        tensors: HashMap<String, Tensor>,
        opts: &ModelOptions,
    ) -> Result<Self> {
        config.validate()?;
        validate_tensors(config, &tensors, "the given tensors")?;
        let mut map = HashMap::with_capacity(tensors.len());
        for (name, t) in tensors {
            let t = t.to_device(&opts.device)?.to_dtype(opts.dtype)?;
            let t = if opts.trainable {
                // A fresh Var (own storage) per parameter.
                Var::from_tensor(&t.detach())?.as_tensor().clone()
            } else {
                t.detach()
            };
            map.insert(name, t);
        }
        let vb = VarBuilder::from_tensors(map, opts.dtype, &opts.device);
        Self::from_var_builder(config, vb, opts.trainable)
    }

    /// Every parameter as `(HF name, tensor)` in state-dict order; a tied head
    /// appears once, as `model.embed_tokens.weight`.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.params.clone()
    }

    /// The trainable parameters as `(HF name, Var)` in state-dict order. The
    /// `Var`s share storage with the model: `Var::set` updates the model (and
    /// every [`Qwen2ForCausalLM::detached`] view of it) in place.
    pub fn named_vars(&self) -> Result<Vec<(String, Var)>> {
        if !self.trainable {
            return Err(ModelError::NotTrainable);
        }
        self.params
            .iter()
            .map(|(n, t)| {
                if !t.is_variable() {
                    return Err(ModelError::NotTrainable);
                }
                Ok((n.clone(), Var::from_tensor(t)?))
            })
            .collect()
    }

    /// A no-grad view sharing this model's storage: cheap, sees later in-place
    /// updates of the `Var`s, builds no autograd graph (used for rollouts).
    pub fn detached(&self) -> Result<Self> {
        if !self.trainable {
            return Ok(self.clone());
        }
        self.map_params(false, |_, t| Ok(t.detach()))
    }

    /// A frozen deep copy (own storage, no grad), e.g. the GRPO reference model.
    pub fn frozen_copy(&self) -> Result<Self> {
        self.map_params(false, |_, t| Ok(t.detach().copy()?.detach()))
    }

    /// A trainable deep copy (fresh `Var`s with their own storage).
    pub fn trainable_copy(&self) -> Result<Self> {
        self.map_params(true, |_, t| {
            Ok(Var::from_tensor(&t.detach().copy()?.detach())?
                .as_tensor()
                .clone())
        })
    }

    /// The same weights converted to another dtype/device (frozen unless
    /// `opts.trainable`).
    pub fn to_options(&self, opts: &ModelOptions) -> Result<Self> {
        let map = self.params.iter().cloned().collect();
        Self::from_tensors(&self.config, map, opts)
    }

    /// Total number of parameters.
    pub fn num_parameters(&self) -> usize {
        self.params.iter().map(|(_, t)| t.elem_count()).sum()
    }
}
