#![no_main]
//! Any byte string given as a hardware TOML file parses to a value or an error, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bottleneck_core::Hardware::from_toml(text);
    }
});
