//! Analysis of conntrack data: rates over statistics snapshots, hotspot
//! ranking over flows, bucket-distribution estimation, capacity formulas,
//! diagnosis with evidence, side-by-side comparison, and
//! socket/process/container attribution.
//!
//! Works on `conntrack-core` values only (no netlink dependency), so the
//! same analysis runs on a live host, on a mirror, or on files captured
//! from a ticket. Aggregation is generic over [`conntrack_core::FlowLike`]:
//! owned flows parsed from text and borrowed views from a dump alike.
//!
//! The judgment is one model: an [`Observation`] (what was seen) is
//! turned into [`Facts`] (everything derived from it, once), which
//! [`diagnose()`] turns into findings with evidence, ranked causes and
//! remedies. `conntrack-tune` plans from the same facts and findings.
//!
//! ```
//! use conntrack_analyze::{diagnose, EvidenceKey, Facts, FindingId, Observation, StatsSeries};
//! use conntrack_core::{Counter, CpuStats, HostSnapshot, KernelVersion, Stats};
//! use std::time::Duration;
//!
//! // insert_failed == drop on one CPU, table at 4%: confirm-time failures.
//! let snap = |n: u32| {
//!     let mut c = CpuStats::for_cpu(0);
//!     c.set(Counter::InsertFailed, n);
//!     c.set(Counter::Drop, n);
//!     c.set(Counter::EarlyDrop, 0);
//!     c.set(Counter::ClashResolve, 0);
//!     c.set(Counter::ChainTooLong, 0);
//!     Stats::new(vec![c]).with_entries(10_000)
//! };
//! let mut series = StatsSeries::new();
//! series.push(Duration::from_secs(0), snap(100)).unwrap();
//! series.push(Duration::from_secs(10), snap(150)).unwrap();
//! let host = HostSnapshot::default()
//!     .with_kernel_version(KernelVersion::new(6, 1, 0))
//!     .with_count(10_000)
//!     .with_max(262_144);
//! let obs = Observation::new(host).with_rates(series.rates());
//! let findings = diagnose(&Facts::derive(&obs));
//! assert_eq!(findings[0].id, FindingId::ConfirmFailures);
//! assert_eq!(findings[0].value_of(EvidenceKey::CounterRate, "insert_failed"), Some(5.0));
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod answers;
pub mod attribution;
pub mod buckets;
pub mod capacity;
pub mod capture;
pub mod cause;
pub mod compare;
pub mod diagnose;
pub mod drops;
pub mod evidence;
pub mod facts;
pub mod finding;
pub mod hotspots;
pub mod observation;
pub mod rates;
pub mod remedy;
#[cfg(feature = "schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
pub mod schema;
pub mod timeouts;
pub mod topk;

pub use cause::{Cause, Likelihood, RankedCause};
pub use diagnose::{Thresholds, diagnose, diagnose_with};
pub use evidence::{Evidence, EvidenceKey};
pub use facts::{DerivedFacts, Facts};
pub use finding::{Finding, FindingId, Severity};
pub use hotspots::{HotspotConfig, HotspotSummary, Hotspots};
pub use observation::{Observation, Unread};
pub use rates::{RateWindow, Rates, StatsSeries};
pub use remedy::Remedy;

/// The README's example, compiled and run as a doc test.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
