//! Timeout judgment: the lowest safe value of each timeout (its floor) and
//! the effect of changing a timeout, estimated from the remaining-timeout
//! histogram with Little's law.
//!
//! Diagnosis uses the floors to flag configured values that are too low
//! (an established timeout under the NAT keepalive floor), and the tuning
//! planner never proposes a value under them.

use crate::facts::Mix;
use crate::hotspots::RemainingHistogram;
use conntrack_core::TimeoutKey;
use serde::{Deserialize, Serialize};

/// Linux TCP keepalive defaults (`include/net/tcp.h`): first probe after
/// `TCP_KEEPALIVE_TIME` (7200 s), then `TCP_KEEPALIVE_PROBES` (9) probes
/// `TCP_KEEPALIVE_INTVL` (75 s) apart.
pub const TCP_KEEPALIVE_SECS: u32 = 7200 + 9 * 75;

/// RFC 5382 (NAT behavioural requirements for TCP), REQ-5: a NAT's
/// established idle timeout must not be less than 2 hours 4 minutes.
pub const RFC5382_ESTABLISHED_SECS: u32 = 7440;

/// `TCP_TIMEWAIT_LEN` (`include/net/tcp.h`): how long an endpoint keeps a
/// closed connection in TIME_WAIT.
pub const TCP_TIMEWAIT_LEN_SECS: u32 = 60;

/// The lowest value ever proposed for a timeout, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// Seconds.
    pub secs: u32,
    /// The reason.
    pub reason: &'static str,
}

/// The floor of a timeout; `nat` raises the floors that protect NAT
/// mappings. `None` for a timeout the planner never changes.
///
/// ```
/// use conntrack_analyze::timeouts::floor;
/// use conntrack_core::TimeoutKey;
/// assert_eq!(floor(TimeoutKey::TcpTimeWait, false).unwrap().secs, 30);
/// assert_eq!(floor(TimeoutKey::TcpTimeWait, true).unwrap().secs, 60);
/// assert_eq!(floor(TimeoutKey::TcpEstablished, true).unwrap().secs, 7875);
/// assert!(floor(TimeoutKey::TcpMaxRetrans, false).is_none());
/// ```
pub fn floor(key: TimeoutKey, nat: bool) -> Option<Floor> {
    Some(match (key, nat) {
        (TimeoutKey::TcpTimeWait, false) => Floor {
            secs: 30,
            reason: "late retransmitted FIN/ACK segments must still match their entry; below \
                     30 s they are tracked as INVALID and dropped by `ct state invalid drop` rules",
        },
        (TimeoutKey::TcpTimeWait, true) => Floor {
            secs: TCP_TIMEWAIT_LEN_SECS,
            reason: "with NAT the mapping must outlive the endpoint's own TIME_WAIT \
                     (TCP_TIMEWAIT_LEN, 60 s): released earlier, the same port can be re-mapped \
                     while the peer still holds the old connection",
        },
        (TimeoutKey::TcpEstablished, _) => Floor {
            secs: TCP_KEEPALIVE_SECS,
            reason: "idle connections kept alive by TCP keepalive (tcp_keepalive_time 7200 s + 9 \
                     probes x 75 s) must keep their entry; RFC 5382 requires NATs to keep idle \
                     established mappings at least 7440 s. An expired entry of a NAT'd connection \
                     is re-created by its next packet with a possibly different mapping, and the \
                     peer answers with RST",
        },
        (TimeoutKey::TcpCloseWait, _) => Floor {
            secs: 60,
            reason: "a half-closed connection may still send data; 60 s is the kernel default",
        },
        (TimeoutKey::TcpFinWait, _) => Floor {
            secs: 30,
            reason: "the peer's FIN may be retransmitted for several seconds",
        },
        (TimeoutKey::TcpSynSent, _) => Floor {
            secs: 60,
            reason: "SYN retransmissions (tcp_syn_retries 6) span about a minute or more",
        },
        (TimeoutKey::Udp, _) => Floor {
            secs: 10,
            reason: "a resolver retries after 5 s; a reply arriving after the entry expired is \
                     not matched as ESTABLISHED",
        },
        (TimeoutKey::UdpStream, _) => Floor {
            secs: 60,
            reason: "UDP streams (VPNs, QUIC) send keepalives every 15 to 30 s",
        },
        (TimeoutKey::Icmp, _) | (TimeoutKey::Icmpv6, _) => Floor {
            secs: 10,
            reason: "echo replies across slow paths take seconds",
        },
        (TimeoutKey::Generic, _) => Floor {
            secs: 60,
            reason: "untracked-protocol flows (GRE without helper, ESP) resend every few tens of \
                     seconds",
        },
        _ => return None,
    })
}

/// The estimated effect of shortening a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Shortening {
    /// Entries in the state now.
    pub entries_now: u64,
    /// Entries in the state in steady state after the change.
    pub entries_after: u64,
    /// The difference.
    pub freed: u64,
    /// Estimated rate of entries entering the state, per second (0 when
    /// the estimate is not rate-based).
    pub rate_per_sec: f64,
}

impl Shortening {
    /// The estimate for the whole table when it was made over a sample
    /// of the flows: counts scaled like [`Mix::scaled`], the rate by
    /// [`Mix::scale`].
    pub fn scaled(self, mix: &Mix) -> Shortening {
        Shortening {
            entries_now: mix.scaled(self.entries_now),
            entries_after: mix.scaled(self.entries_after),
            freed: mix.scaled(self.freed),
            rate_per_sec: self.rate_per_sec * mix.scale,
        }
    }
}

/// The rate at which entries enter a state every entry starts with a full
/// timer in (TIME_WAIT): entries that entered in the last quarter of the
/// timeout (`current - w < remaining <= current`, `w = current / 4`) over
/// the time they arrived in: `w`, or less when the oldest of them is
/// younger than `w` (arrivals that began only seconds ago, such as a table
/// a few seconds old, are not spread over the whole quarter; dividing by
/// `w` understated the incident lab's 300 connections/s as 70). Entries
/// with more than `current` remaining started under a longer timeout (the
/// sysctl was lowered since) and are not recent.
///
/// ```
/// use conntrack_analyze::hotspots::RemainingHistogram;
/// use conntrack_analyze::timeouts::inflow_rate;
/// let mut h = RemainingHistogram::default();
/// for r in 1..=120u32 { for _ in 0..10 { h.add(r); } }
/// assert_eq!(inflow_rate(&h, 120), 10.0);
/// // Timers left from a longer timeout do not count as recent arrivals.
/// for _ in 0..1000 { h.add(3000); }
/// assert_eq!(inflow_rate(&h, 120), 10.0);
/// // 300 arrivals/s for the last 4 s only.
/// let mut young = RemainingHistogram::default();
/// for r in 117..=120u32 { for _ in 0..300 { young.add(r); } }
/// assert_eq!(inflow_rate(&young, 120), 300.0);
/// ```
pub fn inflow_rate(h: &RemainingHistogram, current: u32) -> f64 {
    if current == 0 {
        return 0.0;
    }
    let w = (current / 4).max(1);
    let below = |r: u32| h.count_below(f64::from(r) + 1.0);
    let base = below(current - w);
    let recent = below(current) - base;
    if recent <= 0.0 {
        return 0.0;
    }
    // The oldest recent arrival: the smallest remaining above current - w
    // (binary search: `below` grows with r).
    let (mut lo, mut hi) = (current - w + 1, current);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) - base >= 0.5 {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let oldest = lo;
    let span = (current - oldest + 1).clamp(2.min(w), w);
    recent / f64::from(span)
}

/// Shortening a timeout that every entry starts with (`TIME_WAIT`):
/// Little's law over [`inflow_rate`] gives the steady-state count at the
/// new timeout.
///
/// ```
/// use conntrack_analyze::hotspots::RemainingHistogram;
/// use conntrack_analyze::timeouts::shorten_fresh_state;
/// // 100 entries/s entering TIME_WAIT, timeout 120 s.
/// let mut h = RemainingHistogram::default();
/// for r in 1..=120u32 { for _ in 0..100 { h.add(r); } }
/// let s = shorten_fresh_state(&h, 120, 30);
/// assert_eq!((s.entries_now, s.entries_after, s.freed), (12_000, 3_000, 9_000));
/// ```
pub fn shorten_fresh_state(h: &RemainingHistogram, current: u32, proposed: u32) -> Shortening {
    let now = h.total();
    let rate = inflow_rate(h, current);
    let after = (rate * f64::from(proposed)).round();
    let after = if after.is_finite() && after >= 0.0 {
        (after as u64).min(now)
    } else {
        now
    };
    Shortening {
        entries_now: now,
        entries_after: after,
        freed: now - after,
        rate_per_sec: rate,
    }
}

/// Shortening an idle timeout (`ESTABLISHED`, refreshed by every packet):
/// an entry with remaining `r` has been idle `current - r` seconds; those
/// idle at least `proposed` seconds would be gone.
///
/// ```
/// use conntrack_analyze::hotspots::RemainingHistogram;
/// use conntrack_analyze::timeouts::shorten_idle_state;
/// let mut h = RemainingHistogram::default();
/// for _ in 0..70 { h.add(431_990); } // active
/// for _ in 0..30 { h.add(100_000); } // idle for ~3.8 days
/// assert_eq!(shorten_idle_state(&h, 432_000, 86_400).freed, 30);
/// ```
pub fn shorten_idle_state(h: &RemainingHistogram, current: u32, proposed: u32) -> Shortening {
    let now = h.total();
    let cutoff = current.saturating_sub(proposed);
    let freed = (h.count_below(f64::from(cutoff) + 1.0).round() as u64).min(now);
    Shortening {
        entries_now: now,
        entries_after: now - freed,
        freed,
        rate_per_sec: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_floor_is_at_most_the_default() {
        for key in TimeoutKey::ALL {
            for nat in [false, true] {
                if let Some(f) = floor(key, nat) {
                    assert!(f.secs <= key.default_secs(None), "{key}");
                    assert!(!f.reason.is_empty());
                }
            }
        }
    }

    #[test]
    fn burst_just_started_frees_nothing_extra() {
        let mut h = RemainingHistogram::default();
        for _ in 0..1000 {
            h.add(119);
        }
        let s = shorten_fresh_state(&h, 120, 60);
        assert_eq!(s.freed, 0);
        assert_eq!(s.entries_after, 1000);
    }

    #[test]
    fn empty_histogram() {
        let h = RemainingHistogram::default();
        assert_eq!(shorten_fresh_state(&h, 120, 30).freed, 0);
        assert_eq!(shorten_idle_state(&h, 432000, 86400).freed, 0);
        assert_eq!(shorten_fresh_state(&h, 0, 0).freed, 0);
    }
}
