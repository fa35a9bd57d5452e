//! What an event stream yields: conntrack and expectation events decoded
//! in place, explicit loss reports and malformed messages, borrowed
//! ([`Item`]) or owned ([`OwnedItem`]); [`for_each_item`] decodes a
//! captured datagram the way the socket does.

use crate::wire::{DecodeError, EventMessage, decode_event, is_event_message, messages};
use crate::wire::{Event, ExpectEvent, ExpectKind, OwnedEvent};

/// What [`EventSocket::next`](super::EventSocket::next) yields.
// The event variant is a decoded view (~500 bytes); boxing it would cost
// an allocation per event, which is what the view exists to avoid.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item<'b> {
    /// A conntrack event.
    Event(Event<'b>),
    /// An expectation event.
    Expect(ExpectEvent<'b>),
    /// The kernel dropped events because the receive buffer was full
    /// (`ENOBUFS`), or a datagram did not fit the user-space buffer.
    /// `total` counts such reports since the socket was opened. The
    /// number of events lost is not known: whoever keeps state must
    /// resynchronise (dump).
    Lost {
        /// Losses reported so far, this one included.
        total: u64,
    },
    /// A message that could not be decoded; the stream goes on.
    Malformed(DecodeError),
}

/// An owned [`Item`].
#[allow(clippy::large_enum_variant)] // as for `Item`
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnedItem {
    /// A conntrack event.
    Event(OwnedEvent),
    /// An expectation event: its kind and address family.
    Expect {
        /// NEW or DESTROY.
        kind: ExpectKind,
        /// `nfgen_family`.
        family: u8,
    },
    /// See [`Item::Lost`].
    Lost {
        /// Losses reported so far.
        total: u64,
    },
    /// See [`Item::Malformed`].
    Malformed(DecodeError),
}

impl Item<'_> {
    /// An owned copy.
    pub fn to_owned_item(&self) -> OwnedItem {
        match self {
            Item::Event(e) => OwnedItem::Event(e.to_owned_event()),
            Item::Expect(x) => OwnedItem::Expect {
                kind: x.kind,
                family: x.message.nfgenmsg().map_or(0, |g| g.family),
            },
            Item::Lost { total } => OwnedItem::Lost { total: *total },
            Item::Malformed(e) => OwnedItem::Malformed(*e),
        }
    }
}

impl<'b> From<Result<EventMessage<'b>, DecodeError>> for Item<'b> {
    /// The item for a decoded event message, or [`Item::Malformed`].
    #[inline(always)]
    fn from(r: Result<EventMessage<'b>, DecodeError>) -> Item<'b> {
        match r {
            Ok(EventMessage::Conntrack(e)) => Item::Event(e),
            Ok(EventMessage::Expect(x)) => Item::Expect(x),
            Err(e) => Item::Malformed(e),
        }
    }
}

/// Decodes every item of one datagram as [`EventSocket`](super::EventSocket) would, calling
/// `f` for each: for captured event data, tests and benchmarks.
///
/// ```
/// use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
/// use conntrack_netlink::event::{for_each_item, EventKind, Item};
/// use conntrack_netlink::wire::{encode, message::*};
///
/// let ip = |s: &str| s.parse().unwrap();
/// let t = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::UDP,
///                    L4Tuple::Ports { src: 1000, dst: 53 });
/// let r = Tuple::new(ip("10.0.0.2"), ip("10.0.0.1"), L4Proto::UDP,
///                    L4Tuple::Ports { src: 53, dst: 1000 });
/// let flow = Flow::new(t, r, Status::CONFIRMED);
/// let mut buf = Vec::new();
/// let m = encode::begin_message(&mut buf, ct_type(IPCTNL_MSG_CT_NEW),
///                               NLM_F_CREATE | NLM_F_EXCL, 0, 2);
/// encode::encode_flow_as_kernel(&flow, &mut buf);
/// encode::finish_message(&mut buf, m);
/// let mut kinds = Vec::new();
/// for_each_item(&buf, |item| {
///     if let Item::Event(e) = item { kinds.push(e.kind) }
/// });
/// assert_eq!(kinds, [EventKind::New]);
/// ```
pub fn for_each_item(datagram: &[u8], mut f: impl FnMut(Item<'_>)) {
    for m in messages(datagram) {
        match m {
            // A bad header: the rest of the datagram cannot be framed (the
            // iterator stops after it).
            Err(e) => f(Item::Malformed(e.into())),
            Ok(m) if is_event_message(&m) => f(decode_event(&m).into()),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support;
    use crate::wire::EventKind;
    use crate::wire::encode;
    use crate::wire::message::*;
    use conntrack_core::{Counters, Flow, Timestamp};

    /// A UDP flow 10.0.0.1:`port` -> 10.0.0.2:53.
    fn flow(port: u16) -> Flow {
        support::udp("10.0.0.1", port, "10.0.0.2", 53)
    }

    fn push(buf: &mut Vec<u8>, ty: u16, flags: u16, f: Option<&Flow>) -> usize {
        support::push(buf, ty, flags, 0, f)
    }

    #[test]
    fn datagram_with_every_kind() {
        let mut buf = Vec::new();
        let new = ct_type(IPCTNL_MSG_CT_NEW);
        let del = ct_type(IPCTNL_MSG_CT_DELETE);
        push(&mut buf, new, NLM_F_CREATE | NLM_F_EXCL, Some(&flow(1)));
        push(&mut buf, new, 0, Some(&flow(2)));
        push(&mut buf, NLMSG_NOOP, 0, None);
        let mut d = flow(3);
        d.counters_orig = Some(Counters {
            packets: 3,
            bytes: 300,
        });
        d.timestamp = Some(Timestamp {
            start: 10,
            stop: Some(20),
        });
        push(&mut buf, del, 0, Some(&d));
        let bad = push(&mut buf, new, 0, Some(&flow(4)));
        // Corrupt CTA_TUPLE_ORIG's first nested length.
        buf[bad + 20 + 4] = 3;
        // An expectation DESTROY (attributes not decoded) of family AF_INET.
        let exp = nfnl_type(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_DELETE);
        let m = encode::begin_message(&mut buf, exp, 0, 0, 2);
        encode::finish_message(&mut buf, m);
        let mut got = Vec::new();
        for_each_item(&buf, |i| got.push(i.to_owned_item()));
        assert_eq!(got.len(), 5, "{got:?}");
        match &got[0] {
            OwnedItem::Event(e) => {
                assert_eq!(e.kind, EventKind::New);
                assert_eq!(e.flow, flow(1));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&got[1], OwnedItem::Event(e) if e.kind == EventKind::Update));
        match &got[2] {
            OwnedItem::Event(e) => {
                assert_eq!(e.kind, EventKind::Destroy);
                assert_eq!(e.flow.counters_orig.map(|c| c.bytes), Some(300));
                assert_eq!(e.flow.timestamp.and_then(|t| t.stop), Some(20));
            }
            other => panic!("{other:?}"),
        }
        match &got[3] {
            OwnedItem::Malformed(e) => assert!(e.offset >= bad, "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            got[4],
            OwnedItem::Expect {
                kind: ExpectKind::Destroy,
                family: 2
            }
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut base = Vec::new();
        push(
            &mut base,
            ct_type(IPCTNL_MSG_CT_NEW),
            NLM_F_CREATE,
            Some(&flow(9)),
        );
        for _ in 0..2000 {
            let mut b = base.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % b.len();
                b[i] = (seed >> 32) as u8;
            }
            let cut = (seed as usize >> 8) % (b.len() + 1);
            for_each_item(&b[..cut], |_| {});
            for_each_item(&b, |_| {});
        }
    }
}
