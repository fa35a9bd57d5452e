//! The exit codes of every example (one table), the failure type that
//! carries them, and command-line parsing that exits with them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success: what was asked was done (`doctor`: healthy) |
//! | 1 | warning findings, no critical one (`doctor`) |
//! | 2 | critical findings (`doctor`) |
//! | 3 | bad command line |
//! | 4 | target not found: network namespace, process, capture directory |
//! | 5 | the target could not be looked at: no privileges or no conntrack |
//! | 6 | any other error |
//!
//! clap's own usage code, 2, would read as "critical" to a script: usage
//! errors exit 3 ([`parse_args`]).

use conntrack_kit::netlink::Error as NlError;
use std::fmt;

/// Exit code: success; for `doctor`, no finding of warning level or above.
pub const EXIT_HEALTHY: i32 = 0;
/// Exit code: at least one warning finding, no critical one (`doctor`).
pub const EXIT_WARNING: i32 = 1;
/// Exit code: at least one critical finding (`doctor`).
pub const EXIT_CRITICAL: i32 = 2;
/// Exit code: bad command line (unknown option, bad value, conflicting
/// options).
pub const EXIT_USAGE: i32 = 3;
/// Exit code: the target does not exist (network namespace, process,
/// capture directory).
pub const EXIT_NO_TARGET: i32 = 4;
/// Exit code: the target could not be looked at: missing privileges
/// (ctnetlink needs CAP_NET_ADMIN, entering a namespace CAP_SYS_ADMIN) or
/// no conntrack. `doctor` also exits so when it showed the bundled sample
/// instead, so that a script never mistakes the sample's findings for
/// this host's.
pub const EXIT_UNAVAILABLE: i32 = 5;
/// Exit code: any other error (netlink failure, unreadable or malformed
/// capture, output error).
pub const EXIT_ERROR: i32 = 6;

/// The one table: every exit code and what it means. `--help` texts are
/// made from it ([`exit_codes_help`]).
pub const EXIT_CODES: [(i32, &str); 7] = [
    (EXIT_HEALTHY, "success"),
    (EXIT_WARNING, "warning findings (no critical one)"),
    (EXIT_CRITICAL, "critical findings"),
    (
        EXIT_USAGE,
        "bad command line (unknown option, bad value, conflicting options)",
    ),
    (
        EXIT_NO_TARGET,
        "target not found (network namespace, process, capture directory)",
    ),
    (
        EXIT_UNAVAILABLE,
        "the target could not be looked at: no privileges (ctnetlink needs \
         CAP_NET_ADMIN, entering another network namespace CAP_SYS_ADMIN), or no \
         conntrack",
    ),
    (
        EXIT_ERROR,
        "other errors (netlink, unreadable or malformed capture, output)",
    ),
];

/// The "Exit codes:" section of an example's `--help`: the rows of
/// [`EXIT_CODES`] the example uses, in order, each followed by the
/// example's own remark on it, if any (`notes`; for 0, what success is).
///
/// ```ignore
/// exit_codes_help(&[(0, "the plan was printed"), (3, ""), (4, ""), (5, ""), (6, "")])
/// ```
pub fn exit_codes_help(rows: &[(i32, &str)]) -> String {
    let mut out = String::from("Exit codes:");
    for &(code, note) in rows {
        let meaning = EXIT_CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or("?", |(_, m)| m);
        let text = if note.is_empty() {
            meaning.to_string()
        } else if code == EXIT_HEALTHY {
            format!("{meaning}: {note}")
        } else {
            format!("{meaning}; {note}")
        };
        out.push_str(&format!("\n  {code}  "));
        out.push_str(&wrap(&text, 72, "\n     "));
    }
    out
}

/// Word-wraps `text` at `width` columns, joining lines with `sep`.
fn wrap(text: &str, width: usize, sep: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > width {
            out.push_str(sep);
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

/// Why an example could not do its work; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments beyond what clap checks.
    Usage(String),
    /// The namespace, process or directory does not exist.
    NoTarget(String),
    /// No privileges or no conntrack.
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

/// What to tell a user who lacks privileges.
pub const PRIVILEGES_HINT: &str = "hint: run as root: ctnetlink needs CAP_NET_ADMIN, and entering \
another network namespace needs CAP_SYS_ADMIN";

/// Maps a netlink error met while doing `what` to a failure: missing
/// privileges or ctnetlink (5), a namespace that vanished (4), or another
/// error (6).
pub fn failure_of(what: &str, e: &NlError) -> Failure {
    if e.is_permission_denied() {
        return Failure::Unavailable(format!("no privileges to {what}: {e}\n{PRIVILEGES_HINT}"));
    }
    if let NlError::NetnsOpen { source, .. } = e
        && source.kind() == std::io::ErrorKind::NotFound
    {
        return Failure::NoTarget(format!("{what}: {e}"));
    }
    if e.errno() == Some(libc::EPROTONOSUPPORT) {
        return Failure::Unavailable(format!(
            "{what}: {e} (ctnetlink is not available: nf_conntrack_netlink not loaded?)"
        ));
    }
    Failure::Error(format!("{what}: {e}"))
}

/// Parses the command line with clap, exiting 0 after `--help` or
/// `--version` and [`EXIT_USAGE`] on a usage error.
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

/// Prints a failure as `NAME: error: ...` on stderr and returns its code.
pub fn report(name: &str, e: &Failure) -> i32 {
    eprintln!("{name}: error: {e}");
    e.code()
}

/// Exits with 0 after `Ok`, or with the failure's code after printing it.
pub fn exit_with(name: &str, result: Result<(), Failure>) -> ! {
    std::process::exit(match result {
        Ok(()) => EXIT_HEALTHY,
        Err(e) => report(name, &e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_the_rows_asked_for_with_their_notes() {
        let h = exit_codes_help(&[(0, "the plan was printed"), (3, ""), (6, "note")]);
        assert!(
            h.starts_with("Exit codes:\n  0  success: the plan was printed\n  3  bad command line")
        );
        assert!(h.contains("\n  6  other errors"), "{h}");
        assert!(h.contains("output); note"), "{h}");
        assert!(!h.contains("\n  4  "), "{h}");
        for line in h.lines() {
            assert!(line.len() <= 80, "{line:?}");
        }
    }

    #[test]
    fn codes_are_distinct_and_ordered() {
        for (i, (code, _)) in EXIT_CODES.iter().enumerate() {
            assert_eq!(*code, i as i32);
        }
    }
}
