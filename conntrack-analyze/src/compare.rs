//! Side-by-side comparison of two observations (two hosts, or one host
//! before and after a change), over the one model ([`Facts`]): the
//! configuration (kernel, sizing, timeouts, RPS, NAT rules) next to
//! counts, rates, states and top keys, and the differences that matter
//! said in words, the way an operator compares two servers.
//!
//! As JSON it is the document `conntrack-kit/compare` ([`COMPARE_SCHEMA`],
//! version [`COMPARE_SCHEMA_VERSION`]; its JSON Schema is
//! `schemas/compare.schema.json` in the repository): each row carries a
//! stable `key` (units in the name: `_secs`, `_pct`, `_per_sec`) next to
//! the `name` people read.
//!
//! ```
//! use conntrack_analyze::compare::compare;
//! use conntrack_analyze::{Facts, Observation};
//! use conntrack_core::HostSnapshot;
//! let a = Observation::new(HostSnapshot::default().with_count(500).with_max(1000));
//! let b = Observation::new(HostSnapshot::default().with_count(900).with_max(1000));
//! let c = compare(("web-1", &Facts::derive(&a)), ("web-2", &Facts::derive(&b)));
//! let util = c.row("utilisation %").unwrap();
//! assert_eq!((util.a.num(), util.b.num()), (Some(50.0), Some(90.0)));
//! assert_eq!(util.key, "utilisation_pct");
//! assert!(c.to_string().contains("web-2"));
//! ```

use crate::diagnose::round2;
use crate::evidence::fmt_num;
use crate::facts::{Facts, Rps};
use crate::hotspots::KeyKind;
use conntrack_core::{Counter, TimeoutKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The schema id of [`Comparison`]'s JSON.
pub const COMPARE_SCHEMA: &str = "conntrack-kit/compare";
/// The schema version: additive changes keep it, a field that goes away,
/// is renamed or changes meaning bumps it.
pub const COMPARE_SCHEMA_VERSION: u32 = 1;

/// A cell of the comparison table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", untagged)]
pub enum Cell {
    /// A number.
    Num(f64),
    /// Text (a key and its count).
    Text(String),
    /// Not known on this side.
    Missing,
}

impl Cell {
    /// The number, if this is one.
    pub fn num(&self) -> Option<f64> {
        match self {
            Cell::Num(x) => Some(*x),
            _ => None,
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Num(x) => f.write_str(&fmt_num(*x)),
            Cell::Text(t) => f.write_str(t),
            Cell::Missing => f.write_str("-"),
        }
    }
}

/// One row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Row {
    /// Section: `configuration`, `table`, `rates`, `flows`, or a key kind
    /// of the top-keys rows (`src_ip`, `destination`, `dst_port`, `name`).
    #[cfg_attr(feature = "schema", schemars(extend("enum" = SECTIONS)))]
    pub section: String,
    /// The stable id of the row, one of [`row_keys`]: snake_case, with the
    /// unit in the name (`tcp_timeout_established_secs`, `utilisation_pct`,
    /// `drop_per_sec`, `src_ip_1`).
    #[cfg_attr(feature = "schema", schemars(extend("enum" = row_keys())))]
    pub key: String,
    /// What the row shows, for people (`utilisation %`).
    pub name: String,
    /// Left side.
    pub a: Cell,
    /// Right side.
    pub b: Cell,
}

/// The comparison table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Comparison {
    /// [`COMPARE_SCHEMA`].
    #[cfg_attr(
        feature = "schema",
        schemars(
            extend("const" = COMPARE_SCHEMA),
            description = "The schema id, `conntrack-kit/compare`."
        )
    )]
    pub schema: String,
    /// [`COMPARE_SCHEMA_VERSION`].
    #[cfg_attr(
        feature = "schema",
        schemars(
            extend("const" = COMPARE_SCHEMA_VERSION),
            description = "The schema version: additive changes keep it, a field that goes \
                           away, is renamed or changes meaning bumps it."
        )
    )]
    pub version: u32,
    /// Left label.
    pub a_label: String,
    /// Right label.
    pub b_label: String,
    /// Rows, by section.
    pub rows: Vec<Row>,
    /// The differences that matter, in words.
    pub differences: Vec<String>,
}

impl Comparison {
    /// The first row with this name.
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

fn num(x: Option<f64>) -> Cell {
    match x {
        Some(v) if v.is_finite() => Cell::Num(round2(v)),
        _ => Cell::Missing,
    }
}

fn text(x: Option<String>) -> Cell {
    x.map_or(Cell::Missing, Cell::Text)
}

/// The sections rows are grouped in, in order.
#[cfg_attr(not(any(feature = "schema", test)), allow(dead_code))]
const SECTIONS: [&str; 8] = [
    "configuration",
    "table",
    "rates",
    "flows",
    KeyKind::SrcIp.name(),
    KeyKind::Destination.name(),
    KeyKind::DstPort.name(),
    KeyKind::Name.name(),
];

/// The key kinds whose top keys a comparison shows.
const KINDS: [KeyKind; 4] = [
    KeyKind::SrcIp,
    KeyKind::Destination,
    KeyKind::DstPort,
    KeyKind::Name,
];

/// The counters whose rates a comparison shows.
const COUNTERS: [Counter; 7] = [
    Counter::Drop,
    Counter::EarlyDrop,
    Counter::InsertFailed,
    Counter::ClashResolve,
    Counter::ChainTooLong,
    Counter::Invalid,
    Counter::SearchRestart,
];

/// Every key a [`Row`] can have, in the order rows appear.
///
/// ```
/// let keys = conntrack_analyze::compare::row_keys();
/// assert!(keys.iter().any(|k| k == "tcp_timeout_time_wait_secs"));
/// assert!(keys.iter().any(|k| k == "insert_failed_per_sec"));
/// ```
pub fn row_keys() -> Vec<String> {
    let mut v: Vec<String> = [
        "kernel",
        "cpus",
        "ram_gib",
        "max",
        "buckets",
        "max_over_buckets",
        "sizing",
    ]
    .map(String::from)
    .into();
    v.extend(TIMEOUTS.iter().map(|k| timeout_key(*k)));
    v.extend(
        [
            "rps",
            "snat_rules_without_fully_random",
            "count",
            "utilisation_pct",
            "mean_chain",
            "count_trend_per_sec",
        ]
        .map(String::from),
    );
    v.extend(COUNTERS.iter().map(|c| rate_key(*c)));
    v.extend(
        [
            "new_connections_per_sec",
            "flows_listed",
            "tcp_pct",
            "udp_pct",
            "translated_pct",
            "unreplied_pct",
            "time_wait_pct",
        ]
        .map(String::from),
    );
    for kind in KINDS {
        v.extend((1..=3).map(|i| top_key(kind, i)));
    }
    v
}

fn timeout_key(k: TimeoutKey) -> String {
    format!("{}_secs", k.name())
}

fn rate_key(c: Counter) -> String {
    format!("{}_per_sec", c.name())
}

fn top_key(kind: KeyKind, rank: usize) -> String {
    format!("{}_{rank}", kind.name())
}

/// The timeouts a comparison shows.
const TIMEOUTS: [TimeoutKey; 5] = [
    TimeoutKey::TcpEstablished,
    TimeoutKey::TcpTimeWait,
    TimeoutKey::TcpCloseWait,
    TimeoutKey::Udp,
    TimeoutKey::UdpStream,
];

/// Builds the side-by-side table of two labelled models.
pub fn compare(a: (&str, &Facts), b: (&str, &Facts)) -> Comparison {
    let (la, fa) = a;
    let (lb, fb) = b;
    let mut rows = Vec::new();
    let mut push = |section: &str, key: &str, name: &str, f: &dyn Fn(&Facts) -> Cell| {
        let (ca, cb) = (f(fa), f(fb));
        if ca != Cell::Missing || cb != Cell::Missing {
            rows.push(Row {
                section: section.into(),
                key: key.into(),
                name: name.into(),
                a: ca,
                b: cb,
            });
        }
    };
    let count = |f: &Facts| f.table.count.map(|v| v as f64);
    push("configuration", "kernel", "kernel", &|f| {
        text(f.kernel.map(|v| v.to_string()))
    });
    push("configuration", "cpus", "CPUs", &|f| {
        num((f.cpu.online > 0).then_some(f.cpu.online as f64))
    });
    push("configuration", "ram_gib", "RAM GiB", &|f| {
        num(f
            .obs
            .snapshot
            .mem_total_bytes
            .map(|m| m as f64 / f64::from(1u32 << 30)))
    });
    push("configuration", "max", "max", &|f| {
        num(f.table.max.map(|v| v as f64))
    });
    push("configuration", "buckets", "buckets", &|f| {
        num(f.table.buckets.map(|v| v as f64))
    });
    push(
        "configuration",
        "max_over_buckets",
        "max / buckets",
        &|f| match (f.table.max, f.table.buckets) {
            (Some(m), Some(b)) if b > 0 => num(Some(m as f64 / b as f64)),
            _ => Cell::Missing,
        },
    );
    push("configuration", "sizing", "sizing", &|f| {
        Cell::Text(f.table.origin.short().to_string())
    });
    for k in TIMEOUTS {
        push("configuration", &timeout_key(k), k.name(), &|f| {
            let t = f.timeout(k);
            if t.configured {
                Cell::Num(f64::from(t.secs))
            } else {
                Cell::Missing
            }
        });
    }
    push("configuration", "rps", "RPS", &|f| {
        Cell::Text(
            match f.cpu.rps {
                Rps::On => "on",
                Rps::Off => "off",
                Rps::Unknown => "unknown",
            }
            .into(),
        )
    });
    push(
        "configuration",
        "snat_rules_without_fully_random",
        "SNAT rules without fully-random",
        &|f| {
            num(f
                .obs
                .config
                .nat_rules
                .as_ref()
                .map(|r| r.without_fully_random().count() as f64))
        },
    );
    push("table", "count", "count", &|f| num(count(f)));
    push("table", "utilisation_pct", "utilisation %", &|f| {
        num(f.table.utilisation.map(|u| u * 100.0))
    });
    push("table", "mean_chain", "2N/B", &|f| num(f.table.mean_chain));
    push("table", "count_trend_per_sec", "count trend /s", &|f| {
        num(f
            .obs
            .rates
            .as_ref()
            .and_then(|r| r.entries.as_ref().map(|e| e.slope_per_sec)))
    });
    for c in COUNTERS {
        push("rates", &rate_key(c), &format!("{} /s", c.name()), &|f| {
            num(f.counters.get(c).per_sec)
        });
    }
    push(
        "rates",
        "new_connections_per_sec",
        "new connections /s",
        &|f| num(f.churn.new_per_sec.map(|r| r.per_sec)),
    );
    push("flows", "flows_listed", "flows listed", &|f| {
        num(f.mix.as_ref().map(|m| m.flows as f64))
    });
    push("flows", "tcp_pct", "TCP %", &|f| {
        num(f.mix.as_ref().map(|m| m.tcp_share * 100.0))
    });
    push("flows", "udp_pct", "UDP %", &|f| {
        num(f.mix.as_ref().map(|m| m.udp_share * 100.0))
    });
    push("flows", "translated_pct", "translated %", &|f| {
        num(f.mix.as_ref().map(|m| m.nat_share * 100.0))
    });
    push("flows", "unreplied_pct", "unreplied %", &|f| {
        num(f.mix.as_ref().map(|m| m.unreplied_share * 100.0))
    });
    push("flows", "time_wait_pct", "TIME_WAIT %", &|f| {
        num(f.mix.as_ref().map(|m| m.time_wait_share * 100.0))
    });
    for kind in KINDS {
        for i in 0..3 {
            let name = format!("{} #{}", kind.name(), i + 1);
            push(kind.name(), &top_key(kind, i + 1), &name, &|f| {
                f.obs
                    .hotspots
                    .as_ref()
                    .and_then(|h| h.table(kind))
                    .and_then(|t| t.top.get(i))
                    .map_or(Cell::Missing, |k| {
                        Cell::Text(format!("{} ({:.1}%)", k.key, k.share * 100.0))
                    })
            });
        }
    }
    Comparison {
        schema: COMPARE_SCHEMA.to_owned(),
        version: COMPARE_SCHEMA_VERSION,
        a_label: la.to_owned(),
        b_label: lb.to_owned(),
        rows,
        differences: differences((la, fa), (lb, fb)),
    }
}

/// The ratio `b / a`, when both are positive.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) if x > 0.0 && y > 0.0 => Some(y / x),
        _ => None,
    }
}

/// What differs between two hosts, and whether it explains a difference
/// in drops.
fn differences(a: (&str, &Facts), b: (&str, &Facts)) -> Vec<String> {
    let (la, fa) = a;
    let (lb, fb) = b;
    let mut out = Vec::new();
    if fa.kernel != fb.kernel {
        out.push(format!(
            "kernels differ ({} {}, {} {}): counter meanings and defaults follow each kernel",
            la,
            fa.kernel.map_or("unknown".into(), |v| v.to_string()),
            lb,
            fb.kernel.map_or("unknown".into(), |v| v.to_string())
        ));
    }
    for k in TIMEOUTS {
        let (ta, tb) = (fa.timeout(k), fb.timeout(k));
        if ta.secs != tb.secs && (ta.configured || tb.configured) {
            out.push(format!(
                "{k}: {la} {} s, {lb} {} s{}",
                ta.secs,
                tb.secs,
                match k {
                    TimeoutKey::TcpEstablished => {
                        " (changes how long idle connections keep their entry, not how often new \
                         connections clash)"
                    }
                    _ => "",
                }
            ));
        }
    }
    let drops = ratio(
        fa.counters.get(Counter::Drop).per_sec,
        fb.counters.get(Counter::Drop).per_sec,
    );
    let news = ratio(
        fa.churn.new_per_sec.map(|r| r.per_sec),
        fb.churn.new_per_sec.map(|r| r.per_sec),
    );
    if let Some(d) = drops {
        let mut s = format!("{lb} drops {d:.1}x the rate of {la}");
        match news {
            // Pairs of concurrent new connections race: collisions grow
            // with the square of the connection rate.
            Some(n) if (d / (n * n) - 1.0).abs() < 0.5 => s.push_str(&format!(
                "; it opens {n:.1}x as many new connections per second, and {n:.1}^2 = {:.1}: \
                 the drops grow with the square of the connection rate, as pairwise \
                 confirm-time races do",
                n * n
            )),
            Some(n) if (d / n - 1.0).abs() < 0.5 => s.push_str(&format!(
                "; it opens {n:.1}x as many new connections per second: the drops follow the \
                 connection rate"
            )),
            Some(n) => s.push_str(&format!(
                "; it opens {n:.1}x as many new connections per second, which does not explain \
                 the difference alone"
            )),
            None => s.push_str(
                "; the new-connection rates are unknown (no listing or no TIME_WAIT), which \
                 confirm-time races scale with",
            ),
        }
        out.push(s);
    }
    let (ma, mb) = (fa.table.utilisation, fb.table.utilisation);
    if let (Some(x), Some(y)) = (ma, mb)
        && x < 0.5
        && y < 0.5
    {
        out.push(format!(
            "both tables are far from full ({:.1}% and {:.1}% of max): max and buckets are not what differs in the drops",
            x * 100.0,
            y * 100.0
        ));
    }
    out
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = |c: &Cell| c.to_string().chars().count();
        let wa = self
            .rows
            .iter()
            .map(|r| w(&r.a))
            .chain([self.a_label.len()])
            .max()
            .unwrap_or(1);
        let wb = self
            .rows
            .iter()
            .map(|r| w(&r.b))
            .chain([self.b_label.len()])
            .max()
            .unwrap_or(1);
        let wn = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "{:<wn$}  {:>wa$}  {:>wb$}",
            "", self.a_label, self.b_label
        )?;
        let mut section = "";
        for r in &self.rows {
            if r.section != section {
                section = &r.section;
                writeln!(f, "[{section}]")?;
            }
            writeln!(
                f,
                "{:<wn$}  {:>wa$}  {:>wb$}",
                r.name,
                r.a.to_string(),
                r.b.to_string()
            )?;
        }
        if !self.differences.is_empty() {
            writeln!(f, "[what differs]")?;
            for d in &self.differences {
                writeln!(f, "- {d}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hotspots::{HotspotSummary, Hotspots};
    use crate::observation::Observation;
    use crate::rates::{Rates, Sample};
    use conntrack_core::{CpuStats, Flow, HostSnapshot, L4Proto, L4Tuple, Stats, Status, Tuple};
    use std::time::Duration;

    fn rates(drop_per_10s: u32) -> Rates {
        let mk = |t: u64, d: u32| {
            let mut c = CpuStats::for_cpu(0);
            c.set(Counter::Drop, d);
            Sample {
                at: Duration::from_secs(t),
                stats: Stats::new(vec![c]).with_entries(100),
            }
        };
        Rates::from_samples(&[mk(0, 0), mk(10, drop_per_10s)])
    }

    fn flows(src: &str, n: u16) -> HotspotSummary {
        let ip = |s: &str| s.parse().unwrap();
        let mut h = Hotspots::exact();
        for p in 0..n {
            h.add(&Flow::new(
                Tuple::new(
                    ip(src),
                    ip("10.0.0.1"),
                    L4Proto::TCP,
                    L4Tuple::Ports { src: p, dst: 80 },
                ),
                Tuple::new(
                    ip("10.0.0.1"),
                    ip(src),
                    L4Proto::TCP,
                    L4Tuple::Ports { src: 80, dst: p },
                ),
                Status::CONFIRMED,
            ));
        }
        h.summary()
    }

    #[test]
    fn side_by_side_rows_and_differences() {
        let mut host = HostSnapshot::default()
            .with_count(100)
            .with_max(400)
            .with_buckets(100);
        host.timeouts
            .entry("tcp".into())
            .or_default()
            .insert("established".into(), 3600);
        let a = Observation::new(host)
            .with_rates(rates(50))
            .with_hotspots(flows("192.0.2.1", 4));
        let mut host_b = HostSnapshot::default();
        host_b
            .timeouts
            .entry("tcp".into())
            .or_default()
            .insert("established".into(), 86_400);
        let b = Observation::new(host_b)
            .with_rates(rates(150))
            .with_hotspots(flows("192.0.2.2", 2));
        let (fa, fb) = (Facts::derive(&a), Facts::derive(&b));
        let c = compare(("before", &fa), ("after", &fb));
        assert_eq!(c.row("drop /s").unwrap().a, Cell::Num(5.0));
        assert_eq!(c.row("drop /s").unwrap().b, Cell::Num(15.0));
        assert_eq!(c.row("utilisation %").unwrap().a, Cell::Num(25.0));
        assert_eq!(c.row("utilisation %").unwrap().b, Cell::Missing);
        assert_eq!(c.row("2N/B").unwrap().a, Cell::Num(2.0));
        // count falls back to the rates' entries on the side without one.
        assert_eq!(c.row("count").unwrap().b, Cell::Num(100.0));
        assert_eq!(
            c.row("tcp_timeout_established").unwrap().a,
            Cell::Num(3600.0)
        );
        assert_eq!(
            c.row("src_ip #1").unwrap().b,
            Cell::Text("192.0.2.2 (100.0%)".into())
        );
        assert!(
            c.differences
                .iter()
                .any(|d| d.starts_with("tcp_timeout_established"))
        );
        assert!(c.differences.iter().any(|d| d.contains("drops 3.0x")));
        assert!(
            c.rows
                .iter()
                .all(|r| r.a != Cell::Missing || r.b != Cell::Missing)
        );
        let text = c.to_string();
        assert!(text.contains("[rates]") && text.contains("[what differs]"));
        let j = serde_json::to_string(&c).unwrap();
        assert!(j.starts_with("{\"schema\":\"conntrack-kit/compare\",\"version\":1,"));
        assert!(j.contains("\"a_label\":\"before\""));
        // Every row has a key of the documented set, each key once.
        let keys = row_keys();
        for r in &c.rows {
            assert!(keys.contains(&r.key), "{}", r.key);
            assert!(SECTIONS.contains(&r.section.as_str()), "{}", r.section);
        }
        let mut seen: Vec<&str> = c.rows.iter().map(|r| r.key.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), c.rows.len());
        assert_eq!(c.row("drop /s").unwrap().key, "drop_per_sec");
        assert_eq!(
            c.row("tcp_timeout_established").unwrap().key,
            "tcp_timeout_established_secs"
        );
        assert_eq!(c.row("src_ip #1").unwrap().key, "src_ip_1");
    }
}
