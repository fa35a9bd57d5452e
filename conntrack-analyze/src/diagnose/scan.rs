//! `scan-suspects`: sources with many flows that never saw a reply.
//!
//! **Checks:** a source holds 100 or more UNREPLIED flows that are not in
//! flight (their last packet 2 s old or more: a loaded server answers
//! late, which is not a scan), and unreplied flows hold 5% of the table
//! or more (a client whose DNS queries sometimes go unanswered is not a
//! scanner).
//!
//! **Why:** unreplied entries hold the table for the full unreplied
//! timeout; many from one source is a scanner, a flood, or a client
//! retrying against a dead backend.

use super::{Thresholds, enough_flows, pct};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;

pub(super) fn check(f: &Facts, th: &Thresholds) -> Option<Finding> {
    let h = enough_flows(f, th)?;
    if (h.unreplied as f64) < 0.05 * h.flows as f64 {
        return None;
    }
    let scaled = |n: u64| f.mix.as_ref().map_or(n, |m| m.scaled(n));
    let suspects: Vec<_> = h
        .unreplied_by_source
        .top
        .iter()
        .filter(|k| scaled(k.count) >= th.scan_unreplied)
        .take(5)
        .collect();
    if suspects.is_empty() {
        return None;
    }
    let mut finding = Finding::new(
        FindingId::ScanSuspects,
        Severity::Warning,
        format!("{} source(s) with many unanswered flows", suspects.len()),
    );
    for k in &suspects {
        finding = finding.with(Evidence::of(
            EvidenceKey::UnrepliedFromSource,
            &k.key,
            scaled(k.count) as f64,
        ));
    }
    Some(
        finding
            .with(Evidence::new(
                EvidenceKey::UnrepliedFlows,
                scaled(h.unreplied) as f64,
            ))
            .with(Evidence::new(
                EvidenceKey::UnrepliedShare,
                pct(h.unreplied as f64 / h.flows as f64),
            ))
            .recommend(Remedy::LimitUnrepliedSources)
            .explain(
                "Flows that never saw a reply hold entries for the full unreplied timeout. Many \
                 from one source is a scanner, a flood, or a client retrying against a dead \
                 backend.",
            ),
    )
}
