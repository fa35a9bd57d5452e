//! How many entries the workload needs. When the table was full, the peak
//! count is censored at max and says nothing about the demand: the
//! refused first packets stand for connections that would have held an
//! entry too.

use super::counters::CounterFacts;
use super::table::TableFacts;
use conntrack_core::Counter;
use serde::Serialize;

/// How the demand was inferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DemandMethod {
    /// The table never reached max: the peak is the demand.
    Peak,
    /// The table was full: the peak plus the flows refused over the
    /// window, each held as long as the state that dominates the table
    /// holds its entries (TIME_WAIT for closed connections, the unreplied
    /// timeout of a flood; Little's law, an upper bound, as a client
    /// retransmits a refused first packet).
    PeakPlusRefused,
    /// The table was full and no window measured the refusals: the peak
    /// is only a lower bound.
    CensoredPeak,
}

/// The entries the workload needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Demand {
    /// Entries.
    pub entries: u64,
    /// How it was inferred.
    pub method: DemandMethod,
    /// Refused new flows per second (the `drop` rate), when used.
    pub refused_per_sec: Option<f64>,
    /// Seconds each refused flow would have held its entry.
    pub hold_secs: Option<u32>,
    /// The state whose timeout is the hold time.
    pub hold_state: Option<String>,
    /// The state that fills the table holds open connections (ESTABLISHED,
    /// an assured UDP stream), whose lifetime the table does not tell:
    /// `hold_secs` is then TIME_WAIT's timeout, a floor, not that state's
    /// idle timeout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hold_is_floor: bool,
}

impl Demand {
    /// `hold`: the dominant state's name and timeout.
    pub(crate) fn derive(
        table: &TableFacts,
        counters: &CounterFacts,
        hold: (String, u32, bool),
    ) -> Option<Demand> {
        let peak = table.peak?;
        if !table.at_limit && !counters.is_live(Counter::EarlyDrop) {
            return Some(Demand {
                entries: peak,
                method: DemandMethod::Peak,
                refused_per_sec: None,
                hold_secs: None,
                hold_state: None,
                hold_is_floor: false,
            });
        }
        if !counters.measured(Counter::Drop) {
            return Some(Demand {
                entries: peak,
                method: DemandMethod::CensoredPeak,
                refused_per_sec: None,
                hold_secs: None,
                hold_state: None,
                hold_is_floor: false,
            });
        }
        let refused = counters.rate(Counter::Drop);
        let extra = (refused * f64::from(hold.1)).round();
        let extra = if extra.is_finite() && extra > 0.0 {
            extra.min(u32::MAX as f64) as u64
        } else {
            0
        };
        Some(Demand {
            entries: peak.saturating_add(extra),
            method: DemandMethod::PeakPlusRefused,
            refused_per_sec: Some(refused),
            hold_secs: Some(hold.1),
            hold_state: Some(hold.0),
            hold_is_floor: hold.2,
        })
    }
}
