//! Reads and analyses trace files and prints the `bottleneck.trace/1` summary line:
//! `cargo run --release -p bottleneck-trace --example read_trace -- FILE...` (used to profile
//! the reader without the CLI).

use std::path::PathBuf;

fn main() {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    match bottleneck_trace::analyse_paths(&files, &bottleneck_trace::Options::default()) {
        Ok(r) => {
            let bytes: u64 = r.ranks.iter().map(|k| k.json_bytes).sum();
            let events: u64 = r.ranks.iter().map(|k| k.events).sum();
            eprintln!(
                "{} ranks, {events} events, {bytes} JSON bytes",
                r.ranks.len()
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
