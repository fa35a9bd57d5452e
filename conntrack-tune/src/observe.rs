//! What the planner is given: a host snapshot, counter rates over a window,
//! a summary of the flows, diagnosis findings and the host's configuration
//! files. Every part is optional; the plan says what it could not judge.
//!
//! These are the planner's own input types. [`crate::analyze_input`] fills
//! them from `conntrack-analyze`'s results; tests and callers may also fill
//! them directly.

use crate::kube::KubeProxy;
use crate::sysctl_d::SysctlScan;
use conntrack_core::{Flow, FlowLike, FlowState, HostSnapshot, L4Proto, TcpState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Counter changes of one CPU over the observation window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuDelta {
    /// CPU id (or row index when the source does not name CPUs).
    pub cpu: u32,
    /// `drop` increase.
    pub drop: u64,
    /// `insert_failed` increase.
    pub insert_failed: u64,
    /// `early_drop` increase.
    pub early_drop: u64,
    /// `clash_resolve` increase.
    pub clash_resolve: u64,
    /// `chaintoolong` increase.
    pub chain_too_long: u64,
    /// `search_restart` increase.
    pub search_restart: u64,
}

/// Rates over an observation window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Rates {
    /// Window length in seconds.
    pub window_secs: f64,
    /// Highest entry count seen during the window.
    pub peak_entries: Option<u32>,
    /// New flows per second (from NEW events or the change of `entries`).
    pub new_flows_per_sec: Option<f64>,
    /// Per-CPU counter changes.
    pub per_cpu: Vec<CpuDelta>,
    /// `NET_RX` softirq increase per CPU (`/proc/softirqs` column order).
    pub net_rx_per_cpu: Vec<u64>,
}

impl Rates {
    /// Counter changes summed over CPUs.
    pub fn total(&self) -> CpuDelta {
        let mut t = CpuDelta::default();
        for c in &self.per_cpu {
            t.drop = t.drop.saturating_add(c.drop);
            t.insert_failed = t.insert_failed.saturating_add(c.insert_failed);
            t.early_drop = t.early_drop.saturating_add(c.early_drop);
            t.clash_resolve = t.clash_resolve.saturating_add(c.clash_resolve);
            t.chain_too_long = t.chain_too_long.saturating_add(c.chain_too_long);
            t.search_restart = t.search_restart.saturating_add(c.search_restart);
        }
        t
    }
}

/// A histogram of remaining timeouts: seconds -> entries.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RemainingHistogram {
    /// Entries by remaining seconds (exact, sparse).
    pub by_secs: BTreeMap<u32, u64>,
}

impl RemainingHistogram {
    /// Adds one entry.
    pub fn add(&mut self, secs: u32) {
        *self.by_secs.entry(secs).or_insert(0) += 1;
    }

    /// All entries.
    pub fn total(&self) -> u64 {
        self.by_secs.values().sum()
    }

    /// Entries with remaining time strictly below `secs`.
    pub fn below(&self, secs: u32) -> u64 {
        self.by_secs.range(..secs).map(|(_, n)| n).sum()
    }

    /// Entries with remaining time at or above `secs`.
    pub fn at_least(&self, secs: u32) -> u64 {
        self.by_secs.range(secs..).map(|(_, n)| n).sum()
    }
}

/// Flows to one service: protocol and original-direction destination port.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceStats {
    /// Entries.
    pub entries: u64,
    /// Entries whose addresses or ports are translated.
    pub nat: u64,
    /// Entries in a non-zero conntrack zone.
    pub zoned: u64,
    /// Entries that never saw a reply.
    pub unreplied: u64,
    /// The source could not attribute translations to this service while
    /// the table holds translated flows (so it may be NAT'd).
    #[serde(default)]
    pub nat_unattributed: bool,
}

/// A summary of the table's flows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowSummary {
    /// Entries summarised.
    pub total: u64,
    /// Entries by state name (`TIME_WAIT`, `ESTABLISHED`, `UNREPLIED`...).
    pub by_state: BTreeMap<String, u64>,
    /// Entries by protocol name.
    pub by_proto: BTreeMap<String, u64>,
    /// Translated entries (status bits or tuple asymmetry).
    pub nat: u64,
    /// Non-zero zones seen.
    pub zones: BTreeSet<u16>,
    /// Remaining-timeout histograms by state name (TCP states and
    /// `UNREPLIED`/`REPLIED` for UDP).
    pub remaining: BTreeMap<String, RemainingHistogram>,
    /// Remaining timeouts of UDP entries (all states), for the UDP timeout.
    #[serde(default)]
    pub udp_remaining: RemainingHistogram,
    /// Per service, keyed `proto/port` (`udp/53`).
    pub services: BTreeMap<String, ServiceStats>,
    /// Entries per helper name.
    pub helpers: BTreeMap<String, u64>,
    /// Whether the source carried helper names (owned flows or views that
    /// report `CTA_HELP`); without it an empty `helpers` means nothing.
    pub helpers_known: bool,
}

impl FlowSummary {
    /// Summarises flows (owned or borrowed views).
    ///
    /// ```
    /// use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
    /// use conntrack_tune::observe::FlowSummary;
    /// let ip = |s: &str| s.parse().unwrap();
    /// let o = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::UDP,
    ///                    L4Tuple::Ports { src: 4000, dst: 53 });
    /// let r = Tuple::new(ip("10.0.0.2"), ip("10.0.0.1"), L4Proto::UDP,
    ///                    L4Tuple::Ports { src: 53, dst: 4000 });
    /// let mut f = Flow::new(o, r, Status::CONFIRMED);
    /// f.timeout = Some(25);
    /// let s = FlowSummary::from_flows([&f]);
    /// assert_eq!(s.total, 1);
    /// assert_eq!(s.services["udp/53"].entries, 1);
    /// assert_eq!(s.nat, 0);
    /// assert_eq!(s.remaining["UNREPLIED"].below(30), 1);
    /// ```
    pub fn from_flows<'a, F, I>(flows: I) -> FlowSummary
    where
        F: FlowLike + 'a,
        I: IntoIterator<Item = &'a F>,
    {
        let mut s = FlowSummary::default();
        for f in flows {
            s.add(f);
        }
        s
    }

    /// Adds one flow.
    pub fn add<F: FlowLike>(&mut self, f: &F) {
        let orig = f.orig();
        let state = f.flow_state();
        let state_name = state.to_string();
        let nat = f.flow_nat().any();
        let zone = f.zone().or(orig.zone).unwrap_or(0);
        self.total += 1;
        *self.by_state.entry(state_name.clone()).or_insert(0) += 1;
        *self.by_proto.entry(orig.proto.to_string()).or_insert(0) += 1;
        if nat {
            self.nat += 1;
        }
        if zone != 0 {
            self.zones.insert(zone);
        }
        if let Some(t) = f.timeout() {
            self.remaining.entry(state_name).or_default().add(t);
            if orig.proto == L4Proto::UDP {
                self.udp_remaining.add(t);
            }
        }
        if let Some(port) = orig.dst_port() {
            let key = format!("{}/{}", orig.proto, port);
            let e = self.services.entry(key).or_default();
            e.entries += 1;
            if nat {
                e.nat += 1;
            }
            if zone != 0 {
                e.zoned += 1;
            }
            if matches!(state, FlowState::Unreplied) {
                e.unreplied += 1;
            }
        }
    }

    /// Adds a helper's flow count (helpers are not part of [`FlowLike`]).
    pub fn add_helper(&mut self, name: &str) {
        self.helpers_known = true;
        *self.helpers.entry(name.to_string()).or_insert(0) += 1;
    }

    /// Summarises owned flows, including their helpers.
    pub fn from_owned(flows: &[Flow]) -> FlowSummary {
        let mut s = FlowSummary {
            helpers_known: true,
            ..Default::default()
        };
        for f in flows {
            s.add(f);
            if let Some(h) = &f.helper {
                s.add_helper(h);
            }
        }
        s
    }

    /// Entries in a TCP state.
    pub fn tcp_state(&self, st: TcpState) -> u64 {
        self.by_state.get(&st.to_string()).copied().unwrap_or(0)
    }

    /// Share of translated entries (0 when empty).
    pub fn nat_share(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.nat as f64 / self.total as f64
        }
    }
}

/// Parses a service key `proto/port`.
pub fn parse_service(key: &str) -> Option<(L4Proto, u16)> {
    let (p, port) = key.split_once('/')?;
    Some((L4Proto::from_name(p)?, port.parse().ok()?))
}

/// A diagnosis finding, in the planner's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The table was full: packets dropped at allocation, early drops.
    TableFull,
    /// Confirm-time insert failures from races on the same new flow.
    Clash,
    /// Inserts refused because chains were too long.
    ChainTooLong,
    /// Softirq work concentrated on a few CPUs.
    CpuImbalance,
    /// Many short-lived connections (TIME_WAIT dominates).
    ShortConnections,
    /// Established entries idle for a long time.
    IdleEstablished,
    /// Translated flows take a large share of the table.
    NatAmplification,
    /// Helper modules loaded but unused.
    UnneededHelpers,
    /// Sources with many unreplied flows (scanners, floods, a dead backend).
    ScanSuspects,
    /// A finding the planner has no rule for (carried as context).
    Other,
}

/// A finding with its identifier and text (from `conntrack-analyze`'s
/// diagnosis, or from the caller).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Identifier of the finding in its source.
    pub id: String,
    /// The cause it points at.
    pub cause: Cause,
    /// Text.
    pub text: String,
    /// The numbers behind it, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numbers: Vec<(String, f64)>,
}

/// Whether a kernel module (nf_conntrack, or a conntrack helper) is a
/// loadable module or built into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// Loadable module: modprobe.d options apply at load, `modprobe -r`
    /// can unload it.
    Module,
    /// Built in: only the kernel command line sets its parameters (e.g.
    /// `hashsize`) at boot, and it can never be unloaded.
    BuiltIn,
    /// Not known.
    #[default]
    Unknown,
}

/// Everything the planner is given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Observation {
    /// Host facts.
    pub snapshot: Option<HostSnapshot>,
    /// Counter rates over a window.
    pub rates: Option<Rates>,
    /// A summary of the flows.
    pub flows: Option<FlowSummary>,
    /// Diagnosis findings.
    pub findings: Vec<Finding>,
    /// The sysctl.d scan.
    pub sysctl_scan: Option<SysctlScan>,
    /// kube-proxy detection.
    pub kube_proxy: Option<KubeProxy>,
    /// Whether nf_conntrack is a module.
    pub module_kind: ModuleKind,
    /// Whether each helper of [`HostSnapshot::helpers`] is a loadable
    /// module or built in, by name (see
    /// [`crate::analyze_input::helper_kind`]); a helper missing here is
    /// [`ModuleKind::Unknown`].
    pub helper_kinds: BTreeMap<String, ModuleKind>,
}

impl Observation {
    /// Whether the helper `name` is a module, built in, or unknown.
    pub fn helper_kind(&self, name: &str) -> ModuleKind {
        self.helper_kinds.get(name).copied().unwrap_or_default()
    }
}
