//! Attribution through a relocated /proc tree (built in a temp dir): two
//! processes, one in a Docker container, with TCP, UDP and IPv6 sockets;
//! flows matched outgoing, incoming behind DNAT, and on an unconnected UDP
//! socket. Hostile files are skipped, not fatal.

use conntrack_analyze::attribution::{ProcReader, Runtime};
use conntrack_core::{Flow, L4Proto, L4Tuple, Status, Tuple};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

/// `/proc/net/tcp` address text for this build's byte order.
fn v4(a: [u8; 4], port: u16) -> String {
    format!("{:08X}:{:04X}", u32::from_ne_bytes(a), port)
}

fn v6(a: [u8; 16], port: u16) -> String {
    let mut s = String::new();
    for w in a.chunks(4) {
        s.push_str(&format!(
            "{:08X}",
            u32::from_ne_bytes([w[0], w[1], w[2], w[3]])
        ));
    }
    format!("{s}:{port:04X}")
}

fn line(i: usize, local: &str, remote: &str, st: &str, inode: u64) -> String {
    format!(
        "{i:4}: {local} {remote} {st} 00000000:00000000 00:00000000 00000000  1000        0 {inode} 1 0000000000000000 20 4 30 10 -1\n"
    )
}

const HDR: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

fn proc_pid(root: &Path, pid: u32, comm: &str, cgroup: &str, links: &[&str]) {
    let d = root.join("proc").join(pid.to_string());
    fs::create_dir_all(d.join("fd")).unwrap();
    fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
    fs::write(d.join("cgroup"), cgroup).unwrap();
    for (i, l) in links.iter().enumerate() {
        symlink(l, d.join("fd").join(i.to_string())).unwrap();
    }
}

fn flow(p: L4Proto, s: &str, d: &str, sp: u16, dp: u16, rs: &str, rd: &str) -> Flow {
    let ip = |x: &str| x.parse().unwrap();
    Flow::new(
        Tuple::new(ip(s), ip(d), p, L4Tuple::Ports { src: sp, dst: dp }),
        Tuple::new(ip(rs), ip(rd), p, L4Tuple::Ports { src: dp, dst: sp }),
        Status::CONFIRMED | Status::SEEN_REPLY,
    )
}

#[test]
fn relocated_proc_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let net = root.join("proc/net");
    fs::create_dir_all(&net).unwrap();
    let zero4 = v4([0, 0, 0, 0], 0);
    // pid 100 (curl): outgoing 10.0.0.5:40000 -> 93.184.216.34:443
    // pid 200 (nginx, in Docker): accepted 172.17.0.2:80 <- 203.0.113.7:5555
    // pid 100: unconnected UDP on 0.0.0.0:5353; IPv6 TCP [2001:db8::5]:41000 -> [2001:db8::1]:443
    let tcp = format!(
        "{HDR}{}{}{}{}",
        line(
            0,
            &v4([10, 0, 0, 5], 40000),
            &v4([93, 184, 216, 34], 443),
            "01",
            1001
        ),
        line(
            1,
            &v4([172, 17, 0, 2], 80),
            &v4([203, 0, 113, 7], 5555),
            "01",
            2001
        ),
        line(2, &v4([172, 17, 0, 2], 80), &zero4, "0A", 2000),
        "   3: garbage line that must be skipped\n",
    );
    fs::write(net.join("tcp"), tcp).unwrap();
    let mut a6 = [0u8; 16];
    a6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    let mut l6 = a6;
    l6[15] = 5;
    let mut r6 = a6;
    r6[15] = 1;
    fs::write(
        net.join("tcp6"),
        format!("{HDR}{}", line(0, &v6(l6, 41000), &v6(r6, 443), "01", 1003)),
    )
    .unwrap();
    fs::write(
        net.join("udp"),
        format!(
            "{HDR}{}",
            line(0, &v4([0, 0, 0, 0], 5353), &zero4, "07", 1002)
        ),
    )
    .unwrap();
    // udp6 missing: skipped.
    let id = "9f".repeat(32);
    proc_pid(
        root,
        100,
        "curl",
        "0::/user.slice/user-1000.slice/session-3.scope\n",
        &[
            "socket:[1001]",
            "socket:[1002]",
            "socket:[1003]",
            "/dev/null",
            "pipe:[77]",
        ],
    );
    proc_pid(
        root,
        200,
        "nginx",
        &format!("0::/system.slice/docker-{id}.scope\n"),
        &["socket:[2001]", "socket:[2000]"],
    );
    // A process with unreadable / hostile files: no fd dir, binary cgroup.
    fs::create_dir_all(root.join("proc/300")).unwrap();
    fs::write(root.join("proc/300/cgroup"), [0xff, 0xfe, 0x00]).unwrap();
    fs::create_dir_all(root.join("proc/self")).unwrap(); // not a pid

    let flows = vec![
        // outgoing, masqueraded on the way out
        flow(
            L4Proto::TCP,
            "10.0.0.5",
            "93.184.216.34",
            40000,
            443,
            "93.184.216.34",
            "198.51.100.1",
        ),
        // incoming, DNAT'd from the host address to the container
        flow(
            L4Proto::TCP,
            "203.0.113.7",
            "198.51.100.1",
            5555,
            8080,
            "172.17.0.2",
            "203.0.113.7",
        ),
        // mDNS to the unconnected UDP socket
        flow(
            L4Proto::UDP,
            "10.0.0.9",
            "10.0.0.5",
            5353,
            5353,
            "10.0.0.5",
            "10.0.0.9",
        ),
        flow(
            L4Proto::TCP,
            "2001:db8::5",
            "2001:db8::1",
            41000,
            443,
            "2001:db8::1",
            "2001:db8::5",
        ),
        // nobody's
        flow(
            L4Proto::TCP,
            "10.9.9.9",
            "10.8.8.8",
            1,
            2,
            "10.8.8.8",
            "10.9.9.9",
        ),
    ];
    // The DNAT'd flow's reply comes from 172.17.0.2:80, not :8080.
    let mut flows = flows;
    flows[1].reply.l4 = L4Tuple::Ports { src: 80, dst: 5555 };

    let table = ProcReader::new(root).socket_table().unwrap();
    assert_eq!(table.owner_of(&flows[0]).unwrap().pid, 100);
    let nginx = table.owner_of(&flows[1]).unwrap();
    assert_eq!((nginx.pid, nginx.comm.as_str()), (200, "nginx"));
    let c = nginx.container.as_ref().unwrap();
    assert_eq!((c.runtime, c.id.as_str()), (Runtime::Docker, id.as_str()));
    assert_eq!(table.owner_of(&flows[2]).unwrap().pid, 100);
    assert_eq!(table.owner_of(&flows[3]).unwrap().pid, 100);
    assert!(table.owner_of(&flows[4]).is_none());

    let s = table.attribute(flows.iter());
    assert_eq!((s.flows, s.with_socket, s.with_owner), (5, 4, 4));
    assert_eq!(s.by_process[0].pid, 100);
    assert_eq!(s.by_process[0].flows, 3);
    assert_eq!(s.by_process[1].flows, 1);
    assert_eq!(s.by_container.len(), 1);
    assert_eq!(s.by_container[0].flows, 1);
    assert!(s.to_string().contains("nginx"));
}

#[test]
fn missing_proc_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(ProcReader::new(tmp.path()).socket_table().is_err());
}
