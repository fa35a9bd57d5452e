//! Network namespace links (`/proc/PID/ns/net`, `net:[INODE]`) and
//! whether a namespace is the initial one.

use super::error::{ParseError, ParseErrorKind as K};
use super::lex::dec_u64;
use super::sysctl::parse_single_value;
use crate::kernel::KernelVersion;

/// The inode number of the initial network namespace's `ns/net` link,
/// fixed since Linux 6.18 (`NET_NS_INIT_INO` in
/// `include/uapi/linux/nsfs.h`, `PROC_NET_INIT_INO` in
/// `include/linux/proc_ns.h`; verified on a 6.18 kernel:
/// `net:[4026531833]`). Before 6.18 the number was allocated dynamically
/// (from `0xF0000000` up), so it can never equal this value by accident.
pub const NET_NS_INIT_INO: u64 = 0xEFFF_FFF9;

/// The inode number in a namespace link's target (`net:[4026531833]`, as
/// `readlink /proc/PID/ns/net` prints it). Fixture trees may store the
/// target as a file's text; a final newline is accepted.
///
/// ```
/// use conntrack_core::host::parse_ns_link;
/// assert_eq!(parse_ns_link("net:[4026531833]").unwrap(), 0xEFFF_FFF9);
/// assert!(parse_ns_link("net:[x]").is_err());
/// ```
pub fn parse_ns_link(text: &str) -> Result<u64, ParseError> {
    let v = parse_single_value(text)?;
    let Some(open) = v.find(":[") else {
        return Err(ParseError::new(1, 1, K::Expected("TYPE:[INODE]")));
    };
    let inner = &v[open + 2..];
    let Some(num) = inner.strip_suffix(']') else {
        return Err(ParseError::new(1, v.len() + 1, K::Expected("']'")));
    };
    dec_u64(num, 1, open + 3)
}

/// Decides whether a namespace is the initial network namespace.
///
/// The clues, in order:
/// 1. `ns_ino == NET_NS_INIT_INO` ([`NET_NS_INIT_INO`]): initial (exact).
/// 2. On 6.18+ kernels, any other inode: not initial (exact).
/// 3. On 5.13+ kernels, `max_read_only == Some(true)` (the
///    `nf_conntrack_max` sysctl file has no write bit): not initial. Since
///    commit 2671fa4 ("netfilter: conntrack: Make global sysctls readonly
///    in non-init netns", 5.13) the kernel registers `nf_conntrack_max`,
///    `_expect_max` and `_buckets` as 0444 outside the initial namespace.
///    A writable file says nothing (a fixture tree's modes are git's).
/// 4. When `pid1_ino` (the inode of `/proc/1/ns/net`, which needs root) is
///    known: initial iff equal. This assumes `/proc` shows the host's
///    PID 1; in a container with its own PID namespace it compares with
///    the container's init and wrongly says "initial" for the container's
///    namespace.
/// 5. Otherwise unknown.
///
/// ```
/// use conntrack_core::{host::{init_netns_from, NET_NS_INIT_INO}, KernelVersion};
/// assert_eq!(init_netns_from(NET_NS_INIT_INO, None, None, None), Some(true));
/// let v618 = Some(KernelVersion::new(6, 18, 0));
/// assert_eq!(init_netns_from(4026532300, None, v618, None), Some(false));
/// let v515 = Some(KernelVersion::new(5, 15, 0));
/// assert_eq!(init_netns_from(4026532300, Some(4026532300), v515, Some(true)), Some(false));
/// let v510 = Some(KernelVersion::new(5, 10, 0));
/// assert_eq!(init_netns_from(4026531992, Some(4026531992), v510, Some(true)), Some(true));
/// assert_eq!(init_netns_from(4026532300, None, v510, None), None);
/// ```
pub fn init_netns_from(
    ns_ino: u64,
    pid1_ino: Option<u64>,
    kernel: Option<KernelVersion>,
    max_read_only: Option<bool>,
) -> Option<bool> {
    if ns_ino == NET_NS_INIT_INO {
        return Some(true);
    }
    if kernel.is_some_and(|k| k.at_least(6, 18)) {
        return Some(false);
    }
    if kernel.is_some_and(|k| k.at_least(5, 13)) && max_read_only == Some(true) {
        return Some(false);
    }
    pid1_ino.map(|p| p == ns_ino)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::lex::err_at;

    #[test]
    fn ns_links() {
        assert_eq!(parse_ns_link("net:[12]\n").unwrap(), 12);
        assert_eq!(
            err_at(parse_ns_link("net")),
            (1, 1, K::Expected("TYPE:[INODE]"))
        );
        assert_eq!(err_at(parse_ns_link("net:[12")), (1, 8, K::Expected("']'")));
        assert_eq!(err_at(parse_ns_link("net:[1x]")), (1, 7, K::InvalidNumber));
    }
}
