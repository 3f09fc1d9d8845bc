//! A training job and a parallel layout, with the divisibility rules that make a layout valid.

use std::fmt;
use std::str::FromStr;

use bottleneck_core::arch::ModelArch;
use bottleneck_core::hardware::Hardware;
use bottleneck_core::Precision;
use serde::Serialize;

use crate::error::TrainError;

/// Activation recomputation (Korthikanti et al. 2022).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Recompute {
    /// Every activation is stored.
    None,
    /// The attention core (scores, softmax) is recomputed in the backward pass.
    Selective,
    /// Only each layer's input is stored; the whole layer's forward is re-run in backward.
    Full,
}

impl Recompute {
    /// Every mode, least recompute first.
    pub const ALL: [Recompute; 3] = [Recompute::None, Recompute::Selective, Recompute::Full];

    /// The name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Recompute::None => "none",
            Recompute::Selective => "selective",
            Recompute::Full => "full",
        }
    }
}

impl fmt::Display for Recompute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Recompute {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "no" | "off" => Ok(Recompute::None),
            "selective" | "sel" => Ok(Recompute::Selective),
            "full" => Ok(Recompute::Full),
            _ => Err(TrainError::InvalidJob(format!(
                "unknown recompute mode {s:?}; use none, selective or full"
            ))),
        }
    }
}

/// How one training step is split over GPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Layout {
    /// Tensor parallel degree.
    pub tp: u32,
    /// Pipeline stages.
    pub pp: u32,
    /// Data parallel degree.
    pub dp: u32,
    /// Context parallel degree (ring attention over the sequence).
    pub cp: u32,
    /// Expert parallel degree (MoE; experts split over `ep` of the data-parallel ranks).
    pub ep: u32,
    /// Virtual pipeline stages per GPU (interleaved 1F1B); 1 is plain 1F1B.
    pub vpp: u32,
    /// Megatron sequence parallelism inside the TP group.
    pub sequence_parallel: bool,
    /// Sequences per micro-batch.
    pub micro_batch: u64,
    /// ZeRO stage: 0 (plain DP), 1 (optimizer states), 2 (+ gradients), 3 (+ parameters, FSDP).
    pub zero: u8,
    pub recompute: Recompute,
}

impl Layout {
    /// One GPU, micro-batch 1, nothing sharded or recomputed.
    pub fn single() -> Layout {
        Layout {
            tp: 1,
            pp: 1,
            dp: 1,
            cp: 1,
            ep: 1,
            vpp: 1,
            sequence_parallel: false,
            micro_batch: 1,
            zero: 0,
            recompute: Recompute::None,
        }
    }

    /// GPUs the layout occupies.
    pub fn gpus(&self) -> u64 {
        u64::from(self.tp) * u64::from(self.pp) * u64::from(self.dp) * u64::from(self.cp)
    }

    /// A compact description such as `tp8 pp4 dp2 cp1 ep1 vpp1 sp mb1 zero1 selective`.
    pub fn describe(&self) -> String {
        format!(
            "tp {} pp {} dp {} cp {} ep {} vpp {}{} micro-batch {} zero {} recompute {}",
            self.tp,
            self.pp,
            self.dp,
            self.cp,
            self.ep,
            self.vpp,
            if self.sequence_parallel { " sp" } else { "" },
            self.micro_batch,
            self.zero,
            self.recompute
        )
    }

    /// The flags that select this layout on the command line.
    pub fn flags(&self) -> String {
        let mut s = format!(
            "--tp {} --pp {} --dp {} --cp {} --ep {} --vpp {} --micro-batch {} --zero {}",
            self.tp, self.pp, self.dp, self.cp, self.ep, self.vpp, self.micro_batch, self.zero
        );
        if self.tp > 1 && !self.sequence_parallel {
            s.push_str(" --no-sp");
        }
        s
    }
}

/// Number format of the GEMMs (weights and optimizer state stay mixed-precision).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainPrecision {
    /// BF16 GEMMs and activations (16-bit mixed precision).
    Bf16,
    /// FP16 GEMMs and activations with loss scaling (GPUs without bf16, e.g. V100).
    Fp16,
    /// FP8 GEMMs (Transformer Engine style), BF16 activations elsewhere.
    Fp8,
}

impl TrainPrecision {
    /// The precision GEMMs run in.
    pub fn gemm(self) -> Precision {
        match self {
            TrainPrecision::Bf16 => Precision::Bf16,
            TrainPrecision::Fp16 => Precision::Fp16,
            TrainPrecision::Fp8 => Precision::Fp8,
        }
    }

    /// The name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        self.gemm().name()
    }
}

impl FromStr for TrainPrecision {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bf16" | "mixed" => Ok(TrainPrecision::Bf16),
            "fp16" => Ok(TrainPrecision::Fp16),
            "fp8" => Ok(TrainPrecision::Fp8),
            _ => Err(TrainError::InvalidJob(format!(
                "unknown training precision {s:?}; use bf16, fp16 or fp8"
            ))),
        }
    }
}

/// How the attention core runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionImpl {
    /// One fused kernel that keeps the scores on chip (FlashAttention-2); backward recomputes
    /// them.
    Fused,
    /// Megatron-LM's path before FlashAttention (2020–2022): `QKᵀ` and `attention·V` as batched
    /// GEMMs over the full `s × s` scores, which sit in device memory, a fused
    /// scale-mask-softmax and attention dropout (Korthikanti et al. 2022 §4.1).
    Unfused,
}

impl FromStr for AttentionImpl {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fused" | "flash" => Ok(AttentionImpl::Fused),
            "unfused" | "megatron" => Ok(AttentionImpl::Unfused),
            _ => Err(TrainError::InvalidJob(format!(
                "unknown attention implementation {s:?}; use fused or unfused"
            ))),
        }
    }
}

/// What is being trained, where: model, GPU, GPU count, sequence length, global batch.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    pub arch: &'a ModelArch,
    pub hw: &'a Hardware,
    pub gpus: u64,
    /// Tokens per sequence.
    pub seq: u64,
    /// Sequences per optimizer step.
    pub global_batch: u64,
    pub precision: TrainPrecision,
    pub attention: AttentionImpl,
}

impl Job<'_> {
    /// Checks the job itself (not the layout).
    pub fn validate(&self) -> Result<(), TrainError> {
        self.arch.validate()?;
        for (name, v) in [
            ("--gpus", self.gpus),
            ("--seq", self.seq),
            ("--global-batch", self.global_batch),
        ] {
            if v == 0 {
                return Err(TrainError::InvalidJob(format!(
                    "{name} must be a positive integer (got 0)"
                )));
            }
        }
        if self.gpus > 1 << 24 {
            return Err(TrainError::InvalidJob(format!(
                "--gpus {} is more than 16,777,216; give a realistic cluster size",
                self.gpus
            )));
        }
        if self.seq > 1 << 24 || self.global_batch > 1 << 30 {
            return Err(TrainError::InvalidJob(
                "--seq must be at most 16,777,216 and --global-batch at most 2^30".into(),
            ));
        }
        self.hw.require_precision(self.precision.gemm())?;
        Ok(())
    }

    /// Experts per MoE layer (1 for dense models).
    pub fn experts(&self) -> u64 {
        self.arch.moe.as_ref().map_or(1, |m| m.experts)
    }
}

/// The first rule `lay` breaks for `job`, as a sentence naming the flag to change.
pub fn rule_broken(job: &Job<'_>, lay: &Layout) -> Option<String> {
    let arch = job.arch;
    for (name, v) in [
        ("--tp", lay.tp),
        ("--pp", lay.pp),
        ("--dp", lay.dp),
        ("--cp", lay.cp),
        ("--ep", lay.ep),
        ("--vpp", lay.vpp),
    ] {
        if v == 0 {
            return Some(format!("{name} must be at least 1"));
        }
    }
    if lay.micro_batch == 0 {
        return Some("--micro-batch must be at least 1".into());
    }
    if lay.zero > 3 {
        return Some(format!("--zero {} is not a ZeRO stage (0-3)", lay.zero));
    }
    if arch.heads % u64::from(lay.tp) != 0 {
        return Some(format!(
            "--tp {} does not divide the {} attention heads of {}",
            lay.tp, arch.heads, arch.name
        ));
    }
    if u64::from(lay.pp) > arch.layers {
        return Some(format!(
            "--pp {} exceeds the {} layers of {}",
            lay.pp, arch.layers, arch.name
        ));
    }
    if lay.gpus() != job.gpus {
        return Some(format!(
            "tp {} × pp {} × dp {} × cp {} = {} GPUs, not the --gpus {}",
            lay.tp,
            lay.pp,
            lay.dp,
            lay.cp,
            lay.gpus(),
            job.gpus
        ));
    }
    if lay.vpp > 1 {
        if lay.pp == 1 {
            return Some("--vpp > 1 needs pipeline parallelism (--pp > 1)".into());
        }
        if arch.layers % (u64::from(lay.pp) * u64::from(lay.vpp)) != 0 {
            return Some(format!(
                "interleaving needs the {} layers to split evenly into pp {} × vpp {} chunks",
                arch.layers, lay.pp, lay.vpp
            ));
        }
    }
    match &arch.moe {
        Some(m) => {
            if m.experts % u64::from(lay.ep) != 0 {
                return Some(format!(
                    "--ep {} does not divide the {} experts of {}",
                    lay.ep, m.experts, arch.name
                ));
            }
            if lay.dp % lay.ep != 0 {
                return Some(format!(
                    "--ep {} must divide --dp {} (experts are split over data-parallel ranks)",
                    lay.ep, lay.dp
                ));
            }
        }
        None => {
            if lay.ep > 1 {
                return Some(format!(
                    "--ep {} given but {} has no experts",
                    lay.ep, arch.name
                ));
            }
        }
    }
    if job.seq % u64::from(lay.cp) != 0 {
        return Some(format!(
            "--cp {} does not divide the sequence of {} tokens",
            lay.cp, job.seq
        ));
    }
    let Some(per_step) = u64::from(lay.dp).checked_mul(lay.micro_batch) else {
        return Some(format!(
            "--micro-batch {} exceeds the global batch {}",
            lay.micro_batch, job.global_batch
        ));
    };
    if job.global_batch % per_step != 0 {
        return Some(format!(
            "global batch {} is not divisible by dp {} × micro-batch {} = {per_step}",
            job.global_batch, lay.dp, lay.micro_batch
        ));
    }
    if lay.vpp > 1 {
        let m = job.global_batch / per_step;
        if m % u64::from(lay.pp) != 0 {
            return Some(format!(
                "interleaving needs the {m} micro-batches to be a multiple of pp {}",
                lay.pp
            ));
        }
    }
    None
}

/// Checks `lay` for `job`; on failure the error names the rule and a valid layout nearby.
pub fn validate(job: &Job<'_>, lay: &Layout) -> Result<(), TrainError> {
    job.validate()?;
    match rule_broken(job, lay) {
        None => Ok(()),
        Some(rule) => {
            let hint = match nearest_valid(job, lay) {
                Some(n) => format!("; a valid layout nearby: {}", n.flags()),
                None => String::new(),
            };
            Err(TrainError::InvalidLayout(format!("{rule}{hint}")))
        }
    }
}

fn log2_distance(a: u64, b: u64) -> f64 {
    ((a.max(1) as f64).log2() - (b.max(1) as f64).log2()).abs()
}

/// The valid layout closest to `lay` (distance: sum of |log2| ratios of the degrees and
/// micro-batch), keeping ZeRO stage, recompute and sequence parallelism.
pub fn nearest_valid(job: &Job<'_>, lay: &Layout) -> Option<Layout> {
    let mut best: Option<(f64, Layout)> = None;
    let gpus = job.gpus;
    let gd = crate::search::divisors(gpus);
    let experts = job.experts();
    for &tp in &gd {
        if tp > 1024 || job.arch.heads % tp != 0 {
            continue;
        }
        for &cp in &gd {
            if (gpus / tp) % cp != 0 || cp > 64 {
                continue;
            }
            for &pp in &gd {
                if (gpus / tp / cp) % pp != 0 {
                    continue;
                }
                let dp = gpus / tp / cp / pp;
                for ep in [lay.ep, 1] {
                    for vpp in [lay.vpp, 1] {
                        for mb in [lay.micro_batch, 1] {
                            let cand = Layout {
                                tp: tp as u32,
                                pp: pp as u32,
                                dp: dp as u32,
                                cp: cp as u32,
                                ep: if experts > 1 { ep.max(1) } else { 1 },
                                vpp: vpp.max(1),
                                micro_batch: mb.max(1),
                                zero: lay.zero.min(3),
                                ..*lay
                            };
                            if rule_broken(job, &cand).is_some() {
                                continue;
                            }
                            let d = log2_distance(tp, u64::from(lay.tp))
                                + log2_distance(pp, u64::from(lay.pp))
                                + log2_distance(dp, u64::from(lay.dp))
                                + log2_distance(cp, u64::from(lay.cp))
                                + log2_distance(u64::from(cand.ep), u64::from(lay.ep))
                                + log2_distance(u64::from(cand.vpp), u64::from(lay.vpp))
                                + log2_distance(cand.micro_batch, lay.micro_batch);
                            if best.as_ref().is_none_or(|(bd, _)| d < *bd - 1e-12) {
                                best = Some((d, cand));
                            }
                        }
                    }
                }
            }
        }
    }
    best.map(|b| b.1)
}
