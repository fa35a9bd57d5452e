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
use conntrack_core::{Counter, Stats};
use std::process::{Command, Output};

fn require_live() -> bool {
    std::env::var("CONNTRACK_KIT_REQUIRE_LIVE").is_ok_and(|v| v == "1")
}

/// Returns `Some(reason)` when the live test cannot run here.
fn why_not_live() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_owned);
    if euid.as_deref() != Some("0") {
        return Some("not running as root".into());
    }
    for tool in ["ip", "conntrack"] {
        let ok = Command::new(tool)
            .arg(if tool == "ip" { "-V" } else { "--version" })
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    if !std::path::Path::new("/proc/net/stat/nf_conntrack").exists() {
        return Some("/proc/net/stat/nf_conntrack is absent (no nf_conntrack)".into());
    }
    None
}

/// Skips (returns true) or panics under CONNTRACK_KIT_REQUIRE_LIVE=1.
fn skip() -> bool {
    match why_not_live() {
        None => false,
        Some(why) if require_live() => {
            panic!("live test required (CONNTRACK_KIT_REQUIRE_LIVE=1) but {why}")
        }
        Some(why) => {
            eprintln!("skipping live test: {why}");
            true
        }
    }
}

/// A fresh network namespace, deleted on drop (also on panic).
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("ckit-{tag}-{}-{nanos}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip netns add");
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        Netns(name)
    }

    fn exec(&self, args: &[&str]) -> Output {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("ip netns exec {} {args:?}: {e}", self.0));
        assert!(
            out.status.success(),
            "{args:?} in {} failed: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

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

fn read_proc(ns: &Netns) -> Stats {
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
    if skip() {
        return;
    }
    let ns = Netns::new("procstat");
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
