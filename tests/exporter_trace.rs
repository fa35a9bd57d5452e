//! The exporter's traced drops, live (features `exporter`, `trace`,
//! `lab`): `exporter --netns ROUTER --trace` watches an incident lab
//! router where two clients race for the same MASQUERADE port
//! (`udp-snat-race`: unresolved clashes, each counted in `drop` and
//! `insert_failed`). The exporter starts before the lab's traffic
//! (`Scenario::start_with`); once the traffic stops and the router's
//! counters are at rest, a scrape must show
//! `conntrack_drops_traced_total{reason="unresolved_clash"}` equal to the
//! router's `drop` and `insert_failed` (from the same scrape's
//! `conntrack_stat_*_total` and from ctnetlink), no per-flow label, and
//! pass `promtool check metrics`.
//!
//! Skips (printing why) without root, `ip`, `nft`, BTF or `promtool`,
//! unless `CONNTRACK_KIT_REQUIRE_LIVE=1`.

use conntrack_core::testkit::{self, Need};
use conntrack_kit::ct_core::Counter;
use conntrack_kit::netlink::lab::{Scenario, StartOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

/// Kills the exporter when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map_or(out.clone(), |(_, b)| b.to_owned()))
}

/// The sum of the samples of `name` whose labels contain all of `with`.
fn sum(body: &str, name: &str, with: &[&str]) -> Option<u64> {
    let mut found = None;
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = l.rsplit_once(' ')?;
        let metric = series.split('{').next()?;
        if metric == name && with.iter().all(|w| series.contains(w)) {
            *found.get_or_insert(0) += value.parse::<f64>().ok()? as u64;
        }
    }
    found
}

#[test]
fn the_exporter_counts_traced_clashes_as_the_kernel_counts_them() {
    let test = "the_exporter_counts_traced_clashes_as_the_kernel_counts_them";
    if !testkit::live(
        test,
        &[
            Need::Root,
            Need::Tool("ip"),
            Need::Tool("nft"),
            Need::Tool("promtool"),
            Need::Path("/sys/kernel/btf/vmlinux"),
        ],
    ) {
        return;
    }
    let bin = support::examples_dir_with(&["exporter"], &["trace"]).join("exporter");
    let scenario = Scenario::find("udp-snat-race").expect("scenario");
    let mut exporter: Option<(Reaped, u16)> = None;
    let started = scenario.start_with(&StartOptions::default(), |lab| {
        let mut child = Command::new(&bin)
            .args([
                "--netns",
                lab.router(),
                "--trace",
                "--listen",
                "127.0.0.1:0",
                "--interval",
                "200ms",
                "--no-hotspots",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the exporter");
        // Both pipes are read to their end on threads of their own (the
        // exporter must never meet a closed pipe).
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("exporter: {l}");
                    let _ = tx.send(l);
                }
            });
        }
        drop(tx);
        let wait = |what: &str| -> String {
            loop {
                match rx.recv_timeout(Duration::from_secs(120)) {
                    Ok(l) if l.contains(what) => return l,
                    Ok(_) => {}
                    Err(e) => panic!("the exporter never said {what:?}: {e}"),
                }
            }
        };
        let line = wait("listening on");
        let port: u16 = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        // Attached before any packet of the lab: every drop is traced.
        let err = wait("drop tracer");
        assert!(err.contains("attached"), "{err}");
        exporter = Some((Reaped(child), port));
    });
    let mut run = match started {
        Ok(r) => r,
        Err(e) if e.is_unsupported() => {
            println!("SKIP {test}: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let (_child, port) = exporter.expect("the exporter started");
    run.stop_traffic().expect("stop the traffic");
    // At rest: the router's counters unchanged over a scrape whose traced
    // count equals them (each scrape reflects the tracer's records so
    // far; the counts catch up within the tracer's polling).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (body, drops) = loop {
        let before = run.delta(Counter::Drop).expect("router counters");
        let body = get(port).expect("scrape");
        let after = run.delta(Counter::Drop).expect("router counters");
        let traced = sum(
            &body,
            "conntrack_drops_traced_total",
            &["reason=\"unresolved_clash\""],
        );
        // The scrape's own kernel counter (collected every 200 ms) too.
        let kernel = sum(&body, "conntrack_stat_drop_total", &[]);
        if before == after && traced == Some(after) && kernel == Some(after) {
            break (body, after);
        }
        assert!(
            Instant::now() < deadline,
            "traced {traced:?}, router drop {before} -> {after}; the scrape's drop families:\n{}",
            body.lines()
                .filter(|l| l.contains("drops_traced") || l.contains("feature"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let failed = run.delta(Counter::InsertFailed).expect("router counters");
    run.stop().expect("stop the scenario");
    println!("router: drop {drops}, insert_failed {failed}");
    assert!(drops >= 20, "the lab's condition: at least 20 clashes");
    assert_eq!(failed, drops, "an unresolved clash counts both");
    assert_eq!(
        sum(&body, "conntrack_stat_drop_total", &[]),
        Some(drops),
        "the same scrape's kernel counter"
    );
    for reason in ["table_full", "chain_too_long", "dying"] {
        assert_eq!(
            sum(
                &body,
                "conntrack_drops_traced_total",
                &[&format!("reason=\"{reason}\"")]
            ),
            Some(0),
            "{reason} starts at 0 and stays there"
        );
    }
    assert_eq!(
        sum(&body, "conntrack_drops_traced_lost_total", &[]),
        Some(0)
    );
    assert!(body.contains("conntrack_exporter_feature{feature=\"trace\"} 1"));
    for l in body
        .lines()
        .filter(|l| l.starts_with("conntrack_drops_traced_total{"))
    {
        let labels = l
            .split('{')
            .nth(1)
            .and_then(|r| r.split('}').next())
            .unwrap();
        let names: Vec<&str> = labels
            .split(',')
            .filter_map(|kv| kv.split('=').next())
            .collect();
        assert_eq!(names, ["netns", "reason"], "no per-flow labels: {l}");
    }
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
