//! Iteration time of a serving step, priced by [`Replica::step_time`] at the nodes of a grid and
//! interpolated in between, so that a million-request simulation prices each distinct grid node
//! once.
//!
//! A step's time is split three ways by what its operators depend on, each part cached on its
//! own:
//!
//! - the body GEMMs (projections, MLP, experts, router) depend only on the new tokens `m` of
//!   the step, and their time jumps at wave boundaries (`core::pricing::wave_utilization`), so
//!   they are priced exactly at every integer `m` (one pricing per distinct `m`);
//! - the LM head depends only on the logit rows `s`, priced exactly per integer `s`;
//! - everything else (attention, norms, pointwise, collectives, the engine's per-step
//!   overhead) is smooth in four aggregates: prefill tokens `P`, decoding sequences `D`, KV
//!   tokens the attention reads `K = Σ (cached + new)` and causal (query, key) pairs
//!   `Q = Σ (q·c + q(q+1)/2)`. The representative [`TokenShape`] at a node carries exactly these
//!   sums (one logit row for the prefill part, `D` for the decodes). Decode-only steps
//!   (`P = 0`, `Q = K`) use a 2-D grid over `(D, K)`; steps with prefill use a 4-D grid over
//!   `(P, D, K, Q)` with multilinear interpolation. Each axis is exact at the integers 0..=64
//!   and geometric above, with a ratio of 1 + 1/32; within a cell every operator's time is a
//!   smooth roofline of two affine functions, so the error stays small (measured in the tests:
//!   ≤ 1%).
//!
//! Sliding-window layers read `min(c, w)` per sequence; at a node they are approximated with
//! `min(K, S·w)` keys and `min(Q, N·w)` pairs (exact when every sequence is on the same side
//! of the window).
//!
//! With `pp` pipeline stages a step's batch is split into `pp` micro-batches that keep every
//! stage busy, so a step takes the whole-model time of a `1/pp` micro-batch, as in
//! `Replica::decode_step`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use bottleneck_core::ir::OpClass;
use bottleneck_core::lower::TokenShape;
use bottleneck_core::pricing::Bound;
use bottleneck_infer::Replica;

const EXACT: f64 = 64.0;
const RATIO: f64 = 1.0 + 1.0 / 32.0;

/// A multiplicative hasher for packed integer keys (the grid is hot; SipHash is not needed).
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FastMap<V> = HashMap<u64, V, BuildHasherDefault<FastHasher>>;

const TABLE: usize = 2048;

fn node_formula(i: u32) -> f64 {
    let e = EXACT as u32;
    if i <= e {
        f64::from(i)
    } else {
        EXACT * RATIO.powf(f64::from(i - e))
    }
}

/// The value of grid node `i` on every axis.
pub fn node(i: u32) -> f64 {
    static NODES: OnceLock<Vec<f64>> = OnceLock::new();
    let t = NODES.get_or_init(|| (0..TABLE as u32).map(node_formula).collect());
    t.get(i as usize)
        .copied()
        .unwrap_or_else(|| node_formula(i))
}

/// The cell holding `x ≥ 0`: lower node index and the fraction of the way to the next node.
pub fn locate(x: f64) -> (u32, f64) {
    let x = x.max(0.0);
    if x < EXACT {
        let i = x.floor();
        return (i as u32, x - i);
    }
    let j = ((x / EXACT).ln() / RATIO.ln()).floor().max(0.0);
    let mut i = EXACT as u32 + j as u32;
    // Guard against rounding at node boundaries.
    if node(i) > x {
        i -= 1;
    } else if node(i + 1) <= x {
        i += 1;
    }
    let lo = node(i);
    let hi = node(i + 1);
    (i, ((x - lo) / (hi - lo)).clamp(0.0, 1.0))
}

/// The aggregate work of one serving step (before pipeline splitting).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepWork {
    /// Prefill (and recompute) tokens processed.
    pub prefill_tokens: f64,
    /// Prefill chunks (sequences with prefill tokens this step).
    pub prefill_seqs: f64,
    /// Sequences decoding one token.
    pub decode_seqs: f64,
    /// KV tokens the attention reads, summed over all sequences (cached plus new).
    pub kv_tokens: f64,
    /// Causal attention (query, key) pairs, summed over all sequences.
    pub pairs: f64,
}

impl StepWork {
    /// Adds one prefill chunk of `q ≥ 1` tokens after `ctx` cached ones (a one-token chunk is
    /// still prefill work).
    pub fn add_prefill(&mut self, q: u64, ctx: u64) {
        let qf = q as f64;
        let cf = ctx as f64;
        self.prefill_tokens += qf;
        self.prefill_seqs += 1.0;
        self.kv_tokens += cf + qf;
        self.pairs += qf * cf + qf * (qf + 1.0) / 2.0;
    }

    /// Adds one decoding sequence with `ctx` cached tokens.
    pub fn add_decode(&mut self, ctx: u64) {
        let c = ctx as f64 + 1.0;
        self.decode_seqs += 1.0;
        self.kv_tokens += c;
        self.pairs += c;
    }

    /// The exact token shape of this work, for sequences without a sliding window (used for
    /// direct pricing in tests and for the bound of a representative step).
    pub fn shape(&self, window: Option<u64>) -> TokenShape {
        let seqs = self.decode_seqs + if self.prefill_tokens > 0.0 { 1.0 } else { 0.0 };
        let new_tokens = self.prefill_tokens + self.decode_seqs;
        let (pl, kl) = match window {
            Some(w) => {
                let w = w as f64;
                (self.pairs.min(new_tokens * w), self.kv_tokens.min(seqs * w))
            }
            None => (self.pairs, self.kv_tokens),
        };
        TokenShape {
            seqs,
            new_tokens,
            pairs_global: self.pairs,
            pairs_local: pl,
            kv_tokens_global: self.kv_tokens,
            kv_tokens_local: kl,
            logit_tokens: seqs,
            kv_cache_write: true,
            decode_seqs: self.decode_seqs,
        }
    }

    /// This work split `pp` ways (one micro-batch of a pipelined step).
    fn per_micro_batch(&self, pp: f64) -> StepWork {
        let seqs = self.decode_seqs + self.prefill_seqs;
        if pp <= 1.0 || seqs < pp {
            return *self;
        }
        StepWork {
            prefill_tokens: self.prefill_tokens / pp,
            prefill_seqs: self.prefill_seqs / pp,
            decode_seqs: self.decode_seqs / pp,
            kv_tokens: self.kv_tokens / pp,
            pairs: self.pairs / pp,
        }
    }
}

/// The exactly priced parts of a step.
#[derive(Clone, Copy)]
enum Part {
    Body = 0,
    Head = 1,
}

/// Prices serving steps through a grid cache. Deterministic: a node's value depends only on
/// the node.
pub struct StepTimer<'a> {
    replica: Replica<'a>,
    window: Option<u64>,
    pp: f64,
    decode: FastMap<f64>,
    mixed: FastMap<f64>,
    /// Body-GEMM seconds by integer new-token count.
    body: Vec<Option<f64>>,
    /// LM-head seconds by integer logit-row count.
    head: Vec<Option<f64>>,
    /// Direct pricings done (grid nodes filled).
    pub pricings: u64,
}

fn pack2(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

fn pack4(a: u32, b: u32, c: u32, d: u32) -> u64 {
    (u64::from(a) << 48) | (u64::from(b) << 32) | (u64::from(c) << 16) | u64::from(d)
}

impl<'a> StepTimer<'a> {
    pub fn new(replica: Replica<'a>) -> StepTimer<'a> {
        StepTimer {
            window: replica.arch.sliding_window,
            pp: f64::from(replica.par.pp.max(1)),
            replica,
            decode: FastMap::default(),
            mixed: FastMap::default(),
            body: Vec::new(),
            head: Vec::new(),
            pricings: 0,
        }
    }

    /// The replica priced.
    pub fn replica(&self) -> &Replica<'a> {
        &self.replica
    }

    /// Direct pricing of a step (no grid, no pipeline split): the reference the grid is
    /// measured against.
    pub fn direct(&self, w: &StepWork) -> f64 {
        self.replica.step_time(&w.shape(self.window))
    }

    /// The binding resource and its share of a step, priced directly.
    pub fn bound(&self, w: &StepWork) -> (Bound, f64) {
        let shape = w.per_micro_batch(self.pp).shape(self.window);
        let cost = self.replica.step(&shape);
        let mut shares = cost.priced.bound_shares(&cost.ops);
        shares.sort_by(|a, b| b.1.total_cmp(&a.1));
        shares.first().copied().unwrap_or((Bound::Overhead, 1.0))
    }

    /// Time of one step in seconds (interpolated).
    pub fn time(&mut self, w: &StepWork) -> f64 {
        if w.decode_seqs + w.prefill_tokens <= 0.0 {
            return 0.0;
        }
        let w = w.per_micro_batch(self.pp);
        let m = w.prefill_tokens + w.decode_seqs;
        let rows = w.decode_seqs + if w.prefill_tokens > 0.0 { 1.0 } else { 0.0 };
        let exact = self.exact(Part::Body, m) + self.exact(Part::Head, rows);
        let rest = if w.prefill_tokens <= 0.0 {
            self.decode_time(w.decode_seqs, w.kv_tokens)
        } else {
            self.mixed_time(&w)
        };
        exact + rest
    }

    /// Prices `w` directly and splits its time into (body GEMMs, LM head, the rest).
    fn parts(&self, w: &StepWork) -> [f64; 3] {
        let cost = self.replica.step(&w.shape(self.window));
        let mut p = [0.0, 0.0, cost.overhead_s];
        for (op, c) in cost.ops.iter().zip(&cost.priced.per_op) {
            let slot = match (op.class, op.name) {
                (OpClass::Gemm, "lm_head") => 1,
                (OpClass::Gemm, _) => 0,
                _ => 2,
            };
            p[slot] += c.time_s * op.count;
        }
        p
    }

    /// The exactly priced part `which` at `x` new tokens (body) or logit rows (head); linear
    /// between the neighbouring integers when `x` is fractional (pipeline micro-batches).
    fn exact(&mut self, which: Part, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        let lo = x.floor();
        let f = x - lo;
        let a = self.exact_at(which, lo as u64);
        if f <= 0.0 {
            return a;
        }
        a + (self.exact_at(which, lo as u64 + 1) - a) * f
    }

    fn exact_at(&mut self, which: Part, n: u64) -> f64 {
        if n == 0 {
            return 0.0;
        }
        let i = n as usize;
        let table = match which {
            Part::Body => &self.body,
            Part::Head => &self.head,
        };
        if let Some(Some(t)) = table.get(i) {
            return *t;
        }
        // A decode-only shape with `n` sequences has `n` new tokens and `n` logit rows; the
        // part asked for depends on nothing else.
        let nf = n as f64;
        let w = StepWork {
            decode_seqs: nf,
            kv_tokens: nf,
            pairs: nf,
            ..StepWork::default()
        };
        let p = self.parts(&w);
        self.pricings += 1;
        let table = match which {
            Part::Body => &mut self.body,
            Part::Head => &mut self.head,
        };
        if table.len() <= i {
            table.resize(i + 1, None);
        }
        let t = p[which as usize];
        table[i] = Some(t);
        t
    }

    fn decode_node(&mut self, i: u32, j: u32) -> f64 {
        let key = pack2(i, j);
        if let Some(&t) = self.decode.get(&key) {
            return t;
        }
        let d = node(i);
        // At least one context token per sequence; a node below that is clamped.
        let k = node(j).max(d);
        let w = StepWork {
            decode_seqs: d,
            kv_tokens: k,
            pairs: k,
            ..StepWork::default()
        };
        let t = self.parts(&w)[2];
        self.pricings += 1;
        self.decode.insert(key, t);
        t
    }

    fn decode_time(&mut self, d: f64, k: f64) -> f64 {
        let (i, fi) = locate(d);
        let (j, fj) = locate(k);
        let t00 = self.decode_node(i, j);
        let t01 = if fj > 0.0 {
            self.decode_node(i, j + 1)
        } else {
            t00
        };
        let lo = t00 + (t01 - t00) * fj;
        if fi <= 0.0 {
            return lo;
        }
        let t10 = self.decode_node(i + 1, j);
        let t11 = if fj > 0.0 {
            self.decode_node(i + 1, j + 1)
        } else {
            t10
        };
        let hi = t10 + (t11 - t10) * fj;
        lo + (hi - lo) * fi
    }

    fn mixed_node(&mut self, n: [u32; 4]) -> f64 {
        let key = pack4(n[0], n[1], n[2], n[3]);
        if let Some(&t) = self.mixed.get(&key) {
            return t;
        }
        let p = node(n[0]).max(1.0);
        let d = node(n[1]);
        // Every token reads at least itself; pairs at least one per token.
        let k = node(n[2]).max(p + d);
        let q = node(n[3]).max(p + d);
        let w = StepWork {
            prefill_tokens: p,
            prefill_seqs: 1.0,
            decode_seqs: d,
            kv_tokens: k,
            pairs: q,
        };
        let t = self.parts(&w)[2];
        self.pricings += 1;
        self.mixed.insert(key, t);
        t
    }

    fn mixed_time(&mut self, w: &StepWork) -> f64 {
        let cells = [
            locate(w.prefill_tokens),
            locate(w.decode_seqs),
            locate(w.kv_tokens),
            locate(w.pairs),
        ];
        let mut total = 0.0;
        for corner in 0u32..16 {
            let mut weight = 1.0;
            let mut idx = [0u32; 4];
            for (a, &(i, f)) in cells.iter().enumerate() {
                if corner >> a & 1 == 1 {
                    weight *= f;
                    idx[a] = i + 1;
                } else {
                    weight *= 1.0 - f;
                    idx[a] = i;
                }
            }
            if weight > 0.0 {
                total += weight * self.mixed_node(idx);
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_cells_agree() {
        for i in 0..400 {
            let x = node(i);
            let (j, f) = locate(x);
            assert!(
                j == i && f.abs() < 1e-9 || j + 1 == i && (f - 1.0).abs() < 1e-9,
                "{i}: {j} {f}"
            );
            let mid = f64::midpoint(node(i), node(i + 1));
            let (j, f) = locate(mid);
            assert_eq!(j, i);
            assert!((f - 0.5).abs() < 1e-9);
        }
    }
}
