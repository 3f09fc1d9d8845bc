#![no_main]
//! Any byte string given as a workload file parses to requests or to a one-line error naming
//! the line, never a panic.

use bottleneck_serve::{Arrival, WorkloadFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(file) = WorkloadFile::parse(text) {
            let _ = file.requests(Some(64), Some(Arrival::Poisson { rate: 1.0 }), 0);
            let _ = file.requests(None, None, 0);
        }
    }
});
