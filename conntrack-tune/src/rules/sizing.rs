//! Table sizing: `nf_conntrack_max` and the bucket count.
//!
//! - **raise-max** when the table is full or under pressure, or when max is
//!   below the peak times the policy's headroom. The target is sized from
//!   the demand, not from a peak capped at max (Little's law over the
//!   refused connections: [`conntrack_analyze::facts::Demand`]), and is at
//!   least the max the kernel itself pairs with the buckets already
//!   allocated (buckets since 5.15, 4 x buckets before, 8 x with an
//!   explicit hashsize): those buckets are paid for, entries are allocated
//!   on demand. The worst-case memory is stated and kept within the
//!   policy's budget.
//! - **buckets** keep the mean chain `2 x max / buckets` at the policy's
//!   target: urgent with a chain-cap refusal or a raised max of a full
//!   table, hygiene when the table can plausibly grow to max, declined
//!   when max is far above any demand seen (the chain only grows with
//!   the entries).

use super::{Ctx, Outcome, delta, mib, n};
use crate::plan::*;
use conntrack_analyze::capacity::{allocation_unit, buckets_for, mean_chain_length};
use conntrack_analyze::facts::DemandMethod;
use conntrack_analyze::{EvidenceKey, FindingId, Remedy};
use conntrack_core::Counter;

/// What sizing decided, for the rules that persist it.
#[derive(Debug, Default)]
pub(crate) struct Sizing {
    pub outcome: Outcome,
    /// The proposed max, when raised.
    pub new_max: Option<u64>,
    /// The proposed bucket count, when resized.
    pub new_buckets: Option<u64>,
}

/// Utilisation of the proposed max by the peak under which resizing the
/// buckets for a full table is not worth its memory.
const GROWTH_PLAUSIBLE: f64 = 0.25;

pub(crate) fn plan(cx: &Ctx) -> Sizing {
    let mut out = Sizing::default();
    let t = &cx.facts.table;
    let (Some(peak), Some(max), Some(buckets)) = (t.peak, t.max, t.buckets) else {
        out.outcome.unjudged(
            "table sizing",
            "needs the entry count (or peak), nf_conntrack_max and the bucket count",
        );
        for r in [Remedy::RaiseMax, Remedy::ResizeBuckets] {
            if cx.recommending(r).is_some() {
                out.outcome.decline(
                    &r.name(),
                    Some(r),
                    "the count, nf_conntrack_max or the bucket count is unknown: no size can be \
                     computed",
                );
            }
        }
        return out;
    };
    if cx.budget.is_none() {
        out.outcome.unjudged(
            "memory budget",
            "MemTotal unknown: sizing proceeds without a memory budget check",
        );
    }
    let final_max = raise_max(cx, &mut out, peak, max, buckets);
    resize_buckets(cx, &mut out, peak, final_max, buckets);
    out
}

/// Decides on max; returns the max after the plan.
fn raise_max(cx: &Ctx, out: &mut Sizing, peak: u64, max: u64, buckets: u64) -> u64 {
    let f = cx.facts;
    let policy = cx.policy;
    let o = &mut out.outcome;
    let asked = cx.recommending(Remedy::RaiseMax);
    if max == 0 {
        o.decline(
            "raise-max",
            Some(Remedy::RaiseMax),
            "nf_conntrack_max is 0 (unlimited): nothing to raise",
        );
        return max;
    }
    let full = cx.table_full();
    let demand = f.demand.as_ref().map_or(peak, |d| d.entries.max(peak));
    let required = (demand as f64 * policy.headroom).ceil() as u64;
    if let Some(d) = f.demand.as_ref().filter(|_| full) {
        let text = match d.method {
            DemandMethod::PeakPlusRefused if d.hold_is_floor => format!(
                "the table was full (peak {} of max {}): the peak is censored. {:.1} new flows/s \
                 were refused; the table is mostly {}, open connections that hold their entry as \
                 long as they are used, which the table does not tell, so each refused one is \
                 counted for {} s only (the TIME_WAIT every closed connection holds): the demand \
                 is at least about {} entries (Little's law; retransmitted first packets count \
                 twice)",
                n(peak),
                n(max),
                d.refused_per_sec.unwrap_or(0.0),
                d.hold_state.as_deref().unwrap_or("?"),
                d.hold_secs.unwrap_or(0),
                n(d.entries)
            ),
            DemandMethod::PeakPlusRefused => format!(
                "the table was full (peak {} of max {}): the peak is censored. {:.1} new flows/s \
                 were refused, each would have held an entry for {} s (the timeout of {}, the \
                 state that fills the table), so the demand is about {} entries (Little's law; \
                 an upper bound, as clients retransmit refused first packets)",
                n(peak),
                n(max),
                d.refused_per_sec.unwrap_or(0.0),
                d.hold_secs.unwrap_or(0),
                d.hold_state.as_deref().unwrap_or("?"),
                n(d.entries)
            ),
            _ => format!(
                "the table was full (peak {} of max {}): the peak is censored and no window \
                 measured the refused flows, so the real demand may be higher",
                n(peak),
                n(max)
            ),
        };
        o.warn(WarningKind::PeakCensored, text);
    }
    let kernel_max = f.table.kernel_max_for_buckets.filter(|&k| k > max);
    let mut target = required;
    if (full || asked.is_some())
        && let Some(k) = kernel_max
    {
        target = target.max(k);
    }
    if max >= target {
        let why = match asked {
            Some(fd) => format!(
                "{} recommends it, but max {} already covers the demand of {} entries with the \
                 policy's headroom ({}x)",
                fd.id,
                n(max),
                n(demand),
                policy.headroom
            ),
            None if cx
                .findings
                .iter()
                .any(|x| x.id == FindingId::ConfirmFailures) =>
            {
                format!(
                    "peak {} is {:.1}% of max {}: the table is far from full, and confirm-time \
                 failures do not depend on max",
                    n(peak),
                    100.0 * peak as f64 / max as f64,
                    n(max)
                )
            }
            None => format!(
                "peak {} is {:.1}% of max {}: the limit is not the problem",
                n(peak),
                100.0 * peak as f64 / max as f64,
                n(max)
            ),
        };
        o.decline("raise-max", Some(Remedy::RaiseMax), why);
        let committed = cx.mem.bytes(max, buckets);
        if let Some(b) = cx.budget.filter(|&b| committed > b) {
            o.warn(
                WarningKind::OverBudget,
                format!(
                    "the current max {} commits up to {} worst case, over the budget of {}; the \
                     policy's headroom needs only {}. Nothing is proposed: lowering max frees no \
                     memory until the table fills, and risks drops",
                    n(max),
                    mib(committed),
                    mib(b),
                    n(required)
                ),
            );
        }
        return max;
    }
    // Keep the chain target at the new max within the budget.
    let chain = policy.max_chain_length;
    let new_buckets = buckets.max(buckets_for(target, chain, cx.page));
    let bytes = cx.mem.bytes(target, new_buckets);
    if let Some(b) = cx.budget.filter(|&b| bytes > b) {
        // The largest max within the budget, with the buckets it needs or
        // those already allocated, whichever is more (a resize never
        // shrinks them here).
        let bucket_bytes = cx.mem.bytes(0, buckets);
        let within_allocated = b.saturating_sub(bucket_bytes) / cx.mem.per_entry.max(1);
        let fits = cx.mem.max_within(b, chain, cx.page).min(within_allocated);
        if fits >= required && fits > max {
            target = fits;
        } else {
            o.warn(
                WarningKind::BudgetConflict,
                format!(
                    "the memory budget ({} = {}% of RAM) and the headroom cannot both be met: \
                     max {} needs {} worst case; the budget holds max {} at most. Raise the \
                     budget, or reduce entries first (see the timeout and workload actions).",
                    mib(b),
                    policy.memory_budget_share * 100.0,
                    n(required),
                    mib(cx
                        .mem
                        .bytes(required, buckets.max(buckets_for(required, chain, cx.page)))),
                    n(fits)
                ),
            );
            o.decline(
                "raise-max",
                Some(Remedy::RaiseMax),
                format!(
                    "max {} would exceed the memory budget; a max below {} would break the \
                     headroom rule",
                    n(required),
                    n(required)
                ),
            );
            return max;
        }
    }
    let new_buckets = buckets.max(buckets_for(target, chain, cx.page));
    let bytes = cx.mem.bytes(target, new_buckets);
    let before = cx.mem.bytes(max, buckets);
    let mut a = Action::new(
        ActionKind::SetMax { max: target },
        if full { Priority::P0 } else { Priority::P1 },
        Scope::HostInitNamespace,
        format!("Raise nf_conntrack_max from {} to {}", n(max), n(target)),
    );
    a.remedy = Some(Remedy::RaiseMax);
    a.change = Some(Change {
        target: KEY_MAX.into(),
        current: Some(Value::Count(max)),
        proposed: Value::Count(target),
    });
    if let Some(fd) = asked {
        a.evidence.push(cx.cite(fd));
    }
    a.evidence.push(
        Evidence::new(
            Source::Facts,
            format!(
                "demand {} entries ({}), x{} headroom = {}",
                n(demand),
                match f.demand.as_ref() {
                    Some(d) if d.method == DemandMethod::PeakPlusRefused => format!(
                        "peak plus the refused flows held {} s each",
                        d.hold_secs.unwrap_or(0)
                    ),
                    Some(d) if d.method == DemandMethod::CensoredPeak =>
                        "the censored peak: a lower bound".to_string(),
                    _ => "the peak".to_string(),
                },
                policy.headroom,
                n(required)
            ),
        )
        .num(conntrack_analyze::Evidence::new(
            EvidenceKey::DemandEntries,
            demand as f64,
        )),
    );
    if let Some(k) = kernel_max.filter(|&k| k == target) {
        a.evidence.push(Evidence::new(
            Source::Kernel,
            format!(
                "{} is the max the kernel itself pairs with the {} buckets already allocated ({}): \
                 the buckets are paid for, entries are allocated on demand",
                n(k),
                n(buckets),
                match f.table.origin {
                    conntrack_analyze::capacity::SizingOrigin::ExplicitHashsize => {
                        "8 x buckets with an explicit hashsize"
                    }
                    _ => match f.era {
                        Some(conntrack_analyze::capacity::SizingEra::OneTimes) => {
                            "max = buckets since 5.15, d532bcd0b269"
                        }
                        _ => "4 x buckets before 5.15",
                    },
                }
            ),
        ));
    }
    a.effect = Effect {
        memory_delta_bytes: Some(delta(bytes, before)),
        memory_after_bytes: Some(bytes),
        entries_freed: None,
        chain_length_after: mean_chain_length(target, new_buckets),
        text: format!(
            "room for {} entries ({:.1}x the demand); worst-case memory {} at a full table \
             ({} B per entry, {} B per bucket); entries are allocated on demand, buckets up front.{}",
            n(target),
            target as f64 / demand.max(1) as f64,
            mib(bytes),
            cx.mem.per_entry,
            cx.mem.per_bucket,
            cx.init_netns_note()
        ),
    };
    a.risk = Risk {
        level: RiskLevel::Low,
        text: "more entries use more memory under load; the limit is global and applies to \
               every namespace's own count"
            .into(),
    };
    a.rollback = format!("sysctl -w {KEY_MAX}={max}");
    a.verify = vec![
        Verify::ReadBack {
            path: sysctl_path(KEY_MAX),
            expected: target.to_string(),
        },
        Verify::CounterFlat {
            counter: "drop".into(),
        },
        Verify::CounterFlat {
            counter: "early_drop".into(),
        },
    ];
    o.actions.push(a);
    o.persist.push((KEY_MAX.into(), target.to_string()));
    out.new_max = Some(target);
    target
}

fn resize_buckets(cx: &Ctx, out: &mut Sizing, peak: u64, final_max: u64, buckets: u64) {
    let f = cx.facts;
    let policy = cx.policy;
    let o = &mut out.outcome;
    let target = policy.max_chain_length;
    let asked = cx.recommending(Remedy::ResizeBuckets);
    if final_max == 0 {
        if asked.is_some() {
            o.decline(
                "buckets",
                Some(Remedy::ResizeBuckets),
                "max is unlimited: size the buckets from the count you expect",
            );
        }
        return;
    }
    let needed = buckets_for(final_max, target, cx.page);
    let chain_now = mean_chain_length(final_max, buckets).unwrap_or(f64::INFINITY);
    if mean_chain_length(final_max, needed).unwrap_or(f64::INFINITY) > target {
        o.decline(
            "buckets",
            asked.map(|_| Remedy::ResizeBuckets),
            format!(
                "a mean chain of {target} at max {} needs more buckets than the kernel's 32-bit \
                 table size allows",
                n(final_max)
            ),
        );
        return;
    }
    if needed <= buckets {
        if asked.is_some() {
            o.decline(
                "buckets",
                Some(Remedy::ResizeBuckets),
                format!(
                    "{} buckets keep the mean chain at {:.2} even at a full table",
                    n(buckets),
                    chain_now
                ),
            );
        }
        return;
    }
    let chain_evidence = f.counters.is_live(Counter::ChainTooLong)
        || cx.finding(FindingId::OverloadedBuckets).is_some();
    let raised = out.new_max.is_some();
    let plausible = raised || peak as f64 >= GROWTH_PLAUSIBLE * final_max as f64;
    let bytes = cx.mem.bytes(final_max, needed);
    let before = cx.mem.bytes(final_max, buckets);
    if !(chain_evidence || plausible) {
        o.decline(
            "buckets",
            asked.map(|_| Remedy::ResizeBuckets),
            format!(
                "the mean chain is {:.2} now and would reach {:.1} only at a full table of {} \
                 entries, {:.0}x the peak of {}: {} more for buckets is not worth it until the \
                 table grows toward max (or lower max to what the workload needs)",
                f.table.mean_chain.unwrap_or(0.0),
                chain_now,
                n(final_max),
                final_max as f64 / peak.max(1) as f64,
                n(peak),
                mib(bytes.saturating_sub(before))
            ),
        );
        return;
    }
    if let Some(b) = cx.budget.filter(|&b| bytes > b) {
        o.warn(
            WarningKind::BudgetConflict,
            format!(
                "keeping the mean chain at {target} for max {} needs {} buckets and {} worst \
                 case, over the budget of {}",
                n(final_max),
                n(needed),
                mib(bytes),
                mib(b)
            ),
        );
        o.decline(
            "buckets",
            asked.map(|_| Remedy::ResizeBuckets),
            "over the memory budget",
        );
        return;
    }
    let prio = if raised && cx.table_full() {
        Priority::P0
    } else if chain_evidence {
        Priority::P1
    } else {
        Priority::P3
    };
    let via_sysctl = f.kernel.is_none_or(|v| v.at_least(4, 9));
    let mut a = Action::new(
        ActionKind::SetBuckets {
            buckets: needed.min(u64::from(u32::MAX)) as u32,
            via_sysctl,
        },
        prio,
        Scope::HostInitNamespace,
        format!(
            "Resize the hash table from {} to {} buckets",
            n(buckets),
            n(needed)
        ),
    );
    a.remedy = Some(Remedy::ResizeBuckets);
    a.change = Some(Change {
        target: if via_sysctl {
            KEY_BUCKETS.into()
        } else {
            HASHSIZE_PARAM_PATH.into()
        },
        current: Some(Value::Count(buckets)),
        proposed: Value::Count(needed),
    });
    if let Some(fd) = asked {
        a.evidence.push(cx.cite(fd));
    }
    a.evidence.push(
        Evidence::new(
            Source::Facts,
            format!(
                "mean chain at a full table is 2 x {} / {} = {:.1}, over the target {}",
                n(final_max),
                n(buckets),
                chain_now,
                target
            ),
        )
        .num(conntrack_analyze::Evidence::new(
            EvidenceKey::MeanChain,
            (chain_now * 100.0).round() / 100.0,
        )),
    );
    if buckets * 4 == final_max {
        a.evidence.push(Evidence::new(
            Source::Kernel,
            "buckets = max/4 is the pre-5.15 default ratio (and kube-proxy's): 8 nodes per \
             chain at a full table; since 5.15 (d532bcd0b269) the default is 1:1",
        ));
    } else if buckets * 8 == final_max {
        a.evidence.push(Evidence::new(
            Source::Kernel,
            "max = 8 x buckets is what the kernel sets when hashsize is given explicitly: 16 \
             nodes per chain at a full table",
        ));
    }
    if cx.kube.is_some() {
        a.evidence.push(Evidence::new(
            Source::HostFiles,
            "kube-proxy raises the hash table to max/4 only when it is smaller, so a larger \
             bucket count set here stays",
        ));
    }
    let target_path = if via_sysctl {
        sysctl_path(KEY_BUCKETS)
    } else {
        HASHSIZE_PARAM_PATH.to_string()
    };
    a.effect = Effect {
        memory_delta_bytes: Some(delta(bytes, before)),
        memory_after_bytes: Some(bytes),
        entries_freed: None,
        chain_length_after: mean_chain_length(final_max, needed),
        text: format!(
            "mean chain at a full table {:.2} (rounded up to the allocation unit of {} \
             buckets); the resize does not change nf_conntrack_max.{}",
            mean_chain_length(final_max, needed).unwrap_or(0.0),
            allocation_unit(cx.page),
            cx.init_netns_note()
        ),
    };
    a.risk = Risk {
        level: RiskLevel::Low,
        text: "the resize rehashes every entry under the table lock: a short latency spike on a \
               busy host, and lookups restart (search_restart) while it runs"
            .into(),
    };
    a.rollback = format!("echo {buckets} > {target_path}");
    a.verify = vec![
        Verify::ReadBack {
            path: target_path,
            expected: needed.to_string(),
        },
        Verify::CounterFlat {
            counter: "chaintoolong".into(),
        },
    ];
    o.actions.push(a);
    out.new_buckets = Some(needed);
}
