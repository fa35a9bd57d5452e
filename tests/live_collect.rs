//! `conntrack_kit::live::collect` against a real table: a fresh network
//! namespace filled with known flows, compared with the `conntrack` CLI.
//! Needs root (namespaces, ctnetlink), the `conntrack` CLI and `nft`;
//! without them it prints why and passes, unless
//! `CONNTRACK_KIT_REQUIRE_LIVE=1` (CI).

use conntrack_core::testkit::{self, Need, Reaped, TestNetns};
use conntrack_kit::live::{
    DumpProgress, LiveError, LiveOptions, LiveTarget, collect, collect_with_progress,
};
use conntrack_kit::netlink::fill::{FillOptions, fill};
use conntrack_kit::netlink::{Conntrack, Netns};
use conntrack_kit::tune::Policy;
use conntrack_kit::tune::render::report_text;
use conntrack_kit::tune::report::{Origin, OriginKind, Report};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

fn live(test: &str) -> bool {
    testkit::live(
        test,
        &[
            Need::Root,
            Need::Tool("conntrack"),
            Need::Tool("nft"),
            Need::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
        ],
    )
}

/// A source-NAT chain in `ns` with one rule: `oifname RULE` (an
/// interface and a statement).
fn masquerade(ns: &TestNetns, rule: &str) {
    for cmd in [
        "add table ip ck_nat".to_string(),
        "add chain ip ck_nat post { type nat hook postrouting priority srcnat ; }".to_string(),
        format!("add rule ip ck_nat post oifname {rule}"),
    ] {
        let mut args = vec!["nft"];
        args.extend(cmd.split(' '));
        ns.exec(&args);
    }
}

/// A "node" (namespace `a`, forwarding) between a "container" (`b`,
/// 10.77.1.2, its default route through the node at `node_b`, an
/// address of 10.77.1.0/24 with `ip addr` options) and a server network
/// (`c`, 10.77.2.2; the node's side, `vc`, 10.77.2.1 unless
/// `with_vc_address` is false).
struct Node {
    a: TestNetns,
    b: TestNetns,
    c: TestNetns,
}

fn node_with(node_b: &str, with_vc_address: bool) -> Node {
    let (a, b, c) = (
        TestNetns::new("ck-own-node"),
        TestNetns::new("ck-own-ctr"),
        TestNetns::new("ck-own-srv"),
    );
    for (dev, peer) in [("vb", &b), ("vc", &c)] {
        a.exec(&[
            "ip",
            "link",
            "add",
            dev,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            peer.name(),
        ]);
    }
    let mut addrs = vec![
        (&a, "vb", node_b),
        (&b, "eth0", "10.77.1.2/24"),
        (&c, "eth0", "10.77.2.2/24"),
    ];
    if with_vc_address {
        addrs.push((&a, "vc", "10.77.2.1/24"));
    }
    for (ns, dev, addr) in addrs {
        let mut args = vec!["ip", "addr", "add"];
        args.extend(addr.split(' '));
        args.extend(["dev", dev]);
        ns.exec(&args);
    }
    for (ns, dev) in [(&a, "vb"), (&a, "vc"), (&b, "eth0"), (&c, "eth0")] {
        ns.exec(&["ip", "link", "set", dev, "up"]);
    }
    if !with_vc_address {
        a.exec(&["ip", "route", "add", "10.77.2.0/24", "dev", "vc"]);
    }
    b.exec(&["ip", "route", "add", "default", "via", "10.77.1.1"]);
    a.sysctl("net.ipv4.ip_forward", "1");
    Node { a, b, c }
}

/// The server: a listener on 10.77.2.2:8080 in the node's `c`.
fn server(c: &TestNetns) -> std::net::TcpListener {
    Netns::named(c.name())
        .run(|| Ok(std::net::TcpListener::bind("10.77.2.2:8080").expect("listen in C")))
        .expect("enter C")
}

fn node(node_b: &str) -> Node {
    node_with(node_b, true)
}

/// Entries `conntrack -L` lists in the namespace.
fn cli_count(ns: &TestNetns) -> u64 {
    let out = ns.exec(&["conntrack", "-L"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64
}

#[test]
fn collects_a_namespace_as_doctor_does() {
    if !live("collects_a_namespace_as_doctor_does") {
        return;
    }
    let ns = TestNetns::new("ck-live-collect");
    let netns = Netns::named(ns.name());
    let mut ct = Conntrack::open_in(&netns).expect("open");
    assert_eq!(
        fill(&mut ct, &FillOptions::new(300)).expect("fill").created,
        300
    );
    // A MASQUERADE rule, so the collected NAT rules have something to show.
    masquerade(&ns, "lo masquerade fully-random");

    let mut calls = Vec::new();
    let c = collect_with_progress(
        &LiveTarget::Namespace(netns),
        &LiveOptions::default()
            .with_window(Duration::from_millis(50))
            .with_top(5),
        |p: DumpProgress| calls.push(p),
    )
    .expect("collect");
    let cli = cli_count(&ns);
    assert_eq!(cli, 300, "the CLI's view of the filled table");

    let o = &c.observation;
    let hot = o.hotspots.as_ref().expect("hotspots from the dump");
    assert_eq!(hot.flows, cli, "every entry counted once");
    assert_eq!(
        o.snapshot.count,
        Some(300),
        "the count is the namespace's own"
    );
    assert!(o.rates.is_some(), "two samples a window apart give rates");
    assert!(
        c.stats_source
            .as_deref()
            .unwrap_or("")
            .starts_with("ctnetlink"),
        "{:?}",
        c.stats_source
    );
    let chains = o.chains.as_ref().expect("bucket simulation");
    assert!(chains.nodes <= 300, "a sample of the table: {chains:?}");
    let owners = o.owners.as_ref().expect("owners");
    assert_eq!(owners.flows, 300);
    assert!(o.unread.is_empty(), "{:?}", o.unread);
    let nat = o
        .config
        .nat_rules
        .as_ref()
        .expect("the namespace's NAT rules");
    assert_eq!(nat.source_nat.len(), 1, "{nat:?}");
    assert!(nat.source_nat[0].fully_random, "{nat:?}");
    assert!(
        c.notes.iter().any(|n| n.contains("RPS settings")),
        "another namespace says whose RPS it read: {:?}",
        c.notes
    );

    // Progress: starts at zero and knows what to expect.
    assert_eq!(calls.first().map(|p| p.flows), Some(0), "{calls:?}");
    assert!(calls.iter().all(|p| p.expected == Some(300)), "{calls:?}");
}

#[test]
fn window_zero_takes_one_sample_and_says_so() {
    if !live("window_zero_takes_one_sample_and_says_so") {
        return;
    }
    let ns = TestNetns::new("ck-live-w0");
    let c = collect(
        &LiveTarget::Namespace(Netns::named(ns.name())),
        &LiveOptions::default().with_window(Duration::ZERO),
    )
    .expect("collect");
    assert!(c.observation.rates.is_none());
    assert_eq!(c.observation.hotspots.as_ref().map(|h| h.flows), Some(0));
    assert!(
        c.notes.iter().any(|n| n.contains("one statistics sample")),
        "{:?}",
        c.notes
    );
}

#[test]
fn a_missing_namespace_is_a_netlink_step_error() {
    if !live("a_missing_namespace_is_a_netlink_step_error") {
        return;
    }
    let e = collect(
        &LiveTarget::Namespace(Netns::named("ck-live-no-such-namespace")),
        &LiveOptions::default(),
    )
    .unwrap_err();
    match &e {
        LiveError::Netlink { what, .. } => assert_eq!(*what, "open ctnetlink", "{e}"),
        e => panic!("expected a netlink step error, got {e}"),
    }
    assert!(e.netlink().is_some());
}

/// A "container" (namespace B, a real process holding a TCP connection)
/// behind a "node" (namespace A: forwarding and MASQUERADE) to a server
/// in namespace C. Doctor's collection of A finds the client's socket
/// in B through the process's `/proc/PID/net` and counts A's translated
/// entry under that process.
#[test]
fn flows_routed_for_another_namespace_count_under_its_process() {
    if !live("flows_routed_for_another_namespace_count_under_its_process") {
        return;
    }
    let Node { a, b, c } = node("10.77.1.1/24");
    masquerade(&a, "vc masquerade");
    let listener = server(&c);
    // The client: bash's /dev/tcp, held open until the test ends.
    let mut client = Reaped(
        b.command("bash")
            .args([
                "-c",
                "exec 3<>/dev/tcp/10.77.2.2/8080 && echo up && read -t 120 <&3",
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the client"),
    );
    let mut line = String::new();
    BufReader::new(client.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the client's first line");
    assert_eq!(line.trim(), "up", "the client connected");
    let (_accepted, peer) = listener.accept().expect("accept");
    assert_eq!(
        peer.ip().to_string(),
        "10.77.2.1",
        "masqueraded by the node"
    );

    let col = collect(
        &LiveTarget::Namespace(Netns::named(a.name())),
        &LiveOptions::default().with_window(Duration::ZERO),
    )
    .expect("collect");
    let listed = String::from_utf8_lossy(&a.exec(&["conntrack", "-L"]).stdout).into_owned();
    assert!(listed.contains("src=10.77.1.2"), "{listed}");
    let owners = col.observation.owners.as_ref().expect("owners");
    assert_eq!(owners.flows, cli_count(&a), "{listed}");
    assert!(
        owners.in_other_namespaces >= 1,
        "{owners:?}\n{:?}",
        col.notes
    );
    assert!(
        owners
            .by_process
            .iter()
            .any(|p| p.pid == client.0.id() && p.comm == "bash"),
        "the client process owns the node's entry: {owners:?}"
    );
    // doctor's text says so.
    let report = Report::build(
        &col.observation,
        Origin::new(OriginKind::Live, "node"),
        &Policy::default(),
    )
    .expect("report");
    let text = report_text(&report);
    assert!(
        text.contains("routed here for another network namespace of this host"),
        "{text}"
    );
}

/// The same through a thread: a thread of this test process enters the
/// "container" namespace and holds the connection there (as the incident
/// lab's clients do); the thread's namespace is found through
/// `/proc/PID/task/TID/ns/net`, and the entry counts under this process.
#[test]
fn flows_of_a_thread_in_another_namespace_count_under_its_process() {
    if !live("flows_of_a_thread_in_another_namespace_count_under_its_process") {
        return;
    }
    let Node { a, b, c } = node("10.77.1.1/24");
    masquerade(&a, "vc masquerade");
    let listener = server(&c);
    let (connected, done) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let (tx, stop) = (connected.0, done.1);
    let client = Netns::named(b.name())
        .spawn("ck-client", move || {
            let s = std::net::TcpStream::connect("10.77.2.2:8080").expect("connect from B");
            tx.send(()).expect("tell the test");
            let _ = stop.recv();
            drop(s);
            Ok(())
        })
        .expect("a thread in B");
    connected.1.recv().expect("the thread connected");
    let _accepted = listener.accept().expect("accept");
    let col = collect(
        &LiveTarget::Namespace(Netns::named(a.name())),
        &LiveOptions::default().with_window(Duration::ZERO),
    )
    .expect("collect");
    drop(done.0);
    client
        .join()
        .expect("the client thread")
        .expect("its result");
    let owners = col.observation.owners.as_ref().expect("owners");
    assert!(owners.in_other_namespaces >= 1, "{owners:?}");
    assert!(
        owners
            .by_process
            .iter()
            .any(|p| p.pid == std::process::id()),
        "this process owns the node's entry: {owners:?}"
    );
}

/// The drop tracer's window names the process whose packets were
/// dropped: a "container" behind a node whose MASQUERADE finds no
/// address (the node's only address is link-scoped, none on the way
/// out), so every SYN of the container's `bash` is a NAT failure, and
/// the summary's owner is that `bash`, found through its namespace.
#[cfg(feature = "trace")]
#[test]
fn traced_drops_name_the_container_process_that_sent_them() {
    use conntrack_kit::analyze::drops::DropCause;
    use conntrack_kit::traced::TraceWindow;
    if !live("traced_drops_name_the_container_process_that_sent_them") {
        return;
    }
    let Node { a, b, c: _c } = node_with("10.77.1.1/24 scope link", false);
    masquerade(&a, "vc masquerade");
    let window = match TraceWindow::start(Netns::named(a.name()), Duration::from_secs(3)) {
        Ok(w) => w,
        Err(e) if e.is_unavailable() && !testkit::live_required() => {
            println!("SKIP: {e}");
            return;
        }
        Err(e) => panic!("tracer: {e}"),
    };
    // SYNs retried for the whole window (1 s, 3 s, ...).
    let client = Reaped(
        b.command("bash")
            .args(["-c", "exec 3<>/dev/tcp/10.77.2.2/8080"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the client"),
    );
    let target = LiveTarget::Namespace(Netns::named(a.name()));
    let s = window
        .finish_owned(|| {
            conntrack_kit::live::owner_tables(&target)
                .0
                .map(|t| t.sockets)
        })
        .expect("the window's summary");
    let g = s.group(DropCause::NatFailure).expect("NAT failures traced");
    assert!(g.drops >= 1, "{s:?}");
    let owner = format!("pid {} bash", client.0.id());
    assert_eq!(
        g.owners.first().map(|k| (k.value.as_str(), k.drops)),
        Some((owner.as_str(), g.drops)),
        "{s:?}"
    );
    assert!(
        s.describe(DropCause::NatFailure)
            .unwrap()
            .contains(&format!("sent by {owner} (100%)")),
        "{s:?}"
    );
}
