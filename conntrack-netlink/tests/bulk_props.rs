//! Properties of the bulk filter set: its index agrees with a naive
//! linear match over the rules on every flow; a rule's text form reads
//! back to the same rule; the parser never panics.
//!
//! Rules and flows are drawn from a small domain (a handful of addresses,
//! ports, marks, zones) so that most rules match some flows and several
//! rules share a shape.

use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
use conntrack_netlink::bulk::{Cidr, FilterSet, Rule, TupleRule};
use conntrack_netlink::wire::FlowView;
use proptest::prelude::*;
use std::net::IpAddr;

mod support;

const V4: [&str; 5] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.1", "192.0.2.9"];
const V6: [&str; 5] = ["fd00::1", "fd00::2", "fd00::3", "fd00::", "fd00:0:0:1::1"];
const PROTOS: [L4Proto; 7] = [
    L4Proto::TCP,
    L4Proto::UDP,
    L4Proto::ICMP,
    L4Proto::ICMPV6,
    L4Proto::GRE,
    L4Proto::SCTP,
    L4Proto(99),
];
const PORTS: [u16; 3] = [53, 80, 443];
const MARKS: [u32; 4] = [0, 1, 0x10, 0x11];
const MASKS: [u32; 4] = [0xff, 0xf, 0x1, u32::MAX];
const STATUS: [Status; 4] = [
    Status::empty(),
    Status::SEEN_REPLY,
    Status::ASSURED,
    Status::SEEN_REPLY.union(Status::ASSURED),
];

fn addr(v6: bool, i: usize) -> IpAddr {
    support::ip(if v6 {
        V6[i % V6.len()]
    } else {
        V4[i % V4.len()]
    })
}

/// A flow from the domain: `n` picks every field.
fn flow(n: &[usize; 12]) -> Flow {
    let v6 = n[0].is_multiple_of(4);
    let proto = PROTOS[n[1] % PROTOS.len()];
    let l4 = if proto.has_ports() {
        L4Tuple::Ports {
            src: PORTS[n[2] % 3],
            dst: PORTS[n[3] % 3],
        }
    } else if proto.is_icmp() {
        L4Tuple::Icmp {
            kind: [8, 0, 128][n[2] % 3],
            code: (n[3] % 2) as u8,
            id: (n[4] % 3) as u16,
        }
    } else {
        L4Tuple::None
    };
    let orig = Tuple::new(addr(v6, n[5]), addr(v6, n[6]), proto, l4);
    let mut f = support::flow(orig);
    if n[7].is_multiple_of(3) {
        // Translated: the reply comes from another address and port.
        f.reply.src = addr(v6, n[7] / 3);
        if let L4Tuple::Ports { dst, .. } = f.reply.l4 {
            f.reply.l4 = L4Tuple::Ports {
                src: PORTS[n[8] % 3],
                dst,
            };
        }
    }
    f.mark = (!n[9].is_multiple_of(5)).then(|| MARKS[n[9] % 4]);
    f.status = STATUS[n[10] % 4] | Status::CONFIRMED;
    f.zone = match n[11] % 4 {
        0 => None,
        z => Some(z as u16 - 1),
    };
    f.timeout = Some(n[4] as u32 % 100);
    f
}

fn net(v6: bool, i: usize, p: usize) -> Cidr {
    let a = addr(v6, i);
    let prefix = if v6 {
        [64, 127, 128, 0][p % 4]
    } else {
        [8, 24, 31, 32][p % 4]
    };
    Cidr::new(a, prefix).expect("prefix fits")
}

/// A rule from the domain: each bit of `mask` says whether a condition is
/// set, `n` picks its value.
fn rule(mask: u32, n: &[usize; 16]) -> Rule {
    let on = |b: u32| mask & (1 << b) != 0;
    let v6 = n[0].is_multiple_of(4);
    let mut r = Rule::new();
    if on(0) {
        r = r.family(if v6 {
            conntrack_core::L3Family::INET6
        } else {
            conntrack_core::L3Family::INET
        });
    }
    if on(1) {
        r = r.proto(PROTOS[n[1] % PROTOS.len()]);
    }
    if on(2) {
        r = r.zone((n[2] % 3) as u16);
    }
    if on(3) {
        r = r.mark(MARKS[n[3] % 4], MASKS[n[4] % 4]);
    }
    if on(4) {
        r = r.status(STATUS[n[5] % 4], STATUS[n[6] % 4] | Status::ASSURED);
    }
    let tuple = |base: u32| {
        let mut t = TupleRule::new();
        if on(base) {
            t = t.src(net(v6, n[7 + base as usize % 3], n[10]));
        }
        if on(base + 1) {
            t = t.dst(net(v6, n[8], n[11 + base as usize % 2]));
        }
        if on(base + 2) {
            t = t.src_port(PORTS[n[13] % 3]);
        }
        if on(base + 3) {
            t = t.dst_port(PORTS[n[14] % 3]);
        }
        if on(base + 4) {
            t = t.icmp(Some([8, 0, 128][n[13] % 3]), None, Some((n[15] % 3) as u16));
        }
        t
    };
    r = r.orig(tuple(5));
    r = r.reply(tuple(10));
    if on(15) {
        // An escape-hatch predicate: a short timeout.
        r = r.predicate(|f| f.timeout().is_some_and(|t| t % 2 == 0));
    }
    r
}

fn view_of(bytes: &[u8]) -> FlowView<'_> {
    FlowView::parse(bytes).expect("a kernel-layout flow decodes")
}

/// Conditions are sparse: each of the 16 bits is on with probability 1/4.
fn rule_mask() -> impl Strategy<Value = u32> {
    (any::<u32>(), any::<u32>()).prop_map(|(a, b)| a & b & 0xffff)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn index_agrees_with_linear_match(
        rules in prop::collection::vec((rule_mask(), prop::array::uniform16(0usize..64)), 1..40),
        flows in prop::collection::vec(prop::array::uniform12(0usize..64), 1..40),
    ) {
        let rules: Vec<Rule> = rules.iter().map(|(m, n)| rule(*m, n)).collect();
        let set: FilterSet = rules.iter().cloned().collect();
        prop_assert!(set.shapes() <= rules.len());
        for n in &flows {
            let f = flow(n);
            let bytes = support::payload(&f);
            let v = view_of(&bytes);
            let naive = rules.iter().position(|r| r.matches(&v));
            prop_assert_eq!(set.matches(&v), naive.is_some(), "flow {:?}\nrules {:#?}", f, rules);
            prop_assert_eq!(set.first_match(&v), naive);
        }
    }

    #[test]
    fn text_form_reads_back(mask in rule_mask(), n in prop::array::uniform16(0usize..64)) {
        // Without the predicate, which has no text form.
        let r = rule(mask & 0x7fff, &n);
        prop_assume!(r.is_satisfiable());
        let text = r.to_string();
        let back: Rule = text.parse().map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(back, r, "{}", text);
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,80}") {
        let _ = s.parse::<Rule>();
        let _ = FilterSet::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_near_misses(
        terms in prop::collection::vec(
            (prop::sample::select(vec![
                "family", "proto", "zone", "mark", "status", "orig-src", "dst", "reply-src",
                "reply-dst", "sport", "orig-dport", "reply-sport", "reply-port-dst", "icmp-type",
                "icmp-id", "reply-icmp-code", "all", "bogus",
            ]),
            prop::sample::select(vec![
                "udp", "ipv4", "ipv6", "10.0.0.1", "10.0.0.0/8", "fd00::/200", "::1", "0x10/0xff",
                "ASSURED,SEEN_REPLY", "0/ASSURED", "65536", "53", "-1", "0x", "", "/", "1/2/3",
            ])),
            0..6,
        ),
    ) {
        let text: Vec<String> = terms.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let text = text.join(" ");
        if let Ok(r) = text.parse::<Rule>() {
            let again: Rule = r.to_string().parse().expect("a rule's text form parses");
            prop_assert_eq!(again, r);
        }
    }
}

#[test]
fn shapes_do_not_grow_with_rules() {
    let mut set = FilterSet::new();
    for i in 0..30_000u32 {
        let svc = std::net::Ipv4Addr::from(0x0a60_0000 + i);
        let ep = std::net::Ipv4Addr::from(0x0af4_0000 + i);
        let r = match i % 3 {
            0 => format!("proto=udp orig-dst={svc} orig-dport=53"),
            1 => format!("proto=udp orig-dst={svc} reply-src={ep}"),
            _ => format!("proto=udp orig-dst={svc} orig-dport=53 reply-src={ep} reply-sport=8053"),
        };
        set.push(r.parse().unwrap());
    }
    assert_eq!(set.shapes(), 3);
    let hit = support::payload(&{
        let mut f = support::udp("10.1.0.1", 4000, "10.96.0.4", 53);
        f.reply.src = support::ip("10.244.0.4");
        f
    });
    let miss = support::payload(&support::udp("10.1.0.1", 4000, "10.97.0.4", 53));
    assert_eq!(set.first_match(&view_of(&hit)), Some(4));
    assert!(!set.matches(&view_of(&miss)));
    let common = set.common().expect("all UDP, all IPv4");
    assert_eq!(common.family, conntrack_core::L3Family::INET);
    assert_eq!(common.orig.proto, Some(L4Proto::UDP));
}

#[test]
fn unsatisfiable_rules_match_nothing() {
    let r = Rule::new()
        .proto(L4Proto::ICMP)
        .orig(TupleRule::new().dst_port(53));
    assert!(!r.is_satisfiable());
    let set = FilterSet::new().with(r);
    assert_eq!((set.len(), set.shapes(), set.unsatisfiable()), (1, 0, 1));
    let b = support::payload(&support::udp("10.0.0.1", 1, "10.0.0.2", 53));
    assert!(!set.matches(&view_of(&b)));
    assert!("proto=icmp dport=53".parse::<Rule>().is_err());
}

/// The domain is small enough that rules of every kind do match: the
/// property above compares hits, not only misses.
#[test]
fn the_domain_produces_hits() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 64) as usize
    };
    let (mut hits, mut tuple_hits, mut total) = (0, 0, 0);
    for _ in 0..3000 {
        let m = ((next() as u32) << 10 | next() as u32)
            & ((next() as u32) << 10 | next() as u32)
            & 0x7fff;
        let r = rule(m, &std::array::from_fn(|_| next()));
        let f = flow(&std::array::from_fn(|_| next()));
        let b = support::payload(&f);
        total += 1;
        if r.matches(&view_of(&b)) {
            hits += 1;
            if !(r.orig.is_empty() && r.reply.is_empty()) {
                tuple_hits += 1;
            }
        }
    }
    assert!(hits * 20 > total, "{hits} hits of {total}");
    assert!(
        tuple_hits * 50 > total,
        "{tuple_hits} tuple hits of {total}"
    );
}
