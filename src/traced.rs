//! Traced drops over a window, as analysis evidence: the drop tracer
//! (`conntrack_netlink::trace`) runs for a window on a thread of its own
//! and its records become a [`DropSummary`] for
//! `Observation::drops` (`doctor --trace SECONDS`).
//!
//! It lives in the facade because it joins the tracer (netlink) and the
//! summary (analyze); analyze does not depend on netlink.
//!
//! ```no_run
//! use conntrack_kit::netlink::Netns;
//! use conntrack_kit::traced::TraceWindow;
//! use std::time::Duration;
//! // Needs root and BTF; the error says why tracing is unavailable.
//! let w = TraceWindow::start(Netns::named("blue"), Duration::from_secs(10))?;
//! // ... collect the rest of the observation meanwhile ...
//! let summary = w.finish()?;
//! println!("{:?}", summary.groups);
//! # Ok::<(), conntrack_kit::netlink::trace::TraceError>(())
//! ```

use crate::analyze::attribution::SocketTable;
use crate::analyze::drops::{DropCause, DropSummary};
use crate::netlink::Netns;
use crate::netlink::trace::{DropRecord, TraceConfig, TraceError, Tracer};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Summarises records: conntrack's failures by cause and hotspot key
/// (ruleset verdicts, `Other`, are left out).
pub fn summarize(records: &[DropRecord], window: Duration, lost: u64) -> DropSummary {
    summarize_owned(records, window, lost, None)
}

/// [`summarize`], naming each drop's owner from `owners` (the sockets
/// that could have sent it, `conntrack_kit::live::owner_tables`): the
/// process or container whose socket is the flow's end.
pub fn summarize_owned(
    records: &[DropRecord],
    window: Duration,
    lost: u64,
    owners: Option<&SocketTable>,
) -> DropSummary {
    DropSummary::from_owned_records(
        window.as_secs_f64(),
        lost,
        records
            .iter()
            .filter_map(|r| DropCause::from_name(r.reason.name()).map(|c| (c, r))),
        |r| owners?.owner_of(r).map(|o| o.label()),
    )
}

/// A tracer collecting for a window.
#[derive(Debug)]
pub struct TraceWindow {
    thread: JoinHandle<(Vec<DropRecord>, u64, u64)>,
    window: Duration,
}

impl TraceWindow {
    /// Attaches the tracer to `netns` (its drops only) and collects for
    /// `window`. Returns once attached, so that what follows is traced.
    pub fn start(netns: Netns, window: Duration) -> Result<TraceWindow, TraceError> {
        let cfg = TraceConfig::default().with_netns(netns).with_ruleset(false);
        let mut tracer = Tracer::start(&cfg)?;
        let thread = std::thread::Builder::new()
            .name("trace-window".into())
            .spawn(move || {
                let end = Instant::now() + window;
                let mut out = Vec::new();
                let mut undecoded = 0u64;
                loop {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match tracer.next(left) {
                        Some(Ok(r)) => out.push(r),
                        Some(Err(_)) => undecoded += 1,
                        None => {}
                    }
                }
                // What the kernel wrote within the window, delivered.
                for r in tracer.drain() {
                    match r {
                        Ok(r) => out.push(r),
                        Err(_) => undecoded += 1,
                    }
                }
                (out, tracer.lost(), undecoded)
            })
            .map_err(|e| TraceError::Setup(format!("spawn: {e}")))?;
        Ok(TraceWindow { thread, window })
    }

    /// Waits for the window's end and summarises its records.
    pub fn finish(self) -> Result<DropSummary, TraceError> {
        self.finish_owned(|| None)
    }

    /// [`TraceWindow::finish`], naming the drops' owners from the socket
    /// table `owners` reads once the window has ended (the sockets of
    /// clients whose packets were dropped still exist then, retrying).
    pub fn finish_owned(
        self,
        owners: impl FnOnce() -> Option<SocketTable>,
    ) -> Result<DropSummary, TraceError> {
        let (records, lost, undecoded) = self
            .thread
            .join()
            .map_err(|_| TraceError::Setup("the tracing thread panicked".into()))?;
        if undecoded > 0 {
            return Err(TraceError::Setup(format!(
                "{undecoded} drop records did not decode (a BPF object of another build)"
            )));
        }
        let owners = owners();
        Ok(summarize_owned(
            &records,
            self.window,
            lost,
            owners.as_ref(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct_core::{L4Proto, L4Tuple, Tuple};
    use crate::netlink::trace::{DropReason, OtherKind, RawDrop};
    use std::time::SystemTime;

    fn record(reason: DropReason) -> DropRecord {
        DropRecord::new(
            SystemTime::UNIX_EPOCH,
            reason,
            RawDrop::no_entry(
                1,
                1,
                Tuple::new(
                    "10.0.0.1".parse().unwrap(),
                    "10.0.0.2".parse().unwrap(),
                    L4Proto::UDP,
                    L4Tuple::Ports { src: 1, dst: 53 },
                ),
            ),
        )
    }

    #[test]
    fn every_conntrack_reason_has_a_cause_and_ruleset_verdicts_none() {
        for r in DropReason::ALL {
            let c = DropCause::from_name(r.name());
            assert_eq!(c.is_some(), !matches!(r, DropReason::Other(_)), "{r}");
        }
        let s = summarize(
            &[
                record(DropReason::ChainTooLong),
                record(DropReason::ChainTooLong),
                record(DropReason::Other(OtherKind::InTable)),
            ],
            Duration::from_secs(5),
            3,
        );
        assert_eq!(s.count(DropCause::ChainTooLong), 2);
        assert_eq!(s.groups.len(), 1);
        assert_eq!((s.window_secs, s.lost), (5.0, 3));
    }
}
