//! Errors of the trainers.

use std::path::{Path, PathBuf};

/// Anything that can stop a training run, naming what and where.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The model crate failed.
    #[error(transparent)]
    Model(#[from] toolgym_model::ModelError),
    /// A tensor operation failed.
    #[error("tensor error: {0}")]
    Candle(String),
    /// A configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A checkpoint is missing or unreadable.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Data could not be loaded.
    #[error("data: {0}")]
    Data(String),
    /// An environment broke a contract the trainer relies on (e.g. its
    /// template's prompts do not extend each other).
    #[error("environment: {0}")]
    Env(String),
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<candle_core::Error> for TrainError {
    fn from(e: candle_core::Error) -> Self {
        TrainError::Candle(e.to_string())
    }
}
