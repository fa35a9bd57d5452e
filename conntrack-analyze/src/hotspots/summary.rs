//! What a hotspot pass reports: key tables, states, NAT and DNS counts.

use super::aggregate::CountMode;
use super::histogram::RemainingHistogram;
use super::key::{Key, KeyKind, NatClass};
use conntrack_core::{FlowState, L4Proto};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `n` as a share of `of`, 0..=1 (0 when `of` is 0): every share of flows
/// in a summary and in the facts derived from it.
pub(crate) fn share(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// A row of a key table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KeyCount {
    /// The key.
    pub key: Key,
    /// Flows counted for it (an upper bound under top-K).
    pub count: u64,
    /// How much of `count` may be overestimate (0 when exact): the key has
    /// between `count - error` and `count` flows.
    pub error: u64,
    /// `count` over all flows seen, 0..=1.
    pub share: f64,
}

impl KeyCount {
    /// The fewest flows the key can have: `count - error` (`count` when
    /// exact).
    pub fn lower(&self) -> u64 {
        self.count.saturating_sub(self.error)
    }
}

/// What the rows of a [`KeyTable`] are proven to be.
///
/// A bounded count (top-K) knows every key's count only within bounds,
/// so a table lists a key only when its bounds prove it is among the
/// heaviest: its lower bound is at least the upper bound of every key left
/// out ([`KeyTable::others_at_most`]). Keys whose bounds overlap the keys
/// left out are not listed at all: on a flat table (every source one flow)
/// no key is, instead of ten arbitrary keys whose counts are all noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Ranking {
    /// Every count is exact: the rows are the heaviest keys, in order
    /// (equal counts ordered by key).
    #[default]
    Exact,
    /// Counts are bounds; each row's lower bound is at least the next
    /// row's upper bound, and the last row's at least
    /// [`KeyTable::others_at_most`]: the rows are the heaviest keys, in
    /// this order.
    Certified,
    /// Counts are bounds; every row's lower bound is at least
    /// [`KeyTable::others_at_most`]: the rows are the heaviest keys, but
    /// rows whose bounds overlap each other may be in either order.
    CertifiedSet,
}

/// The heaviest keys of one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// the summary no longer tracks has more flows than this.
    pub error_bound: u64,
    /// The heaviest keys, largest first: under top-K only the keys whose
    /// bounds prove them heavier than every key left out (see
    /// [`Ranking`]).
    pub top: Vec<KeyCount>,
    // The defaults below read summaries written before these fields
    // existed (every one of them was exact or uncertified).
    /// No key missing from `top` has more flows than this (0: no key is
    /// missing). Exact tables: the count of the first key left out.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub others_at_most: u64,
    /// What the rows of `top` are proven to be.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub ranking: Ranking,
    /// Exact tables: how many keys left out of `top` have the same count
    /// as its last row, so that a cut among equal counts can say so
    /// ([`KeyTable::tied_after`]); 0 when none, and for bounded tables
    /// (their counts are bounds). Not written when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub tied_left_out: u64,
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

impl KeyTable {
    /// Of an exact table shown down to its first `shown` rows: how many
    /// keys after them have the same count as the last row shown (the
    /// rest of `top`, then [`KeyTable::tied_left_out`]), i.e. how many
    /// keys could have been shown instead of it. 0 when the cut falls
    /// between different counts, when nothing is shown, and for bounded
    /// tables.
    ///
    /// ```
    /// use conntrack_analyze::hotspots::Hotspots;
    /// use conntrack_analyze::hotspots::KeyKind;
    /// use conntrack_core::testkit::{flow, tcp};
    /// let mut h = Hotspots::exact();
    /// // 10.0.0.1 has two flows; 10.0.0.2 to .13 one each.
    /// h.add(&flow(tcp("10.0.0.1", 1000, "192.0.2.1", 443)));
    /// for i in 1..=13 {
    ///     h.add(&flow(tcp(&format!("10.0.0.{i}"), 2000, "192.0.2.1", 443)));
    /// }
    /// let s = h.summary(); // 10 rows a table
    /// let t = s.table(KeyKind::SrcIp).unwrap();
    /// assert_eq!(t.tied_left_out, 3);
    /// assert_eq!(t.tied_after(5), 8); // rows 6 to 10 and the 3 left out
    /// assert_eq!(t.tied_after(1), 0); // 2 flows, then 1
    /// assert!(!t.is_flat());
    /// ```
    pub fn tied_after(&self, shown: usize) -> u64 {
        if !self.exact || shown == 0 {
            return 0;
        }
        let Some(last) = self.top.get(shown - 1) else {
            return 0;
        };
        let rest = &self.top[shown..];
        let in_top = rest.iter().filter(|r| r.count == last.count).count() as u64;
        let beyond = match self.top.last() {
            Some(end) if end.count == last.count => self.tied_left_out,
            _ => 0,
        };
        in_top + beyond
    }

    /// Whether an exact table's keys all have the same count and there
    /// is more than one: no key stands out, and a list of some of them
    /// would be arbitrary.
    pub fn is_flat(&self) -> bool {
        self.exact
            && self.top.len() > 1
            && self.top[0].count > 0
            && self.top[0].count == self.top[self.top.len() - 1].count
            && self.top.len() as u64 + self.tied_left_out == self.distinct.unwrap_or(0)
    }
}

/// Flows in one protocol state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct StateCount {
    /// Protocol.
    pub proto: L4Proto,
    /// State.
    pub state: FlowState,
    /// Flows.
    pub count: u64,
    /// Share of all flows, 0..=1.
    pub share: f64,
    /// Remaining timeouts, in seconds, of the flows in this state that
    /// carried one.
    // Named `remaining` in report version 1; such summaries still read.
    #[serde(alias = "remaining")]
    pub remaining_secs: RemainingHistogram,
}

/// Flows by translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
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

    pub(super) fn add(&mut self, c: NatClass) {
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
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
        others_at_most: 0,
        ranking: Ranking::Exact,
        tied_left_out: 0,
    }
}

/// The result of a hotspot pass over the listed flows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct HotspotSummary {
    /// Flows seen.
    pub flows: u64,
    /// How keys were counted.
    pub mode: CountMode,
    /// One table per [`KeyKind`], in the order the kinds are declared
    /// ([`KeyKind::ALL`]).
    pub tables: Vec<KeyTable>,
    /// Sources of flows without a reply (`IPS_SEEN_REPLY` clear) that are
    /// not in flight (no packet in the last 2 s,
    /// [`super::IN_FLIGHT_SECS`]): scan suspects, or clients of a
    /// dead backend.
    pub unreplied_by_source: KeyTable,
    /// Every (protocol, state) seen, largest first, with remaining-timeout
    /// histograms.
    pub states: Vec<StateCount>,
    /// Flows by translation.
    pub nat: NatCounts,
    // The serde defaults below read summaries written before these fields
    // existed. Every summary written has them, so the schema (of the
    // serialised form) names no default.
    /// Flows by translation for TCP, UDP and every other protocol.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub nat_by_proto: ProtoNat,
    /// Translated flows by protocol and destination port (which services
    /// are NAT'd: NAT needs conntrack, so these can never be NOTRACKed).
    #[serde(default = "empty_table")]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub nat_by_service: KeyTable,
    /// Source-translated flows by destination endpoint: many new
    /// connections to one destination through one SNAT address compete
    /// for the same source ports.
    #[serde(default = "empty_table")]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub snat_by_destination: KeyTable,
    /// Source-translated flows by original source address: the hosts or
    /// containers that share the translated address.
    #[serde(default = "empty_table")]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub snat_by_source: KeyTable,
    /// TCP flows in a closing state (FIN_WAIT, CLOSE_WAIT, LAST_ACK,
    /// TIME_WAIT, CLOSE) by destination endpoint: where short-lived
    /// connections go.
    #[serde(default = "empty_table")]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub closing_by_destination: KeyTable,
    /// The same by original source address: who opens them.
    #[serde(default = "empty_table")]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub closing_by_source: KeyTable,
    /// DNS flows (destination port 53, UDP or TCP).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
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
        share(self.nat.translated(), self.flows)
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
                write!(
                    f,
                    " (top-K, {}, every other key <= {})",
                    match t.ranking {
                        Ranking::CertifiedSet => "heaviest keys certified",
                        _ => "heaviest keys and order certified",
                    },
                    t.others_at_most
                )?;
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
            let tied = t.tied_after(t.top.len());
            if tied > 0 {
                writeln!(f, "  and {tied} more with the same count")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_count_writes_remaining_secs_and_reads_its_version_1_name() {
        let v1 = r#"{"proto":"tcp","state":{"tcp":"TIME_WAIT"},"count":1,"share":1.0,
                     "remaining":[[30,1]]}"#;
        let s: StateCount = serde_json::from_str(v1).unwrap();
        assert_eq!(s.remaining_secs.total(), 1);
        let j = serde_json::to_value(&s).unwrap();
        assert!(j.get("remaining").is_none());
        assert_eq!(j["remaining_secs"], serde_json::json!([[30, 1]]));
    }
}
