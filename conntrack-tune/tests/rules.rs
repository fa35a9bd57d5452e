//! One test (or property) per planner rule.

use conntrack_core::{Flow, HostSnapshot, KernelVersion, L4Proto, L4Tuple, RxQueue, Status, Tuple};
use conntrack_tune::observe::{CpuDelta, FlowSummary, RemainingHistogram};
use conntrack_tune::plan::*;
use conntrack_tune::sizing::chain_length;
use conntrack_tune::{
    ModuleKind, Observation, Plan, Policy, Rates, RiskTolerance, plan, render, sysctl_d,
};
use proptest::prelude::*;

const GIB: u64 = 1 << 30;

fn host(v: (u16, u16), mem: u64, count: u32, max: u32, buckets: u32) -> HostSnapshot {
    HostSnapshot {
        kernel_version: Some(KernelVersion::new(v.0, v.1, 0)),
        page_size: Some(4096),
        mem_total_bytes: Some(mem),
        cpus_online: (0..4).collect(),
        count: Some(count),
        max: Some(max),
        buckets: Some(buckets),
        init_netns: Some(true),
        ..Default::default()
    }
}

fn obs(s: HostSnapshot) -> Observation {
    Observation {
        snapshot: Some(s),
        ..Default::default()
    }
}

fn proposed(p: &Plan, id: &str) -> Option<u64> {
    p.action(id)
        .and_then(|a| a.change.as_ref())
        .map(|c| c.proposed.parse().unwrap())
}

// ---- sizing -------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Never a max below peak x headroom; buckets rounded and within the
    /// chain target; raises stay within the budget, or the conflict is said.
    #[test]
    fn sizing_invariants(
        peak in 1u32..20_000_000,
        max in 0u32..20_000_000,
        buckets in 1u32..20_000_000,
        mem_gib in 1u64..512,
        headroom in 1.0f64..4.0,
        target in 0.5f64..8.0,
        minor in prop::sample::select(vec![(3u16, 10u16), (4, 19), (5, 10), (5, 15), (6, 18)]),
        drops in 0u64..1000,
    ) {
        let s = host(minor, mem_gib * GIB, peak, max, buckets);
        let mut o = obs(s);
        o.rates = Some(Rates {
            window_secs: 60.0,
            peak_entries: Some(peak),
            per_cpu: vec![CpuDelta { cpu: 0, drop: drops, early_drop: drops / 2, ..Default::default() }],
            ..Default::default()
        });
        let policy = Policy { headroom, max_chain_length: target, ..Policy::default() };
        let p = plan(&o, &policy).unwrap();
        let required = (peak as f64 * headroom).ceil() as u64;
        let budget = (mem_gib * GIB) as f64 * policy.memory_budget_share;
        let final_max = proposed(&p, "raise-max").unwrap_or(max as u64);
        if let Some(m) = proposed(&p, "raise-max") {
            prop_assert!(m >= required);
            let after = p.action("raise-max").unwrap().effect.memory_after_bytes.unwrap();
            prop_assert!(after as f64 <= budget);
        } else if max != 0 && (max as u64) < required {
            prop_assert!(p.has_warning(WarningKind::BudgetConflict), "{}", render::text(&p));
        }
        if let Some(b) = proposed(&p, "buckets") {
            prop_assert!(b.is_multiple_of(512));
            prop_assert!(chain_length(final_max, b) <= target);
            prop_assert!(b > buckets as u64);
        }
        prop_assert!(p.actions.windows(2).all(|w| w[0].priority <= w[1].priority));
    }
}

#[test]
fn budget_and_headroom_conflict_is_said() {
    // 1 GiB at 5%: ~53 MB holds ~130k entries; the peak needs 1.5M.
    let p = plan(
        &obs(host((6, 1), GIB, 1_000_000, 1_000_000, 1_000_448)),
        &Policy::default(),
    )
    .unwrap();
    assert!(p.action("raise-max").is_none());
    assert!(p.has_warning(WarningKind::BudgetConflict));
    assert!(
        p.declined
            .iter()
            .any(|d| d.what == "raise-max" && d.why.contains("budget"))
    );
    // A bigger budget lifts the conflict.
    let p = plan(
        &obs(host((6, 1), GIB, 1_000_000, 1_000_000, 1_000_448)),
        &Policy {
            memory_budget_share: 0.8,
            ..Policy::default()
        },
    )
    .unwrap();
    assert!(proposed(&p, "raise-max").unwrap() >= 1_500_000);
    assert!(!p.has_warning(WarningKind::BudgetConflict));
}

#[test]
fn one_to_one_era_needs_no_resize_at_defaults() {
    // 16 GiB 6.x defaults (262144:262144) have chain 2 at a full table.
    let p = plan(
        &obs(host((6, 8), 16 * GIB, 1000, 262_144, 262_144)),
        &Policy::default(),
    )
    .unwrap();
    assert!(p.action("buckets").is_none(), "{}", render::text(&p));
    // The same numbers on 5.4 with its 1:4 default: chain 8.
    let p = plan(
        &obs(host((5, 4), 16 * GIB, 1000, 262_144, 65_536)),
        &Policy::default(),
    )
    .unwrap();
    let b = p.action("buckets").unwrap();
    assert!(
        b.evidence
            .iter()
            .any(|e| e.text.contains("max/4") && e.text.contains("5.15"))
    );
    assert_eq!(proposed(&p, "buckets"), Some(262_144));
}

#[test]
fn explicit_hashsize_persists_max_too() {
    // A module host: hashsize goes to modprobe.d, and because an explicit
    // hashsize makes the kernel set max = 8 x buckets at load, the sysctl
    // file sets max as well.
    let mut o = obs(host((5, 15), 16 * GIB, 1000, 262_144, 65_536));
    o.module_kind = ModuleKind::Module;
    let p = plan(&o, &Policy::default()).unwrap();
    let m = render::modprobe_d(&p).unwrap().unwrap();
    assert!(m.content.contains("options nf_conntrack hashsize=262144"));
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(
        f.content
            .contains("net.netfilter.nf_conntrack_max = 262144")
    );
    assert!(
        p.action("persist:modprobe")
            .unwrap()
            .evidence
            .iter()
            .any(|e| e.text.contains("8 x buckets = 2,097,152"))
    );
}

#[test]
fn old_kernels_resize_through_the_module_parameter() {
    let p = plan(
        &obs(host((4, 4), 16 * GIB, 1000, 262_144, 16_384)),
        &Policy::default(),
    )
    .unwrap();
    let a = p.action("buckets").unwrap();
    assert!(matches!(
        a.kind,
        ActionKind::SetBuckets {
            via_sysctl: false,
            ..
        }
    ));
    assert_eq!(a.change.as_ref().unwrap().target, HASHSIZE_PARAM_PATH);
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(!f.content.contains(KEY_BUCKETS));
    let sh = render::shell_script(&p).unwrap();
    assert!(sh.contains(HASHSIZE_PARAM_PATH));
}

#[test]
fn non_initial_namespace_says_where_to_apply() {
    let mut s = host((6, 1), 16 * GIB, 250_000, 262_144, 262_144);
    s.init_netns = Some(false);
    let p = plan(&obs(s), &Policy::default()).unwrap();
    let a = p.action("raise-max").unwrap();
    assert_eq!(a.scope, Scope::HostInitNamespace);
    assert!(
        a.effect.text.contains("initial namespace"),
        "{}",
        a.effect.text
    );
}

// ---- NOTRACK ------------------------------------------------------------

fn dns_flow(i: u16, nat: bool, status_nat: bool, zone: Option<u16>) -> Flow {
    let ip = |s: &str| s.parse().unwrap();
    let o = Tuple::new(
        ip("198.51.100.7"),
        ip("192.0.2.53"),
        L4Proto::UDP,
        L4Tuple::Ports {
            src: 1024 + i,
            dst: 53,
        },
    );
    let r = Tuple::new(
        ip(if nat { "10.0.0.53" } else { "192.0.2.53" }),
        ip("198.51.100.7"),
        L4Proto::UDP,
        L4Tuple::Ports {
            src: 53,
            dst: 1024 + i,
        },
    );
    let mut st = Status::CONFIRMED | Status::SEEN_REPLY;
    if status_nat {
        st |= Status::DST_NAT;
    }
    let mut f = Flow::new(o, r, st);
    f.timeout = Some(20);
    f.zone = zone;
    f
}

fn dns_server(flows: &[Flow], policy: &Policy) -> Plan {
    // A DNS server whose table is 90% full of its queries.
    let mut o = obs(host((6, 1), 16 * GIB, 900, 1000, 1024));
    o.flows = Some(FlowSummary::from_owned(flows));
    plan(&o, policy).unwrap()
}

fn no_firewall() -> Policy {
    Policy {
        stateful_firewall: Some(false),
        ..Policy::default()
    }
}

#[test]
fn notrack_proposed_with_what_stops_working() {
    let flows: Vec<Flow> = (0..900).map(|i| dns_flow(i, false, false, None)).collect();
    let p = dns_server(&flows, &no_firewall());
    let a = p.action("notrack:udp/53").expect("notrack");
    let ActionKind::Notrack { stops_working, .. } = &a.kind else {
        panic!()
    };
    assert!(stops_working.iter().any(|s| s.contains("NAT")));
    assert!(stops_working.iter().any(|s| s.contains("established")));
    assert_eq!(a.risk.level, RiskLevel::High);
    let ipt = render::iptables(&p).unwrap();
    assert!(ipt.contains("iptables -t raw -A PREROUTING -p udp --dport 53"));
    assert!(ipt.contains("-A OUTPUT -p udp --sport 53"));
    assert!(ipt.contains("# notrack:udp/53: udp/53 is no longer tracked"));
    let nft = render::nftables(&p).unwrap();
    assert!(nft.contains("udp dport 53 notrack"));
    assert!(nft.contains("priority raw"));
}

#[test]
fn notrack_never_for_nat_by_tuple_or_status() {
    for (tuple_nat, status_nat) in [(true, false), (false, true)] {
        let mut flows: Vec<Flow> = (0..899).map(|i| dns_flow(i, false, false, None)).collect();
        flows.push(dns_flow(999, tuple_nat, status_nat, None));
        let p = dns_server(&flows, &no_firewall());
        assert!(p.action("notrack:udp/53").is_none());
        let d = p
            .declined
            .iter()
            .find(|d| d.what == "notrack udp/53")
            .unwrap();
        assert!(d.why.contains("NAT'd"), "{}", d.why);
    }
}

#[test]
fn notrack_never_with_zones_or_stateful_firewall_or_unknown() {
    let mut flows: Vec<Flow> = (0..899).map(|i| dns_flow(i, false, false, None)).collect();
    flows.push(dns_flow(999, false, false, Some(7)));
    let p = dns_server(&flows, &no_firewall());
    assert!(p.action("notrack:udp/53").is_none());
    assert!(p.declined.iter().any(|d| d.why.contains("zones")));

    let flows: Vec<Flow> = (0..900).map(|i| dns_flow(i, false, false, None)).collect();
    for (policy, why) in [
        (
            Policy {
                stateful_firewall: Some(true),
                ..Policy::default()
            },
            "stateful firewall depends",
        ),
        (Policy::default(), "unknown whether"),
        (
            Policy {
                risk: RiskTolerance::Conservative,
                ..no_firewall()
            },
            "conservative",
        ),
    ] {
        let p = dns_server(&flows, &policy);
        assert!(p.action("notrack:udp/53").is_none());
        assert!(
            p.declined.iter().any(|d| d.why.contains(why)),
            "{why}: {:?}",
            p.declined
        );
    }
}

// ---- timeouts -----------------------------------------------------------

fn tw_summary(total: u64, tw: u64, est_idle: u64) -> FlowSummary {
    let mut s = FlowSummary {
        total,
        ..Default::default()
    };
    s.by_state.insert("TIME_WAIT".into(), tw);
    s.by_state.insert("ESTABLISHED".into(), total - tw);
    let mut h = RemainingHistogram::default();
    for r in 1..=120u32 {
        h.by_secs.insert(r, tw / 120);
    }
    s.remaining.insert("TIME_WAIT".into(), h);
    let mut e = RemainingHistogram::default();
    e.by_secs.insert(431_990, total - tw - est_idle);
    e.by_secs.insert(10_000, est_idle);
    s.remaining.insert("ESTABLISHED".into(), e);
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Timeout proposals never go below their floor (NAT or not, any risk)
    /// and only shorten.
    #[test]
    fn timeouts_respect_floors(
        nat in any::<bool>(),
        risk in prop::sample::select(vec![RiskTolerance::Conservative, RiskTolerance::Moderate, RiskTolerance::Aggressive]),
        tw_share in 0.0f64..1.0,
        idle_share in 0.0f64..0.5,
        tw_now in 20u32..300,
    ) {
        let total = 120_000u64;
        let tw = ((total as f64 * tw_share) as u64 / 120) * 120;
        let idle = ((total - tw) as f64 * idle_share) as u64;
        let mut s = host((6, 1), 16 * GIB, 250_000, 262_144, 262_144);
        s.timeouts.entry("tcp".into()).or_default().insert("time_wait".into(), tw_now);
        let mut o = obs(s);
        o.flows = Some(tw_summary(total, tw, idle));
        let policy = Policy { nat_in_use: Some(nat), risk, ..Policy::default() };
        let p = plan(&o, &policy).unwrap();
        for a in &p.actions {
            if let ActionKind::SetTimeout { key, seconds, floor, floor_reason } = &a.kind {
                prop_assert!(seconds >= floor);
                prop_assert!(!floor_reason.is_empty());
                let cur: u32 = a.change.as_ref().unwrap().current.as_ref().unwrap().parse().unwrap();
                prop_assert!(*seconds < cur);
                if key.ends_with("time_wait") {
                    let want = if nat { 60 } else { 30 };
                    prop_assert_eq!(*floor, want);
                }
            }
        }
    }
}

#[test]
fn time_wait_only_under_pressure_and_justified() {
    // 50% TIME_WAIT at 80% utilisation: shortened, freed from the histogram.
    let mut o = obs(host((6, 1), 16 * GIB, 120_000, 150_000, 300_032));
    o.flows = Some(tw_summary(120_000, 60_000, 0));
    let p = plan(&o, &Policy::default()).unwrap();
    let a = p.action("timeout:tcp_timeout_time_wait").unwrap();
    // 500 entries/s x 30 s = 15,000 remain of 60,000.
    assert_eq!(a.effect.entries_freed, Some(45_000));
    // The same shape seen through a 1-in-10 sample of a 1.2M-entry table.
    let mut o = obs(host((6, 1), 64 * GIB, 1_200_000, 1_500_000, 3_000_064));
    o.flows = Some(tw_summary(120_000, 60_000, 0));
    let p = plan(&o, &Policy::default()).unwrap();
    let a = p.action("timeout:tcp_timeout_time_wait").unwrap();
    assert_eq!(a.effect.entries_freed, Some(450_000));
    assert!(a.evidence.iter().any(|e| e.text.contains("sample")));
    assert!(a.evidence.iter().any(|e| e.text.contains("TIME_WAIT")));
    // Same flows, table at 1%: no pressure, no change.
    let mut o = obs(host((6, 1), 16 * GIB, 2_000, 262_144, 262_144));
    o.flows = Some(tw_summary(120_000, 60_000, 0));
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(p.action("timeout:tcp_timeout_time_wait").is_none());
}

#[test]
fn protected_timeouts_are_left_alone() {
    let mut o = obs(host((6, 1), 16 * GIB, 250_000, 262_144, 262_144));
    o.flows = Some(tw_summary(120_000, 60_000, 40_000));
    let mut policy = Policy::default();
    policy
        .protected_timeouts
        .insert("nf_conntrack_tcp_timeout_time_wait".into());
    policy
        .protected_timeouts
        .insert("net.netfilter.nf_conntrack_tcp_timeout_established".into());
    let p = plan(&o, &policy).unwrap();
    assert!(
        p.actions
            .iter()
            .all(|a| !matches!(a.kind, ActionKind::SetTimeout { .. }))
    );
    assert_eq!(
        p.declined
            .iter()
            .filter(|d| d.why.contains("protected"))
            .count(),
        2
    );
}

#[test]
fn established_change_justified_by_histogram() {
    let mut o = obs(host((6, 1), 16 * GIB, 120_000, 150_000, 300_032));
    o.flows = Some(tw_summary(120_000, 0, 40_000));
    let p = plan(&o, &Policy::default()).unwrap();
    let a = p.action("timeout:tcp_timeout_established").unwrap();
    assert_eq!(a.effect.entries_freed, Some(40_000));
    assert_eq!(a.change.as_ref().unwrap().proposed, "86400");
    // Few idle entries: not worth it.
    o.flows = Some(tw_summary(120_000, 0, 1_000));
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(p.action("timeout:tcp_timeout_established").is_none());
}

// ---- persistence --------------------------------------------------------

fn put(root: &std::path::Path, p: &str, text: &str) {
    let f = root.join(p.trim_start_matches('/'));
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(f, text).unwrap();
}

#[test]
fn persistence_warns_about_overriding_files() {
    let t = tempfile::tempdir().unwrap();
    put(
        t.path(),
        "/usr/lib/sysctl.d/95-vendor.conf",
        "net.netfilter.nf_conntrack_max = 65536\n",
    );
    put(
        t.path(),
        "/usr/lib/sysctl.d/10-early.conf",
        "net.netfilter.nf_conntrack_max = 1\n",
    );
    let mut o = obs(host((6, 1), 16 * GIB, 250_000, 262_144, 262_144));
    o.sysctl_scan = Some(sysctl_d::scan(t.path()));
    let p = plan(&o, &Policy::default()).unwrap();
    let w: Vec<_> = p
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::PersistenceOverridden)
        .collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].text.contains("/usr/lib/sysctl.d/95-vendor.conf:1"));
    // The rendered file carries the warning.
    assert!(
        render::sysctl_d(&p)
            .unwrap()
            .unwrap()
            .content
            .contains("# WARNING: /usr/lib/sysctl.d/95-vendor.conf")
    );
    // A later name wins: no warning; /etc/sysctl.conf always comes last.
    let policy = Policy {
        sysctl_file_name: "99-zz-conntrack.conf".into(),
        ..Policy::default()
    };
    let p = plan(&o, &policy).unwrap();
    assert!(!p.has_warning(WarningKind::PersistenceOverridden));
    put(
        t.path(),
        "/etc/sysctl.conf",
        "net.netfilter.nf_conntrack_max=65536\n",
    );
    o.sysctl_scan = Some(sysctl_d::scan(t.path()));
    let p = plan(&o, &policy).unwrap();
    assert!(
        p.warnings
            .iter()
            .any(|w| w.text.starts_with("/etc/sysctl.conf:1"))
    );
}

#[test]
fn kube_proxy_from_policy() {
    let o = obs(host((6, 1), 16 * GIB, 250_000, 262_144, 65_536));
    let policy = Policy {
        kube_proxy_manages_max: Some(true),
        ..Policy::default()
    };
    let p = plan(&o, &policy).unwrap();
    assert!(p.has_warning(WarningKind::KubeProxyManaged));
    assert!(p.action("persist:kube-proxy").is_some());
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(!f.content.contains("nf_conntrack_max ="), "{}", f.content);
}

// ---- RPS ----------------------------------------------------------------

fn rps_host(queues: u32, cpus: u32, rps_on: bool, balanced: bool) -> Observation {
    let mut s = host((6, 1), 16 * GIB, 1000, 262_144, 262_144);
    s.cpus_online = (0..cpus).collect();
    s.rx_queues = (0..queues)
        .map(|q| RxQueue {
            iface: "eth0".into(),
            queue: q,
            rps_cpus: if rps_on { vec![0, 1] } else { vec![] },
        })
        .collect();
    s.net_rx_softirqs = (0..cpus)
        .map(|c| {
            if balanced || c < queues {
                1_000_000
            } else {
                1_000
            }
        })
        .collect();
    obs(s)
}

#[test]
fn rps_only_on_imbalance_with_rps_off() {
    let p = plan(&rps_host(2, 16, false, false), &Policy::default()).unwrap();
    let a = p.action("rps:eth0").expect("rps");
    let ActionKind::EnableRps { queues, .. } = &a.kind else {
        panic!()
    };
    assert_eq!(queues.len(), 2);
    assert_eq!(queues[0].mask, "5555");
    assert_eq!(queues[1].mask, "aaaa");

    let p = plan(&rps_host(2, 16, true, false), &Policy::default()).unwrap();
    assert!(p.action("rps:eth0").is_none());
    assert!(p.declined.iter().any(|d| d.why.contains("already on")));

    let p = plan(&rps_host(2, 16, false, true), &Policy::default()).unwrap();
    assert!(p.action("rps:eth0").is_none());

    // As many queues as CPUs: RSS already spreads; here 4 busy CPUs of 16
    // but 16 queues.
    let mut o = rps_host(16, 16, false, false);
    if let Some(s) = o.snapshot.as_mut() {
        for (i, v) in s.net_rx_softirqs.iter_mut().enumerate() {
            *v = if i < 4 { 1_000_000 } else { 10 };
        }
    }
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(p.action("rps:eth0").is_none());
    assert!(p.declined.iter().any(|d| d.why.contains("RSS")));
}

#[test]
fn rps_refuses_invalid_interface_names() {
    let mut o = rps_host(2, 16, false, false);
    if let Some(s) = o.snapshot.as_mut() {
        for q in &mut s.rx_queues {
            q.iface = "../../etc".into();
        }
    }
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(p.actions.iter().all(|a| !a.id.starts_with("rps:")));
    assert!(p.declined.iter().any(|d| d.why.contains("dev_valid_name")));
}

// ---- missing parts ------------------------------------------------------

#[test]
fn missing_parts_are_unjudged_not_guessed() {
    let p = plan(&Observation::default(), &Policy::default()).unwrap();
    let topics: Vec<&str> = p.unjudged.iter().map(|u| u.topic.as_str()).collect();
    for t in ["host", "drops", "table sizing", "timeouts", "notrack"] {
        assert!(topics.contains(&t), "{t} missing from {topics:?}");
    }
    assert!(p.actions.is_empty());
    // Kernel unknown: the era is assumed and said.
    let mut s = host((6, 1), 16 * GIB, 1000, 262_144, 262_144);
    s.kernel_version = None;
    let p = plan(&obs(s), &Policy::default()).unwrap();
    assert!(p.unjudged.iter().any(|u| u.topic == "kernel era"));
}

#[test]
fn bad_policy_is_an_error_not_a_panic() {
    for bad in [
        Policy {
            headroom: f64::NAN,
            ..Policy::default()
        },
        Policy {
            memory_budget_share: 0.0,
            ..Policy::default()
        },
        Policy {
            max_chain_length: -1.0,
            ..Policy::default()
        },
        Policy {
            sysctl_file_name: "../x.conf".into(),
            ..Policy::default()
        },
    ] {
        assert!(plan(&Observation::default(), &bad).is_err());
    }
}

#[test]
fn rps_from_per_cpu_drops_when_softirqs_are_missing() {
    let mut o = rps_host(2, 8, false, false);
    if let Some(s) = o.snapshot.as_mut() {
        s.net_rx_softirqs.clear();
    }
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(p.unjudged.iter().any(|u| u.topic == "rps"));
    o.rates = Some(Rates {
        window_secs: 10.0,
        per_cpu: (0..8)
            .map(|c| CpuDelta {
                cpu: c,
                drop: if c < 2 { 50 } else { 0 },
                insert_failed: if c < 2 { 50 } else { 0 },
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    });
    let p = plan(&o, &Policy::default()).unwrap();
    let a = p.action("rps:eth0").expect("rps from drops");
    assert!(a.evidence[0].source.contains("drops per CPU"));
}

// ---- never panic on input -------------------------------------------------

fn extreme_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        any::<u32>()
    ]
}

fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()]
}

fn extreme_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(0.0),
        0.0f64..1e7
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Odd and hostile observations never panic the planner or a renderer.
    #[test]
    fn never_panics(
        (count, max, buckets) in (extreme_u32(), extreme_u32(), extreme_u32()),
        (mem, page) in (extreme_u64(), extreme_u64()),
        (tw, est) in (extreme_u32(), extreme_u32()),
        (total, tw_n, nat) in (extreme_u64(), extreme_u64(), extreme_u64()),
        (rate, window) in (extreme_f64(), extreme_f64()),
        (drop, early, failed) in (extreme_u64(), extreme_u64(), extreme_u64()),
        minor in 0u16..30,
        rem in extreme_u32(),
        iface in "\\PC{0,20}",
        init in any::<Option<bool>>(),
    ) {
        let mut s = HostSnapshot {
            kernel_version: Some(KernelVersion::new(minor / 6 + 2, minor, 0)),
            page_size: Some(page),
            mem_total_bytes: Some(mem),
            cpus_online: (0..(minor as u32 % 5)).collect(),
            count: Some(count),
            max: Some(max),
            buckets: Some(buckets),
            init_netns: init,
            net_rx_softirqs: vec![drop, early, failed],
            rx_queues: vec![RxQueue { iface, queue: rem % 4, rps_cpus: vec![] }],
            helpers: vec!["nf_conntrack_ftp".into()],
            ..Default::default()
        };
        s.timeouts.entry("tcp".into()).or_default().insert("time_wait".into(), tw);
        s.timeouts.entry("tcp".into()).or_default().insert("established".into(), est);
        let mut f = FlowSummary { total, nat, helpers_known: true, ..Default::default() };
        f.by_state.insert("TIME_WAIT".into(), tw_n);
        let mut h = RemainingHistogram::default();
        h.by_secs.insert(rem, tw_n);
        f.remaining.insert("TIME_WAIT".into(), h.clone());
        f.remaining.insert("ESTABLISHED".into(), h);
        f.services.insert("udp/53".into(), conntrack_tune::observe::ServiceStats {
            entries: tw_n, nat, ..Default::default()
        });
        let o = Observation {
            snapshot: Some(s),
            rates: Some(Rates {
                window_secs: window,
                peak_entries: Some(count),
                new_flows_per_sec: Some(rate),
                per_cpu: vec![
                    CpuDelta { cpu: 0, drop, early_drop: early, insert_failed: failed, ..Default::default() },
                    CpuDelta { cpu: 1, ..Default::default() },
                ],
                net_rx_per_cpu: vec![],
            }),
            flows: Some(f),
            ..Default::default()
        };
        for risk in [RiskTolerance::Conservative, RiskTolerance::Aggressive] {
            let policy = Policy { risk, stateful_firewall: Some(false), ..Policy::default() };
            let p = plan(&o, &policy).unwrap();
            let _ = render::text(&p);
            let _ = render::markdown(&p);
            let _ = render::json(&p).unwrap();
            let _ = render::shell_script(&p);
            let _ = render::sysctl_d(&p);
            let _ = render::modprobe_d(&p);
            let _ = render::iptables(&p);
            let _ = render::nftables(&p);
        }
    }
}

#[cfg(unix)]
#[test]
fn masked_plan_file_is_warned_about() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("etc/sysctl.d")).unwrap();
    std::os::unix::fs::symlink(
        "/dev/null",
        t.path().join("etc/sysctl.d/90-conntrack-kit.conf"),
    )
    .unwrap();
    let mut o = obs(host((6, 1), 16 * GIB, 250_000, 262_144, 262_144));
    o.sysctl_scan = Some(sysctl_d::scan(t.path()));
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(
        p.warnings.iter().any(|w| w.text.contains("masked")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn clash_on_old_kernels_points_at_the_kernel_fix() {
    let mut o = obs(host((5, 4), 16 * GIB, 10_000, 262_144, 262_144));
    o.rates = Some(Rates {
        window_secs: 60.0,
        per_cpu: vec![CpuDelta {
            cpu: 0,
            drop: 100,
            insert_failed: 100,
            ..Default::default()
        }],
        ..Default::default()
    });
    let p = plan(&o, &Policy::default()).unwrap();
    let a = p.action("advice:dns-clash").unwrap();
    assert!(a.effect.text.contains("6a757c07e51f"), "{}", a.effect.text);
    o.snapshot.as_mut().unwrap().kernel_version = Some(KernelVersion::new(6, 1, 0));
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(
        !p.action("advice:dns-clash")
            .unwrap()
            .effect
            .text
            .contains("6a757c07e51f")
    );
}

#[test]
fn current_config_over_budget_is_warned_not_lowered() {
    // 2 GiB host with max 4M: 1.5 GiB worst case, budget 100 MiB.
    let p = plan(
        &obs(host((6, 1), 2 * GIB, 1000, 4_194_304, 4_194_304)),
        &Policy::default(),
    )
    .unwrap();
    assert!(p.has_warning(WarningKind::OverBudget), "{:?}", p.warnings);
    assert!(p.action("raise-max").is_none());
    assert!(
        p.actions
            .iter()
            .all(|a| !matches!(&a.kind, ActionKind::SetSysctl { key, .. } if key == KEY_MAX))
    );
}

#[test]
fn kube_proxy_without_cpu_count_uses_min() {
    let mut s = host((6, 1), 16 * GIB, 250_000, 262_144, 65_536);
    s.cpus_online.clear();
    let policy = Policy {
        kube_proxy_manages_max: Some(true),
        ..Policy::default()
    };
    let p = plan(&obs(s), &policy).unwrap();
    let a = p.action("persist:kube-proxy").unwrap();
    let c = a.change.as_ref().unwrap();
    assert_eq!(c.target, "kube-proxy conntrack.min");
    assert_eq!(c.proposed, proposed(&p, "raise-max").unwrap().to_string());
    let w = p
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::KubeProxyManaged)
        .unwrap();
    assert!(!w.text.contains("on 0 CPUs") && !w.text.contains("on 1 CPUs"));
}

#[test]
fn udp_timeout_for_dns_heavy_tables() {
    // A resolver host, table 90% full of DNS entries spread over udp_timeout.
    let flows: Vec<Flow> = (0..900u16)
        .map(|i| {
            let mut f = dns_flow(i, false, false, None);
            f.timeout = Some(1 + (i as u32 % 30));
            f
        })
        .collect();
    let mut o = obs(host((6, 1), 16 * GIB, 900, 1000, 1024));
    o.flows = Some(FlowSummary::from_owned(&flows));
    let p = plan(&o, &Policy::default()).unwrap();
    let a = p.action("timeout:udp_timeout").expect("udp timeout");
    let ActionKind::SetTimeout { seconds, floor, .. } = &a.kind else {
        panic!()
    };
    assert_eq!((*seconds, *floor), (10, 10));
    // 30 entries/s x 10 s = 300 remain of 900.
    assert_eq!(a.effect.entries_freed, Some(600));
}
