//! What the drop tracer costs the packet path: UDP packets per second
//! forwarded by the incident lab's router (`conntrack_netlink::lab`:
//! forwarding, conntrack, the lab's nftables ruleset with MASQUERADE
//! toward the servers), with and without the tracer attached, in the same
//! run.
//!
//! Topology (the lab's, namespaces of its own, deleted at the end): client
//! c0 198.18.0.2 -> router -> server s0 198.19.0.2. A veth transmit runs
//! the receiving side's stack in the sender's softirq, so the time of the
//! client's `send_to` calls is the time the router takes to forward them;
//! the client sends as fast as the calls return (closed loop, one core
//! saturated by the send path): the highest rate this machine sustains
//! through the router.
//!
//! - `forward`: every packet is forwarded (one flow, SNAT'd). The tracer's
//!   program is attached to `skb:kfree_skb`, which forwarding never hits
//!   (delivered packets are consumed, not freed as drops): the cost is the
//!   tracepoint being enabled.
//! - `ruleset_drop`: a rule added to the router's forward chain drops every
//!   packet to port 10 (a new, never confirmed entry each): the program
//!   runs for each, reads the namespace's per-CPU conntrack counters, finds
//!   that none moved and that the entry cannot be at a NAT step (FORWARD:
//!   its destination mapping is done and the packet is on its input
//!   device), and counts it in a per-CPU map without a record or a stack
//!   walk (`TraceConfig::include_ruleset` is off). The tracer's worst case.
//!
//! `flock /tmp/bench.lock cargo bench --bench trace_overhead --features
//! trace,lab` as root; without root or tracing support it says why and
//! measures nothing. Results in BENCHMARKS.md.

use conntrack_kit::ct_core::host::GlobalSysctlShare;
use conntrack_kit::netlink::Netns;
use conntrack_kit::netlink::lab::{Lab, LabSpec};
use conntrack_kit::netlink::trace::{TraceConfig, Tracer};
use criterion::{Criterion, Throughput};
use std::net::UdpSocket;
use std::time::Duration;

/// Packets per criterion iteration.
const BURST: u64 = 1000;

fn lab() -> Lab {
    let lab = Lab::build(&LabSpec::default()).expect("build the lab");
    // Every packet to port 10 is dropped by the router's ruleset.
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", lab.router(), "nft"])
        .arg("add rule ip lab forward udp dport 10 drop")
        .output()
        .expect("run nft");
    assert!(out.status.success(), "nft: {out:?}");
    lab
}

fn bench(c: &mut Criterion, lab: &Lab) {
    let sock = Netns::named(&lab.clients()[0].netns)
        .run(|| Ok(UdpSocket::bind("198.18.0.2:40000").expect("bind")))
        .expect("enter client");
    // The server reads everything (a full socket buffer would free
    // packets as drops, which the tracer's program would see).
    let sink = Netns::named(&lab.servers()[0].netns)
        .run(|| Ok(UdpSocket::bind("198.19.0.2:9").expect("bind")))
        .expect("enter server");
    sink.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = std::sync::Arc::clone(&stop);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = sink.recv(&mut buf);
        }
    });
    let payload = [0u8; 64];
    let mut g = c.benchmark_group("trace_overhead");
    g.throughput(Throughput::Elements(BURST));
    'cases: for (name, port) in [("forward", 9u16), ("ruleset_drop", 10)] {
        let send = |port: u16| {
            for _ in 0..BURST {
                let _ = sock.send_to(&payload, ("198.19.0.2", port));
            }
        };
        // untraced, traced, untraced, traced, untraced: drift in a shared
        // machine shows between the untraced runs, and each traced run
        // has an untraced one on both sides.
        g.bench_function(format!("{name}/untraced_1"), |b| b.iter(|| send(port)));
        for round in 1..=2 {
            let tracer = match Tracer::start(&TraceConfig::default()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("trace_overhead: {e}");
                    break 'cases;
                }
            };
            g.bench_function(format!("{name}/traced_{round}"), |b| b.iter(|| send(port)));
            drop(tracer);
            g.bench_function(format!("{name}/untraced_{}", round + 1), |b| {
                b.iter(|| send(port))
            });
        }
    }
    g.finish();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reader.join();
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("trace_overhead: needs root (namespaces, BPF); nothing measured");
        return;
    }
    if let Err(e) = conntrack_kit::netlink::trace::check_support() {
        eprintln!("trace_overhead: {e}; nothing measured");
        return;
    }
    // No lab elsewhere may lower nf_conntrack_max or shrink the buckets
    // while this runs (their drops would be this router's too).
    let _globals = GlobalSysctlShare::acquire().expect("global sysctl lock");
    let lab = lab();
    bench(&mut c, &lab);
    c.final_summary();
}
