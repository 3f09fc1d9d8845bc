//! LLM inference analysis on the core IR and pricing.
//!
//! [`Replica`] prices one forward step (prefill, decode or a mixed batch) of a model on a
//! tensor/pipeline/expert-parallel replica; [`analyze`] builds the full `infer` report:
//! time to first token, time per output token, memory, the binding resource and what-ifs.

mod analysis;
mod memory;
mod replica;

pub use analysis::{analyze, InferReport, InferRequest, ModelInfo};
pub use memory::{
    activation_bytes_per_gpu, kv_bytes_per_seq_per_gpu, memory_per_gpu, weight_bytes_per_gpu,
    MemoryUse, USABLE_FRACTION,
};
pub use replica::{Replica, StepCost};
