//! Traced drops as counters (feature `trace`): the drop tracer
//! (`conntrack_netlink::trace`) runs on a thread of its own and every
//! record it names counts once under its namespace and reason.
//!
//! | family | type | labels | meaning |
//! |---|---|---|---|
//! | `conntrack_drops_traced_total` | counter | netns, reason | packets conntrack or NAT dropped, by reason (`table_full`, `unresolved_clash`, `chain_too_long`, `dying`, `nat_failure`) |
//! | `conntrack_drops_traced_lost_total` | counter | | records the kernel could not hand over (ring buffer full): drops not counted above |
//! | `conntrack_drops_traced_undecoded_total` | counter | | records that did not decode (a BPF object of another build) |
//!
//! No per-flow labels: a reason is one of five values and `netns` is the
//! exporter's own label (namespaces past `--max-netns`, or not collected,
//! count under `other`), so the series are bounded by the namespaces'.
//! Every reason of every namespace with series starts at 0, so `rate()`
//! sees the first drop. Ruleset verdicts are not traced
//! (`TraceConfig::include_ruleset` is off): the families count
//! conntrack's failures, the ones `conntrack_stat_drop_total`,
//! `_insert_failed_total` and `_chaintoolong_total` count without saying
//! which, and NAT's own drops (`nat_failure`), which no kernel counter
//! shows.

use super::encode::{Family, Kind};
use conntrack_netlink::trace::{DropReason, DropRecord, TraceConfig, TraceError, Tracer};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The reasons exported (conntrack's failures and NAT's; `Other` is not
/// traced).
pub const TRACED_REASONS: [DropReason; 5] = [
    DropReason::TableFull,
    DropReason::UnresolvedClash,
    DropReason::ChainTooLong,
    DropReason::Dying,
    DropReason::NatFailure,
];

#[derive(Debug, Default)]
struct Counts {
    /// (namespace inode, reason) -> records.
    by: BTreeMap<(u32, DropReason), u64>,
    lost: u64,
    undecoded: u64,
}

/// Drop records counted by namespace and reason, fed by a running tracer
/// ([`TracedDrops::start`]) or by hand ([`TracedDrops::count`]).
#[derive(Debug, Default)]
pub struct TracedDrops {
    counts: Arc<Mutex<Counts>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TracedDrops {
    /// Counts without a tracer (records are given to [`TracedDrops::count`]).
    pub fn new() -> TracedDrops {
        TracedDrops::default()
    }

    /// Starts the tracer with `cfg` (its `include_ruleset` is ignored:
    /// conntrack's failures only) and counts its records on a thread of
    /// its own until dropped. The error says why tracing is unavailable
    /// (`TraceError::is_unavailable`).
    pub fn start(cfg: &TraceConfig) -> Result<TracedDrops, TraceError> {
        let cfg = cfg.clone().with_ruleset(false);
        let mut tracer = Tracer::start(&cfg)?;
        let mut me = TracedDrops::new();
        let (counts, stop) = (me.counts.clone(), me.stop.clone());
        let thread = std::thread::Builder::new()
            .name("exporter-trace".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let got = tracer.next(Duration::from_millis(200));
                    let lost = tracer.lost();
                    let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                    c.lost = lost;
                    match got {
                        Some(Ok(r)) => c.add(&r),
                        Some(Err(_)) => c.undecoded += 1,
                        None => {}
                    }
                }
            })
            .map_err(|e| TraceError::Setup(format!("spawn: {e}")))?;
        me.thread = Some(thread);
        Ok(me)
    }

    /// Counts one record.
    pub fn count(&self, r: &DropRecord) {
        self.lock().add(r);
    }

    /// Records counted for `reason` in the namespace with this inode.
    pub fn get(&self, netns: u32, reason: DropReason) -> u64 {
        self.lock().by.get(&(netns, reason)).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The families. `own` lists the namespaces with series of their own
    /// as (inode, label); records of any other namespace count under
    /// `netns="other"`.
    pub fn families(&self, own: &[(u32, &str)]) -> Vec<Family> {
        let c = self.lock();
        let mut sums: BTreeMap<(String, DropReason), u64> = BTreeMap::new();
        for (_, label) in own {
            for r in TRACED_REASONS {
                sums.insert(((*label).to_owned(), r), 0);
            }
        }
        for (&(inode, reason), &n) in &c.by {
            let label = own
                .iter()
                .find(|(i, _)| *i == inode)
                .map_or(super::OTHER, |(_, l)| *l);
            *sums.entry((label.to_owned(), reason)).or_insert(0) += n;
        }
        let mut drops = Family::new(
            "conntrack_drops_traced",
            "Packets conntrack dropped, by reason, as the drop tracer attributed them (table_full, unresolved_clash, chain_too_long, dying).",
            Kind::Counter,
        );
        for ((label, reason), n) in &sums {
            drops.push(&[("netns", label.as_str()), ("reason", reason.name())], *n);
        }
        vec![
            drops,
            Family::new(
                "conntrack_drops_traced_lost",
                "Drop records the kernel could not hand over (the tracer's ring buffer was full): drops missing from conntrack_drops_traced_total.",
                Kind::Counter,
            )
            .sample(&[], c.lost),
            Family::new(
                "conntrack_drops_traced_undecoded",
                "Drop records that did not decode (a BPF object of another build).",
                Kind::Counter,
            )
            .sample(&[], c.undecoded),
        ]
    }

    /// Whether a tracer feeds the counts (its thread runs).
    pub fn tracing(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Counts {
    fn add(&mut self, r: &DropRecord) {
        if TRACED_REASONS.contains(&r.reason) {
            *self.by.entry((r.netns(), r.reason)).or_insert(0) += 1;
        }
    }
}

impl Drop for TracedDrops {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::encode::{Format, encode};
    use conntrack_core::{L4Proto, L4Tuple, Tuple};
    use conntrack_netlink::trace::{OtherKind, RawDrop};
    use std::time::SystemTime;

    fn record(netns: u32, reason: DropReason, sport: u16) -> DropRecord {
        let orig = Tuple::new(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            L4Proto::TCP,
            L4Tuple::Ports {
                src: sport,
                dst: 80,
            },
        );
        DropRecord::new(
            SystemTime::UNIX_EPOCH,
            reason,
            RawDrop::no_entry(netns, 0, orig),
        )
    }

    #[test]
    fn records_count_by_namespace_and_reason_without_flow_labels() {
        let d = TracedDrops::new();
        for p in 0..3 {
            d.count(&record(7, DropReason::UnresolvedClash, 1000 + p));
        }
        d.count(&record(7, DropReason::TableFull, 1));
        d.count(&record(8, DropReason::NatFailure, 1));
        // A namespace without series of its own, and a ruleset verdict.
        d.count(&record(9, DropReason::ChainTooLong, 1));
        d.count(&record(7, DropReason::Other(OtherKind::InTable), 1));
        assert_eq!(d.get(7, DropReason::UnresolvedClash), 3);
        assert_eq!(d.get(7, DropReason::Other(OtherKind::InTable)), 0);
        assert!(!d.tracing());
        let fams = d.families(&[(7, "host"), (8, "blue")]);
        let text = encode(&fams, Format::Text);
        assert!(text.contains(
            "conntrack_drops_traced_total{netns=\"host\",reason=\"unresolved_clash\"} 3\n"
        ));
        assert!(
            text.contains("conntrack_drops_traced_total{netns=\"host\",reason=\"table_full\"} 1\n")
        );
        // Every reason of a namespace with series starts at 0.
        assert!(text.contains("conntrack_drops_traced_total{netns=\"blue\",reason=\"dying\"} 0\n"));
        assert!(
            text.contains(
                "conntrack_drops_traced_total{netns=\"blue\",reason=\"nat_failure\"} 1\n"
            )
        );
        assert!(text.contains(
            "conntrack_drops_traced_total{netns=\"other\",reason=\"chain_too_long\"} 1\n"
        ));
        assert!(!text.contains("other_in_table"));
        // NAT's own drops are a reason of their own.
        assert!(
            text.contains(
                "conntrack_drops_traced_total{netns=\"host\",reason=\"nat_failure\"} 0\n"
            )
        );
        // Two namespaces with series x five reasons, one `other` series.
        assert_eq!(fams[0].samples.len(), 11);
        for s in &fams[0].samples {
            let names: Vec<&str> = s.labels.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, ["netns", "reason"], "no per-flow labels");
        }
        assert!(text.contains("conntrack_drops_traced_lost_total 0\n"));
        let om = encode(&fams, Format::OpenMetrics);
        assert!(om.contains("# TYPE conntrack_drops_traced counter\n"));
    }
}
