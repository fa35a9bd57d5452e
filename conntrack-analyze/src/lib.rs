//! Analysis of conntrack data: rate deltas, hotspot ranking,
//! bucket-distribution estimation, capacity formulas, diagnosis with
//! evidence, and socket/process/container attribution.
//!
//! Works on `conntrack-core` values only, so the same analysis runs on a
//! live host, on a mirror, or on files captured from a ticket. Filled in by
//! issue 5.
#![deny(unsafe_code)]
