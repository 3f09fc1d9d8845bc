//! The layout search: every TP × PP × DP × CP × EP × virtual stages × micro-batch × ZeRO ×
//! recompute (× sequence parallel) layout of a job, pruned by divisibility and memory,
//! evaluated in parallel with the same evaluator as `train`, reduced in a fixed order.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::ParallelInfo;
use crate::costs::{layer_costs, CostKey};
use crate::error::TrainError;
use crate::layout::{rule_broken, Job, Layout, Recompute};
use crate::memory::{GRADIENT_BYTES, OPTIMIZER_BYTES, WEIGHT_BYTES};
use crate::step::{evaluate_priced, Binding, Evaluation, JobFacts, Prices};

/// Largest micro-batch the search tries.
pub const MAX_MICRO_BATCH: u64 = 16;
/// Largest virtual-stage count the search tries.
pub const MAX_VPP: u32 = 8;
/// Largest context-parallel degree the search tries.
pub const MAX_CP: u32 = 32;
/// Largest expert-parallel degree the search tries.
pub const MAX_EP: u32 = 256;

/// One row of the search's top list.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TopEntry {
    pub parallel: ParallelInfo,
    pub micro_batch: u64,
    pub zero: u8,
    pub recompute: Recompute,
    pub step_time_s: f64,
    pub mfu: f64,
    pub tflops_per_gpu: f64,
    pub total_bytes_per_gpu: f64,
    pub bottleneck: Binding,
    /// The `train` flags that reproduce this row.
    #[serde(skip)]
    pub layout: Layout,
}

impl TopEntry {
    fn of(e: &Evaluation) -> TopEntry {
        TopEntry {
            parallel: ParallelInfo::of(&e.layout),
            micro_batch: e.layout.micro_batch,
            zero: e.layout.zero,
            recompute: e.layout.recompute,
            step_time_s: e.step_time_s,
            mfu: e.mfu,
            tflops_per_gpu: e.tflops_per_gpu,
            total_bytes_per_gpu: e.memory.total_bytes_per_gpu,
            bottleneck: e.bottleneck,
            layout: e.layout,
        }
    }
}

/// The `bottleneck.search/1` document.
#[derive(Clone, Debug, Serialize)]
pub struct SearchReport {
    pub schema: &'static str,
    pub model: String,
    pub hardware: String,
    pub gpus: u64,
    pub seq: u64,
    pub global_batch: u64,
    /// Layouts that satisfy every divisibility rule.
    pub space: u64,
    /// Layouts skipped because their model states alone, or a layout with more recompute,
    /// already overflow memory.
    pub pruned: u64,
    /// Layouts whose step was evaluated.
    pub evaluated: u64,
    /// Evaluated layouts that fit in memory.
    pub feasible: u64,
    /// Distinct per-layer cost keys priced.
    pub cost_keys: u64,
    pub elapsed_s: f64,
    /// `evaluated / elapsed_s`.
    pub layouts_per_s: f64,
    pub top: Vec<TopEntry>,
}

/// The divisors of `n`, ascending.
pub(crate) fn divisors(n: u64) -> Vec<u64> {
    let mut v = Vec::new();
    let mut d = 1;
    while d * d <= n {
        if n % d == 0 {
            v.push(d);
            if d * d != n {
                v.push(n / d);
            }
        }
        d += 1;
    }
    v.sort_unstable();
    v
}

/// Orders evaluations by step time, then by layout (so ties resolve the same way every run).
fn order(a: &Evaluation, b: &Evaluation) -> std::cmp::Ordering {
    a.step_time_s
        .total_cmp(&b.step_time_s)
        .then_with(|| layout_key(&a.layout).cmp(&layout_key(&b.layout)))
}

fn layout_key(l: &Layout) -> (u32, u32, u32, u32, u32, u32, bool, u64, u8, Recompute) {
    (
        l.tp,
        l.pp,
        l.dp,
        l.cp,
        l.ep,
        l.vpp,
        l.sequence_parallel,
        l.micro_batch,
        l.zero,
        l.recompute,
    )
}

#[derive(Default)]
struct Partial {
    space: u64,
    pruned: u64,
    evaluated: u64,
    feasible: u64,
    top: Vec<Evaluation>,
}

impl Partial {
    fn offer(&mut self, e: &Evaluation, k: usize) {
        if k == 0 {
            return;
        }
        if self.top.len() == k {
            let worst = &self.top[k - 1];
            if order(e, worst) != std::cmp::Ordering::Less {
                return;
            }
            self.top.pop();
        }
        let at = self
            .top
            .partition_point(|x| order(x, e) == std::cmp::Ordering::Less);
        self.top.insert(at, *e);
    }
}

/// The cost keys (TP, CP, EP, micro-batch, SP) of a job's space.
fn keys(job: &Job<'_>) -> Vec<CostKey> {
    let gpus = job.gpus;
    let gpn = u64::from(job.hw.gpus_per_node());
    let experts = job.experts();
    let mut out = Vec::new();
    for tp in divisors(gpus) {
        if tp > gpn || job.arch.heads % tp != 0 {
            continue;
        }
        for cp in divisors(gpus / tp) {
            if cp > u64::from(MAX_CP) || job.seq % cp != 0 {
                continue;
            }
            let rest = gpus / tp / cp;
            // Micro-batches that divide the per-rank batch of some data-parallel degree.
            let mut mbs: Vec<u64> = Vec::new();
            for dp in divisors(rest) {
                if job.global_batch % dp == 0 {
                    for mb in divisors(job.global_batch / dp) {
                        if mb <= MAX_MICRO_BATCH && !mbs.contains(&mb) {
                            mbs.push(mb);
                        }
                    }
                }
            }
            mbs.sort_unstable();
            let eps: Vec<u64> = if experts > 1 {
                divisors(experts)
                    .into_iter()
                    .filter(|e| *e <= u64::from(MAX_EP) && rest % e == 0)
                    .collect()
            } else {
                vec![1]
            };
            for &ep in &eps {
                for &mb in &mbs {
                    for sp in [false, true] {
                        if sp && tp == 1 {
                            continue;
                        }
                        out.push(CostKey {
                            tp: tp as u32,
                            cp: cp as u32,
                            ep: ep as u32,
                            micro_batch: mb,
                            sequence_parallel: sp,
                        });
                    }
                }
            }
        }
    }
    out
}

fn search_key(job: &Job<'_>, facts: &JobFacts, key: &CostKey, k: usize) -> Partial {
    let mut part = Partial::default();
    let gpus = job.gpus;
    let rest = gpus / u64::from(key.tp) / u64::from(key.cp);
    let layers = job.arch.layers;
    let usable = job.hw.memory_bytes() * bottleneck_infer::USABLE_FRACTION;
    let mut costs = None;
    for pp in divisors(rest) {
        if pp > layers {
            continue;
        }
        let dp = rest / pp;
        if dp % u64::from(key.ep) != 0 || job.global_batch % (dp * key.micro_batch) != 0 {
            continue;
        }
        let m = job.global_batch / (dp * key.micro_batch);
        let vpps: Vec<u32> = if pp == 1 {
            vec![1]
        } else {
            (1..=MAX_VPP)
                .filter(|v| *v == 1 || (layers % (pp * u64::from(*v)) == 0 && m % pp == 0))
                .collect()
        };
        let zeros: &[u8] = if dp > 1 { &[0, 1, 2, 3] } else { &[0] };
        let pp_layout = Layout {
            tp: key.tp,
            pp: pp as u32,
            dp: dp as u32,
            cp: key.cp,
            ep: key.ep,
            vpp: 1,
            sequence_parallel: key.sequence_parallel,
            micro_batch: key.micro_batch,
            zero: 0,
            recompute: Recompute::Full,
        };
        let prices = Prices::new(job, facts, &pp_layout);
        let max_params = prices.stage_params.iter().copied().fold(0.0, f64::max);
        for &zero in zeros {
            for &vpp in &vpps {
                let base = Layout {
                    vpp,
                    zero,
                    ..pp_layout
                };
                debug_assert!(rule_broken(job, &base).is_none());
                part.space += 3;
                // Model states alone (no activations) already overflow: skip every recompute.
                let states = max_params
                    * (WEIGHT_BYTES / if zero >= 3 { dp as f64 } else { 1.0 }
                        + GRADIENT_BYTES / if zero >= 2 { dp as f64 } else { 1.0 }
                        + OPTIMIZER_BYTES / if zero >= 1 { dp as f64 } else { 1.0 });
                if states > usable {
                    part.pruned += 3;
                    continue;
                }
                let c = costs.get_or_insert_with(|| layer_costs(job, key));
                // Full recompute stores the least: when it does not fit, nothing does.
                for (i, rc) in [Recompute::Full, Recompute::Selective, Recompute::None]
                    .into_iter()
                    .enumerate()
                {
                    let lay = Layout {
                        recompute: rc,
                        ..base
                    };
                    let e = evaluate_priced(job, facts, c, &prices, &lay);
                    part.evaluated += 1;
                    if !e.memory.fits {
                        part.pruned += 2 - i as u64;
                        break;
                    }
                    part.feasible += 1;
                    part.offer(&e, k);
                }
            }
        }
    }
    part
}

/// Searches every layout of `job` and returns the `k` fastest that fit. `progress(done, total)`
/// is called as cost keys finish (from worker threads).
pub fn search(
    job: &Job<'_>,
    k: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<SearchReport, TrainError> {
    job.validate()?;
    let start = Instant::now();
    let facts = JobFacts::new(job);
    let keys = keys(job);
    let total = keys.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let parts: Vec<Partial> = keys
        .par_iter()
        .map(|key| {
            let p = search_key(job, &facts, key, k);
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(d, total);
            p
        })
        .collect();
    let mut all = Partial::default();
    let mut cost_keys = 0;
    for p in parts {
        all.space += p.space;
        all.pruned += p.pruned;
        all.evaluated += p.evaluated;
        all.feasible += p.feasible;
        if p.evaluated > 0 {
            cost_keys += 1;
        }
        for e in &p.top {
            all.offer(e, k);
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    Ok(SearchReport {
        schema: "bottleneck.search/1",
        model: job.arch.name.clone(),
        hardware: job.hw.name.clone(),
        gpus: job.gpus,
        seq: job.seq,
        global_batch: job.global_batch,
        space: all.space,
        pruned: all.pruned,
        evaluated: all.evaluated,
        feasible: all.feasible,
        cost_keys,
        elapsed_s,
        layouts_per_s: if elapsed_s > 0.0 {
            all.evaluated as f64 / elapsed_s
        } else {
            0.0
        },
        top: all.top.iter().map(TopEntry::of).collect(),
    })
}
