//! `overloaded-buckets`: hash chains long enough to cost lookups, or to
//! be refused by the chain cap.
//!
//! **Checks:** the mean chain `2N/B` is at or above 8 nodes now (every
//! entry sits in two chains, original and reply), or `chaintoolong` rose
//! over the window (5.15+: inserts refused). Evidence includes the Poisson
//! model's expected longest chain and the refusal probability under the
//! kernel era's cap.
//!
//! **Why:** every packet walks its chain; past the cap (8..31 random in
//! 5.15 to 6.2, c9c3b6811f74; 50..79 since 6.3 and in the stable kernels
//! that took c77737b736ce) inserts are refused.
//!
//! **Does not fire** on a table whose chains are long only at a
//! hypothetical full table (the planner sizes buckets for that).

use super::{Thresholds, rate_evidence, round2};
use crate::buckets::poisson_model;
use crate::evidence::{Evidence, EvidenceKey};
use crate::facts::Facts;
use crate::finding::{Finding, FindingId, Severity};
use crate::remedy::Remedy;
use conntrack_core::Counter;

pub(super) fn check(f: &Facts, th: &Thresholds) -> Option<Finding> {
    let live = f.counters.is_live(Counter::ChainTooLong);
    let lambda = f.table.mean_chain;
    if !(live || lambda.is_some_and(|l| l >= th.overloaded_lambda)) {
        return None;
    }
    let mut e = Vec::new();
    if let Some(c) = f.table.count {
        e.push(Evidence::new(EvidenceKey::Count, c as f64));
    }
    if let Some(b) = f.table.buckets {
        e.push(Evidence::new(EvidenceKey::Buckets, b as f64));
    }
    if let Some(l) = lambda {
        e.push(Evidence::new(EvidenceKey::MeanChain, round2(l)));
    }
    rate_evidence(f, &mut e, &[Counter::ChainTooLong]);
    if let (Some(c), Some(b)) = (f.table.count, f.table.buckets) {
        let cap = f.chain_cap();
        let m = poisson_model(c, b, cap);
        e.push(Evidence::new(
            EvidenceKey::ExpectedLongestChain,
            round2(m.expected_longest),
        ));
        if let Some(p) = m.p_insert_refused {
            e.push(Evidence::new(EvidenceKey::RefusalProbability, p));
        }
    }
    Some(
        Finding::new(
            FindingId::OverloadedBuckets,
            if live {
                Severity::Critical
            } else {
                Severity::Warning
            },
            "hash buckets overloaded",
        )
        .with_all(e)
        .recommend(Remedy::ResizeBuckets)
        .explain(
            "Every entry sits in two hash chains, so the mean chain is 2N/B long; lookups walk \
             it on every packet, and since 5.15 an insert into a chain beyond the cap is refused \
             (chaintoolong). Raise nf_conntrack_buckets (or the hashsize module parameter) so \
             that 2N/B stays near 2 at a full table.",
        ),
    )
}
