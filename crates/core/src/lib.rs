//! `bottleneck-core`: units, the model architecture, the operator IR, the hardware model and
//! the one place that prices operators.
//!
//! - [`arch::ModelArch`] describes a transformer; [`lower::forward`] turns it, a batch shape
//!   and a [`lower::Parallel`] layout into [`ir::Op`]s for one GPU.
//! - [`hardware::Hardware`] holds a GPU's sourced peaks and fitted efficiencies;
//!   [`catalog`] embeds the built-in ones.
//! - [`pricing::price_op`] is the only function that turns FLOPs, bytes and collective volumes
//!   into seconds.
//!
//! This crate does no IO and returns errors instead of panicking on user input.

pub mod arch;
pub mod catalog;
pub mod error;
pub mod hardware;
pub mod ir;
pub mod lower;
pub mod pricing;
pub mod units;

pub use arch::{AttentionKind, ModelArch};
pub use error::CoreError;
pub use hardware::Hardware;
pub use ir::{Collective, CollectiveKind, Op, OpClass, Scope};
pub use lower::{LowerOptions, Parallel, Precisions, TokenShape};
pub use pricing::{price_op, price_ops, Bound, Cost, Priced};
pub use units::Precision;
