//! `HostFs::for_current_thread` on a thread that entered another network
//! namespace (`Netns::run`): every fact of the snapshot is that
//! namespace's, where the process view (`HostFs::new("/")`) on the same
//! thread mixes the thread's sysctls with the main thread's
//! `stat/nf_conntrack` and namespace link.
//!
//! Live: needs root (a throw-away namespace, ctnetlink); skips otherwise
//! unless `CONNTRACK_KIT_REQUIRE_LIVE=1`.

use conntrack_core::testkit::{Need, TestNetns, flow, live, udp};
use conntrack_kit::ct_core::host::{HostFs, HostReport, NET_NS_INIT_INO};
use conntrack_kit::netlink::{Conntrack, Netns};
use std::os::unix::fs::MetadataExt;

#[test]
fn thread_view_reads_the_entered_namespace() {
    if !live(
        "thread_view_reads_the_entered_namespace",
        &[
            Need::Root,
            Need::Tool("ip"),
            Need::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
        ],
    ) {
        return;
    }
    let ns = TestNetns::new("thread-view");
    let netns = Netns::named(ns.name());
    let mut ct = Conntrack::open_in(&netns).expect("ctnetlink in the namespace");
    for sport in [1000, 1001, 1002] {
        let mut f = flow(udp("10.78.0.1", sport, "10.78.0.2", 53));
        f.timeout = Some(600);
        ct.create(&f).expect("create a flow");
    }
    // A named namespace's file is a bind mount of its nsfs inode.
    let ino = std::fs::metadata(format!("/var/run/netns/{}", ns.name()))
        .expect("the namespace file")
        .ino();

    let (thread, process): (HostReport, HostReport) = netns
        .run(|| {
            Ok((
                HostFs::new("/").for_current_thread().read_snapshot(),
                HostFs::new("/").read_snapshot(),
            ))
        })
        .expect("enter the namespace");

    let s = &thread.snapshot;
    assert_eq!(s.netns_inode, Some(ino), "problems: {:?}", thread.problems);
    assert_eq!(s.count, Some(3), "the namespace's sysctl");
    assert_eq!(
        s.stats.as_ref().and_then(|st| st.entries),
        Some(3),
        "the namespace's stat file"
    );
    assert!(s.max.is_some() && s.timeouts.contains_key("udp"));
    if s.kernel_version.is_some_and(|v| v.at_least(5, 13)) {
        // 6.18+: the inode says so; 5.13+: nf_conntrack_max is read-only
        // outside the initial namespace.
        assert_eq!(s.init_netns, Some(false));
    }
    assert_ne!(s.netns_inode, Some(NET_NS_INIT_INO));

    // The process view on the same thread: sysctls from the entered
    // namespace, but the namespace link of the main thread.
    assert_eq!(process.snapshot.count, Some(3));
    assert_ne!(process.snapshot.netns_inode, Some(ino));
}
