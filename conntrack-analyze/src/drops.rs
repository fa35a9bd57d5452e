//! [`DropSummary`]: conntrack's drops as a per-drop tracer attributed them
//! over a window (`conntrack_netlink::trace`, `doctor --trace SECONDS`),
//! counted by reason and, within each reason, by the same hotspot keys as
//! flows (source and destination address, destination port, protocol),
//! with how many went through source NAT.
//!
//! The summary is evidence for the diagnosis: a traced reason is seen, not
//! inferred from counters, so the cause it names is confirmed and the
//! causes the window's records never showed are unlikely
//! ([`crate::diagnose()`]: `confirm-failures`, `table-full`).
//!
//! ```
//! use conntrack_analyze::drops::{DropCause, DropSummary};
//! use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
//! let orig = Tuple::new(
//!     "10.0.0.1".parse().unwrap(),
//!     "10.0.0.2".parse().unwrap(),
//!     L4Proto::TCP,
//!     L4Tuple::Ports { src: 4000, dst: 80 },
//! );
//! let flow = Flow::new(orig, orig.inverse().unwrap(), Status::empty());
//! let s = DropSummary::from_records(10.0, 0, [(DropCause::TableFull, &flow)]);
//! assert_eq!(s.count(DropCause::TableFull), 1);
//! assert_eq!(
//!     s.describe(DropCause::TableFull).unwrap(),
//!     "1 table-full drop in the last 10 s: tcp from 10.0.0.1 (100%) to 10.0.0.2 (100%) port 80 (100%)"
//! );
//! ```

use conntrack_core::FlowLike;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Why conntrack dropped a packet, as the tracer names it (the names are
/// `conntrack_netlink::trace::DropReason::name`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropCause {
    /// The table was full and `early_drop` evicted nothing (`drop`).
    TableFull,
    /// A clash at confirmation the kernel could not resolve (`drop` and
    /// `insert_failed`).
    UnresolvedClash,
    /// The hash chain was over the cap (`chaintoolong` and
    /// `insert_failed`).
    ChainTooLong,
    /// The entry was dying, or its extensions changed, at confirmation
    /// (`insert_failed`).
    Dying,
    /// NAT itself dropped the packet (no counter moves): source NAT found
    /// no address to map to (MASQUERADE out an interface without one), a
    /// masqueraded flow's output interface changed, or a NAT step failed.
    NatFailure,
}

impl DropCause {
    /// Every cause, in report order.
    pub const ALL: [DropCause; 5] = [
        DropCause::TableFull,
        DropCause::UnresolvedClash,
        DropCause::ChainTooLong,
        DropCause::Dying,
        DropCause::NatFailure,
    ];

    /// The tracer's name (`table_full`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DropCause::TableFull => "table_full",
            DropCause::UnresolvedClash => "unresolved_clash",
            DropCause::ChainTooLong => "chain_too_long",
            DropCause::Dying => "dying",
            DropCause::NatFailure => "nat_failure",
        }
    }

    /// From the tracer's name; `None` for the reasons that are not
    /// conntrack's failures (`other_*`).
    pub fn from_name(name: &str) -> Option<DropCause> {
        DropCause::ALL.into_iter().find(|c| c.name() == name)
    }

    /// In words.
    pub const fn describe(self) -> &'static str {
        match self {
            DropCause::TableFull => "table-full drop",
            DropCause::UnresolvedClash => "unresolved clash",
            DropCause::ChainTooLong => "chain-cap refusal",
            DropCause::Dying => "dying-entry drop",
            DropCause::NatFailure => "NAT failure",
        }
    }

    /// In words, plural.
    pub const fn describe_plural(self) -> &'static str {
        match self {
            DropCause::TableFull => "table-full drops",
            DropCause::UnresolvedClash => "unresolved clashes",
            DropCause::ChainTooLong => "chain-cap refusals",
            DropCause::Dying => "dying-entry drops",
            DropCause::NatFailure => "NAT failures",
        }
    }

    /// Whether the kernel counts it in `insert_failed`.
    pub const fn counts_insert_failed(self) -> bool {
        !matches!(self, DropCause::TableFull | DropCause::NatFailure)
    }
}

/// One value of a hotspot key and its drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    /// The value (`10.0.0.1`, `53`, `udp`).
    pub value: String,
    /// Drops with it.
    pub drops: u64,
}

/// The drops of one cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropGroup {
    /// The cause.
    pub cause: DropCause,
    /// Drops attributed to it.
    pub drops: u64,
    /// Of them, flows whose source was translated (SNAT, MASQUERADE).
    pub snat: u64,
    /// The busiest protocols, most drops first (at most [`TOP`]).
    pub protocols: Vec<KeyCount>,
    /// The busiest sources.
    pub sources: Vec<KeyCount>,
    /// The busiest destinations.
    pub destinations: Vec<KeyCount>,
    /// The busiest destination ports.
    pub ports: Vec<KeyCount>,
    /// The processes or containers whose sockets sent the dropped
    /// packets, most drops first: found for a drop whose socket still
    /// existed when the window ended (a container's, through its
    /// namespace, included); empty when owners were not looked up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<KeyCount>,
}

/// Values kept per key.
pub const TOP: usize = 5;

/// Traced drops over a window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DropSummary {
    /// The window the tracer ran, in seconds.
    pub window_secs: f64,
    /// Records the kernel could not hand over (drops not counted here).
    pub lost: u64,
    /// One group per cause seen, in [`DropCause::ALL`] order.
    pub groups: Vec<DropGroup>,
}

fn top(m: HashMap<String, u64>) -> Vec<KeyCount> {
    let mut v: Vec<KeyCount> = m
        .into_iter()
        .map(|(value, drops)| KeyCount { value, drops })
        .collect();
    v.sort_by(|a, b| b.drops.cmp(&a.drops).then_with(|| a.value.cmp(&b.value)));
    v.truncate(TOP);
    v
}

impl DropSummary {
    /// Aggregates records (a cause and the record's flow, as
    /// `conntrack_netlink::trace::DropRecord` is [`FlowLike`]).
    pub fn from_records<'a, F: FlowLike + 'a>(
        window_secs: f64,
        lost: u64,
        records: impl IntoIterator<Item = (DropCause, &'a F)>,
    ) -> DropSummary {
        Self::from_owned_records(window_secs, lost, records, |_| None)
    }

    /// [`DropSummary::from_records`], with each drop's owner named by
    /// `owner` (a process or container, as
    /// `conntrack_analyze::attribution::Owner::label` writes it).
    pub fn from_owned_records<'a, F: FlowLike + 'a>(
        window_secs: f64,
        lost: u64,
        records: impl IntoIterator<Item = (DropCause, &'a F)>,
        owner: impl Fn(&F) -> Option<String>,
    ) -> DropSummary {
        #[derive(Default)]
        struct Acc {
            drops: u64,
            snat: u64,
            proto: HashMap<String, u64>,
            src: HashMap<String, u64>,
            dst: HashMap<String, u64>,
            port: HashMap<String, u64>,
            owner: HashMap<String, u64>,
        }
        let mut acc: HashMap<DropCause, Acc> = HashMap::new();
        for (cause, f) in records {
            let a = acc.entry(cause).or_default();
            let o = f.orig();
            a.drops += 1;
            if f.flow_nat().snat {
                a.snat += 1;
            }
            *a.proto.entry(o.proto.to_string()).or_default() += 1;
            *a.src.entry(o.src.to_string()).or_default() += 1;
            *a.dst.entry(o.dst.to_string()).or_default() += 1;
            if let Some(p) = o.dst_port() {
                *a.port.entry(p.to_string()).or_default() += 1;
            }
            if let Some(w) = owner(f) {
                *a.owner.entry(w).or_default() += 1;
            }
        }
        let groups = DropCause::ALL
            .into_iter()
            .filter_map(|cause| {
                let a = acc.remove(&cause)?;
                Some(DropGroup {
                    cause,
                    drops: a.drops,
                    snat: a.snat,
                    protocols: top(a.proto),
                    sources: top(a.src),
                    destinations: top(a.dst),
                    ports: top(a.port),
                    owners: top(a.owner),
                })
            })
            .collect();
        DropSummary {
            window_secs,
            lost,
            groups,
        }
    }

    /// The group of `cause`, when any drop had it.
    pub fn group(&self, cause: DropCause) -> Option<&DropGroup> {
        self.groups.iter().find(|g| g.cause == cause)
    }

    /// Drops attributed to `cause`.
    pub fn count(&self, cause: DropCause) -> u64 {
        self.group(cause).map_or(0, |g| g.drops)
    }

    /// Drops the kernel counted in `insert_failed` (every cause but table
    /// full).
    pub fn insert_failed(&self) -> u64 {
        self.groups
            .iter()
            .filter(|g| g.cause.counts_insert_failed())
            .map(|g| g.drops)
            .sum()
    }

    /// One sentence on a cause's drops: how many in the window, the
    /// leading protocol, source, destination and port with their shares,
    /// and the SNAT share when some went through it. `None` when none had
    /// it.
    pub fn describe(&self, cause: DropCause) -> Option<String> {
        let g = self.group(cause)?;
        let share = |k: &KeyCount| (k.drops as f64 * 100.0 / g.drops as f64).round();
        let lead = |v: &[KeyCount]| v.first().map(|k| format!("{} ({}%)", k.value, share(k)));
        let mut s = format!(
            "{} {} in the last {} s:",
            g.drops,
            if g.drops == 1 {
                cause.describe()
            } else {
                cause.describe_plural()
            },
            self.window_secs.round()
        );
        if let Some(p) = g.protocols.first() {
            s.push_str(&format!(" {}", p.value));
        }
        if let Some(src) = lead(&g.sources) {
            s.push_str(&format!(" from {src}"));
        }
        if let Some(dst) = lead(&g.destinations) {
            s.push_str(&format!(" to {dst}"));
        }
        if let Some(port) = lead(&g.ports) {
            s.push_str(&format!(" port {port}"));
        }
        if g.snat > 0 {
            s.push_str(&format!(
                ", {}% after source NAT",
                (g.snat as f64 * 100.0 / g.drops as f64).round()
            ));
        }
        if let Some(owner) = lead(&g.owners) {
            s.push_str(&format!(", sent by {owner}"));
        }
        Some(s)
    }

    /// Whether most of a cause's drops went through source NAT.
    pub fn mostly_snat(&self, cause: DropCause) -> bool {
        self.group(cause).is_some_and(|g| g.snat * 2 > g.drops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};

    fn flow(src: &str, dst: &str, proto: L4Proto, dport: u16, snat_to: Option<&str>) -> Flow {
        let orig = Tuple::new(
            src.parse().unwrap(),
            dst.parse().unwrap(),
            proto,
            L4Tuple::Ports {
                src: 20000,
                dst: dport,
            },
        );
        let mut reply = orig.inverse().unwrap();
        let mut status = Status::empty();
        if let Some(a) = snat_to {
            reply.dst = a.parse().unwrap();
            status |= Status::SRC_NAT;
        }
        Flow::new(orig, reply, status)
    }

    #[test]
    fn groups_by_cause_and_hotspot_keys_with_the_snat_share() {
        let mut flows = Vec::new();
        for i in 0..9 {
            flows.push((
                DropCause::UnresolvedClash,
                flow(
                    &format!("172.18.0.{}", 2 + i % 2),
                    "10.0.0.5",
                    L4Proto::TCP,
                    6379,
                    Some("192.0.2.1"),
                ),
            ));
        }
        flows.push((
            DropCause::UnresolvedClash,
            flow("172.18.0.9", "10.0.0.6", L4Proto::UDP, 53, None),
        ));
        flows.push((
            DropCause::ChainTooLong,
            flow("172.18.0.9", "10.0.0.6", L4Proto::UDP, 53, None),
        ));
        let s = DropSummary::from_records(10.0, 2, flows.iter().map(|(c, f)| (*c, f)));
        assert_eq!(s.count(DropCause::UnresolvedClash), 10);
        assert_eq!(s.count(DropCause::ChainTooLong), 1);
        assert_eq!(s.count(DropCause::TableFull), 0);
        assert_eq!(s.insert_failed(), 11);
        assert_eq!(s.lost, 2);
        let g = s.group(DropCause::UnresolvedClash).unwrap();
        assert_eq!(g.snat, 9);
        assert!(s.mostly_snat(DropCause::UnresolvedClash));
        assert!(!s.mostly_snat(DropCause::ChainTooLong));
        assert_eq!(g.sources[0].value, "172.18.0.2");
        assert_eq!(g.sources[0].drops, 5);
        assert_eq!(
            s.describe(DropCause::UnresolvedClash).unwrap(),
            "10 unresolved clashes in the last 10 s: tcp from 172.18.0.2 (50%) to 10.0.0.5 (90%) \
             port 6379 (90%), 90% after source NAT"
        );
        assert_eq!(s.describe(DropCause::Dying), None);
        // Groups in cause order.
        let order: Vec<_> = s.groups.iter().map(|g| g.cause).collect();
        assert_eq!(order, [DropCause::UnresolvedClash, DropCause::ChainTooLong]);
    }

    #[test]
    fn names_are_the_tracers() {
        for c in DropCause::ALL {
            assert_eq!(DropCause::from_name(c.name()), Some(c));
        }
        assert_eq!(DropCause::from_name("other_in_table"), None);
    }
}
