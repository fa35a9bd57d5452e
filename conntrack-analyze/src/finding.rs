//! Findings: what diagnosis concludes, each with a stable id, a severity,
//! the numbers it rests on and an explanation an operator can act on.

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
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingId {
    /// The table is (or was, within the window) full: `early_drop` rising,
    /// or `drop` rising beyond `insert_failed` with the count near max.
    TableFull,
    /// The count is close to `nf_conntrack_max` without drops yet.
    TableNearlyFull,
    /// Confirm-time insert failures caused by races on the same new flow
    /// (UDP clash; `insert_failed ~= drop`, count far below max).
    ConfirmClash,
    /// Confirm-time insert failures caused by the bucket chain cap
    /// (`chaintoolong` rising).
    ConfirmChainCap,
    /// Confirm-time insert failures whose cause the kernel's counters
    /// cannot tell apart (no `clash_resolve` / `chaintoolong` columns).
    ConfirmFailures,
    /// Hash buckets are overloaded: 2N/B high, or `chaintoolong` rising.
    OverloadedBuckets,
    /// Drops or insert failures concentrated on one CPU while RPS is off.
    CpuImbalance,
    /// `invalid` rising fast.
    InvalidSurge,
    /// TIME_WAIT holds most of the table (many short connections).
    TimeWaitDominance,
    /// CLOSE_WAIT holds a large share (applications not closing sockets).
    CloseWaitDominance,
    /// Long-idle ESTABLISHED entries kept by the 5-day default timeout.
    LongEstablishedRetention,
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
}

impl FindingId {
    /// Every id, in declaration order.
    pub const ALL: [FindingId; 15] = [
        FindingId::TableFull,
        FindingId::TableNearlyFull,
        FindingId::ConfirmClash,
        FindingId::ConfirmChainCap,
        FindingId::ConfirmFailures,
        FindingId::OverloadedBuckets,
        FindingId::CpuImbalance,
        FindingId::InvalidSurge,
        FindingId::TimeWaitDominance,
        FindingId::CloseWaitDominance,
        FindingId::LongEstablishedRetention,
        FindingId::ScanSuspects,
        FindingId::NatAmplification,
        FindingId::UnneededHelpers,
        FindingId::CounterReset,
    ];

    /// The stable kebab-case name (also the serialised form).
    pub const fn name(self) -> &'static str {
        match self {
            FindingId::TableFull => "table-full",
            FindingId::TableNearlyFull => "table-nearly-full",
            FindingId::ConfirmClash => "confirm-clash",
            FindingId::ConfirmChainCap => "confirm-chain-cap",
            FindingId::ConfirmFailures => "confirm-failures",
            FindingId::OverloadedBuckets => "overloaded-buckets",
            FindingId::CpuImbalance => "cpu-imbalance",
            FindingId::InvalidSurge => "invalid-surge",
            FindingId::TimeWaitDominance => "time-wait-dominance",
            FindingId::CloseWaitDominance => "close-wait-dominance",
            FindingId::LongEstablishedRetention => "long-established-retention",
            FindingId::ScanSuspects => "scan-suspects",
            FindingId::NatAmplification => "nat-amplification",
            FindingId::UnneededHelpers => "unneeded-helpers",
            FindingId::CounterReset => "counter-reset",
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

/// One number a finding rests on.
///
/// ```
/// use conntrack_analyze::Evidence;
/// let e = Evidence::new("drop rate", 12.5, Some("/s"));
/// assert_eq!(e.to_string(), "drop rate = 12.5 /s");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// What the number is (`"insert_failed rate"`, `"count / max"`).
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit (`"/s"`, `"entries"`, `"%"`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

impl Evidence {
    /// Evidence from a name, value and optional unit.
    pub fn new(name: impl Into<String>, value: f64, unit: Option<&str>) -> Self {
        Evidence {
            name: name.into(),
            value,
            unit: unit.map(str::to_owned),
        }
    }
}

/// Formats a number for people: integers without decimals, others with up
/// to 4 significant decimals, non-finite values by name.
pub(crate) fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    };
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.name, fmt_num(self.value))?;
        if let Some(u) = &self.unit {
            write!(f, " {u}")?;
        }
        Ok(())
    }
}

/// A conclusion of diagnosis. Never emitted without evidence.
///
/// ```
/// use conntrack_analyze::{Evidence, Finding, FindingId, Severity};
/// let f = Finding {
///     id: FindingId::TableFull,
///     severity: Severity::Critical,
///     title: "conntrack table full".into(),
///     evidence: vec![Evidence::new("early_drop rate", 40.0, Some("/s"))],
///     explanation: "new flows are being refused".into(),
/// };
/// assert!(f.to_string().starts_with("[critical] table-full: conntrack table full"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The kind of finding.
    pub id: FindingId,
    /// How urgent.
    pub severity: Severity,
    /// One line for people.
    pub title: String,
    /// The numbers the finding rests on (never empty).
    pub evidence: Vec<Evidence>,
    /// Why these numbers mean this, and what to look at next.
    pub explanation: String,
}

impl Finding {
    /// The evidence value with this name.
    pub fn evidence_value(&self, name: &str) -> Option<f64> {
        self.evidence
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {}: {}", self.severity, self.id, self.title)?;
        for e in &self.evidence {
            writeln!(f, "    {e}")?;
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

    #[test]
    fn numbers_format_for_people() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.04), "0.04");
        assert_eq!(fmt_num(123.456), "123.5");
        assert_eq!(fmt_num(f64::NAN), "NaN");
    }
}
