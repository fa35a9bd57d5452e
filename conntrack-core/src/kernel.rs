//! Kernel release numbers, for behaviour that depends on the kernel era.

use serde::{Deserialize, Serialize};

/// A kernel version `major.minor.patch`, parsed from a release string such
/// as `6.18.44-fc-v657` or `3.10.0-1160.el7.x86_64`.
///
/// ```
/// use conntrack_core::KernelVersion;
/// let v: KernelVersion = "5.15.0-91-generic".parse().unwrap();
/// assert_eq!(v, KernelVersion::new(5, 15, 0));
/// assert!(v >= KernelVersion::new(5, 10, 0));
/// assert!("not a version".parse::<KernelVersion>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KernelVersion {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
    /// Patch level (0 when the release string has none).
    pub patch: u16,
}

impl KernelVersion {
    /// A version from its parts.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        KernelVersion {
            major,
            minor,
            patch,
        }
    }

    /// Whether this version is at least `major.minor`.
    pub fn at_least(self, major: u16, minor: u16) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

/// The release string did not start with `N.N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a kernel release: {0:?}")]
pub struct KernelVersionError(pub String);

impl core::str::FromStr for KernelVersion {
    type Err = KernelVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || KernelVersionError(s.chars().take(64).collect());
        let head = s
            .trim()
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap_or("");
        let mut parts = head
            .split('.')
            .filter(|p| !p.is_empty())
            .map(str::parse::<u16>);
        let major = parts.next().ok_or_else(err)?.map_err(|_| err())?;
        let minor = parts.next().ok_or_else(err)?.map_err(|_| err())?;
        let patch = parts.next().transpose().map_err(|_| err())?.unwrap_or(0);
        Ok(KernelVersion {
            major,
            minor,
            patch,
        })
    }
}

impl core::fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}
