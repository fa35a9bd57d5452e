//! [`HostFs`]: reads host facts from `ROOT/proc` and `ROOT/sys`.
//!
//! Reading is separate from parsing: each method reads one file once and
//! hands its text to a pure function of [`super::parse`]. Each fact is
//! independent: a missing file leaves its field empty in
//! [`HostFs::read_snapshot`] and is listed in [`HostReport::problems`]
//! next to malformed files, each a [`HostError`] naming the file.
//!
//! # Namespaces
//!
//! What a file shows depends on who opens it, not on the path:
//!
//! - `/proc/net/...` is a link to `/proc/self/net/...`: the network
//!   namespace of the reading process's *main thread* (`/proc/self` is the
//!   thread group). `/proc/thread-self/net/...` is the calling thread's
//!   (what [`HostFs::for_current_thread`] reads), `/proc/PID/net/...` is
//!   PID's (what [`HostFs::for_pid`] reads).
//! - `/proc/sys/net/...` always shows the namespace of the thread that
//!   opens the file, whatever the path. There is no per-PID view: to read
//!   another namespace's count and timeouts, run the reader inside it
//!   (`ip netns exec`, `nsenter -n`, or `setns(2)` on a thread, as
//!   `conntrack_netlink::Netns::run` does, with
//!   [`HostFs::for_current_thread`] so that every file agrees). With
//!   [`HostFs::for_pid`], per-namespace sysctls are only reported when the
//!   reader is in PID's namespace; otherwise only the global ones
//!   (`nf_conntrack_max`, `nf_conntrack_buckets`) are kept and
//!   [`HostError::OtherNamespace`] says why.
//! - `/sys/class/net` lists the interfaces of the namespace that *mounted*
//!   that sysfs instance (sysfs is tagged at mount time).
//! - `nf_conntrack_max`, the bucket count, `hashsize`, slabinfo, meminfo,
//!   CPUs, softirqs and modules are global.
//!
//! Pointing the root at `/proc/PID/root` reads a container's view of the
//! files; `ROOT/proc/self` then still means the reading process, which may
//! not exist in that container's PID namespace.

use super::error::{HostError, ParseError};
use super::parse;
use super::{HostSnapshot, RxQueue, SlabCache};
use crate::kernel::KernelVersion;
use crate::stats::Stats;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The largest file the reader accepts (16 MiB). `/proc/slabinfo` is tens
/// of KiB; the limit protects against a hostile tree (a huge or sparse
/// file). Only regular files are opened (procfs and sysfs files are):
/// FIFOs, sockets and devices are refused before opening
/// ([`HostError::NotAFile`]), so a read never blocks and never runs on
/// without end.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// How much of `smaps` is read for the page size: the first mappings are
/// enough, and generating the whole file walks every page table.
const SMAPS_PREFIX_BYTES: u64 = 16 << 10;

/// Sysctls whose value is the same in every network namespace (kernel
/// globals `nf_conntrack_max` and `nf_conntrack_htable_size`).
const GLOBAL_SYSCTLS: [&str; 2] = ["nf_conntrack_max", "nf_conntrack_buckets"];

const NETFILTER_SYSCTL_DIR: &str = "proc/sys/net/netfilter";

/// A value plus the problems met while assembling it (for facts made of
/// many files, such as every sysctl or every rx queue).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Partial<T> {
    /// What could be read.
    pub value: T,
    /// Files that could not be read or parsed.
    pub problems: Vec<HostError>,
}

/// A snapshot and the problems met while taking it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HostReport {
    /// Every fact that could be read.
    pub snapshot: HostSnapshot,
    /// Every fact that could not: absent files
    /// ([`HostError::is_not_found`]), unreadable and malformed ones.
    pub problems: Vec<HostError>,
}

impl HostReport {
    /// The problems that are bad data, not absent or unreadable files.
    pub fn malformed(&self) -> impl Iterator<Item = &HostError> {
        self.problems.iter().filter(|e| e.is_malformed())
    }
}

/// Whose network namespace the namespace-dependent files of a [`HostFs`]
/// show (`net/stat/nf_conntrack`, `ns/net`); see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetnsView {
    /// The reading process's (its main thread's): `ROOT/proc/net`,
    /// `ROOT/proc/self/ns/net`. The layout of fixture trees and captures.
    #[default]
    Process,
    /// The calling thread's: `ROOT/proc/thread-self/net`,
    /// `ROOT/proc/thread-self/ns/net` ([`HostFs::for_current_thread`]).
    CurrentThread,
    /// Process PID's: `ROOT/proc/PID/net`, `ROOT/proc/PID/ns/net`
    /// ([`HostFs::for_pid`]).
    Pid(u32),
}

/// A root-relocatable reader of host facts: `ROOT/proc/...` and
/// `ROOT/sys/...`.
///
/// ```
/// use conntrack_core::host::HostFs;
/// let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/host/linux-6.18");
/// let fs = HostFs::new(fixture);
/// assert_eq!(fs.read_max().unwrap(), 262144);
/// let report = fs.read_snapshot();
/// assert_eq!(report.snapshot.buckets, Some(262144));
/// assert_eq!(report.snapshot.timeouts["tcp"]["time_wait"], 120);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFs {
    root: PathBuf,
    view: NetnsView,
    /// With [`HostFs::confined`]: the root with every link resolved.
    confined_to: Option<PathBuf>,
}

fn trim_to_lines(bytes: &[u8]) -> &[u8] {
    match bytes.iter().rposition(|&b| b == b'\n') {
        Some(p) => &bytes[..=p],
        None => bytes,
    }
}

impl HostFs {
    /// A reader of `root/proc` and `root/sys` (`"/"` for the live host).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostFs {
            root: root.into(),
            view: NetnsView::Process,
            confined_to: None,
        }
    }

    /// Reads nothing outside the root: a file or directory whose path,
    /// once its symbolic links are resolved, leads out of the root is
    /// refused with [`HostError::OutsideRoot`] (as is a link loop, with
    /// the I/O error). For trees that come from elsewhere, such as a
    /// capture directory, where a link to `/proc/kmsg` (a "regular" file
    /// whose read blocks) or to a file of the analysing host must not be
    /// followed.
    ///
    /// Not for a container's root given as `/proc/PID/root`: resolving
    /// that magic link by name leaves the container.
    ///
    /// ```
    /// use conntrack_core::host::{HostError, HostFs};
    /// let t = tempfile::tempdir().unwrap();
    /// std::fs::create_dir_all(t.path().join("proc/sys/kernel")).unwrap();
    /// std::os::unix::fs::symlink("/proc/sys/kernel/osrelease",
    ///     t.path().join("proc/sys/kernel/osrelease")).unwrap();
    /// let fs = HostFs::new(t.path()).confined();
    /// assert!(matches!(fs.read_kernel_release(), Err(HostError::OutsideRoot { .. })));
    /// ```
    pub fn confined(mut self) -> Self {
        self.confined_to = Some(std::fs::canonicalize(&self.root).unwrap_or(self.root.clone()));
        self
    }

    /// Whether the reader is [`HostFs::confined`] to its root.
    pub fn is_confined(&self) -> bool {
        self.confined_to.is_some()
    }

    /// Reads the network-namespace files of process `pid`:
    /// `ROOT/proc/PID/net/stat/nf_conntrack` and `ROOT/proc/PID/ns/net`
    /// instead of the reader's own. See the module documentation for what
    /// this can and cannot change about sysctls.
    ///
    /// ```
    /// use conntrack_core::host::HostFs;
    /// let fs = HostFs::new("/").for_pid(1);
    /// assert_eq!(fs.pid(), Some(1));
    /// assert!(fs.path(&fs.net_path("stat/nf_conntrack")).ends_with("proc/1/net/stat/nf_conntrack"));
    /// ```
    pub fn for_pid(mut self, pid: u32) -> Self {
        self.view = NetnsView::Pid(pid);
        self
    }

    /// Reads the network-namespace files of the calling thread:
    /// `ROOT/proc/thread-self/net/stat/nf_conntrack` and
    /// `ROOT/proc/thread-self/ns/net` instead of the process's, which
    /// follow its main thread. With root `/`, on a thread that entered
    /// another network namespace (`setns(2)`, `conntrack_netlink::Netns::run`),
    /// every fact of [`HostFs::read_snapshot`] is then that namespace's: the
    /// per-namespace sysctls already show the opening thread's namespace.
    /// Needs Linux 3.17+ (`/proc/thread-self`).
    ///
    /// ```
    /// use conntrack_core::host::{HostFs, NetnsView};
    /// let fs = HostFs::new("/").for_current_thread();
    /// assert_eq!(fs.netns_view(), NetnsView::CurrentThread);
    /// assert_eq!(fs.net_path("stat/nf_conntrack"), "proc/thread-self/net/stat/nf_conntrack");
    /// // The calling thread's own namespace, read the same way as any other.
    /// if let Ok(ino) = fs.read_netns_inode() {
    ///     println!("this thread is in net:[{ino}]");
    /// }
    /// ```
    pub fn for_current_thread(mut self) -> Self {
        self.view = NetnsView::CurrentThread;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The process whose namespace files are read ([`HostFs::for_pid`]).
    pub fn pid(&self) -> Option<u32> {
        match self.view {
            NetnsView::Pid(p) => Some(p),
            _ => None,
        }
    }

    /// Whose namespace files are read.
    pub fn netns_view(&self) -> NetnsView {
        self.view
    }

    /// `ROOT/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// The path, relative to the root, of a file under the target's
    /// `/proc/net` (`proc/net/REL`, `proc/thread-self/net/REL` or
    /// `proc/PID/net/REL`), for the files this reader does not parse
    /// itself (`tcp`, `udp6`, ...): open it with [`HostFs::path`], or read
    /// it with [`HostFs::read_text`].
    pub fn net_path(&self, rel: &str) -> String {
        match self.view {
            NetnsView::Process => format!("proc/net/{rel}"),
            NetnsView::CurrentThread => format!("proc/thread-self/net/{rel}"),
            NetnsView::Pid(p) => format!("proc/{p}/net/{rel}"),
        }
    }

    fn ns_path(&self) -> String {
        match self.view {
            NetnsView::Process => "proc/self/ns/net".to_string(),
            NetnsView::CurrentThread => "proc/thread-self/ns/net".to_string(),
            NetnsView::Pid(p) => format!("proc/{p}/ns/net"),
        }
    }

    /// `ROOT/rel` (the path errors name) and the path to open: the same,
    /// or with [`HostFs::confined`] the resolved path, checked to be under
    /// the root.
    fn resolve(&self, rel: &str) -> Result<(PathBuf, PathBuf), HostError> {
        let path = self.path(rel);
        let Some(root) = &self.confined_to else {
            return Ok((path.clone(), path));
        };
        let real = std::fs::canonicalize(&path).map_err(|e| HostError::from_io(&path, &e))?;
        if real.starts_with(root) {
            Ok((path, real))
        } else {
            Err(HostError::OutsideRoot { path })
        }
    }

    /// Opens `ROOT/rel` for reading when it is a regular file (procfs and
    /// sysfs files are): a FIFO, socket, device or directory is refused
    /// with [`HostError::NotAFile`] before it is opened, and checked again
    /// on the open file (opened non-blocking, so a FIFO swapped in between
    /// cannot block either). With [`HostFs::confined`], never a file
    /// outside the root. Returns the path errors name, the file and its
    /// size (0 or 4096 for procfs and sysfs files).
    ///
    /// ```
    /// use conntrack_core::host::{HostError, HostFs};
    /// let t = tempfile::tempdir().unwrap();
    /// std::fs::create_dir(t.path().join("proc")).unwrap();
    /// std::os::unix::fs::symlink("/dev/zero", t.path().join("proc/meminfo")).unwrap();
    /// let fs = HostFs::new(t.path());
    /// assert!(matches!(fs.open_regular("proc/meminfo"), Err(HostError::NotAFile { .. })));
    /// assert!(fs.open_regular("proc/modules").unwrap_err().is_not_found());
    /// ```
    pub fn open_regular(&self, rel: &str) -> Result<(PathBuf, std::fs::File, u64), HostError> {
        use std::os::unix::fs::OpenOptionsExt;
        let (path, real) = self.resolve(rel)?;
        let meta = std::fs::metadata(&real).map_err(|e| HostError::from_io(&path, &e))?;
        if !meta.is_file() {
            return Err(HostError::NotAFile { path });
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&real)
            .map_err(|e| HostError::from_io(&path, &e))?;
        let meta = file.metadata().map_err(|e| HostError::from_io(&path, &e))?;
        if !meta.is_file() {
            return Err(HostError::NotAFile { path });
        }
        Ok((path, file, meta.len()))
    }

    /// The metadata of `ROOT/rel` (links followed), when it exists; with
    /// [`HostFs::confined`], `None` for a path that resolves outside the
    /// root, so that no fact comes from the reading host.
    pub(crate) fn stat(&self, rel: &str) -> Option<std::fs::Metadata> {
        let (_, real) = self.resolve(rel).ok()?;
        std::fs::metadata(real).ok()
    }

    /// The entry names of the directory `ROOT/rel`, sorted; non-UTF-8
    /// names are skipped. With [`HostFs::confined`], never a directory
    /// outside the root.
    pub(crate) fn dir_names(&self, rel: &str) -> Result<Vec<String>, HostError> {
        let (path, real) = self.resolve(rel)?;
        list_dir(&path, &real)
    }

    /// Reads up to `limit` bytes of `ROOT/rel` ([`HostFs::open_regular`]);
    /// `Err(TooLarge)` when the file is longer and `allow_prefix` is false.
    pub(crate) fn read_limited(
        &self,
        rel: &str,
        limit: u64,
        allow_prefix: bool,
    ) -> Result<(PathBuf, Vec<u8>), HostError> {
        let (path, file, len) = self.open_regular(rel)?;
        if !allow_prefix && len > limit {
            // procfs and sysfs report 0 or 4096; only a real file gets here.
            return Err(HostError::TooLarge { path, limit });
        }
        let mut buf = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| HostError::from_io(&path, &e))?;
        if buf.len() as u64 > limit {
            if !allow_prefix {
                return Err(HostError::TooLarge { path, limit });
            }
            buf.truncate(limit as usize);
        }
        Ok((path, buf))
    }

    /// Reads one file and parses it with `parse`; the error names the file.
    fn read_parsed<T>(
        &self,
        rel: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, HostError> {
        let (path, bytes) = self.read_limited(rel, MAX_FILE_BYTES, false)?;
        let text = parse::decode_utf8(&bytes).map_err(|e| HostError::malformed(&path, e))?;
        parse(text).map_err(|e| HostError::malformed(&path, e))
    }

    /// The text of `ROOT/rel` (one read), checked to be UTF-8.
    pub fn read_text(&self, rel: &str) -> Result<String, HostError> {
        self.read_parsed(rel, |t| Ok(t.to_string()))
    }

    // -- single facts --------------------------------------------------------

    /// `/proc/sys/kernel/osrelease` and the version parsed from it.
    pub fn read_kernel_release(&self) -> Result<(String, KernelVersion), HostError> {
        self.read_parsed("proc/sys/kernel/osrelease", |t| {
            parse::parse_osrelease(t).map(|(r, v)| (r.to_string(), v))
        })
    }

    /// `/proc/meminfo`.
    pub fn read_meminfo(&self) -> Result<parse::MemInfo, HostError> {
        self.read_parsed("proc/meminfo", parse::parse_meminfo)
    }

    /// `MemTotal` in bytes (`Malformed` with `Missing("MemTotal")` when the
    /// line is absent).
    pub fn read_mem_total(&self) -> Result<u64, HostError> {
        self.read_parsed("proc/meminfo", |t| {
            let m = parse::parse_meminfo(t)?;
            m.mem_total_bytes().ok_or_else(|| {
                let last = t.split_terminator('\n').count();
                ParseError::new(
                    last + 1,
                    1,
                    super::error::ParseErrorKind::Missing("MemTotal"),
                )
            })
        })
    }

    /// The page size: the smallest `KernelPageSize` in the first lines of
    /// `/proc/self/smaps`, else `AT_PAGESZ` from `/proc/self/auxv` (only
    /// meaningful for a live root: its layout is this build's). On failure
    /// the `smaps` error is returned.
    pub fn read_page_size(&self) -> Result<u64, HostError> {
        let smaps = self
            .read_limited("proc/self/smaps", SMAPS_PREFIX_BYTES, true)
            .and_then(|(path, bytes)| {
                // smaps names mapped files, which need not be UTF-8; only
                // the KernelPageSize lines matter.
                let text = String::from_utf8_lossy(trim_to_lines(&bytes));
                parse::parse_smaps_page_size(&text).map_err(|e| HostError::malformed(path, e))
            });
        smaps.or_else(|err| {
            let (path, bytes) = self
                .read_limited("proc/self/auxv", MAX_FILE_BYTES, false)
                .map_err(|_| err.clone())?;
            parse::parse_auxv_page_size(&bytes).map_err(|e| HostError::malformed(path, e))
        })
    }

    /// `/sys/devices/system/cpu/possible`.
    pub fn read_cpus_possible(&self) -> Result<Vec<u32>, HostError> {
        self.read_cpu_file("sys/devices/system/cpu/possible")
    }

    /// `/sys/devices/system/cpu/online`.
    pub fn read_cpus_online(&self) -> Result<Vec<u32>, HostError> {
        self.read_cpu_file("sys/devices/system/cpu/online")
    }

    fn read_cpu_file(&self, rel: &str) -> Result<Vec<u32>, HostError> {
        self.read_parsed(rel, |t| {
            let cpus = parse::parse_cpu_list(t)?;
            if cpus.is_empty() {
                // At least the boot CPU is always possible and online.
                return Err(ParseError::new(
                    1,
                    1,
                    if t.is_empty() {
                        super::error::ParseErrorKind::Empty
                    } else {
                        super::error::ParseErrorKind::Missing("CPU")
                    },
                ));
            }
            Ok(cpus)
        })
    }

    fn sysctl_rel(name: &str) -> String {
        format!("{NETFILTER_SYSCTL_DIR}/{name}")
    }

    /// One `net.netfilter.<name>` sysctl's text (without the newline).
    /// Per-namespace sysctls with [`HostFs::for_pid`] fail with
    /// [`HostError::OtherNamespace`] unless the reader shares PID's
    /// namespace.
    pub fn read_sysctl(&self, name: &str) -> Result<String, HostError> {
        if !GLOBAL_SYSCTLS.contains(&name) {
            self.check_same_netns()?;
        }
        self.read_parsed(&Self::sysctl_rel(name), |t| {
            parse::parse_single_value(t).map(str::to_string)
        })
    }

    fn read_sysctl_u32(&self, name: &str) -> Result<u32, HostError> {
        if !GLOBAL_SYSCTLS.contains(&name) {
            self.check_same_netns()?;
        }
        self.read_parsed(&Self::sysctl_rel(name), parse::parse_sysctl_u32)
    }

    /// `net.netfilter.nf_conntrack_count`: this namespace's entries.
    pub fn read_count(&self) -> Result<u32, HostError> {
        self.read_sysctl_u32("nf_conntrack_count")
    }

    /// `net.netfilter.nf_conntrack_max` (global).
    pub fn read_max(&self) -> Result<u32, HostError> {
        self.read_sysctl_u32("nf_conntrack_max")
    }

    /// `net.netfilter.nf_conntrack_buckets` (global).
    pub fn read_buckets(&self) -> Result<u32, HostError> {
        self.read_sysctl_u32("nf_conntrack_buckets")
    }

    /// `/sys/module/nf_conntrack/parameters/hashsize` (mode 0600: root
    /// only).
    pub fn read_hashsize(&self) -> Result<u32, HostError> {
        self.read_parsed(
            "sys/module/nf_conntrack/parameters/hashsize",
            parse::parse_u32_value,
        )
    }

    /// Every `net.netfilter.nf_conntrack_*` sysctl (directories such as
    /// `nf_log` and other `nf_*` names are skipped), by name, value text
    /// without the newline. The directory must be listable; each file's
    /// problem is collected. With [`HostFs::for_pid`] and another
    /// namespace, only the global sysctls are kept.
    pub fn read_sysctls(&self) -> Result<Partial<BTreeMap<String, String>>, HostError> {
        let mut out: Partial<BTreeMap<String, String>> = Partial::default();
        let only_global = match self.check_same_netns() {
            Ok(()) => false,
            Err(e) => {
                out.problems.push(e);
                true
            }
        };
        for name in self.dir_names(NETFILTER_SYSCTL_DIR)? {
            if !name.starts_with("nf_conntrack_") {
                continue;
            }
            if only_global && !GLOBAL_SYSCTLS.contains(&name.as_str()) {
                continue;
            }
            if self
                .stat(&Self::sysctl_rel(&name))
                .is_some_and(|m| m.is_dir())
            {
                continue;
            }
            match self.read_parsed(&Self::sysctl_rel(&name), |t| {
                parse::parse_single_value(t).map(str::to_string)
            }) {
                Ok(v) => {
                    out.value.insert(name, v);
                }
                Err(e) => out.problems.push(e),
            }
        }
        Ok(out)
    }

    /// The conntrack slab caches of `/proc/slabinfo` (mode 0400: root
    /// only). `nf_conntrack` is created with `SLAB_TYPESAFE_BY_RCU`, which
    /// SLUB never merges into another cache, so it has its own line.
    pub fn read_slabinfo(&self) -> Result<Vec<SlabCache>, HostError> {
        self.read_parsed("proc/slabinfo", parse::parse_slabinfo)
    }

    /// `NET_RX` per CPU from `/proc/softirqs`.
    pub fn read_net_rx_softirqs(&self) -> Result<parse::NetRxSoftirqs, HostError> {
        self.read_parsed("proc/softirqs", parse::parse_softirqs)
    }

    /// The RPS CPUs of every `rx-N` queue of every interface under
    /// `/sys/class/net`, sorted by interface name and queue number.
    /// Interfaces without a `queues` directory are skipped; a queue without
    /// `rps_cpus` (kernel without `CONFIG_RPS`) is a problem.
    pub fn read_rx_queues(&self) -> Result<Partial<Vec<RxQueue>>, HostError> {
        let mut out: Partial<Vec<RxQueue>> = Partial::default();
        for iface in self.dir_names("sys/class/net")? {
            let entries = match self.dir_names(&format!("sys/class/net/{iface}/queues")) {
                Ok(e) => e,
                Err(HostError::NotFound { .. }) => continue,
                Err(e) => {
                    out.problems.push(e);
                    continue;
                }
            };
            let mut queues: Vec<u32> = entries
                .iter()
                .filter_map(|q| q.strip_prefix("rx-")?.parse().ok())
                .collect();
            queues.sort_unstable();
            for q in queues {
                let rel = format!("sys/class/net/{iface}/queues/rx-{q}/rps_cpus");
                match self.read_parsed(&rel, parse::parse_rps_mask) {
                    Ok(rps_cpus) => out.value.push(RxQueue {
                        iface: iface.clone(),
                        queue: q,
                        rps_cpus,
                    }),
                    Err(e) => out.problems.push(e),
                }
            }
        }
        Ok(out)
    }

    /// `/proc/net/stat/nf_conntrack` of the target's namespace
    /// ([`HostFs::net_path`]), parsed by
    /// [`crate::procstat::parse_bytes`]. Absent without nf_conntrack or
    /// with `CONFIG_NF_CONNTRACK_PROCFS=n`.
    pub fn read_stats(&self) -> Result<Stats, HostError> {
        let (path, bytes) =
            self.read_limited(&self.net_path("stat/nf_conntrack"), MAX_FILE_BYTES, false)?;
        crate::procstat::parse_bytes(&bytes).map_err(|e| HostError::malformed(path, e.into()))
    }

    /// Module names from `/proc/modules` (absent on kernels built without
    /// module support).
    pub fn read_modules(&self) -> Result<Vec<String>, HostError> {
        self.read_parsed("proc/modules", parse::parse_modules)
    }

    /// Conntrack and NAT helpers ([`parse::is_helper_module`]), sorted:
    /// loaded modules from `/proc/modules`, plus built-in (or loaded)
    /// helpers that show up as `/sys/module/<name>` because they have
    /// parameters (`nf_conntrack_ftp`, `_sip`, ...; `param_sysfs_builtin`
    /// in `kernel/params.c` creates `/sys/module/NAME` for built-in code
    /// only when it has parameters). Built-in helpers without parameters
    /// (`nf_conntrack_pptp`, `nf_nat_*`) are invisible.
    /// Fails only when neither source can be read.
    pub fn read_helpers(&self) -> Result<Partial<Vec<String>>, HostError> {
        let mut out: Partial<Vec<String>> = Partial::default();
        let modules = self.read_modules();
        let sys = self.dir_names("sys/module");
        let err = match (&modules, &sys) {
            (Err(a), Err(_)) => Some(a.clone()),
            _ => None,
        };
        match modules {
            Ok(m) => out
                .value
                .extend(m.into_iter().filter(|n| parse::is_helper_module(n))),
            Err(e) => out.problems.push(e),
        }
        match sys {
            Ok(m) => out
                .value
                .extend(m.into_iter().filter(|n| parse::is_helper_module(n))),
            Err(e) => out.problems.push(e),
        }
        if let Some(e) = err {
            return Err(e);
        }
        out.value.sort();
        out.value.dedup();
        Ok(out)
    }

    /// The inode number of the target's network namespace
    /// (`ROOT/proc/self/ns/net`, `ROOT/proc/thread-self/ns/net` or
    /// `ROOT/proc/PID/ns/net`). Fixture trees may hold a symlink or a text
    /// file with the link target.
    pub fn read_netns_inode(&self) -> Result<u64, HostError> {
        self.read_ns_inode(&self.ns_path())
    }

    fn read_ns_inode(&self, rel: &str) -> Result<u64, HostError> {
        let path = self.path(rel);
        match std::fs::read_link(&path) {
            Ok(target) => {
                let t = target.to_string_lossy();
                parse::parse_ns_link(&t).map_err(|e| HostError::malformed(&path, e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                self.read_parsed(rel, parse::parse_ns_link)
            }
            Err(e) => Err(HostError::from_io(&path, &e)),
        }
    }

    /// Whether the target is in the initial network namespace, by the
    /// heuristic of [`parse::init_netns_from`] (`None`: cannot tell).
    /// Reads the namespace link, `osrelease`, and `/proc/1/ns/net` when
    /// needed.
    pub fn read_init_netns(&self) -> Result<Option<bool>, HostError> {
        let ino = self.read_netns_inode()?;
        let kernel = self.read_kernel_release().ok().map(|(_, v)| v);
        Ok(self.init_netns_with(ino, kernel))
    }

    fn init_netns_with(&self, ino: u64, kernel: Option<KernelVersion>) -> Option<bool> {
        // The sysctl file's mode shows the reader's namespace, so it is a
        // clue only when the target is the reader.
        let max_read_only = match self.view {
            NetnsView::Pid(_) => None,
            NetnsView::Process | NetnsView::CurrentThread => {
                std::fs::metadata(self.path(&Self::sysctl_rel("nf_conntrack_max")))
                    .ok()
                    .map(|m| m.permissions().mode() & 0o222 == 0)
            }
        };
        if let Some(known) = parse::init_netns_from(ino, None, kernel, max_read_only) {
            return Some(known);
        }
        let pid1 = self.read_ns_inode("proc/1/ns/net").ok();
        parse::init_netns_from(ino, pid1, kernel, max_read_only)
    }

    /// With [`HostFs::for_pid`]: `Ok` when the reader is in PID's network
    /// namespace (so `/proc/sys/net` shows PID's values), otherwise
    /// [`HostError::OtherNamespace`] (also when it cannot be told).
    fn check_same_netns(&self) -> Result<(), HostError> {
        let NetnsView::Pid(pid) = self.view else {
            return Ok(());
        };
        let mine = self.read_ns_inode("proc/self/ns/net");
        let theirs = self.read_ns_inode(&format!("proc/{pid}/ns/net"));
        match (mine, theirs) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            _ => Err(HostError::OtherNamespace {
                path: self.path(NETFILTER_SYSCTL_DIR),
                pid,
            }),
        }
    }

    // -- the snapshot --------------------------------------------------------

    /// Reads every fact once. Never fails: what cannot be read is left
    /// empty and listed in [`HostReport::problems`].
    pub fn read_snapshot(&self) -> HostReport {
        let mut r = HostReport::default();
        let s = &mut r.snapshot;
        let p = &mut r.problems;
        fn keep<T>(p: &mut Vec<HostError>, res: Result<T, HostError>) -> Option<T> {
            res.map_err(|e| p.push(e)).ok()
        }

        if let Some((rel, v)) = keep(p, self.read_kernel_release()) {
            s.kernel_release = Some(rel);
            s.kernel_version = Some(v);
        }
        s.page_size = keep(p, self.read_page_size());
        s.mem_total_bytes = keep(p, self.read_mem_total());
        s.cpus_possible = keep(p, self.read_cpus_possible()).unwrap_or_default();
        s.cpus_online = keep(p, self.read_cpus_online()).unwrap_or_default();

        if let Some(part) = keep(p, self.read_sysctls()) {
            p.extend(part.problems);
            s.sysctls = part.value;
        }
        let dir = self.path(NETFILTER_SYSCTL_DIR);
        // One already read sysctl's value; a bad one is a problem that
        // names its file.
        fn value<T>(
            sysctls: &BTreeMap<String, String>,
            dir: &Path,
            name: &str,
            parse: fn(&str) -> Result<T, ParseError>,
            p: &mut Vec<HostError>,
        ) -> Option<T> {
            let v = sysctls.get(name)?;
            keep(
                p,
                parse(v).map_err(|e| HostError::malformed(dir.join(name), e)),
            )
        }
        let (u32_of, bool_of) = (parse::parse_sysctl_u32, parse::parse_sysctl_bool);
        let sc = &s.sysctls;
        let count = value(sc, &dir, "nf_conntrack_count", u32_of, p);
        let max = value(sc, &dir, "nf_conntrack_max", u32_of, p);
        let buckets = value(sc, &dir, "nf_conntrack_buckets", u32_of, p);
        let events = value(sc, &dir, "nf_conntrack_events", u32_of, p);
        let acct = value(sc, &dir, "nf_conntrack_acct", bool_of, p);
        let timestamp = value(sc, &dir, "nf_conntrack_timestamp", bool_of, p);
        let (timeouts, bad) = parse::timeouts_from_sysctls(sc);
        (s.count, s.max, s.buckets, s.events) = (count, max, buckets, events);
        (s.acct, s.timestamp, s.timeouts) = (acct, timestamp, timeouts);
        p.extend(
            bad.into_iter()
                .map(|(name, e)| HostError::malformed(dir.join(name), e)),
        );

        s.stats = keep(p, self.read_stats());
        if s.count.is_none() {
            // The sysctl is unreadable or (for_pid) another namespace's:
            // the stat file's `entries` is the same per-namespace count.
            s.count = s.stats.as_ref().and_then(|st| st.entries);
        }
        s.hashsize_param = keep(p, self.read_hashsize());
        s.slab = keep(p, self.read_slabinfo()).unwrap_or_default();
        if let Some(part) = keep(p, self.read_rx_queues()) {
            p.extend(part.problems);
            s.rx_queues = part.value;
        }
        if let Some(n) = keep(p, self.read_net_rx_softirqs()) {
            s.net_rx_softirqs = n.counts;
            s.net_rx_softirq_cpus = n.cpus;
        }
        if let Some(part) = keep(p, self.read_helpers()) {
            p.extend(part.problems);
            s.helpers = part.value;
        }
        if let Some(ino) = keep(p, self.read_netns_inode()) {
            s.netns_inode = Some(ino);
            s.init_netns = self.init_netns_with(ino, s.kernel_version);
        }
        r
    }
}

/// The entry names of the directory `real`, sorted; non-UTF-8 names are
/// skipped; errors name `dir`.
fn list_dir(dir: &Path, real: &Path) -> Result<Vec<String>, HostError> {
    let rd = std::fs::read_dir(real).map_err(|e| HostError::from_io(dir, &e))?;
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| HostError::from_io(dir, &e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
