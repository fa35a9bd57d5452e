//! Network namespaces: which conntrack table a socket talks to.
//!
//! A netlink socket belongs to the network namespace it was created in for
//! its whole life, so a socket for another namespace is created on a
//! short-lived thread that enters that namespace with `setns(2)` and hands
//! the socket back; the rest of the process never changes namespace.
//!
//! [`ScratchNetns`] creates a throw-away named namespace (`ip netns add`)
//! and deletes it when dropped; tests, benchmarks and the `fill` example
//! use it to get an empty conntrack table of their own.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The network namespace to open a socket in.
///
/// ```
/// use conntrack_netlink::Netns;
/// assert_eq!(Netns::named("blue").path().unwrap().to_str(), Some("/var/run/netns/blue"));
/// assert_eq!(Netns::pid(42).path().unwrap().to_str(), Some("/proc/42/ns/net"));
/// assert!(Netns::Current.path().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Netns {
    /// The namespace of the calling thread.
    #[default]
    Current,
    /// The namespace a file refers to: `/var/run/netns/NAME` (made by
    /// `ip netns add`), `/proc/PID/ns/net`, or a bind mount of either.
    Path(PathBuf),
}

impl Netns {
    /// A namespace made by `ip netns add NAME` (`/var/run/netns/NAME`).
    pub fn named(name: &str) -> Netns {
        Netns::Path(Path::new("/var/run/netns").join(name))
    }

    /// The namespace of process `pid` (`/proc/PID/ns/net`).
    pub fn pid(pid: u32) -> Netns {
        Netns::Path(PathBuf::from(format!("/proc/{pid}/ns/net")))
    }

    /// The namespace file, `None` for the current namespace.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Netns::Current => None,
            Netns::Path(p) => Some(p),
        }
    }

    /// Runs `f` on a dedicated thread that first enters this namespace
    /// (for [`Netns::Current`], directly on the calling thread). Anything
    /// `f` creates that is bound to a namespace at creation, such as a
    /// socket, stays in it.
    ///
    /// Errors: [`Error::NetnsOpen`] when the file cannot be opened (its
    /// source is `NotFound` for a missing namespace), [`Error::Setns`]
    /// when entering is refused (`EPERM` without `CAP_SYS_ADMIN`).
    pub fn run<T: Send, F: FnOnce() -> Result<T> + Send>(&self, f: F) -> Result<T> {
        let Some(path) = self.path() else {
            return f();
        };
        let file = File::open(path).map_err(|source| Error::NetnsOpen {
            path: path.to_owned(),
            source,
        })?;
        std::thread::scope(|s| {
            s.spawn(|| {
                crate::sys::setns_net(file.as_fd()).map_err(|source| Error::Setns {
                    path: path.to_owned(),
                    source,
                })?;
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl From<&Path> for Netns {
    fn from(p: &Path) -> Self {
        Netns::Path(p.to_owned())
    }
}

/// A named network namespace created with `ip netns add` and deleted with
/// `ip netns delete` when dropped (also when a test panics).
///
/// Each namespace has its own, initially empty, conntrack table.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use conntrack_netlink::{Conntrack, ScratchNetns};
/// let ns = ScratchNetns::new("ck-doc")?; // needs root
/// let mut ct = Conntrack::open_in(&ns.netns())?;
/// assert_eq!(ct.count()?, 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ScratchNetns {
    name: String,
}

impl ScratchNetns {
    /// Creates namespace `PREFIX-PID-N` (unique within this machine while
    /// the process lives) and brings its loopback up.
    pub fn new(prefix: &str) -> std::io::Result<ScratchNetns> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        run_ip(&["netns", "add", &name])?;
        let ns = ScratchNetns { name };
        run_ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace, for [`crate::Conntrack::open_in`].
    pub fn netns(&self) -> Netns {
        Netns::named(&self.name)
    }

    /// A command that runs `program` inside the namespace
    /// (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for ScratchNetns {
    fn drop(&mut self) {
        let _ = run_ip(&["netns", "delete", &self.name]);
    }
}

fn run_ip(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
