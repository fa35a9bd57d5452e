//! Host facts: one [`HostSnapshot`] of everything about a host that
//! conntrack sizing and diagnosis depend on.
//!
//! - [`HostFs`] reads `ROOT/proc` and `ROOT/sys` (the live host with
//!   `HostFs::new("/")`, a fixture tree or a container's root otherwise),
//!   one file per fact, each fact independently:
//!   [`HostFs::read_snapshot`] returns a [`HostReport`] with every fact
//!   it could read and a [`HostError`] for each one it could not.
//! - The parse functions ([`parse_slabinfo`], [`parse_cpu_list`],
//!   [`parse_rps_mask`], ...) are pure over `&str` and never panic; their
//!   [`ParseError`] gives line and column, [`HostError`] adds the file.
//!   Each `/proc` or `/sys` source has its own file (`meminfo.rs`,
//!   `slabinfo.rs`, `rps.rs`, ...); they are all re-exported here, and
//!   gathered in [`parse`] for glob imports.
//! - "File absent" ([`HostError::NotFound`]) is distinct from "file
//!   malformed" ([`HostError::Malformed`]).
//!
//! See [`reader`] for which network namespace each file reflects.
//!
//! ```
//! use conntrack_core::host::HostFs;
//! let report = HostFs::new("/").read_snapshot();
//! for problem in report.malformed() {
//!     eprintln!("bad host data: {problem}");
//! }
//! if let (Some(count), Some(max)) = (report.snapshot.count, report.snapshot.max) {
//!     println!("conntrack table {count}/{max}");
//! }
//! ```

pub mod config;
pub mod error;
pub mod global_guard;
mod iface;
pub mod kube_proxy;
pub mod max_guard;
pub mod modprobe_d;
pub mod module_kind;
pub mod reader;
pub mod sysctl_d;

mod cpu_list;
mod lex;
mod meminfo;
mod modules;
mod netns;
mod osrelease;
mod page_size;
mod rps;
mod slabinfo;
mod snapshot;
mod softirqs;
mod sysctl;
mod timeouts;

pub use config::HostConfig;
pub use cpu_list::{MAX_CPUS, parse_cpu_list, render_cpu_list};
pub use error::{HostError, ParseError, ParseErrorKind};
pub use global_guard::{GlobalSysctl, GlobalSysctlGuard, GlobalSysctlShare};
pub use iface::is_virtual_iface;
pub use kube_proxy::KubeProxy;
pub use lex::decode_utf8;
pub use max_guard::{ConntrackMaxGuard, MaxCoordination};
pub use meminfo::{MemInfo, parse_meminfo};
pub use module_kind::ModuleKind;
pub use modules::{CONNTRACK_HELPERS, NAT_HELPERS, is_helper_module, parse_modules};
pub use netns::{NET_NS_INIT_INO, init_netns_from, parse_ns_link};
pub use osrelease::parse_osrelease;
pub use page_size::{parse_auxv_page_size, parse_smaps_page_size};
pub use reader::{HostFs, HostReport, MAX_FILE_BYTES, NetnsView, Partial};
pub use rps::{RxQueue, parse_rps_mask, render_rps_mask};
pub use slabinfo::{SlabCache, is_conntrack_slab, parse_slabinfo};
pub use snapshot::HostSnapshot;
pub use softirqs::{NetRxSoftirqs, parse_softirqs};
pub use sysctl::{parse_single_value, parse_sysctl_bool, parse_sysctl_u32, parse_u32_value};
pub use sysctl_d::SysctlScan;
pub use timeouts::{TIMEOUT_PROTOCOLS, timeout_key, timeouts_from_sysctls};

/// Every pure parser of host files, their constants and result types, in
/// one module (without the reader): `use conntrack_core::host::parse::*;`.
/// The items are those of [`host`](self), where each is documented.
///
/// Every parser takes the file's text (or bytes) and nothing else: no I/O,
/// no global state, no panics on any input. Errors carry a 1-based line
/// and a 1-based **byte** column pointing at the start of the offending
/// token (or at the end of the line for a truncated row).
pub mod parse {
    pub use super::{
        CONNTRACK_HELPERS, MAX_CPUS, MemInfo, NAT_HELPERS, NET_NS_INIT_INO, NetRxSoftirqs,
        TIMEOUT_PROTOCOLS, decode_utf8, init_netns_from, is_conntrack_slab, is_helper_module,
        parse_auxv_page_size, parse_cpu_list, parse_meminfo, parse_modules, parse_ns_link,
        parse_osrelease, parse_rps_mask, parse_single_value, parse_slabinfo, parse_smaps_page_size,
        parse_softirqs, parse_sysctl_bool, parse_sysctl_u32, parse_u32_value, render_cpu_list,
        render_rps_mask, timeout_key, timeouts_from_sysctls,
    };
}
