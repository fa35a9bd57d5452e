//! The mirror's cost against re-dumping.
//!
//! 1. `mirror/apply` (criterion, no privileges): applying 10,000 decoded
//!    events to a 100,000-entry compact `Table`, against the baseline of
//!    a `HashMap<(Tuple, zone), Flow>` fed with `FlowView::to_owned`.
//! 2. Live (root only, printed after criterion): a namespace filled with
//!    1,000,000 entries and changed at 10,000 changes/s (4,000 creates,
//!    4,000 deletes, 2,000 mark updates per second, sent unacknowledged in
//!    one datagram every 10 ms). For 10 s a `Mirror`
//!    keeps it current; for the next 10 s, under the same churn, the
//!    table is dumped once per second instead. Each side's CPU time is
//!    read from its thread's `/proc/thread-self/schedstat` (user and
//!    kernel time, so the dump's table walk counts) and reported as CPU
//!    seconds per wall second; the target is mirror < 5 % of re-dump.
//!
//! `cargo bench --bench mirror` (results in BENCHMARKS.md). The live part
//! needs about 2 GiB of kernel memory and raises the global
//! `nf_conntrack_max` to 1,200,000 while it runs (restored afterwards).

use conntrack_kit::ct_core::host::ConntrackMaxGuard;
use conntrack_kit::ct_core::testkit::TestNetns;
use conntrack_kit::ct_core::{Flow, L3Family, Tuple};
use conntrack_kit::netlink::event::{Event, EventKind, Item, for_each_item};
use conntrack_kit::netlink::fill::{FillOptions, FlowKind, fill, synthetic_flow};
use conntrack_kit::netlink::mirror::{Mirror, MirrorConfig, Table};
use conntrack_kit::netlink::request;
use conntrack_kit::netlink::wire::{encode, message::*};
use conntrack_kit::netlink::{
    Conntrack, DumpRequest, Netns, Socket, SocketConfig, Transport, Update,
};
use criterion::{Criterion, Throughput};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn datagram(f: &Flow, ty: u8, flags: u16) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    let m = encode::begin_message(&mut buf, ct_type(ty), flags, 0, 2);
    encode::encode_flow_as_kernel(f, &mut buf);
    encode::finish_message(&mut buf, m);
    buf
}

fn with_event(d: &[u8], mut f: impl FnMut(&Event<'_>)) {
    for_each_item(d, |i| {
        if let Item::Event(e) = i {
            f(&e)
        }
    });
}

fn apply_benches(c: &mut Criterion) {
    let kind = |i: u64| {
        if i % 4 == 3 {
            FlowKind::Udp
        } else {
            FlowKind::Tcp
        }
    };
    let initial: Vec<Vec<u8>> = (0..100_000u64)
        .map(|i| datagram(&synthetic_flow(kind(i), i, 600), IPCTNL_MSG_CT_NEW, 0))
        .collect();
    // 10,000 changes: a third new entries, a third mark updates, a third
    // deletions of initial entries.
    let changes: Vec<Vec<u8>> = (0..10_000u64)
        .map(|i| match i % 3 {
            0 => {
                let j = 200_000 + i;
                datagram(
                    &synthetic_flow(kind(j), j, 600),
                    IPCTNL_MSG_CT_NEW,
                    NLM_F_CREATE | NLM_F_EXCL,
                )
            }
            1 => {
                let mut f = synthetic_flow(kind(i * 7), i * 7, 600);
                f.mark = Some(i as u32);
                datagram(&f, IPCTNL_MSG_CT_NEW, 0)
            }
            _ => datagram(
                &synthetic_flow(kind(i * 5), i * 5, 600),
                IPCTNL_MSG_CT_DELETE,
                0,
            ),
        })
        .collect();
    let mut table = Table::new();
    let mut base: HashMap<(Tuple, u16), Flow> = HashMap::new();
    for d in &initial {
        with_event(d, |e| {
            table.apply(e);
            base.insert(
                (e.flow.orig(), e.flow.zone().unwrap_or(0)),
                e.flow.to_owned(),
            );
        });
    }
    assert_eq!((table.len(), base.len()), (100_000, 100_000));
    let mut g = c.benchmark_group("mirror/apply");
    g.throughput(Throughput::Elements(changes.len() as u64));
    g.bench_function("compact_table", |b| {
        b.iter_batched_ref(
            || table.clone(),
            |t| {
                for d in &changes {
                    with_event(black_box(d), |e| {
                        t.apply(e);
                    });
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("baseline_hashmap_of_owned_flows", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |m| {
                for d in &changes {
                    with_event(black_box(d), |e| {
                        let k = (e.flow.orig(), e.flow.zone().unwrap_or(0));
                        if e.kind == EventKind::Destroy {
                            m.remove(&k);
                        } else {
                            m.insert(k, e.flow.to_owned());
                        }
                    });
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
    println!(
        "table of 100,000 entries: {} heap bytes ({:.1} bytes/entry)",
        table.heap_bytes(),
        table.heap_bytes() as f64 / 100_000.0
    );
}

/// CPU time of the calling thread (user + system), from schedstat.
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = s
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

const TABLE: u64 = 1_000_000;
const RATE: u64 = 10_000;
const PHASE: Duration = Duration::from_secs(10);

/// Changes the table at `RATE` changes/s until `stop`: every 10 ms one
/// datagram of requests without acknowledgement (40 % creates, 40 %
/// deletes of the oldest entries, 20 % mark updates), so that the churn
/// itself costs little. Returns the changes sent.
fn churn(ns: conntrack_kit::netlink::Netns, stop: Arc<AtomicBool>) -> u64 {
    let cfg = SocketConfig::default().netns(ns);
    let mut sock = Socket::open(&cfg).expect("ctnetlink");
    let t0 = Instant::now();
    let (mut made, mut next_new, mut next_del) = (0u64, TABLE, 0u64);
    let mut buf = Vec::with_capacity(64 << 10);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
        let due = (t0.elapsed().as_secs_f64() * RATE as f64) as u64;
        // Never burst more than 100 ms worth to catch up.
        let n = due.saturating_sub(made).min(RATE / 10);
        if n == 0 {
            continue;
        }
        let (c, d) = (n * 2 / 5, n * 2 / 5);
        let u = n - c - d;
        buf.clear();
        for _ in 0..c {
            let f = synthetic_flow(FlowKind::Tcp, next_new, 600);
            let seq = sock.next_seq();
            request::write_create(&mut buf, &f, seq, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL)
                .expect("create request");
            next_new += 1;
        }
        for _ in 0..d {
            let f = synthetic_flow(FlowKind::Tcp, next_del, 600);
            let seq = sock.next_seq();
            request::write_by_tuple(
                &mut buf,
                IPCTNL_MSG_CT_DELETE,
                &f.orig,
                None,
                None,
                seq,
                NLM_F_REQUEST,
            )
            .expect("delete request");
            next_del += 1;
        }
        for k in 0..u {
            let i = TABLE / 2 + (made + k) % (TABLE / 2);
            let f = synthetic_flow(FlowKind::Tcp, i, 600);
            let seq = sock.next_seq();
            let up = Update::new(f.orig).mark((made + k) as u32);
            request::write_update(&mut buf, &up, seq, NLM_F_REQUEST).expect("update request");
        }
        sock.send(&buf).expect("send");
        made += n;
    }
    made
}

fn live() {
    if !conntrack_core::testkit::is_root() {
        eprintln!("mirror live part skipped: needs root");
        return;
    }
    let _max = ConntrackMaxGuard::at_least(1_200_000).expect("raise nf_conntrack_max");
    let ns = TestNetns::new("bmir");
    // Every entry must carry the event extension, also those created
    // before the mirror subscribes (the default "auto" would leave them
    // silent; see the mirror's documentation).
    let st = ns
        .command("sysctl")
        .args(["-qw", "net.netfilter.nf_conntrack_events=1"])
        .status()
        .expect("sysctl");
    assert!(st.success());
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    let t = Instant::now();
    let opts = FillOptions::new(TABLE).mix("tcp=1".parse().expect("mix"));
    let r = fill(&mut ct, &opts).expect("fill");
    println!(
        "\nlive: filled {} entries in {:.1} s",
        r.created,
        t.elapsed().as_secs_f64()
    );

    // Mirror phase.
    let rss0 = rss_kib();
    let t = Instant::now();
    let mut m = Mirror::open(&MirrorConfig::new(Netns::named(ns.name()))).expect("mirror");
    println!(
        "mirror initial sync: {} entries in {:.2} s, table {:.1} MiB (estimate), RSS +{:.1} MiB",
        m.len(),
        t.elapsed().as_secs_f64(),
        m.table().heap_bytes() as f64 / (1 << 20) as f64,
        (rss_kib() - rss0) as f64 / 1024.0
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (n, s) = (Netns::named(ns.name()), stop.clone());
    let t_churn = Instant::now();
    let worker = std::thread::spawn(move || churn(n, s));
    std::thread::sleep(Duration::from_millis(500));
    let cpu0 = thread_cpu();
    let w0 = Instant::now();
    let e0 = m.stats().events;
    while w0.elapsed() < PHASE {
        m.poll(Some(Duration::from_millis(100))).expect("poll");
    }
    let mirror_cpu = (thread_cpu() - cpu0).as_secs_f64() / w0.elapsed().as_secs_f64();
    let events = m.stats().events - e0;
    let st = m.stats();
    drop(m);

    // Re-dump phase, same churn: dump once per second (back to back when
    // a dump takes longer), for PHASE and at least 2 dumps.
    let cpu0 = thread_cpu();
    let w0 = Instant::now();
    let mut dumps = 0u32;
    let mut dumped = 0u64;
    while w0.elapsed() < PHASE || dumps < 2 {
        let t = Instant::now();
        let s = ct
            .for_each(&DumpRequest::table(L3Family::UNSPEC), |f| {
                black_box(f);
            })
            .expect("dump");
        dumps += 1;
        dumped += s.flows;
        if let Some(rest) = Duration::from_secs(1).checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    let dump_wall = w0.elapsed().as_secs_f64();
    let dump_cpu_total = (thread_cpu() - cpu0).as_secs_f64();
    let dump_cpu = dump_cpu_total / dump_wall;
    let per_dump = dump_cpu_total / f64::from(dumps);
    stop.store(true, Ordering::Relaxed);
    let changes = worker.join().expect("churn");
    println!(
        "mirror: {events} events in {:.0} s ({:.0}/s), lost {}, resyncs {}: {mirror_cpu:.4} CPU-s per s",
        PHASE.as_secs_f64(),
        events as f64 / PHASE.as_secs_f64(),
        st.lost,
        st.resyncs - 1
    );
    println!(
        "re-dump: {dumps} dumps ({:.0} entries each) in {dump_wall:.1} s: {per_dump:.3} CPU-s per dump, \
         {dump_cpu:.4} CPU-s per s measured; once per second needs {per_dump:.3} CPU-s per s",
        dumped as f64 / f64::from(dumps)
    );
    println!(
        "churn: {changes} changes sent in {:.0} s; mirror / re-dump once per second = {:.2} % \
         (mirror / measured re-dump phase = {:.2} %)",
        t_churn.elapsed().as_secs_f64(),
        100.0 * mirror_cpu / per_dump.max(dump_cpu),
        100.0 * mirror_cpu / dump_cpu
    );
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    apply_benches(&mut c);
    c.final_summary();
    // The live part runs under `cargo bench` only (which passes --bench),
    // not under `cargo test --benches` or `--list`/`--test`.
    let args: Vec<String> = std::env::args().collect();
    let benchmarking =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list" || a == "--test");
    if benchmarking {
        live();
    }
}
