//! Nests that carry one name: the helper (`CTA_HELP` / `CTA_HELP_NAME`)
//! and the security context (`CTA_SECCTX` / `CTA_SECCTX_NAME`), each a
//! NUL-terminated string. The decoded name borrows from the buffer.
//!
//! The decoder and the encoder (no fast path: the strings vary in
//! length).

use super::attr::*;
use super::encode::{begin_nest, end_nest, put_str};
use super::error::{DecodeError, ErrorKind};
use super::nla::{Attr, for_each};

/// A string in a nest (`CTA_HELP_NAME`, `CTA_SECCTX_NAME`, both type 1).
pub(super) fn decode<'a>(a: &Attr<'a>) -> Result<&'a str, DecodeError> {
    const NAME: u16 = CTA_HELP_NAME.0;
    const _: () = assert!(CTA_SECCTX_NAME.0 == NAME);
    let child = Space::Conntrack.child(a.ty());
    let mut name = None;
    for_each(a, Space::Conntrack, |x| {
        if x.ty() == NAME {
            name = Some(x.str(child)?);
        }
        Ok(())
    })?;
    name.ok_or_else(|| {
        DecodeError::at(a.offset(), child, NAME, ErrorKind::Missing)
            .within(Space::Conntrack, a.ty())
    })
}

/// Appends a nest of type `ty` holding `name`.
pub(super) fn put_named(out: &mut Vec<u8>, ty: CtaAttr, name: &str) {
    let n = begin_nest(out, ty.0);
    // CTA_HELP_NAME and CTA_SECCTX_NAME are both 1.
    put_str(out, CTA_HELP_NAME.0, name);
    end_nest(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::nla::Attrs;

    #[test]
    fn round_trip_and_missing_name() {
        let mut out = Vec::new();
        put_named(&mut out, CTA_SECCTX, "system_u:object_r:x:s0");
        let a = Attrs::new(&out, 0).next().unwrap().unwrap();
        assert_eq!(decode(&a), Ok("system_u:object_r:x:s0"));
        let empty = [4, 0, CTA_HELP.0 as u8, 0x80];
        let a = Attrs::new(&empty, 0).next().unwrap().unwrap();
        let e = decode(&a).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Missing);
        assert_eq!(e.path.to_string(), "CTA_HELP/CTA_HELP_NAME");
    }
}
