//! The socket layer: a `NETLINK_NETFILTER` socket from `netlink-sys`, in
//! any network namespace, with a configurable receive buffer and one
//! reusable buffer for reading datagrams.
//!
//! This layer moves bytes only; requests are built in [`crate::request`],
//! replies are decoded by [`crate::wire`], and the conversation (acks,
//! dumps, batches) lives in [`crate::dump`] and [`crate::ops`].

use crate::error::{Error, Op, Result};
use crate::netns::Netns;
use crate::wire::Message;
use netlink_sys::{Socket as NlSocket, SocketAddr, protocols::NETLINK_NETFILTER};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// How to open a [`Socket`].
///
/// ```
/// use conntrack_netlink::{Netns, SocketConfig};
/// use std::time::Duration;
/// let cfg = SocketConfig::default()
///     .netns(Netns::named("blue"))
///     .rcvbuf(8 << 20)
///     .timeout(Some(Duration::from_secs(5)));
/// assert_eq!(cfg.rcvbuf_bytes(), Some(8 << 20));
/// ```
#[derive(Debug, Clone)]
pub struct SocketConfig {
    netns: Netns,
    rcvbuf: Option<usize>,
    recv_buffer: usize,
    timeout: Option<Duration>,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            netns: Netns::Current,
            rcvbuf: Some(Self::DEFAULT_RCVBUF),
            recv_buffer: Self::DEFAULT_RECV_BUFFER,
            timeout: Some(Duration::from_secs(30)),
        }
    }
}

impl SocketConfig {
    /// The default kernel receive buffer requested: 4 MiB. Dumps never need
    /// more than a few datagrams queued, but batched creates may get one
    /// error message per failed request.
    pub const DEFAULT_RCVBUF: usize = 4 << 20;
    /// The default size of the user-space buffer one datagram is read into:
    /// 1 MiB. Kernel dumps fill datagrams of at most 32 KiB
    /// (`netlink_dump`, `SKB_WITH_OVERHEAD(32768)` since Linux 4.x), so
    /// this leaves room for kernels that send larger ones.
    pub const DEFAULT_RECV_BUFFER: usize = 1 << 20;

    /// The namespace to open the socket in.
    pub fn netns(mut self, netns: Netns) -> Self {
        self.netns = netns;
        self
    }

    /// The kernel receive buffer (`SO_RCVBUFFORCE` when the process has
    /// CAP_NET_ADMIN, else `SO_RCVBUF`, which the kernel caps at
    /// `net.core.rmem_max`). `None` keeps the system default.
    pub fn rcvbuf(mut self, bytes: impl Into<Option<usize>>) -> Self {
        self.rcvbuf = bytes.into();
        self
    }

    /// The requested kernel receive buffer.
    pub fn rcvbuf_bytes(&self) -> Option<usize> {
        self.rcvbuf
    }

    /// The size of the user-space buffer datagrams are read into (at least
    /// 64 KiB).
    pub fn recv_buffer(mut self, bytes: usize) -> Self {
        self.recv_buffer = bytes.max(64 << 10);
        self
    }

    /// How long to wait for a reply before failing with
    /// [`Error::Timeout`]; `None` waits forever.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Moves whole datagrams; implemented by [`Socket`] and, in tests, by
/// scripted fakes so that the conversation logic runs without a kernel.
pub trait Transport {
    /// Sends one datagram (which may hold many netlink messages).
    fn send(&mut self, datagram: &[u8]) -> Result<()>;
    /// Receives one datagram into the transport's buffer. `op` names the
    /// operation for errors.
    fn recv(&mut self, op: Op) -> Result<&[u8]>;
    /// A fresh sequence number.
    fn next_seq(&mut self) -> u32;
}

/// A ctnetlink socket: `NETLINK_NETFILTER`, bound to a kernel-assigned
/// port and connected to the kernel, with one receive buffer that every
/// read reuses.
///
/// **Reading ahead.** In the middle of a dump, a receive also takes the
/// datagrams the kernel has already queued (without waiting, up to
/// [`READ_AHEAD`] of them, into the rest of the buffer) and hands them
/// out one by one before it reads again. The kernel builds a dump's next
/// datagram inside the `recvmsg` that takes the previous one
/// (`netlink_recvmsg` calls `netlink_dump` after the copy,
/// `net/netlink/af_netlink.c`), so one such run of reads is the kernel's
/// work for several datagrams back to back, and the caller then decodes
/// them back to back: each side finds its code and data still in the
/// core's caches instead of evicting the other's after every datagram.
/// Nothing else changes: the same datagrams in the same order, an error
/// met while reading ahead returned after the datagrams before it. A
/// datagram that holds `NLMSG_DONE` or `NLMSG_ERROR` (the end of a dump,
/// an acknowledgement) is never read past.
///
/// ```no_run
/// # fn main() -> Result<(), conntrack_netlink::Error> {
/// use conntrack_netlink::{Socket, SocketConfig};
/// let sock = Socket::open(&SocketConfig::default())?;
/// println!("kernel receive buffer: {} bytes", sock.rcvbuf()?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Socket {
    sock: NlSocket,
    buf: Vec<u8>,
    seq: u32,
    port: u32,
    /// The configuration it was opened with (for a sibling socket in the
    /// same namespace, see [`Socket::config`]).
    config: SocketConfig,
    ahead: ReadAhead,
}

/// The most datagrams one receive reads ahead ([`Socket`]): 16 of a
/// dump's at most 32 KiB, half of the default receive buffer.
pub const READ_AHEAD: usize = 16;

/// The largest datagram a kernel dump sends: `netlink_dump` allocates at
/// most the largest read length seen, capped at `SKB_WITH_OVERHEAD(32768)`
/// (`netlink_recvmsg`, `net/netlink/af_netlink.c`). Reading ahead only
/// into room for this much, a dump's datagram is never cut; the buffers of
/// a pipelined dump ([`Pipe`]) are this size.
const MAX_DUMP_DATAGRAM: usize = 32 << 10;

/// Datagrams received by reading ahead and not yet handed out.
#[derive(Debug, Default)]
struct ReadAhead {
    /// Where each lies in the receive buffer (start, length), in order.
    queued: Vec<(usize, usize)>,
    /// The next one to hand out.
    next: usize,
    /// The error that stopped reading ahead, returned after `queued`.
    error: Option<Error>,
    /// Datagrams received by reading ahead since the socket opened.
    total: u64,
}

impl Socket {
    /// Opens a socket as configured. The namespace is entered on a
    /// dedicated thread for creation only (see [`Netns::run`]).
    pub fn open(config: &SocketConfig) -> Result<Socket> {
        let (sock, addr) = open_in(&config.netns)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io("connect", e))?;
        // Errors then carry only the header of the failed request, not the
        // whole request, so that a failed batch fits the receive buffer;
        // extended acks carry the kernel's message for the error.
        sock.set_cap_ack(true)
            .map_err(|e| Error::io("setsockopt(NETLINK_CAP_ACK)", e))?;
        let _ = sock.set_ext_ack(true);
        let s = Socket {
            buf: vec![0; config.recv_buffer.max(64 << 10)],
            seq: initial_seq(),
            port: addr.port_number(),
            sock,
            config: config.clone(),
            ahead: ReadAhead::default(),
        };
        if let Some(bytes) = config.rcvbuf {
            s.set_rcvbuf(bytes)?;
        }
        s.set_timeout(config.timeout)?;
        Ok(s)
    }

    /// Sets the kernel receive buffer: `SO_RCVBUFFORCE` when permitted
    /// (CAP_NET_ADMIN), else `SO_RCVBUF` (capped by `net.core.rmem_max`).
    /// Returns the size the kernel reports afterwards (it doubles the
    /// request for bookkeeping).
    pub fn set_rcvbuf(&self, bytes: usize) -> Result<usize> {
        size_rcvbuf(&self.sock, Some(bytes)).map(|r| r.obtained)
    }

    /// The kernel receive buffer size (`SO_RCVBUF` as read back).
    pub fn rcvbuf(&self) -> Result<usize> {
        self.sock
            .get_rx_buf_sz()
            .map_err(|e| Error::io("getsockopt(SO_RCVBUF)", e))
    }

    /// Sets the receive timeout (`SO_RCVTIMEO`); `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        crate::sys::set_rcv_timeout(self.sock.as_fd(), timeout)
            .map_err(|e| Error::io("setsockopt(SO_RCVTIMEO)", e))
    }

    /// Makes reads and writes return `EAGAIN` instead of waiting (for a
    /// reactor, see `event::dump_async`).
    #[cfg(feature = "tokio")]
    pub(crate) fn set_non_blocking(&self) -> Result<()> {
        self.sock
            .set_non_blocking(true)
            .map_err(|e| Error::io("fcntl(O_NONBLOCK)", e))
    }

    /// One [`recv_raw`] into a caller's buffer, errors as `recv` gave them
    /// (for a reactor, which must see `WouldBlock`).
    #[cfg(feature = "tokio")]
    pub(crate) fn recv_raw(&self, buf: &mut [u8]) -> io::Result<usize> {
        recv_raw(&self.sock, buf, 0)
    }

    /// The configuration this socket was opened with: its namespace,
    /// buffers and timeout (to open another socket on the same table).
    pub fn config(&self) -> &SocketConfig {
        &self.config
    }

    /// The netlink port id the kernel assigned to this socket.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// The length of the user-space receive buffer.
    pub fn recv_buffer_len(&self) -> usize {
        self.buf.len()
    }

    /// How many datagrams this socket received by reading ahead (see
    /// [`Socket`]) since it was opened.
    pub fn datagrams_read_ahead(&self) -> u64 {
        self.ahead.total
    }
}

fn initial_seq() -> u32 {
    // Any start works; a time-derived one makes replies to an earlier
    // socket's requests easy to tell apart in captures.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() | 1)
        .unwrap_or(1)
}

impl ReadAhead {
    /// Drops what is left of an earlier reply (a new request is sent: it
    /// was not going to be read).
    fn forget(&mut self) {
        self.queued.clear();
        self.next = 0;
        self.error = None;
    }
}

impl Socket {
    /// After a datagram of `first` bytes at the start of the buffer: the
    /// datagrams the kernel already queued, while they continue a dump
    /// and fit ([`Socket`]'s "reading ahead").
    fn read_ahead(&mut self, op: Op, first: usize) {
        let ReadAhead {
            queued,
            error,
            total,
            ..
        } = &mut self.ahead;
        let mut last = 0..first;
        let mut at = first.next_multiple_of(8);
        while queued.len() < READ_AHEAD
            && at + MAX_DUMP_DATAGRAM <= self.buf.len()
            && !ends_any(&self.buf[last])
        {
            let cap = self.buf.len() - at;
            match recv_raw(&self.sock, &mut self.buf[at..], libc::MSG_DONTWAIT) {
                // Nothing queued: the reply is not that far yet.
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                r => match received(op, r, cap) {
                    Ok(n) => {
                        queued.push((at, n));
                        *total += 1;
                        last = at..at + n;
                        at = (at + n).next_multiple_of(8);
                    }
                    Err(e) => {
                        *error = Some(e);
                        break;
                    }
                },
            }
        }
    }
}

impl Transport for Socket {
    fn send(&mut self, datagram: &[u8]) -> Result<()> {
        self.ahead.forget();
        send_all(&self.sock, datagram)
    }

    fn recv(&mut self, op: Op) -> Result<&[u8]> {
        if let Some(&(at, n)) = self.ahead.queued.get(self.ahead.next) {
            self.ahead.next += 1;
            return Ok(&self.buf[at..at + n]);
        }
        if let Some(e) = self.ahead.error.take() {
            return Err(e);
        }
        self.ahead.forget();
        let n = recv_datagram(&self.sock, &mut self.buf, op)?;
        self.read_ahead(op, n);
        Ok(&self.buf[..n])
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        self.seq
    }
}

/// One `recv` into `buf` ([`recv_raw`]); a datagram longer than `buf` is
/// [`Error::Truncated`], a timeout [`Error::Timeout`], `ENOBUFS`
/// [`Error::Overrun`].
fn recv_datagram(sock: &NlSocket, buf: &mut [u8], op: Op) -> Result<usize> {
    received(op, recv_raw(sock, buf, 0), buf.len())
}

/// What the result of [`recv_raw`] into a `cap`-byte buffer means for a
/// conversation: the datagram's length, or the error that ends it.
pub(crate) fn received(op: Op, r: io::Result<usize>, cap: usize) -> Result<usize> {
    let n = r.map_err(|e| match e.raw_os_error() {
        Some(libc::EAGAIN) => Error::Timeout { op },
        Some(libc::ENOBUFS) => Error::Overrun { op },
        _ => Error::io("recv", e),
    })?;
    if n > cap {
        return Err(Error::Truncated {
            len: n,
            buffer: cap,
        });
    }
    Ok(n)
}

/// One `recv(2)` of a datagram into `buf` with `MSG_TRUNC` (so the result
/// is the datagram's full length, larger than `buf` when it was cut) and
/// `flags`, retried on `EINTR`.
pub(crate) fn recv_raw(sock: &NlSocket, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    loop {
        let mut slice: &mut [u8] = &mut buf[..];
        match sock.recv(&mut slice, libc::MSG_TRUNC | flags) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Sends one whole datagram, retried on `EINTR`.
fn send_all(sock: &NlSocket, datagram: &[u8]) -> Result<()> {
    loop {
        match sock.send(datagram, 0) {
            Ok(n) if n == datagram.len() => return Ok(()),
            Ok(_) => {
                return Err(Error::io(
                    "send",
                    io::Error::new(io::ErrorKind::WriteZero, "short send on a netlink socket"),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("send", e)),
        }
    }
}

/// A `NETLINK_NETFILTER` socket created in `netns` (entered on a
/// short-lived thread, see [`Netns::run`]) and bound to a port the kernel
/// assigns: the start of every socket of this crate.
pub(crate) fn open_in(netns: &Netns) -> Result<(NlSocket, SocketAddr)> {
    let mut sock = netns.run(|| {
        NlSocket::new(NETLINK_NETFILTER).map_err(|e| Error::io("socket(NETLINK_NETFILTER)", e))
    })?;
    let addr = sock.bind_auto().map_err(|e| Error::io("bind", e))?;
    Ok((sock, addr))
}

/// What a socket's kernel receive buffer ended up as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct RcvBufReport {
    /// The size asked for (`None`: the system default was kept).
    pub requested: Option<usize>,
    /// What `getsockopt(SO_RCVBUF)` reports afterwards: the kernel's
    /// accounting limit, which is twice the size set.
    pub obtained: usize,
    /// Whether `SO_RCVBUFFORCE` was used (past `net.core.rmem_max`).
    pub forced: bool,
    /// `net.core.rmem_max` when it had to be read (no `CAP_NET_ADMIN`).
    pub rmem_max: Option<usize>,
}

/// Sizes the kernel receive buffer of `sock` (`None`: keep the system
/// default): `SO_RCVBUFFORCE` when the process has `CAP_NET_ADMIN`, else
/// `SO_RCVBUF` capped at `net.core.rmem_max` (the cap the kernel applies
/// to `SO_RCVBUF` in `sk_setsockopt`, `net/core/sock.c`; read here to be
/// reported).
pub(crate) fn size_rcvbuf(sock: &NlSocket, bytes: Option<usize>) -> Result<RcvBufReport> {
    let mut report = RcvBufReport {
        requested: bytes,
        ..Default::default()
    };
    if let Some(bytes) = bytes {
        match crate::sys::set_rcvbuf_force(sock.as_fd(), bytes) {
            Ok(()) => report.forced = true,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                let max = read_rmem_max();
                report.rmem_max = max;
                let capped = max.map_or(bytes, |m| bytes.min(m));
                let v = libc::c_int::try_from(capped).unwrap_or(libc::c_int::MAX);
                sock.set_rx_buf_sz(v)
                    .map_err(|e| Error::io("setsockopt(SO_RCVBUF)", e))?;
            }
            Err(e) => return Err(Error::io("setsockopt(SO_RCVBUFFORCE)", e)),
        }
    }
    report.obtained = sock
        .get_rx_buf_sz()
        .map_err(|e| Error::io("getsockopt(SO_RCVBUF)", e))?;
    Ok(report)
}

/// `net.core.rmem_max` (global), `None` when unreadable.
fn read_rmem_max() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether `datagram` holds the `NLMSG_DONE` or `NLMSG_ERROR` that ends
/// the conversation with sequence number `seq`.
fn ends(datagram: &[u8], seq: u32) -> bool {
    crate::wire::messages(datagram)
        .map_while(|m| m.ok())
        .any(|m| m.seq == seq && (m.is_done() || m.is_error()))
}

/// Whether a datagram holds an `NLMSG_DONE` or `NLMSG_ERROR` (of any
/// sequence number): the end of a reply, where reading ahead stops.
fn ends_any(datagram: &[u8]) -> bool {
    crate::wire::messages(datagram)
        .map_while(|m| m.ok())
        .any(|m| m.is_done() || m.is_error())
}

/// How many received datagrams may wait for the decoding thread.
const PIPELINE_DEPTH: usize = 4;

/// A [`Transport`] whose receives run on a second thread: while the caller
/// decodes one datagram, the receiving thread is already in `recv`, where
/// the kernel fills the next one (a netlink dump produces its next
/// datagram inside the reader's `recvmsg`). Used by
/// [`crate::Conntrack::fold_pipelined`].
///
/// The two threads stay in step because the receiving thread stops after
/// the datagram that ends the reply ([`ends`]: the `NLMSG_DONE` or
/// `NLMSG_ERROR` of the request's sequence number), which is the datagram
/// where the reader ([`crate::dump::DumpReader`]) stops too (a unit test
/// checks that they agree on every kind of datagram). So a next request
/// (a retry after `NLM_F_DUMP_INTR`, another dump) is only sent once the
/// thread waits for it, and never shares a datagram with the previous
/// reply. Buffers move between the threads by value, and the datagram
/// handed out by [`Transport::recv`] borrows the pipe, so it cannot be
/// recycled while it is read. Each buffer holds one dump datagram (at
/// most [`MAX_DUMP_DATAGRAM`]; a larger one is reported truncated), and
/// the receiving thread passes on what `recv` returned: the caller's
/// [`Transport::recv`] turns it into a result labelled with the caller's
/// operation.
pub(crate) struct Pipe<'a> {
    sock: &'a NlSocket,
    seq: &'a mut u32,
    cmd: Option<std::sync::mpsc::Sender<u32>>,
    data: std::sync::mpsc::Receiver<(Vec<u8>, io::Result<usize>)>,
    pool: std::sync::mpsc::Sender<Vec<u8>>,
    cur: Option<(Vec<u8>, usize)>,
}

impl Socket {
    /// Runs `f` with a [`Pipe`] over this socket; the receiving thread
    /// ends when `f` returns (at the latest after the receive timeout, if
    /// `f` stopped reading before the end of a reply).
    pub(crate) fn pipelined<R>(&mut self, f: impl FnOnce(&mut Pipe<'_>) -> R) -> R {
        use std::sync::mpsc;
        let Socket { sock, seq, .. } = self;
        let sock: &NlSocket = sock;
        // The pipe reads the socket itself: nothing read ahead before.
        self.ahead.forget();
        let (cmd_tx, cmd_rx) = mpsc::channel::<u32>();
        let (data_tx, data_rx) = mpsc::sync_channel(PIPELINE_DEPTH);
        let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
        std::thread::scope(|s| {
            s.spawn(move || {
                while let Ok(want) = cmd_rx.recv() {
                    loop {
                        let mut b = pool_rx
                            .try_recv()
                            .unwrap_or_else(|_| vec![0; MAX_DUMP_DATAGRAM]);
                        let r = recv_raw(sock, &mut b, 0);
                        // An error or a truncated datagram ends the
                        // reply for the reader too.
                        let end = match r {
                            Ok(n) if n <= b.len() => ends(&b[..n], want),
                            _ => true,
                        };
                        if data_tx.send((b, r)).is_err() {
                            return;
                        }
                        if end {
                            break;
                        }
                    }
                }
            });
            let mut pipe = Pipe {
                sock,
                seq,
                cmd: Some(cmd_tx),
                data: data_rx,
                pool: pool_tx,
                cur: None,
            };
            let r = f(&mut pipe);
            // Dropping the pipe closes the channels: the thread ends.
            drop(pipe);
            r
        })
    }
}

impl Transport for Pipe<'_> {
    fn send(&mut self, datagram: &[u8]) -> Result<()> {
        let seq = Message::parse(datagram)
            .map_err(|_| Error::InvalidRequest("a request without a valid netlink header"))?
            .seq;
        send_all(self.sock, datagram)?;
        if let Some(c) = &self.cmd {
            let _ = c.send(seq);
        }
        Ok(())
    }

    fn recv(&mut self, op: Op) -> Result<&[u8]> {
        if let Some((b, _)) = self.cur.take() {
            let _ = self.pool.send(b);
        }
        match self.data.recv() {
            Ok((b, r)) => match received(op, r, b.len()) {
                Ok(n) => {
                    let (b, n) = self.cur.insert((b, n));
                    Ok(&b[..*n])
                }
                Err(e) => {
                    let _ = self.pool.send(b);
                    Err(e)
                }
            },
            Err(_) => Err(Error::Timeout { op }),
        }
    }

    fn next_seq(&mut self) -> u32 {
        *self.seq = self.seq.wrapping_add(1);
        if *self.seq == 0 {
            *self.seq = 1;
        }
        *self.seq
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::DumpReader;
    use crate::dump::tests::flow_msg;
    use crate::support;

    /// A receive error in a pipelined conversation is labelled with the
    /// operation of the caller's receive (it was always "dump"): an
    /// `NLMSG_NOOP` without `NLM_F_ACK` gets no reply, so the receiving
    /// thread's `recv` times out. Root: nfnetlink answers an unprivileged
    /// sender with `EPERM` instead.
    #[test]
    fn pipe_errors_name_the_callers_operation() {
        use conntrack_core::testkit::{Need, live};
        if !live("pipe_errors_name_the_callers_operation", &[Need::Root]) {
            return;
        }
        let cfg = SocketConfig::default().timeout(Some(std::time::Duration::from_millis(50)));
        let mut sock = Socket::open(&cfg).expect("a netlink socket needs no privilege");
        let r = sock.pipelined(|p| {
            let seq = p.next_seq();
            let mut noop = vec![0u8; 16];
            noop[0..4].copy_from_slice(&16u32.to_ne_bytes());
            noop[4..6].copy_from_slice(&(libc::NLMSG_NOOP as u16).to_ne_bytes());
            noop[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
            noop[8..12].copy_from_slice(&seq.to_ne_bytes());
            p.send(&noop)?;
            p.recv(Op::DumpDying).map(<[u8]>::len)
        });
        assert!(
            matches!(r, Err(Error::Timeout { op: Op::DumpDying })),
            "{r:?}"
        );
    }

    /// The receiving thread of [`Pipe`] stops at the datagram where
    /// [`ends`] says the reply ended and waits for the next request; the
    /// decoding side stops where [`DumpReader`] says so. If they disagreed
    /// on any datagram, the thread would stop early (the caller then waits
    /// forever for the rest) or read on into the next request's reply (and
    /// hand it to a reader of the wrong request). So: the same answer on
    /// every kind of datagram a dump may receive.
    #[test]
    fn ends_agrees_with_the_dump_reader() {
        const SEQ: u32 = 41;
        let with_seq = |mut m: Vec<u8>, seq: u32| {
            m[8..12].copy_from_slice(&seq.to_ne_bytes());
            m
        };
        let flow = || with_seq(flow_msg(1, 0), SEQ);
        let done = |seq| support::done(seq, 0, 0);
        let mut bad = flow_msg(2, 0);
        bad[0..4].copy_from_slice(&8u32.to_ne_bytes()); // shorter than a header
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("flows", [flow(), flow()].concat(), false),
            ("flows and DONE", [flow(), done(SEQ)].concat(), true),
            ("DONE alone", done(SEQ), true),
            (
                "DONE with an errno",
                support::done(SEQ, 0, -libc::EINTR),
                true,
            ),
            (
                "NLMSG_ERROR",
                support::error(SEQ, -libc::EBUSY, Some("busy")),
                true,
            ),
            ("a stale DONE", done(SEQ - 1), false),
            (
                "a stale error",
                support::error(SEQ + 1, -libc::EPERM, None),
                false,
            ),
            (
                "stale DONE, then ours",
                [done(7), flow(), done(SEQ)].concat(),
                true,
            ),
            ("a stale flow", with_seq(flow_msg(3, 0), 7), false),
            (
                "a bad header before DONE",
                [bad.clone(), done(SEQ)].concat(),
                false,
            ),
            ("DONE before a bad header", [done(SEQ), bad].concat(), true),
            ("empty", Vec::new(), false),
        ];
        for (what, d, want) in cases {
            let mut reader = DumpReader::new(Op::Dump, SEQ, false);
            let _ = reader.feed(&d, &mut |_| {});
            assert_eq!(reader.ended, want, "{what}: the reader");
            assert_eq!(ends(&d, SEQ), reader.ended, "{what}: ends()");
        }
    }
}
