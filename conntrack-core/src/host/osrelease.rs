//! `/proc/sys/kernel/osrelease`: the kernel release (`uname -r`).

use super::error::{ParseError, ParseErrorKind as K};
use super::sysctl::parse_single_value;
use crate::kernel::KernelVersion;

/// `/proc/sys/kernel/osrelease`: the release string and its parsed
/// version.
///
/// ```
/// use conntrack_core::{host::parse_osrelease, KernelVersion};
/// let (rel, v) = parse_osrelease("6.18.44-fc-v657\n").unwrap();
/// assert_eq!(rel, "6.18.44-fc-v657");
/// assert_eq!(v, KernelVersion::new(6, 18, 44));
/// ```
pub fn parse_osrelease(text: &str) -> Result<(&str, KernelVersion), ParseError> {
    let v = parse_single_value(text)?;
    if let Some(i) = v.find(|c: char| c.is_whitespace()) {
        return Err(ParseError::new(1, i + 1, K::Trailing));
    }
    let version = v
        .parse::<KernelVersion>()
        .map_err(|_| ParseError::new(1, 1, K::Expected("a kernel release (N.N...)")))?;
    Ok((v, version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

    #[test]
    fn osrelease() {
        assert_eq!(err_at(parse_osrelease("6.1 x\n")), (1, 4, K::Trailing));
        assert_eq!(
            err_at(parse_osrelease("linux\n")),
            (1, 1, K::Expected("a kernel release (N.N...)"))
        );
        let (r, v) = parse_osrelease("3.10.0-1160.el7.x86_64\n").unwrap();
        assert_eq!(r, "3.10.0-1160.el7.x86_64");
        assert_eq!(v, KernelVersion::new(3, 10, 0));
    }
}
