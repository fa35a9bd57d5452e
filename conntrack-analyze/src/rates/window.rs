//! Rates over a window of samples.

use super::cpu::{CpuChange, CpuId, CpuRates, match_cpus};
use super::series::Sample;
use super::spread::{Imbalance, spread};
use super::wrap::plausible_wrap;
use conntrack_core::Counter;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Whether a counter is moving now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
#[non_exhaustive]
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

/// The counters restarted between two samples (reboot, module reload,
/// namespace recreated): a counter went backwards by more than a u32
/// wrap-around can explain, or several counters went backwards together
/// with the entry count. The interval's deltas were discarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CounterReset {
    /// The time of the sample after the reset.
    pub at: Duration,
    /// Counters that went backwards.
    pub counters: Vec<Counter>,
    /// Entries before and after, when both samples had them.
    pub entries: Option<(u32, u32)>,
}

/// The time span the rates cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
#[non_exhaustive]
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

/// Rates over a window of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
                let per_sec = per_sec(total[i], covered);
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
                        (c, dl, per_sec(dl, acc.secs))
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
    ///     stats: Stats::new(d.iter().enumerate().map(|(i, &v)| {
    ///         let mut c = CpuStats::for_cpu(i as u32);
    ///         c.set(Counter::Drop, v);
    ///         c
    ///     }).collect()).with_entries(10),
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

/// An increase over `secs` seconds as a rate (0 over no time): every
/// counter's and every CPU's.
fn per_sec(delta: u64, secs: f64) -> f64 {
    if secs > 0.0 { delta as f64 / secs } else { 0.0 }
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
    use conntrack_core::{CpuStats, Stats};

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
            stats: Stats::new(cpus).with_entries(entries),
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
}
