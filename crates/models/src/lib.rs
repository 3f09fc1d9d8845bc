//! Model front-ends: Hugging Face `config.json` parsing and the built-in model catalog.
//!
//! [`resolve`] turns what a user types after `--model` into a
//! [`ModelArch`](bottleneck_core::arch::ModelArch): a built-in name (see [`catalog`]), a path to a
//! `config.json`, or a folder holding one. [`from_config_json`] parses config text directly.
//! Families read: llama (2, 3, 3.1, 3.2, 3.3), mistral, mixtral, qwen2/2.5, qwen2_moe, qwen3,
//! qwen3_moe, gemma, gemma2, gemma3 (text_config), phi3, gpt2, gpt_neox, gptj, falcon, opt,
//! bloom, deepseek_v2/v3, nemotron, grok-1 and dbrx; any other `model_type` with the standard
//! fields goes through a generic llama-style path that records its assumptions.
//!
//! Built-ins are embedded at build time: resolving one does no file IO.

mod catalog;
mod error;
mod fields;
mod parse;

use std::path::Path;

use bottleneck_core::arch::ModelArch;

pub use catalog::{catalog, embedded_files, find, names, CatalogEntry};
pub use error::ModelError;
pub use parse::{from_config_json, FAMILIES};

/// A built-in model name (case-insensitive, separator-tolerant, aliases and Hugging Face repo
/// ids accepted), a path to a `config.json`, or a folder holding one.
///
/// An unknown name fails with the nearest catalog names.
pub fn resolve(spec: &str) -> Result<ModelArch, ModelError> {
    let trimmed = spec.trim();
    let path = Path::new(trimmed);
    if !trimmed.is_empty() && path.exists() {
        return from_path(path);
    }
    if let Some(arch) = catalog::builtin_arch(trimmed) {
        return Ok(arch);
    }
    let looks_like_path = path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("json"))
        || trimmed.starts_with(['.', '/', '~', '\\'])
        || trimmed.contains('\\');
    if looks_like_path {
        return Err(ModelError::Io {
            path: trimmed.to_string(),
            message: "no such file or folder".into(),
        });
    }
    let query = catalog::normalize(trimmed);
    let suggestions =
        bottleneck_core::catalog::nearest(&query, catalog().iter().map(|e| e.name.as_str()), 3)
            .into_iter()
            .map(str::to_string)
            .collect();
    Err(ModelError::UnknownModel {
        spec: spec.to_string(),
        suggestions,
    })
}

/// Reads a `config.json` file, or the `config.json` inside a folder. The model is named after
/// the folder (or the file stem when the file is not called `config.json`).
pub fn from_path(path: &Path) -> Result<ModelArch, ModelError> {
    let file = if path.is_dir() {
        let f = path.join("config.json");
        if !f.is_file() {
            return Err(ModelError::NoConfig {
                path: path.display().to_string(),
            });
        }
        f
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| ModelError::Io {
        path: file.display().to_string(),
        message: e.to_string(),
    })?;
    let name = model_name(&file);
    from_config_json(&name, &text)
}

fn model_name(file: &Path) -> String {
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    if stem == "config" {
        if let Some(dir) = file
            .canonicalize()
            .ok()
            .as_deref()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .and_then(|s| s.to_str())
        {
            return dir.to_string();
        }
    }
    stem.to_string()
}
