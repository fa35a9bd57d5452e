//! Tests of the `watch`, `top` and `exporter` examples as an operator runs
//! them: `--help`, bad arguments, a missing namespace, missing privileges,
//! and live runs in fresh network namespaces.
//!
//! The examples are built by the test (`cargo build --examples`, a no-op
//! when they are fresh) in the test's own target directory and profile.
//! Tests that need root (namespaces, ctnetlink) print why and pass without
//! it, unless `CONNTRACK_KIT_REQUIRE_LIVE=1` (CI), where they fail.

use conntrack_core::testkit::{self, Need, Reaped, TestNetns, flow, tcp, tcp_state};
use conntrack_kit::ct_core::{Flow, Status, TcpState};
use conntrack_kit::netlink::fill::{FillOptions, fill};
use conntrack_kit::netlink::{Conntrack, Netns};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------

mod support;

/// Whether a live test can run (root: network namespaces and ctnetlink);
/// panics when it cannot but must.
fn live(test: &str) -> bool {
    testkit::live(test, &[Need::Root])
}

/// The directory holding the built `watch`, `top` and `exporter`.
fn examples_dir() -> &'static Path {
    support::examples_dir(&["watch", "top", "exporter"])
}

fn example(name: &str) -> Command {
    let path = examples_dir().join(name);
    assert!(path.exists(), "{} was not built", path.display());
    let mut c = Command::new(path);
    c.env_remove("RUST_BACKTRACE");
    c
}

/// Runs a command with a deadline (kills it after `limit`).
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn_retrying(&mut cmd);
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let _ = waiter.join();
            out.expect("wait")
        }
        Err(_) => {
            // Kill this child only, by its pid.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            let out = rx.recv().expect("output after kill").expect("wait");
            panic!(
                "command did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A TCP flow `src:sport -> dst:dport` in ESTABLISHED, 600 s timeout.
fn tcp_flow(src: &str, dst: &str, sport: u16, dport: u16) -> Flow {
    let mut f = flow(tcp(src, sport, dst, dport));
    f.status |= Status::SEEN_REPLY | Status::ASSURED;
    f.protoinfo = tcp_state(TcpState::ESTABLISHED);
    f.timeout = Some(600);
    f
}

// ---------------------------------------------------------------------
// Without root
// ---------------------------------------------------------------------

#[test]
fn help_explains_each_example() {
    for (name, words) in [
        (
            "watch",
            &[
                "--netns",
                "--pid",
                "--interval",
                "--iterations",
                "--history",
                "rising",
                "wrap",
                "NO_COLOR",
            ][..],
        ),
        (
            "top",
            &[
                "--netns",
                "--pid",
                "--iterations",
                "--once",
                "events",
                "resync",
                "container",
                "nf_conntrack_events=2",
                "--resync-every",
            ][..],
        ),
        (
            "exporter",
            &[
                "--netns",
                "--pid",
                "--listen",
                "--top-k",
                "127.0.0.1",
                "conntrack_entries",
                "counter",
            ][..],
        ),
    ] {
        let out = run_bounded(
            {
                let mut c = example(name);
                c.arg("--help");
                c
            },
            Duration::from_secs(20),
        );
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{name} --help: {:?}", out.status);
        for w in words {
            assert!(stdout.contains(w), "{name} --help lacks {w:?}:\n{stdout}");
        }
    }
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("watch", &["--interval", "0"], "--interval"),
        ("watch", &["--interval", "soon"], "not a duration"),
        ("watch", &["--interval", "2h"], "use 100ms to 1h"),
        ("watch", &["--iterations", "0"], "--iterations"),
        ("watch", &["--count", "0"], "--iterations"),
        (
            "watch",
            &["--netns", "a", "--pid", "1"],
            "cannot be used with",
        ),
        ("watch", &["--source", "carrier-pigeon"], "--source"),
        ("top", &["--rows", "0"], "--rows"),
        (
            "top",
            &["--iterations", "2", "--once"],
            "cannot be used with",
        ),
        ("top", &["--owners-every", "0.1"], "out of range"),
        ("top", &["--frobnicate"], "unexpected argument"),
        ("exporter", &["--top-k", "101"], "--top-k"),
        ("exporter", &["--top-k", "0"], "--top-k"),
        ("exporter", &["--listen", "localhost"], "--listen"),
        ("exporter", &["--dump-every=-1"], "--dump-every"),
        ("exporter", &["--interval", "10ms"], "use 100ms to 1h"),
    ];
    for (name, args, expect) in cases {
        let mut c = example(name);
        c.args(*args);
        let out = run_bounded(c, Duration::from_secs(20));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name} {args:?}: {stderr}");
        assert!(
            stderr.contains(expect),
            "{name} {args:?}: stderr lacks {expect:?}:\n{stderr}"
        );
    }
}

// A missing namespace or process (exit 4) and a malformed namespace name
// (exit 3) are checked for every example in examples_family.rs.

// ---------------------------------------------------------------------
// Live
// ---------------------------------------------------------------------

/// Spawns `cmd`, retrying while exec fails with ETXTBSY: a binary just
/// copied (see [`world_runnable`]) can still be open for writing in a child
/// that another test thread forked but has not yet exec'd (the fd is
/// close-on-exec, so it goes away when that child execs).
fn spawn_retrying(cmd: &mut Command) -> std::process::Child {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match cmd.spawn() {
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r.expect("spawn"),
        }
    }
}

/// Copies an example into `dir` (made world-readable) where an
/// unprivileged user can run it (the target directory may be under a
/// private home).
fn world_runnable(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dst = dir.join(name);
    if !dst.exists() {
        std::fs::copy(examples_dir().join(name), &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dst
}

#[test]
fn missing_privileges_are_explained() {
    if !live("missing_privileges_are_explained") {
        return;
    }
    let ns = TestNetns::new("exlive-priv");
    let dir = tempfile::Builder::new()
        .prefix("ck-exlive-")
        .tempdir()
        .unwrap();
    // The exporter is not here: without privileges it serves what /proc
    // gives and says what is missing (tests/exporter_all_netns.rs runs it
    // without CAP_NET_ADMIN and CAP_SYS_ADMIN).
    for name in ["watch", "top"] {
        let mut c = Command::new(world_runnable(dir.path(), name));
        // As nobody: no capabilities (std also drops supplementary groups).
        c.uid(65534).gid(65534);
        c.args(["--netns", ns.name()]);
        if name == "watch" {
            c.args(["--iterations", "1"]);
        } else {
            c.arg("--once");
        }
        let out = run_bounded(c, Duration::from_secs(20));
        let stderr = text(&out.stderr);
        // 5: no privileges.
        assert_eq!(out.status.code(), Some(5), "{name} as nobody: {stderr}");
        assert!(
            stderr.contains("hint: run as root") && stderr.contains("CAP_SYS_ADMIN"),
            "{name} as nobody: {stderr}"
        );
    }
    // In its own namespace, watch falls back to /proc without privileges.
    let mut c = Command::new(world_runnable(dir.path(), "watch"));
    c.uid(65534).gid(65534);
    c.args([
        "--iterations",
        "1",
        "--interval",
        "200ms",
        "--color",
        "never",
    ]);
    let out = run_bounded(c, Duration::from_secs(20));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "watch as nobody: {stderr}");
    assert!(
        stderr.contains("reading /proc/net/stat/nf_conntrack instead"),
        "{stderr}"
    );
    assert!(stdout.contains("[/proc, "), "{stdout}");
    assert!(stdout.contains("insert_failed"), "{stdout}");
}

#[test]
fn watch_prints_rates_of_a_fresh_namespace() {
    if !live("watch_prints_rates_of_a_fresh_namespace") {
        return;
    }
    let ns = TestNetns::new("exlive-watch");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    let r = fill(&mut ct, &FillOptions::new(100)).expect("fill");
    assert_eq!(r.created, 100);

    // Flows keep being inserted while watch samples: `insert` rises.
    let netns = Netns::named(ns.name());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let feeder = std::thread::spawn(move || {
        let mut ct = Conntrack::open_in(&netns).expect("ctnetlink");
        let mut i = 0u16;
        let t0 = Instant::now();
        while !stop2.load(std::sync::atomic::Ordering::Relaxed)
            && t0.elapsed() < Duration::from_secs(30)
        {
            ct.create(&tcp_flow("192.0.2.1", "198.51.100.1", 10_000 + i, 443))
                .expect("create");
            i += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        i
    });
    let mut c = example("watch");
    c.args([
        "--netns",
        ns.name(),
        "--iterations",
        "2",
        "--interval",
        "500ms",
        "--color",
        "never",
        "--per-cpu",
    ]);
    let out = run_bounded(c, Duration::from_secs(30));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let created = feeder.join().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    eprintln!("{stdout}");
    assert!(out.status.success(), "watch: {stderr}\n{stdout}");
    assert!(created > 0);

    let reports: Vec<&str> = stdout
        .split("\n\n")
        .filter(|b| b.contains(&format!("netns {}", ns.name())))
        .collect();
    assert_eq!(reports.len(), 2, "two reports:\n{stdout}");
    for rep in &reports {
        assert!(rep.contains("[netlink, "), "{rep}");
        assert!(rep.contains("entries "), "{rep}");
        let insert = rep
            .lines()
            .find(|l| l.starts_with("insert "))
            .unwrap_or_else(|| panic!("no insert row:\n{rep}"));
        let cols: Vec<&str> = insert.split_whitespace().collect();
        let rate: f64 = cols[1].parse().unwrap();
        assert!(rate > 0.0, "insert rate should be positive: {insert}");
        assert!(
            insert.ends_with("rising") || insert.ends_with("NEW") || insert.ends_with("UP"),
            "insert should be marked rising: {insert}"
        );
        // Counters that do not move are not marked.
        let drop = rep.lines().find(|l| l.starts_with("drop ")).unwrap();
        assert!(drop.split_whitespace().nth(1) == Some("0"), "{drop}");
        assert!(!drop.contains("rising"), "{drop}");
        // One column per CPU (--per-cpu).
        assert!(rep.contains("cpu0/s"), "{rep}");
        // The counters the kernel no longer maintains are hidden.
        assert!(!rep.lines().any(|l| l.starts_with("searched ")), "{rep}");
    }
    // The first report's insert total covers the 100 filled flows.
    let since_boot: u64 = reports[0]
        .lines()
        .find(|l| l.starts_with("insert "))
        .and_then(|l| l.split_whitespace().rev().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("since boot");
    assert!(since_boot >= 100, "{}", reports[0]);
}

/// Spawns `top` with piped output and waits for its "mirrored" line.
fn spawn_top(args: &[&str]) -> (std::process::Child, std::thread::JoinHandle<String>) {
    let mut c = example("top");
    let mut child = c
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn top");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("mirrored") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("top did not start: {}", reader.join().unwrap());
    }
    (child, reader)
}

fn wait_top(
    mut child: std::process::Child,
    reader: std::thread::JoinHandle<String>,
    limit: Duration,
) -> (String, String) {
    use std::io::Read;
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            let (o, e) = (out.join().unwrap(), reader.join().unwrap());
            assert!(st.success(), "top failed: {st:?}\n{e}\n{o}");
            return (o, e);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "top did not finish within {limit:?}: {}",
                out.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn frames(stdout: &str) -> Vec<&str> {
    stdout.split("conntrack top - ").skip(1).collect()
}

/// The `N` of "... - N entries" in a frame's header.
fn frame_entries(frame: &str) -> u64 {
    let head = frame.lines().next().unwrap();
    head.trim_end_matches(" entries")
        .rsplit(" - ")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no entry count in {head:?}"))
}

#[test]
fn top_follows_flows_as_they_are_created() {
    if !live("top_follows_flows_as_they_are_created") {
        return;
    }
    let ns = TestNetns::new("exlive-top");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    // 40 flows before top starts (the initial dump)...
    for i in 0..40u16 {
        ct.create(&tcp_flow("192.0.2.10", "198.51.100.2", 20_000 + i, 5432))
            .expect("create");
    }
    let (child, reader) = spawn_top(&[
        "--netns",
        ns.name(),
        "--iterations",
        "3",
        "--interval",
        "1",
        "--rows",
        "3",
        "--owners-every",
        "0",
        "--color",
        "never",
    ]);
    // ...then 60 while it runs (events), 35 of them from one source.
    for i in 0..60u16 {
        let src = if i < 35 { "192.0.2.7" } else { "192.0.2.8" };
        ct.create(&tcp_flow(src, "198.51.100.1", 30_000 + i, 8443))
            .expect("create");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (stdout, _stderr) = wait_top(child, reader, Duration::from_secs(30));
    eprintln!("{stdout}");
    let fr = frames(&stdout);
    assert_eq!(fr.len(), 3, "three frames:\n{stdout}");
    let last = fr[2];
    // Every event was applied: the mirror holds exactly the table.
    assert_eq!(frame_entries(last), 100, "{last}");
    assert_eq!(ct.count().unwrap(), 100);
    assert!(last.contains("since start: 60 new, 0 destroy"), "{last}");
    // Some frame saw the NEW events at a positive rate.
    assert!(
        fr.iter().any(|f| {
            f.lines()
                .find(|l| l.starts_with("events/s: new "))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|r| r > 0.0)
        }),
        "no positive NEW rate:\n{stdout}"
    );
    // The sections rank by entries: 40 from .10, 35 from .7.
    let section = |f: &str, title: &str| -> Vec<String> {
        f.lines()
            .skip_while(|l| !l.starts_with(title))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let src = section(last, "SOURCES");
    assert!(
        src[0].starts_with("192.0.2.10 ") && src[0].contains(" 40 "),
        "{src:?}"
    );
    assert!(
        src[1].starts_with("192.0.2.7 ") && src[1].contains(" 35 "),
        "{src:?}"
    );
    assert!(
        src[2].starts_with("192.0.2.8 ") && src[2].contains(" 25 "),
        "{src:?}"
    );
    let ports = section(last, "DESTINATION PORTS");
    assert!(
        ports[0].starts_with("tcp/8443 ") && ports[0].contains(" 60 "),
        "{ports:?}"
    );
    assert!(
        ports[1].starts_with("tcp/5432 ") && ports[1].contains(" 40 "),
        "{ports:?}"
    );
    let states = section(last, "STATES");
    assert!(
        states[0].starts_with("tcp ESTABLISHED ") && states[0].contains(" 100 "),
        "{states:?}"
    );
    let dsts = section(last, "DESTINATIONS");
    assert!(dsts[0].starts_with("198.51.100.1 "), "{dsts:?}");
    assert!(!stdout.contains("EVENTS LOST"), "{stdout}");
}

#[test]
fn top_reports_lost_events_and_resyncs() {
    if !live("top_reports_lost_events_and_resyncs") {
        return;
    }
    let ns = TestNetns::new("exlive-loss");
    let (child, reader) = spawn_top(&[
        "--netns",
        ns.name(),
        "--iterations",
        "5",
        "--interval",
        "1",
        "--owners-every",
        "0",
        "--rcvbuf",
        "1024",
        "--color",
        "never",
    ]);
    // A burst far larger than a tiny receive buffer holds.
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    let r = fill(&mut ct, &FillOptions::new(20_000)).expect("fill");
    assert_eq!(r.created, 20_000);
    let (stdout, _stderr) = wait_top(child, reader, Duration::from_secs(40));
    eprintln!("{stdout}");
    let fr = frames(&stdout);
    assert_eq!(fr.len(), 5, "{stdout}");
    assert!(
        stdout.contains("EVENTS LOST") && stdout.contains("resynced from a dump: +"),
        "loss and resync should be reported:\n{stdout}"
    );
    // After the resyncs the mirror is exact again.
    assert_eq!(frame_entries(fr[4]), 20_000, "{}", fr[4]);
}

#[test]
fn pid_selects_the_namespace_of_a_process() {
    if !live("pid_selects_the_namespace_of_a_process") {
        return;
    }
    let ns = TestNetns::new("exlive-pid");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    for i in 0..7u16 {
        ct.create(&tcp_flow("192.0.2.20", "198.51.100.3", 40_000 + i, 80))
            .expect("create");
    }
    // A process living in the namespace.
    let sleeper = Reaped(
        ns.command("sleep")
            .arg("30")
            .spawn()
            .expect("ip netns exec sleep"),
    );
    let pid = sleeper.0.id().to_string();
    // `ip netns exec` execs the program: the pid is the sleeper's once it
    // is in the namespace.
    let want = std::fs::metadata(format!("/var/run/netns/{}", ns.name()))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    let t0 = Instant::now();
    while std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .ok()
        != Some(want)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "sleeper not in the namespace"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = example("top");
    c.args([
        "--pid",
        &pid,
        "--once",
        "--interval",
        "0.3",
        "--owners-every",
        "0",
        "--color",
        "never",
    ]);
    let out = run_bounded(c, Duration::from_secs(20));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains(&format!("netns of pid {pid}")), "{stdout}");
    assert_eq!(frame_entries(frames(&stdout)[0]), 7, "{stdout}");

    let mut c = example("watch");
    c.args([
        "--pid",
        &pid,
        "--iterations",
        "1",
        "--interval",
        "200ms",
        "--color",
        "never",
    ]);
    let out = run_bounded(c, Duration::from_secs(20));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("netns of pid {pid}  entries 7 ")),
        "{stdout}"
    );
    drop(sleeper);
}
