//! Network interfaces: which ones are virtual (loopback, veth pairs,
//! bridges, tunnels, CNI devices), where receive queues are not a
//! hardware's and RPS is not proposed.

use super::RxQueue;

/// Interface name prefixes of virtual or local devices.
const VIRTUAL_PREFIXES: [&str; 18] = [
    "lo", "veth", "docker", "br-", "virbr", "cni", "flannel", "cali", "cilium", "kube-", "tun",
    "tap", "vxlan", "wg", "dummy", "weave", "genev", "lxc",
];

/// Whether an interface is virtual or local (by its name).
///
/// ```
/// use conntrack_core::host::is_virtual_iface;
/// assert!(is_virtual_iface("docker0") && is_virtual_iface("veth3f1a2b0"));
/// assert!(!is_virtual_iface("eth0") && !is_virtual_iface("ens5"));
/// ```
pub fn is_virtual_iface(name: &str) -> bool {
    VIRTUAL_PREFIXES.iter().any(|p| name.starts_with(p))
}

impl RxQueue {
    /// Whether the queue belongs to a virtual interface.
    pub fn is_virtual(&self) -> bool {
        is_virtual_iface(&self.iface)
    }
}
