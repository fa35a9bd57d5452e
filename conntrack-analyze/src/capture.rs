//! Capture directories: conntrack data saved on one host and analysed on
//! another, read into an [`Observation`] the same way for every caller.
//!
//! # Layout
//!
//! Every file is optional; what is missing or unreadable becomes a
//! [`CaptureNote`], never a failure of the whole capture.
//!
//! | file | what |
//! |---|---|
//! | `stats.txt` | statistics samples: lines `@ SECONDS` each followed by the text of `/proc/net/stat/nf_conntrack` or `conntrack -S` (see [`StatsSeries::parse_captures`]); two or more give rates |
//! | `conntrack-S.txt` | one `conntrack -S` sample (used when there is no `stats.txt`) |
//! | `conntrack-C.txt` | `conntrack -C` output |
//! | `conntrack-L.txt` | `conntrack -L` output, any `-o` form; read line by line |
//! | `iptables-save.txt`, `nft-ruleset.txt` | the ruleset, for the NAT rules and their port-selection flags |
//! | `meta.txt` | `key=value` lines: `hostname`, `description`, `captured_at` |
//! | `proc/...`, `sys/...`, `etc/...` | the host's files at their paths, read with [`HostFs`] |
//!
//! # Safety
//!
//! A capture comes from elsewhere and may be hostile. Only regular files
//! are read (a FIFO, a device, a socket, or a symlink to one, is a note,
//! never a blocked or unbounded read), and only inside the capture: a
//! symbolic link that leads out of the directory (to `/proc/kmsg`, whose
//! read blocks, or to a file of the analysing host) is a note too, and a
//! link loop is an unreadable file. Sizes are capped; a listing is
//! streamed, so its memory does not grow with its length; text that
//! reaches a terminal (hostnames, descriptions, file names) has its
//! control characters escaped. One bad file never stops the rest from
//! being read: a `stats.txt` with a bad sample keeps its good ones. The
//! work of comparing statistics samples is bounded too (see
//! [`MAX_RATE_ROW_PAIRS`]). A capture from which nothing could be read
//! says so ([`Capture::is_empty`] and a note): it judges nothing.
//!
//! ```
//! use conntrack_analyze::capture::{self, LoadOptions};
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("stats.txt"),
//!     "@ 0\nentries  insert_failed drop\n00000010  00000000 00000000\n\
//!      @ 10\nentries  insert_failed drop\n00000010  00000064 00000064\n").unwrap();
//! std::fs::write(dir.path().join("meta.txt"), "hostname=r5\n").unwrap();
//! let c = capture::load(dir.path(), &LoadOptions::default()).unwrap();
//! assert_eq!(c.meta.hostname.as_deref(), Some("r5"));
//! let rates = c.observation.rates.as_ref().unwrap();
//! assert_eq!(rates.per_sec(conntrack_core::Counter::Drop), 10.0);
//! assert!(c.observation.hotspots.is_none()); // no conntrack-L.txt: noted
//! assert!(c.notes.iter().any(|n| n.file == "conntrack-L.txt"));
//! ```

use crate::buckets::{ChainSimulator, SAMPLED_BUCKETS};
use crate::hotspots::{HotspotConfig, Hotspots};
use crate::observation::Observation;
use crate::rates::StatsSeries;
use conntrack_core::Stats;
use conntrack_core::cli::{list, stats as cli_stats};
use conntrack_core::host::{HostError, HostFs};
use conntrack_core::nat_rules::NatRules;
use serde::Serialize;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Small files (statistics, rules, meta) are read up to this size.
pub const MAX_SMALL_FILE: u64 = 64 << 20;
/// A listing is read up to this many bytes (about 40M flows).
pub const MAX_LISTING_BYTES: u64 = 8 << 30;
/// A listing line longer than this is malformed (a real line is < 1 KiB).
pub const MAX_LINE_BYTES: usize = 16 << 10;
/// A listing is read no further once this many lines were malformed while
/// fewer than one line in ten parsed: it is not a `conntrack -L` listing
/// (random bytes, millions of junk lines).
pub const MAX_MALFORMED_LINES: u64 = 10_000;
/// A listing is read no further after a line longer than this (a sparse
/// file of zeros has no newline at all): it is not a `conntrack -L`
/// listing. Shorter overlong lines are skipped as one malformed line.
pub const MAX_SKIPPED_LINE_BYTES: u64 = 16 << 20;
/// The seed of the bucket simulation: fixed, so reports are reproducible.
pub const SIMULATION_SEED: u64 = 0x636f_6e6e_7472_6163;
/// The most pairs of CPU rows compared to compute rates over `stats.txt`
/// (the sum over intervals of one sample's rows times the next one's):
/// rates match every row of a sample with every row of the next, so a
/// series of samples with tens of thousands of rows each would take hours.
/// Two samples of 8192 CPUs (the largest `NR_CPUS` of x86_64) fit; above
/// the budget the oldest samples are left out, with a note.
pub const MAX_RATE_ROW_PAIRS: u64 = 1 << 27;

/// Why a capture could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The directory does not exist.
    #[error("capture directory {0} does not exist")]
    NotFound(PathBuf),
    /// The path is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// The directory cannot be listed.
    #[error("{path}: {kind}")]
    Unreadable {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        kind: std::io::ErrorKind,
    },
}

/// What happened to one file of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NoteKind {
    /// The file is not in the capture.
    Missing,
    /// Not a regular file (FIFO, device, socket, directory).
    NotARegularFile,
    /// Larger than the limit.
    TooLarge,
    /// Could not be read.
    Unreadable,
    /// A symbolic link that leads out of the capture directory: not
    /// followed.
    OutsideCapture,
    /// Read, but its content did not parse (entirely, or in part).
    Malformed,
    /// Read and used, with a remark.
    Remark,
}

/// A remark about one file of a capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CaptureNote {
    /// The file, relative to the capture directory (control characters
    /// escaped).
    pub file: String,
    /// What happened.
    pub kind: NoteKind,
    /// Details for people (control characters escaped).
    pub detail: String,
}

impl fmt::Display for CaptureNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.detail)
    }
}

/// `meta.txt`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct Meta {
    /// The host's name.
    pub hostname: Option<String>,
    /// What the capture shows.
    pub description: Option<String>,
    /// When it was taken (as written).
    pub captured_at: Option<String>,
}

/// Options of [`load`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    /// How hotspots are counted and how many rows are kept.
    pub hotspots: HotspotConfig,
    /// Simulate bucket chains over the listed tuples.
    pub simulate_buckets: bool,
}

impl LoadOptions {
    /// With this hotspot configuration.
    pub fn with_hotspots(mut self, hotspots: HotspotConfig) -> Self {
        self.hotspots = hotspots;
        self
    }

    /// Whether to simulate bucket chains over the listed tuples.
    pub fn with_simulate_buckets(mut self, simulate: bool) -> Self {
        self.simulate_buckets = simulate;
        self
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            // Bounded: a listing of millions of flows is counted in a few
            // MiB, exactly while a key kind has few distinct keys.
            hotspots: HotspotConfig::bounded(),
            simulate_buckets: true,
        }
    }
}

/// A capture, read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Capture {
    /// The directory.
    pub dir: PathBuf,
    /// `meta.txt`.
    pub meta: Meta,
    /// What the files show.
    pub observation: Observation,
    /// Where the statistics came from.
    pub stats_source: Option<String>,
    /// Listing lines that did not parse (skipped).
    pub malformed_flows: u64,
    /// What was missing, unreadable or odd.
    pub notes: Vec<CaptureNote>,
}

impl Capture {
    /// Whether anything at all was read: host facts, statistics or flows.
    pub fn is_empty(&self) -> bool {
        let s = &self.observation.snapshot;
        s.count.is_none()
            && s.max.is_none()
            && s.stats.is_none()
            && self.observation.rates.is_none()
            && self.observation.hotspots.is_none()
    }
}

/// Escapes control characters (ESC, OSC, BEL, newlines...) so that text
/// from a capture cannot drive a terminal.
///
/// ```
/// use conntrack_analyze::capture::escape_controls;
/// assert_eq!(escape_controls("web\u{1b}]0;pwned\u{7}"), "web\\u{1b}]0;pwned\\u{7}");
/// assert_eq!(escape_controls("plain"), "plain");
/// ```
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escape_controls`] line by line: newlines are kept, every other
/// control character is escaped (for multi-line text bound for a
/// terminal).
///
/// ```
/// use conntrack_analyze::capture::escape_controls_keep_lines;
/// assert_eq!(escape_controls_keep_lines("a\u{1b}\nb\n"), "a\\u{1b}\nb\n");
/// ```
pub fn escape_controls_keep_lines(s: &str) -> String {
    s.split('\n')
        .map(escape_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses `meta.txt`: `key=value` lines, `#` comments; unknown keys are
/// ignored, values have control characters escaped and are cut to 256
/// characters.
pub fn parse_meta(text: &str) -> Meta {
    let mut m = Meta::default();
    for l in text.lines().map(str::trim) {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        // Cut before escaping too, so a huge value is not copied whole.
        let v: String = v.trim().chars().take(256).collect();
        let v: String = escape_controls(&v).chars().take(256).collect();
        match k.trim() {
            "hostname" => m.hostname = Some(v),
            "description" => m.description = Some(v),
            "captured_at" => m.captured_at = Some(v),
            _ => {}
        }
    }
    m
}

/// A note about one of the capture's files that could not be read.
fn io_note(dir: &Path, e: &HostError) -> CaptureNote {
    let file = escape_controls(
        &e.path()
            .strip_prefix(dir)
            .unwrap_or(e.path())
            .display()
            .to_string(),
    );
    let (kind, detail) = match e {
        HostError::NotAFile { .. } => (
            NoteKind::NotARegularFile,
            "not a regular file (FIFO, device, socket or directory): not read".to_string(),
        ),
        HostError::OutsideRoot { .. } => (
            NoteKind::OutsideCapture,
            "a symbolic link that leads out of the capture: not followed".to_string(),
        ),
        HostError::TooLarge { limit, .. } => (
            NoteKind::TooLarge,
            format!("over the {limit}-byte limit: not read"),
        ),
        HostError::Malformed { .. } => (NoteKind::Malformed, escape_controls(&e.to_string())),
        HostError::PermissionDenied { .. } => (
            NoteKind::Unreadable,
            "permission denied: not read".to_string(),
        ),
        HostError::Io { kind, .. } => (NoteKind::Unreadable, format!("{kind}: not read")),
        _ => (NoteKind::Unreadable, escape_controls(&e.to_string())),
    };
    CaptureNote { file, kind, detail }
}

/// Opens a regular file of the capture ([`HostFs::open_regular`] of a
/// confined reader), or says why not (`Ok(None)`: not there).
fn open_regular(fs: &HostFs, name: &str) -> Result<Option<(File, u64)>, CaptureNote> {
    match fs.open_regular(name) {
        Ok((_, file, len)) => Ok(Some((file, len))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(io_note(fs.root(), &e)),
    }
}

/// Reads a small file whole, as text (lossy UTF-8).
fn read_small(fs: &HostFs, name: &str, notes: &mut Vec<CaptureNote>) -> Option<String> {
    let (file, len) = match open_regular(fs, name) {
        Ok(Some(f)) => f,
        Ok(None) => return None,
        Err(n) => {
            notes.push(n);
            return None;
        }
    };
    if len > MAX_SMALL_FILE {
        notes.push(CaptureNote {
            file: escape_controls(name),
            kind: NoteKind::TooLarge,
            detail: format!("{len} bytes, over the {MAX_SMALL_FILE}-byte limit: not read"),
        });
        return None;
    }
    let mut buf = Vec::new();
    // The size can change under us: read at most the limit plus one byte.
    if let Err(e) = file.take(MAX_SMALL_FILE + 1).read_to_end(&mut buf) {
        notes.push(CaptureNote {
            file: escape_controls(name),
            kind: NoteKind::Unreadable,
            detail: e.kind().to_string(),
        });
        return None;
    }
    if buf.len() as u64 > MAX_SMALL_FILE {
        notes.push(CaptureNote {
            file: escape_controls(name),
            kind: NoteKind::TooLarge,
            detail: format!("grew over the {MAX_SMALL_FILE}-byte limit while read: not used"),
        });
        return None;
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// `stats.txt` read as a series. When the whole file does not parse, its
/// samples are read one by one and the good ones kept (in order, each
/// after the last kept), so one bad sample (a torn write, a repeated
/// second) does not lose the rest. Returns the series and the number of
/// samples (`@` lines) in the file.
fn parse_stats(text: &str, notes: &mut Vec<CaptureNote>) -> (StatsSeries, usize) {
    let blocks = text.lines().filter(|l| l.starts_with('@')).count();
    let err = match StatsSeries::parse_captures(text) {
        Ok(s) => return (s, blocks),
        Err(e) => e,
    };
    let mut series = StatsSeries::new();
    let mut block = String::new();
    let flush = |block: &mut String, series: &mut StatsSeries| {
        if let Ok(one) = StatsSeries::parse_captures(block)
            && let Some(s) = one.samples().first()
        {
            let _ = series.push(s.at, s.stats.clone());
        }
        block.clear();
    };
    for line in text.lines() {
        if line.starts_with('@') {
            flush(&mut block, &mut series);
        }
        block.push_str(line);
        block.push('\n');
    }
    flush(&mut block, &mut series);
    notes.push(malformed(
        "stats.txt",
        &format!(
            "{err}; {} of {blocks} samples kept",
            series.len().min(blocks)
        ),
    ));
    (series, blocks)
}

/// Leaves out the oldest samples while comparing the rest would exceed
/// [`MAX_RATE_ROW_PAIRS`]; returns how many were left out.
fn bound_rate_work(series: &mut StatsSeries) -> usize {
    let rows: Vec<u64> = series
        .samples()
        .iter()
        .map(|s| s.stats.cpus.len() as u64)
        .collect();
    let mut work = 0u64;
    let mut keep = usize::from(!rows.is_empty());
    for w in rows.windows(2).rev() {
        work = work.saturating_add(w[0].saturating_mul(w[1]));
        if work > MAX_RATE_ROW_PAIRS {
            break;
        }
        keep += 1;
    }
    let dropped = rows.len() - keep;
    if dropped > 0 {
        series.keep_last(keep);
    }
    dropped
}

/// Reads a capture directory.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Capture, CaptureError> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CaptureError::NotFound(dir.to_path_buf()));
        }
        Err(e) => {
            return Err(CaptureError::Unreadable {
                path: dir.to_path_buf(),
                kind: e.kind(),
            });
        }
        Ok(m) if !m.is_dir() => return Err(CaptureError::NotADirectory(dir.to_path_buf())),
        Ok(_) => {}
    }
    if let Err(e) = std::fs::read_dir(dir) {
        return Err(CaptureError::Unreadable {
            path: dir.to_path_buf(),
            kind: e.kind(),
        });
    }
    let mut notes = Vec::new();
    let fs = HostFs::new(dir).confined();
    let meta = read_small(&fs, "meta.txt", &mut notes)
        .map(|t| parse_meta(&t))
        .unwrap_or_default();

    let report = fs.read_snapshot();
    let mut snapshot = report.snapshot;
    let missing: Vec<String> = report
        .problems
        .iter()
        .filter(|e| e.is_not_found())
        .map(|e| {
            escape_controls(
                &e.path()
                    .strip_prefix(dir)
                    .unwrap_or(e.path())
                    .display()
                    .to_string(),
            )
        })
        .collect();
    if !missing.is_empty() {
        notes.push(CaptureNote {
            file: "proc, sys".into(),
            kind: NoteKind::Missing,
            detail: format!("host files not in the capture: {}", missing.join(", ")),
        });
    }
    for e in report.problems.iter().filter(|e| !e.is_not_found()) {
        notes.push(io_note(dir, e));
    }
    let mut config = fs.read_config(&snapshot);
    if let Some(scan) = &config.sysctl_d {
        for path in &scan.unreadable {
            notes.push(CaptureNote {
                file: escape_controls(path.trim_start_matches('/')),
                kind: NoteKind::Unreadable,
                detail: "not a regular file inside the capture, or unreadable: not used".into(),
            });
        }
    }

    if let Some(text) = read_small(&fs, "conntrack-C.txt", &mut notes) {
        match cli_stats::parse_count(&text) {
            Ok(c) => match snapshot.count {
                Some(n) if n != c => notes.push(CaptureNote {
                    file: "conntrack-C.txt".into(),
                    kind: NoteKind::Remark,
                    detail: format!("says {c} entries, nf_conntrack_count {n}: using {n}"),
                }),
                Some(_) => {}
                None => snapshot.count = Some(c),
            },
            Err(e) => notes.push(malformed("conntrack-C.txt", &e.to_string())),
        }
    }

    // Statistics: the series, else one conntrack -S, else the host file.
    let mut series = StatsSeries::new();
    let mut stats_source = None;
    if let Some(text) = read_small(&fs, "stats.txt", &mut notes) {
        let (mut s, blocks) = parse_stats(&text, &mut notes);
        let dropped = bound_rate_work(&mut s);
        if dropped > 0 {
            notes.push(CaptureNote {
                file: "stats.txt".into(),
                kind: NoteKind::Remark,
                detail: if s.len() >= 2 {
                    format!(
                        "too many CPU rows to compare every sample: the oldest {dropped} \
                         samples left out, rates over the last {}",
                        s.len()
                    )
                } else {
                    format!(
                        "too many CPU rows to compare even the last two samples: {dropped} \
                         samples left out, no rates"
                    )
                },
            });
        }
        if !s.is_empty() {
            stats_source = Some(if s.len() == blocks {
                format!("stats.txt ({} samples)", s.len())
            } else {
                format!("stats.txt ({} of {blocks} samples)", s.len())
            });
            series = s;
        }
    }
    if series.is_empty()
        && let Some(text) = read_small(&fs, "conntrack-S.txt", &mut notes)
    {
        match cli_stats::parse_cli_stats(&text) {
            Ok(s) => {
                stats_source = Some("conntrack-S.txt (one sample)".into());
                let _ = series.push(Duration::ZERO, s);
            }
            Err(e) => notes.push(malformed("conntrack-S.txt", &e.to_string())),
        }
    }
    if series.is_empty()
        && let Some(s) = snapshot.stats.clone()
    {
        stats_source = Some("proc/net/stat/nf_conntrack (one sample)".into());
        let _ = series.push(Duration::ZERO, s);
    }
    match series.len() {
        0 => notes.push(CaptureNote {
            file: "stats.txt".into(),
            kind: NoteKind::Missing,
            detail: "no statistics (stats.txt, conntrack-S.txt, proc/net/stat/nf_conntrack)".into(),
        }),
        1 => notes.push(CaptureNote {
            file: stats_source.clone().unwrap_or_default(),
            kind: NoteKind::Remark,
            detail: "one statistics sample: counters since boot only, no rates; stats.txt \
                     with two or more `@ SECONDS` samples gives rates"
                .into(),
        }),
        _ => {}
    }
    if let Some(last) = series.samples().last() {
        let last: &Stats = &last.stats;
        if snapshot.count.is_none() {
            snapshot.count = last.entries;
        }
        if snapshot.stats.is_none() {
            snapshot.stats = Some(last.clone());
        }
    }
    let rates = (series.len() >= 2).then(|| series.rates());
    if let Some(r) = &rates {
        rate_notes(r, &mut notes);
    }

    config.nat_rules = read_small(&fs, "iptables-save.txt", &mut notes)
        .map(|t| NatRules::parse_iptables_save(&t))
        .or_else(|| {
            read_small(&fs, "nft-ruleset.txt", &mut notes).map(|t| NatRules::parse_nft(&t))
        });

    let mut observation = Observation {
        snapshot,
        config,
        rates,
        ..Default::default()
    };
    let mut malformed_flows = 0;
    match open_regular(&fs, "conntrack-L.txt") {
        Ok(Some((file, _))) => {
            let pass = flow_pass(file, observation.snapshot.buckets, opts);
            malformed_flows = pass.malformed;
            if let Some(e) = pass.first_error {
                notes.push(malformed(
                    "conntrack-L.txt",
                    &format!("{} lines skipped; the first: {e}", pass.malformed),
                ));
            }
            if let Some(why) = &pass.abandoned {
                notes.push(CaptureNote {
                    file: "conntrack-L.txt".into(),
                    kind: NoteKind::Malformed,
                    detail: format!("read no further after {why}: not a conntrack -L listing"),
                });
            }
            if pass.truncated {
                notes.push(CaptureNote {
                    file: "conntrack-L.txt".into(),
                    kind: NoteKind::TooLarge,
                    detail: format!("read up to the {MAX_LISTING_BYTES}-byte limit"),
                });
            }
            if let Some(count) = observation.snapshot.count {
                let listed = pass.hotspots.flows + pass.malformed;
                if listed.abs_diff(u64::from(count)) * 100 > u64::from(count).max(1) {
                    notes.push(CaptureNote {
                        file: "conntrack-L.txt".into(),
                        kind: NoteKind::Remark,
                        detail: format!(
                            "lists {listed} flows but the count is {count}: a sample of the table \
                             or taken at another moment; shares are of the listed flows and \
                             counts are scaled to the table"
                        ),
                    });
                }
            }
            observation.hotspots = Some(pass.hotspots);
            observation.chains = pass.chains;
        }
        Ok(None) => notes.push(CaptureNote {
            file: "conntrack-L.txt".into(),
            kind: NoteKind::Missing,
            detail: "no listing: no hotspots, states or bucket simulation".into(),
        }),
        Err(n) => notes.push(n),
    }
    let mut capture = Capture {
        dir: dir.to_path_buf(),
        meta,
        observation,
        stats_source,
        malformed_flows,
        notes,
    };
    if capture.is_empty() {
        capture.notes.push(CaptureNote {
            file: ".".into(),
            kind: NoteKind::Missing,
            detail: "nothing could be read: no table size, statistics or flows; nothing can \
                     be judged from this capture"
                .into(),
        });
    }
    Ok(capture)
}

/// Notes on what the rates over the samples could not use: CPU rows that
/// changed between samples, and a series with no usable interval.
fn rate_notes(r: &crate::rates::Rates, notes: &mut Vec<CaptureNote>) {
    // Two samples or more only come from stats.txt.
    let file = "stats.txt".to_string();
    let ids = |v: &[crate::rates::CpuId]| {
        let shown: Vec<String> = v.iter().take(8).map(|c| c.to_string()).collect();
        let more = if v.len() > 8 { ", ..." } else { "" };
        format!("{}{more}", shown.join(", "))
    };
    for c in r.cpu_changes.iter().take(4) {
        let mut what = Vec::new();
        if !c.appeared.is_empty() {
            what.push(format!(
                "{} appeared ({})",
                c.appeared.len(),
                ids(&c.appeared)
            ));
        }
        if !c.disappeared.is_empty() {
            what.push(format!(
                "{} disappeared ({})",
                c.disappeared.len(),
                ids(&c.disappeared)
            ));
        }
        let effect = if c.unmatched {
            "rows without CPU ids and a different row count cannot be matched: this \
             interval is not used"
        } else {
            "only the CPUs in both samples are counted for this interval"
        };
        notes.push(CaptureNote {
            file: file.clone(),
            kind: NoteKind::Remark,
            detail: format!(
                "CPU rows changed at {} s: {}; {effect}",
                c.at.as_secs(),
                what.join(", ")
            ),
        });
    }
    if r.cpu_changes.len() > 4 {
        notes.push(CaptureNote {
            file: file.clone(),
            kind: NoteKind::Remark,
            detail: format!("CPU rows changed {} more times", r.cpu_changes.len() - 4),
        });
    }
    if r.window.used_intervals == 0 {
        notes.push(CaptureNote {
            file,
            kind: NoteKind::Remark,
            detail: format!(
                "{} samples but no usable interval (CPU rows not matched, or counters \
                 reset): no rates, counters since boot only",
                r.window.samples
            ),
        });
    }
}

fn malformed(file: &str, detail: &str) -> CaptureNote {
    CaptureNote {
        file: file.into(),
        kind: NoteKind::Malformed,
        detail: escape_controls(detail),
    }
}

struct FlowPass {
    hotspots: crate::hotspots::HotspotSummary,
    chains: Option<crate::buckets::SimulatedChains>,
    malformed: u64,
    first_error: Option<String>,
    truncated: bool,
    /// Why it stopped early ([`MAX_MALFORMED_LINES`],
    /// [`MAX_SKIPPED_LINE_BYTES`]).
    abandoned: Option<String>,
}

/// Skips the rest of a line (up to and including its newline) without
/// keeping it, reading at most [`MAX_SKIPPED_LINE_BYTES`]; returns the
/// bytes skipped and whether the line ended.
fn skip_line(r: &mut impl BufRead) -> (u64, bool) {
    let mut skipped = 0u64;
    loop {
        if skipped >= MAX_SKIPPED_LINE_BYTES {
            return (skipped, false);
        }
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return (skipped, true),
        };
        if buf.is_empty() {
            return (skipped, true);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                return (skipped + i as u64 + 1, true);
            }
            None => {
                let n = buf.len();
                r.consume(n);
                skipped += n as u64;
            }
        }
    }
}

/// Streams a listing into hotspots and the chain simulation: one line in
/// memory at a time.
fn flow_pass(file: File, buckets: Option<u32>, opts: &LoadOptions) -> FlowPass {
    let mut hot = Hotspots::new(opts.hotspots.clone());
    let mut sim = buckets
        .filter(|&b| opts.simulate_buckets && b > 0 && b <= 1 << 24)
        .map(|b| ChainSimulator::sampled(u64::from(b), SIMULATION_SEED, SAMPLED_BUCKETS));
    let mut reader = BufReader::new(file.take(MAX_LISTING_BYTES));
    let mut line = Vec::with_capacity(512);
    let (mut malformed, mut first_error, mut read) = (0u64, None, 0u64);
    let (mut parsed, mut abandoned) = (0u64, None);
    loop {
        if malformed >= MAX_MALFORMED_LINES && malformed > 9 * parsed {
            abandoned = Some(format!(
                "{malformed} malformed lines (fewer than one in ten parsed)"
            ));
            break;
        }
        line.clear();
        // Reads at most MAX_LINE_BYTES + 1 bytes of one line.
        let n = match (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                malformed += 1;
                first_error.get_or_insert_with(|| e.to_string());
                break;
            }
        };
        read += n as u64;
        if line.len() > MAX_LINE_BYTES && !line.ends_with(b"\n") {
            malformed += 1;
            first_error.get_or_insert_with(|| format!("a line longer than {MAX_LINE_BYTES} bytes"));
            // Skip the rest of the overlong line, without keeping it.
            let (skipped, ended) = skip_line(&mut reader);
            read += skipped;
            if !ended {
                abandoned = Some(format!("a line longer than {MAX_SKIPPED_LINE_BYTES} bytes"));
                break;
            }
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        match list::parse_line(text) {
            Ok(f) => {
                parsed += 1;
                hot.add(&f);
                if let Some(s) = sim.as_mut() {
                    s.add(&f);
                }
            }
            Err(e) => {
                malformed += 1;
                first_error.get_or_insert_with(|| escape_controls(&e.to_string()));
            }
        }
    }
    FlowPass {
        hotspots: hot.summary(),
        chains: sim.map(ChainSimulator::finish),
        malformed,
        first_error,
        truncated: read >= MAX_LISTING_BYTES,
        abandoned,
    }
}
