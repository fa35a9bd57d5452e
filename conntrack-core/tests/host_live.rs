//! Live checks of `HostFs` against the running kernel and the system tools:
//!
//! - `live_snapshot_agrees_with_tools`: `read_snapshot()` on `/` agrees with
//!   `sysctl` (the whole set of `net.netfilter.nf_conntrack_*` names and
//!   their values), `cat` of hashsize / osrelease / possible / online /
//!   rps_cpus, `uname -r`, `getconf PAGESIZE`, and slabinfo.
//! - `live_count_is_per_namespace`: in a fresh network namespace holding two
//!   entries, the snapshot taken *inside* it (this test binary re-executed
//!   with `ip netns exec`) sees count 2 and agrees with `sysctl` there, and
//!   `HostFs::for_pid` from outside sees PID's stat file (entries 2) but
//!   refuses the per-namespace sysctls it cannot see.
//!
//! Skips (printing why) without root or the tools, unless
//! `CONNTRACK_KIT_REQUIRE_LIVE=1`, which turns a skip into a failure.

use conntrack_core::host::{HostError, HostFs, NET_NS_INIT_INO, render_cpu_list, render_rps_mask};
use conntrack_core::testkit::{Need, Reaped, TestNetns, live};
use conntrack_core::{HostSnapshot, KernelVersion};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "CONNTRACK_KIT_HOST_LIVE_CHILD";

/// What the live tests need here.
const NEEDS: &[Need] = &[
    Need::Root,
    Need::Tool("ip"),
    Need::Tool("sysctl"),
    Need::Tool("conntrack"),
    Need::Tool("getconf"),
    Need::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
];

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn cat(path: &str) -> String {
    run("cat", &[path]).trim_end_matches('\n').to_string()
}

/// `sysctl -a`'s `net.netfilter.nf_conntrack_*` lines, by short name.
fn sysctl_conntrack() -> BTreeMap<String, String> {
    run("sysctl", &["-a"])
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(" = ")?;
            let k = k.strip_prefix("net.netfilter.")?;
            k.starts_with("nf_conntrack_")
                .then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn sysctl_n(name: &str) -> u32 {
    run("sysctl", &["-n", &format!("net.netfilter.{name}")])
        .trim()
        .parse()
        .expect("numeric sysctl")
}

/// Everything `snapshot` says that the tools can confirm in the current
/// namespace. Returns `Err` (to retry) only for the values other processes
/// may change meanwhile (count, global sysctls); panics otherwise.
fn check_against_tools(s: &HostSnapshot) -> Result<(), String> {
    let tools = sysctl_conntrack();
    if s.sysctls != tools {
        return Err(format!(
            "sysctls differ:\n ours  {:?}\n sysctl {:?}",
            s.sysctls, tools
        ));
    }
    for (field, name) in [
        (s.count, "nf_conntrack_count"),
        (s.max, "nf_conntrack_max"),
        (s.buckets, "nf_conntrack_buckets"),
    ] {
        let want = sysctl_n(name);
        if field != Some(want) {
            return Err(format!("{name}: ours {field:?}, sysctl -n {want}"));
        }
    }
    let hashsize = cat("/sys/module/nf_conntrack/parameters/hashsize");
    if s.hashsize_param.map(|h| h.to_string()).as_deref() != Some(hashsize.as_str()) {
        return Err(format!(
            "hashsize: ours {:?}, cat {hashsize}",
            s.hashsize_param
        ));
    }
    if let Some(st) = &s.stats
        && st.entries != s.count
    {
        return Err(format!(
            "stat entries {:?} vs count {:?}",
            st.entries, s.count
        ));
    }
    // Timeouts: every *_timeout* sysctl of a protocol is in the map.
    let n: usize = s.timeouts.values().map(BTreeMap::len).sum();
    let expected = s
        .sysctls
        .keys()
        .filter(|k| conntrack_core::host::timeout_key(k).is_some())
        .count();
    assert_eq!(n, expected);
    assert!(s.timeouts["tcp"].contains_key("time_wait"));
    assert!(s.timeouts["udp"].contains_key("default"));
    Ok(())
}

fn check_global_facts(s: &HostSnapshot, problems: &[HostError]) {
    let bad: Vec<_> = problems.iter().filter(|p| p.is_malformed()).collect();
    assert!(bad.is_empty(), "malformed live files: {bad:?}");
    assert_eq!(
        s.kernel_release.as_deref(),
        Some(cat("/proc/sys/kernel/osrelease").as_str())
    );
    assert_eq!(
        s.kernel_release.as_deref(),
        Some(run("uname", &["-r"]).trim())
    );
    assert_eq!(
        s.page_size,
        Some(run("getconf", &["PAGESIZE"]).trim().parse().unwrap())
    );
    assert_eq!(
        render_cpu_list(&s.cpus_possible),
        cat("/sys/devices/system/cpu/possible")
    );
    assert_eq!(
        render_cpu_list(&s.cpus_online),
        cat("/sys/devices/system/cpu/online")
    );
    let meminfo = cat("/proc/meminfo");
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(s.mem_total_bytes, Some(kb * 1024));
    // slabinfo: the nf_conntrack cache's object size column.
    let slab = cat("/proc/slabinfo");
    let row: Vec<&str> = slab
        .lines()
        .find(|l| l.starts_with("nf_conntrack "))
        .expect("nf_conntrack slab line")
        .split_whitespace()
        .collect();
    let ours = s
        .slab
        .iter()
        .find(|c| c.name == "nf_conntrack")
        .expect("nf_conntrack cache in snapshot");
    assert_eq!(ours.obj_size.to_string(), row[3]);
    // softirqs: one column per possible CPU.
    assert_eq!(s.net_rx_softirq_cpus, s.cpus_possible);
    assert_eq!(s.net_rx_softirqs.len(), s.cpus_possible.len());
    // rps_cpus: every queue, rendered back exactly as the kernel printed it.
    let nr_cpu_ids = s.cpus_possible.iter().max().map_or(1, |m| m + 1);
    for q in &s.rx_queues {
        let path = format!("/sys/class/net/{}/queues/rx-{}/rps_cpus", q.iface, q.queue);
        assert_eq!(
            render_rps_mask(&q.rps_cpus, nr_cpu_ids),
            cat(&path),
            "{path}"
        );
    }
    let mut ifaces: Vec<String> = run("ls", &["/sys/class/net"])
        .lines()
        .filter(|i| std::path::Path::new(&format!("/sys/class/net/{i}/queues")).exists())
        .map(str::to_string)
        .collect();
    ifaces.sort();
    let mut ours: Vec<String> = s.rx_queues.iter().map(|q| q.iface.clone()).collect();
    ours.dedup();
    assert_eq!(ours, ifaces);
}

fn snapshot_agreeing_with_tools(fs: &HostFs) -> (HostSnapshot, Vec<HostError>) {
    let mut last = String::new();
    for _ in 0..5 {
        let report = fs.read_snapshot();
        match check_against_tools(&report.snapshot) {
            Ok(()) => return (report.snapshot, report.problems),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("snapshot kept disagreeing with the tools: {last}");
}

fn ns_inode(path: &str) -> u64 {
    let t = std::fs::read_link(path).unwrap();
    conntrack_core::host::parse_ns_link(&t.to_string_lossy()).unwrap()
}

#[test]
fn live_snapshot_agrees_with_tools() {
    if std::env::var_os(CHILD_ENV).is_some() || !live("live_snapshot_agrees_with_tools", NEEDS) {
        return;
    }
    let (s, problems) = snapshot_agreeing_with_tools(&HostFs::new("/"));
    check_global_facts(&s, &problems);
    let ino = ns_inode("/proc/self/ns/net");
    assert_eq!(s.netns_inode, Some(ino));
    if s.kernel_version
        .is_some_and(|v| v >= KernelVersion::new(6, 18, 0))
    {
        assert_eq!(s.init_netns, Some(ino == NET_NS_INIT_INO));
    }
    assert!(s.stats.is_some(), "problems: {problems:?}");

    // On another thread of this process, the thread view reads the same
    // namespace through /proc/thread-self.
    let thread = std::thread::spawn(|| HostFs::new("/").for_current_thread().read_snapshot())
        .join()
        .unwrap();
    assert_eq!(thread.snapshot.netns_inode, Some(ino));
    assert_eq!(thread.snapshot.init_netns, s.init_netns);
    assert!(
        thread.snapshot.stats.is_some(),
        "problems: {:?}",
        thread.problems
    );
}

#[test]
fn live_count_is_per_namespace() {
    if std::env::var_os(CHILD_ENV).is_some() || !live("live_count_is_per_namespace", NEEDS) {
        return;
    }
    let ns = TestNetns::new("host");
    for sport in ["1000", "1001"] {
        ns.exec(&[
            "conntrack",
            "-I",
            "-p",
            "udp",
            "-s",
            "10.77.0.1",
            "-d",
            "10.77.0.2",
            "--sport",
            sport,
            "--dport",
            "53",
            "-t",
            "600",
        ]);
    }

    // Inside: this binary re-executed in the namespace runs
    // `live_child_snapshot`, which compares with sysctl there.
    let exe = std::env::current_exe().unwrap();
    let max_here = sysctl_n("nf_conntrack_max");
    let out = ns
        .command(&exe)
        .args([
            "--exact",
            "live_child_snapshot",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "2")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child did not run the test:\n{text}"
    );
    assert!(text.contains("child snapshot ok"), "{text}");

    // Outside, through /proc/PID: a process parked in the namespace.
    let sleeper = Reaped(
        ns.command("sleep")
            .arg("60")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = sleeper.0.id();
    let mine = ns_inode("/proc/self/ns/net");
    let path = format!("/proc/{pid}/ns/net");
    let mut theirs = mine;
    for _ in 0..100 {
        // `ip netns exec` calls setns(2) and then execs: wait for it.
        theirs = ns_inode(&path);
        if theirs != mine {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(theirs, mine, "pid {pid} never entered the namespace");

    let report = HostFs::new("/").for_pid(pid).read_snapshot();
    let s = &report.snapshot;
    assert_eq!(s.netns_inode, Some(theirs));
    assert_eq!(s.stats.as_ref().and_then(|st| st.entries), Some(2));
    assert_eq!(s.count, Some(2), "count from PID's stat file");
    assert_eq!(s.max, Some(max_here), "max is global");
    assert_eq!(
        s.sysctls.keys().collect::<Vec<_>>(),
        ["nf_conntrack_buckets", "nf_conntrack_max"]
    );
    assert!(s.timeouts.is_empty());
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, HostError::OtherNamespace { pid: p2, .. } if *p2 == pid)),
        "{:?}",
        report.problems
    );
    if s.kernel_version
        .is_some_and(|v| v >= KernelVersion::new(6, 18, 0))
    {
        assert_eq!(s.init_netns, Some(false));
    }
    // Per-fact reads refuse the other namespace's per-namespace sysctls.
    let fs = HostFs::new("/").for_pid(pid);
    assert!(matches!(
        fs.read_count(),
        Err(HostError::OtherNamespace { .. })
    ));
    assert_eq!(fs.read_stats().unwrap().entries, Some(2));
    drop(sleeper);
}

/// Runs only when re-executed by `live_count_is_per_namespace` inside the
/// fresh namespace (`CONNTRACK_KIT_HOST_LIVE_CHILD=<expected count>`).
#[test]
fn live_child_snapshot() {
    let Some(want) = std::env::var_os(CHILD_ENV) else {
        eprintln!("helper of live_count_is_per_namespace; nothing to do on its own");
        return;
    };
    let want: u32 = want.to_str().unwrap().parse().unwrap();
    let (s, problems) = snapshot_agreeing_with_tools(&HostFs::new("/"));
    check_global_facts(&s, &problems);
    assert_eq!(s.count, Some(want));
    assert_eq!(s.stats.as_ref().and_then(|st| st.entries), Some(want));
    assert_eq!(s.netns_inode, Some(ns_inode("/proc/self/ns/net")));
    assert_ne!(s.netns_inode, Some(NET_NS_INIT_INO));
    if s.kernel_version
        .is_some_and(|v| v >= KernelVersion::new(6, 18, 0))
    {
        assert_eq!(s.init_netns, Some(false));
    }
    println!("child snapshot ok: count {want}");
}
