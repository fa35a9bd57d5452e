//! Property tests for `/proc/net/stat/nf_conntrack`: render -> parse round
//! trips over arbitrary headers, and no panic on arbitrary input.

use conntrack_core::procstat::{self, parse, parse_bytes, parse_table};
use conntrack_core::{Counter, CpuStats, Stats};
use proptest::prelude::*;

/// Column names: every spelling a kernel printed, plus made-up unknown ones.
fn column_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "searched",
            "clashres",
            "found",
            "new",
            "invalid",
            "ignore",
            "delete",
            "delete_list",
            "chainlength",
            "insert",
            "insert_failed",
            "drop",
            "early_drop",
            "icmp_error",
            "expect_new",
            "expect_create",
            "expect_delete",
            "search_restart",
        ])
        .prop_map(str::to_owned),
        "[a-z_][a-z0-9_]{0,12}",
    ]
}

/// A header: `entries` then distinct names with distinct meanings.
fn header() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(column_name(), 0..24).prop_map(|names| {
        let mut cols = vec!["entries".to_owned()];
        let mut seen: Vec<Option<Counter>> = Vec::new();
        for n in names {
            let c = Counter::from_any_name(&n);
            if n == "entries" || cols.contains(&n) || (c.is_some() && seen.contains(&c)) {
                continue;
            }
            seen.push(c);
            cols.push(n);
        }
        cols
    })
}

fn table() -> impl Strategy<Value = (Vec<String>, Stats)> {
    header().prop_flat_map(|cols| {
        let width = cols.len() - 1;
        (
            Just(cols),
            any::<u32>(),
            prop::collection::vec(prop::collection::vec(any::<u32>(), width), 1..8),
        )
            .prop_map(|(cols, entries, rows)| {
                let cpus = rows
                    .into_iter()
                    .map(|vals| {
                        let mut cpu = CpuStats::default();
                        for (name, v) in cols[1..].iter().zip(vals) {
                            match Counter::from_any_name(name) {
                                Some(c) => cpu.set(c, v),
                                None => cpu.other.push((name.clone(), v)),
                            }
                        }
                        cpu
                    })
                    .collect();
                let stats = Stats::new(cpus).with_entries(entries);
                (cols, stats)
            })
    })
}

proptest! {
    #[test]
    fn render_parse_round_trip((cols, stats) in table()) {
        let text = procstat::render(&cols, &stats);
        let t = parse_table(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&t.columns, &cols);
        prop_assert_eq!(&t.stats, &stats);
        // And the text is a fixed point.
        prop_assert_eq!(procstat::render(&t.columns, &t.stats), text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_bytes(&bytes);
        if let Ok(rows) = procstat::rows(&bytes) {
            for r in rows {
                let _ = r;
            }
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(text in "(entries|[ \t\r\n0-9a-fx_]|found|zz|\u{e9}){0,80}") {
        if let Err(e) = parse(&text) {
            // Locations are always inside (or just past the end of) the input.
            let lines = text.split('\n').count().max(1);
            prop_assert!(e.location.line >= 1 && e.location.line <= lines + 1);
            prop_assert!(e.location.column >= 1);
        }
    }

    #[test]
    fn mangled_real_text_never_panics(cut in 0usize..400, flip in 0usize..400, byte in any::<u8>()) {
        let (cols, stats) = (
            ["entries", "clashres", "found", "icmp_error", "search_restart"],
            Stats::new(vec![CpuStats::default(); 3]).with_entries(3),
        );
        let mut bytes = procstat::render(&cols, &stats).into_bytes();
        if flip < bytes.len() {
            bytes[flip] = byte;
        }
        bytes.truncate(cut);
        let _ = parse_bytes(&bytes);
    }
}
