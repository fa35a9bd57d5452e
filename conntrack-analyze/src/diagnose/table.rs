//! `table-full` and `table-nearly-full`.
//!
//! **Checks:** the count reached `nf_conntrack_max`, or `early_drop` rose
//! (the kernel evicted unassured entries to make room), or `drop` rose
//! beyond `insert_failed` near max: `__nf_conntrack_alloc` refused new
//! entries (`nf_conntrack: table full, dropping packet`; `drop` is counted
//! in `nf_conntrack_in`). Otherwise, a count at 80% of max or more is
//! "nearly full" with the time to full at the current trend.
//!
//! **Why:** every new flow is refused while the table is full; the
//! causes rank what fills it (TIME_WAIT churn, unanswered flows, idle
//! ESTABLISHED entries, or plain demand above max), because raising max
//! alone treats the symptom.
//!
//! **Does not fire** on a counter that only grew before the window, or
//! when max is 0 (unlimited).

use super::{Thresholds, pct, rate_evidence, round2, table_evidence};
use crate::capacity::{TimeToFull, time_to_full};
use crate::cause::{Cause, Likelihood, RankedCause, rank};
use crate::evidence::{Evidence, EvidenceKey, group};
use crate::facts::{DemandMethod, Facts};
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;
use conntrack_core::{Counter, FlowState, L4Proto, TcpState, TimeoutKey};

pub(super) fn check(f: &Facts, th: &Thresholds) -> Option<Finding> {
    if f.table.unlimited() {
        return None;
    }
    let c = &f.counters;
    let early = c.is_live(Counter::EarlyDrop);
    let drop_beyond = c.is_live(Counter::Drop)
        && c.rate(Counter::Drop) > c.rate(Counter::InsertFailed) * 1.05 + 0.01
        && f.table.peak_utilisation.is_some_and(|u| u >= th.full);
    if early || drop_beyond || f.table.at_limit {
        return Some(full(f));
    }
    let util = f.table.utilisation?;
    (util >= th.nearly_full).then(|| nearly_full(f, util))
}

fn full(f: &Facts) -> Finding {
    let mut e = Vec::new();
    table_evidence(f, &mut e);
    rate_evidence(
        f,
        &mut e,
        &[Counter::EarlyDrop, Counter::Drop, Counter::InsertFailed],
    );
    if let Some(d) = f
        .demand
        .as_ref()
        .filter(|d| d.method == DemandMethod::PeakPlusRefused)
    {
        e.push(Evidence::new(EvidenceKey::DemandEntries, d.entries as f64));
    }
    let causes = fill_causes(f);
    let mut finding = Finding::new(
        FindingId::TableFull,
        Severity::Critical,
        "conntrack table full: new flows are being dropped",
    );
    finding.evidence = e;
    finding = finding.recommend(Remedy::RaiseMax);
    for c in causes.iter().filter(|c| c.likelihood.is_actionable()) {
        for &r in &c.remedies {
            finding = finding.recommend(r);
        }
    }
    finding.causes = causes;
    finding.explain(
        "The table reached nf_conntrack_max: the kernel evicts unassured entries (early_drop) \
         and drops the first packet of every new flow when none can be evicted (\"nf_conntrack: \
         table full, dropping packet\", counted in drop). The peak count is capped at max, so \
         it understates the demand; the ranked causes say what fills the table, which decides \
         whether raising max is enough.",
    )
}

/// Where a share goes: evidence for a cause the share makes at least
/// possible, against one it makes unlikely.
fn side(c: &mut RankedCause) -> &mut Vec<String> {
    if c.likelihood >= Likelihood::Unlikely {
        &mut c.contradicts
    } else {
        &mut c.supports
    }
}

/// What fills a full table, ranked.
fn fill_causes(f: &Facts) -> Vec<RankedCause> {
    let Some((h, mix)) = f.obs.hotspots.as_ref().zip(f.mix.as_ref()) else {
        let mut c = RankedCause::new(Cause::DemandAboveMax, Likelihood::Possible);
        c.to_tell_apart = "list the table (conntrack -L) to see which states fill it".into();
        c.remedies = vec![Remedy::RaiseMax];
        return vec![c];
    };
    let level = |share: f64| {
        if share >= 0.3 {
            Likelihood::Likely
        } else if share >= 0.1 {
            Likelihood::Possible
        } else {
            Likelihood::Unlikely
        }
    };
    let mut out = Vec::new();

    let tw_secs = f.timeout(TimeoutKey::TcpTimeWait).secs;
    let mut tw = RankedCause::new(Cause::TimeWaitChurn, level(mix.time_wait_share));
    tw.score = (mix.time_wait_share * 100.0) as i32;
    side(&mut tw).push(format!(
        "TIME_WAIT holds {:.0}% of the table; each closed connection stays there for \
         tcp_timeout_time_wait ({tw_secs} s)",
        mix.time_wait_share * 100.0
    ));
    tw.to_tell_apart = "the TIME_WAIT share of the table and the closing connections by \
                        destination (conntrack -L -p tcp --state TIME_WAIT)"
        .into();
    tw.remedies = vec![
        Remedy::ReuseConnections,
        Remedy::ShortenTimeout(TimeoutKey::TcpTimeWait),
    ];
    out.push(tw);

    let mut un = RankedCause::new(Cause::UnrepliedFlood, level(mix.unreplied_share));
    un.score = (mix.unreplied_share * 100.0) as i32;
    side(&mut un).push(format!(
        "{:.0}% of the entries never saw a reply",
        mix.unreplied_share * 100.0
    ));
    un.to_tell_apart = "unreplied flows by source (conntrack -L --status UNREPLIED)".into();
    un.remedies = vec![Remedy::LimitUnrepliedSources];
    out.push(un);

    let est_secs = f.timeout(TimeoutKey::TcpEstablished).secs;
    let idle_share = h
        .state(L4Proto::TCP, FlowState::Tcp(TcpState::ESTABLISHED))
        .map_or(0.0, |s| {
            let cutoff = f64::from(est_secs.saturating_sub(3600));
            s.remaining_secs.count_below(cutoff) / h.flows.max(1) as f64
        });
    let mut idle = RankedCause::new(Cause::IdleEstablished, level(idle_share));
    idle.score = (idle_share * 100.0) as i32;
    side(&mut idle).push(format!(
        "{:.0}% of the table is ESTABLISHED entries idle for more than an hour \
         (tcp_timeout_established {est_secs} s)",
        idle_share * 100.0
    ));
    idle.to_tell_apart =
        "remaining timeouts of ESTABLISHED entries far below the timeout mean idle entries".into();
    idle.remedies = vec![Remedy::ShortenTimeout(TimeoutKey::TcpEstablished)];
    out.push(idle);

    let dominant = out.iter().any(|c| c.likelihood == Likelihood::Likely);
    let mut demand = RankedCause::new(
        Cause::DemandAboveMax,
        if dominant {
            Likelihood::Possible
        } else {
            Likelihood::Likely
        },
    );
    if let (Some(d), Some(m)) = (f.demand.as_ref(), f.table.max) {
        demand.supports.push(format!(
            "the inferred demand is {} entries against max {}",
            group(d.entries as i64),
            group(m as i64)
        ));
    }
    if !dominant {
        demand
            .supports
            .push("no single state or kind of flow dominates the table".into());
    }
    demand.to_tell_apart = "the states and keys of the table; a max far below the kernel's \
                            default for the allocated buckets"
        .into();
    demand.remedies = vec![Remedy::RaiseMax];
    out.push(demand);
    rank(&mut out);
    out
}

fn nearly_full(f: &Facts, util: f64) -> Finding {
    let mut e = Vec::new();
    table_evidence(f, &mut e);
    if let (Some(c), Some(m), Some(t)) = (
        f.table.count,
        f.table.max,
        f.obs.rates.as_ref().and_then(|r| r.entries.as_ref()),
    ) {
        e.push(Evidence::new(
            EvidenceKey::CountTrend,
            round2(t.slope_per_sec),
        ));
        if let TimeToFull::In(s) = time_to_full(c, m, t.slope_per_sec) {
            e.push(Evidence::new(EvidenceKey::TimeToFull, round2(s)));
        }
    }
    Finding::new(
        FindingId::TableNearlyFull,
        Severity::Warning,
        format!("conntrack table {:.0}% full", pct(util)),
    )
    .recommend(Remedy::RaiseMax)
    .explain(
        "The count is close to nf_conntrack_max; at max, new flows are dropped. Check which \
         states and keys fill the table before raising the limit.",
    )
    .with_all(e)
}
