//! [`Conntrack`]: the operations of ctnetlink over one [`Socket`].

use crate::dump::{self, DumpPolicy, DumpSummary};
use crate::error::{Error, Op, Result};
use crate::filter::Filter;
use crate::netns::Netns;
use crate::request::{self, MessageWriter, Update};
use crate::socket::{Socket, SocketConfig, Transport};
use crate::wire::message::*;
use crate::wire::{self, FlowView, Message};
use conntrack_core::{CpuStats, Flow, L3Family, Stats, Tuple};

/// Which table a dump reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DumpKind {
    /// The conntrack table (`IPCTNL_MSG_CT_GET`).
    Table,
    /// The table, zeroing each entry's counters as it is read
    /// (`IPCTNL_MSG_CT_GET_CTRZERO`).
    ZeroCounters,
    /// Entries being destroyed (`IPCTNL_MSG_CT_GET_DYING`; empty unless
    /// event delivery is pending).
    Dying,
    /// Entries not yet confirmed (`IPCTNL_MSG_CT_GET_UNCONFIRMED`; empty
    /// on 6.x kernels, which no longer keep that list).
    Unconfirmed,
}

impl DumpKind {
    fn msg(self) -> u8 {
        match self {
            DumpKind::Table => IPCTNL_MSG_CT_GET,
            DumpKind::ZeroCounters => IPCTNL_MSG_CT_GET_CTRZERO,
            DumpKind::Dying => IPCTNL_MSG_CT_GET_DYING,
            DumpKind::Unconfirmed => IPCTNL_MSG_CT_GET_UNCONFIRMED,
        }
    }
    fn op(self) -> Op {
        match self {
            DumpKind::Table => Op::Dump,
            DumpKind::ZeroCounters => Op::DumpZero,
            DumpKind::Dying => Op::DumpDying,
            DumpKind::Unconfirmed => Op::DumpUnconfirmed,
        }
    }
}

/// A dump to run: which table, which family, which filter, and what to do
/// when it is interrupted.
///
/// ```
/// use conntrack_core::L3Family;
/// use conntrack_netlink::{DumpPolicy, DumpRequest, Filter};
/// let all = DumpRequest::table(L3Family::UNSPEC);
/// let marked = DumpRequest::filtered(Filter::new(L3Family::INET).mark(1, 1))
///     .policy(DumpPolicy::Accept);
/// assert_eq!(marked.family(), L3Family::INET);
/// # let _ = all;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpRequest {
    kind: DumpKind,
    family: L3Family,
    filter: Option<Filter>,
    policy: DumpPolicy,
}

impl DumpRequest {
    /// The whole table of one family (`L3Family::UNSPEC`: IPv4 and IPv6).
    pub fn table(family: L3Family) -> Self {
        DumpRequest {
            kind: DumpKind::Table,
            family,
            filter: None,
            policy: DumpPolicy::default(),
        }
    }

    /// The table, filtered (by the kernel where it can, see [`Filter`]).
    pub fn filtered(filter: Filter) -> Self {
        DumpRequest {
            kind: DumpKind::Table,
            family: filter.family,
            filter: Some(filter),
            policy: DumpPolicy::default(),
        }
    }

    /// Another table of one family.
    pub fn of(kind: DumpKind, family: L3Family) -> Self {
        DumpRequest {
            kind,
            family,
            filter: None,
            policy: DumpPolicy::default(),
        }
    }

    /// What to do on `NLM_F_DUMP_INTR` (default `Retry(3)`).
    pub fn policy(mut self, policy: DumpPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The family dumped.
    pub fn family(&self) -> L3Family {
        self.family
    }

    fn build(&self, seq: u32) -> Vec<u8> {
        let fl = NLM_F_REQUEST | NLM_F_DUMP;
        match &self.filter {
            Some(f) if !f.is_family_only() => {
                let mut buf = Vec::with_capacity(256);
                let mut w =
                    MessageWriter::begin(&mut buf, self.kind.msg(), fl, seq, self.family, 0);
                f.write(&mut w, true);
                w.finish();
                buf
            }
            _ => request::header_only(self.kind.msg(), fl, seq, self.family, 0),
        }
    }
}

/// Runs the dump `req` over `t`, folding its flows (see
/// [`Conntrack::fold`]); the filter is checked first.
fn fold_on<T: Transport + ?Sized, A>(
    t: &mut T,
    req: &DumpRequest,
    init: impl FnMut() -> A,
    f: impl FnMut(&mut A, &FlowView<'_>),
) -> Result<(A, DumpSummary)> {
    if let Some(fl) = &req.filter {
        fl.check()?;
    }
    dump::fold_flows(
        t,
        req.kind.op(),
        &mut |seq| req.build(seq),
        req.policy,
        req.filter.as_ref(),
        init,
        f,
    )
}

/// A ctnetlink connection to one network namespace's conntrack table.
///
/// Every operation needs `CAP_NET_ADMIN` in that namespace (the kernel
/// answers `EPERM` otherwise, [`Error::PermissionDenied`]).
///
/// ```no_run
/// # fn main() -> Result<(), conntrack_netlink::Error> {
/// use conntrack_core::{FlowLike, L3Family};
/// use conntrack_netlink::{Conntrack, DumpRequest};
/// use std::collections::BTreeMap;
///
/// let mut ct = Conntrack::open()?;
/// // Count flows per state without keeping any flow.
/// let (per_state, summary) = ct.fold(
///     &DumpRequest::table(L3Family::UNSPEC),
///     BTreeMap::new,
///     |m, f| *m.entry(f.flow_state().to_string()).or_insert(0u64) += 1,
/// )?;
/// println!("{per_state:?} from {} messages", summary.messages);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Conntrack<T = Socket> {
    t: T,
}

impl Conntrack<Socket> {
    /// Opens a connection in the current network namespace.
    pub fn open() -> Result<Self> {
        Self::with_config(&SocketConfig::default())
    }

    /// Opens a connection to another namespace's table
    /// (`/var/run/netns/NAME`, `/proc/PID/ns/net`).
    pub fn open_in(netns: &Netns) -> Result<Self> {
        Self::with_config(&SocketConfig::default().netns(netns.clone()))
    }

    /// Opens a connection as configured.
    pub fn with_config(config: &SocketConfig) -> Result<Self> {
        Ok(Conntrack {
            t: Socket::open(config)?,
        })
    }

    /// The underlying socket.
    pub fn socket(&self) -> &Socket {
        &self.t
    }

    /// [`Conntrack::fold`] with the datagrams received on a second thread,
    /// so that the kernel fills the next datagram (a dump's next part is
    /// produced inside the reader's `recvmsg`) while this thread decodes
    /// the previous one. With a spare CPU core the dump then takes about
    /// as long as receiving alone; the CPU time is the same. At most four
    /// datagrams wait in between, so memory stays bounded.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), conntrack_netlink::Error> {
    /// use conntrack_core::{FlowLike, L3Family};
    /// use conntrack_netlink::{Conntrack, DumpRequest};
    /// let mut ct = Conntrack::open()?;
    /// let (assured, _) = ct.fold_pipelined(&DumpRequest::table(L3Family::UNSPEC), || 0u64, |n, f| {
    ///     *n += u64::from(f.status().contains(conntrack_core::Status::ASSURED))
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn fold_pipelined<A>(
        &mut self,
        req: &DumpRequest,
        init: impl FnMut() -> A,
        f: impl FnMut(&mut A, &FlowView<'_>),
    ) -> Result<(A, DumpSummary)> {
        self.t.pipelined(|p| fold_on(p, req, init, f))
    }
}

impl<T: Transport> Conntrack<T> {
    /// Wraps any transport (for tests or another socket implementation).
    pub fn from_transport(t: T) -> Self {
        Conntrack { t }
    }

    /// Streams a dump: each flow (after the request's filter) is folded
    /// into an accumulator made by `init`, which is made afresh if the
    /// dump is retried after `NLM_F_DUMP_INTR`. Memory use is the receive
    /// buffer plus the accumulator. Flows that fail to decode are counted
    /// in [`DumpSummary::malformed`] and skipped.
    pub fn fold<A>(
        &mut self,
        req: &DumpRequest,
        init: impl FnMut() -> A,
        f: impl FnMut(&mut A, &FlowView<'_>),
    ) -> Result<(A, DumpSummary)> {
        fold_on(&mut self.t, req, init, f)
    }

    /// Streams a dump into a callback. With [`DumpPolicy::Retry`] the
    /// callback sees the flows of every attempt; use [`Conntrack::fold`]
    /// when that matters.
    pub fn for_each(
        &mut self,
        req: &DumpRequest,
        mut f: impl FnMut(&FlowView<'_>),
    ) -> Result<DumpSummary> {
        self.fold(req, || (), |_, v| f(v)).map(|(_, s)| s)
    }

    /// Dumps into owned flows.
    pub fn dump(&mut self, req: &DumpRequest) -> Result<(Vec<Flow>, DumpSummary)> {
        self.fold(req, Vec::new, |v, f| v.push(f.to_owned()))
    }

    /// Dumps every flow of a family into owned flows.
    pub fn list(&mut self, family: L3Family) -> Result<Vec<Flow>> {
        self.dump(&DumpRequest::table(family)).map(|(v, _)| v)
    }

    /// The raw dump: every datagram of the reply, as received, to `f`; the
    /// result says how many messages and bytes came and whether the dump
    /// was interrupted. Nothing is decoded beyond the netlink headers.
    pub fn dump_raw(
        &mut self,
        req: &DumpRequest,
        mut f: impl FnMut(&Message<'_>),
    ) -> Result<DumpSummary> {
        let pass = dump::dump_pass(
            &mut self.t,
            req.kind.op(),
            &mut |seq| req.build(seq),
            false,
            &mut |m| f(m),
        )?;
        Ok(DumpSummary {
            messages: pass.messages,
            datagrams: pass.datagrams,
            bytes: pass.bytes,
            interrupted: pass.interrupted,
            kernel_filtered: pass.kernel_filtered,
            attempts: 1,
            ..Default::default()
        })
    }

    /// Sends one request with `NLM_F_ACK` and hands each reply message of
    /// its sequence to `on_msg` until the acknowledgement.
    fn transact(
        &mut self,
        op: Op,
        build: impl FnOnce(&mut Vec<u8>, u32) -> Result<()>,
        mut on_msg: impl FnMut(&Message<'_>) -> Result<()>,
    ) -> Result<()> {
        let seq = self.t.next_seq();
        let mut buf = Vec::with_capacity(256);
        build(&mut buf, seq)?;
        self.t.send(&buf)?;
        loop {
            let data = self.t.recv(op)?;
            for m in wire::messages(data) {
                let m = m.map_err(|source| Error::Wire { op, source })?;
                if m.seq != seq {
                    continue;
                }
                if m.is_error() || m.is_done() {
                    let code = m.error_code().unwrap_or(0);
                    if code == 0 {
                        if m.is_done() {
                            continue;
                        }
                        return Ok(());
                    }
                    return Err(Error::from_errno(
                        op,
                        code.saturating_neg(),
                        m.extack_message().map(Into::into),
                    ));
                }
                on_msg(&m)?;
            }
        }
    }

    /// Gets one flow by its original tuple (and zone). A missing flow is
    /// [`Error::NotFound`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), conntrack_netlink::Error> {
    /// use conntrack_core::{L4Proto, L4Tuple, Tuple};
    /// use conntrack_netlink::{Conntrack, Error};
    /// let t = Tuple::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(),
    ///                    L4Proto::TCP, L4Tuple::Ports { src: 40000, dst: 443 });
    /// match Conntrack::open()?.get(&t, None) {
    ///     Ok(flow) => println!("{:?} {:?}", flow.tcp_state(), flow.timeout),
    ///     Err(Error::NotFound { .. }) => println!("no such flow"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn get(&mut self, tuple: &Tuple, zone: Option<u16>) -> Result<Flow> {
        let mut out = None;
        self.transact(
            Op::Get,
            |b, seq| {
                request::write_by_tuple(
                    b,
                    IPCTNL_MSG_CT_GET,
                    tuple,
                    zone,
                    None,
                    seq,
                    NLM_F_REQUEST | NLM_F_ACK,
                )
            },
            |m| {
                if m.is_ct_flow() {
                    let v = FlowView::from_message(m).map_err(|source| Error::Decode {
                        op: Op::Get,
                        source,
                    })?;
                    out = Some(v.to_owned());
                }
                Ok(())
            },
        )?;
        out.ok_or(Error::NotFound { op: Op::Get })
    }

    /// Creates a flow (`NLM_F_CREATE | NLM_F_EXCL`): both tuples, zone,
    /// status (see [`request::STATUS_MANAGED`]), timeout (600 s when
    /// unset), mark, labels, TCP/SCTP state. An existing flow is
    /// [`Error::Exists`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), conntrack_netlink::Error> {
    /// use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
    /// use conntrack_netlink::Conntrack;
    /// let ip = |s: &str| s.parse().unwrap();
    /// let o = Tuple::new(ip("10.0.0.1"), ip("10.0.0.2"), L4Proto::UDP, L4Tuple::Ports { src: 5000, dst: 53 });
    /// let r = Tuple::new(ip("10.0.0.2"), ip("10.0.0.1"), L4Proto::UDP, L4Tuple::Ports { src: 53, dst: 5000 });
    /// let mut flow = Flow::new(o, r, Status::SEEN_REPLY);
    /// flow.timeout = Some(30);
    /// flow.mark = Some(7);
    /// Conntrack::open()?.create(&flow)?;
    /// # Ok(()) }
    /// ```
    pub fn create(&mut self, flow: &Flow) -> Result<()> {
        self.transact(
            Op::Create,
            |b, seq| {
                request::write_create(
                    b,
                    flow,
                    seq,
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                )
            },
            |_| Ok(()),
        )
    }

    /// Changes fields of an existing flow; a missing flow is
    /// [`Error::NotFound`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), conntrack_netlink::Error> {
    /// # let tuple = conntrack_netlink::fill::synthetic_flow(conntrack_netlink::fill::FlowKind::Tcp, 0, 1).orig;
    /// use conntrack_netlink::{Conntrack, Update};
    /// Conntrack::open()?.update(&Update::new(tuple).mark(0x42).timeout(120))?;
    /// # Ok(()) }
    /// ```
    pub fn update(&mut self, update: &Update) -> Result<()> {
        self.transact(
            Op::Update,
            |b, seq| request::write_update(b, update, seq, NLM_F_REQUEST | NLM_F_ACK),
            |_| Ok(()),
        )
    }

    /// Deletes the flow with this original tuple (and zone); with `id`,
    /// only if its `CTA_ID` still matches. A missing flow is
    /// [`Error::NotFound`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), conntrack_netlink::Error> {
    /// # let tuple = conntrack_netlink::fill::synthetic_flow(conntrack_netlink::fill::FlowKind::Tcp, 0, 1).orig;
    /// use conntrack_netlink::Conntrack;
    /// let mut ct = Conntrack::open()?;
    /// let flow = ct.get(&tuple, None)?;
    /// ct.delete(&flow.orig, flow.zone, flow.id)?; // only that very entry
    /// # Ok(()) }
    /// ```
    pub fn delete(&mut self, tuple: &Tuple, zone: Option<u16>, id: Option<u32>) -> Result<()> {
        self.transact(
            Op::Delete,
            |b, seq| {
                request::write_by_tuple(
                    b,
                    IPCTNL_MSG_CT_DELETE,
                    tuple,
                    zone,
                    id,
                    seq,
                    NLM_F_REQUEST | NLM_F_ACK,
                )
            },
            |_| Ok(()),
        )
    }

    /// Deletes every flow of a family (`L3Family::UNSPEC`: all).
    ///
    /// A family is honoured only with `nfgenmsg.version` 1, which this
    /// sends: Linux 5.2 added family-filtered flushes (59c08c69c278
    /// "netfilter: ctnetlink: Support L3 protocol-filter on flush") and
    /// f8e608982022 made them opt-in through the version field; older
    /// kernels flush every family.
    pub fn flush(&mut self, family: L3Family) -> Result<()> {
        let version = u8::from(family != L3Family::UNSPEC);
        self.transact(
            Op::Flush,
            |b, seq| {
                *b = request::header_only(
                    IPCTNL_MSG_CT_DELETE,
                    NLM_F_REQUEST | NLM_F_ACK,
                    seq,
                    family,
                    version,
                );
                Ok(())
            },
            |_| Ok(()),
        )
    }

    /// Deletes the flows a filter selects and returns how many were
    /// deleted by this call's per-flow deletes (`None` when the kernel
    /// flushed them in one request and did not say how many).
    ///
    /// Family, mark, status and zone filters are flushed by the kernel in
    /// one request; tuple conditions, which the kernel refuses in a flush,
    /// are handled by a filtered dump followed by one delete per flow
    /// (flows that vanished in between are skipped).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), conntrack_netlink::Error> {
    /// use conntrack_core::{L3Family, L4Proto};
    /// use conntrack_netlink::{Conntrack, Filter, TupleFilter};
    /// let mut ct = Conntrack::open()?;
    /// ct.flush_filtered(&Filter::new(L3Family::UNSPEC).mark(0x10, 0xf0))?; // one request
    /// let n = ct.flush_filtered(&Filter::new(L3Family::INET)
    ///     .orig(TupleFilter::new().proto(L4Proto::UDP).dst_port(53)))?; // dump + deletes
    /// println!("{n:?} DNS flows deleted");
    /// # Ok(()) }
    /// ```
    pub fn flush_filtered(&mut self, filter: &Filter) -> Result<Option<u64>> {
        filter.check()?;
        if filter.kernel_flush_ok() {
            let version = u8::from(filter.family != L3Family::UNSPEC);
            self.transact(
                Op::Flush,
                |b, seq| {
                    let mut w = MessageWriter::begin(
                        b,
                        IPCTNL_MSG_CT_DELETE,
                        NLM_F_REQUEST | NLM_F_ACK,
                        seq,
                        filter.family,
                        version,
                    );
                    filter.write(&mut w, false);
                    w.finish();
                    Ok(())
                },
                |_| Ok(()),
            )?;
            return Ok(None);
        }
        let (victims, _) = self.fold(
            &DumpRequest::filtered(filter.clone()).policy(DumpPolicy::Accept),
            Vec::new,
            |v, f| v.push((f.orig(), f.zone(), f.id())),
        )?;
        let mut n = 0;
        for (t, z, id) in victims {
            match self.delete(&t, z, id) {
                Ok(()) => n += 1,
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(n))
    }

    /// Per-CPU statistics (`IPCTNL_MSG_CT_GET_STATS_CPU`), one element per
    /// CPU, with the CPU id from `nfgenmsg.res_id`.
    pub fn stats_cpu(&mut self) -> Result<Vec<CpuStats>> {
        let mut cpus = Vec::new();
        let mut first_err = None;
        dump::dump_pass(
            &mut self.t,
            Op::StatsCpu,
            &mut |seq| {
                request::header_only(
                    IPCTNL_MSG_CT_GET_STATS_CPU,
                    NLM_F_REQUEST | NLM_F_DUMP,
                    seq,
                    L3Family::UNSPEC,
                    0,
                )
            },
            false,
            &mut |m| {
                if m.subsys() != NFNL_SUBSYS_CTNETLINK
                    || m.msg_type() != IPCTNL_MSG_CT_GET_STATS_CPU
                {
                    return;
                }
                match wire::decode_stats_cpu(m.payload) {
                    Ok(s) => cpus.push(s),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            },
        )?;
        if let Some(source) = first_err {
            return Err(Error::Decode {
                op: Op::StatsCpu,
                source,
            });
        }
        Ok(cpus)
    }

    /// The namespace's entry count and `nf_conntrack_max`
    /// (`IPCTNL_MSG_CT_GET_STATS`; the maximum is `None` on kernels that
    /// do not send `CTA_STATS_GLOBAL_MAX_ENTRIES`).
    pub fn stats_global(&mut self) -> Result<(u32, Option<u32>)> {
        let mut out = None;
        self.transact(
            Op::StatsGlobal,
            |b, seq| {
                *b = request::header_only(
                    IPCTNL_MSG_CT_GET_STATS,
                    NLM_F_REQUEST | NLM_F_ACK,
                    seq,
                    L3Family::UNSPEC,
                    0,
                );
                Ok(())
            },
            |m| {
                if m.msg_type() == IPCTNL_MSG_CT_GET_STATS {
                    let g =
                        wire::decode_stats_global(m.payload).map_err(|source| Error::Decode {
                            op: Op::StatsGlobal,
                            source,
                        })?;
                    out = Some(g);
                }
                Ok(())
            },
        )?;
        match out {
            Some((Some(entries), max)) => Ok((entries, max)),
            _ => Err(Error::Incomplete {
                op: Op::StatsGlobal,
                missing: "CTA_STATS_GLOBAL_ENTRIES",
            }),
        }
    }

    /// The number of entries in the namespace (what `conntrack -C` prints).
    pub fn count(&mut self) -> Result<u32> {
        self.stats_global().map(|(n, _)| n)
    }

    /// Per-CPU and global statistics together, as [`Stats`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), conntrack_netlink::Error> {
    /// let stats = conntrack_netlink::Conntrack::open()?.stats()?;
    /// println!("{:?} of {:?} entries, {:?} drops", stats.entries, stats.max_entries, stats.total().drop());
    /// # Ok(()) }
    /// ```
    pub fn stats(&mut self) -> Result<Stats> {
        let cpus = self.stats_cpu()?;
        let (entries, max_entries) = self.stats_global()?;
        let stats = Stats::new(cpus).with_entries(entries);
        Ok(match max_entries {
            Some(max) => stats.with_max_entries(max),
            None => stats,
        })
    }

    /// Sends a batch of already-built requests in one datagram and reads
    /// the kernel's answers back (see [`crate::fill`]). Messages in
    /// `batch` have sequence numbers `first_seq..=last_seq`; only the
    /// last one should carry `NLM_F_ACK`. Returns the failed requests'
    /// errnos via `on_error(seq, errno)`.
    pub(crate) fn send_batch(
        &mut self,
        op: Op,
        batch: &[u8],
        last_seq: u32,
        on_error: &mut dyn FnMut(u32, i32),
    ) -> Result<()> {
        self.t.send(batch)?;
        loop {
            let data = self.t.recv(op)?;
            for m in wire::messages(data) {
                let m = m.map_err(|source| Error::Wire { op, source })?;
                if !m.is_error() {
                    continue;
                }
                let code = m.error_code().unwrap_or(0);
                if code == -libc::EPERM {
                    // nfnetlink refuses the whole datagram and answers once.
                    return Err(Error::PermissionDenied { op });
                }
                if code != 0 {
                    on_error(m.seq, code.saturating_neg());
                }
                if m.seq == last_seq {
                    return Ok(());
                }
            }
        }
    }

    /// A fresh sequence number (for batches built by the caller).
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.t.next_seq()
    }

    /// The transport, for conversations written in other modules
    /// ([`crate::bulk`]).
    pub(crate) fn transport(&mut self) -> &mut T {
        &mut self.t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::tests::{Script, flow_msg};
    use crate::support;

    #[test]
    fn get_maps_enoent() {
        let mut ct = Conntrack::from_transport(Script::new(vec![vec![support::error(
            0,
            -libc::ENOENT,
            None,
        )]]));
        let t = Tuple::new(
            [1, 1, 1, 1].into(),
            [2, 2, 2, 2].into(),
            conntrack_core::L4Proto::UDP,
            conntrack_core::L4Tuple::Ports { src: 1, dst: 2 },
        );
        assert!(matches!(
            ct.get(&t, None),
            Err(Error::NotFound { op: Op::Get })
        ));
    }

    #[test]
    fn get_returns_the_flow() {
        let mut reply = flow_msg(4, 0);
        reply[6..8].copy_from_slice(&0u16.to_ne_bytes()); // not multi
        let mut ct =
            Conntrack::from_transport(Script::new(vec![vec![reply, support::error(0, 0, None)]]));
        let t = Tuple::new(
            [10, 0, 0, 4].into(),
            [10, 0, 0, 254].into(),
            conntrack_core::L4Proto::UDP,
            conntrack_core::L4Tuple::Ports { src: 1000, dst: 53 },
        );
        let f = ct.get(&t, None).unwrap();
        assert_eq!(f.orig, t);
        assert_eq!(f.mark, Some(4));
    }

    #[test]
    fn dump_request_with_filter_carries_attributes() {
        let r = DumpRequest::filtered(Filter::new(L3Family::INET).mark(1, 3));
        let b = r.build(5);
        assert_eq!(b.len(), 20 + 8 + 8);
        let r = DumpRequest::filtered(Filter::new(L3Family::INET));
        assert_eq!(r.build(5).len(), 20);
    }
}
