//! Event decoding and sustained churn.
//!
//! 1. `events/decode` (criterion, no privileges): 10,000 ctnetlink event
//!    messages (NEW/UPDATE/DESTROY, 6.18 layout), one per datagram as the
//!    kernel sends them, decoded by `event::for_each_item` (zero-copy
//!    `FlowView`) against the baseline `netlink-packet-netfilter`
//!    (`NetlinkMessage::<NetfilterMessage>::deserialize`, a `Vec` per
//!    nesting level). Throughput is in events per second.
//! 2. Live (root only, printed after criterion): the most sustained rate
//!    of new entries a `Mirror` with its default receive buffer follows
//!    without loss, in a fresh namespace per rate step.
//!
//! `cargo bench --bench events` (results in BENCHMARKS.md).

use conntrack_kit::ct_core::host::ConntrackMaxGuard;
use conntrack_kit::ct_core::testkit::TestNetns;
use conntrack_kit::ct_core::{
    Counters, Flow, L4Proto, L4Tuple, ProtoInfo, Status, TcpInfo, TcpState, Tuple,
};
use conntrack_kit::netlink::event::{EventKind, Item, for_each_item};
use conntrack_kit::netlink::fill::{FillOptions, fill};
use conntrack_kit::netlink::mirror::{Mirror, MirrorConfig};
use conntrack_kit::netlink::wire::{encode, message::*};
use conntrack_kit::netlink::{Conntrack, Netns};
use criterion::{Criterion, Throughput};
use netlink_packet_core::NetlinkMessage;
use netlink_packet_netfilter::NetfilterMessage;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn event_flow(i: u32) -> Flow {
    let ip4 = |n: u32| std::net::IpAddr::V4(std::net::Ipv4Addr::from(n));
    let (src, dst) = (ip4(0x0a00_0000 | (i & 0xffff)), ip4(0xc000_0201));
    let sport = 1024 + (i % 60000) as u16;
    let tcp = i % 4 != 3;
    let proto = if tcp { L4Proto::TCP } else { L4Proto::UDP };
    let o = Tuple::new(
        src,
        dst,
        proto,
        L4Tuple::Ports {
            src: sport,
            dst: 443,
        },
    );
    let r = o.inverse().expect("a TCP or UDP tuple inverts");
    let mut f = Flow::new(
        o,
        r,
        Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
    );
    if tcp {
        f.protoinfo = Some(ProtoInfo::Tcp(
            TcpInfo::new(TcpState::ESTABLISHED).with_wscale(7, 7),
        ));
    }
    f.timeout = Some(431_999);
    f.id = Some(0x9e37_79b9u32.wrapping_mul(i));
    f.mark = i.is_multiple_of(5).then_some(i % 7);
    f
}

/// One datagram per event: NEW, UPDATE, DESTROY (with counters) in turn.
fn datagrams(n: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut f = event_flow(i);
            let (ty, flags) = match i % 3 {
                0 => (IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL),
                1 => (IPCTNL_MSG_CT_NEW, 0),
                _ => {
                    f.counters_orig = Some(Counters {
                        packets: 10,
                        bytes: 1_000,
                    });
                    f.counters_reply = Some(Counters {
                        packets: 8,
                        bytes: 4_000,
                    });
                    (IPCTNL_MSG_CT_DELETE, 0)
                }
            };
            let mut buf = Vec::with_capacity(256);
            let m = encode::begin_message(&mut buf, ct_type(ty), flags, 0, 2);
            encode::encode_flow_as_kernel(&f, &mut buf);
            encode::finish_message(&mut buf, m);
            buf
        })
        .collect()
}

fn decode_benches(c: &mut Criterion) {
    let dgrams = datagrams(10_000);
    // Both decoders must agree on what they read.
    let mut ours = 0u64;
    for d in &dgrams {
        for_each_item(d, |i| {
            if let Item::Event(e) = i {
                ours += u64::from(e.flow.orig().src_port().unwrap_or(0));
            }
        });
    }
    let mut theirs = 0usize;
    for d in &dgrams {
        let m = NetlinkMessage::<NetfilterMessage>::deserialize(d).expect("baseline decodes");
        theirs += usize::from(matches!(
            m.payload,
            netlink_packet_core::NetlinkPayload::InnerMessage(_)
        ));
    }
    assert!(ours > 0 && theirs == dgrams.len());

    let mut g = c.benchmark_group("events/decode");
    g.throughput(Throughput::Elements(dgrams.len() as u64));
    g.bench_function("flowview", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for d in &dgrams {
                for_each_item(black_box(d), |i| {
                    if let Item::Event(e) = i {
                        n += u64::from(e.kind == EventKind::Destroy)
                            + u64::from(e.flow.mark().unwrap_or(0));
                    }
                });
            }
            n
        })
    });
    g.bench_function("baseline_netlink_packet_netfilter", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for d in &dgrams {
                if let Ok(m) = NetlinkMessage::<NetfilterMessage>::deserialize(black_box(d)) {
                    n += usize::from(matches!(
                        m.payload,
                        netlink_packet_core::NetlinkPayload::InnerMessage(_)
                    ));
                }
            }
            n
        })
    });
    g.finish();
}

/// Creates `rate` new entries per second for `secs` seconds (in batches
/// every 10 ms) while a default mirror follows; returns (achieved rate,
/// events applied, losses).
fn sustained(rate: u64, secs: u64) -> (f64, u64, u64) {
    let ns = TestNetns::new("bev");
    let mut m = Mirror::open(&MirrorConfig::new(Netns::named(ns.name()))).expect("mirror");
    let netns = Netns::named(ns.name());
    let producer = std::thread::spawn(move || {
        let mut ct = Conntrack::open_in(&netns).expect("ctnetlink");
        let t0 = Instant::now();
        let total = rate * secs;
        let mut done = 0u64;
        while done < total {
            let due = ((t0.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
            if due > done {
                let r = fill(&mut ct, &FillOptions::new(due - done).start(done)).expect("fill");
                assert_eq!(r.failed, 0, "{r:?}");
                done = due;
            } else {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        done as f64 / t0.elapsed().as_secs_f64()
    });
    let mut lost = 0;
    while !producer.is_finished() {
        lost += m.poll(Some(Duration::from_millis(50))).expect("poll").lost;
    }
    let achieved = producer.join().expect("producer");
    loop {
        let p = m.poll(Some(Duration::from_millis(300))).expect("poll");
        lost += p.lost;
        if p.applied == 0 && p.resyncs == 0 {
            break;
        }
    }
    (achieved, m.stats().events, lost)
}

fn live() {
    if !conntrack_core::testkit::is_root() {
        eprintln!("events live part skipped: needs root");
        return;
    }
    let _max = ConntrackMaxGuard::at_least(1_200_000).expect("raise nf_conntrack_max");
    println!("\nlive: sustained new-entry rate followed by a default Mirror (2 s per step)");
    println!(
        "{:>12} {:>12} {:>12} {:>8}",
        "target/s", "achieved/s", "events", "lost"
    );
    for rate in [10_000u64, 25_000, 50_000, 100_000, 200_000] {
        let (achieved, events, lost) = sustained(rate, 2);
        println!("{rate:>12} {achieved:>12.0} {events:>12} {lost:>8}");
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    decode_benches(&mut c);
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
