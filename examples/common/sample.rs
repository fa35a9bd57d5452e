//! The bundled sample incident (`examples/data/sample-incident`, see its
//! README): what `--sample` analyses, and what `doctor` shows when this
//! host cannot be analysed.
//!
//! Its files are compiled into the binary, so that an example installed
//! with `cargo install --path . --example doctor` and copied to another
//! host still has them. [`dir`] is the checkout's directory when it exists
//! (`cargo run`, the tests), else a copy the binary writes once into a
//! private directory under the temporary directory and re-uses while it
//! is intact.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The sample in the checkout the binary was built from.
pub const CHECKOUT_DIR: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/sample-incident");

/// Every file of the sample (but its generator), relative to its
/// directory, with its content.
macro_rules! sample_files {
    ($($rel:literal),* $(,)?) => {
        &[$((
            $rel,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/data/sample-incident/",
                $rel
            )) as &[u8],
        )),*]
    };
}

/// The embedded files; `bundles_every_file` checks the list against the
/// directory.
pub const FILES: &[(&str, &[u8])] = sample_files![
    "README.md",
    "conntrack-C.txt",
    "conntrack-L.txt",
    "conntrack-S.txt",
    "iptables-save.txt",
    "meta.txt",
    "proc/1/ns/net",
    "proc/meminfo",
    "proc/modules",
    "proc/net/stat/nf_conntrack",
    "proc/self/ns/net",
    "proc/self/smaps",
    "proc/slabinfo",
    "proc/softirqs",
    "proc/sys/kernel/osrelease",
    "proc/sys/net/netfilter/nf_conntrack_acct",
    "proc/sys/net/netfilter/nf_conntrack_buckets",
    "proc/sys/net/netfilter/nf_conntrack_checksum",
    "proc/sys/net/netfilter/nf_conntrack_count",
    "proc/sys/net/netfilter/nf_conntrack_dccp_loose",
    "proc/sys/net/netfilter/nf_conntrack_dccp_timeout_closereq",
    "proc/sys/net/netfilter/nf_conntrack_dccp_timeout_closing",
    "proc/sys/net/netfilter/nf_conntrack_dccp_timeout_open",
    "proc/sys/net/netfilter/nf_conntrack_dccp_timeout_partopen",
    "proc/sys/net/netfilter/nf_conntrack_dccp_timeout_request",
    "proc/sys/net/netfilter/nf_conntrack_dccp_timeout_respond",
    "proc/sys/net/netfilter/nf_conntrack_dccp_timeout_timewait",
    "proc/sys/net/netfilter/nf_conntrack_events",
    "proc/sys/net/netfilter/nf_conntrack_expect_max",
    "proc/sys/net/netfilter/nf_conntrack_frag6_high_thresh",
    "proc/sys/net/netfilter/nf_conntrack_frag6_low_thresh",
    "proc/sys/net/netfilter/nf_conntrack_frag6_timeout",
    "proc/sys/net/netfilter/nf_conntrack_generic_timeout",
    "proc/sys/net/netfilter/nf_conntrack_gre_timeout",
    "proc/sys/net/netfilter/nf_conntrack_gre_timeout_stream",
    "proc/sys/net/netfilter/nf_conntrack_icmp_timeout",
    "proc/sys/net/netfilter/nf_conntrack_icmpv6_timeout",
    "proc/sys/net/netfilter/nf_conntrack_log_invalid",
    "proc/sys/net/netfilter/nf_conntrack_max",
    "proc/sys/net/netfilter/nf_conntrack_sctp_timeout_closed",
    "proc/sys/net/netfilter/nf_conntrack_sctp_timeout_cookie_echoed",
    "proc/sys/net/netfilter/nf_conntrack_sctp_timeout_cookie_wait",
    "proc/sys/net/netfilter/nf_conntrack_sctp_timeout_established",
    "proc/sys/net/netfilter/nf_conntrack_sctp_timeout_heartbeat_sent",
    "proc/sys/net/netfilter/nf_conntrack_sctp_timeout_shutdown_ack_sent",
    "proc/sys/net/netfilter/nf_conntrack_sctp_timeout_shutdown_recd",
    "proc/sys/net/netfilter/nf_conntrack_sctp_timeout_shutdown_sent",
    "proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal",
    "proc/sys/net/netfilter/nf_conntrack_tcp_ignore_invalid_rst",
    "proc/sys/net/netfilter/nf_conntrack_tcp_loose",
    "proc/sys/net/netfilter/nf_conntrack_tcp_max_retrans",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_fin_wait",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_last_ack",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_max_retrans",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_syn_recv",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_syn_sent",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait",
    "proc/sys/net/netfilter/nf_conntrack_tcp_timeout_unacknowledged",
    "proc/sys/net/netfilter/nf_conntrack_timestamp",
    "proc/sys/net/netfilter/nf_conntrack_udp_timeout",
    "proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream",
    "stats.txt",
    "sys/class/net/docker0/queues/rx-0/rps_cpus",
    "sys/class/net/eth0/queues/rx-0/rps_cpus",
    "sys/class/net/veth3f1a2b0/queues/rx-0/rps_cpus",
    "sys/class/net/veth5e0b6a2/queues/rx-0/rps_cpus",
    "sys/class/net/veth91c4d7e/queues/rx-0/rps_cpus",
    "sys/devices/system/cpu/online",
    "sys/devices/system/cpu/possible",
    "sys/module/nf_conntrack/initstate",
    "sys/module/nf_conntrack/parameters/hashsize",
];

/// The sample's directory: [`CHECKOUT_DIR`] when it exists, else the
/// embedded copy written out ([`extract`]); `None` when neither can be
/// had (the reason is printed once).
pub fn dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let checkout = Path::new(CHECKOUT_DIR);
        if checkout.is_dir() {
            return Some(checkout.to_path_buf());
        }
        extract(&std::env::temp_dir())
            .map_err(|e| eprintln!("cannot write the bundled sample incident out: {e}"))
            .ok()
    })
    .as_deref()
}

/// Writes the embedded sample under `parent` and returns its directory:
/// `conntrack-kit-sample-VERSION-HASH-uUID`, re-used when it is a directory
/// of this user, closed to others, holding exactly the embedded bytes;
/// otherwise a fresh one is written (and renamed into place when the name
/// is free, so concurrent runs never see a half-written copy).
pub fn extract(parent: &Path) -> std::io::Result<PathBuf> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    FILES.hash(&mut h);
    let uid = effective_uid().unwrap_or(u32::MAX);
    let name = format!(
        "conntrack-kit-sample-{}-{:016x}-u{uid}",
        env!("CARGO_PKG_VERSION"),
        h.finish()
    );
    let cached = parent.join(name);
    if is_intact(&cached) {
        return Ok(cached);
    }
    let staging = tempfile::Builder::new()
        .prefix("conntrack-kit-sample-")
        .tempdir_in(parent)?;
    for (rel, bytes) in FILES {
        let path = staging.path().join(rel);
        if let Some(d) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)?;
        }
        std::fs::File::create_new(&path)?.write_all(bytes)?;
    }
    let staging = staging.keep();
    // A damaged copy of this user's (a file changed or missing) is
    // replaced; anything else under the name is left alone.
    if is_own_dir(&cached) {
        let _ = std::fs::remove_dir_all(&cached);
    }
    // Fails when the name is taken (another run was first, or something
    // not ours is there): then this run uses its own copy.
    match std::fs::rename(&staging, &cached) {
        Ok(()) => Ok(cached),
        Err(_) => Ok(staging),
    }
}

/// Whether `path` is a real directory (not a link) of this process's user
/// that no one else may write to.
fn is_own_dir(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    meta.is_dir() && Some(meta.uid()) == effective_uid() && meta.permissions().mode() & 0o022 == 0
}

/// This process's effective user: the owner of `/proc/self`.
fn effective_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").map(|m| m.uid()).ok()
}

/// Whether `dir` is this user's directory ([`is_own_dir`]) holding the
/// embedded files byte for byte.
fn is_intact(dir: &Path) -> bool {
    is_own_dir(dir)
        && FILES.iter().all(|(rel, bytes)| {
            let path = dir.join(rel);
            std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file())
                && std::fs::read(&path).is_ok_and(|b| b == *bytes)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the sample directory (but generate.py) is embedded.
    #[test]
    fn bundles_every_file() {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut on_disk = Vec::new();
        walk(
            Path::new(CHECKOUT_DIR),
            Path::new(CHECKOUT_DIR),
            &mut on_disk,
        );
        on_disk.retain(|f| f != "generate.py");
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(r, _)| r.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn extracts_once_and_reuses_an_intact_copy() {
        let parent = tempfile::tempdir().unwrap();
        let a = extract(parent.path()).unwrap();
        assert!(is_intact(&a));
        assert_eq!(extract(parent.path()).unwrap(), a, "re-used");
        // A changed file is not re-used: the copy is written again.
        std::fs::write(a.join("meta.txt"), "tampered").unwrap();
        let b = extract(parent.path()).unwrap();
        assert!(is_intact(&b));
        // A name taken by something else: this run writes its own copy.
        std::fs::remove_dir_all(&b).unwrap();
        std::os::unix::fs::symlink("/", &b).unwrap();
        let c = extract(parent.path()).unwrap();
        assert_ne!(c, b);
        assert!(is_intact(&c));
        assert!(std::fs::symlink_metadata(&b).unwrap().is_symlink());
    }
}
