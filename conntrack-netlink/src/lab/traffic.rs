//! Traffic generators: std threads that enter a lab namespace with
//! `setns(2)` ([`Netns::spawn`]) and send real traffic through the router.
//!
//! Each function starts its threads and returns a [`Generator`]; the
//! threads run until [`Generator::stop`] (or drop), pace themselves to the
//! rate asked for, and count what they did ([`Counts`]). Blocking calls
//! have short timeouts so that a stop takes effect within ~100 ms.

use super::LabError;
use super::packet::{Ipv4Packet, Transport, tcp_flags};
use super::topology::Host;
use crate::Netns;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a generator's threads did, summed.
#[derive(Debug, Default)]
pub struct Counts {
    /// Attempts (connections, requests, packets sent).
    pub attempts: AtomicU64,
    /// Attempts that completed (a reply, an accepted connection).
    pub ok: AtomicU64,
    /// Attempts that failed or timed out.
    pub failed: AtomicU64,
}

impl Counts {
    fn attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }
    fn ok(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
    }
    fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
    /// `(attempts, ok, failed)` now.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.attempts.load(Ordering::Relaxed),
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

type Worker = JoinHandle<crate::Result<()>>;

/// Running traffic: threads, a stop flag and their counts.
#[derive(Debug)]
pub struct Generator {
    name: String,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    workers: Vec<Worker>,
}

impl Generator {
    fn new(name: &str) -> Generator {
        Generator {
            name: name.to_owned(),
            stop: Arc::new(AtomicBool::new(false)),
            counts: Arc::new(Counts::default()),
            workers: Vec::new(),
        }
    }

    /// Starts `f(stop, counts)` on a thread in `ns`.
    fn spawn(
        &mut self,
        ns: &Netns,
        f: impl FnOnce(&Arc<AtomicBool>, &Counts) -> io::Result<()> + Send + 'static,
    ) -> Result<(), LabError> {
        let (stop, counts) = (self.stop.clone(), self.counts.clone());
        let name = format!("lab-{}", self.name);
        let h = ns
            .spawn(&name, move || {
                f(&stop, &counts).map_err(|source| crate::Error::Io {
                    call: "lab traffic",
                    source,
                })
            })
            .map_err(|e| LabError::netlink(format!("start {}", self.name), e))?;
        self.workers.push(h);
        Ok(())
    }

    /// The generator's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What its threads did so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Stops the threads and waits for them; the first thread error, if
    /// any, is returned.
    pub fn stop(mut self) -> Result<(u64, u64, u64), LabError> {
        self.halt()?;
        Ok(self.counts.snapshot())
    }

    fn halt(&mut self) -> Result<(), LabError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = None;
        for w in self.workers.drain(..) {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first.get_or_insert(LabError::netlink(self.name.clone(), e));
                }
                Err(_) => {
                    first.get_or_insert(LabError::io(
                        self.name.clone(),
                        io::Error::other("a traffic thread panicked"),
                    ));
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Paces a loop to `rate` iterations per second (0: as fast as it goes).
#[derive(Debug)]
struct Pace {
    interval: Duration,
    next: Instant,
}

impl Pace {
    fn new(rate: f64) -> Pace {
        Pace {
            interval: if rate > 0.0 {
                Duration::from_secs_f64(1.0 / rate)
            } else {
                Duration::ZERO
            },
            next: Instant::now(),
        }
    }

    /// Waits for the next slot; slots missed by more than a second are
    /// dropped rather than sent in a burst.
    fn wait(&mut self) {
        if self.interval.is_zero() {
            return;
        }
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        } else if now - self.next > Duration::from_secs(1) {
            self.next = now;
        }
        self.next += self.interval;
    }
}

const TICK: Duration = Duration::from_millis(100);

/// Waits for a server thread to say that its socket is bound (so that the
/// first client does not meet a refused connection).
fn wait_bound(g: &Generator, rx: std::sync::mpsc::Receiver<()>) -> Result<(), LabError> {
    rx.recv_timeout(Duration::from_secs(5))
        .map_err(|_| LabError::NotReached {
            scenario: "server",
            what: format!("{} bound to its address", g.name()),
            secs: 5,
            state: "the server thread ended or is stuck".into(),
        })
}

fn nonblocking_accept_loop(
    listener: &Socket,
    stop: &AtomicBool,
    mut on_conn: impl FnMut(Socket),
) -> io::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => on_conn(s),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // ECONNABORTED and the like: the next accept may work.
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    Ok(())
}

/// An HTTP-like TCP server on `host`'s address: each connection may carry
/// several requests (`\n`-terminated lines); each gets a short response.
/// With `close_after_reply`, the server closes after the first response
/// (HTTP/1.0 style: the server's FIN comes first).
pub fn tcp_server(host: &Host, port: u16, close_after_reply: bool) -> Result<Generator, LabError> {
    let mut g = Generator::new("tcp-server");
    let addr = SocketAddrV4::new(host.addr, port);
    let (tx, rx) = std::sync::mpsc::channel();
    g.spawn(&host.ns(), move |stop, counts| {
        let l = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        l.set_reuse_address(true)?;
        l.bind(&SockAddr::from(addr))?;
        l.listen(4096)?;
        l.set_nonblocking(true)?;
        let _ = tx.send(());
        let live = Arc::new(AtomicU64::new(0));
        nonblocking_accept_loop(&l, stop, |s| {
            counts.attempt();
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(TICK));
            let mut stream: TcpStream = s.into();
            let (stop, live2) = (stop.clone(), live.clone());
            live.fetch_add(1, Ordering::AcqRel);
            // One thread per connection (it inherits this thread's
            // namespace): short-lived for churn, long for persistent
            // clients; each ends on EOF, error or stop.
            let spawned = std::thread::Builder::new()
                .name("lab-tcp-conn".into())
                .spawn(move || {
                    serve_conn(&mut stream, &stop, close_after_reply);
                    live2.fetch_sub(1, Ordering::AcqRel);
                });
            match spawned {
                Ok(_) => counts.ok(),
                Err(_) => {
                    live.fetch_sub(1, Ordering::AcqRel);
                    counts.failed();
                }
            }
        })?;
        // The connection threads see the stop within a read timeout; the
        // namespace must not outlive the generator because of them.
        let t0 = Instant::now();
        while live.load(Ordering::Acquire) > 0 && t0.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    })?;
    wait_bound(&g, rx)?;
    Ok(g)
}

fn serve_conn(stream: &mut TcpStream, stop: &AtomicBool, close_after_reply: bool) {
    let mut buf = [0u8; 2048];
    let mut pending = Vec::new();
    let started = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                    pending.drain(..=i);
                    if stream.write_all(b"HTTP/1.0 200 OK\r\n\r\nok\n").is_err() {
                        return;
                    }
                    if close_after_reply {
                        return;
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // An idle persistent connection waits; a short one that
                // never sent its request is given up after 10 s.
                if close_after_reply && started.elapsed() > Duration::from_secs(10) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Closed-loop HTTP-like churn from `client`: `rate` new connections per
/// second over `threads` threads, each one request and response, then
/// closed by whichever side `tcp_server` was told to close with.
pub fn http_churn(
    client: &Host,
    dst: SocketAddrV4,
    rate: f64,
    threads: usize,
) -> Result<Generator, LabError> {
    let timeout = Duration::from_secs(2);
    paced_requests("http-churn", &client.ns(), rate, threads, move || {
        let mut s = TcpStream::connect_timeout(&SocketAddr::V4(dst), timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"GET / HTTP/1.0\n")?;
        let mut sink = Vec::new();
        s.read_to_end(&mut sink)?;
        if sink.is_empty() {
            return Err(io::Error::other("empty response"));
        }
        Ok(())
    })
}

/// Closed-loop requests: `threads` threads (at least one) calling
/// `request` `rate` times per second in total, each call an attempt that
/// counts as completed or failed by its result.
fn paced_requests<F>(
    name: &str,
    ns: &Netns,
    rate: f64,
    threads: usize,
    request: F,
) -> Result<Generator, LabError>
where
    F: FnMut() -> io::Result<()> + Clone + Send + 'static,
{
    let mut g = Generator::new(name);
    let threads = threads.max(1);
    for _ in 0..threads {
        let mut request = request.clone();
        g.spawn(ns, move |stop, counts| {
            let mut pace = Pace::new(rate / threads as f64);
            while !stop.load(Ordering::Relaxed) {
                pace.wait();
                counts.attempt();
                match request() {
                    Ok(()) => counts.ok(),
                    Err(_) => counts.failed(),
                }
            }
            Ok(())
        })?;
    }
    Ok(g)
}

/// `conns` persistent connections from `client`, each sending `rate`
/// requests per second in total (spread over the connections); a broken
/// connection is reopened.
pub fn persistent_requests(
    client: &Host,
    dst: SocketAddrV4,
    conns: usize,
    rate: f64,
) -> Result<Generator, LabError> {
    let mut g = Generator::new("persistent");
    g.spawn(&client.ns(), move |stop, counts| {
        let mut open: Vec<Option<TcpStream>> = (0..conns.max(1)).map(|_| None).collect();
        let mut pace = Pace::new(rate);
        let mut i = 0usize;
        let mut buf = [0u8; 256];
        while !stop.load(Ordering::Relaxed) {
            pace.wait();
            let slot = i % open.len();
            i += 1;
            counts.attempt();
            if open[slot].is_none() {
                open[slot] =
                    TcpStream::connect_timeout(&SocketAddr::V4(dst), Duration::from_secs(2))
                        .ok()
                        .inspect(|s| {
                            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        });
            }
            let ok = open[slot].as_mut().is_some_and(|s| {
                s.write_all(b"GET /keepalive HTTP/1.1\n").is_ok()
                    && s.read(&mut buf).is_ok_and(|n| n > 0)
            });
            if ok {
                counts.ok();
            } else {
                counts.failed();
                open[slot] = None;
            }
        }
        Ok(())
    })?;
    Ok(g)
}

/// Open-loop TCP connection attempts from `client`: `rate` non-blocking
/// connects per second whatever happens to them (a full table drops the
/// SYNs); each socket is reset (`SO_LINGER` 0) after `hold`.
pub fn tcp_connect_attempts(
    client: &Host,
    dst: SocketAddrV4,
    rate: f64,
    hold: Duration,
) -> Result<Generator, LabError> {
    let mut g = Generator::new("tcp-attempts");
    g.spawn(&client.ns(), move |stop, counts| {
        let mut pace = Pace::new(rate);
        let mut held: VecDeque<(Instant, Socket)> = VecDeque::new();
        let dst = SockAddr::from(dst);
        while !stop.load(Ordering::Relaxed) {
            pace.wait();
            let now = Instant::now();
            while held.front().is_some_and(|(t, _)| now - *t > hold) {
                if let Some((_, s)) = held.pop_front() {
                    if s.take_error().ok().flatten().is_none() && s.peer_addr().is_ok() {
                        counts.ok();
                    }
                    let _ = s.set_linger(Some(Duration::ZERO));
                }
            }
            counts.attempt();
            let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
            s.set_nonblocking(true)?;
            match s.connect(&dst) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                Err(_) => {
                    counts.failed();
                    continue;
                }
            }
            held.push_back((now, s));
        }
        for (_, s) in held {
            let _ = s.set_linger(Some(Duration::ZERO));
        }
        Ok(())
    })?;
    Ok(g)
}

/// A UDP echo server on `host`'s address.
pub fn udp_server(host: &Host, port: u16) -> Result<Generator, LabError> {
    let mut g = Generator::new("udp-server");
    let addr = SocketAddrV4::new(host.addr, port);
    let (tx, rx) = std::sync::mpsc::channel();
    g.spawn(&host.ns(), move |stop, counts| {
        let s = UdpSocket::bind(addr)?;
        s.set_read_timeout(Some(TICK))?;
        let _ = tx.send(());
        let mut buf = [0u8; 1500];
        while !stop.load(Ordering::Relaxed) {
            match s.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    counts.attempt();
                    if s.send_to(&buf[..n], peer).is_ok() {
                        counts.ok();
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => counts.failed(),
            }
        }
        Ok(())
    })?;
    wait_bound(&g, rx)?;
    Ok(g)
}

/// DNS-like UDP request/reply from `client`: `rate` requests per second,
/// each from a new socket (a new source port, so a new conntrack entry),
/// waiting up to 500 ms for the reply.
pub fn udp_requests(
    client: &Host,
    dst: SocketAddrV4,
    rate: f64,
    threads: usize,
) -> Result<Generator, LabError> {
    let mut buf = [0u8; 512];
    paced_requests("udp-requests", &client.ns(), rate, threads, move || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        s.connect(dst)?;
        s.send(b"lab query")?;
        s.recv(&mut buf)?;
        Ok(())
    })
}

/// Open-loop new UDP flows from `client`: `rate` datagrams per second,
/// each from a new socket (a new source port, so a new conntrack entry),
/// whatever happens to them; a reply that comes within 200 ms counts as
/// completed.
pub fn udp_new_flows(client: &Host, dst: SocketAddrV4, rate: f64) -> Result<Generator, LabError> {
    let mut g = Generator::new("udp-flows");
    g.spawn(&client.ns(), move |stop, counts| {
        let mut pace = Pace::new(rate);
        let mut held: VecDeque<(Instant, UdpSocket)> = VecDeque::new();
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            pace.wait();
            let now = Instant::now();
            while held
                .front()
                .is_some_and(|(t, _)| now - *t > Duration::from_millis(200))
            {
                if let Some((_, s)) = held.pop_front() {
                    match s.recv(&mut buf) {
                        Ok(_) => counts.ok(),
                        Err(_) => counts.failed(),
                    }
                }
            }
            counts.attempt();
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            s.set_nonblocking(true)?;
            s.connect(dst)?;
            if s.send(b"lab flow").is_err() {
                counts.failed();
                continue;
            }
            held.push_back((now, s));
        }
        Ok(())
    })?;
    Ok(g)
}

/// A rendezvous of two threads spinning on one counter: each round both
/// arrive, then both go at (nearly) the same instant. Spinning, not
/// parking: a futex wake-up takes longer than the race window.
#[derive(Debug, Default)]
struct Rendezvous {
    arrived: AtomicU64,
}

impl Rendezvous {
    /// Waits for the other thread in round `round` (0-based); false when
    /// `stop` was set while waiting.
    fn meet(&self, round: u64, stop: &AtomicBool) -> bool {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        let target = 2 * (round + 1);
        let mut spins = 0u32;
        while self.arrived.load(Ordering::Acquire) < target {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
                // Under a CPU hog the other thread may be preempted: let
                // it run now and then.
                if spins.is_multiple_of(1024 * 64) {
                    std::thread::yield_now();
                }
            }
            std::hint::spin_loop();
        }
        true
    }
}

/// The CPUs to pin two racing threads to: the first two this process may
/// run on. `None` with fewer than two.
pub fn two_cpus() -> Option<(usize, usize)> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (n >= 2).then_some((0, 1))
}

fn pin(cpu: usize) -> io::Result<()> {
    crate::sys::pin_current_thread(cpu)
}

/// Concurrent first packets of the same UDP flow: two threads pinned to
/// `cpus` share one socket (a new one, so a new source port, per round)
/// and send at the same instant, as a resolver sends A and AAAA queries.
/// Both packets reach the router's conntrack on different CPUs before
/// either entry is confirmed. About `rate` rounds per second.
pub fn udp_same_flow_race(
    client: &Host,
    dst: SocketAddrV4,
    cpus: (usize, usize),
    rate: f64,
) -> Result<Generator, LabError> {
    let mut g = Generator::new("udp-same-flow");
    let meet = Arc::new(Rendezvous::default());
    let sockets: Arc<std::sync::Mutex<Vec<Arc<UdpSocket>>>> = Arc::default();
    for (k, cpu) in [cpus.0, cpus.1].into_iter().enumerate() {
        let (meet, sockets) = (meet.clone(), sockets.clone());
        g.spawn(&client.ns(), move |stop, counts| {
            pin(cpu)?;
            let mut pace = Pace::new(rate);
            let mut round = 0u64;
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                pace.wait();
                // Thread 0 makes the round's socket; both meet, then send.
                if k == 0 {
                    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
                    s.connect(dst)?;
                    s.set_nonblocking(true)?;
                    let mut v = sockets.lock().unwrap_or_else(|e| e.into_inner());
                    v.push(Arc::new(s));
                    if v.len() > 64 {
                        v.remove(0);
                    }
                }
                if !meet.meet(2 * round, stop) {
                    break;
                }
                let s = sockets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .last()
                    .cloned();
                if !meet.meet(2 * round + 1, stop) {
                    break;
                }
                round += 1;
                if let Some(s) = s {
                    counts.attempt();
                    if s.send(if k == 0 { b"A?" } else { b"AAAA?" }).is_err() {
                        counts.failed();
                    }
                    // Replies of earlier rounds, when the server answers.
                    while s.recv(&mut buf).is_ok() {
                        counts.ok();
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(g)
}

/// The protocol of a [`same_port_race`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaceProto {
    /// TCP connects (non-blocking; reset after 300 ms).
    Tcp,
    /// One UDP datagram each.
    Udp,
}

/// Two clients (in two namespaces, threads pinned to `cpus`) open a new
/// flow to `dst` from the same source port at the same instant, a new port
/// every round (from 20000 up, wrapping at 60000). Through MASQUERADE
/// without a random flag both keep their port, so both pick the same
/// mapping before either is confirmed: the NAT port-allocation race. About
/// `rate` rounds per second.
pub fn same_port_race(
    clients: (&Host, &Host),
    dst: SocketAddrV4,
    proto: RaceProto,
    cpus: (usize, usize),
    rate: f64,
) -> Result<Generator, LabError> {
    let mut g = Generator::new(match proto {
        RaceProto::Tcp => "tcp-port-race",
        RaceProto::Udp => "udp-port-race",
    });
    let meet = Arc::new(Rendezvous::default());
    for (host, cpu) in [(clients.0, cpus.0), (clients.1, cpus.1)] {
        let meet = meet.clone();
        let src = host.addr;
        g.spawn(&host.ns(), move |stop, counts| {
            pin(cpu)?;
            let mut pace = Pace::new(rate);
            let mut held: VecDeque<(Instant, Socket)> = VecDeque::new();
            let dst_sa = SockAddr::from(dst);
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                pace.wait();
                let port = 20_000 + (round % 40_000) as u16;
                let now = Instant::now();
                while held
                    .front()
                    .is_some_and(|(t, _)| now - *t > Duration::from_millis(300))
                {
                    if let Some((_, s)) = held.pop_front() {
                        if proto == RaceProto::Tcp && s.peer_addr().is_ok() {
                            counts.ok();
                        }
                        let _ = s.set_linger(Some(Duration::ZERO));
                    }
                }
                let (ty, p) = match proto {
                    RaceProto::Tcp => (Type::STREAM, Protocol::TCP),
                    RaceProto::Udp => (Type::DGRAM, Protocol::UDP),
                };
                let s = Socket::new(Domain::IPV4, ty, Some(p))?;
                s.set_reuse_address(true)?;
                s.set_nonblocking(true)?;
                let bound = s.bind(&SockAddr::from(SocketAddrV4::new(src, port)));
                if !meet.meet(round, stop) {
                    break;
                }
                round += 1;
                if bound.is_err() {
                    counts.failed();
                    continue;
                }
                counts.attempt();
                let r = match proto {
                    RaceProto::Tcp => match s.connect(&dst_sa) {
                        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
                        other => other,
                    },
                    RaceProto::Udp => s.send_to(b"race", &dst_sa).map(|_| ()),
                };
                match r {
                    Ok(()) => held.push_back((now, s)),
                    Err(_) => counts.failed(),
                }
            }
            for (_, s) in held {
                let _ = s.set_linger(Some(Duration::ZERO));
            }
            Ok(())
        })?;
    }
    Ok(g)
}

fn raw_socket() -> io::Result<Socket> {
    let s = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(libc::IPPROTO_RAW)),
    )?;
    s.set_header_included_v4(true)?;
    Ok(s)
}

/// A small xorshift generator: ports, sequence numbers and the order of
/// spoofed sources need variety, not quality.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn seeded() -> XorShift {
        let t = Instant::now().elapsed().as_nanos() as u64;
        let pid = u64::from(std::process::id());
        XorShift(0x9e37_79b9_7f4a_7c15 ^ t ^ (pid << 32) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A SYN scan from `client`'s address: SYNs to `ports` of `dst` in turn,
/// from random source ports, `rate` per second. A target that does not
/// answer leaves each entry UNREPLIED in SYN_SENT (120 s by default).
pub fn syn_scan(
    client: &Host,
    dst: Ipv4Addr,
    ports: std::ops::RangeInclusive<u16>,
    rate: f64,
) -> Result<Generator, LabError> {
    let mut g = Generator::new("syn-scan");
    let src = client.addr;
    g.spawn(&client.ns(), move |stop, counts| {
        let s = raw_socket()?;
        let mut pace = Pace::new(rate);
        let mut rng = XorShift::seeded();
        let mut buf = Vec::with_capacity(64);
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        let mut port = *ports.start();
        while !stop.load(Ordering::Relaxed) {
            pace.wait();
            let r = rng.next();
            Ipv4Packet {
                src,
                dst,
                id: r as u16,
                transport: Transport::Tcp {
                    src_port: 1024 + (r >> 16) as u16 % 60_000,
                    dst_port: port,
                    seq: (r >> 32) as u32,
                    ack: 0,
                    flags: tcp_flags::SYN,
                    window: 1024,
                    payload: &[],
                },
            }
            .emit(&mut buf);
            counts.attempt();
            match s.send_to(&buf, &to) {
                Ok(_) => counts.ok(),
                Err(_) => counts.failed(),
            }
            port = if port >= *ports.end() {
                *ports.start()
            } else {
                port + 1
            };
        }
        Ok(())
    })?;
    Ok(g)
}

/// A UDP flood to `dst` from `sources` spoofed addresses starting at
/// `first_source` (routed back to `client`, which drops the replies),
/// `rate` datagrams per second over `threads` threads.
pub fn udp_flood(
    client: &Host,
    first_source: Ipv4Addr,
    sources: u32,
    dst: SocketAddrV4,
    rate: f64,
    threads: usize,
) -> Result<Generator, LabError> {
    let mut g = Generator::new("udp-flood");
    let threads = threads.max(1);
    for t in 0..threads {
        g.spawn(&client.ns(), move |stop, counts| {
            let s = raw_socket()?;
            let mut pace = Pace::new(rate / threads as f64);
            let mut rng = XorShift::seeded();
            for _ in 0..=t {
                rng.next();
            }
            let mut buf = Vec::with_capacity(64);
            let to = SockAddr::from(SocketAddrV4::new(*dst.ip(), 0));
            let base = u32::from(first_source);
            while !stop.load(Ordering::Relaxed) {
                pace.wait();
                let r = rng.next();
                Ipv4Packet {
                    src: Ipv4Addr::from(base + (r as u32) % sources.max(1)),
                    dst: *dst.ip(),
                    id: (r >> 32) as u16,
                    transport: Transport::Udp {
                        src_port: 1024 + (r >> 40) as u16 % 60_000,
                        dst_port: dst.port(),
                        payload: b"flood",
                    },
                }
                .emit(&mut buf);
                counts.attempt();
                match s.send_to(&buf, &to) {
                    Ok(_) => counts.ok(),
                    Err(_) => counts.failed(),
                }
            }
            Ok(())
        })?;
    }
    Ok(g)
}

/// TCP segments conntrack must call invalid, `rate` per second from
/// `client`: on the established connections `conns` (local, remote), ACK
/// segments with random sequence and acknowledgment numbers (out of the
/// window: "SEQ is over upper bound" or "ACK is over upper bound"); and,
/// every fourth, a stray FIN to a port with no connection ("invalid new").
pub fn invalid_segments(
    client: &Host,
    conns: Vec<(SocketAddrV4, SocketAddrV4)>,
    stray_dst: Ipv4Addr,
    rate: f64,
) -> Result<Generator, LabError> {
    let mut g = Generator::new("invalid-segments");
    let src = client.addr;
    g.spawn(&client.ns(), move |stop, counts| {
        let s = raw_socket()?;
        let mut pace = Pace::new(rate);
        let mut rng = XorShift::seeded();
        let mut buf = Vec::with_capacity(64);
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            pace.wait();
            let r = rng.next();
            let (from, to, flags) = if conns.is_empty() || i % 4 == 3 {
                (
                    SocketAddrV4::new(src, 1024 + (r as u16) % 60_000),
                    SocketAddrV4::new(stray_dst, 1 + (r >> 16) as u16 % 1000),
                    tcp_flags::FIN | tcp_flags::ACK,
                )
            } else {
                let (l, rem) = conns[i % conns.len()];
                (l, rem, tcp_flags::ACK | tcp_flags::PSH)
            };
            i += 1;
            Ipv4Packet {
                src: *from.ip(),
                dst: *to.ip(),
                id: r as u16,
                transport: Transport::Tcp {
                    src_port: from.port(),
                    dst_port: to.port(),
                    seq: (r >> 32) as u32,
                    ack: (r as u32).rotate_left(7),
                    flags,
                    window: 512,
                    payload: b"x",
                },
            }
            .emit(&mut buf);
            counts.attempt();
            match s.send_to(&buf, &SockAddr::from(SocketAddrV4::new(*to.ip(), 0))) {
                Ok(_) => counts.ok(),
                Err(_) => counts.failed(),
            }
        }
        Ok(())
    })?;
    Ok(g)
}

/// Opens `n` idle TCP connections from `client` to `dst` and keeps them
/// open until the generator stops; returns their (local, remote) address
/// pairs, for [`invalid_segments`].
pub fn idle_connections(
    client: &Host,
    dst: SocketAddrV4,
    n: usize,
) -> Result<(Generator, Vec<(SocketAddrV4, SocketAddrV4)>), LabError> {
    let mut g = Generator::new("idle-conns");
    let (tx, rx) = std::sync::mpsc::channel();
    g.spawn(&client.ns(), move |stop, counts| {
        let mut streams = Vec::new();
        let mut pairs = Vec::new();
        for _ in 0..n {
            counts.attempt();
            let s = TcpStream::connect_timeout(&SocketAddr::V4(dst), Duration::from_secs(2))?;
            if let (Ok(SocketAddr::V4(l)), Ok(SocketAddr::V4(r))) = (s.local_addr(), s.peer_addr())
            {
                pairs.push((l, r));
            }
            counts.ok();
            streams.push(s);
        }
        let _ = tx.send(pairs);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(TICK);
        }
        Ok(())
    })?;
    let pairs = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| LabError::NotReached {
            scenario: "idle-connections",
            what: format!("{n} connections to {dst}"),
            secs: 10,
            state: format!("{:?}", g.counts().snapshot()),
        })?;
    Ok((g, pairs))
}
