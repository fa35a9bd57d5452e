//! Causes: the explanations a finding weighs against each other, ranked
//! by what the evidence says for and against each, with the evidence that
//! would tell them apart.

use crate::remedy::Remedy;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A candidate explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Cause {
    /// New connections through source NAT race for the same mapping: the
    /// port is reserved only at confirm, so two CPUs can pick the same one
    /// and the second insert fails.
    NatPortRace,
    /// Parallel first packets of one UDP flow (DNS A and AAAA queries from
    /// one socket) race to confirm on two CPUs.
    UdpClash,
    /// Inserts refused because the hash chain is over the kernel's cap
    /// (5.15+).
    ChainCap,
    /// The entry was dying, or an extension could not be added, at confirm
    /// time.
    DyingOrExtension,
    /// Short connections leave their entries in TIME_WAIT for the whole
    /// timeout.
    TimeWaitChurn,
    /// Flows that are never answered (scans, floods, a dead backend).
    UnrepliedFlood,
    /// ESTABLISHED entries of connections that went away silently.
    IdleEstablished,
    /// The demand for entries is simply above `nf_conntrack_max`.
    DemandAboveMax,
    /// Source NAT had no address to map to: MASQUERADE out an interface
    /// without an IPv4 address (the kernel logs "`<dev>` ate my IP
    /// address"), or a masqueraded flow's interface changed.
    SnatNoAddress,
}

impl Cause {
    /// The stable kebab-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Cause::NatPortRace => "nat-port-race",
            Cause::UdpClash => "udp-clash",
            Cause::ChainCap => "chain-cap",
            Cause::DyingOrExtension => "dying-or-extension",
            Cause::TimeWaitChurn => "time-wait-churn",
            Cause::UnrepliedFlood => "unreplied-flood",
            Cause::IdleEstablished => "idle-established",
            Cause::DemandAboveMax => "demand-above-max",
            Cause::SnatNoAddress => "snat-no-address",
        }
    }

    /// A short description for people.
    pub const fn describe(self) -> &'static str {
        match self {
            Cause::NatPortRace => "NAT port-allocation race of new connections",
            Cause::UdpClash => "same-tuple UDP race (DNS A/AAAA from one socket)",
            Cause::ChainCap => "hash chain over the kernel's cap",
            Cause::DyingOrExtension => "entry dying or extension failure at confirm",
            Cause::TimeWaitChurn => "short connections held in TIME_WAIT",
            Cause::UnrepliedFlood => "flows that are never answered",
            Cause::IdleEstablished => "idle ESTABLISHED entries of vanished connections",
            Cause::DemandAboveMax => "demand above nf_conntrack_max",
            Cause::SnatNoAddress => "source NAT without an address on the output interface",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How well the evidence supports a cause. Ordered from strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Likelihood {
    /// A counter or record shows it directly.
    Confirmed,
    /// The evidence points at it and nothing contradicts it.
    Likely,
    /// Consistent with the evidence but not shown by it.
    Possible,
    /// The evidence speaks against it.
    Unlikely,
    /// Impossible on this kernel or contradicted by a counter.
    Excluded,
}

impl Likelihood {
    /// The lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Likelihood::Confirmed => "confirmed",
            Likelihood::Likely => "likely",
            Likelihood::Possible => "possible",
            Likelihood::Unlikely => "unlikely",
            Likelihood::Excluded => "excluded",
        }
    }

    /// Whether the cause should be acted on.
    pub fn is_actionable(self) -> bool {
        matches!(self, Likelihood::Confirmed | Likelihood::Likely)
    }
}

impl fmt::Display for Likelihood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One cause, judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct RankedCause {
    /// The cause.
    pub cause: Cause,
    /// How well the evidence supports it.
    pub likelihood: Likelihood,
    /// The weight of the evidence for it (the number of supporting facts,
    /// weighted); orders causes of the same likelihood.
    pub score: i32,
    /// Evidence for it, in words with the numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supports: Vec<String>,
    /// Evidence against it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contradicts: Vec<String>,
    /// What would confirm or exclude it, and how to collect that.
    pub to_tell_apart: String,
    /// The fixes for this cause.
    pub remedies: Vec<Remedy>,
}

impl RankedCause {
    /// A cause with no evidence yet.
    pub fn new(cause: Cause, likelihood: Likelihood) -> Self {
        RankedCause {
            cause,
            likelihood,
            score: 0,
            supports: Vec::new(),
            contradicts: Vec::new(),
            to_tell_apart: String::new(),
            remedies: Vec::new(),
        }
    }
}

/// Sorts causes strongest first: by likelihood, then by the weight of
/// their evidence (stable for ties: the order the rule listed them in is
/// its prior).
pub fn rank(causes: &mut [RankedCause]) {
    causes.sort_by_key(|c| (c.likelihood, std::cmp::Reverse(c.score)));
}
