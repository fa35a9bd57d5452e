//! Bulk delete by a set of filters, live: a namespace holding the
//! synthetic kube-proxy node of `conntrack_netlink::bulk::kube` (1,000,000
//! flows: 60 % TCP, 10 % ICMP, 30 % UDP through 3,000 Services of 5
//! endpoints) and 3,000 cleanup rules of kube-proxy's shapes (Service
//! IP:port, Service IP + endpoint, Service IP:port + endpoint IP:port)
//! that match 100,000 flows (10 %). Needs root; skips without it.
//!
//! ```text
//! cargo bench --bench bulk_delete                      # 1,000,000 flows, 3 rounds
//! CONNTRACK_KIT_BENCH_FLOWS=200000 CONNTRACK_KIT_BENCH_ROUNDS=1 cargo bench --bench bulk_delete
//! ```
//!
//! Every variant runs in a process of its own, so that its CPU time (user
//! plus system, from the children's `getrusage` around its wait; the kernel's dump and delete work is done in
//! its `recvmsg`/`sendmsg` calls and counts as its system time) and its
//! peak RSS (`VmHWM` of `/proc/self/status`, printed by the process
//! itself at its end) are its alone. (`getrusage`'s `ru_maxrss` is no use
//! here: the kernel carries the spawning process's high-water mark over
//! the child's exec.) In each round, on the same table
//! (after each deleting variant the table must hold exactly the flows
//! that match no rule, and every matching flow must be created again):
//!
//! - `dump`: one plain dump of the whole table, every datagram received
//!   and dropped (`Conntrack::dump_raw`): the reading floor;
//! - `floor delete`: the same 100,000 entries deleted by exact tuple,
//!   256 per datagram, without any dump (`Conntrack::delete_entries`,
//!   tuples computed from the table's definition): the kernel's own
//!   delete work;
//! - `ours`: `Conntrack::delete_matching` with the 3,000 rules parsed from
//!   their text form (the kernel filters the dump to UDP over IPv4, what
//!   every rule shares);
//! - `ours, no kernel filter`: the same with
//!   `BulkOptions::kernel_prefilter(false)`: every flow of the table read
//!   and matched in user space;
//! - `vishvananda/netlink`: `ConntrackDeleteFilter` with the same rules in
//!   a kube-proxy style filter list (`benches/go/vishvananda_bulk.go`,
//!   built from Debian's golang-go and golang-github-vishvananda-netlink-dev
//!   in GOPATH mode; skipped with a message where they are missing);
//! - `conntrack -D` (round 1 only): one `conntrack -D` per rule for the
//!   first 12 rules (one of each shape's cycle), extrapolated to 3,000.
//!
//! Then, for 10, 300, 3,000 and 30,000 rules, a count of the matching
//! entries (no change: `Conntrack::count_matching`, and the Go program's
//! list-then-match) for how the cost grows with the rule count; the Go
//! program runs at 30,000 rules only with
//! `CONNTRACK_KIT_BENCH_GO_30K=1` (its cost grows with rules x flows).
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it runs as a
//! smoke test on 20,000 flows, one round, and checks the counts.

mod support;
use conntrack_core::testkit::{self, TestNetns};
use conntrack_kit::ct_core::L3Family;
use conntrack_kit::ct_core::host::ConntrackMaxGuard;
use conntrack_kit::netlink::bulk::kube::KubeTable;
use conntrack_kit::netlink::bulk::{Action, BulkOptions, BulkReport, FilterSet};
use conntrack_kit::netlink::fill::fill_flows;
use conntrack_kit::netlink::{Conntrack, DumpPolicy, DumpRequest, Netns};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{median, vm_hwm_kib};

const CHILD_ENV: &str = "CONNTRACK_KIT_BULK_CHILD";
/// Rule counts of the scaling runs.
const SCALING: [usize; 4] = [10, 300, 3000, 30_000];
/// Rules of the main run.
const RULES: usize = 3000;
/// Rules given to `conntrack -D` one by one.
const CLI_RULES: usize = 12;

/// One child's cost.
#[derive(Debug, Clone, Default)]
struct Cost {
    user: Duration,
    sys: Duration,
    wall: Duration,
    /// Peak RSS the child reported (`VmHWM`), KiB; 0 when it cannot say.
    maxrss_kib: u64,
    stdout: String,
}

impl Cost {
    fn cpu(&self) -> Duration {
        self.user + self.sys
    }
    /// `key=value` from the child's output.
    fn get(&self, key: &str) -> Option<u64> {
        self.stdout.split_whitespace().find_map(|w| {
            let (k, v) = w.split_once('=')?;
            (k == key).then(|| v.parse().ok())?
        })
    }
}

/// Runs `cmd` to completion: its stdout, its CPU time (the children's
/// rusage before and after waiting for it: the bench runs one child at a
/// time), and the peak RSS it printed.
fn measure(cmd: &mut Command) -> Cost {
    use nix::sys::resource::UsageWho::RUSAGE_CHILDREN;
    let (u0, s0) = support::cpu(RUSAGE_CHILDREN);
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out).expect("read the child's output");
    }
    let status = child.wait().expect("wait for the child");
    let wall = t0.elapsed();
    assert!(status.success(), "{cmd:?} failed ({status}): {out}");
    let (u1, s1) = support::cpu(RUSAGE_CHILDREN);
    let mut c = Cost {
        user: u1 - u0,
        sys: s1 - s0,
        wall,
        maxrss_kib: 0,
        stdout: out,
    };
    // The child's own peak RSS (`VmHWM`, printed by the child): getrusage's
    // ru_maxrss also holds the memory of this process, which the child's
    // image shared until its exec (the kernel carries the high-water mark
    // over the exec), so it says nothing about the child.
    c.maxrss_kib = c.get("vmhwm_kib").unwrap_or(0);
    c
}

fn report_line(r: &BulkReport) -> String {
    format!(
        "matched={} deleted={} vanished={} failed={} seen={} path={:?}",
        r.matched, r.deleted, r.vanished, r.failed, r.seen, r.path
    )
}

/// Child mode: one operation on namespace `ns`, printing `key=value`s.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split('|').collect();
    let [mode, ns, flows, rules_file, rules] = parts[..] else {
        panic!("bad child spec {spec:?}");
    };
    let flows: u64 = flows.parse().unwrap();
    let rules: usize = rules.parse().unwrap();
    let mut ct = Conntrack::open_in(&Netns::named(ns)).expect("open ctnetlink");
    let set = || {
        let text = std::fs::read_to_string(rules_file).expect("read the rules");
        FilterSet::parse(&text).expect("rules parse")
    };
    let line = match mode {
        "dump" => {
            let req = DumpRequest::table(L3Family::UNSPEC).policy(DumpPolicy::Accept);
            let s = ct.dump_raw(&req, |_| {}).expect("dump");
            format!("messages={}", s.messages)
        }
        "floor" => {
            let t = KubeTable::default();
            let entries = t.matching_flows(flows, rules).map(|f| (f.orig, None));
            report_line(
                &ct.delete_entries(entries, &BulkOptions::default())
                    .expect("delete"),
            )
        }
        "ours" => report_line(&ct.delete_matching(&set()).expect("bulk delete")),
        "ours-nofilter" => {
            let opts = BulkOptions::default().kernel_prefilter(false);
            report_line(
                &ct.bulk(&set(), &Action::Delete, &opts, |_| {})
                    .expect("bulk delete"),
            )
        }
        "count" => report_line(&ct.count_matching(&set()).expect("count")),
        other => panic!("unknown child mode {other}"),
    };
    println!("{line} vmhwm_kib={}", vm_hwm_kib());
}

/// Builds the Go baseline, or says why not.
fn build_go(dir: &Path) -> Result<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/go/vishvananda_bulk.go");
    let gopath = Path::new("/usr/share/gocode");
    if testkit::find_in_path("go").is_none() {
        return Err("`go` is not installed (Debian: apt-get install golang-go)".into());
    }
    if !gopath.join("src/github.com/vishvananda/netlink").is_dir() {
        return Err(
            "vishvananda/netlink is not in /usr/share/gocode (Debian: apt-get install \
             golang-github-vishvananda-netlink-dev)"
                .into(),
        );
    }
    let out = dir.join("vishvananda_bulk");
    let o = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        // The build cache outlives the run (the library is compiled once).
        .env(
            "GOCACHE",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("gocache"),
        )
        .output()
        .map_err(|e| format!("go build: {e}"))?;
    if !o.status.success() {
        return Err(format!("go build: {}", String::from_utf8_lossy(&o.stderr)));
    }
    Ok(out)
}

/// The library version Debian ships (`dpkg-query`), for the record.
fn go_lib_version() -> String {
    Command::new("dpkg-query")
        .args([
            "-W",
            "-f=${Version}",
            "golang-github-vishvananda-netlink-dev",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Medians of a variant over the rounds.
#[derive(Default)]
struct Series {
    runs: Vec<Cost>,
}

impl Series {
    fn cpu(&self) -> Duration {
        median(self.runs.iter().map(Cost::cpu).collect())
    }
    fn user(&self) -> Duration {
        median(self.runs.iter().map(|c| c.user).collect())
    }
    fn sys(&self) -> Duration {
        median(self.runs.iter().map(|c| c.sys).collect())
    }
    fn wall(&self) -> Duration {
        median(self.runs.iter().map(|c| c.wall).collect())
    }
    fn rss(&self) -> u64 {
        self.runs.iter().map(|c| c.maxrss_kib).max().unwrap_or(0)
    }
    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {} | {} | {} | {} |",
            secs(self.cpu()),
            secs(self.user()),
            secs(self.sys()),
            secs(self.wall()),
            mib(self.rss())
        )
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let bench_mode = std::env::args().any(|a| a == "--bench");
    if !support::runs_live("bulk_delete", bench_mode) {
        return;
    }
    let flows = support::bench_flows(bench_mode, 20_000);
    let rounds = if bench_mode {
        support::env_num("CONNTRACK_KIT_BENCH_ROUNDS", 3)
    } else {
        1
    };
    let cli_rules = if bench_mode { CLI_RULES } else { 2 };
    let table = KubeTable::default();
    let expect = table.matching(flows, RULES);
    let exe = std::env::current_exe().expect("own path");
    let dir = tempfile::tempdir().expect("temp dir");
    for n in SCALING {
        let text: Vec<String> = table.stale_rules(n).iter().map(|r| r.to_string()).collect();
        std::fs::write(
            dir.path().join(format!("rules-{n}.txt")),
            text.join("\n") + "\n",
        )
        .expect("write rules");
    }
    let rules_file = |n: usize| dir.path().join(format!("rules-{n}.txt"));
    let go = build_go(dir.path());
    match &go {
        Ok(_) => println!(
            "bulk_delete: Go baseline: vishvananda/netlink {} (Debian golang-github-vishvananda-netlink-dev), {}",
            go_lib_version(),
            Command::new("go")
                .arg("version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        ),
        Err(why) => println!("bulk_delete: Go baseline skipped: {why}"),
    }

    let ns = TestNetns::new("bulk");
    let _max = ConntrackMaxGuard::at_least(flows + 100_000).expect("raise nf_conntrack_max");
    let mut ct = Conntrack::open_in(&Netns::named(ns.name())).expect("open ctnetlink");
    let t0 = Instant::now();
    let r = fill_flows(&mut ct, table.flows(0, flows), 512).expect("fill");
    assert_eq!(r.created, flows, "fill: {r:?}");
    println!(
        "bulk_delete: filled {flows} flows in {:.2?}; {RULES} rules match {expect} ({:.1} %)",
        t0.elapsed(),
        expect as f64 * 100.0 / flows as f64
    );
    // After a deleting variant: the matching entries, and only they, are
    // gone (the table holds `flows - expect`, and every matching flow can
    // be created again), whatever the variant itself reported.
    let refill = |ct: &mut Conntrack, who: &str| {
        assert_eq!(
            u64::from(ct.count().expect("count")),
            flows - expect,
            "{who}: entries left after the delete"
        );
        let r = fill_flows(ct, table.matching_flows(flows, RULES), 512).expect("refill");
        assert_eq!(r.created, expect, "{who}: refill {r:?}");
        assert_eq!(
            u64::from(ct.count().expect("count")),
            flows,
            "table refilled"
        );
    };
    let ours = |mode: &str, n: usize| {
        measure(Command::new(&exe).env(
            CHILD_ENV,
            format!(
                "{mode}|{}|{flows}|{}|{n}",
                ns.name(),
                rules_file(n).display()
            ),
        ))
    };

    let (mut dump, mut floor, mut mine, mut nofilter, mut gos) = (
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
        Series::default(),
    );
    let mut cli = Series::default();
    let mut cli_deleted = 0u64;
    let mut scale_ours: Vec<Series> = SCALING.iter().map(|_| Series::default()).collect();
    let mut scale_go: Vec<Series> = SCALING.iter().map(|_| Series::default()).collect();
    let mut scale_matched = vec![0u64; SCALING.len()];
    for round in 0..rounds {
        let c = ours("dump", RULES);
        assert_eq!(c.get("messages"), Some(flows + 1), "{}", c.stdout);
        dump.runs.push(c);

        let c = ours("floor", RULES);
        assert_eq!(c.get("deleted"), Some(expect), "{}", c.stdout);
        floor.runs.push(c);
        refill(&mut ct, "floor");

        let c = ours("ours", RULES);
        assert_eq!(c.get("deleted"), Some(expect), "{}", c.stdout);
        assert_eq!(c.get("failed"), Some(0), "{}", c.stdout);
        mine.runs.push(c);
        refill(&mut ct, "ours");

        let c = ours("ours-nofilter", RULES);
        assert_eq!(c.get("deleted"), Some(expect), "{}", c.stdout);
        nofilter.runs.push(c);
        refill(&mut ct, "ours, no kernel filter");

        if let Ok(go) = &go {
            let c = measure(ns.command(go).arg("delete").arg(rules_file(RULES)));
            assert_eq!(c.get("matched"), Some(expect), "{}", c.stdout);
            gos.runs.push(c);
            refill(&mut ct, "vishvananda/netlink");
        }

        if round == 0 {
            // conntrack -D, one invocation per rule.
            let before = ct.count().expect("count");
            let mut total = Cost::default();
            for r in table.stale_rules(cli_rules) {
                let mut cmd = ns.command("conntrack");
                cmd.args(["-D", "-f", "ipv4"]).args(cli_args(&r));
                let c = measure(cmd.stderr(Stdio::null()));
                total.user += c.user;
                total.sys += c.sys;
                total.wall += c.wall;
                total.maxrss_kib = total.maxrss_kib.max(c.maxrss_kib);
            }
            cli_deleted = u64::from(before - ct.count().expect("count"));
            assert_eq!(cli_deleted, table.matching(flows, cli_rules));
            cli.runs.push(total);
            let r =
                fill_flows(&mut ct, table.matching_flows(flows, cli_rules), 512).expect("refill");
            assert_eq!(r.created, cli_deleted, "conntrack -D: refill {r:?}");
            assert_eq!(u64::from(ct.count().expect("count")), flows);
        }

        for (i, &n) in SCALING.iter().enumerate() {
            let c = ours("count", n);
            scale_matched[i] = c.get("matched").unwrap_or(0);
            assert_eq!(scale_matched[i], table.matching(flows, n));
            scale_ours[i].runs.push(c);
            if round == 0
                && let Ok(go) = &go
            {
                if n > RULES && std::env::var("CONNTRACK_KIT_BENCH_GO_30K").is_err() {
                    continue;
                }
                let c = measure(ns.command(go).arg("count").arg(rules_file(n)));
                assert_eq!(c.get("matched"), Some(scale_matched[i]), "{}", c.stdout);
                scale_go[i].runs.push(c);
            }
        }
        println!("bulk_delete: round {} of {rounds} done", round + 1);
    }

    let floor_cpu = dump.cpu() + floor.cpu();
    println!();
    println!(
        "bulk_delete: {flows} flows, {RULES} rules, {expect} matching; medians of {rounds} round(s), each variant in its own process"
    );
    println!();
    println!("| variant | CPU s (user+sys) | user s | sys s | wall s | peak RSS MiB |");
    println!("|---|---|---|---|---|---|");
    println!(
        "{}",
        dump.row("one plain dump of the table (floor, reading)")
    );
    println!(
        "{}",
        floor.row(
            "delete the matching entries by tuple, 256 per datagram (floor, kernel delete work)"
        )
    );
    println!("{}", mine.row("ours: delete_matching"));
    println!("{}", nofilter.row("ours, no kernel dump filter"));
    if !gos.runs.is_empty() {
        println!("{}", gos.row("vishvananda/netlink ConntrackDeleteFilter"));
    }
    if let Some(c) = cli.runs.first() {
        let per = c.cpu() / cli_rules as u32;
        println!(
            "| conntrack -D per rule: {cli_rules} rules measured ({cli_deleted} entries), extrapolated to {RULES} | {} (measured {}) | {} | {} | {} (measured {}) | not measured |",
            secs(per * RULES as u32),
            secs(c.cpu()),
            secs(c.user / cli_rules as u32 * RULES as u32),
            secs(c.sys / cli_rules as u32 * RULES as u32),
            secs(c.wall / cli_rules as u32 * RULES as u32),
            secs(c.wall)
        );
    }
    println!();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "floor (dump + deletes by tuple) = {} s CPU; ours / floor = {:.2} (target <= 1.5); without the kernel filter {:.2}",
        secs(floor_cpu),
        ratio(mine.cpu(), floor_cpu),
        ratio(nofilter.cpu(), floor_cpu)
    );
    println!(
        "ours peak RSS = {} MiB (target <= 8); without the kernel filter {} MiB",
        mib(mine.rss()),
        mib(nofilter.rss())
    );
    if !gos.runs.is_empty() {
        println!(
            "vishvananda/netlink / ours: CPU {:.1}x (target >= 10), peak RSS {:.0}x (target >= 50); against ours without the kernel filter: CPU {:.1}x, RSS {:.0}x",
            ratio(gos.cpu(), mine.cpu()),
            gos.rss() as f64 / mine.rss().max(1) as f64,
            ratio(gos.cpu(), nofilter.cpu()),
            gos.rss() as f64 / nofilter.rss().max(1) as f64,
        );
    }
    println!();
    println!("Cost by rule count (count only, no change):");
    println!();
    println!(
        "| rules | matching | shapes | ours CPU s | ours peak RSS MiB | vishvananda/netlink CPU s | its peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (i, &n) in SCALING.iter().enumerate() {
        let shapes = FilterSet::from_iter(table.stale_rules(n)).shapes();
        let (g_cpu, g_rss) = match scale_go[i].runs.first() {
            Some(_) => (secs(scale_go[i].cpu()), mib(scale_go[i].rss())),
            None => ("not run".into(), "".into()),
        };
        println!(
            "| {n} | {} | {shapes} | {} | {} | {g_cpu} | {g_rss} |",
            scale_matched[i],
            secs(scale_ours[i].cpu()),
            mib(scale_ours[i].rss())
        );
    }
}

/// The `conntrack -D` options for a rule of the kube-proxy shapes.
fn cli_args(r: &conntrack_kit::netlink::bulk::Rule) -> Vec<String> {
    let mut a = vec!["-p".to_string(), "udp".to_string()];
    let mut put = |k: &str, v: String| {
        a.push(k.to_string());
        a.push(v);
    };
    if let Some(n) = r.orig.dst {
        put("--orig-dst", n.addr().to_string());
    }
    if let Some(p) = r.orig.dst_port {
        put("--orig-port-dst", p.to_string());
    }
    if let Some(n) = r.reply.src {
        put("--reply-src", n.addr().to_string());
    }
    if let Some(p) = r.reply.src_port {
        put("--reply-port-src", p.to_string());
    }
    a
}
