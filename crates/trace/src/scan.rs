//! A byte-level scanner over a JSON document read incrementally from any `Read`.
//!
//! It finds the extent of each value without building it, so the reader can hand one event at
//! a time to `serde_json::from_slice` while holding only a small window of the input in memory.

use std::io::{self, Read};

/// Initial window; it grows only to hold a single value larger than itself.
const WINDOW: usize = 1 << 20;

const fn table(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// Bytes that end a run inside a string.
static IN_STRING: [bool; 256] = table(b"\"\\");
/// Bytes that matter inside an object or array.
static NESTED: [bool; 256] = table(b"\"{}[]");
/// Bytes that matter at depth 0 (they open, close or end a value).
static TOP: [bool; 256] = table(b"\"{}[], \n\r\t");

/// What stopped the scanner.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// The input ended inside a value or before the document closed.
    Eof,
    /// The underlying reader failed.
    Io(io::Error),
    /// A structural byte that cannot appear here.
    Unexpected { found: u8 },
    /// A value that does not parse (absolute offset, message).
    Json(u64, String),
}

/// Incremental scanner: `buf[pos..len]` holds unread input; `base` is the absolute offset of
/// `buf[0]` in the decompressed stream.
pub(crate) struct Scanner<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    base: u64,
    eof: bool,
}

impl<R: Read> Scanner<R> {
    pub(crate) fn new(r: R) -> Self {
        Self {
            r,
            buf: vec![0; WINDOW],
            pos: 0,
            len: 0,
            base: 0,
            eof: false,
        }
    }

    /// Absolute offset of the next unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Absolute offset of `buf[i]`.
    pub(crate) fn offset_of(&self, i: usize) -> u64 {
        self.base + i as u64
    }

    /// Bytes read from the source so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.base + self.len as u64
    }

    /// Moves unread bytes to the front and reads more. Returns how far indices shifted.
    fn refill(&mut self) -> Result<usize, ScanError> {
        let shift = self.pos;
        if shift > 0 {
            self.buf.copy_within(shift..self.len, 0);
            self.len -= shift;
            self.pos = 0;
            self.base += shift as u64;
        }
        if self.eof {
            return Err(ScanError::Eof);
        }
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.r.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Err(ScanError::Eof);
                }
                Ok(n) => {
                    self.len += n;
                    return Ok(shift);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ScanError::Io(e)),
            }
        }
    }

    /// Skips whitespace (and a UTF-8 byte-order mark) and returns the next byte without
    /// consuming it; `None` at the end of input.
    pub(crate) fn peek(&mut self) -> Result<Option<u8>, ScanError> {
        loop {
            while self.pos < self.len {
                match self.buf[self.pos] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0xEF | 0xBB | 0xBF => self.pos += 1,
                    b => return Ok(Some(b)),
                }
            }
            match self.refill() {
                Ok(_) => {}
                Err(ScanError::Eof) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Consumes the next non-whitespace byte, which must be one of `allowed`.
    pub(crate) fn expect(&mut self, allowed: &[u8]) -> Result<u8, ScanError> {
        match self.peek()? {
            None => Err(ScanError::Eof),
            Some(b) if allowed.contains(&b) => {
                self.pos += 1;
                Ok(b)
            }
            Some(b) => Err(ScanError::Unexpected { found: b }),
        }
    }

    /// Scans the value starting at the next non-whitespace byte and returns its byte range in
    /// the window (valid until the next call). The cursor moves past the value.
    pub(crate) fn value(&mut self) -> Result<(usize, usize), ScanError> {
        if self.peek()?.is_none() {
            return Err(ScanError::Eof);
        }
        let mut start = self.pos;
        let mut i = start;
        let mut depth = 0u32;
        let mut in_str = false;
        loop {
            if i >= self.len {
                match self.refill() {
                    Ok(shift) => {
                        start -= shift;
                        i -= shift;
                        continue;
                    }
                    // A bare scalar may end the input.
                    Err(ScanError::Eof) if depth == 0 && !in_str && i > start => {
                        self.pos = i;
                        return Ok((start, i));
                    }
                    Err(e) => return Err(e),
                }
            }
            // Skip to the next byte that matters in the current state (a table lookup per
            // byte: cheaper than a call per short string).
            let table = if in_str {
                &IN_STRING
            } else if depth > 0 {
                &NESTED
            } else {
                &TOP
            };
            match self.buf[i..self.len]
                .iter()
                .position(|&b| table[b as usize])
            {
                None => {
                    i = self.len;
                    continue;
                }
                Some(k) => i += k,
            }
            if in_str {
                if self.buf[i] == b'\\' {
                    i += 2;
                } else {
                    in_str = false;
                    i += 1;
                    if depth == 0 {
                        self.pos = i;
                        return Ok((start, i));
                    }
                }
                continue;
            }
            match self.buf[i] {
                b'"' => {
                    in_str = true;
                    i += 1;
                }
                b'{' | b'[' => {
                    depth += 1;
                    i += 1;
                }
                b'}' | b']' => {
                    if depth == 0 {
                        if i == start {
                            return Err(ScanError::Unexpected { found: self.buf[i] });
                        }
                        self.pos = i;
                        return Ok((start, i));
                    }
                    depth -= 1;
                    i += 1;
                    if depth == 0 {
                        self.pos = i;
                        return Ok((start, i));
                    }
                }
                _ => {
                    // `,` or whitespace at depth 0 ends a bare scalar.
                    if i == start {
                        return Err(ScanError::Unexpected { found: self.buf[i] });
                    }
                    self.pos = i;
                    return Ok((start, i));
                }
            }
        }
    }

    /// The unread bytes in the window.
    pub(crate) fn rest(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// Consumes `n` unread bytes.
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }

    /// Reads more input into the window (growing it when full); `Eof` at the end of input.
    pub(crate) fn more(&mut self) -> Result<(), ScanError> {
        self.refill().map(|_| ())
    }

    /// The bytes of a range returned by [`Scanner::value`].
    pub(crate) fn slice(&self, range: (usize, usize)) -> &[u8] {
        &self.buf[range.0..range.1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(input: &[u8]) -> Vec<String> {
        let mut s = Scanner::new(input);
        s.buf = vec![0; 4]; // force many refills
        let mut out = Vec::new();
        s.expect(b"[").unwrap();
        loop {
            if s.peek().unwrap() == Some(b']') {
                break;
            }
            let r = s.value().unwrap();
            out.push(String::from_utf8(s.slice(r).to_vec()).unwrap());
            if s.expect(b",]").unwrap() == b']' {
                break;
            }
        }
        out
    }

    #[test]
    fn splits_values_across_refills() {
        let v = values(br#"[ {"a": "x,}\"y", "b": [1, {"c": 2}]}, 12.5e3 , "s\\", true ]"#);
        assert_eq!(
            v,
            vec![
                r#"{"a": "x,}\"y", "b": [1, {"c": 2}]}"#,
                "12.5e3",
                r#""s\\""#,
                "true"
            ]
        );
    }

    #[test]
    fn truncated_value_is_eof() {
        let mut s = Scanner::new(&br#"{"a": [1, 2"#[..]);
        assert!(matches!(s.value(), Err(ScanError::Eof)));
    }
}
