//! `lab`: conntrack incidents reproduced live in throw-away network
//! namespaces, for `doctor`, `top`, `watch` and the exporter to look at.
//!
//! ```text
//! cargo run --example lab -- list                       # the scenarios
//! cargo run --example lab -- run table-full             # runs it for its default time
//! cargo run --example lab -- run nat-race --keep        # stays up until Ctrl-C (at most 1 h)
//! cargo run --example doctor -- --netns ckit-lab-4242-0-router   # from another terminal
//! cargo run --example lab -- clean                      # removes what a crashed lab left
//! ```
//!
//! The library does the work (`conntrack_kit::netlink::lab`): the
//! topology, the traffic, the condition that says the incident shows, and
//! the restoration of every global sysctl a scenario changes (also after a
//! crash, by the next lab or guard that takes the lock).
mod common;

use clap::{Parser, Subcommand};
use common::Failure;
use common::duration::{duration_in, fmt_duration};
use common::exit::{EXIT_HEALTHY, PRIVILEGES_HINT, exit_codes_help, report};
use common::parse_args;
use conntrack_kit::ct_core::{Counter, Stats};
use conntrack_kit::netlink::lab::{
    LabError, Running, SCENARIOS, Scenario, StartOptions, clean_stale, lab_namespaces,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ABOUT: &str = "Conntrack incidents reproduced live in throw-away network namespaces \
(client -> NAT router -> server), for doctor, top, watch and the exporter to look at";

const LONG_ABOUT: &str = "\
Reproduces conntrack incidents for real, inside network namespaces it creates
(named ckit-lab-PID-N-ROLE): clients, a router doing NAT with nftables, servers.
`lab run NAME` builds the lab, starts the traffic, waits until the incident shows
in the router's counters, prints the router namespace's name and a status line per
second, and tears everything down after --duration or on Ctrl-C. Every global
sysctl a scenario changes (nf_conntrack_max, nf_conntrack_buckets,
nf_log_all_netns) is restored at the end; if the lab is killed, the next lab,
test or guard restores it, and `lab clean` removes the namespaces it left.

Point the other examples at the router while it runs (`--keep` keeps it up):
  doctor --netns ROUTER      watch --netns ROUTER      top --netns ROUTER

Needs root, ip (iproute2) and nft (nftables). Traffic never leaves the lab's
namespaces (addresses from 198.18.0.0/15).";

#[derive(Debug, Parser)]
#[command(name = "lab", about = ABOUT, long_about = LONG_ABOUT, after_help = exit_help())]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// List the scenarios, with what each shows and what doctor should say.
    List,
    /// Run a scenario.
    Run {
        /// The scenario (`lab list`).
        name: String,
        /// How long the incident runs once it shows (default 15s; with
        /// --keep, 10m). A duration: 30s, 2m, or plain seconds.
        #[arg(long, value_name = "DURATION",
              value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(3600)))]
        duration: Option<Duration>,
        /// Stay up (traffic running) until Ctrl-C or --duration (default
        /// 10m), so that a person can point doctor, top, watch or the
        /// exporter at the router.
        #[arg(long)]
        keep: bool,
        /// Print no status line per second.
        #[arg(long)]
        quiet: bool,
    },
    /// Remove the namespaces of labs whose process is gone.
    Clean,
}

fn exit_help() -> String {
    exit_codes_help(&[
        (0, "the scenario ran (or the list or clean was done)"),
        (3, ""),
        (4, "also: no scenario of that name"),
        (
            5,
            "also: this kernel or machine cannot show the scenario (the reason is printed)",
        ),
        (6, "also: the incident did not show within its time limit"),
    ])
}

fn main() {
    let args: Args = parse_args();
    let r = match &args.cmd {
        Cmd::List => {
            list();
            Ok(())
        }
        Cmd::Clean => clean(),
        Cmd::Run {
            name,
            duration,
            keep,
            quiet,
        } => run(name, *duration, *keep, *quiet),
    };
    std::process::exit(match r {
        Ok(()) => EXIT_HEALTHY,
        Err(e) => report("lab", &e),
    });
}

fn list() {
    for s in SCENARIOS {
        println!("{:<22} class {}  {}", s.name, s.class, s.title);
        println!("{:<22}   doctor: {}", "", s.expect);
        if !s.changes.is_empty() {
            let names: Vec<&str> = s.changes.iter().map(|c| c.name()).collect();
            println!("{:<22}   changes (restored): {}", "", names.join(", "));
        }
        if let Some(why) = s.unsupported() {
            println!("{:<22}   cannot be shown here: {why}", "");
        }
    }
}

fn need_root() -> Result<(), Failure> {
    // The effective uid: the second field of `Uid:` in /proc/self/status.
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        });
    if euid.as_deref() == Some("0") {
        Ok(())
    } else {
        Err(Failure::Unavailable(format!(
            "the lab creates network namespaces and raw sockets\n{PRIVILEGES_HINT}"
        )))
    }
}

fn lab_failure(e: LabError) -> Failure {
    match e {
        LabError::Unsupported { .. } => Failure::Unavailable(e.to_string()),
        LabError::UnknownScenario(_) => Failure::NoTarget(e.to_string()),
        e => Failure::Error(e.to_string()),
    }
}

fn clean() -> Result<(), Failure> {
    need_root()?;
    let removed = clean_stale().map_err(lab_failure)?;
    for n in &removed {
        println!("removed {n}");
    }
    for (n, pid, alive) in lab_namespaces() {
        if alive {
            println!(
                "kept {n}: its lab (pid {}) is running",
                pid.map_or("?".into(), |p| p.to_string())
            );
        }
    }
    if removed.is_empty() {
        println!("no stale lab namespace");
    }
    Ok(())
}

fn run(name: &str, duration: Option<Duration>, keep: bool, quiet: bool) -> Result<(), Failure> {
    let scenario =
        Scenario::find(name).ok_or_else(|| lab_failure(LabError::UnknownScenario(name.into())))?;
    need_root()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Failure::Error(format!("install a signal handler: {e}")))?;
    }
    let duration = duration.unwrap_or(if keep {
        Duration::from_secs(600)
    } else {
        Duration::from_secs(15)
    });
    println!("lab {}: {}", scenario.name, scenario.title);
    println!("  {}", scenario.shows);
    println!("  starting; waiting for: the incident to show");
    let mut running = scenario
        .start(&StartOptions::default())
        .map_err(lab_failure)?;
    for n in running.notes() {
        println!("  {n}");
    }
    println!(
        "  the incident shows ({}); router namespace: {}",
        running.ready_condition(),
        running.router()
    );
    println!(
        "  look at it: doctor --netns {r}   (also watch, top, exporter --netns {r})",
        r = running.router()
    );
    println!(
        "  running for {}{}",
        fmt_duration(duration),
        if keep {
            ", or until Ctrl-C"
        } else {
            "; Ctrl-C ends it early"
        }
    );
    status_loop(&mut running, duration, &stop, quiet);
    if stop.load(Ordering::Relaxed) {
        println!("  interrupted; tearing down");
    }
    let summary = running.stop().map_err(lab_failure)?;
    print!("{summary}");
    println!("  namespaces deleted; global sysctls restored");
    Ok(())
}

/// The counters worth a look in a status line.
const SHOWN: [Counter; 7] = [
    Counter::Drop,
    Counter::EarlyDrop,
    Counter::InsertFailed,
    Counter::ClashResolve,
    Counter::ChainTooLong,
    Counter::Invalid,
    Counter::Found,
];

fn status_loop(run: &mut Running, duration: Duration, stop: &AtomicBool, quiet: bool) {
    let t0 = Instant::now();
    let mut last: Option<(Instant, Stats, Option<u64>)> = None;
    while t0.elapsed() < duration && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100).min(duration.saturating_sub(t0.elapsed())));
        if quiet
            || last
                .as_ref()
                .is_some_and(|(t, ..)| t.elapsed() < Duration::from_secs(1))
        {
            continue;
        }
        let Ok(now) = run.stats() else { continue };
        // The packets NAT itself dropped, which no counter shows, where the
        // scenario counts them (nat-no-address).
        let masq = run.lab().masquerade_packets().ok().flatten();
        if let Some((t, prev, prev_masq)) = &last {
            let secs = t.elapsed().as_secs_f64().max(0.001);
            let mut rates: Vec<String> = SHOWN
                .iter()
                .filter_map(|&c| {
                    let d = now
                        .total()
                        .get(c)?
                        .wrapping_sub(prev.total().get(c).unwrap_or(0));
                    (d > 0).then(|| format!("{} {:.0}/s", c.name(), f64::from(d) / secs))
                })
                .collect();
            if let (Some(m), Some(p)) = (masq, prev_masq) {
                rates.push(format!(
                    "masquerade rule {:.0}/s",
                    m.saturating_sub(*p) as f64 / secs
                ));
            }
            println!(
                "  {:>5.0}s  entries {:>7}  {}",
                t0.elapsed().as_secs_f64(),
                now.entries.unwrap_or(0),
                if rates.is_empty() {
                    "no counter rising".into()
                } else {
                    rates.join("  ")
                }
            );
        }
        last = Some((Instant::now(), now, masq));
    }
}
