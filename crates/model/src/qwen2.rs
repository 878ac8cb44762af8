//! The Qwen2 / Qwen2.5 decoder-only transformer, laid out like its checkpoint.
//!
//! ```text
//! model.embed_tokens.weight                      [vocab, hidden]
//! model.layers.N.input_layernorm.weight          [hidden]
//! model.layers.N.self_attn.{q,k,v}_proj.{weight,bias}
//! model.layers.N.self_attn.o_proj.weight         (no bias)
//! model.layers.N.post_attention_layernorm.weight [hidden]
//! model.layers.N.mlp.{gate,up,down}_proj.weight  (SwiGLU, no biases)
//! model.norm.weight                              [hidden]
//! lm_head.weight                                 [vocab, hidden] (absent when tied)
//! ```
//!
//! Two code paths exist: when the weights are trainable `Var`s (or with
//! [`Qwen2ForCausalLM::with_training_ops`]) every op is one candle can
//! differentiate; otherwise the fused candle-nn kernels are used. They
//! agree to float rounding in f32 and f64. In half precision the CPU runs
//! the norms as training does (candle's kernel rounds each row's root mean
//! square to the dtype), and a biased projection adds its bias before the
//! product is rounded (as torch does); both paths then give the same
//! values there, within bf16's own error of transformers' bf16 logits.
//! On the CPU, in f32 or f64, the attention
//! softmax, RMSNorm, SwiGLU gate and token log-probs of training run as
//! this crate's own fused ops with their own backward passes
//! (`crate::fused`); other devices compose them from candle ops. Attention
//! scores and softmax are computed in f32 whatever the model dtype.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::batch::TokenBatch;
use crate::config::Qwen2Config;
use crate::error::{ModelError, Result};
use crate::fused;
use crate::kv_cache::KvCache;

/// Value added to masked attention scores. Minus infinity, so `exp` of a
/// masked score is exactly 0 and takes libm's fast path (a large finite
/// value such as `f32::MIN` takes its underflow path, which cost ~15% of a
/// small model's prefill). No row is fully masked (see [`attention_mask`]),
/// so no row's softmax is NaN.
const MASKED: f32 = f32::NEG_INFINITY;

/// Name and shape of every tensor the architecture reads, in the order of the
/// Hugging Face state dict (`lm_head.weight` only when untied).
pub fn expected_tensors(cfg: &Qwen2Config) -> Vec<(String, Vec<usize>)> {
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let q = cfg.num_attention_heads * cfg.head_dim;
    let kv = cfg.num_key_value_heads * cfg.head_dim;
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, h])];
    for n in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{n}");
        out.extend([
            (format!("{p}.self_attn.q_proj.weight"), vec![q, h]),
            (format!("{p}.self_attn.q_proj.bias"), vec![q]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.k_proj.bias"), vec![kv]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.v_proj.bias"), vec![kv]),
            (format!("{p}.self_attn.o_proj.weight"), vec![h, q]),
            (format!("{p}.mlp.gate_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.up_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.down_proj.weight"), vec![h, i]),
            (format!("{p}.input_layernorm.weight"), vec![h]),
            (format!("{p}.post_attention_layernorm.weight"), vec![h]),
        ]);
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![v, h]));
    }
    out
}

/// Records every tensor taken from the VarBuilder under its full HF name.
struct Registry(Vec<(String, Tensor)>);

impl Registry {
    fn get(&mut self, vb: &VarBuilder, shape: &[usize], name: &str) -> Result<Tensor> {
        let t = vb.get(shape, name)?;
        let prefix = vb.prefix();
        let full = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        self.0.push((full, t.clone()));
        Ok(t)
    }
}

/// `y = x W^T (+ b)` over the last dimension.
#[derive(Debug, Clone)]
struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    fn load(
        vb: VarBuilder,
        reg: &mut Registry,
        out_dim: usize,
        in_dim: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = reg.get(&vb, &[out_dim, in_dim], "weight")?;
        let bias = if bias {
            Some(reg.get(&vb, &[out_dim], "bias")?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    fn forward(&self, x: &Tensor, grad: bool) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let in_dim = dims[dims.len() - 1];
        let rows = x.elem_count() / in_dim;
        let x2 = x.reshape((rows, in_dim))?;
        let y = match &self.bias {
            // An input widened to f32 for a half-precision weight
            // ([`widened_for_bias`]): multiplied and biased in f32, rounded
            // once, as torch (so transformers) adds the bias before its
            // one rounding; candle's rounded product plus the bias rounded
            // twice.
            Some(b) if x.dtype() != self.weight.dtype() => {
                let wide = x.dtype();
                matmul_weight_t(&x2, &self.weight.to_dtype(wide)?, grad)?
                    .broadcast_add(&b.to_dtype(wide)?)?
                    .to_dtype(self.weight.dtype())?
            }
            Some(b) => matmul_weight_t(&x2, &self.weight, grad)?.broadcast_add(b)?,
            None => matmul_weight_t(&x2, &self.weight, grad)?,
        };
        let mut out = dims;
        let last = out.len() - 1;
        out[last] = self.weight.dim(0)?;
        Ok(y.reshape(out)?)
    }
}

/// Up to this many rows, `x W^T` is computed as `(W x^T)^T`: with the large
/// weight as its left operand, candle's CPU gemm (AVX-512 kernels) runs a
/// 128-token prefill about 25% faster and batch-64 decoding about 25%
/// faster; from about 512 rows on the two orders are even (measured with
/// `examples/bench_generate.rs` on 2 cores, 2026-11-24). CPU only: cuBLAS
/// takes either order without copies, and there the transposed result would
/// only add a copy kernel. Not under autograd either: the backward pass of
/// the transposed product transposes and copies every gradient, which made
/// a GRPO update of the built-in model twice as slow on small micro-batches.
const SMALL_BATCH_ROWS: usize = 256;

/// Whether `x` (with `rows` rows) takes the weight-on-the-left order.
fn weight_left(x: &Tensor, rows: usize, grad: bool) -> bool {
    !grad && rows <= SMALL_BATCH_ROWS && x.device().is_cpu()
}

/// `x W^T` for `x: [rows, in]`, `W: [out, in]`; returns `[rows, out]`.
fn matmul_weight_t(x: &Tensor, w: &Tensor, grad: bool) -> Result<Tensor> {
    if weight_left(x, x.dim(0)?, grad) {
        Ok(w.matmul(&x.t()?)?.t()?)
    } else {
        Ok(x.matmul(&w.t()?)?)
    }
}

/// The input of the biased projections (q, k, v), widened to f32 once for
/// the three when it is half precision on the CPU: [`Linear::forward`] then
/// rounds each product only after adding the bias, as torch does, at no
/// extra cost (candle's CPU bf16 matmul widens both operands to f32
/// anyway). On the tiny bf16 fixtures this halved the distance to
/// transformers' bf16 logits. Elsewhere `x` itself.
fn widened_for_bias(x: &Tensor) -> Result<Tensor> {
    Ok(
        if x.device().is_cpu() && matches!(x.dtype(), DType::BF16 | DType::F16) {
            x.to_dtype(DType::F32)?
        } else {
            x.clone()
        },
    )
}

/// Root-mean-square layer norm, statistics in f32 (as transformers does).
#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn load(vb: VarBuilder, reg: &mut Registry, dim: usize, eps: f64) -> Result<Self> {
        Ok(RmsNorm {
            weight: reg.get(&vb, &[dim], "weight")?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor, grad: bool) -> Result<Tensor> {
        // candle's CPU kernel rounds each row's root mean square to the
        // input's dtype before dividing by it: in bf16 a whole row is
        // scaled by up to 2^-9 off at every norm, an error that adds up
        // layer after layer (transformers divides in f32). Half precision
        // on the CPU takes the path below, transformers' order.
        let half_on_cpu = x.device().is_cpu() && matches!(x.dtype(), DType::BF16 | DType::F16);
        if !grad && !half_on_cpu {
            return Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)?);
        }
        if fused::fits(x) && self.weight.dtype() == x.dtype() {
            return Ok(fused::rms_norm(x, &self.weight, self.eps)?);
        }
        let dtype = x.dtype();
        let x32 = x.to_dtype(compute_dtype(dtype))?;
        let var = x32.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = x32.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        Ok(normed.to_dtype(dtype)?.broadcast_mul(&self.weight)?)
    }
}

/// The dtype of norms and attention scores: f32, or f64 for f64 models
/// (half-precision models are upcast; f64 ones keep their precision, e.g.
/// for gradient checks).
fn compute_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// Rotary position embedding with Hugging Face's `rotate_half` convention:
/// the first and second halves of each head form the rotated pairs.
#[derive(Debug, Clone)]
struct RotaryEmbedding {
    inv_freq: Vec<f32>,
}

/// Per-token cosines and sines, `[batch, seq, head_dim / 2]` in the model dtype.
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl RotaryEmbedding {
    fn new(cfg: &Qwen2Config) -> Self {
        let d = cfg.head_dim;
        let base = cfg.rope_theta as f32;
        let inv_freq = (0..d / 2)
            .map(|i| 1.0 / base.powf((2 * i) as f32 / d as f32))
            .collect();
        RotaryEmbedding { inv_freq }
    }

    fn tables(
        &self,
        positions: &[f32],
        b: usize,
        t: usize,
        dtype: DType,
        dev: &Device,
    ) -> Result<Rope> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                let a = p * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let cos = Tensor::from_vec(cos, (b, t, half), dev)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (b, t, half), dev)?.to_dtype(dtype)?;
        Ok(Rope { cos, sin })
    }
}

impl Rope {
    /// Rotates `x` of shape `[batch, seq, heads, head_dim]` (contiguous).
    fn apply(&self, x: &Tensor, grad: bool) -> Result<Tensor> {
        if !grad {
            return Ok(candle_nn::rotary_emb::rope_thd(x, &self.cos, &self.sin)?);
        }
        let half = x.dim(D::Minus1)? / 2;
        let cos = Tensor::cat(&[&self.cos, &self.cos], D::Minus1)?.unsqueeze(2)?;
        let sin = Tensor::cat(&[&self.sin, &self.sin], D::Minus1)?.unsqueeze(2)?;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        Ok((x.broadcast_mul(&cos)? + rotated.broadcast_mul(&sin)?)?)
    }
}

/// Differentiable softmax over the last dimension.
fn softmax_last(x: &Tensor, grad: bool) -> Result<Tensor> {
    if !grad {
        return Ok(candle_nn::ops::softmax_last_dim(x)?);
    }
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// Grouped-query self-attention with q/k/v biases.
#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder, reg: &mut Registry, cfg: &Qwen2Config) -> Result<Self> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim);
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        Ok(Attention {
            q_proj: Linear::load(vb.pp("q_proj"), reg, nh * hd, h, true)?,
            k_proj: Linear::load(vb.pp("k_proj"), reg, nkv * hd, h, true)?,
            v_proj: Linear::load(vb.pp("v_proj"), reg, nkv * hd, h, true)?,
            o_proj: Linear::load(vb.pp("o_proj"), reg, h, nh * hd, false)?,
            num_heads: nh,
            num_kv_heads: nkv,
            head_dim: hd,
        })
    }

    /// This pass's keys (rotated) and values, `[batch, kv_heads, seq, head_dim]`.
    fn keys_values(&self, x: &Tensor, rope: &Rope, grad: bool) -> Result<(Tensor, Tensor)> {
        self.keys_values_of(&widened_for_bias(x)?, rope, grad)
    }

    /// [`Attention::keys_values`] of an input already [`widened_for_bias`].
    fn keys_values_of(&self, x: &Tensor, rope: &Rope, grad: bool) -> Result<(Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        let (nkv, hd) = (self.num_kv_heads, self.head_dim);
        let k = self.k_proj.forward(x, grad)?.reshape((b, t, nkv, hd))?;
        let v = self.v_proj.forward(x, grad)?.reshape((b, t, nkv, hd))?;
        let k = rope.apply(&k, grad)?.transpose(1, 2)?.contiguous()?;
        let v = v.transpose(1, 2)?.contiguous()?;
        Ok((k, v))
    }

    /// The attention output, and this pass's own keys and values (what a
    /// prefix pass keeps for its continuations).
    fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        mask: Option<&Tensor>,
        past: Past<'_>,
        grad: bool,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let x = widened_for_bias(x)?;
        let q = self.q_proj.forward(&x, grad)?.reshape((b, t, nh, hd))?;
        let q = rope.apply(&q, grad)?.transpose(1, 2)?.contiguous()?;
        let (k_new, v_new) = self.keys_values_of(&x, rope, grad)?;
        let (k, v) = match past {
            Past::None => (k_new.clone(), v_new.clone()),
            Past::Cache(c, layer) => c.append(layer, &k_new, &v_new)?,
            Past::Prefix(p, layer) => {
                let (pk, pv) = p.layer(layer)?;
                (
                    Tensor::cat(&[&pk, &k_new], 2)?,
                    Tensor::cat(&[&pv, &v_new], 2)?,
                )
            }
        };
        let s = k.dim(2)?;
        // Query heads sharing a kv head are stacked along the row axis, so one
        // batched matmul per kv head serves the whole group (no repeat_kv copy).
        let rep = nh / nkv;
        let q = q.reshape((b, nkv, rep * t, hd))?;
        let scores = q.matmul(&k.t()?)?.to_dtype(compute_dtype(q.dtype()))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let probs = if fused::fits(&scores) {
            fused::attention_softmax(&scores, mask, scale)?
        } else {
            let scores = (scores * scale)?;
            let scores = match mask {
                Some(m) => scores
                    .reshape((b, nkv, rep, t, s))?
                    .broadcast_add(&m.to_dtype(scores.dtype())?)?
                    .reshape((b, nkv, rep * t, s))?,
                None => scores,
            };
            softmax_last(&scores, grad)?
        };
        let probs = probs.to_dtype(v.dtype())?;
        let y = probs.matmul(&v)?; // [b, nkv, rep * t, hd]
        let y = y
            .reshape((b, nh, t, hd))?
            .transpose(1, 2)?
            .reshape((b, t, nh * hd))?;
        Ok((self.o_proj.forward(&y, grad)?, k_new, v_new))
    }
}

/// SwiGLU feed-forward block: `down(silu(gate(x)) * up(x))`.
#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn load(vb: VarBuilder, reg: &mut Registry, cfg: &Qwen2Config) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Mlp {
            gate_proj: Linear::load(vb.pp("gate_proj"), reg, i, h, false)?,
            up_proj: Linear::load(vb.pp("up_proj"), reg, i, h, false)?,
            down_proj: Linear::load(vb.pp("down_proj"), reg, h, i, false)?,
        })
    }

    fn forward(&self, x: &Tensor, grad: bool) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let hidden = dims[dims.len() - 1];
        let rows = x.elem_count() / hidden;
        if !weight_left(x, rows, grad) {
            let gate = self.gate_proj.forward(x, grad)?;
            let up = self.up_proj.forward(x, grad)?;
            return self.down_proj.forward(&silu_mul(&gate, &up)?, grad);
        }
        // Few rows (decoding): stay in the transposed space, `h^T = W x^T`,
        // so every matmul has the large weight on the left and the wide
        // intermediate activations are never transposed back.
        let xt = x.reshape((rows, hidden))?.t()?;
        let gate = self.gate_proj.weight.matmul(&xt)?;
        let up = self.up_proj.weight.matmul(&xt)?;
        let y = self.down_proj.weight.matmul(&silu_mul(&gate, &up)?)?;
        Ok(y.t()?.reshape(dims)?)
    }
}

/// `silu(gate) * up`: fused on the CPU, composed elsewhere (same values).
fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if fused::fits(gate) && gate.dtype() == up.dtype() {
        Ok(fused::silu_mul(gate, up)?)
    } else {
        Ok((gate.silu()? * up)?)
    }
}

/// One pre-norm transformer block.
#[derive(Debug, Clone)]
struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl DecoderLayer {
    fn load(vb: VarBuilder, reg: &mut Registry, cfg: &Qwen2Config) -> Result<Self> {
        // Registration order follows the HF state dict: attention, mlp, norms.
        let self_attn = Attention::load(vb.pp("self_attn"), reg, cfg)?;
        let mlp = Mlp::load(vb.pp("mlp"), reg, cfg)?;
        let h = cfg.hidden_size;
        let input_layernorm = RmsNorm::load(vb.pp("input_layernorm"), reg, h, cfg.rms_norm_eps)?;
        let post_attention_layernorm =
            RmsNorm::load(vb.pp("post_attention_layernorm"), reg, h, cfg.rms_norm_eps)?;
        Ok(DecoderLayer {
            input_layernorm,
            self_attn,
            post_attention_layernorm,
            mlp,
        })
    }

    /// The block's output and its attention's own keys and values.
    fn forward(
        &self,
        x: &Tensor,
        rope: &Rope,
        mask: Option<&Tensor>,
        past: Past<'_>,
        grad: bool,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let h = self.input_layernorm.forward(x, grad)?;
        let (a, k, v) = self.self_attn.forward(&h, rope, mask, past, grad)?;
        let x = (x + a)?;
        let h = self.post_attention_layernorm.forward(&x, grad)?;
        Ok(((&x + self.mlp.forward(&h, grad)?)?, k, v))
    }

    /// Only the keys and values the block's attention would compute (a
    /// prefix pass needs no more of the last block).
    fn keys_values(&self, x: &Tensor, rope: &Rope, grad: bool) -> Result<(Tensor, Tensor)> {
        let h = self.input_layernorm.forward(x, grad)?;
        self.self_attn.keys_values(&h, rope, grad)
    }
}

/// What one layer's attention sees before the batch's own tokens.
#[derive(Clone, Copy)]
enum Past<'a> {
    /// Nothing: the batch starts at position 0.
    None,
    /// A generation cache (layer index); the batch's keys and values are
    /// written into it.
    Cache(&'a KvCache, usize),
    /// A prefix pass's keys and values (layer index), gathered for the
    /// batch's rows.
    Prefix(&'a RowPrefix<'a>, usize),
}

/// Keys and values of a batch of token prefixes (typically prompts), one
/// pair per layer, computed once by [`Qwen2ForCausalLM::forward_prefix`]
/// and attended to by any number of continuations
/// ([`Qwen2ForCausalLM::forward_hidden_after`]). With a trainable model
/// they are part of the gradient graph: the continuations' gradients flow
/// back into the prefix pass, so scoring G completions of one prompt this
/// way gives the gradient of scoring each after its own copy of the prompt,
/// at the cost of one prompt pass instead of G.
#[derive(Debug, Clone)]
pub struct PrefixKv {
    /// Per layer, `[prefixes, kv_heads, len, head_dim]`.
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Left padding of each prefix (its first `pad_left` slots are masked).
    pad_left: Vec<usize>,
    /// Slots per prefix, padding included.
    len: usize,
}

impl PrefixKv {
    /// Number of prefixes.
    pub fn batch_size(&self) -> usize {
        self.pad_left.len()
    }

    /// Slots per prefix, padding included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the prefixes have no slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A [`PrefixKv`] seen from a continuation batch: row `r` continues prefix
/// `rows[r]` (`None`: row `r` continues prefix `r`).
struct RowPrefix<'a> {
    kv: &'a PrefixKv,
    rows: Option<Tensor>,
}

impl RowPrefix<'_> {
    /// Layer `layer`'s prefix keys and values, one row per batch row.
    fn layer(&self, layer: usize) -> Result<(Tensor, Tensor)> {
        let (k, v) = (&self.kv.k[layer], &self.kv.v[layer]);
        Ok(match &self.rows {
            None => (k.clone(), v.clone()),
            Some(idx) => (k.index_select(idx, 0)?, v.index_select(idx, 0)?),
        })
    }
}

/// A Qwen2 causal language model (`Qwen2ForCausalLM`).
///
/// Weights are either plain tensors (frozen: inference, reference model) or
/// candle `Var`s (trainable: gradients flow through [`crate::scoring`]).
/// Cloning is cheap and shares the weights.
#[derive(Debug, Clone)]
pub struct Qwen2ForCausalLM {
    pub(crate) config: Qwen2Config,
    embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    /// `None` when the head is tied to the embeddings.
    lm_head: Option<Tensor>,
    rotary: RotaryEmbedding,
    /// Every parameter under its HF name, in state-dict order.
    pub(crate) params: Vec<(String, Tensor)>,
    pub(crate) trainable: bool,
    /// Whether the forward pass runs the ops training differentiates
    /// (always when `trainable`; see [`Qwen2ForCausalLM::with_training_ops`]).
    training_ops: bool,
    dtype: DType,
    device: Device,
}

impl Qwen2ForCausalLM {
    /// Builds the model from a VarBuilder whose paths are HF tensor names.
    ///
    /// `trainable` says whether the tensors the builder yields are `Var`s; it
    /// selects the differentiable code path. Shapes are checked by the builder;
    /// for friendlier errors validate first (see [`crate::checkpoint`]).
    pub fn from_var_builder(cfg: &Qwen2Config, vb: VarBuilder, trainable: bool) -> Result<Self> {
        cfg.validate()?;
        let mut reg = Registry(Vec::new());
        let m = vb.pp("model");
        let embed_tokens = reg.get(
            &m.pp("embed_tokens"),
            &[cfg.vocab_size, cfg.hidden_size],
            "weight",
        )?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        let lv = m.pp("layers");
        for n in 0..cfg.num_hidden_layers {
            layers.push(DecoderLayer::load(lv.pp(n), &mut reg, cfg)?);
        }
        let norm = RmsNorm::load(m.pp("norm"), &mut reg, cfg.hidden_size, cfg.rms_norm_eps)?;
        let lm_head = if cfg.tie_word_embeddings {
            None
        } else {
            Some(reg.get(
                &vb.pp("lm_head"),
                &[cfg.vocab_size, cfg.hidden_size],
                "weight",
            )?)
        };
        Ok(Qwen2ForCausalLM {
            config: cfg.clone(),
            rotary: RotaryEmbedding::new(cfg),
            dtype: vb.dtype(),
            device: vb.device().clone(),
            embed_tokens,
            layers,
            norm,
            lm_head,
            params: reg.0,
            trainable,
            training_ops: trainable,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Qwen2Config {
        &self.config
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device holding the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the weights are trainable `Var`s.
    pub fn is_trainable(&self) -> bool {
        self.trainable
    }

    /// This model (sharing its weights) computing its forward pass with the
    /// ops a trainable model runs, not the fused inference kernels, and
    /// still building no gradient graph when its weights are frozen. For
    /// log-probs a training step compares with its own (PPO's old policy,
    /// the KL reference): off the CPU, in half precision, the fused kernels
    /// may round otherwise than the differentiable ops (candle's RMSNorm
    /// kernel rounds each row's root mean square to the dtype), and then an
    /// unchanged policy's ratio is not 1 nor an unchanged reference's KL
    /// 0. On the CPU, half precision already takes the same ops (the same
    /// values both ways); in f32 and f64 the paths agree to float rounding
    /// and the fused kernels are faster.
    ///
    /// ```no_run
    /// # use toolgym_model::{ModelOptions, Qwen2ForCausalLM};
    /// # let policy = Qwen2ForCausalLM::load("model", &ModelOptions::default()).unwrap();
    /// let old_policy = policy.detached()?.with_training_ops();
    /// # Ok::<(), toolgym_model::ModelError>(())
    /// ```
    pub fn with_training_ops(&self) -> Self {
        Self {
            training_ops: true,
            ..self.clone()
        }
    }

    /// Whether the forward pass runs the ops of training (a trainable
    /// model, or [`Qwen2ForCausalLM::with_training_ops`]).
    pub fn runs_training_ops(&self) -> bool {
        self.training_ops
    }

    /// Runs the decoder and returns the final-normed hidden states
    /// `[batch, seq_len, hidden]`.
    ///
    /// With a cache, the batch's slots continue at `cache.len()` (its
    /// `pad_left` then counts cache slots) and the new keys/values are stored.
    pub fn forward_hidden(
        &self,
        batch: &TokenBatch,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        self.check_batch(batch)?;
        let (b, t) = (batch.batch, batch.seq_len);
        let offset = match cache.as_deref() {
            Some(c) => {
                c.check_room(b, t)?;
                if c.num_layers() != self.layers.len() {
                    return Err(ModelError::input("KV cache built for another model"));
                }
                c.len()
            }
            None => 0,
        };
        let (mut x, rope, mask) = self.prepare(batch, &batch.pad_left, offset)?;
        let shared = cache.as_deref();
        for (n, layer) in self.layers.iter().enumerate() {
            let past = shared.map_or(Past::None, |c| Past::Cache(c, n));
            x = layer
                .forward(&x, &rope, mask.as_ref(), past, self.training_ops)?
                .0;
        }
        if let Some(c) = cache {
            c.advance(t);
        }
        self.norm.forward(&x, self.training_ops)
    }

    /// Runs a batch of prefixes (left-padded, like a prompt batch) and keeps
    /// every layer's keys and values for continuations
    /// ([`Self::forward_hidden_after`]). The last layer computes only its
    /// keys and values: nothing reads the prefix's own outputs.
    pub fn forward_prefix(&self, batch: &TokenBatch) -> Result<PrefixKv> {
        self.check_batch(batch)?;
        let (mut x, rope, mask) = self.prepare(batch, &batch.pad_left, 0)?;
        let (mut k, mut v) = (Vec::new(), Vec::new());
        let last = self.layers.len() - 1;
        for (n, layer) in self.layers.iter().enumerate() {
            let (kn, vn) = if n == last {
                layer.keys_values(&x, &rope, self.training_ops)?
            } else {
                let (y, kn, vn) =
                    layer.forward(&x, &rope, mask.as_ref(), Past::None, self.training_ops)?;
                x = y;
                (kn, vn)
            };
            k.push(kn);
            v.push(vn);
        }
        Ok(PrefixKv {
            k,
            v,
            pad_left: batch.pad_left.clone(),
            len: batch.seq_len,
        })
    }

    /// Runs `batch` as the continuation of prefixes: row `r` follows prefix
    /// `prefix_of_row[r]` of `prefix` (any prefix may be continued by any
    /// number of rows) and returns the final-normed hidden states
    /// `[batch, seq_len, hidden]` of the batch's own slots. The batch must
    /// have no left padding (pad its rows on the right: a padding slot sees
    /// only real slots before it and is never seen by one).
    ///
    /// The result equals running each row after its own copy of the
    /// prefix through [`Self::forward_hidden`], up to float rounding.
    pub fn forward_hidden_after(
        &self,
        batch: &TokenBatch,
        prefix: &PrefixKv,
        prefix_of_row: &[usize],
    ) -> Result<Tensor> {
        self.check_batch(batch)?;
        if batch.has_padding() {
            return Err(ModelError::input(
                "a continuation batch must not be left-padded",
            ));
        }
        if prefix.k.len() != self.layers.len() {
            return Err(ModelError::input("prefix computed by another model"));
        }
        if prefix_of_row.len() != batch.batch {
            return Err(ModelError::input(format!(
                "{} prefix indices for {} rows",
                prefix_of_row.len(),
                batch.batch
            )));
        }
        if let Some(&bad) = prefix_of_row.iter().find(|&&p| p >= prefix.batch_size()) {
            return Err(ModelError::input(format!(
                "prefix index {bad} out of range for {} prefixes",
                prefix.batch_size()
            )));
        }
        let identity = prefix_of_row.len() == prefix.batch_size()
            && prefix_of_row.iter().enumerate().all(|(r, &p)| r == p);
        let rows = if identity {
            None
        } else {
            let idx: Vec<u32> = prefix_of_row.iter().map(|&p| p as u32).collect();
            Some(Tensor::from_vec(idx, prefix_of_row.len(), &self.device)?)
        };
        let past = RowPrefix { kv: prefix, rows };
        let pad_left: Vec<usize> = prefix_of_row.iter().map(|&p| prefix.pad_left[p]).collect();
        let (mut x, rope, mask) = self.prepare(batch, &pad_left, prefix.len)?;
        for (n, layer) in self.layers.iter().enumerate() {
            let p = Past::Prefix(&past, n);
            x = layer
                .forward(&x, &rope, mask.as_ref(), p, self.training_ops)?
                .0;
        }
        self.norm.forward(&x, self.training_ops)
    }

    /// Checks a batch's shape and token ids.
    fn check_batch(&self, batch: &TokenBatch) -> Result<()> {
        if batch.ids.len() != batch.batch * batch.seq_len || batch.pad_left.len() != batch.batch {
            return Err(ModelError::input("malformed TokenBatch"));
        }
        if let Some(&bad) = batch
            .ids
            .iter()
            .find(|&&id| id as usize >= self.config.vocab_size)
        {
            return Err(ModelError::input(format!(
                "token id {bad} out of range for vocab_size {}",
                self.config.vocab_size
            )));
        }
        Ok(())
    }

    /// The embedded batch, its rotary tables and its attention mask, for a
    /// batch whose slots start at `offset` and whose rows' first
    /// `pad_left[r]` slots (counted from slot 0 of whatever precedes) are
    /// padding.
    fn prepare(
        &self,
        batch: &TokenBatch,
        pad_left: &[usize],
        offset: usize,
    ) -> Result<(Tensor, Rope, Option<Tensor>)> {
        let (b, t) = (batch.batch, batch.seq_len);
        let positions: Vec<f32> = (0..b)
            .flat_map(|r| (0..t).map(move |i| (offset + i).saturating_sub(pad_left[r]) as f32))
            .collect();
        let rope = self
            .rotary
            .tables(&positions, b, t, self.dtype, &self.device)?;
        let mask = attention_mask(pad_left, t, offset, &self.device)?;
        let ids = Tensor::from_slice(&batch.ids, b * t, &self.device)?;
        let x =
            self.embed_tokens
                .index_select(&ids, 0)?
                .reshape((b, t, self.config.hidden_size))?;
        Ok((x, rope, mask))
    }

    /// Projects hidden states `[..., hidden]` to logits `[..., vocab]` in the
    /// model dtype.
    pub fn logits_from_hidden(&self, hidden: &Tensor) -> Result<Tensor> {
        let w = self.lm_head.as_ref().unwrap_or(&self.embed_tokens);
        let dims = hidden.dims().to_vec();
        let h = dims[dims.len() - 1];
        let rows = hidden.elem_count() / h;
        // Plain orientation: the transposed product would need a transposed
        // copy of the (rows x vocab) logits, which costs more than it saves.
        let y = hidden.reshape((rows, h))?.matmul(&w.t()?)?;
        let mut out = dims;
        let last = out.len() - 1;
        out[last] = self.config.vocab_size;
        Ok(y.reshape(out)?)
    }

    /// Logits `[batch, seq_len, vocab]` for every slot of the batch.
    pub fn forward(&self, batch: &TokenBatch, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let hidden = self.forward_hidden(batch, cache)?;
        self.logits_from_hidden(&hidden)
    }

    /// Logits `[batch, vocab]` of the last slot of each row only (what
    /// generation needs; skips the LM head on every other position).
    pub fn forward_last(&self, batch: &TokenBatch, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let hidden = self.forward_hidden(batch, cache)?;
        let t = hidden.dim(1)?;
        let last = hidden.narrow(1, t - 1, 1)?.squeeze(1)?.contiguous()?;
        self.logits_from_hidden(&last)
    }

    /// Rebuilds the model with every parameter transformed by `f`.
    pub(crate) fn map_params(
        &self,
        trainable: bool,
        mut f: impl FnMut(&str, &Tensor) -> Result<Tensor>,
    ) -> Result<Self> {
        let mut map = std::collections::HashMap::with_capacity(self.params.len());
        let mut dtype = self.dtype;
        let mut device = self.device.clone();
        for (name, t) in &self.params {
            let nt = f(name, t)?;
            dtype = nt.dtype();
            device = nt.device().clone();
            map.insert(name.clone(), nt);
        }
        let vb = VarBuilder::from_tensors(map, dtype, &device);
        Self::from_var_builder(&self.config, vb, trainable)
    }
}

/// Additive attention mask `[batch | 1, 1, 1, t, offset + t]` (f32), or `None`
/// when plain causal attention over all keys is already right (one new token
/// per row and no padding).
///
/// A query at key position `q` of a row left-padded with `pad` tokens sees
/// keys `pad..=q`. A padding query (`q < pad`) sees only itself, which keeps
/// every row of the softmax finite; its output is never read (padding
/// positions are masked out of every later query and of the scores).
fn attention_mask(
    pad_left: &[usize],
    t: usize,
    offset: usize,
    dev: &Device,
) -> Result<Option<Tensor>> {
    let s = offset + t;
    let padded = pad_left.iter().any(|&p| p > 0);
    if !padded && t == 1 {
        return Ok(None);
    }
    let rows: &[usize] = if padded { pad_left } else { &[0] };
    let mut m = Vec::with_capacity(rows.len() * t * s);
    for &pad in rows {
        for i in 0..t {
            let q = offset + i;
            m.extend((0..s).map(|j| {
                if (j <= q && j >= pad) || j == q {
                    0.0
                } else {
                    MASKED
                }
            }));
        }
    }
    Ok(Some(Tensor::from_vec(m, (rows.len(), 1, 1, t, s), dev)?))
}
