//! [`HostConfig`]: the host's configuration that decides how a change must
//! be made and whether it lasts: sysctl.d precedence, kube-proxy, whether
//! nf_conntrack and its helpers are modules, and the NAT rules.

use super::kube_proxy::KubeProxy;
use super::modprobe_d::ModprobeScan;
use super::module_kind::ModuleKind;
use super::sysctl_d::SysctlScan;
use super::{HostFs, HostSnapshot};
use crate::nat_rules::NatRules;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Configuration facts of a host. Every part is optional: `None` (or
/// [`ModuleKind::Unknown`]) means it was not read, which is different from
/// "read and empty".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HostConfig {
    /// The sysctl.d files in the order they apply at boot.
    pub sysctl_d: Option<SysctlScan>,
    /// The modprobe.d `options` lines.
    pub modprobe_d: Option<ModprobeScan>,
    /// kube-proxy's conntrack settings, when kube-proxy is configured.
    pub kube_proxy: Option<KubeProxy>,
    /// Whether the files kube-proxy would be configured in were looked at
    /// (so `kube_proxy: None` means "not configured here").
    pub kube_proxy_scanned: bool,
    /// Whether nf_conntrack is a loadable module or built in.
    pub conntrack_module: ModuleKind,
    /// The same for each helper of [`HostSnapshot::helpers`].
    pub helper_kinds: BTreeMap<String, ModuleKind>,
    /// The NAT rules, when a ruleset was captured.
    pub nat_rules: Option<NatRules>,
}

impl HostConfig {
    /// Whether the helper `name` is a module, built in, or unknown.
    pub fn helper_kind(&self, name: &str) -> ModuleKind {
        self.helper_kinds.get(name).copied().unwrap_or_default()
    }
}

impl HostFs {
    /// Reads the configuration files under the root: sysctl.d,
    /// kube-proxy, and module facts for the snapshot's kernel and helpers.
    /// NAT rules are not files: set [`HostConfig::nat_rules`] from a
    /// captured ruleset.
    ///
    /// ```
    /// use conntrack_core::host::{HostFs, ModuleKind};
    /// use conntrack_core::HostSnapshot;
    /// let t = tempfile::tempdir().unwrap();
    /// std::fs::create_dir_all(t.path().join("etc")).unwrap();
    /// std::fs::write(t.path().join("etc/sysctl.conf"), "net.netfilter.nf_conntrack_max = 200\n").unwrap();
    /// let c = HostFs::new(t.path()).read_config(&HostSnapshot::default());
    /// let scan = c.sysctl_d.unwrap();
    /// assert_eq!(scan.effective("net.netfilter.nf_conntrack_max"), Some(("/etc/sysctl.conf", "200")));
    /// assert!(c.kube_proxy.is_none() && c.kube_proxy_scanned);
    /// assert_eq!(c.conntrack_module, ModuleKind::Unknown);
    /// ```
    pub fn read_config(&self, snapshot: &HostSnapshot) -> HostConfig {
        HostConfig {
            sysctl_d: Some(self.read_sysctl_d()),
            modprobe_d: Some(self.read_modprobe_d()),
            kube_proxy: self.read_kube_proxy(),
            kube_proxy_scanned: true,
            conntrack_module: self.read_conntrack_module_kind(snapshot.kernel_release.as_deref()),
            helper_kinds: self.read_helper_kinds(&snapshot.helpers),
            nat_rules: None,
        }
    }

    /// Module facts only (nf_conntrack and the helpers). Module facts
    /// belong to the kernel, not to a network namespace, so a caller
    /// looking at another namespace of this host reads them from `/`
    /// while the sysctl.d and kube-proxy files stay unread.
    pub fn read_module_config(&self, snapshot: &HostSnapshot) -> HostConfig {
        HostConfig {
            conntrack_module: self.read_conntrack_module_kind(snapshot.kernel_release.as_deref()),
            helper_kinds: self.read_helper_kinds(&snapshot.helpers),
            ..Default::default()
        }
    }
}
