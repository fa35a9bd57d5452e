//! Dump and flush filters, applied by the kernel where it can and always
//! checked again in user space.
//!
//! Kernel support grew in steps (`net/netfilter/nf_conntrack_netlink.c`):
//! family and `CTA_MARK`/`CTA_MARK_MASK` since 3.x
//! (`ctnetlink_filter_parse_mark`); `CTA_FILTER` over original/reply tuple
//! fields since 5.8 (`ctnetlink_parse_filter`, flag bits `CTA_FILTER_F_*`
//! from `net/netfilter/nf_internals.h`); `CTA_STATUS`/`CTA_STATUS_MASK`
//! since 5.15 (`ctnetlink_filter_parse_status`); `CTA_ZONE` since 6.8
//! ("net: ctnetlink: support filtering by zone"). Older kernels ignore
//! attributes they do not know, and the `NLM_F_DUMP_FILTERED` reply flag
//! only says that *some* filter was applied (a family alone sets it), so
//! [`Filter::matches`] runs on every flow the kernel returns: the result
//! is exact on every kernel, and the kernel side only saves copying.

use crate::error::{Error, Result};
use crate::request::MessageWriter;
use crate::wire::attr::*;
use conntrack_core::{FlowLike, L3Family, L4Proto, L4Tuple, Status, Tuple};
use std::net::IpAddr;

/// Exact-match conditions on one tuple (all that are set must hold).
///
/// Ports apply to protocols with ports, ICMP fields to ICMP/ICMPv6. The
/// kernel applies tuple conditions only when the [`Filter`] has an
/// address family, port and ICMP conditions only together with
/// [`TupleFilter::proto`], and address conditions only for IPv4;
/// everything else is applied in user space only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TupleFilter {
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Layer 4 protocol.
    pub proto: Option<L4Proto>,
    /// Source port.
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
    /// ICMP type.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
    /// ICMP echo id.
    pub icmp_id: Option<u16>,
}

/// Whether the layer 4 part of `t` satisfies the port conditions
/// (`[source, destination]`, on tuples that carry ports) and the ICMP
/// conditions (`(type, code, id)`, on tuples that carry ICMP fields):
/// unset conditions hold, a set one fails on a tuple without the field.
/// The one rule of [`TupleFilter`] and of bulk's `TupleRule`.
pub(crate) fn l4_matches(
    ports: [Option<u16>; 2],
    icmp: (Option<u8>, Option<u8>, Option<u16>),
    t: &Tuple,
) -> bool {
    fn ok<T: PartialEq>(want: Option<T>, have: Option<T>) -> bool {
        want.is_none() || want == have
    }
    let (have_ports, have_icmp) = match t.l4 {
        L4Tuple::Ports { src, dst } => (Some((src, dst)), None),
        L4Tuple::Icmp { kind, code, id } => (None, Some((kind, code, id))),
        L4Tuple::None => (None, None),
    };
    ok(ports[0], have_ports.map(|p| p.0))
        && ok(ports[1], have_ports.map(|p| p.1))
        && ok(icmp.0, have_icmp.map(|i| i.0))
        && ok(icmp.1, have_icmp.map(|i| i.1))
        && ok(icmp.2, have_icmp.map(|i| i.2))
}

impl TupleFilter {
    /// No conditions.
    pub fn new() -> Self {
        Self::default()
    }
    /// Source address must equal `a`.
    pub fn src(mut self, a: IpAddr) -> Self {
        self.src = Some(a);
        self
    }
    /// Destination address must equal `a`.
    pub fn dst(mut self, a: IpAddr) -> Self {
        self.dst = Some(a);
        self
    }
    /// Protocol must equal `p`.
    pub fn proto(mut self, p: L4Proto) -> Self {
        self.proto = Some(p);
        self
    }
    /// Source port must equal `p`.
    pub fn src_port(mut self, p: u16) -> Self {
        self.src_port = Some(p);
        self
    }
    /// Destination port must equal `p`.
    pub fn dst_port(mut self, p: u16) -> Self {
        self.dst_port = Some(p);
        self
    }
    /// ICMP type, code and id must equal these (each optional).
    pub fn icmp(mut self, kind: Option<u8>, code: Option<u8>, id: Option<u16>) -> Self {
        self.icmp_type = kind;
        self.icmp_code = code;
        self.icmp_id = id;
        self
    }

    /// Whether no condition is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether `t` satisfies every condition.
    pub fn matches(&self, t: &Tuple) -> bool {
        self.src.is_none_or(|a| a == t.src)
            && self.dst.is_none_or(|a| a == t.dst)
            && self.proto.is_none_or(|p| p == t.proto)
            && l4_matches(
                [self.src_port, self.dst_port],
                (self.icmp_type, self.icmp_code, self.icmp_id),
                t,
            )
    }

    /// Whether the kernel applies every condition of this filter for
    /// `family`, leaving nothing to the user-space check: what a flush,
    /// which has no such check, needs.
    pub(crate) fn kernel_applies_all(&self, family: L3Family) -> bool {
        let (f, _) = self.kernel_part(family);
        let (t, c, i) = if family == L3Family::INET6 {
            (
                CTA_FILTER_F_CTA_PROTO_ICMPV6_TYPE,
                CTA_FILTER_F_CTA_PROTO_ICMPV6_CODE,
                CTA_FILTER_F_CTA_PROTO_ICMPV6_ID,
            )
        } else {
            (
                CTA_FILTER_F_CTA_PROTO_ICMP_TYPE,
                CTA_FILTER_F_CTA_PROTO_ICMP_CODE,
                CTA_FILTER_F_CTA_PROTO_ICMP_ID,
            )
        };
        let applied = |set: bool, bit: u32| !set || f & bit != 0;
        applied(self.src.is_some(), CTA_FILTER_F_CTA_IP_SRC)
            && applied(self.dst.is_some(), CTA_FILTER_F_CTA_IP_DST)
            && applied(self.proto.is_some(), CTA_FILTER_F_CTA_PROTO_NUM)
            && applied(self.src_port.is_some(), CTA_FILTER_F_CTA_PROTO_SRC_PORT)
            && applied(self.dst_port.is_some(), CTA_FILTER_F_CTA_PROTO_DST_PORT)
            && applied(self.icmp_type.is_some(), t)
            && applied(self.icmp_code.is_some(), c)
            && applied(self.icmp_id.is_some(), i)
    }

    /// The `CTA_FILTER_FLAG` bits the kernel can apply for `family`, and
    /// the tuple to send with them.
    fn kernel_part(&self, family: L3Family) -> (u32, Option<Tuple>) {
        let v6 = family == L3Family::INET6;
        let concrete = family == L3Family::INET || v6;
        let mut f = 0;
        let unspecified = if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        };
        let (mut src, mut dst) = (unspecified, unspecified);
        // IPv6 address conditions stay in user space: on Linux 6.18 a
        // CTA_FILTER IPv6 address condition makes the kernel drop exactly
        // the flows that match (seen in this crate's live tests), and the
        // user-space re-check can only remove flows, not bring them back.
        if family == L3Family::INET {
            if let Some(a) = self.src.filter(|a| a.is_ipv6() == v6) {
                f |= CTA_FILTER_F_CTA_IP_SRC;
                src = a;
            }
            if let Some(a) = self.dst.filter(|a| a.is_ipv6() == v6) {
                f |= CTA_FILTER_F_CTA_IP_DST;
                dst = a;
            }
        }
        let mut l4 = L4Tuple::None;
        let proto = self.proto.unwrap_or(L4Proto(0));
        if let Some(p) = self.proto {
            f |= CTA_FILTER_F_CTA_PROTO_NUM;
            if p.has_ports() && (self.src_port.is_some() || self.dst_port.is_some()) {
                if self.src_port.is_some() {
                    f |= CTA_FILTER_F_CTA_PROTO_SRC_PORT;
                }
                if self.dst_port.is_some() {
                    f |= CTA_FILTER_F_CTA_PROTO_DST_PORT;
                }
                l4 = L4Tuple::Ports {
                    src: self.src_port.unwrap_or(0),
                    dst: self.dst_port.unwrap_or(0),
                };
            } else if p.is_icmp()
                && concrete
                && (p == L4Proto::ICMPV6) == v6
                && (self.icmp_type.is_some() || self.icmp_code.is_some() || self.icmp_id.is_some())
            {
                let (t, c, i) = if v6 {
                    (
                        CTA_FILTER_F_CTA_PROTO_ICMPV6_TYPE,
                        CTA_FILTER_F_CTA_PROTO_ICMPV6_CODE,
                        CTA_FILTER_F_CTA_PROTO_ICMPV6_ID,
                    )
                } else {
                    (
                        CTA_FILTER_F_CTA_PROTO_ICMP_TYPE,
                        CTA_FILTER_F_CTA_PROTO_ICMP_CODE,
                        CTA_FILTER_F_CTA_PROTO_ICMP_ID,
                    )
                };
                f |= self.icmp_type.map_or(0, |_| t)
                    | self.icmp_code.map_or(0, |_| c)
                    | self.icmp_id.map_or(0, |_| i);
                l4 = L4Tuple::Icmp {
                    kind: self.icmp_type.unwrap_or(0),
                    code: self.icmp_code.unwrap_or(0),
                    id: self.icmp_id.unwrap_or(0),
                };
            }
        }
        if f == 0 {
            return (0, None);
        }
        (f, Some(Tuple::new(src, dst, proto, l4)))
    }
}

/// What a filtered dump or flush selects. All conditions that are set
/// must hold.
///
/// ```
/// use conntrack_core::{L3Family, L4Proto, Status};
/// use conntrack_netlink::{Filter, TupleFilter};
/// let f = Filter::new(L3Family::INET)
///     .mark(0x10, 0xff)
///     .status(Status::ASSURED, Status::ASSURED)
///     .orig(TupleFilter::new().proto(L4Proto::TCP).dst_port(443));
/// assert!(f.kernel_flush_ok() == false); // tuple conditions: not in a kernel flush
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Filter {
    /// Address family (`nfgen_family`); `UNSPEC` for both.
    pub family: L3Family,
    /// `(value, mask)`: `mark & mask == value & mask`.
    pub mark: Option<(u32, u32)>,
    /// `(value, mask)`: `status & mask == value & mask`.
    pub status: Option<(Status, Status)>,
    /// The flow's zone (`CTA_ZONE`; 0 for flows without one).
    pub zone: Option<u16>,
    /// Conditions on the original tuple.
    pub orig: TupleFilter,
    /// Conditions on the reply tuple.
    pub reply: TupleFilter,
}

impl Filter {
    /// A filter on the family only (`L3Family::UNSPEC`: both).
    pub fn new(family: L3Family) -> Self {
        Filter {
            family,
            ..Default::default()
        }
    }
    /// `mark & mask == value & mask`.
    pub fn mark(mut self, value: u32, mask: u32) -> Self {
        self.mark = Some((value & mask, mask));
        self
    }
    /// `status & mask == value & mask`.
    pub fn status(mut self, value: Status, mask: Status) -> Self {
        self.status = Some((value & mask, mask));
        self
    }
    /// The flow's zone must be `zone`.
    pub fn zone(mut self, zone: u16) -> Self {
        self.zone = Some(zone);
        self
    }
    /// Conditions on the original tuple.
    pub fn orig(mut self, t: TupleFilter) -> Self {
        self.orig = t;
        self
    }
    /// Conditions on the reply tuple.
    pub fn reply(mut self, t: TupleFilter) -> Self {
        self.reply = t;
        self
    }

    /// Whether `flow` passes every condition.
    pub fn matches<F: FlowLike + ?Sized>(&self, flow: &F) -> bool {
        let orig = flow.orig();
        if self.family != L3Family::UNSPEC && orig.family() != self.family {
            return false;
        }
        if let Some((v, m)) = self.mark
            && flow.mark().unwrap_or(0) & m != v
        {
            return false;
        }
        if let Some((v, m)) = self.status
            && flow.status() & m != v
        {
            return false;
        }
        if let Some(z) = self.zone
            && flow.zone().unwrap_or(0) != z
        {
            return false;
        }
        (self.orig.is_empty() || self.orig.matches(&orig))
            && (self.reply.is_empty() || self.reply.matches(&flow.reply()))
    }

    /// Whether a kernel flush (`CT_DELETE` without a tuple) can apply this
    /// filter: the kernel refuses `CTA_FILTER` there (`EOPNOTSUPP`), so
    /// tuple conditions need a dump and per-flow deletes instead.
    pub fn kernel_flush_ok(&self) -> bool {
        self.orig.is_empty() && self.reply.is_empty()
    }

    /// Whether the filter selects everything of its family.
    pub fn is_family_only(&self) -> bool {
        self.mark.is_none()
            && self.status.is_none()
            && self.zone.is_none()
            && self.orig.is_empty()
            && self.reply.is_empty()
    }

    pub(crate) fn check(&self) -> Result<()> {
        for a in [self.orig.src, self.orig.dst, self.reply.src, self.reply.dst]
            .into_iter()
            .flatten()
        {
            let fam = if a.is_ipv6() {
                L3Family::INET6
            } else {
                L3Family::INET
            };
            if self.family != L3Family::UNSPEC && self.family != fam {
                return Err(Error::InvalidRequest(
                    "a filter address must be of the filter's family",
                ));
            }
        }
        Ok(())
    }

    /// Writes the filter attributes the kernel understands. With
    /// `with_tuples` false (flush), `CTA_FILTER` is left out.
    pub(crate) fn write(&self, w: &mut MessageWriter<'_>, with_tuples: bool) {
        if let Some((v, m)) = self.mark {
            w.put_u32_be(CTA_MARK.0, v);
            w.put_u32_be(CTA_MARK_MASK.0, m);
        }
        if let Some((v, m)) = self.status {
            w.put_u32_be(CTA_STATUS.0, v.bits());
            w.put_u32_be(CTA_STATUS_MASK.0, m.bits());
        }
        if let Some(z) = self.zone {
            w.put_u16_be(CTA_ZONE.0, z);
        }
        // CTA_FILTER needs a concrete family: the kernel parses the
        // filter tuple by `nfgen_family` and answers EOPNOTSUPP for
        // AF_UNSPEC (checked on 6.18). Without one, user space filters.
        if !with_tuples || self.family == L3Family::UNSPEC {
            return;
        }
        let (of, ot) = self.orig.kernel_part(self.family);
        let (rf, rt) = self.reply.kernel_part(self.family);
        if of == 0 && rf == 0 {
            return;
        }
        // The flags are NLA_U32, host order (`cta_filter_nla_policy`).
        let n = w.begin_nest(CTA_FILTER.0);
        w.put_u32(CTA_FILTER_ORIG_FLAGS.0, of);
        w.put_u32(CTA_FILTER_REPLY_FLAGS.0, rf);
        w.end_nest(n);
        if let Some(t) = ot {
            w.put_tuple(CTA_TUPLE_ORIG, &t);
        }
        if let Some(t) = rt {
            w.put_tuple(CTA_TUPLE_REPLY, &t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support;
    use conntrack_core::{Flow, TcpState};

    /// An established TCP flow `src`:1000 -> 10.9.9.9:`dport` marked `mark`.
    fn flow(src: &str, dport: u16, mark: u32) -> Flow {
        let mut f = support::tcp(src, 1000, "10.9.9.9", dport, TcpState::ESTABLISHED);
        f.mark = Some(mark);
        f
    }

    #[test]
    fn user_space_matching() {
        let f = flow("10.0.0.1", 443, 0x12);
        assert!(Filter::new(L3Family::UNSPEC).matches(&f));
        assert!(!Filter::new(L3Family::INET6).matches(&f));
        assert!(Filter::new(L3Family::INET).mark(0x2, 0xf).matches(&f));
        assert!(!Filter::new(L3Family::INET).mark(0x3, 0xf).matches(&f));
        assert!(
            Filter::new(L3Family::INET)
                .status(Status::ASSURED, Status::ASSURED)
                .matches(&f)
        );
        assert!(
            !Filter::new(L3Family::INET)
                .status(Status::empty(), Status::ASSURED)
                .matches(&f)
        );
        assert!(Filter::new(L3Family::INET).zone(0).matches(&f));
        assert!(!Filter::new(L3Family::INET).zone(1).matches(&f));
        let t = TupleFilter::new().proto(L4Proto::TCP).dst_port(443);
        assert!(Filter::new(L3Family::INET).orig(t).matches(&f));
        assert!(!Filter::new(L3Family::INET).reply(t).matches(&f));
        assert!(
            Filter::new(L3Family::INET)
                .reply(TupleFilter::new().src_port(443))
                .matches(&f)
        );
        assert!(
            !Filter::new(L3Family::INET)
                .orig(TupleFilter::new().src("10.0.0.2".parse().unwrap()))
                .matches(&f)
        );
    }

    #[test]
    fn kernel_flags() {
        let t = TupleFilter::new()
            .src("10.0.0.1".parse().unwrap())
            .proto(L4Proto::UDP)
            .dst_port(53);
        let (f, tup) = t.kernel_part(L3Family::INET);
        assert_eq!(
            f,
            CTA_FILTER_F_CTA_IP_SRC | CTA_FILTER_F_CTA_PROTO_NUM | CTA_FILTER_F_CTA_PROTO_DST_PORT
        );
        assert_eq!(tup.unwrap().dst_port(), Some(53));
        // No family: addresses stay in user space.
        let (f, _) = t.kernel_part(L3Family::UNSPEC);
        assert_eq!(
            f,
            CTA_FILTER_F_CTA_PROTO_NUM | CTA_FILTER_F_CTA_PROTO_DST_PORT
        );
        // IPv6 addresses too (see kernel_part).
        let t6 = TupleFilter::new()
            .src("fd00::1".parse().unwrap())
            .proto(L4Proto::TCP);
        assert_eq!(
            t6.kernel_part(L3Family::INET6).0,
            CTA_FILTER_F_CTA_PROTO_NUM
        );
        // Ports without a protocol: user space only.
        assert_eq!(
            TupleFilter::new().dst_port(1).kernel_part(L3Family::INET).0,
            0
        );
        assert!(
            Filter::new(L3Family::INET6)
                .orig(TupleFilter::new().src("10.0.0.1".parse().unwrap()))
                .check()
                .is_err()
        );
    }
}
