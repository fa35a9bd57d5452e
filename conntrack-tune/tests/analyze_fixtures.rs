//! conntrack-analyze's diagnosis scenarios (captured-format files: host
//! JSON, `/proc/net/stat/nf_conntrack` series, `conntrack -L` text; see
//! conntrack-analyze/fixtures/scenarios/README.md) replayed end to end:
//! core parsers -> analyze (rates, hotspots, diagnosis) -> planner.

use conntrack_analyze::hotspots::Hotspots;
use conntrack_analyze::rates::StatsSeries;
use conntrack_core::HostSnapshot;
use conntrack_tune::plan::{ActionKind, Priority};
use conntrack_tune::{Observation, Plan, Policy, analyze_input, plan, render};
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conntrack-analyze/fixtures/scenarios")
        .join(name)
}

fn observe(name: &str) -> Observation {
    let d = dir(name);
    let read = |f: &str| {
        std::fs::read_to_string(d.join(f)).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (conntrack-analyze's scenario fixtures moved?)",
                d.join(f).display()
            )
        })
    };
    let host: HostSnapshot = serde_json::from_str(&read("host.json")).unwrap();
    let rates = StatsSeries::parse_captures(&read("series.txt"))
        .expect("series.txt parses")
        .rates();
    let hotspots = std::fs::read_to_string(d.join("flows.txt")).ok().map(|t| {
        let mut h = Hotspots::exact();
        for f in conntrack_core::cli::list::parse_lines(&t) {
            h.add(&f.expect("fixture line parses"));
        }
        h.summary()
    });
    analyze_input::observe(host, Some(&rates), hotspots.as_ref())
}

fn run(name: &str) -> Plan {
    let p = plan(&observe(name), &Policy::default()).unwrap();
    render::shell_script(&p).unwrap();
    p
}

#[test]
fn rps_off_confirm_failures() {
    let p = run("rps-off-confirm-failures");
    assert!(p.action("raise-max").is_none(), "{}", render::text(&p));
    let rps = p.action("rps:eth0").expect("rps");
    let ActionKind::EnableRps { queues, .. } = &rps.kind else {
        panic!()
    };
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0].mask, "f");
    assert!(
        rps.evidence
            .iter()
            .any(|e| e.source == "finding:cpu-imbalance")
    );
    // 5.4: clash resolution improved in 5.6.
    let clash = p.action("advice:dns-clash").expect("clash advice");
    assert!(
        clash
            .evidence
            .iter()
            .any(|e| e.source == "finding:confirm-clash")
    );
    assert!(clash.effect.text.contains("6a757c07e51f"));
}

#[test]
fn table_full_syn_flood() {
    let p = run("table-full");
    assert_eq!(p.actions[0].id, "raise-max", "{}", render::text(&p));
    assert_eq!(p.actions[0].priority, Priority::P0);
    assert!(
        p.actions[0]
            .evidence
            .iter()
            .any(|e| e.source == "finding:table-full")
    );
    // 4.19's 1:4 ratio is fixed with the raise.
    assert!(p.action("buckets").is_some());
    // The flood's sources are named as the workload cause.
    assert!(p.action("advice:unreplied-sources").is_some());
}

#[test]
fn dns_clash_on_kubernetes() {
    let p = run("dns-clash");
    assert!(p.action("raise-max").is_none(), "{}", render::text(&p));
    assert!(p.action("advice:dns-clash").is_some());
    // RPS is already on: nothing to do there.
    assert!(p.actions.iter().all(|a| !a.id.starts_with("rps:")));
    // Service traffic is DNAT'd: never NOTRACK.
    assert!(p.actions.iter().all(|a| !a.id.starts_with("notrack")));
}

#[test]
fn time_wait_proxy() {
    let p = run("time-wait-proxy");
    // 57% used, counters only historical: no raise, no timeout change
    // (no pressure), but the workload cause is named and the unused helper
    // goes.
    assert!(p.action("raise-max").is_none(), "{}", render::text(&p));
    let k = p.action("advice:keepalive").expect("keepalive advice");
    // The flows are a 400-line sample of 150,000 entries: scaled.
    assert!(k.effect.entries_freed.unwrap() > 10_000, "{:?}", k.effect);
    assert!(k.evidence.iter().any(|e| e.text.contains("sample")));
    let unload = p.action("unload-helpers").expect("unload helper");
    assert_eq!(
        unload.kind,
        ActionKind::UnloadHelpers {
            modules: vec!["nf_conntrack_ftp".into()]
        }
    );
    assert!(
        unload
            .evidence
            .iter()
            .any(|e| e.source == "finding:unneeded-helpers")
    );
}
