//! `unneeded-helpers`: conntrack helper modules loaded that no flow uses.
//!
//! **Checks:** helper modules are loaded and no examined flow has a helper
//! or came from an expectation.
//!
//! **Why:** helpers parse payloads and open expectations (attack
//! surface). Since 4.7 (commit 3bb398d925ec "netfilter: nf_ct_helper:
//! disable automatic helper assignment") they act only on flows an
//! explicit CT rule assigns them, so an unused one is inert; a built-in
//! one cannot be unloaded at all (the planner says so).

use super::{Thresholds, enough_flows};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;

pub(super) fn check(f: &Facts, th: &Thresholds) -> Option<Finding> {
    let s = &f.obs.snapshot;
    let h = enough_flows(f, th)?;
    if s.helpers.is_empty() || h.helper_flows > 0 {
        return None;
    }
    Some(
        Finding::new(
            FindingId::UnneededHelpers,
            Severity::Info,
            format!("helper modules loaded but unused: {}", s.helpers.join(", ")),
        )
        .with(Evidence::new(
            EvidenceKey::HelperModules,
            s.helpers.len() as f64,
        ))
        .with(Evidence::new(EvidenceKey::HelperFlows, 0.0))
        .with(Evidence::new(EvidenceKey::FlowsExamined, h.flows as f64))
        .recommend(Remedy::UnloadHelpers)
        .explain(
            "No flow uses a conntrack helper. Helpers parse payloads and open expectations (a \
             classic attack surface). Since 4.7 (3bb398d925ec) they are attached only by explicit \
             CT rules, so an unused one is inert; a loadable one can be unloaded, a built-in one \
             cannot.",
        ),
    )
}
