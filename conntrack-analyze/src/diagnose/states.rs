//! Findings about what the table's TCP states say of the applications and
//! the timeouts: `close-wait-dominance`, `long-established-retention` and
//! `established-timeout-below-nat-floor`.
//!
//! - **close-wait-dominance:** CLOSE_WAIT holds 20% of the table or more:
//!   one side closed and the application on the other did not; a timeout
//!   change only hides it.
//! - **long-established-retention:** with an established timeout of a day
//!   or more (configured or default, said which), ESTABLISHED entries idle
//!   for over an hour hold 10% of the table: connections that vanished
//!   without FIN or RST. `info` unless the table is under pressure.
//! - **established-timeout-below-nat-floor:** the configured established
//!   timeout is below the TCP keepalive horizon (7875 s; RFC 5382 asks
//!   NATs for at least 7440 s). A pooled connection idle longer than the
//!   timeout loses its entry; behind NAT its next packet creates a new
//!   entry, possibly with another mapping, and the peer answers RST.
//!   `warning` when NAT is in use, else `info`.

use super::{Thresholds, enough_flows, pct, under_pressure};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;
use crate::timeouts::{RFC5382_ESTABLISHED_SECS, TCP_KEEPALIVE_SECS};
use conntrack_core::{FlowState, L4Proto, TcpState, TimeoutKey};

pub(super) fn check(f: &Facts, th: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(below_nat_floor(f));
    let Some(h) = enough_flows(f, th) else {
        return out;
    };
    let flows = h.flows as f64;
    let tcp = |s: TcpState| h.state(L4Proto::TCP, FlowState::Tcp(s));
    let scaled = |n: u64| f.mix.as_ref().map_or(n, |m| m.scaled(n)) as f64;

    if let Some(cw) = tcp(TcpState::CLOSE_WAIT).filter(|s| s.share >= th.close_wait_share) {
        let t = f.timeout(TimeoutKey::TcpCloseWait);
        out.push(
            Finding::new(
                FindingId::CloseWaitDominance,
                Severity::Warning,
                format!("CLOSE_WAIT holds {:.0}% of the table", cw.share * 100.0),
            )
            .with(Evidence::of(
                EvidenceKey::StateEntries,
                "CLOSE_WAIT",
                scaled(cw.count),
            ))
            .with(Evidence::of(
                EvidenceKey::StateShare,
                "CLOSE_WAIT",
                pct(cw.share),
            ))
            .with(Evidence::of(EvidenceKey::Timeout, t.key, f64::from(t.secs)))
            .recommend(Remedy::FixCloseWait)
            .explain(
                "One side closed and the other has not: an application is not closing its \
                 sockets (or a peer half-closes and never finishes). Find the owners with \
                 attribution; a timeout change only hides it.",
            ),
        );
    }

    let est_t = f.timeout(TimeoutKey::TcpEstablished);
    if let Some(est) = tcp(TcpState::ESTABLISHED)
        && est_t.secs >= 86_400
        && est_t.secs > th.established_idle_secs
    {
        let idle = est
            .remaining_secs
            .count_below(f64::from(est_t.secs - th.established_idle_secs));
        let share = idle / flows;
        if share >= th.established_idle_share {
            let pressure = under_pressure(f, th);
            let mut finding = Finding::new(
                FindingId::LongEstablishedRetention,
                if pressure {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                format!(
                    "{:.0}% of the table is ESTABLISHED entries idle over {} s",
                    share * 100.0,
                    th.established_idle_secs
                ),
            )
            .with(Evidence::of(
                EvidenceKey::StateEntries,
                "ESTABLISHED",
                scaled(est.count),
            ))
            .with(Evidence::new(
                EvidenceKey::IdleEstablished,
                scaled(idle.round() as u64),
            ))
            .with(Evidence::new(EvidenceKey::IdleEstablishedShare, pct(share)))
            .with(Evidence::of(
                EvidenceKey::Timeout,
                est_t.key,
                f64::from(est_t.secs),
            ))
            .with(Evidence::of(
                EvidenceKey::TimeoutDefault,
                est_t.key,
                f64::from(est_t.default_secs),
            ));
            if pressure {
                finding = finding.recommend(Remedy::ShortenTimeout(TimeoutKey::TcpEstablished));
            }
            let origin = if !est_t.configured {
                format!(
                    "the kernel default of {} s (not read from the host)",
                    est_t.secs
                )
            } else if est_t.is_changed() {
                format!(
                    "{} s as configured here (the kernel default is {} s)",
                    est_t.secs, est_t.default_secs
                )
            } else {
                format!("the kernel default of {} s", est_t.secs)
            };
            out.push(finding.explain(format!(
                "tcp_timeout_established is {origin}: connections that vanished without FIN or \
                 RST (peers rebooted, an upstream NAT or load balancer timed them out) keep \
                 their entry that long. {}",
                if pressure {
                    "The table is under pressure: a shorter timeout (never below the keepalive \
                     floor of 7875 s) frees these entries."
                } else {
                    "The table is not under pressure, so they cost only memory."
                }
            )));
        }
    }
    out
}

fn below_nat_floor(f: &Facts) -> Option<Finding> {
    let t = f.timeout(TimeoutKey::TcpEstablished);
    if !t.configured || t.secs >= TCP_KEEPALIVE_SECS {
        return None;
    }
    let nat = f.nat_in_use();
    let mut finding = Finding::new(
        FindingId::EstablishedTimeoutBelowNatFloor,
        if nat == Some(true) {
            Severity::Warning
        } else {
            Severity::Info
        },
        format!(
            "tcp_timeout_established is {} s, below the {} s that idle connections kept by TCP \
             keepalive need{}",
            t.secs,
            TCP_KEEPALIVE_SECS,
            if nat == Some(true) { " behind NAT" } else { "" }
        ),
    )
    .with(Evidence::of(EvidenceKey::Timeout, t.key, f64::from(t.secs)))
    .with(Evidence::of(
        EvidenceKey::TimeoutDefault,
        t.key,
        f64::from(t.default_secs),
    ))
    .with(Evidence::of(
        EvidenceKey::TimeoutFloor,
        t.key,
        f64::from(TCP_KEEPALIVE_SECS),
    ))
    .recommend(Remedy::RaiseTimeout(TimeoutKey::TcpEstablished));
    if let Some(m) = &f.mix {
        finding = finding
            .with(Evidence::new(EvidenceKey::NatShare, pct(m.nat_share)))
            .with(Evidence::of(
                EvidenceKey::NatShareOfProto,
                "tcp",
                pct(m.tcp_nat_share),
            ));
    }
    Some(finding.explain(format!(
        "An ESTABLISHED entry expires after {} s without a packet. Pooled or long-lived \
         connections (database and cache pools, message brokers, ZooKeeper sessions) often idle \
         longer: Linux sends the first keepalive probe after 7200 s, and RFC 5382 requires NATs \
         to keep idle established mappings at least {RFC5382_ESTABLISHED_SECS} s. When the \
         entry of a translated connection expires, its next packet creates a new entry \
         (nf_conntrack_tcp_loose) and may get another source port; the peer does not know it \
         and answers RST, so the application sees resets on connections its pool believed \
         alive. Without NAT, a stateful firewall can drop that packet as INVALID instead. \
         Raise the timeout to at least {TCP_KEEPALIVE_SECS} s (kube-proxy's default is 86400 \
         s), or make the applications send keepalives more often than the timeout.",
        t.secs
    )))
}
