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
#[non_exhaustive]
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

/// `with_FIELD(value)` builders for the optional facts: each sets
/// `FIELD` to `Some(value)`.
macro_rules! with_some {
    ($($(#[$doc:meta])* $with:ident => $field:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $with(mut self, value: $ty) -> Self {
                self.$field = Some(value);
                self
            }
        )*
    };
}

/// Builders: a snapshot is usually read ([`super::HostFs::read_snapshot`]);
/// tests and what-if analyses build one from [`HostSnapshot::default`]
/// with these (or set the public fields of a `mut` value).
///
/// ```
/// use conntrack_core::{HostSnapshot, KernelVersion};
/// let s = HostSnapshot::default()
///     .with_kernel_version(KernelVersion::new(6, 1, 0))
///     .with_count(95)
///     .with_max(100);
/// assert_eq!((s.count, s.max), (Some(95), Some(100)));
/// ```
impl HostSnapshot {
    with_some! {
        /// With the kernel release string (`uname -r`).
        with_kernel_release => kernel_release: String;
        /// With the kernel version.
        with_kernel_version => kernel_version: KernelVersion;
        /// With the page size in bytes.
        with_page_size => page_size: u64;
        /// With `MemTotal` in bytes.
        with_mem_total_bytes => mem_total_bytes: u64;
        /// With `nf_conntrack_count`.
        with_count => count: u32;
        /// With `nf_conntrack_max`.
        with_max => max: u32;
        /// With `nf_conntrack_buckets`.
        with_buckets => buckets: u32;
        /// With the `hashsize` module parameter.
        with_hashsize_param => hashsize_param: u32;
        /// With `nf_conntrack_acct`.
        with_acct => acct: bool;
        /// With `nf_conntrack_timestamp`.
        with_timestamp => timestamp: bool;
        /// With `nf_conntrack_events`.
        with_events => events: u32;
        /// With `/proc/net/stat/nf_conntrack`.
        with_stats => stats: Stats;
        /// With whether this is the initial network namespace.
        with_init_netns => init_netns: bool;
        /// With the network namespace's inode number.
        with_netns_inode => netns_inode: u64;
    }

    /// With the online CPU ids.
    pub fn with_cpus_online(mut self, cpus: Vec<u32>) -> Self {
        self.cpus_online = cpus;
        self
    }

    /// With the possible CPU ids.
    pub fn with_cpus_possible(mut self, cpus: Vec<u32>) -> Self {
        self.cpus_possible = cpus;
        self
    }

    /// With one timeout in seconds: `proto` (`tcp`) and `state`
    /// (`time_wait`, or `default` for a protocol's plain timeout).
    pub fn with_timeout(mut self, proto: &str, state: &str, secs: u32) -> Self {
        self.timeouts
            .entry(proto.to_owned())
            .or_default()
            .insert(state.to_owned(), secs);
        self
    }

    /// With one `nf_conntrack_*` sysctl (name without `net.netfilter.`).
    pub fn with_sysctl(mut self, name: &str, value: &str) -> Self {
        self.sysctls.insert(name.to_owned(), value.to_owned());
        self
    }

    /// With the rx queues' RPS settings.
    pub fn with_rx_queues(mut self, queues: Vec<RxQueue>) -> Self {
        self.rx_queues = queues;
        self
    }

    /// With the loaded helper modules.
    pub fn with_helpers(mut self, helpers: Vec<String>) -> Self {
        self.helpers = helpers;
        self
    }

    /// With the conntrack slab caches.
    pub fn with_slab(mut self, slab: Vec<SlabCache>) -> Self {
        self.slab = slab;
        self
    }
}
