//! Parsers for captured `conntrack -S` (per-CPU statistics) and
//! `conntrack -C` (entry count) output.
//!
//! `conntrack -S` (conntrack-tools `src/conntrack.c`, `nfct_stats_cb`)
//! prints one line per CPU: `cpu=%-4u\t` then `name=%u ` for every
//! attribute the kernel sent. The names depend on the tools' version:
//!
//! - ctnetlink (`IPCTNL_MSG_CT_GET_STATS_CPU`, the normal case): `searched`,
//!   `found`, `new`, `invalid`, `ignore`, `delete`, `delete_list`, `insert`,
//!   `insert_failed`, `drop`, `early_drop`, `error`, `search_restart`,
//!   `clash_resolve` (tools 1.4.6+), `chaintoolong` (1.4.7+), and
//!   `unknown1`..`unknown4` for attributes newer than the tools (so
//!   `unknown1` is `chaintoolong` when 1.4.6 runs on a 5.15+ kernel; this
//!   parser keeps `unknownN` fields by name in [`CpuStats::other`] because
//!   their meaning depends on the tools' version). A 6.x kernel sends only
//!   `found invalid insert insert_failed drop early_drop error
//!   search_restart clash_resolve chaintoolong`.
//! - `/proc` fallback (no ctnetlink): the `/proc/net/stat/nf_conntrack`
//!   header names (`entries`, `searched`/`clashres`, ..., `icmp_error`,
//!   `chainlength`) with decimal values, and `cpu=` is the *row index*, not
//!   the CPU id (the kernel skips impossible CPUs). `entries` is then on
//!   every line: it is taken once, from the first line, never summed.
//! - `conntrack -S expect`: `expect_new`, `expect_create`, `expect_delete`.
//!
//! Every name goes through [`Counter::from_any_name`], so `clash_resolve`
//! and `clashres` are the same counter; a name this crate does not know is
//! kept by name.
//!
//! ```
//! use conntrack_core::cli::stats::{parse_cli_stats, parse_count};
//! let s = parse_cli_stats(
//!     "cpu=0   \tfound=0 invalid=12 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=1 chaintoolong=0 \n\
//!      cpu=1   \tfound=0 invalid=3 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 \n",
//! )?;
//! assert_eq!(s.cpus[1].cpu, Some(1));
//! assert_eq!(s.total().invalid(), Some(15));
//! assert_eq!(s.total().searched(), None);
//! assert_eq!(parse_count("42\n")?, 42);
//! # Ok::<(), conntrack_core::cli::stats::CliStatsError>(())
//! ```

use crate::error::Location;
use crate::stats::{Counter, CpuStats, Stats};
use crate::text::{Digits, Lines, is_name, is_sep, parse_digits, tokens};
use core::fmt::Write as _;

/// What went wrong in `conntrack -S` / `-C` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CliStatsErrorKind {
    /// No non-blank line.
    #[error("empty input")]
    Empty,
    /// A line does not start with `cpu=`.
    #[error("expected `cpu=N` at the start of the line")]
    ExpectedCpu,
    /// The same CPU id on two lines.
    #[error("CPU listed twice")]
    DuplicateCpu,
    /// A field is not `name=value`.
    #[error("expected `name=value`")]
    ExpectedField,
    /// A field name is not made of ASCII letters, digits and `_`.
    #[error("bad field name")]
    BadFieldName,
    /// A field appears twice on a line, or two names that mean the same
    /// counter (`error` and `icmp_error`).
    #[error("duplicate field")]
    DuplicateField,
    /// A value is not a decimal number.
    #[error("value is not a decimal number")]
    BadNumber,
    /// A value does not fit in a u32.
    #[error("value does not fit in 32 bits")]
    NumberTooLarge,
    /// More text after the count of `conntrack -C`.
    #[error("unexpected text after the count")]
    ExtraInput,
}

/// An error in `conntrack -S` / `-C` text: what and where (1-based line,
/// 1-based byte column). Small and `Copy`.
///
/// ```
/// use conntrack_core::cli::stats::{parse_cli_stats, CliStatsErrorKind};
/// let e = parse_cli_stats("cpu=0   \tfound=x1 \n").unwrap_err();
/// assert_eq!(e.kind, CliStatsErrorKind::BadNumber);
/// assert_eq!((e.location.line, e.location.column), (1, 16));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} at {location}")]
pub struct CliStatsError {
    /// What went wrong.
    pub kind: CliStatsErrorKind,
    /// Where: line and byte column, both 1-based.
    pub location: Location,
}

impl CliStatsError {
    fn at(kind: CliStatsErrorKind, line: usize, column: usize) -> Self {
        CliStatsError {
            kind,
            location: Location::new(line, column),
        }
    }
}

/// Parses an unsigned decimal u32 (`%u`).
fn parse_dec(tok: &[u8]) -> Result<u32, CliStatsErrorKind> {
    match parse_digits(tok, 10, u64::from(u32::MAX)) {
        Ok(v) => u32::try_from(v).map_err(|_| CliStatsErrorKind::NumberTooLarge),
        Err(Digits::Overflow) => Err(CliStatsErrorKind::NumberTooLarge),
        Err(Digits::Empty | Digits::Bad(_)) => Err(CliStatsErrorKind::BadNumber),
    }
}

/// One `cpu=N ...` line of `conntrack -S`, as yielded by [`CliStatsLines`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliStatsLine {
    /// 1-based line number in the input.
    pub line: usize,
    /// The `entries=` field, printed only when the tools fell back to
    /// `/proc` (then on every line).
    pub entries: Option<u32>,
    /// The line's counters; `cpu` is `Some` with the printed `cpu=` value.
    pub stats: CpuStats,
}

fn parse_line(no: usize, line: &[u8]) -> Result<CliStatsLine, CliStatsError> {
    use CliStatsErrorKind as K;
    let mut toks = tokens(line);
    let (off, first) = toks
        .next()
        .ok_or_else(|| CliStatsError::at(K::ExpectedCpu, no, 1))?;
    let Some(cpu) = first.strip_prefix(b"cpu=") else {
        return Err(CliStatsError::at(K::ExpectedCpu, no, off + 1));
    };
    let cpu = parse_dec(cpu).map_err(|k| CliStatsError::at(k, no, off + 5))?;
    let mut out = CliStatsLine {
        line: no,
        entries: None,
        stats: CpuStats::for_cpu(cpu),
    };
    for (off, tok) in toks {
        let col = off + 1;
        let Some(eq) = tok.iter().position(|&b| b == b'=') else {
            return Err(CliStatsError::at(K::ExpectedField, no, col));
        };
        let (name, value) = (&tok[..eq], &tok[eq + 1..]);
        if !is_name(name) {
            return Err(CliStatsError::at(K::BadFieldName, no, col));
        }
        let v = parse_dec(value).map_err(|k| CliStatsError::at(k, no, col + eq + 1))?;
        // Checked ASCII above, so this never replaces anything.
        let name = String::from_utf8_lossy(name);
        let dup = if name == "entries" {
            out.entries.replace(v).is_some()
        } else if name == "cpu" {
            true
        } else if let Some(c) = Counter::from_any_name(&name) {
            let had = out.stats.get(c).is_some();
            out.stats.set(c, v);
            had
        } else if out.stats.get_other(&name).is_some() {
            true
        } else {
            out.stats.other.push((name.into_owned(), v));
            false
        };
        if dup {
            return Err(CliStatsError::at(K::DuplicateField, no, col));
        }
    }
    Ok(out)
}

/// A lazy reader over the lines of `conntrack -S` output: a bad line is
/// one `Err` item, and the lines after it keep coming. Blank lines are
/// skipped; a trailing `\r` (CRLF) is ignored.
///
/// ```
/// use conntrack_core::cli::stats::CliStatsLines;
/// let items: Vec<_> = CliStatsLines::new(b"cpu=0 found=1\nbogus\ncpu=1 found=2\n").collect();
/// assert!(items[1].is_err());
/// assert_eq!(items[2].as_ref().unwrap().stats.found(), Some(2));
/// ```
#[derive(Debug, Clone)]
pub struct CliStatsLines<'a> {
    lines: Lines<'a>,
}

impl<'a> CliStatsLines<'a> {
    /// Reads `input` (bytes: the format is ASCII, junk is reported where it
    /// is).
    pub fn new(input: &'a [u8]) -> Self {
        CliStatsLines {
            lines: Lines::new(input),
        }
    }
}

impl Iterator for CliStatsLines<'_> {
    type Item = Result<CliStatsLine, CliStatsError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (no, line) = self.lines.next()?;
        Some(parse_line(no, line))
    }
}

/// Parses `conntrack -S` output strictly (the first bad line is an error;
/// use [`CliStatsLines`] to keep the others): one [`CpuStats`] per line
/// with `cpu: Some(n)`, `entries` from the first line that has it.
pub fn parse_cli_stats(text: &str) -> Result<Stats, CliStatsError> {
    parse_cli_stats_bytes(text.as_bytes())
}

/// [`parse_cli_stats`] for raw bytes.
pub fn parse_cli_stats_bytes(input: &[u8]) -> Result<Stats, CliStatsError> {
    let mut stats = Stats::default();
    let mut seen = std::collections::HashSet::new();
    for item in CliStatsLines::new(input) {
        let line = item?;
        let cpu = line.stats.cpu.unwrap_or_default();
        if !seen.insert(cpu) {
            return Err(CliStatsError::at(
                CliStatsErrorKind::DuplicateCpu,
                line.line,
                first_token_col(input, line.line),
            ));
        }
        if stats.entries.is_none() {
            stats.entries = line.entries;
        }
        stats.cpus.push(line.stats);
    }
    if stats.cpus.is_empty() {
        return Err(CliStatsError::at(CliStatsErrorKind::Empty, 1, 1));
    }
    Ok(stats)
}

/// The 1-based byte column of the first token of line `no`.
fn first_token_col(input: &[u8], no: usize) -> usize {
    Lines::new(input)
        .find(|&(n, _)| n == no)
        .and_then(|(_, line)| line.iter().position(|&b| !is_sep(b)))
        .unwrap_or(0)
        + 1
}

/// Parses `conntrack -C` output: one decimal count (blank lines around it
/// are fine, anything else is not).
///
/// The tools print the count with `%d`, so a count above `i32::MAX` shows
/// negative; such a value is read back as the u32 the kernel sent.
///
/// ```
/// use conntrack_core::cli::stats::parse_count;
/// assert_eq!(parse_count("1234\n"), Ok(1234));
/// assert_eq!(parse_count("-2147483648\n"), Ok(2_147_483_648));
/// assert!(parse_count("12 flows\n").is_err());
/// ```
pub fn parse_count(text: &str) -> Result<u32, CliStatsError> {
    use CliStatsErrorKind as K;
    let mut count = None;
    for (no, line) in Lines::new(text.as_bytes()) {
        for (off, tok) in tokens(line) {
            let col = off + 1;
            if count.is_some() {
                return Err(CliStatsError::at(K::ExtraInput, no, col));
            }
            let v = match tok.strip_prefix(b"-") {
                Some(mag) => {
                    // `%d` of a u32 above i32::MAX: two's complement back.
                    let m = parse_dec(mag).map_err(|k| CliStatsError::at(k, no, col + 1))?;
                    if m == 0 || m > 1 << 31 {
                        return Err(CliStatsError::at(K::BadNumber, no, col));
                    }
                    m.wrapping_neg()
                }
                None => parse_dec(tok).map_err(|k| CliStatsError::at(k, no, col))?,
            };
            count = Some(v);
        }
    }
    count.ok_or_else(|| CliStatsError::at(K::Empty, 1, 1))
}

/// Renders stats as `conntrack -S` prints them over ctnetlink:
/// `cpu=%-4u\t` then `name=value ` per reported counter, then the unknown
/// fields by name. A CPU without an id prints its index; `entries`, when
/// set, is printed first on every line (as the `/proc` fallback does).
///
/// ```
/// use conntrack_core::cli::stats::{parse_cli_stats, render_cli_stats};
/// use conntrack_core::{Counter, CpuStats, Stats};
/// let mut cpu = CpuStats::for_cpu(0);
/// cpu.set(Counter::Found, 3);
/// let stats = Stats::new(vec![cpu]);
/// let text = render_cli_stats(&stats);
/// assert_eq!(text, "cpu=0   \tfound=3 \n");
/// assert_eq!(parse_cli_stats(&text), Ok(stats));
/// ```
pub fn render_cli_stats(stats: &Stats) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    for (i, cpu) in stats.cpus.iter().enumerate() {
        let id = cpu
            .cpu
            .unwrap_or_else(|| u32::try_from(i).unwrap_or(u32::MAX));
        let _ = write!(out, "cpu={id:<4}\t");
        if let Some(e) = stats.entries {
            let _ = write!(out, "entries={e} ");
        }
        for (c, v) in cpu.iter() {
            let _ = write!(out, "{}={v} ", c.name());
        }
        for (n, v) in &cpu.other {
            let _ = write!(out, "{n}={v} ");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal() {
        assert_eq!(parse_dec(b"4294967295"), Ok(u32::MAX));
        assert_eq!(
            parse_dec(b"4294967296"),
            Err(CliStatsErrorKind::NumberTooLarge)
        );
        assert_eq!(parse_dec(b""), Err(CliStatsErrorKind::BadNumber));
        assert_eq!(parse_dec(b"+1"), Err(CliStatsErrorKind::BadNumber));
    }

    #[test]
    fn first_token_column() {
        assert_eq!(first_token_col(b"a\n  b\n", 2), 3);
    }
}
