//! A single-pass reader of one trace event for the common case, ahead of `serde_json`.
//!
//! It reads the top-level members of an event object straight from the window: the few the
//! analysis uses are kept as borrowed text, every other value is skipped with a structural
//! scan (strings with `memchr`). Anything unusual — an escape in a kept string or a key, a value
//! of an unexpected kind, a structure it does not follow, the window ending inside the event —
//! returns `None`, and the event goes through `serde_json`, which parses it or reports where it
//! is wrong. Values it skips are not validated.

use std::borrow::Cow;

use memchr::memchr2;

use crate::reader::{Args, Ev, Scalar};

/// `"`, `{`, `}`, `[`, `]`.
static STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// The bytes of a number or `true`/`false`/`null`: `-+.0-9a-zE`.
static NUMBER: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = matches!(c as u8, b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'E');
        c += 1;
    }
    t
};

/// JSON whitespace: space, `\n`, `\r`, `\t`.
static WS: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'\t' as usize] = true;
    t
};

/// The index of the first non-whitespace byte at or after `i` (`b.len()` if none). Inline for
/// the two common cases — no whitespace, or one space — the rest (a newline and an indent, in
/// Kineto's layout) out of line.
#[inline]
fn ws(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(&c) if c > b' ' => i,
        Some(b' ') if b.get(i + 1).is_some_and(|&c| c > b' ') => i + 1,
        _ => ws_run(b, i),
    }
}

/// The eight bytes at `b[i..]` as a little-endian word, if there are eight.
fn word(b: &[u8], i: usize) -> Option<u64> {
    let w: [u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

/// Marks (high bit of each byte) the bytes of `w` that are not ASCII digits; exact. For bytes
/// below 0x80, `c + 0x50` reaches 0x80 iff `c ≥ b'0'` and `c + 0x46` iff `c > b'9'`, with no
/// carry between bytes; a byte of 0x80 or more is marked by its own high bit.
const fn non_digits(w: u64) -> u64 {
    const HI: u64 = 0x8080_8080_8080_8080;
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let a = w & LO7;
    let ge0 = a.wrapping_add(0x5050_5050_5050_5050);
    let gt9 = a.wrapping_add(0x4646_4646_4646_4646);
    (w | !ge0 | gt9) & HI
}

/// [`ws`] for a run: runs of spaces eight at a time (the first byte of `w ^ "        "` that
/// is not zero is the first that is not a space; exact, no carries), other whitespace a byte
/// at a time.
#[inline(never)]
fn ws_run(b: &[u8], mut i: usize) -> usize {
    const SPACES: u64 = 0x2020_2020_2020_2020;
    loop {
        match b.get(i) {
            Some(b' ') => {}
            Some(&c) if WS[c as usize] => {
                i += 1;
                continue;
            }
            Some(_) => return i,
            None => return b.len(),
        }
        match word(b, i) {
            Some(w) => {
                let x = w ^ SPACES;
                if x == 0 {
                    i += 8;
                } else {
                    i += (x.trailing_zeros() / 8) as usize;
                }
            }
            None => i += 1,
        }
    }
}

/// Marks (high bit of each byte) the bytes of `w` equal to `c`; the lowest mark is always a
/// true match (borrows only spill into higher bytes).
const fn bytes_equal(w: u64, c: u8) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    let x = w ^ (LO * c as u64);
    x.wrapping_sub(LO) & !x & (LO << 7)
}

/// Offset of the first `"` or `\\` in `b`: eight bytes at a time over the first 32 (most
/// strings in a trace are short keys and values), `memchr` beyond.
fn quote_or_escape(b: &[u8]) -> Option<usize> {
    let mut k = 0;
    while k < 32 {
        let Some(Ok(w)) = b.get(k..k + 8).map(<[u8; 8]>::try_from) else {
            return b[k..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\')
                .map(|p| p + k);
        };
        let w = u64::from_le_bytes(w);
        let m = bytes_equal(w, b'"') | bytes_equal(w, b'\\');
        if m != 0 {
            return Some(k + (m.trailing_zeros() / 8) as usize);
        }
        k += 8;
    }
    memchr2(b'"', b'\\', &b[k..]).map(|p| p + k)
}

/// The string starting at the quote `b[i]`: its contents (no escapes) and the index after it.
fn plain_str(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let k = quote_or_escape(&b[i + 1..])?;
    if b[i + 1 + k] == b'\\' {
        return None;
    }
    Some((&b[i + 1..i + 1 + k], i + 2 + k))
}

/// Skips the string starting at the quote `b[i]`, escapes included.
fn skip_str(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        let k = quote_or_escape(b.get(i..)?)?;
        i += k;
        if b[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// Skips any value starting at `b[i]` (not whitespace).
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_str(b, i),
        b'{' | b'[' => {
            let mut depth = 0u32;
            let mut j = i;
            loop {
                // Jump to the next structural byte with a table lookup per byte.
                j += b[j..].iter().position(|&c| STRUCTURAL[c as usize])?;
                match b[j] {
                    b'"' => j = skip_str(b, j)?,
                    b'{' | b'[' => {
                        depth += 1;
                        j += 1;
                    }
                    _ => {
                        depth -= 1;
                        j += 1;
                        if depth == 0 {
                            return Some(j);
                        }
                    }
                }
            }
        }
        b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
            let mut j = i + 1;
            // Digits eight at a time (timestamps are 16), the rest by the table.
            while let Some(m) = word(b, j).map(non_digits) {
                if m != 0 {
                    j += (m.trailing_zeros() / 8) as usize;
                    break;
                }
                j += 8;
            }
            j += b[j..].iter().position(|&c| !NUMBER[c as usize])?;
            Some(j)
        }
        _ => None,
    }
}

fn text(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok()
}

/// An integer of at most 18 digits (so it cannot overflow), optionally negative, as `i64`
/// parses it; `None` for anything else.
fn small_int(t: &[u8]) -> Option<i64> {
    let (neg, digits) = match t.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, t),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(d - b'0');
    }
    Some(if neg { -n } else { n })
}

/// A number or a string (no escapes) as a [`Scalar`].
fn scalar(b: &[u8], i: usize) -> Option<(Scalar<'_>, usize)> {
    if b[i] == b'"' {
        let (s, j) = plain_str(b, i)?;
        return Some((Scalar::Str(Cow::Borrowed(text(s)?)), j));
    }
    // The common shape in one pass: up to 18 digits, optionally negative, then a byte that
    // cannot continue a number.
    let neg = b[i] == b'-';
    let first = i + usize::from(neg);
    let mut j = first;
    let mut n: i64 = 0;
    while j - first < 18 {
        match b.get(j) {
            Some(&d) if d.is_ascii_digit() => n = n * 10 + i64::from(d - b'0'),
            _ => break,
        }
        j += 1;
    }
    if j > first && b.get(j).is_some_and(|&c| !NUMBER[c as usize]) {
        return Some((Scalar::Int(if neg { -n } else { n }), j));
    }
    let j = skip_value(b, i)?;
    if let Some(n) = small_int(&b[i..j]) {
        return Some((Scalar::Int(n), j));
    }
    let t = text(&b[i..j])?;
    let v = if let Ok(n) = t.parse::<i64>() {
        Scalar::Int(n)
    } else {
        Scalar::Float(t.parse::<f64>().ok()?)
    };
    Some((v, j))
}

/// The raw bytes of a number or a string holding one (quotes kept, no escapes).
fn raw_time(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let j = if b[i] == b'"' {
        // A string must still be UTF-8, as `serde_json` would require.
        let (t, j) = plain_str(b, i)?;
        text(t)?;
        j
    } else {
        // A skipped number is ASCII (`skip_value` stops at anything else).
        skip_value(b, i)?
    };
    Some((&b[i..j], j))
}

/// Reads the event object at the start of `b` into `e` (which starts as `Ev::default()`);
/// returns the bytes it spans. Filled in place: the event is large, and moving it costs.
pub(crate) fn event<'a>(b: &'a [u8], e: &mut Ev<'a>) -> Option<usize> {
    let mut i = ws(b, 0);
    if *b.get(i)? != b'{' {
        return None;
    }
    i = ws(b, i + 1);
    if *b.get(i)? == b'}' {
        return Some(i + 1);
    }
    loop {
        if *b.get(i)? != b'"' {
            return None;
        }
        let (key, j) = plain_str(b, i)?;
        i = ws(b, j);
        if *b.get(i)? != b':' {
            return None;
        }
        i = ws(b, i + 1);
        let c = *b.get(i)?;
        let string = |i| -> Option<(Cow<'_, str>, usize)> {
            if c != b'"' {
                return None;
            }
            let (s, j) = plain_str(b, i)?;
            Some((Cow::Borrowed(text(s)?), j))
        };
        i = match key {
            b"ph" => {
                let (s, j) = string(i)?;
                e.ph = Some(s);
                j
            }
            b"cat" => {
                let (s, j) = string(i)?;
                e.cat = Some(s);
                j
            }
            b"name" => {
                let (s, j) = string(i)?;
                e.name = Some(s);
                j
            }
            b"pid" => {
                let (s, j) = scalar(b, i)?;
                e.pid = Some(s);
                j
            }
            b"tid" => {
                let (s, j) = scalar(b, i)?;
                e.tid = Some(s);
                j
            }
            b"ts" => {
                let (s, j) = raw_time(b, i)?;
                e.ts = Some(s);
                j
            }
            b"dur" => {
                let (s, j) = raw_time(b, i)?;
                e.dur = Some(s);
                j
            }
            b"args" => {
                if c != b'{' {
                    return None;
                }
                // Read the object once: the kept keys now, its extent with them.
                let a = e.parsed_args.insert(Args::default());
                let j = if let Some(j) = args_at(b, i, a) {
                    j
                } else {
                    e.parsed_args = None;
                    skip_value(b, i)?
                };
                e.args = Some(&b[i..j]);
                j
            }
            _ => skip_value(b, i)?,
        };
        i = ws(b, i);
        match *b.get(i)? {
            b',' => i = ws(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// Reads an `args` object: the keys the analysis uses, every other value skipped.
pub(crate) fn args(b: &[u8]) -> Option<Args<'_>> {
    let mut a = Args::default();
    args_at(b, ws(b, 0), &mut a)?;
    Some(a)
}

/// Reads the `args` object at `b[i]` (not whitespace) into `a` (which starts as
/// `Args::default()`); returns the index after it.
fn args_at<'a>(b: &'a [u8], mut i: usize, a: &mut Args<'a>) -> Option<usize> {
    if *b.get(i)? != b'{' {
        return None;
    }
    i = ws(b, i + 1);
    if *b.get(i)? == b'}' {
        return Some(i + 1);
    }
    loop {
        if *b.get(i)? != b'"' {
            return None;
        }
        let (key, j) = plain_str(b, i)?;
        i = ws(b, j);
        if *b.get(i)? != b':' {
            return None;
        }
        i = ws(b, i + 1);
        let (slot, string): (
            Option<&mut Option<Scalar<'_>>>,
            Option<&mut Option<Cow<'_, str>>>,
        ) = match key {
            b"correlation" => (Some(&mut a.correlation), None),
            b"External id" => (Some(&mut a.external_id), None),
            b"external id" => (Some(&mut a.external_id_legacy), None),
            b"stream" => (Some(&mut a.stream), None),
            b"device" => (Some(&mut a.device), None),
            b"Seq" => (Some(&mut a.seq), None),
            b"In msg nelems" => (Some(&mut a.in_nelems), None),
            b"Group size" => (Some(&mut a.group_size), None),
            b"Total Allocated" => (Some(&mut a.total_allocated), None),
            b"Total Reserved" => (Some(&mut a.total_reserved), None),
            b"Device Id" => (Some(&mut a.device_id), None),
            b"Collective name" => (None, Some(&mut a.collective)),
            b"Process Group Name" => (None, Some(&mut a.pg_name)),
            b"dtype" => (None, Some(&mut a.dtype)),
            _ => (None, None),
        };
        let c = *b.get(i)?;
        i = match (slot, string) {
            (Some(slot), _) => {
                if !matches!(c, b'"' | b'-' | b'0'..=b'9') {
                    return None;
                }
                let (v, j) = scalar(b, i)?;
                *slot = Some(v);
                j
            }
            (_, Some(slot)) => {
                if c != b'"' {
                    return None;
                }
                let (v, j) = plain_str(b, i)?;
                *slot = Some(Cow::Borrowed(text(v)?));
                j
            }
            _ => skip_value(b, i)?,
        };
        i = ws(b, i);
        match *b.get(i)? {
            b',' => i = ws(b, i + 1),
            b'}' => return Some(i + 1),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kept_members_and_skips_the_rest() {
        let b = br#"{"ph": "X", "cat": "kernel", "name": "k<1>", "pid": 0, "tid": "stream 7", "ts": 12.5, "dur": "3", "args": {"a": [1, {"b": "}\""}], "correlation": 4}, "id": -1.5e3, "x": null} ,"#;
        let mut e = Ev::default();
        let n = event(b, &mut e).unwrap();
        assert_eq!(&b[n..], b" ,");
        assert_eq!(e.ph.as_deref(), Some("X"));
        assert_eq!(e.name.as_deref(), Some("k<1>"));
        assert_eq!(e.ts, Some(&b"12.5"[..]));
        assert_eq!(e.dur, Some(&b"\"3\""[..]));
        assert!(matches!(e.pid, Some(Scalar::Int(0))));
        assert!(e.args.unwrap().ends_with(b"4}"));
    }

    #[test]
    fn whitespace_skips_as_a_byte_loop_does() {
        let text = b"  \n      \t\r x \n  \n                   y\t ";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let b = &text[..end];
                let want = (start..end).find(|&k| !WS[b[k] as usize]).unwrap_or(end);
                assert_eq!(ws(b, start), want, "{start}..{end}");
            }
        }
    }

    #[test]
    fn non_digits_marks_exactly_the_bytes_that_are_not_digits() {
        for c in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = *b"01234567";
                bytes[pos] = c;
                let m = non_digits(u64::from_le_bytes(bytes));
                for (k, &x) in bytes.iter().enumerate() {
                    let marked = m >> (8 * k + 7) & 1 == 1;
                    assert_eq!(
                        marked,
                        !x.is_ascii_digit(),
                        "byte {c:#x} at {pos}, look at {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn skipped_numbers_end_where_the_table_says() {
        for t in [
            "1683564902133354",
            "12345678",
            "1",
            "-12.5e3",
            "1234567890123456.789",
            "true",
        ] {
            for tail in [",", "}", " ", "\n"] {
                let b = format!("{t}{tail}");
                assert_eq!(skip_value(b.as_bytes(), 0), Some(t.len()), "{b:?}");
            }
        }
    }

    #[test]
    fn quote_or_escape_finds_the_first() {
        let text = br#"abcdefghij"klmnopqrstuvwxyz0123456789\ABCDEFGHIJ"xyz"#;
        for start in 0..text.len() {
            for end in start..=text.len() {
                let b = &text[start..end];
                let want = b.iter().position(|&c| c == b'"' || c == b'\\');
                assert_eq!(quote_or_escape(b), want, "{start}..{end}");
            }
        }
    }

    #[test]
    fn small_ints_parse_as_i64_does() {
        for t in [
            "0",
            "-0",
            "7",
            "-12",
            "007",
            "123456789012345678",
            "-123456789012345678",
        ] {
            assert_eq!(small_int(t.as_bytes()), t.parse::<i64>().ok(), "{t}");
        }
        for t in ["", "-", "1.5", "1e3", "+1", "1234567890123456789", "--1"] {
            assert_eq!(small_int(t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn unusual_or_cut_events_go_to_serde() {
        for b in [
            &br#"{"name": "a\"b", "ts": 1}"#[..],
            br#"{"ph": "X", "ts": 1,, "dur": 2}"#,
            br#"{"ph": "X", "ts": 1"#,
            br#"{"ph": 5}"#,
        ] {
            assert!(event(b, &mut Ev::default()).is_none());
        }
    }
}
