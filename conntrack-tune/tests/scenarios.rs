//! Scenario tests: real-world shapes replayed through the planner
//! (fixtures/scenarios/README.md describes each one).

use conntrack_tune::plan::{ActionKind, KEY_MAX, Priority, WarningKind};
use conntrack_tune::sizing::chain_length;
use conntrack_tune::{Observation, Plan, Policy, kube, plan, render, sysctl_d};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios")
}

fn load(name: &str) -> Observation {
    let text = std::fs::read_to_string(fixtures().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn proposed_u64(p: &Plan, id: &str) -> u64 {
    p.action(id)
        .and_then(|a| a.change.as_ref())
        .map(|c| c.proposed.parse().unwrap())
        .unwrap_or_else(|| panic!("no {id} in {}", render::text(p)))
}

/// Every plan, whatever the scenario, keeps the invariants the rules pin.
fn invariants(p: &Plan, obs: &Observation, policy: &Policy) {
    let peak = p.context.peak.unwrap_or(0) as f64;
    // Never a max below the peak times the headroom.
    for a in &p.actions {
        if let ActionKind::SetSysctl { key, value } = &a.kind
            && key == KEY_MAX
        {
            let v: f64 = value.parse().unwrap();
            assert!(v >= peak * policy.headroom, "{v} < {peak} x headroom");
        }
        if let ActionKind::SetBuckets { buckets, .. } = &a.kind {
            assert_eq!(buckets % 512, 0, "buckets not rounded");
            let max = p
                .action("raise-max")
                .map(|_| proposed_u64(p, "raise-max"))
                .or(p.context.max.map(u64::from))
                .unwrap();
            assert!(chain_length(max, *buckets as u64) <= policy.max_chain_length);
        }
        if let ActionKind::SetTimeout { seconds, floor, .. } = &a.kind {
            assert!(seconds >= floor);
        }
        assert!(!a.evidence.is_empty(), "{} has no evidence", a.id);
        assert!(!a.rollback.is_empty(), "{} has no rollback", a.id);
        assert!(!a.verify.is_empty(), "{} has no verification", a.id);
    }
    // Ordered by priority.
    assert!(p.actions.windows(2).all(|w| w[0].priority <= w[1].priority));
    // Every rendering works and the JSON round-trips.
    let j = render::json(p).unwrap();
    let back: Plan = serde_json::from_str(&j).unwrap();
    assert_eq!(&back, p);
    render::shell_script(p).unwrap();
    render::sysctl_d(p).unwrap();
    render::modprobe_d(p).unwrap();
    render::iptables(p).unwrap();
    render::nftables(p).unwrap();
    assert!(!render::text(p).is_empty());
    assert!(!render::markdown(p).is_empty());
    let _ = obs;
}

#[test]
fn clash_drops_are_not_a_full_table() {
    let obs = load("clash-rps.json");
    let policy = Policy::default();
    let p = plan(&obs, &policy).unwrap();
    invariants(&p, &obs, &policy);
    // Must not lead with (or contain) "raise max".
    assert_ne!(p.actions[0].id, "raise-max", "{}", render::text(&p));
    assert!(p.action("raise-max").is_none());
    assert!(
        p.declined
            .iter()
            .any(|d| d.what == "raise-max" && d.why.contains("not the problem"))
    );
    // Addresses RPS: 8 queues, 32 CPUs, 4 CPUs per queue, all CPUs covered.
    let rps = p.action("rps:eth0").expect("rps:eth0");
    assert_eq!(rps.priority, Priority::P1);
    assert_eq!(p.actions[0].priority, Priority::P1);
    let ActionKind::EnableRps { queues, .. } = &rps.kind else {
        panic!()
    };
    assert_eq!(queues.len(), 8);
    let mut cpus: Vec<u32> = queues.iter().flat_map(|q| q.cpus.clone()).collect();
    cpus.sort_unstable();
    assert_eq!(cpus, (0..32).collect::<Vec<_>>());
    assert!(p.action("rps:lo").is_none());
    // Addresses the clash cause, with the counters as evidence.
    let clash = p.action("advice:dns-clash").expect("clash advice");
    assert!(
        clash
            .evidence
            .iter()
            .any(|e| e.text.contains("insert_failed") && e.text.contains("not a full table"))
    );
    // And the chain ratio: explicit hashsize left max = 8 x buckets
    // (chain 16 at a full table); hygiene, not the lead.
    let b = p.action("buckets").expect("buckets");
    assert_eq!(b.priority, Priority::P3);
    assert!(b.evidence.iter().any(|e| e.text.contains("8 x buckets")));
    assert_eq!(proposed_u64(&p, "buckets"), 8_388_608);
    // Built in: hashsize goes to the kernel command line, not modprobe.d.
    assert!(p.action("persist:cmdline").is_some());
    assert!(p.action("persist:modprobe").is_none());
    // No NOTRACK: the firewall policy is unknown.
    assert!(p.actions.iter().all(|a| !a.id.starts_with("notrack")));
}

#[test]
fn full_table_under_short_connection_burst() {
    let obs = load("full-burst.json");
    let policy = Policy::default();
    let p = plan(&obs, &policy).unwrap();
    invariants(&p, &obs, &policy);
    // Leads with raising max, P0, with buckets.
    assert_eq!(p.actions[0].id, "raise-max", "{}", render::text(&p));
    assert_eq!(p.actions[0].priority, Priority::P0);
    let max = proposed_u64(&p, "raise-max");
    assert!(max as f64 >= 300.0, "below the ab -c 300 concurrency");
    // The peak was censored at max: demand from the rate (Little's law).
    assert!(p.has_warning(WarningKind::PeakCensored));
    assert!(max >= 12_000, "demand estimate ignored: {max}");
    let b = p.action("buckets").expect("buckets with max");
    assert_eq!(b.priority, Priority::P0);
    // Shorten TIME_WAIT, justified by the histogram.
    let tw = p
        .action("timeout:tcp_timeout_time_wait")
        .expect("TIME_WAIT action");
    let ActionKind::SetTimeout { seconds, floor, .. } = &tw.kind else {
        panic!()
    };
    assert_eq!(*seconds, 30);
    assert_eq!(*floor, 30);
    assert!(tw.effect.entries_freed.unwrap() > 0);
    // Advise keepalive.
    let k = p.action("advice:keepalive").expect("keepalive advice");
    assert_eq!(k.priority, Priority::P2);
    // Persisted: max, buckets, TIME_WAIT in sysctl.d; hashsize in modprobe.d.
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(f.content.contains(&format!("{KEY_MAX} = {max}")));
    assert!(
        f.content
            .contains("nf_conntrack_tcp_timeout_time_wait = 30")
    );
    let m = render::modprobe_d(&p).unwrap().unwrap();
    assert!(m.content.contains("options nf_conntrack hashsize="));
}

#[test]
fn docker_host_no_notrack_for_nat() {
    let obs = load("docker-nat.json");
    // Even with no stateful firewall and aggressive risk, NAT'd flows are
    // never NOTRACKed.
    let policy = Policy {
        stateful_firewall: Some(false),
        risk: conntrack_tune::RiskTolerance::Aggressive,
        ..Policy::default()
    };
    let p = plan(&obs, &policy).unwrap();
    invariants(&p, &obs, &policy);
    assert!(
        p.actions.iter().all(|a| !a.id.starts_with("notrack")),
        "{}",
        render::text(&p)
    );
    for svc in ["udp/53", "tcp/443"] {
        let d = p
            .declined
            .iter()
            .find(|d| d.what == format!("notrack {svc}"))
            .unwrap_or_else(|| panic!("{svc} not declined"));
        assert!(d.why.contains("NAT'd"), "{}", d.why);
    }
    assert!(p.action("advice:host-networking").is_some());
    assert!(p.action("advice:keepalive").is_some());
    // NAT in use: the TIME_WAIT floor is the NAT one.
    let tw = p.action("timeout:tcp_timeout_time_wait").unwrap();
    let ActionKind::SetTimeout { seconds, floor, .. } = &tw.kind else {
        panic!()
    };
    assert_eq!((*seconds, *floor), (60, 60));
    // No RPS: the load is balanced.
    assert!(p.actions.iter().all(|a| !a.id.starts_with("rps:")));
    assert_eq!(
        render::iptables(&p)
            .unwrap()
            .matches("CT --notrack")
            .count(),
        0
    );
}

#[test]
fn kubernetes_node_with_kube_proxy() {
    let mut obs = load("k8s-node.json");
    let root = fixtures().join("k8s-root");
    obs.kube_proxy = kube::detect(&root);
    obs.sysctl_scan = Some(sysctl_d::scan(&root));
    let policy = Policy::default();
    let p = plan(&obs, &policy).unwrap();
    invariants(&p, &obs, &policy);
    assert!(
        p.has_warning(WarningKind::KubeProxyManaged),
        "{}",
        render::text(&p)
    );
    let w = p
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::KubeProxyManaged)
        .unwrap();
    assert!(w.text.contains("524,288"), "{}", w.text);
    // Headroom short: raise max now, persist it through kube-proxy, not
    // sysctl.d (kube-proxy would overwrite it).
    let max = proposed_u64(&p, "raise-max");
    assert!(max >= 600_000);
    let kp = p
        .action("persist:kube-proxy")
        .expect("kube-proxy persistence");
    assert_eq!(
        kp.change.as_ref().unwrap().proposed,
        max.div_ceil(16).to_string()
    );
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(!f.content.contains(KEY_MAX), "{}", f.content);
    // kube-proxy's buckets = max/4 is corrected.
    assert!(p.action("buckets").is_some());
    // The CRI file sets buckets and sorts after 90-conntrack-kit.conf.
    assert!(
        p.warnings
            .iter()
            .any(|w| w.kind == WarningKind::PersistenceOverridden
                && w.text.contains("/etc/sysctl.d/99-kubernetes-cri.conf"))
    );
    // Service traffic is DNAT'd: no NOTRACK.
    assert!(p.actions.iter().all(|a| !a.id.starts_with("notrack")));
}
