//! What was collected ([`Collected`]: an observation and where it came
//! from) and the report the library makes of it.

use super::target::Target;
use conntrack_kit::analyze::Observation;
use conntrack_kit::tune::Policy;
use conntrack_kit::tune::report::{Origin, OriginKind, Report};

/// Everything collected from a live table or a capture.
#[derive(Debug, Clone)]
pub struct Collected {
    /// What was looked at.
    pub target: Target,
    /// What was observed.
    pub observation: Observation,
    /// What could not be read, and other remarks.
    pub notes: Vec<String>,
    /// Where the statistics came from.
    pub stats_source: Option<String>,
    /// The host's name (a capture's `meta.txt`).
    pub hostname: Option<String>,
    /// The capture's description.
    pub description: Option<String>,
}

impl Collected {
    /// Whether this is the bundled sample.
    pub fn is_sample(&self) -> bool {
        self.target == Target::Sample
    }

    /// The report's origin.
    pub fn origin(&self) -> Origin {
        let kind = match self.target {
            Target::Sample => OriginKind::Sample,
            Target::Capture(_) => OriginKind::Capture,
            _ => OriginKind::Live,
        };
        Origin::new(kind, self.target.describe())
            .with_hostname(self.hostname.clone())
            .with_description(self.description.clone())
    }
}

/// Diagnoses and plans a collection with the default policy.
pub fn analyse(c: &Collected) -> Report {
    let mut notes = c.notes.clone();
    if let Some(s) = &c.stats_source {
        notes.insert(0, format!("statistics from {s}"));
    }
    Report::build(&c.observation, c.origin(), &Policy::default())
        .expect("the default policy is valid")
        .with_notes(notes)
}
