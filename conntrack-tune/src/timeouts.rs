//! Timeout floors and the effect of shortening a timeout, estimated from
//! the remaining-timeout histogram with Little's law (KERNEL.md section 6).

use crate::observe::RemainingHistogram;
use serde::{Deserialize, Serialize};

/// The lowest value the planner ever proposes for a timeout, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Floor {
    /// Seconds.
    pub secs: u32,
    /// The reason.
    pub reason: &'static str,
}

/// The sysctl key of a timeout.
///
/// ```
/// use conntrack_tune::timeouts::key;
/// assert_eq!(key("tcp_timeout_time_wait"), "net.netfilter.nf_conntrack_tcp_timeout_time_wait");
/// ```
pub fn key(short: &str) -> String {
    format!("net.netfilter.nf_conntrack_{short}")
}

/// The kernel default (6.x) of a timeout by short name.
pub fn default_secs(short: &str) -> Option<u32> {
    Some(match short {
        "tcp_timeout_syn_sent" => 120,
        "tcp_timeout_syn_recv" => 60,
        "tcp_timeout_established" => 432_000,
        "tcp_timeout_fin_wait" => 120,
        "tcp_timeout_close_wait" => 60,
        "tcp_timeout_last_ack" => 30,
        "tcp_timeout_time_wait" => 120,
        "tcp_timeout_close" => 10,
        "tcp_timeout_max_retrans" => 300,
        "tcp_timeout_unacknowledged" => 300,
        "udp_timeout" => 30,
        "udp_timeout_stream" => 120,
        "icmp_timeout" | "icmpv6_timeout" => 30,
        "generic_timeout" => 600,
        _ => return None,
    })
}

/// The floor of a timeout (short name, e.g. `tcp_timeout_time_wait`);
/// `nat` raises the floors that protect NAT mappings. `None` for a timeout
/// the planner never changes.
///
/// ```
/// use conntrack_tune::timeouts::floor;
/// assert_eq!(floor("tcp_timeout_time_wait", false).unwrap().secs, 30);
/// assert_eq!(floor("tcp_timeout_time_wait", true).unwrap().secs, 60);
/// assert!(floor("tcp_timeout_established", false).unwrap().secs > 7200);
/// assert!(floor("no_such_timeout", false).is_none());
/// ```
pub fn floor(short: &str, nat: bool) -> Option<Floor> {
    Some(match (short, nat) {
        ("tcp_timeout_time_wait", false) => Floor {
            secs: 30,
            reason: "late retransmitted FIN/ACK segments must still match their entry; below \
                     30 s they are tracked as INVALID and dropped by `ct state invalid drop` rules",
        },
        ("tcp_timeout_time_wait", true) => Floor {
            secs: 60,
            reason: "with NAT the mapping must outlive the endpoint's own TIME_WAIT \
                     (TCP_TIMEWAIT_LEN, 60 s): released earlier, the same port can be re-mapped \
                     while the peer still holds the old connection",
        },
        ("tcp_timeout_established", _) => Floor {
            secs: 7875,
            reason: "idle connections kept alive by TCP keepalive (tcp_keepalive_time 7200 s \
                     + 9 probes x 75 s) must keep their entry; losing it breaks NAT'd connections \
                     and stalls others behind `ct state invalid drop`",
        },
        ("tcp_timeout_close_wait", _) => Floor {
            secs: 60,
            reason: "a half-closed connection may still send data; 60 s is the kernel default",
        },
        ("tcp_timeout_fin_wait", _) => Floor {
            secs: 30,
            reason: "the peer's FIN may be retransmitted for several seconds",
        },
        ("tcp_timeout_syn_sent", _) => Floor {
            secs: 60,
            reason: "SYN retransmissions (tcp_syn_retries 6) span about a minute or more",
        },
        ("udp_timeout", _) => Floor {
            secs: 10,
            reason: "a resolver retries after 5 s; a reply arriving after the entry expired is \
                     not matched as ESTABLISHED",
        },
        ("udp_timeout_stream", _) => Floor {
            secs: 60,
            reason: "UDP streams (VPNs, QUIC) send keepalives every 15 to 30 s",
        },
        ("icmp_timeout", _) | ("icmpv6_timeout", _) => Floor {
            secs: 10,
            reason: "echo replies across slow paths take seconds",
        },
        ("generic_timeout", _) => Floor {
            secs: 60,
            reason: "untracked-protocol flows (GRE without helper, ESP) resend every few tens of seconds",
        },
        _ => return None,
    })
}

/// The estimated effect of shortening a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

/// Shortening a timeout that every entry starts with (`TIME_WAIT`): the
/// entries that entered the state in the last quarter of the timeout give
/// the arrival rate (`remaining >= current - w`, `w = current / 4`); Little's
/// law gives the steady-state count at the new timeout.
///
/// ```
/// use conntrack_tune::observe::RemainingHistogram;
/// use conntrack_tune::timeouts::shorten_fresh_state;
/// // 100 entries/s entering TIME_WAIT, timeout 120 s: 12,000 entries,
/// // uniformly spread over remaining 1..=120.
/// let mut h = RemainingHistogram::default();
/// for r in 1..=120u32 { h.by_secs.insert(r, 100); }
/// let s = shorten_fresh_state(&h, 120, 30);
/// assert_eq!(s.entries_now, 12_000);
/// assert_eq!(s.entries_after, 3_000);
/// assert_eq!(s.freed, 9_000);
/// ```
pub fn shorten_fresh_state(h: &RemainingHistogram, current: u32, proposed: u32) -> Shortening {
    let now = h.total();
    let w = (current / 4).max(1);
    let recent = h.at_least(current.saturating_sub(w) + 1);
    let rate = recent as f64 / w as f64;
    let after = (rate * proposed as f64).round();
    let after = if after.is_finite() { after as u64 } else { now };
    Shortening {
        entries_now: now,
        entries_after: after.min(now),
        freed: now.saturating_sub(after),
        rate_per_sec: rate,
    }
}

/// Shortening an idle timeout (`ESTABLISHED`, refreshed by every packet):
/// an entry with remaining `r` has been idle `current - r` seconds; those
/// idle at least `proposed` seconds would be gone.
///
/// ```
/// use conntrack_tune::observe::RemainingHistogram;
/// use conntrack_tune::timeouts::shorten_idle_state;
/// let mut h = RemainingHistogram::default();
/// h.by_secs.insert(431_990, 70);  // active
/// h.by_secs.insert(100_000, 30);  // idle for ~3.8 days
/// let s = shorten_idle_state(&h, 432_000, 86_400);
/// assert_eq!(s.freed, 30);
/// ```
pub fn shorten_idle_state(h: &RemainingHistogram, current: u32, proposed: u32) -> Shortening {
    let now = h.total();
    let cutoff = current.saturating_sub(proposed);
    let freed = h.below(cutoff.saturating_add(1));
    Shortening {
        entries_now: now,
        entries_after: now - freed.min(now),
        freed: freed.min(now),
        rate_per_sec: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_floor_is_at_most_the_default() {
        for short in [
            "tcp_timeout_time_wait",
            "tcp_timeout_established",
            "tcp_timeout_close_wait",
            "tcp_timeout_fin_wait",
            "tcp_timeout_syn_sent",
            "udp_timeout",
            "udp_timeout_stream",
            "icmp_timeout",
            "generic_timeout",
        ] {
            for nat in [false, true] {
                let f = floor(short, nat).unwrap();
                assert!(f.secs <= default_secs(short).unwrap(), "{short}");
                assert!(!f.reason.is_empty());
            }
        }
    }

    #[test]
    fn burst_just_started_frees_nothing_extra() {
        // All entries are fresh: rate high, steady state above now.
        let mut h = RemainingHistogram::default();
        h.by_secs.insert(119, 1000);
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
