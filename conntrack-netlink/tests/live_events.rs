//! Live event tests: each in a fresh network namespace, as root. Without
//! root they print why and pass, unless `CONNTRACK_KIT_REQUIRE_LIVE=1`
//! (CI), where they fail.

use conntrack_core::testkit::TestNetns;
use conntrack_core::{Flow, Status, TcpState};
use conntrack_netlink::event::{EventConfig, EventKind, EventSocket, Groups, Item, RcvBuf};
use conntrack_netlink::{Conntrack, Netns, Update};
use std::time::Duration;

mod support;
use support::live;

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = r
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// An established TCP flow 10.1.0.1:`sport` -> 10.1.0.2:443.
fn tcp_flow(sport: u16) -> Flow {
    let mut f = support::tcp("10.1.0.1", sport, "10.1.0.2", 443, TcpState::ESTABLISHED);
    f.timeout = Some(300);
    f
}

#[test]
fn create_update_delete_exact_events() {
    if !live("create_update_delete_exact_events") {
        return;
    }
    let ns = TestNetns::new("ev");
    ns.sysctl("net.netfilter.nf_conntrack_acct", "1");
    ns.sysctl("net.netfilter.nf_conntrack_timestamp", "1");
    let cfg = EventConfig::new(Groups::CONNTRACK)
        .netns(Netns::named(ns.name()))
        .timeout(Some(Duration::from_secs(2)));
    let mut ev = EventSocket::open(&cfg).expect("event socket");
    let rb = ev.rcvbuf();
    assert!(rb.forced, "root may force the receive buffer: {rb:?}");
    assert!(rb.obtained >= RcvBuf::AUTO_BYTES, "{rb:?}");

    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink socket");
    let f = tcp_flow(40000);
    ct.create(&f).expect("create");
    ct.update(&Update::new(f.orig).mark(7)).expect("update");
    ct.delete(&f.orig, None, None).expect("delete");
    // A flow in the reverse direction in another zone, to see zones and
    // a NEW for a second entry, then a flush.
    let mut g = tcp_flow(40001);
    g.zone = Some(5);
    ct.create(&g).expect("create in zone 5");
    ct.delete(&g.orig, Some(5), None).expect("delete in zone 5");

    let mut got = Vec::new();
    while got.len() < 5 {
        match ev.next_owned().expect("recv") {
            None => break,
            Some(conntrack_netlink::event::OwnedItem::Event(e)) => got.push(e),
            Some(other) => panic!("unexpected item {other:?}"),
        }
    }
    let kinds: Vec<_> = got
        .iter()
        .map(|e| (e.kind, e.flow.orig.src_port()))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::New, Some(40000)),
            (EventKind::Update, Some(40000)),
            (EventKind::Destroy, Some(40000)),
            (EventKind::New, Some(40001)),
            (EventKind::Destroy, Some(40001)),
        ]
    );
    // Nothing else arrives.
    ev.set_timeout(Some(Duration::from_millis(200))).unwrap();
    assert!(ev.next_owned().unwrap().is_none(), "no further events");

    let (new, upd, del) = (&got[0].flow, &got[1].flow, &got[2].flow);
    for e in &got {
        assert_eq!(e.flow.orig.dst_port(), Some(443));
        assert_eq!(e.flow.reply.src_port(), Some(443));
        assert!(e.flow.status.contains(Status::CONFIRMED | Status::ASSURED));
        assert!(e.flow.id.is_some(), "events carry CTA_ID");
        assert!(e.flow.timeout.is_some(), "events carry CTA_TIMEOUT");
    }
    assert_eq!(new.tcp_state(), Some(TcpState::ESTABLISHED));
    // ctnetlink reports IPCT_MARK with a create, so mark 0 is sent.
    assert_eq!(new.mark.unwrap_or(0), 0);
    assert_eq!(upd.mark, Some(7));
    assert_eq!(del.mark, Some(7));
    assert_eq!(
        del.tcp_state(),
        Some(TcpState::ESTABLISHED),
        "DESTROY carries protoinfo"
    );
    assert_eq!(new.id, del.id);
    // DESTROY carries the accounting and the start/stop timestamps.
    assert_eq!(del.counters_orig.map(|c| c.packets), Some(0));
    assert!(del.counters_reply.is_some());
    let ts = del.timestamp.expect("DESTROY carries CTA_TIMESTAMP");
    assert!(
        ts.start > 0 && ts.stop.is_some_and(|s| s >= ts.start),
        "{ts:?}"
    );
    assert_eq!(got[3].flow.zone, Some(5));
    assert_eq!(got[4].flow.zone, Some(5));
    if kernel_at_least(6, 14) {
        for e in &got {
            let t = e.timestamp.expect("CTA_TIMESTAMP_EVENT on 6.14+");
            assert!(t >= ts.start - 1_000_000_000, "{t} vs start {}", ts.start);
        }
    } else {
        eprintln!("kernel < 6.14: no CTA_TIMESTAMP_EVENT expected");
    }
    let st = ev.stats();
    assert_eq!((st.events, st.lost, st.malformed), (5, 0, 0), "{st:?}");
}

#[test]
fn groups_filter_what_arrives() {
    if !live("groups_filter_what_arrives") {
        return;
    }
    let ns = TestNetns::new("evg");
    let cfg = EventConfig::new(Groups::DESTROY)
        .netns(Netns::named(ns.name()))
        .rcvbuf(RcvBuf::System)
        .timeout(Some(Duration::from_secs(2)));
    let mut ev = EventSocket::open(&cfg).expect("event socket");
    assert!(!ev.rcvbuf().forced && ev.rcvbuf().requested.is_none());
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink socket");
    let f = tcp_flow(41000);
    ct.create(&f).expect("create");
    ct.update(&Update::new(f.orig).mark(1)).expect("update");
    ct.delete(&f.orig, None, None).expect("delete");
    match ev.next().expect("recv") {
        Some(Item::Event(e)) => {
            assert_eq!(e.kind, EventKind::Destroy);
            assert_eq!(e.flow.orig(), f.orig);
        }
        other => panic!("expected a DESTROY, got {other:?}"),
    }
    ev.set_timeout(Some(Duration::from_millis(200))).unwrap();
    assert!(ev.next().unwrap().is_none());
}

#[test]
fn events_of_another_namespace_stay_there() {
    if !live("events_of_another_namespace_stay_there") {
        return;
    }
    let a = TestNetns::new("eva");
    let b = TestNetns::new("evb");
    let cfg = EventConfig::new(Groups::CONNTRACK)
        .netns(Netns::named(a.name()))
        .rcvbuf(RcvBuf::Bytes(1 << 20))
        .timeout(Some(Duration::from_millis(300)));
    let mut ev = EventSocket::open(&cfg).expect("event socket");
    let mut ct = Conntrack::open_in(&Netns::named(b.name())).expect("ctnetlink socket");
    ct.create(&tcp_flow(42000)).expect("create in b");
    assert!(ev.next().unwrap().is_none(), "a saw b's event");
    let mut cta = Conntrack::open_in(&Netns::named(a.name())).expect("ctnetlink socket");
    cta.create(&tcp_flow(42001)).expect("create in a");
    ev.set_timeout(Some(Duration::from_secs(2))).unwrap();
    match ev.next().unwrap() {
        Some(Item::Event(e)) => assert_eq!(e.flow.orig().src_port(), Some(42001)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn small_buffer_reports_loss_and_keeps_going() {
    if !live("small_buffer_reports_loss_and_keeps_going") {
        return;
    }
    let ns = TestNetns::new("evl");
    let cfg = EventConfig::new(Groups::NEW)
        .netns(Netns::named(ns.name()))
        .rcvbuf(RcvBuf::Bytes(16 << 10))
        .timeout(Some(Duration::from_millis(500)));
    let mut ev = EventSocket::open(&cfg).expect("event socket");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink socket");
    let opts = conntrack_netlink::fill::FillOptions::new(5_000);
    let r = conntrack_netlink::fill::fill(&mut ct, &opts).expect("fill");
    assert_eq!(r.created, 5_000);
    let (mut events, mut lost) = (0u64, 0u64);
    while let Some(item) = ev.next().expect("recv") {
        match item {
            Item::Event(_) => events += 1,
            Item::Lost { total } => {
                assert_eq!(total, lost + 1, "running count");
                lost = total;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(lost >= 1, "a 16 KiB buffer cannot hold 5,000 events");
    assert!(events > 0 && events < 5_000, "{events} events");
    // The socket still works after the loss.
    ct.create(&conntrack_netlink::fill::synthetic_flow(
        conntrack_netlink::fill::FlowKind::Udp,
        1_000_000,
        60,
    ))
    .expect("one more");
    match ev.next().expect("recv") {
        Some(Item::Event(e)) => assert_eq!(e.kind, EventKind::New),
        other => panic!("{other:?}"),
    }
}
