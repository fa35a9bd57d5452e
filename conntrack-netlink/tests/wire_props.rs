//! Properties of the wire decoder: encode/decode round trips for arbitrary
//! flows, no panics on arbitrary or mutated input, and one bad flow
//! costing exactly one item.

use conntrack_core::{
    Counters, DccpInfo, DccpState, Flow, L4Proto, L4Tuple, Labels, ProtoInfo, SctpInfo, SctpState,
    SeqAdj, Status, Synproxy, TcpFlags, TcpInfo, TcpState, Timestamp, Tuple,
};
use conntrack_netlink::wire::encode::{self, Pad64};
use conntrack_netlink::wire::message::{
    IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_NEW, NLM_F_MULTI, NLMSG_DONE, ct_type,
};
use conntrack_netlink::wire::{
    ErrorKind, FlowView, decode_stats_cpu, decode_stats_global, flows, messages,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod support;
use support::fixture;

fn addr_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| (Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into())),
        (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into())),
    ]
}

fn l4() -> impl Strategy<Value = L4Tuple> {
    prop_oneof![
        Just(L4Tuple::None),
        (any::<u16>(), any::<u16>()).prop_map(|(src, dst)| L4Tuple::Ports { src, dst }),
        (any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(kind, code, id)| L4Tuple::Icmp {
            kind,
            code,
            id
        }),
    ]
}

fn tuple() -> impl Strategy<Value = Tuple> {
    (addr_pair(), any::<u8>(), l4(), any::<Option<u16>>()).prop_map(|((src, dst), p, l4, zone)| {
        Tuple {
            src,
            dst,
            proto: L4Proto(p),
            l4,
            zone,
        }
    })
}

fn tcp_flags() -> impl Strategy<Value = Option<TcpFlags>> {
    any::<Option<(u8, u8)>>().prop_map(|f| f.map(|(flags, mask)| TcpFlags { flags, mask }))
}

fn protoinfo() -> impl Strategy<Value = Option<ProtoInfo>> {
    prop_oneof![
        Just(None),
        (
            any::<u8>(),
            any::<Option<u8>>(),
            any::<Option<u8>>(),
            tcp_flags(),
            tcp_flags()
        )
            .prop_map(|(s, wo, wr, fo, fr)| Some(ProtoInfo::Tcp({
                let mut info = TcpInfo::new(TcpState(s));
                info.wscale_orig = wo;
                info.wscale_reply = wr;
                info.flags_orig = fo;
                info.flags_reply = fr;
                info
            }))),
        (any::<u8>(), any::<Option<u32>>(), any::<Option<u32>>()).prop_map(|(s, o, r)| Some(
            ProtoInfo::Sctp({
                let mut info = SctpInfo::new(SctpState(s));
                info.vtag_orig = o;
                info.vtag_reply = r;
                info
            })
        )),
        (any::<u8>(), any::<Option<u8>>(), any::<Option<u64>>()).prop_map(|(s, r, h)| Some(
            ProtoInfo::Dccp({
                let mut info = DccpInfo::new(DccpState(s));
                info.role = r;
                info.handshake_seq = h;
                info
            })
        )),
    ]
}

fn counters() -> impl Strategy<Value = Option<Counters>> {
    any::<Option<(u64, u64)>>().prop_map(|c| c.map(|(packets, bytes)| Counters { packets, bytes }))
}

fn seqadj() -> impl Strategy<Value = Option<SeqAdj>> {
    any::<Option<(u32, u32, u32)>>().prop_map(|s| {
        s.map(|(a, b, c)| SeqAdj {
            correction_pos: a,
            offset_before: b,
            offset_after: c,
        })
    })
}

fn name() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[^\0]{0,40}")
}

prop_compose! {
    fn flow()(
        orig in tuple(),
        reply in tuple(),
        master in proptest::option::of(tuple()),
        status in any::<u32>(),
        protoinfo in protoinfo(),
        scalars in any::<(Option<u32>, Option<u32>, Option<u16>, Option<u32>, Option<u32>, Option<u32>)>(),
        co in counters(),
        cr in counters(),
        ts in any::<Option<(u64, Option<u64>)>>(),
        labels in any::<Option<[u8; 16]>>(),
        helper in name(),
        secctx in name(),
        so in seqadj(),
        sr in seqadj(),
        syn in any::<Option<(u32, u32, u32)>>(),
    ) -> Flow {
        let (timeout, mark, zone, id, use_count, secmark) = scalars;
        {
            let mut f = Flow::new(orig, reply, Status::from_bits_retain(status));
            f.master = master;
            f.protoinfo = protoinfo;
            f.timeout = timeout;
            f.mark = mark;
            f.zone = zone;
            f.id = id;
            f.use_count = use_count;
            f.counters_orig = co;
            f.counters_reply = cr;
            f.timestamp = ts.map(|(start, stop)| Timestamp { start, stop });
            f.labels = labels.map(Labels);
            f.helper = helper;
            f.secctx = secctx;
            f.secmark = secmark;
            f.seqadj_orig = so;
            f.seqadj_reply = sr;
            f.synproxy = syn.map(|(isn, its, tsoff)| Synproxy { isn, its, tsoff });
            f
        }
    }
}

/// Decodes everything the buffer holds with every entry point, checking
/// the invariants that hold for any input.
fn decode_all(buf: &[u8]) {
    let mut it = flows(buf);
    for item in it.by_ref() {
        match item {
            Ok(v) => {
                let f = v.to_owned();
                assert_eq!(f.orig, v.orig());
                let _ = (v.state(), v.nat(), v.key());
                for a in v.attrs() {
                    let _ = a;
                }
            }
            Err(e) => {
                assert!(e.offset <= buf.len(), "{e} beyond {}", buf.len());
                let _ = e.to_string();
            }
        }
    }
    assert!(it.position() <= buf.len() + 3);
    for m in messages(buf) {
        let Ok(m) = m else { break };
        let _ = FlowView::parse(m.payload);
        let _ = decode_stats_cpu(m.payload);
        let _ = decode_stats_global(m.payload);
        let _ = (m.error_code(), m.nfgenmsg());
    }
    let _ = FlowView::parse(buf);
    let _ = decode_stats_cpu(buf);
}

proptest! {
    #[test]
    fn roundtrip_as_kernel(f in flow(), pad in any::<bool>()) {
        let pad = if pad { Pad64::Aligned } else { Pad64::None };
        let mut p = vec![2, 0, 0, 0];
        encode::encode_flow_as_kernel_with(&f, &mut p, pad);
        let v = FlowView::parse(&p).unwrap();
        prop_assert_eq!(v.to_owned(), f);
    }

    #[test]
    fn roundtrip_request(f in flow()) {
        // encode_flow writes only what a CT_NEW request carries.
        let mut p = vec![2, 0, 0, 0];
        encode::encode_flow(&f, &mut p);
        let v = FlowView::parse(&p).unwrap();
        prop_assert_eq!(v.orig(), f.orig);
        prop_assert_eq!(v.reply(), f.reply);
        prop_assert_eq!(v.master(), f.master);
        prop_assert_eq!(v.status(), f.status);
        prop_assert_eq!(v.protoinfo(), f.protoinfo);
        prop_assert_eq!((v.timeout(), v.mark(), v.zone()), (f.timeout, f.mark, f.zone));
        prop_assert_eq!(v.helper(), f.helper.as_deref());
        prop_assert_eq!(v.labels(), f.labels);
        prop_assert_eq!((v.seqadj_orig(), v.seqadj_reply(), v.synproxy()), (f.seqadj_orig, f.seqadj_reply, f.synproxy));
        prop_assert_eq!((v.id(), v.use_count(), v.counters_orig(), v.timestamp()), (None, None, None, None));
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&buf);
    }

    #[test]
    fn arbitrary_payload_after_valid_header(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        // A well-framed ctnetlink message with random attributes.
        let mut buf = Vec::new();
        let m = encode::begin_message(&mut buf, ct_type(IPCTNL_MSG_CT_NEW), 0, 1, 2);
        buf.extend_from_slice(&body);
        encode::finish_message(&mut buf, m);
        decode_all(&buf);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..5,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<Option<prop::sample::Index>>(),
        splice in any::<Option<(prop::sample::Index, prop::sample::Index, prop::sample::Index)>>(),
    ) {
        let name = ["dump.bin", "events.bin", "get.bin", "stats_cpu.bin", "dump_ipv6.bin"][which];
        let mut buf = fixture(name);
        for (i, x) in flips {
            let i = i.index(buf.len());
            buf[i] ^= x;
        }
        if let Some((a, b, at)) = splice {
            // Copy a random slice of the buffer to a random place.
            let (a, b) = (a.index(buf.len()), b.index(buf.len()));
            let piece = buf[a.min(b)..a.max(b)].to_vec();
            let at = at.index(buf.len());
            buf.splice(at..at, piece);
        }
        if let Some(c) = cut {
            let c = c.index(buf.len());
            buf.truncate(c);
        }
        decode_all(&buf);
    }

    #[test]
    fn one_bad_flow_costs_one_item(
        fs in proptest::collection::vec(flow(), 1..6),
        bad in any::<prop::sample::Index>(),
        how in 0u8..4,
    ) {
        let bad = bad.index(fs.len());
        let mut buf = Vec::new();
        for (i, f) in fs.iter().enumerate() {
            let ty = if i % 2 == 0 { IPCTNL_MSG_CT_NEW } else { IPCTNL_MSG_CT_DELETE };
            let m = encode::begin_message(&mut buf, ct_type(ty), NLM_F_MULTI, 7, 2);
            let attrs = buf.len();
            encode::encode_flow_as_kernel(f, &mut buf);
            if i == bad {
                corrupt(&mut buf[attrs..], how);
            }
            encode::finish_message(&mut buf, m);
        }
        let m = encode::begin_message(&mut buf, NLMSG_DONE, NLM_F_MULTI, 7, 0);
        encode::finish_message(&mut buf, m);

        let mut it = flows(&buf);
        let items: Vec<_> = it.by_ref().collect();
        prop_assert!(it.is_done());
        prop_assert_eq!(items.len(), fs.len());
        for (i, (item, f)) in items.iter().zip(&fs).enumerate() {
            if i == bad {
                let e = item.as_ref().unwrap_err();
                prop_assert!(e.offset < buf.len());
                match how {
                    0 => prop_assert!(matches!(e.kind, ErrorKind::BadLength { .. }), "{:?}", e),
                    1 => prop_assert_eq!(e.kind, ErrorKind::Missing),
                    2 => prop_assert!(matches!(e.kind, ErrorKind::AttrTooShort { .. }), "{:?}", e),
                    _ => prop_assert!(matches!(e.kind, ErrorKind::AttrBeyondEnd { .. }), "{:?}", e),
                }
            } else {
                prop_assert_eq!(&item.as_ref().unwrap().to_owned(), f);
            }
        }
    }
}

/// Makes the attributes of one flow (as `encode_flow_as_kernel` wrote
/// them) certainly malformed, in one of four ways, without touching the
/// message framing.
fn corrupt(attrs: &mut [u8], how: u8) {
    // Find CTA_STATUS (always written, after the tuples).
    let mut pos = 0;
    let mut status = None;
    let mut reply = None;
    while pos + 4 <= attrs.len() {
        let len = u16::from_ne_bytes([attrs[pos], attrs[pos + 1]]) as usize;
        let ty = u16::from_ne_bytes([attrs[pos + 2], attrs[pos + 3]]) & 0x3fff;
        match ty {
            2 => reply = Some(pos),
            3 => status = Some(pos),
            _ => {}
        }
        pos += (len + 3) & !3;
    }
    let (status, reply) = (status.unwrap(), reply.unwrap());
    match how {
        // CTA_STATUS with a 3-byte payload (the next attribute still
        // starts where it did, after alignment).
        0 => attrs[status] = 7,
        // CTA_TUPLE_REPLY renamed to an unknown type: the reply is missing.
        1 => attrs[reply + 2..reply + 4].copy_from_slice(&(200u16 | 0x8000).to_ne_bytes()),
        // CTA_STATUS with nla_len 2.
        2 => attrs[status] = 2,
        // CTA_STATUS running past the end of the message.
        _ => attrs[status..status + 2].copy_from_slice(&u16::MAX.to_ne_bytes()),
    }
}
