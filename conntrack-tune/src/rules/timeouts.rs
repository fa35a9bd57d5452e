//! Timeouts: shorten the ones whose entries fill a table under pressure,
//! raise the ones below their safe floor, never go under a floor
//! ([`conntrack_analyze::timeouts::floor`]), and estimate each change from
//! the remaining-timeout histograms with Little's law.
//!
//! Every timeout a finding asks to change is either changed or declined
//! with the reason; without table pressure, entry-reducing changes are
//! declined (they trade correctness for memory the host does not need).

use super::{Ctx, Outcome, mib, n};
use crate::plan::*;
use conntrack_analyze::hotspots::RemainingHistogram;
use conntrack_analyze::timeouts::{Floor, floor, shorten_fresh_state, shorten_idle_state};
use conntrack_analyze::{EvidenceKey, Remedy};
use conntrack_core::{FlowState, L4Proto, TcpState, TimeoutKey};

pub(crate) fn plan(cx: &Ctx, max_raised: bool) -> Outcome {
    let mut o = Outcome::default();
    let pressure = cx.pressure() || max_raised;
    for key in [TimeoutKey::TcpEstablished] {
        if let Some(f) = cx.recommending(Remedy::RaiseTimeout(key)) {
            raise(cx, &mut o, key, f);
        }
    }
    let Some(h) = cx.facts.obs.hotspots.as_ref().filter(|h| h.flows > 0) else {
        o.unjudged(
            "timeouts",
            "no flow listing: the remaining-timeout histograms justify timeout changes",
        );
        for key in [
            TimeoutKey::TcpTimeWait,
            TimeoutKey::TcpEstablished,
            TimeoutKey::Udp,
        ] {
            if cx.recommending(Remedy::ShortenTimeout(key)).is_some() {
                o.decline(
                    &format!("timeout:{key}"),
                    Some(Remedy::ShortenTimeout(key)),
                    "no flow listing to estimate what a shorter timeout frees",
                );
            }
        }
        return o;
    };
    let flows = h.flows as f64;
    let share = |proto: L4Proto, st: FlowState| h.state_count(proto, st) as f64 / flows;

    // TIME_WAIT: every closed connection enters it with a full timer.
    let tw_share = share(L4Proto::TCP, FlowState::Tcp(TcpState::TIME_WAIT));
    let tw_hist = h
        .state(L4Proto::TCP, FlowState::Tcp(TcpState::TIME_WAIT))
        .map(|s| &s.remaining_secs);
    consider(
        cx,
        &mut o,
        TimeoutKey::TcpTimeWait,
        pressure && tw_share >= 0.2,
        tw_hist,
        if cx.policy.risk == crate::policy::RiskTolerance::Conservative {
            60
        } else {
            30
        },
        Kind::Fresh,
        format!("{:.0}% of the entries are TIME_WAIT", tw_share * 100.0),
    );

    // UDP request/response traffic on udp_timeout.
    let udp_share = h.nat_by_proto.udp.total() as f64 / flows;
    let mut udp = RemainingHistogram::default();
    for st in h.states.iter().filter(|s| s.proto == L4Proto::UDP) {
        udp.merge(&st.remaining_secs);
    }
    consider(
        cx,
        &mut o,
        TimeoutKey::Udp,
        pressure && udp_share >= 0.3,
        (udp.total() > 0).then_some(&udp),
        if cx.policy.risk == crate::policy::RiskTolerance::Conservative {
            15
        } else {
            10
        },
        Kind::Fresh,
        format!("{:.0}% of the entries are UDP", udp_share * 100.0),
    );

    // ESTABLISHED entries idle for long.
    let est_hist = h
        .state(L4Proto::TCP, FlowState::Tcp(TcpState::ESTABLISHED))
        .map(|s| &s.remaining_secs);
    consider(
        cx,
        &mut o,
        TimeoutKey::TcpEstablished,
        pressure,
        est_hist,
        if cx.policy.risk == crate::policy::RiskTolerance::Aggressive {
            21_600
        } else {
            86_400
        },
        Kind::Idle,
        "ESTABLISHED entries idle for long".to_string(),
    );
    o
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Every entry starts with a full timer (TIME_WAIT, UDP).
    Fresh,
    /// Refreshed by each packet (ESTABLISHED): shortening frees the idle.
    Idle,
}

#[allow(clippy::too_many_arguments)]
fn consider(
    cx: &Ctx,
    o: &mut Outcome,
    key: TimeoutKey,
    wanted: bool,
    hist: Option<&RemainingHistogram>,
    target: u32,
    kind: Kind,
    why: String,
) {
    let remedy = Remedy::ShortenTimeout(key);
    let asked = cx.recommending(remedy);
    let what = format!("timeout:{key}");
    if !(wanted || asked.is_some()) {
        return;
    }
    let nat = cx.nat();
    let fl = floor(key, nat).unwrap_or(Floor {
        secs: target,
        reason: "",
    });
    let cur = cx.facts.timeout(key).secs;
    let proposed = target.max(fl.secs);
    if cx.policy.is_protected(&key.sysctl()) {
        o.decline(&what, asked.map(|_| remedy), "protected by the policy");
        return;
    }
    if !wanted {
        o.decline(
            &what,
            Some(remedy),
            "the table is not under pressure: a shorter timeout would trade correctness for \
             memory the host does not need",
        );
        return;
    }
    if proposed >= cur {
        if asked.is_some() {
            o.decline(
                &what,
                Some(remedy),
                format!(
                    "{key} is {cur} s, at or under the {} s the planner would propose (floor {} \
                     s: {})",
                    proposed, fl.secs, fl.reason
                ),
            );
        }
        return;
    }
    let Some(h) = hist else {
        o.unjudged(
            &format!("{key}"),
            "entries counted but no remaining-timeout histogram",
        );
        if asked.is_some() {
            o.decline(
                &what,
                Some(remedy),
                "no remaining timeouts to estimate the effect",
            );
        }
        return;
    };
    let raw = match kind {
        Kind::Fresh => shorten_fresh_state(h, cur, proposed),
        Kind::Idle => shorten_idle_state(h, cur, proposed),
    };
    let s = cx.facts.mix.as_ref().map_or(raw, |m| raw.scaled(m));
    if kind == Kind::Idle && (s.freed as f64) < 0.1 * cx.facts.table.count.unwrap_or(1) as f64 {
        if asked.is_some() {
            o.decline(
                &what,
                Some(remedy),
                format!(
                    "{key} {cur} -> {proposed} s would free only {} entries",
                    n(s.freed)
                ),
            );
        }
        return;
    }
    let bytes = s.freed.saturating_mul(cx.mem.per_entry);
    let kube_note = if key == TimeoutKey::TcpEstablished && cx.kube.is_some() {
        " kube-proxy rewrites this timeout at start: set conntrack.tcpEstablishedTimeout."
    } else {
        ""
    };
    let mut a = Action::new(
        ActionKind::SetTimeout {
            key,
            secs: proposed,
            floor_secs: fl.secs,
            floor_reason: fl.reason.to_string(),
        },
        Priority::P1,
        Scope::ObservedNamespace,
        format!("Shorten {} from {cur} s to {proposed} s", key.sysctl()),
    );
    a.remedy = Some(remedy);
    a.change = Some(Change {
        target: key.sysctl(),
        current: Some(Value::Seconds(cur)),
        proposed: Value::Seconds(proposed),
    });
    if let Some(f) = asked {
        a.evidence.push(cx.cite(f));
    }
    a.evidence.push(
        Evidence::new(
            Source::Facts,
            match kind {
                Kind::Fresh => format!(
                    "{why}; {:.1} enter per second (Little's law over the remaining timeouts)",
                    s.rate_per_sec
                ),
                Kind::Idle => format!(
                    "{} ESTABLISHED entries have been idle for more than {proposed} s",
                    n(s.freed)
                ),
            },
        )
        .num(conntrack_analyze::Evidence::of(
            EvidenceKey::EntriesFreed,
            format!("{proposed} s"),
            s.freed as f64,
        )),
    );
    a.evidence.push(Evidence::new(
        Source::Policy,
        format!("floor {} s: {}", fl.secs, fl.reason),
    ));
    a.effect = Effect {
        memory_delta_bytes: Some(-(bytes.min(i64::MAX as u64) as i64)),
        memory_after_bytes: None,
        entries_freed: Some(s.freed),
        chain_length_after: None,
        text: format!(
            "steady state {} -> {} entries in this state (Little's law), {} fewer in use; \
             existing entries keep their timer until their next packet.{kube_note}{}",
            n(s.entries_now),
            n(s.entries_after),
            mib(bytes),
            cx.observed_netns_note()
        ),
    };
    a.risk = Risk {
        level: RiskLevel::Medium,
        text: format!(
            "connections silent for longer than {proposed} s in this state lose their entry: \
             late packets become NEW or INVALID"
        ),
    };
    a.rollback = format!("sysctl -w {}={cur}", key.sysctl());
    a.verify = vec![Verify::ReadBack {
        path: sysctl_path(&key.sysctl()),
        expected: proposed.to_string(),
    }];
    o.actions.push(a);
    o.persist.push((key.sysctl(), proposed.to_string()));
}

fn raise(cx: &Ctx, o: &mut Outcome, key: TimeoutKey, f: &conntrack_analyze::Finding) {
    let remedy = Remedy::RaiseTimeout(key);
    let what = format!("timeout:{key}");
    let fl = floor(key, true).unwrap_or(Floor {
        secs: 0,
        reason: "",
    });
    let cur = cx.facts.timeout(key).secs;
    if cx.policy.is_protected(&key.sysctl()) {
        o.decline(&what, Some(remedy), "protected by the policy");
        return;
    }
    if cur >= fl.secs {
        o.decline(&what, Some(remedy), format!("{key} is already {cur} s"));
        return;
    }
    let kube_note = if cx.kube.is_some() {
        " kube-proxy sets this timeout at start (conntrack.tcpEstablishedTimeout, default 24h): \
         set it there."
    } else {
        ""
    };
    let mut a = Action::new(
        ActionKind::SetTimeout {
            key,
            secs: fl.secs,
            floor_secs: fl.secs,
            floor_reason: fl.reason.to_string(),
        },
        Priority::P1,
        Scope::ObservedNamespace,
        format!("Raise {} from {cur} s to {} s", key.sysctl(), fl.secs),
    );
    a.remedy = Some(remedy);
    a.change = Some(Change {
        target: key.sysctl(),
        current: Some(Value::Seconds(cur)),
        proposed: Value::Seconds(fl.secs),
    });
    a.evidence.push(cx.cite(f));
    a.evidence.push(Evidence::new(Source::Kernel, fl.reason));
    a.effect.text = format!(
        "idle connections keep their entry (and behind NAT their mapping) until TCP keepalive \
         has had its chance; more idle ESTABLISHED entries stay in the table, each for at most \
         {} s more.{kube_note}{}",
        fl.secs - cur,
        cx.observed_netns_note()
    );
    a.risk = Risk {
        level: RiskLevel::Low,
        text: "entries of connections that vanished silently stay longer".into(),
    };
    a.rollback = format!("sysctl -w {}={cur}", key.sysctl());
    a.verify = vec![Verify::ReadBack {
        path: sysctl_path(&key.sysctl()),
        expected: fl.secs.to_string(),
    }];
    o.actions.push(a);
    o.persist.push((key.sysctl(), fl.secs.to_string()));
}
