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

use clap::Parser;
use conntrack_kit::ct_core::host::max_guard::{ConntrackMaxGuard, read_max};
use conntrack_kit::netlink::fill::{self, FillOptions, Mix};
use conntrack_kit::netlink::{Conntrack, Error, Netns};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;

/// Fill a network namespace's conntrack table with synthetic flows.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The network namespace (`ip netns add NAME`), or a path such as
    /// /proc/PID/ns/net.
    #[arg(long)]
    netns: String,
    /// How many flows to create.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Flow kinds and weights: tcp, udp, icmp, tcp6, udp6, icmp6.
    #[arg(long, default_value = "tcp=60,udp=30,icmp=10")]
    mix: Mix,
    /// Timeout of every flow, seconds.
    #[arg(long, default_value_t = 86_400)]
    timeout: u32,
    /// Index of the first flow (to add more flows to a filled table).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Create requests per datagram.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Raise the global nf_conntrack_max if the fill needs it (left raised).
    #[arg(long)]
    raise_max: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("fill: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let netns = if args.netns.contains('/') {
        Netns::Path(args.netns.clone().into())
    } else {
        Netns::named(&args.netns)
    };
    let mut ct = Conntrack::open_in(&netns).map_err(|e| explain(&e, &args.netns))?;
    let existing = ct.count().map_err(|e| explain(&e, &args.netns))?;
    let need = u64::from(existing) + args.count;
    let max = read_max().map_err(|e| format!("reading nf_conntrack_max: {e}"))?;
    if max != 0 && max < need {
        if !args.raise_max {
            return Err(format!(
                "nf_conntrack_max is {max} but the namespace would hold {need} flows; \
                 pass --raise-max or run `sysctl -w net.netfilter.nf_conntrack_max={need}`"
            ));
        }
        let guard = ConntrackMaxGuard::at_least(need)
            .map_err(|e| format!("raising nf_conntrack_max: {e}"))?;
        eprintln!(
            "raised nf_conntrack_max from {max} to {need}; restore with \
             `sysctl -w net.netfilter.nf_conntrack_max={max}`"
        );
        // Left raised on purpose: the flows outlive this process.
        std::mem::forget(guard);
    }
    let opts = FillOptions::new(args.count)
        .mix(args.mix.clone())
        .timeout(args.timeout)
        .start(args.start)
        .batch(args.batch);
    let bar = ProgressBar::new(args.count).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} flows {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = fill::fill_with_progress(&mut ct, &opts, |done| bar.set_position(done))
        .map_err(|e| explain(&e, &args.netns))?;
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
        return Err("no flow was created".into());
    }
    Ok(())
}

fn explain(e: &Error, ns: &str) -> String {
    match e {
        Error::NetnsOpen { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            format!("network namespace `{ns}` does not exist (create it with `ip netns add {ns}`)")
        }
        e if e.is_permission_denied() => format!(
            "{e}\n(run as root: entering a namespace needs CAP_SYS_ADMIN, ctnetlink needs CAP_NET_ADMIN)"
        ),
        e => e.to_string(),
    }
}
