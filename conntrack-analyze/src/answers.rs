//! Answers to the questions operators ask of a conntrack table, when the
//! data can answer them: are these counters happening now or are they
//! history, is it a hash-bucket problem, what changes with more CPUs, and
//! which peers and services drive the table and its churn.

use crate::buckets::{ChainCap, poisson_model};
use crate::diagnose::round2;
use crate::evidence::{Evidence, EvidenceKey, fmt_num, group};
use crate::facts::{CounterStatus, Facts};
use crate::hotspots::{KeyKind, KeyTable};
use conntrack_core::{Counter, FlowState, L4Proto, TcpState};
use serde::Serialize;
use std::fmt::Write;

/// A question the report answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Question {
    /// Are the `conntrack -S` numbers happening now or since boot?
    NowOrSinceBoot,
    /// Is it a hash-bucket problem? What is the bucket distribution?
    BucketDistribution,
    /// How does this change with more (or fewer) CPUs?
    CpuScaling,
    /// Which peers, services and containers drive the table, and which
    /// connections are short-lived churn?
    WhoDrivesTheTable,
}

impl Question {
    /// The question in words.
    pub const fn text(self) -> &'static str {
        match self {
            Question::NowOrSinceBoot => "Are these counters happening now, or since boot?",
            Question::BucketDistribution => {
                "Is this a hash-bucket problem? How are entries spread over the buckets?"
            }
            Question::CpuScaling => "What changes with more or fewer CPUs?",
            Question::WhoDrivesTheTable => {
                "Who drives the table, and which connections are short-lived churn?"
            }
        }
    }
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Answer {
    /// The question.
    pub question: Question,
    /// The answer in words, from the data.
    pub answer: String,
    /// The numbers behind it.
    pub evidence: Vec<Evidence>,
}

/// The questions the data can answer, answered.
pub fn answer(f: &Facts) -> Vec<Answer> {
    [now_or_since_boot(f), buckets(f), cpus(f), drivers(f)]
        .into_iter()
        .flatten()
        .collect()
}

const WATCHED: [Counter; 6] = [
    Counter::InsertFailed,
    Counter::Drop,
    Counter::EarlyDrop,
    Counter::ClashResolve,
    Counter::ChainTooLong,
    Counter::Invalid,
];

fn now_or_since_boot(f: &Facts) -> Option<Answer> {
    let c = &f.counters;
    let nonzero: Vec<Counter> = WATCHED
        .into_iter()
        .filter(|&k| c.get(k).total.is_some_and(|t| t > 0))
        .collect();
    if nonzero.is_empty() {
        return None;
    }
    let since = c.epoch.describe();
    let mut text = String::new();
    let mut ev = Vec::new();
    match c.window_secs {
        None => {
            let _ = write!(
                text,
                "Cannot tell: only one statistics sample, and the counters are cumulative \
                 {since}. Take two samples a few seconds apart (a stats.txt with `@ SECONDS` \
                 lines, or `doctor --window`) and compare their sum over all CPUs."
            );
        }
        Some(w) => {
            let _ = write!(
                text,
                "Over a {} s window: ",
                fmt_num((w * 10.0).round() / 10.0)
            );
            let parts: Vec<String> = nonzero
                .iter()
                .map(|&k| {
                    let r = c.get(k);
                    match r.status {
                        CounterStatus::Live => format!(
                            "{k} is rising now ({}/s, {} in the window)",
                            fmt_num(r.per_sec.unwrap_or(0.0)),
                            group(r.delta.unwrap_or(0) as i64)
                        ),
                        CounterStatus::History => {
                            format!("{k} is history (flat over the window)")
                        }
                        _ => format!("{k} was not measured over the window"),
                    }
                })
                .collect();
            text.push_str(&parts.join("; "));
            let _ = write!(
                text,
                ". The totals ({since}) only say it happened at some time; the window says \
                 whether it happens now."
            );
        }
    }
    for k in nonzero {
        let r = c.get(k);
        if let Some(t) = r.total {
            ev.push(Evidence::of(EvidenceKey::CounterTotal, k, f64::from(t)));
        }
        if let Some(p) = r.per_sec {
            ev.push(Evidence::of(EvidenceKey::CounterRate, k, p));
        }
    }
    if c.backported {
        text.push_str(
            " This kernel reports a version before 4.9, but insert is 0 with a populated \
             table: kernels before 4.9 count every confirmed insert (RHEL 7's 3.10.0-1160 \
             too), 4.9+ kernels only ctnetlink inserts. The counters behave like a 4.9+ \
             kernel's (newer conntrack code than the version says, or not the kernel the \
             capture names) and are read with those meanings.",
        );
    }
    Some(Answer {
        question: Question::NowOrSinceBoot,
        answer: text,
        evidence: ev,
    })
}

fn buckets(f: &Facts) -> Option<Answer> {
    let (count, b) = (f.table.count?, f.table.buckets?);
    let cap = f.chain_cap();
    let m = poisson_model(count, b, cap);
    let mut text = format!(
        "{} entries in {} buckets: every entry is hashed twice (original and reply), so the \
         mean chain is 2N/B = {:.2}. Modelled as Poisson: ",
        group(count as i64),
        group(b as i64),
        m.lambda
    );
    let dist: Vec<String> = (0..m.p_len.len().min(5))
        .map(|k| format!("{:.1}% of buckets hold {k}", m.p_len[k] * 100.0))
        .collect();
    let _ = write!(
        text,
        "{}; the longest chain is expected near {:.0} nodes.",
        dist.join(", "),
        m.expected_longest
    );
    match (cap, m.p_insert_refused) {
        (ChainCap::None, _) if f.kernel.is_some() => text.push_str(
            " This kernel has no chain cap (mainline before 5.15, and it reports no \
             chaintoolong counter, which a backport of the cap would add): long chains only \
             slow lookups, they never refuse an insert, so insert_failed cannot come from the \
             buckets.",
        ),
        (ChainCap::Uniform { min, max }, Some(p)) => {
            let _ = write!(
                text,
                " This kernel refuses an insert into a chain over a random cap of {min}..{max} \
                 nodes; the model gives a refusal probability of {p:.2e} per insert."
            );
        }
        _ => {}
    }
    if let Some(s) = &f.obs.chains {
        if s.flow_share < 1.0 {
            let _ = write!(
                text,
                " Hashing a sample of the listed tuples (SipHash, own key; the {:.1}% of flows \
                 whose tuple falls in the sample, into as large a share of the buckets: {} of \
                 {}) gives a longest chain of {} among those buckets and {} duplicate tuples.",
                s.flow_share * 100.0,
                group(s.buckets as i64),
                group(s.table_buckets as i64),
                s.longest,
                s.duplicate_tuples
            );
        } else {
            let _ = write!(
                text,
                " Hashing the listed tuples (SipHash, own key) gives a longest chain of {} and {} \
                 duplicate tuples.",
                s.longest, s.duplicate_tuples
            );
        }
    }
    let mut ev = vec![
        Evidence::new(EvidenceKey::Count, count as f64),
        Evidence::new(EvidenceKey::Buckets, b as f64),
        Evidence::new(EvidenceKey::MeanChain, round2(m.lambda)),
        Evidence::new(
            EvidenceKey::ExpectedLongestChain,
            round2(m.expected_longest),
        ),
    ];
    if let Some(p) = m.p_insert_refused {
        ev.push(Evidence::new(EvidenceKey::RefusalProbability, p));
    }
    Some(Answer {
        question: Question::BucketDistribution,
        answer: text,
        evidence: ev,
    })
}

fn cpus(f: &Facts) -> Option<Answer> {
    let n = f.cpu.online;
    if n == 0 && f.cpu.failures.is_none() {
        return None;
    }
    let mut text = String::new();
    if n > 0 {
        let _ = write!(text, "This host has {n} CPUs. ");
    }
    text.push_str(
        "Scales with CPUs: the per-CPU counters (one row per possible CPU), the parallelism \
         of packet processing (RSS queues, RPS), and kube-proxy's max (maxPerCore x CPUs). \
         Does not: nf_conntrack_max and the hash table (one global table, sized from RAM, \
         not CPUs). More CPUs handling new connections at once make confirm-time races (two \
         CPUs confirming clashing entries) more frequent, not less.",
    );
    let mut ev = Vec::new();
    if n > 0 {
        ev.push(Evidence::new(EvidenceKey::Cpus, n as f64));
    }
    if let Some(imb) = &f.cpu.failures {
        let _ = write!(
            text,
            " Here {} rises on {} of {} CPUs (busiest {:.0}%, {:.1} effective CPUs): {}.",
            imb.counter,
            f.cpu.cpus_with_failures,
            imb.cpus,
            imb.busiest_share * 100.0,
            imb.spread.effective_cpus,
            if imb.spread.is_imbalanced() {
                "concentrated on few CPUs"
            } else {
                "spread over the CPUs, so the work is already parallel and RPS would add \
                 nothing"
            }
        );
        ev.push(Evidence::of(
            EvidenceKey::CpusWithCounter,
            imb.counter,
            f.cpu.cpus_with_failures as f64,
        ));
        ev.push(Evidence::new(
            EvidenceKey::EffectiveCpus,
            round2(imb.spread.effective_cpus),
        ));
    }
    Some(Answer {
        question: Question::CpuScaling,
        answer: text,
        evidence: ev,
    })
}

/// How a table's counts spread: no key proved heavier than the rest (a
/// bounded count: none above this many), every key with one count (how
/// many keys, each with how many), or the first rows.
enum Spread {
    NoneAbove(u64),
    Flat { keys: u64, each: u64 },
    Rows(String),
}

/// The first `n` rows of a table as `key (count)`, a bounded count's as
/// `key (lower..upper)`, and a cut among equal counts saying how many more
/// have the same count ([`KeyTable::tied_after`]); or why there are none
/// to list.
fn spread(t: &KeyTable, scale: impl Fn(u64) -> u64, n: usize) -> Spread {
    if t.top.is_empty() && !t.exact {
        return Spread::NoneAbove(scale(t.others_at_most));
    }
    if t.is_flat() {
        return Spread::Flat {
            keys: t.distinct.unwrap_or(0),
            each: scale(t.top[0].count),
        };
    }
    let shown = t.top.len().min(n);
    let tied = t.tied_after(shown);
    let more = (tied > 0).then(|| format!("and {} more with the same count", group(tied as i64)));
    Spread::Rows(
        t.top
            .iter()
            .take(n)
            .map(|k| {
                if k.error == 0 {
                    format!("{} ({})", k.key, group(scale(k.count) as i64))
                } else {
                    format!(
                        "{} ({}..{})",
                        k.key,
                        group(scale(k.lower()) as i64),
                        group(scale(k.count) as i64)
                    )
                }
            })
            .chain(more)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// [`spread`] after a label: the rows, or "none standing out (...)".
fn top_rows(t: &KeyTable, scale: impl Fn(u64) -> u64, n: usize) -> String {
    match spread(t, scale, n) {
        Spread::NoneAbove(c) => format!("none standing out (no key above {})", group(c as i64)),
        Spread::Flat { keys, each } => format!(
            "none standing out (all {} with {} each)",
            group(keys as i64),
            group(each as i64)
        ),
        Spread::Rows(rows) => rows,
    }
}

/// Where a table's flows go, for a sentence after a verb: "mostly to
/// A (3), B (2)" when the rows listed hold most of the flows (`prep`
/// "to"), "to many destinations, the largest A (176), B (88)" when they
/// do not (the largest are listed, but no "mostly" they cannot back),
/// "evenly to 391
/// destinations (1,006 each)" when every key has one count (`noun`
/// "destinations"), "to many destinations, none above 12" when a bounded
/// count proved no key heavier than the rest. The rows read as in the
/// answers: `key (count)`, a bounded count as `key (lower..upper)`, and
/// "and N more with the same count" after a cut among equal counts.
///
/// ```
/// use conntrack_analyze::answers::concentration;
/// use conntrack_analyze::hotspots::{HotspotConfig, Hotspots, KeyKind};
/// use conntrack_core::testkit::{flow, tcp};
/// let mut h = Hotspots::new(HotspotConfig::default());
/// for i in 0..4u16 {
///     h.add(&flow(tcp(&format!("10.0.0.{i}"), 40000, "192.0.2.1", 443)));
/// }
/// let s = h.summary();
/// let t = s.table(KeyKind::SrcIp).unwrap();
/// assert_eq!(concentration(t, |c| c, 3, "by", "sources"), "evenly by 4 sources (1 each)");
/// let t = s.table(KeyKind::Destination).unwrap();
/// assert_eq!(concentration(t, |c| c, 3, "to", "destinations"), "mostly to tcp 192.0.2.1:443 (4)");
///
/// // One source with 2 flows among 20 with 1: listed, but not "mostly".
/// let mut h = Hotspots::new(HotspotConfig::default());
/// for i in 0..21u16 {
///     h.add(&flow(tcp(&format!("10.0.1.{i}"), 40000, "192.0.2.1", 443)));
/// }
/// h.add(&flow(tcp("10.0.1.0", 40001, "192.0.2.1", 443)));
/// let s = h.summary();
/// let t = s.table(KeyKind::SrcIp).unwrap();
/// let c = concentration(t, |c| c, 1, "by", "sources");
/// assert!(c.starts_with("by many sources, the largest 10.0.1.0 (2)"), "{c}");
/// ```
pub fn concentration(
    t: &KeyTable,
    scale: impl Fn(u64) -> u64,
    n: usize,
    prep: &str,
    noun: &str,
) -> String {
    match spread(t, scale, n) {
        Spread::NoneAbove(c) => format!("{prep} many {noun}, none above {}", group(c as i64)),
        Spread::Flat { keys, each } => format!(
            "evenly {prep} {} {noun} ({} each)",
            group(keys as i64),
            group(each as i64)
        ),
        Spread::Rows(rows) => {
            let listed: u64 = t.top.iter().take(n).map(|k| k.count).sum();
            if listed.saturating_mul(2) > t.counted {
                format!("mostly {prep} {rows}")
            } else {
                format!("{prep} many {noun}, the largest {rows}")
            }
        }
    }
}

fn drivers(f: &Facts) -> Option<Answer> {
    let h = f.obs.hotspots.as_ref().filter(|h| h.flows > 0)?;
    let mix = f.mix.as_ref()?;
    let scale = |n: u64| mix.scaled(n);
    let mut text = String::new();
    if mix.scale > 1.0 {
        let _ = write!(
            text,
            "(The listing holds {} of the table's entries; counts are scaled by {:.1}.) ",
            group(h.flows as i64),
            mix.scale
        );
    }
    for (label, kind) in [
        ("Top sources", KeyKind::SrcIp),
        ("Top destinations", KeyKind::Destination),
        ("Top names", KeyKind::Name),
    ] {
        if let Some(t) = h
            .table(kind)
            .filter(|t| !t.top.is_empty() || !t.exact && t.counted > 0)
        {
            let _ = write!(text, "{label}: {}. ", top_rows(t, scale, 4));
        }
    }
    if let Some(a) = f.obs.owners.as_ref().filter(|a| a.with_owner > 0) {
        let procs: Vec<String> = a
            .by_process
            .iter()
            .take(4)
            .map(|p| format!("{} pid {} ({})", p.comm, p.pid, group(p.flows as i64)))
            .collect();
        let _ = write!(text, "Top local owners: {}. ", procs.join(", "));
    }
    if !h.closing_by_destination.top.is_empty() {
        // Every closing state, not TIME_WAIT alone (connections reset by
        // a peer sit in CLOSE: the incident lab's nat-race printed "0%"
        // next to 8,366 closing entries).
        let closing: f64 = [
            TcpState::FIN_WAIT,
            TcpState::CLOSE_WAIT,
            TcpState::LAST_ACK,
            TcpState::TIME_WAIT,
            TcpState::CLOSE,
        ]
        .into_iter()
        .filter_map(|st| h.state(L4Proto::TCP, FlowState::Tcp(st)))
        .map(|st| st.share)
        .sum();
        let _ = write!(
            text,
            "Short-lived connections (TCP in a closing state: {:.0}% of the table) go {}, \
             opened {}; these are what keepalive or pooling would remove.",
            closing * 100.0,
            concentration(&h.closing_by_destination, scale, 3, "to", "destinations"),
            concentration(&h.closing_by_source, scale, 3, "by", "sources")
        );
    }
    Some(Answer {
        question: Question::WhoDrivesTheTable,
        answer: text.trim_end().to_string(),
        evidence: vec![Evidence::new(EvidenceKey::FlowsExamined, h.flows as f64)],
    })
}
