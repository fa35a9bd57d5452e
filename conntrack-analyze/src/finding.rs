//! Findings: what diagnosis concludes, each with a stable id, a severity,
//! the numbers it rests on and an explanation an operator can act on.

use crate::cause::RankedCause;
use crate::evidence::{Evidence, EvidenceKey};
use crate::remedy::Remedy;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How urgent a finding is. Ordered: `Info < Warning < Critical`.
///
/// ```
/// use conntrack_analyze::Severity;
/// assert!(Severity::Critical > Severity::Warning);
/// assert_eq!(Severity::Warning.to_string(), "warning");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing is failing.
    Info,
    /// Something degrades or will fail if the trend continues.
    Warning,
    /// Packets or connections are being lost now.
    Critical,
}

impl Severity {
    /// The lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The stable identity of a kind of finding. New kinds may be added; match
/// with a wildcard arm.
///
/// ```
/// use conntrack_analyze::FindingId;
/// assert_eq!(FindingId::TableFull.name(), "table-full");
/// assert_eq!(FindingId::from_name("scan-suspects"), Some(FindingId::ScanSuspects));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingId {
    /// The table is (or was, within the window) full: `early_drop` rising,
    /// or `drop` rising beyond `insert_failed` with the count near max.
    TableFull,
    /// The count is close to `nf_conntrack_max` without drops yet.
    TableNearlyFull,
    /// Confirm-time insert failures with the table far from full
    /// (`insert_failed ~= drop`); the causes are ranked.
    ConfirmFailures,
    /// Hash buckets are overloaded: 2N/B high, or `chaintoolong` rising.
    OverloadedBuckets,
    /// Confirm-time clashes the kernel resolved (`clash_resolve` rising,
    /// 5.10+) while nothing failed: the same-flow UDP race happens, and
    /// costs no packet on this kernel.
    ResolvedClashes,
    /// Receive (NET_RX softirq) work concentrated on few CPUs while RPS is
    /// off.
    CpuImbalance,
    /// `invalid` rising fast.
    InvalidSurge,
    /// Many new short-lived connections: a high new-connection rate, or
    /// TIME_WAIT holding most of the table.
    ConnectionChurn,
    /// CLOSE_WAIT holds a large share (applications not closing sockets).
    CloseWaitDominance,
    /// Long-idle ESTABLISHED entries kept by a long established timeout.
    LongEstablishedRetention,
    /// The established timeout is below the floor that keeps idle NAT'd
    /// connections (pools, keepalive) alive.
    EstablishedTimeoutBelowNatFloor,
    /// Sources with many UNREPLIED flows (scanners, or a dead backend).
    ScanSuspects,
    /// Translated flows (container bridge masquerade, DNAT to services)
    /// take a large share of the table.
    NatAmplification,
    /// Conntrack helper modules loaded but not used by any flow.
    UnneededHelpers,
    /// The counters went backwards between samples (reboot, module reload,
    /// namespace recreated); deltas across the reset were discarded.
    CounterReset,
    /// NAT itself dropped packets, as the drop tracer attributed them (no
    /// conntrack counter shows these).
    NatFailures,
}

impl FindingId {
    /// Every id, in declaration order.
    pub const ALL: [FindingId; 16] = [
        FindingId::TableFull,
        FindingId::TableNearlyFull,
        FindingId::ConfirmFailures,
        FindingId::OverloadedBuckets,
        FindingId::ResolvedClashes,
        FindingId::CpuImbalance,
        FindingId::InvalidSurge,
        FindingId::ConnectionChurn,
        FindingId::CloseWaitDominance,
        FindingId::LongEstablishedRetention,
        FindingId::EstablishedTimeoutBelowNatFloor,
        FindingId::ScanSuspects,
        FindingId::NatAmplification,
        FindingId::UnneededHelpers,
        FindingId::CounterReset,
        FindingId::NatFailures,
    ];

    /// The stable kebab-case name (also the serialised form).
    pub const fn name(self) -> &'static str {
        match self {
            FindingId::TableFull => "table-full",
            FindingId::TableNearlyFull => "table-nearly-full",
            FindingId::ConfirmFailures => "confirm-failures",
            FindingId::OverloadedBuckets => "overloaded-buckets",
            FindingId::ResolvedClashes => "resolved-clashes",
            FindingId::CpuImbalance => "cpu-imbalance",
            FindingId::InvalidSurge => "invalid-surge",
            FindingId::ConnectionChurn => "connection-churn",
            FindingId::CloseWaitDominance => "close-wait-dominance",
            FindingId::LongEstablishedRetention => "long-established-retention",
            FindingId::EstablishedTimeoutBelowNatFloor => "established-timeout-below-nat-floor",
            FindingId::ScanSuspects => "scan-suspects",
            FindingId::NatAmplification => "nat-amplification",
            FindingId::UnneededHelpers => "unneeded-helpers",
            FindingId::CounterReset => "counter-reset",
            FindingId::NatFailures => "nat-failures",
        }
    }

    /// The id with this name.
    pub fn from_name(name: &str) -> Option<FindingId> {
        FindingId::ALL.into_iter().find(|i| i.name() == name)
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A conclusion of diagnosis. Never emitted without evidence.
///
/// ```
/// use conntrack_analyze::{Evidence, EvidenceKey, Finding, FindingId, Remedy, Severity};
/// let f = Finding::new(FindingId::TableFull, Severity::Critical, "conntrack table full")
///     .with(Evidence::of(EvidenceKey::CounterRate, "early_drop", 40.0))
///     .recommend(Remedy::RaiseMax)
///     .explain("new flows are being refused");
/// assert!(f.to_string().starts_with("[critical] table-full: conntrack table full"));
/// assert_eq!(f.value_of(EvidenceKey::CounterRate, "early_drop"), Some(40.0));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Finding {
    /// The kind of finding.
    pub id: FindingId,
    /// How urgent.
    pub severity: Severity,
    /// One line for people.
    pub title: String,
    /// The numbers the finding rests on (never empty).
    pub evidence: Vec<Evidence>,
    /// The explanations weighed, strongest first (empty when the finding
    /// has a single obvious cause).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<RankedCause>,
    /// What it recommends; the plan acts on each or says why not.
    pub remedies: Vec<Remedy>,
    /// Why these numbers mean this, and what to look at next.
    pub explanation: String,
}

impl Finding {
    /// A finding with no evidence yet.
    pub fn new(id: FindingId, severity: Severity, title: impl Into<String>) -> Self {
        Finding {
            id,
            severity,
            title: title.into(),
            evidence: Vec::new(),
            causes: Vec::new(),
            remedies: Vec::new(),
            explanation: String::new(),
        }
    }

    /// Adds evidence.
    pub fn with(mut self, e: Evidence) -> Self {
        self.evidence.push(e);
        self
    }

    /// Adds several pieces of evidence.
    pub fn with_all(mut self, e: impl IntoIterator<Item = Evidence>) -> Self {
        self.evidence.extend(e);
        self
    }

    /// Adds a remedy (once).
    pub fn recommend(mut self, r: Remedy) -> Self {
        if !self.remedies.contains(&r) {
            self.remedies.push(r);
        }
        self
    }

    /// Sets the explanation.
    pub fn explain(mut self, text: impl Into<String>) -> Self {
        self.explanation = text.into();
        self
    }

    /// The value of the evidence with this key (the first, whatever its
    /// subject).
    pub fn value(&self, key: EvidenceKey) -> Option<f64> {
        self.evidence.iter().find(|e| e.key == key).map(|e| e.value)
    }

    /// The value of the evidence with this key and subject.
    pub fn value_of(&self, key: EvidenceKey, subject: &str) -> Option<f64> {
        self.evidence
            .iter()
            .find(|e| e.key == key && e.subject.as_deref() == Some(subject))
            .map(|e| e.value)
    }

    /// The leading cause, when causes were ranked.
    pub fn leading_cause(&self) -> Option<&RankedCause> {
        self.causes.first()
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {}: {}", self.severity, self.id, self.title)?;
        for e in &self.evidence {
            writeln!(f, "    {e}")?;
        }
        for c in &self.causes {
            writeln!(f, "  cause {} ({})", c.cause, c.likelihood)?;
        }
        write!(f, "  {}", self.explanation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_by_name_and_serde() {
        for id in FindingId::ALL {
            assert_eq!(FindingId::from_name(id.name()), Some(id));
            let j = serde_json::to_string(&id).unwrap();
            assert_eq!(j, format!("\"{}\"", id.name()));
        }
    }
}
