//! Timestamps (`CTA_TIMESTAMP`, present when `nf_conntrack_timestamp` is
//! on): `CTA_TIMESTAMP_START` and, once the entry is dying,
//! `CTA_TIMESTAMP_STOP`, be64 nanoseconds of wall-clock time, with
//! `CTA_TIMESTAMP_PAD` where the architecture needs 64-bit alignment.
//!
//! The general decoder, the fast path for the kernel's layouts (see
//! `fast.rs`) and the encoder.

use super::attr::*;
use super::encode::{Pad64, begin_nest, end_nest, put_be64_pad};
use super::error::DecodeError;
use super::fast::{be64, hdr, word};
use super::nla::{Attr, for_each};
use conntrack_core::Timestamp;

/// Decodes a `CTA_TIMESTAMP` nest (general path: any order, unknown and
/// padding attributes skipped, every length checked).
#[inline(always)]
pub(super) fn decode(a: &Attr<'_>) -> Result<Timestamp, DecodeError> {
    let mut t = Timestamp::default();
    for_each(a, Space::Conntrack, |x| {
        const S: Space = Space::Timestamp;
        match CtaTimestampAttr(x.ty()) {
            CTA_TIMESTAMP_START => t.start = x.be64(S)?,
            CTA_TIMESTAMP_STOP => t.stop = Some(x.be64(S)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(t)
}

/// A timestamp nest's payload: `CTA_TIMESTAMP_START`, then maybe
/// `CTA_TIMESTAMP_STOP`.
#[inline(always)]
pub(super) fn decode_fast(v: &[u8]) -> Option<Timestamp> {
    match v.len() {
        12 => {
            let b = <&[u8; 12]>::try_from(v).ok()?;
            (word(b, 0) == hdr(12, CTA_TIMESTAMP_START.0)).then(|| Timestamp {
                start: be64(b, 4),
                stop: None,
            })
        }
        24 => {
            let b = <&[u8; 24]>::try_from(v).ok()?;
            let ok = word(b, 0) == hdr(12, CTA_TIMESTAMP_START.0)
                && word(b, 12) == hdr(12, CTA_TIMESTAMP_STOP.0);
            ok.then(|| Timestamp {
                start: be64(b, 4),
                stop: Some(be64(b, 16)),
            })
        }
        _ => None,
    }
}

/// Appends a `CTA_TIMESTAMP` nest.
pub(super) fn put_timestamp(out: &mut Vec<u8>, t: &Timestamp, pad: Pad64) {
    let n = begin_nest(out, CTA_TIMESTAMP.0);
    put_be64_pad(
        out,
        CTA_TIMESTAMP_START.0,
        t.start,
        CTA_TIMESTAMP_PAD.0,
        pad,
    );
    if let Some(s) = t.stop {
        put_be64_pad(out, CTA_TIMESTAMP_STOP.0, s, CTA_TIMESTAMP_PAD.0, pad);
    }
    end_nest(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::nla::Attrs;

    #[test]
    fn emit_fast_and_general_agree() {
        for t in [
            Timestamp {
                start: 7,
                stop: None,
            },
            Timestamp {
                start: 7,
                stop: Some(9),
            },
        ] {
            for pad in [Pad64::None, Pad64::Aligned] {
                let mut out = vec![0; 4]; // as after an nfgenmsg
                put_timestamp(&mut out, &t, pad);
                let a = Attrs::new(&out[4..], 4).next().unwrap().unwrap();
                assert_eq!(decode(&a), Ok(t), "{pad:?}");
                let fast = decode_fast(a.value());
                assert_eq!(fast, (pad == Pad64::None).then_some(t), "{pad:?}");
            }
        }
    }
}
