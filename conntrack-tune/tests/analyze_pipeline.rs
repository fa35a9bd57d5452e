//! End to end from raw values: flows and stats samples through
//! conntrack-analyze (rates, hotspots, diagnosis) into the planner.

use conntrack_analyze::hotspots::Hotspots;
use conntrack_analyze::rates::StatsSeries;
use conntrack_core::{
    Counter, CpuStats, Flow, HostSnapshot, KernelVersion, L4Proto, L4Tuple, ProtoInfo, Stats,
    Status, TcpInfo, TcpState, Tuple,
};
use conntrack_tune::plan::Priority;
use conntrack_tune::{Cause, Policy, analyze_input, plan, render};
use std::time::Duration;

fn tcp_flow(i: u32, state: TcpState, remaining: u32) -> Flow {
    let ip = |s: &str| s.parse().unwrap();
    let sport = 20_000 + i as u16;
    let o = Tuple::new(
        ip("192.0.2.10"),
        ip("192.0.2.80"),
        L4Proto::TCP,
        L4Tuple::Ports {
            src: sport,
            dst: 80,
        },
    );
    let r = Tuple::new(
        ip("192.0.2.80"),
        ip("192.0.2.10"),
        L4Proto::TCP,
        L4Tuple::Ports {
            src: 80,
            dst: sport,
        },
    );
    let mut f = Flow::new(
        o,
        r,
        Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
    );
    f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo {
        state,
        ..Default::default()
    }));
    f.timeout = Some(remaining);
    f
}

fn stats(drop: u32, early: u32, entries: u32) -> Stats {
    let cpus = (0..2)
        .map(|c| {
            let mut s = CpuStats::for_cpu(c);
            s.set(Counter::Drop, drop);
            s.set(Counter::EarlyDrop, early);
            s.set(Counter::InsertFailed, 0);
            s.set(Counter::ClashResolve, 0);
            s.set(Counter::ChainTooLong, 0);
            s
        })
        .collect();
    Stats {
        entries: Some(entries),
        max_entries: None,
        cpus,
    }
}

#[test]
fn ab_burst_through_analyze() {
    // `ab -c 300` against a host with max 200: 150 TIME_WAIT tails, 50
    // established; early_drop and drop climbing over 20 s.
    let mut flows: Vec<Flow> = (0..150)
        .map(|i| tcp_flow(i, TcpState::TIME_WAIT, 1 + i % 120))
        .collect();
    flows.extend((150..200).map(|i| tcp_flow(i, TcpState::ESTABLISHED, 431_990)));
    let mut h = Hotspots::exact();
    h.extend(&flows);
    let summary = h.summary();

    let mut series = StatsSeries::new();
    series
        .push(Duration::from_secs(0), stats(1000, 50, 200))
        .unwrap();
    series
        .push(Duration::from_secs(10), stats(2000, 90, 200))
        .unwrap();
    series
        .push(Duration::from_secs(20), stats(3000, 130, 200))
        .unwrap();
    let rates = series.rates();

    let snap = HostSnapshot {
        kernel_version: Some(KernelVersion::new(6, 8, 0)),
        page_size: Some(4096),
        mem_total_bytes: Some(1 << 30),
        cpus_online: vec![0, 1],
        count: Some(200),
        max: Some(200),
        buckets: Some(8192),
        stats: Some(stats(3000, 130, 200)),
        init_netns: Some(true),
        ..Default::default()
    };
    let mut obs = analyze_input::observe(snap, Some(&rates), Some(&summary));
    assert!(
        obs.findings.iter().any(|f| f.cause == Cause::TableFull),
        "{:?}",
        obs.findings
    );
    // The connection rate comes from NEW events in a real agent.
    if let Some(r) = obs.rates.as_mut() {
        r.new_flows_per_sec = Some(100.0);
    }
    let p = plan(&obs, &Policy::default()).unwrap();
    let first = &p.actions[0];
    assert_eq!(first.id, "raise-max", "{}", render::text(&p));
    assert_eq!(first.priority, Priority::P0);
    assert!(
        first
            .evidence
            .iter()
            .any(|e| e.source == "finding:table-full" && !e.numbers.is_empty()),
        "{:?}",
        first.evidence
    );
    assert!(p.action("buckets").is_some());
    assert!(p.action("timeout:tcp_timeout_time_wait").is_some());
    assert!(p.action("advice:keepalive").is_some());
}
