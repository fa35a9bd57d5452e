//! The planner's rules, one file per concern. Each rule reads the shared
//! [`Ctx`] (the facts, the findings and the policy) and returns an
//! [`Outcome`]; a rule that needs an earlier rule's decision (the new max,
//! the settings to persist) takes that rule's outcome as an argument, so
//! the order the coordinator runs them in is visible in its signature.

pub(crate) mod confirm;
pub(crate) mod helpers;
pub(crate) mod kube_proxy;
pub(crate) mod notrack;
pub(crate) mod persistence;
pub(crate) mod rps;
pub(crate) mod sizing;
pub(crate) mod timeouts;
pub(crate) mod workload;

use crate::plan::{Action, Declined, Evidence, Source, Unjudged, Warning, WarningKind};
use crate::policy::Policy;
use conntrack_analyze::capacity::MemoryModel;
use conntrack_analyze::evidence::group;
use conntrack_analyze::{Facts, Finding, FindingId, Remedy};
use conntrack_core::host::KubeProxy;

/// What every rule reads.
pub(crate) struct Ctx<'f, 'a> {
    /// The model of the host.
    pub facts: &'f Facts<'a>,
    /// The diagnosis.
    pub findings: &'f [Finding],
    /// The operator's policy.
    pub policy: &'f Policy,
    /// Bytes per entry and per bucket on this host.
    pub mem: MemoryModel,
    /// Page size (the hash table's allocation unit derives from it).
    pub page: u64,
    /// The memory budget in bytes, when RAM is known.
    pub budget: Option<u64>,
    /// kube-proxy, when it manages `nf_conntrack_max` here.
    pub kube: Option<KubeProxy>,
}

impl<'f, 'a> Ctx<'f, 'a> {
    pub(crate) fn new(facts: &'f Facts<'a>, findings: &'f [Finding], policy: &'f Policy) -> Self {
        let s = &facts.obs.snapshot;
        let kube = match policy.kube_proxy_manages_max {
            Some(false) => None,
            Some(true) => Some(facts.obs.config.kube_proxy.clone().unwrap_or({
                let mut kube = KubeProxy::default();
                kube.files = vec!["(policy)".to_string()];
                kube
            })),
            None => facts
                .obs
                .config
                .kube_proxy
                .clone()
                .filter(|k| k.manages_max()),
        };
        Ctx {
            facts,
            findings,
            policy,
            mem: MemoryModel::for_host(s),
            page: s.page_size.unwrap_or(4096),
            budget: s
                .mem_total_bytes
                .map(|m| (m as f64 * policy.memory_budget_share) as u64),
            kube,
        }
    }

    /// The finding with this id.
    pub(crate) fn finding(&self, id: FindingId) -> Option<&'f Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    /// The first finding that recommends a remedy.
    pub(crate) fn recommending(&self, r: Remedy) -> Option<&'f Finding> {
        self.findings.iter().find(|f| f.remedies.contains(&r))
    }

    /// A finding as evidence of an action.
    pub(crate) fn cite(&self, f: &Finding) -> Evidence {
        Evidence {
            source: Source::Finding(f.id),
            text: f.title.clone(),
            numbers: f.evidence.iter().take(6).cloned().collect(),
        }
    }

    /// Whether the table is full (the diagnosis says so).
    pub(crate) fn table_full(&self) -> bool {
        self.finding(FindingId::TableFull).is_some()
    }

    /// Whether the table is under pressure: full, or near max at its peak.
    pub(crate) fn pressure(&self) -> bool {
        self.table_full()
            || self
                .facts
                .table
                .peak_utilisation
                .is_some_and(|u| u >= PRESSURE_UTILISATION)
    }

    /// Whether the observation comes from a non-initial namespace.
    pub(crate) fn in_other_netns(&self) -> bool {
        self.facts.table.init_netns == Some(false)
    }

    /// For global values: where to apply them.
    pub(crate) fn init_netns_note(&self) -> &'static str {
        match self.facts.table.init_netns {
            Some(false) => {
                " The observation comes from a non-initial namespace, where this value is \
                 read-only: apply it on the host, in the initial namespace."
            }
            Some(true) => "",
            None => " Apply it in the host's initial namespace (it is read-only elsewhere).",
        }
    }

    /// For per-namespace values observed in another namespace.
    pub(crate) fn observed_netns_note(&self) -> &'static str {
        if self.in_other_netns() {
            " Per namespace: apply it inside the observed namespace (ip netns exec NAME sysctl \
             -w ..., nsenter --net=/proc/PID/ns/net sysctl -w ..., or the container runtime's \
             sysctl settings), not on the host."
        } else {
            ""
        }
    }

    /// Whether NAT is in use (facts or policy).
    pub(crate) fn nat(&self) -> bool {
        self.policy.nat_in_use == Some(true) || self.facts.nat_in_use() == Some(true)
    }
}

/// Utilisation of `max` at the peak above which entry-reducing actions are
/// proposed (the same as diagnosis' pressure threshold).
pub(crate) const PRESSURE_UTILISATION: f64 = 0.7;

/// What a rule decided.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub actions: Vec<Action>,
    pub declined: Vec<Declined>,
    pub unjudged: Vec<Unjudged>,
    pub warnings: Vec<Warning>,
    /// Sysctls to persist (key, value), in order.
    pub persist: Vec<(String, String)>,
}

impl Outcome {
    pub(crate) fn decline(&mut self, what: &str, remedy: Option<Remedy>, why: impl Into<String>) {
        self.declined.push(Declined {
            what: what.to_string(),
            remedy,
            why: why.into(),
        });
    }

    pub(crate) fn unjudged(&mut self, topic: &str, missing: impl Into<String>) {
        self.unjudged.push(Unjudged {
            topic: topic.to_string(),
            missing: missing.into(),
        });
    }

    pub(crate) fn warn(&mut self, kind: WarningKind, text: impl Into<String>) {
        self.warnings.push(Warning {
            kind,
            text: text.into(),
        });
    }

    /// Appends another outcome.
    pub(crate) fn absorb(&mut self, o: Outcome) {
        self.actions.extend(o.actions);
        self.declined.extend(o.declined);
        self.unjudged.extend(o.unjudged);
        self.warnings.extend(o.warnings);
        self.persist.extend(o.persist);
    }
}

/// A count with thousands separators.
pub(crate) fn n(v: u64) -> String {
    group(v.min(i64::MAX as u64) as i64)
}

/// Bytes in MiB.
pub(crate) fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

/// `after - before` in bytes, saturating at the i64 range.
pub(crate) fn delta(after: u64, before: u64) -> i64 {
    let clamp = |v: u64| v.min(i64::MAX as u64) as i64;
    clamp(after).saturating_sub(clamp(before))
}
