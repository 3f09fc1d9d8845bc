//! Measured analysis of PyTorch profiler (Kineto) traces.
//!
//! [`analyse_paths`] reads one or many trace files (plain or gzip Chrome-trace JSON, or folders
//! of them) in parallel, each with a streaming reader ([`reader`]) that keeps only the events
//! the analysis needs, analyses each rank ([`analysis`]) and matches collectives across ranks
//! ([`multi`]). The result, [`TraceReport`], serialises to the `bottleneck.trace/1` document.
//! Metric definitions: `docs/trace.md`.

pub mod analysis;
pub mod classify;
pub mod error;
mod fast;
pub mod intervals;
pub mod multi;
pub mod reader;
mod scan;
pub mod warn;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

pub use analysis::RankReport;
pub use error::TraceError;
pub use warn::Warnings;

/// Whose conventions the figures follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compat {
    /// Ours (docs/trace.md): the whole trace, exact ns times, per device, name+category classes.
    #[default]
    Native,
    /// Holistic Trace Analysis 0.5: its step window, µs rounding, all devices pooled, its three
    /// kernel classes.
    Hta,
}

/// Analysis options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Conventions.
    pub compat: Compat,
    /// How many kernels `top_kernels` lists.
    pub top: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            compat: Compat::Native,
            top: 10,
        }
    }
}

/// The main limiter of the traced run.
#[derive(Debug, Clone, Serialize)]
pub struct Bottleneck {
    /// SPEC vocabulary: `compute`, `memory_bandwidth`, `interconnect`, `host_overhead`, `idle`.
    pub resource: &'static str,
    /// Its share of the summed GPU span of all ranks.
    pub share: f64,
    /// One sentence.
    pub explanation: String,
}

/// The `bottleneck.trace/1` document.
#[derive(Debug, Clone, Serialize)]
pub struct TraceReport {
    /// `"bottleneck.trace/1"`.
    pub schema: &'static str,
    /// Conventions used.
    pub compat: Compat,
    /// Files analysed.
    pub files: usize,
    /// Per rank, sorted by rank.
    pub ranks: Vec<RankReport>,
    /// Cross-rank collective matching (`null` with fewer than two ranks).
    pub collectives: Option<multi::CollectiveSkew>,
    /// Slow ranks and links, with evidence.
    pub stragglers: Vec<multi::Straggler>,
    /// What limits the run.
    pub bottleneck: Bottleneck,
    /// All warnings, summed over files and the cross-rank step.
    pub warnings: Warnings,
}

/// Expands folders into the trace files they hold (`*.json`, `*.json.gz`), sorted by name.
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, TraceError> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|source| TraceError::Io {
                path: p.clone(),
                source,
            })?;
            let mut v: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.is_file() && is_trace_name(f))
                .collect();
            v.sort();
            if v.is_empty() {
                return Err(TraceError::NoFiles(p.display().to_string()));
            }
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        return Err(TraceError::NoFiles("the arguments".into()));
    }
    Ok(out)
}

/// Whether a file name ends in `.json` or `.json.gz` (any letter case).
fn is_trace_name(f: &Path) -> bool {
    let ext_is = |p: &Path, e: &str| p.extension().is_some_and(|x| x.eq_ignore_ascii_case(e));
    ext_is(f, "json") || (ext_is(f, "gz") && ext_is(&f.with_extension(""), "json"))
}

/// Reads and analyses one file: its report and its collective records.
fn one(
    path: &Path,
    index: usize,
    opts: &Options,
) -> Result<(RankReport, Vec<multi::CollRecord>, bool), TraceError> {
    let raw = reader::read_file(path, opts.compat == Compat::Hta)?;
    let report = analysis::analyse(&raw, index, opts);
    let (recs, had_seq) = multi::records(&raw, report.device);
    Ok((report, recs, had_seq))
}

/// Analyses trace files (or folders of them), in parallel across files.
pub fn analyse_paths(inputs: &[PathBuf], opts: &Options) -> Result<TraceReport, TraceError> {
    let files = expand_inputs(inputs)?;
    let results: Vec<Result<_, TraceError>> = files
        .par_iter()
        .enumerate()
        .map(|(i, p)| one(p, i, opts))
        .collect();
    let mut per = Vec::with_capacity(results.len());
    for r in results {
        per.push(r?);
    }
    Ok(assemble(files.len(), per, opts))
}

/// Analyses one in-memory trace (e.g. for fuzzing or tests).
pub fn analyse_reader<R: std::io::Read>(
    r: R,
    label: &Path,
    opts: &Options,
) -> Result<TraceReport, TraceError> {
    let raw = reader::read(r, label, false, opts.compat == Compat::Hta)?;
    let report = analysis::analyse(&raw, 0, opts);
    let (recs, had_seq) = multi::records(&raw, report.device);
    Ok(assemble(1, vec![(report, recs, had_seq)], opts))
}

fn assemble(
    files: usize,
    mut per: Vec<(RankReport, Vec<multi::CollRecord>, bool)>,
    opts: &Options,
) -> TraceReport {
    per.sort_by_key(|p| p.0.rank);
    let mut warnings = Warnings::default();
    for p in &per {
        warnings.merge(&p.0.warnings);
    }
    // Cross-rank matching only makes sense for distinct ranks of one job.
    let mut seen: BTreeMap<i64, &str> = BTreeMap::new();
    let mut duplicate = false;
    for p in &per {
        if let Some(prev) = seen.insert(p.0.rank, &p.0.file) {
            duplicate = true;
            let (r, f) = (p.0.rank, p.0.file.clone());
            warnings.add("duplicate_rank", || {
                format!(
                    "rank {r} appears in both {prev} and {f}; collectives not matched across ranks"
                )
            });
        }
    }
    let worlds: std::collections::BTreeSet<i64> =
        per.iter().filter_map(|p| p.0.world_size).collect();
    let mixed = worlds.len() > 1;
    if mixed {
        warnings.add("mixed_jobs", || format!("files come from jobs of different world sizes {worlds:?}; collectives not matched across ranks"));
    }
    let (collectives, stragglers) = if per.len() >= 2 && !duplicate && !mixed {
        let all_seq = per.iter().all(|p| p.2);
        let ranks: Vec<(i64, Vec<multi::CollRecord>)> = per
            .iter_mut()
            .map(|p| (p.0.rank, std::mem::take(&mut p.1)))
            .collect();
        let (s, st) = multi::cross_rank(&ranks, all_seq);
        (Some(s), st)
    } else {
        (None, Vec::new())
    };
    let ranks: Vec<RankReport> = per.into_iter().map(|p| p.0).collect();
    let bottleneck = bottleneck(&ranks, &stragglers);
    TraceReport {
        schema: "bottleneck.trace/1",
        compat: opts.compat,
        files,
        ranks,
        collectives,
        stragglers,
        bottleneck,
        warnings,
    }
}

/// Picks the largest of: compute-bound kernel time, memory-bound kernel and copy time, exposed
/// communication, host-caused idle, other idle — summed over ranks, as shares of the summed
/// span. Computation time is split between compute and memory bandwidth in proportion to the
/// kernel time of compute-bound classes (GEMM, convolution, attention, other) and memory-bound
/// classes (element-wise, normalisation, reduction).
fn bottleneck(ranks: &[RankReport], stragglers: &[multi::Straggler]) -> Bottleneck {
    let mut span = 0.0;
    let (mut compute, mut membw, mut comm, mut host, mut idle) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for r in ranks {
        span += r.span_s;
        let (mut cb, mut mb) = (0.0, 0.0);
        for c in &r.classes {
            if c.class.bucket() == classify::Bucket::Computation {
                if c.class.memory_bound() {
                    mb += c.time_s;
                } else {
                    cb += c.time_s;
                }
            }
        }
        let f = if cb + mb > 0.0 { mb / (cb + mb) } else { 0.0 };
        compute += r.breakdown.computation_s * (1.0 - f);
        membw += r.breakdown.computation_s * f + r.breakdown.memory_s;
        comm += r.breakdown.communication_s;
        let ic = &r.idle_causes;
        host += ic.launch_bound_s + ic.data_loader_s + ic.host_sync_s;
        idle += r.idle_s - (ic.launch_bound_s + ic.data_loader_s + ic.host_sync_s);
    }
    if span <= 0.0 {
        return Bottleneck {
            resource: "idle",
            share: 0.0,
            explanation: "no GPU activity in the traces: nothing ran on the GPU to be limited"
                .into(),
        };
    }
    let cands = [
        ("compute", compute, "GPU time is dominated by compute-bound kernels (GEMM, attention, convolution)"),
        ("memory_bandwidth", membw, "GPU time is dominated by memory-bound kernels (element-wise, normalisation, reduction) and copies"),
        ("interconnect", comm, "exposed communication (not overlapped with computation) takes the largest share"),
        ("host_overhead", host, "the GPU waits for the host: launches, data loading or blocking synchronisation"),
        ("idle", idle, "the GPU is idle waiting on other streams, events or ranks, or for reasons the trace does not show"),
    ];
    let (resource, v, why) =
        cands
            .iter()
            .copied()
            .fold(cands[0], |best, c| if c.1 > best.1 { c } else { best });
    let mut explanation = format!("{why}: {:.1}% of the GPU span", 100.0 * v / span);
    if let Some(s) = stragglers.first() {
        let _ = write!(explanation, "; straggler: {}", s.evidence);
    }
    Bottleneck {
        resource,
        share: v / span,
        explanation,
    }
}
