//! Per-rank analysis of one [`RawTrace`]: temporal breakdown, overlap, idle causes,
//! kernel classes, iterations, top kernels, memory timeline. Definitions: docs/trace.md.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::classify::{self, Bucket, Collective, KernelClass};
use crate::intervals::{self, Span};
use crate::reader::{GpuOp, OpKind, RawTrace};
use crate::warn::Warnings;
use crate::{Compat, Options};

const NS: f64 = 1e9;

fn secs(ns: i64) -> f64 {
    ns as f64 / NS
}

/// Busy time split four ways; the parts add up to `gpu_busy_s`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Breakdown {
    /// Time at least one computation kernel runs.
    pub computation_s: f64,
    /// Time communication runs and no computation does (exposed communication).
    pub communication_s: f64,
    /// Time only memcpy/memset runs.
    pub memory_s: f64,
    /// Time only other GPU work (synchronisation kernels) runs.
    pub other_s: f64,
}

/// Idle time split by cause; the parts add up to `idle_s`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct IdleCauses {
    /// The host had not yet issued the next GPU operation (and was not in a data-loader wait or
    /// a blocking call).
    pub launch_bound_s: f64,
    /// The host was waiting for the data loader.
    pub data_loader_s: f64,
    /// The host was blocked in a synchronising runtime call.
    pub host_sync_s: f64,
    /// The next operation had been issued before the GPU went idle: it waited on another
    /// stream, an event or another device.
    pub stream_wait_s: f64,
    /// The rest: launch latency after the launch call, or operations without a launch record.
    pub other_s: f64,
}

/// Time and count of one kernel class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassTime {
    /// Class.
    pub class: KernelClass,
    /// Sum of the durations of its operations.
    pub time_s: f64,
    /// Operations.
    pub count: u64,
    /// `time_s` over the sum for all classes.
    pub share: f64,
}

/// Time of one collective type.
#[derive(Debug, Clone, Serialize)]
pub struct CollectiveTime {
    /// Collective.
    pub collective: Collective,
    /// Kernels.
    pub count: u64,
    /// Sum of kernel durations.
    pub time_s: f64,
    /// Sum of message sizes where the trace records them.
    pub bytes: u64,
}

/// One `ProfilerStep#N`.
#[derive(Debug, Clone, Serialize)]
pub struct Iteration {
    /// N.
    pub step: i64,
    /// Host-side step duration.
    pub duration_s: f64,
    /// GPU operations launched in the step.
    pub kernels: u64,
    /// Union of those operations.
    pub gpu_busy_s: f64,
    /// Their breakdown.
    pub breakdown: Breakdown,
}

/// One kernel name.
#[derive(Debug, Clone, Serialize)]
pub struct TopKernel {
    /// Full name (cut at 300 characters).
    pub name: String,
    /// Class.
    pub class: KernelClass,
    /// Calls.
    pub count: u64,
    /// Sum of durations.
    pub total_s: f64,
    /// Mean duration.
    pub mean_s: f64,
    /// `total_s` over the sum of all operation durations.
    pub share: f64,
}

/// Allocator timeline of one device from `[memory]` events.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryTimeline {
    /// Device (−1: host).
    pub device: i32,
    /// Samples.
    pub samples: u64,
    /// Highest `Total Allocated`.
    pub peak_allocated_bytes: i64,
    /// Highest `Total Reserved`.
    pub peak_reserved_bytes: i64,
    /// Up to 64 points `[seconds since the rank's first GPU operation, highest allocated bytes
    /// in the bucket]`.
    pub timeline: Vec<(f64, i64)>,
}

/// Breakdown of one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceSummary {
    /// Device index.
    pub device: i32,
    /// First operation start to last operation end.
    pub span_s: f64,
    /// Union of operations.
    pub gpu_busy_s: f64,
    /// `span_s − gpu_busy_s`.
    pub idle_s: f64,
    /// Split of busy time.
    pub breakdown: Breakdown,
}

/// Launch linkage.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Launches {
    /// Operations whose correlation id matched a runtime call.
    pub linked: u64,
    /// Operations without a matching runtime call (dangling flows, trace cut).
    pub unlinked: u64,
    /// Runtime calls that launched more than one operation (CUDA/HIP graphs).
    pub multi_op_launches: u64,
}

/// The analysis of one rank (one trace file).
#[derive(Debug, Clone, Serialize)]
pub struct RankReport {
    /// `distributedInfo.rank`, else the file's position in the input.
    pub rank: i64,
    /// The file.
    pub file: String,
    /// `distributedInfo.world_size`.
    pub world_size: Option<i64>,
    /// GPU name from the trace's device properties.
    pub gpu: Option<String>,
    /// The device the rank-level numbers describe (the busiest); `null` in `--compat hta`,
    /// which pools all devices as HTA does.
    pub device: Option<i32>,
    /// Trace events read.
    pub events: u64,
    /// Decompressed JSON bytes read.
    pub json_bytes: u64,
    /// First GPU operation start to last end.
    pub span_s: f64,
    /// Union of GPU operations.
    pub gpu_busy_s: f64,
    /// `span_s − gpu_busy_s`.
    pub idle_s: f64,
    /// Split of `gpu_busy_s`.
    pub breakdown: Breakdown,
    /// Fraction of communication time during which computation also runs (`null` without
    /// communication).
    pub comm_overlap_fraction: Option<f64>,
    /// Communication time not covered by computation (equals `breakdown.communication_s`).
    pub exposed_communication_s: f64,
    /// Split of `idle_s`.
    pub idle_causes: IdleCauses,
    /// `--compat hta` only: HTA's kernel-type breakdown (`get_gpu_kernel_breakdown` with memory
    /// kernels): seconds per label, e.g. `"COMPUTATION overlapping COMMUNICATION"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hta_kernel_types: Option<BTreeMap<String, f64>>,
    /// The same figures in integer ns, as computed (not serialised): the invariants hold
    /// exactly here.
    #[serde(skip)]
    pub exact: Exact,
    /// Kernel classes.
    pub classes: Vec<ClassTime>,
    /// Communication by collective type.
    pub collectives: Vec<CollectiveTime>,
    /// Profiler steps.
    pub iterations: Vec<Iteration>,
    /// Kernels by total time.
    pub top_kernels: Vec<TopKernel>,
    /// Allocator timelines.
    pub memory: Vec<MemoryTimeline>,
    /// All devices, when the trace has more than one.
    pub devices: Vec<DeviceSummary>,
    /// Launch linkage.
    pub launches: Launches,
    /// Warnings for this file.
    pub warnings: Warnings,
}

/// Rank-level figures in integer ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exact {
    /// `span_s`.
    pub span_ns: i64,
    /// `gpu_busy_s`.
    pub busy_ns: i64,
    /// `breakdown`: computation, communication, memory, other.
    pub breakdown_ns: [i64; 4],
    /// `idle_causes`: launch-bound, data loader, host sync, stream wait, other.
    pub idle_causes_ns: [i64; 5],
    /// Communication time covered by computation.
    pub overlap_ns: i64,
    /// Communication time (union).
    pub comm_total_ns: i64,
}

/// Per-bucket unions and their derived figures.
struct Split {
    start: i64,
    end: i64,
    busy: i64,
    comp: i64,
    comm_excl: i64,
    mem_excl: i64,
    other: i64,
    comm_total: i64,
    overlap: i64,
    busy_union: Vec<Span>,
}

fn split(ops: &[(i64, i64, Bucket)]) -> Split {
    let mut by: [Vec<Span>; 4] = Default::default();
    for &(a, b, k) in ops {
        let i = match k {
            Bucket::Computation => 0,
            Bucket::Communication => 1,
            Bucket::Memory => 2,
            Bucket::Other => 3,
        };
        by[i].push((a, b));
    }
    let [comp, comm, mem, oth] = by.map(intervals::merge);
    let cc = intervals::union(&comp, &comm);
    let ccm = intervals::union(&cc, &mem);
    let all = intervals::union(&ccm, &oth);
    let (l_comp, l_comm, l_cc, l_ccm, l_all) = (
        intervals::len(&comp),
        intervals::len(&comm),
        intervals::len(&cc),
        intervals::len(&ccm),
        intervals::len(&all),
    );
    // The span runs from the first to the last instant of work: zero-length operations
    // (which the union drops) do not stretch it, so idle is exactly the gaps of the union.
    let (start, end) = match (all.first(), all.last()) {
        (Some(f), Some(l)) => (f.0, l.1),
        _ => (0, 0),
    };
    Split {
        start,
        end,
        busy: l_all,
        comp: l_comp,
        comm_excl: l_cc - l_comp,
        mem_excl: l_ccm - l_cc,
        other: l_all - l_ccm,
        comm_total: l_comm,
        overlap: l_comp + l_comm - l_cc,
        busy_union: all,
    }
}

fn breakdown_of(s: &Split) -> Breakdown {
    Breakdown {
        computation_s: secs(s.comp),
        communication_s: secs(s.comm_excl),
        memory_s: secs(s.mem_excl),
        other_s: secs(s.other),
    }
}

/// The runtime call that launched `correlation` (runtime calls sorted by correlation).
fn launch_of(t: &RawTrace, correlation: i64) -> Option<&crate::reader::RuntimeCall> {
    if correlation < 0 {
        return None;
    }
    let i = t.runtime.partition_point(|r| r.correlation < correlation);
    t.runtime.get(i).filter(|r| r.correlation == correlation)
}

fn is_work(op: &GpuOp) -> bool {
    matches!(op.kind, OpKind::Kernel | OpKind::Memcpy | OpKind::Memset)
}

/// Analyses one rank. `index` is the file's position, used when the trace has no rank.
pub fn analyse(t: &RawTrace, index: usize, opts: &Options) -> RankReport {
    let mut warnings = t.warnings.clone();
    let rank = t.rank.unwrap_or_else(|| {
        warnings.add("rank_missing", || {
            format!(
                "{}: no distributedInfo.rank; using the file's position {index}",
                t.path
            )
        });
        i64::try_from(index).unwrap_or(i64::MAX)
    });

    // Launch linkage over all GPU operations.
    let mut per_corr: HashMap<i64, u32> = HashMap::new();
    let mut linked = 0u64;
    let mut unlinked = 0u64;
    for op in t.gpu_ops.iter().filter(|o| is_work(o)) {
        if launch_of(t, op.correlation).is_some() {
            linked += 1;
            *per_corr.entry(op.correlation).or_insert(0) += 1;
        } else {
            unlinked += 1;
        }
    }
    if unlinked > 0 && !t.runtime.is_empty() {
        warnings.add("unlinked_gpu_ops", || {
            format!(
                "{unlinked} GPU operations have no launching runtime call (dangling correlation)"
            )
        });
    }
    let launches = Launches {
        linked,
        unlinked,
        multi_op_launches: per_corr.values().filter(|&&n| n > 1).count() as u64,
    };

    // Devices by busy time.
    let mut dev_ops: BTreeMap<i32, Vec<(i64, i64, Bucket)>> = BTreeMap::new();
    for op in t.gpu_ops.iter().filter(|o| is_work(o)) {
        dev_ops
            .entry(op.device)
            .or_default()
            .push((op.start_ns, op.end_ns, op.class.bucket()));
    }
    let mut devices: Vec<(DeviceSummary, Split)> = dev_ops
        .iter()
        .map(|(&d, ops)| {
            let s = split(ops);
            let span = s.end - s.start;
            (
                DeviceSummary {
                    device: d,
                    span_s: secs(span),
                    gpu_busy_s: secs(s.busy),
                    idle_s: secs(span - s.busy),
                    breakdown: breakdown_of(&s),
                },
                s,
            )
        })
        .collect();
    let primary = devices
        .iter()
        .enumerate()
        .max_by(|a, b| {
            a.1 .1
                .busy
                .cmp(&b.1 .1.busy)
                .then(b.1 .0.device.cmp(&a.1 .0.device))
        })
        .map(|(i, _)| i);
    if t.gpu_ops.iter().all(|o| !is_work(o)) {
        warnings.add("no_gpu_activity", || {
            format!(
                "{}: no GPU kernels, copies or sets; GPU figures are zero",
                t.path
            )
        });
    }
    let primary_dev = primary.map(|i| devices[i].0.device);

    let fig = match opts.compat {
        Compat::Native => primary.map_or_else(Figures::default, |i| {
            let s = &devices[i].1;
            Figures {
                span_ns: s.end - s.start,
                busy_ns: s.busy,
                breakdown_ns: [s.comp, s.comm_excl, s.mem_excl, s.other],
                overlap_ns: s.overlap,
                exposed_ns: s.comm_excl,
                comm_total_ns: s.comm_total,
                origin_ns: s.start,
                causes_ns: idle_causes(t, devices[i].0.device, &s.busy_union),
                hta_spans: Vec::new(),
                hta_kernel_types: None,
            }
        }),
        Compat::Hta => hta_figures(t, &mut warnings),
    };

    let ops_in_scope: Vec<&GpuOp> = t
        .gpu_ops
        .iter()
        .filter(|o| is_work(o) && (opts.compat == Compat::Hta || Some(o.device) == primary_dev))
        .collect();
    // What the class and top-kernel tables sum: in HTA mode, HTA's events in its window with
    // its classes and rounded durations.
    let items: Vec<(u32, KernelClass, i64)> = match opts.compat {
        Compat::Native => ops_in_scope
            .iter()
            .map(|o| (o.name, o.class, o.end_ns - o.start_ns))
            .collect(),
        Compat::Hta => fig
            .hta_spans
            .iter()
            .map(|h| (h.name, h.class, h.end_ns - h.start_ns))
            .collect(),
    };

    // Classes.
    let mut class_map: BTreeMap<KernelClass, (i64, u64)> = BTreeMap::new();
    for &(_, class, ns) in &items {
        let e = class_map.entry(class).or_insert((0, 0));
        e.0 += ns;
        e.1 += 1;
    }
    let total_op_ns: i64 = class_map.values().map(|v| v.0).sum();
    let share = |x: i64| {
        if total_op_ns > 0 {
            x as f64 / total_op_ns as f64
        } else {
            0.0
        }
    };
    let mut classes: Vec<ClassTime> = class_map
        .iter()
        .map(|(&class, &(ns, count))| ClassTime {
            class,
            time_s: secs(ns),
            count,
            share: share(ns),
        })
        .collect();
    classes.sort_by(|a, b| b.time_s.total_cmp(&a.time_s).then(a.class.cmp(&b.class)));

    // Collectives.
    let mut coll_map: BTreeMap<Collective, (u64, i64, u64)> = BTreeMap::new();
    for o in ops_in_scope
        .iter()
        .filter(|o| o.class == KernelClass::Communication)
    {
        let info = coll_info(t, o);
        let c = info.map_or_else(
            || classify::collective(&t.names[o.name as usize]),
            |i| classify::collective(&i.name),
        );
        let c = if c == Collective::Unknown {
            classify::collective(&t.names[o.name as usize])
        } else {
            c
        };
        let e = coll_map.entry(c).or_insert((0, 0, 0));
        e.0 += 1;
        e.1 += o.end_ns - o.start_ns;
        e.2 += info.and_then(|i| i.bytes).unwrap_or(0);
    }
    let collectives = coll_map
        .into_iter()
        .map(|(collective, (count, ns, bytes))| CollectiveTime {
            collective,
            count,
            time_s: secs(ns),
            bytes,
        })
        .collect();

    // Top kernels.
    let mut by_name: HashMap<u32, (i64, u64, KernelClass)> = HashMap::new();
    for &(name, class, ns) in &items {
        let e = by_name.entry(name).or_insert((0, 0, class));
        e.0 += ns;
        e.1 += 1;
    }
    let mut top: Vec<(u32, (i64, u64, KernelClass))> = by_name.into_iter().collect();
    top.sort_by(|a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then_with(|| t.names[a.0 as usize].cmp(&t.names[b.0 as usize]))
    });
    let top_kernels = top
        .into_iter()
        .take(opts.top)
        .map(|(id, (ns, count, class))| {
            let name = &t.names[id as usize];
            let name = if name.chars().count() > 300 {
                name.chars().take(300).collect()
            } else {
                name.clone()
            };
            TopKernel {
                name,
                class,
                count,
                total_s: secs(ns),
                mean_s: secs(ns) / count as f64,
                share: share(ns),
            }
        })
        .collect();

    let iterations = iterations(t, &ops_in_scope);
    let memory = memory_timelines(t, fig.origin_ns);
    let gpu = t.device_names.first().cloned();
    let comm_overlap_fraction =
        (fig.comm_total_ns > 0).then(|| fig.overlap_ns as f64 / fig.comm_total_ns as f64);
    let all_devices = if devices.len() > 1 {
        devices.drain(..).map(|d| d.0).collect()
    } else {
        Vec::new()
    };
    RankReport {
        rank,
        file: t.path.clone(),
        world_size: t.world_size,
        gpu,
        device: if opts.compat == Compat::Hta {
            None
        } else {
            primary_dev
        },
        events: t.events,
        json_bytes: t.json_bytes,
        span_s: secs(fig.span_ns),
        gpu_busy_s: secs(fig.busy_ns),
        idle_s: secs(fig.span_ns - fig.busy_ns),
        breakdown: Breakdown {
            computation_s: secs(fig.breakdown_ns[0]),
            communication_s: secs(fig.breakdown_ns[1]),
            memory_s: secs(fig.breakdown_ns[2]),
            other_s: secs(fig.breakdown_ns[3]),
        },
        comm_overlap_fraction,
        exposed_communication_s: secs(fig.exposed_ns),
        idle_causes: IdleCauses {
            launch_bound_s: secs(fig.causes_ns[0]),
            data_loader_s: secs(fig.causes_ns[1]),
            host_sync_s: secs(fig.causes_ns[2]),
            stream_wait_s: secs(fig.causes_ns[3]),
            other_s: secs(fig.causes_ns[4]),
        },
        hta_kernel_types: fig
            .hta_kernel_types
            .as_ref()
            .map(|m| m.iter().map(|(k, &v)| (k.clone(), secs(v))).collect()),
        exact: Exact {
            span_ns: fig.span_ns,
            busy_ns: fig.busy_ns,
            breakdown_ns: fig.breakdown_ns,
            idle_causes_ns: fig.causes_ns,
            overlap_ns: fig.overlap_ns,
            comm_total_ns: fig.comm_total_ns,
        },
        classes,
        collectives,
        iterations,
        top_kernels,
        memory,
        devices: all_devices,
        launches,
        warnings,
    }
}

/// Collective metadata of a communication kernel: its own arguments, else those of the
/// `record_param_comms` op with the same External id.
pub(crate) fn coll_info<'a>(t: &'a RawTrace, o: &GpuOp) -> Option<&'a crate::reader::CollInfo> {
    if o.coll != u32::MAX {
        return t.collectives.get(o.coll as usize);
    }
    t.comms_by_external
        .get(&o.external_id)
        .and_then(|&i| t.collectives.get(i as usize))
}

/// Idle time of one device split by cause (definitions in docs/trace.md).
fn idle_causes(t: &RawTrace, device: i32, busy: &[Span]) -> [i64; 5] {
    let dl = intervals::merge(t.dataloader.clone());
    let mut host = t.dataloader.clone();
    host.extend_from_slice(&t.host_sync);
    let host = intervals::merge(host);
    // First operation (by start) of each busy interval: the one that ended the gap before it.
    let mut starters: Vec<(i64, i64)> = t
        .gpu_ops
        .iter()
        .filter(|o| is_work(o) && o.device == device)
        .map(|o| (o.start_ns, o.correlation))
        .collect();
    starters.sort_unstable();
    let (mut lb, mut dl_ns, mut hs, mut sw, mut other) = (0i64, 0i64, 0i64, 0i64, 0i64);
    for w in busy.windows(2) {
        let (a, b) = (w[0].1, w[1].0);
        let i = starters.partition_point(|s| s.0 < b);
        // Among ops starting exactly at b, take the earliest launch.
        let launch = starters[i..]
            .iter()
            .take_while(|s| s.0 == b)
            .filter_map(|s| launch_of(t, s.1))
            .map(|r| r.start_ns)
            .min();
        let d = intervals::covered(&dl, a, b);
        let h = intervals::covered(&host, a, b) - d;
        dl_ns += d;
        hs += h;
        match launch {
            Some(l) => {
                let l = l.clamp(a, b);
                lb += (l - a) - intervals::covered(&host, a, l);
                let rest = (b - l) - intervals::covered(&host, l, b);
                if l == a {
                    sw += rest;
                } else {
                    other += rest;
                }
            }
            None => other += (b - a) - intervals::covered(&host, a, b),
        }
    }
    [lb, dl_ns, hs, sw, other]
}

/// The rank-level figures of one convention, in ns.
#[derive(Default)]
struct Figures {
    span_ns: i64,
    busy_ns: i64,
    /// Computation, communication, memory, other.
    breakdown_ns: [i64; 4],
    overlap_ns: i64,
    exposed_ns: i64,
    comm_total_ns: i64,
    /// Time origin of the memory timeline (first GPU operation).
    origin_ns: i64,
    /// Launch-bound, data loader, host sync, stream wait, other.
    causes_ns: [i64; 5],
    /// HTA mode: the events in HTA's window, rounded as HTA rounds them.
    hta_spans: Vec<HtaSpan>,
    /// HTA mode: HTA's kernel-type breakdown (`get_gpu_kernel_breakdown`), ns per label.
    hta_kernel_types: Option<BTreeMap<String, i64>>,
}

/// One event of HTA's GPU view after its rounding, in ns.
struct HtaSpan {
    start_ns: i64,
    end_ns: i64,
    class: KernelClass,
    name: u32,
}

/// HTA's temporal breakdown, overlap and kernel-type breakdown (`--compat hta`).
fn hta_figures(t: &RawTrace, warnings: &mut Warnings) -> Figures {
    let w = &t.hta_window;
    // HTA rounds every time inward to whole µs when the `ts` column is float
    // (`trace_parser.round_down_time_stamps`): ⌈ts⌉ and ⌊ts + dur⌋.
    let round = |x: f64, up: bool| {
        if w.float_ts {
            if up {
                x.ceil()
            } else {
                x.floor()
            }
        } else {
            x
        }
    };
    // Exact for whole µs beyond 2^53 ns (multiplying first would round to 256 ns there).
    let ns = |us: f64| {
        let whole = us.trunc();
        whole as i64 * 1000 + ((us - whole) * 1000.0).round() as i64
    };
    // The window: with two or more ProfilerStep names, only GPU events whose correlation a host
    // event started before the last step's start, and host events with a stream that start
    // before it.
    let last = w
        .last_step_start_us
        .filter(|_| w.step_names.len() >= 2)
        .map(|l| round(l, true));
    if last.is_none() {
        warnings.add("hta_window", || {
            "fewer than two ProfilerSteps: HTA analyses the whole trace".into()
        });
    }
    let spans: Vec<HtaSpan> = t
        .hta_ops
        .iter()
        .filter(|o| match last {
            None => true,
            Some(ls) if o.correlation >= 0 => w
                .host_corr_start_us
                .get(&o.correlation)
                .is_some_and(|&h| round(h, true) < ls),
            Some(ls) => round(o.ts_us, true) < ls,
        })
        .map(|o| HtaSpan {
            start_ns: ns(round(o.ts_us, true)),
            end_ns: ns(round(o.ts_us + o.dur_us, false)),
            class: o.class,
            name: o.name,
        })
        .collect();
    let of = |f: &dyn Fn(Bucket) -> bool| -> Vec<Span> {
        intervals::hta_groups(
            spans
                .iter()
                .filter(|h| f(h.class.bucket()))
                .map(|h| (h.start_ns, h.end_ns))
                .collect(),
        )
    };
    let all = of(&|_| true);
    let (Some(first), Some(last_g)) = (all.first(), all.last()) else {
        return Figures::default();
    };
    let kernel_time = last_g.1 - first.0;
    let run = intervals::len(&all);
    let g_comp = of(&|b| b == Bucket::Computation);
    let g_comm = of(&|b| b == Bucket::Communication);
    let g_mem = of(&|b| b == Bucket::Memory);
    let comp = intervals::len(&g_comp);
    let idle = kernel_time - run;
    let ov = intervals::hta_sweep(&[(1, &g_comm), (2, &g_comp)]);
    let overlap = ov.get(&3).copied().unwrap_or(0);
    let l_comm = intervals::len(&g_comm);
    // HTA's kernel types, labelled as HTA labels them.
    let kt = intervals::hta_sweep(&[(1, &g_comp), (2, &g_comm), (4, &g_mem)]);
    let names = ["COMPUTATION", "COMMUNICATION", "MEMORY"];
    let mut kernel_types = BTreeMap::new();
    for (&running, &v) in &kt {
        let label: Vec<&str> = (0..3)
            .filter(|i| running & (1 << i) != 0)
            .map(|i| names[i])
            .collect();
        *kernel_types.entry(label.join(" overlapping ")).or_insert(0) += v;
    }
    // HTA's non-compute time split with the native priority rule, on proper spans.
    let proper = |b: Bucket| -> Vec<Span> {
        intervals::merge(
            spans
                .iter()
                .filter(|h| h.class.bucket() == b)
                .map(|h| (h.start_ns, h.end_ns.max(h.start_ns)))
                .collect(),
        )
    };
    let u_comp = proper(Bucket::Computation);
    let u_cc = intervals::union(&u_comp, &proper(Bucket::Communication));
    let u_ccm = intervals::union(&u_cc, &proper(Bucket::Memory));
    let comm_excl = intervals::len(&u_cc) - intervals::len(&u_comp);
    let mem_excl = intervals::len(&u_ccm) - intervals::len(&u_cc);
    let other = (run - comp) - comm_excl - mem_excl;
    Figures {
        span_ns: kernel_time,
        busy_ns: run,
        breakdown_ns: [comp, comm_excl, mem_excl, other],
        overlap_ns: overlap,
        exposed_ns: comm_excl,
        comm_total_ns: l_comm,
        origin_ns: first.0,
        causes_ns: [0, 0, 0, 0, idle],
        hta_spans: spans,
        hta_kernel_types: Some(kernel_types),
    }
}

fn iterations(t: &RawTrace, ops: &[&GpuOp]) -> Vec<Iteration> {
    if t.steps.is_empty() {
        return Vec::new();
    }
    let mut steps = t.steps.clone();
    steps.sort_by_key(|s| s.start_ns);
    let mut per: Vec<Vec<(i64, i64, Bucket)>> = vec![Vec::new(); steps.len()];
    for o in ops {
        let Some(r) = launch_of(t, o.correlation) else {
            continue;
        };
        let i = steps.partition_point(|s| s.start_ns <= r.start_ns);
        if i == 0 {
            continue;
        }
        let s = &steps[i - 1];
        if r.start_ns < s.end_ns {
            per[i - 1].push((o.start_ns, o.end_ns, o.class.bucket()));
        }
    }
    steps
        .iter()
        .zip(per)
        .map(|(s, ops)| {
            let sp = split(&ops);
            Iteration {
                step: s.step,
                duration_s: secs(s.end_ns - s.start_ns),
                kernels: ops.len() as u64,
                gpu_busy_s: secs(sp.busy),
                breakdown: breakdown_of(&sp),
            }
        })
        .collect()
}

fn memory_timelines(t: &RawTrace, origin: i64) -> Vec<MemoryTimeline> {
    const POINTS: i64 = 64;
    let mut by_dev: BTreeMap<i32, Vec<(i64, i64, i64)>> = BTreeMap::new();
    for m in &t.memory {
        by_dev
            .entry(m.device)
            .or_default()
            .push((m.ts_ns, m.allocated, m.reserved));
    }
    by_dev
        .into_iter()
        .map(|(device, mut v)| {
            v.sort_unstable();
            let (t0, t1) = (v[0].0, v[v.len() - 1].0);
            let width = ((t1 - t0) / POINTS).max(1);
            let mut timeline: Vec<(f64, i64)> = Vec::new();
            let mut bucket_end = t0 + width;
            let mut cur: Option<(i64, i64)> = None;
            for &(ts, alloc, _) in &v {
                while ts >= bucket_end && timeline.len() + 1 < POINTS as usize {
                    if let Some((bt, ba)) = cur.take() {
                        timeline.push((secs(bt - origin), ba));
                    }
                    bucket_end += width;
                }
                cur = Some(match cur {
                    Some((bt, ba)) => (bt, ba.max(alloc)),
                    None => (ts, alloc),
                });
            }
            if let Some((bt, ba)) = cur {
                timeline.push((secs(bt - origin), ba));
            }
            MemoryTimeline {
                device,
                samples: v.len() as u64,
                peak_allocated_bytes: v.iter().map(|x| x.1).max().unwrap_or(0),
                peak_reserved_bytes: v.iter().map(|x| x.2).max().unwrap_or(0),
                timeline,
            }
        })
        .collect()
}
