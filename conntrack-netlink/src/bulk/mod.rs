//! Bulk changes: delete or update every entry that matches any of many
//! filters, in one streaming pass.
//!
//! The job agents spend most of their conntrack time on: kube-proxy
//! removing stale UDP entries after endpoint changes, a CNI plugin
//! cleaning up after a deleted pod, a NAT gateway draining a backend.
//! Libraries that list the whole table into memory and test every flow
//! against every filter make that cost memory in the table's size and CPU
//! in table size times filter count. Here:
//!
//! - a [`FilterSet`] of [`Rule`]s (exact addresses or networks, protocol,
//!   ports, ICMP fields, zone, mark/mask, status/mask, on the original or
//!   reply tuple, plus an optional predicate) matches a flow with one hash
//!   probe per rule *shape*, whatever the number of rules ([`set`]);
//! - [`Conntrack::delete_matching`] and [`Conntrack::update_matching`] make
//!   one streaming dump (memory: the receive buffer), and send the
//!   matching entries' deletes or updates in batches of hundreds per
//!   datagram on a second socket; the kernel answers only failures plus
//!   one acknowledgement per batch, and it has answered by the time the
//!   batch's `send` returns, so the dump never waits;
//! - entries already gone (`ENOENT`) are counted apart from real failures,
//!   and a failure is one entry of the [`BulkReport`], not the end of the
//!   pass;
//! - when one request can say the whole set (one rule the kernel applies
//!   exactly, on a kernel that supports it: [`KernelSupport`]), a delete
//!   is the kernel's own filtered flush instead; the report says which
//!   path ran and why ([`BulkPath`], [`BulkReport::why`]).
//!
//! Safe under churn: a delete names its entry by tuple, zone *and id*, so
//! an entry created after the dump passed its tuple is never deleted
//! unless the dump saw and matched it; entries created during the pass
//! are seen by the dump or not, like any entry, and are changed only if
//! they match. An update cannot be pinned to an id (the kernel looks it up
//! by tuple only): an entry deleted and created again with the same tuple
//! between the dump and the update gets the change. `NLM_F_DUMP_INTR`
//! follows [`BulkOptions::policy`].
//!
//! # kube-proxy's stale UDP entries
//!
//! After an endpoint of a UDP Service goes away, entries still DNATed to
//! it keep sending the Service's traffic into the void until they time
//! out; kube-proxy deletes them. For Service `10.96.0.10:53` (NodePort
//! 30053) whose endpoint `10.244.1.7:53` is gone, and Service
//! `10.96.5.5:8125` whose last endpoint is gone:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use conntrack_netlink::bulk::FilterSet;
//! use conntrack_netlink::{Conntrack, Netns};
//!
//! let set = FilterSet::parse("
//!     proto=udp orig-dst=10.96.0.10 orig-dport=53 reply-src=10.244.1.7 reply-sport=53
//!     proto=udp orig-dport=30053 reply-src=10.244.1.7 reply-sport=53
//!     proto=udp orig-dst=10.96.5.5 orig-dport=8125
//! ")?;
//! let mut ct = Conntrack::open_in(&Netns::named("node"))?;
//! let report = ct.delete_matching(&set)?;
//! println!("{report}");
//! assert_eq!(report.matched, report.deleted + report.vanished + report.failed);
//! # Ok(()) }
//! ```
//!
//! The same from the command line: `examples/clean.rs`
//! (`cargo run --example clean -- --netns node --rules stale.txt`).
//! With thousands of such rules the pass costs about what one dump of the
//! table costs (see BENCHMARKS.md, "Bulk delete"): the rules are all UDP
//! and IPv4, so the kernel sends only UDP IPv4 entries
//! ([`BulkReport::prefilter`]), and each is matched with two or three hash
//! probes.
//!
//! Files: [`rule`] (one filter), [`set`] (the index), [`syntax`] (the text
//! form), [`change`] (the actions and their requests), `run` (the pass and
//! the report).

pub mod change;
pub mod kube;
pub mod rule;
mod run;
pub mod set;
pub mod syntax;

pub use change::{Action, Change};
pub use rule::{Cidr, Predicate, Rule, TupleRule};
pub use run::{BulkOptions, BulkPath, BulkReport, EntryFailure, KernelSupport};
pub use set::FilterSet;
pub use syntax::{RuleError, RuleErrorKind, SetError};

use crate::error::Result;
use crate::ops::Conntrack;
use crate::socket::{Socket, SocketConfig, Transport};
use crate::wire::FlowView;

impl Conntrack<Socket> {
    /// Deletes every entry matching `set` (see the [module](self)),
    /// with [`BulkOptions::default`].
    pub fn delete_matching(&mut self, set: &FilterSet) -> Result<BulkReport> {
        self.bulk(set, &Action::Delete, &BulkOptions::default(), |_| {})
    }

    /// Applies `change` to every entry matching `set`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use conntrack_netlink::bulk::{Change, FilterSet};
    /// use conntrack_netlink::Conntrack;
    /// // Drain a NAT backend: mark its entries for the ruleset and let
    /// // them expire within a minute.
    /// let set = FilterSet::parse("reply-src=192.0.2.50")?;
    /// let r = Conntrack::open()?.update_matching(&set, &Change::new().mark_masked(0x4, 0x4).timeout(60))?;
    /// println!("{} updated, {} failed", r.updated, r.failed);
    /// # Ok(()) }
    /// ```
    pub fn update_matching(&mut self, set: &FilterSet, change: &Change) -> Result<BulkReport> {
        self.bulk(
            set,
            &Action::Update(*change),
            &BulkOptions::default(),
            |_| {},
        )
    }

    /// Counts the entries matching `set` without changing them (a dry
    /// run), with one streaming dump.
    pub fn count_matching(&mut self, set: &FilterSet) -> Result<BulkReport> {
        self.bulk(set, &Action::Count, &BulkOptions::default(), |_| {})
    }

    /// The general form: `action` on every entry matching `set`, run as
    /// `opts` says, each match handed to `on_match` first (a kernel flush
    /// sees no entry: pass `opts.kernel_flush(false)` to see them all).
    /// Changes go on a second socket opened with this one's
    /// configuration ([`Socket::config`]), so in the same namespace.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use conntrack_netlink::bulk::{Action, BulkOptions, FilterSet};
    /// use conntrack_netlink::Conntrack;
    /// let set = FilterSet::parse("proto=udp orig-dst=10.96.0.0/12")?;
    /// let r = Conntrack::open()?.bulk(&set, &Action::Count, &BulkOptions::default(), |f| {
    ///     println!("{:?}", f.orig());
    /// })?;
    /// println!("{} would be deleted", r.matched);
    /// # Ok(()) }
    /// ```
    pub fn bulk(
        &mut self,
        set: &FilterSet,
        action: &Action,
        opts: &BulkOptions,
        mut on_match: impl FnMut(&FlowView<'_>),
    ) -> Result<BulkReport> {
        let mut changes = match action {
            Action::Count => None,
            _ => Some(Socket::open(&changes_config(self.socket().config()))?),
        };
        run::run(
            self.transport(),
            changes.as_mut(),
            set,
            action,
            opts,
            &mut on_match,
        )
    }
}

/// The configuration of the socket that carries the changes: the dump
/// socket's namespace and timeout, a 1 MiB kernel buffer (answers are a
/// few error messages per batch) and a 64 KiB user-space one.
fn changes_config(dump: &SocketConfig) -> SocketConfig {
    dump.clone().rcvbuf(1 << 20).recv_buffer(64 << 10)
}

impl<T: Transport> Conntrack<T> {
    /// Deletes the entries named by original tuple and zone, hundreds per
    /// datagram, without a dump: for a caller that already knows them
    /// (the benchmark's floor: the kernel's own delete work). Entries
    /// already gone count as [`BulkReport::vanished`].
    ///
    /// ```no_run
    /// # fn main() -> Result<(), conntrack_netlink::Error> {
    /// # let tuples: Vec<conntrack_core::Tuple> = Vec::new();
    /// use conntrack_netlink::bulk::BulkOptions;
    /// let mut ct = conntrack_netlink::Conntrack::open()?;
    /// let r = ct.delete_entries(tuples.iter().map(|t| (*t, None)), &BulkOptions::default())?;
    /// println!("{} deleted, {} already gone", r.deleted, r.vanished);
    /// # Ok(()) }
    /// ```
    pub fn delete_entries(
        &mut self,
        entries: impl IntoIterator<Item = (conntrack_core::Tuple, Option<u16>)>,
        opts: &BulkOptions,
    ) -> Result<BulkReport> {
        run::delete_listed(self.transport(), &mut entries.into_iter(), opts)
    }

    /// [`Conntrack::bulk`] with the changes sent on `changes`, a
    /// connection to the same table (any transport: tests use scripted
    /// ones).
    pub fn bulk_with<C: Transport>(
        &mut self,
        changes: &mut Conntrack<C>,
        set: &FilterSet,
        action: &Action,
        opts: &BulkOptions,
        mut on_match: impl FnMut(&FlowView<'_>),
    ) -> Result<BulkReport> {
        run::run(
            self.transport(),
            Some(changes.transport()),
            set,
            action,
            opts,
            &mut on_match,
        )
    }
}
