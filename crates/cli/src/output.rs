//! Writing results to stdout: the only place the binary prints results.

use std::io::{self, Write};

use serde::Serialize;

/// Writes one JSON document (pretty, newline-terminated) to stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Writes human-readable text to stdout.
pub fn text(s: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    if !s.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
