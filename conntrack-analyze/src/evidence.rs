//! Evidence: the numbers a finding rests on, each keyed by a stable id
//! ([`EvidenceKey`], plus a subject such as a counter, a state or an
//! address) so that programs match on the id and people read the label.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a number of evidence is. The serialised form (snake_case) is
/// stable; labels and units are derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EvidenceKey {
    /// The namespace's entry count.
    Count,
    /// `nf_conntrack_max`.
    Max,
    /// count / max, percent.
    Utilisation,
    /// The bucket count.
    Buckets,
    /// Mean chain length `2N/B`.
    MeanChain,
    /// Expected longest chain (Poisson model).
    ExpectedLongestChain,
    /// Modelled probability that an insert is refused by the chain cap.
    RefusalProbability,
    /// Slope of the entry count over the window.
    CountTrend,
    /// Seconds until the count reaches max at the current slope.
    TimeToFull,
    /// A counter's rate over the window (subject: the counter).
    CounterRate,
    /// A counter's highest single-interval rate (subject: the counter).
    PeakRate,
    /// A counter's value since boot or namespace creation (subject: the
    /// counter).
    CounterTotal,
    /// Share of the table's flows of a protocol (subject: the protocol).
    ProtoShare,
    /// Share of the table's flows that are translated.
    NatShare,
    /// Share of a protocol's flows that are translated (subject: the
    /// protocol).
    NatShareOfProto,
    /// Source-translated flows.
    SnatFlows,
    /// Destination-translated flows.
    DnatFlows,
    /// Flows of a named group (subject: the name).
    NamedFlows,
    /// DNS flows (port 53).
    DnsFlows,
    /// DNS share of the table.
    DnsShare,
    /// Share of source-translated flows going to one destination (subject:
    /// the destination).
    SnatDestinationShare,
    /// Estimated new TCP connections per second.
    NewConnectionRate,
    /// Entries in a state (subject: the state).
    StateEntries,
    /// Share of the table in a state (subject: the state).
    StateShare,
    /// A timeout as configured on the host (subject: the timeout).
    Timeout,
    /// The kernel's default for a timeout (subject: the timeout).
    TimeoutDefault,
    /// The lowest safe value of a timeout here (subject: the timeout).
    TimeoutFloor,
    /// ESTABLISHED entries idle longer than the retention threshold.
    IdleEstablished,
    /// Their share of the table.
    IdleEstablishedShare,
    /// Entries a shorter timeout would free (subject: the new value).
    EntriesFreed,
    /// Entries per second entering a state, by Little's law (subject: the
    /// state).
    InflowRate,
    /// The busiest CPU's rate of a counter (subject: the counter).
    BusiestCpuRate,
    /// The mean per-CPU rate of a counter (subject: the counter).
    MeanCpuRate,
    /// Busiest over mean.
    MaxOverMean,
    /// Effective number of CPUs doing the work (inverse Herfindahl).
    EffectiveCpus,
    /// The busiest CPU's share, percent.
    BusiestCpuShare,
    /// CPUs considered.
    Cpus,
    /// CPUs on which a counter rose (subject: the counter).
    CpusWithCounter,
    /// Receive queues known.
    RxQueues,
    /// Receive queues with RPS on.
    RxQueuesWithRps,
    /// The busiest CPU's share of NET_RX softirqs, percent.
    NetRxBusiestShare,
    /// Flows without a reply from one source (subject: the source).
    UnrepliedFromSource,
    /// Flows without a reply.
    UnrepliedFlows,
    /// Their share of the table.
    UnrepliedShare,
    /// Helper modules loaded.
    HelperModules,
    /// Flows with a helper or from an expectation.
    HelperFlows,
    /// Flows examined.
    FlowsExamined,
    /// Counter resets detected.
    Resets,
    /// Intervals discarded because of resets.
    IntervalsDiscarded,
    /// Source-NAT rules without fully-random port selection.
    SnatRulesWithoutFullyRandom,
    /// Source-NAT rules in the ruleset.
    SnatRules,
    /// Entries the demand needs, by Little's law.
    DemandEntries,
    /// Drops the drop tracer attributed to a reason over its window
    /// (subject: the reason).
    TracedDrops,
}

impl EvidenceKey {
    /// The unit of the value, when it has one.
    pub const fn unit(self) -> Option<&'static str> {
        use EvidenceKey::*;
        Some(match self {
            Count | Max | StateEntries | IdleEstablished | EntriesFreed | DemandEntries => {
                "entries"
            }
            Utilisation | ProtoShare | NatShare | NatShareOfProto | DnsShare
            | SnatDestinationShare | StateShare | IdleEstablishedShare | BusiestCpuShare
            | NetRxBusiestShare | UnrepliedShare => "%",
            MeanChain | ExpectedLongestChain => "nodes",
            CountTrend => "entries/s",
            TimeToFull | Timeout | TimeoutDefault | TimeoutFloor => "s",
            CounterRate | PeakRate | NewConnectionRate | InflowRate | BusiestCpuRate
            | MeanCpuRate => "/s",
            SnatFlows | DnatFlows | NamedFlows | DnsFlows | UnrepliedFromSource
            | UnrepliedFlows | HelperFlows | FlowsExamined => "flows",
            TracedDrops => "packets",
            _ => return None,
        })
    }

    /// The label for people, with the subject where the key has one.
    pub fn label(self, subject: Option<&str>) -> String {
        use EvidenceKey::*;
        let s = subject.unwrap_or("?");
        match self {
            Count => "count".into(),
            Max => "max".into(),
            Utilisation => "utilisation".into(),
            Buckets => "buckets".into(),
            MeanChain => "mean chain length 2N/B".into(),
            ExpectedLongestChain => "expected longest chain".into(),
            RefusalProbability => "modelled refusal probability per insert".into(),
            CountTrend => "count trend".into(),
            TimeToFull => "time to full".into(),
            CounterRate => format!("{s} rate"),
            PeakRate => format!("{s} peak rate"),
            CounterTotal => format!("{s} total"),
            ProtoShare => format!("{s} share"),
            NatShare => "translated share".into(),
            NatShareOfProto => format!("translated share of {s}"),
            SnatFlows => "SNAT flows".into(),
            DnatFlows => "DNAT flows".into(),
            NamedFlows => format!("flows of {s}"),
            DnsFlows => "DNS flows (port 53)".into(),
            DnsShare => "DNS share".into(),
            SnatDestinationShare => format!("SNAT flows to {s}"),
            NewConnectionRate => "new TCP connections (estimated)".into(),
            StateEntries => format!("{s} entries"),
            StateShare => format!("{s} share"),
            Timeout => s.to_string(),
            TimeoutDefault => format!("{s} kernel default"),
            TimeoutFloor => format!("{s} safe floor"),
            IdleEstablished => "idle ESTABLISHED entries".into(),
            IdleEstablishedShare => "idle share of table".into(),
            EntriesFreed => format!("entries freed at {s}"),
            InflowRate => format!("entering {s}"),
            BusiestCpuRate => format!("{s} on busiest CPU"),
            MeanCpuRate => format!("{s} mean per CPU"),
            MaxOverMean => "max / mean".into(),
            EffectiveCpus => "effective CPUs".into(),
            BusiestCpuShare => "busiest CPU share".into(),
            Cpus => "CPUs".into(),
            CpusWithCounter => format!("CPUs with {s}"),
            RxQueues => "rx queues known".into(),
            RxQueuesWithRps => "rx queues with RPS".into(),
            NetRxBusiestShare => "NET_RX softirqs on busiest CPU".into(),
            UnrepliedFromSource => format!("unreplied flows from {s}"),
            UnrepliedFlows => "unreplied flows".into(),
            UnrepliedShare => "unreplied share".into(),
            HelperModules => "helper modules loaded".into(),
            HelperFlows => "flows with a helper or expectation".into(),
            FlowsExamined => "flows examined".into(),
            Resets => "resets".into(),
            IntervalsDiscarded => "intervals discarded".into(),
            SnatRulesWithoutFullyRandom => "SNAT/MASQUERADE rules without fully-random".into(),
            SnatRules => "SNAT/MASQUERADE rules".into(),
            DemandEntries => "inferred demand".into(),
            TracedDrops => format!("{s} drops traced"),
        }
    }
}

/// One number a finding rests on.
///
/// ```
/// use conntrack_analyze::{Evidence, EvidenceKey};
/// let e = Evidence::of(EvidenceKey::CounterRate, "drop", 12.5);
/// assert_eq!(e.to_string(), "drop rate = 12.5 /s");
/// assert_eq!(Evidence::new(EvidenceKey::Utilisation, 3.8).to_string(), "utilisation = 3.8 %");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(into = "EvidenceRepr", from = "EvidenceRepr")]
pub struct Evidence {
    /// What the number is.
    pub key: EvidenceKey,
    /// What it is about (a counter, a state, an address), when the key
    /// has a subject.
    pub subject: Option<String>,
    /// The value (finite: non-finite values are stored as 0).
    pub value: f64,
}

impl Evidence {
    /// Evidence without a subject.
    pub fn new(key: EvidenceKey, value: f64) -> Self {
        Evidence {
            key,
            subject: None,
            value: finite(value),
        }
    }

    /// Evidence about a subject.
    pub fn of(key: EvidenceKey, subject: impl fmt::Display, value: f64) -> Self {
        Evidence {
            key,
            subject: Some(subject.to_string()),
            value: finite(value),
        }
    }

    /// The label for people.
    pub fn label(&self) -> String {
        self.key.label(self.subject.as_deref())
    }

    /// The unit, when the key has one.
    pub fn unit(&self) -> Option<&'static str> {
        self.key.unit()
    }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// The JSON form: the stable key and subject, plus the label and unit for
/// readers (ignored when read back).
#[derive(Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
struct EvidenceRepr {
    /// What the number is: the stable id to match on.
    key: EvidenceKey,
    /// What it is about (a counter, a state, an address, a timeout), for
    /// the keys that have a subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    /// The value, in `unit`.
    value: f64,
    /// The unit of the value (derived from the key), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    /// The number in words, for people (derived from the key and
    /// subject; ignored when read back).
    #[serde(default)]
    label: String,
}

impl From<Evidence> for EvidenceRepr {
    fn from(e: Evidence) -> Self {
        EvidenceRepr {
            label: e.label(),
            unit: e.unit().map(str::to_owned),
            key: e.key,
            subject: e.subject,
            value: e.value,
        }
    }
}

impl From<EvidenceRepr> for Evidence {
    fn from(r: EvidenceRepr) -> Self {
        Evidence {
            key: r.key,
            subject: r.subject,
            value: finite(r.value),
        }
    }
}

/// Formats a number for people: integers without decimals and with
/// thousands separators, others with up to 4 significant decimals.
///
/// ```
/// use conntrack_analyze::evidence::fmt_num;
/// assert_eq!(fmt_num(7_390_187.0), "7,390,187");
/// assert_eq!(fmt_num(0.04), "0.04");
/// assert_eq!(fmt_num(123.456), "123.5");
/// ```
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return group(v as i64);
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

/// An integer with thousands separators.
///
/// ```
/// use conntrack_analyze::evidence::group;
/// assert_eq!(group(-1234567), "-1,234,567");
/// assert_eq!(group(999), "999");
/// ```
pub fn group(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if v < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.label(), fmt_num(self.value))?;
        if let Some(u) = self.unit() {
            write!(f, " {u}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_key_label_and_unit_and_reads_back() {
        let e = Evidence::of(EvidenceKey::CounterRate, "insert_failed", 5.0);
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["key"], "counter_rate");
        assert_eq!(j["subject"], "insert_failed");
        assert_eq!(j["label"], "insert_failed rate");
        assert_eq!(j["unit"], "/s");
        let back: Evidence = serde_json::from_value(j).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn non_finite_values_are_stored_as_zero() {
        assert_eq!(Evidence::new(EvidenceKey::Count, f64::NAN).value, 0.0);
    }
}
