//! `/proc/meminfo`.

use super::error::{ParseError, ParseErrorKind as K};
use super::lex::{dec_u64, end_col, fields, lines, nonempty};
use std::collections::BTreeMap;

/// `/proc/meminfo`: every line's value, converted to bytes when the line
/// has the `kB` unit (counts such as `HugePages_Total` are kept as they
/// are).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MemInfo {
    /// Key (e.g. `MemTotal`, `Active(anon)`) -> value.
    pub fields: BTreeMap<String, u64>,
}

impl MemInfo {
    /// `MemTotal` in bytes.
    pub fn mem_total_bytes(&self) -> Option<u64> {
        self.fields.get("MemTotal").copied()
    }
}

/// Parses `/proc/meminfo` (`Key:   value kB` per line). Every line is
/// checked; keys must be printable ASCII.
///
/// ```
/// use conntrack_core::host::parse_meminfo;
/// let m = parse_meminfo("MemTotal:       24684092 kB\nHugePages_Total:       0\n").unwrap();
/// assert_eq!(m.mem_total_bytes(), Some(24684092 * 1024));
/// let err = parse_meminfo("MemTotal: 12x kB\n").unwrap_err();
/// assert_eq!((err.location.line, err.location.column), (1, 13));
/// ```
pub fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    nonempty(text)?;
    let mut out = MemInfo::default();
    for (ln, line) in lines(text) {
        let Some(colon) = line.find(':') else {
            return Err(ParseError::new(ln, end_col(line), K::Expected("':'")));
        };
        let key = &line[..colon];
        if key.is_empty() {
            return Err(ParseError::new(ln, 1, K::Expected("a key")));
        }
        if let Some(i) = key.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(ParseError::new(ln, i + 1, K::Expected("a printable key")));
        }
        let rest = &line[colon + 1..];
        let mut fs = fields(rest).map(|(c, f)| (c + colon + 1, f));
        let Some((vcol, value)) = fs.next() else {
            return Err(ParseError::new(
                ln,
                end_col(line),
                K::UnexpectedEnd("a value"),
            ));
        };
        let mut v = dec_u64(value, ln, vcol)?;
        match fs.next() {
            None => {}
            Some((_, "kB")) => {
                v = v
                    .checked_mul(1024)
                    .ok_or(ParseError::new(ln, vcol, K::OutOfRange))?;
            }
            Some((c, _)) => return Err(ParseError::new(ln, c, K::Expected("kB"))),
        }
        if let Some((c, _)) = fs.next() {
            return Err(ParseError::new(ln, c, K::Trailing));
        }
        if out.fields.insert(key.to_string(), v).is_some() {
            return Err(ParseError::new(ln, 1, K::Duplicate("key")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

    #[test]
    fn meminfo() {
        let m =
            parse_meminfo("MemTotal: 10 kB\nHugePages_Total:   7\nActive(anon):  1 kB\n").unwrap();
        assert_eq!(m.mem_total_bytes(), Some(10240));
        assert_eq!(m.fields["HugePages_Total"], 7);
        assert_eq!(m.fields["Active(anon)"], 1024);
        assert_eq!(err_at(parse_meminfo("")), (1, 1, K::Empty));
        assert_eq!(
            err_at(parse_meminfo("MemTotal 1 kB\n")),
            (1, 14, K::Expected("':'"))
        );
        assert_eq!(
            err_at(parse_meminfo(": 1 kB\n")),
            (1, 1, K::Expected("a key"))
        );
        assert_eq!(
            err_at(parse_meminfo("Mem\x01: 1 kB\n")),
            (1, 4, K::Expected("a printable key"))
        );
        assert_eq!(
            err_at(parse_meminfo("A: 1\nB:\n")),
            (2, 3, K::UnexpectedEnd("a value"))
        );
        assert_eq!(
            err_at(parse_meminfo("A: 1 MB\n")),
            (1, 6, K::Expected("kB"))
        );
        assert_eq!(err_at(parse_meminfo("A: 1 kB x\n")), (1, 9, K::Trailing));
        assert_eq!(
            err_at(parse_meminfo("A: 1\nA: 2\n")),
            (2, 1, K::Duplicate("key"))
        );
        assert_eq!(
            err_at(parse_meminfo("A: 18446744073709551615 kB\n")),
            (1, 4, K::OutOfRange)
        );
    }
}
