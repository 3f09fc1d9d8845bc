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

/// HTA's `merge_kernel_intervals` followed by its sums (HTA 0.5, `hta/utils/utils.py`):
/// spans sorted by start; a new group begins where a start exceeds the running maximum of the
/// previous ends; each group becomes `[min start, max end]`. Returns (Σ group lengths, first
/// group start, last group end). Spans may be inverted (HTA's µs rounding can make a short
/// kernel end before it starts); they are kept as HTA keeps them.
pub fn hta_merge(mut v: Vec<Span>) -> Option<(i64, i64, i64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by_key(|s| s.0);
    let mut total = 0;
    let mut cummax = i64::MIN;
    let (mut g0, mut g1) = (v[0].0, v[0].1);
    let first = v[0].0;
    for (i, &(a, b)) in v.iter().enumerate() {
        if i > 0 && a > cummax {
            total += g1 - g0;
            g0 = a;
            g1 = b;
        } else {
            g0 = g0.min(a);
            g1 = g1.max(b);
        }
        cummax = cummax.max(b);
    }
    total += g1 - g0;
    Some((total, first, g1))
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
    fn hta_merge_matches_pandas_semantics() {
        // Groups [0,3] and [5,9]; an inverted span inside a group only widens it by its end.
        assert_eq!(
            hta_merge(vec![(0, 2), (1, 3), (5, 7), (6, 5), (7, 9)]),
            Some((7, 0, 9))
        );
        // An isolated inverted span contributes a negative length, as in HTA.
        assert_eq!(hta_merge(vec![(0, 2), (10, 9)]), Some((1, 0, 9)));
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
            if let Some((t, _, _)) = hta_merge(spans) {
                prop_assert_eq!(t, len(&m));
            }
        }
    }
}
