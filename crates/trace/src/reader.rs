//! Streaming reader of Kineto Chrome-trace JSON (plain or gzip) into a compact [`RawTrace`].
//!
//! The document is never held as a tree: a byte scanner finds each element of `traceEvents`
//! and `serde_json` parses that one element into borrowed fields. Only what the analysis needs
//! is kept (GPU operations, runtime calls, profiler steps, data-loader spans, memory samples,
//! collective metadata), so memory grows with GPU activity, not with file size.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rustc_hash::FxHashMap;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::classify::{self, KernelClass};
use crate::error::TraceError;
use crate::scan::{ScanError, Scanner};
use crate::warn::Warnings;

/// Kind of GPU-side activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A kernel.
    Kernel,
    /// A memory copy.
    Memcpy,
    /// A memory set.
    Memset,
    /// A GPU-side synchronisation span (`cuda_sync`: stream, event or context sync).
    Sync,
}

/// One GPU operation, times in nanoseconds on the trace's clock.
#[derive(Debug, Clone, Copy)]
pub struct GpuOp {
    /// Start, ns.
    pub start_ns: i64,
    /// End, ns (≥ start).
    pub end_ns: i64,
    /// Interned name.
    pub name: u32,
    /// Device index (`args.device`, else the numeric `pid`).
    pub device: i32,
    /// Stream (`args.stream`, else the numeric `tid` or `"stream N"`).
    pub stream: i32,
    /// `args.correlation`, linking it to the runtime call that launched it (−1: none).
    pub correlation: i64,
    /// `args.External id` (−1: none).
    pub external_id: i64,
    /// Kind.
    pub kind: OpKind,
    /// Class.
    pub class: KernelClass,
    /// Index into [`RawTrace::collectives`], or `u32::MAX`.
    pub coll: u32,
}

/// An event as HTA 0.5 reads it for its GPU analyses: any event with a `cat` (not `Trace`), a
/// `dur` and an integer `args.stream` other than −1, whatever its category. Times are the file's
/// µs as `f64`, as pandas holds them; HTA's rounding is applied at analysis time.
#[derive(Debug, Clone, Copy)]
pub struct HtaOp {
    /// `ts`, µs.
    pub ts_us: f64,
    /// `dur`, µs.
    pub dur_us: f64,
    /// `args.correlation` (−1: none).
    pub correlation: i64,
    /// HTA's class from the name.
    pub class: KernelClass,
    /// Interned name.
    pub name: u32,
}

/// What HTA's step window needs (HTA 0.5 `Trace._filter_irrelevant_gpu_kernels`).
#[derive(Debug, Default)]
pub struct HtaWindow {
    /// Distinct event names containing `ProfilerStep`.
    pub step_names: std::collections::BTreeSet<String>,
    /// Latest start of a host event with such a name, µs.
    pub last_step_start_us: Option<f64>,
    /// Earliest start of a host event (not a GPU kernel by HTA's filter) per correlation, µs.
    pub host_corr_start_us: FxHashMap<i64, f64>,
    /// Whether some event has a non-integer `ts` (HTA then rounds all times to µs).
    pub float_ts: bool,
}

/// A CUDA/HIP runtime or driver call on the host.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeCall {
    /// Start, ns.
    pub start_ns: i64,
    /// End, ns.
    pub end_ns: i64,
    /// `args.correlation`.
    pub correlation: i64,
    /// Whether the call blocks the host on the device.
    pub sync: bool,
}

/// Collective metadata from kernel or `record_param_comms` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CollInfo {
    /// Process-group name (`Process Group Name`), or `"default"` when absent.
    pub pg: String,
    /// Collective name as written (`allreduce`, `_allgather_base`, ...).
    pub name: String,
    /// Sequence number in the process group when the trace records one (`Seq`).
    pub seq: Option<i64>,
    /// Message size in bytes (`In msg nelems` × dtype size), when known.
    pub bytes: Option<u64>,
    /// Ranks in the group, when known.
    pub group_size: Option<u32>,
}

/// A `ProfilerStep#N` span.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// N.
    pub step: i64,
    /// Start, ns.
    pub start_ns: i64,
    /// End, ns.
    pub end_ns: i64,
}

/// A `[memory]` allocator sample.
#[derive(Debug, Clone, Copy)]
pub struct MemSample {
    /// Time, ns.
    pub ts_ns: i64,
    /// Device (−1: host).
    pub device: i32,
    /// `Total Allocated` bytes.
    pub allocated: i64,
    /// `Total Reserved` bytes.
    pub reserved: i64,
}

/// Everything the analysis needs from one trace file.
#[derive(Debug, Default)]
pub struct RawTrace {
    /// Source path as given.
    pub path: String,
    /// Decompressed JSON bytes read.
    pub json_bytes: u64,
    /// Trace events seen.
    pub events: u64,
    /// `distributedInfo.rank`.
    pub rank: Option<i64>,
    /// `distributedInfo.world_size`.
    pub world_size: Option<i64>,
    /// `baseTimeNanoseconds` (0 when absent): add to trace times for wall-clock time.
    pub base_time_ns: i64,
    /// `displayTimeUnit`, when present (display only: Kineto times are µs regardless).
    pub display_time_unit: Option<String>,
    /// GPU names from `deviceProperties` / `computeProperties`.
    pub device_names: Vec<String>,
    /// Interned names.
    pub names: Vec<String>,
    /// GPU operations.
    pub gpu_ops: Vec<GpuOp>,
    /// Runtime calls that carry a correlation id, sorted by correlation after reading.
    pub runtime: Vec<RuntimeCall>,
    /// Host-side blocking calls (ns spans).
    pub host_sync: Vec<(i64, i64)>,
    /// Data-loader spans (ns).
    pub dataloader: Vec<(i64, i64)>,
    /// Profiler steps.
    pub steps: Vec<Step>,
    /// Allocator samples.
    pub memory: Vec<MemSample>,
    /// Collective metadata.
    pub collectives: Vec<CollInfo>,
    /// Collective metadata of CPU `record_param_comms` ops by External id.
    pub comms_by_external: FxHashMap<i64, u32>,
    /// Events as HTA reads them (only when reading for `--compat hta`).
    pub hta_ops: Vec<HtaOp>,
    /// HTA's step-window inputs (only when reading for `--compat hta`).
    pub hta_window: HtaWindow,
    /// Warnings counted while reading.
    pub warnings: Warnings,
}

/// A number or a string, as Kineto writes `ts`, `dur`, `pid`, `tid`, ids.
#[derive(Debug, Clone)]
pub(crate) enum Scalar<'a> {
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Int(i64::from(v)))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Str(Cow::Borrowed("")))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Scalar::Str(Cow::Borrowed("")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Scalar<'_> {
    /// As an integer (strings parsed; `"stream 7"` gives 7).
    fn int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::Float(f) if f.is_finite() => Some(*f as i64),
            Self::Float(_) => None,
            Self::Str(s) => {
                let t = s.trim();
                t.parse::<i64>().ok().or_else(|| {
                    t.rsplit(' ')
                        .next()
                        .and_then(|w| w.parse::<i64>().ok())
                        .filter(|_| t.starts_with("stream"))
                })
            }
        }
    }
}

/// Parses a decimal µs string (`"1234.5678"`) into ns without going through `f64`.
fn parse_decimal_us(s: &str) -> Option<i64> {
    let (neg, body) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (int_part, frac) = body.split_once('.').unwrap_or((body, ""));
    if int_part.is_empty() && frac.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| (f * 1000.0).round() as i64);
    }
    let whole: i64 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().ok()?
    };
    let mut ns = whole.checked_mul(1000)?;
    let digits = frac.as_bytes();
    let mut scale = 100;
    for &d in digits.iter().take(3) {
        ns += i64::from(d - b'0') * scale;
        scale /= 10;
    }
    if digits.len() > 3 && digits[3] >= b'5' {
        ns += 1;
    }
    Some(if neg { -ns } else { ns })
}

/// The text of a JSON number or string holding a number, without quotes.
fn raw_text(t: &str) -> Option<&str> {
    match t.as_bytes().first() {
        Some(b'"') => t.get(1..t.len() - 1).filter(|x| !x.contains('\\')),
        Some(b'-' | b'0'..=b'9') => Some(t),
        _ => None,
    }
}

/// A time in µs (number or numeric string) as exact integer ns.
fn raw_ns(r: &[u8]) -> Option<i64> {
    plain_decimal_us(r).or_else(|| {
        let r = std::str::from_utf8(r).ok()?;
        raw_text(r).and_then(|t| parse_decimal_us(t.trim()))
    })
}

/// [`parse_decimal_us`] in one pass for the common shape, digits with an optional fraction
/// (`1683564907446924.0`); `None` for anything else, which takes the general path.
fn plain_decimal_us(b: &[u8]) -> Option<i64> {
    let mut i = 0;
    let mut whole: i64 = 0;
    while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        whole = whole.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut ns = whole.checked_mul(1000)?;
    if i < b.len() {
        if b[i] != b'.' {
            return None;
        }
        i += 1;
        let frac = &b[i..];
        if !frac.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut scale = 100;
        for &d in frac.iter().take(3) {
            ns += i64::from(d - b'0') * scale;
            scale /= 10;
        }
        if frac.len() > 3 && frac[3] >= b'5' {
            ns += 1;
        }
    }
    Some(ns)
}

/// A time in µs as the `f64` pandas would hold, and whether it is written as a non-integer.
fn raw_f64(r: &[u8]) -> Option<(f64, bool)> {
    // The common shape: an unquoted integer up to 2^53, which `f64` holds exactly, as
    // `str::parse` would give it (19 digits cannot overflow `u64`).
    if (1..=19).contains(&r.len()) {
        let mut n = 0u64;
        for &d in r {
            let v = d.wrapping_sub(b'0');
            if v > 9 {
                n = u64::MAX;
                break;
            }
            n = n * 10 + u64::from(v);
        }
        if n <= 1 << 53 {
            #[allow(clippy::cast_precision_loss)] // n ≤ 2^53: exact
            return Some((n as f64, false));
        }
    }
    let t = raw_text(std::str::from_utf8(r).ok()?)?.trim();
    let v: f64 = t.parse().ok().filter(|v: &f64| v.is_finite())?;
    Some((v, t.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))))
}

/// Python's `int(x)` on a stream id, as HTA normalises it (−1 when it does not convert).
fn hta_int(s: Option<&Scalar<'_>>) -> i64 {
    match s {
        Some(Scalar::Int(i)) => *i,
        Some(Scalar::Float(f)) if f.is_finite() => *f as i64,
        Some(Scalar::Str(t)) => t.trim().parse().unwrap_or(-1),
        _ => -1,
    }
}

#[derive(Deserialize, Default, Debug, Clone)]
pub(crate) struct Args<'a> {
    #[serde(default, borrow)]
    pub(crate) correlation: Option<Scalar<'a>>,
    #[serde(default, borrow, rename = "External id")]
    pub(crate) external_id: Option<Scalar<'a>>,
    #[serde(default, borrow, rename = "external id")]
    pub(crate) external_id_legacy: Option<Scalar<'a>>,
    #[serde(default, borrow)]
    pub(crate) stream: Option<Scalar<'a>>,
    #[serde(default, borrow)]
    pub(crate) device: Option<Scalar<'a>>,
    #[serde(default, borrow, rename = "Collective name")]
    pub(crate) collective: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "Process Group Name")]
    pub(crate) pg_name: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "Seq")]
    pub(crate) seq: Option<Scalar<'a>>,
    #[serde(default, borrow, rename = "In msg nelems")]
    pub(crate) in_nelems: Option<Scalar<'a>>,
    #[serde(default, borrow, rename = "Group size")]
    pub(crate) group_size: Option<Scalar<'a>>,
    #[serde(default, borrow)]
    pub(crate) dtype: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "Total Allocated")]
    pub(crate) total_allocated: Option<Scalar<'a>>,
    #[serde(default, borrow, rename = "Total Reserved")]
    pub(crate) total_reserved: Option<Scalar<'a>>,
    #[serde(default, borrow, rename = "Device Id")]
    pub(crate) device_id: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default, borrow)]
    ph: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    cat: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pid: Option<Scalar<'a>>,
    #[serde(default, borrow)]
    tid: Option<Scalar<'a>>,
    #[serde(default, borrow)]
    ts: Option<&'a RawValue>,
    #[serde(default, borrow)]
    dur: Option<&'a RawValue>,
    /// Kept raw: parsed only for the events whose arguments the analysis reads.
    #[serde(default, borrow)]
    args: Option<&'a RawValue>,
}

/// Parses an event's `args` (`None` when absent or not an object of the expected shape).
fn parse_args(raw: &[u8]) -> Option<Args<'_>> {
    crate::fast::args(raw).or_else(|| serde_json::from_slice(raw).ok())
}

/// One event's members the reader uses, borrowed from the input: `ts`/`dur` as raw JSON text
/// (quotes kept for strings), `args` as raw JSON bytes.
#[derive(Debug, Default)]
pub(crate) struct Ev<'a> {
    pub(crate) ph: Option<Cow<'a, str>>,
    pub(crate) cat: Option<Cow<'a, str>>,
    pub(crate) name: Option<Cow<'a, str>>,
    pub(crate) pid: Option<Scalar<'a>>,
    pub(crate) tid: Option<Scalar<'a>>,
    pub(crate) ts: Option<&'a [u8]>,
    pub(crate) dur: Option<&'a [u8]>,
    pub(crate) args: Option<&'a [u8]>,
    /// `args` already read by the fast path (it equals `parse_args` of `args`).
    pub(crate) parsed_args: Option<Args<'a>>,
}

impl<'a> Ev<'a> {
    /// The event's `args`, parsed: those the fast path read, else parsed into `slot`.
    fn args_ref<'s>(&'s self, slot: &'s mut Option<Args<'a>>) -> Option<&'s Args<'a>> {
        match &self.parsed_args {
            Some(a) => Some(a),
            None => {
                *slot = self.args.and_then(parse_args);
                slot.as_ref()
            }
        }
    }
}

impl<'a> From<Event<'a>> for Ev<'a> {
    fn from(e: Event<'a>) -> Self {
        Self {
            ph: e.ph,
            cat: e.cat,
            name: e.name,
            pid: e.pid,
            tid: e.tid,
            ts: e.ts.map(|r| r.get().as_bytes()),
            dur: e.dur.map(|r| r.get().as_bytes()),
            args: e.args.map(|a| a.get().as_bytes()),
            parsed_args: None,
        }
    }
}

fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "Float" | "Int" | "float32" | "int32" | "UInt32" => 4,
        "BFloat16" | "Half" | "bfloat16" | "float16" | "Short" => 2,
        "Double" | "Long" | "float64" | "int64" | "ComplexFloat" => 8,
        "Byte" | "Char" | "Bool" | "Float8_e4m3fn" | "Float8_e5m2" | "Float8_e4m3fnuz"
        | "Float8_e5m2fnuz" | "uint8" | "int8" => 1,
        _ => return None,
    })
}

/// What kind of event a category names.
enum Cat {
    Kernel,
    Memcpy,
    Memset,
    GpuSync,
    Runtime,
    CpuOp,
    Instant,
    Ignored,
    Unknown,
}

fn category(cat: &str) -> Cat {
    match cat {
        "kernel" | "Kernel" => Cat::Kernel,
        "gpu_memcpy" | "Memcpy" => Cat::Memcpy,
        "gpu_memset" | "Memset" => Cat::Memset,
        "cuda_sync" => Cat::GpuSync,
        "cuda_runtime" | "Runtime" | "cuda_driver" | "hip_runtime" => Cat::Runtime,
        "cpu_op" | "Operator" | "user_annotation" | "python_function" => Cat::CpuOp,
        "cpu_instant_event" => Cat::Instant,
        "ac2g"
        | "async"
        | "async_gpu"
        | "async_cpu_to_gpu"
        | "fwdbwd"
        | "Trace"
        | "gpu_user_annotation"
        | "overhead"
        | "python"
        | "Python"
        | "mtia_runtime"
        | "mtia_ccp_events"
        | "privateuse1_runtime"
        | "privateuse1_driver"
        | "Memory"
        | "gpu_user_annotation_cuda"
        | "cuda_profiler_range" => Cat::Ignored,
        _ => Cat::Unknown,
    }
}

/// Accumulates events into a [`RawTrace`].
struct Builder {
    t: RawTrace,
    /// Name → index in `t.names` (Fx: names are long and hashed once per event).
    intern: FxHashMap<String, u32>,
    /// Class per interned name and kind, filled on first sight.
    classes: FxHashMap<(u32, u8), KernelClass>,
    /// HTA's class per interned name (`--compat hta`), filled on first sight.
    hta_classes: FxHashMap<u32, KernelClass>,
    /// Whether to keep HTA's view of the events too.
    hta: bool,
}

impl Builder {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.intern.get(name) {
            return id;
        }
        let id = self.t.names.len() as u32;
        self.t.names.push(name.to_owned());
        self.intern.insert(name.to_owned(), id);
        id
    }

    fn coll_info(&mut self, a: &Args<'_>) -> Option<u32> {
        let name = a.collective.as_deref()?;
        let elems = a.in_nelems.as_ref().and_then(Scalar::int);
        let size = a.dtype.as_deref().and_then(dtype_bytes);
        let info = CollInfo {
            pg: a.pg_name.as_deref().unwrap_or("default").to_owned(),
            name: name.to_owned(),
            seq: a.seq.as_ref().and_then(Scalar::int),
            bytes: match (elems, size) {
                (Some(e), Some(s)) if e >= 0 => Some(e as u64 * s),
                _ => None,
            },
            group_size: a
                .group_size
                .as_ref()
                .and_then(Scalar::int)
                .map(|g| g as u32),
        };
        self.t.collectives.push(info);
        Some(self.t.collectives.len() as u32 - 1)
    }

    /// Records the event as HTA 0.5 would see it (`trace_parser` and `Trace` filters).
    fn hta_event(&mut self, e: &Ev<'_>, name: &str, ts: Option<(f64, bool)>) {
        let (Some((ts, _)), Some((dur, _))) = (ts, e.dur.and_then(raw_f64)) else {
            return;
        };
        let mut parsed = None;
        let args = e.args_ref(&mut parsed);
        let w = &mut self.t.hta_window;
        let stream = hta_int(args.and_then(|a| a.stream.as_ref()));
        let correlation = args
            .and_then(|a| a.correlation.as_ref())
            .and_then(Scalar::int)
            .unwrap_or(-1);
        // HTA's GPUKernelFilter: stream ≥ 0 and correlation ≥ 0 (its two device-sync names
        // sit on stream −1 and never reach the breakdowns).
        let gpu = stream >= 0 && correlation >= 0;
        if memchr::memmem::find(name.as_bytes(), b"ProfilerStep").is_some() {
            if !w.step_names.contains(name) {
                w.step_names.insert(name.to_owned());
            }
            if !gpu {
                w.last_step_start_us = Some(w.last_step_start_us.map_or(ts, |l| l.max(ts)));
            }
        }
        if !gpu && correlation >= 0 {
            let m = w.host_corr_start_us.entry(correlation).or_insert(ts);
            *m = m.min(ts);
        }
        if stream != -1 {
            let id = self.intern(name);
            self.t.hta_ops.push(HtaOp {
                ts_us: ts,
                dur_us: dur,
                correlation: if gpu { correlation } else { -1 },
                class: *self
                    .hta_classes
                    .entry(id)
                    .or_insert_with(|| classify::classify_hta(name)),
                name: id,
            });
        }
    }

    fn event(&mut self, e: &Ev<'_>) {
        self.t.events += 1;
        let ph = e.ph.as_deref().unwrap_or("");
        let name = e.name.as_deref().unwrap_or("");
        // `ts` as HTA reads it, once per event.
        let hta_ts = if self.hta {
            e.ts.and_then(raw_f64)
        } else {
            None
        };
        if self.hta && !self.t.hta_window.float_ts {
            // pandas makes the whole `ts` column float when any event's is.
            self.t.hta_window.float_ts = hta_ts.is_some_and(|(_, f)| f);
        }
        if ph == "M" || ph == "s" || ph == "f" || ph == "t" {
            return;
        }
        let Some(cat_str) = e.cat.as_deref() else {
            return;
        };
        if self.hta && cat_str != "Trace" {
            self.hta_event(e, name, hta_ts);
        }
        let cat = category(cat_str);
        if let Cat::Unknown = cat {
            self.t.warnings.add("unknown_category", || {
                format!("unknown event category {cat_str:?} (ignored)")
            });
            return;
        }
        if let Cat::Ignored = cat {
            return;
        }
        let Some(ts) = e.ts.and_then(raw_ns) else {
            self.t.warnings.add("missing_timestamp", || {
                format!("event {name:?} has no usable ts (ignored)")
            });
            return;
        };
        if let Cat::Instant = cat {
            if name == "[memory]" {
                let mut parsed = None;
                if let Some(a) = e.args_ref(&mut parsed) {
                    let alloc = a.total_allocated.as_ref().and_then(Scalar::int);
                    if let Some(allocated) = alloc {
                        self.t.memory.push(MemSample {
                            ts_ns: ts,
                            device: a.device_id.as_ref().and_then(Scalar::int).unwrap_or(-1) as i32,
                            allocated,
                            reserved: a.total_reserved.as_ref().and_then(Scalar::int).unwrap_or(0),
                        });
                    }
                }
            }
            return;
        }
        let Some(dur) = e.dur.and_then(raw_ns) else {
            if ph == "X" {
                self.t.warnings.add("missing_duration", || {
                    format!("complete event {name:?} has no dur (ignored)")
                });
            }
            return;
        };
        if dur < 0 {
            self.t.warnings.add("negative_duration", || {
                format!("event {name:?} has negative dur {dur} ns (ignored)")
            });
            return;
        }
        let end = ts + dur;
        let needs_args = match cat {
            Cat::CpuOp => name == "record_param_comms" || name.starts_with("nccl:"),
            _ => true,
        };
        let mut parsed = None;
        let args = if needs_args {
            e.args_ref(&mut parsed)
        } else {
            None
        };
        let correlation = args
            .and_then(|a| a.correlation.as_ref())
            .and_then(Scalar::int)
            .unwrap_or(-1);
        match cat {
            Cat::Kernel | Cat::Memcpy | Cat::Memset | Cat::GpuSync => {
                let kind = match cat {
                    Cat::Kernel => OpKind::Kernel,
                    Cat::Memcpy => OpKind::Memcpy,
                    Cat::Memset => OpKind::Memset,
                    _ => OpKind::Sync,
                };
                let device = args
                    .and_then(|a| a.device.as_ref())
                    .and_then(Scalar::int)
                    .or_else(|| e.pid.as_ref().and_then(Scalar::int))
                    .unwrap_or(0) as i32;
                let stream = args
                    .and_then(|a| a.stream.as_ref())
                    .and_then(Scalar::int)
                    .or_else(|| e.tid.as_ref().and_then(Scalar::int))
                    .unwrap_or(-1) as i32;
                let coll = if kind == OpKind::Kernel {
                    args.and_then(|a| self.coll_info(a)).unwrap_or(u32::MAX)
                } else {
                    u32::MAX
                };
                let external_id = args
                    .and_then(|a| a.external_id.as_ref().or(a.external_id_legacy.as_ref()))
                    .and_then(Scalar::int)
                    .unwrap_or(-1);
                let id = self.intern(name);
                let class = *self
                    .classes
                    .entry((id, kind as u8))
                    .or_insert_with(|| match kind {
                        OpKind::Sync => KernelClass::Sync,
                        _ => classify::classify(name, cat_str),
                    });
                self.t.gpu_ops.push(GpuOp {
                    start_ns: ts,
                    end_ns: end,
                    name: id,
                    device,
                    stream,
                    correlation,
                    external_id,
                    kind,
                    class,
                    coll,
                });
            }
            Cat::Runtime => {
                let sync = classify::is_sync_call(name);
                if sync {
                    self.t.host_sync.push((ts, end));
                }
                if correlation >= 0 {
                    self.t.runtime.push(RuntimeCall {
                        start_ns: ts,
                        end_ns: end,
                        correlation,
                        sync,
                    });
                }
            }
            Cat::CpuOp => {
                if let Some(rest) = name.strip_prefix("ProfilerStep#") {
                    if let Ok(step) = rest.trim().parse::<i64>() {
                        self.t.steps.push(Step {
                            step,
                            start_ns: ts,
                            end_ns: end,
                        });
                    }
                } else if name == "record_param_comms" || name.starts_with("nccl:") {
                    if let Some(a) = args {
                        let ext = a.external_id.as_ref().and_then(Scalar::int);
                        if let (Some(ext), Some(idx)) = (ext, self.coll_info(a)) {
                            self.t.comms_by_external.insert(ext, idx);
                        }
                    }
                } else if classify::is_dataloader(name) {
                    self.t.dataloader.push((ts, end));
                }
            }
            Cat::Instant | Cat::Ignored | Cat::Unknown => {}
        }
    }

    fn metadata(&mut self, key: &str, value: &[u8]) {
        match key {
            "distributedInfo" => {
                #[derive(Deserialize)]
                struct Dist {
                    rank: Option<i64>,
                    world_size: Option<i64>,
                }
                match serde_json::from_slice::<Dist>(value) {
                    Ok(d) => {
                        self.t.rank = d.rank;
                        self.t.world_size = d.world_size;
                    }
                    Err(_) => self.t.warnings.add("bad_metadata", || {
                        "distributedInfo is not an object with rank/world_size (ignored)".into()
                    }),
                }
            }
            "baseTimeNanoseconds" => match serde_json::from_slice::<Scalar>(value)
                .ok()
                .and_then(|s| s.int())
            {
                Some(b) => self.t.base_time_ns = b,
                None => self.t.warnings.add("bad_metadata", || {
                    "baseTimeNanoseconds is not a number (ignored)".into()
                }),
            },
            "displayTimeUnit" => {
                self.t.display_time_unit = serde_json::from_slice::<String>(value).ok();
            }
            "deviceProperties" | "computeProperties" => {
                #[derive(Deserialize)]
                struct Dev {
                    name: Option<String>,
                }
                if let Ok(devs) = serde_json::from_slice::<Vec<Dev>>(value) {
                    self.t
                        .device_names
                        .extend(devs.into_iter().filter_map(|d| d.name));
                }
            }
            _ => {}
        }
    }
}

/// Reads one trace file (gzip detected by its magic bytes). `hta`: also keep HTA's view of the
/// events (for `--compat hta`).
pub fn read_file(path: &Path, hta: bool) -> Result<RawTrace, TraceError> {
    let io_err = |source| TraceError::Io {
        path: path.to_owned(),
        source,
    };
    // No BufReader: the scanner reads in large blocks itself (and gzip buffers its input).
    let mut f = File::open(path).map_err(io_err)?;
    let mut magic = [0u8; 2];
    let n = read_prefix(&mut f, &mut magic).map_err(io_err)?;
    let head = io::Cursor::new(magic[..n].to_vec()).chain(f);
    if n == 2 && magic == [0x1f, 0x8b] {
        read(flate2::read::MultiGzDecoder::new(head), path, true, hta)
    } else {
        read(head, path, false, hta)
    }
}

fn read_prefix(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads a trace from any reader. `gz` only changes how I/O errors are reported; `hta` keeps
/// HTA's view of the events too.
pub fn read<R: Read>(r: R, path: &Path, gz: bool, hta: bool) -> Result<RawTrace, TraceError> {
    let mut b = Builder {
        t: RawTrace {
            path: path.display().to_string(),
            ..RawTrace::default()
        },
        intern: FxHashMap::default(),
        classes: FxHashMap::default(),
        hta_classes: FxHashMap::default(),
        hta,
    };
    let mut s = Scanner::new(r);
    let mut saw_events = false;
    let result = parse_document(&mut s, &mut b, &mut saw_events);
    b.t.json_bytes = s.bytes_read();
    match result {
        Ok(()) => {}
        Err(ScanError::Eof) => {
            let offset = s.bytes_read();
            if b.t.events == 0 {
                return Err(TraceError::Truncated {
                    path: path.to_owned(),
                    offset,
                });
            }
            b.t.warnings.add("truncated", || format!("input ends at byte {offset} inside the document; analysed the complete events before it"));
        }
        Err(ScanError::Io(e)) => {
            let offset = s.bytes_read();
            let eofish = e.kind() == io::ErrorKind::UnexpectedEof;
            if gz && !eofish {
                return Err(TraceError::Gzip {
                    path: path.to_owned(),
                    offset,
                    detail: e.to_string(),
                });
            }
            if !gz && !eofish {
                return Err(TraceError::Io {
                    path: path.to_owned(),
                    source: e,
                });
            }
            if b.t.events == 0 {
                return Err(TraceError::Truncated {
                    path: path.to_owned(),
                    offset,
                });
            }
            b.t.warnings.add("truncated", || format!("compressed input ends at byte {offset} of JSON; analysed the complete events before it"));
        }
        Err(ScanError::Unexpected { found }) => {
            return Err(TraceError::Json {
                path: path.to_owned(),
                offset: s.offset(),
                detail: format!("unexpected {:?}", char::from(found)),
            });
        }
        Err(ScanError::Json(offset, detail)) => {
            return Err(TraceError::Json {
                path: path.to_owned(),
                offset,
                detail,
            });
        }
    }
    if !saw_events {
        return Err(TraceError::Empty {
            path: path.to_owned(),
        });
    }
    b.t.runtime.sort_by_key(|r| r.correlation);
    Ok(b.t)
}

/// serde_json's message without its " at line L column C" (relative to one event, so
/// misleading); the error reports the absolute byte offset instead.
fn without_position(e: &serde_json::Error) -> String {
    let m = e.to_string();
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_owned(),
        None => m,
    }
}

/// Offset inside `bytes` of serde_json's (1-based) line and column.
fn line_col_offset(bytes: &[u8], line: usize, col: usize) -> usize {
    let mut off = 0;
    for _ in 1..line {
        match memchr::memchr(b'\n', &bytes[off..]) {
            Some(k) => off += k + 1,
            None => break,
        }
    }
    (off + col.saturating_sub(1)).min(bytes.len())
}

fn parse_document<R: Read>(
    s: &mut Scanner<R>,
    b: &mut Builder,
    saw_events: &mut bool,
) -> Result<(), ScanError> {
    if s.expect(b"{[")? == b'[' {
        *saw_events = true;
        return parse_events(s, b);
    }
    if s.peek()? == Some(b'}') {
        s.expect(b"}")?;
        return Ok(());
    }
    loop {
        let r = s.value()?;
        let key_raw = s.slice(r);
        if key_raw.first() != Some(&b'"') {
            return Err(ScanError::Unexpected { found: key_raw[0] });
        }
        let key: String = serde_json::from_slice(key_raw)
            .map_err(|e| ScanError::Json(s.offset_of(r.0), without_position(&e)))?;
        s.expect(b":")?;
        if key == "traceEvents" {
            if s.peek()? == Some(b'[') {
                s.expect(b"[")?;
                *saw_events = true;
                parse_events(s, b)?;
            } else {
                let _ = s.value()?;
                b.t.warnings.add("bad_metadata", || {
                    "traceEvents is not an array (ignored)".into()
                });
            }
        } else {
            let r = s.value()?;
            let bytes = s.slice(r).to_vec();
            b.metadata(&key, &bytes);
        }
        if s.expect(b",}")? == b'}' {
            return Ok(());
        }
    }
}

fn parse_events<R: Read>(s: &mut Scanner<R>, b: &mut Builder) -> Result<(), ScanError> {
    if s.peek()? == Some(b']') {
        s.expect(b"]")?;
        return Ok(());
    }
    loop {
        if s.peek()?.is_none() {
            return Err(ScanError::Eof);
        }
        // Parse the event straight from the window, which also finds where it ends; an event
        // cut by the window's end reads more input and parses again.
        loop {
            let mut e = Ev::default();
            if let Some(used) = crate::fast::event(s.rest(), &mut e) {
                b.event(&e);
                s.advance(used);
                break;
            }
            let mut de = serde_json::Deserializer::from_slice(s.rest()).into_iter::<Event>();
            match de
                .next()
                .unwrap_or_else(|| Err(de::Error::custom("no value")))
            {
                Ok(e) => {
                    let used = de.byte_offset();
                    b.event(&e.into());
                    s.advance(used);
                    break;
                }
                Err(e) if e.is_eof() => s.more()?,
                Err(_) => {
                    // Bad event: find its extent, then count it or report the offset.
                    let r = s.value()?;
                    parse_event(s, b, r)?;
                    break;
                }
            }
        }
        if s.expect(b",]")? == b']' {
            return Ok(());
        }
    }
}

fn parse_event<R: Read>(
    s: &Scanner<R>,
    b: &mut Builder,
    r: (usize, usize),
) -> Result<(), ScanError> {
    let bytes = s.slice(r);
    // Validating UTF-8 once per event is cheaper than once per borrowed string.
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str::<Event>(text),
        Err(_) => serde_json::from_slice::<Event>(bytes),
    };
    {
        match parsed {
            Ok(e) => b.event(&e.into()),
            Err(e) => {
                if e.is_data() {
                    let msg = without_position(&e);
                    b.t.events += 1;
                    b.t.warnings.add("bad_event", || {
                        format!("event at byte {}: {msg} (ignored)", s.offset_of(r.0))
                    });
                } else {
                    let off = line_col_offset(bytes, e.line(), e.column());
                    return Err(ScanError::Json(
                        s.offset_of(r.0) + off as u64,
                        without_position(&e),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_times_as_f64_match_str_parse() {
        for t in [
            "0",
            "7",
            "007",
            "1683564902133354",
            "9007199254740992",
            "9007199254740993",
            "9999999999999999999",
            "12.5",
            "1e3",
            "-4",
            "\"12\"",
        ] {
            let want = raw_text(t)
                .and_then(|x| x.parse::<f64>().ok())
                .map(|v| (v, t.contains(['.', 'e'])));
            assert_eq!(raw_f64(t.as_bytes()), want, "{t}");
        }
    }

    #[test]
    fn plain_decimals_match_the_general_parser() {
        for t in [
            "0",
            "7",
            "12.5",
            "1683564907446924.0",
            "1.2345",
            "1.2344",
            "99.",
            "12.000499",
            "9223372036854775807",
            "9223372036854775.807",
        ] {
            assert_eq!(plain_decimal_us(t.as_bytes()), parse_decimal_us(t), "{t}");
        }
        for t in ["-1", ".5", "1e3", "\"12\"", " 1", "1.2.3", ""] {
            assert_eq!(plain_decimal_us(t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn decimal_strings_are_exact() {
        assert_eq!(
            parse_decimal_us("1712195495505583.123"),
            Some(1_712_195_495_505_583_123)
        );
        assert_eq!(parse_decimal_us("12"), Some(12_000));
        assert_eq!(parse_decimal_us("-1.5"), Some(-1_500));
        assert_eq!(parse_decimal_us("0.0004"), Some(0));
        assert_eq!(parse_decimal_us("1e3"), Some(1_000_000));
    }
}
