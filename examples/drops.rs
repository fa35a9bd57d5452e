//! A live, top-like view of conntrack drops by reason and by key (source,
//! destination service, protocol, ...), from the drop tracer
//! (`conntrack_netlink::trace`, feature `trace`).
//!
//! ```text
//! cargo run --example drops --features trace -- --netns blue --duration 30
//! cargo run --example drops --features trace -- --duration 10 --json
//! ```
//!
//! Needs root (CAP_BPF and CAP_PERFMON to load the program, CAP_NET_ADMIN
//! for ctnetlink), a kernel with BTF and drop reasons (6.0+), and clang at
//! build time. Exit codes: 0 ok, 3 bad arguments, 4 namespace not found, 5
//! no privileges or tracing unsupported (the message says which), 6 other
//! errors.

use clap::Parser;
use conntrack_kit::analyze::hotspots::{HotspotConfig, Hotspots, KeyKind};
use conntrack_kit::netlink::Netns;
use conntrack_kit::netlink::trace::{DropReason, DropRecord, TraceConfig, TraceError, Tracer};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Live view of conntrack drops by reason and key.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Only this network namespace (`ip netns add NAME`, or a path such as
    /// /proc/PID/ns/net); every namespace by default.
    #[arg(long)]
    netns: Option<String>,
    /// Stop after this many seconds (runs until interrupted otherwise).
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds between screens.
    #[arg(long, default_value_t = 2.0)]
    interval: f64,
    /// Rows per key.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Also show drops no conntrack or NAT failure caused (ruleset
    /// verdicts); without it they are only counted.
    #[arg(long)]
    all: bool,
    /// Print one JSON document at the end instead of screens.
    #[arg(long)]
    json: bool,
}

const KEYS: [KeyKind; 5] = [
    KeyKind::SrcIp,
    KeyKind::Destination,
    KeyKind::Proto,
    KeyKind::Zone,
    KeyKind::Nat,
];

/// Drops per reason, each with its hotspots.
struct View {
    top: usize,
    by_reason: BTreeMap<DropReason, Hotspots>,
    last: BTreeMap<DropReason, DropRecord>,
    total: u64,
}

impl View {
    fn add(&mut self, r: DropRecord) {
        let top = self.top;
        self.by_reason
            .entry(r.reason)
            .or_insert_with(|| Hotspots::new(HotspotConfig::default().with_top(top)))
            .add(&r);
        self.total += 1;
        self.last.insert(r.reason, r);
    }

    fn screen(&self, elapsed: Duration, lost: u64, unrecorded: u64) -> String {
        let mut out = format!(
            "conntrack drops: {} in {:.0} s ({} lost, {} ruleset drops counted, not shown)\n",
            self.total,
            elapsed.as_secs_f64(),
            lost,
            unrecorded
        );
        for (reason, h) in &self.by_reason {
            let s = h.summary();
            out.push_str(&format!("\n{reason}: {}\n", s.flows));
            for kind in KEYS {
                let Some(t) = s.table(kind) else { continue };
                let rows: Vec<String> = t
                    .top
                    .iter()
                    .map(|k| format!("{} ({})", k.key, k.count))
                    .collect();
                if !rows.is_empty() {
                    out.push_str(&format!("  {:<12} {}\n", kind.name(), rows.join(", ")));
                }
            }
            if let Some(r) = self.last.get(reason)
                && let Some(loc) = &r.location
            {
                out.push_str(&format!("  {:<12} {loc}\n", "location"));
            }
            if let Some(hook) = self.last.get(reason).and_then(|r| r.hook) {
                out.push_str(&format!("  {:<12} {hook:?}\n", "hook"));
            }
        }
        out
    }

    fn json(&self, elapsed: Duration, lost: u64, unrecorded: u64) -> serde_json::Value {
        let reasons: serde_json::Map<String, serde_json::Value> = self
            .by_reason
            .iter()
            .map(|(reason, h)| {
                let s = h.summary();
                let keys: serde_json::Map<String, serde_json::Value> = KEYS
                    .iter()
                    .filter_map(|&k| {
                        let t = s.table(k)?;
                        let rows: Vec<_> = t
                            .top
                            .iter()
                            .map(|c| json!({"key": c.key.to_string(), "count": c.count}))
                            .collect();
                        Some((k.name().to_owned(), json!(rows)))
                    })
                    .collect();
                (
                    reason.name().to_owned(),
                    json!({"drops": s.flows, "top": keys}),
                )
            })
            .collect();
        json!({
            "seconds": elapsed.as_secs_f64(),
            "drops": self.total,
            "lost": lost,
            "ruleset_unrecorded": unrecorded,
            "reasons": reasons,
        })
    }
}

enum Fail {
    Args(String),
    NotFound(String),
    Unavailable(String),
    Other(String),
}

fn netns(arg: &str) -> Result<Netns, Fail> {
    let ns = if arg.contains('/') {
        Netns::Path(PathBuf::from(arg))
    } else {
        Netns::named(arg)
    };
    match ns.path() {
        Some(p) if !p.exists() => Err(Fail::NotFound(format!(
            "network namespace {arg} not found ({})",
            p.display()
        ))),
        _ => Ok(ns),
    }
}

fn run(args: &Args) -> Result<(), Fail> {
    if args.interval <= 0.0 || !args.interval.is_finite() {
        return Err(Fail::Args("--interval must be positive".into()));
    }
    if let Some(d) = args.duration
        && (d <= 0.0 || !d.is_finite())
    {
        return Err(Fail::Args("--duration must be positive".into()));
    }
    let mut cfg = TraceConfig::default().with_ruleset(args.all);
    if let Some(name) = args.netns.as_deref() {
        cfg = cfg.with_netns(netns(name)?);
    }
    let mut tracer = Tracer::start(&cfg).map_err(|e| match e {
        TraceError::Netns(_) => Fail::NotFound(e.to_string()),
        e if e.is_unavailable() => Fail::Unavailable(e.to_string()),
        e => Fail::Other(e.to_string()),
    })?;
    let mut view = View {
        top: args.top,
        by_reason: BTreeMap::new(),
        last: BTreeMap::new(),
        total: 0,
    };
    let t0 = Instant::now();
    let end = args.duration.map(|d| t0 + Duration::from_secs_f64(d));
    let interval = Duration::from_secs_f64(args.interval);
    let mut next_screen = t0 + interval;
    loop {
        let now = Instant::now();
        if end.is_some_and(|e| now >= e) {
            break;
        }
        let wake = end.map_or(next_screen, |e| e.min(next_screen));
        if let Some(r) = tracer.next(wake.saturating_duration_since(now)) {
            match r {
                Ok(r) => view.add(r),
                Err(e) => eprintln!("drops: {e}"),
            }
        }
        if !args.json && Instant::now() >= next_screen {
            // Clear the screen and home the cursor, as top does.
            print!(
                "\x1b[2J\x1b[H{}",
                view.screen(t0.elapsed(), tracer.lost(), tracer.unrecorded())
            );
            next_screen += interval;
        }
    }
    for r in tracer.drain() {
        match r {
            Ok(r) => view.add(r),
            Err(e) => eprintln!("drops: {e}"),
        }
    }
    if args.json {
        println!(
            "{}",
            view.json(t0.elapsed(), tracer.lost(), tracer.unrecorded())
        );
    } else {
        print!(
            "{}",
            view.screen(t0.elapsed(), tracer.lost(), tracer.unrecorded())
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(3);
        }
        Err(e) => {
            let _ = e.print(); // --help, --version
            return ExitCode::SUCCESS;
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let (code, msg) = match f {
                Fail::Args(m) => (3, m),
                Fail::NotFound(m) => (4, m),
                Fail::Unavailable(m) => (5, m),
                Fail::Other(m) => (6, m),
            };
            eprintln!("drops: {msg}");
            ExitCode::from(code)
        }
    }
}
