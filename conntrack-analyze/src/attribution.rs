//! Attribution: which local process and container owns a flow.
//!
//! `/proc/net/{tcp,tcp6,udp,udp6}` give socket inodes by local and remote
//! address; `/proc/PID/fd` links (`socket:[INODE]`) give the owning PIDs;
//! `/proc/PID/comm` the command; `/proc/PID/cgroup` the container (Docker,
//! containerd, CRI-O, Podman and Kubernetes path forms, cgroup v1 and v2).
//!
//! Reading and parsing are separate: the `parse_*` functions are pure over
//! `&str` and never panic on hostile input; [`ProcReader`] reads files under
//! a relocatable root (`/` on a live host, a fixture tree in tests) through
//! `conntrack-core`'s `HostFs`.
//!
//! ```
//! use conntrack_analyze::attribution::{parse_cgroup, Runtime};
//! let id = "4f1c6b4e8a2d9c0b7e6f5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b";
//! let text = format!("0::/kubepods.slice/kubepods-burstable.slice/\
//!     kubepods-burstable-pod1a2b3c4d_0000_1111_2222_333344445555.slice/\
//!     cri-containerd-{id}.scope\n");
//! let c = parse_cgroup(&text).unwrap();
//! assert_eq!(c.runtime, Runtime::Containerd);
//! assert_eq!(c.id, id);
//! assert_eq!(c.pod_uid.as_deref(), Some("1a2b3c4d-0000-1111-2222-333344445555"));
//! ```

use conntrack_core::host::{HostError, HostFs, parse_ns_link};
use conntrack_core::{FlowLike, L4Proto};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// One socket from `/proc/net/{tcp,tcp6,udp,udp6}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SocketEntry {
    /// TCP or UDP.
    pub proto: L4Proto,
    /// Local address (IPv4-mapped IPv6 addresses are given as IPv4).
    pub local: SocketAddr,
    /// Remote address (unspecified with port 0 when unconnected).
    pub remote: SocketAddr,
    /// The kernel's socket state number (TCP: 1 established, 10 listen).
    pub state: u8,
    /// Owner uid.
    pub uid: u32,
    /// Socket inode (0 for sockets being torn down, e.g. TIME_WAIT).
    pub inode: u64,
}

fn hex_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// Parses `ADDR:PORT` as printed by `/proc/net/tcp`: the address as 32-bit
/// words in the writing host's byte order (this build's native order is
/// assumed), the port as 4 hex digits.
pub fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (a, p) = s.split_once(':')?;
    if p.len() > 4 || !a.is_ascii() {
        return None;
    }
    let port = u16::from_str_radix(p, 16).ok()?;
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(hex_u32(a)?.to_ne_bytes())),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                let w = hex_u32(a.get(i * 8..i * 8 + 8)?)?;
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b)).to_canonical()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses the text of `/proc/net/tcp`, `tcp6`, `udp` or `udp6`. The header
/// and malformed lines are skipped.
///
/// ```
/// use conntrack_analyze::attribution::parse_proc_net;
/// use conntrack_core::L4Proto;
/// let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
///    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
///    garbage\n";
/// let s = parse_proc_net(text, L4Proto::TCP);
/// # if cfg!(target_endian = "little") {
/// assert_eq!(s.len(), 1);
/// assert_eq!(s[0].local, "127.0.0.1:8080".parse().unwrap());
/// assert_eq!((s[0].state, s[0].inode), (0x0a, 4242));
/// # }
/// ```
pub fn parse_proc_net(text: &str, proto: L4Proto) -> Vec<SocketEntry> {
    text.lines()
        .filter_map(|line| parse_proc_net_line(line, proto))
        .collect()
}

/// Parses one line of `/proc/net/{tcp,tcp6,udp,udp6}`; `None` for the
/// header and malformed lines. For reading a large table one line at a
/// time ([`SocketTable::read_sockets`]).
pub fn parse_proc_net_line(line: &str, proto: L4Proto) -> Option<SocketEntry> {
    let mut it = line.split_whitespace();
    let sl = it.next()?;
    if !sl.ends_with(':') {
        return None;
    }
    let local = parse_proc_addr(it.next()?)?;
    let remote = parse_proc_addr(it.next()?)?;
    let st = it.next()?;
    let state = if st.len() <= 2 {
        u8::from_str_radix(st, 16).ok()?
    } else {
        return None;
    };
    let _queues = it.next()?;
    let _timer = it.next()?;
    let _retr = it.next()?;
    let uid = it.next()?.parse().ok()?;
    let _timeout = it.next()?;
    let inode = it.next()?.parse().ok()?;
    Some(SocketEntry {
        proto,
        local,
        remote,
        state,
        uid,
        inode,
    })
}

/// Parses an fd link target `socket:[INODE]`.
///
/// ```
/// use conntrack_analyze::attribution::parse_socket_link;
/// assert_eq!(parse_socket_link("socket:[12345]"), Some(12345));
/// assert_eq!(parse_socket_link("/dev/null"), None);
/// ```
pub fn parse_socket_link(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The container runtime a cgroup path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Runtime {
    /// Docker (`/docker/ID`, `docker-ID.scope`).
    Docker,
    /// containerd (`cri-containerd-ID.scope`, containerd namespaces).
    Containerd,
    /// CRI-O (`crio-ID.scope`, `/crio/ID`).
    CriO,
    /// Podman (`libpod-ID.scope`).
    Podman,
    /// A Kubernetes pod container whose runtime the path does not name
    /// (cgroupfs driver: `/kubepods/QOS/podUID/ID`).
    Kubernetes,
    /// A 64-hex container id under an unrecognised parent.
    Unknown,
}

/// A container a process runs in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContainerRef {
    /// Runtime.
    pub runtime: Runtime,
    /// The 64-hex container id.
    pub id: String,
    /// The Kubernetes pod UID, when the path has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

impl fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rt = match self.runtime {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Kubernetes => "kubernetes",
            Runtime::Unknown => "container",
        };
        write!(f, "{rt}://{}", self.id.get(..12).unwrap_or(&self.id))
    }
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn pod_uid(seg: &str) -> Option<String> {
    // cgroupfs: "pod<uid>"; systemd: "kubepods-<qos>-pod<uid_with_underscores>.slice".
    let seg = seg.strip_suffix(".slice").unwrap_or(seg);
    let i = seg.rfind("pod")?;
    let uid = &seg[i + 3..];
    let ok = uid.len() >= 32
        && uid.len() <= 40
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_');
    ok.then(|| uid.replace('_', "-"))
}

fn container_of_path(path: &str) -> Option<ContainerRef> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let k8s = segs.iter().any(|s| s.starts_with("kubepods"));
    let pod = segs.iter().rev().find_map(|s| pod_uid(s));
    for (i, seg) in segs.iter().enumerate().rev() {
        let s = seg.strip_suffix(".scope").unwrap_or(seg);
        let prefixed = [
            ("docker-", Runtime::Docker),
            ("cri-containerd-", Runtime::Containerd),
            ("crio-", Runtime::CriO),
            ("libpod-", Runtime::Podman),
        ]
        .into_iter()
        .find_map(|(p, rt)| s.strip_prefix(p).filter(|id| is_id(id)).map(|id| (rt, id)));
        let found = match prefixed {
            Some(x) => Some(x),
            None if is_id(s) => {
                let parent = if i > 0 { segs[i - 1] } else { "" };
                let rt = match parent {
                    "docker" | "moby" => Runtime::Docker,
                    "crio" => Runtime::CriO,
                    "libpod_parent" => Runtime::Podman,
                    "k8s.io" | "default" | "containerd" => Runtime::Containerd,
                    _ if k8s => Runtime::Kubernetes,
                    _ => Runtime::Unknown,
                };
                Some((rt, s))
            }
            None => None,
        };
        if let Some((runtime, id)) = found {
            return Some(ContainerRef {
                runtime,
                id: id.to_ascii_lowercase(),
                pod_uid: pod,
            });
        }
    }
    None
}

/// Finds the container in the text of `/proc/PID/cgroup` (`ID:CONTROLLERS:PATH`
/// lines, v1 or v2). `None` for processes outside containers.
///
/// ```
/// use conntrack_analyze::attribution::{parse_cgroup, Runtime};
/// let id = "a".repeat(64);
/// let v1 = format!("12:memory:/docker/{id}\n11:cpu:/docker/{id}\n");
/// assert_eq!(parse_cgroup(&v1).unwrap().runtime, Runtime::Docker);
/// let v2 = format!("0::/system.slice/docker-{id}.scope\n");
/// assert_eq!(parse_cgroup(&v2).unwrap().id, id);
/// assert_eq!(parse_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n"), None);
/// ```
pub fn parse_cgroup(text: &str) -> Option<ContainerRef> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let _ctl = parts.next()?;
        container_of_path(parts.next()?)
    })
}

/// The owner of a socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// `/proc/PID/comm`, trimmed.
    pub comm: String,
    /// The container, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerRef>,
}

impl Owner {
    /// How reports name it: `CONTAINER (COMM)` for a process in a
    /// container, `pid PID COMM` otherwise.
    pub fn label(&self) -> String {
        match &self.container {
            Some(c) => format!("{c} ({})", self.comm),
            None => format!("pid {} {}", self.pid, self.comm),
        }
    }
}

/// Reads what attribution needs under a relocatable root, through
/// `conntrack-core`'s [`HostFs`] (size limits, FIFO guard, UTF-8 check,
/// "not found" told apart from "malformed").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcReader {
    fs: HostFs,
}

impl ProcReader {
    /// A reader of `ROOT/proc/...`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ProcReader {
            fs: HostFs::new(root),
        }
    }

    /// A reader over an existing [`HostFs`]; with [`HostFs::for_pid`] the
    /// socket tables are those of that process's network namespace
    /// (`/proc/PID/net/tcp`).
    pub fn from_host_fs(fs: HostFs) -> Self {
        ProcReader { fs }
    }

    /// The live host (`/proc`).
    pub fn host() -> Self {
        Self::new("/")
    }

    /// Reads the socket tables present (missing files are skipped, other
    /// errors returned), one bounded line at a time as
    /// [`SocketTable::read_sockets`] does.
    pub fn sockets(&self) -> Result<Vec<SocketEntry>, HostError> {
        let mut out = Vec::new();
        for (name, proto) in SOCKET_FILES {
            match for_each_line(
                &self.fs,
                &self.fs.net_path(name),
                MAX_SOCKET_FILE_BYTES,
                |l| out.extend(parse_proc_net_line(l, proto)),
            ) {
                Ok(_) | Err(HostError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Socket inode -> owner for every process readable (processes that
    /// vanish, deny access or hold malformed files while being read are
    /// skipped). An inode shared by several processes keeps the lowest PID.
    pub fn socket_owners(&self) -> Result<FxHashMap<u64, Owner>, HostError> {
        let index = self.owner_index()?;
        Ok(index
            .by_inode
            .iter()
            .map(|(&ino, &i)| (ino, index.owners[i as usize].clone()))
            .collect())
    }

    /// The same as [`ProcReader::socket_owners`], each owner stored once
    /// (a process with a million sockets is one [`Owner`], not a million
    /// copies).
    pub fn owner_index(&self) -> Result<OwnerIndex, HostError> {
        let proc = self.fs.path("proc");
        let dir = std::fs::read_dir(&proc).map_err(|e| HostError::from_io(&proc, &e))?;
        let mut pids: Vec<u32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        let mut out = OwnerIndex::default();
        for pid in pids {
            let Ok(fds) = std::fs::read_dir(self.fs.path(&format!("proc/{pid}/fd"))) else {
                out.unreadable += 1;
                continue;
            };
            let inodes: Vec<u64> = fds
                .filter_map(|e| {
                    let link = std::fs::read_link(e.ok()?.path()).ok()?;
                    parse_socket_link(link.to_str()?)
                })
                .collect();
            if inodes.is_empty() {
                continue;
            }
            let comm = self
                .fs
                .read_text(&format!("proc/{pid}/comm"))
                .map(|s| s.trim_end().chars().take(64).collect())
                .unwrap_or_default();
            let container = self
                .fs
                .read_text(&format!("proc/{pid}/cgroup"))
                .ok()
                .and_then(|t| parse_cgroup(&t));
            self.note_namespaces(pid, &mut out.namespaces);
            let i = out.owners.len() as u32;
            out.owners.push(Owner {
                pid,
                comm,
                container,
            });
            for ino in inodes {
                out.by_inode.entry(ino).or_insert(i);
            }
        }
        Ok(out)
    }

    /// Adds the network namespaces of process `pid`'s threads to `seen`
    /// (each namespace once, with the first thread in it): a thread may
    /// have entered another namespace (`setns(2)`) and hold sockets
    /// there. A thread's files are under `/proc/TID` too, hidden from
    /// the listing, so the namespace is read as any process's. At most
    /// [`MAX_THREADS_READ`] threads of a process are looked at.
    fn note_namespaces(&self, pid: u32, seen: &mut Vec<ProcessNamespace>) {
        let mut tasks: Vec<u32> = std::fs::read_dir(self.fs.path(&format!("proc/{pid}/task")))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .take(MAX_THREADS_READ)
                    .collect()
            })
            .unwrap_or_default();
        if tasks.is_empty() {
            tasks.push(pid);
        }
        tasks.sort_unstable();
        for tid in tasks {
            let link = if tid == pid {
                format!("proc/{pid}/ns/net")
            } else {
                format!("proc/{pid}/task/{tid}/ns/net")
            };
            if let Some(ino) = std::fs::read_link(self.fs.path(&link))
                .ok()
                .and_then(|l| parse_ns_link(l.to_str()?).ok())
                && !seen.iter().any(|n| n.inode == ino)
                && seen.len() < MAX_NEIGHBOUR_NAMESPACES
            {
                seen.push(ProcessNamespace {
                    inode: ino,
                    pid: tid,
                });
            }
        }
    }

    /// Sockets and owners read together.
    pub fn socket_table(&self) -> Result<SocketTable, HostError> {
        let mut t = SocketTable::with_owners(self.owner_index()?);
        t.read_sockets(&self.fs)?;
        Ok(t)
    }

    /// The addresses of the network namespace this reader's `/proc/net`
    /// shows: IPv4 from `fib_trie` (the `host LOCAL` routes), IPv6 from
    /// `if_inet6`. Read one line at a time; a routing table larger than
    /// [`MAX_FIB_TRIE_BYTES`] is read that far (the local routes of a
    /// namespace come first in practice, but the result may be
    /// incomplete: [`LocalAddrs::complete`] says so).
    pub fn local_addrs(&self) -> Result<LocalAddrs, HostError> {
        let mut out = LocalAddrs::default();
        let mut fib = FibTrieLocals::default();
        let complete = for_each_line(
            &self.fs,
            &self.fs.net_path("fib_trie"),
            MAX_FIB_TRIE_BYTES,
            |l| fib.line(l),
        )?;
        for (a, len) in fib.finish() {
            out.insert_v4(a, len);
        }
        match for_each_line(
            &self.fs,
            &self.fs.net_path("if_inet6"),
            MAX_FIB_TRIE_BYTES,
            |l| {
                if let Some(a) = parse_if_inet6_line(l) {
                    out.insert_exact(IpAddr::V6(a));
                }
            },
        ) {
            // No IPv6 in this kernel.
            Ok(_) | Err(HostError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        out.complete = complete;
        Ok(out)
    }
}

/// How much of `/proc/net/fib_trie` (and `if_inet6`) is read at most: a
/// router with a full Internet table lists millions of routes.
pub const MAX_FIB_TRIE_BYTES: u64 = 32 << 20;

/// The socket tables of a `/proc/net`, and their protocols.
const SOCKET_FILES: [(&str, L4Proto); 4] = [
    ("tcp", L4Proto::TCP),
    ("tcp6", L4Proto::TCP),
    ("udp", L4Proto::UDP),
    ("udp6", L4Proto::UDP),
];

/// How much of each `/proc/net/{tcp,tcp6,udp,udp6}` is read at most
/// (about seven million sockets of 150 bytes): the index is built one
/// line at a time, so this bounds the time, not a copy of the file.
pub const MAX_SOCKET_FILE_BYTES: u64 = 1 << 30;

/// The longest line [`for_each_line`] passes on (the lines of the files it
/// reads are under 200 bytes); longer ones are skipped without being held.
const MAX_LINE_BYTES: u64 = 4096;

/// Calls `f` on every line of `ROOT/rel` (opened by
/// [`HostFs::open_regular`]: a regular file, never a FIFO or device, and
/// under a confined reader never outside its root), reading at most
/// `limit` bytes; lines that are not UTF-8 or longer than
/// [`MAX_LINE_BYTES`] are skipped. Returns whether the whole file was read.
fn for_each_line(
    fs: &HostFs,
    rel: &str,
    limit: u64,
    mut f: impl FnMut(&str),
) -> Result<bool, HostError> {
    use std::io::{BufRead, Read};
    let (path, file, _) = fs.open_regular(rel)?;
    let mut reader = std::io::BufReader::new(file.take(limit));
    let mut line = Vec::new();
    let mut read = 0u64;
    let mut skipping = false;
    loop {
        line.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| HostError::from_io(&path, &e))?;
        if n == 0 {
            return Ok(read < limit);
        }
        read += n as u64;
        let ended = line.last() == Some(&b'\n');
        if !skipping && ended {
            if let Ok(l) = std::str::from_utf8(&line[..line.len() - 1]) {
                f(l);
            }
        } else if !skipping && n as u64 <= MAX_LINE_BYTES && read < limit {
            // The last line, without a newline (not one cut by the limit).
            if let Ok(l) = std::str::from_utf8(&line) {
                f(l);
            }
        }
        // A line longer than the cap: skip it up to its newline.
        skipping = !ended && (skipping || n as u64 > MAX_LINE_BYTES);
    }
}

/// Process owners of socket inodes, each owner stored once
/// ([`ProcReader::owner_index`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerIndex {
    by_inode: FxHashMap<u64, u32>,
    owners: Vec<Owner>,
    unreadable: u64,
    namespaces: Vec<ProcessNamespace>,
}

/// A network namespace that processes holding sockets (or their threads)
/// are in, and the first such process or thread: its `/proc/PID/net`
/// (for a thread `/proc/TID/net`) shows that namespace's sockets without
/// entering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessNamespace {
    /// The namespace's inode (`/proc/PID/ns/net`).
    pub inode: u64,
    /// A process (or thread) in it.
    pub pid: u32,
}

/// How many threads of one process [`ProcReader::owner_index`] looks at
/// for namespaces of their own.
pub const MAX_THREADS_READ: usize = 4096;

/// How many namespaces [`ProcReader::owner_index`] lists at most (a
/// Kubernetes node runs a few hundred pods).
pub const MAX_NEIGHBOUR_NAMESPACES: usize = 4096;

impl OwnerIndex {
    /// An index of the given inode -> owner pairs.
    pub fn from_map(map: FxHashMap<u64, Owner>) -> Self {
        let mut out = OwnerIndex::default();
        let mut by_pid: FxHashMap<u32, u32> = FxHashMap::default();
        let mut pairs: Vec<(u64, Owner)> = map.into_iter().collect();
        pairs.sort_by_key(|(ino, o)| (o.pid, *ino));
        for (ino, o) in pairs {
            let i = *by_pid.entry(o.pid).or_insert_with(|| {
                out.owners.push(o);
                (out.owners.len() - 1) as u32
            });
            out.by_inode.insert(ino, i);
        }
        out
    }

    /// The owners, each once.
    pub fn owners(&self) -> &[Owner] {
        &self.owners
    }

    /// The owner of a socket inode.
    pub fn owner(&self, inode: u64) -> Option<&Owner> {
        self.owners.get(*self.by_inode.get(&inode)? as usize)
    }

    /// Processes whose `/proc/PID/fd` could not be listed (another user's
    /// without privileges, or gone while read): their sockets have no
    /// known owner.
    pub fn unreadable_processes(&self) -> u64 {
        self.unreadable
    }

    /// The network namespaces of the processes holding sockets, each once
    /// (at most [`MAX_NEIGHBOUR_NAMESPACES`]), in PID order: the host's and
    /// its containers'.
    pub fn namespaces(&self) -> &[ProcessNamespace] {
        &self.namespaces
    }
}

/// The IPv4 `host LOCAL` routes of `/proc/net/fib_trie`, fed one line at
/// a time: the addresses (and local prefixes such as 127.0.0.0/8) of the
/// namespace.
///
/// ```
/// use conntrack_analyze::attribution::FibTrieLocals;
/// let text = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.0.0.5\n        /32 host LOCAL\n\
///             |-- 127.0.0.0\n        /8 host LOCAL\n     |-- 10.0.0.0\n        /24 link UNICAST\n";
/// let mut f = FibTrieLocals::default();
/// text.lines().for_each(|l| f.line(l));
/// assert_eq!(f.finish(), vec![("10.0.0.5".parse().unwrap(), 32), ("127.0.0.0".parse().unwrap(), 8)]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FibTrieLocals {
    leaf: Option<Ipv4Addr>,
    found: Vec<(Ipv4Addr, u8)>,
}

impl FibTrieLocals {
    /// One line of the file.
    pub fn line(&mut self, line: &str) {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("|-- ") {
            self.leaf = rest.trim().parse().ok();
        } else if let Some(rest) = t.strip_prefix('/') {
            let mut w = rest.split_whitespace();
            let len = w.next().and_then(|l| l.parse::<u8>().ok());
            let _scope = w.next();
            if let (Some(a), Some(len), Some("LOCAL")) = (self.leaf, len, w.next())
                && len <= 32
                && !self.found.contains(&(a, len))
            {
                self.found.push((a, len));
            }
        } else if !t.starts_with("+--") {
            // A table name ("Main:", "Local:") or junk.
            self.leaf = None;
        }
    }

    /// The local addresses and prefixes found, each once.
    pub fn finish(self) -> Vec<(Ipv4Addr, u8)> {
        self.found
    }
}

/// The address of one line of `/proc/net/if_inet6` (`ADDR IFINDEX PREFIX
/// SCOPE FLAGS NAME`, the address as 32 hex digits).
///
/// ```
/// use conntrack_analyze::attribution::parse_if_inet6_line;
/// let l = "fd000000000000000000000000000002 04 40 00 82     eth0";
/// assert_eq!(parse_if_inet6_line(l), Some("fd00::2".parse().unwrap()));
/// assert_eq!(parse_if_inet6_line("zz"), None);
/// ```
pub fn parse_if_inet6_line(line: &str) -> Option<Ipv6Addr> {
    let hex = line.split_whitespace().next()?;
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    u128::from_str_radix(hex, 16).ok().map(Ipv6Addr::from)
}

/// An address as one integer, IPv4 (and IPv4-mapped IPv6) as
/// `::ffff:a.b.c.d`: the same address in either form is one key.
#[inline]
fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => 0xffff_0000_0000 | u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The addresses of one network namespace ([`ProcReader::local_addrs`]).
/// A flow whose original source and reply source are both foreign is
/// forwarded through the namespace: no local socket can own it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalAddrs {
    /// Addresses as [`addr_bits`]: one integer to hash and compare (the
    /// set is probed twice for every flow without a socket).
    exact: rustc_hash::FxHashSet<u128>,
    v4_prefixes: Vec<(u32, u8)>,
    complete: bool,
}

impl LocalAddrs {
    /// The addresses given, and 127.0.0.0/8 and ::1.
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut out = LocalAddrs {
            complete: true,
            ..Default::default()
        };
        out.insert_v4(Ipv4Addr::new(127, 0, 0, 0), 8);
        out.insert_exact(IpAddr::V6(Ipv6Addr::LOCALHOST));
        for a in addrs {
            out.insert_exact(a);
        }
        out
    }

    fn insert_exact(&mut self, a: IpAddr) {
        self.exact.insert(addr_bits(a));
    }

    fn insert_v4(&mut self, a: Ipv4Addr, len: u8) {
        if len >= 32 {
            self.insert_exact(IpAddr::V4(a));
        } else if !self.v4_prefixes.contains(&(u32::from(a), len)) {
            self.v4_prefixes.push((u32::from(a), len));
        }
    }

    /// Whether an address is one of the namespace's.
    #[inline]
    pub fn contains(&self, a: IpAddr) -> bool {
        if self.exact.contains(&addr_bits(a)) {
            return true;
        }
        match a.to_canonical() {
            IpAddr::V4(v4) => {
                let x = u32::from(v4);
                self.v4_prefixes.iter().any(|&(net, len)| {
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    x & mask == net & mask
                })
            }
            IpAddr::V6(_) => false,
        }
    }

    /// Whether every route was read (see [`ProcReader::local_addrs`]).
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// How many addresses and prefixes are known.
    pub fn len(&self) -> usize {
        self.exact.len() + self.v4_prefixes.len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sockets indexed for flow lookup, with their owners.
///
/// Memory: about 40 bytes per socket and 20 per owned socket inode, each
/// owner process once. Sockets are keyed by a 64-bit keyed hash of
/// (protocol, local, remote): two of a million sockets share a key with
/// a probability of about 3e-8 (a flow could then be given the other's
/// owner).
#[derive(Debug, Clone, Default)]
pub struct SocketTable {
    connected: FxHashMap<u64, u64>,
    bound: FxHashMap<u64, u64>,
    owners: OwnerIndex,
    /// Local ports of the indexed sockets (TCP, UDP): a flow none of
    /// whose local ports is here has no socket, without a lookup.
    ports: [PortSet; 2],
    /// Inodes of the sockets indexed from other network namespaces
    /// ([`SocketTable::read_neighbour_sockets`]).
    neighbours: rustc_hash::FxHashSet<u64>,
}

/// A set of ports, one bit each.
#[derive(Debug, Clone)]
struct PortSet(Box<[u64; 1024]>);

impl Default for PortSet {
    fn default() -> Self {
        PortSet(Box::new([0; 1024]))
    }
}

impl PortSet {
    fn insert(&mut self, p: u16) {
        self.0[usize::from(p >> 6)] |= 1 << (p & 63);
    }

    #[inline]
    fn contains(&self, p: u16) -> bool {
        self.0[usize::from(p >> 6)] & (1 << (p & 63)) != 0
    }
}

/// The port set of a protocol (TCP 0, UDP 1), `None` for others.
fn proto_slot(p: u8) -> Option<usize> {
    match L4Proto(p) {
        L4Proto::TCP => Some(0),
        L4Proto::UDP => Some(1),
        _ => None,
    }
}

/// The key of a socket: a keyed 64-bit hash of protocol and endpoints
/// (addresses in canonical form, IPv4 as IPv4).
#[inline]
fn socket_key(proto: u8, local: (IpAddr, u16), remote: Option<(IpAddr, u16)>) -> u64 {
    use std::hash::Hasher;
    let mut h =
        siphasher::sip::SipHasher13::new_with_keys(0x636f_6e6e_7472_6163, 0x6b2d_6b69_7473_6f63);
    let mut ep = |(ip, port): (IpAddr, u16)| {
        match ip.to_canonical() {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        h.write_u16(port);
    };
    ep(local);
    if let Some(r) = remote {
        ep(r);
    }
    h.write_u8(proto);
    h.finish()
}

fn wildcard_of(ip: IpAddr) -> IpAddr {
    if ip.to_canonical().is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    }
}

/// What [`SocketTable::lookup`] found for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketMatch {
    /// A protocol without ports (ICMP, GRE, ...): no socket to match.
    NoPorts,
    /// No indexed socket has either of the flow's local ends.
    NoSocket,
    /// The local socket, and the index of its owner in
    /// [`SocketTable::owners`] when known.
    Socket {
        /// Socket inode.
        inode: u64,
        /// Index of the owner.
        owner: Option<u32>,
    },
}

impl SocketTable {
    /// Indexes sockets (inode 0 skipped) with an inode -> owner map.
    pub fn new(sockets: Vec<SocketEntry>, owners: FxHashMap<u64, Owner>) -> Self {
        let mut t = SocketTable::with_owners(OwnerIndex::from_map(owners));
        for s in &sockets {
            t.insert(s);
        }
        t
    }

    /// An empty table with the owners of socket inodes; add the sockets
    /// with [`SocketTable::insert`] or [`SocketTable::read_sockets`].
    pub fn with_owners(owners: OwnerIndex) -> Self {
        SocketTable {
            owners,
            ..Default::default()
        }
    }

    /// Indexes one socket (TCP or UDP; inode 0, sockets being torn down,
    /// skipped). Unconnected UDP sockets match flows by their local end.
    pub fn insert(&mut self, s: &SocketEntry) {
        let Some(slot) = proto_slot(s.proto.0) else {
            return;
        };
        if s.inode == 0 {
            return;
        }
        let local = (s.local.ip(), s.local.port());
        if s.remote.port() == 0 && s.remote.ip().is_unspecified() {
            if s.proto == L4Proto::UDP {
                self.bound
                    .insert(socket_key(s.proto.0, local, None), s.inode);
                self.ports[slot].insert(s.local.port());
            }
        } else {
            let remote = (s.remote.ip(), s.remote.port());
            self.connected
                .insert(socket_key(s.proto.0, local, Some(remote)), s.inode);
            self.ports[slot].insert(s.local.port());
        }
    }

    /// Reads the socket tables of a `/proc/net` (`tcp`, `tcp6`, `udp`,
    /// `udp6` under `fs`'s view: a namespace's through
    /// [`HostFs::for_current_thread`] or [`HostFs::for_pid`]) one line at
    /// a time, so a proxy's table of a million sockets costs the index,
    /// not a copy of the file. Missing files are skipped. Returns whether
    /// every file was read whole (each is read up to
    /// [`MAX_SOCKET_FILE_BYTES`]).
    pub fn read_sockets(&mut self, fs: &HostFs) -> Result<bool, HostError> {
        self.read_socket_files(fs, false)
    }

    /// Indexes the sockets of `fs`'s four socket tables, one line at a
    /// time; a neighbour's ([`SocketTable::read_neighbour_sockets`]) only
    /// when they can be an end of a routed flow, and marked as its.
    fn read_socket_files(&mut self, fs: &HostFs, neighbour: bool) -> Result<bool, HostError> {
        let mut complete = true;
        for (name, proto) in SOCKET_FILES {
            match for_each_line(fs, &fs.net_path(name), MAX_SOCKET_FILE_BYTES, |l| {
                let Some(s) = parse_proc_net_line(l, proto) else {
                    return;
                };
                if !neighbour {
                    self.insert(&s);
                } else if !s.local.ip().is_loopback()
                    && !s.local.ip().is_unspecified()
                    && s.inode != 0
                {
                    self.insert(&s);
                    self.neighbours.insert(s.inode);
                }
            }) {
                Ok(whole) => complete &= whole,
                Err(HostError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(complete)
    }

    /// Also indexes the sockets of another network namespace (`fs` is
    /// [`HostFs::for_pid`] of a process in it; see
    /// [`OwnerIndex::namespaces`]), so that the flows a namespace routes
    /// for its neighbours (containers behind a Docker bridge and its
    /// MASQUERADE, pods on a node) are counted under the process whose
    /// socket is the flow's end: the flow's original source is the
    /// container's socket (its address before source NAT).
    ///
    /// Only sockets that can be an end of a routed flow are taken:
    /// connected TCP and UDP sockets, and UDP sockets bound to one address,
    /// not on loopback (a container's loopback traffic never leaves it,
    /// and its wildcard sockets would claim any flow to their port).
    /// Returns whether every file was read whole.
    pub fn read_neighbour_sockets(&mut self, fs: &HostFs) -> Result<bool, HostError> {
        self.read_socket_files(fs, true)
    }

    /// Whether a socket inode was indexed from another namespace.
    pub fn is_neighbour(&self, inode: u64) -> bool {
        !self.neighbours.is_empty() && self.neighbours.contains(&inode)
    }

    /// Sockets indexed.
    pub fn len(&self) -> usize {
        self.connected.len() + self.bound.len()
    }

    /// Whether no socket is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The owners of the indexed sockets' inodes.
    pub fn owners(&self) -> &OwnerIndex {
        &self.owners
    }

    /// The local socket of a flow: the connected socket whose (local,
    /// remote) is the original direction (outgoing) or the reply direction
    /// (incoming, after DNAT), else for UDP a bound, unconnected socket on
    /// either local end (an IPv6 wildcard socket receives IPv4 too).
    #[inline]
    pub fn lookup<F: FlowLike + ?Sized>(&self, f: &F) -> SocketMatch {
        let (o, r) = (f.orig(), f.reply());
        let p = o.proto.0;
        let (Some(op_s), Some(op_d), Some(rp_s), Some(rp_d)) =
            (o.src_port(), o.dst_port(), r.src_port(), r.dst_port())
        else {
            return SocketMatch::NoPorts;
        };
        let Some(slot) = proto_slot(p) else {
            return SocketMatch::NoSocket;
        };
        let (out_local, in_local) = (
            self.ports[slot].contains(op_s),
            self.ports[slot].contains(rp_s),
        );
        if !out_local && !in_local {
            return SocketMatch::NoSocket;
        }
        let conn = |l: (IpAddr, u16), rem: (IpAddr, u16)| {
            self.connected.get(&socket_key(p, l, Some(rem))).copied()
        };
        let bound = |l: (IpAddr, u16)| {
            let b = |ip| self.bound.get(&socket_key(p, (ip, l.1), None)).copied();
            b(l.0)
                .or_else(|| b(wildcard_of(l.0)))
                .or_else(|| b(IpAddr::V6(Ipv6Addr::UNSPECIFIED)))
        };
        let out_l = (o.src, op_s);
        let in_l = (r.src, rp_s);
        let found = out_local
            .then(|| conn(out_l, (o.dst, op_d)))
            .flatten()
            .or_else(|| in_local.then(|| conn(in_l, (r.dst, rp_d))).flatten())
            .or_else(|| {
                (p == L4Proto::UDP.0)
                    .then(|| {
                        out_local
                            .then(|| bound(out_l))
                            .flatten()
                            .or_else(|| in_local.then(|| bound(in_l)).flatten())
                    })
                    .flatten()
            });
        match found {
            Some(inode) => SocketMatch::Socket {
                inode,
                owner: self.owners.by_inode.get(&inode).copied(),
            },
            None => SocketMatch::NoSocket,
        }
    }

    /// The inode of the local socket a flow belongs to (see
    /// [`SocketTable::lookup`]).
    pub fn socket_of<F: FlowLike + ?Sized>(&self, f: &F) -> Option<u64> {
        match self.lookup(f) {
            SocketMatch::Socket { inode, .. } => Some(inode),
            _ => None,
        }
    }

    /// The owner of a flow's local socket.
    pub fn owner_of<F: FlowLike + ?Sized>(&self, f: &F) -> Option<&Owner> {
        match self.lookup(f) {
            SocketMatch::Socket { owner: Some(i), .. } => self.owners.owners.get(i as usize),
            _ => None,
        }
    }

    /// Attributes flows: counts per process and per container, every
    /// process and container listed.
    pub fn attribute<'a, F, I>(&self, flows: I) -> AttributionSummary
    where
        F: FlowLike + 'a,
        I: IntoIterator<Item = &'a F>,
    {
        let mut c = OwnerCounter::new(self, None);
        for f in flows {
            c.add(f);
        }
        c.summary(usize::MAX)
    }
}

/// Counts flows by owner in one pass (a streamed dump's fold): every flow
/// is looked up in a [`SocketTable`] and counted under its process, or
/// under why it has none. Memory: one counter per owner process; CPU: two
/// bit tests for a flow whose local ports no socket has (forwarded
/// traffic), a few hash lookups otherwise.
///
/// ```
/// use conntrack_analyze::attribution::{LocalAddrs, OwnerCounter, SocketTable};
/// use conntrack_core::testkit::{flow, icmp_echo, tcp};
/// let sockets = SocketTable::default();
/// let local = LocalAddrs::new(["10.0.0.1".parse().unwrap()]);
/// let mut c = OwnerCounter::new(&sockets, Some(&local));
/// c.add(&flow(tcp("10.0.0.1", 40000, "192.0.2.1", 443))); // from here, socket gone
/// c.add(&flow(tcp("10.9.0.7", 40000, "192.0.2.1", 443))); // routed through
/// c.add(&flow(icmp_echo("10.0.0.1", "192.0.2.1", 1)));
/// let s = c.summary(10);
/// assert_eq!((s.flows, s.with_owner), (3, 0));
/// let u = s.unattributed;
/// assert_eq!((u.no_socket, u.forwarded, u.without_ports), (1, Some(1), 1));
/// ```
#[derive(Debug, Clone)]
pub struct OwnerCounter<'a> {
    table: &'a SocketTable,
    local: Option<&'a LocalAddrs>,
    flows: u64,
    per_owner: Vec<u64>,
    owner_unknown: u64,
    without_ports: u64,
    forwarded: u64,
    no_socket: u64,
    via_neighbours: u64,
}

impl<'a> OwnerCounter<'a> {
    /// A counter over a socket table; with the namespace's addresses,
    /// flows without a socket are told apart: forwarded (neither the
    /// original nor the reply source is local) or local.
    pub fn new(table: &'a SocketTable, local: Option<&'a LocalAddrs>) -> Self {
        OwnerCounter {
            table,
            local,
            flows: 0,
            per_owner: vec![0; table.owners.owners.len()],
            owner_unknown: 0,
            without_ports: 0,
            forwarded: 0,
            no_socket: 0,
            via_neighbours: 0,
        }
    }

    /// Flows counted.
    pub fn flows(&self) -> u64 {
        self.flows
    }

    /// Counts one flow.
    #[inline]
    pub fn add<F: FlowLike + ?Sized>(&mut self, f: &F) {
        self.flows += 1;
        match self.table.lookup(f) {
            SocketMatch::Socket { inode, owner } => {
                match owner {
                    Some(i) => self.per_owner[i as usize] += 1,
                    None => self.owner_unknown += 1,
                }
                if self.table.is_neighbour(inode) {
                    self.via_neighbours += 1;
                }
            }
            SocketMatch::NoPorts => self.without_ports += 1,
            SocketMatch::NoSocket => match self.local {
                Some(l) if !l.contains(f.orig().src) && !l.contains(f.reply().src) => {
                    self.forwarded += 1
                }
                _ => self.no_socket += 1,
            },
        }
    }

    /// The counts: the first `n` processes and containers by flows (ties
    /// by PID, by container), how many there are, and what was not
    /// attributed.
    pub fn summary(&self, n: usize) -> AttributionSummary {
        let owners = &self.table.owners.owners;
        let mut by_process: Vec<ProcessFlows> = owners
            .iter()
            .zip(&self.per_owner)
            .filter(|(_, c)| **c > 0)
            .map(|(o, &flows)| ProcessFlows {
                pid: o.pid,
                comm: o.comm.clone(),
                container: o.container.clone(),
                flows,
            })
            .collect();
        by_process.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.pid.cmp(&b.pid)));
        let mut conts: FxHashMap<&ContainerRef, u64> = FxHashMap::default();
        for p in owners.iter().zip(&self.per_owner) {
            if let (Some(c), &n) = (&p.0.container, p.1)
                && n > 0
            {
                *conts.entry(c).or_default() += n;
            }
        }
        let mut by_container: Vec<ContainerFlows> = conts
            .into_iter()
            .map(|(c, flows)| ContainerFlows {
                container: c.clone(),
                flows,
            })
            .collect();
        by_container.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.container.cmp(&b.container)));
        let with_owner: u64 = self.per_owner.iter().sum();
        let in_containers = by_container.iter().map(|c| c.flows).sum();
        let (processes, containers) = (by_process.len() as u64, by_container.len() as u64);
        by_process.truncate(n);
        by_container.truncate(n);
        AttributionSummary {
            flows: self.flows,
            with_socket: with_owner + self.owner_unknown,
            with_owner,
            unattributed: Unattributed {
                without_ports: self.without_ports,
                forwarded: self.local.map(|_| self.forwarded),
                no_socket: self.no_socket,
                owner_unknown: self.owner_unknown,
            },
            processes,
            containers,
            in_containers,
            in_other_namespaces: self.via_neighbours,
            by_process,
            by_container,
        }
    }
}

/// Flows of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct ProcessFlows {
    /// PID.
    pub pid: u32,
    /// Command.
    pub comm: String,
    /// Container, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerRef>,
    /// Flows.
    pub flows: u64,
}

/// Flows of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct ContainerFlows {
    /// The container.
    pub container: ContainerRef,
    /// Flows.
    pub flows: u64,
}

/// The flows no process was found for, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Unattributed {
    /// Protocols without ports (ICMP, GRE, ...): no socket to match.
    pub without_ports: u64,
    /// Neither the original source nor the reply source is an address of
    /// the namespace: traffic routed (and perhaps translated) through it,
    /// which no local socket can own. `None` when the namespace's
    /// addresses were not read (then these count under `no_socket`).
    pub forwarded: Option<u64>,
    /// A local end but no socket with it: closed connections whose entry
    /// outlives the socket (TIME_WAIT, CLOSE, UDP timeouts), sockets in
    /// another namespace, or replies to local traffic after the socket
    /// went.
    pub no_socket: u64,
    /// A socket but no process holding it: the process ended, or its
    /// `/proc/PID/fd` could not be read (another user's, without
    /// privileges), or the kernel holds the socket.
    pub owner_unknown: u64,
}

/// Top processes and containers by flows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub struct AttributionSummary {
    /// Flows examined.
    pub flows: u64,
    /// Flows matched to a local socket.
    pub with_socket: u64,
    /// Flows whose socket's owner was found.
    pub with_owner: u64,
    // The defaults below read summaries written before these fields
    // existed.
    /// The flows without an owner, by reason (they add up to `flows -
    /// with_owner`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub unattributed: Unattributed,
    /// Processes owning flows (`by_process` may list fewer).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub processes: u64,
    /// Containers owning flows (`by_container` may list fewer).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub containers: u64,
    /// Flows owned by processes in containers.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub in_containers: u64,
    /// Flows whose socket is in another network namespace than the
    /// table's (containers or pods whose traffic this namespace routes
    /// and translates; counted in `with_socket`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(!default))]
    pub in_other_namespaces: u64,
    /// Processes, most flows first.
    pub by_process: Vec<ProcessFlows>,
    /// Containers, most flows first.
    pub by_container: Vec<ContainerFlows>,
}

impl fmt::Display for AttributionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} flows, {} with a local socket, {} with an owner",
            self.flows, self.with_socket, self.with_owner
        )?;
        writeln!(
            f,
            "{:>8}  {:<16} {:>8}  container",
            "pid", "command", "flows"
        )?;
        for p in &self.by_process {
            let c = p
                .container
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            writeln!(f, "{:>8}  {:<16} {:>8}  {c}", p.pid, p.comm, p.flows)?;
        }
        for c in &self.by_container {
            writeln!(f, "{:<40} {:>8}", c.container.to_string(), c.flows)?;
        }
        Ok(())
    }
}

/// Reads `root/proc` sockets and owners and attributes flows in one call.
pub fn attribute_flows<'a, F, I>(root: &Path, flows: I) -> Result<AttributionSummary, HostError>
where
    F: FlowLike + 'a,
    I: IntoIterator<Item = &'a F>,
{
    Ok(ProcReader::new(root).socket_table()?.attribute(flows))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(t in ".{0,400}") {
            let _ = parse_proc_net(&t, L4Proto::UDP);
            let _ = parse_cgroup(&t);
            let _ = parse_socket_link(&t);
            let _ = parse_proc_addr(&t);
        }
    }

    #[test]
    fn hostile_proc_net_never_panics() {
        for t in [
            "",
            "\n\n",
            "0: : : :",
            "  0: ZZZZZZZZ:1F90 00000000:0000 0A",
            "  0: 0100007F:1F90000 00000000:0000 0A 0:0 0:0 0 0 0 1",
            "  0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 notanuid 0 1",
            "  0: 0100007F:1F90 00000000:0000 0AB 0:0 0:0 0 0 0 1",
            "  0: ééééééééééééééééééééééééééééééé:1F90 00000000:0000 0A 0:0 0:0 0 0 0 1",
            "  0: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 1",
        ] {
            let _ = parse_proc_net(t, L4Proto::TCP);
        }
    }

    /// A container behind the host's bridge and MASQUERADE: its process
    /// holds the socket in its own namespace, the host's table holds the
    /// translated entry. The container's namespace is found through its
    /// processes, read through `/proc/PID/net`, and its connected socket
    /// owns the entry; its loopback and wildcard sockets are left out.
    #[test]
    fn flows_routed_for_a_container_count_under_its_process() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mk = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        let link = |rel: &str, to: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(to, p).unwrap();
        };
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        // The host: no sockets of its own here.
        mk("proc/net/tcp", header);
        let id = "4f1c6b4e8a2d9c0b7e6f5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b";
        for pid in [100, 101] {
            link(&format!("proc/{pid}/ns/net"), "net:[4026532001]");
            mk(&format!("proc/{pid}/comm"), "client\n");
            mk(
                &format!("proc/{pid}/cgroup"),
                &format!("0::/system.slice/docker-{id}.scope\n"),
            );
        }
        link("proc/100/fd/3", "socket:[555]");
        link("proc/100/fd/4", "socket:[556]");
        link("proc/101/fd/3", "socket:[557]");
        // 172.17.0.2:40000 -> 10.0.0.9:443 (555); 127.0.0.1:5000 ->
        // 127.0.0.1:6000 (556); UDP bound to 0.0.0.0:53 (557).
        mk(
            "proc/100/net/tcp",
            &format!(
                "{header}   0: 020011AC:9C40 0900000A:01BB 01 00000000:00000000 00:00000000 00000000     0        0 555 1\n\
                 \x20  1: 0100007F:1388 0100007F:1770 01 00000000:00000000 00:00000000 00000000     0        0 556 1\n"
            ),
        );
        mk(
            "proc/100/net/udp",
            &format!(
                "{header}   0: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 557 2\n"
            ),
        );
        let reader = ProcReader::new(root);
        let index = reader.owner_index().unwrap();
        assert_eq!(
            index.namespaces(),
            &[ProcessNamespace {
                inode: 4026532001,
                pid: 100
            }],
            "one namespace, found through its first process"
        );
        let namespaces = index.namespaces().to_vec();
        let mut t = SocketTable::with_owners(index);
        assert!(t.read_sockets(&HostFs::new(root)).unwrap());
        assert!(t.is_empty());
        for ns in &namespaces {
            assert!(
                t.read_neighbour_sockets(&HostFs::new(root).for_pid(ns.pid))
                    .unwrap()
            );
        }
        assert_eq!(t.len(), 1, "loopback and wildcard sockets left out");
        assert!(t.is_neighbour(555) && !t.is_neighbour(556));

        let tcp = |s: &str, sp, d: &str, dp| {
            conntrack_core::Tuple::new(
                s.parse().unwrap(),
                d.parse().unwrap(),
                L4Proto::TCP,
                conntrack_core::L4Tuple::Ports { src: sp, dst: dp },
            )
        };
        // Masqueraded to the host's 192.168.1.5.
        let routed = conntrack_core::Flow::new(
            tcp("172.17.0.2", 40000, "10.0.0.9", 443),
            tcp("10.0.0.9", 443, "192.168.1.5", 40000),
            conntrack_core::Status::empty(),
        );
        let other = conntrack_core::Flow::new(
            tcp("172.17.0.3", 40000, "10.0.0.9", 443),
            tcp("10.0.0.9", 443, "192.168.1.5", 40001),
            conntrack_core::Status::empty(),
        );
        let local = LocalAddrs::new(["192.168.1.5".parse().unwrap()]);
        let mut c = OwnerCounter::new(&t, Some(&local));
        c.add(&routed);
        c.add(&other);
        let s = c.summary(10);
        assert_eq!((s.with_owner, s.in_other_namespaces), (1, 1), "{s:?}");
        assert_eq!(s.by_container.len(), 1);
        assert_eq!(s.by_container[0].container.id, id);
        assert_eq!(s.by_process[0].pid, 100);
        assert_eq!(s.unattributed.forwarded, Some(1));
    }

    /// The socket and address files are read one bounded line at a time
    /// from regular files only: a FIFO or a device is an error, not a hang
    /// or an endless read; an overlong line is skipped without being held;
    /// a line cut by the limit is not parsed.
    #[test]
    fn hostile_socket_files_are_refused_or_skipped() {
        let line = "  0: 0100007F:1F90 0200007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 77 1";
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("proc/net");
        std::fs::create_dir_all(&net).unwrap();
        let fs = HostFs::new(dir.path());
        // An overlong junk line (no newline for 100 KB), then a real one.
        std::fs::write(
            net.join("tcp"),
            format!("{}\n{line}\n", "x".repeat(100_000)),
        )
        .unwrap();
        let mut t = SocketTable::default();
        assert!(t.read_sockets(&fs).unwrap());
        assert_eq!(t.len(), 1);
        // The limit cuts the only line: nothing parsed, not complete.
        let mut n = 0;
        let whole = for_each_line(&fs, "proc/net/tcp", 100_010, |_| n += 1).unwrap();
        assert_eq!((whole, n), (false, 0));
        let whole = for_each_line(&fs, "proc/net/tcp", 1 << 20, |_| n += 1).unwrap();
        assert_eq!((whole, n), (true, 1));
        // A FIFO: refused at once (opening it would block until a writer).
        std::fs::remove_file(net.join("tcp")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(net.join("tcp"))
            .status()
            .unwrap();
        assert!(made.success());
        assert!(matches!(
            SocketTable::default().read_sockets(&fs),
            Err(HostError::NotAFile { .. })
        ));
        // A link to /dev/zero: refused, not read until memory runs out.
        std::fs::remove_file(net.join("tcp")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", net.join("tcp")).unwrap();
        assert!(matches!(
            SocketTable::default().read_sockets(&fs),
            Err(HostError::NotAFile { .. })
        ));
        std::os::unix::fs::symlink("/dev/urandom", net.join("fib_trie")).unwrap();
        assert!(matches!(
            ProcReader::from_host_fs(fs.clone()).local_addrs(),
            Err(HostError::NotAFile { .. })
        ));
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        if cfg!(target_endian = "big") {
            return;
        }
        // ::1 port 443
        let a = parse_proc_addr("00000000000000000000000001000000:01BB").unwrap();
        assert_eq!(a, "[::1]:443".parse().unwrap());
        // ::ffff:127.0.0.1 -> 127.0.0.1
        let a = parse_proc_addr("0000000000000000FFFF00000100007F:0050").unwrap();
        assert_eq!(a, "127.0.0.1:80".parse().unwrap());
        assert_eq!(parse_proc_addr("0100007F"), None);
        assert_eq!(parse_proc_addr("0100007:0050").map(|_| ()), None);
    }

    fn sock(proto: L4Proto, local: &str, remote: &str, inode: u64) -> SocketEntry {
        SocketEntry {
            proto,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state: 1,
            uid: 0,
            inode,
        }
    }

    fn owner(pid: u32, comm: &str, container: Option<&str>) -> Owner {
        Owner {
            pid,
            comm: comm.into(),
            container: container.map(|c| ContainerRef {
                runtime: Runtime::Docker,
                id: c.repeat(64 / c.len()),
                pod_uid: None,
            }),
        }
    }

    /// A namespace at 10.0.0.1 with: a client connection (inode 1, curl),
    /// a server socket accepted behind DNAT (inode 2, nginx in container
    /// a), a DNS server bound to the IPv6 wildcard (inode 3, also in a),
    /// a socket nobody holds (inode 4), a TIME_WAIT one (inode 0).
    fn table() -> SocketTable {
        let sockets = vec![
            sock(L4Proto::TCP, "10.0.0.1:40000", "192.0.2.1:443", 1),
            sock(L4Proto::TCP, "10.0.0.1:8080", "198.51.100.7:50000", 2),
            sock(L4Proto::UDP, "[::]:53", "0.0.0.0:0", 3),
            sock(L4Proto::TCP, "10.0.0.1:40001", "192.0.2.1:443", 4),
            sock(L4Proto::TCP, "10.0.0.1:40002", "192.0.2.1:443", 0),
        ];
        let mut owners = FxHashMap::default();
        owners.insert(1, owner(300, "curl", None));
        owners.insert(2, owner(200, "nginx", Some("a")));
        owners.insert(3, owner(100, "dnsd", Some("a")));
        SocketTable::new(sockets, owners)
    }

    fn flow(
        proto: L4Proto,
        o: (&str, u16, &str, u16),
        r: (&str, u16, &str, u16),
    ) -> conntrack_core::Flow {
        use conntrack_core::{L4Tuple, Status, Tuple};
        let t = |(s, sp, d, dp): (&str, u16, &str, u16)| {
            Tuple::new(
                s.parse().unwrap(),
                d.parse().unwrap(),
                proto,
                L4Tuple::Ports { src: sp, dst: dp },
            )
        };
        conntrack_core::Flow::new(t(o), t(r), Status::CONFIRMED)
    }

    #[test]
    fn flows_find_their_sockets_both_ways() {
        let t = table();
        assert_eq!(t.len(), 4, "inode 0 is not indexed");
        let tcp = L4Proto::TCP;
        // Outgoing: the original direction is the socket's.
        let out = flow(
            tcp,
            ("10.0.0.1", 40000, "192.0.2.1", 443),
            ("192.0.2.1", 443, "10.0.0.1", 40000),
        );
        assert_eq!(t.socket_of(&out), Some(1));
        assert_eq!(t.owner_of(&out).unwrap().comm, "curl");
        // Incoming to a DNAT'd port 80 -> 8080: the reply direction is.
        let inc = flow(
            tcp,
            ("198.51.100.7", 50000, "203.0.113.1", 80),
            ("10.0.0.1", 8080, "198.51.100.7", 50000),
        );
        assert_eq!(t.socket_of(&inc), Some(2));
        // IPv4 DNS to a socket bound to [::]:53 (dual stack).
        let dns = flow(
            L4Proto::UDP,
            ("10.0.0.9", 5353, "10.0.0.1", 53),
            ("10.0.0.1", 53, "10.0.0.9", 5353),
        );
        assert_eq!(t.socket_of(&dns), Some(3));
        // Same ports, other addresses: no socket.
        let other = flow(
            tcp,
            ("10.0.0.2", 40000, "192.0.2.1", 443),
            ("192.0.2.1", 443, "10.0.0.2", 40000),
        );
        assert_eq!(t.lookup(&other), SocketMatch::NoSocket);
        // A bound TCP listener does not own connections (only UDP's do).
        let icmp = conntrack_core::testkit::flow(conntrack_core::testkit::icmp_echo(
            "10.0.0.1",
            "192.0.2.1",
            1,
        ));
        assert_eq!(t.lookup(&icmp), SocketMatch::NoPorts);
    }

    #[test]
    fn owner_counter_sorts_every_flow_into_one_place() {
        let t = table();
        let local = LocalAddrs::new(["10.0.0.1".parse().unwrap()]);
        let tcp = L4Proto::TCP;
        let mut c = OwnerCounter::new(&t, Some(&local));
        let out = flow(
            tcp,
            ("10.0.0.1", 40000, "192.0.2.1", 443),
            ("192.0.2.1", 443, "10.0.0.1", 40000),
        );
        let inc = flow(
            tcp,
            ("198.51.100.7", 50000, "203.0.113.1", 80),
            ("10.0.0.1", 8080, "198.51.100.7", 50000),
        );
        let dns = |p| {
            flow(
                L4Proto::UDP,
                ("10.0.0.9", p, "10.0.0.1", 53),
                ("10.0.0.1", 53, "10.0.0.9", p),
            )
        };
        let orphan = flow(
            tcp,
            ("10.0.0.1", 40001, "192.0.2.1", 443),
            ("192.0.2.1", 443, "10.0.0.1", 40001),
        );
        let closed = flow(
            tcp,
            ("10.0.0.1", 40002, "192.0.2.1", 443),
            ("192.0.2.1", 443, "10.0.0.1", 40002),
        );
        // Masqueraded through this namespace: the reply comes to 10.0.0.1,
        // but neither source is local.
        let routed = flow(
            tcp,
            ("172.17.0.2", 40000, "192.0.2.1", 443),
            ("192.0.2.1", 443, "10.0.0.1", 61000),
        );
        let ping = conntrack_core::testkit::flow(conntrack_core::testkit::icmp_echo(
            "10.0.0.1",
            "192.0.2.1",
            1,
        ));
        for f in [
            &out,
            &inc,
            &dns(1),
            &dns(2),
            &dns(3),
            &orphan,
            &closed,
            &routed,
            &routed,
            &ping,
        ] {
            c.add(f);
        }
        let s = c.summary(2);
        assert_eq!((s.flows, s.with_socket, s.with_owner), (10, 6, 5));
        let u = s.unattributed;
        assert_eq!(
            (u.owner_unknown, u.no_socket, u.forwarded, u.without_ports),
            (1, 1, Some(2), 1)
        );
        assert_eq!(
            s.with_owner + u.owner_unknown + u.no_socket + u.forwarded.unwrap() + u.without_ports,
            s.flows
        );
        // Three processes, two shown; one container with nginx and dnsd.
        assert_eq!((s.processes, s.containers, s.in_containers), (3, 1, 4));
        let procs: Vec<(&str, u64)> = s
            .by_process
            .iter()
            .map(|p| (p.comm.as_str(), p.flows))
            .collect();
        assert_eq!(procs, [("dnsd", 3), ("nginx", 1)]);
        assert_eq!(s.by_container[0].flows, 4);
        // Without the namespace's addresses, forwarded flows are only
        // "without a socket".
        let mut c = OwnerCounter::new(&t, None);
        c.add(&routed);
        c.add(&closed);
        let u = c.summary(5).unattributed;
        assert_eq!((u.forwarded, u.no_socket), (None, 2));
        // The old entry point lists every process.
        let all = t.attribute([&out, &inc, &dns(1)]);
        assert_eq!((all.by_process.len(), all.with_owner), (3, 3));
    }

    #[test]
    fn local_addresses_from_fib_trie_and_if_inet6() {
        // As 6.18 prints it (Main and Local merged without policy routing).
        let fib = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
                   \x20    +-- 127.0.0.0/8 2 0 2\n        +-- 127.0.0.0/31 1 0 0\n\
                   \x20          |-- 127.0.0.0\n              /8 host LOCAL\n\
                   \x20          |-- 127.0.0.1\n              /32 host LOCAL\n\
                   \x20       |-- 127.255.255.255\n           /32 link BROADCAST\n\
                   \x20    +-- 192.0.2.0/24 2 0 2\n           |-- 192.0.2.0\n\
                   \x20             /24 link UNICAST\n           |-- 192.0.2.2\n\
                   \x20             /32 host LOCAL\nLocal:\n  +-- 0.0.0.0/0 3 0 5\n\
                   \x20          |-- 192.0.2.2\n              /32 host LOCAL\n";
        let mut f = FibTrieLocals::default();
        fib.lines().for_each(|l| f.line(l));
        let found = f.finish();
        assert_eq!(
            found,
            [
                ("127.0.0.0".parse().unwrap(), 8),
                ("127.0.0.1".parse().unwrap(), 32),
                ("192.0.2.2".parse().unwrap(), 32)
            ]
        );
        let mut l = LocalAddrs::new([]);
        for (a, len) in found {
            l.insert_v4(a, len);
        }
        if let Some(a) =
            parse_if_inet6_line("fd000000000000000000000000000002 04 40 00 82     eth0")
        {
            l.insert_exact(IpAddr::V6(a));
        }
        for yes in [
            "192.0.2.2",
            "127.8.9.10",
            "::ffff:192.0.2.2",
            "fd00::2",
            "::1",
        ] {
            assert!(l.contains(yes.parse().unwrap()), "{yes}");
        }
        for no in ["192.0.2.3", "192.0.2.255", "fd00::3", "10.0.0.1"] {
            assert!(!l.contains(no.parse().unwrap()), "{no}");
        }
        // Junk never panics and finds nothing.
        let mut f = FibTrieLocals::default();
        for l in [
            "/32 host LOCAL",
            "|-- not-an-ip",
            "   /99 host LOCAL",
            "|--",
            "/",
        ] {
            f.line(l);
        }
        assert!(f.finish().is_empty());
        assert_eq!(
            parse_if_inet6_line("fd00000000000000000000000000000 1"),
            None
        );
    }

    #[test]
    fn cgroup_forms() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let cases = [
            (
                format!("0::/system.slice/docker-{id}.scope"),
                Runtime::Docker,
                None,
            ),
            (format!("4:pids:/docker/{id}"), Runtime::Docker, None),
            (
                format!("0::/kubepods/besteffort/pod0a1b2c3d-0000-1111-2222-333344445555/{id}"),
                Runtime::Kubernetes,
                Some("0a1b2c3d-0000-1111-2222-333344445555"),
            ),
            (
                format!(
                    "0::/kubepods.slice/kubepods-pod0a1b2c3d_0000_1111_2222_333344445555.slice/crio-{id}.scope"
                ),
                Runtime::CriO,
                Some("0a1b2c3d-0000-1111-2222-333344445555"),
            ),
            (
                format!("1:name=systemd:/machine.slice/libpod-{id}.scope"),
                Runtime::Podman,
                None,
            ),
            (format!("0::/k8s.io/{id}"), Runtime::Containerd, None),
            (
                format!("0::/system.slice/containerd.service/{id}"),
                Runtime::Unknown,
                None,
            ),
        ];
        for (text, rt, pod) in cases {
            let c = parse_cgroup(&text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(c.runtime, rt, "{text}");
            assert_eq!(c.id, id);
            assert_eq!(c.pod_uid.as_deref(), pod, "{text}");
        }
        // Conmon and short ids are not containers; garbage never panics.
        assert_eq!(
            parse_cgroup(&format!("0::/machine.slice/libpod-conmon-{id}.scope")),
            None
        );
        assert_eq!(parse_cgroup("0::/docker/abc"), None);
        assert_eq!(parse_cgroup("::::\n:\n\u{0}pod"), None);
        assert_eq!(parse_cgroup("0::/kubepods/podé"), None);
    }
}
