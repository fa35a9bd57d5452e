//! The page size: `KernelPageSize` of `/proc/self/smaps`, else
//! `AT_PAGESZ` of `/proc/self/auxv`.

use super::error::{ParseError, ParseErrorKind as K};
use super::lex::{dec_u64, end_col, fields, lines, nonempty};

/// The page size from a `/proc/PID/smaps` file (or a prefix of one made of
/// whole lines), in bytes: the smallest `KernelPageSize:` value, since
/// hugetlb mappings report their huge page size. Only the
/// `KernelPageSize:` lines are checked.
///
/// ```
/// use conntrack_core::host::parse_smaps_page_size;
/// let text = "55e1b923b000-55e1b923d000 r--p 00000000 fe:00 247282   /usr/bin/head\n\
/// Size:                  8 kB\nKernelPageSize:        4 kB\n\
/// 7f0000000000-7f0000200000 rw-s 00000000 00:10 1   /hugetlb\nKernelPageSize:     2048 kB\n";
/// assert_eq!(parse_smaps_page_size(text).unwrap(), 4096);
/// ```
pub fn parse_smaps_page_size(text: &str) -> Result<u64, ParseError> {
    nonempty(text)?;
    let mut best: Option<u64> = None;
    for (ln, line) in lines(text) {
        const KEY: &str = "KernelPageSize:";
        let Some(rest) = line.strip_prefix(KEY) else {
            continue;
        };
        let mut fs = fields(rest).map(|(c, f)| (c + KEY.len(), f));
        let Some((c, v)) = fs.next() else {
            return Err(ParseError::new(
                ln,
                end_col(line),
                K::UnexpectedEnd("a size"),
            ));
        };
        let kb = dec_u64(v, ln, c)?;
        match fs.next() {
            Some((_, "kB")) => {}
            Some((uc, _)) => return Err(ParseError::new(ln, uc, K::Expected("kB"))),
            None => return Err(ParseError::new(ln, end_col(line), K::UnexpectedEnd("kB"))),
        }
        let bytes = match kb.checked_mul(1024) {
            Some(b) if b.is_power_of_two() => b,
            _ => return Err(ParseError::new(ln, c, K::OutOfRange)),
        };
        best = Some(best.map_or(bytes, |b| b.min(bytes)));
    }
    best.ok_or_else(|| {
        let last = text.split_terminator('\n').count();
        ParseError::new(last + 1, 1, K::Missing("KernelPageSize"))
    })
}

/// `AT_PAGESZ` from `/proc/self/auxv` (pairs of native-endian machine
/// words, type then value, ending with `AT_NULL`). Only meaningful for the
/// reading process's own auxv, as the word size and byte order are this
/// build's. Errors use line 1 and the 1-based byte offset as column.
///
/// ```
/// use conntrack_core::host::parse_auxv_page_size;
/// let word = |v: usize| v.to_ne_bytes().to_vec();
/// let auxv = [word(6), word(4096), word(0), word(0)].concat();
/// assert_eq!(parse_auxv_page_size(&auxv).unwrap(), 4096);
/// assert!(parse_auxv_page_size(&auxv[..3]).is_err());
/// ```
pub fn parse_auxv_page_size(bytes: &[u8]) -> Result<u64, ParseError> {
    const AT_NULL: u64 = 0;
    const AT_PAGESZ: u64 = 6;
    const W: usize = std::mem::size_of::<usize>();
    if bytes.is_empty() {
        return Err(ParseError::new(1, 1, K::Empty));
    }
    let word = |chunk: &[u8]| -> u64 {
        let mut buf = [0u8; W];
        buf.copy_from_slice(chunk);
        usize::from_ne_bytes(buf) as u64
    };
    let mut off = 0;
    while off < bytes.len() {
        if bytes.len() - off < 2 * W {
            return Err(ParseError::new(
                1,
                off + 1,
                K::UnexpectedEnd("an auxv entry"),
            ));
        }
        let ty = word(&bytes[off..off + W]);
        let val = word(&bytes[off + W..off + 2 * W]);
        match ty {
            AT_NULL => break,
            AT_PAGESZ if val.is_power_of_two() => return Ok(val),
            AT_PAGESZ => return Err(ParseError::new(1, off + W + 1, K::OutOfRange)),
            _ => {}
        }
        off += 2 * W;
    }
    Err(ParseError::new(1, off + 1, K::Missing("AT_PAGESZ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

    #[test]
    fn page_sizes() {
        assert_eq!(
            parse_smaps_page_size("KernelPageSize: 64 kB\n").unwrap(),
            65536
        );
        assert_eq!(
            err_at(parse_smaps_page_size("a\nb\n")),
            (3, 1, K::Missing("KernelPageSize"))
        );
        assert_eq!(
            err_at(parse_smaps_page_size("KernelPageSize: 3 kB\n")),
            (1, 17, K::OutOfRange)
        );
        assert_eq!(
            err_at(parse_smaps_page_size("KernelPageSize: 4\n")),
            (1, 18, K::UnexpectedEnd("kB"))
        );
        assert_eq!(
            err_at(parse_smaps_page_size("KernelPageSize:\n")),
            (1, 16, K::UnexpectedEnd("a size"))
        );
        let w = |v: usize| v.to_ne_bytes().to_vec();
        let n = std::mem::size_of::<usize>();
        assert_eq!(
            parse_auxv_page_size(&[w(33), w(1), w(6), w(16384), w(0), w(0)].concat()).unwrap(),
            16384
        );
        assert_eq!(
            err_at(parse_auxv_page_size(&[w(33), w(1), w(0), w(0)].concat())),
            (1, 2 * n + 1, K::Missing("AT_PAGESZ"))
        );
        assert_eq!(
            err_at(parse_auxv_page_size(&[w(6), w(3)].concat())),
            (1, n + 1, K::OutOfRange)
        );
        assert_eq!(err_at(parse_auxv_page_size(&[])), (1, 1, K::Empty));
    }
}
