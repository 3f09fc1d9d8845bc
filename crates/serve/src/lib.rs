//! Discrete-event simulation of LLM serving and capacity planning.
//!
//! [`simulate`] runs requests ([`workload`]) through replicas of a model, each driven by a
//! scheduler (static batching, continuous batching with paged KV blocks and preemption, chunked
//! prefill, disaggregated prefill/decode pools) behind a router, and reports latency
//! percentiles, goodput, KV utilisation and what limits the service ([`SimReport`]). Every
//! step is priced by `bottleneck_infer::Replica` through a grid cache ([`timing`]); KV
//! transfers and swaps by `bottleneck_core::pricing::price_collective`. Event times are integer
//! nanoseconds in a binary heap ordered by (time, sequence number), and all randomness comes
//! from seeded ChaCha8 streams: the same inputs give the same report (save `sim_wall_s`).
//!
//! [`plan`] searches replica counts and TP degrees for the fewest GPUs that hold a rate within
//! latency SLOs.

mod engine;
pub mod plan;
mod report;
pub mod timing;
pub mod workload;

use thiserror::Error;

pub use engine::{
    simulate, Capacity, Overlong, Preemption, Router, SchedulerKind, ServeConfig, Simulation,
};
pub use plan::{plan, PlanCandidate, PlanReport, PlanRequest};
pub use report::{
    Bottleneck, LatencyStats, LittleCheck, RequestRecord, SimReport, Slo, Throughput,
};
pub use timing::{StepTimer, StepWork};
pub use workload::{Arrival, Lengths, RequestSpec, WorkloadFile};

/// Why a simulation rejected its input.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum SimError {
    /// A bad option or workload.
    #[error("{0}")]
    Input(String),
    /// The model's weights and buffers leave no room for the KV cache.
    #[error("{0}")]
    DoesNotFit(String),
    #[error(transparent)]
    Core(#[from] bottleneck_core::CoreError),
}
