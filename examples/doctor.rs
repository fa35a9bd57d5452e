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
//! The report: table summary (count, max, buckets, utilisation, memory),
//! counter rates over a window (total and per CPU), the state
//! distribution, the top keys per hotspot kind, the bucket-distribution
//! estimate (Poisson model and a keyed-hash simulation over the real
//! tuples), findings with their evidence, and the tuning plan. `--json`
//! prints the same as one JSON document.
//!
//! Without privileges or without conntrack it says so on stderr and, unless
//! `--no-sample` is given, analyses the bundled sample incident, labelled
//! "SAMPLE INCIDENT — not this host" (`"sample": true` in JSON), and exits
//! 5. Exit codes are listed in `--help`.
mod common;

use clap::Parser;
use common::analysis::{Analysis, Collected, Report, analyse};
use common::live::LiveOptions;
use common::source::{SourceArgs, Target};
use common::table::{bytes, indent, int, opt_int, pct, rate, table};
use common::{EXIT_CODES_HELP, EXIT_ERROR, EXIT_UNAVAILABLE, Failure, capture, live, parse_args};
use conntrack_kit::analyze::buckets::ChainCap;
use conntrack_kit::analyze::hotspots::{HotspotSummary, Key, KeyKind, KeyTable};
use conntrack_kit::analyze::rates::Activity;
use conntrack_kit::ct_core::Counter;
use conntrack_kit::tune::render;
use std::fmt::Write as _;
use std::io::Write as _;

const ABOUT: &str = "All-in-one conntrack report: table, counter rates, hotspots, states, \
buckets, findings and the tuning plan";

const LONG_ABOUT: &str = "\
All-in-one conntrack (nf_conntrack) report for this host, another network namespace
(--netns NAME, --pid PID) or files captured on another host (--capture DIR):

  - table summary: count, max, utilisation, buckets, mean chain length, memory
  - counter rates sampled over a window (--window, default 3 s), total and per CPU
  - state distribution and the top keys per hotspot kind (sources, destinations,
    ports, networks, pairs, NAT, zones, marks, unreplied sources)
  - bucket-distribution estimate: Poisson model and a keyed-hash simulation
  - findings with the numbers they rest on, and the tuning plan

Live runs need root (ctnetlink needs CAP_NET_ADMIN). Without privileges or
without conntrack, doctor says so on stderr and analyses the bundled SAMPLE
INCIDENT instead (clearly labelled; exit code 5), unless --no-sample is given.

Capture layout (see examples/data/README.md): conntrack-L.txt, conntrack-S.txt,
conntrack-C.txt, stat-0.txt + stat-1.txt with interval_secs in meta.txt, and
copies of the host's /proc and /sys files under proc/ and sys/.";

#[derive(Debug, Parser)]
#[command(name = "doctor", about = ABOUT, long_about = LONG_ABOUT, after_help = EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    source: SourceArgs,

    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,

    /// Exit with code 5 instead of analysing the bundled sample when this
    /// host cannot be analysed.
    #[arg(long, conflicts_with = "sample")]
    no_sample: bool,

    /// Rows per hotspot table.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    top: u16,

    /// Never show the dump progress bar (it is shown only when stderr is a
    /// terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

fn main() {
    let args: Args = parse_args();
    std::process::exit(run(&args));
}

fn run(args: &Args) -> i32 {
    let target = match args.source.target() {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let top = usize::from(args.top);
    let mut fell_back = false;
    let collected = if target.is_live() {
        let opts = LiveOptions {
            window: args.source.window(),
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
    let collected = match collected {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let analysis = analyse(&collected);
    let out = if args.json {
        match serde_json::to_string_pretty(&Report::new(&collected, &analysis)) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => return fail(&Failure::Error(format!("JSON: {e}"))),
        }
    } else {
        text_report(&collected, &analysis)
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
        EXIT_UNAVAILABLE
    } else {
        analysis.exit_code()
    }
}

fn fail(e: &Failure) -> i32 {
    eprintln!("doctor: error: {e}");
    e.code()
}

const SAMPLE_BANNER: &str = "\
################################################################################
##  SAMPLE INCIDENT — not this host                                           ##
##  Synthetic data bundled with conntrack-kit (examples/data/sample-incident) ##
################################################################################
";

fn section(out: &mut String, title: &str) {
    let _ = write!(out, "\n== {title} ");
    let used = title.len() + 4;
    out.push_str(&"=".repeat(80usize.saturating_sub(used)));
    out.push('\n');
}

/// Wraps text to `width` columns with an indent.
fn wrap(text: &str, indent_by: usize, width: usize) -> String {
    let pad = " ".repeat(indent_by);
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent_by + line.len() + 1 + word.len() > width {
            let _ = writeln!(out, "{pad}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{pad}{line}");
    }
    out
}

fn text_report(c: &Collected, a: &Analysis) -> String {
    let mut out = String::new();
    if c.is_sample() {
        out.push_str(SAMPLE_BANNER);
    }
    let _ = writeln!(out, "conntrack doctor: {}", c.target.describe());
    if let Some(d) = c.meta.get("description") {
        let _ = writeln!(out, "  {d}");
    }
    for (k, label) in [("hostname", "host"), ("captured_at", "captured")] {
        if let Some(v) = c.meta.get(k) {
            let _ = writeln!(out, "  {label}: {v}");
        }
    }
    summary_section(&mut out, c, a);
    rates_section(&mut out, c, a);
    if let Some(f) = &c.flows {
        states_section(&mut out, &f.hotspots);
        hotspots_section(&mut out, &f.hotspots);
    }
    buckets_section(&mut out, a);
    findings_section(&mut out, a);
    section(&mut out, "Tuning plan");
    match &a.plan {
        Ok(p) => {
            for l in render::text(p).lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "  no plan: {e}");
        }
    }
    let mut notes: Vec<&String> = c.notes.iter().collect();
    if let Some(f) = &c.flows {
        notes.extend(&f.notes);
    }
    if !notes.is_empty() {
        section(&mut out, "Not available / notes");
        for n in notes {
            out.push_str(&wrap(&format!("- {n}"), 2, 100));
        }
    }
    let _ = writeln!(
        out,
        "\nverdict: {}",
        match a.exit_code() {
            2 => "CRITICAL (exit 2)",
            1 => "WARNING (exit 1)",
            _ => "healthy (exit 0)",
        }
    );
    if c.is_sample() {
        out.push('\n');
        out.push_str(SAMPLE_BANNER);
    }
    out
}

fn summary_section(out: &mut String, c: &Collected, a: &Analysis) {
    section(out, "Table");
    let t = &a.table;
    let s = &c.snapshot;
    let mut tb = table(&["", ">value", "note"]);
    let ns = match t.init_netns {
        Some(true) => "initial namespace",
        Some(false) => "not the initial namespace (max and buckets are global, read-only here)",
        None => "",
    };
    tb.add_row(vec![
        "kernel".into(),
        t.kernel.clone().unwrap_or("-".into()),
        ns.into(),
    ]);
    tb.add_row(vec![
        "entries".into(),
        opt_int(t.count),
        "this namespace's count".into(),
    ]);
    tb.add_row(vec![
        "nf_conntrack_max".into(),
        opt_int(t.max),
        if t.max == Some(0) {
            "unlimited".into()
        } else {
            String::new()
        },
    ]);
    tb.add_row(vec![
        "utilisation".into(),
        t.utilisation_pct.map_or("-".into(), |u| format!("{u:.1}%")),
        String::new(),
    ]);
    tb.add_row(vec![
        "buckets".into(),
        opt_int(t.buckets),
        t.hashsize_param
            .map(|h| format!("hashsize parameter {}", int(h.into())))
            .unwrap_or_default(),
    ]);
    tb.add_row(vec![
        "mean chain 2N/B".into(),
        t.mean_chain_length
            .map_or("-".into(), |l| format!("{l:.2}")),
        "every entry is hashed twice".into(),
    ]);
    for (label, m) in [
        ("memory now", &t.memory_now),
        ("memory at max", &t.memory_at_max),
    ] {
        if let Some(m) = m {
            tb.add_row(vec![
                label.into(),
                bytes(m.total_bytes),
                format!(
                    "{} B/entry{} + {} B/bucket",
                    m.entry_object_bytes + m.extension_bytes,
                    if m.object_size_assumed {
                        " (object size assumed)"
                    } else {
                        " (slab)"
                    },
                    m.bucket_bytes
                ),
            ]);
        }
    }
    if let Some(mem) = s.mem_total_bytes {
        tb.add_row(vec!["host memory".into(), bytes(mem), String::new()]);
    }
    if let Some(f) = &c.flows {
        tb.add_row(vec![
            "flows analysed".into(),
            int(f.hotspots.flows),
            if f.malformed > 0 {
                format!(
                    "from {}; {} malformed skipped (first: {})",
                    f.source,
                    int(f.malformed),
                    f.first_error.as_deref().unwrap_or("?")
                )
            } else {
                format!("from {}", f.source)
            },
        ]);
    }
    out.push_str(&indent(&tb, 2));
    out.push('\n');
}

/// Counters worth a per-CPU column, in this order.
const CPU_COLUMNS: [Counter; 9] = [
    Counter::Drop,
    Counter::EarlyDrop,
    Counter::InsertFailed,
    Counter::ClashResolve,
    Counter::ChainTooLong,
    Counter::Invalid,
    Counter::Error,
    Counter::SearchRestart,
    Counter::Found,
];

fn rates_section(out: &mut String, c: &Collected, a: &Analysis) {
    let Some(r) = &a.rates else {
        section(out, "Counters (since boot; no rate window)");
        if let Some(src) = &c.stats_source {
            let _ = writeln!(out, "  source: {src}");
        }
        let Some(stats) = c
            .snapshot
            .stats
            .as_ref()
            .or_else(|| c.series.samples().last().map(|s| &s.stats))
        else {
            let _ = writeln!(out, "  no statistics available");
            return;
        };
        let total = stats.total();
        let mut tb = table(&["counter", ">since boot"]);
        for (k, v) in total.iter() {
            tb.add_row(vec![k.name().to_string(), int(v.into())]);
        }
        out.push_str(&indent(&tb, 2));
        out.push('\n');
        return;
    };
    section(
        out,
        &format!("Counter rates over {:.1} s", r.window.covered_secs),
    );
    if let Some(src) = &c.stats_source {
        let _ = writeln!(out, "  source: {src}");
    }
    let mut tb = table(&[
        "counter",
        ">per s",
        ">peak per s",
        ">delta",
        ">since boot",
        "activity",
    ]);
    let mut zero = Vec::new();
    let mut rows = 0;
    for cr in &r.counters {
        if cr.delta == 0 && cr.since_boot == 0 {
            zero.push(cr.counter.name());
            continue;
        }
        rows += 1;
        tb.add_row(vec![
            cr.counter.name().to_string(),
            rate(cr.per_sec),
            rate(cr.peak_per_sec),
            int(cr.delta),
            int(cr.since_boot.into()),
            match cr.activity {
                Activity::Live => "LIVE",
                Activity::History => "history",
                Activity::Quiet => "-",
                Activity::Unknown => "?",
            }
            .to_string(),
        ]);
    }
    if rows > 0 {
        out.push_str(&indent(&tb, 2));
        out.push('\n');
    }
    if !zero.is_empty() {
        out.push_str(&wrap(
            &format!("zero since boot: {}", zero.join(", ")),
            2,
            100,
        ));
    }
    if let Some(e) = &r.entries {
        let _ = writeln!(
            out,
            "  entries: {} -> {} ({:+.1}/s)",
            int(e.first.into()),
            int(e.last.into()),
            e.slope_per_sec
        );
    }
    let cols: Vec<Counter> = CPU_COLUMNS.into_iter().filter(|&k| r.has(k)).collect();
    if r.cpus.is_empty() || cols.is_empty() {
        return;
    }
    if r.cpus
        .iter()
        .all(|c| cols.iter().all(|&k| c.per_sec(k) == 0.0))
    {
        let _ = writeln!(out, "  per CPU: all rates zero ({} CPUs)", r.cpus.len());
        return;
    }
    let _ = writeln!(out, "\n  per CPU, per second:");
    let mut headers: Vec<String> = vec!["cpu".into()];
    headers.extend(cols.iter().map(|k| format!(">{}", k.name())));
    let hdr: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut tb = table(&hdr);
    for cpu in &r.cpus {
        // /proc rows are the possible CPUs in order: name the CPU when the
        // snapshot says which ones are possible.
        let name = match cpu.cpu.resolve(&c.snapshot.cpus_possible) {
            Some(id) => format!("cpu{id}"),
            None => cpu.cpu.to_string(),
        };
        let mut row = vec![name];
        row.extend(cols.iter().map(|&k| rate(cpu.per_sec(k))));
        tb.add_row(row);
    }
    out.push_str(&indent(&tb, 2));
    out.push('\n');
}

fn states_section(out: &mut String, h: &HotspotSummary) {
    section(out, "States");
    if h.flows == 0 {
        let _ = writeln!(out, "  the table is empty");
        return;
    }
    let mut tb = table(&["proto", "state", ">flows", ">share", ">mean remaining s"]);
    for s in &h.states {
        tb.add_row(vec![
            s.proto.to_string(),
            s.state.to_string(),
            int(s.count),
            pct(s.share),
            s.remaining
                .mean()
                .map_or("-".into(), |m| int(m.round() as u64)),
        ]);
    }
    out.push_str(&indent(&tb, 2));
    out.push('\n');
    let n = &h.nat;
    let _ = writeln!(
        out,
        "  NAT: {} untranslated, {} SNAT, {} DNAT, {} both; {} unreplied; {} with a helper",
        int(n.none),
        int(n.snat),
        int(n.dnat),
        int(n.both),
        int(h.unreplied),
        int(h.helper_flows)
    );
}

/// The hotspot kinds printed, with their titles.
const HOTSPOT_KINDS: [(KeyKind, &str); 10] = [
    (KeyKind::SrcIp, "source address"),
    (KeyKind::DstIp, "destination address"),
    (KeyKind::DstPort, "destination port"),
    (KeyKind::SrcNet, "source /24 (/64)"),
    (KeyKind::SrcNetWide, "source /16 (/48)"),
    (KeyKind::Pair, "address pair"),
    (KeyKind::Proto, "protocol"),
    (KeyKind::Nat, "translation"),
    (KeyKind::Zone, "zone"),
    (KeyKind::Mark, "mark"),
];

fn trivial(t: &KeyTable) -> bool {
    t.top.len() == 1 && matches!(t.top[0].key, Key::Zone(0) | Key::Mark(0))
}

fn hotspots_section(out: &mut String, h: &HotspotSummary) {
    section(out, "Hotspots");
    if h.flows == 0 {
        let _ = writeln!(out, "  no flows");
        return;
    }
    let mut quiet = Vec::new();
    let tables = HOTSPOT_KINDS
        .iter()
        .filter_map(|&(k, title)| h.table(k).map(|t| (t, title.to_string())))
        .chain(std::iter::once((
            &h.unreplied_by_source,
            "source of unreplied flows".to_string(),
        )));
    for (t, title) in tables {
        if t.top.is_empty() {
            continue;
        }
        if trivial(t) {
            quiet.push(format!("every flow has {}", t.top[0].key));
            continue;
        }
        let distinct = t
            .distinct
            .map(|d| format!(", {} distinct", int(d)))
            .unwrap_or_default();
        let approx = if t.exact {
            String::new()
        } else {
            format!(", top-K: counts within +{}", int(t.error_bound))
        };
        let _ = writeln!(
            out,
            "\n  by {title} ({} flows{distinct}{approx}):",
            int(t.counted)
        );
        let mut tb = table(&[">#", "key", ">flows", ">share"]);
        for (i, kc) in t.top.iter().enumerate() {
            tb.add_row(vec![
                (i + 1).to_string(),
                kc.key.to_string(),
                int(kc.count),
                pct(kc.share),
            ]);
        }
        out.push_str(&indent(&tb, 4));
        out.push('\n');
    }
    if !quiet.is_empty() {
        let _ = writeln!(out, "\n  {}", quiet.join("; "));
    }
}

fn buckets_section(out: &mut String, a: &Analysis) {
    let b = &a.buckets;
    let Some(m) = &b.model else {
        return;
    };
    section(out, "Bucket distribution (estimate)");
    let _ = writeln!(
        out,
        "  {} entries in {} buckets: {} hash nodes, mean chain {:.2}, expected longest {:.1}",
        int(m.entries),
        int(m.buckets),
        int(m.entries * 2),
        m.lambda,
        m.expected_longest
    );
    match (m.cap, m.p_insert_refused) {
        (ChainCap::Uniform { min, max }, Some(p)) => {
            let p = if p == 0.0 {
                "0".to_string()
            } else {
                format!("{p:.3e}")
            };
            let _ = writeln!(
                out,
                "  chain cap {min}..{max} nodes (drawn per insert): modelled chance an insert is refused {p}"
            );
        }
        _ => {
            let _ = writeln!(out, "  no chain cap on this kernel (before 5.15)");
        }
    }
    let sim = b.simulated.as_ref();
    if let Some(s) = sim {
        let _ = writeln!(
            out,
            "  simulated over the real tuples (keyed SipHash, as the kernel since 5.15): longest chain {}",
            s.longest
        );
    }
    let kmax = m
        .p_len
        .iter()
        .rposition(|&p| p * m.buckets as f64 >= 0.5)
        .unwrap_or(0)
        .max(sim.map_or(0, |s| s.longest as usize))
        .max(4);
    let mut tb = table(&[
        ">nodes in bucket",
        ">model buckets",
        ">model share",
        ">simulated buckets",
        ">simulated share",
    ]);
    for k in 0..=kmax {
        let p = m.p_len.get(k).copied().unwrap_or(0.0);
        let (sb, ss) = match sim {
            Some(s) => (
                int(s.histogram.get(k).copied().unwrap_or(0)),
                pct(s.share(k)),
            ),
            None => ("-".into(), "-".into()),
        };
        tb.add_row(vec![
            k.to_string(),
            int((p * m.buckets as f64).round() as u64),
            pct(p),
            sb,
            ss,
        ]);
    }
    out.push_str(&indent(&tb, 2));
    out.push('\n');
}

fn findings_section(out: &mut String, a: &Analysis) {
    section(out, &format!("Findings ({})", a.findings.len()));
    if a.findings.is_empty() {
        let _ = writeln!(out, "  none: no problem found in what could be read");
        return;
    }
    for f in &a.findings {
        let _ = writeln!(
            out,
            "\n  [{}] {}: {}",
            f.severity.name().to_uppercase(),
            f.id,
            f.title
        );
        let mut tb = table(&["evidence", ">value", "unit"]);
        for e in &f.evidence {
            tb.add_row(vec![
                e.name.clone(),
                evidence_value(e.value),
                e.unit.clone().unwrap_or_default(),
            ]);
        }
        out.push_str(&indent(&tb, 6));
        out.push('\n');
        out.push_str(&wrap(&f.explanation, 6, 90));
    }
}

/// An evidence number: integers with separators, tiny probabilities in
/// scientific notation, the rest with two decimals.
fn evidence_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let s = int(v.abs() as u64);
        if v < 0.0 { format!("-{s}") } else { s }
    } else if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        format!("{v:.2}")
    }
}
