//! The kernel's counters are u32 that wrap: when a decrease is a wrap, and
//! a counter followed as a u64 across wraps.
//!
//! The per-CPU counters are `unsigned int` fields of `struct
//! ip_conntrack_stat` (`include/linux/netfilter/nf_conntrack_common.h`),
//! sent as 32-bit attributes by ctnetlink
//! (`ctnetlink_ct_stat_cpu_fill_info` in
//! `net/netfilter/nf_conntrack_netlink.c`) and printed as 8 hex digits in
//! `/proc/net/stat/nf_conntrack` (`ct_cpu_seq_show` in
//! `net/netfilter/nf_conntrack_standalone.c`).

use serde::{Deserialize, Serialize};

/// A wrap-around is plausible when the wrapped difference is under half
/// the u32 range (the counter was in its top half and restarted small).
pub(super) fn plausible_wrap(prev: u32, cur: u32) -> bool {
    cur.wrapping_sub(prev) < 1 << 31
}

/// A kernel u32 counter followed as a u64: each reading adds the
/// wrap-aware increase since the one before, so the total keeps growing
/// past 2^32 where the kernel's value starts again from 0. It starts at
/// the kernel's value, so it equals what `conntrack -S` shows until the
/// first wrap (what a Prometheus counter wants).
///
/// The increase is a wrap when the wrapped difference is under 2^31, the
/// rule [`Rates`](super::Rates) applies to each counter. A larger one is
/// the counter going backwards (namespace recreated, module reloaded): the
/// total restarts from the kernel's value, which a consumer sees as a
/// counter reset. ([`Rates`](super::Rates) also treats several counters
/// going back together with the entry count as a reset; one counter alone
/// cannot tell.)
///
/// ```
/// use conntrack_analyze::rates::{Advance, WrapAccumulator};
/// let mut drops = WrapAccumulator::new(u32::MAX - 5);
/// assert_eq!(drops.observe(10), Advance::By(16)); // wrapped
/// assert_eq!(drops.total(), u64::from(u32::MAX) + 11);
/// assert_eq!(drops.observe(3), Advance::Reset); // went back: restarted
/// assert_eq!(drops.total(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WrapAccumulator {
    last_raw: u32,
    total: u64,
}

/// What one reading of a [`WrapAccumulator`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Advance {
    /// The counter grew by this much since the last reading (a wrap
    /// included), 0 when unchanged.
    By(u64),
    /// The counter went backwards by more than a wrap explains: the total
    /// restarted from the kernel's value.
    Reset,
}

impl WrapAccumulator {
    /// Starts at the kernel's value.
    pub fn new(raw: u32) -> Self {
        WrapAccumulator {
            last_raw: raw,
            total: u64::from(raw),
        }
    }

    /// Takes a new reading of the kernel's value.
    pub fn observe(&mut self, raw: u32) -> Advance {
        let prev = std::mem::replace(&mut self.last_raw, raw);
        if plausible_wrap(prev, raw) {
            let d = u64::from(raw.wrapping_sub(prev));
            self.total = self.total.saturating_add(d);
            Advance::By(d)
        } else {
            self.total = u64::from(raw);
            Advance::Reset
        }
    }

    /// The total so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kernel's value at the last reading.
    pub fn last_raw(&self) -> u32 {
        self.last_raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_wrap_and_reset() {
        let mut a = WrapAccumulator::new(u32::MAX - 5);
        assert_eq!(a.total(), u64::from(u32::MAX - 5));
        // The kernel's u32 wraps: 6 to reach 2^32, then 10 more.
        assert_eq!(a.observe(10), Advance::By(16));
        assert_eq!(a.total(), u64::from(u32::MAX) + 11);
        assert_eq!(a.observe(10), Advance::By(0));
        assert_eq!(a.total(), u64::from(u32::MAX) + 11);
        // A large increase within one read is still an increase.
        assert_eq!(a.observe(10 + (1 << 30)), Advance::By(1 << 30));
        assert_eq!(a.total(), u64::from(u32::MAX) + 11 + (1 << 30));
        // Going back (namespace recreated): restart from the kernel's
        // value, a decrease a Prometheus counter reads as a reset.
        assert_eq!(a.observe(3), Advance::Reset);
        assert_eq!(a, WrapAccumulator::new(3));
        assert_eq!(a.observe(4), Advance::By(1));
        assert_eq!((a.total(), a.last_raw()), (4, 4));
    }

    #[test]
    fn the_line_between_wrap_and_reset_is_half_the_range() {
        // Exactly 2^31 - 1 forward (wrapping) is an increase; 2^31 is not.
        let mut a = WrapAccumulator::new(1 << 31);
        assert_eq!(a.observe(u32::MAX), Advance::By((1 << 31) - 1));
        let mut b = WrapAccumulator::new(1 << 31);
        assert_eq!(b.observe(0), Advance::Reset);
        // The same line as the rate computation's.
        assert!(plausible_wrap(1 << 31, u32::MAX));
        assert!(!plausible_wrap(1 << 31, 0));
    }

    #[test]
    fn follows_many_wraps() {
        let mut a = WrapAccumulator::new(0);
        let step = 1u32 << 30;
        let mut raw = 0u32;
        for _ in 0..16 {
            raw = raw.wrapping_add(step);
            assert_eq!(a.observe(raw), Advance::By(u64::from(step)));
        }
        assert_eq!(a.total(), 16 * u64::from(step)); // four wraps
    }
}
