//! Encoding: netlink message framing, attributes, and whole flows.
//!
//! Everything appends to a `Vec<u8>`: attribute headers in host byte
//! order, payloads padded to 4 bytes, `NLA_F_NESTED` on nests (as the
//! kernel sets it since 5.2 and requires it for strict validation).
//!
//! - [`encode_flow`] writes what the kernel accepts in a CT_NEW (create or
//!   update) request.
//! - [`encode_flow_as_kernel`] writes what a 6.18 kernel *emits* for a
//!   flow in a dump, in its attribute order (`ctnetlink_fill_info`:
//!   tuples, zone, `ctnetlink_dump_info`, then `ctnetlink_dump_extinfo`),
//!   for tests, fixtures and benchmarks.

use super::attr::*;
use super::message::{NFGENMSG_LEN, NLMSG_HDRLEN, NfGenMsg};
use super::nla::{NLA_F_NESTED, NLA_HDRLEN, align4};
use conntrack_core::{
    Counters, Flow, L4Proto, L4Tuple, ProtoInfo, SeqAdj, Synproxy, Timestamp, Tuple,
};
use netlink_packet_core::{Emitable, NetlinkBuffer, NetlinkHeader};
use std::net::IpAddr;

/// The position of a message being built; see [`begin_message`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use = "pass it to finish_message"]
pub struct MessageStart(usize);

/// The position of a nest being built; see [`begin_nest`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use = "pass it to end_nest"]
pub struct NestStart(usize);

/// The largest attribute payload (`nla_len` is a `u16`).
pub const MAX_ATTR_PAYLOAD: usize = u16::MAX as usize - NLA_HDRLEN;

fn pad(out: &mut Vec<u8>) {
    out.resize(align4(out.len()), 0);
}

/// Starts a netfilter message: a netlink header (type `ty`, e.g.
/// [`ct_type`](super::message::ct_type)`(IPCTNL_MSG_CT_GET)`, flags, seq,
/// pid 0, length filled in by [`finish_message`]) and an `nfgenmsg` with
/// `family`, version 0 and `res_id` 0.
///
/// ```
/// use conntrack_netlink::wire::{encode, message::*};
/// let mut buf = Vec::new();
/// let m = encode::begin_message(&mut buf, ct_type(IPCTNL_MSG_CT_GET),
///                               NLM_F_REQUEST | NLM_F_DUMP, 1, 0);
/// encode::finish_message(&mut buf, m);
/// assert_eq!(buf, [20, 0, 0, 0, 1, 1, 1, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/// ```
pub fn begin_message(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8) -> MessageStart {
    begin_message_with(
        out,
        ty,
        flags,
        seq,
        NfGenMsg {
            family,
            version: 0,
            res_id: 0,
        },
    )
}

/// [`begin_message`] with a full `nfgenmsg` (e.g. a `res_id`, or version
/// 1 for a family-filtered flush).
pub fn begin_message_with(
    out: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    nfgen: NfGenMsg,
) -> MessageStart {
    let m = begin_nlmsg(out, ty, flags, seq);
    out.extend_from_slice(&nfgen.to_bytes());
    m
}

/// Starts a netlink message without a netfilter header (`NLMSG_ERROR`,
/// `NLMSG_DONE`, ...): the 16-byte header, written with
/// `netlink-packet-core`'s `NetlinkHeader` (`nlmsg_pid` 0, `nlmsg_len`
/// filled in by [`finish_message`]).
///
/// ```
/// use conntrack_netlink::wire::{encode, message::*};
/// let mut buf = Vec::new();
/// let m = encode::begin_nlmsg(&mut buf, NLMSG_DONE, NLM_F_MULTI, 9);
/// buf.extend_from_slice(&0i32.to_ne_bytes());
/// assert_eq!(encode::finish_message(&mut buf, m), 20);
/// let done = Message::parse(&buf).unwrap();
/// assert!(done.is_done() && done.is_multi());
/// assert_eq!((done.seq, done.error_code()), (9, Some(0)));
/// ```
pub fn begin_nlmsg(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32) -> MessageStart {
    pad(out);
    let start = out.len();
    let mut h = NetlinkHeader::default();
    h.message_type = ty;
    h.flags = flags;
    h.sequence_number = seq;
    out.resize(start + NLMSG_HDRLEN, 0);
    h.emit(&mut out[start..]);
    MessageStart(start)
}

/// The bytes of a message without attributes: `nlmsghdr` and `nfgenmsg`.
pub const REQUEST_HEADER_LEN: usize = NLMSG_HDRLEN + NFGENMSG_LEN;

/// Writes the message's `nlmsg_len` and pads the buffer to 4 bytes;
/// returns the length written.
pub fn finish_message(out: &mut Vec<u8>, m: MessageStart) -> usize {
    let len = out.len().saturating_sub(m.0);
    if let Some(h) = out.get_mut(m.0..m.0 + NLMSG_HDRLEN) {
        NetlinkBuffer::new(h).set_length(u32::try_from(len).unwrap_or(u32::MAX));
    }
    pad(out);
    len
}

/// Appends an attribute with payload `value` and pads to 4 bytes. A
/// payload longer than [`MAX_ATTR_PAYLOAD`] is cut to that length (no
/// netlink attribute can hold more).
///
/// ```
/// let mut buf = Vec::new();
/// conntrack_netlink::wire::encode::put_attr(&mut buf, 8, &[0, 0, 0, 7]);
/// assert_eq!(buf, [8, 0, 8, 0, 0, 0, 0, 7]);
/// ```
pub fn put_attr(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let value = &value[..value.len().min(MAX_ATTR_PAYLOAD)];
    let len = (NLA_HDRLEN + value.len()) as u16;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(value);
    pad(out);
}

/// Appends a `u8` attribute.
pub fn put_u8(out: &mut Vec<u8>, ty: u16, v: u8) {
    put_attr(out, ty, &[v]);
}

/// Appends a big-endian `u16` attribute.
pub fn put_be16(out: &mut Vec<u8>, ty: u16, v: u16) {
    put_attr(out, ty, &v.to_be_bytes());
}

/// Appends a big-endian `u32` attribute.
pub fn put_be32(out: &mut Vec<u8>, ty: u16, v: u32) {
    put_attr(out, ty, &v.to_be_bytes());
}

/// Appends a host-order `u32` attribute (`NLA_U32`, e.g. the
/// `CTA_FILTER_*_FLAGS`).
pub fn put_u32(out: &mut Vec<u8>, ty: u16, v: u32) {
    put_attr(out, ty, &v.to_ne_bytes());
}

/// Appends a big-endian `u64` attribute.
pub fn put_be64(out: &mut Vec<u8>, ty: u16, v: u64) {
    put_attr(out, ty, &v.to_be_bytes());
}

/// Appends a NUL-terminated string attribute.
pub fn put_str(out: &mut Vec<u8>, ty: u16, s: &str) {
    let s = &s.as_bytes()[..s.len().min(MAX_ATTR_PAYLOAD - 1)];
    let len = (NLA_HDRLEN + s.len() + 1) as u16;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(s);
    out.push(0);
    pad(out);
}

/// Starts a nested attribute (type `ty | NLA_F_NESTED`).
///
/// ```
/// use conntrack_netlink::wire::encode::*;
/// let mut buf = Vec::new();
/// let n = begin_nest(&mut buf, 20);
/// put_be64(&mut buf, 1, 5);
/// end_nest(&mut buf, n);
/// assert_eq!(buf, [16, 0, 20, 0x80, 12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
/// ```
pub fn begin_nest(out: &mut Vec<u8>, ty: u16) -> NestStart {
    let start = out.len();
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    NestStart(start)
}

/// Ends a nest: writes its length (saturating at `u16::MAX`).
pub fn end_nest(out: &mut [u8], n: NestStart) {
    let len = u16::try_from(out.len().saturating_sub(n.0)).unwrap_or(u16::MAX);
    if let Some(h) = out.get_mut(n.0..n.0 + 2) {
        h.copy_from_slice(&len.to_ne_bytes());
    }
}

/// Where the kernel would put 64-bit values: this machine (x86_64, which
/// has efficient unaligned access) emits no padding attributes; kernels on
/// other architectures put an empty `*_PAD` attribute before a 64-bit
/// value whose payload would not be 8-byte aligned (`nla_put_64bit`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Pad64 {
    /// No padding attributes (x86_64, arm64, ...).
    #[default]
    None,
    /// Padding attributes as on architectures without efficient unaligned
    /// access; alignment is counted from the start of the output buffer.
    Aligned,
}

fn put_be64_pad(out: &mut Vec<u8>, ty: u16, v: u64, pad_ty: u16, pad: Pad64) {
    if pad == Pad64::Aligned && !(out.len() + NLA_HDRLEN).is_multiple_of(8) {
        put_attr(out, pad_ty, &[]);
    }
    put_be64(out, ty, v);
}

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

/// Appends a `CTA_PROTOINFO` nest.
pub fn put_protoinfo(out: &mut Vec<u8>, p: &ProtoInfo, pad: Pad64) {
    let n = begin_nest(out, CTA_PROTOINFO.0);
    match p {
        ProtoInfo::Tcp(t) => {
            let m = begin_nest(out, CTA_PROTOINFO_TCP.0);
            put_u8(out, CTA_PROTOINFO_TCP_STATE.0, t.state.0);
            if let Some(w) = t.wscale_orig {
                put_u8(out, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL.0, w);
            }
            if let Some(w) = t.wscale_reply {
                put_u8(out, CTA_PROTOINFO_TCP_WSCALE_REPLY.0, w);
            }
            if let Some(f) = t.flags_orig {
                put_attr(out, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL.0, &[f.flags, f.mask]);
            }
            if let Some(f) = t.flags_reply {
                put_attr(out, CTA_PROTOINFO_TCP_FLAGS_REPLY.0, &[f.flags, f.mask]);
            }
            end_nest(out, m);
        }
        ProtoInfo::Sctp(s) => {
            let m = begin_nest(out, CTA_PROTOINFO_SCTP.0);
            put_u8(out, CTA_PROTOINFO_SCTP_STATE.0, s.state.0);
            if let Some(v) = s.vtag_orig {
                put_be32(out, CTA_PROTOINFO_SCTP_VTAG_ORIGINAL.0, v);
            }
            if let Some(v) = s.vtag_reply {
                put_be32(out, CTA_PROTOINFO_SCTP_VTAG_REPLY.0, v);
            }
            end_nest(out, m);
        }
        ProtoInfo::Dccp(d) => {
            let m = begin_nest(out, CTA_PROTOINFO_DCCP.0);
            put_u8(out, CTA_PROTOINFO_DCCP_STATE.0, d.state.0);
            if let Some(r) = d.role {
                put_u8(out, CTA_PROTOINFO_DCCP_ROLE.0, r);
            }
            if let Some(s) = d.handshake_seq {
                put_be64_pad(
                    out,
                    CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ.0,
                    s,
                    CTA_PROTOINFO_DCCP_PAD.0,
                    pad,
                );
            }
            end_nest(out, m);
        }
    }
    end_nest(out, n);
}

fn put_counters(out: &mut Vec<u8>, ty: CtaAttr, c: &Counters, pad: Pad64) {
    let n = begin_nest(out, ty.0);
    put_be64_pad(
        out,
        CTA_COUNTERS_PACKETS.0,
        c.packets,
        CTA_COUNTERS_PAD.0,
        pad,
    );
    put_be64_pad(out, CTA_COUNTERS_BYTES.0, c.bytes, CTA_COUNTERS_PAD.0, pad);
    end_nest(out, n);
}

fn put_timestamp(out: &mut Vec<u8>, t: &Timestamp, pad: Pad64) {
    let n = begin_nest(out, CTA_TIMESTAMP.0);
    put_be64_pad(
        out,
        CTA_TIMESTAMP_START.0,
        t.start,
        CTA_TIMESTAMP_PAD.0,
        pad,
    );
    if let Some(s) = t.stop {
        put_be64_pad(out, CTA_TIMESTAMP_STOP.0, s, CTA_TIMESTAMP_PAD.0, pad);
    }
    end_nest(out, n);
}

fn put_named(out: &mut Vec<u8>, ty: CtaAttr, name: &str) {
    let n = begin_nest(out, ty.0);
    // CTA_HELP_NAME and CTA_SECCTX_NAME are both 1.
    put_str(out, CTA_HELP_NAME.0, name);
    end_nest(out, n);
}

fn put_seqadj(out: &mut Vec<u8>, ty: CtaAttr, s: &SeqAdj) {
    let n = begin_nest(out, ty.0);
    put_be32(out, CTA_SEQADJ_CORRECTION_POS.0, s.correction_pos);
    put_be32(out, CTA_SEQADJ_OFFSET_BEFORE.0, s.offset_before);
    put_be32(out, CTA_SEQADJ_OFFSET_AFTER.0, s.offset_after);
    end_nest(out, n);
}

fn put_synproxy(out: &mut Vec<u8>, s: &Synproxy) {
    let n = begin_nest(out, CTA_SYNPROXY.0);
    put_be32(out, CTA_SYNPROXY_ISN.0, s.isn);
    put_be32(out, CTA_SYNPROXY_ITS.0, s.its);
    put_be32(out, CTA_SYNPROXY_TSOFF.0, s.tsoff);
    end_nest(out, n);
}

/// Appends the attributes of a CT_NEW request (create or update) for
/// `flow`: tuples, zone, master tuple, status (only when non-empty),
/// timeout, mark, protoinfo, helper, labels, sequence adjustment and SYN
/// proxy. Attributes the kernel only reports (counters, timestamps, id,
/// use, security context) are not written.
///
/// The kernel refuses (`EBUSY`) status changes of the bits it manages
/// (`ctnetlink_change_status`): a create's entry is already marked
/// confirmed when the status is applied, so a create that sends a status
/// must have `CONFIRMED` set and `EXPECTED`/`DYING` clear (as `conntrack
/// -I` does; checked on 6.18); an update sends the entry's current values
/// of those bits. An empty status is not written, which both accept.
/// [`crate::request::STATUS_MANAGED`] names the bits, and
/// [`crate::Conntrack::create`] sets them. A create needs a timeout.
///
/// ```
/// use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
/// use conntrack_netlink::wire::{encode, FlowView};
/// let ip = |s: &str| s.parse().unwrap();
/// let t = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::TCP,
///                    L4Tuple::Ports { src: 1, dst: 2 });
/// let r = Tuple::new(ip("10.0.0.2"), ip("10.0.0.1"), L4Proto::TCP,
///                    L4Tuple::Ports { src: 2, dst: 1 });
/// let mut flow = Flow::new(t, r, Status::empty());
/// flow.timeout = Some(60);
/// flow.id = Some(5); // not sent
/// let mut p = vec![2, 0, 0, 0];
/// encode::encode_flow(&flow, &mut p);
/// let v = FlowView::parse(&p).unwrap();
/// assert_eq!((v.timeout(), v.id(), v.has_status()), (Some(60), None, false));
/// ```
pub fn encode_flow(flow: &Flow, out: &mut Vec<u8>) {
    put_tuple(out, CTA_TUPLE_ORIG, &flow.orig);
    put_tuple(out, CTA_TUPLE_REPLY, &flow.reply);
    if let Some(z) = flow.zone {
        put_be16(out, CTA_ZONE.0, z);
    }
    if let Some(m) = &flow.master {
        put_tuple(out, CTA_TUPLE_MASTER, m);
    }
    if !flow.status.is_empty() {
        put_be32(out, CTA_STATUS.0, flow.status.bits());
    }
    if let Some(t) = flow.timeout {
        put_be32(out, CTA_TIMEOUT.0, t);
    }
    if let Some(m) = flow.mark {
        put_be32(out, CTA_MARK.0, m);
    }
    if let Some(p) = &flow.protoinfo {
        put_protoinfo(out, p, Pad64::None);
    }
    put_tail(flow, out);
}

/// Appends the attributes a Linux 6.18 kernel (x86_64) emits for `flow`
/// in a dump, in its order: `CTA_TUPLE_ORIG`, `CTA_TUPLE_REPLY`,
/// `CTA_ZONE`, `CTA_STATUS`, `CTA_MARK`, `CTA_SECMARK` (older kernels
/// only), `CTA_SECCTX`, `CTA_ID`, `CTA_USE`, `CTA_TUPLE_MASTER`,
/// `CTA_TIMEOUT`, `CTA_PROTOINFO`, `CTA_COUNTERS_ORIG`,
/// `CTA_COUNTERS_REPLY`, `CTA_TIMESTAMP`, `CTA_HELP`, `CTA_LABELS`,
/// `CTA_SEQ_ADJ_ORIG`, `CTA_SEQ_ADJ_REPLY`, `CTA_SYNPROXY`; each only
/// when the flow has it (the status always). Used to build test data and
/// benchmark buffers with the real layout.
pub fn encode_flow_as_kernel(flow: &Flow, out: &mut Vec<u8>) {
    encode_flow_as_kernel_with(flow, out, Pad64::None)
}

/// [`encode_flow_as_kernel`] with a choice of 64-bit padding.
pub fn encode_flow_as_kernel_with(flow: &Flow, out: &mut Vec<u8>, pad: Pad64) {
    put_tuple(out, CTA_TUPLE_ORIG, &flow.orig);
    put_tuple(out, CTA_TUPLE_REPLY, &flow.reply);
    if let Some(z) = flow.zone {
        put_be16(out, CTA_ZONE.0, z);
    }
    put_be32(out, CTA_STATUS.0, flow.status.bits());
    if let Some(m) = flow.mark {
        put_be32(out, CTA_MARK.0, m);
    }
    if let Some(m) = flow.secmark {
        put_be32(out, CTA_SECMARK.0, m);
    }
    if let Some(s) = &flow.secctx {
        put_named(out, CTA_SECCTX, s);
    }
    if let Some(id) = flow.id {
        put_be32(out, CTA_ID.0, id);
    }
    if let Some(u) = flow.use_count {
        put_be32(out, CTA_USE.0, u);
    }
    if let Some(m) = &flow.master {
        put_tuple(out, CTA_TUPLE_MASTER, m);
    }
    if let Some(t) = flow.timeout {
        put_be32(out, CTA_TIMEOUT.0, t);
    }
    if let Some(p) = &flow.protoinfo {
        put_protoinfo(out, p, pad);
    }
    if let Some(c) = &flow.counters_orig {
        put_counters(out, CTA_COUNTERS_ORIG, c, pad);
    }
    if let Some(c) = &flow.counters_reply {
        put_counters(out, CTA_COUNTERS_REPLY, c, pad);
    }
    if let Some(t) = &flow.timestamp {
        put_timestamp(out, t, pad);
    }
    put_tail(flow, out);
}

/// The attributes both a request and a dump end with, in the kernel's
/// order (`ctnetlink_fill_info`): helper, labels, sequence adjustment of
/// both directions, SYN proxy.
fn put_tail(flow: &Flow, out: &mut Vec<u8>) {
    if let Some(h) = &flow.helper {
        put_named(out, CTA_HELP, h);
    }
    if let Some(l) = &flow.labels {
        put_attr(out, CTA_LABELS.0, &l.0);
    }
    if let Some(s) = &flow.seqadj_orig {
        put_seqadj(out, CTA_SEQ_ADJ_ORIG, s);
    }
    if let Some(s) = &flow.seqadj_reply {
        put_seqadj(out, CTA_SEQ_ADJ_REPLY, s);
    }
    if let Some(s) = &flow.synproxy {
        put_synproxy(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FlowView;
    use conntrack_core::{Status, TcpInfo, TcpState};

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

    #[test]
    fn pad_attributes_are_skipped() {
        let ip = |s: &str| s.parse().unwrap();
        let t = Tuple::new(ip("1.2.3.4"), ip("5.6.7.8"), L4Proto(47), L4Tuple::None);
        let mut f = Flow::new(t, t, Status::CONFIRMED);
        f.counters_orig = Some(Counters {
            packets: 1,
            bytes: 2,
        });
        f.timestamp = Some(Timestamp {
            start: 3,
            stop: Some(4),
        });
        f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo {
            state: TcpState::CLOSE,
            ..Default::default()
        }));
        for pad in [Pad64::None, Pad64::Aligned] {
            let mut p = vec![2, 0, 0, 0];
            encode_flow_as_kernel_with(&f, &mut p, pad);
            assert_eq!(FlowView::parse(&p).unwrap().to_owned(), f, "{pad:?}");
        }
        let mut a = vec![2, 0, 0, 0];
        encode_flow_as_kernel_with(&f, &mut a, Pad64::Aligned);
        let mut b = vec![2, 0, 0, 0];
        encode_flow_as_kernel_with(&f, &mut b, Pad64::None);
        assert!(a.len() > b.len());
    }

    #[test]
    fn long_values_are_cut() {
        let mut out = Vec::new();
        put_str(&mut out, 1, &"x".repeat(70000));
        assert_eq!(u16::from_ne_bytes([out[0], out[1]]), u16::MAX);
        assert_eq!(out.len(), align4(u16::MAX as usize));
    }
}
