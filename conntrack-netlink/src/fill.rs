//! Filling a conntrack table with synthetic flows, fast: batched
//! `IPCTNL_MSG_CT_NEW` requests, hundreds per datagram, with `NLM_F_ACK`
//! only on the last of each batch (the kernel answers failures anyway, so
//! errors of the others still come back).
//!
//! Used by the benchmarks, the live tests and `examples/fill.rs`. Flows
//! are created directly over ctnetlink, no traffic is needed.
//!
//! `nf_conntrack_max` is one global value compared against each
//! namespace's own count; `conntrack_core::host::ConntrackMaxGuard`
//! raises it for a large fill and puts the old value back when dropped
//! (re-exported here, where it used to live).

use crate::error::{Error, Op, Result};
use crate::ops::Conntrack;
use crate::request;
use crate::socket::Transport;
use crate::wire::message::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use conntrack_core::{Flow, L4Proto, L4Tuple, ProtoInfo, Status, TcpInfo, TcpState, Tuple};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Moved to `conntrack_core::host::max_guard`; re-exported for existing users.
pub use conntrack_core::host::max_guard::{ConntrackMaxGuard, read_max};

/// A kind of synthetic flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FlowKind {
    /// IPv4 TCP, in a spread of states.
    Tcp,
    /// IPv4 UDP, replied or not.
    Udp,
    /// IPv4 ICMP echo.
    Icmp,
    /// IPv6 TCP.
    Tcp6,
    /// IPv6 UDP.
    Udp6,
    /// IPv6 ICMPv6 echo.
    Icmp6,
}

impl FlowKind {
    /// Every kind.
    pub const ALL: [FlowKind; 6] = [
        FlowKind::Tcp,
        FlowKind::Udp,
        FlowKind::Icmp,
        FlowKind::Tcp6,
        FlowKind::Udp6,
        FlowKind::Icmp6,
    ];

    /// The name used in a [`Mix`] (`tcp`, `udp`, `icmp`, `tcp6`, `udp6`, `icmp6`).
    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Tcp => "tcp",
            FlowKind::Udp => "udp",
            FlowKind::Icmp => "icmp",
            FlowKind::Tcp6 => "tcp6",
            FlowKind::Udp6 => "udp6",
            FlowKind::Icmp6 => "icmp6",
        }
    }
}

/// Error parsing a [`Mix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    /// An item is not `kind=weight`.
    #[error("`{0}` is not KIND=WEIGHT (e.g. tcp=60)")]
    Syntax(String),
    /// Unknown kind.
    #[error("unknown flow kind `{0}` (known: tcp, udp, icmp, tcp6, udp6, icmp6)")]
    UnknownKind(String),
    /// All weights are zero.
    #[error("the weights add up to zero")]
    Empty,
}

/// Relative weights of flow kinds, e.g. `tcp=60,udp=30,icmp=10`.
///
/// ```
/// use conntrack_netlink::fill::{FlowKind, Mix};
/// let m: Mix = "tcp=60,udp=30,icmp=10".parse().unwrap();
/// assert_eq!(m.kind_of(0), FlowKind::Tcp);
/// let n = (0..100).filter(|&i| m.kind_of(i) == FlowKind::Udp).count();
/// assert_eq!(n, 30);
/// assert!("tcp=1,foo=2".parse::<Mix>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: Vec<(FlowKind, u32)>,
    total: u64,
}

impl Mix {
    /// A mix from `(kind, weight)` pairs.
    pub fn new(weights: &[(FlowKind, u32)]) -> core::result::Result<Mix, MixError> {
        let weights: Vec<_> = weights.iter().copied().filter(|&(_, w)| w > 0).collect();
        let total = weights.iter().map(|&(_, w)| u64::from(w)).sum();
        if total == 0 {
            return Err(MixError::Empty);
        }
        Ok(Mix { weights, total })
    }

    /// The kinds and their weights, in the order given (zero weights
    /// left out).
    pub fn weights(&self) -> &[(FlowKind, u32)] {
        &self.weights
    }

    /// The kind of flow number `i`: kinds are interleaved so that every
    /// prefix of the sequence has close to the mix's proportions.
    pub fn kind_of(&self, i: u64) -> FlowKind {
        let mut r = i % self.total;
        for &(k, w) in &self.weights {
            if r < u64::from(w) {
                return k;
            }
            r -= u64::from(w);
        }
        self.weights[0].0
    }
}

impl Default for Mix {
    /// `tcp=60,udp=30,icmp=10`.
    fn default() -> Self {
        Mix::new(&[
            (FlowKind::Tcp, 60),
            (FlowKind::Udp, 30),
            (FlowKind::Icmp, 10),
        ])
        .unwrap_or_else(|_| unreachable!("non-zero weights"))
    }
}

impl std::fmt::Display for Mix {
    /// `KIND=WEIGHT` items separated by commas, as [`FromStr`] reads them.
    ///
    /// ```
    /// use conntrack_netlink::fill::Mix;
    /// let m: Mix = " tcp=60, udp=0,icmp = 10".parse().unwrap();
    /// assert_eq!(m.to_string(), "tcp=60,icmp=10");
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, w)) in self.weights.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{}={w}", k.name())?;
        }
        Ok(())
    }
}

impl FromStr for Mix {
    type Err = MixError;
    fn from_str(s: &str) -> core::result::Result<Mix, MixError> {
        let mut w = Vec::new();
        for item in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| MixError::Syntax(item.to_owned()))?;
            let v: u32 = v
                .trim()
                .parse()
                .map_err(|_| MixError::Syntax(item.to_owned()))?;
            let k = FlowKind::ALL
                .into_iter()
                .find(|f| f.name() == k.trim())
                .ok_or_else(|| MixError::UnknownKind(k.trim().to_owned()))?;
            w.push((k, v));
        }
        Mix::new(&w)
    }
}

const TCP_STATES: [(TcpState, u32); 5] = [
    (TcpState::ESTABLISHED, 60),
    (TcpState::TIME_WAIT, 20),
    (TcpState::SYN_SENT, 10),
    (TcpState::CLOSE_WAIT, 5),
    (TcpState::FIN_WAIT, 5),
];

/// Synthetic flow number `i` of `kind`: unique per `(kind, i)` for
/// `i < 2^24`. IPv4 sources are `10.a.b.c` (the low 24 bits of `i`),
/// IPv6 sources `fd00:c7::i`; TCP states are spread 60 % ESTABLISHED,
/// 20 % TIME_WAIT, 10 % SYN_SENT, 5 % CLOSE_WAIT, 5 % FIN_WAIT; every
/// other UDP/ICMP flow is replied.
///
/// ```
/// use conntrack_netlink::fill::{synthetic_flow, FlowKind};
/// let f = synthetic_flow(FlowKind::Tcp, 258, 600);
/// assert_eq!(f.orig.src.to_string(), "10.0.1.2");
/// assert_eq!(f.timeout, Some(600));
/// ```
pub fn synthetic_flow(kind: FlowKind, i: u64, timeout: u32) -> Flow {
    let low = (i & 0x00ff_ffff) as u32;
    let v4 = |host: u32| IpAddr::V4(Ipv4Addr::from(host));
    let (src, dst) = match kind {
        FlowKind::Tcp | FlowKind::Udp | FlowKind::Icmp => {
            let server = match kind {
                FlowKind::Tcp => 0xc000_0201, // 192.0.2.1
                FlowKind::Udp => 0xc000_0202, // 192.0.2.2
                _ => 0xc000_0203,             // 192.0.2.3
            };
            (v4(0x0a00_0000 | low), v4(server))
        }
        _ => {
            let s = Ipv6Addr::new(0xfd00, 0xc7, 0, 0, 0, 0, (low >> 16) as u16, low as u16);
            let d = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, kind as u16);
            (IpAddr::V6(s), IpAddr::V6(d))
        }
    };
    let sport = 1024 + (i % 60000) as u16;
    let replied = i.is_multiple_of(2);
    let (proto, l4, status, protoinfo) = match kind {
        FlowKind::Tcp | FlowKind::Tcp6 => {
            // A multiplicative hash, so that the state does not follow
            // the kind interleaving of the mix.
            let mut r = (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) % 100;
            let mut state = TcpState::ESTABLISHED;
            for (s, w) in TCP_STATES {
                if r < u64::from(w) {
                    state = s;
                    break;
                }
                r -= u64::from(w);
            }
            let status = if state == TcpState::SYN_SENT {
                Status::empty()
            } else {
                Status::SEEN_REPLY | Status::ASSURED
            };
            let dport = [443, 80, 22, 5432][(i % 4) as usize];
            (
                L4Proto::TCP,
                L4Tuple::Ports {
                    src: sport,
                    dst: dport,
                },
                status,
                Some(ProtoInfo::Tcp(TcpInfo::new(state))),
            )
        }
        FlowKind::Udp | FlowKind::Udp6 => {
            let dport = [53, 123, 443][(i % 3) as usize];
            (
                L4Proto::UDP,
                L4Tuple::Ports {
                    src: sport,
                    dst: dport,
                },
                if replied {
                    Status::SEEN_REPLY
                } else {
                    Status::empty()
                },
                None,
            )
        }
        FlowKind::Icmp | FlowKind::Icmp6 => {
            // Echo requests; the reply tuple has the echo reply type.
            let (req, proto) = if kind == FlowKind::Icmp {
                (8, L4Proto::ICMP)
            } else {
                (128, L4Proto::ICMPV6)
            };
            let id = (i >> 8) as u16 ^ (i as u16);
            (
                proto,
                L4Tuple::Icmp {
                    kind: req,
                    code: 0,
                    id,
                },
                if replied {
                    Status::SEEN_REPLY
                } else {
                    Status::empty()
                },
                None,
            )
        }
    };
    let orig = Tuple::new(src, dst, proto, l4);
    let mut f = Flow::new(orig, request::reply_tuple(&orig), status);
    f.protoinfo = protoinfo;
    f.timeout = Some(timeout);
    f
}

/// What to fill.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FillOptions {
    /// How many flows.
    pub count: u64,
    /// The mix of kinds.
    pub mix: Mix,
    /// Timeout of every flow, seconds (default one day, so that a table
    /// filled for a benchmark stays put).
    pub timeout: u32,
    /// Requests per datagram (default 512; each is ~170 bytes).
    pub batch: usize,
    /// Index of the first flow (to add to a table filled before).
    pub start: u64,
    /// Mark for every flow.
    pub mark: Option<u32>,
    /// Zone for every flow.
    pub zone: Option<u16>,
}

impl FillOptions {
    /// `count` flows of the default mix.
    pub fn new(count: u64) -> Self {
        FillOptions {
            count,
            mix: Mix::default(),
            timeout: 86_400,
            batch: 512,
            start: 0,
            mark: None,
            zone: None,
        }
    }
    /// Sets the mix.
    pub fn mix(mut self, mix: Mix) -> Self {
        self.mix = mix;
        self
    }
    /// Sets the timeout in seconds.
    pub fn timeout(mut self, secs: u32) -> Self {
        self.timeout = secs;
        self
    }
    /// Sets the requests per datagram (at least 1).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }
    /// Sets the index of the first flow.
    pub fn start(mut self, i: u64) -> Self {
        self.start = i;
        self
    }
    /// Marks every flow.
    pub fn mark(mut self, mark: u32) -> Self {
        self.mark = Some(mark);
        self
    }
    /// Puts every flow in a zone.
    pub fn zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }
}

/// What a fill did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FillReport {
    /// Flows the kernel accepted.
    pub created: u64,
    /// Requests the kernel refused.
    pub failed: u64,
    /// Refusals by errno (`EEXIST` for a flow already there, `ENOMEM`
    /// when the table is full: raise `nf_conntrack_max`).
    pub errors: BTreeMap<i32, u64>,
    /// Datagrams sent.
    pub datagrams: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Fills the table with `opts.count` synthetic flows ([`synthetic_flow`]).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use conntrack_core::host::ConntrackMaxGuard;
/// use conntrack_netlink::fill::{fill, FillOptions};
/// use conntrack_netlink::{Conntrack, Netns};
/// let _max = ConntrackMaxGuard::at_least(2_000_000)?; // restored on drop
/// let mut ct = Conntrack::open_in(&Netns::named("ck-fill"))?; // `ip netns add ck-fill` first
/// let r = fill(&mut ct, &FillOptions::new(1_000_000))?;
/// assert_eq!(r.created, 1_000_000);
/// # Ok(()) }
/// ```
pub fn fill<T: Transport>(ct: &mut Conntrack<T>, opts: &FillOptions) -> Result<FillReport> {
    fill_with_progress(ct, opts, |_| {})
}

/// [`fill`], calling `progress(done)` after every batch.
pub fn fill_with_progress<T: Transport>(
    ct: &mut Conntrack<T>,
    opts: &FillOptions,
    progress: impl FnMut(u64),
) -> Result<FillReport> {
    let flows = (0..opts.count).map(|i| {
        let idx = opts.start + i;
        let mut f = synthetic_flow(opts.mix.kind_of(idx), idx, opts.timeout);
        f.mark = opts.mark;
        f.zone = opts.zone;
        f
    });
    create_in_batches(ct, flows, opts.batch, progress)
}

/// Creates `flows` through batched ctnetlink creates (`batch` per
/// datagram), as [`fill`] does with synthetic ones: for tables of flows a
/// caller shapes itself (the incident lab fills a router with ASSURED
/// ESTABLISHED entries). Refusals are counted by errno, not returned.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use conntrack_netlink::fill::{fill_flows, synthetic_flow, FlowKind};
/// use conntrack_netlink::{Conntrack, Netns};
/// let mut ct = Conntrack::open_in(&Netns::named("ck-fill"))?;
/// let flows = (0..1000).map(|i| synthetic_flow(FlowKind::Udp, i, 600));
/// let r = fill_flows(&mut ct, flows, 256)?;
/// assert_eq!(r.created + r.failed, 1000);
/// # Ok(()) }
/// ```
pub fn fill_flows<T: Transport>(
    ct: &mut Conntrack<T>,
    flows: impl IntoIterator<Item = Flow>,
    batch: usize,
) -> Result<FillReport> {
    create_in_batches(ct, flows, batch, |_| {})
}

/// Sends creates for `flows`, `batch` per datagram (at least one), the
/// last of each with `NLM_F_ACK`; `progress(done)` after every datagram.
fn create_in_batches<T: Transport>(
    ct: &mut Conntrack<T>,
    flows: impl IntoIterator<Item = Flow>,
    batch: usize,
    mut progress: impl FnMut(u64),
) -> Result<FillReport> {
    let t0 = Instant::now();
    let batch = batch.max(1);
    let mut report = FillReport::default();
    let mut buf = Vec::with_capacity(batch * 200);
    let mut flows = flows.into_iter().peekable();
    while flows.peek().is_some() {
        buf.clear();
        let mut n = 0u64;
        let mut last_seq = 0;
        while n < batch as u64 {
            let Some(f) = flows.next() else { break };
            last_seq = ct.next_seq();
            let mut fl = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
            if n + 1 == batch as u64 || flows.peek().is_none() {
                fl |= NLM_F_ACK;
            }
            request::write_create(&mut buf, &f, last_seq, fl)?;
            n += 1;
        }
        let mut failed = 0u64;
        ct.send_batch(Op::Fill, &buf, last_seq, &mut |_, errno| {
            failed += 1;
            *report.errors.entry(errno).or_insert(0) += 1;
        })?;
        report.datagrams += 1;
        report.failed += failed;
        report.created += n - failed;
        progress(report.created + report.failed);
    }
    report.elapsed = t0.elapsed();
    Ok(report)
}

impl From<MixError> for Error {
    fn from(_: MixError) -> Self {
        Error::InvalidRequest("bad flow mix")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::tests::Script;
    use crate::support;
    use std::collections::HashSet;

    #[test]
    fn synthetic_flows_are_unique_and_valid() {
        let mix: Mix = "tcp=1,udp=1,icmp=1,tcp6=1,udp6=1,icmp6=1".parse().unwrap();
        let mut seen = HashSet::new();
        for i in 0..30_000 {
            let f = synthetic_flow(mix.kind_of(i), i, 60);
            assert_eq!(f.orig.family(), f.reply.family());
            assert_eq!(f.orig.src, f.reply.dst);
            assert!(seen.insert((f.orig, f.zone)), "duplicate at {i}");
        }
    }

    #[test]
    fn tcp_states_follow_the_weights() {
        let mix = Mix::default();
        let mut per = BTreeMap::new();
        let mut tcp = 0;
        for i in 0..100_000 {
            if mix.kind_of(i) == FlowKind::Tcp {
                tcp += 1;
                let f = synthetic_flow(FlowKind::Tcp, i, 1);
                *per.entry(f.tcp_state().unwrap()).or_insert(0u32) += 1;
            }
        }
        for (state, w) in TCP_STATES {
            let share = f64::from(per[&state]) / f64::from(tcp);
            assert!(
                (share - f64::from(w) / 100.0).abs() < 0.01,
                "{state}: {share}"
            );
        }
    }

    #[test]
    fn batches_and_errors() {
        // Two batches of 3; the first has one EEXIST then the ack. Script
        // starts at seq 100: batch 1 uses 101..=103, batch 2 104..=106.
        let e = support::error(102, -libc::EEXIST, None);
        let ack = support::error(103, 0, None);
        let ack2 = support::error(106, 0, None);
        let t = Script::new(vec![vec![[e, ack].concat()], vec![ack2]]);
        let mut ct = Conntrack::from_transport(t);
        let r = fill(&mut ct, &FillOptions::new(6).batch(3)).unwrap();
        assert_eq!(r.created, 5);
        assert_eq!(r.failed, 1);
        assert_eq!(r.errors.get(&libc::EEXIST), Some(&1));
        assert_eq!(r.datagrams, 2);
    }

    #[test]
    fn eperm_stops_the_fill() {
        let t = Script::new(vec![vec![support::error(0, -libc::EPERM, None)]]);
        let mut ct = Conntrack::from_transport(t);
        assert!(matches!(
            fill(&mut ct, &FillOptions::new(10)),
            Err(Error::PermissionDenied { op: Op::Fill })
        ));
    }

    #[test]
    fn mix_errors() {
        assert_eq!("".parse::<Mix>(), Err(MixError::Empty));
        assert_eq!("tcp=0".parse::<Mix>(), Err(MixError::Empty));
        assert!(matches!("tcp".parse::<Mix>(), Err(MixError::Syntax(_))));
        assert!(matches!(
            "sctp=3".parse::<Mix>(),
            Err(MixError::UnknownKind(_))
        ));
    }
}
