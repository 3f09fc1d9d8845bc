//! Interval arithmetic on half-open `[start, end)` spans in integer nanoseconds.

/// A span `[start, end)`.
pub type Span = (i64, i64);

/// Sorts and merges spans into a disjoint, ascending union. Empty spans vanish.
pub fn merge(mut v: Vec<Span>) -> Vec<Span> {
    v.retain(|s| s.1 > s.0);
    v.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Total length of a merged union.
pub fn len(m: &[Span]) -> i64 {
    m.iter().map(|s| s.1 - s.0).sum()
}

/// Length of `[a, b)` covered by the merged union `m`.
pub fn covered(m: &[Span], a: i64, b: i64) -> i64 {
    if b <= a {
        return 0;
    }
    let first = m.partition_point(|s| s.1 <= a);
    let mut total = 0;
    for s in &m[first..] {
        if s.0 >= b {
            break;
        }
        total += s.1.min(b) - s.0.max(a);
    }
    total
}

/// Union of two merged unions.
pub fn union(x: &[Span], y: &[Span]) -> Vec<Span> {
    let mut v = Vec::with_capacity(x.len() + y.len());
    v.extend_from_slice(x);
    v.extend_from_slice(y);
    merge(v)
}

/// HTA's merged groups (`merge_kernel_intervals`, HTA 0.5 `hta/utils/utils.py`): spans sorted
/// by start; a new group begins where a start exceeds the running maximum of earlier ends; each
/// group is `[min start, max end]`. Inverted spans (HTA's µs rounding can end a short kernel
/// before it starts) are kept as HTA keeps them.
pub fn hta_groups(mut v: Vec<Span>) -> Vec<Span> {
    v.sort_by_key(|s| s.0);
    let mut out: Vec<Span> = Vec::new();
    let mut cummax = i64::MIN;
    for (i, &(a, b)) in v.iter().enumerate() {
        match out.last_mut() {
            Some(g) if i > 0 && a <= cummax => {
                g.0 = g.0.min(a);
                g.1 = g.1.max(b);
            }
            _ => out.push((a, b)),
        }
        cummax = cummax.max(b);
    }
    out
}

/// HTA's status sweep (`get_comm_comp_overlap`, `_get_gpu_kernel_type_time`): each group adds
/// its type's bit at its start and removes it at its end; time between consecutive points is
/// credited to the running sum when it is positive. Returns ns per running sum.
pub fn hta_sweep(groups: &[(i64, &[Span])]) -> std::collections::BTreeMap<i64, i64> {
    let mut pts: Vec<(i64, i64)> = Vec::new();
    for &(bit, g) in groups {
        for &(a, b) in g {
            pts.push((a, bit));
            pts.push((b, -bit));
        }
    }
    pts.sort_by_key(|p| p.0);
    let mut acc = std::collections::BTreeMap::new();
    let mut running = 0;
    for w in pts.windows(2) {
        running += w[0].1;
        if running > 0 {
            *acc.entry(running).or_insert(0) += w[1].0 - w[0].0;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merge_and_cover() {
        let m = merge(vec![(5, 7), (0, 2), (1, 3), (7, 9), (4, 4)]);
        assert_eq!(m, vec![(0, 3), (5, 9)]);
        assert_eq!(len(&m), 7);
        assert_eq!(covered(&m, 2, 6), 2);
        assert_eq!(covered(&m, 10, 20), 0);
    }

    #[test]
    fn hta_groups_match_pandas_semantics() {
        // Groups [0,3] and [5,9]; an inverted span inside a group only widens it by its end.
        assert_eq!(
            hta_groups(vec![(0, 2), (1, 3), (5, 7), (6, 5), (7, 9)]),
            vec![(0, 3), (5, 9)]
        );
        // An isolated inverted span contributes a negative length, as in HTA.
        assert_eq!(len(&hta_groups(vec![(0, 2), (10, 9)])), 1);
    }

    #[test]
    fn hta_sweep_credits_overlap() {
        // comm [0,10), comp [5,20): 5 comm only, 5 both, 10 comp only.
        let m = hta_sweep(&[(1, &[(0, 10)]), (2, &[(5, 20)])]);
        assert_eq!(m.get(&1), Some(&5));
        assert_eq!(m.get(&3), Some(&5));
        assert_eq!(m.get(&2), Some(&10));
    }

    proptest! {
        #[test]
        fn union_length_is_bounded_and_covered_consistent(v in proptest::collection::vec((0i64..1000, 0i64..100), 0..40)) {
            let spans: Vec<Span> = v.iter().map(|&(a, d)| (a, a + d)).collect();
            let m = merge(spans.clone());
            let total: i64 = spans.iter().map(|s| s.1 - s.0).sum();
            prop_assert!(len(&m) <= total);
            prop_assert_eq!(covered(&m, -1, 2000), len(&m));
            for w in m.windows(2) {
                prop_assert!(w[0].1 < w[1].0);
            }
            // For proper spans, HTA's merge equals the exact union.
            prop_assert_eq!(len(&hta_groups(spans)), len(&m));
        }
    }
}
