//! Live test: the rendered script against the real kernel, in a fresh
//! network namespace. Only per-namespace actions (timeouts) are rendered,
//! so no global sysctl is touched; the test checks that the initial
//! namespace's value did not change. Skips (printing why) when not root or
//! when `ip` is missing, unless `CONNTRACK_KIT_REQUIRE_LIVE=1`, which makes
//! that a failure.

use conntrack_analyze::hotspots::Hotspots;
use conntrack_analyze::{Facts, Observation, diagnose};
use conntrack_core::testkit::{Need, TestNetns, live};
use conntrack_core::{
    Flow, HostSnapshot, KernelVersion, L4Proto, L4Tuple, ProtoInfo, Status, TcpInfo, TcpState,
    Tuple,
};
use conntrack_tune::plan::{Plan, Scope, sysctl_path};
use conntrack_tune::{Policy, plan, render};

/// Diagnoses and plans an observation.
fn plan_of(obs: &Observation, policy: &Policy) -> Plan {
    let facts = Facts::derive(obs);
    plan(&facts, &diagnose(&facts), policy).unwrap()
}

/// A TCP flow from 10.0.x.y:port to 192.0.2.80:80 in a state.
fn tcp(i: u32, st: TcpState, timeout: u32) -> Flow {
    let ip = |s: String| s.parse().unwrap();
    let (a, b) = (
        ip(format!("10.0.{}.{}", i / 250, i % 250 + 1)),
        ip("192.0.2.80".into()),
    );
    let port = (1024 + i % 60_000) as u16;
    let mut f = Flow::new(
        Tuple::new(a, b, L4Proto::TCP, L4Tuple::Ports { src: port, dst: 80 }),
        Tuple::new(b, a, L4Proto::TCP, L4Tuple::Ports { src: 80, dst: port }),
        Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
    );
    f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo::new(st)));
    f.timeout = Some(timeout);
    f
}

const KEY: &str = "net.netfilter.nf_conntrack_tcp_timeout_time_wait";

/// `path` read inside the namespace, trimmed.
fn read(ns: &TestNetns, path: &str) -> String {
    let o = ns.exec(&["cat", path]);
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn script_applies_timeouts_in_a_fresh_namespace() {
    let path = sysctl_path(KEY);
    if !live(
        "script_applies_timeouts_in_a_fresh_namespace",
        &[Need::Root, Need::Path(&path), Need::Tool("ip")],
    ) {
        return;
    }
    let host_before = std::fs::read_to_string(&path).unwrap();
    let ns = TestNetns::new("tune");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let version: KernelVersion = release.trim().parse().unwrap();
    let tw_now: u32 = read(&ns, &path).parse().unwrap();
    let max: u32 = read(&ns, &sysctl_path("net.netfilter.nf_conntrack_max"))
        .parse()
        .unwrap();
    let buckets: u32 = read(&ns, &sysctl_path("net.netfilter.nf_conntrack_buckets"))
        .parse()
        .unwrap();

    // A namespace whose table is 90% full, half of it TIME_WAIT entering
    // at a steady rate: the plan shortens TIME_WAIT in this namespace.
    let mut snap = HostSnapshot::default()
        .with_kernel_release(release.trim().to_string())
        .with_kernel_version(version)
        .with_page_size(4096)
        .with_count((max as u64 * 9 / 10) as u32)
        .with_max(max)
        .with_buckets(buckets)
        .with_init_netns(false);
    snap.timeouts
        .entry("tcp".into())
        .or_default()
        .insert("time_wait".into(), tw_now);
    // 12,000 TIME_WAIT entries entering at a steady rate, 12,000
    // ESTABLISHED and active.
    let mut h = Hotspots::exact();
    for i in 0..12_000u32 {
        h.add(&tcp(i, TcpState::TIME_WAIT, 1 + i % tw_now.max(1)));
        h.add(&tcp(12_000 + i, TcpState::ESTABLISHED, 431_990));
    }
    let obs = Observation::new(snap).with_hotspots(h.summary());
    let full = plan_of(&obs, &Policy::default());
    assert!(
        full.action("timeout:tcp_timeout_time_wait").is_some(),
        "{}",
        render::text(&full)
    );
    // Keep only what belongs to this namespace: never write globals here.
    let p = full.only(&[Scope::ObservedNamespace]);
    assert!(!p.actions.is_empty());
    let script = render::shell_script(&p).unwrap();
    assert!(!script.contains("nf_conntrack_max"));
    assert!(!script.contains("nf_conntrack_buckets"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &script).unwrap();
    let script_path = file.path().to_str().unwrap();

    let o = ns.command("sh").arg(script_path).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains(&format!("before: {path} = {tw_now}")), "{out}");
    assert!(out.contains("verify ok"), "{out}");
    assert_eq!(read(&ns, &path), "30");

    // Idempotent.
    let o = ns.command("sh").arg(script_path).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("already:"), "{out}");
    assert!(!out.contains("after:"), "{out}");

    // The initial namespace was not touched.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), host_before);
}

/// The nftables rendering loads into a real kernel (in a fresh namespace,
/// so the host's ruleset is untouched) and the rules carry `notrack`.
#[test]
fn nftables_rules_load_in_a_fresh_namespace() {
    if !live(
        "nftables_rules_load_in_a_fresh_namespace",
        &[Need::Root, Need::Tool("nft"), Need::Tool("ip")],
    ) {
        return;
    }
    let ip = |s: &str| s.parse().unwrap();
    let flows: Vec<Flow> = (0..900u16)
        .map(|i| {
            let o = Tuple::new(
                ip("198.51.100.7"),
                ip("192.0.2.53"),
                L4Proto::UDP,
                L4Tuple::Ports {
                    src: 2000 + i,
                    dst: 53,
                },
            );
            let r = Tuple::new(
                ip("192.0.2.53"),
                ip("198.51.100.7"),
                L4Proto::UDP,
                L4Tuple::Ports {
                    src: 53,
                    dst: 2000 + i,
                },
            );
            Flow::new(o, r, Status::CONFIRMED | Status::SEEN_REPLY)
        })
        .collect();
    let snap = HostSnapshot::default()
        .with_kernel_version(KernelVersion::new(6, 1, 0))
        .with_count(900)
        .with_max(1000)
        .with_buckets(1024);
    let mut h = Hotspots::exact();
    h.extend(&flows);
    let obs = Observation::new(snap).with_hotspots(h.summary());
    let policy = {
        let mut policy = Policy::default();
        policy.stateful_firewall = Some(false);
        policy
    };
    let p = plan_of(&obs, &policy);
    assert!(p.action("notrack:udp/53").is_some(), "{}", render::text(&p));
    let rules = render::nftables(&p).unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &rules).unwrap();
    let ns = TestNetns::new("tune-nft");
    let f = file.path().to_str().unwrap();
    let o = ns.command("nft").args(["-c", "-f", f]).output().unwrap();
    assert!(
        o.status.success(),
        "nft -c: {}\n{rules}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = ns.command("nft").args(["-f", f]).output().unwrap();
    assert!(
        o.status.success(),
        "nft -f: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = ns
        .command("nft")
        .args(["list", "table", "inet", "conntrack_kit_notrack"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(listed.contains("udp dport 53 notrack"), "{listed}");
    assert!(listed.contains("udp sport 53 notrack"), "{listed}");
}
