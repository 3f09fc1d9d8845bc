//! Errors at the core's boundary. Every message names the problem and the fix.

use thiserror::Error;

/// Why a core operation rejected its input.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum CoreError {
    #[error("unknown precision '{0}': use one of fp32, tf32, bf16, fp16, fp8, int8, int4")]
    UnknownPrecision(String),
    #[error("hardware file: {0}")]
    HardwareToml(String),
    #[error("invalid hardware '{name}': {problem}")]
    InvalidHardware { name: String, problem: String },
    #[error("invalid model '{name}': {problem}")]
    InvalidModel { name: String, problem: String },
    #[error("invalid parallel layout: {0}")]
    InvalidParallel(String),
    #[error("invalid workload: {0}")]
    InvalidWorkload(String),
    #[error(
        "{gpu} has no {precision} tensor-core support: pick a precision it lists ({available})"
    )]
    UnsupportedPrecision {
        gpu: String,
        precision: String,
        available: String,
    },
}
