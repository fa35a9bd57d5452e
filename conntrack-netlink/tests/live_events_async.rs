//! Live tests of the `tokio` feature: the async event stream and the async
//! dump, in a fresh network namespace, as root. Without root they print
//! why and pass, unless `CONNTRACK_KIT_REQUIRE_LIVE=1`.
//!
//! `cargo test -p conntrack-netlink --features tokio --test live_events_async`
#![cfg(feature = "tokio")]

use conntrack_core::FlowLike;
use conntrack_core::testkit::TestNetns;
use conntrack_netlink::event::{
    AsyncEventSocket, EventConfig, EventKind, Groups, Item, dump_async,
};
use conntrack_netlink::fill::{FillOptions, Mix, fill, synthetic_flow};
use conntrack_netlink::mirror::Table;
use conntrack_netlink::{Conntrack, Netns};
use std::time::Duration;

mod support;
use support::live;

#[tokio::test(flavor = "current_thread")]
async fn async_events_and_dump_build_the_same_table() {
    if !live("async_events_and_dump_build_the_same_table") {
        return;
    }
    let ns = TestNetns::new("evasync");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");

    // Subscribe, then fill and dump, then apply events: entries created
    // before any listener would never send events (nf_conntrack_events=2).
    let cfg = EventConfig::new(Groups::CONNTRACK).netns(Netns::named(ns.name()));
    let mut events = AsyncEventSocket::open(&cfg).expect("async event socket");
    fill(&mut ct, &FillOptions::new(300)).expect("fill");
    let mut table = Table::new();
    let n = dump_async(&Netns::named(ns.name()), |f| {
        table.insert_flow(f);
    })
    .await
    .expect("async dump");
    assert_eq!((n, table.len()), (300, 300));

    // Changes from a blocking thread while the runtime waits for events.
    let netns = Netns::named(ns.name());
    let changer = std::thread::spawn(move || {
        let mut ct = Conntrack::open_in(&netns).expect("ctnetlink");
        fill(&mut ct, &FillOptions::new(50).start(1_000)).expect("fill");
        for i in 0..20 {
            let f = synthetic_flow(Mix::default().kind_of(i), i, 600);
            let _ = ct.delete(&f.orig, None, None);
        }
    });
    let (mut new, mut destroy) = (0, 0);
    while new < 350 || destroy < 20 {
        let item = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event within 5 s")
            .expect("recv");
        match item {
            Item::Event(e) => {
                match e.kind {
                    EventKind::New => new += 1,
                    EventKind::Destroy => destroy += 1,
                    // Updates (and kinds a later release adds) are not
                    // what this test counts.
                    _ => {}
                }
                table.apply(&e);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    changer.join().expect("changer");
    assert_eq!((new, destroy), (350, 20));
    let fresh = Table::from_dump(&mut ct).expect("dump");
    let d = table.diff(&fresh);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(table.len(), 330);
    assert!(
        table
            .iter()
            .all(|e| e.orig().src_port().is_some() || e.orig().proto.is_icmp())
    );
}
