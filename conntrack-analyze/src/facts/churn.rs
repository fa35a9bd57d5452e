//! How fast new connections come: the kernel has no counter for it on
//! modern kernels, so it is measured from NEW events or inferred from the
//! TIME_WAIT population with Little's law.

use crate::observation::Observation;
use crate::timeouts::inflow_rate;
use conntrack_core::{FlowState, L4Proto, TcpState};
use serde::Serialize;

/// How a new-connection rate was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RateMethod {
    /// Counted from NEW events over the window.
    Events,
    /// Inferred from TIME_WAIT entries that entered the state in the last
    /// quarter of the timeout (each closed connection enters it once).
    TimeWaitInflow,
}

/// A rate and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct RateEstimate {
    /// Per second.
    pub per_sec: f64,
    /// How it was obtained.
    pub method: RateMethod,
}

/// Connection churn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Churn {
    /// New connections per second: NEW events when measured, else TCP
    /// connections closing through TIME_WAIT (scaled to the table).
    pub new_per_sec: Option<RateEstimate>,
    /// TIME_WAIT entries in the table (scaled to the table).
    pub time_wait: Option<u64>,
}

impl Churn {
    pub(crate) fn derive(obs: &Observation, scale: f64, tw_secs: u32) -> Churn {
        let tw = obs
            .hotspots
            .as_ref()
            .and_then(|h| h.state(L4Proto::TCP, FlowState::Tcp(TcpState::TIME_WAIT)));
        let inflow = tw
            .filter(|s| s.remaining_secs.total() > 0)
            .map(|s| inflow_rate(&s.remaining_secs, tw_secs) * scale);
        let new_per_sec = match obs.new_flows_per_sec.filter(|r| r.is_finite() && *r >= 0.0) {
            Some(r) => Some(RateEstimate {
                per_sec: r,
                method: RateMethod::Events,
            }),
            None => inflow.map(|r| RateEstimate {
                per_sec: r,
                method: RateMethod::TimeWaitInflow,
            }),
        };
        Churn {
            new_per_sec,
            time_wait: tw.map(|s| (s.count as f64 * scale).round() as u64),
        }
    }
}
