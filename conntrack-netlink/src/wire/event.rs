//! Event messages: what ctnetlink multicasts to its event groups,
//! recognised and decoded in place (the socket that receives them is
//! [`crate::event::EventSocket`]).
//!
//! What the kernel sends (`ctnetlink_conntrack_event` and
//! `ctnetlink_expect_event`, `net/netfilter/nf_conntrack_netlink.c`):
//!
//! | event | message | `nlmsg_flags` | group |
//! |---|---|---|---|
//! | NEW, RELATED | `IPCTNL_MSG_CT_NEW` | `NLM_F_CREATE \| NLM_F_EXCL` | 1 `NFNLGRP_CONNTRACK_NEW` |
//! | any other change | `IPCTNL_MSG_CT_NEW` | 0 | 2 `NFNLGRP_CONNTRACK_UPDATE` |
//! | DESTROY | `IPCTNL_MSG_CT_DELETE` | 0 | 3 `NFNLGRP_CONNTRACK_DESTROY` |
//! | expectation NEW | `IPCTNL_MSG_EXP_NEW` (subsystem 2) | `NLM_F_CREATE \| NLM_F_EXCL` | 4 |
//! | expectation DESTROY | `IPCTNL_MSG_EXP_DELETE` (subsystem 2) | 0 | 6 |
//!
//! A conntrack event is decoded by the same [`FlowView`] decoder as a dump
//! item; an expectation event is handed over raw.

use super::error::DecodeError;
use super::flow::FlowView;
use super::message::{
    IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_EXP_DELETE, IPCTNL_MSG_EXP_NEW, Message,
    NFNL_SUBSYS_CTNETLINK_EXP, NLM_F_CREATE, NLM_F_EXCL, NLMSG_MIN_TYPE,
};
use conntrack_core::Flow;

/// Which conntrack event a message announces. Only meaningful for messages
/// received on the event groups: a dump item and a get reply look like
/// [`EventKind::Update`] (NEW without `NLM_F_CREATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A new (or related) entry was confirmed: `IPCTNL_MSG_CT_NEW` with
    /// `NLM_F_CREATE | NLM_F_EXCL` (group `NFNLGRP_CONNTRACK_NEW`).
    New,
    /// An entry changed (state, status bits, mark, helper, labels, ...):
    /// `IPCTNL_MSG_CT_NEW` without them (group `NFNLGRP_CONNTRACK_UPDATE`).
    Update,
    /// An entry was removed (timed out, deleted, flushed):
    /// `IPCTNL_MSG_CT_DELETE` (group `NFNLGRP_CONNTRACK_DESTROY`).
    Destroy,
}

impl EventKind {
    /// The event a conntrack message announces, from its message type and
    /// netlink flags.
    ///
    /// ```
    /// use conntrack_netlink::wire::EventKind;
    /// use conntrack_netlink::wire::message::*;
    /// assert_eq!(EventKind::of(IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL), EventKind::New);
    /// assert_eq!(EventKind::of(IPCTNL_MSG_CT_NEW, 0), EventKind::Update);
    /// assert_eq!(EventKind::of(IPCTNL_MSG_CT_DELETE, 0), EventKind::Destroy);
    /// ```
    pub const fn of(msg_type: u8, nlmsg_flags: u16) -> EventKind {
        if msg_type == IPCTNL_MSG_CT_DELETE {
            EventKind::Destroy
        } else if nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 {
            EventKind::New
        } else {
            EventKind::Update
        }
    }
}

/// Which expectation event a message announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExpectKind {
    /// A new expectation.
    New,
    /// An expectation changed (no kernel up to 6.18 sends these).
    Update,
    /// An expectation was removed.
    Destroy,
}

impl ExpectKind {
    /// The event an expectation message announces, from its message type
    /// and netlink flags.
    pub const fn of(msg_type: u8, nlmsg_flags: u16) -> ExpectKind {
        match msg_type {
            IPCTNL_MSG_EXP_DELETE => ExpectKind::Destroy,
            IPCTNL_MSG_EXP_NEW if nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => ExpectKind::New,
            _ => ExpectKind::Update,
        }
    }
}

/// One conntrack event, borrowing from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event<'b> {
    /// NEW, UPDATE or DESTROY.
    pub kind: EventKind,
    /// The entry as the event describes it (see [`crate::event`] for what
    /// each kind carries).
    pub flow: FlowView<'b>,
    /// `CTA_TIMESTAMP_EVENT`: when the kernel generated the event, in
    /// nanoseconds since the Unix epoch (Linux 6.14+ with
    /// `nf_conntrack_timestamp` on).
    pub timestamp: Option<u64>,
}

impl Event<'_> {
    /// An owned copy.
    pub fn to_owned_event(&self) -> OwnedEvent {
        OwnedEvent {
            kind: self.kind,
            flow: self.flow.to_owned(),
            timestamp: self.timestamp,
        }
    }
}

/// An owned conntrack event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnedEvent {
    /// NEW, UPDATE or DESTROY.
    pub kind: EventKind,
    /// The entry.
    pub flow: Flow,
    /// `CTA_TIMESTAMP_EVENT` (see [`Event::timestamp`]).
    pub timestamp: Option<u64>,
}

/// One expectation event. Its attributes (`CTA_EXPECT_*`) are not decoded
/// here; [`ExpectEvent::message`] gives them raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpectEvent<'b> {
    /// NEW or DESTROY.
    pub kind: ExpectKind,
    /// The whole netlink message.
    pub message: Message<'b>,
}

/// A decoded event message; see [`decode_event`].
// The conntrack variant is a decoded view (~500 bytes); boxing it would
// cost an allocation per event, which is what the view exists to avoid.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventMessage<'b> {
    /// A conntrack event.
    Conntrack(Event<'b>),
    /// An expectation event.
    Expect(ExpectEvent<'b>),
}

/// Whether a message is a conntrack or expectation event: a ctnetlink
/// flow message, or an `IPCTNL_MSG_EXP_NEW`/`IPCTNL_MSG_EXP_DELETE` of the
/// expectation subsystem. Control messages and other subsystems are not.
pub fn is_event_message(m: &Message<'_>) -> bool {
    m.ty >= NLMSG_MIN_TYPE
        && (m.is_ct_flow()
            || (m.subsys() == NFNL_SUBSYS_CTNETLINK_EXP
                && matches!(m.msg_type(), IPCTNL_MSG_EXP_NEW | IPCTNL_MSG_EXP_DELETE)))
}

/// Decodes an event message (one for which [`is_event_message`] holds):
/// a conntrack event through [`FlowView::from_message`] (error offsets are
/// positions in the buffer the message came from), anything else as an
/// expectation event.
// Inlined so that the view is built where the caller keeps it instead of
// being copied out (it is ~460 bytes).
#[inline(always)]
pub fn decode_event<'b>(m: &Message<'b>) -> Result<EventMessage<'b>, DecodeError> {
    if m.is_ct_flow() {
        let flow = FlowView::from_message(m)?;
        return Ok(EventMessage::Conntrack(Event {
            kind: EventKind::of(m.msg_type(), m.flags),
            timestamp: flow.timestamp_event(),
            flow,
        }));
    }
    Ok(EventMessage::Expect(ExpectEvent {
        kind: ExpectKind::of(m.msg_type(), m.flags),
        message: *m,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode;
    use crate::wire::message::{IPCTNL_MSG_CT_NEW, NLMSG_NOOP, nfnl_type};

    fn message(buf: &mut Vec<u8>, ty: u16, flags: u16) -> Message<'_> {
        let m = encode::begin_message(buf, ty, flags, 0, 2);
        encode::finish_message(buf, m);
        Message::parse(buf).unwrap()
    }

    #[test]
    fn kinds_from_type_and_flags() {
        assert_eq!(
            EventKind::of(IPCTNL_MSG_CT_NEW, NLM_F_CREATE),
            EventKind::New
        );
        assert_eq!(
            ExpectKind::of(IPCTNL_MSG_EXP_NEW, NLM_F_CREATE | NLM_F_EXCL),
            ExpectKind::New
        );
        assert_eq!(ExpectKind::of(IPCTNL_MSG_EXP_NEW, 0), ExpectKind::Update);
        assert_eq!(
            ExpectKind::of(IPCTNL_MSG_EXP_DELETE, 0),
            ExpectKind::Destroy
        );
    }

    #[test]
    fn which_messages_are_events() {
        let exp = |msg| nfnl_type(NFNL_SUBSYS_CTNETLINK_EXP, msg);
        let mut b = Vec::new();
        assert!(is_event_message(&message(
            &mut b,
            exp(IPCTNL_MSG_EXP_DELETE),
            0
        )));
        let mut b = Vec::new();
        let get = message(&mut b, exp(super::super::message::IPCTNL_MSG_EXP_GET), 0);
        assert!(!is_event_message(&get));
        let mut b = Vec::new();
        assert!(!is_event_message(&message(&mut b, NLMSG_NOOP, 0)));
        let mut b = Vec::new();
        let m = message(&mut b, exp(IPCTNL_MSG_EXP_NEW), NLM_F_CREATE);
        match decode_event(&m) {
            Ok(EventMessage::Expect(x)) => assert_eq!(x.kind, ExpectKind::New),
            other => panic!("{other:?}"),
        }
    }
}
