//! The hardware model: one accelerator's peak rates, memory, links and the achievable fractions
//! of them, read from a sourced TOML file (the built-in catalog or a user's file; same schema).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::units::{Precision, GB, GIB, TFLOPS};

/// One accelerator (per-GPU figures) and the node it sits in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// Catalog key, e.g. `h100-sxm`.
    pub name: String,
    /// Marketing name, e.g. "NVIDIA H100 SXM5 80GB".
    pub display_name: String,
    /// `nvidia`, `amd`, ...
    pub vendor: String,
    /// Microarchitecture, e.g. `hopper`.
    pub architecture: String,
    /// Release year, used to order "the next GPU" in what-ifs.
    pub year: u32,
    /// Other names that resolve to this GPU (e.g. `a100-pcie`, `h200`); optional.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub memory: Memory,
    pub compute: Compute,
    pub interconnect: Interconnect,
    pub efficiency: Efficiency,
}

/// Device memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// Capacity in GiB as the device reports it.
    pub capacity_gib: f64,
    /// Peak bandwidth in GB/s (decimal).
    pub bandwidth_gb_s: f64,
    /// Last-level on-chip cache in MiB.
    pub l2_mib: f64,
    pub source: String,
}

/// Compute units and dense peak rates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compute {
    /// Streaming multiprocessors (NVIDIA) or compute units (AMD).
    pub sms: u32,
    /// Dense (no sparsity) peak TFLOP/s (TOPS for int) per precision; a precision absent here is
    /// not supported by the tensor cores.
    pub dense_tflops: BTreeMap<Precision, f64>,
    pub source: String,
}

/// The links a GPU talks over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interconnect {
    /// Inside the node (NVLink/NVSwitch, Infinity Fabric or PCIe).
    pub intra_node: Link,
    /// Between nodes (typically one NIC per GPU).
    pub inter_node: Link,
    /// GPUs in one intra-node (NVLink) domain.
    pub gpus_per_node: u32,
}

/// A link, per GPU and per direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// e.g. `nvlink4-nvswitch`, `pcie4-x16`, `ib-ndr400`.
    pub kind: String,
    /// Peak unidirectional bandwidth per GPU in GB/s.
    pub bandwidth_gb_s: f64,
    pub source: String,
}

/// Achievable fractions of the peaks and fixed costs, fitted to measurements (see
/// `catalog/hardware/README.md` for the method and each file's `source`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Efficiency {
    /// Fraction of dense peak a large GEMM reaches.
    pub gemm_peak_fraction: f64,
    /// Exponent `p` of the smooth roofline every kernel is priced on: busy time
    /// `(compute^p + memory^p)^(1/p)`; `p → ∞` is the hard `max`, `p = 1` no overlap of math and
    /// memory traffic. One value for all GPUs, fitted to the non-square GEMMs.
    pub roofline_exponent: f64,
    /// Output tile edge (rows = columns) a GEMM kernel gives one SM at a time, for wave
    /// quantization: `tiles = ceil(m/tile)·ceil(n/tile)`, the math runs at
    /// `tiles / (ceil(tiles/SMs)·SMs)` of the rate.
    pub gemm_tile: f64,
    /// Fixed time per GEMM (launch, prologue, wave tail) in microseconds: a GEMM of F FLOPs
    /// takes `F / (fraction × peak) + fixed`.
    pub gemm_fixed_us: f64,
    /// Fraction of dense peak a fused (FlashAttention-style) attention kernel reaches.
    pub attention_peak_fraction: f64,
    /// Fraction of peak memory bandwidth a streaming kernel reaches.
    pub memory_bandwidth_fraction: f64,
    /// Fixed time per memory-bound kernel (launch and ramp) in microseconds.
    pub kernel_fixed_us: f64,
    /// Fraction of the link's peak that collectives reach as bus bandwidth, inside a node.
    pub intra_node_bus_fraction: f64,
    /// Same across nodes.
    pub inter_node_bus_fraction: f64,
    /// Latency per algorithm step of a collective (one hop of a ring) in microseconds, inside a
    /// node.
    pub intra_node_step_us: f64,
    /// Same across nodes.
    pub inter_node_step_us: f64,
    /// Latency of one pipelined chunk of a collective inside a node, in microseconds: the
    /// cross term `2·sqrt(chunk · volume / bus bandwidth)` of a chunked ring, which makes the
    /// bus bandwidth rise slowly over 1–100 MB messages as NCCL measures it.
    pub intra_node_chunk_us: f64,
    /// Same across nodes.
    pub inter_node_chunk_us: f64,
    /// Host time per forward step of an inference engine or training iteration (scheduling,
    /// sampling, launch of the step) in microseconds.
    pub step_overhead_us: f64,
    pub source: String,
}

impl Hardware {
    /// Parses and validates a hardware TOML document.
    pub fn from_toml(text: &str) -> Result<Self, CoreError> {
        let hw: Hardware = toml::from_str(text).map_err(|e| {
            let msg = e.message().replace('\n', " ");
            match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    CoreError::HardwareToml(format!("line {line}: {msg}"))
                }
                None => CoreError::HardwareToml(msg),
            }
        })?;
        hw.validate()?;
        Ok(hw)
    }

    /// Checks that every figure is finite and in range.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |problem: String| CoreError::InvalidHardware {
            name: self.name.clone(),
            problem,
        };
        let positive = [
            ("memory.capacity_gib", self.memory.capacity_gib),
            ("memory.bandwidth_gb_s", self.memory.bandwidth_gb_s),
            (
                "interconnect.intra_node.bandwidth_gb_s",
                self.interconnect.intra_node.bandwidth_gb_s,
            ),
            (
                "interconnect.inter_node.bandwidth_gb_s",
                self.interconnect.inter_node.bandwidth_gb_s,
            ),
        ];
        for (field, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(format!("{field} must be a positive number (got {v})")));
            }
        }
        if self.memory.l2_mib < 0.0 || !self.memory.l2_mib.is_finite() {
            return Err(bad("memory.l2_mib must be >= 0".into()));
        }
        if self.compute.sms == 0 {
            return Err(bad("compute.sms must be positive".into()));
        }
        if self.interconnect.gpus_per_node == 0 {
            return Err(bad("interconnect.gpus_per_node must be positive".into()));
        }
        if self.compute.dense_tflops.is_empty() {
            return Err(bad("compute.dense_tflops lists no precision".into()));
        }
        for (p, v) in &self.compute.dense_tflops {
            if !(v.is_finite() && *v > 0.0) {
                return Err(bad(format!(
                    "compute.dense_tflops.{p} must be positive (got {v})"
                )));
            }
        }
        let e = &self.efficiency;
        for (field, v) in [
            ("gemm_peak_fraction", e.gemm_peak_fraction),
            ("attention_peak_fraction", e.attention_peak_fraction),
            ("memory_bandwidth_fraction", e.memory_bandwidth_fraction),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(bad(format!(
                    "efficiency.{field} must be in (0, 1] (got {v})"
                )));
            }
        }
        if !(e.gemm_tile.is_finite() && e.gemm_tile >= 1.0) {
            return Err(bad(format!(
                "efficiency.gemm_tile must be a number >= 1 (got {})",
                e.gemm_tile
            )));
        }
        if !(e.roofline_exponent.is_finite() && e.roofline_exponent >= 1.0) {
            return Err(bad(format!(
                "efficiency.roofline_exponent must be a number >= 1 (got {})",
                e.roofline_exponent
            )));
        }
        // In-network reduction (NVLink SHARP) lets all-reduce bus bandwidth exceed the link's.
        for (field, v) in [
            ("intra_node_bus_fraction", e.intra_node_bus_fraction),
            ("inter_node_bus_fraction", e.inter_node_bus_fraction),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 2.0) {
                return Err(bad(format!(
                    "efficiency.{field} must be in (0, 2] (got {v})"
                )));
            }
        }
        for (field, v) in [
            ("gemm_fixed_us", e.gemm_fixed_us),
            ("kernel_fixed_us", e.kernel_fixed_us),
            ("intra_node_step_us", e.intra_node_step_us),
            ("inter_node_step_us", e.inter_node_step_us),
            ("intra_node_chunk_us", e.intra_node_chunk_us),
            ("inter_node_chunk_us", e.inter_node_chunk_us),
            ("step_overhead_us", e.step_overhead_us),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(bad(format!("efficiency.{field} must be >= 0 (got {v})")));
            }
        }
        Ok(())
    }

    /// Device memory in bytes.
    pub fn memory_bytes(&self) -> f64 {
        self.memory.capacity_gib * GIB
    }

    /// Peak memory bandwidth in bytes/s.
    pub fn memory_bandwidth(&self) -> f64 {
        self.memory.bandwidth_gb_s * GB
    }

    /// Dense peak FLOP/s at `p`, if the GPU supports it. tf32 falls back to fp32 where the GPU
    /// has no tf32 tensor cores (V100, AMD).
    pub fn peak_flops(&self, p: Precision) -> Option<f64> {
        self.compute
            .dense_tflops
            .get(&p)
            .or_else(|| {
                if p == Precision::Tf32 {
                    self.compute.dense_tflops.get(&Precision::Fp32)
                } else {
                    None
                }
            })
            .map(|t| t * TFLOPS)
    }

    /// Errors unless the GPU's tensor cores run `p`.
    pub fn require_precision(&self, p: Precision) -> Result<f64, CoreError> {
        self.peak_flops(p)
            .ok_or_else(|| CoreError::UnsupportedPrecision {
                gpu: self.name.clone(),
                precision: p.name().to_string(),
                available: self
                    .compute
                    .dense_tflops
                    .keys()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Precisions the tensor cores run.
    pub fn precisions(&self) -> Vec<Precision> {
        self.compute.dense_tflops.keys().copied().collect()
    }

    /// GPUs per intra-node domain.
    pub fn gpus_per_node(&self) -> u32 {
        self.interconnect.gpus_per_node
    }

    /// Ridge point of the roofline at `p` in FLOP/byte of device memory traffic.
    pub fn ridge_point(&self, p: Precision) -> Option<f64> {
        self.peak_flops(p).map(|f| f / self.memory_bandwidth())
    }
}
