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
    let index =
        fs::canonicalize(root.join("index.toml")).expect("catalog/models/index.toml exists");
    println!("cargo:rerun-if-changed={}", index.display());
    writeln!(
        src,
        "/// The catalog index (names, repositories, published counts).\npub(crate) static INDEX_TOML: &str = include_str!({:?});",
        index.display().to_string()
    )
    .expect("write to string");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets this")).join("model_files.rs");
    fs::write(out, src).expect("write generated file");
}
