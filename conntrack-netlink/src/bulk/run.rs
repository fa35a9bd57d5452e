//! The pass: choosing between the kernel's filtered flush and the
//! streaming dump, the dump itself with its batches of changes on a second
//! socket, and the [`BulkReport`].

use super::change::{Action, Entry, write_request};
use super::set::FilterSet;
use crate::dump::{self, DumpPolicy, DumpSummary};
use crate::error::{Error, Op, Result};
use crate::filter::Filter;
use crate::request::MessageWriter;
use crate::socket::Transport;
use crate::wire::message::*;
use crate::wire::{self, FlowView};
use conntrack_core::{KernelVersion, L3Family, Tuple};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

/// How a bulk operation is run.
///
/// ```
/// use conntrack_netlink::DumpPolicy;
/// use conntrack_netlink::bulk::BulkOptions;
/// let o = BulkOptions::default().batch(128).policy(DumpPolicy::Accept).kernel_flush(false);
/// assert_eq!(o.batch, 128);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkOptions {
    /// What to do when the dump reports `NLM_F_DUMP_INTR` (default
    /// `Retry(3)`): `Fail` stops sending changes at the flag and returns
    /// [`Error::DumpInterrupted`]; `Retry(n)` finishes the pass and makes
    /// up to `n` more (entries already deleted are gone, the rest is
    /// matched again; counts add up over passes); `Accept` finishes the
    /// pass and sets [`BulkReport::interrupted`]. The changes made before
    /// the flag stand in every case: each named an entry that matched.
    pub policy: DumpPolicy,
    /// Requests per datagram (default 256; a delete is about 90 bytes).
    pub batch: usize,
    /// Use the kernel's filtered flush when one request can express the
    /// set (default true).
    pub kernel_flush: bool,
    /// Let the kernel filter the dump by what every rule shares (family,
    /// protocol, zone, mark, status; default true). The user-space check
    /// stays exact either way.
    pub kernel_prefilter: bool,
    /// How many failed entries [`BulkReport::failures`] keeps (default 32).
    pub keep_failures: usize,
    /// The kernel to plan for; `None` (default) reads
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: Option<KernelVersion>,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            policy: DumpPolicy::default(),
            batch: 256,
            kernel_flush: true,
            kernel_prefilter: true,
            keep_failures: 32,
            kernel: None,
        }
    }
}

impl BulkOptions {
    /// Sets the dump policy.
    pub fn policy(mut self, p: DumpPolicy) -> Self {
        self.policy = p;
        self
    }
    /// Sets the requests per datagram (at least 1).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }
    /// Allows or forbids the kernel's filtered flush.
    pub fn kernel_flush(mut self, on: bool) -> Self {
        self.kernel_flush = on;
        self
    }
    /// Allows or forbids the kernel-side dump filter.
    pub fn kernel_prefilter(mut self, on: bool) -> Self {
        self.kernel_prefilter = on;
        self
    }
    /// Sets how many failed entries the report keeps.
    pub fn keep_failures(mut self, n: usize) -> Self {
        self.keep_failures = n;
        self
    }
    /// Plans for this kernel instead of the running one's release.
    pub fn kernel(mut self, v: KernelVersion) -> Self {
        self.kernel = Some(v);
        self
    }
}

/// Which way a bulk operation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BulkPath {
    /// Nothing to do: the set is empty.
    #[default]
    Nothing,
    /// One `IPCTNL_MSG_CT_DELETE` without a tuple, with the rule as
    /// filter attributes: the kernel walked the table and deleted what
    /// matched. It does not say how many; the report's counts are the
    /// drop of the namespace's entry count across the request
    /// ([`BulkReport::counts_exact`] is false).
    KernelFlush,
    /// One streaming dump (filtered by the kernel where
    /// [`BulkReport::prefilter`] says), each flow matched against the set
    /// in user space, matching entries changed in batches on a second
    /// socket.
    Streaming,
    /// No dump: the caller listed the entries
    /// ([`Conntrack::delete_entries`](crate::Conntrack::delete_entries)),
    /// deleted in batches.
    Listed,
}

impl fmt::Display for BulkPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BulkPath::Nothing => "nothing to do",
            BulkPath::KernelFlush => "kernel filtered flush (one request)",
            BulkPath::Streaming => "streaming dump with batched changes",
            BulkPath::Listed => "listed entries, batched deletes",
        })
    }
}

/// One entry whose change the kernel refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryFailure {
    /// The entry's original tuple.
    pub orig: Tuple,
    /// Its zone.
    pub zone: Option<u16>,
    /// The errno the kernel answered.
    pub errno: i32,
    /// The extended-ack message, when the kernel sent one.
    pub message: Option<String>,
}

impl fmt::Display for EntryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.orig;
        write!(f, "{} src={} dst={}", t.proto, t.src, t.dst)?;
        match t.l4 {
            conntrack_core::L4Tuple::Ports { src, dst } => write!(f, " sport={src} dport={dst}")?,
            conntrack_core::L4Tuple::Icmp { kind, code, id } => {
                write!(f, " type={kind} code={code} id={id}")?
            }
            conntrack_core::L4Tuple::None => {}
        }
        if let Some(z) = self.zone {
            write!(f, " zone {z}")?;
        }
        write!(f, ": {}", std::io::Error::from_raw_os_error(self.errno))?;
        if let Some(m) = &self.message {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

/// What a bulk operation did.
///
/// `matched` = `deleted` (or `updated`) + `vanished` + `failed` once the
/// operation returned (for a count, only `matched` moves).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BulkReport {
    /// The way it went.
    pub path: BulkPath,
    /// Why that way (which condition ruled out the kernel's flush).
    pub why: &'static str,
    /// The kernel dump filter the streaming pass used (conditions every
    /// rule shares), if any.
    pub prefilter: Option<Filter>,
    /// Entries that matched the set (for a flush: see [`BulkPath::KernelFlush`]).
    pub matched: u64,
    /// Entries deleted.
    pub deleted: u64,
    /// Entries updated.
    pub updated: u64,
    /// Entries already gone when their request arrived (`ENOENT`): they
    /// expired, were deleted by someone else, or were replaced by a new
    /// entry with the same tuple.
    pub vanished: u64,
    /// Entries the kernel refused to change, for other reasons.
    pub failed: u64,
    /// The failures by errno.
    pub errors: BTreeMap<i32, u64>,
    /// The first failures ([`BulkOptions::keep_failures`] of them).
    pub failures: Vec<EntryFailure>,
    /// Change requests sent.
    pub requests: u64,
    /// Datagrams of change requests sent.
    pub datagrams: u64,
    /// The dump of the last pass: flows read (after the kernel's filter),
    /// malformed ones, messages, datagrams, bytes, attempts.
    pub dump: DumpSummary,
    /// Flows read over all passes.
    pub seen: u64,
    /// Dump passes made (more than one after `NLM_F_DUMP_INTR` with
    /// [`DumpPolicy::Retry`]).
    pub passes: u32,
    /// Whether an accepted pass was interrupted (`NLM_F_DUMP_INTR` with
    /// [`DumpPolicy::Accept`]): entries may have been missed.
    pub interrupted: bool,
    /// Whether the counts are per entry (false for a kernel flush).
    pub counts_exact: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl fmt::Display for BulkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path, self.why)?;
        if let Some(p) = &self.prefilter {
            write!(f, "; kernel dump filter: {}", describe_filter(p))?;
        }
        let approx = if self.counts_exact { "" } else { "~" };
        write!(
            f,
            "\nmatched {approx}{}, deleted {approx}{}, updated {}, vanished {}, failed {}",
            self.matched, self.deleted, self.updated, self.vanished, self.failed
        )?;
        match self.path {
            BulkPath::Streaming => write!(
                f,
                "\n{} flows read in {} pass(es), {} requests in {} datagrams, {:.2?}",
                self.seen, self.passes, self.requests, self.datagrams, self.elapsed
            )?,
            BulkPath::Listed => write!(
                f,
                "\n{} requests in {} datagrams, {:.2?}",
                self.requests, self.datagrams, self.elapsed
            )?,
            _ => {}
        }
        for (errno, n) in &self.errors {
            write!(f, "\n  {n} x {}", std::io::Error::from_raw_os_error(*errno))?;
        }
        if self.interrupted {
            f.write_str(
                "\nthe dump was interrupted (NLM_F_DUMP_INTR): entries may have been missed",
            )?;
        }
        Ok(())
    }
}

/// A short description of a dump filter's conditions.
fn describe_filter(f: &Filter) -> String {
    let mut parts = Vec::new();
    if f.family != L3Family::UNSPEC {
        parts.push(format!("family {}", f.family));
    }
    if let Some(p) = f.orig.proto {
        parts.push(format!("proto {p}"));
    }
    if let Some(z) = f.zone {
        parts.push(format!("zone {z}"));
    }
    if let Some((v, m)) = f.mark {
        parts.push(format!("mark {v:#x}/{m:#x}"));
    }
    if let Some((v, m)) = f.status {
        parts.push(format!("status {:#x}/{:#x}", v.bits(), m.bits()));
    }
    parts.join(", ")
}

/// What the running kernel's ctnetlink can do in a filtered flush
/// (`IPCTNL_MSG_CT_DELETE` without a tuple), by release. A kernel that
/// does not know an attribute ignores it, and a flush that ignores a
/// condition deletes more than asked, so each condition is used only from
/// the release that honours it (`ctnetlink_flush_conntrack`,
/// `ctnetlink_alloc_filter`, `net/netfilter/nf_conntrack_netlink.c`):
///
/// | condition | since | commit |
/// |---|---|---|
/// | family (with `nfgenmsg.version` 1), mark | 5.2 | 59c08c69c278 "Support L3 protocol-filter on flush" |
/// | status | 5.15 | "ctnetlink: allow to filter dump by status bits" |
/// | zone (not 0, which the kernel reads as "any") | 6.8 | "ctnetlink: support filtering by zone" |
/// | tuple conditions (`CTA_FILTER`) | 6.12 | "ctnetlink: support CTA_FILTER for flush" (before: `EOPNOTSUPP`, and before 5.8 ignored) |
///
/// Older kernels, or distribution kernels that backported a feature,
/// take the streaming pass, which is exact on every kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSupport {
    version: Option<KernelVersion>,
}

impl KernelSupport {
    /// Support of the kernel with this release (`None`: unknown, no
    /// filtered flush).
    pub fn of(version: Option<KernelVersion>) -> Self {
        KernelSupport { version }
    }

    /// Support of the running kernel (`/proc/sys/kernel/osrelease`).
    pub fn running() -> Self {
        let v = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        Self::of(v)
    }

    fn at_least(&self, major: u16, minor: u16) -> bool {
        self.version.is_some_and(|v| v.at_least(major, minor))
    }

    /// Whether a flush with exactly `f`'s conditions deletes exactly what
    /// `f` selects on this kernel; `Err` says why not.
    pub fn can_flush(&self, f: &Filter) -> core::result::Result<(), &'static str> {
        if self.version.is_none() {
            return Err("unknown kernel release: no filtered flush");
        }
        if !self.at_least(5, 2) {
            return Err("kernel older than 5.2: no filtered flush");
        }
        if f.status.is_some() && !self.at_least(5, 15) {
            return Err("a status condition needs a 5.15 kernel to flush");
        }
        if let Some(z) = f.zone {
            if z == 0 {
                return Err("zone 0 means any zone to the kernel's flush filter");
            }
            if !self.at_least(6, 8) {
                return Err("a zone condition needs a 6.8 kernel to flush");
            }
        }
        if (!f.orig.is_empty() || !f.reply.is_empty()) && !self.at_least(6, 12) {
            return Err("tuple conditions need a 6.12 kernel to flush");
        }
        Ok(())
    }
}

/// The flush filter for `set`, or why the streaming pass runs instead.
pub(crate) fn flush_plan(
    set: &FilterSet,
    action: &Action,
    opts: &BulkOptions,
) -> core::result::Result<Filter, &'static str> {
    if *action != Action::Delete {
        return Err(match action {
            Action::Count => "a count: the kernel only flushes",
            _ => "an update: the kernel has no filtered update",
        });
    }
    if !opts.kernel_flush {
        return Err("the kernel's flush was not allowed");
    }
    let [rule] = set.rules() else {
        return Err("more than one rule: one flush request holds one filter");
    };
    let f = rule.kernel_filter()?;
    let support = match opts.kernel {
        Some(v) => KernelSupport::of(Some(v)),
        None => KernelSupport::running(),
    };
    support.can_flush(&f)?;
    Ok(f)
}

/// Sends one request and waits for its acknowledgement.
fn ack_request<T: Transport + ?Sized>(t: &mut T, op: Op, buf: &[u8], seq: u32) -> Result<()> {
    t.send(buf)?;
    loop {
        let data = t.recv(op)?;
        for m in wire::messages(data) {
            let m = m.map_err(|source| Error::Wire { op, source })?;
            if m.seq != seq || !m.is_error() {
                continue;
            }
            return match m.error_code().unwrap_or(0) {
                0 => Ok(()),
                code => Err(Error::from_errno(
                    op,
                    code.saturating_neg(),
                    m.extack_message().map(Into::into),
                )),
            };
        }
    }
}

/// The namespace's entry count (`IPCTNL_MSG_CT_GET_STATS`).
fn count<T: Transport + ?Sized>(t: &mut T) -> Result<u32> {
    let op = Op::StatsGlobal;
    let seq = t.next_seq();
    let req = crate::request::header_only(
        IPCTNL_MSG_CT_GET_STATS,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        L3Family::UNSPEC,
        0,
    );
    t.send(&req)?;
    let mut entries = None;
    loop {
        let data = t.recv(op)?;
        for m in wire::messages(data) {
            let m = m.map_err(|source| Error::Wire { op, source })?;
            if m.seq != seq {
                continue;
            }
            if m.is_error() {
                return match (m.error_code().unwrap_or(0), entries) {
                    (0, Some(n)) => Ok(n),
                    (0, None) => Err(Error::Incomplete {
                        op,
                        missing: "CTA_STATS_GLOBAL_ENTRIES",
                    }),
                    (code, _) => Err(Error::from_errno(
                        op,
                        code.saturating_neg(),
                        m.extack_message().map(Into::into),
                    )),
                };
            }
            if m.msg_type() == IPCTNL_MSG_CT_GET_STATS {
                let (n, _) = wire::decode_stats_global(m.payload)
                    .map_err(|source| Error::Decode { op, source })?;
                entries = n;
            }
        }
    }
}

/// The kernel's filtered flush of `f`; `Ok(None)` when the kernel refused
/// the filter (`EOPNOTSUPP`, `EINVAL`) and nothing was deleted.
pub(crate) fn kernel_flush<T: Transport + ?Sized>(
    t: &mut T,
    f: &Filter,
) -> Result<Option<(u32, u32)>> {
    let before = count(t)?;
    let seq = t.next_seq();
    let mut buf = Vec::with_capacity(256);
    // `nfgenmsg.version` 1 makes the kernel honour the family (5.2+); a
    // CTA_FILTER makes it do so anyway (6.12+).
    let version = u8::from(f.family != L3Family::UNSPEC);
    let mut w = MessageWriter::begin(
        &mut buf,
        IPCTNL_MSG_CT_DELETE,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        f.family,
        version,
    );
    f.write(&mut w, true);
    w.finish();
    match ack_request(t, Op::Flush, &buf, seq) {
        Ok(()) => {}
        Err(Error::Kernel { errno, .. }) if errno == libc::EOPNOTSUPP || errno == libc::EINVAL => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    }
    let after = count(t)?;
    Ok(Some((before, after)))
}

/// Requests waiting to be sent in one datagram, and what each named.
struct Batch {
    buf: Vec<u8>,
    /// Sequence number, original tuple and zone of each request.
    pending: Vec<(u32, Tuple, Option<u16>)>,
    /// Offset of the last message in `buf` (to set `NLM_F_ACK` on it).
    last: usize,
    cap: usize,
}

impl Batch {
    fn new(cap: usize) -> Self {
        Batch {
            buf: Vec::with_capacity(cap * 128),
            pending: Vec::with_capacity(cap),
            last: 0,
            cap,
        }
    }

    fn add(&mut self, action: &Action, entry: &Entry, seq: u32) -> Result<()> {
        self.last = self.buf.len();
        write_request(&mut self.buf, action, entry, seq, NLM_F_REQUEST)?;
        self.pending.push((seq, entry.orig, entry.zone));
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.pending.len() >= self.cap
    }

    /// Sends the batch and reads the kernel's answers: one error message
    /// per refused request (netlink answers failures without `NLM_F_ACK`)
    /// and the acknowledgement of the last one, which carries `NLM_F_ACK`.
    /// The kernel handles a datagram sent to it inside `sendmsg`, so every
    /// answer is queued when `send` returns and reading them never waits
    /// for the kernel (nor holds up the dump on the other socket).
    fn flush<C: Transport + ?Sized>(
        &mut self,
        c: &mut C,
        action: &Action,
        r: &mut BulkReport,
        keep: usize,
    ) -> Result<()> {
        let Some(&(first_seq, ..)) = self.pending.first() else {
            return Ok(());
        };
        let last_seq = self.pending[self.pending.len() - 1].0;
        let flags_at = self.last + 6;
        let fl = u16::from_ne_bytes([self.buf[flags_at], self.buf[flags_at + 1]]) | NLM_F_ACK;
        self.buf[flags_at..flags_at + 2].copy_from_slice(&fl.to_ne_bytes());
        let op = if *action == Action::Delete {
            Op::Delete
        } else {
            Op::Update
        };
        c.send(&self.buf)?;
        r.datagrams += 1;
        r.requests += self.pending.len() as u64;
        let (mut gone, mut bad) = (0u64, 0u64);
        'read: loop {
            let data = c.recv(op)?;
            for m in wire::messages(data) {
                let m = m.map_err(|source| Error::Wire { op, source })?;
                if !m.is_error() || m.seq < first_seq || m.seq > last_seq {
                    continue;
                }
                let code = m.error_code().unwrap_or(0);
                if code == -libc::EPERM {
                    // nfnetlink refuses the whole datagram, answering once.
                    return Err(Error::PermissionDenied { op });
                }
                if code == -libc::ENOENT {
                    gone += 1;
                } else if code != 0 {
                    let errno = code.saturating_neg();
                    bad += 1;
                    *r.errors.entry(errno).or_insert(0) += 1;
                    if r.failures.len() < keep {
                        let i = (m.seq - first_seq) as usize;
                        if let Some(&(_, orig, zone)) = self.pending.get(i) {
                            r.failures.push(EntryFailure {
                                orig,
                                zone,
                                errno,
                                message: m.extack_message().map(Into::into),
                            });
                        }
                    }
                }
                if m.seq == last_seq {
                    break 'read;
                }
            }
        }
        let done = self.pending.len() as u64 - gone - bad;
        match action {
            Action::Delete => r.deleted += done,
            _ => r.updated += done,
        }
        r.vanished += gone;
        r.failed += bad;
        self.buf.clear();
        self.pending.clear();
        Ok(())
    }
}

/// Runs the streaming pass(es): dumps on `t` (with `prefilter` as the
/// kernel's filter), matches every flow against `set`, hands each match to
/// `on_match`, and sends `action`'s requests in batches on `c`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn streaming<D: Transport + ?Sized, C: Transport + ?Sized>(
    t: &mut D,
    mut c: Option<&mut C>,
    set: &FilterSet,
    action: &Action,
    opts: &BulkOptions,
    prefilter: Option<&Filter>,
    on_match: &mut dyn FnMut(&FlowView<'_>),
    r: &mut BulkReport,
) -> Result<()> {
    let family = prefilter.map_or(L3Family::UNSPEC, |f| f.family);
    let request = |seq: u32| -> Vec<u8> {
        let fl = NLM_F_REQUEST | NLM_F_DUMP;
        match prefilter {
            Some(f) if !f.is_family_only() => {
                let mut buf = Vec::with_capacity(256);
                let mut w = MessageWriter::begin(&mut buf, IPCTNL_MSG_CT_GET, fl, seq, family, 0);
                f.write(&mut w, true);
                w.finish();
                buf
            }
            _ => crate::request::header_only(IPCTNL_MSG_CT_GET, fl, seq, family, 0),
        }
    };
    let mut request = request;
    let stop_on_intr = opts.policy == DumpPolicy::Fail;
    let mut batch = Batch::new(opts.batch.max(1));
    loop {
        r.passes += 1;
        let mut s = DumpSummary {
            attempts: r.passes,
            ..Default::default()
        };
        let mut fatal: Option<Error> = None;
        let pass = dump::dump_pass(t, Op::Dump, &mut request, stop_on_intr, &mut |m| {
            if fatal.is_some() || !m.is_ct_flow() {
                return;
            }
            let v = match FlowView::from_message(m) {
                Ok(v) => v,
                Err(e) => {
                    s.malformed += 1;
                    s.first_malformed.get_or_insert(e);
                    return;
                }
            };
            s.flows += 1;
            if !set.matches(&v) {
                s.filtered_out += 1;
                return;
            }
            r.matched += 1;
            on_match(&v);
            let Some(c) = c.as_deref_mut() else { return };
            let step = batch
                .add(action, &Entry::of(&v), c.next_seq())
                .and_then(|()| {
                    if batch.is_full() {
                        batch.flush(c, action, r, opts.keep_failures)
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = step {
                fatal = Some(e);
            }
        })?;
        if let Some(e) = fatal {
            return Err(e);
        }
        if let Some(c) = c.as_deref_mut() {
            batch.flush(c, action, r, opts.keep_failures)?;
        }
        s.messages = pass.messages;
        s.datagrams = pass.datagrams;
        s.bytes = pass.bytes;
        s.kernel_filtered = pass.kernel_filtered;
        r.seen += s.flows;
        r.dump = s;
        if !pass.interrupted {
            return Ok(());
        }
        match opts.policy {
            DumpPolicy::Accept => {
                r.interrupted = true;
                r.dump.interrupted = true;
                return Ok(());
            }
            DumpPolicy::Retry(n) if r.passes <= n => continue,
            _ => {
                return Err(Error::DumpInterrupted {
                    op: Op::Dump,
                    attempts: r.passes,
                });
            }
        }
    }
}

/// Deletes listed entries in batches on `t` (no dump).
pub(crate) fn delete_listed<T: Transport + ?Sized>(
    t: &mut T,
    entries: &mut dyn Iterator<Item = (Tuple, Option<u16>)>,
    opts: &BulkOptions,
) -> Result<BulkReport> {
    let t0 = Instant::now();
    let mut r = BulkReport {
        path: BulkPath::Listed,
        why: "the caller listed the entries",
        counts_exact: true,
        ..Default::default()
    };
    let mut batch = Batch::new(opts.batch.max(1));
    for (orig, zone) in entries {
        let e = Entry {
            orig,
            zone,
            id: None,
        };
        r.matched += 1;
        batch.add(&Action::Delete, &e, t.next_seq())?;
        if batch.is_full() {
            batch.flush(t, &Action::Delete, &mut r, opts.keep_failures)?;
        }
    }
    batch.flush(t, &Action::Delete, &mut r, opts.keep_failures)?;
    r.elapsed = t0.elapsed();
    Ok(r)
}

/// The whole operation on a dump transport and, for changes, a second
/// transport on the same table.
pub(crate) fn run<D: Transport + ?Sized, C: Transport + ?Sized>(
    t: &mut D,
    c: Option<&mut C>,
    set: &FilterSet,
    action: &Action,
    opts: &BulkOptions,
    on_match: &mut dyn FnMut(&FlowView<'_>),
) -> Result<BulkReport> {
    let t0 = Instant::now();
    let mut r = BulkReport {
        counts_exact: true,
        ..Default::default()
    };
    if let Action::Update(ch) = action
        && ch.is_empty()
    {
        return Err(Error::InvalidRequest("an update that changes nothing"));
    }
    if set.is_empty() {
        r.why = "the set has no rule";
        r.elapsed = t0.elapsed();
        return Ok(r);
    }
    match flush_plan(set, action, opts) {
        Ok(f) => match kernel_flush(t, &f)? {
            Some((before, after)) => {
                r.path = BulkPath::KernelFlush;
                r.why = "one rule the kernel applies exactly";
                r.counts_exact = false;
                r.matched = u64::from(before.saturating_sub(after));
                r.deleted = r.matched;
                r.elapsed = t0.elapsed();
                return Ok(r);
            }
            None => r.why = "the kernel refused the filtered flush",
        },
        Err(why) => r.why = why,
    }
    r.path = BulkPath::Streaming;
    r.prefilter = set.common().filter(|_| opts.kernel_prefilter);
    if c.is_none() && *action != Action::Count {
        return Err(Error::InvalidRequest("changes need a second socket"));
    }
    streaming(
        t,
        c,
        set,
        action,
        opts,
        r.prefilter.clone().as_ref(),
        on_match,
        &mut r,
    )?;
    r.elapsed = t0.elapsed();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::{Change, Rule};
    use crate::dump::tests::Script;
    use crate::support;
    use crate::wire::message::ct_type;
    use conntrack_core::Flow;

    /// A dump item for `f` (sequence patched in by the script).
    fn item(f: &Flow, extra: u16) -> Vec<u8> {
        let mut b = Vec::new();
        support::push(
            &mut b,
            ct_type(IPCTNL_MSG_CT_NEW),
            NLM_F_MULTI | extra,
            0,
            Some(f),
        );
        b
    }

    /// UDP flow number `n`: 10.0.0.`n`:1000 -> 10.96.0.10:53, id `n`.
    fn udp(n: u8) -> Flow {
        let mut f = support::udp(&format!("10.0.0.{n}"), 1000, "10.96.0.10", 53);
        f.id = Some(u32::from(n));
        f
    }

    fn dump_of(flows: &[Flow], extra: u16) -> Vec<Vec<u8>> {
        let mut d: Vec<u8> = flows.iter().flat_map(|f| item(f, extra)).collect();
        d.extend(support::done(0, NLM_F_MULTI | extra, 0));
        vec![d]
    }

    fn set(rules: &str) -> FilterSet {
        FilterSet::parse(rules).unwrap()
    }

    /// The script's first sequence number is 101 (see `Script`).
    const FIRST: u32 = 101;

    #[test]
    fn delete_counts_deleted_vanished_and_failed() {
        let flows: Vec<Flow> = (1..=5).map(udp).collect();
        let mut t = Script::new(vec![dump_of(&flows, 0)]);
        // Flows 2..=5 match (not 10.0.0.1). In the batch of four: the
        // second is gone (ENOENT), the third refused (EBUSY), the last
        // acknowledged.
        let replies = [
            support::error(FIRST + 1, -libc::ENOENT, None),
            support::error(FIRST + 2, -libc::EBUSY, Some("offloaded")),
            support::error(FIRST + 3, 0, None),
        ]
        .concat();
        let mut c = Script::new(vec![vec![replies]]);
        let s = set(
            "proto=udp orig-dst=10.96.0.10 orig-dport=53 orig-src=10.0.0.0/29\nproto=udp orig-src=10.0.0.1 orig-dport=9",
        );
        let s = {
            let mut s = s;
            // 10.0.0.0/29 holds .1 too: take it out with a predicate.
            let r = s.rules()[0]
                .clone()
                .predicate(|f| f.orig().src != support::ip("10.0.0.1"));
            let mut n = FilterSet::new();
            n.push(r);
            n.push(s.rules()[1].clone());
            s = n;
            s
        };
        let mut seen = Vec::new();
        let opts = BulkOptions::default().kernel(KernelVersion::new(6, 18, 0));
        let r = run(&mut t, Some(&mut c), &s, &Action::Delete, &opts, &mut |f| {
            seen.push(f.orig().src)
        })
        .unwrap();
        assert_eq!(r.path, BulkPath::Streaming);
        assert_eq!((r.matched, r.deleted, r.vanished, r.failed), (4, 2, 1, 1));
        assert_eq!(seen.len(), 4);
        assert_eq!(r.errors.get(&libc::EBUSY), Some(&1));
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures[0].orig.src, support::ip("10.0.0.4"));
        assert_eq!(r.failures[0].message.as_deref(), Some("offloaded"));
        assert!(r.failures[0].to_string().contains("src=10.0.0.4"));
        assert_eq!((r.requests, r.datagrams, r.seen, r.passes), (4, 1, 5, 1));
        // One datagram of four deletes, each with tuple, zone-less, id;
        // NLM_F_ACK only on the last.
        assert_eq!(c.sent.len(), 1);
        let msgs: Vec<_> = wire::messages(&c.sent[0]).map(|m| m.unwrap()).collect();
        assert_eq!(msgs.len(), 4);
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.msg_type(), IPCTNL_MSG_CT_DELETE);
            assert_eq!(m.seq, FIRST + i as u32);
            assert_eq!(m.flags & NLM_F_ACK != 0, i == 3);
            let v = FlowView::parse(m.payload).unwrap_err();
            // Only the original tuple: no reply tuple, so not a flow.
            assert_eq!(v.kind, crate::wire::ErrorKind::Missing);
        }
        // The prefilter is what all rules share: UDP over IPv4.
        let p = r.prefilter.unwrap();
        assert_eq!(
            (p.family, p.orig.proto),
            (L3Family::INET, Some(conntrack_core::L4Proto::UDP))
        );
        // The dump request carried it (CTA_FILTER needs a family).
        assert!(t.sent[0].len() > 20);
    }

    #[test]
    fn batches_split_and_update_sends_the_change() {
        let flows: Vec<Flow> = (1..=5).map(udp).collect();
        let mut t = Script::new(vec![dump_of(&flows, 0)]);
        let mut c = Script::new(vec![
            vec![support::error(FIRST + 1, 0, None)],
            vec![support::error(FIRST + 3, 0, None)],
            vec![support::error(FIRST + 4, 0, None)],
        ]);
        let ch = Change::new().mark_masked(0x10, 0xf0).timeout(30);
        let opts = BulkOptions::default().batch(2);
        let r = run(
            &mut t,
            Some(&mut c),
            &set("proto=udp"),
            &Action::Update(ch),
            &opts,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!((r.matched, r.updated, r.deleted, r.datagrams), (5, 5, 0, 3));
        assert_eq!(c.sent.len(), 3);
        let m = wire::messages(&c.sent[0]).next().unwrap().unwrap();
        assert_eq!(m.msg_type(), IPCTNL_MSG_CT_NEW);
        assert_eq!(m.flags & NLM_F_CREATE, 0);
        let attrs: Vec<u16> = crate::wire::nla::Attrs::new(&m.payload[4..], 0)
            .map(|a| a.unwrap().ty())
            .collect();
        use crate::wire::attr::*;
        assert_eq!(
            attrs,
            [CTA_TUPLE_ORIG.0, CTA_TIMEOUT.0, CTA_MARK.0, CTA_MARK_MASK.0]
        );
    }

    #[test]
    fn count_sends_nothing_and_needs_no_second_socket() {
        let flows: Vec<Flow> = (1..=3).map(udp).collect();
        let mut t = Script::new(vec![dump_of(&flows, 0)]);
        let r = run::<_, Script>(
            &mut t,
            None,
            &set("orig-src=10.0.0.2"),
            &Action::Count,
            &BulkOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!((r.matched, r.deleted, r.requests), (1, 0, 0));
        assert_eq!(r.why, "a count: the kernel only flushes");
    }

    #[test]
    fn permission_denied_is_fatal_and_the_dump_is_drained() {
        let flows: Vec<Flow> = (1..=3).map(udp).collect();
        let mut t = Script::new(vec![dump_of(&flows, 0)]);
        let mut c = Script::new(vec![vec![support::error(FIRST, -libc::EPERM, None)]]);
        let e = run(
            &mut t,
            Some(&mut c),
            &set("proto=udp"),
            &Action::Delete,
            &BulkOptions::default().batch(1),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(e, Error::PermissionDenied { op: Op::Delete }));
        assert!(t.current.is_empty());
    }

    #[test]
    fn interruption_follows_the_policy() {
        let flows: Vec<Flow> = (1..=2).map(udp).collect();
        let intr = || dump_of(&flows, NLM_F_DUMP_INTR);
        let ack = |seq| vec![support::error(seq, 0, None)];
        // Accept: one pass, reported.
        let mut t = Script::new(vec![intr()]);
        let mut c = Script::new(vec![ack(FIRST + 1)]);
        let opts = BulkOptions::default().policy(DumpPolicy::Accept);
        let r = run(
            &mut t,
            Some(&mut c),
            &set("proto=udp"),
            &Action::Delete,
            &opts,
            &mut |_| {},
        )
        .unwrap();
        assert!(r.interrupted && r.passes == 1 && r.deleted == 2);
        // Retry(1): a second pass; the entries deleted by the first are
        // gone from it.
        let mut t = Script::new(vec![intr(), dump_of(&[], 0)]);
        let mut c = Script::new(vec![ack(FIRST + 1)]);
        let opts = BulkOptions::default().policy(DumpPolicy::Retry(1));
        let r = run(
            &mut t,
            Some(&mut c),
            &set("proto=udp"),
            &Action::Delete,
            &opts,
            &mut |_| {},
        )
        .unwrap();
        assert!(!r.interrupted && r.passes == 2 && r.deleted == 2 && r.seen == 2);
        // Fail: the flag stops the changes (here on the first message,
        // which carries it) and the pass fails.
        let mut t = Script::new(vec![intr()]);
        let mut c = Script::new(vec![]);
        let opts = BulkOptions::default().policy(DumpPolicy::Fail);
        let e = run(
            &mut t,
            Some(&mut c),
            &set("proto=udp"),
            &Action::Delete,
            &opts,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(e, Error::DumpInterrupted { attempts: 1, .. }));
        assert!(c.sent.is_empty());
    }

    #[test]
    fn flush_plan_by_kernel() {
        let k = |maj, min| BulkOptions::default().kernel(KernelVersion::new(maj, min, 0));
        let one = |r: &str| set(r);
        let del = &Action::Delete;
        let tuple = one("proto=udp orig-dst=10.96.0.10 orig-dport=53 reply-src=10.244.1.7");
        assert!(flush_plan(&tuple, del, &k(6, 12)).is_ok());
        assert!(flush_plan(&tuple, del, &k(6, 11)).is_err());
        assert!(flush_plan(&tuple, del, &k(6, 18).kernel_flush(false)).is_err());
        assert!(flush_plan(&tuple, &Action::Count, &k(6, 18)).is_err());
        assert!(flush_plan(&tuple, &Action::Update(Change::new().mark(1)), &k(6, 18)).is_err());
        // Two rules, a network, an IPv6 address, ports without a protocol,
        // zone 0: never.
        for s in [
            "proto=udp orig-dst=10.96.0.10\nproto=tcp",
            "orig-dst=10.96.0.0/12",
            "proto=udp orig-dst=fd00::1",
            "orig-dport=53",
            "zone=0",
        ] {
            assert!(flush_plan(&one(s), del, &k(6, 18)).is_err(), "{s}");
        }
        // Mark and family: 5.2; status 5.15; zone 6.8.
        assert!(flush_plan(&one("mark=0x10/0xf0"), del, &k(5, 2)).is_ok());
        assert!(flush_plan(&one("mark=0x10/0xf0"), del, &k(5, 1)).is_err());
        assert!(flush_plan(&one("status=ASSURED"), del, &k(5, 14)).is_err());
        assert!(flush_plan(&one("status=ASSURED"), del, &k(5, 15)).is_ok());
        assert!(flush_plan(&one("zone=3"), del, &k(6, 7)).is_err());
        assert!(flush_plan(&one("zone=3 family=ipv6"), del, &k(6, 8)).is_ok());
        let pred = FilterSet::new().with(Rule::new().mark(1, 1).predicate(|_| true));
        assert!(flush_plan(&pred, del, &k(6, 18)).is_err());
    }

    #[test]
    fn kernel_flush_request_and_counts() {
        let stats = |n: u32| {
            let mut b = Vec::new();
            let m = crate::wire::encode::begin_message(
                &mut b,
                ct_type(IPCTNL_MSG_CT_GET_STATS),
                0,
                0,
                0,
            );
            crate::wire::encode::put_be32(&mut b, crate::wire::attr::CTA_STATS_GLOBAL_ENTRIES.0, n);
            crate::wire::encode::finish_message(&mut b, m);
            [b, support::error(0, 0, None)].concat()
        };
        let mut t = Script::new(vec![
            vec![stats(100)],
            vec![support::error(0, 0, None)],
            vec![stats(60)],
        ]);
        let s = set("proto=udp orig-dst=10.96.0.10 orig-dport=53");
        let opts = BulkOptions::default().kernel(KernelVersion::new(6, 18, 0));
        let r = run::<_, Script>(&mut t, None, &s, &Action::Delete, &opts, &mut |_| {}).unwrap();
        assert_eq!(r.path, BulkPath::KernelFlush);
        assert!(!r.counts_exact);
        assert_eq!((r.matched, r.deleted), (40, 40));
        let m = wire::messages(&t.sent[1]).next().unwrap().unwrap();
        assert_eq!(m.msg_type(), IPCTNL_MSG_CT_DELETE);
        assert_eq!(m.payload[..2], [2, 1]); // AF_INET, version 1
        use crate::wire::attr::*;
        let attrs: Vec<u16> = crate::wire::nla::Attrs::new(&m.payload[4..], 0)
            .map(|a| a.unwrap().ty())
            .collect();
        assert_eq!(attrs, [CTA_FILTER.0, CTA_TUPLE_ORIG.0]);
        // A kernel that refuses the filter: nothing deleted, the streaming
        // pass runs.
        let mut t = Script::new(vec![
            vec![stats(100)],
            vec![support::error(0, -libc::EOPNOTSUPP, None)],
            dump_of(&[udp(1)], 0),
        ]);
        let mut c = Script::new(vec![vec![support::error(FIRST, 0, None)]]);
        let r = run(
            &mut t,
            Some(&mut c),
            &s,
            &Action::Delete,
            &opts,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            (r.path, r.why),
            (BulkPath::Streaming, "the kernel refused the filtered flush")
        );
        assert_eq!(r.deleted, 1);
        assert!(r.counts_exact);
    }
}
