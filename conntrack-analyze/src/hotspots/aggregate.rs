//! The one-pass aggregator and its configuration.

use super::histogram::RemainingHistogram;
use super::key::{Key, KeyKind, NatClass, endpoint_key, ip_key, net_key, pair_key, port_key};
use super::names::NameMap;
use super::rule::{FlowKeys, SRC_NET, SRC_NET_WIDE};
use super::summary::{DnsCounts, HotspotSummary, NatCounts, ProtoNat, StateCount, share};
use super::tally::{Tally, exact_table};
use crate::topk::Occurrence;
use conntrack_core::{FlowLike, FlowState, L4Proto, Status, TimeoutKey};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Exact counting or a bounded top-K per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CountMode {
    /// Every distinct key is counted (memory grows with distinct keys).
    Exact,
    /// Space-Saving with at most this many keys per key kind; counts carry
    /// an error bound. Keys with small domains (protocol, state, NAT class,
    /// names) are always counted exactly.
    TopK(usize),
}

/// Hotspot configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HotspotConfig {
    /// Counting mode.
    pub mode: CountMode,
    /// Rows kept per key in the summary.
    pub top: usize,
    /// Names for addresses.
    pub names: NameMap,
}

/// The keys per kind a bounded pass keeps ([`HotspotConfig::bounded`]).
///
/// Up to this many distinct keys a kind is counted exactly; beyond, the
/// Space-Saving bounds certify every key with more than about `2N / 4096`
/// of `N` flows (0.05 %) and leave the rest out. A kind that fills also
/// gets a 128 KiB doorkeeper in front of its summary, which keeps keys seen
/// once from evicting (`topk::SpaceSaving::with_doorkeeper`; a tracked
/// key's bounds widen by at most one). All kinds together hold about 6 MiB
/// whatever the number of flows.
pub const BOUNDED_KEYS: usize = 4096;

impl HotspotConfig {
    /// Bounded counting ([`CountMode::TopK`] with [`BOUNDED_KEYS`]) and
    /// 10 rows: memory bounded whatever the table, counts exact for
    /// tables with few distinct keys, certified rows otherwise.
    pub fn bounded() -> Self {
        HotspotConfig {
            mode: CountMode::TopK(BOUNDED_KEYS),
            ..HotspotConfig::default()
        }
    }

    /// With this counting mode.
    pub fn with_mode(mut self, mode: CountMode) -> Self {
        self.mode = mode;
        self
    }

    /// With this many rows per key in the summary.
    pub fn with_top(mut self, top: usize) -> Self {
        self.top = top;
        self
    }

    /// With these names for addresses.
    pub fn with_names(mut self, names: NameMap) -> Self {
        self.names = names;
        self
    }
}

impl Default for HotspotConfig {
    fn default() -> Self {
        HotspotConfig {
            mode: CountMode::Exact,
            top: 10,
            names: NameMap::new(),
        }
    }
}

/// The one-pass aggregator. Add flows with [`Hotspots::add`], then take a
/// [`HotspotSummary`].
#[derive(Debug, Clone)]
pub struct Hotspots {
    cfg: HotspotConfig,
    flows: u64,
    // Addresses are counted as u128 (IPv4 as IPv4-mapped IPv6): one
    // integer to hash and compare instead of an enum over byte arrays.
    src: Tally<u128>,
    dst: Tally<u128>,
    dport: Tally<(L4Proto, u16)>,
    dest: Tally<(u128, L4Proto, u16)>,
    nat_service: Tally<(L4Proto, u16)>,
    snat_dest: Tally<(u128, L4Proto, u16)>,
    snat_src: Tally<u128>,
    closing_dest: Tally<(u128, L4Proto, u16)>,
    closing_src: Tally<u128>,
    nat_proto: ProtoNat,
    dns: DnsCounts,
    zone: Tally<u16>,
    mark: Tally<u32>,
    net: Tally<u128>,
    net_wide: Tally<u128>,
    pair: Tally<(u128, u128)>,
    unreplied_src: Tally<u128>,
    proto: [u64; 256],
    states: FxHashMap<(L4Proto, FlowState), (u64, RemainingHistogram)>,
    nat: [u64; 4],
    names: Vec<u64>,
    helper_flows: u64,
    unreplied: u64,
    with_timeout: u64,
}

impl Hotspots {
    /// An aggregator with a configuration.
    pub fn new(cfg: HotspotConfig) -> Self {
        let m = cfg.mode;
        Hotspots {
            flows: 0,
            src: Tally::new(m),
            dst: Tally::new(m),
            dport: Tally::new(m),
            dest: Tally::new(m),
            nat_service: Tally::new(m),
            snat_dest: Tally::new(m),
            snat_src: Tally::new(m),
            closing_dest: Tally::new(m),
            closing_src: Tally::new(m),
            nat_proto: ProtoNat::default(),
            dns: DnsCounts::default(),
            zone: Tally::new(m),
            mark: Tally::new(m),
            net: Tally::new(m),
            net_wide: Tally::new(m),
            pair: Tally::new(m),
            unreplied_src: Tally::new(m),
            proto: [0; 256],
            states: FxHashMap::default(),
            nat: [0; 4],
            names: vec![0; cfg.names.names.len()],
            helper_flows: 0,
            unreplied: 0,
            with_timeout: 0,
            cfg,
        }
    }

    /// Exact counting, default configuration.
    pub fn exact() -> Self {
        Self::new(HotspotConfig::default())
    }

    /// Bounded top-K counting with `k` keys per kind.
    pub fn top_k(k: usize) -> Self {
        Self::new(HotspotConfig {
            mode: CountMode::TopK(k),
            ..HotspotConfig::default()
        })
    }

    /// Flows added so far.
    pub fn flows(&self) -> u64 {
        self.flows
    }

    /// Approximate heap bytes held by the counters. Under
    /// [`CountMode::TopK`] it is bounded by `k` whatever the number of
    /// flows; under [`CountMode::Exact`] it grows with distinct keys.
    pub fn memory_bytes(&self) -> usize {
        let states = self.states.capacity()
            * (std::mem::size_of::<((L4Proto, FlowState), (u64, RemainingHistogram))>()
                + RemainingHistogram::BINS * 8
                + 1);
        self.src.memory_bytes()
            + self.dst.memory_bytes()
            + self.dport.memory_bytes()
            + self.dest.memory_bytes()
            + self.nat_service.memory_bytes()
            + self.snat_dest.memory_bytes()
            + self.snat_src.memory_bytes()
            + self.closing_dest.memory_bytes()
            + self.closing_src.memory_bytes()
            + self.zone.memory_bytes()
            + self.mark.memory_bytes()
            + self.net.memory_bytes()
            + self.net_wide.memory_bytes()
            + self.pair.memory_bytes()
            + self.unreplied_src.memory_bytes()
            + states
            + self.names.capacity() * 8
    }

    /// Counts one flow under every key. No allocation in the steady state
    /// of top-K mode.
    #[inline]
    pub fn add<F: FlowLike + ?Sized>(&mut self, f: &F) {
        let k = FlowKeys::of(f, &self.cfg.names);
        let FlowKeys {
            src,
            dst,
            proto,
            dport,
            state,
            status,
            nat,
            ..
        } = k;
        self.flows += 1;
        // A source seen for the first time makes this flow's pair, and
        // its unreplied, closing and translated source keys, first
        // occurrences too (every flow counts under the source, before
        // them); a new destination does the same for the pair and the
        // destination endpoints. A full bounded table then absorbs them
        // without a look-up or a doorkeeper bit
        // (`topk::SpaceSaving::add_known`). Each derived kind is counted
        // right after the kind it is derived from.
        let src_first = self.src.add_known(src, Occurrence::Unknown);
        let dst_first = self.dst.add_known(dst, Occurrence::Unknown);
        let pair_first = if src_first == Occurrence::First {
            src_first
        } else {
            dst_first
        };
        self.pair.add_known((src, dst), pair_first);
        let replied = status.contains(Status::SEEN_REPLY);
        if !replied && !in_flight(proto, state, f.timeout()) {
            self.unreplied_src.add_known(src, src_first);
        }
        let closing = matches!(
            state,
            FlowState::Tcp(
                conntrack_core::TcpState::FIN_WAIT
                    | conntrack_core::TcpState::CLOSE_WAIT
                    | conntrack_core::TcpState::LAST_ACK
                    | conntrack_core::TcpState::TIME_WAIT
                    | conntrack_core::TcpState::CLOSE
            )
        );
        if closing {
            self.closing_src.add_known(src, src_first);
        }
        let snat = matches!(nat, NatClass::Snat | NatClass::Both);
        if snat {
            self.snat_src.add_known(src, src_first);
        }

        if let Some(p) = dport {
            self.dport.add((proto, p));
        }
        let dest = k.dest();
        let dest_first = self.dest.add_known(dest, dst_first);
        if closing {
            self.closing_dest.add_known(dest, dest_first);
        }
        if snat {
            self.snat_dest.add_known(dest, dest_first);
        }
        self.proto[proto.0 as usize] += 1;
        self.zone.add(k.zone);
        self.mark.add(k.mark);
        self.net.add(k.net);
        self.net_wide.add(k.net_wide);

        let e = self
            .states
            .entry((proto, state))
            .or_insert_with(|| (0, RemainingHistogram::default()));
        e.0 += 1;
        if let Some(t) = f.timeout() {
            e.1.add(t);
            self.with_timeout += 1;
        }
        if !replied {
            self.unreplied += 1;
        }
        if status.intersects(Status::HELPER | Status::EXPECTED) {
            self.helper_flows += 1;
        }
        self.nat[nat as usize] += 1;
        let family = if proto == L4Proto::TCP {
            &mut self.nat_proto.tcp
        } else if proto == L4Proto::UDP || proto == L4Proto::UDPLITE {
            &mut self.nat_proto.udp
        } else {
            &mut self.nat_proto.other
        };
        family.add(nat);
        if nat != NatClass::None
            && let Some(p) = dport
        {
            self.nat_service.add((proto, p));
        }
        if dport == Some(53) && (proto == L4Proto::UDP || proto == L4Proto::TCP) {
            if proto == L4Proto::UDP {
                self.dns.udp += 1;
            } else {
                self.dns.tcp += 1;
            }
            self.dns.nat += u64::from(nat != NatClass::None);
            self.dns.unreplied += u64::from(!replied);
        }
        if let Some(i) = k.name
            && let Some(c) = self.names.get_mut(i as usize)
        {
            *c += 1;
        }
    }

    /// Adds every flow of an iterator.
    pub fn extend<'a, F: FlowLike + 'a, I: IntoIterator<Item = &'a F>>(&mut self, flows: I) {
        for f in flows {
            self.add(f);
        }
    }

    /// The summary so far.
    pub fn summary(&self) -> HotspotSummary {
        let n = self.cfg.top;
        let fl = self.flows;
        let exact_table = |kind: KeyKind, v: Vec<(Key, u64)>| exact_table(kind, v, n, fl);
        let ip = |&a: &u128| ip_key(a);
        let endpoint = |&e: &(u128, L4Proto, u16)| endpoint_key(e);
        let port = |&p: &(L4Proto, u16)| port_key(p);
        let tables = vec![
            self.src.table(KeyKind::SrcIp, fl, n, ip),
            self.dst.table(KeyKind::DstIp, fl, n, ip),
            self.dport.table(KeyKind::DstPort, fl, n, port),
            self.dest.table(KeyKind::Destination, fl, n, endpoint),
            exact_table(
                KeyKind::Proto,
                (0..256)
                    .map(|p| (Key::Proto(L4Proto(p as u8)), self.proto[p]))
                    .collect(),
            ),
            exact_table(
                KeyKind::State,
                self.states
                    .iter()
                    .map(|(&(proto, state), v)| (Key::State { proto, state }, v.0))
                    .collect(),
            ),
            self.zone.table(KeyKind::Zone, fl, n, |&z| Key::Zone(z)),
            self.mark.table(KeyKind::Mark, fl, n, |&m| Key::Mark(m)),
            self.net
                .table(KeyKind::SrcNet, fl, n, |&a| net_key(a, SRC_NET)),
            self.net_wide
                .table(KeyKind::SrcNetWide, fl, n, |&a| net_key(a, SRC_NET_WIDE)),
            self.pair.table(KeyKind::Pair, fl, n, |&p| pair_key(p)),
            exact_table(
                KeyKind::Nat,
                [
                    NatClass::None,
                    NatClass::Snat,
                    NatClass::Dnat,
                    NatClass::Both,
                ]
                .into_iter()
                .map(|c| (Key::Nat(c), self.nat[c as usize]))
                .collect(),
            ),
            exact_table(
                KeyKind::Name,
                self.cfg
                    .names
                    .names
                    .iter()
                    .zip(&self.names)
                    .map(|(name, &c)| (Key::Name(name.clone()), c))
                    .collect(),
            ),
        ];
        let mut states: Vec<StateCount> = self
            .states
            .iter()
            .map(|(&(proto, state), (c, h))| StateCount {
                proto,
                state,
                count: *c,
                share: share(*c, fl),
                remaining_secs: h.clone(),
            })
            .collect();
        states.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (a.proto, a.state).cmp(&(b.proto, b.state)))
        });
        HotspotSummary {
            flows: fl,
            mode: self.cfg.mode,
            tables,
            unreplied_by_source: self.unreplied_src.table(KeyKind::SrcIp, fl, n, ip),
            nat_by_proto: self.nat_proto,
            nat_by_service: self.nat_service.table(KeyKind::DstPort, fl, n, port),
            snat_by_destination: self.snat_dest.table(KeyKind::Destination, fl, n, endpoint),
            snat_by_source: self.snat_src.table(KeyKind::SrcIp, fl, n, ip),
            closing_by_destination: self
                .closing_dest
                .table(KeyKind::Destination, fl, n, endpoint),
            closing_by_source: self.closing_src.table(KeyKind::SrcIp, fl, n, ip),
            dns: self.dns,
            states,
            nat: NatCounts {
                none: self.nat[NatClass::None as usize],
                snat: self.nat[NatClass::Snat as usize],
                dnat: self.nat[NatClass::Dnat as usize],
                both: self.nat[NatClass::Both as usize],
            },
            helper_flows: self.helper_flows,
            unreplied: self.unreplied,
            with_timeout: self.with_timeout,
        }
    }
}

/// How recently an unreplied flow must have seen a packet to count as in
/// flight rather than unanswered.
pub const IN_FLIGHT_SECS: u32 = 2;

/// Whether an unreplied flow may still get its reply: its remaining
/// timeout is within [`IN_FLIGHT_SECS`] of the kernel's default for its
/// state (every packet restarts the timer at the full value), so its last
/// packet is that recent. On a host whose timeout is not the default the
/// age cannot be told and the flow counts as unanswered. Left out of
/// [`HotspotSummary::unreplied_by_source`] only: a loaded server answers
/// late, which is not a source with many unanswered flows.
fn in_flight(proto: L4Proto, state: FlowState, remaining: Option<u32>) -> bool {
    let (Some(key), Some(rem)) = (TimeoutKey::for_state(proto, state), remaining) else {
        return false;
    };
    let full = key.default_secs(None);
    rem <= full && rem + IN_FLIGHT_SECS > full
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hotspots::KeyCount;
    use conntrack_core::testkit::{flow, ip, tcp_state};
    use conntrack_core::{Flow, TcpState};

    /// Unreplied flows whose last packet is under 2 s old (remaining
    /// timeout within 2 s of the kernel's default) are in flight, not
    /// unanswered: a loaded server's late replies name no source. Older
    /// ones, and any whose timeout is not the default, count.
    #[test]
    fn in_flight_unreplied_flows_name_no_source() {
        let udp = |i: u16, remaining: u32| {
            let mut f = flow(conntrack_core::testkit::udp(
                "10.0.0.1",
                10000 + i,
                "10.0.0.2",
                53,
            ));
            f.timeout = Some(remaining);
            f
        };
        let mut h = Hotspots::new(HotspotConfig::default());
        for i in 0..100 {
            h.add(&udp(i, 30 - u32::from(i % 2))); // 30 s and 29 s left: fresh
        }
        let s = h.summary();
        assert_eq!(s.unreplied, 100);
        assert!(
            s.unreplied_by_source.top.is_empty(),
            "{:?}",
            s.unreplied_by_source
        );
        for i in 100..110 {
            h.add(&udp(i, 28)); // 2 s old
        }
        h.add(&udp(200, 45)); // a host whose UDP timeout is not the default
        let s = h.summary();
        assert_eq!(s.unreplied_by_source.top[0].count, 11);
        assert!(in_flight(
            L4Proto::TCP,
            FlowState::Tcp(TcpState::SYN_SENT),
            Some(119)
        ));
        assert!(!in_flight(
            L4Proto::TCP,
            FlowState::Tcp(TcpState::SYN_SENT),
            Some(118)
        ));
        assert!(!in_flight(L4Proto::UDP, FlowState::Unreplied, None));
    }

    fn tcp(src: &str, dst: &str, sport: u16, dport: u16, st: TcpState, t: u32) -> Flow {
        let mut f = flow(conntrack_core::testkit::tcp(src, sport, dst, dport));
        f.status |= Status::SEEN_REPLY;
        f.protoinfo = tcp_state(st);
        f.timeout = Some(t);
        f
    }

    #[test]
    fn counts_every_key_hand_checked() {
        let mut names = NameMap::new();
        names.insert_str("10.0.1.0/24", "team-a").unwrap();
        let mut h = Hotspots::new(HotspotConfig {
            names,
            ..HotspotConfig::default()
        });
        h.add(&tcp(
            "10.0.1.5",
            "192.0.2.1",
            1000,
            443,
            TcpState::ESTABLISHED,
            400000,
        ));
        h.add(&tcp(
            "10.0.1.5",
            "192.0.2.1",
            1001,
            443,
            TcpState::TIME_WAIT,
            100,
        ));
        h.add(&tcp(
            "10.0.2.7",
            "192.0.2.2",
            1002,
            80,
            TcpState::TIME_WAIT,
            50,
        ));
        let mut masq = tcp(
            "172.17.0.2",
            "192.0.2.1",
            1003,
            443,
            TcpState::ESTABLISHED,
            10,
        );
        masq.reply.dst = ip("198.51.100.7"); // masqueraded
        masq.mark = Some(7);
        masq.zone = Some(3);
        h.add(&masq);
        let s = h.summary();
        assert_eq!(s.flows, 4);
        let t = |k| s.table(k).unwrap();
        assert_eq!(t(KeyKind::SrcIp).top[0].key, Key::Ip(ip("10.0.1.5")));
        assert_eq!(t(KeyKind::SrcIp).top[0].count, 2);
        assert_eq!(t(KeyKind::SrcIp).distinct, Some(3));
        assert_eq!(t(KeyKind::DstIp).top[0].count, 3);
        assert_eq!(
            t(KeyKind::DstPort).top[0],
            KeyCount {
                key: Key::Port {
                    proto: L4Proto::TCP,
                    port: 443
                },
                count: 3,
                error: 0,
                share: 0.75
            }
        );
        assert_eq!(t(KeyKind::Proto).top.len(), 1);
        assert_eq!(
            t(KeyKind::SrcNet).top[0].key,
            Key::Net {
                addr: ip("10.0.1.0"),
                prefix: 24
            }
        );
        assert_eq!(
            t(KeyKind::SrcNetWide).top[0].key,
            Key::Net {
                addr: ip("10.0.0.0"),
                prefix: 16
            }
        );
        assert_eq!(t(KeyKind::SrcNetWide).top[0].count, 3);
        assert_eq!(t(KeyKind::Pair).top[0].count, 2);
        assert_eq!(
            t(KeyKind::Zone).top[0],
            KeyCount {
                key: Key::Zone(0),
                count: 3,
                error: 0,
                share: 0.75
            }
        );
        assert_eq!(t(KeyKind::Mark).top[1].key, Key::Mark(7));
        assert_eq!(
            s.nat,
            NatCounts {
                none: 3,
                snat: 1,
                dnat: 0,
                both: 0
            }
        );
        assert_eq!(s.nat_share(), 0.25);
        assert_eq!(t(KeyKind::Name).top[0].count, 2);
        assert_eq!(t(KeyKind::Name).counted, 2);
        let tw = s
            .state(L4Proto::TCP, FlowState::Tcp(TcpState::TIME_WAIT))
            .unwrap();
        assert_eq!(tw.count, 2);
        assert_eq!(tw.share, 0.5);
        assert_eq!(tw.remaining_secs.total(), 2);
        assert_eq!(tw.remaining_secs.count_below(64.0), 1.0);
        assert_eq!(s.unreplied, 0);
        assert_eq!(s.with_timeout, 4);
    }

    #[test]
    fn top_k_mode_reports_bounds() {
        let mut h = Hotspots::top_k(4);
        for i in 0..100u16 {
            let src = format!("10.0.0.{}", if i % 2 == 0 { 1 } else { (i % 50) as u8 + 2 });
            h.add(&tcp(
                &src,
                "192.0.2.1",
                1000 + i,
                443,
                TcpState::ESTABLISHED,
                10,
            ));
        }
        let s = h.summary();
        let src = s.table(KeyKind::SrcIp).unwrap();
        assert!(!src.exact);
        assert!(src.error_bound > 0 && src.error_bound <= 25);
        assert_eq!(src.top[0].key, Key::Ip(ip("10.0.0.1")));
        assert!(src.top[0].count >= 50 && src.top[0].count - src.top[0].error <= 50);
        assert_eq!(src.counted, 100);
        // Small-domain keys stay exact.
        assert!(s.table(KeyKind::Proto).unwrap().exact);
        assert!(s.table(KeyKind::DstPort).unwrap().exact);
    }

    #[test]
    fn names_fall_back_to_reply_source_for_dnat() {
        let mut names = NameMap::new();
        names.insert_str("172.17.0.2", "web").unwrap();
        let mut h = Hotspots::new(HotspotConfig {
            names,
            ..Default::default()
        });
        let mut f = tcp(
            "203.0.113.9",
            "198.51.100.7",
            5555,
            8080,
            TcpState::ESTABLISHED,
            5,
        );
        f.reply.src = ip("172.17.0.2"); // DNAT to the container
        h.add(&f);
        let s = h.summary();
        assert_eq!(
            s.table(KeyKind::Name).unwrap().top[0].key,
            Key::Name("web".into())
        );
        assert_eq!(s.nat.dnat, 1);
    }

    #[test]
    fn empty_summary_has_no_nan() {
        let s = Hotspots::exact().summary();
        assert_eq!(s.flows, 0);
        assert_eq!(s.nat_share(), 0.0);
        assert!(s.tables.iter().all(|t| t.top.is_empty()));
        let _ = s.to_string();
    }
}
