//! One mirrored entry: [`Entry`], its compact value (48 bytes), and
//! [`EntryRef`], the entry with its key rebuilt, which implements
//! [`FlowLike`].

use conntrack_core::{
    Counters, DccpInfo, DccpState, FlowLike, FlowState, L4Proto, ProtoInfo, SctpInfo, SctpState,
    Status, TcpInfo, TcpState, Tuple,
};

/// Flag bits of [`Entry`].
pub(super) const HAS_STATE: u8 = 1 << 0;
pub(super) const HAS_COUNTERS: u8 = 1 << 1;
pub(super) const HAS_TIMEOUT: u8 = 1 << 2;
/// Set on entries seen by the current resync's dump (mark and sweep).
pub(super) const SEEN: u8 = 1 << 7;

/// One mirrored entry, without its key: 48 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Entry {
    pub(super) counters: [u64; 4],
    pub(super) status: u32,
    pub(super) mark: u32,
    pub(super) expires: u32,
    pub(super) state: u8,
    pub(super) flags: u8,
}

impl Entry {
    /// Whether two entries differ in what events report (state, status,
    /// mark), ignoring timeout and counters.
    pub(super) fn differs(&self, other: &Entry) -> bool {
        self.status != other.status
            || self.mark != other.mark
            || (self.flags & HAS_STATE) != (other.flags & HAS_STATE)
            || self.state != other.state
    }
}

/// A borrowed mirrored entry, rebuilt from its compact form.
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'t> {
    pub(super) orig: Tuple,
    pub(super) reply: Tuple,
    pub(super) zone: u16,
    pub(super) entry: &'t Entry,
    pub(super) now: u32,
}

impl EntryRef<'_> {
    /// The zone (0 for none).
    pub fn zone_id(&self) -> u16 {
        self.zone
    }

    /// The protocol or replied state.
    pub fn state(&self) -> FlowState {
        self.flow_state()
    }

    /// When the entry expires, in seconds since the mirror's epoch, if a
    /// timeout was ever reported.
    pub fn expires(&self) -> Option<u32> {
        (self.entry.flags & HAS_TIMEOUT != 0).then_some(self.entry.expires)
    }
}

impl FlowLike for EntryRef<'_> {
    fn orig(&self) -> Tuple {
        self.orig
    }
    fn reply(&self) -> Tuple {
        self.reply
    }
    fn status(&self) -> Status {
        Status::from_bits_retain(self.entry.status)
    }
    fn protoinfo(&self) -> Option<ProtoInfo> {
        if self.entry.flags & HAS_STATE == 0 {
            return None;
        }
        let s = self.entry.state;
        match self.orig.proto {
            L4Proto::TCP => Some(ProtoInfo::Tcp(TcpInfo::new(TcpState(s)))),
            L4Proto::SCTP => Some(ProtoInfo::Sctp(SctpInfo::new(SctpState(s)))),
            L4Proto::DCCP => Some(ProtoInfo::Dccp(DccpInfo::new(DccpState(s)))),
            _ => None,
        }
    }
    /// Seconds left, as of the last call to the mirror (0 once passed).
    fn timeout(&self) -> Option<u32> {
        self.expires().map(|e| e.saturating_sub(self.now))
    }
    fn mark(&self) -> Option<u32> {
        Some(self.entry.mark)
    }
    fn zone(&self) -> Option<u16> {
        (self.zone != 0).then_some(self.zone)
    }
    fn counters_orig(&self) -> Option<Counters> {
        (self.entry.flags & HAS_COUNTERS != 0).then(|| Counters {
            packets: self.entry.counters[0],
            bytes: self.entry.counters[1],
        })
    }
    fn counters_reply(&self) -> Option<Counters> {
        (self.entry.flags & HAS_COUNTERS != 0).then(|| Counters {
            packets: self.entry.counters[2],
            bytes: self.entry.counters[3],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size() {
        assert_eq!(core::mem::size_of::<Entry>(), 48);
    }
}
