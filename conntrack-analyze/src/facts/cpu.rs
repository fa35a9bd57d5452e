//! How work and failures are spread over CPUs, and whether RPS is on.

use crate::observation::Observation;
use crate::rates::{Imbalance, Spread, spread};
use conntrack_core::Counter;
use serde::Serialize;

/// Whether Receive Packet Steering is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rps {
    /// Some receive queue has a non-empty `rps_cpus`.
    On,
    /// Every known receive queue has RPS off.
    Off,
    /// No receive queue was read.
    Unknown,
}

/// CPU facts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct CpuFacts {
    /// Online CPUs (0 when unknown).
    pub online: usize,
    /// RPS state.
    pub rps: Rps,
    /// Receive queues of physical interfaces.
    pub rx_queues: usize,
    /// How `insert_failed` (else `drop`) rates are spread over CPUs.
    pub failures: Option<Imbalance>,
    /// CPUs on which `insert_failed` or `drop` rose.
    pub cpus_with_failures: usize,
    /// How NET_RX softirqs are spread (since boot: the snapshot's counts).
    pub softirq: Option<Spread>,
}

impl CpuFacts {
    pub(crate) fn derive(obs: &Observation) -> CpuFacts {
        let s = &obs.snapshot;
        let physical: Vec<_> = s.rx_queues.iter().filter(|q| !q.is_virtual()).collect();
        let rps = if physical.is_empty() {
            Rps::Unknown
        } else if physical.iter().any(|q| !q.rps_cpus.is_empty()) {
            Rps::On
        } else {
            Rps::Off
        };
        let rates = obs.rates.as_ref();
        let failures = rates.and_then(|r| {
            [Counter::InsertFailed, Counter::Drop]
                .into_iter()
                .filter(|&c| r.is_live(c))
                .find_map(|c| r.imbalance(c))
        });
        let cpus_with_failures = rates.map_or(0, |r| {
            r.cpus
                .iter()
                .filter(|c| {
                    c.per_sec(Counter::InsertFailed) > 0.0 || c.per_sec(Counter::Drop) > 0.0
                })
                .count()
        });
        let load: Vec<f64> = s.net_rx_softirqs.iter().map(|&v| v as f64).collect();
        CpuFacts {
            online: if s.cpus_online.is_empty() {
                s.cpus_possible.len()
            } else {
                s.cpus_online.len()
            },
            rps,
            rx_queues: s.rx_queues.iter().filter(|q| !q.is_virtual()).count(),
            failures,
            cpus_with_failures,
            softirq: spread(&load),
        }
    }
}
