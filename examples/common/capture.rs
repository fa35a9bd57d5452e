//! Offline collection from a capture directory.
//!
//! Layout (every file optional; `examples/data/README.md` has the shell
//! snippet that writes one):
//!
//! | file | what |
//! |---|---|
//! | `conntrack-L.txt` | `conntrack -L` output, any `-o` form |
//! | `conntrack-S.txt` | `conntrack -S` output (one sample) |
//! | `conntrack-C.txt` | `conntrack -C` output |
//! | `stat-0.txt`, `stat-1.txt`, ... | successive copies of `/proc/net/stat/nf_conntrack`, `interval_secs` apart (rates) |
//! | `conntrack-S-0.txt`, `conntrack-S-1.txt`, ... | successive `conntrack -S` outputs, used when there are no `stat-N.txt` |
//! | `meta.txt` | `key=value` lines: `interval_secs` (needed with two or more samples), `description`, `hostname`, `captured_at` |
//! | `proc/...`, `sys/...` | copies of the host files, at their paths (read by `HostFs::new(DIR)`) |
//! | `etc/sysctl.d/...` | the host's sysctl configuration (the plan checks precedence) |

use super::Failure;
use super::analysis::{Collected, FlowPass};
use super::source::Target;
use conntrack_kit::analyze::buckets::simulate;
use conntrack_kit::analyze::hotspots::Hotspots;
use conntrack_kit::analyze::rates::StatsSeries;
use conntrack_kit::ct_core::Stats;
use conntrack_kit::ct_core::cli::{list, stats as cli_stats};
use conntrack_kit::ct_core::host::HostFs;
use conntrack_kit::ct_core::procstat;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Largest capture file read (a `conntrack -L` of a million flows is
/// ~200 MB; bigger needs the live path).
const MAX_CAPTURE_BYTES: u64 = 1 << 30;

fn read_opt(dir: &Path, name: &str) -> Result<Option<String>, Failure> {
    let path = dir.join(name);
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::Error(format!("{}: {e}", path.display()))),
        Ok(m) if m.len() > MAX_CAPTURE_BYTES => {
            return Err(Failure::Error(format!(
                "{}: larger than {MAX_CAPTURE_BYTES} bytes",
                path.display()
            )));
        }
        Ok(_) => {}
    }
    std::fs::read_to_string(&path)
        .map(Some)
        .map_err(|e| Failure::Error(format!("{}: {e}", path.display())))
}

/// Parses `meta.txt`: `key=value` lines, `#` comments.
pub fn parse_meta(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Reads a capture directory. `target` is [`Target::Capture`] or
/// [`Target::Sample`].
pub fn collect(target: &Target, top: usize) -> Result<Collected, Failure> {
    let dir = target
        .capture_dir()
        .ok_or_else(|| Failure::Error("not a capture target".into()))?
        .to_path_buf();
    if !dir.is_dir() {
        return Err(Failure::NoTarget(format!(
            "capture directory {} does not exist",
            dir.display()
        )));
    }
    let meta = read_opt(&dir, "meta.txt")?
        .map(|t| parse_meta(&t))
        .unwrap_or_default();
    let mut notes = Vec::new();

    let report = HostFs::new(&dir).read_snapshot();
    let mut snapshot = report.snapshot;
    let missing: Vec<String> = report
        .problems
        .iter()
        .filter(|e| e.is_not_found())
        .map(|e| {
            e.path()
                .strip_prefix(&dir)
                .unwrap_or(e.path())
                .display()
                .to_string()
        })
        .collect();
    if !missing.is_empty() {
        notes.push(format!("not in the capture: {}", missing.join(", ")));
    }
    for e in report.problems.iter().filter(|e| !e.is_not_found()) {
        notes.push(format!("could not read: {e}"));
    }

    if let Some(text) = read_opt(&dir, "conntrack-C.txt")? {
        let c = cli_stats::parse_count(&text).map_err(|e| {
            Failure::Error(format!("{}: {e}", dir.join("conntrack-C.txt").display()))
        })?;
        match snapshot.count {
            Some(n) if n != c => notes.push(format!(
                "conntrack-C.txt says {c} entries, nf_conntrack_count {n}: using {n}"
            )),
            Some(_) => {}
            None => snapshot.count = Some(c),
        }
    }

    // Statistics samples: stat-N.txt, else conntrack-S-N.txt, else one.
    let mut samples: Vec<(String, Stats)> = Vec::new();
    for (prefix, cli) in [("stat-", false), ("conntrack-S-", true)] {
        for i in 0.. {
            let name = format!("{prefix}{i}.txt");
            let Some(text) = read_opt(&dir, &name)? else {
                break;
            };
            let parsed = if cli {
                cli_stats::parse_cli_stats(&text).map_err(|e| e.to_string())
            } else {
                procstat::parse(&text).map_err(|e| e.to_string())
            };
            let s = parsed
                .map_err(|e| Failure::Error(format!("{}: {e}", dir.join(&name).display())))?;
            samples.push((name, s));
        }
        if !samples.is_empty() {
            break;
        }
    }
    let mut stats_source = samples.first().map(|(n, _)| {
        format!(
            "{} ... {} ({} samples)",
            n,
            samples.last().map_or("", |(l, _)| l),
            samples.len()
        )
    });
    if samples.is_empty() {
        if let Some(text) = read_opt(&dir, "conntrack-S.txt")? {
            let s = cli_stats::parse_cli_stats(&text).map_err(|e| {
                Failure::Error(format!("{}: {e}", dir.join("conntrack-S.txt").display()))
            })?;
            samples.push(("conntrack-S.txt".into(), s));
            stats_source = Some("conntrack-S.txt (one sample)".into());
        } else if let Some(s) = snapshot.stats.clone() {
            samples.push(("proc/net/stat/nf_conntrack".into(), s));
            stats_source = Some("proc/net/stat/nf_conntrack (one sample)".into());
        }
    }
    let mut series = StatsSeries::new();
    if samples.len() >= 2 {
        let interval: f64 = meta
            .get("interval_secs")
            .and_then(|v| v.parse().ok())
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                Failure::Error(format!(
                    "{}: {} statistics samples but no interval_secs=SECONDS in meta.txt",
                    dir.display(),
                    samples.len()
                ))
            })?;
        for (i, (_, s)) in samples.iter().enumerate() {
            let _ = series.push(Duration::from_secs_f64(interval * i as f64), s.clone());
        }
    } else if let Some((name, s)) = samples.first() {
        let _ = series.push(Duration::ZERO, s.clone());
        notes.push(format!(
            "one statistics sample ({name}): no rates, counters since boot only; capture stat-0.txt and stat-1.txt for rates"
        ));
    } else {
        notes.push("no statistics in the capture (stat-N.txt, conntrack-S.txt)".into());
    }
    if let Some((_, last)) = samples.last() {
        if snapshot.count.is_none() {
            snapshot.count = last.entries;
        }
        if snapshot.stats.is_none() {
            snapshot.stats = Some(last.clone());
        }
    }

    let flows = match read_opt(&dir, "conntrack-L.txt")? {
        None => {
            notes.push("no conntrack-L.txt: no hotspots, states or bucket simulation".into());
            None
        }
        Some(text) => Some(flow_pass(&text, snapshot.buckets, top)),
    };
    if let (Some(f), Some(count)) = (&flows, snapshot.count) {
        let listed = f.hotspots.flows + f.malformed;
        if listed.abs_diff(u64::from(count)) * 100 > u64::from(count).max(1) {
            notes.push(format!(
                "conntrack-L.txt lists {listed} flows but the count is {count}: they were taken at \
                 different moments (or the listing is partial); shares are of the listed flows"
            ));
        }
    }

    Ok(Collected {
        target: target.clone(),
        snapshot,
        notes,
        series,
        stats_source,
        flows,
        root: Some(dir),
        meta,
    })
}

fn flow_pass(text: &str, buckets: Option<u32>, top: usize) -> FlowPass {
    let mut flows = Vec::new();
    let mut malformed = 0u64;
    let mut first_error = None;
    for r in list::parse_lines(text) {
        match r {
            Ok(f) => flows.push(f),
            Err(e) => {
                malformed += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let mut hot = Hotspots::new(conntrack_kit::analyze::HotspotConfig {
        top,
        ..Default::default()
    });
    hot.extend(&flows);
    let chains = buckets
        .filter(|&b| b > 0 && b <= 1 << 24)
        .map(|b| simulate(&flows, u64::from(b), 0x636f_6e6e_7472_6163));
    FlowPass {
        source: "conntrack-L.txt".into(),
        hotspots: hot.summary(),
        chains,
        malformed,
        first_error,
        notes: Vec::new(),
    }
}
