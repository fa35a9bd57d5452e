//! Real kernel messages (`fixtures/`, captured on Linux 6.18 by
//! `fixtures/capture.py`) decode to what the `conntrack` CLI printed at the
//! same moment, and re-encode to the same bytes.

use conntrack_core::cli::list::parse_lines;
use conntrack_core::cli::stats::parse_cli_stats;
use conntrack_core::{Flow, FlowState, L3Family, L4Proto, ProtoInfo, SctpState, Status};
use conntrack_netlink::wire::message::{IPCTNL_MSG_CT_GET_STATS, IPCTNL_MSG_CT_GET_STATS_CPU};
use conntrack_netlink::wire::{
    EventKind, FlowView, decode_stats_cpu, decode_stats_global, encode, flows, messages,
};
use std::collections::HashMap;

mod support;
use support::fixture;

fn text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap()
}

fn dump() -> Vec<FlowView<'static>> {
    let buf: &'static [u8] = fixture("dump.bin").leak();
    let mut it = flows(buf);
    let views: Vec<_> = it.by_ref().map(|f| f.unwrap()).collect();
    assert!(it.is_done(), "the dump ends with NLMSG_DONE");
    assert_eq!(it.error_code(), Some(0));
    assert!(!it.dump_interrupted());
    assert_eq!(it.skipped(), 0);
    views
}

#[test]
fn dump_matches_cli_listing() {
    let cli: HashMap<u32, Flow> = parse_lines(&text("list.txt"))
        .map(|f| f.unwrap())
        .map(|f| (f.id.unwrap(), f))
        .collect();
    let views = dump();
    assert_eq!(views.len(), 14);
    assert_eq!(views.len(), cli.len());
    for v in &views {
        let c = &cli[&v.id().unwrap()];
        let ctx = format!("{c:?}");
        assert_eq!(v.orig(), c.orig, "{ctx}");
        assert_eq!(v.reply(), c.reply, "{ctx}");
        for bit in [Status::CONFIRMED, Status::SEEN_REPLY, Status::ASSURED] {
            assert_eq!(v.status().contains(bit), c.status.contains(bit), "{ctx}");
        }
        assert_eq!(v.state(), c.state(), "{ctx}");
        assert_eq!(v.counters_orig(), c.counters_orig, "{ctx}");
        assert_eq!(v.counters_reply(), c.counters_reply, "{ctx}");
        assert_eq!(v.mark(), c.mark, "{ctx}");
        assert_eq!(v.zone(), c.zone, "{ctx}");
        assert_eq!(v.use_count(), c.use_count, "{ctx}");
        assert_eq!(v.helper(), c.helper.as_deref(), "{ctx}");
        // The CLI listed right after the dump: a second may have passed.
        let (a, b) = (v.timeout().unwrap(), c.timeout.unwrap());
        assert!(a.abs_diff(b) <= 2, "{ctx}: timeout {a} vs {b}");
        assert!(v.timestamp().unwrap().start > 1_700_000_000_000_000_000);
        assert_eq!(v.nfgenmsg().family, v.family().0);
        assert_eq!(v.event_kind(), EventKind::Update);
    }
}

#[test]
fn dump_covers_every_feature() {
    let views = dump();
    let count = |p: &dyn Fn(&FlowView) -> bool| views.iter().filter(|v| p(v)).count();
    assert_eq!(count(&|v| v.family() == L3Family::INET6), 3);
    for proto in [
        L4Proto::TCP,
        L4Proto::UDP,
        L4Proto::ICMP,
        L4Proto::ICMPV6,
        L4Proto::SCTP,
    ] {
        assert!(count(&|v| v.proto() == proto) > 0, "{proto}");
    }
    // SNAT to 10.99.0.3 and DNAT from 10.99.0.200, with their status bits.
    let snat: Vec<_> = views.iter().filter(|v| v.nat().snat).collect();
    assert_eq!(snat.len(), 1);
    assert!(
        snat[0]
            .status()
            .contains(Status::SRC_NAT | Status::SRC_NAT_DONE)
    );
    assert_eq!(snat[0].reply().dst.to_string(), "10.99.0.3");
    let dnat: Vec<_> = views.iter().filter(|v| v.nat().dnat).collect();
    assert_eq!(dnat.len(), 1);
    assert!(dnat[0].status().contains(Status::DST_NAT));
    assert_eq!(dnat[0].orig().dst.to_string(), "10.99.0.200");
    // Zones: CTA_ZONE 7 (nft), 3 (conntrack -I), and an original-direction
    // tuple zone 8.
    let mut zones: Vec<_> = views.iter().filter_map(|v| v.zone()).collect();
    zones.sort();
    assert_eq!(zones, [3, 7]);
    assert_eq!(
        count(&|v| v.orig().zone == Some(8) && v.reply().zone.is_none()),
        1
    );
    // Mark 0x42 on the UDP echo flow, label bit 5 on the IPv4 flow to 7777.
    assert_eq!(count(&|v| v.mark() == Some(0x42)), 1);
    let labelled: Vec<_> = views.iter().filter(|v| v.labels().is_some()).collect();
    assert_eq!(labelled.len(), 1);
    assert_eq!(
        labelled[0].labels().unwrap().iter().collect::<Vec<_>>(),
        [5]
    );
    assert_eq!(labelled[0].orig().dst_port(), Some(7777));
    // The FTP control connection has the helper; the data connection is
    // expected, with the control connection's original tuple as master.
    let ftp = views.iter().find(|v| v.helper() == Some("ftp")).unwrap();
    let data = views.iter().find(|v| v.master().is_some()).unwrap();
    assert_eq!(data.master(), Some(ftp.orig()));
    assert!(data.status().contains(Status::EXPECTED));
    assert_eq!(data.orig().dst_port(), Some(50000));
    // SCTP protoinfo from conntrack -I (6.18 reports the vtags as 0 for an
    // entry created this way; the bytes say so).
    let sctp = views.iter().find(|v| v.proto() == L4Proto::SCTP).unwrap();
    match sctp.protoinfo() {
        Some(ProtoInfo::Sctp(s)) => {
            assert_eq!(s.state, SctpState::ESTABLISHED);
            assert_eq!((s.vtag_orig, s.vtag_reply), (Some(0), Some(0)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sctp.state(), FlowState::Sctp(SctpState::ESTABLISHED));
    // TCP protoinfo carries window scales and flags.
    let tcp = views.iter().find_map(|v| match v.protoinfo() {
        Some(ProtoInfo::Tcp(t)) => Some(t),
        _ => None,
    });
    let tcp = tcp.unwrap();
    assert!(tcp.wscale_orig.is_some() && tcp.flags_reply.is_some());
}

#[test]
fn kernel_layout_is_what_the_encoder_writes() {
    // encode_flow_as_kernel claims this kernel's attribute order and
    // encodings: every captured dump, get and event-free message agrees.
    for name in ["dump.bin", "dump_ipv6.bin", "get.bin"] {
        let buf = fixture(name);
        let mut n = 0;
        for m in messages(&buf) {
            let m = m.unwrap();
            if !m.is_ct_flow() {
                continue;
            }
            let v = FlowView::from_message(&m).unwrap();
            let mut out = Vec::new();
            encode::encode_flow_as_kernel(&v.to_owned(), &mut out);
            assert_eq!(out, m.attributes(), "{name} message at byte {}", m.offset);
            n += 1;
        }
        assert!(n > 0, "{name}");
    }
}

#[test]
fn ipv6_dump() {
    let buf = fixture("dump_ipv6.bin");
    let mut it = flows(&buf);
    let views: Vec<_> = it.by_ref().map(|f| f.unwrap()).collect();
    assert!(it.is_done());
    assert_eq!(views.len(), 3);
    assert!(views.iter().all(|v| v.family() == L3Family::INET6));
    assert!(views.iter().all(|v| v.nfgenmsg().family == 10));
}

#[test]
fn get_reply_then_ack() {
    let buf = fixture("get.bin");
    let mut it = flows(&buf);
    let v = it.next().unwrap().unwrap();
    assert_eq!(v.orig().dst_port(), Some(9999));
    assert_eq!(v.mark(), Some(0x42));
    assert!(it.next().is_none());
    assert_eq!(it.error_code(), Some(0), "the ACK");
    assert!(!it.is_done());
    assert_eq!(it.last_seq(), Some(3));
}

#[test]
fn events() {
    let dump_ids: Vec<u32> = {
        let mut ids: Vec<_> = dump().iter().map(|v| v.id().unwrap()).collect();
        ids.sort();
        ids
    };
    let buf = fixture("events.bin");
    let mut it = flows(&buf);
    let views: Vec<_> = it.by_ref().map(|f| f.unwrap()).collect();
    assert!(!it.is_finished(), "events have no DONE");
    let ids = |t: EventKind| {
        let mut ids: Vec<u32> = views
            .iter()
            .filter(|v| v.event_kind() == t)
            .map(|v| v.id().unwrap())
            .collect();
        ids.sort();
        ids
    };
    // Every flow of the dump was announced once and destroyed once (flush).
    assert_eq!(ids(EventKind::New), dump_ids);
    assert_eq!(ids(EventKind::Destroy), dump_ids);
    assert!(!ids(EventKind::Update).is_empty());
    for v in &views {
        // 6.14+ stamps every event.
        assert!(v.timestamp_event().is_some());
        if v.event_kind() == EventKind::Destroy {
            assert!(v.counters_orig().is_some() && v.counters_reply().is_some());
            let ts = v.timestamp().unwrap();
            assert!(ts.stop.unwrap() >= ts.start);
        }
    }
    let related = views
        .iter()
        .find(|v| v.event_kind() == EventKind::New && v.master().is_some());
    assert!(
        related.is_some(),
        "the NEW event of the FTP data connection"
    );
}

#[test]
fn stats_match_cli() {
    let cli = parse_cli_stats(&text("stats.txt")).unwrap();
    let buf = fixture("stats_cpu.bin");
    let mut cpus = Vec::new();
    for m in messages(&buf) {
        let m = m.unwrap();
        if m.msg_type() == IPCTNL_MSG_CT_GET_STATS_CPU && m.subsys() == 1 {
            cpus.push(decode_stats_cpu(m.payload).unwrap());
        } else {
            assert!(m.is_done());
        }
    }
    assert_eq!(cpus.len(), cli.cpus.len());
    for (ours, theirs) in cpus.iter().zip(&cli.cpus) {
        assert_eq!(ours.cpu, theirs.cpu);
        assert!(ours.other.is_empty());
        let a: Vec<_> = ours.iter().collect();
        let b: Vec<_> = theirs.iter().collect();
        assert_eq!(a, b);
    }
    let buf = fixture("stats_global.bin");
    let m = messages(&buf).next().unwrap().unwrap();
    assert_eq!(m.msg_type(), IPCTNL_MSG_CT_GET_STATS);
    let (entries, max) = decode_stats_global(m.payload).unwrap();
    assert_eq!(entries, Some(14));
    assert!(max.unwrap() > 0);
}
