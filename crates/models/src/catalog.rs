//! The built-in model catalog: published config.json files embedded at build time, with an
//! index of names, repositories and published parameter counts.

use std::sync::OnceLock;

use bottleneck_core::arch::ModelArch;
use serde::Deserialize;

use crate::parse::from_config_json;

include!(concat!(env!("OUT_DIR"), "/model_files.rs"));

/// One built-in model.
#[derive(Clone, Debug)]
pub struct CatalogEntry {
    /// Catalog name (lower case), e.g. `llama-3.1-8b`.
    pub name: String,
    /// Hugging Face repository id of the published config (`-` when there is none).
    pub hf_repo: String,
    /// Published total parameters.
    pub published_params: u64,
    /// Published parameters active per token (MoE models), when published.
    pub published_active_params: Option<u64>,
    /// The unit of the last digit the active figure was published to ("3.3B" → 10⁸).
    pub active_unit: Option<u64>,
    /// Where the published figures come from.
    pub params_source: String,
    /// The published total counts a tied LM head a second time (the checkpoint stores it).
    pub head_counted_twice: bool,
    /// The published active figure leaves out the input embedding table.
    pub active_excludes_embedding: bool,
    /// Other names [`crate::resolve`] accepts.
    pub aliases: Vec<String>,
    /// The embedded config.json text.
    pub config_json: &'static str,
    /// The parsed architecture.
    pub arch: ModelArch,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    model: Vec<IndexRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexRow {
    name: String,
    hf_repo: String,
    published_params: u64,
    published_active_params: Option<u64>,
    active_unit: Option<u64>,
    params_source: String,
    #[serde(default)]
    head_counted_twice: bool,
    #[serde(default)]
    active_excludes_embedding: bool,
    #[serde(default)]
    aliases: Vec<String>,
}

/// Every built-in model, parsed once, in index order.
///
/// # Panics
/// Only if the embedded catalog itself is broken, which the crate's tests rule out.
pub fn catalog() -> &'static [CatalogEntry] {
    static CATALOG: OnceLock<Vec<CatalogEntry>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let index: Index = toml::from_str(INDEX_TOML)
            .unwrap_or_else(|e| panic!("built-in catalog/models/index.toml is invalid: {e}"));
        index
            .model
            .into_iter()
            .map(|row| {
                let text = MODEL_FILES
                    .iter()
                    .find(|(stem, _)| *stem == row.name)
                    .map_or_else(
                        || panic!("catalog/models/{}.json is missing", row.name),
                        |(_, text)| *text,
                    );
                let arch = from_config_json(&row.name, text)
                    .unwrap_or_else(|e| panic!("built-in model {} is invalid: {e}", row.name));
                CatalogEntry {
                    name: row.name,
                    hf_repo: row.hf_repo,
                    published_params: row.published_params,
                    published_active_params: row.published_active_params,
                    active_unit: row.active_unit,
                    params_source: row.params_source,
                    head_counted_twice: row.head_counted_twice,
                    active_excludes_embedding: row.active_excludes_embedding,
                    aliases: row.aliases,
                    config_json: text,
                    arch,
                }
            })
            .collect()
    })
}

/// The stems of the embedded config files (for tests that check index and files agree).
pub fn embedded_files() -> impl Iterator<Item = &'static str> {
    MODEL_FILES.iter().map(|(stem, _)| *stem)
}

/// Lower case, `_` and spaces read as `-`.
pub(crate) fn normalize(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace(['_', ' '], "-")
}

/// Lower case with every separator (`-`, `_`, `.`, space) removed: `Llama3.1_8B` → `llama318b`.
pub(crate) fn loose(s: &str) -> String {
    s.trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .collect()
}

/// A built-in model by name, alias or Hugging Face repository id, tolerating case and
/// separator variants (`Llama_3.1-8B`, `llama3.1-8b`, `meta-llama/Llama-3.1-8B`).
pub fn find(spec: &str) -> Option<&'static CatalogEntry> {
    let all = catalog();
    let key = normalize(spec);
    if let Some(e) = all
        .iter()
        .find(|e| e.name == key || e.aliases.iter().any(|a| normalize(a) == key))
    {
        return Some(e);
    }
    if let Some(e) = all
        .iter()
        .find(|e| e.hf_repo != "-" && e.hf_repo.to_ascii_lowercase() == key)
    {
        return Some(e);
    }
    let lkey = loose(spec);
    let mut hits = all
        .iter()
        .filter(|e| loose(&e.name) == lkey || e.aliases.iter().any(|a| loose(a) == lkey));
    match (hits.next(), hits.next()) {
        (Some(e), None) => Some(e),
        _ => None,
    }
}
