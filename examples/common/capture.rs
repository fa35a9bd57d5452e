//! Offline collection from a capture directory, read by the library's
//! loader (`conntrack_analyze::capture`; layout in examples/data/README.md).

use super::Failure;
use super::analysis::Collected;
use super::target::Target;
use conntrack_kit::analyze::HotspotConfig;
use conntrack_kit::analyze::capture::{self, CaptureError, LoadOptions};

/// Reads a capture directory. `target` is [`Target::Capture`] or
/// [`Target::Sample`].
pub fn collect(target: &Target, top: usize) -> Result<Collected, Failure> {
    let dir = target
        .capture_dir()
        .ok_or_else(|| Failure::Error("not a capture target".into()))?;
    let opts = LoadOptions::default().with_hotspots(HotspotConfig::bounded().with_top(top));
    let c = capture::load(dir, &opts).map_err(|e| match e {
        CaptureError::NotFound(_) | CaptureError::NotADirectory(_) => {
            Failure::NoTarget(e.to_string())
        }
        e => Failure::Error(e.to_string()),
    })?;
    Ok(Collected {
        target: target.clone(),
        notes: c.notes.iter().map(|n| n.to_string()).collect(),
        stats_source: c.stats_source,
        hostname: c.meta.hostname,
        description: c.meta.description,
        observation: c.observation,
    })
}
