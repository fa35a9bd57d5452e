//! Primitives of the fast paths, for the nests the kernel emits with a
//! fixed layout (tuples, counters, timestamps, TCP protoinfo, SYN proxy,
//! and the run of scalars after `CTA_STATUS`).
//!
//! Each nest's fast path lives next to its general decoder and its
//! encoder (`tuple.rs`, `counters.rs`, `timestamp.rs`, `protoinfo.rs`,
//! `synproxy.rs`, `flow.rs`). It takes the nest's payload as a fixed-size array and
//! recognises the exact layout `ctnetlink_fill_info`
//! (`net/netfilter/nf_conntrack_netlink.c`) produces: attribute headers
//! compared as whole words with [`hdr`] and [`word`] (the
//! `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` bits masked off), values read at
//! fixed positions. Anything else (other order, extra or unknown
//! attributes, padding attributes, other lengths) returns `None` and the
//! caller takes the general path, which validates and reports errors. A
//! fast path only accepts input the general path decodes to the same
//! value (checked by property tests in each nest's file and in
//! `flow.rs`), so the decoder stays order-agnostic while the common case
//! costs a few compares.

use super::nla::NLA_TYPE_MASK;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An attribute header as a host-order word, flag bits of the type
/// masked off.
pub(super) const fn hdr(len: u16, ty: u16) -> u32 {
    let l = len.to_ne_bytes();
    let t = ty.to_ne_bytes();
    u32::from_ne_bytes([l[0], l[1], t[0], t[1]])
}

const MASK: u32 = {
    let l = u16::MAX.to_ne_bytes();
    let t = NLA_TYPE_MASK.to_ne_bytes();
    u32::from_ne_bytes([l[0], l[1], t[0], t[1]])
};

/// The attribute header at `at`, flag bits masked off, to compare with
/// [`hdr`].
#[inline(always)]
pub(super) fn word<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) & MASK
}

#[inline(always)]
pub(super) fn be16<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(super) fn be32<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(super) fn be64<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// Stores the `A`-byte address (4: IPv4, 16: IPv6) at `at` into `slot`
/// in place: a slot already of the family (the decoder's placeholder is
/// IPv4) gets only its payload stored. Building the address as a
/// value and storing it whole made the compiler build an `IpAddr` (a tag
/// byte and a payload) in a stack temporary with two stores and copy it
/// with wider loads, which stall (store-to-load forwarding fails; `perf
/// annotate` of a live doctor dump put an eighth of the fold's decode
/// there).
#[inline(always)]
pub(super) fn set_addr<const N: usize, const A: usize>(slot: &mut IpAddr, b: &[u8; N], at: usize) {
    if A == 4 {
        let a = Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        match slot {
            IpAddr::V4(x) => *x = a,
            s => *s = IpAddr::V4(a),
        }
    } else {
        let mut x = [0u8; 16];
        x.copy_from_slice(&b[at..at + 16]);
        let a = Ipv6Addr::from(x);
        match slot {
            IpAddr::V6(y) => *y = a,
            s => *s = IpAddr::V6(a),
        }
    }
}
