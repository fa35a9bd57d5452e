//! What was collected ([`Collected`]), what analysis makes of it
//! ([`Analysis`]: rates, findings, bucket model, memory, tuning plan), and
//! the JSON document of both ([`Report`]).

use super::source::Target;
use super::{EXIT_CRITICAL, EXIT_HEALTHY, EXIT_WARNING};
use conntrack_kit::analyze::buckets::{ChainCap, ChainModel, SimulatedChains, poisson_model};
use conntrack_kit::analyze::capacity::{MemoryCost, mean_chain_length, memory_cost_for};
use conntrack_kit::analyze::hotspots::HotspotSummary;
use conntrack_kit::analyze::rates::StatsSeries;
use conntrack_kit::analyze::{Finding, Rates, Severity, diagnose};
use conntrack_kit::ct_core::HostSnapshot;
use conntrack_kit::tune::plan::Plan;
use conntrack_kit::tune::{Observation, Policy, analyze_input};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What one pass over the flows produced.
#[derive(Debug, Clone)]
pub struct FlowPass {
    /// Where the flows came from.
    pub source: String,
    /// Hotspots, states, NAT, unreplied sources.
    pub hotspots: HotspotSummary,
    /// Chain lengths from hashing the real tuples (keyed SipHash).
    pub chains: Option<SimulatedChains>,
    /// Flows that could not be decoded or parsed (skipped).
    pub malformed: u64,
    /// The first such error.
    pub first_error: Option<String>,
    /// Remarks about the pass.
    pub notes: Vec<String>,
}

/// Everything collected from a live table or a capture.
#[derive(Debug, Clone)]
pub struct Collected {
    /// What was looked at.
    pub target: Target,
    /// Host facts.
    pub snapshot: HostSnapshot,
    /// What could not be read, and other remarks.
    pub notes: Vec<String>,
    /// Statistics samples (two or more give rates).
    pub series: StatsSeries,
    /// Where the statistics came from.
    pub stats_source: Option<String>,
    /// The flow pass, when flows were available.
    pub flows: Option<FlowPass>,
    /// Root of the host's files for the planner's sysctl.d and kube-proxy
    /// checks (`/` live on this host, the capture directory offline).
    pub root: Option<PathBuf>,
    /// `meta.txt` of a capture.
    pub meta: BTreeMap<String, String>,
}

impl Collected {
    /// Whether this is the bundled sample.
    pub fn is_sample(&self) -> bool {
        self.target == Target::Sample
    }

    /// The namespace's entry count.
    pub fn count(&self) -> Option<u32> {
        self.snapshot
            .count
            .or_else(|| self.snapshot.stats.as_ref().and_then(|s| s.entries))
    }

    /// `nf_conntrack_max`.
    pub fn max(&self) -> Option<u32> {
        self.snapshot
            .max
            .or_else(|| self.snapshot.stats.as_ref().and_then(|s| s.max_entries))
    }

    /// The tuning planner's observation.
    pub fn observation(&self, rates: Option<&Rates>) -> Observation {
        let mut obs = analyze_input::observe(
            self.snapshot.clone(),
            rates,
            self.flows.as_ref().map(|f| &f.hotspots),
        );
        if let Some(root) = &self.root {
            analyze_input::scan_root(&mut obs, root);
        } else if self.target.is_live() {
            // Another namespace of this host: the sysctl.d and kube-proxy
            // files are the host's, not the namespace's, but module facts
            // (nf_conntrack and helpers built in or loadable) are the
            // kernel's.
            analyze_input::scan_modules(&mut obs, std::path::Path::new("/"));
        }
        obs
    }
}

/// The table's size, fill and cost.
#[derive(Debug, Clone, Serialize)]
pub struct TableSummary {
    /// Entries.
    pub count: Option<u32>,
    /// `nf_conntrack_max` (0: unlimited).
    pub max: Option<u32>,
    /// count / max in percent.
    pub utilisation_pct: Option<f64>,
    /// `nf_conntrack_buckets`.
    pub buckets: Option<u32>,
    /// The `hashsize` module parameter.
    pub hashsize_param: Option<u32>,
    /// Mean chain length 2N/B.
    pub mean_chain_length: Option<f64>,
    /// Estimated memory at the current count.
    pub memory_now: Option<MemoryCost>,
    /// Estimated memory with the table full.
    pub memory_at_max: Option<MemoryCost>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// Whether the namespace is the initial one.
    pub init_netns: Option<bool>,
}

/// The bucket-distribution estimate.
#[derive(Debug, Clone, Serialize)]
pub struct BucketReport {
    /// The Poisson model for count and buckets.
    pub model: Option<ChainModel>,
    /// Chain lengths from hashing the real tuples.
    pub simulated: Option<SimulatedChains>,
}

/// What analysis made of a collection.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Rates over the window (two or more samples).
    pub rates: Option<Rates>,
    /// Diagnosis, most severe first.
    pub findings: Vec<Finding>,
    /// Size, fill and cost.
    pub table: TableSummary,
    /// Bucket distribution.
    pub buckets: BucketReport,
    /// The tuning plan (or why there is none).
    pub plan: Result<Plan, String>,
}

impl Analysis {
    /// The exit code for the findings: 2 critical, 1 warning, 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self.findings.iter().map(|f| f.severity).max() {
            Some(Severity::Critical) => EXIT_CRITICAL,
            Some(Severity::Warning) => EXIT_WARNING,
            _ => EXIT_HEALTHY,
        }
    }
}

/// Runs every analysis over a collection.
pub fn analyse(c: &Collected) -> Analysis {
    let rates = (c.series.samples().len() >= 2).then(|| c.series.rates());
    let hot = c.flows.as_ref().map(|f| &f.hotspots);
    let findings = diagnose(&c.snapshot, rates.as_ref(), hot);
    let s = &c.snapshot;
    let (count, max, buckets) = (c.count(), c.max(), s.buckets);
    let memory = |entries: Option<u32>| match (entries, buckets) {
        (Some(e), Some(b)) => Some(memory_cost_for(s, u64::from(e), u64::from(b))),
        _ => None,
    };
    let table = TableSummary {
        count,
        max,
        utilisation_pct: match (count, max) {
            (Some(c), Some(m)) if m > 0 => Some(f64::from(c) / f64::from(m) * 100.0),
            _ => None,
        },
        buckets,
        hashsize_param: s.hashsize_param,
        mean_chain_length: count
            .zip(buckets)
            .and_then(|(c, b)| mean_chain_length(u64::from(c), u64::from(b))),
        memory_now: memory(count),
        memory_at_max: memory(max.filter(|&m| m > 0)),
        kernel: s.kernel_release.clone(),
        init_netns: s.init_netns,
    };
    let model = count.zip(buckets).map(|(n, b)| {
        let cap = s.kernel_version.map_or(ChainCap::None, ChainCap::of);
        poisson_model(u64::from(n), u64::from(b), cap)
    });
    let obs = c.observation(rates.as_ref());
    let plan = conntrack_kit::tune::plan(&obs, &Policy::default()).map_err(|e| e.to_string());
    Analysis {
        findings,
        table,
        buckets: BucketReport {
            model,
            simulated: c.flows.as_ref().and_then(|f| f.chains.clone()),
        },
        plan,
        rates,
    }
}

/// The whole report as one JSON document.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// True when this is the bundled sample incident, not this host.
    pub sample: bool,
    /// What was analysed.
    pub source: String,
    /// The capture's description (meta.txt), if any.
    pub description: Option<&'a str>,
    /// The exit code the findings give (0 healthy, 1 warning, 2 critical).
    pub findings_exit_code: i32,
    /// Size, fill and cost.
    pub table: &'a TableSummary,
    /// Where the statistics came from.
    pub stats_source: Option<&'a str>,
    /// Counter rates over the window.
    pub rates: Option<&'a Rates>,
    /// Hotspots, states, NAT.
    pub hotspots: Option<&'a HotspotSummary>,
    /// Flows skipped as malformed.
    pub malformed_flows: u64,
    /// Bucket distribution.
    pub buckets: &'a BucketReport,
    /// Findings, most severe first.
    pub findings: &'a [Finding],
    /// The tuning plan.
    pub plan: Option<&'a Plan>,
    /// Why there is no plan.
    pub plan_error: Option<&'a str>,
    /// Every host fact read.
    pub host: &'a HostSnapshot,
    /// What could not be read, and other remarks.
    pub notes: Vec<&'a str>,
}

impl<'a> Report<'a> {
    /// The report of a collection and its analysis.
    pub fn new(c: &'a Collected, a: &'a Analysis) -> Report<'a> {
        let mut notes: Vec<&str> = c.notes.iter().map(String::as_str).collect();
        if let Some(f) = &c.flows {
            notes.extend(f.notes.iter().map(String::as_str));
        }
        Report {
            sample: c.is_sample(),
            source: c.target.describe(),
            description: c.meta.get("description").map(String::as_str),
            findings_exit_code: a.exit_code(),
            table: &a.table,
            stats_source: c.stats_source.as_deref(),
            rates: a.rates.as_ref(),
            hotspots: c.flows.as_ref().map(|f| &f.hotspots),
            malformed_flows: c.flows.as_ref().map_or(0, |f| f.malformed),
            buckets: &a.buckets,
            findings: &a.findings,
            plan: a.plan.as_ref().ok(),
            plan_error: a.plan.as_ref().err().map(String::as_str),
            host: &c.snapshot,
            notes,
        }
    }
}
