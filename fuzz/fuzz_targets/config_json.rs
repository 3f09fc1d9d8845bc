#![no_main]
//! Any byte string given as a Hugging Face config.json parses to a model or an error, never a
//! panic; a parsed model's derived quantities never panic either.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(arch) = bottleneck_models::from_config_json("fuzz", text) {
            let _ = arch.params();
            let _ = arch.active_params();
            let _ = arch.kv_bytes_per_token(bottleneck_core::Precision::Bf16);
        }
    }
});
