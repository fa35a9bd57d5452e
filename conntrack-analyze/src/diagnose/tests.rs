//! One test (or more) per rule; the scenario corpus in conntrack-tune
//! pins whole reports.

use super::*;
use crate::cause::{Cause, Likelihood};
use crate::facts::{ClashAccounting, CounterStatus};
use crate::finding::{FindingId, Severity};
use crate::hotspots::Hotspots;
use crate::observation::Observation;
use crate::rates::{Rates, Sample};
use crate::remedy::Remedy;
use conntrack_core::testkit::{self, flow, tcp_state};
use conntrack_core::{
    CpuStats, Flow, HostSnapshot, KernelVersion, RxQueue, Stats, Status, Support, TcpState,
    TimeoutKey,
};
use std::time::Duration;

use Counter::*;

/// Two samples 10 s apart on `cpus` CPUs; each `(counter, start, increase)`
/// is split evenly over the CPUs.
fn rates_on(cpus: u32, cols: &[(Counter, u32, u32)]) -> Rates {
    let mk = |t: u64, second: bool| Sample {
        at: Duration::from_secs(t),
        stats: Stats::new(
            (0..cpus)
                .map(|i| {
                    let mut c = CpuStats::for_cpu(i);
                    for &(k, a, d) in cols {
                        let v = (a / cpus).wrapping_add(if second { d / cpus } else { 0 });
                        c.set(k, v);
                    }
                    c
                })
                .collect(),
        )
        .with_entries(200),
    };
    Rates::from_samples(&[mk(0, false), mk(10, true)])
}

fn rates(cols: &[(Counter, u32, u32)]) -> Rates {
    rates_on(1, cols)
}

fn host(count: u32, max: u32, buckets: u32, kernel: Option<(u16, u16)>) -> HostSnapshot {
    let mut snap = HostSnapshot::default()
        .with_count(count)
        .with_max(max)
        .with_buckets(buckets);
    snap.kernel_version = kernel.map(|(a, b)| KernelVersion::new(a, b, 0));
    snap
}

fn run(obs: &Observation) -> Vec<Finding> {
    diagnose(&Facts::derive(obs))
}

fn ids(f: &[Finding]) -> Vec<FindingId> {
    f.iter().map(|x| x.id).collect()
}

fn find(f: &[Finding], id: FindingId) -> &Finding {
    f.iter()
        .find(|x| x.id == id)
        .unwrap_or_else(|| panic!("{id} missing: {f:#?}"))
}

fn cause(f: &Finding, c: Cause) -> Likelihood {
    f.causes
        .iter()
        .find(|x| x.cause == c)
        .map(|x| x.likelihood)
        .unwrap_or_else(|| panic!("{c} not ranked"))
}

/// A TCP flow; `snat` masquerades the source to 192.0.2.1.
fn tcp(src: &str, sport: u16, dst: &str, dport: u16, st: TcpState, t: u32, snat: bool) -> Flow {
    let mut f = flow(testkit::tcp(src, sport, dst, dport));
    f.status |= Status::SEEN_REPLY | Status::ASSURED;
    if snat {
        f.reply.dst = testkit::ip("192.0.2.1");
        f.status |= Status::SRC_NAT | Status::SRC_NAT_DONE;
    }
    f.protoinfo = tcp_state(st);
    f.timeout = Some(t);
    f
}

/// `n` masqueraded TCP flows from containers to one Redis, a third in
/// TIME_WAIT spread over its 120 s.
fn docker_nat_table(n: u32) -> Hotspots {
    let mut h = Hotspots::exact();
    for i in 0..n {
        let src = format!("172.18.0.{}", 201 + i % 4);
        let (st, t) = if i % 3 == 0 {
            (TcpState::TIME_WAIT, 1 + i % 120)
        } else {
            (TcpState::ESTABLISHED, 3000)
        };
        h.add(&tcp(
            &src,
            30000 + (i % 30000) as u16,
            "10.0.3.5",
            6379,
            st,
            t,
            true,
        ));
    }
    h
}

#[test]
fn confirm_failures_rank_the_nat_race_first_on_a_docker_nat_host() {
    // 4.19, insert_failed == drop over 8 CPUs, 4% of max, NAT'd TCP.
    let r = rates_on(
        8,
        &[
            (InsertFailed, 8_000_000, 12_000),
            (Drop, 8_000_000, 12_000),
            (EarlyDrop, 0, 0),
            (Insert, 0, 0),
        ],
    );
    let obs = Observation::new(host(339_205, 4_194_304, 1_048_576, Some((4, 19))))
        .with_rates(r)
        .with_hotspots(docker_nat_table(3000).summary());
    let f = run(&obs);
    let c = find(&f, FindingId::ConfirmFailures);
    assert_eq!(c.severity, Severity::Critical);
    assert_eq!(c.causes[0].cause, Cause::NatPortRace);
    assert_eq!(c.causes[0].likelihood, Likelihood::Likely);
    // No chain cap before 5.15, and equal counters exclude dying entries.
    assert_eq!(cause(c, Cause::ChainCap), Likelihood::Excluded);
    assert_eq!(cause(c, Cause::DyingOrExtension), Likelihood::Unlikely);
    assert_eq!(cause(c, Cause::UdpClash), Likelihood::Excluded);
    assert!(c.remedies.contains(&Remedy::FullyRandomNat));
    assert!(c.remedies.contains(&Remedy::ReuseConnections));
    // Never RPS, never buckets or max for a confirm-time race.
    for r in [Remedy::EnableRps, Remedy::ResizeBuckets, Remedy::RaiseMax] {
        assert!(!c.remedies.contains(&r), "{r}");
    }
    assert!(!ids(&f).contains(&FindingId::TableFull));
    assert!(!ids(&f).contains(&FindingId::CpuImbalance));
    assert_eq!(
        c.value_of(EvidenceKey::CounterRate, "insert_failed"),
        Some(1200.0)
    );
}

#[test]
fn fully_random_rules_make_the_nat_race_unlikely() {
    let r = rates(&[(InsertFailed, 0, 100), (Drop, 0, 100), (EarlyDrop, 0, 0)]);
    let mut obs = Observation::new(host(3000, 262_144, 262_144, Some((4, 19))))
        .with_rates(r)
        .with_hotspots(docker_nat_table(300).summary());
    obs.config.nat_rules = Some(conntrack_core::nat_rules::NatRules::parse_iptables_save(
        "*nat\n-A POSTROUTING -s 172.18.0.0/16 -j MASQUERADE --random-fully\nCOMMIT\n",
    ));
    let f = run(&obs);
    let c = find(&f, FindingId::ConfirmFailures);
    assert!(cause(c, Cause::NatPortRace) >= Likelihood::Possible);
    assert!(!c.causes[0].supports.is_empty() || c.causes[0].cause != Cause::NatPortRace);
    // The flag is already on every rule: it is not recommended again
    // (found live: the lab's fully-random run was told to add it).
    let race = c
        .causes
        .iter()
        .find(|k| k.cause == Cause::NatPortRace)
        .unwrap();
    assert!(!race.remedies.contains(&Remedy::FullyRandomNat));
    assert!(race.remedies.contains(&Remedy::ReuseConnections));
    // Without the fully-random flag the same table makes it likely.
    obs.config.nat_rules = Some(conntrack_core::nat_rules::NatRules::parse_iptables_save(
        "*nat\n-A POSTROUTING -s 172.18.0.0/16 ! -o br-1 -j MASQUERADE\nCOMMIT\n",
    ));
    let f = run(&obs);
    let c = find(&f, FindingId::ConfirmFailures);
    assert_eq!(cause(c, Cause::NatPortRace), Likelihood::Likely);
    assert!(
        c.causes
            .iter()
            .any(|k| k.cause == Cause::NatPortRace && k.remedies.contains(&Remedy::FullyRandomNat))
    );
}

#[test]
fn chain_cap_confirmed_by_chaintoolong() {
    let r = rates(&[
        (InsertFailed, 0, 300),
        (Drop, 0, 0),
        (EarlyDrop, 0, 0),
        (ClashResolve, 5, 0),
        (ChainTooLong, 0, 300),
    ]);
    // 5.15, hashsize far too small: 2 x 40000 / 4096 = 19.53.
    let f = run(&Observation::new(host(40_000, 262_144, 4096, Some((5, 15)))).with_rates(r));
    assert_eq!(
        ids(&f),
        vec![FindingId::ConfirmFailures, FindingId::OverloadedBuckets]
    );
    let c = &f[0];
    // A chain-cap refusal drops the packet without counting drop.
    assert_eq!(c.severity, Severity::Critical);
    assert_eq!(c.causes[0].cause, Cause::ChainCap);
    assert_eq!(c.causes[0].likelihood, Likelihood::Confirmed);
    assert!(c.remedies.contains(&Remedy::ResizeBuckets));
    let b = &f[1];
    assert_eq!(b.severity, Severity::Critical);
    assert_eq!(b.value(EvidenceKey::MeanChain), Some(19.53));
    assert!(b.value(EvidenceKey::RefusalProbability).unwrap() > 0.01);
}

#[test]
fn counters_a_kernel_does_not_have_are_not_reported_never_zero() {
    // A 5.4 source that printed zero-filled clashres/chainlength columns.
    let r = rates(&[
        (InsertFailed, 0, 100),
        (Drop, 0, 100),
        (ClashResolve, 0, 0),
        (ChainTooLong, 0, 0),
    ]);
    let obs = Observation::new(host(100, 65_536, 65_536, Some((5, 4)))).with_rates(r);
    let facts = Facts::derive(&obs);
    assert_eq!(
        facts.counters.get(ClashResolve).status,
        CounterStatus::NotCountedByKernel {
            support: Support::NotYet {
                since: KernelVersion::new(5, 10, 0)
            }
        }
    );
    assert_eq!(facts.counters.get(ClashResolve).per_sec, None);
    let f = diagnose(&facts);
    let c = find(&f, FindingId::ConfirmFailures);
    assert!(
        c.value_of(EvidenceKey::CounterRate, "clash_resolve")
            .is_none()
    );
    assert!(
        c.value_of(EvidenceKey::CounterRate, "chaintoolong")
            .is_none()
    );
    assert_eq!(cause(c, Cause::ChainCap), Likelihood::Excluded);
    let json = serde_json::to_value(&facts.counters).unwrap();
    let cr = &json["readings"][ClashResolve.index()];
    assert_eq!(cr["status"], "not_counted_by_kernel");
    assert!(cr["per_sec"].is_null());
}

#[test]
fn an_el7_kernel_with_insert_zero_reads_as_backported() {
    let r = rates(&[
        (InsertFailed, 7_000_000, 100),
        (Drop, 7_000_000, 100),
        (Insert, 0, 0),
    ]);
    let obs = Observation::new(host(320_851, 8_388_608, 1_048_576, Some((3, 10)))).with_rates(r);
    let facts = Facts::derive(&obs);
    assert!(facts.counters.backported);
    assert_eq!(
        facts.counters.clash_accounting,
        ClashAccounting::ResolvedInInsertFailed
    );
    // A genuine 3.10 counts packet-path inserts.
    let r = rates(&[
        (InsertFailed, 0, 100),
        (Drop, 0, 100),
        (Insert, 9_000_000, 5000),
    ]);
    let obs = Observation::new(host(320_851, 8_388_608, 1_048_576, Some((3, 10)))).with_rates(r);
    assert_eq!(
        Facts::derive(&obs).counters.clash_accounting,
        ClashAccounting::InsertFailedOnly
    );
}

#[test]
fn history_only_counters_give_no_finding() {
    let r = rates(&[(InsertFailed, 7_000_000, 0), (Drop, 7_000_000, 0)]);
    let obs = Observation::new(host(100, 65_536, 65_536, Some((6, 1)))).with_rates(r);
    assert!(run(&obs).is_empty());
    let facts = Facts::derive(&obs);
    assert_eq!(facts.counters.get(Drop).status, CounterStatus::History);
}

#[test]
fn failures_on_one_cpu_do_not_recommend_rps_but_softirq_concentration_does() {
    let mk = |t: u64, d: [u32; 2]| Sample {
        at: Duration::from_secs(t),
        stats: Stats::new(
            d.iter()
                .enumerate()
                .map(|(i, &v)| {
                    let mut c = CpuStats::for_cpu(i as u32);
                    c.set(Drop, v);
                    c.set(InsertFailed, v);
                    c
                })
                .collect(),
        )
        .with_entries(10),
    };
    let r = Rates::from_samples(&[mk(0, [0, 0]), mk(10, [90, 10])]);
    let mut h = host(10, 65_536, 65_536, Some((6, 1)));
    h.rx_queues.push(RxQueue {
        iface: "eth0".into(),
        queue: 0,
        rps_cpus: vec![],
    });
    h.cpus_online = vec![0, 1];
    let f = run(&Observation::new(h.clone()).with_rates(r.clone()));
    assert!(!ids(&f).contains(&FindingId::CpuImbalance), "{f:#?}");
    assert!(f.iter().all(|x| !x.remedies.contains(&Remedy::EnableRps)));
    // NET_RX softirqs concentrated on CPU 0: the RPS finding, a warning
    // because packets are being dropped.
    h.net_rx_softirqs = vec![990_000, 10_000];
    let f = run(&Observation::new(h.clone()).with_rates(r));
    let c = find(&f, FindingId::CpuImbalance);
    assert_eq!(c.severity, Severity::Warning);
    assert_eq!(c.remedies, vec![Remedy::EnableRps]);
    assert_eq!(c.value(EvidenceKey::NetRxBusiestShare), Some(99.0));
    // Without drops it is information only.
    let f = run(&Observation::new(h));
    assert_eq!(find(&f, FindingId::CpuImbalance).severity, Severity::Info);
}

#[test]
fn invalid_surge_needs_a_live_rate_above_threshold() {
    let r = rates(&[(Invalid, 7, 2000), (Error, 0, 10)]);
    let f = run(&Observation::default().with_rates(r));
    assert_eq!(ids(&f), vec![FindingId::InvalidSurge]);
    assert_eq!(
        f[0].value_of(EvidenceKey::CounterRate, "invalid"),
        Some(200.0)
    );
    assert_eq!(f[0].value_of(EvidenceKey::CounterRate, "error"), Some(1.0));
    let r = rates(&[(Invalid, 7_000_000, 500)]);
    assert!(run(&Observation::default().with_rates(r)).is_empty());
}

#[test]
fn close_wait_and_long_established_from_the_configured_timeout() {
    let mut h = Hotspots::exact();
    // 30 CLOSE_WAIT, 50 ESTABLISHED idle for most of a day, 20 active.
    for i in 0..30u16 {
        h.add(&tcp(
            "10.0.0.1",
            1000 + i,
            "10.9.9.9",
            80,
            TcpState::CLOSE_WAIT,
            40,
            false,
        ));
    }
    for i in 30..80u16 {
        h.add(&tcp(
            "10.0.0.1",
            1000 + i,
            "10.9.9.9",
            80,
            TcpState::ESTABLISHED,
            10_000,
            false,
        ));
    }
    for i in 80..100u16 {
        h.add(&tcp(
            "10.0.0.1",
            1000 + i,
            "10.9.9.9",
            80,
            TcpState::ESTABLISHED,
            86_390,
            false,
        ));
    }
    let s = h.summary();
    let mut snap = HostSnapshot::default();
    snap.timeouts
        .entry("tcp".into())
        .or_default()
        .insert("established".into(), 86_400);
    let f = run(&Observation::new(snap.clone()).with_hotspots(s.clone()));
    assert_eq!(
        ids(&f),
        vec![
            FindingId::CloseWaitDominance,
            FindingId::LongEstablishedRetention
        ]
    );
    let ret = &f[1];
    // No pressure: information, no remedy, and the text says the value is
    // configured (not "the 5-day default").
    assert_eq!(ret.severity, Severity::Info);
    assert!(ret.remedies.is_empty());
    assert!(
        ret.explanation.contains("86400 s as configured here"),
        "{}",
        ret.explanation
    );
    assert_eq!(ret.value(EvidenceKey::IdleEstablished), Some(50.0));
    // A 1-hour timeout: nothing retained, but below the keepalive floor.
    snap.timeouts
        .entry("tcp".into())
        .or_default()
        .insert("established".into(), 3600);
    let f = run(&Observation::new(snap).with_hotspots(s));
    assert_eq!(
        ids(&f),
        vec![
            FindingId::CloseWaitDominance,
            FindingId::EstablishedTimeoutBelowNatFloor
        ]
    );
    // No NAT in these flows: information.
    assert_eq!(f[1].severity, Severity::Info);
    assert_eq!(
        f[1].remedies,
        vec![Remedy::RaiseTimeout(TimeoutKey::TcpEstablished)]
    );
}

#[test]
fn established_below_floor_behind_nat_is_a_warning() {
    let mut snap = host(3000, 8_388_608, 1_048_576, Some((3, 10)));
    snap.timeouts
        .entry("tcp".into())
        .or_default()
        .insert("established".into(), 3600);
    let f = run(&Observation::new(snap).with_hotspots(docker_nat_table(300).summary()));
    let b = find(&f, FindingId::EstablishedTimeoutBelowNatFloor);
    assert_eq!(b.severity, Severity::Warning);
    assert_eq!(
        b.value_of(EvidenceKey::TimeoutFloor, "tcp_timeout_established"),
        Some(7875.0)
    );
}

#[test]
fn churn_is_information_on_a_healthy_host_and_a_warning_under_pressure() {
    let mut h = Hotspots::exact();
    // 600 TIME_WAIT spread evenly over 120 s: 5 closes/s; 400 ESTABLISHED.
    for i in 0..600u32 {
        h.add(&tcp(
            "10.0.0.1",
            (1000 + i) as u16,
            "10.9.9.9",
            80,
            TcpState::TIME_WAIT,
            1 + i % 120,
            false,
        ));
    }
    for i in 0..400u32 {
        h.add(&tcp(
            "10.0.0.2",
            (1000 + i) as u16,
            "10.9.9.9",
            80,
            TcpState::ESTABLISHED,
            400_000,
            false,
        ));
    }
    let s = h.summary();
    let f =
        run(&Observation::new(host(1000, 262_144, 262_144, Some((6, 1)))).with_hotspots(s.clone()));
    let c = find(&f, FindingId::ConnectionChurn);
    assert_eq!(c.severity, Severity::Info);
    assert_eq!(c.remedies, vec![Remedy::ReuseConnections]);
    assert_eq!(c.value(EvidenceKey::NewConnectionRate), Some(5.0));
    // The same table at 90% of max: a warning, and TIME_WAIT shortening.
    let f = run(&Observation::new(host(1000, 1100, 1024, Some((6, 1)))).with_hotspots(s));
    let c = find(&f, FindingId::ConnectionChurn);
    assert_eq!(c.severity, Severity::Warning);
    assert!(
        c.remedies
            .contains(&Remedy::ShortenTimeout(TimeoutKey::TcpTimeWait))
    );
}

#[test]
fn a_full_table_ranks_what_fills_it_and_infers_demand() {
    let mut h = Hotspots::exact();
    for i in 0..150u32 {
        h.add(&tcp(
            "10.0.0.1",
            (1000 + i) as u16,
            "172.17.0.2",
            80,
            TcpState::TIME_WAIT,
            1 + i % 120,
            true,
        ));
    }
    for i in 0..50u32 {
        h.add(&tcp(
            "10.0.0.1",
            (5000 + i) as u16,
            "172.17.0.2",
            80,
            TcpState::ESTABLISHED,
            431_000,
            true,
        ));
    }
    let r = rates(&[(Drop, 0, 500), (EarlyDrop, 0, 300), (InsertFailed, 0, 0)]);
    let obs = Observation::new(host(200, 200, 65_536, Some((5, 15))))
        .with_rates(r)
        .with_hotspots(h.summary());
    let facts = Facts::derive(&obs);
    // 200 held + 50 refused/s x 120 s in TIME_WAIT.
    assert_eq!(facts.demand.as_ref().map(|d| d.entries), Some(6_200));
    let f = diagnose(&facts);
    let t = find(&f, FindingId::TableFull);
    assert_eq!(t.causes[0].cause, Cause::TimeWaitChurn);
    assert!(t.remedies.contains(&Remedy::RaiseMax));
    assert!(t.remedies.contains(&Remedy::ReuseConnections));
    assert_eq!(t.value(EvidenceKey::DemandEntries), Some(6_200.0));
}

/// The incident lab's table-full scenario on 6.18: a table full of
/// recently active ESTABLISHED entries (timers near the 5-day timeout),
/// about 400 SYNs/s refused. Holding each refused flow for the
/// ESTABLISHED timeout made the demand 174 million entries and the plan
/// declined to raise max at all; an open connection's lifetime is unknown,
/// so it is counted for TIME_WAIT, a floor.
#[test]
fn a_table_full_of_established_counts_refused_flows_for_time_wait_only() {
    let mut h = Hotspots::exact();
    for i in 0..200u32 {
        h.add(&tcp(
            &format!("198.18.64.{}", i % 250),
            (1024 + i) as u16,
            "198.19.0.2",
            443,
            TcpState::ESTABLISHED,
            431_990,
            false,
        ));
    }
    let r = rates(&[(Drop, 0, 4000), (EarlyDrop, 0, 60), (InsertFailed, 0, 0)]);
    let obs = Observation::new(host(200, 200, 262_144, Some((6, 18))))
        .with_rates(r)
        .with_hotspots(h.summary());
    let facts = Facts::derive(&obs);
    let d = facts.demand.as_ref().expect("a demand");
    // 200 held + 400 refused/s x 120 s (TIME_WAIT), not x 432000 s.
    assert_eq!(d.entries, 200 + 400 * 120);
    assert_eq!(d.hold_secs, Some(120));
    assert!(d.hold_is_floor);
    assert_eq!(d.hold_state.as_deref(), Some("tcp ESTABLISHED"));
    let f = diagnose(&facts);
    let t = find(&f, FindingId::TableFull);
    assert_eq!(t.causes[0].cause, Cause::DemandAboveMax);
    assert_eq!(t.value(EvidenceKey::DemandEntries), Some(48_200.0));
}

#[test]
fn degenerate_hosts_do_not_panic() {
    let r = rates(&[
        (InsertFailed, u32::MAX, 5),
        (Drop, 0, 5),
        (ChainTooLong, 0, 5),
    ]);
    for h in [
        host(5, 0, 0, Some((6, 18))),        // unlimited max, zero buckets
        host(u32::MAX, 1, 1, Some((5, 15))), // count far over max
        host(0, u32::MAX, u32::MAX, Some((0, 0))),
        HostSnapshot::default(),
    ] {
        for f in run(&Observation::new(h).with_rates(r.clone())) {
            assert!(!f.evidence.is_empty());
            assert!(f.evidence.iter().all(|e| e.value.is_finite()), "{f}");
        }
    }
    // max 0 means unlimited: never "full".
    assert!(run(&Observation::new(host(5, 0, 0, None))).is_empty());
}

#[test]
fn few_flows_give_no_share_findings() {
    let mut h = Hotspots::exact();
    for i in 0..10u16 {
        h.add(&tcp(
            "10.0.0.1",
            1000 + i,
            "10.9.9.9",
            80,
            TcpState::TIME_WAIT,
            60,
            false,
        ));
    }
    assert!(run(&Observation::default().with_hotspots(h.summary())).is_empty());
}

#[test]
fn nearly_full_reports_time_to_full() {
    let mk = |t: u64, e: u32| Sample {
        at: Duration::from_secs(t),
        stats: Stats::new(vec![CpuStats::for_cpu(0)]).with_entries(e),
    };
    let r = Rates::from_samples(&[mk(0, 8_000), mk(10, 8_500), mk(20, 9_000)]);
    let f = run(&Observation::new(host(9_000, 10_000, 65_536, None)).with_rates(r));
    assert_eq!(ids(&f), vec![FindingId::TableNearlyFull]);
    assert_eq!(f[0].value(EvidenceKey::CountTrend), Some(50.0));
    assert_eq!(f[0].value(EvidenceKey::TimeToFull), Some(20.0));
}

#[test]
fn a_counter_newer_than_the_version_that_counts_is_a_backport() {
    // A 5.10.y stable kernel that took the chain cap (d7e7747ac5c2):
    // chaintoolong counts although mainline 5.10 has no such counter.
    let r = rates(&[
        (InsertFailed, 1_000, 300),
        (Drop, 0, 0),
        (EarlyDrop, 0, 0),
        (ChainTooLong, 1_000, 300),
    ]);
    let obs = Observation::new(host(40_000, 262_144, 4096, Some((5, 10)))).with_rates(r);
    let facts = Facts::derive(&obs);
    assert_eq!(facts.counters.get(ChainTooLong).status, CounterStatus::Live);
    assert_eq!(
        facts.chain_cap(),
        crate::buckets::ChainCap::Uniform { min: 8, max: 31 }
    );
    let f = diagnose(&facts);
    let c = find(&f, FindingId::ConfirmFailures);
    assert_eq!(c.causes[0].cause, Cause::ChainCap);
    assert_eq!(c.causes[0].likelihood, Likelihood::Confirmed);
    // The same kernel without the counter has no cap.
    let r = rates(&[(InsertFailed, 1_000, 300), (Drop, 1_000, 300)]);
    let obs = Observation::new(host(40_000, 262_144, 4096, Some((5, 10)))).with_rates(r);
    let facts = Facts::derive(&obs);
    assert_eq!(facts.chain_cap(), crate::buckets::ChainCap::None);
}

#[test]
fn counters_of_another_namespace_count_since_it_was_created() {
    let r = rates(&[(InsertFailed, 500, 100), (Drop, 500, 100)]);
    let mut snap = host(100, 65_536, 65_536, Some((6, 1)));
    let answer_of = |snap: &HostSnapshot| {
        let obs = Observation::new(snap.clone()).with_rates(r.clone());
        let facts = Facts::derive(&obs);
        crate::answers::answer(&facts)
            .into_iter()
            .find(|a| a.question == crate::answers::Question::NowOrSinceBoot)
            .expect("the now-or-since-boot answer")
            .answer
    };
    snap.init_netns = Some(false);
    let a = answer_of(&snap);
    assert!(a.contains("since the namespace was created"), "{a}");
    assert!(!a.contains("since boot"), "{a}");
    snap.init_netns = Some(true);
    assert!(answer_of(&snap).contains("since boot"));
}

/// The incident lab's udp-clash scenario on 6.18: clash_resolve rises,
/// nothing fails. Said, without an alarm; when inserts fail too,
/// confirm-failures speaks instead.
#[test]
fn resolved_clashes_are_information_and_yield_to_failures() {
    let r = rates(&[(ClashResolve, 0, 3000), (InsertFailed, 0, 0), (Drop, 0, 0)]);
    let obs = Observation::new(host(500, 262_144, 262_144, Some((6, 18)))).with_rates(r);
    let f = run(&obs);
    let rc = find(&f, FindingId::ResolvedClashes);
    assert_eq!(rc.severity, Severity::Info);
    assert!(rc.remedies.is_empty());
    assert_eq!(
        rc.value_of(EvidenceKey::CounterRate, "clash_resolve"),
        Some(300.0)
    );
    assert!(!ids(&f).contains(&FindingId::ConfirmFailures));

    let r = rates(&[
        (ClashResolve, 0, 3000),
        (InsertFailed, 0, 100),
        (Drop, 0, 100),
    ]);
    let obs = Observation::new(host(500, 262_144, 262_144, Some((6, 18)))).with_rates(r);
    let f = run(&obs);
    assert!(!ids(&f).contains(&FindingId::ResolvedClashes));
    assert!(ids(&f).contains(&FindingId::ConfirmFailures));
}
