//! Conntrack tuples: the addresses, protocol and ports (or ICMP fields)
//! that identify one direction of a flow (`CTA_TUPLE_*`).

use crate::proto::{L3Family, L4Proto};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The layer 4 part of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum L4Tuple {
    /// No layer 4 fields (protocols handled by the generic tracker).
    None,
    /// Ports: TCP, UDP, UDP-Lite, SCTP, DCCP; GRE keys use the same fields.
    Ports {
        /// Source port (or GRE key).
        src: u16,
        /// Destination port (or GRE key).
        dst: u16,
    },
    /// ICMP or ICMPv6 type, code and identifier.
    Icmp {
        /// ICMP type.
        #[serde(rename = "type")]
        kind: u8,
        /// ICMP code.
        code: u8,
        /// Echo identifier.
        id: u16,
    },
}

/// One direction of a flow.
///
/// ```
/// use conntrack_core::{L4Proto, L4Tuple, Tuple};
/// let t = Tuple::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(),
///                    L4Proto::TCP, L4Tuple::Ports { src: 40000, dst: 443 });
/// assert_eq!(t.dst_port(), Some(443));
/// assert_eq!(t.family().to_string(), "ipv4");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Layer 4 protocol number.
    pub proto: L4Proto,
    /// Ports or ICMP fields.
    pub l4: L4Tuple,
    /// Direction-specific zone (`CTA_TUPLE_ZONE`), when the kernel sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<u16>,
}

impl Tuple {
    /// A tuple without a direction zone.
    pub fn new(src: IpAddr, dst: IpAddr, proto: L4Proto, l4: L4Tuple) -> Self {
        Tuple {
            src,
            dst,
            proto,
            l4,
            zone: None,
        }
    }

    /// The address family of the source address.
    pub fn family(&self) -> L3Family {
        match self.src {
            IpAddr::V4(_) => L3Family::INET,
            IpAddr::V6(_) => L3Family::INET6,
        }
    }

    /// Source port (or GRE key) when the protocol has ports.
    pub fn src_port(&self) -> Option<u16> {
        match self.l4 {
            L4Tuple::Ports { src, .. } => Some(src),
            _ => None,
        }
    }

    /// Destination port (or GRE key) when the protocol has ports.
    pub fn dst_port(&self) -> Option<u16> {
        match self.l4 {
            L4Tuple::Ports { dst, .. } => Some(dst),
            _ => None,
        }
    }

    /// The source endpoint: address and port (ICMP: the echo id).
    pub fn src_endpoint(&self) -> Endpoint {
        Endpoint {
            addr: self.src,
            port: self.l4_src_key(),
        }
    }

    /// The destination endpoint: address and port (ICMP: the echo id).
    pub fn dst_endpoint(&self) -> Endpoint {
        Endpoint {
            addr: self.dst,
            port: self.l4_dst_key(),
        }
    }

    /// The tuple of the other direction, as the kernel derives a flow's
    /// reply tuple from its original one when no NAT applies
    /// (`nf_ct_invert_tuple`, `net/netfilter/nf_conntrack_core.c`):
    /// addresses swapped, ports (and GRE keys) swapped; for ICMP and
    /// ICMPv6 the matching reply (or request) type with the same code and
    /// id (`nf_conntrack_invert_icmp_tuple`,
    /// `net/netfilter/nf_conntrack_proto_icmp.c`, and its ICMPv6 twin).
    ///
    /// `None` where the kernel cannot invert either: an ICMP type outside
    /// the request/reply pairs (echo, timestamp, information, address
    /// mask; ICMPv6 echo and node information), such as destination
    /// unreachable, or ICMP fields on another protocol. The direction zone
    /// ([`Tuple::zone`]) is not carried over: it belongs to one direction.
    ///
    /// ```
    /// use conntrack_core::{L4Proto, L4Tuple, Tuple};
    /// let ip = |s: &str| s.parse().unwrap();
    /// let orig = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::TCP,
    ///                       L4Tuple::Ports { src: 40000, dst: 443 });
    /// let reply = orig.inverse().unwrap();
    /// assert_eq!((reply.src, reply.dst), (orig.dst, orig.src));
    /// assert_eq!(reply.l4, L4Tuple::Ports { src: 443, dst: 40000 });
    ///
    /// let ping = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::ICMP,
    ///                       L4Tuple::Icmp { kind: 8, code: 0, id: 7 });
    /// assert_eq!(ping.inverse().unwrap().l4, L4Tuple::Icmp { kind: 0, code: 0, id: 7 });
    /// let unreachable = Tuple { l4: L4Tuple::Icmp { kind: 3, code: 1, id: 0 }, ..ping };
    /// assert_eq!(unreachable.inverse(), None);
    /// ```
    pub fn inverse(&self) -> Option<Tuple> {
        let l4 = match self.l4 {
            L4Tuple::None => L4Tuple::None,
            L4Tuple::Ports { src, dst } => L4Tuple::Ports { src: dst, dst: src },
            L4Tuple::Icmp { kind, code, id } => L4Tuple::Icmp {
                kind: icmp_inverse_type(self.proto, kind)?,
                code,
                id,
            },
        };
        Some(Tuple {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            l4,
            zone: None,
        })
    }

    fn l4_src_key(&self) -> u16 {
        match self.l4 {
            L4Tuple::Ports { src, .. } => src,
            L4Tuple::Icmp { id, .. } => id,
            L4Tuple::None => 0,
        }
    }

    fn l4_dst_key(&self) -> u16 {
        match self.l4 {
            L4Tuple::Ports { dst, .. } => dst,
            L4Tuple::Icmp { id, .. } => id,
            L4Tuple::None => 0,
        }
    }
}

/// The ICMP or ICMPv6 type of the other direction: `invmap` of
/// `nf_conntrack_proto_icmp.c` (echo 8/0, timestamp 13/14, information
/// 15/16, address mask 17/18) and `nf_conntrack_proto_icmpv6.c` (echo
/// 128/129, node information 139/140).
fn icmp_inverse_type(proto: L4Proto, kind: u8) -> Option<u8> {
    const ICMP: [(u8, u8); 4] = [(8, 0), (13, 14), (15, 16), (17, 18)];
    const ICMPV6: [(u8, u8); 2] = [(128, 129), (139, 140)];
    let pairs: &[(u8, u8)] = match proto {
        L4Proto::ICMP => &ICMP,
        L4Proto::ICMPV6 => &ICMPV6,
        _ => return None,
    };
    pairs.iter().find_map(|&(request, reply)| {
        if kind == request {
            Some(reply)
        } else if kind == reply {
            Some(request)
        } else {
            None
        }
    })
}

/// An address and a port-like key (port, GRE key or ICMP id; 0 when the
/// protocol has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// The address.
    pub addr: IpAddr,
    /// The port, GRE key or ICMP id.
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn inverse_swaps_addresses_and_ports_and_drops_the_zone() {
        let mut t = Tuple::new(
            ip("fd00::1"),
            ip("fd00::2"),
            L4Proto::UDP,
            L4Tuple::Ports { src: 5353, dst: 53 },
        );
        t.zone = Some(7);
        let r = t.inverse().unwrap();
        assert_eq!((r.src, r.dst, r.proto), (t.dst, t.src, L4Proto::UDP));
        assert_eq!(r.l4, L4Tuple::Ports { src: 53, dst: 5353 });
        assert_eq!(r.zone, None);
        assert_eq!(r.inverse(), Some(Tuple { zone: None, ..t }));
        // GRE keys and the generic tracker's empty layer 4 swap the same way.
        let gre = Tuple::new(
            t.src,
            t.dst,
            L4Proto::GRE,
            L4Tuple::Ports { src: 1, dst: 2 },
        );
        assert_eq!(gre.inverse().unwrap().l4, L4Tuple::Ports { src: 2, dst: 1 });
        let generic = Tuple::new(t.src, t.dst, L4Proto(132), L4Tuple::None);
        assert_eq!(generic.inverse().unwrap().l4, L4Tuple::None);
    }

    #[test]
    fn inverse_of_every_icmp_type_is_its_pair_or_none() {
        for (proto, pairs) in [
            (L4Proto::ICMP, &[(8, 0), (13, 14), (15, 16), (17, 18)][..]),
            (L4Proto::ICMPV6, &[(128, 129), (139, 140)][..]),
        ] {
            for kind in 0..=u8::MAX {
                let t = Tuple::new(
                    ip("10.0.0.1"),
                    ip("10.0.0.2"),
                    proto,
                    L4Tuple::Icmp {
                        kind,
                        code: 3,
                        id: 9,
                    },
                );
                let want = pairs
                    .iter()
                    .find_map(|&(a, b)| (kind == a).then_some(b).or((kind == b).then_some(a)));
                let got = t.inverse().map(|r| r.l4);
                assert_eq!(
                    got,
                    want.map(|k| L4Tuple::Icmp {
                        kind: k,
                        code: 3,
                        id: 9
                    }),
                    "{proto} type {kind}"
                );
                if let Some(r) = t.inverse() {
                    assert_eq!(r.inverse(), Some(t));
                }
            }
        }
        // ICMP fields on a protocol without an ICMP tracker.
        let odd = Tuple::new(
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            L4Proto::TCP,
            L4Tuple::Icmp {
                kind: 8,
                code: 0,
                id: 1,
            },
        );
        assert_eq!(odd.inverse(), None);
    }
}
