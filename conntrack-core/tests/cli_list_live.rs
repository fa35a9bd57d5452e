//! Live check against the running kernel: flows created with
//! `conntrack -I` in a fresh network namespace come back, field by field,
//! from parsing `conntrack -L -o extended,id` (and plain `conntrack -L`),
//! and printing the parsed flows gives the CLI's lines back.
//!
//! Skips (printing why) without root, `ip` or `conntrack`, unless
//! `CONNTRACK_KIT_REQUIRE_LIVE=1`, which turns a skip into a failure.
//! Creates no traffic and changes no global sysctl (accounting and
//! timestamps are switched off in the namespace only).

use conntrack_core::cli::list::{ListFormat, parse_lines, render_line};
use conntrack_core::testkit::{Need, TestNetns, live};
use conntrack_core::{
    Flow, L4Proto, L4Tuple, ProtoInfo, SctpInfo, SctpState, Status, TcpInfo, TcpState, Tuple,
};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ports(src: u16, dst: u16) -> L4Tuple {
    L4Tuple::Ports { src, dst }
}

/// One `conntrack -I` and the flow it must come back as (without the
/// remaining timeout and the id, which the kernel decides).
struct Case {
    args: &'static str,
    want: Flow,
    timeout: u32,
}

fn case(args: &'static str, orig: Tuple, reply: Tuple, status: Status) -> Case {
    let timeout = args
        .split(' ')
        .skip_while(|a| *a != "-t")
        .nth(1)
        .and_then(|t| t.parse().ok())
        .expect("every case sets -t");
    let mut want = Flow::new(orig, reply, Status::CONFIRMED | status);
    want.mark = Some(0);
    want.use_count = Some(1);
    Case {
        args,
        want,
        timeout,
    }
}

fn t(src: &str, dst: &str, proto: L4Proto, l4: L4Tuple) -> Tuple {
    Tuple::new(ip(src), ip(dst), proto, l4)
}

fn tcp_state(s: TcpState) -> Option<ProtoInfo> {
    Some(ProtoInfo::Tcp(TcpInfo {
        state: s,
        ..TcpInfo::default()
    }))
}

fn cases() -> Vec<Case> {
    use L4Proto as P;
    let replied = Status::SEEN_REPLY;
    let mut v = Vec::new();

    let mut c = case(
        "-p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 443 --state ESTABLISHED -t 431999 -u SEEN_REPLY,ASSURED --mark 7",
        t("10.0.0.1", "10.0.0.2", P::TCP, ports(40000, 443)),
        t("10.0.0.2", "10.0.0.1", P::TCP, ports(443, 40000)),
        replied | Status::ASSURED,
    );
    c.want.protoinfo = tcp_state(TcpState::ESTABLISHED);
    c.want.mark = Some(7);
    v.push(c);

    let mut c = case(
        "-p tcp -s 10.0.0.5 -d 10.0.0.6 -r 10.0.0.7 -q 10.0.0.8 --sport 1 --dport 2 --reply-port-src 3 --reply-port-dst 4 --state SYN_SENT -t 120 --zone 5",
        t("10.0.0.5", "10.0.0.6", P::TCP, ports(1, 2)),
        t("10.0.0.7", "10.0.0.8", P::TCP, ports(3, 4)),
        Status::empty(),
    );
    c.want.protoinfo = tcp_state(TcpState::SYN_SENT);
    c.want.zone = Some(5);
    v.push(c);

    let mut c = case(
        "-p tcp -s 10.0.1.1 -d 10.0.1.2 --sport 1 --dport 2 --state TIME_WAIT -t 100 -u SEEN_REPLY --orig-zone 3",
        t("10.0.1.1", "10.0.1.2", P::TCP, ports(1, 2)),
        t("10.0.1.2", "10.0.1.1", P::TCP, ports(2, 1)),
        replied,
    );
    c.want.protoinfo = tcp_state(TcpState::TIME_WAIT);
    c.want.orig.zone = Some(3);
    v.push(c);

    let mut c = case(
        "-p tcp -s 10.0.2.1 -d 10.0.2.2 --sport 5 --dport 6 --state ESTABLISHED -t 100 -u SEEN_REPLY --src-nat 192.0.2.1",
        t("10.0.2.1", "10.0.2.2", P::TCP, ports(5, 6)),
        t("10.0.2.2", "192.0.2.1", P::TCP, ports(6, 5)),
        replied,
    );
    c.want.protoinfo = tcp_state(TcpState::ESTABLISHED);
    v.push(c);

    v.push(case(
        "-p udp -s 2001:db8::1 -d 2001:db8::2 --sport 1000 --dport 53 -t 30",
        t("2001:db8::1", "2001:db8::2", P::UDP, ports(1000, 53)),
        t("2001:db8::2", "2001:db8::1", P::UDP, ports(53, 1000)),
        Status::empty(),
    ));
    v.push(case(
        "-p udplite -s 10.0.0.1 -d 10.0.0.2 --sport 7 --dport 8 -t 30 -u SEEN_REPLY",
        t("10.0.0.1", "10.0.0.2", P::UDPLITE, ports(7, 8)),
        t("10.0.0.2", "10.0.0.1", P::UDPLITE, ports(8, 7)),
        replied,
    ));
    let icmp = |kind, id| L4Tuple::Icmp { kind, code: 0, id };
    v.push(case(
        "-p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30",
        t("10.0.0.1", "10.0.0.2", P::ICMP, icmp(8, 77)),
        t("10.0.0.2", "10.0.0.1", P::ICMP, icmp(0, 77)),
        Status::empty(),
    ));
    v.push(case(
        "-p icmpv6 -s 2001:db8::1 -d 2001:db8::2 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 5 -t 30",
        t("2001:db8::1", "2001:db8::2", P::ICMPV6, icmp(128, 5)),
        t("2001:db8::2", "2001:db8::1", P::ICMPV6, icmp(129, 5)),
        Status::empty(),
    ));
    let mut c = case(
        "-p sctp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 5001 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 210 -u SEEN_REPLY,ASSURED",
        t("10.0.0.1", "10.0.0.2", P::SCTP, ports(5000, 5001)),
        t("10.0.0.2", "10.0.0.1", P::SCTP, ports(5001, 5000)),
        replied | Status::ASSURED,
    );
    c.want.protoinfo = Some(ProtoInfo::Sctp(SctpInfo {
        state: SctpState::ESTABLISHED,
        ..SctpInfo::default()
    }));
    v.push(c);
    v.push(case(
        "-p gre -s 10.0.0.1 -d 10.0.0.2 --srckey 0x10 --dstkey 0xbeef -t 180",
        t("10.0.0.1", "10.0.0.2", P::GRE, ports(0x10, 0xbeef)),
        t("10.0.0.2", "10.0.0.1", P::GRE, ports(0xbeef, 0x10)),
        Status::empty(),
    ));
    v.push(case(
        "-p 253 -s ::ffff:10.0.0.1 -d ::1.2.3.4 -t 600",
        t("::ffff:10.0.0.1", "::1.2.3.4", L4Proto(253), L4Tuple::None),
        t("::1.2.3.4", "::ffff:10.0.0.1", L4Proto(253), L4Tuple::None),
        Status::empty(),
    ));
    v
}

#[test]
fn created_flows_come_back_from_conntrack_list() {
    if !live(
        "created_flows_come_back_from_conntrack_list",
        &[Need::Root, Need::Tool("ip"), Need::Tool("conntrack")],
    ) {
        return;
    }
    let ns = TestNetns::new("list");
    // Per-namespace sysctls: no counters or timestamps in the lines.
    ns.sysctl("net.netfilter.nf_conntrack_acct", "0");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "0");
    let cases = cases();
    for c in &cases {
        let mut args = vec!["conntrack", "-I"];
        args.extend(c.args.split(' '));
        ns.exec(&args);
    }

    let out = ns.exec(&["conntrack", "-L", "-o", "extended,id"]);
    let text = String::from_utf8(out.stdout).expect("conntrack prints UTF-8");
    let flows: Vec<Flow> = parse_lines(&text)
        .map(|r| r.unwrap_or_else(|e| panic!("{e}\n{text}")))
        .collect();
    assert_eq!(flows.len(), cases.len(), "{text}");

    // Printing the parsed flows gives the CLI's lines back.
    for (line, flow) in text.lines().zip(&flows) {
        assert_eq!(render_line(flow, ListFormat::EXTENDED.with_id()), line);
    }

    let mut ids = Vec::new();
    for c in &cases {
        let got = flows
            .iter()
            .find(|f| f.orig == c.want.orig)
            .unwrap_or_else(|| panic!("`conntrack -I {}` not listed:\n{text}", c.args));
        let timeout = got.timeout.expect("listed flows have a timeout");
        assert!(
            timeout <= c.timeout && timeout + 10 >= c.timeout,
            "{}: timeout {timeout}",
            c.args
        );
        ids.push(got.id.expect("-o id prints id="));
        let mut got = got.clone();
        got.timeout = None;
        got.id = None;
        assert_eq!(got, c.want, "conntrack -I {}", c.args);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cases.len(), "ids are distinct");

    // The default form gives the same flows without the ids.
    let out = ns.exec(&["conntrack", "-L"]);
    let text = String::from_utf8(out.stdout).expect("conntrack prints UTF-8");
    let mut plain: Vec<Flow> = parse_lines(&text).map(Result::unwrap).collect();
    let mut extended: Vec<Flow> = flows
        .into_iter()
        .map(|mut f| {
            f.id = None;
            f
        })
        .collect();
    for f in plain.iter_mut().chain(extended.iter_mut()) {
        f.timeout = None;
    }
    let key = |f: &Flow| (f.orig, f.reply);
    plain.sort_by_key(key);
    extended.sort_by_key(key);
    assert_eq!(plain, extended);
}
