//! Diagnosis: findings with evidence, ranked causes and remedies, from the
//! one model of a host ([`Facts`]).
//!
//! One rule per file, each documenting what it checks, why it matters and
//! when it does not fire. Rules share these principles:
//! - no finding without the numbers it rests on;
//! - counter-based findings need a rate window: a counter that only grew
//!   before the window (since boot) is history, never a finding;
//! - a counter this kernel does not have is "not reported", never 0;
//! - a finding names what it recommends ([`crate::Remedy`]); the tuning
//!   planner answers each remedy with an action or a stated decline;
//! - thresholds are in [`Thresholds`] and can be changed.
//!
//! ```
//! use conntrack_analyze::{diagnose, Facts, FindingId, Observation, EvidenceKey};
//! use conntrack_core::HostSnapshot;
//! let obs = Observation::new(HostSnapshot::default().with_count(99_000).with_max(100_000));
//! let findings = diagnose(&Facts::derive(&obs));
//! assert_eq!(findings[0].id, FindingId::TableNearlyFull);
//! assert_eq!(findings[0].value(EvidenceKey::Utilisation), Some(99.0));
//! ```

mod buckets;
mod churn;
mod confirm;
mod cpu;
mod helpers;
mod invalid;
mod nat;
mod reset;
mod resolved;
mod scan;
mod states;
mod table;
mod traced;

use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::Finding;
use crate::hotspots::HotspotSummary;
use conntrack_core::Counter;

/// The limits diagnosis uses. Shares are 0..=1.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Thresholds {
    /// Utilisation (count / max) from which the table is "nearly full".
    pub nearly_full: f64,
    /// Utilisation from which drops beyond insert_failed mean a full table.
    pub full: f64,
    /// Utilisation below which confirm-time failures cannot be a full table.
    pub far_below_max: f64,
    /// Utilisation from which the table is under pressure (entry-reducing
    /// remedies become worth their risk).
    pub pressure: f64,
    /// Mean chain length `2N/B` from which buckets count as overloaded.
    pub overloaded_lambda: f64,
    /// Invalid packets per second that count as a surge.
    pub invalid_per_sec: f64,
    /// Resolved clashes per second worth a (info) finding.
    pub resolved_clashes_per_sec: f64,
    /// New connections per second that count as churn.
    pub churn_per_sec: f64,
    /// TIME_WAIT share of the table that dominates it.
    pub time_wait_share: f64,
    /// CLOSE_WAIT share of the table that dominates it.
    pub close_wait_share: f64,
    /// Idle time after which an ESTABLISHED entry counts as retained.
    pub established_idle_secs: u32,
    /// Share of the table held by retained ESTABLISHED entries.
    pub established_idle_share: f64,
    /// UNREPLIED flows from one source that make it a scan suspect.
    pub scan_unreplied: u64,
    /// Translated share of the table that counts as NAT amplification.
    pub nat_share: f64,
    /// Minimum flows in a hotspot summary for share-based findings.
    pub min_flows: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            nearly_full: 0.8,
            full: 0.9,
            far_below_max: 0.5,
            pressure: 0.7,
            overloaded_lambda: 8.0,
            invalid_per_sec: 100.0,
            resolved_clashes_per_sec: 1.0,
            churn_per_sec: 100.0,
            time_wait_share: 0.5,
            close_wait_share: 0.2,
            established_idle_secs: 3600,
            established_idle_share: 0.1,
            scan_unreplied: 100,
            nat_share: 0.5,
            min_flows: 100,
        }
    }
}

/// Diagnoses with default thresholds. Findings come most severe first.
pub fn diagnose(facts: &Facts) -> Vec<Finding> {
    diagnose_with(facts, &Thresholds::default())
}

/// Diagnoses with the given thresholds. Findings come most severe first,
/// then in [`crate::FindingId`] order.
pub fn diagnose_with(facts: &Facts, th: &Thresholds) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    out.extend(table::check(facts, th));
    out.extend(confirm::check(facts, th));
    out.extend(buckets::check(facts, th));
    out.extend(resolved::check(facts, th));
    out.extend(cpu::check(facts, th));
    out.extend(invalid::check(facts, th));
    out.extend(churn::check(facts, th));
    out.extend(states::check(facts, th));
    out.extend(scan::check(facts, th));
    out.extend(nat::check(facts, th));
    out.extend(helpers::check(facts, th));
    out.extend(reset::check(facts, th));
    out.extend(traced::nat_failures(facts));
    traced::annotate(facts, &mut out);
    out.retain(|f| !f.evidence.is_empty());
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
    out
}

/// `x` rounded to 2 decimals (0 when not finite).
pub(crate) fn round2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// Percent of a 0..=1 share, rounded to 2 decimals.
pub(crate) fn pct(share: f64) -> f64 {
    round2(share * 100.0)
}

/// Count, max and utilisation, when known.
pub(crate) fn table_evidence(f: &Facts, out: &mut Vec<Evidence>) {
    if let Some(c) = f.table.count {
        out.push(Evidence::new(EvidenceKey::Count, c as f64));
    }
    if let Some(m) = f.table.max {
        out.push(Evidence::new(EvidenceKey::Max, m as f64));
    }
    if let Some(u) = f.table.utilisation {
        out.push(Evidence::new(EvidenceKey::Utilisation, pct(u)));
    }
}

/// The window rate of each counter that was measured.
pub(crate) fn rate_evidence(f: &Facts, out: &mut Vec<Evidence>, cs: &[Counter]) {
    for &c in cs {
        if f.counters.measured(c) {
            out.push(Evidence::of(
                EvidenceKey::CounterRate,
                c,
                round2(f.counters.rate(c)),
            ));
        }
    }
}

/// The listed flows, when there are enough of them ([`Thresholds::min_flows`])
/// for a share-based finding to mean something.
pub(crate) fn enough_flows<'f>(f: &Facts<'f>, th: &Thresholds) -> Option<&'f HotspotSummary> {
    f.obs.hotspots.as_ref().filter(|h| h.flows >= th.min_flows)
}

/// Whether the table is under pressure: near max now or at the peak.
pub(crate) fn under_pressure(f: &Facts, th: &Thresholds) -> bool {
    f.table.peak_utilisation.is_some_and(|u| u >= th.pressure) || f.table.at_limit
}

#[cfg(test)]
mod tests;
