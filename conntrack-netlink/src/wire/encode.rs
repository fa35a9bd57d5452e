//! Encoding: netlink message framing, attributes and nests, the one
//! encoder every request ([`crate::request::MessageWriter`]), test
//! message and benchmark buffer is written with.
//!
//! Everything appends to a `Vec<u8>`: attribute headers in host byte
//! order, payloads padded to 4 bytes, `NLA_F_NESTED` on nests (as the
//! kernel sets it since 5.2 and requires it for strict validation).
//!
//! Each nest's encoder lives in the nest's own file next to its decoders;
//! the public ones are re-exported here:
//!
//! - [`put_tuple`] and [`put_protoinfo`] write one nest.
//! - [`encode_flow`] writes what the kernel accepts in a CT_NEW (create or
//!   update) request.
//! - [`encode_flow_as_kernel`] writes what a 6.18 kernel *emits* for a
//!   flow in a dump, in its attribute order (`ctnetlink_fill_info`:
//!   tuples, zone, `ctnetlink_dump_info`, then `ctnetlink_dump_extinfo`),
//!   for tests, fixtures and benchmarks.

use super::message::{NFGENMSG_LEN, NLMSG_HDRLEN, NfGenMsg};
use super::nla::{NLA_F_NESTED, NLA_HDRLEN, align4};
use netlink_packet_core::{Emitable, NetlinkBuffer, NetlinkHeader};

pub use super::flow::{encode_flow, encode_flow_as_kernel, encode_flow_as_kernel_with};
pub use super::protoinfo::put_protoinfo;
pub use super::tuple::put_tuple;

/// The position of a message being built; see [`begin_message`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use = "pass it to finish_message"]
pub struct MessageStart(usize);

impl MessageStart {
    /// Where the message's header starts in the buffer.
    pub const fn offset(self) -> usize {
        self.0
    }
}

/// The position of a nest being built; see [`begin_nest`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[must_use = "pass it to end_nest"]
pub struct NestStart(usize);

/// The largest attribute payload (`nla_len` is a `u16`).
pub const MAX_ATTR_PAYLOAD: usize = u16::MAX as usize - NLA_HDRLEN;

fn pad(out: &mut Vec<u8>) {
    out.resize(align4(out.len()), 0);
}

/// Starts a netfilter message: a netlink header (type `ty`, e.g.
/// [`ct_type`](super::message::ct_type)`(IPCTNL_MSG_CT_GET)`, flags, seq,
/// pid 0, length filled in by [`finish_message`]) and an `nfgenmsg` with
/// `family`, version 0 and `res_id` 0.
///
/// ```
/// use conntrack_netlink::wire::{encode, message::*};
/// let mut buf = Vec::new();
/// let m = encode::begin_message(&mut buf, ct_type(IPCTNL_MSG_CT_GET),
///                               NLM_F_REQUEST | NLM_F_DUMP, 1, 0);
/// encode::finish_message(&mut buf, m);
/// assert_eq!(buf, [20, 0, 0, 0, 1, 1, 1, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/// ```
pub fn begin_message(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8) -> MessageStart {
    begin_message_with(
        out,
        ty,
        flags,
        seq,
        NfGenMsg {
            family,
            version: 0,
            res_id: 0,
        },
    )
}

/// [`begin_message`] with a full `nfgenmsg` (e.g. a `res_id`, or version
/// 1 for a family-filtered flush).
pub fn begin_message_with(
    out: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    nfgen: NfGenMsg,
) -> MessageStart {
    let m = begin_nlmsg(out, ty, flags, seq);
    out.extend_from_slice(&nfgen.to_bytes());
    m
}

/// Starts a netlink message without a netfilter header (`NLMSG_ERROR`,
/// `NLMSG_DONE`, ...): the 16-byte header, written with
/// `netlink-packet-core`'s `NetlinkHeader` (`nlmsg_pid` 0, `nlmsg_len`
/// filled in by [`finish_message`]).
///
/// ```
/// use conntrack_netlink::wire::{encode, message::*};
/// let mut buf = Vec::new();
/// let m = encode::begin_nlmsg(&mut buf, NLMSG_DONE, NLM_F_MULTI, 9);
/// buf.extend_from_slice(&0i32.to_ne_bytes());
/// assert_eq!(encode::finish_message(&mut buf, m), 20);
/// let done = Message::parse(&buf).unwrap();
/// assert!(done.is_done() && done.is_multi());
/// assert_eq!((done.seq, done.error_code()), (9, Some(0)));
/// ```
pub fn begin_nlmsg(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32) -> MessageStart {
    pad(out);
    let start = out.len();
    let mut h = NetlinkHeader::default();
    h.message_type = ty;
    h.flags = flags;
    h.sequence_number = seq;
    out.resize(start + NLMSG_HDRLEN, 0);
    h.emit(&mut out[start..]);
    MessageStart(start)
}

/// The bytes of a message without attributes: `nlmsghdr` and `nfgenmsg`.
pub const REQUEST_HEADER_LEN: usize = NLMSG_HDRLEN + NFGENMSG_LEN;

/// Writes the message's `nlmsg_len` and pads the buffer to 4 bytes;
/// returns the length written.
pub fn finish_message(out: &mut Vec<u8>, m: MessageStart) -> usize {
    let len = out.len().saturating_sub(m.0);
    if let Some(h) = out.get_mut(m.0..m.0 + NLMSG_HDRLEN) {
        NetlinkBuffer::new(h).set_length(u32::try_from(len).unwrap_or(u32::MAX));
    }
    pad(out);
    len
}

/// Appends an attribute with payload `value` and pads to 4 bytes. A
/// payload longer than [`MAX_ATTR_PAYLOAD`] is cut to that length (no
/// netlink attribute can hold more).
///
/// ```
/// let mut buf = Vec::new();
/// conntrack_netlink::wire::encode::put_attr(&mut buf, 8, &[0, 0, 0, 7]);
/// assert_eq!(buf, [8, 0, 8, 0, 0, 0, 0, 7]);
/// ```
pub fn put_attr(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let value = &value[..value.len().min(MAX_ATTR_PAYLOAD)];
    let len = (NLA_HDRLEN + value.len()) as u16;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(value);
    pad(out);
}

/// Appends a `u8` attribute.
pub fn put_u8(out: &mut Vec<u8>, ty: u16, v: u8) {
    put_attr(out, ty, &[v]);
}

/// Appends a big-endian `u16` attribute.
pub fn put_be16(out: &mut Vec<u8>, ty: u16, v: u16) {
    put_attr(out, ty, &v.to_be_bytes());
}

/// Appends a big-endian `u32` attribute.
pub fn put_be32(out: &mut Vec<u8>, ty: u16, v: u32) {
    put_attr(out, ty, &v.to_be_bytes());
}

/// Appends a host-order `u32` attribute (`NLA_U32`, e.g. the
/// `CTA_FILTER_*_FLAGS`).
pub fn put_u32(out: &mut Vec<u8>, ty: u16, v: u32) {
    put_attr(out, ty, &v.to_ne_bytes());
}

/// Appends a big-endian `u64` attribute.
pub fn put_be64(out: &mut Vec<u8>, ty: u16, v: u64) {
    put_attr(out, ty, &v.to_be_bytes());
}

/// Appends a NUL-terminated string attribute.
pub fn put_str(out: &mut Vec<u8>, ty: u16, s: &str) {
    let s = &s.as_bytes()[..s.len().min(MAX_ATTR_PAYLOAD - 1)];
    let len = (NLA_HDRLEN + s.len() + 1) as u16;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(s);
    out.push(0);
    pad(out);
}

/// Starts a nested attribute (type `ty | NLA_F_NESTED`).
///
/// ```
/// use conntrack_netlink::wire::encode::*;
/// let mut buf = Vec::new();
/// let n = begin_nest(&mut buf, 20);
/// put_be64(&mut buf, 1, 5);
/// end_nest(&mut buf, n);
/// assert_eq!(buf, [16, 0, 20, 0x80, 12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
/// ```
pub fn begin_nest(out: &mut Vec<u8>, ty: u16) -> NestStart {
    let start = out.len();
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    NestStart(start)
}

/// Ends a nest: writes its length (saturating at `u16::MAX`).
pub fn end_nest(out: &mut [u8], n: NestStart) {
    let len = u16::try_from(out.len().saturating_sub(n.0)).unwrap_or(u16::MAX);
    if let Some(h) = out.get_mut(n.0..n.0 + 2) {
        h.copy_from_slice(&len.to_ne_bytes());
    }
}

/// Where the kernel would put 64-bit values: this machine (x86_64, which
/// has efficient unaligned access) emits no padding attributes; kernels on
/// other architectures put an empty `*_PAD` attribute before a 64-bit
/// value whose payload would not be 8-byte aligned (`nla_put_64bit`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Pad64 {
    /// No padding attributes (x86_64, arm64, ...).
    #[default]
    None,
    /// Padding attributes as on architectures without efficient unaligned
    /// access; alignment is counted from the start of the output buffer.
    Aligned,
}

/// Appends a big-endian `u64` attribute, preceded by an empty `pad_ty`
/// attribute where [`Pad64::Aligned`] needs one.
pub(super) fn put_be64_pad(out: &mut Vec<u8>, ty: u16, v: u64, pad_ty: u16, pad: Pad64) {
    if pad == Pad64::Aligned && !(out.len() + NLA_HDRLEN).is_multiple_of(8) {
        put_attr(out, pad_ty, &[]);
    }
    put_be64(out, ty, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut() {
        let mut out = Vec::new();
        put_str(&mut out, 1, &"x".repeat(70000));
        assert_eq!(u16::from_ne_bytes([out[0], out[1]]), u16::MAX);
        assert_eq!(out.len(), align4(u16::MAX as usize));
    }
}
