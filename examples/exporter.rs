//! `exporter`: conntrack metrics for Prometheus over HTTP (127.0.0.1 by
//! default), for one network namespace or every namespace of the host.
//!
//! ```text
//! cargo run --example exporter -- --netns blue --listen 127.0.0.1:9469
//! cargo run --example exporter -- --all-netns
//! curl -s http://127.0.0.1:9469/metrics
//! ```
//!
//! This file only wires things: the metric families, the collection, the
//! namespace discovery and both exposition formats are
//! `conntrack_kit::exporter` (an agent with its own HTTP server embeds
//! that). The HTTP side is hyper's HTTP/1 server on a small tokio
//! runtime: hyper because it is the maintained HTTP implementation under
//! most of Rust's servers and exposes what an exporter needs directly
//! (header read timeout, buffer limits, one connection per task), where a
//! framework would add routing we do not need, and a blocking server
//! (tiny_http) spends a thread per connection, which is what let idle
//! clients starve scrapes. Every connection answers one request and has
//! a whole-request deadline; connections past `--max-connections` wait
//! in the kernel's backlog until one ends.

mod common;

use clap::Parser;
use common::duration::{SYNTAX, duration_in};
use common::exit::{exit_codes_help, report};
use common::target::{NetnsArgs, Target as CliTarget};
use common::{Failure, parse_args};
use conntrack_kit::exporter::encode::{Format, encode};
use conntrack_kit::exporter::{Config, Exporter, HotspotPolicy, Source, Target};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const ABOUT: &str = "Prometheus exporter for conntrack: one namespace or all of them, node_exporter-compatible families too.";

const LONG_ABOUT: &str = "\
Prometheus exporter for conntrack tables, over HTTP on 127.0.0.1 by default:
GET /metrics (Prometheus text 0.0.4, or OpenMetrics when the scraper asks
for it), GET /healthz (200 while collection works, 503 otherwise).

The port is bound first; collection runs on a thread of its own every
--interval and scrapes serve its last result, so a slow dump never
delays a scrape. up (conntrack_up{netns}) is 0 while a namespace cannot
be read, errors are counted by kind, and ages count from the moment
data was read.

One namespace (this host's, --netns NAME or --pid PID) or every one
(--all-netns: the named namespaces and those of every process, named by
pod or container when the runtime's state says; at most --max-netns with
series of their own, the rest summed as netns=\"other\"). Dumps for
hotspots are made for the --dump-busiest namespaces only: the kernel has
one hash table for every namespace, and a dump walks all of it.

Families (full table, node_exporter mapping and the nf_conntrack_max = 0
rule in the conntrack_kit::exporter documentation):
  node_nf_conntrack_entries, node_nf_conntrack_entries_limit,
  node_nf_conntrack_stat_*      node_exporter's, same names, types, help
  conntrack_up{netns}, conntrack_entries{netns}, conntrack_max_entries,
  conntrack_max_unlimited, conntrack_buckets, conntrack_memory_*,
  conntrack_stat_<counter>_total{netns,cpu}   per-CPU counters (counters)
  conntrack_finding{netns,id,severity}
  conntrack_hotspot_entries{netns,key,rank,value}   certified lower bounds
  conntrack_netns_info{netns,kind,inode,runtime,container,pod,pod_namespace}
  conntrack_exporter_errors_total{kind}, conntrack_exporter_feature{feature}
  conntrack_drops_traced_total{netns,reason}   with --trace (feature trace)

Privileges: ctnetlink needs CAP_NET_ADMIN, entering another namespace
CAP_SYS_ADMIN, reading other users' /proc/PID/ns/net CAP_SYS_PTRACE.
Without CAP_NET_ADMIN the counters, count and max come from /proc (per
namespace with a process, without entering it) and there are no dumps:
no hotspots, and findings from counters and sizes only (said on stderr,
at /healthz and by conntrack_exporter_feature).
It serves until killed; the exit codes below are those of a failed start.
Durations: DURATION_SYNTAX.";

/// The largest `--top-k`: a hard cap on series per key.
const MAX_TOP_K: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SourceArg {
    /// ctnetlink when it answers, else /proc.
    Auto,
    /// ctnetlink only.
    Netlink,
    /// /proc only (no dumps).
    Proc,
}

#[derive(Debug, Parser)]
#[command(
    name = "exporter",
    about = ABOUT,
    long_about = LONG_ABOUT.replace("DURATION_SYNTAX", SYNTAX),
    after_help = exit_codes_help(&[
        (3, ""),
        (4, ""),
        (5, "a --pid whose namespace this user may not see; missing CAP_NET_ADMIN \
             does not stop the start (counters then come from /proc)"),
        (6, "also when the address cannot be listened on"),
    ])
)]
struct Args {
    #[command(flatten)]
    ns: NetnsArgs,
    /// Every network namespace of the host (named ones and those of every
    /// process), each with the label netns.
    #[arg(long, conflicts_with_all = ["netns", "pid"])]
    all_netns: bool,
    /// Address to listen on (port 0: any free port; the address bound is
    /// printed on standard output). Loopback by default: metrics name
    /// addresses of the table.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9469")]
    listen: SocketAddr,
    /// Time between two collection passes (100ms to 1h).
    #[arg(long, value_name = "DURATION", default_value = "5s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(3600)))]
    interval: Duration,
    /// Minimum time between two dumps of a namespace's table for hotspots
    /// and findings (100ms to 1h).
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(3600)))]
    dump_every: Duration,
    /// Namespaces dumped per round: those with the most entries.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    dump_busiest: u64,
    /// Do not dump tables (no hotspots; findings from counters and sizes).
    #[arg(long)]
    no_hotspots: bool,
    /// Hotspot values exported per key at most (1 to 100).
    #[arg(long, value_name = "K", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_TOP_K))]
    top_k: u64,
    /// A hotspot value is exported only when its certified lower bound
    /// holds at least this many entries...
    #[arg(long, value_name = "N", default_value_t = 100)]
    hotspot_min_entries: u64,
    /// ...and at least this share of the namespace's entries (0.01 to 1).
    #[arg(long, value_name = "SHARE", default_value_t = 0.05, value_parser = share)]
    hotspot_min_share: f64,
    /// Namespaces with series of their own at most (--all-netns); the
    /// others are summed under netns="other".
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    max_netns: u64,
    /// One series per CPU for the counters with --all-netns (the default
    /// for one namespace).
    #[arg(long, conflicts_with = "sum_cpus")]
    per_cpu: bool,
    /// Counters summed over CPUs (the default with --all-netns).
    #[arg(long)]
    sum_cpus: bool,
    /// Where counters and counts are read.
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    source: SourceArg,
    /// The host's root: proc/, run/netns/ and the container runtimes'
    /// state are read under it (a container mounting the host's / at
    /// /host passes /host).
    #[arg(long, value_name = "DIR", default_value = "/")]
    host_root: PathBuf,
    /// Whole-request deadline: a connection is closed this long after it
    /// was accepted, answered or not (100ms to 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(60)))]
    request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    max_connections: u64,
    /// Threads serving HTTP.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    http_threads: u64,
    /// Also count conntrack's drops by reason with the eBPF drop tracer:
    /// conntrack_drops_traced_total{netns,reason} (no per-flow labels).
    /// Needs BTF and root (or CAP_BPF and CAP_PERFMON); when this kernel
    /// or user cannot trace, the exporter says why and serves without.
    #[cfg(feature = "trace")]
    #[arg(long)]
    trace: bool,
}

fn share(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if (0.01..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a share between 0.01 and 1"))
    }
}

fn config(args: &Args) -> Result<Config, Failure> {
    let target = if args.all_netns {
        None
    } else {
        Some(match CliTarget::resolve(&args.ns, None)? {
            CliTarget::Netns(n) => Target::Named(n),
            CliTarget::Pid(p) => Target::Pid(p),
            _ => Target::Current,
        })
    };
    Ok(Config {
        root: args.host_root.clone(),
        per_cpu: if args.all_netns {
            args.per_cpu
        } else {
            !args.sum_cpus
        },
        target,
        source: match args.source {
            SourceArg::Auto => None,
            SourceArg::Netlink => Some(Source::Netlink),
            SourceArg::Proc => Some(Source::Proc),
        },
        max_netns: args.max_netns as usize,
        hotspots: (!args.no_hotspots).then_some(HotspotPolicy {
            top_k: args.top_k as usize,
            min_entries: args.hotspot_min_entries,
            min_share: args.hotspot_min_share,
        }),
        dump_every: args.dump_every,
        dump_busiest: args.dump_busiest as usize,
    })
}

fn response(
    status: StatusCode,
    ctype: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

fn route(req: &Request<Incoming>, exporter: &Exporter, stale: Duration) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return response(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET and HEAD\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            let body = encode(&exporter.families(), format);
            response(StatusCode::OK, format.content_type(), body)
        }
        "/healthz" => match exporter.health(stale) {
            Ok(t) => response(StatusCode::OK, TEXT, t + "\n"),
            Err(t) => response(StatusCode::SERVICE_UNAVAILABLE, TEXT, t + "\n"),
        },
        "/" => response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><body><h1>conntrack exporter</h1><p><a href=\"/metrics\">/metrics</a> \
             <a href=\"/healthz\">/healthz</a></p></body></html>\n",
        ),
        _ => response(StatusCode::NOT_FOUND, TEXT, "not found; try /metrics\n"),
    }
}

async fn serve(
    listener: std::net::TcpListener,
    exporter: Arc<Exporter>,
    args: &Args,
    stale: Duration,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(tokio::sync::Semaphore::new(args.max_connections as usize));
    let deadline = args.request_timeout;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(deadline)
        .keep_alive(false)
        .max_buf_size(16 * 1024);
    let http = Arc::new(http);
    loop {
        // A slot first: past the limit, connections wait in the backlog.
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(std::io::Error::other)?;
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: wait a little rather than spin.
                eprintln!("exporter: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (exporter, http) = (exporter.clone(), http.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let r = route(&req, &exporter, stale);
                async move { Ok::<_, Infallible>(r) }
            });
            let conn = http.serve_connection(TokioIo::new(stream), svc);
            // The whole-request deadline: accepted to answered.
            let _ = tokio::time::timeout(deadline, conn).await;
            drop(permit);
        });
    }
}

fn run(args: Args) -> Result<(), Failure> {
    let cfg = config(&args)?;
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "exporter: warning: listening on {}, not loopback: metrics name addresses of the table",
            args.listen
        );
    }
    // Bind first: the port answers while the first collection runs.
    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|e| Failure::Error(format!("cannot listen on {}: {e}", args.listen)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Failure::Error(format!("listener: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Error(format!("cannot read the bound address: {e}")))?;
    let what = match &cfg.target {
        None => "every network namespace".to_string(),
        Some(Target::Current) => "this host".to_string(),
        Some(Target::Named(n)) => format!("netns {n}"),
        Some(Target::Pid(p)) => format!("netns of pid {p}"),
    };
    println!("listening on http://{addr}/metrics ({what})");
    let _ = std::io::stdout().flush();

    let exporter = Exporter::new(cfg);
    #[cfg(feature = "trace")]
    let exporter = if args.trace {
        traced(exporter)?
    } else {
        exporter
    };
    let exporter = Arc::new(exporter);
    eprintln!("exporter: source {}", exporter.source().name());
    for n in exporter.notes() {
        eprintln!("exporter: note: {n}");
    }
    let interval = args.interval;
    let collector = exporter.clone();
    std::thread::Builder::new()
        .name("collect".into())
        .spawn(move || {
            loop {
                let t = std::time::Instant::now();
                collector.collect();
                std::thread::sleep(interval.saturating_sub(t.elapsed()));
            }
        })
        .map_err(|e| Failure::Error(format!("cannot start the collection thread: {e}")))?;

    let stale = interval * 3 + args.dump_every + Duration::from_secs(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.http_threads as usize)
        .max_blocking_threads(1)
        .thread_name("http")
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the HTTP runtime: {e}")))?;
    rt.block_on(serve(listener, exporter, &args, stale))
        .map_err(|e| Failure::Error(format!("the listener stopped: {e}")))
}

/// The exporter with the drop tracer on its target (every namespace with
/// --all-netns), or without it when tracing is unavailable here (said on
/// stderr).
#[cfg(feature = "trace")]
fn traced(exporter: Exporter) -> Result<Exporter, Failure> {
    use conntrack_kit::exporter::drops::TracedDrops;
    use conntrack_kit::netlink::Netns;
    use conntrack_kit::netlink::trace::TraceConfig;
    let netns = match &exporter.config().target {
        None => None,
        Some(Target::Current) => Some(Netns::Current),
        Some(Target::Named(n)) => Some(Netns::named(n)),
        Some(Target::Pid(p)) => Some(Netns::pid(*p)),
    };
    let cfg = match netns {
        Some(n) => TraceConfig::default().with_netns(n),
        None => TraceConfig::default(),
    };
    match TracedDrops::start(&cfg) {
        Ok(d) => {
            eprintln!("exporter: drop tracer attached");
            Ok(exporter.with_traced_drops(d))
        }
        Err(e) if e.is_unavailable() => {
            eprintln!("exporter: --trace: {e}; serving without traced drops");
            Ok(exporter)
        }
        Err(e) => Err(Failure::Error(format!("--trace: {e}"))),
    }
}

fn main() {
    let args: Args = parse_args();
    // run() returns only if the listener fails for good.
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
        assert!(Args::try_parse_from(["exporter", "--hotspot-min-share", "0"]).is_err());
        assert!(Args::try_parse_from(["exporter", "--all-netns", "--netns", "x"]).is_err());
        let a = Args::try_parse_from(["exporter"]).unwrap();
        assert!(a.listen.ip().is_loopback());
        let c = config(&a).unwrap();
        assert!(c.per_cpu && c.target == Some(Target::Current));
        let all = Args::try_parse_from(["exporter", "--all-netns"]).unwrap();
        let c = config(&all).unwrap();
        assert!(!c.per_cpu && c.target.is_none());
    }
}
