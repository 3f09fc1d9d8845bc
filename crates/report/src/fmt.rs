//! Number formatting shared by every table.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

/// A table in the house style.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    t
}

/// Seconds with an adaptive unit (ns, µs, ms, s).
pub fn time(s: f64) -> String {
    let a = s.abs();
    if a == 0.0 {
        "0".into()
    } else if a < 1e-6 {
        format!("{:.0} ns", s * 1e9)
    } else if a < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if a < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

/// Bytes in decimal units (B, KB, MB, GB, TB).
pub fn bytes(b: f64) -> String {
    scaled(b, "B")
}

/// FLOPs in decimal units.
pub fn flops(f: f64) -> String {
    scaled(f, "FLOP")
}

/// A count with an SI prefix (k, M, G, T, P) and a unit.
pub fn scaled(v: f64, unit: &str) -> String {
    let a = v.abs();
    let (d, p) = if a >= 1e15 {
        (1e15, "P")
    } else if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    if p.is_empty() {
        format!("{v:.0} {unit}")
    } else {
        format!("{:.2} {p}{unit}", v / d)
    }
}

/// Parameters as "6.74 B".
pub fn params(n: u64) -> String {
    let v = n as f64;
    if v >= 1e9 {
        format!("{:.2} B", v / 1e9)
    } else {
        format!("{:.1} M", v / 1e6)
    }
}

/// A fraction as a percentage.
pub fn pct(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_scale() {
        assert_eq!(time(0.0123), "12.30 ms");
        assert_eq!(time(2.5e-6), "2.5 µs");
        assert_eq!(bytes(70_272.0), "70.27 kB");
        assert_eq!(params(6_738_415_616), "6.74 B");
        assert_eq!(pct(0.4567), "45.7%");
    }
}
