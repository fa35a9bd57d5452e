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

use super::attr::*;
use super::error::{DecodeError, ErrorKind};
use super::nla::{Attr, Attrs, relabel};
use conntrack_core::{L4Proto, L4Tuple, Tuple};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The attributes nested in `a` (an attribute of namespace `space`), or
/// [`ErrorKind::NotNested`] when the payload is too short to be a list of
/// attributes.
#[inline(always)]
pub(crate) fn nest<'a>(a: &Attr<'a>, space: Space) -> Result<Attrs<'a>, DecodeError> {
    let len = a.value().len();
    if len != 0 && len < 4 {
        return Err(DecodeError::at(
            a.offset(),
            space,
            a.ty(),
            ErrorKind::NotNested { len: len as u16 },
        ));
    }
    Ok(a.nested())
}

/// Walks the nest `a` (an attribute of `space`), calling `f` for every
/// child; errors from `f` and from the walk get `a` put in front of their
/// path.
#[inline(always)]
pub(crate) fn for_each<'a>(
    a: &Attr<'a>,
    space: Space,
    mut f: impl FnMut(&Attr<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let child = space.child(a.ty());
    let mut it = nest(a, space)?;
    loop {
        match it.next_attr() {
            Ok(Some(c)) => f(&c).map_err(|e| e.within(space, a.ty()))?,
            Ok(None) => return Ok(()),
            Err(e) => return Err(relabel(e, child).within(space, a.ty())),
        }
    }
}

/// The general, order-agnostic tuple decoder with full validation.
#[inline(never)]
pub(crate) fn decode_tuple_general(a: &Attr<'_>, space: Space) -> Result<Tuple, DecodeError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::nla::Attrs;

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
        decode_tuple_general(&a, Space::Conntrack)
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
}
