//! A tuning planner for conntrack: turns observations into an ordered,
//! explained, safe plan (sysctl, hashsize, timeouts, RPS, NOTRACK,
//! application advice) and renders it.
//!
//! The plan is data: every [`Action`] carries its evidence, expected
//! effect, risk, rollback and verification. Applying it is the caller's
//! decision; the [`render`] module writes sysctl.d and modprobe.d files, a
//! POSIX shell script, iptables/nftables NOTRACK rules, JSON, text and
//! Markdown.
//!
//! - [`observe`]: the planner's input ([`Observation`]); every part is
//!   optional. [`analyze_input`] fills it from `conntrack-analyze`'s rates,
//!   hotspot summary and diagnosis, and reads sysctl.d ([`sysctl_d`]),
//!   kube-proxy ([`kube`]) and module facts from a relocatable root.
//! - [`policy`]: the operator's [`Policy`].
//! - [`plan()`]: the rules; [`plan`](mod@plan) the output data model.
//! - [`sizing`], [`timeouts`], [`rps`]: era-aware table sizing (through
//!   `conntrack_analyze::capacity`), timeout floors and Little's law
//!   estimates, RPS masks.
//! - [`render`]: the renderers.
//!
//! ```
//! use conntrack_core::{HostSnapshot, KernelVersion};
//! use conntrack_tune::{plan, Observation, Policy, Priority};
//!
//! // A 5.4 host whose table is full: 65,536 of 65,536 entries, drops.
//! let mut snap = HostSnapshot::default();
//! snap.kernel_version = Some(KernelVersion::new(5, 4, 0));
//! snap.mem_total_bytes = Some(16 << 30);
//! snap.count = Some(65_536);
//! snap.max = Some(65_536);
//! snap.buckets = Some(16_384);
//! let obs = Observation { snapshot: Some(snap), ..Default::default() };
//! let p = plan(&obs, &Policy::default()).unwrap();
//! let raise = p.action("raise-max").unwrap();
//! assert!(raise.change.as_ref().unwrap().proposed.parse::<u64>().unwrap() >= 98_304);
//! // Buckets follow, rounded up to the allocation unit (512).
//! assert!(p.action("buckets").is_some());
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod analyze_input;
pub mod kube;
pub mod observe;
pub mod plan;
mod planner;
pub mod policy;
pub mod render;
pub mod rps;
pub mod sizing;
pub mod sysctl_d;
pub mod timeouts;

pub use observe::{Cause, Finding, FlowSummary, ModuleKind, Observation, Rates};
pub use plan::{Action, ActionKind, Plan, Priority};
pub use planner::plan;
pub use policy::{Policy, PolicyError, RiskTolerance};

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
