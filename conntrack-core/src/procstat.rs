//! Parser and renderer for `/proc/net/stat/nf_conntrack`.
//!
//! The file is one header line, then one row per *possible* CPU (rows of
//! impossible CPUs are skipped, so row N is not necessarily CPU N; see
//! `ct_cpu_seq_next` in `net/netfilter/nf_conntrack_standalone.c`). Every
//! value is `%08x`, a u32 that wraps.
//!
//! Columns are mapped **by header name**, never by position: the second
//! column is `searched` up to 5.9 and `clashres` (clash_resolve) since 5.10
//! (bc92470413f3), and `delete_list` became `chainlength` (chaintoolong) in
//! 5.15 (d7e7747ac5c2). A column this crate does not know is kept by name in
//! [`CpuStats::other`]. The first column, `entries`, is the namespace's entry
//! count repeated on every row: it is taken once (from the first row) and
//! never summed.
//!
//! Headers printed by the kernels (`ct_cpu_seq_show`):
//!
//! | kernel | columns |
//! |---|---|
//! | <= 3.9 | 16: `entries searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error expect_new expect_create expect_delete` (rows end with a space) |
//! | 3.10 .. 5.9 | 17: the same + `search_restart` |
//! | 5.10 .. 5.14 | `searched` renamed `clashres` |
//! | 5.15 .. | `delete_list` renamed `chainlength` |
//!
//! ```
//! use conntrack_core::procstat;
//! let text = "\
//! entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
//! 00000002  00000001 00000000 00000000 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000
//! 00000002  00000000 00000000 00000000 00000004 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000
//! ";
//! let stats = procstat::parse(text)?;
//! assert_eq!(stats.entries, Some(2)); // taken once, not 4
//! assert_eq!(stats.cpus.len(), 2);
//! assert_eq!(stats.total().invalid(), Some(7));
//! assert_eq!(stats.total().clash_resolve(), Some(1));
//! assert_eq!(stats.total().searched(), None); // not printed on 5.10+
//! # Ok::<(), procstat::ProcStatError>(())
//! ```

use crate::error::Location;
use crate::stats::{Counter, CpuStats, Stats};
use crate::text::{Digits, Lines, is_name, parse_digits, tokens};
use core::fmt::Write as _;

/// The name of the first column: the namespace's entry count.
pub const ENTRIES: &str = "entries";

/// What went wrong in a `/proc/net/stat/nf_conntrack` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ProcStatErrorKind {
    /// The input holds no header (empty or only blank lines).
    #[error("empty input, expected the header line")]
    Empty,
    /// The first line is not this file's header: its first column is not
    /// `entries`.
    #[error("not a nf_conntrack stat header (first column is not `entries`)")]
    NotAStatHeader,
    /// A header column name is not made of ASCII letters, digits and `_`
    /// (or starts with a digit).
    #[error("bad column name in header")]
    BadColumnName,
    /// A column name appears twice in the header, or two names that mean the
    /// same counter (`error` and `icmp_error`).
    #[error("duplicate column in header")]
    DuplicateColumn,
    /// A header but no row (a real kernel always prints one row per
    /// possible CPU).
    #[error("header without any CPU row")]
    NoRows,
    /// A row has fewer values than the header has columns (truncated); the
    /// location is just past the row's last value.
    #[error("row has {found} values, header has {expected} columns")]
    MissingValues {
        /// Columns in the header.
        expected: usize,
        /// Values in the row.
        found: usize,
    },
    /// A row has more values than the header has columns.
    #[error("row has more values than the header's {expected} columns")]
    ExtraValues {
        /// Columns in the header.
        expected: usize,
    },
    /// A value is not a hexadecimal number.
    #[error("value is not hexadecimal")]
    BadHex,
    /// A value does not fit in a u32.
    #[error("value does not fit in 32 bits")]
    ValueTooLarge,
}

/// An error in `/proc/net/stat/nf_conntrack` text: what and where (1-based
/// line, 1-based byte column). Small and `Copy`; the caller adds the path.
///
/// ```
/// use conntrack_core::procstat::{self, ProcStatErrorKind};
/// let err = procstat::parse("entries  found\n00000001  0000zz00\n").unwrap_err();
/// assert_eq!(err.kind, ProcStatErrorKind::BadHex);
/// assert_eq!((err.location.line, err.location.column), (2, 11));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} at {location}")]
pub struct ProcStatError {
    /// What went wrong.
    pub kind: ProcStatErrorKind,
    /// Where: line and byte column, both 1-based.
    pub location: Location,
}

impl ProcStatError {
    fn at(kind: ProcStatErrorKind, line: usize, column: usize) -> Self {
        ProcStatError {
            kind,
            location: Location::new(line, column),
        }
    }
}

/// What a header column means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    Entries,
    Counter(Counter),
    Other,
}

/// A parsed header: column names as printed, and what each means.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    names: Vec<String>,
    meanings: Vec<Meaning>,
}

impl Header {
    fn parse(line_no: usize, line: &[u8]) -> Result<Header, ProcStatError> {
        let mut names = Vec::new();
        let mut meanings: Vec<Meaning> = Vec::new();
        for (i, (off, tok)) in tokens(line).enumerate() {
            let col = off + 1;
            if i == 0 && tok != ENTRIES.as_bytes() {
                return Err(ProcStatError::at(
                    ProcStatErrorKind::NotAStatHeader,
                    line_no,
                    col,
                ));
            }
            if !is_name(tok) {
                return Err(ProcStatError::at(
                    ProcStatErrorKind::BadColumnName,
                    line_no,
                    col,
                ));
            }
            // Checked ASCII above, so this never replaces anything.
            let name = String::from_utf8_lossy(tok).into_owned();
            let meaning = if i == 0 {
                Meaning::Entries
            } else {
                Counter::from_any_name(&name).map_or(Meaning::Other, Meaning::Counter)
            };
            let dup =
                names.contains(&name) || (meaning != Meaning::Other && meanings.contains(&meaning));
            if dup {
                return Err(ProcStatError::at(
                    ProcStatErrorKind::DuplicateColumn,
                    line_no,
                    col,
                ));
            }
            names.push(name);
            meanings.push(meaning);
        }
        Ok(Header { names, meanings })
    }

    fn parse_row(&self, line_no: usize, line: &[u8]) -> Result<ProcStatRow, ProcStatError> {
        let expected = self.names.len();
        let mut row = ProcStatRow {
            line: line_no,
            entries: 0,
            stats: CpuStats::default(),
        };
        let mut found = 0;
        let mut end = 0;
        for (i, (off, tok)) in tokens(line).enumerate() {
            let col = off + 1;
            if i >= expected {
                return Err(ProcStatError::at(
                    ProcStatErrorKind::ExtraValues { expected },
                    line_no,
                    col,
                ));
            }
            let v = parse_hex(tok).map_err(|k| ProcStatError::at(k, line_no, col))?;
            match self.meanings[i] {
                Meaning::Entries => row.entries = v,
                Meaning::Counter(c) => row.stats.set(c, v),
                Meaning::Other => row.stats.other.push((self.names[i].clone(), v)),
            }
            found = i + 1;
            end = off + tok.len();
        }
        if found < expected {
            return Err(ProcStatError::at(
                ProcStatErrorKind::MissingValues { expected, found },
                line_no,
                end + 1,
            ));
        }
        Ok(row)
    }
}

/// Parses a hex u32 (the kernel prints `%08x`; leading zeros beyond eight
/// digits are accepted, a value above `u32::MAX` is not).
fn parse_hex(tok: &[u8]) -> Result<u32, ProcStatErrorKind> {
    // A bad digit after an overflow still reports the overflow first; both
    // point at the token's first byte.
    match parse_digits(tok, 16, u64::from(u32::MAX)) {
        Ok(v) => u32::try_from(v).map_err(|_| ProcStatErrorKind::ValueTooLarge),
        Err(Digits::Overflow) => Err(ProcStatErrorKind::ValueTooLarge),
        Err(Digits::Empty | Digits::Bad(_)) => Err(ProcStatErrorKind::BadHex),
    }
}

/// One CPU row, as yielded by [`Rows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStatRow {
    /// 1-based line number in the input.
    pub line: usize,
    /// This row's `entries` value (the namespace count when the row was
    /// printed; the same on every row unless it changed during the read).
    pub entries: u32,
    /// The row's counters (`cpu` is `None`: rows do not name their CPU).
    pub stats: CpuStats,
}

/// A lazy reader over the rows of `/proc/net/stat/nf_conntrack`: a bad row
/// is one `Err` item, and the rows after it keep coming.
///
/// ```
/// use conntrack_core::procstat;
/// let text = b"entries  found\n00000001  00000002\n00000001  zz\n00000001  00000005\n";
/// let rows = procstat::rows(text)?;
/// assert_eq!(rows.columns(), ["entries", "found"]);
/// let items: Vec<_> = rows.collect();
/// assert_eq!(items.len(), 3);
/// assert!(items[1].is_err());
/// assert_eq!(items[2].as_ref().unwrap().stats.found(), Some(5));
/// # Ok::<(), procstat::ProcStatError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rows<'a> {
    header: Header,
    header_line: usize,
    lines: Lines<'a>,
}

impl Rows<'_> {
    /// The header's column names, as printed.
    pub fn columns(&self) -> &[String] {
        &self.header.names
    }
}

impl Iterator for Rows<'_> {
    type Item = Result<ProcStatRow, ProcStatError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (no, line) = self.lines.next()?;
        Some(self.header.parse_row(no, line))
    }
}

/// Reads the header and returns a lazy iterator over the rows.
///
/// Errors only for a bad or missing header; row errors come from the
/// iterator. Blank lines are skipped; a trailing `\r` (CRLF) is ignored.
pub fn rows(input: &[u8]) -> Result<Rows<'_>, ProcStatError> {
    let mut lines = Lines::new(input);
    let Some((no, line)) = lines.next() else {
        return Err(ProcStatError::at(ProcStatErrorKind::Empty, 1, 1));
    };
    let header = Header::parse(no, line)?;
    Ok(Rows {
        header,
        header_line: no,
        lines,
    })
}

/// A parsed file: its header (column names as printed) and its stats.
///
/// Keep the columns to [`render`] the file again in the kernel's format.
///
/// ```
/// use conntrack_core::procstat;
/// let text = "entries  found\n00000001  00000002\n";
/// let table = procstat::parse_table(text)?;
/// assert_eq!(table.columns, ["entries", "found"]);
/// assert_eq!(procstat::render(&table.columns, &table.stats), text);
/// # Ok::<(), procstat::ProcStatError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStatTable {
    /// The header's column names, in order, as printed.
    pub columns: Vec<String>,
    /// One [`CpuStats`] per row (`cpu: None`); `entries` from the first row.
    pub stats: Stats,
}

impl ProcStatTable {
    /// Whether the header has a column of that name.
    pub fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c == name)
    }

    /// The header's column names that this crate does not know (kept by
    /// name in [`CpuStats::other`]).
    pub fn unknown_columns(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .skip(1)
            .map(String::as_str)
            .filter(|c| Counter::from_any_name(c).is_none())
    }
}

/// Parses the whole file strictly: the first bad row is an error (use
/// [`rows`] to keep the good rows around a bad one).
pub fn parse_table_bytes(input: &[u8]) -> Result<ProcStatTable, ProcStatError> {
    let mut rows = rows(input)?;
    let header_line = rows.header_line;
    let mut stats = Stats::default();
    for row in rows.by_ref() {
        let row = row?;
        stats.entries.get_or_insert(row.entries);
        stats.cpus.push(row.stats);
    }
    if stats.cpus.is_empty() {
        return Err(ProcStatError::at(
            ProcStatErrorKind::NoRows,
            header_line + 1,
            1,
        ));
    }
    Ok(ProcStatTable {
        columns: rows.header.names,
        stats,
    })
}

/// [`parse_table_bytes`] for text.
pub fn parse_table(text: &str) -> Result<ProcStatTable, ProcStatError> {
    parse_table_bytes(text.as_bytes())
}

/// Parses `/proc/net/stat/nf_conntrack` text into [`Stats`]: one
/// [`CpuStats`] per row with `cpu: None`, `entries` from the first row.
pub fn parse(text: &str) -> Result<Stats, ProcStatError> {
    parse_bytes(text.as_bytes())
}

/// [`parse`] for raw bytes (no UTF-8 needed: the format is ASCII, and a
/// non-ASCII byte is reported where it is, as a bad value or column name).
///
/// ```
/// use conntrack_core::procstat::{self, ProcStatErrorKind};
/// let err = procstat::parse_bytes(b"entries  found\n00000001  \xff\n").unwrap_err();
/// assert_eq!(err.kind, ProcStatErrorKind::BadHex);
/// ```
pub fn parse_bytes(input: &[u8]) -> Result<Stats, ProcStatError> {
    parse_table_bytes(input).map(|t| t.stats)
}

/// Renders stats in the kernel's format for the given header: `%08x`
/// values, two spaces after the `entries` and `icmp_error` columns, and a
/// space ending each row when the header is the pre-3.10 layout (last
/// column `expect_delete`), as the kernel printed it.
///
/// A value the stats lack prints as 0; `entries` prints [`Stats::entries`]
/// on every row.
///
/// ```
/// use conntrack_core::{procstat, Counter, CpuStats, Stats};
/// let mut cpu = CpuStats::default();
/// cpu.set(Counter::Drop, 0xff);
/// let stats = Stats::new(vec![cpu]).with_entries(3);
/// assert_eq!(
///     procstat::render(&["entries", "drop"], &stats),
///     "entries  drop\n00000003  000000ff\n",
/// );
/// ```
pub fn render<S: AsRef<str>>(columns: &[S], stats: &Stats) -> String {
    let names: Vec<&str> = columns.iter().map(AsRef::as_ref).collect();
    let legacy = names.last() == Some(&"expect_delete");
    let sep = |i: usize| -> &'static str {
        if i + 1 == names.len() {
            ""
        } else if i == 0 || names[i] == "icmp_error" {
            "  "
        } else {
            " "
        }
    };
    let mut out = String::with_capacity((names.len() * 10) * (stats.cpus.len() + 1));
    for (i, n) in names.iter().enumerate() {
        out.push_str(n);
        out.push_str(sep(i));
    }
    out.push('\n');
    for cpu in &stats.cpus {
        for (i, n) in names.iter().enumerate() {
            let v = if i == 0 && *n == ENTRIES {
                stats.entries.unwrap_or(0)
            } else {
                match Counter::from_any_name(n) {
                    Some(c) => cpu.get(c),
                    None => cpu.get_other(n),
                }
                .unwrap_or(0)
            };
            // Writing to a String cannot fail.
            let _ = write!(out, "{v:08x}");
            out.push_str(sep(i));
        }
        if legacy {
            out.push(' ');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex() {
        assert_eq!(parse_hex(b"ffffffff"), Ok(u32::MAX));
        assert_eq!(parse_hex(b"000000000001"), Ok(1));
        assert_eq!(
            parse_hex(b"100000000"),
            Err(ProcStatErrorKind::ValueTooLarge)
        );
        assert_eq!(parse_hex(b"0x1"), Err(ProcStatErrorKind::BadHex));
    }
}
