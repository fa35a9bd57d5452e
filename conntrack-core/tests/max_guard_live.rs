//! Live check of `host::ConntrackMaxGuard` against the running kernel: it
//! raises the global `nf_conntrack_max`, overlapping guards keep the
//! largest live minimum, the original value comes back when the last one
//! goes, and a holder whose process died does not pin a raised value.
//!
//! Skips (printing why) without root or nf_conntrack, unless
//! `CONNTRACK_KIT_REQUIRE_LIVE=1`, which turns a skip into a failure. The
//! only test in its binary, so no other guard of this process interferes.
//!
//! The value is global: the test holds a `GlobalSysctlShare` throughout,
//! so no exclusive holder in another process (a lab that lowers the max
//! for a table-full scenario) changes it between the test's reads; and it
//! reads the value together with the guards' coordination
//! (`ConntrackMaxGuard::coordination`), so max guards of other processes
//! (a benchmark that raised the max to 3,001,000 made an earlier version
//! fail) are told from its own.

use conntrack_core::host::global_guard::GlobalSysctlShare;
use conntrack_core::host::max_guard::{ConntrackMaxGuard, read_max};
use conntrack_core::testkit::{Need, live};

const MAX_PATH: &str = "/proc/sys/net/netfilter/nf_conntrack_max";

#[test]
fn max_guard_restores_the_global_max() {
    if !live(
        "max_guard_restores_the_global_max",
        &[Need::Root, Need::Path(MAX_PATH)],
    ) {
        return;
    }
    let _share = GlobalSysctlShare::acquire().unwrap();
    let c0 = ConntrackMaxGuard::coordination().unwrap();
    if c0.value == 0 {
        // Unlimited: a guard changes nothing.
        let g = ConntrackMaxGuard::at_least(1).unwrap();
        assert_eq!((g.previous(), read_max().unwrap()), (0, 0));
        return;
    }
    // The value with no guard alive; guards of other processes (a
    // benchmark) may hold it raised meanwhile.
    let base = c0.original.unwrap_or(c0.value);
    let top = c0.value;
    // After every step: this process holds exactly `mine`, and the kernel
    // has what the live guards (ours and any other's) call for, or the
    // original when none lives. Read together under the guards' lock.
    let check = |mine: &[u64], step: &str| {
        let c = ConntrackMaxGuard::coordination().unwrap();
        assert_eq!(c.mine(), mine, "{step}: {c:?}");
        assert_eq!(c.value, c.target().unwrap_or(base), "{step}: {c:?}");
        c
    };
    {
        let g = ConntrackMaxGuard::at_least(top + 1).unwrap();
        assert_eq!(g.previous(), base);
        assert!(check(&[top + 1], "one guard").value > top);
    }
    check(&[], "dropped");
    // Never lowered: a guard below the current value changes nothing.
    {
        let _g = ConntrackMaxGuard::at_least(1).unwrap();
        assert!(check(&[1], "guard below").value >= base);
    }
    check(&[], "dropped below");

    // Overlapping guards, dropped in the "wrong" order: the value stays at
    // the largest live minimum and the original comes back last.
    let a = ConntrackMaxGuard::at_least(top + 10).unwrap();
    let b = ConntrackMaxGuard::at_least(top + 20).unwrap();
    assert_eq!((a.previous(), b.previous()), (base, base));
    assert!(check(&[top + 10, top + 20], "a, b").value >= top + 20);
    drop(a);
    assert!(check(&[top + 20], "b").value >= top + 20);
    let c = ConntrackMaxGuard::at_least(top + 5).unwrap();
    drop(b);
    assert!(check(&[top + 5], "c").value >= top + 5);
    drop(c);
    check(&[], "none");

    // A run that died holding a guard left the value raised: the next
    // guard prunes the dead holder and restores the original first. This
    // writes the coordination file, so only while no other process holds
    // a guard.
    if !ConntrackMaxGuard::coordination()
        .unwrap()
        .holders
        .is_empty()
    {
        eprintln!("max_guard_live: another process holds a max guard; dead-holder part skipped");
        return;
    }
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let dir = std::path::Path::new(ConntrackMaxGuard::STATE_DIR);
    std::fs::write(
        dir.join("nf_conntrack_max.state"),
        format!("original {base}\nholder {dead} {}\n", base + 7),
    )
    .unwrap();
    std::fs::write(MAX_PATH, (base + 7).to_string()).unwrap();
    let g = ConntrackMaxGuard::at_least(1).unwrap();
    assert_eq!(g.previous(), base);
    assert_eq!(read_max().unwrap(), base);
    drop(g);
    assert_eq!(read_max().unwrap(), base);
    assert!(!dir.join("nf_conntrack_max.state").exists());
}
