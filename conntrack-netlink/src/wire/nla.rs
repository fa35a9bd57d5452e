//! Netlink attributes (`struct nlattr`): a 4-byte header in host byte
//! order (`u16 nla_len` including the header, `u16 nla_type` whose two top
//! bits are `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`), the payload, and
//! padding to a multiple of 4.
//!
//! [`Attrs`] walks one attribute list, checking the three lengths
//! rust-netlink's `NlaBuffer::new_checked` checks (room for a header,
//! `nla_len >= 4`, `nla_len` within the list), and stops for good after the
//! first error. Once an [`Attr`] is yielded, none of its accessors panic.
//! (`netlink-packet-core`'s `NlasIterator` does the same checks but reports
//! `String` errors without an offset, and the decoder needs both the
//! offset and a `Copy` error; so the walk is this crate's, the constants
//! are netlink-packet-core's.)

use super::attr::Space;
use super::error::{DecodeError, ErrorKind, Expected};

// The attribute constants are netlink-packet-core's (`NLA_HDRLEN` is its
// `NLA_HEADER_SIZE`): `NLA_F_NESTED` 0x8000, `NLA_F_NET_BYTEORDER` 0x4000,
// `NLA_TYPE_MASK` 0x3fff, a 4-byte `struct nlattr`.
pub use netlink_packet_core::{
    NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HEADER_SIZE as NLA_HDRLEN, NLA_TYPE_MASK,
};

/// Rounds up to the netlink alignment of 4 bytes.
#[inline(always)]
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

mod field {
    pub const LEN: core::ops::Range<usize> = 0..2;
    pub const TYPE: core::ops::Range<usize> = 2..4;
}

/// One attribute, borrowed from the receive buffer.
///
/// ```
/// use conntrack_netlink::wire::nla::{Attrs, NLA_F_NESTED};
/// // CTA_TUPLE_ORIG (1) with NLA_F_NESTED and an empty payload, then
/// // CTA_STATUS (3) = 8.
/// let buf = [4, 0, 1, 0x80, 8, 0, 3, 0, 0, 0, 0, 8];
/// let mut it = Attrs::new(&buf, 100);
/// let a = it.next().unwrap().unwrap();
/// assert_eq!((a.ty(), a.is_nested(), a.offset()), (1, true, 100));
/// let b = it.next().unwrap().unwrap();
/// assert_eq!((b.ty(), b.value(), b.offset()), (3, &[0, 0, 0, 8][..], 104));
/// assert!(it.next().is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Attr<'a> {
    raw_type: u16,
    value: &'a [u8],
    offset: usize,
}

impl<'a> Attr<'a> {
    /// The attribute number (flag bits masked off).
    #[inline(always)]
    pub const fn ty(&self) -> u16 {
        self.raw_type & NLA_TYPE_MASK
    }

    /// `nla_type` as sent, with its flag bits.
    pub const fn raw_type(&self) -> u16 {
        self.raw_type
    }

    /// Whether `NLA_F_NESTED` is set. Kernels before 5.2 did not always
    /// set it, so the decoder never relies on it.
    pub const fn is_nested(&self) -> bool {
        self.raw_type & NLA_F_NESTED != 0
    }

    /// The payload (without header and padding).
    #[inline(always)]
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// Position of the attribute header (relative to what the iterator
    /// was given as base).
    #[inline(always)]
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// Position of the payload.
    pub const fn value_offset(&self) -> usize {
        self.offset + NLA_HDRLEN
    }

    /// The attributes nested in this one. The iterator reports errors with
    /// the path relative to this attribute; see [`Attrs::new`].
    pub fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.value, self.value_offset())
    }

    #[inline(always)]
    fn bad_len(&self, space: Space, expected: Expected) -> DecodeError {
        DecodeError::at(
            self.offset,
            space,
            self.ty(),
            ErrorKind::BadLength {
                len: self.value.len() as u16,
                expected,
            },
        )
    }

    /// The payload as a `u8` (exactly 1 byte).
    #[inline(always)]
    pub fn u8(&self, space: Space) -> Result<u8, DecodeError> {
        match self.value {
            [b] => Ok(*b),
            _ => Err(self.bad_len(space, Expected::Exactly(1))),
        }
    }

    /// The payload as a big-endian `u16` (exactly 2 bytes).
    #[inline(always)]
    pub fn be16(&self, space: Space) -> Result<u16, DecodeError> {
        match <[u8; 2]>::try_from(self.value) {
            Ok(b) => Ok(u16::from_be_bytes(b)),
            Err(_) => Err(self.bad_len(space, Expected::Exactly(2))),
        }
    }

    /// The payload as a big-endian `u32` (exactly 4 bytes).
    #[inline(always)]
    pub fn be32(&self, space: Space) -> Result<u32, DecodeError> {
        match <[u8; 4]>::try_from(self.value) {
            Ok(b) => Ok(u32::from_be_bytes(b)),
            Err(_) => Err(self.bad_len(space, Expected::Exactly(4))),
        }
    }

    /// The payload as a big-endian `u64` (exactly 8 bytes).
    #[inline(always)]
    pub fn be64(&self, space: Space) -> Result<u64, DecodeError> {
        match <[u8; 8]>::try_from(self.value) {
            Ok(b) => Ok(u64::from_be_bytes(b)),
            Err(_) => Err(self.bad_len(space, Expected::Exactly(8))),
        }
    }

    /// The payload as exactly `N` bytes.
    #[inline(always)]
    pub fn array<const N: usize>(&self, space: Space) -> Result<[u8; N], DecodeError> {
        <[u8; N]>::try_from(self.value)
            .map_err(|_| self.bad_len(space, Expected::Exactly(N as u16)))
    }

    /// The payload as a NUL-terminated UTF-8 string: the bytes before the
    /// first NUL. Bytes after the NUL (padding some senders include in
    /// `nla_len`) are ignored; a payload without a NUL is an error.
    pub fn str(&self, space: Space) -> Result<&'a str, DecodeError> {
        let Some(end) = self.value.iter().position(|&b| b == 0) else {
            return Err(DecodeError::at(
                self.offset,
                space,
                self.ty(),
                ErrorKind::Unterminated,
            ));
        };
        core::str::from_utf8(&self.value[..end])
            .map_err(|_| DecodeError::at(self.offset, space, self.ty(), ErrorKind::NotUtf8))
    }
}

/// An iterator over one list of attributes, yielding
/// `Result<Attr, DecodeError>` and stopping for good after the first
/// error. Errors carry the type of the bad attribute when its header was
/// readable, in namespace [`Space::Unknown`]; the decoders re-label it.
///
/// A tail of 1 to 3 bytes (shorter than any attribute header) is ignored,
/// as the kernel's `nla_for_each_attr` does.
#[derive(Clone, Debug)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Attrs<'a> {
    /// Attributes in `buf`, whose first byte is at position `base` of the
    /// enclosing buffer (offsets of attributes and errors are reported as
    /// `base + position in buf`).
    pub const fn new(buf: &'a [u8], base: usize) -> Self {
        Attrs { buf, pos: 0, base }
    }

    /// The bytes not yet iterated over.
    #[inline(always)]
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Skips `n` bytes (whole, aligned attributes the caller has read
    /// from [`Attrs::remaining`]).
    #[inline(always)]
    pub(crate) fn skip_bytes(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n);
    }

    /// The next attribute, `Ok(None)` at the end.
    #[inline(always)]
    pub fn next_attr(&mut self) -> Result<Option<Attr<'a>>, DecodeError> {
        let pos = self.pos;
        let rest = self.buf.len().saturating_sub(pos);
        if rest < NLA_HDRLEN {
            self.pos = self.buf.len();
            return Ok(None);
        }
        let b = &self.buf[pos..];
        let len = u16::from_ne_bytes([b[field::LEN.start], b[field::LEN.start + 1]]);
        let raw_type = u16::from_ne_bytes([b[field::TYPE.start], b[field::TYPE.start + 1]]);
        let ulen = len as usize;
        if ulen < NLA_HDRLEN || ulen > rest {
            self.pos = self.buf.len();
            let kind = if ulen < NLA_HDRLEN {
                ErrorKind::AttrTooShort { len }
            } else {
                ErrorKind::AttrBeyondEnd {
                    len,
                    available: rest,
                }
            };
            return Err(DecodeError::at(
                self.base + pos,
                Space::Unknown,
                raw_type & NLA_TYPE_MASK,
                kind,
            ));
        }
        self.pos = pos + align4(ulen);
        Ok(Some(Attr {
            raw_type,
            value: &b[NLA_HDRLEN..ulen],
            offset: self.base + pos,
        }))
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_attr().transpose()
    }
}

/// The attributes nested in `a` (an attribute of namespace `space`), or
/// [`ErrorKind::NotNested`] when the payload is too short to be a list of
/// attributes.
#[inline(always)]
pub(crate) fn nest<'a>(a: &Attr<'a>, space: Space) -> Result<Attrs<'a>, DecodeError> {
    let len = a.value().len();
    if len != 0 && len < 4 {
        return Err(DecodeError::at(
            a.offset(),
            space,
            a.ty(),
            ErrorKind::NotNested { len: len as u16 },
        ));
    }
    Ok(a.nested())
}

/// Walks the nest `a` (an attribute of `space`), calling `f` for every
/// child; errors from `f` and from the walk get `a` put in front of their
/// path.
#[inline(always)]
pub(crate) fn for_each<'a>(
    a: &Attr<'a>,
    space: Space,
    mut f: impl FnMut(&Attr<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let child = space.child(a.ty());
    let mut it = nest(a, space)?;
    loop {
        match it.next_attr() {
            Ok(Some(c)) => f(&c).map_err(|e| e.within(space, a.ty()))?,
            Ok(None) => return Ok(()),
            Err(e) => return Err(relabel(e, child).within(space, a.ty())),
        }
    }
}

/// Re-labels an error from [`Attrs`] in namespace `space`: a header error
/// names the bad attribute's type in `space`.
#[inline]
pub(crate) fn relabel(mut e: DecodeError, space: Space) -> DecodeError {
    if e.path.space() == Space::Unknown && e.path.types().len() == 1 {
        let ty = e.path.types()[0];
        e.path = super::error::AttrPath::new(space, &[ty]);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deconstruct() {
        // CTA_PROTO_NUM = 6 (u8, padded), CTA_PROTO_SRC_PORT = 443.
        let buf = [5, 0, 1, 0, 6, 0, 0, 0, 6, 0, 2, 0, 0x01, 0xbb, 0, 0];
        let mut it = Attrs::new(&buf, 0);
        let a = it.next().unwrap().unwrap();
        assert_eq!(a.u8(Space::Proto), Ok(6));
        let b = it.next().unwrap().unwrap();
        assert_eq!(b.be16(Space::Proto), Ok(443));
        assert_eq!(b.offset(), 8);
        assert!(it.next().is_none());
    }

    #[test]
    fn flags_are_masked() {
        let buf = [4, 0, 0x02, 0xc0];
        let a = Attrs::new(&buf, 0).next().unwrap().unwrap();
        assert_eq!(a.ty(), 2);
        assert!(a.is_nested());
        assert_eq!(a.raw_type(), 0xc002);
    }

    #[test]
    fn header_errors_stop_iteration() {
        let too_short = [3, 0, 9, 0, 0, 0, 0, 0];
        let mut it = Attrs::new(&too_short, 10);
        let e = it.next().unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::AttrTooShort { len: 3 });
        assert_eq!((e.offset, e.path.types()), (10, &[9][..]));
        assert!(it.next().is_none());

        let beyond = [4, 0, 1, 0, 12, 0, 2, 0, 0, 0];
        let mut it = Attrs::new(&beyond, 0);
        assert!(it.next().unwrap().is_ok());
        let e = it.next().unwrap().unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::AttrBeyondEnd {
                len: 12,
                available: 6
            }
        );
        assert_eq!(e.offset, 4);
        assert!(it.next().is_none());
    }

    #[test]
    fn short_tail_is_ignored() {
        let buf = [4, 0, 1, 0, 0, 0];
        assert_eq!(Attrs::new(&buf, 0).count(), 1);
    }

    #[test]
    fn strings() {
        let ok = [8, 0, 1, 0, b'f', b't', b'p', 0];
        let a = Attrs::new(&ok, 0).next().unwrap().unwrap();
        assert_eq!(a.str(Space::Help), Ok("ftp"));
        let unterminated = [7, 0, 1, 0, b'f', b't', b'p', 0];
        let a = Attrs::new(&unterminated, 0).next().unwrap().unwrap();
        assert_eq!(
            a.str(Space::Help).unwrap_err().kind,
            ErrorKind::Unterminated
        );
        let bad = [6, 0, 1, 0, 0xff, 0, 0, 0];
        let a = Attrs::new(&bad, 0).next().unwrap().unwrap();
        let e = a.str(Space::Help).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotUtf8);
        assert_eq!(
            e.to_string(),
            "CTA_HELP_NAME at byte 0: string is not UTF-8"
        );
    }

    #[test]
    fn fixed_lengths() {
        let buf = [7, 0, 3, 0, 1, 2, 3, 0];
        let a = Attrs::new(&buf, 0).next().unwrap().unwrap();
        let e = a.be32(Space::Conntrack).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::BadLength {
                len: 3,
                expected: Expected::Exactly(4)
            }
        );
        assert_eq!(e.to_string(), "CTA_STATUS at byte 0: length 3, expected 4");
        assert!(a.be16(Space::Conntrack).is_err());
        assert!(a.be64(Space::Conntrack).is_err());
        assert!(a.u8(Space::Conntrack).is_err());
        assert_eq!(a.array::<3>(Space::Conntrack), Ok([1, 2, 3]));
    }
}
