//! [`Observation`]: everything observed about one conntrack table and its
//! host, from a live host, a mirror or a capture. Every part but the host
//! snapshot is optional; what is missing limits what can be judged, and
//! the report says so.

use crate::attribution::AttributionSummary;
use crate::buckets::SimulatedChains;
use crate::hotspots::HotspotSummary;
use crate::rates::Rates;
use conntrack_core::{HostConfig, HostSnapshot};
use serde::{Deserialize, Serialize};

/// Everything observed about one table.
///
/// ```
/// use conntrack_analyze::Observation;
/// use conntrack_core::HostSnapshot;
/// let obs = Observation::new(HostSnapshot::default().with_count(10).with_max(100));
/// assert!(obs.rates.is_none() && obs.hotspots.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Observation {
    /// Host facts: table size, kernel, CPUs, timeouts, counters.
    pub snapshot: HostSnapshot,
    /// Host configuration: sysctl.d, kube-proxy, modules, NAT rules.
    pub config: HostConfig,
    /// Counter rates over a window (two or more statistics samples).
    pub rates: Option<Rates>,
    /// Hotspots, states and NAT over the table's flows.
    pub hotspots: Option<HotspotSummary>,
    /// Chain lengths from hashing the real tuples.
    pub chains: Option<SimulatedChains>,
    /// New flows per second measured from NEW events, when an event
    /// listener ran over the window (the kernel has no counter for it).
    pub new_flows_per_sec: Option<f64>,
    /// Who owns the flows: local processes and containers, and the flows
    /// without one (forwarded, closed), from matching the flows against
    /// the namespace's sockets (live only).
    pub owners: Option<AttributionSummary>,
    /// What could not be read for lack of privileges, and what the
    /// analysis lacks for it (an unprivileged live run: counters and
    /// sizing from `/proc`, no dump).
    pub unread: Vec<Unread>,
    /// Conntrack's drops as a per-drop tracer attributed them over a
    /// window (`doctor --trace`): evidence the diagnosis cites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<crate::drops::DropSummary>,
}

/// A part of a live table that could not be read: what, what reading it
/// needs, and which parts of the analysis are missing for it.
///
/// ```
/// use conntrack_analyze::Unread;
/// let u = Unread {
///     what: "the table's entries (a ctnetlink dump)".into(),
///     needs: "CAP_NET_ADMIN".into(),
///     missing: vec!["hotspots".into()],
/// };
/// assert_eq!(u.to_string(), "the table's entries (a ctnetlink dump) needs CAP_NET_ADMIN; \
///                            missing without it: hotspots");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Unread {
    /// What could not be read.
    pub what: String,
    /// What reading it needs (a capability, root).
    pub needs: String,
    /// The parts of the analysis missing without it.
    pub missing: Vec<String>,
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} needs {}; missing without it: {}",
            self.what,
            self.needs,
            self.missing.join(", ")
        )
    }
}

impl Observation {
    /// An observation of a host snapshot alone.
    pub fn new(snapshot: HostSnapshot) -> Self {
        Observation {
            snapshot,
            ..Default::default()
        }
    }

    /// With rates.
    pub fn with_rates(mut self, rates: Rates) -> Self {
        self.rates = Some(rates);
        self
    }

    /// With traced drops.
    pub fn with_drops(mut self, drops: crate::drops::DropSummary) -> Self {
        self.drops = Some(drops);
        self
    }

    /// With a hotspot summary.
    pub fn with_hotspots(mut self, hotspots: HotspotSummary) -> Self {
        self.hotspots = Some(hotspots);
        self
    }

    /// With host configuration.
    pub fn with_config(mut self, config: HostConfig) -> Self {
        self.config = config;
        self
    }

    /// With simulated bucket chains (`None`: none were simulated).
    pub fn with_chains(mut self, chains: Option<SimulatedChains>) -> Self {
        self.chains = chains;
        self
    }

    /// With the flows' owners (`None`: the sockets were not matched).
    pub fn with_owners(mut self, owners: Option<AttributionSummary>) -> Self {
        self.owners = owners;
        self
    }

    /// With what could not be read, and what the analysis lacks for it.
    pub fn with_unread(mut self, unread: Vec<Unread>) -> Self {
        self.unread = unread;
        self
    }
}
