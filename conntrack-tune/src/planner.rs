//! The coordinator: facts + findings + policy -> [`Plan`]. The rules live
//! in `rules/`, one file per concern; this function shows their order and
//! what each takes from the others.

use crate::folk;
use crate::plan::*;
use crate::policy::{Policy, PolicyError};
use crate::rules::{self, Ctx, Outcome};
use conntrack_analyze::{Facts, Finding};

/// Builds a plan from the model of a host and its diagnosis. Fails only
/// when the policy is out of range. Every remedy a finding recommends is
/// either acted on or declined with the reason ([`Plan::unanswered`] is
/// empty).
///
/// ```
/// use conntrack_analyze::{diagnose, Facts, Observation};
/// use conntrack_core::{HostSnapshot, KernelVersion};
/// use conntrack_tune::{plan, Policy};
/// // A 5.4 host whose table is full: 65,536 of 65,536 entries.
/// let obs = Observation::new(HostSnapshot::default()
///     .with_kernel_version(KernelVersion::new(5, 4, 0))
///     .with_mem_total_bytes(16 << 30)
///     .with_count(65_536)
///     .with_max(65_536)
///     .with_buckets(16_384));
/// let facts = Facts::derive(&obs);
/// let findings = diagnose(&facts);
/// let p = plan(&facts, &findings, &Policy::default()).unwrap();
/// assert!(p.action("raise-max").is_some());
/// assert!(p.unanswered(&findings).is_empty());
/// ```
pub fn plan(facts: &Facts, findings: &[Finding], policy: &Policy) -> Result<Plan, PolicyError> {
    policy.validate()?;
    let cx = Ctx::new(facts, findings, policy);
    let mut all = Outcome::default();
    context_notes(&cx, &mut all);
    all.absorb(rules::kube_proxy::plan(&cx));
    let sizing = rules::sizing::plan(&cx);
    let (new_max, new_buckets) = (sizing.new_max, sizing.new_buckets);
    all.absorb(sizing.outcome);
    all.absorb(rules::rps::plan(&cx));
    all.absorb(rules::confirm::plan(&cx));
    all.absorb(rules::timeouts::plan(&cx, new_max.is_some()));
    all.absorb(rules::workload::plan(&cx));
    all.absorb(rules::notrack::plan(&cx));
    all.absorb(rules::helpers::plan(&cx));
    let settings = std::mem::take(&mut all.persist);
    all.absorb(rules::persistence::plan(
        &cx,
        &settings,
        new_max,
        new_buckets,
    ));
    let t = &facts.table;
    let clamp = |v: Option<u64>| v.map(|x| x.min(u64::from(u32::MAX)) as u32);
    let mut p = Plan {
        actions: all.actions,
        declined: all.declined,
        unjudged: all.unjudged,
        warnings: all.warnings,
        context: PlanContext {
            kernel: facts.kernel.map(|v| v.to_string()),
            era: facts.era,
            init_netns: t.init_netns,
            count: clamp(t.count),
            peak: clamp(t.peak),
            max: clamp(t.max),
            buckets: clamp(t.buckets),
            memory_budget_bytes: cx.budget,
        },
        folk: Vec::new(),
    };
    p.sort();
    p.folk = folk::evaluate(facts, findings, &p);
    Ok(p)
}

/// What the plan could not judge for lack of facts.
fn context_notes(cx: &Ctx, o: &mut Outcome) {
    let f = cx.facts;
    if f.kernel.is_none() {
        o.unjudged(
            "kernel era",
            "kernel version unknown: sizing follows the >= 5.15 rules, counter meanings are read \
             from the columns present",
        );
    }
    if !f.counters.has_window() {
        if f.obs.snapshot.stats.is_some() {
            o.unjudged(
                "drop timing",
                "no rates over a window: counters are cumulative since boot and may describe an \
                 old incident",
            );
        } else {
            o.unjudged(
                "drops",
                "no counters (neither a window nor /proc/net/stat/nf_conntrack): cannot tell \
                 table-full drops from confirm-time failures",
            );
        }
    }
}
