//! Cross-rank analysis: collectives matched by process group and sequence number, their
//! start/end skew, and slow-rank / slow-link detection.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::analysis::coll_info;
use crate::classify::{self, Collective, KernelClass};
use crate::reader::RawTrace;

/// One communication kernel of one rank, on wall-clock time.
#[derive(Debug, Clone)]
pub struct CollRecord {
    /// Process group.
    pub pg: String,
    /// Sequence number in the group (the trace's `Seq`, else the kernel's ordinal in the
    /// group on this rank).
    pub seq: i64,
    /// Collective type.
    pub collective: Collective,
    /// Start, ns (trace time + `baseTimeNanoseconds`).
    pub start_ns: i64,
    /// End, ns.
    pub end_ns: i64,
    /// Message bytes when known.
    pub bytes: Option<u64>,
}

/// Extracts the communication kernels of one rank's primary device.
pub fn records(t: &RawTrace, device: Option<i32>) -> (Vec<CollRecord>, bool) {
    let mut ordinal: HashMap<String, i64> = HashMap::new();
    let mut ops: Vec<_> = t
        .gpu_ops
        .iter()
        .filter(|o| o.class == KernelClass::Communication && device.is_none_or(|d| d == o.device))
        .collect();
    ops.sort_by_key(|o| o.start_ns);
    let mut had_seq = false;
    let recs = ops
        .into_iter()
        .map(|o| {
            let info = coll_info(t, o);
            let pg = info.map_or_else(|| "default".to_owned(), |i| i.pg.clone());
            let n = ordinal.entry(pg.clone()).or_insert(0);
            let seq = match info.and_then(|i| i.seq) {
                Some(s) => {
                    had_seq = true;
                    s
                }
                None => *n,
            };
            *n += 1;
            let collective = info
                .map(|i| classify::collective(&i.name))
                .filter(|c| *c != Collective::Unknown)
                .unwrap_or_else(|| classify::collective(&t.names[o.name as usize]));
            CollRecord {
                pg,
                seq,
                collective,
                start_ns: o.start_ns + t.base_time_ns,
                end_ns: o.end_ns + t.base_time_ns,
                bytes: info.and_then(|i| i.bytes),
            }
        })
        .collect();
    (recs, had_seq)
}

/// Skew of matched collectives.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CollectiveSkew {
    /// Ranks compared.
    pub ranks: usize,
    /// Collectives seen on two or more ranks.
    pub matched: u64,
    /// Collectives seen on one rank only.
    pub unmatched: u64,
    /// How they were matched: `seq` (the trace's sequence numbers) or `ordinal` (position in
    /// the process group on each rank).
    pub matched_by: &'static str,
    /// Mean of (latest start − earliest start) over matched collectives.
    pub mean_start_skew_s: f64,
    /// Largest start skew.
    pub max_start_skew_s: f64,
    /// Mean of (latest end − earliest end).
    pub mean_end_skew_s: f64,
    /// Largest end skew.
    pub max_end_skew_s: f64,
    /// Per process group and collective type.
    pub groups: Vec<GroupSkew>,
}

/// Skew and transfer time of one process group and collective type.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSkew {
    /// Process group.
    pub process_group: String,
    /// Collective.
    pub collective: Collective,
    /// Matched instances.
    pub count: u64,
    /// Mean start skew.
    pub mean_start_skew_s: f64,
    /// Mean time from the last rank's arrival to the first rank's finish: the transfer itself.
    pub mean_transfer_s: f64,
    /// Mean message size when known.
    pub mean_bytes: Option<f64>,
}

/// Running sums for one (process group, collective type).
#[derive(Default)]
struct GroupAcc {
    count: u64,
    start_skew_ns: i64,
    transfer_ns: i64,
    bytes: f64,
    with_bytes: u64,
}

/// A rank or link that holds the others back.
#[derive(Debug, Clone, Serialize)]
pub struct Straggler {
    /// `slow_rank` or `slow_link`.
    pub kind: &'static str,
    /// The rank (slow_rank).
    pub rank: Option<i64>,
    /// The process group (slow_link).
    pub process_group: Option<String>,
    /// Collectives in the evidence.
    pub collectives: u64,
    /// Time the others waited for it (slow_rank) or extra transfer time (slow_link).
    pub delay_s: f64,
    /// One sentence with the numbers.
    pub evidence: String,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Matches collectives across ranks and finds stragglers.
pub fn cross_rank(
    ranks: &[(i64, Vec<CollRecord>)],
    all_had_seq: bool,
) -> (CollectiveSkew, Vec<Straggler>) {
    type Key = (String, i64);
    let mut by_key: BTreeMap<Key, Vec<(i64, &CollRecord)>> = BTreeMap::new();
    for (rank, recs) in ranks {
        for r in recs {
            by_key
                .entry((r.pg.clone(), r.seq))
                .or_default()
                .push((*rank, r));
        }
    }
    let mut skew = CollectiveSkew {
        ranks: ranks.len(),
        matched_by: if all_had_seq { "seq" } else { "ordinal" },
        ..CollectiveSkew::default()
    };
    let mut last_count: BTreeMap<i64, (u64, i64)> = BTreeMap::new();
    let mut groups: BTreeMap<(String, Collective), GroupAcc> = BTreeMap::new();
    let (mut sum_s, mut sum_e) = (0i64, 0i64);
    let (mut max_s, mut max_e) = (0i64, 0i64);
    for ((pg, _), v) in &by_key {
        if v.len() < 2 {
            skew.unmatched += 1;
            continue;
        }
        skew.matched += 1;
        let mut starts: Vec<(i64, i64)> = v.iter().map(|(rk, r)| (r.start_ns, *rk)).collect();
        starts.sort_unstable();
        let (first_s, last_s) = (starts[0].0, starts[starts.len() - 1].0);
        let first_end = v.iter().map(|(_, r)| r.end_ns).min().unwrap_or(0);
        let last_end = v.iter().map(|(_, r)| r.end_ns).max().unwrap_or(0);
        let s = last_s - first_s;
        let e = last_end - first_end;
        sum_s += s;
        sum_e += e;
        max_s = max_s.max(s);
        max_e = max_e.max(e);
        let (late_start, late_rank) = starts[starts.len() - 1];
        let held = late_start - starts[starts.len() - 2].0;
        let entry = last_count.entry(late_rank).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += held;
        let g = groups.entry((pg.clone(), v[0].1.collective)).or_default();
        g.count += 1;
        g.start_skew_ns += s;
        g.transfer_ns += (first_end - last_s).max(0);
        if let Some(b) = v[0].1.bytes {
            g.bytes += b as f64;
            g.with_bytes += 1;
        }
    }
    if skew.matched > 0 {
        let m = skew.matched as f64;
        skew.mean_start_skew_s = sum_s as f64 / m / 1e9;
        skew.mean_end_skew_s = sum_e as f64 / m / 1e9;
        skew.max_start_skew_s = max_s as f64 / 1e9;
        skew.max_end_skew_s = max_e as f64 / 1e9;
    }
    skew.groups = groups
        .iter()
        .map(|((pg, c), g)| GroupSkew {
            process_group: pg.clone(),
            collective: *c,
            count: g.count,
            mean_start_skew_s: g.start_skew_ns as f64 / g.count as f64 / 1e9,
            mean_transfer_s: g.transfer_ns as f64 / g.count as f64 / 1e9,
            mean_bytes: (g.with_bytes > 0).then(|| g.bytes / g.with_bytes as f64),
        })
        .collect();

    let mut stragglers = Vec::new();
    // Slow rank: last to arrive at half or more of at least three matched collectives, when
    // there are at least three ranks or two ranks disagree consistently.
    if skew.matched >= 3 {
        for (&rank, &(n, held)) in &last_count {
            let frac = n as f64 / skew.matched as f64;
            let expected = 1.0 / ranks.len().max(1) as f64;
            if frac >= 0.5_f64.max(1.5 * expected) {
                stragglers.push(Straggler {
                    kind: "slow_rank",
                    rank: Some(rank),
                    process_group: None,
                    collectives: n,
                    delay_s: held as f64 / 1e9,
                    evidence: format!(
                        "rank {rank} arrived last at {n} of {} matched collectives ({:.0}%, {:.0}% expected by chance); the next-latest rank waited {:.3} ms for it in total",
                        skew.matched,
                        100.0 * frac,
                        100.0 * expected,
                        held as f64 / 1e6
                    ),
                });
            }
        }
    }
    // Slow link: a process group whose transfer time per byte is more than twice the median
    // over groups running the same collective type.
    let mut per_type: BTreeMap<Collective, Vec<(&GroupSkew, f64)>> = BTreeMap::new();
    for g in &skew.groups {
        if let Some(b) = g.mean_bytes.filter(|b| *b > 0.0) {
            if g.mean_transfer_s > 0.0 {
                per_type
                    .entry(g.collective)
                    .or_default()
                    .push((g, g.mean_transfer_s / b));
            }
        }
    }
    for (c, v) in per_type {
        if v.len() < 3 {
            continue;
        }
        let mut per_byte: Vec<f64> = v.iter().map(|x| x.1).collect();
        let med = median(&mut per_byte);
        for (g, pb) in v {
            if pb > 2.0 * med {
                stragglers.push(Straggler {
                    kind: "slow_link",
                    rank: None,
                    process_group: Some(g.process_group.clone()),
                    collectives: g.count,
                    delay_s: (pb - med) * g.mean_bytes.unwrap_or(0.0) * g.count as f64,
                    evidence: format!(
                        "process group {} moves {c:?} data at {:.2} GB/s against a median of {:.2} GB/s over {} groups",
                        g.process_group,
                        1e-9 / pb,
                        1e-9 / med,
                        per_byte.len()
                    ),
                });
            }
        }
    }
    (skew, stragglers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: i64, start_us: i64, dur_us: i64) -> CollRecord {
        CollRecord {
            pg: "0".into(),
            seq,
            collective: Collective::AllReduce,
            start_ns: start_us * 1000,
            end_ns: (start_us + dur_us) * 1000,
            bytes: Some(1 << 20),
        }
    }

    #[test]
    fn late_rank_is_found_with_evidence() {
        let ranks: Vec<(i64, Vec<CollRecord>)> = (0..4)
            .map(|r| {
                let late = if r == 2 { 500 } else { 10 * r };
                (r, (0..5).map(|s| rec(s, s * 10_000 + late, 100)).collect())
            })
            .collect();
        let (skew, st) = cross_rank(&ranks, true);
        assert_eq!(skew.matched, 5);
        assert!((skew.max_start_skew_s - 500e-6).abs() < 1e-12);
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].rank, Some(2));
        assert!(st[0].evidence.contains("5 of 5"));
    }

    #[test]
    fn balanced_ranks_have_no_straggler() {
        let ranks: Vec<(i64, Vec<CollRecord>)> = (0..4)
            .map(|r| {
                (
                    r,
                    (0..8)
                        .map(|s| rec(s, s * 10_000 + ((s + r) % 4) * 5, 100))
                        .collect(),
                )
            })
            .collect();
        let (_, st) = cross_rank(&ranks, false);
        assert!(st.is_empty(), "{st:?}");
    }
}
