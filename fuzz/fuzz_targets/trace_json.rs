#![no_main]
//! Any byte string, read as a Kineto trace (plain, and as gzip when it starts with the gzip
//! magic), is analysed or rejected with an error, never a panic, in both conventions.

use std::path::Path;

use bottleneck_trace::{analyse_reader, Compat, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for compat in [Compat::Native, Compat::Hta] {
        let opts = Options { compat, top: 5 };
        let _ = analyse_reader(data, Path::new("fuzz.json"), &opts);
        if data.starts_with(&[0x1f, 0x8b]) {
            let gz = flate2::read::MultiGzDecoder::new(data);
            let _ = analyse_reader(gz, Path::new("fuzz.json.gz"), &opts);
        }
    }
});
