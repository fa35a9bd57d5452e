//! The table's size, fill and cost, and how it got its size.

use crate::capacity::{
    MemoryCost, Sizing, SizingEra, SizingInput, SizingOrigin, kernel_default,
    kernel_max_for_buckets, mean_chain_length, memory_cost_for,
};
use crate::observation::Observation;
use serde::Serialize;

/// Size, fill and cost of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct TableFacts {
    /// The namespace's entries now.
    pub count: Option<u64>,
    /// `nf_conntrack_max`; `Some(0)` means unlimited.
    pub max: Option<u64>,
    /// Buckets (`nf_conntrack_buckets`, else the `hashsize` parameter).
    pub buckets: Option<u64>,
    /// The highest count seen: the current count or the highest sample of
    /// the rate window.
    pub peak: Option<u64>,
    /// count / max (0..; `None` when max is unknown or unlimited).
    pub utilisation: Option<f64>,
    /// peak / max.
    pub peak_utilisation: Option<f64>,
    /// The count (or the peak) reached max: the peak is censored, the
    /// real demand may be higher.
    pub at_limit: bool,
    /// Mean chain length `2N/B` now.
    pub mean_chain: Option<f64>,
    /// Mean chain length with the table full.
    pub mean_chain_at_max: Option<f64>,
    /// How the table got its size.
    pub origin: SizingOrigin,
    /// What the kernel would choose for this RAM by itself.
    pub kernel_default: Option<Sizing>,
    /// The max the kernel pairs with the allocated buckets.
    pub kernel_max_for_buckets: Option<u64>,
    /// Memory at the current count.
    pub memory_now: Option<MemoryCost>,
    /// Memory with the table full.
    pub memory_at_max: Option<MemoryCost>,
    /// Whether the namespace is the initial one.
    pub init_netns: Option<bool>,
}

impl TableFacts {
    pub(crate) fn derive(obs: &Observation, era: Option<SizingEra>) -> TableFacts {
        let s = &obs.snapshot;
        let count = s
            .count
            .or_else(|| s.stats.as_ref().and_then(|st| st.entries))
            .or_else(|| {
                obs.rates
                    .as_ref()
                    .and_then(|r| r.entries.as_ref().map(|e| e.last))
            })
            .map(u64::from);
        let max = s
            .max
            .or_else(|| s.stats.as_ref().and_then(|st| st.max_entries))
            .map(u64::from);
        let buckets = s
            .buckets
            .or(s.hashsize_param)
            .map(u64::from)
            .filter(|&b| b > 0);
        let trend_peak = obs
            .rates
            .as_ref()
            .and_then(|r| r.entries.as_ref())
            .map(|e| u64::from(e.max));
        let peak = match (count, trend_peak) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let ratio = |n: Option<u64>| match (n, max) {
            (Some(n), Some(m)) if m > 0 => Some(n as f64 / m as f64),
            _ => None,
        };
        let origin = SizingOrigin::of(s);
        let kernel_default = SizingInput::from_snapshot(s).map(|mut i| {
            i.hashsize = None;
            kernel_default(&i)
        });
        // The kernel pairs 8 x buckets with a load-time hashsize, but then
        // max already is 8 x buckets (that is how the origin is told), so
        // the floor the allocated buckets justify is the era's own factor:
        // buckets chosen by hand (at load or by a resize) are paid for at
        // the mean chain the kernel's default sizing gives.
        let kernel_max_for_buckets = match (buckets, era) {
            (Some(b), Some(e)) => Some(kernel_max_for_buckets(
                b,
                e,
                origin == SizingOrigin::ExplicitHashsize,
            )),
            _ => None,
        };
        let memory = |entries: Option<u64>| match (entries, buckets) {
            (Some(e), Some(b)) => Some(memory_cost_for(s, e, b)),
            _ => None,
        };
        TableFacts {
            count,
            max,
            buckets,
            peak,
            utilisation: ratio(count),
            peak_utilisation: ratio(peak),
            at_limit: matches!((peak, max), (Some(p), Some(m)) if m > 0 && p >= m),
            mean_chain: count
                .zip(buckets)
                .and_then(|(c, b)| mean_chain_length(c, b)),
            mean_chain_at_max: max
                .filter(|&m| m > 0)
                .zip(buckets)
                .and_then(|(m, b)| mean_chain_length(m, b)),
            origin,
            kernel_default,
            kernel_max_for_buckets,
            memory_now: memory(count),
            memory_at_max: memory(max.filter(|&m| m > 0)),
            init_netns: s.init_netns,
        }
    }

    /// Whether max is 0 (no limit).
    pub fn unlimited(&self) -> bool {
        self.max == Some(0)
    }
}
