//! Human-readable rendering of analysis results: tables and short explanations. The CLI
//! prints what these functions return; JSON is serialized from the result types directly.

pub mod fmt;
pub mod infer;
pub mod serve;
pub mod trace;
pub mod train;
