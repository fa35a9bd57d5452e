//! Receive Packet Steering: CPU masks from the CPU count and an
//! interface's rx queues, and interface name checks. Whether the load is
//! imbalanced is conntrack-analyze's rule ([`conntrack_analyze::rates::spread`]),
//! so the `cpu-imbalance` finding and the plan always agree.
//!
//! Masks follow the kernel's `rps_cpus` format (Documentation/networking/
//! scaling.rst): a hex CPU bitmap in comma-separated 32-bit groups, most
//! significant group first. With Q queues and N online CPUs (Q < N), queue
//! `q` steers to the CPUs at positions `q, q + Q, q + 2Q, ...` of the sorted
//! online list, so every CPU takes part and queues do not share CPUs.

use crate::plan::QueueMask;

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
pub use conntrack_core::host::is_virtual_iface as is_virtual;

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
    fn offline_gaps_are_respected() {
        let m = queue_masks(&[0, 2, 5], &[0]);
        assert_eq!(m[0].cpus, vec![0, 2, 5]);
        assert_eq!(m[0].mask, "25");
    }
}
