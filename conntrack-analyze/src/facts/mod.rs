//! [`Facts`]: the one model of a host that diagnosis and the tuning
//! planner both read. Everything derived from an [`Observation`] is
//! derived here, once: the table's fill and sizing, what each counter
//! says, the composition of the flows, connection churn, CPU spread and
//! the timeouts in force. A finding and a plan decision that need the
//! same number read the same field, so they cannot disagree.
//!
//! ```
//! use conntrack_analyze::{Facts, Observation};
//! use conntrack_core::{HostSnapshot, KernelVersion};
//! let obs = Observation::new(HostSnapshot::default()
//!     .with_kernel_version(KernelVersion::new(3, 10, 0))
//!     .with_mem_total_bytes(16 << 30)
//!     .with_count(320_851)
//!     .with_max(8_388_608)
//!     .with_buckets(1_048_576));
//! let f = Facts::derive(&obs);
//! assert_eq!(f.table.utilisation.map(|u| (u * 1000.0).round()), Some(38.0));
//! assert_eq!(f.table.origin.describe(),
//!            "an explicit hashsize (max = 8 x buckets, as the kernel sets it at load)");
//! ```

mod churn;
mod counters;
mod cpu;
mod demand;
mod mix;
mod table;

pub use churn::{Churn, RateEstimate, RateMethod};
pub use counters::{ClashAccounting, CounterEpoch, CounterFacts, CounterReading, CounterStatus};
pub use cpu::{CpuFacts, Rps};
pub use demand::{Demand, DemandMethod};
pub use mix::{Mix, nat_flows_of};
pub use table::TableFacts;

use crate::buckets::ChainCap;
use crate::capacity::SizingEra;
use crate::observation::Observation;
use conntrack_core::{Counter, KernelVersion, Timeout, TimeoutKey};
use serde::Serialize;

/// The derived model of one observation: the observation it was derived
/// from, and what was derived ([`DerivedFacts`], which it dereferences
/// to: `facts.table` is `facts.derived.table`).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Facts<'a> {
    /// What was observed.
    #[serde(skip)]
    pub obs: &'a Observation,
    /// What was derived from it.
    #[serde(flatten)]
    pub derived: DerivedFacts,
}

impl std::ops::Deref for Facts<'_> {
    type Target = DerivedFacts;
    fn deref(&self) -> &DerivedFacts {
        &self.derived
    }
}

impl std::ops::DerefMut for Facts<'_> {
    fn deref_mut(&mut self) -> &mut DerivedFacts {
        &mut self.derived
    }
}

/// Everything [`Facts::derive`] derives, owned (without the observation):
/// what a report carries (`conntrack_tune::Report` flattens it into its
/// JSON).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct DerivedFacts {
    /// The kernel version, when known.
    pub kernel: Option<KernelVersion>,
    /// Its sizing era.
    pub era: Option<SizingEra>,
    /// Size, fill, cost.
    pub table: TableFacts,
    /// What each counter says.
    pub counters: CounterFacts,
    /// The composition of the flows, when flows were listed.
    pub mix: Option<Mix>,
    /// Connection churn.
    pub churn: Churn,
    /// The entries the workload needs.
    pub demand: Option<Demand>,
    /// CPU spread and RPS.
    pub cpu: CpuFacts,
    /// Every timeout in force (configured, or the kernel default).
    pub timeouts: Vec<Timeout>,
    /// Container networking interfaces seen (Docker bridges, veth pairs,
    /// CNI bridges): `None` when no interface was read.
    pub containers: Option<bool>,
}

/// Interface name prefixes of container networking.
const CONTAINER_IFACES: [&str; 11] = [
    "docker",
    "br-",
    "veth",
    "cni",
    "flannel",
    "cali",
    "vxlan.calico",
    "weave",
    "kube-bridge",
    "podman",
    "lxc",
];

fn containers_seen(s: &conntrack_core::HostSnapshot) -> Option<bool> {
    if s.rx_queues.is_empty() {
        return None;
    }
    Some(
        s.rx_queues
            .iter()
            .any(|q| CONTAINER_IFACES.iter().any(|p| q.iface.starts_with(p))),
    )
}

impl<'a> Facts<'a> {
    /// Derives the model. Total: missing facts stay `None`, absurd
    /// numbers stay finite.
    pub fn derive(obs: &'a Observation) -> Facts<'a> {
        let s = &obs.snapshot;
        let kernel = s.kernel_version.or_else(|| {
            s.kernel_release
                .as_deref()
                .and_then(|r| r.parse::<KernelVersion>().ok())
        });
        let era = kernel.map(|k| SizingEra::of_release(k, s.kernel_release.as_deref()));
        let table = TableFacts::derive(obs, era);
        let mix = Mix::derive(obs, table.count);
        let scale = mix.as_ref().map_or(1.0, |m| m.scale);
        let timeouts: Vec<Timeout> = TimeoutKey::ALL.into_iter().map(|k| s.timeout(k)).collect();
        let tw = timeouts
            .iter()
            .find(|t| t.key == TimeoutKey::TcpTimeWait)
            .map_or(120, |t| t.secs);
        // The hold time of a refused flow: the timeout of the state that
        // holds most entries (TIME_WAIT when nothing was listed). An open
        // connection's entry lives as long as the connection is used: the
        // idle timeout of ESTABLISHED (5 days by default) or of an
        // assured UDP stream is not how long it holds an entry, and the
        // table does not tell the lifetime. Such a refused flow is counted
        // for TIME_WAIT only, the least a closed TCP connection holds its
        // entry (a floor; found by the incident lab's table-full scenario,
        // where 5 days gave a demand of 174 million entries).
        let hold = obs
            .hotspots
            .as_ref()
            .and_then(|h| h.states.first())
            .and_then(|st| {
                let key = TimeoutKey::for_state(st.proto, st.state)?;
                let t = timeouts.iter().find(|t| t.key == key)?;
                let name = format!("{} {}", st.proto, st.state);
                let open = matches!(key, TimeoutKey::TcpEstablished | TimeoutKey::UdpStream);
                Some(if open && t.secs > tw {
                    (name, tw, true)
                } else {
                    (name, t.secs, false)
                })
            })
            .unwrap_or_else(|| ("tcp TIME_WAIT".to_string(), tw, false));
        let counters = CounterFacts::derive(obs, kernel);
        Facts {
            obs,
            derived: DerivedFacts {
                kernel,
                era,
                demand: Demand::derive(&table, &counters, hold),
                counters,
                churn: Churn::derive(obs, scale, tw),
                cpu: CpuFacts::derive(obs),
                mix,
                table,
                timeouts,
                containers: containers_seen(s),
            },
        }
    }

    /// The timeout in force for a key.
    pub fn timeout(&self, key: TimeoutKey) -> Timeout {
        self.timeouts
            .iter()
            .copied()
            .find(|t| t.key == key)
            .unwrap_or_else(|| self.obs.snapshot.timeout(key))
    }

    /// The chain cap of this kernel: by version ([`ChainCap::of`]), or
    /// 8..31 on an older kernel that reports `chaintoolong` (a stable or
    /// vendor kernel that took d7e7747ac5c2; whether it also took
    /// c77737b736ce's 50..79 is unknown, so the stricter cap is assumed).
    pub fn chain_cap(&self) -> ChainCap {
        match self.kernel.map(ChainCap::of) {
            Some(ChainCap::None) | None
                if !matches!(
                    self.counters.get(Counter::ChainTooLong).status,
                    CounterStatus::NotCountedByKernel { .. } | CounterStatus::NotReported
                ) =>
            {
                ChainCap::Uniform { min: 8, max: 31 }
            }
            Some(c) => c,
            None => ChainCap::None,
        }
    }

    /// Whether the kernel is at least `major.minor` (`None` when unknown).
    pub fn kernel_at_least(&self, major: u16, minor: u16) -> Option<bool> {
        self.kernel.map(|k| k.at_least(major, minor))
    }

    /// Whether NAT is in use: translated flows seen, or NAT rules captured.
    /// `None` when neither flows nor rules were observed.
    pub fn nat_in_use(&self) -> Option<bool> {
        let flows = self.mix.as_ref().map(|m| m.nat_share > 0.0);
        let rules = self
            .obs
            .config
            .nat_rules
            .as_ref()
            .map(|r| !r.source_nat.is_empty() || r.dnat_rules > 0);
        match (flows, rules) {
            (Some(a), Some(b)) => Some(a || b),
            (a, b) => a.or(b),
        }
    }
}
