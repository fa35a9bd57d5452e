//! Diagnosis on scenario fixtures built from real-world shapes
//! (`fixtures/scenarios/README.md`): stats text series parsed by
//! `conntrack_core::procstat`, host facts as JSON, flows as `conntrack -L`
//! text parsed by `conntrack_core::cli::list`.

use conntrack_analyze::hotspots::{HotspotSummary, Hotspots, KeyKind};
use conntrack_analyze::rates::{Rates, StatsSeries};
use conntrack_analyze::{Finding, FindingId, Severity, diagnose};
use conntrack_core::HostSnapshot;
use std::path::PathBuf;

struct Scenario {
    host: HostSnapshot,
    rates: Rates,
    hotspots: Option<HotspotSummary>,
}

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios")
        .join(name)
}

fn load(name: &str) -> Scenario {
    let d = dir(name);
    let host: HostSnapshot =
        serde_json::from_str(&std::fs::read_to_string(d.join("host.json")).unwrap()).unwrap();
    let series =
        StatsSeries::parse_captures(&std::fs::read_to_string(d.join("series.txt")).unwrap())
            .expect("series.txt parses");
    assert!(series.samples().len() >= 2);
    let hotspots = std::fs::read_to_string(d.join("flows.txt")).ok().map(|t| {
        let mut h = Hotspots::exact();
        for f in conntrack_core::cli::list::parse_lines(&t) {
            h.add(&f.expect("fixture line parses"));
        }
        h.summary()
    });
    Scenario {
        host,
        rates: series.rates(),
        hotspots,
    }
}

fn run(s: &Scenario) -> Vec<Finding> {
    diagnose(&s.host, Some(&s.rates), s.hotspots.as_ref())
}

fn ids(f: &[Finding]) -> Vec<FindingId> {
    f.iter().map(|x| x.id).collect()
}

fn get(f: &[Finding], id: FindingId) -> &Finding {
    f.iter()
        .find(|x| x.id == id)
        .unwrap_or_else(|| panic!("{id} missing from {:?}", ids(f)))
}

#[test]
fn rps_off_confirm_failures() {
    let s = load("rps-off-confirm-failures");
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec![FindingId::ConfirmClash, FindingId::CpuImbalance]
    );
    let c = get(&f, FindingId::ConfirmClash);
    assert_eq!(c.severity, Severity::Critical);
    // 125 per 10 s on CPU 0, nothing elsewhere.
    assert_eq!(c.evidence_value("insert_failed rate"), Some(12.5));
    assert_eq!(c.evidence_value("drop rate"), Some(12.5));
    assert_eq!(c.evidence_value("early_drop rate"), Some(0.0));
    // 10486 / 262144 = 4.000%.
    assert_eq!(c.evidence_value("utilisation"), Some(4.0));
    // 5.4 has neither clash_resolve nor chaintoolong columns.
    assert_eq!(c.evidence_value("clash_resolve rate"), None);
    let i = get(&f, FindingId::CpuImbalance);
    assert_eq!(i.evidence_value("max / mean"), Some(4.0));
    assert_eq!(i.evidence_value("busiest CPU share"), Some(100.0));
    assert_eq!(i.evidence_value("rx queues with RPS"), Some(0.0));
    // /proc rows map to possible CPUs in order: row 0 is CPU 0 here.
    assert!(i.title.contains("CPU 0"), "{}", i.title);
    // 91234567 of 91238258 NET_RX softirqs on one CPU.
    assert_eq!(
        i.evidence_value("NET_RX softirqs on busiest CPU"),
        Some(100.0)
    );
}

#[test]
fn table_full() {
    let s = load("table-full");
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec![
            FindingId::TableFull,
            FindingId::OverloadedBuckets,
            FindingId::ScanSuspects
        ]
    );
    let t = get(&f, FindingId::TableFull);
    assert_eq!(t.evidence_value("early_drop rate"), Some(40.0));
    assert_eq!(t.evidence_value("drop rate"), Some(25.0));
    // insert_failed only grew before the window.
    assert_eq!(t.evidence_value("insert_failed rate"), Some(0.0));
    assert_eq!(t.evidence_value("utilisation"), Some(100.0));
    // 4.19 defaults at a full table: 2 x 65536 / 16384 = 8.
    let b = get(&f, FindingId::OverloadedBuckets);
    assert_eq!(b.severity, Severity::Warning);
    assert_eq!(b.evidence_value("mean chain length 2N/B"), Some(8.0));
    assert_eq!(
        b.evidence_value("modelled refusal probability per insert"),
        None
    );
    let sc = get(&f, FindingId::ScanSuspects);
    assert_eq!(
        sc.evidence_value("unreplied flows from 203.0.113.66"),
        Some(150.0)
    );
    assert_eq!(sc.evidence_value("unreplied flows"), Some(240.0));
    assert_eq!(sc.evidence_value("unreplied share"), Some(80.0));
    // No confirm-time finding: drops exceed insert_failed on a full table.
    assert!(!ids(&f).contains(&FindingId::ConfirmFailures));
}

#[test]
fn dns_clash() {
    let s = load("dns-clash");
    let f = run(&s);
    assert_eq!(
        ids(&f),
        vec![FindingId::ConfirmClash, FindingId::NatAmplification]
    );
    let c = get(&f, FindingId::ConfirmClash);
    // 4 CPUs x 3 + 4 CPUs x 2 per 10 s.
    assert_eq!(c.evidence_value("insert_failed rate"), Some(2.0));
    assert_eq!(c.evidence_value("drop rate"), Some(2.0));
    // 4 x 40 + 4 x 38 per 10 s.
    assert_eq!(c.evidence_value("clash_resolve rate"), Some(31.2));
    assert_eq!(c.evidence_value("chaintoolong rate"), Some(0.0));
    // RPS is on: no imbalance finding even though CPUs 0-3 fail more.
    let n = get(&f, FindingId::NatAmplification);
    assert_eq!(n.severity, Severity::Info);
    assert_eq!(n.evidence_value("translated share"), Some(80.0));
    assert_eq!(n.evidence_value("DNAT flows"), Some(160.0));
    let h = s.hotspots.as_ref().unwrap();
    let dport = h.table(KeyKind::DstPort).unwrap();
    assert_eq!(dport.top[0].key.to_string(), "udp/53");
    assert_eq!(dport.top[0].count, 160);
}

#[test]
fn time_wait_proxy() {
    let s = load("time-wait-proxy");
    let f = run(&s);
    // Old drops and early drops are history: no table-full finding.
    assert_eq!(
        ids(&f),
        vec![FindingId::TimeWaitDominance, FindingId::UnneededHelpers]
    );
    let r = &s.rates;
    assert_eq!(
        r.get(conntrack_core::Counter::EarlyDrop)
            .unwrap()
            .since_boot,
        4 * 480
    );
    assert!(!r.is_live(conntrack_core::Counter::EarlyDrop));
    let t = get(&f, FindingId::TimeWaitDominance);
    assert_eq!(t.evidence_value("TIME_WAIT entries"), Some(240.0));
    assert_eq!(t.evidence_value("TIME_WAIT share"), Some(60.0));
    // Little's law: 240 entries / 120 s = 2 closes/s.
    assert_eq!(t.evidence_value("implied closes (Little's law)"), Some(2.0));
    // Remaining 0..119 s, two entries each: under 30 s those with less
    // than 90 s left would be gone: 180.
    assert_eq!(
        t.evidence_value("entries freed at a 30 s timeout"),
        Some(180.0)
    );
    let u = get(&f, FindingId::UnneededHelpers);
    assert!(u.title.contains("nf_conntrack_ftp"));
}

#[test]
fn every_finding_has_evidence_and_serialises() {
    for name in [
        "rps-off-confirm-failures",
        "table-full",
        "dns-clash",
        "time-wait-proxy",
    ] {
        let s = load(name);
        for f in run(&s) {
            assert!(!f.evidence.is_empty(), "{name}: {}", f.id);
            assert!(f.evidence.iter().all(|e| e.value.is_finite()));
            let j = serde_json::to_string(&f).unwrap();
            let back: Finding = serde_json::from_str(&j).unwrap();
            assert_eq!(back, f);
            assert!(!f.to_string().is_empty());
        }
    }
}

/// The same windows with only one sample: nothing about counters can be
/// said, so no counter-based finding appears.
#[test]
fn single_sample_gives_no_counter_findings() {
    let d = dir("rps-off-confirm-failures");
    let series =
        StatsSeries::parse_captures(&std::fs::read_to_string(d.join("series.txt")).unwrap())
            .expect("series.txt parses");
    let one = conntrack_analyze::rates::Rates::from_samples(&series.samples()[..1]);
    let host: HostSnapshot =
        serde_json::from_str(&std::fs::read_to_string(d.join("host.json")).unwrap()).unwrap();
    assert!(diagnose(&host, Some(&one), None).is_empty());
}
