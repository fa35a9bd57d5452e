//! The `exporter` example with `--all-netns` on real namespaces and a
//! fake host root.
//!
//! Two named namespaces (`ip netns add`) and two anonymous ones, each
//! holding a process (`unshare --net sleep`), get different numbers of
//! flows. The exporter reads a relocatable root (`--host-root`) that
//! links to the real namespace files and `/proc` pieces, with fake
//! `/proc/PID/cgroup` files (a Docker container, a containerd pod
//! sandbox) and the runtimes' state files beside them, as a host running
//! those would have. Checked: each namespace found once and named (the
//! `ip netns` names, `container/web-a`, `pod/shop/api-0`); counts per
//! namespace; `--max-netns` puts the rest under `other`; only the busiest
//! is dumped; a namespace deleted disappears. Then the same without
//! CAP_NET_ADMIN and CAP_SYS_ADMIN (`setpriv` drops them): counters and
//! counts come from `/proc/PID/net` for the namespaces with a process,
//! the named ones (which would have to be entered) are `up` 0 with
//! `permission` errors, and `conntrack_exporter_feature{feature="ctnetlink"}`
//! is 0.
//!
//! Skips (printing why) without root, `ip`, `unshare` or `setpriv`
//! unless `CONNTRACK_KIT_REQUIRE_LIVE=1`. Every wait is bounded.

use conntrack_core::testkit::{self, Need, Reaped, TestNetns};
use conntrack_kit::netlink::fill::{FillOptions, fill};
use conntrack_kit::netlink::{Conntrack, Netns};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

const ID_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const ID_B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// `NAME{labels} value` lines of a family, by their label text.
fn samples(body: &str, name: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            if !(labels.is_empty() || labels.starts_with('{')) {
                return None;
            }
            Some((labels.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn link(root: &Path, rel: &str, to: impl AsRef<Path>) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(to, p).unwrap();
}

/// The fake host root: the real PID 1, `/proc` pieces and named
/// namespaces linked; each sleeper's `ns/net` and `net` linked and its
/// cgroup written.
fn fake_root(root: &Path, named: &[&str], sleepers: &[(u32, String)]) {
    link(root, "proc/1", "/proc/1");
    for f in [
        "sys",
        "self",
        "thread-self",
        "slabinfo",
        "meminfo",
        "net",
        "modules",
        "softirqs",
    ] {
        link(root, &format!("proc/{f}"), format!("/proc/{f}"));
    }
    link(root, "sys", "/sys");
    for n in named {
        link(root, &format!("run/netns/{n}"), format!("/run/netns/{n}"));
    }
    for (pid, cgroup) in sleepers {
        link(
            root,
            &format!("proc/{pid}/ns/net"),
            format!("/proc/{pid}/ns/net"),
        );
        link(root, &format!("proc/{pid}/net"), format!("/proc/{pid}/net"));
        write(root, &format!("proc/{pid}/cgroup"), cgroup);
    }
    write(
        root,
        &format!("var/lib/docker/containers/{ID_A}/config.v2.json"),
        r#"{"ID":"a1","Name":"/web-a","Config":{"Labels":{}}}"#,
    );
    write(
        root,
        &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID_B}/config.json"),
        r#"{"ociVersion":"1.1.0","annotations":{"io.kubernetes.cri.container-type":"sandbox",
            "io.kubernetes.cri.sandbox-name":"api-0","io.kubernetes.cri.sandbox-namespace":"shop",
            "io.kubernetes.cri.sandbox-uid":"0e1f2a3b-0000-1111-2222-333344445555"}}"#,
    );
}

/// Starts the exporter; returns it and its port.
fn start(bin: &Path, pre: &[&str], args: &[&str], log: PathBuf) -> (Reaped, u16) {
    let (prog, rest) = match pre.split_first() {
        Some((p, r)) => (PathBuf::from(p), [r, &[bin.to_str().unwrap()]].concat()),
        None => (bin.to_path_buf(), vec![]),
    };
    let mut child = Command::new(prog)
        .args(rest)
        .args(args)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "0.3",
            "--dump-every",
            "0.5",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("spawn exporter");
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no address ({line:?}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    (Reaped(child), port)
}

#[test]
fn every_namespace_named_counted_and_capped() {
    let test = "every_namespace_named_counted_and_capped";
    if !testkit::live(
        test,
        &[
            Need::Root,
            Need::Tool("ip"),
            Need::Tool("unshare"),
            Need::Tool("setpriv"),
        ],
    ) {
        return;
    }
    let t_start = Instant::now();
    let bin = support::examples_dir(&["exporter"]).join("exporter");
    let red = TestNetns::new("exall-red");
    let blue = TestNetns::new("exall-blue");
    let sleep = || {
        let c = Command::new("unshare")
            .args(["--net", "sleep", "300"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare --net sleep");
        Reaped(c)
    };
    let (a, b) = (sleep(), sleep());
    let (pa, pb) = (a.0.id(), b.0.id());
    // unshare execs sleep once the namespace is made: wait for it.
    for p in [pa, pb] {
        wait_for(
            "the sleeper's own namespace",
            Duration::from_secs(10),
            || {
                let mine = std::fs::read_link("/proc/self/ns/net").ok()?;
                let theirs = std::fs::read_link(format!("/proc/{p}/ns/net")).ok()?;
                (mine != theirs).then_some(())
            },
        );
    }
    // Counts: red 400 (busiest), web-a 300, api-0 200, blue 100.
    let counts = [
        (Netns::named(red.name()), 400u64),
        (Netns::pid(pa), 300),
        (Netns::pid(pb), 200),
        (Netns::named(blue.name()), 100),
    ];
    for (ns, n) in &counts {
        let mut ct = Conntrack::open_in(ns).expect("ctnetlink");
        assert_eq!(fill(&mut ct, &FillOptions::new(*n)).unwrap().created, *n);
    }
    let dir = tempfile::Builder::new()
        .prefix("ck-exall-")
        .tempdir()
        .unwrap();
    let root = dir.path().join("host");
    fake_root(
        &root,
        &[red.name(), blue.name()],
        &[
            (pa, format!("0::/system.slice/docker-{ID_A}.scope\n")),
            (
                pb,
                format!(
                    "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0e1f2a3b_0000_1111_2222_333344445555.slice/cri-containerd-{ID_B}.scope\n"
                ),
            ),
        ],
    );
    let root_s = root.to_str().unwrap();

    // Privileged: everything over ctnetlink; 4 namespaces + host, at most
    // 4 with series of their own.
    let (exporter, port) = start(
        &bin,
        &[],
        &["--all-netns", "--host-root", root_s, "--max-netns", "4"],
        dir.path().join("exporter.log"),
    );
    let body = wait_for(
        "the red namespace's hotspots",
        Duration::from_secs(20),
        || {
            let b = get(port, "/metrics")?;
            b.contains(&format!(
                "conntrack_hotspot_age_seconds{{netns=\"{}\"}}",
                red.name()
            ))
            .then_some(b)
        },
    );
    let entries = samples(&body, "conntrack_entries");
    let info = samples(&body, "conntrack_netns_info");
    eprintln!(
        "entries: {entries:?}\nup: {:?}",
        samples(&body, "conntrack_up")
    );
    let e = |label: &str| entries.get(&format!("{{netns=\"{label}\"}}")).copied();
    assert_eq!(e(red.name()), Some(400.0), "{body}");
    assert_eq!(e("container/web-a"), Some(300.0), "{body}");
    assert!(e("host").is_some());
    // 5 namespaces, 4 slots: host, the two named ones, then the busier
    // of the anonymous ones; the pod's 200 are under "other".
    assert_eq!(e("pod/shop/api-0"), None, "{entries:?}");
    assert_eq!(e("other"), Some(200.0), "{entries:?}");
    assert_eq!(e(blue.name()), Some(100.0));
    assert_eq!(samples(&body, "conntrack_netns_other_members")[""], 1.0);
    assert!(samples(&body, "conntrack_netns_discovered")[""] >= 5.0);
    assert!(
        info.keys().any(|k| k.contains("netns=\"container/web-a\"")
            && k.contains("runtime=\"docker\"")
            && k.contains("container=\"web-a\"")),
        "{info:?}"
    );
    // Only the busiest namespace was dumped.
    let ages = samples(&body, "conntrack_hotspot_age_seconds");
    assert_eq!(ages.len(), 1, "{ages:?}");
    // Counters summed over CPUs under --all-netns: no cpu label.
    let inserts = samples(&body, "conntrack_stat_insert_total");
    assert!(
        !inserts.is_empty() && inserts.keys().all(|k| !k.contains("cpu=")),
        "{inserts:?}"
    );
    assert_eq!(inserts[&format!("{{netns=\"{}\"}}", red.name())], 400.0);
    drop(exporter);

    // A bigger cap: the pod gets its own series and name.
    let (exporter, port) = start(
        &bin,
        &[],
        &["--all-netns", "--host-root", root_s, "--no-hotspots"],
        dir.path().join("exporter2.log"),
    );
    let body = wait_for("the pod's series", Duration::from_secs(20), || {
        let b = get(port, "/metrics")?;
        b.contains("conntrack_entries{netns=\"pod/shop/api-0\"} 200")
            .then_some(b)
    });
    assert!(
        body.contains("pod=\"api-0\",pod_namespace=\"shop\""),
        "pod labels: {body}"
    );
    // A namespace deleted goes away (discovery no longer finds it).
    let blue_name = blue.name().to_string();
    drop(blue);
    wait_for("blue to disappear", Duration::from_secs(20), || {
        let b = get(port, "/metrics")?;
        (!b.contains(&format!("netns=\"{blue_name}\""))).then_some(())
    });
    drop(exporter);

    // Without CAP_NET_ADMIN and CAP_SYS_ADMIN: /proc, per namespace with a
    // process; the named ones cannot be entered.
    let (exporter, port) = start(
        &bin,
        &[
            "setpriv",
            "--bounding-set",
            "-net_admin,-sys_admin",
            "--inh-caps",
            "-net_admin,-sys_admin",
        ],
        &["--all-netns", "--host-root", root_s],
        dir.path().join("exporter3.log"),
    );
    let body = wait_for("counts from /proc", Duration::from_secs(20), || {
        let b = get(port, "/metrics")?;
        b.contains("conntrack_entries{netns=\"container/web-a\"} 300")
            .then_some(b)
    });
    assert!(
        body.contains("conntrack_exporter_feature{feature=\"ctnetlink\"} 0"),
        "{body}"
    );
    assert!(
        body.contains("conntrack_entries{netns=\"pod/shop/api-0\"} 200"),
        "{body}"
    );
    assert!(
        body.contains(&format!("conntrack_up{{netns=\"{}\"}} 0", red.name())),
        "{body}"
    );
    let perm = samples(&body, "conntrack_exporter_errors_total");
    assert!(perm["{kind=\"permission\"}"] > 0.0, "{perm:?}");
    assert!(
        body.contains("conntrack_max_entries "),
        "max from the sysctl: {body}"
    );
    let log = std::fs::read_to_string(dir.path().join("exporter3.log")).unwrap_or_default();
    assert!(log.contains("note: ctnetlink unavailable"), "{log}");
    drop(exporter);
    drop((a, b, red));
    eprintln!("{test}: passed in {:.1}s", t_start.elapsed().as_secs_f64());
}
