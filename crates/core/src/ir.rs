//! The operator IR: what every analysis builds and the one pricing function consumes.
//!
//! An [`Op`] is the work one GPU does for one kernel (or one collective), repeated `count`
//! times (for example once per layer). FLOPs and bytes are per instance and per GPU, after
//! sharding.

use serde::Serialize;

use crate::units::Precision;

/// What kind of kernel an operator is; decides which efficiency prices it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpClass {
    /// A dense matrix multiply (see [`Op::gemm`]).
    Gemm,
    /// Fused attention (FlashAttention-style: scores never reach device memory).
    Attention,
    /// Pointwise kernels: activations, residual adds, rotary, softmax outside attention.
    Elementwise,
    /// LayerNorm / RMSNorm.
    Norm,
    /// Embedding gather.
    Embedding,
    /// The optimizer update.
    Optimizer,
    /// A collective or point-to-point transfer (see [`Op::collective`]).
    Collective,
}

/// A communication pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectiveKind {
    AllReduce,
    AllGather,
    ReduceScatter,
    AllToAll,
    /// Point-to-point send/receive between neighbours (pipeline stages, ring attention).
    SendRecv,
}

impl CollectiveKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            CollectiveKind::AllReduce => "all_reduce",
            CollectiveKind::AllGather => "all_gather",
            CollectiveKind::ReduceScatter => "reduce_scatter",
            CollectiveKind::AllToAll => "all_to_all",
            CollectiveKind::SendRecv => "send_recv",
        }
    }
}

/// Which link a collective's group crosses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// All members share one NVLink/Infinity-Fabric domain.
    IntraNode,
    /// Members sit in different nodes: the NIC is the slowest hop.
    InterNode,
}

/// A collective over a group of GPUs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Collective {
    pub kind: CollectiveKind,
    /// Members of the group.
    pub group: u32,
    pub scope: Scope,
    /// The buffer size in bytes: the full reduced buffer for all-reduce, the gathered output
    /// for all-gather, the input for reduce-scatter, what one GPU sends for all-to-all and
    /// send/recv.
    pub bytes: f64,
}

/// One operator instance on one GPU, repeated `count` times.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Op {
    /// A stable name such as `attn.qkv_proj`.
    pub name: &'static str,
    pub class: OpClass,
    /// The precision the math runs in.
    pub precision: Precision,
    /// Floating-point operations per instance.
    pub flops: f64,
    /// Bytes read from plus written to device memory per instance.
    pub bytes: f64,
    /// The part of `bytes` that is parameters (weights) read.
    pub weight_bytes: f64,
    /// `[m, n, k]` of a GEMM: an (m × k) by (k × n) product.
    pub gemm: Option<[f64; 3]>,
    pub collective: Option<Collective>,
    /// Instances (for example, layers).
    pub count: f64,
}

impl Op {
    /// A GEMM of an (m × k) activation by a (k × n) weight, reading the weight at
    /// `weight_bytes_per_elem` and activations at `act_bytes`.
    pub fn gemm(
        name: &'static str,
        precision: Precision,
        [m, n, k]: [f64; 3],
        weight_bytes_per_elem: f64,
        act_bytes: f64,
        count: f64,
    ) -> Op {
        let weight_bytes = n * k * weight_bytes_per_elem;
        Op {
            name,
            class: OpClass::Gemm,
            precision,
            flops: 2.0 * m * n * k,
            bytes: weight_bytes + (m * k + m * n) * act_bytes,
            weight_bytes,
            gemm: Some([m, n, k]),
            collective: None,
            count,
        }
    }

    /// A memory-bound kernel moving `bytes` with `flops` of arithmetic.
    pub fn memory(
        name: &'static str,
        class: OpClass,
        precision: Precision,
        flops: f64,
        bytes: f64,
        count: f64,
    ) -> Op {
        Op {
            name,
            class,
            precision,
            flops,
            bytes,
            weight_bytes: 0.0,
            gemm: None,
            collective: None,
            count,
        }
    }

    /// A collective.
    pub fn collective(name: &'static str, precision: Precision, c: Collective, count: f64) -> Op {
        Op {
            name,
            class: OpClass::Collective,
            precision,
            flops: 0.0,
            bytes: 0.0,
            weight_bytes: 0.0,
            gemm: None,
            collective: Some(c),
            count,
        }
    }

    /// FLOPs over all instances.
    pub fn total_flops(&self) -> f64 {
        self.flops * self.count
    }

    /// Device-memory bytes over all instances.
    pub fn total_bytes(&self) -> f64 {
        self.bytes * self.count
    }
}
