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
//! - `forward`: every packet is forwarded (one flow, SNAT'd). Forwarding
//!   itself never runs the tracer's program (delivered packets are
//!   consumed, not freed as drops); the program runs for the machine's
//!   other `kfree_skb` calls (the server's full socket buffer among them)
//!   and leaves at its first test.
//! - `ruleset_drop`: a rule added to the router's forward chain drops every
//!   packet to port 10 (a new, never confirmed entry each): the program
//!   runs for each, finds a netfilter drop outside `nf_hook_slow` (no
//!   conntrack failure), checks that the entry cannot be at a NAT step and
//!   counts it in a per-CPU map without a record or a stack walk
//!   (`TraceConfig::include_ruleset` is off). The tracer's worst case.
//! - `ruleset_drop_other_netns`: the same traffic with the tracer asked for
//!   another namespace (the server's): the program runs for each drop and
//!   leaves after reading the packet's namespace. What the tracepoint and
//!   the program's entry cost before any classification.
//!
//! Method: per case, `CONNTRACK_KIT_BENCH_PAIRS` (default 60) pairs of
//! short rounds (`CONNTRACK_KIT_BENCH_ROUND_MS`, default 400 ms), each pair
//! one untraced and one traced round, the order alternating from pair to
//! pair (the tracer is started before its round and stopped after it, its
//! loading outside the timed window). Each pair gives a ratio, traced over
//! untraced, of
//!
//! - packets per second (wall clock), and
//! - the sender's CPU time per packet (`CLOCK_THREAD_CPUTIME_ID` of the
//!   sending thread, untraced over traced): the router's work runs in the
//!   sender's softirq, which this kernel (no `CONFIG_IRQ_TIME_ACCOUNTING`)
//!   charges to the thread it interrupts; time other tasks take the core
//!   for is left out, so this view is less sensitive to the machine's
//!   other work than the wall clock.
//!
//! The result is the median ratio with its quartiles and a 95 % interval
//! of the median (distribution-free, from order statistics). Then a few
//! traced rounds with the kernel's BPF run-time statistics on (not part of
//! the ratios: statistics add two clock reads per run) give the program's
//! runs per packet and nanoseconds per run.
//!
//! `flock /tmp/bench.lock cargo bench --bench trace_overhead --features
//! trace,lab` as root (`-- NAME` runs the cases whose names contain NAME); without root or tracing support it says why and
//! measures nothing; under `cargo test --all-targets` (as root) it is a
//! smoke test of two short pairs. Results in BENCHMARKS.md.

mod support;

use conntrack_kit::ct_core::host::GlobalSysctlShare;
use conntrack_kit::netlink::Netns;
use conntrack_kit::netlink::lab::{Lab, LabSpec};
use conntrack_kit::netlink::trace::{ProgramStats, RunTimeStats, TraceConfig, Tracer};
use nix::time::{ClockId, clock_gettime};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Sends between two looks at the clock.
const BATCH: u64 = 256;

/// What one round measured.
#[derive(Clone, Copy)]
struct Round {
    packets: u64,
    wall: Duration,
    /// The sending thread's CPU time.
    cpu: Duration,
}

impl Round {
    fn pps(&self) -> f64 {
        self.packets as f64 / self.wall.as_secs_f64()
    }

    fn cpu_ns_per_packet(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.packets as f64
    }
}

fn thread_cpu() -> Duration {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("thread CPU clock");
    Duration::new(t.tv_sec().max(0) as u64, t.tv_nsec().max(0) as u32)
}

/// Before every measured round, tracer or not: a pause (the server drains
/// its socket, the tracer's loading is over) and an unmeasured warm-up
/// burst, so that both rounds of a pair start from the same state. (Without
/// it the traced rounds, which followed the tracer's loading, started
/// from an idle server and ran faster than the untraced ones in
/// `forward`.)
const SETTLE: Duration = Duration::from_millis(200);
const WARM_UP: Duration = Duration::from_millis(100);

/// [`SETTLE`], [`WARM_UP`], then one measured round.
fn measured(sock: &UdpSocket, port: u16, len: Duration) -> Round {
    std::thread::sleep(SETTLE);
    round(sock, port, WARM_UP);
    round(sock, port, len)
}

/// Sends 64-byte datagrams to the server's `port` for `len`.
fn round(sock: &UdpSocket, port: u16, len: Duration) -> Round {
    let payload = [0u8; 64];
    let to = std::net::SocketAddr::from(([198, 19, 0, 2], port));
    let (t0, c0) = (Instant::now(), thread_cpu());
    let mut packets = 0;
    loop {
        for _ in 0..BATCH {
            let _ = sock.send_to(&payload, to);
        }
        packets += BATCH;
        if t0.elapsed() >= len {
            break;
        }
    }
    Round {
        packets,
        wall: t0.elapsed(),
        cpu: thread_cpu().saturating_sub(c0),
    }
}

/// The `q` quantile of sorted values (linear between the order
/// statistics).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The median, quartiles and a 95 % interval of the median: the order
/// statistics j and k (1-based) with j = n/2 - 0.98 sqrt(n), k = n/2 + 1 +
/// 0.98 sqrt(n) rounded outwards (the binomial's normal approximation,
/// distribution-free).
struct Summary {
    median: f64,
    q1: f64,
    q3: f64,
    ci: (f64, f64),
    min: f64,
    max: f64,
    at_least_097: usize,
    n: usize,
}

fn summary(mut v: Vec<f64>) -> Summary {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let half = 0.98 * (n as f64).sqrt();
    let j = ((n as f64 / 2.0 - half).floor() as usize).clamp(1, n.max(1));
    let k = ((n as f64 / 2.0 + 1.0 + half).ceil() as usize).clamp(1, n.max(1));
    Summary {
        median: quantile(&v, 0.5),
        q1: quantile(&v, 0.25),
        q3: quantile(&v, 0.75),
        ci: (
            v.get(j - 1).copied().unwrap_or(f64::NAN),
            v.get(k - 1).copied().unwrap_or(f64::NAN),
        ),
        min: v.first().copied().unwrap_or(f64::NAN),
        max: v.last().copied().unwrap_or(f64::NAN),
        at_least_097: v.iter().filter(|&&r| r >= 0.97).count(),
        n,
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Below 6 values the order statistics bound nothing (j clamps to 1).
        let ci = if self.n >= 6 {
            format!("{:.3}-{:.3}", self.ci.0, self.ci.1)
        } else {
            "none with so few pairs".to_owned()
        };
        write!(
            f,
            "median {:.3} (quartiles {:.3}-{:.3}; 95 % interval of the median {ci}; \
             range {:.3}-{:.3}; {} of {} pairs >= 0.97)",
            self.median, self.q1, self.q3, self.min, self.max, self.at_least_097, self.n
        )
    }
}

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

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn start_tracer(cfg: &TraceConfig) -> Option<Tracer> {
    match Tracer::start(cfg) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("trace_overhead: {e}; nothing more measured");
            None
        }
    }
}

/// Runs one case; `None` when the tracer could not start.
fn case(
    name: &str,
    cfg: &TraceConfig,
    sock: &UdpSocket,
    port: u16,
    pairs: u64,
    len: Duration,
    stats_rounds: u64,
) -> Option<()> {
    // Warm-up: the entries, caches and the clock frequency settle.
    round(sock, port, len);
    let mut pps = Vec::new();
    let mut cpu = Vec::new();
    let mut untraced_pps = Vec::new();
    let mut on_cpu = Vec::new();
    for i in 0..pairs {
        let traced_first = i % 2 == 1;
        let run = |traced: bool| -> Option<Round> {
            let tracer = if traced {
                Some(start_tracer(cfg)?)
            } else {
                None
            };
            let r = measured(sock, port, len);
            drop(tracer);
            Some(r)
        };
        let (u, t) = if traced_first {
            let t = run(true)?;
            (run(false)?, t)
        } else {
            let u = run(false)?;
            (u, run(true)?)
        };
        println!(
            "trace_overhead/{name} pair {:>2} ({}): untraced {:>6.1} k/s {:>6.0} ns/pkt CPU, \
             traced {:>6.1} k/s {:>6.0} ns/pkt CPU, ratio {:.3} (CPU {:.3})",
            i + 1,
            if traced_first {
                "traced first"
            } else {
                "untraced first"
            },
            u.pps() / 1e3,
            u.cpu_ns_per_packet(),
            t.pps() / 1e3,
            t.cpu_ns_per_packet(),
            t.pps() / u.pps(),
            u.cpu_ns_per_packet() / t.cpu_ns_per_packet(),
        );
        pps.push(t.pps() / u.pps());
        cpu.push(u.cpu_ns_per_packet() / t.cpu_ns_per_packet());
        untraced_pps.push(u.pps() / 1e3);
        for r in [u, t] {
            on_cpu.push(r.cpu.as_secs_f64() / r.wall.as_secs_f64());
        }
    }
    let u = summary(untraced_pps);
    let c = summary(on_cpu);
    println!(
        "trace_overhead/{name}: untraced {:.1} k/s median ({:.1}-{:.1}); sending thread on CPU \
         {:.1} % of the wall time (median; {:.1}-{:.1})",
        u.median,
        u.min,
        u.max,
        100.0 * c.median,
        100.0 * c.min,
        100.0 * c.max
    );
    println!(
        "trace_overhead/{name}: traced/untraced packets per second: {}",
        summary(pps)
    );
    println!(
        "trace_overhead/{name}: untraced/traced sender CPU per packet: {}",
        summary(cpu)
    );
    // The program's own cost, with statistics on (not in the ratios).
    let stats = match RunTimeStats::enable() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("trace_overhead/{name}: no run-time statistics: {e}");
            return Some(());
        }
    };
    let mut per_run = Vec::new();
    let mut per_packet = Vec::new();
    for _ in 0..stats_rounds {
        let tracer = start_tracer(cfg)?;
        std::thread::sleep(SETTLE);
        round(sock, port, WARM_UP);
        let before = tracer.program_stats().unwrap_or_default();
        let r = round(sock, port, len);
        let d: ProgramStats = tracer.program_stats().unwrap_or_default().since(&before);
        if let Some(ns) = d.ns_per_run() {
            per_run.push(ns);
            per_packet.push(d.run_cnt as f64 / r.packets as f64);
        }
    }
    drop(stats);
    let runs = summary(per_packet);
    let ns = summary(per_run);
    println!(
        "trace_overhead/{name}: program (run-time statistics on, {} rounds): {:.2} runs per packet, \
         {:.1} ns per run (median; {:.1}-{:.1})",
        ns.n, runs.median, ns.median, ns.min, ns.max
    );
    Some(())
}

/// `filter`: the cases whose names contain one of these (all when empty).
fn bench(lab: &Lab, bench_mode: bool, filter: &[String]) {
    let sock = Netns::named(&lab.clients()[0].netns)
        .run(|| Ok(UdpSocket::bind("198.18.0.2:40000").expect("bind")))
        .expect("enter client");
    // The server reads everything it can (what it cannot is freed as a
    // socket-buffer drop, which runs the program up to its first test).
    let sink = Netns::named(&lab.servers()[0].netns)
        .run(|| Ok(UdpSocket::bind("198.19.0.2:9").expect("bind")))
        .expect("enter server");
    sink.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop2.load(Ordering::Relaxed) {
            let _ = sink.recv(&mut buf);
        }
    });
    let (pairs, len, stats_rounds) = if bench_mode {
        (
            support::env_num("CONNTRACK_KIT_BENCH_PAIRS", 60),
            Duration::from_millis(support::env_num("CONNTRACK_KIT_BENCH_ROUND_MS", 400)),
            4,
        )
    } else {
        (2, Duration::from_millis(50), 1)
    };
    println!(
        "trace_overhead: {pairs} pairs of {} ms rounds per case; load average {} at start",
        len.as_millis(),
        load_average()
    );
    let every = TraceConfig::default();
    let elsewhere = TraceConfig::default().with_netns(Netns::named(&lab.servers()[0].netns));
    for (name, cfg, port) in [
        ("forward", &every, 9u16),
        ("ruleset_drop", &every, 10),
        ("ruleset_drop_other_netns", &elsewhere, 10),
    ] {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if case(name, cfg, &sock, port, pairs, len, stats_rounds).is_none() {
            break;
        }
    }
    println!("trace_overhead: load average {} at end", load_average());
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if !support::runs_live("trace_overhead", bench_mode) {
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
    // Arguments that are not flags select cases by name, as criterion's
    // filters do (`cargo bench --bench trace_overhead -- ruleset_drop`).
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    bench(&lab, bench_mode, &filter);
}
