//! Hotspots: one pass over flows (owned [`Flow`](conntrack_core::Flow)s or
//! borrowed views, anything [`FlowLike`]) counting them by many keys at
//! once, exactly or with a bounded-memory top-K, plus the state
//! distribution, remaining-timeout histograms per state and UNREPLIED flows
//! by source.
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

use crate::topk::SpaceSaving;
use conntrack_core::{FlowLike, FlowState, L4Proto, Status, nat_of};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What flows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Original source address.
    SrcIp,
    /// Original destination address.
    DstIp,
    /// Protocol and original destination port.
    DstPort,
    /// Original destination endpoint: protocol, address and port (the
    /// service a flow goes to; for ICMP and other port-less protocols the
    /// port is 0).
    Destination,
    /// Layer 4 protocol.
    Proto,
    /// Protocol and state (TCP state; UDP and others: replied/unreplied).
    State,
    /// Conntrack zone (0 when none).
    Zone,
    /// Connection mark (0 when none).
    Mark,
    /// Source /24 (IPv6: /64).
    SrcNet,
    /// Source /16 (IPv6: /48).
    SrcNetWide,
    /// (source, destination) address pair.
    Pair,
    /// Translated or not, and how.
    Nat,
    /// A caller-supplied name for the address (see [`NameMap`]).
    Name,
}

impl KeyKind {
    /// Every kind, in the order summaries list them.
    pub const ALL: [KeyKind; 13] = [
        KeyKind::SrcIp,
        KeyKind::DstIp,
        KeyKind::DstPort,
        KeyKind::Destination,
        KeyKind::Proto,
        KeyKind::State,
        KeyKind::Zone,
        KeyKind::Mark,
        KeyKind::SrcNet,
        KeyKind::SrcNetWide,
        KeyKind::Pair,
        KeyKind::Nat,
        KeyKind::Name,
    ];

    /// The snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            KeyKind::SrcIp => "src_ip",
            KeyKind::DstIp => "dst_ip",
            KeyKind::DstPort => "dst_port",
            KeyKind::Destination => "destination",
            KeyKind::Proto => "proto",
            KeyKind::State => "state",
            KeyKind::Zone => "zone",
            KeyKind::Mark => "mark",
            KeyKind::SrcNet => "src_net",
            KeyKind::SrcNetWide => "src_net_wide",
            KeyKind::Pair => "pair",
            KeyKind::Nat => "nat",
            KeyKind::Name => "name",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a flow is translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatClass {
    /// Not translated.
    None,
    /// Source translated (masquerade, SNAT).
    Snat,
    /// Destination translated (DNAT, port forward, service VIP).
    Dnat,
    /// Both.
    Both,
}

impl NatClass {
    fn of(n: conntrack_core::Nat) -> NatClass {
        match (n.snat, n.dnat) {
            (false, false) => NatClass::None,
            (true, false) => NatClass::Snat,
            (false, true) => NatClass::Dnat,
            (true, true) => NatClass::Both,
        }
    }
}

/// One key value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Key {
    /// An address.
    Ip(IpAddr),
    /// A protocol and port.
    Port {
        /// Protocol.
        proto: L4Proto,
        /// Port.
        port: u16,
    },
    /// A protocol, address and port.
    Endpoint {
        /// Protocol.
        proto: L4Proto,
        /// Address.
        addr: IpAddr,
        /// Port (0 for port-less protocols).
        port: u16,
    },
    /// A protocol.
    Proto(L4Proto),
    /// A protocol and state.
    State {
        /// Protocol.
        proto: L4Proto,
        /// State.
        state: FlowState,
    },
    /// A zone.
    Zone(u16),
    /// A mark.
    Mark(u32),
    /// A network prefix.
    Net {
        /// The masked address.
        addr: IpAddr,
        /// Prefix length.
        prefix: u8,
    },
    /// An address pair.
    Pair {
        /// Source.
        src: IpAddr,
        /// Destination.
        dst: IpAddr,
    },
    /// A NAT class.
    Nat(NatClass),
    /// A caller-supplied name.
    Name(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Ip(a) => write!(f, "{a}"),
            Key::Port { proto, port } => write!(f, "{proto}/{port}"),
            Key::Endpoint {
                proto,
                addr: IpAddr::V6(a),
                port,
            } => write!(f, "{proto} [{a}]:{port}"),
            Key::Endpoint { proto, addr, port } => write!(f, "{proto} {addr}:{port}"),
            Key::Proto(p) => write!(f, "{p}"),
            Key::State { proto, state } => write!(f, "{proto} {state}"),
            Key::Zone(z) => write!(f, "zone {z}"),
            Key::Mark(m) => write!(f, "mark {m:#x}"),
            Key::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Key::Pair { src, dst } => write!(f, "{src} -> {dst}"),
            Key::Nat(n) => f.write_str(match n {
                NatClass::None => "no NAT",
                NatClass::Snat => "SNAT",
                NatClass::Dnat => "DNAT",
                NatClass::Both => "SNAT+DNAT",
            }),
            Key::Name(n) => f.write_str(n),
        }
    }
}

/// Masks an address to a prefix length (longer lengths keep it whole).
///
/// ```
/// use conntrack_analyze::hotspots::mask;
/// assert_eq!(mask("10.1.2.3".parse().unwrap(), 24), "10.1.2.0".parse::<std::net::IpAddr>().unwrap());
/// assert_eq!(mask("2001:db8::1".parse().unwrap(), 48), "2001:db8::".parse::<std::net::IpAddr>().unwrap());
/// ```
pub fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let p = prefix.min(32) as u32;
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let p = prefix.min(128) as u32;
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// An address as one integer: IPv4 as IPv4-mapped IPv6.
#[inline]
fn addr_key(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => 0xffff_0000_0000 | u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The inverse of [`addr_key`] (an IPv6 flow with an IPv4-mapped address,
/// which is not valid on the wire, would be shown as IPv4).
fn addr_of(k: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(k);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

fn net_key(k: u128, v4: u8, v6: u8) -> Key {
    let addr = addr_of(k);
    let prefix = if addr.is_ipv4() { v4 } else { v6 };
    Key::Net { addr, prefix }
}

/// A map from addresses or CIDR prefixes to names (e.g. Docker bridge
/// addresses to container names), longest prefix wins. A flow is named
/// after its original source, else the address its reply comes from (the
/// real destination behind DNAT), else its original destination.
///
/// ```
/// use conntrack_analyze::hotspots::NameMap;
/// let mut m = NameMap::new();
/// m.insert_str("172.17.0.0/16", "docker0").unwrap();
/// m.insert_str("172.17.0.2", "web-1").unwrap();
/// assert_eq!(m.lookup("172.17.0.2".parse().unwrap()), Some("web-1"));
/// assert_eq!(m.lookup("172.17.0.9".parse().unwrap()), Some("docker0"));
/// assert_eq!(m.lookup("10.0.0.1".parse().unwrap()), None);
/// assert!(m.insert_str("10.0.0.0/33", "bad").is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct NameMap {
    names: Vec<String>,
    /// Per (is_v6, prefix length), longest first.
    levels: Vec<(bool, u8, FxHashMap<IpAddr, u32>)>,
}

/// A CIDR or address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an address or CIDR prefix: {0:?}")]
pub struct BadCidr(pub String);

impl NameMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Maps `addr/prefix` to `name` (prefix clamped to the family's width).
    pub fn insert(&mut self, addr: IpAddr, prefix: u8, name: &str) {
        let v6 = addr.is_ipv6();
        let prefix = prefix.min(if v6 { 128 } else { 32 });
        let idx = match self.names.iter().position(|n| n == name) {
            Some(i) => i as u32,
            None => {
                self.names.push(name.to_owned());
                (self.names.len() - 1) as u32
            }
        };
        let lvl = match self
            .levels
            .iter()
            .position(|(f, p, _)| *f == v6 && *p == prefix)
        {
            Some(i) => i,
            None => {
                self.levels.push((v6, prefix, FxHashMap::default()));
                self.levels.sort_by_key(|l| std::cmp::Reverse(l.1));
                self.levels
                    .iter()
                    .position(|(f, p, _)| *f == v6 && *p == prefix)
                    .unwrap_or(0)
            }
        };
        self.levels[lvl].2.insert(mask(addr, prefix), idx);
    }

    /// Parses `"a.b.c.d"`, `"a.b.c.d/n"` or the IPv6 forms and inserts.
    pub fn insert_str(&mut self, cidr: &str, name: &str) -> Result<(), BadCidr> {
        let bad = || BadCidr(cidr.chars().take(80).collect());
        let (a, p) = match cidr.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (cidr.trim(), None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let width = if addr.is_ipv6() { 128 } else { 32 };
        let p = p.unwrap_or(width);
        if p > width {
            return Err(bad());
        }
        self.insert(addr, p, name);
        Ok(())
    }

    fn lookup_idx(&self, addr: IpAddr) -> Option<u32> {
        let v6 = addr.is_ipv6();
        self.levels
            .iter()
            .filter(|(f, _, _)| *f == v6)
            .find_map(|(_, p, m)| m.get(&mask(addr, *p)).copied())
    }

    /// The name of an address.
    pub fn lookup(&self, addr: IpAddr) -> Option<&str> {
        self.lookup_idx(addr)
            .and_then(|i| self.names.get(i as usize))
            .map(String::as_str)
    }
}

/// Exact counting or a bounded top-K per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct HotspotConfig {
    /// Counting mode.
    pub mode: CountMode,
    /// Rows kept per key in the summary.
    pub top: usize,
    /// Names for addresses.
    pub names: NameMap,
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

/// An exactly counted key table: keys with a zero count dropped (counts
/// kept incrementally can return to zero), sorted by count then key, the
/// first `n` with their share of `flows`.
fn exact_table(kind: KeyKind, mut v: Vec<(Key, u64)>, n: usize, flows: u64) -> KeyTable {
    v.retain(|x| x.1 > 0);
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    KeyTable {
        kind,
        counted: v.iter().map(|x| x.1).sum(),
        distinct: Some(v.len() as u64),
        exact: true,
        error_bound: 0,
        top: v
            .into_iter()
            .take(n)
            .map(|(key, count)| KeyCount {
                key,
                count,
                error: 0,
                share: if flows == 0 {
                    0.0
                } else {
                    count as f64 / flows as f64
                },
            })
            .collect(),
    }
}

/// Counts of one key kind, exact or bounded.
#[derive(Debug, Clone)]
enum Tally<K> {
    Exact(FxHashMap<K, u64>),
    Bounded(SpaceSaving<K>),
}

impl<K: Hash + Eq + Clone> Tally<K> {
    fn new(mode: CountMode) -> Self {
        match mode {
            CountMode::Exact => Tally::Exact(FxHashMap::default()),
            CountMode::TopK(k) => Tally::Bounded(SpaceSaving::new(k)),
        }
    }

    #[inline]
    fn add(&mut self, k: K) {
        match self {
            Tally::Exact(m) => *m.entry(k).or_insert(0) += 1,
            Tally::Bounded(s) => s.add(k),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            Tally::Exact(m) => m.capacity() * (std::mem::size_of::<K>() + 8 + 1),
            Tally::Bounded(s) => s.memory_bytes(),
        }
    }

    fn table(&self, kind: KeyKind, flows: u64, n: usize, conv: impl Fn(&K) -> Key) -> KeyTable {
        let share = |c: u64| {
            if flows == 0 {
                0.0
            } else {
                c as f64 / flows as f64
            }
        };
        match self {
            Tally::Exact(m) => exact_table(
                kind,
                m.iter().map(|(k, &c)| (conv(k), c)).collect(),
                n,
                flows,
            ),
            Tally::Bounded(s) => {
                let bound = s.error_bound();
                KeyTable {
                    kind,
                    counted: s.items(),
                    distinct: if bound == 0 {
                        Some(s.len() as u64)
                    } else {
                        None
                    },
                    exact: bound == 0,
                    error_bound: bound,
                    top: s
                        .top(n)
                        .into_iter()
                        .map(|(k, count, error)| KeyCount {
                            key: conv(&k),
                            count,
                            error,
                            share: share(count),
                        })
                        .collect(),
                }
            }
        }
    }
}

/// Remaining-timeout histogram: exact one-second bins below 128 s, then
/// 64 bins per power of two (at most 1.6% relative bin width: 4096 s
/// around the 5-day ESTABLISHED timeout), up to `u32::MAX` seconds.
/// Memory is fixed (1728 bins); it serialises sparsely as
/// `[[bin start, count], ...]`.
///
/// ```
/// use conntrack_analyze::hotspots::RemainingHistogram;
/// let mut h = RemainingHistogram::default();
/// h.add(3);
/// h.add(100);
/// h.add(431_999);
/// assert_eq!(h.total(), 3);
/// assert_eq!(h.count_below(4.0), 1.0);
/// assert_eq!(h.bin_range(RemainingHistogram::bin(100)), (100, 101));
/// assert_eq!(h.bin_range(RemainingHistogram::bin(431_999)), (430_080, 434_176));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "SparseBins", from = "SparseBins")]
pub struct RemainingHistogram {
    counts: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct SparseBins(Vec<(u64, u64)>);

impl From<RemainingHistogram> for SparseBins {
    fn from(h: RemainingHistogram) -> Self {
        SparseBins(h.bins().map(|(lo, _, c)| (lo, c)).collect())
    }
}

impl From<SparseBins> for RemainingHistogram {
    fn from(b: SparseBins) -> Self {
        let mut h = RemainingHistogram::default();
        for (lo, c) in b.0 {
            if let Ok(v) = u32::try_from(lo)
                && let Some(x) = h.counts.get_mut(Self::bin(v))
            {
                *x = x.saturating_add(c);
            }
        }
        h
    }
}

impl Default for RemainingHistogram {
    fn default() -> Self {
        RemainingHistogram {
            counts: vec![0; Self::BINS],
        }
    }
}

const SUB_BITS: u32 = 6;
const EXACT: u32 = 1 << (SUB_BITS + 1);

impl RemainingHistogram {
    /// Number of bins.
    pub const BINS: usize = EXACT as usize + (31 - SUB_BITS as usize) * (1 << SUB_BITS);

    /// The bin of a value in seconds.
    pub fn bin(v: u32) -> usize {
        if v < EXACT {
            return v as usize;
        }
        let e = 31 - v.leading_zeros(); // SUB_BITS + 1 ..= 31
        let sub = (v >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1);
        (EXACT + (e - SUB_BITS - 1) * (1 << SUB_BITS) + sub) as usize
    }

    /// The half-open range `[lo, hi)` of seconds a bin covers (`hi` is a
    /// u64 so that the last bin's end is representable).
    pub fn bin_range(&self, i: usize) -> (u64, u64) {
        Self::range_of(i)
    }

    fn range_of(i: usize) -> (u64, u64) {
        let i = i as u64;
        if i < EXACT as u64 {
            return (i, i + 1);
        }
        let j = i - EXACT as u64;
        let e = j / (1 << SUB_BITS) + SUB_BITS as u64 + 1;
        let sub = j % (1 << SUB_BITS);
        let w = 1u64 << (e - SUB_BITS as u64);
        let lo = (1u64 << e) + sub * w;
        (lo, lo + w)
    }

    /// Counts one entry with `v` seconds remaining.
    #[inline]
    pub fn add(&mut self, v: u32) {
        if let Some(c) = self.counts.get_mut(Self::bin(v)) {
            *c += 1;
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &RemainingHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Entries counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Non-empty bins as `(lo, hi, count)`.
    pub fn bins(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| {
                let (lo, hi) = Self::range_of(i);
                (lo, hi, c)
            })
    }

    /// Entries with less than `secs` remaining, a value `v` taken to cover
    /// `[v, v + 1)` and bins interpolated linearly.
    pub fn count_below(&self, secs: f64) -> f64 {
        if secs.is_nan() || secs <= 0.0 {
            return 0.0;
        }
        let mut acc = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let (lo, hi) = Self::range_of(i);
            let (lo, hi) = (lo as f64, hi as f64);
            if hi <= secs {
                acc += c as f64;
            } else if lo < secs {
                acc += c as f64 * (secs - lo) / (hi - lo);
            }
        }
        acc
    }

    /// Approximate mean remaining seconds (bin midpoints); `None` when
    /// empty.
    pub fn mean(&self) -> Option<f64> {
        let t = self.total();
        if t == 0 {
            return None;
        }
        let s: f64 = self
            .bins()
            .map(|(lo, hi, c)| c as f64 * (lo as f64 + hi as f64) / 2.0)
            .sum();
        Some(s / t as f64)
    }
}

/// A row of a key table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyCount {
    /// The key.
    pub key: Key,
    /// Flows counted for it (an upper bound under top-K).
    pub count: u64,
    /// How much of `count` may be overestimate (0 when exact).
    pub error: u64,
    /// `count` over all flows seen, 0..=1.
    pub share: f64,
}

/// The heaviest keys of one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyTable {
    /// Which key.
    pub kind: KeyKind,
    /// Flows counted in this table (all flows, or for names: the named
    /// ones, for unreplied-by-source: the unreplied ones).
    pub counted: u64,
    /// Distinct keys, when known exactly.
    pub distinct: Option<u64>,
    /// Whether every count is exact.
    pub exact: bool,
    /// Under top-K: no count is overestimated by more than this, and no key
    /// missing from the table has more flows than this.
    pub error_bound: u64,
    /// The heaviest keys, largest first.
    pub top: Vec<KeyCount>,
}

/// Flows in one protocol state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateCount {
    /// Protocol.
    pub proto: L4Proto,
    /// State.
    pub state: FlowState,
    /// Flows.
    pub count: u64,
    /// Share of all flows, 0..=1.
    pub share: f64,
    /// Remaining timeouts of the flows in this state that carried one.
    pub remaining: RemainingHistogram,
}

/// Flows by translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NatCounts {
    /// Untranslated.
    pub none: u64,
    /// Source only.
    pub snat: u64,
    /// Destination only.
    pub dnat: u64,
    /// Both.
    pub both: u64,
}

/// Flows by translation per protocol family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProtoNat {
    /// TCP flows.
    pub tcp: NatCounts,
    /// UDP (and UDP-Lite) flows.
    pub udp: NatCounts,
    /// Every other protocol.
    pub other: NatCounts,
}

impl NatCounts {
    /// All flows counted.
    pub fn total(&self) -> u64 {
        self.none + self.snat + self.dnat + self.both
    }

    /// Flows with any translation.
    pub fn translated(&self) -> u64 {
        self.snat + self.dnat + self.both
    }

    fn add(&mut self, c: NatClass) {
        match c {
            NatClass::None => self.none += 1,
            NatClass::Snat => self.snat += 1,
            NatClass::Dnat => self.dnat += 1,
            NatClass::Both => self.both += 1,
        }
    }
}

/// DNS flows (destination port 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DnsCounts {
    /// UDP flows to port 53.
    pub udp: u64,
    /// TCP flows to port 53.
    pub tcp: u64,
    /// Of those, translated (a DNS service behind DNAT, such as
    /// Kubernetes' kube-dns ClusterIP, or queries masqueraded out).
    pub nat: u64,
    /// Of those, never answered.
    pub unreplied: u64,
}

fn empty_table() -> KeyTable {
    KeyTable {
        kind: KeyKind::DstPort,
        counted: 0,
        distinct: Some(0),
        exact: true,
        error_bound: 0,
        top: Vec::new(),
    }
}

/// The result of a hotspot pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotspotSummary {
    /// Flows seen.
    pub flows: u64,
    /// How keys were counted.
    pub mode: CountMode,
    /// One table per [`KeyKind`], in [`KeyKind::ALL`] order.
    pub tables: Vec<KeyTable>,
    /// Sources of flows without a reply (`IPS_SEEN_REPLY` clear): scan
    /// suspects, or clients of a dead backend.
    pub unreplied_by_source: KeyTable,
    /// Every (protocol, state) seen, largest first, with remaining-timeout
    /// histograms.
    pub states: Vec<StateCount>,
    /// Flows by translation.
    pub nat: NatCounts,
    /// Flows by translation for TCP, UDP and every other protocol.
    #[serde(default)]
    pub nat_by_proto: ProtoNat,
    /// Translated flows by protocol and destination port (which services
    /// are NAT'd: NAT needs conntrack, so these can never be NOTRACKed).
    #[serde(default = "empty_table")]
    pub nat_by_service: KeyTable,
    /// Source-translated flows by destination endpoint: many new
    /// connections to one destination through one SNAT address compete
    /// for the same source ports.
    #[serde(default = "empty_table")]
    pub snat_by_destination: KeyTable,
    /// Source-translated flows by original source address: the hosts or
    /// containers that share the translated address.
    #[serde(default = "empty_table")]
    pub snat_by_source: KeyTable,
    /// TCP flows in a closing state (FIN_WAIT, CLOSE_WAIT, LAST_ACK,
    /// TIME_WAIT, CLOSE) by destination endpoint: where short-lived
    /// connections go.
    #[serde(default = "empty_table")]
    pub closing_by_destination: KeyTable,
    /// The same by original source address: who opens them.
    #[serde(default = "empty_table")]
    pub closing_by_source: KeyTable,
    /// DNS flows (destination port 53, UDP or TCP).
    #[serde(default)]
    pub dns: DnsCounts,
    /// Flows with a helper attached or created from an expectation
    /// (`IPS_HELPER` or `IPS_EXPECTED`).
    pub helper_flows: u64,
    /// Flows without a reply.
    pub unreplied: u64,
    /// Flows that carried a remaining timeout.
    pub with_timeout: u64,
}

impl HotspotSummary {
    /// The table of one key kind.
    pub fn table(&self, kind: KeyKind) -> Option<&KeyTable> {
        self.tables.iter().find(|t| t.kind == kind)
    }

    /// Flows in a state of any protocol with this TCP state, or in the
    /// given (protocol, state).
    pub fn state_count(&self, proto: L4Proto, state: FlowState) -> u64 {
        self.states
            .iter()
            .filter(|s| s.proto == proto && s.state == state)
            .map(|s| s.count)
            .sum()
    }

    /// The state record for (protocol, state).
    pub fn state(&self, proto: L4Proto, state: FlowState) -> Option<&StateCount> {
        self.states
            .iter()
            .find(|s| s.proto == proto && s.state == state)
    }

    /// Share of all flows that are translated.
    pub fn nat_share(&self) -> f64 {
        if self.flows == 0 {
            0.0
        } else {
            (self.nat.snat + self.nat.dnat + self.nat.both) as f64 / self.flows as f64
        }
    }
}

impl fmt::Display for HotspotSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} flows", self.flows)?;
        writeln!(f, "states:")?;
        for s in &self.states {
            writeln!(
                f,
                "  {:<6} {:<12} {:>10} {:>6.1}%",
                s.proto.to_string(),
                s.state.to_string(),
                s.count,
                s.share * 100.0
            )?;
        }
        for t in self.tables.iter().chain([&self.unreplied_by_source]) {
            let title = if std::ptr::eq(t, &self.unreplied_by_source) {
                "unreplied by source".to_string()
            } else {
                t.kind.to_string()
            };
            write!(f, "{title}")?;
            if !t.exact {
                write!(f, " (top-K, error <= {})", t.error_bound)?;
            }
            writeln!(f, ":")?;
            for r in &t.top {
                write!(
                    f,
                    "  {:<40} {:>10} {:>6.1}%",
                    r.key.to_string(),
                    r.count,
                    r.share * 100.0
                )?;
                if r.error > 0 {
                    write!(f, "  (+-{})", r.error)?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
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
        let orig = f.orig();
        let status = f.status();
        let proto = orig.proto;
        self.flows += 1;
        let (src, dst) = (addr_key(orig.src), addr_key(orig.dst));
        self.src.add(src);
        self.dst.add(dst);
        let dport = orig.dst_port();
        if let Some(p) = dport {
            self.dport.add((proto, p));
        }
        let dest = (dst, proto, dport.unwrap_or(0));
        self.dest.add(dest);
        self.proto[proto.0 as usize] += 1;
        self.zone.add(f.zone().unwrap_or(0));
        self.mark.add(f.mark().unwrap_or(0));
        let (n1, n2) = if orig.src.is_ipv4() {
            (24, 16)
        } else {
            (64, 48)
        };
        self.net.add(addr_key(mask(orig.src, n1)));
        self.net_wide.add(addr_key(mask(orig.src, n2)));
        self.pair.add((src, dst));

        let state = conntrack_core::flow_state(f.protoinfo().as_ref(), status);
        let e = self
            .states
            .entry((proto, state))
            .or_insert_with(|| (0, RemainingHistogram::default()));
        e.0 += 1;
        if let Some(t) = f.timeout() {
            e.1.add(t);
            self.with_timeout += 1;
        }
        if !status.contains(Status::SEEN_REPLY) {
            self.unreplied += 1;
            self.unreplied_src.add(src);
        }
        if status.intersects(Status::HELPER | Status::EXPECTED) {
            self.helper_flows += 1;
        }
        let reply = f.reply();
        let nat = NatClass::of(nat_of(&orig, &reply, status));
        self.nat[nat as usize] += 1;
        let family = if proto == L4Proto::TCP {
            &mut self.nat_proto.tcp
        } else if proto == L4Proto::UDP || proto == L4Proto::UDPLITE {
            &mut self.nat_proto.udp
        } else {
            &mut self.nat_proto.other
        };
        family.add(nat);
        if nat != NatClass::None {
            if let Some(p) = dport {
                self.nat_service.add((proto, p));
            }
            if matches!(nat, NatClass::Snat | NatClass::Both) {
                self.snat_dest.add(dest);
                self.snat_src.add(src);
            }
        }
        if let FlowState::Tcp(t) = state
            && matches!(
                t,
                conntrack_core::TcpState::FIN_WAIT
                    | conntrack_core::TcpState::CLOSE_WAIT
                    | conntrack_core::TcpState::LAST_ACK
                    | conntrack_core::TcpState::TIME_WAIT
                    | conntrack_core::TcpState::CLOSE
            )
        {
            self.closing_dest.add(dest);
            self.closing_src.add(src);
        }
        if dport == Some(53) && (proto == L4Proto::UDP || proto == L4Proto::TCP) {
            if proto == L4Proto::UDP {
                self.dns.udp += 1;
            } else {
                self.dns.tcp += 1;
            }
            self.dns.nat += u64::from(nat != NatClass::None);
            self.dns.unreplied += u64::from(!status.contains(Status::SEEN_REPLY));
        }
        if !self.cfg.names.is_empty() {
            let n = &self.cfg.names;
            if let Some(i) = n
                .lookup_idx(orig.src)
                .or_else(|| n.lookup_idx(reply.src))
                .or_else(|| n.lookup_idx(orig.dst))
                && let Some(c) = self.names.get_mut(i as usize)
            {
                *c += 1;
            }
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
        let share = |c: u64| if fl == 0 { 0.0 } else { c as f64 / fl as f64 };
        let exact_table = |kind: KeyKind, v: Vec<(Key, u64)>| exact_table(kind, v, n, fl);
        let ip = |a: &u128| Key::Ip(addr_of(*a));
        let endpoint = |&(a, proto, port): &(u128, L4Proto, u16)| Key::Endpoint {
            proto,
            addr: addr_of(a),
            port,
        };
        let port_key = |&(proto, port): &(L4Proto, u16)| Key::Port { proto, port };
        let tables = vec![
            self.src.table(KeyKind::SrcIp, fl, n, ip),
            self.dst.table(KeyKind::DstIp, fl, n, ip),
            self.dport.table(KeyKind::DstPort, fl, n, port_key),
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
                .table(KeyKind::SrcNet, fl, n, |&a| net_key(a, 24, 64)),
            self.net_wide
                .table(KeyKind::SrcNetWide, fl, n, |&a| net_key(a, 16, 48)),
            self.pair.table(KeyKind::Pair, fl, n, |&(s, d)| Key::Pair {
                src: addr_of(s),
                dst: addr_of(d),
            }),
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
                share: share(*c),
                remaining: h.clone(),
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
            nat_by_service: self.nat_service.table(KeyKind::DstPort, fl, n, port_key),
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

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_core::{Flow, L4Tuple, ProtoInfo, TcpInfo, TcpState, Tuple};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn tcp(src: &str, dst: &str, sport: u16, dport: u16, st: TcpState, t: u32) -> Flow {
        let o = Tuple::new(
            ip(src),
            ip(dst),
            L4Proto::TCP,
            L4Tuple::Ports {
                src: sport,
                dst: dport,
            },
        );
        let r = Tuple::new(
            ip(dst),
            ip(src),
            L4Proto::TCP,
            L4Tuple::Ports {
                src: dport,
                dst: sport,
            },
        );
        let mut f = Flow::new(o, r, Status::CONFIRMED | Status::SEEN_REPLY);
        f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo {
            state: st,
            ..Default::default()
        }));
        f.timeout = Some(t);
        f
    }

    #[test]
    fn histogram_serialises_sparsely_and_round_trips() {
        let mut h = RemainingHistogram::default();
        for v in [0, 5, 5, 300, 431_999, u32::MAX] {
            h.add(v);
        }
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(j, "[[0,1],[5,2],[300,1],[430080,1],[4261412864,1]]"); // 2^31 + 63 x 2^25
        let back: RemainingHistogram = serde_json::from_str(&j).unwrap();
        assert_eq!(back, h);
        // Hostile input: bins beyond u32 are dropped, counts saturate.
        let odd: RemainingHistogram =
            serde_json::from_str("[[99999999999,5],[7,18446744073709551615],[7,9]]").unwrap();
        assert_eq!(odd.total(), u64::MAX);
    }

    #[test]
    fn histogram_bins_are_contiguous_and_cover_u32() {
        let mut prev_hi = 0;
        for i in 0..RemainingHistogram::BINS {
            let (lo, hi) = RemainingHistogram::range_of(i);
            assert_eq!(lo, prev_hi, "bin {i}");
            assert!(hi > lo);
            prev_hi = hi;
            assert_eq!(RemainingHistogram::bin(lo as u32), i);
            assert_eq!(RemainingHistogram::bin((hi - 1) as u32), i);
        }
        assert_eq!(prev_hi, 1u64 << 32);
        assert_eq!(
            RemainingHistogram::bin(u32::MAX),
            RemainingHistogram::BINS - 1
        );
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
        assert_eq!(tw.remaining.total(), 2);
        assert_eq!(tw.remaining.count_below(64.0), 1.0);
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
