//! Single-value files: the `/proc/sys/net/netfilter/nf_conntrack_*`
//! sysctls and module parameters such as
//! `/sys/module/nf_conntrack/parameters/hashsize`.

use super::error::{ParseError, ParseErrorKind as K};
use super::lex::{dec_u32, dec_u64, nonempty};

/// The value of a single-value file (a sysctl, a module parameter,
/// `osrelease`): the text without its final newline. Fails on an empty
/// file, on a second line, and on control characters other than tab.
///
/// ```
/// use conntrack_core::host::parse_single_value;
/// assert_eq!(parse_single_value("262144\n").unwrap(), "262144");
/// assert!(parse_single_value("").is_err());
/// assert!(parse_single_value("1\n2\n").is_err());
/// ```
pub fn parse_single_value(text: &str) -> Result<&str, ParseError> {
    nonempty(text)?;
    let value = text.strip_suffix('\n').unwrap_or(text);
    if value.contains('\n') {
        return Err(ParseError::new(2, 1, K::Trailing));
    }
    if let Some((i, _)) = value
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\t')
    {
        return Err(ParseError::new(1, i + 1, K::Expected("printable text")));
    }
    Ok(value)
}

/// A numeric sysctl or module parameter as `u32`.
///
/// Negative numbers in `i32` range are accepted and reinterpreted: the
/// kernel stores `nf_conntrack_max` and the count as unsigned but older
/// kernels print them with `proc_dointvec` (signed), so a value above
/// `i32::MAX` reads back negative.
///
/// ```
/// use conntrack_core::host::parse_sysctl_u32;
/// assert_eq!(parse_sysctl_u32("262144\n").unwrap(), 262144);
/// assert_eq!(parse_sysctl_u32("-1294967296\n").unwrap(), 3_000_000_000);
/// assert!(parse_sysctl_u32("12a\n").is_err());
/// assert!(parse_sysctl_u32("4294967296\n").is_err());
/// ```
pub fn parse_sysctl_u32(text: &str) -> Result<u32, ParseError> {
    let v = parse_single_value(text)?;
    if let Some(neg) = v.strip_prefix('-') {
        let n = dec_u64(neg, 1, 2)?;
        if n == 0 || n > 1 << 31 {
            return Err(ParseError::new(1, 1, K::OutOfRange));
        }
        // Two's complement of a printed `int`.
        return Ok((1u64 << 32).wrapping_sub(n) as u32);
    }
    dec_u32(v, 1, 1)
}

/// A strictly unsigned decimal value (a module parameter printed with
/// `%u`, such as `hashsize`): no sign accepted.
///
/// ```
/// use conntrack_core::host::parse_u32_value;
/// assert_eq!(parse_u32_value("262144\n").unwrap(), 262144);
/// assert!(parse_u32_value("-5\n").is_err());
/// ```
pub fn parse_u32_value(text: &str) -> Result<u32, ParseError> {
    dec_u32(parse_single_value(text)?, 1, 1)
}

/// A boolean sysctl (`0`/`1`) or module parameter (`N`/`Y`).
///
/// ```
/// use conntrack_core::host::parse_sysctl_bool;
/// assert_eq!(parse_sysctl_bool("0\n").unwrap(), false);
/// assert_eq!(parse_sysctl_bool("Y\n").unwrap(), true);
/// assert!(parse_sysctl_bool("2\n").is_err());
/// ```
pub fn parse_sysctl_bool(text: &str) -> Result<bool, ParseError> {
    match parse_single_value(text)? {
        "0" | "N" | "n" => Ok(false),
        "1" | "Y" | "y" => Ok(true),
        _ => Err(ParseError::new(1, 1, K::Expected("0 or 1"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

    #[test]
    fn single_values() {
        assert_eq!(parse_single_value("abc").unwrap(), "abc");
        assert_eq!(err_at(parse_single_value("")), (1, 1, K::Empty));
        assert_eq!(err_at(parse_single_value("1\n2")), (2, 1, K::Trailing));
        assert_eq!(
            err_at(parse_single_value("a\0b\n")),
            (1, 2, K::Expected("printable text"))
        );
        assert_eq!(parse_sysctl_u32("0\n").unwrap(), 0);
        assert_eq!(parse_sysctl_u32("4294967295\n").unwrap(), u32::MAX);
        assert_eq!(parse_sysctl_u32("-1\n").unwrap(), u32::MAX);
        assert_eq!(parse_sysctl_u32("-2147483648\n").unwrap(), 1 << 31);
        assert_eq!(
            err_at(parse_sysctl_u32("-2147483649")),
            (1, 1, K::OutOfRange)
        );
        assert_eq!(err_at(parse_sysctl_u32("-0")), (1, 1, K::OutOfRange));
        assert_eq!(
            err_at(parse_sysctl_u32("4294967296")),
            (1, 1, K::OutOfRange)
        );
        assert_eq!(err_at(parse_sysctl_u32("12 3")), (1, 3, K::InvalidNumber));
        assert_eq!(
            err_at(parse_sysctl_u32("\n")),
            (1, 1, K::UnexpectedEnd("a number"))
        );
        assert_eq!(
            err_at(parse_sysctl_u32("-")),
            (1, 2, K::UnexpectedEnd("a number"))
        );
        assert!(!parse_sysctl_bool("N\n").unwrap());
        assert!(parse_sysctl_bool("1").unwrap());
        assert_eq!(
            err_at(parse_sysctl_bool("yes")),
            (1, 1, K::Expected("0 or 1"))
        );
    }
}
