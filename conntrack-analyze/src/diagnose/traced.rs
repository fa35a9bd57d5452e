//! Traced drops ([`crate::drops::DropSummary`], `doctor --trace`) as
//! evidence: a reason the tracer attributed is seen, not inferred from
//! counters.
//!
//! - `confirm-failures`: a cause whose drops were traced is confirmed
//!   (unresolved clashes mostly after source NAT are the NAT port race;
//!   without source NAT, UDP ones are the same-tuple UDP race;
//!   chain-cap refusals the chain cap; dying entries the dying/extension
//!   cause). When insert_failed drops were traced, a cause none of them
//!   showed is unlikely: the ranking, and the plan's fixes that follow the
//!   actionable causes, follow the reasons seen.
//! - `table-full`: the traced table-full drops name who was refused.
//!
//! The tracer's window and the counters' are not the same: traced counts
//! are cited as what the tracer saw, never compared with the counter
//! rates.

use crate::cause::{Cause, Likelihood, RankedCause};
use crate::drops::{DropCause, DropSummary};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId};

/// Which traced cause a confirm-failure cause is, given the summary.
fn traced_as(d: &DropSummary, cause: Cause) -> Option<DropCause> {
    let clash_udp = d
        .group(DropCause::UnresolvedClash)
        .and_then(|g| g.protocols.first())
        .is_some_and(|p| p.value == "udp");
    match cause {
        Cause::NatPortRace if d.mostly_snat(DropCause::UnresolvedClash) => {
            Some(DropCause::UnresolvedClash)
        }
        Cause::UdpClash if !d.mostly_snat(DropCause::UnresolvedClash) && clash_udp => {
            Some(DropCause::UnresolvedClash)
        }
        Cause::ChainCap => Some(DropCause::ChainTooLong),
        Cause::DyingOrExtension => Some(DropCause::Dying),
        _ => None,
    }
}

/// Adjusts `confirm-failures`' causes to the traced drops (before they
/// are ranked and their remedies taken).
pub(super) fn confirm_causes(f: &Facts, causes: &mut [RankedCause]) {
    let Some(d) = &f.obs.drops else {
        return;
    };
    let total = d.insert_failed();
    if total == 0 {
        return;
    }
    for c in causes.iter_mut() {
        let seen = traced_as(d, c.cause).map_or(0, |t| d.count(t));
        if seen > 0 {
            let t = traced_as(d, c.cause).expect("seen");
            c.likelihood = Likelihood::Confirmed;
            c.score += 100;
            c.supports.insert(
                0,
                format!(
                    "traced: {}% of the insert_failed drops in the last {} s ({seen} of {total}) \
                     were {}: {}",
                    (seen as f64 * 100.0 / total as f64).round(),
                    d.window_secs.round(),
                    t.describe_plural(),
                    d.describe(t).unwrap_or_default()
                ),
            );
        } else if c.likelihood != Likelihood::Excluded {
            c.likelihood = Likelihood::Unlikely;
            c.contradicts.push(format!(
                "none of the {total} insert_failed drops traced in the last {} s was one",
                d.window_secs.round()
            ));
        }
    }
}

/// One sentence for `confirm-failures`' explanation.
pub(super) fn confirm_sentence(f: &Facts) -> Option<String> {
    let d = f.obs.drops.as_ref()?;
    (d.insert_failed() > 0).then(|| {
        let parts: Vec<String> = DropCause::ALL
            .into_iter()
            .filter(|c| c.counts_insert_failed())
            .filter_map(|c| d.describe(c))
            .collect();
        format!(
            " The drop tracer attributed each lost packet: {}.",
            parts.join("; ")
        )
    })
}

/// Cites traced table-full drops in the `table-full` finding.
pub(super) fn annotate(f: &Facts, findings: &mut [Finding]) {
    let Some(d) = &f.obs.drops else {
        return;
    };
    let Some(s) = d.describe(DropCause::TableFull) else {
        return;
    };
    for finding in findings.iter_mut().filter(|x| x.id == FindingId::TableFull) {
        finding.explanation.push_str(&format!(
            " Traced: {s} (refused at allocation, early_drop found nothing to evict)."
        ));
        if let Some(c) = finding.causes.first_mut() {
            c.supports.push(format!("traced: {s}"));
        }
    }
}
