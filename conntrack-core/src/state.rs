//! Protocol state machines: TCP, SCTP and DCCP states, and the derived
//! [`FlowState`] that every tool groups flows by.

use crate::macros::kernel_enum;
use serde::{Deserialize, Serialize};

kernel_enum! {
    /// TCP conntrack state (`enum tcp_conntrack`,
    /// `include/uapi/linux/netfilter/nf_conntrack_tcp.h`).
    ///
    /// ```
    /// use conntrack_core::TcpState;
    /// assert_eq!(TcpState::TIME_WAIT.0, 7);
    /// assert_eq!(TcpState::from_name("ESTABLISHED"), Some(TcpState::ESTABLISHED));
    /// ```
    pub struct TcpState(u8) {
        /// No state yet.
        NONE = 0 => "NONE",
        /// SYN seen.
        SYN_SENT = 1 => "SYN_SENT",
        /// SYN/ACK seen.
        SYN_RECV = 2 => "SYN_RECV",
        /// Handshake complete.
        ESTABLISHED = 3 => "ESTABLISHED",
        /// FIN seen.
        FIN_WAIT = 4 => "FIN_WAIT",
        /// FIN seen from the other side.
        CLOSE_WAIT = 5 => "CLOSE_WAIT",
        /// Last ACK awaited.
        LAST_ACK = 6 => "LAST_ACK",
        /// Both FINs seen and acknowledged.
        TIME_WAIT = 7 => "TIME_WAIT",
        /// RST seen.
        CLOSE = 8 => "CLOSE",
        /// Simultaneous open (SYN seen in both directions).
        SYN_SENT2 = 9 => "SYN_SENT2",
    }
}

kernel_enum! {
    /// SCTP conntrack state (`enum sctp_conntrack`,
    /// `include/uapi/linux/netfilter/nf_conntrack_sctp.h`).
    pub struct SctpState(u8) {
        /// No state.
        NONE = 0 => "NONE",
        /// Closed.
        CLOSED = 1 => "CLOSED",
        /// INIT seen.
        COOKIE_WAIT = 2 => "COOKIE_WAIT",
        /// COOKIE ECHO seen.
        COOKIE_ECHOED = 3 => "COOKIE_ECHOED",
        /// Association established.
        ESTABLISHED = 4 => "ESTABLISHED",
        /// SHUTDOWN seen.
        SHUTDOWN_SENT = 5 => "SHUTDOWN_SENT",
        /// SHUTDOWN received.
        SHUTDOWN_RECD = 6 => "SHUTDOWN_RECD",
        /// SHUTDOWN ACK seen.
        SHUTDOWN_ACK_SENT = 7 => "SHUTDOWN_ACK_SENT",
        /// HEARTBEAT seen on a new secondary path.
        HEARTBEAT_SENT = 8 => "HEARTBEAT_SENT",
        /// HEARTBEAT ACK seen (kernels before 6.x only; the value was
        /// retired when the SCTP tracker was simplified).
        HEARTBEAT_ACKED = 9 => "HEARTBEAT_ACKED",
    }
}

kernel_enum! {
    /// DCCP conntrack state (`enum ct_dccp_states`,
    /// `include/uapi/linux/netfilter/nf_conntrack_dccp.h`).
    pub struct DccpState(u8) {
        /// No state.
        NONE = 0 => "NONE",
        /// REQUEST seen.
        REQUEST = 1 => "REQUEST",
        /// RESPONSE seen.
        RESPOND = 2 => "RESPOND",
        /// Partially open.
        PARTOPEN = 3 => "PARTOPEN",
        /// Open.
        OPEN = 4 => "OPEN",
        /// CLOSEREQ seen.
        CLOSEREQ = 5 => "CLOSEREQ",
        /// CLOSE seen.
        CLOSING = 6 => "CLOSING",
        /// Time-wait.
        TIMEWAIT = 7 => "TIMEWAIT",
        /// Ignored packet.
        IGNORE = 8 => "IGNORE",
        /// Invalid.
        INVALID = 9 => "INVALID",
    }
}

/// The state a flow is grouped by: the protocol state where the protocol
/// has one, otherwise whether a reply has been seen (what the `conntrack`
/// CLI shows as `[UNREPLIED]`).
///
/// ```
/// use conntrack_core::{FlowState, TcpState};
/// assert_eq!(FlowState::Tcp(TcpState::TIME_WAIT).to_string(), "TIME_WAIT");
/// assert_eq!(FlowState::Unreplied.to_string(), "UNREPLIED");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlowState {
    /// A TCP state.
    Tcp(TcpState),
    /// An SCTP state.
    Sctp(SctpState),
    /// A DCCP state.
    Dccp(DccpState),
    /// No protocol state, no reply seen yet.
    Unreplied,
    /// No protocol state, a reply has been seen.
    Replied,
}

impl core::fmt::Display for FlowState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FlowState::Tcp(s) => s.fmt(f),
            FlowState::Sctp(s) => s.fmt(f),
            FlowState::Dccp(s) => s.fmt(f),
            FlowState::Unreplied => f.write_str("UNREPLIED"),
            FlowState::Replied => f.write_str("REPLIED"),
        }
    }
}
