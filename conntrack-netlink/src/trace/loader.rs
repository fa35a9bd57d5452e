//! Loading the BPF program (libbpf), reading its ring buffer on a thread
//! of its own, and naming each record's reason.

use super::record::{Counted, EntryState, RawDrop, RecordError};
use super::{DropReason, DropRecord, NatManip, NfHook, OtherKind, TraceError};
use crate::{Conntrack, Error, Netns};
use conntrack_core::Tuple;
use conntrack_core::stats::Counter;
use libbpf_rs::{MapCore, MapFlags, ObjectBuilder, PrintLevel, RingBufferBuilder};
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// The objects build.rs compiled from the one source: reading kernel
/// memory with plain loads (`DIRECT_READS`, Linux 6.17+: cheaper per drop)
/// and with `bpf_probe_read_kernel()` (any kernel the tracer supports).
/// The loader takes the first where the kernel advertises the cast it
/// needs (`kernel_casts_to_void`), and the second otherwise or when the
/// kernel refuses the first.
static BPF_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/conntrack_drops.bpf.o"));
static BPF_OBJECT_COMPAT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/conntrack_drops_compat.bpf.o"));

/// What to trace.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TraceConfig {
    /// Only drops in this network namespace (`None`: every namespace).
    pub netns: Option<Netns>,
    /// Also report drops that no conntrack failure caused: ruleset
    /// verdicts and drops before conntrack ([`DropReason::Other`]).
    /// Without it the program counts them without a record
    /// ([`Tracer::unrecorded`]); NAT failures are reported either way.
    pub include_ruleset: bool,
}

impl TraceConfig {
    /// Only drops in this network namespace.
    pub fn with_netns(mut self, netns: Netns) -> Self {
        self.netns = Some(netns);
        self
    }

    /// Whether to report drops no conntrack failure caused too.
    pub fn with_ruleset(mut self, include: bool) -> Self {
        self.include_ruleset = include;
        self
    }
}

enum Ctl {
    Sync(mpsc::Sender<()>),
}

/// A running tracer: the program stays attached until it is dropped.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use conntrack_netlink::trace::{TraceConfig, Tracer};
/// use std::time::Duration;
/// let mut tracer = Tracer::start(&TraceConfig::default())?; // needs root
/// while let Some(rec) = tracer.next(Duration::from_secs(1)) {
///     let rec = rec?;
///     println!("{} {:?}", rec.reason, rec.raw.orig);
/// }
/// # Ok(()) }
/// ```
pub struct Tracer {
    rx: mpsc::Receiver<Result<RawDrop, RecordError>>,
    ctl: Option<mpsc::Sender<Ctl>>,
    thread: Option<JoinHandle<()>>,
    lost: Arc<AtomicU64>,
    /// Ruleset drops the program counted without a record.
    unrecorded: Arc<AtomicU64>,
    /// The loaded program (a second descriptor: the program's run-time
    /// statistics are read through it).
    prog: OwnedFd,
    classifier: Classifier,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("lost", &self.lost())
            .finish_non_exhaustive()
    }
}

/// libbpf's messages while loading (the verifier log among them).
static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

fn capture(_level: PrintLevel, msg: String) {
    if let Ok(mut l) = LIBBPF_LOG.lock() {
        l.push_str(&msg);
    }
}

fn verifier_log(all: &str) -> String {
    const BEGIN: &str = "-- BEGIN PROG LOAD LOG --";
    const END: &str = "-- END PROG LOAD LOG --";
    match (all.find(BEGIN), all.find(END)) {
        (Some(b), Some(e)) if b < e => all[b + BEGIN.len()..e].trim().to_owned(),
        _ => all.trim().to_owned(),
    }
}

fn netns_inode(ns: &Netns) -> Result<u32, TraceError> {
    let path = ns
        .path()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc/thread-self/ns/net"));
    std::fs::metadata(&path)
        .map(|m| m.ino() as u32)
        .map_err(|source| TraceError::Netns(Error::NetnsOpen { path, source }))
}

impl Tracer {
    /// Checks support ([`super::check_support`]), loads and attaches the
    /// program, and starts reading. Errors say plainly why tracing is
    /// unavailable ([`TraceError::is_unavailable`]).
    pub fn start(cfg: &TraceConfig) -> Result<Tracer, TraceError> {
        super::check_support()?;
        let inum = match &cfg.netns {
            Some(ns) => Some(netns_inode(ns)?),
            None => None,
        };
        let (tx, rx) = mpsc::channel();
        let (ctl_tx, ctl_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let lost = Arc::new(AtomicU64::new(0));
        let lost2 = Arc::clone(&lost);
        let unrecorded = Arc::new(AtomicU64::new(0));
        let unrecorded2 = Arc::clone(&unrecorded);
        let include = cfg.include_ruleset;
        let syms = read_kallsyms();
        let hook_slow = symbol_range(&syms, "nf_hook_slow");
        let direct_reads = super::kernel_casts_to_void();
        let thread = std::thread::Builder::new()
            .name("conntrack-trace".into())
            .spawn(move || {
                run(
                    Setup {
                        inum,
                        include_ruleset: include,
                        hook_slow,
                        direct_reads,
                    },
                    ready_tx,
                    tx,
                    ctl_rx,
                    Totals {
                        lost: lost2,
                        unrecorded: unrecorded2,
                    },
                )
            })
            .map_err(|e| TraceError::Setup(format!("spawn: {e}")))?;
        let prog = match ready_rx.recv() {
            Ok(Ok(prog)) => prog,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(TraceError::Setup("tracer thread ended".into()));
            }
        };
        let mut classifier = Classifier::new();
        classifier.include_ruleset = cfg.include_ruleset;
        classifier.kallsyms = Some(syms);
        if let (Some(ns), Some(i)) = (&cfg.netns, inum) {
            classifier.known.insert(i, ns.clone());
            // The counters before any record: the baseline of claim().
            classifier.refresh(i);
        }
        Ok(Tracer {
            rx,
            ctl: Some(ctl_tx),
            thread: Some(thread),
            lost,
            unrecorded,
            prog,
            classifier,
        })
    }

    /// The next record, waiting up to `timeout`; `None` when none came.
    pub fn next(&mut self, timeout: Duration) -> Option<Result<DropRecord, RecordError>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left).ok()? {
                Err(e) => return Some(Err(e)),
                Ok(raw) => {
                    if let Some(r) = self.classifier.classify(raw) {
                        return Some(Ok(r));
                    }
                }
            }
        }
    }

    /// Delivers every record the kernel has written so far: after it
    /// returns, [`Tracer::next`] with a zero timeout yields them all.
    pub fn sync(&self) {
        let (ack_tx, ack_rx) = mpsc::channel();
        if let Some(ctl) = &self.ctl
            && ctl.send(Ctl::Sync(ack_tx)).is_ok()
        {
            let _ = ack_rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// [`Tracer::sync`], then every record available.
    pub fn drain(&mut self) -> Vec<Result<DropRecord, RecordError>> {
        self.sync();
        let mut out = Vec::new();
        while let Some(r) = self.next(Duration::ZERO) {
            out.push(r);
        }
        out
    }

    /// Records the kernel could not write because the ring buffer (1 MiB)
    /// was full.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Drops no conntrack failure or NAT step explains (ruleset verdicts,
    /// drops before conntrack) that were not reported because
    /// [`TraceConfig::include_ruleset`] is off: counted by the program
    /// without a record, and by the classifier for the records it left
    /// out. Up to date after [`Tracer::sync`] and the records taken.
    pub fn unrecorded(&self) -> u64 {
        self.unrecorded.load(Ordering::Relaxed) + self.classifier.left_out
    }

    /// The kernel's run-time statistics of the tracer's program: how
    /// often it ran (every `kfree_skb` of the machine runs it) and for how
    /// long. The kernel counts them only while run-time statistics are on
    /// ([`RunTimeStats`], or the `kernel.bpf_stats_enabled` sysctl);
    /// otherwise both stay where they were. Compare two readings
    /// ([`ProgramStats::since`]).
    pub fn program_stats(&self) -> Result<ProgramStats, TraceError> {
        let (run_cnt, run_time_ns) = crate::sys::bpf_prog_run_stats(self.prog.as_fd())
            .map_err(|e| TraceError::Setup(format!("reading the program's statistics: {e}")))?;
        Ok(ProgramStats {
            run_cnt,
            run_time_ns,
        })
    }
}

/// A BPF program's run-time statistics (`run_cnt`, `run_time_ns` of
/// `struct bpf_prog_info`): [`Tracer::program_stats`].
///
/// With statistics on, the kernel reads the clock before and after each
/// run (`__bpf_prog_run()`, include/linux/filter.h): `run_time_ns`
/// includes part of those two reads, and the runs are that much slower
/// than without statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramStats {
    /// Runs counted.
    pub run_cnt: u64,
    /// Nanoseconds spent in those runs.
    pub run_time_ns: u64,
}

impl ProgramStats {
    /// What was counted since `earlier` (a reading of the same program).
    pub fn since(&self, earlier: &ProgramStats) -> ProgramStats {
        ProgramStats {
            run_cnt: self.run_cnt.saturating_sub(earlier.run_cnt),
            run_time_ns: self.run_time_ns.saturating_sub(earlier.run_time_ns),
        }
    }

    /// Mean nanoseconds per run (`None` without runs).
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.run_cnt > 0).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }
}

/// Keeps the kernel's BPF run-time statistics on while held: every BPF
/// program's `run_cnt` and `run_time_ns` count ([`ProgramStats`]), at
/// the cost of two clock reads per run of every program. Uses
/// `BPF_ENABLE_STATS` (Linux 5.8+), so no sysctl changes: the kernel
/// turns them off again when the last holder drops it (and
/// `kernel.bpf_stats_enabled` is 0). Needs `CAP_SYS_ADMIN`.
#[derive(Debug)]
pub struct RunTimeStats {
    _fd: OwnedFd,
}

impl RunTimeStats {
    /// Turns statistics on for as long as the value lives.
    pub fn enable() -> Result<RunTimeStats, TraceError> {
        match crate::sys::bpf_enable_run_time_stats() {
            Ok(fd) => Ok(RunTimeStats { _fd: fd }),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(TraceError::NoPrivileges(format!("BPF_ENABLE_STATS: {e}")))
            }
            Err(e) => Err(TraceError::Setup(format!("BPF_ENABLE_STATS: {e}"))),
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        // Closing the control channel stops the thread, which detaches.
        self.ctl.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn setup_error(what: &str, e: libbpf_rs::Error) -> TraceError {
    let msg = format!("{what}: {e}");
    if e.kind() == libbpf_rs::ErrorKind::PermissionDenied {
        TraceError::NoPrivileges(msg)
    } else {
        TraceError::Setup(msg)
    }
}

/// What the program is told.
struct Setup {
    inum: Option<u32>,
    include_ruleset: bool,
    /// `nf_hook_slow`'s text range, when /proc/kallsyms shows addresses.
    hook_slow: Option<(u64, u64)>,
    /// The kernel advertises what [`BPF_OBJECT`] needs (Linux 6.17+).
    direct_reads: bool,
}

/// What the program counts, for the [`Tracer`].
struct Totals {
    lost: Arc<AtomicU64>,
    unrecorded: Arc<AtomicU64>,
}

/// Opens and loads one of the objects, with libbpf's messages (the
/// verifier's log among them) in the error.
fn load_object(bytes: &[u8]) -> Result<libbpf_rs::Object, TraceError> {
    if let Ok(mut l) = LIBBPF_LOG.lock() {
        l.clear();
    }
    let prev = libbpf_rs::set_print(Some((PrintLevel::Debug, capture)));
    let obj = ObjectBuilder::default()
        .open_memory(bytes)
        .and_then(|o| o.load());
    libbpf_rs::set_print(prev);
    obj.map_err(|e| {
        let all = LIBBPF_LOG.lock().map(|l| l.clone()).unwrap_or_default();
        if e.kind() == libbpf_rs::ErrorKind::PermissionDenied {
            TraceError::NoPrivileges(format!("loading the program: {e}"))
        } else if all.contains("BEGIN PROG LOAD LOG") {
            TraceError::VerifierRejected {
                message: e.to_string(),
                log: verifier_log(&all),
            }
        } else if all.contains("failed to find BTF") || all.contains("no matching targets") {
            TraceError::KernelLacks(
                "a kernel type or field the program reads (CO-RE relocation failed)",
            )
        } else {
            TraceError::Setup(format!("loading the program: {e}: {}", verifier_log(&all)))
        }
    })
}

fn run(
    setup: Setup,
    ready: mpsc::Sender<Result<OwnedFd, TraceError>>,
    tx: mpsc::Sender<Result<RawDrop, RecordError>>,
    ctl: mpsc::Receiver<Ctl>,
    totals: Totals,
) {
    let Setup {
        inum,
        include_ruleset,
        hook_slow,
        direct_reads,
    } = setup;
    // The direct reads where the kernel says it takes them; the
    // compatible object otherwise, or when the kernel refuses the first
    // anyway (its error then, if it fails too).
    let first = if direct_reads {
        load_object(BPF_OBJECT)
    } else {
        load_object(BPF_OBJECT_COMPAT)
    };
    let obj = match first {
        Ok(o) => o,
        Err(e @ TraceError::NoPrivileges(_)) => {
            let _ = ready.send(Err(e));
            return;
        }
        Err(e) if !direct_reads => {
            let _ = ready.send(Err(e));
            return;
        }
        Err(_) => match load_object(BPF_OBJECT_COMPAT) {
            Ok(o) => o,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        },
    };
    let Some(config) = obj.maps().find(|m| m.name() == "config") else {
        let _ = ready.send(Err(TraceError::Setup("no config map".into())));
        return;
    };
    let set = |k: u32, v: u64| config.update(&k.to_ne_bytes(), &v.to_ne_bytes(), MapFlags::ANY);
    let (hs, he) = hook_slow.unwrap_or((0, 0));
    if let Err(e) = set(0, u64::from(inum.unwrap_or(0)))
        .and_then(|()| set(1, u64::from(include_ruleset)))
        .and_then(|()| set(3, hs))
        .and_then(|()| set(4, he))
    {
        let _ = ready.send(Err(setup_error("configuring the program", e)));
        return;
    }
    let Some(unrecorded) = obj.maps().find(|m| m.name() == "unrecorded") else {
        let _ = ready.send(Err(TraceError::Setup("no unrecorded map".into())));
        return;
    };
    let Some(prog) = obj.progs_mut().find(|p| p.name() == "on_kfree_skb") else {
        let _ = ready.send(Err(TraceError::Setup("no on_kfree_skb program".into())));
        return;
    };
    let _link = match prog.attach() {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(setup_error("attaching to skb:kfree_skb", e)));
            return;
        }
    };
    let prog_fd = match prog.as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            let _ = ready.send(Err(TraceError::Setup(format!("program descriptor: {e}"))));
            return;
        }
    };
    let Some(events) = obj.maps().find(|m| m.name() == "events") else {
        let _ = ready.send(Err(TraceError::Setup("no events map".into())));
        return;
    };
    let mut builder = RingBufferBuilder::new();
    let sink = tx.clone();
    if let Err(e) = builder.add(&events, move |data: &[u8]| {
        let _ = sink.send(RawDrop::parse(data));
        0
    }) {
        let _ = ready.send(Err(setup_error("ring buffer", e)));
        return;
    }
    let rb = match builder.build() {
        Ok(rb) => rb,
        Err(e) => {
            let _ = ready.send(Err(setup_error("ring buffer", e)));
            return;
        }
    };
    let _ = ready.send(Ok(prog_fd));
    loop {
        // The program wakes the reader only when a quarter of the buffer
        // is pending (BPF_RB_NO_WAKEUP otherwise), and libbpf's poll
        // consumes only the rings whose wake-up came: consume after it,
        // so that records arrive within the 50 ms (without this, a trickle
        // of drops stayed in the ring until a sync, seen as an exporter
        // counting nothing).
        let _ = rb.poll(Duration::from_millis(50));
        let _ = rb.consume();
        read_totals(&config, &unrecorded, &totals);
        match ctl.try_recv() {
            Ok(Ctl::Sync(ack)) => {
                let _ = rb.consume();
                read_totals(&config, &unrecorded, &totals);
                let _ = ack.send(());
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
}

/// The program's counts: records lost to a full ring buffer
/// (`config[2]`) and ruleset drops counted without a record
/// (`unrecorded`, the first 8 bytes of each CPU's slot).
fn read_totals(config: &libbpf_rs::Map<'_>, unrecorded: &libbpf_rs::Map<'_>, totals: &Totals) {
    if let Ok(v) = config.lookup(&2u32.to_ne_bytes(), MapFlags::ANY)
        && let Some(v) = v
        && v.len() == 8
    {
        let mut a = [0u8; 8];
        a.copy_from_slice(&v);
        totals.lost.store(u64::from_ne_bytes(a), Ordering::Relaxed);
    }
    if let Ok(Some(per_cpu)) = unrecorded.lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY) {
        let sum = per_cpu
            .iter()
            .filter_map(|v| v.get(..8))
            .map(|v| {
                let mut a = [0u8; 8];
                a.copy_from_slice(v);
                u64::from_ne_bytes(a)
            })
            .fold(0u64, u64::wrapping_add);
        totals.unrecorded.store(sum, Ordering::Relaxed);
    }
}

/// Names reasons: the entry state, plus ctnetlink in the record's
/// namespace where the state alone is ambiguous.
struct Classifier {
    /// Namespaces by inode.
    known: HashMap<u32, Netns>,
    /// Open ctnetlink sockets by inode (`None`: not found).
    sockets: HashMap<u32, Option<Conntrack>>,
    /// Per namespace and CPU: the counters as last read, and what they
    /// counted that no record has claimed yet.
    credits: HashMap<(u32, u32), Credit>,
    /// Per namespace: when (CLOCK_MONOTONIC) the counters were last read.
    /// A record stamped before that needs no new read: its counts were in.
    read_at: HashMap<u32, u64>,
    /// The stamp of the record being classified.
    stamp: u64,
    include_ruleset: bool,
    /// Records classified as ruleset verdicts and left out (without
    /// `include_ruleset`).
    left_out: u64,
    /// Wall clock minus the monotonic clock, in nanoseconds.
    wall_offset: Option<(SystemTime, u64)>,
    kallsyms: Option<Vec<(u64, String)>>,
}

impl Classifier {
    fn new() -> Classifier {
        Classifier {
            known: HashMap::new(),
            sockets: HashMap::new(),
            credits: HashMap::new(),
            read_at: HashMap::new(),
            stamp: 0,
            include_ruleset: false,
            left_out: 0,
            wall_offset: Some((SystemTime::now(), crate::sys::monotonic_ns())),
            kallsyms: None,
        }
    }

    fn classify(&mut self, raw: RawDrop) -> Option<DropRecord> {
        let (hook, nat) = self.nat_verdict(&raw);
        let mut winner_reply = None;
        let reason = match raw.counted {
            Some(c) => self.by_counted(&raw, c, nat, &mut winner_reply),
            None => self.by_ctnetlink(&raw, nat, &mut winner_reply),
        };
        if matches!(reason, DropReason::Other(_)) && !self.include_ruleset {
            self.left_out += 1;
            return None;
        }
        Some(DropRecord {
            time: self.wall(raw.monotonic_ns),
            reason,
            location: self.symbol(raw.location),
            hook,
            raw,
            winner_reply,
        })
    }

    /// The reason from the counters the program saw move at the free
    /// (`RawDrop::counted`): the kernel-side classification.
    fn by_counted(
        &mut self,
        raw: &RawDrop,
        c: Counted,
        nat: bool,
        winner_reply: &mut Option<Tuple>,
    ) -> DropReason {
        match raw.state {
            EntryState::NoEntry if c.drop => DropReason::TableFull,
            EntryState::NoEntry => DropReason::Other(OtherKind::NoEntry),
            EntryState::InsertFailed | EntryState::Unconfirmed if c.insert_failed => {
                if c.chaintoolong && !c.drop {
                    DropReason::ChainTooLong
                } else if c.drop {
                    // Only nf_ct_resolve_clash's failure counts drop and
                    // insert_failed for a loser at confirmation. The winner
                    // is looked up for its mapping only.
                    *winner_reply = self.winner(raw).flatten();
                    DropReason::UnresolvedClash
                } else {
                    // A dying entry, or nf_ct_ext_valid_pre() failed.
                    DropReason::Dying
                }
            }
            // No failure that drops a packet counted (chaintoolong alone
            // moved for ctnetlink's refusals, which free no packet).
            EntryState::InsertFailed | EntryState::Unconfirmed => {
                if !c.drop && nat {
                    DropReason::NatFailure
                } else {
                    DropReason::Other(OtherKind::Unconfirmed)
                }
            }
            EntryState::Dying if !c.drop && !c.insert_failed && nat => DropReason::NatFailure,
            EntryState::Dying => DropReason::Dying,
            EntryState::InTable => DropReason::Other(OtherKind::InTable),
            EntryState::Unknown(_) => DropReason::Other(OtherKind::Unknown),
        }
    }

    /// The reason from ctnetlink's per-CPU counters, read after the fact:
    /// for the first drop the program saw on a CPU in a namespace, which
    /// had no earlier reading to compare with.
    fn by_ctnetlink(
        &mut self,
        raw: &RawDrop,
        nat: bool,
        winner_reply: &mut Option<Tuple>,
    ) -> DropReason {
        let (ns, cpu) = (raw.netns, raw.cpu);
        self.stamp = raw.monotonic_ns;
        match raw.state {
            EntryState::NoEntry => {
                if self.claim(ns, cpu, &[Counter::Drop]) || self.table_full(ns) {
                    DropReason::TableFull
                } else {
                    DropReason::Other(OtherKind::NoEntry)
                }
            }
            // Lost at confirmation, or (unconfirmed) a ruleset verdict:
            // every loss at confirmation counted insert_failed first.
            EntryState::InsertFailed | EntryState::Unconfirmed => {
                let failed = self.available(ns, cpu, Counter::InsertFailed);
                // Just read: no second look at the counters.
                let chain = self.peek(ns, cpu, Counter::ChainTooLong);
                let drop = self.peek(ns, cpu, Counter::Drop);
                if !failed {
                    if nat {
                        DropReason::NatFailure
                    } else {
                        DropReason::Other(OtherKind::Unconfirmed)
                    }
                } else if chain && !drop {
                    // The chain cap does not count drop; a clash does. (The
                    // tuple may still be in the table: the other copy of a
                    // flow's first packet, inserted before the cap hit.)
                    self.claim(ns, cpu, &[Counter::ChainTooLong, Counter::InsertFailed]);
                    DropReason::ChainTooLong
                } else if let Some(w) = self.winner(raw) {
                    *winner_reply = w;
                    self.claim(ns, cpu, &[Counter::InsertFailed, Counter::Drop]);
                    DropReason::UnresolvedClash
                } else if drop {
                    // A clash whose winner was gone by the lookup (seen in
                    // the lab's TCP NAT race on 6.18, a few in a
                    // thousand): only nf_ct_resolve_clash's failure counts
                    // drop and insert_failed for a loser at confirmation
                    // (the chain cap and a dying entry do not count drop).
                    self.claim(ns, cpu, &[Counter::InsertFailed, Counter::Drop]);
                    DropReason::UnresolvedClash
                } else if self.claim(ns, cpu, &[Counter::ChainTooLong, Counter::InsertFailed]) {
                    DropReason::ChainTooLong
                } else {
                    // nf_ct_ext_valid_pre() failed.
                    self.claim(ns, cpu, &[Counter::InsertFailed]);
                    DropReason::Dying
                }
            }
            EntryState::Dying => {
                if self.claim(ns, cpu, &[Counter::InsertFailed])
                    || self.claim(ns, cpu, &[Counter::Drop])
                    || !nat
                {
                    DropReason::Dying
                } else {
                    DropReason::NatFailure
                }
            }
            EntryState::InTable => DropReason::Other(OtherKind::InTable),
            EntryState::Unknown(_) => DropReason::Other(OtherKind::Unknown),
        }
    }

    /// For a record with a walked stack (the program walks it for the
    /// drops no counter explains that may be NAT's): the hook, and whether
    /// NAT dropped the packet. Exact when the packet was freed inside
    /// NAT's hook function (a frame in `nf_nat_inet_fn`, which runs the
    /// NAT chains: on 6.18 nft_do_chain() frees the packet of a `drop`
    /// verdict itself, so a MASQUERADE's NF_DROP is freed with
    /// nf_nat_inet_fn on the stack); otherwise, when the verdict came back
    /// to `nf_hook_slow` before the free, from the hook and the entry's
    /// NAT bits ([`nat_step`]).
    fn nat_verdict(&mut self, raw: &RawDrop) -> (Option<NfHook>, bool) {
        let Some(stack) = raw.stack else {
            return (None, false);
        };
        let syms = self.kallsyms.get_or_insert_with(read_kallsyms);
        let hook = NfHook::from_stack(&stack, |a| function_at(syms, a));
        let in_nat = stack
            .iter()
            .any(|&a| a != 0 && function_at(syms, a).is_some_and(is_nat_hook_function));
        let at_hook =
            function_at(syms, raw.location).is_some_and(|f| f.starts_with("nf_hook_slow"));
        (hook, in_nat || (at_hook && nat_step(raw, hook)))
    }

    fn wall(&self, mono: u64) -> SystemTime {
        match self.wall_offset {
            Some((wall, at)) if mono >= at => wall + Duration::from_nanos(mono - at),
            Some((wall, at)) => wall - Duration::from_nanos(at - mono),
            None => SystemTime::now(),
        }
    }

    /// A ctnetlink socket in the namespace with this inode.
    fn socket(&mut self, inum: u32) -> Option<&mut Conntrack> {
        if !self.sockets.contains_key(&inum) {
            let ns = self.known.get(&inum).cloned().or_else(|| find_netns(inum));
            let ct = ns.and_then(|ns| Conntrack::open_in(&ns).ok());
            self.sockets.insert(inum, ct);
        }
        self.sockets.get_mut(&inum).and_then(Option::as_mut)
    }

    /// Reads the namespace's per-CPU counters and credits what moved
    /// since the last read.
    fn refresh(&mut self, inum: u32) {
        let Some(ct) = self.socket(inum) else {
            return;
        };
        let at = crate::sys::monotonic_ns();
        let Ok(cpus) = ct.stats_cpu() else {
            return;
        };
        self.read_at.insert(inum, at);
        for c in cpus {
            let Some(cpu) = c.cpu else {
                continue;
            };
            let e = self.credits.entry((inum, cpu)).or_default();
            for (k, counter) in Credit::COUNTERS.iter().enumerate() {
                let now = c.get(*counter).unwrap_or(0);
                if e.primed {
                    e.unclaimed[k] += u64::from(now.wrapping_sub(e.seen[k]));
                }
                e.seen[k] = now;
            }
            e.primed = true;
        }
    }

    /// Whether `counter` has an unclaimed count, without reading again.
    fn peek(&self, inum: u32, cpu: u32, counter: Counter) -> bool {
        let k = Credit::index(counter);
        self.credits
            .get(&(inum, cpu))
            .is_some_and(|e| e.unclaimed[k] > 0)
    }

    /// Whether `counter` counted something on this CPU in this namespace
    /// that no record claimed (reading the counters again if not).
    fn available(&mut self, inum: u32, cpu: u32, counter: Counter) -> bool {
        // Counters read after the record was written already hold its
        // counts: reading again would find nothing new.
        let stale = self.read_at.get(&inum).is_none_or(|&at| at <= self.stamp);
        if !self.peek(inum, cpu, counter) && stale {
            self.refresh(inum);
        }
        self.peek(inum, cpu, counter)
    }

    /// Claims one count of each of `counters` (all or none): a record
    /// explains what the kernel counted. A drop with no entry that
    /// conntrack counted is a failed allocation (the table was full or,
    /// rarely, memory ran out); one it did not count came from a hook
    /// before conntrack.
    fn claim(&mut self, inum: u32, cpu: u32, counters: &[Counter]) -> bool {
        if !counters.iter().all(|&c| self.available(inum, cpu, c)) {
            return false;
        }
        if let Some(e) = self.credits.get_mut(&(inum, cpu)) {
            for &c in counters {
                e.unclaimed[Credit::index(c)] -= 1;
            }
        }
        true
    }

    /// The namespace's table was at its maximum.
    fn table_full(&mut self, inum: u32) -> bool {
        let Some(ct) = self.socket(inum) else {
            return false;
        };
        match ct.stats_global() {
            Ok((count, Some(max))) if max > 0 => count.saturating_add(1) >= max,
            _ => false,
        }
    }

    /// For an entry that lost at confirmation: `Some(winner's reply)` when
    /// another entry holds its original or reply tuple (a clash), `None`
    /// when none does (the chain cap).
    fn winner(&mut self, raw: &RawDrop) -> Option<Option<Tuple>> {
        let zone = raw.zone.filter(|&z| z != 0);
        let (orig, reply) = (raw.orig?, raw.reply);
        let ct = self.socket(raw.netns)?;
        for t in std::iter::once(orig).chain(reply) {
            match ct.get(&t, zone) {
                Ok(f) => return Some(Some(f.reply)),
                Err(Error::NotFound { .. }) => {}
                Err(_) => return Some(None),
            }
        }
        None
    }

    fn symbol(&mut self, addr: u64) -> Option<String> {
        if addr == 0 {
            return None;
        }
        let syms = self.kallsyms.get_or_insert_with(read_kallsyms);
        let i = syms.partition_point(|(a, _)| *a <= addr);
        let (base, name) = syms.get(i.checked_sub(1)?)?;
        Some(format!("{name}+{:#x}", addr - base))
    }
}

/// `[start, end)` of a text symbol: to the next symbol's address.
fn symbol_range(syms: &[(u64, String)], name: &str) -> Option<(u64, u64)> {
    let i = syms.iter().position(|(_, n)| n == name)?;
    let start = syms[i].0;
    let end = syms[i + 1..].iter().map(|(a, _)| *a).find(|&a| a > start)?;
    Some((start, end))
}

/// The function holding `addr` in sorted text symbols.
fn function_at(syms: &[(u64, String)], addr: u64) -> Option<&str> {
    let i = syms.partition_point(|(a, _)| *a <= addr);
    syms.get(i.checked_sub(1)?).map(|(_, n)| n.as_str())
}

/// NAT's hook functions: `nf_nat_inet_fn` (net/netfilter/nf_nat_core.c)
/// and the per-family entries that call it (`nf_nat_ipv4_out`,
/// `nf_nat_ipv6_fn`, ...: net/netfilter/nf_nat_proto.c).
fn is_nat_hook_function(f: &str) -> bool {
    f == "nf_nat_inet_fn" || f.starts_with("nf_nat_ipv4_") || f.starts_with("nf_nat_ipv6_")
}

/// Whether a drop no conntrack failure explains (neither `drop` nor
/// `insert_failed` counted) happened at the NAT step of its
/// entry: at a hook where NAT runs, with that hook's mapping not done
/// (`IPS_SRC_NAT_DONE` / `IPS_DST_NAT_DONE`: nf_nat_setup_info() sets it
/// when the mapping is made, net/netfilter/nf_nat_core.c), or, for a
/// dying source-NAT'd entry at POSTROUTING, the masquerade's output
/// interface changed (nf_nat_inet_fn(): nf_nat_oif_changed() kills the
/// entry and returns NF_DROP). A chain of the ruleset hooked at the same
/// hook before NAT's priority (a filter chain at postrouting with a
/// priority below srcnat's 100, or at prerouting below dstnat's -100)
/// dropping a new flow looks the same here; under nf_tables on 6.18 the
/// stack tells it apart before this is asked (the chain frees its own
/// drops in nft_do_chain(), with no NAT function below), under x_tables
/// it does not (trace/mod.rs, "What it cannot tell apart").
fn nat_step(raw: &RawDrop, hook: Option<NfHook>) -> bool {
    const IPS_SRC_NAT: u32 = 1 << 4;
    const IPS_SRC_NAT_DONE: u32 = 1 << 7;
    const IPS_DST_NAT_DONE: u32 = 1 << 8;
    let (Some(hook), Some(status)) = (hook, raw.status) else {
        return false;
    };
    match (raw.state, hook.nat_manip()) {
        (EntryState::Dying, Some(NatManip::Source)) => {
            hook == NfHook::PostRouting && status & IPS_SRC_NAT != 0
        }
        (EntryState::Dying, _) => false,
        (_, Some(NatManip::Source)) => status & IPS_SRC_NAT_DONE == 0,
        (_, Some(NatManip::Destination)) => status & IPS_DST_NAT_DONE == 0,
        (_, None) => false,
    }
}

/// See [`Classifier::claim`].
#[derive(Default)]
struct Credit {
    primed: bool,
    seen: [u32; 3],
    unclaimed: [u64; 3],
}

impl Credit {
    const COUNTERS: [Counter; 3] = [Counter::Drop, Counter::InsertFailed, Counter::ChainTooLong];

    fn index(c: Counter) -> usize {
        Self::COUNTERS.iter().position(|&x| x == c).unwrap_or(0)
    }
}

/// Text symbols of /proc/kallsyms, sorted (empty when addresses are
/// hidden by kptr_restrict).
fn read_kallsyms() -> Vec<(u64, String)> {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let mut v: Vec<(u64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let addr = u64::from_str_radix(w.next()?, 16).ok()?;
            let kind = w.next()?;
            let name = w.next()?;
            (addr != 0 && matches!(kind, "t" | "T")).then(|| (addr, name.to_owned()))
        })
        .collect();
    v.sort_unstable();
    v
}

/// A namespace file with this inode: a named one, or a process's.
fn find_netns(inum: u32) -> Option<Netns> {
    let named = std::fs::read_dir("/var/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    let procs = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .map(|e| e.path().join("ns/net"));
    named
        .chain(procs)
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() as u32 == inum))
        .map(Netns::Path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(state: EntryState, status: Option<u32>, counted: Option<Counted>) -> RawDrop {
        let t = conntrack_core::Tuple::new(
            "198.18.0.2".parse().unwrap(),
            "198.19.0.2".parse().unwrap(),
            conntrack_core::L4Proto::UDP,
            conntrack_core::L4Tuple::Ports { src: 4000, dst: 53 },
        );
        RawDrop {
            state,
            cpu: 0,
            monotonic_ns: 1,
            location: 0,
            netns: 1,
            orig: Some(t),
            reply: t.inverse(),
            zone: Some(0),
            mark: Some(0),
            status,
            counted,
            output_dev: false,
            stack: None,
        }
    }

    const SRC_NAT: u32 = 1 << 4;
    const SRC_NAT_DONE: u32 = 1 << 7;
    const DST_NAT_DONE: u32 = 1 << 8;

    #[test]
    fn nat_steps_by_hook_and_mapping() {
        let new = |status| raw(EntryState::Unconfirmed, Some(status), None);
        // Source NAT's hook, source mapping not done: NAT's step.
        assert!(nat_step(&new(DST_NAT_DONE), Some(NfHook::PostRouting)));
        assert!(nat_step(&new(DST_NAT_DONE), Some(NfHook::LocalIn)));
        // Mapping made: a later verdict at that hook is not NAT's step.
        assert!(!nat_step(
            &new(DST_NAT_DONE | SRC_NAT_DONE),
            Some(NfHook::PostRouting)
        ));
        // Destination NAT's hooks.
        assert!(nat_step(&new(0), Some(NfHook::PreRouting)));
        assert!(nat_step(&new(0), Some(NfHook::LocalOut)));
        assert!(!nat_step(&new(DST_NAT_DONE), Some(NfHook::PreRouting)));
        // FORWARD never is; no hook or no entry is not evidence.
        assert!(!nat_step(&new(0), Some(NfHook::Forward)));
        assert!(!nat_step(&new(0), None));
        assert!(!nat_step(
            &raw(EntryState::NoEntry, None, None),
            Some(NfHook::PostRouting)
        ));
        // A masqueraded flow killed at POSTROUTING (its interface changed).
        let dying = |status| raw(EntryState::Dying, Some(status), None);
        let mapped = SRC_NAT | SRC_NAT_DONE | DST_NAT_DONE;
        assert!(nat_step(&dying(mapped), Some(NfHook::PostRouting)));
        assert!(!nat_step(&dying(DST_NAT_DONE), Some(NfHook::PostRouting)));
        assert!(!nat_step(&dying(mapped), Some(NfHook::PreRouting)));
    }

    #[test]
    fn nat_hook_functions() {
        assert!(is_nat_hook_function("nf_nat_inet_fn"));
        assert!(is_nat_hook_function("nf_nat_ipv4_out"));
        assert!(is_nat_hook_function("nf_nat_ipv6_fn"));
        assert!(!is_nat_hook_function("nft_do_chain"));
        assert!(!is_nat_hook_function("nf_hook_slow"));
        let syms = vec![(0x100, "a".to_owned()), (0x200, "b".to_owned())];
        assert_eq!(function_at(&syms, 0x1ff), Some("a"));
        assert_eq!(function_at(&syms, 0x200), Some("b"));
        assert_eq!(function_at(&syms, 0xff), None);
        assert_eq!(symbol_range(&syms, "a"), Some((0x100, 0x200)));
        assert_eq!(symbol_range(&syms, "b"), None, "no symbol after it");
        assert_eq!(symbol_range(&syms, "c"), None);
    }

    #[test]
    fn counted_records_name_their_reason_in_the_kernel_order() {
        let mut c = Classifier::new();
        let moved = |drop, insert_failed, chaintoolong| Counted {
            drop,
            insert_failed,
            chaintoolong,
        };
        let mut w = None;
        let none = Counted::default();
        let mut reason = |state, status, counted: Counted, nat| {
            c.by_counted(&raw(state, status, Some(counted)), counted, nat, &mut w)
        };
        assert_eq!(
            reason(EntryState::NoEntry, None, moved(true, false, false), false),
            DropReason::TableFull
        );
        assert_eq!(
            reason(EntryState::NoEntry, None, none, false),
            DropReason::Other(OtherKind::NoEntry)
        );
        let st = Some(DST_NAT_DONE);
        assert_eq!(
            reason(EntryState::Unconfirmed, st, moved(false, true, true), false),
            DropReason::ChainTooLong
        );
        assert_eq!(
            reason(
                EntryState::Unconfirmed,
                st,
                moved(false, true, false),
                false
            ),
            DropReason::Dying
        );
        assert_eq!(
            reason(EntryState::Unconfirmed, st, none, false),
            DropReason::Other(OtherKind::Unconfirmed)
        );
        assert_eq!(
            reason(EntryState::Unconfirmed, st, none, true),
            DropReason::NatFailure
        );
        // A counter moved: conntrack's failure, whatever the stack says.
        assert_eq!(
            reason(EntryState::Unconfirmed, st, moved(false, true, true), true),
            DropReason::ChainTooLong
        );
        assert_eq!(
            reason(EntryState::Dying, st, moved(false, true, false), true),
            DropReason::Dying
        );
        assert_eq!(
            reason(EntryState::Dying, st, none, true),
            DropReason::NatFailure
        );
        assert_eq!(
            reason(EntryState::InTable, st, none, false),
            DropReason::Other(OtherKind::InTable)
        );
    }

    /// Both objects pass this kernel's verifier (the compatible one is
    /// what kernels older than 6.17 run; here both are loaded, not
    /// attached), the direct one where the kernel advertises its cast.
    #[test]
    fn both_objects_load() {
        if !conntrack_core::testkit::is_root() || crate::trace::check_support().is_err() {
            eprintln!("skipped: needs root and tracing support");
            return;
        }
        let direct = crate::trace::kernel_casts_to_void();
        if !direct {
            eprintln!("the direct object not tried: no BPF_FEAT_RDONLY_CAST_TO_VOID (before 6.17)");
        }
        let objects = [("direct", BPF_OBJECT), ("compat", BPF_OBJECT_COMPAT)];
        for (name, bytes) in objects
            .into_iter()
            .filter(|(n, _)| direct || *n == "compat")
        {
            if let Err(e) = load_object(bytes) {
                panic!("the {name} object does not load: {e}");
            }
        }
    }

    #[test]
    fn verifier_log_is_cut_out() {
        let all = "libbpf: x\n-- BEGIN PROG LOAD LOG --\nR1 invalid mem access\n-- END PROG LOAD LOG --\nmore";
        assert_eq!(verifier_log(all), "R1 invalid mem access");
        assert_eq!(verifier_log(" plain "), "plain");
    }
}
