//! Layer 3 family and layer 4 protocol numbers.

use crate::macros::kernel_enum;

kernel_enum! {
    /// An address family as carried in `nfgenmsg.nfgen_family` (`AF_*`).
    ///
    /// ```
    /// use conntrack_core::L3Family;
    /// assert_eq!(L3Family::INET.to_string(), "ipv4");
    /// assert_eq!(L3Family::from_name("ipv6"), Some(L3Family::INET6));
    /// assert_eq!(L3Family(99).to_string(), "99");
    /// ```
    pub struct L3Family(u8) {
        /// `AF_UNSPEC`: both families (dump requests only).
        UNSPEC = 0 => "unspec",
        /// `AF_INET`.
        INET = 2 => "ipv4",
        /// `AF_BRIDGE` (bridge-family conntrack).
        BRIDGE = 7 => "bridge",
        /// `AF_INET6`.
        INET6 = 10 => "ipv6",
    }
}

kernel_enum! {
    /// An IP protocol number (`IPPROTO_*`), as the kernel keys conntrack's
    /// layer 4 trackers. Names are those the `conntrack` CLI prints.
    ///
    /// ```
    /// use conntrack_core::L4Proto;
    /// assert_eq!(L4Proto::TCP.0, 6);
    /// assert_eq!(L4Proto::from_name("icmpv6"), Some(L4Proto::ICMPV6));
    /// assert_eq!(L4Proto::from_name("253"), Some(L4Proto(253)));
    /// ```
    pub struct L4Proto(u8) {
        /// ICMP.
        ICMP = 1 => "icmp",
        /// IGMP (tracked by the generic tracker).
        IGMP = 2 => "igmp",
        /// TCP.
        TCP = 6 => "tcp",
        /// UDP.
        UDP = 17 => "udp",
        /// DCCP (its tracker was removed from recent kernels).
        DCCP = 33 => "dccp",
        /// GRE (keys are carried in the port fields).
        GRE = 47 => "gre",
        /// ESP (generic tracker).
        ESP = 50 => "esp",
        /// ICMPv6.
        ICMPV6 = 58 => "icmpv6",
        /// SCTP.
        SCTP = 132 => "sctp",
        /// UDP-Lite.
        UDPLITE = 136 => "udplite",
    }
}

impl L4Proto {
    /// Whether the kernel tracks this protocol by port-like 16-bit keys in
    /// the tuple (`CTA_PROTO_SRC_PORT`/`CTA_PROTO_DST_PORT`).
    pub const fn has_ports(self) -> bool {
        matches!(self.0, 6 | 17 | 33 | 47 | 132 | 136)
    }

    /// Whether the tuple carries ICMP or ICMPv6 type, code and id.
    pub const fn is_icmp(self) -> bool {
        matches!(self.0, 1 | 58)
    }
}
