//! The drop tracer against the incident lab, live (features `trace` and
//! `lab`): the lab's scenarios that make conntrack drop packets run with
//! the tracer attached to the router, and each record is checked against
//! the router's counters and the lab's addresses.
//!
//! - The tracer starts on the router once its namespace exists and before
//!   any packet (`Scenario::start_with`), so every drop of the run is
//!   seen; its records are classified on a thread as they come (a clash's
//!   winner is looked up while it is still in the table).
//! - When the incident shows (the lab's own condition on the counters),
//!   the traffic is stopped (`Running::stop_traffic`, the namespaces stay)
//!   and the test waits until the counters and the tracer are at rest:
//!   two reads of the counters are equal with no record written between
//!   them. The records per reason then must equal the counters' increase
//!   since the traffic started, read at that same moment: `drop`,
//!   `insert_failed`, `chaintoolong` (each reason's counts are in
//!   `conntrack_netlink::trace`'s table); `early_drop` evicts an entry
//!   and drops no packet, so it must have no record.
//! - The tuples must be the lab's: its clients' and servers' addresses,
//!   the scenario's port and protocol, the router's MASQUERADE address in
//!   the reply tuple, the router's namespace.
//!
//! One scenario at a time (they compete for the two CPUs and some change
//! global sysctls, under the lab's global-sysctl lock). Skips, printing
//! why, without root, `ip`, `nft`, BTF or BPF tracing, unless
//! `CONNTRACK_KIT_REQUIRE_LIVE=1`; a scenario this kernel cannot show
//! prints the kernel's reason and passes.

use conntrack_core::testkit::{self, Need};
use conntrack_kit::ct_core::{Counter, L4Proto, L4Tuple};
use conntrack_kit::netlink::lab::{Running, Scenario, StartOptions};
use conntrack_kit::netlink::trace::{DropReason, DropRecord, TraceConfig, TraceError, Tracer};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod support;

static SERIAL: Mutex<()> = Mutex::new(());

const COUNTERS: [Counter; 4] = [
    Counter::Drop,
    Counter::InsertFailed,
    Counter::EarlyDrop,
    Counter::ChainTooLong,
];

/// The lab's addresses (conntrack_netlink::lab::topology).
const C0: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const C1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const S0: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
/// The router's address on s0's link: MASQUERADE's source.
const ROUTER_S0: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);

fn live(test: &str) -> bool {
    testkit::live(
        test,
        &[
            Need::Root,
            Need::Tool("ip"),
            Need::Tool("nft"),
            Need::Path("/sys/kernel/btf/vmlinux"),
            Need::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
        ],
    )
}

/// The tracer on its collecting thread: classifies records as they come
/// until told to stop, then hands the tracer back.
struct Collector {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Tracer, Vec<DropRecord>)>,
}

impl Collector {
    fn spawn(mut tracer: Tracer) -> Collector {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !flag.load(Ordering::Acquire) {
                if let Some(r) = tracer.next(Duration::from_millis(100)) {
                    out.push(r.expect("record decodes"));
                }
            }
            (tracer, out)
        });
        Collector { stop, thread }
    }

    fn finish(self) -> (Tracer, Vec<DropRecord>) {
        self.stop.store(true, Ordering::Release);
        self.thread.join().expect("collector thread")
    }
}

/// What a traced scenario produced, at rest.
struct Traced {
    records: Vec<DropRecord>,
    /// The router's counters' increase since the traffic started, read
    /// when the tracer had delivered every record.
    deltas: BTreeMap<Counter, u64>,
    router_inode: u32,
    lost: u64,
}

impl Traced {
    fn by_reason(&self) -> BTreeMap<DropReason, u64> {
        let mut m = BTreeMap::new();
        for r in &self.records {
            *m.entry(r.reason).or_insert(0) += 1;
        }
        m
    }

    fn count(&self, reason: DropReason) -> u64 {
        self.by_reason().get(&reason).copied().unwrap_or(0)
    }

    fn delta(&self, c: Counter) -> u64 {
        self.deltas[&c]
    }

    /// Conntrack's own drops (not ruleset verdicts).
    fn conntrack_records(&self) -> impl Iterator<Item = &DropRecord> {
        self.records
            .iter()
            .filter(|r| !matches!(r.reason, DropReason::Other(_)))
    }

    /// Records per reason equal the counters, each reason counting as the
    /// kernel does (trace module's table): `drop` = table full + clashes,
    /// `insert_failed` = clashes + chain cap + dying, `chaintoolong` =
    /// chain cap; `early_drop` evictions drop no packet.
    fn check_counts(&self) {
        let n = |r| self.count(r);
        assert_eq!(
            n(DropReason::TableFull) + n(DropReason::UnresolvedClash),
            self.delta(Counter::Drop),
            "table-full and clash records = drop"
        );
        assert_eq!(
            n(DropReason::UnresolvedClash) + n(DropReason::ChainTooLong) + n(DropReason::Dying),
            self.delta(Counter::InsertFailed),
            "clash, chain-cap and dying records = insert_failed"
        );
        assert_eq!(
            n(DropReason::ChainTooLong),
            self.delta(Counter::ChainTooLong),
            "chain-cap records = chaintoolong"
        );
        // Every conntrack record is one of the counts above: none for
        // early_drop's evictions.
        assert_eq!(
            self.conntrack_records().count() as u64,
            self.delta(Counter::Drop) + self.delta(Counter::InsertFailed)
                - n(DropReason::UnresolvedClash),
        );
        assert_eq!(self.lost, 0, "records lost in the ring buffer");
        for r in self.conntrack_records() {
            assert_eq!(r.netns(), self.router_inode, "the router's namespace");
        }
    }
}

/// The lab's options, with more time for the incident to show: on a
/// loaded 2-core machine the chain-too-long fill and the races take longer
/// than the lab's default 45 s allows (a start that timed out was seen
/// while a benchmark and builds ran).
fn options() -> StartOptions {
    let mut o = StartOptions::default();
    o.ready_timeout = Duration::from_secs(120);
    o
}

fn deltas(run: &mut Running) -> BTreeMap<Counter, u64> {
    COUNTERS
        .into_iter()
        .map(|c| (c, run.delta(c).expect("router counters")))
        .collect()
}

/// Runs `name` with the tracer on its router until its incident shows,
/// stops the traffic and waits for rest. `None`: skipped (printed why).
fn traced(test: &str, name: &str) -> Option<Traced> {
    let scenario = Scenario::find(name).expect("a scenario of that name");
    let mut started: Option<Result<(Collector, u32), TraceError>> = None;
    let result = scenario.start_with(&options(), |lab| {
        let ns = lab.router_ns();
        let inode = {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(ns.path().expect("a named namespace"))
                .expect("router namespace")
                .ino() as u32
        };
        // Ruleset verdicts too: they must not be taken for conntrack's.
        let cfg = TraceConfig::default().with_netns(ns).with_ruleset(true);
        started = Some(Tracer::start(&cfg).map(|t| (Collector::spawn(t), inode)));
    });
    let mut run = match result {
        Ok(r) => r,
        Err(e) if e.is_unsupported() => {
            println!("SKIP {test}: {e}");
            return None;
        }
        Err(e) => panic!("{name}: {e}"),
    };
    let (collector, router_inode) = match started.expect("the hook ran") {
        Ok(c) => c,
        Err(e) if e.is_unavailable() && !testkit::live_required() => {
            println!("SKIP {test}: {e}");
            return None;
        }
        Err(e) => panic!("{test}: {e}"),
    };
    run.stop_traffic().expect("stop the traffic");
    let (mut tracer, mut records) = collector.finish();
    // At rest: the counters read twice with nothing recorded between.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut prev: Option<BTreeMap<Counter, u64>> = None;
    let deltas = loop {
        let got: Vec<DropRecord> = tracer
            .drain()
            .into_iter()
            .map(|r| r.expect("record decodes"))
            .collect();
        let quiet = got.is_empty();
        records.extend(got);
        let now = deltas(&mut run);
        if quiet && prev.as_ref() == Some(&now) {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: drops still happening 60 s after the traffic stopped ({now:?})"
        );
        prev = Some(now);
    };
    let t = Traced {
        lost: tracer.lost(),
        records,
        deltas,
        router_inode,
    };
    drop(tracer);
    // What the assertions below would only count: the records of a
    // reason the scenario does not make, in full.
    for r in t
        .records
        .iter()
        .filter(|r| matches!(r.reason, DropReason::Dying | DropReason::Other(_)))
    {
        println!(
            "{name}: {} record: state {:?}, cpu {}, at {:?}, orig {:?}, reply {:?}, status {:?}",
            r.reason, r.raw.state, r.raw.cpu, r.location, r.raw.orig, r.raw.reply, r.raw.status
        );
    }
    let summary = run.stop().expect("stop the scenario");
    println!(
        "{name}: counters {:?}; records {:?}\n{summary}",
        t.deltas,
        t.by_reason()
    );
    Some(t)
}

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn dport(r: &DropRecord) -> u16 {
    match r.raw.orig.expect("original tuple").l4 {
        L4Tuple::Ports { dst, .. } => dst,
        l4 => panic!("{l4:?}"),
    }
}

#[test]
fn table_full_drops_in_the_lab_are_traced_one_for_one() {
    let test = "table_full_drops_in_the_lab_are_traced_one_for_one";
    if !live(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(t) = traced(test, "table-full") else {
        return;
    };
    t.check_counts();
    assert!(t.delta(Counter::Drop) >= 20, "{:?}", t.deltas);
    assert_eq!(t.count(DropReason::TableFull), t.delta(Counter::Drop));
    // early_drop evicted some unassured entries (the lab's condition):
    // packets went on, no record says otherwise.
    assert!(t.delta(Counter::EarlyDrop) >= 1);
    for r in t.conntrack_records() {
        // No entry existed: the tuple is the SYN's, client c0 to s0:80.
        let o = r.raw.orig.expect("packet tuple");
        assert_eq!((o.src, o.dst, o.proto), (v4(C0), v4(S0), L4Proto::TCP));
        assert_eq!(dport(r), 80);
        assert_eq!(r.raw.reply, None, "no entry, no reply tuple");
    }
}

/// Both NAT port races: the loser's reply tuple is the winner's (same
/// MASQUERADE mapping), its original tuple the other client's.
fn check_nat_race(t: &Traced, proto: L4Proto, port: u16) {
    t.check_counts();
    let clashes = t.count(DropReason::UnresolvedClash);
    assert!(clashes >= 20, "{:?}", t.deltas);
    assert_eq!(clashes, t.delta(Counter::InsertFailed));
    assert_eq!(clashes, t.delta(Counter::Drop));
    let mut winners = 0;
    for r in t.conntrack_records() {
        assert_eq!(r.reason, DropReason::UnresolvedClash);
        let o = r.raw.orig.expect("entry tuple");
        assert!(o.src == v4(C0) || o.src == v4(C1), "{o:?}");
        assert_eq!((o.dst, o.proto), (v4(S0), proto));
        assert_eq!(dport(r), port);
        let reply = r.raw.reply.expect("reply tuple");
        assert_eq!((reply.src, reply.dst), (v4(S0), v4(ROUTER_S0)), "SNAT");
        // The winner holds the same mapping, when ctnetlink still had it
        // at the lookup. The lookup runs after the drop, on the reader's
        // thread: on a quiet machine a few in a thousand TCP winners were
        // gone by then, under load (a full suite beside builds) 31 % were
        // (189 of 272 found). The reason comes from the counters, not
        // from the lookup, so only some winner must be found.
        if let Some(w) = r.winner_reply {
            assert_eq!(w, reply, "the winner holds the mapping");
            winners += 1;
        }
    }
    assert!(winners > 0, "no winner found for any of {clashes} clashes");
}

#[test]
fn nat_port_race_clashes_in_the_lab_are_traced_one_for_one() {
    let test = "nat_port_race_clashes_in_the_lab_are_traced_one_for_one";
    if !live(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(t) = traced(test, "nat-race") else {
        return;
    };
    check_nat_race(&t, L4Proto::TCP, 80);
}

#[test]
fn udp_snat_race_clashes_in_the_lab_are_traced_one_for_one() {
    let test = "udp_snat_race_clashes_in_the_lab_are_traced_one_for_one";
    if !live(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(t) = traced(test, "udp-snat-race") else {
        return;
    };
    check_nat_race(&t, L4Proto::UDP, 53);
}

#[test]
fn chain_cap_refusals_in_the_lab_are_traced_one_for_one() {
    let test = "chain_cap_refusals_in_the_lab_are_traced_one_for_one";
    if !live(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(t) = traced(test, "chain-too-long") else {
        return;
    };
    t.check_counts();
    let capped = t.count(DropReason::ChainTooLong);
    assert!(capped >= 50, "{:?}", t.deltas);
    assert_eq!(capped, t.delta(Counter::ChainTooLong));
    assert_eq!(capped, t.delta(Counter::InsertFailed));
    assert_eq!(t.delta(Counter::Drop), 0);
    for r in t.conntrack_records() {
        assert_eq!(r.reason, DropReason::ChainTooLong);
        let o = r.raw.orig.expect("entry tuple");
        assert_eq!((o.src, o.dst, o.proto), (v4(C0), v4(S0), L4Proto::UDP));
        assert_eq!(dport(r), 53);
        let reply = r.raw.reply.expect("reply tuple");
        assert_eq!((reply.src, reply.dst), (v4(S0), v4(ROUTER_S0)), "SNAT");
        assert_eq!(r.winner_reply, None, "no entry holds a refused flow");
    }
}

/// `doctor --netns ROUTER --trace 3 --json` on the lab's TCP NAT race: the
/// confirm-time finding's leading cause is the NAT port race, confirmed by
/// the traced clashes it cites (the lab's server and port, after source
/// NAT), and the plan's first fix for it is fully-random NAT.
#[test]
fn doctor_trace_confirms_the_nat_race_from_the_records() {
    let test = "doctor_trace_confirms_the_nat_race_from_the_records";
    if !live(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let doctor = support::examples_dir_with(&["doctor"], &["trace"]).join("doctor");
    let run = match Scenario::find("nat-race")
        .expect("scenario")
        .start(&options())
    {
        Ok(r) => r,
        Err(e) if e.is_unsupported() => {
            println!("SKIP {test}: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let out = std::process::Command::new(&doctor)
        .args([
            "--netns",
            run.router(),
            "--json",
            "--window",
            "3s",
            "--trace",
            "3",
            "--no-progress",
        ])
        .output()
        .expect("run doctor");
    run.stop().expect("stop the scenario");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let notes = report["notes"].to_string();
    assert!(notes.contains("drops traced for 3 s"), "{notes}");
    let confirm = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["id"] == "confirm-failures")
        .expect("confirm-failures");
    let lead = &confirm["causes"][0];
    assert_eq!(lead["cause"], "nat-port-race", "{confirm:#}");
    assert_eq!(lead["likelihood"], "confirmed", "{lead:#}");
    let cited = lead["supports"][0].as_str().expect("a citation");
    println!("{cited}");
    assert!(cited.starts_with("traced: "), "{cited}");
    assert!(
        cited.contains("unresolved clashes in the last 3 s: tcp from 198.18."),
        "{cited}"
    );
    assert!(
        cited.contains("to 198.19.0.2 (100%) port 80 (100%), 100% after source NAT"),
        "{cited}"
    );
    let actions: Vec<&str> = report["plan"]["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert!(actions.contains(&"nat:fully-random"), "{actions:?}");
}

/// Runs `args` with `ip` in namespace `ns`.
fn ip_in(ns: &str, args: &str) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ip"])
        .args(args.split_whitespace())
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip {args}: {out:?}");
}

fn router_counter(ct: &mut conntrack_kit::netlink::Conntrack, c: Counter) -> u64 {
    u64::from(
        ct.stats()
            .expect("router stats")
            .total()
            .get(c)
            .unwrap_or(0),
    )
}

/// MASQUERADE out an interface with no IPv4 address, with no other
/// universe-scope address in the router to fall back on: the lab's router
/// loses its address toward s0 (a device route keeps s0 reachable) and its
/// client-side addresses become scope link, so inet_select_addr(s0, ...,
/// RT_SCOPE_UNIVERSE) finds nothing and nf_nat_masquerade_ipv4() returns
/// NF_DROP ("s0 ate my IP address", net/netfilter/nf_nat_masquerade.c)
/// for each new flow toward the servers. Every such drop is a
/// `NatFailure` record at POSTROUTING carrying the client's tuple, with no
/// conntrack counter moved; forward-chain drops of new flows (the ruleset)
/// make no record without `include_ruleset` and are counted by
/// `Tracer::unrecorded` instead.
#[test]
fn masquerade_without_an_address_is_traced_as_nat_failure() {
    use conntrack_kit::ct_core::host::GlobalSysctlShare;
    use conntrack_kit::netlink::lab::{Lab, LabSpec};
    use conntrack_kit::netlink::{Conntrack, Netns};
    let test = "masquerade_without_an_address_is_traced_as_nat_failure";
    if !live(test) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // No other lab may lower nf_conntrack_max meanwhile.
    let _globals = GlobalSysctlShare::acquire().expect("global sysctl lock");
    let lab = Lab::build(&LabSpec::default()).expect("build the lab");
    let router = lab.router().to_owned();
    let (client, server) = (&lab.clients()[0], &lab.servers()[0]);
    ip_in(
        &router,
        &format!("addr del {}/24 dev {}", server.gateway, server.router_iface),
    );
    ip_in(
        &router,
        &format!("route add 198.19.0.0/24 dev {}", server.router_iface),
    );
    ip_in(
        &router,
        &format!("addr del {}/24 dev {}", client.gateway, client.router_iface),
    );
    ip_in(
        &router,
        &format!(
            "addr add {}/24 dev {} scope link",
            client.gateway, client.router_iface
        ),
    );
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &router, "nft"])
        .arg("add rule ip lab forward udp dport 10 drop")
        .output()
        .expect("run nft");
    assert!(out.status.success(), "nft: {out:?}");
    let ns = lab.router_ns();
    let router_inode = {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(ns.path().expect("a named namespace"))
            .expect("router namespace")
            .ino() as u32
    };
    let mut tracer = match Tracer::start(&TraceConfig::default().with_netns(ns.clone())) {
        Ok(t) => t,
        Err(e) if e.is_unavailable() && !testkit::live_required() => {
            println!("SKIP {test}: {e}");
            return;
        }
        Err(e) => panic!("{test}: {e}"),
    };
    let mut ct = Conntrack::open_in(&ns).expect("router ctnetlink");
    let before: Vec<u64> = COUNTERS
        .iter()
        .map(|&c| router_counter(&mut ct, c))
        .collect();
    const NAT_FLOWS: u16 = 40;
    const RULESET_FLOWS: u16 = 25;
    let send = |port: u16, n: u16| {
        for i in 0..n {
            // A new flow each: the source port differs.
            let s = Netns::named(&client.netns)
                .run(|| {
                    Ok(
                        std::net::UdpSocket::bind((client.addr, 41000 + port * 100 + i))
                            .expect("bind"),
                    )
                })
                .expect("enter client");
            s.send_to(b"q", (server.addr, port)).expect("send");
        }
    };
    send(53, NAT_FLOWS);
    send(10, RULESET_FLOWS);
    // Wait for every NAT record and every ruleset drop to be accounted.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut records: Vec<DropRecord> = Vec::new();
    loop {
        records.extend(tracer.drain().into_iter().map(|r| r.expect("decodes")));
        if records.len() >= usize::from(NAT_FLOWS)
            && tracer.unrecorded() >= u64::from(RULESET_FLOWS)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} records, {} unrecorded: {records:#?}",
            records.len(),
            tracer.unrecorded()
        );
        // The next drain waits on the tracer's ring buffer (Tracer::sync).
    }
    if let Some(r) = records.first() {
        println!(
            "{}: state {:?}, hook {:?}, freed at {:?}, counted {:?}, orig {:?}, status {:?}",
            r.reason, r.raw.state, r.hook, r.location, r.raw.counted, r.raw.orig, r.raw.status
        );
    }
    assert_eq!(
        records.len(),
        usize::from(NAT_FLOWS),
        "one record per NAT drop"
    );
    assert_eq!(tracer.unrecorded(), u64::from(RULESET_FLOWS));
    let mut ports = std::collections::BTreeSet::new();
    for r in &records {
        assert_eq!(r.reason, DropReason::NatFailure, "{r:?}");
        assert_eq!(
            r.hook,
            Some(conntrack_kit::netlink::trace::NfHook::PostRouting)
        );
        assert_eq!(r.netns(), router_inode);
        let o = r.raw.orig.expect("entry tuple");
        assert_eq!(
            (o.src, o.dst, o.proto),
            (v4(client.addr), v4(server.addr), L4Proto::UDP)
        );
        assert_eq!(dport(r), 53);
        // No mapping was made: the reply tuple is the original's inverse.
        assert_eq!(r.raw.reply, o.inverse());
        if let L4Tuple::Ports { src, .. } = o.l4 {
            ports.insert(src);
        }
    }
    assert_eq!(
        ports.len(),
        usize::from(NAT_FLOWS),
        "every flow's own record"
    );
    // NAT's drops move no conntrack counter.
    let after: Vec<u64> = COUNTERS
        .iter()
        .map(|&c| router_counter(&mut ct, c))
        .collect();
    assert_eq!(before, after, "{COUNTERS:?}");
}
