//! CPU lists (`0-3,5`): `/sys/devices/system/cpu/{possible,online}`.

use super::error::{ParseError, ParseErrorKind as K};
use super::lex::dec_u32;

/// The largest CPU count the parsers accept. The kernel's `NR_CPUS` is at
/// most 8192 on x86_64 and 16384 elsewhere today; the limit keeps a hostile
/// `0-4294967295` from allocating gigabytes.
pub const MAX_CPUS: u32 = 65536;

/// Parses a CPU list (`0-3,5,7-8`, as in
/// `/sys/devices/system/cpu/{possible,online}`) into sorted, de-duplicated
/// CPU ids. An empty list (`""` or `"\n"`) is valid and empty.
///
/// ```
/// use conntrack_core::host::parse_cpu_list;
/// assert_eq!(parse_cpu_list("0-3,5,7-8\n").unwrap(), vec![0, 1, 2, 3, 5, 7, 8]);
/// assert_eq!(parse_cpu_list("\n").unwrap(), Vec::<u32>::new());
/// assert!(parse_cpu_list("3-1").is_err());
/// ```
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, ParseError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.contains('\n') {
        return Err(ParseError::new(2, 1, K::Trailing));
    }
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut col = 1;
    for item in body.split(',') {
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (item, None),
        };
        let start = dec_u32(a, 1, col)?;
        let end = match b {
            Some(b) => dec_u32(b, 1, col + a.len() + 1)?,
            None => start,
        };
        if start > end {
            return Err(ParseError::new(1, col, K::InvalidRange));
        }
        if end >= MAX_CPUS || out.len() as u64 + u64::from(end - start) >= u64::from(MAX_CPUS) {
            return Err(ParseError::new(1, col, K::TooManyCpus));
        }
        out.extend(start..=end);
        col += item.len() + 1;
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Renders CPU ids in the kernel's list form (`%*pbl`): sorted ranges,
/// `0-3,5,7-8`, no trailing newline. Duplicates are ignored.
///
/// ```
/// use conntrack_core::host::render_cpu_list;
/// assert_eq!(render_cpu_list(&[8, 0, 1, 2, 3, 5, 7]), "0-3,5,7-8");
/// assert_eq!(render_cpu_list(&[]), "");
/// ```
pub fn render_cpu_list(cpus: &[u32]) -> String {
    let mut v = cpus.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0").unwrap(), vec![0]);
        assert_eq!(parse_cpu_list("1,0,0-1").unwrap(), vec![0, 1]);
        assert_eq!(
            err_at(parse_cpu_list("0-")),
            (1, 3, K::UnexpectedEnd("a number"))
        );
        assert_eq!(
            err_at(parse_cpu_list("0,,1")),
            (1, 3, K::UnexpectedEnd("a number"))
        );
        assert_eq!(err_at(parse_cpu_list("2,5-3")), (1, 3, K::InvalidRange));
        assert_eq!(
            err_at(parse_cpu_list("0-4294967295")),
            (1, 1, K::TooManyCpus)
        );
        assert_eq!(
            err_at(parse_cpu_list("0-9999999999")),
            (1, 3, K::OutOfRange)
        );
        assert_eq!(err_at(parse_cpu_list("0\n1\n")), (2, 1, K::Trailing));
        assert_eq!(err_at(parse_cpu_list("0-1-2")), (1, 4, K::InvalidNumber));
    }
}
