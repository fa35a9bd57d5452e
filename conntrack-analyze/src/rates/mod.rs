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
//!     Stats::new(vec![c]).with_entries(entries)
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

// One file per concept: `series` (samples, captures), `wrap` (the u32
// wrap rule, and a counter followed across wraps), `cpu` (CPU rows and their matching), `window` (rates over a
// window), `spread` (per-CPU load spread and imbalance).
mod cpu;
mod series;
mod spread;
mod window;
mod wrap;

pub use cpu::{CpuChange, CpuId, CpuRates};
pub use series::{NotMonotonic, Sample, SeriesError, StatsSeries};
pub use spread::{BUSIEST_EXCESS, Imbalance, Spread, spread};
pub use window::{Activity, CounterRate, CounterReset, EntriesTrend, RateWindow, Rates};
pub use wrap::{Advance, WrapAccumulator};
