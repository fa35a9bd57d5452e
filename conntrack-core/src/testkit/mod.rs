//! Scaffolding for live tests (feature `testkit`, off by default).
//!
//! Meant for the tests of this crate family, and for users who want their
//! own live tests to follow the same skip policy: a live test that cannot
//! run here (not root, a tool or kernel file missing) prints why and
//! passes, unless [`REQUIRE_LIVE_ENV`]`=1` (CI), which turns every such skip
//! into a failure. Enable it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! conntrack-core = { version = "0.1", features = ["testkit"] }
//! ```
//!
//! It adds no dependency: everything here is `std` plus the `ip` tool
//! (iproute2) for [`TestNetns`].
//!
//! Besides the live-test policy ([`live`], [`Need`]) and guards
//! ([`TestNetns`], [`Reaped`]), it has the builders the family's tests
//! share instead of writing their own: addresses from literals ([`ip`]),
//! tuples ([`tcp`], [`udp`], [`icmp_echo`]), flows whose reply tuple is
//! derived as the kernel does ([`flow`], via [`crate::Tuple::inverse`]),
//! and fixture files read with a useful panic message ([`read_fixture`]).
//!
//! ```no_run
//! use conntrack_core::testkit::{Need, TestNetns, live};
//!
//! #[test]
//! fn conntrack_lists_nothing_in_a_fresh_namespace() {
//!     if !live(
//!         "conntrack_lists_nothing_in_a_fresh_namespace",
//!         &[Need::Root, Need::Tool("ip"), Need::Tool("conntrack")],
//!     ) {
//!         return;
//!     }
//!     let ns = TestNetns::new("list");
//!     let out = ns.exec(&["conntrack", "-L"]);
//!     assert!(out.stdout.is_empty());
//! }
//! ```

mod fixtures;
mod flows;
mod netns;
mod process;
mod skip;

pub use fixtures::read_fixture;
pub use flows::{flow, icmp_echo, ip, ports, tcp, tcp_state, tuple, udp};
pub use netns::{TestNetns, remove_orphans};
pub use process::Reaped;
pub use skip::{Need, REQUIRE_LIVE_ENV, find_in_path, is_root, live, live_required};
