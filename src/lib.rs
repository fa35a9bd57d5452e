//! `conntrack-kit`: one dependency for the whole conntrack crate family.
//!
//! | module | crate | what it is for |
//! |---|---|---|
//! | [`core`] | `conntrack-core` | types, `/proc` and CLI-text parsers, host facts |
//! | [`netlink`] | `conntrack-netlink` | ctnetlink: dumps, stats, changes, events |
//! | [`analyze`] | `conntrack-analyze` | rates, hotspots, capacity, diagnosis |
//! | [`tune`] | `conntrack-tune` | the tuning planner and its renderers |
//!
//! ```
//! use conntrack_kit::core::TcpState;
//! assert_eq!(TcpState::ESTABLISHED.to_string(), "ESTABLISHED");
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub use conntrack_analyze as analyze;
pub use conntrack_core as core;
pub use conntrack_netlink as netlink;
pub use conntrack_tune as tune;
