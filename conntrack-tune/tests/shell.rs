//! The rendered shell script, run for real against a temporary root
//! (`CONNTRACK_KIT_ROOT`), never against the host: syntax (`sh -n`),
//! idempotence, before/after output, verification, dry run, and hostile
//! interface names and values reproduced byte for byte without being
//! interpreted.

use conntrack_analyze::capture::{self, LoadOptions};
use conntrack_tune::plan::*;
use conntrack_tune::report::{Origin, Report};
use conntrack_tune::{Policy, render};
use proptest::prelude::*;
use std::path::Path;
use std::process::{Command, Output};

fn run(script: &str, root: &Path, dry: bool) -> Output {
    let dir = root.join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("plan.sh");
    std::fs::write(&file, script).unwrap();
    Command::new("sh")
        .arg(&file)
        .current_dir(&dir)
        .env("CONNTRACK_KIT_ROOT", root)
        .env("CONNTRACK_KIT_DRY_RUN", if dry { "1" } else { "0" })
        .output()
        .unwrap()
}

fn syntax_ok(script: &str) -> bool {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("s.sh");
    std::fs::write(&f, script).unwrap();
    Command::new("sh")
        .arg("-n")
        .arg(&f)
        .status()
        .unwrap()
        .success()
}

fn put(root: &Path, host_path: &str, content: &str) {
    let p = root.join(host_path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn get(root: &Path, host_path: &str) -> String {
    std::fs::read_to_string(root.join(host_path.trim_start_matches('/'))).unwrap()
}

/// The plan of the TIME_WAIT-dominated load balancer scenario: raise max,
/// shorten TIME_WAIT to 30 s, resize the buckets, persist in sysctl.d and
/// modprobe.d.
fn scenario_plan() -> Plan {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/time-wait-lb");
    let c = capture::load(&dir, &LoadOptions::default()).unwrap();
    Report::build(
        &c.observation,
        Origin::capture("time-wait-lb"),
        &Policy::default(),
    )
    .unwrap()
    .plan
}

#[test]
fn applies_verifies_and_is_idempotent() {
    let p = scenario_plan();
    let script = render::shell_script(&p).unwrap();
    assert!(syntax_ok(&script));
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let max = sysctl_path(KEY_MAX);
    let buckets = sysctl_path(KEY_BUCKETS);
    let tw = sysctl_path("net.netfilter.nf_conntrack_tcp_timeout_time_wait");
    let est = sysctl_path("net.netfilter.nf_conntrack_tcp_timeout_established");
    put(root, &max, "262144\n");
    put(root, &buckets, "262144\n");
    put(root, &tw, "120\n");
    put(root, &est, "432000\n");

    // Dry run changes nothing.
    let o = run(&script, root, true);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!("raise-max: before: {max} = 262144")),
        "{out}"
    );
    assert!(out.contains("raise-max: would write:"), "{out}");
    assert_eq!(get(root, &max), "262144\n");
    assert!(!root.join("etc/sysctl.d/90-conntrack-kit.conf").exists());

    // Real run against the temporary root.
    let o = run(&script, root, false);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let new_max = match p.action("raise-max").unwrap().kind {
        ActionKind::SetMax { max } => max,
        ref k => panic!("{k:?}"),
    };
    assert_eq!(get(root, &max), format!("{new_max}\n"));
    assert_eq!(get(root, &tw), "30\n");
    assert!(
        out.contains(&format!("raise-max: after: {max} = {new_max}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("raise-max: verify ok: {max} = {new_max}")),
        "{out}"
    );
    assert!(out.contains("conntrack-kit: done"));
    let installed = get(root, "/etc/sysctl.d/90-conntrack-kit.conf");
    assert_eq!(installed, render::sysctl_d(&p).unwrap().unwrap().content);
    assert!(root.join("etc/modprobe.d/conntrack-kit.conf").exists());

    // Second run: nothing to do.
    let o = run(&script, root, false);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(o.status.success(), "{out}");
    assert!(!out.contains(": after:"), "{out}");
    assert!(out.contains("raise-max: already:"), "{out}");
    assert!(out.contains("persist:sysctl: already installed"), "{out}");
}

#[test]
fn verification_failure_exits_non_zero() {
    let p = scenario_plan();
    let script = render::shell_script(&p).unwrap();
    let t = tempfile::tempdir().unwrap();
    // Only max exists: the other writes report missing files and fail.
    put(t.path(), &sysctl_path(KEY_MAX), "262144\n");
    let o = run(&script, t.path(), false);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("missing:"), "{out}");
    assert!(out.contains("verify FAILED"), "{out}");
}

/// RPS on a hostile interface name, and a hostile mask on eth0's second
/// queue: both reach the script as data, never as code.
fn hostile_plan(iface: &str, value: &str) -> Plan {
    let rps = |iface: &str, queue: u32, mask: &str| {
        Action::new(
            ActionKind::EnableRps {
                iface: iface.to_string(),
                queues: vec![QueueMask {
                    queue,
                    mask: mask.into(),
                    cpus: vec![0, 1, 2, 3],
                }],
            },
            Priority::P1,
            Scope::Interface,
            format!("hostile {iface} {value}"),
        )
    };
    {
        let mut plan = Plan::default();
        plan.actions = vec![
            rps(iface, 0, "f"),
            rps("eth0", 1, value),
            Action::new(
                ActionKind::Advice {
                    topic: AdviceTopic::Keepalive,
                },
                Priority::P2,
                Scope::Workload,
                format!("hostile {value}"),
            ),
        ];
        plan
    }
}

fn hostile() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "(-|--|\\$\\(touch PWNED\\)|`touch PWNED`|'|\"|\\\\|;|&|\\||<|>|\\*|\\?|~|#| |\t|\n|\\$HOME|\\$\\{x\\}|%s|%n|[a-z0-9]|\u{e9}|\u{2603}){1,10}",
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn hostile_names_and_values_are_quoted(iface in hostile(), value in hostile()) {
        prop_assume!(iface != "." && iface != ".." && iface != "eth0");
        // A mask of only zeros reads as the current "0": nothing to write.
        prop_assume!(value.chars().any(|c| !matches!(c, '0' | ',' | ' ' | '\n')));
        let p = hostile_plan(&iface, &value);
        let script = render::shell_script(&p).unwrap();
        prop_assert!(syntax_ok(&script), "sh -n failed:\n{}", script);

        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let rps = rps_path(&iface, 0);
        let eth = rps_path("eth0", 1);
        put(root, &rps, "0\n");
        put(root, &eth, "0\n");

        let o = run(&script, root, true);
        let out = o.stdout;
        let want = format!("rps:eth0: would write: {eth} = {value}\n");
        prop_assert!(out.windows(want.len()).any(|w| w == want.as_bytes()),
            "dry-run echo of the value differs:\n{}", String::from_utf8_lossy(&out));
        let want = format!("rps:{iface}: before: {rps} = 0\n");
        prop_assert!(out.windows(want.len()).any(|w| w == want.as_bytes()),
            "echo of the interface path differs:\n{}", String::from_utf8_lossy(&out));

        let _ = run(&script, root, false);
        prop_assert_eq!(get(root, &eth), format!("{value}\n"));
        prop_assert_eq!(rps_file_norm(&get(root, &rps)), "f");
        // Nothing was executed.
        prop_assert!(!root.join("run/PWNED").exists());
        prop_assert!(!root.join("PWNED").exists());
    }
}

fn rps_file_norm(s: &str) -> String {
    conntrack_tune::rps::normalize_mask(s)
}

#[test]
fn path_tricks_are_refused() {
    for bad in ["../../etc", "a/b", ".", ".."] {
        let p = hostile_plan(bad, "1");
        assert!(render::shell_script(&p).is_err(), "{bad}");
    }
    let p = hostile_plan("eth1", "a\0b");
    assert!(render::shell_script(&p).is_err());
}

#[cfg(unix)]
#[test]
fn masked_files_are_not_written_through() {
    let p = scenario_plan();
    let script = render::shell_script(&p).unwrap();
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    put(root, &sysctl_path(KEY_MAX), "262144\n");
    put(root, &sysctl_path(KEY_BUCKETS), "262144\n");
    put(
        root,
        &sysctl_path("net.netfilter.nf_conntrack_tcp_timeout_time_wait"),
        "120\n",
    );
    put(
        root,
        &sysctl_path("net.netfilter.nf_conntrack_tcp_timeout_established"),
        "432000\n",
    );
    let target = root.join("masked-target");
    std::fs::write(&target, "keep\n").unwrap();
    std::fs::create_dir_all(root.join("etc/sysctl.d")).unwrap();
    std::os::unix::fs::symlink(&target, root.join("etc/sysctl.d/90-conntrack-kit.conf")).unwrap();
    let o = run(&script, root, false);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("not replaced, a symlink"), "{out}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
}
