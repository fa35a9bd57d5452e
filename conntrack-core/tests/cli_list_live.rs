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
use conntrack_core::testkit::{Need, TestNetns, icmp_echo, ip, live, tcp, tcp_state, tuple, udp};
use conntrack_core::{
    Flow, L4Proto, L4Tuple, ProtoInfo, SctpInfo, SctpState, Status, TcpState, Tuple,
};

/// One `conntrack -I` and the flow it must come back as (without the
/// remaining timeout and the id, which the kernel decides).
struct Case {
    args: &'static str,
    want: Flow,
    timeout: u32,
}

/// An untranslated flow: the kernel derives the reply tuple, and it must
/// be [`Tuple::inverse`]'s.
fn case(args: &'static str, orig: Tuple, status: Status) -> Case {
    let reply = orig.inverse().expect("an invertible tuple");
    case_translated(args, orig, reply, status)
}

/// A flow whose reply tuple is given (`-r`/`-q`, `--src-nat`).
fn case_translated(args: &'static str, orig: Tuple, reply: Tuple, status: Status) -> Case {
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

fn cases() -> Vec<Case> {
    use L4Proto as P;
    let replied = Status::SEEN_REPLY;
    let mut v = Vec::new();

    let mut c = case(
        "-p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 443 --state ESTABLISHED -t 431999 -u SEEN_REPLY,ASSURED --mark 7",
        tcp("10.0.0.1", 40000, "10.0.0.2", 443),
        replied | Status::ASSURED,
    );
    c.want.protoinfo = tcp_state(TcpState::ESTABLISHED);
    c.want.mark = Some(7);
    v.push(c);

    let mut c = case_translated(
        "-p tcp -s 10.0.0.5 -d 10.0.0.6 -r 10.0.0.7 -q 10.0.0.8 --sport 1 --dport 2 --reply-port-src 3 --reply-port-dst 4 --state SYN_SENT -t 120 --zone 5",
        tcp("10.0.0.5", 1, "10.0.0.6", 2),
        tcp("10.0.0.7", 3, "10.0.0.8", 4),
        Status::empty(),
    );
    c.want.protoinfo = tcp_state(TcpState::SYN_SENT);
    c.want.zone = Some(5);
    v.push(c);

    let mut c = case(
        "-p tcp -s 10.0.1.1 -d 10.0.1.2 --sport 1 --dport 2 --state TIME_WAIT -t 100 -u SEEN_REPLY --orig-zone 3",
        tcp("10.0.1.1", 1, "10.0.1.2", 2),
        replied,
    );
    c.want.protoinfo = tcp_state(TcpState::TIME_WAIT);
    c.want.orig.zone = Some(3);
    v.push(c);

    let mut c = case_translated(
        "-p tcp -s 10.0.2.1 -d 10.0.2.2 --sport 5 --dport 6 --state ESTABLISHED -t 100 -u SEEN_REPLY --src-nat 192.0.2.1",
        tcp("10.0.2.1", 5, "10.0.2.2", 6),
        tcp("10.0.2.2", 6, "192.0.2.1", 5),
        replied,
    );
    c.want.protoinfo = tcp_state(TcpState::ESTABLISHED);
    v.push(c);

    v.push(case(
        "-p udp -s 2001:db8::1 -d 2001:db8::2 --sport 1000 --dport 53 -t 30",
        udp("2001:db8::1", 1000, "2001:db8::2", 53),
        Status::empty(),
    ));
    v.push(case(
        "-p udplite -s 10.0.0.1 -d 10.0.0.2 --sport 7 --dport 8 -t 30 -u SEEN_REPLY",
        tuple(P::UDPLITE, "10.0.0.1", 7, "10.0.0.2", 8),
        replied,
    ));
    v.push(case(
        "-p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30",
        icmp_echo("10.0.0.1", "10.0.0.2", 77),
        Status::empty(),
    ));
    v.push(case(
        "-p icmpv6 -s 2001:db8::1 -d 2001:db8::2 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 5 -t 30",
        icmp_echo("2001:db8::1", "2001:db8::2", 5),
        Status::empty(),
    ));
    let mut c = case(
        "-p sctp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 5001 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 210 -u SEEN_REPLY,ASSURED",
        tuple(P::SCTP, "10.0.0.1", 5000, "10.0.0.2", 5001),
        replied | Status::ASSURED,
    );
    c.want.protoinfo = Some(ProtoInfo::Sctp(SctpInfo::new(SctpState::ESTABLISHED)));
    v.push(c);
    v.push(case(
        "-p gre -s 10.0.0.1 -d 10.0.0.2 --srckey 0x10 --dstkey 0xbeef -t 180",
        tuple(P::GRE, "10.0.0.1", 0x10, "10.0.0.2", 0xbeef),
        Status::empty(),
    ));
    v.push(case(
        "-p 253 -s ::ffff:10.0.0.1 -d ::1.2.3.4 -t 600",
        Tuple::new(
            ip("::ffff:10.0.0.1"),
            ip("::1.2.3.4"),
            L4Proto(253),
            L4Tuple::None,
        ),
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
