//! Code shared by the examples (`doctor`, `plan`, and any other example
//! that wants it): choosing what to look at, collecting it, analysing it,
//! and printing aligned tables.
//!
//! Use it from an example file in `examples/` with `mod common;` (the
//! module lives in `examples/common/`, which Cargo does not build as an
//! example of its own). Each example uses only part of it, hence the
//! `dead_code` allowance below.
//!
//! - [`source`]: the `--netns NAME` / `--pid PID` / `--capture DIR` /
//!   `--sample` options (clap) and the [`source::Target`] they select.
//! - [`live`]: a live collection: host facts, two statistics samples over a
//!   window, one streaming dump aggregated into hotspots and simulated
//!   bucket chains (progress bar on a terminal only).
//! - [`capture`]: the same from a capture directory (layout documented in
//!   `examples/data/README.md` and in [`capture`]).
//! - [`sample`]: the bundled sample incident, compiled into the binary so
//!   that an installed example has it without the checkout.
//! - [`analysis`]: what was collected, and the library's report of it.
//! - [`table`]: comfy-table helpers.
//! - [`Failure`] and the exit codes every example shares.
#![allow(dead_code)]

pub mod analysis;
pub mod capture;
pub mod live;
pub mod sample;
pub mod source;
pub mod table;

use std::fmt;

/// Exit code: analysed, no finding of warning level or above.
pub const EXIT_HEALTHY: i32 = 0;
/// Exit code: analysed, at least one warning finding, no critical one.
pub const EXIT_WARNING: i32 = 1;
/// Exit code: analysed, at least one critical finding.
pub const EXIT_CRITICAL: i32 = 2;
/// Exit code: bad command line (unknown option, bad value, conflicting
/// options). Not clap's default 2, which means "critical" here.
pub const EXIT_USAGE: i32 = 3;
/// Exit code: the target does not exist (network namespace, process,
/// capture directory).
pub const EXIT_NO_TARGET: i32 = 4;
/// Exit code: this host could not be analysed: missing privileges
/// (ctnetlink needs CAP_NET_ADMIN) or no conntrack. Also used when the
/// bundled sample was analysed instead, so that a script never mistakes
/// the sample's findings for this host's.
pub const EXIT_UNAVAILABLE: i32 = 5;
/// Exit code: any other error (netlink failure, unreadable or malformed
/// capture, output error).
pub const EXIT_ERROR: i32 = 6;

/// The exit codes, for `--help` texts.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  healthy: no finding of warning level or above
  1  warning findings (no critical one)
  2  critical findings
  3  bad command line
  4  target not found (network namespace, process, capture directory)
  5  this host could not be analysed (no privileges, or no conntrack), or
     nothing could be judged (an empty capture); also when the bundled
     sample was shown instead
  6  other errors (netlink, unreadable or malformed capture, output)";

/// Why an example could not do its work; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments beyond what clap checks.
    Usage(String),
    /// The namespace, process or directory does not exist.
    NoTarget(String),
    /// No privileges or no conntrack: the sample may be shown instead.
    Unavailable(String),
    /// Anything else.
    Error(String),
}

impl Failure {
    /// The exit code of this failure.
    pub fn code(&self) -> i32 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::NoTarget(_) => EXIT_NO_TARGET,
            Failure::Unavailable(_) => EXIT_UNAVAILABLE,
            Failure::Error(_) => EXIT_ERROR,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m)
            | Failure::NoTarget(m)
            | Failure::Unavailable(m)
            | Failure::Error(m) => f.write_str(m),
        }
    }
}

/// Parses the command line with clap, exiting 0 after `--help` or
/// `--version` and [`EXIT_USAGE`] on a usage error (clap's own code, 2,
/// would read as "critical" to a script).
pub fn parse_args<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    }
}
