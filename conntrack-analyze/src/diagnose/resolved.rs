//! `resolved-clashes`: confirm-time clashes the kernel resolved, with
//! nothing failing.
//!
//! **Checks:** `clash_resolve` rose over the window at 1/s or more
//! (5.10+: bc92470413f3 counts every resolved clash there and nowhere
//! else) while `insert_failed` did not.
//!
//! **Why:** a clash is two entries for one flow confirmed at once, on two
//! CPUs: a resolver's A and AAAA queries from one socket, say, through a
//! DNAT'd service. The kernel merges the loser into the winner when their
//! NAT agrees, or (5.6+, 6a757c07e51f) inserts it for the reply direction
//! only with a 1 s timeout when the DNAT picked another endpoint; the
//! packet passes either way. This is the race behind "DNS 5 s delays"
//! (kubernetes#56903) on older kernels; seeing it resolved here answers
//! "is it happening, and does it cost anything?" without an alarm.
//!
//! **Severity:** `info`; it recommends nothing. When inserts fail too,
//! `confirm-failures` speaks instead (and lists `clash_resolve`).
//!
//! Added after the incident lab's `udp-clash` scenario on 6.18: doctor
//! said nothing about 300 resolved clashes per second.

use super::{Thresholds, rate_evidence};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId, Severity};
use conntrack_core::Counter;

pub(super) fn check(f: &Facts, th: &Thresholds) -> Option<Finding> {
    let c = &f.counters;
    if !c.is_live(Counter::ClashResolve)
        || c.rate(Counter::ClashResolve) < th.resolved_clashes_per_sec
        || c.is_live(Counter::InsertFailed)
    {
        return None;
    }
    let mut e = Vec::new();
    rate_evidence(f, &mut e, &[Counter::ClashResolve, Counter::Drop]);
    if let Some(m) = &f.mix {
        e.push(Evidence::new(
            EvidenceKey::DnsShare,
            super::pct(m.dns_share),
        ));
    }
    Some(
        Finding::new(
            FindingId::ResolvedClashes,
            Severity::Info,
            format!(
                "{:.1} confirm-time clashes/s resolved by the kernel, none failed",
                c.rate(Counter::ClashResolve)
            ),
        )
        .with_all(e)
        .explain(
            "Two entries for the same flow reached confirmation at once on two CPUs (a \
             resolver sending A and AAAA from one socket, through a DNAT'd service with several \
             endpoints, is the usual source). The kernel merged them, or inserted the second \
             for its reply direction only (5.6+): the packets passed. Nothing to fix on this \
             kernel; on kernels before 5.6 the same race drops the second query (a 5 s DNS \
             timeout).",
        ),
    )
}
