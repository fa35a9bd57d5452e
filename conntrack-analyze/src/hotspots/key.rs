//! Key kinds (what flows are grouped by), key values and their names, and
//! the address helpers the counters share.

use conntrack_core::{FlowState, L4Proto};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What flows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyKind {
    /// Original source address.
    SrcIp,
    /// Original destination address.
    DstIp,
    /// Protocol and original destination port.
    DstPort,
    /// Original destination endpoint: protocol, address and port (the
    /// service a flow goes to; for ICMP and other port-less protocols the
    /// port is 0).
    Destination,
    /// Layer 4 protocol.
    Proto,
    /// Protocol and state (TCP state; UDP and others: replied/unreplied).
    State,
    /// Conntrack zone (0 when none).
    Zone,
    /// Connection mark (0 when none).
    Mark,
    /// Source /24 (IPv6: /64).
    SrcNet,
    /// Source /16 (IPv6: /48).
    SrcNetWide,
    /// (source, destination) address pair.
    Pair,
    /// Translated or not, and how.
    Nat,
    /// A caller-supplied name for the address or its prefix (a
    /// [`NameMap`](super::NameMap): a flow is named after its original
    /// source, else its reply source, else its original destination).
    Name,
}

impl KeyKind {
    /// Every kind, in the order summaries list them.
    pub const ALL: [KeyKind; 13] = [
        KeyKind::SrcIp,
        KeyKind::DstIp,
        KeyKind::DstPort,
        KeyKind::Destination,
        KeyKind::Proto,
        KeyKind::State,
        KeyKind::Zone,
        KeyKind::Mark,
        KeyKind::SrcNet,
        KeyKind::SrcNetWide,
        KeyKind::Pair,
        KeyKind::Nat,
        KeyKind::Name,
    ];

    /// The snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            KeyKind::SrcIp => "src_ip",
            KeyKind::DstIp => "dst_ip",
            KeyKind::DstPort => "dst_port",
            KeyKind::Destination => "destination",
            KeyKind::Proto => "proto",
            KeyKind::State => "state",
            KeyKind::Zone => "zone",
            KeyKind::Mark => "mark",
            KeyKind::SrcNet => "src_net",
            KeyKind::SrcNetWide => "src_net_wide",
            KeyKind::Pair => "pair",
            KeyKind::Nat => "nat",
            KeyKind::Name => "name",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a flow is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NatClass {
    /// Not translated.
    None,
    /// Source translated (masquerade, SNAT).
    Snat,
    /// Destination translated (DNAT, port forward, service VIP).
    Dnat,
    /// Both.
    Both,
}

impl NatClass {
    pub(super) fn of(n: conntrack_core::Nat) -> NatClass {
        match (n.snat, n.dnat) {
            (false, false) => NatClass::None,
            (true, false) => NatClass::Snat,
            (false, true) => NatClass::Dnat,
            (true, true) => NatClass::Both,
        }
    }
}

/// One key value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Key {
    /// An address.
    Ip(IpAddr),
    /// A protocol and port.
    Port {
        /// Protocol.
        proto: L4Proto,
        /// Port.
        port: u16,
    },
    /// A protocol, address and port.
    Endpoint {
        /// Protocol.
        proto: L4Proto,
        /// Address.
        addr: IpAddr,
        /// Port (0 for port-less protocols).
        port: u16,
    },
    /// A protocol.
    Proto(L4Proto),
    /// A protocol and state.
    State {
        /// Protocol.
        proto: L4Proto,
        /// State.
        state: FlowState,
    },
    /// A zone.
    Zone(u16),
    /// A mark.
    Mark(u32),
    /// A network prefix.
    Net {
        /// The masked address.
        addr: IpAddr,
        /// Prefix length.
        prefix: u8,
    },
    /// An address pair.
    Pair {
        /// Source.
        src: IpAddr,
        /// Destination.
        dst: IpAddr,
    },
    /// A NAT class.
    Nat(NatClass),
    /// A caller-supplied name.
    Name(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Ip(a) => write!(f, "{a}"),
            Key::Port { proto, port } => write!(f, "{proto}/{port}"),
            Key::Endpoint {
                proto,
                addr: IpAddr::V6(a),
                port,
            } => write!(f, "{proto} [{a}]:{port}"),
            Key::Endpoint { proto, addr, port } => write!(f, "{proto} {addr}:{port}"),
            Key::Proto(p) => write!(f, "{p}"),
            Key::State { proto, state } => write!(f, "{proto} {state}"),
            Key::Zone(z) => write!(f, "zone {z}"),
            Key::Mark(m) => write!(f, "mark {m:#x}"),
            Key::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Key::Pair { src, dst } => write!(f, "{src} -> {dst}"),
            Key::Nat(n) => f.write_str(match n {
                NatClass::None => "no NAT",
                NatClass::Snat => "SNAT",
                NatClass::Dnat => "DNAT",
                NatClass::Both => "SNAT+DNAT",
            }),
            Key::Name(n) => f.write_str(n),
        }
    }
}

/// Masks an address to a prefix length (longer lengths keep it whole).
///
/// ```
/// use conntrack_analyze::hotspots::mask;
/// assert_eq!(mask("10.1.2.3".parse().unwrap(), 24), "10.1.2.0".parse::<std::net::IpAddr>().unwrap());
/// assert_eq!(mask("2001:db8::1".parse().unwrap(), 48), "2001:db8::".parse::<std::net::IpAddr>().unwrap());
/// ```
pub fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let p = prefix.min(32) as u32;
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let p = prefix.min(128) as u32;
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// An address as one integer: IPv4 as IPv4-mapped IPv6.
#[inline]
pub(super) fn addr_key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => 0xffff_0000_0000 | u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The inverse of [`addr_key`] (an IPv6 flow with an IPv4-mapped address,
/// which is not valid on the wire, would be shown as IPv4).
pub(super) fn addr_of(k: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(k);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// A masked address as a [`Key::Net`] with its prefix length for the
/// family: (IPv4, IPv6).
pub(super) fn net_key(k: u128, (v4, v6): (u8, u8)) -> Key {
    let addr = addr_of(k);
    let prefix = if addr.is_ipv4() { v4 } else { v6 };
    Key::Net { addr, prefix }
}

/// An address as a [`Key::Ip`].
pub(super) fn ip_key(k: u128) -> Key {
    Key::Ip(addr_of(k))
}

/// A (protocol, port) as a [`Key::Port`].
pub(super) fn port_key((proto, port): (L4Proto, u16)) -> Key {
    Key::Port { proto, port }
}

/// A (destination address, protocol, port) as a [`Key::Endpoint`].
pub(super) fn endpoint_key((addr, proto, port): (u128, L4Proto, u16)) -> Key {
    Key::Endpoint {
        proto,
        addr: addr_of(addr),
        port,
    }
}

/// A (source, destination) as a [`Key::Pair`].
pub(super) fn pair_key((src, dst): (u128, u128)) -> Key {
    Key::Pair {
        src: addr_of(src),
        dst: addr_of(dst),
    }
}
