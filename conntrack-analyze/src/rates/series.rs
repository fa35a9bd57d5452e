//! Series of statistics snapshots, and captures of them.

use super::window::Rates;
use conntrack_core::Stats;
use serde::{Deserialize, Serialize};
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

    /// Drops the samples taken more than `window` before the last one, but
    /// keeps at least two, so that rates stay computable however far apart
    /// the samples are (a sliding window in time, for a collector whose
    /// readings come irregularly, such as at scrape time).
    ///
    /// ```
    /// use conntrack_analyze::rates::StatsSeries;
    /// use conntrack_core::Stats;
    /// use std::time::Duration;
    /// let mut s = StatsSeries::new();
    /// for t in [0, 100, 250, 290, 300] {
    ///     s.push(Duration::from_secs(t), Stats::default()).unwrap();
    /// }
    /// s.keep_within(Duration::from_secs(60));
    /// assert_eq!(s.samples()[0].at, Duration::from_secs(250));
    /// s.keep_within(Duration::from_secs(1));
    /// assert_eq!(s.len(), 2); // never fewer than two
    /// ```
    pub fn keep_within(&mut self, window: Duration) {
        let Some(last) = self.samples.last() else {
            return;
        };
        let horizon = last.at.saturating_sub(window);
        let old = self.samples.iter().take_while(|s| s.at < horizon).count();
        self.keep_last((self.samples.len() - old).max(2));
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

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_core::Counter::Drop;

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

    #[test]
    fn keep_within_is_a_window_in_time_of_at_least_two() {
        let at =
            |s: &StatsSeries| -> Vec<u64> { s.samples().iter().map(|x| x.at.as_secs()).collect() };
        let mut s = StatsSeries::new();
        s.keep_within(Duration::from_secs(10)); // empty: nothing to do
        for t in [0, 5, 10, 15, 20] {
            s.push(Duration::from_secs(t), Stats::default()).unwrap();
        }
        // The horizon itself is kept (20 - 10 = 10).
        s.keep_within(Duration::from_secs(10));
        assert_eq!(at(&s), [10, 15, 20]);
        s.keep_within(Duration::ZERO);
        assert_eq!(at(&s), [15, 20]);
        s.keep_last(1);
        s.keep_within(Duration::ZERO);
        assert_eq!(at(&s), [20]);
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
