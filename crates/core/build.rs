//! Embeds every file under `catalog/hardware/*.toml` at build time.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"))
        .join("../../catalog/hardware");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut names: Vec<_> = fs::read_dir(&root)
        .expect("catalog/hardware exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    let mut src = String::from("/// (file stem, TOML text) of every built-in hardware file.\npub static HARDWARE_FILES: &[(&str, &str)] = &[\n");
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
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets this")).join("hardware_files.rs");
    fs::write(out, src).expect("write generated file");
}
