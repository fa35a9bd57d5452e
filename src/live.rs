//! Live collection: everything doctor reads from a kernel table, gathered
//! into an [`Observation`] that `conntrack_tune::report::Report::build`
//! (or `conntrack_analyze::diagnose`) judges.
//!
//! It lives in the facade because it joins ctnetlink (netlink) and the
//! aggregations (analyze); analyze itself stays offline. A capture
//! directory is read by `conntrack_analyze::capture::load` instead.
//!
//! 1. Host facts with `HostFs::for_current_thread`, read on a thread in
//!    the target namespace (`Netns::run`; for this host, the calling
//!    thread): `/proc/sys/net` shows the namespace of the thread that opens
//!    it, and the thread view reads the namespace's `stat/nf_conntrack` and
//!    `ns/net` through `/proc/thread-self` too.
//! 2. Statistics sample 0: ctnetlink (per-CPU counters, count, max), or
//!    `/proc/net/stat/nf_conntrack` when ctnetlink fails. Without
//!    CAP_NET_ADMIN (this host only: another namespace needs CAP_SYS_ADMIN
//!    to enter) the rest of the collection is what `/proc` shows: counters,
//!    rates, sizing and host facts; the observation says what the dump
//!    would have added ([`Unread`]).
//! 3. Who could own the flows: the namespace's sockets (`/proc/net/tcp`
//!    and friends, read one line at a time), the sockets of the other
//!    namespaces the host's processes are in (containers and pods whose
//!    traffic the target routes and translates, through `/proc/PID/net`),
//!    the target's addresses (to tell forwarded flows apart), and the
//!    processes holding socket inodes (`/proc/PID/fd`, `/proc/PID/cgroup`).
//! 4. One streaming dump, each flow counted into bounded hotspot tables
//!    (`HotspotConfig::bounded`: exact up to 4,096 keys per kind, then
//!    certified top-K), by owner (`OwnerCounter`), and into a sampled
//!    keyed-hash simulation of the bucket chains
//!    (`ChainSimulator::sampled`). Memory is bounded whatever the table's
//!    size.
//! 5. Statistics sample 1 when the window has passed since sample 0 (the
//!    dump's time counts towards the window).
//! 6. The NAT rules of the target namespace (`nft list ruleset`, else
//!    `iptables-save -t nat`, run on a thread inside it), parsed by
//!    `conntrack_core::nat_rules`, so that the judgment of confirm-time
//!    failures can say whether SNAT picks ports fully at random.
//!
//! ```no_run
//! use conntrack_kit::live::{LiveOptions, LiveTarget, collect};
//! use std::time::Duration;
//! // Needs CAP_NET_ADMIN for the dump; without it, what /proc shows.
//! let c = collect(&LiveTarget::Host, &LiveOptions::default().with_window(Duration::from_secs(3)))?;
//! for note in &c.notes {
//!     eprintln!("note: {note}");
//! }
//! println!("{:?} entries", c.observation.snapshot.count);
//! # Ok::<(), conntrack_kit::live::LiveError>(())
//! ```

use crate::analyze::attribution::{
    AttributionSummary, LocalAddrs, MAX_SOCKET_FILE_BYTES, OwnerCounter, ProcReader,
    ProcessNamespace, SocketTable,
};
use crate::analyze::buckets::{ChainSimulator, SAMPLED_BUCKETS, SimulatedChains};
use crate::analyze::capture::SIMULATION_SEED;
use crate::analyze::hotspots::{HotspotConfig, HotspotSummary, Hotspots};
use crate::analyze::rates::StatsSeries;
use crate::analyze::{Observation, Unread};
use crate::ct_core::host::{HostError, HostFs};
use crate::ct_core::nat_rules::NatRules;
use crate::ct_core::{HostSnapshot, L3Family, Stats};
use crate::netlink::{Conntrack, DumpRequest, Error as NlError, Netns};
use std::path::Path;
use std::time::{Duration, Instant};

/// The kernel table looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveTarget {
    /// The caller's network namespace (its configuration files are read
    /// too: `/etc/sysctl.d`, `/etc/modprobe.d`).
    Host,
    /// Another network namespace, such as `Netns::named("blue")` (module
    /// facts are the kernel's; configuration files are not its own).
    Namespace(Netns),
    /// The network namespace of a process: its `/proc/PID/net` files are
    /// read without entering it.
    Process(u32),
}

impl LiveTarget {
    /// The namespace to open sockets in.
    pub fn netns(&self) -> Netns {
        match self {
            LiveTarget::Host => Netns::Current,
            LiveTarget::Namespace(n) => n.clone(),
            LiveTarget::Process(p) => Netns::pid(*p),
        }
    }

    /// Runs `read` with a [`HostFs`] whose `net_path` names the target
    /// namespace's `/proc/net` files: `/proc/PID/net` for a process (no
    /// namespace switch, so no CAP_SYS_ADMIN), otherwise on a thread in
    /// the namespace through `/proc/thread-self/net` (for this host, on
    /// the calling thread). `/proc/net` itself would be the main thread's
    /// namespace.
    pub fn with_net_files<T: Send>(
        &self,
        read: impl FnOnce(&HostFs) -> T + Send,
    ) -> Result<T, NlError> {
        match self {
            LiveTarget::Process(pid) => Ok(read(&HostFs::new("/").for_pid(*pid))),
            _ => self
                .netns()
                .run(|| Ok(read(&HostFs::new("/").for_current_thread()))),
        }
    }
}

/// How to collect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LiveOptions {
    /// Time between the two statistics samples that give rates (zero: one
    /// sample, counters since boot only). Default 3 s.
    pub window: Duration,
    /// Rows kept per hotspot key. Default 10.
    pub top: usize,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            window: Duration::from_secs(3),
            top: 10,
        }
    }
}

impl LiveOptions {
    /// With this window between the statistics samples.
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// With this many rows per hotspot key.
    pub fn with_top(mut self, top: usize) -> Self {
        self.top = top;
        self
    }
}

/// Where the dump is: flows counted so far, and the count the statistics
/// announced (`None` when unknown). Called with 0 flows when the dump
/// starts (and again when it restarts), then every 4,096 flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpProgress {
    /// Flows counted so far in this pass.
    pub flows: u64,
    /// The table's entry count before the dump, if known.
    pub expected: Option<u64>,
}

/// What a live collection produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LiveCollection {
    /// Everything observed, for the analysis.
    pub observation: Observation,
    /// What could not be read, and other remarks, one sentence each.
    pub notes: Vec<String>,
    /// Where the statistics came from (ctnetlink, or `/proc` and why).
    pub stats_source: Option<String>,
}

/// Why nothing could be collected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// This kernel has no conntrack (`nf_conntrack_max` does not exist).
    #[error(
        "conntrack is not available on this host: /proc/sys/net/netfilter/nf_conntrack_max \
         does not exist (nf_conntrack is not loaded or not built)"
    )]
    NoConntrack,
    /// Without CAP_NET_ADMIN nothing could be read: not the dump, not
    /// `/proc/net/stat/nf_conntrack`, not the count or the maximum.
    #[error(
        "no privileges to dump the table (ctnetlink needs CAP_NET_ADMIN), and neither \
         /proc/net/stat/nf_conntrack nor nf_conntrack_count/max could be read"
    )]
    NothingReadable,
    /// A ctnetlink or namespace step failed.
    #[error("{what}: {source}")]
    Netlink {
        /// The step, such as "open ctnetlink".
        what: &'static str,
        /// The error.
        #[source]
        source: NlError,
    },
    /// Neither ctnetlink nor `/proc` gave a statistics sample.
    #[error("cannot read statistics: ctnetlink: {netlink}; /proc: {proc}")]
    Stats {
        /// Why ctnetlink failed.
        netlink: NlError,
        /// Why `/proc/net/stat/nf_conntrack` failed.
        proc: String,
    },
}

impl LiveError {
    /// The netlink error underneath, if any (for privilege checks).
    pub fn netlink(&self) -> Option<&NlError> {
        match self {
            LiveError::Netlink { source, .. } => Some(source),
            LiveError::Stats { netlink, .. } => Some(netlink),
            _ => None,
        }
    }
}

fn step(what: &'static str) -> impl FnOnce(NlError) -> LiveError {
    move |source| LiveError::Netlink { what, source }
}

/// Whether this kernel has conntrack at all (the global sysctl exists).
pub fn conntrack_present() -> bool {
    Path::new("/proc/sys/net/netfilter/nf_conntrack_max").exists()
}

/// Collects everything from a live table (see the module's steps).
pub fn collect(target: &LiveTarget, opts: &LiveOptions) -> Result<LiveCollection, LiveError> {
    collect_with_progress(target, opts, |_| {})
}

/// [`collect`], calling `progress` as the dump advances (for a progress
/// bar).
pub fn collect_with_progress(
    target: &LiveTarget,
    opts: &LiveOptions,
    mut progress: impl FnMut(DumpProgress),
) -> Result<LiveCollection, LiveError> {
    if !conntrack_present() {
        return Err(LiveError::NoConntrack);
    }
    let netns = target.netns();
    let mut ct = Conntrack::open_in(&netns).map_err(step("open ctnetlink"))?;

    let (snapshot, mut notes) = host_snapshot(target, &netns)?;
    let t0 = Instant::now();
    let (stats0, stats_source, privileged) = sample_stats(&mut ct, target, &netns)?;
    let mut series = StatsSeries::new();
    if let Some(s) = &stats0 {
        let _ = series.push(Duration::ZERO, s.clone());
    }
    if !privileged && stats0.is_none() && snapshot.count.is_none() && snapshot.max.is_none() {
        return Err(LiveError::NothingReadable);
    }

    let mut unread = Vec::new();
    let mut flows = None;
    if privileged {
        let expected = stats0
            .as_ref()
            .and_then(|s| s.entries)
            .or(snapshot.count)
            .map(u64::from);
        let (sockets, owner_notes) = owner_tables(target);
        notes.extend(owner_notes);
        flows = Some(dump(
            &mut ct,
            &snapshot,
            sockets.as_ref(),
            opts.top,
            |flows| progress(DumpProgress { flows, expected }),
        )?);
    } else {
        unread.push(Unread {
            what: "the table's entries (a ctnetlink dump)".into(),
            needs: "CAP_NET_ADMIN (run as root)".into(),
            missing: vec![
                "what the table holds (protocols, states, NAT, DNS)".into(),
                "hotspots (top sources, destinations, ports)".into(),
                "who owns the flows (processes, containers)".into(),
                "the simulated bucket chains".into(),
                "the findings and answers that rest on them".into(),
            ],
        });
    }

    let mut last = stats0;
    if !opts.window.is_zero() {
        let elapsed = t0.elapsed();
        if elapsed < opts.window {
            std::thread::sleep(opts.window - elapsed);
        }
        let (s1, _, _) = sample_stats(&mut ct, target, &netns)?;
        if let Some(s1) = s1 {
            let _ = series.push(t0.elapsed(), s1.clone());
            last = Some(s1);
        }
    } else {
        notes.push("--window 0: one statistics sample, no rates (counters since boot only)".into());
    }

    let mut snapshot = snapshot;
    if let Some(last) = last {
        // The latest netlink figures are the namespace's own.
        if let Some(e) = last.entries {
            snapshot.count = Some(e);
        }
        if snapshot.max.is_none() {
            snapshot.max = last.max_entries;
        }
        snapshot.stats = Some(last);
    }
    // Configuration files are the host's: read them for this host; module
    // facts belong to the kernel, so another namespace still gets those.
    let fs = HostFs::new("/");
    let mut config = match target {
        LiveTarget::Host => fs.read_config(&snapshot),
        _ => fs.read_module_config(&snapshot),
    };
    let (hotspots, chains, owners) = match flows {
        Some(f) => {
            notes.extend(f.notes);
            (Some(f.hotspots), f.chains, f.owners)
        }
        None => (None, None, None),
    };
    match nat_rules(&netns) {
        Some(r) => config.nat_rules = Some(r),
        None => notes.push(
            "NAT rules not read (neither `nft list ruleset` nor `iptables-save -t nat` ran in \
             the target namespace)"
                .into(),
        ),
    }
    let mut observation = Observation::new(snapshot)
        .with_config(config)
        .with_chains(chains)
        .with_owners(owners)
        .with_unread(unread);
    if let Some(h) = hotspots {
        observation = observation.with_hotspots(h);
    }
    if series.len() >= 2 {
        observation = observation.with_rates(series.rates());
    }
    Ok(LiveCollection {
        observation,
        notes,
        stats_source,
    })
}

/// What attributes a target's flows to processes: the sockets that can be
/// their ends, indexed with their owning processes, and the target's
/// addresses (`None` when unread: then forwarded flows cannot be told
/// from local ones). Count flows with
/// `conntrack_analyze::attribution::OwnerCounter::new(&t.sockets, t.local.as_ref())`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OwnerTables {
    /// The target's sockets and its neighbours' (see [`owner_tables`]).
    pub sockets: SocketTable,
    /// The target namespace's addresses.
    pub local: Option<LocalAddrs>,
}

/// Reads what [`OwnerTables`] holds for a target: the host's processes and
/// their socket inodes (`/proc/PID/fd`, `/proc/PID/cgroup`), the target
/// namespace's sockets (`/proc/net/tcp` and friends, one bounded line at
/// a time), the sockets of the other namespaces those processes are in
/// (containers, pods: `/proc/PID/net`), and the target's addresses.
/// `None` (and a note) when the sockets could not be read; the notes say
/// what is incomplete.
pub fn owner_tables(target: &LiveTarget) -> (Option<OwnerTables>, Vec<String>) {
    let mut notes = Vec::new();
    // Socket inodes are global: the host's processes, whatever namespace
    // their sockets are in.
    let owners = match ProcReader::host().owner_index() {
        Ok(o) => o,
        Err(e) => {
            notes.push(format!("owners of the flows not read: {e}"));
            return (None, notes);
        }
    };
    if owners.unreadable_processes() > 0 {
        notes.push(format!(
            "the sockets of {} processes could not be listed (/proc/PID/fd): their flows count \
             as owner unknown",
            owners.unreadable_processes()
        ));
    }
    let neighbours = owners.namespaces().to_vec();
    let read = target.with_net_files(move |fs| {
        let mut t = SocketTable::with_owners(owners);
        let sockets = t.read_sockets(fs).map(|whole| (t, whole));
        let local = ProcReader::from_host_fs(fs.clone()).local_addrs();
        (sockets, local, fs.read_netns_inode().ok())
    });
    let (mut t, whole, local, own_netns) = match read {
        Ok((Ok((t, whole)), local, own)) => (t, whole, local, own),
        Ok((Err(e), _, _)) => {
            notes.push(format!("owners of the flows not read: {e}"));
            return (None, notes);
        }
        Err(e) => {
            notes.push(format!("owners of the flows not read: {e}"));
            return (None, notes);
        }
    };
    let whole = whole & read_neighbours(&mut t, &neighbours, own_netns, &mut notes);
    if !whole {
        notes.push(format!(
            "the namespace's socket tables are larger than what is read of them ({} MiB each): \
             some flows count as without a socket",
            MAX_SOCKET_FILE_BYTES >> 20
        ));
    }
    let local = match local {
        Ok(l) => {
            if !l.complete() {
                notes.push(
                    "the namespace's routing table is larger than what is read of it: some flows \
                     to local addresses may count as forwarded"
                        .into(),
                );
            }
            Some(l)
        }
        Err(e) => {
            notes.push(format!(
                "the namespace's addresses were not read ({e}): forwarded flows count as without \
                 a socket"
            ));
            None
        }
    };
    (Some(OwnerTables { sockets: t, local }), notes)
}

/// Indexes the sockets of the other network namespaces the host's
/// processes are in (containers, pods), read through `/proc/PID/net`
/// without entering them, so that the flows the target routes for them
/// count under their processes. Without the target's own inode nothing is
/// read (its sockets would count twice). Returns whether every file was
/// read whole; a namespace whose files cannot be read (its process
/// exited) is skipped and counted in a note.
fn read_neighbours(
    t: &mut SocketTable,
    namespaces: &[ProcessNamespace],
    own: Option<u64>,
    notes: &mut Vec<String>,
) -> bool {
    let Some(own) = own else {
        notes.push(
            "the target's namespace inode was not read: the sockets of other namespaces \
             (containers) are left out of the owners"
                .into(),
        );
        return true;
    };
    let (mut whole, mut failed) = (true, 0);
    for ns in namespaces.iter().filter(|n| n.inode != own) {
        match t.read_neighbour_sockets(&HostFs::new("/").for_pid(ns.pid)) {
            Ok(w) => whole &= w,
            Err(_) => failed += 1,
        }
    }
    if failed > 0 {
        notes.push(format!(
            "the sockets of {failed} other network namespaces could not be read (their \
             processes exited?): flows routed for them may count as forwarded"
        ));
    }
    whole
}

/// The target namespace's NAT rules: `nft list ruleset` (which also shows
/// iptables-nft rules), else `iptables-save -t nat` (legacy iptables).
/// The commands run on a thread inside the namespace, so they see its
/// ruleset; `None` when neither ran.
fn nat_rules(netns: &Netns) -> Option<NatRules> {
    let run = |program: &'static str, args: &'static [&'static str]| {
        netns
            .run(|| {
                Ok(std::process::Command::new(program)
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned()))
            })
            .ok()
            .flatten()
    };
    if let Some(text) = run("nft", &["list", "ruleset"]) {
        let r = NatRules::parse_nft(&text);
        if !r.source_nat.is_empty() || r.dnat_rules > 0 {
            return Some(r);
        }
        if let Some(legacy) = run("iptables-save", &["-t", "nat"]) {
            let l = NatRules::parse_iptables_save(&legacy);
            if !l.source_nat.is_empty() || l.dnat_rules > 0 {
                return Some(l);
            }
        }
        return Some(r);
    }
    run("iptables-save", &["-t", "nat"]).map(|t| NatRules::parse_iptables_save(&t))
}

/// Host facts for the target; the notes say what could not be read.
fn host_snapshot(
    target: &LiveTarget,
    netns: &Netns,
) -> Result<(HostSnapshot, Vec<String>), LiveError> {
    let report = netns
        .run(|| Ok(HostFs::new("/").for_current_thread().read_snapshot()))
        .map_err(step("read the namespace's host facts"))?;
    let mut notes: Vec<String> = report.problems.iter().map(describe_problem).collect();
    if !matches!(target, LiveTarget::Host) {
        notes.push(
            "RPS settings are those of the interfaces visible in this process's /sys (the host's), \
             not the namespace's"
                .into(),
        );
    }
    Ok((report.snapshot, notes))
}

/// One line for a host fact that could not be read.
pub fn describe_problem(e: &HostError) -> String {
    if e.is_not_found() {
        format!("not available: {}", e.path().display())
    } else {
        format!("could not read: {e}")
    }
}

/// One statistics sample: ctnetlink first, the target's
/// `/proc/net/stat/nf_conntrack` when ctnetlink fails. Also where it came
/// from, and whether ctnetlink may be used (false: no CAP_NET_ADMIN).
/// Without privileges an unreadable `/proc` file gives no sample (`None`)
/// rather than an error: the sizing may still be readable.
fn sample_stats(
    ct: &mut Conntrack,
    target: &LiveTarget,
    netns: &Netns,
) -> Result<(Option<Stats>, Option<String>, bool), LiveError> {
    let nl = match ct.stats() {
        Ok(s) => {
            return Ok((
                Some(s),
                Some("ctnetlink (IPCTNL_MSG_CT_GET_STATS_CPU)".into()),
                true,
            ));
        }
        Err(e) => e,
    };
    let privileged = !nl.is_permission_denied();
    let res = match target {
        // /proc/PID/net needs no namespace switch.
        LiveTarget::Process(p) => HostFs::new("/")
            .for_pid(*p)
            .read_stats()
            .map_err(|e| e.to_string()),
        _ => netns
            .run(|| Ok(HostFs::new("/").for_current_thread().read_stats()))
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string())),
    };
    match res {
        Ok(mut s) => {
            if s.max_entries.is_none() {
                // Global: the same in every namespace.
                s.max_entries = HostFs::new("/").read_max().ok();
            }
            let why = if privileged {
                "ctnetlink failed"
            } else {
                "no privileges for ctnetlink"
            };
            Ok((
                Some(s),
                Some(format!("/proc/net/stat/nf_conntrack ({why})")),
                privileged,
            ))
        }
        Err(_) if !privileged => Ok((None, None, false)),
        Err(proc) => Err(LiveError::Stats { netlink: nl, proc }),
    }
}

/// What one pass over the flows produced.
struct FlowPass {
    hotspots: HotspotSummary,
    chains: Option<SimulatedChains>,
    owners: Option<AttributionSummary>,
    notes: Vec<String>,
}

struct Acc<'t> {
    hot: Hotspots,
    chains: Option<ChainSimulator>,
    owners: Option<OwnerCounter<'t>>,
}

/// Flows between two progress calls.
const PROGRESS_EVERY: u64 = 4096;

/// One streaming dump into hotspots, owners and simulated chains.
fn dump(
    ct: &mut Conntrack,
    snapshot: &HostSnapshot,
    sockets: Option<&OwnerTables>,
    top: usize,
    progress: impl FnMut(u64),
) -> Result<FlowPass, LiveError> {
    let buckets = snapshot.buckets.filter(|&b| b > 0);
    // Both closures report progress; the fold calls them one at a time.
    let progress = std::cell::RefCell::new(progress);
    let mut n = 0u64;
    let (acc, summary) = ct
        .fold(
            &DumpRequest::table(L3Family::UNSPEC),
            || {
                (progress.borrow_mut())(0);
                Acc {
                    hot: Hotspots::new(HotspotConfig::bounded().with_top(top)),
                    // The kernel table holds no duplicate tuples: no set.
                    chains: buckets.map(|b| {
                        ChainSimulator::sampled(u64::from(b), SIMULATION_SEED, SAMPLED_BUCKETS)
                            .without_duplicates()
                    }),
                    owners: sockets.map(|o| OwnerCounter::new(&o.sockets, o.local.as_ref())),
                }
            },
            |acc, flow| {
                acc.hot.add(flow);
                if let Some(c) = &mut acc.chains {
                    c.add(flow);
                }
                if let Some(o) = &mut acc.owners {
                    o.add(flow);
                }
                n += 1;
                if n.is_multiple_of(PROGRESS_EVERY) {
                    (progress.borrow_mut())(acc.hot.flows());
                }
            },
        )
        .map_err(step("dump the table"))?;
    let mut notes = Vec::new();
    if summary.interrupted {
        notes.push("the dump was interrupted (NLM_F_DUMP_INTR): counts may be inconsistent".into());
    }
    if summary.malformed > 0 {
        notes.push(format!(
            "{} flows could not be decoded (skipped); the first: {}",
            summary.malformed,
            summary
                .first_malformed
                .map(|e| e.to_string())
                .unwrap_or_default()
        ));
    }
    Ok(FlowPass {
        hotspots: acc.hot.summary(),
        chains: acc.chains.map(ChainSimulator::finish),
        owners: acc.owners.map(|o| o.summary(top)),
        notes,
    })
}
