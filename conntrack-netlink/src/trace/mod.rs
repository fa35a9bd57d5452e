//! Per-drop attribution: which conntrack failure dropped each packet, for
//! which flow.
//!
//! With feature `trace`, `Tracer` loads an eBPF program on the
//! `skb:kfree_skb` tracepoint that keeps the packets netfilter dropped
//! (`SKB_DROP_REASON_NETFILTER_DROP`) and records the conntrack entry each
//! one carried; the tracer names the [`DropReason`] from that entry's
//! state and from the conntrack counters of the packet's namespace and CPU
//! (ctnetlink's per-CPU statistics): every conntrack drop is counted on the
//! CPU that drops the packet, right before it does, so each record claims
//! the counts it explains (`drop` for a table-full refusal, `drop` and
//! `insert_failed` for a clash, `chaintoolong` and `insert_failed` for the
//! chain cap) and a drop that claims none came from the ruleset. A clash
//! is told from the chain cap by its winner, which ctnetlink finds under
//! the same tuple.
//! Each [`DropRecord`] is [`FlowLike`], so records aggregate into the same
//! hotspot keys as flows (`conntrack_analyze::hotspots::Hotspots::add`).
//!
//! The record decoding ([`record`]) and the reasons build without the
//! feature; only loading the program needs it (and clang at build time).
//!
//! | reason | kernel path | counters it moves |
//! |---|---|---|
//! | [`DropReason::TableFull`] | `__nf_conntrack_alloc`: count > `nf_conntrack_max` and `early_drop` evicted nothing | `drop` |
//! | [`DropReason::UnresolvedClash`] | `nf_ct_resolve_clash` returned `NF_DROP` | `drop`, `insert_failed` |
//! | [`DropReason::ChainTooLong`] | `__nf_conntrack_confirm`: chain longer than `max_chainlen` | `chaintoolong`, `insert_failed` |
//! | [`DropReason::Dying`] | `__nf_conntrack_confirm`: dying entry, or `nf_ct_ext_valid_post` | `insert_failed` (or `drop`) |
//! | [`DropReason::Other`] | a ruleset or NAT verdict, or a hook before conntrack (only with `TraceConfig::include_ruleset`) | none |
//!
//! Function tracing (fentry/fexit on `__nf_conntrack_confirm`,
//! `nf_ct_resolve_clash`, `early_drop`) would see each decision directly,
//! but kernels that refuse trampolines (`EPERM`, as on some sandboxed VMs)
//! or lack them would get nothing; the tracepoint is there on every 6.0+
//! kernel with BTF. A NAT failure (`nf_nat_setup_info` returning
//! `NF_DROP`) moves no counter and is reported as `Other`; a clash after
//! NAT shows the mapping in the record's reply tuple and the winner's.

pub mod record;

#[cfg(feature = "trace")]
mod loader;
#[cfg(feature = "trace")]
pub use loader::{TraceConfig, Tracer};

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
                state: EntryState::NoEntry,
                cpu: 0,
                monotonic_ns: 0,
                location: 0,
                netns: 1,
                orig: Some(t),
                reply: None,
                zone: None,
                mark: Some(7),
                status: None,
                counted: None,
                output_dev: false,
                stack: None,
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
    fn reasons_have_distinct_names() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
        assert!(DropReason::TableFull.counts_drop());
        assert!(!DropReason::ChainTooLong.counts_drop());
    }
}
