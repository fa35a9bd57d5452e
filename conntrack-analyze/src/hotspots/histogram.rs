//! The remaining-timeout histogram kept per (protocol, state).

use serde::{Deserialize, Serialize};

/// Remaining-timeout histogram: exact one-second bins below 128 s, then
/// 64 bins per power of two (at most 1.6% relative bin width: 4096 s
/// around the 5-day ESTABLISHED timeout), up to `u32::MAX` seconds.
/// Memory is fixed (1728 bins); it serialises sparsely, as `[bin start in
/// seconds, flows]` pairs in ascending order with empty bins left out.
///
/// ```
/// use conntrack_analyze::hotspots::RemainingHistogram;
/// let mut h = RemainingHistogram::default();
/// h.add(3);
/// h.add(100);
/// h.add(431_999);
/// assert_eq!(h.total(), 3);
/// assert_eq!(h.count_below(4.0), 1.0);
/// assert_eq!(h.bin_range(RemainingHistogram::bin(100)), (100, 101));
/// assert_eq!(h.bin_range(RemainingHistogram::bin(431_999)), (430_080, 434_176));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(into = "SparseBins", from = "SparseBins")]
pub struct RemainingHistogram {
    counts: Vec<u64>,
}

/// The serialised form of a [`RemainingHistogram`]: its non-empty bins,
/// in ascending order.
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
struct SparseBins(Vec<HistogramBin>);

/// One non-empty bin of a remaining-timeout histogram: `[bin start in
/// seconds, flows]`.
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
struct HistogramBin(
    /// The bin's start in seconds: the least remaining timeout it counts
    /// (bins are one second wide below 128 s, then 64 per power of two).
    #[cfg_attr(feature = "schema", schemars(range(max = u32::MAX)))]
    u64,
    /// Flows in the bin (never 0: empty bins are left out).
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    u64,
);

impl From<RemainingHistogram> for SparseBins {
    fn from(h: RemainingHistogram) -> Self {
        SparseBins(h.bins().map(|(lo, _, c)| HistogramBin(lo, c)).collect())
    }
}

impl From<SparseBins> for RemainingHistogram {
    fn from(b: SparseBins) -> Self {
        let mut h = RemainingHistogram::default();
        for HistogramBin(lo, c) in b.0 {
            if let Ok(v) = u32::try_from(lo)
                && let Some(x) = h.counts.get_mut(Self::bin(v))
            {
                *x = x.saturating_add(c);
            }
        }
        h
    }
}

impl Default for RemainingHistogram {
    fn default() -> Self {
        RemainingHistogram {
            counts: vec![0; Self::BINS],
        }
    }
}

const SUB_BITS: u32 = 6;
const EXACT: u32 = 1 << (SUB_BITS + 1);

impl RemainingHistogram {
    /// Number of bins.
    pub const BINS: usize = EXACT as usize + (31 - SUB_BITS as usize) * (1 << SUB_BITS);

    /// The bin of a value in seconds.
    pub fn bin(v: u32) -> usize {
        if v < EXACT {
            return v as usize;
        }
        let e = 31 - v.leading_zeros(); // SUB_BITS + 1 ..= 31
        let sub = (v >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1);
        (EXACT + (e - SUB_BITS - 1) * (1 << SUB_BITS) + sub) as usize
    }

    /// The half-open range `[lo, hi)` of seconds a bin covers (`hi` is a
    /// u64 so that the last bin's end is representable).
    pub fn bin_range(&self, i: usize) -> (u64, u64) {
        Self::range_of(i)
    }

    fn range_of(i: usize) -> (u64, u64) {
        let i = i as u64;
        if i < EXACT as u64 {
            return (i, i + 1);
        }
        let j = i - EXACT as u64;
        let e = j / (1 << SUB_BITS) + SUB_BITS as u64 + 1;
        let sub = j % (1 << SUB_BITS);
        let w = 1u64 << (e - SUB_BITS as u64);
        let lo = (1u64 << e) + sub * w;
        (lo, lo + w)
    }

    /// Counts one entry with `v` seconds remaining.
    #[inline]
    pub fn add(&mut self, v: u32) {
        if let Some(c) = self.counts.get_mut(Self::bin(v)) {
            *c += 1;
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &RemainingHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Entries counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Non-empty bins as `(lo, hi, count)`.
    pub fn bins(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &c)| {
                let (lo, hi) = Self::range_of(i);
                (lo, hi, c)
            })
    }

    /// Entries with less than `secs` remaining, a value `v` taken to cover
    /// `[v, v + 1)` and bins interpolated linearly.
    pub fn count_below(&self, secs: f64) -> f64 {
        if secs.is_nan() || secs <= 0.0 {
            return 0.0;
        }
        let mut acc = 0.0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let (lo, hi) = Self::range_of(i);
            let (lo, hi) = (lo as f64, hi as f64);
            if hi <= secs {
                acc += c as f64;
            } else if lo < secs {
                acc += c as f64 * (secs - lo) / (hi - lo);
            }
        }
        acc
    }

    /// Approximate mean remaining seconds (bin midpoints); `None` when
    /// empty.
    pub fn mean(&self) -> Option<f64> {
        let t = self.total();
        if t == 0 {
            return None;
        }
        let s: f64 = self
            .bins()
            .map(|(lo, hi, c)| c as f64 * (lo as f64 + hi as f64) / 2.0)
            .sum();
        Some(s / t as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_serialises_sparsely_and_round_trips() {
        let mut h = RemainingHistogram::default();
        for v in [0, 5, 5, 300, 431_999, u32::MAX] {
            h.add(v);
        }
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(j, "[[0,1],[5,2],[300,1],[430080,1],[4261412864,1]]"); // 2^31 + 63 x 2^25
        let back: RemainingHistogram = serde_json::from_str(&j).unwrap();
        assert_eq!(back, h);
        // Hostile input: bins beyond u32 are dropped, counts saturate.
        let odd: RemainingHistogram =
            serde_json::from_str("[[99999999999,5],[7,18446744073709551615],[7,9]]").unwrap();
        assert_eq!(odd.total(), u64::MAX);
    }

    #[test]
    fn histogram_bins_are_contiguous_and_cover_u32() {
        let mut prev_hi = 0;
        for i in 0..RemainingHistogram::BINS {
            let (lo, hi) = RemainingHistogram::range_of(i);
            assert_eq!(lo, prev_hi, "bin {i}");
            assert!(hi > lo);
            prev_hi = hi;
            assert_eq!(RemainingHistogram::bin(lo as u32), i);
            assert_eq!(RemainingHistogram::bin((hi - 1) as u32), i);
        }
        assert_eq!(prev_hi, 1u64 << 32);
        assert_eq!(
            RemainingHistogram::bin(u32::MAX),
            RemainingHistogram::BINS - 1
        );
    }
}
