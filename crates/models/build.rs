//! Embeds every `catalog/models/*.json` and the catalog index at build time.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"))
        .join("../../catalog/models");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut names: Vec<_> = fs::read_dir(&root)
        .expect("catalog/models exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    let mut src = String::from(
        "/// (file stem, config.json text) of every built-in model.\npub(crate) static MODEL_FILES: &[(&str, &str)] = &[\n",
    );
    for p in &names {
        println!("cargo:rerun-if-changed={}", p.display());
        let stem = p.file_stem().and_then(|s| s.to_str()).expect("utf-8 name");
        let abs = fs::canonicalize(p).expect("file exists");
        writeln!(
            src,
            "    ({stem:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .expect("write to string");
    }
    src.push_str("];\n");
    let index_path = root.join("index.toml");
    println!("cargo:rerun-if-changed={}", index_path.display());
    let text = fs::read_to_string(&index_path).expect("catalog/models/index.toml exists");
    src.push_str(&index_rows(&text));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets this")).join("model_files.rs");
    fs::write(out, src).expect("write generated file");
}

/// The index as a static Rust array, so that resolving a built-in parses no TOML at run time.
fn index_rows(text: &str) -> String {
    const KEYS: [&str; 9] = [
        "name",
        "hf_repo",
        "published_params",
        "published_active_params",
        "active_unit",
        "params_source",
        "head_counted_twice",
        "active_excludes_embedding",
        "aliases",
    ];
    let doc: toml::Table = toml::from_str(text).expect("catalog/models/index.toml is valid TOML");
    let rows = doc
        .get("model")
        .and_then(toml::Value::as_array)
        .expect("index.toml has [[model]] tables");
    let mut out = String::from(
        "/// The catalog index (names, repositories, published counts), from index.toml.\npub(crate) static INDEX: &[IndexRow] = &[\n",
    );
    for row in rows {
        let t = row.as_table().expect("[[model]] is a table");
        for k in t.keys() {
            assert!(KEYS.contains(&k.as_str()), "index.toml: unknown key {k}");
        }
        let s = |k: &str| {
            t.get(k)
                .and_then(toml::Value::as_str)
                .unwrap_or_else(|| panic!("index.toml: {k} missing or not a string"))
                .to_string()
        };
        let n = |k: &str| {
            t.get(k).map(|v| {
                let i = v
                    .as_integer()
                    .unwrap_or_else(|| panic!("index.toml: {k} must be an integer"));
                u64::try_from(i).unwrap_or_else(|_| panic!("index.toml: {k} must be positive"))
            })
        };
        let b = |k: &str| t.get(k).and_then(toml::Value::as_bool).unwrap_or(false);
        let aliases: Vec<String> = t
            .get("aliases")
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().expect("aliases are strings").to_string())
                    .collect()
            })
            .unwrap_or_default();
        writeln!(
            out,
            "    IndexRow {{ name: {:?}, hf_repo: {:?}, published_params: {}, published_active_params: {:?}, active_unit: {:?}, params_source: {:?}, head_counted_twice: {}, active_excludes_embedding: {}, aliases: &{:?} }},",
            s("name"),
            s("hf_repo"),
            n("published_params").expect("index.toml: published_params missing"),
            n("published_active_params"),
            n("active_unit"),
            s("params_source"),
            b("head_counted_twice"),
            b("active_excludes_embedding"),
            aliases,
        )
        .expect("write to string");
    }
    out.push_str("];\n");
    out
}
