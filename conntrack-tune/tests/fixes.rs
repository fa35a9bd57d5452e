//! Consistency of the plan with the diagnosis and with the host: RPS on
//! small CPU counts and the `cpu-imbalance` finding, built-in helpers, and
//! per-namespace values of a non-initial namespace.

use conntrack_core::{HostSnapshot, KernelVersion, RxQueue};
use conntrack_tune::observe::{FlowSummary, RemainingHistogram};
use conntrack_tune::plan::*;
use conntrack_tune::{Cause, Finding, ModuleKind, Observation, Policy, plan, render};

const GIB: u64 = 1 << 30;

fn host(cpus: u32) -> HostSnapshot {
    HostSnapshot {
        kernel_version: Some(KernelVersion::new(5, 15, 0)),
        page_size: Some(4096),
        mem_total_bytes: Some(16 * GIB),
        cpus_online: (0..cpus).collect(),
        count: Some(1000),
        max: Some(262_144),
        buckets: Some(262_144),
        init_netns: Some(true),
        ..Default::default()
    }
}

fn cpu_imbalance_finding() -> Finding {
    Finding {
        id: "cpu-imbalance".into(),
        cause: Cause::CpuImbalance,
        text: "insert_failed concentrated on cpu 0 with RPS off: One CPU takes most".into(),
        numbers: vec![("max / mean".into(), 1.92)],
    }
}

/// The bundled sample's shape: 2 CPUs, eth0 with one rx queue, docker0 and
/// a veth, RPS off, 99.45% of NET_RX on CPU 0.
fn two_cpu_docker_host(softirqs: Vec<u64>) -> Observation {
    let mut s = host(2);
    s.rx_queues = ["docker0", "eth0", "veth91c4d7e"]
        .into_iter()
        .map(|i| RxQueue {
            iface: i.into(),
            queue: 0,
            rps_cpus: vec![],
        })
        .collect();
    s.net_rx_softirqs = softirqs;
    Observation {
        snapshot: Some(s),
        findings: vec![cpu_imbalance_finding()],
        ..Default::default()
    }
}

#[test]
fn rps_on_two_cpus_with_one_busy() {
    let p = plan(
        &two_cpu_docker_host(vec![381_220_117, 2_104_466]),
        &Policy::default(),
    )
    .unwrap();
    let a = p
        .action("rps:eth0")
        .unwrap_or_else(|| panic!("{}", render::text(&p)));
    let ActionKind::EnableRps { queues, .. } = &a.kind else {
        panic!()
    };
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0].mask, "3");
    assert!(
        a.evidence[0].text.contains("CPU 0 takes 99.5%"),
        "{:?}",
        a.evidence
    );
    assert!(a.evidence[0].text.contains("fair share 50.0%"));
    assert!(
        a.evidence
            .iter()
            .any(|e| e.source == "finding:cpu-imbalance")
    );
    // Virtual interfaces get none.
    assert!(p.action("rps:docker0").is_none());
    assert!(p.action("rps:veth91c4d7e").is_none());
    assert!(
        !p.declined
            .iter()
            .any(|d| d.what == "rps" && d.why.contains("spread")),
        "{:?}",
        p.declined
    );
}

#[test]
fn rps_on_two_cpus_sixty_forty_is_spread() {
    let mut o = two_cpu_docker_host(vec![600, 400]);
    o.findings.clear();
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(p.actions_with_prefix("rps:").next().is_none());
    let d = p.declined.iter().find(|d| d.what == "rps").unwrap();
    assert!(d.why.contains("60.0%"), "{}", d.why);
    assert!(d.why.contains("fair share 50.0%"), "{}", d.why);
}

#[test]
fn cpu_imbalance_finding_is_answered_when_rps_is_not_proposed() {
    // Spread softirqs although analyze saw failures on one CPU: say so.
    let p = plan(&two_cpu_docker_host(vec![600, 400]), &Policy::default()).unwrap();
    assert!(p.actions_with_prefix("rps:").next().is_none());
    let d = p.declined.iter().find(|d| d.what == "rps").unwrap();
    assert!(d.why.contains("cpu-imbalance"), "{}", d.why);
    assert!(d.why.contains("already spread"), "{}", d.why);

    // Only virtual interfaces known.
    let mut o = two_cpu_docker_host(vec![381_220_117, 2_104_466]);
    if let Some(s) = o.snapshot.as_mut() {
        s.rx_queues.retain(|q| q.iface != "eth0");
    }
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(p.actions_with_prefix("rps:").next().is_none());
    let d = p.declined.iter().find(|d| d.what == "rps").unwrap();
    assert!(d.why.contains("cpu-imbalance"), "{}", d.why);
    assert!(
        d.why.contains("virtual (docker0, veth91c4d7e)"),
        "{}",
        d.why
    );

    // No rx queue known at all.
    if let Some(s) = o.snapshot.as_mut() {
        s.rx_queues.clear();
    }
    let p = plan(&o, &Policy::default()).unwrap();
    let d = p.declined.iter().find(|d| d.what == "rps").unwrap();
    assert!(d.why.contains("no rx queue"), "{}", d.why);
    // Without the finding the same gap is only "could not judge".
    o.findings.clear();
    let p = plan(&o, &Policy::default()).unwrap();
    assert!(p.declined.iter().all(|d| d.what != "rps"));
    assert!(p.unjudged.iter().any(|u| u.topic == "rps"));
}

// ---- helpers ----------------------------------------------------------------

fn helper_obs(kind: ModuleKind, helpers: &[&str], used: &[&str]) -> Observation {
    let mut s = host(4);
    s.helpers = helpers.iter().map(|h| h.to_string()).collect();
    let mut f = FlowSummary {
        total: 500,
        helpers_known: true,
        ..Default::default()
    };
    for u in used {
        f.helpers.insert(u.to_string(), 3);
    }
    Observation {
        snapshot: Some(s),
        flows: Some(f),
        helper_kinds: helpers.iter().map(|h| (h.to_string(), kind)).collect(),
        ..Default::default()
    }
}

const NINE: [&str; 9] = [
    "nf_conntrack_amanda",
    "nf_conntrack_ftp",
    "nf_conntrack_h323",
    "nf_conntrack_irc",
    "nf_conntrack_netbios_ns",
    "nf_conntrack_sane",
    "nf_conntrack_sip",
    "nf_conntrack_snmp",
    "nf_conntrack_tftp",
];

#[test]
fn built_in_helpers_are_never_unloaded() {
    // This host: CONFIG_MODULES=n, nine helpers built in.
    let p = plan(
        &helper_obs(ModuleKind::BuiltIn, &NINE, &[]),
        &Policy::default(),
    )
    .unwrap();
    assert!(
        p.actions
            .iter()
            .all(|a| !matches!(a.kind, ActionKind::UnloadHelpers { .. })),
        "{}",
        render::text(&p)
    );
    let d: Vec<&Declined> = p
        .declined
        .iter()
        .filter(|d| d.what.contains("helpers"))
        .collect();
    assert_eq!(d.len(), 1, "{:?}", p.declined);
    assert!(d[0].why.contains("cannot be unloaded"));
    assert!(d[0].why.contains("3bb398d925ec"));
    assert!(d[0].why.contains("nf_conntrack_tftp"));
    // The shell script has no modprobe for them either.
    let script = render::shell_script(&p).unwrap();
    assert!(!script.contains("modprobe"), "{script}");
}

#[test]
fn loadable_helpers_are_grouped_in_one_action() {
    let p = plan(
        &helper_obs(ModuleKind::Module, &NINE, &["ftp"]),
        &Policy::default(),
    )
    .unwrap();
    let unloads: Vec<&Action> = p
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::UnloadHelpers { .. }))
        .collect();
    assert_eq!(unloads.len(), 1, "{}", render::text(&p));
    let ActionKind::UnloadHelpers { modules } = &unloads[0].kind else {
        panic!()
    };
    assert_eq!(modules.len(), 8);
    assert!(
        !modules.iter().any(|m| m == "nf_conntrack_ftp"),
        "ftp is used"
    );
    assert_eq!(unloads[0].priority, Priority::P3);
    assert!(
        unloads[0]
            .rollback
            .starts_with("modprobe -a nf_conntrack_amanda")
    );
    assert!(p.declined.iter().all(|d| !d.what.contains("helpers")));
}

#[test]
fn mixed_helpers() {
    let mut o = helper_obs(
        ModuleKind::Module,
        &["nf_conntrack_ftp", "nf_conntrack_sip"],
        &[],
    );
    o.helper_kinds
        .insert("nf_conntrack_sip".into(), ModuleKind::BuiltIn);
    let p = plan(&o, &Policy::default()).unwrap();
    let a = p.action("unload-helpers").unwrap();
    assert_eq!(
        a.kind,
        ActionKind::UnloadHelpers {
            modules: vec!["nf_conntrack_ftp".into()]
        }
    );
    assert!(p.declined.iter().any(|d| {
        d.why
            .starts_with("nf_conntrack_sip is built into the kernel")
    }));
    // Unknown kinds are proposed with the caveat.
    o.helper_kinds.clear();
    let p = plan(&o, &Policy::default()).unwrap();
    let a = p.action("unload-helpers").unwrap();
    assert!(a.evidence.iter().any(|e| e.text.contains("is builtin")));
}

// ---- non-initial namespace ------------------------------------------------

/// A namespace whose table is 90% full, half TIME_WAIT, with peak over max:
/// the plan raises max (global) and shortens TIME_WAIT (per namespace).
fn netns_obs(init: Option<bool>) -> Observation {
    let mut s = host(4);
    s.count = Some(240_000);
    s.max = Some(200_000);
    s.buckets = Some(65_536);
    s.init_netns = init;
    let mut flows = FlowSummary {
        total: 240_000,
        ..Default::default()
    };
    flows.by_state.insert("TIME_WAIT".into(), 120_000);
    let mut h = RemainingHistogram::default();
    for r in 1..=120u32 {
        h.by_secs.insert(r, 1000);
    }
    flows.remaining.insert("TIME_WAIT".into(), h);
    Observation {
        snapshot: Some(s),
        flows: Some(flows),
        ..Default::default()
    }
}

const TW: &str = "net.netfilter.nf_conntrack_tcp_timeout_time_wait";

#[test]
fn namespace_values_are_not_persisted_in_the_hosts_sysctl_d() {
    let p = plan(&netns_obs(Some(false)), &Policy::default()).unwrap();
    assert!(p.action("raise-max").is_some(), "{}", render::text(&p));
    let t = p.action("timeout:tcp_timeout_time_wait").unwrap();
    assert!(t.effect.text.contains("inside the observed namespace"));
    // The host file carries only the global values.
    let ActionKind::PersistSysctl { entries, .. } = &p.action("persist:sysctl").unwrap().kind
    else {
        panic!()
    };
    assert!(
        entries.iter().all(|(k, _)| is_global_sysctl(k)),
        "{entries:?}"
    );
    assert!(entries.iter().any(|(k, _)| k == KEY_MAX));
    // The per-namespace value is advice on where to set it.
    let a = p.action("persist:netns").unwrap();
    assert_eq!(
        a.kind,
        ActionKind::Advice {
            topic: AdviceTopic::NamespaceSysctls
        }
    );
    assert_eq!(a.scope, Scope::ObservedNamespace);
    for s in [
        "ip netns exec NAME",
        "--sysctl net.netfilter.nf_conntrack_tcp_timeout_time_wait=30",
        "securityContext.sysctls",
    ] {
        assert!(a.effect.text.contains(s), "{s}: {}", a.effect.text);
    }
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(!f.content.contains(&format!("\n{TW} =")), "{}", f.content);
    assert!(f.content.contains("For the HOST"), "{}", f.content);

    // The script writes the namespace's value, nothing global, no host file.
    let script = render::shell_script(&p).unwrap();
    assert!(script.contains("NON-INITIAL network namespace"));
    assert!(
        script.contains("apply 'timeout:tcp_timeout_time_wait'"),
        "{script}"
    );
    assert!(!script.contains("install_file '"), "{script}");
    assert!(!script.contains("apply 'raise-max'"), "{script}");
    assert!(!script.contains("verify 'raise-max'"), "{script}");
    assert!(script.contains("on the host: sysctl -w net.netfilter.nf_conntrack_max="));
}

#[test]
fn initial_namespace_still_persists_everything_in_sysctl_d() {
    for init in [Some(true), None] {
        let p = plan(&netns_obs(init), &Policy::default()).unwrap();
        assert!(p.action("persist:netns").is_none());
        let f = render::sysctl_d(&p).unwrap().unwrap();
        assert!(
            f.content.contains(&format!("\n{TW} = 30\n")),
            "{}",
            f.content
        );
        let script = render::shell_script(&p).unwrap();
        assert!(script.contains("install_file 'persist:sysctl'"));
        assert!(script.contains("apply 'raise-max'"));
    }
}

#[test]
fn hand_built_namespace_plan_keeps_namespace_keys_out_of_the_host_file() {
    let mut p = plan(&netns_obs(Some(true)), &Policy::default()).unwrap();
    p.context.init_netns = Some(false);
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(!f.content.contains(&format!("\n{TW} =")), "{}", f.content);
    assert!(f.content.contains("# not set here:"), "{}", f.content);
}
