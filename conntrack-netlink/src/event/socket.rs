//! [`EventSocket`]: a `NETLINK_NETFILTER` socket subscribed to event
//! groups, reading one datagram at a time into one buffer and yielding
//! [`Item`]s that borrow it.
//!
//! When the socket's receive buffer is full, the kernel drops the message
//! and the next `recv` fails with `ENOBUFS` (`netlink_overrun`). The
//! socket stays usable, but events are gone: [`EventSocket::next`] yields
//! [`Item::Lost`] with a running count and carries on. `NETLINK_NO_ENOBUFS`,
//! which would hide the loss, is never set.

use super::config::{EventConfig, Groups};
use super::item::{Item, OwnedItem};
use crate::error::{Error, Result};
use crate::socket::{RcvBufReport, open_in, recv_raw, size_rcvbuf};
use crate::wire::{DecodeError, Message, decode_event, is_event_message};
use netlink_sys::Socket as NlSocket;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// Counters of what an [`EventSocket`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct EventStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Conntrack events yielded.
    pub events: u64,
    /// Expectation events yielded.
    pub expect_events: u64,
    /// Messages that failed to decode.
    pub malformed: u64,
    /// Control messages and other subsystems' messages skipped.
    pub skipped: u64,
    /// `ENOBUFS` reports (and truncated datagrams).
    pub lost: u64,
}

/// A socket subscribed to ctnetlink event groups in one network namespace.
///
/// Reading is a lending iterator: [`EventSocket::next`] returns an
/// [`Item`] that borrows the socket's single receive buffer, so decoding
/// allocates nothing; [`EventSocket::next_owned`] returns owned items.
///
/// Opening needs `CAP_NET_ADMIN` in the namespace (binding to ctnetlink
/// groups is privileged).
pub struct EventSocket {
    pub(super) sock: NlSocket,
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    groups: Groups,
    rcvbuf: RcvBufReport,
    stats: EventStats,
    timeout: Option<Duration>,
}

impl core::fmt::Debug for EventSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EventSocket")
            .field("fd", &self.sock.as_raw_fd())
            .field("groups", &self.groups)
            .field("rcvbuf", &self.rcvbuf)
            .field("stats", &self.stats)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where the next item is, without holding a borrow of the buffer (so that
/// the receive loop can refill it).
pub(super) enum Next {
    Msg { start: usize },
    Bad(DecodeError),
    Lost(u64),
    Empty,
}

impl EventSocket {
    /// Opens a socket in the configured namespace, sizes its receive
    /// buffer and joins the groups.
    ///
    /// Errors: [`Error::InvalidRequest`] for an empty group set; those of
    /// [`Netns::run`](crate::Netns::run); [`Error::Io`] for `socket`, `bind`, the socket
    /// options and `NETLINK_ADD_MEMBERSHIP` (`EPERM` without
    /// `CAP_NET_ADMIN`, see [`Error::is_permission_denied`]).
    pub fn open(config: &EventConfig) -> Result<EventSocket> {
        if config.groups.is_empty() {
            return Err(Error::InvalidRequest("no event group to subscribe to"));
        }
        let (sock, _) = open_in(&config.netns)?;
        let rcvbuf = size_rcvbuf(&sock, config.rcvbuf.bytes())?;
        for g in config.groups.numbers() {
            sock.add_membership(g)
                .map_err(|e| Error::io("setsockopt(NETLINK_ADD_MEMBERSHIP)", e))?;
        }
        crate::sys::set_rcv_timeout(sock.as_fd(), config.timeout)
            .map_err(|e| Error::io("setsockopt(SO_RCVTIMEO)", e))?;
        Ok(EventSocket {
            sock,
            buf: vec![0; config.recv_buffer.max(16 << 10)],
            len: 0,
            pos: 0,
            groups: config.groups,
            rcvbuf,
            stats: EventStats::default(),
            timeout: config.timeout,
        })
    }

    /// The groups joined.
    pub fn groups(&self) -> Groups {
        self.groups
    }

    /// The receive buffer obtained.
    pub fn rcvbuf(&self) -> RcvBufReport {
        self.rcvbuf
    }

    /// What was read so far.
    pub fn stats(&self) -> EventStats {
        self.stats
    }

    /// How many losses were reported so far.
    pub fn lost(&self) -> u64 {
        self.stats.lost
    }

    /// Changes how long [`EventSocket::next`] waits (`None`: forever).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        crate::sys::set_rcv_timeout(self.sock.as_fd(), timeout)
            .map_err(|e| Error::io("setsockopt(SO_RCVTIMEO)", e))?;
        self.timeout = timeout;
        Ok(())
    }

    /// The next item, waiting up to the configured timeout for one;
    /// `Ok(None)` when the timeout passed without any. `Err` only for a
    /// failing system call: loss and malformed messages are items.
    ///
    /// This is a lending iterator (each item borrows the socket's buffer
    /// until the next call), so it cannot be `Iterator::next`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item<'_>>> {
        let n = self.advance(true)?;
        Ok(self.item(n))
    }

    /// The next item if one is ready now, without waiting.
    pub fn try_next(&mut self) -> Result<Option<Item<'_>>> {
        let n = self.advance(false)?;
        Ok(self.item(n))
    }

    /// [`EventSocket::next`], owned.
    pub fn next_owned(&mut self) -> Result<Option<OwnedItem>> {
        Ok(self.next()?.map(|i| i.to_owned_item()))
    }

    /// Whether a datagram read earlier still has unread messages.
    pub fn has_buffered(&self) -> bool {
        self.pos < self.len
    }

    pub(super) fn item(&mut self, n: Next) -> Option<Item<'_>> {
        match n {
            Next::Empty => None,
            Next::Lost(total) => Some(Item::Lost { total }),
            Next::Bad(e) => Some(Item::Malformed(e)),
            Next::Msg { start } => {
                let item: Item<'_> = Message::parse_in(&self.buf[..self.len], start)
                    .map_err(DecodeError::from)
                    .and_then(|m| decode_event(&m))
                    .into();
                match &item {
                    Item::Event(_) => self.stats.events += 1,
                    Item::Expect(_) => self.stats.expect_events += 1,
                    Item::Malformed(_) => self.stats.malformed += 1,
                    Item::Lost { .. } => {}
                }
                Some(item)
            }
        }
    }

    /// Finds the next message worth decoding, reading datagrams as needed.
    pub(super) fn advance(&mut self, block: bool) -> Result<Next> {
        loop {
            while self.pos < self.len {
                let start = self.pos;
                let m = match Message::parse_in(&self.buf[..self.len], start) {
                    Ok(m) => m,
                    Err(e) => {
                        // A bad header: the rest of the datagram cannot be
                        // framed.
                        self.pos = self.len;
                        self.stats.malformed += 1;
                        return Ok(Next::Bad(e.into()));
                    }
                };
                self.pos = m.next_offset().min(self.len);
                if is_event_message(&m) {
                    return Ok(Next::Msg { start });
                }
                self.stats.skipped += 1;
            }
            let flags = if block { 0 } else { libc::MSG_DONTWAIT };
            let cap = self.buf.len();
            let n = match recv_raw(&self.sock, &mut self.buf, flags) {
                Ok(n) => n,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(Next::Empty),
                    Some(libc::ENOBUFS) => {
                        self.stats.lost += 1;
                        return Ok(Next::Lost(self.stats.lost));
                    }
                    _ => return Err(Error::io("recv", e)),
                },
            };
            self.stats.datagrams += 1;
            self.stats.bytes += n as u64;
            if n > cap {
                // The datagram was cut: its events are gone.
                self.pos = 0;
                self.len = 0;
                self.stats.lost += 1;
                return Ok(Next::Lost(self.stats.lost));
            }
            self.pos = 0;
            self.len = n;
        }
    }
}

impl AsFd for EventSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for EventSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}
