//! Live dump of a namespace holding many flows, end to end, with a
//! per-state count as the aggregate. Needs root; skips without it.
//!
//! ```text
//! cargo bench --bench live_dump                       # 1,000,000 flows
//! CONNTRACK_KIT_BENCH_FLOWS=200000 cargo bench --bench live_dump
//! ```
//!
//! Three variants on the same table, in one run:
//! - `floor_recv_only`: send the dump request, receive every datagram and
//!   discard it (only netlink headers are looked at, to find the end);
//! - `ours_per_state`: the same dump through [`Conntrack::fold`], every
//!   flow decoded into a `FlowView` and counted by state;
//! - `ours_pipelined`: the same with [`Conntrack::fold_pipelined`]
//!   (datagrams received on a second thread while this one decodes);
//! - `conntrack_cli`: `ip netns exec NS conntrack -L > /dev/null`.
//!
//! The table is filled once per run (batched CT_NEW, [`fill`]) in a
//! scratch namespace; `nf_conntrack_max` is raised for the run and
//! restored. After criterion, the medians and ratios of all its
//! iterations are printed, then those of a few rounds that interleave the
//! three variants (robust against load changes on a shared machine), and
//! the peak RSS (`VmHWM`) of a child process that runs one
//! aggregating dump (and of one that runs the floor) is measured.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs as a
//! smoke test on 2,000 flows and checks the aggregate.

mod support;
use conntrack_core::testkit::TestNetns;
use conntrack_kit::analyze::Hotspots;
use conntrack_kit::ct_core::host::ConntrackMaxGuard;
use conntrack_kit::ct_core::{FlowLike, FlowState, L3Family};
use conntrack_kit::netlink::fill::{self, FillOptions};
use conntrack_kit::netlink::{Conntrack, DumpPolicy, DumpRequest, Netns};
use criterion::{Criterion, SamplingMode};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{median, vm_hwm_kib};

const CHILD_ENV: &str = "CONNTRACK_KIT_LIVE_DUMP_CHILD";

fn per_state(ct: &mut Conntrack, req: &DumpRequest) -> (Vec<(FlowState, u64)>, u64) {
    let (counts, s) = ct
        .fold(req, Vec::new, |m: &mut Vec<(FlowState, u64)>, f| {
            let st = f.flow_state();
            match m.iter_mut().find(|(k, _)| *k == st) {
                Some((_, n)) => *n += 1,
                None => m.push((st, 1)),
            }
        })
        .expect("dump");
    (counts, s.flows)
}

fn per_state_pipelined(ct: &mut Conntrack, req: &DumpRequest) -> u64 {
    let (_, s) = ct
        .fold_pipelined(req, Vec::new, |m: &mut Vec<(FlowState, u64)>, f| {
            let st = f.flow_state();
            match m.iter_mut().find(|(k, _)| *k == st) {
                Some((_, n)) => *n += 1,
                None => m.push((st, 1)),
            }
        })
        .expect("pipelined dump");
    s.flows
}

/// Every hotspot key of conntrack-analyze (top-K, K = 1024), the state
/// distribution and the remaining-timeout histograms, in the dump's
/// callback. This is the hotspot fold alone, not what `doctor` does
/// (doctor also reads sockets and host facts, attributes owners, simulates
/// bucket chains and renders the report): `benches/doctor_live.rs`
/// measures doctor itself.
fn all_keys(ct: &mut Conntrack, req: &DumpRequest) -> u64 {
    let (h, _) = ct
        .fold(
            req,
            || Hotspots::top_k(1024),
            |h: &mut Hotspots, f| h.add(f),
        )
        .expect("dump");
    h.flows()
}

fn floor(ct: &mut Conntrack, req: &DumpRequest) -> u64 {
    ct.dump_raw(req, |_| {}).expect("raw dump").messages
}

/// Child mode: one dump in namespace `ns`, then print the peak RSS.
fn child(ns: &str, what: &str) {
    let mut ct = Conntrack::open_in(&Netns::named(ns)).expect("open");
    let req = DumpRequest::table(L3Family::UNSPEC).policy(DumpPolicy::Accept);
    let n = if what == "floor" {
        floor(&mut ct, &req)
    } else {
        per_state(&mut ct, &req).1
    };
    println!("items={n} vmhwm_kib={}", vm_hwm_kib());
}

fn child_rss(ns: &str, what: &str) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .env(CHILD_ENV, format!("{ns}:{what}"))
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn cli(ns: &TestNetns) {
    let st = ns
        .command("conntrack")
        .arg("-L")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run conntrack -L");
    assert!(st.success(), "conntrack -L failed");
}

/// Clock ticks per second for /proc times (`getconf CLK_TCK`; 100 on Linux).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Fields of a /proc/.../stat line after the command name (field 3 first).
fn stat_fields(stat: &str) -> Vec<u64> {
    stat.rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

/// CPU time (user + system, including the kernel's dump work done in our
/// recv calls) of the calling thread.
fn thread_cpu(tck: f64) -> Duration {
    let f = stat_fields(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default());
    // utime and stime are fields 14 and 15: indices 11 and 12 here.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / tck)
}

/// `conntrack -L > /dev/null` in the namespace; returns its CPU time
/// (user + system, read as the waiting shell's cutime + cstime).
fn cli_cpu(ns: &TestNetns, tck: f64) -> Duration {
    let out = ns
        .command("sh")
        .args(["-c", "conntrack -L >/dev/null 2>&1 && cat /proc/$$/stat"])
        .output()
        .expect("run sh -c conntrack -L");
    assert!(out.status.success(), "conntrack -L failed: {out:?}");
    let f = stat_fields(&String::from_utf8_lossy(&out.stdout));
    // cutime and cstime are fields 16 and 17.
    let ticks = f.get(13).copied().unwrap_or(0) + f.get(14).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / tck)
}

fn ratios(phase: &str, floor: Duration, ours: Duration, cli: Duration) {
    println!(
        "live_dump ratios ({phase}): ours/floor = {:.3}, conntrack -L/ours = {:.2}",
        ours.as_secs_f64() / floor.as_secs_f64().max(1e-9),
        cli.as_secs_f64() / ours.as_secs_f64().max(1e-9)
    );
}

fn main() {
    if let Ok(v) = std::env::var(CHILD_ENV) {
        let (ns, what) = v.split_once(':').unwrap_or((&v, "ours"));
        child(ns, what);
        return;
    }
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if !support::runs_live("live_dump", bench_mode) {
        return;
    }
    let flows = support::bench_flows(bench_mode, 2_000);

    let ns = TestNetns::new("bench");
    let _max =
        ConntrackMaxGuard::at_least(support::table_max(flows)).expect("raise nf_conntrack_max");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("open ctnetlink");
    let t0 = Instant::now();
    let r = fill::fill(&mut ct, &FillOptions::new(flows)).expect("fill");
    assert_eq!(r.created, flows, "fill: {r:?}");
    eprintln!(
        "live_dump: filled {flows} flows in {:.2?} ({:.0} flows/s)",
        t0.elapsed(),
        flows as f64 / t0.elapsed().as_secs_f64()
    );
    let req = DumpRequest::table(L3Family::UNSPEC).policy(DumpPolicy::Accept);

    // The aggregate is right before anything is timed.
    let (counts, n) = per_state(&mut ct, &req);
    assert_eq!(n, flows);
    assert_eq!(counts.iter().map(|(_, c)| c).sum::<u64>(), flows);
    assert_eq!(floor(&mut ct, &req), flows + 1, "flows + NLMSG_DONE");
    assert_eq!(per_state_pipelined(&mut ct, &req), flows);
    assert_eq!(all_keys(&mut ct, &req), flows);

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    let (mut t_floor, mut t_ours, mut t_cli) = (Vec::new(), Vec::new(), Vec::new());
    let mut t_pipe = Vec::new();
    {
        let mut g = c.benchmark_group(format!("live_dump_{flows}"));
        g.sampling_mode(SamplingMode::Flat);
        g.bench_function("floor_recv_only", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    std::hint::black_box(floor(&mut ct, &req));
                    let d = t.elapsed();
                    t_floor.push(d);
                    total += d;
                }
                total
            })
        });
        g.bench_function("ours_per_state", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    std::hint::black_box(per_state(&mut ct, &req));
                    let d = t.elapsed();
                    t_ours.push(d);
                    total += d;
                }
                total
            })
        });
        g.bench_function("ours_pipelined", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    std::hint::black_box(per_state_pipelined(&mut ct, &req));
                    let d = t.elapsed();
                    t_pipe.push(d);
                    total += d;
                }
                total
            })
        });
        g.bench_function("conntrack_cli", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    cli(&ns);
                    let d = t.elapsed();
                    t_cli.push(d);
                    total += d;
                }
                total
            })
        });
        g.finish();
    }
    c.final_summary();

    let (f, o, k) = (
        median(t_floor.clone()),
        median(t_ours.clone()),
        median(t_cli.clone()),
    );
    println!(
        "live_dump {flows} flows, criterion phase medians: floor {f:.3?} ({} runs), ours {o:.3?} ({} runs), conntrack -L {k:.3?} ({} runs)",
        t_floor.len(),
        t_ours.len(),
        t_cli.len()
    );
    ratios("criterion phase", f, o, k);
    let p = median(t_pipe.clone());
    println!(
        "live_dump pipelined (criterion phase): {p:.3?}, ours_pipelined/floor = {:.3}",
        p.as_secs_f64() / f.as_secs_f64().max(1e-9)
    );

    // The criterion phase runs the variants one after the other, so a
    // change in the load of this shared machine between them skews the
    // ratios; these rounds interleave them.
    let rounds = if bench_mode { 5 } else { 1 };
    let tck = clk_tck();
    let (mut i_floor, mut i_ours, mut i_cli) = (Vec::new(), Vec::new(), Vec::new());
    let (mut c_floor, mut c_ours, mut c_cli) = (Vec::new(), Vec::new(), Vec::new());
    let mut i_pipe = Vec::new();
    let (mut i_keys, mut c_keys) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (t, c) = (Instant::now(), thread_cpu(tck));
        floor(&mut ct, &req);
        i_floor.push(t.elapsed());
        c_floor.push(thread_cpu(tck).saturating_sub(c));
        let (t, c) = (Instant::now(), thread_cpu(tck));
        per_state(&mut ct, &req);
        i_ours.push(t.elapsed());
        c_ours.push(thread_cpu(tck).saturating_sub(c));
        let t = Instant::now();
        per_state_pipelined(&mut ct, &req);
        i_pipe.push(t.elapsed());
        let (t, c) = (Instant::now(), thread_cpu(tck));
        all_keys(&mut ct, &req);
        i_keys.push(t.elapsed());
        c_keys.push(thread_cpu(tck).saturating_sub(c));
        let t = Instant::now();
        c_cli.push(cli_cpu(&ns, tck));
        i_cli.push(t.elapsed());
    }
    let (f, o, k) = (
        median(i_floor.clone()),
        median(i_ours.clone()),
        median(i_cli.clone()),
    );
    println!(
        "live_dump {flows} flows, interleaved wall-clock medians ({rounds} rounds): floor {f:.3?}, ours {o:.3?}, conntrack -L {k:.3?}"
    );
    ratios("interleaved, wall clock", f, o, k);
    let p = median(i_pipe.clone());
    println!(
        "live_dump pipelined (interleaved, wall clock): {p:.3?}, ours_pipelined/floor = {:.3}, conntrack -L/ours_pipelined = {:.2}",
        p.as_secs_f64() / f.as_secs_f64().max(1e-9),
        k.as_secs_f64() / p.as_secs_f64().max(1e-9)
    );
    // CPU time is what a dump costs whatever else runs on the machine
    // (the dump is one thread, so on an idle machine wall = CPU).
    let (f, o, k) = (
        median(c_floor.clone()),
        median(c_ours.clone()),
        median(c_cli.clone()),
    );
    println!(
        "live_dump {flows} flows, interleaved CPU-time medians ({rounds} rounds): floor {f:.3?}, ours {o:.3?}, conntrack -L {k:.3?}"
    );
    ratios("interleaved, CPU time", f, o, k);
    let (kw, kc) = (median(i_keys.clone()), median(c_keys.clone()));
    println!(
        "live_dump all hotspot keys (analyze, top-K 1024): wall {kw:.3?} = {:.3}x floor, CPU {kc:.3?} = {:.3}x floor",
        kw.as_secs_f64() / median(i_floor.clone()).as_secs_f64().max(1e-9),
        kc.as_secs_f64() / f.as_secs_f64().max(1e-9)
    );
    println!("live_dump states: {counts:?}");
    for what in ["ours", "floor"] {
        match child_rss(ns.name(), what) {
            Some(s) => println!("live_dump peak RSS, {what} in a child process: {s}"),
            None => println!("live_dump peak RSS, {what}: could not run the child"),
        }
    }
}
