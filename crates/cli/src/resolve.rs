//! Turning command-line names and paths into models, GPUs and precisions.

use std::path::Path;

use anyhow::Context as _;
use bottleneck_core::arch::ModelArch;
use bottleneck_core::{catalog, Hardware, Precision};

/// A built-in model name or a path to a `config.json` (or a folder holding one).
pub fn model(spec: &str) -> anyhow::Result<ModelArch> {
    Ok(bottleneck_models::resolve(spec)?)
}

/// A built-in GPU name or a path to a hardware TOML file.
pub fn gpu(spec: &str) -> anyhow::Result<Hardware> {
    let path = Path::new(spec);
    let toml_ext = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if toml_ext || path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read hardware file {spec}"))?;
        return Hardware::from_toml(&text).with_context(|| format!("hardware file {spec}"));
    }
    Ok(catalog::find_hardware(spec)?.clone())
}

/// The activation precision implied by a weight precision when none is given: FP8 and INT8
/// weights run W8A8 GEMMs; other weights keep 16-bit activations.
pub fn default_activations(weights: Precision) -> Precision {
    match weights {
        Precision::Fp8 | Precision::Int8 => weights,
        Precision::Fp16 => Precision::Fp16,
        _ => Precision::Bf16,
    }
}
