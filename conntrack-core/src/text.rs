//! Byte-level line and token splitting shared by the table parsers
//! (`/proc/net/stat/nf_conntrack`, `conntrack -S`): both formats are ASCII
//! fields separated by spaces or tabs, and both report errors by byte
//! column, so they split the same way. [`parse_digits`] reads the unsigned
//! numbers of every text parser of the crate (these two and the host
//! files').

/// Whether a byte separates fields (space or tab).
pub(crate) fn is_sep(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether a line holds only separators.
pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| is_sep(b))
}

/// Splits a line into `(byte offset, token)` on spaces and tabs.
pub(crate) fn tokens(line: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut pos = 0;
    core::iter::from_fn(move || {
        while pos < line.len() && is_sep(line[pos]) {
            pos += 1;
        }
        if pos >= line.len() {
            return None;
        }
        let start = pos;
        while pos < line.len() && !is_sep(line[pos]) {
            pos += 1;
        }
        Some((start, &line[start..pos]))
    })
}

/// Splits off the first line (without its `\n`, and without one trailing
/// `\r` so CRLF input reads the same), returning it and the rest.
pub(crate) fn split_line(input: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

/// The non-blank lines of an input with their 1-based line numbers (blank
/// lines are counted, not yielded; lines are split by [`split_line`]).
#[derive(Debug, Clone)]
pub(crate) struct Lines<'a> {
    rest: &'a [u8],
    line: usize,
}

impl<'a> Lines<'a> {
    /// The lines of `input`, from line 1.
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Lines {
            rest: input,
            line: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let (line, rest) = split_line(self.rest);
            self.rest = rest;
            self.line += 1;
            if !is_blank(line) {
                return Some((self.line, line));
            }
        }
        None
    }
}

/// Why a token is not an unsigned number ([`parse_digits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digits {
    /// No digit at all.
    Empty,
    /// The byte at this 0-based offset is not a digit of the radix.
    Bad(usize),
    /// The value is above the maximum.
    Overflow,
}

/// The unsigned number `tok` spells in `radix` (10 or 16; digits only, no
/// sign, prefix or separator; hex digits in either case), if it is at most
/// `max`. Checked digit by digit, so a token that passes `max` before a
/// bad digit reports the overflow.
pub(crate) fn parse_digits(tok: &[u8], radix: u32, max: u64) -> Result<u64, Digits> {
    if tok.is_empty() {
        return Err(Digits::Empty);
    }
    let mut v: u64 = 0;
    for (i, &b) in tok.iter().enumerate() {
        let d = char::from(b).to_digit(radix).ok_or(Digits::Bad(i))?;
        v = v
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .filter(|&v| v <= max)
            .ok_or(Digits::Overflow)?;
    }
    Ok(v)
}

/// Whether a token is a field name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_name(tok: &[u8]) -> bool {
    matches!(tok.first(), Some(b) if b.is_ascii_alphabetic() || *b == b'_')
        && tok.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tokens_and_lines() {
        let t: Vec<_> = tokens(b"  ab\tc  d ").collect();
        assert_eq!(t, [(2, &b"ab"[..]), (5, &b"c"[..]), (8, &b"d"[..])]);
        assert_eq!(split_line(b"x\r\ny"), (&b"x"[..], &b"y"[..]));
        assert_eq!(split_line(b"last"), (&b"last"[..], &b""[..]));
        assert!(is_blank(b" \t") && !is_blank(b" x"));
        assert!(is_name(b"insert_failed") && !is_name(b"1x") && !is_name(b""));
    }

    #[test]
    fn digits() {
        let u32_max = u64::from(u32::MAX);
        assert_eq!(parse_digits(b"4294967295", 10, u32_max), Ok(u32_max));
        assert_eq!(
            parse_digits(b"4294967296", 10, u32_max),
            Err(Digits::Overflow)
        );
        assert_eq!(parse_digits(b"0000000fFfFfFfF", 16, u32_max), Ok(u32_max));
        assert_eq!(
            parse_digits(b"18446744073709551616", 10, u64::MAX),
            Err(Digits::Overflow)
        );
        assert_eq!(parse_digits(b"12a", 10, u64::MAX), Err(Digits::Bad(2)));
        assert_eq!(parse_digits(b"0x1", 16, u64::MAX), Err(Digits::Bad(1)));
        assert_eq!(parse_digits(b"+1", 10, u64::MAX), Err(Digits::Bad(0)));
        assert_eq!(parse_digits(b"\xff", 16, u64::MAX), Err(Digits::Bad(0)));
        assert_eq!(parse_digits(b"", 10, u64::MAX), Err(Digits::Empty));
        // Overflow is seen before a later bad digit.
        assert_eq!(
            parse_digits(b"99999999999x", 10, u32_max),
            Err(Digits::Overflow)
        );
    }

    #[test]
    fn lines_skip_blanks_but_count_them() {
        let l: Vec<_> = Lines::new(b"\n a\r\n \t\nb\n\n").collect();
        assert_eq!(l, [(2, &b" a"[..]), (4, &b"b"[..])]);
        assert_eq!(Lines::new(b"").next(), None);
        assert_eq!(Lines::new(b"last").collect::<Vec<_>>(), [(1, &b"last"[..])]);
    }
}
