//! Counted warnings: tolerable problems in the input, reported instead of failing.

use std::collections::BTreeMap;

use serde::Serialize;

/// How many examples of each kind are kept.
const EXAMPLES: usize = 3;

/// Warnings by kind, with a few example messages.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Warnings {
    /// Total count.
    pub total: u64,
    /// Count per kind (`negative_duration`, `unknown_category`, `truncated`, ...).
    pub by_kind: BTreeMap<String, u64>,
    /// The first messages, per kind.
    pub examples: Vec<String>,
}

impl Warnings {
    /// Counts one warning; `msg` is evaluated only for the first few of a kind.
    pub fn add(&mut self, kind: &str, msg: impl FnOnce() -> String) {
        self.total += 1;
        let n = self.by_kind.entry(kind.to_owned()).or_insert(0);
        *n += 1;
        if *n as usize <= EXAMPLES {
            self.examples.push(format!("{kind}: {}", msg()));
        }
    }

    /// Adds another set of warnings.
    pub fn merge(&mut self, other: &Warnings) {
        self.total += other.total;
        for (k, v) in &other.by_kind {
            *self.by_kind.entry(k.clone()).or_insert(0) += v;
        }
        for e in &other.examples {
            if self.examples.len() < 20 {
                self.examples.push(e.clone());
            }
        }
    }
}
