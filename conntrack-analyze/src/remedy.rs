//! Remedies: what a finding recommends, as values the tuning planner
//! answers one by one (an action that applies it, or a stated decline).

use conntrack_core::TimeoutKey;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A kind of fix. Findings list the remedies they recommend; every plan
/// either contains an action for each or declines it with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "remedy", content = "timeout")]
#[non_exhaustive]
pub enum Remedy {
    /// Raise `nf_conntrack_max`.
    RaiseMax,
    /// Resize the hash table (`nf_conntrack_buckets`).
    ResizeBuckets,
    /// Shorten a timeout.
    ShortenTimeout(TimeoutKey),
    /// Raise a timeout that is below its safe floor.
    RaiseTimeout(TimeoutKey),
    /// Spread receive processing over CPUs (RPS).
    EnableRps,
    /// Make source NAT pick ports fully at random (`--random-fully`, nft
    /// `fully-random`).
    FullyRandomNat,
    /// Fewer new connections: keepalive, upstream keepalive, connection
    /// pools.
    ReuseConnections,
    /// Take a high-churn workload off NAT (host networking, direct
    /// routing).
    BypassNat,
    /// Stop parallel same-tuple UDP queries (resolver options, node-local
    /// DNS cache, DNS over TCP).
    AvoidParallelDnsQueries,
    /// A kernel that resolves the race in the kernel.
    UpgradeKernel,
    /// Rate-limit or block sources of unanswered flows.
    LimitUnrepliedSources,
    /// Make the application close its sockets.
    FixCloseWait,
    /// Find the source of packets conntrack cannot track.
    InvestigateInvalid,
    /// Unload helper modules that no flow uses.
    UnloadHelpers,
    /// Give source NAT an address: the interface MASQUERADE leaves by
    /// needs an IPv4 address (or SNAT a fixed one).
    FixNatAddress,
}

impl Remedy {
    /// A stable kebab-case name (`shorten-timeout:tcp_timeout_time_wait`).
    pub fn name(self) -> String {
        match self {
            Remedy::ShortenTimeout(k) => format!("shorten-timeout:{k}"),
            Remedy::RaiseTimeout(k) => format!("raise-timeout:{k}"),
            other => other.base_name().to_string(),
        }
    }

    const fn base_name(self) -> &'static str {
        match self {
            Remedy::RaiseMax => "raise-max",
            Remedy::ResizeBuckets => "resize-buckets",
            Remedy::ShortenTimeout(_) => "shorten-timeout",
            Remedy::RaiseTimeout(_) => "raise-timeout",
            Remedy::EnableRps => "enable-rps",
            Remedy::FullyRandomNat => "fully-random-nat",
            Remedy::ReuseConnections => "reuse-connections",
            Remedy::BypassNat => "bypass-nat",
            Remedy::AvoidParallelDnsQueries => "avoid-parallel-dns-queries",
            Remedy::UpgradeKernel => "upgrade-kernel",
            Remedy::LimitUnrepliedSources => "limit-unreplied-sources",
            Remedy::FixCloseWait => "fix-close-wait",
            Remedy::InvestigateInvalid => "investigate-invalid",
            Remedy::UnloadHelpers => "unload-helpers",
            Remedy::FixNatAddress => "fix-nat-address",
        }
    }
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_json() {
        let r = Remedy::ShortenTimeout(TimeoutKey::TcpTimeWait);
        assert_eq!(r.name(), "shorten-timeout:tcp_timeout_time_wait");
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"remedy":"shorten_timeout","timeout":"tcp_timeout_time_wait"}"#
        );
        assert_eq!(serde_json::from_str::<Remedy>(&j).unwrap(), r);
        assert_eq!(
            serde_json::to_string(&Remedy::RaiseMax).unwrap(),
            r#"{"remedy":"raise_max"}"#
        );
    }
}
