//! The incident classes, each a topology, its traffic and the condition
//! that says the incident is happening: [`SCENARIOS`], started with
//! [`Scenario::start`].
//!
//! Every scenario takes the global-sysctl lock: exclusive when it changes
//! a global value (`nf_conntrack_max`, `nf_conntrack_buckets`,
//! `nf_log_all_netns`, restored when it ends or, after a crash, by the
//! next holder), shared otherwise (it relies on them not changing).

use super::kmsg::KernelLog;
use super::topology::{Host, Lab, LabSpec, Ruleset, SERVICE_ADDR, SPOOF_BASE, SPOOF_COUNT};
use super::traffic::{self, Generator, RaceProto};
use super::{LabError, PREFIX};
use crate::fill::fill_flows;
use crate::request::reply_tuple;
use crate::{Conntrack, DumpRequest};
use conntrack_core::host::{GlobalSysctl, GlobalSysctlGuard, GlobalSysctlShare};
use conntrack_core::{
    Counter, Flow, KernelVersion, L3Family, L4Proto, L4Tuple, ProtoInfo, Stats, Status, TcpInfo,
    TcpState, Tuple,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// What a scenario needs from the kernel and machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    TableFull,
    UdpClash,
    UdpSnatRace,
    NatRace { fully_random: bool },
    ChainTooLong,
    TimeWait,
    SynScan,
    UdpFlood,
    Invalid,
    Healthy,
    NatNoAddress,
}

/// One incident class of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The name `lab run` takes.
    pub name: &'static str,
    /// The incident class (1 to 8) of the lab's README.
    pub class: u8,
    /// One line.
    pub title: &'static str,
    /// What the scenario does and what it shows on Linux 6.18.
    pub shows: &'static str,
    /// What a correct live analysis of the router says.
    pub expect: &'static str,
    /// The global sysctls it changes (and restores).
    pub changes: &'static [GlobalSysctl],
    kind: Kind,
}

/// Every scenario, in class order.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "table-full",
        class: 1,
        title: "table full: drops, early_drop and the kernel log line",
        shows: "nf_conntrack_max is lowered to 16,384 for the run; the router's table is \
                filled to it over ctnetlink with ASSURED ESTABLISHED entries (2% unassured \
                UDP), then a client opens real connections: early_drop evicts the few \
                unassured entries, every other SYN is dropped (drop) and the kernel logs \
                'nf_conntrack: table full, dropping packet'",
        expect: "table-full (critical), demand-above-max named first; plan P0 raise-max",
        changes: &[GlobalSysctl::Max],
        kind: Kind::TableFull,
    },
    Scenario {
        name: "udp-clash",
        class: 2,
        title: "same-flow UDP clash through DNAT with two endpoints, resolved",
        shows: "two threads pinned to two CPUs send the first packets of one UDP flow at \
                once (a resolver's A and AAAA) to a service address that the router DNATs \
                to two servers with `numgen random mod 2`; on 5.6+ the kernel resolves \
                every such clash (merge, or NAT_CLASH reply-only entry) and counts it in \
                clash_resolve (5.10+): no packet is lost",
        expect: "no confirm-failures and no drop; resolved-clashes (info) with the \
                 clash_resolve rate; no plan action for it",
        changes: &[],
        kind: Kind::UdpClash,
    },
    Scenario {
        name: "udp-snat-race",
        class: 2,
        title: "UDP clash the kernel cannot resolve: two clients, one SNAT mapping",
        shows: "two clients send the first datagram of a flow from the same source port to \
                the same server at once, through MASQUERADE without a random flag: both keep \
                the port, so both entries get the same reply tuple before either is \
                confirmed; the loser differs in its original tuple, so neither merging nor \
                the NAT_CLASH reply-only insert applies: insert_failed and drop",
        expect: "confirm-failures (critical), nat-port-race named first; plan fully-random NAT",
        changes: &[],
        kind: Kind::UdpSnatRace,
    },
    Scenario {
        name: "nat-race",
        class: 2,
        title: "NAT port-allocation race of new TCP connections through MASQUERADE",
        shows: "two clients open TCP connections to one server from the same source port at \
                the same instant, on two CPUs, through MASQUERADE without fully-random: the \
                second SYN loses at confirm (TCP has no clash resolution): insert_failed and \
                drop rise together",
        expect: "confirm-failures (critical), nat-port-race named first; plan fully-random NAT",
        changes: &[],
        kind: Kind::NatRace {
            fully_random: false,
        },
    },
    Scenario {
        name: "nat-race-fully-random",
        class: 2,
        title: "the same connections through MASQUERADE fully-random",
        shows: "the nat-race traffic with `masquerade fully-random`: each connection's \
                source port is drawn at random, the two clients no longer pick the same \
                mapping, and insert_failed and drop stay flat",
        expect: "no confirm-failures; insert_failed and drop near zero",
        changes: &[],
        kind: Kind::NatRace { fully_random: true },
    },
    Scenario {
        name: "chain-too-long",
        class: 3,
        title: "hash chains over the kernel's cap: chaintoolong",
        shows: "the global bucket count is made 512 for the run; the router's table is \
                filled until its chains pass the cap (50 to 79 nodes since 6.3), then new \
                UDP flows are refused at confirm: chaintoolong and insert_failed rise, drop \
                does not",
        expect: "overloaded-buckets (critical) and confirm-failures with chain-cap named \
                 first; plan resizes the buckets",
        changes: &[GlobalSysctl::Buckets],
        kind: Kind::ChainTooLong,
    },
    Scenario {
        name: "time-wait",
        class: 4,
        title: "TIME_WAIT-dominated table from short HTTP connections through NAT",
        shows: "a client makes 300 short HTTP-like connections per second through \
                MASQUERADE; each closed connection holds its entry for \
                tcp_timeout_time_wait (120 s), so TIME_WAIT soon holds most of the table",
        expect: "connection-churn with the TIME_WAIT share and the new-connection rate; plan \
                 advises connection reuse",
        changes: &[],
        kind: Kind::TimeWait,
    },
    Scenario {
        name: "syn-scan",
        class: 5,
        title: "a SYN scan filling the table with UNREPLIED entries",
        shows: "a client sends 2,000 SYNs per second to every port of a server that drops \
                them; each leaves an UNREPLIED SYN_SENT entry for 120 s",
        expect: "scan-suspects naming the scanning client; plan limits unreplied sources",
        changes: &[],
        kind: Kind::SynScan,
    },
    Scenario {
        name: "udp-flood",
        class: 5,
        title: "a UDP flood from many sources filling the table",
        shows: "nf_conntrack_max is lowered to 16,384; a client floods a server port that \
                drops everything with datagrams from 32,768 spoofed sources; every entry \
                is UNREPLIED, the table fills; early_drop evicts where it finds one and drop \
                takes the rest",
        expect: "table-full (critical), unreplied-flood named first; plan limits unreplied \
                 sources",
        changes: &[GlobalSysctl::Max],
        kind: Kind::UdpFlood,
    },
    Scenario {
        name: "invalid",
        class: 6,
        title: "an invalid surge: out-of-window and stray TCP segments",
        shows: "segments with random sequence and acknowledgment numbers on established \
                connections, and stray FINs, sent over raw sockets; conntrack counts them \
                invalid and, with nf_conntrack_log_invalid=6 in the router (and the global \
                nf_log_all_netns=1 for the run), logs why: 'SEQ is over upper bound', 'ACK \
                is over upper bound', 'invalid new'",
        expect: "invalid-surge (warning) with the invalid rate; plan investigates invalid",
        changes: &[GlobalSysctl::LogAllNetns],
        kind: Kind::Invalid,
    },
    Scenario {
        name: "healthy",
        class: 7,
        title: "a healthy busy router (the no-false-alarm control)",
        shows: "persistent HTTP connections with 400 requests/s, 100 DNS-like UDP requests/s \
                through DNAT and 20 new connections/s: nothing is wrong",
        expect: "no finding of warning level or above (doctor exits 0)",
        changes: &[],
        kind: Kind::Healthy,
    },
    Scenario {
        name: "nat-no-address",
        class: 8,
        title: "source NAT without an address: MASQUERADE drops every new flow",
        shows: "the router keeps no IPv4 address a MASQUERADE could use (none on its links to \
                the servers, which stay reachable by device routes; only scope-link ones \
                toward the clients); a client opens 50 new UDP flows per second to a server: \
                nf_nat_masquerade_ipv4() finds no address, logs 's0 ate my IP address' and \
                drops the first packet of each. No conntrack counter moves and the table \
                stays empty (the entries are never confirmed); the masquerade rule's counter \
                counts the packets it dropped",
        expect: "from the counters alone nothing (no conntrack counter counts NAT's drops: \
                 doctor exits 0 with no finding of warning level, 'HEALTHY as far as judged', \
                 NAT failures under 'could not judge'); with --trace, \
                 nat-failures (critical) with snat-no-address named first and plan \
                 advice:nat-address, nothing resized",
        changes: &[],
        kind: Kind::NatNoAddress,
    },
];

/// Options of a start.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StartOptions {
    /// How long to wait for the incident to show before giving up.
    pub ready_timeout: Duration,
    /// The `nf_conntrack_max` of the table-full and udp-flood scenarios.
    pub lab_max: u32,
    /// The bucket count of the chain-too-long scenario.
    pub lab_buckets: u32,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            ready_timeout: Duration::from_secs(45),
            lab_max: 16_384,
            lab_buckets: 512,
        }
    }
}

/// The hold on the global sysctls.
#[derive(Debug)]
enum Globals {
    Shared(#[allow(dead_code)] GlobalSysctlShare),
    Exclusive(GlobalSysctlGuard),
}

/// A started scenario. Dropping it stops the traffic, deletes the
/// namespaces and restores the global sysctls, in that order; [`stop`]
/// does the same and says what happened.
///
/// [`stop`]: Running::stop
#[derive(Debug)]
pub struct Running {
    // Field order is drop order: traffic, then namespaces, then sysctls.
    traffic: Vec<Generator>,
    /// Generators already stopped by [`Running::stop_traffic`]: their
    /// (name, attempts, completed, failed).
    stopped: Vec<(String, u64, u64, u64)>,
    lab: Lab,
    ct: Conntrack,
    kmsg: Option<KernelLog>,
    globals: Globals,
    scenario: &'static Scenario,
    started: Instant,
    baseline: Stats,
    notes: Vec<String>,
}

/// What a stopped scenario did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The scenario.
    pub scenario: &'static str,
    /// From the start of the traffic to the stop.
    pub elapsed: Duration,
    /// The router's entries at the stop.
    pub entries: Option<u32>,
    /// The router's counters that rose, with their increase.
    pub counters: Vec<(Counter, u64)>,
    /// Each generator's (name, attempts, completed, failed).
    pub traffic: Vec<(String, u64, u64, u64)>,
    /// Conntrack's kernel log lines during the run (at most 20).
    pub kernel_log: Vec<String>,
    /// What the run set, and put back.
    pub notes: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {:.1} s, {} entries at the end",
            self.scenario,
            self.elapsed.as_secs_f64(),
            self.entries.map_or("?".into(), |e| e.to_string())
        )?;
        let c: Vec<String> = self
            .counters
            .iter()
            .map(|(c, d)| format!("{} +{d}", c.name()))
            .collect();
        writeln!(
            f,
            "  counters: {}",
            if c.is_empty() {
                "none rose".into()
            } else {
                c.join(", ")
            }
        )?;
        for (name, a, ok, failed) in &self.traffic {
            writeln!(f, "  {name}: {a} attempts, {ok} completed, {failed} failed")?;
        }
        // A line repeated (MASQUERADE logs one per packet) is shown once.
        let mut i = 0;
        while let Some(l) = self.kernel_log.get(i) {
            let n = self.kernel_log[i..].iter().take_while(|x| *x == l).count();
            match n {
                1 => writeln!(f, "  kernel: {l}")?,
                n => writeln!(f, "  kernel: {l} ({n} times)")?,
            }
            i += n;
        }
        for n in &self.notes {
            writeln!(f, "  {n}")?;
        }
        Ok(())
    }
}

fn kernel() -> Option<KernelVersion> {
    let text = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    conntrack_core::host::parse_osrelease(&text)
        .ok()
        .map(|(_, v)| v)
}

/// A counter's increase from `base` to `now` (u32, wrapping like the
/// kernel's).
fn delta(now: &Stats, base: &Stats, c: Counter) -> u64 {
    let v = |s: &Stats| s.total().get(c).unwrap_or(0);
    u64::from(v(now).wrapping_sub(v(base)))
}

impl Scenario {
    /// The scenario with this name.
    pub fn find(name: &str) -> Option<&'static Scenario> {
        SCENARIOS.iter().find(|s| s.name == name)
    }

    /// Why this kernel or machine cannot show the scenario, if it cannot.
    pub fn unsupported(&self) -> Option<String> {
        let k = kernel();
        let older = |maj: u16, min: u16| k.is_some_and(|k| !k.at_least(maj, min));
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self.kind {
            Kind::UdpClash if older(5, 10) => Some(
                "resolved clashes are counted in clash_resolve only since 5.10 (bc92470413f3); \
                 before, they are counted in insert_failed and cannot be told apart"
                    .into(),
            ),
            Kind::UdpClash | Kind::UdpSnatRace | Kind::NatRace { .. } if cpus < 2 => Some(format!(
                "a confirm-time race needs two CPUs processing packets at once; this machine \
                 has {cpus}"
            )),
            Kind::ChainTooLong if older(5, 15) => Some(
                "mainline kernels before 5.15 have no chain cap (d7e7747ac5c2 added it with the \
                 chaintoolong counter)"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Builds the lab, starts the traffic and returns once the incident
    /// shows (the router's counters say so), or fails with what was seen.
    pub fn start(&'static self, opts: &StartOptions) -> Result<Running, LabError> {
        self.start_with(opts, |_| {})
    }

    /// [`Scenario::start`], calling `before_traffic` once the namespaces
    /// exist and before any packet is sent (and before the router's
    /// table is filled): where an observer that must see the whole
    /// incident attaches (the drop tracer's live test starts on the
    /// router here, so that its counters' baseline is the fresh
    /// namespace's).
    pub fn start_with(
        &'static self,
        opts: &StartOptions,
        before_traffic: impl FnOnce(&Lab),
    ) -> Result<Running, LabError> {
        if let Some(reason) = self.unsupported() {
            return Err(LabError::Unsupported {
                scenario: self.name,
                reason,
            });
        }
        let globals = if self.changes.is_empty() {
            Globals::Shared(
                GlobalSysctlShare::acquire()
                    .map_err(|e| LabError::io("take the global-sysctl lock (shared)", e))?,
            )
        } else {
            Globals::Exclusive(
                GlobalSysctlGuard::exclusive()
                    .map_err(|e| LabError::io("take the global-sysctl lock", e))?,
            )
        };
        let mut notes = Vec::new();
        if let Globals::Exclusive(g) = &globals {
            for (k, v) in g.recovered() {
                notes.push(format!("restored {k}={v} left by a lab that died"));
            }
        }
        let lab = Lab::build(&self.spec())?;
        before_traffic(&lab);
        let ct = Conntrack::open_in(&lab.router_ns())
            .map_err(|e| LabError::netlink("open ctnetlink in the router", e))?;
        let kmsg = KernelLog::open().ok();
        let baseline = Stats::default();
        let mut run = Running {
            traffic: Vec::new(),
            stopped: Vec::new(),
            lab,
            ct,
            kmsg,
            globals,
            scenario: self,
            started: Instant::now(),
            baseline,
            notes,
        };
        run.setup(opts)?;
        run.wait_ready(opts)?;
        Ok(run)
    }

    fn spec(&self) -> LabSpec {
        let mut spec = LabSpec::default();
        match self.kind {
            Kind::UdpClash => {
                spec.servers = 2;
                spec.ruleset = Ruleset {
                    dnat_port: Some(53),
                    masquerade: false,
                    ..Ruleset::default()
                };
            }
            Kind::UdpSnatRace => spec.clients = 2,
            Kind::NatRace { fully_random } => {
                spec.clients = 2;
                spec.ruleset.fully_random = fully_random;
            }
            Kind::SynScan => spec.server_input = vec!["tcp dport != 80 drop".into()],
            Kind::UdpFlood => spec.server_input = vec!["udp dport 9 drop".into()],
            Kind::Invalid => {
                spec.router_sysctls = vec![
                    ("net.netfilter.nf_conntrack_log_invalid".into(), "6".into()),
                    ("net.netfilter.nf_log.2".into(), "nf_log_ipv4".into()),
                ];
            }
            Kind::Healthy => {
                spec.clients = 2;
                spec.servers = 2;
                spec.ruleset.dnat_port = Some(53);
            }
            Kind::NatNoAddress => {
                spec.ruleset.count_masquerade = true;
                spec.masquerade_without_address = true;
            }
            _ => {}
        }
        spec
    }
}

/// `n` ASSURED ESTABLISHED TCP entries (and every `unassured_every`-th one
/// an unreplied UDP entry) with `timeout` seconds to live, from sources in
/// 198.18.64.0/18 to the first server.
fn filler(n: u64, timeout: u32, unassured_every: u64) -> impl Iterator<Item = Flow> {
    let base = u32::from(Ipv4Addr::new(198, 18, 64, 0));
    (0..n).map(move |i| {
        let src = IpAddr::V4(Ipv4Addr::from(base + (i % 16_384) as u32));
        let sport = 1024 + ((i / 16_384) % 60_000) as u16;
        let dst = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2));
        if unassured_every > 0 && i.is_multiple_of(unassured_every) {
            let orig = Tuple::new(
                src,
                dst,
                L4Proto::UDP,
                L4Tuple::Ports {
                    src: sport,
                    dst: 53,
                },
            );
            let mut f = Flow::new(orig, reply_tuple(&orig), Status::empty());
            f.timeout = Some(timeout);
            return f;
        }
        let orig = Tuple::new(
            src,
            dst,
            L4Proto::TCP,
            L4Tuple::Ports {
                src: sport,
                dst: 443,
            },
        );
        let mut f = Flow::new(
            orig,
            reply_tuple(&orig),
            Status::SEEN_REPLY | Status::ASSURED,
        );
        f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo::new(TcpState::ESTABLISHED)));
        f.timeout = Some(timeout);
        f
    })
}

impl Running {
    /// The scenario.
    pub fn scenario(&self) -> &'static Scenario {
        self.scenario
    }

    /// The router namespace's name: `doctor --netns NAME`.
    pub fn router(&self) -> &str {
        self.lab.router()
    }

    /// The lab.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The running generators.
    pub fn traffic(&self) -> &[Generator] {
        &self.traffic
    }

    /// What the run set (lowered max, small buckets, ...).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The router's statistics now (ctnetlink).
    pub fn stats(&mut self) -> Result<Stats, LabError> {
        self.ct
            .stats()
            .map_err(|e| LabError::netlink("router statistics", e))
    }

    /// The router's counters' increase since the traffic started.
    pub fn delta(&mut self, c: Counter) -> Result<u64, LabError> {
        let now = self.stats()?;
        Ok(delta(&now, &self.baseline, c))
    }

    /// Conntrack's and NAT's kernel log lines since the scenario started
    /// (`nf_conntrack:` and `nf_ct_proto_` lines, and MASQUERADE's
    /// `<dev> ate my IP address`).
    pub fn kernel_log(&mut self) -> Vec<String> {
        self.kmsg.as_mut().map_or_else(Vec::new, |k| {
            k.lines()
                .iter()
                .filter(|l| {
                    l.contains("nf_conntrack")
                        || l.contains("nf_ct_proto_")
                        || l.contains("ate my IP address")
                })
                .cloned()
                .collect()
        })
    }

    fn set_global(&mut self, key: GlobalSysctl, value: u64) -> Result<u64, LabError> {
        let Globals::Exclusive(g) = &mut self.globals else {
            return Err(LabError::io(
                format!("set {key}"),
                std::io::Error::other("the scenario holds the lock shared"),
            ));
        };
        g.set(key, value)
            .map_err(|e| LabError::io(format!("set {key}"), e))?;
        let now = conntrack_core::host::global_guard::read_global(key)
            .map_err(|e| LabError::io(format!("read {key}"), e))?;
        self.notes.push(format!(
            "{key}: {} -> {now} for the run (restored at the end)",
            g.original(key).unwrap_or(0)
        ));
        Ok(now)
    }

    fn fill(&mut self, flows: impl IntoIterator<Item = Flow>) -> Result<(), LabError> {
        let r = fill_flows(&mut self.ct, flows, 256)
            .map_err(|e| LabError::netlink("fill the router's table", e))?;
        let errs: Vec<String> = r
            .errors
            .iter()
            .map(|(errno, n)| format!("{n} x {}", std::io::Error::from_raw_os_error(*errno)))
            .collect();
        self.notes.push(format!(
            "filled the router with {} entries over ctnetlink in {:.1} s{}",
            r.created,
            r.elapsed.as_secs_f64(),
            if errs.is_empty() {
                String::new()
            } else {
                format!(" (refused: {})", errs.join(", "))
            }
        ));
        Ok(())
    }

    fn router_sysctl(&self, name: &str) -> Option<u32> {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        self.lab
            .router_ns()
            .run(|| Ok(std::fs::read_to_string(&path).ok()))
            .ok()
            .flatten()
            .and_then(|t| t.trim().parse().ok())
    }

    fn setup(&mut self, opts: &StartOptions) -> Result<(), LabError> {
        let c0 = self.lab.clients()[0].clone();
        let c1 = self.lab.clients().get(1).cloned();
        let s0 = self.lab.servers()[0].clone();
        let s1 = self.lab.servers().get(1).cloned();
        let web = SocketAddrV4::new(s0.addr, 80);
        let cpus = traffic::two_cpus().unwrap_or((0, 0));
        let two = |c1: Option<Host>| {
            c1.ok_or_else(|| LabError::io("topology", std::io::Error::other("two clients")))
        };
        match self.scenario.kind {
            Kind::TableFull => {
                let cur = conntrack_core::host::global_guard::read_global(GlobalSysctl::Max)
                    .map_err(|e| LabError::io("read nf_conntrack_max", e))?;
                let max = if cur == 0 || cur > u64::from(opts.lab_max) {
                    self.set_global(GlobalSysctl::Max, u64::from(opts.lab_max))?
                } else {
                    cur
                };
                let est = self
                    .router_sysctl("net.netfilter.nf_conntrack_tcp_timeout_established")
                    .unwrap_or(432_000);
                self.traffic.push(traffic::tcp_server(&s0, 80, true)?);
                self.fill(filler(max, est, 50))?;
                self.baseline = self.stats()?;
                self.started = Instant::now();
                self.traffic.push(traffic::tcp_connect_attempts(
                    &c0,
                    web,
                    400.0,
                    Duration::from_secs(1),
                )?);
            }
            Kind::UdpClash => {
                let s1 = s1.ok_or_else(|| {
                    LabError::io("topology", std::io::Error::other("two servers"))
                })?;
                self.traffic.push(traffic::udp_server(&s0, 53)?);
                self.traffic.push(traffic::udp_server(&s1, 53)?);
                self.baseline = self.stats()?;
                self.traffic.push(traffic::udp_same_flow_race(
                    &c0,
                    SocketAddrV4::new(SERVICE_ADDR, 53),
                    cpus,
                    1500.0,
                )?);
            }
            Kind::UdpSnatRace => {
                let c1 = two(c1)?;
                self.traffic.push(traffic::udp_server(&s0, 53)?);
                self.baseline = self.stats()?;
                self.traffic.push(traffic::same_port_race(
                    (&c0, &c1),
                    SocketAddrV4::new(s0.addr, 53),
                    RaceProto::Udp,
                    cpus,
                    1500.0,
                )?);
            }
            Kind::NatRace { .. } => {
                let c1 = two(c1)?;
                self.traffic.push(traffic::tcp_server(&s0, 80, true)?);
                self.baseline = self.stats()?;
                self.traffic.push(traffic::same_port_race(
                    (&c0, &c1),
                    web,
                    RaceProto::Tcp,
                    cpus,
                    1000.0,
                )?);
            }
            Kind::ChainTooLong => {
                let b = self.set_global(GlobalSysctl::Buckets, u64::from(opts.lab_buckets))?;
                // Timers at the established timeout: recently active
                // connections, not idle ones (which doctor would report).
                let est = self
                    .router_sysctl("net.netfilter.nf_conntrack_tcp_timeout_established")
                    .unwrap_or(432_000);
                // 2N/B of about 90 nodes: past the cap (50..79 since 6.3,
                // 8..31 in 5.15 to 6.2), so most inserts are refused once
                // the fill stops.
                self.fill(filler(b * 45, est, 0))?;
                self.traffic.push(traffic::udp_server(&s0, 53)?);
                self.baseline = self.stats()?;
                self.traffic.push(traffic::udp_new_flows(
                    &c0,
                    SocketAddrV4::new(s0.addr, 53),
                    400.0,
                )?);
            }
            Kind::TimeWait => {
                self.traffic.push(traffic::tcp_server(&s0, 80, true)?);
                self.baseline = self.stats()?;
                self.traffic.push(traffic::http_churn(&c0, web, 300.0, 4)?);
            }
            Kind::SynScan => {
                self.baseline = self.stats()?;
                self.traffic
                    .push(traffic::syn_scan(&c0, s0.addr, 1..=65_535, 2000.0)?);
            }
            Kind::UdpFlood => {
                let cur = conntrack_core::host::global_guard::read_global(GlobalSysctl::Max)
                    .map_err(|e| LabError::io("read nf_conntrack_max", e))?;
                if cur == 0 || cur > u64::from(opts.lab_max) {
                    self.set_global(GlobalSysctl::Max, u64::from(opts.lab_max))?;
                }
                self.baseline = self.stats()?;
                self.traffic.push(traffic::udp_flood(
                    &c0,
                    SPOOF_BASE,
                    SPOOF_COUNT,
                    SocketAddrV4::new(s0.addr, 9),
                    4000.0,
                    1,
                )?);
            }
            Kind::Invalid => {
                self.set_global(GlobalSysctl::LogAllNetns, 1)?;
                self.traffic.push(traffic::tcp_server(&s0, 80, false)?);
                let (idle, pairs) = traffic::idle_connections(&c0, web, 8)?;
                self.traffic.push(idle);
                self.baseline = self.stats()?;
                self.traffic
                    .push(traffic::invalid_segments(&c0, pairs, s0.addr, 1500.0)?);
            }
            Kind::NatNoAddress => {
                // A server that answers: a flow that got through would
                // complete, and the scenario would not start.
                self.traffic.push(traffic::udp_server(&s0, 53)?);
                self.notes.push(
                    "the router has no universe-scope IPv4 address: MASQUERADE drops every new \
                     flow toward the servers (its rule's counter counts them; conntrack's \
                     counters do not)"
                        .into(),
                );
                self.baseline = self.stats()?;
                self.traffic.push(traffic::udp_new_flows(
                    &c0,
                    SocketAddrV4::new(s0.addr, 53),
                    50.0,
                )?);
            }
            Kind::Healthy => {
                let c1 = two(c1)?;
                let s1 = s1.ok_or_else(|| {
                    LabError::io("topology", std::io::Error::other("two servers"))
                })?;
                for s in [&s0, &s1] {
                    self.traffic.push(traffic::tcp_server(s, 80, false)?);
                    self.traffic.push(traffic::udp_server(s, 53)?);
                }
                self.baseline = self.stats()?;
                self.traffic
                    .push(traffic::persistent_requests(&c0, web, 20, 400.0)?);
                self.traffic.push(traffic::udp_requests(
                    &c1,
                    SocketAddrV4::new(SERVICE_ADDR, 53),
                    100.0,
                    2,
                )?);
                self.traffic.push(traffic::http_churn(
                    &c1,
                    SocketAddrV4::new(s1.addr, 80),
                    20.0,
                    1,
                )?);
            }
        }
        self.started = Instant::now();
        Ok(())
    }

    /// Counts the router's TCP entries in TIME_WAIT, and all entries.
    fn time_wait_entries(&mut self) -> Result<(u64, u64), LabError> {
        let (acc, _) = self
            .ct
            .fold(
                &DumpRequest::table(L3Family::UNSPEC),
                || (0u64, 0u64),
                |acc, f| {
                    acc.1 += 1;
                    if f.tcp_state() == Some(TcpState::TIME_WAIT) {
                        acc.0 += 1;
                    }
                },
            )
            .map_err(|e| LabError::netlink("dump the router's table", e))?;
        Ok(acc)
    }

    fn wait_ready(&mut self, opts: &StartOptions) -> Result<(), LabError> {
        let t0 = Instant::now();
        let min_warmup = Duration::from_secs(2);
        loop {
            let (ready, state) = self.check_ready()?;
            if ready && t0.elapsed() >= min_warmup {
                return Ok(());
            }
            if t0.elapsed() > opts.ready_timeout {
                return Err(LabError::NotReached {
                    scenario: self.scenario.name,
                    what: self.ready_condition().into(),
                    secs: opts.ready_timeout.as_secs(),
                    state,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The condition [`Scenario::start`] waits for, in words.
    pub fn ready_condition(&self) -> &'static str {
        match self.scenario.kind {
            Kind::TableFull => "drop and early_drop rising and the kernel's 'table full' line",
            Kind::UdpClash => "clash_resolve rising (at least 50)",
            Kind::UdpSnatRace
            | Kind::NatRace {
                fully_random: false,
            } => "insert_failed and drop rising (at least 20)",
            Kind::NatRace { fully_random: true } => "3,000 racing connection attempts",
            Kind::ChainTooLong => "chaintoolong rising (at least 50)",
            Kind::TimeWait => "TIME_WAIT holding 60% of at least 1,200 entries",
            Kind::SynScan => "4,000 entries",
            Kind::UdpFlood => "the table at max and early_drop rising",
            Kind::Invalid => "invalid rising (at least 500) and the kernel's reasons logged",
            Kind::Healthy => "300 DNS-like replies and 1,000 requests served",
            Kind::NatNoAddress => {
                "the masquerade rule counting 100 new flows toward the server, none answered"
            }
        }
    }

    fn check_ready(&mut self) -> Result<(bool, String), LabError> {
        let now = self.stats()?;
        let base = self.baseline.clone();
        let d = |c| delta(&now, &base, c);
        let entries = now.entries.unwrap_or(0);
        let counts: Vec<(String, (u64, u64, u64))> = self
            .traffic
            .iter()
            .map(|g| (g.name().to_owned(), g.counts().snapshot()))
            .collect();
        let attempts = |name: &str| {
            counts
                .iter()
                .find(|(n, _)| n == name)
                .map_or((0, 0, 0), |(_, c)| *c)
        };
        let mut state = format!(
            "entries {entries}, insert_failed +{}, drop +{}, early_drop +{}, clash_resolve +{}, \
             chaintoolong +{}, invalid +{}",
            d(Counter::InsertFailed),
            d(Counter::Drop),
            d(Counter::EarlyDrop),
            d(Counter::ClashResolve),
            d(Counter::ChainTooLong),
            d(Counter::Invalid)
        );
        let ready = match self.scenario.kind {
            Kind::TableFull => {
                let logged = !self.kernel_log().iter().all(|l| !l.contains("table full"));
                d(Counter::Drop) >= 20 && d(Counter::EarlyDrop) >= 1 && logged
            }
            Kind::UdpClash => d(Counter::ClashResolve) >= 50,
            Kind::UdpSnatRace
            | Kind::NatRace {
                fully_random: false,
            } => d(Counter::InsertFailed) >= 20 && d(Counter::Drop) >= 20,
            Kind::NatRace { fully_random: true } => attempts("tcp-port-race").0 >= 3000,
            Kind::ChainTooLong => d(Counter::ChainTooLong) >= 50,
            Kind::TimeWait => {
                if entries < 1200 {
                    false
                } else {
                    let (tw, all) = self.time_wait_entries()?;
                    all > 0 && tw * 10 >= all * 6
                }
            }
            Kind::SynScan => entries >= 4000,
            Kind::UdpFlood => {
                let max = u64::from(now.max_entries.unwrap_or(u32::MAX));
                u64::from(entries) * 100 >= max * 98 && d(Counter::EarlyDrop) >= 20
            }
            Kind::Invalid => {
                let logged = self
                    .kernel_log()
                    .iter()
                    .any(|l| l.contains("nf_ct_proto_6"));
                d(Counter::Invalid) >= 500 && logged
            }
            Kind::Healthy => attempts("udp-requests").1 >= 300 && attempts("persistent").1 >= 1000,
            Kind::NatNoAddress => {
                let masq = self.lab.masquerade_packets()?.unwrap_or(0);
                let answered = attempts("udp-flows").1;
                state.push_str(&format!(
                    ", masquerade rule {masq} packets, {answered} flows answered"
                ));
                masq >= 100 && answered == 0
            }
        };
        Ok((ready, state))
    }

    /// Stops the traffic and waits for its threads (their sockets are
    /// closed when it returns), keeping the namespaces, their tables and
    /// the global sysctls as they are: the incident's counters stop
    /// moving, so that what observed it can be compared with them at rest.
    /// [`Running::stop`] still reports the stopped generators.
    pub fn stop_traffic(&mut self) -> Result<(), LabError> {
        let mut first_err = None;
        for g in self.traffic.drain(..) {
            let name = g.name().to_owned();
            match g.stop() {
                Ok((a, ok, f)) => self.stopped.push((name, a, ok, f)),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Stops the traffic, deletes the namespaces and restores the global
    /// sysctls; says what the run did.
    pub fn stop(mut self) -> Result<Summary, LabError> {
        let end = self.stats().ok();
        let elapsed = self.started.elapsed();
        let mut first_err = self.stop_traffic().err();
        let traffic = std::mem::take(&mut self.stopped);
        // What no conntrack counter shows: the packets source NAT dropped.
        if let Ok(Some(n)) = self.lab.masquerade_packets() {
            self.notes.push(format!("masquerade rule: {n} packets"));
        }
        let kernel_log: Vec<String> = self.kernel_log().into_iter().take(20).collect();
        let counters = end
            .as_ref()
            .map(|now| {
                Counter::ALL
                    .into_iter()
                    .map(|c| (c, delta(now, &self.baseline, c)))
                    .filter(|&(c, d)| d > 0 && c != Counter::Insert)
                    .collect()
            })
            .unwrap_or_default();
        if let Err(e) = self.lab.remove() {
            first_err.get_or_insert(e);
        }
        if let Globals::Exclusive(g) = &mut self.globals
            && let Err(e) = g.restore()
        {
            first_err.get_or_insert(LabError::io("restore the global sysctls", e));
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        Ok(Summary {
            scenario: self.scenario.name,
            elapsed,
            entries: end.and_then(|s| s.entries),
            counters,
            traffic,
            kernel_log,
            notes: self.notes.clone(),
        })
    }
}

/// Whether a namespace name is a lab's router (for tools that list them).
pub fn is_router(name: &str) -> bool {
    name.starts_with(PREFIX) && name.ends_with("-router")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_classes_cover_one_to_eight() {
        for (i, s) in SCENARIOS.iter().enumerate() {
            assert!(
                SCENARIOS[i + 1..].iter().all(|t| t.name != s.name),
                "{}",
                s.name
            );
            assert_eq!(Scenario::find(s.name), Some(s));
        }
        for class in 1..=8 {
            assert!(SCENARIOS.iter().any(|s| s.class == class), "class {class}");
        }
    }

    #[test]
    fn repeated_kernel_lines_are_shown_once() {
        let s = Summary {
            scenario: "nat-no-address",
            elapsed: Duration::from_secs(1),
            entries: Some(0),
            counters: Vec::new(),
            traffic: Vec::new(),
            kernel_log: vec![
                "a".into(),
                "s0 ate my IP address".into(),
                "s0 ate my IP address".into(),
                "b".into(),
            ],
            notes: Vec::new(),
        };
        let text = s.to_string();
        assert!(
            text.contains("  kernel: a\n  kernel: s0 ate my IP address (2 times)\n  kernel: b\n"),
            "{text}"
        );
        assert!(text.contains("counters: none rose"));
    }

    #[test]
    fn filler_is_unique_and_mostly_assured() {
        let flows: Vec<Flow> = filler(40_000, 600, 50).collect();
        let mut seen = std::collections::HashSet::new();
        for f in &flows {
            assert!(seen.insert(f.orig), "{:?}", f.orig);
        }
        let assured = flows
            .iter()
            .filter(|f| f.status.contains(Status::ASSURED))
            .count();
        assert_eq!(assured, 40_000 - 800);
    }
}
