//! One model replica: lowering plus pricing of a forward step.

use bottleneck_core::arch::ModelArch;
use bottleneck_core::hardware::Hardware;
use bottleneck_core::ir::Op;
use bottleneck_core::lower::{forward, LowerOptions, Parallel, Precisions, TokenShape};
use bottleneck_core::pricing::{price_ops, Priced};
use bottleneck_core::CoreError;

/// A model on a group of GPUs (TP × PP, with EP inside the TP group for MoE layers).
#[derive(Clone, Debug)]
pub struct Replica<'a> {
    pub arch: &'a ModelArch,
    pub hw: &'a Hardware,
    pub par: Parallel,
    pub prec: Precisions,
}

/// The priced forward step of a replica.
#[derive(Clone, Debug)]
pub struct StepCost {
    /// Wall time of the step, host overhead included.
    pub time_s: f64,
    /// Host (engine) overhead part of `time_s`.
    pub overhead_s: f64,
    /// The ops of the whole model (all stages) on one TP rank, in execution order.
    pub ops: Vec<Op>,
    pub priced: Priced,
}

impl<'a> Replica<'a> {
    /// Validates the layout and precisions for this model and GPU.
    pub fn new(
        arch: &'a ModelArch,
        hw: &'a Hardware,
        par: Parallel,
        prec: Precisions,
    ) -> Result<Self, CoreError> {
        arch.validate()?;
        par.validate(arch)?;
        hw.require_precision(prec.gemm())?;
        if prec.kv.bytes() < 2.0 {
            // Low-precision KV is a storage format (dequantized in the kernel); any GPU can
            // hold it, but fp8 attention math needs fp8 support when activations are fp8.
        }
        if prec.activations.bytes() < 2.0 {
            hw.require_precision(prec.activations)?;
        }
        Ok(Replica {
            arch,
            hw,
            par,
            prec,
        })
    }

    /// GPUs this replica occupies.
    pub fn gpus(&self) -> u32 {
        self.par.tp * self.par.pp
    }

    /// Lowers one forward step over `tokens` for the whole model (every stage in sequence).
    pub fn lower(&self, tokens: &TokenShape) -> Vec<Op> {
        let mut ops = Vec::with_capacity(32);
        forward(
            self.arch,
            tokens,
            &self.par,
            &self.prec,
            &LowerOptions::whole(self.arch),
            &mut ops,
        );
        ops
    }

    /// Prices one forward step over `tokens` as one batch passing every stage in turn, plus the
    /// engine's per-step host overhead.
    pub fn step(&self, tokens: &TokenShape) -> StepCost {
        let ops = self.lower(tokens);
        let priced = price_ops(&ops, self.hw);
        let overhead_s = self.hw.efficiency.step_overhead_us * 1e-6;
        StepCost {
            time_s: priced.total.time_s + overhead_s,
            overhead_s,
            ops,
            priced,
        }
    }

    /// Time of one forward step over `tokens`, without keeping the op list.
    pub fn step_time(&self, tokens: &TokenShape) -> f64 {
        self.step(tokens).time_s
    }

    /// Time for every sequence of a decoding batch to advance one token. With `pp` stages the
    /// batch is split into `pp` micro-batches that keep every stage busy, so one round takes
    /// the whole-model time of a `batch / pp` micro-batch.
    pub fn decode_step(&self, batch: u64, ctx: u64) -> StepCost {
        let pp = u64::from(self.par.pp);
        let micro = if batch >= pp {
            batch.div_ceil(pp)
        } else {
            batch
        };
        self.step(&TokenShape::decode(micro, ctx, self.arch.sliding_window))
    }

    /// Time to prefill `batch` prompts of `prompt` tokens from an empty cache.
    pub fn prefill_step(&self, batch: u64, prompt: u64) -> StepCost {
        self.step(&TokenShape::prefill(
            batch,
            prompt,
            self.arch.sliding_window,
        ))
    }
}
