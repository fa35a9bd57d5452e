//! Fast paths for the nests the kernel emits with a fixed layout: tuples,
//! counters, timestamps and TCP protoinfo.
//!
//! Each function takes a nest's payload and recognises the exact layout
//! `ctnetlink_fill_info` produces (attribute headers compared as whole
//! words, with the `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` bits masked off),
//! then reads the values at fixed positions. Anything else (other order,
//! extra or unknown attributes, padding attributes, other lengths) returns
//! `None` and the caller takes the general path, which validates and
//! reports errors. A fast path only accepts input the general path
//! decodes to the same value (checked by a property test below), so the
//! decoder stays order-agnostic while the common case costs a few
//! compares.

use super::attr::*;
use super::nla::NLA_TYPE_MASK;
use conntrack_core::{Counters, L4Proto, L4Tuple, TcpFlags, TcpInfo, TcpState, Timestamp, Tuple};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An attribute header as a host-order word, flag bits of the type
/// masked off.
const fn hdr(len: u16, ty: u16) -> u32 {
    let l = len.to_ne_bytes();
    let t = ty.to_ne_bytes();
    u32::from_ne_bytes([l[0], l[1], t[0], t[1]])
}

const MASK: u32 = {
    let l = u16::MAX.to_ne_bytes();
    let t = NLA_TYPE_MASK.to_ne_bytes();
    u32::from_ne_bytes([l[0], l[1], t[0], t[1]])
};

#[inline(always)]
fn word<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) & MASK
}

#[inline(always)]
fn be16<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn be64<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

#[inline(always)]
fn v4<const N: usize>(b: &[u8; N], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
}

#[inline(always)]
fn v6<const N: usize>(b: &[u8; N], at: usize) -> IpAddr {
    let mut x = [0u8; 16];
    x.copy_from_slice(&b[at..at + 16]);
    IpAddr::V6(Ipv6Addr::from(x))
}

/// The layer 4 part after the address nest: `PROTO` nest at `at` (its
/// header included), in the kernel's layouts for ports and ICMP/ICMPv6.
#[inline(always)]
fn l4<const N: usize>(b: &[u8; N], at: usize) -> Option<(L4Proto, L4Tuple)> {
    // CTA_TUPLE_PROTO { CTA_PROTO_NUM u8, ... }
    if word(b, at + 4) != hdr(5, CTA_PROTO_NUM.0) {
        return None;
    }
    let proto = L4Proto(b[at + 8]);
    let rest = N - at;
    if rest == 28
        && word(b, at) == hdr(28, CTA_TUPLE_PROTO.0)
        && word(b, at + 12) == hdr(6, CTA_PROTO_SRC_PORT.0)
        && word(b, at + 20) == hdr(6, CTA_PROTO_DST_PORT.0)
    {
        let l4 = L4Tuple::Ports {
            src: be16(b, at + 16),
            dst: be16(b, at + 24),
        };
        return Some((proto, l4));
    }
    if rest == 36 && word(b, at) == hdr(36, CTA_TUPLE_PROTO.0) {
        // ICMP (4, 5, 6) or ICMPv6 (7, 8, 9): id, type, code.
        let id = word(b, at + 12);
        let (i, t, c) = if id == hdr(6, CTA_PROTO_ICMP_ID.0) {
            (
                hdr(6, CTA_PROTO_ICMP_ID.0),
                hdr(5, CTA_PROTO_ICMP_TYPE.0),
                hdr(5, CTA_PROTO_ICMP_CODE.0),
            )
        } else {
            (
                hdr(6, CTA_PROTO_ICMPV6_ID.0),
                hdr(5, CTA_PROTO_ICMPV6_TYPE.0),
                hdr(5, CTA_PROTO_ICMPV6_CODE.0),
            )
        };
        if id == i && word(b, at + 20) == t && word(b, at + 28) == c {
            let l4 = L4Tuple::Icmp {
                kind: b[at + 24],
                code: b[at + 32],
                id: be16(b, at + 16),
            };
            return Some((proto, l4));
        }
    }
    None
}

#[inline(always)]
fn tuple_v4<const N: usize>(b: &[u8; N], out: &mut Tuple) -> bool {
    // CTA_TUPLE_IP { V4_SRC, V4_DST } then CTA_TUPLE_PROTO.
    if word(b, 0) != hdr(20, CTA_TUPLE_IP.0)
        || word(b, 4) != hdr(8, CTA_IP_V4_SRC.0)
        || word(b, 12) != hdr(8, CTA_IP_V4_DST.0)
    {
        return false;
    }
    let Some((proto, l4)) = l4(b, 20) else {
        return false;
    };
    out.src = v4(b, 8);
    out.dst = v4(b, 16);
    out.proto = proto;
    out.l4 = l4;
    out.zone = None;
    true
}

#[inline(always)]
fn tuple_v6<const N: usize>(b: &[u8; N], out: &mut Tuple) -> bool {
    if word(b, 0) != hdr(44, CTA_TUPLE_IP.0)
        || word(b, 4) != hdr(20, CTA_IP_V6_SRC.0)
        || word(b, 24) != hdr(20, CTA_IP_V6_DST.0)
    {
        return false;
    }
    let Some((proto, l4)) = l4(b, 44) else {
        return false;
    };
    out.src = v6(b, 8);
    out.dst = v6(b, 28);
    out.proto = proto;
    out.l4 = l4;
    out.zone = None;
    true
}

/// Decodes a tuple nest's payload in one of the kernel's four common
/// layouts (IPv4/IPv6 with ports/ICMP, no tuple zone) into `out`; returns
/// false (and leaves `out` unchanged) for anything else.
#[inline(always)]
pub(crate) fn tuple_into(v: &[u8], out: &mut Tuple) -> bool {
    if let Ok(b) = <&[u8; 48]>::try_from(v) {
        tuple_v4(b, out)
    } else if let Ok(b) = <&[u8; 56]>::try_from(v) {
        tuple_v4(b, out)
    } else if let Ok(b) = <&[u8; 72]>::try_from(v) {
        tuple_v6(b, out)
    } else if let Ok(b) = <&[u8; 80]>::try_from(v) {
        tuple_v6(b, out)
    } else {
        false
    }
}

/// [`tuple_into`] returning the tuple.
#[cfg(test)]
pub(crate) fn tuple(v: &[u8]) -> Option<Tuple> {
    let mut t = super::flow::PLACEHOLDER;
    tuple_into(v, &mut t).then_some(t)
}

/// The four be32 attributes a dump puts after `CTA_STATUS`:
/// `CTA_MARK`, `CTA_ID`, `CTA_USE`, `CTA_TIMEOUT` (the 32 bytes at the
/// start of `rest`), as `(mark, id, use, timeout)`.
#[inline(always)]
pub(crate) fn after_status(rest: &[u8]) -> Option<(u32, u32, u32, u32)> {
    let b = rest.first_chunk::<32>()?;
    let ok = word(b, 0) == hdr(8, CTA_MARK.0)
        && word(b, 8) == hdr(8, CTA_ID.0)
        && word(b, 16) == hdr(8, CTA_USE.0)
        && word(b, 24) == hdr(8, CTA_TIMEOUT.0);
    let be32 = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    ok.then(|| (be32(4), be32(12), be32(20), be32(28)))
}

/// A counters nest's payload: `CTA_COUNTERS_PACKETS`, `CTA_COUNTERS_BYTES`.
#[inline(always)]
pub(crate) fn counters(v: &[u8]) -> Option<Counters> {
    let b = <&[u8; 24]>::try_from(v).ok()?;
    if word(b, 0) != hdr(12, CTA_COUNTERS_PACKETS.0) || word(b, 12) != hdr(12, CTA_COUNTERS_BYTES.0)
    {
        return None;
    }
    Some(Counters {
        packets: be64(b, 4),
        bytes: be64(b, 16),
    })
}

/// A timestamp nest's payload: `CTA_TIMESTAMP_START`, then maybe
/// `CTA_TIMESTAMP_STOP`.
#[inline(always)]
pub(crate) fn timestamp(v: &[u8]) -> Option<Timestamp> {
    match v.len() {
        12 => {
            let b = <&[u8; 12]>::try_from(v).ok()?;
            (word(b, 0) == hdr(12, CTA_TIMESTAMP_START.0)).then(|| Timestamp {
                start: be64(b, 4),
                stop: None,
            })
        }
        24 => {
            let b = <&[u8; 24]>::try_from(v).ok()?;
            let ok = word(b, 0) == hdr(12, CTA_TIMESTAMP_START.0)
                && word(b, 12) == hdr(12, CTA_TIMESTAMP_STOP.0);
            ok.then(|| Timestamp {
                start: be64(b, 4),
                stop: Some(be64(b, 16)),
            })
        }
        _ => None,
    }
}

/// A protoinfo nest's payload holding the TCP nest with all five
/// attributes in the kernel's order.
#[inline(always)]
pub(crate) fn tcp(v: &[u8]) -> Option<TcpInfo> {
    let b = <&[u8; 44]>::try_from(v).ok()?;
    let ok = word(b, 0) == hdr(44, CTA_PROTOINFO_TCP.0)
        && word(b, 4) == hdr(5, CTA_PROTOINFO_TCP_STATE.0)
        && word(b, 12) == hdr(5, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL.0)
        && word(b, 20) == hdr(5, CTA_PROTOINFO_TCP_WSCALE_REPLY.0)
        && word(b, 28) == hdr(6, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL.0)
        && word(b, 36) == hdr(6, CTA_PROTOINFO_TCP_FLAGS_REPLY.0);
    ok.then(|| TcpInfo {
        state: TcpState(b[8]),
        wscale_orig: Some(b[16]),
        wscale_reply: Some(b[24]),
        flags_orig: Some(TcpFlags {
            flags: b[32],
            mask: b[33],
        }),
        flags_reply: Some(TcpFlags {
            flags: b[40],
            mask: b[41],
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode;
    use crate::wire::nla::Attrs;
    use proptest::prelude::*;

    fn general_tuple(v: &[u8]) -> Option<Tuple> {
        let mut buf = Vec::new();
        encode::put_attr(&mut buf, CTA_TUPLE_ORIG.0, v);
        let a = Attrs::new(&buf, 0).next()?.ok()?;
        crate::wire::tuple::decode_tuple_general(&a, Space::Conntrack).ok()
    }

    fn addrs() -> impl Strategy<Value = (IpAddr, IpAddr)> {
        prop_oneof![
            any::<(u32, u32)>()
                .prop_map(|(a, b)| (Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into())),
            any::<(u128, u128)>()
                .prop_map(|(a, b)| (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into())),
        ]
    }

    fn l4t() -> impl Strategy<Value = L4Tuple> {
        prop_oneof![
            Just(L4Tuple::None),
            any::<(u16, u16)>().prop_map(|(src, dst)| L4Tuple::Ports { src, dst }),
            any::<(u8, u8, u16)>().prop_map(|(kind, code, id)| L4Tuple::Icmp { kind, code, id }),
        ]
    }

    #[test]
    fn kernel_layouts_take_the_fast_paths() {
        let ip = "10.0.0.1".parse().unwrap();
        let t = Tuple::new(ip, ip, L4Proto::TCP, L4Tuple::Ports { src: 1, dst: 2 });
        let mut f = conntrack_core::Flow::new(t, t, conntrack_core::Status::CONFIRMED);
        f.counters_orig = Some(Counters {
            packets: 1,
            bytes: 2,
        });
        f.timestamp = Some(Timestamp {
            start: 3,
            stop: None,
        });
        f.protoinfo = Some(conntrack_core::ProtoInfo::Tcp(TcpInfo {
            state: TcpState::ESTABLISHED,
            wscale_orig: Some(1),
            wscale_reply: Some(2),
            flags_orig: Some(TcpFlags { flags: 3, mask: 4 }),
            flags_reply: Some(TcpFlags { flags: 5, mask: 6 }),
        }));
        (f.mark, f.id, f.use_count, f.timeout) = (Some(7), Some(8), Some(9), Some(10));
        let mut p = Vec::new();
        encode::encode_flow_as_kernel(&f, &mut p);
        let attrs: Vec<_> = Attrs::new(&p, 0).map(|a| a.unwrap()).collect();
        let value = |ty: u16| attrs.iter().find(|a| a.ty() == ty).unwrap().value();
        assert_eq!(tuple(value(1)), Some(t));
        assert_eq!(counters(value(9)), f.counters_orig);
        assert_eq!(timestamp(value(20)), f.timestamp);
        assert_eq!(
            tcp(value(4)).map(conntrack_core::ProtoInfo::Tcp),
            f.protoinfo
        );
        let status = attrs.iter().find(|a| a.ty() == 3).unwrap();
        assert_eq!(after_status(&p[status.offset() + 8..]), Some((7, 8, 9, 10)));
    }

    proptest! {
        /// Whatever the fast path accepts, the general path decodes to the
        /// same tuple: on kernel layouts and on mutations of them.
        #[test]
        fn fast_tuple_agrees(
            (src, dst) in addrs(),
            p in any::<u8>(),
            l4 in l4t(),
            zone in any::<Option<u16>>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        ) {
            let t = Tuple { src, dst, proto: L4Proto(p), l4, zone };
            let mut buf = Vec::new();
            encode::put_tuple(&mut buf, CTA_TUPLE_ORIG, &t);
            let mut v = buf[4..].to_vec();
            if flips.is_empty() && zone.is_none() && l4 != L4Tuple::None {
                prop_assert_eq!(tuple(&v), Some(t), "kernel layouts take the fast path");
            }
            for (i, x) in flips {
                let i = i.index(v.len());
                v[i] ^= x;
            }
            if let Some(fast) = tuple(&v) {
                prop_assert_eq!(Some(fast), general_tuple(&v));
            }
        }

        /// The fast paths for counters, timestamps, TCP protoinfo and the
        /// block after CTA_STATUS are taken on the kernel's layout and agree
        /// with the general path on mutations of it.
        #[test]
        fn fast_nests_agree(
            c in any::<(u64, u64)>(),
            ts in any::<(u64, Option<u64>)>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        ) {
            let ip = "10.0.0.1".parse().unwrap();
            let t = Tuple::new(ip, ip, L4Proto::TCP, L4Tuple::Ports { src: 1, dst: 2 });
            let mut f = conntrack_core::Flow::new(t, t, conntrack_core::Status::CONFIRMED);
            f.counters_orig = Some(Counters { packets: c.0, bytes: c.1 });
            f.mark = Some(c.0 as u32);
            f.id = Some(c.1 as u32);
            f.use_count = Some(1);
            f.timeout = Some((c.0 >> 32) as u32);
            f.timestamp = Some(Timestamp { start: ts.0, stop: ts.1 });
            f.protoinfo = Some(conntrack_core::ProtoInfo::Tcp(TcpInfo {
                state: TcpState(c.0 as u8),
                wscale_orig: Some(1),
                wscale_reply: Some(2),
                flags_orig: Some(TcpFlags { flags: 3, mask: 4 }),
                flags_reply: Some(TcpFlags { flags: 5, mask: 6 }),
            }));
            let mut p = vec![2, 0, 0, 0];
            encode::encode_flow_as_kernel(&f, &mut p);
            prop_assert_eq!(crate::wire::FlowView::parse(&p).unwrap().to_owned(), f.clone());
            // Mutate, then compare fast and general decoding of the flow.
            let mut q = p.clone();
            for (i, x) in flips {
                let i = 4 + i.index(q.len() - 4);
                q[i] ^= x;
            }
            let fast = crate::wire::FlowView::parse(&q).map(|v| v.to_owned());
            let slow = crate::wire::flow::parse_general(&q).map(|v| v.to_owned());
            prop_assert_eq!(fast, slow);
        }
    }
}
