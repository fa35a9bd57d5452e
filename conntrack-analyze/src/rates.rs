//! Rates from a series of statistics snapshots: wrap-aware per-CPU deltas,
//! counter resets detected and reported (never turned into huge deltas),
//! CPUs coming and going, per-second rates per counter and per CPU, "live
//! versus history", and per-CPU imbalance.
//!
//! ```
//! use conntrack_analyze::rates::StatsSeries;
//! use conntrack_core::{Counter, CpuStats, Stats};
//! use std::time::Duration;
//!
//! let snap = |drop: u32, entries: u32| {
//!     let mut c = CpuStats::for_cpu(0);
//!     c.set(Counter::Drop, drop);
//!     c.set(Counter::EarlyDrop, 7); // grew before the window, then flat
//!     Stats { entries: Some(entries), max_entries: None, cpus: vec![c] }
//! };
//! let mut series = StatsSeries::new();
//! series.push(Duration::from_secs(0), snap(u32::MAX - 9, 100)).unwrap();
//! series.push(Duration::from_secs(10), snap(90, 150)).unwrap(); // wrapped
//! let rates = series.rates();
//! assert_eq!(rates.per_sec(Counter::Drop), 10.0); // 100 packets in 10 s
//! assert!(rates.is_live(Counter::Drop));
//! assert!(!rates.is_live(Counter::EarlyDrop)); // history, not a live problem
//! assert!(rates.resets.is_empty());
//! ```

use conntrack_core::{Counter, CpuStats, Stats};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// One statistics snapshot at a monotonic time (any origin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was taken, from a monotonic clock.
    pub at: Duration,
    /// The statistics.
    pub stats: Stats,
}

/// A sample was not later than the one before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sample at {at:?} is not after the previous one at {previous:?}")]
pub struct NotMonotonic {
    /// The previous sample's time.
    pub previous: Duration,
    /// The rejected sample's time.
    pub at: Duration,
}

/// Why a timestamped capture of `/proc/net/stat/nf_conntrack` samples
/// (see [`StatsSeries::parse_captures`]) could not be read. Lines are
/// 1-based lines of the whole capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeriesError {
    /// Text before the first `@ SECONDS` line.
    #[error("line {line}: text before the first `@ SECONDS` line")]
    NoTimestamp {
        /// Where.
        line: usize,
    },
    /// An `@` line without whole seconds.
    #[error("line {line}: `@` must be followed by whole seconds")]
    BadTimestamp {
        /// Where.
        line: usize,
    },
    /// A sample's `conntrack -S` text did not parse.
    #[error("line {line}, column {column}: {kind}")]
    CliStats {
        /// The line of the capture where the problem is.
        line: usize,
        /// Its byte column.
        column: usize,
        /// What the `conntrack -S` parser found.
        kind: conntrack_core::cli::stats::CliStatsErrorKind,
    },
    /// A sample's stat text did not parse.
    #[error("line {line}, column {column}: {kind}")]
    Stat {
        /// The line of the capture where the problem is.
        line: usize,
        /// Its byte column.
        column: usize,
        /// What the `/proc` parser found.
        kind: conntrack_core::procstat::ProcStatErrorKind,
    },
    /// A sample's time is not after the previous one.
    #[error("line {line}: sample at {at} s is not after the previous one")]
    NotMonotonic {
        /// The `@` line.
        line: usize,
        /// Its time in seconds.
        at: u64,
    },
    /// No sample at all.
    #[error("no `@ SECONDS` sample in the capture")]
    Empty,
}

/// An ordered series of statistics snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSeries {
    samples: Vec<Sample>,
}

impl StatsSeries {
    /// An empty series.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the series has no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Reads a capture of timestamped statistics samples: each sample is
    /// a line `@ SECONDS` (any monotonic clock, e.g. `date +%s`) followed
    /// by the text of `/proc/net/stat/nf_conntrack` or of `conntrack -S`
    /// (told apart by the `entries` header of the former), which is what
    /// an operator's loop records:
    ///
    /// ```sh
    /// while :; do echo "@ $(date +%s)"; cat /proc/net/stat/nf_conntrack; sleep 1; done
    /// while :; do echo "@ $(date +%s)"; conntrack -S; sleep 1; done
    /// ```
    ///
    /// Blank lines between samples are ignored. Errors name the capture's
    /// line (and column for the stat text).
    ///
    /// ```
    /// use conntrack_analyze::rates::{SeriesError, StatsSeries};
    /// let text = "@ 100\nentries  drop\n00000005  00000001\n\
    ///             @ 110\nentries  drop\n00000006  0000000b\n";
    /// let series = StatsSeries::parse_captures(text).unwrap();
    /// assert_eq!(series.len(), 2);
    /// let err = StatsSeries::parse_captures("@ 1\nentries  drop\n0000000x  00000001\n");
    /// assert!(matches!(err, Err(SeriesError::Stat { line: 3, column: 1, .. })));
    /// // conntrack -S samples work the same way.
    /// let cli = "@ 5\ncpu=0 found=0 invalid=0 insert=0 insert_failed=3 drop=3\n\
    ///            @ 6\ncpu=0 found=0 invalid=0 insert=0 insert_failed=9 drop=9\n";
    /// let r = StatsSeries::parse_captures(cli).unwrap().rates();
    /// assert_eq!(r.per_sec(conntrack_core::Counter::Drop), 6.0);
    /// ```
    pub fn parse_captures(text: &str) -> Result<StatsSeries, SeriesError> {
        let mut series = StatsSeries::new();
        // (its `@` line, its time, the first line of its stat text, the text)
        let mut block: Option<(usize, u64, String)> = None;
        let flush = |b: Option<(usize, u64, String)>, s: &mut StatsSeries| match b {
            None => Ok(()),
            Some((at_line, t, body)) => {
                // `conntrack -S` lines start with `cpu=`; anything else is /proc text.
                let cli = body.trim_start().starts_with("cpu=");
                let stats = if !cli {
                    conntrack_core::procstat::parse(&body).map_err(|e| SeriesError::Stat {
                        line: at_line + e.location.line,
                        column: e.location.column,
                        kind: e.kind,
                    })?
                } else {
                    conntrack_core::cli::stats::parse_cli_stats(&body).map_err(|e| {
                        SeriesError::CliStats {
                            line: at_line + e.location.line,
                            column: e.location.column,
                            kind: e.kind,
                        }
                    })?
                };
                s.push(Duration::from_secs(t), stats)
                    .map_err(|_| SeriesError::NotMonotonic {
                        line: at_line,
                        at: t,
                    })
            }
        };
        for (i, line) in text.lines().enumerate() {
            let no = i + 1;
            if let Some(t) = line.strip_prefix('@') {
                flush(block.take(), &mut series)?;
                let t = t
                    .trim()
                    .parse()
                    .map_err(|_| SeriesError::BadTimestamp { line: no })?;
                block = Some((no, t, String::new()));
            } else if let Some((_, _, body)) = block.as_mut() {
                body.push_str(line);
                body.push('\n');
            } else if !line.trim().is_empty() {
                return Err(SeriesError::NoTimestamp { line: no });
            }
        }
        flush(block, &mut series)?;
        if series.is_empty() {
            return Err(SeriesError::Empty);
        }
        Ok(series)
    }

    /// Appends a sample; its time must be strictly after the last one.
    pub fn push(&mut self, at: Duration, stats: Stats) -> Result<(), NotMonotonic> {
        if let Some(last) = self.samples.last()
            && at <= last.at
        {
            return Err(NotMonotonic {
                previous: last.at,
                at,
            });
        }
        self.samples.push(Sample { at, stats });
        Ok(())
    }

    /// Drops the oldest samples so that at most `n` remain (a sliding
    /// window).
    pub fn keep_last(&mut self, n: usize) {
        if self.samples.len() > n {
            let cut = self.samples.len() - n;
            self.samples.drain(..cut);
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Rates over the whole series.
    pub fn rates(&self) -> Rates {
        Rates::from_samples(&self.samples)
    }
}

/// How a CPU row is identified: by the CPU id the source named, or by its
/// row position when the source names none (`/proc` rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuId {
    /// A CPU id (ctnetlink `res_id`, `conntrack -S`).
    Id(u32),
    /// A row index (`/proc/net/stat/nf_conntrack` skips impossible CPUs,
    /// so row N is not necessarily CPU N).
    Row(usize),
}

impl CpuId {
    /// The kernel CPU id, when known: an [`CpuId::Id`] as is, a
    /// [`CpuId::Row`] through the possible-CPU list (`/proc` prints one row
    /// per possible CPU, in order, so row N is the Nth possible CPU).
    ///
    /// ```
    /// use conntrack_analyze::rates::CpuId;
    /// assert_eq!(CpuId::Row(1).resolve(&[0, 2, 3]), Some(2));
    /// assert_eq!(CpuId::Row(5).resolve(&[0, 1]), None);
    /// assert_eq!(CpuId::Id(7).resolve(&[]), Some(7));
    /// ```
    pub fn resolve(self, possible: &[u32]) -> Option<u32> {
        match self {
            CpuId::Id(i) => Some(i),
            CpuId::Row(r) => possible.get(r).copied(),
        }
    }
}

impl fmt::Display for CpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuId::Id(i) => write!(f, "cpu{i}"),
            CpuId::Row(r) => write!(f, "row{r}"),
        }
    }
}

/// Whether a counter is moving now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// It grew within the window: happening now.
    Live,
    /// Non-zero, but its rate was zero for the whole window: it only grew
    /// before (since boot), not a live problem.
    History,
    /// Zero.
    Quiet,
    /// No usable interval (fewer than two samples, or every interval was
    /// discarded): nothing can be said about now.
    Unknown,
}

/// One counter's rate over the window, summed over CPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterRate {
    /// The counter.
    pub counter: Counter,
    /// Increase over the usable intervals (wrap-aware, resets excluded).
    pub delta: u64,
    /// `delta` per second of usable time.
    pub per_sec: f64,
    /// The highest single-interval rate.
    pub peak_per_sec: f64,
    /// Intervals in which it grew.
    pub active_intervals: usize,
    /// Its value in the last sample (summed over CPUs, u32 wrap-around as
    /// the kernel prints): the "since boot" figure.
    pub since_boot: u32,
    /// Live, history, quiet or unknown.
    pub activity: Activity,
}

/// One CPU's rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuRates {
    /// Which CPU.
    pub cpu: CpuId,
    /// Seconds of usable intervals in which this CPU was present.
    pub covered_secs: f64,
    /// Per counter: increase and rate.
    pub counters: Vec<(Counter, u64, f64)>,
}

impl CpuRates {
    /// This CPU's rate of a counter (0 when not reported).
    pub fn per_sec(&self, c: Counter) -> f64 {
        self.counters
            .iter()
            .find(|(k, _, _)| *k == c)
            .map_or(0.0, |&(_, _, r)| r)
    }
}

/// The counters restarted between two samples (reboot, module reload,
/// namespace recreated): a counter went backwards by more than a u32
/// wrap-around can explain, or several counters went backwards together
/// with the entry count. The interval's deltas were discarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterReset {
    /// The time of the sample after the reset.
    pub at: Duration,
    /// Counters that went backwards.
    pub counters: Vec<Counter>,
    /// Entries before and after, when both samples had them.
    pub entries: Option<(u32, u32)>,
}

/// CPU rows that appeared or disappeared between two samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuChange {
    /// The time of the later sample.
    pub at: Duration,
    /// CPUs present only in the later sample (their counters were not
    /// counted for this interval).
    pub appeared: Vec<CpuId>,
    /// CPUs present only in the earlier sample.
    pub disappeared: Vec<CpuId>,
    /// Rows could not be matched at all (no CPU ids and a different row
    /// count): the interval was discarded.
    pub unmatched: bool,
}

/// The time span the rates cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateWindow {
    /// First sample's time.
    pub start: Duration,
    /// Last sample's time.
    pub end: Duration,
    /// Number of samples.
    pub samples: usize,
    /// Intervals between samples.
    pub intervals: usize,
    /// Intervals used (not discarded for a reset or unmatched CPUs).
    pub used_intervals: usize,
    /// Seconds covered by the used intervals.
    pub covered_secs: f64,
}

/// The trend of the entry count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntriesTrend {
    /// Entries in the first sample considered (after the last reset).
    pub first: u32,
    /// Entries in the last sample.
    pub last: u32,
    /// Lowest seen.
    pub min: u32,
    /// Highest seen.
    pub max: u32,
    /// Least-squares slope, entries per second (0 with one point).
    pub slope_per_sec: f64,
    /// Samples the trend is fitted to.
    pub points: usize,
}

/// Per-CPU imbalance of one counter's rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imbalance {
    /// The counter.
    pub counter: Counter,
    /// CPUs considered.
    pub cpus: usize,
    /// Sum of the CPUs' rates.
    pub total_per_sec: f64,
    /// Mean rate per CPU.
    pub mean_per_sec: f64,
    /// The busiest CPU's rate.
    pub max_per_sec: f64,
    /// `max / mean` (1 when balanced, `cpus` when one CPU has it all).
    pub max_over_mean: f64,
    /// The busiest CPU.
    pub busiest: CpuId,
    /// The busiest CPU's share of the total, 0..=1.
    pub busiest_share: f64,
    /// How the load is spread (excess over the fair share, effective
    /// CPUs); [`Spread::is_imbalanced`] is the rule diagnosis applies.
    pub spread: Spread,
}

/// The busiest CPU's excess over its fair share at which a load counts as
/// imbalanced: `(share - 1/n) / (1 - 1/n)`, 0 for an even spread and 1 when
/// one CPU has it all. 0.5 puts the line at 75/25 on 2 CPUs.
pub const BUSIEST_EXCESS: f64 = 0.5;

/// How unevenly a per-CPU load (rates, softirq counts) is spread; see
/// [`spread`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// CPUs considered.
    pub cpus: usize,
    /// Position of the busiest CPU in the load slice.
    pub busiest: usize,
    /// The busiest CPU's share of the total, 0..=1 (fair: `1 / cpus`).
    pub busiest_share: f64,
    /// The busiest CPU's excess over its fair share, 0..=1 (see
    /// [`BUSIEST_EXCESS`]).
    pub excess: f64,
    /// The effective number of CPUs doing the work, `1 / sum(share^2)`
    /// (the inverse Herfindahl index): `k` when `k` CPUs share it evenly.
    pub effective_cpus: f64,
}

impl Spread {
    /// Whether the load is imbalanced: one CPU takes at least halfway from
    /// its fair share to all of it ([`BUSIEST_EXCESS`]), or the work
    /// effectively runs on at most half of the CPUs (a multi-queue NIC
    /// keeping 8 of 32 CPUs busy, where no single CPU dominates). Unlike a
    /// fixed `max / mean` threshold this means the same on 2 CPUs and on
    /// 64 (where `max / mean >= 1.5` fires at a 2.3% share).
    pub fn is_imbalanced(&self) -> bool {
        self.cpus >= 2
            && (self.excess >= BUSIEST_EXCESS || self.effective_cpus <= self.cpus as f64 / 2.0)
    }
}

/// How a per-CPU load is spread: `None` for fewer than 2 CPUs or no load.
/// Shared by diagnosis (per-CPU failure rates) and the tuning planner
/// (NET_RX softirqs), so that a finding and a plan never disagree.
///
/// ```
/// use conntrack_analyze::rates::spread;
/// assert!(spread(&[99.45, 0.55]).unwrap().is_imbalanced());
/// assert!(!spread(&[60.0, 40.0]).unwrap().is_imbalanced());
/// let mut eight_of_32 = vec![0.01; 32];
/// for l in &mut eight_of_32[..8] { *l = 1000.0; }
/// assert!(spread(&eight_of_32).unwrap().is_imbalanced());
/// assert!(spread(&[5.0]).is_none() && spread(&[0.0, 0.0]).is_none());
/// ```
pub fn spread(load: &[f64]) -> Option<Spread> {
    if load.len() < 2 || load.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return None;
    }
    let total: f64 = load.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return None;
    }
    let (busiest, max) =
        load.iter().copied().enumerate().fold(
            (0, f64::MIN),
            |acc, (i, v)| if v > acc.1 { (i, v) } else { acc },
        );
    let n = load.len() as f64;
    let share = max / total;
    let hhi: f64 = load.iter().map(|v| (v / total).powi(2)).sum();
    Some(Spread {
        cpus: load.len(),
        busiest,
        busiest_share: share,
        excess: (share - 1.0 / n) / (1.0 - 1.0 / n),
        effective_cpus: if hhi > 0.0 { 1.0 / hhi } else { n },
    })
}

/// Rates over a window of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// What the rates cover.
    pub window: RateWindow,
    /// Every counter reported by the last sample, in [`Counter::ALL`] order.
    pub counters: Vec<CounterRate>,
    /// Per-CPU rates, in first-seen order.
    pub cpus: Vec<CpuRates>,
    /// The entry count's trend, when the samples carry it.
    pub entries: Option<EntriesTrend>,
    /// Resets detected (their intervals were discarded).
    pub resets: Vec<CounterReset>,
    /// CPUs appearing or disappearing.
    pub cpu_changes: Vec<CpuChange>,
}

/// Pairs of CPU rows of two samples that describe the same CPU.
struct Matching {
    pairs: Vec<(CpuId, usize, usize)>,
    appeared: Vec<CpuId>,
    disappeared: Vec<CpuId>,
    unmatched: bool,
}

fn match_cpus(a: &[CpuStats], b: &[CpuStats]) -> Matching {
    let all_ids = |s: &[CpuStats]| s.iter().all(|c| c.cpu.is_some());
    let mut m = Matching {
        pairs: Vec::new(),
        appeared: Vec::new(),
        disappeared: Vec::new(),
        unmatched: false,
    };
    if all_ids(a) && all_ids(b) && !(a.is_empty() && b.is_empty()) {
        for (j, cb) in b.iter().enumerate() {
            let id = cb.cpu.unwrap_or(0);
            match a.iter().position(|ca| ca.cpu == Some(id)) {
                Some(i) => m.pairs.push((CpuId::Id(id), i, j)),
                None => m.appeared.push(CpuId::Id(id)),
            }
        }
        for ca in a {
            let id = ca.cpu.unwrap_or(0);
            if !b.iter().any(|cb| cb.cpu == Some(id)) {
                m.disappeared.push(CpuId::Id(id));
            }
        }
    } else if a.len() == b.len() {
        m.pairs = (0..a.len()).map(|i| (CpuId::Row(i), i, i)).collect();
    } else {
        m.unmatched = true;
        m.appeared = (a.len()..b.len()).map(CpuId::Row).collect();
        m.disappeared = (b.len()..a.len()).map(CpuId::Row).collect();
    }
    m
}

/// A wrap-around is plausible when the wrapped difference is under half
/// the u32 range (the counter was in its top half and restarted small).
fn plausible_wrap(prev: u32, cur: u32) -> bool {
    cur.wrapping_sub(prev) < 1 << 31
}

struct CpuAcc {
    cpu: CpuId,
    secs: f64,
    delta: [u64; Counter::COUNT],
    seen: [bool; Counter::COUNT],
}

impl Rates {
    /// Rates over consecutive samples (oldest first). Samples whose time
    /// does not increase are skipped like discarded intervals.
    pub fn from_samples(samples: &[Sample]) -> Rates {
        let mut total = [0u64; Counter::COUNT];
        let mut peak = [0f64; Counter::COUNT];
        let mut active = [0usize; Counter::COUNT];
        let mut cpus: Vec<CpuAcc> = Vec::new();
        let mut resets = Vec::new();
        let mut cpu_changes = Vec::new();
        let mut used = 0usize;
        let mut covered = 0f64;
        let mut trend_from = 0usize;

        for (k, w) in samples.windows(2).enumerate() {
            let (a, b) = (&w[0], &w[1]);
            let Some(dt) = b.at.checked_sub(a.at).map(|d| d.as_secs_f64()) else {
                continue;
            };
            if dt <= 0.0 {
                continue;
            }
            let m = match_cpus(&a.stats.cpus, &b.stats.cpus);
            if m.unmatched || !m.appeared.is_empty() || !m.disappeared.is_empty() {
                cpu_changes.push(CpuChange {
                    at: b.at,
                    appeared: m.appeared.clone(),
                    disappeared: m.disappeared.clone(),
                    unmatched: m.unmatched,
                });
            }
            if m.unmatched {
                continue;
            }
            // Deltas of this interval, and reset detection.
            let mut backwards = [false; Counter::COUNT];
            let mut implausible = false;
            let mut d = vec![[None::<u64>; Counter::COUNT]; m.pairs.len()];
            for (p, &(_, i, j)) in m.pairs.iter().enumerate() {
                let (ca, cb) = (&a.stats.cpus[i], &b.stats.cpus[j]);
                for c in Counter::ALL {
                    if let (Some(x), Some(y)) = (ca.get(c), cb.get(c)) {
                        if y < x {
                            backwards[c.index()] = true;
                            implausible |= !plausible_wrap(x, y);
                        }
                        d[p][c.index()] = Some(y.wrapping_sub(x) as u64);
                    }
                }
            }
            let n_back = backwards.iter().filter(|&&x| x).count();
            let entries_back = matches!(
                (a.stats.entries, b.stats.entries),
                (Some(x), Some(y)) if y < x
            );
            if n_back > 0 && (implausible || (n_back >= 2 && entries_back)) {
                resets.push(CounterReset {
                    at: b.at,
                    counters: Counter::ALL
                        .into_iter()
                        .filter(|c| backwards[c.index()])
                        .collect(),
                    entries: a.stats.entries.zip(b.stats.entries),
                });
                trend_from = k + 1;
                continue;
            }
            used += 1;
            covered += dt;
            let mut sum = [0u64; Counter::COUNT];
            for (p, &(id, _, _)) in m.pairs.iter().enumerate() {
                let acc = match cpus.iter_mut().position(|x| x.cpu == id) {
                    Some(pos) => &mut cpus[pos],
                    None => {
                        cpus.push(CpuAcc {
                            cpu: id,
                            secs: 0.0,
                            delta: [0; Counter::COUNT],
                            seen: [false; Counter::COUNT],
                        });
                        cpus.last_mut().expect("just pushed")
                    }
                };
                acc.secs += dt;
                for c in Counter::ALL {
                    if let Some(v) = d[p][c.index()] {
                        acc.delta[c.index()] += v;
                        acc.seen[c.index()] = true;
                        sum[c.index()] += v;
                    }
                }
            }
            for c in Counter::ALL {
                let i = c.index();
                total[i] += sum[i];
                if sum[i] > 0 {
                    active[i] += 1;
                    peak[i] = peak[i].max(sum[i] as f64 / dt);
                }
            }
        }

        let last_total = samples.last().map(|s| s.stats.total()).unwrap_or_default();
        let counters = Counter::ALL
            .into_iter()
            .filter_map(|c| {
                let since_boot = last_total.get(c)?;
                let i = c.index();
                let per_sec = if covered > 0.0 {
                    total[i] as f64 / covered
                } else {
                    0.0
                };
                let activity = if used == 0 {
                    Activity::Unknown
                } else if total[i] > 0 {
                    Activity::Live
                } else if since_boot > 0 {
                    Activity::History
                } else {
                    Activity::Quiet
                };
                Some(CounterRate {
                    counter: c,
                    delta: total[i],
                    per_sec,
                    peak_per_sec: peak[i],
                    active_intervals: active[i],
                    since_boot,
                    activity,
                })
            })
            .collect();
        let cpus = cpus
            .into_iter()
            .map(|acc| CpuRates {
                cpu: acc.cpu,
                covered_secs: acc.secs,
                counters: Counter::ALL
                    .into_iter()
                    .filter(|c| acc.seen[c.index()])
                    .map(|c| {
                        let dl = acc.delta[c.index()];
                        let r = if acc.secs > 0.0 {
                            dl as f64 / acc.secs
                        } else {
                            0.0
                        };
                        (c, dl, r)
                    })
                    .collect(),
            })
            .collect();

        Rates {
            window: RateWindow {
                start: samples.first().map_or(Duration::ZERO, |s| s.at),
                end: samples.last().map_or(Duration::ZERO, |s| s.at),
                samples: samples.len(),
                intervals: samples.len().saturating_sub(1),
                used_intervals: used,
                covered_secs: covered,
            },
            counters,
            cpus,
            entries: entries_trend(&samples[trend_from.min(samples.len())..]),
            resets,
            cpu_changes,
        }
    }

    /// The rate record of a counter, when the last sample reported it.
    pub fn get(&self, c: Counter) -> Option<&CounterRate> {
        self.counters.iter().find(|r| r.counter == c)
    }

    /// A counter's rate per second (0 when unknown).
    pub fn per_sec(&self, c: Counter) -> f64 {
        self.get(c).map_or(0.0, |r| r.per_sec)
    }

    /// A counter's increase over the window (0 when unknown).
    pub fn delta(&self, c: Counter) -> u64 {
        self.get(c).map_or(0, |r| r.delta)
    }

    /// Whether a counter grew within the window.
    pub fn is_live(&self, c: Counter) -> bool {
        self.get(c).is_some_and(|r| r.activity == Activity::Live)
    }

    /// Whether the source reported this counter at all.
    pub fn has(&self, c: Counter) -> bool {
        self.get(c).is_some()
    }

    /// Per-CPU imbalance of a counter's rate; `None` with fewer than two
    /// CPUs or when the counter did not move.
    ///
    /// ```
    /// use conntrack_analyze::rates::{CpuId, Rates, Sample};
    /// use conntrack_core::{Counter, CpuStats, Stats};
    /// use std::time::Duration;
    /// let snap = |t: u64, d: [u32; 4]| Sample {
    ///     at: Duration::from_secs(t),
    ///     stats: Stats {
    ///         entries: Some(10),
    ///         max_entries: None,
    ///         cpus: d.iter().enumerate().map(|(i, &v)| {
    ///             let mut c = CpuStats::for_cpu(i as u32);
    ///             c.set(Counter::Drop, v);
    ///             c
    ///         }).collect(),
    ///     },
    /// };
    /// let r = Rates::from_samples(&[snap(0, [0; 4]), snap(10, [90, 10, 0, 0])]);
    /// let imb = r.imbalance(Counter::Drop).unwrap();
    /// assert_eq!(imb.busiest, CpuId::Id(0));
    /// assert_eq!(imb.max_per_sec, 9.0);
    /// assert_eq!(imb.mean_per_sec, 2.5);     // 10/s over 4 CPUs
    /// assert_eq!(imb.max_over_mean, 3.6);
    /// assert_eq!(imb.busiest_share, 0.9);
    /// ```
    pub fn imbalance(&self, c: Counter) -> Option<Imbalance> {
        if self.cpus.len() < 2 {
            return None;
        }
        let load: Vec<f64> = self.cpus.iter().map(|x| x.per_sec(c)).collect();
        let sp = spread(&load)?;
        let total: f64 = load.iter().sum();
        let max = load[sp.busiest];
        let mean = total / load.len() as f64;
        Some(Imbalance {
            counter: c,
            cpus: load.len(),
            total_per_sec: total,
            mean_per_sec: mean,
            max_per_sec: max,
            max_over_mean: max / mean,
            busiest: self.cpus[sp.busiest].cpu,
            busiest_share: sp.busiest_share,
            spread: sp,
        })
    }
}

fn entries_trend(samples: &[Sample]) -> Option<EntriesTrend> {
    let pts: Vec<(f64, u32)> = samples
        .iter()
        .filter_map(|s| s.stats.entries.map(|e| (s.at.as_secs_f64(), e)))
        .collect();
    let (&(_, first), &(_, last)) = (pts.first()?, pts.last()?);
    let n = pts.len() as f64;
    let mt = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let me = pts.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(t, e) in &pts {
        sxy += (t - mt) * (e as f64 - me);
        sxx += (t - mt) * (t - mt);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Some(EntriesTrend {
        first,
        last,
        min: pts.iter().map(|p| p.1).min().unwrap_or(0),
        max: pts.iter().map(|p| p.1).max().unwrap_or(0),
        slope_per_sec: if slope.is_finite() { slope } else { 0.0 },
        points: pts.len(),
    })
}

impl fmt::Display for Rates {
    /// A table: counter, rate, peak, delta, since boot, activity.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "window {:.1}s ({} of {} intervals used)",
            self.window.covered_secs, self.window.used_intervals, self.window.intervals
        )?;
        writeln!(
            f,
            "{:<15} {:>12} {:>12} {:>12} {:>12}  activity",
            "counter", "per_sec", "peak", "delta", "since_boot"
        )?;
        for r in &self.counters {
            let act = match r.activity {
                Activity::Live => "live",
                Activity::History => "history",
                Activity::Quiet => "-",
                Activity::Unknown => "?",
            };
            writeln!(
                f,
                "{:<15} {:>12.2} {:>12.2} {:>12} {:>12}  {act}",
                r.counter.name(),
                r.per_sec,
                r.peak_per_sec,
                r.delta,
                r.since_boot
            )?;
        }
        if self.cpus.len() > 1 {
            let cols = [
                Counter::Drop,
                Counter::InsertFailed,
                Counter::EarlyDrop,
                Counter::Invalid,
            ];
            write!(f, "{:<8}", "cpu")?;
            for c in cols {
                write!(f, " {:>14}", c.name())?;
            }
            writeln!(f)?;
            for cpu in &self.cpus {
                write!(f, "{:<8}", cpu.cpu.to_string())?;
                for c in cols {
                    write!(f, " {:>14.2}", cpu.per_sec(c))?;
                }
                writeln!(f)?;
            }
        }
        for x in &self.resets {
            writeln!(f, "counter reset before {:?}", x.at)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(id: Option<u32>, vals: &[(Counter, u32)]) -> CpuStats {
        let mut c = CpuStats::default();
        c.cpu = id;
        for &(k, v) in vals {
            c.set(k, v);
        }
        c
    }

    fn sample(t: u64, entries: u32, cpus: Vec<CpuStats>) -> Sample {
        Sample {
            at: Duration::from_secs(t),
            stats: Stats {
                entries: Some(entries),
                max_entries: None,
                cpus,
            },
        }
    }

    use Counter::*;

    #[test]
    fn wrap_is_a_small_delta() {
        let s = [
            sample(0, 5, vec![cpu(None, &[(Drop, u32::MAX)])]),
            sample(2, 5, vec![cpu(None, &[(Drop, 3)])]),
        ];
        let r = Rates::from_samples(&s);
        assert_eq!(r.delta(Drop), 4);
        assert_eq!(r.per_sec(Drop), 2.0);
        assert!(r.resets.is_empty());
    }

    #[test]
    fn reset_is_reported_not_a_huge_delta() {
        let s = [
            sample(0, 1000, vec![cpu(None, &[(Drop, 50), (Invalid, 900)])]),
            sample(10, 1000, vec![cpu(None, &[(Drop, 60), (Invalid, 950)])]),
            // reboot: both counters and entries back near zero
            sample(20, 3, vec![cpu(None, &[(Drop, 0), (Invalid, 2)])]),
            sample(30, 8, vec![cpu(None, &[(Drop, 0), (Invalid, 12)])]),
        ];
        let r = Rates::from_samples(&s);
        assert_eq!(r.resets.len(), 1);
        assert_eq!(r.resets[0].at, Duration::from_secs(20));
        assert_eq!(r.resets[0].counters, vec![Invalid, Drop]);
        assert_eq!(r.resets[0].entries, Some((1000, 3)));
        assert_eq!(r.window.used_intervals, 2);
        assert_eq!(r.window.covered_secs, 20.0);
        assert_eq!(r.delta(Drop), 10);
        assert_eq!(r.delta(Invalid), 60);
        assert_eq!(r.per_sec(Invalid), 3.0);
        // The trend restarts after the reset: 3 -> 8 in 10 s.
        let t = r.entries.unwrap();
        assert_eq!((t.first, t.last, t.points), (3, 8, 2));
        assert_eq!(t.slope_per_sec, 0.5);
    }

    #[test]
    fn single_backwards_counter_far_from_wrap_is_a_reset() {
        let s = [
            sample(0, 10, vec![cpu(None, &[(Drop, 500)])]),
            sample(1, 20, vec![cpu(None, &[(Drop, 5)])]),
        ];
        let r = Rates::from_samples(&s);
        assert_eq!(r.resets.len(), 1);
        assert_eq!(r.get(Drop).unwrap().activity, Activity::Unknown);
    }

    #[test]
    fn cpus_appearing_and_disappearing() {
        let s = [
            sample(
                0,
                1,
                vec![cpu(Some(0), &[(Drop, 10)]), cpu(Some(1), &[(Drop, 10)])],
            ),
            // cpu1 went away, cpu2 came online with its own history
            sample(
                10,
                1,
                vec![cpu(Some(0), &[(Drop, 30)]), cpu(Some(2), &[(Drop, 1000)])],
            ),
            sample(
                20,
                1,
                vec![cpu(Some(0), &[(Drop, 30)]), cpu(Some(2), &[(Drop, 1010)])],
            ),
        ];
        let r = Rates::from_samples(&s);
        assert_eq!(r.cpu_changes.len(), 1);
        assert_eq!(r.cpu_changes[0].appeared, vec![CpuId::Id(2)]);
        assert_eq!(r.cpu_changes[0].disappeared, vec![CpuId::Id(1)]);
        assert!(r.resets.is_empty());
        // 20 from cpu0 + 10 from cpu2 (second interval only).
        assert_eq!(r.delta(Drop), 30);
        assert_eq!(r.per_sec(Drop), 1.5);
        assert!(r.to_string().contains("cpu2"));
        let c2 = r.cpus.iter().find(|c| c.cpu == CpuId::Id(2)).unwrap();
        assert_eq!(c2.covered_secs, 10.0);
        assert_eq!(c2.per_sec(Drop), 1.0);
    }

    #[test]
    fn unnamed_rows_with_different_counts_discard_the_interval() {
        let s = [
            sample(0, 1, vec![cpu(None, &[(Drop, 10)])]),
            sample(
                10,
                1,
                vec![cpu(None, &[(Drop, 20)]), cpu(None, &[(Drop, 5)])],
            ),
        ];
        let r = Rates::from_samples(&s);
        assert!(r.cpu_changes[0].unmatched);
        assert_eq!(r.window.used_intervals, 0);
        assert_eq!(r.get(Drop).unwrap().activity, Activity::Unknown);
    }

    #[test]
    fn history_versus_live() {
        let s = [
            sample(
                0,
                1,
                vec![cpu(None, &[(Drop, 7), (Invalid, 0), (InsertFailed, 0)])],
            ),
            sample(
                5,
                1,
                vec![cpu(None, &[(Drop, 7), (Invalid, 5), (InsertFailed, 0)])],
            ),
        ];
        let r = Rates::from_samples(&s);
        assert_eq!(r.get(Drop).unwrap().activity, Activity::History);
        assert_eq!(r.get(Invalid).unwrap().activity, Activity::Live);
        assert_eq!(r.get(InsertFailed).unwrap().activity, Activity::Quiet);
        assert_eq!(r.get(Invalid).unwrap().peak_per_sec, 1.0);
        assert!(r.get(EarlyDrop).is_none());
    }

    #[test]
    fn series_rejects_non_monotonic_and_empty_is_fine() {
        let mut s = StatsSeries::new();
        assert_eq!(s.rates().window.samples, 0);
        s.push(Duration::from_secs(5), Stats::default()).unwrap();
        assert!(s.push(Duration::from_secs(5), Stats::default()).is_err());
        assert!(s.push(Duration::from_secs(4), Stats::default()).is_err());
        s.push(Duration::from_secs(6), Stats::default()).unwrap();
        s.keep_last(1);
        assert_eq!(s.samples().len(), 1);
        let r = s.rates();
        assert!(r.counters.is_empty());
        assert!(r.to_string().starts_with("window 0.0s"));
        assert!(r.imbalance(Drop).is_none());
    }
}

#[cfg(test)]
mod capture_tests {
    use super::*;
    use conntrack_core::procstat::ProcStatErrorKind;

    const HDR: &str = "entries  drop\n";

    #[test]
    fn capture_errors_name_the_capture_line() {
        let p = StatsSeries::parse_captures;
        assert_eq!(p(""), Err(SeriesError::Empty));
        assert_eq!(p("\n  \n"), Err(SeriesError::Empty));
        assert_eq!(
            p("entries  drop\n@ 1\n"),
            Err(SeriesError::NoTimestamp { line: 1 })
        );
        assert_eq!(p("@ soon\n"), Err(SeriesError::BadTimestamp { line: 1 }));
        let two = format!("@ 5\n{HDR}00000001  00000000\n@ 5\n{HDR}00000001  00000000\n");
        assert_eq!(p(&two), Err(SeriesError::NotMonotonic { line: 4, at: 5 }));
        // A truncated row in the second sample: line 6 of the capture.
        let cut = format!("@ 1\n{HDR}00000001  00000000\n@ 2\n{HDR}00000001\n");
        assert!(matches!(
            p(&cut),
            Err(SeriesError::Stat {
                line: 6,
                kind: ProcStatErrorKind::MissingValues { .. },
                ..
            })
        ));
        // An `@` line with no stat text after it.
        assert!(matches!(
            p("@ 1\n"),
            Err(SeriesError::Stat {
                line: 2,
                kind: ProcStatErrorKind::Empty,
                ..
            })
        ));
    }

    #[test]
    fn capture_rates() {
        let text = format!("@ 100\n{HDR}00000005  00000001\n\n@ 110\n{HDR}00000006  0000000b\n");
        let s = StatsSeries::parse_captures(&text).unwrap();
        assert_eq!(s.len(), 2);
        let r = s.rates();
        assert_eq!(r.window.covered_secs, 10.0);
        // drop went 1 -> 11 over 10 s.
        assert_eq!(r.per_sec(conntrack_core::Counter::Drop), 1.0);
    }
}
