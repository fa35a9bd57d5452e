//! Capacity arithmetic: the kernel's default table size per era, the folk
//! and kube-proxy formulas, hash table rounding, memory cost, Little's law
//! and time to full.
//!
//! Every function is total: zero, huge or non-finite inputs give a
//! defined answer (saturated, `0`, or `None`), never a panic.

use conntrack_core::{HostSnapshot, KernelVersion};
use serde::{Deserialize, Serialize};

const GIB: u64 = 1024 * 1024 * 1024;

/// Which default-sizing rules a kernel follows (KERNEL.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SizingEra {
    /// Up to 3.19: buckets capped at 16384 above 1 GiB, min 32, max = 4 x
    /// buckets (per-namespace tables; max taken before rounding). Read in
    /// the 3.10.65, 3.14.4, 3.17.0, 3.18.30 and 3.19.8 sources of
    /// `nf_conntrack_init_start`.
    Legacy,
    /// 4.0 to 5.14: 65536 above 4 GiB, 16384 above 1 GiB, min 32, max = 4
    /// x buckets (the 4.0.5 source has the 4 GiB step, 3.19.8 does not).
    /// RHEL 7's 3.10.0 kernels carry the step too (read in 3.10.0-514.el7
    /// and 3.10.0-1160.el7). From 4.7 (56d52d4892d0, one table for all
    /// namespaces) max is taken from the rounded bucket count.
    FourTimes,
    /// 5.15 and later (d532bcd0b269): 262144 above 4 GiB on 64-bit, 65536
    /// above 1 GiB, min 1024, max = 1 x buckets.
    OneTimes,
}

impl SizingEra {
    /// `max = factor x buckets` when no hashsize was given.
    pub const fn default_factor(self) -> u64 {
        match self {
            SizingEra::Legacy | SizingEra::FourTimes => 4,
            SizingEra::OneTimes => 1,
        }
    }

    /// A description for people.
    pub const fn describe(self) -> &'static str {
        match self {
            SizingEra::Legacy => "<= 3.19: default max = 4 x buckets",
            SizingEra::FourTimes => "4.0 .. 5.14 (and RHEL 7): default max = 4 x buckets",
            SizingEra::OneTimes => ">= 5.15: default max = buckets (d532bcd0b269)",
        }
    }

    /// The era of a mainline kernel version.
    pub fn of(v: KernelVersion) -> SizingEra {
        if v.at_least(5, 15) {
            SizingEra::OneTimes
        } else if v.at_least(4, 0) {
            SizingEra::FourTimes
        } else {
            SizingEra::Legacy
        }
    }

    /// The era of a kernel, from its version and, when known, its release
    /// string (`uname -r`): RHEL 7 kernels (`3.10.0-*.el7*`) size like
    /// 4.0+ kernels.
    ///
    /// ```
    /// use conntrack_analyze::capacity::SizingEra;
    /// use conntrack_core::KernelVersion;
    /// let v = KernelVersion::new(3, 10, 0);
    /// assert_eq!(SizingEra::of_release(v, None), SizingEra::Legacy);
    /// assert_eq!(
    ///     SizingEra::of_release(v, Some("3.10.0-1160.el7.x86_64")),
    ///     SizingEra::FourTimes
    /// );
    /// ```
    pub fn of_release(v: KernelVersion, release: Option<&str>) -> SizingEra {
        let era = SizingEra::of(v);
        if era == SizingEra::Legacy && release.is_some_and(|r| r.contains(".el7")) {
            SizingEra::FourTimes
        } else {
            era
        }
    }
}

/// What the kernel's default sizing depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SizingInput {
    /// Kernel version.
    pub kernel: KernelVersion,
    /// `MemTotal` in bytes (totalram pages x page size).
    pub mem_total_bytes: u64,
    /// Page size in bytes (4096 on most hosts).
    pub page_size: u64,
    /// Pointer size in bytes (8 on 64-bit, 4 on 32-bit).
    pub word_bytes: u64,
    /// An explicit `hashsize` module parameter / boot option.
    pub hashsize: Option<u32>,
    /// The sizing rules of the kernel ([`SizingEra::of_release`]).
    pub era: SizingEra,
}

impl SizingInput {
    /// A 64-bit, 4 KiB-page host without an explicit hashsize.
    pub fn new(kernel: KernelVersion, mem_total_bytes: u64) -> Self {
        SizingInput {
            kernel,
            mem_total_bytes,
            page_size: 4096,
            word_bytes: 8,
            hashsize: None,
            era: SizingEra::of(kernel),
        }
    }

    /// The input described by a host snapshot, when it has the kernel
    /// version and memory size (page size defaults to 4096, word size to
    /// 8). `hashsize` is the snapshot's bucket count (or `hashsize`
    /// parameter) when [`SizingOrigin::of`] finds it was chosen rather
    /// than computed by the kernel (the parameter file shows the current
    /// size either way, so its presence alone proves nothing).
    ///
    /// ```
    /// use conntrack_analyze::capacity::{kernel_default, SizingInput};
    /// use conntrack_core::{HostSnapshot, KernelVersion};
    /// // EL7 host, 16 GiB, hashsize=1048576 on the module line: max 8 x buckets.
    /// let s = HostSnapshot::default()
    ///     .with_kernel_version(KernelVersion::new(3, 10, 0))
    ///     .with_mem_total_bytes(16 << 30)
    ///     .with_buckets(1_048_576)
    ///     .with_max(8_388_608);
    /// let input = SizingInput::from_snapshot(&s).unwrap();
    /// assert_eq!(input.hashsize, Some(1_048_576));
    /// assert_eq!(kernel_default(&input).max, 8_388_608);
    /// ```
    pub fn from_snapshot(s: &HostSnapshot) -> Option<Self> {
        let kernel = s.kernel_version?;
        let mut input = SizingInput {
            kernel,
            mem_total_bytes: s.mem_total_bytes?,
            page_size: s.page_size.unwrap_or(4096),
            word_bytes: 8,
            hashsize: None,
            era: SizingEra::of_release(kernel, s.kernel_release.as_deref()),
        };
        let buckets = s.buckets.or(s.hashsize_param);
        if let Some(b) = buckets
            && b > 0
            && b != kernel_default(&input).buckets
        {
            input.hashsize = Some(b);
        }
        Some(input)
    }
}

/// How a host's table got its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SizingOrigin {
    /// Buckets and max are what the kernel computes for the host's RAM.
    KernelDefault,
    /// The bucket count was chosen (`hashsize` at load, or a resize) and
    /// max is still `8 x buckets`, which is what the kernel sets at load
    /// with an explicit hashsize.
    ExplicitHashsize,
    /// The bucket count was chosen and max was set separately.
    ExplicitBuckets,
    /// Buckets are the kernel's default; max was changed (sysctl,
    /// kube-proxy).
    MaxChanged,
    /// Not enough facts (kernel, RAM, buckets, max) to tell.
    Unknown,
}

impl SizingOrigin {
    /// How a snapshot's table got its size.
    ///
    /// ```
    /// use conntrack_analyze::capacity::SizingOrigin;
    /// use conntrack_core::{HostSnapshot, KernelVersion};
    /// let mut s = HostSnapshot::default()
    ///     .with_kernel_version(KernelVersion::new(6, 1, 0))
    ///     .with_mem_total_bytes(4 << 30)
    ///     .with_buckets(65_536)
    ///     .with_max(65_536);
    /// assert_eq!(SizingOrigin::of(&s), SizingOrigin::KernelDefault);
    /// s.max = Some(200);
    /// assert_eq!(SizingOrigin::of(&s), SizingOrigin::MaxChanged);
    /// ```
    pub fn of(s: &HostSnapshot) -> SizingOrigin {
        let (Some(input), Some(b), Some(m)) = (
            SizingInput::from_snapshot(s),
            s.buckets.or(s.hashsize_param),
            s.max,
        ) else {
            return SizingOrigin::Unknown;
        };
        let d = kernel_default(&input);
        match input.hashsize {
            None if m == d.max => SizingOrigin::KernelDefault,
            None => SizingOrigin::MaxChanged,
            Some(_) if u64::from(m) == u64::from(b) * EXPLICIT_HASHSIZE_FACTOR => {
                SizingOrigin::ExplicitHashsize
            }
            Some(_) => SizingOrigin::ExplicitBuckets,
        }
    }

    /// A short label for tables.
    pub const fn short(self) -> &'static str {
        match self {
            SizingOrigin::KernelDefault => "kernel default",
            SizingOrigin::ExplicitHashsize => "explicit hashsize",
            SizingOrigin::ExplicitBuckets => "set by hand",
            SizingOrigin::MaxChanged => "max changed",
            SizingOrigin::Unknown => "unknown",
        }
    }

    /// A description for people.
    pub const fn describe(self) -> &'static str {
        match self {
            SizingOrigin::KernelDefault => "the kernel's default for this RAM",
            SizingOrigin::ExplicitHashsize => {
                "an explicit hashsize (max = 8 x buckets, as the kernel sets it at load)"
            }
            SizingOrigin::ExplicitBuckets => "buckets and max both set by hand",
            SizingOrigin::MaxChanged => "default buckets, max changed by hand or by a tool",
            SizingOrigin::Unknown => "unknown",
        }
    }
}

/// With an explicit `hashsize` (module parameter or boot option) the
/// kernel sets `max = 8 x buckets` in every era (`nf_conntrack_init_start`).
pub const EXPLICIT_HASHSIZE_FACTOR: u64 = 8;

/// The `nf_conntrack_max` the kernel itself would pair with a bucket count
/// that is already allocated: `8 x buckets` when the buckets came from an
/// explicit hashsize, else the era's factor (1 since 5.15, 4 before). A
/// table whose max is far below this value wastes nothing by raising max
/// to it: the buckets are paid for already, entries are allocated on
/// demand.
///
/// ```
/// use conntrack_analyze::capacity::{kernel_max_for_buckets, SizingEra};
/// assert_eq!(kernel_max_for_buckets(65_536, SizingEra::OneTimes, false), 65_536);
/// assert_eq!(kernel_max_for_buckets(16_384, SizingEra::FourTimes, false), 65_536);
/// assert_eq!(kernel_max_for_buckets(16_384, SizingEra::FourTimes, true), 131_072);
/// ```
pub fn kernel_max_for_buckets(buckets: u64, era: SizingEra, explicit: bool) -> u64 {
    let factor = if explicit {
        EXPLICIT_HASHSIZE_FACTOR
    } else {
        era.default_factor()
    };
    buckets.saturating_mul(factor).min(u64::from(u32::MAX))
}

/// A table size: buckets and `nf_conntrack_max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Sizing {
    /// Hash buckets after rounding (`nf_conntrack_buckets`).
    pub buckets: u32,
    /// `nf_conntrack_max`.
    pub max: u32,
    /// The bucket count before rounding.
    pub requested_buckets: u32,
    /// The era whose rules applied.
    pub era: SizingEra,
}

/// Rounds a bucket count up the way `nf_ct_alloc_hashtable` does: to a
/// multiple of `page_size / word_bytes` (512 on 4 KiB pages, 64-bit).
/// Degenerate sizes (0, or a word larger than the page) leave the count as
/// it is; the result saturates at `u32::MAX`.
///
/// ```
/// use conntrack_analyze::capacity::round_buckets;
/// assert_eq!(round_buckets(1000, 4096, 8), 1024);
/// assert_eq!(round_buckets(65536, 4096, 8), 65536);
/// assert_eq!(round_buckets(1, 4096, 4), 1024);
/// ```
pub fn round_buckets(buckets: u32, page_size: u64, word_bytes: u64) -> u32 {
    let step = page_size.checked_div(word_bytes).unwrap_or(0);
    if step <= 1 {
        return buckets;
    }
    let b = buckets as u64;
    let r = b.div_ceil(step).saturating_mul(step);
    r.min(u32::MAX as u64) as u32
}

/// The buckets and max a kernel picks by itself (`nf_conntrack_init_start`)
/// for a host, or with an explicit `hashsize` (max = 8 x buckets).
///
/// ```
/// use conntrack_analyze::capacity::{kernel_default, SizingInput};
/// use conntrack_core::KernelVersion;
/// const GIB: u64 = 1 << 30;
/// // 16 GiB on 6.x: capped at 262144 buckets, max = 1 x buckets.
/// let s = kernel_default(&SizingInput::new(KernelVersion::new(6, 1, 0), 16 * GIB));
/// assert_eq!((s.buckets, s.max), (262144, 262144));
/// // The same host on 5.4: 65536 buckets, max = 4 x buckets.
/// let s = kernel_default(&SizingInput::new(KernelVersion::new(5, 4, 0), 16 * GIB));
/// assert_eq!((s.buckets, s.max), (65536, 262144));
/// ```
pub fn kernel_default(input: &SizingInput) -> Sizing {
    let era = input.era;
    let page = input.page_size.max(1);
    let word = input.word_bytes.max(1);
    let nr_pages = input.mem_total_bytes / page;
    let (requested, factor) = match input.hashsize {
        Some(h) if h > 0 => (h as u64, 8u64),
        _ => {
            let mut b = nr_pages.saturating_mul(page) / 16384 / word;
            let over = |gib: u64| nr_pages > gib.saturating_mul(GIB / page);
            match era {
                SizingEra::Legacy => {
                    if over(1) {
                        b = 16384;
                    }
                    (b.max(32), 4)
                }
                SizingEra::FourTimes => {
                    if over(4) {
                        b = 65536;
                    } else if over(1) {
                        b = 16384;
                    }
                    (b.max(32), 4)
                }
                SizingEra::OneTimes => {
                    if word >= 8 && over(4) {
                        b = 262144;
                    } else if over(1) {
                        b = 65536;
                    }
                    (b.max(1024), 1)
                }
            }
        }
    };
    let requested = requested.min(u32::MAX as u64) as u32;
    let buckets = round_buckets(requested, page, word);
    // Before 4.7 the table was per namespace and rounded when allocated,
    // after max had been computed from the unrounded size.
    let base = if input.kernel.at_least(4, 7) {
        buckets
    } else {
        requested
    };
    let max = (base as u64 * factor).min(u32::MAX as u64) as u32;
    Sizing {
        buckets,
        max,
        requested_buckets: requested,
        era,
    }
}

/// The folk formula from old wikis: `CONNTRACK_MAX = RAM / 16384 / (ARCH /
/// 32)`, `HASHSIZE = CONNTRACK_MAX / 8`. It is the pre-cap kernel formula
/// with a factor of 4 folded in; no modern kernel does this.
///
/// ```
/// use conntrack_analyze::capacity::folk_formula;
/// // 1 GiB on 64-bit: 1073741824 / 16384 / 2 = 32768; hashsize 4096.
/// assert_eq!(folk_formula(1 << 30, 64), (32768, 4096));
/// assert_eq!(folk_formula(1 << 30, 0), (0, 0));
/// ```
pub fn folk_formula(mem_bytes: u64, arch_bits: u32) -> (u64, u64) {
    let div = (arch_bits / 32) as u64;
    if div == 0 {
        return (0, 0);
    }
    let max = mem_bytes / 16384 / div;
    (max, max / 8)
}

pub use conntrack_core::host::kube_proxy::{KUBE_PROXY_MAX_PER_CORE, KUBE_PROXY_MIN};

/// kube-proxy's sizing: `max = max(per_core x cpus, min)`, buckets raised
/// to `max / 4`. `None` when `per_core` is 0 (kube-proxy then leaves the
/// sysctls alone).
///
/// ```
/// use conntrack_analyze::capacity::kube_proxy;
/// assert_eq!(kube_proxy(2, 32768, 131072), Some((131072, 32768)));
/// assert_eq!(kube_proxy(16, 32768, 131072), Some((524288, 131072)));
/// assert_eq!(kube_proxy(16, 0, 131072), None);
/// ```
pub fn kube_proxy(cpus: u64, per_core: u64, min: u64) -> Option<(u64, u64)> {
    if per_core == 0 {
        return None;
    }
    let max = per_core.saturating_mul(cpus).max(min);
    Some((max, max / 4))
}

/// The memory a table of a given size may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct MemoryCost {
    /// Entries the estimate is for (usually `nf_conntrack_max`).
    pub entries: u64,
    /// Buckets.
    pub buckets: u64,
    /// Slab object size of one entry.
    pub entry_object_bytes: u64,
    /// Extension blob per entry (0 when no extension is in use).
    pub extension_bytes: u64,
    /// Bytes per bucket (conntrack hash plus the NAT bysource hash).
    pub bucket_bytes: u64,
    /// `entries x (object + extension)`.
    pub entries_total_bytes: u64,
    /// `buckets x bucket_bytes`.
    pub buckets_total_bytes: u64,
    /// Sum of both.
    pub total_bytes: u64,
    /// Whether the object size was assumed (no slab data) rather than read.
    pub object_size_assumed: bool,
}

/// Slab object size assumed when `/proc/slabinfo` was not readable (6.18
/// x86_64 `nf_conntrack`).
pub const DEFAULT_OBJECT_BYTES: u64 = 256;
/// Extension blob size assumed per entry when extensions are in use.
pub const DEFAULT_EXTENSION_BYTES: u64 = 128;
/// Bytes per bucket on 64-bit: an 8-byte head in the conntrack hash and
/// one in the NAT bysource hash.
pub const DEFAULT_BUCKET_BYTES: u64 = 16;

/// Memory for `entries` entries and `buckets` buckets (saturating).
///
/// ```
/// use conntrack_analyze::capacity::memory_cost;
/// let m = memory_cost(262144, 262144, 256, 128, 16);
/// assert_eq!(m.entries_total_bytes, 262144 * 384);
/// assert_eq!(m.buckets_total_bytes, 262144 * 16);
/// assert_eq!(m.total_bytes, 262144 * 400); // 100 MiB
/// ```
pub fn memory_cost(
    entries: u64,
    buckets: u64,
    object_bytes: u64,
    extension_bytes: u64,
    bucket_bytes: u64,
) -> MemoryCost {
    let per = object_bytes.saturating_add(extension_bytes);
    let e = entries.saturating_mul(per);
    let b = buckets.saturating_mul(bucket_bytes);
    MemoryCost {
        entries,
        buckets,
        entry_object_bytes: object_bytes,
        extension_bytes,
        bucket_bytes,
        entries_total_bytes: e,
        buckets_total_bytes: b,
        total_bytes: e.saturating_add(b),
        object_size_assumed: false,
    }
}

/// Memory for `entries` and `buckets` with the object size read from the
/// snapshot's slab caches (the largest conntrack cache object), or
/// [`DEFAULT_OBJECT_BYTES`] when it has none, and the default extension and
/// bucket sizes.
pub fn memory_cost_for(snapshot: &HostSnapshot, entries: u64, buckets: u64) -> MemoryCost {
    let obj = snapshot
        .slab
        .iter()
        .filter(|s| s.name == "nf_conntrack" || s.name.starts_with("nf_conntrack_"))
        .map(|s| s.obj_size)
        .filter(|&s| s > 0 && s < 1 << 20)
        .max();
    let mut m = memory_cost(
        entries,
        buckets,
        obj.unwrap_or(DEFAULT_OBJECT_BYTES),
        DEFAULT_EXTENSION_BYTES,
        DEFAULT_BUCKET_BYTES,
    );
    m.object_size_assumed = obj.is_none();
    m
}

/// The hash table's allocation unit in buckets: one page of 8-byte
/// `hlist_nulls_head`s (`nf_ct_alloc_hashtable` rounds the size up to
/// whole pages), 512 on 4 KiB pages. Unknown or absurd page sizes count as
/// 4 KiB.
///
/// ```
/// use conntrack_analyze::capacity::allocation_unit;
/// assert_eq!(allocation_unit(4096), 512);
/// assert_eq!(allocation_unit(65536), 8192);
/// assert_eq!(allocation_unit(0), 512);
/// ```
pub fn allocation_unit(page_size: u64) -> u64 {
    usable_page(page_size) / 8
}

fn usable_page(page_size: u64) -> u64 {
    if page_size.is_power_of_two() && (512..=1 << 20).contains(&page_size) {
        page_size
    } else {
        4096
    }
}

/// The fewest buckets that keep the mean chain at a full table (`2 x max
/// / buckets`) at or under `target`, rounded up to the allocation unit and
/// saturating at the kernel's u32 bucket count (where the target may be
/// missed: the caller checks with [`mean_chain_length`]).
///
/// ```
/// use conntrack_analyze::capacity::{buckets_for, mean_chain_length};
/// let b = buckets_for(1_000_000, 2.0, 4096);
/// assert_eq!(b % 512, 0);
/// assert!(mean_chain_length(1_000_000, b).unwrap() <= 2.0);
/// ```
pub fn buckets_for(max: u64, target_chain: f64, page_size: u64) -> u64 {
    let unit = allocation_unit(page_size);
    let top = (u64::from(u32::MAX) / unit) * unit;
    let target = if target_chain.is_finite() && target_chain > 0.0 {
        target_chain
    } else {
        2.0
    };
    let raw = (2.0 * max as f64 / target).ceil();
    if !(raw.is_finite() && raw < top as f64) {
        return top;
    }
    let mut b = (raw as u64).max(1).div_ceil(unit) * unit;
    // Float rounding at the boundary.
    while 2.0 * max as f64 / b as f64 > target && b + unit <= top {
        b += unit;
    }
    b.min(top)
}

/// Per-entry and per-bucket memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryModel {
    /// Bytes per entry: the slab object plus an extension blob.
    pub per_entry: u64,
    /// Bytes per bucket: the conntrack hash plus the NAT `bysource` table.
    pub per_bucket: u64,
}

impl MemoryModel {
    /// The model of a host: [`memory_cost_for`] per entry and bucket.
    pub fn for_host(s: &HostSnapshot) -> MemoryModel {
        let m = memory_cost_for(s, 1, 1);
        MemoryModel {
            per_entry: m.entries_total_bytes,
            per_bucket: m.buckets_total_bytes,
        }
    }

    /// Worst-case bytes with `max` entries and `buckets` buckets.
    ///
    /// ```
    /// use conntrack_analyze::capacity::MemoryModel;
    /// let m = MemoryModel { per_entry: 384, per_bucket: 16 };
    /// assert_eq!(m.bytes(1000, 1024), 1000 * 384 + 1024 * 16);
    /// ```
    pub fn bytes(self, max: u64, buckets: u64) -> u64 {
        max.saturating_mul(self.per_entry)
            .saturating_add(buckets.saturating_mul(self.per_bucket))
    }

    /// The largest `max` whose entries and the buckets keeping the chain
    /// target fit in `budget` bytes.
    ///
    /// ```
    /// use conntrack_analyze::capacity::{buckets_for, MemoryModel};
    /// let m = MemoryModel { per_entry: 384, per_bucket: 16 };
    /// let max = m.max_within(100 << 20, 2.0, 4096);
    /// assert!(m.bytes(max, buckets_for(max, 2.0, 4096)) <= 100 << 20);
    /// ```
    pub fn max_within(self, budget: u64, target_chain: f64, page_size: u64) -> u64 {
        let t = if target_chain > 0.0 {
            target_chain
        } else {
            2.0
        };
        let per = self.per_entry as f64 + self.per_bucket as f64 * 2.0 / t;
        let mut m = if per > 0.0 {
            (budget as f64 / per)
                .floor()
                .min(u64::from(u32::MAX) as f64) as u64
        } else {
            u64::from(u32::MAX)
        };
        while m > 0 && self.bytes(m, buckets_for(m, t, page_size)) > budget {
            m = m.saturating_sub(m / 1000 + 1);
        }
        m
    }
}

/// Little's law: the steady-state number of entries in a state is the
/// rate of flows entering it times the time each spends there. Negative
/// or non-finite inputs give 0.
///
/// ```
/// use conntrack_analyze::capacity::little_entries;
/// // 1,000 short connections/s x 120 s TIME_WAIT = 120,000 entries.
/// assert_eq!(little_entries(1000.0, 120.0), 120000.0);
/// assert_eq!(little_entries(f64::NAN, 120.0), 0.0);
/// ```
pub fn little_entries(rate_per_sec: f64, secs: f64) -> f64 {
    let v = rate_per_sec * secs;
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

/// One stage of a workload's flows: how many enter it per second and how
/// long each stays (for a conntrack state: its timeout, or the time until
/// the next state for states that are left early).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLoad {
    /// Name (a state, or a kind of traffic).
    pub name: String,
    /// Flows entering per second.
    pub rate_per_sec: f64,
    /// Seconds each spends in it.
    pub secs: f64,
}

/// The steady-state entry count of a workload: the sum of Little's law
/// over its stages, per stage and in total.
///
/// ```
/// use conntrack_analyze::capacity::{predict_entries, StageLoad};
/// let stage = |n: &str, r, s| StageLoad { name: n.into(), rate_per_sec: r, secs: s };
/// // 1,000 short HTTP connections/s: 2 s open, then 120 s TIME_WAIT;
/// // plus 500 DNS queries/s held for the 30 s UDP timeout.
/// let (per, total) = predict_entries(&[
///     stage("ESTABLISHED", 1000.0, 2.0),
///     stage("TIME_WAIT", 1000.0, 120.0),
///     stage("udp", 500.0, 30.0),
/// ]);
/// assert_eq!(per, vec![2000.0, 120000.0, 15000.0]);
/// assert_eq!(total, 137000.0);
/// ```
pub fn predict_entries(stages: &[StageLoad]) -> (Vec<f64>, f64) {
    let per: Vec<f64> = stages
        .iter()
        .map(|s| little_entries(s.rate_per_sec, s.secs))
        .collect();
    let total = per.iter().sum();
    (per, total)
}

/// Little's law solved for the rate: flows entering per second that keep
/// `entries` entries in a state lasting `secs`. 0 when `secs` is not
/// positive.
///
/// ```
/// use conntrack_analyze::capacity::little_rate;
/// assert_eq!(little_rate(120000.0, 120.0), 1000.0);
/// assert_eq!(little_rate(5.0, 0.0), 0.0);
/// ```
pub fn little_rate(entries: f64, secs: f64) -> f64 {
    if secs.is_nan() || secs <= 0.0 {
        return 0.0;
    }
    let v = entries / secs;
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

/// When the table would be full at the current trend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "secs")]
#[non_exhaustive]
pub enum TimeToFull {
    /// The count is at or above max now.
    Already,
    /// At the current growth, in this many seconds.
    In(f64),
    /// The count is flat or falling, or max is 0 (unlimited).
    Never,
}

/// Time until `count` reaches `max` growing at `slope_per_sec` entries per
/// second (e.g. [`crate::rates::EntriesTrend::slope_per_sec`]).
///
/// ```
/// use conntrack_analyze::capacity::{time_to_full, TimeToFull};
/// assert_eq!(time_to_full(1000, 2000, 10.0), TimeToFull::In(100.0));
/// assert_eq!(time_to_full(2000, 2000, 10.0), TimeToFull::Already);
/// assert_eq!(time_to_full(1000, 2000, -1.0), TimeToFull::Never);
/// assert_eq!(time_to_full(1000, 0, 10.0), TimeToFull::Never);
/// ```
pub fn time_to_full(count: u64, max: u64, slope_per_sec: f64) -> TimeToFull {
    if max == 0 {
        return TimeToFull::Never;
    }
    if count >= max {
        return TimeToFull::Already;
    }
    if !slope_per_sec.is_finite() || slope_per_sec <= 0.0 {
        return TimeToFull::Never;
    }
    TimeToFull::In((max - count) as f64 / slope_per_sec)
}

/// Mean hash chain length: every entry is hashed twice (original and reply
/// tuple), so `2 x count / buckets`. `None` for 0 buckets.
///
/// ```
/// use conntrack_analyze::capacity::mean_chain_length;
/// assert_eq!(mean_chain_length(262144, 262144), Some(2.0));
/// assert_eq!(mean_chain_length(5, 0), None);
/// ```
pub fn mean_chain_length(count: u64, buckets: u64) -> Option<f64> {
    if buckets == 0 {
        None
    } else {
        Some(2.0 * count as f64 / buckets as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(a: u16, b: u16) -> KernelVersion {
        KernelVersion::new(a, b, 0)
    }

    #[test]
    fn default_sizing_by_era_hand_computed() {
        // 2 GiB, 6.x: > 1 GiB -> 65536 buckets, max 65536.
        let s = kernel_default(&SizingInput::new(kv(6, 18), 2 * GIB));
        assert_eq!(
            (s.buckets, s.max, s.era),
            (65536, 65536, SizingEra::OneTimes)
        );
        // 512 MiB, 6.x: 536870912 / 16384 / 8 = 4096 buckets, max 4096.
        let s = kernel_default(&SizingInput::new(kv(6, 18), 512 << 20));
        assert_eq!((s.buckets, s.max), (4096, 4096));
        // 64 MiB, 6.x: 512 computed -> raised to the 1024 minimum.
        let s = kernel_default(&SizingInput::new(kv(6, 18), 64 << 20));
        assert_eq!((s.buckets, s.max), (1024, 1024));
        // Exactly 4 GiB is not "more than 4 GiB": 65536.
        let s = kernel_default(&SizingInput::new(kv(5, 15), 4 * GIB));
        assert_eq!((s.buckets, s.max), (65536, 65536));
        // 32-bit, 8 GiB on 6.x: no 262144 tier; 65536.
        let mut i = SizingInput::new(kv(6, 1), 8 * GIB);
        i.word_bytes = 4;
        assert_eq!(kernel_default(&i).buckets, 65536);
        // 4.19, 8 GiB: 65536 buckets, max 262144.
        let s = kernel_default(&SizingInput::new(kv(4, 19), 8 * GIB));
        assert_eq!(
            (s.buckets, s.max, s.era),
            (65536, 262144, SizingEra::FourTimes)
        );
        // 4.19, 2 GiB: 16384, max 65536.
        let s = kernel_default(&SizingInput::new(kv(4, 19), 2 * GIB));
        assert_eq!((s.buckets, s.max), (16384, 65536));
        // Mainline 3.10, 8 GiB: only the 1 GiB tier -> 16384, max 65536.
        let s = kernel_default(&SizingInput::new(kv(3, 10), 8 * GIB));
        assert_eq!((s.buckets, s.max, s.era), (16384, 65536, SizingEra::Legacy));
        // 3.19 still has no 4 GiB tier; 4.0 has it.
        let s = kernel_default(&SizingInput::new(kv(3, 19), 8 * GIB));
        assert_eq!(s.buckets, 16384);
        let s = kernel_default(&SizingInput::new(kv(4, 0), 8 * GIB));
        assert_eq!(s.buckets, 65536);
        // RHEL 7's 3.10 carries the 4 GiB tier: 65536, max 262144.
        let mut i = SizingInput::new(kv(3, 10), 8 * GIB);
        i.era = SizingEra::of_release(kv(3, 10), Some("3.10.0-1160.el7.x86_64"));
        let s = kernel_default(&i);
        assert_eq!(
            (s.buckets, s.max, s.era),
            (65536, 262144, SizingEra::FourTimes)
        );
        // 3.10, 100 MiB: 104857600/16384/8 = 800 buckets -> rounded to 1024,
        // but max was taken before rounding: 3200.
        let s = kernel_default(&SizingInput::new(kv(3, 10), 100 << 20));
        assert_eq!((s.requested_buckets, s.buckets, s.max), (800, 1024, 3200));
        // 4.19, 100 MiB: rounded first (4.7+), max = 4 x 1024.
        let s = kernel_default(&SizingInput::new(kv(4, 19), 100 << 20));
        assert_eq!((s.buckets, s.max), (1024, 4096));
    }

    #[test]
    fn explicit_hashsize_gives_eight_times() {
        let mut i = SizingInput::new(kv(6, 18), 16 * GIB);
        i.hashsize = Some(100_000);
        let s = kernel_default(&i);
        // 100000 rounded up to a multiple of 512 = 100352; max 802816.
        assert_eq!((s.buckets, s.max), (100352, 802816));
    }

    #[test]
    fn degenerate_sizing_inputs_do_not_panic() {
        let mut i = SizingInput::new(kv(6, 18), 0);
        i.page_size = 0;
        i.word_bytes = 0;
        let s = kernel_default(&i);
        assert_eq!(s.buckets, 1024);
        i.mem_total_bytes = u64::MAX;
        i.page_size = 4096;
        i.word_bytes = 8;
        assert_eq!(kernel_default(&i).buckets, 262144);
        i.hashsize = Some(u32::MAX);
        let s = kernel_default(&i);
        assert_eq!(s.buckets, u32::MAX); // saturated rounding
        assert_eq!(s.max, u32::MAX);
        assert_eq!(round_buckets(7, 4096, 0), 7);
    }

    #[test]
    fn memory_from_snapshot_slab() {
        let mut snap = HostSnapshot::default();
        let m = memory_cost_for(&snap, 1000, 1024);
        assert!(m.object_size_assumed);
        assert_eq!(m.total_bytes, 1000 * 384 + 1024 * 16);
        snap.slab.push(conntrack_core::SlabCache {
            name: "nf_conntrack".into(),
            active_objs: 10,
            num_objs: 20,
            obj_size: 320,
        });
        let m = memory_cost_for(&snap, 1000, 1024);
        assert!(!m.object_size_assumed);
        assert_eq!(m.total_bytes, 1000 * 448 + 1024 * 16);
        assert_eq!(
            memory_cost(u64::MAX, u64::MAX, 256, 128, 16).total_bytes,
            u64::MAX
        );
    }

    #[test]
    fn little_and_time_to_full_edge_cases() {
        assert_eq!(little_entries(-5.0, 10.0), 0.0);
        assert_eq!(little_entries(f64::INFINITY, 10.0), 0.0);
        assert_eq!(little_rate(f64::NAN, 10.0), 0.0);
        assert_eq!(time_to_full(0, 100, f64::NAN), TimeToFull::Never);
        assert_eq!(time_to_full(0, 100, f64::INFINITY), TimeToFull::Never);
        assert_eq!(time_to_full(50, 100, 0.5), TimeToFull::In(100.0));
    }
}
