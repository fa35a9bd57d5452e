//! The deployment files under examples/deploy/: the alerting rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`),
//! the Grafana dashboard is valid JSON whose panels have unique ids and
//! whose queries name only families the exporter writes (and the rules
//! too), and the systemd unit grants exactly the capabilities the
//! exporter uses. The promtool part skips (printing why) without
//! `promtool` unless `CONNTRACK_KIT_REQUIRE_LIVE=1`.

use conntrack_core::testkit::{self, Need, find_in_path};
use conntrack_kit::ct_core::Counter;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy")
}

/// The family and sample names the exporter can write: the string
/// literals of src/exporter/families.rs that look like names, with their
/// `_total`/`_info` forms, and one `conntrack_stat_*` per counter.
fn exported_names() -> BTreeSet<String> {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/exporter/families.rs"),
    )
    .unwrap();
    let mut names = BTreeSet::new();
    for lit in src.split('"').skip(1).step_by(2) {
        if (lit.starts_with("conntrack_") || lit.starts_with("node_nf_conntrack_"))
            && lit.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            names.insert(lit.to_string());
        }
    }
    for c in Counter::ALL {
        names.insert(format!("conntrack_stat_{}", c.name()));
    }
    let more: Vec<String> = names
        .iter()
        .flat_map(|n| [format!("{n}_total"), format!("{n}_info")])
        .collect();
    names.extend(more);
    names
}

/// Metric names in a PromQL text (identifiers starting with one of the
/// exporter's prefixes).
fn names_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("conntrack_") || w.starts_with("node_nf_conntrack_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn dashboard_is_valid_and_queries_exported_families() {
    let path = deploy().join("grafana/conntrack-dashboard.json");
    let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(d["title"].is_string() && d["uid"].is_string());
    let panels = d["panels"].as_array().expect("panels");
    let exported = exported_names();
    let mut ids = BTreeSet::new();
    let mut queried = 0;
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().expect("numeric panel id")));
        assert!(p["gridPos"]["w"].as_u64().is_some_and(|w| w <= 24));
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            assert!(!expr.trim().is_empty());
            for n in names_in(expr) {
                assert!(exported.contains(&n), "dashboard queries {n}, not exported");
                queried += 1;
            }
        }
    }
    assert!(queried >= 10, "{queried}");
    // Template variables name the labels the exporter writes.
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(vars, ["datasource", "instance", "netns"]);
}

#[test]
fn rules_name_exported_families() {
    let rules = std::fs::read_to_string(deploy().join("prometheus/conntrack-rules.yml")).unwrap();
    let exported = exported_names();
    let used: BTreeSet<String> = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:") || l.starts_with("          "))
        .flat_map(names_in)
        .collect();
    for n in &used {
        assert!(exported.contains(n), "rules use {n}, not exported");
    }
    for needed in [
        "conntrack_entries",
        "conntrack_max_entries",
        "conntrack_stat_drop_total",
        "conntrack_stat_insert_failed_total",
        "conntrack_stat_chaintoolong_total",
        "conntrack_stat_clash_resolve_total",
        "conntrack_stat_early_drop_total",
        "conntrack_exporter_errors_total",
        "conntrack_up",
    ] {
        assert!(used.contains(needed), "no rule uses {needed}");
    }
    assert!(rules.contains("predict_linear(conntrack_entries"));
}

#[test]
fn rules_pass_promtool_and_their_unit_tests() {
    if !testkit::live(
        "rules_pass_promtool_and_their_unit_tests",
        &[Need::Tool("promtool")],
    ) {
        return;
    }
    let promtool = find_in_path("promtool").unwrap();
    let dir = deploy().join("prometheus");
    for args in [
        &["check", "rules", "conntrack-rules.yml"][..],
        &["test", "rules", "conntrack-rules.test.yml"][..],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("promtool {}: ok", args.join(" "));
    }
}

#[test]
fn systemd_unit_grants_only_the_capabilities_used() {
    let unit =
        std::fs::read_to_string(deploy().join("systemd/conntrack-exporter.service")).unwrap();
    let caps = |key: &str| -> BTreeSet<String> {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let want: BTreeSet<String> = [
        "CAP_NET_ADMIN",
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_DAC_READ_SEARCH",
    ]
    .map(String::from)
    .into();
    assert_eq!(caps("AmbientCapabilities="), want);
    assert_eq!(caps("CapabilityBoundingSet="), want);
    assert!(unit.contains("NoNewPrivileges=yes"));
    assert!(unit.contains("--all-netns"));
    assert!(unit.lines().any(|l| l.starts_with("TasksMax=")));
}
