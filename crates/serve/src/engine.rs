//! The event loop, replicas, router and schedulers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::str::FromStr;
use std::time::Instant;

use bottleneck_core::arch::ModelArch;
use bottleneck_core::hardware::Hardware;
use bottleneck_core::ir::{Collective, CollectiveKind, Scope};
use bottleneck_core::lower::{Parallel, Precisions};
use bottleneck_core::pricing::price_collective;
use bottleneck_infer::{
    activation_bytes_per_gpu, kv_bytes_per_seq_per_gpu, weight_bytes_per_gpu, Replica,
    USABLE_FRACTION,
};

use crate::report::{self, RunStats};
use crate::timing::{StepTimer, StepWork};
use crate::workload::{RequestSpec, NS};
use crate::{SimError, SimReport};

/// How each replica batches requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerKind {
    /// Request-level batching (FasterTransformer / HF `generate`): a batch is formed when the
    /// replica is idle, prompts are padded to the longest, the batch decodes until its longest
    /// output is done and all its requests return together. KV for the full length is reserved
    /// at admission.
    Static,
    /// Iteration-level batching with paged KV blocks (Orca / vLLM): prefills are admitted while
    /// free blocks and the token budget allow and run as their own step; decodes of every
    /// running sequence run together; when blocks run out the newest sequence is preempted.
    Continuous,
    /// Sarathi-Serve style chunked prefill: every step carries all decodes and fills the rest of
    /// the token budget with prompt chunks.
    Chunked,
    /// Splitwise / DistServe: a prefill pool and a decode pool; the KV cache moves between them
    /// over the inter-node link.
    Disaggregated,
}

impl FromStr for SchedulerKind {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "static" => Ok(SchedulerKind::Static),
            "continuous" | "vllm" | "orca" => Ok(SchedulerKind::Continuous),
            "chunked" | "chunked-prefill" | "sarathi" => Ok(SchedulerKind::Chunked),
            "disaggregated" | "disagg" | "splitwise" | "distserve" => {
                Ok(SchedulerKind::Disaggregated)
            }
            _ => Err(SimError::Input(format!(
                "unknown scheduler '{s}': use static, continuous, chunked or disaggregated"
            ))),
        }
    }
}

impl SchedulerKind {
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Static => "static",
            SchedulerKind::Continuous => "continuous",
            SchedulerKind::Chunked => "chunked",
            SchedulerKind::Disaggregated => "disaggregated",
        }
    }
}

/// What happens to a sequence preempted for want of KV blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preemption {
    /// Drop its blocks and prefill prompt plus generated tokens again later (vLLM default).
    Recompute,
    /// Copy its blocks to host memory and back when blocks free up.
    Swap,
}

impl FromStr for Preemption {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "recompute" => Ok(Preemption::Recompute),
            "swap" => Ok(Preemption::Swap),
            _ => Err(SimError::Input(format!(
                "unknown preemption mode '{s}': use recompute or swap"
            ))),
        }
    }
}

/// How arrivals are spread over replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Router {
    RoundRobin,
    /// The replica with the fewest outstanding tokens (prompt + output of unfinished requests).
    LeastWork,
}

impl FromStr for Router {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "round-robin" | "roundrobin" | "rr" => Ok(Router::RoundRobin),
            "least-work" | "least-outstanding" | "least" => Ok(Router::LeastWork),
            _ => Err(SimError::Input(format!(
                "unknown router '{s}': use round-robin or least-work"
            ))),
        }
    }
}

/// Requests whose prompt + output exceed the model's context window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overlong {
    Reject,
    /// Keep the last `max_position - output` prompt tokens.
    Truncate,
}

impl FromStr for Overlong {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reject" => Ok(Overlong::Reject),
            "truncate" => Ok(Overlong::Truncate),
            _ => Err(SimError::Input(format!(
                "unknown overlong policy '{s}': use reject or truncate"
            ))),
        }
    }
}

/// Options of a serving simulation.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    pub replicas: u32,
    pub scheduler: SchedulerKind,
    pub preemption: Preemption,
    pub router: Router,
    /// Most sequences a replica runs at once (vLLM `max_num_seqs`, default 256).
    pub max_seqs: u32,
    /// Token budget of one step (vLLM `max_num_batched_tokens`; Sarathi's chunk budget).
    pub max_batched_tokens: u64,
    /// Tokens per KV block (vLLM default 16).
    pub block_tokens: u64,
    /// Tokens of a system prompt every request starts with (0: none).
    pub prefix_tokens: u64,
    /// Keep the shared prefix's KV resident and skip its prefill.
    pub prefix_caching: bool,
    /// Replicas in the prefill pool under [`SchedulerKind::Disaggregated`].
    pub prefill_replicas: u32,
    pub overlong: Overlong,
    /// Simulated-time limit in seconds; the run stops there and says so.
    pub max_sim_time_s: f64,
    pub slo_ttft_s: f64,
    pub slo_tpot_s: f64,
    /// Overrides the KV blocks per replica computed from memory (for experiments and tests).
    pub kv_blocks: Option<u64>,
    /// Keep one record per request in the report (for `--requests-csv`).
    pub record_requests: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            replicas: 1,
            scheduler: SchedulerKind::Continuous,
            preemption: Preemption::Recompute,
            router: Router::LeastWork,
            max_seqs: 256,
            max_batched_tokens: 8192,
            block_tokens: 16,
            prefix_tokens: 0,
            prefix_caching: false,
            prefill_replicas: 1,
            overlong: Overlong::Reject,
            max_sim_time_s: 86_400.0,
            slo_ttft_s: 1.0,
            slo_tpot_s: 0.05,
            kv_blocks: None,
            record_requests: false,
        }
    }
}

/// The KV capacity of one replica.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capacity {
    pub weights_bytes_per_gpu: f64,
    pub activation_bytes_per_gpu: f64,
    pub kv_bytes_per_gpu: f64,
    pub usable_bytes_per_gpu: f64,
    pub blocks: u64,
    pub block_tokens: u64,
}

impl Capacity {
    /// KV blocks left after weights and the activation buffer of one full step, or an error
    /// saying by how much the model misses.
    pub fn of(
        arch: &ModelArch,
        hw: &Hardware,
        par: &Parallel,
        prec: &Precisions,
        cfg: &ServeConfig,
    ) -> Result<Capacity, SimError> {
        let weights = weight_bytes_per_gpu(arch, par, prec);
        let act = activation_bytes_per_gpu(
            arch,
            par,
            prec,
            cfg.max_batched_tokens as f64,
            f64::from(cfg.max_seqs),
        );
        let usable = hw.memory_bytes() * USABLE_FRACTION;
        let per_block = kv_bytes_per_seq_per_gpu(arch, par, prec, cfg.block_tokens);
        let kv = usable - weights - act;
        if kv < per_block {
            return Err(SimError::DoesNotFit(format!(
                "{} does not fit on {} with TP {} PP {}: weights {:.1} GB + activations {:.1} GB per GPU exceed the usable {:.1} GB ({}% of {:.1} GB) by {:.1} GB; raise --tp/--pp or lower --weights",
                arch.name,
                hw.name,
                par.tp,
                par.pp,
                weights / 1e9,
                act / 1e9,
                usable / 1e9,
                (USABLE_FRACTION * 100.0).round(),
                hw.memory_bytes() / 1e9,
                (per_block - kv) / 1e9
            )));
        }
        let blocks = cfg
            .kv_blocks
            .unwrap_or_else(|| (kv / per_block).floor() as u64);
        Ok(Capacity {
            weights_bytes_per_gpu: weights,
            activation_bytes_per_gpu: act,
            kv_bytes_per_gpu: kv,
            usable_bytes_per_gpu: usable,
            blocks,
            block_tokens: cfg.block_tokens,
        })
    }
}

/// The model, hardware and layout one simulation serves.
#[derive(Clone, Copy, Debug)]
pub struct Simulation<'a> {
    pub arch: &'a ModelArch,
    pub hw: &'a Hardware,
    pub par: Parallel,
    pub prec: Precisions,
}

const NONE: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Rejected,
    Waiting,
    Running,
    Swapped,
    Transfer,
    Done,
}

/// The per-token state of a request, touched by every step it is in (kept small and apart
/// from [`Cold`] so that a step's pass over its batch stays in cache).
#[derive(Clone, Debug)]
struct Req {
    output: u64,
    /// Tokens whose KV must be computed before the sequence decodes.
    need: u64,
    /// Tokens whose KV is in the cache (shared prefix included).
    ctx: u64,
    /// Leading tokens served from the shared prefix cache (not in the sequence's own blocks).
    shared: u64,
    generated: u64,
    blocks: u64,
}

/// The rest of a request's state, touched a few times in its life.
#[derive(Clone, Debug)]
struct Cold {
    arrival_ns: u64,
    prompt: u64,
    sched_ns: u64,
    first_ns: u64,
    done_ns: u64,
    preemptions: u32,
    replica: u32,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Both,
    Prefill,
    Decode,
}

#[derive(Default)]
struct Step {
    /// (request, new tokens) prompt chunks.
    prefill: Vec<(u32, u64)>,
    decode: Vec<u32>,
    work: StepWork,
    /// Seconds of KV swap traffic serialised with the step.
    extra_s: f64,
}

impl Step {
    fn clear(&mut self) {
        self.prefill.clear();
        self.decode.clear();
        self.work = StepWork::default();
        self.extra_s = 0.0;
    }
}

struct Rep {
    role: Role,
    waiting: VecDeque<u32>,
    swapped: VecDeque<u32>,
    running: Vec<u32>,
    free_blocks: u64,
    total_blocks: u64,
    busy: bool,
    step: Step,
    step_start_ns: u64,
    outstanding: u64,
    /// Static batching: the current batch's padded prompt length and decode steps taken.
    static_prompt: u64,
    static_steps: u64,
    kv_block_ns: f64,
    kv_max: f64,
    busy_ns: u64,
}

struct Engine<'s, 'a> {
    cfg: &'s ServeConfig,
    timer: StepTimer<'a>,
    reqs: Vec<Req>,
    cold: Vec<Cold>,
    reps: Vec<Rep>,
    heap: BinaryHeap<Reverse<(u64, u64, u32, u32)>>,
    seq: u64,
    now: u64,
    rr: [u32; 2],
    /// Replicas that take new requests, and those that take decodes handed off.
    pools: [Vec<usize>; 2],
    queue_len: u64,
    queue_integral_ns: f64,
    queue_last_ns: u64,
    stats: RunStats,
    /// Reused buffer of the requests leaving a replica after a step.
    leaving: Vec<u32>,
    /// Scratch: sequences that took a block in the current decode pass.
    grown: Vec<u32>,
    kv_bytes_per_token: f64,
    watermark: u64,
}

const EV_STEP: u32 = 0;
const EV_TRANSFER: u32 = 1;

/// Runs the simulation of `requests` (sorted by arrival) and reports.
pub fn simulate(
    sim: &Simulation<'_>,
    cfg: &ServeConfig,
    requests: &[RequestSpec],
    seed: u64,
    rate: Option<f64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimReport, SimError> {
    let wall = Instant::now();
    validate(cfg, requests)?;
    let replica = Replica::new(sim.arch, sim.hw, sim.par, sim.prec)?;
    let cap = Capacity::of(sim.arch, sim.hw, &sim.par, &sim.prec, cfg)?;
    let prefix_blocks = if cfg.prefix_caching {
        cfg.prefix_tokens.div_ceil(cfg.block_tokens)
    } else {
        0
    };
    if prefix_blocks >= cap.blocks {
        return Err(SimError::Input(format!(
            "the shared prefix of {} tokens needs {prefix_blocks} KV blocks but a replica holds {}: shorten --prefix-tokens",
            cfg.prefix_tokens, cap.blocks
        )));
    }
    let blocks = cap.blocks - prefix_blocks;
    let mut warnings = Vec::new();
    let mut rejected_overlong = 0u64;
    let mut truncated = 0u64;
    let mut rejected_capacity = 0u64;
    let max_pos = sim.arch.max_position;
    let mut reqs: Vec<Req> = Vec::with_capacity(requests.len());
    let mut cold: Vec<Cold> = Vec::with_capacity(requests.len());
    for r in requests {
        let mut prompt = r.prompt;
        let mut state = State::Pending;
        if prompt + r.output > max_pos {
            match cfg.overlong {
                Overlong::Truncate if r.output < max_pos => {
                    prompt = max_pos - r.output;
                    truncated += 1;
                }
                _ => {
                    state = State::Rejected;
                    rejected_overlong += 1;
                }
            }
        }
        let shared = if cfg.prefix_caching {
            cfg.prefix_tokens.min(prompt.saturating_sub(1))
        } else {
            0
        };
        if state == State::Pending
            && (prompt + r.output - shared).div_ceil(cfg.block_tokens) > blocks
        {
            state = State::Rejected;
            rejected_capacity += 1;
        }
        reqs.push(Req {
            output: r.output,
            need: prompt,
            ctx: shared,
            shared,
            generated: 0,
            blocks: 0,
        });
        cold.push(Cold {
            arrival_ns: r.arrival_ns,
            prompt,
            sched_ns: NONE,
            first_ns: NONE,
            done_ns: NONE,
            preemptions: 0,
            replica: 0,
            state,
        });
    }
    if rejected_overlong > 0 {
        warnings.push(format!(
            "{rejected_overlong} requests rejected: prompt + output exceed {}'s context window of {max_pos} tokens (use --overlong truncate to keep them)",
            sim.arch.name
        ));
    }
    if truncated > 0 {
        warnings.push(format!(
            "{truncated} prompts truncated to fit the context window of {max_pos} tokens"
        ));
    }
    if rejected_capacity > 0 {
        warnings.push(format!(
            "{rejected_capacity} requests rejected: prompt + output need more KV blocks than a replica holds ({blocks} × {} tokens)",
            cfg.block_tokens
        ));
    }
    let roles: Vec<Role> = (0..cfg.replicas)
        .map(|i| match cfg.scheduler {
            SchedulerKind::Disaggregated if i < cfg.prefill_replicas => Role::Prefill,
            SchedulerKind::Disaggregated => Role::Decode,
            _ => Role::Both,
        })
        .collect();
    let reps = roles
        .into_iter()
        .map(|role| Rep {
            role,
            waiting: VecDeque::new(),
            swapped: VecDeque::new(),
            running: Vec::new(),
            free_blocks: blocks,
            total_blocks: blocks,
            busy: false,
            step: Step::default(),
            step_start_ns: 0,
            outstanding: 0,
            static_prompt: 0,
            static_steps: 0,
            kv_block_ns: 0.0,
            kv_max: 0.0,
            busy_ns: 0,
        })
        .collect();
    let mut e = Engine {
        cfg,
        timer: StepTimer::new(replica),
        reqs,
        cold,
        reps,
        heap: BinaryHeap::new(),
        seq: 0,
        now: 0,
        rr: [0, 0],
        pools: [Vec::new(), Vec::new()],
        queue_len: 0,
        queue_integral_ns: 0.0,
        queue_last_ns: 0,
        stats: RunStats::default(),
        leaving: Vec::new(),
        grown: Vec::new(),
        kv_bytes_per_token: kv_bytes_per_seq_per_gpu(sim.arch, &sim.par, &sim.prec, 1_000_000)
            / 1e6,
        watermark: (blocks / 100).max(1).min(blocks.saturating_sub(1)),
    };
    for (i, r) in e.reps.iter().enumerate() {
        if r.role != Role::Decode {
            e.pools[0].push(i);
        }
        if r.role != Role::Prefill {
            e.pools[1].push(i);
        }
    }
    let limit_ns = (cfg.max_sim_time_s * NS).min(1.8e19) as u64;
    let time_limit_hit = e.run(limit_ns, progress);
    if time_limit_hit {
        warnings.push(format!(
            "stopped at the simulated-time limit of {} s with requests unfinished: raise --max-sim-time or lower --rate/--requests",
            cfg.max_sim_time_s
        ));
    }
    let stalled = e
        .cold
        .iter()
        .filter(|r| !matches!(r.state, State::Done | State::Rejected))
        .count();
    if stalled > 0 && !time_limit_hit {
        warnings.push(format!(
            "{stalled} requests never finished: the scheduler could not place them (report this with the command line)"
        ));
    }
    e.advance_queue(e.now);
    e.stats.rejected = rejected_overlong + rejected_capacity;
    e.stats.truncated = truncated;
    e.stats.time_limit_hit = time_limit_hit;
    e.stats.kv_blocks_per_replica = cap.blocks;
    e.stats.end_ns = e.now;
    e.stats.queue_integral_ns = e.queue_integral_ns;
    e.stats.kv_block_ns = e.reps.iter().map(|r| r.kv_block_ns).sum();
    e.stats.kv_max = e.reps.iter().map(|r| r.kv_max).fold(0.0, f64::max);
    e.stats.busy_ns = e.reps.iter().map(|r| r.busy_ns).sum();
    e.stats.pricings = e.timer.pricings;
    let records: Vec<report::Finished> = e
        .cold
        .iter()
        .zip(&e.reqs)
        .map(|(r, h)| report::Finished {
            arrival_ns: r.arrival_ns,
            prompt: r.prompt,
            output: h.output,
            sched_ns: r.sched_ns,
            first_ns: r.first_ns,
            done_ns: r.done_ns,
            preemptions: r.preemptions,
            replica: r.replica,
            rejected: r.state == State::Rejected,
        })
        .collect();
    Ok(report::build(
        sim,
        cfg,
        &cap,
        &e.timer,
        &e.stats,
        &records,
        seed,
        rate,
        warnings,
        wall.elapsed().as_secs_f64(),
    ))
}

fn validate(cfg: &ServeConfig, requests: &[RequestSpec]) -> Result<(), SimError> {
    let bad = |s: String| Err(SimError::Input(s));
    if requests.is_empty() {
        return bad("no requests to simulate: give --requests ≥ 1".into());
    }
    if cfg.replicas == 0 || cfg.replicas > 4096 {
        return bad(format!(
            "--replicas must be in 1..=4096 (got {})",
            cfg.replicas
        ));
    }
    if cfg.max_seqs == 0 {
        return bad("--max-seqs must be at least 1".into());
    }
    if cfg.block_tokens == 0 || cfg.block_tokens > 4096 {
        return bad(format!(
            "--block-tokens must be in 1..=4096 (got {})",
            cfg.block_tokens
        ));
    }
    if cfg.max_batched_tokens == 0 {
        return bad("--max-batched-tokens must be at least 1".into());
    }
    if cfg.scheduler == SchedulerKind::Disaggregated
        && (cfg.prefill_replicas == 0 || cfg.prefill_replicas >= cfg.replicas)
    {
        return bad(format!(
            "disaggregated serving needs 1 ≤ --prefill-replicas < --replicas (got {} of {})",
            cfg.prefill_replicas, cfg.replicas
        ));
    }
    if !(cfg.max_sim_time_s.is_finite() && cfg.max_sim_time_s > 0.0) {
        return bad(format!(
            "--max-sim-time must be a positive number of seconds (got {})",
            cfg.max_sim_time_s
        ));
    }
    if !(cfg.slo_ttft_s > 0.0 && cfg.slo_tpot_s > 0.0) {
        return bad("SLOs must be positive seconds".into());
    }
    Ok(())
}

impl Engine<'_, '_> {
    fn push(&mut self, t: u64, kind: u32, a: u32) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, kind, a)));
    }

    fn advance_queue(&mut self, t: u64) {
        if t > self.queue_last_ns {
            self.queue_integral_ns += self.queue_len as f64 * (t - self.queue_last_ns) as f64;
            self.queue_last_ns = t;
        }
    }

    /// Returns whether the time limit stopped the run.
    fn run(&mut self, limit_ns: u64, progress: &mut dyn FnMut(u64, u64)) -> bool {
        let n = self.reqs.len();
        let mut next = 0usize;
        let mut events = 0u64;
        loop {
            while next < n && self.cold[next].state == State::Rejected {
                next += 1;
            }
            let arr = if next < n {
                self.cold[next].arrival_ns
            } else {
                NONE
            };
            let ev = self.heap.peek().map_or(NONE, |Reverse(e)| e.0);
            if arr == NONE && ev == NONE {
                return false;
            }
            let t = arr.min(ev);
            if t > limit_ns {
                self.now = limit_ns;
                return true;
            }
            self.advance_queue(t);
            self.now = t;
            events += 1;
            if events.trailing_zeros() >= 16 {
                progress(self.stats.completed, n as u64);
            }
            if arr <= ev {
                self.arrive(next as u32);
                next += 1;
            } else if let Some(Reverse((_, _, kind, a))) = self.heap.pop() {
                if kind == EV_STEP {
                    self.finish_step(a as usize);
                } else {
                    self.transfer_done(a);
                }
            }
            self.stats.events = events;
        }
    }

    fn route(&mut self, pool: Role, work: u64) -> usize {
        let slot = usize::from(pool == Role::Decode);
        let cands = &self.pools[slot];
        let pick = match self.cfg.router {
            Router::RoundRobin => {
                let i = self.rr[slot] as usize % cands.len();
                self.rr[slot] = self.rr[slot].wrapping_add(1);
                cands[i]
            }
            Router::LeastWork => {
                let mut best = cands[0];
                for &i in cands {
                    if self.reps[i].outstanding < self.reps[best].outstanding {
                        best = i;
                    }
                }
                best
            }
        };
        self.reps[pick].outstanding += work;
        pick
    }

    /// Whether `nb` more blocks may be taken on `ri`: a 1% watermark is kept free for the
    /// growth of running sequences (vLLM), except on an empty replica.
    fn fits(&self, ri: usize, nb: u64) -> bool {
        let rep = &self.reps[ri];
        let reserve = if rep.running.is_empty() {
            0
        } else {
            self.watermark
        };
        nb + reserve <= rep.free_blocks
    }

    fn arrive(&mut self, id: u32) {
        let work = self.cold[id as usize].prompt + self.reqs[id as usize].output;
        let pool = if self.cfg.scheduler == SchedulerKind::Disaggregated {
            Role::Prefill
        } else {
            Role::Both
        };
        let rep = self.route(pool, work);
        let r = &mut self.cold[id as usize];
        r.replica = rep as u32;
        r.state = State::Waiting;
        self.reps[rep].waiting.push_back(id);
        self.queue_len += 1;
        if !self.reps[rep].busy {
            self.start_step(rep);
        }
    }

    fn blocks_for(&self, id: u32, ctx: u64) -> u64 {
        let r = &self.reqs[id as usize];
        ctx.saturating_sub(r.shared).div_ceil(self.cfg.block_tokens)
    }

    /// Seconds to move `tokens` of one sequence's KV per GPU over the inter-node link (KV
    /// transfer between pools; host swap, approximated by the NIC's PCIe-class bandwidth).
    fn kv_move_s(&self, tokens: u64) -> f64 {
        let c = Collective {
            kind: CollectiveKind::SendRecv,
            group: 2,
            scope: Scope::InterNode,
            bytes: self.kv_bytes_per_token * tokens as f64,
        };
        price_collective(&c, self.timer.replica().hw).time_s
    }

    fn mark_scheduled(&mut self, id: u32) {
        let now = self.now;
        let r = &mut self.cold[id as usize];
        if r.sched_ns == NONE {
            r.sched_ns = now;
            self.queue_len -= 1;
        }
    }

    fn start_step(&mut self, ri: usize) {
        let mut step = std::mem::take(&mut self.reps[ri].step);
        step.clear();
        let ok = match (self.cfg.scheduler, self.reps[ri].role) {
            (SchedulerKind::Static, _) => self.plan_static(ri, &mut step),
            (SchedulerKind::Chunked, _) => self.plan_chunked(ri, &mut step),
            (_, Role::Prefill) => self.plan_prefill_only(ri, &mut step),
            _ => self.plan_continuous(ri, &mut step),
        };
        if !ok {
            self.reps[ri].step = step;
            return;
        }
        for &(id, _) in &step.prefill {
            self.mark_scheduled(id);
        }
        let t = self.timer.time(&step.work) + step.extra_s;
        let dt = ((t * NS).ceil() as u64).max(1);
        if step.work.prefill_tokens > 0.0 {
            self.stats.prefill_steps += 1;
            self.stats.prefill_ns += dt;
            self.stats.prefill_work.prefill_tokens += step.work.prefill_tokens;
            self.stats.prefill_work.prefill_seqs += step.work.prefill_seqs;
            self.stats.prefill_work.decode_seqs += step.work.decode_seqs;
            self.stats.prefill_work.kv_tokens += step.work.kv_tokens;
            self.stats.prefill_work.pairs += step.work.pairs;
        } else {
            self.stats.decode_steps += 1;
            self.stats.decode_ns += dt;
            self.stats.decode_work.decode_seqs += step.work.decode_seqs;
            self.stats.decode_work.kv_tokens += step.work.kv_tokens;
            self.stats.decode_work.pairs += step.work.pairs;
        }
        let now = self.now;
        let rep = &mut self.reps[ri];
        let used = (rep.total_blocks - rep.free_blocks) as f64;
        rep.kv_block_ns += used * dt as f64 / rep.total_blocks as f64;
        rep.kv_max = rep.kv_max.max(used / rep.total_blocks as f64);
        rep.busy_ns += dt;
        rep.busy = true;
        rep.step_start_ns = now;
        rep.step = step;
        self.push(now + dt, EV_STEP, ri as u32);
    }

    /// Ensures every decoding sequence of `ri` has a block for its next token, preempting the
    /// newest sequences while blocks are short. Returns the blocks to take per survivor.
    fn make_room_for_decodes(&mut self, ri: usize, step: &mut Step) {
        let bt = self.cfg.block_tokens;
        let first = step.decode.len();
        let mut grown = std::mem::take(&mut self.grown);
        loop {
            // One pass grows every decoding sequence that needs a block for its next token
            // (a multiply, not a divide, per sequence) and records which grew; it is undone in
            // the rare case that the free blocks do not cover them.
            grown.clear();
            let Engine { reps, reqs, .. } = &mut *self;
            let rep = &mut reps[ri];
            let (mut n, mut ctx_sum) = (0u64, 0u64);
            for &id in &rep.running {
                let r = &mut reqs[id as usize];
                if r.ctx >= r.need {
                    if r.ctx + 1 - r.shared > r.blocks * bt {
                        r.blocks += 1;
                        grown.push(id);
                    }
                    step.decode.push(id);
                    n += 1;
                    ctx_sum += r.ctx;
                }
            }
            let take = grown.len() as u64;
            if take <= rep.free_blocks || rep.running.len() <= 1 {
                let k = (ctx_sum + n) as f64;
                step.work.decode_seqs += n as f64;
                step.work.kv_tokens += k;
                step.work.pairs += k;
                rep.free_blocks = rep.free_blocks.saturating_sub(take);
                break;
            }
            for &id in &grown {
                reqs[id as usize].blocks -= 1;
            }
            step.decode.truncate(first);
            // Preempt the newest sequences until the blocks the others need are free.
            let mut short = take;
            while short > self.reps[ri].free_blocks && self.reps[ri].running.len() > 1 {
                let Some(victim) = self.reps[ri].running.pop() else {
                    break;
                };
                let r = &self.reqs[victim as usize];
                if r.ctx >= r.need && r.ctx + 1 - r.shared > r.blocks * bt {
                    short -= 1;
                }
                self.preempt(ri, victim, step);
            }
        }
        self.grown = grown;
    }

    fn preempt(&mut self, ri: usize, id: u32, step: &mut Step) {
        self.stats.preemptions += 1;
        let mode = self.cfg.preemption;
        let swap_s = if mode == Preemption::Swap {
            self.kv_move_s(self.reqs[id as usize].ctx)
        } else {
            0.0
        };
        let r = &mut self.reqs[id as usize];
        let c = &mut self.cold[id as usize];
        c.preemptions += 1;
        let freed = r.blocks;
        r.blocks = 0;
        match mode {
            Preemption::Recompute => {
                r.need = c.prompt + r.generated;
                r.ctx = r.shared;
                c.state = State::Waiting;
                self.reps[ri].waiting.push_front(id);
            }
            Preemption::Swap => {
                c.state = State::Swapped;
                step.extra_s += swap_s;
                self.reps[ri].swapped.push_front(id);
            }
        }
        self.reps[ri].free_blocks += freed;
    }

    fn swap_in(&mut self, ri: usize, step: &mut Step) {
        while let Some(&id) = self.reps[ri].swapped.front() {
            if self.reps[ri].running.len() >= self.cfg.max_seqs as usize {
                break;
            }
            let ctx = self.reqs[id as usize].ctx;
            let nb = self.blocks_for(id, ctx);
            if !self.fits(ri, nb) {
                break;
            }
            self.reps[ri].swapped.pop_front();
            self.reps[ri].free_blocks -= nb;
            step.extra_s += self.kv_move_s(ctx);
            let r = &mut self.reqs[id as usize];
            r.blocks = nb;
            self.cold[id as usize].state = State::Running;
            self.reps[ri].running.push(id);
        }
    }

    /// Admits waiting requests whose whole remaining prefill fits the budget and free blocks;
    /// requests with nothing to prefill (KV moved in from a prefill pool) join directly.
    fn admit_whole_prompts(&mut self, ri: usize, step: &mut Step) {
        let mut budget = self.cfg.max_batched_tokens;
        while let Some(&id) = self.reps[ri].waiting.front() {
            if self.reps[ri].running.len() >= self.cfg.max_seqs as usize {
                break;
            }
            let (ctx, need) = {
                let r = &self.reqs[id as usize];
                (r.ctx, r.need)
            };
            let q = need - ctx;
            if q > budget && !step.prefill.is_empty() {
                break;
            }
            let nb = self.blocks_for(id, need) - self.reqs[id as usize].blocks;
            if !self.fits(ri, nb) {
                break;
            }
            self.reps[ri].waiting.pop_front();
            self.reps[ri].free_blocks -= nb;
            let r = &mut self.reqs[id as usize];
            r.blocks += nb;
            self.cold[id as usize].state = State::Running;
            self.reps[ri].running.push(id);
            if q > 0 {
                step.prefill.push((id, q));
                step.work.add_prefill(q, ctx);
                budget = budget.saturating_sub(q);
            } else {
                self.mark_scheduled(id);
            }
        }
    }

    fn plan_continuous(&mut self, ri: usize, step: &mut Step) -> bool {
        self.swap_in(ri, step);
        if self.reps[ri].swapped.is_empty() {
            self.admit_whole_prompts(ri, step);
            if !step.prefill.is_empty() {
                return true;
            }
        }
        self.make_room_for_decodes(ri, step);
        !step.decode.is_empty()
    }

    fn plan_prefill_only(&mut self, ri: usize, step: &mut Step) -> bool {
        self.admit_whole_prompts(ri, step);
        !step.prefill.is_empty()
    }

    fn plan_chunked(&mut self, ri: usize, step: &mut Step) -> bool {
        loop {
            if self.plan_chunked_once(ri, step) {
                return true;
            }
            // Only unfinished prompts hold the blocks and none can take its next chunk: free
            // the newest one's blocks so the others progress (vLLM preempts the same way).
            let Some(victim) = self.reps[ri].running.pop() else {
                return false;
            };
            self.preempt(ri, victim, step);
        }
    }

    fn plan_chunked_once(&mut self, ri: usize, step: &mut Step) -> bool {
        self.swap_in(ri, step);
        self.make_room_for_decodes(ri, step);
        let mut budget = self
            .cfg
            .max_batched_tokens
            .saturating_sub(step.decode.len() as u64);
        // Unfinished prompts already running, oldest first.
        let mut i = 0;
        while i < self.reps[ri].running.len() && budget > 0 {
            let id = self.reps[ri].running[i];
            i += 1;
            let (ctx, need, blocks) = {
                let r = &self.reqs[id as usize];
                (r.ctx, r.need, r.blocks)
            };
            if ctx >= need {
                continue;
            }
            let q = (need - ctx).min(budget);
            let nb = self.blocks_for(id, ctx + q).saturating_sub(blocks);
            if nb > self.reps[ri].free_blocks {
                continue;
            }
            self.reps[ri].free_blocks -= nb;
            self.reqs[id as usize].blocks += nb;
            step.prefill.push((id, q));
            step.work.add_prefill(q, ctx);
            budget -= q;
        }
        if self.reps[ri].swapped.is_empty() {
            while budget > 0 {
                let Some(&id) = self.reps[ri].waiting.front() else {
                    break;
                };
                if self.reps[ri].running.len() >= self.cfg.max_seqs as usize {
                    break;
                }
                let (ctx, need, blocks) = {
                    let r = &self.reqs[id as usize];
                    (r.ctx, r.need, r.blocks)
                };
                let q = (need - ctx).min(budget);
                let nb = self.blocks_for(id, ctx + q).saturating_sub(blocks);
                if !self.fits(ri, nb) {
                    break;
                }
                self.reps[ri].waiting.pop_front();
                self.reps[ri].free_blocks -= nb;
                let r = &mut self.reqs[id as usize];
                r.blocks += nb;
                self.cold[id as usize].state = State::Running;
                self.reps[ri].running.push(id);
                step.prefill.push((id, q));
                step.work.add_prefill(q, ctx);
                budget -= q;
            }
        }
        !(step.prefill.is_empty() && step.decode.is_empty())
    }

    fn plan_static(&mut self, ri: usize, step: &mut Step) -> bool {
        if self.reps[ri].running.is_empty() {
            // Form a batch with KV reserved for the full length of every member.
            let mut longest = 0u64;
            while let Some(&id) = self.reps[ri].waiting.front() {
                if self.reps[ri].running.len() >= self.cfg.max_seqs as usize {
                    break;
                }
                let (prompt, output) =
                    (self.cold[id as usize].prompt, self.reqs[id as usize].output);
                let nb = self.blocks_for(id, prompt + output);
                if nb > self.reps[ri].free_blocks {
                    break;
                }
                self.reps[ri].waiting.pop_front();
                self.reps[ri].free_blocks -= nb;
                let r = &mut self.reqs[id as usize];
                r.blocks = nb;
                self.cold[id as usize].state = State::Running;
                self.reps[ri].running.push(id);
                longest = longest.max(prompt);
            }
            if self.reps[ri].running.is_empty() {
                return false;
            }
            // Prompts padded to the longest.
            let batch = self.reps[ri].running.clone();
            for &id in &batch {
                let ctx = self.reqs[id as usize].ctx;
                step.prefill.push((id, self.reqs[id as usize].need - ctx));
                step.work.add_prefill(longest - ctx, ctx);
            }
            self.reps[ri].static_prompt = longest;
            self.reps[ri].static_steps = 0;
            return true;
        }
        // Every member decodes (finished ones as padding) at the padded context.
        let ctx = self.reps[ri].static_prompt + self.reps[ri].static_steps;
        for i in 0..self.reps[ri].running.len() {
            let id = self.reps[ri].running[i];
            step.decode.push(id);
            step.work.add_decode(ctx);
        }
        true
    }

    fn finish_step(&mut self, ri: usize) {
        let step = std::mem::take(&mut self.reps[ri].step);
        let now = self.now;
        let role = self.reps[ri].role;
        let is_static = self.cfg.scheduler == SchedulerKind::Static;
        let mut leaving = std::mem::take(&mut self.leaving);
        leaving.clear();
        for &(id, q) in &step.prefill {
            let r = &mut self.reqs[id as usize];
            r.ctx += q;
            if r.ctx >= r.need {
                r.generated += 1;
                let c = &mut self.cold[id as usize];
                if c.first_ns == NONE {
                    c.first_ns = now;
                }
                if r.generated >= r.output || role == Role::Prefill {
                    leaving.push(id);
                }
            }
        }
        if is_static && !step.decode.is_empty() {
            self.reps[ri].static_steps += 1;
        }
        for &id in &step.decode {
            let r = &mut self.reqs[id as usize];
            if r.generated < r.output {
                r.ctx += 1;
                r.generated += 1;
                if r.generated >= r.output {
                    leaving.push(id);
                }
            }
        }
        if is_static {
            let all = self.reps[ri]
                .running
                .iter()
                .all(|&id| self.reqs[id as usize].generated >= self.reqs[id as usize].output);
            if all {
                let batch = std::mem::take(&mut self.reps[ri].running);
                for id in batch {
                    self.complete(ri, id);
                }
            }
        } else if !leaving.is_empty() {
            let running = &mut self.reps[ri].running;
            if let [one] = leaving[..] {
                if let Some(pos) = running.iter().position(|&id| id == one) {
                    running.remove(pos);
                }
            } else {
                running.retain(|id| !leaving.contains(id));
            }
            for &id in &leaving {
                let r = &self.reqs[id as usize];
                if r.generated >= r.output {
                    self.complete(ri, id);
                } else {
                    self.start_transfer(ri, id);
                }
            }
        }
        self.leaving = leaving;
        self.reps[ri].step = step;
        self.reps[ri].busy = false;
        self.start_step(ri);
    }

    fn complete(&mut self, ri: usize, id: u32) {
        let now = self.now;
        let r = &mut self.reqs[id as usize];
        let c = &mut self.cold[id as usize];
        c.done_ns = now;
        c.state = State::Done;
        let blocks = r.blocks;
        r.blocks = 0;
        let work = c.prompt + r.output;
        self.stats.completed += 1;
        let rep = &mut self.reps[ri];
        rep.free_blocks += blocks;
        rep.outstanding = rep.outstanding.saturating_sub(work);
    }

    fn start_transfer(&mut self, from: usize, id: u32) {
        let (ctx, work) = {
            let r = &self.reqs[id as usize];
            (r.ctx, self.cold[id as usize].prompt + r.output)
        };
        self.reps[from].outstanding = self.reps[from].outstanding.saturating_sub(work);
        let to = self.route(Role::Decode, work);
        let dt = ((self.kv_move_s(ctx) * NS).ceil() as u64).max(1);
        self.stats.transfers += 1;
        self.stats.transfer_ns += dt;
        let c = &mut self.cold[id as usize];
        c.state = State::Transfer;
        // The source keeps the blocks until the copy lands; `replica` packs destination and
        // source.
        c.replica = to as u32 | (from as u32) << 16;
        let now = self.now;
        self.push(now + dt, EV_TRANSFER, id);
    }

    fn transfer_done(&mut self, id: u32) {
        let (from, to) = {
            let c = &self.cold[id as usize];
            ((c.replica >> 16) as usize, (c.replica & 0xffff) as usize)
        };
        let r = &mut self.reqs[id as usize];
        let blocks = r.blocks;
        r.blocks = 0;
        let c = &mut self.cold[id as usize];
        c.replica = to as u32;
        c.state = State::Waiting;
        self.reps[from].free_blocks += blocks;
        self.reps[to].waiting.push_back(id);
        if !self.reps[to].busy {
            self.start_step(to);
        }
        if !self.reps[from].busy {
            self.start_step(from);
        }
    }
}
