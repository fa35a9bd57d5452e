//! The incident lab (feature `lab`): every conntrack incident class
//! reproduced for real in throw-away network namespaces, so that a live
//! analysis (`doctor --netns ROUTER`) can be checked against a kernel that
//! is really in trouble.
//!
//! ```text
//!  client c0 (198.18.0.2) --veth-- +--------------------+ --veth-- server s0 (198.19.0.2)
//!  client c1 (198.18.1.2) --veth-- |  router            | --veth-- server s1 (198.19.1.2)
//!                                  |  nftables: DNAT of |
//!                                  |  198.19.255.1, SNAT|
//!                                  |  (masquerade) out  |
//!                                  +--------------------+
//! ```
//!
//! - [`topology`]: [`Lab`] builds the namespaces (`ckit-lab-PID-N-router`,
//!   `-c0`, `-s0`, ...), veth pairs, addresses, routes and the router's
//!   nftables ruleset ([`Ruleset`]), and deletes them on drop. Namespaces
//!   left by a lab whose process died are found by their name prefix and
//!   removed by [`clean_stale`] (every new lab calls it first).
//! - [`traffic`]: generators on std threads that enter the namespaces with
//!   `setns(2)` ([`crate::Netns::spawn`]): TCP servers and HTTP-like
//!   request churn, open-loop connection attempts, UDP request/reply,
//!   concurrent first packets of one UDP flow from threads pinned to two
//!   CPUs, two clients racing for the same source port through SNAT, SYN
//!   scans and UDP floods from spoofed sources, and out-of-window or stray
//!   TCP segments over raw sockets ([`packet`] builds them).
//! - [`scenario`]: the incident classes ([`SCENARIOS`]), each a topology,
//!   its traffic and a condition that says the incident is happening
//!   ([`Scenario::start`] returns when it is, or fails with the reason).
//!   Global sysctls a scenario changes (`nf_conntrack_max`,
//!   `nf_conntrack_buckets`, `nf_log_all_netns`) are changed through
//!   `conntrack_core::host::GlobalSysctlGuard` and restored when it ends,
//!   also after a crash; the others hold a `GlobalSysctlShare`.
//! - [`kmsg`]: the kernel log lines written while a scenario runs
//!   (`nf_conntrack: table full, dropping packet`, `nf_ct_proto_6: ...`,
//!   `s0 ate my IP address`).
//!
//! Needs root (namespaces, raw sockets, ctnetlink), `ip` (iproute2) and
//! `nft` (nftables). Traffic stays inside the lab's namespaces: the
//! addresses are from 198.18.0.0/15 (RFC 2544, benchmarking), and no
//! interface of the lab is connected to the host's.
//!
//! ```no_run
//! # fn main() -> Result<(), conntrack_netlink::lab::LabError> {
//! use conntrack_netlink::lab::{Scenario, StartOptions};
//! let run = Scenario::find("syn-scan").unwrap().start(&StartOptions::default())?;
//! println!("look at it: doctor --netns {}", run.router());
//! let summary = run.stop()?; // traffic stopped, namespaces deleted, sysctls restored
//! println!("{summary}");
//! # Ok(()) }
//! ```

//!
//! # What each scenario shows on Linux 6.18, and the kernel facts it relies on
//!
//! Observed on 6.18.44 (2 CPUs); the doctor column is what `doctor
//! --netns ROUTER` reports, checked by `tests/lab.rs`. Kernel facts were
//! read in `net/netfilter/nf_conntrack_core.c`, `nf_conntrack_proto_tcp.c`
//! and `nf_nat_core.c` (6.x); commits as in `KERNEL.md` (sections 2 to 8
//! and 17).
//!
//! | class | scenario | what happens on 6.18 | doctor | kernel facts |
//! |---|---|---|---|---|
//! | 1 | `table-full` | max lowered to 16,384, the router filled with ASSURED ESTABLISHED entries (2% unassured UDP), then ~400 SYNs/s: `drop` ~400/s, `early_drop` a few/s, `nf_conntrack: table full in netns N, dropping packet` | `table-full` critical, `demand-above-max` first (demand ~64,000: refused connections counted for TIME_WAIT), P0 `raise-max` | `__nf_conntrack_alloc` compares the namespace's count with the global max; `early_drop()` looks at up to 8 buckets (`NF_CT_EVICTION_RANGE`) and evicts only non-ASSURED entries; otherwise the rate-limited warning (naming the netns since a 2025 patch) and `drop` in `nf_conntrack_in` |
//! | 2 | `udp-clash` | A/AAAA-like pairs from one socket on CPUs 0 and 1 to a service DNAT'd by `numgen random mod 2`: `clash_resolve` ~1,000/s, `insert_failed` and `drop` 0 | `resolved-clashes` (info), exit 0 | UDP has `allow_clash` (71d8c47fc653); `__nf_ct_resolve_clash` merges identical NAT; `nf_ct_resolve_clash_harder` (6a757c07e51f, 5.6) inserts a differing-NAT loser for its reply direction with a 1 s timeout; both count in `clash_resolve` only (bc92470413f3, 5.10) |
//! | 2 | `udp-snat-race` | two clients, same source port, same server, through MASQUERADE: `insert_failed` = `drop` | `confirm-failures` critical, `nat-port-race` first, P1 `nat:fully-random` | `get_unique_tuple` keeps the source port when `nf_nat_used_tuple` finds it free, and that sees only confirmed entries; the loser's reply tuple clashes, its original tuple differs, so neither merge nor the reply-only insert applies: `drop` and `insert_failed` |
//! | 2 | `nat-race` | the same with TCP connects: `insert_failed` = `drop` ~100-400/s, `found` thousands/s | as above, naming the rule `oifname "s*" masquerade` | TCP has no `allow_clash`: a clash at confirm is dropped; `found` counts NAT port searches that hit a mapping in use |
//! | 2 | `nat-race-fully-random` | the same with `masquerade fully-random`: `insert_failed` and `drop` stay at 0 | no failure finding | `NF_NAT_RANGE_PROTO_RANDOM_FULLY` skips the keep-the-port step (34ce324019e7; both random flags since 5.1) |
//! | 3 | `chain-too-long` | buckets made 512 (the smallest the kernel keeps: a page of bucket heads), the router filled until ctnetlink creates fail with `ENOSPC`, then new UDP flows: `chaintoolong` = `insert_failed`, `drop` 0 | `overloaded-buckets` and `confirm-failures` critical, `chain-cap` confirmed first, P1 `buckets` | cap `50 + random(30)` per chain in `__nf_conntrack_confirm` and `nf_conntrack_hash_check_insert` (d7e7747ac5c2, c77737b736ce); the hash table is global, `nf_conntrack_buckets` writable in the initial namespace (3183ab8997a4) |
//! | 4 | `time-wait` | 300 short connections/s through MASQUERADE: TIME_WAIT holds nearly all of the table | `connection-churn` (info) with the TIME_WAIT share and ~300 new connections/s; P2 `advice:keepalive` | `tcp_timeouts[TCP_CONNTRACK_TIME_WAIT]` = 120 s; every closed connection enters it with a full timer |
//! | 5 | `syn-scan` | 2,000 SYNs/s to every port of a server that drops them: UNREPLIED SYN_SENT entries | `scan-suspects` naming the client, P2 `advice:unreplied-sources` | SYN_SENT 120 s; `IPS_SEEN_REPLY` is never set |
//! | 5 | `udp-flood` | max 16,384, 4,000 datagrams/s from 32,768 spoofed sources: table at max, `early_drop` ~2,500/s and `drop` ~1,400/s (the 8 buckets `early_drop` looks at often hold no entry of the router) | `table-full` critical, `unreplied-flood` first; P0 `raise-max`, P1 `timeout:udp_timeout`, P2 `advice:unreplied-sources` | UDP unreplied timeout 30 s; every flood entry is unassured, so `early_drop` always finds one to evict |
//! | 6 | `invalid` | random SEQ/ACK on established connections and stray FINs: `invalid` ~1,200/s, logged as `nf_ct_proto_6: SEQ is over upper bound`, `ACK is over upper bound`, `invalid new` | `invalid-surge` warning, P2 `advice:invalid` | `tcp_in_window` returns `NFCT_TCP_INVALID` with those reasons (2022 rework); `tcp_new` refuses a FIN without a connection; `nf_conntrack_in` counts `invalid`; `nf_conntrack_log_invalid` is per namespace, and the syslog logger skips other namespaces unless the global `nf_log_all_netns` is 1 |
//! | 7 | `healthy` | 400 requests/s on 20 persistent connections, 100 DNS-like requests/s through DNAT, 20 new connections/s | info findings only, exit 0 | (the control) |
//! | 8 | `nat-no-address` | the router keeps no universe-scope IPv4 address (none toward the servers, scope link toward the clients), 50 new UDP flows/s through MASQUERADE: every first packet dropped, `s0 ate my IP address` logged per packet, no conntrack counter moves, the table stays empty; the masquerade rule's `counter` counts them | from the counters alone: no finding above info, exit 0, the plan's "could not judge: nat failures" (no trace) and the verdict `HEALTHY as far as judged (not judged: ..., nat failures; ...)`; with `--trace`: `nat-failures` critical, `snat-no-address` first, P2 `advice:nat-address`, nothing resized | nf_nat_masquerade_ipv4() asks inet_select_addr(out, nexthop, RT_SCOPE_UNIVERSE), which falls back to every device of the namespace; finding none it logs "ate my IP address" and returns `NF_DROP` before nf_nat_setup_info(); the entry is never confirmed, so no counter counts the drop (net/netfilter/nf_nat_masquerade.c) |
//!
//! Global values a scenario changes are set through
//! `conntrack_core::host::GlobalSysctlGuard`; `table-full` and
//! `udp-flood` lower `nf_conntrack_max` rather than fill 262,144 entries,
//! which keeps each run to seconds.
//!
pub mod kmsg;
pub mod packet;
pub mod scenario;
pub mod topology;
pub mod traffic;

pub use kmsg::KernelLog;
pub use scenario::{Running, SCENARIOS, Scenario, StartOptions, Summary};
pub use topology::{Host, Lab, LabSpec, Ruleset, clean_stale, lab_namespaces};

use std::io;
use std::process::Command;

/// The prefix of every lab namespace's name (`ckit-lab-PID-N-ROLE`).
pub const PREFIX: &str = "ckit-lab-";

/// Why the lab could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// A setup command (`ip`, `nft`) failed.
    #[error("{command}: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status and stderr, or why it could not start.
        detail: String,
    },
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A netlink operation failed.
    #[error("{what}: {source}")]
    Netlink {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: crate::Error,
    },
    /// The scenario's incident did not show within its time limit.
    #[error("{scenario}: {what} did not happen within {secs} s ({state})")]
    NotReached {
        /// The scenario.
        scenario: &'static str,
        /// The condition waited for.
        what: String,
        /// The limit.
        secs: u64,
        /// What was seen instead.
        state: String,
    },
    /// This kernel or machine cannot show the scenario; the reason names
    /// the kernel fact.
    #[error("{scenario} cannot be shown here: {reason}")]
    Unsupported {
        /// The scenario.
        scenario: &'static str,
        /// Why (kernel version, missing counter, CPU count).
        reason: String,
    },
    /// No scenario has this name.
    #[error("no scenario named {0:?} (`lab list` shows them)")]
    UnknownScenario(String),
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> LabError {
        LabError::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn netlink(what: impl Into<String>, source: crate::Error) -> LabError {
        LabError::Netlink {
            what: what.into(),
            source,
        }
    }

    /// Whether the error says the scenario cannot be shown on this kernel
    /// or machine (as opposed to a failure).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, LabError::Unsupported { .. })
    }
}

/// Runs a setup command; an error carries its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), LabError> {
    run_with_input(program, args, None).map(|_| ())
}

/// Runs a command with `input` on its stdin; returns its stdout.
pub(crate) fn run_with_input(
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<String, LabError> {
    use std::io::Write as _;
    use std::process::Stdio;
    let line = format!("{program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| LabError::Command {
        command: line.clone(),
        detail: format!("cannot start: {e}"),
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| LabError::io(format!("write to {program}"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LabError::io(format!("wait for {program}"), e))?;
    if !out.status.success() {
        return Err(LabError::Command {
            command: line,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
