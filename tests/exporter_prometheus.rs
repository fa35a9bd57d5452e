//! The `exporter` example scraped by a real Prometheus server.
//!
//! A fresh network namespace gets N flows; the exporter serves it on a
//! free loopback port; a `prometheus` (Debian package `prometheus`) with a
//! temporary config and storage scrapes it every second on loopback while
//! 64 idle clients (connect, send nothing) and 64 slow ones (one header
//! byte every 3 s) hold connections to the exporter; the values are then
//! checked through Prometheus's HTTP query API: every scrape succeeded,
//! the entry count, per-CPU counters typed as counters (metadata API)
//! whose `increase()` follows new inserts, node_exporter's families,
//! findings, hotspots (only certified values: the one real heavy source,
//! not the noise). `promtool check metrics` passes on the text format.
//! At the end the namespace is deleted and `conntrack_up` turns 0. Both
//! processes are stopped and the files removed at the end.
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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    http_get_with(port, path_and_query, "")
}

/// The same with extra header lines (each ending in CRLF).
fn http_get_with(port: u16, path_and_query: &str, headers: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path_and_query} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n"
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

/// Clients that hold connections to the exporter until `stop`: `idle`
/// ones connect and send nothing, `slow` ones send one byte of a request
/// every 3 s. Each reconnects when the exporter closes it; `opened`
/// counts connections made.
fn hostile_clients(
    port: u16,
    idle: usize,
    slow: usize,
    stop: &Arc<AtomicBool>,
    opened: &Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..idle + slow)
        .map(|i| {
            let (stop, opened) = (stop.clone(), opened.clone());
            let is_slow = i >= idle;
            std::thread::spawn(move || {
                let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut sent = 0;
                    let mut last = Instant::now() - Duration::from_secs(3);
                    let mut buf = [0u8; 256];
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        if is_slow && last.elapsed() >= Duration::from_secs(3) {
                            // Never the last byte: the request never ends.
                            let b = request[sent % (request.len() - 1)];
                            if s.write_all(&[b]).is_err() {
                                break;
                            }
                            sent += 1;
                            last = Instant::now();
                        }
                        match s.read(&mut buf) {
                            Ok(0) => break, // closed by the exporter
                            Ok(_) => {}
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => break,
                        }
                    }
                }
            })
        })
        .collect()
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
    let ns_name = ns.name().to_string();
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
        .args(["--top-k", "3", "--interval", "0.5", "--dump-every", "1"])
        .args(["--hotspot-min-entries", "10"])
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
    // Bound before collecting: the port answers at once; /healthz turns
    // 200 after the first pass.
    wait_for("/healthz 200", Duration::from_secs(20), || {
        http_get(exp_port, "/healthz")
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    let entries_line = format!("conntrack_entries{{netns=\"{ns_name}\"}} {N}\n");
    let (status, body) = http_get(exp_port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(body.contains(&entries_line), "{body}");
    assert!(!body.contains("# EOF"), "text 0.0.4 without Accept");
    let (_, om) = http_get_with(
        exp_port,
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0\r\n",
    )
    .unwrap();
    assert!(om.ends_with("# EOF\n"), "OpenMetrics when asked for");
    assert!(om.contains(&entries_line), "{om}");
    assert_eq!(http_get(exp_port, "/nope").unwrap().0, 404);

    // promtool check metrics on the text format (installed with the
    // prometheus package).
    if let Some(promtool) = find_in_path("promtool") {
        let mut p = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("promtool check metrics: clean");
    }

    let (prom_proc, port) = start_prometheus(&prom, dir.path(), exp_port);

    // The target is up.
    wait_for("the target to be up", Duration::from_secs(30), || {
        let data = api(port, "/api/v1/targets");
        let t = data["activeTargets"].as_array()?.first()?.clone();
        (t["health"] == "up").then_some(())
    });

    // 64 idle and 64 slow clients hold connections from now on.
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let clients = hostile_clients(exp_port, 64, 64, &stop, &opened);
    let hostile_from = Instant::now();
    wait_for("128 hostile connections", Duration::from_secs(20), || {
        (opened.load(Ordering::Relaxed) >= 128).then_some(())
    });

    // The entry count, as Prometheus stored it.
    let q_entries = format!("conntrack_entries{{netns=\"{ns_name}\"}}");
    let entries = wait_for("conntrack_entries", Duration::from_secs(20), || {
        query(port, &q_entries).first().map(|r| r.1)
    });
    assert_eq!(entries, N as f64);
    assert_eq!(query(port, "conntrack_up")[0].1, 1.0);
    // node_exporter's families, same names and types.
    assert_eq!(query(port, "node_nf_conntrack_entries")[0].1, N as f64);
    let meta = api(
        port,
        "/api/v1/metadata?metric=node_nf_conntrack_stat_insert",
    );
    assert_eq!(
        meta["node_nf_conntrack_stat_insert"][0]["type"], "gauge",
        "{meta}"
    );

    // Per-CPU counters are typed counter (metadata API), one series per
    // CPU, and their total matches the kernel's.
    // (OpenMetrics: the family is named without `_total`.)
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
            let e = query(port, &q_entries).first()?.1;
            let s = query(port, "sum(conntrack_stat_insert_total)").first()?.1;
            (e == (N + 50) as f64 && s == want).then_some(())
        },
    );
    let inc = query(port, "sum(increase(conntrack_stat_insert_total[1m]))");
    assert!(
        inc.first().is_some_and(|r| r.1 >= 50.0),
        "increase() over the inserts: {inc:?}"
    );

    // Findings: the scan suspect, labelled by id and severity.
    let f = wait_for("the scan-suspects finding", Duration::from_secs(20), || {
        let r = query(port, "conntrack_finding{id=\"scan-suspects\"}");
        r.first().cloned()
    });
    assert_eq!(f.0["severity"], "warning");
    assert_eq!(f.0["netns"], ns_name.as_str());

    // Hotspots: only certified values. 150 of the sources hold one entry
    // each (noise): none is exported; the scanner is, at rank 1.
    let src = query(port, "conntrack_hotspot_entries{key=\"src_ip\"}");
    assert_eq!(src.len(), 1, "noise exported as hotspots: {src:?}");
    assert_eq!(src[0].0["value"], "203.0.113.9");
    assert_eq!(src[0].0["rank"], "1");
    assert_eq!(src[0].1, 150.0);
    let per_key = query(port, "count by (key) (conntrack_hotspot_entries)");
    for (labels, n) in &per_key {
        assert!(*n <= 3.0, "more than --top-k series for {labels}: {n}");
    }
    let top = query(port, "conntrack_hotspot_entries{key=\"unreplied_src\"}");
    assert_eq!(top[0].0["value"], "203.0.113.9", "{top:?}");

    // Every scrape made while the hostile clients held connections
    // succeeded: at least 20 of them.
    let scrapes = wait_for("20 scrapes under load", Duration::from_secs(60), || {
        let secs = hostile_from.elapsed().as_secs().max(1);
        let n = query(
            port,
            &format!("count_over_time(up{{job=\"conntrack\"}}[{secs}s])"),
        )
        .first()?
        .1;
        (n >= 20.0).then_some(secs)
    });
    let min_up = query(
        port,
        &format!("min_over_time(up{{job=\"conntrack\"}}[{scrapes}s])"),
    );
    let n_scrapes = query(
        port,
        &format!("count_over_time(up{{job=\"conntrack\"}}[{scrapes}s])"),
    );
    assert_eq!(min_up[0].1, 1.0, "a scrape failed under load");
    let reconnects = opened.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    eprintln!(
        "under 64 idle + 64 slow clients: {} of {} scrapes up ({reconnects} hostile connections \
         opened: each closed at the whole-request deadline)",
        n_scrapes[0].1, n_scrapes[0].1
    );

    // The namespace is deleted: up turns 0, the error is counted by kind,
    // and its values are no longer exported (not stale ones as fresh).
    drop(ct);
    drop(ns);
    let q_up = format!("conntrack_up{{netns=\"{ns_name}\"}}");
    wait_for(
        "up 0 after the namespace is gone",
        Duration::from_secs(20),
        || (query(port, &q_up).first()?.1 == 0.0).then_some(()),
    );
    let gone = query(port, "conntrack_exporter_errors_total{kind=\"netns_gone\"}");
    assert!(gone[0].1 > 0.0, "{gone:?}");
    wait_for(
        "no entries series after the deletion",
        Duration::from_secs(20),
        || query(port, &q_entries).is_empty().then_some(()),
    );
    assert_eq!(http_get(exp_port, "/healthz").unwrap().0, 503);

    drop(prom_proc);
    drop(exporter_proc);
    eprintln!(
        "prometheus_scrapes_the_exporter: passed in {:.1}s",
        t_start.elapsed().as_secs_f64()
    );
}
