//! [`Observation`]: everything observed about one conntrack table and its
//! host, from a live host, a mirror or a capture. Every part but the host
//! snapshot is optional; what is missing limits what can be judged, and
//! the report says so.

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
/// let obs = Observation::new(HostSnapshot { count: Some(10), max: Some(100), ..Default::default() });
/// assert!(obs.rates.is_none() && obs.hotspots.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
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
    /// Conntrack's drops as a per-drop tracer attributed them over a
    /// window (`doctor --trace`): evidence the diagnosis cites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<crate::drops::DropSummary>,
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
}
