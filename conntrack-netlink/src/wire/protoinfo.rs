//! Protocol information (`CTA_PROTOINFO`): one nest for TCP
//! (`CTA_PROTOINFO_TCP`: state, window scales, flags), SCTP (state,
//! verification tags) or DCCP (state, role, handshake sequence).
//!
//! The general decoder, the fast path for the TCP layout the kernel emits
//! (see `fast.rs`) and the encoder.

use super::attr::*;
use super::encode::{Pad64, begin_nest, end_nest, put_attr, put_be32, put_be64_pad, put_u8};
use super::error::DecodeError;
use super::fast::{hdr, word};
use super::nla::{Attr, for_each};
use conntrack_core::{
    DccpInfo, DccpState, ProtoInfo, SctpInfo, SctpState, TcpFlags, TcpInfo, TcpState,
};

/// Decodes a `CTA_PROTOINFO` nest (general path); `None` for a protocol
/// this crate does not know.
#[inline(always)]
pub(super) fn decode(a: &Attr<'_>) -> Result<Option<ProtoInfo>, DecodeError> {
    let mut out = None;
    for_each(a, Space::Conntrack, |p| {
        const P: Space = Space::Protoinfo;
        match CtaProtoinfoAttr(p.ty()) {
            CTA_PROTOINFO_TCP => {
                let mut t = TcpInfo::default();
                for_each(p, P, |x| {
                    const S: Space = Space::ProtoinfoTcp;
                    match CtaProtoinfoTcpAttr(x.ty()) {
                        CTA_PROTOINFO_TCP_STATE => t.state = TcpState(x.u8(S)?),
                        CTA_PROTOINFO_TCP_WSCALE_ORIGINAL => t.wscale_orig = Some(x.u8(S)?),
                        CTA_PROTOINFO_TCP_WSCALE_REPLY => t.wscale_reply = Some(x.u8(S)?),
                        CTA_PROTOINFO_TCP_FLAGS_ORIGINAL => {
                            let [flags, mask] = x.array::<2>(S)?;
                            t.flags_orig = Some(TcpFlags { flags, mask });
                        }
                        CTA_PROTOINFO_TCP_FLAGS_REPLY => {
                            let [flags, mask] = x.array::<2>(S)?;
                            t.flags_reply = Some(TcpFlags { flags, mask });
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
                out = Some(ProtoInfo::Tcp(t));
            }
            CTA_PROTOINFO_SCTP => {
                let mut s = SctpInfo::default();
                for_each(p, P, |x| {
                    const S: Space = Space::ProtoinfoSctp;
                    match CtaProtoinfoSctpAttr(x.ty()) {
                        CTA_PROTOINFO_SCTP_STATE => s.state = SctpState(x.u8(S)?),
                        CTA_PROTOINFO_SCTP_VTAG_ORIGINAL => s.vtag_orig = Some(x.be32(S)?),
                        CTA_PROTOINFO_SCTP_VTAG_REPLY => s.vtag_reply = Some(x.be32(S)?),
                        _ => {}
                    }
                    Ok(())
                })?;
                out = Some(ProtoInfo::Sctp(s));
            }
            CTA_PROTOINFO_DCCP => {
                let mut d = DccpInfo::default();
                for_each(p, P, |x| {
                    const S: Space = Space::ProtoinfoDccp;
                    match CtaProtoinfoDccpAttr(x.ty()) {
                        CTA_PROTOINFO_DCCP_STATE => d.state = DccpState(x.u8(S)?),
                        CTA_PROTOINFO_DCCP_ROLE => d.role = Some(x.u8(S)?),
                        CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ => d.handshake_seq = Some(x.be64(S)?),
                        _ => {}
                    }
                    Ok(())
                })?;
                out = Some(ProtoInfo::Dccp(d));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

/// A protoinfo nest's payload holding the TCP nest with all five
/// attributes in the kernel's order.
#[inline(always)]
pub(super) fn decode_fast_tcp(v: &[u8]) -> Option<TcpInfo> {
    let b = <&[u8; 44]>::try_from(v).ok()?;
    let ok = word(b, 0) == hdr(44, CTA_PROTOINFO_TCP.0)
        && word(b, 4) == hdr(5, CTA_PROTOINFO_TCP_STATE.0)
        && word(b, 12) == hdr(5, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL.0)
        && word(b, 20) == hdr(5, CTA_PROTOINFO_TCP_WSCALE_REPLY.0)
        && word(b, 28) == hdr(6, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL.0)
        && word(b, 36) == hdr(6, CTA_PROTOINFO_TCP_FLAGS_REPLY.0);
    ok.then(|| {
        TcpInfo::new(TcpState(b[8]))
            .with_wscale(b[16], b[24])
            .with_flags(
                TcpFlags {
                    flags: b[32],
                    mask: b[33],
                },
                TcpFlags {
                    flags: b[40],
                    mask: b[41],
                },
            )
    })
}

/// Appends a `CTA_PROTOINFO` nest.
pub fn put_protoinfo(out: &mut Vec<u8>, p: &ProtoInfo, pad: Pad64) {
    // Core's `ProtoInfo` may gain protocols this encoder does not know
    // yet: those send nothing rather than an empty nest.
    if !matches!(
        p,
        ProtoInfo::Tcp(_) | ProtoInfo::Sctp(_) | ProtoInfo::Dccp(_)
    ) {
        return;
    }
    let n = begin_nest(out, CTA_PROTOINFO.0);
    match p {
        ProtoInfo::Tcp(t) => {
            let m = begin_nest(out, CTA_PROTOINFO_TCP.0);
            put_u8(out, CTA_PROTOINFO_TCP_STATE.0, t.state.0);
            if let Some(w) = t.wscale_orig {
                put_u8(out, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL.0, w);
            }
            if let Some(w) = t.wscale_reply {
                put_u8(out, CTA_PROTOINFO_TCP_WSCALE_REPLY.0, w);
            }
            if let Some(f) = t.flags_orig {
                put_attr(out, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL.0, &[f.flags, f.mask]);
            }
            if let Some(f) = t.flags_reply {
                put_attr(out, CTA_PROTOINFO_TCP_FLAGS_REPLY.0, &[f.flags, f.mask]);
            }
            end_nest(out, m);
        }
        ProtoInfo::Sctp(s) => {
            let m = begin_nest(out, CTA_PROTOINFO_SCTP.0);
            put_u8(out, CTA_PROTOINFO_SCTP_STATE.0, s.state.0);
            if let Some(v) = s.vtag_orig {
                put_be32(out, CTA_PROTOINFO_SCTP_VTAG_ORIGINAL.0, v);
            }
            if let Some(v) = s.vtag_reply {
                put_be32(out, CTA_PROTOINFO_SCTP_VTAG_REPLY.0, v);
            }
            end_nest(out, m);
        }
        ProtoInfo::Dccp(d) => {
            let m = begin_nest(out, CTA_PROTOINFO_DCCP.0);
            put_u8(out, CTA_PROTOINFO_DCCP_STATE.0, d.state.0);
            if let Some(r) = d.role {
                put_u8(out, CTA_PROTOINFO_DCCP_ROLE.0, r);
            }
            if let Some(s) = d.handshake_seq {
                put_be64_pad(
                    out,
                    CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ.0,
                    s,
                    CTA_PROTOINFO_DCCP_PAD.0,
                    pad,
                );
            }
            end_nest(out, m);
        }
        _ => {}
    }
    end_nest(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::nla::Attrs;

    fn round_trip(p: &ProtoInfo) -> (Vec<u8>, Option<ProtoInfo>) {
        let mut out = vec![0; 4]; // as after an nfgenmsg
        put_protoinfo(&mut out, p, Pad64::Aligned);
        let a = Attrs::new(&out[4..], 4).next().unwrap().unwrap();
        let got = decode(&a).unwrap();
        (out, got)
    }

    #[test]
    fn every_protocol_round_trips() {
        let tcp = ProtoInfo::Tcp(
            TcpInfo::new(TcpState::ESTABLISHED)
                .with_wscale(7, 9)
                .with_flags(
                    TcpFlags {
                        flags: 0x23,
                        mask: 0x23,
                    },
                    TcpFlags {
                        flags: 0x33,
                        mask: 0x33,
                    },
                ),
        );
        let sctp = ProtoInfo::Sctp(SctpInfo::new(SctpState::ESTABLISHED).with_vtags(1, 2));
        let dccp = ProtoInfo::Dccp(DccpInfo::new(DccpState(3)).with_role(1, u64::MAX));
        for p in [tcp, sctp, dccp] {
            assert_eq!(round_trip(&p).1, Some(p));
        }
        // The kernel's TCP layout takes the fast path, to the same value.
        let (out, _) = round_trip(&tcp);
        let a = Attrs::new(&out[4..], 4).next().unwrap().unwrap();
        assert_eq!(decode_fast_tcp(a.value()).map(ProtoInfo::Tcp), Some(tcp));
    }

    #[test]
    fn state_only_tcp_is_not_the_fast_layout() {
        let p = ProtoInfo::Tcp(TcpInfo::new(TcpState::CLOSE));
        let (out, got) = round_trip(&p);
        assert_eq!(got, Some(p));
        let a = Attrs::new(&out[4..], 4).next().unwrap().unwrap();
        assert_eq!(decode_fast_tcp(a.value()), None);
    }
}
