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

pub mod error;
pub mod max_guard;
pub mod parse;
pub mod reader;

pub use error::{HostError, ParseError, ParseErrorKind};
pub use parse::{
    CONNTRACK_HELPERS, MAX_CPUS, MemInfo, NAT_HELPERS, NET_NS_INIT_INO, NetRxSoftirqs,
    TIMEOUT_PROTOCOLS, decode_utf8, init_netns_from, is_conntrack_slab, is_helper_module,
    parse_auxv_page_size, parse_cpu_list, parse_meminfo, parse_modules, parse_ns_link,
    parse_osrelease, parse_rps_mask, parse_single_value, parse_slabinfo, parse_smaps_page_size,
    parse_softirqs, parse_sysctl_bool, parse_sysctl_u32, parse_u32_value, render_cpu_list,
    render_rps_mask, timeout_key, timeouts_from_sysctls,
};
pub use reader::{HostFs, HostReport, MAX_FILE_BYTES, Partial};

pub use max_guard::ConntrackMaxGuard;

use crate::kernel::KernelVersion;
use crate::stats::Stats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One slab cache line of `/proc/slabinfo` that holds conntrack entries:
/// `nf_conntrack`, or on 3.x kernels a per-namespace `nf_conntrack_<ptr>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlabCache {
    /// Cache name.
    pub name: String,
    /// Objects in use.
    pub active_objs: u64,
    /// Objects allocated.
    pub num_objs: u64,
    /// Object size in bytes.
    pub obj_size: u64,
}

/// The RPS setting of one receive queue
/// (`/sys/class/net/IFACE/queues/rx-N/rps_cpus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RxQueue {
    /// Interface name.
    pub iface: String,
    /// Queue index (`rx-N`).
    pub queue: u32,
    /// CPUs RPS steers to, as CPU ids (empty: RPS off).
    pub rps_cpus: Vec<u32>,
}

/// Everything this crate reads about a host's conntrack configuration, at
/// one moment, for one network namespace. Every field is optional or may be
/// empty: a fact that could not be read is absent, not guessed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostSnapshot {
    /// `uname -r` (`/proc/sys/kernel/osrelease`).
    pub kernel_release: Option<String>,
    /// The version parsed from the release.
    pub kernel_version: Option<KernelVersion>,
    /// Page size in bytes.
    pub page_size: Option<u64>,
    /// `MemTotal` in bytes.
    pub mem_total_bytes: Option<u64>,
    /// Possible CPU ids (`/sys/devices/system/cpu/possible`).
    pub cpus_possible: Vec<u32>,
    /// Online CPU ids (`/sys/devices/system/cpu/online`).
    pub cpus_online: Vec<u32>,
    /// `net.netfilter.nf_conntrack_count`: this namespace's entries (when
    /// that sysctl cannot be read for the namespace, the `entries` column
    /// of `/proc/net/stat/nf_conntrack`, the same counter).
    pub count: Option<u32>,
    /// `net.netfilter.nf_conntrack_max` (global; 0 means unlimited).
    pub max: Option<u32>,
    /// `net.netfilter.nf_conntrack_buckets`.
    pub buckets: Option<u32>,
    /// `/sys/module/nf_conntrack/parameters/hashsize` (root-only).
    pub hashsize_param: Option<u32>,
    /// Every `net.netfilter.nf_conntrack_*` sysctl, by name without the
    /// `net.netfilter.` prefix (e.g. `nf_conntrack_tcp_timeout_time_wait`).
    pub sysctls: BTreeMap<String, String>,
    /// Timeouts in seconds keyed by protocol, then state: `tcp` ->
    /// `time_wait`; a protocol's plain timeout (e.g.
    /// `nf_conntrack_udp_timeout`) is under the state `default`.
    pub timeouts: BTreeMap<String, BTreeMap<String, u32>>,
    /// `nf_conntrack_acct`.
    pub acct: Option<bool>,
    /// `nf_conntrack_timestamp`.
    pub timestamp: Option<bool>,
    /// `nf_conntrack_events` (0 off, 1 on, 2 auto since 5.17).
    pub events: Option<u32>,
    /// Conntrack slab caches from `/proc/slabinfo` (root-only).
    pub slab: Vec<SlabCache>,
    /// RPS settings of every rx queue of every interface.
    pub rx_queues: Vec<RxQueue>,
    /// `NET_RX` softirq counts per CPU, in `/proc/softirqs` column order.
    pub net_rx_softirqs: Vec<u64>,
    /// The CPU id of each [`HostSnapshot::net_rx_softirqs`] column (from
    /// the `/proc/softirqs` header).
    #[serde(default)]
    pub net_rx_softirq_cpus: Vec<u32>,
    /// Loaded conntrack helper modules (`nf_conntrack_ftp`, ...).
    pub helpers: Vec<String>,
    /// `/proc/net/stat/nf_conntrack`, when present.
    pub stats: Option<Stats>,
    /// Whether this snapshot was taken in the initial network namespace
    /// (where `nf_conntrack_max` and buckets are writable), when known; see
    /// [`init_netns_from`] for how it is decided.
    pub init_netns: Option<bool>,
    /// The inode number of the snapshot's network namespace (the
    /// `net:[N]` of `/proc/self/ns/net`), which identifies it.
    #[serde(default)]
    pub netns_inode: Option<u64>,
}
