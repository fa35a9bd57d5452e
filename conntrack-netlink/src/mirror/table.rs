//! [`Table`]: the mirror's content, a compact copy of a conntrack table
//! (IPv4 and IPv6 entries in two hash maps each, reply tuples stored only
//! when they are not the one the kernel computes), updated by events and
//! dumps, compared by [`Table::diff`], and watched by a [`MirrorHook`].

use super::entry::{Entry, EntryRef, HAS_COUNTERS, HAS_STATE, HAS_TIMEOUT, SEEN};
use super::key::{CompactKey, V4Key, V6Key};
use crate::error::Result;
use crate::event::{Event, EventKind};
use crate::ops::{Conntrack, DumpRequest};
use crate::request::reply_tuple;
use crate::wire::FlowView;
use conntrack_core::{L3Family, ProtoInfo, Tuple};
use std::collections::HashMap;
use std::time::Instant;

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
            .unwrap_or_else(|| reply_tuple(orig))
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
            r == reply_tuple(&orig)
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
            // An update without protoinfo (or with the protoinfo of a
            // protocol core does not know yet) leaves the state as it was.
            _ => {}
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
        let reply = self.replies.remove(k).unwrap_or_else(|| reply_tuple(&orig));
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
pub(super) enum Upsert {
    Inserted,
    Changed,
    Same,
}

/// A compact conntrack table: the mirror's content, or a snapshot made by
/// [`Table::from_dump`] to compare with. Expiry times are kept in seconds
/// since the table was made.
///
/// [`Table::apply`] applies events from any source (for example the
/// `tokio` feature's async event stream), as [`Mirror`](super::Mirror) does.
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
#[non_exhaustive]
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
#[non_exhaustive]
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
    pub(super) fn now(&self) -> u32 {
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
    pub(super) fn upsert(
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

    /// Removes the entries that the current resync's dump did not mark
    /// `seen`; returns how many.
    pub(super) fn sweep(&mut self, seen: bool, now: u32, hook: &mut dyn MirrorHook) -> u64 {
        self.v4.sweep(seen, now, hook) + self.v6.sweep(seen, now, hook)
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

/// Told about every change of a [`Mirror`](super::Mirror)'s table, in order, so that an
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::{self, payload};
    use conntrack_core::{Flow, FlowLike, TcpState};

    /// A flow `src`:`sport` -> `dst`:443, TCP in `state` or UDP without
    /// one, with `mark` (0: none) and a timeout.
    fn flow(src: &str, dst: &str, sport: u16, state: Option<TcpState>, mark: u32) -> Flow {
        let mut f = match state {
            Some(s) => support::tcp(src, sport, dst, 443, s),
            None => support::udp(src, sport, dst, 443),
        };
        f.mark = (mark != 0).then_some(mark);
        f.timeout = Some(100);
        f
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
