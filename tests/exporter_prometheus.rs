//! The `exporter` example scraped by a real Prometheus server.
//!
//! A fresh network namespace gets N flows; the exporter serves it on a
//! free loopback port; a `prometheus` (Debian package `prometheus`) with a
//! temporary config and storage scrapes it every second on loopback; the
//! values are then checked through Prometheus's HTTP query API: the entry
//! count, per-CPU counters typed as counters (metadata API) whose
//! `increase()` follows new inserts, findings, and the hotspot cardinality
//! cap. Both processes are stopped and the files removed at the end.
//!
//! Skips (printing why) without root or without `prometheus` in `PATH`,
//! unless `CONNTRACK_KIT_REQUIRE_LIVE=1` (CI), where it fails. Every wait
//! is bounded.

use conntrack_core::testkit::{self, Need, Reaped, TestNetns, find_in_path, flow, udp};
use conntrack_kit::ct_core::Flow;
use conntrack_kit::netlink::fill::{FillOptions, fill};
use conntrack_kit::netlink::{Conntrack, Netns};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------

mod support;

/// The prometheus binary when the test can run (root for network
/// namespaces and ctnetlink, and `prometheus` in `PATH`, Debian package
/// `prometheus`); panics when it cannot but must.
fn live(test: &str) -> Option<PathBuf> {
    if !testkit::live(test, &[Need::Root, Need::Tool("prometheus")]) {
        return None;
    }
    Some(find_in_path("prometheus").expect("prometheus in PATH"))
}

/// Builds the exporter example in this test's target directory and
/// profile (a no-op when fresh) and returns its path.
fn exporter_bin() -> PathBuf {
    support::examples_dir(&["exporter"]).join("exporter")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One HTTP/1.0 GET on loopback (no chunked encoding); the body.
fn http_get(port: u16, path_and_query: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prometheus API: `data` of a successful answer.
fn api(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"));
    assert_eq!(status, 200, "GET {path}: {body}");
    assert_eq!(v["status"], "success", "GET {path}: {body}");
    v["data"].clone()
}

/// Instant query: (labels, value) per series.
fn query(port: u16, q: &str) -> Vec<(Value, f64)> {
    let data = api(port, &format!("/api/v1/query?query={}", urlencode(q)));
    data["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{q}: no result: {data}"))
        .iter()
        .map(|r| {
            let v = r["value"][1]
                .as_str()
                .unwrap_or("NaN")
                .parse()
                .unwrap_or(f64::NAN);
            (r["metric"].clone(), v)
        })
        .collect()
}

/// Polls `f` every 250 ms until it returns `Some`, at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn start_prometheus(bin: &Path, dir: &Path, target_port: u16) -> (Reaped, u16) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: conntrack\n    scrape_interval: 1s\n    \
             scrape_timeout: 1s\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        ),
    )
    .unwrap();
    // A port picked free can be taken before Prometheus binds it: retry.
    for _ in 0..3 {
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=1h")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("prometheus.log")).unwrap(),
            ))
            .spawn()
            .expect("spawn prometheus");
        let mut p = Reaped(child);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = p.0.try_wait() {
                break;
            }
            if http_get(port, "/-/ready").is_ok_and(|(s, _)| s == 200) {
                return (p, port);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        drop(p);
    }
    panic!(
        "prometheus did not become ready:\n{}",
        std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
    );
}

fn unreplied_udp(src: &str, dst: &str, sport: u16) -> Flow {
    let mut f = flow(udp(src, sport, dst, 53));
    f.timeout = Some(600);
    f
}

#[test]
fn prometheus_scrapes_the_exporter() {
    let Some(prom) = live("prometheus_scrapes_the_exporter") else {
        return;
    };
    let t_start = Instant::now();
    let exporter = exporter_bin();

    // The table: 150 synthetic flows (distinct sources) and 150 unreplied
    // UDP flows from one source (a scan suspect).
    let ns = TestNetns::new("exlive-prom");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("ctnetlink");
    assert_eq!(fill(&mut ct, &FillOptions::new(150)).unwrap().created, 150);
    for i in 0..150u16 {
        ct.create(&unreplied_udp("203.0.113.9", "198.51.100.53", 40_000 + i))
            .unwrap();
    }
    const N: u64 = 300;
    assert_eq!(u64::from(ct.count().unwrap()), N);

    let dir = tempfile::Builder::new()
        .prefix("ck-exlive-prom-")
        .tempdir()
        .unwrap();

    // The exporter, on a free port it picks itself and prints.
    let mut child = Command::new(&exporter)
        .args(["--netns", ns.name(), "--listen", "127.0.0.1:0"])
        .args(["--top-k", "3", "--min-refresh", "0.5", "--dump-every", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("exporter.log")).unwrap(),
        ))
        .spawn()
        .expect("spawn exporter");
    let stdout = child.stdout.take().unwrap();
    let exporter_proc = Reaped(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
    let exp_port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "exporter did not print its address ({line:?}):\n{}",
                std::fs::read_to_string(dir.path().join("exporter.log")).unwrap_or_default()
            )
        });
    let (status, body) = http_get(exp_port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(body.contains(&format!("conntrack_entries {N}\n")), "{body}");
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert_eq!(http_get(exp_port, "/nope").unwrap().0, 404);

    let (prom_proc, port) = start_prometheus(&prom, dir.path(), exp_port);

    // The target is up.
    wait_for("the target to be up", Duration::from_secs(30), || {
        let data = api(port, "/api/v1/targets");
        let t = data["activeTargets"].as_array()?.first()?.clone();
        (t["health"] == "up").then_some(())
    });

    // The entry count, as Prometheus stored it.
    let entries = wait_for("conntrack_entries", Duration::from_secs(20), || {
        query(port, "conntrack_entries").first().map(|r| r.1)
    });
    assert_eq!(entries, N as f64);
    assert_eq!(query(port, "conntrack_up")[0].1, 1.0);

    // Per-CPU counters are typed counter (metadata API), one series per
    // CPU, and their total matches the kernel's.
    let meta = api(port, "/api/v1/metadata?metric=conntrack_stat_insert");
    let types: Vec<&str> = meta["conntrack_stat_insert"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(types, ["counter"], "metadata: {meta}");
    let meta = api(port, "/api/v1/metadata?metric=conntrack_entries");
    assert_eq!(meta["conntrack_entries"][0]["type"], "gauge", "{meta}");
    let cpus = query(port, "conntrack_stat_insert_total");
    let kernel_cpus = ct.stats_cpu().unwrap();
    assert_eq!(
        cpus.len(),
        kernel_cpus.len(),
        "one series per CPU: {cpus:?}"
    );
    let kernel_total = |ct: &mut Conntrack| -> f64 {
        ct.stats_cpu()
            .unwrap()
            .iter()
            .map(|c| c.insert().unwrap_or(0) as f64)
            .sum()
    };
    assert_eq!(
        query(port, "sum(conntrack_stat_insert_total)")[0].1,
        kernel_total(&mut ct)
    );

    // New inserts: the count follows, and the counter's increase() sees
    // them (a function that only works on counters' semantics).
    let more = FillOptions::new(50).start(150);
    assert_eq!(fill(&mut ct, &more).unwrap().created, 50);
    let want = kernel_total(&mut ct);
    wait_for(
        "the new count and insert total",
        Duration::from_secs(20),
        || {
            let e = query(port, "conntrack_entries").first()?.1;
            let s = query(port, "sum(conntrack_stat_insert_total)").first()?.1;
            (e == (N + 50) as f64 && s == want).then_some(())
        },
    );
    let inc = query(port, "sum(increase(conntrack_stat_insert_total[1m]))");
    assert!(
        inc.first().is_some_and(|r| r.1 >= 50.0),
        "increase() over the inserts: {inc:?}"
    );
    let rate = query(port, "sum(rate(conntrack_stat_insert_total[1m]))");
    assert!(rate.first().is_some_and(|r| r.1 > 0.0), "rate(): {rate:?}");

    // Findings: the scan suspect, labelled by id and severity.
    let f = wait_for("the scan-suspects finding", Duration::from_secs(20), || {
        let r = query(port, "conntrack_finding{id=\"scan-suspects\"}");
        r.first().cloned()
    });
    assert_eq!(f.0["severity"], "warning");
    assert_eq!(f.1, 1.0);

    // Hotspots: never more than --top-k series per key, and the heaviest
    // source is the scanner.
    let per_key = query(port, "count by (key) (conntrack_hotspot_entries)");
    assert!(!per_key.is_empty());
    for (labels, n) in &per_key {
        assert!(*n <= 3.0, "more than --top-k series for {labels}: {n}");
    }
    assert_eq!(
        query(port, "count(conntrack_hotspot_entries{key=\"src_ip\"})")[0].1,
        3.0
    );
    let top = query(
        port,
        "topk(1, conntrack_hotspot_entries{key=\"unreplied_src\"})",
    );
    assert_eq!(top[0].0["value"], "203.0.113.9", "{top:?}");
    assert_eq!(top[0].1, 150.0);
    let mem = query(port, "conntrack_memory_estimate_bytes");
    assert!(mem.first().is_some_and(|r| r.1 > 0.0), "{mem:?}");

    drop(prom_proc);
    drop(exporter_proc);
    eprintln!(
        "prometheus_scrapes_the_exporter: passed in {:.1}s",
        t_start.elapsed().as_secs_f64()
    );
}
