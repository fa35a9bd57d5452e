//! Era-aware table sizing: the kernel's defaults per era, the hash table's
//! allocation unit, chain length and memory cost (KERNEL.md section 3).
//!
//! The capacity formulas are kept in this one module so that they can be
//! swapped for `conntrack-analyze`'s once both agree; every planner rule
//! calls them from here.

use conntrack_analyze::capacity as cap;
use conntrack_core::{HostSnapshot, KernelVersion};
use serde::{Deserialize, Serialize};

/// A sizing era: how the kernel derives its default `buckets` and `max`
/// (the planner's view of `conntrack_analyze::capacity::SizingEra`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// Up to 3.17: cap 16384 buckets above 1 GiB, min 32, max = 4 x buckets.
    Legacy,
    /// 3.18 to 5.14: cap 65536 above 4 GiB, 16384 above 1 GiB, min 32,
    /// max = 4 x buckets.
    Factor4,
    /// 5.15 and later (commit d532bcd0b269 "netfilter: conntrack: sanitize
    /// table size default settings"): cap 262144 above 4 GiB on 64-bit,
    /// 65536 above 1 GiB, min 1024, max = buckets (1:1).
    OneToOne,
}

impl From<cap::SizingEra> for Era {
    fn from(e: cap::SizingEra) -> Era {
        match e {
            cap::SizingEra::Legacy => Era::Legacy,
            cap::SizingEra::FourTimes => Era::Factor4,
            cap::SizingEra::OneTimes => Era::OneToOne,
        }
    }
}

impl Era {
    /// The era of a kernel version.
    ///
    /// ```
    /// use conntrack_core::KernelVersion;
    /// use conntrack_tune::sizing::Era;
    /// assert_eq!(Era::of(KernelVersion::new(5, 15, 0)), Era::OneToOne);
    /// assert_eq!(Era::of(KernelVersion::new(5, 14, 21)), Era::Factor4);
    /// assert_eq!(Era::of(KernelVersion::new(3, 10, 0)), Era::Legacy);
    /// ```
    pub fn of(v: KernelVersion) -> Era {
        cap::SizingEra::of(v).into()
    }

    /// `max = factor x buckets` when no hashsize was given.
    pub const fn default_factor(self) -> u64 {
        match self {
            Era::Legacy | Era::Factor4 => 4,
            Era::OneToOne => 1,
        }
    }

    /// A name for text output.
    pub const fn name(self) -> &'static str {
        match self {
            Era::Legacy => "<= 3.17 (max = 4 x buckets)",
            Era::Factor4 => "3.18 .. 5.14 (max = 4 x buckets)",
            Era::OneToOne => ">= 5.15 (max = buckets, d532bcd0b269)",
        }
    }
}

/// With an explicit `hashsize` (module option or boot parameter) the kernel
/// sets `max = 8 x buckets` in every era (`nf_conntrack_init_start`).
pub const EXPLICIT_HASHSIZE_FACTOR: u64 = 8;

/// The kernel's default `(buckets, max)` for a RAM size on a 64-bit,
/// 4 KiB-page host (`conntrack_analyze::capacity::kernel_default`).
///
/// ```
/// use conntrack_core::KernelVersion;
/// use conntrack_tune::sizing::default_sizing;
/// let gib = 1u64 << 30;
/// let v6 = KernelVersion::new(6, 1, 0);
/// assert_eq!(default_sizing(16 * gib, v6), (262144, 262144));
/// assert_eq!(default_sizing(16 * gib, KernelVersion::new(5, 4, 0)), (65536, 262144));
/// assert_eq!(default_sizing(2 * gib, v6), (65536, 65536));
/// assert_eq!(default_sizing(64 << 20, v6), (1024, 1024));
/// ```
pub fn default_sizing(mem_total_bytes: u64, kernel: KernelVersion) -> (u64, u64) {
    let s = cap::kernel_default(&cap::SizingInput::new(kernel, mem_total_bytes));
    (s.buckets as u64, s.max as u64)
}

/// The hash table's allocation unit in buckets: one page of 8-byte
/// `hlist_nulls_head`s (`nf_ct_alloc_hashtable` rounds the size up to
/// whole pages), 512 on 4 KiB pages.
///
/// ```
/// use conntrack_tune::sizing::allocation_unit;
/// assert_eq!(allocation_unit(4096), 512);
/// assert_eq!(allocation_unit(65536), 8192);
/// assert_eq!(allocation_unit(0), 512); // unknown or absurd: assume 4 KiB
/// assert_eq!(allocation_unit(u64::MAX), 512);
/// ```
pub fn allocation_unit(page_size: u64) -> u64 {
    page(page_size) / 8
}

/// A usable page size: a power of two from 512 B to 1 MiB, else 4 KiB.
fn page(page_size: u64) -> u64 {
    if page_size.is_power_of_two() && (512..=1 << 20).contains(&page_size) {
        page_size
    } else {
        4096
    }
}

/// Rounds `buckets` up to the allocation unit
/// (`conntrack_analyze::capacity::round_buckets`; the kernel's bucket
/// count is a u32, so the result saturates there).
///
/// ```
/// use conntrack_tune::sizing::round_buckets;
/// assert_eq!(round_buckets(1, 4096), 512);
/// assert_eq!(round_buckets(512, 4096), 512);
/// assert_eq!(round_buckets(513, 4096), 1024);
/// ```
pub fn round_buckets(buckets: u64, page_size: u64) -> u64 {
    let page = page(page_size);
    let unit = allocation_unit(page);
    let top = (u32::MAX as u64 / unit) * unit;
    let b = buckets.clamp(1, top) as u32;
    (cap::round_buckets(b, page, 8) as u64).min(top)
}

/// Mean chain length with `entries` entries in `buckets` buckets: every
/// entry is hashed twice (original and reply tuple).
///
/// ```
/// use conntrack_tune::sizing::chain_length;
/// assert_eq!(chain_length(262144, 262144), 2.0);
/// assert_eq!(chain_length(8, 0), f64::INFINITY);
/// ```
pub fn chain_length(entries: u64, buckets: u64) -> f64 {
    if buckets == 0 {
        return f64::INFINITY;
    }
    2.0 * entries as f64 / buckets as f64
}

/// The fewest buckets that keep the mean chain length at a full table at or
/// under `target`, rounded up to the allocation unit.
///
/// ```
/// use conntrack_tune::sizing::{buckets_for, chain_length};
/// let b = buckets_for(1_000_000, 2.0, 4096);
/// assert_eq!(b % 512, 0);
/// assert!(chain_length(1_000_000, b) <= 2.0);
/// ```
pub fn buckets_for(max: u64, target_chain: f64, page_size: u64) -> u64 {
    let target = if target_chain.is_finite() && target_chain > 0.0 {
        target_chain
    } else {
        2.0
    };
    let raw = (2.0 * max as f64 / target).ceil();
    if !(raw.is_finite() && raw < u32::MAX as f64) {
        // Unreachable within the kernel's u32 bucket count: the caller
        // sees the chain target missed.
        let unit = allocation_unit(page_size);
        return (u32::MAX as u64 / unit) * unit;
    }
    let mut b = round_buckets(raw as u64, page_size);
    // Guard against float rounding at the boundary.
    let unit = allocation_unit(page_size);
    while chain_length(max, b) > target && b + unit <= u32::MAX as u64 {
        b += unit;
    }
    b
}

/// Per-entry and per-bucket memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryModel {
    /// Bytes per entry: the `nf_conntrack` slab object plus the extension
    /// blob.
    pub per_entry: u64,
    /// Bytes per bucket: the conntrack hash plus the NAT `bysource` table.
    pub per_bucket: u64,
}

impl MemoryModel {
    /// The planning figure on 6.x: 256 B object + 128 B extensions per
    /// entry, 16 B per bucket (KERNEL.md section 3).
    pub const PLANNING: MemoryModel = MemoryModel {
        per_entry: 384,
        per_bucket: 16,
    };

    /// The model for a host (`conntrack_analyze::capacity::memory_cost_for`):
    /// the slab object size read from `/proc/slabinfo` when present, else
    /// 256 B, plus 128 B of extensions; 16 B per bucket.
    pub fn for_host(s: &HostSnapshot) -> MemoryModel {
        let m = cap::memory_cost_for(s, 1, 1);
        MemoryModel {
            per_entry: m.entries_total_bytes,
            per_bucket: m.buckets_total_bytes,
        }
    }

    /// Worst-case bytes with `max` entries and `buckets` buckets.
    ///
    /// ```
    /// use conntrack_tune::sizing::MemoryModel;
    /// assert_eq!(MemoryModel::PLANNING.bytes(1000, 1024), 1000 * 384 + 1024 * 16);
    /// ```
    pub fn bytes(self, max: u64, buckets: u64) -> u64 {
        max.saturating_mul(self.per_entry)
            .saturating_add(buckets.saturating_mul(self.per_bucket))
    }

    /// The largest `max` whose entries and the buckets keeping the chain
    /// target fit in `budget` bytes.
    pub fn max_within(self, budget: u64, target_chain: f64, page_size: u64) -> u64 {
        let t = if target_chain > 0.0 {
            target_chain
        } else {
            2.0
        };
        // Each entry costs per_entry plus 2/t buckets.
        let per = self.per_entry as f64 + self.per_bucket as f64 * 2.0 / t;
        let mut m = (budget as f64 / per).floor() as u64;
        while m > 0 && self.bytes(m, buckets_for(m, t, page_size)) > budget {
            m = m.saturating_sub(m / 1000 + 1);
        }
        m
    }
}

/// Little's law: steady-state entries = arrival rate x time in state
/// (`conntrack_analyze::capacity::little_entries`; 0 for invalid input).
pub fn littles_law(rate_per_sec: f64, seconds: f64) -> f64 {
    cap::little_entries(rate_per_sec, seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_by_version() {
        assert_eq!(Era::of(KernelVersion::new(6, 18, 0)), Era::OneToOne);
        assert_eq!(Era::of(KernelVersion::new(4, 9, 0)), Era::Factor4);
        assert_eq!(Era::of(KernelVersion::new(3, 17, 0)), Era::Legacy);
    }

    #[test]
    fn defaults_per_era() {
        let gib = 1u64 << 30;
        let (v3, v5, v6) = (
            KernelVersion::new(3, 10, 0),
            KernelVersion::new(5, 4, 0),
            KernelVersion::new(6, 18, 0),
        );
        // 8 GiB: capped differently per era; the factor changes at 5.15.
        assert_eq!(default_sizing(8 * gib, v3), (16384, 65536));
        assert_eq!(default_sizing(8 * gib, v5), (65536, 262144));
        assert_eq!(default_sizing(8 * gib, v6), (262144, 262144));
        // Small hosts: the 5.15 minimum of 1024, rounded to 512 multiples.
        assert_eq!(default_sizing(512 << 20, v6), (4096, 4096));
        assert_eq!(default_sizing(16 << 20, v6), (1024, 1024));
    }

    #[test]
    fn absurd_targets_terminate() {
        let b = buckets_for(u32::MAX as u64, 0.25, 4096);
        assert!(b <= u32::MAX as u64 && b.is_multiple_of(512));
        assert!(chain_length(u32::MAX as u64, b) > 0.25);
        assert_eq!(
            round_buckets(u64::MAX, 4096),
            round_buckets(u32::MAX as u64, 4096)
        );
    }

    #[test]
    fn buckets_round_and_meet_target() {
        for max in [1u64, 200, 511, 512, 513, 262_144, 8_388_608, 3_000_001] {
            for t in [0.5, 1.0, 2.0, 3.3, 8.0] {
                let b = buckets_for(max, t, 4096);
                assert_eq!(b % 512, 0, "max {max} t {t}");
                assert!(chain_length(max, b) <= t, "max {max} t {t} b {b}");
                // Minimal: one unit less would miss the target (or be 0).
                if b > 512 {
                    assert!(chain_length(max, b - 512) > t, "max {max} t {t} b {b}");
                }
            }
        }
    }

    #[test]
    fn max_within_budget_fits() {
        let m = MemoryModel::PLANNING;
        let budget = 100 << 20;
        let max = m.max_within(budget, 2.0, 4096);
        assert!(m.bytes(max, buckets_for(max, 2.0, 4096)) <= budget);
        assert!(m.bytes(max + 2000, buckets_for(max + 2000, 2.0, 4096)) > budget);
    }
}
