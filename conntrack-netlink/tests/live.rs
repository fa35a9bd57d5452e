//! Live tests against the running kernel, each in a fresh network
//! namespace (deleted on drop, also on panic).
//!
//! They skip (printing why) without root, `ip`, `conntrack` or
//! nf_conntrack, unless `CONNTRACK_KIT_REQUIRE_LIVE=1`, which turns a skip
//! into a failure. The whole file runs in well under a minute and leaves
//! the global `nf_conntrack_max` alone.

use conntrack_core::cli::list::parse_lines;
use conntrack_core::cli::stats::{parse_cli_stats_bytes, parse_count};
use conntrack_core::{
    Flow, FlowLike, L3Family, L4Proto, L4Tuple, ProtoInfo, SctpInfo, SctpState, Status, TcpInfo,
    TcpState, Tuple,
};
use conntrack_netlink::fill::{self, FillOptions, FlowKind, Mix};
use conntrack_netlink::{
    Conntrack, DumpKind, DumpPolicy, DumpRequest, Error, Filter, Netns, Op, SocketConfig,
    TupleFilter, Update,
};
use std::collections::{BTreeMap, HashMap, HashSet};

use conntrack_core::testkit::{self, Need, TestNetns};

mod support;
use support::{echo, ip, ports};

/// What every live test here needs.
const NEEDS: &[Need<'static>] = &[
    Need::Root,
    Need::Tool("ip"),
    Need::Tool("conntrack"),
    Need::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
];

/// A fresh namespace and a connection to its table, or `None` (skip).
fn live(tag: &str) -> Option<(TestNetns, Conntrack)> {
    if !testkit::live(tag, NEEDS) {
        return None;
    }
    let ns = TestNetns::new(tag);
    let ct = Conntrack::open_in(&Netns::named(ns.name())).expect("open ctnetlink in the namespace");
    Some((ns, ct))
}

/// A flow of `orig` with the kernel's reply tuple, `status` (as created:
/// the kernel adds `CONFIRMED`) and `timeout`.
fn flow(orig: Tuple, status: Status, timeout: u32) -> Flow {
    let mut f = support::flow(orig);
    f.status = status;
    f.timeout = Some(timeout);
    f
}

fn tcp(state: TcpState) -> Option<ProtoInfo> {
    Some(ProtoInfo::Tcp(TcpInfo::new(state)))
}

/// One flow of every kind the kernel tracks by tuple: TCP in several
/// states, UDP replied/unreplied, ICMP, IPv6 TCP/UDP/ICMPv6, SCTP,
/// UDP-Lite, GRE keys, a generic protocol, a mark, a zone, and a
/// translated reply tuple.
fn every_kind() -> Vec<Flow> {
    let sr = Status::SEEN_REPLY | Status::ASSURED;
    let mut v = Vec::new();
    let mut f = flow(
        ports(L4Proto::TCP, "10.1.0.1", 40000, "10.1.0.2", 443),
        sr,
        3000,
    );
    f.protoinfo = tcp(TcpState::ESTABLISHED);
    f.mark = Some(0x11);
    v.push(f);
    let mut f = flow(
        ports(L4Proto::TCP, "10.1.0.1", 40001, "10.1.0.2", 80),
        sr,
        100,
    );
    f.protoinfo = tcp(TcpState::TIME_WAIT);
    v.push(f);
    let mut f = flow(
        ports(L4Proto::TCP, "10.1.0.1", 40002, "10.1.0.3", 22),
        Status::empty(),
        100,
    );
    f.protoinfo = tcp(TcpState::SYN_SENT);
    v.push(f);
    v.push(flow(
        ports(L4Proto::UDP, "10.1.0.1", 5353, "10.1.0.53", 53),
        Status::empty(),
        30,
    ));
    v.push(flow(
        ports(L4Proto::UDP, "10.1.0.1", 5354, "10.1.0.53", 53),
        Status::SEEN_REPLY,
        30,
    ));
    // Masqueraded: the reply goes back to the router's address and port.
    let mut f = flow(
        ports(L4Proto::UDP, "172.17.0.2", 999, "1.1.1.1", 53),
        Status::SEEN_REPLY,
        60,
    );
    f.reply = Tuple::new(
        ip("1.1.1.1"),
        ip("192.0.2.10"),
        L4Proto::UDP,
        L4Tuple::Ports {
            src: 53,
            dst: 61000,
        },
    );
    v.push(f);
    v.push(flow(
        echo("10.1.0.1", "10.1.0.9", 77),
        Status::SEEN_REPLY,
        30,
    ));
    let mut f = flow(
        ports(L4Proto::TCP, "fd00::1", 50000, "fd00::2", 443),
        sr,
        2000,
    );
    f.protoinfo = tcp(TcpState::ESTABLISHED);
    v.push(f);
    v.push(flow(
        ports(L4Proto::UDP, "fd00::1", 5000, "fd00::53", 53),
        Status::empty(),
        30,
    ));
    v.push(flow(echo("fd00::1", "fd00::9", 77), Status::empty(), 30));
    let mut f = flow(
        ports(L4Proto::SCTP, "10.1.0.1", 3868, "10.1.0.2", 3868),
        sr,
        200,
    );
    f.protoinfo = Some(ProtoInfo::Sctp(SctpInfo::new(SctpState::ESTABLISHED)));
    v.push(f);
    v.push(flow(
        ports(L4Proto::UDPLITE, "10.1.0.1", 7000, "10.1.0.2", 7001),
        Status::empty(),
        30,
    ));
    v.push(flow(
        ports(L4Proto::GRE, "10.1.0.1", 0x10, "10.1.0.2", 0x20),
        Status::empty(),
        30,
    ));
    let esp = Tuple::new(ip("10.1.0.1"), ip("10.1.0.2"), L4Proto::ESP, L4Tuple::None);
    v.push(flow(esp, Status::empty(), 30));
    // Same tuple as the first flow, in zone 7.
    let mut f = v[0].clone();
    f.zone = Some(7);
    f.mark = Some(0x22);
    v.push(f);
    v
}

fn key(f: &Flow) -> (Tuple, Option<u16>) {
    (f.orig, f.zone)
}

/// Checks what the kernel reports against what was created.
fn assert_created(want: &Flow, got: &Flow) {
    let ctx = format!("{want:?}\nvs\n{got:?}");
    assert_eq!(got.orig, want.orig, "{ctx}");
    assert_eq!(got.reply, want.reply, "{ctx}");
    assert_eq!(got.zone, want.zone, "{ctx}");
    assert_eq!(got.mark.unwrap_or(0), want.mark.unwrap_or(0), "{ctx}");
    assert!(
        got.status.contains(want.status | Status::CONFIRMED),
        "{ctx}"
    );
    let t = got.timeout.expect("timeout");
    assert!(
        t <= want.timeout.unwrap() && t + 5 >= want.timeout.unwrap(),
        "{ctx}"
    );
    match (want.protoinfo, got.protoinfo) {
        (Some(ProtoInfo::Tcp(w)), Some(ProtoInfo::Tcp(g))) => assert_eq!(w.state, g.state, "{ctx}"),
        (Some(ProtoInfo::Sctp(w)), Some(ProtoInfo::Sctp(g))) => {
            assert_eq!(w.state, g.state, "{ctx}")
        }
        (None, _) => {}
        _ => panic!("protoinfo differs: {ctx}"),
    }
    assert!(got.id.is_some() && got.use_count.is_some(), "{ctx}");
}

/// `conntrack -L -o extended,id` in the namespace, parsed by conntrack-core.
fn cli_list(ns: &TestNetns) -> Vec<Flow> {
    let out = ns
        .command("conntrack")
        .args(["-L", "-o", "extended,id"])
        .output()
        .expect("run conntrack -L");
    assert!(out.status.success(), "conntrack -L: {out:?}");
    parse_lines(&String::from_utf8(out.stdout).unwrap())
        .map(|r| r.expect("conntrack -L line parses"))
        .collect()
}

/// Field by field: our decoder against the CLI's text for the same entry
/// (the fields the CLI prints).
fn assert_same_as_cli(ours: &[Flow], cli: &[Flow]) {
    assert_eq!(ours.len(), cli.len(), "entry count: ours vs conntrack -L");
    let by_id: HashMap<u32, &Flow> = cli.iter().map(|f| (f.id.expect("-o id"), f)).collect();
    for o in ours {
        let c = by_id
            .get(&o.id.unwrap())
            .unwrap_or_else(|| panic!("id {:?} missing from conntrack -L", o.id));
        let ctx = format!("ours {o:?}\ncli  {c:?}");
        assert_eq!(o.orig, c.orig, "{ctx}");
        assert_eq!(o.reply, c.reply, "{ctx}");
        assert_eq!(o.family(), c.family(), "{ctx}");
        assert_eq!(o.zone, c.zone, "{ctx}");
        assert_eq!(o.mark.unwrap_or(0), c.mark.unwrap_or(0), "{ctx}");
        assert_eq!(o.use_count, c.use_count, "{ctx}");
        assert_eq!(o.state(), c.state(), "{ctx}");
        // The CLI shows CONFIRMED implicitly, SEEN_REPLY and ASSURED.
        let shown = Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED;
        assert_eq!(o.status & shown, c.status & shown, "{ctx}");
        // Both read the remaining time; a second may tick in between.
        let (a, b) = (o.timeout.unwrap(), c.timeout.unwrap());
        assert!(a.abs_diff(b) <= 2, "{ctx}");
    }
}

#[test]
fn create_every_kind_then_dump_matches_created_and_cli() {
    let Some((ns, mut ct)) = live("kinds") else {
        return;
    };
    let want = every_kind();
    for f in &want {
        ct.create(f).unwrap_or_else(|e| panic!("create {f:?}: {e}"));
    }
    assert!(matches!(
        ct.create(&want[0]),
        Err(Error::Exists { op: Op::Create })
    ));

    let (got, s) = ct.dump(&DumpRequest::table(L3Family::UNSPEC)).unwrap();
    assert_eq!(s.flows, want.len() as u64);
    assert_eq!(s.malformed, 0);
    assert!(!s.interrupted);
    assert!(s.messages > s.flows && s.bytes > 0 && s.datagrams >= 1);
    let by_key: HashMap<_, _> = got.iter().map(|f| (key(f), f)).collect();
    for w in &want {
        assert_created(
            w,
            by_key
                .get(&key(w))
                .unwrap_or_else(|| panic!("missing {w:?}")),
        );
    }
    assert_same_as_cli(&got, &cli_list(&ns));

    // Family selection.
    let v4 = ct.list(L3Family::INET).unwrap();
    let v6 = ct.list(L3Family::INET6).unwrap();
    assert_eq!(v4.len() + v6.len(), want.len());
    assert!(v4.iter().all(|f| f.family() == L3Family::INET));
    assert_eq!(
        v6.len(),
        want.iter()
            .filter(|f| f.family() == L3Family::INET6)
            .count()
    );
}

#[test]
fn get_update_delete() {
    let Some((_ns, mut ct)) = live("gud") else {
        return;
    };
    let want = every_kind();
    let (a, z) = (&want[0], &want[want.len() - 1]);
    ct.create(a).unwrap();
    ct.create(z).unwrap();

    let got = ct.get(&a.orig, None).unwrap();
    assert_created(a, &got);
    let gz = ct.get(&z.orig, Some(7)).unwrap();
    assert_eq!((gz.zone, gz.mark), (Some(7), Some(0x22)));
    assert_ne!(got.id, gz.id);

    ct.update(
        &Update::new(a.orig)
            .mark(0xbeef)
            .timeout(77)
            .tcp_state(TcpState::FIN_WAIT),
    )
    .unwrap();
    let up = ct.get(&a.orig, None).unwrap();
    assert_eq!(up.mark, Some(0xbeef));
    assert!(up.timeout.unwrap() <= 77 && up.timeout.unwrap() >= 70);
    assert_eq!(up.tcp_state(), Some(TcpState::FIN_WAIT));
    // The zoned twin is untouched.
    assert_eq!(ct.get(&z.orig, Some(7)).unwrap().mark, Some(0x22));

    // Clearing ASSURED is refused by the kernel.
    let e = ct
        .update(&Update::new(a.orig).status(Status::SEEN_REPLY))
        .unwrap_err();
    assert_eq!(e.errno(), Some(libc::EBUSY), "{e}");

    // Delete with a stale id does nothing, with the right one deletes.
    assert!(matches!(
        ct.delete(&a.orig, None, Some(up.id.unwrap().wrapping_add(1))),
        Err(Error::NotFound { op: Op::Delete })
    ));
    ct.delete(&a.orig, None, up.id).unwrap();
    assert!(matches!(
        ct.get(&a.orig, None),
        Err(Error::NotFound { op: Op::Get })
    ));
    assert!(matches!(
        ct.delete(&a.orig, None, None),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        ct.update(&Update::new(a.orig).mark(1)),
        Err(Error::NotFound { op: Op::Update })
    ));
    let rest = ct.list(L3Family::UNSPEC).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].zone, Some(7));
}

#[test]
fn filtered_dumps_match_user_space_filtering() {
    let Some((_ns, mut ct)) = live("filter") else {
        return;
    };
    let mix: Mix = "tcp=3,udp=2,icmp=1,tcp6=1,udp6=1".parse().unwrap();
    fill::fill(&mut ct, &FillOptions::new(400).mix(mix.clone())).unwrap();
    fill::fill(
        &mut ct,
        &FillOptions::new(100)
            .mix(mix)
            .start(400)
            .mark(0x5a0)
            .zone(3),
    )
    .unwrap();
    let all = ct.list(L3Family::UNSPEC).unwrap();
    assert_eq!(all.len(), 500);

    let filters = [
        Filter::new(L3Family::INET),
        Filter::new(L3Family::INET6),
        Filter::new(L3Family::UNSPEC).mark(0x5a0, 0xff0),
        Filter::new(L3Family::INET).mark(0, 0xffff_ffff),
        Filter::new(L3Family::UNSPEC).status(Status::ASSURED, Status::ASSURED),
        Filter::new(L3Family::UNSPEC).status(Status::empty(), Status::SEEN_REPLY),
        Filter::new(L3Family::UNSPEC).zone(3),
        Filter::new(L3Family::UNSPEC).zone(0),
        Filter::new(L3Family::INET).orig(TupleFilter::new().proto(L4Proto::TCP).dst_port(443)),
        Filter::new(L3Family::INET).orig(TupleFilter::new().src(ip("10.0.0.8"))),
        Filter::new(L3Family::INET).reply(TupleFilter::new().proto(L4Proto::UDP).src_port(53)),
        Filter::new(L3Family::UNSPEC).orig(TupleFilter::new().proto(L4Proto::ICMP).icmp(
            Some(8),
            None,
            None,
        )),
        Filter::new(L3Family::INET6).orig(TupleFilter::new().dst(ip("2001:db8::3"))),
        Filter::new(L3Family::UNSPEC).orig(TupleFilter::new().dst_port(123)),
    ];
    for f in filters {
        let (got, s) = ct.dump(&DumpRequest::filtered(f.clone())).unwrap();
        let mut want: Vec<_> = all.iter().filter(|x| f.matches(*x)).map(key).collect();
        let mut got: Vec<_> = got.iter().map(key).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{f:?}");
        assert!(!want.is_empty(), "test filter selects nothing: {f:?}");
        // The kernel filters (and says so with NLM_F_DUMP_FILTERED) when
        // the request carries a family, mark, status or zone; tuple
        // conditions without a family are left to user space.
        let kernel = f.family != L3Family::UNSPEC
            || f.mark.is_some()
            || f.status.is_some()
            || f.zone.is_some();
        assert_eq!(s.kernel_filtered, kernel, "{f:?}");
        if !kernel {
            assert_eq!(s.filtered_out + s.flows, all.len() as u64, "{f:?}");
        }
        eprintln!(
            "{} flows, {} dropped in user space",
            s.flows, s.filtered_out
        );
    }
}

#[test]
fn flush_all_family_and_filtered() {
    let Some((_ns, mut ct)) = live("flush") else {
        return;
    };
    let mix: Mix = "tcp=1,udp=1,tcp6=1".parse().unwrap();
    fill::fill(&mut ct, &FillOptions::new(300).mix(mix.clone())).unwrap();
    fill::fill(&mut ct, &FillOptions::new(60).mix(mix).start(300).mark(9)).unwrap();
    let count = |ct: &mut Conntrack| ct.count().unwrap();
    assert_eq!(count(&mut ct), 360);

    // Kernel-side filtered flush (mark).
    assert_eq!(
        ct.flush_filtered(&Filter::new(L3Family::UNSPEC).mark(9, !0))
            .unwrap(),
        None
    );
    assert_eq!(count(&mut ct), 300);
    assert!(
        ct.list(L3Family::UNSPEC)
            .unwrap()
            .iter()
            .all(|f| f.mark.unwrap_or(0) != 9)
    );

    // Tuple conditions: dump + per-flow delete.
    let sel =
        Filter::new(L3Family::INET).orig(TupleFilter::new().proto(L4Proto::TCP).dst_port(443));
    let before = ct.list(L3Family::UNSPEC).unwrap();
    let n = before.iter().filter(|f| sel.matches(*f)).count() as u64;
    assert!(n > 0);
    assert_eq!(ct.flush_filtered(&sel).unwrap(), Some(n));
    assert_eq!(count(&mut ct) as u64, 300 - n);

    // Family flush leaves the other family.
    ct.flush(L3Family::INET6).unwrap();
    let left = ct.list(L3Family::UNSPEC).unwrap();
    assert!(!left.is_empty() && left.iter().all(|f| f.family() == L3Family::INET));
    ct.flush(L3Family::UNSPEC).unwrap();
    assert_eq!(count(&mut ct), 0);
}

#[test]
fn stats_match_conntrack_cli() {
    let Some((ns, mut ct)) = live("stats") else {
        return;
    };
    fill::fill(&mut ct, &FillOptions::new(123)).unwrap();
    let ours = ct.stats().unwrap();
    let out = ns.command("conntrack").arg("-S").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let cli = parse_cli_stats_bytes(&out.stdout).unwrap();
    assert_eq!(ours.cpus.len(), cli.cpus.len());
    for (a, b) in ours.cpus.iter().zip(&cli.cpus) {
        assert_eq!(a.cpu, b.cpu);
        // Every counter the CLI printed, we decoded with the same value.
        for (c, v) in b.iter() {
            assert_eq!(a.get(c), Some(v), "cpu {:?} {c}", a.cpu);
        }
    }
    assert_eq!(ours.total().insert(), Some(123));
    let out = ns.command("conntrack").arg("-C").output().unwrap();
    let n = parse_count(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(ours.entries, Some(n));
    assert_eq!(n, 123);
    let max = conntrack_core::host::max_guard::read_max().unwrap();
    assert_eq!(ours.max_entries.map(u64::from), Some(max));
}

#[test]
fn dump_and_zero_counters_with_real_traffic() {
    let Some((ns, mut ct)) = live("zero") else {
        return;
    };
    // Packet-path tracking starts with a ruleset that uses conntrack.
    let st = ns
        .command("nft")
        .args(["add table inet t; add chain inet t c { type filter hook output priority 0; ct state new,established counter; }"])
        .status()
        .unwrap();
    assert!(st.success());
    let sysctl = ns
        .command("sysctl")
        .args(["-qw", "net.netfilter.nf_conntrack_acct=1"])
        .status()
        .unwrap();
    assert!(sysctl.success());
    Netns::named(ns.name())
        .run(|| {
            let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for _ in 0..5 {
                tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
            }
            Ok(())
        })
        .unwrap();
    let sum = |fs: &[Flow]| -> u64 {
        fs.iter()
            .filter(|f| f.proto() == L4Proto::UDP)
            .map(|f| f.counters_orig.map_or(0, |c| c.packets))
            .sum()
    };
    let (first, _) = ct
        .dump(&DumpRequest::of(DumpKind::ZeroCounters, L3Family::INET))
        .unwrap();
    assert_eq!(sum(&first), 5, "{first:?}");
    let (second, _) = ct.dump(&DumpRequest::table(L3Family::INET)).unwrap();
    assert_eq!(sum(&second), 0, "{second:?}");
    assert!(second.iter().any(|f| f.counters_orig.is_some()));
}

#[test]
fn dying_and_unconfirmed_lists_dump() {
    let Some((_ns, mut ct)) = live("lists") else {
        return;
    };
    fill::fill(&mut ct, &FillOptions::new(10)).unwrap();
    for kind in [DumpKind::Dying, DumpKind::Unconfirmed] {
        let (flows, s) = ct.dump(&DumpRequest::of(kind, L3Family::UNSPEC)).unwrap();
        // Nothing is dying or unconfirmed in an idle namespace.
        assert!(flows.is_empty(), "{kind:?}: {flows:?}");
        assert!(s.messages >= 1);
    }
}

#[test]
fn dump_during_churn() {
    let Some((ns, mut ct)) = live("churn") else {
        return;
    };
    let stable = 20_000u64;
    fill::fill(
        &mut ct,
        &FillOptions::new(stable).mix("tcp=1".parse().unwrap()),
    )
    .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let netns = Netns::named(ns.name());
    let (seen, churned) = std::thread::scope(|s| {
        let churn = s.spawn(|| {
            let mut c = Conntrack::open_in(&netns).unwrap();
            let mut rounds = 0u64;
            let opts = FillOptions::new(2000)
                .mix("udp=1".parse().unwrap())
                .start(1 << 20);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                fill::fill(&mut c, &opts).unwrap();
                c.flush_filtered(
                    &Filter::new(L3Family::INET).orig(TupleFilter::new().proto(L4Proto::UDP)),
                )
                .unwrap();
                rounds += 1;
            }
            rounds
        });
        let mut results = Vec::new();
        for policy in [DumpPolicy::Accept, DumpPolicy::Retry(2), DumpPolicy::Fail] {
            let r = ct.fold(
                &DumpRequest::table(L3Family::INET).policy(policy),
                HashMap::new,
                |m: &mut HashMap<Tuple, u32>, f| {
                    if f.orig().proto == L4Proto::TCP {
                        *m.entry(f.orig()).or_insert(0) += 1;
                    }
                },
            );
            results.push((policy, r));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (results, churn.join().unwrap())
    });
    assert!(churned > 0, "no churn happened");
    for (policy, r) in seen {
        match r {
            Ok((m, s)) => {
                // Entries present for the whole dump are seen exactly once.
                assert_eq!(m.len() as u64, stable, "{policy:?}");
                assert!(
                    m.values().all(|&n| n == 1),
                    "{policy:?}: an entry was repeated"
                );
                assert!(!s.interrupted || policy == DumpPolicy::Accept);
                eprintln!(
                    "{policy:?}: ok, interrupted={} attempts={} flows={}",
                    s.interrupted, s.attempts, s.flows
                );
            }
            Err(Error::DumpInterrupted { attempts, .. }) => {
                assert_ne!(policy, DumpPolicy::Accept);
                eprintln!("{policy:?}: interrupted after {attempts} attempt(s)");
            }
            Err(e) => panic!("{policy:?}: {e}"),
        }
    }
}

#[test]
fn fill_mix_and_kinds() {
    let Some((_ns, mut ct)) = live("fill") else {
        return;
    };
    let mix: Mix = "tcp=5,udp=3,icmp=1,tcp6=1,udp6=1,icmp6=1".parse().unwrap();
    let r = fill::fill(
        &mut ct,
        &FillOptions::new(12_000).mix(mix.clone()).batch(1000),
    )
    .unwrap();
    assert_eq!((r.created, r.failed), (12_000, 0));
    assert_eq!(r.datagrams, 12);
    // Filling the same flows again: every one is EEXIST.
    let r = fill::fill(&mut ct, &FillOptions::new(600).mix(mix.clone())).unwrap();
    assert_eq!(r.errors.get(&libc::EEXIST), Some(&600));
    let (per, _) = ct
        .fold(
            &DumpRequest::table(L3Family::UNSPEC),
            BTreeMap::new,
            |m, f| {
                let k = (f.orig().family(), f.orig().proto);
                *m.entry(k).or_insert(0u64) += 1;
            },
        )
        .unwrap();
    let want = |k: FlowKind| (0..12_000).filter(|&i| mix.kind_of(i) == k).count() as u64;
    assert_eq!(per[&(L3Family::INET, L4Proto::TCP)], want(FlowKind::Tcp));
    assert_eq!(per[&(L3Family::INET, L4Proto::UDP)], want(FlowKind::Udp));
    assert_eq!(per[&(L3Family::INET, L4Proto::ICMP)], want(FlowKind::Icmp));
    assert_eq!(per[&(L3Family::INET6, L4Proto::TCP)], want(FlowKind::Tcp6));
    assert_eq!(per[&(L3Family::INET6, L4Proto::UDP)], want(FlowKind::Udp6));
    assert_eq!(
        per[&(L3Family::INET6, L4Proto::ICMPV6)],
        want(FlowKind::Icmp6)
    );
}

#[test]
fn pipelined_fold_equals_fold() {
    let Some((_ns, mut ct)) = live("pipe") else {
        return;
    };
    let count = |ct: &mut Conntrack, pipelined: bool| {
        let req = DumpRequest::table(L3Family::UNSPEC);
        let agg = |m: &mut BTreeMap<String, u64>, f: &conntrack_netlink::wire::FlowView<'_>| {
            *m.entry(f.flow_state().to_string()).or_insert(0) += 1
        };
        if pipelined {
            ct.fold_pipelined(&req, BTreeMap::new, agg).unwrap()
        } else {
            ct.fold(&req, BTreeMap::new, agg).unwrap()
        }
    };
    // Empty table, then a table of many datagrams.
    let (m, s) = count(&mut ct, true);
    assert!(m.is_empty() && s.messages == 1, "{m:?} {s:?}");
    fill::fill(&mut ct, &FillOptions::new(30_000)).unwrap();
    let ahead = ct.socket().datagrams_read_ahead();
    let (a, sa) = count(&mut ct, false);
    // The plain fold read datagrams ahead (the socket's own receive); the
    // pipe receives on its own thread, without: both saw the same flows.
    assert!(ct.socket().datagrams_read_ahead() > ahead);
    let (b, sb) = count(&mut ct, true);
    assert_eq!(a, b);
    assert_eq!(sa.flows, 30_000);
    assert_eq!((sa.flows, sa.messages), (sb.flows, sb.messages));
    assert!(sb.datagrams > 10);
    // The socket is ready for anything afterwards.
    assert_eq!(ct.count().unwrap(), 30_000);
    let (b2, _) = count(&mut ct, true);
    assert_eq!(a, b2);
    // A filtered pipelined dump.
    let f = Filter::new(L3Family::INET).orig(TupleFilter::new().proto(L4Proto::UDP));
    let (n, s) = ct
        .fold_pipelined(&DumpRequest::filtered(f), || 0u64, |n, _| *n += 1)
        .unwrap();
    assert_eq!(n, 9_000);
    assert!(s.kernel_filtered);
}

#[test]
fn namespaces_and_socket_options() {
    if !testkit::live("namespaces_and_socket_options", NEEDS) {
        return;
    }
    // A missing namespace is NotFound, not a generic failure.
    match Conntrack::open_in(&Netns::named("ck-does-not-exist-42")) {
        Err(Error::NetnsOpen { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("{other:?}"),
    }
    let ns = TestNetns::new("opts");
    // Two namespaces are two tables; /proc/PID/ns/net works too.
    let mut a = Conntrack::open_in(&Netns::named(ns.name())).unwrap();
    fill::fill(&mut a, &FillOptions::new(5)).unwrap();
    let mut b = Conntrack::open_in(&Netns::pid(std::process::id())).unwrap();
    let mine: HashSet<_> = b.list(L3Family::UNSPEC).unwrap().iter().map(key).collect();
    assert!(!mine.contains(&key(&fill::synthetic_flow(FlowKind::Tcp, 0, 1))));
    assert_eq!(a.count().unwrap(), 5);
    // SO_RCVBUFFORCE past rmem_max (we are root).
    let cfg = SocketConfig::default()
        .netns(Netns::named(ns.name()))
        .rcvbuf(16 << 20);
    let c = Conntrack::with_config(&cfg).unwrap();
    assert!(c.socket().rcvbuf().unwrap() >= 16 << 20);
}
