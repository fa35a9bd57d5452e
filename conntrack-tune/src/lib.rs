//! A tuning planner for conntrack: turns the model of a host
//! (`conntrack-analyze`'s [`Facts`](conntrack_analyze::Facts) and
//! findings) into an ordered, explained, safe plan, and renders it and the
//! whole report.
//!
//! The plan is data: every [`Action`] carries its evidence, expected
//! effect, risk, rollback and verification, and names the finding remedy
//! it applies; what a finding recommends and the plan does not do is
//! declined with the reason. Applying it is the caller's decision; the
//! [`render`] module writes sysctl.d and modprobe.d files, a POSIX shell
//! script, iptables/nftables NOTRACK rules, JSON, text and Markdown.
//!
//! - [`plan()`]: the coordinator over the rules (one file per concern:
//!   sizing, RPS, confirm-time failures, timeouts, workload, NOTRACK,
//!   helpers, kube-proxy, persistence).
//! - [`plan`](mod@plan): the output data model; [`policy`]: the operator's
//!   [`Policy`].
//! - [`folk`]: folk recipes judged for the host.
//! - [`report`]: the whole report (facts, findings, answers, plan, folk
//!   recipes) as one value, with its exit code and JSON schema.
//! - [`render`]: the renderers.
//!
//! ```
//! use conntrack_analyze::{diagnose, Facts, Observation};
//! use conntrack_core::{HostSnapshot, KernelVersion};
//! use conntrack_tune::{plan, Policy, Priority};
//! let obs = Observation::new(HostSnapshot::default()
//!     .with_kernel_version(KernelVersion::new(5, 4, 0))
//!     .with_mem_total_bytes(16 << 30)
//!     .with_count(65_536)
//!     .with_max(65_536)
//!     .with_buckets(16_384));
//! let facts = Facts::derive(&obs);
//! let p = plan(&facts, &diagnose(&facts), &Policy::default()).unwrap();
//! let raise = p.action("raise-max").unwrap();
//! assert_eq!(raise.priority, Priority::P0);
//! // Buckets follow, rounded up to the allocation unit (512).
//! assert!(p.action("buckets").is_some());
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod folk;
pub mod plan;
mod planner;
pub mod policy;
pub mod render;
pub mod report;
pub mod rps;
mod rules;
#[cfg(feature = "schema")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema")))]
pub mod schema;

pub use plan::{Action, ActionKind, Plan, Priority};
pub use planner::plan;
pub use policy::{Policy, PolicyError, RiskTolerance};
pub use report::Report;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
