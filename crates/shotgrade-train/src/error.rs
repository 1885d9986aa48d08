//! The training crate's one error type.

use thiserror::Error;

/// A training or evaluation run that could not go on.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Assets(#[from] shotgrade_synth::AssetError),
    #[error(transparent)]
    Weights(#[from] shotgrade_models::WeightsError),
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
    #[error("invalid training setting: {0}")]
    Settings(String),
    /// A `--resume` that cannot go on: no run there, another format, a changed setting.
    #[error("{0}")]
    Resume(String),
    /// A run stopped (time limit, signal) before it took a step.
    #[error("{0}")]
    Stopped(String),
}
