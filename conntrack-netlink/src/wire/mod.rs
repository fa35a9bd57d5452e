//! The wire layer: zero-copy decoding and encoding of ctnetlink messages.
//!
//! No sockets here: functions take the bytes of one or more netlink
//! messages as received (or build them into a `Vec<u8>`), so everything
//! runs the same on live data and on captured fixtures.
//!
//! - [`messages`] splits a buffer into netlink [`Message`]s (stopping for
//!   good at a bad header).
//! - [`flows`] yields one `Result<FlowView, DecodeError>` per conntrack
//!   message (dump item, get reply or event), recording DONE, ERROR and
//!   DUMP_INTR on the iterator; a malformed flow is one `Err` and the next
//!   message is decoded as usual.
//! - [`FlowView`] is one entry decoded in a single pass into fixed fields,
//!   without allocating; [`FlowView::to_owned`] gives a core
//!   [`Flow`](conntrack_core::Flow).
//! - [`decode_stats_cpu`] / [`decode_stats_global`] decode statistics
//!   replies.
//! - [`encode`] builds messages and attributes (requests, and
//!   kernel-layout flows for tests and benchmarks).
//!
//! Files, bottom up: `message.rs` (netlink header, nfgenmsg, message
//! constants), `nla.rs` (attribute walking), `attr.rs` (`CTA_*` numbers),
//! `encode.rs` (the encoder's primitives), then one file per nest with its
//! general decoder, its fast path (primitives in `fast.rs`) and its
//! encoder side by side: `tuple.rs`, `protoinfo.rs`, `counters.rs`,
//! `timestamp.rs`, `seqadj.rs`, `synproxy.rs`, `named.rs` (helper and
//! security context); `flow.rs` does the same for the top level of a
//! conntrack message, `stats.rs` for statistics replies and `event.rs` for
//! event messages.
//!
//! Decoding never panics on any input; every error is a small `Copy`
//! [`DecodeError`] naming the attribute path and byte offset, e.g.
//! `CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC at byte 84: length 3, expected 4`.
//!
//! ```
//! use conntrack_netlink::wire::{flows, FlowView};
//! # let buf: Vec<u8> = Vec::new();
//! // `buf` holds what one recv() on a ctnetlink socket returned.
//! let mut it = flows(&buf);
//! for item in it.by_ref() {
//!     match item {
//!         Ok(flow) => println!("{} {}", flow.orig().src, flow.state()),
//!         Err(e) => eprintln!("skipping a malformed flow: {e}"),
//!     }
//! }
//! if it.dump_interrupted() {
//!     eprintln!("the table changed during the dump");
//! }
//! ```

pub mod attr;
mod counters;
pub mod encode;
mod error;
mod event;
mod fast;
mod flow;
mod flows;
pub mod message;
mod named;
pub mod nla;
mod protoinfo;
mod seqadj;
pub mod stats;
mod synproxy;
mod timestamp;
mod tuple;

pub use error::{AttrPath, DecodeError, ErrorKind, Expected, MAX_DEPTH, WireError, WireErrorKind};
pub use event::{
    Event, EventKind, EventMessage, ExpectEvent, ExpectKind, OwnedEvent, decode_event,
    is_event_message,
};
pub use flow::FlowView;
pub use flows::{Flows, flows};
pub use message::{Message, Messages, NfGenMsg, messages};
pub use stats::{decode_stats_cpu, decode_stats_global};
