//! Conntrack tuples: the addresses, protocol and ports (or ICMP fields)
//! that identify one direction of a flow (`CTA_TUPLE_*`).

use crate::proto::{L3Family, L4Proto};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The layer 4 part of a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum L4Tuple {
    /// No layer 4 fields (protocols handled by the generic tracker).
    None,
    /// Ports: TCP, UDP, UDP-Lite, SCTP, DCCP; GRE keys use the same fields.
    Ports {
        /// Source port (or GRE key).
        src: u16,
        /// Destination port (or GRE key).
        dst: u16,
    },
    /// ICMP or ICMPv6 type, code and identifier.
    Icmp {
        /// ICMP type.
        #[serde(rename = "type")]
        kind: u8,
        /// ICMP code.
        code: u8,
        /// Echo identifier.
        id: u16,
    },
}

/// One direction of a flow.
///
/// ```
/// use conntrack_core::{L4Proto, L4Tuple, Tuple};
/// let t = Tuple::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(),
///                    L4Proto::TCP, L4Tuple::Ports { src: 40000, dst: 443 });
/// assert_eq!(t.dst_port(), Some(443));
/// assert_eq!(t.family().to_string(), "ipv4");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Layer 4 protocol number.
    pub proto: L4Proto,
    /// Ports or ICMP fields.
    pub l4: L4Tuple,
    /// Direction-specific zone (`CTA_TUPLE_ZONE`), when the kernel sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<u16>,
}

impl Tuple {
    /// A tuple without a direction zone.
    pub fn new(src: IpAddr, dst: IpAddr, proto: L4Proto, l4: L4Tuple) -> Self {
        Tuple {
            src,
            dst,
            proto,
            l4,
            zone: None,
        }
    }

    /// The address family of the source address.
    pub fn family(&self) -> L3Family {
        match self.src {
            IpAddr::V4(_) => L3Family::INET,
            IpAddr::V6(_) => L3Family::INET6,
        }
    }

    /// Source port (or GRE key) when the protocol has ports.
    pub fn src_port(&self) -> Option<u16> {
        match self.l4 {
            L4Tuple::Ports { src, .. } => Some(src),
            _ => None,
        }
    }

    /// Destination port (or GRE key) when the protocol has ports.
    pub fn dst_port(&self) -> Option<u16> {
        match self.l4 {
            L4Tuple::Ports { dst, .. } => Some(dst),
            _ => None,
        }
    }

    /// The source endpoint: address and port (ICMP: the echo id).
    pub fn src_endpoint(&self) -> Endpoint {
        Endpoint {
            addr: self.src,
            port: self.l4_src_key(),
        }
    }

    /// The destination endpoint: address and port (ICMP: the echo id).
    pub fn dst_endpoint(&self) -> Endpoint {
        Endpoint {
            addr: self.dst,
            port: self.l4_dst_key(),
        }
    }

    fn l4_src_key(&self) -> u16 {
        match self.l4 {
            L4Tuple::Ports { src, .. } => src,
            L4Tuple::Icmp { id, .. } => id,
            L4Tuple::None => 0,
        }
    }

    fn l4_dst_key(&self) -> u16 {
        match self.l4 {
            L4Tuple::Ports { dst, .. } => dst,
            L4Tuple::Icmp { id, .. } => id,
            L4Tuple::None => 0,
        }
    }
}

/// An address and a port-like key (port, GRE key or ICMP id; 0 when the
/// protocol has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// The address.
    pub addr: IpAddr,
    /// The port, GRE key or ICMP id.
    pub port: u16,
}
