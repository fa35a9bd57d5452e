//! Network namespaces: which conntrack table a socket talks to.
//!
//! A netlink socket belongs to the network namespace it was created in for
//! its whole life, so a socket for another namespace is created on a
//! short-lived thread that enters that namespace with `setns(2)` and hands
//! the socket back; the rest of the process never changes namespace.
//!
//! Tests and benchmarks get a throw-away namespace (an empty conntrack
//! table of their own) from `conntrack_core::testkit::TestNetns` and open
//! it with `Netns::named(ns.name())`.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

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

impl Netns {
    /// Starts `f` on a new, named thread that first enters this namespace
    /// (for [`Netns::Current`], the caller's): the long-lived counterpart
    /// of [`Netns::run`], for servers and traffic generators. The thread
    /// stays in the namespace until it ends, and keeps the namespace alive
    /// that long (`ip netns del` only removes its name).
    ///
    /// The namespace file is opened before the thread starts, so a missing
    /// namespace is reported here ([`Error::NetnsOpen`]); a refused entry
    /// ([`Error::Setns`]) is the thread's result.
    pub fn spawn<T, F>(&self, name: &str, f: F) -> Result<std::thread::JoinHandle<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let target = match self.path() {
            None => None,
            Some(path) => {
                let file = File::open(path).map_err(|source| Error::NetnsOpen {
                    path: path.to_owned(),
                    source,
                })?;
                Some((file, path.to_owned()))
            }
        };
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if let Some((file, path)) = target {
                    crate::sys::setns_net(file.as_fd())
                        .map_err(|source| Error::Setns { path, source })?;
                }
                f()
            })
            .map_err(|source| Error::Io {
                call: "spawn a thread",
                source,
            })
    }
}

impl From<&Path> for Netns {
    fn from(p: &Path) -> Self {
        Netns::Path(p.to_owned())
    }
}
