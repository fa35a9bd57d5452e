//! Live test of the drop tracer (feature `trace`): real drops of two
//! reasons, each in a namespace of its own, and the records checked
//! against the kernel's counters and the tuples the test sent.
//!
//! - Table full: a namespace fills its table with UDP flows out of a veth
//!   pair, `nf_conntrack_max` is lowered to that count (global: held by
//!   [`GlobalSysctlGuard`] for the few milliseconds of the
//!   sends, then restored), and more new flows are sent: each is refused
//!   (`drop`).
//! - Unresolved clash: two threads send the identical first TCP SYN of a
//!   new flow at the same moment, round after round, through raw sockets
//!   (TCP has no `allow_clash`: the entry confirmed second is dropped,
//!   counting `drop` and `insert_failed`).
//!
//! Skips (printing why) without root, `ip`, BTF or BPF tracing support,
//! unless `CONNTRACK_KIT_REQUIRE_LIVE=1`, which turns a skip into a
//! failure.

use conntrack_core::host::{GlobalSysctl, GlobalSysctlGuard, GlobalSysctlShare};
use conntrack_core::stats::Counter;
use conntrack_core::testkit::TestNetns;
use conntrack_core::testkit::{self, Need};
use conntrack_core::{L4Proto, L4Tuple, Tuple};
use conntrack_netlink::trace::{DropReason, DropRecord, TraceConfig, Tracer};
use conntrack_netlink::{Conntrack, Netns};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NEEDS: &[Need<'static>] = &[
    Need::Root,
    Need::Tool("ip"),
    Need::Tool("nft"),
    Need::Path("/sys/kernel/btf/vmlinux"),
    Need::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
];

/// The scenarios change global state (`nf_conntrack_max`) that the other
/// one's namespace would feel: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Starts the tracer on `ns`, or says why it cannot (a skip, or a failure
/// under CONNTRACK_KIT_REQUIRE_LIVE=1).
fn tracer(test: &str, ns: &TestNetns) -> Option<Tracer> {
    let cfg = TraceConfig::default().with_netns(Netns::named(ns.name()));
    match Tracer::start(&cfg) {
        Ok(t) => Some(t),
        Err(e) if e.is_unavailable() && !testkit::live_required() => {
            eprintln!("SKIP {test}: {e}");
            None
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

/// A namespace with a veth pair, `addr`/24 on one end and a static
/// neighbour `peer` on it (no ARP): packets to `peer` leave through the
/// pair and end at the other end, which has no address. Unshared: each
/// caller already holds the global-sysctl lock (one of them exclusively).
fn netns_with_link(tag: &str, addr: &str, peer: &str) -> TestNetns {
    let ns = TestNetns::unshared(tag);
    for args in [
        vec!["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        vec!["addr", "add", addr, "dev", "v0"],
        vec!["link", "set", "v0", "up"],
        vec!["link", "set", "v1", "up"],
        vec![
            "neigh",
            "add",
            peer,
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            "v0",
        ],
    ] {
        let out = ns.command("ip").args(&args).output().expect("run ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    }
    // Conntrack runs in a namespace once a rule needs it.
    let out = ns
        .command("nft")
        .args([
            "add table inet ck; add chain inet ck out { type filter hook output priority 0; }; add rule inet ck out ct state new accept",
        ])
        .output()
        .expect("run nft");
    assert!(out.status.success(), "nft: {out:?}");
    ns
}

fn counters(ct: &mut Conntrack) -> BTreeMap<Counter, u64> {
    let total = ct.stats().expect("ctnetlink stats").total();
    [
        Counter::Drop,
        Counter::InsertFailed,
        Counter::EarlyDrop,
        Counter::ChainTooLong,
    ]
    .into_iter()
    .map(|c| (c, u64::from(total.get(c).unwrap_or(0))))
    .collect()
}

fn delta(a: &BTreeMap<Counter, u64>, b: &BTreeMap<Counter, u64>, c: Counter) -> u64 {
    b[&c] - a[&c]
}

fn by_reason(records: &[DropRecord]) -> BTreeMap<DropReason, u64> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r.reason).or_insert(0) += 1;
    }
    m
}

fn drain(t: &mut Tracer) -> Vec<DropRecord> {
    t.drain()
        .into_iter()
        .map(|r| r.expect("record decodes"))
        .collect()
}

#[test]
fn table_full_drops_are_attributed_with_their_tuples() {
    let test = "table_full_drops_are_attributed_with_their_tuples";
    if !testkit::live(test, NEEDS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Other processes (tests, labs) change the global sysctls too; this
    // test lowers nf_conntrack_max for every namespace, so it holds them
    // exclusively.
    let mut globals = GlobalSysctlGuard::exclusive().expect("global sysctl lock");
    let ns = netns_with_link("ck-trace-full", "10.99.0.1/24", "10.99.0.2");
    let Some(mut tracer) = tracer(test, &ns) else {
        return;
    };
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    // One UDP socket, many destination ports: one new flow per port.
    let sock = Netns::named(ns.name())
        .run(|| Ok(UdpSocket::bind("10.99.0.1:0").expect("bind")))
        .expect("enter namespace");
    let sport = sock.local_addr().unwrap().port();
    let dst = |port: u16| SocketAddrV4::new(Ipv4Addr::new(10, 99, 0, 2), port);
    const FILL: u16 = 40;
    const REFUSED: u16 = 60;
    for p in 0..FILL {
        sock.send_to(b"x", dst(20000 + p)).expect("fill send");
    }
    assert_eq!(ct.count().unwrap(), u32::from(FILL));
    let before = counters(&mut ct);
    let mut refused = 0;
    // Global: every namespace is capped until restored.
    globals
        .set(GlobalSysctl::Max, u64::from(FILL))
        .expect("lower nf_conntrack_max");
    for p in 0..REFUSED {
        if sock.send_to(b"y", dst(30000 + p)).is_err() {
            refused += 1; // NF_DROP on output: EPERM
        }
    }
    globals.restore().expect("restore nf_conntrack_max");
    let after = counters(&mut ct);
    let records = drain(&mut tracer);
    let reasons = by_reason(&records);
    let drops = delta(&before, &after, Counter::Drop);
    eprintln!(
        "table full: {refused} sends refused; counter deltas drop {drops}, early_drop {}; records {reasons:?}",
        delta(&before, &after, Counter::EarlyDrop)
    );
    assert!(drops > 0, "no table-full drop happened");
    assert_eq!(
        reasons.get(&DropReason::TableFull).copied().unwrap_or(0),
        drops,
        "records per reason must equal the drop counter delta"
    );
    assert_eq!(records.len() as u64, drops, "no record of another reason");
    for r in &records {
        let o = r.raw.orig.expect("packet tuple");
        assert_eq!(o.src, "10.99.0.1".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(o.dst, "10.99.0.2".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(o.proto, L4Proto::UDP);
        match o.l4 {
            L4Tuple::Ports { src, dst } => {
                assert_eq!(src, sport);
                assert!((30000..30000 + REFUSED).contains(&dst), "port {dst}");
            }
            l4 => panic!("{l4:?}"),
        }
        assert_eq!(r.netns(), ns_inode(&ns));
    }
    assert_eq!(tracer.lost(), 0);
}

fn ns_inode(ns: &TestNetns) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(Netns::named(ns.name()).path().unwrap())
        .unwrap()
        .ino() as u32
}

/// An IPv4 + TCP SYN from 10.98.0.1:`sport` to 10.98.0.2:80, checksums
/// filled in (the kernel fills the IP one for IP_HDRINCL).
fn syn(sport: u16) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&[10, 98, 0, 1]);
    p[16..20].copy_from_slice(&[10, 98, 0, 2]);
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&80u16.to_be_bytes());
    t[4..8].copy_from_slice(&1u32.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&1024u16.to_be_bytes());
    // TCP checksum over the pseudo header.
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&[10, 98, 0, 1, 10, 98, 0, 2, 0, 6, 0, 20]);
    add(&p[20..40]);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[36..38].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p
}

#[test]
fn tcp_clashes_are_attributed_with_their_tuples() {
    let test = "tcp_clashes_are_attributed_with_their_tuples";
    if !testkit::live(test, NEEDS) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // A shrunk bucket count elsewhere would turn clashes into chain caps.
    let _globals = GlobalSysctlShare::acquire().expect("global sysctl lock");
    let ns = netns_with_link("ck-trace-clash", "10.98.0.1/24", "10.98.0.2");
    let Some(mut tracer) = tracer(test, &ns) else {
        return;
    };
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    let raw = || -> Socket {
        Netns::named(ns.name())
            .run(|| {
                let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))
                    .expect("raw socket");
                s.set_header_included_v4(true).expect("IP_HDRINCL");
                Ok(s)
            })
            .expect("enter namespace")
    };
    let socks = [raw(), raw()];
    let before = counters(&mut ct);
    // Rounds: both threads meet, then send the same SYN (a new source
    // port per round). Stops at a wanted number of clashes (counted by the
    // kernel) or a deadline.
    const WANT: u64 = 20;
    const ROUNDS: u64 = 30_000;
    let ready = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let dst = SockAddr::from(SocketAddrV4::new(Ipv4Addr::new(10, 98, 0, 2), 80));
    let deadline = Instant::now() + Duration::from_secs(30);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sent = std::thread::scope(|s| {
        let hs: Vec<_> = socks
            .iter()
            .enumerate()
            .map(|(i, sock)| {
                let (ready, stop, dst, before) = (&ready, &stop, &dst, &before);
                let (ns, cpus) = (&ns, cpus);
                s.spawn(move || {
                    // Different CPUs, so that both first packets are in
                    // flight at once (a machine with one CPU cannot clash).
                    let mut set = nix::sched::CpuSet::new();
                    if set.set(i % cpus).is_ok() {
                        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
                    }
                    let mut watch =
                        (i == 0).then(|| Conntrack::open_in(&Netns::named(ns.name())).unwrap());
                    let mut r = 0u64;
                    while r < ROUNDS {
                        r += 1;
                        // A two-party barrier: round r starts when both
                        // threads have arrived.
                        ready.fetch_add(1, Ordering::AcqRel);
                        let mut spins = 0u32;
                        while ready.load(Ordering::Acquire) < 2 * r {
                            if stop.load(Ordering::Acquire) {
                                return r - 1;
                            }
                            spins += 1;
                            if spins.is_multiple_of(1024) {
                                std::thread::yield_now();
                            }
                            std::hint::spin_loop();
                        }
                        let _ = sock.send_to(&syn(1024 + (r % 60000) as u16), dst);
                        if let Some(ct) = watch.as_mut()
                            && r.is_multiple_of(1000)
                            && (delta(before, &counters(ct), Counter::InsertFailed) >= WANT
                                || Instant::now() > deadline)
                        {
                            stop.store(true, Ordering::Release);
                            return r;
                        }
                    }
                    stop.store(true, Ordering::Release);
                    r
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    let after = counters(&mut ct);
    let records = drain(&mut tracer);
    let reasons = by_reason(&records);
    let (drops, failed) = (
        delta(&before, &after, Counter::Drop),
        delta(&before, &after, Counter::InsertFailed),
    );
    eprintln!(
        "clash: {sent} SYNs sent; counter deltas drop {drops}, insert_failed {failed}, chaintoolong {}; records {reasons:?}",
        delta(&before, &after, Counter::ChainTooLong)
    );
    assert!(failed > 0, "no clash in {sent} SYNs");
    assert_eq!(drops, failed, "a TCP clash counts drop and insert_failed");
    assert_eq!(
        reasons
            .get(&DropReason::UnresolvedClash)
            .copied()
            .unwrap_or(0),
        failed,
        "records per reason must equal the insert_failed delta"
    );
    assert_eq!(records.len() as u64, failed, "no record of another reason");
    let mut ports = HashSet::new();
    for r in &records {
        let o = r.raw.orig.expect("entry tuple");
        let expect = |sport| {
            Tuple::new(
                "10.98.0.1".parse().unwrap(),
                "10.98.0.2".parse().unwrap(),
                L4Proto::TCP,
                L4Tuple::Ports {
                    src: sport,
                    dst: 80,
                },
            )
        };
        let L4Tuple::Ports { src, .. } = o.l4 else {
            panic!("{o:?}");
        };
        assert_eq!(o, expect(src));
        assert_eq!(r.raw.reply, o.inverse(), "no NAT here");
        assert_eq!(
            r.winner_reply,
            o.inverse(),
            "the winner holds the same flow"
        );
        assert!(ports.insert(src), "one loser per round");
        assert_eq!(r.netns(), ns_inode(&ns));
    }
    assert_eq!(tracer.lost(), 0);
}
