//! What every example shares, checked through the built binaries: the
//! exit-code table in `--help` (one meaning per code), exit 3 for bad
//! arguments and 4 for a missing namespace or process, one duration
//! syntax, and for the refreshing tools (`watch`, `top`) on a terminal:
//! `q` and Ctrl-C quit with the terminal's mode restored, lines fit its
//! width, and colour follows `--color` and `NO_COLOR`.
//!
//! Terminals are pseudo-terminals the test opens (`openpty`), made the
//! controlling terminal of the example. Tests that need root (ctnetlink
//! in a fresh namespace) print why and pass without it, unless
//! `CONNTRACK_KIT_REQUIRE_LIVE=1`, where they fail. Every wait is on a
//! condition (output seen, process exited), bounded in time.

use conntrack_core::testkit::{Need, Reaped, TestNetns, live};
use conntrack_kit::ct_core::L3Family;
use conntrack_kit::netlink::fill::{FillOptions, fill};
use conntrack_kit::netlink::{Conntrack, Netns};
use nix::sys::termios::LocalFlags;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

const ALL: [&str; 7] = [
    "doctor", "plan", "compare", "watch", "top", "exporter", "fill",
];
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/sample-incident");

fn examples_dir() -> &'static Path {
    support::examples_dir(&ALL)
}

/// The example with the arguments that make it run against a target
/// (compare needs its first capture; fill a count).
fn example(name: &str) -> Command {
    let mut c = Command::new(examples_dir().join(name));
    c.env_remove("RUST_BACKTRACE").env_remove("NO_COLOR");
    if name == "compare" {
        c.arg(SAMPLE);
    }
    c
}

/// Runs a command with a deadline (kills it, by its pid, after `limit`).
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
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

fn run(name: &str, args: &[&str]) -> (i32, String, String) {
    let mut c = example(name);
    c.args(args);
    let out = run_bounded(c, Duration::from_secs(30));
    (
        out.status.code().expect("exit code, not a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------
// Exit codes and arguments
// ---------------------------------------------------------------------

/// The meaning of each code, as the one table in examples/common/exit.rs
/// words it (an example may add a remark after it).
const TABLE: [(i32, &str); 7] = [
    (0, "success"),
    (1, "warning findings (no critical one)"),
    (2, "critical findings"),
    (
        3,
        "bad command line (unknown option, bad value, conflicting options)",
    ),
    (
        4,
        "target not found (network namespace, process, capture directory)",
    ),
    (
        5,
        "the target could not be looked at: no privileges (ctnetlink needs CAP_NET_ADMIN, \
         entering another network namespace CAP_SYS_ADMIN), or no conntrack",
    ),
    (
        6,
        "other errors (netlink, unreadable or malformed capture, output)",
    ),
];

/// The rows of the "Exit codes:" section of a help text, continuation
/// lines joined.
fn exit_rows(help: &str) -> Vec<(i32, String)> {
    let mut rows: Vec<(i32, String)> = Vec::new();
    for line in help
        .lines()
        .skip_while(|l| *l != "Exit codes:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
    {
        let t = line.trim_start();
        match t.split_once("  ") {
            Some((code, text)) if line.starts_with("  ") && !line.starts_with("   ") => {
                rows.push((code.parse().expect("a code"), text.to_string()));
            }
            _ => {
                let last = rows.last_mut().expect("a row before a continuation");
                last.1.push(' ');
                last.1.push_str(t);
            }
        }
    }
    rows
}

#[test]
fn help_lists_exit_codes_from_the_one_table() {
    for name in ALL {
        let (code, help, err) = run(name, &["--help"]);
        assert_eq!(code, 0, "{name} --help: {err}");
        let rows = exit_rows(&help);
        let codes: Vec<i32> = rows.iter().map(|r| r.0).collect();
        // Every example tells bad arguments, a missing target, missing
        // privileges and other errors apart.
        for c in [3, 4, 5, 6] {
            assert!(
                codes.contains(&c),
                "{name} --help lacks exit code {c}:\n{help}"
            );
        }
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "{name}: {codes:?}");
        for (c, text) in &rows {
            let (_, meaning) = TABLE
                .iter()
                .find(|(t, _)| t == c)
                .expect("a code of the table");
            assert!(
                text.starts_with(meaning),
                "{name}: code {c} says {text:?}, the table says {meaning:?}"
            );
        }
        // Only doctor judges.
        assert_eq!(codes.contains(&1), name == "doctor", "{name}: {codes:?}");
    }
}

/// The README's section on the examples promises what this file checks:
/// the same target options everywhere, and one table of exit codes.
#[test]
fn readme_promise_holds() {
    let readme = include_str!("../README.md");
    let section = &readme[readme
        .find("share one\ntable of exit codes")
        .expect("README promises one table of exit codes")..];
    let codes: Vec<i32> = section
        .lines()
        .skip_while(|l| !l.starts_with("| code |"))
        .skip(2)
        .take_while(|l| l.starts_with("| "))
        .map(|l| l[2..].split(' ').next().unwrap().parse().expect("a code"))
        .collect();
    assert_eq!(codes, TABLE.map(|(c, _)| c), "README's exit-code table");
    for name in ALL {
        let (_, help, _) = run(name, &["--help"]);
        for opt in ["--netns <NAME>", "--pid <PID>"] {
            assert!(help.contains(opt), "{name} --help lacks {opt}");
        }
        let captures = help.contains("--capture <DIR>") && help.contains("--sample");
        assert_eq!(captures, matches!(name, "doctor" | "plan"), "{name}");
    }
}

#[test]
fn bad_arguments_exit_3_everywhere() {
    for name in ALL {
        for args in [
            &["--no-such-option"][..],
            &["--netns", "a/b"],
            &["--netns", ".."],
        ] {
            let (code, out, err) = run(name, args);
            assert_eq!(code, 3, "{name} {args:?}: {err}");
            assert!(out.is_empty(), "{name} {args:?} printed: {out}");
            assert!(!err.is_empty(), "{name} {args:?}: no message");
        }
        let (code, _, err) = run(name, &["--netns", "x", "--pid", "1"]);
        assert_eq!(code, 3, "{name}: {err}");
        assert!(err.contains("cannot be used with"), "{name}: {err}");
    }
    let (code, _, err) = run("fill", &["--count", "1"]);
    assert_eq!(code, 3, "fill without a namespace: {err}");
    assert!(err.contains("--netns") && err.contains("--pid"), "{err}");
    let (code, _, err) = run("fill", &["--netns", "x", "--timeout", "1.5"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("whole seconds"), "{err}");
}

#[test]
fn durations_have_one_syntax_everywhere() {
    let flags: &[(&str, &str)] = &[
        ("doctor", "--window"),
        ("plan", "--window"),
        ("compare", "--window"),
        ("watch", "--interval"),
        ("watch", "--history"),
        ("top", "--interval"),
        ("top", "--owners-every"),
        ("top", "--resync-every"),
        ("exporter", "--interval"),
        ("exporter", "--dump-every"),
        ("exporter", "--request-timeout"),
        ("fill", "--timeout"),
    ];
    for (name, flag) in flags {
        let (code, _, err) = run(name, &[flag, "soon"]);
        assert_eq!(code, 3, "{name} {flag} soon: {err}");
        assert!(
            err.contains("not a duration") && err.contains("500ms, 2s, 1m"),
            "{name} {flag}: {err}"
        );
        let (code, _, err) = run(name, &[flag, "-1s"]);
        assert_eq!(code, 3, "{name} {flag} -1s: {err}");
        let (code, _, err) = run(name, &[flag, "2d"]);
        if *flag != "--timeout" {
            assert_eq!(code, 3, "{name} {flag} 2d: {err}");
            assert!(err.contains("out of range: use "), "{name} {flag}: {err}");
        }
        // Each help names the flag's value a DURATION.
        let (_, help, _) = run(name, &["--help"]);
        assert!(
            help.contains(&format!("{flag} <DURATION>")),
            "{name} --help: {flag}"
        );
    }
}

#[test]
fn missing_namespace_or_process_exits_4_everywhere() {
    let ns = format!("ck-no-such-ns-{}", std::process::id());
    for name in ALL {
        let (code, out, err) = run(name, &["--netns", &ns]);
        assert_eq!(code, 4, "{name} --netns {ns}: {err}");
        assert!(out.is_empty(), "{name}: {out}");
        assert!(
            err.contains(&format!("network namespace \"{ns}\" does not exist"))
                && err.contains("ip netns list"),
            "{name}: {err}"
        );
        let (code, _, err) = run(name, &["--pid", "4000000000"]);
        assert_eq!(code, 4, "{name} --pid: {err}");
        assert!(
            err.contains("process 4000000000 does not exist"),
            "{name}: {err}"
        );
    }
    for name in ["doctor", "plan"] {
        let (code, _, err) = run(name, &["--capture", "/nonexistent/capture"]);
        assert_eq!(code, 4, "{name}: {err}");
    }
    let (code, _, err) = run("compare", &["/nonexistent/capture"]);
    assert_eq!(code, 4, "compare: {err}");
}

// ---------------------------------------------------------------------
// Terminals
// ---------------------------------------------------------------------

/// A pseudo-terminal of `cols` columns.
struct Pty {
    master: OwnedFd,
    /// Kept open by the test until the end, so that the terminal's mode
    /// can be read after the example exited.
    slave: Option<OwnedFd>,
}

impl Pty {
    fn open(cols: u16) -> Pty {
        let ws = nix::pty::Winsize {
            ws_row: 50,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let p = nix::pty::openpty(Some(&ws), None).expect("openpty");
        Pty {
            master: p.master,
            slave: Some(p.slave),
        }
    }

    /// The terminal's local flags (ICANON, ECHO, ...) now.
    fn lflags(&self) -> LocalFlags {
        let slave = self.slave.as_ref().expect("the terminal is open");
        nix::sys::termios::tcgetattr(slave)
            .expect("tcgetattr")
            .local_flags
    }
}

/// An example running on a pseudo-terminal (stdin, stdout and stderr;
/// its controlling terminal), its output collected as it comes.
struct OnTerminal {
    pty: Pty,
    child: Reaped,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl OnTerminal {
    fn spawn(inner: Command, cols: u16) -> OnTerminal {
        let pty = Pty::open(cols);
        // setsid(1) starts a session whose controlling terminal is the one
        // on stdin (`--ctty`), then execs the example in place (the child
        // is no process group leader, so setsid does not fork).
        let mut cmd = Command::new("setsid");
        cmd.arg("--ctty")
            .arg(inner.get_program())
            .args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = inner.get_current_dir() {
            cmd.current_dir(d);
        }
        let io = || {
            let slave = pty.slave.as_ref().expect("the terminal is open");
            Stdio::from(slave.try_clone().expect("dup the terminal"))
        };
        cmd.stdin(io())
            .stdout(io())
            .stderr(io())
            .env("TERM", "xterm");
        let child = Reaped(cmd.spawn().expect("spawn on a terminal"));
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut master = File::from(pty.master.try_clone().expect("dup the master"));
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every descriptor of the terminal is closed.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        OnTerminal {
            pty,
            child,
            output,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output satisfies `cond`.
    fn wait_for(&self, what: &str, limit: Duration, cond: impl Fn(&str) -> bool) {
        let t0 = Instant::now();
        while !cond(&self.text()) {
            assert!(
                t0.elapsed() < limit,
                "no {what} within {limit:?}; the terminal shows:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_keys(&self, keys: &[u8]) {
        let mut master = File::from(self.pty.master.try_clone().expect("dup the master"));
        master.write_all(keys).expect("type on the terminal");
    }

    /// Waits for the exit (bounded) and returns its code.
    fn wait_exit(&mut self, limit: Duration) -> i32 {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.0.try_wait().expect("wait") {
                return st.code().expect("an exit code, not a signal");
            }
            assert!(
                t0.elapsed() < limit,
                "did not exit within {limit:?}; the terminal shows:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes the terminal and returns everything written to it.
    fn finish(mut self) -> String {
        // With the example gone and this last descriptor of the terminal
        // closed, the reader sees EIO.
        self.pty.slave = None;
        if let Some(r) = self.reader.take() {
            r.join().expect("reader");
        }
        self.text()
    }
}

/// Whether `s` holds an SGR (colour or bold) escape sequence.
fn has_sgr(s: &str) -> bool {
    s.split("\x1b[").skip(1).any(|rest| {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
        end.is_some_and(|i| rest[i..].starts_with('m'))
    })
}

/// What was drawn from the first frame on: messages on stderr before it
/// (which the first redraw clears) are not frames.
fn frames(s: &str) -> &str {
    s.find("\x1b[H\x1b[2J").map_or(s, |i| &s[i..])
}

/// The lines a terminal shows: escape sequences removed, CR LF ends.
fn screen_lines(s: &str) -> Vec<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(|c: char| c.is_ascii_alphabetic())
                .map_or(r.len(), |e| e + 1);
            rest = &r[end..];
        }
    }
    out.push_str(rest);
    out.split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

#[test]
fn watch_on_a_terminal_quits_on_q_and_ctrl_c_and_fits_its_width() {
    for (keys, how) in [(&b"q"[..], "q"), (&b"\x03"[..], "Ctrl-C")] {
        let mut cmd = example("watch");
        cmd.args(["--interval", "200ms"]);
        let mut t = OnTerminal::spawn(cmd, 40);
        t.wait_for("a report", Duration::from_secs(20), |s| {
            s.contains("counter ") && s.contains("drop ")
        });
        // Raw mode while it runs: no echo, no line editing.
        let raw = t.pty.lflags();
        assert!(
            !raw.intersects(LocalFlags::ICANON | LocalFlags::ECHO),
            "not raw: {raw:?}"
        );
        t.type_keys(keys);
        let code = t.wait_exit(Duration::from_secs(10));
        assert_eq!(code, 0, "watch after {how}:\n{}", t.text());
        let restored = t.pty.lflags();
        assert!(
            restored.contains(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG),
            "terminal mode not restored after {how}: {restored:?}"
        );
        let shown = t.finish();
        assert!(shown.contains("\x1b[2J"), "redrawn in place: {shown:?}");
        for line in screen_lines(frames(&shown)) {
            assert!(
                line.chars().count() <= 40,
                "wider than the terminal: {line:?}"
            );
        }
        // Cut, not wrapped: the header line's start is there.
        assert!(
            screen_lines(&shown)
                .iter()
                .any(|l| l.starts_with("counter ")),
            "{shown}"
        );
    }
}

#[test]
fn colour_follows_no_color_and_the_terminal() {
    let colours = |env_no_color: Option<&str>, color: &str| -> bool {
        let mut cmd = example("watch");
        cmd.args(["--interval", "200ms", "--iterations", "1", "--color", color]);
        if let Some(v) = env_no_color {
            cmd.env("NO_COLOR", v);
        }
        let mut t = OnTerminal::spawn(cmd, 120);
        assert_eq!(t.wait_exit(Duration::from_secs(20)), 0, "{}", t.text());
        let shown = t.finish();
        assert!(shown.contains("since boot"), "{shown}");
        has_sgr(&shown)
    };
    assert!(colours(None, "auto"), "a terminal is coloured by default");
    assert!(!colours(Some("1"), "auto"), "NO_COLOR=1 turns colour off");
    // https://no-color.org: set and not empty; empty is as if unset.
    assert!(colours(Some(""), "auto"), "an empty NO_COLOR is no request");
    // A command-line flag overrides the environment.
    assert!(colours(Some("1"), "always"));
    assert!(!colours(None, "never"));

    // Not a terminal: no colour, no redraw, whole lines.
    let (code, out, err) = run("watch", &["--interval", "200ms", "--iterations", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\x1b'), "escapes off a terminal: {out:?}");
    assert!(out.contains("since boot  status"), "{out}");
    let (code, out, err) = run(
        "watch",
        &[
            "--interval",
            "200ms",
            "--iterations",
            "1",
            "--color",
            "always",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(has_sgr(&out) && !out.contains("\x1b[2J"), "{out:?}");
}

// ---------------------------------------------------------------------
// Live
// ---------------------------------------------------------------------

/// What the live tests here need.
fn live_ok(test: &str) -> bool {
    live(
        test,
        &[
            Need::Root,
            Need::Tool("ip"),
            Need::Path("/proc/sys/net/netfilter/nf_conntrack_max"),
        ],
    )
}

#[test]
fn top_on_a_terminal_says_how_counts_were_obtained_and_quits_on_q() {
    if !live_ok("top_on_a_terminal_says_how_counts_were_obtained_and_quits_on_q") {
        return;
    }
    let ns = TestNetns::new("family-top");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    // 50 entries before top starts.
    assert_eq!(fill(&mut ct, &FillOptions::new(50)).unwrap().created, 50);
    let mut cmd = example("top");
    cmd.args([
        "--netns",
        ns.name(),
        "--interval",
        "300ms",
        "--owners-every",
        "0",
        "--resync-every",
        "1s",
    ]);
    let mut t = OnTerminal::spawn(cmd, 100);
    t.wait_for("a frame", Duration::from_secs(20), |s| {
        s.contains("- 50 entries")
    });
    let shown = t.text();
    assert!(
        shown.contains("counts: a dump at start (50 entries at "),
        "{shown}"
    );
    // With the kernel's default (2), the entries older than top may send
    // no events, and the frame says so.
    let ns_events = ns
        .command("cat")
        .arg("/proc/sys/net/netfilter/nf_conntrack_events")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if ns_events == "2" {
        assert!(
            screen_lines(&shown)
                .iter()
                .any(|l| l.starts_with("partial for the 50 entries older than top")),
            "{shown}"
        );
    } else {
        eprintln!("nf_conntrack_events={ns_events}: no partial view expected");
    }
    // The kernel's table empties; whether the entries send DESTROY events
    // or not, top shows it by the next resync at the latest.
    ct.flush(L3Family::UNSPEC).expect("flush");
    t.wait_for("the emptied table", Duration::from_secs(20), |s| {
        s.rsplit("conntrack top - ")
            .next()
            .is_some_and(|f| f.contains("- 0 entries"))
    });
    t.type_keys(b"q");
    assert_eq!(t.wait_exit(Duration::from_secs(10)), 0, "{}", t.text());
    let restored = t.pty.lflags();
    assert!(
        restored.contains(LocalFlags::ICANON | LocalFlags::ECHO),
        "terminal mode not restored: {restored:?}"
    );
    let shown = t.finish();
    for line in screen_lines(frames(&shown)) {
        assert!(
            line.chars().count() <= 100,
            "wider than the terminal: {line:?}"
        );
    }
}

#[test]
fn compare_puts_a_capture_beside_a_live_namespace() {
    if !live_ok("compare_puts_a_capture_beside_a_live_namespace") {
        return;
    }
    let ns = TestNetns::new("family-cmp");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    assert_eq!(fill(&mut ct, &FillOptions::new(20)).unwrap().created, 20);
    let (code, out, err) = run("compare", &["--netns", ns.name(), "--window", "0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("network namespace {}", ns.name())),
        "{out}"
    );
    let (code, out, err) = run(
        "compare",
        &["--netns", ns.name(), "--window", "0", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(doc.is_object(), "{doc}");
    // A second capture and a live side are one too many.
    let (code, _, err) = run("compare", &[SAMPLE, "--netns", ns.name()]);
    assert_eq!(code, 3, "{err}");
}
