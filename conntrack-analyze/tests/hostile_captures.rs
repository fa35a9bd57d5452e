//! Hostile capture directories: every case is built at test time in a
//! temporary directory and loaded with `capture::load` on a thread with a
//! deadline, so a blocked read (a FIFO, `/proc/kmsg`) fails the test
//! instead of hanging it. Each case must give a typed error or a clearly
//! degraded capture (a note that names the file and says what happened),
//! never a panic, a hang or a read without bound.

use conntrack_analyze::capture::{
    self, Capture, CaptureError, CaptureNote, LoadOptions, MAX_MALFORMED_LINES, MAX_SMALL_FILE,
    NoteKind,
};
use conntrack_core::Counter;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longer than any case needs in a debug build on a loaded machine; a
/// blocked read never ends.
const DEADLINE: Duration = Duration::from_secs(120);

/// Two `/proc` samples 10 s apart: 100 drops, 10 per second.
const STATS: &str = "@ 0\nentries  insert_failed drop\n00000010  00000000 00000000\n\
                     @ 10\nentries  insert_failed drop\n00000010  00000064 00000064\n";

/// One sample's `/proc` text, for series built by the cases.
fn sample(at: &str, drop: u32) -> String {
    format!("@ {at}\nentries  insert_failed drop\n00000010  00000000 {drop:08x}\n")
}

/// Runs `f` on a thread; panics when it has not finished by the deadline.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still running after {DEADLINE:?} (a blocked or unbounded read)")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
    }
}

fn try_load(dir: &Path) -> Result<Capture, CaptureError> {
    let d = dir.to_path_buf();
    within(&format!("load {}", dir.display()), move || {
        capture::load(&d, &LoadOptions::default())
    })
}

fn load(dir: &Path) -> Capture {
    try_load(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// A capture directory with a temporary parent (for links out of it).
struct Case {
    parent: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let parent = tempfile::tempdir().unwrap();
        fs::create_dir(parent.path().join("capture")).unwrap();
        Case { parent }
    }

    /// A capture with good statistics, so that what a bad file costs shows.
    fn with_stats() -> Case {
        let c = Case::new();
        c.write("stats.txt", STATS);
        c
    }

    fn dir(&self) -> PathBuf {
        self.parent.path().join("capture")
    }

    fn path(&self, rel: &str) -> PathBuf {
        let p = self.dir().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }

    fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        fs::write(self.path(rel), content).unwrap();
    }

    fn fifo(&self, rel: &str) {
        let ok = std::process::Command::new("mkfifo")
            .arg(self.path(rel))
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mkfifo {rel}");
    }

    fn link(&self, rel: &str, target: impl AsRef<Path>) {
        symlink(target, self.path(rel)).unwrap();
    }

    fn load(&self) -> Capture {
        load(&self.dir())
    }
}

fn notes_of<'a>(c: &'a Capture, file: &str) -> Vec<&'a CaptureNote> {
    c.notes.iter().filter(|n| n.file == file).collect()
}

fn note_of<'a>(c: &'a Capture, file: &str) -> &'a CaptureNote {
    notes_of(c, file)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no note about {file}: {:#?}", c.notes))
}

/// Drops per second over the capture's rates.
fn drops(c: &Capture) -> Option<f64> {
    Some(c.observation.rates.as_ref()?.per_sec(Counter::Drop))
}

/// Every note, as shown, free of control characters.
fn assert_notes_escaped(c: &Capture) {
    for n in &c.notes {
        let shown = n.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
    }
}

/// The capture files read at the top of the directory.
const TOP_FILES: [&str; 7] = [
    "meta.txt",
    "stats.txt",
    "conntrack-S.txt",
    "conntrack-C.txt",
    "conntrack-L.txt",
    "iptables-save.txt",
    "nft-ruleset.txt",
];

/// Host files read through `HostFs` (each has a note when it is bad).
const HOST_FILES: [&str; 6] = [
    "proc/meminfo",
    "proc/slabinfo",
    "proc/sys/kernel/osrelease",
    "proc/sys/net/netfilter/nf_conntrack_max",
    "proc/net/stat/nf_conntrack",
    "sys/class/net/eth0/queues/rx-0/rps_cpus",
];

/// Configuration files: sysctl.d ones are noted as unreadable; modprobe.d
/// and kube-proxy ones are skipped silently.
const CONFIG_FILES: [&str; 4] = [
    "etc/sysctl.d/90-x.conf",
    "etc/sysctl.conf",
    "etc/modprobe.d/x.conf",
    "var/lib/kube-proxy/config.conf",
];

/// Builds a capture with `make` applied at `rel`, loads it, and checks
/// the note about `rel` has the kind expected for its place (`quiet`:
/// files skipped without a note).
fn each_file_is_noted(
    what: &str,
    make: impl Fn(&Case, &str),
    top: NoteKind,
    host: NoteKind,
    quiet: &[&str],
) {
    for rel in TOP_FILES.iter().chain(&HOST_FILES).chain(&CONFIG_FILES) {
        // conntrack-S.txt is read only without stats.txt.
        let no_stats = *rel == "stats.txt" || *rel == "conntrack-S.txt";
        let case = if no_stats {
            Case::new()
        } else {
            Case::with_stats()
        };
        make(&case, rel);
        let c = case.load();
        assert_notes_escaped(&c);
        let want = if quiet.contains(rel) {
            None
        } else if TOP_FILES.contains(rel) {
            Some(top)
        } else if HOST_FILES.contains(rel) {
            Some(host)
        } else if rel.starts_with("etc/sysctl") {
            Some(NoteKind::Unreadable)
        } else {
            None
        };
        if let Some(kind) = want {
            let kinds: Vec<NoteKind> = notes_of(&c, rel).iter().map(|n| n.kind).collect();
            assert!(kinds.contains(&kind), "{what} at {rel}: {:#?}", c.notes);
        }
        if !no_stats {
            assert_eq!(
                drops(&c),
                Some(10.0),
                "{what} at {rel}: the rest is still read"
            );
        }
    }
}

// -- meta.txt and sample times -----------------------------------------------

#[test]
fn meta_interval_is_not_a_key_whatever_its_value() {
    for v in [
        "1e300", "0", "-1", "NaN", "inf", "-inf", "1e-300", "0.001", "",
    ] {
        let case = Case::with_stats();
        case.write("meta.txt", format!("interval={v}\nhostname=h\n"));
        let c = case.load();
        assert_eq!(c.meta.hostname.as_deref(), Some("h"), "interval={v}");
        // The rates come from the samples' own times, not from meta.txt.
        assert_eq!(drops(&c), Some(10.0), "interval={v}");
        assert_eq!(
            c.observation.rates.as_ref().unwrap().window.covered_secs,
            10.0
        );
    }
}

#[test]
fn bad_sample_times_lose_one_sample_not_the_series() {
    // 0 and 10 are good; the middle sample's time is not whole seconds,
    // out of range, or not after the one before (a repeated second: the
    // tiniest interval there is).
    for bad in [
        "1e300",
        "-5",
        "NaN",
        "inf",
        "0.001",
        "",
        "18446744073709551616",
        "0",
        "5 6",
    ] {
        let case = Case::new();
        case.write(
            "stats.txt",
            format!("{}{}{}", sample("0", 0), sample(bad, 50), sample("10", 100)),
        );
        let c = case.load();
        let n = note_of(&c, "stats.txt");
        assert_eq!(n.kind, NoteKind::Malformed, "@ {bad}: {n}");
        assert!(n.detail.contains("line 4"), "@ {bad}: {n}");
        assert!(n.detail.contains("2 of 3 samples kept"), "@ {bad}: {n}");
        assert_eq!(
            c.stats_source.as_deref(),
            Some("stats.txt (2 of 3 samples)")
        );
        assert_eq!(drops(&c), Some(10.0), "@ {bad}");
    }
}

#[test]
fn an_enormous_interval_gives_finite_rates() {
    let case = Case::new();
    case.write(
        "stats.txt",
        format!("{}{}", sample("0", 0), sample(&u64::MAX.to_string(), 100)),
    );
    let c = case.load();
    let r = c.observation.rates.as_ref().unwrap();
    assert!(r.window.covered_secs.is_finite());
    let d = r.per_sec(Counter::Drop);
    assert!(d.is_finite() && d > 0.0 && d < 1e-15, "{d}");
}

#[test]
fn samples_all_bad_fall_back_to_the_next_source() {
    let case = Case::new();
    case.write("stats.txt", "@ soon\ngarbage\n@ later\n\u{1b}[2J\n");
    case.write(
        "conntrack-S.txt",
        "cpu=0   \tfound=0 invalid=1 insert=0 insert_failed=2 drop=3 early_drop=0 error=0 \
         search_restart=0 \n",
    );
    let c = case.load();
    assert!(
        note_of(&c, "stats.txt")
            .detail
            .contains("0 of 2 samples kept")
    );
    assert_eq!(
        c.stats_source.as_deref(),
        Some("conntrack-S.txt (one sample)")
    );
    assert!(c.observation.rates.is_none());
    assert_notes_escaped(&c);
}

// -- CPU rows ----------------------------------------------------------------

#[test]
fn different_cpu_rows_are_noted_not_silent() {
    // /proc rows carry no CPU ids: 2 rows, then 3, cannot be matched.
    let case = Case::new();
    case.write(
        "stats.txt",
        "@ 0\nentries  drop\n00000010  00000000\n00000010  00000000\n\
         @ 10\nentries  drop\n00000010  00000005\n00000010  00000005\n00000010  00000005\n",
    );
    let c = case.load();
    let r = c.observation.rates.as_ref().unwrap();
    assert_eq!(r.window.used_intervals, 0);
    let notes: Vec<String> = notes_of(&c, "stats.txt")
        .iter()
        .map(|n| n.detail.clone())
        .collect();
    assert!(
        notes
            .iter()
            .any(|d| d.contains("CPU rows changed at 10 s") && d.contains("cannot be matched")),
        "{notes:#?}"
    );
    assert!(
        notes.iter().any(|d| d.contains("no usable interval")),
        "{notes:#?}"
    );

    // conntrack -S rows name their CPUs: one that appears is left out of
    // that interval, the others still give rates.
    let case = Case::new();
    case.write(
        "stats.txt",
        "@ 0\ncpu=0 found=0 drop=0\ncpu=1 found=0 drop=0\n\
         @ 10\ncpu=0 found=0 drop=50\ncpu=1 found=0 drop=50\ncpu=2 found=0 drop=900\n",
    );
    let c = case.load();
    assert_eq!(drops(&c), Some(10.0));
    let n = note_of(&c, "stats.txt");
    assert!(
        n.detail.contains("1 appeared (cpu2)") && n.detail.contains("only the CPUs in both"),
        "{n}"
    );
}

#[test]
fn very_many_cpu_rows_are_bounded_work() {
    // 3 samples of 20,000 named CPU rows: comparing two of them is 4e8
    // row pairs, over the budget: no rates, said so, and quickly.
    let mut text = String::new();
    for (t, d) in [(0, 0), (10, 1), (20, 2)] {
        text.push_str(&format!("@ {t}\n"));
        for cpu in 0..20_000 {
            text.push_str(&format!("cpu={cpu} found=0 drop={d}\n"));
        }
    }
    let case = Case::new();
    case.write("stats.txt", &text);
    let start = Instant::now();
    let c = case.load();
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert!(c.observation.rates.is_none());
    let n = note_of(&c, "stats.txt");
    assert!(n.detail.contains("too many CPU rows"), "{n}");
    assert!(
        c.observation.snapshot.stats.is_some(),
        "the last sample still counts"
    );

    // 8192 CPUs (x86_64's largest NR_CPUS) in two samples are compared.
    let mut text = String::new();
    for (t, d) in [(0, 0), (10, 1)] {
        text.push_str(&format!("@ {t}\n"));
        for cpu in 0..8192 {
            text.push_str(&format!("cpu={cpu} found=0 drop={d}\n"));
        }
    }
    case.write("stats.txt", &text);
    let c = case.load();
    assert!((drops(&c).unwrap() - 819.2).abs() < 1e-9);
}

/// The rates match every CPU row of a sample against every row of the
/// next (`match_cpus` and the per-CPU accumulator look rows up by linear
/// search), so their cost is quadratic in the rows; the capture loader
/// bounds it ([`capture::MAX_RATE_ROW_PAIRS`]), a direct caller is not
/// protected.
#[test]
#[ignore = "bug: rates.rs matches CPU rows by linear search (quadratic in the rows); \
            fix: index the earlier sample's rows by CPU id in a map"]
fn rates_over_many_cpu_rows_are_not_quadratic() {
    use conntrack_analyze::StatsSeries;
    let mut text = String::new();
    for (t, d) in [(0, 0), (10, 1)] {
        text.push_str(&format!("@ {t}\n"));
        for cpu in 0..200_000 {
            text.push_str(&format!("cpu={cpu} found=0 drop={d}\n"));
        }
    }
    let series = StatsSeries::parse_captures(&text).unwrap();
    let start = Instant::now();
    let r = within("rates over 200,000 rows", move || series.rates());
    assert_eq!(r.per_sec(Counter::Drop), 20_000.0);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

// -- what is not a regular file ------------------------------------------------

#[test]
fn a_fifo_as_each_file_is_refused_without_blocking() {
    each_file_is_noted(
        "FIFO",
        |c, rel| c.fifo(rel),
        NoteKind::NotARegularFile,
        NoteKind::NotARegularFile,
        &[],
    );
}

#[test]
fn a_fifo_in_sysctl_d_and_modprobe_d() {
    let case = Case::with_stats();
    case.fifo("etc/sysctl.d/50-fifo.conf");
    case.fifo("etc/modprobe.d/fifo.conf");
    case.write(
        "etc/sysctl.d/60-real.conf",
        "net.netfilter.nf_conntrack_max = 7\n",
    );
    case.write(
        "etc/modprobe.d/real.conf",
        "options nf_conntrack hashsize=64\n",
    );
    let c = case.load();
    let scan = c.observation.config.sysctl_d.as_ref().unwrap();
    assert_eq!(scan.unreadable, ["/etc/sysctl.d/50-fifo.conf"]);
    assert_eq!(
        scan.effective("net.netfilter.nf_conntrack_max"),
        Some(("/etc/sysctl.d/60-real.conf", "7"))
    );
    let mp = c.observation.config.modprobe_d.as_ref().unwrap();
    assert_eq!(mp.settings("nf_conntrack", "hashsize").count(), 1);
}

#[test]
fn a_directory_where_a_file_is_expected() {
    each_file_is_noted(
        "directory",
        |c, rel| fs::create_dir_all(c.dir().join(rel)).unwrap(),
        NoteKind::NotARegularFile,
        NoteKind::NotARegularFile,
        // Directories among the sysctls (`nf_log`) are skipped.
        &["proc/sys/net/netfilter/nf_conntrack_max"],
    );
}

#[test]
fn links_to_endless_devices_are_not_followed() {
    for dev in ["/dev/zero", "/dev/urandom"] {
        each_file_is_noted(
            dev,
            |c, rel| c.link(rel, dev),
            NoteKind::OutsideCapture,
            NoteKind::OutsideCapture,
            &[],
        );
    }
}

#[test]
fn a_device_inside_the_capture_is_not_read() {
    // The same device as /dev/zero, made inside the capture (root only).
    let case = Case::with_stats();
    let made = std::process::Command::new("mknod")
        .arg(case.path("conntrack-L.txt"))
        .args(["c", "1", "5"])
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("skipped: mknod needs CAP_MKNOD");
        return;
    }
    let dev = case.path("proc/meminfo");
    fs::hard_link(case.path("conntrack-L.txt"), dev).unwrap();
    let c = case.load();
    assert_eq!(
        note_of(&c, "conntrack-L.txt").kind,
        NoteKind::NotARegularFile
    );
    assert_eq!(note_of(&c, "proc/meminfo").kind, NoteKind::NotARegularFile);
    assert!(c.observation.hotspots.is_none());
}

#[test]
fn links_to_proc_kmsg_are_not_followed() {
    // /proc/kmsg is a "regular" file whose read blocks until the kernel
    // logs something (and takes the message from whoever else reads it).
    let case = Case::new();
    for rel in [
        "stats.txt",
        "meta.txt",
        "proc/meminfo",
        "etc/sysctl.d/k.conf",
    ] {
        case.link(rel, "/proc/kmsg");
    }
    let c = case.load();
    for rel in ["stats.txt", "meta.txt", "proc/meminfo"] {
        assert_eq!(note_of(&c, rel).kind, NoteKind::OutsideCapture, "{rel}");
    }
    assert_eq!(
        note_of(&c, "etc/sysctl.d/k.conf").kind,
        NoteKind::Unreadable
    );
}

#[test]
fn links_out_of_the_capture_are_not_followed() {
    let case = Case::new();
    // A good stats file next to the capture, reached by an absolute and a
    // relative link.
    let outside = case.parent.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("stats.txt"), STATS).unwrap();
    fs::write(
        outside.join("kp.yaml"),
        "kind: KubeProxyConfiguration\nconntrack:\n  maxPerCore: 7\n",
    )
    .unwrap();
    case.link("stats.txt", outside.join("stats.txt"));
    case.link("conntrack-S.txt", "../outside/stats.txt");
    case.link("proc/sys/kernel/osrelease", "/proc/sys/kernel/osrelease");
    // kube-proxy's unit points out of the capture with `..`.
    case.write(
        "etc/systemd/system/kube-proxy.service",
        "ExecStart=/usr/bin/kube-proxy --config=/../outside/kp.yaml\n",
    );
    case.link(
        "var/lib/kube-proxy/config.conf",
        "../../../../outside/kp.yaml",
    );
    // Module facts of the analysing host must not become the capture's.
    case.link("sys/module/nf_conntrack", "/sys/module/nf_conntrack");
    let c = case.load();
    assert_eq!(
        c.observation.config.conntrack_module,
        conntrack_core::host::ModuleKind::Unknown
    );
    for rel in ["stats.txt", "conntrack-S.txt", "proc/sys/kernel/osrelease"] {
        assert_eq!(note_of(&c, rel).kind, NoteKind::OutsideCapture, "{rel}");
    }
    assert!(c.observation.rates.is_none());
    assert!(c.observation.snapshot.kernel_release.is_none());
    let kp = c.observation.config.kube_proxy.as_ref().unwrap();
    assert_eq!(kp.files, ["/etc/systemd/system/kube-proxy.service"]);
    assert_eq!(kp.max_per_core, None, "read a file outside the capture");
}

#[test]
fn symlink_loops_are_unreadable_files() {
    let case = Case::with_stats();
    case.link("meta.txt", "meta.txt");
    case.link("conntrack-C.txt", "conntrack-S.txt");
    case.link("conntrack-S.txt", "conntrack-C.txt");
    case.link("proc/meminfo", "meminfo");
    case.link("etc/sysctl.d/loop.conf", "loop.conf");
    case.link("etc/modprobe.d/loop.conf", "loop.conf");
    case.link("sys/class/net/lo", ".");
    case.link("sys/module", "module");
    let c = case.load();
    assert_notes_escaped(&c);
    for rel in ["meta.txt", "conntrack-C.txt", "proc/meminfo"] {
        assert_eq!(note_of(&c, rel).kind, NoteKind::Unreadable, "{rel}");
    }
    assert_eq!(
        note_of(&c, "etc/sysctl.d/loop.conf").kind,
        NoteKind::Unreadable
    );
    assert_eq!(drops(&c), Some(10.0));
}

// -- sizes -------------------------------------------------------------------

#[test]
fn huge_sparse_files_are_not_read() {
    let case = Case::with_stats();
    let sparse = |rel: &str, len: u64| {
        fs::File::create(case.path(rel))
            .unwrap()
            .set_len(len)
            .unwrap();
    };
    for rel in ["meta.txt", "conntrack-C.txt", "iptables-save.txt"] {
        sparse(rel, 100 << 30);
    }
    sparse("proc/slabinfo", 100 << 30);
    sparse("etc/sysctl.d/big.conf", 100 << 30);
    // A listing may be large (up to 8 GiB), but one of zeros is not one.
    sparse("conntrack-L.txt", 9 << 30);
    let start = Instant::now();
    let c = case.load();
    for rel in [
        "meta.txt",
        "conntrack-C.txt",
        "iptables-save.txt",
        "proc/slabinfo",
    ] {
        assert_eq!(note_of(&c, rel).kind, NoteKind::TooLarge, "{rel}");
    }
    let l = notes_of(&c, "conntrack-L.txt");
    assert!(
        l.iter().any(|n| n.detail.contains("read no further")),
        "{l:#?}"
    );
    // Zeros have no newline: one overlong line, and no more is read.
    assert_eq!(c.malformed_flows, 1);
    assert_eq!(drops(&c), Some(10.0));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn very_long_lines() {
    let case = Case::with_stats();
    let long = "x".repeat(10 << 20);
    // One 10 MiB line in the listing, between two good lines: skipped.
    let flow = "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 \
                src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 [ASSURED] mark=0 use=1\n";
    case.write("conntrack-L.txt", format!("{flow}{long}\n{flow}"));
    // A description as long as the size cap allows.
    let desc = "d".repeat(MAX_SMALL_FILE as usize - 64);
    case.write("meta.txt", format!("description={desc}\nhostname=h\n"));
    let c = case.load();
    assert_eq!(c.malformed_flows, 1);
    assert_eq!(c.observation.hotspots.as_ref().unwrap().flows, 2);
    assert!(
        note_of(&c, "conntrack-L.txt")
            .detail
            .contains("longer than")
    );
    // A line over 16 MiB ends the listing.
    let longer = "x".repeat((capture::MAX_SKIPPED_LINE_BYTES + (1 << 20)) as usize);
    case.write("conntrack-L.txt", format!("{flow}{longer}\n{flow}"));
    let c = case.load();
    assert_eq!(c.observation.hotspots.as_ref().unwrap().flows, 1);
    let notes = notes_of(&c, "conntrack-L.txt");
    assert!(
        notes
            .iter()
            .any(|n| n.detail.contains("read no further after a line longer")),
        "{notes:#?}"
    );
    assert_eq!(c.meta.description.as_ref().unwrap().len(), 256);
    assert_eq!(c.meta.hostname.as_deref(), Some("h"));
}

#[test]
fn millions_of_tiny_lines_within_the_caps() {
    let case = Case::new();
    // 20M one-byte lines: not a listing, abandoned early.
    case.write("conntrack-L.txt", "x\n".repeat(20_000_000));
    // 5M meta lines.
    case.write("meta.txt", "k=v\n".repeat(5_000_000) + "hostname=h\n");
    // 3M empty samples, then two good ones.
    let mut stats = String::new();
    for t in 0..3_000_000u32 {
        stats.push_str(&format!("@ {t}\n"));
    }
    stats.push_str(&sample("3000000", 0));
    stats.push_str(&sample("3000010", 100));
    case.write("stats.txt", stats);
    let start = Instant::now();
    let c = case.load();
    assert!(
        start.elapsed() < Duration::from_secs(90),
        "{:?}",
        start.elapsed()
    );
    assert!(c.malformed_flows < 2 * MAX_MALFORMED_LINES);
    assert_eq!(c.meta.hostname.as_deref(), Some("h"));
    assert!(
        note_of(&c, "stats.txt")
            .detail
            .contains("2 of 3000002 samples kept")
    );
    assert_eq!(drops(&c), Some(10.0));
}

// -- content -----------------------------------------------------------------

#[test]
fn an_empty_directory_judges_nothing() {
    let case = Case::new();
    let c = case.load();
    assert!(c.is_empty());
    assert!(c.observation.rates.is_none() && c.observation.hotspots.is_none());
    let n = note_of(&c, ".");
    assert!(n.detail.contains("nothing could be read"), "{n}");
    // And a capture that has data does not get that note.
    assert!(notes_of(&Case::with_stats().load(), ".").is_empty());
}

#[test]
fn one_bad_top_level_file_degrades_the_capture() {
    let garbage: &[u8] = b"\x00\xff\x1b[2J garbage \xfe\n@@@\n= = =\n";
    for rel in TOP_FILES {
        let case = if rel == "conntrack-S.txt" {
            Case::new()
        } else {
            Case::with_stats()
        };
        if rel == "stats.txt" {
            case.write("conntrack-S.txt", "cpu=0 found=0 drop=3\n");
        }
        case.write("conntrack-C.txt", "42\n");
        case.write(rel, garbage);
        let c = case.load();
        assert_notes_escaped(&c);
        match rel {
            // Text files whose unknown lines are skipped: no note needed.
            "meta.txt" | "iptables-save.txt" | "nft-ruleset.txt" => {}
            _ => assert_eq!(note_of(&c, rel).kind, NoteKind::Malformed, "{rel}"),
        }
        match rel {
            "stats.txt" => assert_eq!(
                c.stats_source.as_deref(),
                Some("conntrack-S.txt (one sample)")
            ),
            "conntrack-S.txt" => assert_eq!(c.stats_source, None),
            _ => assert_eq!(drops(&c), Some(10.0), "{rel}"),
        }
        if rel != "conntrack-C.txt" {
            assert_eq!(c.observation.snapshot.count, Some(42), "{rel}");
        }
    }
}

#[test]
fn control_characters_come_out_escaped() {
    let case = Case::with_stats();
    case.write(
        "meta.txt",
        "hostname=web\u{1b}]0;pwned\u{7}\r\ndescription=\u{1b}[2J\u{1b}[31mred\u{7}\rover\n\
         captured_at=\u{9b}31m\n",
    );
    // File names with control characters, each bad so that it is noted.
    case.write(
        "proc/sys/net/netfilter/nf_conntrack_\u{1b}]0;x\u{7}",
        "1\n2\n",
    );
    case.fifo("etc/sysctl.d/\u{1b}[31mred\r.conf");
    let c = case.load();
    assert_notes_escaped(&c);
    let m = &c.meta;
    assert_eq!(m.hostname.as_deref(), Some("web\\u{1b}]0;pwned\\u{7}"));
    assert_eq!(
        m.description.as_deref(),
        Some("\\u{1b}[2J\\u{1b}[31mred\\u{7}\\u{d}over")
    );
    assert_eq!(m.captured_at.as_deref(), Some("\\u{9b}31m"));
    let shown: Vec<String> = c.notes.iter().map(|n| n.to_string()).collect();
    assert!(
        shown
            .iter()
            .any(|s| s.contains("nf_conntrack_\\u{1b}]0;x\\u{7}")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains("\\u{1b}[31mred\\u{d}.conf")),
        "{shown:#?}"
    );
}

#[test]
fn non_utf8_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let case = Case::new();
    case.write("meta.txt", b"hostname=caf\xe9\xff\n");
    let mut stats = sample("0", 0).into_bytes();
    stats.extend_from_slice(b"@ 5\nentries  drop\n\xff\xfe\n");
    stats.extend_from_slice(sample("10", 100).as_bytes());
    case.write("stats.txt", stats);
    case.write("proc/sys/net/netfilter/nf_conntrack_max", b"26\xff144\n");
    case.write("conntrack-L.txt", b"\xff\xfe\xfd\n");
    // A non-UTF-8 file name in sysctl.d (skipped: it cannot be shown).
    let name = OsStr::from_bytes(b"\xff\xfe.conf");
    fs::write(case.path("etc/sysctl.d/x").with_file_name(name), "a = 1\n").unwrap();
    let c = case.load();
    assert_notes_escaped(&c);
    assert_eq!(c.meta.hostname.as_deref(), Some("caf\u{fffd}\u{fffd}"));
    assert!(
        note_of(&c, "stats.txt")
            .detail
            .contains("2 of 3 samples kept")
    );
    assert_eq!(drops(&c), Some(10.0));
    assert_eq!(
        note_of(&c, "proc/sys/net/netfilter/nf_conntrack_max").kind,
        NoteKind::Malformed
    );
    assert_eq!(c.malformed_flows, 1);
    let scan = c.observation.config.sysctl_d.as_ref().unwrap();
    assert!(scan.files.is_empty() && scan.unreadable.is_empty());
}

#[test]
fn files_that_cannot_be_opened() {
    // `proc` is a file, so nothing under it can be opened (whoever runs
    // the test, root included).
    let case = Case::with_stats();
    case.write("proc", "not a directory\n");
    let c = case.load();
    assert_notes_escaped(&c);
    let proc_notes: Vec<_> = c
        .notes
        .iter()
        .filter(|n| n.file.starts_with("proc/"))
        .collect();
    assert!(
        proc_notes.iter().all(|n| n.kind == NoteKind::Unreadable),
        "{proc_notes:#?}"
    );
    assert!(!proc_notes.is_empty());
    assert_eq!(drops(&c), Some(10.0));

    // Mode 000: refused to anyone without CAP_DAC_OVERRIDE.
    let case = Case::with_stats();
    case.write("conntrack-C.txt", "42\n");
    let p = case.path("conntrack-C.txt");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::File::open(&p).is_ok() {
        eprintln!("skipped the mode 000 case: this process may read any file (root)");
        return;
    }
    let c = case.load();
    let n = note_of(&c, "conntrack-C.txt");
    assert_eq!(n.kind, NoteKind::Unreadable);
    assert!(n.detail.contains("permission denied"), "{n}");
}

#[test]
fn the_capture_directory_itself() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("missing");
    assert!(matches!(try_load(&missing), Err(CaptureError::NotFound(_))));
    let file = t.path().join("file");
    fs::write(&file, "x").unwrap();
    assert!(matches!(
        try_load(&file),
        Err(CaptureError::NotADirectory(_))
    ));
    let fifo = t.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    assert!(matches!(
        try_load(&fifo),
        Err(CaptureError::NotADirectory(_))
    ));
    let looped = t.path().join("loop");
    symlink(&looped, &looped).unwrap();
    assert!(matches!(
        try_load(&looped),
        Err(CaptureError::Unreadable { .. })
    ));
    // A link to a capture is a capture.
    let real = Case::with_stats();
    let link = t.path().join("link");
    symlink(real.dir(), &link).unwrap();
    assert_eq!(drops(&load(&link)), Some(10.0));
}
