//! `conntrack-kit`: one dependency for the whole conntrack crate family.
//!
//! | module | crate | feature | what it is for |
//! |---|---|---|---|
//! | [`ct_core`] | `conntrack-core` | always | types, `/proc` and CLI-text parsers, host facts |
//! | [`netlink`] | `conntrack-netlink` | `netlink` | ctnetlink: dumps, stats, changes, events |
//! | [`analyze`] | `conntrack-analyze` | `analyze` | rates, hotspots, capacity, diagnosis |
//! | [`tune`] | `conntrack-tune` | `tune` (turns on `analyze`) | the tuning planner and its renderers |
//! | [`exporter`] | (this crate) | `exporter` (netlink, analyze) | Prometheus families of every namespace, both exposition formats |
//! | [`live`] | (this crate) | `netlink` and `analyze` | everything doctor reads from a live table, as one `Observation` |
//! | `traced` | (this crate) | `trace` and `analyze` | the drop tracer over a window, summarised as analysis evidence (`doctor --trace`) |
//!
//! Every feature is on by default. A tool that only reads captured files
//! can leave out the netlink socket code:
//!
//! ```toml
//! [dependencies]
//! conntrack-kit = { version = "0.1", default-features = false, features = ["tune"] }
//! ```
//!
//! The shared types live in [`ct_core`], not in a module named `core`: a
//! `use conntrack_kit::core;` would shadow the language's `core` crate in
//! the importing module (`core::mem::swap` would then resolve into
//! conntrack-core and fail to compile).
//!
//! ```
//! use conntrack_kit::ct_core::{self, TcpState};
//! assert_eq!(TcpState::ESTABLISHED.to_string(), "ESTABLISHED");
//! assert_eq!(ct_core::L4Proto::TCP.to_string(), "tcp");
//! // The language's `core` is still the language's.
//! let (mut a, mut b) = (TcpState::SYN_SENT, TcpState::ESTABLISHED);
//! core::mem::swap(&mut a, &mut b);
//! assert_eq!(a, TcpState::ESTABLISHED);
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]
// docs.rs (`--cfg docsrs`, nightly) marks the modules behind a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use conntrack_core as ct_core;

#[cfg(feature = "netlink")]
#[cfg_attr(docsrs, doc(cfg(feature = "netlink")))]
pub use conntrack_netlink as netlink;

#[cfg(feature = "analyze")]
#[cfg_attr(docsrs, doc(cfg(feature = "analyze")))]
pub use conntrack_analyze as analyze;

#[cfg(feature = "tune")]
#[cfg_attr(docsrs, doc(cfg(feature = "tune")))]
pub use conntrack_tune as tune;

#[cfg(feature = "exporter")]
#[cfg_attr(docsrs, doc(cfg(feature = "exporter")))]
pub mod exporter;

#[cfg(all(feature = "netlink", feature = "analyze"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "netlink", feature = "analyze"))))]
pub mod live;

#[cfg(all(feature = "trace", feature = "analyze"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "trace", feature = "analyze"))))]
pub mod traced;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(all(doctest, feature = "netlink", feature = "analyze", feature = "tune"))]
pub struct ReadmeDoctests;
