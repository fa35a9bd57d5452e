//! CPU rows: how they are identified and matched between two samples,
//! and per-CPU rates.

use conntrack_core::{Counter, CpuStats};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// How a CPU row is identified: by the CPU id the source named, or by its
/// row position when the source names none (`/proc` rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// One CPU's rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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

/// CPU rows that appeared or disappeared between two samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

/// Pairs of CPU rows of two samples that describe the same CPU.
pub(super) struct Matching {
    pub(super) pairs: Vec<(CpuId, usize, usize)>,
    pub(super) appeared: Vec<CpuId>,
    pub(super) disappeared: Vec<CpuId>,
    pub(super) unmatched: bool,
}

pub(super) fn match_cpus(a: &[CpuStats], b: &[CpuStats]) -> Matching {
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
