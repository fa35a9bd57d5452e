//! Collection: what each namespace's table holds, read in the background.
//!
//! [`Exporter::collect`] does one pass (the exporter example calls it
//! every `--interval` on a thread of its own); scrapes only encode what
//! the last passes found ([`Exporter::families`]), so a scrape never waits
//! for the kernel and a slow dump never delays one.
//!
//! Each pass, for every namespace looked at:
//!
//! 1. the namespace file (`ROOT/run/netns/NAME`, `ROOT/proc/PID/ns/net`)
//!    is opened and its inode compared with the one collected before: a
//!    missing file is `netns_gone` (up 0), another inode a new namespace
//!    (its counters start again). The open file is what is entered, so the
//!    namespace checked is the namespace read. No socket is kept open
//!    between passes: a kept socket would keep a deleted namespace alive
//!    and its counters readable, and `up` would lie.
//! 2. the per-CPU counters and the entry count: over ctnetlink
//!    ([`Source::Netlink`], CAP_NET_ADMIN, and CAP_SYS_ADMIN to enter
//!    another namespace) or from `ROOT/proc/PID/net/stat/nf_conntrack`
//!    ([`Source::Proc`], no capability for a namespace with a process;
//!    a named namespace without one must still be entered).
//! 3. every `--dump-every`, for the busiest namespaces only: host facts
//!    read inside the namespace, a streamed dump into top-K hotspots
//!    (netlink only), and the diagnosis.
//!
//! `up` is 1 for a namespace whose counters were read in the last pass,
//! 0 while they cannot be; each failure is counted by kind
//! ([`ErrorKind`]). Ages are measured from the moment data was read,
//! never reset by a failed attempt.

use super::netns::{FoundNetns, NetnsKind, Owner, discover};
use conntrack_analyze::hotspots::{CountMode, HotspotConfig, HotspotSummary, Hotspots};
use conntrack_analyze::rates::{Advance, StatsSeries, WrapAccumulator};
use conntrack_analyze::{Facts, Finding, Observation, diagnose};
#[cfg(test)]
use conntrack_core::CpuStats;
use conntrack_core::host::{HostError, HostFs};
use conntrack_core::{Counter, HostSnapshot, KernelVersion, L3Family, Stats};
use conntrack_netlink::{Conntrack, DumpPolicy, DumpRequest, Error as NlError, Netns};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Findings judge counter rates over this window of passes.
const RATE_WINDOW: Duration = Duration::from_secs(300);

/// Space-Saving capacity per hotspot key: an estimate is never more than
/// flows / 1024 too high, so a key is certified above a share of 5 %
/// whenever its true share is above about 5.1 %.
const TOPK_CAPACITY: usize = 1024;

/// Where counters and counts are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// ctnetlink (CAP_NET_ADMIN): counters, count, max, dumps.
    Netlink,
    /// `/proc/.../net/stat/nf_conntrack` and the sysctls: counters, count
    /// and max; no dumps (no hotspots, no findings that need flows).
    Proc,
}

impl Source {
    /// The `source` label value.
    pub fn name(self) -> &'static str {
        match self {
            Source::Netlink => "netlink",
            Source::Proc => "proc",
        }
    }
}

/// The namespace a single-target exporter looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The exporter's own namespace (`host` label).
    Current,
    /// `ip netns` NAME (`ROOT/run/netns/NAME`).
    Named(String),
    /// The namespace of process PID.
    Pid(u32),
}

/// What to export of the hottest keys of a dump.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotspotPolicy {
    /// Values exported per key at most.
    pub top_k: usize,
    /// A value is exported only when its certified lower bound (estimate
    /// minus error) holds at least this many entries...
    pub min_entries: u64,
    /// ...and at least this share of the namespace's entries (0..=1). At
    /// most `1 / min_share` values per key can pass.
    pub min_share: f64,
}

impl HotspotPolicy {
    /// How a dump is counted for this policy: a bounded count
    /// ([`CountMode::TopK`]) whose tables list only the keys their bounds
    /// prove heaviest, so a flat table exports no value at all.
    pub fn hotspot_config(&self) -> HotspotConfig {
        HotspotConfig::default()
            .with_mode(CountMode::TopK(TOPK_CAPACITY.max(self.top_k * 8)))
            .with_top(self.top_k.max(TOPK_CAPACITY / 8))
    }
}

impl Default for HotspotPolicy {
    fn default() -> Self {
        HotspotPolicy {
            top_k: 10,
            min_entries: 100,
            min_share: 0.05,
        }
    }
}

/// How the exporter collects.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `proc/`, `run/netns/` and the runtimes' state are read (`/`).
    pub root: PathBuf,
    /// `None`: every namespace (`--all-netns`); else one.
    pub target: Option<Target>,
    /// Counters from ctnetlink or `/proc`; `None`: ctnetlink when it
    /// answers, else `/proc`.
    pub source: Option<Source>,
    /// Namespaces with series of their own at most (the rest is summed
    /// under `netns="other"`).
    pub max_netns: usize,
    /// One series per CPU for the per-CPU counters.
    pub per_cpu: bool,
    /// Hotspots from dumps (`None`: no dumps).
    pub hotspots: Option<HotspotPolicy>,
    /// Time between two dumps (and host reads) of a namespace.
    pub dump_every: Duration,
    /// Namespaces dumped per dump round: the ones with the most entries.
    pub dump_busiest: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: PathBuf::from("/"),
            target: Some(Target::Current),
            source: None,
            max_netns: 64,
            per_cpu: true,
            hotspots: Some(HotspotPolicy::default()),
            dump_every: Duration::from_secs(30),
            dump_busiest: 1,
        }
    }
}

/// Why a collection failed (the `kind` label of the error counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The namespace file is gone (namespace deleted, process ended).
    NetnsGone,
    /// Refused: no CAP_NET_ADMIN for ctnetlink, no CAP_SYS_ADMIN to enter.
    Permission,
    /// The kernel dropped dump messages (ENOBUFS): data lost.
    Overrun,
    /// A dump raced with table changes (NLM_F_DUMP_INTR).
    DumpInterrupted,
    /// The kernel did not answer in time.
    Timeout,
    /// Any other netlink error.
    Netlink,
    /// A `/proc` or `/sys` file unreadable or malformed.
    Proc,
}

impl ErrorKind {
    /// Every kind (the error counter exports each, 0 included).
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::NetnsGone,
        ErrorKind::Permission,
        ErrorKind::Overrun,
        ErrorKind::DumpInterrupted,
        ErrorKind::Timeout,
        ErrorKind::Netlink,
        ErrorKind::Proc,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NetnsGone => "netns_gone",
            ErrorKind::Permission => "permission",
            ErrorKind::Overrun => "overrun",
            ErrorKind::DumpInterrupted => "dump_interrupted",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Netlink => "netlink",
            ErrorKind::Proc => "proc",
        }
    }

    /// The kind of a netlink error.
    pub fn of_netlink(e: &NlError) -> ErrorKind {
        match e {
            NlError::NetnsOpen { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NetnsGone
            }
            NlError::Overrun { .. } => ErrorKind::Overrun,
            NlError::DumpInterrupted { .. } => ErrorKind::DumpInterrupted,
            NlError::Timeout { .. } => ErrorKind::Timeout,
            e if e.is_permission_denied() => ErrorKind::Permission,
            NlError::Setns { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                ErrorKind::Permission
            }
            _ => ErrorKind::Netlink,
        }
    }

    /// The kind of a host file error.
    pub fn of_host(e: &HostError) -> ErrorKind {
        match e {
            HostError::NotFound { .. } => ErrorKind::NetnsGone,
            HostError::PermissionDenied { .. } => ErrorKind::Permission,
            _ => ErrorKind::Proc,
        }
    }
}

/// A failed read: its kind and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
}

fn nl_fail(what: &str, e: &NlError) -> Failure {
    Failure {
        kind: ErrorKind::of_netlink(e),
        message: format!("{what}: {e}"),
    }
}

/// One namespace being collected.
#[derive(Debug)]
pub(super) struct NsState {
    pub(super) inode: Option<u64>,
    pub(super) label: String,
    pub(super) kind: NetnsKind,
    pub(super) owner: Owner,
    /// The file to open (None: the exporter's own namespace).
    handle: Option<PathBuf>,
    /// A process in it, for `/proc/PID/net` reads without entering.
    pid: Option<u32>,
    pub(super) up: bool,
    pub(super) last_error: Option<Failure>,
    pub(super) last_ok: Option<Instant>,
    pub(super) entries: Option<u32>,
    /// (cpu, counter) -> accumulated total.
    pub(super) counters: BTreeMap<(u32, Counter), WrapAccumulator>,
    series: StatsSeries,
    t0: Instant,
    pub(super) hotspots: Option<(HotspotSummary, Instant)>,
    pub(super) findings: Vec<Finding>,
    snapshot: Option<HostSnapshot>,
    last_dump: Option<Instant>,
    /// Whether it has series of its own (else it is summed in `other`).
    pub(super) own: bool,
    /// Seen in the last discovery (all-netns).
    seen: bool,
}

impl NsState {
    fn new(label: String, kind: NetnsKind, handle: Option<PathBuf>, pid: Option<u32>) -> Self {
        NsState {
            inode: None,
            label,
            kind,
            owner: Owner::default(),
            handle,
            pid,
            up: false,
            last_error: None,
            last_ok: None,
            entries: None,
            counters: BTreeMap::new(),
            series: StatsSeries::new(),
            t0: Instant::now(),
            hotspots: None,
            findings: Vec::new(),
            snapshot: None,
            last_dump: None,
            own: true,
            seen: true,
        }
    }

    /// Totals over CPUs per counter.
    pub(super) fn totals(&self) -> BTreeMap<Counter, u64> {
        let mut t = BTreeMap::new();
        for (&(_, c), a) in &self.counters {
            *t.entry(c).or_insert(0) += a.total();
        }
        t
    }

    fn forget(&mut self) {
        self.counters.clear();
        self.series = StatsSeries::new();
        self.t0 = Instant::now();
        self.hotspots = None;
        self.findings.clear();
        self.snapshot = None;
        self.entries = None;
        self.last_ok = None;
    }
}

/// Everything the exporter knows; read by scrapes under a lock held for
/// the time it takes to build the families.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) namespaces: Vec<NsState>,
    /// Counters of the namespaces without series of their own: the sum of
    /// their increases while they were in `other` (monotonic).
    pub(super) other_counters: BTreeMap<Counter, u64>,
    pub(super) other_entries: u64,
    pub(super) other_members: usize,
    pub(super) discovered: usize,
    pub(super) unreadable_pids: usize,
    pub(super) max: Option<u32>,
    pub(super) buckets: Option<u32>,
    pub(super) base_snapshot: HostSnapshot,
    pub(super) errors: BTreeMap<ErrorKind, u64>,
    pub(super) passes: u64,
    pub(super) dumps: u64,
    pub(super) counter_resets: u64,
    pub(super) last_pass_secs: f64,
    pub(super) last_dump_secs: f64,
    pub(super) last_pass: Option<Instant>,
}

/// The exporter: configuration, what collection found, and the families
/// built from it.
#[derive(Debug)]
pub struct Exporter {
    pub(super) cfg: Config,
    pub(super) source: Source,
    pub(super) kernel: Option<KernelVersion>,
    pub(super) notes: Vec<String>,
    pub(super) inner: Mutex<Inner>,
    /// Traced drops counted by reason (`--trace`).
    #[cfg(feature = "trace")]
    pub(super) drops: Option<super::drops::TracedDrops>,
}

/// What a namespace read returned.
struct Read {
    inode: Option<u64>,
    stats: Stats,
}

impl Exporter {
    /// An exporter for `cfg`. Decides the source: with `cfg.source` unset,
    /// ctnetlink when a statistics request in the exporter's own namespace
    /// succeeds, else `/proc` (with a note of what is missing). Nothing is
    /// collected yet: call [`Exporter::collect`].
    pub fn new(cfg: Config) -> Exporter {
        let mut notes = Vec::new();
        let source = match cfg.source {
            Some(s) => s,
            None => match Conntrack::open().and_then(|mut c| c.stats()) {
                Ok(_) => Source::Netlink,
                Err(e) => {
                    notes.push(format!(
                        "ctnetlink unavailable ({e}): counters, count and max are read from \
                         /proc; no dumps, so no hotspots and no findings that need the flows \
                         (grant CAP_NET_ADMIN for them)"
                    ));
                    Source::Proc
                }
            },
        };
        if source == Source::Proc && cfg.hotspots.is_some() && cfg.source == Some(Source::Proc) {
            notes.push("source /proc: no dumps, so no hotspots".into());
        }
        let fs = HostFs::new(&cfg.root);
        let kernel = fs.read_kernel_release().ok().map(|(_, v)| v);
        let mut namespaces = Vec::new();
        if let Some(t) = &cfg.target {
            let root = &cfg.root;
            let (label, kind, handle, pid) = match t {
                Target::Current => ("host".to_string(), NetnsKind::Host, None, None),
                Target::Named(n) => (
                    n.clone(),
                    NetnsKind::Named,
                    Some(root.join("run/netns").join(n)),
                    None,
                ),
                Target::Pid(p) => (
                    format!("pid/{p}"),
                    NetnsKind::Anonymous,
                    Some(root.join(format!("proc/{p}/ns/net"))),
                    Some(*p),
                ),
            };
            namespaces.push(NsState::new(label, kind, handle, pid));
        }
        Exporter {
            cfg,
            source,
            kernel,
            notes,
            inner: Mutex::new(Inner {
                namespaces,
                other_counters: BTreeMap::new(),
                other_entries: 0,
                other_members: 0,
                discovered: 0,
                unreadable_pids: 0,
                max: None,
                buckets: None,
                base_snapshot: HostSnapshot::default(),
                errors: ErrorKind::ALL.iter().map(|&k| (k, 0)).collect(),
                passes: 0,
                dumps: 0,
                counter_resets: 0,
                last_pass_secs: 0.0,
                last_dump_secs: 0.0,
                last_pass: None,
            }),
            #[cfg(feature = "trace")]
            drops: None,
        }
    }

    /// Exports `drops` too: `conntrack_drops_traced_total{netns,reason}`
    /// ([`super::drops`]) and `conntrack_exporter_feature{feature="trace"}`.
    #[cfg(feature = "trace")]
    pub fn with_traced_drops(mut self, drops: super::drops::TracedDrops) -> Exporter {
        self.drops = Some(drops);
        self
    }

    /// The source chosen.
    pub fn source(&self) -> Source {
        self.source
    }

    /// What is missing and why (no CAP_NET_ADMIN, ...), for the log and
    /// `/healthz`.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Health: `Ok` when the last pass read at least one namespace and
    /// happened within `stale` (the exporter's own liveness, for
    /// `/healthz`), else why not.
    pub fn health(&self, stale: Duration) -> Result<String, String> {
        let st = self.lock();
        let Some(t) = st.last_pass else {
            return Err("no collection pass yet".into());
        };
        if t.elapsed() > stale {
            return Err(format!(
                "last collection pass {:.0}s ago",
                t.elapsed().as_secs_f64()
            ));
        }
        let up = st.namespaces.iter().filter(|n| n.up).count();
        let down: Vec<String> = st
            .namespaces
            .iter()
            .filter(|n| !n.up)
            .map(|n| {
                format!(
                    "{}: {}",
                    n.label,
                    n.last_error.as_ref().map_or("not read yet", |e| &e.message)
                )
            })
            .collect();
        let mut text = format!("ok: {up} namespace(s) up, source {}", self.source.name());
        for d in &down {
            text.push_str(&format!("\ndown: {d}"));
        }
        for n in &self.notes {
            text.push_str(&format!("\nnote: {n}"));
        }
        if up == 0 {
            return Err(text);
        }
        Ok(text)
    }

    /// One collection pass (see the module documentation). Blocking: run
    /// it on a thread of its own, never on a scrape.
    pub fn collect(&self) {
        let t = Instant::now();
        let fs = HostFs::new(&self.cfg.root);
        let max = fs.read_max().ok();
        let buckets = fs.read_buckets().ok();
        if self.cfg.target.is_none() {
            self.rediscover();
        }
        // Read every namespace without holding the lock.
        let jobs: Vec<(usize, Option<PathBuf>, Option<u32>)> = {
            let st = self.lock();
            st.namespaces
                .iter()
                .enumerate()
                .map(|(i, n)| (i, n.handle.clone(), n.pid))
                .collect()
        };
        let results: Vec<(usize, Result<Read, Failure>)> = jobs
            .into_iter()
            .map(|(i, h, pid)| (i, self.read_one(h.as_ref(), pid)))
            .collect();
        let now = Instant::now();
        let mut st = self.lock();
        st.max = max.or(st.max);
        st.buckets = buckets.or(st.buckets);
        let mut other_delta: BTreeMap<Counter, u64> = BTreeMap::new();
        for (i, r) in results {
            let (own, counted) = {
                let n = &mut st.namespaces[i];
                match r {
                    Ok(read) => {
                        if n.inode.is_some() && read.inode != n.inode {
                            // Same name, another namespace: start again.
                            n.forget();
                        }
                        n.inode = read.inode.or(n.inode);
                        let (deltas, resets) = apply(n, &read.stats, now);
                        n.up = true;
                        n.last_error = None;
                        n.last_ok = Some(now);
                        n.entries = read.stats.entries;
                        (n.own, Some((deltas, resets)))
                    }
                    Err(f) => {
                        if f.kind == ErrorKind::NetnsGone {
                            n.forget();
                        }
                        n.up = false;
                        n.last_error = Some(f);
                        (n.own, None)
                    }
                }
            };
            match counted {
                Some((deltas, resets)) => {
                    st.counter_resets += resets;
                    if !own {
                        for (c, d) in deltas {
                            *other_delta.entry(c).or_insert(0) += d;
                        }
                    }
                }
                None => {
                    let kind = st.namespaces[i].last_error.as_ref().map(|f| f.kind);
                    if let Some(k) = kind {
                        *st.errors.entry(k).or_insert(0) += 1;
                    }
                }
            }
        }
        for (c, d) in other_delta {
            *st.other_counters.entry(c).or_insert(0) += d;
        }
        st.other_entries = st
            .namespaces
            .iter()
            .filter(|n| !n.own && n.up)
            .map(|n| u64::from(n.entries.unwrap_or(0)))
            .sum();
        st.other_members = st.namespaces.iter().filter(|n| !n.own).count();
        // Which namespaces are due for a dump: the busiest.
        let mut order: Vec<usize> = (0..st.namespaces.len())
            .filter(|&i| st.namespaces[i].up && st.namespaces[i].own)
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(st.namespaces[i].entries.unwrap_or(0)));
        let every = self.cfg.dump_every;
        let due: Vec<(usize, Option<PathBuf>, Option<u32>)> = order
            .into_iter()
            .take(self.cfg.dump_busiest.max(1))
            .filter(|&i| {
                st.namespaces[i]
                    .last_dump
                    .is_none_or(|t| now.duration_since(t) >= every)
            })
            .map(|i| {
                let n = &st.namespaces[i];
                (i, n.handle.clone(), n.pid)
            })
            .collect();
        let need_base = st.passes == 0 || !due.is_empty();
        drop(st);

        let base = need_base.then(|| fs.read_snapshot().snapshot);
        let mut dumped = Vec::new();
        for (i, h, pid) in due {
            let t = Instant::now();
            let r = self.dump_one(h.as_ref(), pid);
            dumped.push((i, t, r, t.elapsed().as_secs_f64()));
        }

        let mut st = self.lock();
        if let Some(b) = base {
            st.base_snapshot = b;
        }
        for (i, started, r, secs) in dumped {
            st.last_dump_secs = secs;
            let res = match r {
                Ok((snap, hot)) => {
                    if hot.is_some() {
                        st.dumps += 1;
                    }
                    Ok((snap, hot))
                }
                Err(f) => {
                    *st.errors.entry(f.kind).or_insert(0) += 1;
                    Err(f)
                }
            };
            let n = &mut st.namespaces[i];
            n.last_dump = Some(started);
            if let Ok((snap, hot)) = res {
                n.snapshot = Some(snap);
                if let Some(h) = hot {
                    n.hotspots = Some((h, started));
                }
            }
        }
        // Findings, for the namespaces with host facts of their own (read
        // with their dump), and for the single target or the host's
        // namespace from the host's facts: other namespaces would only
        // repeat the host-wide findings.
        let (max_now, base) = (st.max, st.base_snapshot.clone());
        let single = self.cfg.target.is_some();
        for n in st.namespaces.iter_mut().filter(|n| n.up && n.own) {
            let fallback = single || n.kind == NetnsKind::Host;
            let Some(mut snap) = n
                .snapshot
                .clone()
                .or_else(|| fallback.then(|| base.clone()))
            else {
                n.findings.clear();
                continue;
            };
            snap.count = n.entries;
            if max_now.is_some() {
                snap.max = max_now;
            }
            snap.stats = n.series.samples().last().map(|s| s.stats.clone());
            let rates = n.series.rates();
            let mut obs = Observation::new(snap);
            if rates.window.used_intervals > 0 {
                obs = obs.with_rates(rates);
            }
            if let Some((h, _)) = &n.hotspots {
                obs = obs.with_hotspots(h.clone());
            }
            n.findings = diagnose(&Facts::derive(&obs));
        }
        st.passes += 1;
        st.last_pass = Some(Instant::now());
        st.last_pass_secs = t.elapsed().as_secs_f64();
    }

    /// Discovery (all-netns): adds new namespaces, drops vanished ones,
    /// and gives series of their own to at most `max_netns` of them (the
    /// host's first, then those that had them, then by entries).
    fn rediscover(&self) {
        let d = discover(&self.cfg.root);
        let mut st = self.lock();
        st.discovered = d.namespaces.len();
        st.unreadable_pids = d.unreadable_pids;
        let mut by_ino: HashMap<u64, usize> = HashMap::new();
        for (i, n) in st.namespaces.iter_mut().enumerate() {
            n.seen = false;
            if let Some(ino) = n.inode {
                by_ino.insert(ino, i);
            }
        }
        for f in d.namespaces {
            let FoundNetns {
                inode,
                kind,
                label,
                pids,
                owner,
                handle,
                ..
            } = f;
            match by_ino.get(&inode) {
                Some(&i) => {
                    let n = &mut st.namespaces[i];
                    n.seen = true;
                    n.label = label;
                    n.kind = kind;
                    n.owner = owner;
                    n.handle = Some(handle);
                    n.pid = pids.first().copied();
                }
                None => {
                    let mut n = NsState::new(label, kind, Some(handle), pids.first().copied());
                    n.inode = Some(inode);
                    n.owner = owner;
                    n.own = false;
                    st.namespaces.push(n);
                }
            }
        }
        st.namespaces.retain(|n| n.seen);
        // Slots: keep those who have one, fill the free ones by priority.
        let cap = self.cfg.max_netns.max(1);
        let mut holders = st.namespaces.iter().filter(|n| n.own).count();
        if holders > cap {
            for n in st.namespaces.iter_mut().rev().filter(|n| n.own) {
                if holders <= cap {
                    break;
                }
                n.own = false;
                holders -= 1;
            }
        }
        let mut waiting: Vec<usize> = (0..st.namespaces.len())
            .filter(|&i| !st.namespaces[i].own)
            .collect();
        waiting.sort_by_key(|&i| {
            let n = &st.namespaces[i];
            (
                n.kind != NetnsKind::Host,
                n.kind != NetnsKind::Named,
                std::cmp::Reverse(n.entries.unwrap_or(0)),
                n.label.clone(),
            )
        });
        for i in waiting.into_iter().take(cap.saturating_sub(holders)) {
            st.namespaces[i].own = true;
        }
        st.namespaces.sort_by(|a, b| {
            (a.kind != NetnsKind::Host, &a.label).cmp(&(b.kind != NetnsKind::Host, &b.label))
        });
    }

    /// Reads one namespace's counters and count.
    fn read_one(&self, handle: Option<&PathBuf>, pid: Option<u32>) -> Result<Read, Failure> {
        let root = &self.cfg.root;
        // The namespace file, opened once: what is checked is what is read.
        let file = match handle {
            None => None,
            Some(h) => Some(File::open(h).map_err(|e| Failure {
                kind: if e.kind() == std::io::ErrorKind::NotFound {
                    ErrorKind::NetnsGone
                } else if e.kind() == std::io::ErrorKind::PermissionDenied {
                    ErrorKind::Permission
                } else {
                    ErrorKind::Proc
                },
                message: format!("open {}: {e}", h.display()),
            })?),
        };
        let inode = match &file {
            Some(f) => f.metadata().ok().map(|m| m.ino()),
            None => std::fs::metadata("/proc/thread-self/ns/net")
                .ok()
                .map(|m| m.ino()),
        };
        let netns = match &file {
            None => Netns::Current,
            Some(f) => Netns::Path(PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))),
        };
        let mut stats = match self.source {
            Source::Netlink => netns
                .run(|| Conntrack::open()?.stats())
                .map_err(|e| nl_fail("read statistics", &e))?,
            Source::Proc => {
                let read = |fs: HostFs| fs.read_stats();
                let r = match (pid, &file) {
                    (Some(p), _) => read(HostFs::new(root).for_pid(p)),
                    (None, None) => read(HostFs::new(root)),
                    (None, Some(_)) => netns
                        .run(|| Ok(read(HostFs::new(root).for_current_thread())))
                        .map_err(|e| nl_fail("enter the namespace", &e))?,
                };
                let mut s = r.map_err(|e| Failure {
                    kind: ErrorKind::of_host(&e),
                    message: e.to_string(),
                })?;
                // The rows are the possible CPUs in order.
                if let Ok(cpus) = HostFs::new(root).read_cpus_possible()
                    && cpus.len() == s.cpus.len()
                {
                    for (c, id) in s.cpus.iter_mut().zip(cpus) {
                        c.cpu = Some(id);
                    }
                }
                // A PID read: check that the process is still in the
                // namespace that was opened (PIDs are reused).
                if let (Some(p), Some(ino)) = (pid, inode) {
                    let now = std::fs::metadata(root.join(format!("proc/{p}/ns/net")))
                        .ok()
                        .map(|m| m.ino());
                    if now != Some(ino) {
                        return Err(Failure {
                            kind: ErrorKind::NetnsGone,
                            message: format!("process {p} left the namespace"),
                        });
                    }
                }
                s
            }
        };
        for (i, c) in stats.cpus.iter_mut().enumerate() {
            c.cpu.get_or_insert(i as u32);
        }
        Ok(Read { inode, stats })
    }

    /// Host facts read inside a namespace and, with ctnetlink and
    /// hotspots on, a streamed dump of its table.
    fn dump_one(
        &self,
        handle: Option<&PathBuf>,
        pid: Option<u32>,
    ) -> Result<(HostSnapshot, Option<HotspotSummary>), Failure> {
        let root = self.cfg.root.clone();
        let file = match handle {
            None => None,
            Some(h) => Some(File::open(h).map_err(|e| Failure {
                kind: ErrorKind::NetnsGone,
                message: format!("open {}: {e}", h.display()),
            })?),
        };
        let netns = match &file {
            None => Netns::Current,
            Some(f) => Netns::Path(PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()))),
        };
        let policy = self.cfg.hotspots;
        match self.source {
            Source::Netlink => netns
                .run(|| {
                    let snap = HostFs::new(&root).for_current_thread().read_snapshot();
                    let hot = match policy {
                        None => None,
                        Some(p) => {
                            let cfg = p.hotspot_config();
                            let req =
                                DumpRequest::table(L3Family::UNSPEC).policy(DumpPolicy::Accept);
                            let mut ct = Conntrack::open()?;
                            let (h, _) =
                                ct.fold(&req, || Hotspots::new(cfg.clone()), |h, f| h.add(f))?;
                            Some(h.summary())
                        }
                    };
                    Ok((snap.snapshot, hot))
                })
                .map_err(|e| nl_fail("dump", &e)),
            Source::Proc => {
                let snap = match (pid, &file) {
                    (Some(p), _) => HostFs::new(&root).for_pid(p).read_snapshot(),
                    (None, None) => HostFs::new(&root).read_snapshot(),
                    (None, Some(_)) => netns
                        .run(|| Ok(HostFs::new(&root).for_current_thread().read_snapshot()))
                        .map_err(|e| nl_fail("enter the namespace", &e))?,
                };
                Ok((snap.snapshot, None))
            }
        }
    }
}

/// Applies one read to a namespace's accumulators: the summed increases
/// per counter, and how many counters went backwards (reset).
fn apply(n: &mut NsState, stats: &Stats, now: Instant) -> (BTreeMap<Counter, u64>, u64) {
    let mut deltas = BTreeMap::new();
    let mut resets = 0;
    for cpu in &stats.cpus {
        let id = cpu.cpu.unwrap_or(0);
        for (c, raw) in cpu.iter() {
            match n.counters.get_mut(&(id, c)) {
                None => {
                    n.counters.insert((id, c), WrapAccumulator::new(raw));
                }
                Some(a) => match a.observe(raw) {
                    Advance::By(d) => *deltas.entry(c).or_insert(0) += d,
                    Advance::Reset => {
                        resets += 1;
                        *deltas.entry(c).or_insert(0) += u64::from(raw);
                    }
                },
            }
        }
    }
    let present: Vec<u32> = stats.cpus.iter().map(|c| c.cpu.unwrap_or(0)).collect();
    n.counters.retain(|(id, _), _| present.contains(id));
    let at = now.duration_since(n.t0) + Duration::from_nanos(1);
    if n.series.push(at, stats.clone()).is_ok() {
        n.series.keep_within(RATE_WINDOW);
    }
    (deltas, resets)
}

/// A read of `/proc` rows for tests: CPU ids given.
#[cfg(test)]
pub(super) fn stats_of(entries: u32, rows: &[&[(Counter, u32)]]) -> Stats {
    Stats::new(
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                let mut c = CpuStats::for_cpu(i as u32);
                for &(k, v) in *r {
                    c.set(k, v);
                }
                c
            })
            .collect(),
    )
    .with_entries(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulators_follow_wraps_and_resets() {
        let mut n = NsState::new("x".into(), NetnsKind::Named, None, None);
        let now = Instant::now();
        let s = |v| stats_of(1, &[&[(Counter::Drop, v)], &[(Counter::Drop, 1)]]);
        apply(&mut n, &s(u32::MAX - 1), now);
        let (d, r) = apply(&mut n, &s(3), now + Duration::from_secs(1));
        assert_eq!((d[&Counter::Drop], r), (5, 0));
        assert_eq!(n.totals()[&Counter::Drop], u64::from(u32::MAX) + 4 + 1);
        let (d, r) = apply(&mut n, &s(1 << 31), now + Duration::from_secs(2));
        assert_eq!(r, 0, "a jump under 2^31 is an increase");
        assert!(d[&Counter::Drop] > 0);
        let (_, r) = apply(&mut n, &s(5), now + Duration::from_secs(3));
        assert_eq!(r, 1, "going back by more than a wrap is a reset");
    }

    #[test]
    fn error_kinds() {
        let gone = NlError::NetnsOpen {
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(ErrorKind::of_netlink(&gone), ErrorKind::NetnsGone);
        let setns = NlError::Setns {
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(libc_eperm()),
        };
        assert_eq!(ErrorKind::of_netlink(&setns), ErrorKind::Permission);
        let names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), 7);
    }

    fn libc_eperm() -> i32 {
        1
    }
}
