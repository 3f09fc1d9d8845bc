//! Errors of the training analysis.

use bottleneck_core::CoreError;

/// Why a training job or layout cannot be analysed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The layout breaks a divisibility rule; the message names it and a valid layout nearby.
    #[error("invalid layout: {0}")]
    InvalidLayout(String),
    /// A job parameter (GPU count, sequence, batch, precision, mode) is out of range.
    #[error("{0}")]
    InvalidJob(String),
    #[error(transparent)]
    Core(#[from] CoreError),
}
