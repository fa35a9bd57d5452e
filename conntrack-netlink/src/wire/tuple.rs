//! Tuples (`CTA_TUPLE_ORIG`, `CTA_TUPLE_REPLY`, `CTA_TUPLE_MASTER`):
//! a nest of `CTA_TUPLE_IP` (addresses), `CTA_TUPLE_PROTO` (protocol,
//! ports or ICMP fields) and, with directional zones, `CTA_TUPLE_ZONE`.
//!
//! Tuples decode straight into core's [`Tuple`], which is `Copy` and
//! small: that is cheaper than keeping a view and re-walking the nest on
//! every access, and it validates the tuple in the flow's single pass.
//!
//! The layer 4 part is chosen by what the nest carries, not by the
//! protocol number, so protocols this crate does not know round-trip:
//! ports when `CTA_PROTO_SRC_PORT`/`DST_PORT` are present (both required),
//! ICMP when the ICMP or ICMPv6 id/type/code are present (all three
//! required), none otherwise.
//!
//! In this file, as in every nest's file: the general decoder, the fast
//! path for the kernel's layouts (see `fast.rs`), and the encoder, then
//! tests.

use super::attr::*;
use super::encode::{begin_nest, end_nest, put_attr, put_be16, put_u8};
use super::error::{DecodeError, ErrorKind};
use super::fast::{be16, hdr, set_addr, word};
use super::nla::{Attr, NLA_HDRLEN, for_each};
use conntrack_core::{L4Proto, L4Tuple, Tuple};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// Decoding, general path

/// The general, order-agnostic tuple decoder with full validation.
#[inline(never)]
pub(super) fn decode(a: &Attr<'_>, space: Space) -> Result<Tuple, DecodeError> {
    let mut src: Option<IpAddr> = None;
    let mut dst: Option<IpAddr> = None;
    let mut ip_at: Option<usize> = None;
    let mut num: Option<u8> = None;
    let mut proto_at: Option<usize> = None;
    let (mut sport, mut dport) = (None, None);
    let (mut icmp_id, mut icmp_type, mut icmp_code) = (None, None, None);
    let mut zone = None;

    for_each(a, space, |t| {
        match CtaTupleAttr(t.ty()) {
            CTA_TUPLE_IP => {
                ip_at = Some(t.offset());
                for_each(t, Space::Tuple, |ip| {
                    match CtaIpAttr(ip.ty()) {
                        CTA_IP_V4_SRC => {
                            src = Some(Ipv4Addr::from(ip.array::<4>(Space::Ip)?).into())
                        }
                        CTA_IP_V4_DST => {
                            dst = Some(Ipv4Addr::from(ip.array::<4>(Space::Ip)?).into())
                        }
                        CTA_IP_V6_SRC => {
                            src = Some(Ipv6Addr::from(ip.array::<16>(Space::Ip)?).into())
                        }
                        CTA_IP_V6_DST => {
                            dst = Some(Ipv6Addr::from(ip.array::<16>(Space::Ip)?).into())
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            CTA_TUPLE_PROTO => {
                proto_at = Some(t.offset());
                for_each(t, Space::Tuple, |p| {
                    match CtaProtoAttr(p.ty()) {
                        CTA_PROTO_NUM => num = Some(p.u8(Space::Proto)?),
                        CTA_PROTO_SRC_PORT => sport = Some(p.be16(Space::Proto)?),
                        CTA_PROTO_DST_PORT => dport = Some(p.be16(Space::Proto)?),
                        CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => {
                            icmp_id = Some(p.be16(Space::Proto)?)
                        }
                        CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => {
                            icmp_type = Some(p.u8(Space::Proto)?)
                        }
                        CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => {
                            icmp_code = Some(p.u8(Space::Proto)?)
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            CTA_TUPLE_ZONE => zone = Some(t.be16(Space::Tuple)?),
            _ => {}
        }
        Ok(())
    })?;

    // Missing pieces: the path is the tuple, then what is missing.
    let missing = |at: usize, sp: Space, ty: u16, inner: Option<(Space, u16)>| {
        let e = match inner {
            Some((isp, ity)) => DecodeError::at(at, isp, ity, ErrorKind::Missing).within(sp, ty),
            None => DecodeError::at(at, sp, ty, ErrorKind::Missing),
        };
        e.within(space, a.ty())
    };
    let Some(ip_at) = ip_at else {
        return Err(missing(a.offset(), Space::Tuple, CTA_TUPLE_IP.0, None));
    };
    let (src, dst) = match (src, dst) {
        (Some(s @ IpAddr::V4(_)), Some(d @ IpAddr::V4(_)))
        | (Some(s @ IpAddr::V6(_)), Some(d @ IpAddr::V6(_))) => (s, d),
        (Some(_), Some(_)) => {
            return Err(DecodeError::at(
                ip_at,
                Space::Tuple,
                CTA_TUPLE_IP.0,
                ErrorKind::MixedFamilies,
            )
            .within(space, a.ty()));
        }
        (None, d) => {
            let ty = if matches!(d, Some(IpAddr::V6(_))) {
                CTA_IP_V6_SRC
            } else {
                CTA_IP_V4_SRC
            };
            let inner = Some((Space::Ip, ty.0));
            return Err(missing(ip_at, Space::Tuple, CTA_TUPLE_IP.0, inner));
        }
        (Some(s), None) => {
            let ty = if s.is_ipv6() {
                CTA_IP_V6_DST
            } else {
                CTA_IP_V4_DST
            };
            let inner = Some((Space::Ip, ty.0));
            return Err(missing(ip_at, Space::Tuple, CTA_TUPLE_IP.0, inner));
        }
    };
    let Some(proto_at) = proto_at else {
        return Err(missing(a.offset(), Space::Tuple, CTA_TUPLE_PROTO.0, None));
    };
    let miss_proto = |ty: CtaProtoAttr| {
        missing(
            proto_at,
            Space::Tuple,
            CTA_TUPLE_PROTO.0,
            Some((Space::Proto, ty.0)),
        )
    };
    let Some(num) = num else {
        return Err(miss_proto(CTA_PROTO_NUM));
    };
    let proto = L4Proto(num);
    let v6 = proto == L4Proto::ICMPV6;
    let l4 = match (sport, dport, icmp_id, icmp_type, icmp_code) {
        (Some(src), Some(dst), ..) => L4Tuple::Ports { src, dst },
        (Some(_), None, ..) => return Err(miss_proto(CTA_PROTO_DST_PORT)),
        (None, Some(_), ..) => return Err(miss_proto(CTA_PROTO_SRC_PORT)),
        (None, None, None, None, None) => L4Tuple::None,
        (None, None, Some(id), Some(kind), Some(code)) => L4Tuple::Icmp { kind, code, id },
        (None, None, id, kind, _) => {
            let ty = match (id.is_none(), kind.is_none(), v6) {
                (true, _, false) => CTA_PROTO_ICMP_ID,
                (true, _, true) => CTA_PROTO_ICMPV6_ID,
                (false, true, false) => CTA_PROTO_ICMP_TYPE,
                (false, true, true) => CTA_PROTO_ICMPV6_TYPE,
                (false, false, false) => CTA_PROTO_ICMP_CODE,
                (false, false, true) => CTA_PROTO_ICMPV6_CODE,
            };
            return Err(miss_proto(ty));
        }
    };
    Ok(Tuple {
        src,
        dst,
        proto,
        l4,
        zone,
    })
}

// The fast path

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

/// `CTA_TUPLE_IP { SRC, DST }` with `A`-byte addresses (4: IPv4, 16:
/// IPv6), then `CTA_TUPLE_PROTO` (see [`l4`]), at the start of `b`.
#[inline(always)]
fn tuple_ip<const N: usize, const A: usize>(b: &[u8; N], out: &mut Tuple) -> bool {
    const { assert!(A == 4 || A == 16) };
    let (src, dst) = if A == 4 {
        (CTA_IP_V4_SRC, CTA_IP_V4_DST)
    } else {
        (CTA_IP_V6_SRC, CTA_IP_V6_DST)
    };
    let attr = NLA_HDRLEN + A; // one address attribute
    let nest = NLA_HDRLEN + 2 * attr; // the CTA_TUPLE_IP nest
    if word(b, 0) != hdr(nest as u16, CTA_TUPLE_IP.0)
        || word(b, NLA_HDRLEN) != hdr(attr as u16, src.0)
        || word(b, NLA_HDRLEN + attr) != hdr(attr as u16, dst.0)
    {
        return false;
    }
    let Some((proto, l4)) = l4(b, nest) else {
        return false;
    };
    // Field by field, the addresses in place (see `set_addr`).
    set_addr::<N, A>(&mut out.src, b, 2 * NLA_HDRLEN);
    set_addr::<N, A>(&mut out.dst, b, 2 * NLA_HDRLEN + attr);
    out.proto = proto;
    out.l4 = l4;
    out.zone = None;
    true
}

/// Decodes a tuple nest's payload in one of the kernel's four common
/// layouts (IPv4/IPv6 with ports/ICMP, no tuple zone) into `out`; returns
/// false (and leaves `out` unchanged) for anything else.
#[inline(always)]
pub(super) fn decode_fast_into(v: &[u8], out: &mut Tuple) -> bool {
    // 20 bytes of addresses (IPv4) or 44 (IPv6), then 28 bytes of ports or
    // 36 of ICMP id, type and code.
    if let Ok(b) = <&[u8; 48]>::try_from(v) {
        tuple_ip::<48, 4>(b, out)
    } else if let Ok(b) = <&[u8; 56]>::try_from(v) {
        tuple_ip::<56, 4>(b, out)
    } else if let Ok(b) = <&[u8; 72]>::try_from(v) {
        tuple_ip::<72, 16>(b, out)
    } else if let Ok(b) = <&[u8; 80]>::try_from(v) {
        tuple_ip::<80, 16>(b, out)
    } else {
        false
    }
}

/// A tuple value used only until the real one is decoded.
pub(super) const PLACEHOLDER: Tuple = Tuple {
    src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    proto: L4Proto(0),
    l4: L4Tuple::None,
    zone: None,
};

// Encoding

/// Appends a tuple nest of type `ty` (`CTA_TUPLE_ORIG`, `_REPLY` or
/// `_MASTER`) in the kernel's order: addresses, protocol and ports (or
/// ICMP id, type, code; the ICMPv6 attribute numbers for protocol 58),
/// then the direction zone when set.
pub fn put_tuple(out: &mut Vec<u8>, ty: CtaAttr, t: &Tuple) {
    let n = begin_nest(out, ty.0);
    let ip = begin_nest(out, CTA_TUPLE_IP.0);
    match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            put_attr(out, CTA_IP_V4_SRC.0, &s.octets());
            put_attr(out, CTA_IP_V4_DST.0, &d.octets());
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                IpAddr::V6(a) => a.octets(),
            };
            put_attr(out, CTA_IP_V6_SRC.0, &v6(s));
            put_attr(out, CTA_IP_V6_DST.0, &v6(d));
        }
    }
    end_nest(out, ip);
    let p = begin_nest(out, CTA_TUPLE_PROTO.0);
    put_u8(out, CTA_PROTO_NUM.0, t.proto.0);
    match t.l4 {
        L4Tuple::None => {}
        L4Tuple::Ports { src, dst } => {
            put_be16(out, CTA_PROTO_SRC_PORT.0, src);
            put_be16(out, CTA_PROTO_DST_PORT.0, dst);
        }
        L4Tuple::Icmp { kind, code, id } => {
            let (i, t, c) = if t.proto == L4Proto::ICMPV6 {
                (
                    CTA_PROTO_ICMPV6_ID,
                    CTA_PROTO_ICMPV6_TYPE,
                    CTA_PROTO_ICMPV6_CODE,
                )
            } else {
                (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE)
            };
            put_be16(out, i.0, id);
            put_u8(out, t.0, kind);
            put_u8(out, c.0, code);
        }
    }
    end_nest(out, p);
    if let Some(z) = t.zone {
        put_be16(out, CTA_TUPLE_ZONE.0, z);
    }
    end_nest(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::nla::Attrs;
    use proptest::prelude::*;

    // CTA_TUPLE_ORIG as this kernel sends it for 10.0.0.1:40000 -> 10.0.0.2:80/tcp.
    const TCP4: [u8; 52] = [
        52, 0, 1, 0x80, // CTA_TUPLE_ORIG | NLA_F_NESTED
        20, 0, 1, 0x80, // CTA_TUPLE_IP
        8, 0, 1, 0, 10, 0, 0, 1, // CTA_IP_V4_SRC
        8, 0, 2, 0, 10, 0, 0, 2, // CTA_IP_V4_DST
        28, 0, 2, 0x80, // CTA_TUPLE_PROTO
        5, 0, 1, 0, 6, 0, 0, 0, // CTA_PROTO_NUM tcp
        6, 0, 2, 0, 0x9c, 0x40, 0, 0, // CTA_PROTO_SRC_PORT 40000
        6, 0, 3, 0, 0, 80, 0, 0, // CTA_PROTO_DST_PORT 80
    ];

    fn tuple(buf: &[u8]) -> Result<Tuple, DecodeError> {
        let a = Attrs::new(buf, 0).next().unwrap().unwrap();
        decode(&a, Space::Conntrack)
    }

    #[test]
    fn parse_tcp4() {
        let t = tuple(&TCP4).unwrap();
        assert_eq!(t.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(t.dst, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(t.proto, L4Proto::TCP);
        assert_eq!(
            t.l4,
            L4Tuple::Ports {
                src: 40000,
                dst: 80
            }
        );
        assert_eq!(t.zone, None);
    }

    #[test]
    fn bad_address_length() {
        let mut buf = TCP4;
        buf[8] = 7; // CTA_IP_V4_SRC nla_len 7: payload 3
        let e = tuple(&buf).unwrap_err();
        assert_eq!(e.offset, 8);
        assert_eq!(
            e.to_string(),
            "CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC at byte 8: length 3, expected 4"
        );
    }

    #[test]
    fn missing_port_and_proto() {
        let mut buf = TCP4;
        buf[46] = 15; // CTA_PROTO_DST_PORT -> unknown type 15: skipped
        let e = tuple(&buf).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Missing);
        assert_eq!(e.offset, 24);
        assert_eq!(
            e.path.to_string(),
            "CTA_TUPLE_ORIG/CTA_TUPLE_PROTO/CTA_PROTO_DST_PORT"
        );
        let mut buf = TCP4;
        buf[26] = 9; // CTA_TUPLE_PROTO -> unknown type 9
        let e = tuple(&buf).unwrap_err();
        assert_eq!(e.path.to_string(), "CTA_TUPLE_ORIG/CTA_TUPLE_PROTO");
        assert_eq!((e.offset, e.kind), (0, ErrorKind::Missing));
    }

    #[test]
    fn mixed_families() {
        let mut buf = TCP4.to_vec();
        // Replace V4_DST (8 bytes at 16) by a V6_DST (20 bytes).
        let v6 = [
            20u8, 0, 4, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ];
        buf.splice(16..24, v6);
        buf[4] = 32;
        buf[0] = 64;
        let e = tuple(&buf).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MixedFamilies);
        assert_eq!(e.path.to_string(), "CTA_TUPLE_ORIG/CTA_TUPLE_IP");
    }

    #[test]
    fn not_nested() {
        let buf = [6, 0, 1, 0, 1, 2, 0, 0];
        let e = tuple(&buf).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotNested { len: 2 });
        assert_eq!(e.path.to_string(), "CTA_TUPLE_ORIG");
    }

    #[test]
    fn inner_header_error_is_labelled() {
        let mut buf = TCP4;
        buf[28] = 2; // CTA_PROTO_NUM nla_len 2
        let e = tuple(&buf).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AttrTooShort { len: 2 });
        assert_eq!(e.offset, 28);
        assert_eq!(
            e.path.to_string(),
            "CTA_TUPLE_ORIG/CTA_TUPLE_PROTO/CTA_PROTO_NUM"
        );
    }

    /// [`decode_fast_into`] returning the tuple.
    fn fast(v: &[u8]) -> Option<Tuple> {
        let mut t = PLACEHOLDER;
        decode_fast_into(v, &mut t).then_some(t)
    }

    fn general(v: &[u8]) -> Option<Tuple> {
        let mut buf = Vec::new();
        put_attr(&mut buf, CTA_TUPLE_ORIG.0, v);
        let a = Attrs::new(&buf, 0).next()?.ok()?;
        decode(&a, Space::Conntrack).ok()
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
    fn kernel_layout_takes_the_fast_path() {
        assert_eq!(fast(&TCP4[4..]), tuple(&TCP4).ok());
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
            put_tuple(&mut buf, CTA_TUPLE_ORIG, &t);
            let mut v = buf[4..].to_vec();
            if flips.is_empty() && zone.is_none() && l4 != L4Tuple::None {
                prop_assert_eq!(fast(&v), Some(t), "kernel layouts take the fast path");
            }
            for (i, x) in flips {
                let i = i.index(v.len());
                v[i] ^= x;
            }
            if let Some(fast) = fast(&v) {
                prop_assert_eq!(Some(fast), general(&v));
            }
        }
    }

    #[test]
    fn emit_tuple_icmpv6() {
        let t = Tuple::new(
            "fe80::1".parse().unwrap(),
            "fe80::2".parse().unwrap(),
            L4Proto::ICMPV6,
            L4Tuple::Icmp {
                kind: 128,
                code: 0,
                id: 0x1234,
            },
        );
        let mut out = Vec::new();
        put_tuple(&mut out, CTA_TUPLE_REPLY, &t);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            84, 0, 2, 0x80,
              44, 0, 1, 0x80,
                20, 0, 3, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                20, 0, 4, 0, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
              36, 0, 2, 0x80,
                5, 0, 1, 0, 58, 0, 0, 0,
                6, 0, 7, 0, 0x12, 0x34, 0, 0,
                5, 0, 8, 0, 128, 0, 0, 0,
                5, 0, 9, 0, 0, 0, 0, 0,
        ];
        assert_eq!(out, expected);
    }
}
