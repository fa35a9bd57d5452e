//! `nat-amplification`: translated flows hold most of the table.
//!
//! **Checks:** half the table or more is translated (status bits or
//! reply-tuple asymmetry).
//!
//! **Why:** container bridges (MASQUERADE) and service DNAT put every
//! container and service flow in the host's table, and NAT needs
//! conntrack: these flows can never be exempted with NOTRACK. The finding
//! is context for the others; it is `warning` only under table pressure,
//! and then recommends reusing connections when short connections fill
//! the table, and host networking when the translated flows are a
//! container host's (container interfaces seen).

use super::{Thresholds, enough_flows, pct, under_pressure};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId, Severity};
use crate::hotspots::KeyKind;
use crate::remedy::Remedy;

pub(super) fn check(f: &Facts, th: &Thresholds) -> Option<Finding> {
    let h = enough_flows(f, th)?;
    let m = f.mix.as_ref()?;
    if m.nat_share < th.nat_share {
        return None;
    }
    let pressure = under_pressure(f, th);
    let mut finding = Finding::new(
        FindingId::NatAmplification,
        if pressure {
            Severity::Warning
        } else {
            Severity::Info
        },
        format!(
            "translated flows hold {:.0}% of the table",
            m.nat_share * 100.0
        ),
    )
    .with(Evidence::new(EvidenceKey::NatShare, pct(m.nat_share)))
    .with(Evidence::new(
        EvidenceKey::SnatFlows,
        m.scaled(h.nat.snat + h.nat.both) as f64,
    ))
    .with(Evidence::new(
        EvidenceKey::DnatFlows,
        m.scaled(h.nat.dnat + h.nat.both) as f64,
    ));
    if let Some(top) = h.table(KeyKind::Name).and_then(|t| t.top.first()) {
        finding = finding.with(Evidence::of(
            EvidenceKey::NamedFlows,
            &top.key,
            m.scaled(top.count) as f64,
        ));
    }
    if pressure && m.time_wait_share >= 0.2 {
        finding = finding.recommend(Remedy::ReuseConnections);
    }
    if pressure && f.containers == Some(true) {
        finding = finding.recommend(Remedy::BypassNat);
    }
    Some(finding.explain(
        "Container bridges (masquerade) and service DNAT put every container and service flow \
         in the host's table; a chatty container or a service VIP can fill it for everyone. NAT \
         needs conntrack, so NOTRACK can never remove these flows; fewer connections \
         (keepalive, pools) or a workload off NAT (host networking) can.",
    ))
}
