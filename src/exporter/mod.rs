//! Prometheus metrics of conntrack, for one namespace or every namespace
//! of a host: what the `exporter` example serves, as a library an agent
//! can embed behind its own HTTP server.
//!
//! - [`collect`]: an [`Exporter`] reads each namespace's counters and
//!   count (ctnetlink, or `/proc` without CAP_NET_ADMIN), dumps the
//!   busiest for hotspots, keeps `up`, ages and errors by kind honest.
//! - [`netns`]: every network namespace of a host and its name (`ip
//!   netns` name, Kubernetes pod, Docker or containerd container).
//! - [`encode`]: families and both exposition formats, chosen by the
//!   scraper's `Accept` header.
//!
//! It lives in the facade because it needs every crate: ctnetlink
//! (netlink), host files (core), hotspots, rates and the diagnosis
//! (analyze); analyze must not depend on netlink.
//!
//! ```no_run
//! use conntrack_kit::exporter::{Config, Exporter, encode::{Format, encode}};
//! let exporter = Exporter::new(Config::default()); // this host's table
//! exporter.collect(); // on a background thread, every few seconds
//! let body = encode(&exporter.families(), Format::negotiate(Some("text/plain")));
//! assert!(body.contains("conntrack_up{netns=\"host\"}"));
//! ```
//!
//! # Families
//!
//! Every family of one namespace has the label `netns` (`host`, an `ip
//! netns` name, `pod/NS/NAME`, `container/NAME`, `netns/INODE`, or `other`
//! for the namespaces past `--max-netns`); `conntrack_netns_info` maps it
//! to kind, inode, runtime, container and pod.
//!
//! | family | type | labels | meaning |
//! |---|---|---|---|
//! | `conntrack_up` | gauge | netns | 1 when the last pass read the namespace, else 0 |
//! | `conntrack_collection_age_seconds` | gauge | netns | since the last successful read |
//! | `conntrack_entries` | gauge | netns | entries in the namespace's table |
//! | `conntrack_max_entries` | gauge | | `nf_conntrack_max` (absent when 0) |
//! | `conntrack_max_unlimited` | gauge | | 1 when `nf_conntrack_max` is 0 |
//! | `conntrack_buckets` | gauge | | hash buckets (global) |
//! | `conntrack_memory_estimate_bytes` | gauge | | entries of the collected namespaces and buckets |
//! | `conntrack_memory_estimate_at_max_bytes` | gauge | | the same at `nf_conntrack_max` entries |
//! | `conntrack_stat_<counter>_total` | counter | netns, cpu | per-CPU counters (`cpu` only with per-CPU series; `netns="other"` then has `cpu="all"`), u32 wraps accumulated; counters the running kernel does not count are left out |
//! | `conntrack_finding` | gauge | netns, id, severity | 1 per current finding |
//! | `conntrack_hotspot_entries` | gauge | netns, key, rank, value | certified lower bound of a heavy value |
//! | `conntrack_hotspot_error_bound` | gauge | netns, key | top-K error bound |
//! | `conntrack_hotspot_age_seconds` | gauge | netns | age of the dump behind the hotspots |
//! | `conntrack_netns_info` | info | netns, kind, inode, runtime, container, pod, pod_namespace | |
//! | `conntrack_netns_discovered`, `_other_members`, `_unreadable_pids` | gauge | | `--all-netns` only |
//! | `conntrack_exporter_errors_total` | counter | kind | failed reads by [`ErrorKind`] |
//! | `conntrack_exporter_feature` | gauge | feature | `ctnetlink`, `hotspots`, `trace` (with traced drops): 1 when working |
//! | `conntrack_drops_traced_total` | counter | netns, reason | feature `trace`, when given `drops::TracedDrops`: conntrack's drops by reason, from the eBPF drop tracer |
//! | `conntrack_exporter_{passes,dumps,stat_resets}_total` | counter | | |
//! | `conntrack_exporter_{pass,dump}_duration_seconds` | gauge | | |
//!
//! # node_exporter compatibility
//!
//! The families of node_exporter's `conntrack` collector are exported with
//! its names, types (all gauges), help texts and no labels, for the
//! primary namespace (the target; under `--all-netns` the host's, which is
//! what node_exporter reads), so dashboards and node-mixin alerts keep
//! working:
//!
//! | node_exporter family | here | difference |
//! |---|---|---|
//! | `node_nf_conntrack_entries` | `conntrack_entries{netns}` | none (ctnetlink or the stat file's `entries`, the same count as the sysctl) |
//! | `node_nf_conntrack_entries_limit` | `conntrack_max_entries` | **absent when `nf_conntrack_max` is 0** (node_exporter exports 0, and `entries / limit` is then +Inf) |
//! | `node_nf_conntrack_stat_found`, `_invalid`, `_ignore`, `_insert`, `_insert_failed`, `_drop`, `_early_drop`, `_search_restart` | `sum by (netns) (conntrack_stat_<counter>_total)` | the sum over CPUs of the wrap-accumulated counters: equal to node_exporter's until a CPU's u32 wraps, still growing after |
//!
//! node_exporter types these counters as gauges, so `rate()` on them is
//! only right between resets; the `conntrack_stat_*_total` families are
//! counters, and add `clash_resolve`, `chaintoolong`, `error` and the
//! expectation counters, per CPU and per namespace.
//!
//! # `nf_conntrack_max` = 0
//!
//! 0 means "no limit" (`nf_conntrack_max && count > nf_conntrack_max` in
//! `__nf_conntrack_alloc`). A naive `entries / max` would then be +Inf and
//! fire every "table full" alert. Both limit families are left out when the
//! value is 0 and `conntrack_max_unlimited` is 1: the ratio has no series,
//! the alert stays quiet, and the unlimited table is visible on its own.
//!
//! # Cardinality
//!
//! At most `max_netns` namespaces have series of their own (the host's
//! first, then named ones, then by entries; a namespace keeps its series
//! while it lives); the others are summed under `netns="other"`, whose
//! counters add the increases of the namespaces while they are in it, so
//! they never go backwards. Hotspots: at most `top_k` values per key, each
//! only when its certified lower bound (estimate minus its top-K error)
//! holds at least `min_entries` and `min_share` of the namespace's entries
//! (so never more than `1 / min_share` per key); a flat table exports none.
//! The `rank` label follows the lower bound.
//!
//! # Dumps under `--all-netns`
//!
//! The kernel keeps one conntrack hash table for every namespace; a dump of
//! one namespace walks all of it and skips the other namespaces' entries,
//! so its cost grows with the whole host's entries and buckets, not with
//! the namespace's. Counters and counts are cheap (one request per
//! namespace); dumps are made only for the `dump_busiest` namespaces with
//! the most entries, each at most every `dump_every`. Findings need host
//! facts read inside the namespace: they are computed for the dumped
//! namespaces and for the host's (for the others they would repeat the
//! host-wide findings once per namespace).

pub mod collect;
#[cfg(feature = "trace")]
pub mod drops;
pub mod encode;
mod families;
pub mod netns;

pub use collect::{Config, ErrorKind, Exporter, HotspotPolicy, Source, Target};
pub use families::{HOT_KEYS, NODE_STATS, OTHER, certified};
pub use netns::{Discovery, FoundNetns, NetnsKind, Owner, discover};
