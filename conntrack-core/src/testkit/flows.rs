//! Builders for the tuples and flows of tests: addresses from literals and
//! reply tuples derived as the kernel derives them, so that a test states
//! only what it is about.
//!
//! ```
//! use conntrack_core::testkit::{flow, ip, tcp, udp};
//! use conntrack_core::{L4Tuple, Status};
//! let f = flow(tcp("10.0.0.1", 40000, "10.0.0.2", 443));
//! assert_eq!(f.reply.src, ip("10.0.0.2"));
//! assert_eq!(f.reply.l4, L4Tuple::Ports { src: 443, dst: 40000 });
//! assert_eq!(f.status, Status::CONFIRMED);
//! assert!(!f.is_replied());
//! let dns = flow(udp("fd00::1", 5353, "fd00::53", 53));
//! assert_eq!(dns.reply.dst_port(), Some(5353));
//! ```

use crate::flow::{Flow, ProtoInfo, TcpInfo};
use crate::proto::L4Proto;
use crate::state::TcpState;
use crate::status::Status;
use crate::tuple::{L4Tuple, Tuple};
use std::net::IpAddr;

/// The address a literal spells (`"10.0.0.1"`, `"fd00::1"`).
///
/// # Panics
///
/// On anything but an IPv4 or IPv6 address literal: for tests, where the
/// literal is part of the test.
pub fn ip(literal: &str) -> IpAddr {
    literal
        .parse()
        .unwrap_or_else(|e| panic!("{literal:?} is not an IP address: {e}"))
}

/// Ports (or GRE keys) `src -> dst`.
pub fn ports(src: u16, dst: u16) -> L4Tuple {
    L4Tuple::Ports { src, dst }
}

/// A tuple `src:sport -> dst:dport` of a protocol with ports.
///
/// # Panics
///
/// When `src` or `dst` is not an address literal ([`ip`]).
pub fn tuple(proto: L4Proto, src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    Tuple::new(ip(src), ip(dst), proto, ports(sport, dport))
}

/// A TCP tuple `src:sport -> dst:dport` ([`tuple()`]).
pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    tuple(L4Proto::TCP, src, sport, dst, dport)
}

/// A UDP tuple `src:sport -> dst:dport` ([`tuple()`]).
pub fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    tuple(L4Proto::UDP, src, sport, dst, dport)
}

/// An echo request `src -> dst` with echo identifier `id`: ICMP type 8
/// for IPv4 addresses, ICMPv6 type 128 for IPv6 ones.
///
/// # Panics
///
/// When `src` or `dst` is not an address literal ([`ip`]).
pub fn icmp_echo(src: &str, dst: &str, id: u16) -> Tuple {
    let (src, dst) = (ip(src), ip(dst));
    let (proto, kind) = match src {
        IpAddr::V4(_) => (L4Proto::ICMP, 8),
        IpAddr::V6(_) => (L4Proto::ICMPV6, 128),
    };
    Tuple::new(src, dst, proto, L4Tuple::Icmp { kind, code: 0, id })
}

/// A confirmed flow of `orig` whose reply tuple is the one the kernel
/// derives without NAT ([`Tuple::inverse`]); every other field is unset.
/// For a translated flow, set [`Flow::reply`] afterwards or use
/// [`Flow::new`].
///
/// # Panics
///
/// When `orig` has no inverse (an ICMP error type).
pub fn flow(orig: Tuple) -> Flow {
    let reply = orig
        .inverse()
        .unwrap_or_else(|| panic!("{orig:?} has no reply tuple"));
    Flow::new(orig, reply, Status::CONFIRMED)
}

/// TCP protocol information with only the state set.
pub fn tcp_state(state: TcpState) -> Option<ProtoInfo> {
    Some(ProtoInfo::Tcp(TcpInfo::new(state)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_requests_follow_the_address_family() {
        let v4 = icmp_echo("10.0.0.1", "10.0.0.2", 7);
        assert_eq!(
            (v4.proto, v4.l4),
            (
                L4Proto::ICMP,
                L4Tuple::Icmp {
                    kind: 8,
                    code: 0,
                    id: 7
                }
            )
        );
        let v6 = flow(icmp_echo("fd00::1", "fd00::2", 7));
        assert_eq!(v6.orig.proto, L4Proto::ICMPV6);
        assert_eq!(
            v6.reply.l4,
            L4Tuple::Icmp {
                kind: 129,
                code: 0,
                id: 7
            }
        );
    }

    #[test]
    #[should_panic(expected = "\"10.0.0\" is not an IP address")]
    fn a_bad_literal_says_which() {
        ip("10.0.0");
    }
}
