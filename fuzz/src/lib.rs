//! The invariants every fuzz target checks, shared by the libFuzzer targets
//! (`fuzz_targets/`, run with `cargo fuzz`) and by the stable replay test
//! (`tests/replay.rs`, run with plain `cargo test`), so both check exactly
//! the same thing.
//!
//! Each check must not panic on any input, and where an encoder exists,
//! decode -> encode -> decode must be stable. The checks of file readers
//! (`capture`, `host_tree`) unpack the input into a directory tree first
//! ([`tree`]).

pub mod tree;

use conntrack_core::cli::list::{LabelMap, ListFormat, ListParser};
use conntrack_core::cli::stats as cli_stats;
use conntrack_core::procstat;
use conntrack_netlink::event::{Item, for_each_item};
use conntrack_netlink::wire::{self, FlowView, encode};

/// `/proc/net/stat/nf_conntrack`: parse never panics; a parsed table
/// rendered in the kernel's format parses back to the same stats.
pub fn check_procstat(data: &[u8]) {
    if let Ok(table) = procstat::parse_table_bytes(data) {
        let text = procstat::render(&table.columns, &table.stats);
        let again = procstat::parse_table(&text).expect("rendered /proc stat text must parse");
        assert_eq!(
            again.stats, table.stats,
            "render/parse not stable for {text:?}"
        );
        assert_eq!(again.columns, table.columns);
    }
    // The lazy row reader must not panic either, whatever the rows hold.
    if let Ok(rows) = procstat::rows(data) {
        for _ in rows {}
    }
}

/// `conntrack -S` and `-C` text: parse never panics; parse(render(parse(x)))
/// equals parse(x).
pub fn check_cli_stats(data: &[u8]) {
    if let Ok(stats) = cli_stats::parse_cli_stats_bytes(data) {
        let text = cli_stats::render_cli_stats(&stats);
        let again =
            cli_stats::parse_cli_stats(&text).expect("rendered conntrack -S text must parse");
        assert_eq!(again, stats, "render/parse not stable for {text:?}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = cli_stats::parse_count(text);
    }
}

/// `conntrack -L` text: parsing never panics, one bad line does not stop
/// the rest, and every parsed flow rendered in the fullest CLI form
/// (`-o extended,id,ktimestamp,labels`) parses back to the same flow.
pub fn check_cli_list(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let labels = LabelMap::numeric();
    let parser = ListParser::new().with_labels(&labels);
    let format = ListFormat::EXTENDED
        .with_id()
        .with_ktimestamp()
        .with_labels(&labels);
    for flow in parser.parse_lines(&text).flatten() {
        let line = conntrack_core::cli::list::render_line(&flow, format);
        let again = parser
            .parse_line(&line)
            .unwrap_or_else(|e| panic!("rendered line does not parse: {e}: {line:?}"));
        assert_eq!(again, flow, "render/parse not stable for {line:?}");
    }
}

/// ctnetlink flow messages: decoding never panics; every flow that
/// decodes, encoded as the kernel would and decoded again, gives the same
/// owned flow.
pub fn check_nl_flow(data: &[u8]) {
    let mut buf = Vec::new();
    for view in wire::flows(data).flatten() {
        let flow = view.to_owned();
        buf.clear();
        let m = encode::begin_message(
            &mut buf,
            wire::message::ct_type(wire::message::IPCTNL_MSG_CT_NEW),
            0,
            0,
            flow.family().0,
        );
        encode::encode_flow_as_kernel(&flow, &mut buf);
        encode::finish_message(&mut buf, m);
        let msg = wire::messages(&buf)
            .next()
            .expect("one message")
            .expect("own framing is valid");
        let again = FlowView::from_message(&msg)
            .unwrap_or_else(|e| panic!("re-encoded flow does not decode: {e}: {flow:?}"))
            .to_owned();
        assert_eq!(again, flow, "decode/encode/decode not stable");
    }
}

/// Stats replies: per-CPU and global stats decoding never panics, on the
/// payload of each message and on the raw bytes.
pub fn check_nl_stats(data: &[u8]) {
    let _ = wire::decode_stats_cpu(data);
    let _ = wire::decode_stats_global(data);
    for msg in wire::messages(data).flatten() {
        let _ = wire::decode_stats_cpu(msg.payload);
        let _ = wire::decode_stats_global(msg.payload);
    }
}

/// Event datagrams: decoding never panics, and every decoded event can be
/// turned into its owned form.
pub fn check_nl_event(data: &[u8]) {
    for_each_item(data, |item| {
        if let Item::Event(e) = item {
            let _ = e.to_owned_event();
        }
    });
}

/// Arbitrary event streams applied to a mirror's table
/// (`conntrack_netlink::mirror::Table`, what `Mirror` keeps in sync).
///
/// Checks: no panic; what `apply` says it did matches the table: an
/// insert adds the entry (one more), a removal takes it away (one less),
/// anything else keeps the count; the entries iterated are as many as
/// `len`; a table does not differ from itself.
pub fn check_mirror(data: &[u8]) {
    use conntrack_netlink::mirror::{Applied, Table};
    let mut t = Table::new();
    for_each_item(data, |item| {
        let Item::Event(e) = item else { return };
        let before = t.len();
        let applied = t.apply(&e);
        let (orig, zone) = (e.flow.orig(), e.flow.zone().unwrap_or(0));
        match applied {
            Applied::Inserted => {
                assert_eq!(t.len(), before + 1, "{e:?}");
                assert!(t.get(&orig, zone).is_some(), "{e:?}");
            }
            Applied::Removed => {
                assert_eq!(t.len() + 1, before, "{e:?}");
                assert!(t.get(&orig, zone).is_none(), "{e:?}");
            }
            Applied::Changed => {
                assert_eq!(t.len(), before, "{e:?}");
                assert!(t.get(&orig, zone).is_some(), "{e:?}");
            }
            _ => assert_eq!(t.len(), before, "{e:?}"),
        }
    });
    assert_eq!(t.iter().count(), t.len());
    assert!(t.diff(&t).is_empty());
}

/// Host facts files (`/proc/meminfo`, `slabinfo`, `softirqs`, `modules`,
/// CPU lists, RPS masks, ...): every pure parser of `conntrack_core::host`
/// never panics, and CPU lists and RPS masks round-trip through their
/// renderers.
pub fn check_host(data: &[u8]) {
    use conntrack_core::host::*;
    let _ = parse_auxv_page_size(data);
    let Ok(text) = decode_utf8(data) else { return };
    let _ = parse_single_value(text);
    let _ = parse_sysctl_u32(text);
    let _ = parse_u32_value(text);
    let _ = parse_sysctl_bool(text);
    let _ = parse_osrelease(text);
    let _ = parse_meminfo(text);
    let _ = parse_slabinfo(text);
    let _ = parse_softirqs(text);
    let _ = parse_modules(text);
    let _ = parse_smaps_page_size(text);
    let _ = parse_ns_link(text);
    if let Ok(cpus) = parse_cpu_list(text) {
        assert_eq!(
            parse_cpu_list(&render_cpu_list(&cpus)).ok(),
            Some(cpus.clone())
        );
    }
    if let Ok(cpus) = parse_rps_mask(text) {
        let width = cpus.iter().max().map_or(1, |m| m + 1);
        assert_eq!(
            parse_rps_mask(&render_rps_mask(&cpus, width)).ok(),
            Some(cpus)
        );
    }
}

/// Whether text bound for a terminal is free of control characters
/// (newlines and tabs allowed where `lines` is set).
fn no_controls(s: &str, lines: bool) -> bool {
    s.chars()
        .all(|c| !c.is_control() || (lines && (c == '\n' || c == '\t')))
}

/// A fresh empty directory for one input (removed when dropped).
fn scratch_dir() -> tempfile::TempDir {
    // /dev/shm when there is one: the trees are rebuilt for every input.
    let shm = std::path::Path::new("/dev/shm");
    let b = tempfile::Builder::new().prefix("ck-fuzz-").tempdir_in(shm);
    b.or_else(|_| tempfile::tempdir())
        .expect("a temporary directory")
}

/// The capture loader (`conntrack_analyze::capture::load`) over a capture
/// directory unpacked from the input ([`tree`]: files, directories, links
/// inside the tree or to `/dev/null`, FIFOs), then the whole analysis
/// doctor runs on it (facts, diagnosis, answers, plan, report text).
///
/// Checks: loading an existing directory always succeeds; it never blocks
/// (a FIFO is not opened: a hang is a libFuzzer timeout); every note,
/// `meta.txt` field, the report text and the plan (text and Markdown) are
/// free of control characters (newlines and tabs kept); notes are bounded
/// by the entries; rates are finite; an empty capture is not judged.
pub fn check_capture(data: &[u8]) {
    use conntrack_analyze::capture::{self, LoadOptions};
    let dir = scratch_dir();
    let made = tree::unpack(data, dir.path());
    // The bucket simulation costs three quarters of an input's time (it
    // walks every bucket): one input in four runs it.
    let opts = LoadOptions::default().with_simulate_buckets(data.len().is_multiple_of(4));
    let c = capture::load(dir.path(), &opts)
        .unwrap_or_else(|e| panic!("an existing directory must load: {e}"));
    for n in &c.notes {
        let shown = n.to_string();
        assert!(no_controls(&shown, false), "note not escaped: {shown:?}");
    }
    assert!(
        c.notes.len() <= 3 * made + 16,
        "{} notes for {made} entries",
        c.notes.len()
    );
    let m = &c.meta;
    for v in [&m.hostname, &m.description, &m.captured_at]
        .into_iter()
        .flatten()
    {
        assert!(no_controls(v, false), "meta not escaped: {v:?}");
        assert!(v.chars().count() <= 256, "meta value not cut: {v:?}");
    }
    if let Some(r) = &c.observation.rates {
        assert!(r.window.covered_secs.is_finite() && r.window.covered_secs >= 0.0);
        for k in &r.counters {
            assert!(k.per_sec.is_finite() && k.peak_per_sec.is_finite(), "{k:?}");
        }
    }
    let origin = conntrack_tune::report::Origin::capture("fuzz")
        .with_hostname(c.meta.hostname.clone())
        .with_description(c.meta.description.clone());
    let notes = c.notes.iter().map(|n| n.to_string());
    let report = conntrack_tune::Report::build(&c.observation, origin, &Default::default())
        .expect("the default policy is valid")
        .with_notes(notes);
    let text = conntrack_tune::render::report_text(&report);
    assert!(no_controls(&text, true), "report text not escaped:\n{text}");
    for plan in [
        conntrack_tune::render::text(&report.plan),
        conntrack_tune::render::markdown(&report.plan),
    ] {
        assert!(no_controls(&plan, true), "plan text not escaped:\n{plan}");
    }
    if c.is_empty() {
        assert_eq!(
            report.status(),
            conntrack_tune::report::Status::NotJudged,
            "an empty capture judged"
        );
    }
}

/// The host reader over a fixture tree unpacked from the input: the
/// snapshot, the configuration (sysctl.d, modprobe.d, kube-proxy, module
/// kinds) and the attribution reader's socket table.
///
/// Checks: no panic and no blocking (FIFOs); every problem names a file
/// under the root; sysctl.d files keep their host paths; the kube-proxy
/// values it reports came from a file it names.
pub fn check_host_tree(data: &[u8]) {
    use conntrack_core::host::{HostFs, sysctl_d};
    let dir = scratch_dir();
    tree::unpack(data, dir.path());
    let fs = HostFs::new(dir.path());
    let report = fs.read_snapshot();
    for p in &report.problems {
        assert!(p.path().starts_with(dir.path()), "{p}");
    }
    let config = fs.read_config(&report.snapshot);
    let scan = config.sysctl_d.expect("sysctl.d is always scanned");
    for f in &scan.files {
        assert!(
            f.path == sysctl_d::SYSCTL_CONF
                || sysctl_d::SYSCTL_DIRS.iter().any(|d| f
                    .path
                    .strip_prefix(d)
                    .is_some_and(|n| n == format!("/{}", f.name))),
            "{f:?}"
        );
    }
    if let Some(kp) = &config.kube_proxy {
        assert!(!kp.files.is_empty());
    }
    let reader = conntrack_analyze::attribution::ProcReader::new(dir.path());
    let _ = reader.socket_table();
}

/// `StatsSeries::parse_captures` (stats.txt: `@ SECONDS` lines, each
/// followed by `/proc/net/stat/nf_conntrack` or `conntrack -S` text) and
/// the rates over the series.
///
/// Checks: no panic; samples are strictly increasing in time; rates are
/// finite and cover no more than the series' span; the series rendered
/// back (`@ SECONDS` + `conntrack -S` text of each sample) parses to the
/// same times and counters.
pub fn check_stats_series(data: &[u8]) {
    use conntrack_analyze::StatsSeries;
    let text = String::from_utf8_lossy(data);
    let Ok(series) = StatsSeries::parse_captures(&text) else {
        return;
    };
    let samples = series.samples();
    assert!(samples.windows(2).all(|w| w[0].at < w[1].at));
    let rates = series.rates();
    let span = samples[samples.len() - 1]
        .at
        .saturating_sub(samples[0].at)
        .as_secs_f64();
    let w = &rates.window;
    assert!(w.covered_secs.is_finite() && w.covered_secs <= span * (1.0 + 1e-9) + 1e-9);
    assert!(w.used_intervals <= w.intervals);
    for k in &rates.counters {
        assert!(k.per_sec.is_finite() && k.peak_per_sec.is_finite(), "{k:?}");
        assert!(k.per_sec <= k.peak_per_sec * (1.0 + 1e-9) + 1e-9, "{k:?}");
    }
    let _ = rates.to_string();
    // Render every sample as `conntrack -S` text (ids kept) and read back.
    let mut again = String::new();
    for s in samples {
        again.push_str(&format!("@ {}\n", s.at.as_secs()));
        again.push_str(&conntrack_core::cli::stats::render_cli_stats(&s.stats));
    }
    if samples.iter().all(|s| !s.stats.cpus.is_empty()) {
        let back = StatsSeries::parse_captures(&again)
            .unwrap_or_else(|e| panic!("rendered series does not parse: {e}\n{again}"));
        assert_eq!(back.len(), series.len());
        for (a, b) in samples.iter().zip(back.samples()) {
            assert_eq!(a.at, b.at);
            assert_eq!(a.stats.total(), b.stats.total(), "{again}");
        }
    }
}

/// The attribution parsers: `/proc/net/{tcp,tcp6,udp,udp6}` socket tables,
/// `/proc/PID/cgroup` container paths, `socket:[INODE]` fd links.
///
/// Checks: no panic; one socket per line at most; a parsed socket rendered
/// back as a `/proc/net/tcp` line parses to the same socket; socket links
/// round-trip; a container id is 64 lowercase hex digits and a pod UID
/// only hex digits and dashes.
pub fn check_attribution(data: &[u8]) {
    use conntrack_analyze::attribution::*;
    use conntrack_core::L4Proto;
    let text = String::from_utf8_lossy(data);
    for proto in [L4Proto::TCP, L4Proto::UDP] {
        let socks = parse_proc_net(&text, proto);
        assert!(socks.len() <= text.lines().count());
        for s in &socks {
            let line = render_proc_net_line(s);
            let back = parse_proc_net(&line, proto);
            assert_eq!(back.as_slice(), std::slice::from_ref(s), "{line:?}");
        }
    }
    for line in text.lines() {
        let _ = parse_proc_addr(line);
        if let Some(ino) = parse_socket_link(line) {
            assert_eq!(parse_socket_link(&format!("socket:[{ino}]")), Some(ino));
        }
    }
    if let Some(c) = parse_cgroup(&text) {
        assert!(
            c.id.len() == 64
                && c.id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{c:?}"
        );
        if let Some(uid) = &c.pod_uid {
            assert!(
                uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
                "{c:?}"
            );
        }
        let shown = c.to_string();
        assert!(shown.contains("://") && no_controls(&shown, false));
    }
}

/// A `/proc/net/tcp` line for a socket, in this machine's byte order (the
/// parser's assumption).
fn render_proc_net_line(s: &conntrack_analyze::attribution::SocketEntry) -> String {
    use std::net::{IpAddr, SocketAddr};
    fn addr(a: SocketAddr) -> String {
        let hex = match a.ip() {
            IpAddr::V4(v4) => format!("{:08X}", u32::from_ne_bytes(v4.octets())),
            IpAddr::V6(v6) => v6
                .octets()
                .chunks(4)
                .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
                .collect(),
        };
        format!("{hex}:{:04X}", a.port())
    }
    format!(
        "   0: {} {} {:02X} 00000000:00000000 00:00000000 00000000 {:>5} 0 {} 1 0000000000000000\n",
        addr(s.local),
        addr(s.remote),
        s.state,
        s.uid,
        s.inode
    )
}

/// The conntrack keys plans set, for the sysctl.d queries.
const PLAN_KEYS: [&str; 4] = [
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.nf_conntrack_max",
];

/// `sysctl.d` files: the parser, key normalisation, glob matching and the
/// precedence queries over a scan made of the input split into files.
///
/// Checks: no panic; every key is non-empty, has no whitespace and is
/// already normalised; lines increase; assignments rendered back as
/// `key = value` lines parse to the same keys and values; a key matches
/// itself as a glob when it has no glob characters.
pub fn check_sysctl_d(data: &[u8]) {
    use conntrack_core::host::sysctl_d::{self, SysctlFile, SysctlScan};
    let text = String::from_utf8_lossy(data);
    let parsed = sysctl_d::parse(&text);
    let lines = text.lines().count();
    let mut rendered = String::new();
    let mut prev = 0;
    for a in &parsed {
        assert!(
            !a.key.is_empty() && !a.key.contains(char::is_whitespace),
            "{a:?}"
        );
        assert_eq!(sysctl_d::normalize_key(&a.key), a.key, "{a:?}");
        assert!(a.line > prev && a.line <= lines, "{a:?}");
        prev = a.line;
        if !a.key.contains(['*', '?', '[']) {
            assert!(sysctl_d::glob_match(&a.key, &a.key), "{a:?}");
        }
        // A key that reads as a comment keeps systemd's `-` prefix.
        let dash = if a.key.starts_with(['#', ';']) {
            "-"
        } else {
            ""
        };
        rendered.push_str(&format!("{dash}{} = {}\n", a.key, a.value));
    }
    let back = sysctl_d::parse(&rendered);
    assert_eq!(back.len(), parsed.len(), "{rendered:?}");
    for (a, b) in parsed.iter().zip(&back) {
        assert_eq!((&a.key, &a.value), (&b.key, &b.value), "{rendered:?}");
    }
    // The input as several files (split at NUL bytes), and the queries.
    let files: Vec<SysctlFile> = text
        .split('\0')
        .enumerate()
        .map(|(i, t)| SysctlFile {
            path: format!("/etc/sysctl.d/{i:02}.conf"),
            name: format!("{i:02}.conf"),
            masked: false,
            entries: sysctl_d::parse(t),
        })
        .collect();
    let scan = SysctlScan::from_files(files);
    let over = scan.overrides("50-conntrack-kit.conf", &PLAN_KEYS);
    assert!(over.iter().all(|o| PLAN_KEYS.contains(&o.key.as_str())));
    for k in PLAN_KEYS {
        if let Some((path, _)) = scan.effective(k) {
            assert!(path.starts_with("/etc/sysctl.d/"));
        }
    }
    let _ = scan.has_etc_file("00.conf");
}

/// `modprobe.d` `options` lines.
///
/// Checks: no panic; module names have no `-`; lines increase; options
/// rendered back as `options MODULE PARAM=VALUE` lines parse to the same
/// module, parameter and value.
pub fn check_modprobe_d(data: &[u8]) {
    use conntrack_core::host::modprobe_d;
    let text = String::from_utf8_lossy(data);
    let opts = modprobe_d::parse("/etc/modprobe.d/f.conf", "f.conf", &text);
    let mut rendered = String::new();
    let mut prev = 0;
    for o in &opts {
        assert!(!o.module.contains('-') && !o.module.is_empty(), "{o:?}");
        assert!(o.line >= prev, "{o:?}");
        prev = o.line;
        rendered.push_str(&format!("options {} {}={}\n", o.module, o.param, o.value));
    }
    let back = modprobe_d::parse("/etc/modprobe.d/f.conf", "f.conf", &rendered);
    assert_eq!(back.len(), opts.len(), "{rendered:?}");
    for (a, b) in opts.iter().zip(&back) {
        assert_eq!(
            (&a.module, &a.param, &a.value),
            (&b.module, &b.param, &b.value),
            "{rendered:?}"
        );
    }
}

/// kube-proxy configuration text (`KubeProxyConfiguration` YAML and
/// command-line flags) and Go durations.
///
/// Checks: no panic; a duration that parses, written back as seconds and
/// as `XhYmZs`, parses to the same value; the conntrack settings found,
/// written back as a YAML `conntrack:` block, are read back the same.
pub fn check_kube_proxy(data: &[u8]) {
    use conntrack_core::host::kube_proxy::{self, KubeProxy};
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let v = line.rsplit([':', '=', ' ']).next().unwrap_or(line);
        for s in [line, v] {
            if let Some(secs) = kube_proxy::parse_go_duration(s) {
                assert_eq!(
                    kube_proxy::parse_go_duration(&format!("{secs}s")),
                    Some(secs)
                );
                let go = format!("{}h{}m{}s", secs / 3600, secs / 60 % 60, secs % 60);
                assert_eq!(kube_proxy::parse_go_duration(&go), Some(secs), "{go}");
            }
        }
    }
    let mut kp = KubeProxy::default();
    let _ = kube_proxy::apply_config_text(&mut kp, &text);
    let _ = kube_proxy::config_flag(&text);
    let mut yaml = String::from("kind: KubeProxyConfiguration\nconntrack:\n");
    let field = |y: &mut String, k: &str, v: Option<u32>, unit: &str| {
        if let Some(v) = v {
            y.push_str(&format!("  {k}: {v}{unit}\n"));
        }
    };
    field(&mut yaml, "maxPerCore", kp.max_per_core, "");
    field(&mut yaml, "min", kp.min, "");
    field(
        &mut yaml,
        "tcpEstablishedTimeout",
        kp.tcp_established_timeout,
        "s",
    );
    field(
        &mut yaml,
        "tcpCloseWaitTimeout",
        kp.tcp_close_wait_timeout,
        "s",
    );
    let mut back = KubeProxy::default();
    assert!(kube_proxy::apply_config_text(&mut back, &yaml));
    assert_eq!(back, kp, "{yaml}");
    if let Some(e) = kp.effective_max(64) {
        assert!(e >= u64::from(kp.min.unwrap_or(0)));
    }
}

/// `connlabel.conf` (`LabelMap::parse`).
///
/// Checks: no panic; every named bit is below 128 and its name maps back
/// to it; the map rendered as `BIT NAME` lines parses to the same map.
pub fn check_label_map(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let map = LabelMap::parse(&text);
    let mut rendered = String::new();
    for bit in 0..conntrack_core::Labels::BITS {
        if let Some(name) = map.name(bit) {
            assert_eq!(map.bit(name), Some(bit), "{name:?}");
            rendered.push_str(&format!("{bit} {name}\n"));
        }
    }
    assert!(map.name(conntrack_core::Labels::BITS).is_none());
    assert_eq!(LabelMap::parse(&rendered), map, "{rendered:?}");
}

/// The flow mix of `fill` and `conntrack_netlink::fill` (`Mix`'s
/// `FromStr`, e.g. `tcp=60,udp=30,icmp=10`).
///
/// Checks: no panic; the mix rendered back parses equal; over one period
/// of the interleaving each kind gets exactly its weight.
pub fn check_flow_mix(data: &[u8]) {
    use conntrack_netlink::fill::Mix;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mix) = text.parse::<Mix>() else {
        return;
    };
    let shown = mix.to_string();
    assert_eq!(shown.parse::<Mix>().as_ref(), Ok(&mix), "{shown}");
    let total: u64 = mix.weights().iter().map(|&(_, w)| u64::from(w)).sum();
    assert!(total > 0);
    let _ = mix.kind_of(u64::MAX);
    if total <= 4096 {
        for &(k, _) in mix.weights() {
            let want: u64 = mix
                .weights()
                .iter()
                .filter(|&&(j, _)| j == k)
                .map(|&(_, w)| u64::from(w))
                .sum();
            let got = (0..total).filter(|&i| mix.kind_of(i) == k).count() as u64;
            assert_eq!(got, want, "{shown}");
        }
    }
}

/// The NAT rules of `iptables-save` and `nft list ruleset` text.
///
/// Checks: no panic; every rule's text and source match are cut and free
/// of control characters (they reach the report); rule lines exist and
/// increase; there are no more rules than lines.
pub fn check_nat_rules(data: &[u8]) {
    use conntrack_core::nat_rules::NatRules;
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    for rules in [
        NatRules::parse_iptables_save(&text),
        NatRules::parse_nft(&text),
    ] {
        assert!(rules.source_nat.len() + rules.dnat_rules <= lines);
        let mut prev = 0;
        for r in &rules.source_nat {
            assert!(r.line > prev && r.line <= lines, "{r:?}");
            prev = r.line;
            assert!(
                r.text.chars().count() <= 240 && no_controls(&r.text, false),
                "{r:?}"
            );
            if let Some(s) = &r.source {
                assert!(s.chars().count() <= 240 && no_controls(s, false), "{r:?}");
            }
            let _ = r.to_string();
        }
        let _ = rules.without_fully_random().count();
    }
}

/// Targets whose every input builds a directory tree and (for `capture`)
/// runs the whole analysis: the stable replay gives them a twentieth of
/// the generated inputs of the others, which costs about the same time.
pub const TREE_TARGETS: &[&str] = &["capture", "host_tree"];

/// One fuzz target's check.
pub type Check = fn(&[u8]);

/// A drop tracer record (`conntrack_netlink::trace::record`): parse never
/// panics, and emit(parse(x)) parses back to parse(x).
pub fn check_trace_record(data: &[u8]) {
    use conntrack_netlink::trace::record::{RawDrop, decode_tuple, emit_tuple};
    if let Ok(r) = RawDrop::parse(data) {
        let again = RawDrop::parse(&r.emit()).expect("an emitted record must parse");
        assert_eq!(again, r, "emit/parse not stable");
    }
    if let Some(t) = decode_tuple(data) {
        assert_eq!(
            decode_tuple(&emit_tuple(&t)),
            Some(t),
            "tuple emit/decode not stable"
        );
    }
}

/// The bulk rule syntax (`conntrack_netlink::bulk::syntax`): parsing a rule
/// or a set never panics, and every rule that parses reads back from its
/// own text form to the same rule (the property test `parser_never_panics`
/// in `conntrack-netlink/tests/bulk_props.rs` is the generated counterpart).
pub fn check_bulk_rule(data: &[u8]) {
    use conntrack_netlink::bulk::{FilterSet, Rule};
    fn round_trip(r: &Rule) {
        let text = r.to_string();
        let again: Rule = text
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} (from {r:?}) does not parse: {e}"));
        assert_eq!(&again, r, "{text:?}");
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(r) = text.parse::<Rule>() {
        round_trip(&r);
    }
    if let Ok(set) = FilterSet::parse(&text) {
        for r in set.rules() {
            round_trip(r);
        }
    }
}

/// The targets by name, for the replay test and the CI script.
pub const TARGETS: &[(&str, Check)] = &[
    ("procstat", check_procstat),
    ("cli_stats", check_cli_stats),
    ("cli_list", check_cli_list),
    ("nl_flow", check_nl_flow),
    ("nl_stats", check_nl_stats),
    ("nl_event", check_nl_event),
    ("mirror", check_mirror),
    ("host", check_host),
    ("trace_record", check_trace_record),
    ("capture", check_capture),
    ("host_tree", check_host_tree),
    ("stats_series", check_stats_series),
    ("attribution", check_attribution),
    ("sysctl_d", check_sysctl_d),
    ("modprobe_d", check_modprobe_d),
    ("kube_proxy", check_kube_proxy),
    ("label_map", check_label_map),
    ("flow_mix", check_flow_mix),
    ("nat_rules", check_nat_rules),
    ("bulk_rule", check_bulk_rule),
];
