//! `top`: a live, refreshing view of a conntrack table's top sources,
//! destinations, destination ports, states and containers, with rates,
//! driven by events (a `conntrack_netlink::mirror::Mirror`), not by
//! re-dumping the table.
//!
//! ```text
//! cargo run --example top -- --netns blue
//! cargo run --example top -- --netns blue --iterations 3 --interval 1   # for scripts
//! ```
//!
//! See `--help`.

use clap::{Parser, ValueEnum};
use conntrack_kit::analyze::attribution::{ProcReader, SocketTable, parse_proc_net};
use conntrack_kit::analyze::hotspots::{KeyKind, LiveCounts, LiveOrder};
use conntrack_kit::ct_core::L4Proto;
use conntrack_kit::netlink::event::RcvBuf;
use conntrack_kit::netlink::mirror::{EntryRef, Mirror, MirrorConfig, MirrorHook, ResyncReport};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "common/target.rs"]
mod target;
use target::{Target, explain, resolve_target};

const ABOUT: &str = "Live top sources, destinations, ports, states and containers of a conntrack table, with rates.";

const LONG_ABOUT: &str = "\
Live top sources, destinations, destination ports, states and containers of
one network namespace's conntrack table, with rates.

It keeps an in-memory mirror of the table: one dump at start, then
ctnetlink events (NEW, UPDATE, DESTROY) keep it current and update the
per-key counts incrementally, so the table is never re-dumped while
nothing is lost. Each frame shows the entries per key, their share, and
`new/s`: entries per second that started with that key (for states:
entries per second that entered the state) since the previous frame.
The header shows the NEW, UPDATE and DESTROY event rates.

When the kernel drops events because the receive buffer overflowed, the
frame says so: the mirror resyncs: it opens a fresh event socket, dumps once, and
reconciles (entries added, removed, changed are shown); counts stay exact.
Entries a resync adds count in `new/s` like NEW events (their start time
is unknown).

Containers/processes: every --owners-every seconds the mirror's flows are
matched to local sockets of the namespace (/proc/net/{tcp,udp}[6]) and
their owning processes and containers (/proc/PID/fd, /proc/PID/cgroup).
Flows that are only forwarded through the host have no local owner.

On a terminal the screen is redrawn every interval; otherwise frames are
appended as plain text. Needs root (ctnetlink events need CAP_NET_ADMIN;
--netns/--pid need CAP_SYS_ADMIN to enter the namespace).

Exit status: 0 after --iterations frames, 1 on errors (missing namespace
or privileges), 2 on bad arguments.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SortBy {
    /// Current entries.
    Entries,
    /// Entries started per second since the previous frame.
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorArg {
    /// Redraw and bold when standard output is a terminal.
    Auto,
    /// Always redraw and use bold.
    Always,
    /// Plain text frames, appended.
    Never,
}

#[derive(Debug, Parser)]
#[command(name = "top", about = ABOUT, long_about = LONG_ABOUT)]
struct Args {
    /// Watch the network namespace NAME made by `ip netns add NAME`
    /// (/var/run/netns/NAME). Default: the current namespace.
    #[arg(long, value_name = "NAME", conflicts_with = "pid")]
    netns: Option<String>,
    /// Watch the network namespace of process PID (/proc/PID/ns/net).
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Seconds between frames (0.1 to 3600).
    #[arg(long, short = 'i', value_name = "SECS", default_value = "1", value_parser = parse_interval)]
    interval: f64,
    /// Print this many frames, then exit (default: until interrupted).
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "once")]
    iterations: Option<u64>,
    /// Print one frame (after one interval) and exit; the same as
    /// `--iterations 1`.
    #[arg(long)]
    once: bool,
    /// Rows per section.
    #[arg(long, short = 'r', value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    rows: u64,
    /// Order rows by current entries or by new entries per second.
    #[arg(long, value_enum, default_value_t = SortBy::Entries)]
    sort: SortBy,
    /// Seconds between container/process attribution passes (0: off).
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_owners_every)]
    owners_every: f64,
    /// Event socket receive buffer in bytes (default: 32 MiB, forced past
    /// net.core.rmem_max when permitted). A small one loses events under
    /// load, which the frame reports.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1024..=(1u64 << 31)))]
    rcvbuf: Option<u64>,
    /// Redraw and bold.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
}

fn parse_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.1..=3600.0).contains(&v) {
        return Err(format!("{v} is out of range: use 0.1 to 3600 seconds"));
    }
    Ok(v)
}

fn parse_owners_every(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v != 0.0 && !(0.5..=86_400.0).contains(&v) {
        return Err(format!(
            "{v} is out of range: use 0 (off) or 0.5 to 86400 seconds"
        ));
    }
    Ok(v)
}

// ---------------------------------------------------------------------
// Incremental counts, kept by the mirror's hook
// ---------------------------------------------------------------------

/// The sections: the key kind counted and its title.
const SECTIONS: [(KeyKind, &str); 4] = [
    (KeyKind::SrcIp, "SOURCES"),
    (KeyKind::DstIp, "DESTINATIONS"),
    (KeyKind::DstPort, "DESTINATION PORTS"),
    (KeyKind::State, "STATES"),
];

/// Per-key counts for every section, updated on each insert, change and
/// removal of the mirror (so a frame costs O(keys), not O(entries)). The
/// counting and the keys are the library's (`LiveCounts`, the same keys as
/// doctor's hotspots); this wrapper only connects it to the mirror.
#[derive(Debug)]
struct Counts(LiveCounts);

impl Default for Counts {
    fn default() -> Self {
        Counts(LiveCounts::new(&SECTIONS.map(|(k, _)| k)))
    }
}

impl MirrorHook for Counts {
    fn on_insert(&mut self, e: &EntryRef<'_>) {
        self.0.add(e);
    }

    fn on_change(&mut self, before: &EntryRef<'_>, after: &EntryRef<'_>) {
        self.0.change(before, after);
    }

    fn on_remove(&mut self, e: &EntryRef<'_>) {
        self.0.remove(e);
    }
}

// ---------------------------------------------------------------------
// Owners (containers and processes)
// ---------------------------------------------------------------------

/// The namespace's sockets (read in the namespace: /proc/net files show
/// the namespace of the reader) and every process's socket inodes.
fn socket_table(target: &Target) -> Result<SocketTable, String> {
    let files = [
        ("tcp", L4Proto::TCP),
        ("tcp6", L4Proto::TCP),
        ("udp", L4Proto::UDP),
        ("udp6", L4Proto::UDP),
    ];
    // Not HostFs::read_text: a busy proxy's /proc/net/tcp can exceed its
    // size limit.
    let texts = target
        .with_net_files(|fs| -> Vec<(String, L4Proto)> {
            files
                .iter()
                .filter_map(|(f, p)| {
                    std::fs::read_to_string(fs.path(&fs.net_path(f)))
                        .ok()
                        .map(|t| (t, *p))
                })
                .collect()
        })
        .map_err(|e| explain(&e))?;
    let sockets = texts
        .iter()
        .flat_map(|(t, p)| parse_proc_net(t, *p))
        .collect();
    let owners = ProcReader::host()
        .socket_owners()
        .map_err(|e| format!("reading /proc: {e}"))?;
    Ok(SocketTable::new(sockets, owners))
}

struct Owners {
    at: Instant,
    rows: Vec<(String, u64)>,
    flows: u64,
    with_socket: u64,
    error: Option<String>,
}

fn attribute(mirror: &Mirror<Counts>, target: &Target, n: usize) -> Owners {
    let at = Instant::now();
    let table = match socket_table(target) {
        Ok(t) => t,
        Err(e) => {
            return Owners {
                at,
                rows: Vec::new(),
                flows: 0,
                with_socket: 0,
                error: Some(e),
            };
        }
    };
    let mut by: HashMap<String, u64> = HashMap::new();
    let (mut flows, mut with_socket) = (0u64, 0u64);
    for e in mirror.iter() {
        flows += 1;
        if table.socket_of(&e).is_none() {
            continue;
        }
        with_socket += 1;
        if let Some(o) = table.owner_of(&e) {
            let name = match &o.container {
                Some(c) => format!("{c} ({})", o.comm),
                None => format!("pid {} {}", o.pid, o.comm),
            };
            *by.entry(name).or_default() += 1;
        }
    }
    let mut rows: Vec<(String, u64)> = by.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(n);
    Owners {
        at,
        rows,
        flows,
        with_socket,
        error: None,
    }
}

// ---------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------

fn utc_clock() -> String {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:02}:{:02}:{:02}Z", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / whole as f64)
    }
}

/// What happened to events during one frame.
#[derive(Default)]
struct FrameEvents {
    lost: u64,
    resyncs: Vec<ResyncReport>,
    stale: bool,
}

fn run(args: Args) -> Result<(), String> {
    let target = resolve_target(args.netns.as_deref(), args.pid)?;
    let mut cfg = MirrorConfig::new(target.netns.clone());
    if let Some(b) = args.rcvbuf {
        cfg = cfg.rcvbuf(RcvBuf::Bytes(b as usize));
    }
    let t_open = Instant::now();
    let mut mirror = Mirror::with_hook(&cfg, Counts::default()).map_err(|e| explain(&e))?;
    let rb = mirror.events().rcvbuf();
    eprintln!(
        "top: mirrored {} entries of the {} in {} ms (event receive buffer {} bytes); following events",
        mirror.len(),
        target.label,
        t_open.elapsed().as_millis(),
        rb.obtained
    );
    // The initial dump is not "new": start the rate period now.
    mirror.hook_mut().0.new_period();
    let tty = std::io::stdout().is_terminal();
    let fancy = match args.color {
        ColorArg::Auto => tty,
        ColorArg::Always => true,
        ColorArg::Never => false,
    };
    let bold = |s: &str| {
        if fancy {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let alert = |s: &str| {
        if fancy {
            format!("\x1b[1;31m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let iterations = if args.once { Some(1) } else { args.iterations };
    let interval = Duration::from_secs_f64(args.interval);
    let rows = args.rows as usize;
    let owners_every =
        (args.owners_every > 0.0).then(|| Duration::from_secs_f64(args.owners_every));
    let mut owners: Option<Owners> = None;
    let mut prev_stats = mirror.stats();
    let mut frame_start = Instant::now();
    let mut printed = 0u64;
    let mut stdout = std::io::stdout().lock();
    loop {
        let deadline = frame_start + interval;
        let mut ev = FrameEvents::default();
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            let p = mirror.poll(Some(wait)).map_err(|e| explain(&e))?;
            ev.lost += p.lost;
            if let Some(r) = p.last_resync {
                ev.resyncs.push(r);
            }
        }
        ev.stale = mirror.is_stale();
        let secs = frame_start.elapsed().as_secs_f64().max(1e-3);
        frame_start = Instant::now();
        let st = mirror.stats();
        let rate = |now: u64, before: u64| (now - before) as f64 / secs;

        if let Some(every) = owners_every
            && owners.as_ref().is_none_or(|o| o.at.elapsed() >= every)
        {
            owners = Some(attribute(&mirror, &target, rows));
        }

        let total = mirror.len() as u64;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}",
            bold(&format!(
                "conntrack top - {} - {} - {total} entries",
                target.label,
                utc_clock()
            ))
        );
        let _ = writeln!(
            out,
            "events/s: new {:.1}  update {:.1}  destroy {:.1}   (over {secs:.1}s; since start: {} new, {} destroy)",
            rate(st.new, prev_stats.new),
            rate(st.updates, prev_stats.updates),
            rate(st.destroys, prev_stats.destroys),
            st.new,
            st.destroys,
        );
        if ev.lost > 0 || !ev.resyncs.is_empty() || ev.stale {
            let mut s = format!(
                "EVENTS LOST: {} loss report(s) this frame ({} since start)",
                ev.lost, st.lost
            );
            for r in &ev.resyncs {
                let _ = write!(
                    s,
                    "; resynced from a dump: +{} -{} ~{} entries in {} ms{}",
                    r.added,
                    r.removed,
                    r.changed,
                    r.took.as_millis(),
                    if r.interrupted {
                        " (dump interrupted)"
                    } else {
                        ""
                    }
                );
            }
            if ev.stale {
                s.push_str("; mirror STALE until the next resync");
            }
            let _ = writeln!(out, "{}", alert(&s));
        } else if st.lost > 0 {
            let _ = writeln!(
                out,
                "no loss this frame ({} loss report(s), {} resync(s) since start)",
                st.lost,
                st.resyncs.saturating_sub(1)
            );
        }
        prev_stats = st;

        let order = match args.sort {
            SortBy::Entries => LiveOrder::Count,
            SortBy::New => LiveOrder::Started,
        };
        let counts = &mirror.hook().0;
        for (kind, title) in SECTIONS {
            let top = counts.top(kind, rows, order);
            let distinct = counts.distinct(kind);
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{}",
                bold(&format!(
                    "{:<40} {:>10} {:>7} {:>9}   ({distinct} distinct)",
                    title, "entries", "share", "new/s"
                ))
            );
            if top.is_empty() {
                let _ = writeln!(out, "  (none)");
            }
            for r in top {
                let _ = writeln!(
                    out,
                    "{:<40} {:>10} {:>7} {:>9.1}",
                    r.key.to_string(),
                    r.count,
                    pct(r.count, total),
                    r.started as f64 / secs
                );
            }
        }
        // The next frame's rates start now.
        mirror.hook_mut().0.new_period();
        if let Some(o) = &owners {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{}",
                bold(&format!(
                    "{:<40} {:>10} {:>7}   ({} of {} entries have a local socket; {:.0}s ago)",
                    "CONTAINERS / PROCESSES",
                    "entries",
                    "share",
                    o.with_socket,
                    o.flows,
                    o.at.elapsed().as_secs_f64()
                ))
            );
            if let Some(e) = &o.error {
                let _ = writeln!(out, "  (unavailable: {e})");
            } else if o.rows.is_empty() {
                let _ = writeln!(out, "  (none: no entry belongs to a local socket)");
            }
            for (name, n) in &o.rows {
                let _ = writeln!(out, "{name:<40} {n:>10} {:>7}", pct(*n, o.flows));
            }
        }

        let res = if fancy {
            write!(stdout, "\x1b[H\x1b[2J{out}")
        } else {
            writeln!(stdout, "{out}")
        };
        if let Err(e) = res.and_then(|_| stdout.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(format!("writing the frame: {e}"));
        }
        printed += 1;
        if iterations.is_some_and(|n| printed >= n) {
            return Ok(());
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("top: error: {e}");
            ExitCode::FAILURE
        }
    }
}
