//! What a bulk pass does to each matching entry ([`Action`]), the fields
//! an update sets ([`Change`]), and the request each becomes: one
//! `IPCTNL_MSG_CT_DELETE` or `IPCTNL_MSG_CT_NEW` (without `NLM_F_CREATE`)
//! naming the entry by its original tuple and zone, written straight
//! from the dump's [`FlowView`] into the batch buffer.

use crate::error::Result;
use crate::request::{self, MessageWriter};
use crate::wire::FlowView;
use crate::wire::attr::{
    CTA_LABELS, CTA_LABELS_MASK, CTA_MARK, CTA_MARK_MASK, CTA_TIMEOUT, CTA_TUPLE_ORIG, CTA_ZONE,
};
use crate::wire::message::{IPCTNL_MSG_CT_DELETE, IPCTNL_MSG_CT_NEW};
use conntrack_core::{FlowLike, Labels, Tuple};

/// The fields an update sets on every matching entry; fields left `None`
/// are not sent and stay as they are.
///
/// Kernel semantics (`ctnetlink_change_conntrack`,
/// `net/netfilter/nf_conntrack_netlink.c`):
///
/// - mark: `new = (old & !mask) | (value & mask)` (`ctnetlink_change_mark`,
///   `CTA_MARK` with `CTA_MARK_MASK`; without a mask the whole mark is set);
/// - labels: the bits under the mask are replaced
///   (`nf_connlabels_replace`); an entry created while no rule in its
///   namespace used labels has no label area, and the kernel answers
///   `ENOSPC` for it (counted as a failure of that entry);
/// - timeout: seconds from now (`ctnetlink_change_timeout`).
///
/// ```
/// use conntrack_core::Labels;
/// use conntrack_netlink::bulk::Change;
/// let c = Change::new().mark_masked(0x100, 0xf00).timeout(30).labels(Labels::from_bits([3]));
/// assert_eq!(c.mark, Some((0x100, 0xf00)));
/// assert!(!c.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Change {
    /// `(value, mask)`: the mark bits under `mask` become `value`'s.
    pub mark: Option<(u32, u32)>,
    /// `(bits, mask)`: the label bits under `mask` become `bits`'.
    pub labels: Option<(Labels, Labels)>,
    /// New timeout, seconds from now.
    pub timeout: Option<u32>,
}

impl Change {
    /// A change that sets nothing yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the whole mark.
    pub fn mark(mut self, value: u32) -> Self {
        self.mark = Some((value, u32::MAX));
        self
    }
    /// Sets the mark bits under `mask` to `value`'s.
    pub fn mark_masked(mut self, value: u32, mask: u32) -> Self {
        self.mark = Some((value & mask, mask));
        self
    }
    /// Sets the labels to exactly `bits`.
    pub fn labels(mut self, bits: Labels) -> Self {
        self.labels = Some((bits, Labels([0xff; 16])));
        self
    }
    /// Sets the label bits under `mask` to `bits`' (`Labels::from_bits([5])`
    /// for both adds label 5 and keeps the others).
    pub fn labels_masked(mut self, bits: Labels, mask: Labels) -> Self {
        let mut b = bits;
        for (x, m) in b.0.iter_mut().zip(mask.0) {
            *x &= m;
        }
        self.labels = Some((b, mask));
        self
    }
    /// Sets the timeout, seconds from now.
    pub fn timeout(mut self, secs: u32) -> Self {
        self.timeout = Some(secs);
        self
    }

    /// Whether the change sets nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a pass does to each entry that matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Delete it (`IPCTNL_MSG_CT_DELETE` with its tuple, zone and id).
    Delete,
    /// Change it (`IPCTNL_MSG_CT_NEW` without `NLM_F_CREATE`).
    Update(Change),
    /// Only count it (and hand it to the caller's callback): a dry run.
    Count,
}

impl Action {
    /// `delete`, `update` or `count`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::Update(_) => "update",
            Action::Count => "count",
        }
    }
}

/// What names one entry in a request: its original tuple, its zone and,
/// for a delete, the id the entry must still have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub orig: Tuple,
    pub zone: Option<u16>,
    pub id: Option<u32>,
}

impl Entry {
    pub(crate) fn of(flow: &FlowView<'_>) -> Self {
        Entry {
            orig: flow.orig(),
            zone: FlowLike::zone(flow),
            id: flow.id(),
        }
    }
}

/// Appends the request `action` makes of `entry` to `buf`.
///
/// A delete names the entry by original tuple, zone and id (`CTA_ID`):
/// `ctnetlink_del_conntrack` answers `ENOENT` when the entry under that
/// tuple is not the one the dump showed (it was deleted, and possibly
/// created again, in between), so an entry made after the dump read that
/// tuple is never deleted. An update cannot be pinned so:
/// `ctnetlink_new_conntrack` looks the entry up by tuple only.
pub(crate) fn write_request(
    buf: &mut Vec<u8>,
    action: &Action,
    entry: &Entry,
    seq: u32,
    nl_flags: u16,
) -> Result<()> {
    let orig = entry.orig;
    match action {
        Action::Count => Ok(()),
        Action::Delete => request::write_by_tuple(
            buf,
            IPCTNL_MSG_CT_DELETE,
            &orig,
            entry.zone,
            entry.id,
            seq,
            nl_flags,
        ),
        Action::Update(c) => {
            let family = request::tuple_family(&orig)?;
            let mut w = MessageWriter::begin(buf, IPCTNL_MSG_CT_NEW, nl_flags, seq, family, 0);
            w.put_tuple(CTA_TUPLE_ORIG, &orig);
            if let Some(z) = entry.zone {
                w.put_u16_be(CTA_ZONE.0, z);
            }
            if let Some(t) = c.timeout {
                w.put_u32_be(CTA_TIMEOUT.0, t);
            }
            if let Some((v, m)) = c.mark {
                w.put_u32_be(CTA_MARK.0, v & m);
                if m != u32::MAX {
                    w.put_u32_be(CTA_MARK_MASK.0, m);
                }
            }
            if let Some((bits, mask)) = c.labels {
                w.put(CTA_LABELS.0, &bits.0);
                w.put(CTA_LABELS_MASK.0, &mask.0);
            }
            w.finish();
            Ok(())
        }
    }
}
