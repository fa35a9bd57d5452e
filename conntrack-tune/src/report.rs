//! [`Report`]: everything the doctor says about one table, as one value
//! with a versioned JSON schema: what was observed, the model's facts, the
//! findings, the answers to operators' questions, the plan and the folk
//! recipes judged for the host. Renderers turn it into text
//! ([`crate::render::report_text`]) and JSON ([`Report::to_json`]).
//!
//! The JSON document carries its schema id ([`REPORT_SCHEMA`]) and version
//! ([`REPORT_SCHEMA_VERSION`]); its JSON Schema is
//! `schemas/report.schema.json` in the repository, generated from these
//! types (feature `schema`: `conntrack_tune::schema::report`).
//!
//! ```
//! use conntrack_analyze::Observation;
//! use conntrack_core::HostSnapshot;
//! use conntrack_tune::report::{Report, Origin, Status};
//! use conntrack_tune::Policy;
//! let obs = Observation::new(HostSnapshot::default().with_count(95).with_max(100));
//! let r = Report::build(&obs, Origin::capture("ticket-42"), &Policy::default()).unwrap();
//! assert_eq!(r.status(), Status::Warning); // table nearly full
//! assert_eq!(r.schema, "conntrack-kit/report");
//! ```

use crate::plan::Plan;
use crate::policy::{Policy, PolicyError};
use conntrack_analyze::answers::{Answer, answer};
use conntrack_analyze::attribution::AttributionSummary;
use conntrack_analyze::buckets::SimulatedChains;
use conntrack_analyze::hotspots::HotspotSummary;
use conntrack_analyze::{DerivedFacts, Facts, Finding, Observation, Severity, Unread, diagnose};
use serde::Serialize;

/// The schema id of [`Report`]'s JSON.
pub const REPORT_SCHEMA: &str = "conntrack-kit/report";
/// The schema version: additive changes keep it, a field that goes away,
/// is renamed or changes meaning bumps it.
///
/// - 2: `hotspots.states[].remaining` renamed `remaining_secs` (the unit
///   in the name, like every other duration).
/// - 1: the first.
pub const REPORT_SCHEMA_VERSION: u32 = 2;

/// What the report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Origin {
    /// How it was observed.
    pub kind: OriginKind,
    /// What (a namespace, a process, a directory).
    pub label: String,
    /// The host's name, when known.
    pub hostname: Option<String>,
    /// A description (a capture's `meta.txt`).
    pub description: Option<String>,
}

/// How a report's data was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OriginKind {
    /// A live host (a namespace of this machine).
    Live,
    /// A capture directory.
    Capture,
    /// The bundled sample incident: not this host.
    Sample,
}

impl Origin {
    /// An origin of this kind, without host name or description.
    pub fn new(kind: OriginKind, label: impl Into<String>) -> Self {
        Origin {
            kind,
            label: label.into(),
            hostname: None,
            description: None,
        }
    }

    /// A capture.
    pub fn capture(label: impl Into<String>) -> Self {
        Origin::new(OriginKind::Capture, label)
    }

    /// With the host's name, when known.
    pub fn with_hostname(mut self, hostname: Option<String>) -> Self {
        self.hostname = hostname;
        self
    }

    /// With a description, when there is one.
    pub fn with_description(mut self, description: Option<String>) -> Self {
        self.description = description;
        self
    }

    /// A live namespace.
    pub fn live(label: impl Into<String>) -> Self {
        Origin::new(OriginKind::Live, label)
    }
}

/// The verdict of a report, most severe finding first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Judged, nothing of warning level or above.
    Healthy,
    /// At least one warning.
    Warning,
    /// At least one critical finding.
    Critical,
    /// Nothing could be judged: no table size, no counters, no flows.
    NotJudged,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct Report {
    /// [`REPORT_SCHEMA`].
    #[cfg_attr(
        feature = "schema",
        schemars(
            extend("const" = REPORT_SCHEMA),
            description = "The schema id, `conntrack-kit/report`."
        )
    )]
    pub schema: &'static str,
    /// [`REPORT_SCHEMA_VERSION`].
    #[cfg_attr(
        feature = "schema",
        schemars(
            extend("const" = REPORT_SCHEMA_VERSION),
            description = "The schema version: additive changes keep it, a field that goes \
                           away, is renamed or changes meaning bumps it."
        )
    )]
    pub version: u32,
    /// What it is about.
    pub origin: Origin,
    /// The verdict.
    pub status: Status,
    /// The kernel release string.
    pub kernel_release: Option<String>,
    /// The model's facts (kernel version and era, table, counters, mix,
    /// churn, demand, CPU spread, timeouts, containers), at the top level
    /// of the JSON.
    #[serde(flatten)]
    pub facts: DerivedFacts,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Answers to the questions the data can answer.
    pub answers: Vec<Answer>,
    /// The tuning plan (with the folk recipes judged).
    pub plan: Plan,
    /// Hotspots over the listed flows.
    pub hotspots: Option<HotspotSummary>,
    /// Chain lengths from hashing the listed tuples.
    pub chains: Option<SimulatedChains>,
    /// Who owns the flows: the local processes and containers with the
    /// most entries, the share with a local owner, and why the others
    /// have none (live only).
    pub owners: Option<AttributionSummary>,
    /// What could not be read and what the report lacks for it (a live
    /// run without privileges: no dump, so no hotspots or owners).
    pub unread: Vec<Unread>,
    /// Remarks on what was read (missing, malformed, sampled).
    pub notes: Vec<String>,
}

impl Report {
    /// Diagnoses and plans an observation.
    pub fn build(
        obs: &Observation,
        origin: Origin,
        policy: &Policy,
    ) -> Result<Report, PolicyError> {
        let facts = Facts::derive(obs);
        let findings = diagnose(&facts);
        let plan = crate::plan(&facts, &findings, policy)?;
        let answers = answer(&facts);
        let judged = facts.table.count.is_some()
            || facts.table.max.is_some()
            || obs.snapshot.stats.is_some()
            || obs.rates.is_some()
            || obs.hotspots.is_some();
        let status = if !judged {
            Status::NotJudged
        } else {
            match findings.iter().map(|f| f.severity).max() {
                Some(Severity::Critical) => Status::Critical,
                Some(Severity::Warning) => Status::Warning,
                _ => Status::Healthy,
            }
        };
        Ok(Report {
            schema: REPORT_SCHEMA,
            version: REPORT_SCHEMA_VERSION,
            origin,
            status,
            kernel_release: obs.snapshot.kernel_release.clone(),
            facts: facts.derived,
            findings,
            answers,
            plan,
            hotspots: obs.hotspots.clone(),
            chains: obs.chains.clone(),
            owners: obs.owners.clone(),
            unread: obs.unread.clone(),
            notes: Vec::new(),
        })
    }

    /// With remarks on what was read.
    pub fn with_notes(mut self, notes: impl IntoIterator<Item = String>) -> Self {
        self.notes.extend(notes);
        self
    }

    /// The verdict.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}
