//! Live collection from a kernel table: this host, a named network
//! namespace, or a process's namespace.
//!
//! 1. Host facts with `HostFs::for_current_thread`, read on a thread in
//!    the target namespace (`Netns::run`; for this host, the calling
//!    thread): `/proc/sys/net` shows the namespace of the thread that opens
//!    it, and the thread view reads the namespace's `stat/nf_conntrack` and
//!    `ns/net` through `/proc/thread-self` too.
//! 2. Statistics sample 0: ctnetlink (per-CPU counters, count, max), or
//!    `/proc/net/stat/nf_conntrack` when ctnetlink fails for another reason
//!    than privileges.
//! 3. One streaming dump into the hotspot aggregator and a keyed-hash
//!    simulation of the bucket chains (a progress bar on a terminal).
//! 4. Statistics sample 1 when the window has passed since sample 0 (the
//!    dump's time counts towards the window).
//! 5. The NAT rules of the target namespace (`nft list ruleset`, else
//!    `iptables-save -t nat`, run on a thread inside it), parsed by
//!    `conntrack_core::nat_rules`, so that the judgment of confirm-time
//!    failures can say whether SNAT picks ports fully at random.

use super::analysis::Collected;
use super::duration::duration_in;
use super::exit::{Failure, failure_of};
use super::target::Target;
use conntrack_kit::analyze::Observation;
use conntrack_kit::analyze::buckets::{ChainSimulator, SimulatedChains};
use conntrack_kit::analyze::capture::SIMULATION_SEED;
use conntrack_kit::analyze::hotspots::HotspotSummary;
use conntrack_kit::analyze::hotspots::{CountMode, HotspotConfig, Hotspots};
use conntrack_kit::analyze::rates::StatsSeries;
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

/// Tables larger than this are counted with a bounded top-K instead of
/// exactly (memory stays bounded; counts then carry an error bound).
const EXACT_LIMIT: u64 = 2_000_000;
/// The chain simulation keeps one u32 per bucket; larger tables skip it.
const SIMULATE_MAX_BUCKETS: u32 = 1 << 24;

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
    let (stats0, stats_source) = sample_stats(&mut ct, target, &netns)?;
    let mut series = StatsSeries::new();
    let _ = series.push(Duration::ZERO, stats0.clone());

    let expected = stats0.entries.or(snapshot.count).map(u64::from);
    let flows = dump(&mut ct, &snapshot, expected, opts)?;

    let mut last = stats0;
    if !opts.window.is_zero() {
        let elapsed = t0.elapsed();
        if elapsed < opts.window {
            std::thread::sleep(opts.window - elapsed);
        }
        let (s1, _) = sample_stats(&mut ct, target, &netns)?;
        let _ = series.push(t0.elapsed(), s1.clone());
        last = s1;
    } else {
        notes.push("--window 0: one statistics sample, no rates (counters since boot only)".into());
    }

    let mut snapshot = snapshot;
    // The latest netlink figures are the namespace's own.
    if let Some(e) = last.entries {
        snapshot.count = Some(e);
    }
    if snapshot.max.is_none() {
        snapshot.max = last.max_entries;
    }
    snapshot.stats = Some(last);
    // Configuration files are the host's: read them for this host; module
    // facts belong to the kernel, so another namespace still gets those.
    let fs = HostFs::new("/");
    let config = match target {
        Target::Host => fs.read_config(&snapshot),
        _ => fs.read_module_config(&snapshot),
    };
    notes.extend(flows.notes);
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
        observation: Observation {
            snapshot,
            config,
            rates: (series.len() >= 2).then(|| series.rates()),
            hotspots: Some(flows.hotspots),
            chains: flows.chains,
            new_flows_per_sec: None,
            drops: None,
        },
        notes,
        stats_source: Some(stats_source),
        hostname: None,
        description: None,
    })
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
/// `/proc/net/stat/nf_conntrack` when ctnetlink fails (not for lack of
/// privileges).
fn sample_stats(
    ct: &mut Conntrack,
    target: &Target,
    netns: &Netns,
) -> Result<(Stats, String), Failure> {
    match ct.stats() {
        Ok(s) => Ok((s, "ctnetlink (IPCTNL_MSG_CT_GET_STATS_CPU)".into())),
        Err(e) if e.is_permission_denied() => Err(failure_of("read statistics", &e)),
        Err(nl) => {
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
            res.map(|s| (s, "/proc/net/stat/nf_conntrack (ctnetlink failed)".into()))
                .map_err(|p| {
                    Failure::Error(format!(
                        "cannot read statistics: ctnetlink: {nl}; /proc: {p}"
                    ))
                })
        }
    }
}

/// What one pass over the flows produced.
struct FlowPass {
    hotspots: HotspotSummary,
    chains: Option<SimulatedChains>,
    notes: Vec<String>,
}

struct Acc {
    hot: Hotspots,
    chains: Option<ChainSimulator>,
}

/// One streaming dump into hotspots and simulated chains.
fn dump(
    ct: &mut Conntrack,
    snapshot: &HostSnapshot,
    expected: Option<u64>,
    opts: &LiveOptions,
) -> Result<FlowPass, Failure> {
    let mode = if expected.unwrap_or(0) > EXACT_LIMIT {
        CountMode::TopK(65_536)
    } else {
        CountMode::Exact
    };
    let buckets = snapshot
        .buckets
        .filter(|&b| b > 0 && b <= SIMULATE_MAX_BUCKETS);
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
                    hot: Hotspots::new(HotspotConfig {
                        mode,
                        top,
                        ..HotspotConfig::default()
                    }),
                    // The kernel table holds no duplicate tuples: no set.
                    chains: buckets.map(|b| {
                        ChainSimulator::new(u64::from(b), SIMULATION_SEED).without_duplicates()
                    }),
                }
            },
            |acc, flow| {
                acc.hot.add(flow);
                if let Some(c) = &mut acc.chains {
                    c.add(flow);
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
    if snapshot.buckets.is_some() && buckets.is_none() {
        notes.push("bucket simulation skipped (more than 2^24 buckets)".into());
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
        notes,
    })
}
