//! `--compat hta` against Holistic Trace Analysis 0.5.0 on every sample trace HTA can load.
//!
//! The reference, `tests/data/hta_reference.json`, was made by `scripts/hta_reference.py` with
//! HTA installed in a throwaway virtualenv (the command is in the file); no test runs HTA.

use std::collections::BTreeMap;
use std::path::Path;

use bottleneck_trace::{analyse_paths, Compat, Options};
use serde::Deserialize;

const TRACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/traces");
const REFERENCE: &str = include_str!("data/hta_reference.json");

#[derive(Deserialize)]
struct Reference {
    hta_version: String,
    traces: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    hta_error: Option<String>,
    kernel_time_us: Option<f64>,
    idle_us: Option<f64>,
    compute_us: Option<f64>,
    non_compute_us: Option<f64>,
    comm_comp_overlap_pctg: Option<f64>,
    kernel_type_us: Option<BTreeMap<String, f64>>,
}

/// Within 1% of HTA's figure; HTA's own rounding (whole µs, percentages to 0.01) is the floor.
fn within(ours: f64, hta: f64, floor: f64) -> bool {
    (ours - hta).abs() <= (0.01 * hta.abs()).max(floor)
}

#[test]
fn compat_hta_matches_hta_within_one_percent() {
    let r: Reference = serde_json::from_str(REFERENCE).unwrap();
    assert_eq!(r.hta_version, "0.5.0");
    let mut compared = 0;
    let mut failures = Vec::new();
    for (name, e) in &r.traces {
        if e.hta_error.is_some() {
            continue;
        }
        let rep = analyse_paths(
            &[Path::new(TRACES).join(name)],
            &Options {
                compat: Compat::Hta,
                top: 10,
            },
        )
        .unwrap();
        let k = &rep.ranks[0];
        let us = |s: f64| s * 1e6;
        let mut rows = vec![
            ("kernel_time", us(k.span_s), e.kernel_time_us.unwrap(), 1.0),
            ("idle", us(k.idle_s), e.idle_us.unwrap(), 1.0),
            (
                "compute",
                us(k.breakdown.computation_s),
                e.compute_us.unwrap(),
                1.0,
            ),
            (
                "non_compute",
                us(k.gpu_busy_s - k.breakdown.computation_s),
                e.non_compute_us.unwrap(),
                1.0,
            ),
        ];
        if let Some(p) = e.comm_comp_overlap_pctg {
            rows.push((
                "overlap_pctg",
                100.0 * k.comm_overlap_fraction.unwrap_or(0.0),
                p,
                0.01,
            ));
        }
        let ours_kt = k.hta_kernel_types.clone().unwrap_or_default();
        for (label, &v) in e.kernel_type_us.as_ref().unwrap() {
            let w = ours_kt.get(label).copied().unwrap_or(0.0);
            rows.push(("kernel_type", us(w), v, 1.0));
        }
        for (what, ours, hta, floor) in rows {
            compared += 1;
            if !within(ours, hta, floor) {
                failures.push(format!("{name} {what}: ours {ours:.3} HTA {hta:.3}"));
            }
        }
    }
    assert!(compared >= 100, "only {compared} figures compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn traces_hta_fails_on_are_analysed_natively() {
    let r: Reference = serde_json::from_str(REFERENCE).unwrap();
    let failed: Vec<&String> = r
        .traces
        .iter()
        .filter(|(_, e)| e.hta_error.is_some())
        .map(|(n, _)| n)
        .collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    for name in failed {
        let rep = analyse_paths(&[Path::new(TRACES).join(name)], &Options::default()).unwrap();
        assert_eq!(rep.ranks.len(), 1, "{name}");
    }
}
