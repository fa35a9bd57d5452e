//! The kernel's counters are u32 that wrap: when a decrease is a wrap.

/// A wrap-around is plausible when the wrapped difference is under half
/// the u32 range (the counter was in its top half and restarted small).
pub(super) fn plausible_wrap(prev: u32, cur: u32) -> bool {
    cur.wrapping_sub(prev) < 1 << 31
}
