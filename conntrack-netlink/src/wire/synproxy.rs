//! SYN proxy state (`CTA_SYNPROXY`): initial sequence number, initial
//! timestamp and timestamp offset, be32.
//!
//! The decoder and the encoder (no fast path: the kernel emits it only
//! for flows a SYNPROXY target handled).

use super::attr::*;
use super::encode::{begin_nest, end_nest, put_be32};
use super::error::DecodeError;
use super::fast::{be32, hdr, word};
use super::nla::{Attr, for_each};
use conntrack_core::Synproxy;

/// Decodes a `CTA_SYNPROXY` nest.
pub(super) fn decode(a: &Attr<'_>) -> Result<Synproxy, DecodeError> {
    let mut s = Synproxy::default();
    for_each(a, Space::Conntrack, |x| {
        const S: Space = Space::Synproxy;
        match CtaSynproxyAttr(x.ty()) {
            CTA_SYNPROXY_ISN => s.isn = x.be32(S)?,
            CTA_SYNPROXY_ITS => s.its = x.be32(S)?,
            CTA_SYNPROXY_TSOFF => s.tsoff = x.be32(S)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

/// Appends a `CTA_SYNPROXY` nest.
/// The kernel's layout (`ctnetlink_dump_ct_synproxy`,
/// `net/netfilter/nf_conntrack_netlink.c`: ISN, ITS, TSOFF, each a
/// 32-bit value), or `None` for the general path (see `fast.rs`).
#[inline(always)]
pub(super) fn decode_fast(v: &[u8]) -> Option<Synproxy> {
    let b = <&[u8; 24]>::try_from(v).ok()?;
    let ok = word(b, 0) == hdr(8, CTA_SYNPROXY_ISN.0)
        && word(b, 8) == hdr(8, CTA_SYNPROXY_ITS.0)
        && word(b, 16) == hdr(8, CTA_SYNPROXY_TSOFF.0);
    ok.then(|| Synproxy {
        isn: be32(b, 4),
        its: be32(b, 12),
        tsoff: be32(b, 20),
    })
}

pub(super) fn put_synproxy(out: &mut Vec<u8>, s: &Synproxy) {
    let n = begin_nest(out, CTA_SYNPROXY.0);
    put_be32(out, CTA_SYNPROXY_ISN.0, s.isn);
    put_be32(out, CTA_SYNPROXY_ITS.0, s.its);
    put_be32(out, CTA_SYNPROXY_TSOFF.0, s.tsoff);
    end_nest(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::nla::Attrs;

    #[test]
    fn round_trip() {
        let s = Synproxy {
            isn: 1,
            its: 2,
            tsoff: 3,
        };
        let mut out = Vec::new();
        put_synproxy(&mut out, &s);
        let a = Attrs::new(&out, 0).next().unwrap().unwrap();
        assert_eq!(decode(&a), Ok(s));
        assert_eq!(decode_fast(a.value()), Some(s));
    }

    /// Another order or an extra attribute is left to the general path.
    #[test]
    fn other_layouts_are_not_the_fast_one() {
        let mut out = Vec::new();
        let n = begin_nest(&mut out, CTA_SYNPROXY.0);
        put_be32(&mut out, CTA_SYNPROXY_ITS.0, 2);
        put_be32(&mut out, CTA_SYNPROXY_ISN.0, 1);
        put_be32(&mut out, CTA_SYNPROXY_TSOFF.0, 3);
        end_nest(&mut out, n);
        let a = Attrs::new(&out, 0).next().unwrap().unwrap();
        assert_eq!(decode_fast(a.value()), None);
        let want = Synproxy {
            isn: 1,
            its: 2,
            tsoff: 3,
        };
        assert_eq!(decode(&a), Ok(want));
        put_be32(&mut out, CTA_SYNPROXY_ISN.0, 1);
        assert_eq!(decode_fast(&out[4..]), None);
    }
}
