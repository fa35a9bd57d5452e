//! Which flows count under which key: the one rule that [`Hotspots`]
//! (one pass over a table) and [`LiveCounts`] (counts kept as flows come
//! and go) both apply, so that a summary and a live view of the same
//! flows never disagree.
//!
//! [`Hotspots`]: super::Hotspots
//! [`LiveCounts`]: super::LiveCounts

use super::key::{Key, KeyKind, NatClass, addr_key, endpoint_key, ip_key, mask, net_key, pair_key};
use super::names::NameMap;
use conntrack_core::{FlowLike, FlowState, L4Proto, Status, nat_of};

/// The prefix lengths of [`KeyKind::SrcNet`] and [`KeyKind::SrcNetWide`]:
/// (IPv4, IPv6).
pub(super) const SRC_NET: (u8, u8) = (24, 64);
/// See [`SRC_NET`].
pub(super) const SRC_NET_WIDE: (u8, u8) = (16, 48);

/// A flow's keys in the compact forms the counters hash: addresses as one
/// integer ([`addr_key`]), the name as an index into the [`NameMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FlowKeys {
    /// Original source address.
    pub(super) src: u128,
    /// Original destination address.
    pub(super) dst: u128,
    /// Layer 4 protocol.
    pub(super) proto: L4Proto,
    /// Original destination port; `None` for port-less protocols (ICMP,
    /// the generic tracker's), which do not count under
    /// [`KeyKind::DstPort`].
    pub(super) dport: Option<u16>,
    /// Protocol state (replied or not for state-less protocols).
    pub(super) state: FlowState,
    /// Status bits.
    pub(super) status: Status,
    /// Zone, 0 when none.
    pub(super) zone: u16,
    /// Mark, 0 when none.
    pub(super) mark: u32,
    /// Source address masked to [`SRC_NET`].
    pub(super) net: u128,
    /// Source address masked to [`SRC_NET_WIDE`].
    pub(super) net_wide: u128,
    /// How the flow is translated.
    pub(super) nat: NatClass,
    /// The name of the original source, else of the reply's source (the
    /// real destination behind DNAT), else of the original destination;
    /// `None` when none has one (then the flow does not count under
    /// [`KeyKind::Name`]).
    pub(super) name: Option<u32>,
}

impl FlowKeys {
    /// Every key of a flow.
    #[inline]
    pub(super) fn of<F: FlowLike + ?Sized>(f: &F, names: &NameMap) -> FlowKeys {
        let orig = f.orig();
        let reply = f.reply();
        let status = f.status();
        let (net, wide) = if orig.src.is_ipv4() {
            (SRC_NET.0, SRC_NET_WIDE.0)
        } else {
            (SRC_NET.1, SRC_NET_WIDE.1)
        };
        let name = if names.is_empty() {
            None
        } else {
            names
                .lookup_idx(orig.src)
                .or_else(|| names.lookup_idx(reply.src))
                .or_else(|| names.lookup_idx(orig.dst))
        };
        FlowKeys {
            src: addr_key(orig.src),
            dst: addr_key(orig.dst),
            proto: orig.proto,
            dport: orig.dst_port(),
            state: conntrack_core::flow_state(f.protoinfo().as_ref(), status),
            status,
            zone: f.zone().unwrap_or(0),
            mark: f.mark().unwrap_or(0),
            net: addr_key(mask(orig.src, net)),
            net_wide: addr_key(mask(orig.src, wide)),
            nat: NatClass::of(nat_of(&orig, &reply, status)),
            name,
        }
    }

    /// The destination endpoint, port 0 for port-less protocols.
    #[inline]
    pub(super) fn dest(&self) -> (u128, L4Proto, u16) {
        (self.dst, self.proto, self.dport.unwrap_or(0))
    }

    /// The key of one kind, `None` when the flow does not count under it.
    pub(super) fn key(&self, kind: KeyKind, names: &NameMap) -> Option<Key> {
        Some(match kind {
            KeyKind::SrcIp => ip_key(self.src),
            KeyKind::DstIp => ip_key(self.dst),
            KeyKind::DstPort => Key::Port {
                proto: self.proto,
                port: self.dport?,
            },
            KeyKind::Destination => endpoint_key(self.dest()),
            KeyKind::Proto => Key::Proto(self.proto),
            KeyKind::State => Key::State {
                proto: self.proto,
                state: self.state,
            },
            KeyKind::Zone => Key::Zone(self.zone),
            KeyKind::Mark => Key::Mark(self.mark),
            KeyKind::SrcNet => net_key(self.net, SRC_NET),
            KeyKind::SrcNetWide => net_key(self.net_wide, SRC_NET_WIDE),
            KeyKind::Pair => pair_key((self.src, self.dst)),
            KeyKind::Nat => Key::Nat(self.nat),
            KeyKind::Name => Key::Name(names.name_of(self.name?)?.to_owned()),
        })
    }
}

impl KeyKind {
    /// The key a flow counts under for this kind, or `None` when it does
    /// not count under this kind at all: [`KeyKind::DstPort`] for flows of
    /// port-less protocols (ICMP, ICMPv6, the generic tracker's), which
    /// [`KeyKind::Destination`] lists with port 0; [`KeyKind::Name`] for
    /// flows none of whose addresses has a name in `names`. This is the
    /// rule [`Hotspots`](super::Hotspots) and
    /// [`LiveCounts`](super::LiveCounts) count by.
    ///
    /// ```
    /// use conntrack_analyze::hotspots::{Key, KeyKind, NameMap};
    /// use conntrack_core::testkit::{flow, icmp_echo, tcp};
    /// use conntrack_core::L4Proto;
    /// let names = NameMap::new();
    /// let ping = flow(icmp_echo("10.0.0.1", "10.0.0.2", 7));
    /// assert_eq!(KeyKind::DstPort.key_of(&ping, &names), None);
    /// assert_eq!(
    ///     KeyKind::Destination.key_of(&ping, &names).unwrap().to_string(),
    ///     "icmp 10.0.0.2:0"
    /// );
    /// let web = flow(tcp("10.0.0.1", 40000, "10.0.0.2", 443));
    /// assert_eq!(
    ///     KeyKind::DstPort.key_of(&web, &names),
    ///     Some(Key::Port { proto: L4Proto::TCP, port: 443 })
    /// );
    /// assert_eq!(KeyKind::Name.key_of(&web, &names), None);
    /// ```
    pub fn key_of<F: FlowLike + ?Sized>(self, f: &F, names: &NameMap) -> Option<Key> {
        FlowKeys::of(f, names).key(self, names)
    }
}
