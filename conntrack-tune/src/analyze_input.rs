//! Builds the planner's [`Observation`] from `conntrack-analyze`'s results:
//! rates over a stats series, the hotspot summary, and the diagnosis
//! findings, plus the host files read from a (relocatable) root.
//!
//! ```
//! use conntrack_analyze::{hotspots::Hotspots, rates::StatsSeries};
//! use conntrack_core::{Counter, CpuStats, HostSnapshot, KernelVersion, Stats};
//! use conntrack_tune::{analyze_input, plan, Cause, Policy};
//! use std::time::Duration;
//!
//! // insert_failed == drop, table at 4%: analyze says "clash".
//! let sample = |n: u32| {
//!     let mut c = CpuStats::for_cpu(0);
//!     for (k, v) in [(Counter::InsertFailed, n), (Counter::Drop, n),
//!                    (Counter::EarlyDrop, 0), (Counter::ClashResolve, 10 * n),
//!                    (Counter::ChainTooLong, 0)] { c.set(k, v); }
//!     Stats { entries: Some(10_000), max_entries: None, cpus: vec![c] }
//! };
//! let mut series = StatsSeries::new();
//! series.push(Duration::from_secs(0), sample(100)).unwrap();
//! series.push(Duration::from_secs(10), sample(150)).unwrap();
//! let host = HostSnapshot {
//!     kernel_version: Some(KernelVersion::new(6, 1, 0)),
//!     count: Some(10_000), max: Some(262_144), buckets: Some(262_144),
//!     ..Default::default()
//! };
//! let obs = analyze_input::observe(host, Some(&series.rates()), None);
//! assert!(obs.findings.iter().any(|f| f.cause == Cause::Clash));
//! let p = plan(&obs, &Policy::default()).unwrap();
//! assert!(p.action("raise-max").is_none());
//! assert!(p.action("advice:dns-clash").is_some());
//! ```

use crate::observe::{
    Cause, CpuDelta, Finding, FlowSummary, ModuleKind, Observation, Rates, RemainingHistogram,
    ServiceStats,
};
use conntrack_analyze::hotspots::{HotspotSummary, Key, KeyKind};
use conntrack_analyze::rates::CpuId;
use conntrack_analyze::{FindingId, diagnose};
use conntrack_core::{Counter, HostSnapshot};
use std::path::Path;

/// The planner's rates from analyze's: per-CPU deltas over the window and
/// the highest entry count seen. The new-flow rate is not derivable from
/// counters on modern kernels (KERNEL.md section 4); set
/// [`Rates::new_flows_per_sec`] from NEW events when available.
pub fn rates_from(r: &conntrack_analyze::Rates) -> Rates {
    let per_cpu = r
        .cpus
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let d = |k: Counter| {
                c.counters
                    .iter()
                    .find(|(n, _, _)| *n == k)
                    .map_or(0, |&(_, delta, _)| delta)
            };
            CpuDelta {
                cpu: match c.cpu {
                    CpuId::Id(n) => n,
                    CpuId::Row(_) => i as u32,
                },
                drop: d(Counter::Drop),
                insert_failed: d(Counter::InsertFailed),
                early_drop: d(Counter::EarlyDrop),
                clash_resolve: d(Counter::ClashResolve),
                chain_too_long: d(Counter::ChainTooLong),
                search_restart: d(Counter::SearchRestart),
            }
        })
        .collect();
    Rates {
        window_secs: r.window.covered_secs,
        peak_entries: r.entries.as_ref().map(|e| e.max),
        new_flows_per_sec: None,
        per_cpu,
        net_rx_per_cpu: Vec::new(),
    }
}

/// Spreads a binned histogram over whole seconds: each bin's count over at
/// most 8 evenly spaced seconds inside it (the bins of analyze's histogram
/// are at most 1/8 of their lower bound wide, so this keeps its precision).
fn hist_from(h: &conntrack_analyze::hotspots::RemainingHistogram, out: &mut RemainingHistogram) {
    for (lo, hi, count) in h.bins() {
        let width = hi.saturating_sub(lo).max(1);
        let points = width.min(8);
        for k in 0..points {
            let share = count / points + u64::from(k < count % points);
            if share == 0 {
                continue;
            }
            let at = (lo + k * width / points).min(u32::MAX as u64) as u32;
            *out.by_secs.entry(at).or_insert(0) += share;
        }
    }
}

/// The planner's flow summary from analyze's hotspot summary. Services
/// come from the destination-port table; analyze does not attribute NAT to
/// services, so when the table holds translated flows every service is
/// marked `nat_unattributed` (which rules NOTRACK out for it).
pub fn summary_from(h: &HotspotSummary) -> FlowSummary {
    let mut s = FlowSummary {
        total: h.flows,
        nat: h.nat.snat + h.nat.dnat + h.nat.both,
        helpers_known: h.helper_flows == 0,
        ..Default::default()
    };
    for st in &h.states {
        let name = st.state.to_string();
        *s.by_state.entry(name.clone()).or_insert(0) += st.count;
        *s.by_proto.entry(st.proto.to_string()).or_insert(0) += st.count;
        if st.remaining.total() > 0 {
            hist_from(&st.remaining, s.remaining.entry(name).or_default());
            if st.proto == conntrack_core::L4Proto::UDP {
                hist_from(&st.remaining, &mut s.udp_remaining);
            }
        }
    }
    if let Some(t) = h.table(KeyKind::Zone) {
        for kc in &t.top {
            if let Key::Zone(z) = kc.key
                && z != 0
                && kc.count > 0
            {
                s.zones.insert(z);
            }
        }
    }
    if let Some(t) = h.table(KeyKind::DstPort) {
        for kc in &t.top {
            if let Key::Port { proto, port } = kc.key {
                let e = s.services.entry(format!("{proto}/{port}")).or_default();
                *e = ServiceStats {
                    entries: e.entries + kc.count,
                    nat_unattributed: s.nat > 0,
                    ..ServiceStats::default()
                };
            }
        }
    }
    s
}

/// The planner's cause for an analyze finding.
pub fn cause_of(id: FindingId) -> Cause {
    match id {
        FindingId::TableFull => Cause::TableFull,
        FindingId::ConfirmClash | FindingId::ConfirmFailures => Cause::Clash,
        FindingId::ConfirmChainCap | FindingId::OverloadedBuckets => Cause::ChainTooLong,
        FindingId::CpuImbalance => Cause::CpuImbalance,
        FindingId::TimeWaitDominance => Cause::ShortConnections,
        FindingId::LongEstablishedRetention => Cause::IdleEstablished,
        FindingId::NatAmplification => Cause::NatAmplification,
        FindingId::UnneededHelpers => Cause::UnneededHelpers,
        FindingId::ScanSuspects => Cause::ScanSuspects,
        _ => Cause::Other,
    }
}

/// The planner's findings from analyze's, with their evidence numbers.
pub fn findings_from(fs: &[conntrack_analyze::Finding]) -> Vec<Finding> {
    fs.iter()
        .map(|f| Finding {
            id: f.id.name().to_string(),
            cause: cause_of(f.id),
            text: format!("{}: {}", f.title, f.explanation),
            numbers: f
                .evidence
                .iter()
                .map(|e| (e.name.clone(), e.value))
                .collect(),
        })
        .collect()
}

/// Runs analyze's diagnosis and fills an observation from a snapshot,
/// rates and a hotspot summary (any may be missing).
pub fn observe(
    snapshot: HostSnapshot,
    rates: Option<&conntrack_analyze::Rates>,
    hotspots: Option<&HotspotSummary>,
) -> Observation {
    let findings = findings_from(&diagnose(&snapshot, rates, hotspots));
    Observation {
        rates: rates.map(rates_from),
        flows: hotspots.map(summary_from),
        findings,
        snapshot: Some(snapshot),
        ..Default::default()
    }
}

/// Reads the host files the planner uses from a root (`/`, or a fixture
/// tree): sysctl.d precedence, kube-proxy configuration, and whether
/// nf_conntrack and each helper are modules ([`scan_modules`]).
pub fn scan_root(obs: &mut Observation, root: &Path) {
    obs.sysctl_scan = Some(crate::sysctl_d::scan(root));
    obs.kube_proxy = crate::kube::detect(root);
    scan_modules(obs, root);
}

/// Fills [`Observation::module_kind`] and [`Observation::helper_kinds`]
/// (for the helpers of the snapshot) from a root. Module facts belong to
/// the kernel, not to a network namespace, so a caller looking at another
/// namespace of this host can scan `/` for them.
pub fn scan_modules(obs: &mut Observation, root: &Path) {
    let release = obs.snapshot.as_ref().and_then(|s| s.kernel_release.clone());
    obs.module_kind = module_kind(root, release.as_deref());
    let modules = read_proc_modules(root);
    let helpers = obs
        .snapshot
        .as_ref()
        .map(|s| s.helpers.clone())
        .unwrap_or_default();
    for h in helpers {
        let kind = helper_kind_with(root, &h, modules.as_deref());
        obs.helper_kinds.insert(h, kind);
    }
}

/// Module names listed in `ROOT/proc/modules`; `None` when the file is
/// absent or unreadable.
fn read_proc_modules(root: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(root.join("proc/modules")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect(),
    )
}

/// Whether the module `name` (a conntrack helper such as
/// `nf_conntrack_ftp`) is loadable or built in, from a root:
///
/// - `/sys/module/NAME/initstate` exists, or `/proc/modules` lists it:
///   a loadable module (`initstate` is created for loaded modules only);
/// - `/sys/module/NAME` exists but `/proc/modules` does not list it: built
///   in (`param_sysfs_builtin` in `kernel/params.c` creates the directory
///   for built-in code that has parameters);
/// - `/proc/modules` is absent and `/sys/module/NAME` exists: built in (a
///   kernel built with `CONFIG_MODULES=n` has no `/proc/modules`, and
///   every module directory is built-in code);
/// - otherwise unknown.
///
/// ```
/// use conntrack_tune::{analyze_input::helper_kind, ModuleKind};
/// let t = tempfile::tempdir().unwrap();
/// std::fs::create_dir_all(t.path().join("sys/module/nf_conntrack_ftp/parameters")).unwrap();
/// // No /proc/modules: no module support, so the helper is built in.
/// assert_eq!(helper_kind(t.path(), "nf_conntrack_ftp"), ModuleKind::BuiltIn);
/// assert_eq!(helper_kind(t.path(), "nf_conntrack_sip"), ModuleKind::Unknown);
/// ```
pub fn helper_kind(root: &Path, name: &str) -> ModuleKind {
    helper_kind_with(root, name, read_proc_modules(root).as_deref())
}

fn helper_kind_with(root: &Path, name: &str, modules: Option<&[String]>) -> ModuleKind {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.chars().any(|c| c.is_control());
    if !plain {
        return ModuleKind::Unknown;
    }
    let sysmod = root.join("sys/module").join(name);
    if sysmod.join("initstate").exists() || modules.is_some_and(|m| m.iter().any(|n| n == name)) {
        return ModuleKind::Module;
    }
    if sysmod.is_dir() {
        return ModuleKind::BuiltIn;
    }
    ModuleKind::Unknown
}

/// Whether nf_conntrack is a loadable module: `/sys/module/nf_conntrack/
/// initstate` exists only for loadable modules; a built-in module with
/// parameters has the directory without it; `modules.builtin` of the
/// running release lists built-in modules.
pub fn module_kind(root: &Path, release: Option<&str>) -> ModuleKind {
    let sysmod = root.join("sys/module/nf_conntrack");
    if sysmod.join("initstate").exists() {
        return ModuleKind::Module;
    }
    if sysmod.is_dir() {
        return ModuleKind::BuiltIn;
    }
    if let Some(rel) = release.filter(|r| !r.contains('/') && !r.is_empty() && *r != "..") {
        let builtin = root.join("lib/modules").join(rel).join("modules.builtin");
        if let Ok(text) = std::fs::read_to_string(builtin) {
            return if text.lines().any(|l| l.ends_with("/nf_conntrack.ko")) {
                ModuleKind::BuiltIn
            } else {
                ModuleKind::Module
            };
        }
    }
    ModuleKind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_analyze::hotspots::Hotspots;
    use conntrack_core::{Flow, L4Proto, L4Tuple, ProtoInfo, Status, TcpInfo, TcpState, Tuple};

    fn tw_flow(port: u16, remaining: u32, nat: bool) -> Flow {
        let ip = |s: &str| s.parse().unwrap();
        let o = Tuple::new(
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            L4Proto::TCP,
            L4Tuple::Ports { src: port, dst: 80 },
        );
        let r = Tuple::new(
            ip("10.0.0.2"),
            ip(if nat { "192.0.2.1" } else { "10.0.0.1" }),
            L4Proto::TCP,
            L4Tuple::Ports { src: 80, dst: port },
        );
        let mut f = Flow::new(o, r, Status::CONFIRMED | Status::SEEN_REPLY);
        f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo {
            state: TcpState::TIME_WAIT,
            ..Default::default()
        }));
        f.timeout = Some(remaining);
        f
    }

    #[test]
    fn hotspot_summary_matches_exact_summary() {
        let flows: Vec<Flow> = (0..1200u32)
            .map(|i| tw_flow(10_000 + i as u16, 1 + i % 120, false))
            .collect();
        let mut h = Hotspots::exact();
        h.extend(&flows);
        let from_analyze = summary_from(&h.summary());
        let exact = FlowSummary::from_owned(&flows);
        assert_eq!(from_analyze.total, exact.total);
        assert_eq!(from_analyze.by_state, exact.by_state);
        assert_eq!(from_analyze.services["tcp/80"].entries, 1200);
        assert!(!from_analyze.services["tcp/80"].nat_unattributed);
        let (a, e) = (
            &from_analyze.remaining["TIME_WAIT"],
            &exact.remaining["TIME_WAIT"],
        );
        assert_eq!(a.total(), e.total());
        // Binned vs exact: the TIME_WAIT estimate agrees within a bin.
        let sa = crate::timeouts::shorten_fresh_state(a, 120, 30);
        let se = crate::timeouts::shorten_fresh_state(e, 120, 30);
        assert!(
            (sa.freed as i64 - se.freed as i64).abs() <= 60,
            "{sa:?} {se:?}"
        );
    }

    #[test]
    fn nat_is_not_attributed_per_service() {
        let flows = vec![tw_flow(1, 100, true), tw_flow(2, 100, false)];
        let mut h = Hotspots::exact();
        h.extend(&flows);
        let s = summary_from(&h.summary());
        assert_eq!(s.nat, 1);
        assert!(s.services["tcp/80"].nat_unattributed);
    }

    #[test]
    fn idle_estimate_agrees_with_analyze() {
        let mut mine = RemainingHistogram::default();
        let mut theirs = conntrack_analyze::hotspots::RemainingHistogram::default();
        for r in (0..432_000u32).step_by(997) {
            mine.add(r);
            theirs.add(r);
        }
        let a = crate::timeouts::shorten_idle_state(&mine, 432_000, 86_400).freed as f64;
        let b = conntrack_analyze::capacity::timeout_change_frees(&theirs, 432_000, 86_400);
        assert!((a - b).abs() <= 0.02 * b.max(1.0), "{a} vs {b}");
    }

    #[test]
    fn helper_kinds_from_root() {
        let t = tempfile::tempdir().unwrap();
        let dir = |n: &str| {
            std::fs::create_dir_all(t.path().join("sys/module").join(n).join("parameters")).unwrap()
        };
        dir("nf_conntrack_ftp");
        dir("nf_conntrack_sip");
        let mut obs = Observation {
            snapshot: Some(HostSnapshot {
                helpers: vec![
                    "nf_conntrack_ftp".into(),
                    "nf_conntrack_sip".into(),
                    "nf_conntrack_irc".into(),
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        // This host: CONFIG_MODULES=n, no /proc/modules, helpers only in
        // /sys/module.
        scan_modules(&mut obs, t.path());
        assert_eq!(obs.helper_kind("nf_conntrack_ftp"), ModuleKind::BuiltIn);
        assert_eq!(obs.helper_kind("nf_conntrack_sip"), ModuleKind::BuiltIn);
        assert_eq!(obs.helper_kind("nf_conntrack_irc"), ModuleKind::Unknown);
        // With module support: listed in /proc/modules means loadable; in
        // /sys/module only means built in.
        std::fs::create_dir_all(t.path().join("proc")).unwrap();
        std::fs::write(
            t.path().join("proc/modules"),
            "nf_conntrack_irc 20480 0 - Live 0x0\nnf_conntrack 172032 4 - Live 0x0\n",
        )
        .unwrap();
        scan_modules(&mut obs, t.path());
        assert_eq!(obs.helper_kind("nf_conntrack_irc"), ModuleKind::Module);
        assert_eq!(obs.helper_kind("nf_conntrack_ftp"), ModuleKind::BuiltIn);
        // initstate marks a loaded module even if /proc/modules misses it.
        std::fs::write(
            t.path().join("sys/module/nf_conntrack_sip/initstate"),
            "live\n",
        )
        .unwrap();
        assert_eq!(
            helper_kind(t.path(), "nf_conntrack_sip"),
            ModuleKind::Module
        );
        assert_eq!(helper_kind(t.path(), "../etc"), ModuleKind::Unknown);
    }

    #[test]
    fn module_kind_from_root() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(module_kind(t.path(), Some("6.1.0")), ModuleKind::Unknown);
        std::fs::create_dir_all(t.path().join("lib/modules/6.1.0")).unwrap();
        std::fs::write(
            t.path().join("lib/modules/6.1.0/modules.builtin"),
            "kernel/net/netfilter/nf_conntrack.ko\n",
        )
        .unwrap();
        assert_eq!(module_kind(t.path(), Some("6.1.0")), ModuleKind::BuiltIn);
        std::fs::create_dir_all(t.path().join("sys/module/nf_conntrack")).unwrap();
        std::fs::write(t.path().join("sys/module/nf_conntrack/initstate"), "live\n").unwrap();
        assert_eq!(module_kind(t.path(), Some("6.1.0")), ModuleKind::Module);
    }
}
