//! `watch`: per-CPU conntrack counter rates every interval, with the
//! counters that are rising *now* highlighted — what operators otherwise
//! write `while sleep 1; do conntrack -S; done` loops for.
//!
//! ```text
//! cargo run --example watch -- --netns blue --interval 1s --iterations 5
//! ```
//!
//! Statistics come from ctnetlink (`IPCTNL_MSG_CT_GET_STATS_CPU`, needs
//! CAP_NET_ADMIN) or, without it, from `/proc/net/stat/nf_conntrack` of
//! the namespace; rates are computed by `conntrack_analyze::rates`
//! (wrap-aware, resets detected). See `--help`.

mod common;

use clap::{Parser, ValueEnum};
use common::duration::{SYNTAX, duration_in};
use common::exit::{exit_codes_help, exit_with, failure_of};
use common::target::{NetnsArgs, Target};
use common::term::{ColorArg, Keys, Paint, Screen};
use common::{Failure, parse_args};
use conntrack_kit::analyze::rates::{Activity, CpuId, Rates, StatsSeries};
use conntrack_kit::ct_core::host::HostFs;
use conntrack_kit::ct_core::{Counter, Stats, Support, procstat};
use conntrack_kit::netlink::Conntrack;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ABOUT: &str =
    "Per-CPU conntrack counter rates every interval, highlighting counters rising now.";

const LONG_ABOUT: &str = "\
Per-CPU conntrack counter rates every interval, highlighting the counters
that are rising now (what operators write `conntrack -S` shell loops for).

Every interval it samples the per-CPU counters of one network namespace
and prints, for each counter: the rate per second over the last interval
(total and per CPU), its value since boot, and its status:

  NEW      rising now, and flat during the rest of the history (--history)
  UP       rising now, more than twice as fast as over the history
  rising   rising now
  history  non-zero since boot but flat for the whole window (not live)

The kernel's counters are u32 that wrap; wrap-around is handled, and a
counter reset (namespace recreated, module reloaded) is reported instead
of turned into a huge rate. The entry count is not a per-CPU counter: it
is shown once, with its rate of change.

Sources: ctnetlink (needs CAP_NET_ADMIN in the namespace; CPU ids from the
kernel), else /proc/net/stat/nf_conntrack of the namespace (rows mapped to
CPU ids through /sys/devices/system/cpu/possible). Watching another
namespace with --netns needs root (setns needs CAP_SYS_ADMIN).

On a terminal the screen is redrawn, lines are cut to its width, rising
counters are coloured (not with --color never or NO_COLOR set), and `q`
or Ctrl-C quits; otherwise plain text blocks are appended (for logs and
scripts). Durations: DURATION_SYNTAX.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SourceArg {
    /// ctnetlink, falling back to /proc when not permitted.
    Auto,
    /// ctnetlink only (IPCTNL_MSG_CT_GET_STATS_CPU).
    Netlink,
    /// /proc/net/stat/nf_conntrack only.
    Proc,
}

#[derive(Debug, Parser)]
#[command(
    name = "watch",
    about = ABOUT,
    long_about = LONG_ABOUT.replace("DURATION_SYNTAX", SYNTAX),
    after_help = exit_codes_help(&[
        (0, "--iterations reports were printed, or q / Ctrl-C"),
        (3, ""),
        (4, ""),
        (5, "without ctnetlink privileges, --source auto reads /proc instead"),
        (6, ""),
    ])
)]
struct Args {
    #[command(flatten)]
    ns: NetnsArgs,
    /// Time between samples (100ms to 1h).
    #[arg(long, short = 'i', value_name = "DURATION", default_value = "1s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(3600)))]
    interval: Duration,
    /// Print this many reports, then exit (default: until q, Ctrl-C or
    /// interrupted). `--count` is an old name.
    #[arg(long, short = 'n', alias = "count", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    iterations: Option<u64>,
    /// History that "NEW" and "UP" compare the last interval with (at
    /// least two intervals are kept).
    #[arg(long, value_name = "DURATION", default_value = "1m",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(86_400)))]
    history: Duration,
    /// Where the counters come from.
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    source: SourceArg,
    /// Colour the counters that rise (a terminal is redrawn in place
    /// whatever this says).
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
    /// Show one column per CPU even with more than 8 CPUs (otherwise the
    /// busiest CPU is shown).
    #[arg(long)]
    per_cpu: bool,
    /// Also show counters this kernel no longer maintains (`searched`,
    /// `new`, `delete`, `delete_list` print 0 since 4.9, `ignore` since
    /// 5.10) while they are 0.
    #[arg(long)]
    all: bool,
}

/// Counters the running kernel prints as 0 whatever happens (retired ones,
/// `Counter::support`), hidden unless `--all`.
fn dead_counters() -> Vec<Counter> {
    let Ok((_, v)) = HostFs::new("/").read_kernel_release() else {
        return Vec::new();
    };
    Counter::ALL
        .into_iter()
        .filter(|c| matches!(c.support(Some(v)), Support::Retired { .. }))
        .collect()
}

// ---------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------

enum Source {
    Netlink(Box<Conntrack>),
    /// The namespace's `/proc/.../net/stat/nf_conntrack`, opened once (a
    /// /proc/net file stays bound to the namespace it was opened in) and
    /// re-read from offset 0 for each sample.
    Proc {
        file: File,
        path: String,
        cpu_ids: Option<Vec<u32>>,
    },
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Source::Netlink(_) => "netlink",
            Source::Proc { .. } => "/proc",
        }
    }

    fn open_netlink(t: &Target) -> Result<Source, conntrack_kit::netlink::Error> {
        let mut ct = Conntrack::open_in(&t.netns())?;
        // One request up front, so that a refusal is seen now.
        ct.stats()?;
        Ok(Source::Netlink(Box::new(ct)))
    }

    fn open_proc(t: &Target) -> Result<Source, Failure> {
        let (path, file) = t
            .with_net_files(|fs| {
                let path = fs.path(&fs.net_path("stat/nf_conntrack"));
                let file = File::open(&path);
                (path, file)
            })
            .map_err(|e| failure_of("read the namespace's /proc/net", &e))?;
        let file = file.map_err(|e| {
            let what = format!("{}: {e}", path.display());
            match e.kind() {
                // No nf_conntrack in this kernel (or not loaded).
                std::io::ErrorKind::NotFound => Failure::Unavailable(what),
                std::io::ErrorKind::PermissionDenied => Failure::Unavailable(what),
                _ => Failure::Error(what),
            }
        })?;
        let path = match (t, t.netns().path()) {
            (Target::Pid(_), _) | (_, None) => path.display().to_string(),
            (_, Some(ns)) => format!("{} of {}", path.display(), ns.display()),
        };
        let cpu_ids = HostFs::new("/").read_cpus_possible().ok();
        Ok(Source::Proc {
            file,
            path,
            cpu_ids,
        })
    }

    fn sample(&mut self) -> Result<Stats, Failure> {
        match self {
            Source::Netlink(ct) => ct.stats().map_err(|e| failure_of("read statistics", &e)),
            Source::Proc {
                file,
                path,
                cpu_ids,
            } => {
                let mut buf = Vec::with_capacity(4096);
                file.rewind()
                    .and_then(|_| file.read_to_end(&mut buf))
                    .map_err(|e| Failure::Error(format!("{path}: {e}")))?;
                let mut s = procstat::parse_bytes(&buf)
                    .map_err(|e| Failure::Error(format!("{path}: {e}")))?;
                // Rows are the possible CPUs in order (impossible ones are
                // skipped), so with as many possible CPUs as rows the ids
                // are known.
                if let Some(ids) = cpu_ids
                    && ids.len() == s.cpus.len()
                {
                    for (c, &id) in s.cpus.iter_mut().zip(ids.iter()) {
                        c.cpu = Some(id);
                    }
                }
                if s.max_entries.is_none() {
                    // Global: the same in every namespace.
                    s.max_entries = HostFs::new("/").read_max().ok();
                }
                Ok(s)
            }
        }
    }
}

fn open_source(t: &Target, want: SourceArg) -> Result<Source, Failure> {
    let netlink_failure = |e: &conntrack_kit::netlink::Error| failure_of("open ctnetlink", e);
    match want {
        SourceArg::Netlink => Source::open_netlink(t).map_err(|e| netlink_failure(&e)),
        SourceArg::Proc => Source::open_proc(t),
        SourceArg::Auto => match Source::open_netlink(t) {
            Ok(s) => Ok(s),
            // Any ctnetlink failure (no privileges, no ctnetlink in this
            // kernel) falls back to /proc, unless the namespace itself
            // could not be entered: /proc needs that too, except through
            // /proc/PID/net.
            Err(e)
                if matches!(t, Target::Pid(_) | Target::Host)
                    || !matches!(
                        e,
                        conntrack_kit::netlink::Error::Setns { .. }
                            | conntrack_kit::netlink::Error::NetnsOpen { .. }
                    ) =>
            {
                match Source::open_proc(t) {
                    Ok(s) => {
                        eprintln!(
                            "watch: ctnetlink not usable ({e}); reading /proc/net/stat/nf_conntrack instead"
                        );
                        Ok(s)
                    }
                    // The netlink failure says what is missing; the
                    // fallback's is appended.
                    Err(pe) => Err(match netlink_failure(&e) {
                        Failure::Unavailable(m) => Failure::Unavailable(format!(
                            "{m}\nand the /proc fallback failed: {pe}"
                        )),
                        Failure::NoTarget(m) => Failure::NoTarget(m),
                        f => Failure::Error(format!("{f}\nand the /proc fallback failed: {pe}")),
                    }),
                }
            }
            Err(e) => Err(netlink_failure(&e)),
        },
    }
}

// ---------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------

/// How a counter behaves in the last interval compared with the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    New,
    Up,
    Rising,
    History,
    Quiet,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::New => "NEW",
            Status::Up => "UP",
            Status::Rising => "rising",
            Status::History => "history",
            Status::Quiet => "",
        }
    }
}

fn status(now: &Rates, before: Option<&Rates>, c: Counter) -> Status {
    let now_rate = now.per_sec(c);
    if now.delta(c) > 0 {
        match before {
            Some(b) if b.window.used_intervals > 0 => {
                if b.delta(c) == 0 {
                    Status::New
                } else if now_rate > 2.0 * b.per_sec(c) {
                    Status::Up
                } else {
                    Status::Rising
                }
            }
            _ => Status::Rising,
        }
    } else {
        match now.get(c).map(|r| r.since_boot) {
            Some(v) if v > 0 => Status::History,
            _ => Status::Quiet,
        }
    }
}

fn fmt_rate(r: f64) -> String {
    if r == 0.0 {
        "0".into()
    } else if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

fn utc_clock() -> String {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:02}:{:02}:{:02}Z", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

/// One report: the lines of a frame and how each is painted.
fn render(
    series: &StatsSeries,
    target: &Target,
    source: &str,
    per_cpu_columns: bool,
    hide: &[Counter],
) -> Vec<(Paint, String)> {
    let samples = series.samples();
    let n = samples.len();
    let now = Rates::from_samples(&samples[n - 2..]);
    let before = (n >= 3).then(|| Rates::from_samples(&samples[..n - 1]));
    let last = &samples[n - 1].stats;
    let mut out = Vec::new();

    let entries = last
        .entries
        .map(|e| {
            let delta = now
                .entries
                .as_ref()
                .map(|t| t.last as f64 - t.first as f64)
                .unwrap_or(0.0);
            let secs = now.window.covered_secs.max(f64::MIN_POSITIVE);
            let pct = last
                .max_entries
                .filter(|&m| m > 0)
                .map(|m| format!(" of {m} ({:.1}%)", 100.0 * e as f64 / m as f64))
                .unwrap_or_default();
            format!("entries {e}{pct}, {:+.1}/s", delta / secs)
        })
        .unwrap_or_else(|| "entries ?".into());
    out.push((
        Paint::Bold,
        format!(
            "{}  {}  {entries}  [{source}, {:.1}s]",
            utc_clock(),
            target.short(),
            now.window.covered_secs
        ),
    ));

    // Columns: counter, total/s, per-CPU (or busiest), since boot, status.
    let cpus: Vec<CpuId> = now.cpus.iter().map(|c| c.cpu).collect();
    let mut header = format!("{:<15} {:>10}", "counter", "total/s");
    if per_cpu_columns {
        for c in &cpus {
            header.push_str(&format!(" {:>9}", format!("{c}/s")));
        }
    } else {
        header.push_str(&format!(" {:>22}", "busiest cpu"));
    }
    header.push_str(&format!(" {:>12}  status", "since boot"));
    out.push((Paint::Plain, header));

    for r in &now.counters {
        let c = r.counter;
        if r.since_boot == 0 && hide.contains(&c) {
            continue;
        }
        let st = status(&now, before.as_ref(), c);
        let mut line = format!("{:<15} {:>10}", c.name(), fmt_rate(r.per_sec));
        if per_cpu_columns {
            for cr in &now.cpus {
                line.push_str(&format!(" {:>9}", fmt_rate(cr.per_sec(c))));
            }
        } else {
            let busiest = now.cpus.iter().map(|cr| (cr.cpu, cr.per_sec(c))).fold(
                None::<(CpuId, f64)>,
                |a, x| match a {
                    Some(b) if b.1 >= x.1 => Some(b),
                    _ => Some(x),
                },
            );
            let cell = match busiest {
                Some((id, v)) if v > 0.0 => {
                    format!("{id} {}/s {:.0}%", fmt_rate(v), 100.0 * v / r.per_sec)
                }
                _ => "-".into(),
            };
            line.push_str(&format!(" {cell:>22}"));
        }
        line.push_str(&format!(" {:>12}  {}", r.since_boot, st.label()));
        let paint = match st {
            Status::New | Status::Up => Paint::Alert,
            Status::Rising => Paint::Warn,
            Status::History => Paint::Dim,
            Status::Quiet => Paint::Plain,
        };
        out.push((paint, line));
    }
    // Activity over the window, for counters whose status alone hides it.
    if let Some(b) = &before {
        let hist: Vec<&str> = b
            .counters
            .iter()
            .filter(|r| r.activity == Activity::Live && now.delta(r.counter) == 0)
            .map(|r| r.counter.name())
            .collect();
        if !hist.is_empty() {
            out.push((
                Paint::Plain,
                format!(
                    "rose earlier in the history ({:.0}s), flat now: {}",
                    b.window.covered_secs,
                    hist.join(", ")
                ),
            ));
        }
    }
    for x in &now.resets {
        let names: Vec<&str> = x.counters.iter().map(|c| c.name()).collect();
        out.push((
            Paint::Odd,
            format!(
                "counters went backwards ({}): reset (namespace recreated or module reloaded); interval skipped",
                names.join(", ")
            ),
        ));
    }
    for ch in &now.cpu_changes {
        out.push((
            Paint::Plain,
            format!(
                "CPU rows changed: +{:?} -{:?}{}",
                ch.appeared,
                ch.disappeared,
                if ch.unmatched {
                    " (interval skipped)"
                } else {
                    ""
                }
            ),
        ));
    }
    out
}

fn run(args: Args) -> Result<(), Failure> {
    let target = Target::resolve(&args.ns, None)?;
    let mut source = open_source(&target, args.source)?;
    let hide = if args.all {
        Vec::new()
    } else {
        dead_counters()
    };
    let interval = args.interval;
    // The samples "NEW" and "UP" look back over, and the latest one.
    let keep = (args.history.as_secs_f64() / interval.as_secs_f64()).ceil() as usize + 1;
    let keep = keep.max(3);
    let t0 = Instant::now();
    let mut series = StatsSeries::new();
    series
        .push(Duration::ZERO, source.sample()?)
        .map_err(|e| Failure::Error(e.to_string()))?;
    // From here on q and Ctrl-C quit; raw mode ends with `keys`.
    let keys = Keys::start();
    let screen = Screen::new(args.color, keys.raw());
    let mut next = t0 + interval;
    let mut printed = 0u64;
    let mut stdout = std::io::stdout().lock();
    loop {
        let now = Instant::now();
        if next > now && keys.sleep(next - now) {
            return Ok(());
        }
        next += interval;
        // After a stall (suspended process), do not catch up in a burst.
        if next < Instant::now() {
            next = Instant::now() + interval;
        }
        let stats = source.sample()?;
        // Instants are monotonic; equal times cannot happen after a sleep,
        // but a failed push must not end the watch.
        if series.push(t0.elapsed(), stats).is_err() {
            continue;
        }
        series.keep_last(keep);
        let per_cpu = args.per_cpu
            || series
                .samples()
                .last()
                .is_some_and(|s| s.stats.cpus.len() <= 8);
        let lines = render(&series, &target, source.name(), per_cpu, &hide);
        let frame = screen.frame(&lines, screen.width());
        if let Err(e) = stdout
            .write_all(frame.as_bytes())
            .and_then(|_| stdout.flush())
        {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(Failure::Error(format!("writing the report: {e}")));
        }
        printed += 1;
        if args.iterations.is_some_and(|c| printed >= c) || keys.quit() {
            return Ok(());
        }
    }
}

fn main() {
    let args: Args = parse_args();
    exit_with("watch", run(args));
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_kit::analyze::rates::Sample;
    use conntrack_kit::ct_core::CpuStats;

    fn sample(t: u64, insert: u32, drop: u32, early: u32) -> Sample {
        let mut c = CpuStats::for_cpu(0);
        c.set(Counter::Insert, insert);
        c.set(Counter::Drop, drop);
        c.set(Counter::EarlyDrop, early);
        c.set(Counter::InsertFailed, 0);
        Sample {
            at: Duration::from_secs(t),
            stats: Stats::new(vec![c]).with_entries(1),
        }
    }

    #[test]
    fn status_compares_now_with_the_window() {
        // insert: steady 10/s; drop: flat, then 5 in the last second;
        // early_drop: grew long ago.
        let s = [
            sample(0, 0, 0, 7),
            sample(1, 10, 0, 7),
            sample(2, 20, 0, 7),
            sample(3, 30, 5, 7),
        ];
        let now = Rates::from_samples(&s[2..]);
        let before = Rates::from_samples(&s[..3]);
        assert_eq!(status(&now, Some(&before), Counter::Insert), Status::Rising);
        assert_eq!(status(&now, Some(&before), Counter::Drop), Status::New);
        assert_eq!(
            status(&now, Some(&before), Counter::EarlyDrop),
            Status::History
        );
        assert_eq!(
            status(&now, Some(&before), Counter::InsertFailed),
            Status::Quiet
        );
        // Three times the window's rate: UP.
        let fast = [sample(0, 0, 0, 7), sample(1, 10, 0, 7), sample(2, 40, 0, 7)];
        let now = Rates::from_samples(&fast[1..]);
        let before = Rates::from_samples(&fast[..2]);
        assert_eq!(status(&now, Some(&before), Counter::Insert), Status::Up);
        // No history yet: rising.
        assert_eq!(status(&now, None, Counter::Insert), Status::Rising);
    }
}
