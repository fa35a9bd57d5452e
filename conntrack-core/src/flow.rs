//! The owned [`Flow`]: one conntrack entry with everything the kernel may
//! report about it, and the derived facts every tool asks for.

use crate::proto::{L3Family, L4Proto};
use crate::state::{DccpState, FlowState, SctpState, TcpState};
use crate::status::Status;
use crate::tuple::{Endpoint, Tuple};
use serde::{Deserialize, Serialize};

/// Packet and byte counters of one direction (`CTA_COUNTERS_*`), present
/// when `nf_conntrack_acct` is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Start and stop times (`CTA_TIMESTAMP`), wall clock in nanoseconds since
/// the Unix epoch, present when `nf_conntrack_timestamp` is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp {
    /// When the entry was confirmed.
    pub start: u64,
    /// When it was destroyed (destroy events only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<u64>,
}

/// Connection labels (`CTA_LABELS`): a 128-bit set, as the kernel's
/// `unsigned long bits[]` laid out on a little-endian host (bit `n` is bit
/// `n % 8` of byte `n / 8`).
///
/// ```
/// use conntrack_core::Labels;
/// let l = Labels::from_bits([1, 9, 127]);
/// assert!(l.contains(9) && !l.contains(8));
/// assert_eq!(l.iter().collect::<Vec<_>>(), vec![1, 9, 127]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Labels(pub [u8; 16]);

impl Labels {
    /// The number of label bits.
    pub const BITS: u32 = 128;

    /// A set with the given bits (bits >= 128 are ignored).
    pub fn from_bits<I: IntoIterator<Item = u32>>(bits: I) -> Self {
        let mut l = Labels::default();
        for b in bits {
            l.insert(b);
        }
        l
    }

    /// Sets bit `bit` (ignored when >= 128).
    pub fn insert(&mut self, bit: u32) {
        if bit < Self::BITS {
            self.0[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }

    /// Whether bit `bit` is set.
    pub fn contains(&self, bit: u32) -> bool {
        bit < Self::BITS && self.0[(bit / 8) as usize] & (1 << (bit % 8)) != 0
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 16]
    }

    /// The set bits in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..Self::BITS).filter(|&b| self.contains(b))
    }
}

/// TCP window scale and flags of one direction: `{u8 flags; u8 mask}` in
/// `CTA_PROTOINFO_TCP_FLAGS_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TcpFlags {
    /// `IP_CT_TCP_FLAG_*` bits.
    pub flags: u8,
    /// Which bits are meaningful.
    pub mask: u8,
}

/// TCP protocol information (`CTA_PROTOINFO_TCP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TcpInfo {
    /// The TCP state.
    pub state: TcpState,
    /// Window scale, original direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wscale_orig: Option<u8>,
    /// Window scale, reply direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wscale_reply: Option<u8>,
    /// Flags, original direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags_orig: Option<TcpFlags>,
    /// Flags, reply direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags_reply: Option<TcpFlags>,
}

/// SCTP protocol information (`CTA_PROTOINFO_SCTP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SctpInfo {
    /// The SCTP state.
    pub state: SctpState,
    /// Verification tag, original direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtag_orig: Option<u32>,
    /// Verification tag, reply direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtag_reply: Option<u32>,
}

/// DCCP protocol information (`CTA_PROTOINFO_DCCP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DccpInfo {
    /// The DCCP state.
    pub state: DccpState,
    /// Role (`CTA_PROTOINFO_DCCP_ROLE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<u8>,
    /// Handshake sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_seq: Option<u64>,
}

impl TcpInfo {
    /// TCP information with a state and nothing else.
    pub fn new(state: TcpState) -> Self {
        TcpInfo {
            state,
            wscale_orig: None,
            wscale_reply: None,
            flags_orig: None,
            flags_reply: None,
        }
    }

    /// With the window scales of both directions.
    pub fn with_wscale(mut self, orig: u8, reply: u8) -> Self {
        self.wscale_orig = Some(orig);
        self.wscale_reply = Some(reply);
        self
    }

    /// With the flags of both directions.
    pub fn with_flags(mut self, orig: TcpFlags, reply: TcpFlags) -> Self {
        self.flags_orig = Some(orig);
        self.flags_reply = Some(reply);
        self
    }
}

impl SctpInfo {
    /// SCTP information with a state and nothing else.
    pub fn new(state: SctpState) -> Self {
        SctpInfo {
            state,
            vtag_orig: None,
            vtag_reply: None,
        }
    }

    /// With the verification tags of both directions.
    pub fn with_vtags(mut self, orig: u32, reply: u32) -> Self {
        self.vtag_orig = Some(orig);
        self.vtag_reply = Some(reply);
        self
    }
}

impl DccpInfo {
    /// DCCP information with a state and nothing else.
    pub fn new(state: DccpState) -> Self {
        DccpInfo {
            state,
            role: None,
            handshake_seq: None,
        }
    }

    /// With the role and handshake sequence number.
    pub fn with_role(mut self, role: u8, handshake_seq: u64) -> Self {
        self.role = Some(role);
        self.handshake_seq = Some(handshake_seq);
        self
    }
}

/// Protocol-specific information (`CTA_PROTOINFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProtoInfo {
    /// TCP.
    Tcp(TcpInfo),
    /// SCTP.
    Sctp(SctpInfo),
    /// DCCP.
    Dccp(DccpInfo),
}

/// Sequence adjustment of one direction (`CTA_SEQ_ADJ_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SeqAdj {
    /// `CTA_SEQADJ_CORRECTION_POS`.
    pub correction_pos: u32,
    /// `CTA_SEQADJ_OFFSET_BEFORE`.
    pub offset_before: u32,
    /// `CTA_SEQADJ_OFFSET_AFTER`.
    pub offset_after: u32,
}

/// SYN proxy state (`CTA_SYNPROXY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Synproxy {
    /// `CTA_SYNPROXY_ISN`.
    pub isn: u32,
    /// `CTA_SYNPROXY_ITS`.
    pub its: u32,
    /// `CTA_SYNPROXY_TSOFF`.
    pub tsoff: u32,
}

/// Which address translations a flow has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Nat {
    /// The source was rewritten (masquerade, SNAT).
    pub snat: bool,
    /// The destination was rewritten (DNAT, port forwarding, a service VIP).
    pub dnat: bool,
}

impl Nat {
    /// Either direction.
    pub fn any(self) -> bool {
        self.snat || self.dnat
    }
}

/// A direction-agnostic identity of a flow: protocol, zone and the two
/// endpoints in a canonical order, so that a flow and its reverse (or the
/// same connection seen from both sides) share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FlowKey {
    /// Layer 4 protocol.
    pub proto: L4Proto,
    /// Conntrack zone (0 when none).
    pub zone: u16,
    /// The lower endpoint.
    pub a: Endpoint,
    /// The higher endpoint.
    pub b: Endpoint,
}

/// One conntrack entry.
///
/// Tuples are always present (the kernel always sends both); everything
/// else is `None` when the kernel (or the captured text) did not carry it.
///
/// ```
/// use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
/// let ip = |s: &str| s.parse().unwrap();
/// let orig = Tuple::new(ip("172.17.0.2"), ip("1.1.1.1"), L4Proto::UDP,
///                       L4Tuple::Ports { src: 5353, dst: 53 });
/// // Masqueraded: the reply comes back to the host address.
/// let reply = Tuple::new(ip("1.1.1.1"), ip("192.0.2.10"), L4Proto::UDP,
///                        L4Tuple::Ports { src: 53, dst: 5353 });
/// let flow = Flow::new(orig, reply, Status::CONFIRMED);
/// assert!(flow.nat().snat && !flow.nat().dnat);
/// assert!(!flow.is_replied());
/// assert_eq!(flow.state().to_string(), "UNREPLIED");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Flow {
    /// Original direction (`CTA_TUPLE_ORIG`).
    pub orig: Tuple,
    /// Reply direction (`CTA_TUPLE_REPLY`).
    pub reply: Tuple,
    /// The master's original tuple for expected flows (`CTA_TUPLE_MASTER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<Tuple>,
    /// Status bits (`CTA_STATUS`).
    pub status: Status,
    /// Protocol state (`CTA_PROTOINFO`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protoinfo: Option<ProtoInfo>,
    /// Remaining lifetime in seconds (`CTA_TIMEOUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Connection mark (`CTA_MARK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<u32>,
    /// Conntrack zone (`CTA_ZONE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<u16>,
    /// Opaque entry id (`CTA_ID`, a keyed hash, not a sequence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// Reference count (`CTA_USE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_count: Option<u32>,
    /// Original direction counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters_orig: Option<Counters>,
    /// Reply direction counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters_reply: Option<Counters>,
    /// Start/stop timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// Connection labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    /// Helper name (`CTA_HELP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<String>,
    /// Security context (`CTA_SECCTX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secctx: Option<String>,
    /// Legacy numeric security mark (`CTA_SECMARK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secmark: Option<u32>,
    /// Sequence adjustment, original direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seqadj_orig: Option<SeqAdj>,
    /// Sequence adjustment, reply direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seqadj_reply: Option<SeqAdj>,
    /// SYN proxy state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synproxy: Option<Synproxy>,
}

impl Flow {
    /// A flow with both tuples and a status, and nothing else.
    pub fn new(orig: Tuple, reply: Tuple, status: Status) -> Self {
        Flow {
            orig,
            reply,
            master: None,
            status,
            protoinfo: None,
            timeout: None,
            mark: None,
            zone: None,
            id: None,
            use_count: None,
            counters_orig: None,
            counters_reply: None,
            timestamp: None,
            labels: None,
            helper: None,
            secctx: None,
            secmark: None,
            seqadj_orig: None,
            seqadj_reply: None,
            synproxy: None,
        }
    }

    /// The address family.
    pub fn family(&self) -> L3Family {
        self.orig.family()
    }

    /// The layer 4 protocol.
    pub fn proto(&self) -> L4Proto {
        self.orig.proto
    }

    /// The TCP state, for TCP flows that carry protoinfo.
    pub fn tcp_state(&self) -> Option<TcpState> {
        match self.protoinfo {
            Some(ProtoInfo::Tcp(t)) => Some(t.state),
            _ => None,
        }
    }

    /// The state to group this flow by. See [`flow_state`].
    pub fn state(&self) -> FlowState {
        flow_state(self.protoinfo.as_ref(), self.status)
    }

    /// Whether the entry is assured (`IPS_ASSURED`): it will not be
    /// early-dropped when the table is full.
    pub fn is_assured(&self) -> bool {
        self.status.contains(Status::ASSURED)
    }

    /// Whether a reply has been seen (`IPS_SEEN_REPLY`).
    pub fn is_replied(&self) -> bool {
        self.status.contains(Status::SEEN_REPLY)
    }

    /// Which translations apply. See [`nat_of`].
    pub fn nat(&self) -> Nat {
        nat_of(&self.orig, &self.reply, self.status)
    }

    /// Whether the flow is translated in either direction.
    pub fn is_nat(&self) -> bool {
        self.nat().any()
    }

    /// The direction-agnostic key. See [`flow_key`].
    pub fn key(&self) -> FlowKey {
        flow_key(&self.orig, self.zone)
    }
}

/// The state a flow is grouped by: the protocol state from protoinfo, or
/// for stateless protocols, replied or not from the status bits. Shared by
/// owned flows and borrowed views.
pub fn flow_state(protoinfo: Option<&ProtoInfo>, status: Status) -> FlowState {
    match protoinfo {
        Some(ProtoInfo::Tcp(t)) => FlowState::Tcp(t.state),
        Some(ProtoInfo::Sctp(s)) => FlowState::Sctp(s.state),
        Some(ProtoInfo::Dccp(d)) => FlowState::Dccp(d.state),
        None if status.contains(Status::SEEN_REPLY) => FlowState::Replied,
        None => FlowState::Unreplied,
    }
}

/// Which translations a pair of tuples shows: the NAT status bits, or the
/// reply tuple not being the inverse of the original one (a translation
/// leaves the status bits set, but captured text may lack them, so both are
/// checked). Shared by owned flows and borrowed views.
pub fn nat_of(orig: &Tuple, reply: &Tuple, status: Status) -> Nat {
    // Endpoints compare address and port-like key; for ICMP the key is the
    // echo id, which masquerading may remap, so that counts as SNAT too.
    let (os, od) = (orig.src_endpoint(), orig.dst_endpoint());
    let (rs, rd) = (reply.src_endpoint(), reply.dst_endpoint());
    Nat {
        snat: status.contains(Status::SRC_NAT) || rd != os,
        dnat: status.contains(Status::DST_NAT) || rs != od,
    }
}

/// The direction-agnostic key of a flow from its original tuple and zone.
pub fn flow_key(orig: &Tuple, zone: Option<u16>) -> FlowKey {
    let (s, d) = (orig.src_endpoint(), orig.dst_endpoint());
    let (a, b) = if s <= d { (s, d) } else { (d, s) };
    FlowKey {
        proto: orig.proto,
        zone: zone.unwrap_or(0),
        a,
        b,
    }
}

/// Read access to the fields analysis needs, implemented by the owned
/// [`Flow`] and by borrowed views such as `conntrack-netlink`'s `FlowView`,
/// so that aggregation code is written once and never forces a view to be
/// turned into an owned flow. Every method is cheap (no allocation).
///
/// ```
/// use conntrack_core::{Flow, FlowLike, L4Proto, L4Tuple, Status, Tuple};
/// fn is_dns<F: FlowLike>(f: &F) -> bool {
///     f.orig().proto == L4Proto::UDP && f.orig().dst_port() == Some(53)
/// }
/// let ip = |s: &str| s.parse().unwrap();
/// let t = Tuple::new(ip("10.0.0.1"), ip("10.0.0.53"), L4Proto::UDP,
///                    L4Tuple::Ports { src: 3333, dst: 53 });
/// let r = Tuple::new(ip("10.0.0.53"), ip("10.0.0.1"), L4Proto::UDP,
///                    L4Tuple::Ports { src: 53, dst: 3333 });
/// assert!(is_dns(&Flow::new(t, r, Status::CONFIRMED)));
/// ```
pub trait FlowLike {
    /// Original direction tuple.
    fn orig(&self) -> Tuple;
    /// Reply direction tuple.
    fn reply(&self) -> Tuple;
    /// Status bits.
    fn status(&self) -> Status;
    /// Protocol state information.
    fn protoinfo(&self) -> Option<ProtoInfo>;
    /// Remaining lifetime in seconds.
    fn timeout(&self) -> Option<u32>;
    /// Connection mark.
    fn mark(&self) -> Option<u32>;
    /// Conntrack zone.
    fn zone(&self) -> Option<u16>;
    /// Original direction counters.
    fn counters_orig(&self) -> Option<Counters>;
    /// Reply direction counters.
    fn counters_reply(&self) -> Option<Counters>;

    /// The state to group the flow by.
    fn flow_state(&self) -> FlowState {
        flow_state(self.protoinfo().as_ref(), self.status())
    }
    /// Which translations apply.
    fn flow_nat(&self) -> Nat {
        nat_of(&self.orig(), &self.reply(), self.status())
    }
    /// The direction-agnostic key.
    fn flow_key(&self) -> FlowKey {
        flow_key(&self.orig(), self.zone())
    }
}

impl FlowLike for Flow {
    fn orig(&self) -> Tuple {
        self.orig
    }
    fn reply(&self) -> Tuple {
        self.reply
    }
    fn status(&self) -> Status {
        self.status
    }
    fn protoinfo(&self) -> Option<ProtoInfo> {
        self.protoinfo
    }
    fn timeout(&self) -> Option<u32> {
        self.timeout
    }
    fn mark(&self) -> Option<u32> {
        self.mark
    }
    fn zone(&self) -> Option<u16> {
        self.zone
    }
    fn counters_orig(&self) -> Option<Counters> {
        self.counters_orig
    }
    fn counters_reply(&self) -> Option<Counters> {
        self.counters_reply
    }
}
