//! [`flows`]: the conntrack entries of a receive buffer, with the control
//! messages (DONE, ERROR, DUMP_INTR) recorded on the iterator.

use super::error::DecodeError;
use super::flow::FlowView;
use super::message::{Message, Messages, messages};

/// An iterator over the flows of a receive buffer; see [`flows`].
#[derive(Clone, Debug)]
pub struct Flows<'a> {
    msgs: Messages<'a>,
    finished: bool,
    done: bool,
    error: Option<i32>,
    interrupted: bool,
    filtered: bool,
    skipped: usize,
    last_seq: Option<u32>,
}

/// The conntrack entries in `buf`: one `Result<FlowView, DecodeError>`
/// per ctnetlink flow message (`IPCTNL_MSG_CT_NEW` or
/// `IPCTNL_MSG_CT_DELETE`: dump items, get replies, events).
///
/// - A malformed flow yields one `Err` (with the attribute path and the
///   byte offset in `buf`); iteration continues with the next message.
/// - A malformed netlink header yields one `Err` with
///   [`ErrorKind::Header`](super::ErrorKind::Header), then iteration stops
///   for good.
/// - `NLMSG_DONE` ends iteration and sets [`Flows::is_done`];
///   `NLMSG_ERROR` (an error or an ACK) ends it and sets
///   [`Flows::error_code`]. Both ends are final: messages after them in
///   the same buffer are not read.
/// - `NLM_F_DUMP_INTR` and `NLM_F_DUMP_FILTERED` on any message seen are
///   recorded ([`Flows::dump_interrupted`], [`Flows::dump_filtered`]).
/// - Other messages (other subsystems or message types, `NLMSG_NOOP`) are
///   skipped and counted ([`Flows::skipped`]).
///
/// For per-message control, iterate [`messages`] and call
/// [`FlowView::from_message`] on the messages that satisfy
/// [`Message::is_ct_flow`].
///
/// ```
/// use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
/// use conntrack_netlink::wire::{encode, flows, message::*};
///
/// let ip = |s: &str| s.parse().unwrap();
/// let t = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::ICMP,
///                    L4Tuple::Icmp { kind: 8, code: 0, id: 7 });
/// let r = Tuple::new(ip("10.0.0.2"), ip("10.0.0.1"), L4Proto::ICMP,
///                    L4Tuple::Icmp { kind: 0, code: 0, id: 7 });
/// let flow = Flow::new(t, r, Status::CONFIRMED);
///
/// let mut buf = Vec::new();
/// for _ in 0..3 {
///     let m = encode::begin_message(&mut buf, ct_type(IPCTNL_MSG_CT_NEW), NLM_F_MULTI, 1, 2);
///     encode::encode_flow_as_kernel(&flow, &mut buf);
///     encode::finish_message(&mut buf, m);
/// }
/// let m = encode::begin_message(&mut buf, NLMSG_DONE, NLM_F_MULTI, 1, 0);
/// encode::finish_message(&mut buf, m);
///
/// let mut it = flows(&buf);
/// assert_eq!(it.by_ref().filter(|f| f.is_ok()).count(), 3);
/// assert!(it.is_done() && !it.dump_interrupted());
/// ```
pub fn flows(buf: &[u8]) -> Flows<'_> {
    Flows {
        msgs: messages(buf),
        finished: false,
        done: false,
        error: None,
        interrupted: false,
        filtered: false,
        skipped: 0,
        last_seq: None,
    }
}

impl<'a> Flows<'a> {
    /// Whether `NLMSG_DONE` was seen (the dump is complete).
    pub const fn is_done(&self) -> bool {
        self.done
    }

    /// The error code of the `NLMSG_ERROR` or `NLMSG_DONE` that ended the
    /// iteration: 0 for an ACK or a clean DONE, a negative errno
    /// otherwise. `None` while no such message was seen.
    pub const fn error_code(&self) -> Option<i32> {
        self.error
    }

    /// Whether iteration ended at `NLMSG_DONE`, `NLMSG_ERROR` or a bad
    /// netlink header (as opposed to the end of the buffer).
    pub const fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether any message seen had `NLM_F_DUMP_INTR`.
    pub const fn dump_interrupted(&self) -> bool {
        self.interrupted
    }

    /// Whether any message seen had `NLM_F_DUMP_FILTERED`.
    pub const fn dump_filtered(&self) -> bool {
        self.filtered
    }

    /// How many messages were skipped as not being flows.
    pub const fn skipped(&self) -> usize {
        self.skipped
    }

    /// `nlmsg_seq` of the last message seen.
    pub const fn last_seq(&self) -> Option<u32> {
        self.last_seq
    }

    /// Position in the buffer of the next message to read.
    pub const fn position(&self) -> usize {
        self.msgs.position()
    }

    #[inline]
    fn note(&mut self, m: &Message<'_>) {
        self.interrupted |= m.is_dump_interrupted();
        self.filtered |= m.is_dump_filtered();
        self.last_seq = Some(m.seq);
    }
}

impl<'a> Iterator for Flows<'a> {
    type Item = Result<FlowView<'a>, DecodeError>;

    // Inlined into the caller's loop so that the view is built where the
    // caller reads it, instead of being copied out (it is ~460 bytes).
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            let m = match self.msgs.next()? {
                Ok(m) => m,
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e.into()));
                }
            };
            self.note(&m);
            if m.is_ct_flow() {
                return Some(FlowView::from_message(&m));
            }
            if m.is_done() {
                self.done = true;
                self.error = m.error_code();
                self.finished = true;
            } else if m.is_error() {
                self.error = m.error_code();
                self.finished = true;
            } else {
                self.skipped += 1;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support;
    use crate::wire::error::{ErrorKind, WireErrorKind};
    use crate::wire::message::*;
    use conntrack_core::Flow;

    /// A UDP flow 10.0.0.1:`port` -> 10.0.0.2:53.
    fn flow(port: u16) -> Flow {
        support::udp("10.0.0.1", port, "10.0.0.2", 53)
    }

    /// Appends a message with sequence number 9.
    fn push(buf: &mut Vec<u8>, ty: u16, flags: u16, f: Option<&Flow>) -> usize {
        support::push(buf, ty, flags, 9, f)
    }

    #[test]
    fn one_bad_flow_among_good_ones() {
        let mut buf = Vec::new();
        let new = ct_type(IPCTNL_MSG_CT_NEW);
        push(&mut buf, new, NLM_F_MULTI, Some(&flow(1)));
        let bad = push(&mut buf, new, NLM_F_MULTI | NLM_F_DUMP_INTR, Some(&flow(2)));
        push(&mut buf, new, NLM_F_MULTI, Some(&flow(3)));
        push(&mut buf, NLMSG_DONE, NLM_F_MULTI, None);
        // Corrupt the second message's CTA_TUPLE_ORIG/CTA_TUPLE_IP/V4_SRC length.
        let src = bad + 16 + 4 + 4 + 4;
        assert_eq!(buf[src + 2], 1);
        buf[src] = 6;
        let items: Vec<_> = flows(&buf).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().orig().src_port(), Some(1));
        let e = items[1].unwrap_err();
        assert_eq!(e.offset, src);
        assert_eq!(
            e.path.to_string(),
            "CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC"
        );
        assert_eq!(items[2].as_ref().unwrap().orig().src_port(), Some(3));
        let mut it = flows(&buf);
        it.by_ref().for_each(drop);
        assert!(it.is_done() && it.dump_interrupted() && it.is_finished());
        assert_eq!(it.error_code(), Some(0));
        assert_eq!(it.last_seq(), Some(9));
    }

    #[test]
    fn bad_header_stops() {
        let mut buf = Vec::new();
        let new = ct_type(IPCTNL_MSG_CT_NEW);
        push(&mut buf, new, 0, Some(&flow(1)));
        let second = push(&mut buf, new, 0, Some(&flow(2)));
        buf[second..second + 4].copy_from_slice(&4u32.to_ne_bytes());
        let items: Vec<_> = flows(&buf).collect();
        assert_eq!(items.len(), 2);
        let e = items[1].unwrap_err();
        assert_eq!(e.offset, second);
        assert_eq!(
            e.kind,
            ErrorKind::Header(WireErrorKind::LengthTooSmall { len: 4 })
        );
    }

    #[test]
    fn error_and_skips() {
        let mut buf = Vec::new();
        push(&mut buf, NLMSG_NOOP, 0, None);
        push(&mut buf, ct_type(IPCTNL_MSG_CT_GET_STATS), 0, None);
        push(&mut buf, ct_type(IPCTNL_MSG_CT_DELETE), 0, Some(&flow(4)));
        let err = push(&mut buf, NLMSG_ERROR, 0, None);
        // begin_message wrote an nfgenmsg; it stands in for the errno.
        buf[err + 16..err + 20].copy_from_slice(&(-1i32).to_ne_bytes());
        push(&mut buf, ct_type(IPCTNL_MSG_CT_NEW), 0, Some(&flow(5)));
        let mut it = flows(&buf);
        let v = it.next().unwrap().unwrap();
        assert_eq!(v.event_kind(), crate::wire::EventKind::Destroy);
        assert!(it.next().is_none());
        assert_eq!(
            (it.error_code(), it.is_done(), it.skipped()),
            (Some(-1), false, 2)
        );
    }
}
