//! Byte-level line and token splitting shared by the table parsers
//! (`/proc/net/stat/nf_conntrack`, `conntrack -S`): both formats are ASCII
//! fields separated by spaces or tabs, and both report errors by byte
//! column, so they split the same way.

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
}
