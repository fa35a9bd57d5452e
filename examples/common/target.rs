//! The namespace an example looks at (`--netns NAME`, `--pid PID`, or the
//! current one), checked to exist, and error messages with a hint when
//! privileges are missing. Shared by `watch`, `top` and `exporter` through
//! `#[path = "common/target.rs"] mod target;`.

use conntrack_kit::ct_core::host::HostFs;
use conntrack_kit::netlink::Netns;
use std::path::PathBuf;

/// The namespace to look at, checked to exist.
#[derive(Debug)]
pub struct Target {
    /// The namespace.
    pub netns: Netns,
    /// How to name it in output.
    pub label: String,
    /// The process given with `--pid`.
    #[allow(dead_code)] // read by watch only
    pub pid: Option<u32>,
}

impl Target {
    /// Runs `read` with a [`HostFs`] whose `net_path` names the target
    /// namespace's `/proc/net` files: `/proc/PID/net` for `--pid` (no
    /// namespace switch, so no CAP_SYS_ADMIN), otherwise on a thread in
    /// the namespace through `/proc/thread-self/net` (for the current
    /// namespace, on the calling thread). `/proc/net` itself would be the
    /// main thread's namespace.
    #[allow(dead_code)] // used by watch and top, not exporter
    pub fn with_net_files<T: Send>(
        &self,
        read: impl FnOnce(&HostFs) -> T + Send,
    ) -> Result<T, conntrack_kit::netlink::Error> {
        match self.pid {
            Some(pid) => Ok(read(&HostFs::new("/").for_pid(pid))),
            None => self
                .netns
                .run(|| Ok(read(&HostFs::new("/").for_current_thread()))),
        }
    }
}

pub fn resolve_target(netns: Option<&str>, pid: Option<u32>) -> Result<Target, String> {
    if let Some(name) = netns {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(format!(
                "invalid namespace name {name:?}: give a name as `ip netns list` prints it"
            ));
        }
        let ns = Netns::named(name);
        let path = ns.path().map(PathBuf::from).unwrap_or_default();
        if !path.exists() {
            return Err(format!(
                "network namespace {name:?} does not exist ({} is missing); \
                 `ip netns list` shows the namespaces there are",
                path.display()
            ));
        }
        return Ok(Target {
            netns: ns,
            label: format!("netns {name}"),
            pid: None,
        });
    }
    if let Some(pid) = pid {
        let ns = Netns::pid(pid);
        let path = ns.path().map(PathBuf::from).unwrap_or_default();
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            return Err(format!("no process with PID {pid}"));
        }
        if let Err(e) = std::fs::symlink_metadata(&path) {
            return Err(format!("cannot see {}: {e}", path.display()));
        }
        return Ok(Target {
            netns: ns,
            label: format!("netns of pid {pid}"),
            pid: Some(pid),
        });
    }
    Ok(Target {
        netns: Netns::Current,
        label: "current netns".into(),
        pid: None,
    })
}

/// An error message with a hint when privileges are missing.
pub fn explain(e: &conntrack_kit::netlink::Error) -> String {
    if e.is_permission_denied() {
        format!(
            "{e}\nhint: run as root: ctnetlink needs CAP_NET_ADMIN, and entering another \
             network namespace needs CAP_SYS_ADMIN"
        )
    } else {
        e.to_string()
    }
}
