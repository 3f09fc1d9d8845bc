//! The one place that prices operators.
//!
//! Compute-bound and memory-bound work follow a roofline with fitted achievable fractions and a
//! fixed per-kernel cost; collectives follow a latency–bandwidth (α–β) model per link. Every
//! analysis (inference, training, serving) schedules the costs this module returns; nothing
//! else turns FLOPs or bytes into seconds.

use serde::Serialize;

use crate::hardware::Hardware;
use crate::ir::{Collective, CollectiveKind, Op, OpClass, Scope};
use crate::units::{Precision, GB, TFLOPS};

/// The resource that decides an operator's (or a schedule's) time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    Compute,
    MemoryBandwidth,
    Interconnect,
    /// Fixed per-kernel or per-step costs (launch, latency) dominate.
    Overhead,
}

impl Bound {
    /// The name in the `bottleneck.resource` vocabulary (SPEC §4).
    pub fn resource(self) -> &'static str {
        match self {
            Bound::Compute => "compute",
            Bound::MemoryBandwidth => "memory_bandwidth",
            Bound::Interconnect => "interconnect",
            Bound::Overhead => "host_overhead",
        }
    }
}

/// The time of one operator instance and what each resource alone would need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Wall time of one instance.
    pub time_s: f64,
    /// Time the math alone would take at the achievable compute rate.
    pub compute_s: f64,
    /// Time the device-memory traffic alone would take at the achievable bandwidth.
    pub memory_s: f64,
    /// Time on the interconnect.
    pub comm_s: f64,
    /// Fixed cost (launch, prologue, collective step latency).
    pub fixed_s: f64,
}

impl Cost {
    /// Which resource accounts for most of the time.
    pub fn bound(&self) -> Bound {
        let mut best = (Bound::Overhead, self.fixed_s);
        for (b, t) in [
            (Bound::Compute, self.compute_s),
            (Bound::MemoryBandwidth, self.memory_s),
            (Bound::Interconnect, self.comm_s),
        ] {
            if t > best.1 {
                best = (b, t);
            }
        }
        best.0
    }

    /// This cost repeated `n` times.
    pub fn scaled(&self, n: f64) -> Cost {
        Cost {
            time_s: self.time_s * n,
            compute_s: self.compute_s * n,
            memory_s: self.memory_s * n,
            comm_s: self.comm_s * n,
            fixed_s: self.fixed_s * n,
        }
    }

    /// Adds another cost component-wise.
    pub fn add(&mut self, other: &Cost) {
        self.time_s += other.time_s;
        self.compute_s += other.compute_s;
        self.memory_s += other.memory_s;
        self.comm_s += other.comm_s;
        self.fixed_s += other.fixed_s;
    }
}

/// Achievable compute rate for `op` in FLOP/s (zero if the GPU lacks the precision).
fn achievable_flops(op: &Op, hw: &Hardware) -> f64 {
    let peak = hw.peak_flops(op.precision).unwrap_or_else(|| {
        // Callers validate precisions up front; a GEMM in an unsupported precision falls back
        // to the widest supported rate rather than dividing by zero.
        hw.compute
            .dense_tflops
            .values()
            .copied()
            .fold(0.0, f64::max)
            * TFLOPS
    });
    // Fused attention's fraction is fitted to 16-bit FlashAttention kernels, and engines run the
    // attention math (softmax, P·V) at 16 bits even with 8-bit GEMMs and KV cache (the cache is
    // dequantized in the kernel): price it against the 16-bit peak.
    let peak = if op.class == OpClass::Attention && op.precision.bytes() < 2.0 {
        hw.peak_flops(Precision::Bf16)
            .or_else(|| hw.peak_flops(Precision::Fp16))
            .unwrap_or(peak)
    } else {
        peak
    };
    let fraction = match op.class {
        OpClass::Gemm => hw.efficiency.gemm_peak_fraction,
        OpClass::Attention => hw.efficiency.attention_peak_fraction,
        // Pointwise math runs on the vector units; it never binds in practice, and the
        // tensor-core fraction is a generous stand-in that keeps it memory-bound.
        _ => hw.efficiency.gemm_peak_fraction,
    };
    peak * fraction
}

/// Fraction of the SMs a GEMM's last wave keeps busy, averaged over its waves: the output is cut
/// into `gemm_tile × gemm_tile` tiles (per group of a grouped GEMM), one tile per SM at a time, so
/// `tiles / (ceil(tiles / SMs) · SMs)`. A 128-token GEMM with 4096 output columns fills 32 tiles
/// of a 132-SM H100: the math runs at a quarter of the rate. Ops without a GEMM shape get 1.
pub fn wave_utilization(op: &Op, hw: &Hardware) -> f64 {
    let (Some([m, n, k]), OpClass::Gemm) = (op.gemm, op.class) else {
        return 1.0;
    };
    let tile = hw.efficiency.gemm_tile;
    let one = 2.0 * m * n * k;
    if !(one > 0.0 && tile > 0.0) {
        return 1.0;
    }
    // Grouped GEMMs (MoE experts) carry one group's shape and the FLOPs of all groups.
    let groups = (op.flops / one).max(1.0);
    let tiles = groups * (m / tile).ceil() * (n / tile).ceil();
    let sms = f64::from(hw.compute.sms.max(1));
    let waves = (tiles / sms).ceil().max(1.0);
    (tiles / (waves * sms)).clamp(f64::MIN_POSITIVE, 1.0)
}

/// Busy time of a kernel whose math alone takes `compute_s` and whose memory traffic alone takes
/// `memory_s`: `(compute^p + memory^p)^(1/p)`. Neither unit runs at its full rate when the two
/// are close (`p = 1.31` fitted, see `catalog/hardware/README.md`); far from the ridge it is the
/// larger of the two.
pub fn smooth_roofline(compute_s: f64, memory_s: f64, p: f64) -> f64 {
    let hi = compute_s.max(memory_s);
    let lo = compute_s.min(memory_s);
    if hi <= 0.0 || lo <= 0.0 {
        return hi.max(0.0);
    }
    hi * (1.0 + (lo / hi).powf(p)).powf(1.0 / p)
}

/// Prices one instance of `op` on `hw`.
pub fn price_op(op: &Op, hw: &Hardware) -> Cost {
    if let Some(c) = &op.collective {
        return price_collective(c, hw);
    }
    let e = &hw.efficiency;
    let rate = achievable_flops(op, hw);
    let compute_s = if op.flops > 0.0 && rate > 0.0 {
        op.flops / rate / wave_utilization(op, hw)
    } else {
        0.0
    };
    let memory_s = op.bytes / (hw.memory_bandwidth() * e.memory_bandwidth_fraction);
    let fixed_s = match op.class {
        OpClass::Gemm | OpClass::Attention => e.gemm_fixed_us,
        _ => e.kernel_fixed_us,
    } * 1e-6;
    let busy = smooth_roofline(compute_s, memory_s, e.roofline_exponent);
    Cost {
        time_s: busy + fixed_s,
        compute_s,
        memory_s,
        comm_s: 0.0,
        fixed_s,
    }
}

/// Algorithm steps and the multiple of the buffer each GPU moves over its link, for a
/// bandwidth-optimal ring (NCCL's default for large messages).
pub fn collective_volume(kind: CollectiveKind, group: u32) -> (f64, f64) {
    let n = f64::from(group.max(1));
    match kind {
        CollectiveKind::AllReduce => (2.0 * (n - 1.0), 2.0 * (n - 1.0) / n),
        CollectiveKind::AllGather | CollectiveKind::ReduceScatter | CollectiveKind::AllToAll => {
            (n - 1.0, (n - 1.0) / n)
        }
        CollectiveKind::SendRecv => (1.0, 1.0),
    }
}

/// Prices a collective: `steps × step latency + volume / bus bandwidth + 2·sqrt(chunk latency ×
/// volume / bus bandwidth)` on the link its scope names.
pub fn price_collective(c: &Collective, hw: &Hardware) -> Cost {
    if c.group <= 1 && c.kind != CollectiveKind::SendRecv {
        return Cost::default();
    }
    let e = &hw.efficiency;
    let (link, fraction, step_us, chunk_us) = match c.scope {
        Scope::IntraNode => (
            &hw.interconnect.intra_node,
            e.intra_node_bus_fraction,
            e.intra_node_step_us,
            e.intra_node_chunk_us,
        ),
        Scope::InterNode => (
            &hw.interconnect.inter_node,
            e.inter_node_bus_fraction,
            e.inter_node_step_us,
            e.inter_node_chunk_us,
        ),
    };
    let (steps, factor) = collective_volume(c.kind, c.group);
    // Bandwidth term plus the cross term of a pipelined (chunked) ring.
    let wire_s = factor * c.bytes / (link.bandwidth_gb_s * GB * fraction);
    let comm_s = wire_s + 2.0 * (chunk_us * 1e-6 * wire_s).sqrt();
    let fixed_s = steps * step_us * 1e-6;
    Cost {
        time_s: comm_s + fixed_s,
        compute_s: 0.0,
        memory_s: 0.0,
        comm_s,
        fixed_s,
    }
}

/// The priced form of an operator list.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Priced {
    /// Per-instance cost of each op, in the order given.
    pub per_op: Vec<Cost>,
    /// Sum over ops of `count × cost`.
    pub total: Cost,
    pub flops: f64,
    pub bytes: f64,
}

impl Priced {
    /// Time share of each bound over the ops, largest first.
    pub fn bound_shares(&self, ops: &[Op]) -> Vec<(Bound, f64)> {
        let mut by = [
            (Bound::Compute, 0.0),
            (Bound::MemoryBandwidth, 0.0),
            (Bound::Interconnect, 0.0),
            (Bound::Overhead, 0.0),
        ];
        for (op, c) in ops.iter().zip(&self.per_op) {
            let b = c.bound();
            let slot = by
                .iter_mut()
                .find(|(k, _)| *k == b)
                .expect("all bounds listed");
            slot.1 += c.time_s * op.count;
        }
        let total: f64 = by.iter().map(|x| x.1).sum();
        let mut v: Vec<_> = by
            .into_iter()
            .map(|(b, t)| (b, if total > 0.0 { t / total } else { 0.0 }))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }
}

/// Prices every op and sums them as a serial schedule.
pub fn price_ops(ops: &[Op], hw: &Hardware) -> Priced {
    let mut p = Priced {
        per_op: Vec::with_capacity(ops.len()),
        ..Priced::default()
    };
    for op in ops {
        let c = price_op(op, hw);
        p.total.add(&c.scaled(op.count));
        p.flops += op.total_flops();
        p.bytes += op.total_bytes();
        p.per_op.push(c);
    }
    p
}
