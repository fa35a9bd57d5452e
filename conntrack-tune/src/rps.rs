//! Receive Packet Steering: CPU masks from the CPU count and an
//! interface's rx queues, per-CPU imbalance detection, and interface name
//! checks.
//!
//! Masks follow the kernel's `rps_cpus` format (Documentation/networking/
//! scaling.rst): a hex CPU bitmap in comma-separated 32-bit groups, most
//! significant group first. With Q queues and N online CPUs (Q < N), queue
//! `q` steers to the CPUs at positions `q, q + Q, q + 2Q, ...` of the sorted
//! online list, so every CPU takes part and queues do not share CPUs.

use crate::plan::QueueMask;
use serde::{Deserialize, Serialize};

/// Formats a CPU set as an `rps_cpus` mask.
///
/// ```
/// use conntrack_tune::rps::cpumask_hex;
/// assert_eq!(cpumask_hex(&[0, 1, 2, 3]), "f");
/// assert_eq!(cpumask_hex(&[0, 33]), "2,00000001");
/// assert_eq!(cpumask_hex(&[]), "0");
/// ```
pub fn cpumask_hex(cpus: &[u32]) -> String {
    let Some(&hi) = cpus.iter().max() else {
        return "0".to_string();
    };
    let words = (hi / 32 + 1) as usize;
    let mut w = vec![0u32; words];
    for &c in cpus {
        w[(c / 32) as usize] |= 1 << (c % 32);
    }
    let mut out = String::new();
    for (i, word) in w.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&format!("{word:x}"));
        } else {
            out.push_str(&format!(",{word:08x}"));
        }
    }
    out
}

/// Normalises a mask for comparison: lower case, no commas, no leading
/// zeros (`"0"` for empty). The kernel prints masks zero-padded to the
/// number of possible CPUs.
///
/// ```
/// use conntrack_tune::rps::normalize_mask;
/// assert_eq!(normalize_mask("00000000,000000FF\n"), "ff");
/// assert_eq!(normalize_mask("00000000"), "0");
/// ```
pub fn normalize_mask(m: &str) -> String {
    let s: String = m
        .trim()
        .chars()
        .filter(|c| *c != ',')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let s = s.trim_start_matches('0');
    if s.is_empty() {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Masks for `queues` rx queues over `online` CPUs: queue `q` gets every
/// `Q`-th CPU starting at position `q`.
///
/// ```
/// use conntrack_tune::rps::queue_masks;
/// let m = queue_masks(&[0, 1, 2, 3, 4, 5, 6, 7], &[0, 1]);
/// assert_eq!(m[0].cpus, vec![0, 2, 4, 6]);
/// assert_eq!(m[0].mask, "55");
/// assert_eq!(m[1].mask, "aa");
/// // One queue: every CPU.
/// assert_eq!(queue_masks(&[0, 1, 2, 3], &[0])[0].mask, "f");
/// ```
pub fn queue_masks(online: &[u32], queues: &[u32]) -> Vec<QueueMask> {
    let mut cpus: Vec<u32> = online.to_vec();
    cpus.sort_unstable();
    cpus.dedup();
    let mut qs: Vec<u32> = queues.to_vec();
    qs.sort_unstable();
    qs.dedup();
    let n = qs.len().max(1);
    qs.iter()
        .enumerate()
        .map(|(i, &q)| {
            let set: Vec<u32> = cpus.iter().copied().skip(i).step_by(n).collect();
            QueueMask {
                queue: q,
                mask: cpumask_hex(&set),
                cpus: set,
            }
        })
        .collect()
}

/// The busiest CPU's share of the work, as a fraction of the way from its
/// fair share (`1/n`) to all of it, at and above which one CPU is judged to
/// carry the load: on 2 CPUs a share of 75%, on 4 CPUs 62.5%, on 32 CPUs
/// 51.6%. The rule is conntrack-analyze's ([`conntrack_analyze::rates::spread`]),
/// so its `cpu-imbalance` finding and this planner always agree.
pub const BUSIEST_EXCESS: f64 = conntrack_analyze::rates::BUSIEST_EXCESS;

/// How unevenly per-CPU work is spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imbalance {
    /// CPUs (by position) carrying at least half the busiest CPU's load.
    pub busy: Vec<u32>,
    /// CPUs considered.
    pub cpus: u32,
    /// Busiest CPU's load over the mean.
    pub peak_over_mean: f64,
    /// Busiest CPU's share of the total load (0..=1); its fair share is
    /// `1 / cpus`.
    #[serde(default)]
    pub busiest_share: f64,
    /// The effective number of CPUs doing the work, `1 / sum(share^2)`
    /// (the inverse Herfindahl index): `k` when `k` CPUs share the load
    /// evenly and the rest are idle, `cpus` when the load is even.
    #[serde(default)]
    pub effective_cpus: f64,
}

/// Detects imbalance in per-CPU loads (NET_RX softirqs or drops). `None`
/// when balanced or when there is nothing to judge (fewer than 2 CPUs, no
/// load, or non-finite figures).
///
/// The load is imbalanced when either
///
/// - the busiest CPU's share `s` is at least halfway from its fair share to
///   all of the load: `(s - 1/n) / (1 - 1/n) >= 0.5` ([`BUSIEST_EXCESS`]).
///   This works for any CPU count, 2 included: 99% on one of 2 CPUs is
///   imbalanced, 60/40 is not (75/25 is the line); or
/// - the work effectively runs on at most half the CPUs
///   (`1 / sum(share^2) <= n / 2`), which catches a multi-queue NIC whose
///   queues keep `k` of `n` CPUs busy (8 of 32) although no single CPU
///   dominates.
///
/// ```
/// use conntrack_tune::rps::imbalance;
/// // 8 of 32 CPUs carry the load: a NIC with 8 queues and RPS off.
/// let mut load = vec![10u64; 32];
/// for l in &mut load[..8] { *l = 1_000_000; }
/// let i = imbalance(&load).unwrap();
/// assert_eq!(i.busy.len(), 8);
/// // A 2-CPU host with 99.45% of the work on CPU 0 (max/mean 1.99).
/// assert!(imbalance(&[381_220_117, 2_104_466]).is_some());
/// // 60/40 on 2 CPUs, or a roughly even spread, is not imbalanced.
/// assert!(imbalance(&[60, 40]).is_none());
/// assert!(imbalance(&[100, 90, 110, 95]).is_none());
/// assert!(imbalance(&[]).is_none());
/// ```
pub fn imbalance(load: &[u64]) -> Option<Imbalance> {
    if load.len() < 2 {
        return None;
    }
    let as_f64: Vec<f64> = load.iter().map(|&v| v as f64).collect();
    let sp = conntrack_analyze::rates::spread(&as_f64)?;
    let n = load.len() as f64;
    let sum: f64 = as_f64.iter().sum();
    let max = as_f64[sp.busiest];
    let busy: Vec<u32> = load
        .iter()
        .enumerate()
        .filter(|(_, v)| **v as f64 >= max / 2.0)
        .map(|(i, _)| i as u32)
        .collect();
    if sp.is_imbalanced() {
        Some(Imbalance {
            busy,
            cpus: load.len() as u32,
            peak_over_mean: max / (sum / n),
            busiest_share: sp.busiest_share,
            effective_cpus: sp.effective_cpus,
        })
    } else {
        None
    }
}

/// Whether a name is a valid Linux interface name (`dev_valid_name`): 1 to
/// 15 bytes, not `.` or `..`, no `/`, `:` or whitespace. Control characters
/// are refused too.
///
/// ```
/// use conntrack_tune::rps::valid_ifname;
/// assert!(valid_ifname("eth0"));
/// assert!(valid_ifname("$(reboot)")); // valid for the kernel: quote it!
/// assert!(!valid_ifname("../../etc"));
/// assert!(!valid_ifname("a b"));
/// assert!(!valid_ifname("sixteen-chars-xx"));
/// ```
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

/// Whether an interface is virtual or local (loopback, veth, bridges,
/// tunnels, CNI devices), where RPS is not proposed.
pub fn is_virtual(name: &str) -> bool {
    const PREFIXES: [&str; 18] = [
        "lo", "veth", "docker", "br-", "virbr", "cni", "flannel", "cali", "cilium", "kube-", "tun",
        "tap", "vxlan", "wg", "dummy", "weave", "genev", "lxc",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_partition_all_cpus() {
        let online: Vec<u32> = (0..32).collect();
        let m = queue_masks(&online, &[0, 1, 2, 3, 4, 5, 6, 7]);
        let mut all: Vec<u32> = m.iter().flat_map(|q| q.cpus.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, online);
        assert_eq!(m[0].mask, "1010101");
        assert_eq!(m[7].mask, "80808080");
    }

    #[test]
    fn wide_masks() {
        let online: Vec<u32> = (0..72).collect();
        let m = queue_masks(&online, &[0]);
        assert_eq!(m[0].mask, "ff,ffffffff,ffffffff");
        assert_eq!(normalize_mask(&m[0].mask), "ffffffffffffffffff");
    }

    #[test]
    fn two_cpus_judged_by_the_busiest_share() {
        // The bundled sample: 99.45% of NET_RX on CPU 0 of 2 (max/mean
        // 1.989, which the old "max >= 2 x mean" rule missed).
        let i = imbalance(&[381_220_117, 2_104_466]).expect("imbalanced");
        assert!((i.busiest_share - 0.9945).abs() < 1e-3, "{i:?}");
        assert_eq!(i.busy, vec![0]);
        assert!(imbalance(&[75, 25]).is_some());
        assert!(imbalance(&[74, 26]).is_none());
        assert!(imbalance(&[60, 40]).is_none());
        assert!(imbalance(&[1, 0]).is_some());
        // Symmetric in the CPU order.
        assert_eq!(imbalance(&[1, 99]).unwrap().busy, vec![1]);
    }

    #[test]
    fn many_cpus() {
        // Half of 16 CPUs busy: imbalanced; 12 of 16 busy: not.
        let mut l = vec![0u64; 16];
        l[..8].iter_mut().for_each(|v| *v = 100);
        assert!(imbalance(&l).is_some());
        l[..12].iter_mut().for_each(|v| *v = 100);
        assert!(imbalance(&l).is_none());
        // Huge counts do not overflow.
        assert!(imbalance(&[u64::MAX, u64::MAX]).is_none());
        assert!(imbalance(&[u64::MAX, 0]).is_some());
    }

    #[test]
    fn offline_gaps_are_respected() {
        let m = queue_masks(&[0, 2, 5], &[0]);
        assert_eq!(m[0].cpus, vec![0, 2, 5]);
        assert_eq!(m[0].mask, "25");
    }
}
