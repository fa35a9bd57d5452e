//! `conntrack -L` parser and renderer: fixtures, every field and protocol,
//! and every error path (kind and column).

use conntrack_core::cli::list::{
    LabelMap, ListErrorKind, ListFormat, ListParser, parse_line, parse_lines, render_line,
};
use conntrack_core::testkit::{flow, ip, read_fixture, tcp, tcp_state};
use conntrack_core::{
    Counters, Flow, L4Proto, L4Tuple, Labels, ProtoInfo, SctpState, Status, TcpState, Timestamp,
};

fn fixture(name: &str) -> String {
    read_fixture(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cli-list"),
        name,
    )
}

const SUMMARY: &str = "conntrack v1.4.7 (conntrack-tools): 22 flow entries have been shown.\n";

fn label_map() -> LabelMap {
    LabelMap::parse(&fixture("connlabel.conf"))
}

/// The `-o` options a line was printed with, read off the line itself.
fn format_of<'m>(line: &str, flow: &Flow, map: &'m LabelMap) -> ListFormat<'m> {
    let mut f = ListFormat::DEFAULT;
    f.extended = line.starts_with("ipv4 ") || line.starts_with("ipv6 ");
    f.id = flow.id.is_some();
    f.ktimestamp = line.contains("[start=");
    if line.ends_with(" labels") || line.contains(" labels=") {
        f = f.with_labels(map);
    }
    f
}

/// The `delta-time=` value of a line.
fn delta_time(line: &str) -> Option<u64> {
    line.split(' ')
        .find_map(|t| t.strip_prefix("delta-time="))
        .map(|v| v.parse().unwrap())
}

/// Every flow line of a fixture parses, and prints back byte for byte.
fn round_trip_file(name: &str) -> Vec<Flow> {
    // `conntrack -L >file 2>&1` with more than 4 KiB of output: the summary
    // (stderr, unbuffered) lands where stdout's first 4 KiB block ends, in
    // the middle of a line. The parser joins such a line up again.
    let text = fixture(name);
    let clean = text.replace(SUMMARY, "");
    let map = label_map();
    // Any capture time works: delta-time = capture time - start.
    let capture = 2_000_000_000;
    let parser = ListParser::new()
        .with_labels(&map)
        .with_capture_time(capture);
    let mut flows = Vec::new();
    let lines = clean.lines();
    for (line, result) in lines.zip(parser.parse_lines(&text)) {
        let flow = result.unwrap_or_else(|e| panic!("{name}: {e}\n{line}"));
        let mut format = format_of(line, &flow, &map);
        format.now = Some(match (flow.timestamp, delta_time(line)) {
            (Some(ts), Some(d)) if format.ktimestamp => ts.start / 1_000_000_000 + d,
            _ => capture,
        });
        assert_eq!(render_line(&flow, format), line, "{name}");
        flows.push(flow);
    }
    assert_eq!(flows.len(), parser.parse_lines(&text).count());
    flows
}

#[test]
fn captured_fixtures_round_trip() {
    let mut all = Vec::new();
    for name in [
        "list-default.txt",
        "list-extended.txt",
        "list-extended-id.txt",
        "list-ktimestamp.txt",
        "list-labels.txt",
        "list-extended-id-ktimestamp-labels.txt",
    ] {
        let flows = round_trip_file(name);
        assert_eq!(flows.len(), 22, "{name}");
        all.push(flows);
    }
    // The same table in every form: the same flows, modulo the options.
    let key = |f: &Flow| (f.orig, f.reply);
    let mut default: Vec<_> = all[0].iter().map(key).collect();
    let mut extended: Vec<_> = all[5].iter().map(key).collect();
    default.sort();
    extended.sort();
    assert_eq!(default, extended);
}

#[test]
fn handwritten_fixture_round_trips() {
    let flows = round_trip_file("handwritten.txt");
    assert_eq!(flows.len(), 12);
    assert!(flows[0].status.contains(Status::OFFLOAD) && !flows[0].is_assured());
    assert!(flows[0].nat().snat);
    assert!(
        flows[1]
            .status
            .contains(Status::OFFLOAD | Status::HW_OFFLOAD)
    );
    assert_eq!(flows[2].helper.as_deref(), Some("ftp"));
    assert_eq!(
        flows[3].secctx.as_deref(),
        Some("system_u:object_r:unlabeled_t:s0")
    );
    assert_eq!((flows[4].secmark, flows[4].zone), (Some(5), Some(2)));
    assert_eq!(flows[5].state().to_string(), "OPEN");
    assert_eq!(
        flows[6].protoinfo,
        Some(ProtoInfo::Sctp(conntrack_core::SctpInfo::new(
            SctpState::HEARTBEAT_SENT
        )))
    );
    assert_eq!(flows[7].tcp_state(), Some(TcpState::SYN_SENT2));
    assert_eq!(flows[8].tcp_state(), Some(TcpState::NONE));
    assert_eq!(flows[9].proto(), L4Proto::IGMP);
    assert_eq!(flows[9].orig.l4, L4Tuple::None);
    assert_eq!(
        flows[10].timestamp,
        Some(Timestamp {
            start: 1_795_251_123_000_000_000,
            stop: Some(1_795_251_135_000_000_000),
        })
    );
    assert_eq!(flows[11].labels, Some(Labels::default()));
}

fn find<'a>(flows: &'a [Flow], src: &str, dst: &str, proto: L4Proto) -> &'a Flow {
    flows
        .iter()
        .find(|f| f.orig.src == ip(src) && f.orig.dst == ip(dst) && f.proto() == proto)
        .unwrap_or_else(|| panic!("no {proto} flow {src} -> {dst}"))
}

#[test]
fn captured_fields() {
    let flows = round_trip_file("list-extended-id-ktimestamp-labels.txt");
    let f = find(&flows, "10.0.0.1", "10.0.0.2", L4Proto::TCP);
    assert_eq!(
        f.orig.l4,
        L4Tuple::Ports {
            src: 40000,
            dst: 443
        }
    );
    assert_eq!(f.mark, Some(7));
    assert!(f.is_assured() && f.is_replied() && f.status.contains(Status::CONFIRMED));
    assert!(f.id.is_some() && f.use_count == Some(1));
    assert!(f.counters_orig.is_none() && f.timestamp.is_none());

    let f = find(&flows, "10.0.0.5", "10.0.0.6", L4Proto::TCP);
    assert_eq!(f.tcp_state(), Some(TcpState::SYN_SENT));
    assert!(!f.is_replied());
    assert_eq!(f.zone, Some(5));
    assert!(f.nat().snat && f.nat().dnat);

    let f = find(&flows, "10.0.1.1", "10.0.1.2", L4Proto::TCP);
    assert_eq!((f.orig.zone, f.reply.zone, f.zone), (Some(3), None, None));
    let f = find(&flows, "10.0.1.1", "10.0.1.3", L4Proto::TCP);
    assert_eq!((f.orig.zone, f.reply.zone), (None, Some(4)));
    let f = find(&flows, "10.0.2.1", "10.0.2.2", L4Proto::TCP);
    assert!(f.nat().snat && !f.nat().dnat);
    assert_eq!(f.reply.dst, ip("192.0.2.1"));

    let f = find(&flows, "2001:db8::1", "2001:db8::2", L4Proto::TCP);
    assert_eq!(f.mark, Some(u32::MAX));
    assert_eq!(f.tcp_state(), Some(TcpState::TIME_WAIT));

    let f = find(&flows, "10.0.0.1", "10.0.0.2", L4Proto::ICMP);
    assert_eq!(
        (f.orig.l4, f.reply.l4),
        (
            L4Tuple::Icmp {
                kind: 8,
                code: 0,
                id: 77
            },
            L4Tuple::Icmp {
                kind: 0,
                code: 0,
                id: 77
            }
        )
    );
    let f = find(&flows, "2001:db8::1", "2001:db8::2", L4Proto::ICMPV6);
    assert_eq!(
        f.orig.l4,
        L4Tuple::Icmp {
            kind: 128,
            code: 0,
            id: 5
        }
    );
    let f = find(&flows, "10.0.0.1", "10.0.0.2", L4Proto::GRE);
    assert_eq!(
        f.orig.l4,
        L4Tuple::Ports {
            src: 0x10,
            dst: 0xbeef
        }
    );
    let f = find(&flows, "10.0.0.1", "10.0.0.2", L4Proto::SCTP);
    assert_eq!(f.state().to_string(), "ESTABLISHED");
    let f = find(&flows, "10.0.0.1", "10.0.0.2", L4Proto(253));
    assert_eq!(f.orig.l4, L4Tuple::None);
    let f = find(&flows, "::ffff:10.0.0.1", "::1.2.3.4", L4Proto(253));
    assert!(!f.is_nat());
    let f = find(&flows, "10.0.0.1", "10.0.0.2", L4Proto::UDPLITE);
    assert!(f.is_replied() && !f.is_assured());

    let f = find(&flows, "10.0.3.1", "10.0.3.2", L4Proto::UDP);
    assert_eq!(f.labels, Some(Labels::from_bits([1, 2, 5])));

    // Real traffic: counters, timestamps, DNAT.
    let f = flows
        .iter()
        .find(|f| f.orig.dst_port() == Some(8080))
        .unwrap();
    assert!(f.nat().dnat && !f.nat().snat);
    assert_eq!(f.reply.src_port(), Some(8081));
    assert!(f.counters_orig.unwrap().packets > 0);
    assert!(f.timestamp.unwrap().start > 1_700_000_000_000_000_000);
    let f = find(&flows, "127.0.0.1", "127.0.0.1", L4Proto::ICMP);
    assert_eq!(f.counters_reply.map(|c| c.packets), Some(1));
    let f = find(&flows, "10.9.0.1", "10.9.0.1", L4Proto::UDP);
    assert_eq!(f.labels, Some(Labels::from_bits([1])));
}

const TCP: &str = "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=443 src=10.0.0.2 dst=10.0.0.1 sport=443 dport=40000 [ASSURED] mark=0 use=1";

#[test]
fn default_tcp_line() {
    let f = parse_line(TCP).unwrap();
    let mut want = flow(tcp("10.0.0.1", 40000, "10.0.0.2", 443));
    want.status |= Status::SEEN_REPLY | Status::ASSURED;
    want.timeout = Some(431999);
    want.protoinfo = tcp_state(TcpState::ESTABLISHED);
    want.mark = Some(0);
    want.use_count = Some(1);
    assert_eq!(f, want);
    assert!(!f.is_nat());
    // Trailing newline and CRLF are fine; tabs and extra blanks too.
    assert_eq!(parse_line(&format!("{TCP}\r\n")).unwrap(), want);
    assert_eq!(parse_line(&TCP.replace(' ', " \t ")).unwrap(), want);
}

#[test]
fn every_optional_field() {
    let line = "ipv6     10 udp      17 29 src=::1 dst=::2 sport=1 dport=2 zone-orig=7 packets=3 bytes=300 [UNREPLIED] src=::2 dst=::1 sport=2 dport=1 zone-reply=8 packets=0 bytes=0 [ASSURED] mark=4 secmark=9 secctx=ctx zone=6 delta-time=5 [start=Thu Jan  1 00:00:10 1970] [stop=Thu Jan  1 00:00:15 1970] helper=tftp use=2 id=99 labels=0,127";
    let f = parse_line(line).unwrap();
    assert_eq!(
        (f.orig.zone, f.reply.zone, f.zone),
        (Some(7), Some(8), Some(6))
    );
    assert_eq!(
        (f.counters_orig, f.counters_reply),
        (
            Some(Counters {
                packets: 3,
                bytes: 300
            }),
            Some(Counters {
                packets: 0,
                bytes: 0
            })
        )
    );
    assert_eq!(f.status, Status::CONFIRMED | Status::ASSURED);
    assert_eq!(
        (f.mark, f.secmark, f.use_count, f.id),
        (Some(4), Some(9), Some(2), Some(99))
    );
    assert_eq!(f.secctx.as_deref(), Some("ctx"));
    assert_eq!(f.helper.as_deref(), Some("tftp"));
    assert_eq!(
        f.timestamp,
        Some(Timestamp {
            start: 10_000_000_000,
            stop: Some(15_000_000_000)
        })
    );
    assert_eq!(f.labels, Some(Labels::from_bits([0, 127])));
    assert_eq!(f.protoinfo, None);
    let numeric = LabelMap::numeric();
    let format = ListFormat::EXTENDED
        .with_id()
        .with_ktimestamp()
        .with_labels(&numeric);
    assert_eq!(render_line(&f, format), line);
}

#[test]
fn status_inference() {
    let base = "udp 17 30 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2";
    let reply = "src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1";
    let st = |mid: &str, end: &str| {
        parse_line(&format!("{base} {mid} {reply} {end}"))
            .unwrap()
            .status
    };
    assert_eq!(st("", ""), Status::CONFIRMED | Status::SEEN_REPLY);
    assert_eq!(st("[UNREPLIED]", ""), Status::CONFIRMED);
    assert_eq!(
        st("[UNREPLIED]", "[ASSURED]"),
        Status::CONFIRMED | Status::ASSURED
    );
    assert_eq!(
        st("", "[OFFLOAD]"),
        Status::CONFIRMED | Status::SEEN_REPLY | Status::OFFLOAD
    );
    assert_eq!(
        st("", "[HW_OFFLOAD]"),
        Status::CONFIRMED | Status::SEEN_REPLY | Status::OFFLOAD | Status::HW_OFFLOAD
    );
    // The state is derived from the bits for stateless protocols.
    assert_eq!(
        parse_line(&format!("{base} [UNREPLIED] {reply}"))
            .unwrap()
            .state()
            .to_string(),
        "UNREPLIED"
    );
}

#[test]
fn label_names_need_the_map() {
    let line = "udp      17 30 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 use=1 labels=web,my label,five";
    let err = parse_line(line).unwrap_err();
    assert_eq!(err.kind, ListErrorKind::UnknownLabel);
    assert_eq!(err.location.column, line.find("web").unwrap() + 1);
    let map = label_map();
    let f = ListParser::new()
        .with_labels(&map)
        .parse_line(line)
        .unwrap();
    assert_eq!(f.labels, Some(Labels::from_bits([1, 2, 5])));
    // An unnamed bit is not printed.
    let mut g = f.clone();
    g.labels = Some(Labels::from_bits([1, 2, 5, 9]));
    assert_eq!(render_line(&g, ListFormat::DEFAULT.with_labels(&map)), line);
    // Unknown name with the map: error at that name.
    let bad = line.replace("five", "six");
    let err = ListParser::new()
        .with_labels(&map)
        .parse_line(&bad)
        .unwrap_err();
    assert_eq!(err.kind, ListErrorKind::UnknownLabel);
    assert_eq!(err.location.column, bad.find("six").unwrap() + 1);
}

#[test]
fn delta_time_needs_the_capture_time() {
    let line = "tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 delta-time=100 use=1";
    assert_eq!(parse_line(line).unwrap().timestamp, None);
    let f = ListParser::new()
        .with_capture_time(1000)
        .parse_line(line)
        .unwrap();
    assert_eq!(
        f.timestamp,
        Some(Timestamp {
            start: 900_000_000_000,
            stop: None
        })
    );
    let f = ListParser::new()
        .with_capture_time(10)
        .parse_line(line)
        .unwrap();
    assert_eq!(f.timestamp, None, "start before the epoch is dropped");
}

#[test]
fn ipv6_addresses_print_like_glibc() {
    for (addr, printed) in [
        ("::1.2.3.4", "::1.2.3.4"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("::1", "::1"),
        ("::", "::"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0:0:1::1", "2001:0:0:1::1"),
    ] {
        let line = format!(
            "unknown  253 600 src={addr} dst=::1 [UNREPLIED] src=::1 dst={addr} mark=0 use=1"
        );
        let f = parse_line(&line).unwrap();
        assert_eq!(f.orig.src, ip(addr));
        let out = render_line(&f, ListFormat::DEFAULT);
        assert!(
            out.starts_with(&format!("unknown  253 600 src={printed} ")),
            "{out}"
        );
    }
}

#[test]
fn summary_and_blank_lines_are_skipped() {
    let text = format!(
        "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.\n\n{TCP}\r\n   \n{TCP}\nconntrack v1.4.8 (conntrack-tools): 0 flow entries have been shown.\n"
    );
    let flows: Vec<_> = parse_lines(&text).collect();
    assert_eq!(flows.len(), 2);
    assert!(flows.iter().all(Result::is_ok));
}

#[test]
fn one_bad_line_costs_one_flow() {
    let cut = &TCP[..TCP.find(" dport").unwrap()];
    let text = format!("{TCP}\n{cut}\njunk\n{TCP}\n");
    let results: Vec<_> = parse_lines(&text).collect();
    assert_eq!(results.len(), 4);
    assert!(results[0].is_ok() && results[3].is_ok());
    let e1 = results[1].as_ref().unwrap_err();
    assert_eq!(e1.location.line, 2);
    assert_eq!(e1.kind, ListErrorKind::Truncated { expected: "dport" });
    assert_eq!(e1.location.column, cut.len() + 1);
    let e2 = results[2].as_ref().unwrap_err();
    assert_eq!(e2.location.line, 3);
    assert_eq!(
        e2.to_string(),
        "line 3, column 5: line ends where `protocol number` was expected"
    );
}

/// The kind and column of the error of a line.
fn err(line: &str) -> (ListErrorKind, usize) {
    let e = parse_line(line).unwrap_err();
    assert_eq!(e.location.line, 1);
    (e.kind, e.location.column)
}

fn col(line: &str, needle: &str) -> usize {
    line.find(needle).unwrap() + 1
}

#[test]
fn error_kinds_and_columns() {
    use ListErrorKind::*;
    let replace = |from: &str, to: &str| TCP.replacen(from, to, 1);

    assert_eq!(
        err(""),
        (
            Truncated {
                expected: "protocol name"
            },
            1
        )
    );
    assert_eq!(
        err("tcp"),
        (
            Truncated {
                expected: "protocol number"
            },
            4
        )
    );
    assert_eq!(
        err("tcp      6 431999 ESTABLISHED"),
        (Truncated { expected: "src" }, 30)
    );
    assert_eq!(
        err("junk"),
        (
            Truncated {
                expected: "protocol number"
            },
            5
        )
    );
    assert_eq!(
        err("hello world"),
        (
            BadNumber {
                field: "protocol number"
            },
            7
        )
    );
    assert_eq!(
        err("tcp 600"),
        (
            BadNumber {
                field: "protocol number"
            },
            5
        )
    );

    let l = replace("dst=10.0.0.2", "dst=10.0.0.256");
    assert_eq!(
        err(&l),
        (BadAddress { field: "dst" }, col(&l, "10.0.0.256"))
    );
    let l = replace("src=10.0.0.1", "src=::1");
    assert_eq!(err(&l), (FamilyMismatch, col(&l, "dst=10.0.0.2") + 4));
    let l = replace("sport=40000", "sport=65536");
    assert_eq!(err(&l), (BadNumber { field: "sport" }, col(&l, "65536")));
    let l = replace("dport=443", "dport=-1");
    assert_eq!(err(&l), (BadNumber { field: "dport" }, col(&l, "-1")));
    let l = replace("dport=443", "dport=+1");
    assert_eq!(err(&l), (BadNumber { field: "dport" }, col(&l, "+1")));
    let l = replace("431999", "4294967296");
    assert_eq!(err(&l), (BadNumber { field: "timeout" }, 12));
    let l = replace("ESTABLISHED", "ESTABLISHED_ISH");
    assert_eq!(err(&l), (UnknownState, 19));
    let l = replace("sport=40000", "dport=40000");
    assert_eq!(
        err(&l),
        (Expected { expected: "sport" }, col(&l, "dport=40000"))
    );

    let l = replace("mark=0", "mark=0 colour=blue");
    assert_eq!(err(&l), (UnknownKey, col(&l, "colour")));
    let l = replace("mark=0", "mark=0 mark=1");
    assert_eq!(err(&l), (Duplicate { field: "mark" }, col(&l, "mark=1")));
    let l = replace("[ASSURED]", "[ASSURED] [OFFLOAD]");
    assert_eq!(
        err(&l),
        (
            Duplicate {
                field: "status flag"
            },
            col(&l, "[OFFLOAD]")
        )
    );
    let l = replace("mark=0", "mark=0 whatever");
    assert_eq!(err(&l), (UnexpectedToken, col(&l, "whatever")));
    let l = replace("mark=0", "mark=0 [UNREPLIED]");
    assert_eq!(err(&l), (UnexpectedToken, col(&l, "[UNREPLIED]")));
    let l = replace("mark=0", "mark=x");
    assert_eq!(err(&l), (BadNumber { field: "mark" }, col(&l, "x use")));

    // Missing reply tuple: the original tuple runs into the trailing fields.
    let l = "tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 mark=0 use=1";
    assert_eq!(err(l), (MissingReplyTuple, col(l, "mark")));
    let l = "udp 17 10 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 [UNREPLIED]";
    assert_eq!(err(l), (MissingReplyTuple, l.len() + 1));

    // Protocol name and number, layer 3 name and number.
    assert_eq!(err(&TCP.replacen("tcp ", "udp ", 1)), (ProtoMismatch, 1));
    let l = format!("ipv6     10 {TCP}");
    assert_eq!(err(&l), (FamilyMismatch, 10));
    let l = format!("ipv6     2 {TCP}");
    assert_eq!(err(&l), (ProtoMismatch, 1));
    let l = "udp 17 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1";
    assert_eq!(err(l), (UnexpectedState, 11));
    let l = "gre 47 10 src=1.1.1.1 dst=2.2.2.2 srckey=16 dstkey=0x1 src=2.2.2.2 dst=1.1.1.1 srckey=0x1 dstkey=0x10";
    assert_eq!(err(l), (BadNumber { field: "srckey" }, col(l, "16")));
    let l = "icmp 1 10 src=1.1.1.1 dst=2.2.2.2 type=300 code=0 id=1 src=2.2.2.2 dst=1.1.1.1 type=0 code=0 id=1";
    assert_eq!(err(l), (BadNumber { field: "type" }, col(l, "300")));
    let l = "udp 17 10 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=::2 dst=::1 sport=2 dport=1";
    assert_eq!(err(l), (FamilyMismatch, col(l, "::2")));

    // Counters must come in pairs.
    let l = replace("dport=443 ", "dport=443 packets=1 ");
    assert_eq!(
        err(&l),
        (Expected { expected: "bytes" }, col(&l, "src=10.0.0.2"))
    );

    // Timestamps.
    let l = replace("use=1", "[start=Sat Nov 21 08:52:15 2026] use=1");
    assert!(parse_line(&l).is_ok());
    let l = replace("use=1", "[start=Sun Nov 21 08:52:15 2026] use=1");
    assert_eq!(err(&l), (BadTimestamp, col(&l, "Sun")));
    let l = replace("use=1", "[start=Sat Nov 21 08:52");
    assert_eq!(err(&l), (Truncated { expected: "]" }, l.len() + 1));
    let l = replace("use=1", "[start=Sat Nov 21 08:52:15 2026]x");
    assert_eq!(err(&l), (UnexpectedToken, col(&l, "]x") + 1));
}

#[test]
fn truncated_at_every_byte_is_an_error_not_a_panic() {
    let map = label_map();
    let text = fixture("list-extended-id-ktimestamp-labels.txt").replace(SUMMARY, "");
    let parser = ListParser::new().with_labels(&map);
    for line in text.lines() {
        for end in 0..line.len() {
            if !line.is_char_boundary(end) {
                continue;
            }
            let cut = &line[..end];
            // A cut after the reply tuple can still be a valid line.
            if let Err(e) = parser.parse_line(cut) {
                assert!(e.location.column <= cut.len() + 1, "{e}: {cut}");
            }
        }
    }
}
