//! Load on the `exporter` example: 500 concurrent clients for 60 s (250
//! scraping `/metrics` every 2 s each, 125 idle and 125 slow holding
//! connections), sampling the exporter's threads and resident memory
//! every second. Asserts that every scrape was answered and that threads
//! and memory stay bounded; prints the numbers recorded in BENCHMARKS.md.
//!
//! Ignored by default (a minute long): run it by hand, as root or not (it
//! serves this host's table, from /proc without CAP_NET_ADMIN):
//!
//! ```text
//! cargo test --test exporter_load -- --ignored --nocapture
//! ```

use conntrack_core::testkit::Reaped;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod support;

fn status_field(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
#[ignore = "a minute of load; run by hand (see the module docs)"]
fn five_hundred_clients_for_a_minute() {
    let bin = support::examples_dir(&["exporter"]).join("exporter");
    let mut child = Command::new(bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "1s",
            "--dump-every",
            "5s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    let pid = child.id();
    let _guard = Reaped(child);
    let port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("address line");

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, holds) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let max_latency_us = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for i in 0..500 {
        let (stop, ok, failed, holds, lat) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            holds.clone(),
            max_latency_us.clone(),
        );
        clients.push(std::thread::spawn(move || {
            // Spread the start over the first 2 s.
            std::thread::sleep(Duration::from_millis((i * 4) as u64));
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                if i < 250 {
                    let t = Instant::now();
                    let mut body = String::new();
                    let r = s
                        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                        .and_then(|_| {
                            s.set_read_timeout(Some(Duration::from_secs(10)))?;
                            s.read_to_string(&mut body)
                        });
                    if r.is_ok() && body.starts_with("HTTP/1.1 200") {
                        ok.fetch_add(1, Ordering::Relaxed);
                        lat.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_secs(2));
                } else {
                    // Idle (250..375) or slow (375..500) until closed.
                    holds.fetch_add(1, Ordering::Relaxed);
                    let mut buf = [0u8; 64];
                    let mut last = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        if i >= 375 && last.elapsed() >= Duration::from_secs(3) {
                            if s.write_all(b"G").is_err() {
                                break;
                            }
                            last = Instant::now();
                        }
                        match s.read(&mut buf) {
                            Ok(0) => break,
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
            }
        }));
    }
    let t0 = Instant::now();
    let (mut max_threads, mut max_rss) = (0, 0);
    while t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(1));
        max_threads = max_threads.max(status_field(pid, "Threads:").unwrap_or(0));
        max_rss = max_rss.max(status_field(pid, "VmRSS:").unwrap_or(0));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let hwm = status_field(pid, "VmHWM:").unwrap_or(0);
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "500 clients, 60 s: {ok} scrapes answered 200, {failed} failed, slowest {:.1} ms; \
         {} idle/slow connections held (reconnected at the deadline); exporter: at most \
         {max_threads} threads, RSS at most {:.1} MiB (VmHWM {:.1} MiB)",
        max_latency_us.load(Ordering::Relaxed) as f64 / 1000.0,
        holds.load(Ordering::Relaxed),
        max_rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );
    assert_eq!(failed, 0, "scrapes failed under load");
    assert!(ok > 250 * 25, "{ok} scrapes");
    assert!(max_threads <= 8, "{max_threads} threads");
    assert!(hwm < 64 * 1024, "VmHWM {hwm} KiB");
}
