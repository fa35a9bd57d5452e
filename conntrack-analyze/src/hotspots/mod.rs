//! Hotspots: one pass over flows (owned [`Flow`](conntrack_core::Flow)s
//! or borrowed views, anything [`FlowLike`](conntrack_core::FlowLike))
//! counting them by many keys at once, exactly or with a bounded-memory
//! top-K, plus the state distribution, remaining-timeout histograms per
//! state and UNREPLIED flows by source.
//!
//! [`LiveCounts`] keeps the per-key counts of the flows present as they
//! come, change and go (an event mirror's hooks). Both count a flow under
//! the key [`KeyKind::key_of`] gives it, so a live view and a summary of
//! the same flows agree key for key.
//!
//! ```
//! use conntrack_analyze::hotspots::{Hotspots, KeyKind, Key};
//! use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
//! let ip = |s: &str| s.parse().unwrap();
//! let flow = |sport| {
//!     let o = Tuple::new(ip("10.0.0.1"), ip("10.0.0.53"), L4Proto::UDP,
//!                        L4Tuple::Ports { src: sport, dst: 53 });
//!     let r = Tuple::new(ip("10.0.0.53"), ip("10.0.0.1"), L4Proto::UDP,
//!                        L4Tuple::Ports { src: 53, dst: sport });
//!     Flow::new(o, r, Status::CONFIRMED)
//! };
//! let mut h = Hotspots::exact();
//! for p in 40000..40010 { h.add(&flow(p)); }
//! let s = h.summary();
//! assert_eq!(s.flows, 10);
//! let by_port = s.table(KeyKind::DstPort).unwrap();
//! assert_eq!(by_port.top[0].key, Key::Port { proto: L4Proto::UDP, port: 53 });
//! assert_eq!(by_port.top[0].share, 1.0);
//! // All ten are unreplied: the source is a scan suspect candidate.
//! assert_eq!(s.unreplied_by_source.top[0].count, 10);
//! ```

// One file per concept: `key` (key kinds, key values, their names),
// `names` (address names), `tally` (counting one key kind), `histogram`
// (remaining timeouts), `summary` (what a pass reports), `rule` (which
// flows count under which key), `aggregate` (the one-pass aggregator),
// `live` (counts kept as flows come and go).
mod aggregate;
mod histogram;
mod key;
mod live;
mod names;
mod rule;
mod summary;
mod tally;

pub use aggregate::{BOUNDED_KEYS, CountMode, HotspotConfig, Hotspots, IN_FLIGHT_SECS};
pub use histogram::RemainingHistogram;
pub use key::{Key, KeyKind, NatClass, mask};
pub use live::{LiveCounts, LiveOrder, LiveRow};
pub use names::{BadCidr, NameMap};
pub(crate) use summary::share;
pub use summary::{
    DnsCounts, HotspotSummary, KeyCount, KeyTable, NatCounts, ProtoNat, Ranking, StateCount,
};
