//! Whole-snapshot tests over the fixture trees in `fixtures/host/` (see its
//! README for how each tree was made).

use conntrack_core::host::{HostError, HostFs, NetnsView, ParseErrorKind as K};
use conntrack_core::procstat::ProcStatErrorKind;
use conntrack_core::{Counter, CpuStats, HostSnapshot, KernelVersion, RxQueue, SlabCache, Stats};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn tree(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/host")
        .join(name)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn timeouts(rows: &[(&str, &str, u32)]) -> BTreeMap<String, BTreeMap<String, u32>> {
    let mut t: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for (p, s, v) in rows {
        t.entry(p.to_string())
            .or_default()
            .insert(s.to_string(), *v);
    }
    t
}

/// A problem as (path relative to the tree, what): comparable across
/// machines.
#[derive(Debug, PartialEq, Eq)]
enum P {
    NotFound(&'static str),
    Malformed(&'static str, usize, usize, K),
}

fn problems(root: &Path, errs: &[HostError]) -> Vec<String> {
    errs.iter()
        .map(|e| {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path()).display();
            match e {
                HostError::NotFound { .. } => format!("{:?}", P::NotFound(leak(rel))),
                HostError::Malformed { location, kind, .. } => format!(
                    "{:?}",
                    P::Malformed(leak(rel), location.line, location.column, *kind)
                ),
                other => format!("unexpected: {other}"),
            }
        })
        .collect()
}

fn leak(d: std::path::Display<'_>) -> &'static str {
    Box::leak(d.to_string().into_boxed_str())
}

fn expect(ps: &[P]) -> Vec<String> {
    ps.iter().map(|p| format!("{p:?}")).collect()
}

fn rxq(iface: &str, queue: u32, cpus: &[u32]) -> RxQueue {
    RxQueue {
        iface: iface.into(),
        queue,
        rps_cpus: cpus.to_vec(),
    }
}

/// A CPU row of the 6.18 header with every value 0: the 16 counters
/// named by the header are present, `searched` and friends are not.
fn zero_cpu_6_18() -> CpuStats {
    let mut c = CpuStats::default();
    for name in "clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error expect_new expect_create expect_delete search_restart".split(' ') {
        c.set(Counter::from_any_name(name).unwrap(), 0);
    }
    c
}

#[test]
fn linux_6_18_whole_snapshot() {
    let root = tree("linux-6.18");
    let report = HostFs::new(&root).read_snapshot();
    let sysctls = map(&[
        ("nf_conntrack_acct", "0"),
        ("nf_conntrack_buckets", "262144"),
        ("nf_conntrack_checksum", "1"),
        ("nf_conntrack_count", "0"),
        ("nf_conntrack_events", "2"),
        ("nf_conntrack_expect_max", "4096"),
        ("nf_conntrack_frag6_high_thresh", "4194304"),
        ("nf_conntrack_frag6_low_thresh", "3145728"),
        ("nf_conntrack_frag6_timeout", "60"),
        ("nf_conntrack_generic_timeout", "600"),
        ("nf_conntrack_gre_timeout", "30"),
        ("nf_conntrack_gre_timeout_stream", "180"),
        ("nf_conntrack_icmp_timeout", "30"),
        ("nf_conntrack_icmpv6_timeout", "30"),
        ("nf_conntrack_log_invalid", "0"),
        ("nf_conntrack_max", "262144"),
        ("nf_conntrack_sctp_timeout_closed", "10"),
        ("nf_conntrack_sctp_timeout_cookie_echoed", "3"),
        ("nf_conntrack_sctp_timeout_cookie_wait", "3"),
        ("nf_conntrack_sctp_timeout_established", "210"),
        ("nf_conntrack_sctp_timeout_heartbeat_sent", "30"),
        ("nf_conntrack_sctp_timeout_shutdown_ack_sent", "3"),
        ("nf_conntrack_sctp_timeout_shutdown_recd", "3"),
        ("nf_conntrack_sctp_timeout_shutdown_sent", "3"),
        ("nf_conntrack_tcp_be_liberal", "0"),
        ("nf_conntrack_tcp_ignore_invalid_rst", "0"),
        ("nf_conntrack_tcp_loose", "1"),
        ("nf_conntrack_tcp_max_retrans", "3"),
        ("nf_conntrack_tcp_timeout_close", "10"),
        ("nf_conntrack_tcp_timeout_close_wait", "60"),
        ("nf_conntrack_tcp_timeout_established", "432000"),
        ("nf_conntrack_tcp_timeout_fin_wait", "120"),
        ("nf_conntrack_tcp_timeout_last_ack", "30"),
        ("nf_conntrack_tcp_timeout_max_retrans", "300"),
        ("nf_conntrack_tcp_timeout_syn_recv", "60"),
        ("nf_conntrack_tcp_timeout_syn_sent", "120"),
        ("nf_conntrack_tcp_timeout_time_wait", "120"),
        ("nf_conntrack_tcp_timeout_unacknowledged", "300"),
        ("nf_conntrack_timestamp", "0"),
        ("nf_conntrack_udp_timeout", "30"),
        ("nf_conntrack_udp_timeout_stream", "120"),
    ]);
    let expected = {
        let mut snap = HostSnapshot::default()
            .with_kernel_release("6.18.44-fc-v657".into())
            .with_kernel_version(KernelVersion::new(6, 18, 44))
            .with_page_size(4096)
            .with_mem_total_bytes(24_684_092 * 1024)
            .with_cpus_possible(vec![0, 1])
            .with_cpus_online(vec![0, 1])
            .with_count(0)
            .with_max(262_144)
            .with_buckets(262_144)
            .with_hashsize_param(262_144)
            .with_acct(false)
            .with_timestamp(false)
            .with_events(2)
            .with_slab(vec![SlabCache {
                name: "nf_conntrack".into(),
                active_objs: 32,
                num_objs: 32,
                obj_size: 256,
            }])
            .with_rx_queues(vec![
                rxq("eth0", 0, &[]),
                rxq("ifb0", 0, &[]),
                rxq("ifb1", 0, &[]),
                rxq("lo", 0, &[]),
            ])
            .with_helpers(
                [
                    "amanda",
                    "ftp",
                    "h323",
                    "irc",
                    "netbios_ns",
                    "sane",
                    "sip",
                    "snmp",
                    "tftp",
                ]
                .iter()
                .map(|h| format!("nf_conntrack_{h}"))
                .collect(),
            )
            .with_stats(Stats::new(vec![zero_cpu_6_18(), zero_cpu_6_18()]).with_entries(0))
            .with_init_netns(true)
            .with_netns_inode(4_026_531_833);
        snap.sysctls = sysctls;
        snap.timeouts = timeouts(&[
            ("generic", "default", 600),
            ("gre", "default", 30),
            ("gre", "stream", 180),
            ("icmp", "default", 30),
            ("icmpv6", "default", 30),
            ("sctp", "closed", 10),
            ("sctp", "cookie_echoed", 3),
            ("sctp", "cookie_wait", 3),
            ("sctp", "established", 210),
            ("sctp", "heartbeat_sent", 30),
            ("sctp", "shutdown_ack_sent", 3),
            ("sctp", "shutdown_recd", 3),
            ("sctp", "shutdown_sent", 3),
            ("tcp", "close", 10),
            ("tcp", "close_wait", 60),
            ("tcp", "established", 432_000),
            ("tcp", "fin_wait", 120),
            ("tcp", "last_ack", 30),
            ("tcp", "max_retrans", 300),
            ("tcp", "syn_recv", 60),
            ("tcp", "syn_sent", 120),
            ("tcp", "time_wait", 120),
            ("tcp", "unacknowledged", 300),
            ("udp", "default", 30),
            ("udp", "stream", 120),
        ]);
        snap.net_rx_softirqs = vec![2287, 3460];
        snap.net_rx_softirq_cpus = vec![0, 1];
        snap
    };
    assert_eq!(report.snapshot, expected);
    // The kernel was built without module support: no /proc/modules.
    assert_eq!(
        problems(&root, &report.problems),
        expect(&[P::NotFound("proc/modules")])
    );
}

#[test]
fn linux_3_2_whole_snapshot() {
    let root = tree("linux-3.2");
    let report = HostFs::new(&root).read_snapshot();
    let s = &report.snapshot;
    let expected_sysctls = [
        ("nf_conntrack_acct", "1"),
        ("nf_conntrack_buckets", "16384"),
        ("nf_conntrack_checksum", "1"),
        ("nf_conntrack_count", "1536"),
        ("nf_conntrack_dccp_loose", "1"),
        ("nf_conntrack_dccp_timeout_open", "43200"),
        ("nf_conntrack_events", "1"),
        ("nf_conntrack_events_retry_timeout", "15"),
        ("nf_conntrack_expect_max", "256"),
        ("nf_conntrack_frag6_high_thresh", "262144"),
        ("nf_conntrack_frag6_low_thresh", "196608"),
        ("nf_conntrack_frag6_timeout", "60"),
        ("nf_conntrack_generic_timeout", "600"),
        ("nf_conntrack_icmp_timeout", "30"),
        ("nf_conntrack_icmpv6_timeout", "30"),
        ("nf_conntrack_log_invalid", "0"),
        ("nf_conntrack_max", "65536"),
        ("nf_conntrack_sctp_timeout_established", "432000"),
        ("nf_conntrack_sctp_timeout_heartbeat_acked", "210"),
        ("nf_conntrack_tcp_be_liberal", "0"),
        ("nf_conntrack_tcp_loose", "1"),
        ("nf_conntrack_tcp_max_retrans", "3"),
        ("nf_conntrack_tcp_timeout_close", "10"),
        ("nf_conntrack_tcp_timeout_close_wait", "60"),
        ("nf_conntrack_tcp_timeout_established", "432000"),
        ("nf_conntrack_tcp_timeout_fin_wait", "120"),
        ("nf_conntrack_tcp_timeout_last_ack", "30"),
        ("nf_conntrack_tcp_timeout_max_retrans", "300"),
        ("nf_conntrack_tcp_timeout_syn_recv", "60"),
        ("nf_conntrack_tcp_timeout_syn_sent", "120"),
        ("nf_conntrack_tcp_timeout_time_wait", "120"),
        ("nf_conntrack_tcp_timeout_unacknowledged", "300"),
        ("nf_conntrack_timestamp", "0"),
        ("nf_conntrack_udp_timeout", "30"),
        ("nf_conntrack_udp_timeout_stream", "180"),
    ];
    let expected = {
        let mut snap = HostSnapshot::default()
            .with_kernel_release("3.2.0-4-amd64".into())
            .with_kernel_version(KernelVersion::new(3, 2, 0))
            .with_page_size(4096)
            .with_mem_total_bytes(4_048_016 * 1024)
            .with_cpus_possible(vec![0, 1, 2, 3])
            .with_cpus_online(vec![0, 1, 2, 3])
            .with_count(1536)
            .with_max(65536)
            .with_buckets(16384)
            .with_hashsize_param(16384)
            .with_acct(true)
            .with_timestamp(false)
            .with_events(1)
            .with_slab(vec![
                SlabCache {
                    name: "nf_conntrack_ffff880036d68000".into(),
                    active_objs: 12,
                    num_objs: 24,
                    obj_size: 312,
                },
                SlabCache {
                    name: "nf_conntrack_ffffffff81a1b4c0".into(),
                    active_objs: 1524,
                    num_objs: 1586,
                    obj_size: 312,
                },
            ])
            .with_rx_queues(vec![
                rxq("eth0", 0, &[0, 1]),
                rxq("eth0", 1, &[2, 3]),
                rxq("lo", 0, &[]),
            ])
            .with_helpers(vec!["nf_conntrack_ftp".into(), "nf_nat_ftp".into()]);
        snap.sysctls = map(&expected_sysctls);
        snap.timeouts = timeouts(&[
            ("dccp", "open", 43200),
            ("generic", "default", 600),
            ("icmp", "default", 30),
            ("icmpv6", "default", 30),
            ("sctp", "established", 432_000),
            ("sctp", "heartbeat_acked", 210),
            ("tcp", "close", 10),
            ("tcp", "close_wait", 60),
            ("tcp", "established", 432_000),
            ("tcp", "fin_wait", 120),
            ("tcp", "last_ack", 30),
            ("tcp", "max_retrans", 300),
            ("tcp", "syn_recv", 60),
            ("tcp", "syn_sent", 120),
            ("tcp", "time_wait", 120),
            ("tcp", "unacknowledged", 300),
            ("udp", "default", 30),
            ("udp", "stream", 180),
        ]);
        snap.net_rx_softirqs = vec![832_511, 20118, 17422, 15007];
        snap.net_rx_softirq_cpus = vec![0, 1, 2, 3];
        snap.stats = s.stats.clone();
        snap
    };
    assert_eq!(*s, expected);
    assert_eq!(
        problems(&root, &report.problems),
        expect(&[P::NotFound("proc/self/ns/net")])
    );
    // The 16-column pre-3.10 stat file, trailing spaces and all.
    let st = s.stats.as_ref().expect("stats");
    assert_eq!(st.entries, Some(0x600));
    assert_eq!(st.cpus.len(), 4);
    let t = st.total();
    assert_eq!(t.searched(), Some(0x3e2a1 + 0x1234 + 0xf00 + 0xe00));
    assert_eq!(t.found(), Some(0x07e8d2b3 + 0x12345 + 0x10000 + 0xf000));
    assert_eq!(t.drop(), Some(2));
    assert_eq!(t.error(), Some(3));
    assert_eq!(t.search_restart(), None);
    assert_eq!(t.clash_resolve(), None);
}

#[test]
fn broken_tree_reports_every_file_line_and_column() {
    let root = tree("broken");
    let report = HostFs::new(&root).read_snapshot();
    let s = &report.snapshot;
    // What is still readable is read.
    assert_eq!(s.buckets, Some(262_144));
    assert_eq!(
        s.sysctls.keys().collect::<Vec<_>>(),
        [
            "nf_conntrack_acct",
            "nf_conntrack_buckets",
            "nf_conntrack_count",
            "nf_conntrack_tcp_timeout_time_wait"
        ]
    );
    assert_eq!(s.helpers, Vec::<String>::new());
    assert!(s.timeouts.is_empty());
    let nf = "proc/sys/net/netfilter";
    let want = expect(&[
        P::Malformed(
            "proc/sys/kernel/osrelease",
            1,
            1,
            K::Expected("a kernel release (N.N...)"),
        ),
        P::Malformed("proc/self/smaps", 2, 26, K::Expected("kB")),
        P::Malformed("proc/meminfo", 2, 5, K::NotUtf8),
        P::Malformed("sys/devices/system/cpu/possible", 1, 1, K::Empty),
        P::Malformed("sys/devices/system/cpu/online", 1, 7, K::InvalidNumber),
        P::Malformed(leak_s(format!("{nf}/nf_conntrack_max")), 1, 1, K::Empty),
        P::Malformed(
            leak_s(format!("{nf}/nf_conntrack_count")),
            1,
            3,
            K::InvalidNumber,
        ),
        P::Malformed(
            leak_s(format!("{nf}/nf_conntrack_acct")),
            1,
            1,
            K::Expected("0 or 1"),
        ),
        P::Malformed(
            leak_s(format!("{nf}/nf_conntrack_tcp_timeout_time_wait")),
            1,
            1,
            K::InvalidNumber,
        ),
        P::Malformed(
            "proc/net/stat/nf_conntrack",
            2,
            11,
            K::ProcStat(ProcStatErrorKind::BadHex),
        ),
        P::Malformed(
            "sys/module/nf_conntrack/parameters/hashsize",
            1,
            1,
            K::InvalidNumber,
        ),
        P::Malformed(
            "proc/slabinfo",
            4,
            88,
            K::FieldCount {
                expected: 16,
                found: 11,
            },
        ),
        P::Malformed(
            "sys/class/net/eth0/queues/rx-0/rps_cpus",
            1,
            5,
            K::InvalidHex,
        ),
        P::Malformed(
            "proc/softirqs",
            3,
            25,
            K::FieldCount {
                expected: 3,
                found: 2,
            },
        ),
        P::Malformed("proc/modules", 1, 25, K::UnexpectedEnd("6 fields")),
        P::Malformed("proc/self/ns/net", 1, 6, K::InvalidNumber),
    ]);
    assert_eq!(problems(&root, &report.problems), want);
    assert_eq!(report.malformed().count(), want.len());
    // Display names file, line and column.
    let shown = report.problems[11].to_string();
    assert!(
        shown.ends_with(
            "broken/proc/slabinfo: line 4, column 88: row has 11 fields, the header has 16"
        ),
        "{shown}"
    );
}

fn leak_s(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn broken_header_tree() {
    let root = tree("broken-header");
    let report = HostFs::new(&root).read_snapshot();
    assert_eq!(report.snapshot.rx_queues, vec![]);
    assert_eq!(
        problems(&root, &report.problems),
        expect(&[
            P::Malformed(
                "proc/sys/kernel/osrelease",
                1,
                1,
                K::Expected("a kernel release (N.N...)")
            ),
            P::NotFound("proc/self/smaps"),
            P::Malformed("proc/meminfo", 2, 1, K::Missing("MemTotal")),
            P::NotFound("sys/devices/system/cpu/possible"),
            P::NotFound("sys/devices/system/cpu/online"),
            P::NotFound("proc/sys/net/netfilter"),
            P::Malformed(
                "proc/net/stat/nf_conntrack",
                1,
                1,
                K::ProcStat(ProcStatErrorKind::NotAStatHeader)
            ),
            P::NotFound("sys/module/nf_conntrack/parameters/hashsize"),
            P::Malformed("proc/slabinfo", 1, 21, K::UnsupportedVersion),
            P::Malformed("sys/class/net/eth0/queues/rx-0/rps_cpus", 1, 1, K::Empty),
            P::Malformed("proc/softirqs", 1, 4, K::UnknownHeader),
            P::NotFound("proc/modules"),
            P::NotFound("proc/self/ns/net"),
        ])
    );
    assert_eq!(report.snapshot, HostSnapshot::default());
}

#[test]
fn per_fact_reads() {
    let fs = HostFs::new(tree("linux-6.18"));
    assert_eq!(fs.read_count().unwrap(), 0);
    assert_eq!(fs.read_max().unwrap(), 262_144);
    assert_eq!(fs.read_buckets().unwrap(), 262_144);
    assert_eq!(fs.read_hashsize().unwrap(), 262_144);
    assert_eq!(fs.read_sysctl("nf_conntrack_events").unwrap(), "2");
    assert_eq!(fs.read_cpus_online().unwrap(), vec![0, 1]);
    assert_eq!(fs.read_page_size().unwrap(), 4096);
    assert_eq!(fs.read_init_netns().unwrap(), Some(true));
    assert!(fs.read_modules().unwrap_err().is_not_found());
    let broken = HostFs::new(tree("broken"));
    let e = broken.read_slabinfo().unwrap_err();
    assert!(e.is_malformed());
    assert_eq!(e.location().map(|l| (l.line, l.column)), Some((4, 88)));
    assert!(e.path().ends_with("broken/proc/slabinfo"));
    assert!(
        broken
            .read_sysctl("nf_conntrack_nope")
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn for_pid_without_matching_namespace_keeps_only_global_sysctls() {
    // The fixture has no proc/4242: the namespaces cannot be compared, so
    // per-namespace sysctls are left out instead of being misattributed.
    let root = tree("linux-6.18");
    let fs = HostFs::new(&root).for_pid(4242);
    let e = fs.read_count().unwrap_err();
    assert!(
        matches!(e, HostError::OtherNamespace { pid: 4242, .. }),
        "{e}"
    );
    assert_eq!(fs.read_max().unwrap(), 262_144);
    let report = fs.read_snapshot();
    assert_eq!(report.snapshot.count, None);
    assert_eq!(report.snapshot.max, Some(262_144));
    assert_eq!(report.snapshot.buckets, Some(262_144));
    assert_eq!(report.snapshot.sysctls.len(), 2);
    assert!(report.snapshot.timeouts.is_empty());
    assert_eq!(
        problems(&root, &report.problems)
            .iter()
            .filter(|p| p.starts_with("unexpected"))
            .count(),
        1
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| matches!(p, HostError::OtherNamespace { pid: 4242, .. }))
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.path().ends_with("proc/4242/ns/net") && p.is_not_found())
    );
}

/// Copies the directory tree `from` into `to` (regular files and
/// directories, as the committed fixtures are).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A temporary copy of fixture tree `name` whose `proc/self/ns/net` is the
/// symlink a live `/proc` has (the committed file holds the link's text:
/// a symlink to nowhere cannot be packaged).
fn with_ns_symlink(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&tree(name), dir.path());
    let link = dir.path().join("proc/self/ns/net");
    let target = std::fs::read_to_string(&link).unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(target.trim_end(), &link).unwrap();
    dir
}

#[test]
fn ns_link_as_a_symlink_reads_like_its_text() {
    for name in ["linux-6.18", "broken"] {
        let copy = with_ns_symlink(name);
        assert!(
            std::fs::symlink_metadata(copy.path().join("proc/self/ns/net"))
                .unwrap()
                .is_symlink()
        );
        let text = HostFs::new(tree(name)).read_snapshot();
        let link = HostFs::new(copy.path()).read_snapshot();
        assert_eq!(link.snapshot, text.snapshot, "{name}");
        assert_eq!(
            problems(copy.path(), &link.problems),
            problems(&tree(name), &text.problems),
            "{name}"
        );
    }
}

#[test]
fn current_thread_view_reads_thread_self() {
    // The linux-6.18 tree with its namespace files where a live /proc has
    // the calling thread's: proc/thread-self/{net,ns}.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&tree("linux-6.18"), dir.path());
    let proc_dir = dir.path().join("proc");
    std::fs::create_dir_all(proc_dir.join("thread-self")).unwrap();
    std::fs::rename(proc_dir.join("net"), proc_dir.join("thread-self/net")).unwrap();
    std::fs::rename(proc_dir.join("self/ns"), proc_dir.join("thread-self/ns")).unwrap();

    let want = HostFs::new(tree("linux-6.18")).read_snapshot();
    let thread = HostFs::new(dir.path()).for_current_thread();
    assert_eq!(thread.netns_view(), NetnsView::CurrentThread);
    assert_eq!(thread.pid(), None);
    let got = thread.read_snapshot();
    assert_eq!(got.snapshot, want.snapshot);
    assert_eq!(
        problems(dir.path(), &got.problems),
        problems(&tree("linux-6.18"), &want.problems)
    );
    // The process view of the same tree no longer finds them.
    let process = HostFs::new(dir.path()).read_snapshot();
    assert_eq!(process.snapshot.stats, None);
    assert_eq!(process.snapshot.netns_inode, None);
}

#[test]
fn snapshot_serde_round_trip() {
    let report = HostFs::new(tree("linux-3.2")).read_snapshot();
    let json = serde_json::to_string(&report.snapshot).unwrap();
    let back: HostSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report.snapshot);
}

#[test]
fn hostile_files_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("proc/softirqs")).unwrap();
    // A FIFO would block a plain open(2) forever.
    let fifo = root.join("proc/meminfo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mkfifo");
    // A (sparse) file above the size limit.
    let big = std::fs::File::create(root.join("proc/slabinfo")).unwrap();
    big.set_len(conntrack_core::host::MAX_FILE_BYTES + 1)
        .unwrap();
    // An endless character device.
    std::os::unix::fs::symlink("/dev/zero", root.join("proc/modules")).unwrap();

    // A link out of the tree (a confined reader refuses it).
    std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
    std::os::unix::fs::symlink(
        "/proc/sys/kernel/osrelease",
        root.join("proc/sys/kernel/osrelease"),
    )
    .unwrap();
    // A link loop.
    std::fs::create_dir_all(root.join("sys/devices/system/cpu")).unwrap();
    std::os::unix::fs::symlink("possible", root.join("sys/devices/system/cpu/possible")).unwrap();

    let fs = HostFs::new(root);
    // FIFOs, devices and directories are refused before they are opened.
    assert!(matches!(
        fs.read_mem_total(),
        Err(HostError::NotAFile { .. })
    ));
    assert!(matches!(
        fs.read_slabinfo(),
        Err(HostError::TooLarge { .. })
    ));
    assert!(matches!(fs.read_modules(), Err(HostError::NotAFile { .. })));
    assert!(matches!(
        fs.read_net_rx_softirqs(),
        Err(HostError::NotAFile { .. })
    ));
    assert!(matches!(fs.read_cpus_possible(), Err(HostError::Io { .. })));
    // Unconfined, a link out of the tree is followed (the live host's
    // release); confined, it is not.
    assert!(fs.read_kernel_release().is_ok());
    let confined = fs.clone().confined();
    assert!(matches!(
        confined.read_kernel_release(),
        Err(HostError::OutsideRoot { .. })
    ));
    let report = confined.read_snapshot();
    assert_eq!(report.snapshot, HostSnapshot::default());
}

#[test]
fn init_netns_from_read_only_max_on_5_13_plus() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
    std::fs::create_dir_all(root.join("proc/sys/net/netfilter")).unwrap();
    std::fs::create_dir_all(root.join("proc/self/ns")).unwrap();
    std::fs::write(
        root.join("proc/sys/kernel/osrelease"),
        "5.15.0-91-generic\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("net:[4026532300]", root.join("proc/self/ns/net")).unwrap();
    let max = root.join("proc/sys/net/netfilter/nf_conntrack_max");
    std::fs::write(&max, "262144\n").unwrap();
    let fs = HostFs::new(root);
    // Writable: no clue, and no /proc/1 to compare with.
    assert_eq!(fs.read_init_netns().unwrap(), None);
    std::fs::set_permissions(&max, std::fs::Permissions::from_mode(0o444)).unwrap();
    assert_eq!(fs.read_init_netns().unwrap(), Some(false));
    assert_eq!(fs.read_snapshot().snapshot.init_netns, Some(false));
    // Before 5.13 a read-only max means nothing.
    std::fs::write(root.join("proc/sys/kernel/osrelease"), "5.10.0\n").unwrap();
    assert_eq!(fs.read_init_netns().unwrap(), None);
    // With PID 1's namespace visible, compare with it.
    std::fs::create_dir_all(root.join("proc/1/ns")).unwrap();
    std::os::unix::fs::symlink("net:[4026532300]", root.join("proc/1/ns/net")).unwrap();
    assert_eq!(fs.read_init_netns().unwrap(), Some(true));
}
