//! Entry timeouts by sysctl name:
//! `/proc/sys/net/netfilter/nf_conntrack_<proto>_timeout[_<state>]`.

use super::error::ParseError;
use super::sysctl::parse_sysctl_u32;
use std::collections::BTreeMap;

/// The protocols with entry-timeout sysctls
/// (`net/netfilter/nf_conntrack_proto_*.c`; `udplite` and `dccp` only on
/// some kernels and configurations).
pub const TIMEOUT_PROTOCOLS: &[&str] = &[
    "dccp", "generic", "gre", "icmp", "icmpv6", "sctp", "tcp", "udp", "udplite",
];

/// The (protocol, state) a timeout sysctl sets, or `None` for a sysctl
/// that is not a conntrack entry timeout.
///
/// `nf_conntrack_<proto>_timeout` is the protocol's `default`;
/// `nf_conntrack_<proto>_timeout_<state>` is that state, for the protocols
/// of [`TIMEOUT_PROTOCOLS`]; states are not listed, so a state added by a
/// newer kernel is kept. Not timeouts of entries, and excluded:
/// `nf_conntrack_frag6_timeout` (IPv6 reassembly),
/// `nf_conntrack_events_retry_timeout` (event redelivery, <= 3.x),
/// `nf_conntrack_tcp_max_retrans` (a count).
///
/// ```
/// use conntrack_core::host::timeout_key;
/// assert_eq!(timeout_key("nf_conntrack_tcp_timeout_time_wait"), Some(("tcp", "time_wait")));
/// assert_eq!(timeout_key("nf_conntrack_udp_timeout"), Some(("udp", "default")));
/// assert_eq!(timeout_key("nf_conntrack_udp_timeout_stream"), Some(("udp", "stream")));
/// assert_eq!(timeout_key("nf_conntrack_tcp_timeout_max_retrans"), Some(("tcp", "max_retrans")));
/// assert_eq!(timeout_key("nf_conntrack_tcp_max_retrans"), None);
/// assert_eq!(timeout_key("nf_conntrack_frag6_timeout"), None);
/// assert_eq!(timeout_key("nf_conntrack_events_retry_timeout"), None);
/// ```
pub fn timeout_key(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix("nf_conntrack_")?;
    let at = rest.find("_timeout")?;
    let proto = &rest[..at];
    let after = &rest[at + "_timeout".len()..];
    let state = match after {
        "" => "default",
        s => s.strip_prefix('_').filter(|s| !s.is_empty())?,
    };
    let ident = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if !TIMEOUT_PROTOCOLS.contains(&proto) || !ident(state) {
        return None;
    }
    Some((proto, state))
}

/// Timeouts by protocol and state from a set of sysctls (name without the
/// `net.netfilter.` prefix -> value text). Returns the map and, for each
/// timeout sysctl whose value is not a number, its name and error.
///
/// ```
/// use std::collections::BTreeMap;
/// use conntrack_core::host::timeouts_from_sysctls;
/// let mut s = BTreeMap::new();
/// s.insert("nf_conntrack_tcp_timeout_time_wait".to_string(), "120".to_string());
/// s.insert("nf_conntrack_generic_timeout".to_string(), "600".to_string());
/// s.insert("nf_conntrack_max".to_string(), "262144".to_string());
/// let (t, bad) = timeouts_from_sysctls(&s);
/// assert_eq!(t["tcp"]["time_wait"], 120);
/// assert_eq!(t["generic"]["default"], 600);
/// assert_eq!(t.len(), 2);
/// assert!(bad.is_empty());
/// ```
#[allow(clippy::type_complexity)]
pub fn timeouts_from_sysctls(
    sysctls: &BTreeMap<String, String>,
) -> (
    BTreeMap<String, BTreeMap<String, u32>>,
    Vec<(String, ParseError)>,
) {
    let mut out: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    let mut bad = Vec::new();
    for (name, value) in sysctls {
        let Some((proto, state)) = timeout_key(name) else {
            continue;
        };
        match parse_sysctl_u32(value) {
            Ok(v) => {
                out.entry(proto.to_string())
                    .or_default()
                    .insert(state.to_string(), v);
            }
            Err(e) => bad.push((name.clone(), e)),
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::error::ParseErrorKind as K;

    #[test]
    fn timeout_keys() {
        let cases = [
            ("nf_conntrack_generic_timeout", Some(("generic", "default"))),
            ("nf_conntrack_icmp_timeout", Some(("icmp", "default"))),
            ("nf_conntrack_icmpv6_timeout", Some(("icmpv6", "default"))),
            ("nf_conntrack_gre_timeout", Some(("gre", "default"))),
            ("nf_conntrack_gre_timeout_stream", Some(("gre", "stream"))),
            (
                "nf_conntrack_sctp_timeout_cookie_echoed",
                Some(("sctp", "cookie_echoed")),
            ),
            (
                "nf_conntrack_dccp_timeout_partopen",
                Some(("dccp", "partopen")),
            ),
            (
                "nf_conntrack_tcp_timeout_unacknowledged",
                Some(("tcp", "unacknowledged")),
            ),
            (
                "nf_conntrack_udplite_timeout_stream",
                Some(("udplite", "stream")),
            ),
            ("nf_conntrack_max", None),
            ("nf_conntrack_tcp_timeout_", None),
            ("nf_conntrack__timeout", None),
            ("nf_conntrack_udp_timeoutx", None),
            ("nf_conntrack_dccp_loose", None),
            ("nf_log_all_netns", None),
            ("nf_conntrack_TCP_timeout", None),
            ("nf_conntrack_events_retry_timeout", None),
            ("nf_conntrack_frag6_timeout", None),
            ("nf_conntrack_tcp_timeout_Close", None),
        ];
        for (name, want) in cases {
            assert_eq!(timeout_key(name), want, "{name}");
        }
        let mut s = BTreeMap::new();
        s.insert("nf_conntrack_udp_timeout".into(), "3x\n".into());
        s.insert("nf_conntrack_udp_timeout_stream".into(), "120\n".into());
        let (t, bad) = timeouts_from_sysctls(&s);
        assert_eq!(t["udp"].len(), 1);
        assert_eq!(t["udp"]["stream"], 120);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, "nf_conntrack_udp_timeout");
        assert_eq!(bad[0].1, ParseError::new(1, 2, K::InvalidNumber));
    }
}
