//! ctnetlink for Linux connection tracking: sockets in any network
//! namespace, a zero-copy streaming dump decoder, statistics,
//! get/create/update/delete/flush, and events with loss recovery.
//!
//! Layers, bottom up (as in rust-netlink): [`wire`] decodes and encodes
//! messages without sockets (zero-copy, one file per nest); [`socket`]
//! moves datagrams on a `netlink-sys` socket (in any [`netns`]);
//! [`request`] builds requests with the wire encoder; [`dump`] and [`ops`]
//! run the conversations ([`filter`]s applied by the kernel and again in
//! user space); [`event`] streams the multicast events and [`mirror`]
//! keeps a table current with them; [`fill`] creates synthetic flows in
//! bulk; [`bulk`] deletes or updates every entry matching any of many
//! filters in one streaming pass.
//!
//! ```no_run
//! # fn main() -> Result<(), conntrack_netlink::Error> {
//! use conntrack_core::L3Family;
//! use conntrack_netlink::{Conntrack, DumpRequest, Netns};
//!
//! let mut ct = Conntrack::open_in(&Netns::named("blue"))?;
//! let summary = ct.for_each(&DumpRequest::table(L3Family::UNSPEC), |flow| {
//!     println!("{:?}", flow.to_owned());
//! })?;
//! println!("{} flows in {} bytes", summary.flows, summary.bytes);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod bulk;
pub mod dump;
pub mod error;
pub mod event;
pub mod fill;
pub mod filter;
#[cfg(feature = "lab")]
#[cfg_attr(docsrs, doc(cfg(feature = "lab")))]
pub mod lab;
pub mod mirror;
pub mod netns;
pub mod ops;
pub mod request;
pub mod socket;
mod sys;
pub mod trace;
pub mod wire;

pub use dump::{DumpPolicy, DumpSummary};
pub use error::{Error, Op, Result};
pub use filter::{Filter, TupleFilter};
pub use netns::Netns;
pub use ops::{Conntrack, DumpKind, DumpRequest};
pub use request::Update;
pub use socket::{Socket, SocketConfig, Transport};

// The test builders shared with the integration tests (tests/support)
// name this crate `conntrack_netlink`, as an integration test does.
#[cfg(test)]
extern crate self as conntrack_netlink;
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod support;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
