//! Conntrack status bits (`enum ip_conntrack_status`,
//! `include/uapi/linux/netfilter/nf_conntrack_common.h`).

bitflags::bitflags! {
    /// The status word of a conntrack entry (`CTA_STATUS`).
    ///
    /// Bits this crate does not name are kept (`from_bits_retain`), so a
    /// status word from a newer kernel round-trips unchanged.
    ///
    /// ```
    /// use conntrack_core::Status;
    /// let s = Status::from_bits_retain(0x0e | 1 << 20);
    /// assert!(s.contains(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED));
    /// assert_eq!(s.bits() & (1 << 20), 1 << 20);
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
    pub struct Status: u32 {
        /// Expected connection (child of a helper's expectation).
        const EXPECTED = 1 << 0;
        /// Packets seen in both directions.
        const SEEN_REPLY = 1 << 1;
        /// Assured: will not be early-dropped.
        const ASSURED = 1 << 2;
        /// Confirmed: the original packet has left the box (in the hash table).
        const CONFIRMED = 1 << 3;
        /// Needs source NAT in the original direction.
        const SRC_NAT = 1 << 4;
        /// Needs destination NAT in the original direction.
        const DST_NAT = 1 << 5;
        /// Sequence numbers need adjusting (helpers, synproxy).
        const SEQ_ADJUST = 1 << 6;
        /// Source NAT set up.
        const SRC_NAT_DONE = 1 << 7;
        /// Destination NAT set up.
        const DST_NAT_DONE = 1 << 8;
        /// Being destroyed.
        const DYING = 1 << 9;
        /// Timeout is fixed and not refreshed by packets.
        const FIXED_TIMEOUT = 1 << 10;
        /// A template (CT target), not a real connection.
        const TEMPLATE = 1 << 11;
        /// Untracked; since 5.x reused as NAT_CLASH for clash-resolved entries.
        const UNTRACKED = 1 << 12;
        /// Has a helper attached explicitly.
        const HELPER = 1 << 13;
        /// Offloaded to the flow table (software fast path).
        const OFFLOAD = 1 << 14;
        /// Offloaded to hardware.
        const HW_OFFLOAD = 1 << 15;
    }
}

impl Status {
    /// `IPS_NAT_CLASH`: the same bit as [`Status::UNTRACKED`], set on the
    /// reply-only loser of a resolved UDP clash (kernel 5.6+,
    /// `nf_ct_resolve_clash_harder`).
    pub const NAT_CLASH: Status = Status::UNTRACKED;

    /// Either NAT direction requested.
    pub const NAT_MASK: Status = Status::SRC_NAT.union(Status::DST_NAT);
}

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            bitflags::serde::serialize(self, s)
        } else {
            s.serialize_u32(self.bits())
        }
    }
}

impl<'de> serde::Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            bitflags::serde::deserialize(d)
        } else {
            <u32 as serde::Deserialize>::deserialize(d).map(Status::from_bits_retain)
        }
    }
}
