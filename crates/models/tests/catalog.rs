//! The built-in catalog against published parameter counts and KV-cache sizes.

use bottleneck_core::Precision;
use bottleneck_models::{catalog, embedded_files, resolve, CatalogEntry};

/// `params()` compared the way the published figure was counted.
fn comparable_total(e: &CatalogEntry) -> u64 {
    let head = if e.head_counted_twice && e.arch.tie_embeddings {
        e.arch.vocab * e.arch.hidden
    } else {
        0
    };
    e.arch.params() + head
}

fn comparable_active(e: &CatalogEntry) -> u64 {
    let embed = if e.active_excludes_embedding {
        e.arch.vocab * e.arch.hidden
    } else {
        0
    };
    e.arch.active_params() - embed
}

fn rel(a: u64, b: u64) -> f64 {
    (a as f64 - b as f64).abs() / b as f64
}

#[test]
fn every_builtin_matches_its_published_total_within_half_a_percent() {
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for e in catalog() {
        let ours = comparable_total(e);
        let err = rel(ours, e.published_params);
        report.push(format!(
            "{:<20} ours {:>16} published {:>16} error {:.3}%",
            e.name,
            ours,
            e.published_params,
            err * 100.0
        ));
        if err > 0.005 {
            failures.push(format!(
                "{}: params {} vs published {} ({:.3}% off; source: {})",
                e.name,
                ours,
                e.published_params,
                err * 100.0,
                e.params_source
            ));
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn moe_active_params_match_published_figures() {
    let mut checked = 0;
    for e in catalog() {
        let Some(published) = e.published_active_params else {
            continue;
        };
        assert!(
            e.arch.moe.is_some(),
            "{} has an active count but no MoE",
            e.name
        );
        let ours = comparable_active(e);
        // Published to a few significant digits: allow one unit of the last digit, at least 0.5%.
        let unit = e
            .active_unit
            .expect("active_unit goes with published_active_params");
        let tol = (published as f64 * 0.005).max(unit as f64);
        println!(
            "{:<20} active ours {ours:>15} published {published:>15}",
            e.name
        );
        assert!(
            (ours as f64 - published as f64).abs() <= tol,
            "{}: active {} vs published {} (source: {})",
            e.name,
            ours,
            published,
            e.params_source
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} MoE models checked");
}

#[test]
fn the_required_names_are_all_built_in() {
    for name in [
        "llama-2-7b",
        "llama-2-13b",
        "llama-2-70b",
        "llama-3-8b",
        "llama-3-70b",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "mistral-7b",
        "mixtral-8x7b",
        "mixtral-8x22b",
        "qwen2.5-7b",
        "qwen2.5-72b",
        "qwen3-30b-a3b",
        "qwen3-235b-a22b",
        "gemma-2-9b",
        "gemma-2-27b",
        "phi-3-mini",
        "gpt-j-6b",
        "falcon-180b",
        "gpt3-175b",
        "nemotron-4-340b",
        "grok-1",
        "deepseek-v2-lite",
        "deepseek-v3",
        "llama-3.2-1b",
        "llama-3.2-3b",
        "llama-3.3-70b",
        "qwen2.5-14b",
        "qwen2.5-32b",
        "gemma-3-27b",
        "opt-66b",
        "bloom-176b",
        "gpt2",
        "gpt-neox-20b",
        "yi-34b",
        "deepseek-v2",
    ] {
        let arch = resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(arch.name, name);
    }
}

#[test]
fn index_and_embedded_files_agree() {
    let mut files: Vec<&str> = embedded_files().collect();
    let mut names: Vec<&str> = catalog().iter().map(|e| e.name.as_str()).collect();
    files.sort_unstable();
    names.sort_unstable();
    assert_eq!(files, names);
    for e in catalog() {
        assert!(!e.params_source.is_empty(), "{} has no source", e.name);
        assert_eq!(e.arch.name, e.name);
    }
}

#[test]
fn kv_bytes_per_token_match_the_published_arithmetic() {
    let kv = |name: &str| resolve(name).unwrap().kv_bytes_per_token(Precision::Bf16);
    // Claims table row 6: 61·(512+64)·2; 2·126·8·128·2; 2·80·8·128·2. Row 10: Yi-34B.
    assert_eq!(kv("deepseek-v3"), 70_272.0);
    assert_eq!(kv("llama-3.1-405b"), 516_096.0);
    assert_eq!(kv("qwen2.5-72b"), 327_680.0);
    assert_eq!(kv("yi-34b"), 245_760.0);
    // MHA, GQA and MQA by hand: Llama-2-7B 2·32·32·128·2; Llama-3.1-8B 2·32·8·128·2;
    // Falcon-180B 2·80·8·64·2.
    assert_eq!(kv("llama-2-7b"), 524_288.0);
    assert_eq!(kv("llama-3.1-8b"), 131_072.0);
    assert_eq!(kv("falcon-180b"), 163_840.0);
}
