//! `/proc/net/stat/nf_conntrack` parser: every kernel generation's fixture,
//! every error path (kind and location), and render -> parse round trips.

use conntrack_core::procstat::{
    self, ProcStatError, ProcStatErrorKind as K, ProcStatTable, parse, parse_bytes, parse_table,
};
use conntrack_core::testkit::read_fixture;
use conntrack_core::{Counter, Location};

fn fixture(name: &str) -> String {
    read_fixture(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/proc-stat"),
        name,
    )
}

fn table(name: &str) -> ProcStatTable {
    parse_table(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn err(text: &str) -> ProcStatError {
    parse(text).expect_err("input should be rejected")
}

fn at(line: usize, column: usize) -> Location {
    Location::new(line, column)
}

const ALL_FIXTURES: &[&str] = &[
    "3.8-16col.txt",
    "3.10-5.9-17col.txt",
    "5.10-5.14-clashres.txt",
    "5.15-4cpu.txt",
    "5.15-wrap.txt",
    "future-extra-column.txt",
    "6.18-host.txt",
    "6.18-netns-traffic.txt",
];

#[test]
fn every_fixture_renders_back_byte_for_byte() {
    for name in ALL_FIXTURES {
        let text = fixture(name);
        let t = parse_table(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The fixtures agree on `entries` across rows except 5.15-4cpu.
        if *name != "5.15-4cpu.txt" {
            assert_eq!(procstat::render(&t.columns, &t.stats), text, "{name}");
        }
    }
}

#[test]
fn kernel_3_8_sixteen_columns_with_trailing_space() {
    let t = table("3.8-16col.txt");
    assert_eq!(t.columns.len(), 16);
    assert!(!t.has_column("search_restart"));
    let s = &t.stats;
    assert_eq!(s.entries, Some(0x3e));
    assert_eq!(s.cpus.len(), 2);
    assert!(s.cpus.iter().all(|c| c.cpu.is_none()));
    let total = s.total();
    assert_eq!(total.searched(), Some(0xb47 + 0x2ff5));
    assert_eq!(total.found(), Some(0x2ac6b0 + 0x4a157d));
    assert_eq!(total.new_entries(), Some(0x45652 + 0x158c6a));
    assert_eq!(total.delete_list(), Some(0x4af3 + 0x7398));
    assert_eq!(total.error(), Some(0x27b + 0x166));
    assert_eq!(total.expect_new(), Some(0x23));
    assert_eq!(total.search_restart(), None);
    assert_eq!(total.clash_resolve(), None);
    assert_eq!(total.chain_too_long(), None);
    assert!(total.other.is_empty());
}

#[test]
fn kernel_3_10_has_searched_not_clash_resolve() {
    let s = table("3.10-5.9-17col.txt").stats;
    let t = s.total();
    assert_eq!(t.searched(), Some(0));
    assert_eq!(t.delete_list(), Some(0));
    assert_eq!(t.search_restart(), Some(0x1b + 0x11));
    assert_eq!(t.clash_resolve(), None);
    assert_eq!(t.chain_too_long(), None);
    assert_eq!(t.invalid(), Some(0x9c4 + 0x8e1));
    assert_eq!(s.entries, Some(0x1f3a));
}

#[test]
fn kernel_5_10_clashres_is_clash_resolve_not_searched() {
    let t = table("5.10-5.14-clashres.txt").stats.total();
    assert_eq!(t.searched(), None);
    assert_eq!(t.clash_resolve(), Some(0x51 + 0x4e));
    assert_eq!(t.delete_list(), Some(0));
    assert_eq!(t.chain_too_long(), None);
}

#[test]
fn kernel_5_15_chainlength_is_chain_too_long() {
    let s = table("5.15-4cpu.txt").stats;
    assert_eq!(s.cpus.len(), 4);
    let t = s.total();
    assert_eq!(t.searched(), None);
    assert_eq!(t.delete_list(), None);
    assert_eq!(t.clash_resolve(), Some(0x10 + 0x11 + 0x12 + 0x13));
    assert_eq!(t.chain_too_long(), Some(2 + 1 + 3));
    assert_eq!(t.get(Counter::Drop), Some(5 + 6 + 7 + 8));
    assert_eq!(t.search_restart(), Some(0x40 + 0x41 + 0x42 + 0x43));
}

#[test]
fn entries_taken_from_first_row_never_summed() {
    // Rows 3 and 4 say 0x2712: the count changed during the read.
    let s = table("5.15-4cpu.txt").stats;
    assert_eq!(s.entries, Some(0x2710));
    // `entries` is not a counter, so it is not in the per-CPU stats either.
    assert!(s.cpus.iter().all(|c| c.get_other("entries").is_none()));
    let rows: Vec<_> = procstat::rows(fixture("5.15-4cpu.txt").as_bytes())
        .unwrap()
        .map(Result::unwrap)
        .map(|r| (r.line, r.entries))
        .collect();
    assert_eq!(rows, [(2, 0x2710), (3, 0x2710), (4, 0x2712), (5, 0x2712)]);
}

#[test]
fn totals_wrap_like_the_kernel_u32() {
    let s = table("5.15-wrap.txt").stats;
    let t = s.total();
    assert_eq!(t.clash_resolve(), Some(1)); // 0xffffffff + 2
    assert_eq!(t.invalid(), Some(1)); // 0xfffffffe + 3
    assert_eq!(t.drop(), Some(0)); // 0xffffffff + 1
    assert_eq!(t.search_restart(), Some(0)); // 1 + 0xffffffff
}

#[test]
fn future_unknown_column_kept_by_name() {
    let t = table("future-extra-column.txt");
    assert_eq!(t.unknown_columns().collect::<Vec<_>>(), ["bucket_resize"]);
    assert_eq!(t.stats.cpus[0].get_other("bucket_resize"), Some(9));
    assert_eq!(t.stats.cpus[1].get_other("bucket_resize"), Some(4));
    assert_eq!(t.stats.total().get_other("bucket_resize"), Some(13));
    assert_eq!(t.stats.total().clash_resolve(), Some(1));
}

#[test]
fn real_6_18_captures() {
    let host = table("6.18-host.txt");
    assert_eq!(host.columns[1], "clashres");
    assert_eq!(host.columns[7], "chainlength");
    assert!(!host.stats.cpus.is_empty());
    let ns = table("6.18-netns-traffic.txt").stats;
    assert_eq!(ns.entries, Some(2));
    assert_eq!(ns.total().insert(), Some(2));
    assert_eq!(ns.total().invalid(), Some(12));
    assert_eq!(ns.total().searched(), None);
}

#[test]
fn crlf_blank_lines_and_tabs_tolerated() {
    let text = fixture("5.15-4cpu.txt");
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(parse(&crlf), parse(&text));
    let blanks = format!("\n  \n{}\n\n", text.replace('\n', "\n\n"));
    assert_eq!(parse(&blanks), parse(&text));
    let tabs = text.replace("  ", "\t");
    assert_eq!(parse(&tabs), parse(&text));
    // No final newline (a read that ends exactly at the last value).
    assert_eq!(parse(text.trim_end()), parse(&text));
}

#[test]
fn trailing_space_on_a_modern_layout_is_fine() {
    let text = fixture("5.15-4cpu.txt").replace('\n', " \n");
    assert_eq!(parse(&text), parse(&fixture("5.15-4cpu.txt")));
}

#[test]
fn uppercase_hex_and_short_values_accepted() {
    let s = parse("entries  found drop\n0000000A  F 0\n").unwrap();
    assert_eq!(s.entries, Some(10));
    assert_eq!(s.cpus[0].found(), Some(15));
}

// ---- errors: kind and location ------------------------------------------

#[test]
fn empty_input() {
    for text in ["", "\n", "  \n\t\n", "\r\n"] {
        let e = err(text);
        assert_eq!((e.kind, e.location), (K::Empty, at(1, 1)), "{text:?}");
    }
}

#[test]
fn header_only_has_no_rows() {
    let e = err("entries  found\n");
    assert_eq!((e.kind, e.location), (K::NoRows, at(2, 1)));
    let e = err("entries  found");
    assert_eq!((e.kind, e.location), (K::NoRows, at(2, 1)));
}

#[test]
fn header_must_start_with_entries() {
    // Position-only readers would accept this; we do not.
    let e = err("searched found\n00000000 00000000\n");
    assert_eq!((e.kind, e.location), (K::NotAStatHeader, at(1, 1)));
    // A data row where the header should be (header lost).
    let e = err("  00000002  00000000\n");
    assert_eq!((e.kind, e.location), (K::NotAStatHeader, at(1, 3)));
    // Another /proc file altogether.
    let e = err("Inter-|   Receive\n face |bytes\n");
    assert_eq!((e.kind, e.location), (K::NotAStatHeader, at(1, 1)));
}

#[test]
fn header_bad_column_name() {
    let e = err("entries  found 0drop\n00000000  00000000 00000000\n");
    assert_eq!((e.kind, e.location), (K::BadColumnName, at(1, 16)));
    let e = parse_bytes(b"entries  f\xc3\xa9\n00000000  00000000\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::BadColumnName, at(1, 10)));
}

#[test]
fn header_duplicate_columns() {
    let e = err("entries  found found\n00000000  00000000 00000000\n");
    assert_eq!((e.kind, e.location), (K::DuplicateColumn, at(1, 16)));
    // Two spellings of the same counter are ambiguous too.
    let e = err("entries  icmp_error error\n00000000  00000000 00000000\n");
    assert_eq!((e.kind, e.location), (K::DuplicateColumn, at(1, 21)));
    let e = err("entries  found entries\n00000000  00000000 00000000\n");
    assert_eq!((e.kind, e.location), (K::DuplicateColumn, at(1, 16)));
    // Unknown names can't repeat either.
    let e = err("entries  zz zz\n00000000  00000000 00000000\n");
    assert_eq!((e.kind, e.location), (K::DuplicateColumn, at(1, 13)));
}

#[test]
fn truncated_row() {
    // Cut in the middle of a row, as a short read would.
    let e = err("entries  found drop\n00000001  00000002 00000003\n00000001  0000");
    let e2 = err("entries  found drop\n00000001  00000002 00000003\n00000001  00000004\n");
    assert_eq!(
        (e2.kind, e2.location),
        (
            K::MissingValues {
                expected: 3,
                found: 2
            },
            at(3, 19)
        )
    );
    assert_eq!(
        (e.kind, e.location),
        (
            K::MissingValues {
                expected: 3,
                found: 2
            },
            at(3, 15)
        )
    );
}

#[test]
fn truncated_row_location_ignores_trailing_space() {
    // Legacy rows end with a space; the error points just past the last value.
    let e = err("entries  found drop\n00000001  00000004 \n");
    assert_eq!(
        (e.kind, e.location),
        (
            K::MissingValues {
                expected: 3,
                found: 2
            },
            at(2, 19)
        )
    );
}

#[test]
fn row_wider_than_header() {
    let e = err("entries  found\n00000001  00000002 00000003\n");
    assert_eq!(
        (e.kind, e.location),
        (K::ExtraValues { expected: 2 }, at(2, 20))
    );
}

#[test]
fn bad_hex_values() {
    let e = err("entries  found\n00000001  0000zz00\n");
    assert_eq!((e.kind, e.location), (K::BadHex, at(2, 11)));
    let e = err("entries  found\n0x000001  00000000\n");
    assert_eq!((e.kind, e.location), (K::BadHex, at(2, 1)));
    let e = err("entries  found\n00000001  -0000001\n");
    assert_eq!((e.kind, e.location), (K::BadHex, at(2, 11)));
    // CR in the middle of a line is not whitespace here.
    let e = err("entries  found\n00000001\r00000000\n");
    assert_eq!((e.kind, e.location), (K::BadHex, at(2, 1)));
}

#[test]
fn values_above_u32() {
    let e = err("entries  found\n00000001  100000000\n");
    assert_eq!((e.kind, e.location), (K::ValueTooLarge, at(2, 11)));
    // Leading zeros past eight digits are harmless.
    assert_eq!(
        parse("entries  found\n00000001  0000000000000007\n")
            .unwrap()
            .cpus[0]
            .found(),
        Some(7)
    );
}

#[test]
fn binary_junk() {
    let e = parse_bytes(b"entries  found\n00000001  \x00\x01\xff\xfe\n").unwrap_err();
    assert_eq!((e.kind, e.location), (K::BadHex, at(2, 11)));
    let e = parse_bytes(b"\x7fELF\x02\x01\x01\x00").unwrap_err();
    assert_eq!((e.kind, e.location), (K::NotAStatHeader, at(1, 1)));
}

#[test]
fn a_bad_row_does_not_lose_the_others() {
    let text = "entries  found\n00000001  00000001\n00000001  0000zz01\n00000001  00000003\n\
                00000001\n00000001  00000005\n";
    let items: Vec<_> = procstat::rows(text.as_bytes()).unwrap().collect();
    assert_eq!(items.len(), 5);
    let good: Vec<u32> = items
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter_map(|r| r.stats.found())
        .collect();
    assert_eq!(good, [1, 3, 5]);
    let bad: Vec<_> = items
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|e| (e.kind, e.location.line))
        .collect();
    assert_eq!(
        bad,
        [
            (K::BadHex, 3),
            (
                K::MissingValues {
                    expected: 2,
                    found: 1
                },
                5
            )
        ]
    );
    // The strict parser reports the first one.
    assert_eq!(err(text).location, at(3, 11));
}

#[test]
fn error_display_says_what_and_where() {
    let e = err("entries  found\n00000001  0000zz00\n");
    assert_eq!(
        e.to_string(),
        "value is not hexadecimal at line 2, column 11"
    );
    let e = err("entries  found\n00000001  00000002 00000003\n");
    assert_eq!(
        e.to_string(),
        "row has more values than the header's 2 columns at line 2, column 20"
    );
}
