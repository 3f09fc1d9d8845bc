//! Embeds every file under `catalog/hardware/*.toml` at build time, with a JSON rendering of
//! each: deserializing JSON at run time is about 15× faster than parsing TOML (0.07 ms vs 1.1 ms
//! for the whole catalog), which is most of `bottleneck infer`'s start-up.

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
    let mut src = String::from("/// (file stem, TOML text, the same as JSON) of every built-in hardware file.\npub static HARDWARE_FILES: &[(&str, &str, &str)] = &[\n");
    for p in &names {
        println!("cargo:rerun-if-changed={}", p.display());
        let stem = p.file_stem().and_then(|s| s.to_str()).expect("utf-8 name");
        let abs = fs::canonicalize(p).expect("file exists");
        let text = fs::read_to_string(p).expect("readable catalog file");
        // A syntax error here is caught again, with its line, by the run-time TOML check in
        // the catalog tests; the JSON is only a faster encoding of the same document.
        let value: toml::Value =
            toml::from_str(&text).unwrap_or_else(|e| panic!("catalog/hardware/{stem}.toml: {e}"));
        let json = serde_json::to_string(&value).expect("TOML values encode as JSON");
        writeln!(
            src,
            "    ({stem:?}, include_str!({:?}), {json:?}),",
            abs.display().to_string()
        )
        .expect("write to string");
    }
    src.push_str("];\n");
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets this")).join("hardware_files.rs");
    fs::write(out, src).expect("write generated file");
}
