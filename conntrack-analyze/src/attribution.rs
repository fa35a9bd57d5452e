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

use conntrack_core::host::{HostError, HostFs};
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
        .filter_map(|line| {
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
        })
        .collect()
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
    /// errors returned).
    pub fn sockets(&self) -> Result<Vec<SocketEntry>, HostError> {
        let mut out = Vec::new();
        for (name, proto) in [
            ("tcp", L4Proto::TCP),
            ("tcp6", L4Proto::TCP),
            ("udp", L4Proto::UDP),
            ("udp6", L4Proto::UDP),
        ] {
            match self.fs.read_text(&self.fs.net_path(name)) {
                Ok(t) => out.extend(parse_proc_net(&t, proto)),
                Err(HostError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Socket inode -> owner for every process readable (processes that
    /// vanish, deny access or hold malformed files while being read are
    /// skipped). An inode shared by several processes keeps the lowest PID.
    pub fn socket_owners(&self) -> Result<FxHashMap<u64, Owner>, HostError> {
        let proc = self.fs.path("proc");
        let dir = std::fs::read_dir(&proc).map_err(|e| HostError::from_io(&proc, &e))?;
        let mut pids: Vec<u32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        let mut out = FxHashMap::default();
        for pid in pids {
            let Ok(fds) = std::fs::read_dir(self.fs.path(&format!("proc/{pid}/fd"))) else {
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
            let owner = Owner {
                pid,
                comm,
                container,
            };
            for ino in inodes {
                out.entry(ino).or_insert_with(|| owner.clone());
            }
        }
        Ok(out)
    }

    /// Sockets and owners read together.
    pub fn socket_table(&self) -> Result<SocketTable, HostError> {
        Ok(SocketTable::new(self.sockets()?, self.socket_owners()?))
    }
}

/// Sockets indexed for flow lookup, with their owners.
#[derive(Debug, Clone, Default)]
pub struct SocketTable {
    connected: FxHashMap<(u8, SocketAddr, SocketAddr), u64>,
    bound: FxHashMap<(u8, SocketAddr), u64>,
    owners: FxHashMap<u64, Owner>,
}

/// Whether the address is unspecified.
fn wildcard(a: SocketAddr) -> SocketAddr {
    let ip = if a.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    SocketAddr::new(ip, a.port())
}

impl SocketTable {
    /// Indexes sockets (inode 0 skipped) with an inode -> owner map.
    pub fn new(sockets: Vec<SocketEntry>, owners: FxHashMap<u64, Owner>) -> Self {
        let mut t = SocketTable {
            owners,
            ..Default::default()
        };
        for s in sockets {
            if s.inode == 0 {
                continue;
            }
            if s.remote.port() == 0 && s.remote.ip().is_unspecified() {
                if s.proto == L4Proto::UDP {
                    t.bound.insert((s.proto.0, s.local), s.inode);
                }
            } else {
                t.connected.insert((s.proto.0, s.local, s.remote), s.inode);
            }
        }
        t
    }

    /// The inode of the local socket a flow belongs to: the connected
    /// socket whose (local, remote) is the original direction (outgoing) or
    /// the reply direction (incoming, after DNAT), else for UDP a bound,
    /// unconnected socket on either local end.
    pub fn socket_of<F: FlowLike + ?Sized>(&self, f: &F) -> Option<u64> {
        let (o, r) = (f.orig(), f.reply());
        let p = o.proto.0;
        let (op_s, op_d) = (o.src_port()?, o.dst_port()?);
        let (rp_s, rp_d) = (r.src_port()?, r.dst_port()?);
        let canon = |ip: IpAddr, port| SocketAddr::new(ip.to_canonical(), port);
        let out_l = canon(o.src, op_s);
        let out_r = canon(o.dst, op_d);
        let in_l = canon(r.src, rp_s);
        let in_r = canon(r.dst, rp_d);
        self.connected
            .get(&(p, out_l, out_r))
            .or_else(|| self.connected.get(&(p, in_l, in_r)))
            .or_else(|| self.bound.get(&(p, out_l)))
            .or_else(|| self.bound.get(&(p, wildcard(out_l))))
            .or_else(|| self.bound.get(&(p, in_l)))
            .or_else(|| self.bound.get(&(p, wildcard(in_l))))
            .copied()
    }

    /// The owner of a flow's local socket.
    pub fn owner_of<F: FlowLike + ?Sized>(&self, f: &F) -> Option<&Owner> {
        self.owners.get(&self.socket_of(f)?)
    }

    /// Attributes flows: counts per process and per container.
    pub fn attribute<'a, F, I>(&self, flows: I) -> AttributionSummary
    where
        F: FlowLike + 'a,
        I: IntoIterator<Item = &'a F>,
    {
        let mut procs: FxHashMap<u32, (String, Option<ContainerRef>, u64)> = FxHashMap::default();
        let mut conts: FxHashMap<ContainerRef, u64> = FxHashMap::default();
        let (mut n, mut sock, mut owned) = (0u64, 0u64, 0u64);
        for f in flows {
            n += 1;
            let Some(ino) = self.socket_of(f) else {
                continue;
            };
            sock += 1;
            let Some(o) = self.owners.get(&ino) else {
                continue;
            };
            owned += 1;
            procs
                .entry(o.pid)
                .or_insert_with(|| (o.comm.clone(), o.container.clone(), 0))
                .2 += 1;
            if let Some(c) = &o.container {
                *conts.entry(c.clone()).or_default() += 1;
            }
        }
        let mut by_process: Vec<ProcessFlows> = procs
            .into_iter()
            .map(|(pid, (comm, container, flows))| ProcessFlows {
                pid,
                comm,
                container,
                flows,
            })
            .collect();
        by_process.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.pid.cmp(&b.pid)));
        let mut by_container: Vec<ContainerFlows> = conts
            .into_iter()
            .map(|(container, flows)| ContainerFlows { container, flows })
            .collect();
        by_container.sort_by(|a, b| b.flows.cmp(&a.flows).then(a.container.cmp(&b.container)));
        AttributionSummary {
            flows: n,
            with_socket: sock,
            with_owner: owned,
            by_process,
            by_container,
        }
    }
}

/// Flows of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[non_exhaustive]
pub struct ContainerFlows {
    /// The container.
    pub container: ContainerRef,
    /// Flows.
    pub flows: u64,
}

/// Top processes and containers by flows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AttributionSummary {
    /// Flows examined.
    pub flows: u64,
    /// Flows matched to a local socket.
    pub with_socket: u64,
    /// Flows whose socket's owner was found.
    pub with_owner: u64,
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
