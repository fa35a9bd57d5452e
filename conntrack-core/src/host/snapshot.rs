//! [`HostSnapshot`]: every host fact at one moment, for one network
//! namespace.

use super::{RxQueue, SlabCache};
use crate::kernel::KernelVersion;
use crate::stats::Stats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// [`super::init_netns_from`] for how it is decided.
    pub init_netns: Option<bool>,
    /// The inode number of the snapshot's network namespace (the
    /// `net:[N]` of `/proc/self/ns/net`), which identifies it.
    #[serde(default)]
    pub netns_inode: Option<u64>,
}
