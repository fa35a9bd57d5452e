//! `connection-churn`: many new short-lived connections.
//!
//! **Checks:** the new-connection rate (NEW events, or inferred from the
//! entries entering TIME_WAIT: each closed connection enters it once) is
//! at or above 100/s, or TIME_WAIT holds half the table or more.
//!
//! **Why:** every new connection is a conntrack insert, a NAT port
//! allocation when translated, and an entry held through TIME_WAIT
//! (Little's law: entries = closes/s x timeout). Reusing connections
//! (HTTP keepalive, nginx `upstream keepalive`, database pools) removes
//! the inserts, the TIME_WAIT tail and, behind NAT, the port races.
//!
//! **Severity:** `warning` when the table is under pressure or inserts are
//! failing; `info` on a healthy busy host (no false alarm).

use super::{Thresholds, pct, round2, under_pressure};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::{Facts, RateMethod};
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;
use crate::timeouts::inflow_rate;
use conntrack_core::{Counter, FlowState, L4Proto, TcpState, TimeoutKey};

pub(super) fn check(f: &Facts, th: &Thresholds) -> Option<Finding> {
    let mix = f.mix.as_ref();
    let enough = mix.is_some_and(|m| m.flows >= th.min_flows);
    let rate = f
        .churn
        .new_per_sec
        .filter(|r| r.per_sec >= th.churn_per_sec);
    let tw_share = mix.map_or(0.0, |m| m.time_wait_share);
    if !(rate.is_some() || (enough && tw_share >= th.time_wait_share)) {
        return None;
    }
    let tw = f.timeout(TimeoutKey::TcpTimeWait);
    let mut e = Vec::new();
    if let Some(r) = f.churn.new_per_sec {
        e.push(Evidence::new(
            EvidenceKey::NewConnectionRate,
            round2(r.per_sec),
        ));
    }
    if let Some(n) = f.churn.time_wait {
        e.push(Evidence::of(
            EvidenceKey::StateEntries,
            "TIME_WAIT",
            n as f64,
        ));
    }
    if mix.is_some() {
        e.push(Evidence::of(
            EvidenceKey::StateShare,
            "TIME_WAIT",
            pct(tw_share),
        ));
    }
    e.push(Evidence::of(
        EvidenceKey::Timeout,
        tw.key,
        f64::from(tw.secs),
    ));
    if let Some(h) = &f.obs.hotspots {
        for k in h.closing_by_destination.top.iter().take(3) {
            e.push(Evidence::of(
                EvidenceKey::StateEntries,
                format!("closing to {}", k.key),
                f.mix.as_ref().map_or(k.count, |m| m.scaled(k.count)) as f64,
            ));
        }
    }
    let failing = f.counters.is_live(Counter::InsertFailed);
    let pressure = under_pressure(f, th);
    let mut finding = Finding::new(
        FindingId::ConnectionChurn,
        if pressure || failing {
            Severity::Warning
        } else {
            Severity::Info
        },
        match f.churn.new_per_sec {
            Some(r) => format!(
                "about {:.0} new connections/s{}; TIME_WAIT holds {:.0}% of the table",
                r.per_sec,
                match r.method {
                    RateMethod::Events => "",
                    RateMethod::TimeWaitInflow => " (inferred from TIME_WAIT)",
                },
                tw_share * 100.0
            ),
            None => format!("TIME_WAIT holds {:.0}% of the table", tw_share * 100.0),
        },
    )
    .with_all(e)
    .recommend(Remedy::ReuseConnections);
    if pressure && tw_share >= 0.2 {
        finding = finding.recommend(Remedy::ShortenTimeout(TimeoutKey::TcpTimeWait));
    }
    // Little's law over the remaining timers: the TIME_WAIT population the
    // current close rate sustains. Worth saying only when it differs from
    // today's (a recent rise or fall of the close rate).
    let steady = f.obs.hotspots.as_ref().and_then(|h| {
        let s = h.state(L4Proto::TCP, FlowState::Tcp(TcpState::TIME_WAIT))?;
        let n = inflow_rate(&s.remaining_secs, tw.secs) * f64::from(tw.secs);
        Some(mix.map_or(n, |m| n * m.scale))
    });
    let mut text = String::from(
        "Each connection costs a conntrack insert, a NAT port allocation when it is \
         translated, and an entry held for the whole TIME_WAIT timeout after it closes \
         (entries = closes/s x timeout). Reusing connections removes all three: HTTP \
         keepalive in clients, `keepalive` in nginx upstream blocks, pools for databases and \
         brokers.",
    );
    if let (Some(s), Some(now)) = (steady, f.churn.time_wait)
        && now > 0
        && ((s - now as f64).abs() / now as f64) > 0.2
    {
        text.push_str(&format!(
            " At the current close rate TIME_WAIT {} toward about {} entries (now {}).",
            if s > now as f64 { "grows" } else { "shrinks" },
            crate::evidence::group(s.round() as i64),
            crate::evidence::group(now as i64)
        ));
    }
    if !(pressure || failing) {
        text.push_str(" The table is not under pressure: this is worth knowing, not urgent.");
    }
    Some(finding.explain(text))
}
