//! Conntrack statistics: per-CPU counters and the namespace's entry count,
//! as read from `/proc/net/stat/nf_conntrack`, `conntrack -S` or ctnetlink
//! (`IPCTNL_MSG_CT_GET_STATS_CPU`).
//!
//! Counters are named by what they mean, not by where a kernel happened to
//! print them: on 5.10+ the second `/proc` column is `clashres`, which is
//! [`Counter::ClashResolve`], never [`Counter::Searched`].

use crate::KernelVersion;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A per-CPU conntrack counter (`struct ip_conntrack_stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Counter {
    /// Hash chain entries walked (prints 0 since 4.9).
    Searched,
    /// NAT tuple-in-use checks that found an entry.
    Found,
    /// New entries (prints 0 since 4.9).
    New,
    /// Packets that could not be tracked.
    Invalid,
    /// Packets already tracked or untracked (prints 0 since 5.10).
    Ignore,
    /// Entries deleted (prints 0 since 4.9).
    Delete,
    /// Entries deleted from the dying list (prints 0 since 4.9).
    DeleteList,
    /// Entries inserted (4.9+: via ctnetlink/nft only).
    Insert,
    /// Confirm-time insert failures (clash, chain too long, dying entry).
    InsertFailed,
    /// Packets dropped by conntrack (table full, allocation failure,
    /// unresolved clash, a protocol handler rejecting the packet, an
    /// extension that failed at confirm).
    Drop,
    /// Entries evicted on the packet path to make room.
    EarlyDrop,
    /// ICMP/ICMPv6 error handling failures (`icmp_error` in `/proc`).
    Error,
    /// Expectations created by a helper (`expect_new`).
    ExpectNew,
    /// Expectations created (`expect_create`).
    ExpectCreate,
    /// Expectations deleted (`expect_delete`).
    ExpectDelete,
    /// Lookups restarted because an entry moved chains.
    SearchRestart,
    /// Races on the same new flow resolved (5.10+; `clashres` in `/proc`).
    ClashResolve,
    /// Inserts refused because a chain was too long (5.15+; `chainlength`
    /// in `/proc`, `chaintoolong` in `conntrack -S`).
    ChainTooLong,
}

impl Counter {
    /// The number of counters.
    pub const COUNT: usize = 18;

    /// Every counter, in declaration order.
    pub const ALL: [Counter; Counter::COUNT] = [
        Counter::Searched,
        Counter::Found,
        Counter::New,
        Counter::Invalid,
        Counter::Ignore,
        Counter::Delete,
        Counter::DeleteList,
        Counter::Insert,
        Counter::InsertFailed,
        Counter::Drop,
        Counter::EarlyDrop,
        Counter::Error,
        Counter::ExpectNew,
        Counter::ExpectCreate,
        Counter::ExpectDelete,
        Counter::SearchRestart,
        Counter::ClashResolve,
        Counter::ChainTooLong,
    ];

    /// The counter's index in [`Counter::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The name `conntrack -S` prints (and this crate serialises).
    ///
    /// ```
    /// use conntrack_core::Counter;
    /// assert_eq!(Counter::ChainTooLong.name(), "chaintoolong");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Searched => "searched",
            Counter::Found => "found",
            Counter::New => "new",
            Counter::Invalid => "invalid",
            Counter::Ignore => "ignore",
            Counter::Delete => "delete",
            Counter::DeleteList => "delete_list",
            Counter::Insert => "insert",
            Counter::InsertFailed => "insert_failed",
            Counter::Drop => "drop",
            Counter::EarlyDrop => "early_drop",
            Counter::Error => "error",
            Counter::ExpectNew => "expect_new",
            Counter::ExpectCreate => "expect_create",
            Counter::ExpectDelete => "expect_delete",
            Counter::SearchRestart => "search_restart",
            Counter::ClashResolve => "clash_resolve",
            Counter::ChainTooLong => "chaintoolong",
        }
    }

    /// Maps a name from any source to a counter: `conntrack -S` names,
    /// `/proc/net/stat/nf_conntrack` header names (`icmp_error`,
    /// `clashres`, `chainlength`) and ctnetlink-style spellings.
    ///
    /// ```
    /// use conntrack_core::Counter;
    /// assert_eq!(Counter::from_any_name("clashres"), Some(Counter::ClashResolve));
    /// assert_eq!(Counter::from_any_name("icmp_error"), Some(Counter::Error));
    /// assert_eq!(Counter::from_any_name("entries"), None);
    /// ```
    pub fn from_any_name(name: &str) -> Option<Counter> {
        Some(match name {
            "icmp_error" => Counter::Error,
            "clashres" => Counter::ClashResolve,
            "chainlength" | "chain_toolong" | "chain_too_long" => Counter::ChainTooLong,
            _ => return Counter::ALL.into_iter().find(|c| c.name() == name),
        })
    }
}

/// Whether a kernel counts a counter (see [`Counter::support`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Support {
    /// The kernel increments it.
    Counted,
    /// The kernel has no such counter: it appeared in `since`. A source
    /// that shows it anyway (a zero-filled column) shows nothing real.
    NotYet {
        /// The first kernel with the counter.
        since: KernelVersion,
    },
    /// The kernel still prints the column but stopped incrementing it in
    /// `since`: it reads 0 whatever happens.
    Retired {
        /// The first kernel that stopped counting it.
        since: KernelVersion,
    },
    /// The kernel version is not known.
    Unknown,
}

impl Support {
    /// Whether the value means something on this kernel (`Counted`, or
    /// `Unknown`, where the source's word is all there is).
    pub fn is_meaningful(self) -> bool {
        matches!(self, Support::Counted | Support::Unknown)
    }
}

impl Counter {
    /// Whether a kernel counts this counter: the one table of counters
    /// that appeared or went silent over kernel versions (read in
    /// `net/netfilter/nf_conntrack_core.c` of 3.x, 4.4, 4.9, 4.19 and 6.x):
    ///
    /// - `searched`, `new`, `delete`, `delete_list` are incremented up to
    ///   4.4 and nowhere in 4.9 (the removal lies between);
    /// - `ignore` stopped counting in 5.10 ("netfilter: conntrack: remove
    ///   ignore stats");
    /// - `clash_resolve` appeared in 5.10 (commit bc92470413f3
    ///   "netfilter: conntrack: add clash resolution stat counter");
    /// - `chaintoolong` appeared in 5.15 (commit d7e7747ac5c2
    ///   "netfilter: refuse insertion if chain has grown too large").
    ///
    /// ```
    /// use conntrack_core::{Counter, KernelVersion, stats::Support};
    /// let v = |a, b| Some(KernelVersion::new(a, b, 0));
    /// assert_eq!(Counter::ClashResolve.support(v(5, 4)),
    ///            Support::NotYet { since: KernelVersion::new(5, 10, 0) });
    /// assert_eq!(Counter::ClashResolve.support(v(5, 10)), Support::Counted);
    /// assert_eq!(Counter::ChainTooLong.support(None), Support::Unknown);
    /// assert!(!Counter::Searched.support(v(6, 1)).is_meaningful());
    /// ```
    pub fn support(self, kernel: Option<KernelVersion>) -> Support {
        let Some(k) = kernel else {
            return Support::Unknown;
        };
        // (appeared in, retired in), as (major, minor).
        type Era = Option<(u16, u16)>;
        let (appeared, retired): (Era, Era) = match self {
            Counter::Searched | Counter::New | Counter::Delete | Counter::DeleteList => {
                (None, Some(COUNTERS_RETIRED_IN))
            }
            Counter::Ignore => (None, Some((5, 10))),
            Counter::ClashResolve => (Some((5, 10)), None),
            Counter::ChainTooLong => (Some((5, 15)), None),
            _ => (None, None),
        };
        if let Some((a, b)) = appeared
            && !k.at_least(a, b)
        {
            return Support::NotYet {
                since: KernelVersion::new(a, b, 0),
            };
        }
        if let Some((a, b)) = retired
            && k.at_least(a, b)
        {
            return Support::Retired {
                since: KernelVersion::new(a, b, 0),
            };
        }
        Support::Counted
    }
}

/// The first release known not to increment `searched`, `new`, `delete`
/// and `delete_list` (see [`Counter::support`]): the 4.4.11 source of
/// `nf_conntrack_core.c` increments them, the 4.9.0 source does not (and
/// counts `insert` only in `nf_conntrack_hash_check_insert`, the ctnetlink
/// path); the commit in between was not identified.
const COUNTERS_RETIRED_IN: (u16, u16) = (4, 9);

impl core::fmt::Display for Counter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

macro_rules! accessors {
    ($($(#[$m:meta])* $fn:ident => $c:ident,)+) => {
        $( $(#[$m])* pub fn $fn(&self) -> Option<u32> { self.get(Counter::$c) } )+
    };
}

/// The counters of one CPU (or a total over CPUs).
///
/// A counter the source did not report is `None`: on a kernel without
/// `clash_resolve`, [`CpuStats::clash_resolve`] is `None`, not another
/// column's value. Fields the source reported that this crate does not know
/// are kept by name in [`CpuStats::other`].
///
/// ```
/// use conntrack_core::{Counter, CpuStats};
/// let mut s = CpuStats::default();
/// s.set(Counter::Drop, 7);
/// assert_eq!(s.drop(), Some(7));
/// assert_eq!(s.clash_resolve(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "CpuStatsRepr", from = "CpuStatsRepr")]
pub struct CpuStats {
    /// The CPU id when the source names it (`conntrack -S`, ctnetlink
    /// `res_id`); `None` for `/proc` rows (which skip impossible CPUs) and
    /// totals.
    pub cpu: Option<u32>,
    values: [Option<u32>; Counter::COUNT],
    /// Unknown fields, by name, in the order the source gave them.
    pub other: Vec<(String, u32)>,
}

impl CpuStats {
    /// Stats for a named CPU with no counters yet.
    pub fn for_cpu(cpu: u32) -> Self {
        CpuStats {
            cpu: Some(cpu),
            ..Default::default()
        }
    }

    /// A counter's value, `None` when the source did not report it.
    pub fn get(&self, c: Counter) -> Option<u32> {
        self.values[c.index()]
    }

    /// Sets a counter.
    pub fn set(&mut self, c: Counter, v: u32) {
        self.values[c.index()] = Some(v);
    }

    /// An unknown field's value by name.
    pub fn get_other(&self, name: &str) -> Option<u32> {
        self.other.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }

    /// The reported counters, in [`Counter::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u32)> + '_ {
        Counter::ALL
            .into_iter()
            .filter_map(|c| self.get(c).map(|v| (c, v)))
    }

    /// Adds `other` into `self` with u32 wrap-around (as the kernel's
    /// counters wrap); a counter present in either side is present after.
    /// Unknown fields are summed by name. The CPU id is kept.
    pub fn add_wrapping(&mut self, other: &CpuStats) {
        for c in Counter::ALL {
            if let Some(v) = other.get(c) {
                let cur = self.get(c).unwrap_or(0);
                self.set(c, cur.wrapping_add(v));
            }
        }
        for (name, v) in &other.other {
            match self.other.iter_mut().find(|(n, _)| n == name) {
                Some((_, cur)) => *cur = cur.wrapping_add(*v),
                None => self.other.push((name.clone(), *v)),
            }
        }
    }

    accessors! {
        /// `searched` (0 since 4.9).
        searched => Searched,
        /// `found`.
        found => Found,
        /// `new` (0 since 4.9; named so because `new` is a constructor name).
        new_entries => New,
        /// `invalid`.
        invalid => Invalid,
        /// `ignore` (0 since 5.10).
        ignore => Ignore,
        /// `delete` (0 since 4.9).
        delete => Delete,
        /// `delete_list` (0 since 4.9).
        delete_list => DeleteList,
        /// `insert`.
        insert => Insert,
        /// `insert_failed`.
        insert_failed => InsertFailed,
        /// `drop`.
        drop => Drop,
        /// `early_drop`.
        early_drop => EarlyDrop,
        /// `error` (`icmp_error` in /proc).
        error => Error,
        /// `expect_new`.
        expect_new => ExpectNew,
        /// `expect_create`.
        expect_create => ExpectCreate,
        /// `expect_delete`.
        expect_delete => ExpectDelete,
        /// `search_restart` (3.10+).
        search_restart => SearchRestart,
        /// `clash_resolve` (5.10+).
        clash_resolve => ClashResolve,
        /// `chaintoolong` (5.15+).
        chain_too_long => ChainTooLong,
    }
}

#[derive(Serialize, Deserialize)]
struct CpuStatsRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cpu: Option<u32>,
    counters: BTreeMap<Counter, u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    other: Vec<(String, u32)>,
}

impl From<CpuStats> for CpuStatsRepr {
    fn from(s: CpuStats) -> Self {
        CpuStatsRepr {
            cpu: s.cpu,
            counters: s.iter().collect(),
            other: s.other,
        }
    }
}

impl From<CpuStatsRepr> for CpuStats {
    fn from(r: CpuStatsRepr) -> Self {
        let mut s = CpuStats {
            cpu: r.cpu,
            other: r.other,
            ..Default::default()
        };
        for (c, v) in r.counters {
            s.set(c, v);
        }
        s
    }
}

/// Statistics of one network namespace at one moment.
///
/// ```
/// use conntrack_core::{Counter, CpuStats, Stats};
/// let mut a = CpuStats::for_cpu(0);
/// a.set(Counter::Drop, u32::MAX);
/// let mut b = CpuStats::for_cpu(1);
/// b.set(Counter::Drop, 2);
/// let stats = Stats::new(vec![a, b]).with_entries(10);
/// assert_eq!(stats.total().drop(), Some(1)); // wraps like the kernel's u32
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// The namespace's current entry count (taken once, never summed).
    pub entries: Option<u32>,
    /// `nf_conntrack_max` when the source reports it (ctnetlink
    /// `CTA_STATS_GLOBAL_MAX_ENTRIES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u32>,
    /// One element per CPU row the source reported.
    pub cpus: Vec<CpuStats>,
}

impl Stats {
    /// Statistics of these CPU rows, without the entry count or the max.
    pub fn new(cpus: Vec<CpuStats>) -> Self {
        Stats {
            entries: None,
            max_entries: None,
            cpus,
        }
    }

    /// With the namespace's entry count.
    pub fn with_entries(mut self, entries: u32) -> Self {
        self.entries = Some(entries);
        self
    }

    /// With `nf_conntrack_max` as the source reported it.
    pub fn with_max_entries(mut self, max: u32) -> Self {
        self.max_entries = Some(max);
        self
    }

    /// The counters summed over CPUs (wrapping u32).
    pub fn total(&self) -> CpuStats {
        let mut t = CpuStats::default();
        for c in &self.cpus {
            t.add_wrapping(c);
        }
        t
    }
}
