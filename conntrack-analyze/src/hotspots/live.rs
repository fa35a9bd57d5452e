//! Per-key counts kept as flows come and go (an event mirror's inserts,
//! changes and removals), with the aggregator's keys and names.

use super::key::{Key, KeyKind};
use super::names::NameMap;
use super::rule::FlowKeys;
use super::summary::KeyTable;
use super::tally::exact_table;
use conntrack_core::FlowLike;
use rustc_hash::FxHashMap;

/// Exact per-key counts kept incrementally as flows are added, changed and
/// removed, for example from the hooks of an event mirror: a view of the
/// current table then costs O(keys), not a pass over every flow.
///
/// A flow counts under the key [`KeyKind::key_of`] gives it, the rule
/// [`Hotspots`](super::Hotspots) applies too, so that a live view and a
/// one-pass summary of the same flows agree key for key
/// ([`LiveCounts::table`] is the summary's [`KeyTable`] for the current
/// flows).
///
/// Besides the current flows per key it counts, per period, the flows that
/// *took* each key: added with it, or changed to it (a TCP flow moving
/// from SYN_SENT to ESTABLISHED takes the ESTABLISHED key). Divided by the
/// period's length that is the rate of new flows per key.
/// [`LiveCounts::new_period`] starts the next period; start one after
/// loading an existing table so that its flows do not count as new.
///
/// Memory: one slot per key with current flows, plus keys emptied during
/// the current period (forgotten when the next one starts).
///
/// ```
/// use conntrack_analyze::hotspots::{KeyKind, LiveCounts, LiveOrder};
/// use conntrack_core::testkit::{flow, icmp_echo, tcp, tcp_state};
/// use conntrack_core::TcpState;
///
/// let mut live = LiveCounts::new(&[KeyKind::DstPort, KeyKind::State]);
/// let mut web = flow(tcp("10.0.0.1", 40000, "10.0.0.2", 443));
/// web.protoinfo = tcp_state(TcpState::SYN_SENT);
/// live.add(&web);
/// live.add(&flow(tcp("10.0.0.1", 40001, "10.0.0.2", 443)));
/// live.add(&flow(icmp_echo("10.0.0.1", "10.0.0.2", 7)));
/// live.new_period(); // what was loaded is not new
///
/// // The handshake completes: the flow moves to ESTABLISHED.
/// let mut done = web.clone();
/// done.protoinfo = tcp_state(TcpState::ESTABLISHED);
/// live.change(&web, &done);
///
/// let ports = live.top(KeyKind::DstPort, 5, LiveOrder::Count);
/// assert_eq!(ports.len(), 1); // ICMP has no port: not a DST_PORT key
/// assert_eq!((ports[0].key.to_string(), ports[0].count), ("tcp/443".into(), 2));
/// let states = live.top(KeyKind::State, 5, LiveOrder::Started);
/// assert_eq!(states[0].key.to_string(), "tcp ESTABLISHED");
/// assert_eq!((states[0].count, states[0].started), (1, 1));
///
/// live.remove(&done);
/// assert_eq!(live.flows(), 2);
/// assert_eq!(live.table(KeyKind::DstPort, 5).unwrap().top[0].count, 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct LiveCounts {
    names: NameMap,
    kinds: Vec<KeyKind>,
    /// One map per entry of `kinds`.
    maps: Vec<FxHashMap<Key, Slot>>,
    flows: u64,
}

/// One key's counts.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Current flows.
    count: u64,
    /// Flows that took the key in the current period.
    started: u64,
}

/// How [`LiveCounts::top`] orders keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveOrder {
    /// Most current flows first (then most started, then by key).
    Count,
    /// Most flows started in the current period first (then most current
    /// flows, then by key).
    Started,
}

/// A row of [`LiveCounts::top`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveRow {
    /// The key.
    pub key: Key,
    /// Current flows with this key.
    pub count: u64,
    /// Flows that took this key in the current period: added with it or
    /// changed to it.
    pub started: u64,
}

impl LiveCounts {
    /// Counts by these kinds (duplicates ignored), without address names.
    pub fn new(kinds: &[KeyKind]) -> Self {
        Self::with_names(kinds, NameMap::new())
    }

    /// Counts by these kinds, naming addresses for [`KeyKind::Name`].
    pub fn with_names(kinds: &[KeyKind], names: NameMap) -> Self {
        let mut k: Vec<KeyKind> = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            if !k.contains(&kind) {
                k.push(kind);
            }
        }
        LiveCounts {
            names,
            maps: vec![FxHashMap::default(); k.len()],
            kinds: k,
            flows: 0,
        }
    }

    /// The kinds counted, in the order given.
    pub fn kinds(&self) -> &[KeyKind] {
        &self.kinds
    }

    /// Current flows: added and not removed.
    pub fn flows(&self) -> u64 {
        self.flows
    }

    fn map(&self, kind: KeyKind) -> Option<&FxHashMap<Key, Slot>> {
        let i = self.kinds.iter().position(|&k| k == kind)?;
        self.maps.get(i)
    }

    fn up(map: &mut FxHashMap<Key, Slot>, key: Key) {
        let s = map.entry(key).or_default();
        s.count += 1;
        s.started += 1;
    }

    fn down(map: &mut FxHashMap<Key, Slot>, key: &Key) {
        if let Some(s) = map.get_mut(key) {
            s.count = s.count.saturating_sub(1);
            if s.count == 0 && s.started == 0 {
                map.remove(key);
            }
        }
    }

    /// Counts a new flow under its key of every kind (and as started).
    pub fn add<F: FlowLike + ?Sized>(&mut self, f: &F) {
        let k = FlowKeys::of(f, &self.names);
        self.flows += 1;
        for (kind, map) in self.kinds.iter().zip(&mut self.maps) {
            if let Some(key) = k.key(*kind, &self.names) {
                Self::up(map, key);
            }
        }
    }

    /// Uncounts a flow that went away. Removing a flow that was never
    /// added leaves counts at zero, not below.
    pub fn remove<F: FlowLike + ?Sized>(&mut self, f: &F) {
        let k = FlowKeys::of(f, &self.names);
        self.flows = self.flows.saturating_sub(1);
        for (kind, map) in self.kinds.iter().zip(&mut self.maps) {
            if let Some(key) = k.key(*kind, &self.names) {
                Self::down(map, &key);
            }
        }
    }

    /// A flow changed (state, status, mark, reply tuple): for each kind
    /// whose key changed, it leaves the old key and takes the new one
    /// (counted as started there).
    pub fn change<B, A>(&mut self, before: &B, after: &A)
    where
        B: FlowLike + ?Sized,
        A: FlowLike + ?Sized,
    {
        let b = FlowKeys::of(before, &self.names);
        let a = FlowKeys::of(after, &self.names);
        if a == b {
            return;
        }
        for (kind, map) in self.kinds.iter().zip(&mut self.maps) {
            let (kb, ka) = (b.key(*kind, &self.names), a.key(*kind, &self.names));
            if kb == ka {
                continue;
            }
            if let Some(key) = kb {
                Self::down(map, &key);
            }
            if let Some(key) = ka {
                Self::up(map, key);
            }
        }
    }

    /// Current flows with a key (0 when the kind is not counted).
    pub fn count(&self, kind: KeyKind, key: &Key) -> u64 {
        self.map(kind)
            .and_then(|m| m.get(key))
            .map_or(0, |s| s.count)
    }

    /// Keys of a kind with current flows (0 when the kind is not counted).
    pub fn distinct(&self, kind: KeyKind) -> u64 {
        self.map(kind)
            .map_or(0, |m| m.values().filter(|s| s.count > 0).count() as u64)
    }

    /// The first `n` keys of a kind in `order`, among the keys with current
    /// flows or flows started in this period (empty when the kind is not
    /// counted).
    pub fn top(&self, kind: KeyKind, n: usize, order: LiveOrder) -> Vec<LiveRow> {
        let Some(map) = self.map(kind) else {
            return Vec::new();
        };
        let mut rows: Vec<LiveRow> = map
            .iter()
            .filter(|(_, s)| s.count > 0 || s.started > 0)
            .map(|(k, s)| LiveRow {
                key: k.clone(),
                count: s.count,
                started: s.started,
            })
            .collect();
        match order {
            LiveOrder::Count => rows.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then(b.started.cmp(&a.started))
                    .then_with(|| a.key.cmp(&b.key))
            }),
            LiveOrder::Started => rows.sort_by(|a, b| {
                b.started
                    .cmp(&a.started)
                    .then(b.count.cmp(&a.count))
                    .then_with(|| a.key.cmp(&b.key))
            }),
        }
        rows.truncate(n);
        rows
    }

    /// The current flows of a kind as the aggregator's table (the first
    /// `n` keys, shares of [`LiveCounts::flows`]), or `None` when the kind
    /// is not counted. For the same flows it equals
    /// [`HotspotSummary::table`](super::HotspotSummary::table) of an exact
    /// [`Hotspots`](super::Hotspots) pass with the same names and `top`.
    pub fn table(&self, kind: KeyKind, n: usize) -> Option<KeyTable> {
        let map = self.map(kind)?;
        let v = map.iter().map(|(k, s)| (k.clone(), s.count)).collect();
        Some(exact_table(kind, v, n, self.flows))
    }

    /// Starts a new period: started counts restart from zero and keys
    /// without current flows are forgotten.
    pub fn new_period(&mut self) {
        for map in &mut self.maps {
            map.retain(|_, s| {
                s.started = 0;
                s.count > 0
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hotspots::{HotspotConfig, Hotspots};
    use conntrack_core::testkit::{flow, icmp_echo, ip, tcp, tcp_state, udp};
    use conntrack_core::{Flow, L4Proto, Status, TcpState};
    use proptest::prelude::*;

    fn ipk(s: &str) -> Key {
        Key::Ip(ip(s))
    }

    fn names() -> NameMap {
        let mut n = NameMap::new();
        n.insert_str("10.0.1.0/24", "team-a").unwrap();
        n.insert_str("172.17.0.2", "web").unwrap();
        n
    }

    /// A flow of a small varied population: protocols with and without
    /// ports, both families, states, marks, zones, SNAT, DNAT to a named
    /// container, replied or not.
    fn varied(i: u32) -> Flow {
        let host = |base: &str| format!("{base}{}", i % 7 + 1);
        let mut f = match i % 5 {
            0 => flow(tcp(&host("10.0.1."), 1000 + i as u16, "192.0.2.1", 443)),
            1 => flow(udp(&host("10.0.2."), 2000 + i as u16, "192.0.2.53", 53)),
            2 => flow(icmp_echo(&host("10.0.3."), "192.0.2.9", i as u16)),
            3 => flow(tcp(&host("fd00::"), 3000 + i as u16, "fd00::80", 80)),
            _ => flow(tcp("203.0.113.9", 4000 + i as u16, "198.51.100.7", 8080)),
        };
        if f.orig.proto == L4Proto::TCP {
            f.protoinfo = tcp_state(match i % 3 {
                0 => TcpState::ESTABLISHED,
                1 => TcpState::TIME_WAIT,
                _ => TcpState::SYN_SENT,
            });
        }
        if i.is_multiple_of(2) {
            f.status |= Status::SEEN_REPLY;
        }
        if i.is_multiple_of(4) {
            f.mark = Some(i % 3);
        }
        if i.is_multiple_of(6) {
            f.zone = Some(2);
        }
        if i.is_multiple_of(10) {
            f.reply.dst = ip("198.51.100.1"); // masqueraded
        }
        if i % 5 == 4 {
            f.reply.src = ip("172.17.0.2"); // DNAT to the container
        }
        f
    }

    /// Every table of `live` equals the exact aggregator's over `flows`.
    fn assert_agrees(live: &LiveCounts, flows: &[&Flow]) {
        let mut h = Hotspots::new(HotspotConfig {
            names: names(),
            top: 1000,
            ..HotspotConfig::default()
        });
        h.extend(flows.iter().copied());
        let s = h.summary();
        assert_eq!(live.flows(), s.flows);
        for kind in KeyKind::ALL {
            assert_eq!(
                live.table(kind, 1000).as_ref(),
                s.table(kind),
                "{kind} over {} flows",
                flows.len()
            );
        }
    }

    #[test]
    fn agrees_with_the_aggregator_key_for_key() {
        let all: Vec<Flow> = (0..60).map(varied).collect();
        let mut live = LiveCounts::with_names(&KeyKind::ALL, names());
        for f in &all {
            live.add(f);
        }
        assert_agrees(&live, &all.iter().collect::<Vec<_>>());
        // The population exercises what the keys tell apart.
        let keys = |kind| -> Vec<String> {
            live.top(kind, 100, LiveOrder::Count)
                .iter()
                .map(|r| r.key.to_string())
                .collect()
        };
        assert_eq!(keys(KeyKind::Nat), ["no NAT", "DNAT", "SNAT"]);
        assert_eq!(keys(KeyKind::Name), ["team-a", "web"]);
        assert_eq!(keys(KeyKind::Zone), ["zone 0", "zone 2"]);
        assert!(keys(KeyKind::SrcNet).contains(&"fd00::/64".to_string()));
        assert_eq!(keys(KeyKind::Proto), ["tcp", "icmp", "udp"]);
        // Remove every third: the counts are those of the rest.
        for f in all.iter().step_by(3) {
            live.remove(f);
        }
        let rest: Vec<&Flow> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(_, f)| f)
            .collect();
        assert_agrees(&live, &rest);
    }

    #[test]
    fn port_less_flows_count_under_destination_not_dst_port() {
        let mut live = LiveCounts::new(&[KeyKind::DstPort, KeyKind::Destination]);
        let ping = flow(icmp_echo("10.0.0.1", "10.0.0.2", 7));
        live.add(&ping);
        assert!(live.top(KeyKind::DstPort, 5, LiveOrder::Count).is_empty());
        assert_eq!(live.distinct(KeyKind::DstPort), 0);
        let dest = live.top(KeyKind::Destination, 5, LiveOrder::Count);
        assert_eq!(dest[0].key.to_string(), "icmp 10.0.0.2:0");
        let t = live.table(KeyKind::DstPort, 5).unwrap();
        assert_eq!((t.counted, t.top.len()), (0, 0));
        // Not counted at all: no table.
        assert!(live.table(KeyKind::SrcIp, 5).is_none());
        assert!(live.top(KeyKind::SrcIp, 5, LiveOrder::Count).is_empty());
    }

    #[test]
    fn periods_rank_count_started_and_forget() {
        let mut live = LiveCounts::new(&[KeyKind::SrcIp]);
        let f = |src: &str, port| flow(tcp(src, port, "192.0.2.1", 443));
        for p in 0..5 {
            live.add(&f("10.0.0.2", p)); // loaded before the period
        }
        live.new_period();
        for p in 0..3 {
            live.add(&f("10.0.0.1", p));
        }
        live.add(&f("10.0.0.3", 0));
        live.remove(&f("10.0.0.3", 0));

        let rows = live.top(KeyKind::SrcIp, 10, LiveOrder::Count);
        assert_eq!(live.distinct(KeyKind::SrcIp), 2);
        let got: Vec<(Key, u64, u64)> = rows
            .into_iter()
            .map(|r| (r.key, r.count, r.started))
            .collect();
        // 10.0.0.3 came and went within the period: no flows, one start.
        assert_eq!(
            got,
            [
                (ipk("10.0.0.2"), 5, 0),
                (ipk("10.0.0.1"), 3, 3),
                (ipk("10.0.0.3"), 0, 1)
            ]
        );
        // Next period: nothing started; the empty key is forgotten.
        live.new_period();
        let rows = live.top(KeyKind::SrcIp, 10, LiveOrder::Started);
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.started == 0));
        // By started: the key with new flows first, whatever its size.
        live.add(&f("10.0.0.1", 9));
        let rows = live.top(KeyKind::SrcIp, 1, LiveOrder::Started);
        assert_eq!((rows[0].key.clone(), rows[0].started), (ipk("10.0.0.1"), 1));
        // A key emptied with nothing started is dropped at once.
        live.new_period();
        for p in 0..5 {
            live.remove(&f("10.0.0.2", p));
        }
        assert_eq!(live.map(KeyKind::SrcIp).unwrap().len(), 1);
    }

    #[test]
    fn changes_move_flows_between_keys() {
        let mut live = LiveCounts::new(&[KeyKind::State, KeyKind::SrcIp, KeyKind::Mark]);
        let mut a = flow(tcp("10.0.0.1", 1, "192.0.2.1", 443));
        a.protoinfo = tcp_state(TcpState::SYN_SENT);
        live.add(&a);
        live.new_period();
        let mut b = a.clone();
        b.protoinfo = tcp_state(TcpState::ESTABLISHED);
        b.mark = Some(7);
        live.change(&a, &b);
        let st = |s| Key::State {
            proto: L4Proto::TCP,
            state: conntrack_core::FlowState::Tcp(s),
        };
        assert_eq!(live.count(KeyKind::State, &st(TcpState::SYN_SENT)), 0);
        assert_eq!(live.count(KeyKind::State, &st(TcpState::ESTABLISHED)), 1);
        assert_eq!(live.count(KeyKind::Mark, &Key::Mark(7)), 1);
        assert_eq!(live.count(KeyKind::Mark, &Key::Mark(0)), 0);
        // The source did not change: not counted as started again.
        let src = live.top(KeyKind::SrcIp, 1, LiveOrder::Count);
        assert_eq!((src[0].count, src[0].started), (1, 0));
        let est = live.top(KeyKind::State, 1, LiveOrder::Started);
        assert_eq!(
            (est[0].key.clone(), est[0].started),
            (st(TcpState::ESTABLISHED), 1)
        );
        // A change to nothing the kinds see does nothing.
        let mut c = b.clone();
        c.timeout = Some(5);
        live.change(&b, &c);
        assert_eq!(live.flows(), 1);
        assert_eq!(live.distinct(KeyKind::State), 1);
    }

    #[test]
    fn removing_what_was_never_added_stays_at_zero() {
        let mut live = LiveCounts::new(&[KeyKind::SrcIp, KeyKind::SrcIp]);
        assert_eq!(live.kinds(), [KeyKind::SrcIp]);
        live.remove(&flow(tcp("10.0.0.1", 1, "192.0.2.1", 443)));
        assert_eq!(live.flows(), 0);
        assert!(live.top(KeyKind::SrcIp, 5, LiveOrder::Count).is_empty());
        let t = live.table(KeyKind::SrcIp, 5).unwrap();
        assert_eq!(t.top.len(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any sequence of adds, changes and removes leaves the counts of
        /// a fresh pass over the flows present.
        #[test]
        fn any_history_equals_a_pass_over_what_is_left(
            ops in proptest::collection::vec((0u8..3, 0u32..40, 0u32..40), 0..120)
        ) {
            let mut live = LiveCounts::with_names(&KeyKind::ALL, names());
            let mut present: std::collections::BTreeMap<u32, Flow> = Default::default();
            for (op, i, j) in ops {
                match op {
                    0 => {
                        if let std::collections::btree_map::Entry::Vacant(e) = present.entry(i) {
                            live.add(e.insert(varied(i)));
                        }
                    }
                    1 => {
                        if let Some(f) = present.remove(&i) {
                            live.remove(&f);
                        }
                    }
                    _ => {
                        if let Some(f) = present.get_mut(&i) {
                            // Another flow's state, status, mark and reply
                            // on this one's original tuple.
                            let o = varied(j);
                            let mut g = f.clone();
                            if g.orig.proto == o.orig.proto {
                                g.protoinfo = o.protoinfo;
                            }
                            g.status = o.status;
                            g.mark = o.mark;
                            g.reply.src = if j % 2 == 0 { ip("172.17.0.2") } else { f.orig.dst };
                            live.change(f, &g);
                            *f = g;
                        }
                    }
                }
            }
            assert_agrees(&live, &present.values().collect::<Vec<_>>());
        }
    }
}
