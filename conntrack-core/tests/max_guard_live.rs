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
//! for a table-full scenario) changes it between the test's reads. Max
//! guards of other processes would still raise it; none run beside the
//! test suite (test binaries run one at a time), but a benchmark started
//! by hand at the same time would.

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
    let before = read_max().unwrap();
    if before == 0 {
        // Unlimited: a guard changes nothing.
        let g = ConntrackMaxGuard::at_least(1).unwrap();
        assert_eq!((g.previous(), read_max().unwrap()), (0, 0));
        return;
    }
    {
        let g = ConntrackMaxGuard::at_least(before + 1).unwrap();
        assert_eq!(g.previous(), before);
        assert_eq!(read_max().unwrap(), before + 1);
    }
    assert_eq!(read_max().unwrap(), before);
    // Never lowered: a guard below the current value changes nothing.
    drop(ConntrackMaxGuard::at_least(1).unwrap());
    assert_eq!(read_max().unwrap(), before);

    // Overlapping guards, dropped in the "wrong" order: the value stays at
    // the largest live minimum and the original comes back last.
    let a = ConntrackMaxGuard::at_least(before + 10).unwrap();
    let b = ConntrackMaxGuard::at_least(before + 20).unwrap();
    assert_eq!((a.previous(), b.previous()), (before, before));
    assert_eq!(read_max().unwrap(), before + 20);
    drop(a);
    assert_eq!(read_max().unwrap(), before + 20);
    let c = ConntrackMaxGuard::at_least(before + 5).unwrap();
    drop(b);
    assert_eq!(read_max().unwrap(), before + 5);
    drop(c);
    assert_eq!(read_max().unwrap(), before);

    // A run that died holding a guard left the value raised: the next
    // guard prunes the dead holder and restores the original first.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let dir = std::path::Path::new(ConntrackMaxGuard::STATE_DIR);
    std::fs::write(
        dir.join("nf_conntrack_max.state"),
        format!("original {before}\nholder {dead} {}\n", before + 7),
    )
    .unwrap();
    std::fs::write(MAX_PATH, (before + 7).to_string()).unwrap();
    let g = ConntrackMaxGuard::at_least(1).unwrap();
    assert_eq!(g.previous(), before);
    assert_eq!(read_max().unwrap(), before);
    drop(g);
    assert_eq!(read_max().unwrap(), before);
    assert!(!dir.join("nf_conntrack_max.state").exists());
}
