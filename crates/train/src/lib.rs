//! Training analysis on the core IR and pricing: the step time, memory, MFU and binding
//! resource of a parallel layout, and the search for the fastest layout that fits.
//!
//! A training step is a schedule of the same operators inference prices: the forward ops of
//! `core::lower::forward`, their backward ([`backward`]), the optimizer update and the
//! collectives of each parallel dimension, all priced by `core::pricing`.
//!
//! - [`costs::layer_costs`] prices one layer's forward, backward and recompute for one
//!   micro-batch, once per [`costs::CostKey`] (TP, CP, EP, micro-batch, sequence parallel).
//! - [`step::evaluate`] composes those costs with the pipeline schedule (1F1B, interleaved),
//!   data-parallel / ZeRO communication, the optimizer and memory: the one evaluator both
//!   [`analyze`] (one layout) and [`search()`] (every layout) use.

pub mod analysis;
pub mod backward;
pub mod costs;
pub mod error;
pub mod layout;
pub mod memory;
pub mod search;
pub mod step;

pub use analysis::{analyze, evaluate_layout, TrainReport};
pub use error::TrainError;
pub use layout::{AttentionImpl, Job, Layout, Recompute, TrainPrecision};
pub use search::{search, SearchReport};
pub use step::Evaluation;
