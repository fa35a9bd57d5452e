//! `confirm-failures`: inserts that fail when a new entry is confirmed,
//! with the table far from full.
//!
//! **Checks:** `insert_failed` rose over the window while the table is far
//! below max and `early_drop` did not rise: the entries were allocated
//! (there was room), and failed at `__nf_conntrack_confirm`. Packets are
//! lost when `drop` rose with it, when `chaintoolong` rose (a chain-cap
//! refusal drops the packet without counting `drop`), or on 5.10+, where
//! every path that counts `insert_failed` drops the packet.
//!
//! **Why:** these drops are invisible to "is the table full?" checks and
//! cost a SYN retransmission (1 s, then 3 s) or a DNS retry (5 s) each.
//! Their causes need different fixes, so they are ranked from the
//! evidence:
//!
//! - the NAT port-allocation race (new connections through SNAT or
//!   MASQUERADE pick a mapping that is reserved only at confirm; two CPUs
//!   can pick the same one, and the loser's insert clashes). Without
//!   `--random-fully` the first candidate is the connection's own source
//!   port, so concurrent connections from different containers that use
//!   the same source port to one destination collide on the first try;
//! - the same-tuple UDP race (DNS A and AAAA from one socket on two CPUs),
//!   which kernels resolve since 4.6 (identical NAT) and 5.6 (differing
//!   NAT, commit 6a757c07e51f);
//! - the chain cap (5.15+, commit d7e7747ac5c2);
//! - an entry dying, or an extension failing, during confirm.
//!
//! How the kernel counts each outcome changed over versions (see
//! [`crate::facts::ClashAccounting`]); the reasoning follows the kernel's
//! era, and a vendor kernel whose counters behave like a newer one's.
//!
//! **Does not fire** when the table is near max (that is `table-full`) or
//! on counters that only grew before the window.

use super::{Thresholds, pct, rate_evidence, round2, table_evidence};
use crate::cause::{Cause, Likelihood, RankedCause, rank};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::{ClashAccounting, Facts, RateMethod};
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;
use conntrack_core::{Counter, KernelVersion, Support};

pub(super) fn check(f: &Facts, th: &Thresholds) -> Option<Finding> {
    let c = &f.counters;
    if !c.is_live(Counter::InsertFailed) || c.is_live(Counter::EarlyDrop) {
        return None;
    }
    if f.table.utilisation.is_some_and(|u| u >= th.far_below_max) {
        return None;
    }
    let ins = c.rate(Counter::InsertFailed);
    let drop = c.rate(Counter::Drop);
    let chain = c.is_live(Counter::ChainTooLong);
    let acct = c.clash_accounting;
    let lost = c.is_live(Counter::Drop) || chain || acct == ClashAccounting::ResolvedInClashResolve;
    let equal = ins > 0.0 && (drop - ins).abs() <= 0.02 * ins;

    let mut e = Vec::new();
    rate_evidence(
        f,
        &mut e,
        &[
            Counter::InsertFailed,
            Counter::Drop,
            Counter::EarlyDrop,
            Counter::ClashResolve,
            Counter::ChainTooLong,
        ],
    );
    table_evidence(f, &mut e);
    if let Some(m) = &f.mix {
        e.push(Evidence::of(
            EvidenceKey::ProtoShare,
            "tcp",
            pct(m.tcp_share),
        ));
        e.push(Evidence::of(
            EvidenceKey::ProtoShare,
            "udp",
            pct(m.udp_share),
        ));
        e.push(Evidence::new(EvidenceKey::NatShare, pct(m.nat_share)));
        e.push(Evidence::of(
            EvidenceKey::NatShareOfProto,
            "tcp",
            pct(m.tcp_nat_share),
        ));
        e.push(Evidence::new(EvidenceKey::DnsShare, pct(m.dns_share)));
        if let Some((dst, share)) = &m.top_snat_destination {
            e.push(Evidence::of(
                EvidenceKey::SnatDestinationShare,
                dst,
                pct(*share),
            ));
        }
    }
    if let Some(r) = f.churn.new_per_sec {
        e.push(Evidence::new(
            EvidenceKey::NewConnectionRate,
            round2(r.per_sec),
        ));
    }
    if let Some(imb) = &f.cpu.failures {
        e.push(Evidence::new(EvidenceKey::Cpus, imb.cpus as f64));
        e.push(Evidence::of(
            EvidenceKey::CpusWithCounter,
            imb.counter,
            f.cpu.cpus_with_failures as f64,
        ));
        e.push(Evidence::new(
            EvidenceKey::BusiestCpuShare,
            pct(imb.busiest_share),
        ));
    }
    if let Some(r) = &f.obs.config.nat_rules {
        e.push(Evidence::new(
            EvidenceKey::SnatRules,
            r.source_nat.len() as f64,
        ));
        e.push(Evidence::new(
            EvidenceKey::SnatRulesWithoutFullyRandom,
            r.without_fully_random().count() as f64,
        ));
    }

    let ctx = Ctx {
        f,
        ins,
        drop,
        equal,
        acct,
    };
    let mut causes = vec![
        nat_port_race(&ctx),
        udp_clash(&ctx),
        chain_cap(&ctx),
        dying_or_extension(&ctx),
    ];
    super::traced::confirm_causes(f, &mut causes);
    rank(&mut causes);
    let lead = causes[0].clone();
    let mut finding = Finding::new(
        FindingId::ConfirmFailures,
        if lost {
            Severity::Critical
        } else {
            Severity::Warning
        },
        format!(
            "{} at {:.1}% of max: confirm-time failures, {} {}",
            if equal {
                "insert_failed == drop"
            } else {
                "insert_failed rising"
            },
            f.table.utilisation.map_or(0.0, |u| u * 100.0),
            if lead.likelihood.is_actionable() {
                "most likely the"
            } else {
                "possibly the"
            },
            lead.cause.describe()
        ),
    )
    .with_all(e);
    for c in causes.iter().filter(|c| c.likelihood.is_actionable()) {
        for &r in &c.remedies {
            finding = finding.recommend(r);
        }
    }
    if finding.remedies.is_empty() {
        // Nothing stands out: the leading possibility's fixes.
        for &r in &lead.remedies {
            finding = finding.recommend(r);
        }
    }
    finding.causes = causes;
    let traced = super::traced::confirm_sentence(f).unwrap_or_default();
    Some(finding.explain(explanation(&ctx, lost) + &traced))
}

struct Ctx<'f, 'a> {
    f: &'f Facts<'a>,
    ins: f64,
    drop: f64,
    equal: bool,
    acct: ClashAccounting,
}

fn explanation(x: &Ctx, lost: bool) -> String {
    let mut s = String::from(
        "The table is far from full and early_drop did not rise, so entries were allocated \
         and then failed when the kernel confirmed them (__nf_conntrack_confirm), not for lack \
         of room: raising nf_conntrack_max or the bucket count does not help unless the chain \
         cap is the cause. ",
    );
    s.push_str(match x.acct {
        ClashAccounting::InsertFailedOnly => {
            "On this kernel (before 4.6) a clash counts in insert_failed only and is never \
             resolved. "
        }
        ClashAccounting::ResolvedInInsertFailed => {
            "On this kernel's counters (4.6 to 5.9) every clash counts in insert_failed and \
             only an unresolved one also in drop; a dying entry counts in insert_failed only. "
        }
        ClashAccounting::ResolvedInClashResolve => {
            "On this kernel (5.10+) a resolved clash counts only in clash_resolve; an \
             unresolved one in insert_failed and drop; a chain-cap refusal in chaintoolong and \
             insert_failed but not drop. "
        }
        ClashAccounting::Unknown => {
            "The kernel version is unknown, so the counters' meaning is read from the columns \
             present. "
        }
    });
    if x.equal && x.acct == ClashAccounting::ResolvedInInsertFailed {
        s.push_str(
            "insert_failed equals drop: every failure came with a dropped packet, so the kernel \
             merged no clash and no entry was dying (drop also counts other drops, which would \
             have to offset those exactly): the failures are races it cannot resolve (TCP, or \
             UDP with differing NAT before 5.6). ",
        );
    } else if x.equal && x.acct == ClashAccounting::ResolvedInClashResolve {
        s.push_str(
            "insert_failed equals drop: the failures are unresolved clashes, not chain-cap \
             refusals (those do not count drop). ",
        );
    }
    if !lost {
        s.push_str("drop did not rise: the kernel resolved these clashes and no packet was lost. ");
    }
    s.push_str(
        "Per-drop tracing of __nf_conntrack_confirm (eBPF) is the only way to name the flows; \
         the ranked causes say which one the counters and the table point at.",
    );
    s
}

fn nat_port_race(x: &Ctx) -> RankedCause {
    let f = x.f;
    let mut c = RankedCause::new(Cause::NatPortRace, Likelihood::Possible);
    c.remedies = vec![Remedy::FullyRandomNat, Remedy::ReuseConnections];
    if f.containers == Some(true) {
        c.remedies.push(Remedy::BypassNat);
    }
    c.to_tell_apart = "capture the NAT rules (iptables-save -t nat, nft list ruleset): SNAT or \
                       MASQUERADE without --random-fully (nft fully-random) leaves the race open. \
                       The lost packets are SYNs of new connections through SNAT, retransmitted \
                       after 1 s (tcpdump shows the retransmitted SYNs to the destinations \
                       below); on 5.10+ clash_resolve stays flat while insert_failed and drop \
                       rise together."
        .into();
    let mut score = 0i32;
    match &f.mix {
        Some(m) if m.snat_share < 0.01 && m.tcp_nat_share < 0.05 => {
            c.likelihood = Likelihood::Excluded;
            c.contradicts.push(format!(
                "only {:.1}% of the flows are source-translated",
                m.snat_share * 100.0
            ));
            return c;
        }
        Some(m) => {
            if m.tcp_share >= 0.5 && m.tcp_snat_share >= 0.3 {
                score += 2;
                c.supports.push(format!(
                    "the table is {:.0}% TCP and {:.0}% of the TCP flows are source-translated",
                    m.tcp_share * 100.0,
                    m.tcp_snat_share * 100.0
                ));
            } else if m.snat_share >= 0.1 {
                score += 1;
                c.supports.push(format!(
                    "{:.0}% of the flows are source-translated",
                    m.snat_share * 100.0
                ));
            }
            if m.snat_sources >= 2 && m.snat_share >= 0.1 {
                c.supports.push(format!(
                    "{} sources are translated to the same address: each picks its source \
                     ports on its own, so two that use the same port toward one destination \
                     collide when the kernel first tries to keep the original port",
                    m.snat_sources
                ));
            }
            if let Some((dst, share)) = m.top_snat_destination.as_ref().filter(|t| t.1 >= 0.1) {
                score += 1;
                c.supports.push(format!(
                    "{:.0}% of the source-translated flows go to {dst}: they compete for the \
                     same source ports",
                    share * 100.0
                ));
            }
        }
        None => c
            .contradicts
            .push("no flow listing: the NAT share of the table is unknown".into()),
    }
    if let Some(rules) = &f.obs.config.nat_rules {
        let open: Vec<_> = rules.without_fully_random().collect();
        if rules.source_nat.is_empty() {
            score -= 2;
            c.contradicts
                .push("the captured ruleset has no SNAT or MASQUERADE rule".into());
            c.remedies.retain(|r| *r != Remedy::FullyRandomNat);
        } else if open.is_empty() {
            score -= 2;
            c.contradicts.push(format!(
                "all {} SNAT/MASQUERADE rules use fully-random port selection, which makes the \
                 collision rare",
                rules.source_nat.len()
            ));
            // The fix is in place: what remains of the race (two CPUs that
            // draw the same random port) is fixed by fewer new connections.
            c.remedies.retain(|r| *r != Remedy::FullyRandomNat);
        } else {
            score += 1;
            c.supports.push(format!(
                "{} of {} SNAT/MASQUERADE rules pick ports without fully-random ({})",
                open.len(),
                rules.source_nat.len(),
                open[0]
            ));
        }
    } else {
        c.supports.push(
            "the NAT rules were not captured; Docker and most CNIs before 2020 install \
             MASQUERADE without --random-fully"
                .into(),
        );
    }
    if x.equal && x.acct == ClashAccounting::ResolvedInInsertFailed {
        score += 1;
        c.supports.push(format!(
            "insert_failed ({:.1}/s) equals drop ({:.1}/s): no clash was resolved, which argues \
             against same-tuple UDP races the kernel merges",
            x.ins, x.drop
        ));
    }
    if f.counters.is_live(Counter::Found)
        && (f.kernel_at_least(4, 9) == Some(true) || f.counters.backported)
    {
        score += 1;
        c.supports.push(format!(
            "found rises ({:.0}/s): since 4.9 it counts only NAT port searches that hit a \
             mapping in use, so new connections contend for the same mappings",
            f.counters.rate(Counter::Found)
        ));
    }
    if let Some(r) = f.churn.new_per_sec.filter(|r| r.per_sec >= 10.0) {
        score += 1;
        c.supports.push(format!(
            "about {:.0} new connections/s{}: the race grows with concurrent new connections",
            r.per_sec,
            match r.method {
                RateMethod::Events => " (NEW events)",
                RateMethod::TimeWaitInflow => " (inferred from TIME_WAIT)",
            }
        ));
    }
    if let Some(imb) = &f.cpu.failures
        && f.cpu.cpus_with_failures >= 2
        && !imb.spread.is_imbalanced()
    {
        c.supports.push(format!(
            "the failures are spread over {} of {} CPUs: parallel processing of new \
             connections, which is what races",
            f.cpu.cpus_with_failures, imb.cpus
        ));
    }
    if f.kernel.is_some_and(shared_port_rover) {
        c.supports.push(
            "before 5.0 (and 4.19.228) a port search after a conflict starts from one rover \
             shared by all CPUs (6ed5943f8735 replaced it with a random start)"
                .into(),
        );
    }
    c.score = score;
    c.likelihood = match score {
        s if s >= 3 => Likelihood::Likely,
        s if s >= 1 => Likelihood::Possible,
        s if s <= -2 => Likelihood::Unlikely,
        _ => Likelihood::Possible,
    };
    c
}

fn udp_clash(x: &Ctx) -> RankedCause {
    let f = x.f;
    let mut c = RankedCause::new(Cause::UdpClash, Likelihood::Possible);
    c.remedies = vec![Remedy::AvoidParallelDnsQueries];
    c.to_tell_apart = "clients see 5 s resolver timeouts; tcpdump on port 53 shows A and AAAA \
                       queries from the same source port a microsecond apart; on 5.10+ \
                       clash_resolve rises with them."
        .into();
    let old = f.kernel.is_some_and(|k| !k.at_least(5, 6));
    if old {
        c.remedies.push(Remedy::UpgradeKernel);
    }
    let mut score = 0i32;
    if let Some(m) = &f.mix {
        if m.udp_share < 0.01 && m.dns_flows == 0 {
            c.likelihood = Likelihood::Excluded;
            c.contradicts.push(format!(
                "the table holds almost no UDP ({:.1}%) and no DNS flow",
                m.udp_share * 100.0
            ));
            return c;
        }
        if m.dns_share >= 0.01 {
            score += if m.dns_share >= 0.1 { 2 } else { 1 };
            c.supports.push(format!(
                "{} DNS flows ({:.1}% of the table), {:.0}% of them translated",
                m.dns_flows,
                m.dns_share * 100.0,
                m.dns_nat_share * 100.0
            ));
            if m.dns_nat_share >= 0.5 {
                score += 1;
            }
        } else {
            score -= 1;
            c.contradicts
                .push(format!("DNS is {:.2}% of the table", m.dns_share * 100.0));
        }
    }
    match x.acct {
        ClashAccounting::ResolvedInClashResolve => {
            if f.counters.is_live(Counter::ClashResolve) {
                c.contradicts.push(format!(
                    "clash_resolve rises ({:.1}/s): the kernel resolves the UDP races, they are \
                     not the drops",
                    f.counters.rate(Counter::ClashResolve)
                ));
            }
            c.contradicts
                .push("5.6+ resolves UDP clashes with differing NAT too (6a757c07e51f)".into());
            score -= 3;
        }
        ClashAccounting::ResolvedInInsertFailed if x.equal => {
            score -= 3;
            c.contradicts.push(
                "insert_failed equals drop: no clash was resolved, while same-tuple UDP \
                 clashes with identical NAT are resolved (and counted in insert_failed only)"
                    .into(),
            );
        }
        ClashAccounting::ResolvedInInsertFailed if x.ins > x.drop * 1.05 => {
            score += 1;
            c.supports.push(format!(
                "insert_failed ({:.1}/s) exceeds drop ({:.1}/s): the kernel resolved some \
                 clashes (or entries were dying at confirm), and on this kernel only UDP clashes \
                 can be resolved",
                x.ins, x.drop
            ));
        }
        _ => {}
    }
    if old && f.mix.as_ref().is_some_and(|m| m.dns_share >= 0.01) {
        score += 2;
        c.supports.push(
            "before 5.6 a UDP clash with differing NAT (DNS through a DNAT'd service with \
             several endpoints) is dropped"
                .into(),
        );
    }
    c.score = score;
    c.likelihood = match score {
        s if s >= 3 => Likelihood::Likely,
        s if s >= 1 => Likelihood::Possible,
        _ => Likelihood::Unlikely,
    };
    c
}

fn chain_cap(x: &Ctx) -> RankedCause {
    let f = x.f;
    let c_ = &f.counters;
    let mut c = RankedCause::new(Cause::ChainCap, Likelihood::Possible);
    c.remedies = vec![Remedy::ResizeBuckets];
    c.to_tell_apart = "chaintoolong (5.15+) counts every refusal; it rises with insert_failed \
                       but not with drop."
        .into();
    let reading = c_.get(Counter::ChainTooLong);
    match reading.status {
        crate::facts::CounterStatus::NotCountedByKernel {
            support: Support::NotYet { .. },
        } => {
            c.likelihood = Likelihood::Excluded;
            c.contradicts.push(
                "mainline kernels before 5.15 have no chain cap (d7e7747ac5c2 added it), and \
                 this kernel reports no chaintoolong counter, which the backport adds"
                    .into(),
            );
            return c;
        }
        _ if c_.is_live(Counter::ChainTooLong) => {
            let r = c_.rate(Counter::ChainTooLong);
            c.likelihood = Likelihood::Confirmed;
            c.supports.push(format!(
                "chaintoolong rises at {:.1}/s ({:.0}% of insert_failed)",
                r,
                if x.ins > 0.0 { 100.0 * r / x.ins } else { 0.0 }
            ));
            return c;
        }
        _ if c_.measured(Counter::ChainTooLong) => {
            c.likelihood = Likelihood::Excluded;
            c.contradicts
                .push("chaintoolong did not rise over the window".into());
            return c;
        }
        _ => {}
    }
    if x.equal {
        c.contradicts
            .push("insert_failed equals drop, and a chain-cap refusal does not count drop".into());
        c.likelihood = Likelihood::Unlikely;
    }
    match f.table.mean_chain {
        Some(l) if l < 2.0 => {
            c.contradicts.push(format!(
                "the mean chain is {l:.2} nodes, far below any cap (8 at the lowest)"
            ));
            c.likelihood = Likelihood::Unlikely;
        }
        Some(l) => c.supports.push(format!("the mean chain is {l:.2} nodes")),
        None => {}
    }
    c
}

fn dying_or_extension(x: &Ctx) -> RankedCause {
    let mut c = RankedCause::new(Cause::DyingOrExtension, Likelihood::Unlikely);
    c.to_tell_apart = "only tracing the confirm path names it; it is rare outside flushes and \
                       ruleset reloads that add extensions to live entries."
        .into();
    if x.equal && x.acct != ClashAccounting::InsertFailedOnly {
        c.contradicts.push(
            "insert_failed equals drop, and a dying entry counts in insert_failed only".into(),
        );
        c.likelihood = Likelihood::Unlikely;
    }
    c
}

/// Whether a kernel's NAT port search (after the first try, which keeps the
/// original port) starts from one rover shared by every CPU: mainline
/// before 5.0 and 4.19 before 4.19.228 (6ed5943f8735 "netfilter: nat:
/// remove l4 protocol port rovers" made the start random in 5.0 and was
/// backported to 4.19.228).
fn shared_port_rover(k: KernelVersion) -> bool {
    let backported = k.at_least(4, 19) && !k.at_least(4, 20) && k.patch >= 228;
    !(k.at_least(5, 0) || backported)
}
