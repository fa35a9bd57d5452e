//! `doctor`: an all-in-one conntrack report for this host, another network
//! namespace, or a capture from another host.
//!
//! ```text
//! cargo run --release --example doctor                      # this host (root)
//! cargo run --release --example doctor -- --netns blue      # a named namespace
//! cargo run --release --example doctor -- --pid 4242        # a container's namespace
//! cargo run --release --example doctor -- --capture DIR     # files saved elsewhere
//! cargo run --release --example doctor -- --sample --json   # the bundled sample, as JSON
//! ```
//!
//! The report is the library's (`conntrack_tune::report::Report`, rendered
//! by `conntrack_tune::render::report_text`): the table and how it got
//! its size, what each counter says over a window (and what this kernel
//! does not count), what the table holds, findings with their ranked
//! causes, answers to the questions operators ask, the tuning plan and the
//! folk recipes judged for this host. `--json` prints the same report as
//! one JSON document (schema `conntrack-kit/report`).
//!
//! Without privileges it analyses what `/proc` shows of this host
//! (counters, rates, sizing, host facts) and says what needs CAP_NET_ADMIN
//! (the dump: what the table holds, hotspots, who owns the flows); the
//! report's `unread` lists it. When nothing at all can be read (no
//! conntrack, or another namespace without CAP_SYS_ADMIN) it says so on
//! stderr and, unless `--no-sample` is given, analyses the bundled sample
//! incident, labelled "SAMPLE INCIDENT — not this host" (`origin.kind`
//! `sample` in JSON), and exits 5. Exit codes are listed in `--help`.
mod common;

use clap::Parser;
use common::analysis::analyse;
use common::exit::{
    EXIT_CRITICAL, EXIT_ERROR, EXIT_HEALTHY, EXIT_UNAVAILABLE, EXIT_WARNING, exit_codes_help,
    report,
};
use common::live::{LiveOptions, WindowArgs};
use common::target::{CaptureArgs, NetnsArgs, Target};
use common::{Failure, capture, live, parse_args};
use conntrack_kit::tune::render;
use conntrack_kit::tune::report::Status;
use std::io::Write as _;

const ABOUT: &str = "All-in-one conntrack report: table, counters now vs since boot, what the \
table holds, findings with ranked causes, the tuning plan and folk recipes judged";

const LONG_ABOUT: &str = "\
All-in-one conntrack (nf_conntrack) report for this host, another network namespace
(--netns NAME, --pid PID) or files captured on another host (--capture DIR):

  - the table: count, max, utilisation, buckets and how the table got its size,
    mean chain length, the kernel's default for this RAM, memory
  - every counter over a window (--window, default 3 s): rising now, history, or
    not counted by this kernel at all
  - what the table holds: protocols, NAT, DNS, states, top sources and destinations
    (exact, or on big tables a bounded count whose rows are proven the heaviest)
  - who owns the flows: the processes and containers with the most entries, and
    why the others have no local owner (forwarded, closed, no ports)
  - findings with the numbers they rest on and their causes ranked against each other
  - answers to the questions the data can answer (now or since boot? buckets?
    more CPUs? who drives the table?)
  - the tuning plan, and the folk recipes found online judged for this host

Live runs need root for everything: the table's entries come from a ctnetlink
dump (CAP_NET_ADMIN) and another namespace must be entered (CAP_SYS_ADMIN).
Without privileges doctor analyses what /proc shows of this host (counters,
rates, sizing, host facts) and says what it could not read. When nothing can
be read (no conntrack, or another namespace), it says so on stderr and
analyses the bundled SAMPLE INCIDENT instead (clearly labelled; exit code 5),
unless --no-sample is given.

Capture layout (see examples/data/README.md): stats.txt (`@ SECONDS` samples of
/proc/net/stat/nf_conntrack or conntrack -S), conntrack-L.txt, conntrack-S.txt,
conntrack-C.txt, iptables-save.txt or nft-ruleset.txt, meta.txt, and copies of
the host's /proc, /sys and /etc files at their paths.";

#[derive(Debug, Parser)]
#[command(name = "doctor", about = ABOUT, long_about = LONG_ABOUT, after_help = exit_help())]
struct Args {
    #[command(flatten)]
    ns: NetnsArgs,

    #[command(flatten)]
    capture: CaptureArgs,

    #[command(flatten)]
    window: WindowArgs,

    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,

    /// Exit with code 5 instead of analysing the bundled sample when this
    /// host cannot be analysed.
    #[arg(long, conflicts_with = "sample")]
    no_sample: bool,

    /// Rows per hotspot table (`--top` is an old name).
    #[arg(long, alias = "top", value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    rows: u16,

    /// Never show the dump progress bar (it is shown only when stderr is a
    /// terminal anyway).
    #[arg(long)]
    no_progress: bool,

    /// Also trace conntrack's drops for SECONDS (eBPF, root; built with
    /// feature `trace`): findings cite the reasons and flows of the drops,
    /// and the plan follows the reasons seen.
    #[cfg(feature = "trace")]
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    trace: Option<u64>,
}

/// doctor's rows of the exit-code table.
fn exit_help() -> String {
    exit_codes_help(&[
        (0, "healthy, no finding of warning level or above"),
        (1, ""),
        (2, ""),
        (3, ""),
        (4, ""),
        (
            5,
            "also when the bundled sample was shown instead, or when nothing could be judged \
             (an empty capture)",
        ),
        (6, ""),
    ])
}

fn main() {
    let args: Args = parse_args();
    std::process::exit(run(&args));
}

fn run(args: &Args) -> i32 {
    let target = match Target::resolve(&args.ns, Some(&args.capture)) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let top = usize::from(args.rows);
    #[cfg(feature = "trace")]
    let tracing = match args.trace.map(|s| common::traced::start(&target, s)) {
        Some(Err(e)) => return fail(&e),
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let mut fell_back = false;
    let collected = if target.is_live() {
        let opts = LiveOptions {
            window: args.window.window,
            progress: !args.no_progress && !args.json,
            top,
        };
        match live::collect(&target, &opts) {
            Ok(c) => Ok(c),
            Err(Failure::Unavailable(msg)) if !args.no_sample => {
                eprintln!("doctor: {msg}");
                eprintln!(
                    "doctor: {} cannot be analysed; showing the bundled SAMPLE INCIDENT instead \
                     (not this host; --no-sample exits instead)",
                    target.describe()
                );
                fell_back = true;
                capture::collect(&Target::Sample, top)
            }
            Err(e) => Err(e),
        }
    } else {
        capture::collect(&target, top)
    };
    #[allow(unused_mut)] // with feature trace, the traced drops join it
    let mut collected = match collected {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    #[cfg(feature = "trace")]
    if let Some(p) = tracing.filter(|_| !fell_back)
        && let Err(e) = common::traced::finish(p, &mut collected)
    {
        return fail(&e);
    }
    let report = analyse(&collected);
    for u in &report.unread {
        eprintln!("doctor: not analysed: {u}");
    }
    let out = if args.json {
        match report.to_json() {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => return fail(&Failure::Error(format!("JSON: {e}"))),
        }
    } else {
        render::report_text(&report)
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return EXIT_ERROR;
        }
        return fail(&Failure::Error(format!("writing the report: {e}")));
    }
    if fell_back {
        return EXIT_UNAVAILABLE;
    }
    match report.status() {
        Status::Healthy => EXIT_HEALTHY,
        Status::Warning => EXIT_WARNING,
        Status::Critical => EXIT_CRITICAL,
        Status::NotJudged => {
            eprintln!(
                "doctor: nothing could be judged from {}: no table size, counters or flows",
                collected.target.describe()
            );
            EXIT_UNAVAILABLE
        }
    }
}

fn fail(e: &Failure) -> i32 {
    report("doctor", e)
}
