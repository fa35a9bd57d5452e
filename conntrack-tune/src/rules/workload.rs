//! Advice for the workload, one action per remedy a finding recommends:
//! reuse connections, take high-churn containers off NAT, limit sources
//! of unanswered flows, close sockets left in CLOSE_WAIT, find the source
//! of invalid packets, give source NAT an address. The effects name what
//! the evidence shows (the destinations short-lived connections go to, the
//! sources). Without a drop trace, a ruleset with MASQUERADE leaves NAT's
//! own drops unjudged: no counter shows them.

use super::{Ctx, Outcome};
use crate::plan::*;
use conntrack_analyze::answers::concentration;
use conntrack_analyze::{Finding, Remedy};

pub(crate) fn plan(cx: &Ctx) -> Outcome {
    let mut o = Outcome::default();
    if cx.recommending(Remedy::ReuseConnections).is_some() {
        o.actions.push(reuse(cx));
    }
    if let Some(f) = cx.recommending(Remedy::BypassNat) {
        o.actions.push(bypass_nat(cx, f));
    }
    for (remedy, topic, title, effect, risk, verify) in [
        (
            Remedy::LimitUnrepliedSources,
            AdviceTopic::UnrepliedSources,
            "Limit the sources that open unanswered flows (scanners, floods, or clients of a \
             dead backend)",
            "unreplied entries are the first evicted (early_drop) but still fill the table \
             under a flood: rate-limit new flows per source (nft `meter`/`limit`, iptables \
             `hashlimit`), block scanners, or fix the backend the clients retry against; SYN \
             cookies protect the host's own sockets",
            "a per-source limit that is too low drops legitimate bursts (NAT'd clients share \
             one source)",
            "conntrack -L --status UNREPLIED | wc -l falls",
        ),
        (
            Remedy::FixCloseWait,
            AdviceTopic::CloseWait,
            "Find the application that leaves sockets in CLOSE_WAIT and make it close them",
            "the peer closed and the local application never called close(): `ss -tnp state \
             close-wait` names the process; fix the code path that leaks the socket. A \
             shorter close_wait timeout only hides the leak",
            "none: this is a code fix",
            "ss -tn state close-wait | wc -l falls",
        ),
        (
            Remedy::InvestigateInvalid,
            AdviceTopic::InvalidPackets,
            "Find where the invalid packets come from",
            "sysctl -w net.netfilter.nf_conntrack_log_invalid=255 logs each invalid packet \
             with the kernel's reason (out of window, bad checksum, unexpected flags); \
             asymmetric routing, a SYN flood or a middlebox rewriting sequence numbers are the \
             usual sources",
            "logging every invalid packet can flood the kernel log: switch it off after a \
             minute",
            "the invalid rate falls",
        ),
        (
            Remedy::FixNatAddress,
            AdviceTopic::NatAddress,
            "Give source NAT an address: the interface MASQUERADE leaves by has none",
            "every new flow leaving by that interface is dropped by NAT itself, before any \
             conntrack entry is kept (no counter shows it; the kernel logs '<dev> ate my IP \
             address'): add the interface's IPv4 address, or SNAT to a fixed address, or route \
             the flows out an interface that has one. More entries or buckets change nothing",
            "none: restores the mapping the rule meant to make",
            "doctor --trace shows no nat_failure drops; new flows through the interface pass",
        ),
    ] {
        if let Some(f) = cx.recommending(remedy) {
            let mut a = Action::advice(topic, Priority::P2, Scope::Workload, title)
                .answering(remedy, cx.cite(f));
            a.effect.text = effect.into();
            a.risk = Risk {
                level: RiskLevel::Low,
                text: risk.into(),
            };
            a.rollback = "undo the change in the application or ruleset".into();
            a.verify = vec![Verify::Manual {
                text: verify.into(),
            }];
            o.actions.push(a);
        }
    }
    if cx.recommending(Remedy::FixNatAddress).is_none() && untraced_masquerade(cx) {
        o.unjudged(
            "nat failures",
            "drops were not traced: a MASQUERADE that finds no IPv4 address to use drops the \
             first packet of every new flow it handles, and no conntrack counter counts those \
             drops (the entry is never confirmed); `doctor --trace` on the live host shows \
             them, so does the kernel log's '<dev> ate my IP address'",
        );
    }
    o
}

/// MASQUERADE rules in the ruleset and no drop tracer over the window:
/// NAT's own drops could have happened unseen (nf_nat_masquerade_ipv4()
/// returns NF_DROP without counting, net/netfilter/nf_nat_masquerade.c).
fn untraced_masquerade(cx: &Ctx) -> bool {
    cx.facts.obs.drops.is_none()
        && cx.facts.obs.config.nat_rules.as_ref().is_some_and(|r| {
            r.source_nat
                .iter()
                .any(|s| s.kind == conntrack_core::nat_rules::SourceNatKind::Masquerade)
        })
}

fn reuse(cx: &Ctx) -> Action {
    let mut a = Action::advice(
        AdviceTopic::Keepalive,
        Priority::P2,
        Scope::Workload,
        "Reuse connections: HTTP keepalive, nginx upstream keepalive, connection pools",
    );
    a.remedy = Some(Remedy::ReuseConnections);
    for g in cx
        .findings
        .iter()
        .filter(|g| g.remedies.contains(&Remedy::ReuseConnections))
    {
        a.evidence.push(cx.cite(g));
    }
    let mut text = String::from(
        "one connection carries many requests instead of one each: fewer conntrack inserts, \
         fewer NAT port allocations (and so fewer port races), no TIME_WAIT tail per request. \
         Clients: HTTP keepalive (ab -k, pooled HTTP clients); nginx: `keepalive` in upstream \
         blocks with `proxy_http_version 1.1` and an empty Connection header (a TCP-mode \
         `stream` proxy cannot pool: it opens one upstream connection per client \
         connection); databases and brokers: connection pools (HikariCP, pgbouncer, \
         persistent connections)",
    );
    if let Some(h) = &cx.facts.obs.hotspots
        && !h.closing_by_destination.top.is_empty()
    {
        let scale = |c: u64| cx.facts.mix.as_ref().map_or(c, |m| m.scaled(c));
        text.push_str(&format!(
            ". Short-lived connections here go {}",
            concentration(&h.closing_by_destination, scale, 3, "to", "destinations")
        ));
    }
    a.effect.text = text;
    a.effect.entries_freed = cx.facts.churn.time_wait;
    a.risk = Risk {
        level: RiskLevel::Low,
        text: "long-lived connections pin clients to backends; balance per request at the proxy"
            .into(),
    };
    a.rollback = "disable keepalive in the client or proxy configuration".into();
    a.verify = vec![Verify::Manual {
        text: "TIME_WAIT entries (conntrack -L -p tcp --state TIME_WAIT | wc -l) and the \
               new-connection rate fall"
            .into(),
    }];
    a
}

fn bypass_nat(cx: &Ctx, f: &Finding) -> Action {
    let mut a = Action::advice(
        AdviceTopic::HostNetworking,
        Priority::P2,
        Scope::Workload,
        "Take high-churn containers off NAT: host networking, or pooled connections",
    )
    .answering(Remedy::BypassNat, cx.cite(f));
    if let Some(m) = &cx.facts.mix {
        a.evidence.push(Evidence::new(
            Source::Facts,
            format!(
                "{:.0}% of the entries are translated: NAT needs conntrack, so NOTRACK cannot \
                 remove them",
                m.nat_share * 100.0
            ),
        ));
    }
    a.effect.text = "a container on the host network (docker run --network host) opens \
                     connections without a NAT mapping, so they cannot race for ports; \
                     keepalive and pooling in the container cut the number of translated \
                     connections"
        .into();
    a.risk = Risk {
        level: RiskLevel::Medium,
        text: "host networking removes network isolation and port remapping for that container"
            .into(),
    };
    a.rollback = "run the container on its bridge network again".into();
    a.verify = vec![Verify::Manual {
        text: "translated entries (conntrack -L --src-nat / --dst-nat | wc -l) fall".into(),
    }];
    a
}
