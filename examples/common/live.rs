//! Live collection from a kernel table: this host, a named network
//! namespace, or a process's namespace.
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
//!    rates, sizing and host facts; the report says what the dump would
//!    have added ([`Unread`]).
//! 3. Who could own the flows: the namespace's sockets (`/proc/net/tcp`
//!    and friends, read one line at a time), its addresses (to tell
//!    forwarded flows apart), and the processes holding socket inodes
//!    (`/proc/PID/fd`, `/proc/PID/cgroup`).
//! 4. One streaming dump, each flow counted into bounded hotspot tables
//!    (`HotspotConfig::bounded`: exact up to 4,096 keys per kind, then
//!    certified top-K), by owner (`OwnerCounter`), and into a sampled
//!    keyed-hash simulation of the bucket chains
//!    (`ChainSimulator::sampled`); a progress bar on a terminal. Memory is
//!    bounded whatever the table's size.
//! 5. Statistics sample 1 when the window has passed since sample 0 (the
//!    dump's time counts towards the window).
//! 6. The NAT rules of the target namespace (`nft list ruleset`, else
//!    `iptables-save -t nat`, run on a thread inside it), parsed by
//!    `conntrack_core::nat_rules`, so that the judgment of confirm-time
//!    failures can say whether SNAT picks ports fully at random.

use super::analysis::Collected;
use super::duration::duration_in;
use super::exit::{Failure, failure_of};
use super::target::Target;
use conntrack_kit::analyze::attribution::{
    AttributionSummary, LocalAddrs, MAX_SOCKET_FILE_BYTES, OwnerCounter, ProcReader, SocketTable,
};
use conntrack_kit::analyze::buckets::{ChainSimulator, SAMPLED_BUCKETS, SimulatedChains};
use conntrack_kit::analyze::capture::SIMULATION_SEED;
use conntrack_kit::analyze::hotspots::HotspotSummary;
use conntrack_kit::analyze::hotspots::{HotspotConfig, Hotspots};
use conntrack_kit::analyze::rates::StatsSeries;
use conntrack_kit::analyze::{Observation, Unread};
use conntrack_kit::ct_core::host::{HostError, HostFs};
use conntrack_kit::ct_core::nat_rules::NatRules;
use conntrack_kit::ct_core::{HostSnapshot, L3Family, Stats};
use conntrack_kit::netlink::{Conntrack, DumpRequest, Netns};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// `--window`: flatten into the parser of an example that collects live.
#[derive(Debug, Clone, clap::Args)]
pub struct WindowArgs {
    /// Time between the two statistics samples that give counter rates
    /// (live only; 0: one sample, counters since boot only). A duration:
    /// 3s, 500ms, 1m, or plain seconds.
    #[arg(long, value_name = "DURATION", default_value = "3s",
          value_parser = duration_in(Duration::ZERO, Duration::from_secs(3600)))]
    pub window: Duration,
}

/// Options of a live collection.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Time between the two statistics samples (0: one sample only).
    pub window: Duration,
    /// Show a progress bar during the dump when stderr is a terminal.
    pub progress: bool,
    /// Rows kept per hotspot key.
    pub top: usize,
}

/// Whether this kernel has conntrack at all (the global sysctl exists).
pub fn conntrack_present() -> bool {
    Path::new("/proc/sys/net/netfilter/nf_conntrack_max").exists()
}

/// Collects everything from a live table.
pub fn collect(target: &Target, opts: &LiveOptions) -> Result<Collected, Failure> {
    if !conntrack_present() {
        return Err(Failure::Unavailable(
            "conntrack is not available on this host: /proc/sys/net/netfilter/nf_conntrack_max \
             does not exist (nf_conntrack is not loaded or not built)"
                .into(),
        ));
    }
    let netns = target.netns();
    let mut ct = Conntrack::open_in(&netns).map_err(|e| failure_of("open ctnetlink", &e))?;

    let (snapshot, mut notes) = host_snapshot(target, &netns)?;
    let t0 = Instant::now();
    let (stats0, stats_source, privileged) = sample_stats(&mut ct, target, &netns)?;
    let mut series = StatsSeries::new();
    if let Some(s) = &stats0 {
        let _ = series.push(Duration::ZERO, s.clone());
    }
    if !privileged && stats0.is_none() && snapshot.count.is_none() && snapshot.max.is_none() {
        return Err(Failure::Unavailable(format!(
            "no privileges to dump the table (ctnetlink needs CAP_NET_ADMIN), and neither \
             /proc/net/stat/nf_conntrack nor nf_conntrack_count/max could be read\n{}",
            super::exit::PRIVILEGES_HINT
        )));
    }

    let mut unread = Vec::new();
    let mut flows = None;
    if privileged {
        let expected = stats0
            .as_ref()
            .and_then(|s| s.entries)
            .or(snapshot.count)
            .map(u64::from);
        let (sockets, owner_notes) = socket_table(target);
        notes.extend(owner_notes);
        flows = Some(dump(&mut ct, &snapshot, expected, sockets.as_ref(), opts)?);
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
    let config = match target {
        Target::Host => fs.read_config(&snapshot),
        _ => fs.read_module_config(&snapshot),
    };
    let (hotspots, chains, owners) = match flows {
        Some(f) => {
            notes.extend(f.notes);
            (Some(f.hotspots), f.chains, f.owners)
        }
        None => (None, None, None),
    };
    let mut config = config;
    match nat_rules(&netns) {
        Some(r) => config.nat_rules = Some(r),
        None => notes.push(
            "NAT rules not read (neither `nft list ruleset` nor `iptables-save -t nat` ran in \
             the target namespace)"
                .into(),
        ),
    }
    Ok(Collected {
        target: target.clone(),
        observation: {
            let mut obs = Observation::new(snapshot)
                .with_config(config)
                .with_chains(chains)
                .with_owners(owners)
                .with_unread(unread);
            if let Some(h) = hotspots {
                obs = obs.with_hotspots(h);
            }
            if series.len() >= 2 {
                obs = obs.with_rates(series.rates());
            }
            obs
        },
        notes,
        stats_source,
        hostname: None,
        description: None,
    })
}

/// The target namespace's sockets indexed with their owning processes and
/// the namespace's addresses, for counting the dump's flows by owner;
/// `None` (and a note) when the sockets could not be read.
fn socket_table(target: &Target) -> (Option<(SocketTable, Option<LocalAddrs>)>, Vec<String>) {
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
    let read = target.with_net_files(move |fs| {
        let mut t = SocketTable::with_owners(owners);
        let sockets = t.read_sockets(fs).map(|whole| (t, whole));
        let local = ProcReader::from_host_fs(fs.clone()).local_addrs();
        (sockets, local)
    });
    match read {
        Ok((Ok((t, whole)), local)) => {
            if !whole {
                notes.push(format!(
                    "the namespace's socket tables are larger than what is read of them                      ({} MiB each): some flows count as without a socket",
                    MAX_SOCKET_FILE_BYTES >> 20
                ));
            }
            let local = match local {
                Ok(l) => {
                    if !l.complete() {
                        notes.push(
                            "the namespace's routing table is larger than what is read of it: \
                             some flows to local addresses may count as forwarded"
                                .into(),
                        );
                    }
                    Some(l)
                }
                Err(e) => {
                    notes.push(format!(
                        "the namespace's addresses were not read ({e}): forwarded flows count \
                         as without a socket"
                    ));
                    None
                }
            };
            (Some((t, local)), notes)
        }
        Ok((Err(e), _)) => {
            notes.push(format!("owners of the flows not read: {e}"));
            (None, notes)
        }
        Err(e) => {
            notes.push(format!("owners of the flows not read: {e}"));
            (None, notes)
        }
    }
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
fn host_snapshot(target: &Target, netns: &Netns) -> Result<(HostSnapshot, Vec<String>), Failure> {
    let report = netns
        .run(|| Ok(HostFs::new("/").for_current_thread().read_snapshot()))
        .map_err(|e| failure_of("read the namespace's host facts", &e))?;
    let (snapshot, problems) = (report.snapshot, report.problems);
    let mut notes: Vec<String> = problems.iter().map(describe_problem).collect();
    if !matches!(target, Target::Host) {
        notes.push(
            "RPS settings are those of the interfaces visible in this process's /sys (the host's), \
             not the namespace's"
                .into(),
        );
    }
    Ok((snapshot, notes))
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
    target: &Target,
    netns: &Netns,
) -> Result<(Option<Stats>, Option<String>, bool), Failure> {
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
        Target::Pid(p) => HostFs::new("/")
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
        Err(p) => Err(Failure::Error(format!(
            "cannot read statistics: ctnetlink: {nl}; /proc: {p}"
        ))),
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

/// One streaming dump into hotspots, owners and simulated chains.
fn dump(
    ct: &mut Conntrack,
    snapshot: &HostSnapshot,
    expected: Option<u64>,
    sockets: Option<&(SocketTable, Option<LocalAddrs>)>,
    opts: &LiveOptions,
) -> Result<FlowPass, Failure> {
    let buckets = snapshot.buckets.filter(|&b| b > 0);
    let bar = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(expected.unwrap_or(0));
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "dumping {bar:24} {human_pos}/{human_len} flows, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let top = opts.top;
    let (bar_init, bar_step) = (bar.clone(), bar.clone());
    let mut n = 0u64;
    let (acc, summary) = ct
        .fold(
            &DumpRequest::table(L3Family::UNSPEC),
            || {
                if let Some(b) = &bar_init {
                    b.set_position(0);
                }
                Acc {
                    hot: Hotspots::new(HotspotConfig::bounded().with_top(top)),
                    // The kernel table holds no duplicate tuples: no set.
                    chains: buckets.map(|b| {
                        ChainSimulator::sampled(u64::from(b), SIMULATION_SEED, SAMPLED_BUCKETS)
                            .without_duplicates()
                    }),
                    owners: sockets.map(|(t, l)| OwnerCounter::new(t, l.as_ref())),
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
                if n.is_multiple_of(4096)
                    && let Some(b) = &bar_step
                {
                    b.set_position(acc.hot.flows());
                }
            },
        )
        .map_err(|e| failure_of("dump the table", &e))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
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
