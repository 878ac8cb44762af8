//! Error type of the model crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading, running or saving a model.
///
/// Variants name the file, tensor or argument at fault so that a message is
/// actionable without a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file the model directory must contain is absent.
    #[error("missing file {path}: {what}")]
    MissingFile {
        /// Path that was looked up.
        path: PathBuf,
        /// What the file is needed for.
        what: String,
    },
    /// A file exists but could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// `read`, `write`, `create` ...
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be parsed.
    #[error("invalid JSON in {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The model configuration is inconsistent or unsupported.
    #[error("invalid config{}: {reason}", location.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    InvalidConfig {
        /// The file it came from (config.json, tokenizer.json, tokenizer_config.json), when known.
        location: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
    /// A safetensors file is malformed or holds an unsupported dtype.
    #[error("invalid safetensors file {path}: {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor the architecture needs is not in the checkpoint.
    #[error("missing tensor `{name}` in {location}")]
    MissingTensor {
        /// HF tensor name, e.g. `model.layers.0.self_attn.q_proj.bias`.
        name: String,
        /// The file or directory searched.
        location: String,
    },
    /// A tensor has a different shape from what config.json implies.
    #[error(
        "tensor `{name}` in {location} has shape {found:?}, expected {expected:?} from the config"
    )]
    ShapeMismatch {
        /// HF tensor name.
        name: String,
        /// Shape implied by the config.
        expected: Vec<usize>,
        /// Shape found in the checkpoint.
        found: Vec<usize>,
        /// The file or in-memory source.
        location: String,
    },
    /// tokenizer.json could not be loaded, trained or used.
    #[error("tokenizer error ({context}): {message}")]
    Tokenizer {
        /// The file or operation.
        context: String,
        /// The tokenizers-crate message.
        message: String,
    },
    /// Generation met logits that are not numbers (NaN, or infinities
    /// that make the softmax undefined): the weights are not finite.
    #[error(
        "the model's logits are not finite at generated token {step} of request {request} \
         (NaN or infinite weights?): no completion"
    )]
    NonFiniteLogits {
        /// 0-based index of the request.
        request: usize,
        /// 0-based index of the generated token.
        step: usize,
    },
    /// A caller-supplied argument is invalid (empty prompt, token id out of range, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// `named_vars` (or another training-only call) on a frozen model.
    #[error("the model is frozen (no trainable Vars); load it with `trainable: true`")]
    NotTrainable,
    /// A dtype or device name could not be parsed, or the device is unavailable.
    #[error("{0}")]
    Unsupported(String),
    /// An error raised by candle while computing.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Result alias of the model crate.
pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ModelError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        ModelError::InvalidConfig {
            location: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn input(reason: impl Into<String>) -> Self {
        ModelError::InvalidInput(reason.into())
    }
}
