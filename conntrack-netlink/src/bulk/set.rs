//! [`FilterSet`]: many [`Rule`]s, matched against a flow with a few hash
//! lookups whatever their number.
//!
//! How: every condition a rule can have is a masked comparison on one of
//! twelve 64-bit words describing the flow (`Fields`): family, protocol,
//! zone and mark; status and which tuples carry ports or ICMP fields;
//! ports; ICMP fields; the four addresses (IPv4 in the top bits, so a
//! network is a prefix mask in either family). A rule is thus a mask and a
//! value; rules with the same mask (the same *shape*: the same fields,
//! the same prefix lengths, the same mark and status masks) go to one hash
//! table keyed by the masked words. Matching a flow takes one lookup per
//! shape: mask the flow's words, hash, look up. This is tuple space search
//! (Srinivasan, Suri and Varghese, SIGCOMM 1999), with the shape count as
//! the cost: kube-proxy's cleanup filters come in two to four shapes
//! whether there are ten of them or thirty thousand.
//!
//! The tables hold 64-bit fingerprints of the masked words, not the words:
//! a hit is confirmed with [`Rule::matches`] (which also runs a rule's
//! predicate), so a fingerprint collision costs one check, never a wrong
//! answer. Hits are rare in a dump (the matched flows), misses cost one
//! probe each.

use super::rule::{Rule, addr_bits, prefix_mask};
use crate::wire::FlowView;
use conntrack_core::{FlowLike, L3Family, L4Tuple};
use rustc_hash::FxHashMap;
use std::collections::HashMap;

/// Words describing a flow for the index.
const WORDS: usize = 12;

/// The flow's words: see the module documentation. Word layout:
///
/// | word | bits |
/// |---|---|
/// | 0 | family (63..56), protocol (55..48), zone (47..32), mark (31..0) |
/// | 1 | status (63..32), presence bits (3..0): orig ports, orig ICMP, reply ports, reply ICMP |
/// | 2 | orig sport, orig dport, reply sport, reply dport (16 bits each) |
/// | 3 | orig ICMP type, code, id; reply ICMP type, code, id (8, 8, 16 bits each) |
/// | 4..=11 | orig src, orig dst, reply src, reply dst: 128 bits each (IPv4 in the top 32) |
type Fields = [u64; WORDS];

const ORIG_PORTS: u64 = 1;
const ORIG_ICMP: u64 = 2;
const REPLY_PORTS: u64 = 4;
const REPLY_ICMP: u64 = 8;

fn fields<F: FlowLike + ?Sized>(flow: &F) -> Fields {
    let (o, r) = (flow.orig(), flow.reply());
    let mut w = [0u64; WORDS];
    w[0] = u64::from(o.family().0) << 56
        | u64::from(o.proto.0) << 48
        | u64::from(flow.zone().unwrap_or(0)) << 32
        | u64::from(flow.mark().unwrap_or(0));
    let (mut presence, mut ports, mut icmp) = (0u64, 0u64, 0u64);
    for (t, shift, p_bit, i_bit) in [
        (&o, 32, ORIG_PORTS, ORIG_ICMP),
        (&r, 0, REPLY_PORTS, REPLY_ICMP),
    ] {
        match t.l4 {
            L4Tuple::Ports { src, dst } => {
                presence |= p_bit;
                ports |= (u64::from(src) << 16 | u64::from(dst)) << shift;
            }
            L4Tuple::Icmp { kind, code, id } => {
                presence |= i_bit;
                icmp |= (u64::from(kind) << 24 | u64::from(code) << 16 | u64::from(id)) << shift;
            }
            L4Tuple::None => {}
        }
    }
    w[1] = u64::from(flow.status().bits()) << 32 | presence;
    w[2] = ports;
    w[3] = icmp;
    for (i, a) in [o.src, o.dst, r.src, r.dst].iter().enumerate() {
        let b = addr_bits(a);
        w[4 + 2 * i] = (b >> 64) as u64;
        w[5 + 2 * i] = b as u64;
    }
    w
}

/// A rule's mask and value over [`Fields`]; `None` for a rule no flow can
/// satisfy.
fn compile(rule: &Rule) -> Option<(Fields, Fields)> {
    if !rule.is_satisfiable() {
        return None;
    }
    let (mut m, mut v) = ([0u64; WORDS], [0u64; WORDS]);
    let mut put = |word: usize, mask: u64, value: u64| {
        m[word] |= mask;
        v[word] |= value & mask;
    };
    if let Some(f) = rule.implied_family() {
        put(0, 0xff << 56, u64::from(f.0) << 56);
    }
    if let Some(p) = rule.proto {
        put(0, 0xff << 48, u64::from(p.0) << 48);
    }
    if let Some(z) = rule.zone {
        put(0, 0xffff << 32, u64::from(z) << 32);
    }
    if let Some((val, mask)) = rule.mark {
        put(0, u64::from(mask), u64::from(val));
    }
    if let Some((val, mask)) = rule.status {
        put(1, u64::from(mask.bits()) << 32, u64::from(val.bits()) << 32);
    }
    for (t, shift, p_bit, i_bit, addr_word) in [
        (&rule.orig, 32, ORIG_PORTS, ORIG_ICMP, 4),
        (&rule.reply, 0, REPLY_PORTS, REPLY_ICMP, 8),
    ] {
        if t.has_ports() {
            put(1, p_bit, p_bit);
        }
        if t.has_icmp() {
            put(1, i_bit, i_bit);
        }
        if let Some(p) = t.src_port {
            put(2, 0xffff << (16 + shift), u64::from(p) << (16 + shift));
        }
        if let Some(p) = t.dst_port {
            put(2, 0xffff << shift, u64::from(p) << shift);
        }
        if let Some(x) = t.icmp_type {
            put(3, 0xff << (24 + shift), u64::from(x) << (24 + shift));
        }
        if let Some(x) = t.icmp_code {
            put(3, 0xff << (16 + shift), u64::from(x) << (16 + shift));
        }
        if let Some(x) = t.icmp_id {
            put(3, 0xffff << shift, u64::from(x) << shift);
        }
        for (net, word) in [(t.src, addr_word), (t.dst, addr_word + 2)] {
            if let Some(n) = net {
                let (mask, bits) = (prefix_mask(n.prefix()), addr_bits(&n.addr()));
                put(word, (mask >> 64) as u64, (bits >> 64) as u64);
                put(word + 1, mask as u64, bits as u64);
            }
        }
    }
    Some((m, v))
}

/// The fingerprint of the masked words `words` of `f`.
#[inline]
fn fingerprint(f: &Fields, mask: &Fields, words: &[u8]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64; // pi
    for &i in words {
        let i = usize::from(i);
        h = (h.rotate_left(23) ^ (f[i] & mask[i])).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    // Finalise (murmur3's fmix64) so that FxHash's single multiply sees
    // well-spread bits.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The rules with one fingerprint in one shape.
#[derive(Debug, Clone)]
enum Slot {
    One(u32),
    Many(Vec<u32>),
}

impl Slot {
    fn ids(&self) -> &[u32] {
        match self {
            Slot::One(id) => std::slice::from_ref(id),
            Slot::Many(v) => v,
        }
    }
    fn push(&mut self, id: u32) {
        match self {
            Slot::One(first) => *self = Slot::Many(vec![*first, id]),
            Slot::Many(v) => v.push(id),
        }
    }
}

/// The rules of one shape.
#[derive(Debug, Clone)]
struct Shape {
    mask: Fields,
    /// The words the mask touches, in order.
    words: Vec<u8>,
    table: FxHashMap<u64, Slot>,
}

/// A set of [`Rule`]s; a flow matches the set when it matches any rule.
///
/// Matching takes one hash probe per distinct rule *shape* (which fields a
/// rule constrains, with which prefix lengths and masks), not per rule:
/// 30,000 rules of kube-proxy's two or three shapes cost two or three
/// probes per flow. [`FilterSet::shapes`] says how many there are. Rules
/// with a predicate are indexed by their other conditions; the predicate
/// runs only for flows those select.
///
/// ```
/// use conntrack_core::L4Proto;
/// use conntrack_netlink::bulk::{FilterSet, Rule};
/// let mut set = FilterSet::new();
/// for i in 0..1000u32 {
///     let svc = std::net::Ipv4Addr::from(0x0a60_0000 + i); // 10.96.x.y
///     set.push(format!("proto=udp orig-dst={svc} orig-dport=53").parse::<Rule>().unwrap());
/// }
/// set.push("proto=udp reply-src=10.244.0.0/16".parse().unwrap());
/// assert_eq!((set.len(), set.shapes()), (1001, 2));
/// ```
#[derive(Clone, Default)]
pub struct FilterSet {
    rules: Vec<Rule>,
    shapes: Vec<Shape>,
    by_mask: HashMap<Fields, usize>,
    /// Rules no flow can satisfy (kept for `rules()`, never indexed).
    unsatisfiable: usize,
}

impl FilterSet {
    /// An empty set (matches nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule; returns its index in [`FilterSet::rules`].
    pub fn push(&mut self, rule: Rule) -> usize {
        let id = self.rules.len();
        match compile(&rule) {
            None => self.unsatisfiable += 1,
            Some((mask, value)) => {
                let s = match self.by_mask.get(&mask) {
                    Some(&s) => s,
                    None => {
                        let words = (0..WORDS as u8)
                            .filter(|&i| mask[usize::from(i)] != 0)
                            .collect();
                        self.shapes.push(Shape {
                            mask,
                            words,
                            table: FxHashMap::default(),
                        });
                        self.by_mask.insert(mask, self.shapes.len() - 1);
                        self.shapes.len() - 1
                    }
                };
                let shape = &mut self.shapes[s];
                let key = fingerprint(&value, &shape.mask, &shape.words);
                let id32 = u32::try_from(id).unwrap_or(u32::MAX);
                shape
                    .table
                    .entry(key)
                    .and_modify(|slot| slot.push(id32))
                    .or_insert(Slot::One(id32));
            }
        }
        self.rules.push(rule);
        id
    }

    /// Adds a rule (builder style).
    pub fn with(mut self, rule: Rule) -> Self {
        self.push(rule);
        self
    }

    /// The rules, in the order they were added.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the set has no rule (it then matches nothing).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The number of distinct rule shapes: hash probes per flow.
    pub fn shapes(&self) -> usize {
        self.shapes.len()
    }

    /// Rules that no flow can satisfy (conflicting families, ports with a
    /// protocol without ports, ...): kept, never matched.
    pub fn unsatisfiable(&self) -> usize {
        self.unsatisfiable
    }

    /// Whether `flow` matches any rule.
    #[inline]
    pub fn matches(&self, flow: &FlowView<'_>) -> bool {
        if self.shapes.is_empty() {
            return false;
        }
        let f = fields(flow);
        self.shapes.iter().any(|s| {
            s.table
                .get(&fingerprint(&f, &s.mask, &s.words))
                .is_some_and(|slot| {
                    slot.ids()
                        .iter()
                        .any(|&id| self.rules[id as usize].matches(flow))
                })
        })
    }

    /// The lowest index of the rules `flow` matches.
    pub fn first_match(&self, flow: &FlowView<'_>) -> Option<usize> {
        let f = fields(flow);
        self.shapes
            .iter()
            .filter_map(|s| {
                let slot = s.table.get(&fingerprint(&f, &s.mask, &s.words))?;
                slot.ids()
                    .iter()
                    .map(|&id| id as usize)
                    .filter(|&id| self.rules[id].matches(flow))
                    .min()
            })
            .min()
    }

    /// The conditions every rule shares that a kernel dump filter can
    /// carry: family, protocol, zone, mark and status when all rules
    /// agree on them. A dump with this filter sends only flows that could
    /// match (the user-space check stays exact). `None` when the rules
    /// share nothing (or there are none).
    pub fn common(&self) -> Option<crate::Filter> {
        let first = self.rules.first()?;
        let same = |get: &dyn Fn(&Rule) -> Option<u64>| -> Option<u64> {
            let v = get(first)?;
            self.rules.iter().all(|r| get(r) == Some(v)).then_some(v)
        };
        let family = same(&|r| r.implied_family().map(|f| u64::from(f.0)))
            .map_or(L3Family::UNSPEC, |f| L3Family(f as u8));
        let proto = same(&|r| r.proto.map(|p| u64::from(p.0)));
        let zone = same(&|r| r.zone.map(u64::from));
        let mark = same(&|r| r.mark.map(|(v, m)| u64::from(v) << 32 | u64::from(m)));
        let status = same(&|r| {
            r.status
                .map(|(v, m)| u64::from(v.bits()) << 32 | u64::from(m.bits()))
        });
        if family == L3Family::UNSPEC
            && proto.is_none()
            && zone.is_none()
            && mark.is_none()
            && status.is_none()
        {
            return None;
        }
        let mut f = crate::Filter::new(family);
        if let Some(p) = proto {
            f = f.orig(crate::TupleFilter::new().proto(conntrack_core::L4Proto(p as u8)));
        }
        // The kernel ignores zone 0 in a filter (`NF_CT_DEFAULT_ZONE_ID`
        // means "any zone" there); the user-space check keeps it exact.
        if let Some(z) = zone.filter(|&z| z != 0) {
            f = f.zone(z as u16);
        }
        if let Some(m) = mark {
            f = f.mark((m >> 32) as u32, m as u32);
        }
        if let Some(s) = status {
            f = f.status(
                conntrack_core::Status::from_bits_retain((s >> 32) as u32),
                conntrack_core::Status::from_bits_retain(s as u32),
            );
        }
        Some(f)
    }
}

impl Extend<Rule> for FilterSet {
    fn extend<I: IntoIterator<Item = Rule>>(&mut self, iter: I) {
        for r in iter {
            self.push(r);
        }
    }
}

impl FromIterator<Rule> for FilterSet {
    fn from_iter<I: IntoIterator<Item = Rule>>(iter: I) -> Self {
        let mut s = FilterSet::new();
        s.extend(iter);
        s
    }
}

impl std::fmt::Debug for FilterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilterSet")
            .field("rules", &self.rules.len())
            .field("shapes", &self.shapes.len())
            .field("unsatisfiable", &self.unsatisfiable)
            .finish()
    }
}
