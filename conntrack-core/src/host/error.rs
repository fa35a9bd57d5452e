//! Errors of the host-fact parsers ([`ParseError`]) and of the reader
//! ([`HostError`]).
//!
//! A parse error says *what* is wrong and *where* (1-based line and byte
//! column); the reader adds *which file*. "The file is not there"
//! ([`HostError::NotFound`]) is a different variant from "the file is
//! there but says something we cannot read" ([`HostError::Malformed`]), so
//! a caller can tell "module not loaded / not root" from "bad data".

use crate::error::Location;
use std::path::{Path, PathBuf};

/// What is wrong with a host file's text. Small and `Copy`: the position is
/// in [`ParseError::location`], the file name is added by [`HostError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The file has no bytes at all (the kernel always writes at least a
    /// newline).
    #[error("empty file")]
    Empty,
    /// The bytes are not UTF-8 text (the location is the first bad byte).
    #[error("not UTF-8 text")]
    NotUtf8,
    /// A line or the file ended where more was expected (a truncated row).
    #[error("unexpected end, expected {0}")]
    UnexpectedEnd(&'static str),
    /// Something else was found where this was expected.
    #[error("expected {0}")]
    Expected(&'static str),
    /// Not a decimal number.
    #[error("invalid decimal number")]
    InvalidNumber,
    /// Not a hexadecimal number.
    #[error("invalid hexadecimal number")]
    InvalidHex,
    /// A number that does not fit the field.
    #[error("number out of range")]
    OutOfRange,
    /// A file-format header version this crate has never seen (e.g.
    /// `slabinfo - version: 3.0`).
    #[error("unsupported format version")]
    UnsupportedVersion,
    /// A column header this crate does not recognise.
    #[error("unrecognised header")]
    UnknownHeader,
    /// A row whose number of fields differs from the header's.
    #[error("row has {found} fields, the header has {expected}")]
    FieldCount {
        /// Fields the header announces.
        expected: usize,
        /// Fields the row has.
        found: usize,
    },
    /// A CPU range whose start is after its end (`5-3`).
    #[error("range start is after its end")]
    InvalidRange,
    /// More CPUs than any kernel supports ([`super::parse::MAX_CPUS`]).
    #[error("CPU id or count above the supported maximum")]
    TooManyCpus,
    /// A required entry is not in the file (e.g. `MemTotal`, `NET_RX`).
    #[error("{0} not found")]
    Missing(&'static str),
    /// An entry appears twice.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// Data after the end of a single-value file.
    #[error("unexpected trailing data")]
    Trailing,
    /// `/proc/net/stat/nf_conntrack` is malformed (see
    /// [`crate::procstat`]).
    #[error("{0}")]
    ProcStat(crate::procstat::ProcStatErrorKind),
}

/// A parse error: what went wrong and where in the text.
///
/// ```
/// use conntrack_core::host::{parse_cpu_list, ParseErrorKind};
/// let err = parse_cpu_list("0-3,x").unwrap_err();
/// assert_eq!((err.location.line, err.location.column), (1, 5));
/// assert_eq!(err.kind, ParseErrorKind::InvalidNumber);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct ParseError {
    /// 1-based line and byte column of the problem.
    pub location: Location,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// An error at `line`, `column` (both 1-based).
    pub const fn new(line: usize, column: usize, kind: ParseErrorKind) -> Self {
        ParseError {
            location: Location::new(line, column),
            kind,
        }
    }
}

/// Why one host fact could not be read.
///
/// ```
/// use conntrack_core::host::{HostError, HostFs};
/// let fs = HostFs::new("/nonexistent-root");
/// let err = fs.read_max().unwrap_err();
/// assert!(err.is_not_found());
/// assert!(matches!(err, HostError::NotFound { .. }));
/// assert!(err.path().ends_with("proc/sys/net/netfilter/nf_conntrack_max"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The file does not exist (module not loaded, feature compiled out,
    /// other kernel version).
    #[error("{}: not found", .path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// The file exists but this process may not read it (e.g. slabinfo and
    /// the `hashsize` parameter are root-only).
    #[error("{}: permission denied", .path.display())]
    PermissionDenied {
        /// The file.
        path: PathBuf,
    },
    /// Another I/O error.
    #[error("{}: {kind}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error kind.
        kind: std::io::ErrorKind,
    },
    /// Not a regular file (a FIFO, socket, device or directory): refused
    /// before it is opened, so a read never blocks or runs on without end.
    #[error("{}: not a regular file (FIFO, socket, device or directory): not read", .path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// A [`super::HostFs::confined`] reader was led outside its root by a
    /// symbolic link (or a `..` in a path read from a file): not read.
    #[error("{}: leads outside the root: not read", .path.display())]
    OutsideRoot {
        /// The file, under the root.
        path: PathBuf,
    },
    /// The file is larger than any file of its kind can be
    /// ([`super::reader::MAX_FILE_BYTES`]); it was not parsed.
    #[error("{}: larger than {limit} bytes", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file was read but its content is not what the kernel writes.
    #[error("{}: {location}: {kind}", .path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line and byte column.
        location: crate::error::Location,
        /// What is wrong.
        kind: ParseErrorKind,
    },
    /// A value of another network namespace was asked for but the file
    /// only shows the reader's own: `/proc/sys/net/*` always reflects the
    /// namespace of the process that opens it, so with
    /// [`super::HostFs::for_pid`] the per-namespace sysctls are left out
    /// unless the reader is in the same namespace as the target process.
    #[error(
        "{}: shows the reader's network namespace, not pid {pid}'s; per-namespace values left out",
        .path.display()
    )]
    OtherNamespace {
        /// The file or directory.
        path: PathBuf,
        /// The process whose namespace was asked for.
        pid: u32,
    },
}

impl From<crate::procstat::ProcStatError> for ParseError {
    fn from(e: crate::procstat::ProcStatError) -> Self {
        ParseError {
            location: e.location,
            kind: ParseErrorKind::ProcStat(e.kind),
        }
    }
}

impl HostError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            HostError::NotFound { path }
            | HostError::PermissionDenied { path }
            | HostError::Io { path, .. }
            | HostError::NotAFile { path }
            | HostError::OutsideRoot { path }
            | HostError::TooLarge { path, .. }
            | HostError::Malformed { path, .. }
            | HostError::OtherNamespace { path, .. } => path,
        }
    }

    /// Whether the file is simply absent (as opposed to unreadable or
    /// malformed).
    pub fn is_not_found(&self) -> bool {
        matches!(self, HostError::NotFound { .. })
    }

    /// Whether the file was there but its content is bad.
    pub fn is_malformed(&self) -> bool {
        matches!(self, HostError::Malformed { .. })
    }

    /// Where in the file, for [`HostError::Malformed`].
    pub fn location(&self) -> Option<Location> {
        match self {
            HostError::Malformed { location, .. } => Some(*location),
            _ => None,
        }
    }

    /// The parse error kind, for [`HostError::Malformed`].
    pub fn parse_kind(&self) -> Option<ParseErrorKind> {
        match self {
            HostError::Malformed { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Attaches a file name to a parse error.
    pub fn malformed(path: impl Into<PathBuf>, err: ParseError) -> Self {
        HostError::Malformed {
            path: path.into(),
            location: err.location,
            kind: err.kind,
        }
    }

    /// Classifies an I/O error on `path`.
    pub fn from_io(path: impl Into<PathBuf>, err: &std::io::Error) -> Self {
        let path = path.into();
        match err.kind() {
            std::io::ErrorKind::NotFound => HostError::NotFound { path },
            std::io::ErrorKind::PermissionDenied => HostError::PermissionDenied { path },
            kind => HostError::Io { path, kind },
        }
    }
}
