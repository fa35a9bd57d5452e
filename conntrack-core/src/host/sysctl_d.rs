//! sysctl.d precedence: which file's value wins at boot.
//!
//! Source: systemd `sysctl.d(5)` (v256): configuration files are read from
//! `/etc/sysctl.d`, `/run/sysctl.d`, `/usr/local/lib/sysctl.d` and
//! `/usr/lib/sysctl.d` (this scanner also reads `/lib/sysctl.d`, which
//! procps-ng's `sysctl --system` reads); a file in an earlier directory
//! replaces a file *with the same name* in a later one (`/etc` over `/run`
//! over `/usr/local/lib` over `/usr/lib`); all files are then sorted by file
//! name regardless of directory, and when several set the same key the
//! lexicographically latest file wins. A symlink to `/dev/null` masks a
//! file. procps-ng's `sysctl --system` (sysctl(8), and its issue #200 on
//! basename ordering) applies `/etc/sysctl.conf` after all of them;
//! systemd-sysctl reads it only through the `/etc/sysctl.d/99-sysctl.conf`
//! symlink most distributions ship. Either way a key set in
//! `/etc/sysctl.conf` is treated here as applied last.
//!
//! Key spelling (sysctl.d(5)): `/` and `.` are both separators; when the
//! first separator is a slash, dots and slashes are interchanged. Keys may
//! be glob patterns (systemd 249+), and a leading `-` means "ignore
//! failure".

use super::HostFs;
use serde::{Deserialize, Serialize};

/// The directories scanned, highest precedence first.
pub const SYSCTL_DIRS: [&str; 5] = [
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// The legacy file applied last.
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// Configuration files are read up to this size (1 MiB).
pub const MAX_FILE: u64 = 1 << 20;

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The key in dotted form (may be a glob pattern).
    pub key: String,
    /// The value.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// One configuration file that takes part at boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlFile {
    /// Path on the host (without the scan root).
    pub path: String,
    /// File name.
    pub name: String,
    /// A symlink to `/dev/null`: masks same-named files, sets nothing.
    pub masked: bool,
    /// Assignments in file order.
    pub entries: Vec<Assignment>,
}

/// The result of a scan: files in the order they are applied.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SysctlScan {
    /// Files in application order (`/etc/sysctl.conf` last).
    pub files: Vec<SysctlFile>,
    /// Files replaced by a same-named file in a higher-precedence directory.
    pub shadowed: Vec<String>,
    /// Paths that exist but could not be read.
    pub unreadable: Vec<String>,
}

/// A file that would set a key after the plan's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// The overriding file (host path).
    pub path: String,
    /// Line number in it.
    pub line: usize,
    /// The key the plan sets.
    pub key: String,
    /// The pattern as written in the file.
    pub pattern: String,
    /// The value it sets.
    pub value: String,
}

/// Normalises a key to dotted form (sysctl.d(5) separator rule).
///
/// ```
/// use conntrack_core::host::sysctl_d::normalize_key;
/// assert_eq!(normalize_key("net/netfilter/nf_conntrack_max"), "net.netfilter.nf_conntrack_max");
/// assert_eq!(normalize_key("net.ipv4.conf.enp3s0/200.forwarding"), "net.ipv4.conf.enp3s0/200.forwarding");
/// assert_eq!(normalize_key("net/ipv4/conf/enp3s0.200/forwarding"), "net.ipv4.conf.enp3s0/200.forwarding");
/// ```
pub fn normalize_key(key: &str) -> String {
    let key = key.trim();
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                c => c,
            })
            .collect(),
        _ => key.to_string(),
    }
}

/// Parses one file's text.
///
/// ```
/// use conntrack_core::host::sysctl_d::parse;
/// let a = parse("# c\n; c\n\nnet.netfilter.nf_conntrack_max = 100\n-net/netfilter/nf_conntrack_buckets=64\n-excluded.key\n");
/// assert_eq!(a.len(), 2);
/// assert_eq!(a[0].key, "net.netfilter.nf_conntrack_max");
/// assert_eq!(a[0].value, "100");
/// assert_eq!(a[1].key, "net.netfilter.nf_conntrack_buckets");
/// assert_eq!(a[1].line, 5);
/// ```
pub fn parse(text: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue; // `-key` exclusions and junk
        };
        let k = k.trim();
        let k = k.strip_prefix('-').unwrap_or(k).trim();
        if k.is_empty() || k.starts_with('-') || k.contains(char::is_whitespace) {
            continue; // not a key systemd-sysctl could write
        }
        out.push(Assignment {
            key: normalize_key(k),
            value: v.trim().to_string(),
            line: i + 1,
        });
    }
    out
}

/// Whether `pattern` (with `*` and `?` globs) matches `key`.
///
/// ```
/// use conntrack_core::host::sysctl_d::glob_match;
/// assert!(glob_match("net.netfilter.*", "net.netfilter.nf_conntrack_max"));
/// assert!(glob_match("net.netfilter.nf_conntrack_ma?", "net.netfilter.nf_conntrack_max"));
/// assert!(!glob_match("net.ipv4.*", "net.netfilter.nf_conntrack_max"));
/// ```
pub fn glob_match(pattern: &str, key: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let k: Vec<char> = key.chars().collect();
    let (mut pi, mut ki) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == k[ki]) {
            pi += 1;
            ki += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ki));
            pi += 1;
        } else if let Some((sp, sk)) = star {
            pi = sp + 1;
            ki = sk + 1;
            star = Some((sp, sk + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn rel(host_path: &str) -> &str {
    host_path.trim_start_matches('/')
}

impl HostFs {
    /// Scans the sysctl.d directories and `/etc/sysctl.conf` under the
    /// root (`/` on the host, a capture or fixture tree elsewhere), in the
    /// order systemd-sysctl applies them. Missing directories are not
    /// errors; files are read with the reader's limits (no FIFOs, at most
    /// [`MAX_FILE`] bytes each).
    pub fn read_sysctl_d(&self) -> SysctlScan {
        let mut scan = SysctlScan::default();
        // name -> (dir index, host path)
        let mut chosen: std::collections::BTreeMap<String, (usize, String)> = Default::default();
        for (di, dir) in SYSCTL_DIRS.iter().enumerate() {
            let Ok(mut names) = self.dir_names(rel(dir)) else {
                continue;
            };
            names.retain(|n| n.ends_with(".conf"));
            for name in names {
                let host = format!("{dir}/{name}");
                match chosen.get(&name) {
                    Some((_, winner)) => {
                        // Merged /usr makes /lib and /usr/lib the same directory.
                        if !self.same_file(winner, &host) {
                            scan.shadowed.push(host);
                        }
                    }
                    None => {
                        chosen.insert(name, (di, host));
                    }
                }
            }
        }
        // BTreeMap iterates in byte order of names: the application order.
        for (name, (_, host)) in chosen {
            if self.is_dev_null_link(&host) {
                scan.files.push(SysctlFile {
                    path: host,
                    name,
                    masked: true,
                    entries: Vec::new(),
                });
                continue;
            }
            match self.read_config_text(&host) {
                Some(text) => scan.files.push(SysctlFile {
                    path: host,
                    name,
                    masked: false,
                    entries: parse(&text),
                }),
                None => scan.unreadable.push(host),
            }
        }
        if std::fs::symlink_metadata(self.path(rel(SYSCTL_CONF))).is_ok() {
            match self.read_config_text(SYSCTL_CONF) {
                Some(text) => scan.files.push(SysctlFile {
                    path: SYSCTL_CONF.to_string(),
                    name: "sysctl.conf".to_string(),
                    masked: false,
                    entries: parse(&text),
                }),
                None => scan.unreadable.push(SYSCTL_CONF.to_string()),
            }
        }
        scan
    }

    /// Up to [`MAX_FILE`] bytes of a configuration file at a host path,
    /// decoded lossily; `None` when it cannot be read (or is a FIFO).
    pub(crate) fn read_config_text(&self, host_path: &str) -> Option<String> {
        self.read_limited(rel(host_path), MAX_FILE, true)
            .ok()
            .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
    }

    fn is_dev_null_link(&self, host_path: &str) -> bool {
        std::fs::read_link(self.path(rel(host_path)))
            .map(|t| t == std::path::Path::new("/dev/null"))
            .unwrap_or(false)
    }

    fn same_file(&self, a: &str, b: &str) -> bool {
        match (
            std::fs::canonicalize(self.path(rel(a))),
            std::fs::canonicalize(self.path(rel(b))),
        ) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
    }
}

impl SysctlScan {
    /// A scan of these files, in application order, with nothing shadowed
    /// or unreadable (for files parsed elsewhere).
    pub fn from_files(files: Vec<SysctlFile>) -> Self {
        SysctlScan {
            files,
            ..SysctlScan::default()
        }
    }

    /// Files that would set one of `keys` after the plan's file
    /// `/etc/sysctl.d/<plan_name>`: later names, and `/etc/sysctl.conf`.
    ///
    /// ```
    /// use conntrack_core::host::sysctl_d::{parse, SysctlFile, SysctlScan};
    /// let f = |name: &str, text: &str| SysctlFile {
    ///     path: format!("/usr/lib/sysctl.d/{name}"), name: name.into(),
    ///     masked: false, entries: parse(text) };
    /// let scan = SysctlScan::from_files(vec![
    ///     f("10-early.conf", "net.netfilter.nf_conntrack_max=1"),
    ///     f("99-late.conf", "net.netfilter.nf_conntrack_max=2"),
    /// ]);
    /// let o = scan.overrides("90-conntrack-kit.conf", &["net.netfilter.nf_conntrack_max"]);
    /// assert_eq!(o.len(), 1);
    /// assert_eq!(o[0].path, "/usr/lib/sysctl.d/99-late.conf");
    /// ```
    pub fn overrides(&self, plan_name: &str, keys: &[&str]) -> Vec<Override> {
        let mut out = Vec::new();
        for f in &self.files {
            let later = f.path == SYSCTL_CONF || f.name.as_str() > plan_name;
            if !later || f.masked {
                continue;
            }
            for a in &f.entries {
                for &k in keys {
                    if glob_match(&a.key, k) {
                        out.push(Override {
                            path: f.path.clone(),
                            line: a.line,
                            key: k.to_string(),
                            pattern: a.key.clone(),
                            value: a.value.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// The value a key gets at boot (the last assignment wins), with the
    /// file that sets it.
    pub fn effective(&self, key: &str) -> Option<(&str, &str)> {
        let mut last = None;
        for f in &self.files {
            for a in &f.entries {
                if glob_match(&a.key, key) {
                    last = Some((f.path.as_str(), a.value.as_str()));
                }
            }
        }
        last
    }

    /// Whether a file with this name already exists in `/etc/sysctl.d`.
    pub fn has_etc_file(&self, name: &str) -> bool {
        self.files
            .iter()
            .any(|f| f.name == name && f.path.starts_with("/etc/sysctl.d/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &std::path::Path, p: &str, text: &str) {
        let full = root.join(rel(p));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    #[test]
    fn precedence_by_directory_then_name() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(
            r,
            "/usr/lib/sysctl.d/50-default.conf",
            "net.netfilter.nf_conntrack_max=1\n",
        );
        // Same name in /etc replaces the vendor file.
        write(
            r,
            "/etc/sysctl.d/50-default.conf",
            "net.netfilter.nf_conntrack_max=2\n",
        );
        write(
            r,
            "/run/sysctl.d/50-default.conf",
            "net.netfilter.nf_conntrack_max=3\n",
        );
        write(
            r,
            "/usr/local/lib/sysctl.d/95-k8s.conf",
            "net/netfilter/nf_conntrack_max = 4\n",
        );
        write(
            r,
            "/lib/sysctl.d/05-old.conf",
            "net.netfilter.nf_conntrack_max=5\n",
        );
        write(
            r,
            "/etc/sysctl.d/readme.txt",
            "net.netfilter.nf_conntrack_max=6\n",
        );
        let s = HostFs::new(r).read_sysctl_d();
        let names: Vec<_> = s.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "/lib/sysctl.d/05-old.conf",
                "/etc/sysctl.d/50-default.conf",
                "/usr/local/lib/sysctl.d/95-k8s.conf"
            ]
        );
        assert_eq!(s.shadowed.len(), 2);
        assert_eq!(
            s.effective("net.netfilter.nf_conntrack_max"),
            Some(("/usr/local/lib/sysctl.d/95-k8s.conf", "4"))
        );
        let o = s.overrides("90-conntrack-kit.conf", &["net.netfilter.nf_conntrack_max"]);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].path, "/usr/local/lib/sysctl.d/95-k8s.conf");
        assert!(
            s.overrides("96-conntrack-kit.conf", &["net.netfilter.nf_conntrack_max"])
                .is_empty()
        );
    }

    #[test]
    fn sysctl_conf_is_applied_last_and_globs_match() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(
            r,
            "/etc/sysctl.conf",
            "net.netfilter.nf_conntrack_buckets=7\n",
        );
        write(
            r,
            "/etc/sysctl.d/zz-glob.conf",
            "net.netfilter.*_timeout_time_wait=5\n",
        );
        let s = HostFs::new(r).read_sysctl_d();
        assert_eq!(s.files.last().unwrap().path, SYSCTL_CONF);
        let o = s.overrides(
            "99-zzzz.conf",
            &[
                "net.netfilter.nf_conntrack_buckets",
                "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
            ],
        );
        assert_eq!(o.len(), 2, "{o:?}");
    }

    #[cfg(unix)]
    #[test]
    fn dev_null_symlink_masks() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        write(
            r,
            "/usr/lib/sysctl.d/99-vendor.conf",
            "net.netfilter.nf_conntrack_max=9\n",
        );
        std::fs::create_dir_all(r.join("etc/sysctl.d")).unwrap();
        std::os::unix::fs::symlink("/dev/null", r.join("etc/sysctl.d/99-vendor.conf")).unwrap();
        let s = HostFs::new(r).read_sysctl_d();
        assert!(s.files[0].masked);
        assert!(
            s.overrides("90-x.conf", &["net.netfilter.nf_conntrack_max"])
                .is_empty()
        );
    }

    #[test]
    fn missing_root_is_empty() {
        let s = HostFs::new("/nonexistent/conntrack-kit-test-root").read_sysctl_d();
        assert!(s.files.is_empty() && s.unreadable.is_empty());
    }
}
