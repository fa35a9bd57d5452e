//! [`FlowView`]: one conntrack entry decoded from a ctnetlink message in a
//! single pass, borrowing its strings from the receive buffer.
//!
//! The same decoder serves dump items, get replies and events
//! (`IPCTNL_MSG_CT_NEW` / `IPCTNL_MSG_CT_DELETE`). It is order-agnostic,
//! skips unknown attributes and padding attributes, masks the flag bits of
//! attribute types and checks every length against the attribute's type.
//!
//! Length rules (payload length = `nla_len - 4`):
//!
//! | attributes | payload |
//! |---|---|
//! | `CTA_STATUS`, `CTA_TIMEOUT`, `CTA_MARK`, `CTA_MARK_MASK`, `CTA_USE`, `CTA_ID`, `CTA_SECMARK`, `CTA_SEQADJ_*`, `CTA_SYNPROXY_*`, `CTA_PROTOINFO_SCTP_VTAG_*`, `CTA_COUNTERS32_*` | exactly 4 |
//! | `CTA_ZONE`, `CTA_TUPLE_ZONE`, ports, ICMP ids | exactly 2 |
//! | `CTA_PROTO_NUM`, ICMP type/code, TCP/SCTP/DCCP state, wscale, DCCP role | exactly 1 |
//! | `CTA_PROTOINFO_TCP_FLAGS_*` | exactly 2 (`{flags, mask}`) |
//! | `CTA_COUNTERS_PACKETS/BYTES`, `CTA_TIMESTAMP_*`, `CTA_TIMESTAMP_EVENT`, DCCP handshake seq | exactly 8 |
//! | `CTA_IP_V4_*` / `CTA_IP_V6_*` | exactly 4 / 16 |
//! | `CTA_LABELS`, `CTA_LABELS_MASK` | 1 to 16 (the kernel sends 16; shorter is zero-extended) |
//! | `CTA_HELP_NAME`, `CTA_SECCTX_NAME` | a NUL within the payload, UTF-8 before it; bytes after the NUL are ignored |
//! | nests | empty, or at least one 4-byte attribute header |
//!
//! Required: `CTA_TUPLE_ORIG` and `CTA_TUPLE_REPLY` (each with addresses
//! and a protocol number), and a name in `CTA_HELP` / `CTA_SECCTX` when
//! those are present. Everything else is optional.

use super::attr::*;
use super::encode::{Pad64, put_attr, put_be16, put_be32};
use super::error::{DecodeError, ErrorKind, Expected};
use super::event::EventKind;
use super::fast::{be32, hdr, word};
use super::message::{IPCTNL_MSG_CT_NEW, Message, NFGENMSG_LEN, NLMSG_HDRLEN, NfGenMsg};
use super::nla::{Attr, Attrs, relabel};
use super::{counters, named, protoinfo, seqadj, synproxy, timestamp, tuple};
use conntrack_core::{
    Counters, Flow, FlowKey, FlowLike, FlowState, L3Family, L4Proto, Labels, Nat, ProtoInfo,
    SeqAdj, Status, Synproxy, TcpState, Timestamp, Tuple,
};

/// One conntrack entry, decoded in a single pass without allocating.
///
/// Scalars and tuples are decoded into fixed fields; the helper and
/// security context names borrow from the buffer, so a view lives as long
/// as the receive buffer, not as long as the iterator that made it.
/// [`FlowView::to_owned`] builds a core [`Flow`] when one is needed.
///
/// ```
/// use conntrack_core::{Flow, FlowLike, L4Proto, L4Tuple, Status, Tuple};
/// use conntrack_netlink::wire::{encode, FlowView};
///
/// let ip = |s: &str| s.parse().unwrap();
/// let orig = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::UDP,
///                       L4Tuple::Ports { src: 5000, dst: 53 });
/// let reply = Tuple::new(ip("10.0.0.2"), ip("10.0.0.1"), L4Proto::UDP,
///                        L4Tuple::Ports { src: 53, dst: 5000 });
/// let mut flow = Flow::new(orig, reply, Status::CONFIRMED | Status::SEEN_REPLY);
/// flow.mark = Some(42);
///
/// // nfgenmsg followed by the attributes, as after a netlink header.
/// let mut payload = vec![2, 0, 0, 0];
/// encode::encode_flow_as_kernel(&flow, &mut payload);
/// let view = FlowView::parse(&payload).unwrap();
/// assert_eq!(view.mark(), Some(42));
/// assert_eq!(view.orig().dst_port(), Some(53));
/// assert_eq!(view.state().to_string(), "REPLIED");
/// assert_eq!(view.to_owned(), flow);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowView<'a> {
    payload: &'a [u8],
    base: usize,
    nfgen: NfGenMsg,
    msg_type: u8,
    nl_flags: u16,
    orig: Tuple,
    reply: Tuple,
    master: Option<Tuple>,
    status: Option<Status>,
    protoinfo: Option<ProtoInfo>,
    timeout: Option<u32>,
    mark: Option<u32>,
    mark_mask: Option<u32>,
    zone: Option<u16>,
    id: Option<u32>,
    use_count: Option<u32>,
    secmark: Option<u32>,
    counters_orig: Option<Counters>,
    counters_reply: Option<Counters>,
    timestamp: Option<Timestamp>,
    timestamp_event: Option<u64>,
    labels: Option<Labels>,
    labels_mask: Option<Labels>,
    helper: Option<&'a str>,
    secctx: Option<&'a str>,
    seqadj_orig: Option<SeqAdj>,
    seqadj_reply: Option<SeqAdj>,
    synproxy: Option<Synproxy>,
}

const C: Space = Space::Conntrack;

/// `CTA_LABELS` / `CTA_LABELS_MASK`: 1 to 16 bytes, zero-extended.
#[inline(always)]
fn labels(a: &Attr<'_>) -> Result<Labels, DecodeError> {
    let v = a.value();
    if v.is_empty() || v.len() > 16 {
        return Err(DecodeError::at(
            a.offset(),
            C,
            a.ty(),
            ErrorKind::BadLength {
                len: v.len() as u16,
                expected: Expected::Between(1, 16),
            },
        ));
    }
    let mut l = [0u8; 16];
    l[..v.len()].copy_from_slice(v);
    Ok(Labels(l))
}

/// The fast path for the four be32 attributes a dump puts after
/// `CTA_STATUS`: `CTA_MARK`, `CTA_ID`, `CTA_USE`, `CTA_TIMEOUT` (the 32
/// bytes at the start of `rest`), as `(mark, id, use, timeout)`.
#[inline(always)]
fn after_status(rest: &[u8]) -> Option<(u32, u32, u32, u32)> {
    let b = rest.first_chunk::<32>()?;
    let ok = word(b, 0) == hdr(8, CTA_MARK.0)
        && word(b, 8) == hdr(8, CTA_ID.0)
        && word(b, 16) == hdr(8, CTA_USE.0)
        && word(b, 24) == hdr(8, CTA_TIMEOUT.0);
    ok.then(|| (be32(b, 4), be32(b, 12), be32(b, 20), be32(b, 28)))
}

impl<'a> FlowView<'a> {
    /// Decodes a conntrack message's payload: the bytes after the netlink
    /// header, starting with the 4-byte `nfgenmsg`. Error offsets are
    /// positions in `payload`. The message type is taken to be
    /// `IPCTNL_MSG_CT_NEW`; use [`FlowView::from_message`] to keep the
    /// header's type and flags.
    ///
    /// ```
    /// use conntrack_netlink::wire::{ErrorKind, FlowView};
    /// // An nfgenmsg and no attributes: the tuples are missing.
    /// let e = FlowView::parse(&[2, 0, 0, 0]).unwrap_err();
    /// assert_eq!(e.kind, ErrorKind::Missing);
    /// assert_eq!(e.to_string(), "CTA_TUPLE_ORIG at byte 0: required attribute is missing");
    /// ```
    pub fn parse(payload: &'a [u8]) -> Result<FlowView<'a>, DecodeError> {
        Self::decode::<true>(payload, 0, IPCTNL_MSG_CT_NEW, 0)
    }

    /// Decodes the flow in `msg` (which should satisfy
    /// [`Message::is_ct_flow`]); error offsets are positions in the buffer
    /// the message came from.
    #[inline(always)]
    pub fn from_message(msg: &Message<'a>) -> Result<FlowView<'a>, DecodeError> {
        Self::decode::<true>(
            msg.payload,
            msg.offset + NLMSG_HDRLEN,
            msg.msg_type(),
            msg.flags,
        )
    }

    /// The single pass. With `FAST`, nests in the kernel's common layouts
    /// are read by their fast paths (see `fast.rs`), which accept only
    /// what the general path decodes to the same value.
    #[inline(always)]
    fn decode<const FAST: bool>(
        payload: &'a [u8],
        base: usize,
        msg_type: u8,
        nl_flags: u16,
    ) -> Result<FlowView<'a>, DecodeError> {
        let Some(nfgen) = NfGenMsg::parse(payload) else {
            return Err(DecodeError::new(
                base,
                ErrorKind::Truncated {
                    needed: NFGENMSG_LEN as u16,
                    available: payload.len(),
                },
            ));
        };
        let (mut have_orig, mut have_reply) = (false, false);
        let mut v = FlowView {
            payload,
            base,
            nfgen,
            msg_type,
            nl_flags,
            orig: tuple::PLACEHOLDER,
            reply: tuple::PLACEHOLDER,
            master: None,
            status: None,
            protoinfo: None,
            timeout: None,
            mark: None,
            mark_mask: None,
            zone: None,
            id: None,
            use_count: None,
            secmark: None,
            counters_orig: None,
            counters_reply: None,
            timestamp: None,
            timestamp_event: None,
            labels: None,
            labels_mask: None,
            helper: None,
            secctx: None,
            seqadj_orig: None,
            seqadj_reply: None,
            synproxy: None,
        };
        let mut it = Attrs::new(&payload[NFGENMSG_LEN..], base + NFGENMSG_LEN);
        loop {
            let a = match it.next_attr() {
                Ok(Some(a)) => a,
                Ok(None) => break,
                Err(e) => return Err(relabel(e, C)),
            };
            match CtaAttr(a.ty()) {
                // Tuples are written in place: the fast path for the
                // kernel's layouts, the general path for anything else.
                CTA_TUPLE_ORIG => {
                    if !(FAST && tuple::decode_fast_into(a.value(), &mut v.orig)) {
                        v.orig = tuple::decode(&a, C)?;
                    }
                    have_orig = true;
                }
                CTA_TUPLE_REPLY => {
                    if !(FAST && tuple::decode_fast_into(a.value(), &mut v.reply)) {
                        v.reply = tuple::decode(&a, C)?;
                    }
                    have_reply = true;
                }
                CTA_STATUS => {
                    v.status = Some(Status::from_bits_retain(a.be32(C)?));
                    // A dump continues with mark, id, use and timeout.
                    if let Some((mark, id, use_count, timeout)) =
                        after_status(it.remaining()).filter(|_| FAST)
                    {
                        v.mark = Some(mark);
                        v.id = Some(id);
                        v.use_count = Some(use_count);
                        v.timeout = Some(timeout);
                        it.skip_bytes(32);
                    }
                }
                CTA_TIMEOUT => v.timeout = Some(a.be32(C)?),
                CTA_MARK => v.mark = Some(a.be32(C)?),
                CTA_ID => v.id = Some(a.be32(C)?),
                CTA_USE => v.use_count = Some(a.be32(C)?),
                CTA_PROTOINFO => {
                    v.protoinfo = match protoinfo::decode_fast_tcp(a.value()) {
                        Some(t) if FAST => Some(ProtoInfo::Tcp(t)),
                        _ => protoinfo::decode(&a)?,
                    }
                }
                CTA_COUNTERS_ORIG | CTA_COUNTERS_REPLY => {
                    let c = match counters::decode_fast(a.value()) {
                        Some(c) if FAST => c,
                        _ => counters::decode(&a)?,
                    };
                    if a.ty() == CTA_COUNTERS_ORIG.0 {
                        v.counters_orig = Some(c);
                    } else {
                        v.counters_reply = Some(c);
                    }
                }
                CTA_TIMESTAMP => {
                    v.timestamp = Some(match timestamp::decode_fast(a.value()) {
                        Some(t) if FAST => t,
                        _ => timestamp::decode(&a)?,
                    })
                }
                CTA_ZONE => v.zone = Some(a.be16(C)?),
                CTA_TUPLE_MASTER => v.master = Some(tuple::decode(&a, C)?),
                CTA_HELP => v.helper = Some(named::decode(&a)?),
                CTA_SECCTX => v.secctx = Some(named::decode(&a)?),
                CTA_SECMARK => v.secmark = Some(a.be32(C)?),
                CTA_LABELS => v.labels = Some(labels(&a)?),
                CTA_LABELS_MASK => v.labels_mask = Some(labels(&a)?),
                CTA_MARK_MASK => v.mark_mask = Some(a.be32(C)?),
                CTA_SEQ_ADJ_ORIG => v.seqadj_orig = Some(seqadj::decode(&a)?),
                CTA_SEQ_ADJ_REPLY => v.seqadj_reply = Some(seqadj::decode(&a)?),
                CTA_SYNPROXY => {
                    v.synproxy = match synproxy::decode_fast(a.value()) {
                        Some(s) if FAST => Some(s),
                        _ => Some(synproxy::decode(&a)?),
                    }
                }
                CTA_TIMESTAMP_EVENT => v.timestamp_event = Some(a.be64(C)?),
                _ => {}
            }
        }
        let missing = |ty: CtaAttr| DecodeError::at(base, C, ty.0, ErrorKind::Missing);
        if !have_orig {
            return Err(missing(CTA_TUPLE_ORIG));
        }
        if !have_reply {
            return Err(missing(CTA_TUPLE_REPLY));
        }
        Ok(v)
    }

    /// The payload this view was decoded from (nfgenmsg and attributes).
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The top-level attributes, raw (for attributes this crate does not
    /// decode). Offsets are positions in the same buffer as the errors.
    pub fn attrs(&self) -> Attrs<'a> {
        let attrs = self.payload.get(NFGENMSG_LEN..).unwrap_or(&[]);
        Attrs::new(attrs, self.base + NFGENMSG_LEN)
    }

    /// The netfilter header.
    pub const fn nfgenmsg(&self) -> NfGenMsg {
        self.nfgen
    }

    /// `IPCTNL_MSG_CT_NEW` or `IPCTNL_MSG_CT_DELETE` (for events: DESTROY).
    pub const fn msg_type(&self) -> u8 {
        self.msg_type
    }

    /// The netlink header's flags (0 when decoded with [`FlowView::parse`]).
    pub const fn nlmsg_flags(&self) -> u16 {
        self.nl_flags
    }

    /// Which event this message announces (see [`EventKind`]).
    pub const fn event_kind(&self) -> EventKind {
        EventKind::of(self.msg_type, self.nl_flags)
    }

    /// Original direction tuple (`CTA_TUPLE_ORIG`).
    #[inline]
    pub const fn orig(&self) -> Tuple {
        self.orig
    }

    /// Reply direction tuple (`CTA_TUPLE_REPLY`).
    #[inline]
    pub const fn reply(&self) -> Tuple {
        self.reply
    }

    /// The master's original tuple of an expected flow (`CTA_TUPLE_MASTER`).
    pub const fn master(&self) -> Option<Tuple> {
        self.master
    }

    /// Status bits (`CTA_STATUS`); empty when the message has none (DESTROY
    /// events of old kernels).
    #[inline]
    pub fn status(&self) -> Status {
        self.status.unwrap_or(Status::empty())
    }

    /// Whether the message carried `CTA_STATUS`.
    pub const fn has_status(&self) -> bool {
        self.status.is_some()
    }

    /// Protocol state (`CTA_PROTOINFO`).
    #[inline]
    pub const fn protoinfo(&self) -> Option<ProtoInfo> {
        self.protoinfo
    }

    /// Remaining lifetime in seconds (`CTA_TIMEOUT`).
    pub const fn timeout(&self) -> Option<u32> {
        self.timeout
    }

    /// Connection mark (`CTA_MARK`).
    pub const fn mark(&self) -> Option<u32> {
        self.mark
    }

    /// Mark mask (`CTA_MARK_MASK`; requests only).
    pub const fn mark_mask(&self) -> Option<u32> {
        self.mark_mask
    }

    /// Conntrack zone (`CTA_ZONE`).
    pub const fn zone(&self) -> Option<u16> {
        self.zone
    }

    /// Opaque entry id (`CTA_ID`).
    pub const fn id(&self) -> Option<u32> {
        self.id
    }

    /// Reference count (`CTA_USE`).
    pub const fn use_count(&self) -> Option<u32> {
        self.use_count
    }

    /// Legacy security mark (`CTA_SECMARK`).
    pub const fn secmark(&self) -> Option<u32> {
        self.secmark
    }

    /// Original direction counters (`CTA_COUNTERS_ORIG`).
    pub const fn counters_orig(&self) -> Option<Counters> {
        self.counters_orig
    }

    /// Reply direction counters (`CTA_COUNTERS_REPLY`).
    pub const fn counters_reply(&self) -> Option<Counters> {
        self.counters_reply
    }

    /// Start/stop timestamps (`CTA_TIMESTAMP`).
    pub const fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }

    /// When the event was generated (`CTA_TIMESTAMP_EVENT`, 6.14+ events).
    pub const fn timestamp_event(&self) -> Option<u64> {
        self.timestamp_event
    }

    /// Connection labels (`CTA_LABELS`).
    pub const fn labels(&self) -> Option<Labels> {
        self.labels
    }

    /// Labels mask (`CTA_LABELS_MASK`; requests only).
    pub const fn labels_mask(&self) -> Option<Labels> {
        self.labels_mask
    }

    /// Helper name (`CTA_HELP/CTA_HELP_NAME`), borrowed from the buffer.
    pub const fn helper(&self) -> Option<&'a str> {
        self.helper
    }

    /// Security context (`CTA_SECCTX/CTA_SECCTX_NAME`), borrowed from the
    /// buffer.
    pub const fn secctx(&self) -> Option<&'a str> {
        self.secctx
    }

    /// Sequence adjustment, original direction (`CTA_SEQ_ADJ_ORIG`).
    pub const fn seqadj_orig(&self) -> Option<SeqAdj> {
        self.seqadj_orig
    }

    /// Sequence adjustment, reply direction (`CTA_SEQ_ADJ_REPLY`).
    pub const fn seqadj_reply(&self) -> Option<SeqAdj> {
        self.seqadj_reply
    }

    /// SYN proxy state (`CTA_SYNPROXY`).
    pub const fn synproxy(&self) -> Option<Synproxy> {
        self.synproxy
    }

    /// The address family (of the original tuple).
    pub fn family(&self) -> L3Family {
        self.orig.family()
    }

    /// The layer 4 protocol.
    pub const fn proto(&self) -> L4Proto {
        self.orig.proto
    }

    /// The TCP state, for TCP flows that carry protoinfo.
    pub const fn tcp_state(&self) -> Option<TcpState> {
        match self.protoinfo {
            Some(ProtoInfo::Tcp(t)) => Some(t.state),
            _ => None,
        }
    }

    /// The state to group this flow by (see [`conntrack_core::flow_state`]).
    #[inline]
    pub fn state(&self) -> FlowState {
        conntrack_core::flow_state(self.protoinfo.as_ref(), self.status())
    }

    /// Whether the entry is assured (`IPS_ASSURED`).
    pub fn is_assured(&self) -> bool {
        self.status().contains(Status::ASSURED)
    }

    /// Whether a reply has been seen (`IPS_SEEN_REPLY`).
    pub fn is_replied(&self) -> bool {
        self.status().contains(Status::SEEN_REPLY)
    }

    /// Which translations apply (see [`conntrack_core::nat_of`]).
    pub fn nat(&self) -> Nat {
        conntrack_core::nat_of(&self.orig, &self.reply, self.status())
    }

    /// Whether the flow is translated in either direction.
    pub fn is_nat(&self) -> bool {
        self.nat().any()
    }

    /// The direction-agnostic key (see [`conntrack_core::flow_key`]).
    pub fn key(&self) -> FlowKey {
        conntrack_core::flow_key(&self.orig, self.zone)
    }

    /// An owned [`Flow`] with everything core's `Flow` holds (the request-
    /// only masks, the event timestamp and the message type are not part
    /// of it). Allocates only for the helper and security context names.
    #[allow(clippy::wrong_self_convention)]
    pub fn to_owned(&self) -> Flow {
        let mut f = Flow::new(self.orig, self.reply, self.status());
        f.master = self.master;
        f.protoinfo = self.protoinfo;
        f.timeout = self.timeout;
        f.mark = self.mark;
        f.zone = self.zone;
        f.id = self.id;
        f.use_count = self.use_count;
        f.counters_orig = self.counters_orig;
        f.counters_reply = self.counters_reply;
        f.timestamp = self.timestamp;
        f.labels = self.labels;
        f.helper = self.helper.map(str::to_owned);
        f.secctx = self.secctx.map(str::to_owned);
        f.secmark = self.secmark;
        f.seqadj_orig = self.seqadj_orig;
        f.seqadj_reply = self.seqadj_reply;
        f.synproxy = self.synproxy;
        f
    }
}

/// Decodes without the fast paths (for tests comparing the two).
#[cfg(test)]
pub(crate) fn parse_general(payload: &[u8]) -> Result<FlowView<'_>, DecodeError> {
    FlowView::decode::<false>(payload, 0, IPCTNL_MSG_CT_NEW, 0)
}

impl FlowLike for FlowView<'_> {
    #[inline]
    fn orig(&self) -> Tuple {
        self.orig
    }
    #[inline]
    fn reply(&self) -> Tuple {
        self.reply
    }
    #[inline]
    fn status(&self) -> Status {
        FlowView::status(self)
    }
    #[inline]
    fn protoinfo(&self) -> Option<ProtoInfo> {
        self.protoinfo
    }
    #[inline]
    fn timeout(&self) -> Option<u32> {
        self.timeout
    }
    #[inline]
    fn mark(&self) -> Option<u32> {
        self.mark
    }
    #[inline]
    fn zone(&self) -> Option<u16> {
        self.zone
    }
    #[inline]
    fn counters_orig(&self) -> Option<Counters> {
        self.counters_orig
    }
    #[inline]
    fn counters_reply(&self) -> Option<Counters> {
        self.counters_reply
    }
}

impl From<FlowView<'_>> for Flow {
    fn from(v: FlowView<'_>) -> Flow {
        FlowView::to_owned(&v)
    }
}

// Encoding

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
    tuple::put_tuple(out, CTA_TUPLE_ORIG, &flow.orig);
    tuple::put_tuple(out, CTA_TUPLE_REPLY, &flow.reply);
    if let Some(z) = flow.zone {
        put_be16(out, CTA_ZONE.0, z);
    }
    if let Some(m) = &flow.master {
        tuple::put_tuple(out, CTA_TUPLE_MASTER, m);
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
        protoinfo::put_protoinfo(out, p, Pad64::None);
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
    tuple::put_tuple(out, CTA_TUPLE_ORIG, &flow.orig);
    tuple::put_tuple(out, CTA_TUPLE_REPLY, &flow.reply);
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
        named::put_named(out, CTA_SECCTX, s);
    }
    if let Some(id) = flow.id {
        put_be32(out, CTA_ID.0, id);
    }
    if let Some(u) = flow.use_count {
        put_be32(out, CTA_USE.0, u);
    }
    if let Some(m) = &flow.master {
        tuple::put_tuple(out, CTA_TUPLE_MASTER, m);
    }
    if let Some(t) = flow.timeout {
        put_be32(out, CTA_TIMEOUT.0, t);
    }
    if let Some(p) = &flow.protoinfo {
        protoinfo::put_protoinfo(out, p, pad);
    }
    if let Some(c) = &flow.counters_orig {
        counters::put_counters(out, CTA_COUNTERS_ORIG, c, pad);
    }
    if let Some(c) = &flow.counters_reply {
        counters::put_counters(out, CTA_COUNTERS_REPLY, c, pad);
    }
    if let Some(t) = &flow.timestamp {
        timestamp::put_timestamp(out, t, pad);
    }
    put_tail(flow, out);
}

/// The attributes both a request and a dump end with, in the kernel's
/// order (`ctnetlink_fill_info`): helper, labels, sequence adjustment of
/// both directions, SYN proxy.
fn put_tail(flow: &Flow, out: &mut Vec<u8>) {
    if let Some(h) = &flow.helper {
        named::put_named(out, CTA_HELP, h);
    }
    if let Some(l) = &flow.labels {
        put_attr(out, CTA_LABELS.0, &l.0);
    }
    if let Some(s) = &flow.seqadj_orig {
        seqadj::put_seqadj(out, CTA_SEQ_ADJ_ORIG, s);
    }
    if let Some(s) = &flow.seqadj_reply {
        seqadj::put_seqadj(out, CTA_SEQ_ADJ_REPLY, s);
    }
    if let Some(s) = &flow.synproxy {
        synproxy::put_synproxy(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::{ip, payload};
    use crate::wire::encode;
    use conntrack_core::{L4Tuple, TcpFlags, TcpInfo};
    use proptest::prelude::*;

    fn tcp_flow() -> Flow {
        let orig = Tuple::new(
            ip("192.168.1.10"),
            ip("93.184.216.34"),
            L4Proto::TCP,
            L4Tuple::Ports {
                src: 51000,
                dst: 443,
            },
        );
        let reply = Tuple::new(
            ip("93.184.216.34"),
            ip("203.0.113.5"),
            L4Proto::TCP,
            L4Tuple::Ports {
                src: 443,
                dst: 51000,
            },
        );
        let mut f = Flow::new(
            orig,
            reply,
            Status::CONFIRMED
                | Status::SEEN_REPLY
                | Status::ASSURED
                | Status::SRC_NAT
                | Status::SRC_NAT_DONE,
        );
        f.protoinfo = Some(ProtoInfo::Tcp(
            TcpInfo::new(TcpState::ESTABLISHED)
                .with_wscale(7, 9)
                .with_flags(
                    TcpFlags {
                        flags: 0x23,
                        mask: 0x23,
                    },
                    TcpFlags {
                        flags: 0x33,
                        mask: 0x33,
                    },
                ),
        ));
        f.timeout = Some(431999);
        f.mark = Some(7);
        f.zone = Some(3);
        f.id = Some(0xdeadbeef);
        f.use_count = Some(1);
        f.counters_orig = Some(Counters {
            packets: 10,
            bytes: 1000,
        });
        f.counters_reply = Some(Counters {
            packets: 8,
            bytes: 9000,
        });
        f.timestamp = Some(Timestamp {
            start: 1_700_000_000_000_000_000,
            stop: None,
        });
        f.labels = Some(Labels::from_bits([1, 100]));
        f.helper = Some("ftp".into());
        f
    }

    #[test]
    fn roundtrip_everything() {
        let f = tcp_flow();
        let p = payload(&f);
        let v = FlowView::parse(&p).unwrap();
        assert_eq!(v.to_owned(), f);
        assert_eq!(v.helper(), Some("ftp"));
        assert_eq!(v.tcp_state(), Some(TcpState::ESTABLISHED));
        assert!(v.nat().snat && !v.nat().dnat);
        assert_eq!(v.key(), f.key());
        assert_eq!(FlowLike::flow_state(&v), f.state());
        assert_eq!(v.event_kind(), EventKind::Update);
        assert_eq!(v.attrs().count(), v.attrs().filter(|a| a.is_ok()).count());
    }

    #[test]
    fn order_agnostic_and_unknown_skipped() {
        let f = tcp_flow();
        let p = payload(&f);
        // Reverse the top-level attributes and add an unknown one.
        let attrs: Vec<_> = FlowView::parse(&p)
            .unwrap()
            .attrs()
            .map(|a| a.unwrap())
            .collect();
        let mut q = vec![2, 0, 0, 0];
        encode::put_attr(&mut q, 999, &[1, 2, 3]);
        for a in attrs.iter().rev() {
            encode::put_attr(&mut q, a.raw_type(), a.value());
        }
        assert_eq!(FlowView::parse(&q).unwrap().to_owned(), f);
    }

    #[test]
    fn truncated_nfgenmsg() {
        let e = FlowView::parse(&[2, 0]).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Truncated {
                needed: 4,
                available: 2
            }
        );
        assert!(e.path.is_empty());
    }

    #[test]
    fn bad_top_level_lengths() {
        let f = tcp_flow();
        let p = payload(&f);
        // Find CTA_ZONE and make it 4 bytes.
        let zone = FlowView::parse(&p)
            .unwrap()
            .attrs()
            .map(|a| a.unwrap())
            .find(|a| a.ty() == CTA_ZONE.0)
            .unwrap();
        let mut q = p.clone();
        q[zone.offset()] = 8;
        q[zone.offset() + 4..zone.offset() + 8].copy_from_slice(&[0, 3, 0, 0]);
        let e = FlowView::parse(&q).unwrap_err();
        assert_eq!(e.offset, zone.offset());
        assert_eq!(
            e.to_string(),
            format!("CTA_ZONE at byte {}: length 4, expected 2", zone.offset())
        );
    }

    #[test]
    fn missing_reply_and_helper_name() {
        let f = tcp_flow();
        let p = payload(&f);
        let v = FlowView::parse(&p).unwrap();
        let mut q = vec![2, 0, 0, 0];
        for a in v.attrs().map(|a| a.unwrap()) {
            match CtaAttr(a.ty()) {
                CTA_TUPLE_REPLY => {}
                CTA_HELP => encode::put_attr(&mut q, a.raw_type(), &[]),
                _ => encode::put_attr(&mut q, a.raw_type(), a.value()),
            }
        }
        let e = FlowView::parse(&q).unwrap_err();
        assert_eq!(e.path.to_string(), "CTA_HELP/CTA_HELP_NAME");
        assert_eq!(e.kind, ErrorKind::Missing);
        let mut r = vec![2, 0, 0, 0];
        for a in v.attrs().map(|a| a.unwrap()) {
            if a.ty() != CTA_TUPLE_REPLY.0 {
                encode::put_attr(&mut r, a.raw_type(), a.value());
            }
        }
        let e = FlowView::parse(&r).unwrap_err();
        assert_eq!(e.path.to_string(), "CTA_TUPLE_REPLY");
        assert_eq!((e.offset, e.kind), (0, ErrorKind::Missing));
    }

    #[test]
    fn labels_lengths() {
        let mut q = payload(&tcp_flow());
        encode::put_attr(&mut q, CTA_LABELS.0, &[0xff; 17]);
        let e = FlowView::parse(&q).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::BadLength {
                len: 17,
                expected: Expected::Between(1, 16)
            }
        );
        let mut q = payload(&tcp_flow());
        encode::put_attr(&mut q, CTA_LABELS.0, &[0x01, 0x02, 0, 0]);
        let l = FlowView::parse(&q).unwrap().labels().unwrap();
        assert!(l.contains(0) && l.contains(9) && !l.contains(100));
    }

    #[test]
    fn hex_literal_udp() {
        // A CT_NEW payload as this kernel dumps a UDP flow 10.1.1.1:1234 ->
        // 10.1.1.2:53, unreplied, timeout 29, mark 0, use 1.
        #[rustfmt::skip]
        let p: &[u8] = &[
            2, 0, 0, 0,
            52, 0, 1, 0x80,
              20, 0, 1, 0x80, 8, 0, 1, 0, 10, 1, 1, 1, 8, 0, 2, 0, 10, 1, 1, 2,
              28, 0, 2, 0x80, 5, 0, 1, 0, 17, 0, 0, 0, 6, 0, 2, 0, 0x04, 0xd2, 0, 0,
                6, 0, 3, 0, 0, 53, 0, 0,
            52, 0, 2, 0x80,
              20, 0, 1, 0x80, 8, 0, 1, 0, 10, 1, 1, 2, 8, 0, 2, 0, 10, 1, 1, 1,
              28, 0, 2, 0x80, 5, 0, 1, 0, 17, 0, 0, 0, 6, 0, 2, 0, 0, 53, 0, 0,
                6, 0, 3, 0, 0x04, 0xd2, 0, 0,
            8, 0, 3, 0, 0, 0, 0, 8,
            8, 0, 8, 0, 0, 0, 0, 0,
            8, 0, 12, 0, 0x12, 0x34, 0x56, 0x78,
            8, 0, 11, 0, 0, 0, 0, 1,
            8, 0, 7, 0, 0, 0, 0, 29,
        ];
        let v = FlowView::parse(p).unwrap();
        assert_eq!(v.orig().src, ip("10.1.1.1"));
        assert_eq!(v.reply().l4, L4Tuple::Ports { src: 53, dst: 1234 });
        assert_eq!(v.status(), Status::CONFIRMED);
        assert_eq!(
            (v.mark(), v.id(), v.use_count(), v.timeout()),
            (Some(0), Some(0x12345678), Some(1), Some(29))
        );
        assert_eq!(v.state(), FlowState::Unreplied);
        assert!(!v.is_nat());
        // And the encoder emits exactly these bytes.
        let mut q = vec![2, 0, 0, 0];
        encode::encode_flow_as_kernel(&v.to_owned(), &mut q);
        assert_eq!(q, p);
    }

    #[test]
    fn kernel_layouts_take_the_fast_paths() {
        let ip = "10.0.0.1".parse().unwrap();
        let t = Tuple::new(ip, ip, L4Proto::TCP, L4Tuple::Ports { src: 1, dst: 2 });
        let mut f = Flow::new(t, t, Status::CONFIRMED);
        f.counters_orig = Some(Counters {
            packets: 1,
            bytes: 2,
        });
        f.timestamp = Some(Timestamp {
            start: 3,
            stop: None,
        });
        f.protoinfo = Some(ProtoInfo::Tcp(
            TcpInfo::new(TcpState::ESTABLISHED)
                .with_wscale(1, 2)
                .with_flags(
                    TcpFlags { flags: 3, mask: 4 },
                    TcpFlags { flags: 5, mask: 6 },
                ),
        ));
        (f.mark, f.id, f.use_count, f.timeout) = (Some(7), Some(8), Some(9), Some(10));
        f.synproxy = Some(Synproxy {
            isn: 11,
            its: 12,
            tsoff: 13,
        });
        let mut p = Vec::new();
        encode_flow_as_kernel(&f, &mut p);
        let attrs: Vec<_> = Attrs::new(&p, 0).map(|a| a.unwrap()).collect();
        let value = |ty: CtaAttr| attrs.iter().find(|a| a.ty() == ty.0).unwrap().value();
        let mut fast = tuple::PLACEHOLDER;
        assert!(tuple::decode_fast_into(value(CTA_TUPLE_ORIG), &mut fast));
        assert_eq!(fast, t);
        assert_eq!(
            counters::decode_fast(value(CTA_COUNTERS_ORIG)),
            f.counters_orig
        );
        assert_eq!(timestamp::decode_fast(value(CTA_TIMESTAMP)), f.timestamp);
        assert_eq!(
            protoinfo::decode_fast_tcp(value(CTA_PROTOINFO)).map(ProtoInfo::Tcp),
            f.protoinfo
        );
        assert_eq!(synproxy::decode_fast(value(CTA_SYNPROXY)), f.synproxy);
        let status = attrs.iter().find(|a| a.ty() == CTA_STATUS.0).unwrap();
        assert_eq!(after_status(&p[status.offset() + 8..]), Some((7, 8, 9, 10)));
    }

    proptest! {
        /// The fast paths for counters, timestamps, TCP protoinfo, SYN
        /// proxy and the block after CTA_STATUS are taken on the kernel's layout and agree
        /// with the general path on mutations of it.
        #[test]
        fn fast_nests_agree(
            c in any::<(u64, u64)>(),
            ts in any::<(u64, Option<u64>)>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        ) {
            let ip = "10.0.0.1".parse().unwrap();
            let t = Tuple::new(ip, ip, L4Proto::TCP, L4Tuple::Ports { src: 1, dst: 2 });
            let mut f = Flow::new(t, t, Status::CONFIRMED);
            f.counters_orig = Some(Counters { packets: c.0, bytes: c.1 });
            f.mark = Some(c.0 as u32);
            f.id = Some(c.1 as u32);
            f.use_count = Some(1);
            f.timeout = Some((c.0 >> 32) as u32);
            f.timestamp = Some(Timestamp { start: ts.0, stop: ts.1 });
            f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo::new(TcpState(c.0 as u8)).with_wscale(1, 2).with_flags(TcpFlags { flags: 3, mask: 4 }, TcpFlags { flags: 5, mask: 6 })));
            f.synproxy = Some(Synproxy { isn: c.0 as u32, its: c.1 as u32, tsoff: ts.0 as u32 });
            let mut p = vec![2, 0, 0, 0];
            encode_flow_as_kernel(&f, &mut p);
            prop_assert_eq!(FlowView::parse(&p).unwrap().to_owned(), f.clone());
            // Mutate, then compare fast and general decoding of the flow.
            let mut q = p.clone();
            for (i, x) in flips {
                let i = 4 + i.index(q.len() - 4);
                q[i] ^= x;
            }
            let fast = FlowView::parse(&q).map(|v| v.to_owned());
            let slow = parse_general(&q).map(|v| v.to_owned());
            prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn pad_attributes_are_skipped() {
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
        f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo::new(TcpState::CLOSE)));
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
}
