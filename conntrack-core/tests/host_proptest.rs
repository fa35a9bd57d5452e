//! Property tests of the host parsers: no input panics, and the CPU list
//! and mask formats round-trip.

use conntrack_core::host::{
    MAX_CPUS, decode_utf8, parse_auxv_page_size, parse_cpu_list, parse_meminfo, parse_modules,
    parse_ns_link, parse_osrelease, parse_rps_mask, parse_single_value, parse_slabinfo,
    parse_smaps_page_size, parse_softirqs, parse_sysctl_bool, parse_sysctl_u32, parse_u32_value,
    render_cpu_list, render_rps_mask, timeout_key,
};
use conntrack_core::testkit::read_fixture;
use proptest::prelude::*;

/// Runs every text parser on `text`; they may fail but must not panic, and
/// every error location must be 1-based and inside (or just after) the
/// text.
fn all_parsers(text: &str) {
    let lines = text.split_terminator('\n').count().max(1);
    let check = |loc: Option<conntrack_core::Location>| {
        if let Some(l) = loc {
            assert!(l.line >= 1 && l.column >= 1, "{l:?}");
            assert!(l.line <= lines + 1, "{l:?} past {lines} lines");
        }
    };
    check(parse_meminfo(text).err().map(|e| e.location));
    check(parse_slabinfo(text).err().map(|e| e.location));
    check(parse_softirqs(text).err().map(|e| e.location));
    check(parse_cpu_list(text).err().map(|e| e.location));
    check(parse_rps_mask(text).err().map(|e| e.location));
    check(parse_modules(text).err().map(|e| e.location));
    check(parse_smaps_page_size(text).err().map(|e| e.location));
    check(parse_ns_link(text).err().map(|e| e.location));
    check(parse_osrelease(text).err().map(|e| e.location));
    check(parse_single_value(text).err().map(|e| e.location));
    check(parse_sysctl_u32(text).err().map(|e| e.location));
    check(parse_sysctl_bool(text).err().map(|e| e.location));
    check(parse_u32_value(text).err().map(|e| e.location));
    let _ = timeout_key(text);
}

fn fixture(rel: &str) -> String {
    read_fixture(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/host"), rel)
}

/// Real files to mutate: deeper paths than random bytes reach.
fn seeds() -> Vec<String> {
    [
        "linux-6.18/proc/slabinfo",
        "linux-6.18/proc/softirqs",
        "linux-6.18/proc/meminfo",
        "linux-6.18/proc/self/smaps",
        "linux-3.2/proc/modules",
        "linux-3.2/proc/slabinfo",
        "linux-3.2/proc/softirqs",
    ]
    .iter()
    .map(|r| fixture(r))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_auxv_page_size(&bytes);
        if let Ok(text) = decode_utf8(&bytes) {
            all_parsers(text);
        } else {
            all_parsers(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn arbitrary_token_soup_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("slabinfo - version: 2.1\n".to_string()),
                Just("# name <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> : slabdata <x>\n".to_string()),
                Just("CPU0 CPU1\n".to_string()),
                Just("NET_RX:".to_string()),
                Just("KernelPageSize:".to_string()),
                Just("MemTotal:".to_string()),
                Just(" kB".to_string()),
                Just("nf_conntrack".to_string()),
                Just(" Live 0x".to_string()),
                Just(":".to_string()),
                Just(",".to_string()),
                Just("-".to_string()),
                Just("\n".to_string()),
                Just(" ".to_string()),
                Just("net:[".to_string()),
                Just("]".to_string()),
                "[0-9a-fA-F]{1,12}",
                "[0-9]{1,25}",
                any::<char>().prop_map(String::from),
            ],
            0..40,
        )
    ) {
        all_parsers(&parts.concat());
    }

    #[test]
    fn mutated_real_files_never_panic(
        seed in 0usize..7,
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let text = seeds().swap_remove(seed);
        let mut bytes = text.into_bytes();
        let n = bytes.len();
        bytes[flip.index(n)] = byte;
        bytes.truncate(cut.index(n + 1));
        match decode_utf8(&bytes) {
            Ok(t) => all_parsers(t),
            Err(e) => prop_assert!(e.location.line >= 1 && e.location.column >= 1),
        }
    }

    #[test]
    fn cpu_list_round_trips(cpus in proptest::collection::vec(0u32..MAX_CPUS, 0..200)) {
        let mut want = cpus.clone();
        want.sort_unstable();
        want.dedup();
        let text = render_cpu_list(&cpus);
        prop_assert_eq!(parse_cpu_list(&text).unwrap(), want.clone());
        prop_assert_eq!(parse_cpu_list(&format!("{text}\n")).unwrap(), want);
    }

    #[test]
    fn rps_mask_round_trips(
        nr in 1u32..2048,
        cpus in proptest::collection::vec(0u32..2048, 0..100),
    ) {
        let mut want: Vec<u32> = cpus.iter().copied().filter(|&c| c < nr).collect();
        want.sort_unstable();
        want.dedup();
        let text = render_rps_mask(&cpus, nr);
        // The kernel's width: one 8-digit group per 32 CPUs, the first
        // shortened to the CPUs it covers.
        prop_assert_eq!(text.split(',').count() as u32, nr.div_ceil(32));
        prop_assert_eq!(parse_rps_mask(&format!("{text}\n")).unwrap(), want);
    }
}
