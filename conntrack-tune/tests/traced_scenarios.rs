//! Scenarios of the corpus (`fixtures/scenarios/`) with traced drops
//! added to their observation (`Observation::drops`, what `doctor --trace`
//! collects): the findings cite the records, and the ranking of causes and
//! the plan's fixes follow the reasons seen rather than what the counters
//! and the table suggest.
//!
//! The records are made here as the tracer would report them for each
//! capture's workload (its own addresses and ports); the captures are
//! unchanged, so each test also states what the same capture gives
//! without them.

use conntrack_analyze::capture::{self, LoadOptions};
use conntrack_analyze::drops::{DropCause, DropSummary};
use conntrack_analyze::{Cause, Finding, FindingId, Likelihood, Remedy};
use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
use conntrack_tune::Policy;
use conntrack_tune::plan::ActionKind;
use conntrack_tune::report::{Origin, Report};
use std::path::Path;

fn report(name: &str, drops: Option<DropSummary>) -> Report {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios")
        .join(name);
    let c = capture::load(&dir, &LoadOptions::default()).expect("capture loads");
    let mut obs = c.observation;
    if let Some(d) = drops {
        obs = obs.with_drops(d);
    }
    Report::build(&obs, Origin::capture(name), &Policy::default()).expect("default policy")
}

fn finding(r: &Report, id: FindingId) -> &Finding {
    r.findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("{id} missing"))
}

fn cause(f: &Finding, c: Cause) -> &conntrack_analyze::RankedCause {
    f.causes
        .iter()
        .find(|x| x.cause == c)
        .unwrap_or_else(|| panic!("{c:?} not ranked"))
}

/// A dropped flow as the tracer reports it: `snat_to` rewrites the reply's
/// destination (MASQUERADE) and sets the status bit.
fn flow(src: [u8; 4], dst: [u8; 4], proto: L4Proto, sport: u16, dport: u16) -> Flow {
    let orig = Tuple::new(
        src.into(),
        dst.into(),
        proto,
        L4Tuple::Ports {
            src: sport,
            dst: dport,
        },
    );
    Flow::new(orig, orig.inverse().unwrap(), Status::empty())
}

fn snat(mut f: Flow, to: [u8; 4]) -> Flow {
    f.reply.dst = to.into();
    f.status |= Status::SRC_NAT;
    f
}

fn summary(records: &[(DropCause, Flow)]) -> DropSummary {
    DropSummary::from_records(10.0, 0, records.iter().map(|(c, f)| (*c, f)))
}

/// r5-docker-nat (4.19, Docker MASQUERADE, insert_failed == drop): the
/// counters and the table already point at the NAT port race; traced TCP
/// clashes after SNAT to 10.20.0.12:6379 confirm it and are cited.
#[test]
fn clashes_after_snat_confirm_the_nat_port_race_and_are_cited() {
    let base = report("r5-docker-nat", None);
    let b = finding(&base, FindingId::ConfirmFailures);
    assert_eq!(b.causes[0].cause, Cause::NatPortRace);
    assert_eq!(b.causes[0].likelihood, Likelihood::Likely);

    let recs: Vec<_> = (0..48)
        .map(|i| {
            (
                DropCause::UnresolvedClash,
                snat(
                    flow(
                        [172, 17, 0, 2 + (i % 4) as u8],
                        [10, 20, 0, 12],
                        L4Proto::TCP,
                        40000 + i,
                        6379,
                    ),
                    [10, 0, 0, 5],
                ),
            )
        })
        .collect();
    let r = report("r5-docker-nat", Some(summary(&recs)));
    let c = finding(&r, FindingId::ConfirmFailures);
    let lead = &c.causes[0];
    assert_eq!(lead.cause, Cause::NatPortRace);
    assert_eq!(lead.likelihood, Likelihood::Confirmed);
    assert_eq!(
        lead.supports[0],
        "traced: 100% of the insert_failed drops in the last 10 s (48 of 48) were unresolved \
         clashes: 48 unresolved clashes in the last 10 s: tcp from 172.17.0.2 (25%) to \
         10.20.0.12 (100%) port 6379 (100%), 100% after source NAT"
    );
    assert_eq!(cause(c, Cause::UdpClash).likelihood, Likelihood::Unlikely);
    assert!(
        c.explanation
            .contains("The drop tracer attributed each lost packet: 48 unresolved clashes")
    );
    assert!(c.remedies.contains(&Remedy::FullyRandomNat));
    assert!(!c.remedies.contains(&Remedy::AvoidParallelDnsQueries));
    assert!(
        r.plan
            .find(|k| matches!(k, ActionKind::FullyRandomNat { .. }))
            .is_some()
    );
}

/// The same capture, but the tracer saw UDP DNS clashes without source
/// NAT: the plan's choice follows the records, not the table's NAT share.
#[test]
fn udp_clashes_without_snat_turn_the_plan_from_nat_to_dns() {
    let base = report("r5-docker-nat", None);
    assert!(
        base.plan
            .find(|k| matches!(k, ActionKind::FullyRandomNat { .. }))
            .is_some(),
        "without records the counters lead to fully-random NAT"
    );
    let recs: Vec<_> = (0..30)
        .map(|i| {
            (
                DropCause::UnresolvedClash,
                flow(
                    [172, 17, 0, 9],
                    [10, 96, 0, 10],
                    L4Proto::UDP,
                    50000 + i,
                    53,
                ),
            )
        })
        .collect();
    let r = report("r5-docker-nat", Some(summary(&recs)));
    let c = finding(&r, FindingId::ConfirmFailures);
    assert_eq!(c.causes[0].cause, Cause::UdpClash);
    assert_eq!(c.causes[0].likelihood, Likelihood::Confirmed);
    let nat = cause(c, Cause::NatPortRace);
    assert_eq!(nat.likelihood, Likelihood::Unlikely);
    assert!(
        nat.contradicts
            .contains(&"none of the 30 insert_failed drops traced in the last 10 s was one".into())
    );
    assert!(c.remedies.contains(&Remedy::AvoidParallelDnsQueries));
    assert!(!c.remedies.contains(&Remedy::FullyRandomNat));
    assert!(
        r.plan
            .find(|k| matches!(k, ActionKind::FullyRandomNat { .. }))
            .is_none(),
        "no NAT change when no traced drop went through NAT"
    );
    assert!(r.plan.action("advice:dns-clash").is_some());
}

/// chain-too-long-6.1: chaintoolong already confirms the chain cap;
/// traced refusals add who was refused, and the plan resizes the buckets.
#[test]
fn chain_cap_refusals_are_cited_and_the_buckets_resized() {
    let recs: Vec<_> = (0..20)
        .map(|i| {
            (
                DropCause::ChainTooLong,
                flow([10, 1, 0, 7], [10, 2, 0, 9], L4Proto::UDP, 30000 + i, 53),
            )
        })
        .collect();
    let r = report("chain-too-long-6.1", Some(summary(&recs)));
    let c = finding(&r, FindingId::ConfirmFailures);
    assert_eq!(c.causes[0].cause, Cause::ChainCap);
    assert_eq!(c.causes[0].likelihood, Likelihood::Confirmed);
    assert!(c.causes[0].supports[0].starts_with(
        "traced: 100% of the insert_failed drops in the last 10 s (20 of 20) were chain-cap \
         refusals: 20 chain-cap refusals in the last 10 s: udp from 10.1.0.7 (100%)"
    ));
    assert!(c.remedies.contains(&Remedy::ResizeBuckets));
    assert!(r.plan.action("buckets").is_some());
}

/// max200-table-full: traced table-full drops are cited in the finding;
/// the plan still raises the max (the fix for refusals at allocation).
#[test]
fn table_full_drops_are_cited_and_the_max_raised() {
    let recs: Vec<_> = (0..12)
        .map(|i| {
            (
                DropCause::TableFull,
                flow(
                    [192, 0, 2, 10],
                    [198, 51, 100, 1],
                    L4Proto::TCP,
                    33000 + i,
                    443,
                ),
            )
        })
        .collect();
    let base = report("max200-table-full", None);
    assert!(
        !finding(&base, FindingId::TableFull)
            .explanation
            .contains("Traced")
    );
    let r = report("max200-table-full", Some(summary(&recs)));
    let t = finding(&r, FindingId::TableFull);
    assert!(
        t.explanation.contains(
            "Traced: 12 table-full drops in the last 10 s: tcp from 192.0.2.10 (100%) to \
             198.51.100.1 (100%) port 443 (100%)"
        ),
        "{}",
        t.explanation
    );
    assert!(
        t.causes[0]
            .supports
            .iter()
            .any(|s| s.starts_with("traced: 12 table-full drops"))
    );
    assert!(r.plan.action("raise-max").is_some());
    // No insert_failed drop was traced: confirm-time causes are untouched.
    assert!(r.findings.iter().all(|f| {
        f.id != FindingId::ConfirmFailures
            || f.causes
                .iter()
                .all(|c| c.likelihood != Likelihood::Confirmed)
    }));
}

/// healthy-busy with traced NAT failures (a MASQUERADE out an interface
/// without an address: no conntrack counter moves, so the capture alone
/// shows nothing): analysis names source NAT without an address, cites
/// the records, and the plan's answer is to give NAT an address, not more
/// entries or buckets.
#[test]
fn nat_failures_name_the_missing_address_and_the_plan_does_not_resize() {
    let base = report("healthy-busy", None);
    assert!(base.findings.iter().all(|f| f.id != FindingId::NatFailures));
    let recs: Vec<_> = (0..30)
        .map(|i| {
            (
                DropCause::NatFailure,
                flow(
                    [172, 17, 0, 5],
                    [203, 0, 113, 7],
                    L4Proto::UDP,
                    40000 + i,
                    53,
                ),
            )
        })
        .collect();
    let r = report("healthy-busy", Some(summary(&recs)));
    let n = finding(&r, FindingId::NatFailures);
    assert_eq!(n.severity, conntrack_analyze::Severity::Critical);
    assert_eq!(
        n.value_of(conntrack_analyze::EvidenceKey::TracedDrops, "nat_failure"),
        Some(30.0)
    );
    let lead = &n.causes[0];
    assert_eq!(lead.cause, Cause::SnatNoAddress);
    assert_eq!(lead.likelihood, Likelihood::Likely);
    assert!(
        lead.supports[0].starts_with(
            "traced: 30 NAT failures in the last 10 s: udp from 172.17.0.5 (100%) to \
             203.0.113.7 (100%) port 53 (100%)"
        ),
        "{:?}",
        lead.supports
    );
    assert!(
        n.explanation.contains("ate my IP address"),
        "{}",
        n.explanation
    );
    assert_eq!(n.remedies, vec![Remedy::FixNatAddress]);
    let a = r
        .plan
        .action("advice:nat-address")
        .expect("the NAT address advice");
    assert_eq!(a.remedy, Some(Remedy::FixNatAddress));
    // NAT's drops are not the table's: nothing is resized or raised for
    // them (the same plan as without the records, plus the advice).
    assert!(r.plan.action("raise-max").is_none());
    assert!(r.plan.action("buckets").is_none());
    let ids = |r: &Report| -> Vec<String> { r.plan.actions.iter().map(|a| a.id.clone()).collect() };
    let mut with: Vec<String> = ids(&r);
    with.retain(|id| id != "advice:nat-address");
    assert_eq!(with, ids(&base));
    // A NAT failure is not an insert_failed drop: confirm-time causes are
    // untouched.
    assert_eq!(summary(&recs).insert_failed(), 0);
}

/// Flows that already had a source mapping when NAT dropped them (the
/// interface changed under a masqueraded flow) make the missing address
/// only possible.
#[test]
fn nat_failures_after_a_mapping_weaken_the_missing_address() {
    let recs: Vec<_> = (0..10)
        .map(|i| {
            (
                DropCause::NatFailure,
                snat(
                    flow(
                        [172, 17, 0, 5],
                        [203, 0, 113, 7],
                        L4Proto::TCP,
                        41000 + i,
                        443,
                    ),
                    [192, 0, 2, 1],
                ),
            )
        })
        .collect();
    let r = report("healthy-busy", Some(summary(&recs)));
    let lead = &finding(&r, FindingId::NatFailures).causes[0];
    assert_eq!(lead.likelihood, Likelihood::Possible);
    assert!(!lead.contradicts.is_empty());
}

/// syn-scan's capture has a MASQUERADE rule (`iptables-save.txt`). Without
/// a drop trace the plan says NAT failures could not be judged (no
/// counter counts them); traced, they are either advice (some seen) or
/// judged absent (none seen). A capture without MASQUERADE has nothing to
/// judge.
#[test]
fn untraced_masquerade_leaves_nat_failures_unjudged() {
    let unjudged = |r: &Report| r.plan.unjudged.iter().any(|u| u.topic == "nat failures");
    let base = report("syn-scan", None);
    assert!(unjudged(&base), "{:?}", base.plan.unjudged);
    assert!(base.plan.action("advice:nat-address").is_none());
    let none_seen = report("syn-scan", Some(summary(&[])));
    assert!(!unjudged(&none_seen));
    assert!(
        none_seen
            .findings
            .iter()
            .all(|f| f.id != FindingId::NatFailures)
    );
    let recs = [(
        DropCause::NatFailure,
        flow([10, 8, 0, 9], [203, 0, 113, 7], L4Proto::UDP, 40000, 53),
    )];
    let seen = report("syn-scan", Some(summary(&recs)));
    assert!(!unjudged(&seen));
    assert!(seen.plan.action("advice:nat-address").is_some());
    assert!(!unjudged(&report("healthy-busy", None)));
}
