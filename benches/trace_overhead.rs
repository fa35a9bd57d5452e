//! What the drop tracer costs the packet path: UDP packets per second
//! forwarded by a router namespace (conntrack on, one flow), with and
//! without the tracer attached, in the same run.
//!
//! Topology (namespaces of its own, deleted at the end): client
//! 10.77.1.2 -> router (10.77.1.1 | 10.77.2.1, forwarding, conntrack) ->
//! server 10.77.2.2. A veth transmit runs the receiving side's stack in
//! the sender's softirq, so the time of the client's `send_to` calls is
//! the time the router takes to forward them.
//!
//! - `forward`: every packet is forwarded. The tracer's program is
//!   attached to `skb:kfree_skb`, which forwarding never hits (delivered
//!   packets are consumed, not freed as drops): the cost is the
//!   tracepoint being enabled.
//! - `ruleset_drop`: the router's ruleset drops every packet (a flow in
//!   the table): the program runs for each and returns early (no record:
//!   not a conntrack failure).
//!
//! `cargo bench --bench trace_overhead --features trace` as root; without
//! root or tracing support it says why and measures nothing. Results in
//! BENCHMARKS.md.

use conntrack_kit::ct_core::testkit::TestNetns;
use conntrack_kit::netlink::Netns;
use conntrack_kit::netlink::trace::{TraceConfig, Tracer};
use criterion::{Criterion, Throughput};
use std::net::UdpSocket;
use std::time::Duration;

/// Packets per criterion iteration.
const BURST: u64 = 1000;

fn ip(ns: &TestNetns, args: &[&str]) {
    let out = ns.command("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

fn nft(ns: &TestNetns, script: &str) {
    let out = ns.command("nft").arg(script).output().expect("run nft");
    assert!(out.status.success(), "nft {script}: {out:?}");
}

struct Lab {
    client: TestNetns,
    router: TestNetns,
    server: TestNetns,
}

fn lab() -> Lab {
    let (client, router, server) = (
        TestNetns::new("ck-tb-c"),
        TestNetns::new("ck-tb-r"),
        TestNetns::new("ck-tb-s"),
    );
    ip(
        &router,
        &["link", "add", "r0", "type", "veth", "peer", "name", "c0"],
    );
    ip(
        &router,
        &["link", "add", "r1", "type", "veth", "peer", "name", "s0"],
    );
    ip(&router, &["link", "set", "c0", "netns", client.name()]);
    ip(&router, &["link", "set", "s0", "netns", server.name()]);
    for (ns, dev, addr, gw) in [
        (&client, "c0", "10.77.1.2/24", "10.77.1.1"),
        (&server, "s0", "10.77.2.2/24", "10.77.2.1"),
    ] {
        ip(ns, &["addr", "add", addr, "dev", dev]);
        ip(ns, &["link", "set", dev, "up"]);
        ip(ns, &["route", "add", "default", "via", gw]);
    }
    ip(&router, &["addr", "add", "10.77.1.1/24", "dev", "r0"]);
    ip(&router, &["addr", "add", "10.77.2.1/24", "dev", "r1"]);
    ip(&router, &["link", "set", "r0", "up"]);
    ip(&router, &["link", "set", "r1", "up"]);
    let out = router
        .command("sysctl")
        .args(["-qw", "net.ipv4.ip_forward=1"])
        .output()
        .expect("sysctl");
    assert!(out.status.success(), "{out:?}");
    // Conntrack on for the router; UDP to port 10 is dropped there.
    nft(
        &router,
        "add table inet ck; add chain inet ck fw { type filter hook forward priority 0; }; \
         add rule inet ck fw ct state new,established counter; \
         add rule inet ck fw udp dport 10 drop",
    );
    Lab {
        client,
        router,
        server,
    }
}

fn bench(c: &mut Criterion, lab: &Lab) {
    let sock = Netns::named(lab.client.name())
        .run(|| Ok(UdpSocket::bind("10.77.1.2:40000").expect("bind")))
        .expect("enter client");
    // The server reads everything (a full socket buffer would free
    // packets as drops, which the tracer's program would see).
    let sink = Netns::named(lab.server.name())
        .run(|| Ok(UdpSocket::bind("10.77.2.2:9").expect("bind")))
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
    for (name, port) in [("forward", 9u16), ("ruleset_drop", 10)] {
        let send = |port: u16| {
            for _ in 0..BURST {
                let _ = sock.send_to(&payload, ("10.77.2.2", port));
            }
        };
        g.bench_function(format!("{name}/untraced"), |b| b.iter(|| send(port)));
        let tracer = match Tracer::start(&TraceConfig::default()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("trace_overhead: {e}");
                break;
            }
        };
        g.bench_function(format!("{name}/traced"), |b| b.iter(|| send(port)));
        drop(tracer);
        // Interleaved again, so drift in the machine shows.
        g.bench_function(format!("{name}/untraced_again"), |b| b.iter(|| send(port)));
    }
    g.finish();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reader.join();
    let _ = &lab.router;
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
    let lab = lab();
    bench(&mut c, &lab);
    c.final_summary();
}
