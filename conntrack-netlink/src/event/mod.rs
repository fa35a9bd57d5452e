//! Conntrack events: a socket subscribed to ctnetlink's multicast groups,
//! each message decoded by the same zero-copy decoder as dumps, and event
//! loss (`ENOBUFS`) reported as an explicit [`Item::Lost`] instead of being
//! swallowed.
//!
//! What the kernel sends (`ctnetlink_conntrack_event`,
//! `net/netfilter/nf_conntrack_netlink.c`):
//!
//! | event | message | `nlmsg_flags` | group |
//! |---|---|---|---|
//! | NEW, RELATED | `IPCTNL_MSG_CT_NEW` | `NLM_F_CREATE \| NLM_F_EXCL` | 1 `NFNLGRP_CONNTRACK_NEW` |
//! | any other change | `IPCTNL_MSG_CT_NEW` | 0 | 2 `NFNLGRP_CONNTRACK_UPDATE` |
//! | DESTROY | `IPCTNL_MSG_CT_DELETE` | 0 | 3 `NFNLGRP_CONNTRACK_DESTROY` |
//! | expectation NEW | `IPCTNL_MSG_EXP_NEW` (subsystem 2) | `NLM_F_CREATE \| NLM_F_EXCL` | 4 |
//! | expectation DESTROY | `IPCTNL_MSG_EXP_DELETE` (subsystem 2) | 0 | 6 |
//!
//! - Every event carries both tuples, the zone, `CTA_ID`, `CTA_STATUS` and
//!   `CTA_TIMEOUT`. `CTA_MARK` comes whenever the mark is non-zero or has
//!   just changed (so an event without it means mark 0).
//! - UPDATE events carry `CTA_PROTOINFO` only when the protocol state
//!   changed (`IPCT_PROTOINFO`); an update without it leaves the state as
//!   it was.
//! - DESTROY events carry the protocol info, and the counters and
//!   start/stop timestamps when `nf_conntrack_acct` /
//!   `nf_conntrack_timestamp` are on.
//! - Linux 6.14 ("netfilter: conntrack: add conntrack event timestamp",
//!   Florian Westphal) adds `CTA_TIMESTAMP_EVENT`, the wall-clock time in
//!   nanoseconds when the (first cached) event was generated, sent when
//!   `nf_conntrack_timestamp` is on; it is [`Event::timestamp`].
//! - With `net.netfilter.nf_conntrack_events = 2` ("auto", the default
//!   of a new namespace on the 6.18 kernel checked; `nf_ct_ecache_ext_add`
//!   in `net/netfilter/nf_conntrack_ecache.c`), the event extension is
//!   only attached to entries created while *some* ctnetlink listener
//!   exists (on any namespace: the flag is global since "netfilter:
//!   conntrack: make ctnetlink_has_listener global"): entries older than
//!   that never produce UPDATE or DESTROY events (checked live: an entry
//!   created before `conntrack -E` started was deleted without an event).
//!   With 0 no entry does. [`crate::mirror::Mirror`] reads the setting
//!   ([`crate::mirror::Mirror::events_sysctl`]) and can resync
//!   periodically to cover such entries.
//!
//! When the socket's receive buffer is full, the kernel drops the message
//! and the next `recv` fails with `ENOBUFS` (`netlink_overrun`). The
//! socket stays usable, but events are gone: [`EventSocket::next`] yields
//! [`Item::Lost`] with a running count and carries on. This module never
//! sets `NETLINK_NO_ENOBUFS`, which would hide the loss.
//!
//! ```no_run
//! # fn main() -> Result<(), conntrack_netlink::Error> {
//! use conntrack_netlink::event::{EventConfig, EventSocket, Groups, Item};
//! use conntrack_netlink::Netns;
//!
//! let cfg = EventConfig::new(Groups::CONNTRACK).netns(Netns::named("blue"));
//! let mut events = EventSocket::open(&cfg)?;
//! println!("receive buffer: {} bytes", events.rcvbuf().obtained);
//! while let Some(item) = events.next()? {
//!     match item {
//!         Item::Event(e) => println!("{:?} {} {}", e.kind, e.flow.orig().src, e.flow.state()),
//!         Item::Lost { total } => eprintln!("events lost ({total} times so far): resync"),
//!         Item::Malformed(err) => eprintln!("skipping a malformed event: {err}"),
//!         Item::Expect(x) => println!("expectation {:?}", x.kind),
//!     }
//! }
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::netns::Netns;

#[cfg(feature = "tokio")]
mod asynchronous;
use crate::wire::message::{
    IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_EXP_DELETE, IPCTNL_MSG_EXP_NEW, NFNL_SUBSYS_CTNETLINK_EXP,
    NLM_F_CREATE, NLM_F_EXCL, NLMSG_MIN_TYPE,
};
use crate::wire::{DecodeError, FlowView, Message};
#[cfg(feature = "tokio")]
pub use asynchronous::{AsyncEventSocket, dump_async};
use conntrack_core::Flow;
use netlink_sys::{Socket as NlSocket, protocols::NETLINK_NETFILTER};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
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

/// How to size the socket's kernel receive buffer, where events wait until
/// they are read. Too small a buffer loses events in bursts.
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
    /// What [`RcvBuf::Auto`] asks for: 32 MiB. A ctnetlink event costs
    /// about 1 KiB of buffer (the message is ~200-300 bytes, the socket
    /// buffer accounting counts the whole skb), so this holds roughly
    /// 60,000 events of backlog (the kernel doubles the request); memory
    /// is only used while events wait.
    pub const AUTO_BYTES: usize = 32 << 20;
}

/// What the receive buffer ended up as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RcvBufReport {
    /// The size asked for (`None` for [`RcvBuf::System`]).
    pub requested: Option<usize>,
    /// What `getsockopt(SO_RCVBUF)` reports afterwards: the kernel's
    /// accounting limit, which is twice the size set.
    pub obtained: usize,
    /// Whether `SO_RCVBUFFORCE` was used (past `net.core.rmem_max`).
    pub forced: bool,
    /// `net.core.rmem_max` when it had to be read (no `CAP_NET_ADMIN`).
    pub rmem_max: Option<usize>,
}

/// How to open an [`EventSocket`].
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
    netns: Netns,
    groups: Groups,
    rcvbuf: RcvBuf,
    recv_buffer: usize,
    timeout: Option<Duration>,
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

    /// How long [`EventSocket::next`] waits before returning `Ok(None)`;
    /// `None` waits forever.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Which conntrack event a message announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new (or related) entry was confirmed.
    New,
    /// An entry changed (state, status bits, mark, helper, labels, ...).
    Update,
    /// An entry was removed (timed out, deleted, flushed).
    Destroy,
}

/// Which expectation event a message announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectKind {
    /// A new expectation.
    New,
    /// An expectation changed (no kernel up to 6.18 sends these).
    Update,
    /// An expectation was removed.
    Destroy,
}

/// One conntrack event, borrowing from the socket's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'b> {
    /// NEW, UPDATE or DESTROY.
    pub kind: EventKind,
    /// The entry as the event describes it (see the module docs for what
    /// each kind carries).
    pub flow: FlowView<'b>,
    /// `CTA_TIMESTAMP_EVENT`: when the kernel generated the event, in
    /// nanoseconds since the Unix epoch (Linux 6.14+ with
    /// `nf_conntrack_timestamp` on).
    pub timestamp: Option<u64>,
}

impl Event<'_> {
    /// An owned copy.
    pub fn to_owned_event(&self) -> OwnedEvent {
        OwnedEvent {
            kind: self.kind,
            flow: self.flow.to_owned(),
            timestamp: self.timestamp,
        }
    }
}

/// An owned conntrack event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEvent {
    /// NEW, UPDATE or DESTROY.
    pub kind: EventKind,
    /// The entry.
    pub flow: Flow,
    /// `CTA_TIMESTAMP_EVENT` (see [`Event::timestamp`]).
    pub timestamp: Option<u64>,
}

/// One expectation event. Its attributes (`CTA_EXPECT_*`) are not decoded
/// here; [`ExpectEvent::message`] gives them raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectEvent<'b> {
    /// NEW or DESTROY.
    pub kind: ExpectKind,
    /// The whole netlink message.
    pub message: Message<'b>,
}

/// What [`EventSocket::next`] yields.
// The event variant is a decoded view (~500 bytes); boxing it would cost
// an allocation per event, which is what the view exists to avoid.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'b> {
    /// A conntrack event.
    Event(Event<'b>),
    /// An expectation event.
    Expect(ExpectEvent<'b>),
    /// The kernel dropped events because the receive buffer was full
    /// (`ENOBUFS`), or a datagram did not fit the user-space buffer.
    /// `total` counts such reports since the socket was opened. The
    /// number of events lost is not known: whoever keeps state must
    /// resynchronise (dump).
    Lost {
        /// Losses reported so far, this one included.
        total: u64,
    },
    /// A message that could not be decoded; the stream goes on.
    Malformed(DecodeError),
}

/// An owned [`Item`].
#[allow(clippy::large_enum_variant)] // as for `Item`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedItem {
    /// A conntrack event.
    Event(OwnedEvent),
    /// An expectation event: its kind and address family.
    Expect {
        /// NEW or DESTROY.
        kind: ExpectKind,
        /// `nfgen_family`.
        family: u8,
    },
    /// See [`Item::Lost`].
    Lost {
        /// Losses reported so far.
        total: u64,
    },
    /// See [`Item::Malformed`].
    Malformed(DecodeError),
}

impl Item<'_> {
    /// An owned copy.
    pub fn to_owned_item(&self) -> OwnedItem {
        match self {
            Item::Event(e) => OwnedItem::Event(e.to_owned_event()),
            Item::Expect(x) => OwnedItem::Expect {
                kind: x.kind,
                family: x.message.nfgenmsg().map_or(0, |g| g.family),
            },
            Item::Lost { total } => OwnedItem::Lost { total: *total },
            Item::Malformed(e) => OwnedItem::Malformed(*e),
        }
    }
}

/// Counters of what an [`EventSocket`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Conntrack events yielded.
    pub events: u64,
    /// Expectation events yielded.
    pub expect_events: u64,
    /// Messages that failed to decode.
    pub malformed: u64,
    /// Control messages and other subsystems' messages skipped.
    pub skipped: u64,
    /// `ENOBUFS` reports (and truncated datagrams).
    pub lost: u64,
}

/// A socket subscribed to ctnetlink event groups in one network namespace.
///
/// Reading is a lending iterator: [`EventSocket::next`] returns an
/// [`Item`] that borrows the socket's single receive buffer, so decoding
/// allocates nothing; [`EventSocket::next_owned`] returns owned items.
///
/// Opening needs `CAP_NET_ADMIN` in the namespace (binding to ctnetlink
/// groups is privileged).
pub struct EventSocket {
    sock: NlSocket,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    groups: Groups,
    rcvbuf: RcvBufReport,
    stats: EventStats,
    timeout: Option<Duration>,
}

impl core::fmt::Debug for EventSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventSocket")
            .field("fd", &self.sock.as_raw_fd())
            .field("groups", &self.groups)
            .field("rcvbuf", &self.rcvbuf)
            .field("stats", &self.stats)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where the next item is, without holding a borrow of the buffer (so that
/// the receive loop can refill it).
enum Next {
    Msg { start: usize },
    Bad(DecodeError),
    Lost(u64),
    Empty,
}

impl EventSocket {
    /// Opens a socket in the configured namespace, sizes its receive
    /// buffer and joins the groups.
    ///
    /// Errors: [`Error::InvalidRequest`] for an empty group set; those of
    /// [`Netns::run`]; [`Error::Io`] for `socket`, `bind`, the socket
    /// options and `NETLINK_ADD_MEMBERSHIP` (`EPERM` without
    /// `CAP_NET_ADMIN`, see [`Error::is_permission_denied`]).
    pub fn open(config: &EventConfig) -> Result<EventSocket> {
        if config.groups.is_empty() {
            return Err(Error::InvalidRequest("no event group to subscribe to"));
        }
        let mut sock = config.netns.run(|| {
            NlSocket::new(NETLINK_NETFILTER).map_err(|e| Error::io("socket(NETLINK_NETFILTER)", e))
        })?;
        sock.bind_auto().map_err(|e| Error::io("bind", e))?;
        let rcvbuf = size_rcvbuf(&sock, config.rcvbuf)?;
        for g in config.groups.numbers() {
            sock.add_membership(g)
                .map_err(|e| Error::io("setsockopt(NETLINK_ADD_MEMBERSHIP)", e))?;
        }
        crate::sys::set_rcv_timeout(sock.as_fd(), config.timeout)
            .map_err(|e| Error::io("setsockopt(SO_RCVTIMEO)", e))?;
        Ok(EventSocket {
            sock,
            buf: vec![0; config.recv_buffer.max(16 << 10)],
            len: 0,
            pos: 0,
            groups: config.groups,
            rcvbuf,
            stats: EventStats::default(),
            timeout: config.timeout,
        })
    }

    /// The groups joined.
    pub fn groups(&self) -> Groups {
        self.groups
    }

    /// The receive buffer obtained.
    pub fn rcvbuf(&self) -> RcvBufReport {
        self.rcvbuf
    }

    /// What was read so far.
    pub fn stats(&self) -> EventStats {
        self.stats
    }

    /// How many losses were reported so far.
    pub fn lost(&self) -> u64 {
        self.stats.lost
    }

    /// Changes how long [`EventSocket::next`] waits (`None`: forever).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        crate::sys::set_rcv_timeout(self.sock.as_fd(), timeout)
            .map_err(|e| Error::io("setsockopt(SO_RCVTIMEO)", e))?;
        self.timeout = timeout;
        Ok(())
    }

    /// The next item, waiting up to the configured timeout for one;
    /// `Ok(None)` when the timeout passed without any. `Err` only for a
    /// failing system call: loss and malformed messages are items.
    ///
    /// This is a lending iterator (each item borrows the socket's buffer
    /// until the next call), so it cannot be `Iterator::next`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item<'_>>> {
        let n = self.advance(true)?;
        Ok(self.item(n))
    }

    /// The next item if one is ready now, without waiting.
    pub fn try_next(&mut self) -> Result<Option<Item<'_>>> {
        let n = self.advance(false)?;
        Ok(self.item(n))
    }

    /// [`EventSocket::next`], owned.
    pub fn next_owned(&mut self) -> Result<Option<OwnedItem>> {
        Ok(self.next()?.map(|i| i.to_owned_item()))
    }

    /// Whether a datagram read earlier still has unread messages.
    pub fn has_buffered(&self) -> bool {
        self.pos < self.len
    }

    fn item(&mut self, n: Next) -> Option<Item<'_>> {
        match n {
            Next::Empty => None,
            Next::Lost(total) => Some(Item::Lost { total }),
            Next::Bad(e) => Some(Item::Malformed(e)),
            Next::Msg { start } => {
                let item = decode(&self.buf[start..self.len], start);
                match &item {
                    Item::Event(_) => self.stats.events += 1,
                    Item::Expect(_) => self.stats.expect_events += 1,
                    Item::Malformed(_) => self.stats.malformed += 1,
                    Item::Lost { .. } => {}
                }
                Some(item)
            }
        }
    }

    /// Finds the next message worth decoding, reading datagrams as needed.
    fn advance(&mut self, block: bool) -> Result<Next> {
        loop {
            while self.pos < self.len {
                let start = self.pos;
                let m = match Message::parse(&self.buf[start..self.len]) {
                    Ok(m) => m,
                    Err(e) => {
                        // A bad header: the rest of the datagram cannot be
                        // framed.
                        self.pos = self.len;
                        self.stats.malformed += 1;
                        let mut e = DecodeError::from(e);
                        e.offset += start;
                        return Ok(Next::Bad(e));
                    }
                };
                self.pos = (start + ((m.len as usize + 3) & !3)).min(self.len);
                if is_event_message(&m) {
                    return Ok(Next::Msg { start });
                }
                self.stats.skipped += 1;
            }
            let flags = libc::MSG_TRUNC | if block { 0 } else { libc::MSG_DONTWAIT };
            let cap = self.buf.len();
            let mut slice: &mut [u8] = &mut self.buf[..];
            let n = match self.sock.recv(&mut slice, flags) {
                Ok(n) => n,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => return Ok(Next::Empty),
                    Some(libc::ENOBUFS) => {
                        self.stats.lost += 1;
                        return Ok(Next::Lost(self.stats.lost));
                    }
                    _ => return Err(Error::io("recv", e)),
                },
            };
            self.stats.datagrams += 1;
            self.stats.bytes += n as u64;
            if n > cap {
                // The datagram was cut: its events are gone.
                self.pos = 0;
                self.len = 0;
                self.stats.lost += 1;
                return Ok(Next::Lost(self.stats.lost));
            }
            self.pos = 0;
            self.len = n;
        }
    }
}

/// Decodes the message at the start of `buf` (known to frame correctly);
/// `base` is its position in the receive buffer, for error offsets.
fn decode(buf: &[u8], base: usize) -> Item<'_> {
    let m = match Message::parse(buf) {
        Ok(m) => m,
        Err(e) => {
            let mut e = DecodeError::from(e);
            e.offset += base;
            return Item::Malformed(e);
        }
    };
    if m.is_ct_flow() {
        return match FlowView::from_message(&m) {
            Ok(flow) => Item::Event(Event {
                kind: event_kind(m.msg_type(), m.flags),
                timestamp: flow.timestamp_event(),
                flow,
            }),
            Err(mut e) => {
                e.offset += base;
                Item::Malformed(e)
            }
        };
    }
    let kind = match m.msg_type() {
        IPCTNL_MSG_EXP_DELETE => ExpectKind::Destroy,
        IPCTNL_MSG_EXP_NEW if m.flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => ExpectKind::New,
        _ => ExpectKind::Update,
    };
    Item::Expect(ExpectEvent { kind, message: m })
}

/// Whether a message is a conntrack or expectation event (control
/// messages and other subsystems are skipped).
fn is_event_message(m: &Message<'_>) -> bool {
    m.ty >= NLMSG_MIN_TYPE
        && (m.is_ct_flow()
            || (m.subsys() == NFNL_SUBSYS_CTNETLINK_EXP
                && matches!(m.msg_type(), IPCTNL_MSG_EXP_NEW | IPCTNL_MSG_EXP_DELETE)))
}

/// The event a conntrack message announces from its type and flags.
pub fn event_kind(msg_type: u8, nlmsg_flags: u16) -> EventKind {
    if msg_type == IPCTNL_MSG_CT_DELETE {
        EventKind::Destroy
    } else if nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 {
        EventKind::New
    } else {
        EventKind::Update
    }
}

/// Decodes every item of one datagram as [`EventSocket`] would, calling
/// `f` for each: for captured event data, tests and benchmarks.
///
/// ```
/// use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
/// use conntrack_netlink::event::{for_each_item, EventKind, Item};
/// use conntrack_netlink::wire::{encode, message::*};
///
/// let ip = |s: &str| s.parse().unwrap();
/// let t = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::UDP,
///                    L4Tuple::Ports { src: 1000, dst: 53 });
/// let r = Tuple::new(ip("10.0.0.2"), ip("10.0.0.1"), L4Proto::UDP,
///                    L4Tuple::Ports { src: 53, dst: 1000 });
/// let flow = Flow::new(t, r, Status::CONFIRMED);
/// let mut buf = Vec::new();
/// let m = encode::begin_message(&mut buf, ct_type(IPCTNL_MSG_CT_NEW),
///                               NLM_F_CREATE | NLM_F_EXCL, 0, 2);
/// encode::encode_flow_as_kernel(&flow, &mut buf);
/// encode::finish_message(&mut buf, m);
/// let mut kinds = Vec::new();
/// for_each_item(&buf, |item| {
///     if let Item::Event(e) = item { kinds.push(e.kind) }
/// });
/// assert_eq!(kinds, [EventKind::New]);
/// ```
pub fn for_each_item(datagram: &[u8], mut f: impl FnMut(Item<'_>)) {
    let mut pos = 0;
    while pos < datagram.len() {
        let m = match Message::parse(&datagram[pos..]) {
            Ok(m) => m,
            Err(e) => {
                let mut e = DecodeError::from(e);
                e.offset += pos;
                f(Item::Malformed(e));
                return;
            }
        };
        let next = pos + ((m.len as usize + 3) & !3);
        if is_event_message(&m) {
            f(decode(&datagram[pos..], pos));
        }
        pos = next;
    }
}

/// Sizes the receive buffer of `sock` as asked.
fn size_rcvbuf(sock: &NlSocket, want: RcvBuf) -> Result<RcvBufReport> {
    let bytes = match want {
        RcvBuf::System => {
            let obtained = sock
                .get_rx_buf_sz()
                .map_err(|e| Error::io("getsockopt(SO_RCVBUF)", e))?;
            return Ok(RcvBufReport {
                obtained,
                ..Default::default()
            });
        }
        RcvBuf::Auto => RcvBuf::AUTO_BYTES,
        RcvBuf::Bytes(n) => n,
    };
    let mut report = RcvBufReport {
        requested: Some(bytes),
        ..Default::default()
    };
    match crate::sys::set_rcvbuf_force(sock.as_fd(), bytes) {
        Ok(()) => report.forced = true,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let max = read_rmem_max();
            report.rmem_max = max;
            let capped = max.map_or(bytes, |m| bytes.min(m));
            let v = libc::c_int::try_from(capped).unwrap_or(libc::c_int::MAX);
            sock.set_rx_buf_sz(v)
                .map_err(|e| Error::io("setsockopt(SO_RCVBUF)", e))?;
        }
        Err(e) => return Err(Error::io("setsockopt(SO_RCVBUFFORCE)", e)),
    }
    report.obtained = sock
        .get_rx_buf_sz()
        .map_err(|e| Error::io("getsockopt(SO_RCVBUF)", e))?;
    Ok(report)
}

/// `net.core.rmem_max` (global), `None` when unreadable.
fn read_rmem_max() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl AsFd for EventSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for EventSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode::{begin_message, encode_flow_as_kernel, finish_message};
    use crate::wire::message::{IPCTNL_MSG_CT_NEW, NLMSG_NOOP, ct_type};
    use conntrack_core::{Counters, L4Proto, L4Tuple, Status, Timestamp, Tuple};

    fn flow(port: u16) -> Flow {
        let ip = |s: &str| s.parse().unwrap();
        let t = Tuple::new(
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            L4Proto::UDP,
            L4Tuple::Ports { src: port, dst: 53 },
        );
        let r = Tuple::new(
            ip("10.0.0.2"),
            ip("10.0.0.1"),
            L4Proto::UDP,
            L4Tuple::Ports { src: 53, dst: port },
        );
        Flow::new(t, r, Status::CONFIRMED)
    }

    fn push(buf: &mut Vec<u8>, ty: u16, flags: u16, f: Option<&Flow>) -> usize {
        let start = buf.len();
        let m = begin_message(buf, ty, flags, 0, 2);
        if let Some(f) = f {
            encode_flow_as_kernel(f, buf);
        }
        finish_message(buf, m);
        start
    }

    #[test]
    fn kinds_from_type_and_flags() {
        assert_eq!(
            event_kind(IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL),
            EventKind::New
        );
        assert_eq!(event_kind(IPCTNL_MSG_CT_NEW, 0), EventKind::Update);
        assert_eq!(event_kind(IPCTNL_MSG_CT_DELETE, 0), EventKind::Destroy);
    }

    #[test]
    fn datagram_with_every_kind() {
        let mut buf = Vec::new();
        let new = ct_type(IPCTNL_MSG_CT_NEW);
        let del = ct_type(IPCTNL_MSG_CT_DELETE);
        push(&mut buf, new, NLM_F_CREATE | NLM_F_EXCL, Some(&flow(1)));
        push(&mut buf, new, 0, Some(&flow(2)));
        push(&mut buf, NLMSG_NOOP, 0, None);
        let mut d = flow(3);
        d.counters_orig = Some(Counters {
            packets: 3,
            bytes: 300,
        });
        d.timestamp = Some(Timestamp {
            start: 10,
            stop: Some(20),
        });
        push(&mut buf, del, 0, Some(&d));
        let bad = push(&mut buf, new, 0, Some(&flow(4)));
        // Corrupt CTA_TUPLE_ORIG's first nested length.
        buf[bad + 20 + 4] = 3;
        let exp = u16::from(NFNL_SUBSYS_CTNETLINK_EXP) << 8;
        push(&mut buf, exp | u16::from(IPCTNL_MSG_EXP_DELETE), 0, None);
        let mut got = Vec::new();
        for_each_item(&buf, |i| got.push(i.to_owned_item()));
        assert_eq!(got.len(), 5, "{got:?}");
        match &got[0] {
            OwnedItem::Event(e) => {
                assert_eq!(e.kind, EventKind::New);
                assert_eq!(e.flow, flow(1));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&got[1], OwnedItem::Event(e) if e.kind == EventKind::Update));
        match &got[2] {
            OwnedItem::Event(e) => {
                assert_eq!(e.kind, EventKind::Destroy);
                assert_eq!(e.flow.counters_orig.map(|c| c.bytes), Some(300));
                assert_eq!(e.flow.timestamp.and_then(|t| t.stop), Some(20));
            }
            other => panic!("{other:?}"),
        }
        match &got[3] {
            OwnedItem::Malformed(e) => assert!(e.offset >= bad, "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            got[4],
            OwnedItem::Expect {
                kind: ExpectKind::Destroy,
                family: 2
            }
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut base = Vec::new();
        push(
            &mut base,
            ct_type(IPCTNL_MSG_CT_NEW),
            NLM_F_CREATE,
            Some(&flow(9)),
        );
        for _ in 0..2000 {
            let mut b = base.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % b.len();
                b[i] = (seed >> 32) as u8;
            }
            let cut = (seed as usize >> 8) % (b.len() + 1);
            for_each_item(&b[..cut], |_| {});
            for_each_item(&b, |_| {});
        }
    }

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
