//! The whole report as text for a terminal or a ticket: table, counters,
//! what the table holds, findings with their ranked causes, answers,
//! the plan, the folk recipes and the notes. Lines are wrapped at 100
//! columns; every control character that reached the report from outside
//! (a capture's hostname, a file name) is escaped, so a report can never
//! drive the terminal it is printed on.

use super::text::text as plan_text;
use crate::report::{OriginKind, Report, Status};
use conntrack_analyze::capacity::SizingOrigin;
use conntrack_analyze::capture::escape_controls_keep_lines;
use conntrack_analyze::evidence::{fmt_num, group};
use conntrack_analyze::facts::{ClashAccounting, CounterStatus, RateMethod};
use conntrack_analyze::hotspots::{KeyKind, Ranking};
use conntrack_core::{Counter, Support};
use std::fmt::Write;

use super::{WIDTH, wrap as wrap_hanging};

/// Wraps `text` with the same indent on every line.
fn wrap(out: &mut String, indent: &str, text: &str) {
    wrap_hanging(out, indent, indent, text);
}

fn heading(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        "\n== {title} {}",
        "=".repeat(WIDTH.saturating_sub(title.len() + 4))
    );
}

/// Aligned columns: numbers (and `-`, `?`) right-aligned, text left-aligned.
fn table(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    // A column is numeric when every cell after the header row looks
    // like a number.
    let is_num = |c: &str| {
        let c = c.trim_end_matches(" MiB").trim_end_matches('%');
        c == "-"
            || c == "?"
            || c.split(" / ")
                .all(|p| p.parse::<f64>().is_ok() || p.replace(',', "").parse::<f64>().is_ok())
    };
    let numeric: Vec<bool> = (0..cols)
        .map(|i| {
            rows.iter()
                .skip(1)
                .filter_map(|r| r.get(i))
                .all(|c| c.is_empty() || is_num(c))
        })
        .collect();
    for r in rows {
        let mut line = String::from(indent);
        for (i, c) in r.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i > 0 {
                line.push_str("  ");
            }
            if i > 0 && numeric[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn n(v: u64) -> String {
    group(v.min(i64::MAX as u64) as i64)
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Healthy => "HEALTHY",
        Status::Warning => "WARNING",
        Status::Critical => "CRITICAL",
        Status::NotJudged => "NOTHING COULD BE JUDGED",
    }
}

/// The report as text.
///
/// ```
/// use conntrack_analyze::Observation;
/// use conntrack_core::HostSnapshot;
/// use conntrack_tune::report::{Origin, Report};
/// let obs = Observation::new(HostSnapshot::default().with_count(10).with_max(100));
/// let r = Report::build(&obs, Origin::capture("demo"), &Default::default()).unwrap();
/// let t = conntrack_tune::render::report_text(&r);
/// assert!(t.contains("== Table"));
/// // Healthy, naming what the observation did not allow judging.
/// let verdict = t.lines().last().unwrap();
/// assert!(verdict.starts_with("verdict: HEALTHY as far as judged (not judged: "), "{verdict}");
/// ```
pub fn report_text(r: &Report) -> String {
    let mut o = String::new();
    let origin = &r.origin;
    let _ = writeln!(
        o,
        "conntrack doctor: {}{}",
        origin.label,
        origin
            .hostname
            .as_ref()
            .map(|h| format!(" (host {h})"))
            .unwrap_or_default()
    );
    if origin.kind == OriginKind::Sample {
        o.push_str("SAMPLE INCIDENT — not this host: a bundled, synthetic capture\n");
    }
    if let Some(d) = &origin.description {
        wrap(&mut o, "", d);
    }
    for u in &r.unread {
        wrap_hanging(
            &mut o,
            "NOT ANALYSED: ",
            "  ",
            &format!(
                "{}: needs {}. Missing: {}.",
                u.what,
                u.needs,
                u.missing.join("; ")
            ),
        );
    }
    table_section(&mut o, r);
    counters_section(&mut o, r);
    mix_section(&mut o, r);
    owners_section(&mut o, r);
    findings_section(&mut o, r);
    if !r.answers.is_empty() {
        heading(&mut o, "Questions the data answers");
        for a in &r.answers {
            let _ = writeln!(o, "  Q: {}", a.question.text());
            wrap_hanging(&mut o, "  A: ", "     ", &a.answer);
        }
    }
    heading(&mut o, "Tuning plan");
    // The plan's own text, without its title line.
    let plan = plan_text(&r.plan);
    for l in plan.lines().skip(1) {
        o.push_str(l);
        o.push('\n');
    }
    if !r.notes.is_empty() {
        heading(&mut o, "Notes");
        for note in &r.notes {
            wrap_hanging(&mut o, "  - ", "    ", note);
        }
    }
    let _ = write!(o, "\nverdict: {}", status_word(r.status));
    // Healthy says what was judged: a part the observation did not allow
    // (NAT's own drops without a trace, which no counter shows) is named.
    if r.status == Status::Healthy && !r.plan.unjudged.is_empty() {
        let topics: Vec<&str> = r.plan.unjudged.iter().map(|u| u.topic.as_str()).collect();
        let _ = write!(
            o,
            " as far as judged (not judged: {}; see Could not judge)",
            topics.join(", ")
        );
    }
    o.push('\n');
    escape_controls_keep_lines(&o)
}

fn table_section(o: &mut String, r: &Report) {
    heading(o, "Table");
    let t = &r.facts.table;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let kernel = match (&r.kernel_release, r.facts.kernel) {
        (Some(rel), _) => rel.clone(),
        (None, Some(v)) => v.to_string(),
        _ => "unknown".into(),
    };
    rows.push(vec![
        "kernel".into(),
        kernel,
        if r.facts.counters.backported {
            "counters behave like 4.19+ (backported)".into()
        } else {
            String::new()
        },
    ]);
    let ns = match t.init_netns {
        Some(true) => "initial namespace",
        Some(false) => "another namespace",
        None => "",
    };
    rows.push(vec![
        "entries".into(),
        t.count.map_or("?".into(), n),
        ns.into(),
    ]);
    rows.push(vec![
        "nf_conntrack_max".into(),
        match t.max {
            Some(0) => "0 (unlimited)".into(),
            Some(m) => n(m),
            None => "?".into(),
        },
        String::new(),
    ]);
    if let Some(u) = t.utilisation {
        rows.push(vec![
            "utilisation".into(),
            format!("{:.1}%", u * 100.0),
            t.peak
                .filter(|&p| Some(p) != t.count)
                .map(|p| format!("peak {} in the window", n(p)))
                .unwrap_or_default(),
        ]);
    }
    rows.push(vec![
        "buckets".into(),
        t.buckets.map_or("?".into(), n),
        match t.origin {
            SizingOrigin::Unknown => String::new(),
            o => o.describe().to_string(),
        },
    ]);
    if let Some(c) = t.mean_chain {
        rows.push(vec![
            "mean chain 2N/B".into(),
            format!("{c:.2}"),
            t.mean_chain_at_max
                .map(|m| format!("{m:.2} at a full table"))
                .unwrap_or_default(),
        ]);
    }
    if let Some(d) = t.kernel_default {
        rows.push(vec![
            "kernel default".into(),
            format!("{} / {}", n(u64::from(d.buckets)), n(u64::from(d.max))),
            "buckets / max the kernel picks for this RAM".into(),
        ]);
    }
    if let Some(m) = t.memory_now {
        rows.push(vec![
            "memory now".into(),
            format!("{:.1} MiB", m.total_bytes as f64 / 1048576.0),
            format!(
                "{} B per entry{}, {} B per bucket",
                m.entry_object_bytes + m.extension_bytes,
                if m.object_size_assumed {
                    " (assumed)"
                } else {
                    ""
                },
                m.bucket_bytes
            ),
        ]);
    }
    if let Some(m) = t.memory_at_max {
        rows.push(vec![
            "memory at max".into(),
            format!("{:.1} MiB", m.total_bytes as f64 / 1048576.0),
            String::new(),
        ]);
    }
    let changed: Vec<String> = r
        .facts
        .timeouts
        .iter()
        .filter(|t| t.is_changed())
        .map(|t| format!("{} {} s (default {})", t.key, t.secs, t.default_secs))
        .collect();
    if !changed.is_empty() {
        rows.push(vec![
            "timeouts changed".into(),
            changed.join("; "),
            String::new(),
        ]);
    }
    table(o, "  ", &rows);
}

fn status_text(s: CounterStatus) -> String {
    match s {
        CounterStatus::Live => "rising now".into(),
        CounterStatus::History => "history (flat in the window)".into(),
        CounterStatus::Quiet => "quiet".into(),
        CounterStatus::NoWindow => "total only (no window)".into(),
        CounterStatus::NotCountedByKernel {
            support: Support::NotYet { since },
        } => format!(
            "not reported by this kernel (appeared in {}.{})",
            since.major, since.minor
        ),
        CounterStatus::NotCountedByKernel {
            support: Support::Retired { since },
        } => format!(
            "not counted by this kernel (since {}.{})",
            since.major, since.minor
        ),
        CounterStatus::NotCountedByKernel { .. } => "not counted by this kernel".into(),
        CounterStatus::NotReported => "not reported by the source".into(),
        // A status a later analyze release adds.
        _ => "not judged by this renderer".into(),
    }
}

fn counters_section(o: &mut String, r: &Report) {
    let c = &r.facts.counters;
    let title = match c.window_secs {
        Some(w) => format!(
            "Counters over {} s ({})",
            fmt_num((w * 10.0).round() / 10.0),
            c.epoch.describe()
        ),
        None => format!("Counters: one sample, totals {}", c.epoch.describe()),
    };
    heading(o, &title);
    let always = [Counter::ClashResolve, Counter::ChainTooLong];
    let mut rows = vec![vec![
        "counter".to_string(),
        "per s".into(),
        "in window".into(),
        "total".into(),
        "status".into(),
    ]];
    for rd in &c.readings {
        let shown = rd.status == CounterStatus::Live
            || rd.total.is_some_and(|t| t > 0) && rd.counter != Counter::Found
            || (always.contains(&rd.counter) && rd.status != CounterStatus::NotReported);
        if !shown {
            continue;
        }
        rows.push(vec![
            rd.counter.name().into(),
            rd.per_sec.map_or("-".into(), fmt_num),
            rd.delta.map_or("-".into(), n),
            rd.total.map_or("-".into(), |t| n(u64::from(t))),
            status_text(rd.status),
        ]);
    }
    if rows.len() == 1 {
        o.push_str("  no counter moved or was reported\n");
    } else {
        table(o, "  ", &rows);
    }
    let acct = match c.clash_accounting {
        ClashAccounting::InsertFailedOnly => {
            "counter meanings (before 4.6): a clash counts in insert_failed only"
        }
        ClashAccounting::ResolvedInInsertFailed => {
            "counter meanings (4.6 to 5.9): every clash counts in insert_failed, an unresolved \
             one also in drop"
        }
        ClashAccounting::ResolvedInClashResolve => {
            "counter meanings (5.10+): resolved clashes count in clash_resolve, unresolved ones \
             in insert_failed and drop, chain-cap refusals in chaintoolong and insert_failed"
        }
        // Unknown, or an era a later analyze release adds: no line.
        _ => "",
    };
    if !acct.is_empty() {
        wrap(o, "  ", acct);
    }
}

fn mix_section(o: &mut String, r: &Report) {
    let (Some(m), Some(h)) = (&r.facts.mix, &r.hotspots) else {
        return;
    };
    heading(o, "What the table holds");
    let mut head = format!("{} flows listed", n(m.flows));
    if m.scale > 1.0 {
        let _ = write!(
            head,
            " (a sample: counts below are scaled x{:.1} to the table)",
            m.scale
        );
    }
    let _ = write!(
        head,
        "; TCP {:.0}%, UDP {:.0}%, translated {:.0}% (TCP {:.0}%), DNS {:.1}%, unreplied {:.0}%",
        m.tcp_share * 100.0,
        m.udp_share * 100.0,
        m.nat_share * 100.0,
        m.tcp_nat_share * 100.0,
        m.dns_share * 100.0,
        m.unreplied_share * 100.0
    );
    wrap(o, "  ", &head);
    if let Some(c) = r.facts.churn.new_per_sec {
        wrap(
            o,
            "  ",
            &format!(
                "new connections: about {:.1}/s ({})",
                c.per_sec,
                match c.method {
                    RateMethod::Events => "NEW events",
                    RateMethod::TimeWaitInflow =>
                        "inferred from the entries entering TIME_WAIT, Little's law",
                    _ => "estimated",
                }
            ),
        );
    }
    let mut rows = vec![vec!["state".to_string(), "entries".into(), "share".into()]];
    for s in h.states.iter().take(6) {
        rows.push(vec![
            format!("{} {}", s.proto, s.state),
            n(m.scaled(s.count)),
            format!("{:.1}%", s.share * 100.0),
        ]);
    }
    table(o, "  ", &rows);
    for (title, kind) in [
        ("sources", KeyKind::SrcIp),
        ("destinations", KeyKind::Destination),
        ("names", KeyKind::Name),
    ] {
        let Some(t) = h.table(kind) else {
            continue;
        };
        if t.top.is_empty() {
            // A bounded count that proved no key heavier than the rest.
            if !t.exact && t.counted > 0 {
                wrap(
                    o,
                    "  ",
                    &format!(
                        "top {title}: none stands out: no key has more than {} entries (a \
                         bounded count over {} entries)",
                        n(m.scaled(t.others_at_most)),
                        n(m.scaled(t.counted))
                    ),
                );
            }
            continue;
        }
        if t.is_flat() {
            // Every key has the same exact count: any list would be an
            // arbitrary few of them.
            wrap(
                o,
                "  ",
                &format!(
                    "top {title}: none stands out: all {} have {} entries each",
                    n(t.distinct.unwrap_or(0)),
                    n(m.scaled(t.top[0].count))
                ),
            );
            continue;
        }
        let shown = t.top.len().min(5);
        let mut rows = vec![vec![
            format!("top {title}"),
            "entries".into(),
            "share".into(),
        ]];
        for k in t.top.iter().take(shown) {
            rows.push(vec![
                k.key.to_string(),
                if k.error == 0 {
                    n(m.scaled(k.count))
                } else {
                    format!("{}..{}", n(m.scaled(k.lower())), n(m.scaled(k.count)))
                },
                format!("{:.1}%", k.share * 100.0),
            ]);
        }
        table(o, "  ", &rows);
        let tied = t.tied_after(shown);
        if tied > 0 {
            wrap(
                o,
                "    ",
                &format!("(and {} more with the same count, not listed)", n(tied)),
            );
        }
        if !t.exact {
            wrap(
                o,
                "    ",
                &format!(
                    "(a bounded count: each range holds the true count; {}; every other key \
                     has at most {} entries)",
                    match t.ranking {
                        Ranking::CertifiedSet =>
                            "these are the heaviest keys, their order \
                                                  within overlapping ranges unknown",
                        _ => "these are the heaviest keys, in this order",
                    },
                    n(m.scaled(t.others_at_most))
                ),
            );
        }
    }
}

/// Who owns the flows: processes and containers, and the rest by reason.
fn owners_section(o: &mut String, r: &Report) {
    let Some(a) = &r.owners else {
        return;
    };
    heading(o, "Who owns the flows");
    let pct = |x: u64| {
        if a.flows == 0 {
            "0%".to_string()
        } else {
            format!("{:.1}%", x as f64 * 100.0 / a.flows as f64)
        }
    };
    wrap(
        o,
        "  ",
        &format!(
            "{} entries: {} ({}) belong to a socket whose process is known: {} {}, {} of them \
             in {} {}.",
            n(a.flows),
            n(a.with_owner),
            pct(a.with_owner),
            n(a.processes),
            if a.processes == 1 {
                "process"
            } else {
                "processes"
            },
            n(a.in_containers),
            n(a.containers),
            if a.containers == 1 {
                "container"
            } else {
                "containers"
            },
        ),
    );
    if a.in_other_namespaces > 0 {
        wrap(
            o,
            "  ",
            &format!(
                "{} of them ({}) are routed here for another network namespace of this host (a \
                 container or pod whose own socket is the entry's original source, before source \
                 NAT).",
                n(a.in_other_namespaces),
                pct(a.in_other_namespaces)
            ),
        );
    }
    let u = &a.unattributed;
    let mut rest = Vec::new();
    if let Some(f) = u.forwarded
        && f > 0
    {
        rest.push(format!(
            "{} ({}) forwarded: neither end is an address of this namespace, and no socket \
             of this host's processes is an end of them",
            n(f),
            pct(f)
        ));
    }
    if u.no_socket > 0 {
        rest.push(format!(
            "{} ({}) without a socket{}: closed connections whose entries outlive the socket \
             (TIME_WAIT, UDP timeouts){}",
            n(u.no_socket),
            pct(u.no_socket),
            if u.forwarded.is_some() {
                " at a local address"
            } else {
                ""
            },
            if u.forwarded.is_none() {
                ", or forwarded through this host (its addresses were not read)"
            } else {
                ""
            }
        ));
    }
    if u.without_ports > 0 {
        rest.push(format!(
            "{} ({}) of protocols without ports (ICMP and others), which no socket matches",
            n(u.without_ports),
            pct(u.without_ports)
        ));
    }
    if u.owner_unknown > 0 {
        rest.push(format!(
            "{} ({}) with a socket whose process was not found (ended, or its /proc/PID/fd not \
             readable)",
            n(u.owner_unknown),
            pct(u.owner_unknown)
        ));
    }
    if !rest.is_empty() {
        o.push_str("  not attributed:\n");
        for line in &rest {
            wrap_hanging(o, "    - ", "      ", line);
        }
    }
    if !a.by_process.is_empty() {
        let mut rows = vec![vec![
            "top processes".to_string(),
            "entries".into(),
            "share".into(),
            "container".into(),
        ]];
        for p in a.by_process.iter().take(5) {
            rows.push(vec![
                format!("{} (pid {})", p.comm, p.pid),
                n(p.flows),
                pct(p.flows),
                p.container
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            ]);
        }
        table(o, "  ", &rows);
    }
    if !a.by_container.is_empty() {
        let mut rows = vec![vec![
            "top containers".to_string(),
            "entries".into(),
            "share".into(),
        ]];
        for c in a.by_container.iter().take(5) {
            rows.push(vec![
                match &c.container.pod_uid {
                    Some(pod) => format!("{} (pod {pod})", c.container),
                    None => c.container.to_string(),
                },
                n(c.flows),
                pct(c.flows),
            ]);
        }
        table(o, "  ", &rows);
    }
}

fn findings_section(o: &mut String, r: &Report) {
    heading(o, &format!("Findings ({})", r.findings.len()));
    if r.findings.is_empty() {
        o.push_str("  none\n");
        return;
    }
    for f in &r.findings {
        let _ = writeln!(o, "\n  [{}] {}", f.severity.name().to_uppercase(), f.id);
        wrap(o, "    ", &f.title);
        let rows: Vec<Vec<String>> = f
            .evidence
            .iter()
            .map(|e| {
                vec![
                    e.label(),
                    fmt_num(e.value),
                    e.unit().unwrap_or("").to_string(),
                ]
            })
            .collect();
        table(o, "      ", &rows);
        if !f.causes.is_empty() {
            o.push_str("    causes, most likely first:\n");
            for (i, c) in f.causes.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "      {}. {} ({}): {}",
                    i + 1,
                    c.cause,
                    c.likelihood,
                    c.cause.describe()
                );
                for s in &c.supports {
                    wrap_hanging(o, "         + ", "           ", s);
                }
                for s in &c.contradicts {
                    wrap_hanging(o, "         - ", "           ", s);
                }
                if c.likelihood.is_actionable() || i == 0 {
                    wrap_hanging(
                        o,
                        "         to tell apart: ",
                        "           ",
                        &c.to_tell_apart,
                    );
                }
            }
        }
        wrap(o, "    ", &f.explanation);
        if !f.remedies.is_empty() {
            let names: Vec<String> = f.remedies.iter().map(|r| r.name()).collect();
            wrap(o, "    ", &format!("recommends: {}", names.join(", ")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conntrack_analyze::Observation;
    use conntrack_analyze::hotspots::Hotspots;
    use conntrack_core::HostSnapshot;
    use conntrack_core::testkit::{flow, tcp};

    /// The report text of a table of these (source, flows) pairs, every
    /// flow to one service.
    fn text_of(sources: &[(&str, u16)]) -> String {
        let mut h = Hotspots::exact();
        for &(src, flows) in sources {
            for port in 0..flows {
                h.add(&flow(tcp(src, 1000 + port, "192.0.2.1", 443)));
            }
        }
        let total: u16 = sources.iter().map(|s| s.1).sum();
        let obs = Observation::new(
            HostSnapshot::default()
                .with_count(u32::from(total))
                .with_max(262_144),
        )
        .with_hotspots(h.summary());
        let r = Report::build(
            &obs,
            crate::report::Origin::capture("ties"),
            &Default::default(),
        )
        .unwrap();
        report_text(&r)
    }

    fn source_lines(text: &str) -> Vec<&str> {
        text.lines()
            .skip_while(|l| !l.contains("top sources"))
            .take_while(|l| !l.contains("top destinations"))
            .collect()
    }

    #[test]
    fn ties_at_the_cut_are_said() {
        // Two heavy sources, then twelve with three flows each: the list
        // stops at five rows among equal counts.
        let mut sources = vec![("10.0.0.1", 9), ("10.0.0.2", 7)];
        let names: Vec<String> = (10..22).map(|i| format!("10.0.1.{i}")).collect();
        sources.extend(names.iter().map(|s| (s.as_str(), 3)));
        let t = text_of(&sources);
        let lines = source_lines(&t);
        assert!(lines.iter().any(|l| l.contains("10.0.0.1")), "{t}");
        // 10.0.1.10 to .12 are shown (ties ordered by key), nine more are
        // not: five in the summary's ten rows, four beyond.
        assert!(lines.iter().any(|l| l.contains("10.0.1.12")), "{t}");
        assert!(!lines.iter().any(|l| l.contains("10.0.1.13")), "{t}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("(and 9 more with the same count, not listed)")),
            "{t}"
        );
    }

    #[test]
    fn no_note_when_the_cut_is_between_counts() {
        let t = text_of(&[
            ("10.0.0.1", 6),
            ("10.0.0.2", 5),
            ("10.0.0.3", 4),
            ("10.0.0.4", 3),
            ("10.0.0.5", 2),
            ("10.0.0.6", 1),
            ("10.0.0.7", 1),
        ]);
        assert!(t.contains("10.0.0.5"), "{t}");
        assert!(!t.contains("more with the same count"), "{t}");
    }

    #[test]
    fn a_flat_kind_lists_no_key() {
        // Every source one flow: no list of arbitrary sources.
        let names: Vec<String> = (1..=40).map(|i| format!("10.0.2.{i}")).collect();
        let sources: Vec<(&str, u16)> = names.iter().map(|s| (s.as_str(), 1)).collect();
        let t = text_of(&sources);
        let lines = source_lines(&t);
        assert_eq!(
            lines.first().map(|l| l.trim()),
            Some("top sources: none stands out: all 40 have 1 entries each"),
            "{t}"
        );
        assert!(!t.contains("10.0.2.1"), "{t}");
        assert!(
            t.contains("Top sources: none standing out (all 40 with 1 each)"),
            "{t}"
        );
    }
}
