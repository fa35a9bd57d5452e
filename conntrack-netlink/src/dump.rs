//! Streaming dumps: one reused receive buffer, each flow handed to the
//! caller as a borrowed [`FlowView`], and a [`DumpSummary`] of what was
//! read.
//!
//! A ctnetlink dump is a series of datagrams (at most 32 KiB each on
//! current kernels) of `NLM_F_MULTI` messages ending with `NLMSG_DONE`.
//! The kernel refills the socket as the reader drains it, so the memory a
//! dump needs here is the receive buffer plus whatever the caller keeps,
//! whatever the table size.
//!
//! `NLM_F_DUMP_INTR` marks a dump whose table changed underneath it
//! (`nl_dump_check_consistent`); [`DumpPolicy`] says what to do then. In
//! this crate's live test on Linux 6.18, dumps taken during heavy
//! create/delete churn never carried it (and every entry present for the
//! whole dump was seen exactly once), but the flag is part of the netlink
//! contract and is honoured wherever it appears.

use crate::error::{Error, Op, Result};
use crate::filter::Filter;
use crate::socket::Transport;
use crate::wire::{self, DecodeError, FlowView, Message};

/// What to do when a dump reports `NLM_F_DUMP_INTR`.
///
/// ```
/// use conntrack_core::L3Family;
/// use conntrack_netlink::{DumpPolicy, DumpRequest};
/// assert_eq!(DumpPolicy::default(), DumpPolicy::Retry(3));
/// let req = DumpRequest::table(L3Family::INET).policy(DumpPolicy::Accept);
/// # let _ = req;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DumpPolicy {
    /// Fail with [`Error::DumpInterrupted`].
    Fail,
    /// Dump again, up to this many extra times, then fail. A fold's
    /// accumulator is rebuilt from scratch for every attempt.
    Retry(u32),
    /// Keep the result and set [`DumpSummary::interrupted`].
    Accept,
}

impl Default for DumpPolicy {
    /// `Retry(3)`.
    fn default() -> Self {
        DumpPolicy::Retry(3)
    }
}

/// What a dump read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpSummary {
    /// Flows handed to the caller (after filtering) in the final attempt.
    pub flows: u64,
    /// Flow messages that failed to decode (each skipped; the rest of the
    /// dump kept coming).
    pub malformed: u64,
    /// The first decode failure, if any.
    pub first_malformed: Option<DecodeError>,
    /// Flows the kernel sent that the user-space filter dropped.
    pub filtered_out: u64,
    /// Netlink messages read in the final attempt (including `NLMSG_DONE`).
    pub messages: u64,
    /// Datagrams (`recv` calls) in the final attempt.
    pub datagrams: u64,
    /// Bytes read in the final attempt.
    pub bytes: u64,
    /// Whether the accepted result is inconsistent (`NLM_F_DUMP_INTR` with
    /// [`DumpPolicy::Accept`]).
    pub interrupted: bool,
    /// How many dumps were made (more than 1 after retries).
    pub attempts: u32,
    /// Whether a reply carried `NLM_F_DUMP_FILTERED` (the kernel applied a
    /// filter).
    pub kernel_filtered: bool,
}

/// What a single pass over a dump saw.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    pub messages: u64,
    pub datagrams: u64,
    pub bytes: u64,
    pub interrupted: bool,
    pub kernel_filtered: bool,
}

/// The reading side of one dump, fed datagram by datagram: the rules of
/// the conversation without the I/O, shared by the blocking dump
/// ([`dump_pass`]) and the async one (`event::dump_async`).
#[derive(Debug)]
pub(crate) struct DumpReader {
    op: Op,
    seq: u32,
    stop_on_intr: bool,
    /// What was read so far.
    pub pass: Pass,
    /// Whether `NLMSG_DONE` or `NLMSG_ERROR` of this dump was seen.
    pub ended: bool,
}

impl DumpReader {
    /// Reads the reply to the dump request with sequence number `seq`.
    /// `on_msg` is not called any more once `NLM_F_DUMP_INTR` was seen if
    /// `stop_on_intr`.
    pub(crate) fn new(op: Op, seq: u32, stop_on_intr: bool) -> Self {
        DumpReader {
            op,
            seq,
            stop_on_intr,
            pass: Pass::default(),
            ended: false,
        }
    }

    /// Feeds one received datagram, handing every message of the dump but
    /// the last to `on_msg` (messages of other sequence numbers, late
    /// replies to abandoned requests, are skipped). `Ok(true)` when the
    /// dump ended cleanly; `Err` for the error the kernel ended it with, or
    /// for a bad netlink header ([`DumpReader::ended`] is false then: the
    /// rest of the dump is still to come).
    pub(crate) fn feed(
        &mut self,
        data: &[u8],
        on_msg: &mut dyn FnMut(&Message<'_>),
    ) -> Result<bool> {
        let op = self.op;
        self.pass.datagrams += 1;
        self.pass.bytes += data.len() as u64;
        for m in wire::messages(data) {
            let m = m.map_err(|source| Error::Wire { op, source })?;
            if m.seq != self.seq {
                continue;
            }
            self.pass.messages += 1;
            self.pass.interrupted |= m.is_dump_interrupted();
            self.pass.kernel_filtered |= m.is_dump_filtered();
            if m.is_done() || m.is_error() {
                self.ended = true;
                return match m.error_code().unwrap_or(0) {
                    0 => Ok(true),
                    code => Err(Error::from_errno(
                        op,
                        code.saturating_neg(),
                        m.extack_message().map(Into::into),
                    )),
                };
            }
            if !(self.stop_on_intr && self.pass.interrupted) {
                on_msg(&m);
            }
        }
        Ok(false)
    }
}

/// Sends the dump request `request(seq)` and feeds every message of the
/// reply to `on_msg` until `NLMSG_DONE` (see [`DumpReader`]). After an
/// error the dump is still read to its end, so that the socket is ready
/// for the next request.
pub(crate) fn dump_pass<T: Transport + ?Sized>(
    t: &mut T,
    op: Op,
    request: &mut dyn FnMut(u32) -> Vec<u8>,
    stop_on_intr: bool,
    on_msg: &mut dyn FnMut(&Message<'_>),
) -> Result<Pass> {
    let seq = t.next_seq();
    t.send(&request(seq))?;
    let mut reader = DumpReader::new(op, seq, stop_on_intr);
    loop {
        let data = t.recv(op)?;
        match reader.feed(data, on_msg) {
            Ok(true) => return Ok(reader.pass),
            Ok(false) => {}
            Err(e) => {
                if !reader.ended {
                    drain(t, op, seq);
                }
                return Err(e);
            }
        }
    }
}

/// Reads and discards until the end of the dump with `seq` (best effort,
/// after an error), so that the socket can take the next request.
pub(crate) fn drain<T: Transport + ?Sized>(t: &mut T, op: Op, seq: u32) {
    for _ in 0..1_000_000 {
        let Ok(data) = t.recv(op) else { return };
        for m in wire::messages(data) {
            match m {
                Ok(m) if m.seq == seq && (m.is_done() || m.is_error()) => return,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

/// Runs a flow dump under `policy`, folding each flow that passes
/// `filter` into an accumulator made by `init` (made again for a retry).
pub(crate) fn fold_flows<T: Transport + ?Sized, A>(
    t: &mut T,
    op: Op,
    request: &mut dyn FnMut(u32) -> Vec<u8>,
    policy: DumpPolicy,
    filter: Option<&Filter>,
    mut init: impl FnMut() -> A,
    mut f: impl FnMut(&mut A, &FlowView<'_>),
) -> Result<(A, DumpSummary)> {
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let mut acc = init();
        let mut s = DumpSummary {
            attempts,
            ..Default::default()
        };
        let stop = policy != DumpPolicy::Accept;
        let pass = dump_pass(t, op, request, stop, &mut |m| {
            if !m.is_ct_flow() {
                return;
            }
            match FlowView::from_message(m) {
                Ok(v) => {
                    if filter.is_some_and(|fl| !fl.matches(&v)) {
                        s.filtered_out += 1;
                    } else {
                        s.flows += 1;
                        f(&mut acc, &v);
                    }
                }
                Err(e) => {
                    s.malformed += 1;
                    if s.first_malformed.is_none() {
                        s.first_malformed = Some(e);
                    }
                }
            }
        })?;
        s.messages = pass.messages;
        s.datagrams = pass.datagrams;
        s.bytes = pass.bytes;
        s.kernel_filtered = pass.kernel_filtered;
        if !pass.interrupted {
            return Ok((acc, s));
        }
        match policy {
            DumpPolicy::Accept => {
                s.interrupted = true;
                return Ok((acc, s));
            }
            DumpPolicy::Retry(n) if attempts <= n => continue,
            _ => return Err(Error::DumpInterrupted { op, attempts }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::support;
    use crate::wire::message::*;
    use conntrack_core::L3Family;
    use std::collections::VecDeque;

    /// A transport that plays back scripted datagrams, one script per
    /// request, with the request's sequence number patched in.
    pub(crate) struct Script {
        pub replies: VecDeque<Vec<Vec<u8>>>,
        pub current: VecDeque<Vec<u8>>,
        pub sent: Vec<Vec<u8>>,
        seq: u32,
        buf: Vec<u8>,
    }

    impl Script {
        pub(crate) fn new(replies: Vec<Vec<Vec<u8>>>) -> Self {
            Script {
                replies: replies.into(),
                current: VecDeque::new(),
                sent: Vec::new(),
                seq: 100,
                buf: Vec::new(),
            }
        }
    }

    impl Transport for Script {
        fn send(&mut self, d: &[u8]) -> Result<()> {
            self.sent.push(d.to_vec());
            let seq = u32::from_ne_bytes(d[8..12].try_into().unwrap());
            let mut next = self.replies.pop_front().unwrap_or_default();
            for dg in &mut next {
                let mut off = 0;
                while off + 16 <= dg.len() {
                    let len = u32::from_ne_bytes(dg[off..off + 4].try_into().unwrap()) as usize;
                    if u32::from_ne_bytes(dg[off + 8..off + 12].try_into().unwrap()) == 0 {
                        dg[off + 8..off + 12].copy_from_slice(&seq.to_ne_bytes());
                    }
                    off += (len.max(16) + 3) & !3;
                }
            }
            self.current = next.into();
            Ok(())
        }
        fn recv(&mut self, op: Op) -> Result<&[u8]> {
            match self.current.pop_front() {
                Some(d) => {
                    self.buf = d;
                    Ok(&self.buf)
                }
                None => Err(Error::Timeout { op }),
            }
        }
        fn next_seq(&mut self) -> u32 {
            self.seq += 1;
            self.seq
        }
    }

    /// A dump item for a UDP flow from 10.0.0.`n` marked `n`, with extra
    /// netlink flags.
    pub(crate) fn flow_msg(n: u8, extra_flags: u16) -> Vec<u8> {
        let mut f = support::udp(&format!("10.0.0.{n}"), 1000, "10.0.0.254", 53);
        f.mark = Some(u32::from(n));
        let mut b = Vec::new();
        let ty = ct_type(IPCTNL_MSG_CT_NEW);
        support::push(&mut b, ty, NLM_F_MULTI | extra_flags, 0, Some(&f));
        b
    }

    /// The `NLMSG_DONE` ending a dump, carrying `code`.
    fn done_msg(code: i32, extra_flags: u16) -> Vec<u8> {
        support::done(0, NLM_F_MULTI | extra_flags, code)
    }

    fn req(seq: u32) -> Vec<u8> {
        crate::request::header_only(
            IPCTNL_MSG_CT_GET,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            L3Family::UNSPEC,
            0,
        )
    }

    fn marks(t: &mut Script, policy: DumpPolicy) -> Result<(Vec<u32>, DumpSummary)> {
        fold_flows(t, Op::Dump, &mut req, policy, None, Vec::new, |v, f| {
            v.push(f.mark().unwrap())
        })
    }

    #[test]
    fn plain_dump_counts() {
        let d1 = [flow_msg(1, 0), flow_msg(2, 0)].concat();
        let d2 = [flow_msg(3, 0), done_msg(0, 0)].concat();
        let mut t = Script::new(vec![vec![d1.clone(), d2.clone()]]);
        let (m, s) = marks(&mut t, DumpPolicy::Fail).unwrap();
        assert_eq!(m, [1, 2, 3]);
        assert_eq!(s.flows, 3);
        assert_eq!(s.messages, 4);
        assert_eq!(s.datagrams, 2);
        assert_eq!(s.bytes, (d1.len() + d2.len()) as u64);
        assert!(!s.interrupted && !s.kernel_filtered);
        assert_eq!(s.attempts, 1);
    }

    #[test]
    fn stale_replies_are_skipped() {
        let mut stale = flow_msg(9, 0);
        stale[8..12].copy_from_slice(&7u32.to_ne_bytes());
        let mut t = Script::new(vec![vec![[stale, flow_msg(1, 0), done_msg(0, 0)].concat()]]);
        let (m, _) = marks(&mut t, DumpPolicy::Fail).unwrap();
        assert_eq!(m, [1]);
    }

    #[test]
    fn interrupted_dump_policies() {
        let intr = || {
            vec![
                [flow_msg(1, 0), flow_msg(2, NLM_F_DUMP_INTR)].concat(),
                done_msg(0, NLM_F_DUMP_INTR),
            ]
        };
        let clean = || vec![[flow_msg(1, 0), flow_msg(2, 0), done_msg(0, 0)].concat()];

        let mut t = Script::new(vec![intr()]);
        assert!(matches!(
            marks(&mut t, DumpPolicy::Fail),
            Err(Error::DumpInterrupted { attempts: 1, .. })
        ));

        let mut t = Script::new(vec![intr()]);
        let (m, s) = marks(&mut t, DumpPolicy::Accept).unwrap();
        assert_eq!(m, [1, 2]);
        assert!(s.interrupted);

        // Retry: the accumulator restarts, so flows are not counted twice.
        let mut t = Script::new(vec![intr(), intr(), clean()]);
        let (m, s) = marks(&mut t, DumpPolicy::Retry(2)).unwrap();
        assert_eq!(m, [1, 2]);
        assert_eq!(s.attempts, 3);
        assert!(!s.interrupted);
        assert_eq!(t.sent.len(), 3);

        let mut t = Script::new(vec![intr(), intr(), clean()]);
        assert!(matches!(
            marks(&mut t, DumpPolicy::Retry(1)),
            Err(Error::DumpInterrupted { attempts: 2, .. })
        ));
    }

    #[test]
    fn error_in_done_is_surfaced() {
        let mut t = Script::new(vec![vec![
            [flow_msg(1, 0), done_msg(-libc::EINVAL, 0)].concat(),
        ]]);
        match marks(&mut t, DumpPolicy::Fail) {
            Err(Error::Kernel {
                errno,
                op: Op::Dump,
                ..
            }) => assert_eq!(errno, libc::EINVAL),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nlmsg_error_with_extack() {
        let mut t = Script::new(vec![vec![support::error(
            0,
            -libc::EOPNOTSUPP,
            Some("no such thing"),
        )]]);
        match marks(&mut t, DumpPolicy::Fail) {
            Err(Error::Kernel { errno, message, .. }) => {
                assert_eq!(errno, libc::EOPNOTSUPP);
                assert_eq!(message.as_deref(), Some("no such thing"));
            }
            other => panic!("{other:?}"),
        }
        let mut t = Script::new(vec![vec![support::error(0, -libc::EPERM, None)]]);
        assert!(matches!(
            marks(&mut t, DumpPolicy::Fail),
            Err(Error::PermissionDenied { op: Op::Dump })
        ));
    }

    #[test]
    fn malformed_flow_is_one_item() {
        // A flow message with a truncated attribute between two good ones.
        let mut bad = flow_msg(5, 0);
        let n = bad.len();
        bad[20..22].copy_from_slice(&((n as u16) + 8).to_ne_bytes());
        let mut t = Script::new(vec![vec![
            [flow_msg(1, 0), bad, flow_msg(2, 0), done_msg(0, 0)].concat(),
        ]]);
        let (m, s) = marks(&mut t, DumpPolicy::Fail).unwrap();
        assert_eq!(m, [1, 2]);
        assert_eq!(s.malformed, 1);
        assert!(s.first_malformed.is_some());
    }

    #[test]
    fn bad_header_fails_and_drains() {
        let mut bad = flow_msg(1, 0);
        bad[0..4].copy_from_slice(&8u32.to_ne_bytes());
        let mut t = Script::new(vec![vec![bad, done_msg(0, 0)]]);
        assert!(matches!(
            marks(&mut t, DumpPolicy::Fail),
            Err(Error::Wire { .. })
        ));
        assert!(t.current.is_empty(), "the rest of the dump was drained");
    }

    #[test]
    fn user_space_filter() {
        let f = Filter::new(L3Family::INET).mark(2, 0xff);
        let mut t = Script::new(vec![vec![
            [
                flow_msg(1, 0),
                flow_msg(2, 0),
                flow_msg(3, 0),
                done_msg(0, 0),
            ]
            .concat(),
        ]]);
        let (v, s) = fold_flows(
            &mut t,
            Op::Dump,
            &mut req,
            DumpPolicy::Fail,
            Some(&f),
            Vec::new,
            |v, f| v.push(f.to_owned()),
        )
        .unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(s.filtered_out, 2);
    }
}
