//! Request messages: `nlmsghdr` + `nfgenmsg` + ctnetlink attributes,
//! written by [`MessageWriter`], a thin layer over the wire encoder
//! ([`crate::wire::encode`]: one encoder for every message and attribute,
//! requests and test data alike), straight into a caller's buffer so that
//! batches of a million creates allocate nothing per flow.
//!
//! The message types and flags are `wire::message`'s (`IPCTNL_MSG_CT_*`,
//! `NLM_F_*`), the attribute numbers `wire::attr`'s (`CTA_*`).

use crate::error::{Error, Result};
use crate::wire::attr::*;
use crate::wire::encode::{self, MessageStart, NestStart};
use crate::wire::message::{IPCTNL_MSG_CT_NEW, NfGenMsg, ct_type};
use conntrack_core::{L3Family, Status, Tuple};
use std::net::IpAddr;

/// Status bits a create request sends as the kernel expects them rather
/// than as the caller's flow has them. `ctnetlink_change_status`
/// (`net/netfilter/nf_conntrack_netlink.c`) answers `EBUSY` when
/// `EXPECTED`, `CONFIRMED` or `DYING` differ from the entry's, and the
/// entry a create makes is already marked confirmed when the status is
/// applied: so a create sends `CONFIRMED` set and `EXPECTED`/`DYING` clear
/// (as `conntrack -I` does; checked on Linux 6.18, where a status without
/// `CONFIRMED` gets `EBUSY`).
pub const STATUS_MANAGED: Status = Status::EXPECTED
    .union(Status::CONFIRMED)
    .union(Status::DYING);

/// Builds a request without attributes (dumps, statistics, a flush of
/// everything): [`MessageWriter::begin`] then [`MessageWriter::finish`].
///
/// ```
/// use conntrack_netlink::request::header_only;
/// use conntrack_netlink::wire::message::*;
/// use conntrack_core::L3Family;
/// let b = header_only(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 7, L3Family::INET, 0);
/// assert_eq!(b.len(), 20);
/// assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 0x0101);
/// assert_eq!(b[16], 2); // nfgen_family
/// ```
pub fn header_only(msg: u8, nl_flags: u16, seq: u32, family: L3Family, version: u8) -> Vec<u8> {
    let mut buf = Vec::with_capacity(encode::REQUEST_HEADER_LEN);
    MessageWriter::begin(&mut buf, msg, nl_flags, seq, family, version).finish();
    buf
}

/// Appends one ctnetlink request message to a buffer, attribute by
/// attribute, with the wire encoder ([`crate::wire::encode`]).
///
/// ```
/// use conntrack_netlink::request::MessageWriter;
/// use conntrack_netlink::wire::{attr::CTA_MARK, message::*};
/// use conntrack_core::L3Family;
/// let mut buf = Vec::new();
/// let mut w = MessageWriter::begin(&mut buf, IPCTNL_MSG_CT_GET, NLM_F_REQUEST, 1, L3Family::INET, 0);
/// w.put_u32_be(CTA_MARK.0, 0x2a);
/// assert_eq!(w.finish(), 16 + 4 + 8);
/// assert_eq!(u32::from_ne_bytes(buf[0..4].try_into().unwrap()), 28);
/// ```
#[derive(Debug)]
pub struct MessageWriter<'a> {
    buf: &'a mut Vec<u8>,
    start: MessageStart,
}

impl<'a> MessageWriter<'a> {
    /// Starts a ctnetlink message of type `msg` (an `IPCTNL_MSG_CT_*`
    /// value) with netlink flags, sequence number, and the `nfgenmsg`
    /// family and version.
    pub fn begin(
        buf: &'a mut Vec<u8>,
        msg: u8,
        nl_flags: u16,
        seq: u32,
        family: L3Family,
        version: u8,
    ) -> Self {
        let nfgen = NfGenMsg {
            family: family.0,
            version,
            res_id: 0,
        };
        let start = encode::begin_message_with(buf, ct_type(msg), nl_flags, seq, nfgen);
        MessageWriter { buf, start }
    }

    /// Ends the message: writes its length. Returns the message's bytes.
    pub fn finish(self) -> usize {
        encode::finish_message(self.buf, self.start)
    }

    /// Adds an attribute with a raw payload (padded to 4 bytes).
    pub fn put(&mut self, ty: u16, payload: &[u8]) {
        encode::put_attr(self.buf, ty, payload);
    }

    /// Adds a `u8` attribute.
    pub fn put_u8(&mut self, ty: u16, v: u8) {
        encode::put_u8(self.buf, ty, v);
    }

    /// Adds a big-endian `u16` attribute.
    pub fn put_u16_be(&mut self, ty: u16, v: u16) {
        encode::put_be16(self.buf, ty, v);
    }

    /// Adds a big-endian `u32` attribute.
    pub fn put_u32_be(&mut self, ty: u16, v: u32) {
        encode::put_be32(self.buf, ty, v);
    }

    /// Adds a host-order `u32` attribute (`NLA_U32`).
    pub fn put_u32(&mut self, ty: u16, v: u32) {
        encode::put_u32(self.buf, ty, v);
    }

    /// Opens a nested attribute; close it with [`MessageWriter::end_nest`].
    pub fn begin_nest(&mut self, ty: u16) -> NestStart {
        encode::begin_nest(self.buf, ty)
    }

    /// Closes a nested attribute.
    pub fn end_nest(&mut self, n: NestStart) {
        encode::end_nest(self.buf, n);
    }

    /// Adds a tuple (`CTA_TUPLE_ORIG`/`CTA_TUPLE_REPLY`): addresses,
    /// protocol, ports or ICMP fields, and the direction zone if any
    /// (encoded by [`crate::wire::encode::put_tuple`]).
    pub fn put_tuple(&mut self, ty: CtaAttr, t: &Tuple) {
        encode::put_tuple(self.buf, ty, t);
    }

    /// The buffer, for the wire layer's encoders.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }
}

/// The family (`nfgen_family`) of a tuple; both addresses must agree.
pub fn tuple_family(t: &Tuple) -> Result<L3Family> {
    match (t.src, t.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => Ok(L3Family::INET),
        (IpAddr::V6(_), IpAddr::V6(_)) => Ok(L3Family::INET6),
        _ => Err(Error::InvalidRequest(
            "a tuple's source and destination must be of one address family",
        )),
    }
}

/// The reply tuple the kernel gives an untranslated flow: addresses and
/// ports (GRE keys) swapped, ICMP and ICMPv6 types answered by their
/// counterpart (echo, timestamp, info and address-mask request and reply;
/// ICMPv6 echo and node information query and reply), the ICMP id and
/// code kept. This is `nf_ct_invert_tuple` with the `invmap` tables of
/// `nf_conntrack_invert_icmp_tuple` and `nf_conntrack_invert_icmpv6_tuple`
/// (`net/netfilter/nf_conntrack_proto_icmp.c`,
/// `nf_conntrack_proto_icmpv6.c`); ICMP types without a counterpart are
/// kept as they are. What a create sends as `CTA_TUPLE_REPLY` when no NAT
/// applies; the direction zone is not carried over.
///
/// ```
/// use conntrack_core::{L4Proto, L4Tuple, Tuple};
/// use conntrack_netlink::request::reply_tuple;
/// let ip = |s: &str| s.parse().unwrap();
/// let ping = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::ICMP,
///                       L4Tuple::Icmp { kind: 8, code: 0, id: 7 });
/// let pong = reply_tuple(&ping);
/// assert_eq!((pong.src, pong.l4), (ping.dst, L4Tuple::Icmp { kind: 0, code: 0, id: 7 }));
/// assert_eq!(reply_tuple(&pong), ping);
/// ```
pub fn reply_tuple(orig: &Tuple) -> Tuple {
    // The kernel's own inversion where it has one (`Tuple::inverse`); an
    // ICMP type without a counterpart keeps its type.
    orig.inverse()
        .unwrap_or_else(|| Tuple::new(orig.dst, orig.src, orig.proto, orig.l4))
}

/// Fields of an existing flow to change with [`crate::Conntrack::update`]
/// (`IPCTNL_MSG_CT_NEW` without `NLM_F_CREATE`). Fields left `None` are
/// not sent and stay as they are.
///
/// The kernel refuses (`EBUSY`) to clear `SEEN_REPLY` or `ASSURED` or to
/// change `CONFIRMED`/`EXPECTED`/`DYING`, and ignores the NAT and other
/// unchangeable status bits.
///
/// ```
/// use conntrack_netlink::Update;
/// # let tuple: conntrack_core::Tuple = conntrack_core::Tuple::new(
/// #     "10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(),
/// #     conntrack_core::L4Proto::UDP, conntrack_core::L4Tuple::Ports { src: 1, dst: 2 });
/// let u = Update::new(tuple).mark(7).timeout(600);
/// assert_eq!(u.mark, Some(7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Update {
    /// The original tuple of the flow to change.
    pub tuple: Tuple,
    /// Its zone (`CTA_ZONE`), if not the default.
    pub zone: Option<u16>,
    /// New mark.
    pub mark: Option<u32>,
    /// New status word.
    pub status: Option<Status>,
    /// New timeout, seconds from now.
    pub timeout: Option<u32>,
    /// New TCP state.
    pub tcp_state: Option<conntrack_core::TcpState>,
}

impl Update {
    /// An update of the flow with original tuple `tuple` that changes nothing yet.
    pub fn new(tuple: Tuple) -> Self {
        Update {
            tuple,
            zone: None,
            mark: None,
            status: None,
            timeout: None,
            tcp_state: None,
        }
    }
    /// Sets the zone the flow lives in.
    pub fn zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }
    /// Sets a new mark.
    pub fn mark(mut self, mark: u32) -> Self {
        self.mark = Some(mark);
        self
    }
    /// Sets a new status word.
    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }
    /// Sets a new timeout in seconds.
    pub fn timeout(mut self, secs: u32) -> Self {
        self.timeout = Some(secs);
        self
    }
    /// Sets a new TCP state.
    pub fn tcp_state(mut self, state: conntrack_core::TcpState) -> Self {
        self.tcp_state = Some(state);
        self
    }
}

/// Appends a `CT_NEW` create request for `flow` (attributes by
/// [`crate::wire::encode::encode_flow`]): both tuples, zone, status (with the bits in [`STATUS_MANAGED`] as the kernel expects
/// them), timeout (600 s when the flow has none: the kernel requires one),
/// mark, labels and TCP/SCTP state.
pub fn write_create(
    buf: &mut Vec<u8>,
    flow: &conntrack_core::Flow,
    seq: u32,
    nl_flags: u16,
) -> Result<()> {
    let family = tuple_family(&flow.orig)?;
    if tuple_family(&flow.reply)? != family || flow.orig.proto != flow.reply.proto {
        return Err(Error::InvalidRequest(
            "the original and reply tuples must share family and protocol",
        ));
    }
    let mut f = flow.clone();
    f.status = flow.status.difference(STATUS_MANAGED) | Status::CONFIRMED;
    f.timeout = Some(flow.timeout.unwrap_or(600));
    // The SCTP tracker requires both verification tags (`nlattr_to_sctp`).
    if let Some(conntrack_core::ProtoInfo::Sctp(s)) = &mut f.protoinfo {
        s.vtag_orig.get_or_insert(0);
        s.vtag_reply.get_or_insert(0);
    }
    let mut w = MessageWriter::begin(buf, IPCTNL_MSG_CT_NEW, nl_flags, seq, family, 0);
    encode::encode_flow(&f, w.buf());
    w.finish();
    Ok(())
}

/// Appends a `CT_NEW` update request (no `NLM_F_CREATE`).
pub fn write_update(buf: &mut Vec<u8>, u: &Update, seq: u32, nl_flags: u16) -> Result<()> {
    let family = tuple_family(&u.tuple)?;
    let mut w = MessageWriter::begin(buf, IPCTNL_MSG_CT_NEW, nl_flags, seq, family, 0);
    w.put_tuple(CTA_TUPLE_ORIG, &u.tuple);
    if let Some(z) = u.zone {
        w.put_u16_be(CTA_ZONE.0, z);
    }
    if let Some(s) = u.status {
        w.put_u32_be(CTA_STATUS.0, s.bits());
    }
    if let Some(t) = u.timeout {
        w.put_u32_be(CTA_TIMEOUT.0, t);
    }
    if let Some(m) = u.mark {
        w.put_u32_be(CTA_MARK.0, m);
    }
    if let Some(state) = u.tcp_state {
        let tcp = conntrack_core::TcpInfo::new(state);
        encode::put_protoinfo(
            w.buf(),
            &conntrack_core::ProtoInfo::Tcp(tcp),
            encode::Pad64::None,
        );
    }
    w.finish();
    Ok(())
}

/// Appends a request naming one flow by its original tuple: `CT_GET`
/// (get) or `CT_DELETE` (delete), with the zone and, for a delete, the
/// entry id the kernel must match (`CTA_ID`).
pub fn write_by_tuple(
    buf: &mut Vec<u8>,
    msg: u8,
    tuple: &Tuple,
    zone: Option<u16>,
    id: Option<u32>,
    seq: u32,
    nl_flags: u16,
) -> Result<()> {
    let family = tuple_family(tuple)?;
    let mut w = MessageWriter::begin(buf, msg, nl_flags, seq, family, 0);
    w.put_tuple(CTA_TUPLE_ORIG, tuple);
    if let Some(z) = zone {
        w.put_u16_be(CTA_ZONE.0, z);
    }
    if let Some(id) = id {
        w.put_u32_be(CTA_ID.0, id);
    }
    w.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::{IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_GET, NLM_F_ACK, NLM_F_REQUEST};
    use conntrack_core::{L4Proto, L4Tuple};

    #[test]
    fn header_only_bytes() {
        // A flush of IPv6 (version 1, see Conntrack::flush), seq 99, on a
        // little-endian host.
        let b = header_only(
            IPCTNL_MSG_CT_DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            99,
            L3Family::INET6,
            1,
        );
        #[rustfmt::skip]
        let expect: [u8; 20] = [
            20, 0, 0, 0,    // nlmsg_len
            2, 1,           // (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE
            5, 0,           // NLM_F_REQUEST | NLM_F_ACK
            99, 0, 0, 0,    // nlmsg_seq
            0, 0, 0, 0,     // nlmsg_pid
            10, 1, 0, 0,    // nfgenmsg: AF_INET6, version 1, res_id 0
        ];
        if cfg!(target_endian = "little") {
            assert_eq!(b, expect);
        }
    }

    #[test]
    fn tuple_bytes() {
        let t = Tuple::new(
            "1.2.3.4".parse().unwrap(),
            "5.6.7.8".parse().unwrap(),
            L4Proto::TCP,
            L4Tuple::Ports {
                src: 1,
                dst: 0x0102,
            },
        );
        let mut buf = Vec::new();
        let mut w = MessageWriter::begin(&mut buf, IPCTNL_MSG_CT_GET, 1, 1, L3Family::INET, 0);
        w.put_tuple(CTA_TUPLE_ORIG, &t);
        w.finish();
        let a = &buf[20..];
        #[rustfmt::skip]
        let expect: Vec<u8> = [
            &[52u8, 0, 1, 0x80][..],            // TUPLE_ORIG nested, len 52
            &[20, 0, 1, 0x80],                  // TUPLE_IP
            &[8, 0, 1, 0, 1, 2, 3, 4],          // V4_SRC
            &[8, 0, 2, 0, 5, 6, 7, 8],          // V4_DST
            &[28, 0, 2, 0x80],                  // TUPLE_PROTO
            &[5, 0, 1, 0, 6, 0, 0, 0],          // PROTO_NUM
            &[6, 0, 2, 0, 0, 1, 0, 0],          // SRC_PORT
            &[6, 0, 3, 0, 1, 2, 0, 0],          // DST_PORT
        ].concat();
        assert_eq!(a, &expect[..]);
        assert_eq!(buf.len() % 4, 0);
    }

    #[test]
    fn mixed_family_is_rejected() {
        let t = Tuple::new(
            "1.2.3.4".parse().unwrap(),
            "::1".parse().unwrap(),
            L4Proto::UDP,
            L4Tuple::Ports { src: 1, dst: 2 },
        );
        assert!(matches!(tuple_family(&t), Err(Error::InvalidRequest(_))));
    }
}
