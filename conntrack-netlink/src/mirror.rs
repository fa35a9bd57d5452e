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
//! ([`EntryRef`] implements [`FlowLike`]).
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

use crate::dump::DumpPolicy;
use crate::error::Result;
use crate::event::{Event, EventConfig, EventKind, EventSocket, Groups, Item, RcvBuf};
use crate::netns::Netns;
use crate::ops::{Conntrack, DumpRequest};
use crate::wire::FlowView;
use conntrack_core::{
    Counters, DccpInfo, DccpState, FlowLike, FlowState, L3Family, L4Proto, L4Tuple, ProtoInfo,
    SctpInfo, SctpState, Status, TcpInfo, TcpState, Tuple,
};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------
// Compact representation
// ---------------------------------------------------------------------

const L4_NONE: u8 = 0;
const L4_PORTS: u8 = 1;
const L4_ICMP: u8 = 2;

fn l4_parts(l4: L4Tuple) -> (u8, u16, u16) {
    match l4 {
        L4Tuple::None => (L4_NONE, 0, 0),
        L4Tuple::Ports { src, dst } => (L4_PORTS, src, dst),
        L4Tuple::Icmp { kind, code, id } => (L4_ICMP, id, u16::from_be_bytes([kind, code])),
    }
}

fn l4_from(kind: u8, a: u16, b: u16) -> L4Tuple {
    match kind {
        L4_PORTS => L4Tuple::Ports { src: a, dst: b },
        L4_ICMP => {
            let [k, c] = b.to_be_bytes();
            L4Tuple::Icmp {
                kind: k,
                code: c,
                id: a,
            }
        }
        _ => L4Tuple::None,
    }
}

/// A compact key: original tuple and zone (direction zones are dropped).
trait CompactKey: Copy + Eq + Hash {
    fn from_tuple(t: &Tuple, zone: u16) -> Option<Self>;
    fn tuple(&self) -> Tuple;
    fn zone(&self) -> u16;
}

/// IPv4 key: 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct V4Key {
    src: u32,
    dst: u32,
    a: u16,
    b: u16,
    zone: u16,
    proto: u8,
    l4: u8,
}

/// IPv6 key: 40 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct V6Key {
    src: [u8; 16],
    dst: [u8; 16],
    a: u16,
    b: u16,
    zone: u16,
    proto: u8,
    l4: u8,
}

impl CompactKey for V4Key {
    fn from_tuple(t: &Tuple, zone: u16) -> Option<Self> {
        let (IpAddr::V4(s), IpAddr::V4(d)) = (t.src, t.dst) else {
            return None;
        };
        let (l4, a, b) = l4_parts(t.l4);
        Some(V4Key {
            src: u32::from(s),
            dst: u32::from(d),
            a,
            b,
            zone,
            proto: t.proto.0,
            l4,
        })
    }
    fn tuple(&self) -> Tuple {
        Tuple::new(
            IpAddr::V4(Ipv4Addr::from(self.src)),
            IpAddr::V4(Ipv4Addr::from(self.dst)),
            L4Proto(self.proto),
            l4_from(self.l4, self.a, self.b),
        )
    }
    fn zone(&self) -> u16 {
        self.zone
    }
}

impl CompactKey for V6Key {
    fn from_tuple(t: &Tuple, zone: u16) -> Option<Self> {
        let v6 = |a: IpAddr| match a {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        let (l4, a, b) = l4_parts(t.l4);
        Some(V6Key {
            src: v6(t.src),
            dst: v6(t.dst),
            a,
            b,
            zone,
            proto: t.proto.0,
            l4,
        })
    }
    fn tuple(&self) -> Tuple {
        Tuple::new(
            IpAddr::V6(Ipv6Addr::from(self.src)),
            IpAddr::V6(Ipv6Addr::from(self.dst)),
            L4Proto(self.proto),
            l4_from(self.l4, self.a, self.b),
        )
    }
    fn zone(&self) -> u16 {
        self.zone
    }
}

/// The reply tuple the kernel computes for an untranslated flow: the
/// addresses and ports swapped (ICMP: the echo/info reply type). When the
/// real reply differs (NAT, or an ICMP type this does not know), the
/// mirror stores it.
fn inverse(t: &Tuple) -> Tuple {
    let l4 = match t.l4 {
        L4Tuple::Ports { src, dst } => L4Tuple::Ports { src: dst, dst: src },
        L4Tuple::Icmp { kind, code, id } => {
            let kind = match (t.proto, kind) {
                (L4Proto::ICMP, 8) => 0,
                (L4Proto::ICMP, 13) => 14,
                (L4Proto::ICMP, 15) => 16,
                (L4Proto::ICMP, 17) => 18,
                (L4Proto::ICMPV6, 128) => 129,
                (L4Proto::ICMPV6, 139) => 140,
                (_, k) => k,
            };
            L4Tuple::Icmp { kind, code, id }
        }
        L4Tuple::None => L4Tuple::None,
    };
    Tuple::new(t.dst, t.src, t.proto, l4)
}

/// Flag bits of [`Entry`].
const HAS_STATE: u8 = 1 << 0;
const HAS_COUNTERS: u8 = 1 << 1;
const HAS_TIMEOUT: u8 = 1 << 2;
/// Set on entries seen by the current resync's dump (mark and sweep).
const SEEN: u8 = 1 << 7;

/// One mirrored entry, without its key: 48 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Entry {
    counters: [u64; 4],
    status: u32,
    mark: u32,
    expires: u32,
    state: u8,
    flags: u8,
}

impl Entry {
    /// Whether two entries differ in what events report (state, status,
    /// mark), ignoring timeout and counters.
    fn differs(&self, other: &Entry) -> bool {
        self.status != other.status
            || self.mark != other.mark
            || (self.flags & HAS_STATE) != (other.flags & HAS_STATE)
            || self.state != other.state
    }
}

/// One side (IPv4 or IPv6) of a [`Table`].
#[derive(Debug, Clone)]
struct Side<K: CompactKey> {
    map: HashMap<K, Entry>,
    /// Reply tuples that are not the inverse of the original one.
    replies: HashMap<K, Tuple>,
}

impl<K: CompactKey> Default for Side<K> {
    fn default() -> Self {
        Side {
            map: HashMap::new(),
            replies: HashMap::new(),
        }
    }
}

impl<K: CompactKey> Side<K> {
    fn reply_of(&self, k: &K, orig: &Tuple) -> Tuple {
        self.replies
            .get(k)
            .copied()
            .unwrap_or_else(|| inverse(orig))
    }

    fn view<'t>(&'t self, k: &K, e: &'t Entry, now: u32) -> EntryRef<'t> {
        let orig = k.tuple();
        EntryRef {
            reply: self.reply_of(k, &orig),
            orig,
            zone: k.zone(),
            entry: e,
            now,
        }
    }

    /// Inserts or updates from a flow; returns what happened.
    fn upsert(
        &mut self,
        k: K,
        f: &FlowView<'_>,
        now: u32,
        seen: Option<bool>,
        hook: &mut dyn MirrorHook,
    ) -> Upsert {
        let reply = f.reply();
        let orig = f.orig();
        let plain_reply = {
            let mut r = reply;
            r.zone = None;
            r == inverse(&orig)
        };
        let old = self.map.get(&k).copied();
        let mut e = old.unwrap_or_default();
        if let Some(s) = f.has_status().then(|| f.status()) {
            e.status = s.bits();
        }
        match f.protoinfo() {
            Some(ProtoInfo::Tcp(t)) => {
                e.state = t.state.0;
                e.flags |= HAS_STATE;
            }
            Some(ProtoInfo::Sctp(s)) => {
                e.state = s.state.0;
                e.flags |= HAS_STATE;
            }
            Some(ProtoInfo::Dccp(d)) => {
                e.state = d.state.0;
                e.flags |= HAS_STATE;
            }
            // An update without protoinfo leaves the state as it was.
            None => {}
        }
        // Events and dumps send CTA_MARK whenever it is non-zero (or
        // just changed), so its absence means 0.
        e.mark = f.mark().unwrap_or(0);
        if let Some(t) = f.timeout() {
            e.expires = now.saturating_add(t);
            e.flags |= HAS_TIMEOUT;
        }
        if let (Some(o), Some(r)) = (f.counters_orig(), f.counters_reply()) {
            e.counters = [o.packets, o.bytes, r.packets, r.bytes];
            e.flags |= HAS_COUNTERS;
        }
        match seen {
            Some(true) => e.flags |= SEEN,
            Some(false) => e.flags &= !SEEN,
            None => {}
        }
        let old_reply = if old.is_some() {
            Some(self.reply_of(&k, &orig))
        } else {
            None
        };
        if plain_reply {
            self.replies.remove(&k);
        } else {
            let mut r = reply;
            r.zone = None;
            self.replies.insert(k, r);
        }
        self.map.insert(k, e);
        let new_reply = self.reply_of(&k, &orig);
        match old {
            None => {
                if let Some(stored) = self.map.get(&k) {
                    hook.on_insert(&self.view(&k, stored, now));
                }
                Upsert::Inserted
            }
            Some(o) => {
                let changed = o.differs(&e) || old_reply != Some(new_reply);
                if changed {
                    let zone = k.zone();
                    let before = EntryRef {
                        orig,
                        reply: old_reply.unwrap_or(new_reply),
                        zone,
                        entry: &o,
                        now,
                    };
                    if let Some(stored) = self.map.get(&k) {
                        hook.on_change(&before, &self.view(&k, stored, now));
                    }
                    Upsert::Changed
                } else {
                    Upsert::Same
                }
            }
        }
    }

    fn remove(&mut self, k: &K, now: u32, hook: &mut dyn MirrorHook) -> bool {
        let Some(e) = self.map.remove(k) else {
            return false;
        };
        let orig = k.tuple();
        let reply = self.replies.remove(k).unwrap_or_else(|| inverse(&orig));
        hook.on_remove(&EntryRef {
            orig,
            reply,
            zone: k.zone(),
            entry: &e,
            now,
        });
        true
    }

    /// Removes entries without the `seen` mark; returns how many.
    fn sweep(&mut self, seen: bool, now: u32, hook: &mut dyn MirrorHook) -> u64 {
        let stale: Vec<K> = self
            .map
            .iter()
            .filter(|(_, e)| (e.flags & SEEN != 0) != seen)
            .map(|(k, _)| *k)
            .collect();
        for k in &stale {
            self.remove(k, now, hook);
        }
        stale.len() as u64
    }

    fn bytes(&self) -> usize {
        fn map_bytes<A, B>(m: &HashMap<A, B>) -> usize {
            // hashbrown: one control byte per bucket, buckets = capacity * 8 / 7
            // rounded up to a power of two.
            let buckets = if m.capacity() == 0 {
                0
            } else {
                (m.capacity() * 8 / 7).next_power_of_two()
            };
            buckets * (core::mem::size_of::<(A, B)>() + 1)
        }
        map_bytes(&self.map) + map_bytes(&self.replies)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Upsert {
    Inserted,
    Changed,
    Same,
}

/// A compact conntrack table: the mirror's content, or a snapshot made by
/// [`Table::from_dump`] to compare with. Expiry times are kept in seconds
/// since the table was made.
///
/// [`Table::apply`] applies events from any source (for example the
/// `tokio` feature's async event stream), as [`Mirror`] does.
///
/// ```
/// use conntrack_core::{Flow, FlowLike, L4Proto, L4Tuple, Status, Tuple};
/// use conntrack_netlink::event::{for_each_item, Item};
/// use conntrack_netlink::mirror::Table;
/// use conntrack_netlink::wire::{encode, message::*};
///
/// let ip = |s: &str| s.parse().unwrap();
/// let t = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::UDP,
///                    L4Tuple::Ports { src: 1000, dst: 53 });
/// let r = Tuple::new(ip("10.0.0.2"), ip("10.0.0.1"), L4Proto::UDP,
///                    L4Tuple::Ports { src: 53, dst: 1000 });
/// let mut flow = Flow::new(t, r, Status::CONFIRMED);
/// flow.mark = Some(3);
/// let mut buf = Vec::new();
/// let m = encode::begin_message(&mut buf, ct_type(IPCTNL_MSG_CT_NEW),
///                               NLM_F_CREATE | NLM_F_EXCL, 0, 2);
/// encode::encode_flow_as_kernel(&flow, &mut buf);
/// encode::finish_message(&mut buf, m);
///
/// let mut table = Table::new();
/// for_each_item(&buf, |item| {
///     if let Item::Event(e) = item { table.apply(&e); }
/// });
/// assert_eq!(table.len(), 1);
/// assert_eq!(table.get(&t, 0).unwrap().mark(), Some(3));
/// ```
#[derive(Clone)]
pub struct Table {
    v4: Side<V4Key>,
    v6: Side<V6Key>,
    epoch: Instant,
}

impl core::fmt::Debug for Table {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Table")
            .field("ipv4", &self.v4.map.len())
            .field("ipv6", &self.v6.map.len())
            .field("heap_bytes", &self.heap_bytes())
            .finish_non_exhaustive()
    }
}

impl Default for Table {
    fn default() -> Self {
        Table {
            v4: Side::default(),
            v6: Side::default(),
            epoch: Instant::now(),
        }
    }
}

/// What [`Table::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Applied {
    /// A new entry.
    Inserted,
    /// An entry's state, status, mark or reply tuple changed.
    Changed,
    /// Only the timeout or counters changed (or nothing).
    Refreshed,
    /// An entry was removed.
    Removed,
    /// A DESTROY for an entry the table did not have.
    Absent,
}

/// How two tables differ (see [`Table::diff`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableDiff {
    /// Entries only in `self`.
    pub only_in_self: u64,
    /// Entries only in the other table.
    pub only_in_other: u64,
    /// Entries in both whose state, status, mark or reply tuple differ.
    pub changed: u64,
    /// Up to 5 examples of each kind, for messages.
    pub examples: Vec<String>,
}

impl TableDiff {
    /// Whether the tables hold the same entries.
    pub fn is_empty(&self) -> bool {
        self.only_in_self == 0 && self.only_in_other == 0 && self.changed == 0
    }
}

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table::default()
    }

    /// A snapshot of a namespace's table from one dump.
    pub fn from_dump(ct: &mut Conntrack) -> Result<Table> {
        let mut t = Table::new();
        let now = t.now();
        ct.for_each(&DumpRequest::table(L3Family::UNSPEC), |f| {
            t.upsert(f, now, None, &mut ());
        })?;
        Ok(t)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.v4.map.len() + self.v6.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Seconds since the table was made (the unit of its expiry times).
    fn now(&self) -> u32 {
        u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// Applies one event: NEW and UPDATE insert or update the entry
    /// (an UPDATE without protocol info keeps the state), DESTROY removes
    /// it.
    pub fn apply(&mut self, event: &Event<'_>) -> Applied {
        self.apply_with_hook(event, &mut ())
    }

    /// Inserts or updates the entry of a flow (a dump item, or any view).
    pub fn insert_flow(&mut self, flow: &FlowView<'_>) -> Applied {
        let now = self.now();
        match self.upsert(flow, now, None, &mut ()) {
            Upsert::Inserted => Applied::Inserted,
            Upsert::Changed => Applied::Changed,
            Upsert::Same => Applied::Refreshed,
        }
    }

    /// [`Table::apply`], telling `hook` what changed.
    pub fn apply_with_hook(&mut self, event: &Event<'_>, hook: &mut dyn MirrorHook) -> Applied {
        let now = self.now();
        match event.kind {
            EventKind::New | EventKind::Update => match self.upsert(&event.flow, now, None, hook) {
                Upsert::Inserted => Applied::Inserted,
                Upsert::Changed => Applied::Changed,
                Upsert::Same => Applied::Refreshed,
            },
            EventKind::Destroy => {
                let zone = event.flow.zone().unwrap_or(0);
                if self.remove(&event.flow.orig(), zone, now, hook) {
                    Applied::Removed
                } else {
                    Applied::Absent
                }
            }
        }
    }

    /// Estimated heap bytes of the hash tables.
    pub fn heap_bytes(&self) -> usize {
        self.v4.bytes() + self.v6.bytes()
    }

    /// Reserves room for `n` more IPv4 entries.
    pub fn reserve(&mut self, n: usize) {
        self.v4.map.reserve(n);
    }

    /// Applies one flow (a dump item or a NEW/UPDATE event), with the
    /// current time in the table's seconds.
    fn upsert(
        &mut self,
        f: &FlowView<'_>,
        now: u32,
        seen: Option<bool>,
        hook: &mut dyn MirrorHook,
    ) -> Upsert {
        let orig = f.orig();
        let zone = f.zone().unwrap_or(0);
        match V4Key::from_tuple(&orig, zone) {
            Some(k) => self.v4.upsert(k, f, now, seen, hook),
            None => match V6Key::from_tuple(&orig, zone) {
                Some(k) => self.v6.upsert(k, f, now, seen, hook),
                None => Upsert::Same,
            },
        }
    }

    fn remove(&mut self, orig: &Tuple, zone: u16, now: u32, hook: &mut dyn MirrorHook) -> bool {
        match V4Key::from_tuple(orig, zone) {
            Some(k) => self.v4.remove(&k, now, hook),
            None => V6Key::from_tuple(orig, zone).is_some_and(|k| self.v6.remove(&k, now, hook)),
        }
    }

    fn get_at(&self, orig: &Tuple, zone: u16, now: u32) -> Option<EntryRef<'_>> {
        match V4Key::from_tuple(orig, zone) {
            Some(k) => self.v4.map.get(&k).map(|e| self.v4.view(&k, e, now)),
            None => {
                let k = V6Key::from_tuple(orig, zone)?;
                self.v6.map.get(&k).map(|e| self.v6.view(&k, e, now))
            }
        }
    }

    /// The entry with this original tuple and zone (0 for none).
    pub fn get(&self, orig: &Tuple, zone: u16) -> Option<EntryRef<'_>> {
        self.get_at(orig, zone, self.now())
    }

    fn iter_at(&self, now: u32) -> impl Iterator<Item = EntryRef<'_>> + '_ {
        let v4 = self
            .v4
            .map
            .iter()
            .map(move |(k, e)| self.v4.view(k, e, now));
        let v6 = self
            .v6
            .map
            .iter()
            .map(move |(k, e)| self.v6.view(k, e, now));
        v4.chain(v6)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> + '_ {
        self.iter_at(self.now())
    }

    /// How `self` and `other` differ: entries (original tuple and zone)
    /// in one only, and entries in both with a different state, status,
    /// mark or reply tuple. Timeouts and counters are not compared.
    pub fn diff(&self, other: &Table) -> TableDiff {
        let mut d = TableDiff::default();
        diff_side(&self.v4, &other.v4, &mut d);
        diff_side(&self.v6, &other.v6, &mut d);
        d
    }
}

fn diff_side<K: CompactKey>(a: &Side<K>, b: &Side<K>, d: &mut TableDiff) {
    let note = |d: &mut TableDiff, what: &str, k: &K| {
        if d.examples.len() < 15 {
            d.examples
                .push(format!("{what}: {:?} zone {}", k.tuple(), k.zone()));
        }
    };
    for (k, e) in &a.map {
        match b.map.get(k) {
            None => {
                d.only_in_self += 1;
                note(d, "only in self", k);
            }
            Some(o) => {
                let orig = k.tuple();
                if e.differs(o) || a.reply_of(k, &orig) != b.reply_of(k, &orig) {
                    d.changed += 1;
                    note(d, "changed", k);
                }
            }
        }
    }
    for k in b.map.keys() {
        if !a.map.contains_key(k) {
            d.only_in_other += 1;
            note(d, "only in other", k);
        }
    }
}

/// A borrowed mirrored entry, rebuilt from its compact form.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'t> {
    orig: Tuple,
    reply: Tuple,
    zone: u16,
    entry: &'t Entry,
    now: u32,
}

impl EntryRef<'_> {
    /// The zone (0 for none).
    pub fn zone_id(&self) -> u16 {
        self.zone
    }

    /// The protocol or replied state.
    pub fn state(&self) -> FlowState {
        self.flow_state()
    }

    /// When the entry expires, in seconds since the mirror's epoch, if a
    /// timeout was ever reported.
    pub fn expires(&self) -> Option<u32> {
        (self.entry.flags & HAS_TIMEOUT != 0).then_some(self.entry.expires)
    }
}

impl FlowLike for EntryRef<'_> {
    fn orig(&self) -> Tuple {
        self.orig
    }
    fn reply(&self) -> Tuple {
        self.reply
    }
    fn status(&self) -> Status {
        Status::from_bits_retain(self.entry.status)
    }
    fn protoinfo(&self) -> Option<ProtoInfo> {
        if self.entry.flags & HAS_STATE == 0 {
            return None;
        }
        let s = self.entry.state;
        match self.orig.proto {
            L4Proto::TCP => Some(ProtoInfo::Tcp(TcpInfo {
                state: TcpState(s),
                ..Default::default()
            })),
            L4Proto::SCTP => Some(ProtoInfo::Sctp(SctpInfo {
                state: SctpState(s),
                ..Default::default()
            })),
            L4Proto::DCCP => Some(ProtoInfo::Dccp(DccpInfo {
                state: DccpState(s),
                ..Default::default()
            })),
            _ => None,
        }
    }
    /// Seconds left, as of the last call to the mirror (0 once passed).
    fn timeout(&self) -> Option<u32> {
        self.expires().map(|e| e.saturating_sub(self.now))
    }
    fn mark(&self) -> Option<u32> {
        Some(self.entry.mark)
    }
    fn zone(&self) -> Option<u16> {
        (self.zone != 0).then_some(self.zone)
    }
    fn counters_orig(&self) -> Option<Counters> {
        (self.entry.flags & HAS_COUNTERS != 0).then(|| Counters {
            packets: self.entry.counters[0],
            bytes: self.entry.counters[1],
        })
    }
    fn counters_reply(&self) -> Option<Counters> {
        (self.entry.flags & HAS_COUNTERS != 0).then(|| Counters {
            packets: self.entry.counters[2],
            bytes: self.entry.counters[3],
        })
    }
}

// ---------------------------------------------------------------------
// Hooks
// ---------------------------------------------------------------------

/// Told about every change of a [`Mirror`]'s table, in order, so that an
/// aggregate can follow it without re-walking the table. Every method
/// defaults to doing nothing.
///
/// ```
/// use conntrack_core::FlowLike;
/// use conntrack_netlink::mirror::{EntryRef, MirrorHook};
/// use std::collections::HashMap;
///
/// /// Entries per destination port, kept up to date incrementally.
/// #[derive(Default)]
/// struct PerPort(HashMap<u16, i64>);
///
/// impl MirrorHook for PerPort {
///     fn on_insert(&mut self, e: &EntryRef<'_>) {
///         *self.0.entry(e.orig().dst_port().unwrap_or(0)).or_default() += 1;
///     }
///     fn on_remove(&mut self, e: &EntryRef<'_>) {
///         *self.0.entry(e.orig().dst_port().unwrap_or(0)).or_default() -= 1;
///     }
/// }
/// ```
pub trait MirrorHook {
    /// A new entry.
    fn on_insert(&mut self, _entry: &EntryRef<'_>) {}
    /// An entry's state, status, mark or reply tuple changed.
    fn on_change(&mut self, _before: &EntryRef<'_>, _after: &EntryRef<'_>) {}
    /// An entry went away (DESTROY, or missing from a resync's dump).
    fn on_remove(&mut self, _entry: &EntryRef<'_>) {}
}

impl MirrorHook for () {}

// ---------------------------------------------------------------------
// Mirror
// ---------------------------------------------------------------------

/// How to run a [`Mirror`].
///
/// ```
/// use conntrack_netlink::event::RcvBuf;
/// use conntrack_netlink::mirror::MirrorConfig;
/// use conntrack_netlink::Netns;
/// let cfg = MirrorConfig::new(Netns::named("blue")).rcvbuf(RcvBuf::Bytes(64 << 20));
/// assert!(cfg.resyncs_on_loss());
/// ```
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    netns: Netns,
    rcvbuf: RcvBuf,
    resync_on_loss: bool,
    max_batch: usize,
    resync_every: ResyncPeriod,
}

/// When a [`Mirror`] resyncs without a loss; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncPeriod {
    /// Chosen from `nf_conntrack_events` when the mirror opens, backing
    /// off while periodic resyncs find nothing (the default).
    Auto,
    /// Never (only on loss and on request).
    Never,
    /// At this fixed period.
    Every(Duration),
}

impl ResyncPeriod {
    /// The automatic period with `nf_conntrack_events=2`.
    pub const AUTO_BASE: Duration = Duration::from_secs(60);
    /// The automatic period with `nf_conntrack_events=0` (or unreadable).
    pub const AUTO_NO_EVENTS: Duration = Duration::from_secs(10);
    /// The longest automatic period after back-off.
    pub const AUTO_MAX: Duration = Duration::from_secs(600);

    /// The first period for a namespace whose `nf_conntrack_events` reads
    /// `events` (`None`: could not be read).
    ///
    /// ```
    /// use conntrack_netlink::mirror::ResyncPeriod;
    /// use std::time::Duration;
    /// assert_eq!(ResyncPeriod::Auto.initial(Some(1)), None);
    /// assert_eq!(ResyncPeriod::Auto.initial(Some(2)), Some(ResyncPeriod::AUTO_BASE));
    /// assert_eq!(ResyncPeriod::Auto.initial(Some(0)), Some(ResyncPeriod::AUTO_NO_EVENTS));
    /// let fixed = ResyncPeriod::Every(Duration::from_secs(5));
    /// assert_eq!(fixed.initial(Some(1)), Some(Duration::from_secs(5)));
    /// ```
    pub fn initial(self, events: Option<u8>) -> Option<Duration> {
        match self {
            ResyncPeriod::Never => None,
            ResyncPeriod::Every(d) => Some(d),
            ResyncPeriod::Auto => match events {
                Some(1) => None,
                Some(2) => Some(Self::AUTO_BASE),
                _ => Some(Self::AUTO_NO_EVENTS),
            },
        }
    }

    /// The period after a periodic resync that found `differed` entries
    /// different, given the current period: automatic periods double
    /// while resyncs find nothing and go back to the first period when
    /// they find something; fixed periods stay.
    ///
    /// ```
    /// use conntrack_netlink::mirror::ResyncPeriod;
    /// use std::time::Duration;
    /// let base = ResyncPeriod::AUTO_BASE;
    /// assert_eq!(ResyncPeriod::Auto.next(base, Some(2), 0), 2 * base);
    /// assert_eq!(ResyncPeriod::Auto.next(ResyncPeriod::AUTO_MAX, Some(2), 0), ResyncPeriod::AUTO_MAX);
    /// assert_eq!(ResyncPeriod::Auto.next(4 * base, Some(2), 3), base);
    /// ```
    pub fn next(self, current: Duration, events: Option<u8>, differed: u64) -> Duration {
        match self {
            ResyncPeriod::Auto if differed == 0 => (current * 2).min(Self::AUTO_MAX),
            ResyncPeriod::Auto => self.initial(events).unwrap_or(current),
            _ => current,
        }
    }
}

impl MirrorConfig {
    /// Mirror the table of `netns`, with an automatic receive buffer
    /// ([`RcvBuf::Auto`]) and resync on loss.
    pub fn new(netns: Netns) -> Self {
        MirrorConfig {
            netns,
            rcvbuf: RcvBuf::Auto,
            resync_on_loss: true,
            max_batch: 1 << 16,
            resync_every: ResyncPeriod::Auto,
        }
    }

    /// Resync at this fixed period even without loss (`None`: never), to
    /// remove entries that go away without a DESTROY event (see the
    /// module documentation on `nf_conntrack_events`). [`Mirror::poll`]
    /// runs it when due. The default is [`ResyncPeriod::Auto`].
    pub fn resync_every(mut self, period: Option<Duration>) -> Self {
        self.resync_every = match period.filter(|p| !p.is_zero()) {
            Some(d) => ResyncPeriod::Every(d),
            None => ResyncPeriod::Never,
        };
        self
    }

    /// When to resync without a loss.
    pub fn resync_period(mut self, period: ResyncPeriod) -> Self {
        self.resync_every = period;
        self
    }

    /// The event socket's receive buffer.
    pub fn rcvbuf(mut self, rcvbuf: RcvBuf) -> Self {
        self.rcvbuf = rcvbuf;
        self
    }

    /// Whether [`Mirror::poll`] resyncs by itself when events were lost
    /// (default). Without it, the loss is only reported
    /// ([`Poll::lost`]) and [`Mirror::is_stale`] stays true until
    /// [`Mirror::resync`].
    pub fn resync_on_loss(mut self, yes: bool) -> Self {
        self.resync_on_loss = yes;
        self
    }

    /// Whether the mirror resyncs by itself on loss.
    pub fn resyncs_on_loss(&self) -> bool {
        self.resync_on_loss
    }

    /// At most this many events per [`Mirror::poll`] (default 65536), so
    /// that a poll returns under a flood.
    pub fn max_batch(mut self, n: usize) -> Self {
        self.max_batch = n.max(1);
        self
    }
}

/// Why a resync ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
        let removed = self.table.v4.sweep(seen, now, &mut self.hook)
            + self.table.v6.sweep(seen, now, &mut self.hook);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode::encode_flow_as_kernel;
    use conntrack_core::Flow;

    fn flow(src: &str, dst: &str, sport: u16, state: Option<TcpState>, mark: u32) -> Flow {
        let ip = |s: &str| s.parse().unwrap();
        let proto = if state.is_some() {
            L4Proto::TCP
        } else {
            L4Proto::UDP
        };
        let o = Tuple::new(
            ip(src),
            ip(dst),
            proto,
            L4Tuple::Ports {
                src: sport,
                dst: 443,
            },
        );
        let mut f = Flow::new(o, inverse(&o), Status::CONFIRMED);
        f.protoinfo = state.map(|s| {
            ProtoInfo::Tcp(TcpInfo {
                state: s,
                ..Default::default()
            })
        });
        f.mark = (mark != 0).then_some(mark);
        f.timeout = Some(100);
        f
    }

    fn payload(f: &Flow) -> Vec<u8> {
        let mut p = vec![2, 0, 0, 0];
        encode_flow_as_kernel(f, &mut p);
        p
    }

    #[derive(Default)]
    struct Count {
        ins: i64,
        rem: i64,
        chg: i64,
    }
    impl MirrorHook for Count {
        fn on_insert(&mut self, _: &EntryRef<'_>) {
            self.ins += 1;
        }
        fn on_change(&mut self, _: &EntryRef<'_>, _: &EntryRef<'_>) {
            self.chg += 1;
        }
        fn on_remove(&mut self, _: &EntryRef<'_>) {
            self.rem += 1;
        }
    }

    #[test]
    fn debug_is_a_summary() {
        let d = format!("{:?}", Table::new());
        assert!(d.starts_with("Table { ipv4: 0, ipv6: 0"), "{d}");
    }

    #[test]
    fn sizes() {
        assert_eq!(core::mem::size_of::<V4Key>(), 16);
        assert_eq!(core::mem::size_of::<V6Key>(), 40);
        assert_eq!(core::mem::size_of::<Entry>(), 48);
    }

    #[test]
    fn keys_round_trip() {
        let ip = |s: &str| s.parse().unwrap();
        for t in [
            Tuple::new(
                ip("10.0.0.1"),
                ip("10.0.0.2"),
                L4Proto::ICMP,
                L4Tuple::Icmp {
                    kind: 8,
                    code: 0,
                    id: 77,
                },
            ),
            Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto(50), L4Tuple::None),
        ] {
            assert_eq!(V4Key::from_tuple(&t, 3).unwrap().tuple(), t);
        }
        let t6 = Tuple::new(
            ip("fd00::1"),
            ip("2001:db8::2"),
            L4Proto::UDP,
            L4Tuple::Ports { src: 5, dst: 53 },
        );
        assert!(V4Key::from_tuple(&t6, 0).is_none());
        let k = V6Key::from_tuple(&t6, 9).unwrap();
        assert_eq!((k.tuple(), k.zone()), (t6, 9));
    }

    #[test]
    fn events_apply_and_hooks_follow() {
        let mut t = Table::new();
        let mut h = Count::default();
        let a = flow("10.0.0.1", "10.0.0.9", 1000, Some(TcpState::SYN_SENT), 0);
        let pa = payload(&a);
        let va = FlowView::parse(&pa).unwrap();
        assert_eq!(t.upsert(&va, 0, None, &mut h), Upsert::Inserted);
        assert_eq!(t.upsert(&va, 5, None, &mut h), Upsert::Same, "timeout only");
        // An update without protoinfo keeps the state, changes the mark.
        let mut b = a.clone();
        b.protoinfo = None;
        b.mark = Some(4);
        let pb = payload(&b);
        assert_eq!(
            t.upsert(&FlowView::parse(&pb).unwrap(), 6, None, &mut h),
            Upsert::Changed
        );
        let e = t.get(&a.orig, 0).unwrap();
        assert_eq!(e.tcp_state_or_none(), Some(TcpState::SYN_SENT));
        assert_eq!(e.mark(), Some(4));
        assert_eq!(e.reply(), a.reply);
        // NAT reply is kept exactly.
        let mut n = flow("fd00::5", "2001:db8::1", 2000, None, 0);
        n.reply.dst = "2001:db8::ffff".parse().unwrap();
        let pn = payload(&n);
        t.upsert(&FlowView::parse(&pn).unwrap(), 0, None, &mut h);
        let e = t.get(&n.orig, 0).unwrap();
        assert_eq!(e.reply(), n.reply);
        assert!(e.flow_nat().snat);
        assert_eq!(t.len(), 2);
        assert!(t.remove(&n.orig, 0, 0, &mut h));
        assert!(!t.remove(&n.orig, 0, 0, &mut h));
        assert_eq!((h.ins, h.chg, h.rem), (2, 1, 1));
        assert!(t.v6.replies.is_empty());
    }

    #[test]
    fn diff_and_sweep() {
        let mut x = Table::new();
        let mut y = Table::new();
        let fs: Vec<Flow> = (0..10)
            .map(|i| {
                flow(
                    "10.0.0.1",
                    "10.0.0.2",
                    100 + i,
                    Some(TcpState::ESTABLISHED),
                    0,
                )
            })
            .collect();
        for (i, f) in fs.iter().enumerate() {
            let p = payload(f);
            let v = FlowView::parse(&p).unwrap();
            if i != 0 {
                x.upsert(&v, 0, Some(true), &mut ());
            }
            if i != 1 {
                let mut g = f.clone();
                if i == 2 {
                    g.mark = Some(9);
                }
                let p = payload(&g);
                y.upsert(&FlowView::parse(&p).unwrap(), 0, None, &mut ());
            }
        }
        let d = x.diff(&y);
        assert_eq!(
            (d.only_in_self, d.only_in_other, d.changed),
            (1, 1, 1),
            "{d:?}"
        );
        assert!(!d.is_empty());
        assert!(x.diff(&x).is_empty());
        // Flip one entry to the other generation and sweep it.
        let k = V4Key::from_tuple(&fs[3].orig, 0).unwrap();
        x.v4.map.get_mut(&k).unwrap().flags &= !SEEN;
        let mut h = Count::default();
        assert_eq!(x.v4.sweep(true, 0, &mut h), 1);
        assert_eq!((x.len(), h.rem), (8, 1));
    }

    trait TcpStateOrNone {
        fn tcp_state_or_none(&self) -> Option<TcpState>;
    }
    impl TcpStateOrNone for EntryRef<'_> {
        fn tcp_state_or_none(&self) -> Option<TcpState> {
            match self.protoinfo() {
                Some(ProtoInfo::Tcp(t)) => Some(t.state),
                _ => None,
            }
        }
    }
}
