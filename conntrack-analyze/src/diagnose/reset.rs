//! `counter-reset`: the counters went backwards within the window.
//!
//! **Checks:** the rate computation detected a reset (reboot, module
//! reload, namespace recreated) and discarded the intervals across it.

use super::Thresholds;
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId, Severity};

pub(super) fn check(f: &Facts, _th: &Thresholds) -> Option<Finding> {
    let r = f.obs.rates.as_ref().filter(|r| !r.resets.is_empty())?;
    Some(
        Finding::new(
            FindingId::CounterReset,
            Severity::Info,
            "statistics counters were reset during the window",
        )
        .with(Evidence::new(EvidenceKey::Resets, r.resets.len() as f64))
        .with(Evidence::new(
            EvidenceKey::IntervalsDiscarded,
            (r.window.intervals - r.window.used_intervals) as f64,
        ))
        .explain(
            "Counters and entries went backwards together (reboot, module reload or the \
             namespace was recreated). Intervals across a reset were left out of the rates.",
        ),
    )
}
