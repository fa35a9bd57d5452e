//! Netlink messages (`struct nlmsghdr`, 16 bytes, host byte order) and the
//! netfilter header that follows it (`struct nfgenmsg`, 4 bytes), with the
//! message-level constants: one definition each.
//!
//! The netlink header layer is `netlink-packet-core`'s where it costs
//! nothing: its `NLM_F_*` and `NLMSG_*` constants are re-exported here
//! (`NLM_F_MULTI` is its `NLM_F_MULTIPART`), and the encoder writes the
//! header with its `NetlinkHeader`
//! ([`encode::begin_message`](super::encode::begin_message)). Reading is
//! this crate's own ([`Message::parse`], on every decoded flow): a bad
//! header is a small `Copy` [`WireError`] with its offset rather than a
//! `String`, and the fields are read in place (see `parse_at` for what
//! `NetlinkBuffer` cost).
//!
//! The nfnetlink and ctnetlink numbers (subsystems, message types) are
//! defined here from `include/uapi/linux/netfilter/nfnetlink.h` and
//! `include/uapi/linux/netfilter/nfnetlink_conntrack.h` (`enum
//! cntl_msg_types`, `enum ctnl_exp_msg_types`).
//!
//! [`messages`] splits a receive buffer into messages; it stops for good
//! after a bad header (`nlmsg_len` below 16 or past the buffer), because
//! nothing after it can be trusted to start a message.

use super::error::{WireError, WireErrorKind};
use super::nla::{Attrs, align4};
use std::borrow::Cow;

pub use netlink_packet_core::{
    NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_FILTERED,
    NLM_F_DUMP_INTR, NLM_F_ECHO, NLM_F_EXCL, NLM_F_MATCH, NLM_F_MULTIPART as NLM_F_MULTI,
    NLM_F_REPLACE, NLM_F_REQUEST, NLM_F_ROOT, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN,
};

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Size of `struct nfgenmsg`.
pub const NFGENMSG_LEN: usize = 4;
/// `NLMSG_MIN_TYPE`: message types below it are netlink control messages
/// (`NLMSG_NOOP` .. `NLMSG_OVERRUN`; `include/uapi/linux/netlink.h`).
pub const NLMSG_MIN_TYPE: u16 = 0x10;
/// `NLMSGERR_ATTR_MSG` (`enum nlmsgerr_attrs`, `include/uapi/linux/netlink.h`):
/// the extended-ack text after an `NLMSG_ERROR` with `NLM_F_ACK_TLVS`.
pub const NLMSGERR_ATTR_MSG: u16 = 1;

/// `NFNL_SUBSYS_CTNETLINK`: conntrack entries.
pub const NFNL_SUBSYS_CTNETLINK: u8 = 1;
/// `NFNL_SUBSYS_CTNETLINK_EXP`: expectations.
pub const NFNL_SUBSYS_CTNETLINK_EXP: u8 = 2;
/// `NFNETLINK_V0`, the usual `nfgenmsg.version` (a flush sends 1 to make
/// the kernel honour its family, see `Conntrack::flush`).
pub const NFNETLINK_V0: u8 = 0;

/// `IPCTNL_MSG_CT_NEW`: dump entries, get replies, NEW/UPDATE events.
pub const IPCTNL_MSG_CT_NEW: u8 = 0;
/// `IPCTNL_MSG_CT_GET`.
pub const IPCTNL_MSG_CT_GET: u8 = 1;
/// `IPCTNL_MSG_CT_DELETE`: requests and DESTROY events.
pub const IPCTNL_MSG_CT_DELETE: u8 = 2;
/// `IPCTNL_MSG_CT_GET_CTRZERO`: dump and zero counters.
pub const IPCTNL_MSG_CT_GET_CTRZERO: u8 = 3;
/// `IPCTNL_MSG_CT_GET_STATS_CPU`.
pub const IPCTNL_MSG_CT_GET_STATS_CPU: u8 = 4;
/// `IPCTNL_MSG_CT_GET_STATS`.
pub const IPCTNL_MSG_CT_GET_STATS: u8 = 5;
/// `IPCTNL_MSG_CT_GET_DYING`.
pub const IPCTNL_MSG_CT_GET_DYING: u8 = 6;
/// `IPCTNL_MSG_CT_GET_UNCONFIRMED`.
pub const IPCTNL_MSG_CT_GET_UNCONFIRMED: u8 = 7;

/// `IPCTNL_MSG_EXP_NEW` (subsystem `NFNL_SUBSYS_CTNETLINK_EXP`): NEW
/// expectation events.
pub const IPCTNL_MSG_EXP_NEW: u8 = 0;
/// `IPCTNL_MSG_EXP_GET`.
pub const IPCTNL_MSG_EXP_GET: u8 = 1;
/// `IPCTNL_MSG_EXP_DELETE`: DESTROY expectation events.
pub const IPCTNL_MSG_EXP_DELETE: u8 = 2;
/// `IPCTNL_MSG_EXP_GET_STATS_CPU`.
pub const IPCTNL_MSG_EXP_GET_STATS_CPU: u8 = 3;

/// `nlmsg_type` of an nfnetlink message: `(subsys << 8) | msg` (the
/// kernel's `nfnl_msg_type`).
///
/// ```
/// use conntrack_netlink::wire::message::{nfnl_type, NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_DELETE};
/// assert_eq!(nfnl_type(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_DELETE), 0x0202);
/// ```
pub const fn nfnl_type(subsys: u8, msg: u8) -> u16 {
    ((subsys as u16) << 8) | msg as u16
}

/// `nlmsg_type` of a ctnetlink message: `(NFNL_SUBSYS_CTNETLINK << 8) | msg`.
///
/// ```
/// use conntrack_netlink::wire::message::{ct_type, IPCTNL_MSG_CT_DELETE};
/// assert_eq!(ct_type(IPCTNL_MSG_CT_DELETE), 0x0102);
/// ```
pub const fn ct_type(msg: u8) -> u16 {
    nfnl_type(NFNL_SUBSYS_CTNETLINK, msg)
}

/// Byte ranges of `struct nlmsghdr` (host byte order).
mod field {
    use core::ops::Range;
    pub const LEN: Range<usize> = 0..4;
    pub const TYPE: Range<usize> = 4..6;
    pub const FLAGS: Range<usize> = 6..8;
    pub const SEQ: Range<usize> = 8..12;
    pub const PID: Range<usize> = 12..16;
}

/// The netfilter header (`struct nfgenmsg`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct NfGenMsg {
    /// `nfgen_family`: `AF_INET` 2, `AF_INET6` 10, `AF_UNSPEC` 0.
    pub family: u8,
    /// `version` (`NFNETLINK_V0`).
    pub version: u8,
    /// `res_id`, converted from big endian (the CPU in per-CPU stats).
    pub res_id: u16,
}

impl NfGenMsg {
    /// Reads the 4-byte header at the start of `payload`.
    ///
    /// ```
    /// use conntrack_netlink::wire::NfGenMsg;
    /// let h = NfGenMsg::parse(&[10, 0, 0, 3]).unwrap();
    /// assert_eq!((h.family, h.res_id), (10, 3));
    /// assert!(NfGenMsg::parse(&[10, 0]).is_none());
    /// ```
    pub fn parse(payload: &[u8]) -> Option<NfGenMsg> {
        match payload {
            [family, version, r0, r1, ..] => Some(NfGenMsg {
                family: *family,
                version: *version,
                res_id: u16::from_be_bytes([*r0, *r1]),
            }),
            _ => None,
        }
    }

    /// The 4 bytes on the wire.
    pub const fn to_bytes(self) -> [u8; 4] {
        let r = self.res_id.to_be_bytes();
        [self.family, self.version, r[0], r[1]]
    }
}

/// One netlink message, borrowed from the receive buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Message<'a> {
    /// `nlmsg_len`: header plus payload, without trailing alignment.
    pub len: u32,
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid` (port id).
    pub pid: u32,
    /// Everything after the 16-byte header (for netfilter messages, the
    /// `nfgenmsg` and the attributes).
    pub payload: &'a [u8],
    /// Position of the header in the buffer given to [`messages`].
    pub offset: usize,
}

impl<'a> Message<'a> {
    /// Reads the message at the start of `buf`.
    ///
    /// ```
    /// use conntrack_netlink::wire::Message;
    /// let done = [20, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    /// let m = Message::parse(&done).unwrap();
    /// assert!(m.is_done());
    /// assert_eq!(m.error_code(), Some(0));
    /// ```
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, WireError> {
        Self::parse_at(buf, 0)
    }

    /// Reads the message that starts at position `at` of `buf`. Its
    /// [`Message::offset`] is `at`, so the offsets of errors decoded from
    /// it are positions in `buf`.
    ///
    /// ```
    /// use conntrack_netlink::wire::{encode, message::*};
    /// let mut buf = vec![0; 8]; // whatever precedes the message
    /// let m = encode::begin_nlmsg(&mut buf, NLMSG_NOOP, 0, 1);
    /// encode::finish_message(&mut buf, m);
    /// let m = Message::parse_in(&buf, 8).unwrap();
    /// assert_eq!((m.offset, m.next_offset()), (8, 24));
    /// ```
    pub fn parse_in(buf: &'a [u8], at: usize) -> Result<Message<'a>, WireError> {
        Self::parse_at(buf.get(at..).unwrap_or(&[]), at)
    }

    #[inline]
    fn parse_at(buf: &'a [u8], offset: usize) -> Result<Message<'a>, WireError> {
        let Some(h) = buf.first_chunk::<NLMSG_HDRLEN>() else {
            return Err(WireError {
                offset,
                kind: WireErrorKind::Truncated {
                    available: buf.len(),
                },
            });
        };
        // Read here rather than through netlink-packet-core's
        // `NetlinkBuffer`: its accessors call an out-of-line parser that
        // returns a `Result` for every field, which added about 110
        // instructions per decoded flow (callgrind over the flows of
        // benches/decode.rs), about a tenth of the whole decode.
        let u32_at = |r: core::ops::Range<usize>| {
            u32::from_ne_bytes([h[r.start], h[r.start + 1], h[r.start + 2], h[r.start + 3]])
        };
        let u16_at = |r: core::ops::Range<usize>| u16::from_ne_bytes([h[r.start], h[r.start + 1]]);
        let len = u32_at(field::LEN);
        if (len as usize) < NLMSG_HDRLEN {
            return Err(WireError {
                offset,
                kind: WireErrorKind::LengthTooSmall { len },
            });
        }
        if len as usize > buf.len() {
            return Err(WireError {
                offset,
                kind: WireErrorKind::LengthBeyondBuffer {
                    len,
                    available: buf.len(),
                },
            });
        }
        Ok(Message {
            len,
            ty: u16_at(field::TYPE),
            flags: u16_at(field::FLAGS),
            seq: u32_at(field::SEQ),
            pid: u32_at(field::PID),
            payload: &buf[NLMSG_HDRLEN..len as usize],
            offset,
        })
    }

    /// Where the next message of the buffer starts: this one's offset plus
    /// its length rounded up to 4 bytes (`NLMSG_ALIGN`).
    pub const fn next_offset(&self) -> usize {
        self.offset.saturating_add(align4(self.len as usize))
    }

    /// Whether this is `NLMSG_DONE`.
    pub const fn is_done(&self) -> bool {
        self.ty == NLMSG_DONE
    }

    /// Whether this is `NLMSG_ERROR` (an error or an ACK).
    pub const fn is_error(&self) -> bool {
        self.ty == NLMSG_ERROR
    }

    /// For `NLMSG_ERROR`, the `int error` as the kernel sent it: 0 for an
    /// acknowledgement, a negative errno otherwise. For `NLMSG_DONE`, the
    /// `int` it carries (0 when it carries none). `None` for other
    /// messages or a truncated error payload.
    pub fn error_code(&self) -> Option<i32> {
        let code = || {
            self.payload
                .first_chunk::<4>()
                .map(|b| i32::from_ne_bytes(*b))
        };
        match self.ty {
            NLMSG_ERROR => code(),
            NLMSG_DONE => Some(code().unwrap_or(0)),
            _ => None,
        }
    }

    /// The extended-ack text (`NLMSGERR_ATTR_MSG`) of an `NLMSG_ERROR`,
    /// when the kernel sent one (`NETLINK_EXT_ACK`, Linux 4.12+): the
    /// bytes before its NUL, invalid UTF-8 replaced.
    ///
    /// The payload is `struct nlmsgerr` (`int error` and the request's
    /// header, followed by the request's payload unless `NLM_F_CAPPED`),
    /// then, with `NLM_F_ACK_TLVS`, attributes.
    ///
    /// ```
    /// use conntrack_netlink::wire::{encode, message::*};
    /// let mut buf = Vec::new();
    /// let m = encode::begin_nlmsg(&mut buf, NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 1);
    /// buf.extend_from_slice(&(-22i32).to_ne_bytes());
    /// buf.extend_from_slice(&[0; 16]); // the request's header
    /// encode::put_str(&mut buf, NLMSGERR_ATTR_MSG, "bad filter");
    /// encode::finish_message(&mut buf, m);
    /// let msg = Message::parse(&buf).unwrap();
    /// assert_eq!(msg.error_code(), Some(-22));
    /// assert_eq!(msg.extack_message().as_deref(), Some("bad filter"));
    /// ```
    pub fn extack_message(&self) -> Option<Cow<'a, str>> {
        if !self.is_error() || self.flags & NLM_F_ACK_TLVS == 0 {
            return None;
        }
        let echoed = if self.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            let len = self.payload.get(4 + field::LEN.start..4 + field::LEN.end)?;
            u32::from_ne_bytes(len.try_into().ok()?) as usize
        };
        let tlvs = self.payload.get(4usize.saturating_add(align4(echoed))..)?;
        let text = Attrs::new(tlvs, 0)
            .map_while(Result::ok)
            .find(|a| a.ty() == NLMSGERR_ATTR_MSG)?
            .value();
        let text = text.split(|&b| b == 0).next().unwrap_or(text);
        Some(String::from_utf8_lossy(text))
    }

    /// Whether `NLM_F_DUMP_INTR` is set: the table changed during the
    /// dump, so the dump may have missed or repeated entries.
    pub const fn is_dump_interrupted(&self) -> bool {
        self.flags & NLM_F_DUMP_INTR != 0
    }

    /// Whether `NLM_F_DUMP_FILTERED` is set: the kernel applied the
    /// request's filter.
    pub const fn is_dump_filtered(&self) -> bool {
        self.flags & NLM_F_DUMP_FILTERED != 0
    }

    /// Whether `NLM_F_MULTI` is set.
    pub const fn is_multi(&self) -> bool {
        self.flags & NLM_F_MULTI != 0
    }

    /// The nfnetlink subsystem: `ty >> 8` (1 for ctnetlink).
    pub const fn subsys(&self) -> u8 {
        (self.ty >> 8) as u8
    }

    /// The subsystem's message type: `ty & 0xff` (`IPCTNL_MSG_CT_*`).
    pub const fn msg_type(&self) -> u8 {
        (self.ty & 0xff) as u8
    }

    /// Whether this is a ctnetlink conntrack entry: a dump item, a get
    /// reply or an event (`IPCTNL_MSG_CT_NEW` or `IPCTNL_MSG_CT_DELETE`).
    pub const fn is_ct_flow(&self) -> bool {
        self.subsys() == NFNL_SUBSYS_CTNETLINK
            && matches!(self.msg_type(), IPCTNL_MSG_CT_NEW | IPCTNL_MSG_CT_DELETE)
    }

    /// The netfilter header, `None` when the payload is shorter than 4
    /// bytes.
    pub fn nfgenmsg(&self) -> Option<NfGenMsg> {
        NfGenMsg::parse(self.payload)
    }

    /// The bytes after the netfilter header (the attributes).
    pub fn attributes(&self) -> &'a [u8] {
        self.payload.get(NFGENMSG_LEN..).unwrap_or(&[])
    }
}

/// An iterator over the netlink messages of a receive buffer; see
/// [`messages`].
#[derive(Clone, Debug)]
pub struct Messages<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// The netlink messages in `buf` (one `recv` worth, or several
/// concatenated), each starting at the 4-byte aligned end of the previous
/// one. Yields one `Err` for a bad header, then stops.
///
/// ```
/// use conntrack_netlink::wire::messages;
/// let mut buf = Vec::new();
/// for seq in 1..=2u32 {
///     buf.extend_from_slice(&16u32.to_ne_bytes()); // nlmsg_len
///     buf.extend_from_slice(&3u16.to_ne_bytes()); // NLMSG_DONE
///     buf.extend_from_slice(&0u16.to_ne_bytes());
///     buf.extend_from_slice(&seq.to_ne_bytes());
///     buf.extend_from_slice(&0u32.to_ne_bytes());
/// }
/// let seqs: Vec<u32> = messages(&buf).map(|m| m.unwrap().seq).collect();
/// assert_eq!(seqs, [1, 2]);
/// ```
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages {
        buf,
        pos: 0,
        failed: false,
    }
}

impl<'a> Messages<'a> {
    /// Position of the next message in the buffer.
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Whether a bad header stopped the iteration.
    pub const fn failed(&self) -> bool {
        self.failed
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, WireError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        match Message::parse_at(rest, self.pos) {
            Ok(m) => {
                self.pos = m.next_offset();
                Some(Ok(m))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An NLMSG_ERROR acking seq 7: error 0, then the echoed request header.
    const ACK: [u8; 36] = [
        36, 0, 0, 0, // len
        2, 0, // NLMSG_ERROR
        0, 1, // NLM_F_CAPPED
        7, 0, 0, 0, // seq
        0x39, 0x30, 0, 0, // pid 12345
        0, 0, 0, 0, // error 0
        20, 0, 0, 0, 0, 1, 5, 0, 7, 0, 0, 0, 0, 0, 0, 0, // echoed header
    ];

    #[test]
    fn deconstruct() {
        let m = Message::parse(&ACK).unwrap();
        assert_eq!(
            (m.len, m.ty, m.flags, m.seq, m.pid),
            (36, 2, 0x100, 7, 12345)
        );
        assert!(m.is_error() && !m.is_done());
        assert_eq!(m.error_code(), Some(0));
        assert_eq!(m.payload.len(), 20);
    }

    #[test]
    fn error_codes() {
        let mut buf = ACK;
        buf[16..20].copy_from_slice(&(-2i32).to_ne_bytes());
        assert_eq!(Message::parse(&buf).unwrap().error_code(), Some(-2));
        // A DONE without payload carries no error; other types have none.
        let done = [16, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(Message::parse(&done).unwrap().error_code(), Some(0));
        let new = [20, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0];
        let m = Message::parse(&new).unwrap();
        assert_eq!(m.error_code(), None);
        assert!(m.is_ct_flow() && m.is_multi());
        assert_eq!((m.subsys(), m.msg_type()), (1, 0));
        assert_eq!(m.nfgenmsg().unwrap().family, 2);
        assert_eq!(m.attributes(), &[] as &[u8]);
    }

    #[test]
    fn dump_flags() {
        let m = Message::parse(&[16, 0, 0, 0, 0, 1, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(m.is_dump_interrupted() && m.is_dump_filtered() && m.is_multi());
    }

    #[test]
    fn stops_after_bad_header() {
        let mut buf = ACK.to_vec();
        buf.extend_from_slice(&[60, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(&ACK);
        let mut it = messages(&buf);
        assert!(it.next().unwrap().is_ok());
        let e = it.next().unwrap().unwrap_err();
        assert_eq!(e.offset, 36);
        assert_eq!(
            e.kind,
            WireErrorKind::LengthBeyondBuffer {
                len: 60,
                available: 52
            }
        );
        assert!(it.next().is_none() && it.failed());
    }

    #[test]
    fn truncated_header() {
        let e = messages(&ACK[..10]).next().unwrap().unwrap_err();
        assert_eq!(e.kind, WireErrorKind::Truncated { available: 10 });
    }

    #[test]
    fn aligns_between_messages() {
        // A 21-byte message followed (after 3 bytes of padding) by another.
        let mut buf = vec![
            21, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0,
        ];
        buf.extend_from_slice(&[16, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        let ms: Vec<_> = messages(&buf).map(Result::unwrap).collect();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].payload, &[2, 0, 0, 0, 9]);
        assert_eq!((ms[1].offset, ms[1].seq), (24, 2));
    }

    #[test]
    fn nfgenmsg_roundtrip() {
        let h = NfGenMsg {
            family: 10,
            version: 0,
            res_id: 0x0102,
        };
        assert_eq!(h.to_bytes(), [10, 0, 1, 2]);
        assert_eq!(NfGenMsg::parse(&h.to_bytes()), Some(h));
    }
}
