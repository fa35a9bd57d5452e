//! How a per-CPU load is spread, and the imbalance of a counter's rate.

use super::cpu::CpuId;
use conntrack_core::Counter;
use serde::{Deserialize, Serialize};

/// Per-CPU imbalance of one counter's rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Imbalance {
    /// The counter.
    pub counter: Counter,
    /// CPUs considered.
    pub cpus: usize,
    /// Sum of the CPUs' rates.
    pub total_per_sec: f64,
    /// Mean rate per CPU.
    pub mean_per_sec: f64,
    /// The busiest CPU's rate.
    pub max_per_sec: f64,
    /// `max / mean` (1 when balanced, `cpus` when one CPU has it all).
    pub max_over_mean: f64,
    /// The busiest CPU.
    pub busiest: CpuId,
    /// The busiest CPU's share of the total, 0..=1.
    pub busiest_share: f64,
    /// How the load is spread (excess over the fair share, effective
    /// CPUs). Diagnosis calls it imbalanced ([`Spread::is_imbalanced`])
    /// when the busiest CPU's excess is 0.5 or more, or the work
    /// effectively runs on at most half of the CPUs.
    pub spread: Spread,
}

/// The busiest CPU's excess over its fair share at which a load counts as
/// imbalanced: `(share - 1/n) / (1 - 1/n)`, 0 for an even spread and 1 when
/// one CPU has it all. 0.5 puts the line at 75/25 on 2 CPUs.
pub const BUSIEST_EXCESS: f64 = 0.5;

/// How unevenly a per-CPU load (rates, softirq counts) is spread
/// (computed by [`spread`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Spread {
    /// CPUs considered.
    pub cpus: usize,
    /// Position of the busiest CPU in the load slice.
    pub busiest: usize,
    /// The busiest CPU's share of the total, 0..=1 (fair: `1 / cpus`).
    pub busiest_share: f64,
    /// The busiest CPU's excess over its fair share, 0..=1: 0 for an even
    /// spread, 1 when one CPU has it all; 0.5 or more
    /// ([`BUSIEST_EXCESS`]) counts as imbalanced.
    pub excess: f64,
    /// The effective number of CPUs doing the work, `1 / sum(share^2)`
    /// (the inverse Herfindahl index): `k` when `k` CPUs share it evenly.
    pub effective_cpus: f64,
}

impl Spread {
    /// Whether the load is imbalanced: one CPU takes at least halfway from
    /// its fair share to all of it ([`BUSIEST_EXCESS`]), or the work
    /// effectively runs on at most half of the CPUs (a multi-queue NIC
    /// keeping 8 of 32 CPUs busy, where no single CPU dominates). Unlike a
    /// fixed `max / mean` threshold this means the same on 2 CPUs and on
    /// 64 (where `max / mean >= 1.5` fires at a 2.3% share).
    pub fn is_imbalanced(&self) -> bool {
        self.cpus >= 2
            && (self.excess >= BUSIEST_EXCESS || self.effective_cpus <= self.cpus as f64 / 2.0)
    }
}

/// How a per-CPU load is spread: `None` for fewer than 2 CPUs or no load.
/// Shared by diagnosis (per-CPU failure rates) and the tuning planner
/// (NET_RX softirqs), so that a finding and a plan never disagree.
///
/// ```
/// use conntrack_analyze::rates::spread;
/// assert!(spread(&[99.45, 0.55]).unwrap().is_imbalanced());
/// assert!(!spread(&[60.0, 40.0]).unwrap().is_imbalanced());
/// let mut eight_of_32 = vec![0.01; 32];
/// for l in &mut eight_of_32[..8] { *l = 1000.0; }
/// assert!(spread(&eight_of_32).unwrap().is_imbalanced());
/// assert!(spread(&[5.0]).is_none() && spread(&[0.0, 0.0]).is_none());
/// ```
pub fn spread(load: &[f64]) -> Option<Spread> {
    if load.len() < 2 || load.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return None;
    }
    let total: f64 = load.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return None;
    }
    let (busiest, max) =
        load.iter().copied().enumerate().fold(
            (0, f64::MIN),
            |acc, (i, v)| if v > acc.1 { (i, v) } else { acc },
        );
    let n = load.len() as f64;
    let share = max / total;
    let hhi: f64 = load.iter().map(|v| (v / total).powi(2)).sum();
    Some(Spread {
        cpus: load.len(),
        busiest,
        busiest_share: share,
        excess: (share - 1.0 / n) / (1.0 - 1.0 / n),
        effective_cpus: if hhi > 0.0 { 1.0 / hhi } else { n },
    })
}
