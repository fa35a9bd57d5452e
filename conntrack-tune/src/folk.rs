//! Folk recipes: the conntrack advice operators find online, judged for
//! one host. Each recipe gets a verdict (applies, not needed, harmful
//! here, cannot judge) with the reason from this host's numbers and the
//! kernel fact behind it, so an operator about to paste a recipe sees
//! what it would do here.

use crate::plan::{ActionKind, FolkVerdict, Plan};
use conntrack_analyze::capacity::folk_formula;
use conntrack_analyze::evidence::group;
use conntrack_analyze::facts::Rps;
use conntrack_analyze::timeouts::{RFC5382_ESTABLISHED_SECS, TCP_KEEPALIVE_SECS};
use conntrack_analyze::{Facts, Finding, FindingId};
use conntrack_core::host::ModuleKind;
use conntrack_core::{Counter, TimeoutKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Recipe {
    /// Raise `nf_conntrack_max` (to 2,097,152, 131072, 262144...).
    RaiseMax,
    /// Set the bucket count to max / 4.
    BucketsMaxOver4,
    /// `CONNTRACK_MAX = RAM / 16384 / (ARCH / 32)`.
    RamFormula,
    /// `iptables -t raw -A PREROUTING -s <container subnet> -j NOTRACK`.
    NotrackContainerSubnet,
    /// NOTRACK the busiest service port.
    NotrackServicePort,
    /// Lower `tcp_timeout_established` to 600-1800 s.
    LowerEstablished,
    /// Lower TIME_WAIT (and close_wait, fin_wait).
    LowerTimeWait,
    /// `echo ff > /sys/class/net/eth0/queues/rx-*/rps_cpus`.
    RpsEveryCpu,
    /// `modprobe -r nf_conntrack && modprobe nf_conntrack` to reset the
    /// counters.
    ModprobeReset,
    /// `modprobe -r nf_conntrack_ftp ...` (unload helpers).
    UnloadHelpers,
    /// `sysctl -p` and check `/etc/sysctl.d` precedence.
    SysctlPrecedence,
    /// "Each entry costs about 300-400 bytes."
    EntrySize,
    /// Move containers to host networking.
    HostNetworking,
    /// nginx upstream keepalive, connection pools.
    ReuseConnections,
}

impl Recipe {
    /// Every recipe, in the order reports list them.
    pub const ALL: [Recipe; 14] = [
        Recipe::RaiseMax,
        Recipe::BucketsMaxOver4,
        Recipe::RamFormula,
        Recipe::NotrackContainerSubnet,
        Recipe::NotrackServicePort,
        Recipe::LowerEstablished,
        Recipe::LowerTimeWait,
        Recipe::RpsEveryCpu,
        Recipe::ModprobeReset,
        Recipe::UnloadHelpers,
        Recipe::SysctlPrecedence,
        Recipe::EntrySize,
        Recipe::HostNetworking,
        Recipe::ReuseConnections,
    ];

    /// The recipe as operators write it.
    pub const fn text(self) -> &'static str {
        match self {
            Recipe::RaiseMax => "raise nf_conntrack_max (to 2097152, 131072, 262144...)",
            Recipe::BucketsMaxOver4 => "set nf_conntrack_buckets (hashsize) = max / 4",
            Recipe::RamFormula => "CONNTRACK_MAX = RAM / 16384 / (ARCH / 32)",
            Recipe::NotrackContainerSubnet => {
                "iptables -t raw -A PREROUTING -s <container subnet> -j NOTRACK (and OUTPUT -d)"
            }
            Recipe::NotrackServicePort => "NOTRACK the busiest service port in the raw table",
            Recipe::LowerEstablished => "lower nf_conntrack_tcp_timeout_established to 600-1800",
            Recipe::LowerTimeWait => "lower the TIME_WAIT, CLOSE_WAIT and FIN_WAIT timeouts",
            Recipe::RpsEveryCpu => "echo ff > /sys/class/net/eth0/queues/rx-*/rps_cpus",
            Recipe::ModprobeReset => {
                "modprobe -r nf_conntrack && modprobe nf_conntrack to reset the counters"
            }
            Recipe::UnloadHelpers => "modprobe -r nf_conntrack_ftp (and other unused helpers)",
            Recipe::SysctlPrecedence => "sysctl -p, and check /etc/sysctl.d precedence",
            Recipe::EntrySize => "each conntrack entry costs about 300-400 bytes",
            Recipe::HostNetworking => "move the containers to host networking",
            Recipe::ReuseConnections => "nginx upstream keepalive, connection pools",
        }
    }
}

/// Whether a recipe fits this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// It helps here (possibly in the plan's form).
    Applies,
    /// Harmless, but nothing here needs it.
    NotNeeded,
    /// It would break something or make things worse here.
    Harmful,
    /// The observation does not say.
    CannotJudge,
}

impl Verdict {
    /// How reports print it.
    pub const fn label(self) -> &'static str {
        match self {
            Verdict::Applies => "applies",
            Verdict::NotNeeded => "not needed",
            Verdict::Harmful => "harmful here",
            Verdict::CannotJudge => "cannot judge",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

fn n(v: u64) -> String {
    group(v.min(i64::MAX as u64) as i64)
}

fn has(findings: &[Finding], id: FindingId) -> bool {
    findings.iter().any(|f| f.id == id)
}

/// Judges every recipe for the host the plan was made for.
pub fn evaluate(f: &Facts, findings: &[Finding], plan: &Plan) -> Vec<FolkVerdict> {
    Recipe::ALL
        .into_iter()
        .map(|r| {
            let (verdict, reason, fact) = judge(r, f, findings, plan);
            FolkVerdict {
                recipe: r,
                text: r.text().to_string(),
                verdict,
                reason,
                kernel_fact: fact.to_string(),
            }
        })
        .collect()
}

fn judge(
    r: Recipe,
    f: &Facts,
    findings: &[Finding],
    plan: &Plan,
) -> (Verdict, String, &'static str) {
    use Verdict::*;
    let t = &f.table;
    let util = t.utilisation;
    let full = has(findings, FindingId::TableFull);
    let confirm = has(findings, FindingId::ConfirmFailures);
    let far = util.is_some_and(|u| u < 0.5);
    let new_max = plan
        .find(|k| matches!(k, ActionKind::SetMax { .. }))
        .and_then(|a| match a.kind {
            ActionKind::SetMax { max } => Some(max),
            _ => None,
        });
    let pct = |u: f64| format!("{:.1}%", u * 100.0);
    match r {
        Recipe::RaiseMax => match (new_max, util) {
            (Some(m), _) => (
                Applies,
                format!(
                    "the table is full: the plan raises max to {} from the inferred demand and \
                     the kernel's own max for the allocated buckets, not to a number from a blog",
                    n(m)
                ),
                "a full table drops new flows in __nf_conntrack_alloc (\"table full, dropping \
                 packet\", counted in drop)",
            ),
            (None, Some(u)) if u < 0.5 => (
                NotNeeded,
                format!(
                    "the table is at {} of max{}: a larger max changes nothing",
                    pct(u),
                    if confirm {
                        "; the drops are confirm-time failures, which happen with room to spare"
                    } else {
                        ""
                    }
                ),
                "max only limits allocation; confirm-time failures (__nf_conntrack_confirm) do \
                 not depend on it",
            ),
            (None, Some(u)) => (
                NotNeeded,
                format!(
                    "the table is at {} of max and the plan did not need more",
                    pct(u)
                ),
                "max only limits allocation",
            ),
            _ => (CannotJudge, "count or max unknown".into(), ""),
        },
        Recipe::BucketsMaxOver4 => match (t.max, t.buckets) {
            (Some(m), Some(b)) if m > 0 => {
                let quarter = m / 4;
                let fact = "every entry is hashed twice, so the mean chain at a full table is \
                            2 x max / buckets: 8 with max/4; since 5.15 (d532bcd0b269) the \
                            kernel's default is max = buckets (2 at a full table)";
                if quarter < b {
                    (
                        Harmful,
                        format!(
                            "max/4 = {} is fewer than the {} buckets allocated: it would shrink \
                             the table and lengthen every chain (and the resize rehashes every \
                             entry under the table lock)",
                            n(quarter),
                            n(b)
                        ),
                        fact,
                    )
                } else if far && !full {
                    (
                        NotNeeded,
                        format!(
                            "the mean chain is {:.2} now; the table is at {} of max{}",
                            t.mean_chain.unwrap_or(0.0),
                            pct(util.unwrap_or(0.0)),
                            if f.kernel.is_some_and(|k| !k.at_least(5, 15)) {
                                ", and this kernel (before 5.15) has no chain cap, so chain \
                                 length only costs lookups, never inserts"
                            } else {
                                ""
                            }
                        ),
                        fact,
                    )
                } else {
                    (
                        Applies,
                        format!(
                            "more buckets help here, but max/4 still means 8 nodes per chain at \
                             a full table: the plan sizes them for a mean chain of 2 ({})",
                            plan.find(|k| matches!(k, ActionKind::SetBuckets { .. }))
                                .map_or("no resize needed".into(), |a| a.title.clone())
                        ),
                        fact,
                    )
                }
            }
            _ => (CannotJudge, "max or the bucket count unknown".into(), ""),
        },
        Recipe::RamFormula => {
            let Some(ram) = f.obs.snapshot.mem_total_bytes else {
                return (CannotJudge, "RAM unknown".into(), "");
            };
            let (folk, _) = folk_formula(ram, 64);
            let kernel = t.kernel_default.map(|d| u64::from(d.max));
            let demand = f.demand.as_ref().map(|d| d.entries);
            let mut reason = format!(
                "for {:.1} GiB it gives {}",
                ram as f64 / f64::from(1u32 << 30),
                n(folk)
            );
            if let Some(k) = kernel {
                reason.push_str(&format!(
                    "; this kernel's own default for this RAM is {}",
                    n(k)
                ));
            }
            if let Some(d) = demand {
                reason.push_str(&format!("; the workload needs about {}", n(d)));
            }
            let verdict = match (t.max, demand) {
                (Some(m), Some(d)) if folk < m && folk < d => {
                    reason.push_str(": it would lower max below the demand");
                    Harmful
                }
                (Some(m), _) if folk < m => {
                    reason.push_str(
                        ": it would lower max, which frees nothing until the table fills",
                    );
                    NotNeeded
                }
                (_, Some(d)) if full && folk >= d => {
                    reason.push_str(&format!(
                        ": it happens to cover the demand here; the plan sizes from the demand{}",
                        new_max.map(|m| format!(" ({})", n(m))).unwrap_or_default()
                    ));
                    Applies
                }
                (_, Some(_)) if full => {
                    reason.push_str(&format!(
                        ": too small for the demand; the plan sizes from the demand{}",
                        new_max.map(|m| format!(" ({})", n(m))).unwrap_or_default()
                    ));
                    NotNeeded
                }
                _ => NotNeeded,
            };
            (
                verdict,
                reason,
                "it is the pre-cap kernel formula with the factor 4 folded in; kernels cap the \
                 buckets (16384/65536/262144 by era) and since 5.15 set max = buckets: size from \
                 the demand instead",
            )
        }
        Recipe::NotrackContainerSubnet => match &f.mix {
            Some(m) if m.nat_share > 0.0 => (
                Harmful,
                format!(
                    "{:.0}% of the flows are translated (Docker's DNAT and MASQUERADE): with \
                     NOTRACK they are not translated at all, so containers lose connectivity; \
                     the entries it \"saves\" are broken connections",
                    m.nat_share * 100.0
                ),
                "NAT needs conntrack: an untracked packet has no conntrack and the NAT hook \
                 (nf_nat_inet_fn) lets it pass untranslated",
            ),
            Some(_) => (
                NotNeeded,
                "no translated flows here; NOTRACK only makes sense for a stateless service \
                 under table pressure (see the plan)"
                    .into(),
                "untracked traffic bypasses stateful rules and NAT",
            ),
            None => (
                CannotJudge,
                "no flow listing: the NAT share is unknown".into(),
                "",
            ),
        },
        Recipe::NotrackServicePort => {
            let h = f.obs.hotspots.as_ref();
            let top = h
                .and_then(|h| h.table(conntrack_analyze::hotspots::KeyKind::DstPort))
                .and_then(|t| t.top.first());
            match (h, top) {
                (Some(h), Some(k)) => {
                    let nat = h
                        .nat_by_service
                        .top
                        .iter()
                        .find(|x| x.key == k.key)
                        .map_or(0, |x| x.count);
                    if nat > 0 {
                        (
                            Harmful,
                            format!(
                                "the busiest port {} is translated ({} of its {} flows): NOTRACK \
                                 would stop its translation (masquerade or port forwarding)",
                                k.key,
                                n(nat),
                                n(k.count)
                            ),
                            "NAT needs conntrack",
                        )
                    } else if plan
                        .find(|a| matches!(a, ActionKind::Notrack { .. }))
                        .is_some()
                    {
                        (
                            Applies,
                            "the plan exempts it, with what stops working".into(),
                            "untracked traffic bypasses stateful rules",
                        )
                    } else {
                        (
                            NotNeeded,
                            "the table is not under pressure from one stateless service".into(),
                            "untracked traffic bypasses stateful rules",
                        )
                    }
                }
                _ => (CannotJudge, "no flow listing".into(), ""),
            }
        }
        Recipe::LowerEstablished => {
            let est = f.timeout(TimeoutKey::TcpEstablished);
            let nat = f.nat_in_use() == Some(true);
            let fact = "idle connections rely on TCP keepalive (first probe after 7200 s); RFC \
                        5382 asks NATs for at least 7440 s; an expired NAT'd entry is re-created \
                        by the next packet with possibly another mapping";
            if nat {
                (
                    Harmful,
                    format!(
                        "NAT is in use: 600-1800 s is below the {TCP_KEEPALIVE_SECS} s keepalive \
                         horizon (RFC 5382: >= {RFC5382_ESTABLISHED_SECS} s), so idle pooled \
                         connections lose their mapping and get reset (the current value is {} \
                         s)",
                        est.secs
                    ),
                    fact,
                )
            } else if let Some(a) = plan.find(|k| {
                matches!(
                    k,
                    ActionKind::SetTimeout {
                        key: TimeoutKey::TcpEstablished,
                        ..
                    }
                )
            }) {
                (
                    Applies,
                    format!(
                        "{}: idle ESTABLISHED entries fill a table under pressure, but never below \
                         {TCP_KEEPALIVE_SECS} s",
                        a.title
                    ),
                    fact,
                )
            } else {
                (
                    NotNeeded,
                    format!(
                        "the table is at {} of max and not under pressure from idle entries",
                        pct(util.unwrap_or(0.0))
                    ),
                    fact,
                )
            }
        }
        Recipe::LowerTimeWait => {
            let tw = plan.find(|k| {
                matches!(
                    k,
                    ActionKind::SetTimeout {
                        key: TimeoutKey::TcpTimeWait,
                        ..
                    }
                )
            });
            match (tw, &f.mix) {
                (Some(a), _) => (
                    Applies,
                    format!("{} (never below the floor)", a.title),
                    "TIME_WAIT entries = closes/s x timeout (Little's law); with NAT the mapping \
                     must outlive the endpoint's 60 s TIME_WAIT",
                ),
                (None, Some(m)) => (
                    NotNeeded,
                    format!(
                        "TIME_WAIT is {:.0}% of the table and the table is not under pressure; \
                         shorter timeouts only trade correctness for memory not needed",
                        m.time_wait_share * 100.0
                    ),
                    "late FIN/ACKs must still match their entry",
                ),
                (None, None) => (CannotJudge, "no flow listing".into(), ""),
            }
        }
        Recipe::RpsEveryCpu => {
            let cpus = f.cpu.online;
            let mask_note = if cpus > 0 && cpus != 8 {
                format!("; and `ff` names CPUs 0-7, while this host has {cpus}")
            } else {
                String::new()
            };
            if has(findings, FindingId::CpuImbalance) {
                (
                    Applies,
                    format!(
                        "NET_RX work is concentrated and RPS is off: the plan sets per-queue \
                         masks for this CPU count{mask_note}"
                    ),
                    "RPS steers protocol processing by flow hash (get_rps_cpu)",
                )
            } else if confirm {
                (
                    NotNeeded,
                    format!(
                        "the drops are confirm-time failures{}: RPS spreads packet processing, \
                         it cannot prevent two CPUs from confirming clashing flows and can only \
                         add parallelism{mask_note}",
                        if f.cpu.cpus_with_failures > 1 {
                            format!(" already spread over {} CPUs", f.cpu.cpus_with_failures)
                        } else {
                            String::new()
                        }
                    ),
                    "clashes come from concurrent confirms (__nf_conntrack_confirm); locally \
                     generated and veth traffic is processed on the sending CPU whatever eth0's \
                     rps_cpus says",
                )
            } else if f.cpu.softirq.is_none() || f.cpu.rps == Rps::Unknown {
                (
                    CannotJudge,
                    format!(
                        "{} not read, so whether receive work is concentrated is unknown{mask_note}",
                        if f.cpu.softirq.is_none() {
                            "the NET_RX softirq counts per CPU (/proc/softirqs) were"
                        } else {
                            "the receive queues (/sys/class/net/*/queues) were"
                        }
                    ),
                    "RPS steers protocol processing by flow hash",
                )
            } else {
                (
                    NotNeeded,
                    format!("no concentration of receive work was observed{mask_note}"),
                    "RPS steers protocol processing by flow hash",
                )
            }
        }
        Recipe::ModprobeReset => {
            let builtin = f.obs.config.conntrack_module == ModuleKind::BuiltIn;
            (
                Harmful,
                format!(
                    "unloading nf_conntrack deletes every entry ({} here): every translated and \
                     stateful connection breaks; {}; the counters do not need resetting: the \
                     rates over a window in this report say what happens now",
                    f.table.count.map_or("all".into(), n),
                    if builtin {
                        "and here it is built in, so it cannot be unloaded at all".to_string()
                    } else {
                        "and it is refused while nf_nat or iptables/nft tables use it".to_string()
                    }
                ),
                "module exit flushes every namespace's table (nf_conntrack_cleanup_net); the \
                 statistics are per namespace, allocated with it",
            )
        }
        Recipe::UnloadHelpers => {
            let s = &f.obs.snapshot;
            if s.helpers.is_empty() {
                (NotNeeded, "no helper module is loaded".into(), "")
            } else if s
                .helpers
                .iter()
                .all(|h| f.obs.config.helper_kind(h) == ModuleKind::BuiltIn)
            {
                (
                    NotNeeded,
                    format!(
                        "{} built in: cannot be unloaded, and inert unless a CT rule assigns it",
                        s.helpers.join(", ")
                    ),
                    "since 4.7 (3bb398d925ec) helpers are not assigned automatically",
                )
            } else if has(findings, FindingId::UnneededHelpers) {
                (
                    Applies,
                    "loaded and unused: the plan unloads the loadable ones".into(),
                    "since 4.7 (3bb398d925ec) helpers are not assigned automatically",
                )
            } else {
                (
                    NotNeeded,
                    "flows use a helper, or the listing cannot tell".into(),
                    "since 4.7 (3bb398d925ec) helpers are not assigned automatically",
                )
            }
        }
        Recipe::SysctlPrecedence => match &f.obs.config.sysctl_d {
            Some(scan) => match scan.effective("net.netfilter.nf_conntrack_max") {
                Some((path, v)) => (
                    Applies,
                    format!(
                        "at boot nf_conntrack_max comes from {path} ({v}); `sysctl -p` only \
                         reads /etc/sysctl.conf, so change the value where it is set{}",
                        if plan.has_warning(crate::plan::WarningKind::PersistenceOverridden) {
                            " (the plan's warnings name the files that override it)"
                        } else {
                            ""
                        }
                    ),
                    "systemd-sysctl applies sysctl.d files in name order, /etc/sysctl.conf last \
                     (procps sysctl --system does the same)",
                ),
                None => (
                    NotNeeded,
                    "no sysctl file sets nf_conntrack_max".into(),
                    "systemd-sysctl applies sysctl.d files in name order",
                ),
            },
            None => (CannotJudge, "sysctl.d not captured".into(), ""),
        },
        Recipe::EntrySize => {
            let m = t
                .memory_at_max
                .or(t.memory_now)
                .map(|c| c.entry_object_bytes + c.extension_bytes);
            match m {
                Some(b) => (
                    if (256..=512).contains(&b) {
                        Applies
                    } else {
                        NotNeeded
                    },
                    {
                        let c = t.memory_now.or(t.memory_at_max);
                        format!(
                            "here about {b} bytes per entry: a {} B slab object ({}) and a {} B \
                             extension blob; plus {} B per bucket, allocated up front",
                            c.map_or(0, |c| c.entry_object_bytes),
                            if c.is_some_and(|c| c.object_size_assumed) {
                                "assumed: /proc/slabinfo not read"
                            } else {
                                "from /proc/slabinfo"
                            },
                            c.map_or(0, |c| c.extension_bytes),
                            c.map_or(16, |c| c.bucket_bytes)
                        )
                    },
                    "entries come from the nf_conntrack slab cache; extensions (NAT, acct, \
                     timestamps, labels) add a separate allocation",
                ),
                None => (CannotJudge, "buckets unknown".into(), ""),
            }
        }
        Recipe::HostNetworking => {
            if plan
                .actions
                .iter()
                .any(|a| a.remedy == Some(conntrack_analyze::Remedy::BypassNat))
            {
                (
                    Applies,
                    "translated, high-churn container traffic drives the problem: off NAT it \
                     cannot race for ports"
                        .into(),
                    "only translated connections allocate NAT mappings",
                )
            } else {
                (
                    NotNeeded,
                    "NAT is not what drives a problem here".into(),
                    "only translated connections allocate NAT mappings",
                )
            }
        }
        Recipe::ReuseConnections => {
            if plan
                .actions
                .iter()
                .any(|a| a.remedy == Some(conntrack_analyze::Remedy::ReuseConnections))
            {
                (
                    Applies,
                    format!(
                        "{}: fewer new connections mean fewer inserts, fewer NAT port \
                         allocations and less TIME_WAIT",
                        f.churn.new_per_sec.map_or(
                            "connection churn was observed".into(),
                            |r| format!("about {:.0} new connections/s", r.per_sec)
                        )
                    ),
                    "every new connection is a conntrack insert (and a NAT port allocation when \
                     translated)",
                )
            } else if f.counters.is_live(Counter::Drop) {
                (
                    NotNeeded,
                    "the drops here do not come from connection churn".into(),
                    "",
                )
            } else {
                (NotNeeded, "no notable connection churn".into(), "")
            }
        }
    }
}
