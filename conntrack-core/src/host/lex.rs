//! Line and field splitting, numbers and UTF-8 checks shared by the host
//! file parsers: 1-based lines and 1-based **byte** columns, as every
//! [`ParseError`] of this module reports them.

use super::error::{ParseError, ParseErrorKind as K};
use crate::text::{Digits, parse_digits};

/// Lines with their 1-based numbers; a final newline does not start a line.
pub(super) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_terminator('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// Whitespace-separated fields with their 1-based byte columns.
pub(super) fn fields(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let base = line.as_ptr() as usize;
    line.split_ascii_whitespace()
        .map(move |f| (f.as_ptr() as usize - base + 1, f))
}

/// The 1-based column just after the line's last byte (where a truncated
/// row "ends").
pub(super) fn end_col(line: &str) -> usize {
    line.len() + 1
}

/// A decimal `u64` (digits only) starting at `line`, `col`.
pub(super) fn dec_u64(s: &str, line: usize, col: usize) -> Result<u64, ParseError> {
    parse_digits(s.as_bytes(), 10, u64::MAX).map_err(|e| match e {
        Digits::Empty => ParseError::new(line, col, K::UnexpectedEnd("a number")),
        Digits::Bad(i) => ParseError::new(line, col + i, K::InvalidNumber),
        Digits::Overflow => ParseError::new(line, col, K::OutOfRange),
    })
}

/// A decimal `u32` (digits only) starting at `line`, `col`.
pub(super) fn dec_u32(s: &str, line: usize, col: usize) -> Result<u32, ParseError> {
    u32::try_from(dec_u64(s, line, col)?).map_err(|_| ParseError::new(line, col, K::OutOfRange))
}

/// Decodes a file's bytes as UTF-8, or says where the first invalid byte
/// is. Real `/proc` files are ASCII; this is the reader's first check.
///
/// ```
/// use conntrack_core::host::{decode_utf8, ParseErrorKind};
/// assert_eq!(decode_utf8(b"ok\n").unwrap(), "ok\n");
/// let err = decode_utf8(b"MemTotal: 1 kB\nMem\xff").unwrap_err();
/// assert_eq!((err.location.line, err.location.column), (2, 4));
/// assert_eq!(err.kind, ParseErrorKind::NotUtf8);
/// ```
pub fn decode_utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let good = &bytes[..e.valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        ParseError::new(line, good.len() - start + 1, K::NotUtf8)
    })
}

/// `Empty` at 1:1 for a file without a byte.
pub(super) fn nonempty(text: &str) -> Result<(), ParseError> {
    if text.is_empty() {
        Err(ParseError::new(1, 1, K::Empty))
    } else {
        Ok(())
    }
}

/// The (line, column, kind) of an expected error, for this module's unit
/// tests.
#[cfg(test)]
pub(super) fn err_at(r: Result<impl std::fmt::Debug, ParseError>) -> (usize, usize, K) {
    let e = r.expect_err("expected an error");
    (e.location.line, e.location.column, e.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_location() {
        assert_eq!(err_at(decode_utf8(b"\xff")), (1, 1, K::NotUtf8));
        assert_eq!(err_at(decode_utf8(b"ab\ncd\xc3")), (2, 3, K::NotUtf8));
    }
}
