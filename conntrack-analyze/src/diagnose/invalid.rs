//! `invalid-surge`: packets conntrack could not track, arriving fast.
//!
//! **Checks:** `invalid` rose over the window at 100/s or more.
//!
//! **Why:** out-of-window TCP, bad checksums and ICMP errors for unknown
//! flows are usually dropped by a `ct state invalid drop` rule; a surge
//! points at asymmetric routing, a SYN flood or a broken middlebox.
//!
//! **Does not fire** on history.

use super::{Thresholds, rate_evidence, round2};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;
use conntrack_core::Counter;

pub(super) fn check(f: &Facts, th: &Thresholds) -> Option<Finding> {
    let c = &f.counters;
    if !(c.is_live(Counter::Invalid) && c.rate(Counter::Invalid) >= th.invalid_per_sec) {
        return None;
    }
    let mut e = Vec::new();
    rate_evidence(f, &mut e, &[Counter::Invalid, Counter::Error]);
    if let Some(p) = c.get(Counter::Invalid).peak_per_sec {
        e.push(Evidence::of(
            EvidenceKey::PeakRate,
            Counter::Invalid,
            round2(p),
        ));
    }
    Some(
        Finding::new(
            FindingId::InvalidSurge,
            Severity::Warning,
            format!("{:.0} invalid packets/s", c.rate(Counter::Invalid)),
        )
        .with_all(e)
        .recommend(Remedy::InvestigateInvalid)
        .explain(
            "Packets conntrack could not track (out-of-window TCP, bad checksums, ICMP errors for \
             unknown flows) are arriving fast. They are not tracked and are usually dropped by an \
             INVALID rule; look for asymmetric routing, a SYN flood or a broken middlebox. \
             nf_conntrack_log_invalid shows the kernel's reason for each.",
        ),
    )
}
