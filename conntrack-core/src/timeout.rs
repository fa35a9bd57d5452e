//! Conntrack timeouts: one key type for every `nf_conntrack_*timeout*`
//! sysctl the analysis reasons about, the kernel's default for each (by
//! kernel version), and which timeout governs an entry in a given state.
//!
//! Defaults are the kernel's initial values (`tcp_timeouts[]` in
//! `net/netfilter/nf_conntrack_proto_tcp.c`, `udp_timeouts[]` in
//! `nf_conntrack_proto_udp.c`, `nf_ct_icmp_timeout`, `nf_ct_icmpv6_timeout`,
//! `nf_ct_generic_timeout`, `gre_timeouts[]`).
//!
//! ```
//! use conntrack_core::{KernelVersion, TimeoutKey};
//! let k = TimeoutKey::from_name("nf_conntrack_tcp_timeout_time_wait").unwrap();
//! assert_eq!(k, TimeoutKey::TcpTimeWait);
//! assert_eq!(k.sysctl(), "net.netfilter.nf_conntrack_tcp_timeout_time_wait");
//! assert_eq!(k.default_secs(Some(KernelVersion::new(6, 1, 0))), 120);
//! assert_eq!(TimeoutKey::TcpEstablished.default_secs(None), 432_000);
//! ```

use crate::{FlowState, HostSnapshot, KernelVersion, L4Proto, TcpState};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A conntrack timeout sysctl, `net.netfilter.nf_conntrack_<name>`.
///
/// It serialises as its sysctl name (`"tcp_timeout_time_wait"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
#[non_exhaustive]
pub enum TimeoutKey {
    /// `tcp_timeout_syn_sent`.
    TcpSynSent,
    /// `tcp_timeout_syn_recv`.
    TcpSynRecv,
    /// `tcp_timeout_established`.
    TcpEstablished,
    /// `tcp_timeout_fin_wait`.
    TcpFinWait,
    /// `tcp_timeout_close_wait`.
    TcpCloseWait,
    /// `tcp_timeout_last_ack`.
    TcpLastAck,
    /// `tcp_timeout_time_wait`.
    TcpTimeWait,
    /// `tcp_timeout_close`.
    TcpClose,
    /// `tcp_timeout_max_retrans`.
    TcpMaxRetrans,
    /// `tcp_timeout_unacknowledged`.
    TcpUnacknowledged,
    /// `udp_timeout`: UDP flows not (yet) assured.
    Udp,
    /// `udp_timeout_stream`: assured UDP flows (replies seen, then more
    /// traffic).
    UdpStream,
    /// `icmp_timeout`.
    Icmp,
    /// `icmpv6_timeout`.
    Icmpv6,
    /// `generic_timeout`: protocols without their own tracker.
    Generic,
}

impl TimeoutKey {
    /// Every key, in declaration order.
    pub const ALL: [TimeoutKey; 15] = [
        TimeoutKey::TcpSynSent,
        TimeoutKey::TcpSynRecv,
        TimeoutKey::TcpEstablished,
        TimeoutKey::TcpFinWait,
        TimeoutKey::TcpCloseWait,
        TimeoutKey::TcpLastAck,
        TimeoutKey::TcpTimeWait,
        TimeoutKey::TcpClose,
        TimeoutKey::TcpMaxRetrans,
        TimeoutKey::TcpUnacknowledged,
        TimeoutKey::Udp,
        TimeoutKey::UdpStream,
        TimeoutKey::Icmp,
        TimeoutKey::Icmpv6,
        TimeoutKey::Generic,
    ];

    /// The sysctl's name after `nf_conntrack_` (`tcp_timeout_time_wait`).
    pub const fn name(self) -> &'static str {
        match self {
            TimeoutKey::TcpSynSent => "tcp_timeout_syn_sent",
            TimeoutKey::TcpSynRecv => "tcp_timeout_syn_recv",
            TimeoutKey::TcpEstablished => "tcp_timeout_established",
            TimeoutKey::TcpFinWait => "tcp_timeout_fin_wait",
            TimeoutKey::TcpCloseWait => "tcp_timeout_close_wait",
            TimeoutKey::TcpLastAck => "tcp_timeout_last_ack",
            TimeoutKey::TcpTimeWait => "tcp_timeout_time_wait",
            TimeoutKey::TcpClose => "tcp_timeout_close",
            TimeoutKey::TcpMaxRetrans => "tcp_timeout_max_retrans",
            TimeoutKey::TcpUnacknowledged => "tcp_timeout_unacknowledged",
            TimeoutKey::Udp => "udp_timeout",
            TimeoutKey::UdpStream => "udp_timeout_stream",
            TimeoutKey::Icmp => "icmp_timeout",
            TimeoutKey::Icmpv6 => "icmpv6_timeout",
            TimeoutKey::Generic => "generic_timeout",
        }
    }

    /// The full sysctl key (`net.netfilter.nf_conntrack_tcp_timeout_time_wait`).
    pub fn sysctl(self) -> String {
        format!("net.netfilter.nf_conntrack_{}", self.name())
    }

    /// The key for a name in any of its spellings: `tcp_timeout_time_wait`,
    /// `nf_conntrack_tcp_timeout_time_wait` or the full dotted sysctl.
    ///
    /// ```
    /// use conntrack_core::TimeoutKey;
    /// for n in ["udp_timeout", "nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout"] {
    ///     assert_eq!(TimeoutKey::from_name(n), Some(TimeoutKey::Udp));
    /// }
    /// assert_eq!(TimeoutKey::from_name("nf_conntrack_max"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<TimeoutKey> {
        let short = name.strip_prefix("net.netfilter.").unwrap_or(name);
        let short = short.strip_prefix("nf_conntrack_").unwrap_or(short);
        TimeoutKey::ALL.into_iter().find(|k| k.name() == short)
    }

    /// `(protocol, state)` as [`crate::HostSnapshot::timeouts`] keys them
    /// (`("tcp", "time_wait")`, `("udp", "default")`).
    pub fn proto_state(self) -> (&'static str, &'static str) {
        let n = self.name();
        match n.split_once("_timeout") {
            Some((proto, "")) => (proto, "default"),
            Some((proto, rest)) => (proto, rest.trim_start_matches('_')),
            None => (n, "default"),
        }
    }

    /// The kernel's default, in seconds. `kernel` selects the era where a
    /// default changed; `None` means a current kernel.
    ///
    /// - `udp_timeout_stream` is 180 s in the 3.x to 4.19 sources
    ///   (`udp_timeouts[UDP_CT_REPLIED]`) and 120 s in 5.x and 6.x ones;
    ///   the change is taken to be in 5.0 (the commit was not identified).
    pub fn default_secs(self, kernel: Option<KernelVersion>) -> u32 {
        match self {
            TimeoutKey::TcpSynSent => 120,
            TimeoutKey::TcpSynRecv => 60,
            TimeoutKey::TcpEstablished => 432_000,
            TimeoutKey::TcpFinWait => 120,
            TimeoutKey::TcpCloseWait => 60,
            TimeoutKey::TcpLastAck => 30,
            TimeoutKey::TcpTimeWait => 120,
            TimeoutKey::TcpClose => 10,
            TimeoutKey::TcpMaxRetrans => 300,
            TimeoutKey::TcpUnacknowledged => 300,
            TimeoutKey::Udp => 30,
            TimeoutKey::UdpStream => match kernel {
                Some(v) if !v.at_least(5, 0) => 180,
                _ => 120,
            },
            TimeoutKey::Icmp | TimeoutKey::Icmpv6 => 30,
            TimeoutKey::Generic => 600,
        }
    }

    /// The timeout an entry of this protocol in this state starts on.
    /// `None` for TCP states without a timeout of their own (`NONE`,
    /// unknown numbers).
    ///
    /// UDP entries run on `udp_timeout` until a reply has been seen and the
    /// flow is still active two seconds after it started; only then on
    /// `udp_timeout_stream` (`nf_conntrack_udp_packet`, 6.x). A
    /// request/response exchange such as DNS therefore stays on
    /// `udp_timeout` even when replied, so both UDP states map to
    /// [`TimeoutKey::Udp`]; a remaining time above it marks a stream.
    ///
    /// ```
    /// use conntrack_core::{FlowState, L4Proto, TcpState, TimeoutKey};
    /// assert_eq!(TimeoutKey::for_state(L4Proto::TCP, FlowState::Tcp(TcpState::TIME_WAIT)),
    ///            Some(TimeoutKey::TcpTimeWait));
    /// assert_eq!(TimeoutKey::for_state(L4Proto::UDP, FlowState::Replied),
    ///            Some(TimeoutKey::Udp));
    /// assert_eq!(TimeoutKey::for_state(L4Proto::UDP, FlowState::Unreplied),
    ///            Some(TimeoutKey::Udp));
    /// ```
    pub fn for_state(proto: L4Proto, state: FlowState) -> Option<TimeoutKey> {
        Some(match (proto, state) {
            (_, FlowState::Tcp(s)) => match s {
                TcpState::SYN_SENT | TcpState::SYN_SENT2 => TimeoutKey::TcpSynSent,
                TcpState::SYN_RECV => TimeoutKey::TcpSynRecv,
                TcpState::ESTABLISHED => TimeoutKey::TcpEstablished,
                TcpState::FIN_WAIT => TimeoutKey::TcpFinWait,
                TcpState::CLOSE_WAIT => TimeoutKey::TcpCloseWait,
                TcpState::LAST_ACK => TimeoutKey::TcpLastAck,
                TcpState::TIME_WAIT => TimeoutKey::TcpTimeWait,
                TcpState::CLOSE => TimeoutKey::TcpClose,
                _ => return None,
            },
            (p, _) if p == L4Proto::UDP || p == L4Proto::UDPLITE => TimeoutKey::Udp,
            (p, _) if p == L4Proto::ICMP => TimeoutKey::Icmp,
            (p, _) if p == L4Proto::ICMPV6 => TimeoutKey::Icmpv6,
            (p, _) if p == L4Proto::TCP => return None,
            _ => TimeoutKey::Generic,
        })
    }
}

impl From<TimeoutKey> for &'static str {
    fn from(k: TimeoutKey) -> &'static str {
        k.name()
    }
}

/// A name that is not a conntrack timeout this crate knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a conntrack timeout: {0:?}")]
pub struct UnknownTimeout(pub String);

impl TryFrom<String> for TimeoutKey {
    type Error = UnknownTimeout;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        TimeoutKey::from_name(&s).ok_or(UnknownTimeout(s))
    }
}

/// Its sysctl name, one of [`TimeoutKey::ALL`].
#[cfg(feature = "schema")]
impl schemars::JsonSchema for TimeoutKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimeoutKey".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        "conntrack_core::TimeoutKey".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = TimeoutKey::ALL.iter().map(|k| k.name()).collect();
        schemars::json_schema!({
            "description": "A conntrack timeout, by its sysctl name without the \
                            `net.netfilter.nf_conntrack_` prefix.",
            "type": "string",
            "enum": names,
        })
    }
}

impl fmt::Display for TimeoutKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A timeout's value on a host: the configured one when it was read, else
/// the kernel's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Timeout {
    /// Which timeout.
    pub key: TimeoutKey,
    /// Seconds.
    pub secs: u32,
    /// Whether `secs` was read from the host (`false`: the kernel default,
    /// because the sysctl was not available).
    pub configured: bool,
    /// The kernel's default for this key on the host's kernel.
    pub default_secs: u32,
}

impl Timeout {
    /// Whether the host runs a value other than the kernel default.
    pub fn is_changed(&self) -> bool {
        self.configured && self.secs != self.default_secs
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {} s", self.key, self.secs)?;
        if !self.configured {
            f.write_str(" (kernel default; not read from the host)")
        } else if self.secs != self.default_secs {
            write!(f, " (kernel default {} s)", self.default_secs)
        } else {
            f.write_str(" (kernel default)")
        }
    }
}

impl HostSnapshot {
    /// The value of a timeout on this host: the configured one when the
    /// snapshot has it ([`HostSnapshot::timeouts`], or the raw sysctl),
    /// else the kernel's default for the snapshot's kernel.
    ///
    /// ```
    /// use conntrack_core::{HostSnapshot, TimeoutKey};
    /// let mut s = HostSnapshot::default();
    /// s.timeouts.entry("tcp".into()).or_default().insert("established".into(), 86_400);
    /// let t = s.timeout(TimeoutKey::TcpEstablished);
    /// assert_eq!((t.secs, t.configured, t.default_secs), (86_400, true, 432_000));
    /// assert!(t.is_changed());
    /// assert!(!s.timeout(TimeoutKey::TcpTimeWait).configured);
    /// ```
    pub fn timeout(&self, key: TimeoutKey) -> Timeout {
        let (proto, state) = key.proto_state();
        let configured = self
            .timeouts
            .get(proto)
            .and_then(|m| m.get(state))
            .copied()
            .or_else(|| {
                self.sysctls
                    .get(&format!("nf_conntrack_{}", key.name()))
                    .and_then(|v| v.trim().parse().ok())
            });
        let default_secs = key.default_secs(self.kernel_version);
        Timeout {
            key,
            secs: configured.unwrap_or(default_secs),
            configured: configured.is_some(),
            default_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in TimeoutKey::ALL {
            assert_eq!(TimeoutKey::from_name(k.name()), Some(k));
            assert_eq!(TimeoutKey::from_name(&k.sysctl()), Some(k));
            let (p, s) = k.proto_state();
            assert!(!p.is_empty() && !s.is_empty(), "{k}");
        }
        assert_eq!(TimeoutKey::Udp.proto_state(), ("udp", "default"));
        assert_eq!(TimeoutKey::UdpStream.proto_state(), ("udp", "stream"));
        assert_eq!(TimeoutKey::TcpTimeWait.proto_state(), ("tcp", "time_wait"));
    }

    #[test]
    fn udp_stream_default_by_era() {
        let old = Some(KernelVersion::new(4, 19, 0));
        assert_eq!(TimeoutKey::UdpStream.default_secs(old), 180);
        assert_eq!(
            TimeoutKey::UdpStream.default_secs(Some(KernelVersion::new(5, 4, 0))),
            120
        );
    }
}
