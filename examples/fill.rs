//! Fills a network namespace's conntrack table with synthetic flows over
//! ctnetlink (batched `IPCTNL_MSG_CT_NEW`), for tests and benchmarks.
//!
//! ```text
//! ip netns add ck-bench
//! cargo run --release --example fill -- --netns ck-bench --count 1000000 \
//!     --mix tcp=60,udp=30,icmp=10 --raise-max
//! ip netns exec ck-bench conntrack -C
//! ```
//!
//! Needs root: CAP_SYS_ADMIN to enter the namespace and CAP_NET_ADMIN for
//! ctnetlink. `nf_conntrack_max` is global and compared against each
//! namespace's count: `--raise-max` raises it as far as the fill needs and
//! leaves it raised (printing the old value to restore with
//! `sysctl -w net.netfilter.nf_conntrack_max=OLD`).
mod common;

use clap::Parser;
use common::duration::duration_in;
use common::exit::{exit_codes_help, exit_with, failure_of};
use common::target::{NetnsArgs, Target};
use common::{Failure, parse_args};
use conntrack_kit::ct_core::host::max_guard::{ConntrackMaxGuard, read_max};
use conntrack_kit::netlink::Conntrack;
use conntrack_kit::netlink::fill::{self, FillOptions, Mix};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

const LONG_ABOUT: &str = "\
Fills one network namespace's conntrack table with synthetic flows through
batched ctnetlink creates (IPCTNL_MSG_CT_NEW), for tests and benchmarks.

The namespace is required (--netns NAME or --pid PID): fill never writes
into this host's own table. Needs root (CAP_SYS_ADMIN to enter the
namespace, CAP_NET_ADMIN for ctnetlink).";

/// Fill a network namespace's conntrack table with synthetic flows.
#[derive(Parser, Debug)]
#[command(
    name = "fill",
    version,
    long_about = LONG_ABOUT,
    after_help = exit_codes_help(&[
        (0, "the flows were created (some may have been refused: see the report)"),
        (3, "also without --netns or --pid"),
        (4, ""),
        (5, ""),
        (6, "also when nf_conntrack_max is too small without --raise-max, or no flow was created"),
    ])
)]
#[command(group(clap::ArgGroup::new("target").args(["netns", "pid"]).required(true)))]
struct Args {
    #[command(flatten)]
    ns: NetnsArgs,
    /// How many flows to create.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Flow kinds and weights: tcp, udp, icmp, tcp6, udp6, icmp6.
    #[arg(long, default_value = "tcp=60,udp=30,icmp=10")]
    mix: Mix,
    /// Timeout of every flow, whole seconds (1d, 10m, 600).
    #[arg(long, value_name = "DURATION", default_value = "1d",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(u64::from(u32::MAX))))]
    timeout: Duration,
    /// Index of the first flow (to add more flows to a filled table).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Create requests per datagram.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Raise the global nf_conntrack_max if the fill needs it (left raised).
    #[arg(long)]
    raise_max: bool,
    /// Never show the progress bar (it is shown only when stderr is a
    /// terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

fn main() {
    let args: Args = parse_args();
    exit_with("fill", run(&args));
}

fn run(args: &Args) -> Result<(), Failure> {
    if args.timeout.subsec_nanos() != 0 {
        return Err(Failure::Usage(format!(
            "--timeout {:?}: flow timeouts are whole seconds",
            args.timeout
        )));
    }
    let target = Target::resolve(&args.ns, None)?;
    let mut ct = Conntrack::open_in(&target.netns())
        .map_err(|e| failure_of(&format!("open ctnetlink in the {}", target.short()), &e))?;
    let existing = ct
        .count()
        .map_err(|e| failure_of("count the entries", &e))?;
    let need = u64::from(existing) + args.count;
    let max = read_max().map_err(|e| Failure::Error(format!("reading nf_conntrack_max: {e}")))?;
    if max != 0 && max < need {
        if !args.raise_max {
            return Err(Failure::Error(format!(
                "nf_conntrack_max is {max} but the namespace would hold {need} flows; \
                 pass --raise-max or run `sysctl -w net.netfilter.nf_conntrack_max={need}`"
            )));
        }
        let guard = ConntrackMaxGuard::at_least(need).map_err(|e| {
            let what = format!("raising nf_conntrack_max: {e}");
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                Failure::Unavailable(what)
            } else {
                Failure::Error(what)
            }
        })?;
        eprintln!(
            "raised nf_conntrack_max from {max} to {need}; restore with \
             `sysctl -w net.netfilter.nf_conntrack_max={max}`"
        );
        // Left raised on purpose: the flows outlive this process.
        std::mem::forget(guard);
    }
    let timeout = u32::try_from(args.timeout.as_secs()).unwrap_or(u32::MAX);
    let opts = FillOptions::new(args.count)
        .mix(args.mix.clone())
        .timeout(timeout)
        .start(args.start)
        .batch(args.batch);
    let bar = if args.no_progress {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.count).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} flows {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    };
    let report = fill::fill_with_progress(&mut ct, &opts, |done| bar.set_position(done))
        .map_err(|e| failure_of("create the flows", &e))?;
    bar.finish_and_clear();
    println!(
        "created {} flows in {:.2?} ({:.0} flows/s, {} datagrams); {} refused",
        report.created,
        report.elapsed,
        report.created as f64 / report.elapsed.as_secs_f64().max(1e-9),
        report.datagrams,
        report.failed
    );
    for (errno, n) in &report.errors {
        println!("  {n} x {}", std::io::Error::from_raw_os_error(*errno));
    }
    if report.created == 0 && args.count > 0 {
        return Err(Failure::Error("no flow was created".into()));
    }
    Ok(())
}
