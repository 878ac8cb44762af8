//! `config.json` of a Qwen2 / Qwen2.5 checkpoint.
//!
//! Both the transformers 4.x layout (`rope_theta` at the top level) and the
//! 5.x layout (`rope_parameters.rope_theta`) are read; on writing both are
//! emitted so that either major version loads the directory. Fields this crate
//! does not interpret are kept verbatim in [`Qwen2Config::extra`] and written
//! back unchanged.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ModelError, Result};

/// Hyper-parameters of a Qwen2 causal LM, as in Hugging Face's `Qwen2Config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
pub struct Qwen2Config {
    /// Number of token embeddings (rows of `model.embed_tokens.weight`).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention).
    pub num_key_value_heads: usize,
    /// Per-head width; `hidden_size / num_attention_heads` unless config.json says otherwise.
    pub head_dim: usize,
    /// Longest sequence the rotary embedding was trained for (informational).
    pub max_position_embeddings: usize,
    /// Epsilon of every RMSNorm.
    pub rms_norm_eps: f64,
    /// Base of the rotary embedding frequencies.
    pub rope_theta: f64,
    /// Whether `lm_head` reuses `model.embed_tokens.weight`.
    pub tie_word_embeddings: bool,
    /// Standard deviation of the random initialisation (HF `initializer_range`).
    pub initializer_range: f64,
    /// Beginning-of-sequence id, when the config names one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id(s) named by the config (may be empty).
    pub eos_token_id: Vec<u32>,
    /// Every other key of config.json, kept for writing back.
    pub extra: Map<String, Value>,
}

/// A token id or a list of them (`eos_token_id`).
#[derive(Serialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

/// Read by hand: serde's untagged enums say only "data did not match any
/// variant of untagged enum OneOrMany".
impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let id = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
        let bad = |v: &Value| {
            serde::de::Error::custom(format!(
                "expected a token id (an integer from 0 to {}) or a list of them, found {v}",
                u32::MAX
            ))
        };
        match Value::deserialize(d)? {
            Value::Array(items) => items
                .iter()
                .map(|v| id(v).ok_or_else(|| bad(v)))
                .collect::<std::result::Result<_, _>>()
                .map(OneOrMany::Many),
            v => id(&v).map(OneOrMany::One).ok_or_else(|| bad(&v)),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RawConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_key_value_heads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head_dim: Option<usize>,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rope_theta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rope_parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rope_scaling: Option<Value>,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default = "default_init")]
    initializer_range: f64,
    #[serde(default)]
    use_sliding_window: bool,
    #[serde(default)]
    bos_token_id: Option<u32>,
    #[serde(default)]
    eos_token_id: Option<OneOrMany>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn default_max_pos() -> usize {
    32768
}
fn default_eps() -> f64 {
    1e-6
}
fn default_act() -> String {
    "silu".to_string()
}
fn default_init() -> f64 {
    0.02
}

impl TryFrom<RawConfig> for Qwen2Config {
    type Error = String;

    fn try_from(raw: RawConfig) -> std::result::Result<Self, String> {
        // transformers' activations map "swish" to the same SiLU.
        if raw.hidden_act != "silu" && raw.hidden_act != "swish" {
            return Err(format!(
                "hidden_act `{}` is not supported (Qwen2 uses silu)",
                raw.hidden_act
            ));
        }
        if let Some(kind) = raw.extra.get("model_type") {
            if kind.as_str() != Some("qwen2") {
                return Err(format!(
                    "model_type {kind} is not supported (this crate runs Qwen2 / Qwen2.5: \"qwen2\")"
                ));
            }
        }
        if raw.use_sliding_window {
            return Err("use_sliding_window = true is not supported".to_string());
        }
        if let Some(types) = raw.extra.get("layer_types").and_then(Value::as_array) {
            if types.iter().any(|t| t.as_str() != Some("full_attention")) {
                return Err("layer_types other than full_attention are not supported".into());
            }
        }
        // Default rotary embeddings: null, or an object whose type is
        // "default", or with no type and nothing else a scaling would
        // set (`{"factor": 4.0}` without a type is not read as none).
        let rope_type_ok = |v: &Value| match v {
            Value::Null => true,
            Value::Object(o) => match o.get("rope_type").or_else(|| o.get("type")) {
                Some(t) => t.as_str() == Some("default"),
                None => o.keys().all(|k| k == "rope_theta"),
            },
            _ => false,
        };
        let params_theta = match raw
            .rope_parameters
            .as_ref()
            .and_then(|p| p.get("rope_theta"))
        {
            None => None,
            Some(v) => Some(
                v.as_f64()
                    .ok_or_else(|| format!("rope_parameters.rope_theta = {v} is not a number"))?,
            ),
        };
        if let (Some(inner), Some(top)) = (params_theta, raw.rope_theta) {
            if inner != top {
                return Err(format!(
                    "rope_parameters.rope_theta ({inner}) and rope_theta ({top}) differ: which \
                     one the model was trained with is not clear"
                ));
            }
        }
        for (key, v) in [
            ("rope_parameters", &raw.rope_parameters),
            ("rope_scaling", &raw.rope_scaling),
        ] {
            if let Some(v) = v {
                if !rope_type_ok(v) {
                    return Err(format!(
                        "{key} = {v} is not supported (only default rotary embeddings)"
                    ));
                }
            }
        }
        let rope_theta = params_theta.or(raw.rope_theta).unwrap_or(10000.0);
        let mut extra = raw.extra;
        extra.insert("hidden_act".into(), Value::String(raw.hidden_act));
        extra.insert("use_sliding_window".into(), Value::Bool(false));
        let heads = raw.num_attention_heads;
        if raw.head_dim.is_none() && heads > 0 && !raw.hidden_size.is_multiple_of(heads) {
            // The head width is derived: name what it is derived from.
            return Err(format!(
                "hidden_size ({}) is not a multiple of num_attention_heads ({heads}), and no \
                 head_dim is given",
                raw.hidden_size
            ));
        }
        let cfg = Qwen2Config {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(heads),
            head_dim: raw
                .head_dim
                .unwrap_or(raw.hidden_size.checked_div(heads).unwrap_or(0)),
            max_position_embeddings: raw.max_position_embeddings,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            tie_word_embeddings: raw.tie_word_embeddings,
            initializer_range: raw.initializer_range,
            bos_token_id: raw.bos_token_id,
            eos_token_id: match raw.eos_token_id {
                None => vec![],
                Some(OneOrMany::One(id)) => vec![id],
                Some(OneOrMany::Many(ids)) => ids,
            },
            extra,
        };
        cfg.validate().map_err(|e| match e {
            ModelError::InvalidConfig { reason, .. } => reason,
            other => other.to_string(),
        })?;
        Ok(cfg)
    }
}

impl From<Qwen2Config> for RawConfig {
    fn from(c: Qwen2Config) -> Self {
        let mut extra = c.extra;
        let hidden_act = match extra.shift_remove("hidden_act") {
            Some(Value::String(s)) => s,
            _ => default_act(),
        };
        extra.shift_remove("use_sliding_window");
        extra
            .entry("model_type")
            .or_insert_with(|| Value::String("qwen2".into()));
        extra
            .entry("architectures")
            .or_insert_with(|| serde_json::json!(["Qwen2ForCausalLM"]));
        let default_head_dim = c.hidden_size / c.num_attention_heads.max(1);
        RawConfig {
            vocab_size: c.vocab_size,
            hidden_size: c.hidden_size,
            intermediate_size: c.intermediate_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            num_key_value_heads: Some(c.num_key_value_heads),
            head_dim: (c.head_dim != default_head_dim).then_some(c.head_dim),
            max_position_embeddings: c.max_position_embeddings,
            rms_norm_eps: c.rms_norm_eps,
            rope_theta: Some(c.rope_theta),
            rope_parameters: Some(serde_json::json!({
                "rope_theta": c.rope_theta,
                "rope_type": "default",
            })),
            rope_scaling: None,
            tie_word_embeddings: c.tie_word_embeddings,
            hidden_act,
            initializer_range: c.initializer_range,
            use_sliding_window: false,
            bos_token_id: c.bos_token_id,
            eos_token_id: match c.eos_token_id.as_slice() {
                [] => None,
                [one] => Some(OneOrMany::One(*one)),
                many => Some(OneOrMany::Many(many.to_vec())),
            },
            extra,
        }
    }
}

impl Qwen2Config {
    /// Reads and validates `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ModelError::MissingFile {
                    path: path.to_path_buf(),
                    what: "the model configuration (config.json)".into(),
                }
            } else {
                ModelError::io("read", path, e)
            }
        })?;
        Self::from_json_str(&text).map_err(|e| match e {
            ModelError::InvalidConfig { reason, .. } => ModelError::InvalidConfig {
                location: Some(path.to_path_buf()),
                reason,
            },
            other => other,
        })
    }

    /// Parses and validates a config.json document.
    pub fn from_json_str(text: &str) -> Result<Self> {
        // The key at fault named (serde's own message gives a column only).
        let mut de = serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            match path.as_str() {
                "." => ModelError::config(e.into_inner().to_string()),
                _ => ModelError::config(format!("{path}: {}", e.into_inner())),
            }
        })?;
        de.end().map_err(|e| ModelError::config(e.to_string()))?;
        Ok(config)
    }

    /// Serialises to the config.json layout (pretty-printed).
    pub fn to_json_string(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| ModelError::config(e.to_string()))
    }

    /// Checks the internal consistency of the hyper-parameters.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(ModelError::config(format!("{name} must be positive")));
            }
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return Err(ModelError::config(format!(
                "num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                self.num_attention_heads, self.num_key_value_heads
            )));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(ModelError::config(format!(
                "head_dim ({}) must be even for rotary embeddings",
                self.head_dim
            )));
        }
        // Sizes no model has are refused before anything is sized from
        // them: a few bytes of config.json could otherwise ask for names
        // of billions of layers, or overflow a tensor's element count.
        const MAX_LAYERS: usize = 4096;
        const MAX_TENSOR_ELEMENTS: usize = 1 << 40;
        if self.num_hidden_layers > MAX_LAYERS {
            return Err(ModelError::config(format!(
                "num_hidden_layers ({}) is past {MAX_LAYERS}",
                self.num_hidden_layers
            )));
        }
        let h = self.hidden_size;
        let products = [
            ("vocab_size × hidden_size", self.vocab_size.checked_mul(h)),
            (
                "num_attention_heads × head_dim × hidden_size",
                self.num_attention_heads
                    .checked_mul(self.head_dim)
                    .and_then(|n| n.checked_mul(h)),
            ),
            (
                "num_key_value_heads × head_dim × hidden_size",
                self.num_key_value_heads
                    .checked_mul(self.head_dim)
                    .and_then(|n| n.checked_mul(h)),
            ),
            (
                "intermediate_size × hidden_size",
                self.intermediate_size.checked_mul(h),
            ),
        ];
        for (what, n) in products {
            if n.is_none_or(|n| n > MAX_TENSOR_ELEMENTS) {
                return Err(ModelError::config(format!(
                    "{what} is past {MAX_TENSOR_ELEMENTS} elements for one tensor"
                )));
            }
        }
        if u32::try_from(self.vocab_size).is_err() {
            return Err(ModelError::config("vocab_size does not fit in u32"));
        }
        let ids = self.bos_token_id.iter().map(|id| ("bos_token_id", id));
        for (name, &id) in ids.chain(self.eos_token_id.iter().map(|id| ("eos_token_id", id))) {
            if id as usize >= self.vocab_size {
                return Err(ModelError::config(format!(
                    "{name} {id} is not a token: vocab_size is {}",
                    self.vocab_size
                )));
            }
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return Err(ModelError::config("rms_norm_eps must be finite and >= 0"));
        }
        // Rotary frequencies are computed in f32: a larger base is inf
        // there, and every dimension but the first would not rotate.
        if !(self.rope_theta > 0.0 && self.rope_theta <= f64::from(f32::MAX)) {
            return Err(ModelError::config(
                "rope_theta must be positive and at most f32::MAX (3.4e38)",
            ));
        }
        Ok(())
    }

    /// Number of query heads per key/value head.
    pub fn gqa_group_size(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// Total number of parameters (tied embeddings counted once).
    pub fn num_parameters(&self) -> usize {
        crate::qwen2::expected_tensors(self)
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }

    /// A Qwen2 config of these dimensions (`heads`: query and key-value
    /// heads; each head `hidden_size / heads.0` wide, rounded down), as the
    /// presets build theirs: for small random models in tests. The rest is
    /// fixed (32,768 positions, RMS-norm ε 1e-6, initializer range 0.02, no
    /// BOS or EOS ids) and nothing is checked (`heads.0` must not be 0).
    ///
    /// ```
    /// use toolgym_model::Qwen2Config;
    /// let c = Qwen2Config::with_dims(40, 16, 24, 2, (4, 2), 10000.0, true);
    /// assert_eq!((c.head_dim, c.num_key_value_heads), (4, 2));
    /// ```
    pub fn with_dims(
        vocab_size: usize,
        hidden_size: usize,
        intermediate_size: usize,
        num_hidden_layers: usize,
        heads: (usize, usize),
        rope_theta: f64,
        tie_word_embeddings: bool,
    ) -> Self {
        Qwen2Config {
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads: heads.0,
            num_key_value_heads: heads.1,
            head_dim: hidden_size / heads.0,
            max_position_embeddings: 32768,
            rms_norm_eps: 1e-6,
            rope_theta,
            tie_word_embeddings,
            initializer_range: 0.02,
            bos_token_id: None,
            eos_token_id: vec![],
            extra: Map::new(),
        }
    }

    /// The built-in tiny policy: Qwen2 architecture, about 3.5 million
    /// parameters (hidden 256, 4 layers, 8 query / 2 key-value heads,
    /// intermediate 768, tied embeddings) for a vocabulary of `vocab_size`
    /// tokens (pass the tokenizer's `vocab_size()`; the parameter count is
    /// for 2048).
    pub fn tiny_default(vocab_size: usize) -> Self {
        Self::with_dims(vocab_size, 256, 768, 4, (8, 2), 10000.0, true)
    }

    /// The architecture of Qwen2.5-0.5B-Instruct (494M parameters).
    pub fn qwen2_5_0_5b() -> Self {
        let mut c = Self::with_dims(151936, 896, 4864, 24, (14, 2), 1_000_000.0, true);
        c.bos_token_id = Some(151643);
        c.eos_token_id = vec![151645];
        c.max_position_embeddings = 32768;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes no model has are refused before anything is sized from them
    /// (a few-byte config.json asked for names of 2^60 layers, or
    /// overflowed a tensor's element count).
    #[test]
    fn absurd_sizes_are_refused() {
        let mut base = Qwen2Config::tiny_default(64);
        base.num_hidden_layers = 2;
        base.validate().unwrap();
        let text = base.to_json_string().unwrap();
        for (key, value, said) in [
            (
                "num_hidden_layers",
                "1152921504606846976",
                "num_hidden_layers",
            ),
            ("hidden_size", "4294967296", "× hidden_size"),
            (
                "num_attention_heads",
                "18446744073709551615",
                "num_attention_heads × head_dim",
            ),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v[key] = serde_json::from_str(value).unwrap();
            if key == "num_attention_heads" {
                v["num_key_value_heads"] = serde_json::from_str(value).unwrap();
                v["head_dim"] = 64.into();
            }
            let e = Qwen2Config::from_json_str(&v.to_string())
                .unwrap_err()
                .to_string();
            assert!(e.contains(said), "{key}: {e}");
        }
    }

    /// transformers reads `swish` as SiLU: so does this crate, and the
    /// name is written back as given; another activation is refused.
    #[test]
    fn swish_is_silu_and_other_activations_are_refused() {
        let text = Qwen2Config::tiny_default(32).to_json_string().unwrap();
        let with = |act: &str| {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["hidden_act"] = act.into();
            Qwen2Config::from_json_str(&v.to_string())
        };
        let swish = with("swish").unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&swish.to_json_string().unwrap()).unwrap();
        assert_eq!(back["hidden_act"], "swish");
        let e = with("gelu").unwrap_err().to_string();
        assert!(e.contains("hidden_act `gelu` is not supported"), "{e}");
    }

    /// A value of the wrong type names its key (serde said a column only,
    /// and "untagged enum OneOrMany" for a bad end-of-sequence id).
    #[test]
    fn type_errors_name_the_key() {
        let text = Qwen2Config::tiny_default(32).to_json_string().unwrap();
        for (key, value, said) in [
            ("eos_token_id", "-1", "eos_token_id: expected a token id"),
            ("eos_token_id", "\"2\"", "found \"2\""),
            (
                "eos_token_id",
                "[1, 4294967296]",
                "eos_token_id: expected a token id",
            ),
            (
                "num_hidden_layers",
                "1.0",
                "num_hidden_layers: invalid type: floating point",
            ),
            ("rope_theta", "\"big\"", "rope_theta: invalid type: string"),
        ] {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v[key] = serde_json::from_str(value).unwrap();
            let e = Qwen2Config::from_json_str(&v.to_string())
                .unwrap_err()
                .to_string();
            assert!(e.contains(said), "{key}={value}: {e}");
            assert!(!e.contains("OneOrMany"), "{e}");
        }
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["eos_token_id"] = serde_json::json!([1, 2]);
        assert_eq!(
            Qwen2Config::from_json_str(&v.to_string())
                .unwrap()
                .eos_token_id,
            [1, 2]
        );
        v["eos_token_id"] = serde_json::json!(7);
        assert_eq!(
            Qwen2Config::from_json_str(&v.to_string())
                .unwrap()
                .eos_token_id,
            [7]
        );
        // Trailing text after the object is still refused.
        assert!(Qwen2Config::from_json_str(&format!("{text} x")).is_err());
    }
}
