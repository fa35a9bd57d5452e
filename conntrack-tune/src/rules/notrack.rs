//! NOTRACK: exempting a service's traffic from connection tracking, which
//! no finding recommends and the planner proposes only when everything
//! speaks for it: the table under pressure, one service holding a large
//! share, none of its flows translated (NAT needs conntrack: untracked
//! packets skip NAT, `nf_nat_inet_fn` returns early without a conntrack),
//! no zones, the policy saying no stateful firewall depends on it, and a
//! risk tolerance that allows it. Every service considered and refused is
//! listed with the reason.

use super::{Ctx, Outcome, n};
use crate::plan::*;
use crate::policy::RiskTolerance;
use conntrack_analyze::facts::nat_flows_of;
use conntrack_analyze::hotspots::{Key, KeyKind};
use conntrack_core::L4Proto;

/// Share of the table a single service must hold before NOTRACK is
/// considered (aggressive risk halves it).
const NOTRACK_SHARE: f64 = 0.3;

pub(crate) fn plan(cx: &Ctx) -> Outcome {
    let mut o = Outcome::default();
    let Some(h) = cx.facts.obs.hotspots.as_ref().filter(|h| h.flows > 0) else {
        o.unjudged("notrack", "no flow listing: NAT and zone use unknown");
        return o;
    };
    if !cx.pressure() {
        return o;
    }
    let risk = cx.policy.risk;
    let threshold = if risk == RiskTolerance::Aggressive {
        NOTRACK_SHARE / 2.0
    } else {
        NOTRACK_SHARE
    };
    let Some(ports) = h.table(KeyKind::DstPort) else {
        return o;
    };
    let zones_used = h
        .table(KeyKind::Zone)
        .is_some_and(|t| t.top.iter().any(|k| k.key != Key::Zone(0)));
    for kc in ports.top.iter().filter(|k| k.share >= threshold) {
        let Key::Port { proto, port } = kc.key else {
            continue;
        };
        let what = format!("notrack {proto}/{port}");
        let nat = nat_flows_of(h, proto, port).unwrap_or(0);
        if nat > 0 {
            o.decline(
                &what,
                None,
                format!(
                    "{} of its {} entries are translated: NAT needs conntrack (an untracked \
                     packet skips NAT), so NOTRACK would break this service",
                    n(nat),
                    n(kc.count)
                ),
            );
            continue;
        }
        if h.nat_by_service.error_bound > 0 && h.nat.snat + h.nat.dnat + h.nat.both > 0 {
            o.decline(
                &what,
                None,
                "translated flows are counted approximately and cannot be ruled out for this \
                 service",
            );
            continue;
        }
        if zones_used {
            o.decline(
                &what,
                None,
                "conntrack zones are in use: raw-table rules cannot be scoped to a zone safely",
            );
            continue;
        }
        match cx.policy.stateful_firewall {
            Some(true) => {
                o.decline(
                    &what,
                    None,
                    "the policy says a stateful firewall depends on conntrack",
                );
                continue;
            }
            None => {
                o.decline(
                    &what,
                    None,
                    "unknown whether a stateful firewall depends on conntrack (set \
                     policy.stateful_firewall)",
                );
                continue;
            }
            Some(false) => {}
        }
        if risk == RiskTolerance::Conservative {
            o.decline(&what, None, "risk tolerance is conservative");
            continue;
        }
        if proto == L4Proto::TCP && risk != RiskTolerance::Aggressive {
            o.decline(
                &what,
                None,
                "NOTRACK for TCP is only proposed with aggressive risk tolerance",
            );
            continue;
        }
        if !(proto == L4Proto::TCP || proto == L4Proto::UDP) {
            continue;
        }
        let stops = vec![
            "`ct state established,related` rules no longer match this traffic: the firewall \
             must accept it explicitly in both directions"
                .to_string(),
            "NAT (DNAT, masquerade, published ports) cannot apply to it".to_string(),
            "conntrack -L, events, accounting and flow logs no longer see it".to_string(),
            "conntrack helpers (ftp, sip, tftp) and their related flows cannot work for it"
                .to_string(),
        ];
        let freed = cx
            .facts
            .mix
            .as_ref()
            .map_or(kc.count, |m| m.scaled(kc.count));
        let mut a = Action::new(
            ActionKind::Notrack {
                proto,
                port,
                stops_working: stops.clone(),
            },
            Priority::P1,
            Scope::Firewall,
            format!("Exempt {proto}/{port} (served on this host) from connection tracking"),
        );
        a.change = Some(Change {
            target: format!("raw table, {proto}/{port}"),
            current: Some(Value::Text("tracked".into())),
            proposed: Value::Text("notrack".into()),
        });
        a.evidence.push(Evidence::new(
            Source::Facts,
            format!(
                "{proto}/{port} holds {} entries ({:.0}% of the table), none translated, no zones",
                n(freed),
                kc.share * 100.0
            ),
        ));
        a.evidence.push(Evidence::new(
            Source::Policy,
            "the policy says no stateful firewall depends on conntrack",
        ));
        a.effect = Effect {
            entries_freed: Some(freed),
            memory_delta_bytes: Some(
                -(freed.saturating_mul(cx.mem.per_entry).min(i64::MAX as u64) as i64),
            ),
            text: format!("Stops working: {}", stops.join("; ")),
            ..Default::default()
        };
        a.risk = Risk {
            level: RiskLevel::High,
            text: "if a rule elsewhere relies on conntrack state for this traffic, it is dropped"
                .into(),
        };
        a.rollback = "delete the raw-table rules (iptables -t raw -D ..., or nft delete table \
                      inet conntrack_kit_notrack)"
            .into();
        a.verify = vec![Verify::Manual {
            text: format!(
                "conntrack -L -p {proto} --orig-port-dst {port} | wc -l falls to 0 and the \
                 service still answers"
            ),
        }];
        o.actions.push(a);
    }
    o
}
