//! What each per-CPU counter says: moving now, history only, quiet, or
//! not reported by this kernel at all (never shown as 0).

use crate::observation::Observation;
use crate::rates::Activity;
use conntrack_core::{Counter, KernelVersion, Support};
use serde::Serialize;

/// What a counter's value means here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "status")]
#[non_exhaustive]
pub enum CounterStatus {
    /// It rose within the window: happening now.
    Live,
    /// Non-zero, flat over the window: it happened before (since boot, or
    /// since the namespace was created).
    History,
    /// Zero over the window and in total.
    Quiet,
    /// Reported, but there is no window to tell now from before.
    NoWindow,
    /// This kernel has no such counter, or stopped counting it: whatever a
    /// source shows for it (a zero-filled column) means nothing.
    NotCountedByKernel {
        /// What the kernel table says.
        support: Support,
    },
    /// The source did not report it.
    NotReported,
}

/// One counter's reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct CounterReading {
    /// The counter.
    pub counter: Counter,
    /// What its value means.
    #[serde(flatten)]
    pub status: CounterStatus,
    /// Rate over the window, when live, history or quiet.
    pub per_sec: Option<f64>,
    /// Highest single-interval rate.
    pub peak_per_sec: Option<f64>,
    /// Increase over the window.
    pub delta: Option<u64>,
    /// Its value in the last sample, summed over CPUs (since boot or
    /// namespace creation, wrapping at 2^32 as the kernel's u32 does).
    pub total: Option<u32>,
}

fn readings_total(readings: &[CounterReading], c: Counter) -> Option<u32> {
    readings[c.index()].total
}

/// Since when the counters count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CounterEpoch {
    /// The initial namespace: since boot (or module load).
    Boot,
    /// Another namespace: since that namespace was created (its per-CPU
    /// statistics are allocated with it).
    NamespaceCreation,
    /// Not known which namespace.
    Unknown,
}

impl CounterEpoch {
    /// "since boot" / "since the namespace was created".
    pub const fn describe(self) -> &'static str {
        match self {
            CounterEpoch::Boot => "since boot",
            CounterEpoch::NamespaceCreation => "since the namespace was created",
            CounterEpoch::Unknown => "since boot (or since the namespace was created)",
        }
    }
}

/// How the kernel accounts a clash at confirm time (two entries for the
/// same tuple, or the same NAT mapping, confirmed at once), read in
/// `__nf_conntrack_confirm` / `nf_ct_resolve_clash` of 3.x, 4.19 and 6.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClashAccounting {
    /// Up to 4.5: a clash increments `insert_failed` only; `drop` does not
    /// count the lost packet, and no clash is ever resolved.
    InsertFailedOnly,
    /// 4.6 to 5.9 (commit 71d8c47fc653 "netfilter: conntrack: introduce
    /// clash resolution on insertion race"): every clash increments
    /// `insert_failed`; only an unresolved one also increments `drop`. A
    /// dying entry at confirm counts in `insert_failed` only. (5.6 to 5.9
    /// also resolve NAT-differing UDP clashes, 6a757c07e51f, counting
    /// nothing.)
    ResolvedInInsertFailed,
    /// 5.10 and later (commit bc92470413f3): a resolved clash counts in
    /// `clash_resolve` only; an unresolved one in `insert_failed` and
    /// `drop`; a chain-cap refusal (5.15+) in `chaintoolong` and
    /// `insert_failed`, not `drop`; a dying entry in `insert_failed`.
    ResolvedInClashResolve,
    /// The kernel is unknown and the counters do not tell.
    Unknown,
}

/// Every counter's reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct CounterFacts {
    /// One reading per counter, in [`Counter::ALL`] order.
    pub readings: Vec<CounterReading>,
    /// Since when totals count.
    pub epoch: CounterEpoch,
    /// Seconds the rates cover (`None` without a window).
    pub window_secs: Option<f64>,
    /// How clashes are counted on this kernel.
    pub clash_accounting: ClashAccounting,
    /// `insert` counts only entries inserted over ctnetlink, not the
    /// packet path (4.9+ sources; a kernel with that code shows it as
    /// `insert` 0 on a busy table).
    pub insert_counts_ctnetlink_only: bool,
    /// The kernel's version says otherwise, but its counters behave like a
    /// 4.9+ kernel's (`insert` 0 across CPUs with entries in the table):
    /// newer conntrack code than the version says, or not the kernel the
    /// capture names.
    pub backported: bool,
}

impl CounterFacts {
    pub(crate) fn derive(obs: &Observation, kernel: Option<KernelVersion>) -> CounterFacts {
        let rates = obs.rates.as_ref().filter(|r| r.window.used_intervals > 0);
        // Without rates, the one sample of the snapshot gives totals.
        let totals = match obs.rates {
            Some(_) => None,
            None => obs.snapshot.stats.as_ref().map(|s| s.total()),
        };
        let readings: Vec<CounterReading> = Counter::ALL
            .into_iter()
            .map(|c| {
                let rate = obs.rates.as_ref().and_then(|r| r.get(c));
                let total = rate
                    .map(|r| r.since_boot)
                    .or_else(|| totals.as_ref().and_then(|t| t.get(c)));
                // A counter newer than the version that has counted
                // something was backported to this stable or vendor kernel
                // (chaintoolong with d7e7747ac5c2 on 5.10.y, say): it
                // counts. A zero is not taken as proof: a source that
                // fills absent counters with 0 must not make them real.
                let support = match c.support(kernel) {
                    Support::NotYet { .. } if total.is_some_and(|t| t > 0) => Support::Counted,
                    s => s,
                };
                let status = if !support.is_meaningful() {
                    CounterStatus::NotCountedByKernel { support }
                } else if let Some(r) = rate.filter(|_| rates.is_some()) {
                    match r.activity {
                        Activity::Live => CounterStatus::Live,
                        Activity::History => CounterStatus::History,
                        Activity::Quiet => CounterStatus::Quiet,
                        Activity::Unknown => CounterStatus::NoWindow,
                    }
                } else if total.is_some() {
                    CounterStatus::NoWindow
                } else {
                    CounterStatus::NotReported
                };
                let windowed = matches!(
                    status,
                    CounterStatus::Live | CounterStatus::History | CounterStatus::Quiet
                );
                CounterReading {
                    counter: c,
                    status,
                    per_sec: rate.filter(|_| windowed).map(|r| r.per_sec),
                    peak_per_sec: rate.filter(|_| windowed).map(|r| r.peak_per_sec),
                    delta: rate.filter(|_| windowed).map(|r| r.delta),
                    total: total.filter(|_| support.is_meaningful()),
                }
            })
            .collect();
        let epoch = match obs.snapshot.init_netns {
            Some(true) => CounterEpoch::Boot,
            Some(false) => CounterEpoch::NamespaceCreation,
            None => CounterEpoch::Unknown,
        };
        let insert_total = readings_total(&readings, Counter::Insert);
        let populated = obs.snapshot.count.unwrap_or(0) > 1000;
        let old = kernel.is_some_and(|k| !k.at_least(4, 9));
        let backported = old && populated && insert_total == Some(0);
        let clash_accounting = match kernel {
            Some(k) if k.at_least(5, 10) => ClashAccounting::ResolvedInClashResolve,
            Some(k) if k.at_least(4, 6) || backported => ClashAccounting::ResolvedInInsertFailed,
            Some(_) => ClashAccounting::InsertFailedOnly,
            None if readings_total(&readings, Counter::ClashResolve).is_some() => {
                ClashAccounting::ResolvedInClashResolve
            }
            None => ClashAccounting::Unknown,
        };
        CounterFacts {
            readings,
            epoch,
            window_secs: rates.map(|r| r.window.covered_secs),
            clash_accounting,
            insert_counts_ctnetlink_only: kernel.is_some_and(|k| k.at_least(4, 9)) || backported,
            backported,
        }
    }

    /// The reading of a counter.
    pub fn get(&self, c: Counter) -> &CounterReading {
        &self.readings[c.index()]
    }

    /// Whether a counter rose within the window.
    pub fn is_live(&self, c: Counter) -> bool {
        self.get(c).status == CounterStatus::Live
    }

    /// A counter's rate over the window (0 when not measured).
    pub fn rate(&self, c: Counter) -> f64 {
        self.get(c).per_sec.unwrap_or(0.0)
    }

    /// Whether the counter was measured over a window (live, history or
    /// quiet): its rate, 0 included, means something.
    pub fn measured(&self, c: Counter) -> bool {
        matches!(
            self.get(c).status,
            CounterStatus::Live | CounterStatus::History | CounterStatus::Quiet
        )
    }

    /// Whether there was a window at all.
    pub fn has_window(&self) -> bool {
        self.window_secs.is_some()
    }
}
