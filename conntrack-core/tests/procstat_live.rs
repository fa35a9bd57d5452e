//! Live check against the running kernel: in a fresh network namespace,
//! `procstat::parse` of `/proc/net/stat/nf_conntrack` agrees with
//! `conntrack -S` (per CPU, counter by counter) and `conntrack -C`.
//!
//! Skips (printing why) without root, `ip`, `conntrack` or the /proc file,
//! unless `CONNTRACK_KIT_REQUIRE_LIVE=1`, which turns a skip into a failure.
//! Creates no traffic: two entries are inserted over ctnetlink before the
//! comparison so `entries` and `insert` are not all zero.

use conntrack_core::cli::stats::{parse_cli_stats_bytes, parse_count};
use conntrack_core::procstat;
use conntrack_core::testkit::{Need, TestNetns, live};
use conntrack_core::{Counter, Stats};

/// What the live test needs here.
const NEEDS: &[Need] = &[
    Need::Root,
    Need::Tool("ip"),
    Need::Tool("conntrack"),
    Need::Path("/proc/net/stat/nf_conntrack"),
];

/// Number of CPUs in a kernel CPU list like `0-3,6`.
fn cpu_list_len(s: &str) -> usize {
    s.trim()
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| match r.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                b - a + 1
            }
            None => 1,
        })
        .sum()
}

fn read_proc(ns: &TestNetns) -> Stats {
    let out = ns.exec(&["cat", "/proc/net/stat/nf_conntrack"]);
    procstat::parse_bytes(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "parse real /proc file: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn proc_file_agrees_with_conntrack_cli() {
    if !live("proc_file_agrees_with_conntrack_cli", NEEDS) {
        return;
    }
    let ns = TestNetns::new("procstat");
    for (sport, dport) in [("1000", "53"), ("1001", "53")] {
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
            dport,
            "-t",
            "600",
        ]);
    }

    // Nothing in the namespace creates traffic, but be safe: compare only
    // when /proc read the same before and after `conntrack -S`.
    let mut last = None;
    for _ in 0..5 {
        let before = read_proc(&ns);
        let cli_out = ns.exec(&["conntrack", "-S"]);
        let count_out = ns.exec(&["conntrack", "-C"]);
        let after = read_proc(&ns);
        if before == after {
            let cli = parse_cli_stats_bytes(&cli_out.stdout).unwrap_or_else(|e| {
                panic!(
                    "parse real conntrack -S: {e}\n{}",
                    String::from_utf8_lossy(&cli_out.stdout)
                )
            });
            let count = parse_count(&String::from_utf8_lossy(&count_out.stdout))
                .expect("parse real conntrack -C");
            last = Some((before, cli, count));
            break;
        }
    }
    let (proc, cli, count) = last.expect("/proc kept changing across 5 reads");

    assert_eq!(proc.entries, Some(2), "two entries were inserted");
    assert_eq!(count, 2, "conntrack -C");
    assert_eq!(
        proc.cpus.len(),
        cli.cpus.len(),
        "one /proc row per CPU line"
    );
    if let Ok(possible) = std::fs::read_to_string("/sys/devices/system/cpu/possible") {
        assert_eq!(
            proc.cpus.len(),
            cpu_list_len(&possible),
            "rows = possible CPUs"
        );
    }
    // Both list possible CPUs in ascending order.
    let ids: Vec<u32> = cli.cpus.iter().map(|c| c.cpu.expect("cpu id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "cpu ids {ids:?}");

    let mut compared = 0;
    for (i, (p, c)) in proc.cpus.iter().zip(&cli.cpus).enumerate() {
        for counter in Counter::ALL {
            if let (Some(pv), Some(cv)) = (p.get(counter), c.get(counter)) {
                assert_eq!(pv, cv, "row {i} (cpu={}): {counter}", ids[i]);
                compared += 1;
            }
        }
    }
    // At least found/invalid/insert/.../search_restart on every CPU.
    assert!(
        compared >= 8 * proc.cpus.len(),
        "compared {compared} values"
    );
    assert_eq!(proc.total().insert(), Some(2));
    assert_eq!(cli.total().insert(), Some(2));

    // Names, not positions: on kernels with clashres/chainlength the /proc
    // values land in the same counters the CLI names.
    let proc_text = ns.exec(&["cat", "/proc/net/stat/nf_conntrack"]).stdout;
    let table = procstat::parse_table_bytes(&proc_text).unwrap();
    if table.has_column("clashres") {
        assert_eq!(proc.total().searched(), None);
        assert!(proc.total().clash_resolve().is_some());
    }
}

#[test]
fn cpu_list_parsing() {
    assert_eq!(cpu_list_len("0-3\n"), 4);
    assert_eq!(cpu_list_len("0,2-3,7"), 4);
    assert_eq!(cpu_list_len("0"), 1);
}
