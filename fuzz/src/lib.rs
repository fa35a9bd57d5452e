//! The invariants every fuzz target checks, shared by the libFuzzer targets
//! (`fuzz_targets/`, run with `cargo fuzz`) and by the stable replay test
//! (`tests/replay.rs`, run with plain `cargo test`), so both check exactly
//! the same thing.
//!
//! Each check must not panic on any input, and where an encoder exists,
//! decode -> encode -> decode must be stable.

use conntrack_core::cli::stats as cli_stats;
use conntrack_core::procstat;

/// `/proc/net/stat/nf_conntrack`: parse never panics; a parsed table
/// rendered in the kernel's format parses back to the same stats.
pub fn check_procstat(data: &[u8]) {
    if let Ok(table) = procstat::parse_table_bytes(data) {
        let text = procstat::render(&table.columns, &table.stats);
        let again = procstat::parse_table(&text).expect("rendered /proc stat text must parse");
        assert_eq!(again.stats, table.stats, "render/parse not stable for {text:?}");
        assert_eq!(again.columns, table.columns);
    }
    // The lazy row reader must not panic either, whatever the rows hold.
    if let Ok(rows) = procstat::rows(data) {
        for _ in rows {}
    }
}

/// `conntrack -S` and `-C` text: parse never panics; parse(render(parse(x)))
/// equals parse(x).
pub fn check_cli_stats(data: &[u8]) {
    if let Ok(stats) = cli_stats::parse_cli_stats_bytes(data) {
        let text = cli_stats::render_cli_stats(&stats);
        let again = cli_stats::parse_cli_stats(&text).expect("rendered conntrack -S text must parse");
        assert_eq!(again, stats, "render/parse not stable for {text:?}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cli_stats::parse_count(text);
    }
}

/// The targets by name, for the replay test and the CI script.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("procstat", check_procstat),
    ("cli_stats", check_cli_stats),
];
