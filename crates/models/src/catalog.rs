//! The built-in model catalog: published config.json files embedded at build time, with an
//! index of names, repositories and published parameter counts.

use std::sync::OnceLock;

use bottleneck_core::arch::ModelArch;

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

/// One row of `catalog/models/index.toml`, turned into Rust by the build script.
pub(crate) struct IndexRow {
    name: &'static str,
    hf_repo: &'static str,
    published_params: u64,
    published_active_params: Option<u64>,
    active_unit: Option<u64>,
    params_source: &'static str,
    head_counted_twice: bool,
    active_excludes_embedding: bool,
    aliases: &'static [&'static str],
}

fn index() -> &'static [IndexRow] {
    INDEX
}

fn config_text(name: &str) -> &'static str {
    MODEL_FILES
        .iter()
        .find(|(stem, _)| *stem == name)
        .map_or_else(
            || panic!("catalog/models/{name}.json is missing"),
            |(_, text)| *text,
        )
}

fn parse_builtin(name: &str) -> ModelArch {
    from_config_json(name, config_text(name))
        .unwrap_or_else(|e| panic!("built-in model {name} is invalid: {e}"))
}

/// Every built-in model, parsed once, in index order.
///
/// # Panics
/// Only if the embedded catalog itself is broken, which the crate's tests rule out.
pub fn catalog() -> &'static [CatalogEntry] {
    static CATALOG: OnceLock<Vec<CatalogEntry>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        index()
            .iter()
            .map(|row| CatalogEntry {
                name: row.name.to_string(),
                hf_repo: row.hf_repo.to_string(),
                published_params: row.published_params,
                published_active_params: row.published_active_params,
                active_unit: row.active_unit,
                params_source: row.params_source.to_string(),
                head_counted_twice: row.head_counted_twice,
                active_excludes_embedding: row.active_excludes_embedding,
                aliases: row.aliases.iter().map(|a| (*a).to_string()).collect(),
                config_json: config_text(row.name),
                arch: parse_builtin(row.name),
            })
            .collect()
    })
}

/// The names of the built-in models, in index order (no config is parsed).
pub fn names() -> impl Iterator<Item = &'static str> {
    index().iter().map(|r| r.name)
}

/// The architecture of the built-in model `spec` names, parsing only that model's config.
pub(crate) fn builtin_arch(spec: &str) -> Option<ModelArch> {
    find_row(spec).map(|row| parse_builtin(row.name))
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
    let row = find_row(spec)?;
    catalog().iter().find(|e| e.name == row.name)
}

fn find_row(spec: &str) -> Option<&'static IndexRow> {
    let all = index();
    let key = normalize(spec);
    if let Some(r) = all
        .iter()
        .find(|r| r.name == key || r.aliases.iter().any(|a| normalize(a) == key))
    {
        return Some(r);
    }
    if let Some(r) = all
        .iter()
        .find(|r| r.hf_repo != "-" && r.hf_repo.to_ascii_lowercase() == key)
    {
        return Some(r);
    }
    let lkey = loose(spec);
    let mut hits = all
        .iter()
        .filter(|r| loose(r.name) == lkey || r.aliases.iter().any(|a| loose(a) == lkey));
    match (hits.next(), hits.next()) {
        (Some(r), None) => Some(r),
        _ => None,
    }
}
