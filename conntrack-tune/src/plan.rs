//! The plan: an ordered list of [`Action`]s, each carrying its evidence,
//! expected effect, risk, rollback and verification, plus what the planner
//! declined to propose, what it could not judge, and warnings.
//!
//! A plan is data. Nothing here touches the host; the renderers in
//! [`crate::render`] turn it into files and a script that the caller may
//! choose to apply.

use conntrack_analyze::capacity::SizingEra;
use conntrack_analyze::{FindingId, Remedy};
use conntrack_core::nat_rules::SourceNatRule;
use conntrack_core::{L4Proto, TimeoutKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The schema id of a plan's JSON document ([`crate::render::json`]).
pub const PLAN_SCHEMA: &str = "conntrack-kit/plan";
/// The schema version: additive changes keep it, a field that goes away,
/// is renamed or changes meaning bumps it.
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// How urgent an action is. Plans are ordered by priority, then by the
/// order the planner found the actions in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Priority {
    /// Stop the bleeding: packets are being dropped now.
    P0,
    /// Fix the cause on the host.
    P1,
    /// Fix the cause in the workload.
    P2,
    /// Hygiene: persistence, ratios, unused helpers.
    P3,
}

impl Priority {
    /// A short description of what the priority means.
    ///
    /// ```
    /// use conntrack_tune::Priority;
    /// assert_eq!(Priority::P0.meaning(), "stop the bleeding");
    /// ```
    pub const fn meaning(self) -> &'static str {
        match self {
            Priority::P0 => "stop the bleeding",
            Priority::P1 => "fix the cause on the host",
            Priority::P2 => "fix the cause in the workload",
            Priority::P3 => "hygiene",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        };
        f.write_str(s)
    }
}

/// Where an action must be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scope {
    /// The initial network namespace of the host: `nf_conntrack_max` is
    /// read-only in other namespaces (commit 2671fa4dc010 "netfilter:
    /// conntrack: Make global sysctls readonly in non-init netns", v5.13,
    /// backported to stable kernels) and the hash table can only be resized
    /// from there.
    HostInitNamespace,
    /// The namespace the observation was taken in (per-namespace sysctls
    /// such as timeouts).
    ObservedNamespace,
    /// A network interface of the host (RPS).
    Interface,
    /// The firewall ruleset (NOTRACK rules).
    Firewall,
    /// The application or its deployment, not the kernel.
    Workload,
    /// Boot-time configuration (files read at boot or module load).
    Boot,
}

/// Which sysctl a value belongs to, with its `/proc/sys` path derivable.
///
/// ```
/// use conntrack_tune::plan::sysctl_path;
/// assert_eq!(sysctl_path("net.netfilter.nf_conntrack_max"),
///            "/proc/sys/net/netfilter/nf_conntrack_max");
/// ```
pub fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// The `/sys` path of an rx queue's RPS mask.
pub fn rps_path(iface: &str, queue: u32) -> String {
    format!("/sys/class/net/{iface}/queues/rx-{queue}/rps_cpus")
}

/// The module parameter file that resizes the hash table at run time.
pub const HASHSIZE_PARAM_PATH: &str = "/sys/module/nf_conntrack/parameters/hashsize";

/// The sysctl key of the conntrack table limit.
pub const KEY_MAX: &str = "net.netfilter.nf_conntrack_max";
/// The sysctl key of the hash table size (writable in the initial
/// namespace since 4.9, commit 3183ab8997a4 "netfilter: conntrack: allow
/// increasing bucket size via sysctl too").
pub const KEY_BUCKETS: &str = "net.netfilter.nf_conntrack_buckets";

/// The conntrack sysctls that are global (one value for the whole host,
/// writable only in the initial network namespace): `nf_conntrack_max`,
/// `nf_conntrack_buckets`, `nf_conntrack_expect_max` and the legacy
/// `net.nf_conntrack_max` alias. Since 5.13 (commit 2671fa4dc010
/// "netfilter: conntrack: Make global sysctls readonly in non-init netns")
/// they are read-only elsewhere. Every other `net.netfilter.nf_conntrack_*`
/// key (timeouts, `acct`, `events`, ...) is per namespace: a new namespace
/// starts from the kernel defaults, and the host's `/etc/sysctl.d` (applied
/// by systemd-sysctl in the initial namespace) never reaches it.
///
/// ```
/// use conntrack_tune::plan::is_global_sysctl;
/// assert!(is_global_sysctl("net.netfilter.nf_conntrack_max"));
/// assert!(is_global_sysctl("net.nf_conntrack_max"));
/// assert!(!is_global_sysctl("net.netfilter.nf_conntrack_tcp_timeout_time_wait"));
/// ```
pub fn is_global_sysctl(key: &str) -> bool {
    matches!(
        key,
        KEY_MAX | KEY_BUCKETS | "net.netfilter.nf_conntrack_expect_max" | "net.nf_conntrack_max"
    )
}

/// One RPS mask for one receive queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QueueMask {
    /// Queue index (`rx-N`).
    pub queue: u32,
    /// The mask as the kernel's `rps_cpus` file takes it (comma-separated
    /// 32-bit hex groups, most significant first).
    pub mask: String,
    /// The CPUs in the mask.
    pub cpus: Vec<u32>,
}

/// Application advice topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AdviceTopic {
    /// Reuse connections (HTTP keepalive, upstream keepalive in proxies).
    Keepalive,
    /// Pool connections to databases and backends.
    ConnectionPooling,
    /// Run a high-churn container with host networking (no NAT entry).
    HostNetworking,
    /// Avoid parallel same-tuple UDP queries (DNS A/AAAA races).
    DnsClash,
    /// Configure kube-proxy instead of the sysctl it rewrites.
    KubeProxyConfig,
    /// Set per-namespace sysctls where the namespace is created (`ip netns
    /// exec`, the container runtime), not in the host's `/etc/sysctl.d`.
    NamespaceSysctls,
    /// Rate-limit or block sources of unanswered flows.
    UnrepliedSources,
    /// Make the application close its sockets (CLOSE_WAIT).
    CloseWait,
    /// Find the source of invalid packets.
    InvalidPackets,
    /// Upgrade the kernel.
    KernelUpgrade,
    /// Give source NAT an address to map to.
    NatAddress,
}

impl AdviceTopic {
    /// The kebab-case name used in action ids.
    pub const fn name(self) -> &'static str {
        match self {
            AdviceTopic::Keepalive => "keepalive",
            AdviceTopic::ConnectionPooling => "pooling",
            AdviceTopic::HostNetworking => "host-networking",
            AdviceTopic::DnsClash => "dns-clash",
            AdviceTopic::KubeProxyConfig => "kube-proxy",
            AdviceTopic::NamespaceSysctls => "netns",
            AdviceTopic::UnrepliedSources => "unreplied-sources",
            AdviceTopic::CloseWait => "close-wait",
            AdviceTopic::InvalidPackets => "invalid",
            AdviceTopic::KernelUpgrade => "kernel-upgrade",
            AdviceTopic::NatAddress => "nat-address",
        }
    }
}

/// What an action does. Each variant holds what the renderers need; the
/// action's id is derived from the kind and its subject
/// ([`ActionKind::id`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum ActionKind {
    /// Set `nf_conntrack_max` now.
    SetMax {
        /// The new limit.
        max: u64,
    },
    /// Resize the conntrack hash table now.
    SetBuckets {
        /// The new bucket count (already a multiple of the allocation unit).
        buckets: u32,
        /// Whether `net.netfilter.nf_conntrack_buckets` is writable on this
        /// kernel (4.9+); otherwise the module parameter file is used.
        via_sysctl: bool,
    },
    /// Change one conntrack timeout now.
    SetTimeout {
        /// Which timeout.
        key: TimeoutKey,
        /// The new value, in seconds.
        secs: u32,
        /// The lowest value the planner would ever propose for this key,
        /// in seconds.
        floor_secs: u32,
        /// Why the floor is where it is.
        floor_reason: String,
    },
    /// Make source NAT choose ports fully at random.
    FullyRandomNat {
        /// The captured rules that lack it (empty when the ruleset was not
        /// captured).
        rules: Vec<SourceNatRule>,
    },
    /// Persist sysctls in a sysctl.d file.
    PersistSysctl {
        /// The file to write (under `/etc/sysctl.d`).
        file: String,
        /// The assignments, in order.
        entries: Vec<(String, String)>,
    },
    /// Persist a module option in a modprobe.d file (effective only when
    /// nf_conntrack is a loadable module).
    ModprobeOption {
        /// The file to write (under `/etc/modprobe.d`).
        file: String,
        /// Module name.
        module: String,
        /// Option name.
        option: String,
        /// Option value.
        value: String,
    },
    /// Add a kernel command line parameter (built-in nf_conntrack).
    KernelCmdline {
        /// `module.param`.
        param: String,
        /// Value.
        value: String,
    },
    /// Enable RPS on an interface's receive queues.
    EnableRps {
        /// Interface name.
        iface: String,
        /// One mask per queue.
        queues: Vec<QueueMask>,
    },
    /// Exempt a service's traffic from connection tracking.
    Notrack {
        /// Layer 4 protocol.
        proto: L4Proto,
        /// The service port on this host.
        port: u16,
        /// What stops working for this traffic.
        stops_working: Vec<String>,
    },
    /// Unload unused conntrack helper modules (loadable ones: a built-in
    /// helper cannot be unloaded and is never listed here).
    UnloadHelpers {
        /// Module names, e.g. `nf_conntrack_ftp`.
        modules: Vec<String>,
    },
    /// Advice for the application or its deployment.
    Advice {
        /// Topic.
        topic: AdviceTopic,
    },
}

impl ActionKind {
    /// A short machine-friendly name of the kind.
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::SetMax { .. } => "set_max",
            ActionKind::SetBuckets { .. } => "set_buckets",
            ActionKind::SetTimeout { .. } => "set_timeout",
            ActionKind::FullyRandomNat { .. } => "fully_random_nat",
            ActionKind::PersistSysctl { .. } => "persist_sysctl",
            ActionKind::ModprobeOption { .. } => "modprobe_option",
            ActionKind::KernelCmdline { .. } => "kernel_cmdline",
            ActionKind::EnableRps { .. } => "enable_rps",
            ActionKind::Notrack { .. } => "notrack",
            ActionKind::UnloadHelpers { .. } => "unload_helpers",
            ActionKind::Advice { .. } => "advice",
        }
    }

    /// The stable id: the kind, and its subject where one kind can occur
    /// several times (`timeout:tcp_timeout_time_wait`, `rps:eth0`,
    /// `notrack:udp/53`, `advice:keepalive`).
    ///
    /// ```
    /// use conntrack_tune::plan::{ActionKind, AdviceTopic};
    /// use conntrack_core::TimeoutKey;
    /// assert_eq!(ActionKind::SetMax { max: 1 }.id(), "raise-max");
    /// let t = ActionKind::SetTimeout { key: TimeoutKey::TcpTimeWait, secs: 60,
    ///                                  floor_secs: 60, floor_reason: String::new() };
    /// assert_eq!(t.id(), "timeout:tcp_timeout_time_wait");
    /// assert_eq!(ActionKind::Advice { topic: AdviceTopic::Keepalive }.id(), "advice:keepalive");
    /// ```
    pub fn id(&self) -> String {
        match self {
            ActionKind::SetMax { .. } => "raise-max".into(),
            ActionKind::SetBuckets { .. } => "buckets".into(),
            ActionKind::SetTimeout { key, .. } => format!("timeout:{key}"),
            ActionKind::FullyRandomNat { .. } => "nat:fully-random".into(),
            ActionKind::PersistSysctl { .. } => "persist:sysctl".into(),
            ActionKind::ModprobeOption { .. } => "persist:modprobe".into(),
            ActionKind::KernelCmdline { .. } => "persist:cmdline".into(),
            ActionKind::EnableRps { iface, .. } => format!("rps:{iface}"),
            ActionKind::Notrack { proto, port, .. } => format!("notrack:{proto}/{port}"),
            ActionKind::UnloadHelpers { .. } => "unload-helpers".into(),
            ActionKind::Advice { topic } => format!("advice:{}", topic.name()),
        }
    }
}

/// A value an action changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Value {
    /// A count (entries, buckets).
    Count(u64),
    /// Seconds.
    Seconds(u32),
    /// A CPU mask per receive queue (`rx-0=ff`).
    Mask(String),
    /// Anything else (a file's content, a rule).
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Count(n) => write!(f, "{n}"),
            Value::Seconds(s) => write!(f, "{s}"),
            Value::Mask(m) | Value::Text(m) => f.write_str(m),
        }
    }
}

/// The value being changed: current and proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Change {
    /// What is changed (a sysctl key, a path, a rule).
    pub target: String,
    /// The current value, when known.
    pub current: Option<Value>,
    /// The proposed value.
    pub proposed: Value,
}

/// Where a reason of an action comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
#[non_exhaustive]
pub enum Source {
    /// A finding of the diagnosis.
    Finding(FindingId),
    /// The observed facts (counters, table, flows).
    Facts,
    /// The operator's policy.
    Policy,
    /// A kernel fact.
    Kernel,
    /// The host's configuration files.
    HostFiles,
    /// Another action of the plan.
    Plan,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Finding(id) => write!(f, "finding:{id}"),
            Source::Facts => f.write_str("facts"),
            Source::Policy => f.write_str("policy"),
            Source::Kernel => f.write_str("kernel"),
            Source::HostFiles => f.write_str("host files"),
            Source::Plan => f.write_str("plan"),
        }
    }
}

/// One reason for an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "ActionEvidence"))]
#[non_exhaustive]
pub struct Evidence {
    /// Where it comes from.
    pub source: Source,
    /// The fact in words.
    pub text: String,
    /// The numbers behind it, keyed like diagnosis evidence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numbers: Vec<conntrack_analyze::Evidence>,
}

impl Evidence {
    /// Evidence without numbers.
    pub fn new(source: Source, text: impl Into<String>) -> Self {
        Evidence {
            source,
            text: text.into(),
            numbers: Vec::new(),
        }
    }

    /// Adds a number.
    pub fn num(mut self, e: conntrack_analyze::Evidence) -> Self {
        self.numbers.push(e);
        self
    }
}

/// What the action is expected to do.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Effect {
    /// Change of the worst-case conntrack memory (entries at max plus hash
    /// tables), in bytes; positive means more memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_delta_bytes: Option<i64>,
    /// Worst-case conntrack memory after the action, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_after_bytes: Option<u64>,
    /// Entries freed in steady state (Little's law).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries_freed: Option<u64>,
    /// Mean chain length `2 x max / buckets` after the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_length_after: Option<f64>,
    /// The effect in words.
    pub text: String,
}

/// How risky an action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Reversible and local.
    Low,
    /// Reversible, but can change behaviour for some traffic.
    Medium,
    /// Changes what the firewall or NAT can do.
    High,
}

/// The risk of an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Risk {
    /// Level.
    pub level: RiskLevel,
    /// What can go wrong.
    pub text: String,
}

/// A check that tells whether an action worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "type")]
#[non_exhaustive]
pub enum Verify {
    /// A file (under `/proc` or `/sys`) must read back this value.
    ReadBack {
        /// Absolute path on the host.
        path: String,
        /// Expected content (trimmed). For CPU masks, compared without
        /// commas and leading zeros.
        expected: String,
    },
    /// A counter must stop increasing over the next interval.
    CounterFlat {
        /// Counter name (`conntrack -S` spelling).
        counter: String,
    },
    /// Something to look at by hand.
    Manual {
        /// What to check.
        text: String,
    },
}

/// One proposed change with everything needed to judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Action {
    /// The stable identifier, [`ActionKind::id`] of the kind.
    #[cfg_attr(
        feature = "schema",
        schemars(
            description = "The stable id of the action: its kind, and its subject where one \
                           kind can occur several times (`raise-max`, `buckets`, \
                           `timeout:tcp_timeout_time_wait`, `rps:eth0`, `notrack:udp/53`, \
                           `advice:keepalive`)."
        )
    )]
    pub id: String,
    /// The finding remedy it applies, when it applies one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Remedy>,
    /// Priority.
    pub priority: Priority,
    /// What it does.
    pub kind: ActionKind,
    /// One line for humans.
    pub title: String,
    /// Where it must be applied.
    pub scope: Scope,
    /// Current and proposed value, when the action changes a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// Why.
    pub evidence: Vec<Evidence>,
    /// Expected effect.
    pub effect: Effect,
    /// Risk.
    pub risk: Risk,
    /// How to undo it.
    pub rollback: String,
    /// How to tell it worked.
    pub verify: Vec<Verify>,
}

impl Action {
    /// An action of a kind, with its id derived from the kind; the other
    /// fields start empty.
    pub fn new(
        kind: ActionKind,
        priority: Priority,
        scope: Scope,
        title: impl Into<String>,
    ) -> Self {
        Action {
            id: kind.id(),
            remedy: None,
            priority,
            kind,
            title: title.into(),
            scope,
            change: None,
            evidence: Vec::new(),
            effect: Effect::default(),
            risk: Risk {
                level: RiskLevel::Low,
                text: String::new(),
            },
            rollback: String::new(),
            verify: Vec::new(),
        }
    }

    /// An advice action (a change outside conntrack's settings, for the
    /// operator to make) on `topic`.
    pub fn advice(
        topic: AdviceTopic,
        priority: Priority,
        scope: Scope,
        title: impl Into<String>,
    ) -> Self {
        Action::new(ActionKind::Advice { topic }, priority, scope, title)
    }

    /// Answering `finding` with `remedy`: records the remedy and cites
    /// the finding as the first evidence.
    pub fn answering(mut self, remedy: Remedy, finding: Evidence) -> Self {
        self.remedy = Some(remedy);
        self.evidence.insert(0, finding);
        self
    }
}

/// Something the planner considered and decided against, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Declined {
    /// What was considered (e.g. `notrack udp/53`, `raise-max`).
    pub what: String,
    /// The finding remedy it declines, when it declines one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Remedy>,
    /// Why not.
    pub why: String,
}

/// A folk recipe evaluated for this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct FolkVerdict {
    /// Which recipe.
    pub recipe: crate::folk::Recipe,
    /// What the operator would type or read.
    pub text: String,
    /// Whether it applies here.
    pub verdict: crate::folk::Verdict,
    /// Why, with the numbers of this host.
    pub reason: String,
    /// The kernel fact behind the verdict, with its source.
    pub kernel_fact: String,
}

/// A part of the judgement the observation did not allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Unjudged {
    /// The question (e.g. `table sizing`, `rps`).
    pub topic: String,
    /// What was missing.
    pub missing: String,
}

/// Kinds of warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningKind {
    /// An existing sysctl.d file (or `/etc/sysctl.conf`) would override the
    /// plan's file at boot.
    PersistenceOverridden,
    /// kube-proxy rewrites conntrack settings when it starts.
    KubeProxyManaged,
    /// The memory budget and the headroom over the peak cannot both be met.
    BudgetConflict,
    /// The current configuration already exceeds the memory budget.
    OverBudget,
    /// The observed peak is censored (the table was full), so demand may be
    /// higher than what was seen.
    PeakCensored,
    /// Anything else.
    Other,
}

/// A warning attached to the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Warning {
    /// Kind.
    pub kind: WarningKind,
    /// Text.
    pub text: String,
}

/// What the planner knew about the host when it planned.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct PlanContext {
    /// Kernel version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// The sizing era the kernel belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub era: Option<SizingEra>,
    /// Whether the observation came from the initial namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_netns: Option<bool>,
    /// Current entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Observed peak used for sizing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<u32>,
    /// Current max.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Current buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<u32>,
    /// Memory budget in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_budget_bytes: Option<u64>,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Plan {
    /// Actions ordered by priority.
    pub actions: Vec<Action>,
    /// What was considered and not proposed.
    pub declined: Vec<Declined>,
    /// What could not be judged from the observation.
    pub unjudged: Vec<Unjudged>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// Facts the plan was made from.
    pub context: PlanContext,
    /// Folk recipes, each judged for this host.
    #[serde(default)]
    pub folk: Vec<FolkVerdict>,
}

/// A plan as a JSON document: the plan's fields after the schema id and
/// version ([`crate::render::json`] writes it). A [`crate::report::Report`]
/// holds the bare [`Plan`]: the report's own schema id covers it.
#[derive(Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(crate) struct PlanDocument<'a> {
    /// [`PLAN_SCHEMA`].
    #[cfg_attr(
        feature = "schema",
        schemars(
            extend("const" = PLAN_SCHEMA),
            description = "The schema id, `conntrack-kit/plan`."
        )
    )]
    pub schema: &'static str,
    /// [`PLAN_SCHEMA_VERSION`].
    #[cfg_attr(
        feature = "schema",
        schemars(
            extend("const" = PLAN_SCHEMA_VERSION),
            description = "The schema version: additive changes keep it, a field that goes \
                           away, is renamed or changes meaning bumps it."
        )
    )]
    pub version: u32,
    /// The plan.
    #[serde(flatten)]
    pub plan: &'a Plan,
}

impl<'a> PlanDocument<'a> {
    pub(crate) fn of(plan: &'a Plan) -> Self {
        PlanDocument {
            schema: PLAN_SCHEMA,
            version: PLAN_SCHEMA_VERSION,
            plan,
        }
    }
}

impl Plan {
    /// The action with the given id.
    pub fn action(&self, id: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.id == id)
    }

    /// The first action of a kind.
    pub fn find(&self, pred: impl Fn(&ActionKind) -> bool) -> Option<&Action> {
        self.actions.iter().find(|a| pred(&a.kind))
    }

    /// Whether the plan acts on a remedy or declines it with a reason.
    pub fn addresses(&self, r: Remedy) -> bool {
        self.actions.iter().any(|a| a.remedy == Some(r))
            || self.declined.iter().any(|d| d.remedy == Some(r))
    }

    /// The remedies of `findings` the plan neither acts on nor declines
    /// (empty for every plan the planner makes).
    pub fn unanswered(&self, findings: &[conntrack_analyze::Finding]) -> Vec<(FindingId, Remedy)> {
        findings
            .iter()
            .flat_map(|f| f.remedies.iter().map(move |&r| (f.id, r)))
            .filter(|&(_, r)| !self.addresses(r))
            .collect()
    }

    /// Actions whose id starts with `prefix`.
    pub fn actions_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Action> {
        self.actions
            .iter()
            .filter(move |a| a.id.starts_with(prefix))
    }

    /// Whether a warning of this kind is present.
    pub fn has_warning(&self, kind: WarningKind) -> bool {
        self.warnings.iter().any(|w| w.kind == kind)
    }

    /// The plan restricted to actions applied in the given scopes (e.g.
    /// only [`Scope::ObservedNamespace`] for an agent inside a container,
    /// which must never write the host's global values). Everything else
    /// (declined, unjudged, warnings, context) is kept.
    ///
    /// ```
    /// use conntrack_tune::plan::{Plan, Scope};
    /// let p = Plan::default().only(&[Scope::ObservedNamespace]);
    /// assert!(p.actions.is_empty());
    /// ```
    pub fn only(&self, scopes: &[Scope]) -> Plan {
        let mut p = self.clone();
        p.actions.retain(|a| scopes.contains(&a.scope));
        p
    }

    /// Sorts actions by priority, keeping the discovery order within one
    /// priority.
    pub fn sort(&mut self) {
        self.actions.sort_by_key(|a| a.priority);
    }
}
