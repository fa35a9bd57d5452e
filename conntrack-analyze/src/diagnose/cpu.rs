//! `cpu-imbalance`: receive processing (NET_RX softirqs) concentrated on
//! a few CPUs while RPS is off.
//!
//! **Checks:** the NET_RX softirq counts of `/proc/softirqs` are
//! imbalanced by [`crate::rates::Spread::is_imbalanced`] (the rule the
//! planner applies too), RPS is off on every known receive queue, and
//! there are fewer receive queues than CPUs.
//!
//! **Why:** one CPU then does the protocol work, conntrack included, for
//! every packet of its queue; at high packet rates it saturates and
//! packets wait or drop before conntrack sees them. RPS spreads that work
//! by flow hash. It does not reduce confirm-time clashes: those come from
//! new flows processed in parallel, which more spreading can only make
//! more frequent; the finding never recommends RPS for them.
//!
//! **Does not fire** on conntrack failures that are concentrated on one
//! CPU (that is evidence within `confirm-failures`), or without softirq
//! counts. It is `info` unless packets are being lost (a drop rate).

use super::{Thresholds, pct, round2};
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::{Facts, Rps};
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;
use conntrack_core::Counter;

pub(super) fn check(f: &Facts, _th: &Thresholds) -> Option<Finding> {
    let sp = f.cpu.softirq?;
    if f.cpu.rps != Rps::Off || !sp.is_imbalanced() {
        return None;
    }
    if f.cpu.online > 0 && f.cpu.rx_queues >= f.cpu.online {
        return None;
    }
    let losing = f.counters.is_live(Counter::Drop);
    let e = vec![
        Evidence::new(EvidenceKey::NetRxBusiestShare, pct(sp.busiest_share)),
        Evidence::new(EvidenceKey::EffectiveCpus, round2(sp.effective_cpus)),
        Evidence::new(EvidenceKey::Cpus, sp.cpus as f64),
        Evidence::new(EvidenceKey::RxQueues, f.cpu.rx_queues as f64),
        Evidence::new(EvidenceKey::RxQueuesWithRps, 0.0),
    ];
    Some(
        Finding::new(
            FindingId::CpuImbalance,
            if losing {
                Severity::Warning
            } else {
                Severity::Info
            },
            format!(
                "receive processing concentrated: one CPU handles {:.0}% of NET_RX softirqs \
                 (since boot) with RPS off",
                sp.busiest_share * 100.0
            ),
        )
        .with_all(e)
        .recommend(Remedy::EnableRps)
        .explain(
            "With fewer receive queues than CPUs and RPS off, the CPU that takes a queue's \
             interrupts also runs the protocol stack, conntrack included, for every packet of \
             it. RPS (rps_cpus) spreads that work over CPUs by flow hash; it helps a saturated \
             CPU, not confirm-time clashes.",
        ),
    )
}
