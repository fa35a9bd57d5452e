//! Async versions of the event stream and of a table dump, for agents that
//! live in a tokio runtime (cargo feature `tokio`).
//!
//! Both run on the socket's file descriptor registered with tokio's
//! reactor (`AsyncFd`): the socket is non-blocking and nothing blocks a
//! runtime thread. Creating a socket in another namespace still enters
//! it on a short-lived thread ([`Netns::run`]); call
//! [`AsyncEventSocket::open`] from `spawn_blocking` if that matters.
//!
//! ```no_run
//! # async fn run() -> Result<(), conntrack_netlink::Error> {
//! use conntrack_netlink::event::{AsyncEventSocket, EventConfig, Groups, Item};
//! use conntrack_netlink::mirror::Table;
//! use conntrack_netlink::Netns;
//!
//! let netns = Netns::named("blue");
//! let mut events = AsyncEventSocket::open(&EventConfig::new(Groups::CONNTRACK).netns(netns.clone()))?;
//! // Subscribe first, then dump, then apply events: the mirror's recipe.
//! let mut table = Table::new();
//! conntrack_netlink::event::dump_async(&netns, |flow| { table.insert_flow(flow); }).await?;
//! loop {
//!     match events.next().await? {
//!         Item::Event(e) => { table.apply(&e); }
//!         Item::Lost { .. } => { /* resync: new socket, dump again */ break; }
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

use super::socket::Next;
use super::{EventConfig, EventSocket, Item};
use crate::dump::DumpReader;
use crate::error::{Error, Op, Result};
use crate::netns::Netns;
use crate::request::header_only;
use crate::socket::{Socket, SocketConfig, Transport, received};
use crate::wire::FlowView;
use crate::wire::message::{IPCTNL_MSG_CT_GET, NLM_F_DUMP, NLM_F_REQUEST};
use conntrack_core::L3Family;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// An [`EventSocket`] driven by tokio.
#[derive(Debug)]
pub struct AsyncEventSocket {
    inner: AsyncFd<EventSocket>,
}

impl AsyncEventSocket {
    /// Opens an event socket as [`EventSocket::open`] does and registers
    /// it with the current tokio runtime (which must have I/O enabled).
    pub fn open(config: &EventConfig) -> Result<AsyncEventSocket> {
        let sock = EventSocket::open(&config.clone().timeout(None))?;
        sock.sock
            .set_non_blocking(true)
            .map_err(|e| Error::io("fcntl(O_NONBLOCK)", e))?;
        let inner = register(sock)?;
        Ok(AsyncEventSocket { inner })
    }

    /// The next item (an event, a loss report or a malformed message),
    /// waiting without blocking the runtime. Like
    /// [`EventSocket::next`], the item borrows the socket's buffer until
    /// the next call.
    pub async fn next(&mut self) -> Result<Item<'_>> {
        let next = loop {
            let n = self.inner.get_mut().advance(false)?;
            if !matches!(n, Next::Empty) {
                break n;
            }
            let mut guard = self
                .inner
                .readable_mut()
                .await
                .map_err(|e| Error::io("tokio readable", e))?;
            let n = guard.get_inner_mut().advance(false)?;
            if matches!(n, Next::Empty) {
                guard.clear_ready();
                continue;
            }
            break n;
        };
        self.inner
            .get_mut()
            .item(next)
            .ok_or(Error::InvalidRequest("internal: no event was ready"))
    }

    /// The underlying socket (its receive buffer report and counters).
    pub fn get_ref(&self) -> &EventSocket {
        self.inner.get_ref()
    }
}

/// Registers a socket with tokio's reactor for reading.
///
/// tokio 1.54 deprecated the safe `AsyncFd::with_interest` in favour of an
/// `unsafe` constructor, because a caller could close the descriptor while
/// it is registered. Here the `AsyncFd` owns the socket, which closes its
/// descriptor only when dropped, after deregistration; so the safe
/// function is sound for this use and the crate stays free of `unsafe`.
#[allow(deprecated)]
fn register<T: std::os::fd::AsRawFd>(sock: T) -> Result<AsyncFd<T>> {
    AsyncFd::with_interest(sock, Interest::READABLE).map_err(|e| Error::io("tokio AsyncFd", e))
}

/// Dumps the conntrack table of `netns` without blocking the runtime,
/// handing each flow to `f`; returns the number of flows handed over.
/// Flows that fail to decode are skipped. [`crate::Conntrack::for_each`]
/// is the blocking version, with dump policies and filters; both read the
/// reply with the same rules (`dump::DumpReader`).
pub async fn dump_async(netns: &Netns, mut f: impl FnMut(&FlowView<'_>)) -> Result<u64> {
    let op = Op::Dump;
    let mut sock = Socket::open(&SocketConfig::default().netns(netns.clone()))?;
    let seq = sock.next_seq();
    // Sent while the socket still blocks: a request always fits.
    sock.send(&header_only(
        IPCTNL_MSG_CT_GET,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        L3Family::UNSPEC,
        0,
    ))?;
    sock.set_non_blocking()?;
    let fd = register(sock)?;
    let mut buf = vec![0u8; SocketConfig::DEFAULT_RECV_BUFFER];
    let mut reader = DumpReader::new(op, seq, false);
    let mut flows = 0u64;
    loop {
        let mut guard = fd
            .readable()
            .await
            .map_err(|e| Error::io("tokio readable", e))?;
        let n = match guard.try_io(|s| s.get_ref().recv_raw(&mut buf)) {
            Err(_would_block) => continue,
            Ok(r) => received(op, r, buf.len())?,
        };
        let done = reader.feed(&buf[..n], &mut |m| {
            if m.is_ct_flow()
                && let Ok(v) = FlowView::from_message(m)
            {
                flows += 1;
                f(&v);
            }
        })?;
        if done {
            return Ok(flows);
        }
    }
}
