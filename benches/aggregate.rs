//! Hotspot aggregation throughput (issue 5).
//!
//! One buffer of 1,000,000 ctnetlink flow messages in the kernel's 6.18
//! layout (`conntrack_netlink::wire::encode::encode_flow_as_kernel`), built
//! from a deterministic synthetic table with the shape of a busy node
//! (TCP ESTABLISHED/TIME_WAIT to a few hundred services, DNS through a
//! DNAT'd VIP, masqueraded container traffic, some IPv6 and ICMP). Then:
//!
//! - `decode_only` (baseline): iterate `wire::flows(buf)` and touch every
//!   view;
//! - `decode_aggregate_topk`: the same plus `Hotspots::add` over every key
//!   with a bounded top-K (K = 1024 per key);
//! - `decode_aggregate_exact`: the same with exact counting;
//! - `owned_aggregate_topk` / `owned_aggregate_exact`: aggregation alone
//!   over pre-decoded owned `Flow`s.
//!
//! After the criterion run (wall time) it measures each variant again in
//! CPU time of the benchmark thread (`/proc/thread-self/stat`, 5 passes,
//! best pass): flows per CPU-second is the one-core throughput even when
//! the machine is shared and wall time is inflated by other load. It
//! prints both, the ratio of each to the decode-only baseline, and the
//! aggregator's memory.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it only runs
//! the sanity check on 2,000 flows.
//!
//! Run: `cargo bench --bench aggregate`; `AGGREGATE_CPU_ONLY=1 cargo bench
//! --bench aggregate` skips criterion and prints the CPU-time table only.

use conntrack_kit::analyze::hotspots::{HotspotConfig, Hotspots};
use conntrack_kit::ct_core::{
    Counters, Flow, L4Proto, L4Tuple, ProtoInfo, Status, TcpInfo, TcpState, Tuple,
};
use conntrack_kit::netlink::wire::{encode, flows, message};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

const FULL: usize = 1_000_000;
/// Flows under `cargo test --all-targets` (no `--bench` argument): a smoke
/// test of the same code paths.
const SMOKE: usize = 2_000;
const K: usize = 1024;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn v4(a: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

/// The reply tuple of an untranslated flow, as the kernel derives it
/// (NAT'd flows then replace one address).
fn reply_of(orig: &Tuple) -> Tuple {
    orig.inverse()
        .expect("the benchmark's tuples are invertible")
}

fn synth_flow(r: &mut Rng) -> Flow {
    let kind = r.below(100);
    let host = 0xc000_020a; // 192.0.2.10, the node's address
    // Clients: 20% from 512 hot addresses, the rest over a /16.
    let client = if r.below(5) == 0 {
        0x0a00_0000 | r.below(512) as u32
    } else {
        0x0a00_0000 | r.below(65536) as u32
    };
    let sport = 1024 + r.below(60000) as u16;
    let (orig, reply, status, protoinfo, timeout) = if kind < 10 {
        // IPv6 TCP
        let a = IpAddr::V6(Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | r.below(1 << 20) as u128,
        ));
        let b = IpAddr::V6(Ipv6Addr::from(
            0x2001_0db8_ffff_0000_0000_0000_0000_0001u128,
        ));
        let o = Tuple::new(
            a,
            b,
            L4Proto::TCP,
            L4Tuple::Ports {
                src: sport,
                dst: 443,
            },
        );
        let re = reply_of(&o);
        (
            o,
            re,
            Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
            Some(TcpState::ESTABLISHED),
            431_000 + r.below(1000) as u32,
        )
    } else if kind < 65 {
        // IPv4 TCP to 256 services on 5 ports; 30% masqueraded.
        let svc = 0xac10_0000 | r.below(256) as u32;
        let port = [443u16, 80, 8080, 5432, 6379][r.below(5) as usize];
        let o = Tuple::new(
            v4(client),
            v4(svc),
            L4Proto::TCP,
            L4Tuple::Ports {
                src: sport,
                dst: port,
            },
        );
        let masq = r.below(10) < 3;
        let back = if masq { v4(host) } else { v4(client) };
        let re = Tuple {
            dst: back,
            ..reply_of(&o)
        };
        let st = match r.below(10) {
            0..=4 => TcpState::ESTABLISHED,
            5..=8 => TcpState::TIME_WAIT,
            _ => TcpState::SYN_SENT,
        };
        let t = match st {
            TcpState::ESTABLISHED => 300 + r.below(432_000) as u32,
            _ => r.below(120) as u32,
        };
        let mut s = Status::CONFIRMED;
        if st != TcpState::SYN_SENT {
            s |= Status::SEEN_REPLY | Status::ASSURED;
        }
        if masq {
            s |= Status::SRC_NAT | Status::SRC_NAT_DONE;
        }
        (o, re, s, Some(st), t)
    } else if kind < 95 {
        // DNS through a VIP, DNAT'd to 2 backends.
        let vip = 0x0a60_000a; // 10.96.0.10
        let backend = 0x0af4_0200 | (1 + r.below(2) as u32);
        let o = Tuple::new(
            v4(client),
            v4(vip),
            L4Proto::UDP,
            L4Tuple::Ports {
                src: sport,
                dst: 53,
            },
        );
        let re = Tuple {
            src: v4(backend),
            ..reply_of(&o)
        };
        let mut s = Status::CONFIRMED | Status::DST_NAT | Status::DST_NAT_DONE;
        if r.below(10) != 0 {
            s |= Status::SEEN_REPLY;
        }
        (o, re, s, None, r.below(30) as u32)
    } else {
        let id = r.below(65536) as u16;
        let o = Tuple::new(
            v4(client),
            v4(host),
            L4Proto::ICMP,
            L4Tuple::Icmp {
                kind: 8,
                code: 0,
                id,
            },
        );
        let re = reply_of(&o);
        (
            o,
            re,
            Status::CONFIRMED | Status::SEEN_REPLY,
            None,
            r.below(30) as u32,
        )
    };
    let mut f = Flow::new(orig, reply, status);
    f.protoinfo = protoinfo.map(|state| ProtoInfo::Tcp(TcpInfo::new(state)));
    f.timeout = Some(timeout);
    f.mark = Some(if r.below(20) == 0 { 0x4000 } else { 0 });
    f.id = Some(r.next() as u32);
    f.use_count = Some(1);
    if r.below(50) == 0 {
        f.zone = Some(1 + r.below(4) as u16);
    }
    f.counters_orig = Some(Counters {
        packets: r.below(1000),
        bytes: r.below(1 << 20),
    });
    f.counters_reply = Some(Counters {
        packets: r.below(1000),
        bytes: r.below(1 << 20),
    });
    f
}

fn build(n: usize) -> (Vec<u8>, Vec<Flow>) {
    let mut r = Rng(0x5eed_1234_abcd_0001);
    let owned: Vec<Flow> = (0..n).map(|_| synth_flow(&mut r)).collect();
    let mut buf = Vec::with_capacity(n * 200);
    for (i, f) in owned.iter().enumerate() {
        let fam = if f.orig.src.is_ipv4() { 2 } else { 10 };
        let m = encode::begin_message(
            &mut buf,
            message::ct_type(message::IPCTNL_MSG_CT_NEW),
            message::NLM_F_MULTI,
            i as u32,
            fam,
        );
        encode::encode_flow_as_kernel(f, &mut buf);
        encode::finish_message(&mut buf, m);
    }
    let m = encode::begin_message(&mut buf, message::NLMSG_DONE, message::NLM_F_MULTI, 0, 0);
    encode::finish_message(&mut buf, m);
    (buf, owned)
}

fn topk() -> Hotspots {
    Hotspots::top_k(K)
}

fn exact() -> Hotspots {
    Hotspots::new(HotspotConfig::default())
}

fn decode_into(buf: &[u8], h: &mut Hotspots) -> usize {
    let mut n = 0;
    for v in flows(buf).flatten() {
        h.add(&v);
        n += 1;
    }
    n
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { FULL } else { SMOKE };
    let (buf, owned) = build(n);
    // Sanity: the buffer decodes to every flow, and the decoded views
    // aggregate to the same summary as the owned flows.
    let mut a = topk();
    assert_eq!(decode_into(&buf, &mut a), n);
    let mut b = topk();
    b.extend(owned.iter());
    assert_eq!(a.summary(), b.summary(), "views and owned flows disagree");

    if !bench {
        println!("aggregate: smoke test on {n} flows passed (run with cargo bench for numbers)");
        return;
    }
    if std::env::var_os("AGGREGATE_CPU_ONLY").is_none() {
        run_criterion(&buf, &owned);
    }
    cpu_table(&buf, &owned);
}

/// CPU time (user + system) of the calling thread, in seconds, at the
/// kernel's USER_HZ tick of 1/100 s.
fn thread_cpu_secs() -> Option<f64> {
    let t = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &t[t.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Best of 5 passes in thread CPU time, in seconds.
fn best_cpu(mut pass: impl FnMut()) -> Option<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let a = thread_cpu_secs()?;
        pass();
        let b = thread_cpu_secs()?;
        best = best.min(b - a);
    }
    Some(best)
}

fn cpu_table(buf: &[u8], owned: &[Flow]) {
    let n = owned.len();
    let mut rows: Vec<(&str, Option<f64>)> = Vec::new();
    rows.push((
        "decode_only",
        best_cpu(|| {
            let mut n = 0u64;
            for v in flows(black_box(buf)).flatten() {
                n = n.wrapping_add(v.orig().proto.0 as u64 + v.timeout().unwrap_or(0) as u64);
                black_box(&v);
            }
            black_box(n);
        }),
    ));
    rows.push((
        "decode_aggregate_topk",
        best_cpu(|| {
            let mut h = topk();
            decode_into(black_box(buf), &mut h);
            black_box(h);
        }),
    ));
    rows.push((
        "decode_aggregate_exact",
        best_cpu(|| {
            let mut h = exact();
            decode_into(black_box(buf), &mut h);
            black_box(h);
        }),
    ));
    rows.push((
        "owned_aggregate_topk",
        best_cpu(|| {
            let mut h = topk();
            h.extend(black_box(owned).iter());
            black_box(h);
        }),
    ));
    rows.push((
        "owned_aggregate_exact",
        best_cpu(|| {
            let mut h = exact();
            h.extend(black_box(owned).iter());
            black_box(h);
        }),
    ));
    let (mut mt, mut me) = (topk(), exact());
    decode_into(buf, &mut mt);
    decode_into(buf, &mut me);
    println!();
    println!("buffer: {} flows, {} bytes", n, buf.len());
    println!(
        "aggregator memory after 1M flows: top-K (K={K}) {} KiB, exact {} KiB",
        mt.memory_bytes() / 1024,
        me.memory_bytes() / 1024
    );
    println!("thread CPU time, best of 5 passes over {n} flows:");
    println!(
        "{:<24} {:>10} {:>14} {:>10}",
        "bench", "cpu s", "flows/cpu-s", "x decode"
    );
    let base = rows[0].1;
    for (name, secs) in rows {
        match (secs, base) {
            (Some(s), Some(b)) if s > 0.0 && b > 0.0 => println!(
                "{:<24} {:>10.3} {:>14.0} {:>10.2}",
                name,
                s,
                n as f64 / s,
                s / b
            ),
            _ => println!("{name:<24} (no /proc/thread-self/stat)"),
        }
    }
}

fn run_criterion(buf: &[u8], owned: &[Flow]) {
    let n = owned.len();
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    {
        let mut g = c.benchmark_group("aggregate_1m");
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(10);
        g.sampling_mode(SamplingMode::Flat);
        g.bench_function(BenchmarkId::from_parameter("decode_only"), |bch| {
            bch.iter(|| {
                let mut n = 0u64;
                for v in flows(black_box(buf)).flatten() {
                    // Touch what aggregation reads, so the baseline pays
                    // for the same decode work.
                    n = n.wrapping_add(v.orig().proto.0 as u64 + v.timeout().unwrap_or(0) as u64);
                    black_box(&v);
                }
                n
            })
        });
        g.bench_function(
            BenchmarkId::from_parameter("decode_aggregate_topk"),
            |bch| {
                bch.iter(|| {
                    let mut h = topk();
                    decode_into(black_box(buf), &mut h);
                    h
                })
            },
        );
        g.bench_function(
            BenchmarkId::from_parameter("decode_aggregate_exact"),
            |bch| {
                bch.iter(|| {
                    let mut h = exact();
                    decode_into(black_box(buf), &mut h);
                    h
                })
            },
        );
        g.bench_function(BenchmarkId::from_parameter("owned_aggregate_topk"), |bch| {
            bch.iter(|| {
                let mut h = topk();
                h.extend(black_box(owned).iter());
                h
            })
        });
        g.bench_function(
            BenchmarkId::from_parameter("owned_aggregate_exact"),
            |bch| {
                bch.iter(|| {
                    let mut h = exact();
                    h.extend(black_box(owned).iter());
                    h
                })
            },
        );
        g.finish();
    }
    c.final_summary();

    // Ratios from criterion's estimates of this run.
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("target"))
        .join("criterion/aggregate_1m");
    let mean = |name: &str| -> Option<f64> {
        let t = std::fs::read_to_string(dir.join(name).join("new/estimates.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&t).ok()?;
        v["mean"]["point_estimate"].as_f64()
    };
    println!();
    if let Some(base) = mean("decode_only") {
        println!("{:<24} {:>14} {:>10}", "bench", "flows/s", "x decode");
        for name in [
            "decode_only",
            "decode_aggregate_topk",
            "decode_aggregate_exact",
            "owned_aggregate_topk",
            "owned_aggregate_exact",
        ] {
            if let Some(ns) = mean(name) {
                println!(
                    "{:<24} {:>14.0} {:>10.2}",
                    name,
                    n as f64 / (ns / 1e9),
                    ns / base
                );
            }
        }
    }
}
