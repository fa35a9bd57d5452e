//! [`Mirror`]: an in-memory copy of one namespace's conntrack table, kept
//! current by events and repaired by dumps.
//!
//! The order that makes it correct: subscribe to the NEW, UPDATE and
//! DESTROY groups first, then dump, then apply the events that queued up
//! meanwhile. Every change after the subscription is in the socket, in
//! order, so applying them after the dump converges on the kernel's table
//! (an event older than the dumped entry only rewinds it until the next
//! event for the same entry, which is already queued).
//!
//! When events are lost (`ENOBUFS`, an [`Item::Lost`]) that argument
//! breaks, so the mirror resyncs: it opens a **new** event socket (the old
//! one may still hold events from before the loss; applying them after the
//! dump could resurrect entries whose DESTROY was lost), dumps, and
//! reconciles in place: entries the dump has are inserted or updated,
//! entries it lacks are removed, and the [`ResyncReport`] says how many
//! of each. [`Mirror::resync`] does the same on demand.
//!
//! Entries are keyed by the original tuple and the zone, and stored
//! compactly: a 16-byte key for IPv4 (40 bytes for IPv6) and a 48-byte
//! [`Entry`] (status, protocol state, mark, expiry, counters), in two
//! `HashMap`s; the reply tuple is stored separately only when it is not
//! the inverse of the original one (NAT). A million IPv4 entries take
//! about 136 MiB (see `BENCHMARKS.md`).
//!
//! What is compared when reconciling: the protocol state, the status bits,
//! the mark and the reply tuple. The timeout and the counters change
//! without events (every packet refreshes them), so a resync refreshes
//! them without counting them as differences.
//!
//! Entries that never send events: with `net.netfilter.nf_conntrack_events`
//! at 2 ("auto", the default) entries created while no ctnetlink event
//! listener existed have no event extension, so their updates and removal
//! are never reported (see [`crate::event`]); with 0 no entry sends events.
//! "No listener" is judged host-wide: the kernel's flag
//! (`nf_ctnetlink_has_listener`, `include/linux/netfilter.h`) is global
//! because of `NETLINK_LISTEN_ALL_NSID`, so whether a namespace's old
//! entries are silent depends on listeners in other namespaces too. Such
//! entries are found by the initial dump and would stay in the mirror after
//! they are gone. [`Mirror::events_sysctl`] tells which setting the
//! namespace has. By default ([`ResyncPeriod::Auto`]) the mirror therefore
//! resyncs periodically when the setting is not 1: every
//! [`ResyncPeriod::AUTO_BASE`] with 2 (only entries older than the listener
//! are silent, and they die out), every [`ResyncPeriod::AUTO_NO_EVENTS`]
//! with 0 or an unreadable setting; a periodic resync that finds nothing
//! doubles the period (up to [`ResyncPeriod::AUTO_MAX`]) and one that finds
//! differences resets it. A resync of a million entries costs one dump, a
//! few CPU-seconds here. [`MirrorConfig::resync_every`] sets a fixed
//! period or none; setting the sysctl to 1 before the entries are created
//! makes periodic resyncs unnecessary.
//!
//! [`MirrorHook`] is told about every insert, change and removal, so that
//! aggregates (hotspot counts in `conntrack-analyze`) follow the table
//! incrementally; [`Mirror::iter`] walks the table cheaply
//! ([`EntryRef`] implements [`FlowLike`](conntrack_core::FlowLike)).
//!
//! ```no_run
//! # fn main() -> Result<(), conntrack_netlink::Error> {
//! use conntrack_netlink::mirror::{Mirror, MirrorConfig};
//! use conntrack_netlink::Netns;
//! use std::time::Duration;
//!
//! let mut m = Mirror::open(&MirrorConfig::new(Netns::named("blue")))?;
//! loop {
//!     let p = m.poll(Some(Duration::from_secs(1)))?;
//!     if let Some(r) = p.last_resync {
//!         eprintln!("resynced after loss: {} added, {} removed, {} changed", r.added, r.removed, r.changed);
//!     }
//!     println!("{} entries", m.len());
//! #   break;
//! }
//! # Ok(()) }
//! ```
//!
//! [`Item::Lost`]: crate::event::Item::Lost

mod config;
mod entry;
mod key;
mod table;

pub use config::{MirrorConfig, ResyncPeriod};
pub use entry::{Entry, EntryRef};
pub use table::{Applied, MirrorHook, Table, TableDiff};

use crate::dump::DumpPolicy;
use crate::error::Result;
use crate::event::{EventConfig, EventKind, EventSocket, Groups, Item};
use crate::netns::Netns;
use crate::ops::{Conntrack, DumpRequest};
use conntrack_core::{L3Family, Tuple};
use std::time::{Duration, Instant};
use table::Upsert;

/// Why a resync ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResyncReason {
    /// The first dump when the mirror opened.
    Initial,
    /// Events were lost.
    Loss,
    /// [`Mirror::resync`] was called.
    Requested,
    /// [`MirrorConfig::resync_every`] was due.
    Periodic,
}

/// What a resync found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResyncReport {
    /// Why it ran.
    pub reason: ResyncReason,
    /// Entries the dump had and the mirror lacked.
    pub added: u64,
    /// Entries the mirror had and the dump lacked.
    pub removed: u64,
    /// Entries whose state, status, mark or reply tuple differed.
    pub changed: u64,
    /// Entries after the resync.
    pub entries: u64,
    /// Flows in the dump that failed to decode (skipped; their entries
    /// are removed from the mirror, as for a missing entry).
    pub malformed: u64,
    /// Whether the kernel flagged the dump as interrupted
    /// (`NLM_F_DUMP_INTR`); the mirror then stays [`Mirror::is_stale`].
    pub interrupted: bool,
    /// Wall time of the dump and reconciliation.
    pub took: Duration,
}

impl ResyncReport {
    /// Entries that differed in any way.
    pub fn differed(&self) -> u64 {
        self.added + self.removed + self.changed
    }
}

/// What one [`Mirror::poll`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Poll {
    /// Events applied.
    pub applied: u64,
    /// Loss reports seen.
    pub lost: u64,
    /// Malformed events skipped.
    pub malformed: u64,
    /// Resyncs done.
    pub resyncs: u64,
    /// The last resync's report.
    pub last_resync: Option<ResyncReport>,
}

/// Running totals of a [`Mirror`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorStats {
    /// Events applied.
    pub events: u64,
    /// NEW events applied.
    pub new: u64,
    /// UPDATE events applied.
    pub updates: u64,
    /// DESTROY events applied.
    pub destroys: u64,
    /// Loss reports.
    pub lost: u64,
    /// Malformed events skipped.
    pub malformed: u64,
    /// Resyncs, the initial dump included.
    pub resyncs: u64,
    /// Entries found different by resyncs after the initial one.
    pub resync_differed: u64,
}

/// An in-memory copy of one namespace's conntrack table; see the module
/// documentation.
#[derive(Debug)]
pub struct Mirror<H: MirrorHook = ()> {
    cfg: MirrorConfig,
    events: EventSocket,
    ct: Conntrack,
    table: Table,
    hook: H,
    generation: bool,
    stale: bool,
    stats: MirrorStats,
    wait: Option<Option<Duration>>,
    last_sync: Instant,
    events_sysctl: Option<u8>,
    resync_period: Option<Duration>,
}

impl Mirror<()> {
    /// Subscribes, dumps and returns a current mirror.
    pub fn open(cfg: &MirrorConfig) -> Result<Mirror<()>> {
        Mirror::with_hook(cfg, ())
    }
}

impl<H: MirrorHook> Mirror<H> {
    /// [`Mirror::open`] with a hook (told about the initial entries too).
    pub fn with_hook(cfg: &MirrorConfig, hook: H) -> Result<Mirror<H>> {
        let events = EventSocket::open(&event_config(cfg))?;
        let ct = Conntrack::open_in(&cfg.netns)?;
        let mut m = Mirror {
            cfg: cfg.clone(),
            events,
            ct,
            table: Table::new(),
            hook,
            generation: false,
            stale: true,
            stats: MirrorStats::default(),
            wait: None,
            last_sync: Instant::now(),
            events_sysctl: None,
            resync_period: None,
        };
        m.events_sysctl = read_events_sysctl(&cfg.netns);
        m.resync_period = cfg.resync_every.initial(m.events_sysctl);
        m.sync(ResyncReason::Initial, false)?;
        Ok(m)
    }

    /// The table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The entry with this original tuple and zone (0 for none).
    pub fn get(&self, orig: &Tuple, zone: u16) -> Option<EntryRef<'_>> {
        self.table.get(orig, zone)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> + '_ {
        self.table.iter()
    }

    /// The hook.
    pub fn hook(&self) -> &H {
        &self.hook
    }

    /// The hook, mutably.
    pub fn hook_mut(&mut self) -> &mut H {
        &mut self.hook
    }

    /// Running totals.
    pub fn stats(&self) -> MirrorStats {
        self.stats
    }

    /// The event socket (its receive buffer report and counters).
    pub fn events(&self) -> &EventSocket {
        &self.events
    }

    /// The namespace's `net.netfilter.nf_conntrack_events` when the mirror
    /// opened (0 off, 1 on, 2 auto), `None` if it could not be read.
    /// Anything but 1 means some entries may never send events; see the
    /// module documentation.
    pub fn events_sysctl(&self) -> Option<u8> {
        self.events_sysctl
    }

    /// The current period of resyncs without loss (`None`: none are
    /// scheduled); see [`ResyncPeriod`].
    pub fn resync_period(&self) -> Option<Duration> {
        self.resync_period
    }

    /// Whether events were lost (or the last dump was interrupted) and no
    /// resync has repaired it yet.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Applies the events that are ready, waiting up to `wait` for the
    /// first one (`None`: wait until one comes; `Some(ZERO)`: do not
    /// wait). Resyncs on loss unless configured not to.
    pub fn poll(&mut self, wait: Option<Duration>) -> Result<Poll> {
        let mut p = Poll::default();
        let mut first = true;
        let mut lost_now = false;
        while (p.applied + p.malformed) < self.cfg.max_batch as u64 {
            let block = first && wait != Some(Duration::ZERO);
            if block && self.wait != Some(wait) {
                self.events.set_timeout(wait)?;
                self.wait = Some(wait);
            }
            let item = if block {
                self.events.next()?
            } else {
                self.events.try_next()?
            };
            first = false;
            let Some(item) = item else { break };
            match item {
                Item::Event(e) => {
                    p.applied += 1;
                    self.stats.events += 1;
                    match e.kind {
                        EventKind::New => self.stats.new += 1,
                        EventKind::Update => self.stats.updates += 1,
                        EventKind::Destroy => self.stats.destroys += 1,
                    }
                    self.table.apply_with_hook(&e, &mut self.hook);
                }
                Item::Lost { .. } => {
                    p.lost += 1;
                    self.stats.lost += 1;
                    self.stale = true;
                    lost_now = true;
                    if self.cfg.resync_on_loss {
                        break;
                    }
                }
                Item::Malformed(_) => {
                    p.malformed += 1;
                    self.stats.malformed += 1;
                }
                Item::Expect(_) => {}
            }
        }
        if lost_now && self.cfg.resync_on_loss {
            let r = self.sync(ResyncReason::Loss, true)?;
            p.resyncs += 1;
            p.last_resync = Some(r);
        } else if let Some(every) = self.resync_period
            && self.last_sync.elapsed() >= every
        {
            let r = self.sync(ResyncReason::Periodic, true)?;
            self.resync_period = Some(self.cfg.resync_every.next(
                every,
                self.events_sysctl,
                r.differed(),
            ));
            p.resyncs += 1;
            p.last_resync = Some(r);
        }
        Ok(p)
    }

    /// Resyncs now: a fresh event socket, a dump, and reconciliation.
    pub fn resync(&mut self) -> Result<ResyncReport> {
        self.sync(ResyncReason::Requested, true)
    }

    fn sync(&mut self, reason: ResyncReason, new_socket: bool) -> Result<ResyncReport> {
        let t0 = Instant::now();
        if new_socket {
            // Subscribe anew before dumping; the old socket's queue may
            // hold events older than lost ones. Open first, then drop the
            // old socket, so that the namespace never lacks a listener
            // (with nf_conntrack_events=2 entries created without one
            // never send events).
            let fresh = EventSocket::open(&event_config(&self.cfg))?;
            self.events = fresh;
            self.wait = None;
        }
        self.generation = !self.generation;
        let seen = self.generation;
        let now = self.table.now();
        let (mut added, mut changed, mut malformed) = (0u64, 0u64, 0u64);
        let table = &mut self.table;
        let hook = &mut self.hook;
        let req = DumpRequest::table(L3Family::UNSPEC).policy(DumpPolicy::Accept);
        let summary = self
            .ct
            .for_each(&req, |f| match table.upsert(f, now, Some(seen), hook) {
                Upsert::Inserted => added += 1,
                Upsert::Changed => changed += 1,
                Upsert::Same => {}
            })?;
        malformed += summary.malformed;
        let removed = self.table.sweep(seen, now, &mut self.hook);
        self.stale = summary.interrupted;
        self.stats.resyncs += 1;
        self.last_sync = Instant::now();
        let r = ResyncReport {
            reason,
            added,
            removed,
            changed,
            entries: self.table.len() as u64,
            malformed,
            interrupted: summary.interrupted,
            took: t0.elapsed(),
        };
        if reason != ResyncReason::Initial {
            self.stats.resync_differed += r.differed();
        }
        Ok(r)
    }
}

/// `net.netfilter.nf_conntrack_events` of `netns` (sysctl files answer
/// for the namespace of the thread that opens them).
fn read_events_sysctl(netns: &Netns) -> Option<u8> {
    netns
        .run(|| {
            Ok(
                std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_events")
                    .ok()
                    .and_then(|s| s.trim().parse().ok()),
            )
        })
        .ok()
        .flatten()
}

fn event_config(cfg: &MirrorConfig) -> EventConfig {
    EventConfig::new(Groups::CONNTRACK)
        .netns(cfg.netns.clone())
        .rcvbuf(cfg.rcvbuf)
}
