//! Side-by-side comparison of two observations (two hosts, or one host
//! before and after a change): counts, utilisation, rates and top keys,
//! the way an operator compares two servers.
//!
//! ```
//! use conntrack_analyze::compare::{compare, Side};
//! use conntrack_core::HostSnapshot;
//! let a = HostSnapshot { count: Some(500), max: Some(1000), ..Default::default() };
//! let b = HostSnapshot { count: Some(900), max: Some(1000), ..Default::default() };
//! let c = compare(&Side::new("web-1").host(&a), &Side::new("web-2").host(&b));
//! let util = c.row("utilisation %").unwrap();
//! assert_eq!((util.a.num(), util.b.num()), (Some(50.0), Some(90.0)));
//! assert!(c.to_string().contains("web-2"));
//! ```

use crate::evidence::fmt_num;
use crate::hotspots::{HotspotSummary, KeyKind};
use crate::rates::Rates;
use conntrack_core::{Counter, HostSnapshot};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One side of a comparison: a label and whatever is known about it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Side<'a> {
    /// Label (host name, "before", "after").
    pub label: &'a str,
    /// Host facts.
    pub host: Option<&'a HostSnapshot>,
    /// Rates.
    pub rates: Option<&'a Rates>,
    /// Hotspots.
    pub hotspots: Option<&'a HotspotSummary>,
}

impl<'a> Side<'a> {
    /// A side with only a label.
    pub fn new(label: &'a str) -> Self {
        Side {
            label,
            ..Default::default()
        }
    }
    /// With host facts.
    pub fn host(mut self, h: &'a HostSnapshot) -> Self {
        self.host = Some(h);
        self
    }
    /// With rates.
    pub fn rates(mut self, r: &'a Rates) -> Self {
        self.rates = Some(r);
        self
    }
    /// With hotspots.
    pub fn hotspots(mut self, h: &'a HotspotSummary) -> Self {
        self.hotspots = Some(h);
        self
    }
}

/// A cell of the comparison table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
pub struct Row {
    /// Section ("table", "rates", "states", a key kind).
    pub section: String,
    /// What the row shows.
    pub name: String,
    /// Left side.
    pub a: Cell,
    /// Right side.
    pub b: Cell,
}

/// The comparison table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Left label.
    pub a_label: String,
    /// Right label.
    pub b_label: String,
    /// Rows, by section.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// The first row with this name.
    pub fn row(&self, name: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name == name)
    }
}

fn num(x: Option<f64>) -> Cell {
    match x {
        Some(v) if v.is_finite() => Cell::Num((v * 100.0).round() / 100.0),
        _ => Cell::Missing,
    }
}

/// Builds the side-by-side table.
pub fn compare(a: &Side, b: &Side) -> Comparison {
    let mut rows = Vec::new();
    let mut push = |section: &str, name: &str, f: &dyn Fn(&Side) -> Cell| {
        let (ca, cb) = (f(a), f(b));
        if ca != Cell::Missing || cb != Cell::Missing {
            rows.push(Row {
                section: section.into(),
                name: name.into(),
                a: ca,
                b: cb,
            });
        }
    };
    let count = |s: &Side| {
        s.host
            .and_then(|h| h.count.or(h.stats.as_ref().and_then(|x| x.entries)))
            .or_else(|| s.rates.and_then(|r| r.entries.as_ref().map(|e| e.last)))
            .map(f64::from)
    };
    let max = |s: &Side| s.host.and_then(|h| h.max).map(f64::from);
    let buckets = |s: &Side| s.host.and_then(|h| h.buckets).map(f64::from);
    push("table", "kernel", &|s| {
        s.host
            .and_then(|h| h.kernel_version)
            .map_or(Cell::Missing, |v| Cell::Text(v.to_string()))
    });
    push("table", "count", &|s| num(count(s)));
    push("table", "max", &|s| num(max(s)));
    push("table", "utilisation %", &|s| match (count(s), max(s)) {
        (Some(c), Some(m)) if m > 0.0 => num(Some(c / m * 100.0)),
        _ => Cell::Missing,
    });
    push("table", "buckets", &|s| num(buckets(s)));
    push("table", "2N/B", &|s| match (count(s), buckets(s)) {
        (Some(c), Some(b)) if b > 0.0 => num(Some(2.0 * c / b)),
        _ => Cell::Missing,
    });
    push("table", "count trend /s", &|s| {
        num(s
            .rates
            .and_then(|r| r.entries.as_ref().map(|e| e.slope_per_sec)))
    });
    for c in [
        Counter::Drop,
        Counter::EarlyDrop,
        Counter::InsertFailed,
        Counter::ClashResolve,
        Counter::ChainTooLong,
        Counter::Invalid,
        Counter::SearchRestart,
    ] {
        push("rates", &format!("{} /s", c.name()), &|s| {
            num(s.rates.and_then(|r| r.get(c)).map(|x| x.per_sec))
        });
    }
    push("flows", "flows", &|s| {
        num(s.hotspots.map(|h| h.flows as f64))
    });
    push("flows", "unreplied %", &|s| {
        num(s
            .hotspots
            .filter(|h| h.flows > 0)
            .map(|h| h.unreplied as f64 / h.flows as f64 * 100.0))
    });
    push("flows", "translated %", &|s| {
        num(s.hotspots.map(|h| h.nat_share() * 100.0))
    });
    // States: the union of each side's top 5.
    let mut states = Vec::new();
    for s in [a, b] {
        if let Some(h) = s.hotspots {
            for st in h.states.iter().take(5) {
                if !states.contains(&(st.proto, st.state)) {
                    states.push((st.proto, st.state));
                }
            }
        }
    }
    for (p, st) in states {
        push("states", &format!("{p} {st} %"), &|s| {
            num(s.hotspots.map(|h| {
                if h.flows == 0 {
                    0.0
                } else {
                    h.state_count(p, st) as f64 / h.flows as f64 * 100.0
                }
            }))
        });
    }
    for kind in [
        KeyKind::SrcIp,
        KeyKind::DstIp,
        KeyKind::DstPort,
        KeyKind::SrcNet,
        KeyKind::Pair,
        KeyKind::Name,
    ] {
        for i in 0..3 {
            push(kind.name(), &format!("{} #{}", kind.name(), i + 1), &|s| {
                s.hotspots
                    .and_then(|h| h.table(kind))
                    .and_then(|t| t.top.get(i))
                    .map_or(Cell::Missing, |k| {
                        Cell::Text(format!("{} ({:.1}%)", k.key, k.share * 100.0))
                    })
            });
        }
    }
    Comparison {
        a_label: a.label.to_owned(),
        b_label: b.label.to_owned(),
        rows,
    }
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hotspots::Hotspots;
    use crate::rates::Sample;
    use conntrack_core::{CpuStats, Flow, L4Proto, L4Tuple, Stats, Status, Tuple};
    use std::time::Duration;

    fn rates(drop_per_10s: u32) -> Rates {
        let mk = |t: u64, d: u32| {
            let mut c = CpuStats::for_cpu(0);
            c.set(Counter::Drop, d);
            Sample {
                at: Duration::from_secs(t),
                stats: Stats {
                    entries: Some(100),
                    max_entries: None,
                    cpus: vec![c],
                },
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
    fn side_by_side_rows() {
        let (ra, rb) = (rates(50), rates(0));
        let (ha, hb) = (flows("192.0.2.1", 4), flows("192.0.2.2", 2));
        let host = HostSnapshot {
            count: Some(100),
            max: Some(400),
            buckets: Some(100),
            ..Default::default()
        };
        let a = Side::new("before").host(&host).rates(&ra).hotspots(&ha);
        let b = Side::new("after").rates(&rb).hotspots(&hb);
        let c = compare(&a, &b);
        assert_eq!(c.row("drop /s").unwrap().a, Cell::Num(5.0));
        assert_eq!(c.row("drop /s").unwrap().b, Cell::Num(0.0));
        assert_eq!(c.row("utilisation %").unwrap().a, Cell::Num(25.0));
        assert_eq!(c.row("utilisation %").unwrap().b, Cell::Missing);
        assert_eq!(c.row("2N/B").unwrap().a, Cell::Num(2.0));
        // count falls back to the rates' entries on the side without a host.
        assert_eq!(c.row("count").unwrap().b, Cell::Num(100.0));
        assert_eq!(c.row("flows").unwrap().a, Cell::Num(4.0));
        assert_eq!(
            c.row("src_ip #1").unwrap().b,
            Cell::Text("192.0.2.2 (100.0%)".into())
        );
        // No protoinfo, no reply: grouped as UNREPLIED on both sides.
        assert_eq!(c.row("tcp UNREPLIED %").unwrap().a, Cell::Num(100.0));
        assert_eq!(c.row("unreplied %").unwrap().b, Cell::Num(100.0));
        assert!(
            c.rows
                .iter()
                .all(|r| r.a != Cell::Missing || r.b != Cell::Missing)
        );
        let text = c.to_string();
        assert!(text.contains("[rates]") && text.contains("before") && text.contains("after"));
        let j = serde_json::to_string(&c).unwrap();
        assert!(j.contains("\"a_label\":\"before\""));
    }
}
