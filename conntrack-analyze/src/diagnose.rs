//! Diagnosis: findings with evidence from a host snapshot, rates over a
//! window and, optionally, a hotspot summary.
//!
//! Rules:
//! - no finding without the numbers it rests on;
//! - counter-based findings need a rate window: a counter that only grew
//!   before the window (since boot) is history, never a finding;
//! - thresholds are in [`Thresholds`] and can be changed.
//!
//! ```
//! use conntrack_analyze::{diagnose, FindingId};
//! use conntrack_core::HostSnapshot;
//! let host = HostSnapshot { count: Some(99_000), max: Some(100_000), ..Default::default() };
//! let findings = diagnose(&host, None, None);
//! assert_eq!(findings[0].id, FindingId::TableNearlyFull);
//! assert_eq!(findings[0].evidence_value("utilisation"), Some(99.0));
//! ```

use crate::buckets::{ChainCap, poisson_model};
use crate::capacity::{TimeToFull, little_rate, time_to_full, timeout_change_frees};
use crate::finding::{Evidence, Finding, FindingId, Severity};
use crate::hotspots::HotspotSummary;
use crate::rates::Rates;
use conntrack_core::{Counter, FlowState, HostSnapshot, L4Proto, TcpState};

/// The limits diagnosis uses. Shares are 0..=1.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Utilisation (count / max) from which the table is "nearly full".
    pub nearly_full: f64,
    /// Utilisation from which drops beyond insert_failed mean a full table.
    pub full: f64,
    /// Utilisation below which confirm-time failures cannot be a full table.
    pub far_below_max: f64,
    /// `|drop - insert_failed| / insert_failed` within which they count as
    /// equal.
    pub drop_matches_insert_failed: f64,
    /// Mean chain length `2N/B` from which buckets count as overloaded.
    pub overloaded_lambda: f64,
    /// An extra floor on `max / mean` of per-CPU rates; the load must
    /// also be imbalanced by [`crate::rates::Spread::is_imbalanced`] (the
    /// rule the planner uses too). 1.0 leaves the decision to that rule.
    pub imbalance_max_over_mean: f64,
    /// Invalid packets per second that count as a surge.
    pub invalid_per_sec: f64,
    /// TIME_WAIT share of the table that dominates it.
    pub time_wait_share: f64,
    /// CLOSE_WAIT share of the table that dominates it.
    pub close_wait_share: f64,
    /// Idle time after which an ESTABLISHED entry counts as retained.
    pub established_idle_secs: u32,
    /// Share of the table held by retained ESTABLISHED entries.
    pub established_idle_share: f64,
    /// UNREPLIED flows from one source that make it a scan suspect.
    pub scan_unreplied: u64,
    /// Translated share of the table that counts as NAT amplification.
    pub nat_share: f64,
    /// Minimum flows in a hotspot summary for share-based findings.
    pub min_flows: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            nearly_full: 0.8,
            full: 0.9,
            far_below_max: 0.5,
            drop_matches_insert_failed: 0.2,
            overloaded_lambda: 8.0,
            imbalance_max_over_mean: 1.0,
            invalid_per_sec: 100.0,
            time_wait_share: 0.5,
            close_wait_share: 0.2,
            established_idle_secs: 3600,
            established_idle_share: 0.1,
            scan_unreplied: 100,
            nat_share: 0.5,
            min_flows: 100,
        }
    }
}

/// Diagnoses with default thresholds. Findings come most severe first.
pub fn diagnose(
    host: &HostSnapshot,
    rates: Option<&Rates>,
    hotspots: Option<&HotspotSummary>,
) -> Vec<Finding> {
    diagnose_with(host, rates, hotspots, &Thresholds::default())
}

fn ev(name: &str, value: f64, unit: &str) -> Evidence {
    Evidence::new(name, value, if unit.is_empty() { None } else { Some(unit) })
}

fn finding(
    id: FindingId,
    severity: Severity,
    title: String,
    evidence: Vec<Evidence>,
    explanation: &str,
) -> Finding {
    Finding {
        id,
        severity,
        title,
        evidence,
        explanation: explanation.to_owned(),
    }
}

struct Facts<'a> {
    count: Option<u64>,
    max: Option<u64>,
    util: Option<f64>,
    rates: Option<&'a Rates>,
}

impl Facts<'_> {
    fn live(&self, c: Counter) -> bool {
        self.rates.is_some_and(|r| r.is_live(c))
    }
    fn rate(&self, c: Counter) -> f64 {
        self.rates.map_or(0.0, |r| r.per_sec(c))
    }
    fn has(&self, c: Counter) -> bool {
        self.rates.is_some_and(|r| r.has(c))
    }
    fn table_evidence(&self, v: &mut Vec<Evidence>) {
        if let Some(c) = self.count {
            v.push(ev("count", c as f64, "entries"));
        }
        if let Some(m) = self.max {
            v.push(ev("max", m as f64, "entries"));
        }
        if let Some(u) = self.util {
            v.push(ev("utilisation", round2(u * 100.0), "%"));
        }
    }
    fn rate_evidence(&self, v: &mut Vec<Evidence>, cs: &[Counter]) {
        for &c in cs {
            if self.has(c) {
                v.push(ev(
                    &format!("{} rate", c.name()),
                    round2(self.rate(c)),
                    "/s",
                ));
            }
        }
    }
}

fn round2(x: f64) -> f64 {
    if x.is_finite() {
        (x * 100.0).round() / 100.0
    } else {
        0.0
    }
}

/// Diagnoses with the given thresholds. Findings come most severe first.
pub fn diagnose_with(
    host: &HostSnapshot,
    rates: Option<&Rates>,
    hotspots: Option<&HotspotSummary>,
    th: &Thresholds,
) -> Vec<Finding> {
    let count = host
        .count
        .or_else(|| host.stats.as_ref().and_then(|s| s.entries))
        .or_else(|| rates.and_then(|r| r.entries.as_ref().map(|e| e.last)))
        .map(u64::from);
    let max = host
        .max
        .or_else(|| host.stats.as_ref().and_then(|s| s.max_entries))
        .map(u64::from)
        .filter(|&m| m > 0);
    let util = match (count, max) {
        (Some(c), Some(m)) => Some(c as f64 / m as f64),
        _ => None,
    };
    let fx = Facts {
        count,
        max,
        util,
        rates,
    };
    let mut out = Vec::new();
    table_findings(&fx, th, &mut out);
    confirm_findings(host, &fx, th, &mut out);
    bucket_findings(host, &fx, th, &mut out);
    imbalance_findings(host, &fx, th, &mut out);
    if fx.live(Counter::Invalid) && fx.rate(Counter::Invalid) >= th.invalid_per_sec {
        let mut e = Vec::new();
        fx.rate_evidence(&mut e, &[Counter::Invalid, Counter::Error]);
        if let Some(r) = rates.and_then(|r| r.get(Counter::Invalid)) {
            e.push(ev("invalid peak rate", round2(r.peak_per_sec), "/s"));
        }
        out.push(finding(
            FindingId::InvalidSurge,
            Severity::Warning,
            format!("{:.0} invalid packets/s", fx.rate(Counter::Invalid)),
            e,
            "Packets conntrack could not track (out-of-window TCP, bad checksums, ICMP errors \
             for unknown flows) are arriving fast. They are not tracked and are usually dropped \
             by an INVALID rule; look for asymmetric routing, a SYN flood or a broken middlebox. \
             nf_conntrack_log_invalid shows samples.",
        ));
    }
    if let Some(h) = hotspots {
        hotspot_findings(host, h, &fx, th, &mut out);
    }
    if let Some(r) = rates
        && !r.resets.is_empty()
    {
        out.push(finding(
            FindingId::CounterReset,
            Severity::Info,
            "statistics counters were reset during the window".into(),
            vec![
                ev("resets", r.resets.len() as f64, ""),
                ev(
                    "intervals discarded",
                    (r.window.intervals - r.window.used_intervals) as f64,
                    "",
                ),
            ],
            "Counters and entries went backwards together (reboot, module reload or the \
             namespace was recreated). Intervals across a reset were left out of the rates.",
        ));
    }
    out.retain(|f| !f.evidence.is_empty());
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.id.cmp(&b.id)));
    out
}

fn table_findings(fx: &Facts, th: &Thresholds, out: &mut Vec<Finding>) {
    let util = fx.util.unwrap_or(0.0);
    let early = fx.live(Counter::EarlyDrop);
    let ins = fx.rate(Counter::InsertFailed);
    let drop_beyond = fx.live(Counter::Drop) && fx.rate(Counter::Drop) > ins * 1.05 + 0.01;
    let full_now = matches!((fx.count, fx.max), (Some(c), Some(m)) if c >= m);
    if early || (drop_beyond && util >= th.full) || full_now {
        let mut e = Vec::new();
        fx.table_evidence(&mut e);
        fx.rate_evidence(
            &mut e,
            &[Counter::EarlyDrop, Counter::Drop, Counter::InsertFailed],
        );
        out.push(finding(
            FindingId::TableFull,
            Severity::Critical,
            "conntrack table full: new flows are being dropped".into(),
            e,
            "The table reached nf_conntrack_max: the kernel evicts unassured entries \
             (early_drop) and drops packets of new flows when none can be evicted \
             (\"nf_conntrack: table full, dropping packet\"). Raise nf_conntrack_max with \
             buckets to match, shorten timeouts of the states that fill it, or stop tracking \
             traffic that needs no state (NOTRACK).",
        ));
    } else if util >= th.nearly_full {
        let mut e = Vec::new();
        fx.table_evidence(&mut e);
        if let (Some(c), Some(m), Some(t)) =
            (fx.count, fx.max, fx.rates.and_then(|r| r.entries.as_ref()))
        {
            e.push(ev("count trend", round2(t.slope_per_sec), "entries/s"));
            if let TimeToFull::In(s) = time_to_full(c, m, t.slope_per_sec) {
                e.push(ev("time to full", round2(s), "s"));
            }
        }
        out.push(finding(
            FindingId::TableNearlyFull,
            Severity::Warning,
            format!("conntrack table {:.0}% full", util * 100.0),
            e,
            "The count is close to nf_conntrack_max; at max, new flows are dropped. Check \
             which states and keys fill the table before raising the limit.",
        ));
    }
}

fn confirm_findings(host: &HostSnapshot, fx: &Facts, th: &Thresholds, out: &mut Vec<Finding>) {
    if !fx.live(Counter::InsertFailed) {
        return;
    }
    let ins = fx.rate(Counter::InsertFailed);
    let drop = fx.rate(Counter::Drop);
    let matches = ins > 0.0 && (drop - ins).abs() <= th.drop_matches_insert_failed * ins;
    let far = fx.util.is_none_or(|u| u < th.far_below_max);
    if !(matches && far && !fx.live(Counter::EarlyDrop)) {
        return;
    }
    let mut e = Vec::new();
    fx.rate_evidence(
        &mut e,
        &[
            Counter::InsertFailed,
            Counter::Drop,
            Counter::EarlyDrop,
            Counter::ClashResolve,
            Counter::ChainTooLong,
        ],
    );
    fx.table_evidence(&mut e);
    let kernel = host.kernel_version;
    let (id, title, expl) = if fx.live(Counter::ChainTooLong) {
        (
            FindingId::ConfirmChainCap,
            "inserts refused: hash chains too long",
            "insert_failed matches drop with the table far from full, and chaintoolong rises: \
             new entries are refused because their hash chain exceeds the kernel's cap (5.15+, \
             d7e7747ac5c2). Buckets are too few for the count, or many flows share tuples. \
             Raise nf_conntrack_buckets (hashsize).",
        )
    } else if fx.has(Counter::ChainTooLong)
        || kernel.is_some_and(|v| !v.at_least(5, 15))
        || fx.live(Counter::ClashResolve)
    {
        (
            FindingId::ConfirmClash,
            "confirm-time clashes: packets of racing new flows dropped",
            "insert_failed matches drop with the table far from full and no chain-length \
             refusals: two CPUs confirmed the same new flow at once and the loser was dropped \
             (the UDP DNS A/AAAA race behind 5-second resolver timeouts). clash_resolve counts \
             the races the kernel could resolve (5.10+, bc92470413f3). Spread the load with \
             RPS/RSS, use single-request-reopen / TCP for DNS, or NOTRACK DNS traffic.",
        )
    } else {
        (
            FindingId::ConfirmFailures,
            "confirm-time insert failures with the table far from full",
            "insert_failed matches drop with the table far from full: entries fail at confirm \
             time, not for lack of room. This kernel's counters cannot tell a clash race from \
             an overlong chain; compare against the hotspot keys and the bucket model.",
        )
    };
    out.push(finding(id, Severity::Critical, title.into(), e, expl));
}

fn bucket_findings(host: &HostSnapshot, fx: &Facts, th: &Thresholds, out: &mut Vec<Finding>) {
    let buckets = host.buckets.map(u64::from).filter(|&b| b > 0);
    let lambda = match (fx.count, buckets) {
        (Some(c), Some(b)) => Some(2.0 * c as f64 / b as f64),
        _ => None,
    };
    let chain_live = fx.live(Counter::ChainTooLong);
    if !(chain_live || lambda.is_some_and(|l| l >= th.overloaded_lambda)) {
        return;
    }
    let mut e = Vec::new();
    if let Some(c) = fx.count {
        e.push(ev("count", c as f64, "entries"));
    }
    if let Some(b) = buckets {
        e.push(ev("buckets", b as f64, ""));
    }
    if let Some(l) = lambda {
        e.push(ev("mean chain length 2N/B", round2(l), "nodes"));
    }
    fx.rate_evidence(&mut e, &[Counter::ChainTooLong]);
    if let (Some(c), Some(b), Some(v)) = (fx.count, buckets, host.kernel_version) {
        let m = poisson_model(c, b, ChainCap::of(v));
        e.push(ev(
            "expected longest chain",
            round2(m.expected_longest),
            "nodes",
        ));
        if let Some(p) = m.p_insert_refused {
            e.push(ev("modelled refusal probability per insert", p, ""));
        }
    }
    out.push(finding(
        FindingId::OverloadedBuckets,
        if chain_live {
            Severity::Critical
        } else {
            Severity::Warning
        },
        "hash buckets overloaded".into(),
        e,
        "Every entry sits in two hash chains, so the mean chain is 2N/B long; lookups walk \
         it on every packet, and since 5.15 an insert into a chain beyond the cap is refused \
         (chaintoolong). Raise nf_conntrack_buckets (or the hashsize module parameter) so that \
         2N/B stays near 2.",
    ));
}

fn imbalance_findings(host: &HostSnapshot, fx: &Facts, th: &Thresholds, out: &mut Vec<Finding>) {
    let Some(r) = fx.rates else { return };
    let rps_on = host.rx_queues.iter().any(|q| !q.rps_cpus.is_empty());
    if rps_on {
        return;
    }
    let worst = [Counter::InsertFailed, Counter::Drop]
        .into_iter()
        .filter(|&c| r.is_live(c))
        .filter_map(|c| r.imbalance(c))
        .filter(|i| i.spread.is_imbalanced() && i.max_over_mean >= th.imbalance_max_over_mean)
        .max_by(|a, b| a.spread.excess.total_cmp(&b.spread.excess));
    let Some(imb) = worst else { return };
    let mut e = vec![
        ev(
            &format!("{} on busiest CPU", imb.counter.name()),
            round2(imb.max_per_sec),
            "/s",
        ),
        ev(
            &format!("{} mean per CPU", imb.counter.name()),
            round2(imb.mean_per_sec),
            "/s",
        ),
        ev("max / mean", round2(imb.max_over_mean), ""),
        ev("effective CPUs", round2(imb.spread.effective_cpus), ""),
        ev("busiest CPU share", round2(imb.busiest_share * 100.0), "%"),
        ev("CPUs", imb.cpus as f64, ""),
        ev("rx queues with RPS", 0.0, ""),
        ev("rx queues known", host.rx_queues.len() as f64, ""),
    ];
    let sirq = &host.net_rx_softirqs;
    let total: u64 = sirq.iter().sum();
    if total > 0 {
        let m = sirq.iter().copied().max().unwrap_or(0);
        e.push(ev(
            "NET_RX softirqs on busiest CPU",
            round2(m as f64 / total as f64 * 100.0),
            "%",
        ));
    }
    out.push(finding(
        FindingId::CpuImbalance,
        Severity::Warning,
        format!(
            "{} concentrated on {} {}",
            imb.counter.name(),
            match imb.busiest.resolve(&host.cpus_possible) {
                Some(id) => format!("CPU {id}"),
                None => imb.busiest.to_string(),
            },
            if host.rx_queues.is_empty() {
                "(RPS state unknown)"
            } else {
                "with RPS off"
            }
        ),
        e,
        "One CPU takes most of the failures: its receive queue handles the bursts that race \
         or overflow. With a single-queue NIC and RPS disabled every packet of the host is \
         processed there. Enable RPS (rps_cpus) or RSS so that flows spread over CPUs.",
    ));
}

fn timeout_of(host: &HostSnapshot, proto: &str, state: &str, default: u32) -> u32 {
    host.timeouts
        .get(proto)
        .and_then(|m| m.get(state))
        .copied()
        .unwrap_or(default)
}

fn hotspot_findings(
    host: &HostSnapshot,
    h: &HotspotSummary,
    fx: &Facts,
    th: &Thresholds,
    out: &mut Vec<Finding>,
) {
    if h.flows < th.min_flows {
        return;
    }
    let flows = h.flows as f64;
    let tcp = |s: TcpState| h.state(L4Proto::TCP, FlowState::Tcp(s));

    if let Some(tw) = tcp(TcpState::TIME_WAIT).filter(|s| s.share >= th.time_wait_share) {
        let t = timeout_of(host, "tcp", "time_wait", 120);
        let mut e = vec![
            ev("TIME_WAIT entries", tw.count as f64, "entries"),
            ev("TIME_WAIT share", round2(tw.share * 100.0), "%"),
            ev("tcp_timeout_time_wait", t as f64, "s"),
            ev(
                "implied closes (Little's law)",
                round2(little_rate(tw.count as f64, t as f64)),
                "/s",
            ),
        ];
        if t > 30 {
            let freed = timeout_change_frees(&tw.remaining, t, 30);
            e.push(ev(
                "entries freed at a 30 s timeout",
                freed.round(),
                "entries",
            ));
        }
        out.push(finding(
            FindingId::TimeWaitDominance,
            Severity::Warning,
            format!("TIME_WAIT holds {:.0}% of the table", tw.share * 100.0),
            e,
            "Many short connections: each closed connection stays in TIME_WAIT for the whole \
             timeout (entries = closes/s x timeout). Reuse connections (keepalive, pooling) \
             or shorten nf_conntrack_tcp_timeout_time_wait.",
        ));
    }
    if let Some(cw) = tcp(TcpState::CLOSE_WAIT).filter(|s| s.share >= th.close_wait_share) {
        out.push(finding(
            FindingId::CloseWaitDominance,
            Severity::Warning,
            format!("CLOSE_WAIT holds {:.0}% of the table", cw.share * 100.0),
            vec![
                ev("CLOSE_WAIT entries", cw.count as f64, "entries"),
                ev("CLOSE_WAIT share", round2(cw.share * 100.0), "%"),
                ev(
                    "tcp_timeout_close_wait",
                    timeout_of(host, "tcp", "close_wait", 60) as f64,
                    "s",
                ),
            ],
            "One side closed and the other has not: an application is not closing its \
             sockets (or a peer half-closes and never finishes). Find the owners with \
             attribution; a timeout change only hides it.",
        ));
    }
    if let Some(est) = tcp(TcpState::ESTABLISHED) {
        let t = timeout_of(host, "tcp", "established", 432_000);
        if t >= 86_400 && t > th.established_idle_secs {
            let idle = est
                .remaining
                .count_below((t - th.established_idle_secs) as f64);
            if idle / flows >= th.established_idle_share {
                out.push(finding(
                    FindingId::LongEstablishedRetention,
                    Severity::Warning,
                    format!(
                        "{:.0}% of the table is ESTABLISHED entries idle over {} s",
                        idle / flows * 100.0,
                        th.established_idle_secs
                    ),
                    vec![
                        ev("ESTABLISHED entries", est.count as f64, "entries"),
                        ev("idle ESTABLISHED entries", idle.round(), "entries"),
                        ev("idle share of table", round2(idle / flows * 100.0), "%"),
                        ev("tcp_timeout_established", t as f64, "s"),
                    ],
                    "With the 5-day default, connections that vanished without FIN/RST (peers \
                     rebooted, NAT or load balancer timeouts) keep their entry for days. \
                     Lower nf_conntrack_tcp_timeout_established to hours, or use TCP keepalive.",
                ));
            }
        }
    }
    let suspects: Vec<_> = h
        .unreplied_by_source
        .top
        .iter()
        .filter(|k| k.count >= th.scan_unreplied)
        .take(5)
        .collect();
    if !suspects.is_empty() {
        let mut e: Vec<Evidence> = suspects
            .iter()
            .map(|k| {
                ev(
                    &format!("unreplied flows from {}", k.key),
                    k.count as f64,
                    "flows",
                )
            })
            .collect();
        e.push(ev("unreplied flows", h.unreplied as f64, "flows"));
        e.push(ev(
            "unreplied share",
            round2(h.unreplied as f64 / flows * 100.0),
            "%",
        ));
        out.push(finding(
            FindingId::ScanSuspects,
            Severity::Warning,
            format!("{} source(s) with many unanswered flows", suspects.len()),
            e,
            "Flows that never saw a reply hold entries for the full unreplied timeout. Many \
             from one source is a scanner, a flood, or a client retrying against a dead \
             backend.",
        ));
    }
    let nat = h.nat_share();
    if nat >= th.nat_share {
        let mut e = vec![
            ev("translated share", round2(nat * 100.0), "%"),
            ev("SNAT flows", (h.nat.snat + h.nat.both) as f64, "flows"),
            ev("DNAT flows", (h.nat.dnat + h.nat.both) as f64, "flows"),
        ];
        if let Some(top) = h
            .table(crate::hotspots::KeyKind::Name)
            .and_then(|t| t.top.first())
        {
            e.push(ev(
                &format!("flows of {}", top.key),
                top.count as f64,
                "flows",
            ));
        }
        let busy = fx.util.is_some_and(|u| u >= th.nearly_full * 0.5);
        out.push(finding(
            FindingId::NatAmplification,
            if busy {
                Severity::Warning
            } else {
                Severity::Info
            },
            format!("translated flows hold {:.0}% of the table", nat * 100.0),
            e,
            "Container bridges (masquerade) and service DNAT put every container and service \
             flow in the host's table; a chatty container or a service VIP can fill it for \
             everyone. The name key shows which containers.",
        ));
    }
    if !host.helpers.is_empty() && h.helper_flows == 0 {
        out.push(finding(
            FindingId::UnneededHelpers,
            Severity::Info,
            format!(
                "helper modules loaded but unused: {}",
                host.helpers.join(", ")
            ),
            vec![
                ev("helper modules loaded", host.helpers.len() as f64, ""),
                ev("flows with a helper or expectation", 0.0, "flows"),
                ev("flows examined", flows, "flows"),
            ],
            "No flow uses a conntrack helper. Helpers parse payloads and open expectations \
             (a classic attack surface); unload helper modules that nothing needs. A helper \
             built into the kernel cannot be unloaded, and since 4.7 (3bb398d925ec) helpers \
             are attached only by explicit CT rules, so an unused built-in one is inert.",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hotspots::Hotspots;
    use crate::rates::{Rates, Sample};
    use conntrack_core::{
        CpuStats, Flow, KernelVersion, L4Tuple, ProtoInfo, Stats, Status, TcpInfo, Tuple,
    };
    use std::time::Duration;

    /// Two samples 10 s apart on one CPU; `d` are the increases.
    fn rates(cols: &[(Counter, u32, u32)]) -> Rates {
        let mk = |t: u64, second: bool| {
            let mut c = CpuStats::for_cpu(0);
            for &(k, a, d) in cols {
                c.set(k, if second { a.wrapping_add(d) } else { a });
            }
            Sample {
                at: Duration::from_secs(t),
                stats: Stats {
                    entries: Some(1000),
                    max_entries: None,
                    cpus: vec![c],
                },
            }
        };
        Rates::from_samples(&[mk(0, false), mk(10, true)])
    }

    fn host(count: u32, max: u32, buckets: u32, kernel: Option<(u16, u16)>) -> HostSnapshot {
        HostSnapshot {
            count: Some(count),
            max: Some(max),
            buckets: Some(buckets),
            kernel_version: kernel.map(|(a, b)| KernelVersion::new(a, b, 0)),
            ..Default::default()
        }
    }

    fn ids(f: &[Finding]) -> Vec<FindingId> {
        f.iter().map(|x| x.id).collect()
    }

    use Counter::*;

    #[test]
    fn chain_cap_told_apart_from_clash() {
        let r = rates(&[
            (InsertFailed, 0, 300),
            (Drop, 0, 300),
            (EarlyDrop, 0, 0),
            (ClashResolve, 5, 0),
            (ChainTooLong, 0, 300),
        ]);
        // 5.15, hashsize far too small: 2 x 40000 / 4096 = 19.53.
        let f = diagnose(&host(40_000, 262_144, 4096, Some((5, 15))), Some(&r), None);
        assert_eq!(
            ids(&f),
            vec![FindingId::ConfirmChainCap, FindingId::OverloadedBuckets]
        );
        assert_eq!(f[0].evidence_value("chaintoolong rate"), Some(30.0));
        let b = &f[1];
        assert_eq!(b.severity, Severity::Critical);
        assert_eq!(b.evidence_value("mean chain length 2N/B"), Some(19.53));
        // lambda 19.5 under the 5.15 cap (8..=31): refusals are modelled.
        assert!(
            b.evidence_value("modelled refusal probability per insert")
                .unwrap()
                > 0.01
        );
    }

    #[test]
    fn unknown_kernel_without_columns_is_undetermined() {
        let r = rates(&[(InsertFailed, 0, 100), (Drop, 0, 110), (EarlyDrop, 0, 0)]);
        let f = diagnose(&host(100, 65_536, 65_536, None), Some(&r), None);
        assert_eq!(ids(&f), vec![FindingId::ConfirmFailures]);
        // drop 11/s vs insert_failed 10/s: within 20%.
        assert_eq!(f[0].evidence_value("drop rate"), Some(11.0));
        // Far apart: not a confirm-time pattern.
        let r = rates(&[(InsertFailed, 0, 100), (Drop, 0, 500), (EarlyDrop, 0, 0)]);
        assert!(diagnose(&host(100, 65_536, 65_536, None), Some(&r), None).is_empty());
    }

    #[test]
    fn imbalance_says_when_rps_is_unknown() {
        let mk = |t: u64, d: [u32; 2]| Sample {
            at: Duration::from_secs(t),
            stats: Stats {
                entries: Some(10),
                max_entries: None,
                cpus: d
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let mut c = CpuStats::for_cpu(i as u32);
                        c.set(Drop, v);
                        c
                    })
                    .collect(),
            },
        };
        let r = Rates::from_samples(&[mk(0, [0, 0]), mk(10, [90, 10])]);
        let f = diagnose(&HostSnapshot::default(), Some(&r), None);
        assert_eq!(ids(&f), vec![FindingId::CpuImbalance]);
        assert!(
            f[0].title.ends_with("(RPS state unknown)"),
            "{}",
            f[0].title
        );
        // max 9/s over mean 5/s.
        assert_eq!(f[0].evidence_value("max / mean"), Some(1.8));
        // RPS on: not this finding.
        let mut h = HostSnapshot::default();
        h.rx_queues.push(conntrack_core::RxQueue {
            iface: "eth0".into(),
            queue: 0,
            rps_cpus: vec![0, 1],
        });
        assert!(diagnose(&h, Some(&r), None).is_empty());
    }

    #[test]
    fn imbalance_means_the_same_on_many_cpus() {
        // 64 CPUs, one at 2.3x the others' rate: max/mean 2.28 (a fixed
        // max/mean >= 1.5 rule fired here), but that CPU has 3.5% of the
        // drops and the work runs on ~63 effective CPUs: balanced.
        let mk = |t: u64, busy: u32, rest: u32| Sample {
            at: Duration::from_secs(t),
            stats: Stats {
                entries: Some(10),
                max_entries: None,
                cpus: (0..64u32)
                    .map(|i| {
                        let mut c = CpuStats::for_cpu(i);
                        c.set(Drop, if i == 5 { busy } else { rest });
                        c
                    })
                    .collect(),
            },
        };
        let r = Rates::from_samples(&[mk(0, 0, 0), mk(10, 230, 100)]);
        assert!(diagnose(&HostSnapshot::default(), Some(&r), None).is_empty());
        // The same CPU with 60% of all drops is imbalanced.
        let r = Rates::from_samples(&[mk(0, 0, 0), mk(10, 9_450, 100)]);
        let f = diagnose(&HostSnapshot::default(), Some(&r), None);
        assert_eq!(ids(&f), vec![FindingId::CpuImbalance]);
        assert!(f[0].title.contains("CPU 5"), "{}", f[0].title);
    }

    #[test]
    fn invalid_surge_needs_a_live_rate_above_threshold() {
        let r = rates(&[(Invalid, 7, 2000), (Error, 0, 10)]);
        let f = diagnose(&HostSnapshot::default(), Some(&r), None);
        assert_eq!(ids(&f), vec![FindingId::InvalidSurge]);
        assert_eq!(f[0].evidence_value("invalid rate"), Some(200.0));
        assert_eq!(f[0].evidence_value("error rate"), Some(1.0));
        let r = rates(&[(Invalid, 7_000_000, 500)]);
        assert!(diagnose(&HostSnapshot::default(), Some(&r), None).is_empty());
    }

    fn tcp(i: u32, st: TcpState, timeout: u32) -> Flow {
        let ip = |s: String| s.parse().unwrap();
        let (a, b) = (
            ip(format!("10.0.{}.{}", i / 250, i % 250 + 1)),
            ip("10.9.9.9".into()),
        );
        let mut f = Flow::new(
            Tuple::new(a, b, L4Proto::TCP, L4Tuple::Ports { src: 1000, dst: 80 }),
            Tuple::new(b, a, L4Proto::TCP, L4Tuple::Ports { src: 80, dst: 1000 }),
            Status::CONFIRMED | Status::SEEN_REPLY,
        );
        f.protoinfo = Some(ProtoInfo::Tcp(TcpInfo {
            state: st,
            ..Default::default()
        }));
        f.timeout = Some(timeout);
        f
    }

    #[test]
    fn close_wait_and_long_established() {
        let mut h = Hotspots::exact();
        // 30 CLOSE_WAIT, 50 ESTABLISHED idle for a day, 20 active.
        for i in 0..30 {
            h.add(&tcp(i, TcpState::CLOSE_WAIT, 40));
        }
        for i in 30..80 {
            h.add(&tcp(i, TcpState::ESTABLISHED, 432_000 - 86_400));
        }
        for i in 80..100 {
            h.add(&tcp(i, TcpState::ESTABLISHED, 431_990));
        }
        let s = h.summary();
        let f = diagnose(&HostSnapshot::default(), None, Some(&s));
        assert_eq!(
            ids(&f),
            vec![
                FindingId::CloseWaitDominance,
                FindingId::LongEstablishedRetention
            ]
        );
        assert_eq!(f[0].evidence_value("CLOSE_WAIT share"), Some(30.0));
        assert_eq!(f[1].evidence_value("idle ESTABLISHED entries"), Some(50.0));
        assert_eq!(f[1].evidence_value("idle share of table"), Some(50.0));
        // With a 1-hour established timeout there is nothing to retain.
        let mut hs = HostSnapshot::default();
        hs.timeouts
            .entry("tcp".into())
            .or_default()
            .insert("established".into(), 3600);
        let f = diagnose(&hs, None, Some(&s));
        assert_eq!(ids(&f), vec![FindingId::CloseWaitDominance]);
    }

    #[test]
    fn degenerate_hosts_do_not_panic() {
        let r = rates(&[
            (InsertFailed, u32::MAX, 5),
            (Drop, 0, 5),
            (ChainTooLong, 0, 5),
        ]);
        for h in [
            host(5, 0, 0, Some((6, 18))),        // unlimited max, zero buckets
            host(u32::MAX, 1, 1, Some((5, 15))), // count far over max
            host(0, u32::MAX, u32::MAX, Some((0, 0))),
            HostSnapshot::default(),
        ] {
            for f in diagnose(&h, Some(&r), None) {
                assert!(!f.evidence.is_empty());
                assert!(f.evidence.iter().all(|e| e.value.is_finite()), "{f}");
            }
        }
        // max 0 means unlimited: never "full".
        let f = diagnose(&host(5, 0, 0, None), None, None);
        assert!(f.is_empty());
    }

    #[test]
    fn few_flows_give_no_share_findings() {
        let mut h = Hotspots::exact();
        for i in 0..10 {
            h.add(&tcp(i, TcpState::TIME_WAIT, 60));
        }
        assert!(diagnose(&HostSnapshot::default(), None, Some(&h.summary())).is_empty());
    }

    #[test]
    fn nearly_full_reports_time_to_full() {
        let mk = |t: u64, e: u32| Sample {
            at: Duration::from_secs(t),
            stats: Stats {
                entries: Some(e),
                max_entries: None,
                cpus: vec![CpuStats::for_cpu(0)],
            },
        };
        let r = Rates::from_samples(&[mk(0, 8_000), mk(10, 8_500), mk(20, 9_000)]);
        let f = diagnose(&host(9_000, 10_000, 65_536, None), Some(&r), None);
        assert_eq!(ids(&f), vec![FindingId::TableNearlyFull]);
        assert_eq!(f[0].evidence_value("count trend"), Some(50.0));
        // (10000 - 9000) / 50 per s.
        assert_eq!(f[0].evidence_value("time to full"), Some(20.0));
    }
}
