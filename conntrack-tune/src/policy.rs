//! The operator's policy: how much headroom, how much memory, how long the
//! chains may be, what must not be touched, and how much risk is fine.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How much risk the operator accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskTolerance {
    /// Only low-risk actions; never NOTRACK; timeouts only to conservative
    /// values.
    Conservative,
    /// The default: medium-risk actions with their risk stated.
    Moderate,
    /// High-risk actions (NOTRACK of TCP services) are allowed.
    Aggressive,
}

/// The operator's policy.
///
/// ```
/// use conntrack_tune::Policy;
/// let p = Policy::default();
/// assert_eq!(p.headroom, 1.5);
/// assert!(p.validate().is_ok());
/// let mut bad = Policy::default();
/// bad.headroom = 0.5;
/// assert!(bad.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Policy {
    /// `max` must be at least the observed peak times this (>= 1).
    pub headroom: f64,
    /// Worst-case conntrack memory (entries at `max` plus hash tables) may
    /// use at most this share of RAM (0 < share <= 1).
    pub memory_budget_share: f64,
    /// Highest acceptable mean chain length at a full table,
    /// `2 x max / buckets` (every entry is hashed twice).
    pub max_chain_length: f64,
    /// Timeouts the operator does not want touched: sysctl names with or
    /// without the `net.netfilter.` prefix
    /// (`nf_conntrack_tcp_timeout_established`).
    pub protected_timeouts: BTreeSet<String>,
    /// Whether NAT is in use on this host (`None`: unknown, judged from
    /// the observed flows).
    pub nat_in_use: Option<bool>,
    /// Whether a stateful firewall depends on conntrack (`None`: unknown,
    /// which rules NOTRACK out).
    pub stateful_firewall: Option<bool>,
    /// Whether kube-proxy manages `nf_conntrack_max` on this host (`None`:
    /// detect from the host's files).
    pub kube_proxy_manages_max: Option<bool>,
    /// Risk tolerance.
    pub risk: RiskTolerance,
    /// Base name of the sysctl.d file the plan writes.
    pub sysctl_file_name: String,
    /// Base name of the modprobe.d file the plan writes.
    pub modprobe_file_name: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            headroom: 1.5,
            memory_budget_share: 0.05,
            max_chain_length: 2.0,
            protected_timeouts: BTreeSet::new(),
            nat_in_use: None,
            stateful_firewall: None,
            kube_proxy_manages_max: None,
            risk: RiskTolerance::Moderate,
            sysctl_file_name: "90-conntrack-kit.conf".to_string(),
            modprobe_file_name: "conntrack-kit.conf".to_string(),
        }
    }
}

/// A policy value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `headroom` is not a finite number >= 1.
    #[error("headroom must be a finite number >= 1")]
    Headroom,
    /// `memory_budget_share` is not in (0, 1].
    #[error("memory_budget_share must be in (0, 1]")]
    MemoryBudget,
    /// `max_chain_length` is not a finite number >= 0.25.
    #[error("max_chain_length must be a finite number >= 0.25")]
    ChainLength,
    /// A file name is empty, contains '/', or does not end in `.conf`.
    #[error("file names must be non-empty base names ending in .conf")]
    FileName,
}

impl Policy {
    /// Checks every value is in range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(self.headroom.is_finite() && self.headroom >= 1.0) {
            return Err(PolicyError::Headroom);
        }
        if !(self.memory_budget_share.is_finite()
            && self.memory_budget_share > 0.0
            && self.memory_budget_share <= 1.0)
        {
            return Err(PolicyError::MemoryBudget);
        }
        if !(self.max_chain_length.is_finite() && self.max_chain_length >= 0.25) {
            return Err(PolicyError::ChainLength);
        }
        for name in [&self.sysctl_file_name, &self.modprobe_file_name] {
            let ok = name.ends_with(".conf")
                && name.len() > 5
                && !name.contains('/')
                && !name.starts_with('.')
                && !name.chars().any(|c| c.is_control());
            if !ok {
                return Err(PolicyError::FileName);
            }
        }
        Ok(())
    }

    /// Whether a timeout sysctl is protected.
    ///
    /// ```
    /// use conntrack_tune::Policy;
    /// let mut p = Policy::default();
    /// p.protected_timeouts.insert("nf_conntrack_tcp_timeout_established".into());
    /// assert!(p.is_protected("net.netfilter.nf_conntrack_tcp_timeout_established"));
    /// assert!(!p.is_protected("net.netfilter.nf_conntrack_tcp_timeout_time_wait"));
    /// ```
    pub fn is_protected(&self, key: &str) -> bool {
        let short = key.strip_prefix("net.netfilter.").unwrap_or(key);
        self.protected_timeouts.iter().any(|p| {
            let p = p.strip_prefix("net.netfilter.").unwrap_or(p);
            p == short
        })
    }
}
