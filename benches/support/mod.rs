//! What the live benchmarks share: whether they run (root), the medians of
//! their rounds, a process's peak RSS and CPU time.

#![allow(dead_code)] // each bench uses its part

use conntrack_core::testkit;
use std::time::Duration;

/// Whether a live bench runs: as root, yes. Otherwise it prints why it
/// skips, unless `CONNTRACK_KIT_REQUIRE_LIVE=1` asks for the live smoke
/// test under `cargo test --all-targets` (not under `cargo bench`), which
/// then fails.
pub fn runs_live(bench: &str, bench_mode: bool) -> bool {
    if testkit::is_root() {
        return true;
    }
    let required = std::env::var("CONNTRACK_KIT_REQUIRE_LIVE").is_ok_and(|v| v == "1");
    assert!(
        bench_mode || !required,
        "{bench}: CONNTRACK_KIT_REQUIRE_LIVE=1 but not running as root"
    );
    eprintln!("{bench}: skipped (needs root: it fills a scratch network namespace)");
    false
}

/// The peak resident set of this process (`VmHWM` of `/proc/self/status`),
/// KiB; 0 when unreadable.
pub fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The median of the rounds (the upper one of an even count).
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// User and system CPU time from `getrusage(who)`: this process
/// (`RUSAGE_SELF`, every thread, dead ones too) or its children that have
/// been waited for (`RUSAGE_CHILDREN`; the difference around one `wait`
/// is that child's).
pub fn cpu(who: nix::sys::resource::UsageWho) -> (Duration, Duration) {
    let u = nix::sys::resource::getrusage(who).expect("getrusage");
    let d = |t: nix::sys::time::TimeVal| {
        Duration::new(t.tv_sec().max(0) as u64, 0)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    (d(u.user_time()), d(u.system_time()))
}

/// `key` from the environment as a number, else `default`.
pub fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The flows a bench runs on: `CONNTRACK_KIT_BENCH_FLOWS` (default
/// 1,000,000) under `cargo bench`, `smoke` under `cargo test`.
pub fn bench_flows(bench_mode: bool, smoke: u64) -> u64 {
    if bench_mode {
        env_num("CONNTRACK_KIT_BENCH_FLOWS", 1_000_000)
    } else {
        smoke
    }
}

/// The `nf_conntrack_max` a live bench raises the limit to for a table of
/// `flows`: with room to spare, so that the table stays below 95 % of it.
/// Once any namespace on the host fails an early drop (another process's
/// table-full test), the kernel's GC evicts non-assured entries from every
/// namespace at 95 % of the maximum or more (KERNEL.md, "GC"), which took
/// flows out of a bench table filled to 99.9 % between its fill and its
/// dumps.
pub fn table_max(flows: u64) -> u64 {
    flows + flows / 10 + 1000
}
