//! The built-in hardware catalog, embedded from `catalog/hardware/*.toml` at build time.

use std::sync::OnceLock;

use crate::error::CoreError;
use crate::hardware::Hardware;

include!(concat!(env!("OUT_DIR"), "/hardware_files.rs"));

/// Every built-in GPU, parsed once, ordered by name.
pub fn hardware() -> &'static [Hardware] {
    static CATALOG: OnceLock<Vec<Hardware>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut v: Vec<Hardware> = HARDWARE_FILES
            .iter()
            .map(|(stem, _toml, json)| {
                // The catalog is checked by tests (the TOML text parses to the same value); a
                // broken built-in file is a build defect.
                let hw: Hardware = serde_json::from_str(json)
                    .unwrap_or_else(|e| panic!("built-in hardware {stem}.toml is invalid: {e}"));
                hw.validate()
                    .unwrap_or_else(|e| panic!("built-in hardware {stem}.toml is invalid: {e}"));
                assert_eq!(&hw.name, stem, "hardware file name must match its `name`");
                hw
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    })
}

/// A built-in GPU by name or by one of its `aliases` (case-insensitive; `_` and spaces read
/// as `-`).
pub fn find_hardware(name: &str) -> Result<&'static Hardware, CoreError> {
    let key = normalize(name);
    let all = hardware();
    if let Some(hw) = all.iter().find(|h| normalize(&h.name) == key) {
        return Ok(hw);
    }
    if let Some(hw) = all
        .iter()
        .find(|h| h.aliases.iter().any(|a| normalize(a) == key))
    {
        return Ok(hw);
    }
    let suggestions = nearest(&key, all.iter().map(|h| h.name.as_str()), 3);
    Err(CoreError::InvalidHardware {
        name: name.to_string(),
        problem: format!(
            "not in the catalog; did you mean {}? (`bottleneck hardware` lists all, or pass a TOML file)",
            suggestions.join(", ")
        ),
    })
}

/// The next GPU of the same vendor in the catalog: the one released soonest after `hw` with
/// more memory bandwidth (ties broken by name), in a node of two or more GPUs. The "next GPU"
/// what-if of every analysis.
pub fn next_gpu(hw: &Hardware) -> Option<&'static Hardware> {
    hardware()
        .iter()
        .filter(|h| {
            h.vendor == hw.vendor
                && h.name != hw.name
                && h.year >= hw.year
                && h.memory.bandwidth_gb_s > hw.memory.bandwidth_gb_s
                && h.interconnect.gpus_per_node >= 2
        })
        .min_by(|a, b| {
            (a.year, a.memory.bandwidth_gb_s as u64, &a.name).cmp(&(
                b.year,
                b.memory.bandwidth_gb_s as u64,
                &b.name,
            ))
        })
}

fn normalize(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace(['_', ' '], "-")
}

/// The `k` candidates closest to `query` by edit distance.
pub fn nearest<'a>(
    query: &str,
    candidates: impl Iterator<Item = &'a str>,
    k: usize,
) -> Vec<&'a str> {
    let mut scored: Vec<(usize, &str)> = candidates
        .map(|c| {
            let d = levenshtein(query, &c.to_ascii_lowercase());
            // Prefer candidates sharing a prefix.
            let bonus = usize::from(
                !c.to_ascii_lowercase()
                    .starts_with(&query[..query.len().min(3)]),
            );
            (d + bonus, c)
        })
        .collect();
    scored.sort();
    scored.into_iter().take(k).map(|(_, c)| c).collect()
}

/// Edit distance between two strings (bytes).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.bytes().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
