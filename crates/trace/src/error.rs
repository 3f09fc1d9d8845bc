//! Errors at the crate edge. Tolerable problems are counted as [`crate::Warnings`] instead.

use std::path::PathBuf;

/// Why a trace (or a set of traces) could not be analysed at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("cannot read {path} (check the path and its permissions)")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The gzip stream is corrupt (not merely cut short).
    #[error("{path}: corrupt gzip stream after {offset} decompressed bytes ({detail}); re-copy or re-export the trace")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// Decompressed bytes read before the failure.
        offset: u64,
        /// The decoder's message.
        detail: String,
    },
    /// The JSON is malformed.
    #[error("{path}: invalid JSON at byte {offset}: {detail}; the trace must be Chrome-trace JSON as written by torch.profiler")]
    Json {
        /// The file.
        path: PathBuf,
        /// Byte offset in the (decompressed) JSON text.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// The input ended before the first complete event.
    #[error("{path}: truncated at byte {offset} before any complete event; re-export the trace")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where the input ended.
        offset: u64,
    },
    /// The document holds no `traceEvents`.
    #[error("{path}: no trace events found; expected a Kineto trace with a \"traceEvents\" array")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// No input files were given, or a folder holds no traces.
    #[error("no trace files in {0}; pass Kineto .json or .json.gz files or a folder holding them")]
    NoFiles(String),
}
