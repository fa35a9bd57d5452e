//! Errors of the socket and operation layers.
//!
//! Every error can be matched on: the kernel's answer is mapped to a
//! variant when its meaning is fixed by ctnetlink (`EPERM`: CAP_NET_ADMIN
//! missing; `ENOENT` on a get or delete: no such flow; `EEXIST` on a
//! create: the flow exists), and otherwise kept as [`Error::Kernel`] with
//! the operation and the errno.

use std::io;
use std::path::PathBuf;

/// What a request was doing when the kernel answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Dumping the table (`IPCTNL_MSG_CT_GET` with `NLM_F_DUMP`).
    Dump,
    /// Dumping and zeroing counters (`IPCTNL_MSG_CT_GET_CTRZERO`).
    DumpZero,
    /// Dumping the dying list (`IPCTNL_MSG_CT_GET_DYING`).
    DumpDying,
    /// Dumping the unconfirmed list (`IPCTNL_MSG_CT_GET_UNCONFIRMED`).
    DumpUnconfirmed,
    /// Getting one flow (`IPCTNL_MSG_CT_GET`).
    Get,
    /// Creating a flow (`IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE`).
    Create,
    /// Updating a flow (`IPCTNL_MSG_CT_NEW` without `NLM_F_CREATE`).
    Update,
    /// Deleting one flow (`IPCTNL_MSG_CT_DELETE` with a tuple).
    Delete,
    /// Flushing the table (`IPCTNL_MSG_CT_DELETE` without a tuple).
    Flush,
    /// Per-CPU statistics (`IPCTNL_MSG_CT_GET_STATS_CPU`).
    StatsCpu,
    /// Global statistics (`IPCTNL_MSG_CT_GET_STATS`).
    StatsGlobal,
    /// Creating flows in batches ([`crate::fill`]).
    Fill,
}

impl core::fmt::Display for Op {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Op::Dump => "dump",
            Op::DumpZero => "dump-and-zero",
            Op::DumpDying => "dump of the dying list",
            Op::DumpUnconfirmed => "dump of the unconfirmed list",
            Op::Get => "get",
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Flush => "flush",
            Op::StatsCpu => "per-CPU stats",
            Op::StatsGlobal => "global stats",
            Op::Fill => "fill",
        })
    }
}

/// An error of this crate's socket and operation layers.
///
/// ```
/// use conntrack_netlink::{Error, Op};
/// let e = Error::from_errno(Op::Dump, libc::EPERM, None);
/// assert!(matches!(e, Error::PermissionDenied { op: Op::Dump }));
/// assert!(e.to_string().contains("CAP_NET_ADMIN"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel refused with `EPERM`: ctnetlink needs `CAP_NET_ADMIN` in
    /// the network namespace that owns the socket.
    #[error(
        "{op}: permission denied: ctnetlink needs CAP_NET_ADMIN in the socket's network namespace"
    )]
    PermissionDenied {
        /// The operation refused.
        op: Op,
    },
    /// The flow does not exist (`ENOENT` on get, update or delete).
    #[error("{op}: no such flow")]
    NotFound {
        /// The operation.
        op: Op,
    },
    /// The flow already exists (`EEXIST` on create).
    #[error("{op}: the flow already exists")]
    Exists {
        /// The operation.
        op: Op,
    },
    /// Any other error the kernel answered with, in an `NLMSG_ERROR`
    /// message or as the error code carried in `NLMSG_DONE`.
    #[error("{op}: the kernel answered {}{}", io::Error::from_raw_os_error(*errno), message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel {
        /// The operation.
        op: Op,
        /// The positive errno.
        errno: i32,
        /// The extended ack message, when the kernel sent one.
        message: Option<String>,
    },
    /// The dump was interrupted (`NLM_F_DUMP_INTR`: the table changed
    /// underneath it) and the [`crate::DumpPolicy`] did not accept that.
    #[error("{op}: the dump was interrupted (NLM_F_DUMP_INTR) {attempts} time(s)")]
    DumpInterrupted {
        /// The operation.
        op: Op,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The socket's receive buffer overflowed (`ENOBUFS`): replies were
    /// lost. Use a larger receive buffer or smaller batches.
    #[error("{op}: the socket receive buffer overflowed (ENOBUFS), replies were lost")]
    Overrun {
        /// The operation.
        op: Op,
    },
    /// No reply arrived within the socket's receive timeout.
    #[error("{op}: no reply from the kernel within the receive timeout")]
    Timeout {
        /// The operation.
        op: Op,
    },
    /// A datagram was larger than the receive buffer and was truncated.
    #[error("a {len}-byte datagram did not fit the {buffer}-byte receive buffer")]
    Truncated {
        /// The datagram's length.
        len: usize,
        /// The buffer's length.
        buffer: usize,
    },
    /// A reply could not be decoded.
    #[error("{op}: malformed reply: {source}")]
    Wire {
        /// The operation.
        op: Op,
        /// What the decoder found.
        #[source]
        source: crate::wire::WireError,
    },
    /// A flow or statistics message could not be decoded.
    #[error("{op}: malformed message: {source}")]
    Decode {
        /// The operation.
        op: Op,
        /// What the decoder found.
        #[source]
        source: crate::wire::DecodeError,
    },
    /// The kernel's reply lacked something it always sends.
    #[error("{op}: the reply has no {missing}")]
    Incomplete {
        /// The operation.
        op: Op,
        /// What is missing.
        missing: &'static str,
    },
    /// A reply that does not belong in the conversation (wrong type or
    /// sequence number).
    #[error("{op}: unexpected reply (type {ty:#06x}, seq {seq})")]
    Unexpected {
        /// The operation.
        op: Op,
        /// The message type received.
        ty: u16,
        /// The sequence number received.
        seq: u32,
    },
    /// The request cannot be expressed (for example a filter on a field
    /// that needs an address family, or a flow without tuples).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The network namespace file could not be opened.
    #[error("cannot open network namespace {}: {source}", path.display())]
    NetnsOpen {
        /// The path given.
        path: PathBuf,
        /// Why (`NotFound` when the namespace does not exist).
        #[source]
        source: io::Error,
    },
    /// `setns(2)` into the namespace failed (`EPERM`: needs CAP_SYS_ADMIN).
    #[error("cannot enter network namespace {}: {source}", path.display())]
    Setns {
        /// The namespace path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A socket system call failed.
    #[error("{call}: {source}")]
    Io {
        /// The call (`socket`, `bind`, `send`, `recv`, `setsockopt(...)`).
        call: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Maps a positive errno from the kernel for `op` to the matching variant.
    pub fn from_errno(op: Op, errno: i32, message: Option<String>) -> Error {
        match errno {
            libc::EPERM => Error::PermissionDenied { op },
            libc::ENOENT if matches!(op, Op::Get | Op::Update | Op::Delete) => {
                Error::NotFound { op }
            }
            libc::EEXIST if matches!(op, Op::Create | Op::Fill) => Error::Exists { op },
            libc::ENOBUFS => Error::Overrun { op },
            _ => Error::Kernel { op, errno, message },
        }
    }

    /// The errno behind this error, when it came from the kernel or a
    /// system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::PermissionDenied { .. } => Some(libc::EPERM),
            Error::NotFound { .. } => Some(libc::ENOENT),
            Error::Exists { .. } => Some(libc::EEXIST),
            Error::Overrun { .. } => Some(libc::ENOBUFS),
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Io { source, .. }
            | Error::NetnsOpen { source, .. }
            | Error::Setns { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the error says that privileges are missing (`EPERM` from
    /// the kernel, or `setns`/`socket` refused with `EPERM`/`EACCES`).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::PermissionDenied { .. })
            || matches!(
                self,
                Error::Setns { source, .. } | Error::Io { source, .. } | Error::NetnsOpen { source, .. }
                    if matches!(source.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
            )
    }

    pub(crate) fn io(call: &'static str, source: io::Error) -> Error {
        Error::Io { call, source }
    }
}

/// The result type of this crate's operations.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        assert!(matches!(
            Error::from_errno(Op::Dump, libc::EPERM, None),
            Error::PermissionDenied { op: Op::Dump }
        ));
        assert!(matches!(
            Error::from_errno(Op::Get, libc::ENOENT, None),
            Error::NotFound { op: Op::Get }
        ));
        // ENOENT on a flush is not "no such flow".
        assert!(matches!(
            Error::from_errno(Op::Flush, libc::ENOENT, None),
            Error::Kernel {
                errno: libc::ENOENT,
                ..
            }
        ));
        assert!(matches!(
            Error::from_errno(Op::Create, libc::EEXIST, None),
            Error::Exists { .. }
        ));
        let e = Error::from_errno(Op::Create, libc::EINVAL, Some("bad".into()));
        assert_eq!(e.errno(), Some(libc::EINVAL));
        assert!(e.to_string().contains("bad"));
        assert!(Error::from_errno(Op::Dump, libc::EPERM, None).is_permission_denied());
        assert!(
            Error::from_errno(Op::Dump, libc::EPERM, None)
                .to_string()
                .contains("CAP_NET_ADMIN")
        );
    }
}
