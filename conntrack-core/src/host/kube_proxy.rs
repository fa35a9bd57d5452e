//! kube-proxy detection: kube-proxy sets `nf_conntrack_max` when it starts
//! (`max(conntrack.maxPerCore x CPUs, conntrack.min)`, defaults 32768 and
//! 131072; `maxPerCore: 0` leaves it alone) and raises the hash table to
//! `max / 4` buckets when it is smaller (it never lowers it). It also sets
//! the TCP established (default 24h) and close-wait (default 1h) timeouts.
//! Newer releases write each value whenever it differs; older ones
//! (`setIntSysCtl` writing only when the current value is lower) only
//! raise them. Either way a sysctl.d value below kube-proxy's is undone at
//! the next kube-proxy start, so the plan warns and says where to set it.
//!
//! Files scanned under a relocatable root (flags and `KubeProxyConfiguration`
//! YAML, line-based):
//! [`KUBE_PROXY_FILES`]; a `--config=PATH` flag found in one of them is
//! followed once.

use super::HostFs;
use serde::{Deserialize, Serialize};

/// Files that may configure kube-proxy.
pub const KUBE_PROXY_FILES: [&str; 11] = [
    "/var/lib/kube-proxy/config.conf",
    "/var/lib/kube-proxy/kube-proxy-config.yaml",
    "/etc/kubernetes/kube-proxy-config.yaml",
    "/etc/kubernetes/kube-proxy.yaml",
    "/etc/kubernetes/manifests/kube-proxy.yaml",
    "/etc/kubernetes/proxy",
    "/etc/default/kube-proxy",
    "/etc/sysconfig/kube-proxy",
    "/etc/systemd/system/kube-proxy.service",
    "/lib/systemd/system/kube-proxy.service",
    "/usr/lib/systemd/system/kube-proxy.service",
];

/// kube-proxy's default `conntrack.maxPerCore` (`--conntrack-max-per-core`).
pub const KUBE_PROXY_MAX_PER_CORE: u64 = 32768;
/// kube-proxy's default `conntrack.min` (`--conntrack-min`).
pub const KUBE_PROXY_MIN: u64 = 131072;

/// What was found about kube-proxy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct KubeProxy {
    /// Files that configure kube-proxy (host paths).
    pub files: Vec<String>,
    /// `conntrack.maxPerCore` / `--conntrack-max-per-core`, when set.
    pub max_per_core: Option<u32>,
    /// `conntrack.min` / `--conntrack-min`, when set.
    pub min: Option<u32>,
    /// `conntrack.tcpEstablishedTimeout` in seconds, when set.
    pub tcp_established_timeout: Option<u32>,
    /// `conntrack.tcpCloseWaitTimeout` in seconds, when set.
    pub tcp_close_wait_timeout: Option<u32>,
}

impl KubeProxy {
    /// Whether kube-proxy sets `nf_conntrack_max` at start.
    pub fn manages_max(&self) -> bool {
        !self.files.is_empty() && self.max_per_core != Some(0)
    }

    /// The max kube-proxy sets on a host with `cpus` CPUs:
    /// `max(maxPerCore x cpus, min)`.
    ///
    /// ```
    /// use conntrack_core::host::kube_proxy::KubeProxy;
    /// let mut k = KubeProxy::default();
    /// k.files = vec!["/x".into()];
    /// assert_eq!(k.effective_max(2), Some(131072)); // min wins
    /// assert_eq!(k.effective_max(8), Some(262144));
    /// k.max_per_core = Some(0);
    /// let off = k;
    /// assert_eq!(off.effective_max(8), None);
    /// ```
    pub fn effective_max(&self, cpus: u32) -> Option<u64> {
        if !self.manages_max() {
            return None;
        }
        let per = self.max_per_core.map_or(KUBE_PROXY_MAX_PER_CORE, u64::from);
        let min = self.min.map_or(KUBE_PROXY_MIN, u64::from);
        Some(per.saturating_mul(u64::from(cpus.max(1))).max(min))
    }
}

/// Parses a Go duration such as `24h0m0s`, `1h`, `90s`, `1.5h` to seconds.
///
/// ```
/// use conntrack_core::host::kube_proxy::parse_go_duration;
/// assert_eq!(parse_go_duration("24h0m0s"), Some(86400));
/// assert_eq!(parse_go_duration("1h"), Some(3600));
/// assert_eq!(parse_go_duration("\"30s\""), Some(30));
/// assert_eq!(parse_go_duration("soon"), None);
/// ```
pub fn parse_go_duration(s: &str) -> Option<u32> {
    let s = s.trim().trim_matches(|c| c == '"' || c == '\'');
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        let mult = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += v * mult;
        any = true;
    }
    if !num.is_empty() || !any || !total.is_finite() || total > u32::MAX as f64 {
        return None;
    }
    Some(total.round() as u32)
}

fn flag_value<'a>(text: &'a str, flag: &str) -> Option<&'a str> {
    let mut it = text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',');
    while let Some(tok) = it.next() {
        if let Some(rest) = tok.strip_prefix(flag) {
            if let Some(v) = rest.strip_prefix('=') {
                return Some(v);
            }
            if rest.is_empty() {
                return it.find(|t| !t.is_empty());
            }
        }
    }
    None
}

fn yaml_conntrack(text: &str, kp: &mut KubeProxy) -> bool {
    let mut in_block: Option<usize> = None;
    let mut found = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let l = line.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        if let Some(bi) = in_block {
            if indent <= bi {
                in_block = None;
            } else if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                let num = || v.trim_matches('"').parse::<u32>().ok();
                match k.trim() {
                    "maxPerCore" => kp.max_per_core = num().or(kp.max_per_core),
                    "min" => kp.min = num().or(kp.min),
                    "tcpEstablishedTimeout" => {
                        kp.tcp_established_timeout =
                            parse_go_duration(v).or(kp.tcp_established_timeout)
                    }
                    "tcpCloseWaitTimeout" => {
                        kp.tcp_close_wait_timeout =
                            parse_go_duration(v).or(kp.tcp_close_wait_timeout)
                    }
                    _ => {}
                }
                continue;
            }
        }
        if l == "conntrack:" {
            in_block = Some(indent);
            found = true;
        }
    }
    found || text.contains("KubeProxyConfiguration")
}

/// Applies the kube-proxy conntrack settings found in one file's text
/// (a `KubeProxyConfiguration` YAML `conntrack:` block and command-line
/// flags such as `--conntrack-min`) to `kp`; a setting the text does not
/// give (or gives unreadably) keeps its value. Returns whether the text
/// configures kube-proxy at all. [`KubeProxy::files`] is left alone.
///
/// ```
/// use conntrack_core::host::kube_proxy::{apply_config_text, KubeProxy};
/// let mut k = KubeProxy::default();
/// assert!(apply_config_text(&mut k, "ExecStart=/usr/bin/kube-proxy --conntrack-min=65536\n"));
/// assert!(apply_config_text(&mut k, "conntrack:\n  tcpCloseWaitTimeout: 1h0m0s\n"));
/// assert_eq!((k.min, k.tcp_close_wait_timeout), (Some(65536), Some(3600)));
/// assert!(!apply_config_text(&mut k, "[Unit]\nDescription=something else\n"));
/// ```
pub fn apply_config_text(kp: &mut KubeProxy, text: &str) -> bool {
    let yaml = yaml_conntrack(text, kp);
    let flags = apply_flags(text, kp);
    yaml || flags
}

/// The value of a `--config=PATH` (or `--config PATH`) flag in a file's
/// text: the configuration file a kube-proxy command line points to.
///
/// ```
/// use conntrack_core::host::kube_proxy::config_flag;
/// assert_eq!(config_flag("kube-proxy --v=2 --config=/var/lib/kube-proxy/config.conf"),
///            Some("/var/lib/kube-proxy/config.conf"));
/// assert_eq!(config_flag("kube-proxy --v=2"), None);
/// ```
pub fn config_flag(text: &str) -> Option<&str> {
    flag_value(text, "--config")
}

fn apply_flags(text: &str, kp: &mut KubeProxy) -> bool {
    let mut found = false;
    if let Some(v) = flag_value(text, "--conntrack-max-per-core") {
        kp.max_per_core = v.parse().ok().or(kp.max_per_core);
        found = true;
    }
    if let Some(v) = flag_value(text, "--conntrack-min") {
        kp.min = v.parse().ok().or(kp.min);
        found = true;
    }
    if let Some(v) = flag_value(text, "--conntrack-tcp-timeout-established") {
        kp.tcp_established_timeout = parse_go_duration(v).or(kp.tcp_established_timeout);
        found = true;
    }
    if let Some(v) = flag_value(text, "--conntrack-tcp-timeout-close-wait") {
        kp.tcp_close_wait_timeout = parse_go_duration(v).or(kp.tcp_close_wait_timeout);
        found = true;
    }
    found || text.contains("kube-proxy")
}

impl HostFs {
    /// Looks for kube-proxy's configuration under the root
    /// ([`KUBE_PROXY_FILES`], and one `--config=PATH` found in them).
    /// `None` when no file mentions kube-proxy.
    pub fn read_kube_proxy(&self) -> Option<KubeProxy> {
        let mut kp = KubeProxy::default();
        let mut queue: Vec<String> = KUBE_PROXY_FILES.iter().map(|s| s.to_string()).collect();
        let mut followed = false;
        let mut i = 0;
        while i < queue.len() {
            let host = queue[i].clone();
            i += 1;
            if !self
                .stat(host.trim_start_matches('/'))
                .is_some_and(|m| m.is_file())
            {
                continue;
            }
            let Some(text) = self.read_config_text(&host) else {
                continue;
            };
            if apply_config_text(&mut kp, &text) {
                kp.files.push(host);
            }
            if !followed
                && let Some(cfg) = config_flag(&text)
                && cfg.starts_with('/')
                && !queue.iter().any(|q| q == cfg)
            {
                followed = true;
                queue.push(cfg.to_string());
            }
        }
        if kp.files.is_empty() { None } else { Some(kp) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_config_yaml() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("var/lib/kube-proxy");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("config.conf"),
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
             conntrack:\n  maxPerCore: 65536\n  min: 262144\n  tcpEstablishedTimeout: 24h0m0s\n\
             mode: iptables\nmin: 5\n",
        )
        .unwrap();
        let k = HostFs::new(t.path()).read_kube_proxy().unwrap();
        assert_eq!(k.max_per_core, Some(65536));
        assert_eq!(k.min, Some(262144)); // the top-level `min: 5` is not conntrack's
        assert_eq!(k.tcp_established_timeout, Some(86400));
        assert_eq!(k.effective_max(8), Some(524288));
    }

    #[test]
    fn systemd_unit_flags_and_config_follow() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("etc/systemd/system");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("kube-proxy.service"),
            "[Service]\nExecStart=/usr/bin/kube-proxy --conntrack-max-per-core 0 --config=/opt/kp.yaml\n",
        )
        .unwrap();
        std::fs::create_dir_all(t.path().join("opt")).unwrap();
        std::fs::write(
            t.path().join("opt/kp.yaml"),
            "conntrack:\n  tcpCloseWaitTimeout: 1h0m0s\n",
        )
        .unwrap();
        let k = HostFs::new(t.path()).read_kube_proxy().unwrap();
        assert_eq!(k.files.len(), 2);
        assert_eq!(k.max_per_core, Some(0));
        assert!(!k.manages_max());
        assert_eq!(k.tcp_close_wait_timeout, Some(3600));
    }

    #[test]
    fn nothing_found() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(HostFs::new(t.path()).read_kube_proxy(), None);
    }
}
