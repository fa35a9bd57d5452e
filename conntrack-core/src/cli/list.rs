//! `conntrack -L` text: one line per conntrack entry, in the default form
//! and the `-o extended`, `-o id`, `-o ktimestamp` and `-o labels` forms
//! (conntrack-tools 1.4, libnetfilter_conntrack `snprintf_default.c`).
//!
//! Turning a captured `conntrack -L` file into [`Flow`](crate::Flow)s is
//! how a ticket is analysed offline: [`parse_lines`] streams the flows of a
//! whole capture, one `Result` per line, so one damaged line costs one
//! flow, not the file.
//! [`render_line`] prints a flow exactly as the CLI does.
//!
//! ```
//! use conntrack_core::cli::list::{parse_line, render_line, ListFormat};
//! use conntrack_core::{Status, TcpState};
//!
//! let line = "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 \
//!             dport=443 src=10.0.0.2 dst=10.0.0.1 sport=443 dport=40000 [ASSURED] \
//!             mark=0 use=1";
//! let flow = parse_line(line)?;
//! assert_eq!(flow.tcp_state(), Some(TcpState::ESTABLISHED));
//! assert!(flow.status.contains(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED));
//! assert_eq!(flow.timeout, Some(431999));
//! assert_eq!(render_line(&flow, ListFormat::DEFAULT), line);
//! # Ok::<(), conntrack_core::cli::list::ListError>(())
//! ```
//!
//! # The line
//!
//! ```text
//! [ipv4     2 ]tcp      6 TIMEOUT [STATE ]ORIG [zone-orig=Z ][packets=P bytes=B ][[UNREPLIED] ]
//!     REPLY [zone-reply=Z ][packets=P bytes=B ][[ASSURED]|[OFFLOAD]|[HW_OFFLOAD] ]
//!     [mark=M ][secmark=S ][secctx=CTX ][zone=Z ][delta-time=D ][[start=CTIME] ][[stop=CTIME] ]
//!     [helper=NAME ][use=U ][id=ID ][labels=NAME,...]
//! ```
//!
//! A tuple is `src=A dst=A` followed by `sport= dport=` (TCP, UDP,
//! UDP-Lite, SCTP, DCCP), `srckey=0x.. dstkey=0x..` (GRE), `type= code= id=`
//! (ICMP, ICMPv6) or nothing (other protocols, named `unknown`).
//!
//! # What is inferred, and what cannot be
//!
//! - Status: listed entries are in the hash table, so
//!   [`CONFIRMED`](crate::Status::CONFIRMED) is set;
//!   [`SEEN_REPLY`](crate::Status::SEEN_REPLY) unless `[UNREPLIED]` is
//!   printed; `[ASSURED]` sets [`ASSURED`](crate::Status::ASSURED);
//!   `[OFFLOAD]` sets [`OFFLOAD`](crate::Status::OFFLOAD) and `[HW_OFFLOAD]`
//!   sets `OFFLOAD | HW_OFFLOAD`. The CLI prints only one of the three
//!   flags, so an offloaded flow's `ASSURED` bit is unknown and left clear.
//!   NAT bits are not printed; [`Flow::nat`](crate::Flow::nat) sees
//!   translations in the tuple asymmetry.
//! - Protocol state: TCP, SCTP and DCCP flows get
//!   [`ProtoInfo`](crate::ProtoInfo) with the state only (window scales and
//!   flags are not printed). The CLI prints `NONE` for states it does not
//!   know.
//! - Timestamps: `[start=...]`/`[stop=...]` (`-o ktimestamp`) are `ctime`
//!   text in the capturing host's time zone with second precision; they are
//!   read as UTC. `delta-time=` (printed whenever the kernel has a start
//!   time) is the age at capture; with
//!   [`ListParser::with_capture_time`] it becomes the start time,
//!   otherwise it is dropped.
//! - Labels: the CLI prints label *names* from `connlabel.conf`, never
//!   numbers. Without a [`LabelMap`], names that are decimal numbers are
//!   read as bits and any other name is an [`ListErrorKind::UnknownLabel`]
//!   error (silently dropping a label would make the flow look unlabelled).
//!   A bare `labels` (set bits, none of them named) gives empty labels.
//! - Not printed at all: the master tuple, sequence adjustment, SYN proxy,
//!   TCP window scale and flags.
//!
//! Lines are split on runs of spaces and tabs; every field is checked, and
//! an unknown `key=value` field is an error ([`ListErrorKind::UnknownKey`])
//! rather than something silently skipped.

mod ctime;
mod labels;
mod parse;
mod render;

pub use labels::LabelMap;
pub use parse::{ListLines, ListParser, parse_line, parse_lines};
pub use render::{ListFormat, render_line, write_line};

use crate::error::Location;

/// What is wrong with a `conntrack -L` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ListErrorKind {
    /// The line ends where more was expected (a truncated capture).
    #[error("line ends where `{expected}` was expected")]
    Truncated {
        /// What was expected.
        expected: &'static str,
    },
    /// A different token was expected here.
    #[error("expected `{expected}`")]
    Expected {
        /// What was expected.
        expected: &'static str,
    },
    /// A token that fits nowhere in a line (not `key=value`, not a flag).
    #[error("unexpected token")]
    UnexpectedToken,
    /// A number that is not decimal (or hex where the CLI prints hex), or
    /// does not fit the field.
    #[error("bad number in `{field}`")]
    BadNumber {
        /// The field.
        field: &'static str,
    },
    /// An address that is not IPv4 or IPv6 text.
    #[error("bad address in `{field}`")]
    BadAddress {
        /// The field.
        field: &'static str,
    },
    /// An address of the wrong family: not that of the line's layer 3
    /// protocol, or of the other addresses.
    #[error("address family does not match the flow's")]
    FamilyMismatch,
    /// A protocol name the CLI would not print for that protocol number.
    #[error("protocol name does not match the protocol number")]
    ProtoMismatch,
    /// A TCP, SCTP or DCCP state name this crate does not know.
    #[error("unknown protocol state")]
    UnknownState,
    /// A state word for a protocol that has no states.
    #[error("protocol state for a protocol without states")]
    UnexpectedState,
    /// The original tuple is not followed by the reply tuple.
    #[error("the reply tuple is missing")]
    MissingReplyTuple,
    /// A `key=value` field this parser does not know.
    #[error("unknown field")]
    UnknownKey,
    /// A field that appears twice.
    #[error("`{field}` appears twice")]
    Duplicate {
        /// The field.
        field: &'static str,
    },
    /// A `[start=...]`/`[stop=...]` that is not `ctime(3)` text of a date
    /// from 1970 on.
    #[error("bad timestamp")]
    BadTimestamp,
    /// A label name that is neither in the [`LabelMap`] nor a bit number.
    #[error("unknown connection label name")]
    UnknownLabel,
}

/// A `conntrack -L` line that could not be read: where (1-based line and
/// byte column of the offending token or value) and what.
///
/// ```
/// use conntrack_core::cli::list::{parse_line, ListErrorKind};
/// let err = parse_line("udp 17 30 src=10.0.0.1 dst=10.0.0.300 sport=1 dport=2").unwrap_err();
/// assert_eq!(err.kind, ListErrorKind::BadAddress { field: "dst" });
/// assert_eq!((err.location.line, err.location.column), (1, 28));
/// assert_eq!(err.to_string(), "line 1, column 28: bad address in `dst`");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct ListError {
    /// Where: line (1 for [`parse_line`]) and byte column, both 1-based.
    pub location: Location,
    /// What.
    pub kind: ListErrorKind,
}
