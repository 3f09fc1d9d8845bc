//! Black-box tests of `bottleneck train` and `bottleneck search`: defaults, JSON keys of
//! SPEC §4, exit code 2 with one line on bad layouts, exit 0 with `fits: false`.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bottleneck"))
        .args(args)
        .output()
        .expect("run bottleneck");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("one JSON document")
}

#[test]
fn train_defaults_and_spec_keys() {
    let (code, out, _) = run(&["train"]);
    assert_eq!(code, 0);
    assert!(out.contains("step time") && out.contains("bottleneck:"));
    let v = json(&["train", "--json"]);
    assert_eq!(v["schema"], "bottleneck.train/1");
    for k in [
        "step_time_s",
        "tokens_per_s",
        "tflops_per_gpu",
        "mfu",
        "hfu",
        "what_if",
    ] {
        assert!(!v[k].is_null(), "missing {k}");
    }
    for k in [
        "weights_bytes",
        "gradients_bytes",
        "optimizer_bytes",
        "activation_bytes",
        "total_bytes_per_gpu",
        "capacity_bytes_per_gpu",
        "fits",
    ] {
        assert!(!v["memory"][k].is_null(), "missing memory.{k}");
    }
    for k in [
        "compute_s",
        "exposed_communication_s",
        "pipeline_bubble_s",
        "overhead_s",
    ] {
        assert!(!v["breakdown"][k].is_null(), "missing breakdown.{k}");
    }
    for c in v["communication"].as_array().expect("communication") {
        for k in ["collective", "group", "bytes", "time_s", "exposed_s"] {
            assert!(!c[k].is_null(), "missing communication[].{k}");
        }
    }
    assert!(v["bottleneck"]["resource"].is_string());
}

#[test]
fn search_spec_keys_and_agreement_with_train() {
    let v = json(&[
        "search",
        "--model",
        "llama-3.1-8b",
        "--gpus",
        "16",
        "--seq",
        "4096",
        "--global-batch",
        "64",
        "--top",
        "3",
        "--json",
    ]);
    assert_eq!(v["schema"], "bottleneck.search/1");
    assert!(
        v["evaluated"].as_u64().expect("evaluated") >= v["feasible"].as_u64().expect("feasible")
    );
    assert!(v["elapsed_s"].as_f64().expect("elapsed") >= 0.0);
    let top = v["top"].as_array().expect("top");
    assert_eq!(top.len(), 3);
    let t = &top[0];
    for k in [
        "parallel",
        "micro_batch",
        "zero",
        "recompute",
        "step_time_s",
        "mfu",
        "total_bytes_per_gpu",
        "bottleneck",
    ] {
        assert!(!t[k].is_null(), "missing top[].{k}");
    }
    // The same layout through `train` gives the same step time.
    let p = &t["parallel"];
    let s = |x: &serde_json::Value| x.to_string();
    let mut args = vec![
        "train".to_string(),
        "--model".into(),
        "llama-3.1-8b".into(),
        "--gpus".into(),
        "16".into(),
        "--seq".into(),
        "4096".into(),
        "--global-batch".into(),
        "64".into(),
        "--json".into(),
    ];
    for k in ["tp", "pp", "dp", "cp", "ep", "vpp"] {
        args.push(format!("--{k}"));
        args.push(s(&p[k]));
    }
    args.extend([
        "--micro-batch".into(),
        s(&t["micro_batch"]),
        "--zero".into(),
        s(&t["zero"]),
        "--recompute".into(),
        t["recompute"].as_str().expect("recompute").into(),
    ]);
    if p["sequence_parallel"] == false {
        args.push("--no-sp".into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let tr = json(&refs);
    assert_eq!(tr["step_time_s"], t["step_time_s"]);
}

#[test]
fn bad_layouts_exit_2_with_one_line_and_a_nearby_layout() {
    for args in [
        vec!["train", "--gpus", "16", "--tp", "8", "--pp", "4"],
        vec!["train", "--tp", "3"],
        vec!["train", "--pp", "64", "--gpus", "64"],
        vec!["train", "--global-batch", "100", "--micro-batch", "3"],
        vec!["train", "--model", "mixtral-8x7b", "--ep", "3"],
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty());
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("a valid layout nearby"), "{err}");
    }
    let (code, _, err) = run(&["train", "--recompute", "sometimes"]);
    assert_eq!(code, 2);
    assert!(err.contains("none, selective or full"), "{err}");
}

#[test]
fn not_fitting_is_exit_0_with_fits_false() {
    let v = json(&["train", "--model", "llama-3.1-405b", "--json"]);
    assert_eq!(v["memory"]["fits"], false);
    assert!(v["memory"]["overflow_bytes"].as_f64().expect("overflow") > 0.0);
    assert_eq!(v["bottleneck"]["resource"], "memory_capacity");
}
