//! Builders shared by this crate's tests: flows with the reply tuple the
//! kernel would compute, addresses, kernel-layout messages, fixtures and
//! the live-test gate.
//!
//! The integration tests include it with `mod support;`; the unit tests
//! in `src/` include the same file (`#[path]` in `lib.rs`, where the crate
//! also names itself `conntrack_netlink` for the tests), so there is one
//! copy of each builder.
// Each test binary uses a part of it.
#![allow(dead_code)]

use conntrack_core::testkit::{self, Need};
use conntrack_core::{Flow, L4Proto, L4Tuple, ProtoInfo, Status, TcpInfo, TcpState, Tuple};
use conntrack_netlink::request::reply_tuple;
use conntrack_netlink::wire::encode;
use conntrack_netlink::wire::message::{NLM_F_ACK_TLVS, NLM_F_CAPPED};
use conntrack_netlink::wire::message::{NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSGERR_ATTR_MSG};
use std::net::IpAddr;

/// An address written as text.
pub fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} is not an address: {e}"))
}

/// A tuple `src:sport -> dst:dport` of a protocol with ports.
pub fn ports(proto: L4Proto, src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    Tuple::new(
        ip(src),
        ip(dst),
        proto,
        L4Tuple::Ports {
            src: sport,
            dst: dport,
        },
    )
}

/// An echo request tuple: ICMP for IPv4 addresses, ICMPv6 for IPv6 ones.
pub fn echo(src: &str, dst: &str, id: u16) -> Tuple {
    let (proto, kind) = if ip(src).is_ipv6() {
        (L4Proto::ICMPV6, 128)
    } else {
        (L4Proto::ICMP, 8)
    };
    Tuple::new(ip(src), ip(dst), proto, L4Tuple::Icmp { kind, code: 0, id })
}

/// A confirmed flow of `orig` with the reply tuple the kernel computes
/// for it without NAT ([`reply_tuple`]); nothing else set.
pub fn flow(orig: Tuple) -> Flow {
    Flow::new(orig, reply_tuple(&orig), Status::CONFIRMED)
}

/// A confirmed, unreplied UDP flow `src:sport -> dst:dport`.
pub fn udp(src: &str, sport: u16, dst: &str, dport: u16) -> Flow {
    flow(ports(L4Proto::UDP, src, sport, dst, dport))
}

/// A replied, assured TCP flow `src:sport -> dst:dport` in `state`.
pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, state: TcpState) -> Flow {
    let mut f = flow(ports(L4Proto::TCP, src, sport, dst, dport));
    f.status |= Status::SEEN_REPLY | Status::ASSURED;
    f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo::new(state)));
    f
}

/// The payload of a conntrack message for `f` as a 6.18 kernel sends it
/// in a dump (an `nfgenmsg`, then the attributes): what
/// `FlowView::parse` reads.
pub fn payload(f: &Flow) -> Vec<u8> {
    let mut p = vec![f.family().0, 0, 0, 0];
    encode::encode_flow_as_kernel(f, &mut p);
    p
}

/// Appends a netfilter message of type `ty` with `flags` and `seq`,
/// holding `f` in the kernel's layout (or only an `nfgenmsg` of family
/// `AF_UNSPEC`); returns where it starts.
pub fn push(buf: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, f: Option<&Flow>) -> usize {
    let family = f.map_or(0, |f| f.family().0);
    let m = encode::begin_message(buf, ty, flags, seq, family);
    if let Some(f) = f {
        encode::encode_flow_as_kernel(f, buf);
    }
    encode::finish_message(buf, m);
    m.offset()
}

/// `NLMSG_DONE` with `flags` and `seq`, carrying `code` (0, or a negative
/// errno).
pub fn done(seq: u32, flags: u16, code: i32) -> Vec<u8> {
    let mut b = Vec::new();
    let m = encode::begin_nlmsg(&mut b, NLMSG_DONE, flags, seq);
    b.extend_from_slice(&code.to_ne_bytes());
    encode::finish_message(&mut b, m);
    b
}

/// `NLMSG_ERROR` for a capped request with sequence number `seq`:
/// `code` 0 is an acknowledgement; `text` becomes the extended-ack
/// message.
pub fn error(seq: u32, code: i32, text: Option<&str>) -> Vec<u8> {
    let flags = NLM_F_CAPPED | if text.is_some() { NLM_F_ACK_TLVS } else { 0 };
    let mut b = Vec::new();
    let m = encode::begin_nlmsg(&mut b, NLMSG_ERROR, flags, seq);
    b.extend_from_slice(&code.to_ne_bytes());
    b.extend_from_slice(&[0u8; NLMSG_HDRLEN]); // the request's header
    if let Some(t) = text {
        encode::put_str(&mut b, NLMSGERR_ATTR_MSG, t);
    }
    encode::finish_message(&mut b, m);
    b
}

/// The bytes of `fixtures/NAME` (captured on a real kernel, see
/// `fixtures/README.md`).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Whether a live test that needs root and `ip` (a scratch namespace and
/// ctnetlink) can run; skips or fails by `testkit`'s policy.
pub fn live(test: &str) -> bool {
    testkit::live(test, &[Need::Root, Need::Tool("ip")])
}
