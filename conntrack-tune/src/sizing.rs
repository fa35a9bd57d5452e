//! Era-aware table sizing: the kernel's defaults per era, the hash table's
//! allocation unit, chain length and memory cost (KERNEL.md section 3).
//!
//! The capacity formulas are kept in this one module so that they can be
//! swapped for `conntrack-analyze`'s once both agree; every planner rule
//! calls them from here.

use conntrack_core::{HostSnapshot, KernelVersion};
use serde::{Deserialize, Serialize};

/// A sizing era: how the kernel derives its default `buckets` and `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// Up to 3.17: cap 16384 buckets above 1 GiB, min 32, max = 4 x buckets.
    Legacy,
    /// 4.x to 5.14: cap 65536 above 4 GiB, 16384 above 1 GiB, min 32,
    /// max = 4 x buckets.
    Factor4,
    /// 5.15 and later (commit d532bcd0b269 "netfilter: conntrack: sanitize
    /// table size default settings"): cap 262144 above 4 GiB on 64-bit,
    /// 65536 above 1 GiB, min 1024, max = buckets (1:1).
    OneToOne,
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
        if v.at_least(5, 15) {
            Era::OneToOne
        } else if v.at_least(3, 18) {
            Era::Factor4
        } else {
            Era::Legacy
        }
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
            Era::Factor4 => "4.x .. 5.14 (max = 4 x buckets)",
            Era::OneToOne => ">= 5.15 (max = buckets, d532bcd0b269)",
        }
    }
}

/// With an explicit `hashsize` (module option or boot parameter) the kernel
/// sets `max = 8 x buckets` in every era (`nf_conntrack_init_start`).
pub const EXPLICIT_HASHSIZE_FACTOR: u64 = 8;

/// The kernel's default `(buckets, max)` for a RAM size, 64-bit, per era.
///
/// ```
/// use conntrack_tune::sizing::{default_sizing, Era};
/// let gib = 1u64 << 30;
/// assert_eq!(default_sizing(16 * gib, Era::OneToOne), (262144, 262144));
/// assert_eq!(default_sizing(16 * gib, Era::Factor4), (65536, 262144));
/// assert_eq!(default_sizing(2 * gib, Era::OneToOne), (65536, 65536));
/// assert_eq!(default_sizing(64 << 20, Era::OneToOne), (1024, 1024));
/// ```
pub fn default_sizing(mem_total_bytes: u64, era: Era) -> (u64, u64) {
    const GIB: u64 = 1 << 30;
    let mut buckets = mem_total_bytes / 16384 / 8;
    match era {
        Era::Legacy => {
            if mem_total_bytes > GIB {
                buckets = 16384;
            }
            buckets = buckets.max(32);
        }
        Era::Factor4 => {
            if mem_total_bytes > 4 * GIB {
                buckets = 65536;
            } else if mem_total_bytes > GIB {
                buckets = 16384;
            }
            buckets = buckets.max(32);
        }
        Era::OneToOne => {
            if mem_total_bytes > 4 * GIB {
                buckets = 262144;
            } else if mem_total_bytes > GIB {
                buckets = 65536;
            }
            buckets = buckets.max(1024);
        }
    }
    (buckets, buckets * era.default_factor())
}

/// The hash table's allocation unit in buckets: one page of 8-byte
/// `hlist_nulls_head`s (`nf_ct_alloc_hashtable` rounds the size up to
/// whole pages), 512 on 4 KiB pages.
///
/// ```
/// use conntrack_tune::sizing::allocation_unit;
/// assert_eq!(allocation_unit(4096), 512);
/// assert_eq!(allocation_unit(65536), 8192);
/// assert_eq!(allocation_unit(0), 512); // unknown: assume 4 KiB
/// ```
pub fn allocation_unit(page_size: u64) -> u64 {
    let page = if page_size >= 8 { page_size } else { 4096 };
    (page / 8).max(1)
}

/// Rounds `buckets` up to the allocation unit.
///
/// ```
/// use conntrack_tune::sizing::round_buckets;
/// assert_eq!(round_buckets(1, 4096), 512);
/// assert_eq!(round_buckets(512, 4096), 512);
/// assert_eq!(round_buckets(513, 4096), 1024);
/// ```
pub fn round_buckets(buckets: u64, page_size: u64) -> u64 {
    let unit = allocation_unit(page_size);
    buckets.max(1).div_ceil(unit).saturating_mul(unit)
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
    let raw = if raw.is_finite() && raw < u64::MAX as f64 {
        raw as u64
    } else {
        u64::MAX / 2
    };
    let mut b = round_buckets(raw, page_size);
    // Guard against float rounding at the boundary.
    while chain_length(max, b) > target && b < u64::MAX / 2 {
        b += allocation_unit(page_size);
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

    /// The model for a host: the slab object size read from
    /// `/proc/slabinfo` when present (plus 128 B of extensions), else the
    /// planning figure.
    pub fn for_host(s: &HostSnapshot) -> MemoryModel {
        let obj = s
            .slab
            .iter()
            .filter(|c| c.name == "nf_conntrack" || c.name.starts_with("nf_conntrack_"))
            .map(|c| c.obj_size)
            .find(|&sz| sz > 0 && sz < 1 << 20);
        match obj {
            Some(o) => MemoryModel {
                per_entry: o + 128,
                per_bucket: 16,
            },
            None => MemoryModel::PLANNING,
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

/// Little's law: steady-state entries = arrival rate x time in state.
pub fn littles_law(rate_per_sec: f64, seconds: f64) -> f64 {
    if rate_per_sec.is_finite() && seconds.is_finite() && rate_per_sec > 0.0 && seconds > 0.0 {
        rate_per_sec * seconds
    } else {
        0.0
    }
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
        // 8 GiB: pre-cap value is 65536 for every era.
        assert_eq!(default_sizing(8 * gib, Era::Legacy), (16384, 65536));
        assert_eq!(default_sizing(8 * gib, Era::Factor4), (65536, 262144));
        assert_eq!(default_sizing(8 * gib, Era::OneToOne), (262144, 262144));
        // Tiny hosts hit the minimum.
        assert_eq!(default_sizing(16 << 20, Era::Factor4), (128, 512));
        assert_eq!(default_sizing(1 << 20, Era::Factor4), (32, 128));
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
