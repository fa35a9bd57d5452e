//! `top`: a live, refreshing view of a conntrack table's top sources,
//! destinations, destination ports, states and containers, with rates,
//! driven by events (a `conntrack_netlink::mirror::Mirror`), not by
//! re-dumping the table.
//!
//! ```text
//! cargo run --example top -- --netns blue
//! cargo run --example top -- --netns blue --iterations 3 --interval 1s   # for scripts
//! ```
//!
//! See `--help`.
mod common;

use clap::{Parser, ValueEnum};
use common::duration::{SYNTAX, duration_in, duration_or_off, fmt_duration};
use common::exit::{exit_codes_help, exit_with, failure_of};
use common::target::{NetnsArgs, Target};
use common::term::{ColorArg, Keys, Paint, Screen};
use common::{Failure, parse_args};
use conntrack_kit::analyze::attribution::SocketTable;
use conntrack_kit::analyze::hotspots::{KeyKind, LiveCounts, LiveOrder};
use conntrack_kit::live::owner_tables;
use conntrack_kit::netlink::event::RcvBuf;
use conntrack_kit::netlink::mirror::{
    EntryRef, Mirror, MirrorConfig, MirrorHook, ResyncReason, ResyncReport,
};
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
The header shows the NEW, UPDATE and DESTROY event rates, and how the
counts were obtained:

  - The dump at start counts every entry there is, so counts are whole
    from the first frame; entries it found are not counted in new/s.
  - With net.netfilter.nf_conntrack_events=2 (the default since 5.17)
    entries created while no event listener existed send no events: their
    state changes and removals are not seen until a resync (a dump) finds
    them. The frame says so while such entries may be there (the entries
    older than top), with the time of the next resync: every 60 s, doubling
    up to 10 min while resyncs find nothing different. With 1 every entry
    sends events and counts are complete; with 0 none does, and counts come
    from a dump every 10 s or more.

When the kernel drops events because the receive buffer overflowed, the
frame says so: the mirror resyncs: it opens a fresh event socket, dumps once, and
reconciles (entries added, removed, changed are shown); counts stay exact.
Entries a resync adds count in `new/s` like NEW events (their start time
is unknown).

Containers/processes: every --owners-every the mirror's flows are
matched to local sockets of the namespace (/proc/net/{tcp,udp}[6]) and
their owning processes and containers (/proc/PID/fd, /proc/PID/cgroup).
Flows that are only forwarded through the host have no local owner.

On a terminal the screen is redrawn every interval, lines are cut to its
width, headers are bold (not with --color never or NO_COLOR set), and `q`
or Ctrl-C quits; otherwise frames are appended as plain text. Needs root
(ctnetlink events need CAP_NET_ADMIN; --netns/--pid need CAP_SYS_ADMIN to
enter the namespace). Durations: DURATION_SYNTAX.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SortBy {
    /// Current entries.
    Entries,
    /// Entries started per second since the previous frame.
    New,
}

#[derive(Debug, Parser)]
#[command(
    name = "top",
    about = ABOUT,
    long_about = LONG_ABOUT.replace("DURATION_SYNTAX", SYNTAX),
    after_help = exit_codes_help(&[
        (0, "--iterations frames were printed, or q / Ctrl-C"),
        (3, ""),
        (4, ""),
        (5, ""),
        (6, ""),
    ])
)]
struct Args {
    #[command(flatten)]
    ns: NetnsArgs,
    /// Time between frames (100ms to 1h).
    #[arg(long, short = 'i', value_name = "DURATION", default_value = "1s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(3600)))]
    interval: Duration,
    /// Print this many frames, then exit (default: until q, Ctrl-C or
    /// interrupted). `--count` is another name.
    #[arg(long, short = 'n', alias = "count", value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "once")]
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
    /// Time between container/process attribution passes (0: off;
    /// otherwise 500ms to 1d).
    #[arg(long, value_name = "DURATION", default_value = "5s",
          value_parser = duration_or_off(Duration::from_millis(500), Duration::from_secs(86_400)))]
    owners_every: Duration,
    /// Dump and reconcile at this period even without a loss (0: only
    /// after a loss; default: from nf_conntrack_events, see above).
    #[arg(long, value_name = "DURATION",
          value_parser = duration_or_off(Duration::from_secs(1), Duration::from_secs(86_400)))]
    resync_every: Option<Duration>,
    /// Event socket receive buffer in bytes (default: 32 MiB, forced past
    /// net.core.rmem_max when permitted). A small one loses events under
    /// load, which the frame reports.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1024..=(1u64 << 31)))]
    rcvbuf: Option<u64>,
    /// Bold headers and red alerts (a terminal is redrawn in place
    /// whatever this says).
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
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

/// The library's owner tables for the target (its sockets, its
/// containers' and every process's socket inodes); the first note when
/// they could not be read.
fn socket_table(target: &Target) -> Result<SocketTable, String> {
    let live = target.live().ok_or("not a live target")?;
    match owner_tables(&live) {
        (Some(t), _) => Ok(t.sockets),
        (None, notes) => Err(notes.join("; ")),
    }
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
            *by.entry(o.label()).or_default() += 1;
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

/// How the counts were obtained, and whether entries may be missing
/// their changes: see the `--help` text. `events` is the namespace's
/// `nf_conntrack_events`.
struct Provenance {
    events: Option<u8>,
    initial: usize,
    dumped_at: String,
    /// When the mirror last dumped (start, loss or periodic resync).
    last_sync: Instant,
    periodic: u64,
}

impl Provenance {
    /// The header lines: how counts were obtained and, while entries may
    /// lack events, what is partial and until when.
    fn lines(&self, period: Option<Duration>) -> Vec<(Paint, String)> {
        let next = period.map(|p| {
            let left = (self.last_sync + p).saturating_duration_since(Instant::now());
            fmt_duration(Duration::from_secs(left.as_secs()))
        });
        let start = format!(
            "counts: a dump at start ({} entries at {})",
            self.initial, self.dumped_at
        );
        match self.events {
            Some(1) => vec![(
                Paint::Plain,
                format!("{start}, then events: complete (nf_conntrack_events=1)"),
            )],
            Some(2) if self.initial == 0 => vec![(
                Paint::Plain,
                format!("{start}, then events: complete (every entry is newer than top)"),
            )],
            Some(2) => {
                let when = match next {
                    Some(n) => format!("only at resyncs (next in {n}, {} so far)", self.periodic),
                    None => "only at a resync after a loss".into(),
                };
                vec![
                    (Paint::Plain, format!("{start}, then events")),
                    (
                        Paint::Warn,
                        format!(
                            "partial for the {} entries older than top: with nf_conntrack_events=2 \
                             they may send no events, so their removals and state changes show \
                             {when} until they have all ended",
                            self.initial
                        ),
                    ),
                ]
            }
            other => {
                let setting = other.map_or("unreadable".to_string(), |v| v.to_string());
                let text = match (period, next) {
                    (Some(p), Some(n)) => format!(
                        "{start}, then a dump every {} or longer (next in {n}): \
                         nf_conntrack_events={setting}, the kernel sends no events; new/s counts \
                         the entries those dumps find",
                        fmt_duration(p)
                    ),
                    _ => format!(
                        "{start} only: nf_conntrack_events={setting}, the kernel sends no events, \
                         and periodic resyncs are off"
                    ),
                };
                vec![(Paint::Warn, text)]
            }
        }
    }
}

fn run(args: Args) -> Result<(), Failure> {
    let target = Target::resolve(&args.ns, None)?;
    let mut cfg = MirrorConfig::new(target.netns());
    if let Some(b) = args.rcvbuf {
        cfg = cfg.rcvbuf(RcvBuf::Bytes(b as usize));
    }
    if let Some(every) = args.resync_every {
        cfg = cfg.resync_every(Some(every));
    }
    let t_open = Instant::now();
    let mut mirror = Mirror::with_hook(&cfg, Counts::default())
        .map_err(|e| failure_of("mirror the table (subscribe to events, dump)", &e))?;
    let rb = mirror.events().rcvbuf();
    let mut provenance = Provenance {
        events: mirror.events_sysctl(),
        initial: mirror.len(),
        dumped_at: utc_clock(),
        last_sync: Instant::now(),
        periodic: 0,
    };
    eprintln!(
        "top: mirrored {} entries ({}) in {} ms (event receive buffer {} bytes, \
         nf_conntrack_events={}); following events",
        mirror.len(),
        target.short(),
        t_open.elapsed().as_millis(),
        rb.obtained,
        mirror
            .events_sysctl()
            .map_or("unreadable".to_string(), |v| v.to_string())
    );
    // The initial dump is not "new": start the rate period now.
    mirror.hook_mut().0.new_period();
    // From here on q and Ctrl-C quit; raw mode ends with `keys`.
    let keys = Keys::start();
    let screen = Screen::new(args.color, keys.raw());
    let iterations = if args.once { Some(1) } else { args.iterations };
    let interval = args.interval;
    let rows = args.rows as usize;
    let owners_every = (!args.owners_every.is_zero()).then_some(args.owners_every);
    let mut owners: Option<Owners> = None;
    let mut prev_stats = mirror.stats();
    let mut frame_start = Instant::now();
    let mut printed = 0u64;
    let mut stdout = std::io::stdout().lock();
    loop {
        let deadline = frame_start + interval;
        let mut ev = FrameEvents::default();
        loop {
            if keys.quit() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let mut wait = (deadline - now).max(Duration::from_millis(1));
            if keys.raw() {
                wait = wait.min(Keys::SLICE);
            }
            let p = mirror
                .poll(Some(wait))
                .map_err(|e| failure_of("follow events", &e))?;
            ev.lost += p.lost;
            if let Some(r) = p.last_resync {
                provenance.last_sync = Instant::now();
                if r.reason == ResyncReason::Periodic {
                    provenance.periodic += 1;
                }
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
        let mut out: Vec<(Paint, String)> = Vec::new();
        out.push((
            Paint::Bold,
            format!(
                "conntrack top - {} - {} - {total} entries",
                target.short(),
                utc_clock()
            ),
        ));
        out.push((
            Paint::Plain,
            format!(
                "events/s: new {:.1}  update {:.1}  destroy {:.1}   (over {secs:.1}s; since start: {} new, {} destroy)",
                rate(st.new, prev_stats.new),
                rate(st.updates, prev_stats.updates),
                rate(st.destroys, prev_stats.destroys),
                st.new,
                st.destroys,
            ),
        ));
        out.extend(provenance.lines(mirror.resync_period()));
        if ev.lost > 0 || !ev.resyncs.is_empty() || ev.stale {
            let mut s = format!(
                "EVENTS LOST: {} loss report(s) this frame ({} since start)",
                ev.lost, st.lost
            );
            for r in &ev.resyncs {
                s.push_str(&format!(
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
                ));
            }
            if ev.stale {
                s.push_str("; mirror STALE until the next resync");
            }
            // A periodic resync without loss is not an alert.
            let paint = if ev.lost > 0 || ev.stale {
                Paint::Alert
            } else {
                Paint::Plain
            };
            out.push((paint, s));
        } else if st.lost > 0 {
            out.push((
                Paint::Plain,
                format!(
                    "no loss this frame ({} loss report(s), {} resync(s) since start)",
                    st.lost,
                    st.resyncs.saturating_sub(1)
                ),
            ));
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
            out.push((Paint::Plain, String::new()));
            out.push((
                Paint::Bold,
                format!(
                    "{:<40} {:>10} {:>7} {:>9}   ({distinct} distinct)",
                    title, "entries", "share", "new/s"
                ),
            ));
            if top.is_empty() {
                out.push((Paint::Plain, "  (none)".into()));
            }
            for r in top {
                out.push((
                    Paint::Plain,
                    format!(
                        "{:<40} {:>10} {:>7} {:>9.1}",
                        r.key.to_string(),
                        r.count,
                        pct(r.count, total),
                        r.started as f64 / secs
                    ),
                ));
            }
        }
        // The next frame's rates start now.
        mirror.hook_mut().0.new_period();
        if let Some(o) = &owners {
            out.push((Paint::Plain, String::new()));
            out.push((
                Paint::Bold,
                format!(
                    "{:<40} {:>10} {:>7}   ({} of {} entries have a local socket; {:.0}s ago)",
                    "CONTAINERS / PROCESSES",
                    "entries",
                    "share",
                    o.with_socket,
                    o.flows,
                    o.at.elapsed().as_secs_f64()
                ),
            ));
            if let Some(e) = &o.error {
                out.push((Paint::Plain, format!("  (unavailable: {e})")));
            } else if o.rows.is_empty() {
                out.push((
                    Paint::Plain,
                    "  (none: no entry belongs to a local socket)".into(),
                ));
            }
            for (name, n) in &o.rows {
                out.push((
                    Paint::Plain,
                    format!("{name:<40} {n:>10} {:>7}", pct(*n, o.flows)),
                ));
            }
        }

        let frame = screen.frame(&out, screen.width());
        if let Err(e) = stdout
            .write_all(frame.as_bytes())
            .and_then(|_| stdout.flush())
        {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(Failure::Error(format!("writing the frame: {e}")));
        }
        printed += 1;
        if iterations.is_some_and(|n| printed >= n) {
            return Ok(());
        }
    }
}

fn main() {
    let args: Args = parse_args();
    exit_with("top", run(args));
}
