//! The JSON outputs against their schemas in `schemas/`:
//!
//! - the committed schema files are the ones generated from the types
//!   (feature `schema` of the crates); `UPDATE_SCHEMAS=1 cargo test --test
//!   json_schema` rewrites them: review the diff, and bump the schema's
//!   version when a field goes away, is renamed or changes meaning;
//! - each is a valid draft 2020-12 schema that describes every property
//!   and closes every object, so that a new field without a schema update
//!   fails here;
//! - every scenario report (`conntrack-tune/fixtures/scenarios/*/
//!   expected.json`) validates against `report.schema.json`;
//! - what the built examples print validates: `doctor --json --sample`,
//!   `plan --format json --sample` and `compare --json` of two scenario
//!   captures;
//! - a document with an unknown field, a value outside an enum, or a
//!   required field missing does not.
//!
//! The scenario captures and reports are in the repository, not in the
//! package: this test runs from a checkout.

use conntrack_kit::analyze::compare::{COMPARE_SCHEMA, COMPARE_SCHEMA_VERSION};
use conntrack_kit::tune::plan::{PLAN_SCHEMA, PLAN_SCHEMA_VERSION};
use conntrack_kit::tune::report::{REPORT_SCHEMA, REPORT_SCHEMA_VERSION};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One schema file: its name, how it is generated, and the schema id and
/// version of the documents it describes.
struct Doc {
    name: &'static str,
    generate: fn() -> schemars::Schema,
    id: &'static str,
    version: u32,
}

const DOCS: [Doc; 3] = [
    Doc {
        name: "report",
        generate: conntrack_tune::schema::report,
        id: REPORT_SCHEMA,
        version: REPORT_SCHEMA_VERSION,
    },
    Doc {
        name: "plan",
        generate: conntrack_tune::schema::plan,
        id: PLAN_SCHEMA,
        version: PLAN_SCHEMA_VERSION,
    },
    Doc {
        name: "compare",
        generate: conntrack_analyze::schema::compare,
        id: COMPARE_SCHEMA,
        version: COMPARE_SCHEMA_VERSION,
    },
];

fn schema_path(name: &str) -> PathBuf {
    Path::new(ROOT)
        .join("schemas")
        .join(format!("{name}.schema.json"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator for the committed schema `name`.
fn validator(name: &str) -> jsonschema::Validator {
    let schema = read_json(&schema_path(name));
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("{name}.schema.json does not compile: {e}"))
}

/// The errors of `doc` against `v`, one line each (at most 20).
fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .take(20)
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect()
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let e = errors(v, doc);
    assert!(
        e.is_empty(),
        "{what} does not match its schema:\n  {}",
        e.join("\n  ")
    );
}

/// A document's `schema` and `version` fields are its schema's.
fn assert_header(doc: &Value, d: &Doc, what: &str) {
    assert_eq!(doc["schema"], d.id, "{what}");
    assert_eq!(doc["version"], d.version, "{what}");
}

#[test]
fn committed_schemas_are_generated_from_the_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for d in &DOCS {
        let path = schema_path(d.name);
        let generated = serde_json::to_string_pretty(&(d.generate)()).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run UPDATE_SCHEMAS=1 cargo test --test json_schema)",
                path.display()
            )
        });
        if committed != generated {
            let line = committed
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
            panic!(
                "schemas/{}.schema.json differs from the schema generated from the types at line \
                 {}:\n  committed: {:?}\n  generated: {:?}\n(run UPDATE_SCHEMAS=1 cargo test \
                 --test json_schema, review the diff, and bump the version if a field went \
                 away, was renamed or changed meaning)",
                d.name,
                line + 1,
                committed.lines().nth(line),
                generated.lines().nth(line)
            );
        }
    }
}

/// Walks every schema in `v`: each property has a description, and each
/// object schema with properties is closed (`additionalProperties: false`,
/// or `unevaluatedProperties: false` when it combines subschemas, whose
/// own properties it then closes). Returns the problems found.
fn lint(v: &Value, path: &str, closed_by_parent: bool, out: &mut Vec<String>) {
    let Some(o) = v.as_object() else {
        return;
    };
    let unevaluated = o.get("unevaluatedProperties") == Some(&Value::Bool(false));
    if let Some(Value::Object(props)) = o.get("properties") {
        let closed = o.get("additionalProperties") == Some(&Value::Bool(false))
            || unevaluated
            || closed_by_parent;
        if !closed {
            out.push(format!("{path}: object not closed"));
        }
        for (k, p) in props {
            if !p.get("description").is_some_and(Value::is_string) {
                out.push(format!("{path}/properties/{k}: no description"));
            }
        }
    }
    for (k, sub) in o {
        let here = format!("{path}/{k}");
        match (k.as_str(), sub) {
            ("properties" | "$defs", Value::Object(m)) => {
                for (name, s) in m {
                    lint(s, &format!("{here}/{name}"), false, out);
                }
            }
            ("oneOf" | "anyOf" | "allOf" | "prefixItems", Value::Array(a)) => {
                for (i, s) in a.iter().enumerate() {
                    lint(s, &format!("{here}/{i}"), unevaluated, out);
                }
            }
            ("items" | "additionalProperties" | "not", s) => lint(s, &here, false, out),
            _ => {}
        }
    }
}

#[test]
fn schemas_are_valid_closed_and_described() {
    for d in &DOCS {
        let schema = read_json(&schema_path(d.name));
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{}.schema.json is not a draft 2020-12 schema: {e}", d.name);
        }
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let id = format!("urn:{}:v{}", d.id.replace('/', ":"), d.version);
        assert_eq!(schema["$id"], id.as_str(), "{}", d.name);
        for k in ["title", "description"] {
            assert!(schema[k].is_string(), "{}: no {k}", d.name);
        }
        assert_eq!(schema["properties"]["schema"]["const"], d.id);
        assert_eq!(schema["properties"]["version"]["const"], d.version);
        for k in ["schema", "version"] {
            assert!(
                schema["required"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::from(k)),
                "{}: {k} not required",
                d.name
            );
        }
        let mut problems = Vec::new();
        lint(&schema, "#", false, &mut problems);
        assert!(
            problems.is_empty(),
            "{}.schema.json:\n  {}",
            d.name,
            problems.join("\n  ")
        );
    }
    // Typed values are enums: a few of them, by where they are.
    let report = read_json(&schema_path("report"));
    for def in [
        "FindingId",
        "Severity",
        "Status",
        "Priority",
        "EvidenceKey",
        "Cause",
        "Likelihood",
        "TimeoutKey",
    ] {
        let s = &report["$defs"][def];
        let values = s["enum"]
            .as_array()
            .or_else(|| s["oneOf"].as_array())
            .unwrap_or_else(|| panic!("{def} is not an enum: {s}"));
        assert!(values.len() >= 3, "{def}");
    }
    let tags: Vec<&Value> = report["$defs"]["ActionKind"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["properties"]["type"]["const"])
        .collect();
    assert!(tags.contains(&&json!("set_timeout")), "{tags:?}");
}

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(ROOT).join("conntrack-tune/fixtures/scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn scenario_reports_match_the_report_schema() {
    let v = validator("report");
    let dirs = scenarios();
    assert!(dirs.len() >= 10, "scenarios: {dirs:?}");
    for dir in dirs {
        let path = dir.join("expected.json");
        let doc = read_json(&path);
        assert_header(&doc, &DOCS[0], &path.display().to_string());
        assert_valid(&v, &doc, &path.display().to_string());
    }
}

/// Runs a built example and parses what it printed.
fn run_json(name: &str, args: &[&str]) -> Value {
    let dir = support::examples_dir(&["doctor", "plan", "compare"]);
    let out = Command::new(dir.join(name))
        .args(args)
        .output()
        .expect("run example");
    let code = out.status.code().expect("exit code");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // doctor exits with the verdict (0..=2); the others with 0.
    assert!(
        (0..=2).contains(&code),
        "{name} {args:?}: exit {code}: {stderr}"
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name} {args:?}: stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn examples_print_documents_that_match() {
    let doc = run_json("doctor", &["--json", "--sample"]);
    assert_header(&doc, &DOCS[0], "doctor --json --sample");
    assert_valid(&validator("report"), &doc, "doctor --json --sample");

    let doc = run_json("plan", &["--format", "json", "--sample"]);
    assert_header(&doc, &DOCS[1], "plan --format json --sample");
    assert!(!doc["actions"].as_array().unwrap().is_empty());
    assert_valid(&validator("plan"), &doc, "plan --format json --sample");

    let dir = Path::new(ROOT).join("conntrack-tune/fixtures/scenarios");
    let (a, b) = (dir.join("r4-docker-nat-el7"), dir.join("r5-docker-nat"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let doc = run_json("compare", &["--json", a, b]);
    assert_header(&doc, &DOCS[2], "compare --json");
    assert!(doc["rows"].as_array().unwrap().len() > 20);
    assert_valid(&validator("compare"), &doc, "compare --json");
}

/// A change to a document.
type Edit = fn(&mut Value);

#[test]
fn drifted_documents_fail() {
    let report = validator("report");
    let path = scenarios()
        .into_iter()
        .find(|p| p.ends_with("r4-docker-nat-el7"))
        .unwrap()
        .join("expected.json");
    let good = read_json(&path);
    assert_valid(&report, &good, "r4-docker-nat-el7");
    let changes: [(&str, Edit); 9] = [
        ("a new top-level field", |d| d["new_field"] = json!(1)),
        ("a new field in evidence", |d| {
            d["findings"][0]["evidence"][0]["extra"] = json!(1)
        }),
        ("a new field next to a flattened status", |d| {
            d["counters"]["readings"][0]["surprise"] = json!(true)
        }),
        ("a severity outside the enum", |d| {
            d["findings"][0]["severity"] = json!("dire")
        }),
        ("an evidence key outside the enum", |d| {
            d["findings"][0]["evidence"][0]["key"] = json!("insert failed rate")
        }),
        ("an action kind outside the enum", |d| {
            d["plan"]["actions"][0]["kind"]["type"] = json!("reboot")
        }),
        ("a missing required field", |d| {
            d.as_object_mut().unwrap().remove("status");
        }),
        ("a field under its version 1 name", |d| {
            let state = d["hotspots"]["states"][0].as_object_mut().unwrap();
            let h = state.remove("remaining_secs").unwrap();
            state.insert("remaining".into(), h);
        }),
        ("another version", |d| {
            d["version"] = json!(REPORT_SCHEMA_VERSION - 1)
        }),
    ];
    for (what, change) in changes {
        let mut doc = good.clone();
        change(&mut doc);
        assert!(
            !errors(&report, &doc).is_empty(),
            "the report schema accepts {what}"
        );
    }
    // The same for a comparison row and a plan action.
    let compare = validator("compare");
    let row = json!({
        "schema": COMPARE_SCHEMA, "version": COMPARE_SCHEMA_VERSION,
        "a_label": "a", "b_label": "b", "differences": [],
        "rows": [{ "section": "rates", "key": "drop_per_sec", "name": "drop /s", "a": 1.0, "b": null }]
    });
    assert_valid(&compare, &row, "a hand-made comparison");
    let mut bad = row.clone();
    bad["rows"][0]["key"] = json!("drops per second");
    assert!(
        !errors(&compare, &bad).is_empty(),
        "a row key outside the enum"
    );
    let plan = validator("plan");
    let mut bad = good["plan"].clone();
    bad["schema"] = json!(PLAN_SCHEMA);
    bad["version"] = json!(PLAN_SCHEMA_VERSION);
    assert_valid(&plan, &bad, "the plan of r4-docker-nat-el7 as a document");
    bad["actions"][0]["kind"]["floor"] = json!(60);
    assert!(
        !errors(&plan, &bad).is_empty(),
        "an unknown field in a kind"
    );
}
