//! One rule of a [`FilterSet`](super::FilterSet): conditions on a flow's
//! family, protocol, zone, mark, status and on its original and reply
//! tuples (addresses as networks, ports, ICMP fields), all of which must
//! hold, plus an optional predicate.
//!
//! [`Rule::matches`] is the definition of what a rule selects: a direct,
//! field by field check. The set's index ([`super::set`]) must agree with
//! it on every flow; the property tests compare the two.

use crate::filter::{Filter, TupleFilter};
use crate::wire::FlowView;
use conntrack_core::{FlowLike, L3Family, L4Proto, Status, Tuple};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// An address or a network: `10.96.0.10` (a single address, /32),
/// `10.244.0.0/16`, `fd00::/64`. Host bits below the prefix are cleared,
/// as Go's `net.ParseCIDR` and the `ip` tool do.
///
/// ```
/// use conntrack_netlink::bulk::Cidr;
/// let n: Cidr = "10.244.1.7/16".parse().unwrap();
/// assert_eq!(n.to_string(), "10.244.0.0/16");
/// assert!(n.contains(&"10.244.200.1".parse().unwrap()));
/// assert!(!n.contains(&"10.245.0.1".parse().unwrap()));
/// assert!(!n.contains(&"::1".parse().unwrap())); // another family
/// let host: Cidr = "10.96.0.10".parse().unwrap();
/// assert!(host.is_host());
/// assert_eq!(host.to_string(), "10.96.0.10");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network of `addr` with `prefix` leading bits (host bits
    /// cleared); `None` when the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = Self::max_prefix(&addr);
        if prefix > max {
            return None;
        }
        let bits = addr_bits(&addr) & prefix_mask(prefix);
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((bits >> 96) as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
        };
        Some(Cidr { addr, prefix })
    }

    /// One address (a /32 or /128).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            prefix: Self::max_prefix(&addr),
            addr,
        }
    }

    fn max_prefix(addr: &IpAddr) -> u8 {
        if addr.is_ipv4() { 32 } else { 128 }
    }

    /// The network address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether this is a single address.
    pub fn is_host(&self) -> bool {
        self.prefix == Self::max_prefix(&self.addr)
    }

    /// The address family.
    pub fn family(&self) -> L3Family {
        family_of(&self.addr)
    }

    /// Whether `a` is in the network (never for an address of the other
    /// family).
    pub fn contains(&self, a: &IpAddr) -> bool {
        a.is_ipv4() == self.addr.is_ipv4()
            && addr_bits(a) & prefix_mask(self.prefix) == addr_bits(&self.addr)
    }
}

impl From<IpAddr> for Cidr {
    fn from(a: IpAddr) -> Self {
        Cidr::host(a)
    }
}

impl fmt::Display for Cidr {
    /// The address alone for a single address, else `addr/prefix`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// The bits of an address as the set's index keys them: IPv4 in the top
/// 32 bits of a `u128`, IPv6 as it is. Prefix masks then work the same
/// for both families.
pub(crate) fn addr_bits(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(*v)) << 96,
        IpAddr::V6(v) => u128::from(*v),
    }
}

/// The leading `prefix` bits set.
pub(crate) fn prefix_mask(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => u128::MAX,
        p => u128::MAX << (128 - u32::from(p)),
    }
}

pub(crate) fn family_of(a: &IpAddr) -> L3Family {
    if a.is_ipv4() {
        L3Family::INET
    } else {
        L3Family::INET6
    }
}

/// Conditions on one tuple of a flow (original or reply direction). Every
/// condition that is set must hold. Port conditions select flows whose
/// tuple carries ports (TCP, UDP, UDP-Lite, SCTP, DCCP; GRE keys), ICMP
/// conditions flows whose tuple carries ICMP fields.
///
/// ```
/// use conntrack_netlink::bulk::TupleRule;
/// let t = TupleRule::new().dst("10.96.0.10".parse::<std::net::IpAddr>().unwrap()).dst_port(53);
/// assert!(!t.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TupleRule {
    /// The source address is in this network.
    pub src: Option<Cidr>,
    /// The destination address is in this network.
    pub dst: Option<Cidr>,
    /// Source port.
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
    /// ICMP (or ICMPv6) type.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
    /// ICMP echo identifier.
    pub icmp_id: Option<u16>,
}

impl TupleRule {
    /// No conditions.
    pub fn new() -> Self {
        Self::default()
    }
    /// The source address is in `net` (an address converts to a single-address network).
    pub fn src(mut self, net: impl Into<Cidr>) -> Self {
        self.src = Some(net.into());
        self
    }
    /// The destination address is in `net`.
    pub fn dst(mut self, net: impl Into<Cidr>) -> Self {
        self.dst = Some(net.into());
        self
    }
    /// Source port.
    pub fn src_port(mut self, p: u16) -> Self {
        self.src_port = Some(p);
        self
    }
    /// Destination port.
    pub fn dst_port(mut self, p: u16) -> Self {
        self.dst_port = Some(p);
        self
    }
    /// ICMP type, code and echo id (each optional).
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

    /// Whether a port condition is set.
    pub fn has_ports(&self) -> bool {
        self.src_port.is_some() || self.dst_port.is_some()
    }

    /// Whether an ICMP condition is set.
    pub fn has_icmp(&self) -> bool {
        self.icmp_type.is_some() || self.icmp_code.is_some() || self.icmp_id.is_some()
    }

    /// Whether `t` satisfies every condition.
    pub fn matches(&self, t: &Tuple) -> bool {
        self.src.is_none_or(|n| n.contains(&t.src))
            && self.dst.is_none_or(|n| n.contains(&t.dst))
            && crate::filter::l4_matches(
                [self.src_port, self.dst_port],
                (self.icmp_type, self.icmp_code, self.icmp_id),
                t,
            )
    }

    /// The family the address conditions imply, if any.
    fn family(&self) -> Option<L3Family> {
        self.src.or(self.dst).map(|n| n.family())
    }

    /// Whether the address conditions agree on one family.
    fn families_agree(&self) -> bool {
        match (self.src, self.dst) {
            (Some(a), Some(b)) => a.family() == b.family(),
            _ => true,
        }
    }
}

/// A predicate on a flow: the escape hatch for conditions the fields of a
/// [`Rule`] cannot say (labels, helper, timeout, TCP state, ...).
pub type Predicate = Arc<dyn Fn(&FlowView<'_>) -> bool + Send + Sync>;

/// One filter of a [`FilterSet`](super::FilterSet): every condition that
/// is set must hold (and the predicate, when there is one, must return
/// true). A rule without any condition matches every flow.
///
/// Its text form (see [`super::syntax`]) is what `examples/clean.rs` reads:
///
/// ```
/// use conntrack_core::L4Proto;
/// use conntrack_netlink::bulk::{Rule, TupleRule};
/// // kube-proxy: UDP entries to Service 10.96.0.10:53 that were DNATed to
/// // the endpoint 10.244.1.7, which is gone.
/// let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
/// let r = Rule::new()
///     .proto(L4Proto::UDP)
///     .orig(TupleRule::new().dst(ip("10.96.0.10")).dst_port(53))
///     .reply(TupleRule::new().src(ip("10.244.1.7")));
/// assert_eq!(r.to_string(), "proto=udp orig-dst=10.96.0.10 orig-dport=53 reply-src=10.244.1.7");
/// assert_eq!(r.to_string().parse::<Rule>().unwrap(), r);
/// ```
#[derive(Clone, Default)]
pub struct Rule {
    /// The flow's family (`L3Family::INET` or `INET6`).
    pub family: Option<L3Family>,
    /// The layer 4 protocol.
    pub proto: Option<L4Proto>,
    /// The flow's zone (`CTA_ZONE`; 0 for flows without one).
    pub zone: Option<u16>,
    /// `(value, mask)`: `mark & mask == value` (value kept masked).
    pub mark: Option<(u32, u32)>,
    /// `(value, mask)`: `status & mask == value` (value kept masked).
    pub status: Option<(Status, Status)>,
    /// Conditions on the original tuple.
    pub orig: TupleRule,
    /// Conditions on the reply tuple.
    pub reply: TupleRule,
    predicate: Option<Predicate>,
}

impl Rule {
    /// A rule without conditions (matches every flow).
    pub fn new() -> Self {
        Self::default()
    }
    /// The flow's family.
    pub fn family(mut self, f: L3Family) -> Self {
        self.family = Some(f);
        self
    }
    /// The layer 4 protocol.
    pub fn proto(mut self, p: L4Proto) -> Self {
        self.proto = Some(p);
        self
    }
    /// The zone.
    pub fn zone(mut self, z: u16) -> Self {
        self.zone = Some(z);
        self
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
    /// Conditions on the original tuple.
    pub fn orig(mut self, t: TupleRule) -> Self {
        self.orig = t;
        self
    }
    /// Conditions on the reply tuple.
    pub fn reply(mut self, t: TupleRule) -> Self {
        self.reply = t;
        self
    }
    /// Adds a predicate, checked after every other condition held. The
    /// set indexes the rule by its other conditions, so a predicate on a
    /// rule with exact conditions costs only for the flows that reach it.
    ///
    /// ```
    /// use conntrack_core::L4Proto;
    /// use conntrack_netlink::bulk::Rule;
    /// // UDP entries with less than 10 s to live.
    /// let r = Rule::new().proto(L4Proto::UDP).predicate(|f| f.timeout().is_some_and(|t| t < 10));
    /// assert!(r.has_predicate());
    /// ```
    pub fn predicate(mut self, p: impl Fn(&FlowView<'_>) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Arc::new(p));
        self
    }

    /// Whether the rule has a predicate.
    pub fn has_predicate(&self) -> bool {
        self.predicate.is_some()
    }

    /// The family every matching flow has: the explicit one, else the one
    /// the address conditions imply.
    pub fn implied_family(&self) -> Option<L3Family> {
        self.family
            .or_else(|| self.orig.family())
            .or_else(|| self.reply.family())
    }

    /// Whether some flow could match: the families of the address
    /// conditions agree with each other and with [`Rule::family`], and
    /// port or ICMP conditions fit the protocol.
    pub fn is_satisfiable(&self) -> bool {
        let fams = [
            self.family,
            self.orig.src.map(|n| n.family()),
            self.orig.dst.map(|n| n.family()),
            self.reply.src.map(|n| n.family()),
            self.reply.dst.map(|n| n.family()),
        ];
        let mut fam = None;
        for f in fams.into_iter().flatten() {
            if *fam.get_or_insert(f) != f {
                return false;
            }
        }
        if !(self.orig.families_agree() && self.reply.families_agree()) {
            return false;
        }
        let ports = self.orig.has_ports() || self.reply.has_ports();
        let icmp = self.orig.has_icmp() || self.reply.has_icmp();
        if ports && icmp {
            return false;
        }
        match self.proto {
            Some(p) if ports => p.has_ports(),
            Some(p) if icmp => p.is_icmp(),
            _ => true,
        }
    }

    /// Whether the rule has only exact conditions the fields say (no
    /// predicate).
    pub fn is_plain(&self) -> bool {
        self.predicate.is_none()
    }

    /// Whether `flow` satisfies every condition: the reference the set's
    /// index agrees with.
    pub fn matches(&self, flow: &FlowView<'_>) -> bool {
        self.matches_fields(flow) && self.predicate.as_ref().is_none_or(|p| p(flow))
    }

    /// [`Rule::matches`] without the predicate, for any flow.
    pub fn matches_fields<F: FlowLike + ?Sized>(&self, flow: &F) -> bool {
        let orig = flow.orig();
        if self.family.is_some_and(|f| orig.family() != f)
            || self.proto.is_some_and(|p| orig.proto != p)
            || self.zone.is_some_and(|z| flow.zone().unwrap_or(0) != z)
        {
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
        (self.orig.is_empty() || self.orig.matches(&orig))
            && (self.reply.is_empty() || self.reply.matches(&flow.reply()))
    }

    /// The same conditions as a kernel [`Filter`] when the kernel can
    /// apply all of them exactly: what a filtered flush may send (the
    /// kernel version decides separately whether it understands them,
    /// [`super::KernelSupport`]). `Err` says which condition it cannot
    /// apply: a predicate, a network shorter than an address, an IPv6
    /// address, ports or ICMP fields without a protocol, or tuple
    /// conditions (a protocol counts) without a family.
    pub fn kernel_filter(&self) -> Result<Filter, &'static str> {
        if self.predicate.is_some() {
            return Err("a predicate: the kernel cannot run it");
        }
        if !self.is_satisfiable() {
            return Err("conditions that contradict each other");
        }
        let family = self.implied_family().unwrap_or(L3Family::UNSPEC);
        let tuple = |t: &TupleRule| -> Result<TupleFilter, &'static str> {
            if t.is_empty() {
                return Ok(TupleFilter::new());
            }
            let addr = |n: Option<Cidr>| match n {
                None => Ok(None),
                Some(n) if n.is_host() => Ok(Some(n.addr())),
                Some(_) => Err("a network: the kernel's filter compares whole addresses"),
            };
            // The kernel applies port and ICMP conditions only with a
            // protocol (see `TupleFilter`).
            if (t.has_ports() || t.has_icmp()) && self.proto.is_none() {
                return Err("ports or ICMP fields without a protocol");
            }
            Ok(TupleFilter {
                src: addr(t.src)?,
                dst: addr(t.dst)?,
                proto: self.proto,
                src_port: t.src_port,
                dst_port: t.dst_port,
                icmp_type: t.icmp_type,
                icmp_code: t.icmp_code,
                icmp_id: t.icmp_id,
            })
        };
        let mut orig = tuple(&self.orig)?;
        let reply = tuple(&self.reply)?;
        // A protocol alone rides on the original tuple's conditions.
        if let Some(p) = self.proto
            && orig.is_empty()
            && reply.is_empty()
        {
            orig = TupleFilter::new().proto(p);
        }
        let tuples = !orig.is_empty() || !reply.is_empty();
        if tuples && family == L3Family::UNSPEC {
            return Err("a protocol or tuple condition without a family (CTA_FILTER needs one)");
        }
        if !(orig.kernel_applies_all(family) && reply.kernel_applies_all(family)) {
            // IPv6 addresses: on 6.18 a CTA_FILTER IPv6 address condition
            // selects the flows that do *not* match (see `TupleFilter`).
            return Err("tuple conditions the kernel does not apply exactly (IPv6 addresses)");
        }
        let mut f = Filter::new(family).orig(orig).reply(reply);
        if let Some((v, m)) = self.mark {
            f = f.mark(v, m);
        }
        if let Some((v, m)) = self.status {
            f = f.status(v, m);
        }
        if let Some(z) = self.zone {
            f = f.zone(z);
        }
        Ok(f)
    }

    /// [`Rule::kernel_filter`], without the reason.
    pub fn as_kernel_filter(&self) -> Option<Filter> {
        self.kernel_filter().ok()
    }
}

impl From<&Filter> for Rule {
    /// The rule selecting what the dump filter selects.
    fn from(f: &Filter) -> Self {
        let tuple = |t: &TupleFilter| TupleRule {
            src: t.src.map(Cidr::host),
            dst: t.dst.map(Cidr::host),
            src_port: t.src_port,
            dst_port: t.dst_port,
            icmp_type: t.icmp_type,
            icmp_code: t.icmp_code,
            icmp_id: t.icmp_id,
        };
        Rule {
            family: (f.family != L3Family::UNSPEC).then_some(f.family),
            proto: f.orig.proto.or(f.reply.proto),
            zone: f.zone,
            mark: f.mark,
            status: f.status,
            orig: tuple(&f.orig),
            reply: tuple(&f.reply),
            predicate: None,
        }
    }
}

impl PartialEq for Rule {
    /// Equal conditions; two predicates are equal only when they are the
    /// same closure.
    fn eq(&self, o: &Rule) -> bool {
        let pred = match (&self.predicate, &o.predicate) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        pred && self.family == o.family
            && self.proto == o.proto
            && self.zone == o.zone
            && self.mark == o.mark
            && self.status == o.status
            && self.orig == o.orig
            && self.reply == o.reply
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({self}")?;
        if self.predicate.is_some() {
            f.write_str(" + predicate")?;
        }
        f.write_str(")")
    }
}
