//! Shared types and parsers for Linux connection tracking (nf_conntrack).
//!
//! This crate talks to no kernel interface by itself: it holds the values
//! every other crate of the family exchanges ([`Flow`], [`Tuple`],
//! [`Status`], [`Stats`], [`HostSnapshot`], ...) with the kernel's
//! numbering, and pure parsers for the text the kernel and the `conntrack`
//! CLI produce, so that the same analysis runs on a live host and on files
//! captured from a ticket.
//!
//! Unknown kernel values are preserved, never rejected: a state, protocol or
//! status bit from a newer kernel round-trips unchanged.
//!
//! ```
//! use conntrack_core::{L4Proto, TcpState};
//! assert_eq!(L4Proto::TCP.to_string(), "tcp");
//! assert_eq!(TcpState(3), TcpState::ESTABLISHED);
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]
// docs.rs (`--cfg docsrs`, nightly) marks items behind a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod macros;

pub mod cli;
pub mod error;
pub mod flow;
pub mod host;
pub mod kernel;
pub mod nat_rules;
pub mod procstat;
pub mod proto;
pub mod state;
pub mod stats;
pub mod status;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod text;
pub mod timeout;
pub mod tuple;

pub use error::Location;
pub use flow::{
    Counters, DccpInfo, Flow, FlowKey, FlowLike, Labels, Nat, ProtoInfo, SctpInfo, SeqAdj,
    Synproxy, TcpFlags, TcpInfo, Timestamp, flow_key, flow_state, nat_of,
};
pub use host::{HostConfig, HostSnapshot, RxQueue, SlabCache};
pub use kernel::KernelVersion;
pub use proto::{L3Family, L4Proto};
pub use state::{DccpState, FlowState, SctpState, TcpState};
pub use stats::{Counter, CpuStats, Stats, Support};
pub use status::Status;
pub use timeout::{Timeout, TimeoutKey};
pub use tuple::{Endpoint, L4Tuple, Tuple};

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
