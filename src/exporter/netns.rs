//! Network namespace discovery and naming (`--all-netns`).
//!
//! Every network namespace on a host is found in two places, both read
//! under a relocatable root (`/` on the host, `/host` in a container that
//! mounts the host's `/proc` and `/run/netns` there, a fixture tree in
//! tests):
//!
//! - `ROOT/run/netns/NAME`: the bind mounts `ip netns add` makes (a
//!   namespace without processes is only there);
//! - `ROOT/proc/PID/ns/net` for every process.
//!
//! Both are `stat`ed (the links followed): the inode number identifies the
//! namespace, so a namespace named and entered by many processes is found
//! once. A file under `run/netns` on another device than the namespaces of
//! `proc` is a leftover of a failed `ip netns add`, not a namespace.
//!
//! Names, in order of preference (the host's namespace, that of
//! `ROOT/proc/1`, or the initial namespace's fixed inode where PID 1's
//! link is refused, is `host`; the exporter's own namespace stands for it
//! when no process under the root shows it):
//!
//! 1. the `ip netns` name;
//! 2. `pod/NAMESPACE/NAME` for a Kubernetes pod: the container id is read
//!    from a member process's `/proc/PID/cgroup`
//!    ([`parse_cgroup`]), then the pod from the runtime's state file:
//!    containerd's OCI bundle
//!    (`run/containerd/io.containerd.runtime.v2.task/NS/ID/config.json`,
//!    annotations `io.kubernetes.cri.sandbox-name` and `-namespace`), CRI-O's
//!    (`run/containers/storage/overlay-containers/ID/userdata/config.json`,
//!    `io.kubernetes.pod.name` and `.namespace`), or Docker's container
//!    labels;
//! 3. `container/NAME` for a Docker container
//!    (`var/lib/docker/containers/ID/config.v2.json`, `Name`);
//! 4. `container/RUNTIME-ID12` for a container without a state file here;
//! 5. `netns/INODE` otherwise.
//!
//! Two namespaces with one name (a pod restarted while the old sandbox
//! lingers) get `@INODE` appended to the later ones.

use conntrack_analyze::attribution::{ContainerRef, Runtime, parse_cgroup};
use conntrack_core::host::NET_NS_INIT_INO;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// State files larger than this are not read.
const MAX_STATE_BYTES: u64 = 4 << 20;

/// How many member processes' cgroups are read to find a container.
const CGROUP_TRIES: usize = 4;

/// What a namespace is, as far as the host says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetnsKind {
    /// The host's (PID 1's) namespace.
    Host,
    /// Named by `ip netns add`.
    Named,
    /// A Kubernetes pod's.
    Pod,
    /// A container's.
    Container,
    /// None of the above.
    Anonymous,
}

impl NetnsKind {
    /// The `kind` label value.
    pub fn name(self) -> &'static str {
        match self {
            NetnsKind::Host => "host",
            NetnsKind::Named => "named",
            NetnsKind::Pod => "pod",
            NetnsKind::Container => "container",
            NetnsKind::Anonymous => "anonymous",
        }
    }
}

/// The container and pod a namespace belongs to, when the host says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// `docker`, `containerd`, `cri-o`, ...
    pub runtime: Option<&'static str>,
    /// The container id (64 hex digits).
    pub container_id: Option<String>,
    /// The container's name (Docker's `Name`, or the CRI container name).
    pub container: Option<String>,
    /// The pod's name.
    pub pod: Option<String>,
    /// The pod's Kubernetes namespace.
    pub pod_namespace: Option<String>,
}

/// One network namespace found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundNetns {
    /// The namespace's inode number (its identity while it lives).
    pub inode: u64,
    /// What it is.
    pub kind: NetnsKind,
    /// The unique display name (the `netns` label).
    pub label: String,
    /// Its `ip netns` names, sorted.
    pub names: Vec<String>,
    /// Processes in it (ascending; at most a few are kept).
    pub pids: Vec<u32>,
    /// Its container and pod.
    pub owner: Owner,
    /// A file to enter it by (`ROOT/run/netns/NAME` or
    /// `ROOT/proc/PID/ns/net`).
    pub handle: PathBuf,
}

/// What one discovery pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Every namespace, the host's first, then by label.
    pub namespaces: Vec<FoundNetns>,
    /// Processes whose namespace link could not be read (no privileges to
    /// see other users' processes); their namespaces may be missing.
    pub unreadable_pids: usize,
}

/// PIDs kept per namespace (enough to enter it and find its container).
const PIDS_KEPT: usize = 8;

/// Discovers every network namespace under `root` and names it.
pub fn discover(root: &Path) -> Discovery {
    let proc = root.join("proc");
    // The host's namespace: PID 1's; where its link cannot be read (a
    // sandbox may refuse even root), the initial namespace's fixed inode
    // (6.18+; never a dynamically allocated number before).
    let pid1 = std::fs::metadata(proc.join("1/ns/net")).ok();
    let own = std::fs::metadata("/proc/self/ns/net").ok();
    let nsfs_dev = pid1.as_ref().or(own.as_ref()).map(|m| m.dev());
    let host_ino = Some(pid1.as_ref().map_or(NET_NS_INIT_INO, |m| m.ino()));

    // inode -> (names, pids)
    let mut by_ino: BTreeMap<u64, (Vec<String>, Vec<u32>)> = BTreeMap::new();
    let mut unreadable = 0;
    for dir in [root.join("run/netns"), root.join("var/run/netns")] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let Ok(m) = std::fs::metadata(e.path()) else {
                continue;
            };
            if nsfs_dev.is_some_and(|d| d != m.dev()) {
                continue; // a leftover file, not a mounted namespace
            }
            let names = &mut by_ino.entry(m.ino()).or_default().0;
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(&proc) {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            match std::fs::metadata(e.path().join("ns/net")) {
                Ok(m) => {
                    let pids = &mut by_ino.entry(m.ino()).or_default().1;
                    pids.push(pid);
                }
                Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                    unreadable += 1;
                }
                Err(_) => {} // the process ended
            }
        }
    }

    // The host's namespace when no process of the root's /proc shows it
    // but the exporter is in it (hostNetwork): entered by our own link.
    let own_ino = own.as_ref().map(|m| m.ino());
    let mut self_handle = None;
    if own_ino.is_some() && own_ino == host_ino && !by_ino.contains_key(&own_ino.unwrap_or(0)) {
        by_ino.insert(own_ino.unwrap_or(0), (Vec::new(), Vec::new()));
        self_handle = Some(PathBuf::from("/proc/self/ns/net"));
    }

    let mut out: Vec<FoundNetns> = by_ino
        .into_iter()
        .map(|(inode, (mut names, mut pids))| {
            names.sort();
            pids.sort_unstable();
            pids.truncate(PIDS_KEPT);
            let owner = if names.is_empty() {
                owner_of(root, &pids)
            } else {
                Owner::default()
            };
            let kind = if Some(inode) == host_ino {
                NetnsKind::Host
            } else if !names.is_empty() {
                NetnsKind::Named
            } else if owner.pod.is_some() {
                NetnsKind::Pod
            } else if owner.container_id.is_some() {
                NetnsKind::Container
            } else {
                NetnsKind::Anonymous
            };
            let label = base_label(kind, inode, &names, &owner);
            let handle = match (names.first(), pids.first()) {
                (Some(n), _) => root.join("run/netns").join(n),
                (None, Some(p)) => proc.join(format!("{p}/ns/net")),
                (None, None) => self_handle.clone().unwrap_or_default(),
            };
            FoundNetns {
                inode,
                kind,
                label,
                names,
                pids,
                owner,
                handle,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.kind != NetnsKind::Host, &a.label, a.inode).cmp(&(
            b.kind != NetnsKind::Host,
            &b.label,
            b.inode,
        ))
    });
    // Unique labels: the first (lowest inode among equals after sorting)
    // keeps the name.
    let mut seen = std::collections::HashSet::new();
    for ns in &mut out {
        if !seen.insert(ns.label.clone()) {
            ns.label = format!("{}@{}", ns.label, ns.inode);
            seen.insert(ns.label.clone());
        }
    }
    Discovery {
        namespaces: out,
        unreadable_pids: unreadable,
    }
}

fn base_label(kind: NetnsKind, inode: u64, names: &[String], owner: &Owner) -> String {
    match kind {
        NetnsKind::Host => "host".into(),
        NetnsKind::Named => names[0].clone(),
        NetnsKind::Pod => format!(
            "pod/{}/{}",
            owner.pod_namespace.as_deref().unwrap_or("unknown"),
            owner.pod.as_deref().unwrap_or("unknown")
        ),
        NetnsKind::Container => match (&owner.container, &owner.container_id) {
            (Some(n), _) => format!("container/{n}"),
            (None, Some(id)) => format!(
                "container/{}-{}",
                owner.runtime.unwrap_or("unknown"),
                id.get(..12).unwrap_or(id)
            ),
            (None, None) => format!("netns/{inode}"),
        },
        NetnsKind::Anonymous => format!("netns/{inode}"),
    }
}

fn runtime_name(r: Runtime) -> &'static str {
    match r {
        Runtime::Docker => "docker",
        Runtime::Containerd => "containerd",
        Runtime::CriO => "cri-o",
        Runtime::Podman => "podman",
        Runtime::Kubernetes => "kubernetes",
        // Unknown, and runtimes a later analyze release recognises that
        // this exporter has no label for yet.
        _ => "unknown",
    }
}

/// The container and pod of a namespace's processes: the first of the
/// first few PIDs whose cgroup names a container.
fn owner_of(root: &Path, pids: &[u32]) -> Owner {
    for pid in pids.iter().take(CGROUP_TRIES) {
        let path = root.join(format!("proc/{pid}/cgroup"));
        let Some(text) = read_limited(&path) else {
            continue;
        };
        if let Some(c) = parse_cgroup(&text) {
            return owner_from_state(root, &c);
        }
    }
    Owner::default()
}

/// Completes a container reference from the runtimes' state files under
/// `root`.
pub fn owner_from_state(root: &Path, c: &ContainerRef) -> Owner {
    let mut o = Owner {
        runtime: Some(runtime_name(c.runtime)),
        container_id: Some(c.id.clone()),
        ..Owner::default()
    };
    // Docker: config.v2.json (name; pod labels when kubelet ran Docker).
    let docker = root.join(format!("var/lib/docker/containers/{}/config.v2.json", c.id));
    if let Some(v) = read_json(&docker) {
        o.runtime = Some("docker");
        o.container = v["Name"]
            .as_str()
            .map(|n| n.trim_start_matches('/').to_string())
            .filter(|n| !n.is_empty());
        let labels = &v["Config"]["Labels"];
        o.pod = labels["io.kubernetes.pod.name"]
            .as_str()
            .map(str::to_string);
        o.pod_namespace = labels["io.kubernetes.pod.namespace"]
            .as_str()
            .map(str::to_string);
        return o;
    }
    // containerd: the OCI bundle of the task, in any containerd namespace
    // (k8s.io for the CRI, moby for Docker's tasks, default).
    let tasks = root.join("run/containerd/io.containerd.runtime.v2.task");
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(&tasks)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().join(&c.id).join("config.json"))
                .collect()
        })
        .unwrap_or_default();
    bundles.sort();
    // CRI-O's copy of the OCI config.
    bundles.push(root.join(format!(
        "run/containers/storage/overlay-containers/{}/userdata/config.json",
        c.id
    )));
    for b in bundles {
        let Some(v) = read_json(&b) else { continue };
        let a = &v["annotations"];
        let get = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| a[*k].as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        o.pod = get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]);
        o.pod_namespace = get(&[
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.pod.namespace",
        ]);
        o.container = get(&[
            "io.kubernetes.cri.container-name",
            "io.kubernetes.container.name",
        ]);
        break;
    }
    o
}

fn read_limited(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut s = String::new();
    f.take(MAX_STATE_BYTES).read_to_string(&mut s).ok()?;
    Some(s)
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&read_limited(path)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const ID1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const ID2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const ID3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// A fake root whose `proc/PID/ns/net` are links to this process's
    /// own namespace link (the only real namespace a unit test has), so
    /// every PID lands in one namespace: naming is tested per owner.
    #[test]
    fn names_from_cgroups_and_state_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc/100/ns")).unwrap();
        symlink("/proc/self/ns/net", root.join("proc/100/ns/net")).unwrap();
        // No PID 1: no host namespace; PID 100 is a Docker container.
        write(
            root,
            "proc/100/cgroup",
            &format!("0::/system.slice/docker-{ID1}.scope\n"),
        );
        write(
            root,
            &format!("var/lib/docker/containers/{ID1}/config.v2.json"),
            r#"{"Name":"/web","Config":{"Labels":{}}}"#,
        );
        let d = discover(root);
        assert_eq!(d.namespaces.len(), 1, "{d:?}");
        let ns = &d.namespaces[0];
        assert_eq!(ns.owner.container.as_deref(), Some("web"));
        assert_eq!(ns.owner.runtime, Some("docker"));
        // In the initial namespace (no PID 1 here: its fixed inode says
        // so on 6.18+), the host's name wins.
        if ns.inode == NET_NS_INIT_INO {
            assert_eq!((ns.kind, ns.label.as_str()), (NetnsKind::Host, "host"));
        } else {
            assert_eq!(ns.kind, NetnsKind::Container);
            assert_eq!(ns.label, "container/web");
        }
        assert_eq!(ns.pids, [100]);
        assert_eq!(ns.handle, root.join("proc/100/ns/net"));

        // A CRI pod sandbox under containerd.
        let c = ContainerRef {
            runtime: Runtime::Containerd,
            id: ID2.into(),
            pod_uid: None,
        };
        write(
            root,
            &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID2}/config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-type":"sandbox",
                "io.kubernetes.cri.sandbox-name":"api-7d4f","io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
        );
        let o = owner_from_state(root, &c);
        assert_eq!(o.pod.as_deref(), Some("api-7d4f"));
        assert_eq!(o.pod_namespace.as_deref(), Some("shop"));
        assert_eq!(base_label(NetnsKind::Pod, 9, &[], &o), "pod/shop/api-7d4f");
        // A container whose runtime left no state here.
        let c3 = ContainerRef {
            runtime: Runtime::CriO,
            id: ID3.into(),
            pod_uid: None,
        };
        let o3 = owner_from_state(root, &c3);
        assert_eq!(o3.pod, None);
        assert_eq!(
            base_label(NetnsKind::Container, 9, &[], &o3),
            "container/cri-o-333333333333"
        );
        // CRI-O keeps the OCI config under its storage.
        write(
            root,
            &format!("run/containers/storage/overlay-containers/{ID3}/userdata/config.json"),
            r#"{"annotations":{"io.kubernetes.pod.name":"db-0","io.kubernetes.pod.namespace":"data",
                "io.kubernetes.container.name":"POD"}}"#,
        );
        let o3 = owner_from_state(root, &c3);
        assert_eq!(o3.pod.as_deref(), Some("db-0"));
        assert_eq!(o3.pod_namespace.as_deref(), Some("data"));
        assert_eq!(o3.runtime, Some("cri-o"));
        // Malformed state files are skipped, not fatal.
        write(
            root,
            &format!("var/lib/docker/containers/{ID3}/config.v2.json"),
            "{not json",
        );
        assert_eq!(owner_from_state(root, &c3).pod.as_deref(), Some("db-0"));
    }

    #[test]
    fn named_leftovers_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc/1/ns")).unwrap();
        std::fs::create_dir_all(root.join("proc/7/ns")).unwrap();
        std::fs::create_dir_all(root.join("run/netns")).unwrap();
        symlink("/proc/self/ns/net", root.join("proc/1/ns/net")).unwrap();
        symlink("/proc/self/ns/net", root.join("proc/7/ns/net")).unwrap();
        // A plain file (a failed `ip netns add`): another device, skipped.
        write(root, "run/netns/stale", "");
        let d = discover(root);
        assert_eq!(d.namespaces.len(), 1, "{d:?}");
        assert_eq!(d.namespaces[0].kind, NetnsKind::Host);
        assert_eq!(d.namespaces[0].label, "host");
        assert_eq!(d.namespaces[0].pids, [1, 7]);
        assert!(d.namespaces[0].names.is_empty());
    }
}
