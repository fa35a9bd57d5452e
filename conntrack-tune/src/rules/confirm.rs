//! Fixes for confirm-time failures, one per cause diagnosis ranked as
//! actionable:
//!
//! - **nat:fully-random** for the NAT port race: SNAT/MASQUERADE with
//!   `--random-fully` (`NF_NAT_RANGE_PROTO_RANDOM_FULLY`, upstream since
//!   3.14, commit 34ce324019e7; nft `fully-random`) draws every
//!   connection's port search start at random instead of first trying the
//!   connection's own source port, which is where concurrent connections
//!   collide. The rules that lack it are listed when the ruleset was
//!   captured.
//! - **advice:dns-clash** for same-tuple UDP races.
//! - **advice:kernel-upgrade** where a newer kernel resolves the race
//!   itself (UDP with differing NAT, 5.6, commit 6a757c07e51f).
//!
//! Buckets (the chain cap), connection reuse and host networking are the
//! sizing and workload rules' remedies.

use super::{Ctx, Outcome};
use crate::plan::*;
use conntrack_analyze::{FindingId, Remedy};

pub(crate) fn plan(cx: &Ctx) -> Outcome {
    let mut o = Outcome::default();
    if let Some(f) = cx.recommending(Remedy::FullyRandomNat) {
        fully_random(cx, f, &mut o);
    }
    if let Some(f) = cx.recommending(Remedy::AvoidParallelDnsQueries) {
        dns(cx, f, &mut o);
    }
    if let Some(f) = cx.recommending(Remedy::UpgradeKernel) {
        let mut a = Action::advice(
            AdviceTopic::KernelUpgrade,
            Priority::P2,
            Scope::Boot,
            "Upgrade to a kernel that resolves UDP clashes (5.6 or later)",
        )
        .answering(Remedy::UpgradeKernel, cx.cite(f));
        a.effect.text = "since 5.6 (commit 6a757c07e51f, \"netfilter: conntrack: allow \
                         insertion of clashing entries\") a UDP clash with differing NAT is \
                         resolved by inserting the loser for one second instead of dropping \
                         its packet"
            .into();
        a.risk = Risk {
            level: RiskLevel::Medium,
            text: "a kernel upgrade needs a maintenance window and a reboot".into(),
        };
        a.rollback = "boot the previous kernel".into();
        a.verify.push(Verify::CounterFlat {
            counter: "insert_failed".into(),
        });
        o.actions.push(a);
    }
    o
}

fn fully_random(cx: &Ctx, f: &conntrack_analyze::Finding, o: &mut Outcome) {
    let rules: Vec<_> = cx
        .facts
        .obs
        .config
        .nat_rules
        .as_ref()
        .map(|r| r.without_fully_random().cloned().collect())
        .unwrap_or_default();
    let mut a = Action::new(
        ActionKind::FullyRandomNat {
            rules: rules.clone(),
        },
        Priority::P1,
        Scope::Firewall,
        "Make SNAT/MASQUERADE pick source ports fully at random (--random-fully)",
    )
    .answering(Remedy::FullyRandomNat, cx.cite(f));
    if let Some(c) = f
        .causes
        .iter()
        .find(|c| c.cause == conntrack_analyze::Cause::NatPortRace)
    {
        for s in c.supports.iter().take(4) {
            a.evidence.push(Evidence::new(
                Source::Finding(FindingId::ConfirmFailures),
                s.clone(),
            ));
        }
    }
    let how = if rules.is_empty() {
        "The NAT rules were not captured: find them with `iptables-save -t nat` (or `nft list \
         ruleset`) and add `--random-fully` to every MASQUERADE/SNAT rule (nft: `masquerade \
         fully-random`)."
            .to_string()
    } else {
        let list: Vec<String> = rules.iter().take(5).map(|r| r.text.clone()).collect();
        format!(
            "These rules lack it: {}. Add `--random-fully` to each (nft: `masquerade \
             fully-random`).",
            list.join("; ")
        )
    };
    a.effect.text = format!(
        "{how} Without a random flag the kernel first tries to keep the connection's own source \
         port and, on a conflict, searches from a start shared by all CPUs (before 5.0) or \
         random; the mapping is reserved only when the entry is confirmed, so new connections handled at \
         the same time on different CPUs pick the same one and the second is dropped \
         (insert_failed and drop). Fully random selection makes that collision rare. Docker \
         and older CNIs install their MASQUERADE rules without it and recreate them on \
         restart: insert an equivalent rule with --random-fully before theirs (a unit ordered \
         after docker.service), or use a CNI that sets it (Kubernetes CNIs switched after the \
         2018 SNAT race analysis)."
    );
    a.risk = Risk {
        level: RiskLevel::Medium,
        text: "source ports of translated connections are always rewritten (no port \
               preservation), which peers that expect the original port (some UDP protocols) \
               notice; --random-fully needs iptables 1.6.2+ and a kernel with \
               NF_NAT_RANGE_PROTO_RANDOM_FULLY (upstream 3.14)"
            .into(),
    };
    a.rollback = "remove --random-fully from the rules (or delete the inserted rule)".into();
    a.verify = vec![
        Verify::Manual {
            text: "iptables-save -t nat | grep -c -- --random-fully shows every MASQUERADE/SNAT \
                   rule"
                .into(),
        },
        Verify::CounterFlat {
            counter: "insert_failed".into(),
        },
        Verify::CounterFlat {
            counter: "drop".into(),
        },
    ];
    o.actions.push(a);
}

fn dns(cx: &Ctx, f: &conntrack_analyze::Finding, o: &mut Outcome) {
    let mut a = Action::advice(
        AdviceTopic::DnsClash,
        Priority::P2,
        Scope::Workload,
        "Stop parallel same-tuple DNS queries (A and AAAA over one socket)",
    )
    .answering(Remedy::AvoidParallelDnsQueries, cx.cite(f));
    a.effect.text = "glibc `options single-request-reopen` (or `single-request`) in resolv.conf \
                     sends A and AAAA one after the other, or from two sockets; musl ignores it, \
                     so for such images use a node-local DNS cache (Kubernetes NodeLocal \
                     DNSCache) or DNS over TCP"
        .into();
    a.risk = Risk {
        level: RiskLevel::Low,
        text: "sequential queries add one round trip when both answers are needed".into(),
    };
    a.rollback = "remove the resolver option".into();
    a.verify = vec![Verify::CounterFlat {
        counter: "insert_failed".into(),
    }];
    o.actions.push(a);
}
