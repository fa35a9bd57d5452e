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
//! - `nat-failures`: NAT's own drops. No conntrack counter moves for them
//!   (nf_nat_masquerade_ipv4() returns NF_DROP before any entry is
//!   confirmed, net/netfilter/nf_nat_masquerade.c), so only the tracer
//!   shows them; the finding names source NAT without an address as the
//!   cause and recommends giving it one, not more entries or buckets.
//!
//! The tracer's window and the counters' are not the same: traced counts
//! are cited as what the tracer saw, never compared with the counter
//! rates.

use crate::cause::{Cause, Likelihood, RankedCause};
use crate::drops::{DropCause, DropSummary};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;

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

/// `nat-failures`: packets NAT itself dropped, as traced.
pub(super) fn nat_failures(f: &Facts) -> Option<Finding> {
    let d = f.obs.drops.as_ref()?;
    let n = d.count(DropCause::NatFailure);
    if n == 0 {
        return None;
    }
    let described = d.describe(DropCause::NatFailure).unwrap_or_default();
    let mut cause = RankedCause::new(Cause::SnatNoAddress, Likelihood::Likely);
    cause.score = 100;
    cause.supports.push(format!("traced: {described}"));
    if d.mostly_snat(DropCause::NatFailure) {
        // A mapping was made: not an address missing at setup.
        cause.likelihood = Likelihood::Possible;
        cause.contradicts.push(
            "most of the dropped flows already had a source mapping (the output interface \
             changed under a masqueraded flow, or a later NAT step failed)"
                .into(),
        );
    }
    cause.to_tell_apart = "the kernel log says '<dev> ate my IP address' for each packet a \
                           MASQUERADE dropped for want of an address; `ip -4 addr show dev \
                           <dev>` shows none"
        .into();
    cause.remedies = vec![Remedy::FixNatAddress];
    let mut finding = Finding::new(
        FindingId::NatFailures,
        Severity::Critical,
        format!(
            "{n} packets dropped by NAT itself in the last {} s",
            d.window_secs.round()
        ),
    )
    .with(Evidence::of(
        EvidenceKey::TracedDrops,
        DropCause::NatFailure.name(),
        n as f64,
    ))
    .recommend(Remedy::FixNatAddress)
    .explain(format!(
        "The drop tracer saw NAT drop the first packets of new flows at its own step \
         (no conntrack counter counts these: the entry is never confirmed). Traced: \
         {described}. The usual cause is a MASQUERADE (or SNAT without a fixed address) out \
         an interface that has no IPv4 address when no other interface offers one, which \
         the kernel logs as '<dev> ate my IP address'. The table and its buckets are not \
         involved: more entries change nothing."
    ));
    finding.causes.push(cause);
    Some(finding)
}
