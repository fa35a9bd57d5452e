//! Live test: sockets opened in a fresh network namespace are attributed
//! back to this test's own PID through `/proc/net/*`, `/proc/PID/fd` and
//! the kernel's own conntrack table (`conntrack -L`, parsed by
//! `conntrack_core::cli::list`).
//!
//! The test re-executes itself inside the namespace (`ip netns exec`), so
//! no unsafe `setns` is needed: the child opens the sockets and attributes
//! them to its own PID. Skips (printing why) when not root or a tool is
//! missing, unless `CONNTRACK_KIT_REQUIRE_LIVE=1`, which turns the skip into
//! a failure.

use conntrack_analyze::attribution::ProcReader;
use conntrack_core::testkit::{Need, TestNetns, live};
use conntrack_core::{Flow, FlowLike, L4Proto};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;

const CHILD_ENV: &str = "CONNTRACK_ANALYZE_LIVE_CHILD";

#[test]
fn live_attribution_to_own_pid() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return; // running as the child: only the child test does work
    }
    let needs = [
        Need::Root,
        Need::Tool("ip"),
        Need::Tool("nft"),
        Need::Tool("conntrack"),
    ];
    if !live("live_attribution_to_own_pid", &needs) {
        return;
    }
    let ns = TestNetns::new("attr");
    let exe = std::env::current_exe().expect("test binary path");
    let out = ns
        .command(exe)
        .args([
            "--exact",
            "live_attribution_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run child in namespace");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "child failed in namespace {}",
        ns.name()
    );
    assert!(text.contains("1 passed"), "child test did not run");
}

fn sh(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn live_attribution_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful inside the namespace the parent made
    }
    sh("ip", &["link", "set", "lo", "up"]);
    // Conntrack starts tracking in a namespace once a ruleset uses it.
    sh(
        "nft",
        &["add table inet cka; \
             add chain inet cka out { type filter hook output priority 0; }; \
             add rule inet cka out ct state new counter accept"],
    );

    // TCP over IPv4 and IPv6, and connected UDP, all on loopback.
    let mut ports = Vec::new();
    let mut keep = Vec::new();
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let l = TcpListener::bind(addr).expect("bind");
        let mut c = TcpStream::connect(l.local_addr().unwrap()).expect("connect");
        let (mut s, _) = l.accept().expect("accept");
        c.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        s.write_all(b"pong").unwrap();
        c.read_exact(&mut b).unwrap();
        ports.push((L4Proto::TCP, l.local_addr().unwrap().port()));
        keep.push((l, c, s));
    }
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(server.local_addr().unwrap()).unwrap();
    client.send(b"ping").unwrap();
    let mut b = [0u8; 16];
    let (_, from) = server.recv_from(&mut b).unwrap();
    server.send_to(b"pong", from).unwrap();
    client.recv(&mut b).unwrap();
    ports.push((L4Proto::UDP, server.local_addr().unwrap().port()));

    let listing = sh("conntrack", &["-L"]);
    let flows: Vec<Flow> = conntrack_core::cli::list::parse_lines(&listing)
        .map(|f| f.expect("conntrack -L line parses"))
        .filter(|f| {
            ports
                .iter()
                .any(|&(p, port)| f.proto() == p && f.orig().dst_port() == Some(port))
        })
        .collect();
    assert_eq!(flows.len(), 3, "expected our 3 flows in:\n{listing}");

    let table = ProcReader::host().socket_table().expect("read /proc");
    let me = std::process::id();
    for f in &flows {
        let o = table
            .owner_of(f)
            .unwrap_or_else(|| panic!("no owner for {f:?}"));
        assert_eq!(o.pid, me, "{f:?}");
        assert!(!o.comm.is_empty());
    }
    let summary = table.attribute(flows.iter());
    println!("{summary}");
    assert_eq!(summary.flows, 3);
    assert_eq!(summary.with_owner, 3);
    assert_eq!(summary.by_process.len(), 1);
    assert_eq!(summary.by_process[0].pid, me);
    assert_eq!(summary.by_process[0].flows, 3);
    drop(keep);
}
