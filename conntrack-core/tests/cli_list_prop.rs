//! Property tests for `conntrack -L` text: render -> parse round trips over
//! every flow the CLI can express, and no input makes the parser panic.

use conntrack_core::cli::list::{LabelMap, ListFormat, ListParser, parse_line, render_line};
use conntrack_core::{
    Counters, DccpInfo, DccpState, Flow, L4Proto, L4Tuple, Labels, ProtoInfo, SctpInfo, SctpState,
    Status, TcpInfo, TcpState, Timestamp, Tuple,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const NS: u64 = 1_000_000_000;
/// The last second of the kernel's u64 nanosecond timestamps (year 2554).
const MAX_SECS: u64 = u64::MAX / NS;

fn addr(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            .boxed()
    }
}

fn proto() -> impl Strategy<Value = L4Proto> {
    prop_oneof![
        prop::sample::select(vec![1u8, 6, 17, 33, 47, 58, 132, 136]),
        any::<u8>(),
    ]
    .prop_map(L4Proto)
}

fn l4(proto: L4Proto) -> BoxedStrategy<L4Tuple> {
    if proto.has_ports() {
        (any::<u16>(), any::<u16>())
            .prop_map(|(src, dst)| L4Tuple::Ports { src, dst })
            .boxed()
    } else if proto.is_icmp() {
        (any::<u8>(), any::<u8>(), any::<u16>())
            .prop_map(|(kind, code, id)| L4Tuple::Icmp { kind, code, id })
            .boxed()
    } else {
        Just(L4Tuple::None).boxed()
    }
}

fn tuple(v6: bool, proto: L4Proto) -> impl Strategy<Value = Tuple> {
    (addr(v6), addr(v6), l4(proto), any::<Option<u16>>()).prop_map(move |(src, dst, l4, zone)| {
        let mut t = Tuple::new(src, dst, proto, l4);
        t.zone = zone;
        t
    })
}

fn protoinfo(proto: L4Proto) -> BoxedStrategy<Option<ProtoInfo>> {
    // Only states libnetfilter_conntrack has names for (it prints NONE
    // for the others).
    let tcp = (0u8..=9).prop_map(|s| ProtoInfo::Tcp(TcpInfo::new(TcpState(s))));
    let sctp = (0u8..=9).prop_map(|s| ProtoInfo::Sctp(SctpInfo::new(SctpState(s))));
    let dccp = (0u8..=9).prop_map(|s| ProtoInfo::Dccp(DccpInfo::new(DccpState(s))));
    match proto {
        L4Proto::TCP => prop::option::weighted(0.9, tcp).boxed(),
        L4Proto::SCTP => prop::option::weighted(0.9, sctp).boxed(),
        L4Proto::DCCP => prop::option::weighted(0.9, dccp).boxed(),
        _ => Just(None).boxed(),
    }
}

fn status() -> impl Strategy<Value = Status> {
    let flag = prop::sample::select(vec![
        Status::empty(),
        Status::ASSURED,
        Status::OFFLOAD,
        Status::OFFLOAD | Status::HW_OFFLOAD,
    ]);
    (any::<bool>(), flag).prop_map(|(replied, flag)| {
        let mut s = Status::CONFIRMED | flag;
        s.set(Status::SEEN_REPLY, replied);
        s
    })
}

fn counters() -> impl Strategy<Value = Option<Counters>> {
    any::<Option<(u64, u64)>>().prop_map(|c| c.map(|(packets, bytes)| Counters { packets, bytes }))
}

fn word() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-zA-Z0-9_:.-]{0,24}")
}

/// Which `-o` options a case prints with.
#[derive(Debug, Clone, Copy)]
struct Opts {
    extended: bool,
    id: bool,
    ktimestamp: bool,
    labels: bool,
}

fn opts() -> impl Strategy<Value = Opts> {
    any::<(bool, bool, bool, bool)>().prop_map(|(extended, id, ktimestamp, labels)| Opts {
        extended,
        id,
        ktimestamp,
        labels,
    })
}

/// A flow the CLI can print with `opts` and the capture time `now`.
fn flow(opts: Opts, now: u64) -> impl Strategy<Value = Flow> {
    let timestamp = if opts.ktimestamp {
        prop::option::of((0..=MAX_SECS, prop::option::of(0..=MAX_SECS)).prop_map(
            |(start, stop)| Timestamp {
                start: start * NS,
                stop: stop.map(|s| s * NS),
            },
        ))
        .boxed()
    } else {
        // Only delta-time is printed: the start comes back from the capture
        // time, the stop does not come back.
        prop::option::of((0..=now).prop_map(|start| Timestamp {
            start: start * NS,
            stop: None,
        }))
        .boxed()
    };
    let labels = if opts.labels {
        prop::option::of(any::<[u8; 16]>().prop_map(Labels)).boxed()
    } else {
        Just(None).boxed()
    };
    (any::<bool>(), proto())
        .prop_flat_map(move |(v6, proto)| {
            (
                (
                    tuple(v6, proto),
                    tuple(v6, proto),
                    status(),
                    protoinfo(proto),
                ),
                (
                    any::<Option<u32>>(),
                    any::<Option<u32>>(),
                    any::<Option<u32>>(),
                ),
                (
                    any::<Option<u16>>(),
                    any::<Option<u32>>(),
                    any::<Option<u32>>(),
                ),
                (counters(), counters(), word(), word()),
                (timestamp.clone(), labels.clone()),
            )
        })
        .prop_map(
            move |(
                (orig, reply, status, protoinfo),
                (timeout, mark, secmark),
                (zone, id, use_count),
                (counters_orig, counters_reply, helper, secctx),
                (timestamp, labels),
            )| {
                let mut f = Flow::new(orig, reply, status);
                f.protoinfo = protoinfo;
                f.timeout = timeout;
                f.mark = mark;
                f.secmark = secmark;
                f.zone = zone;
                f.id = if opts.id { id } else { None };
                f.use_count = use_count;
                f.counters_orig = counters_orig;
                f.counters_reply = counters_reply;
                f.helper = helper;
                f.secctx = secctx;
                f.timestamp = timestamp;
                f.labels = labels;
                f
            },
        )
}

const NOW: u64 = 1_795_251_135;

fn case() -> impl Strategy<Value = (Opts, Flow)> {
    opts().prop_flat_map(|o| (Just(o), flow(o, NOW)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn render_then_parse_gives_the_flow_back((o, flow) in case()) {
        let map = LabelMap::numeric();
        let mut format = ListFormat::DEFAULT.with_now(NOW);
        format.extended = o.extended;
        format.id = o.id;
        format.ktimestamp = o.ktimestamp;
        if o.labels {
            format = format.with_labels(&map);
        }
        let line = render_line(&flow, format);
        let parsed = ListParser::new()
            .with_labels(&map)
            .with_capture_time(NOW)
            .parse_line(&line);
        prop_assert_eq!(parsed.as_ref().ok(), Some(&flow), "{}\n{:?}", line, parsed);
        // And printing again gives the same text.
        prop_assert_eq!(render_line(parsed.as_ref().unwrap(), format), line);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = parse_line(&s);
    }

    #[test]
    fn line_like_text_never_panics(s in "[a-z0-9=.: \\[\\]_,x-]{0,200}") {
        if let Err(e) = parse_line(&s) {
            prop_assert!(e.location.column <= s.len() + 1);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&b);
        for r in conntrack_core::cli::list::parse_lines(&text) {
            let _ = r;
        }
    }

    #[test]
    fn mutated_real_lines_never_panic(
        (o, flow) in case(),
        at in any::<prop::sample::Index>(),
        len in 0usize..8,
        insert in "\\PC{0,6}",
    ) {
        let map = LabelMap::numeric();
        let mut format = ListFormat::DEFAULT.with_now(NOW);
        format.extended = o.extended;
        format.ktimestamp = o.ktimestamp;
        let line = render_line(&flow, format);
        let mut start = at.index(line.len() + 1);
        while !line.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + len).min(line.len());
        while !line.is_char_boundary(end) {
            end += 1;
        }
        let mutated = format!("{}{}{}", &line[..start], insert, &line[end..]);
        let parser = ListParser::new().with_labels(&map).with_capture_time(NOW);
        if let Err(e) = parser.parse_line(&mutated) {
            prop_assert!(e.location.column <= mutated.len() + 1);
        }
    }
}
