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
//!   (`nf_conntrack: table full, dropping packet`, `nf_ct_proto_6: ...`).
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
