//! The planner: observation + policy -> [`Plan`].
//!
//! Each rule lives in its own function and adds actions, declined
//! proposals, unjudged topics and warnings. Rules never panic on odd input:
//! missing facts become [`Unjudged`] entries, absurd numbers are clamped.

use crate::kube::KubeProxy;
use crate::observe::{Cause, ModuleKind, Observation, parse_service};
use crate::plan::*;
use crate::policy::{Policy, PolicyError, RiskTolerance};
use crate::rps;
use crate::sizing::{self, Era, MemoryModel};
use crate::timeouts;
use conntrack_core::{HostSnapshot, KernelVersion, L4Proto, TcpState};

/// Share of the table a single service must hold before NOTRACK is
/// considered (moderate risk; aggressive halves it).
const NOTRACK_SHARE: f64 = 0.3;
/// Utilisation of `max` above which entry-reducing actions are proposed.
const PRESSURE_UTILISATION: f64 = 0.7;

/// Counter changes the rules read, from rates when present, else the
/// cumulative counters of the snapshot.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    drop: u64,
    insert_failed: u64,
    early_drop: u64,
    clash_resolve: u64,
    chain_too_long: u64,
    /// Per-CPU drops were spread as: CPUs with drops.
    cpus_with_drops: usize,
}

struct Ctx<'a> {
    obs: &'a Observation,
    policy: &'a Policy,
    snap: Option<&'a HostSnapshot>,
    version: Option<KernelVersion>,
    era: Option<Era>,
    page: u64,
    mem: MemoryModel,
    counters: Option<(Counters, &'static str)>,
    count: Option<u64>,
    peak: Option<u64>,
    max: Option<u64>,
    buckets: Option<u64>,
    budget: Option<u64>,
    kube: Option<KubeProxy>,
    plan: Plan,
    /// sysctl key -> value to persist, in order.
    persist: Vec<(String, String)>,
    /// Whether the hash table size should be persisted.
    persist_buckets: Option<u64>,
    /// Proposed max (when raised).
    new_max: Option<u64>,
}

fn fmt_n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `after - before` in bytes, saturating at the i64 range.
fn delta(after: u64, before: u64) -> i64 {
    let clamp = |v: u64| v.min(i64::MAX as u64) as i64;
    clamp(after).saturating_sub(clamp(before))
}

/// `v` rounded to `digits` decimals (non-finite values unchanged).
fn round_to(v: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    let r = (v * k).round() / k;
    if r.is_finite() { r } else { v }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

/// Builds a plan. Fails only when the policy is out of range.
///
/// ```
/// use conntrack_tune::{plan, Observation, Policy};
/// // Nothing observed: nothing proposed, and the plan says why.
/// let p = plan(&Observation::default(), &Policy::default()).unwrap();
/// assert!(p.actions.is_empty());
/// assert!(p.unjudged.iter().any(|u| u.topic == "table sizing"));
/// ```
pub fn plan(obs: &Observation, policy: &Policy) -> Result<Plan, PolicyError> {
    policy.validate()?;
    let mut cx = Ctx::new(obs, policy);
    cx.context();
    cx.kube_proxy();
    cx.sizing();
    cx.rps();
    cx.confirm_failures();
    cx.timeouts();
    cx.workload();
    cx.notrack();
    cx.helpers();
    cx.persistence();
    let mut plan = cx.plan;
    plan.sort();
    Ok(plan)
}

impl<'a> Ctx<'a> {
    fn new(obs: &'a Observation, policy: &'a Policy) -> Self {
        let snap = obs.snapshot.as_ref();
        let version = snap.and_then(|s| {
            s.kernel_version.or_else(|| {
                s.kernel_release
                    .as_deref()
                    .and_then(|r| r.parse::<KernelVersion>().ok())
            })
        });
        let era = version.map(Era::of);
        let page = snap.and_then(|s| s.page_size).unwrap_or(4096);
        let mem = snap
            .map(MemoryModel::for_host)
            .unwrap_or(MemoryModel::PLANNING);
        let count = snap
            .and_then(|s| s.count.or(s.stats.as_ref().and_then(|st| st.entries)))
            .map(u64::from);
        let peak = match (
            obs.rates
                .as_ref()
                .and_then(|r| r.peak_entries)
                .map(u64::from),
            count,
        ) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let max = snap
            .and_then(|s| s.max.or(s.stats.as_ref().and_then(|st| st.max_entries)))
            .map(u64::from);
        let buckets = snap
            .and_then(|s| s.buckets.or(s.hashsize_param))
            .map(u64::from);
        let budget = snap
            .and_then(|s| s.mem_total_bytes)
            .map(|m| (m as f64 * policy.memory_budget_share) as u64);
        let counters = counters_of(obs);
        let kube = match policy.kube_proxy_manages_max {
            Some(false) => None,
            Some(true) => Some(obs.kube_proxy.clone().unwrap_or(KubeProxy {
                files: vec!["(policy)".to_string()],
                ..Default::default()
            })),
            None => obs.kube_proxy.clone().filter(|k| k.manages_max()),
        };
        Ctx {
            obs,
            policy,
            snap,
            version,
            era,
            page,
            mem,
            counters,
            count,
            peak,
            max,
            buckets,
            budget,
            kube,
            plan: Plan::default(),
            persist: Vec::new(),
            persist_buckets: None,
            new_max: None,
        }
    }

    fn unjudged(&mut self, topic: &str, missing: &str) {
        self.plan.unjudged.push(Unjudged {
            topic: topic.to_string(),
            missing: missing.to_string(),
        });
    }

    fn declined(&mut self, what: &str, why: String) {
        self.plan.declined.push(Declined {
            what: what.to_string(),
            why,
        });
    }

    fn warn(&mut self, kind: WarningKind, text: String) {
        self.plan.warnings.push(Warning { kind, text });
    }

    fn has_finding(&self, c: Cause) -> Option<&'a crate::observe::Finding> {
        self.obs.findings.iter().find(|f| f.cause == c)
    }

    fn finding_evidence(&self, c: Cause) -> Option<Evidence> {
        self.has_finding(c).map(finding_to_evidence)
    }

    fn init_netns_note(&self) -> &'static str {
        match self.snap.and_then(|s| s.init_netns) {
            Some(false) => {
                " The observation comes from a non-initial namespace, where this value is \
                 read-only: apply it on the host, in the initial namespace."
            }
            Some(true) => "",
            None => " Apply it in the host's initial namespace (it is read-only elsewhere).",
        }
    }

    /// Whether the observation comes from a non-initial network namespace.
    fn in_other_netns(&self) -> bool {
        self.snap.and_then(|s| s.init_netns) == Some(false)
    }

    /// For per-namespace values: where to apply them when the observation
    /// comes from another namespace.
    fn observed_netns_note(&self) -> &'static str {
        if self.in_other_netns() {
            " Per namespace: apply it inside the observed namespace (ip netns exec NAME \
             sysctl -w ..., nsenter --net=/proc/PID/ns/net sysctl -w ..., or the container \
             runtime's sysctl settings), not on the host."
        } else {
            ""
        }
    }

    /// When the flow summary is a sample of a larger table (its total below
    /// the entry count), the factor that scales its counts to the table.
    fn sample_scale(&self) -> f64 {
        match (self.count, self.obs.flows.as_ref().map(|f| f.total)) {
            (Some(c), Some(t)) if t > 0 && c > t => c as f64 / t as f64,
            _ => 1.0,
        }
    }

    fn scale_count(&self, n: u64) -> u64 {
        let v = (n as f64 * self.sample_scale()).round();
        if v.is_finite() && v < u64::MAX as f64 {
            v as u64
        } else {
            u64::MAX
        }
    }

    fn scaled(&self, s: timeouts::Shortening) -> timeouts::Shortening {
        timeouts::Shortening {
            entries_now: self.scale_count(s.entries_now),
            entries_after: self.scale_count(s.entries_after),
            freed: self.scale_count(s.freed),
            rate_per_sec: s.rate_per_sec * self.sample_scale(),
        }
    }

    fn sample_evidence(&self) -> Option<Evidence> {
        let k = self.sample_scale();
        let f = self.obs.flows.as_ref()?;
        (k > 1.0).then(|| {
            Evidence::new(
                "flows",
                format!(
                    "the flows are a sample of {} of {} entries: counts are scaled by {:.1}",
                    fmt_n(f.total),
                    fmt_n(self.count.unwrap_or(0)),
                    k
                ),
            )
            .num("sample_scale", k)
        })
    }

    fn utilisation(&self) -> Option<f64> {
        match (self.peak, self.max) {
            (Some(p), Some(m)) if m > 0 => Some(p as f64 / m as f64),
            _ => None,
        }
    }

    fn table_full(&self) -> bool {
        if self.has_finding(Cause::TableFull).is_some() {
            return true;
        }
        let Some((c, _)) = self.counters else {
            return false;
        };
        c.early_drop > 0 || (c.drop > 0 && self.utilisation().is_some_and(|u| u >= 0.95))
    }

    fn pressure(&self) -> bool {
        self.table_full()
            || self
                .utilisation()
                .is_some_and(|u| u >= PRESSURE_UTILISATION)
    }

    fn nat_observed(&self) -> bool {
        self.policy.nat_in_use == Some(true) || self.obs.flows.as_ref().is_some_and(|f| f.nat > 0)
    }

    fn context(&mut self) {
        self.plan.context = PlanContext {
            kernel: self.version.map(|v| v.to_string()),
            era: self.era.map(|e| e.name().to_string()),
            init_netns: self.snap.and_then(|s| s.init_netns),
            count: self.count.map(|v| v as u32),
            peak: self.peak.map(|v| v.min(u32::MAX as u64) as u32),
            max: self.max.map(|v| v as u32),
            buckets: self.buckets.map(|v| v as u32),
            memory_budget_bytes: self.budget,
        };
        if self.snap.is_none() {
            self.unjudged(
                "host",
                "no host snapshot: kernel era, table size and RAM unknown",
            );
        } else if self.version.is_none() {
            self.unjudged(
                "kernel era",
                "kernel version unknown: assuming the >= 5.15 sizing rules",
            );
        }
        if self.counters.is_none() {
            self.unjudged(
                "drops",
                "no counters (neither rates nor /proc/net/stat/nf_conntrack): cannot tell \
                 table-full drops from confirm-time failures",
            );
        } else if let Some((_, "stats")) = self.counters {
            self.unjudged(
                "drop timing",
                "no rates over a window: counters are cumulative since boot and may describe \
                 an old incident",
            );
        }
    }

    fn kube_proxy(&mut self) {
        let Some(k) = self.kube.clone() else {
            return;
        };
        let cpus = self.snap.map(|s| s.cpus_online.len() as u32).unwrap_or(0);
        // Without the CPU count the value kube-proxy sets is unknown.
        let eff = (cpus > 0).then(|| k.effective_max(cpus)).flatten();
        let mut text = format!(
            "kube-proxy is configured here ({}) and sets nf_conntrack_max at start",
            k.files.join(", ")
        );
        if let Some(m) = eff {
            text.push_str(&format!(
                " to max(maxPerCore x CPUs, min) = {} on {} CPUs",
                fmt_n(m),
                cpus
            ));
        }
        text.push_str(
            ", and raises the hash table to max/4 buckets when smaller (mean chain 8 at a full \
             table). A value persisted in sysctl.d is overwritten when kube-proxy restarts: set \
             conntrack.maxPerCore/min in kube-proxy's configuration instead.",
        );
        if k.tcp_established_timeout.is_some() || k.tcp_close_wait_timeout.is_some() {
            text.push_str(" It also rewrites the TCP established/close-wait timeouts.");
        }
        self.warn(WarningKind::KubeProxyManaged, text);
    }

    fn sizing(&mut self) {
        let (Some(peak), Some(max), Some(buckets)) = (self.peak, self.max, self.buckets) else {
            self.unjudged(
                "table sizing",
                "needs the entry count (or peak), nf_conntrack_max and the bucket count",
            );
            return;
        };
        if self.budget.is_none() {
            self.unjudged(
                "memory budget",
                "MemTotal unknown: sizing proceeds without a memory budget check",
            );
        }
        let policy = self.policy;
        let target = policy.max_chain_length;
        let full = self.table_full();
        let era = self.era.unwrap_or(Era::OneToOne);

        // Demand: the peak, or more when the table was full (the peak is
        // censored at max) and the arrival rate says so.
        let mut demand = peak;
        if full {
            let mut text = format!(
                "the table was full (peak {} of max {}): the observed peak is censored and the \
                 real demand may be higher",
                fmt_n(peak),
                fmt_n(max)
            );
            if let Some(est) = self.censored_demand(peak) {
                text.push_str(&format!(
                    "; from the new-flow rate and the TIME_WAIT timeout (Little's law) demand \
                     is about {}",
                    fmt_n(est)
                ));
                demand = demand.max(est);
            }
            self.warn(WarningKind::PeakCensored, text);
        }
        let required = (demand as f64 * policy.headroom).ceil() as u64;
        let mut final_max = max;
        let mut evidence = vec![
            Evidence::new(
                "snapshot",
                format!(
                    "peak {} entries, max {}, buckets {}",
                    fmt_n(peak),
                    fmt_n(max),
                    fmt_n(buckets)
                ),
            )
            .num("peak", peak as f64)
            .num("max", max as f64)
            .num("buckets", buckets as f64),
            Evidence::new(
                "policy",
                format!(
                    "headroom {} over demand {}: max must be at least {}",
                    policy.headroom,
                    fmt_n(demand),
                    fmt_n(required)
                ),
            )
            .num("required_max", required as f64),
        ];
        if let Some((c, src)) = self.counters {
            evidence.push(
                Evidence::new(
                    src,
                    format!(
                        "drop {}, early_drop {}, insert_failed {}",
                        c.drop, c.early_drop, c.insert_failed
                    ),
                )
                .num("drop", c.drop as f64)
                .num("early_drop", c.early_drop as f64),
            );
        }
        if let Some(e) = self.finding_evidence(Cause::TableFull) {
            evidence.push(e);
        }

        if max == 0 {
            self.declined(
                "raise-max",
                "nf_conntrack_max is 0 (unlimited): nothing to raise".into(),
            );
        } else if max < required {
            let proposed = sizing::round_buckets(required, self.page).max(required);
            let new_buckets = buckets.max(sizing::buckets_for(proposed, target, self.page));
            let bytes = self.mem.bytes(proposed, new_buckets);
            match self.budget {
                Some(b) if bytes > b => {
                    let fits = self.mem.max_within(b, target, self.page);
                    self.warn(
                        WarningKind::BudgetConflict,
                        format!(
                            "the memory budget ({} = {}% of RAM) and the headroom cannot both be \
                             met: max {} with {} buckets needs {} worst case; the budget holds \
                             max {} at most. Raise the budget, or reduce entries first (see the \
                             timeout and workload actions).",
                            mib(b),
                            policy.memory_budget_share * 100.0,
                            fmt_n(proposed),
                            fmt_n(new_buckets),
                            mib(bytes),
                            fmt_n(fits)
                        ),
                    );
                    self.declined(
                        "raise-max",
                        format!(
                            "max {} would exceed the memory budget; a max below {} would break \
                             the headroom rule",
                            fmt_n(proposed),
                            fmt_n(required)
                        ),
                    );
                }
                _ => {
                    final_max = proposed;
                    self.new_max = Some(proposed);
                    let before = self.mem.bytes(max, buckets);
                    let prio = if full { Priority::P0 } else { Priority::P1 };
                    let mut title = format!("Raise nf_conntrack_max to {}", fmt_n(proposed));
                    if new_buckets > buckets {
                        title.push_str(&format!(" (with buckets {})", fmt_n(new_buckets)));
                    }
                    self.plan.actions.push(Action {
                        id: "raise-max".into(),
                        priority: prio,
                        kind: ActionKind::SetSysctl {
                            key: KEY_MAX.into(),
                            value: proposed.to_string(),
                        },
                        title,
                        scope: Scope::HostInitNamespace,
                        change: Some(Change {
                            target: KEY_MAX.into(),
                            current: Some(max.to_string()),
                            proposed: proposed.to_string(),
                        }),
                        evidence: evidence.clone(),
                        effect: Effect {
                            memory_delta_bytes: Some(delta(bytes, before)),
                            memory_after_bytes: Some(bytes),
                            entries_freed: None,
                            chain_length_after: Some(sizing::chain_length(proposed, new_buckets)),
                            text: format!(
                                "room for {} entries ({:.1}x the demand); worst-case memory {} \
                                 (entries are allocated on demand, buckets up front).{}",
                                fmt_n(proposed),
                                proposed as f64 / demand.max(1) as f64,
                                mib(bytes),
                                self.init_netns_note()
                            ),
                        },
                        risk: Risk {
                            level: RiskLevel::Low,
                            text: "more entries use more memory under load; the limit is global \
                                   and applies to every namespace's own count"
                                .into(),
                        },
                        rollback: format!("sysctl -w {KEY_MAX}={max}"),
                        verify: vec![
                            Verify::ReadBack {
                                path: sysctl_path(KEY_MAX),
                                expected: proposed.to_string(),
                            },
                            Verify::CounterFlat {
                                counter: "drop".into(),
                            },
                            Verify::CounterFlat {
                                counter: "early_drop".into(),
                            },
                        ],
                    });
                    self.persist.push((KEY_MAX.into(), proposed.to_string()));
                }
            }
        } else {
            // Not a change proposal: say why raising is not the answer.
            self.declined(
                "raise-max",
                format!(
                    "peak {} is {:.1}% of max {}: the limit is not the problem",
                    fmt_n(peak),
                    100.0 * peak as f64 / max as f64,
                    fmt_n(max)
                ),
            );
            let committed = self.mem.bytes(max, buckets);
            if let Some(b) = self.budget.filter(|&b| committed > b) {
                self.warn(
                    WarningKind::OverBudget,
                    format!(
                        "the current max {} commits up to {} worst case, over the budget of {}; \
                         the policy's headroom needs only {}. Nothing is proposed: lowering max \
                         frees no memory until the table fills, and risks drops",
                        fmt_n(max),
                        mib(committed),
                        mib(b),
                        fmt_n(required)
                    ),
                );
            }
        }

        // Buckets: keep 2 x max / buckets at or under the target.
        let chain_now = sizing::chain_length(final_max, buckets);
        let needed = sizing::buckets_for(final_max, target, self.page);
        if sizing::chain_length(final_max, needed) > target {
            self.declined(
                "buckets",
                format!(
                    "a mean chain of {target} at max {} needs more buckets than the kernel's \
                     32-bit table size allows",
                    fmt_n(final_max)
                ),
            );
            return;
        }
        if needed > buckets {
            let bytes = self.mem.bytes(final_max, needed);
            if let Some(b) = self.budget.filter(|&b| bytes > b) {
                self.warn(
                    WarningKind::BudgetConflict,
                    format!(
                        "keeping the mean chain at {} for max {} needs {} buckets and {} worst \
                         case, over the budget of {}: the budget and the chain target cannot \
                         both be met at this max",
                        target,
                        fmt_n(final_max),
                        fmt_n(needed),
                        mib(bytes),
                        mib(b)
                    ),
                );
                self.declined("buckets", "over the memory budget".into());
                return;
            }
            let chain_evidence = self.counters.map(|(c, _)| c.chain_too_long).unwrap_or(0) > 0
                || self.has_finding(Cause::ChainTooLong).is_some();
            let prio = if self.new_max.is_some() && full {
                Priority::P0
            } else if chain_evidence {
                Priority::P1
            } else {
                Priority::P3
            };
            let via_sysctl = self.version.is_none_or(|v| v.at_least(4, 9));
            let mut ev = vec![
                Evidence::new(
                    "snapshot",
                    format!(
                        "mean chain length at a full table is 2 x {} / {} = {:.1}, over the \
                         target {}",
                        fmt_n(final_max),
                        fmt_n(buckets),
                        chain_now,
                        target
                    ),
                )
                .num("chain_length_at_max", chain_now),
            ];
            if buckets * 4 == max {
                ev.push(Evidence::new(
                    "kernel",
                    "buckets = max/4 is the pre-5.15 default ratio (and kube-proxy's); since \
                     5.15 (d532bcd0b269) the default is 1:1 so a full table averages 2",
                ));
            } else if buckets * 8 == max {
                ev.push(Evidence::new(
                    "kernel",
                    "max = 8 x buckets is what the kernel sets when hashsize is given \
                     explicitly; raising max later does not resize the table",
                ));
            }
            if let Some((c, src)) = self.counters.filter(|(c, _)| c.chain_too_long > 0) {
                ev.push(
                    Evidence::new(src, format!("chaintoolong {}", c.chain_too_long))
                        .num("chaintoolong", c.chain_too_long as f64),
                );
            }
            if let Some(e) = self.finding_evidence(Cause::ChainTooLong) {
                ev.push(e);
            }
            if let Some(e) = self
                .era
                .filter(|e| *e != Era::OneToOne)
                .map(|_| Evidence::new("kernel", format!("kernel era {}", era.name())))
            {
                ev.push(e);
            }
            let target_path = if via_sysctl {
                sysctl_path(KEY_BUCKETS)
            } else {
                HASHSIZE_PARAM_PATH.to_string()
            };
            let before = self.mem.bytes(final_max, buckets);
            self.plan.actions.push(Action {
                id: "buckets".into(),
                priority: prio,
                kind: ActionKind::SetBuckets {
                    buckets: needed.min(u32::MAX as u64) as u32,
                    via_sysctl,
                },
                title: format!("Resize the hash table to {} buckets", fmt_n(needed)),
                scope: Scope::HostInitNamespace,
                change: Some(Change {
                    target: if via_sysctl {
                        KEY_BUCKETS.into()
                    } else {
                        HASHSIZE_PARAM_PATH.into()
                    },
                    current: Some(buckets.to_string()),
                    proposed: needed.to_string(),
                }),
                evidence: ev,
                effect: Effect {
                    memory_delta_bytes: Some(delta(bytes, before)),
                    memory_after_bytes: Some(bytes),
                    entries_freed: None,
                    chain_length_after: Some(sizing::chain_length(final_max, needed)),
                    text: format!(
                        "mean chain at a full table {:.2} (rounded up to the allocation unit of \
                         {} buckets); the resize does not change nf_conntrack_max.{}",
                        sizing::chain_length(final_max, needed),
                        sizing::allocation_unit(self.page),
                        self.init_netns_note()
                    ),
                },
                risk: Risk {
                    level: RiskLevel::Low,
                    text: "the resize rehashes every entry under the table lock: a short \
                           latency spike on a busy host, and lookups restart \
                           (search_restart) while it runs"
                        .into(),
                },
                rollback: format!("echo {buckets} > {target_path}"),
                verify: vec![
                    Verify::ReadBack {
                        path: target_path,
                        expected: needed.to_string(),
                    },
                    Verify::CounterFlat {
                        counter: "chaintoolong".into(),
                    },
                ],
            });
            self.persist_buckets = Some(needed);
        }
    }

    /// Demand when the table was full: entries not in TIME_WAIT plus the
    /// TIME_WAIT population the new-flow rate sustains.
    fn censored_demand(&self, peak: u64) -> Option<u64> {
        let rate = self.obs.rates.as_ref()?.new_flows_per_sec?;
        if !(rate.is_finite() && rate > 0.0) {
            return None;
        }
        let tw = self.timeout_now("tcp_timeout_time_wait") as f64;
        let tw_now = self
            .obs
            .flows
            .as_ref()
            .map(|f| {
                let share = f.tcp_state(TcpState::TIME_WAIT) as f64 / f.total.max(1) as f64;
                (share * peak as f64) as u64
            })
            .unwrap_or(0);
        let est = sizing::littles_law(rate, tw) + peak.saturating_sub(tw_now) as f64;
        (est.is_finite() && est < 1e12).then_some(est as u64)
    }

    fn timeout_now(&self, short: &str) -> u32 {
        let s = self.snap;
        let (proto, state) = match short.split_once("_timeout") {
            Some((p, rest)) => (p, rest.trim_start_matches('_')),
            None => (short, ""),
        };
        let state = if state.is_empty() { "default" } else { state };
        s.and_then(|s| s.timeouts.get(proto).and_then(|m| m.get(state)).copied())
            .or_else(|| {
                s.and_then(|s| s.sysctls.get(&format!("nf_conntrack_{short}")))
                    .and_then(|v| v.trim().parse().ok())
            })
            .or_else(|| timeouts::default_secs(short))
            .unwrap_or(0)
    }

    fn cpu_load(&self) -> Option<(Vec<u64>, &'static str)> {
        if let Some(r) = self
            .obs
            .rates
            .as_ref()
            .filter(|r| !r.net_rx_per_cpu.is_empty())
        {
            return Some((r.net_rx_per_cpu.clone(), "rates"));
        }
        if let Some(s) = self.snap.filter(|s| !s.net_rx_softirqs.is_empty()) {
            return Some((s.net_rx_softirqs.clone(), "snapshot"));
        }
        // No softirq counts: per-CPU drops and insert failures over the
        // window show the same concentration.
        let r = self.obs.rates.as_ref().filter(|r| r.per_cpu.len() >= 2)?;
        let load: Vec<u64> = r
            .per_cpu
            .iter()
            .map(|c| c.drop.saturating_add(c.insert_failed))
            .collect();
        (load.iter().any(|&v| v > 0)).then_some((load, "rates (drops per CPU)"))
    }

    /// Receive Packet Steering. Proposed per real (non-virtual) interface
    /// with RPS off when per-CPU work is concentrated ([`rps::imbalance`]:
    /// judged by the busiest CPU's share against its fair share `1/n`, so
    /// it works on 2 CPUs). conntrack-analyze's `cpu-imbalance` finding
    /// (failures concentrated on one CPU with RPS off) is evidence too:
    /// when it is present and no RPS action results, the plan says
    /// precisely why under "Not proposed" (no rx queue known, only virtual
    /// interfaces, RPS already on, as many queues as CPUs, or the packet
    /// processing itself already spread).
    fn rps(&mut self) {
        let Some(snap) = self.snap else {
            return;
        };
        let finding = self.has_finding(Cause::CpuImbalance);
        let reported = finding.map(|f| {
            format!(
                "conntrack-analyze reports {} ({}), ",
                f.id,
                f.text.split(':').next().unwrap_or(&f.text)
            )
        });
        if snap.rx_queues.is_empty() {
            match &reported {
                Some(r) => self.declined(
                    "rps",
                    format!(
                        "{r}but no rx queue of any interface is known (/sys/class/net/*/queues \
                         was not read): no rps_cpus mask can be built; set \
                         /sys/class/net/IFACE/queues/rx-*/rps_cpus by hand on the interface \
                         that receives the traffic"
                    ),
                ),
                None => self.unjudged("rps", "no rx queue information (/sys/class/net/*/queues)"),
            }
            return;
        }
        let Some((load, src)) = self.cpu_load() else {
            match &reported {
                Some(r) => self.declined(
                    "rps",
                    format!(
                        "{r}but neither NET_RX softirq counts nor per-CPU counter rates were \
                         observed: the concentration cannot be measured to build the masks from"
                    ),
                ),
                None => self.unjudged("rps", "no per-CPU NET_RX softirq counts"),
            }
            return;
        };
        let what_load = if src.starts_with("rates (drops") {
            "conntrack drops and insert failures"
        } else {
            "NET_RX softirq work"
        };
        // CPU id of a load position (softirq columns are named by CPU).
        let cpu_of = |pos: u32| -> u32 {
            if src == "snapshot" {
                snap.net_rx_softirq_cpus
                    .get(pos as usize)
                    .copied()
                    .unwrap_or(pos)
            } else {
                pos
            }
        };
        let Some(imb) = rps::imbalance(&load) else {
            let sum: f64 = load.iter().map(|&v| v as f64).sum();
            let max = load.iter().copied().max().unwrap_or(0) as f64;
            let n = load.len().max(1);
            let spread = format!(
                "{what_load} is spread: the busiest of {n} CPUs takes {:.1}% (fair share \
                 {:.1}%)",
                if sum > 0.0 { 100.0 * max / sum } else { 0.0 },
                100.0 / n as f64
            );
            let why = match &reported {
                Some(r) => format!(
                    "{r}but {spread}. RPS spreads packet processing, which is already spread; \
                     the concentrated failures come from the traffic (one flow or source \
                     racing), not from one receive queue"
                ),
                None => spread,
            };
            self.declined("rps", why);
            return;
        };
        let busiest_pos = load
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| **v)
            .map(|(i, _)| i as u32)
            .unwrap_or(0);
        let busiest_cpu = cpu_of(busiest_pos);
        let online: Vec<u32> = if !snap.cpus_online.is_empty() {
            snap.cpus_online.clone()
        } else if !snap.cpus_possible.is_empty() {
            snap.cpus_possible.clone()
        } else {
            (0..load.len() as u32).collect()
        };
        let mut ifaces: Vec<&str> = snap.rx_queues.iter().map(|q| q.iface.as_str()).collect();
        ifaces.sort_unstable();
        ifaces.dedup();
        let mut skipped_virtual: Vec<&str> = Vec::new();
        let actions_before = self.plan.actions.len();
        let declined_before = self.plan.declined.len();
        for iface in ifaces {
            let what = format!("rps:{iface}");
            if !rps::valid_ifname(iface) {
                self.declined(
                    &what,
                    "not a valid interface name (dev_valid_name): refusing to build a path \
                     from it"
                        .into(),
                );
                continue;
            }
            if rps::is_virtual(iface) {
                skipped_virtual.push(iface);
                continue;
            }
            let queues: Vec<&conntrack_core::RxQueue> =
                snap.rx_queues.iter().filter(|q| q.iface == iface).collect();
            if queues.iter().any(|q| !q.rps_cpus.is_empty()) {
                self.declined(&what, "RPS is already on for this interface".into());
                continue;
            }
            if queues.len() >= online.len() {
                self.declined(
                    &what,
                    format!(
                        "{} rx queues for {} CPUs: hardware RSS already spreads the load",
                        queues.len(),
                        online.len()
                    ),
                );
                continue;
            }
            let qids: Vec<u32> = queues.iter().map(|q| q.queue).collect();
            let masks = rps::queue_masks(&online, &qids);
            let mut ev = vec![
                Evidence::new(
                    src,
                    format!(
                        "{what_load}: CPU {busiest_cpu} takes {:.1}% of it on {} CPUs (fair \
                         share {:.1}%; {} busy, effectively {:.1} CPUs, busiest at {:.2}x the \
                         mean); RPS off on {iface} ({} rx queue{})",
                        imb.busiest_share * 100.0,
                        imb.cpus,
                        100.0 / f64::from(imb.cpus.max(1)),
                        imb.busy.len(),
                        imb.effective_cpus,
                        imb.peak_over_mean,
                        queues.len(),
                        if queues.len() == 1 { "" } else { "s" }
                    ),
                )
                .num("busy_cpus", imb.busy.len() as f64)
                .num("cpus", imb.cpus as f64)
                // Rounded: short decimals survive the JSON round trip.
                .num("busiest_share_pct", round_to(imb.busiest_share * 100.0, 2))
                .num("effective_cpus", round_to(imb.effective_cpus, 3))
                .num("peak_over_mean", round_to(imb.peak_over_mean, 3)),
            ];
            if let Some((c, csrc)) = self.counters.filter(|(c, _)| c.cpus_with_drops > 0) {
                ev.push(
                    Evidence::new(
                        csrc,
                        format!(
                            "conntrack drops on {} CPUs ({} in total)",
                            c.cpus_with_drops, c.drop
                        ),
                    )
                    .num("cpus_with_drops", c.cpus_with_drops as f64),
                );
            }
            if let Some(e) = self.finding_evidence(Cause::CpuImbalance) {
                ev.push(e);
            }
            let desc: Vec<String> = masks
                .iter()
                .map(|m| format!("rx-{}={}", m.queue, m.mask))
                .collect();
            self.plan.actions.push(Action {
                id: what,
                priority: Priority::P1,
                kind: ActionKind::EnableRps {
                    iface: iface.to_string(),
                    queues: masks.clone(),
                },
                title: format!("Enable RPS on {iface} across {} CPUs", online.len()),
                scope: Scope::Interface,
                change: Some(Change {
                    target: format!("/sys/class/net/{iface}/queues/rx-*/rps_cpus"),
                    current: Some("0".into()),
                    proposed: desc.join(" "),
                }),
                evidence: ev,
                effect: Effect {
                    text: format!(
                        "packet processing (and conntrack lookups/inserts) of {iface}'s {} rx \
                         queue{} spreads over all {} CPUs instead of {}; fewer drops from \
                         saturated CPUs",
                        qids.len(),
                        if qids.len() == 1 { "" } else { "s" },
                        online.len(),
                        imb.busy.len()
                    ),
                    ..Default::default()
                },
                risk: Risk {
                    level: RiskLevel::Low,
                    text: "an inter-processor interrupt per steered batch costs some CPU; not \
                           persistent across reboot (use a udev rule or a systemd unit)"
                        .into(),
                },
                rollback: format!(
                    "echo 0 > /sys/class/net/{iface}/queues/rx-N/rps_cpus for each queue"
                ),
                verify: masks
                    .iter()
                    .map(|m| Verify::ReadBack {
                        path: rps_path(iface, m.queue),
                        expected: m.mask.clone(),
                    })
                    .chain(std::iter::once(Verify::Manual {
                        text: "NET_RX columns of /proc/softirqs grow on every CPU".into(),
                    }))
                    .collect(),
            });
        }
        let proposed = self.plan.actions.len() > actions_before;
        let explained = self.plan.declined.len() > declined_before;
        if !proposed && !explained {
            let lead = reported.unwrap_or_else(|| {
                format!(
                    "{what_load} is concentrated (CPU {busiest_cpu} takes {:.1}% on {} CPUs), ",
                    imb.busiest_share * 100.0,
                    imb.cpus
                )
            });
            self.declined(
                "rps",
                format!(
                    "{lead}but every interface with known rx queues is virtual ({}): RPS belongs \
                     on the physical interface that receives the traffic, which this \
                     observation does not show",
                    skipped_virtual.join(", ")
                ),
            );
        }
    }
    /// insert_failed == drop with the table far from full: the drops are
    /// confirm-time failures (clash or chain cap), not a full table.
    fn confirm_failures(&mut self) {
        let finding = self
            .has_finding(Cause::Clash)
            .or_else(|| self.has_finding(Cause::ChainTooLong));
        let Some((c, src)) = self.counters else {
            return;
        };
        let counters_say = c.insert_failed > 0
            && c.early_drop == 0
            && c.drop > 0
            && (c.drop as f64 - c.insert_failed as f64).abs() <= 0.1 * c.drop as f64
            && self.utilisation().is_none_or(|u| u < 0.5);
        if !(counters_say || finding.is_some()) {
            return;
        }
        let util = self.utilisation();
        let mut ev = vec![
            Evidence::new(
                src,
                format!(
                    "insert_failed {} ~ drop {}, early_drop 0{}: confirm-time failures, not a \
                     full table",
                    c.insert_failed,
                    c.drop,
                    util.map(|u| format!(", table {:.1}% used", u * 100.0))
                        .unwrap_or_default()
                ),
            )
            .num("insert_failed", c.insert_failed as f64)
            .num("drop", c.drop as f64),
        ];
        if let Some(f) = finding {
            ev.push(finding_to_evidence(f));
        }
        if c.chain_too_long > 0 && self.plan.action("buckets").is_none() {
            ev.push(Evidence::new(
                src,
                format!(
                    "chaintoolong {} although the mean chain is within target: entries with \
                     nearly identical tuples pile into the same chains",
                    c.chain_too_long
                ),
            ));
        }
        if c.clash_resolve > 0 || c.chain_too_long == 0 {
            ev.push(
                Evidence::new(
                    src,
                    format!(
                        "clash_resolve {}: parallel packets of the same new flow race to \
                         confirm it on different CPUs (typically UDP DNS A/AAAA queries from \
                         one socket)",
                        c.clash_resolve
                    ),
                )
                .num("clash_resolve", c.clash_resolve as f64),
            );
        }
        // UDP clashes are mostly resolved in the kernel since 5.6
        // (6a757c07e51f, nf_ct_resolve_clash_harder).
        let old_kernel = self.version.is_some_and(|v| !v.at_least(5, 6));
        // DNS is the usual culprit; say so only when the flows allow it.
        let dns = self
            .obs
            .flows
            .as_ref()
            .is_none_or(|f| f.services.contains_key("udp/53"));
        let mut text = if dns {
            String::from(
                "Avoid parallel queries on one socket: glibc `options single-request-reopen` \
                 (or `single-request`) in resolv.conf; for musl-based images, which ignore it, \
                 use a node-local DNS cache (Kubernetes NodeLocal DNSCache) or DNS over TCP.",
            )
        } else {
            String::from(
                "Find the client that sends the first packets of one flow from several threads \
                 at once (one UDP socket shared by workers, or a fixed source port) and \
                 serialise them, or give each worker its own socket.",
            )
        };
        if old_kernel {
            text.push_str(
                " This kernel predates 5.6 (commit 6a757c07e51f \"netfilter: conntrack: allow \
                 insertion of clashing entries\"): upgrading resolves most UDP clashes in the \
                 kernel.",
            );
        }
        self.plan.actions.push(Action {
            id: "advice:dns-clash".into(),
            priority: Priority::P2,
            kind: ActionKind::Advice {
                topic: crate::plan::AdviceTopic::DnsClash,
            },
            title: if dns {
                "Stop same-tuple races at the source (DNS A/AAAA over one socket)".into()
            } else {
                "Stop same-tuple races at the source (parallel first packets of one flow)".into()
            },
            scope: Scope::Workload,
            change: None,
            evidence: ev,
            effect: Effect {
                text,
                ..Default::default()
            },
            risk: Risk {
                level: RiskLevel::Low,
                text: "sequential queries add one round trip when both answers are needed".into(),
            },
            rollback: "remove the resolver option".into(),
            verify: vec![
                Verify::CounterFlat {
                    counter: "insert_failed".into(),
                },
                Verify::CounterFlat {
                    counter: "drop".into(),
                },
            ],
        });
    }

    fn timeouts(&mut self) {
        let Some(flows) = self.obs.flows.as_ref() else {
            self.unjudged(
                "timeouts",
                "no flow summary: the remaining-timeout histograms justify timeout changes",
            );
            return;
        };
        if flows.total == 0 {
            return;
        }
        let pressure = self.pressure() || self.new_max.is_some();
        let nat = self.nat_observed();
        let risk = self.policy.risk;

        // TIME_WAIT.
        let tw = flows.tcp_state(TcpState::TIME_WAIT);
        let tw_share = tw as f64 / flows.total as f64;
        if tw_share >= 0.2 && pressure {
            let short = "tcp_timeout_time_wait";
            let key = timeouts::key(short);
            let cur = self.timeout_now(short);
            let floor = timeouts::floor(short, nat).unwrap_or(timeouts::Floor {
                secs: 60,
                reason: "",
            });
            let target = if risk == RiskTolerance::Conservative {
                60
            } else {
                30
            };
            let proposed = target.max(floor.secs);
            if self.policy.is_protected(&key) {
                self.declined(&key, "protected by the policy".into());
            } else if proposed < cur {
                match flows.remaining.get("TIME_WAIT") {
                    None => self.unjudged(
                        "TIME_WAIT timeout",
                        "TIME_WAIT entries counted but no remaining-timeout histogram",
                    ),
                    Some(h) => {
                        let s = self.scaled(timeouts::shorten_fresh_state(h, cur, proposed));
                        let ev = vec![
                            Evidence::new(
                                "flows",
                                format!(
                                    "{} of {} entries ({:.0}%) are TIME_WAIT; {:.1} enter per \
                                     second (entries with more than {} s of {} s left)",
                                    fmt_n(tw),
                                    fmt_n(flows.total),
                                    tw_share * 100.0,
                                    s.rate_per_sec,
                                    cur - (cur / 4).max(1),
                                    cur
                                ),
                            )
                            .num("time_wait", tw as f64)
                            .num("rate_per_sec", s.rate_per_sec),
                        ];
                        self.push_timeout(key, short, cur, proposed, floor, s, ev);
                    }
                }
            }
        }

        // UDP: request/response traffic (DNS) lives for udp_timeout after
        // its last packet; streams (assured) use udp_timeout_stream and are
        // left alone.
        let udp = flows.by_proto.get("udp").copied().unwrap_or(0);
        let udp_share = udp as f64 / flows.total as f64;
        if udp_share >= 0.3 && pressure && flows.udp_remaining.total() > 0 {
            let short = "udp_timeout";
            let key = timeouts::key(short);
            let cur = self.timeout_now(short);
            let floor = timeouts::floor(short, nat).unwrap_or(timeouts::Floor {
                secs: 30,
                reason: "",
            });
            let target = if risk == RiskTolerance::Conservative {
                15
            } else {
                10
            };
            let proposed = target.max(floor.secs);
            // Only the entries on the short timer (remaining <= udp_timeout).
            let mut h = crate::observe::RemainingHistogram::default();
            for (&r, &n) in flows.udp_remaining.by_secs.range(..=cur) {
                h.by_secs.insert(r, n);
            }
            if self.policy.is_protected(&key) {
                self.declined(&key, "protected by the policy".into());
            } else if proposed < cur && h.total() > 0 {
                let s = self.scaled(timeouts::shorten_fresh_state(&h, cur, proposed));
                let ev = vec![
                    Evidence::new(
                        "flows",
                        format!(
                            "{:.0}% of entries are UDP; {} on the {} s udp_timeout, {:.1} \
                             (re)started per second",
                            udp_share * 100.0,
                            fmt_n(self.scale_count(h.total())),
                            cur,
                            s.rate_per_sec
                        ),
                    )
                    .num("udp_share", udp_share)
                    .num("rate_per_sec", s.rate_per_sec),
                ];
                self.push_timeout(key, short, cur, proposed, floor, s, ev);
            }
        }

        // ESTABLISHED idle entries.
        if let Some(h) = flows.remaining.get("ESTABLISHED") {
            let short = "tcp_timeout_established";
            let key = timeouts::key(short);
            let cur = self.timeout_now(short);
            let floor = timeouts::floor(short, nat).unwrap_or(timeouts::Floor {
                secs: 86400,
                reason: "",
            });
            let target = if risk == RiskTolerance::Aggressive {
                21_600
            } else {
                86_400
            };
            let proposed = target.max(floor.secs);
            if proposed < cur {
                let raw = timeouts::shorten_idle_state(h, cur, proposed);
                let share = raw.freed as f64 / flows.total as f64;
                let s = self.scaled(raw);
                if share >= 0.1 && (pressure || share >= 0.25) {
                    if self.policy.is_protected(&key) {
                        self.declined(&key, "protected by the policy".into());
                    } else {
                        let ev = vec![
                            Evidence::new(
                                "flows",
                                format!(
                                    "{} ESTABLISHED entries have been idle for more than {} s \
                                     (remaining under {} of {} s): {:.0}% of the table",
                                    fmt_n(s.freed),
                                    proposed,
                                    cur - proposed,
                                    cur,
                                    share * 100.0
                                ),
                            )
                            .num("idle_entries", s.freed as f64),
                        ];
                        self.push_timeout(key, short, cur, proposed, floor, s, ev);
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_timeout(
        &mut self,
        key: String,
        short: &str,
        cur: u32,
        proposed: u32,
        floor: timeouts::Floor,
        s: timeouts::Shortening,
        mut ev: Vec<Evidence>,
    ) {
        if let Some(e) = self
            .has_finding(Cause::ShortConnections)
            .filter(|_| short.ends_with("time_wait"))
            .or_else(|| {
                self.has_finding(Cause::IdleEstablished)
                    .filter(|_| short.ends_with("established"))
            })
        {
            ev.push(finding_to_evidence(e));
        }
        if let Some(e) = self.sample_evidence() {
            ev.push(e);
        }
        ev.push(Evidence::new(
            "policy",
            format!("floor {} s: {}", floor.secs, floor.reason),
        ));
        let kube_note = if short == "tcp_timeout_established"
            && self
                .kube
                .as_ref()
                .is_some_and(|k| k.tcp_established_timeout.is_some() || !k.files.is_empty())
        {
            " kube-proxy rewrites this timeout at start: set conntrack.tcpEstablishedTimeout."
        } else {
            ""
        };
        let bytes = s.freed.saturating_mul(self.mem.per_entry);
        self.plan.actions.push(Action {
            id: format!("timeout:{short}"),
            priority: Priority::P1,
            kind: ActionKind::SetTimeout {
                key: key.clone(),
                seconds: proposed,
                floor: floor.secs,
                floor_reason: floor.reason.to_string(),
            },
            title: format!("Shorten {key} from {cur} s to {proposed} s"),
            scope: Scope::ObservedNamespace,
            change: Some(Change {
                target: key.clone(),
                current: Some(cur.to_string()),
                proposed: proposed.to_string(),
            }),
            evidence: ev,
            effect: Effect {
                memory_delta_bytes: Some(-(bytes.min(i64::MAX as u64) as i64)),
                memory_after_bytes: None,
                entries_freed: Some(s.freed),
                chain_length_after: None,
                text: format!(
                    "steady state {} -> {} entries in this state (Little's law), {} fewer in \
                     use; existing entries keep their timer until their next packet.{kube_note}{}",
                    fmt_n(s.entries_now),
                    fmt_n(s.entries_after),
                    mib(bytes),
                    self.observed_netns_note()
                ),
            },
            risk: Risk {
                level: RiskLevel::Medium,
                text: format!(
                    "connections silent for longer than {proposed} s in this state lose their \
                     entry: late packets become NEW or INVALID"
                ),
            },
            rollback: format!("sysctl -w {key}={cur}"),
            verify: vec![Verify::ReadBack {
                path: sysctl_path(&key),
                expected: proposed.to_string(),
            }],
        });
        self.persist.push((key, proposed.to_string()));
    }

    fn workload(&mut self) {
        let Some(flows) = self.obs.flows.as_ref() else {
            return;
        };
        if flows.total == 0 {
            return;
        }
        let pressure = self.pressure() || self.new_max.is_some();
        let tw = flows.tcp_state(TcpState::TIME_WAIT);
        let tw_share = tw as f64 / flows.total as f64;
        let short_conns = self.has_finding(Cause::ShortConnections).is_some();
        if (tw_share >= 0.3 && pressure) || tw_share >= 0.5 || (short_conns && tw_share >= 0.2) {
            let rate = self.obs.rates.as_ref().and_then(|r| r.new_flows_per_sec);
            let mut ev = vec![
                Evidence::new(
                    "flows",
                    format!(
                        "{:.0}% of entries are TIME_WAIT: connections are opened and closed \
                         for every request",
                        tw_share * 100.0
                    ),
                )
                .num("time_wait_share", tw_share),
            ];
            if let Some(r) = rate {
                ev.push(
                    Evidence::new("rates", format!("{r:.0} new flows/s"))
                        .num("new_flows_per_sec", r),
                );
            }
            if let Some(e) = self.finding_evidence(Cause::ShortConnections) {
                ev.push(e);
            }
            if let Some(e) = self.sample_evidence() {
                ev.push(e);
            }
            let freed = self.scale_count(tw);
            self.plan.actions.push(Action {
                id: "advice:keepalive".into(),
                priority: Priority::P2,
                kind: ActionKind::Advice {
                    topic: AdviceTopic::Keepalive,
                },
                title: "Reuse connections: HTTP keepalive, upstream keepalive, pooling".into(),
                scope: Scope::Workload,
                change: None,
                evidence: ev,
                effect: Effect {
                    entries_freed: Some(freed),
                    text: "one entry per client connection instead of one per request plus \
                           its TIME_WAIT tail: enable keepalive in clients (ab -k, curl/HTTP \
                           client pools), `keepalive` in nginx upstream blocks, and connection \
                           pools for databases"
                        .into(),
                    ..Default::default()
                },
                risk: Risk {
                    level: RiskLevel::Low,
                    text: "long-lived connections pin clients to backends; balance per request \
                           at the proxy"
                        .into(),
                },
                rollback: "disable keepalive in the client or proxy configuration".into(),
                verify: vec![Verify::Manual {
                    text: "TIME_WAIT entries (conntrack -L -p tcp --state TIME_WAIT | wc -l) \
                           fall"
                        .into(),
                }],
            });
        }
        if let Some(f) = self.has_finding(Cause::ScanSuspects) {
            self.plan.actions.push(Action {
                id: "advice:unreplied-sources".into(),
                priority: Priority::P2,
                kind: ActionKind::Advice {
                    topic: AdviceTopic::Other,
                },
                title: "Limit the sources that open unreplied flows (scanners, floods, or \
                        clients of a dead backend)"
                    .into(),
                scope: Scope::Workload,
                change: None,
                evidence: vec![finding_to_evidence(f)],
                effect: Effect {
                    text: "unreplied entries are the first evicted (early_drop) but still fill \
                           the table under a flood: rate-limit new flows per source (nft \
                           `meter`/`limit`, iptables `hashlimit`), block scanners, or fix the \
                           backend the clients retry against; SYN cookies protect the host's \
                           own sockets"
                        .into(),
                    ..Default::default()
                },
                risk: Risk {
                    level: RiskLevel::Medium,
                    text: "a per-source limit that is too low drops legitimate bursts (NAT'd \
                           clients share one source)"
                        .into(),
                },
                rollback: "remove the rate-limit rules".into(),
                verify: vec![Verify::Manual {
                    text: "conntrack -L --status UNREPLIED | wc -l falls".into(),
                }],
            });
        }
        let nat_share = flows.nat_share();
        if nat_share >= 0.5 && pressure {
            self.plan.actions.push(Action {
                id: "advice:host-networking".into(),
                priority: Priority::P2,
                kind: ActionKind::Advice {
                    topic: AdviceTopic::HostNetworking,
                },
                title: "Take high-churn containers off NAT: host networking or pooled \
                        connections"
                    .into(),
                scope: Scope::Workload,
                change: None,
                evidence: vec![
                    Evidence::new(
                        "flows",
                        format!(
                            "{:.0}% of entries are translated (masquerade / published ports): \
                             NAT needs conntrack, so NOTRACK cannot remove them",
                            nat_share * 100.0
                        ),
                    )
                    .num("nat_share", nat_share),
                ],
                effect: Effect {
                    text: "a container on the host network (docker run --network host) opens \
                           connections without a NAT mapping; keepalive and pooling in the \
                           container cut the number of translated connections"
                        .into(),
                    ..Default::default()
                },
                risk: Risk {
                    level: RiskLevel::Medium,
                    text: "host networking removes network isolation and port remapping for \
                           that container"
                        .into(),
                },
                rollback: "run the container on its bridge network again".into(),
                verify: vec![Verify::Manual {
                    text: "translated entries (conntrack -L --src-nat / --dst-nat | wc -l) fall"
                        .into(),
                }],
            });
        }
    }

    fn notrack(&mut self) {
        let Some(flows) = self.obs.flows.as_ref() else {
            self.unjudged("notrack", "no flow summary: NAT and zone use unknown");
            return;
        };
        if flows.total == 0 || !self.pressure() {
            return;
        }
        let risk = self.policy.risk;
        let threshold = if risk == RiskTolerance::Aggressive {
            NOTRACK_SHARE / 2.0
        } else {
            NOTRACK_SHARE
        };
        let mut cands: Vec<(&String, &crate::observe::ServiceStats)> = flows
            .services
            .iter()
            .filter(|(_, s)| s.entries as f64 / flows.total as f64 >= threshold)
            .collect();
        cands.sort_by_key(|c| std::cmp::Reverse(c.1.entries));
        for (key, s) in cands {
            let what = format!("notrack {key}");
            let Some((proto, port)) = parse_service(key) else {
                continue;
            };
            let share = s.entries as f64 / flows.total as f64;
            if s.nat > 0 {
                self.declined(
                    &what,
                    format!(
                        "{} of its {} entries ({:.0}%) are NAT'd (status bits or tuple \
                         asymmetry): NAT requires conntrack",
                        s.nat,
                        s.entries,
                        100.0 * s.nat as f64 / s.entries as f64
                    ),
                );
                continue;
            }
            if s.nat_unattributed && flows.nat > 0 {
                self.declined(
                    &what,
                    format!(
                        "{} of the table's {} entries are NAT'd and the flow summary cannot tell \
                         whether this service's are among them",
                        flows.nat, flows.total
                    ),
                );
                continue;
            }
            if !flows.zones.is_empty() || s.zoned > 0 {
                self.declined(
                    &what,
                    format!(
                        "conntrack zones are in use ({:?}): raw-table rules cannot be scoped to \
                         a zone safely",
                        flows.zones
                    ),
                );
                continue;
            }
            match self.policy.stateful_firewall {
                Some(true) => {
                    self.declined(
                        &what,
                        "the policy says a stateful firewall depends on conntrack".into(),
                    );
                    continue;
                }
                None => {
                    self.declined(
                        &what,
                        "unknown whether a stateful firewall depends on conntrack (set \
                         policy.stateful_firewall)"
                            .into(),
                    );
                    continue;
                }
                Some(false) => {}
            }
            if risk == RiskTolerance::Conservative {
                self.declined(&what, "risk tolerance is conservative".into());
                continue;
            }
            if proto == L4Proto::TCP && risk != RiskTolerance::Aggressive {
                self.declined(
                    &what,
                    "NOTRACK for TCP is only proposed with aggressive risk tolerance".into(),
                );
                continue;
            }
            if !(proto == L4Proto::TCP || proto == L4Proto::UDP) {
                continue;
            }
            let stops = vec![
                "`ct state established,related` rules no longer match this traffic: the \
                 firewall must accept it explicitly in both directions"
                    .to_string(),
                "NAT (DNAT, masquerade, published ports) cannot apply to it".to_string(),
                "conntrack -L, events, accounting and flow logs no longer see it".to_string(),
                "conntrack helpers (ftp, sip, tftp) and their related flows cannot work for it"
                    .to_string(),
            ];
            let freed = self.scale_count(s.entries);
            self.plan.actions.push(Action {
                id: format!("notrack:{key}"),
                priority: Priority::P1,
                kind: ActionKind::Notrack {
                    proto: proto.to_string(),
                    port,
                    stops_working: stops.clone(),
                },
                title: format!("Exempt {key} (served on this host) from connection tracking"),
                scope: Scope::Firewall,
                change: Some(Change {
                    target: format!("raw table, {key}"),
                    current: Some("tracked".into()),
                    proposed: "notrack".into(),
                }),
                evidence: vec![
                    Evidence::new(
                        "flows",
                        format!(
                            "{key} holds {} entries ({:.0}% of the table), none NAT'd, no zones",
                            fmt_n(s.entries),
                            share * 100.0
                        ),
                    )
                    .num("entries", s.entries as f64)
                    .num("share", share),
                    Evidence::new(
                        "policy",
                        "the policy says no stateful firewall depends on conntrack",
                    ),
                ],
                effect: Effect {
                    entries_freed: Some(freed),
                    memory_delta_bytes: Some(
                        -(freed
                            .saturating_mul(self.mem.per_entry)
                            .min(i64::MAX as u64) as i64),
                    ),
                    text: format!("Stops working: {}", stops.join("; ")),
                    ..Default::default()
                },
                risk: Risk {
                    level: RiskLevel::High,
                    text: "if a rule elsewhere relies on conntrack state for this traffic, it \
                           is dropped"
                        .into(),
                },
                rollback: "delete the raw-table rules (iptables -t raw -D ..., or nft delete \
                           table inet conntrack_kit_notrack)"
                    .into(),
                verify: vec![Verify::Manual {
                    text: format!(
                        "conntrack -L -p {proto} --orig-port-dst {port} | wc -l falls to 0 and \
                         the service still answers"
                    ),
                }],
            });
        }
    }

    /// Unused conntrack helpers. Built-in helpers cannot be unloaded: they
    /// are listed once under "Not proposed" with the reason. Since 4.7
    /// (commit 3bb398d925ec "netfilter: nf_ct_helper: disable automatic
    /// helper assignment") a helper only acts on flows that an explicit CT
    /// helper rule (`-j CT --helper`, nft `ct helper set`) assigns to it,
    /// so a present but unused helper is mostly attack surface. Loadable
    /// helpers that no flow uses are grouped into one P3 action (whose
    /// module kind is unknown are included, with the caveat that
    /// `modprobe -r` refuses built-in ones).
    fn helpers(&mut self) {
        let Some(snap) = self.snap else {
            return;
        };
        let helpers: Vec<&String> = snap
            .helpers
            .iter()
            .filter(|h| h.starts_with("nf_conntrack_"))
            .collect();
        if helpers.is_empty() {
            return;
        }
        let flows = self.obs.flows.as_ref();
        let used = |h: &str| {
            let short = h.trim_start_matches("nf_conntrack_");
            flows.is_some_and(|f| {
                f.helpers
                    .iter()
                    .any(|(name, n)| *n > 0 && (name == short || name.starts_with(short)))
            })
        };
        let (builtin, loadable): (Vec<&String>, Vec<&String>) = helpers
            .into_iter()
            .partition(|h| self.obs.helper_kind(h) == ModuleKind::BuiltIn);
        if !builtin.is_empty() {
            let names: Vec<&str> = builtin.iter().map(|h| h.as_str()).collect();
            self.declined(
                "unload helpers (built in)",
                format!(
                    "{} {} built into the kernel (present in /sys/module, not in \
                     /proc/modules): a built-in helper cannot be unloaded. Since 4.7 (commit \
                     3bb398d925ec) helpers are no longer assigned automatically: they act only \
                     on flows an explicit CT helper rule (iptables -j CT --helper, nft ct \
                     helper) assigns to them, so the ruleset decides whether they are used",
                    names.join(", "),
                    if names.len() == 1 { "is" } else { "are" }
                ),
            );
        }
        if loadable.is_empty() {
            return;
        }
        let Some(flows) = flows else {
            return;
        };
        if !flows.helpers_known {
            self.unjudged(
                "helpers",
                "the flow source carried no helper names: cannot tell whether loaded helpers \
                 are used",
            );
            return;
        }
        let unused: Vec<&str> = loadable
            .iter()
            .filter(|h| !used(h))
            .map(|h| h.as_str())
            .collect();
        if unused.is_empty() {
            return;
        }
        let list = unused.join(", ");
        let words = unused.join(" ");
        let unknown: Vec<&str> = unused
            .iter()
            .copied()
            .filter(|h| self.obs.helper_kind(h) != ModuleKind::Module)
            .collect();
        let mut evidence = vec![Evidence::new(
            "flows",
            format!(
                "{list} {} loaded and none of {} flows uses {}",
                if unused.len() == 1 { "is" } else { "are" },
                fmt_n(flows.total),
                if unused.len() == 1 { "it" } else { "them" }
            ),
        )];
        if !unknown.is_empty() {
            evidence.push(Evidence::new(
                "snapshot",
                format!(
                    "whether {} {} a loadable module or built in is unknown (no \
                     /proc/modules or /sys/module facts): modprobe -r refuses built-in ones \
                     (\"is builtin\"), which then stay",
                    unknown.join(", "),
                    if unknown.len() == 1 { "is" } else { "are" }
                ),
            ));
        }
        evidence.extend(self.finding_evidence(Cause::UnneededHelpers));
        let shorts: Vec<&str> = unused
            .iter()
            .map(|h| h.trim_start_matches("nf_conntrack_"))
            .collect();
        self.plan.actions.push(Action {
            id: "unload-helpers".into(),
            priority: Priority::P3,
            kind: ActionKind::UnloadHelpers {
                modules: unused.iter().map(|h| h.to_string()).collect(),
            },
            title: format!("Unload unused conntrack helpers: {list}"),
            scope: Scope::HostInitNamespace,
            change: None,
            evidence,
            effect: Effect {
                text: format!(
                    "modprobe -r {words}: less attack surface; automatic helper assignment has \
                     been off by default since 4.7 (commit 3bb398d925ec), so loaded helpers \
                     only act through explicit CT rules"
                ),
                ..Default::default()
            },
            risk: Risk {
                level: RiskLevel::Medium,
                text: format!(
                    "protocols needing {} (e.g. active FTP) break if a CT helper rule is \
                     added later; a rule that names a helper loads it again",
                    shorts.join(", ")
                ),
            },
            rollback: format!("modprobe -a {words}"),
            verify: vec![Verify::Manual {
                text: format!("lsmod lists none of {list}"),
            }],
        });
    }

    fn persistence(&mut self) {
        let buckets = self.persist_buckets;
        if self.persist.is_empty() && buckets.is_none() {
            return;
        }
        let kube_max = self.kube.is_some();
        let mut entries: Vec<(String, String)> = self
            .persist
            .iter()
            .filter(|(k, _)| !(kube_max && k == KEY_MAX))
            .cloned()
            .collect();
        let via_sysctl = self.version.is_none_or(|v| v.at_least(4, 9));
        if let Some(b) = buckets {
            if via_sysctl {
                entries.push((KEY_BUCKETS.into(), b.to_string()));
            }
            // With an explicit hashsize the kernel sets max = 8 x buckets at
            // load: persist max too so boot does not change it.
            let max_now = self.new_max.or(self.max).unwrap_or(0);
            if !kube_max && max_now > 0 && !entries.iter().any(|(k, _)| k == KEY_MAX) {
                entries.push((KEY_MAX.into(), max_now.to_string()));
            }
        }
        // A non-initial namespace: per-namespace values (timeouts) must not
        // go to the host's /etc/sysctl.d, which systemd-sysctl applies in
        // the initial namespace only. They become advice on where to set
        // them; global values (max, buckets) still belong in the host file.
        if self.in_other_netns() {
            let ns_entries: Vec<(String, String)> = entries
                .iter()
                .filter(|(k, _)| !is_global_sysctl(k))
                .cloned()
                .collect();
            entries.retain(|(k, _)| is_global_sysctl(k));
            self.persist_in_namespace(&ns_entries);
        }
        let file = format!("/etc/sysctl.d/{}", self.policy.sysctl_file_name);
        if kube_max && let Some(m) = self.new_max {
            let cpus = self.snap.map(|s| s.cpus_online.len() as u64).unwrap_or(0);
            let kube = self.kube.as_ref();
            // maxPerCore needs the CPU count; without it, conntrack.min sets
            // the floor kube-proxy applies whatever the CPUs.
            let (title, target, current, proposed) = if cpus > 0 {
                let per_core = m.div_ceil(cpus);
                (
                    format!(
                        "Persist max through kube-proxy: conntrack.maxPerCore {per_core} (or \
                         conntrack.min {m})"
                    ),
                    "kube-proxy conntrack.maxPerCore",
                    kube.and_then(|k| k.max_per_core.map(|v| v.to_string())),
                    per_core.to_string(),
                )
            } else {
                (
                    format!("Persist max through kube-proxy: conntrack.min {m}"),
                    "kube-proxy conntrack.min",
                    kube.and_then(|k| k.min.map(|v| v.to_string())),
                    m.to_string(),
                )
            };
            self.plan.actions.push(Action {
                id: "persist:kube-proxy".into(),
                priority: Priority::P3,
                kind: ActionKind::Advice {
                    topic: AdviceTopic::KubeProxyConfig,
                },
                title,
                scope: Scope::Boot,
                change: Some(Change {
                    target: target.into(),
                    current,
                    proposed,
                }),
                evidence: vec![Evidence::new(
                    "files",
                    "kube-proxy sets nf_conntrack_max at start; a sysctl.d value would be \
                     overwritten",
                )],
                effect: Effect {
                    text: format!("kube-proxy sets max {m} or more at every start"),
                    ..Default::default()
                },
                risk: Risk {
                    level: RiskLevel::Low,
                    text: "kube-proxy also raises buckets to max/4 if smaller".into(),
                },
                rollback: "restore the previous kube-proxy configuration".into(),
                verify: vec![Verify::Manual {
                    text: "after a kube-proxy restart, sysctl net.netfilter.nf_conntrack_max \
                           shows the new value"
                        .into(),
                }],
            });
        }
        // Warnings: files that override ours at boot.
        match self.obs.sysctl_scan.as_ref() {
            Some(scan) => {
                let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
                for o in scan.overrides(&self.policy.sysctl_file_name, &keys) {
                    self.plan.warnings.push(Warning {
                        kind: WarningKind::PersistenceOverridden,
                        text: format!(
                            "{}:{} sets {} = {} and is applied after {file}: at boot it \
                             overrides the plan's value",
                            o.path, o.line, o.key, o.value
                        ),
                    });
                }
                let name = &self.policy.sysctl_file_name;
                if let Some(f) = scan.files.iter().find(|f| f.path == file) {
                    let text = if f.masked {
                        format!(
                            "{file} is a symlink to /dev/null (masked by the administrator): \
                             the script will not replace it; choose another file name"
                        )
                    } else {
                        format!("{file} already exists and would be replaced")
                    };
                    self.warn(WarningKind::Other, text);
                } else if scan.has_etc_file(name) {
                    self.warn(WarningKind::Other, format!("{file} already exists"));
                }
            }
            None => self.unjudged(
                "persistence precedence",
                "sysctl.d directories not scanned: cannot tell whether another file overrides \
                 the plan's",
            ),
        }
        if !entries.is_empty() {
            let host_note = if self.in_other_netns() {
                " This file is for the host: these values are global and set in the initial \
                 namespace (the observation comes from another namespace)."
            } else {
                ""
            };
            let desc: Vec<String> = entries.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let module_note = match self.obs.module_kind {
                ModuleKind::BuiltIn => "",
                _ => {
                    " If nf_conntrack is a module loaded after systemd-sysctl ran, these keys do \
                     not exist yet at boot: list nf_conntrack in /etc/modules-load.d."
                }
            };
            self.plan.actions.push(Action {
                id: "persist:sysctl".into(),
                priority: Priority::P3,
                kind: ActionKind::PersistSysctl {
                    file: file.clone(),
                    entries: entries.clone(),
                },
                title: format!("Persist the new values in {file}"),
                scope: Scope::Boot,
                change: Some(Change {
                    target: file.clone(),
                    current: None,
                    proposed: desc.join(", "),
                }),
                evidence: vec![Evidence::new(
                    "plan",
                    "values set at run time are lost at reboot",
                )],
                effect: Effect {
                    text: format!(
                        "systemd-sysctl applies them at boot.{module_note}{host_note}"
                    ),
                    ..Default::default()
                },
                risk: Risk {
                    level: RiskLevel::Low,
                    text: "a later file (by name) or /etc/sysctl.conf overrides it; see the \
                           warnings"
                        .into(),
                },
                rollback: format!("rm {file}"),
                verify: vec![Verify::Manual {
                    text: format!("systemd-sysctl --cat-config (or sysctl --system) lists {file} and no later file sets the same keys"),
                }],
            });
        }
        if let Some(b) = buckets {
            self.persist_hashsize(b);
        }
    }

    /// Advice for persisting per-namespace values of a non-initial
    /// namespace: where the namespace is made, never the host's sysctl.d.
    fn persist_in_namespace(&mut self, entries: &[(String, String)]) {
        if entries.is_empty() {
            return;
        }
        let desc: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let sysctl_w: Vec<String> = desc.iter().map(|kv| format!("sysctl -w {kv}")).collect();
        let docker: Vec<String> = desc.iter().map(|kv| format!("--sysctl {kv}")).collect();
        let k8s: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{{name: {k}, value: \"{v}\"}}"))
            .collect();
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        self.plan.actions.push(Action {
            id: "persist:netns".into(),
            priority: Priority::P3,
            kind: ActionKind::Advice {
                topic: AdviceTopic::NamespaceSysctls,
            },
            title: "Persist the per-namespace values where the namespace is created (not in the \
                    host's /etc/sysctl.d)"
                .into(),
            scope: Scope::ObservedNamespace,
            change: Some(Change {
                target: "the observed namespace's sysctls".into(),
                current: None,
                proposed: desc.join(", "),
            }),
            evidence: vec![
                Evidence::new(
                    "snapshot",
                    "the observation comes from a non-initial network namespace",
                ),
                Evidence::new(
                    "kernel",
                    "these sysctls are per network namespace: a new namespace starts from the \
                     kernel defaults, and /etc/sysctl.d is applied by systemd-sysctl in the \
                     initial namespace only",
                ),
            ],
            effect: Effect {
                text: format!(
                    "the values survive a restart of the namespace when set by what creates it: \
                     a named namespace: `ip netns exec NAME sh -c '{}'` in the unit or script \
                     that runs `ip netns add`; Docker: `docker run {}` (compose: `sysctls:`); \
                     Kubernetes: the pod's `spec.securityContext.sysctls: [{}]` (net.* sysctls \
                     are namespaced; {} are not in the safe set, so the kubelet needs \
                     `--allowed-unsafe-sysctls`). Nothing is written to the host's \
                     /etc/sysctl.d for them",
                    sysctl_w.join("; "),
                    docker.join(" "),
                    k8s.join(", "),
                    keys.join(", ")
                ),
                ..Default::default()
            },
            risk: Risk {
                level: RiskLevel::Low,
                text: "until then the values set at run time last only as long as the namespace"
                    .into(),
            },
            rollback: "remove the settings from the namespace's creation (unit, docker run, pod \
                       spec)"
                .into(),
            verify: vec![Verify::Manual {
                text: format!(
                    "after the namespace or container is recreated, `sysctl {}` inside it shows \
                     the values",
                    keys.join(" ")
                ),
            }],
        });
    }

    fn persist_hashsize(&mut self, b: u64) {
        let mk = self.obs.module_kind;
        let max_now = self.new_max.or(self.max).unwrap_or(0);
        let why = format!(
            "an explicit hashsize makes the kernel set max = {} x buckets = {} at load; the \
             sysctl file sets max back",
            sizing::EXPLICIT_HASHSIZE_FACTOR,
            fmt_n(b * sizing::EXPLICIT_HASHSIZE_FACTOR)
        );
        if matches!(mk, ModuleKind::Module | ModuleKind::Unknown) {
            let file = format!("/etc/modprobe.d/{}", self.policy.modprobe_file_name);
            let note = if mk == ModuleKind::Unknown {
                " Whether nf_conntrack is a module is unknown: if it is built in, use the \
                 kernel command line nf_conntrack.hashsize instead."
            } else {
                ""
            };
            self.plan.actions.push(Action {
                id: "persist:modprobe".into(),
                priority: Priority::P3,
                kind: ActionKind::ModprobeOption {
                    file: file.clone(),
                    module: "nf_conntrack".into(),
                    option: "hashsize".into(),
                    value: b.to_string(),
                },
                title: format!("Persist hashsize={b} in {file}"),
                scope: Scope::Boot,
                change: Some(Change {
                    target: file.clone(),
                    current: None,
                    proposed: format!("options nf_conntrack hashsize={b}"),
                }),
                evidence: vec![Evidence::new("kernel", why.clone())],
                effect: Effect {
                    text: format!(
                        "the table has {b} buckets from the moment the module loads (max {} \
                         from the sysctl file).{note}",
                        fmt_n(max_now)
                    ),
                    ..Default::default()
                },
                risk: Risk {
                    level: RiskLevel::Low,
                    text: "ignored when nf_conntrack is built in".into(),
                },
                rollback: format!("rm {file}"),
                verify: vec![Verify::Manual {
                    text: "after reboot, /sys/module/nf_conntrack/parameters/hashsize shows the \
                           value"
                        .into(),
                }],
            });
        }
        if mk == ModuleKind::BuiltIn {
            self.plan.actions.push(Action {
                id: "persist:cmdline".into(),
                priority: Priority::P3,
                kind: ActionKind::KernelCmdline {
                    param: "nf_conntrack.hashsize".into(),
                    value: b.to_string(),
                },
                title: format!("Add nf_conntrack.hashsize={b} to the kernel command line"),
                scope: Scope::Boot,
                change: Some(Change {
                    target: "kernel command line".into(),
                    current: None,
                    proposed: format!("nf_conntrack.hashsize={b}"),
                }),
                evidence: vec![Evidence::new(
                    "kernel",
                    format!("nf_conntrack is built in: modprobe.d options do not apply. {why}"),
                )],
                effect: Effect {
                    text: "the table is allocated at this size at boot".into(),
                    ..Default::default()
                },
                risk: Risk {
                    level: RiskLevel::Low,
                    text: "needs a boot loader change (GRUB_CMDLINE_LINUX) and a reboot".into(),
                },
                rollback: "remove the parameter from the boot loader configuration".into(),
                verify: vec![Verify::Manual {
                    text: "grep -o 'nf_conntrack.hashsize=[0-9]*' /proc/cmdline".into(),
                }],
            });
        }
    }
}

fn finding_to_evidence(f: &crate::observe::Finding) -> Evidence {
    Evidence {
        source: format!("finding:{}", f.id),
        text: f.text.clone(),
        numbers: f.numbers.clone(),
    }
}

fn counters_of(obs: &Observation) -> Option<(Counters, &'static str)> {
    if let Some(r) = obs.rates.as_ref().filter(|r| !r.per_cpu.is_empty()) {
        let t = r.total();
        return Some((
            Counters {
                drop: t.drop,
                insert_failed: t.insert_failed,
                early_drop: t.early_drop,
                clash_resolve: t.clash_resolve,
                chain_too_long: t.chain_too_long,
                cpus_with_drops: r.per_cpu.iter().filter(|c| c.drop > 0).count(),
            },
            "rates",
        ));
    }
    let stats = obs.snapshot.as_ref()?.stats.as_ref()?;
    if stats.cpus.is_empty() {
        return None;
    }
    let t = stats.total();
    let g = |v: Option<u32>| v.unwrap_or(0) as u64;
    Some((
        Counters {
            drop: g(t.drop()),
            insert_failed: g(t.insert_failed()),
            early_drop: g(t.early_drop()),
            clash_resolve: g(t.clash_resolve()),
            chain_too_long: g(t.chain_too_long()),
            cpus_with_drops: stats
                .cpus
                .iter()
                .filter(|c| c.drop().unwrap_or(0) > 0)
                .count(),
        },
        "stats",
    ))
}
