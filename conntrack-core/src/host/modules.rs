//! `/proc/modules` and the conntrack and NAT helper modules.

use super::error::{ParseError, ParseErrorKind as K};
use super::lex::{dec_u64, end_col, fields, lines};

/// Conntrack helper modules (`nf_conntrack_<name>`): the helpers in
/// `net/netfilter/nf_conntrack_*.c`, plus `broadcast`, the library that
/// `netbios_ns` and `snmp` build on.
pub const CONNTRACK_HELPERS: &[&str] = &[
    "amanda",
    "broadcast",
    "ftp",
    "h323",
    "irc",
    "netbios_ns",
    "pptp",
    "sane",
    "sip",
    "snmp",
    "tftp",
];

/// NAT helper modules (`nf_nat_<name>`, `net/netfilter/nf_nat_*.c` and
/// `net/ipv4/netfilter/nf_nat_{h323,pptp,snmp_basic}.c`).
pub const NAT_HELPERS: &[&str] = &[
    "amanda",
    "ftp",
    "h323",
    "irc",
    "pptp",
    "sip",
    "snmp_basic",
    "tftp",
];

/// Parses `/proc/modules` and returns the module names in file order.
/// Each line is `name size refcount deps state address [taints]`; all
/// fields are checked.
///
/// ```
/// use conntrack_core::host::parse_modules;
/// let text = "nf_nat_ftp 20480 0 - Live 0xffffffffc0a1b000\n\
/// nf_conntrack_ftp 24576 1 nf_nat_ftp, Live 0x0000000000000000 (E)\n";
/// assert_eq!(parse_modules(text).unwrap(), vec!["nf_nat_ftp", "nf_conntrack_ftp"]);
/// assert!(parse_modules("nf_nat_ftp 20480\n").is_err());
/// ```
pub fn parse_modules(text: &str) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    for (ln, line) in lines(text) {
        let f: Vec<(usize, &str)> = fields(line).collect();
        if f.len() < 6 {
            return Err(ParseError::new(
                ln,
                end_col(line),
                K::UnexpectedEnd("6 fields"),
            ));
        }
        if f.len() > 7 {
            return Err(ParseError::new(ln, f[7].0, K::Trailing));
        }
        let (nc, name) = f[0];
        if let Some(p) = name
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(ParseError::new(ln, nc + p, K::Expected("a module name")));
        }
        dec_u64(f[1].1, ln, f[1].0)?;
        if f[2].1 != "-" {
            dec_u64(f[2].1, ln, f[2].0)?;
        }
        if f[3].1 != "-" && !f[3].1.ends_with(',') {
            return Err(ParseError::new(ln, f[3].0, K::Expected("'-' or 'a,b,'")));
        }
        if !matches!(f[4].1, "Live" | "Loading" | "Unloading") {
            return Err(ParseError::new(ln, f[4].0, K::Expected("a module state")));
        }
        let addr = f[5].1.strip_prefix("0x").ok_or(ParseError::new(
            ln,
            f[5].0,
            K::Expected("0x address"),
        ))?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseError::new(ln, f[5].0 + 2, K::InvalidHex));
        }
        if let Some(&(c, t)) = f.get(6)
            && !(t.starts_with('(') && t.ends_with(')'))
        {
            return Err(ParseError::new(ln, c, K::Expected("(taints)")));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// Whether a module name is a conntrack or NAT helper
/// ([`CONNTRACK_HELPERS`], [`NAT_HELPERS`]).
///
/// ```
/// use conntrack_core::host::is_helper_module;
/// assert!(is_helper_module("nf_conntrack_ftp"));
/// assert!(is_helper_module("nf_nat_sip"));
/// assert!(!is_helper_module("nf_conntrack_netlink"));
/// assert!(!is_helper_module("nf_conntrack"));
/// ```
pub fn is_helper_module(name: &str) -> bool {
    if let Some(h) = name.strip_prefix("nf_conntrack_") {
        CONNTRACK_HELPERS.contains(&h)
    } else if let Some(h) = name.strip_prefix("nf_nat_") {
        NAT_HELPERS.contains(&h)
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

    #[test]
    fn modules() {
        assert!(parse_modules("").unwrap().is_empty());
        let l = |s: &str| err_at(parse_modules(s));
        assert_eq!(l("a 1 0 - Live\n"), (1, 13, K::UnexpectedEnd("6 fields")));
        assert_eq!(l("a 1 0 - Live 0x0 (E) x\n"), (1, 22, K::Trailing));
        assert_eq!(
            l("a/b 1 0 - Live 0x0\n"),
            (1, 2, K::Expected("a module name"))
        );
        assert_eq!(l("a x 0 - Live 0x0\n"), (1, 3, K::InvalidNumber));
        assert_eq!(l("a 1 y - Live 0x0\n"), (1, 5, K::InvalidNumber));
        assert_eq!(
            l("a 1 0 b Live 0x0\n"),
            (1, 7, K::Expected("'-' or 'a,b,'"))
        );
        assert_eq!(
            l("a 1 0 - Dead 0x0\n"),
            (1, 9, K::Expected("a module state"))
        );
        assert_eq!(l("a 1 0 - Live 00\n"), (1, 14, K::Expected("0x address")));
        assert_eq!(l("a 1 0 - Live 0xg\n"), (1, 16, K::InvalidHex));
        assert_eq!(l("a 1 0 - Live 0x1 E\n"), (1, 18, K::Expected("(taints)")));
        assert_eq!(
            parse_modules("a 1 - b,c, Unloading 0x1\n").unwrap(),
            vec!["a"]
        );
        for h in CONNTRACK_HELPERS {
            assert!(is_helper_module(&format!("nf_conntrack_{h}")));
        }
        assert!(is_helper_module("nf_nat_snmp_basic"));
        assert!(!is_helper_module("nf_nat"));
        assert!(!is_helper_module("nf_conntrack_ipv4"));
    }
}
