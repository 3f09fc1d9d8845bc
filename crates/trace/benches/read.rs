//! Reader throughput: read + per-rank analysis of a medium trace held in memory (the sample
//! `hta-rank0of16-a100`, 25.8 MB of JSON, replicated four times in time with shifted timestamps
//! and ids by the same rule as `scripts/gen_big_trace.py`), single-threaded, plain and gzip.
//!
//! `cargo bench -p bottleneck-trace --bench read`; the figure is MB/s of JSON per core. The
//! large-file figures (1.1 GB, peak RSS) are measured with the release binary: docs/trace.md.

use std::io::{Read, Write};
use std::path::Path;

use bottleneck_trace::{analyse_reader, Compat, Options};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/traces/hta-rank0of16-a100.json.gz"
);

/// The sample's events, replicated `copies` times, each copy shifted past the previous one
/// (timestamps by the trace's extent, correlation and flow ids by their maximum).
fn medium(copies: usize) -> Vec<u8> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(SAMPLE).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let start = text.find("\"traceEvents\"").unwrap();
    let open = start + text[start..].find('[').unwrap();
    let close = text.rfind(']').unwrap();
    let body = &text[open + 1..close];
    let mut out = String::with_capacity(text.len() * copies);
    out.push_str(&text[..=open]);
    // Shift by rewriting `"ts": N` and `"correlation": N` and `"id": N` numerically.
    let shift_us = 2_000_000_000u64; // past the sample's extent
    let id_shift = 10_000_000u64;
    for k in 0..copies as u64 {
        if k > 0 {
            out.push(',');
        }
        if k == 0 {
            out.push_str(body);
            continue;
        }
        let mut rest = body;
        while let Some(p) = rest.find(['"']) {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            let key_add = [
                ("\"ts\": ", shift_us * k),
                ("\"correlation\": ", id_shift * k),
                ("\"id\": ", id_shift * k),
            ]
            .into_iter()
            .find(|(key, _)| rest.starts_with(key));
            match key_add {
                Some((key, add)) => {
                    out.push_str(key);
                    rest = &rest[key.len()..];
                    let n = rest
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(rest.len());
                    match rest[..n].parse::<u64>() {
                        Ok(v) if n > 0 => {
                            out.push_str(&(v + add).to_string());
                            rest = &rest[n..];
                        }
                        _ => {}
                    }
                }
                None => {
                    out.push('"');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
    }
    out.push_str(&text[close..]);
    out.into_bytes()
}

fn bench(c: &mut Criterion) {
    let plain = medium(4);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&plain).unwrap();
    let gz = e.finish().unwrap();
    let opts = Options {
        compat: Compat::Native,
        top: 10,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("read");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("plain_json_1_core", |b| {
        b.iter(|| pool.install(|| analyse_reader(&plain[..], Path::new("m.json"), &opts).unwrap()));
    });
    g.bench_function("gzip_json_1_core", |b| {
        b.iter(|| {
            pool.install(|| {
                analyse_reader(
                    flate2::read::MultiGzDecoder::new(&gz[..]),
                    Path::new("m.json.gz"),
                    &opts,
                )
                .unwrap()
            })
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
