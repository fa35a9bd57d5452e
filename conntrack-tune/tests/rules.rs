//! One test (or property) per planner rule, through the whole pipeline:
//! an [`Observation`] is turned into [`Facts`], diagnosed, and planned.
//! Every plan made here must answer every remedy its findings recommend
//! ([`Plan::unanswered`] is empty).

use conntrack_analyze::capacity::{allocation_unit, mean_chain_length};
use conntrack_analyze::hotspots::{HotspotSummary, Hotspots};
use conntrack_analyze::rates::{Rates, Sample};
use conntrack_analyze::{Facts, Finding, FindingId, Observation, Remedy, diagnose};
use conntrack_core::host::{HostFs, KubeProxy, ModuleKind};
use conntrack_core::{
    Counter, CpuStats, Flow, HostSnapshot, KernelVersion, L4Proto, L4Tuple, ProtoInfo, RxQueue,
    Stats, Status, TcpInfo, TcpState, TimeoutKey, Tuple,
};
use conntrack_tune::folk::{Recipe, Verdict};
use conntrack_tune::plan::*;
use conntrack_tune::report::{Origin, Report};
use conntrack_tune::{Policy, PolicyError, RiskTolerance, plan, render};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const GIB: u64 = 1 << 30;

fn host(v: (u16, u16), mem: u64, count: u32, max: u32, buckets: u32) -> HostSnapshot {
    HostSnapshot::default()
        .with_kernel_version(KernelVersion::new(v.0, v.1, 0))
        .with_page_size(4096)
        .with_mem_total_bytes(mem)
        .with_cpus_online((0..4).collect())
        .with_count(count)
        .with_max(max)
        .with_buckets(buckets)
        .with_init_netns(true)
}

fn obs(s: HostSnapshot) -> Observation {
    Observation::new(s)
}

/// Diagnoses and plans; every finding remedy must be acted on or declined.
fn run(o: &Observation, policy: &Policy) -> (Vec<Finding>, Plan) {
    let facts = Facts::derive(o);
    let findings = diagnose(&facts);
    let p = plan(&facts, &findings, policy).unwrap();
    let missing = p.unanswered(&findings);
    assert!(
        missing.is_empty(),
        "unanswered {missing:?}\n{}",
        render::text(&p)
    );
    (findings, p)
}

fn plan_of(o: &Observation, policy: &Policy) -> Plan {
    run(o, policy).1
}

/// The proposed value of an action, as a number.
fn proposed(p: &Plan, id: &str) -> Option<u64> {
    p.action(id)
        .and_then(|a| a.change.as_ref())
        .map(|c| match &c.proposed {
            Value::Count(n) => *n,
            Value::Seconds(s) => u64::from(*s),
            other => panic!("{id}: not a number: {other:?}"),
        })
}

/// The current value of an action's change, as a number.
fn current(a: &Action) -> u64 {
    match a.change.as_ref().and_then(|c| c.current.as_ref()) {
        Some(Value::Count(n)) => *n,
        Some(Value::Seconds(s)) => u64::from(*s),
        other => panic!("{}: no numeric current value: {other:?}", a.id),
    }
}

/// Rates over one window of `secs`: every counter starts at 0 and ends at
/// the value given for its CPU (CPU ids are the positions).
fn rates_over(secs: u64, entries: Option<u32>, per_cpu: &[Vec<(Counter, u32)>]) -> Rates {
    let sample = |at: u64, end: bool| Sample {
        at: Duration::from_secs(at),
        stats: {
            let mut stats = Stats::new(
                per_cpu
                    .iter()
                    .enumerate()
                    .map(|(i, cs)| {
                        let mut c = CpuStats::for_cpu(i as u32);
                        for &(k, v) in cs {
                            c.set(k, if end { v } else { 0 });
                        }
                        c
                    })
                    .collect(),
            );
            stats.entries = entries;
            stats
        },
    };
    Rates::from_samples(&[sample(0, false), sample(secs, true)])
}

// ---- sizing -------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Never a max below the demand x headroom (the demand is at least the
    /// peak, and more when a full table refused flows); buckets rounded to
    /// the allocation unit and within the chain target; raises stay within
    /// the budget, or the conflict is said.
    #[test]
    fn sizing_invariants(
        peak in 1u32..20_000_000,
        max in 0u32..20_000_000,
        buckets in 1u32..20_000_000,
        mem_gib in 1u64..512,
        headroom in 1.0f64..4.0,
        target in 0.5f64..8.0,
        minor in prop::sample::select(vec![(3u16, 10u16), (4, 19), (5, 10), (5, 15), (6, 18)]),
        drops in 0u32..1000,
    ) {
        let s = host(minor, mem_gib * GIB, peak, max, buckets);
        let o = obs(s).with_rates(rates_over(
            60,
            Some(peak),
            &[vec![
                (Counter::Drop, drops),
                (Counter::EarlyDrop, drops / 2),
                (Counter::InsertFailed, 0),
            ]],
        ));
        let policy = {
            let mut policy = Policy::default();
            policy.headroom = headroom;
            policy.max_chain_length = target;
            policy
        };
        let (_, p) = run(&o, &policy);
        let facts = Facts::derive(&o);
        let demand = facts
            .demand
            .as_ref()
            .map_or(u64::from(peak), |d| d.entries.max(u64::from(peak)));
        prop_assert!(demand >= u64::from(peak));
        let required = (demand as f64 * headroom).ceil() as u64;
        let budget = ((mem_gib * GIB) as f64 * policy.memory_budget_share) as u64;
        let final_max = proposed(&p, "raise-max").unwrap_or(u64::from(max));
        if let Some(m) = proposed(&p, "raise-max") {
            prop_assert!(m >= required, "{m} < {required}");
            prop_assert!(m > u64::from(max));
            let after = p.action("raise-max").unwrap().effect.memory_after_bytes.unwrap();
            prop_assert!(after <= budget, "{after} > {budget}\n{}", render::text(&p));
        } else if max != 0 && u64::from(max) < required {
            prop_assert!(p.has_warning(WarningKind::BudgetConflict), "{}", render::text(&p));
        }
        if let Some(b) = proposed(&p, "buckets") {
            prop_assert!(b.is_multiple_of(allocation_unit(4096)));
            prop_assert!(mean_chain_length(final_max, b).unwrap() <= target);
            prop_assert!(b > u64::from(buckets));
        }
        prop_assert!(p.actions.windows(2).all(|w| w[0].priority <= w[1].priority));
    }
}

#[test]
fn budget_and_headroom_conflict_is_said() {
    // 1 GiB at 5%: ~53 MB holds ~130k entries; the peak needs 1.5M.
    let o = obs(host((6, 1), GIB, 1_000_000, 1_000_000, 1_000_448));
    let p = plan_of(&o, &Policy::default());
    assert!(p.action("raise-max").is_none());
    assert!(p.has_warning(WarningKind::BudgetConflict));
    assert!(
        p.declined.iter().any(|d| d.what == "raise-max"
            && d.remedy == Some(Remedy::RaiseMax)
            && d.why.contains("budget")),
        "{:?}",
        p.declined
    );
    // The table is at max and no window measured the refusals: the peak
    // is censored, and the plan says so.
    assert!(p.has_warning(WarningKind::PeakCensored));
    // A bigger budget lifts the conflict.
    let p = plan_of(&o, &{
        let mut policy = Policy::default();
        policy.memory_budget_share = 0.8;
        policy
    });
    assert!(proposed(&p, "raise-max").unwrap() >= 1_500_000);
    assert!(!p.has_warning(WarningKind::BudgetConflict));
}

#[test]
fn raise_within_budget_keeps_allocated_buckets() {
    // A 1 GiB 5.4 host booted with nf_conntrack.hashsize=262144 and max
    // lowered to 200, full. The kernel's max for those buckets (8 x
    // 262,144) does not fit the 51.2 MiB budget, so sizing falls back to
    // the largest max that fits (MemoryModel::max_within, 134,082),
    // computed as if the buckets were sized for it (134,144); but the
    // 262,144 buckets stay: 53.1 MiB worst case, over the budget, and no
    // warning says so.
    let o = obs(host((5, 4), GIB, 200, 200, 262_144));
    let p = plan_of(&o, &Policy::default());
    let budget = (GIB as f64 * Policy::default().memory_budget_share) as u64;
    match p.action("raise-max") {
        Some(a) => {
            let after = a.effect.memory_after_bytes.unwrap();
            assert!(
                after <= budget || p.has_warning(WarningKind::BudgetConflict),
                "{after} > {budget} unsaid\n{}",
                render::text(&p)
            );
        }
        None => assert!(p.has_warning(WarningKind::BudgetConflict)),
    }
}

#[test]
fn kernel_pairing_floor_needs_no_new_buckets() {
    // 16 GiB, 6.1, max = buckets = 65,536 (not the 262,144 default: set by
    // hand), table full, no window. Demand x headroom is 98,304. Sizing
    // floors the raise at the max "the kernel itself pairs with the
    // buckets already allocated: the buckets are paid for", here 8 x
    // 65,536 = 524,288 (the load-time pairing of an explicit hashsize,
    // chain 16 at a full table), and then resizes the buckets to 524,288
    // for the chain target: the floor is justified by buckets the same
    // plan replaces, and max ends 5.3x above the demand x headroom.
    let o = obs(host((6, 1), 16 * GIB, 65_536, 65_536, 65_536));
    let p = plan_of(&o, &Policy::default());
    let max = proposed(&p, "raise-max").unwrap();
    assert!(max >= 98_304);
    if max > 98_304 {
        assert!(
            p.action("buckets").is_none(),
            "max {max} above demand x headroom for buckets already allocated, yet resized\n{}",
            render::text(&p)
        );
    }
}

#[test]
fn one_to_one_era_needs_no_resize_at_defaults() {
    // 16 GiB 6.x defaults (262144:262144) have chain 2 at a full table.
    let p = plan_of(
        &obs(host((6, 8), 16 * GIB, 1000, 262_144, 262_144)),
        &Policy::default(),
    );
    assert!(p.action("buckets").is_none(), "{}", render::text(&p));
    assert!(p.declined.iter().all(|d| d.what != "buckets"));

    // The same numbers on 5.4 with its 1:4 default: chain 8 at a full
    // table. Changed on purpose: with the table at 0.4% of max and no
    // chain evidence, the chain only reaches 8 at a table 262x the peak,
    // so the resize is declined with the reason instead of proposed.
    let p = plan_of(
        &obs(host((5, 4), 16 * GIB, 1000, 262_144, 65_536)),
        &Policy::default(),
    );
    assert!(p.action("buckets").is_none(), "{}", render::text(&p));
    let d = p.declined.iter().find(|d| d.what == "buckets").unwrap();
    assert!(d.why.contains("not worth it"), "{}", d.why);
    assert_eq!(d.remedy, None, "no finding asked for it");

    // A table that can plausibly grow toward max (38% of it): the hygiene
    // resize, explained by the pre-5.15 ratio.
    let p = plan_of(
        &obs(host((5, 4), 16 * GIB, 100_000, 262_144, 65_536)),
        &Policy::default(),
    );
    let b = p.action("buckets").unwrap();
    assert_eq!(b.priority, Priority::P3);
    assert!(
        b.evidence
            .iter()
            .any(|e| e.text.contains("max/4") && e.text.contains("5.15")),
        "{:?}",
        b.evidence
    );
    assert_eq!(proposed(&p, "buckets"), Some(262_144));
}

#[test]
fn explicit_hashsize_persists_max_too() {
    // A module host: hashsize goes to modprobe.d, and because an explicit
    // hashsize makes the kernel set max = 8 x buckets at load, the sysctl
    // file sets max as well. (The table is at 38% of max: with a table far
    // from max the resize would now be declined, see above.)
    let mut o = obs(host((5, 15), 16 * GIB, 100_000, 262_144, 65_536));
    o.config.conntrack_module = ModuleKind::Module;
    let p = plan_of(&o, &Policy::default());
    let m = render::modprobe_d(&p).unwrap().unwrap();
    assert!(
        m.content.contains("options nf_conntrack hashsize=262144"),
        "{}",
        m.content
    );
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(
        f.content
            .contains("net.netfilter.nf_conntrack_max = 262144"),
        "{}",
        f.content
    );
    assert!(
        p.action("persist:modprobe")
            .unwrap()
            .evidence
            .iter()
            .any(|e| e.text.contains("8 x buckets = 2,097,152"))
    );
    // A module: no kernel command line.
    assert!(p.action("persist:cmdline").is_none());
}

#[test]
fn old_kernels_resize_through_the_module_parameter() {
    // 4.4 with max/16 buckets and the table at 38% of max: chains of 12
    // now (overloaded-buckets), 32 at a full table.
    let p = plan_of(
        &obs(host((4, 4), 16 * GIB, 100_000, 262_144, 16_384)),
        &Policy::default(),
    );
    let a = p.action("buckets").unwrap();
    assert!(matches!(
        a.kind,
        ActionKind::SetBuckets {
            via_sysctl: false,
            ..
        }
    ));
    assert_eq!(a.remedy, Some(Remedy::ResizeBuckets));
    assert_eq!(a.change.as_ref().unwrap().target, HASHSIZE_PARAM_PATH);
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(!f.content.contains(KEY_BUCKETS), "{}", f.content);
    let sh = render::shell_script(&p).unwrap();
    assert!(sh.contains(HASHSIZE_PARAM_PATH));
}

#[test]
fn non_initial_namespace_says_where_to_apply() {
    let mut s = host((6, 1), 16 * GIB, 250_000, 262_144, 262_144);
    s.init_netns = Some(false);
    let p = plan_of(&obs(s), &Policy::default());
    let a = p.action("raise-max").unwrap();
    assert_eq!(a.scope, Scope::HostInitNamespace);
    assert!(
        a.effect.text.contains("initial namespace"),
        "{}",
        a.effect.text
    );
}

#[test]
fn current_config_over_budget_is_warned_not_lowered() {
    // 2 GiB host with max 4M: 1.5 GiB worst case, budget 100 MiB.
    let p = plan_of(
        &obs(host((6, 1), 2 * GIB, 1000, 4_194_304, 4_194_304)),
        &Policy::default(),
    );
    assert!(p.has_warning(WarningKind::OverBudget), "{:?}", p.warnings);
    assert!(p.action("raise-max").is_none());
    assert!(p.find(|k| matches!(k, ActionKind::SetMax { .. })).is_none());
    assert!(p.actions.iter().all(|a| match &a.kind {
        ActionKind::PersistSysctl { entries, .. } => entries.iter().all(|(k, _)| k != KEY_MAX),
        _ => true,
    }));
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

fn summary(flows: &[Flow]) -> HotspotSummary {
    let mut h = Hotspots::exact();
    h.extend(flows);
    h.summary()
}

/// A DNS server whose table is 90% full of its queries.
fn dns_server_obs(flows: &[Flow]) -> Observation {
    obs(host((6, 1), 16 * GIB, 900, 1000, 1024)).with_hotspots(summary(flows))
}

fn dns_server(flows: &[Flow], policy: &Policy) -> Plan {
    plan_of(&dns_server_obs(flows), policy)
}

fn no_firewall() -> Policy {
    {
        let mut policy = Policy::default();
        policy.stateful_firewall = Some(false);
        policy
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
    assert_eq!(a.effect.entries_freed, Some(900));
    // No finding recommends NOTRACK: the action applies no remedy.
    assert_eq!(a.remedy, None);
    let ipt = render::iptables(&p).unwrap();
    assert!(ipt.contains("iptables -t raw -A PREROUTING -p udp --dport 53"));
    assert!(ipt.contains("-A OUTPUT -p udp --sport 53"));
    assert!(ipt.contains("# notrack:udp/53: udp/53 is no longer tracked"));
    let nft = render::nftables(&p).unwrap();
    assert!(nft.contains("udp dport 53 notrack"));
    assert!(nft.contains("priority raw"));
}

#[test]
fn notrack_only_under_table_pressure() {
    // The same service on a table at 0.9% of max: nothing to relieve, so
    // NOTRACK is neither proposed nor considered.
    let flows: Vec<Flow> = (0..900).map(|i| dns_flow(i, false, false, None)).collect();
    let o = obs(host((6, 1), 16 * GIB, 900, 100_000, 131_072)).with_hotspots(summary(&flows));
    let p = plan_of(&o, &no_firewall());
    assert!(p.actions_with_prefix("notrack:").next().is_none());
    assert!(p.declined.iter().all(|d| !d.what.starts_with("notrack")));
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
        assert!(d.why.contains("translated"), "{}", d.why);
        assert!(d.why.contains("NAT needs conntrack"), "{}", d.why);
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
            {
                let mut policy = Policy::default();
                policy.stateful_firewall = Some(true);
                policy
            },
            "stateful firewall depends",
        ),
        (Policy::default(), "unknown whether"),
        (
            {
                let mut policy = no_firewall();
                policy.risk = RiskTolerance::Conservative;
                policy
            },
            "conservative",
        ),
    ] {
        let p = dns_server(&flows, &policy);
        assert!(p.action("notrack:udp/53").is_none());
        assert!(
            p.declined
                .iter()
                .any(|d| d.what == "notrack udp/53" && d.why.contains(why)),
            "{why}: {:?}",
            p.declined
        );
    }
}

// ---- timeouts -----------------------------------------------------------

/// A TCP flow from one of 1000 clients to 192.0.2.80:80, in a state, with
/// `remaining` seconds left.
fn tcp_flow(i: u32, state: TcpState, remaining: u32) -> Flow {
    let a = IpAddr::V4(Ipv4Addr::new(
        10,
        1,
        (i / 250 % 4) as u8,
        (i % 250 + 1) as u8,
    ));
    let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80));
    let port = (1024 + i % 60_000) as u16;
    let mut f = Flow::new(
        Tuple::new(a, b, L4Proto::TCP, L4Tuple::Ports { src: port, dst: 80 }),
        Tuple::new(b, a, L4Proto::TCP, L4Tuple::Ports { src: 80, dst: port }),
        Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
    );
    f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo::new(state)));
    f.timeout = Some(remaining);
    f
}

/// `total` TCP flows: `tw` in TIME_WAIT spread evenly over 1..=120 s
/// remaining (`tw / 120` entering per second), `est_idle` ESTABLISHED
/// entries idle for about 4.9 days (10,000 s left of 432,000), and the rest
/// ESTABLISHED and active (431,990 s left).
fn tw_summary(total: u64, tw: u64, est_idle: u64) -> HotspotSummary {
    let mut h = Hotspots::exact();
    let mut i = 0u32;
    let mut add = |h: &mut Hotspots, st: TcpState, rem: u32| {
        h.add(&tcp_flow(i, st, rem));
        i += 1;
    };
    for r in 1..=120u32 {
        for _ in 0..tw / 120 {
            add(&mut h, TcpState::TIME_WAIT, r);
        }
    }
    for _ in 0..total - tw - est_idle {
        add(&mut h, TcpState::ESTABLISHED, 431_990);
    }
    for _ in 0..est_idle {
        add(&mut h, TcpState::ESTABLISHED, 10_000);
    }
    h.summary()
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
        // A 1-in-20 sample of a table at 95% of max.
        let total = 12_000u64;
        let tw = ((total as f64 * tw_share) as u64 / 120) * 120;
        let idle = ((total - tw) as f64 * idle_share) as u64;
        let mut s = host((6, 1), 16 * GIB, 250_000, 262_144, 262_144);
        s.timeouts.entry("tcp".into()).or_default().insert("time_wait".into(), tw_now);
        let o = obs(s).with_hotspots(tw_summary(total, tw, idle));
        let policy = {
            let mut policy = Policy::default();
            policy.nat_in_use = Some(nat);
            policy.risk = risk;
            policy
        };
        let (_, p) = run(&o, &policy);
        for a in &p.actions {
            if let ActionKind::SetTimeout { key, secs, floor_secs, floor_reason } = &a.kind {
                prop_assert!(secs >= floor_secs);
                prop_assert!(!floor_reason.is_empty());
                prop_assert!(u64::from(*secs) < current(a), "{}", render::text(&p));
                let want = match key {
                    TimeoutKey::TcpTimeWait if nat => 60,
                    TimeoutKey::TcpTimeWait => 30,
                    TimeoutKey::TcpEstablished => 7875,
                    TimeoutKey::Udp => 10,
                    other => panic!("unexpected timeout {other}"),
                };
                prop_assert_eq!(*floor_secs, want);
            }
        }
        // Under pressure, a table at least 20% TIME_WAIT gets it shortened
        // whenever it is above what the planner would propose.
        let target = if risk == RiskTolerance::Conservative { 60 } else { 30 };
        let floor = if nat { 60 } else { 30 };
        if tw > 0 && tw * 5 >= total && tw_now > target.max(floor) {
            prop_assert_eq!(
                proposed(&p, "timeout:tcp_timeout_time_wait"),
                Some(u64::from(target.max(floor))),
                "{}",
                render::text(&p)
            );
        }
    }
}

#[test]
fn time_wait_only_under_pressure_and_justified() {
    let flows = tw_summary(120_000, 60_000, 0);
    // 50% TIME_WAIT at 80% utilisation: shortened, freed from the histogram.
    let o = obs(host((6, 1), 16 * GIB, 120_000, 150_000, 300_032)).with_hotspots(flows.clone());
    let p = plan_of(&o, &Policy::default());
    let a = p.action("timeout:tcp_timeout_time_wait").unwrap();
    // 500 entries/s x 30 s = 15,000 remain of 60,000.
    assert_eq!(a.effect.entries_freed, Some(45_000));
    assert_eq!(proposed(&p, "timeout:tcp_timeout_time_wait"), Some(30));
    assert!(a.evidence.iter().any(|e| e.text.contains("TIME_WAIT")));

    // The same shape seen through a 1-in-10 sample of a 1.2M-entry table.
    let o =
        obs(host((6, 1), 64 * GIB, 1_200_000, 1_500_000, 3_000_064)).with_hotspots(flows.clone());
    let p = plan_of(&o, &Policy::default());
    let a = p.action("timeout:tcp_timeout_time_wait").unwrap();
    assert_eq!(a.effect.entries_freed, Some(450_000));
    assert!(a.evidence.iter().any(|e| e.text.contains("TIME_WAIT")));
    assert!(
        a.evidence
            .iter()
            .any(|e| e.text.contains("5000.0 enter per second")),
        "the rate is scaled to the table: {:?}",
        a.evidence
    );
    // Changed on purpose: the plan's evidence no longer repeats that the
    // flows are a sample; the report's composition section says it once,
    // for every number derived from the listing.
    let r = Report::build(&o, Origin::capture("sample"), &Policy::default()).unwrap();
    let text = render::report_text(&r);
    assert!(
        text.contains("a sample: counts below are scaled x10.0 to the table"),
        "{text}"
    );

    // Same flows, table at 1%: no pressure, no change.
    let o = obs(host((6, 1), 16 * GIB, 2_000, 262_144, 262_144)).with_hotspots(flows);
    let p = plan_of(&o, &Policy::default());
    assert!(p.action("timeout:tcp_timeout_time_wait").is_none());
}

#[test]
fn protected_timeouts_are_left_alone() {
    let o = obs(host((6, 1), 16 * GIB, 250_000, 262_144, 262_144))
        .with_hotspots(tw_summary(120_000, 60_000, 40_000));
    let mut policy = Policy::default();
    policy
        .protected_timeouts
        .insert("nf_conntrack_tcp_timeout_time_wait".into());
    policy
        .protected_timeouts
        .insert("net.netfilter.nf_conntrack_tcp_timeout_established".into());
    let (findings, p) = run(&o, &policy);
    assert!(
        p.actions
            .iter()
            .all(|a| !matches!(a.kind, ActionKind::SetTimeout { .. }))
    );
    let protected: Vec<&Declined> = p
        .declined
        .iter()
        .filter(|d| d.why.contains("protected"))
        .collect();
    assert_eq!(protected.len(), 2, "{:?}", p.declined);
    // Both were asked for by diagnosis (connection churn under pressure,
    // long-idle ESTABLISHED entries under pressure) and are declined as
    // such.
    for key in [TimeoutKey::TcpTimeWait, TimeoutKey::TcpEstablished] {
        let r = Remedy::ShortenTimeout(key);
        assert!(findings.iter().any(|f| f.remedies.contains(&r)), "{r}");
        assert!(protected.iter().any(|d| d.remedy == Some(r)), "{r}");
    }
}

#[test]
fn established_change_justified_by_histogram() {
    let o = obs(host((6, 1), 16 * GIB, 120_000, 150_000, 300_032))
        .with_hotspots(tw_summary(120_000, 0, 40_000));
    let p = plan_of(&o, &Policy::default());
    let a = p.action("timeout:tcp_timeout_established").unwrap();
    assert_eq!(a.effect.entries_freed, Some(40_000));
    assert_eq!(a.change.as_ref().unwrap().proposed, Value::Seconds(86_400));
    assert!(matches!(
        a.kind,
        ActionKind::SetTimeout {
            floor_secs: 7875,
            secs: 86_400,
            ..
        }
    ));
    // Few idle entries: not worth it.
    let o = obs(host((6, 1), 16 * GIB, 120_000, 150_000, 300_032))
        .with_hotspots(tw_summary(120_000, 0, 1_000));
    let p = plan_of(&o, &Policy::default());
    assert!(p.action("timeout:tcp_timeout_established").is_none());
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
    let p = dns_server(&flows, &Policy::default());
    let a = p.action("timeout:udp_timeout").expect("udp timeout");
    let ActionKind::SetTimeout {
        secs, floor_secs, ..
    } = &a.kind
    else {
        panic!()
    };
    assert_eq!((*secs, *floor_secs), (10, 10));
    // 30 entries/s x 10 s = 300 remain of 900.
    assert_eq!(a.effect.entries_freed, Some(600));
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
    o.config.sysctl_d = Some(HostFs::new(t.path()).read_sysctl_d());
    let p = plan_of(&o, &Policy::default());
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
    let policy = {
        let mut policy = Policy::default();
        policy.sysctl_file_name = "99-zz-conntrack.conf".into();
        policy
    };
    let p = plan_of(&o, &policy);
    assert!(!p.has_warning(WarningKind::PersistenceOverridden));
    put(
        t.path(),
        "/etc/sysctl.conf",
        "net.netfilter.nf_conntrack_max=65536\n",
    );
    o.config.sysctl_d = Some(HostFs::new(t.path()).read_sysctl_d());
    let p = plan_of(&o, &policy);
    assert!(
        p.warnings
            .iter()
            .any(|w| w.text.starts_with("/etc/sysctl.conf:1")),
        "{:?}",
        p.warnings
    );
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
    o.config.sysctl_d = Some(HostFs::new(t.path()).read_sysctl_d());
    let p = plan_of(&o, &Policy::default());
    assert!(
        p.warnings.iter().any(|w| w.text.contains("masked")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn kube_proxy_from_policy() {
    let o = obs(host((6, 1), 16 * GIB, 250_000, 262_144, 65_536));
    let policy = {
        let mut policy = Policy::default();
        policy.kube_proxy_manages_max = Some(true);
        policy
    };
    let p = plan_of(&o, &policy);
    assert!(p.has_warning(WarningKind::KubeProxyManaged));
    // The persistence through kube-proxy is advice (persist:kube-proxy
    // before the typed plan).
    let a = p.action("advice:kube-proxy").unwrap();
    assert_eq!(
        a.kind,
        ActionKind::Advice {
            topic: AdviceTopic::KubeProxyConfig
        }
    );
    let f = render::sysctl_d(&p).unwrap().unwrap();
    assert!(!f.content.contains("nf_conntrack_max ="), "{}", f.content);
    assert!(f.content.contains(KEY_BUCKETS), "{}", f.content);
}

#[test]
fn kube_proxy_from_the_hosts_files() {
    // The same, detected from the host's configuration instead of policy.
    let mut o = obs(host((6, 1), 16 * GIB, 250_000, 262_144, 65_536));
    o.config.kube_proxy = Some({
        let mut kube = KubeProxy::default();
        kube.files = vec!["/var/lib/kube-proxy/config.conf".into()];
        kube
    });
    let p = plan_of(&o, &Policy::default());
    assert!(p.has_warning(WarningKind::KubeProxyManaged));
    assert!(p.action("advice:kube-proxy").is_some());
    // maxPerCore 0: kube-proxy leaves max alone.
    o.config.kube_proxy = Some({
        let mut kube = KubeProxy::default();
        kube.files = vec!["/var/lib/kube-proxy/config.conf".into()];
        kube.max_per_core = Some(0);
        kube
    });
    let p = plan_of(&o, &Policy::default());
    assert!(!p.has_warning(WarningKind::KubeProxyManaged));
    assert!(p.action("advice:kube-proxy").is_none());
}

#[test]
fn kube_proxy_without_cpu_count_uses_min() {
    let mut s = host((6, 1), 16 * GIB, 250_000, 262_144, 65_536);
    s.cpus_online.clear();
    let policy = {
        let mut policy = Policy::default();
        policy.kube_proxy_manages_max = Some(true);
        policy
    };
    let p = plan_of(&obs(s), &policy);
    let a = p.action("advice:kube-proxy").unwrap();
    let c = a.change.as_ref().unwrap();
    assert_eq!(c.target, "kube-proxy conntrack.min");
    assert_eq!(c.proposed, Value::Count(proposed(&p, "raise-max").unwrap()));
    let w = p
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::KubeProxyManaged)
        .unwrap();
    assert!(!w.text.contains("on 0 CPUs") && !w.text.contains("on 1 CPUs"));
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

fn has_finding(findings: &[Finding], id: FindingId) -> bool {
    findings.iter().any(|f| f.id == id)
}

#[test]
fn rps_only_on_imbalance_with_rps_off() {
    let (findings, p) = run(&rps_host(2, 16, false, false), &Policy::default());
    assert!(has_finding(&findings, FindingId::CpuImbalance));
    let a = p.action("rps:eth0").expect("rps");
    assert_eq!(a.remedy, Some(Remedy::EnableRps));
    let ActionKind::EnableRps { queues, .. } = &a.kind else {
        panic!()
    };
    assert_eq!(queues.len(), 2);
    assert_eq!(queues[0].mask, "5555");
    assert_eq!(queues[1].mask, "aaaa");

    // Changed on purpose: RPS already on means diagnosis finds no
    // receive concentration with RPS off, so there is no cpu-imbalance
    // finding and nothing for the plan to propose or decline.
    let (findings, p) = run(&rps_host(2, 16, true, false), &Policy::default());
    assert!(!has_finding(&findings, FindingId::CpuImbalance));
    assert!(p.action("rps:eth0").is_none());
    assert!(p.declined.iter().all(|d| !d.what.starts_with("rps")));

    let (findings, p) = run(&rps_host(2, 16, false, true), &Policy::default());
    assert!(!has_finding(&findings, FindingId::CpuImbalance));
    assert!(p.action("rps:eth0").is_none());

    // As many queues as CPUs: RSS already spreads; here 4 busy CPUs of 16
    // but 16 queues. Changed on purpose: diagnosis does not report
    // concentration then (rx queues >= CPUs), so there is nothing to
    // decline.
    let mut o = rps_host(16, 16, false, false);
    for (i, v) in o.snapshot.net_rx_softirqs.iter_mut().enumerate() {
        *v = if i < 4 { 1_000_000 } else { 10 };
    }
    let (findings, p) = run(&o, &Policy::default());
    assert!(!has_finding(&findings, FindingId::CpuImbalance));
    assert!(p.actions_with_prefix("rps:").next().is_none());
    assert!(p.declined.iter().all(|d| !d.what.starts_with("rps")));
}

#[test]
fn rps_refuses_invalid_interface_names() {
    let mut o = rps_host(2, 16, false, false);
    for q in &mut o.snapshot.rx_queues {
        q.iface = "../../etc".into();
    }
    let (findings, p) = run(&o, &Policy::default());
    assert!(has_finding(&findings, FindingId::CpuImbalance));
    assert!(p.actions.iter().all(|a| !a.id.starts_with("rps:")));
    let d = p
        .declined
        .iter()
        .find(|d| d.why.contains("dev_valid_name"))
        .unwrap();
    assert_eq!(d.remedy, Some(Remedy::EnableRps));
}

#[test]
fn rps_never_from_per_cpu_drops() {
    // Changed on purpose: failures concentrated on 2 of 8 CPUs with RPS off
    // and no softirq counts used to propose RPS. They are confirm-time
    // failures from new flows processed in parallel, which RPS adds to:
    // diagnosis reports them as confirm-failures (never recommending RPS)
    // and the plan proposes no RPS.
    let mut o = rps_host(2, 8, false, false);
    o.snapshot.net_rx_softirqs.clear();
    let per_cpu: Vec<Vec<(Counter, u32)>> = (0..8)
        .map(|c| {
            let v = if c < 2 { 50 } else { 0 };
            vec![
                (Counter::Drop, v),
                (Counter::InsertFailed, v),
                (Counter::EarlyDrop, 0),
            ]
        })
        .collect();
    let o = o.with_rates(rates_over(10, Some(1000), &per_cpu));
    let facts = Facts::derive(&o);
    assert!(
        facts
            .cpu
            .failures
            .as_ref()
            .is_some_and(|i| i.spread.is_imbalanced()),
        "{:?}",
        facts.cpu.failures
    );
    let (findings, p) = run(&o, &Policy::default());
    assert!(has_finding(&findings, FindingId::ConfirmFailures));
    assert!(!has_finding(&findings, FindingId::CpuImbalance));
    assert!(
        findings
            .iter()
            .all(|f| !f.remedies.contains(&Remedy::EnableRps))
    );
    assert!(
        p.find(|k| matches!(k, ActionKind::EnableRps { .. }))
            .is_none()
    );
}

#[test]
fn rps_without_softirq_counts_is_unjudged() {
    // The old planner listed "rps" as unjudged when the softirq counts
    // were missing; the new one says nothing about it, and judges the
    // `echo ff > rps_cpus` recipe "not needed: no concentration of
    // receive work was observed" although nothing was observed.
    let mut o = rps_host(2, 8, false, false);
    o.snapshot.net_rx_softirqs.clear();
    let p = plan_of(&o, &Policy::default());
    let folk = p
        .folk
        .iter()
        .find(|v| v.recipe == Recipe::RpsEveryCpu)
        .unwrap();
    assert_eq!(folk.verdict, Verdict::CannotJudge, "{}", folk.reason);
    assert!(
        p.unjudged.iter().any(|u| u.topic == "rps"),
        "{:?}",
        p.unjudged
    );
}

// ---- missing parts ------------------------------------------------------

#[test]
fn missing_parts_are_unjudged_not_guessed() {
    let p = plan_of(&Observation::default(), &Policy::default());
    let topics: Vec<&str> = p.unjudged.iter().map(|u| u.topic.as_str()).collect();
    // "host" is gone: an observation always has a host snapshot now (the
    // missing kernel says "kernel era").
    for t in ["kernel era", "drops", "table sizing", "timeouts", "notrack"] {
        assert!(topics.contains(&t), "{t} missing from {topics:?}");
    }
    assert!(p.actions.is_empty());
    // Kernel unknown: the era is assumed and said.
    let mut s = host((6, 1), 16 * GIB, 1000, 262_144, 262_144);
    s.kernel_version = None;
    let p = plan_of(&obs(s), &Policy::default());
    assert!(p.unjudged.iter().any(|u| u.topic == "kernel era"));
    // RAM unknown: sizing proceeds without the budget, and says so.
    let mut s = host((6, 1), 16 * GIB, 250_000, 262_144, 262_144);
    s.mem_total_bytes = None;
    let p = plan_of(&obs(s), &Policy::default());
    assert!(p.unjudged.iter().any(|u| u.topic == "memory budget"));
    assert!(p.action("raise-max").is_some());
}

#[test]
fn bad_policy_is_an_error_not_a_panic() {
    let o = Observation::default();
    let facts = Facts::derive(&o);
    for (bad, err) in [
        (
            {
                let mut policy = Policy::default();
                policy.headroom = f64::NAN;
                policy
            },
            PolicyError::Headroom,
        ),
        (
            {
                let mut policy = Policy::default();
                policy.memory_budget_share = 0.0;
                policy
            },
            PolicyError::MemoryBudget,
        ),
        (
            {
                let mut policy = Policy::default();
                policy.max_chain_length = -1.0;
                policy
            },
            PolicyError::ChainLength,
        ),
        (
            {
                let mut policy = Policy::default();
                policy.sysctl_file_name = "../x.conf".into();
                policy
            },
            PolicyError::FileName,
        ),
    ] {
        assert_eq!(plan(&facts, &[], &bad).unwrap_err(), err);
    }
}

// ---- confirm-time failures ---------------------------------------------

/// A client pod's DNS query to the service VIP 10.96.0.10, DNAT'd to a
/// resolver pod.
fn k8s_dns_flow(i: u16) -> Flow {
    let ip = |s: &str| s.parse().unwrap();
    let o = Tuple::new(
        ip("10.244.1.5"),
        ip("10.96.0.10"),
        L4Proto::UDP,
        L4Tuple::Ports {
            src: 30_000 + i,
            dst: 53,
        },
    );
    let r = Tuple::new(
        ip("10.244.2.7"),
        ip("10.244.1.5"),
        L4Proto::UDP,
        L4Tuple::Ports {
            src: 53,
            dst: 30_000 + i,
        },
    );
    let mut f = Flow::new(o, r, Status::CONFIRMED | Status::SEEN_REPLY);
    f.timeout = Some(20);
    f
}

#[test]
fn clash_on_old_kernels_points_at_the_kernel_fix() {
    // DNS through a DNAT'd service, insert_failed above drop (the kernel
    // resolved some clashes) at 4% of max.
    let flows: Vec<Flow> = (0..200).map(k8s_dns_flow).collect();
    let rates = rates_over(
        60,
        Some(10_000),
        &[vec![
            (Counter::Drop, 100),
            (Counter::InsertFailed, 150),
            (Counter::EarlyDrop, 0),
        ]],
    );
    let mut o = obs(host((5, 4), 16 * GIB, 10_000, 262_144, 262_144))
        .with_hotspots(summary(&flows))
        .with_rates(rates);
    let (findings, p) = run(&o, &Policy::default());
    assert!(has_finding(&findings, FindingId::ConfirmFailures));
    // The workload fix, and (changed on purpose: in its own action now)
    // the kernel that resolves the clash.
    assert!(
        p.action("advice:dns-clash").is_some(),
        "{}",
        render::text(&p)
    );
    let a = p.action("advice:kernel-upgrade").unwrap();
    assert_eq!(a.remedy, Some(Remedy::UpgradeKernel));
    assert!(a.effect.text.contains("6a757c07e51f"), "{}", a.effect.text);
    // 6.1 resolves these clashes itself: no upgrade, no pointer to the fix.
    o.snapshot.kernel_version = Some(KernelVersion::new(6, 1, 0));
    let (findings, p) = run(&o, &Policy::default());
    assert!(
        findings
            .iter()
            .all(|f| !f.remedies.contains(&Remedy::UpgradeKernel))
    );
    assert!(p.action("advice:kernel-upgrade").is_none());
    // The workload advice stays (nothing else explains the failures).
    assert!(
        p.action("advice:dns-clash").is_some(),
        "{}",
        render::text(&p)
    );
    assert!(
        p.actions
            .iter()
            .all(|a| !a.effect.text.contains("6a757c07e51f")),
        "{}",
        render::text(&p)
    );
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

/// A mixed flow: TIME_WAIT, ESTABLISHED or DNS; translated, zoned or
/// helped on some.
fn odd_flow(i: usize, rem: u32, nat: bool) -> Flow {
    let mut f = match i % 3 {
        0 => tcp_flow(i as u32, TcpState::TIME_WAIT, rem),
        1 => tcp_flow(i as u32, TcpState::ESTABLISHED, rem),
        _ => {
            let mut f = dns_flow(i as u16, nat, false, None);
            f.timeout = Some(rem);
            f
        }
    };
    if nat {
        f.status |= Status::SRC_NAT;
    }
    if i.is_multiple_of(7) {
        f.zone = Some(i as u16);
    }
    if i.is_multiple_of(11) {
        f.status |= Status::HELPER;
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Odd and hostile observations never panic the planner or a renderer,
    /// and every plan still answers every finding.
    #[test]
    fn never_panics(
        (count, max, buckets) in (extreme_u32(), extreme_u32(), extreme_u32()),
        (mem, page) in (extreme_u64(), extreme_u64()),
        (tw, est, udp) in (extreme_u32(), extreme_u32(), extreme_u32()),
        (flows, nat_every, rem) in (0usize..60, 1usize..5, extreme_u32()),
        (rate, window) in (extreme_f64(), extreme_u64()),
        (drop, early, failed, chain) in (extreme_u32(), extreme_u32(), extreme_u32(), extreme_u32()),
        (before, entries) in (extreme_u32(), (extreme_u32(), extreme_u32())),
        (rx0, rx1) in (extreme_u64(), extreme_u64()),
        minor in 0u16..30,
        iface in "\\PC{0,20}",
        (init, kube, per_core) in (any::<Option<bool>>(), any::<bool>(), extreme_u32()),
    ) {
        let mut s = {
            let mut snap = HostSnapshot::default().with_kernel_version(KernelVersion::new(minor / 6 + 2, minor, 0)).with_page_size(page).with_mem_total_bytes(mem).with_cpus_online((0..(minor as u32 % 5)).collect()).with_count(count).with_max(max).with_buckets(buckets).with_rx_queues(vec![RxQueue { iface, queue: rem % 4, rps_cpus: vec![] }]).with_helpers(vec!["nf_conntrack_ftp".into(), "nf_conntrack_sip".into()]);
            snap.init_netns = init;
            snap.net_rx_softirqs = vec![rx0, rx1, u64::from(drop)];
            snap
        };
        s.timeouts.entry("tcp".into()).or_default().insert("time_wait".into(), tw);
        s.timeouts.entry("tcp".into()).or_default().insert("established".into(), est);
        s.timeouts.entry("udp".into()).or_default().insert("default".into(), udp);
        let cpu = |end: bool| {
            let mut c = CpuStats::for_cpu(0);
            for (k, v) in [
                (Counter::Drop, drop),
                (Counter::EarlyDrop, early),
                (Counter::InsertFailed, failed),
                (Counter::ChainTooLong, chain),
            ] {
                c.set(k, if end { v } else { before });
            }
            c
        };
        let sample = |at: u64, end: bool| Sample {
            at: Duration::from_secs(at),
            stats: Stats::new(vec![cpu(end), CpuStats::for_cpu(1)]).with_entries(if end { entries.1 } else { entries.0 }),
        };
        let rates = Rates::from_samples(&[sample(0, false), sample(window, true)]);
        let listed: Vec<Flow> = (0..flows).map(|i| odd_flow(i, rem, i % nat_every == 0)).collect();
        let mut o = obs(s).with_rates(rates).with_hotspots(summary(&listed));
        o.new_flows_per_sec = Some(rate);
        o.snapshot.stats = Some(sample(window, true).stats);
        o.config.helper_kinds.insert("nf_conntrack_sip".into(), ModuleKind::BuiltIn);
        if kube {
            o.config.kube_proxy = Some({
                let mut kube = KubeProxy::default();
                kube.files = vec!["/etc/kubernetes/kube-proxy.yaml".into()];
                kube.max_per_core = Some(per_core);
                kube.min = Some(count);
                kube
            });
        }
        for risk in [RiskTolerance::Conservative, RiskTolerance::Moderate, RiskTolerance::Aggressive] {
            let policy = {
                let mut policy = Policy::default();
                policy.risk = risk;
                policy.stateful_firewall = Some(false);
                policy
            };
            let (_, p) = run(&o, &policy);
            let _ = render::text(&p);
            let _ = render::markdown(&p);
            let _ = render::json(&p).unwrap();
            let _ = render::shell_script(&p);
            let _ = render::sysctl_d(&p);
            let _ = render::modprobe_d(&p);
            let _ = render::iptables(&p);
            let _ = render::nftables(&p);
            let r = Report::build(&o, Origin::capture("odd"), &policy).unwrap();
            let _ = render::report_text(&r);
            let _ = r.to_json().unwrap();
        }
    }
}
