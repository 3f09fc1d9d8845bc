//! Black-box tests of `bottleneck-trace`: every sample trace end to end, hand-worked synthetic
//! traces for each tolerance of the reader, cross-rank matching, bad input, and a property test
//! that the reader never panics on mutated input.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bottleneck_trace::{analyse_paths, analyse_reader, Compat, Options, TraceError, TraceReport};
use proptest::prelude::*;

const TRACES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/traces");

fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(TRACES)
        .expect("sample traces in ../shared/data/traces")
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .collect();
    v.sort();
    assert!(
        v.len() >= 22,
        "expected the 22 sample traces, found {}",
        v.len()
    );
    v
}

fn opts(compat: Compat) -> Options {
    Options { compat, top: 10 }
}

fn run_str(doc: &str) -> Result<TraceReport, TraceError> {
    analyse_reader(doc.as_bytes(), Path::new("mem.json"), &Options::default())
}

/// A trace document from event objects and extra top-level members.
fn doc(events: &[String], extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { ", " };
    format!("{{\"traceEvents\": [{}]{sep}{extra}}}", events.join(",\n"))
}

fn kernel(name: &str, ts: f64, dur: f64, corr: i64, stream: i64) -> String {
    format!(
        r#"{{"ph":"X","cat":"kernel","name":"{name}","pid":0,"tid":{stream},"ts":{ts},"dur":{dur},"args":{{"device":0,"stream":{stream},"correlation":{corr}}}}}"#
    )
}

fn launch(ts: f64, dur: f64, corr: i64) -> String {
    format!(
        r#"{{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":10,"tid":10,"ts":{ts},"dur":{dur},"args":{{"correlation":{corr}}}}}"#
    )
}

// ---------------------------------------------------------------- invariants on every sample

fn check_invariants(r: &TraceReport, compat: Compat, name: &str) {
    for k in &r.ranks {
        let e = &k.exact;
        let idle = e.span_ns - e.busy_ns;
        assert!(
            e.span_ns >= 0 && e.busy_ns >= 0,
            "{name}: negative span/busy"
        );
        assert!(idle >= 0, "{name}: busy exceeds span");
        assert_eq!(
            e.breakdown_ns.iter().sum::<i64>(),
            e.busy_ns,
            "{name}: breakdown"
        );
        assert_eq!(
            e.idle_causes_ns.iter().sum::<i64>(),
            idle,
            "{name}: idle causes"
        );
        if compat == Compat::Native {
            assert!(e.breakdown_ns.iter().all(|&x| x >= 0), "{name}: {e:?}");
            assert!(e.idle_causes_ns.iter().all(|&x| x >= 0), "{name}: {e:?}");
        }
        // The seconds are the ns figures converted, and add up to rounding.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(1.0);
        assert!(close(k.gpu_busy_s + k.idle_s, k.span_s), "{name}");
        let b = &k.breakdown;
        let parts = b.computation_s + b.communication_s + b.memory_s + b.other_s;
        assert!(close(parts, k.gpu_busy_s), "{name}");
        let c = &k.idle_causes;
        let causes =
            c.launch_bound_s + c.data_loader_s + c.host_sync_s + c.stream_wait_s + c.other_s;
        assert!(close(causes, k.idle_s), "{name}");
        if let Some(f) = k.comm_overlap_fraction {
            assert!((0.0..=1.0).contains(&f), "{name}: overlap {f}");
        }
        assert!(k.exposed_communication_s >= 0.0 || compat == Compat::Hta);
        let shares: f64 = k.classes.iter().map(|c| c.share).sum();
        assert!(
            k.classes.is_empty()
                || (shares - 1.0).abs() < 1e-9
                || k.classes.iter().all(|c| c.time_s == 0.0),
            "{name}: {shares}"
        );
        for it in &k.iterations {
            assert!(it.gpu_busy_s >= 0.0 && it.duration_s >= 0.0, "{name}");
        }
    }
}

#[test]
fn every_sample_trace_holds_the_invariants() {
    for p in samples() {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        for compat in [Compat::Native, Compat::Hta] {
            let r = analyse_paths(std::slice::from_ref(&p), &opts(compat))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.schema, "bottleneck.trace/1");
            assert_eq!(r.ranks.len(), 1);
            check_invariants(&r, compat, &name);
        }
    }
}

#[test]
fn sample_traces_have_the_documented_features() {
    let one = |f: &str| {
        analyse_paths(&[Path::new(TRACES).join(f)], &Options::default())
            .unwrap()
            .ranks
            .remove(0)
    };
    // CUDA graph: one cudaGraphLaunch correlation runs many kernels.
    assert!(
        one("tracelens-vllm-decode-cudagraph.json.gz")
            .launches
            .multi_op_launches
            >= 1
    );
    // AMD names: Tensile GEMMs (Cijk_) are GEMMs, RCCL kernels are communication.
    let mi300 = one("tracelens-mi300-resnet-act-checkpoint-rank0of8.json.gz");
    assert!(mi300.collectives.iter().map(|c| c.count).sum::<u64>() > 0);
    let amd = one("tracelens-mi300-qwen1.5-0.5b-inference.json.gz");
    assert!(amd
        .classes
        .iter()
        .any(|c| c.class == bottleneck_trace::classify::KernelClass::Gemm && c.share > 0.1));
    // Memory timeline from [memory] events.
    let h100 = one("tracelens-h100-qwen1.5-0.5b-inference.json.gz");
    assert!(!h100.memory.is_empty() && h100.memory[0].peak_allocated_bytes > 0);
    // Legacy categories (Kernel/Runtime) and string tids ("stream 7").
    let legacy = one("hta-legacy-categories-inference.json.gz");
    assert!(legacy.launches.linked > 0 && legacy.gpu_busy_s > 0.0);
    let k21 = one("kineto-resnet50-dataloader-workers4.json.gz");
    assert!(k21.launches.linked > 1000 && k21.iterations.len() >= 2);
    // Profiler steps and NCCL metadata.
    let nccl = one("hta-nccl_data-rank0of2-a100.json.gz");
    assert!(nccl.iterations.len() >= 2);
    assert!(nccl.collectives.iter().any(|c| c.bytes > 0));
    // CPU-only traces analyse with a warning, not an error.
    let cpu = one("hta-cpu-only-rank34of300.json.gz");
    assert_eq!(cpu.rank, 34);
    assert_eq!(cpu.warnings.by_kind.get("no_gpu_activity"), Some(&1));
}

// ------------------------------------------------------------------------------ snapshots

fn snapshot_of(file: &str, compat: Compat) -> TraceReport {
    let full = Path::new(TRACES).join(file);
    let mut r = analyse_paths(std::slice::from_ref(&full), &opts(compat)).unwrap();
    // Paths depend on where the checkout lies: keep only the file name.
    let full = full.display().to_string();
    let local = |s: &mut String| *s = s.replace(&full, file);
    for k in &mut r.ranks {
        file.clone_into(&mut k.file);
        k.warnings.examples.iter_mut().for_each(local);
    }
    r.warnings.examples.iter_mut().for_each(local);
    r
}

#[test]
fn snapshot_legacy_categories() {
    insta::assert_json_snapshot!(snapshot_of(
        "hta-legacy-categories-inference.json.gz",
        Compat::Native
    ));
}

#[test]
fn snapshot_amd_mi250() {
    insta::assert_json_snapshot!(snapshot_of(
        "hta-amd-mi250-toy-train.json.gz",
        Compat::Native
    ));
}

#[test]
fn snapshot_triton_hta() {
    insta::assert_json_snapshot!(snapshot_of("hta-triton-example-a100.json.gz", Compat::Hta));
}

// ---------------------------------------------------------------- hand-worked synthetic traces

#[test]
fn idle_causes_by_hand() {
    // Kernel A [0,10) µs. The host syncs [10,12), then launches B at 15; B runs [20,30).
    // Gap [10,20): host sync 2, launch-bound 15-10-2 = 3, launch latency (other) 5.
    // Kernel C was launched at 1 but waits for an event until 40: gap [30,40) is stream wait.
    let ev = vec![
        kernel("ampere_sgemm_128x64_tn", 0.0, 10.0, 1, 7),
        launch(-3.0, 2.0, 1),
        r#"{"ph":"X","cat":"cuda_runtime","name":"cudaDeviceSynchronize","pid":10,"tid":10,"ts":10,"dur":2,"args":{"correlation":9}}"#.to_owned(),
        launch(15.0, 1.0, 2),
        kernel("vectorized_elementwise_kernel", 20.0, 10.0, 2, 7),
        launch(1.0, 1.0, 3),
        kernel("reduce_kernel", 40.0, 5.0, 3, 8),
    ];
    let r = run_str(&doc(&ev, "")).unwrap();
    let k = &r.ranks[0];
    assert_eq!(k.exact.span_ns, 45_000);
    assert_eq!(k.exact.busy_ns, 25_000);
    assert_eq!(k.exact.idle_causes_ns, [3_000, 0, 2_000, 10_000, 5_000]);
    assert_eq!(k.launches.linked, 3);
}

#[test]
fn data_loader_wait_is_its_own_cause() {
    let ev = vec![
        kernel("k1", 0.0, 10.0, 1, 7),
        launch(-2.0, 1.0, 1),
        r#"{"ph":"X","cat":"cpu_op","name":"enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__","pid":10,"tid":10,"ts":12,"dur":6}"#.to_owned(),
        launch(19.0, 1.0, 2),
        kernel("k2", 20.0, 10.0, 2, 7),
    ];
    let k = &run_str(&doc(&ev, "")).unwrap().ranks[0];
    // Gap [10,20): data loader 6; launch-bound 19-10-6 = 3; latency 1.
    assert_eq!(k.exact.idle_causes_ns, [3_000, 6_000, 0, 0, 1_000]);
}

#[test]
fn string_times_base_time_and_metadata_after_events() {
    // ts/dur as strings (exact to the ns), pid/tid as strings, distributedInfo and
    // computeProperties after traceEvents, displayTimeUnit (display only).
    let ev = vec![
        r#"{"ph":"X","cat":"kernel","name":"k","pid":"0","tid":"stream 7","ts":"1000.0005","dur":"2.0005","args":{"correlation":1}}"#.to_owned(),
        r#"{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":"10","tid":"10","ts":"999","dur":"0.5","args":{"correlation":"1"}}"#.to_owned(),
    ];
    let d = doc(
        &ev,
        r#""distributedInfo": {"rank": 3, "world_size": 4}, "computeProperties": [{"name": "AMD Instinct MI300X"}], "displayTimeUnit": "ns", "baseTimeNanoseconds": 1700000000000000000"#,
    );
    let k = &run_str(&d).unwrap().ranks[0];
    assert_eq!(k.rank, 3);
    assert_eq!(k.world_size, Some(4));
    assert_eq!(k.gpu.as_deref(), Some("AMD Instinct MI300X"));
    assert_eq!(k.exact.span_ns, 2_001); // "2.0005" µs → 2000.5 ns → 2001 ns (half up)
    assert_eq!(k.launches.linked, 1);
    assert!(k.warnings.total == 0, "{:?}", k.warnings);
}

#[test]
fn cuda_graph_launch_links_many_kernels_and_dangling_flows_are_harmless() {
    let ev = vec![
        r#"{"ph":"X","cat":"cuda_runtime","name":"cudaGraphLaunch","pid":10,"tid":10,"ts":0,"dur":5,"args":{"correlation":7}}"#.to_owned(),
        kernel("k1", 10.0, 1.0, 7, 7),
        kernel("k2", 11.0, 1.0, 7, 7),
        kernel("k3", 12.0, 1.0, 7, 7),
        // A flow whose other end is missing, and one kernel without a launch record.
        r#"{"ph":"s","id":99,"pid":10,"tid":10,"ts":1,"cat":"ac2g","name":"ac2g"}"#.to_owned(),
        kernel("k4", 20.0, 1.0, 123, 7),
    ];
    let k = &run_str(&doc(&ev, "")).unwrap().ranks[0];
    assert_eq!(k.launches.linked, 3);
    assert_eq!(k.launches.multi_op_launches, 1);
    assert_eq!(k.launches.unlinked, 1);
    assert_eq!(k.warnings.by_kind.get("unlinked_gpu_ops"), Some(&1));
}

#[test]
fn legacy_categories_are_read() {
    let ev = vec![
        r#"{"ph":"X","cat":"Kernel","name":"volta_sgemm_128x64_nn","pid":0,"tid":"stream 7","ts":100,"dur":50,"args":{"correlation":1,"device":0,"stream":7}}"#.to_owned(),
        r#"{"ph":"X","cat":"Runtime","name":"cudaLaunchKernel","pid":1,"tid":1,"ts":90,"dur":5,"args":{"correlation":1}}"#.to_owned(),
        r#"{"ph":"X","cat":"Operator","name":"ProfilerStep#3","pid":1,"tid":1,"ts":80,"dur":100}"#.to_owned(),
        r#"{"ph":"X","cat":"Memcpy","name":"Memcpy HtoD (Pageable -> Device)","pid":0,"tid":"stream 7","ts":160,"dur":10,"args":{"correlation":2,"device":0,"stream":7}}"#.to_owned(),
        r#"{"ph":"X","cat":"Runtime","name":"cudaMemcpyAsync","pid":1,"tid":1,"ts":150,"dur":5,"args":{"correlation":2}}"#.to_owned(),
        r#"{"ph":"s","cat":"async","id":1,"name":"launch","pid":1,"tid":1,"ts":90}"#.to_owned(),
    ];
    let k = &run_str(&doc(&ev, "")).unwrap().ranks[0];
    assert_eq!(k.exact.breakdown_ns, [50_000, 0, 10_000, 0]);
    assert_eq!(k.iterations.len(), 1);
    assert_eq!(k.iterations[0].step, 3);
    assert_eq!(k.warnings.total, 1); // rank_missing only
}

#[test]
fn communication_overlap_by_hand() {
    // NCCL [0,100), GEMM [50,150): half the communication is covered; exposed 50.
    let ev = vec![
        kernel("ncclDevKernel_AllReduce_Sum_f32_RING_LL", 0.0, 100.0, 1, 20),
        kernel("sm90_xmma_gemm_bf16", 50.0, 100.0, 2, 7),
    ];
    let k = &run_str(&doc(&ev, "")).unwrap().ranks[0];
    assert_eq!(k.comm_overlap_fraction, Some(0.5));
    assert_eq!(k.exact.breakdown_ns, [100_000, 50_000, 0, 0]);
    assert!((k.exposed_communication_s - 50e-6).abs() < 1e-15);
}

// --------------------------------------------------------------------------- multi-rank

#[test]
fn the_sampled_pair_is_matched_across_ranks() {
    let files = [
        Path::new(TRACES).join("hta-sampled-rank0of128.json.gz"),
        Path::new(TRACES).join("hta-sampled-rank1of128.json.gz"),
    ];
    let r = analyse_paths(&files, &Options::default()).unwrap();
    assert_eq!(r.ranks.iter().map(|k| k.rank).collect::<Vec<_>>(), [0, 1]);
    let c = r.collectives.expect("two ranks of one job are matched");
    assert_eq!(c.ranks, 2);
    // Each rank ran ten NCCL SendRecv kernels; the trace has no sequence numbers.
    assert_eq!(
        (c.matched, c.unmatched, c.matched_by),
        (10, 0, "ordinal"),
        "{c:?}"
    );
    assert!(c.max_start_skew_s >= c.mean_start_skew_s && c.mean_start_skew_s >= 0.0);
    assert!(!c.groups.is_empty());
}

fn coll_kernel(rank_delay: f64, seq: i64, ts: f64, pg: &str) -> String {
    format!(
        r#"{{"ph":"X","cat":"kernel","name":"ncclDevKernel_AllReduce_Sum_bf16_RING_LL","pid":0,"tid":20,"ts":{},"dur":100,"args":{{"device":0,"stream":20,"correlation":{seq},"Collective name":"allreduce","Process Group Name":"{pg}","Seq":{seq},"In msg nelems":1048576,"dtype":"BFloat16","Group size":2}}}}"#,
        ts + rank_delay
    )
}

fn write_rank(dir: &Path, rank: i64, world: i64, delay: f64) -> PathBuf {
    let ev: Vec<String> = (0..5)
        .map(|s| coll_kernel(delay, s, 1000.0 * s as f64, "0"))
        .collect();
    let d = doc(
        &ev,
        &format!(
            r#""distributedInfo": {{"rank": {rank}, "world_size": {world}}}, "baseTimeNanoseconds": 0"#
        ),
    );
    let p = dir.join(format!("rank{rank}-{world}-{delay}.json"));
    std::fs::write(&p, d).unwrap();
    p
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bn-trace-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn synthetic_pair_finds_the_late_rank() {
    let d = tmpdir("pair");
    let files = [write_rank(&d, 0, 2, 0.0), write_rank(&d, 1, 2, 30.0)];
    let r = analyse_paths(&files, &Options::default()).unwrap();
    let c = r.collectives.unwrap();
    assert_eq!(c.matched_by, "seq");
    assert_eq!((c.matched, c.unmatched), (5, 0));
    assert!((c.max_start_skew_s - 30e-6).abs() < 1e-12);
    assert!((c.mean_end_skew_s - 30e-6).abs() < 1e-12);
    assert_eq!(r.stragglers.len(), 1);
    assert_eq!(r.stragglers[0].rank, Some(1));
    assert!(r.stragglers[0].evidence.contains("5 of 5"));
    // The same folder given as a folder.
    let r2 = analyse_paths(std::slice::from_ref(&d), &Options::default()).unwrap();
    assert_eq!(r2.files, 2);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn duplicate_and_mixed_ranks_are_warned_not_matched() {
    let d = tmpdir("dup");
    let files = [write_rank(&d, 0, 2, 0.0), write_rank(&d, 0, 2, 5.0)];
    let r = analyse_paths(&files, &Options::default()).unwrap();
    assert!(r.collectives.is_none());
    assert_eq!(r.warnings.by_kind.get("duplicate_rank"), Some(&1));
    let files = [write_rank(&d, 0, 2, 0.0), write_rank(&d, 1, 8, 0.0)];
    let r = analyse_paths(&files, &Options::default()).unwrap();
    assert!(r.collectives.is_none());
    assert_eq!(r.warnings.by_kind.get("mixed_jobs"), Some(&1));
    std::fs::remove_dir_all(d).unwrap();
}

// ------------------------------------------------------------------------------ bad input

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn truncated_gzip_analyses_what_is_complete_or_fails_cleanly() {
    let d = tmpdir("gz");
    let full = std::fs::read(Path::new(TRACES).join("hta-rank0of16-a100.json.gz")).unwrap();
    let cut = d.join("cut.json.gz");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let r = analyse_paths(std::slice::from_ref(&cut), &Options::default()).unwrap();
    assert_eq!(r.warnings.by_kind.get("truncated"), Some(&1));
    assert!(r.ranks[0].events > 1000);
    // Cut inside the gzip header: nothing to analyse.
    std::fs::write(&cut, &full[..6]).unwrap();
    let e = analyse_paths(std::slice::from_ref(&cut), &Options::default()).unwrap_err();
    assert!(matches!(e, TraceError::Truncated { .. }), "{e}");
    // Corrupt deflate data is an error, not a wrong answer.
    let mut bad = gz(doc(&[kernel("k", 0.0, 1.0, 1, 7)], "").as_bytes());
    let n = bad.len();
    for b in &mut bad[12..n - 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&cut, &bad).unwrap();
    assert!(analyse_paths(std::slice::from_ref(&cut), &Options::default()).is_err());
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn invalid_json_names_the_byte_offset() {
    let good = kernel("k", 0.0, 1.0, 1, 7);
    let text = format!("{{\"traceEvents\": [{good}, {{\"ph\": \"X\", \"ts\": 1,, \"dur\": 2}}]}}");
    let at = text.find(",,").unwrap() as u64 + 1;
    match run_str(&text).unwrap_err() {
        TraceError::Json { offset, .. } => assert_eq!(offset, at, "{text}"),
        e => panic!("{e}"),
    }
    // Not JSON at all.
    assert!(matches!(
        run_str("hello").unwrap_err(),
        TraceError::Json { offset: 0, .. }
    ));
    // Truncated after complete events: analysed, with a warning.
    let t = doc(&[good.clone(), good.clone()], "");
    let r = run_str(&t[..t.len() - 10]).unwrap();
    assert_eq!(r.warnings.by_kind.get("truncated"), Some(&1));
    // Truncated before any event: an error with the offset.
    assert!(matches!(
        run_str("{\"traceEvents\": [{\"ph\"").unwrap_err(),
        TraceError::Truncated { .. }
    ));
}

#[test]
fn negative_durations_and_unknown_categories_are_counted() {
    let ev = vec![
        kernel("k", 0.0, 10.0, 1, 7),
        kernel("neg", 5.0, -3.0, 2, 7),
        r#"{"ph":"X","cat":"mystery_cat","name":"x","pid":0,"tid":0,"ts":1,"dur":1}"#.to_owned(),
        r#"{"ph":"X","cat":"kernel","name":"bad","ts":{"a":1},"dur":1}"#.to_owned(),
    ];
    let r = run_str(&doc(&ev, "")).unwrap();
    let w = &r.warnings.by_kind;
    assert_eq!(w.get("negative_duration"), Some(&1));
    assert_eq!(w.get("unknown_category"), Some(&1));
    assert_eq!(w.get("missing_timestamp"), Some(&1));
    assert_eq!(r.ranks[0].exact.busy_ns, 10_000);
}

#[test]
fn empty_traces() {
    // An empty event list analyses to zeros with a warning; no event list is an error.
    let r = run_str(r#"{"traceEvents": []}"#).unwrap();
    assert_eq!(r.ranks[0].span_s, 0.0);
    assert_eq!(r.warnings.by_kind.get("no_gpu_activity"), Some(&1));
    assert_eq!(r.bottleneck.resource, "idle");
    assert!(matches!(
        run_str(r#"{"schemaVersion": 1}"#).unwrap_err(),
        TraceError::Empty { .. }
    ));
    assert!(matches!(
        run_str("").unwrap_err(),
        TraceError::Truncated { .. }
    ));
    // A bare array of events (the Chrome trace array form) is accepted.
    let r = run_str(&format!("[{}]", kernel("k", 0.0, 4.0, 1, 7))).unwrap();
    assert_eq!(r.ranks[0].exact.busy_ns, 4_000);
    // A folder without traces.
    let d = tmpdir("empty");
    assert!(matches!(
        analyse_paths(std::slice::from_ref(&d), &Options::default()).unwrap_err(),
        TraceError::NoFiles(_)
    ));
    std::fs::remove_dir_all(d).unwrap();
}

// ---------------------------------------------------------------------- reader never panics

fn seed_doc() -> String {
    let ev = vec![
        kernel("ncclDevKernel_AllReduce", 0.0, 10.5, 1, 20),
        kernel("ampere_sgemm", 5.25, 10.0, 2, 7),
        launch(-3.0, 2.0, 1),
        launch(1.0, 1.0, 2),
        r#"{"ph":"X","cat":"cpu_op","name":"ProfilerStep#1","pid":10,"tid":10,"ts":-5,"dur":30}"#
            .to_owned(),
        r#"{"ph":"i","cat":"cpu_instant_event","name":"[memory]","pid":10,"tid":10,"ts":2,"args":{"Total Allocated":1024,"Total Reserved":2048,"Device Id":0}}"#.to_owned(),
        r#"{"ph":"X","cat":"kernel","name":"k","pid":"0","tid":"stream 7","ts":"12.5","dur":"1","args":{"correlation":"2","Collective name":"allreduce","Seq":"1"}}"#.to_owned(),
    ];
    doc(&ev, r#""distributedInfo": {"rank": 0, "world_size": 2}"#)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reader_never_panics_on_mutations(
        edits in proptest::collection::vec((0usize..4, any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
        hta in any::<bool>(),
    ) {
        let mut b = seed_doc().into_bytes();
        for (kind, pos, byte) in edits {
            let i = pos % (b.len() + 1);
            match kind {
                0 if i < b.len() => b[i] = byte,
                1 => b.insert(i, byte),
                2 if i < b.len() => { b.remove(i); }
                _ => {
                    let j = (i + 1 + byte as usize).min(b.len());
                    let dup = b[i.min(j)..j].to_vec();
                    b.splice(i..i, dup);
                }
            }
        }
        if cut % 3 == 0 {
            b.truncate(cut % (b.len() + 1));
        }
        let o = opts(if hta { Compat::Hta } else { Compat::Native });
        if let Ok(r) = analyse_reader(&b[..], Path::new("fuzz.json"), &o) {
            check_invariants(&r, o.compat, "mutated");
        }
        // The same bytes gzipped go through the gzip path.
        let _ = analyse_reader(flate2::read::MultiGzDecoder::new(&gz(&b)[..]), Path::new("f.gz"), &o);
    }
}
