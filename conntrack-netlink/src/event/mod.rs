//! Conntrack events: a socket subscribed to ctnetlink's multicast groups,
//! each message decoded by the same zero-copy decoder as dumps, and event
//! loss (`ENOBUFS`) reported as an explicit [`Item::Lost`] instead of being
//! swallowed.
//!
//! Which message each event is, and its decoding, are the wire layer's
//! ([`crate::wire::decode_event`]); this module has the subscription
//! (`config.rs`: [`Groups`], [`EventConfig`], [`RcvBuf`]), the stream's
//! items (`item.rs`: [`Item`] with events, loss and malformed messages)
//! and the socket (`socket.rs`: [`EventSocket`]). What the events carry:
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
//!         // Items a later release adds.
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```

mod config;
mod item;
mod socket;

#[cfg(feature = "tokio")]
mod asynchronous;

pub use crate::socket::RcvBufReport;
#[cfg(feature = "tokio")]
pub use asynchronous::{AsyncEventSocket, dump_async};
pub use config::{EventConfig, Groups, RcvBuf};
pub use item::{Item, OwnedItem, for_each_item};
pub use socket::{EventSocket, EventStats};

/// The event types are the wire layer's, re-exported here where event
/// users look for them.
pub use crate::wire::{Event, EventKind, ExpectEvent, ExpectKind, OwnedEvent};
