//! Request messages: `nlmsghdr` + `nfgenmsg` + ctnetlink attributes.
//!
//! Requests without attributes (dumps, statistics, a full flush) are built
//! with `netlink-packet-core`'s `NetlinkMessage` and
//! `netlink-packet-netfilter`'s `NetfilterMessage`. Requests that carry
//! tuples, filters or flow attributes use this module's small encoder
//! (`netlink-packet-netfilter` 0.4 models only a few conntrack attributes,
//! no zone, filter, ICMP or IPv6 tuple), writing straight into a caller's
//! buffer so that batches of a million creates allocate nothing per flow.
//!
//! Attribute numbers are those of
//! `include/uapi/linux/netfilter/nfnetlink_conntrack.h`.

use crate::error::{Error, Result};
use crate::wire::attr::CtaAttr;
use crate::wire::encode;
use conntrack_core::{L3Family, Status, Tuple};
use netlink_packet_core::{DefaultNla, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, conntrack::ConntrackMessage};
use std::net::IpAddr;

/// `NFNL_SUBSYS_CTNETLINK`.
pub const NFNL_SUBSYS_CTNETLINK: u8 = 1;

/// ctnetlink message types (`enum cntl_msg_types`).
pub mod msg {
    /// `IPCTNL_MSG_CT_NEW`.
    pub const CT_NEW: u8 = 0;
    /// `IPCTNL_MSG_CT_GET`.
    pub const CT_GET: u8 = 1;
    /// `IPCTNL_MSG_CT_DELETE`.
    pub const CT_DELETE: u8 = 2;
    /// `IPCTNL_MSG_CT_GET_CTRZERO`.
    pub const CT_GET_CTRZERO: u8 = 3;
    /// `IPCTNL_MSG_CT_GET_STATS_CPU`.
    pub const CT_GET_STATS_CPU: u8 = 4;
    /// `IPCTNL_MSG_CT_GET_STATS`.
    pub const CT_GET_STATS: u8 = 5;
    /// `IPCTNL_MSG_CT_GET_DYING`.
    pub const CT_GET_DYING: u8 = 6;
    /// `IPCTNL_MSG_CT_GET_UNCONFIRMED`.
    pub const CT_GET_UNCONFIRMED: u8 = 7;
}

/// Netlink header flags (`include/uapi/linux/netlink.h`).
pub mod flags {
    /// `NLM_F_REQUEST`.
    pub const REQUEST: u16 = 0x1;
    /// `NLM_F_MULTI`.
    pub const MULTI: u16 = 0x2;
    /// `NLM_F_ACK`.
    pub const ACK: u16 = 0x4;
    /// `NLM_F_DUMP_INTR`: the dump was interrupted by a change.
    pub const DUMP_INTR: u16 = 0x10;
    /// `NLM_F_DUMP_FILTERED`: the kernel applied the dump filter.
    pub const DUMP_FILTERED: u16 = 0x20;
    /// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
    pub const DUMP: u16 = 0x300;
    /// `NLM_F_EXCL`.
    pub const EXCL: u16 = 0x200;
    /// `NLM_F_CREATE`.
    pub const CREATE: u16 = 0x400;
}

/// Attribute numbers used in requests (`enum ctattr_type`, `ctattr_filter`).
pub(crate) mod cta {
    pub const TUPLE_ORIG: u16 = 1;
    pub const TUPLE_REPLY: u16 = 2;
    pub const STATUS: u16 = 3;
    pub const TIMEOUT: u16 = 7;
    pub const MARK: u16 = 8;
    pub const ID: u16 = 12;
    pub const ZONE: u16 = 18;
    pub const MARK_MASK: u16 = 21;
    pub const FILTER: u16 = 25;
    pub const STATUS_MASK: u16 = 26;

    pub const FILTER_ORIG_FLAGS: u16 = 1;
    pub const FILTER_REPLY_FLAGS: u16 = 2;
}

const NLA_F_NESTED: u16 = 0x8000;

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

/// The `nlmsg_type` of a ctnetlink message.
pub const fn msg_type(msg: u8) -> u16 {
    ((NFNL_SUBSYS_CTNETLINK as u16) << 8) | msg as u16
}

/// Builds an attribute-less request with `netlink-packet-core` /
/// `netlink-packet-netfilter` (dumps, statistics, a flush of everything).
///
/// ```
/// use conntrack_netlink::request::{header_only, msg, flags};
/// use conntrack_core::L3Family;
/// let b = header_only(msg::CT_GET, flags::REQUEST | flags::DUMP, 7, L3Family::INET, 0);
/// assert_eq!(b.len(), 20);
/// assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 0x0101);
/// assert_eq!(b[16], 2); // nfgen_family
/// ```
pub fn header_only(msg: u8, nl_flags: u16, seq: u32, family: L3Family, version: u8) -> Vec<u8> {
    let inner = match msg {
        self::msg::CT_GET => ConntrackMessage::Get(Vec::new()),
        self::msg::CT_DELETE => ConntrackMessage::Delete(Vec::new()),
        other => ConntrackMessage::Other {
            message_type: other,
            attributes: Vec::<DefaultNla>::new(),
        },
    };
    let nf = NetfilterMessage::new(NetfilterHeader::new(family.0.into(), version, 0), inner);
    let mut header = NetlinkHeader::default();
    header.flags = nl_flags;
    header.sequence_number = seq;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(nf));
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

/// Appends one request message to a buffer, attribute by attribute.
///
/// ```
/// use conntrack_netlink::request::{MessageWriter, msg, flags};
/// use conntrack_core::L3Family;
/// let mut buf = Vec::new();
/// let mut w = MessageWriter::begin(&mut buf, msg::CT_GET, flags::REQUEST, 1, L3Family::INET, 0);
/// w.put_u32_be(8, 0x2a); // CTA_MARK
/// w.finish();
/// assert_eq!(buf.len(), 16 + 4 + 8);
/// assert_eq!(u32::from_ne_bytes(buf[0..4].try_into().unwrap()), 28);
/// ```
#[derive(Debug)]
pub struct MessageWriter<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
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
        let start = buf.len();
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&msg_type(msg).to_ne_bytes());
        buf.extend_from_slice(&nl_flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&[family.0, version, 0, 0]);
        MessageWriter { buf, start }
    }

    /// Ends the message: writes its length. Returns the message's bytes.
    pub fn finish(self) -> usize {
        let len = (self.buf.len() - self.start) as u32;
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
        len as usize
    }

    /// Adds an attribute with a raw payload (padded to 4 bytes).
    pub fn put(&mut self, ty: u16, payload: &[u8]) {
        let len = (4 + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    /// Adds a `u8` attribute.
    pub fn put_u8(&mut self, ty: u16, v: u8) {
        self.put(ty, &[v]);
    }

    /// Adds a big-endian `u16` attribute.
    pub fn put_u16_be(&mut self, ty: u16, v: u16) {
        self.put(ty, &v.to_be_bytes());
    }

    /// Adds a big-endian `u32` attribute.
    pub fn put_u32_be(&mut self, ty: u16, v: u32) {
        self.put(ty, &v.to_be_bytes());
    }

    /// Adds a host-order `u32` attribute (`NLA_U32`).
    pub fn put_u32_ne(&mut self, ty: u16, v: u32) {
        self.put(ty, &v.to_ne_bytes());
    }

    /// Opens a nested attribute; close it with [`MessageWriter::end_nest`].
    pub fn begin_nest(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    /// Closes the nested attribute opened at `at`.
    pub fn end_nest(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// Adds a tuple (`CTA_TUPLE_ORIG`/`CTA_TUPLE_REPLY`): addresses,
    /// protocol, ports or ICMP fields, and the direction zone if any
    /// (encoded by [`crate::wire::encode::put_tuple`]).
    pub fn put_tuple(&mut self, ty: u16, t: &Tuple) {
        encode::put_tuple(self.buf, CtaAttr(ty), t);
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
    let mut w = MessageWriter::begin(buf, msg::CT_NEW, nl_flags, seq, family, 0);
    encode::encode_flow(&f, w.buf());
    w.finish();
    Ok(())
}

/// Appends a `CT_NEW` update request (no `NLM_F_CREATE`).
pub fn write_update(buf: &mut Vec<u8>, u: &Update, seq: u32, nl_flags: u16) -> Result<()> {
    let family = tuple_family(&u.tuple)?;
    let mut w = MessageWriter::begin(buf, msg::CT_NEW, nl_flags, seq, family, 0);
    w.put_tuple(cta::TUPLE_ORIG, &u.tuple);
    if let Some(z) = u.zone {
        w.put_u16_be(cta::ZONE, z);
    }
    if let Some(s) = u.status {
        w.put_u32_be(cta::STATUS, s.bits());
    }
    if let Some(t) = u.timeout {
        w.put_u32_be(cta::TIMEOUT, t);
    }
    if let Some(m) = u.mark {
        w.put_u32_be(cta::MARK, m);
    }
    if let Some(state) = u.tcp_state {
        let tcp = conntrack_core::TcpInfo {
            state,
            ..Default::default()
        };
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
    w.put_tuple(cta::TUPLE_ORIG, tuple);
    if let Some(z) = zone {
        w.put_u16_be(cta::ZONE, z);
    }
    if let Some(id) = id {
        w.put_u32_be(cta::ID, id);
    }
    w.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_core::{L4Proto, L4Tuple};

    #[test]
    fn header_only_matches_own_writer() {
        for (m, f, fam) in [
            (msg::CT_GET, flags::REQUEST | flags::DUMP, L3Family::UNSPEC),
            (
                msg::CT_GET_STATS_CPU,
                flags::REQUEST | flags::DUMP,
                L3Family::INET6,
            ),
            (msg::CT_DELETE, flags::REQUEST | flags::ACK, L3Family::INET),
        ] {
            let a = header_only(m, f, 99, fam, 0);
            let mut b = Vec::new();
            MessageWriter::begin(&mut b, m, f, 99, fam, 0).finish();
            assert_eq!(a, b);
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
        let mut w = MessageWriter::begin(&mut buf, msg::CT_GET, 1, 1, L3Family::INET, 0);
        w.put_tuple(cta::TUPLE_ORIG, &t);
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
