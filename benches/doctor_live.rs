//! doctor's full analysis of a live table against the receive-only dump
//! floor, in CPU time (user + system) and peak RSS. Needs root; skips
//! without it.
//!
//! ```text
//! cargo bench --bench doctor_live                              # 1M and 3M flows
//! CONNTRACK_KIT_BENCH_FLOWS=1000000 cargo bench --bench doctor_live
//! CONNTRACK_KIT_BENCH_ROUNDS=7 cargo bench --bench doctor_live
//! ```
//!
//! For each size a scratch namespace is filled once
//! (`conntrack_netlink::fill`, mix `tcp=60,udp=30,icmp=10`;
//! `nf_conntrack_max` raised by a `ConntrackMaxGuard` for the run), then
//! rounds run two child processes, alternating which goes first:
//!
//! - **floor**: open ctnetlink in the namespace, dump the table, receive
//!   every datagram and discard it (`Conntrack::dump_raw`);
//! - **doctor**: what `doctor --window 0 --netns NS --no-progress` does,
//!   through the examples' own code (`examples/common`, included below):
//!   `Target::netns_named`, `live::collect` (host facts, one statistics
//!   sample, the dump aggregated into hotspots, owners and simulated
//!   chains, the NAT rules read with `nft`), `analysis::analyse` (the
//!   library's report) and `render::report_text`.
//!
//! Each child measures itself: CPU time from `getrusage` (itself plus the
//! children it waited for, such as `nft`), peak RSS from `VmHWM`. The
//! medians of the rounds and their ratio are printed as a Markdown table
//! for BENCHMARKS.md.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs one
//! round on 2,000 flows and checks doctor's report.

#[path = "../examples/common/mod.rs"]
#[allow(unused_imports)]
mod common;

mod support;
use common::analysis::analyse;
use common::live::{self, LiveOptions};
use common::target::Target;
use conntrack_core::testkit::TestNetns;
use conntrack_kit::ct_core::L3Family;
use conntrack_kit::ct_core::host::ConntrackMaxGuard;
use conntrack_kit::netlink::fill::{self, FillOptions};
use conntrack_kit::netlink::{Conntrack, DumpPolicy, DumpRequest, Netns};
use conntrack_kit::tune::render;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{median, vm_hwm_kib};

const CHILD_ENV: &str = "CONNTRACK_KIT_DOCTOR_BENCH_CHILD";

/// What one child process measured of itself.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu: Duration,
    /// The system part of `cpu` (mostly the kernel's dump).
    sys: Duration,
    wall: Duration,
    rss_kib: u64,
    flows: u64,
}

/// Child mode: the floor or doctor in namespace `ns`; prints its usage.
fn child(ns: &str, what: &str) {
    let t = Instant::now();
    let flows = match what {
        "floor" => {
            let mut ct = Conntrack::open_in(&Netns::named(ns)).expect("open");
            let req = DumpRequest::table(L3Family::UNSPEC).policy(DumpPolicy::Accept);
            // Every datagram, NLMSG_DONE included.
            ct.dump_raw(&req, |_| {}).expect("raw dump").messages - 1
        }
        _ => {
            let target = Target::netns_named(ns).expect("the namespace");
            let opts = LiveOptions {
                window: Duration::ZERO,
                progress: false,
                top: 10,
            };
            let collected = live::collect(&target, &opts).expect("doctor's collection");
            let report = analyse(&collected);
            let text = render::report_text(&report);
            std::hint::black_box(&text);
            report.hotspots.as_ref().map_or(0, |h| h.flows)
        }
    };
    let wall = t.elapsed();
    use nix::sys::resource::UsageWho;
    let ((u, s), (cu, cs)) = (
        support::cpu(UsageWho::RUSAGE_SELF),
        support::cpu(UsageWho::RUSAGE_CHILDREN),
    );
    let cpu = u + s + cu + cs;
    println!(
        "cpu_us={} sys_us={} wall_us={} rss_kib={} flows={flows}",
        cpu.as_micros(),
        (s + cs).as_micros(),
        wall.as_micros(),
        vm_hwm_kib()
    );
}

fn run_child(ns: &str, what: &str) -> Usage {
    let exe = std::env::current_exe().expect("own executable");
    let out = Command::new(exe)
        .env(CHILD_ENV, format!("{ns}:{what}"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child");
    assert!(out.status.success(), "{what} child failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> u64 {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .unwrap_or_else(|| panic!("{what} child printed no {name}: {text}"))
    };
    Usage {
        cpu: Duration::from_micros(field("cpu_us")),
        sys: Duration::from_micros(field("sys_us")),
        wall: Duration::from_micros(field("wall_us")),
        rss_kib: field("rss_kib"),
        flows: field("flows"),
    }
}

fn main() {
    if let Ok(v) = std::env::var(CHILD_ENV) {
        let (ns, what) = v.split_once(':').unwrap_or((&v, "doctor"));
        child(ns, what);
        return;
    }
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if !support::runs_live("doctor_live", bench_mode) {
        return;
    }
    let sizes: Vec<u64> = if bench_mode {
        std::env::var("CONNTRACK_KIT_BENCH_FLOWS")
            .ok()
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1_000_000, 3_000_000])
    } else {
        vec![2_000]
    };
    let rounds: usize = if bench_mode {
        std::env::var("CONNTRACK_KIT_BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5)
    } else {
        1
    };
    let mut table = vec![
        "| flows | floor CPU | doctor CPU | **doctor / floor** | floor peak RSS | doctor peak RSS | doctor wall |".to_string(),
        "|---|---|---|---|---|---|---|".to_string(),
    ];
    for flows in sizes {
        let ns = TestNetns::new("doctor");
        let _max =
            ConntrackMaxGuard::at_least(support::table_max(flows)).expect("raise nf_conntrack_max");
        let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("open ctnetlink");
        let t0 = Instant::now();
        let r = fill::fill(&mut ct, &FillOptions::new(flows)).expect("fill");
        assert_eq!(r.created, flows, "fill: {r:?}");
        drop(ct);
        eprintln!(
            "doctor_live: filled {flows} flows in {:.2?} ({:.0} flows/s)",
            t0.elapsed(),
            flows as f64 / t0.elapsed().as_secs_f64()
        );
        let (mut floor, mut doctor) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let order: [&str; 2] = if round % 2 == 0 {
                ["floor", "doctor"]
            } else {
                ["doctor", "floor"]
            };
            for what in order {
                let u = run_child(ns.name(), what);
                assert_eq!(u.flows, flows, "{what} saw every flow");
                eprintln!(
                    "doctor_live: {flows} flows, round {round}, {what}: CPU {:.3?} (system {:.3?}), wall {:.3?}, peak RSS {} KiB",
                    u.cpu, u.sys, u.wall, u.rss_kib
                );
                if what == "floor" {
                    floor.push(u);
                } else {
                    doctor.push(u);
                }
            }
        }
        let cpu = |v: &[Usage]| median(v.iter().map(|u| u.cpu).collect());
        let wall = |v: &[Usage]| median(v.iter().map(|u| u.wall).collect());
        let rss = |v: &[Usage]| v.iter().map(|u| u.rss_kib).max().unwrap_or(0);
        let (fc, dc) = (cpu(&floor), cpu(&doctor));
        let ratio = dc.as_secs_f64() / fc.as_secs_f64().max(1e-9);
        println!(
            "doctor_live {flows} flows, medians of {rounds} interleaved rounds: floor CPU {fc:.3?}, doctor CPU {dc:.3?}, doctor/floor = {ratio:.3}; peak RSS floor {} KiB, doctor {} KiB",
            rss(&floor),
            rss(&doctor)
        );
        table.push(format!(
            "| {flows} | {:.3} s | {:.3} s | **{ratio:.3}** | {:.1} MiB | {:.1} MiB | {:.3} s |",
            fc.as_secs_f64(),
            dc.as_secs_f64(),
            rss(&floor) as f64 / 1024.0,
            rss(&doctor) as f64 / 1024.0,
            wall(&doctor).as_secs_f64()
        ));
    }
    println!("{}", table.join("\n"));
}
