//! Sequence adjustment (`CTA_SEQ_ADJ_ORIG`, `CTA_SEQ_ADJ_REPLY`, set by
//! helpers and NAT that change payload lengths): correction position and
//! the offsets before and after it, be32.
//!
//! The decoder and the encoder (the kernel emits these rarely, so there is
//! no fast path).

use super::attr::*;
use super::encode::{begin_nest, end_nest, put_be32};
use super::error::DecodeError;
use super::nla::{Attr, for_each};
use conntrack_core::SeqAdj;

/// Decodes a sequence adjustment nest.
pub(super) fn decode(a: &Attr<'_>) -> Result<SeqAdj, DecodeError> {
    let mut s = SeqAdj::default();
    for_each(a, Space::Conntrack, |x| {
        const S: Space = Space::SeqAdj;
        match CtaSeqAdjAttr(x.ty()) {
            CTA_SEQADJ_CORRECTION_POS => s.correction_pos = x.be32(S)?,
            CTA_SEQADJ_OFFSET_BEFORE => s.offset_before = x.be32(S)?,
            CTA_SEQADJ_OFFSET_AFTER => s.offset_after = x.be32(S)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

/// Appends a sequence adjustment nest of type `ty`.
pub(super) fn put_seqadj(out: &mut Vec<u8>, ty: CtaAttr, s: &SeqAdj) {
    let n = begin_nest(out, ty.0);
    put_be32(out, CTA_SEQADJ_CORRECTION_POS.0, s.correction_pos);
    put_be32(out, CTA_SEQADJ_OFFSET_BEFORE.0, s.offset_before);
    put_be32(out, CTA_SEQADJ_OFFSET_AFTER.0, s.offset_after);
    end_nest(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::nla::Attrs;

    #[test]
    fn round_trip() {
        let s = SeqAdj {
            correction_pos: 1,
            offset_before: 2,
            offset_after: u32::MAX,
        };
        let mut out = Vec::new();
        put_seqadj(&mut out, CTA_SEQ_ADJ_REPLY, &s);
        let a = Attrs::new(&out, 0).next().unwrap().unwrap();
        assert_eq!(decode(&a), Ok(s));
    }
}
