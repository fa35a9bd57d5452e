//! Runs the built `doctor` and `plan` examples and checks what a user
//! sees: help, usage errors and their exit codes, missing targets, the
//! bundled sample incident (text and JSON), a live run on this host, a live
//! run in a fresh namespace filled with known flows (and the owners of
//! flows to a local server), and what an unprivileged run reads.
//!
//! The examples are built once by `cargo build --examples` (a no-op when
//! `cargo test` already built them) in this test's profile and target
//! directory. Live tests skip (printing why) without root, unless
//! `CONNTRACK_KIT_REQUIRE_LIVE=1`, which turns a skip into a failure.

use conntrack_core::testkit::{Need, Reaped, TestNetns, live};
use conntrack_kit::netlink::fill::{FillOptions, fill};
use conntrack_kit::netlink::{Conntrack, Netns};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/sample-incident");

mod support;

/// `target/<profile>/examples`, after building the examples there.
fn examples_dir() -> &'static Path {
    support::examples_dir(&["doctor", "plan"])
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_cmd(mut cmd: Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run example");
    Run {
        code: status.code().expect("exit code (not killed by a signal)"),
        stdout: String::from_utf8(stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(stderr).expect("UTF-8 stderr"),
    }
}

fn example(name: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(examples_dir().join(name));
    cmd.args(args);
    run_cmd(cmd)
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", r.stdout))
}

fn finding_ids(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| f["id"].as_str().expect("finding id").to_string())
        .collect()
}

/// What every live test here needs.
const LIVE: [Need; 3] = [
    Need::Root,
    Need::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
    Need::Tool("ip"),
];

/// Whether a live test may run; panics when live tests are required.
fn live_ok(test: &str) -> bool {
    live(test, &LIVE)
}

#[test]
fn help_explains_and_exits_zero() {
    for name in ["doctor", "plan"] {
        let r = example(name, &["--help"]);
        assert_eq!(r.code, 0, "{name} --help: {}", r.stderr);
        for word in ["--netns", "--pid", "--capture", "Exit codes", "root"] {
            assert!(
                r.stdout.contains(word),
                "{name} --help lacks {word}:\n{}",
                r.stdout
            );
        }
    }
    let r = example("plan", &["--help"]);
    for f in [
        "sysctl", "modprobe", "shell", "nft", "iptables", "json", "markdown",
    ] {
        assert!(r.stdout.contains(f), "plan --help lacks format {f}");
    }
}

#[test]
fn bad_arguments_exit_3_not_clap_2() {
    for (name, args) in [
        ("doctor", &["--no-such-option"][..]),
        ("doctor", &["--window=-1"]),
        ("doctor", &["--window", "abc"]),
        ("doctor", &["--top", "0"]),
        ("doctor", &["--netns", "a", "--capture", "/tmp"]),
        ("doctor", &["--netns", "a/b"]),
        ("doctor", &["--sample", "--no-sample"]),
        ("plan", &["--format", "yaml"]),
        ("plan", &["--scope", "galaxy"]),
    ] {
        let r = example(name, args);
        assert_eq!(r.code, 3, "{name} {args:?}: {}", r.stderr);
        assert!(!r.stderr.is_empty(), "{name} {args:?}: no message");
        assert!(r.stdout.is_empty(), "{name} {args:?}: printed a report");
    }
}

#[test]
fn missing_targets_exit_4_with_a_clear_message() {
    let r = example("doctor", &["--netns", "ck-doctor-no-such-ns"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("\"ck-doctor-no-such-ns\" does not exist"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    let r = example("doctor", &["--pid", "4000000000"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("process 4000000000 does not exist"),
        "{}",
        r.stderr
    );
    let r = example("plan", &["--capture", "/nonexistent/capture"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("/nonexistent/capture"), "{}", r.stderr);
}

#[test]
fn sample_capture_text_report() {
    let r = example("doctor", &["--capture", SAMPLE]);
    // The sample is a full table with live drops: critical.
    assert_eq!(r.code, 2, "{}", r.stderr);
    let out = &r.stdout;
    assert!(
        out.lines()
            .nth(1)
            .unwrap_or("")
            .starts_with("SAMPLE INCIDENT"),
        "sample banner first:\n{out}"
    );
    for section in [
        "== Table",
        "== Counters over 10 s (since boot)",
        "== What the table holds",
        "== Findings (5)",
        "== Questions the data answers",
        "== Tuning plan",
        "Folk recipes, judged for this host",
    ] {
        assert!(out.contains(section), "missing {section}:\n{out}");
    }
    for finding in [
        "[CRITICAL] table-full",
        "[WARNING] cpu-imbalance",
        "[WARNING] connection-churn",
        "[WARNING] scan-suspects",
        "[WARNING] nat-amplification",
    ] {
        assert!(out.contains(finding), "missing {finding}");
    }
    // Aligned tables: the count row and the top source.
    assert!(
        out.contains("  entries                       4,093"),
        "{out}"
    );
    assert!(out.contains("  172.17.0.3     3,343  81.7%"), "{out}");
    // The planner's exact figure is conntrack-tune's business; it must raise.
    assert!(
        out.contains("[raise-max] Raise nf_conntrack_max from 4,096 to "),
        "{out}"
    );
    assert!(out.trim_end().ends_with("verdict: CRITICAL"));
}

/// The README's doctor excerpt is cut from a real `doctor --sample` run:
/// every line of it is a line of the report, in the same order.
#[test]
fn readme_excerpt_is_what_doctor_prints() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("Excerpt of `cargo run --release --example doctor -- --sample`")
        .expect("README has the doctor excerpt");
    let block = &readme[start..];
    let body = &block[block.find("```text\n").expect("excerpt block") + 8..];
    let excerpt = &body[..body.find("```").expect("end of the excerpt block")];
    let r = example("doctor", &["--sample"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let mut report = r.stdout.lines();
    for line in excerpt.lines().filter(|l| !l.is_empty()) {
        assert!(
            report.any(|l| l == line),
            "README excerpt line not in the report (or out of order):\n{line}\n\nreport:\n{}",
            r.stdout
        );
    }
}

#[test]
fn sample_json_has_every_section() {
    let r = example("doctor", &["--sample", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let doc = json(&r);
    assert_eq!(doc["schema"], "conntrack-kit/report");
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["origin"]["kind"], "sample");
    assert_eq!(doc["status"], "critical");
    assert_eq!(doc["table"]["count"], 4093);
    assert_eq!(doc["table"]["max"], 4096);
    assert_eq!(doc["table"]["buckets"], 4096);
    assert!(
        doc["table"]["memory_at_max"]["total_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(doc["hotspots"]["flows"], 4093);
    assert_eq!(doc["counters"]["window_secs"], 10.0);
    assert_eq!(doc["chains"]["nodes"], 8186);
    let ids = finding_ids(&doc);
    assert_eq!(ids[0], "table-full");
    for id in [
        "cpu-imbalance",
        "connection-churn",
        "scan-suspects",
        "nat-amplification",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }
    let actions: Vec<&str> = doc["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"raise-max"), "{actions:?}");
    // cpu-imbalance (99.45% of NET_RX on CPU 0 of 2, one rx queue, RPS
    // off) and the plan agree: RPS over both CPUs on the real interface.
    assert!(actions.contains(&"rps:eth0"), "{actions:?}");
    let rps = doc["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "rps:eth0")
        .unwrap();
    assert_eq!(rps["kind"]["queues"][0]["mask"], "3");
    assert!(
        !doc["plan"]["declined"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["what"] == "rps"),
        "{}",
        doc["plan"]["declined"]
    );
    assert_eq!(doc["kernel_release"], "5.15.0-91-generic");
    // Every remedy of every finding is acted on or declined.
    let addressed = |r: &Value| {
        ["actions", "declined"].iter().any(|k| {
            doc["plan"][k]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["remedy"] == *r)
        })
    };
    for f in doc["findings"].as_array().unwrap() {
        for r in f["remedies"].as_array().unwrap() {
            assert!(addressed(r), "{} {r}", f["id"]);
        }
    }
}

#[test]
fn capture_without_rates_or_flows_still_reports() {
    // A capture of the host files only: one stats sample, no -L.
    let dir = tempfile::Builder::new()
        .prefix("ck-doctor-capture-")
        .tempdir()
        .unwrap();
    for rel in [
        "proc/sys/net/netfilter/nf_conntrack_count",
        "proc/sys/net/netfilter/nf_conntrack_max",
        "proc/sys/net/netfilter/nf_conntrack_buckets",
        "proc/sys/kernel/osrelease",
        "proc/net/stat/nf_conntrack",
    ] {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(PathBuf::from(SAMPLE).join(rel), to).unwrap();
    }
    let r = example(
        "doctor",
        &["--capture", dir.path().to_str().unwrap(), "--json"],
    );
    let doc = json(&r);
    assert_eq!(doc["origin"]["kind"], "capture");
    assert!(doc["counters"]["window_secs"].is_null());
    assert!(doc["hotspots"].is_null());
    // 4,093 of 4,096 without rates: nearly full (warning); drops cannot
    // be judged without a window.
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(finding_ids(&doc), ["table-nearly-full"]);
    let notes = doc["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("no rates")),
        "{notes:?}"
    );
    // A broken stats.txt is a note, not a failure of the whole report.
    std::fs::write(dir.path().join("stats.txt"), "@ 1\nentries drop\nzz 1\n").unwrap();
    let r = example("doctor", &["--capture", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("stats.txt: line 3"), "{}", r.stdout);
    // An empty capture judges nothing: not "healthy".
    let empty = tempfile::Builder::new()
        .prefix("ck-doctor-empty-")
        .tempdir()
        .unwrap();
    let r = example("doctor", &["--capture", empty.path().to_str().unwrap()]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("nothing could be judged"), "{}", r.stderr);
}

/// Copies a directory tree (regular files and directories).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Runs an example; kills it and fails when it runs past `secs`.
fn example_within(name: &str, args: &[&str], secs: u64) -> Run {
    let mut child = Command::new(examples_dir().join(name))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run example");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() > secs {
            let _ = child.kill();
            panic!("{name} {args:?}: still running after {secs} s (a blocked read?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    run_cmd_output(child.wait_with_output().unwrap())
}

fn run_cmd_output(o: Output) -> Run {
    Run {
        code: o.status.code().expect("exit code (not killed by a signal)"),
        stdout: String::from_utf8(o.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(o.stderr).expect("UTF-8 stderr"),
    }
}

#[test]
fn hostile_capture_reports_escaped_and_degraded() {
    // The sample incident, with hostile additions: control characters in
    // meta.txt and in file names, a FIFO, links to endless or blocking
    // files, a sysctl.d file that overrides the plan's value.
    let dir = tempfile::Builder::new()
        .prefix("ck-doctor-hostile-")
        .tempdir()
        .unwrap();
    let cap = dir.path();
    copy_tree(Path::new(SAMPLE), cap);
    std::fs::write(
        cap.join("meta.txt"),
        "hostname=web\u{1b}]0;pwned\u{7}\ndescription=\u{1b}[2J\u{1b}[31mred\u{7}\rback\n\
         interval=1e300\n",
    )
    .unwrap();
    let fifo = cap.join("conntrack-C.txt");
    std::fs::remove_file(&fifo).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (rel, target) in [
        ("conntrack-S.txt", "/dev/zero"),
        ("proc/softirqs", "/proc/kmsg"),
    ] {
        std::fs::remove_file(cap.join(rel)).unwrap();
        std::os::unix::fs::symlink(target, cap.join(rel)).unwrap();
    }
    let sysctl_d = cap.join("etc/sysctl.d");
    std::fs::create_dir_all(&sysctl_d).unwrap();
    std::fs::write(
        sysctl_d.join("99-\u{1b}[31mlate\u{7}.conf"),
        "net.netfilter.nf_conntrack_max = 1\u{1b}[2J\n",
    )
    .unwrap();
    let bad = sysctl_d.join("98-\u{1b}]0;fifo\u{7}.conf");
    assert!(Command::new("mkfifo").arg(&bad).status().unwrap().success());
    let path = cap.to_str().unwrap();
    for (name, args) in [
        ("doctor", vec!["--capture", path]),
        ("plan", vec!["--capture", path]),
    ] {
        let r = example_within(name, &args, 120);
        let odd: Vec<char> = r
            .stdout
            .chars()
            .filter(|&c| c.is_control() && c != '\n')
            .collect();
        assert!(
            odd.is_empty(),
            "{name}: control characters {odd:?} in\n{}",
            r.stdout
        );
        assert!(
            !r.stderr.chars().any(|c| c.is_control() && c != '\n'),
            "{name}: {}",
            r.stderr
        );
        if name == "doctor" {
            assert_eq!(r.code, 2, "{}", r.stderr);
            assert!(
                r.stdout.contains("web\\u{1b}]0;pwned\\u{7}"),
                "{}",
                r.stdout
            );
            assert!(
                r.stdout.contains("conntrack-C.txt: not a regular file"),
                "{}",
                r.stdout
            );
            assert!(
                r.stdout
                    .contains("proc/softirqs: a symbolic link that leads out"),
                "{}",
                r.stdout
            );
        }
    }
}

#[test]
fn plan_formats_for_the_sample() {
    let r = example("plan", &["--sample", "--format", "sysctl"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("# SAMPLE INCIDENT — not this host"));
    let max: u64 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("net.netfilter.nf_conntrack_max = "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max in the sysctl file:\n{}", r.stdout));
    assert!(max > 4096, "the sample's table is full at 4,096: {max}");
    let r = example("plan", &["--capture", SAMPLE, "--format", "shell"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("#!/bin/sh\n# SAMPLE INCIDENT"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("set -eu"));
    let r = example("plan", &["--sample", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = json(&r);
    assert!(
        doc["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "raise-max")
    );
    // Only what the observed namespace and the workload may change.
    let r = example(
        "plan",
        &[
            "--sample",
            "--format",
            "json",
            "--scope",
            "namespace,workload",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = json(&r);
    let ids: Vec<&str> = doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"raise-max"), "{ids:?}");
    assert!(ids.contains(&"timeout:tcp_timeout_time_wait"), "{ids:?}");
    assert!(ids.contains(&"advice:keepalive"), "{ids:?}");
    for f in ["text", "markdown", "modprobe", "nft", "iptables"] {
        let r = example("plan", &["--sample", "--format", f]);
        assert_eq!(r.code, 0, "{f}: {}", r.stderr);
        assert!(r.stdout.contains("SAMPLE INCIDENT"), "{f}: unlabelled");
    }
}

#[test]
fn live_host_report() {
    if !live_ok("live_host_report") {
        return;
    }
    let r = example("doctor", &["--window", "1", "--no-sample"]);
    assert!((0..=2).contains(&r.code), "exit {}: {}", r.code, r.stderr);
    assert!(
        r.stdout.starts_with("conntrack doctor: this host\n"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("SAMPLE INCIDENT"));
    for section in [
        "== Table",
        "== Counters over",
        "== Findings",
        "== Tuning plan",
    ] {
        assert!(
            r.stdout.contains(section),
            "missing {section}:\n{}",
            r.stdout
        );
    }
    let r = example("doctor", &["--window", "0", "--json"]);
    assert!((0..=2).contains(&r.code), "exit {}: {}", r.code, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["origin"]["kind"], "live");
    assert_eq!(doc["origin"]["label"], "this host");
    assert!(doc["table"]["max"].as_u64().is_some());
    // Without /proc/modules (CONFIG_MODULES=n) every helper is built in:
    // none is proposed for unloading.
    if !std::path::Path::new("/proc/modules").exists() {
        let unloads: Vec<&Value> = doc["plan"]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"]["type"] == "unload_helpers")
            .collect();
        assert!(unloads.is_empty(), "{unloads:?}");
    }
    let expected = match doc["status"].as_str().unwrap() {
        "healthy" => 0,
        "warning" => 1,
        "critical" => 2,
        other => panic!("status {other}"),
    };
    assert_eq!(expected, r.code);
}

#[test]
fn live_namespace_with_known_flows() {
    if !live_ok("live_namespace_with_known_flows") {
        return;
    }
    if !live("live_namespace_with_known_flows", &[Need::Tool("nft")]) {
        return;
    }
    let ns = TestNetns::new("doctor");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink in the namespace");
    // Default mix: 60% TCP to 192.0.2.1, 30% UDP to 192.0.2.2, 10% ICMP,
    // none of them to or from an address of the namespace.
    let rep = fill(&mut ct, &FillOptions::new(3000)).expect("fill");
    assert_eq!(rep.created, 3000, "{rep:?}");
    // And five local connections this process owns: packets are tracked
    // once a ruleset uses conntrack.
    let st = ns
        .command("nft")
        .args([
            "add table inet t; add chain inet t c { type filter hook output priority 0; ct state \
             new,established counter; }",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let _local = Netns::named(ns.name())
        .run(|| {
            let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut kept = Vec::new();
            for _ in 0..5 {
                let c = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
                let (s, _) = server.accept().unwrap();
                kept.push((c, s));
            }
            Ok((server, kept))
        })
        .unwrap();
    let r = example(
        "doctor",
        &[
            "--netns",
            ns.name(),
            "--window",
            "0.5",
            "--json",
            "--no-sample",
        ],
    );
    assert!((0..=2).contains(&r.code), "exit {}: {}", r.code, r.stderr);
    assert!(
        r.stderr.is_empty(),
        "no progress bar off a terminal: {}",
        r.stderr
    );
    let doc = json(&r);
    assert_eq!(doc["origin"]["kind"], "live");
    assert_eq!(
        doc["origin"]["label"],
        format!("network namespace {}", ns.name())
    );
    assert_eq!(doc["table"]["count"], 3005);
    assert_eq!(doc["hotspots"]["flows"], 3005);
    assert_eq!(doc["table"]["init_netns"], false);
    let tables = doc["hotspots"]["tables"].as_array().unwrap();
    let dst = tables.iter().find(|t| t["kind"] == "dst_ip").unwrap();
    // Few distinct keys: counted exactly.
    assert_eq!(dst["ranking"], "exact");
    assert_eq!(dst["top"][0]["key"]["ip"], "192.0.2.1");
    assert_eq!(dst["top"][0]["count"], 1800);
    assert_eq!(dst["top"][1]["key"]["ip"], "192.0.2.2");
    assert_eq!(dst["top"][1]["count"], 900);
    // The bucket simulation hashes at most 65,536 buckets' share of the
    // flows: two nodes per flow hashed.
    let chains = &doc["chains"];
    let buckets = doc["table"]["buckets"].as_u64().unwrap();
    assert_eq!(chains["table_buckets"].as_u64(), Some(buckets));
    let share = chains["flow_share"].as_f64().unwrap();
    assert!(
        (share - (65536.0 / buckets as f64).min(1.0)).abs() < 1e-9,
        "{chains}"
    );
    let hashed = chains["nodes"].as_u64().unwrap() / 2;
    let want = 3005.0 * share;
    assert!(
        (hashed as f64 - want).abs() <= want * 0.2 + 20.0,
        "{hashed} flows hashed, about {want} expected"
    );
    // Who owns the flows: the five local connections are this process's;
    // the filled flows are forwarded (none has a local address) or ICMP.
    let owners = &doc["owners"];
    assert_eq!(owners["flows"], 3005, "{owners}");
    assert_eq!(owners["with_owner"], 5, "{owners}");
    assert_eq!(
        owners["by_process"][0]["pid"],
        std::process::id(),
        "{owners}"
    );
    assert_eq!(owners["by_process"][0]["flows"], 5, "{owners}");
    assert_eq!(owners["processes"], 1, "{owners}");
    let u = &owners["unattributed"];
    assert_eq!(u["without_ports"], 300, "{owners}");
    assert_eq!(u["forwarded"], 2700, "{owners}");
    assert_eq!(u["no_socket"], 0, "{owners}");
    // Counters count since the namespace was created.
    assert_eq!(doc["counters"]["epoch"], "namespace_creation");

    // The same namespace through a process in it (--pid).
    let sleeper = Reaped(
        ns.command("sleep")
            .arg("30")
            .spawn()
            .expect("sleep in the namespace"),
    );
    let pid = sleeper.0.id().to_string();
    // `ip netns exec` enters the namespace, then execs sleep: wait for the
    // exec, or the pid still shows the host's namespace.
    let comm = format!("/proc/{pid}/comm");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
        assert!(
            t0.elapsed().as_secs() < 10,
            "sleep did not start in the namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let r = example("doctor", &["--pid", &pid, "--window", "0", "--json"]);
    drop(sleeper);
    assert!((0..=2).contains(&r.code), "exit {}: {}", r.code, r.stderr);
    let doc = json(&r);
    assert_eq!(
        doc["origin"]["label"],
        format!("network namespace of pid {pid}")
    );
    assert_eq!(doc["table"]["count"], 3005);
    assert_eq!(doc["hotspots"]["flows"], 3005);
    assert_eq!(doc["owners"]["with_owner"], 5);

    // The text report of the same namespace shows the same top key, and
    // the owners.
    let r = example("doctor", &["--netns", ns.name(), "--window", "0"]);
    assert!((0..=2).contains(&r.code), "exit {}: {}", r.code, r.stderr);
    assert!(r.stdout.contains("  entries "), "{}", r.stdout);
    assert!(r.stdout.contains("  tcp 192.0.2.1:"), "{}", r.stdout);
    assert!(r.stdout.contains("== Who owns the flows"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("3,005 entries: 5 (0.2%) belong to a socket whose process is known"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("(pid {})", std::process::id())),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("2,700 (89.9%) forwarded"), "{}", r.stdout);
}

#[test]
fn without_privileges_analyses_what_proc_shows() {
    // setpriv (util-linux) drops the privileges.
    let test = "without_privileges_analyses_what_proc_shows";
    if !live_ok(test) || !live(test, &[Need::Tool("setpriv")]) {
        return;
    }
    let as_nobody = |args: &[&str]| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(examples_dir().join("doctor"))
            .args(args);
        run_cmd(cmd)
    };
    // This host: counters, sizing and host facts come from /proc, which
    // anyone may read; the report says what the dump would have added.
    let r = as_nobody(&["--window", "0.5"]);
    assert!((0..=2).contains(&r.code), "exit {}: {}", r.code, r.stderr);
    assert!(
        r.stdout.starts_with("conntrack doctor: this host\n"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("SAMPLE INCIDENT"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("NOT ANALYSED: the table's entries (a ctnetlink dump): needs CAP_NET_ADMIN"),
        "{}",
        r.stdout
    );
    for section in [
        "== Table",
        "== Counters over",
        "== Findings",
        "== Tuning plan",
    ] {
        assert!(
            r.stdout.contains(section),
            "missing {section}:\n{}",
            r.stdout
        );
    }
    assert!(
        !r.stdout.contains("== What the table holds"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("== Who owns the flows"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("statistics from /proc/net/stat/nf_conntrack (no privileges for ctnetlink)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("doctor: not analysed: the table's entries")
            && r.stderr.contains("hotspots"),
        "{}",
        r.stderr
    );
    let r = as_nobody(&["--window", "0", "--json"]);
    assert!((0..=2).contains(&r.code), "exit {}: {}", r.code, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["origin"]["kind"], "live");
    assert!(doc["table"]["count"].as_u64().is_some(), "{doc}");
    assert!(doc["table"]["max"].as_u64().is_some(), "{doc}");
    assert!(
        doc["counters"]["readings"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(doc["hotspots"].is_null() && doc["owners"].is_null() && doc["chains"].is_null());
    let unread = doc["unread"].as_array().expect("unread");
    assert_eq!(unread.len(), 1, "{doc}");
    assert_eq!(unread[0]["needs"], "CAP_NET_ADMIN (run as root)");
    let expected = match doc["status"].as_str().unwrap() {
        "healthy" => 0,
        "warning" => 1,
        "critical" => 2,
        other => panic!("status {other}"),
    };
    assert_eq!(expected, r.code);

    // Another namespace must be entered (CAP_SYS_ADMIN): nothing can be
    // read, so the labelled sample, or exit 5 with --no-sample.
    let ns = TestNetns::new("doctor-priv");
    let r = as_nobody(&["--netns", ns.name(), "--window", "0"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("hint: run as root"), "{}", r.stderr);
    assert!(r.stderr.contains("SAMPLE INCIDENT"), "{}", r.stderr);
    assert!(r.stdout.contains("SAMPLE INCIDENT — not this host"));
    assert!(r.stdout.contains("[CRITICAL] table-full"));
    let r = as_nobody(&["--netns", ns.name(), "--window", "0", "--json"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(json(&r)["origin"]["kind"], "sample");
    let r = as_nobody(&["--netns", ns.name(), "--window", "0", "--no-sample"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("no privileges"), "{}", r.stderr);
}

#[test]
fn capture_script_round_trip_in_a_namespace() {
    // The capture script needs the conntrack CLI.
    let test = "capture_script_round_trip_in_a_namespace";
    if !live_ok(test) || !live(test, &[Need::Tool("conntrack")]) {
        return;
    }
    let ns = TestNetns::new("capture");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink in the namespace");
    let rep = fill(&mut ct, &FillOptions::new(500)).expect("fill");
    assert_eq!(rep.created, 500, "{rep:?}");
    let dir = tempfile::Builder::new()
        .prefix("ck-doctor-script-")
        .tempdir()
        .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/capture.sh");
    let mut cmd = ns.command("sh");
    cmd.args([script, dir.path().to_str().unwrap(), "1"]);
    let r = run_cmd(cmd);
    assert_eq!(r.code, 0, "capture.sh: {}", r.stderr);
    let r = example(
        "doctor",
        &["--capture", dir.path().to_str().unwrap(), "--json"],
    );
    assert!((0..=2).contains(&r.code), "exit {}: {}", r.code, r.stderr);
    let doc = json(&r);
    assert_eq!(doc["origin"]["kind"], "capture");
    assert_eq!(doc["table"]["count"], 500);
    assert_eq!(doc["hotspots"]["flows"], 500, "conntrack -L parsed");
    assert!(
        !doc["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("skipped")),
        "{}",
        doc["notes"]
    );
    assert!(doc["counters"]["window_secs"].as_f64().unwrap() >= 1.0);
    assert_eq!(doc["table"]["init_netns"], false);
}
