//! Compact keys of the mirror's hash maps: the original tuple and the zone
//! of an entry in 16 bytes (IPv4) or 40 bytes (IPv6), instead of the 48
//! bytes of a core `Tuple` plus the zone.

use conntrack_core::{L4Proto, L4Tuple, Tuple};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const L4_NONE: u8 = 0;
const L4_PORTS: u8 = 1;
const L4_ICMP: u8 = 2;

fn l4_parts(l4: L4Tuple) -> (u8, u16, u16) {
    match l4 {
        L4Tuple::None => (L4_NONE, 0, 0),
        L4Tuple::Ports { src, dst } => (L4_PORTS, src, dst),
        L4Tuple::Icmp { kind, code, id } => (L4_ICMP, id, u16::from_be_bytes([kind, code])),
    }
}

fn l4_from(kind: u8, a: u16, b: u16) -> L4Tuple {
    match kind {
        L4_PORTS => L4Tuple::Ports { src: a, dst: b },
        L4_ICMP => {
            let [k, c] = b.to_be_bytes();
            L4Tuple::Icmp {
                kind: k,
                code: c,
                id: a,
            }
        }
        _ => L4Tuple::None,
    }
}

/// A compact key: original tuple and zone (direction zones are dropped).
pub(super) trait CompactKey: Copy + Eq + Hash {
    fn from_tuple(t: &Tuple, zone: u16) -> Option<Self>;
    fn tuple(&self) -> Tuple;
    fn zone(&self) -> u16;
}

/// IPv4 key: 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct V4Key {
    src: u32,
    dst: u32,
    a: u16,
    b: u16,
    zone: u16,
    proto: u8,
    l4: u8,
}

/// IPv6 key: 40 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct V6Key {
    src: [u8; 16],
    dst: [u8; 16],
    a: u16,
    b: u16,
    zone: u16,
    proto: u8,
    l4: u8,
}

impl CompactKey for V4Key {
    fn from_tuple(t: &Tuple, zone: u16) -> Option<Self> {
        let (IpAddr::V4(s), IpAddr::V4(d)) = (t.src, t.dst) else {
            return None;
        };
        let (l4, a, b) = l4_parts(t.l4);
        Some(V4Key {
            src: u32::from(s),
            dst: u32::from(d),
            a,
            b,
            zone,
            proto: t.proto.0,
            l4,
        })
    }
    fn tuple(&self) -> Tuple {
        Tuple::new(
            IpAddr::V4(Ipv4Addr::from(self.src)),
            IpAddr::V4(Ipv4Addr::from(self.dst)),
            L4Proto(self.proto),
            l4_from(self.l4, self.a, self.b),
        )
    }
    fn zone(&self) -> u16 {
        self.zone
    }
}

impl CompactKey for V6Key {
    fn from_tuple(t: &Tuple, zone: u16) -> Option<Self> {
        let v6 = |a: IpAddr| match a {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        let (l4, a, b) = l4_parts(t.l4);
        Some(V6Key {
            src: v6(t.src),
            dst: v6(t.dst),
            a,
            b,
            zone,
            proto: t.proto.0,
            l4,
        })
    }
    fn tuple(&self) -> Tuple {
        Tuple::new(
            IpAddr::V6(Ipv6Addr::from(self.src)),
            IpAddr::V6(Ipv6Addr::from(self.dst)),
            L4Proto(self.proto),
            l4_from(self.l4, self.a, self.b),
        )
    }
    fn zone(&self) -> u16 {
        self.zone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(core::mem::size_of::<V4Key>(), 16);
        assert_eq!(core::mem::size_of::<V6Key>(), 40);
    }

    #[test]
    fn keys_round_trip() {
        let ip = |s: &str| s.parse().unwrap();
        for t in [
            Tuple::new(
                ip("10.0.0.1"),
                ip("10.0.0.2"),
                L4Proto::ICMP,
                L4Tuple::Icmp {
                    kind: 8,
                    code: 0,
                    id: 77,
                },
            ),
            Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto(50), L4Tuple::None),
        ] {
            assert_eq!(V4Key::from_tuple(&t, 3).unwrap().tuple(), t);
        }
        let t6 = Tuple::new(
            ip("fd00::1"),
            ip("2001:db8::2"),
            L4Proto::UDP,
            L4Tuple::Ports { src: 5, dst: 53 },
        );
        assert!(V4Key::from_tuple(&t6, 0).is_none());
        let k = V6Key::from_tuple(&t6, 9).unwrap();
        assert_eq!((k.tuple(), k.zone()), (t6, 9));
    }
}
