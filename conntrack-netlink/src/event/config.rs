//! What an [`EventSocket`](super::EventSocket) subscribes to and how its
//! receive buffer is sized.

use crate::netns::Netns;
use std::time::Duration;

/// A set of ctnetlink multicast groups (`enum nfnetlink_groups`,
/// `include/uapi/linux/netfilter/nfnetlink.h`). Bit `n - 1` stands for
/// group `n`.
///
/// ```
/// use conntrack_netlink::event::Groups;
/// let g = Groups::NEW | Groups::DESTROY;
/// assert!(g.contains(Groups::NEW) && !g.contains(Groups::UPDATE));
/// assert_eq!(g.numbers().collect::<Vec<_>>(), vec![1, 3]);
/// assert_eq!(Groups::CONNTRACK.numbers().count(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Groups(u32);

impl Groups {
    /// `NFNLGRP_CONNTRACK_NEW` (1): new entries (and related ones).
    pub const NEW: Groups = Groups(1 << 0);
    /// `NFNLGRP_CONNTRACK_UPDATE` (2): changes of state, status, mark, ...
    pub const UPDATE: Groups = Groups(1 << 1);
    /// `NFNLGRP_CONNTRACK_DESTROY` (3): removed entries.
    pub const DESTROY: Groups = Groups(1 << 2);
    /// `NFNLGRP_CONNTRACK_EXP_NEW` (4): new expectations.
    pub const EXP_NEW: Groups = Groups(1 << 3);
    /// `NFNLGRP_CONNTRACK_EXP_UPDATE` (5).
    pub const EXP_UPDATE: Groups = Groups(1 << 4);
    /// `NFNLGRP_CONNTRACK_EXP_DESTROY` (6): removed expectations.
    pub const EXP_DESTROY: Groups = Groups(1 << 5);
    /// The three conntrack groups.
    pub const CONNTRACK: Groups = Groups(0b111);
    /// The three expectation groups.
    pub const EXPECT: Groups = Groups(0b111_000);
    /// All six groups.
    pub const ALL: Groups = Groups(0b111_111);

    /// No group.
    pub const fn empty() -> Groups {
        Groups(0)
    }

    /// Whether every group of `other` is in `self`.
    pub const fn contains(self, other: Groups) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 & Self::ALL.0 == 0
    }

    /// The group numbers, ascending (what `NETLINK_ADD_MEMBERSHIP` takes).
    pub fn numbers(self) -> impl Iterator<Item = u32> {
        (0..6)
            .filter(move |b| self.0 & (1 << b) != 0)
            .map(|b| b + 1)
    }
}

impl core::ops::BitOr for Groups {
    type Output = Groups;
    fn bitor(self, rhs: Groups) -> Groups {
        Groups(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for Groups {
    fn bitor_assign(&mut self, rhs: Groups) {
        self.0 |= rhs.0;
    }
}

/// How to size an event socket's kernel receive buffer, where events wait
/// until they are read. Too small a buffer loses events in bursts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RcvBuf {
    /// Leave the system default (`net.core.rmem_default`).
    System,
    /// [`RcvBuf::AUTO_BYTES`] with `SO_RCVBUFFORCE` when the process has
    /// `CAP_NET_ADMIN`, else as much of it as `net.core.rmem_max` allows.
    Auto,
    /// This many bytes, as [`RcvBuf::Auto`] does (forced when permitted,
    /// else capped at `net.core.rmem_max`). The kernel doubles the value
    /// for its bookkeeping and enforces a small minimum.
    Bytes(usize),
}

impl RcvBuf {
    /// The size to ask for, `None` for the system default.
    pub const fn bytes(self) -> Option<usize> {
        match self {
            RcvBuf::System => None,
            RcvBuf::Auto => Some(Self::AUTO_BYTES),
            RcvBuf::Bytes(n) => Some(n),
        }
    }

    /// What [`RcvBuf::Auto`] asks for: 32 MiB. A ctnetlink event costs
    /// about 1 KiB of buffer (the message is ~200-300 bytes, the socket
    /// buffer accounting counts the whole skb), so this holds roughly
    /// 60,000 events of backlog (the kernel doubles the request); memory
    /// is only used while events wait.
    pub const AUTO_BYTES: usize = 32 << 20;
}

/// How to open an [`EventSocket`](super::EventSocket).
///
/// ```
/// use conntrack_netlink::event::{EventConfig, Groups, RcvBuf};
/// use conntrack_netlink::Netns;
/// use std::time::Duration;
/// let cfg = EventConfig::new(Groups::NEW | Groups::DESTROY)
///     .netns(Netns::named("blue"))
///     .rcvbuf(RcvBuf::Bytes(1 << 20))
///     .timeout(Some(Duration::from_millis(200)));
/// assert_eq!(cfg.groups(), Groups::NEW | Groups::DESTROY);
/// ```
#[derive(Debug, Clone)]
pub struct EventConfig {
    pub(super) netns: Netns,
    pub(super) groups: Groups,
    pub(super) rcvbuf: RcvBuf,
    pub(super) recv_buffer: usize,
    pub(super) timeout: Option<Duration>,
}

impl Default for EventConfig {
    /// The conntrack groups, current namespace, [`RcvBuf::Auto`], no
    /// timeout.
    fn default() -> Self {
        EventConfig::new(Groups::CONNTRACK)
    }
}

impl EventConfig {
    /// The user-space buffer one datagram is read into: 64 KiB (an event
    /// is one message of a few hundred bytes per datagram).
    pub const DEFAULT_RECV_BUFFER: usize = 64 << 10;

    /// Subscribe to `groups` in the current namespace, with an automatic
    /// receive buffer and blocking reads.
    pub fn new(groups: Groups) -> Self {
        EventConfig {
            netns: Netns::Current,
            groups,
            rcvbuf: RcvBuf::Auto,
            recv_buffer: Self::DEFAULT_RECV_BUFFER,
            timeout: None,
        }
    }

    /// The namespace whose events to receive.
    pub fn netns(mut self, netns: Netns) -> Self {
        self.netns = netns;
        self
    }

    /// The groups subscribed to.
    pub fn groups(&self) -> Groups {
        self.groups
    }

    /// The kernel receive buffer.
    pub fn rcvbuf(mut self, rcvbuf: RcvBuf) -> Self {
        self.rcvbuf = rcvbuf;
        self
    }

    /// The user-space buffer (at least 16 KiB).
    pub fn recv_buffer(mut self, bytes: usize) -> Self {
        self.recv_buffer = bytes.max(16 << 10);
        self
    }

    /// How long [`EventSocket::next`](super::EventSocket::next) waits before returning `Ok(None)`;
    /// `None` waits forever.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        assert!(Groups::empty().is_empty());
        assert_eq!(
            Groups::ALL.numbers().collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        assert_eq!(Groups::EXPECT.numbers().collect::<Vec<_>>(), [4, 5, 6]);
        let mut g = Groups::UPDATE;
        g |= Groups::EXP_NEW;
        assert_eq!(g.numbers().collect::<Vec<_>>(), [2, 4]);
    }
}
