//! `conntrack -S` / `-C` parsers: every captured and hand-written format,
//! every error path (kind and location), render round trips.

use conntrack_core::Location;
use conntrack_core::cli::stats::{
    CliStatsError, CliStatsErrorKind as K, CliStatsLines, parse_cli_stats, parse_cli_stats_bytes,
    parse_count, render_cli_stats,
};
use conntrack_core::testkit::read_fixture;
use conntrack_core::{Counter, CpuStats, Stats};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    read_fixture(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cli-stats"),
        name,
    )
}

fn stats(name: &str) -> Stats {
    parse_cli_stats(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn err(text: &str) -> CliStatsError {
    parse_cli_stats(text).expect_err("input should be rejected")
}

fn at(line: usize, column: usize) -> Location {
    Location::new(line, column)
}

#[test]
fn real_6_18_output() {
    let s = stats("6.18-netns-traffic-S.txt");
    assert_eq!(s.entries, None);
    assert_eq!(
        s.cpus.iter().map(|c| c.cpu).collect::<Vec<_>>(),
        [Some(0), Some(1)]
    );
    let t = s.total();
    assert_eq!(t.insert(), Some(2));
    assert_eq!(t.invalid(), Some(12));
    assert_eq!(t.clash_resolve(), Some(0));
    assert_eq!(t.chain_too_long(), Some(0));
    // 6.x does not send these at all.
    assert_eq!(t.searched(), None);
    assert_eq!(t.ignore(), None);
    assert_eq!(t.new_entries(), None);
    assert!(t.other.is_empty());
    let host = stats("6.18-host-S.txt");
    assert!(!host.cpus.is_empty());
    assert_eq!(parse_count(&fixture("6.18-netns-traffic-C.txt")), Ok(2));
    parse_count(&fixture("6.18-host-C.txt")).unwrap();
}

#[test]
fn real_expect_stats() {
    let s = stats("6.18-netns-expect-S.txt");
    assert_eq!(s.cpus.len(), 2);
    assert_eq!(s.total().expect_new(), Some(0));
    assert_eq!(s.total().found(), None);
}

#[test]
fn old_kernel_all_thirteen_fields() {
    let t = stats("3.10-tools-1.4.4-S.txt").total();
    assert_eq!(t.searched(), Some(2887 + 12277));
    assert_eq!(t.new_entries(), Some(284242 + 1412202));
    assert_eq!(t.delete_list(), Some(19187 + 29592));
    assert_eq!(t.search_restart(), Some(21));
    assert_eq!(t.clash_resolve(), None);
}

#[test]
fn kernel_4_19_has_ignore_no_clash() {
    let t = stats("4.19-tools-1.4.5-S.txt").total();
    assert_eq!(t.ignore(), Some(91));
    assert_eq!(t.searched(), None);
    assert_eq!(t.clash_resolve(), None);
    assert_eq!(t.insert_failed(), Some(11));
}

#[test]
fn old_tools_on_new_kernel_keep_unknown_n_by_name() {
    let s = stats("5.15-tools-1.4.6-unknown1-S.txt");
    let t = s.total();
    // 1.4.6 predates chaintoolong: the tools call attribute 15 `unknown1`.
    assert_eq!(t.chain_too_long(), None);
    assert_eq!(s.cpus[0].get_other("unknown1"), Some(3));
    assert_eq!(t.get_other("unknown1"), Some(3));
    // Big values survive, totals wrap.
    assert_eq!(
        t.search_restart(),
        Some(2_329_761_182u32.wrapping_add(2_301_234_567))
    );
    let f = stats("future-unknown1-S.txt");
    assert_eq!(f.total().get_other("unknown1"), Some(15));
    assert_eq!(f.total().chain_too_long(), Some(0));
}

#[test]
fn proc_fallback_names_and_entries_once() {
    let s = stats("proc-fallback-S.txt");
    // The lines disagree (10000, 10002): first one wins, never summed.
    assert_eq!(s.entries, Some(10000));
    let t = s.total();
    assert_eq!(t.clash_resolve(), Some(33)); // `clashres`
    assert_eq!(t.chain_too_long(), Some(3)); // `chainlength`
    assert_eq!(t.error(), Some(1)); // `icmp_error`
    assert_eq!(t.searched(), None);
    assert!(t.other.is_empty());
}

#[test]
fn tabs_expanded_to_spaces() {
    let s = stats("6.x-4cpu-tabs-expanded-S.txt");
    assert_eq!(s.cpus.len(), 4);
    assert_eq!(s.cpus[3].cpu, Some(3));
    assert_eq!(s.total().clash_resolve(), Some(9));
    assert_eq!(s.total().chain_too_long(), Some(2));
}

#[test]
fn blank_lines_and_crlf_tolerated() {
    let text = fixture("6.x-4cpu-tabs-expanded-S.txt");
    let want = parse_cli_stats(&text);
    assert_eq!(parse_cli_stats(&text.replace('\n', "\r\n")), want);
    assert_eq!(
        parse_cli_stats(&format!("\n\n{}\n  \n", text.replace('\n', "\n\n"))),
        want
    );
}

#[test]
fn rendered_fixtures_round_trip() {
    for name in [
        "3.10-tools-1.4.4-S.txt",
        "4.19-tools-1.4.5-S.txt",
        "5.15-tools-1.4.6-unknown1-S.txt",
        "6.18-netns-traffic-S.txt",
        "6.18-host-S.txt",
    ] {
        let s = stats(name);
        assert_eq!(
            parse_cli_stats(&render_cli_stats(&s)),
            Ok(s.clone()),
            "{name}"
        );
    }
    // Real 6.18 output is reproduced byte for byte (the kernel's attribute
    // order is the crate's counter order there).
    let text = fixture("6.18-netns-traffic-S.txt");
    assert_eq!(render_cli_stats(&parse_cli_stats(&text).unwrap()), text);
}

// ---- errors: kind and location ------------------------------------------

#[test]
fn empty() {
    for text in ["", "\n", " \t\n\r\n"] {
        let e = err(text);
        assert_eq!((e.kind, e.location), (K::Empty, at(1, 1)), "{text:?}");
    }
}

#[test]
fn garbage_lines() {
    let e = err("cpu=0   \tfound=1 \nconntrack v1.4.7 (conntrack-tools): oops\n");
    assert_eq!((e.kind, e.location), (K::ExpectedCpu, at(2, 1)));
    let e = err("  found=1\n");
    assert_eq!((e.kind, e.location), (K::ExpectedCpu, at(1, 3)));
    let e = err("cpu=x\tfound=1\n");
    assert_eq!((e.kind, e.location), (K::BadNumber, at(1, 5)));
    let e = err("cpu=99999999999\tfound=1\n");
    assert_eq!((e.kind, e.location), (K::NumberTooLarge, at(1, 5)));
    let e = err("cpu=0\tfound\n");
    assert_eq!((e.kind, e.location), (K::ExpectedField, at(1, 7)));
    let e = err("cpu=0\tfo-und=1\n");
    assert_eq!((e.kind, e.location), (K::BadFieldName, at(1, 7)));
    let e = err("cpu=0\t=1\n");
    assert_eq!((e.kind, e.location), (K::BadFieldName, at(1, 7)));
}

#[test]
fn bad_values() {
    let e = err("cpu=0   \tfound=1 drop=-1 \n");
    assert_eq!((e.kind, e.location), (K::BadNumber, at(1, 23)));
    let e = err("cpu=0   \tfound=1 drop= \n");
    assert_eq!((e.kind, e.location), (K::BadNumber, at(1, 23)));
    let e = err("cpu=0   \tfound=0x10\n");
    assert_eq!((e.kind, e.location), (K::BadNumber, at(1, 16)));
    let e = err("cpu=0   \tfound=4294967296\n");
    assert_eq!((e.kind, e.location), (K::NumberTooLarge, at(1, 16)));
    assert_eq!(
        parse_cli_stats("cpu=0 found=4294967295\n").unwrap().cpus[0].found(),
        Some(u32::MAX)
    );
}

#[test]
fn duplicates() {
    let e = err("cpu=0\tfound=1 found=2\n");
    assert_eq!((e.kind, e.location), (K::DuplicateField, at(1, 15)));
    let e = err("cpu=0\terror=1 icmp_error=2\n");
    assert_eq!((e.kind, e.location), (K::DuplicateField, at(1, 15)));
    let e = err("cpu=0\tcpu=1\n");
    assert_eq!((e.kind, e.location), (K::DuplicateField, at(1, 7)));
    let e = err("cpu=0\tunknown1=1 unknown1=1\n");
    assert_eq!((e.kind, e.location), (K::DuplicateField, at(1, 18)));
    let e = err("cpu=0\tfound=1\n\n  cpu=0\tfound=2\n");
    assert_eq!((e.kind, e.location), (K::DuplicateCpu, at(3, 3)));
}

#[test]
fn binary_junk() {
    let e = parse_cli_stats_bytes(b"cpu=0\tfound=\xff\xfe\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::BadNumber, at(1, 13)));
    let e = parse_cli_stats_bytes(b"\x00\x01cpu=0\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::ExpectedCpu, at(1, 1)));
}

#[test]
fn one_bad_line_does_not_lose_the_rest() {
    let items: Vec<_> =
        CliStatsLines::new(b"cpu=0 found=1\ncpu=1 found=zz\n\ncpu=2 found=3\n").collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().stats.found(), Some(1));
    let e = items[1].as_ref().unwrap_err();
    assert_eq!((e.kind, e.location), (K::BadNumber, at(2, 13)));
    let last = items[2].as_ref().unwrap();
    assert_eq!((last.line, last.stats.cpu), (4, Some(2)));
}

#[test]
fn count() {
    assert_eq!(parse_count("0\n"), Ok(0));
    assert_eq!(parse_count("\n  262144  \r\n\n"), Ok(262_144));
    assert_eq!(parse_count("4294967295"), Ok(u32::MAX));
    // `%d` of a count above i32::MAX.
    assert_eq!(parse_count("-1\n"), Ok(u32::MAX));
    let e = parse_count("").unwrap_err();
    assert_eq!((e.kind, e.location), (K::Empty, at(1, 1)));
    let e = parse_count("12 34\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::ExtraInput, at(1, 4)));
    let e = parse_count("12\n\n34\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::ExtraInput, at(3, 1)));
    let e = parse_count("  twelve\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::BadNumber, at(1, 3)));
    let e = parse_count("4294967296\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::NumberTooLarge, at(1, 1)));
    let e = parse_count("-2147483649\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::BadNumber, at(1, 1)));
    let e = parse_count("-x\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::BadNumber, at(1, 2)));
}

#[test]
fn error_display() {
    let e = err("cpu=0   \tfound=x\n");
    assert_eq!(
        e.to_string(),
        "value is not a decimal number at line 1, column 16"
    );
}

// ---- properties -----------------------------------------------------------

fn cpu_stats(id: u32) -> impl Strategy<Value = CpuStats> {
    (
        prop::collection::vec(prop::option::of(any::<u32>()), Counter::COUNT),
        prop::collection::btree_map("unknown[0-9]|[a-z][a-z_]{0,8}", any::<u32>(), 0..3),
    )
        .prop_map(move |(vals, others)| {
            let mut c = CpuStats::for_cpu(id);
            for (counter, v) in Counter::ALL.into_iter().zip(vals) {
                if let Some(v) = v {
                    c.set(counter, v);
                }
            }
            c.other = others
                .into_iter()
                .filter(|(n, _)| {
                    n != "entries" && n != "cpu" && Counter::from_any_name(n).is_none()
                })
                .collect();
            c
        })
}

fn any_stats() -> impl Strategy<Value = Stats> {
    (1usize..6, prop::option::of(any::<u32>())).prop_flat_map(|(n, entries)| {
        let cpus: Vec<_> = (0..n as u32).map(cpu_stats).collect();
        cpus.prop_map(move |cpus| {
            let mut stats = Stats::new(cpus);
            stats.entries = entries;
            stats
        })
    })
}

proptest! {
    #[test]
    fn render_parse_round_trip(s in any_stats()) {
        let text = render_cli_stats(&s);
        prop_assert_eq!(parse_cli_stats(&text), Ok(s));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_cli_stats_bytes(&bytes);
        for item in CliStatsLines::new(&bytes) {
            let _ = item;
        }
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = parse_count(s);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(text in "(cpu=|[0-9]|=|[a-z_]|[ \t\r\n-]|\u{e9}){0,80}") {
        let _ = parse_cli_stats(&text);
        let _ = parse_count(&text);
    }
}
