//! Counters (`CTA_COUNTERS_ORIG`, `CTA_COUNTERS_REPLY`, present when
//! `nf_conntrack_acct` is on): `CTA_COUNTERS_PACKETS` and
//! `CTA_COUNTERS_BYTES`, be64 (old kernels: the 32-bit variants), with a
//! `CTA_COUNTERS_PAD` before each where the architecture needs 64-bit
//! alignment (`nla_put_be64`).
//!
//! The general decoder, the fast path for the kernel's layout (see
//! `fast.rs`) and the encoder.

use super::attr::*;
use super::encode::{Pad64, begin_nest, end_nest, put_be64_pad};
use super::error::DecodeError;
use super::fast::{be64, hdr, word};
use super::nla::{Attr, for_each};
use conntrack_core::Counters;

/// Decodes a counters nest (general path: any order, unknown and padding
/// attributes skipped, every length checked).
#[inline(always)]
pub(super) fn decode(a: &Attr<'_>) -> Result<Counters, DecodeError> {
    let mut c = Counters::default();
    for_each(a, Space::Conntrack, |x| {
        const S: Space = Space::Counters;
        match CtaCountersAttr(x.ty()) {
            CTA_COUNTERS_PACKETS => c.packets = x.be64(S)?,
            CTA_COUNTERS_BYTES => c.bytes = x.be64(S)?,
            CTA_COUNTERS32_PACKETS => c.packets = u64::from(x.be32(S)?),
            CTA_COUNTERS32_BYTES => c.bytes = u64::from(x.be32(S)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(c)
}

/// A counters nest's payload: `CTA_COUNTERS_PACKETS`, `CTA_COUNTERS_BYTES`.
#[inline(always)]
pub(super) fn decode_fast(v: &[u8]) -> Option<Counters> {
    let b = <&[u8; 24]>::try_from(v).ok()?;
    if word(b, 0) != hdr(12, CTA_COUNTERS_PACKETS.0) || word(b, 12) != hdr(12, CTA_COUNTERS_BYTES.0)
    {
        return None;
    }
    Some(Counters {
        packets: be64(b, 4),
        bytes: be64(b, 16),
    })
}

/// Appends a counters nest of type `ty`.
pub(super) fn put_counters(out: &mut Vec<u8>, ty: CtaAttr, c: &Counters, pad: Pad64) {
    let n = begin_nest(out, ty.0);
    put_be64_pad(
        out,
        CTA_COUNTERS_PACKETS.0,
        c.packets,
        CTA_COUNTERS_PAD.0,
        pad,
    );
    put_be64_pad(out, CTA_COUNTERS_BYTES.0, c.bytes, CTA_COUNTERS_PAD.0, pad);
    end_nest(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::nla::Attrs;

    fn emit_decode(c: &Counters, pad: Pad64) -> (Vec<u8>, Counters) {
        let mut out = vec![0; 4]; // as after an nfgenmsg
        put_counters(&mut out, CTA_COUNTERS_ORIG, c, pad);
        let a = Attrs::new(&out[4..], 4).next().unwrap().unwrap();
        let got = decode(&a).unwrap();
        (out, got)
    }

    #[test]
    fn emit_fast_and_general_agree() {
        let c = Counters {
            packets: 3,
            bytes: 0x0102_0304_0506_0708,
        };
        let (out, got) = emit_decode(&c, Pad64::None);
        assert_eq!(got, c);
        #[rustfmt::skip]
        let expect: &[u8] = &[
            28, 0, 9, 0x80,
              12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3,
              12, 0, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        assert_eq!(&out[4..], expect);
        assert_eq!(decode_fast(&expect[4..]), Some(c));
        // With padding attributes the fast path declines, the general
        // path skips them.
        let (out, got) = emit_decode(&c, Pad64::Aligned);
        assert_eq!(got, c);
        assert!(out.len() > 4 + expect.len());
        assert_eq!(decode_fast(&out[8..]), None);
    }

    #[test]
    fn old_32_bit_counters() {
        let mut out = Vec::new();
        let n = begin_nest(&mut out, CTA_COUNTERS_REPLY.0);
        crate::wire::encode::put_be32(&mut out, CTA_COUNTERS32_PACKETS.0, 5);
        crate::wire::encode::put_be32(&mut out, CTA_COUNTERS32_BYTES.0, 500);
        end_nest(&mut out, n);
        let a = Attrs::new(&out, 0).next().unwrap().unwrap();
        assert_eq!(
            decode(&a),
            Ok(Counters {
                packets: 5,
                bytes: 500
            })
        );
    }
}
