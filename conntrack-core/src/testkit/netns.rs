//! [`TestNetns`]: a throw-away network namespace for one test.

use crate::host::global_guard::GlobalSysctlShare;
use std::ffi::OsStr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh network namespace for one test, deleted on drop (also when the
/// test panics). Its loopback is up.
///
/// Named `ckit-{tag}-{pid}-{n}` (`n` counts the namespaces of this
/// process), so parallel tests and test binaries do not collide. Needs root
/// and `ip` (iproute2). A test process that is killed never drops its
/// namespaces: the first [`TestNetns`] of each process deletes those whose
/// process is gone ([`remove_orphans`](super::remove_orphans)), so that their entries do not
/// linger in the global table every dump walks.
///
/// The namespace's table is compared with the kernel's global
/// `nf_conntrack_max` and hashed into the one global bucket array, so a
/// [`TestNetns::new`] also holds a [`GlobalSysctlShare`] for its life: a
/// lab or test in another process that lowers the max or shrinks the
/// buckets (an exclusive [`crate::host::global_guard::GlobalSysctlGuard`])
/// waits until the test is done instead of changing them under it. A test
/// that holds the exclusive guard itself uses [`TestNetns::unshared`]
/// (taking a share there would wait for itself).
#[derive(Debug)]
pub struct TestNetns {
    name: String,
    // Released after the namespace is deleted (fields drop after `drop`).
    _globals: Option<GlobalSysctlShare>,
}

impl TestNetns {
    /// Creates the namespace (`ip netns add`) and sets its loopback up,
    /// holding a [`GlobalSysctlShare`] while it lives; panics when any of
    /// them fails.
    pub fn new(tag: &str) -> TestNetns {
        let share = GlobalSysctlShare::acquire()
            .unwrap_or_else(|e| panic!("take the global-sysctl lock (shared): {e}"));
        TestNetns::create(tag, Some(share))
    }

    /// [`TestNetns::new`] without the share, for a test that holds the
    /// exclusive global-sysctl guard in this thread.
    pub fn unshared(tag: &str) -> TestNetns {
        TestNetns::create(tag, None)
    }

    fn create(tag: &str, globals: Option<GlobalSysctlShare>) -> TestNetns {
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(|| {
            remove_orphans(std::path::Path::new(NETNS_DIR));
        });
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("ckit-{tag}-{}-{n}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap_or_else(|e| panic!("ip netns add {name}: {e}"));
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = TestNetns {
            name,
            _globals: globals,
        };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`);
    /// add arguments, environment and stdio as usual.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `args` (program first) inside the namespace and returns its
    /// output; panics, with its stdout and stderr, unless it succeeds.
    pub fn exec(&self, args: &[&str]) -> Output {
        let (program, rest) = args.split_first().expect("a program to run");
        let out = self
            .command(program)
            .args(rest)
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {args:?}: {e}", self.name));
        assert!(
            out.status.success(),
            "{args:?} in {} failed ({}): {}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Sets the sysctl `key` (e.g. `net.netfilter.nf_conntrack_acct`) to
    /// `value` inside the namespace; panics when `sysctl -w` fails.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec(&["sysctl", "-qw", &format!("{key}={value}")]);
    }
}

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// The process that made a [`TestNetns`] named `name`
/// (`ckit-{tag}-{pid}-{n}`, the tag may hold dashes), if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("ckit-")?;
    let mut parts = rest.rsplitn(3, '-');
    let (n, pid, tag) = (parts.next()?, parts.next()?, parts.next()?);
    (!tag.is_empty() && n.parse::<usize>().is_ok()).then_some(())?;
    pid.parse().ok()
}

/// Deletes the test namespaces in `dir` whose process no longer exists
/// (no `/proc/PID`); returns their names. A reused PID keeps a namespace,
/// which only delays its removal.
pub fn remove_orphans(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let ok = Command::new("ip")
            .args(["netns", "del", &name])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            removed.push(name);
        }
    }
    removed
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_from_names() {
        assert_eq!(owner_pid("ckit-exlive-prom-4639-0"), Some(4639));
        assert_eq!(owner_pid("ckit-fill-12-3"), Some(12));
        assert_eq!(owner_pid("ckit-12-3"), None, "no tag");
        assert_eq!(owner_pid("ckit-fill-x-3"), None);
        assert_eq!(owner_pid("ckit-fill-12-x"), None);
        assert_eq!(owner_pid("lab-router-12-3"), None);
    }

    /// A namespace named for a process that has exited is deleted; one
    /// of a live process (this one) is kept.
    #[test]
    fn orphans_are_removed_and_live_ones_kept() {
        if !crate::testkit::is_root() {
            eprintln!("orphans_are_removed_and_live_ones_kept: skipped (needs root)");
            return;
        }
        let mut child = Command::new("true").spawn().expect("spawn true");
        let dead = child.id();
        child.wait().expect("wait");
        let orphan = format!("ckit-orphan-test-{dead}-0");
        let live = TestNetns::new("orphan-test");
        assert!(
            Command::new("ip")
                .args(["netns", "add", &orphan])
                .status()
                .unwrap()
                .success()
        );
        let removed = remove_orphans(std::path::Path::new(NETNS_DIR));
        // The dead child's PID could have been reused since: then the
        // namespace stays, and is removed here by hand.
        if std::path::Path::new(&format!("/proc/{dead}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", &orphan]).status();
            return;
        }
        assert!(removed.contains(&orphan), "{removed:?}");
        assert!(!std::path::Path::new(NETNS_DIR).join(&orphan).exists());
        assert!(std::path::Path::new(NETNS_DIR).join(live.name()).exists());
    }
}
