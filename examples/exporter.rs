//! `exporter`: conntrack metrics for Prometheus over HTTP (127.0.0.1 by
//! default), encoded with the `prometheus-client` crate.
//!
//! ```text
//! cargo run --example exporter -- --netns blue --listen 127.0.0.1:9469
//! curl -s http://127.0.0.1:9469/metrics
//! ```
//!
//! The HTTP side is `std::net::TcpListener` with a minimal GET handler
//! (one short-lived thread per connection, at most a few at once): an
//! exporter answers one path, and a server framework would be the largest
//! dependency of the crate family for no gain. See `--help` for the
//! metrics.

mod common;

use clap::Parser;
use common::duration::{SYNTAX, duration_in};
use common::exit::{exit_codes_help, failure_of, report};
use common::target::{NetnsArgs, Target};
use common::{Failure, parse_args};
use conntrack_kit::analyze::capacity::memory_cost_for;
use conntrack_kit::analyze::hotspots::{
    CountMode, HotspotConfig, HotspotSummary, Hotspots, KeyKind, KeyTable, NameMap,
};
use conntrack_kit::analyze::rates::{Advance, StatsSeries, WrapAccumulator};
use conntrack_kit::analyze::{Facts, Finding, Observation, diagnose};
use conntrack_kit::ct_core::host::HostFs;
use conntrack_kit::ct_core::{Counter, HostSnapshot, L3Family, Stats};
use conntrack_kit::netlink::{Conntrack, DumpPolicy, DumpRequest};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ABOUT: &str = "Prometheus exporter for conntrack: per-CPU counters, table size, findings and bounded hotspots.";

const LONG_ABOUT: &str = "\
Prometheus exporter for one network namespace's conntrack table, over HTTP
on 127.0.0.1 by default (GET /metrics, OpenMetrics text).

Metrics:
  conntrack_up                            1 when the last collection worked
  conntrack_entries                       entries in the namespace's table
  conntrack_max_entries                   nf_conntrack_max (global; 0 = unlimited)
  conntrack_buckets                       hash buckets (global)
  conntrack_memory_estimate_bytes         kernel memory for the current entries
                                          and buckets (slab object size from
                                          /proc/slabinfo, +128 B extensions,
                                          16 B per bucket)
  conntrack_memory_estimate_at_max_bytes  the same at nf_conntrack_max entries
  conntrack_stat_<counter>_total{cpu}     the kernel's per-CPU counters
                                          (found, invalid, insert, insert_failed,
                                          drop, early_drop, error, search_restart,
                                          clash_resolve, chaintoolong, ...)
  conntrack_finding{id,severity}          1 for each current diagnosis finding
  conntrack_hotspot_entries{key,value}    entries of the top --top-k values of
                                          each key (src_ip, dst_ip, dst_port,
                                          state, src_net, unreplied_src)
  conntrack_hotspot_error_bound{key}      top-K count error bound (0 = exact)
  conntrack_hotspot_age_seconds           age of the dump behind the hotspots
  conntrack_exporter_*                    the exporter's own dumps, reads, errors

Counters: the kernel's per-CPU counters are u32 that wrap. The exporter
keeps a u64 per CPU and counter and adds the wrap-aware difference
between reads (a wrap is a difference below 2^31), so the exported value
is the kernel's value until its first wrap and keeps growing after it; a
counter that goes backwards otherwise (namespace recreated, module
reloaded) restarts from the kernel's value, which Prometheus treats as a
counter reset. Reads happen at scrape time, at most every --min-refresh:
reads between two scrapes closer than that are served from the last read.

Cardinality: at most --top-k (<= 100) series per hotspot key, 6 keys, so
at most 600 hotspot series whatever the table holds. Hotspots and
findings come from a streamed dump of the table (Space-Saving top-K,
bounded memory), made at most every --dump-every, so scrapes cannot
hammer the kernel with dumps. Findings judge counter rates over
the reads of the last 5 minutes (the scrapes).

Needs CAP_NET_ADMIN (ctnetlink) and, for --netns/--pid, CAP_SYS_ADMIN.
It serves until killed; the exit codes below are those of a failed start.
Durations: DURATION_SYNTAX.";

/// Hotspot keys exported, with their label value.
const HOT_KEYS: [(KeyKind, &str); 5] = [
    (KeyKind::SrcIp, "src_ip"),
    (KeyKind::DstIp, "dst_ip"),
    (KeyKind::DstPort, "dst_port"),
    (KeyKind::State, "state"),
    (KeyKind::SrcNet, "src_net"),
];

/// The largest `--top-k`: a hard cap on series per key.
const MAX_TOP_K: u64 = 100;

#[derive(Debug, Parser)]
#[command(
    name = "exporter",
    about = ABOUT,
    long_about = LONG_ABOUT.replace("DURATION_SYNTAX", SYNTAX),
    after_help = exit_codes_help(&[
        (3, ""),
        (4, ""),
        (5, ""),
        (6, "also when the address cannot be listened on"),
    ])
)]
struct Args {
    #[command(flatten)]
    ns: NetnsArgs,
    /// Address to listen on (port 0: any free port; the address bound is
    /// printed on standard output). Loopback by default: metrics name
    /// addresses of the table.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9469")]
    listen: SocketAddr,
    /// Hotspot values exported per key (1 to 100).
    #[arg(long, value_name = "K", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_TOP_K))]
    top_k: u64,
    /// Minimum time between two reads of the counters (100ms to 1h).
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(3600)))]
    min_refresh: Duration,
    /// Minimum time between two dumps of the table for hotspots and
    /// findings (100ms to 1h).
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(3600)))]
    dump_every: Duration,
    /// Do not dump the table (no hotspots; findings from counters and
    /// sizes only).
    #[arg(long)]
    no_hotspots: bool,
}

// ---------------------------------------------------------------------
// Collection
// ---------------------------------------------------------------------

/// Everything the exporter knows, refreshed at scrape time.
#[derive(Debug)]
struct State {
    target: Target,
    ct: Conntrack,
    top_k: usize,
    min_refresh: Duration,
    dump_every: Duration,
    hotspots_on: bool,
    t0: Instant,

    last_read: Option<Instant>,
    last_dump: Option<Instant>,
    ok: bool,
    stats: Option<Stats>,
    counters: BTreeMap<(u32, Counter), WrapAccumulator>,
    series: StatsSeries,
    snapshot: HostSnapshot,
    hotspots: Option<HotspotSummary>,
    findings: Vec<Finding>,

    reads: u64,
    dumps: u64,
    errors: u64,
    counter_resets: u64,
    last_dump_secs: f64,
}

/// Findings judge counter rates over this window of reads.
const RATE_WINDOW: Duration = Duration::from_secs(300);

impl State {
    fn refresh_if_due(&mut self) {
        let now = Instant::now();
        if self.last_read.is_some_and(|t| now - t < self.min_refresh) {
            return;
        }
        self.last_read = Some(now);
        match self.refresh(now) {
            Ok(()) => self.ok = true,
            Err(e) => {
                self.ok = false;
                self.errors += 1;
                eprintln!("exporter: collection failed: {e}");
            }
        }
    }

    fn refresh(&mut self, now: Instant) -> Result<(), String> {
        let stats = self.ct.stats().map_err(|e| explain(&e))?;
        self.reads += 1;
        for cpu in &stats.cpus {
            let id = cpu.cpu.unwrap_or(0);
            for (c, raw) in cpu.iter() {
                match self.counters.get_mut(&(id, c)) {
                    None => {
                        self.counters.insert((id, c), WrapAccumulator::new(raw));
                    }
                    Some(a) => {
                        if a.observe(raw) == Advance::Reset {
                            self.counter_resets += 1;
                        }
                    }
                }
            }
        }
        // CPUs that went away stop being exported.
        self.counters
            .retain(|(id, _), _| stats.cpus.iter().any(|c| c.cpu.unwrap_or(0) == *id));
        let at = now - self.t0 + Duration::from_nanos(1);
        if self.series.push(at, stats.clone()).is_ok() {
            self.series.keep_within(RATE_WINDOW);
        }

        if self.last_dump.is_none_or(|t| now - t >= self.dump_every) {
            self.last_dump = Some(now);
            self.dump(&stats)?;
        }
        self.snapshot.count = stats.entries;
        if stats.max_entries.is_some() {
            self.snapshot.max = stats.max_entries;
        }
        self.snapshot.stats = Some(stats.clone());
        self.stats = Some(stats);
        let rates = self.series.rates();
        let rates = (rates.window.used_intervals > 0).then_some(rates);
        let obs = Observation {
            snapshot: self.snapshot.clone(),
            rates,
            hotspots: self.hotspots.clone(),
            ..Observation::default()
        };
        self.findings = diagnose(&Facts::derive(&obs));
        Ok(())
    }

    /// Host facts (read on a thread inside the namespace, through the
    /// thread view, so that sysctls, stat file and namespace link are all
    /// the namespace's) and, unless disabled, hotspots from one streamed
    /// dump.
    fn dump(&mut self, stats: &Stats) -> Result<(), String> {
        let t = Instant::now();
        let report = self
            .target
            .netns()
            .run(|| Ok(HostFs::new("/").for_current_thread().read_snapshot()))
            .map_err(|e| explain(&e))?;
        let mut snap = report.snapshot;
        // The netlink figures of this scrape are the freshest.
        snap.stats = Some(stats.clone());
        snap.count = stats.entries;
        self.snapshot = snap;
        if self.hotspots_on {
            let cfg = HotspotConfig {
                // Space-Saving capacity well above K, so that the K
                // exported values are (nearly always) exact.
                mode: CountMode::TopK((self.top_k * 8).max(256)),
                top: self.top_k,
                names: NameMap::new(),
            };
            let req = DumpRequest::table(L3Family::UNSPEC).policy(DumpPolicy::Accept);
            let (h, _summary) = self
                .ct
                .fold(&req, || Hotspots::new(cfg.clone()), |h, f| h.add(f))
                .map_err(|e| explain(&e))?;
            self.hotspots = Some(h.summary());
            self.dumps += 1;
        }
        self.last_dump_secs = t.elapsed().as_secs_f64();
        Ok(())
    }

    fn encode(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            enc,
            "conntrack_up",
            "1 when the last collection worked, else 0.",
            self.ok as i64,
        )?;
        counter(
            enc,
            "conntrack_exporter_reads",
            "Reads of the counters (ctnetlink stats requests).",
            self.reads,
        )?;
        counter(
            enc,
            "conntrack_exporter_dumps",
            "Dumps of the table for hotspots.",
            self.dumps,
        )?;
        counter(
            enc,
            "conntrack_exporter_errors",
            "Collections that failed.",
            self.errors,
        )?;
        counter(
            enc,
            "conntrack_exporter_counter_resets",
            "Kernel counters seen going backwards (not wrapping): reset.",
            self.counter_resets,
        )?;
        gauge(
            enc,
            "conntrack_exporter_dump_duration_seconds",
            "Wall time of the last dump and host read.",
            self.last_dump_secs,
        )?;
        if !self.ok {
            return Ok(());
        }
        let Some(stats) = &self.stats else {
            return Ok(());
        };
        let count = stats.entries.map(u64::from);
        if let Some(n) = count {
            gauge(
                enc,
                "conntrack_entries",
                "Entries in the namespace's conntrack table.",
                n,
            )?;
        }
        let max = self.snapshot.max.map(u64::from);
        if let Some(m) = max {
            gauge(
                enc,
                "conntrack_max_entries",
                "nf_conntrack_max (one global value checked against each namespace's count; 0 = unlimited).",
                m,
            )?;
        }
        let buckets = self.snapshot.buckets.map(u64::from);
        if let Some(b) = buckets {
            gauge(enc, "conntrack_buckets", "Hash table buckets (global).", b)?;
        }
        if let (Some(n), Some(b)) = (count, buckets) {
            let m = memory_cost_for(&self.snapshot, n, b);
            gauge(
                enc,
                "conntrack_memory_estimate_bytes",
                "Estimated kernel memory of the current entries and the buckets.",
                m.total_bytes,
            )?;
            if let Some(mx) = max.filter(|&m| m > 0) {
                gauge(
                    enc,
                    "conntrack_memory_estimate_at_max_bytes",
                    "Estimated kernel memory at nf_conntrack_max entries.",
                    memory_cost_for(&self.snapshot, mx, b).total_bytes,
                )?;
            }
        }

        // Per-CPU counters: one metric per counter, one series per CPU.
        let mut by_counter: BTreeMap<Counter, Vec<(u32, u64)>> = BTreeMap::new();
        for (&(cpu, c), a) in &self.counters {
            by_counter.entry(c).or_default().push((cpu, a.total()));
        }
        for (c, series) in &by_counter {
            let name = format!("conntrack_stat_{}", c.name());
            let help = format!(
                "The kernel's per-CPU conntrack counter {} (u32 wrap-arounds accumulated).",
                c.name()
            );
            let mut m = enc.encode_descriptor(&name, &help, None, MetricType::Counter)?;
            for (cpu, v) in series {
                let labels = [("cpu", cpu.to_string())];
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(v, None)?;
            }
        }

        let mut m = enc.encode_descriptor(
            "conntrack_finding",
            "1 for each current diagnosis finding (see conntrack-analyze FindingId).",
            None,
            MetricType::Gauge,
        )?;
        for f in &self.findings {
            let labels = [("id", f.id.name()), ("severity", f.severity.name())];
            m.encode_family(&labels)?.encode_gauge(&1i64)?;
        }

        if let Some(h) = &self.hotspots {
            let age = self.last_dump.map_or(0.0, |t| t.elapsed().as_secs_f64());
            gauge(
                enc,
                "conntrack_hotspot_age_seconds",
                "Age of the dump the hotspot values come from.",
                age,
            )?;
            let tables: Vec<(&str, &KeyTable)> = HOT_KEYS
                .iter()
                .filter_map(|(k, name)| h.table(*k).map(|t| (*name, t)))
                .chain(std::iter::once(("unreplied_src", &h.unreplied_by_source)))
                .collect();
            let mut m = enc.encode_descriptor(
                "conntrack_hotspot_entries",
                "Entries of the heaviest values of each key (at most --top-k per key).",
                None,
                MetricType::Gauge,
            )?;
            for (key, t) in &tables {
                for kc in t.top.iter().take(self.top_k) {
                    let labels = [("key", key.to_string()), ("value", kc.key.to_string())];
                    m.encode_family(&labels)?.encode_gauge(&kc.count)?;
                }
            }
            let mut m = enc.encode_descriptor(
                "conntrack_hotspot_error_bound",
                "Top-K: no exported count is overestimated by more than this (0: exact).",
                None,
                MetricType::Gauge,
            )?;
            for (key, t) in &tables {
                let labels = [("key", key.to_string())];
                m.encode_family(&labels)?.encode_gauge(&t.error_bound)?;
            }
        }
        Ok(())
    }
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: V,
) -> Result<(), std::fmt::Error> {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

/// The collector registered with `prometheus-client`: collects at scrape
/// time (rate-limited) and encodes.
#[derive(Debug, Clone)]
struct ConntrackCollector(Arc<Mutex<State>>);

impl Collector for ConntrackCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        st.refresh_if_due();
        st.encode(&mut encoder)
    }
}

// ---------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------

/// Connections served at once; more get 503.
const MAX_CONNECTIONS: usize = 4;
const MAX_REQUEST_BYTES: usize = 8192;
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn respond(stream: &mut TcpStream, status: &str, ctype: &str, body: &str, head_only: bool) {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(header.as_bytes());
    if !head_only {
        let _ = stream.write_all(body.as_bytes());
    }
    let _ = stream.flush();
}

fn handle(mut stream: TcpStream, registry: &Registry) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > MAX_REQUEST_BYTES {
            respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "too large\n",
                false,
            );
            return;
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n",
            false,
        );
        return;
    }
    match path {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => respond(&mut stream, "200 OK", OPENMETRICS, &body, head_only),
                Err(_) => respond(
                    &mut stream,
                    "500 Internal Server Error",
                    "text/plain",
                    "encoding failed\n",
                    head_only,
                ),
            }
        }
        "/" => respond(
            &mut stream,
            "200 OK",
            "text/html; charset=utf-8",
            "<html><body><h1>conntrack exporter</h1><p><a href=\"/metrics\">/metrics</a></p></body></html>\n",
            head_only,
        ),
        _ => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            "not found; try /metrics\n",
            head_only,
        ),
    }
}

fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(mut stream) = conn else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            respond(
                &mut stream,
                "503 Service Unavailable",
                "text/plain",
                "busy\n",
                false,
            );
            continue;
        }
        let (registry, active) = (registry.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                handle(stream, &registry);
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            eprintln!("exporter: cannot start a connection thread");
        }
    }
}

/// A netlink error of a collection, as reported on stderr (and by
/// `conntrack_up` 0).
fn explain(e: &conntrack_kit::netlink::Error) -> String {
    failure_of("collect", e).to_string()
}

fn run(args: Args) -> Result<(), Failure> {
    let target = Target::resolve(&args.ns, None)?;
    let mut ct = Conntrack::open_in(&target.netns())
        .map_err(|e| failure_of(&format!("open ctnetlink in the {}", target.short()), &e))?;
    // A refusal (no CAP_NET_ADMIN) is seen now, with its exit code.
    ct.stats().map_err(|e| failure_of("read statistics", &e))?;
    let mut state = State {
        target,
        ct,
        top_k: args.top_k as usize,
        min_refresh: args.min_refresh,
        dump_every: args.dump_every,
        hotspots_on: !args.no_hotspots,
        t0: Instant::now(),
        last_read: None,
        last_dump: None,
        ok: false,
        stats: None,
        counters: BTreeMap::new(),
        series: StatsSeries::new(),
        snapshot: HostSnapshot::default(),
        hotspots: None,
        findings: Vec::new(),
        reads: 0,
        dumps: 0,
        errors: 0,
        counter_resets: 0,
        last_dump_secs: 0.0,
    };
    // Collect once now, so that missing privileges fail at startup.
    state.last_read = Some(Instant::now());
    state.refresh(Instant::now()).map_err(Failure::Error)?;
    state.ok = true;
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "exporter: warning: listening on {}, not loopback: metrics name addresses of the table",
            args.listen
        );
    }
    let listener = TcpListener::bind(args.listen)
        .map_err(|e| Failure::Error(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Error(format!("cannot read the bound address: {e}")))?;
    let label = state.target.short();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ConntrackCollector(Arc::new(Mutex::new(state)))));
    println!("listening on http://{addr}/metrics ({label})");
    let _ = std::io::stdout().flush();
    serve(listener, Arc::new(registry));
    Ok(())
}

fn main() {
    let args: Args = parse_args();
    // serve() returns only if the listener fails for good.
    let code = match run(args) {
        Ok(()) => report("exporter", &Failure::Error("the listener stopped".into())),
        Err(e) => report("exporter", &e),
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_bounded() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        assert!(Args::try_parse_from(["exporter", "--top-k", "100"]).is_ok());
        assert!(Args::try_parse_from(["exporter", "--top-k", "101"]).is_err());
        let a = Args::try_parse_from(["exporter"]).unwrap();
        assert!(a.listen.ip().is_loopback());
    }
}
