//! Per-drop attribution: which conntrack (or NAT) failure dropped each
//! packet, for which flow.
//!
//! With feature `trace`, `Tracer` loads an eBPF program on the
//! `skb:kfree_skb` tracepoint that keeps the packets netfilter dropped
//! (`SKB_DROP_REASON_NETFILTER_DROP`) and classifies each in the kernel, at
//! the moment of the free:
//!
//! - **Which counters moved.** The program reads this CPU's conntrack
//!   counters of the packet's namespace (`net->ct.stat`, per CPU) and keeps
//!   the last values seen per (CPU, namespace) in a per-CPU map. Every
//!   conntrack failure that ends in `NF_DROP` counts on the CPU that drops
//!   the packet, right before `nf_hook_slow()` (net/netfilter/core.c)
//!   frees it: `NF_CT_STAT_INC` and `NF_CT_STAT_INC_ATOMIC`
//!   (include/net/netfilter/nf_conntrack.h) are `__this_cpu_inc` and
//!   `this_cpu_inc`, and in net/netfilter/nf_conntrack_core.c the table-full
//!   refusal counts `drop` in nf_conntrack_in() ("Too stressed to deal")
//!   and returns `NF_DROP`, nf_ct_resolve_clash() counts `drop` and
//!   `insert_failed` and returns `NF_DROP`, and __nf_conntrack_confirm()
//!   counts `chaintoolong` and `insert_failed` (chain cap) or
//!   `insert_failed` (dying entry, nf_ct_ext_valid_pre) and returns
//!   `NF_DROP`, all within the hook that returns the verdict, with bottom
//!   halves off for forwarded traffic. So the counters a drop moved since
//!   the previous drop on that CPU name its failure, and a drop that moved
//!   none is a ruleset (or NAT) verdict. Conntrack never frees the packet
//!   itself (it returns `NF_DROP`), so a packet freed outside
//!   `nf_hook_slow` (6.18's nf_tables frees a `drop` verdict in
//!   `nft_do_chain`) is no conntrack failure and the program skips the
//!   counter read for it (`nf_hook_slow`'s range comes from
//!   /proc/kallsyms; without addresses every drop reads the counters).
//! - **Ruleset drops cost no record.** A drop no counter explains and that
//!   cannot be NAT's is counted in a per-CPU map (`Tracer::unrecorded`)
//!   instead of being written to the ring buffer, unless
//!   `TraceConfig::include_ruleset` asks for the records.
//! - **NAT failures are their own reason** ([`DropReason::NatFailure`]).
//!   NAT's `NF_DROP` moves no counter. Only for a drop no counter explains
//!   whose entry may be at a NAT step (unconfirmed and without
//!   `IPS_DST_NAT_DONE`; or unconfirmed or dying, with `skb->dev` equal to
//!   its route's device, which `ip_output()` sets before POSTROUTING) does
//!   the program walk the kernel stack (`bpf_get_stack`, 12 frames).
//!   User space names the hook from the caller of `nf_hook_slow`
//!   ([`NfHook::of_caller`]: `ip_output` is POSTROUTING, `ip_forward`
//!   FORWARD, ...) and calls the drop NAT's when NAT's hook function
//!   (`nf_nat_inet_fn`, which runs the NAT chains) is on the stack: on
//!   6.18 nf_tables frees the packet of a `drop` verdict inside
//!   `nft_do_chain`, so a MASQUERADE's `NF_DROP` ("ate my IP address",
//!   nf_nat_masquerade_ipv4() in net/netfilter/nf_nat_masquerade.c) is
//!   freed with `nf_nat_inet_fn` on the stack (seen in the lab:
//!   `sk_skb_reason_drop <- nft_do_chain <- nft_nat_do_chain <-
//!   nf_nat_inet_fn <- nf_nat_ipv4_out <- nf_hook_slow <- ip_output`).
//!   When the verdict came back to `nf_hook_slow` before the free (older
//!   kernels, iptables), the drop is NAT's when it happened at a NAT hook
//!   with that hook's mapping not done: source NAT at POSTROUTING/LOCAL_IN
//!   without `IPS_SRC_NAT_DONE`, destination NAT at PREROUTING/LOCAL_OUT
//!   without `IPS_DST_NAT_DONE` (nf_nat_setup_info() sets them when a
//!   mapping is made, null bindings included), or a dying entry with
//!   `IPS_SRC_NAT` at POSTROUTING (nf_nat_inet_fn(): the masqueraded
//!   flow's output interface changed, nf_ct_kill() and `NF_DROP`).
//!
//! - **Cheap on the per-drop path.** Every `kfree_skb` runs the program
//!   and all but netfilter's drops leave at the first test. For a
//!   netfilter drop the entry's namespace, status and hash link and the
//!   route's device are read with plain loads on Linux 6.17+ (the entry
//!   cast with `bpf_rdonly_cast(ptr, 0)`; the BPF source says why not to
//!   its type), with `bpf_probe_read_kernel()` on older kernels: build.rs
//!   compiles both objects; the loader takes the first when the kernel's
//!   BTF has `BPF_FEAT_RDONLY_CAST_TO_VOID` and falls back to the second
//!   when the kernel refuses it anyway. `Tracer::program_stats` and
//!   `RunTimeStats` measure it.
//!
//! What it cannot tell apart, each case pinned by a live test in
//! `tests/lab_trace.rs` (on 6.18.44, nftables and iptables-legacy):
//!
//! - **A `drop` verdict written in a NAT chain** is a NAT failure to it,
//!   at that chain's hook (`a_drop_rule_in_a_nat_chain_is_reported_as_a_nat_failure`:
//!   `udp dport 11 drop` in the srcnat chain is `NatFailure` at
//!   POSTROUTING, in the dstnat chain at PREROUTING). nft_do_chain() frees
//!   the packet of every `NF_DROP` its chain returns, a rule's as
//!   MASQUERADE's, in the same place with `nf_nat_inet_fn` below it, and
//!   the entry's NAT bits are the same (that hook's mapping not made):
//!   nothing in the record differs.
//! - **A chain hooked before NAT at NAT's hook** (postrouting below
//!   srcnat's priority 100, prerouting below dstnat's -100) dropping a new
//!   flow leaves the entry as NAT's step would find it, so the stack is
//!   walked. With nftables on 6.18 it is told apart: the packet is freed
//!   in nft_do_chain(), outside `nf_hook_slow`, with no NAT hook function
//!   on the stack, so it is a ruleset verdict (`Other(Unconfirmed)`, hook
//!   named; `a_filter_chain_before_nat_is_not_a_nat_failure`). Where the
//!   verdict comes back to `nf_hook_slow` before the free (x_tables, whose
//!   mangle table hooks PREROUTING and POSTROUTING at -150 and may DROP;
//!   kernels before nf_tables freed its own drops), the hook and the NAT
//!   bits decide, and it is a `NatFailure`
//!   (`an_iptables_mangle_drop_before_nat_is_taken_for_a_nat_failure`).
//! - **NAT of locally delivered packets** (LOCAL_IN) is recognised by the
//!   stack only (`skb->dev` is the input device there), which the program
//!   walks only when `IPS_DST_NAT_DONE` is missing.
//! - **Counters moved by a path that frees no packet through netfilter**
//!   (ctnetlink's chain-cap refusals in nf_conntrack_hash_check_insert(),
//!   which count `chaintoolong` on the inserting thread's CPU; openvswitch
//!   and tc's act_ct confirming entries) are credited to the next drop on
//!   that CPU in that namespace whose counters the program reads, those
//!   freed in `nf_hook_slow`. NAT's drops under nftables are freed in
//!   nft_do_chain(), where no counter is read: they stay `NatFailure`
//!   after such refusals (`ctnetlink_refusals_before_nat_failures_on_one_cpu`;
//!   the refusals make no record, so `chaintoolong` then exceeds the
//!   chain-cap records). An x_tables MASQUERADE's drop is freed in
//!   `nf_hook_slow`: the first one after refusals on its CPU (once an
//!   earlier drop there gave the program its baseline) sees
//!   `chaintoolong` moved. NAT candidacy is decided on "neither `drop`
//!   nor `insert_failed` moved" (every refusal at confirmation counts
//!   `insert_failed`, so `chaintoolong` alone belongs to no dropped
//!   packet), so it is still walked and named a NAT failure
//!   (`ctnetlink_refusals_before_an_iptables_masquerade_failure_on_one_cpu`).
//!   Without `/proc/kallsyms` addresses every drop reads the counters,
//!   nftables' NAT drops included.
//! - A locally generated packet preempted and migrated between the count
//!   and the free (kernels with full preemption) would be seen as a
//!   ruleset drop on the other CPU.
//!
//! User space names the [`DropReason`] from the record's counters
//! ([`Counted`]) and state. Where the kernel-side read is impossible it
//! falls back to ctnetlink's per-CPU counters read after the fact: the
//! first drop the program sees on a CPU in a namespace has no earlier
//! reading to compare with (the record says so: `RawDrop::counted` is
//! `None`). A clash's winner (its NAT mapping) is looked up with
//! ctnetlink under the same tuple. Each [`DropRecord`] is [`FlowLike`],
//! so records aggregate into the same hotspot keys as flows
//! (`conntrack_analyze::hotspots::Hotspots::add`).
//!
//! The record decoding ([`record`]) and the reasons build without the
//! feature; only loading the program needs it (and clang at build time).
//!
//! | reason | kernel path | counters it moves |
//! |---|---|---|
//! | [`DropReason::TableFull`] | `__nf_conntrack_alloc`: count > `nf_conntrack_max` and `early_drop` evicted nothing | `drop` |
//! | [`DropReason::UnresolvedClash`] | `nf_ct_resolve_clash` returned `NF_DROP` | `drop`, `insert_failed` |
//! | [`DropReason::ChainTooLong`] | `__nf_conntrack_confirm`: chain longer than `max_chainlen` | `chaintoolong`, `insert_failed` |
//! | [`DropReason::Dying`] | `__nf_conntrack_confirm`: dying entry, or `nf_ct_ext_valid_pre` | `insert_failed` |
//! | [`DropReason::NatFailure`] | NAT's hook: `nf_nat_masquerade_ipv4` without an address, `nf_nat_setup_info`, `nf_nat_oif_changed` | none |
//! | [`DropReason::Other`] | a ruleset verdict, or a hook before conntrack (records only with `TraceConfig::include_ruleset`) | none |
//!
//! ## Why not fentry/fexit
//!
//! Function tracing (fexit on `nf_nat_setup_info`, `nf_nat_inet_fn`,
//! `__nf_conntrack_confirm`, `nf_ct_resolve_clash`) would see each
//! decision directly, but the project VM's kernel (6.18.44, `lockdown`
//! integrity, CONFIG_FUNCTION_TRACER=y, CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS=y,
//! CONFIG_KPROBES unset) refuses every fentry/fexit program at
//! `BPF_PROG_LOAD` with `EPERM`, on any target (`bpf_fentry_test1`,
//! `tcp_v4_rcv`, `nf_nat_setup_info`), as root with every capability in
//! the initial user namespace, while `tp_btf` programs load and attach.
//! What was established: the refusal comes before the verifier writes a
//! line (its log is empty at level 2, where any rejection in
//! check_attach_btf_id()/bpf_check_attach_target(), kernel/bpf/verifier.c,
//! would explain itself); it is not lockdown (integrity mode blocks only
//! the reasons up to `LOCKDOWN_INTEGRITY_MAX`, include/linux/security.h,
//! and tracing ones such as `LOCKDOWN_TRACEFS` and `LOCKDOWN_KPROBES` are
//! confidentiality-level; security/lockdown/lockdown.c would also log
//! "Lockdown: ... is restricted", and none was logged); no BPF-LSM
//! program is attached (`bpftool prog list` shows none), no seccomp filter
//! applies, `unprivileged_bpf_disabled` does not matter to root. The same
//! kernel refuses root opening ftrace's function files
//! (`/sys/kernel/tracing/available_filter_functions`, `set_ftrace_filter`,
//! `enabled_functions`: `EPERM`) while its event files open: this build
//! (a vendor kernel, `-fc`) refuses function tracing, and with it BPF
//! trampolines, outside upstream's checks. So the tracepoint, which every
//! 6.0+ kernel with BTF has, is the mechanism, and fentry is not a
//! fallback worth carrying. The counters' per-CPU offset is read through a
//! per-CPU map (see the BPF source): a typed per-CPU ksym
//! (`this_cpu_off`) fails to load on this kernel ("ldimm64 failed to find
//! the address for kernel symbol", kernel/bpf/verifier.c: the kernel
//! resolves it through kallsyms, which lists no data symbols without
//! CONFIG_KALLSYMS_ALL).

pub mod record;

#[cfg(feature = "trace")]
mod loader;
#[cfg(feature = "trace")]
pub use loader::{ProgramStats, RunTimeStats, TraceConfig, Tracer};

use conntrack_core::{Counters, FlowLike, ProtoInfo, Status, Tuple};
pub use record::{Counted, EntryState, RawDrop, RecordError};
use std::fmt;
use std::time::SystemTime;

/// Why conntrack dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// The table was full and `early_drop()` found nothing to evict
    /// (`__nf_conntrack_alloc`, net/netfilter/nf_conntrack_core.c).
    TableFull,
    /// The flow's tuple was already in the table and the clash could not
    /// be resolved (`nf_ct_resolve_clash`): TCP, or UDP whose NAT mappings
    /// differ. The record's reply tuple is the loser's NAT mapping.
    UnresolvedClash,
    /// A hash chain was longer than `max_chainlen`
    /// (`__nf_conntrack_confirm`, kernels 5.15+ and backports).
    ChainTooLong,
    /// The entry was dying at confirmation, or its extension area changed
    /// (`nf_ct_ext_valid_pre`, or `nf_ct_ext_valid_post` which kills it).
    Dying,
    /// NAT itself returned `NF_DROP` (no conntrack counter moves): source
    /// NAT could not set up the mapping, typically a MASQUERADE whose
    /// output interface has no address (`nf_nat_masquerade_ipv4`: "ate my
    /// IP address"), or a masqueraded flow whose output interface changed
    /// (`nf_nat_inet_fn`: `nf_nat_oif_changed`, the entry is killed); or
    /// the destination NAT step of a new flow. Named from the hook the
    /// packet was dropped at and the entry's NAT bits; see the module
    /// docs for what this cannot tell apart. [`DropRecord::hook`] says
    /// which hook.
    NatFailure,
    /// Not one of the above; see [`OtherKind`].
    Other(OtherKind),
}

/// The drops that are not a conntrack failure named above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum OtherKind {
    /// No entry on the packet and no `drop` counted: a hook before
    /// conntrack (the raw table) dropped it.
    NoEntry,
    /// A verdict on a flow's first packet, before confirmation, that no
    /// conntrack counter explains and that was not at a NAT step: the
    /// ruleset.
    Unconfirmed,
    /// A ruleset verdict on a packet of a flow in the table.
    InTable,
    /// A state this build does not know.
    Unknown,
}

impl DropReason {
    /// Every reason, in report order.
    pub const ALL: [DropReason; 9] = [
        DropReason::TableFull,
        DropReason::UnresolvedClash,
        DropReason::ChainTooLong,
        DropReason::Dying,
        DropReason::NatFailure,
        DropReason::Other(OtherKind::NoEntry),
        DropReason::Other(OtherKind::Unconfirmed),
        DropReason::Other(OtherKind::InTable),
        DropReason::Other(OtherKind::Unknown),
    ];

    /// A snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::TableFull => "table_full",
            DropReason::UnresolvedClash => "unresolved_clash",
            DropReason::ChainTooLong => "chain_too_long",
            DropReason::Dying => "dying",
            DropReason::NatFailure => "nat_failure",
            DropReason::Other(OtherKind::NoEntry) => "other_no_entry",
            DropReason::Other(OtherKind::Unconfirmed) => "other_unconfirmed",
            DropReason::Other(OtherKind::InTable) => "other_in_table",
            DropReason::Other(OtherKind::Unknown) => "other_unknown",
        }
    }

    /// Whether the kernel counts this drop in `drop` (table full,
    /// unresolved clash); `insert_failed` counts clashes, chain-cap
    /// refusals and dying entries; `chaintoolong` the chain cap alone.
    pub const fn counts_drop(self) -> bool {
        matches!(self, DropReason::TableFull | DropReason::UnresolvedClash)
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A netfilter hook (`enum nf_inet_hooks`, include/uapi/linux/netfilter.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NfHook {
    /// `NF_INET_PRE_ROUTING`: destination NAT of arriving packets.
    PreRouting,
    /// `NF_INET_LOCAL_IN`: source NAT of locally delivered packets.
    LocalIn,
    /// `NF_INET_FORWARD`: filtering only.
    Forward,
    /// `NF_INET_LOCAL_OUT`: destination NAT of local packets.
    LocalOut,
    /// `NF_INET_POST_ROUTING`: source NAT (MASQUERADE, SNAT).
    PostRouting,
}

impl NfHook {
    /// The hook whose `NF_HOOK`/`nf_hook` call a kernel function makes
    /// (the function that calls `nf_hook_slow`; net/ipv4/ip_input.c,
    /// ip_forward.c, ip_output.c and their ipv6 twins ip6_input.c,
    /// ip6_output.c), `None` for any other.
    pub fn of_caller(function: &str) -> Option<NfHook> {
        Some(match function {
            "ip_rcv" | "ip_sublist_rcv" | "ipv6_rcv" | "ipv6_sublist_rcv" => NfHook::PreRouting,
            "ip_local_deliver" | "ip6_input" => NfHook::LocalIn,
            "ip_forward" | "ip6_forward" => NfHook::Forward,
            "__ip_local_out" | "__ip6_local_out" => NfHook::LocalOut,
            "ip_output" | "ip_mc_output" | "ip6_output" => NfHook::PostRouting,
            _ => return None,
        })
    }

    /// The hook of a kernel stack (innermost first): the first frame whose
    /// function [`NfHook::of_caller`] knows. `function` names the function
    /// holding an address (from `/proc/kallsyms`).
    pub fn from_stack<'a>(
        stack: &[u64],
        mut function: impl FnMut(u64) -> Option<&'a str>,
    ) -> Option<NfHook> {
        stack
            .iter()
            .filter(|&&a| a != 0)
            .find_map(|&a| function(a).and_then(NfHook::of_caller))
    }

    /// Whether NAT runs here: source NAT at POSTROUTING and LOCAL_IN,
    /// destination NAT at PREROUTING and LOCAL_OUT (the `nf_nat_ipv4_ops`
    /// of net/netfilter/nf_nat_proto.c).
    pub const fn nat_manip(self) -> Option<NatManip> {
        match self {
            NfHook::PostRouting | NfHook::LocalIn => Some(NatManip::Source),
            NfHook::PreRouting | NfHook::LocalOut => Some(NatManip::Destination),
            NfHook::Forward => None,
        }
    }
}

/// Which mapping NAT sets up at a hook (`enum nf_nat_manip_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatManip {
    /// `NF_NAT_MANIP_SRC`: SNAT, MASQUERADE; done when `IPS_SRC_NAT_DONE`.
    Source,
    /// `NF_NAT_MANIP_DST`: DNAT, REDIRECT; done when `IPS_DST_NAT_DONE`.
    Destination,
}

/// One dropped packet, attributed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DropRecord {
    /// When (wall clock, from the kernel's monotonic stamp).
    pub time: SystemTime,
    /// Why.
    pub reason: DropReason,
    /// What the BPF program read (tuples, zone, mark, CPU, namespace).
    pub raw: RawDrop,
    /// The kernel function that freed the packet (`nf_hook_slow+0x9c`),
    /// when `/proc/kallsyms` shows addresses.
    pub location: Option<String>,
    /// The netfilter hook the packet was dropped at, for the drops whose
    /// stack the program walked (those that may be NAT's) and when
    /// `/proc/kallsyms` shows addresses.
    pub hook: Option<NfHook>,
    /// For an unresolved clash: the reply tuple of the entry that won
    /// (its NAT mapping), when ctnetlink still had it.
    pub winner_reply: Option<Tuple>,
}

impl DropRecord {
    /// A record of `raw` named `reason` at `time`, without a kernel
    /// location or a winner's reply tuple (records a caller builds:
    /// replays, tests).
    pub fn new(time: SystemTime, reason: DropReason, raw: RawDrop) -> DropRecord {
        DropRecord {
            time,
            reason,
            raw,
            location: None,
            hook: None,
            winner_reply: None,
        }
    }

    /// The network namespace inode.
    pub fn netns(&self) -> u32 {
        self.raw.netns
    }
}

/// Records count under the same hotspot keys as flows: source, peer,
/// port, protocol, zone, mark, NAT. A record without a reply tuple (table
/// full: no entry existed) uses the inverse of the original; a record
/// without any tuple counts as `0.0.0.0 -> 0.0.0.0`.
impl FlowLike for DropRecord {
    fn orig(&self) -> Tuple {
        self.raw.orig.unwrap_or_else(|| {
            let any = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
            Tuple::new(
                any,
                any,
                conntrack_core::L4Proto(0),
                conntrack_core::L4Tuple::None,
            )
        })
    }
    fn reply(&self) -> Tuple {
        let o = self.orig();
        self.raw.reply.or_else(|| o.inverse()).unwrap_or(o)
    }
    fn status(&self) -> Status {
        Status::from_bits_truncate(self.raw.status.unwrap_or(0))
    }
    fn protoinfo(&self) -> Option<ProtoInfo> {
        None
    }
    fn timeout(&self) -> Option<u32> {
        None
    }
    fn mark(&self) -> Option<u32> {
        self.raw.mark
    }
    fn zone(&self) -> Option<u16> {
        self.raw.zone
    }
    fn counters_orig(&self) -> Option<Counters> {
        None
    }
    fn counters_reply(&self) -> Option<Counters> {
        None
    }
}

/// Why tracing is unavailable, said plainly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The kernel has no BTF (`/sys/kernel/btf/vmlinux`): it was built
    /// without `CONFIG_DEBUG_INFO_BTF`, which CO-RE programs need.
    #[error(
        "tracing unavailable: the kernel has no BTF (/sys/kernel/btf/vmlinux missing; needs CONFIG_DEBUG_INFO_BTF=y)"
    )]
    NoBtf,
    /// The process lacks `CAP_BPF` + `CAP_PERFMON` (or `CAP_SYS_ADMIN`),
    /// or a security module refused the load.
    #[error(
        "tracing unavailable: no privileges to load BPF tracing programs ({0}); run as root or with CAP_BPF and CAP_PERFMON"
    )]
    NoPrivileges(String),
    /// The kernel lacks what the program attaches to or reads.
    #[error("tracing unavailable: the kernel lacks {0}")]
    KernelLacks(&'static str),
    /// The verifier rejected the program; its log says why.
    #[error("tracing unavailable: the BPF verifier rejected the program: {message}\n{log}")]
    VerifierRejected {
        /// libbpf's error.
        message: String,
        /// The verifier's log.
        log: String,
    },
    /// The tracer could not be set up for another reason.
    #[error("tracer: {0}")]
    Setup(String),
    /// The namespace to watch could not be opened.
    #[error("tracer: {0}")]
    Netns(#[source] crate::Error),
}

impl TraceError {
    /// Whether the error means "this machine cannot trace" (as opposed to
    /// a bad argument or an I/O failure).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            TraceError::NoBtf
                | TraceError::NoPrivileges(_)
                | TraceError::KernelLacks(_)
                | TraceError::VerifierRejected { .. }
        )
    }
}

/// The run-time checks made before loading, without loading: BTF,
/// capabilities, and the kernel types the program needs.
pub fn check_support() -> Result<(), TraceError> {
    let btf = match std::fs::read("/sys/kernel/btf/vmlinux") {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(TraceError::NoBtf),
        Err(e) => {
            return Err(TraceError::NoPrivileges(format!(
                "/sys/kernel/btf/vmlinux: {e}"
            )));
        }
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(eff) = cap_eff(&status) {
        let has = |bit: u32| eff & (1u64 << bit) != 0;
        // CAP_SYS_ADMIN 21, CAP_PERFMON 38, CAP_BPF 39.
        if !(has(21) || (has(38) && has(39))) {
            return Err(TraceError::NoPrivileges(format!(
                "effective capabilities {eff:#x} have neither CAP_SYS_ADMIN nor CAP_BPF+CAP_PERFMON"
            )));
        }
    }
    for (name, what) in [
        (
            &b"btf_trace_kfree_skb\0"[..],
            "the skb:kfree_skb tracepoint in BTF (btf_trace_kfree_skb)",
        ),
        (
            &b"SKB_DROP_REASON_NETFILTER_DROP\0"[..],
            "drop reasons (SKB_DROP_REASON_NETFILTER_DROP, Linux 6.0+)",
        ),
        (&b"nf_conn\0"[..], "connection tracking (struct nf_conn)"),
    ] {
        if !contains(&btf, name) {
            return Err(TraceError::KernelLacks(what));
        }
    }
    Ok(())
}

/// Whether the kernel accepts `bpf_rdonly_cast(ptr, 0)` (an untyped,
/// read-only untrusted pointer), which the program's direct reads need:
/// the kernel says so in its BTF with `BPF_FEAT_RDONLY_CAST_TO_VOID` of
/// `enum bpf_features` (include/linux/bpf.h, added with the feature in
/// commit f2362a57aeff, Linux 6.17).
#[cfg(feature = "trace")]
pub(crate) fn kernel_casts_to_void() -> bool {
    std::fs::read("/sys/kernel/btf/vmlinux")
        .is_ok_and(|btf| contains(&btf, b"BPF_FEAT_RDONLY_CAST_TO_VOID\0"))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    // A BTF string is preceded by the NUL that ends the one before.
    hay.windows(needle.len() + 1)
        .any(|w| w[0] == 0 && &w[1..] == needle)
}

fn cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_parse() {
        assert_eq!(
            cap_eff("Name:\tx\nCapEff:\t000001fffeffffff\n"),
            Some(0x1fffeffffff)
        );
        assert_eq!(cap_eff("Name:\tx\n"), None);
    }

    #[test]
    fn btf_strings_need_a_leading_nul() {
        assert!(contains(b"\0abc\0nf_conn\0x", b"nf_conn\0"));
        assert!(!contains(b"\0xnf_conn\0", b"nf_conn\0"));
    }

    #[test]
    fn records_are_flows_for_the_hotspot_keys() {
        use conntrack_core::{L4Proto, L4Tuple};
        let t = Tuple::new(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            L4Proto::UDP,
            L4Tuple::Ports { src: 4000, dst: 53 },
        );
        // Table full: no entry, so no reply tuple, zone or status.
        let mut r = DropRecord {
            time: SystemTime::UNIX_EPOCH,
            reason: DropReason::TableFull,
            raw: RawDrop {
                mark: Some(7),
                ..RawDrop::no_entry(1, 0, t)
            },
            location: None,
            hook: None,
            winner_reply: None,
        };
        assert_eq!(r.orig(), t);
        assert_eq!(Some(r.reply()), t.inverse());
        assert_eq!(r.mark(), Some(7));
        assert_eq!(r.status(), Status::empty());
        assert_eq!(r.flow_nat(), conntrack_core::Nat::default());
        // A clash after DNAT: the reply tuple says where it was sent.
        let mut reply = t.inverse().unwrap();
        reply.src = "10.0.1.9".parse().unwrap();
        r.raw.reply = Some(reply);
        r.raw.status = Some(Status::DST_NAT.bits());
        assert!(r.flow_nat().dnat);
        // No tuple at all still counts (as 0.0.0.0).
        r.raw.orig = None;
        assert!(r.orig().src.is_unspecified());
    }

    #[test]
    fn hooks_from_the_caller_of_nf_hook_slow() {
        // The stack of a MASQUERADE's drop on 6.18 (lab, innermost first).
        let names = [
            "sk_skb_reason_drop",
            "nft_do_chain",
            "nft_nat_do_chain",
            "nf_nat_inet_fn",
            "nf_nat_ipv4_out",
            "nf_hook_slow",
            "ip_output",
            "ip_forward_finish",
        ];
        let stack: Vec<u64> = (1..=names.len() as u64).collect();
        let f = |a: u64| names.get(a as usize - 1).copied();
        assert_eq!(NfHook::from_stack(&stack, f), Some(NfHook::PostRouting));
        assert_eq!(NfHook::from_stack(&[0, 0], f), None);
        assert_eq!(NfHook::of_caller("ip_forward"), Some(NfHook::Forward));
        assert_eq!(NfHook::of_caller("ip6_input"), Some(NfHook::LocalIn));
        assert_eq!(NfHook::of_caller("ipv6_rcv"), Some(NfHook::PreRouting));
        assert_eq!(NfHook::of_caller("__ip_local_out"), Some(NfHook::LocalOut));
        assert_eq!(NfHook::of_caller("nf_hook_slow"), None);
        assert_eq!(NfHook::PostRouting.nat_manip(), Some(NatManip::Source));
        assert_eq!(NfHook::LocalOut.nat_manip(), Some(NatManip::Destination));
        assert_eq!(NfHook::Forward.nat_manip(), None);
    }

    #[test]
    fn reasons_have_distinct_names() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
        assert!(DropReason::TableFull.counts_drop());
        assert!(!DropReason::ChainTooLong.counts_drop());
        assert!(!DropReason::NatFailure.counts_drop());
        assert_eq!(DropReason::NatFailure.name(), "nat_failure");
    }
}
