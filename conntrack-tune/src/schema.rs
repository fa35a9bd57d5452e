//! JSON Schemas of the report and the plan (feature `schema`), made like
//! every conntrack-kit schema by [`conntrack_analyze::schema::document`]:
//! draft 2020-12, the serialised form, every object closed. They are
//! committed in the repository's `schemas/` directory
//! (`report.schema.json`, `plan.schema.json`), and a test of the root
//! package fails when a committed file and the generated schema differ, or
//! when an output does not validate.
//!
//! ```
//! let s = conntrack_tune::schema::report();
//! assert_eq!(s.get("$id").unwrap(), "urn:conntrack-kit:report:v2");
//! let p = conntrack_tune::schema::plan();
//! assert_eq!(p.get("$id").unwrap(), "urn:conntrack-kit:plan:v1");
//! ```

use crate::plan::{PLAN_SCHEMA, PLAN_SCHEMA_VERSION, PlanDocument};
use crate::report::{REPORT_SCHEMA, REPORT_SCHEMA_VERSION, Report};
use conntrack_analyze::schema::document;
use schemars::Schema;

/// The schema of a [`Report`] (`doctor --json`).
pub fn report() -> Schema {
    document::<Report>(
        REPORT_SCHEMA,
        REPORT_SCHEMA_VERSION,
        "conntrack-kit report",
        "Everything the doctor says about one conntrack table: what was observed, the model's \
         facts (table, counters, flow mix, churn, demand, CPU spread, timeouts), the findings \
         with their evidence and ranked causes, answers to operators' questions, the tuning \
         plan with the folk recipes judged, hotspots and simulated chains. Written by the \
         doctor example's --json and by conntrack_tune::Report::to_json.",
    )
}

/// The schema of a plan document ([`crate::render::json`], `plan --format
/// json`).
pub fn plan() -> Schema {
    document::<PlanDocument<'static>>(
        PLAN_SCHEMA,
        PLAN_SCHEMA_VERSION,
        "conntrack-kit plan",
        "A conntrack tuning plan: ordered actions (P0 stop the bleeding .. P3 hygiene), each \
         with its evidence, expected effect, risk, rollback and verification; what was \
         declined and why, what could not be judged, warnings, the facts it was made from \
         and the folk recipes judged for the host. Written by the plan example's --format \
         json and by conntrack_tune::render::json.",
    )
}
