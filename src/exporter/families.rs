//! The metric families built from what collection found.

use super::collect::{Exporter, Inner, NsState, Source};
use super::encode::{Family, Kind};
use conntrack_analyze::capacity::memory_cost_for;
use conntrack_analyze::hotspots::{HotspotSummary, KeyKind, KeyTable};
use conntrack_core::Counter;
use std::collections::BTreeMap;
use std::time::Instant;

/// node_exporter's conntrack families: (counter, family, help), help as
/// node_exporter writes it (`collector/conntrack_linux.go`). Each is a
/// gauge without labels holding the counter summed over CPUs.
pub const NODE_STATS: [(Counter, &str, &str); 8] = [
    (
        Counter::Found,
        "node_nf_conntrack_stat_found",
        "Number of searched entries which were successful.",
    ),
    (
        Counter::Invalid,
        "node_nf_conntrack_stat_invalid",
        "Number of packets seen which can not be tracked.",
    ),
    (
        Counter::Ignore,
        "node_nf_conntrack_stat_ignore",
        "Number of packets seen which are already connected to a conntrack entry.",
    ),
    (
        Counter::Insert,
        "node_nf_conntrack_stat_insert",
        "Number of entries inserted into the list.",
    ),
    (
        Counter::InsertFailed,
        "node_nf_conntrack_stat_insert_failed",
        "Number of entries for which list insertion was attempted but failed.",
    ),
    (
        Counter::Drop,
        "node_nf_conntrack_stat_drop",
        "Number of packets dropped due to conntrack failure.",
    ),
    (
        Counter::EarlyDrop,
        "node_nf_conntrack_stat_early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (
        Counter::SearchRestart,
        "node_nf_conntrack_stat_search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
];

/// Hotspot keys exported, with their `key` label value
/// (`unreplied_src` is added: sources of flows never answered).
pub const HOT_KEYS: [(KeyKind, &str); 5] = [
    (KeyKind::SrcIp, "src_ip"),
    (KeyKind::DstIp, "dst_ip"),
    (KeyKind::DstPort, "dst_port"),
    (KeyKind::State, "state"),
    (KeyKind::SrcNet, "src_net"),
];

/// The label of the namespaces summed together past `--max-netns`.
pub const OTHER: &str = "other";

fn counter_help(c: Counter) -> String {
    let what = match c {
        Counter::Found => "NAT tuple-in-use checks that found an entry",
        Counter::Invalid => "packets that could not be tracked",
        Counter::Ignore => "packets already tracked or untracked (0 since 5.10)",
        Counter::Insert => "entries inserted (ctnetlink and nft since 4.9)",
        Counter::InsertFailed => {
            "confirm-time insert failures (clash, chain too long, dying entry)"
        }
        Counter::Drop => "packets dropped by conntrack (table full, unresolved clash, ...)",
        Counter::EarlyDrop => "entries evicted on the packet path to make room (table full)",
        Counter::Error => "ICMP error handling failures",
        Counter::ExpectNew => "expectations created by a helper",
        Counter::ExpectCreate => "expectations created",
        Counter::ExpectDelete => "expectations deleted",
        Counter::SearchRestart => "lookups restarted because an entry moved chains",
        Counter::ClashResolve => "races on one new flow resolved (5.10+)",
        Counter::ChainTooLong => "inserts refused because a hash chain was too long (5.15+)",
        Counter::Searched => "hash chain entries walked (0 since 4.9)",
        Counter::New => "new entries (0 since 4.9)",
        Counter::Delete => "entries deleted (0 since 4.9)",
        Counter::DeleteList => "entries deleted from the dying list (0 since 4.9)",
        // A counter core learnt after this text was written.
        _ => "a field of the kernel's struct ip_conntrack_stat",
    };
    format!(
        "The kernel's per-CPU conntrack counter {}: {what}; u32 wraps accumulated.",
        c.name()
    )
}

/// The values of a hotspot table that pass the policy: (rank, value,
/// certified lower bound), rank from 1.
pub fn certified(
    t: &KeyTable,
    flows: u64,
    policy: &super::collect::HotspotPolicy,
) -> Vec<(usize, String, u64)> {
    let floor = (policy.min_share * flows as f64).ceil().max(0.0) as u64;
    let mut v: Vec<(String, u64)> = t
        .top
        .iter()
        .map(|kc| (kc.key.to_string(), kc.count.saturating_sub(kc.error)))
        .filter(|&(_, lower)| lower >= policy.min_entries.max(1) && lower >= floor)
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter()
        .take(policy.top_k)
        .enumerate()
        .map(|(i, (k, l))| (i + 1, k, l))
        .collect()
}

fn tables(h: &HotspotSummary) -> Vec<(&'static str, &KeyTable)> {
    HOT_KEYS
        .iter()
        .filter_map(|(k, name)| h.table(*k).map(|t| (*name, t)))
        .chain(std::iter::once(("unreplied_src", &h.unreplied_by_source)))
        .collect()
}

impl Exporter {
    /// The families of one scrape, built from the last collection passes.
    pub fn families(&self) -> Vec<Family> {
        let st = self.lock();
        self.build(&st, Instant::now())
    }

    fn meaningful(&self, c: Counter) -> bool {
        c.support(self.kernel).is_meaningful()
    }

    fn build(&self, st: &Inner, now: Instant) -> Vec<Family> {
        let mut out = Vec::new();
        let all = self.cfg.target.is_none();
        let own: Vec<&NsState> = st.namespaces.iter().filter(|n| n.own).collect();
        let primary = own
            .iter()
            .find(|n| !all || n.kind == super::NetnsKind::Host);

        // node_exporter's families, for the primary namespace (the target,
        // or the host's under --all-netns), as node_exporter reads its own.
        if let Some(p) = primary.filter(|p| p.up) {
            if let Some(e) = p.entries {
                out.push(
                    Family::new(
                        "node_nf_conntrack_entries",
                        "Number of currently allocated flow entries for connection tracking.",
                        Kind::Gauge,
                    )
                    .sample(&[], e),
                );
            }
            if let Some(m) = st.max.filter(|&m| m > 0) {
                out.push(
                    Family::new(
                        "node_nf_conntrack_entries_limit",
                        "Maximum size of connection tracking table.",
                        Kind::Gauge,
                    )
                    .sample(&[], m),
                );
            }
            let totals = p.totals();
            for (c, name, help) in NODE_STATS {
                if let Some(v) = totals.get(&c) {
                    out.push(Family::new(name, help, Kind::Gauge).sample(&[], *v));
                }
            }
        }

        // Health and identity, per namespace.
        let mut up = Family::new(
            "conntrack_up",
            "1 when the namespace's counters and count were read in the last collection pass, else 0.",
            Kind::Gauge,
        );
        let mut age = Family::new(
            "conntrack_collection_age_seconds",
            "Seconds since the namespace's counters were last read successfully.",
            Kind::Gauge,
        );
        let mut info = Family::new(
            "conntrack_netns",
            "The namespaces with series of their own: kind, inode, container and pod.",
            Kind::Info,
        );
        for n in &own {
            let l = [("netns", n.label.as_str())];
            up.push(&l, n.up);
            if let Some(t) = n.last_ok {
                age.push(&l, now.duration_since(t).as_secs_f64());
            }
            let ino = n.inode.map(|i| i.to_string()).unwrap_or_default();
            let o = &n.owner;
            info.push(
                &[
                    ("netns", n.label.as_str()),
                    ("kind", n.kind.name()),
                    ("inode", ino.as_str()),
                    ("runtime", o.runtime.unwrap_or("")),
                    ("container", o.container.as_deref().unwrap_or("")),
                    ("pod", o.pod.as_deref().unwrap_or("")),
                    ("pod_namespace", o.pod_namespace.as_deref().unwrap_or("")),
                ],
                1u64,
            );
        }
        if st.other_members > 0 {
            let members_up = st.namespaces.iter().filter(|n| !n.own).all(|n| n.up);
            up.push(&[("netns", OTHER)], members_up);
        }
        out.extend([up, age, info]);

        // Sizes.
        let mut entries = Family::new(
            "conntrack_entries",
            "Entries in the namespace's conntrack table (each namespace's count is checked against the global nf_conntrack_max).",
            Kind::Gauge,
        );
        for n in own.iter().filter(|n| n.up) {
            if let Some(e) = n.entries {
                entries.push(&[("netns", n.label.as_str())], e);
            }
        }
        if st.other_members > 0 {
            entries.push(&[("netns", OTHER)], st.other_entries);
        }
        out.push(entries);
        match st.max {
            Some(0) => out.push(
                Family::new(
                    "conntrack_max_unlimited",
                    "1: nf_conntrack_max is 0, no limit (conntrack_max_entries and node_nf_conntrack_entries_limit are then absent, so a ratio alert finds no series instead of +Inf).",
                    Kind::Gauge,
                )
                .sample(&[], 1u64),
            ),
            Some(m) => {
                out.push(
                    Family::new(
                        "conntrack_max_entries",
                        "nf_conntrack_max: the most entries each namespace's table may hold (global).",
                        Kind::Gauge,
                    )
                    .sample(&[], m),
                );
                out.push(
                    Family::new(
                        "conntrack_max_unlimited",
                        "1: nf_conntrack_max is 0, no limit (conntrack_max_entries and node_nf_conntrack_entries_limit are then absent, so a ratio alert finds no series instead of +Inf).",
                        Kind::Gauge,
                    )
                    .sample(&[], 0u64),
                );
            }
            None => {}
        }
        if let Some(b) = st.buckets {
            out.push(
                Family::new(
                    "conntrack_buckets",
                    "Hash table buckets (global: one table for every namespace).",
                    Kind::Gauge,
                )
                .sample(&[], b),
            );
            let total: u64 = st
                .namespaces
                .iter()
                .filter(|n| n.up)
                .map(|n| u64::from(n.entries.unwrap_or(0)))
                .sum();
            let snap = &st.base_snapshot;
            out.push(
                Family::new(
                    "conntrack_memory_estimate_bytes",
                    "Estimated kernel memory of the entries of the namespaces collected and of the buckets (slab object size from /proc/slabinfo when readable).",
                    Kind::Gauge,
                )
                .sample(&[], memory_cost_for(snap, total, u64::from(b)).total_bytes),
            );
            if let Some(m) = st.max.filter(|&m| m > 0) {
                out.push(
                    Family::new(
                        "conntrack_memory_estimate_at_max_bytes",
                        "Estimated kernel memory with nf_conntrack_max entries.",
                        Kind::Gauge,
                    )
                    .sample(
                        &[],
                        memory_cost_for(snap, u64::from(m), u64::from(b)).total_bytes,
                    ),
                );
            }
        }

        // Counters.
        let per_cpu = self.cfg.per_cpu;
        let mut by_counter: BTreeMap<Counter, Family> = BTreeMap::new();
        for c in Counter::ALL.into_iter().filter(|&c| self.meaningful(c)) {
            by_counter.insert(
                c,
                Family::new(
                    format!("conntrack_stat_{}", c.name()),
                    counter_help(c),
                    Kind::Counter,
                ),
            );
        }
        for n in own.iter().filter(|n| n.up) {
            if per_cpu {
                for (&(cpu, c), a) in &n.counters {
                    if let Some(f) = by_counter.get_mut(&c) {
                        let cpu = cpu.to_string();
                        f.push(
                            &[("netns", n.label.as_str()), ("cpu", cpu.as_str())],
                            a.total(),
                        );
                    }
                }
            } else {
                for (c, v) in n.totals() {
                    if let Some(f) = by_counter.get_mut(&c) {
                        f.push(&[("netns", n.label.as_str())], v);
                    }
                }
            }
        }
        if st.other_members > 0 {
            for (c, v) in &st.other_counters {
                if let Some(f) = by_counter.get_mut(c) {
                    if per_cpu {
                        f.push(&[("netns", OTHER), ("cpu", "all")], *v);
                    } else {
                        f.push(&[("netns", OTHER)], *v);
                    }
                }
            }
        }
        out.extend(by_counter.into_values());

        // Findings and hotspots.
        let mut findings = Family::new(
            "conntrack_finding",
            "1 for each current diagnosis finding of the namespace (conntrack-analyze FindingId).",
            Kind::Gauge,
        );
        let mut hot = Family::new(
            "conntrack_hotspot_entries",
            "Certified lower bound of the entries of a heavy value of a key (only values above the exporter's thresholds; rank 1 is the heaviest).",
            Kind::Gauge,
        );
        let mut bound = Family::new(
            "conntrack_hotspot_error_bound",
            "Top-K error bound of a key: an exported value holds at most this many entries more than its lower bound (0: exact).",
            Kind::Gauge,
        );
        let mut hot_age = Family::new(
            "conntrack_hotspot_age_seconds",
            "Seconds since the dump the namespace's hotspots come from was started.",
            Kind::Gauge,
        );
        for n in own.iter().filter(|n| n.up) {
            let l = n.label.as_str();
            for f in &n.findings {
                findings.push(
                    &[
                        ("netns", l),
                        ("id", f.id.name()),
                        ("severity", f.severity.name()),
                    ],
                    1u64,
                );
            }
            let (Some((h, at)), Some(policy)) = (&n.hotspots, &self.cfg.hotspots) else {
                continue;
            };
            hot_age.push(&[("netns", l)], now.duration_since(*at).as_secs_f64());
            for (key, t) in tables(h) {
                bound.push(&[("netns", l), ("key", key)], t.error_bound);
                for (rank, value, lower) in certified(t, h.flows, policy) {
                    let rank = rank.to_string();
                    hot.push(
                        &[
                            ("netns", l),
                            ("key", key),
                            ("rank", rank.as_str()),
                            ("value", value.as_str()),
                        ],
                        lower,
                    );
                }
            }
        }
        out.extend([findings, hot, bound, hot_age]);

        // The exporter itself.
        if all {
            out.push(
                Family::new(
                    "conntrack_netns_discovered",
                    "Network namespaces found in the last discovery.",
                    Kind::Gauge,
                )
                .sample(&[], st.discovered as u64),
            );
            out.push(
                Family::new(
                    "conntrack_netns_other_members",
                    "Namespaces without series of their own (past --max-netns), summed under netns=\"other\".",
                    Kind::Gauge,
                )
                .sample(&[], st.other_members as u64),
            );
            out.push(
                Family::new(
                    "conntrack_netns_unreadable_pids",
                    "Processes whose namespace link could not be read (no privileges): their namespaces may be missing.",
                    Kind::Gauge,
                )
                .sample(&[], st.unreadable_pids as u64),
            );
        }
        let mut errors = Family::new(
            "conntrack_exporter_errors",
            "Failed reads by kind (netns_gone, permission, overrun and dump_interrupted: netlink messages lost, timeout, netlink, proc).",
            Kind::Counter,
        );
        for (k, v) in &st.errors {
            errors.push(&[("kind", k.name())], *v);
        }
        out.push(errors);
        out.push(
            Family::new(
                "conntrack_exporter_passes",
                "Collection passes done.",
                Kind::Counter,
            )
            .sample(&[], st.passes),
        );
        out.push(
            Family::new(
                "conntrack_exporter_dumps",
                "Table dumps done for hotspots.",
                Kind::Counter,
            )
            .sample(&[], st.dumps),
        );
        out.push(
            Family::new(
                "conntrack_exporter_stat_resets",
                "Kernel counters seen going backwards (not wrapping): namespace recreated or module reloaded.",
                Kind::Counter,
            )
            .sample(&[], st.counter_resets),
        );
        out.push(
            Family::new(
                "conntrack_exporter_pass_duration_seconds",
                "Wall time of the last collection pass (dumps included).",
                Kind::Gauge,
            )
            .sample(&[], st.last_pass_secs),
        );
        out.push(
            Family::new(
                "conntrack_exporter_dump_duration_seconds",
                "Wall time of the last dump and host read.",
                Kind::Gauge,
            )
            .sample(&[], st.last_dump_secs),
        );
        let hotspots_on = self.source == Source::Netlink && self.cfg.hotspots.is_some();
        let mut feature = Family::new(
            "conntrack_exporter_feature",
            "1 when a part of the exporter works: ctnetlink (needs CAP_NET_ADMIN; else counters come from /proc), hotspots (dumps).",
            Kind::Gauge,
        );
        feature.push(&[("feature", "ctnetlink")], self.source == Source::Netlink);
        feature.push(&[("feature", "hotspots")], hotspots_on);
        #[cfg(feature = "trace")]
        if let Some(d) = &self.drops {
            feature.push(&[("feature", "trace")], d.tracing());
            let labels: Vec<(u32, &str)> = own
                .iter()
                .filter_map(|n| Some((u32::try_from(n.inode?).ok()?, n.label.as_str())))
                .collect();
            out.extend(d.families(&labels));
        }
        out.push(feature);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::collect::HotspotPolicy;
    use conntrack_analyze::hotspots::{Key, KeyCount};

    fn table(rows: &[(u16, u64, u64)]) -> KeyTable {
        KeyTable {
            kind: KeyKind::DstPort,
            counted: 0,
            distinct: None,
            exact: false,
            error_bound: rows.iter().map(|r| r.2).max().unwrap_or(0),
            top: rows
                .iter()
                .map(|&(port, count, error)| KeyCount {
                    key: Key::Port {
                        proto: conntrack_core::L4Proto::TCP,
                        port,
                    },
                    count,
                    error,
                    share: 0.0,
                })
                .collect(),
            others_at_most: rows.iter().map(|r| r.2).max().unwrap_or(0),
            ranking: conntrack_analyze::hotspots::Ranking::CertifiedSet,
            tied_left_out: 0,
        }
    }

    #[test]
    fn noise_is_not_a_hotspot() {
        let p = HotspotPolicy {
            top_k: 3,
            min_entries: 100,
            min_share: 0.05,
        };
        // A flat table under top-K: 391 +- 390 everywhere: nothing passes.
        let flat = table(&[(1, 391, 390), (2, 391, 390), (3, 390, 389)]);
        assert!(certified(&flat, 100_000, &p).is_empty());
        // One real hotspot among noise; ranks from 1, at most top_k.
        let real = table(&[
            (80, 9_000, 300),
            (2, 391, 390),
            (443, 8_000, 0),
            (53, 7_000, 0),
            (22, 6_000, 0),
        ]);
        let c = certified(&real, 100_000, &p);
        assert_eq!(
            c.iter().map(|x| (x.0, x.2)).collect::<Vec<_>>(),
            [(1, 8_700), (2, 8_000), (3, 7_000)]
        );
        assert_eq!(c[0].1, "tcp/80");
        // Below the share floor (5 % of 1,000,000 = 50,000): nothing.
        assert!(certified(&real, 1_000_000, &p).is_empty());
    }

    /// The exporter's own bounded count over `flows` flows from distinct
    /// sources to distinct ports of one destination, plus flows
    /// from 10.9.9.9 to port 5432.
    /// from 10.9.9.9 to port 5432 (one every `every`, 0: none); and how
    /// many of those there are.
    fn fold(flows: u32, every: u32) -> (conntrack_analyze::HotspotSummary, u64) {
        use conntrack_core::testkit::{flow, tcp};
        let mut h = conntrack_analyze::Hotspots::new(HotspotPolicy::default().hotspot_config());
        let mut heavy = 0;
        for i in 0..flows {
            let src = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            h.add(&flow(tcp(
                &src,
                40_000,
                "192.0.2.1",
                1024 + (i % 60_000) as u16,
            )));
            if every > 0 && i % every == 0 {
                h.add(&flow(tcp(
                    "10.9.9.9",
                    (i % 60_000) as u16,
                    "192.0.2.1",
                    5432,
                )));
                heavy += 1;
            }
        }
        (h.summary(), heavy)
    }

    fn hotspot_samples(
        e: &Exporter,
        h: conntrack_analyze::HotspotSummary,
    ) -> Vec<(String, String, f64)> {
        {
            let mut st = e.lock();
            st.namespaces[0].up = true;
            st.namespaces[0].hotspots = Some((h, Instant::now()));
        }
        let f = e.families();
        samples_of(&f, "conntrack_hotspot_entries")
            .iter()
            .map(|s| {
                let label = |n: &str| {
                    s.labels
                        .iter()
                        .find(|l| l.0 == n)
                        .map(|l| l.1.clone())
                        .unwrap_or_default()
                };
                (label("key"), label("value"), s.value.as_f64())
            })
            .collect()
    }

    #[test]
    fn a_flat_table_exports_no_noise_from_a_real_count() {
        // 100,000 flows, every source and port nearly unique: the bounded
        // count (1,024 counters a key) holds only noise for src_ip,
        // src_net and dst_port. Only what is real is exported: the one
        // destination and the state (lower bounds exact: 100,000).
        let (_dir, e) = exporter();
        let (h, _) = fold(100_000, 0);
        let src = h.table(KeyKind::SrcIp).unwrap();
        assert!(!src.exact && src.top.is_empty(), "{src:?}");
        let got = hotspot_samples(&e, h);
        let keys: Vec<&str> = got.iter().map(|s| s.0.as_str()).collect();
        assert!(
            !keys.contains(&"src_ip") && !keys.contains(&"dst_port"),
            "{got:?}"
        );
        assert!(!keys.contains(&"src_net"), "{got:?}");
        assert!(
            got.contains(&("dst_ip".into(), "192.0.2.1".into(), 100_000.0)),
            "{got:?}"
        );
        // One source with 7.7 % of the flows over the same noise: exported
        // (rank 1) with a lower bound within the count's error of the truth.
        let (h, truth) = fold(100_000, 12);
        assert_eq!(truth, 8_334);
        let truth = truth as f64;
        let got = hotspot_samples(&e, h);
        let heavy: Vec<_> = got.iter().filter(|s| s.0 == "src_ip").collect();
        assert_eq!(heavy.len(), 1, "{got:?}");
        assert_eq!(heavy[0].1, "10.9.9.9");
        assert!(
            heavy[0].2 <= truth && heavy[0].2 >= truth - 200.0,
            "{heavy:?}"
        );
        let port: Vec<_> = got.iter().filter(|s| s.0 == "dst_port").collect();
        assert_eq!(port.len(), 1, "{got:?}");
        assert_eq!(port[0].1, "tcp/5432");
    }

    fn exporter() -> (tempfile::TempDir, Exporter) {
        use crate::exporter::{Config, Source};
        let dir = tempfile::tempdir().unwrap();
        let e = Exporter::new(Config {
            root: dir.path().into(),
            source: Some(Source::Proc),
            ..Config::default()
        });
        (dir, e)
    }

    fn samples_of<'a>(fams: &'a [Family], name: &str) -> Vec<&'a crate::exporter::encode::Sample> {
        fams.iter()
            .filter(|f| f.name == name)
            .flat_map(|f| &f.samples)
            .collect()
    }

    #[test]
    fn unlimited_max_leaves_no_limit_series() {
        let (_dir, e) = exporter();
        {
            let mut st = e.lock();
            st.max = Some(0);
            st.namespaces[0].up = true;
            st.namespaces[0].entries = Some(5);
        }
        let f = e.families();
        assert!(samples_of(&f, "conntrack_max_entries").is_empty());
        assert!(samples_of(&f, "node_nf_conntrack_entries_limit").is_empty());
        assert_eq!(
            samples_of(&f, "conntrack_max_unlimited")[0].value.as_f64(),
            1.0
        );
        assert_eq!(
            samples_of(&f, "node_nf_conntrack_entries")[0]
                .value
                .as_f64(),
            5.0
        );
        e.lock().max = Some(1000);
        let f = e.families();
        assert_eq!(
            samples_of(&f, "conntrack_max_entries")[0].value.as_f64(),
            1000.0
        );
        assert_eq!(
            samples_of(&f, "node_nf_conntrack_entries_limit")[0]
                .value
                .as_f64(),
            1000.0
        );
        assert_eq!(
            samples_of(&f, "conntrack_max_unlimited")[0].value.as_f64(),
            0.0
        );
    }

    #[test]
    fn a_namespace_down_exports_up_0_and_no_stale_values() {
        let (_dir, e) = exporter();
        {
            let mut st = e.lock();
            let n = &mut st.namespaces[0];
            n.up = false;
            n.entries = Some(7); // read before the failure
        }
        let f = e.families();
        let up = samples_of(&f, "conntrack_up");
        assert_eq!((up.len(), up[0].value.as_f64()), (1, 0.0));
        assert!(samples_of(&f, "conntrack_entries").is_empty());
        assert!(samples_of(&f, "node_nf_conntrack_entries").is_empty());
        // Every error kind is exported, 0 included.
        assert_eq!(samples_of(&f, "conntrack_exporter_errors").len(), 7);
    }
}
