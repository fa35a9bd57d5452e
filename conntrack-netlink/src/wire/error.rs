//! Decoding errors: small `Copy` values that say what went wrong, in which
//! attribute (the full path of nested attribute numbers) and at which byte.

use super::attr::Space;
use core::fmt;

/// The deepest nesting an [`AttrPath`] records (ctnetlink nests at most
/// three levels deep: `CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC`).
pub const MAX_DEPTH: usize = 4;

/// The path of attribute numbers from the top level of a message down to
/// the attribute an error is about, e.g.
/// `CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC`. Empty for errors in the
/// netlink or nfgenmsg headers.
///
/// ```
/// use conntrack_netlink::wire::{AttrPath, attr::Space};
/// let p = AttrPath::new(Space::Conntrack, &[1, 1, 1]);
/// assert_eq!(p.to_string(), "CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC");
/// assert_eq!(p.types(), &[1, 1, 1]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AttrPath {
    root: Space,
    types: [u16; MAX_DEPTH],
    depth: u8,
}

impl AttrPath {
    /// An empty path in namespace `root`.
    pub const fn root(root: Space) -> Self {
        AttrPath {
            root,
            types: [0; MAX_DEPTH],
            depth: 0,
        }
    }

    /// A path from `root` through `types` (only the first [`MAX_DEPTH`]
    /// are kept).
    pub fn new(root: Space, types: &[u16]) -> Self {
        let mut p = AttrPath::root(root);
        for &t in types.iter().take(MAX_DEPTH) {
            p.types[p.depth as usize] = t;
            p.depth += 1;
        }
        p
    }

    /// The namespace of the first element.
    pub const fn space(&self) -> Space {
        self.root
    }

    /// The attribute numbers, outermost first (flag bits masked off).
    pub fn types(&self) -> &[u16] {
        &self.types[..self.depth as usize]
    }

    /// Whether the path is empty (a header error).
    pub const fn is_empty(&self) -> bool {
        self.depth == 0
    }

    /// The innermost attribute number.
    pub fn last(&self) -> Option<u16> {
        self.types().last().copied()
    }

    /// `self` with `ty` (an attribute of namespace `space`) put in front:
    /// used while an error travels out of nested attributes. The
    /// innermost element is dropped when the path is full.
    pub(crate) const fn within(self, space: Space, ty: u16) -> Self {
        let mut types = [0u16; MAX_DEPTH];
        types[0] = ty;
        let mut i = 1;
        while i < MAX_DEPTH {
            types[i] = self.types[i - 1];
            i += 1;
        }
        let depth = if (self.depth as usize) < MAX_DEPTH {
            self.depth + 1
        } else {
            MAX_DEPTH as u8
        };
        AttrPath {
            root: space,
            types,
            depth,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.depth == 0 {
            return f.write_str("message header");
        }
        let mut space = self.root;
        for (i, &t) in self.types().iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            match space.name_of(t) {
                Some(n) => f.write_str(n)?,
                None => write!(f, "type {t}")?,
            }
            space = space.child(t);
        }
        Ok(())
    }
}

impl fmt::Debug for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttrPath({self})")
    }
}

/// The payload lengths an attribute type allows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Expected {
    /// Exactly this many bytes.
    Exactly(u16),
    /// Between the two bounds, inclusive.
    Between(u16, u16),
    /// At least this many bytes.
    AtLeast(u16),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Expected::Exactly(n) => write!(f, "{n}"),
            Expected::Between(a, b) => write!(f, "{a} to {b}"),
            Expected::AtLeast(n) => write!(f, "at least {n}"),
        }
    }
}

/// A problem with the netlink message framing (`struct nlmsghdr`). After
/// one of these, a message iterator stops for good: the next message's
/// position cannot be trusted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum WireErrorKind {
    /// Fewer than 16 bytes left for a header.
    Truncated {
        /// Bytes left in the buffer.
        available: usize,
    },
    /// `nlmsg_len` is smaller than the 16-byte header.
    LengthTooSmall {
        /// The `nlmsg_len` found.
        len: u32,
    },
    /// `nlmsg_len` runs past the end of the buffer.
    LengthBeyondBuffer {
        /// The `nlmsg_len` found.
        len: u32,
        /// Bytes left in the buffer.
        available: usize,
    },
}

impl fmt::Display for WireErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireErrorKind::Truncated { available } => {
                write!(f, "{available} bytes left, a netlink header needs 16")
            }
            WireErrorKind::LengthTooSmall { len } => {
                write!(f, "nlmsg_len {len} is smaller than the 16-byte header")
            }
            WireErrorKind::LengthBeyondBuffer { len, available } => {
                write!(f, "nlmsg_len {len} runs past the {available} bytes left")
            }
        }
    }
}

/// A malformed netlink header, at byte `offset` of the buffer given to
/// [`messages`](super::messages).
///
/// ```
/// use conntrack_netlink::wire::{messages, WireErrorKind};
/// let buf = [8u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// let err = messages(&buf).next().unwrap().unwrap_err();
/// assert_eq!(err.kind, WireErrorKind::LengthTooSmall { len: 8 });
/// assert_eq!(err.to_string(), "netlink header at byte 0: nlmsg_len 8 is smaller than the 16-byte header");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub struct WireError {
    /// Where the bad header starts.
    pub offset: usize,
    /// What is wrong with it.
    pub kind: WireErrorKind,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "netlink header at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for WireError {}

/// What is wrong with an attribute or a message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The netlink header is bad (see [`WireError`]); iteration stops.
    Header(WireErrorKind),
    /// The payload or an attribute list ends before a fixed-size header:
    /// the 4-byte `nfgenmsg` or a 4-byte attribute header.
    Truncated {
        /// Bytes the header needs.
        needed: u16,
        /// Bytes that were left.
        available: usize,
    },
    /// `nla_len` is smaller than the 4-byte attribute header.
    AttrTooShort {
        /// The `nla_len` found.
        len: u16,
    },
    /// `nla_len` runs past the end of the enclosing message or attribute.
    AttrBeyondEnd {
        /// The `nla_len` found.
        len: u16,
        /// Bytes left in the enclosing message or attribute.
        available: usize,
    },
    /// The payload length does not fit the attribute type.
    BadLength {
        /// Payload length (`nla_len - 4`).
        len: u16,
        /// What the type allows.
        expected: Expected,
    },
    /// A nested attribute whose payload is not a list of attributes (a
    /// non-empty payload shorter than an attribute header).
    NotNested {
        /// Payload length.
        len: u16,
    },
    /// A string attribute without a NUL byte within its length.
    Unterminated,
    /// A string attribute that is not UTF-8.
    NotUtf8,
    /// A required attribute is missing (the path names it).
    Missing,
    /// A tuple's source and destination addresses are of different
    /// families.
    MixedFamilies,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorKind::Header(k) => k.fmt(f),
            ErrorKind::Truncated { needed, available } => {
                write!(f, "{available} bytes left, a header needs {needed}")
            }
            ErrorKind::AttrTooShort { len } => {
                write!(f, "nla_len {len} is smaller than the 4-byte header")
            }
            ErrorKind::AttrBeyondEnd { len, available } => {
                write!(f, "nla_len {len} runs past the {available} bytes left")
            }
            ErrorKind::BadLength { len, expected } => {
                write!(f, "length {len}, expected {expected}")
            }
            ErrorKind::NotNested { len } => {
                write!(
                    f,
                    "nested attribute's {len}-byte payload is not a list of attributes"
                )
            }
            ErrorKind::Unterminated => f.write_str("string is not NUL-terminated"),
            ErrorKind::NotUtf8 => f.write_str("string is not UTF-8"),
            ErrorKind::Missing => f.write_str("required attribute is missing"),
            ErrorKind::MixedFamilies => {
                f.write_str("source and destination addresses of different families")
            }
        }
    }
}

/// A malformed message or attribute.
///
/// `offset` is the byte position, in the buffer given to
/// [`flows`](super::flows) / [`messages`](super::messages) (or in the
/// payload given to [`FlowView::parse`](super::FlowView::parse)), of the
/// attribute header the error is about (for [`ErrorKind::Missing`], of the
/// attribute that should have contained it, or of the payload start at
/// the top level). `path` names the attribute.
///
/// ```
/// use conntrack_netlink::wire::{DecodeError, ErrorKind, Expected, FlowView};
/// // nfgenmsg, then CTA_STATUS (type 3) with a 3-byte payload.
/// let payload = [2, 0, 0, 0, 7, 0, 3, 0, 0, 0, 8, 0];
/// let err = FlowView::parse(&payload).unwrap_err();
/// assert_eq!(err.offset, 4);
/// assert_eq!(err.kind, ErrorKind::BadLength { len: 3, expected: Expected::Exactly(4) });
/// assert_eq!(err.to_string(), "CTA_STATUS at byte 4: length 3, expected 4");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub struct DecodeError {
    /// Byte position (see the type's documentation).
    pub offset: usize,
    /// The attribute, outermost first; empty for header errors.
    pub path: AttrPath,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    /// An error at `offset` with an empty path.
    pub(crate) const fn new(offset: usize, kind: ErrorKind) -> Self {
        DecodeError {
            offset,
            path: AttrPath::root(Space::Conntrack),
            kind,
        }
    }

    /// An error about attribute `ty` of namespace `space`.
    pub(crate) const fn at(offset: usize, space: Space, ty: u16, kind: ErrorKind) -> Self {
        DecodeError {
            offset,
            path: AttrPath::root(space).within(space, ty),
            kind,
        }
    }

    /// The same error, seen from the attribute `ty` of `space` that
    /// contains it.
    pub(crate) const fn within(mut self, space: Space, ty: u16) -> Self {
        self.path = self.path.within(space, ty);
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}: {}", self.path, self.offset, self.kind)
    }
}

impl std::error::Error for DecodeError {}

impl From<WireError> for DecodeError {
    fn from(e: WireError) -> Self {
        DecodeError::new(e.offset, ErrorKind::Header(e.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_grows_outwards() {
        let e = DecodeError::at(84, Space::Ip, 1, ErrorKind::Missing)
            .within(Space::Tuple, 1)
            .within(Space::Conntrack, 2);
        assert_eq!(e.path.types(), &[2, 1, 1]);
        assert_eq!(
            e.to_string(),
            "CTA_TUPLE_REPLY/CTA_TUPLE_IP/CTA_IP_V4_SRC at byte 84: required attribute is missing"
        );
    }

    #[test]
    fn path_is_bounded() {
        let mut p = AttrPath::root(Space::Unknown);
        for _ in 0..10 {
            p = p.within(Space::Unknown, 7);
        }
        assert_eq!(p.types().len(), MAX_DEPTH);
        assert_eq!(p.to_string(), "type 7/type 7/type 7/type 7");
    }

    #[test]
    fn header_errors_print() {
        let e: DecodeError = WireError {
            offset: 32,
            kind: WireErrorKind::LengthBeyondBuffer {
                len: 100,
                available: 20,
            },
        }
        .into();
        assert!(e.path.is_empty());
        assert_eq!(
            e.to_string(),
            "message header at byte 32: nlmsg_len 100 runs past the 20 bytes left"
        );
        assert!(core::mem::size_of::<DecodeError>() <= 48);
    }
}
